// SPDX-License-Identifier: GPL-2.0-only
/*
 * The RESUMING side of refaccel-vfio-pci against malformed migration
 * streams (Documentation/migration-stream.rst, "What the destination
 * checks"): every malformed class is rejected with its documented errno at
 * the documented point (the write() carrying the bad byte, or
 * RESUMING -> STOP), the destination stays in RESUMING with its SRAM
 * untouched, and VFIO_DEVICE_RESET makes it usable again.  Then a seeded
 * fuzz of mutated streams judged by a reference validator
 * (mig_stream_verify() in mig_util.c).
 *
 * Needs two functions bound to refaccel-vfio-pci (A: source, B:
 * destination), else SKIP.  CORRUPT_SAVE needs the model's testctl.
 *
 * Environment (besides REFACCEL_BDF, REFACCEL_TIMEOUT_MS,
 * VFIO_MIG_BACKEND):
 *   REFACCEL_FUZZ_SEED   fuzz seed (default: time based, printed)
 *   REFACCEL_FUZZ_ITERS  fuzz iterations (default 10000)
 *   REFACCEL_FUZZ_ONLY   run only this iteration of the seed, verbosely
 *   REFACCEL_FUZZ_WORKERS  destinations fuzzed in parallel (default 1)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define T_TIMEOUT	600
#define MAX_DEVS	4
#define MAX_REC		1024
#define HDR_SZ		sizeof(struct vmig_stream_hdr)
#define REC_SZ		sizeof(struct vmig_rec_hdr)

#define S_STOP		VFIO_DEVICE_STATE_STOP
#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING
#define S_STOP_COPY	VFIO_DEVICE_STATE_STOP_COPY
#define S_PRE_COPY	VFIO_DEVICE_STATE_PRE_COPY
#define S_PRE_COPY_P2P	VFIO_DEVICE_STATE_PRE_COPY_P2P

/* Offsets in the device's STATE blob (its own 24-byte header). */
#define BLOB_MAGIC	0
#define BLOB_VERSION	4
#define BLOB_COMPAT	8

/* ------------------------------------------------------------------ */
/* the reference stream                                                 */
/* ------------------------------------------------------------------ */

struct golden {
	struct mig_buf s;
	struct mig_rec_ref rec[MAX_REC];
	int n;			/* records */
	int nmem;		/* MEM records: 0 .. nmem-1 */
	int state, end;		/* indices */
	uint8_t *img;		/* A's SRAM when saved */
	struct mig_crc_cache cache;
};

static struct vmig_rec_hdr *rec_hdr(uint8_t *p, size_t off)
{
	return (struct vmig_rec_hdr *)(p + off);
}

static uint8_t *rec_payload(uint8_t *p, size_t off)
{
	return p + off + REC_SZ;
}

static void rec_fix_hdr_crc(uint8_t *p, size_t off)
{
	struct vmig_rec_hdr *r = rec_hdr(p, off);

	r->crc = mig_crc32c(r, offsetof(struct vmig_rec_hdr, crc));
}

/* @o := stream header + the golden records listed in @idx. */
static void build_from(const struct golden *g, struct mig_buf *o,
		       const int *idx, int n, bool renumber)
{
	o->len = 0;
	mig_buf_append(o, g->s.p, HDR_SZ);
	for (int i = 0; i < n; i++)
		mig_buf_append(o, g->s.p + g->rec[idx[i]].off,
			       g->rec[idx[i]].size);
	if (renumber)
		mig_stream_renumber(o->p, o->len);
}

static void copy_golden(const struct golden *g, struct mig_buf *o)
{
	o->len = 0;
	mig_buf_append(o, g->s.p, g->s.len);
}

static int golden_index(struct golden *g, const struct mig_limits *lim)
{
	struct mig_verdict v;

	g->n = mig_stream_index(g->s.p, g->s.len, g->rec, MAX_REC);
	if (g->n < 3)
		return -EINVAL;
	g->nmem = 0;
	while (g->nmem < g->n && g->rec[g->nmem].type == VMIG_REC_MEM)
		g->nmem++;
	g->state = g->n - 2;
	g->end = g->n - 1;
	if (g->nmem != g->state || g->rec[g->state].type != VMIG_REC_STATE ||
	    g->rec[g->end].type != VMIG_REC_END || g->nmem < 4)
		return -EINVAL;
	g->cache.p = g->s.p;
	g->cache.recs = g->rec;
	g->cache.n = g->n;
	/* full check, with every checksum computed */
	mig_stream_verify(g->s.p, g->s.len, lim, NULL, &v, NULL);
	return v.kind == MIG_V_ACCEPT ? 0 : -EBADMSG;
}

/* ------------------------------------------------------------------ */
/* fixture: A and B                                                     */
/* ------------------------------------------------------------------ */

struct pair_env {
	struct ra_found found;
	struct vu_iommu iommu;
	struct mig_env dev[MAX_DEVS];
	int ndev;
	struct golden g;
	uint8_t *pattern;	/* what B's SRAM holds before a load */
	uint64_t seed;
	bool iommu_ok;
};

#define A(f)	(&(f)->dev[0])
#define B(f)	(&(f)->dev[1])

/*
 * A does work that changes its SRAM and its registers (LOAD by the device,
 * CPU writes through BAR2), then is saved from STOP.
 */
static void make_golden(struct __test_metadata *_metadata, struct pair_env *f)
{
	struct mig_env *a = A(f);
	struct refaccel_cpl cpl;
	struct refaccel_desc d;
	uint64_t rng = f->seed | 1;
	uint8_t page[ENV_PAGE];
	int ret;

	for (int i = 0; i < 4; i++) {
		ra_rand_fill(a->src.va, ENV_BUF, &rng);
		d = ra_desc_load(env_tag(a), a->src.iova,
				 (uint64_t)i * 3 * ENV_BUF % a->lim.mem_size,
				 ENV_BUF);
		ret = ra_run(&a->ring, &d, &cpl, a->tmo);
		ASSERT_EQ(0, ret);
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
	}
	for (uint64_t off = 0; off < a->lim.mem_size; off += 37 * ENV_PAGE) {
		ra_rand_fill(page, sizeof(page), &rng);
		ASSERT_EQ(0, ra_sram_write(&a->dev, off, page, sizeof(page)));
	}
	ASSERT_EQ(0, env_work(a));

	ret = mig_save_stop_copy(&a->dev.vdev, &f->g.s);
	ASSERT_EQ(0, ret) TH_LOG("save A: %s", strerror(-ret));
	f->g.img = malloc(a->lim.mem_size);
	ASSERT_NE(NULL, f->g.img);
	ASSERT_EQ(0, ra_sram_read(&a->dev, 0, f->g.img, a->lim.mem_size));
	ret = golden_index(&f->g, &a->lim);
	ASSERT_EQ(0, ret) TH_LOG("A's stream (%zu bytes) is not a valid v1 stream",
				 f->g.s.len);
}

static void pair_setup(struct __test_metadata *_metadata, struct pair_env *f,
		       bool all)
{
	char bdf[MAX_DEVS][VU_BDF_LEN], why[700];
	enum vu_backend b = vu_backend_from_env();
	int n, ret;

	n = env_find(&f->found, bdf, all ? MAX_DEVS : 2, why, sizeof(why));
	if (!n)
		SKIP(return, "%s", why);
	if (n < 2)
		SKIP(return, "needs 2 functions bound to refaccel-vfio-pci, have 1 (%s)",
		     bdf[0]);
	ret = vu_iommu_init(&f->iommu, b);
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend", vu_backend_name(b));
	ASSERT_EQ(0, ret);
	f->iommu_ok = true;
	for (int i = 0; i < n; i++) {
		ret = env_open(&f->dev[i], &f->iommu, bdf[i], why, sizeof(why));
		if (ret == 1)
			SKIP(return, "%s", why);
		ASSERT_EQ(0, ret) TH_LOG("open %s: %s", bdf[i], strerror(-ret));
		f->ndev++;
		ASSERT_EQ(0, memcmp(&f->dev[0].lim, &f->dev[i].lim,
				    sizeof(f->dev[0].lim)))
			TH_LOG("%s and %s are not migration compatible",
			       bdf[0], bdf[i]);
	}
	f->seed = 0x5eed5eedull;
	f->pattern = malloc(A(f)->lim.mem_size);
	ASSERT_NE(NULL, f->pattern);
	make_golden(_metadata, f);
}

static void pair_teardown(struct pair_env *f)
{
	for (int i = 0; i < f->ndev; i++)
		env_close(&f->dev[i]);
	if (f->iommu_ok)
		vu_iommu_cleanup(&f->iommu);
	mig_buf_free(&f->g.s);
	free(f->g.img);
	free(f->pattern);
}

