// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the refaccel-vfio-pci migration stream code (stream.c,
 * linked into this module unchanged): every malformed-input class of
 * Documentation/migration-stream.rst with the errno it must give, and
 * encoder -> validator round trips.  Built by scripts/build-test-modules.sh
 * for kernels with CONFIG_KUNIT only; results are read back by
 * tests/kunit/run-kunit.sh in the test VM.
 */

#include <kunit/test.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/unaligned.h>

#include "stream.h"

#define T_PAGE		4096u
#define T_MEM		(16 * T_PAGE)
#define T_STATE_MAX	256u
#define T_STATE_LEN	64u

static const struct vmig_stream_limits t_lim = {
	.compat_id = 0x11ac0001,
	.mem_size = T_MEM,
	.page_size = T_PAGE,
	.state_max = T_STATE_MAX,
};

static void t_chk_init(struct vmig_stream_check *chk)
{
	memset(chk, 0, sizeof(*chk));
	chk->lim = &t_lim;
}

/* ---- helpers that build records ---- */

/* A MEM payload: offset then @pages pages of a pattern. */
static u8 *t_mem_payload(struct kunit *test, u64 off, unsigned int pages,
			 size_t *len)
{
	u8 *p;

	*len = sizeof(__le64) + (size_t)pages * T_PAGE;
	p = kunit_kzalloc(test, *len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	put_unaligned_le64(off, p);
	memset(p + sizeof(__le64), 0xa5 ^ (u8)off, *len - sizeof(__le64));
	return p;
}

/* Run a valid MEM record through both checks (advances @chk). */
static void t_feed_mem(struct kunit *test, struct vmig_stream_check *chk,
		       u64 off)
{
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	size_t len;
	u8 *p = t_mem_payload(test, off, 1, &len);

	vmig_rec_hdr_init(&rec, VMIG_REC_MEM, chk->next_seq, p, len);
	KUNIT_ASSERT_EQ(test, vmig_stream_check_rec(chk, &rec, &why), 0);
	KUNIT_ASSERT_EQ(test, vmig_stream_check_payload(chk, &rec, p, &why), 0);
}

static void t_feed_state(struct kunit *test, struct vmig_stream_check *chk)
{
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	u8 st[T_STATE_LEN];

	memset(st, 0x3c, sizeof(st));
	vmig_rec_hdr_init(&rec, VMIG_REC_STATE, chk->next_seq, st, sizeof(st));
	KUNIT_ASSERT_EQ(test, vmig_stream_check_rec(chk, &rec, &why), 0);
	KUNIT_ASSERT_EQ(test, vmig_stream_check_payload(chk, &rec, st, &why), 0);
}

static void t_end_payload(struct vmig_rec_end *end,
			  const struct vmig_stream_check *chk)
{
	end->nr_records = cpu_to_le64(chk->next_seq);
	end->mem_bytes = cpu_to_le64(chk->mem_bytes);
}

static void t_feed_end(struct kunit *test, struct vmig_stream_check *chk)
{
	struct vmig_rec_end end;
	struct vmig_rec_hdr rec;
	const char *why = NULL;

	t_end_payload(&end, chk);
	vmig_rec_hdr_init(&rec, VMIG_REC_END, chk->next_seq, &end, sizeof(end));
	KUNIT_ASSERT_EQ(test, vmig_stream_check_rec(chk, &rec, &why), 0);
	KUNIT_ASSERT_EQ(test, vmig_stream_check_payload(chk, &rec, &end, &why), 0);
}

/* Re-seal a record header after editing it, keeping its payload crc. */
static void t_rec_reseal(struct vmig_rec_hdr *rec)
{
	rec->crc = cpu_to_le32(vmig_crc(rec, offsetof(typeof(*rec), crc)));
}

static void t_hdr_reseal(struct vmig_stream_hdr *hdr)
{
	hdr->crc = cpu_to_le32(vmig_crc(hdr, offsetof(typeof(*hdr), crc)));
}

/* Expect @ret == @err and a reason string when failing. */
static void t_expect_err(struct kunit *test, int ret, int err, const char *why)
{
	KUNIT_EXPECT_EQ(test, ret, err);
	if (err)
		KUNIT_EXPECT_NOT_NULL(test, why);
}

/* ---- CRC ---- */

static void crc_known_vector(struct kunit *test)
{
	/* CRC-32C check value of "123456789" (RFC 3720, B.4) */
	KUNIT_EXPECT_EQ(test, vmig_crc("123456789", 9), 0xe3069283u);
	KUNIT_EXPECT_EQ(test, vmig_crc("", 0), 0u);
}

/* ---- stream header ---- */

static void hdr_roundtrip(struct kunit *test)
{
	struct vmig_stream_hdr hdr;
	const char *why = NULL;

	vmig_stream_hdr_init(&hdr, &t_lim);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(hdr.magic), VMIG_STREAM_MAGIC);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(hdr.version), VMIG_STREAM_VERSION);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(hdr.hdr_len), sizeof(hdr));
	KUNIT_EXPECT_EQ(test, sizeof(hdr), 32);
	KUNIT_EXPECT_EQ(test, vmig_stream_check_hdr(&hdr, &t_lim, &why), 0);
}

