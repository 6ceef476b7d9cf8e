// SPDX-License-Identifier: GPL-2.0-only
/*
 * mig_util - the VFIO migration uAPI from userspace; see mig_util.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "mig_util.h"
#include "refaccel_lib.h"

const char *mig_state_name(unsigned int state)
{
	static const char *const names[] = {
		[VFIO_DEVICE_STATE_ERROR] = "ERROR",
		[VFIO_DEVICE_STATE_STOP] = "STOP",
		[VFIO_DEVICE_STATE_RUNNING] = "RUNNING",
		[VFIO_DEVICE_STATE_STOP_COPY] = "STOP_COPY",
		[VFIO_DEVICE_STATE_RESUMING] = "RESUMING",
		[VFIO_DEVICE_STATE_RUNNING_P2P] = "RUNNING_P2P",
		[VFIO_DEVICE_STATE_PRE_COPY] = "PRE_COPY",
		[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
	};

	return state < MIG_NSTATES ? names[state] : "?";
}

/* One VFIO_DEVICE_FEATURE call with a payload of @len bytes at @data. */
int mig_feature(struct vu_device *d, uint32_t flags, void *data, size_t len)
{
	uint64_t buf[(sizeof(struct vfio_device_feature) + 64) / 8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;

	if (len > 64)
		return -EINVAL;
	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	if (len)
		memcpy(f->data, data, len);
	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	if (len)
		memcpy(data, f->data, len);
	return 0;
}

int mig_low_power(struct vu_device *d, bool enter)
{
	uint8_t none = 0;

	return mig_feature(d, VFIO_DEVICE_FEATURE_SET |
			   (enter ? VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY :
			    VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), &none, 0);
}

int mig_get_flags(struct vu_device *d, uint64_t *flags)
{
	struct vfio_device_feature_migration m = { 0 };
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));
	*flags = m.flags;
	return ret;
}

int mig_get_state(struct vu_device *d, uint32_t *state)
{
	struct vfio_device_feature_mig_state m = { .data_fd = -1 };
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	*state = m.device_state;
	return ret;
}

int mig_set_state(struct vu_device *d, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state m = {
		.device_state = state,
		.data_fd = -1,
	};
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	if (data_fd)
		*data_fd = ret ? -1 : m.data_fd;
	else if (!ret && m.data_fd >= 0)
		close(m.data_fd);	/* unexpected, but never leak it */
	return ret;
}

int mig_data_size(struct vu_device *d, uint64_t *bytes)
{
	struct vfio_device_feature_mig_data_size m = { 0 };
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &m, sizeof(m));
	*bytes = m.stop_copy_length;
	return ret;
}

int mig_quiesce_get(struct vu_device *d, struct refaccel_vfio_quiesce *q)
{
	memset(q, 0xa5, sizeof(*q));
	return mig_feature(d, VFIO_DEVICE_FEATURE_GET |
			   REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE, q, sizeof(*q));
}

int mig_quiesce_set_mode(struct vu_device *d, uint32_t timeout_ms,
			 uint32_t mode)
{
	struct refaccel_vfio_quiesce q = {
		.timeout_ms = timeout_ms,
		.mode = mode,
	};

	return mig_feature(d, VFIO_DEVICE_FEATURE_SET |
			   REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE, &q, sizeof(q));
}

int mig_quiesce_set(struct vu_device *d, uint32_t timeout_ms)
{
	return mig_quiesce_set_mode(d, timeout_ms, REFACCEL_QUIESCE_MODE_DRAIN);
}

int mig_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };

	if (ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		return -errno;
	*initial = info.initial_bytes;
	*dirty = info.dirty_bytes;
	return 0;
}

int mig_buf_append(struct mig_buf *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 16;
		uint8_t *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->p, cap);
		if (!n)
			return -ENOMEM;
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	return 0;
}

void mig_buf_free(struct mig_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int mig_read_stream(int fd, struct mig_buf *b, size_t chunk, bool *eof)
{
	uint8_t *tmp = malloc(chunk);
	ssize_t n;
	int ret = 0;

	if (!tmp)
		return -ENOMEM;
	*eof = false;
	for (;;) {
		n = read(fd, tmp, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != ENOMSG)
				ret = -errno;
			break;
		}
		if (n == 0) {
			*eof = true;
			break;
		}
		ret = mig_buf_append(b, tmp, n);
		if (ret)
			break;
	}
	free(tmp);
	return ret;
}