static long first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;

	if (!memcmp(a, b, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

/* B's SRAM equals @want (read through BAR2). */
static void expect_sram(struct __test_metadata *_metadata, struct mig_env *e,
			const uint8_t *want, const char *what)
{
	uint8_t *got = malloc(e->lim.mem_size);
	long d;

	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, ra_sram_read(&e->dev, 0, got, e->lim.mem_size));
	d = first_diff(got, want, e->lim.mem_size);
	EXPECT_EQ(-1, d) TH_LOG("%s: SRAM differs first at 0x%lx (0x%02x, want 0x%02x)",
				what, d, d >= 0 ? got[d] : 0, d >= 0 ? want[d] : 0);
	free(got);
}

/* B: reset, SRAM := a fresh pattern, STOP.  Ready for a load. */
static void prepare_dest(struct __test_metadata *_metadata, struct pair_env *f,
			 struct mig_env *b)
{
	ASSERT_EQ(0, env_reset(b));
	ra_rand_fill(f->pattern, b->lim.mem_size, &f->seed);
	ASSERT_EQ(0, ra_sram_write(&b->dev, 0, f->pattern, b->lim.mem_size));
	ASSERT_EQ(0, mig_set_state(&b->dev.vdev, S_STOP, NULL));
}

/* ------------------------------------------------------------------ */
/* one load attempt                                                     */
/* ------------------------------------------------------------------ */

struct attempt {
	int write_err;		/* errno of the first failed write, 0 */
	size_t fail_start;	/* stream offset of the failed write */
	size_t fail_end;
	int sticky_err;		/* errno of one more write after that */
	int stop_err;		/* errno of RESUMING -> STOP, 0 */
	uint32_t state;		/* after */
	int resuming_err;	/* errno of STOP -> RESUMING, 0 */
};

/*
 * Chunk size at stream offset @off: @chunk, or when 0 a pattern of odd
 * sizes driven by @rng (small ones near the start).
 */
static size_t next_chunk(size_t off, size_t chunk, uint64_t *rng)
{
	uint64_t r;

	if (chunk)
		return chunk;
	r = ra_rand(rng);
	if (off < 8192)
		return 1 + r % 97;
	switch (r % 4) {
	case 0:
		return 4093;
	case 1:
		return 65536 + 13;
	case 2:
		return 1 + (r >> 8) % 300000;
	}
	return SIZE_MAX;
}

static void load_attempt(struct mig_env *b, const uint8_t *p, size_t len,
			 size_t chunk, uint64_t chunk_rng, struct attempt *at)
{
	size_t off = 0;
	int fd = -1, ret;

	memset(at, 0, sizeof(*at));
	ret = mig_set_state(&b->dev.vdev, S_RESUMING, &fd);
	if (ret || fd < 0) {
		at->resuming_err = ret ? -ret : EBADF;
		mig_get_state(&b->dev.vdev, &at->state);
		return;
	}
	while (off < len) {
		size_t n = next_chunk(off, chunk, &chunk_rng);
		ssize_t w;

		if (n > len - off)
			n = len - off;
		w = write(fd, p + off, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			at->write_err = errno;
			at->fail_start = off;
			at->fail_end = off + n;
			w = write(fd, p, 1);
			at->sticky_err = w < 0 ? errno : 0;
			break;
		}
		if ((size_t)w != n) {
			/* consumes everything or fails: a short write is a bug */
			at->write_err = EMSGSIZE;
			at->fail_start = off;
			at->fail_end = off + n;
			break;
		}
		off += n;
	}
	ret = mig_set_state(&b->dev.vdev, S_STOP, NULL);
	at->stop_err = -ret;
	mig_get_state(&b->dev.vdev, &at->state);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* the valid stream                                                     */
/* ------------------------------------------------------------------ */

FIXTURE(stream) {
	struct pair_env f;
};

FIXTURE_SETUP(stream)
{
	pair_setup(_metadata, &self->f, false);
}

FIXTURE_TEARDOWN(stream)
{
	pair_teardown(&self->f);
}

/* A's stream loads into B, B's SRAM is A's, B runs on with A's ring. */
TEST_F_TIMEOUT(stream, load_valid, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *a = A(f), *b = B(f);
	struct refaccel_cpl cpl;
	struct refaccel_desc d;
	struct attempt at;
	uint32_t done_a;

	TH_LOG("A's stream: %zu bytes, %d records (%d MEM), STATE %zu bytes",
	       f->g.s.len, f->g.n, f->g.nmem, f->g.rec[f->g.state].size - REC_SZ);
	prepare_dest(_metadata, f, b);
	load_attempt(b, f->g.s.p, f->g.s.len, 1 << 20, 0, &at);
	ASSERT_EQ(0, at.write_err) TH_LOG("write: %s", strerror(at.write_err));
	ASSERT_EQ(0, at.stop_err) TH_LOG("RESUMING -> STOP: %s",
					 strerror(at.stop_err));
	EXPECT_EQ((uint32_t)S_STOP, at.state);
	expect_sram(_metadata, b, f->g.img, "B after loading A's stream");

	/* B continues A's device: same rings, same counters */
	done_a = ra_rd(&a->dev, REFACCEL_REG_CNT_COMPLETED);
	ASSERT_EQ(0, ra_reset(&a->dev));	/* A must not touch the ring */
	ASSERT_EQ(0, mig_set_state(&b->dev.vdev, S_RUNNING, NULL));
	EXPECT_EQ(done_a, ra_rd(&b->dev, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(a->ring.sq.iova, ra_rd64(&b->dev, REFACCEL_REG_SQ_BASE_LO));
	a->ring.dev = &b->dev;
	d = ra_desc_nop(env_tag(a));
	ASSERT_EQ(0, ra_run(&a->ring, &d, &cpl, a->tmo));
	EXPECT_EQ(d.tag, cpl.tag);
	EXPECT_EQ(REFACCEL_CPL_OK, cpl.status);
	EXPECT_EQ(done_a + 1, ra_rd(&b->dev, REFACCEL_REG_CNT_COMPLETED));
	a->ring.dev = &a->dev;
	ASSERT_EQ(0, ra_reset(&b->dev));
	ASSERT_EQ(0, env_reset(a));
}

FIXTURE(chunks) {
	struct pair_env f;
};

FIXTURE_VARIANT(chunks) {
	size_t chunk;
};

FIXTURE_VARIANT_ADD(chunks, bytes_1) { .chunk = 1 };
FIXTURE_VARIANT_ADD(chunks, bytes_7) { .chunk = 7 };
FIXTURE_VARIANT_ADD(chunks, bytes_4093) { .chunk = 4093 };
FIXTURE_VARIANT_ADD(chunks, odd_mix) { .chunk = 0 };

FIXTURE_SETUP(chunks)
{
	pair_setup(_metadata, &self->f, false);
}

FIXTURE_TEARDOWN(chunks)
{
	pair_teardown(&self->f);
}

/* The valid stream written in odd-sized pieces is accepted. */
TEST_F_TIMEOUT(chunks, accepted, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *b = B(f);
	struct attempt at;
	uint64_t t0 = vu_now_ms();

	prepare_dest(_metadata, f, b);
	load_attempt(b, f->g.s.p, f->g.s.len, variant->chunk, 77, &at);
	TH_LOG("%zu bytes in %zu-byte writes: %llu ms", f->g.s.len,
	       variant->chunk, (unsigned long long)(vu_now_ms() - t0));
	ASSERT_EQ(0, at.write_err) TH_LOG("write at %zu: %s", at.fail_start,
					  strerror(at.write_err));
	ASSERT_EQ(0, at.stop_err) TH_LOG("RESUMING -> STOP: %s",
					 strerror(at.stop_err));
	expect_sram(_metadata, b, f->g.img, "after a chunked load");
}

/* ------------------------------------------------------------------ */
/* malformed classes                                                    */
/* ------------------------------------------------------------------ */

enum where { AT_ACCEPT, AT_WRITE, AT_STOP };

struct bad_ctx {
	const struct golden *g;
	const struct mig_limits *lim;
	struct mig_buf *o;
	uint8_t *img;		/* for AT_ACCEPT: the SRAM expected */
};

typedef void (*mutate_fn)(struct bad_ctx *c);

#define G	(c->g)
#define O	(c->o->p)
#define REC(i)	(G->rec[i].off)

static void m_trunc_mid_header(struct bad_ctx *c) { c->o->len = 16; }
static void m_trunc_header_only(struct bad_ctx *c) { c->o->len = HDR_SZ; }
static void m_trunc_empty(struct bad_ctx *c) { c->o->len = 0; }
static void m_trunc_mid_rec_header(struct bad_ctx *c) { c->o->len = REC(1) + 10; }
static void m_trunc_mid_payload(struct bad_ctx *c) { c->o->len = REC(1) + REC_SZ + 1000; }
static void m_trunc_before_state(struct bad_ctx *c) { c->o->len = REC(G->state); }
static void m_trunc_mid_state(struct bad_ctx *c) { c->o->len = REC(G->state) + REC_SZ + 9; }
static void m_trunc_before_end(struct bad_ctx *c) { c->o->len = REC(G->end); }
static void m_trunc_mid_end(struct bad_ctx *c) { c->o->len = G->s.len - 5; }

static void m_flip_hdr_magic(struct bad_ctx *c) { O[1] ^= 0x01; }
static void m_flip_hdr_mem_size(struct bad_ctx *c) { O[18] ^= 0x10; }
static void m_flip_hdr_crc(struct bad_ctx *c) { O[29] ^= 0x80; }
static void m_flip_rec_hdr_len(struct bad_ctx *c) { O[REC(0) + 8] ^= 0x01; }
static void m_flip_rec_hdr_seq(struct bad_ctx *c) { O[REC(2) + 4] ^= 0x04; }
static void m_flip_rec_hdr_crc(struct bad_ctx *c) { O[REC(1) + 22] ^= 0x20; }
static void m_flip_state_hdr(struct bad_ctx *c) { O[REC(G->state) + 0] ^= 0x02; }
static void m_flip_end_hdr(struct bad_ctx *c) { O[REC(G->end) + 16] ^= 0x01; }
static void m_flip_mem_payload(struct bad_ctx *c) { O[REC(1) + REC_SZ + 5000] ^= 0x08; }
static void m_flip_mem_offset(struct bad_ctx *c) { O[REC(3) + REC_SZ + 2] ^= 0x01; }
static void m_flip_state_payload(struct bad_ctx *c) { O[REC(G->state) + REC_SZ + 40] ^= 0x40; }
static void m_flip_end_payload(struct bad_ctx *c) { O[REC(G->end) + REC_SZ + 1] ^= 0x01; }

static void set_len(struct bad_ctx *c, int i, uint64_t len)
{
	rec_hdr(O, REC(i))->len = len;
	rec_fix_hdr_crc(O, REC(i));
}

static void m_mem_len_over_chunk(struct bad_ctx *c)
{
	set_len(c, 0, 8 + VMIG_MEM_CHUNK_MAX + c->lim->page_size);
}
static void m_mem_len_huge(struct bad_ctx *c) { set_len(c, 0, 1ull << 62); }
static void m_mem_len_unaligned(struct bad_ctx *c) { set_len(c, 0, 8 + 4095); }
static void m_mem_len_offset_only(struct bad_ctx *c) { set_len(c, 0, 8); }
static void m_state_len_over_max(struct bad_ctx *c)
{
	set_len(c, G->state, c->lim->state_max + 1ull);
}
static void m_state_len_zero(struct bad_ctx *c) { set_len(c, G->state, 0); }
static void m_end_len(struct bad_ctx *c) { set_len(c, G->end, 24); }

static void set_type(struct bad_ctx *c, int i, uint16_t type)
{
	rec_hdr(O, REC(i))->type = type;
	rec_fix_hdr_crc(O, REC(i));
}

static void m_type_unknown(struct bad_ctx *c) { set_type(c, 0, 9); }
static void m_type_zero(struct bad_ctx *c) { set_type(c, 1, 0); }
static void m_rec_flags(struct bad_ctx *c)
{
	rec_hdr(O, REC(0))->flags = 1;
	rec_fix_hdr_crc(O, REC(0));
}

static void set_mem_offset(struct bad_ctx *c, int i, uint64_t off)
{
	struct vmig_rec_hdr *r = rec_hdr(O, REC(i));

	memcpy(rec_payload(O, REC(i)), &off, sizeof(off));
	r->payload_crc = mig_crc32c(rec_payload(O, REC(i)), r->len);
	rec_fix_hdr_crc(O, REC(i));
}

static void m_mem_offset_oob(struct bad_ctx *c)
{
	set_mem_offset(c, G->nmem - 1, c->lim->mem_size);
}
static void m_mem_offset_unaligned(struct bad_ctx *c)
{
	uint64_t off;

	memcpy(&off, rec_payload(O, REC(2)), sizeof(off));
	set_mem_offset(c, 2, off + 512);
}
static void m_mem_offset_straddles_end(struct bad_ctx *c)
{
	set_mem_offset(c, 0, c->lim->mem_size - c->lim->page_size);
}

static void set_hdr(struct bad_ctx *c, size_t field_off, const void *v,
		    size_t len)
{
	memcpy(O + field_off, v, len);
	mig_hdr_fix_crc(O);
}

static void m_hdr_version2(struct bad_ctx *c)
{
	set_hdr(c, offsetof(struct vmig_stream_hdr, version), &(uint16_t){ 2 }, 2);
}
static void m_hdr_version0(struct bad_ctx *c)
{
	set_hdr(c, offsetof(struct vmig_stream_hdr, version), &(uint16_t){ 0 }, 2);
}
static void m_hdr_compat(struct bad_ctx *c)
{
	uint32_t v = c->lim->compat_id ^ 0x100;

	set_hdr(c, offsetof(struct vmig_stream_hdr, compat_id), &v, 4);
}
static void m_hdr_mem_size(struct bad_ctx *c)
{
	uint64_t v = c->lim->mem_size * 2;

	set_hdr(c, offsetof(struct vmig_stream_hdr, mem_size), &v, 8);
}
static void m_hdr_page_size(struct bad_ctx *c)
{
	uint32_t v = c->lim->page_size * 2;

	set_hdr(c, offsetof(struct vmig_stream_hdr, page_size), &v, 4);
}
static void m_hdr_flags(struct bad_ctx *c)
{
	set_hdr(c, offsetof(struct vmig_stream_hdr, flags), &(uint32_t){ 1 }, 4);
}
static void m_hdr_len(struct bad_ctx *c)
{
	set_hdr(c, offsetof(struct vmig_stream_hdr, hdr_len), &(uint16_t){ 40 }, 2);
}
static void m_hdr_magic_fixed(struct bad_ctx *c)
{
	set_hdr(c, offsetof(struct vmig_stream_hdr, magic),
		&(uint32_t){ 0x47494d57 }, 4);
}

/* index lists over the golden records */
static int *seq_list(const struct golden *g, int *n)
{
	int *idx = malloc(sizeof(int) * (g->n + 4));

	for (int i = 0; i < g->n; i++)
		idx[i] = i;
	*n = g->n;
	return idx;
}

static void list_del(int *idx, int *n, int at)
{
	memmove(idx + at, idx + at + 1, sizeof(int) * (*n - at - 1));
	(*n)--;
}

static void list_ins(int *idx, int *n, int at, int v)
{
	memmove(idx + at + 1, idx + at, sizeof(int) * (*n - at));
	idx[at] = v;
	(*n)++;
}

static void m_swap_mem(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	idx[0] = 1;
	idx[1] = 0;
	build_from(G, c->o, idx, n, false);
	free(idx);
}
static void m_dup_mem(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_ins(idx, &n, 1, 0);
	build_from(G, c->o, idx, n, false);
	free(idx);
}
static void m_drop_mem(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_del(idx, &n, 1);
	build_from(G, c->o, idx, n, false);
	free(idx);
}
static void m_missing_page(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_del(idx, &n, 2);
	build_from(G, c->o, idx, n, true);
	free(idx);
}
static void m_mem_after_state(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_del(idx, &n, 0);
	list_ins(idx, &n, n - 1, 0);	/* STATE, MEM 0, END */
	build_from(G, c->o, idx, n, true);
	free(idx);
}
static void m_second_state(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_ins(idx, &n, n - 1, G->state);
	build_from(G, c->o, idx, n, true);
	free(idx);
}
static void m_end_before_state(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	idx[n - 2] = G->end;
	idx[n - 1] = G->state;
	build_from(G, c->o, idx, n, true);
	free(idx);
}
static void m_no_state(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_del(idx, &n, G->state);
	build_from(G, c->o, idx, n, true);
	free(idx);
}
static void m_data_after_end(struct bad_ctx *c)
{
	mig_buf_append(c->o, "\0", 1);
}
static void m_record_after_end(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_ins(idx, &n, n, G->end);	/* a second END, renumbered */
	build_from(G, c->o, idx, n, true);
	free(idx);
}
static void m_end_wrong_count(struct bad_ctx *c)
{
	struct vmig_rec_end *e = (void *)rec_payload(O, REC(G->end));

	e->nr_records++;
	rec_hdr(O, REC(G->end))->payload_crc = mig_crc32c(e, sizeof(*e));
	rec_fix_hdr_crc(O, REC(G->end));
}
static void m_end_wrong_bytes(struct bad_ctx *c)
{
	struct vmig_rec_end *e = (void *)rec_payload(O, REC(G->end));

	e->mem_bytes -= c->lim->page_size;
	rec_hdr(O, REC(G->end))->payload_crc = mig_crc32c(e, sizeof(*e));
	rec_fix_hdr_crc(O, REC(G->end));
}

/* STATE payload edits with the stream checksums fixed: the device judges */
static void state_edit(struct bad_ctx *c, size_t at, uint32_t xor)
{
	struct vmig_rec_hdr *r = rec_hdr(O, REC(G->state));
	uint8_t *pl = rec_payload(O, REC(G->state));
	uint32_t v;

	memcpy(&v, pl + at, 4);
	v ^= xor;
	memcpy(pl + at, &v, 4);
	r->payload_crc = mig_crc32c(pl, r->len);
	rec_fix_hdr_crc(O, REC(G->state));
}
static void m_state_body(struct bad_ctx *c)
{
	state_edit(c, (G->rec[G->state].size - REC_SZ) / 2 & ~3ul, 0x5a);
}
static void m_state_magic(struct bad_ctx *c) { state_edit(c, BLOB_MAGIC, 1); }
/* a version no device reads (1 and 2 are both read, see the device spec) */
static void m_state_version(struct bad_ctx *c) { state_edit(c, BLOB_VERSION, 0x100); }
static void m_state_compat(struct bad_ctx *c) { state_edit(c, BLOB_COMPAT, 0x10); }
static void m_state_short(struct bad_ctx *c)
{
	size_t at = REC(G->state);
	struct vmig_rec_hdr *r = rec_hdr(O, at);
	size_t end = at + REC_SZ + r->len;

	/* STATE 4 bytes shorter; its checksum, END and seq all fixed */
	memmove(O + end - 4, O + end, c->o->len - end);
	c->o->len -= 4;
	r->len -= 4;
	r->payload_crc = mig_crc32c(rec_payload(O, at), r->len);
	mig_stream_renumber(O, c->o->len);
}

/* harmless: the same memory, another order or twice */
static void m_swap_mem_renumbered(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	idx[0] = 2;
	idx[2] = 0;
	build_from(G, c->o, idx, n, true);
	free(idx);
	memcpy(c->img, G->img, c->lim->mem_size);
}
static void m_dup_mem_renumbered(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);

	list_ins(idx, &n, 3, 1);
	build_from(G, c->o, idx, n, true);
	free(idx);
	memcpy(c->img, G->img, c->lim->mem_size);
}
/* a page resent with new data (pre-copy): the last copy wins */
static void m_resend_new_data(struct bad_ctx *c)
{
	int n, *idx = seq_list(G, &n);
	size_t at, plen;
	uint64_t off, rng = 99;
	uint8_t *pl;

	list_ins(idx, &n, G->nmem, 1);	/* MEM 1 again, last before STATE */
	build_from(G, c->o, idx, n, false);
	free(idx);
	/* the inserted copy is the record just before STATE */
	at = c->o->len - G->rec[G->end].size - G->rec[G->state].size -
	     G->rec[1].size;
	pl = rec_payload(O, at);
	plen = rec_hdr(O, at)->len - 8;
	ra_rand_fill(pl + 8, plen, &rng);
	rec_hdr(O, at)->payload_crc = mig_crc32c(pl, plen + 8);
	mig_stream_renumber(O, c->o->len);
	memcpy(&off, pl, 8);
	memcpy(c->img, G->img, c->lim->mem_size);
	memcpy(c->img + off, pl + 8, plen);
}

FIXTURE(bad) {
	struct pair_env f;
};

FIXTURE_VARIANT(bad) {
	mutate_fn mutate;
	enum where where;
	int err;
	bool trunc;
};

#define BAD(name, w, e) \
	FIXTURE_VARIANT_ADD(bad, name) { .mutate = m_##name, .where = w, .err = e };
#define TRUNC(name) \
	FIXTURE_VARIANT_ADD(bad, name) { .mutate = m_##name, .where = AT_STOP, \
					 .err = EINVAL, .trunc = true };

/* truncated: every write passes, RESUMING -> STOP fails */
TRUNC(trunc_empty)
TRUNC(trunc_mid_header)
TRUNC(trunc_header_only)
TRUNC(trunc_mid_rec_header)
TRUNC(trunc_mid_payload)
TRUNC(trunc_before_state)
TRUNC(trunc_mid_state)
TRUNC(trunc_before_end)
TRUNC(trunc_mid_end)
/* corruption in transit */
BAD(flip_hdr_magic, AT_WRITE, EINVAL)
BAD(flip_hdr_mem_size, AT_WRITE, EBADMSG)
BAD(flip_hdr_crc, AT_WRITE, EBADMSG)
BAD(flip_rec_hdr_len, AT_WRITE, EBADMSG)
BAD(flip_rec_hdr_seq, AT_WRITE, EBADMSG)
BAD(flip_rec_hdr_crc, AT_WRITE, EBADMSG)
BAD(flip_state_hdr, AT_WRITE, EBADMSG)
BAD(flip_end_hdr, AT_WRITE, EBADMSG)
BAD(flip_mem_payload, AT_WRITE, EBADMSG)
BAD(flip_mem_offset, AT_WRITE, EBADMSG)
BAD(flip_state_payload, AT_WRITE, EBADMSG)
BAD(flip_end_payload, AT_WRITE, EBADMSG)
/* malformed, checksums right */
BAD(mem_len_over_chunk, AT_WRITE, EINVAL)
BAD(mem_len_huge, AT_WRITE, EINVAL)
BAD(mem_len_unaligned, AT_WRITE, EINVAL)
BAD(mem_len_offset_only, AT_WRITE, EINVAL)
BAD(state_len_over_max, AT_WRITE, EINVAL)
BAD(state_len_zero, AT_WRITE, EINVAL)
BAD(end_len, AT_WRITE, EINVAL)
BAD(type_unknown, AT_WRITE, EINVAL)
BAD(type_zero, AT_WRITE, EINVAL)
BAD(rec_flags, AT_WRITE, EINVAL)
BAD(mem_offset_oob, AT_WRITE, EINVAL)
BAD(mem_offset_unaligned, AT_WRITE, EINVAL)
BAD(mem_offset_straddles_end, AT_WRITE, EINVAL)
BAD(hdr_flags, AT_WRITE, EINVAL)
BAD(hdr_len, AT_WRITE, EINVAL)
BAD(hdr_magic_fixed, AT_WRITE, EINVAL)
BAD(swap_mem, AT_WRITE, EINVAL)
BAD(dup_mem, AT_WRITE, EINVAL)
BAD(drop_mem, AT_WRITE, EINVAL)
BAD(missing_page, AT_WRITE, EINVAL)
BAD(mem_after_state, AT_WRITE, EINVAL)
BAD(second_state, AT_WRITE, EINVAL)
BAD(end_before_state, AT_WRITE, EINVAL)
BAD(no_state, AT_WRITE, EINVAL)
BAD(data_after_end, AT_WRITE, EINVAL)
BAD(record_after_end, AT_WRITE, EINVAL)
BAD(end_wrong_count, AT_WRITE, EINVAL)
BAD(end_wrong_bytes, AT_WRITE, EINVAL)
/* incompatible */
BAD(hdr_version2, AT_WRITE, EPROTONOSUPPORT)
BAD(hdr_version0, AT_WRITE, EPROTONOSUPPORT)
BAD(hdr_compat, AT_WRITE, EPROTO)
BAD(hdr_mem_size, AT_WRITE, EPROTO)
BAD(hdr_page_size, AT_WRITE, EPROTO)
/* valid stream, the device refuses its state on RESUMING -> STOP */
BAD(state_body, AT_STOP, EBADMSG)
BAD(state_magic, AT_STOP, EINVAL)
BAD(state_version, AT_STOP, EPROTONOSUPPORT)
BAD(state_compat, AT_STOP, EPROTO)
BAD(state_short, AT_STOP, EINVAL)
/* harmless */
BAD(swap_mem_renumbered, AT_ACCEPT, 0)
BAD(dup_mem_renumbered, AT_ACCEPT, 0)
BAD(resend_new_data, AT_ACCEPT, 0)

FIXTURE_SETUP(bad)
{
	pair_setup(_metadata, &self->f, false);
}

FIXTURE_TEARDOWN(bad)
{
	pair_teardown(&self->f);
}

static const char *where_name(enum where w)
{
	return w == AT_ACCEPT ? "accepted" : w == AT_WRITE ? "write()" :
	       "RESUMING -> STOP";
}

TEST_F_TIMEOUT(bad, rejected, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *b = B(f);
	struct mig_buf o = { 0 };
	struct bad_ctx c = { .g = &f->g, .lim = &b->lim, .o = &o };
	struct mig_verdict v;
	struct attempt at;
	char buf[64];

	c.img = malloc(b->lim.mem_size);
	ASSERT_NE(NULL, c.img);
	copy_golden(&f->g, &o);
	variant->mutate(&c);

	/* the reference validator agrees with the class */
	mig_stream_verify(o.p, o.len, &b->lim, &f->g.cache, &v, NULL);
	if (variant->where == AT_WRITE) {
		EXPECT_EQ((int)MIG_V_WRITE, (int)v.kind) TH_LOG("validator: %s", v.why);
		EXPECT_NE(0u, v.errs & mig_errbit(variant->err))
			TH_LOG("validator allows %s", mig_errbits_str(v.errs, buf,
								   sizeof(buf)));
	} else if (variant->trunc) {
		EXPECT_EQ((int)MIG_V_TRUNC, (int)v.kind) TH_LOG("validator: %s",
								 v.why);
	} else {
		EXPECT_EQ((int)MIG_V_ACCEPT, (int)v.kind) TH_LOG("validator: %s",
								  v.why);
	}

	prepare_dest(_metadata, f, b);
	load_attempt(b, o.p, o.len, SIZE_MAX, 0, &at);
	ASSERT_EQ(0, at.resuming_err);
	TH_LOG("expected: %s %s; %zu-byte stream: write %s (bytes %zu..%zu), RESUMING -> STOP %s, state %s",
	       where_name(variant->where),
	       variant->err ? strerror(variant->err) : "", o.len, at.write_err ? strerror(at.write_err) : "ok",
	       at.fail_start, at.fail_end,
	       at.stop_err ? strerror(at.stop_err) : "ok",
	       mig_state_name(at.state));

	switch (variant->where) {
	case AT_ACCEPT:
		EXPECT_EQ(0, at.write_err);
		EXPECT_EQ(0, at.stop_err);
		EXPECT_EQ((uint32_t)S_STOP, at.state);
		expect_sram(_metadata, b, c.img, "after a harmless change");
		break;
	case AT_WRITE:
		EXPECT_EQ(variant->err, at.write_err)
			TH_LOG("rejected by write() with %s, want %s",
			       strerror(at.write_err), strerror(variant->err));
		if (v.kind == MIG_V_WRITE) {
			EXPECT_TRUE(v.detect_off >= at.fail_start &&
				    v.detect_off < at.fail_end);
		}
		EXPECT_EQ(at.write_err, at.sticky_err) TH_LOG("not sticky");
		EXPECT_EQ(at.write_err, at.stop_err)
			TH_LOG("RESUMING -> STOP: %s", strerror(at.stop_err));
		break;
	case AT_STOP:
		EXPECT_EQ(0, at.write_err) TH_LOG("write: %s",
						  strerror(at.write_err));
		EXPECT_EQ(variant->err, at.stop_err)
			TH_LOG("RESUMING -> STOP: %s, want %s",
			       strerror(at.stop_err), strerror(variant->err));
		break;
	}
	if (variant->where != AT_ACCEPT) {
		EXPECT_EQ((uint32_t)S_RESUMING, at.state)
			TH_LOG("a rejected stream must leave B in RESUMING");
		expect_sram(_metadata, b, f->pattern,
			    "a rejected stream must not touch SRAM");
	}

	/* reset makes B usable: work, then a real migration */
	ASSERT_EQ(0, env_reset(b));
	ASSERT_EQ(0, env_work(b));
	ASSERT_EQ(0, mig_set_state(&b->dev.vdev, S_STOP, NULL));
	load_attempt(b, f->g.s.p, f->g.s.len, 1 << 20, 0, &at);
	EXPECT_EQ(0, at.write_err);
	EXPECT_EQ(0, at.stop_err);
	expect_sram(_metadata, b, f->g.img, "valid load after the reset");
	ASSERT_EQ(0, env_reset(b));
	mig_buf_free(&o);
	free(c.img);
}

/* The source corrupts its own STATE (model testctl): B refuses it. */
TEST_F_TIMEOUT(stream, device_rejects_corrupt_save, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *a = A(f), *b = B(f);
	struct mig_buf s = { 0 };
	struct mig_verdict v;
	struct attempt at;
	int ret;

	if (!env_testctl(a))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): no CORRUPT_SAVE");
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_RUNNING, NULL));
	ra_wr(&a->dev, REFACCEL_REG_TEST_FLAGS, REFACCEL_TEST_CORRUPT_SAVE);
	ret = mig_save_stop_copy(&a->dev.vdev, &s);
	ASSERT_EQ(0, ret) TH_LOG("save with CORRUPT_SAVE: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_RUNNING, NULL));
	ra_wr(&a->dev, REFACCEL_REG_TEST_FLAGS, 0);

	/* the stream itself is fine: the record checksum covers the damage */
	mig_stream_verify(s.p, s.len, &a->lim, &f->g.cache, &v, NULL);
	ASSERT_EQ((int)MIG_V_ACCEPT, (int)v.kind) TH_LOG("%s", v.why);

	prepare_dest(_metadata, f, b);
	load_attempt(b, s.p, s.len, 1 << 20, 0, &at);
	EXPECT_EQ(0, at.write_err) TH_LOG("write: %s", strerror(at.write_err));
	EXPECT_EQ(EBADMSG, at.stop_err) TH_LOG("RESUMING -> STOP: %s",
					       strerror(at.stop_err));
	EXPECT_EQ((uint32_t)S_RESUMING, at.state);
	expect_sram(_metadata, b, f->pattern, "refused state: SRAM untouched");
	ASSERT_EQ(0, env_reset(b));
	ASSERT_EQ(0, env_work(b));
	mig_buf_free(&s);
}

/* A destination whose user left memory decode off loads all the same. */
TEST_F_TIMEOUT(stream, resume_decode_off, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *b = B(f);
	uint16_t cmd = 0;
	int fd = -1, ret;

	prepare_dest(_metadata, f, b);
	ASSERT_EQ(0, mig_set_state(&b->dev.vdev, S_RESUMING, &fd));
	ASSERT_EQ(0, mig_write_stream(fd, f->g.s.p, f->g.s.len, 1 << 20));
	ASSERT_EQ(0, env_mem_decode(b, false));
	ret = mig_set_state(&b->dev.vdev, S_STOP, NULL);
	EXPECT_EQ(0, ret) TH_LOG("RESUMING -> STOP, decode off: %s",
				 strerror(-ret));
	close(fd);
	ASSERT_EQ(0, env_command(b, &cmd));
	EXPECT_EQ(0, cmd & 0x2) TH_LOG("memory decode turned on behind the user");
	ASSERT_EQ(0, env_mem_decode(b, true));
	expect_sram(_metadata, b, f->g.img, "loaded with decode off");
	ASSERT_EQ(0, env_reset(b));
}

/*
 * A in PRE_COPY_P2P with session @fd and stream so far @s: STOP_COPY, read
 * to EOF, then load the stream into B, which must end with A's SRAM.
 */
static void finish_and_load(struct __test_metadata *_metadata,
			    struct pair_env *f, int fd, struct mig_buf *s,
			    const char *what)
{
	struct mig_env *a = A(f), *b = B(f);
	uint8_t *img = malloc(a->lim.mem_size);
	struct attempt at;
	bool eof = false;

	ASSERT_NE(NULL, img);
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_STOP_COPY, NULL));
	ASSERT_EQ(0, mig_read_stream(fd, s, 1 << 16, &eof));
	EXPECT_TRUE(eof);
	close(fd);
	ASSERT_EQ(0, ra_sram_read(&a->dev, 0, img, a->lim.mem_size));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_STOP, NULL));

	prepare_dest(_metadata, f, b);
	load_attempt(b, s->p, s->len, 0, 5, &at);
	EXPECT_EQ(0, at.write_err) TH_LOG("write: %s", strerror(at.write_err));
	EXPECT_EQ(0, at.stop_err) TH_LOG("RESUMING -> STOP: %s",
					 strerror(at.stop_err));
	expect_sram(_metadata, b, img, what);
	free(img);
}