struct hdr_case {
	const char *name;
	void (*mutate)(struct vmig_stream_hdr *hdr);
	bool reseal;
	int err;
};

static void hm_magic(struct vmig_stream_hdr *h) { h->magic ^= cpu_to_le32(1); }
static void hm_version(struct vmig_stream_hdr *h) { h->version = cpu_to_le16(2); }
static void hm_version0(struct vmig_stream_hdr *h) { h->version = cpu_to_le16(0); }
static void hm_hdr_len(struct vmig_stream_hdr *h) { h->hdr_len = cpu_to_le16(40); }
static void hm_flags(struct vmig_stream_hdr *h) { h->flags = cpu_to_le32(1); }
static void hm_compat(struct vmig_stream_hdr *h) { h->compat_id ^= cpu_to_le32(0x100); }
static void hm_mem(struct vmig_stream_hdr *h) { h->mem_size = cpu_to_le64(T_MEM * 2); }
static void hm_page(struct vmig_stream_hdr *h) { h->page_size = cpu_to_le32(65536); }
static void hm_crc(struct vmig_stream_hdr *h) { h->crc ^= cpu_to_le32(0x80); }

static const struct hdr_case hdr_cases[] = {
	{ "bad magic", hm_magic, true, -EINVAL },
	{ "bad magic, stale crc", hm_magic, false, -EINVAL },
	{ "crc field corrupted", hm_crc, false, -EBADMSG },
	{ "compat id, stale crc", hm_compat, false, -EBADMSG },
	{ "version 2", hm_version, true, -EPROTONOSUPPORT },
	{ "version 0", hm_version0, true, -EPROTONOSUPPORT },
	{ "hdr_len 40", hm_hdr_len, true, -EINVAL },
	{ "flags set", hm_flags, true, -EINVAL },
	{ "compat id differs", hm_compat, true, -EPROTO },
	{ "mem size differs", hm_mem, true, -EPROTO },
	{ "page size differs", hm_page, true, -EPROTO },
};