int mig_write_stream(int fd, const void *p, size_t len, size_t chunk)
{
	const uint8_t *q = p;
	ssize_t n;

	while (len) {
		n = write(fd, q, len < chunk ? len : chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		q += n;
		len -= n;
	}
	return 0;
}

int mig_save_stop_copy(struct vu_device *d, struct mig_buf *out)
{
	bool eof;
	int fd, ret;

	ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
	if (ret)
		return ret;
	ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret)
		return ret;
	ret = mig_read_stream(fd, out, 1 << 20, &eof);
	if (!ret && !eof)
		ret = -ENOMSG;	/* STOP_COPY must end in EOF, never ENOMSG */
	close(fd);
	if (ret)
		return ret;
	return mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
}

int mig_load(struct vu_device *d, const void *p, size_t len, size_t chunk)
{
	int fd, ret;

	ret = mig_set_state(d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	ret = mig_write_stream(fd, p, len, chunk);
	if (!ret)
		ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
	close(fd);
	return ret;
}

/* Slicing-by-8 CRC-32C: the tests checksum whole 1 MiB streams under TCG. */
static uint32_t crc_tab[8][256];

static void crc_tab_init(void)
{
	if (crc_tab[0][1])
		return;
	for (uint32_t i = 0; i < 256; i++)
		crc_tab[0][i] = ra_ref_crc32c_raw(0, &(uint8_t){ (uint8_t)i }, 1);
	for (int t = 1; t < 8; t++)
		for (uint32_t i = 0; i < 256; i++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
					crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* Filled before main(): the tests checksum from several threads. */
static void __attribute__((constructor)) crc_tab_ctor(void)
{
	crc_tab_init();
}

uint32_t mig_crc32c(const void *p, size_t len)
{
	const uint8_t *q = p;
	uint32_t crc = ~0U;

	while (len && ((uintptr_t)q & 7)) {
		crc = crc_tab[0][(crc ^ *q++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, q, 8);
		v ^= crc;
		crc = crc_tab[7][v & 0xff] ^ crc_tab[6][(v >> 8) & 0xff] ^
		      crc_tab[5][(v >> 16) & 0xff] ^ crc_tab[4][(v >> 24) & 0xff] ^
		      crc_tab[3][(v >> 32) & 0xff] ^ crc_tab[2][(v >> 40) & 0xff] ^
		      crc_tab[1][(v >> 48) & 0xff] ^ crc_tab[0][v >> 56];
		q += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *q++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

int mig_stream_index(const uint8_t *p, size_t len, struct mig_rec_ref *recs,
		     int max)
{
	size_t off = sizeof(struct vmig_stream_hdr);
	int n = 0;

	if (len < off)
		return -EINVAL;
	while (off + sizeof(struct vmig_rec_hdr) <= len && n < max) {
		const struct vmig_rec_hdr *r = (const void *)(p + off);

		if (r->len > len - off - sizeof(*r))
			return -EINVAL;
		recs[n].off = off;
		recs[n].size = sizeof(*r) + r->len;
		recs[n].type = r->type;
		off += recs[n].size;
		n++;
	}
	return n;
}

struct mig_rec_span mig_stream_span(const struct mig_rec_ref *recs, int nrecs,
				    size_t from, size_t to)
{
	struct mig_rec_span r = { 0 };

	for (int i = 0; i < nrecs; i++) {
		if (recs[i].off < from || recs[i].off >= to)
			continue;
		r.n++;
		switch (recs[i].type) {
		case VMIG_REC_MEM:
			r.mem++;
			r.mem_bytes += recs[i].size - sizeof(struct vmig_rec_hdr) -
				       sizeof(uint64_t);
			break;
		case VMIG_REC_STATE:
			r.state++;
			break;
		case VMIG_REC_END:
			r.end++;
			break;
		}
	}
	return r;
}

void mig_rec_fix_crc(uint8_t *p, size_t off)
{
	struct vmig_rec_hdr *r = (void *)(p + off);

	r->payload_crc = mig_crc32c(p + off + sizeof(*r), r->len);
	r->crc = mig_crc32c(r, offsetof(struct vmig_rec_hdr, crc));
}

/* ------------------------------------------------------------------ */
/* stream construction and checking                                    */
/* ------------------------------------------------------------------ */

void mig_hdr_fix_crc(uint8_t *p)
{
	struct vmig_stream_hdr *h = (void *)p;

	h->crc = mig_crc32c(h, offsetof(struct vmig_stream_hdr, crc));
}

void mig_stream_renumber(uint8_t *p, size_t len)
{
	size_t off = sizeof(struct vmig_stream_hdr);
	uint64_t mem_bytes = 0;
	uint32_t seq = 0;

	while (len >= off && len - off >= sizeof(struct vmig_rec_hdr)) {
		struct vmig_rec_hdr *r = (void *)(p + off);
		uint8_t *payload = p + off + sizeof(*r);

		if (r->len > len - off - sizeof(*r))
			break;
		if (r->type == VMIG_REC_MEM && r->len > sizeof(uint64_t))
			mem_bytes += r->len - sizeof(uint64_t);
		if (r->type == VMIG_REC_END &&
		    r->len == sizeof(struct vmig_rec_end)) {
			struct vmig_rec_end *e = (void *)payload;

			e->nr_records = seq;
			e->mem_bytes = mem_bytes;
			r->payload_crc = mig_crc32c(payload, r->len);
		}
		r->seq = seq++;
		r->crc = mig_crc32c(r, offsetof(struct vmig_rec_hdr, crc));
		off += sizeof(*r) + r->len;
	}
}

unsigned int mig_errbit(int err)
{
	switch (err) {
	case EBADMSG:
		return MIG_E_BADMSG;
	case EPROTONOSUPPORT:
		return MIG_E_PROTONOSUPPORT;
	case EPROTO:
		return MIG_E_PROTO;
	case EINVAL:
		return MIG_E_INVAL;
	}
	return 0;
}

const char *mig_errbits_str(unsigned int bits, char *buf, size_t len)
{
	static const char *const names[] = {
		"EBADMSG", "EPROTONOSUPPORT", "EPROTO", "EINVAL",
	};
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < 4; i++) {
		if (!(bits & (1u << i)) || n >= len)
			continue;
		n += snprintf(buf + n, len - n, "%s%s", n ? "|" : "", names[i]);
	}
	if (!bits)
		snprintf(buf, len, "none");
	return buf;
}

static bool payload_crc_ok(const struct mig_crc_cache *c, const uint8_t *pl,
			   uint64_t len, uint32_t claimed)
{
	if (c) {
		for (int i = 0; i < c->n; i++) {
			const struct vmig_rec_hdr *r =
				(const void *)(c->p + c->recs[i].off);

			if (r->len == len && r->payload_crc == claimed &&
			    !memcmp(pl, r + 1, len))
				return true;
		}
	}
	return mig_crc32c(pl, len) == claimed;
}

static void verdict_reject(struct mig_verdict *v, unsigned int errs,
			   size_t detect_off, int rec, const char *why)
{
	v->kind = MIG_V_WRITE;
	v->errs = errs;
	v->detect_off = detect_off;
	v->rec = rec;
	v->why = why;
}

/* Record a broken rule: the first one names the verdict. */
#define BROKEN(cond, bit, text) do {					\
	if (cond) {							\
		errs |= (bit);						\
		if (!why)						\
			why = (text);					\
	}								\
} while (0)

void mig_stream_verify(const uint8_t *p, size_t len,
		       const struct mig_limits *lim,
		       const struct mig_crc_cache *cache,
		       struct mig_verdict *v, uint8_t *image)
{
	const struct vmig_stream_hdr *h = (const void *)p;
	uint64_t npages = lim->page_size ? lim->mem_size / lim->page_size : 0;
	uint8_t *covered = calloc(npages ? npages : 1, 1);
	size_t off = sizeof(*h);
	bool have_state = false, have_end = false;
	uint64_t mem_bytes = 0, ncovered = 0;
	uint32_t seq = 0;
	unsigned int errs = 0;
	const char *why = NULL;

	memset(v, 0, sizeof(*v));
	v->rec = -1;
	if (!covered) {
		verdict_reject(v, 0, 0, -1, "out of memory in the checker");
		return;
	}
	if (len < sizeof(*h)) {
		v->kind = MIG_V_TRUNC;
		v->why = "truncated stream header";
		goto out;
	}
	BROKEN(h->magic != VMIG_STREAM_MAGIC, MIG_E_INVAL, "bad magic");
	BROKEN(h->crc != mig_crc32c(h, offsetof(struct vmig_stream_hdr, crc)),
	       MIG_E_BADMSG, "stream header checksum");
	BROKEN(h->version != VMIG_STREAM_VERSION, MIG_E_PROTONOSUPPORT,
	       "stream version");
	BROKEN(h->hdr_len != sizeof(*h) || h->flags, MIG_E_INVAL,
	       "header length or flags");
	BROKEN(h->compat_id != lim->compat_id || h->mem_size != lim->mem_size ||
	       h->page_size != lim->page_size, MIG_E_PROTO,
	       "compat id, memory or page size");
	if (errs) {
		verdict_reject(v, errs, sizeof(*h) - 1, -1, why);
		goto out;
	}

	for (;;) {
		const struct vmig_rec_hdr *r = (const void *)(p + off);
		const uint8_t *pl = p + off + sizeof(*r);
		uint64_t rlen, moff = 0;

		if (have_end) {
			if (off < len)
				verdict_reject(v, MIG_E_INVAL, off, seq,
					       "data after END");
			else
				v->kind = MIG_V_ACCEPT;
			break;
		}
		if (len - off < sizeof(*r)) {
			v->kind = MIG_V_TRUNC;
			v->why = off == len ? "no END record" :
				 "truncated record header";
			break;
		}
		rlen = r->len;
		BROKEN(r->crc != mig_crc32c(r, offsetof(struct vmig_rec_hdr, crc)),
		       MIG_E_BADMSG, "record header checksum");
		BROKEN(r->seq != seq, MIG_E_INVAL, "record out of sequence");
		BROKEN(r->flags, MIG_E_INVAL, "record flags");
		switch (r->type) {
		case VMIG_REC_MEM:
			BROKEN(have_state, MIG_E_INVAL, "MEM after STATE");
			BROKEN(rlen <= sizeof(uint64_t) ||
			       rlen - sizeof(uint64_t) > VMIG_MEM_CHUNK_MAX ||
			       (rlen - sizeof(uint64_t)) % lim->page_size,
			       MIG_E_INVAL, "MEM length");
			break;
		case VMIG_REC_STATE:
			BROKEN(have_state, MIG_E_INVAL, "second STATE");
			BROKEN(!rlen || rlen > lim->state_max, MIG_E_INVAL,
			       "STATE length");
			break;
		case VMIG_REC_END:
			BROKEN(!have_state, MIG_E_INVAL, "END before STATE");
			BROKEN(rlen != sizeof(struct vmig_rec_end), MIG_E_INVAL,
			       "END length");
			break;
		default:
			BROKEN(true, MIG_E_INVAL, "record type");
		}
		if (errs) {
			verdict_reject(v, errs, off + sizeof(*r) - 1, seq, why);
			break;
		}
		if (len - off - sizeof(*r) < rlen) {
			v->kind = MIG_V_TRUNC;
			v->why = "truncated record payload";
			break;
		}
		BROKEN(!payload_crc_ok(cache, pl, rlen, r->payload_crc),
		       MIG_E_BADMSG, "payload checksum");
		if (r->type == VMIG_REC_MEM) {
			memcpy(&moff, pl, sizeof(moff));
			BROKEN(moff % lim->page_size || moff > lim->mem_size ||
			       rlen - sizeof(uint64_t) > lim->mem_size - moff,
			       MIG_E_INVAL, "MEM offset");
		}
		if (r->type == VMIG_REC_END) {
			const struct vmig_rec_end *e = (const void *)pl;

			BROKEN(e->nr_records != seq, MIG_E_INVAL,
			       "END record count");
			BROKEN(e->mem_bytes != mem_bytes, MIG_E_INVAL,
			       "END memory bytes");
			BROKEN(ncovered != npages, MIG_E_INVAL,
			       "END with pages never sent");
		}
		if (errs) {
			verdict_reject(v, errs, off + sizeof(*r) + rlen - 1, seq,
				       why);
			break;
		}
		switch (r->type) {
		case VMIG_REC_MEM:
			rlen -= sizeof(uint64_t);
			for (uint64_t pg = moff / lim->page_size;
			     pg < (moff + rlen) / lim->page_size; pg++) {
				ncovered += !covered[pg];
				covered[pg] = 1;
			}
			if (image)
				memcpy(image + moff, pl + sizeof(uint64_t), rlen);
			mem_bytes += rlen;
			break;
		case VMIG_REC_STATE:
			have_state = true;
			v->state_off = pl - p;
			v->state_len = rlen;
			break;
		case VMIG_REC_END:
			have_end = true;
			break;
		}
		seq++;
		off += sizeof(*r) + r->len;
	}
out:
	v->nr_records = seq;
	free(covered);
}