/* A pre-copy stream (pages resent after CPU writes) loads into B. */
TEST_F_TIMEOUT(stream, precopy_stream_loads, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *a = A(f), *b = B(f);
	struct mig_buf s = { 0 };
	uint8_t page[ENV_PAGE];
	uint64_t rng = 1234;
	bool eof;
	int fd = -1;

	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_RUNNING, NULL));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_PRE_COPY, &fd));
	ASSERT_EQ(0, mig_read_stream(fd, &s, 1 << 16, &eof));
	EXPECT_FALSE(eof);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 5; i++) {
			ra_rand_fill(page, sizeof(page), &rng);
			ra_sram_write(&a->dev, (ra_rand(&rng) % (a->lim.mem_size /
				      ENV_PAGE)) * ENV_PAGE, page, sizeof(page));
		}
		ASSERT_EQ(0, mig_read_stream(fd, &s, 4093, &eof));
	}
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_PRE_COPY_P2P, NULL));
	/* MMIO still works when quiesced: this page goes in STOP_COPY */
	ra_rand_fill(page, sizeof(page), &rng);
	ra_sram_write(&a->dev, 7 * ENV_PAGE, page, sizeof(page));
	finish_and_load(_metadata, f, fd, &s, "pre-copy migration");
	TH_LOG("pre-copy stream %zu bytes (STOP_COPY alone %zu)", s.len,
	       f->g.s.len);
	EXPECT_LT(f->g.s.len, s.len);
	mig_buf_free(&s);
	ASSERT_EQ(0, env_reset(b));
	ASSERT_EQ(0, env_reset(a));
}

