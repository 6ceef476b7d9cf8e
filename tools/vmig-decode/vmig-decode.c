// SPDX-License-Identifier: GPL-2.0
/*
 * vmig-decode: print the records of a saved refaccel migration stream and
 * check it the way the driver's RESUMING side would (magic, version,
 * checksums, sequence, order, lengths, END totals).  For people debugging a
 * failed migration: save the source data_fd to a file, run this on it.
 *
 *   vmig-decode [-q] FILE|-
 *
 * Exit status: 0 if the stream is well formed, 1 if not, 2 on usage/IO
 * errors.  Device compatibility (compat id, sizes) cannot be judged here;
 * the values are printed.
 */
#include <endian.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/refaccel_vfio.h>

static int quiet;

/* Standard CRC-32C, bitwise: this tool is not performance critical. */
static uint32_t crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~0U;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1));
	}
	return ~crc;
}

static int bad(unsigned long long at, const char *what)
{
	printf("ERROR at byte %llu: %s\n", at, what);
	return 1;
}

static const char *type_name(unsigned int type)
{
	switch (type) {
	case VMIG_REC_MEM:
		return "MEM";
	case VMIG_REC_STATE:
		return "STATE";
	case VMIG_REC_END:
		return "END";
	default:
		return "?";
	}
}

static int decode(const uint8_t *p, size_t size)
{
	const struct vmig_stream_hdr *h = (const void *)p;
	unsigned long long off = sizeof(*h), mem_bytes = 0;
	uint32_t seq = 0, page_size;
	uint64_t mem_size;
	int have_state = 0, have_end = 0;

	if (size < sizeof(*h))
		return bad(0, "shorter than the stream header");
	if (le32toh(h->magic) != VMIG_STREAM_MAGIC)
		return bad(0, "bad magic: not a refaccel migration stream");
	if (le32toh(h->crc) != crc32c(h, offsetof(struct vmig_stream_hdr, crc)))
		return bad(0, "header checksum mismatch");
	page_size = le32toh(h->page_size);
	mem_size = le64toh(h->mem_size);
	printf("header: version %u, compat id %#x, device memory %llu bytes, page %u\n",
	       le16toh(h->version), le32toh(h->compat_id),
	       (unsigned long long)mem_size, page_size);
	if (le16toh(h->version) != VMIG_STREAM_VERSION)
		return bad(0, "unsupported format version");
	if (le16toh(h->hdr_len) != sizeof(*h) || h->flags)
		return bad(0, "unknown header length or flags");
	if (!page_size || page_size & (page_size - 1))
		return bad(0, "page size is not a power of two");

	while (off < size) {
		const struct vmig_rec_hdr *r = (const void *)(p + off);
		const uint8_t *pl = p + off + sizeof(*r);
		uint64_t len;
		unsigned int type;

		if (have_end)
			return bad(off, "data after END");
		if (size - off < sizeof(*r))
			return bad(off, "truncated record header");
		if (le32toh(r->crc) != crc32c(r, offsetof(struct vmig_rec_hdr, crc)))
			return bad(off, "record header checksum mismatch");
		len = le64toh(r->len);
		type = le16toh(r->type);
		if (le32toh(r->seq) != seq)
			return bad(off, "record out of sequence");
		if (len > size - off - sizeof(*r))
			return bad(off, "truncated record payload");
		if (le32toh(r->payload_crc) != crc32c(pl, len))
			return bad(off, "payload checksum mismatch");
		if (!quiet)
			printf("record %u @%llu: %-5s %llu bytes", seq, off,
			       type_name(type), (unsigned long long)len);

		switch (type) {
		case VMIG_REC_MEM: {
			uint64_t moff, dlen = len - 8;

			if (len <= 8 || dlen > VMIG_MEM_CHUNK_MAX || dlen % page_size)
				return bad(off, "MEM: bad length");
			if (have_state)
				return bad(off, "MEM after STATE");
			memcpy(&moff, pl, 8);
			moff = le64toh(moff);
			if (moff % page_size || moff > mem_size || dlen > mem_size - moff)
				return bad(off, "MEM: offset outside device memory");
			mem_bytes += dlen;
			if (!quiet)
				printf(" (device memory %#llx..%#llx)",
				       (unsigned long long)moff,
				       (unsigned long long)(moff + dlen - 1));
			break;
		}
		case VMIG_REC_STATE:
			if (have_state)
				return bad(off, "duplicate STATE");
			if (!len)
				return bad(off, "STATE: empty");
			have_state = 1;
			break;
		case VMIG_REC_END: {
			struct vmig_rec_end e;

			if (!have_state)
				return bad(off, "END before STATE");
			if (len != sizeof(e))
				return bad(off, "END: bad length");
			memcpy(&e, pl, sizeof(e));
			if (le64toh(e.nr_records) != seq)
				return bad(off, "END: record count mismatch");
			if (le64toh(e.mem_bytes) != mem_bytes)
				return bad(off, "END: device memory byte count mismatch");
			have_end = 1;
			break;
		}
		default:
			return bad(off, "unknown record type");
		}
		if (!quiet)
			printf("\n");
		off += sizeof(*r) + len;
		seq++;
	}
	if (!have_end)
		return bad(off, "stream ends without END (truncated)");
	printf("ok: %u records, %llu bytes of device memory, %zu bytes in all\n",
	       seq, mem_bytes, size);
	return 0;
}

int main(int argc, char **argv)
{
	size_t size = 0, cap = 1 << 20;
	uint8_t *buf;
	FILE *f;
	int ret;

	if (argc > 1 && !strcmp(argv[1], "-q")) {
		quiet = 1;
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: vmig-decode [-q] FILE|-\n");
		return 2;
	}
	f = strcmp(argv[1], "-") ? fopen(argv[1], "rb") : stdin;
	if (!f) {
		fprintf(stderr, "vmig-decode: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	buf = malloc(cap);
	for (;;) {
		size_t n;

		if (!buf) {
			fprintf(stderr, "vmig-decode: out of memory\n");
			return 2;
		}
		n = fread(buf + size, 1, cap - size, f);
		size += n;
		if (size < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
	}
	if (ferror(f)) {
		fprintf(stderr, "vmig-decode: read error on %s\n", argv[1]);
		return 2;
	}
	ret = decode(buf, size);
	free(buf);
	return ret;
}