static void hdr_case_desc(const struct hdr_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(hdr_malformed, hdr_cases, hdr_case_desc);

static void hdr_malformed(struct kunit *test)
{
	const struct hdr_case *c = test->param_value;
	struct vmig_stream_hdr hdr;
	const char *why = NULL;
	int ret;

	vmig_stream_hdr_init(&hdr, &t_lim);
	c->mutate(&hdr);
	if (c->reseal)
		t_hdr_reseal(&hdr);
	ret = vmig_stream_check_hdr(&hdr, &t_lim, &why);
	t_expect_err(test, ret, c->err, why);
}

/* ---- record headers ---- */

enum rec_ctx { CTX_START, CTX_AFTER_STATE, CTX_AFTER_END };

struct rec_case {
	const char *name;
	enum rec_ctx ctx;
	u16 type;
	s32 seq_delta;		/* relative to next_seq */
	u16 flags;
	u64 len;
	bool stale_crc;
	int err;
};

static const struct rec_case rec_cases[] = {
	{ "header crc mismatch", CTX_START, VMIG_REC_STATE, 0, 0, T_STATE_LEN, true, -EBADMSG },
	{ "seq skips (lost record)", CTX_START, VMIG_REC_STATE, 1, 0, T_STATE_LEN, false, -EINVAL },
	{ "seq repeats (duplicate)", CTX_AFTER_STATE, VMIG_REC_END, -1, 0, 16, false, -EINVAL },
	{ "flags set", CTX_START, VMIG_REC_STATE, 0, 1, T_STATE_LEN, false, -EINVAL },
	{ "type 0", CTX_START, 0, 0, 0, T_STATE_LEN, false, -EINVAL },
	{ "type 4", CTX_START, 4, 0, 0, T_STATE_LEN, false, -EINVAL },
	{ "type 0xffff", CTX_START, 0xffff, 0, 0, T_STATE_LEN, false, -EINVAL },
	{ "MEM len 0", CTX_START, VMIG_REC_MEM, 0, 0, 0, false, -EINVAL },
	{ "MEM offset only", CTX_START, VMIG_REC_MEM, 0, 0, 8, false, -EINVAL },
	{ "MEM len not page multiple", CTX_START, VMIG_REC_MEM, 0, 0,
	  8 + T_PAGE + 1, false, -EINVAL },
	{ "MEM len over chunk max", CTX_START, VMIG_REC_MEM, 0, 0,
	  8 + VMIG_MEM_CHUNK_MAX + T_PAGE, false, -EINVAL },
	{ "MEM len huge", CTX_START, VMIG_REC_MEM, 0, 0, U64_MAX, false, -EINVAL },
	{ "MEM after STATE", CTX_AFTER_STATE, VMIG_REC_MEM, 0, 0, 8 + T_PAGE, false, -EINVAL },
	{ "STATE len 0", CTX_START, VMIG_REC_STATE, 0, 0, 0, false, -EINVAL },
	{ "STATE len over max", CTX_START, VMIG_REC_STATE, 0, 0, T_STATE_MAX + 1, false, -EINVAL },
	{ "duplicate STATE", CTX_AFTER_STATE, VMIG_REC_STATE, 0, 0, T_STATE_LEN, false, -EINVAL },
	{ "END before STATE", CTX_START, VMIG_REC_END, 0, 0, 16, false, -EINVAL },
	{ "END len 15", CTX_AFTER_STATE, VMIG_REC_END, 0, 0, 15, false, -EINVAL },
	{ "END len 17", CTX_AFTER_STATE, VMIG_REC_END, 0, 0, 17, false, -EINVAL },
	{ "record after END", CTX_AFTER_END, VMIG_REC_STATE, 0, 0, T_STATE_LEN, false, -EINVAL },
	/* the good ones, as a control */
	{ "MEM ok", CTX_START, VMIG_REC_MEM, 0, 0, 8 + VMIG_MEM_CHUNK_MAX, false, 0 },
	{ "STATE ok at max", CTX_START, VMIG_REC_STATE, 0, 0, T_STATE_MAX, false, 0 },
	{ "END ok", CTX_AFTER_STATE, VMIG_REC_END, 0, 0, 16, false, 0 },
};

static void rec_case_desc(const struct rec_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(rec_malformed, rec_cases, rec_case_desc);

static void rec_malformed(struct kunit *test)
{
	const struct rec_case *c = test->param_value;
	struct vmig_stream_check chk;
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	int ret;

	t_chk_init(&chk);
	t_feed_mem(test, &chk, 0);
	if (c->ctx >= CTX_AFTER_STATE)
		t_feed_state(test, &chk);
	if (c->ctx >= CTX_AFTER_END)
		t_feed_end(test, &chk);

	memset(&rec, 0, sizeof(rec));
	rec.type = cpu_to_le16(c->type);
	rec.flags = cpu_to_le16(c->flags);
	rec.seq = cpu_to_le32(chk.next_seq + c->seq_delta);
	rec.len = cpu_to_le64(c->len);
	t_rec_reseal(&rec);
	if (c->stale_crc)
		rec.len = cpu_to_le64(c->len + 1);
	ret = vmig_stream_check_rec(&chk, &rec, &why);
	t_expect_err(test, ret, c->err, why);
}

/* ---- payloads ---- */

static void payload_crc_mismatch(struct kunit *test)
{
	struct vmig_stream_check chk;
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	int ret;
	size_t len;
	u8 *p = t_mem_payload(test, 0, 2, &len);

	t_chk_init(&chk);
	vmig_rec_hdr_init(&rec, VMIG_REC_MEM, 0, p, len);
	KUNIT_ASSERT_EQ(test, vmig_stream_check_rec(&chk, &rec, &why), 0);
	p[len - 1] ^= 1;
	ret = vmig_stream_check_payload(&chk, &rec, p, &why);
	t_expect_err(test, ret, -EBADMSG, why);
	/* nothing was accounted */
	KUNIT_EXPECT_EQ(test, chk.next_seq, 0);
	KUNIT_EXPECT_EQ(test, chk.mem_bytes, 0);
}

struct mem_case {
	const char *name;
	u64 off;
	unsigned int pages;
	int err;
};

static const struct mem_case mem_cases[] = {
	{ "offset 0", 0, 1, 0 },
	{ "last page", T_MEM - T_PAGE, 1, 0 },
	{ "whole memory", 0, T_MEM / T_PAGE, 0 },
	{ "offset unaligned", 512, 1, -EINVAL },
	{ "runs past the end", T_MEM - T_PAGE, 2, -EINVAL },
	{ "starts at the end", T_MEM, 1, -EINVAL },
	{ "offset wraps u64", U64_MAX - T_PAGE + 1, 2, -EINVAL },
};

static void mem_case_desc(const struct mem_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(mem_offset, mem_cases, mem_case_desc);

static void mem_offset(struct kunit *test)
{
	const struct mem_case *c = test->param_value;
	struct vmig_stream_check chk;
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	int ret;
	size_t len;
	u8 *p = t_mem_payload(test, c->off, c->pages, &len);

	t_chk_init(&chk);
	vmig_rec_hdr_init(&rec, VMIG_REC_MEM, 0, p, len);
	KUNIT_ASSERT_EQ(test, vmig_stream_check_rec(&chk, &rec, &why), 0);
	ret = vmig_stream_check_payload(&chk, &rec, p, &why);
	t_expect_err(test, ret, c->err, why);
	KUNIT_EXPECT_EQ(test, chk.mem_bytes,
			c->err ? 0 : (u64)c->pages * T_PAGE);
}

/*
 * A device without device memory (mem_size 0, page size 0, which the ops
 * contract allows): a MEM record is refused before any arithmetic with the
 * page size, whatever its length or offset.
 */
static void mem_without_device_memory(struct kunit *test)
{
	static const struct vmig_stream_limits lim = {
		.compat_id = 0x11ac0001,
		.state_max = T_STATE_MAX,
	};
	struct vmig_stream_check chk = { .lim = &lim };
	static const size_t lens[] = { 9, 16, 4096 + 8 };
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	unsigned int i;
	size_t len;
	int ret;
	u8 *p;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		p = t_mem_payload(test, 0, 1, &len);
		len = lens[i];
		vmig_rec_hdr_init(&rec, VMIG_REC_MEM, 0, p, len);
		why = NULL;
		ret = vmig_stream_check_rec(&chk, &rec, &why);
		t_expect_err(test, ret, -EINVAL, why);
	}
	/* STATE and END still work: a state-only stream is valid */
	t_feed_state(test, &chk);
	t_feed_end(test, &chk);
}

static void end_count_mismatch(struct kunit *test)
{
	struct vmig_stream_check chk;
	struct vmig_rec_end end;
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	int ret;
	int i;

	for (i = 0; i < 4; i++) {
		t_chk_init(&chk);
		t_feed_mem(test, &chk, 0);
		t_feed_mem(test, &chk, T_PAGE);
		t_feed_state(test, &chk);
		t_end_payload(&end, &chk);
		switch (i) {
		case 0:	/* control */
			break;
		case 1:
			le64_add_cpu(&end.nr_records, 1);
			break;
		case 2:
			le64_add_cpu(&end.mem_bytes, -(u64)T_PAGE);
			break;
		case 3:
			le64_add_cpu(&end.mem_bytes, 1);
			break;
		}
		vmig_rec_hdr_init(&rec, VMIG_REC_END, chk.next_seq, &end,
				  sizeof(end));
		KUNIT_ASSERT_EQ(test, vmig_stream_check_rec(&chk, &rec, &why), 0);
		ret = vmig_stream_check_payload(&chk, &rec, &end, &why);
		t_expect_err(test, ret, i ? -EINVAL : 0, why);
		KUNIT_EXPECT_EQ(test, chk.have_end, !i);
	}
}

/* ---- whole streams ---- */

struct t_stream {
	u8 *p;
	size_t len;
	size_t cap;
};

static void t_put(struct t_stream *s, const void *p, size_t len)
{
	if (WARN_ON(s->len + len > s->cap))
		return;
	memcpy(s->p + s->len, p, len);
	s->len += len;
}

/* Encode a valid stream: header, @nmem MEM records, STATE, END. */
static void t_encode(struct kunit *test, struct t_stream *s, unsigned int nmem)
{
	struct vmig_rec_end end;
	struct vmig_rec_hdr rec;
	struct vmig_stream_hdr hdr;
	u8 st[T_STATE_LEN];
	unsigned int i, seq = 0;
	u64 mem = 0;

	s->cap = sizeof(hdr) + nmem * (sizeof(rec) + 8 + T_PAGE) +
		 2 * sizeof(rec) + sizeof(st) + sizeof(end);
	s->p = kunit_kzalloc(test, s->cap, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, s->p);
	s->len = 0;

	vmig_stream_hdr_init(&hdr, &t_lim);
	t_put(s, &hdr, sizeof(hdr));
	for (i = 0; i < nmem; i++) {
		size_t len;
		u8 *p = t_mem_payload(test, (u64)(i % (T_MEM / T_PAGE)) * T_PAGE,
				      1, &len);

		vmig_rec_hdr_init(&rec, VMIG_REC_MEM, seq++, p, len);
		t_put(s, &rec, sizeof(rec));
		t_put(s, p, len);
		mem += T_PAGE;
	}
	for (i = 0; i < sizeof(st); i++)
		st[i] = i;
	vmig_rec_hdr_init(&rec, VMIG_REC_STATE, seq++, st, sizeof(st));
	t_put(s, &rec, sizeof(rec));
	t_put(s, st, sizeof(st));
	end.nr_records = cpu_to_le64(seq);
	end.mem_bytes = cpu_to_le64(mem);
	vmig_rec_hdr_init(&rec, VMIG_REC_END, seq, &end, sizeof(end));
	t_put(s, &rec, sizeof(rec));
	t_put(s, &end, sizeof(end));
	KUNIT_ASSERT_EQ(test, s->len, s->cap);
}

/*
 * Validate a whole stream the way RESUMING consumes it.  Returns 0 for a
 * complete valid stream, the first errno otherwise, -ENODATA when it ends
 * early (the driver reports that on RESUMING -> STOP).
 */
static int t_validate(const u8 *p, size_t len, struct vmig_stream_check *chk,
		      const char **why)
{
	const struct vmig_stream_hdr *hdr = (const void *)p;
	struct vmig_rec_hdr rec;
	size_t pos;
	int ret;

	t_chk_init(chk);
	if (len < sizeof(*hdr))
		return -ENODATA;
	ret = vmig_stream_check_hdr(hdr, &t_lim, why);
	if (ret)
		return ret;
	pos = sizeof(*hdr);
	while (!chk->have_end) {
		u64 plen;

		if (len - pos < sizeof(rec))
			return -ENODATA;
		memcpy(&rec, p + pos, sizeof(rec));
		pos += sizeof(rec);
		ret = vmig_stream_check_rec(chk, &rec, why);
		if (ret)
			return ret;
		plen = le64_to_cpu(rec.len);
		if (len - pos < plen)
			return -ENODATA;
		ret = vmig_stream_check_payload(chk, &rec, p + pos, why);
		if (ret)
			return ret;
		pos += plen;
	}
	if (pos != len) {
		*why = "bytes after END";
		return -EINVAL;
	}
	return 0;
}

static void stream_roundtrip(struct kunit *test)
{
	struct vmig_stream_check chk;
	const char *why = NULL;
	struct t_stream s;
	unsigned int nmem;

	for (nmem = 0; nmem <= 20; nmem += 5) {
		t_encode(test, &s, nmem);
		KUNIT_EXPECT_EQ_MSG(test, t_validate(s.p, s.len, &chk, &why), 0,
				    "nmem %u: %s", nmem, why ?: "");
		KUNIT_EXPECT_TRUE(test, chk.have_end);
		KUNIT_EXPECT_TRUE(test, chk.have_state);
		KUNIT_EXPECT_EQ(test, chk.next_seq, nmem + 2);
		KUNIT_EXPECT_EQ(test, chk.mem_bytes, (u64)nmem * T_PAGE);
	}
}

/* Every truncation of a valid stream is incomplete, never accepted. */
static void stream_truncated(struct kunit *test)
{
	struct vmig_stream_check chk;
	const char *why = NULL;
	struct t_stream s;
	size_t cut;

	t_encode(test, &s, 2);
	for (cut = 0; cut < s.len; cut++)
		KUNIT_EXPECT_EQ_MSG(test, t_validate(s.p, cut, &chk, &why),
				    -ENODATA, "cut at %zu", cut);
}

/*
 * A bit flip anywhere in a valid stream is rejected (one bit per byte, the
 * bit rotating): every byte is under a checksum or is one, so the class is
 * EBADMSG, or EINVAL for the magic, which is checked first.
 */
static void stream_bitflip(struct kunit *test)
{
	struct vmig_stream_check chk;
	const char *why = NULL;
	struct t_stream s;
	int ret, want;
	size_t i;

	t_encode(test, &s, 1);
	for (i = 0; i < s.len; i++) {
		s.p[i] ^= 1 << (i % 8);
		ret = t_validate(s.p, s.len, &chk, &why);
		s.p[i] ^= 1 << (i % 8);
		want = i < sizeof_field(struct vmig_stream_hdr, magic) ?
		       -EINVAL : -EBADMSG;
		if (ret != want)
			KUNIT_FAIL(test, "byte %zu: got %d (%s), want %d",
				   i, ret, ret ? why : "accepted", want);
	}
	/* and the untouched stream still passes */
	KUNIT_EXPECT_EQ(test, t_validate(s.p, s.len, &chk, &why), 0);
}

/* Trailing bytes after END are refused by the record-after-END rule. */
static void stream_trailing_record(struct kunit *test)
{
	struct vmig_stream_check chk;
	struct vmig_rec_hdr rec;
	const char *why = NULL;
	int ret;
	u8 st[8] = { 1 };

	t_chk_init(&chk);
	t_feed_state(test, &chk);
	t_feed_end(test, &chk);
	vmig_rec_hdr_init(&rec, VMIG_REC_STATE, chk.next_seq, st, sizeof(st));
	ret = vmig_stream_check_rec(&chk, &rec, &why);
	t_expect_err(test, ret, -EINVAL, why);
}

static struct kunit_case refaccel_stream_cases[] = {
	KUNIT_CASE(crc_known_vector),
	KUNIT_CASE(hdr_roundtrip),
	KUNIT_CASE_PARAM(hdr_malformed, hdr_malformed_gen_params),
	KUNIT_CASE_PARAM(rec_malformed, rec_malformed_gen_params),
	KUNIT_CASE(payload_crc_mismatch),
	KUNIT_CASE_PARAM(mem_offset, mem_offset_gen_params),
	KUNIT_CASE(mem_without_device_memory),
	KUNIT_CASE(end_count_mismatch),
	KUNIT_CASE(stream_roundtrip),
	KUNIT_CASE(stream_truncated),
	KUNIT_CASE_SLOW(stream_bitflip),
	KUNIT_CASE(stream_trailing_record),
	{}
};

static struct kunit_suite refaccel_stream_suite = {
	.name = "refaccel-stream",
	.test_cases = refaccel_stream_cases,
};

kunit_test_suite(refaccel_stream_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("KUnit tests for the refaccel-vfio-pci migration stream validators");