/*
 * A save read() that fails (the user asked for runtime low power: EBUSY)
 * must not lose data.  The driver's contract (mig.c vmig_save_next(): a
 * page counts as sent only once read) is that the failure is not sticky:
 * once the function is usable again the reads go on, in PRE_COPY and in
 * STOP_COPY, and the stream read to EOF carries every page as the device
 * holds it at STOP_COPY and loads into B.  Variant: the failure hits the
 * initial pass, or a dirty page being resent.
 */
static void save_with_read_error(struct __test_metadata *_metadata,
				 struct pair_env *f, bool dirty_pass)
{
	struct mig_env *a = A(f), *b = B(f);
	struct mig_buf s = { 0 };
	uint8_t *img = malloc(a->lim.mem_size), page[ENV_PAGE], buf[64];
	uint64_t rng = 4321, init, dirty;
	struct attempt at;
	bool eof = false;
	ssize_t n;
	int fd = -1, ret;

	ASSERT_NE(NULL, img);
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_RUNNING, NULL));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_PRE_COPY, &fd));
	if (dirty_pass) {
		ASSERT_EQ(0, mig_read_stream(fd, &s, 1 << 16, &eof));
		ra_rand_fill(page, sizeof(page), &rng);
		ASSERT_EQ(0, ra_sram_write(&a->dev, 5 * ENV_PAGE, page, sizeof(page)));
		ASSERT_EQ(0, mig_precopy_info(fd, &init, &dirty));
		ASSERT_LT(0u, dirty) TH_LOG("the CPU write is not dirty");
	} else {
		/* header and the first MEM record */
		n = read(fd, img, HDR_SZ + f->g.rec[0].size);
		ASSERT_EQ((ssize_t)(HDR_SZ + f->g.rec[0].size), n);
		mig_buf_append(&s, img, n);
	}
	/* The user asked for runtime low power: the device is off limits. */
	ASSERT_EQ(0, mig_low_power(&a->dev.vdev, true));
	n = fd_read(fd, buf, sizeof(buf));
	TH_LOG("read in runtime low power: %s",
	       n < 0 ? strerror((int)-n) : "data");
	EXPECT_EQ(-EBUSY, n);
	ASSERT_EQ(0, mig_low_power(&a->dev.vdev, false));

	ret = mig_read_stream(fd, &s, 1 << 16, &eof);
	EXPECT_EQ(0, ret) TH_LOG("PRE_COPY reads after the failed read: %s (the failure must not be sticky)",
				 strerror(-ret));
	EXPECT_FALSE(eof);
	if (ret) {
		close(fd);
		goto out;
	}
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_STOP_COPY, NULL));
	ret = mig_read_stream(fd, &s, 1 << 16, &eof);
	close(fd);
	EXPECT_EQ(0, ret) TH_LOG("STOP_COPY reads after the failed read: %s (the failure must not be sticky)",
				 strerror(-ret));
	if (ret)
		goto out;
	EXPECT_TRUE(eof);
	ASSERT_EQ(0, ra_sram_read(&a->dev, 0, img, a->lim.mem_size));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_STOP, NULL));

	/* reads went on: the stream must be whole and current */
	prepare_dest(_metadata, f, b);
	load_attempt(b, s.p, s.len, 1 << 20, 0, &at);
	EXPECT_EQ(0, at.write_err) TH_LOG("the stream read after a failed read is rejected by write(): %s",
					  strerror(at.write_err));
	EXPECT_EQ(0, at.stop_err) TH_LOG("the stream read after a failed read is rejected: %s",
					 strerror(at.stop_err));
	if (!at.write_err && !at.stop_err)
		expect_sram(_metadata, b, img, "the page being sent when a read failed");
out:
	mig_buf_free(&s);
	free(img);
	ASSERT_EQ(0, env_reset(b));
	ASSERT_EQ(0, env_reset(a));
}

TEST_F_TIMEOUT(stream, save_read_error_initial_pass, T_TIMEOUT)
{
	save_with_read_error(_metadata, &self->f, false);
}

TEST_F_TIMEOUT(stream, save_read_error_dirty_pass, T_TIMEOUT)
{
	save_with_read_error(_metadata, &self->f, true);
}

/* ------------------------------------------------------------------ */
/* fuzz                                                                 */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct fz {
	const struct golden *g;
	const struct mig_limits *lim;
	uint64_t rng;
	struct mig_buf m;
	char what[200];
	bool chunked;
};

static uint64_t rnd(struct fz *z)
{
	return ra_rand(&z->rng);
}

/* Records near the start, STATE and END are where the checks are. */
static int pick_rec(struct fz *z)
{
	switch (rnd(z) % 10) {
	case 0: case 1: case 2: case 3:
		return rnd(z) % 3;
	case 4: case 5:
		return z->g->state;
	case 6: case 7:
		return z->g->end;
	}
	return rnd(z) % z->g->n;
}

static void whatf(struct fz *z, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void whatf(struct fz *z, const char *fmt, ...)
{
	size_t n = strlen(z->what);
	va_list ap;

	if (n >= sizeof(z->what) - 2)
		return;
	va_start(ap, fmt);
	vsnprintf(z->what + n, sizeof(z->what) - n, fmt, ap);
	va_end(ap);
}

static void fz_flip(struct fz *z)
{
	const struct golden *g = z->g;
	int k = 1 + rnd(z) % 3;

	copy_golden(g, &z->m);
	for (int i = 0; i < k; i++) {
		size_t pos;
		int r;

		switch (rnd(z) % 7) {
		case 0: case 1: case 2:
			pos = rnd(z) % (HDR_SZ + REC_SZ + 16);
			break;
		case 3: case 4:
			r = pick_rec(z);
			pos = g->rec[r].off + rnd(z) % REC_SZ;
			break;
		case 5:
			r = pick_rec(z);
			pos = g->rec[r].off + REC_SZ +
			      rnd(z) % (g->rec[r].size - REC_SZ);
			break;
		default:
			pos = rnd(z) % z->m.len;
		}
		z->m.p[pos] ^= (uint8_t)(1 + rnd(z) % 255);
		whatf(z, "flip@%zu ", pos);
	}
}

static void fz_trunc(struct fz *z)
{
	const struct golden *g = z->g;
	size_t len;
	int r;

	switch (rnd(z) % 4) {
	case 0: case 1:
		len = rnd(z) % 200;
		break;
	case 2:
		r = pick_rec(z);
		len = g->rec[r].off + rnd(z) % 48 - 24;
		break;
	default:
		len = rnd(z) % g->s.len;
	}
	if (len > g->s.len)
		len = g->s.len - 1;
	z->m.len = 0;
	mig_buf_append(&z->m, g->s.p, len);
	whatf(z, "trunc@%zu ", len);
}

static uint64_t edge_len(struct fz *z, uint64_t cur)
{
	const uint64_t ps = z->lim->page_size;
	const uint64_t v[] = {
		0, 1, 8, 9, 15, 16, 17, 24, 8 + ps, 8 + ps - 1,
		8 + VMIG_MEM_CHUNK_MAX, 8 + VMIG_MEM_CHUNK_MAX + ps,
		z->lim->state_max, z->lim->state_max + 1ull, cur - 1, cur + 1,
		cur - ps, cur + ps, 1ull << 32, 1ull << 63, ~0ull,
	};

	if (rnd(z) % 8 == 0)
		return rnd(z);
	return v[rnd(z) % (sizeof(v) / sizeof(v[0]))];
}

static void fz_recfield(struct fz *z)
{
	const struct golden *g = z->g;
	int r = pick_rec(z);
	struct vmig_rec_hdr *h;
	static const uint16_t types[] = { 0, 1, 2, 3, 4, 0xffff, 0x0101 };

	copy_golden(g, &z->m);
	h = rec_hdr(z->m.p, g->rec[r].off);
	switch (rnd(z) % 4) {
	case 0:
		h->type = rnd(z) % 4 ? types[rnd(z) % 7] : (uint16_t)rnd(z);
		whatf(z, "rec%d.type=%u ", r, h->type);
		break;
	case 1:
		h->flags = rnd(z) % 2 ? 1 << (rnd(z) % 16) : (uint16_t)rnd(z);
		whatf(z, "rec%d.flags=0x%x ", r, h->flags);
		break;
	case 2: {
		const uint32_t s[] = { h->seq - 1, h->seq + 1, 0,
				       (uint32_t)g->n, (uint32_t)rnd(z) };

		h->seq = s[rnd(z) % 5];
		whatf(z, "rec%d.seq=%u ", r, h->seq);
		break;
	}
	default:
		h->len = edge_len(z, h->len);
		whatf(z, "rec%d.len=%llu ", r, (unsigned long long)h->len);
		/* sometimes make the payload checksum match the new length */
		if (rnd(z) % 3 == 0 && h->len <= z->m.len - g->rec[r].off - REC_SZ) {
			h->payload_crc = mig_crc32c(h + 1, h->len);
			whatf(z, "+pcrc ");
		}
	}
	if (rnd(z) % 10) {
		rec_fix_hdr_crc(z->m.p, g->rec[r].off);
		whatf(z, "+crc");
	}
}

static void fz_payload(struct fz *z)
{
	const struct golden *g = z->g;
	const struct mig_limits *lim = z->lim;
	int r = pick_rec(z);
	size_t off = g->rec[r].off;
	struct vmig_rec_hdr *h;
	uint8_t *pl;

	copy_golden(g, &z->m);
	h = rec_hdr(z->m.p, off);
	pl = rec_payload(z->m.p, off);
	if (h->type == VMIG_REC_MEM) {
		uint64_t mo, other, plen = h->len - 8;

		memcpy(&mo, pl, 8);
		memcpy(&other, rec_payload(g->s.p, g->rec[rnd(z) % g->nmem].off), 8);
		const uint64_t v[] = {
			0, lim->page_size, lim->mem_size,
			lim->mem_size - lim->page_size,
			lim->mem_size - plen + lim->page_size, mo + 1, mo,
			other, mo + lim->mem_size, rnd(z),
		};
		if (rnd(z) % 4 == 0) {
			/* new data: stream-valid, a different image */
			pl[8 + rnd(z) % plen] ^= 0xff;
			whatf(z, "rec%d.data ", r);
		} else {
			mo = v[rnd(z) % (sizeof(v) / sizeof(v[0]))];
			memcpy(pl, &mo, 8);
			whatf(z, "rec%d.offset=0x%llx ", r, (unsigned long long)mo);
		}
	} else if (h->type == VMIG_REC_STATE) {
		size_t at = rnd(z) % h->len;

		pl[at] ^= (uint8_t)(1 + rnd(z) % 255);
		whatf(z, "state[%zu] ", at);
	} else {
		struct vmig_rec_end *e = (void *)pl;
		const int64_t d[] = { -1, 1, -(int64_t)lim->page_size,
				      (int64_t)lim->page_size };

		if (rnd(z) % 2)
			e->nr_records += d[rnd(z) % 2];
		else
			e->mem_bytes += d[rnd(z) % 4];
		whatf(z, "end=%llu/%llu ", (unsigned long long)e->nr_records,
		      (unsigned long long)e->mem_bytes);
	}
	if (rnd(z) % 20) {
		h->payload_crc = mig_crc32c(pl, h->len);
		rec_fix_hdr_crc(z->m.p, off);
		whatf(z, "+crc");
	}
}

static void fz_hdrfield(struct fz *z)
{
	const struct golden *g = z->g;
	struct vmig_stream_hdr *h;

	copy_golden(g, &z->m);
	h = (void *)z->m.p;
	switch (rnd(z) % 7) {
	case 0:
		h->magic ^= 1u << (rnd(z) % 32);
		whatf(z, "hdr.magic ");
		break;
	case 1:
		h->version = rnd(z) % 2 ? 2 : (uint16_t)rnd(z);
		whatf(z, "hdr.version=%u ", h->version);
		break;
	case 2:
		h->hdr_len = rnd(z) % 2 ? 24 : (uint16_t)rnd(z);
		whatf(z, "hdr.hdr_len=%u ", h->hdr_len);
		break;
	case 3:
		h->compat_id ^= 1u << (rnd(z) % 32);
		whatf(z, "hdr.compat ");
		break;
	case 4:
		h->flags = 1u << (rnd(z) % 32);
		whatf(z, "hdr.flags ");
		break;
	case 5:
		h->mem_size = rnd(z) % 2 ? h->mem_size - z->lim->page_size :
			      h->mem_size << 1;
		whatf(z, "hdr.mem_size ");
		break;
	default:
		h->page_size = rnd(z) % 2 ? 512 : 1u << (rnd(z) % 32);
		whatf(z, "hdr.page_size=%u ", h->page_size);
	}
	if (rnd(z) % 10) {
		mig_hdr_fix_crc(z->m.p);
		whatf(z, "+crc");
	}
}

static void fz_struct(struct fz *z)
{
	const struct golden *g = z->g;
	int n, *idx = seq_list(g, &n), i, j, tmp;
	bool renumber = rnd(z) % 10 < 7;

	i = pick_rec(z);
	j = pick_rec(z);
	switch (rnd(z) % 4) {
	case 0:
		list_del(idx, &n, i);
		whatf(z, "drop %d ", i);
		break;
	case 1:
		list_ins(idx, &n, j, i);
		whatf(z, "dup %d at %d ", i, j);
		break;
	case 2:
		tmp = idx[i];
		idx[i] = idx[j];
		idx[j] = tmp;
		whatf(z, "swap %d %d ", i, j);
		break;
	default:
		tmp = idx[i];
		list_del(idx, &n, i);
		list_ins(idx, &n, j > n ? n : j, tmp);
		whatf(z, "move %d to %d ", i, j);
	}
	build_from(g, &z->m, idx, n, renumber);
	if (renumber)
		whatf(z, "+renumber");
	free(idx);
}

static void fz_append(struct fz *z)
{
	const struct golden *g = z->g;
	uint8_t junk[64];
	size_t n = 1 + rnd(z) % sizeof(junk);

	copy_golden(g, &z->m);
	if (rnd(z) % 2) {
		ra_rand_fill(junk, n, &z->rng);
		mig_buf_append(&z->m, junk, n);
		whatf(z, "append %zu ", n);
	} else {
		int r = pick_rec(z);

		mig_buf_append(&z->m, g->s.p + g->rec[r].off, g->rec[r].size);
		mig_stream_renumber(z->m.p, z->m.len);
		whatf(z, "append rec %d ", r);
	}
}

/* Build the stream of fuzz iteration @iter of @seed into z->m. */
static void fz_make(struct fz *z, uint64_t seed, uint64_t iter)
{
	uint64_t k;

	z->rng = splitmix64(seed ^ splitmix64(iter)) | 1;
	z->what[0] = '\0';
	k = rnd(z) % 100;
	if (k < 24)
		fz_flip(z);
	else if (k < 34)
		fz_trunc(z);
	else if (k < 54)
		fz_recfield(z);
	else if (k < 70)
		fz_payload(z);
	else if (k < 78)
		fz_hdrfield(z);
	else if (k < 95)
		fz_struct(z);
	else if (k < 98)
		fz_append(z);
	else {
		copy_golden(z->g, &z->m);
		whatf(z, "valid ");
	}
	/* a second change on top, sometimes */
	if (k < 70 && rnd(z) % 8 == 0 && z->m.len > 64) {
		size_t pos = rnd(z) % (z->m.len < 200 ? z->m.len : 200);

		z->m.p[pos] ^= 0x10;
		whatf(z, " flip@%zu", pos);
	}
	z->chunked = rnd(z) % 4 == 0;
}

/* outcome classes for the histogram */
enum {
	O_ACCEPT, O_W_BADMSG, O_W_PROTONOSUPPORT, O_W_PROTO, O_W_INVAL,
	O_S_INVAL_TRUNC, O_S_BADMSG, O_S_PROTONOSUPPORT, O_S_PROTO, O_S_INVAL,
	O_OTHER, O_NR,
};

static const char *const o_names[O_NR] = {
	"accepted", "write EBADMSG", "write EPROTONOSUPPORT", "write EPROTO",
	"write EINVAL", "stop EINVAL (truncated)", "stop EBADMSG (device)",
	"stop EPROTONOSUPPORT (device)", "stop EPROTO (device)",
	"stop EINVAL (device)", "other",
};

static int o_class(int write_err, int stop_err, bool trunc)
{
	if (write_err) {
		switch (write_err) {
		case EBADMSG: return O_W_BADMSG;
		case EPROTONOSUPPORT: return O_W_PROTONOSUPPORT;
		case EPROTO: return O_W_PROTO;
		case EINVAL: return O_W_INVAL;
		}
		return O_OTHER;
	}
	switch (stop_err) {
	case 0: return O_ACCEPT;
	case EBADMSG: return O_S_BADMSG;
	case EPROTONOSUPPORT: return O_S_PROTONOSUPPORT;
	case EPROTO: return O_S_PROTO;
	case EINVAL: return trunc ? O_S_INVAL_TRUNC : O_S_INVAL;
	}
	return O_OTHER;
}

#define FZ_MAX_MSG	8

struct fz_worker {
	pthread_t thread;
	struct mig_env *e;
	const struct golden *g;
	uint64_t seed, iters;
	uint64_t *next;		/* shared iteration counter */
	bool verbose;
	/* results */
	uint64_t done, hist[O_NR], resets, full_checks, health;
	uint64_t ms_total;
	int finished;
	int nfail;
	char msg[FZ_MAX_MSG][400];
	uint8_t *cur;		/* what the destination's SRAM holds */
	uint8_t *img;		/* scratch: image of the mutated stream */
	uint8_t *tmp;
};

static void fz_fail(struct fz_worker *w, uint64_t iter, const struct fz *z,
		    const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fz_fail(struct fz_worker *w, uint64_t iter, const struct fz *z,
		    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->nfail < FZ_MAX_MSG) {
		n = snprintf(w->msg[w->nfail], sizeof(w->msg[0]),
			     "iter %llu [%s%s] on %s: ", (unsigned long long)iter,
			     z->what, z->chunked ? " chunked" : "", w->e->dev.vdev.bdf);
		va_start(ap, fmt);
		vsnprintf(w->msg[w->nfail] + n, sizeof(w->msg[0]) - n, fmt, ap);
		va_end(ap);
	}
	w->nfail++;
}

/* Compare a few pages of SRAM with what it must hold (cheap). */
static long fz_sram_sample(struct fz_worker *w, uint64_t salt)
{
	const uint64_t size = w->e->lim.mem_size;
	uint64_t offs[3] = { 0, (salt % (size / ENV_PAGE)) * ENV_PAGE,
			     size - ENV_PAGE };

	for (int i = 0; i < 3; i++) {
		if (ra_sram_read(&w->e->dev, offs[i], w->tmp, ENV_PAGE))
			return (long)offs[i];
		if (memcmp(w->tmp, w->cur + offs[i], ENV_PAGE))
			return (long)offs[i];
	}
	return -1;
}

static long fz_sram_full(struct fz_worker *w)
{
	const uint64_t size = w->e->lim.mem_size;

	if (ra_sram_read(&w->e->dev, 0, w->tmp, size))
		return 0;
	return first_diff(w->tmp, w->cur, size);
}

/* Reset the destination back to STOP with a zeroed SRAM. */
static int fz_reset(struct fz_worker *w, bool health)
{
	uint32_t st = 0;
	int ret;

	w->resets++;
	ret = ra_reset(&w->e->dev);
	if (ret)
		return ret;
	ret = mig_get_state(&w->e->dev.vdev, &st);
	if (ret)
		return ret;
	if (st != S_RUNNING)
		return -EIO;
	memset(w->cur, 0, w->e->lim.mem_size);	/* reset clears SRAM */
	if (health) {
		w->health++;
		ret = env_ring_restart(w->e);
		if (!ret)
			ret = env_work(w->e);
		if (ret)
			return ret;
		memset(w->e->dst.va, 0, ENV_PAGE);
	}
	return mig_set_state(&w->e->dev.vdev, S_STOP, NULL);
}

static void fz_one(struct fz_worker *w, struct fz *z, uint64_t iter)
{
	struct mig_env *e = w->e;
	const struct golden *g = w->g;
	struct mig_verdict v;
	struct attempt at;
	bool state_changed = false, failed;
	unsigned int bit;
	long d;
	char b1[64];
	int oc;

	fz_make(z, w->seed, iter);
	mig_stream_verify(z->m.p, z->m.len, &e->lim, &g->cache, &v, w->img);
	if (v.kind == MIG_V_ACCEPT) {
		size_t glen = g->rec[g->state].size - REC_SZ;

		state_changed = v.state_len != glen ||
			memcmp(z->m.p + v.state_off,
			       g->s.p + g->rec[g->state].off + REC_SZ, glen);
	}
	load_attempt(e, z->m.p, z->m.len, z->chunked ? 0 : SIZE_MAX,
		     z->rng, &at);
	failed = at.write_err || at.stop_err || at.resuming_err;
	oc = o_class(at.write_err, at.stop_err, v.kind == MIG_V_TRUNC);
	w->hist[oc]++;
	if (w->verbose)
		fprintf(stderr, "# iter %llu [%s] %zu bytes: validator %s (%s, byte %zu) write %s stop %s state %s\n",
			(unsigned long long)iter, z->what, z->m.len,
			v.kind == MIG_V_ACCEPT ? "accept" :
			v.kind == MIG_V_WRITE ? "write" : "truncated",
			v.why ? v.why : "-", v.detect_off,
			strerror(at.write_err), strerror(at.stop_err),
			mig_state_name(at.state));

	if (at.resuming_err) {
		fz_fail(w, iter, z, "STOP -> RESUMING: %s",
			strerror(at.resuming_err));
	} else if (v.kind == MIG_V_WRITE) {
		bit = mig_errbit(at.write_err);
		if (!at.write_err)
			fz_fail(w, iter, z, "not rejected by write() (%s at byte %zu); RESUMING -> STOP %s",
				v.why, v.detect_off, strerror(at.stop_err));
		else if (!(bit & v.errs))
			fz_fail(w, iter, z, "write() failed with %s, rules allow %s (%s)",
				strerror(at.write_err),
				mig_errbits_str(v.errs, b1, sizeof(b1)), v.why);
		else if (v.detect_off < at.fail_start ||
			 v.detect_off >= at.fail_end)
			fz_fail(w, iter, z, "rejected by the write of bytes %zu..%zu, but the bad byte is %zu (%s)",
				at.fail_start, at.fail_end, v.detect_off, v.why);
		else if (at.sticky_err != at.write_err ||
			 at.stop_err != at.write_err)
			fz_fail(w, iter, z, "not sticky: %s, then write %s, stop %s",
				strerror(at.write_err), strerror(at.sticky_err),
				strerror(at.stop_err));
	} else if (at.write_err) {
		fz_fail(w, iter, z, "write() of bytes %zu..%zu failed with %s, stream %s",
			at.fail_start, at.fail_end, strerror(at.write_err),
			v.kind == MIG_V_TRUNC ? "truncated (valid so far)" : "valid");
	} else if (v.kind == MIG_V_TRUNC) {
		if (at.stop_err != EINVAL)
			fz_fail(w, iter, z, "truncated (%s): RESUMING -> STOP %s, want EINVAL",
				v.why, strerror(at.stop_err));
	} else if (state_changed) {
		bit = mig_errbit(at.stop_err);
		if (!at.stop_err)
			fz_fail(w, iter, z, "a changed STATE blob was accepted");
		else if (!bit)
			fz_fail(w, iter, z, "changed STATE: RESUMING -> STOP %s",
				strerror(at.stop_err));
	} else if (at.stop_err) {
		fz_fail(w, iter, z, "valid stream refused: RESUMING -> STOP %s",
			strerror(at.stop_err));
	}

	if (failed) {
		if (at.state != S_RESUMING && !at.resuming_err)
			fz_fail(w, iter, z, "state %s after a rejection",
				mig_state_name(at.state));
		d = fz_sram_sample(w, iter);
		if (d >= 0)
			fz_fail(w, iter, z, "rejected stream changed SRAM at 0x%lx", d);
		if (!(iter % 97)) {
			w->full_checks++;
			d = fz_sram_full(w);
			if (d >= 0)
				fz_fail(w, iter, z, "rejected stream changed SRAM at 0x%lx (full check)",
					d);
		}
		if (fz_reset(w, !(w->resets % 256)))
			fz_fail(w, iter, z, "reset / health check failed");
	} else {
		if (at.state != S_STOP)
			fz_fail(w, iter, z, "state %s after a load",
				mig_state_name(at.state));
		memcpy(w->cur, w->img, e->lim.mem_size);
		w->full_checks++;
		d = fz_sram_full(w);
		if (d >= 0)
			fz_fail(w, iter, z, "loaded SRAM differs from the stream at 0x%lx",
				d);
	}
}

static void *fz_thread(void *arg)
{
	struct fz_worker *w = arg;
	struct fz z = { .g = w->g, .lim = &w->e->lim };
	uint64_t t0 = vu_now_ms();

	for (;;) {
		uint64_t iter = __atomic_fetch_add(w->next, 1, __ATOMIC_RELAXED);

		if (iter >= w->iters || w->nfail > 100)
			break;
		fz_one(w, &z, iter);
		w->done++;
	}
	w->ms_total = vu_now_ms() - t0;
	mig_buf_free(&z.m);
	__atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

/* Splats in the kernel log since @fd was opened (non-blocking /dev/kmsg). */
static int kmsg_scan(int fd, uint64_t *lines, uint64_t *lost, char *first,
		     size_t len)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "general protection", "refcount_t",
		"list_add corruption", "lockdep", "hung_task", "kmemleak",
		"UBSAN", "KASAN", "circular locking", "INFO: task",
	};
	char rec[2048];
	int found = 0;

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);

		if (n < 0 && errno == EPIPE) {
			(*lost)++;
			continue;
		}
		if (n <= 0)
			break;
		rec[n] = '\0';
		(*lines)++;
		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (strstr(rec, bad[i])) {
				if (!found++ && first && !first[0]) {
					size_t l = strlen(rec);

					l = l < len - 1 ? l : len - 1;
					memcpy(first, rec, l);
					first[l] = '\0';
				}
				break;
			}
		}
	}
	return found;
}
/*
 * A hostile or careless user pokes the migration block through BAR0 while
 * a pre-copy session runs: every variant must leave the migration intact
 * (B ends with A's SRAM as it was at STOP_COPY), because the block is
 * hidden and a function reset (CTRL.RESET) keeps tracking correct.
 */
enum hostile_act {
	H_READ_DIRTY,		/* read-and-clear SRAM_DIRTY_DATA, many times */
	H_WRITE_DIRTY,		/* SRAM_DIRTY_CTRL := 0, SRAM_DIRTY_INDEX := 5 */
	H_WRITE_WINDOW,		/* state window: OFFSET, DATA, CMD DISCARD */
	H_CTRL_RESET,		/* a guest driver resets the function on load */
};

FIXTURE(hostile) {
	struct pair_env f;
};

FIXTURE_VARIANT(hostile) {
	enum hostile_act act;
};

FIXTURE_VARIANT_ADD(hostile, read_dirty_data) { .act = H_READ_DIRTY };
FIXTURE_VARIANT_ADD(hostile, write_dirty_regs) { .act = H_WRITE_DIRTY };
FIXTURE_VARIANT_ADD(hostile, write_state_window) { .act = H_WRITE_WINDOW };
FIXTURE_VARIANT_ADD(hostile, ctrl_reset) { .act = H_CTRL_RESET };

FIXTURE_SETUP(hostile)
{
	pair_setup(_metadata, &self->f, false);
}

FIXTURE_TEARDOWN(hostile)
{
	pair_teardown(&self->f);
}

/*
 * A 4-byte read or write of BAR0 at @off through the device fd itself, not
 * vfio_util's checked accessors (which stop at the region's size before
 * the kernel sees it): 0, or -errno.
 */
static int bar0_raw(struct vu_device *d, uint64_t off, uint32_t *val,
		    bool write)
{
	uint64_t pos = d->regions[REFACCEL_BAR_REGS].info.offset + off;
	ssize_t n;

	n = write ? pwrite(d->fd, val, 4, pos) : pread(d->fd, val, 4, pos);
	if (n < 0)
		return -errno;
	return n == 4 ? 0 : -EIO;
}

/* An access of the hidden block must fail as beyond the region. */
#define EXPECT_HIDDEN(d, reg, write) do {				\
	uint32_t _v = 0xdeadbeef;					\
									\
	EXPECT_EQ(-EINVAL, bar0_raw(d, reg, &_v, write))		\
		TH_LOG("%s of hidden BAR0 0x%x not refused",		\
		       (write) ? "write" : "read", (unsigned int)(reg));	\
} while (0)

static void hostile_act(struct __test_metadata *_metadata, struct mig_env *a,
			enum hostile_act act)
{
	struct vu_device *d = &a->dev.vdev;

	switch (act) {
	case H_READ_DIRTY:
		for (int i = 0; i < 64; i++)
			EXPECT_HIDDEN(d, REFACCEL_REG_SRAM_DIRTY_DATA, false);
		/* the mirror never clears: the bitmap word is not mirrored */
		EXPECT_EQ(0u, ra_rd(&a->dev,
				    REFACCEL_MIG_MIRROR(REFACCEL_REG_SRAM_DIRTY_DATA)));
		break;
	case H_WRITE_DIRTY:
		EXPECT_HIDDEN(d, REFACCEL_REG_SRAM_DIRTY_CTRL, true);
		EXPECT_HIDDEN(d, REFACCEL_REG_SRAM_DIRTY_INDEX, true);
		/* the mirror is read-only */
		ra_wr(&a->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_SRAM_DIRTY_CTRL), 0);
		EXPECT_EQ((uint32_t)REFACCEL_SRAM_DIRTY_ENABLE,
			  ra_rd(&a->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_SRAM_DIRTY_CTRL)))
			TH_LOG("the user switched SRAM dirty tracking off");
		break;
	case H_WRITE_WINDOW:
		EXPECT_HIDDEN(d, REFACCEL_REG_MIG_STATE_OFFSET, true);
		for (int i = 0; i < 16; i++)
			EXPECT_HIDDEN(d, REFACCEL_REG_MIG_STATE_DATA, true);
		EXPECT_HIDDEN(d, REFACCEL_REG_MIG_CMD, true);
		EXPECT_HIDDEN(d, REFACCEL_REG_MIG_STATE_DATA, false);
		break;
	case H_CTRL_RESET:
		ra_wr(&a->dev, REFACCEL_REG_CTRL, REFACCEL_CTRL_RESET);
		break;
	}
}

TEST_F_TIMEOUT(hostile, precopy_survives, T_TIMEOUT)
{
	struct pair_env *f = &self->f;
	struct mig_env *a = A(f), *b = B(f);
	struct mig_buf s = { 0 };
	uint8_t page[ENV_PAGE];
	uint64_t rng = 777 + variant->act;
	bool eof;
	int fd = -1;

	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_RUNNING, NULL));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_PRE_COPY, &fd));
	ASSERT_EQ(0, mig_read_stream(fd, &s, 1 << 16, &eof));
	/* dirty pages the next pass must send, then the user strikes */
	for (int i = 0; i < 8; i++) {
		ra_rand_fill(page, sizeof(page), &rng);
		ASSERT_EQ(0, ra_sram_write(&a->dev, (ra_rand(&rng) %
				(a->lim.mem_size / ENV_PAGE)) * ENV_PAGE,
				page, sizeof(page)));
	}
	hostile_act(_metadata, a, variant->act);
	ra_rand_fill(page, sizeof(page), &rng);
	ASSERT_EQ(0, ra_sram_write(&a->dev, 3 * ENV_PAGE, page, sizeof(page)));
	ASSERT_EQ(0, mig_read_stream(fd, &s, 4093, &eof));
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_PRE_COPY_P2P, NULL));
	finish_and_load(_metadata, f, fd, &s,
			"after the user poked the migration block");
	mig_buf_free(&s);
	ASSERT_EQ(0, env_reset(b));
	ASSERT_EQ(0, env_reset(a));
}

/* The user clears MIG_CTRL.QUIESCE in RUNNING_P2P: the device stays quiet. */
TEST_F_TIMEOUT(hostile, unquiesce_refused, T_TIMEOUT)
{
	struct mig_env *a = A(&self->f);

	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	EXPECT_HIDDEN(&a->dev.vdev, REFACCEL_REG_MIG_CTRL, true);
	ra_wr(&a->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL), 0);
	EXPECT_NE(0u, ra_rd(&a->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("the user unquiesced the device");
	EXPECT_NE(0u, ra_rd(&a->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS)) &
		  REFACCEL_MIG_STATUS_QUIESCED);
	ASSERT_EQ(0, mig_set_state(&a->dev.vdev, S_RUNNING, NULL));
	EXPECT_EQ(0u, ra_rd(&a->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)));
	ASSERT_EQ(0, env_work(a));
}

/*
 * REGION_INFO, read/write, mmap and ioeventfd keep the user out of the
 * migration block: BAR0 is its lower half, mappable whole (libvfio and
 * QEMU map a region with the MMAP flag in one piece), and nothing reaches
 * beyond it.  No VMM maps the MSI-X BAR.  Its own fixture: one run, not
 * one per hostile act.
 */
FIXTURE(bar0) {
	struct pair_env f;
};

FIXTURE_SETUP(bar0)
{
	pair_setup(_metadata, &self->f, false);
}

FIXTURE_TEARDOWN(bar0)
{
	pair_teardown(&self->f);
}

TEST_F_TIMEOUT(bar0, user_half, T_TIMEOUT)
{
	struct vu_device *d = &A(&self->f)->dev.vdev;
	struct vu_region *r = &d->regions[REFACCEL_BAR_REGS];
	long pg = sysconf(_SC_PAGESIZE);
	struct vfio_device_ioeventfd ev = {
		.argsz = sizeof(ev),
		.flags = VFIO_DEVICE_IOEVENTFD_32,
		.data = 0,
	};
	uint32_t v[2];
	int efd;
	void *p;

	ASSERT_TRUE(r->valid);
	EXPECT_EQ((uint64_t)REFACCEL_REGS_USER_SIZE, r->info.size);
	EXPECT_NE(0u, r->info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_EQ(0u, r->info.flags & VFIO_REGION_INFO_FLAG_CAPS)
		TH_LOG("BAR0 has capabilities (a sparse mmap?)");

	/* the whole region in one mapping, the way libvfio maps it */
	p = mmap(NULL, r->info.size, PROT_READ, MAP_SHARED, d->fd,
		 r->info.offset);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("whole-BAR0 mmap: %s", strerror(errno));
	EXPECT_EQ((uint32_t)REFACCEL_ID_MAGIC, *(volatile uint32_t *)p);
	EXPECT_EQ(ra_rd(&A(&self->f)->dev,
			REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)),
		  *(volatile uint32_t *)((char *)p +
			REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)));
	munmap(p, r->info.size);

	/* the block's page, and more than the region */
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, d->fd,
		 r->info.offset + REFACCEL_MIG_BLOCK_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, pg);
	else
		EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 2 * r->info.size, PROT_READ, MAP_SHARED, d->fd,
		 r->info.offset);
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, 2 * r->info.size);

	/* read/write: refused beyond the end, cut short across it */
	EXPECT_HIDDEN(d, REFACCEL_REG_MIG_STATUS, false);
	EXPECT_HIDDEN(d, REFACCEL_REG_MIG_CTRL, true);
	EXPECT_EQ(4, pread(d->fd, v, sizeof(v),
			   r->info.offset + REFACCEL_REGS_USER_SIZE - 4));

	/* ioeventfd: none inside or across the block, one below it */
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, efd);
	ev.fd = efd;
	ev.offset = r->info.offset + REFACCEL_REG_MIG_CTRL;
	EXPECT_EQ(-1, ioctl(d->fd, VFIO_DEVICE_IOEVENTFD, &ev))
		TH_LOG("ioeventfd on MIG_CTRL accepted");
	EXPECT_EQ(EINVAL, errno);
	ev.offset = r->info.offset + REFACCEL_REGS_USER_SIZE - 4;
	ev.flags = VFIO_DEVICE_IOEVENTFD_64;
	EXPECT_EQ(-1, ioctl(d->fd, VFIO_DEVICE_IOEVENTFD, &ev))
		TH_LOG("ioeventfd across the block's start accepted");
	ev.offset = r->info.offset + REFACCEL_REG_TEST_FLAGS;
	ev.flags = VFIO_DEVICE_IOEVENTFD_32;
	ev.data = 0;
	EXPECT_EQ(0, ioctl(d->fd, VFIO_DEVICE_IOEVENTFD, &ev))
		TH_LOG("ioeventfd below the block: %s", strerror(errno));
	ev.fd = -1;		/* and remove it again */
	EXPECT_EQ(0, ioctl(d->fd, VFIO_DEVICE_IOEVENTFD, &ev));
	close(efd);

	/* The MSI-X BAR: read/write, never mapped (QEMU 10 sub-page bug) */
	r = &d->regions[REFACCEL_BAR_MSIX];
	ASSERT_TRUE(r->valid);
	EXPECT_EQ(0u, r->info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_NE(0u, r->info.flags & VFIO_REGION_INFO_FLAG_READ);
	p = mmap(NULL, r->info.size, PROT_READ, MAP_SHARED, d->fd,
		 r->info.offset);
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, r->info.size);
}


FIXTURE(fuzz) {
	struct pair_env f;
};

FIXTURE_SETUP(fuzz)
{
	pair_setup(_metadata, &self->f, true);
}

FIXTURE_TEARDOWN(fuzz)
{
	pair_teardown(&self->f);
}

TEST_F_TIMEOUT(fuzz, mutated_streams, 3000)
{
	struct pair_env *f = &self->f;
	uint64_t seed = env_u64("REFACCEL_FUZZ_SEED", 0);
	uint64_t iters = env_u64("REFACCEL_FUZZ_ITERS", 10000);
	uint64_t only = env_u64("REFACCEL_FUZZ_ONLY", ~0ull);
	struct fz_worker w[MAX_DEVS];
	uint64_t next = 0, hist[O_NR] = { 0 }, done = 0, resets = 0, full = 0;
	uint64_t health = 0, klines = 0, klost = 0, t0;
	char splat[512] = "";
	int nw = f->ndev, kfd, splats = 0, nfail = 0;

	if (!seed)
		seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	/*
	 * One destination at a time by default: under TCG two workers are
	 * slower (18 vs 12 ms an iteration, measured), and concurrent FLRs of
	 * one function with MMIO on another hit a QEMU MTTCG assertion.
	 */
	if (env_u64("REFACCEL_FUZZ_WORKERS", 1) < (uint64_t)nw)
		nw = (int)env_u64("REFACCEL_FUZZ_WORKERS", 1);
	if (nw < 1)
		nw = 1;
	if (only != ~0ull) {
		next = only;
		iters = only + 1;
		nw = 1;
	}
	TH_LOG("fuzz seed 0x%llx, %llu iterations on %d functions (REFACCEL_FUZZ_SEED=0x%llx to repeat)",
	       (unsigned long long)seed, (unsigned long long)iters, nw,
	       (unsigned long long)seed);
	ksft_print_msg("fuzz seed 0x%llx\n", (unsigned long long)seed);

	/* every function is a destination; A's stream is the reference */
	kfd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kfd >= 0)
		lseek(kfd, 0, SEEK_END);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < nw; i++) {
		w[i].e = &f->dev[i];
		w[i].g = &f->g;
		w[i].seed = seed;
		w[i].iters = iters;
		w[i].next = &next;
		w[i].verbose = only != ~0ull;
		w[i].cur = calloc(1, f->dev[i].lim.mem_size);
		w[i].img = calloc(1, f->dev[i].lim.mem_size);
		w[i].tmp = calloc(1, f->dev[i].lim.mem_size);
		ASSERT_TRUE(w[i].cur && w[i].img && w[i].tmp);
		ASSERT_EQ(0, fz_reset(&w[i], false));
	}
	t0 = vu_now_ms();
	for (int i = 0; i < nw; i++)
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL, fz_thread, &w[i]));
	for (;;) {
		int finished = 0;

		splats += kmsg_scan(kfd, &klines, &klost, splat, sizeof(splat));
		for (int i = 0; i < nw; i++)
			finished += __atomic_load_n(&w[i].finished,
						    __ATOMIC_ACQUIRE);
		if (finished == nw)
			break;
		usleep(200000);
	}
	for (int i = 0; i < nw; i++)
		pthread_join(w[i].thread, NULL);
	splats += kmsg_scan(kfd, &klines, &klost, splat, sizeof(splat));
	t0 = vu_now_ms() - t0;

	for (int i = 0; i < nw; i++) {
		for (int k = 0; k < O_NR; k++)
			hist[k] += w[i].hist[k];
		done += w[i].done;
		resets += w[i].resets;
		full += w[i].full_checks;
		health += w[i].health;
		nfail += w[i].nfail;
		for (int k = 0; k < w[i].nfail && k < FZ_MAX_MSG; k++)
			ksft_print_msg("FAIL %s\n", w[i].msg[k]);
		ksft_print_msg("worker %s: %llu iterations in %llu ms\n",
			       w[i].e->dev.vdev.bdf,
			       (unsigned long long)w[i].done,
			       (unsigned long long)w[i].ms_total);
	}
	ksft_print_msg("fuzz: %llu iterations in %llu ms (%.2f ms each, %d workers), %llu resets, %llu full SRAM checks, %llu health checks\n",
		       (unsigned long long)done, (unsigned long long)t0,
		       done ? (double)t0 / done : 0.0, nw,
		       (unsigned long long)resets, (unsigned long long)full,
		       (unsigned long long)health);
	for (int k = 0; k < O_NR; k++)
		if (hist[k])
			ksft_print_msg("fuzz outcome %-30s %llu\n", o_names[k],
				       (unsigned long long)hist[k]);
	ksft_print_msg("kernel log: %llu lines read, %llu overruns, %d splats\n",
		       (unsigned long long)klines, (unsigned long long)klost,
		       splats);
	if (kfd >= 0)
		close(kfd);
	EXPECT_EQ(0, splats) TH_LOG("kernel splat: %s", splat);
	EXPECT_EQ(0, nfail) TH_LOG("%d failed iterations (seed 0x%llx)", nfail,
				   (unsigned long long)seed);
	EXPECT_EQ(iters - (only != ~0ull ? only : 0), done);
	EXPECT_EQ(0u, hist[O_OTHER]);

	/* every destination still migrates */
	for (int i = 0; i < nw; i++) {
		struct attempt at;

		ASSERT_EQ(0, env_reset(w[i].e));
		ASSERT_EQ(0, env_work(w[i].e));
		ASSERT_EQ(0, mig_set_state(&w[i].e->dev.vdev, S_STOP, NULL));
		load_attempt(w[i].e, f->g.s.p, f->g.s.len, 1 << 20, 0, &at);
		EXPECT_EQ(0, at.write_err);
		EXPECT_EQ(0, at.stop_err);
		expect_sram(_metadata, w[i].e, f->g.img, "after the fuzz");
		free(w[i].cur);
		free(w[i].img);
		free(w[i].tmp);
	}
}

TEST_HARNESS_MAIN
