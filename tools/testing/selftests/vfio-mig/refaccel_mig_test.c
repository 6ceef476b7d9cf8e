// SPDX-License-Identifier: GPL-2.0-only
/*
 * End-to-end migration kselftests: the whole device moves from function A
 * to function B through the VFIO migration uAPI, the way a VMM drives it,
 * while work is in flight; B must complete every descriptor exactly once
 * with correct results and hold the same SRAM.  Also PRE_COPY convergence
 * and the stream sizes it saves (printed as "metric:" lines).
 *
 * Also a doorbell (SQ_TAIL, CQ_HEAD) rung while A is quiesced or stopped
 * (RUNNING_P2P, PRE_COPY_P2P, STOP, STOP_COPY): A neither performs nor
 * drops it, the stream carries it, and it takes effect on B (db_*).
 *
 * Needs two functions bound to refaccel-vfio-pci (else SKIP).  A and B
 * share one IOMMU address space, as two devices of one VM would, so B
 * finds A's rings and buffers at the same IOVAs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_util.h"
#include "refaccel_lib.h"

#define PAGE		4096u
#define CHUNK		(16u << 10)	/* bytes per descriptor */
#define NDESC		40		/* fits the 64-entry CQ unreaped */
#define SLOW_OP_NS	20000000u	/* 20 ms per op: work stays in flight */
#define TAG_BASE	0x6d69670000000000ull
#define STREAM_CHUNK	(64u << 10)

FIXTURE(mig) {
	struct ra_found found;
	struct vu_iommu iommu;
	struct ra_dev a, b;
	struct ra_ring ring;
	struct ra_ring clk;		/* B's own ring, for db_* clock NOPs */
	struct vu_dma src, dst;
	uint8_t *sram_a, *sram_b;
	uint32_t sram_size;
	uint64_t rng;
	bool testctl;
	int tmo;
	bool iommu_ok, a_open, b_open;
};

FIXTURE_SETUP(mig)
{
	uint64_t flags = 0;
	int i, nvar = 0, idx[2] = { -1, -1 }, ret;

	self->tmo = ra_timeout_ms();
	self->rng = 0x9e3779b97f4a7c15ull;
	if (geteuid())
		SKIP(return, "needs root (VFIO device access)");
	if (!ra_discover(&self->found))
		SKIP(return, "%s", self->found.why);
	for (i = 0; i < self->found.n && nvar < 2; i++)
		if (ra_driver_is_variant(self->found.driver[i]))
			idx[nvar++] = i;
	if (nvar < 2)
		SKIP(return, "needs two functions bound to refaccel-vfio-pci, found %d",
		     nvar);

	ret = vu_iommu_init(&self->iommu, vu_backend_from_env());
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend",
		     vu_backend_name(vu_backend_from_env()));
	ASSERT_EQ(0, ret);
	self->iommu_ok = true;
	ASSERT_EQ(0, ra_open(&self->iommu, self->found.bdf[idx[0]], &self->a));
	self->a_open = true;
	ASSERT_EQ(0, ra_open(&self->iommu, self->found.bdf[idx[1]], &self->b));
	self->b_open = true;
	ASSERT_EQ(self->a.sram_size, self->b.sram_size)
		TH_LOG("A and B must have the same SRAM size to be compatible");
	self->sram_size = self->a.sram_size;

	ret = mig_get_flags(&self->a.vdev, &flags);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION on the variant: %s",
				 strerror(-ret));
	ASSERT_EQ((uint64_t)(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
			     VFIO_MIGRATION_PRE_COPY), flags);

	ASSERT_EQ(0, ra_reset(&self->a));
	ASSERT_EQ(0, ra_reset(&self->b));
	self->testctl = ra_rd(&self->a, REFACCEL_REG_CAPS) & REFACCEL_CAP_TESTCTL;

	ASSERT_EQ(0, ra_ring_setup(&self->a, &self->iommu, &self->ring, 64, 64));
	ASSERT_EQ(0, ra_enable(&self->a, self->tmo));
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, NDESC * CHUNK, VU_DMA_RW,
				  &self->src));
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, NDESC * CHUNK, VU_DMA_RW,
				  &self->dst));
	self->sram_a = malloc(self->sram_size);
	self->sram_b = malloc(self->sram_size);
	ASSERT_NE(NULL, self->sram_a);
	ASSERT_NE(NULL, self->sram_b);
}

FIXTURE_TEARDOWN(mig)
{
	if (self->a_open && ra_reset(&self->a))
		ra_wr(&self->a, REFACCEL_REG_CTRL, 0);
	if (self->b_open && ra_reset(&self->b))
		ra_wr(&self->b, REFACCEL_REG_CTRL, 0);
	vu_dma_free(&self->iommu, &self->src);
	vu_dma_free(&self->iommu, &self->dst);
	ra_ring_free(&self->ring);
	ra_ring_free(&self->clk);
	if (self->b_open)
		ra_close(&self->b);
	if (self->a_open)
		ra_close(&self->a);
	if (self->iommu_ok)
		vu_iommu_cleanup(&self->iommu);
	free(self->sram_a);
	free(self->sram_b);
}

static void sram_snapshot(struct __test_metadata *_metadata, struct ra_dev *d,
			  uint8_t *buf, uint32_t size)
{
	ASSERT_EQ(0, ra_sram_read(d, 0, buf, size));
}

static long first_diff(const uint8_t *x, const uint8_t *y, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

/* Descriptor i of the mixed workload: COPY, FILL, CRC32C, LOAD in turn. */
static struct refaccel_desc work_desc(FIXTURE_DATA(mig) *self, int i)
{
	uint64_t src = self->src.iova + (uint64_t)i * CHUNK;
	uint64_t dst = self->dst.iova + (uint64_t)i * CHUNK;
	uint64_t tag = TAG_BASE | i;

	switch (i % 4) {
	case 0:
		return ra_desc_copy(tag, src, dst, CHUNK);
	case 1:
		return ra_desc_fill(tag, dst, CHUNK - 4, 0xc0de0000u | i);
	case 2:
		return ra_desc_crc32c(tag, src, CHUNK, i);
	default:
		return ra_desc_load(tag, src, (uint64_t)i * CHUNK, CHUNK);
	}
}

/* Check completion and side effect of work descriptor i. */
static void check_work(struct __test_metadata *_metadata,
		       FIXTURE_DATA(mig) *self, int i,
		       const struct refaccel_cpl *cpl)
{
	const uint8_t *src = (uint8_t *)self->src.va + (size_t)i * CHUNK;
	const uint8_t *dst = (uint8_t *)self->dst.va + (size_t)i * CHUNK;
	uint8_t *ref = malloc(CHUNK);

	ASSERT_NE(NULL, ref);
	ASSERT_EQ(REFACCEL_CPL_OK, cpl->status)
		TH_LOG("descriptor %d: status %s", i, ra_cpl_status_name(cpl->status));
	switch (i % 4) {
	case 0:
		ASSERT_EQ(-1, first_diff(src, dst, CHUNK)) TH_LOG("COPY %d", i);
		break;
	case 1:
		ra_ref_fill(ref, CHUNK - 4, 0xc0de0000u | i);
		ASSERT_EQ(-1, first_diff(ref, dst, CHUNK - 4)) TH_LOG("FILL %d", i);
		break;
	case 2:
		ASSERT_EQ(ra_ref_crc32c(i, src, CHUNK), cpl->result)
			TH_LOG("CRC32C %d", i);
		break;
	default:
		ASSERT_EQ(0, ra_sram_read(&self->b, (uint64_t)i * CHUNK, ref, CHUNK));
		ASSERT_EQ(-1, first_diff(src, ref, CHUNK))
			TH_LOG("LOAD %d: B's SRAM does not hold the data", i);
	}
	free(ref);
}

/*
 * Save A: optionally through PRE_COPY (initial pass read while running),
 * then STOP_COPY to the end.  Returns the byte count of the STOP_COPY part
 * in *final_bytes.  A ends in STOP.
 */
static void save_a(struct __test_metadata *_metadata, FIXTURE_DATA(mig) *self,
		   bool precopy, struct mig_buf *out, size_t *final_bytes)
{
	uint64_t initial, dirty;
	size_t before;
	bool eof;
	int fd, ret;

	if (precopy) {
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_PRE_COPY, &fd));
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
		ASSERT_LT(0u, initial) TH_LOG("PRE_COPY must start with initial bytes");
		ASSERT_EQ(0, mig_read_stream(fd, out, STREAM_CHUNK, &eof));
		ASSERT_FALSE(eof) TH_LOG("PRE_COPY read must end in ENOMSG, not EOF");
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
		ret = mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP_COPY,
				    NULL);
		ASSERT_EQ(0, ret) TH_LOG("PRE_COPY_P2P -> STOP_COPY: %s",
					 strerror(-ret));
	} else {
		ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP,
					   NULL));
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_STOP_COPY, &fd));
		ASSERT_LE(0, fd);
	}
	before = out->len;
	ASSERT_EQ(0, mig_read_stream(fd, out, STREAM_CHUNK, &eof));
	ASSERT_TRUE(eof) TH_LOG("STOP_COPY must end in EOF");
	*final_bytes = out->len - before;
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP, NULL));
}

static void migrate_with_work(struct __test_metadata *_metadata,
			      FIXTURE_DATA(mig) *self, bool precopy)
{
	struct mig_buf stream = { 0 };
	struct refaccel_cpl cpl;
	uint32_t done_a, fetched_a, state;
	uint8_t seen[NDESC] = { 0 };
	size_t final_bytes;
	int i, got, ret;

	if (!self->testctl)
		SKIP(return, "needs the model's testctl=on to slow ops down so work is in flight");
	ra_wr(&self->a, REFACCEL_REG_TEST_OP_LATENCY, SLOW_OP_NS);
	ra_rand_fill(self->src.va, NDESC * CHUNK, &self->rng);
	memset(self->dst.va, 0, NDESC * CHUNK);
	for (i = 0; i < NDESC; i++) {
		struct refaccel_desc d = work_desc(self, i);

		ASSERT_EQ(0, ra_sq_push(&self->ring, &d));
	}
	ra_sq_doorbell(&self->ring);
	/*
	 * Let A fetch (not finish) some work, so both fetched-in-flight and
	 * still-queued descriptors must move.  A condition, not a delay.
	 */
	for (i = 0; i < self->tmo && !ra_rd(&self->a, REFACCEL_REG_CNT_FETCHED); i++)
		ra_sleep_ms(1);
	ASSERT_NE(0u, ra_rd(&self->a, REFACCEL_REG_CNT_FETCHED));

	save_a(_metadata, self, precopy, &stream, &final_bytes);

	/* A is stopped: whatever it did not finish must now move to B. */
	done_a = ra_rd(&self->a, REFACCEL_REG_CNT_COMPLETED);
	fetched_a = ra_rd(&self->a, REFACCEL_REG_CNT_FETCHED);
	TH_LOG("metric: at STOP A had completed %u, fetched %u of %d descriptors; stream %zu bytes (%s part %zu)",
	       done_a, fetched_a, NDESC, stream.len,
	       precopy ? "STOP_COPY" : "whole", final_bytes);
	ASSERT_LT(done_a, fetched_a)
		TH_LOG("no fetched descriptor was in flight: the test proves less");
	ASSERT_LT(fetched_a, (uint32_t)NDESC)
		TH_LOG("no descriptor was still queued: the test proves less");
	sram_snapshot(_metadata, &self->a, self->sram_a, self->sram_size);

	ret = mig_load(&self->b.vdev, stream.p, stream.len, STREAM_CHUNK);
	ASSERT_EQ(0, ret) TH_LOG("load into B: %s", strerror(-ret));
	ASSERT_EQ(0, mig_get_state(&self->b.vdev, &state));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_STOP, state);
	sram_snapshot(_metadata, &self->b, self->sram_b, self->sram_size);
	ASSERT_EQ(-1, first_diff(self->sram_a, self->sram_b, self->sram_size))
		TH_LOG("B's SRAM differs from A's after load");

	ASSERT_EQ(0, mig_set_state(&self->b.vdev, VFIO_DEVICE_STATE_RUNNING, NULL));
	/* The ring now belongs to B: reaping rings B's CQ_HEAD doorbell. */
	self->ring.dev = &self->b;
	for (got = 0; got < NDESC; got++) {
		ret = ra_wait_cpl(&self->ring, &cpl, self->tmo);
		if (ret)
			ra_dump(&self->b, "waiting for migrated work");
		ASSERT_EQ(0, ret) TH_LOG("after %d of %d completions: %s", got,
					 NDESC, strerror(-ret));
		i = (int)(cpl.tag & 0xffff);
		ASSERT_EQ(TAG_BASE, cpl.tag & ~0xffffull) TH_LOG("foreign tag");
		ASSERT_LT(i, NDESC);
		ASSERT_EQ(0, seen[i]) TH_LOG("descriptor %d completed twice", i);
		seen[i] = 1;
		check_work(_metadata, self, i, &cpl);
	}
	/* Nothing more may come, and A stayed silent after STOP. */
	ra_sleep_ms(100);
	ASSERT_EQ(0, ra_reap(&self->ring, &cpl)) TH_LOG("extra completion tag %llx",
						  (unsigned long long)cpl.tag);
	ASSERT_EQ(done_a, ra_rd(&self->a, REFACCEL_REG_CNT_COMPLETED));
	ASSERT_EQ((uint32_t)NDESC - done_a,
		  ra_rd(&self->b, REFACCEL_REG_CNT_COMPLETED) - done_a)
		TH_LOG("B's counters continue A's");
	mig_buf_free(&stream);
}

/* STOP_COPY only, with descriptors executing and queued. */
TEST_F_TIMEOUT(mig, stop_copy_with_work_in_flight, 600)
{
	migrate_with_work(_metadata, self, false);
}

/* PRE_COPY first (SRAM moves while running), then STOP_COPY. */
TEST_F_TIMEOUT(mig, pre_copy_with_work_in_flight, 600)
{
	migrate_with_work(_metadata, self, true);
}

/*
 * End a PRE_COPY session of A the way a VMM does: through PRE_COPY_P2P to
 * STOP_COPY on the same fd, read to EOF, close, STOP.  Returns the bytes
 * the STOP_COPY part added to @b.
 */
static size_t finish_pre_copy(struct __test_metadata *_metadata,
			      FIXTURE_DATA(mig) *self, int fd, struct mig_buf *b)
{
	size_t before = b->len;
	bool eof;

	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(0, mig_read_stream(fd, b, STREAM_CHUNK, &eof));
	ASSERT_TRUE(eof) TH_LOG("STOP_COPY must end in EOF");
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP, NULL));
	return b->len - before;
}

/*
 * An idle device converges: PRECOPY_INFO announces exactly the initial
 * pass it then sends (header and every SRAM page once); three CPU writes
 * through the BAR show up as dirty bytes and are resent as exactly those
 * three pages with the bytes written; then nothing is dirty, and the
 * final STOP_COPY carries no page at all, only STATE and END (at most
 * MIG_STATE_MAX bytes of state), well under 5% of a cold STOP_COPY.
 */
TEST_F_TIMEOUT(mig, pre_copy_idle_converges, 600)
{
	struct mig_buf cold = { 0 }, pre = { 0 };
	uint64_t initial, dirty, initial0;
	const uint64_t rec_over = sizeof(struct vmig_rec_hdr) + sizeof(uint64_t);
	uint32_t state_max = ra_rd(&self->a, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATE_MAX));
	size_t final_bytes, len_init, len_dirty, tail_max;
	static uint8_t page[3][PAGE];
	struct mig_rec_ref *recs;
	struct mig_rec_span span;
	int fd, p, nrecs, max_recs;
	bool eof;

	ra_rand_fill(self->sram_a, self->sram_size, &self->rng);
	ASSERT_EQ(0, ra_sram_write(&self->a, 0, self->sram_a, self->sram_size));

	ASSERT_EQ(0, mig_save_stop_copy(&self->a.vdev, &cold));
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_RUNNING, NULL));

	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, mig_precopy_info(fd, &initial0, &dirty));
	ASSERT_LE(self->sram_size, initial0);
	ASSERT_EQ(0u, dirty) TH_LOG("idle device: nothing dirty yet");
	ASSERT_EQ(0, mig_read_stream(fd, &pre, STREAM_CHUNK, &eof));
	ASSERT_FALSE(eof);
	len_init = pre.len;
	EXPECT_EQ(initial0, (uint64_t)len_init)
		TH_LOG("PRECOPY_INFO announced %llu initial bytes, the pass sent %zu",
		       (unsigned long long)initial0, len_init);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0u, initial);
	ASSERT_EQ(0u, dirty);

	/* Three CPU writes through the BAR2 mapping: three dirty pages. */
	for (p = 0; p < 3; p++) {
		ra_rand_fill(page[p], PAGE, &self->rng);
		ASSERT_EQ(0, ra_sram_write(&self->a, (uint64_t)(5 + 7 * p) * PAGE,
					   page[p], PAGE));
	}
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0u, initial);
	ASSERT_LE(3 * PAGE, dirty) TH_LOG("CPU writes to SRAM not tracked");
	EXPECT_GE(3 * (PAGE + rec_over), dirty)
		TH_LOG("dirty bytes %llu: more than the three pages written",
		       (unsigned long long)dirty);
	ASSERT_EQ(0, mig_read_stream(fd, &pre, STREAM_CHUNK, &eof));
	len_dirty = pre.len - len_init;
	EXPECT_EQ(3 * (PAGE + rec_over), len_dirty)
		TH_LOG("the dirty pass must resend exactly the three pages");
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0u, dirty) TH_LOG("dirty bytes must drain on an idle device");

	final_bytes = finish_pre_copy(_metadata, self, fd, &pre);

	TH_LOG("metric: SRAM %u bytes; cold STOP_COPY %zu bytes; PRE_COPY initial %llu; after pre-copy, idle STOP_COPY %zu bytes (%.2f%% of cold)",
	       self->sram_size, cold.len, (unsigned long long)initial0,
	       final_bytes, 100.0 * final_bytes / cold.len);
	ASSERT_LT(final_bytes * 20, cold.len)
		TH_LOG("STOP_COPY after pre-copy of an idle device must be under 5%% of a cold one");

	/* What each part of the stream carries, record by record. */
	max_recs = (int)(pre.len / sizeof(struct vmig_rec_hdr)) + 1;
	recs = calloc(max_recs, sizeof(*recs));
	ASSERT_NE(NULL, recs);
	nrecs = mig_stream_index(pre.p, pre.len, recs, max_recs);
	ASSERT_LT(0, nrecs) TH_LOG("the pre-copied stream cannot be indexed");
	ASSERT_EQ(pre.len, recs[nrecs - 1].off + recs[nrecs - 1].size);

	span = mig_stream_span(recs, nrecs, 0, len_init);
	EXPECT_EQ(span.n, span.mem) TH_LOG("initial pass: only MEM records");
	EXPECT_EQ(self->sram_size, span.mem_bytes)
		TH_LOG("initial pass: every SRAM page once");

	span = mig_stream_span(recs, nrecs, len_init, len_init + len_dirty);
	EXPECT_EQ(3, span.mem) TH_LOG("dirty pass: %d records", span.n);
	EXPECT_EQ(3, span.n);
	for (int i = 0, k = 0; i < nrecs && k < 3; i++) {
		const uint8_t *pl = pre.p + recs[i].off + sizeof(struct vmig_rec_hdr);
		uint64_t off;

		if (recs[i].off < len_init || recs[i].off >= len_init + len_dirty)
			continue;
		memcpy(&off, pl, sizeof(off));
		EXPECT_EQ((uint64_t)(5 + 7 * k) * PAGE, off)
			TH_LOG("dirty record %d: offset", k);
		EXPECT_EQ(sizeof(struct vmig_rec_hdr) + sizeof(uint64_t) + PAGE,
			  recs[i].size) TH_LOG("dirty record %d: one page", k);
		if (recs[i].size == sizeof(struct vmig_rec_hdr) + sizeof(uint64_t) + PAGE) {
			EXPECT_EQ(0, memcmp(pl + sizeof(off), page[k], PAGE))
				TH_LOG("dirty record %d: not the bytes written", k);
		}
		k++;
	}

	/* The idle STOP_COPY part: no page, one STATE, one END. */
	span = mig_stream_span(recs, nrecs, len_init + len_dirty, pre.len);
	tail_max = 2 * sizeof(struct vmig_rec_hdr) + state_max +
		   sizeof(struct vmig_rec_end);
	EXPECT_EQ(0, span.mem) TH_LOG("idle STOP_COPY resent %d MEM records", span.mem);
	EXPECT_EQ(1, span.state);
	EXPECT_EQ(1, span.end);
	EXPECT_EQ(2, span.n);
	EXPECT_GE(tail_max, final_bytes)
		TH_LOG("idle STOP_COPY %zu bytes: more than STATE (state_max %u) and END",
		       final_bytes, state_max);
	free(recs);

	/* The pre-copied stream is complete and correct: B gets A's SRAM. */
	sram_snapshot(_metadata, &self->a, self->sram_a, self->sram_size);
	ASSERT_EQ(0, mig_load(&self->b.vdev, pre.p, pre.len, STREAM_CHUNK));
	sram_snapshot(_metadata, &self->b, self->sram_b, self->sram_size);
	ASSERT_EQ(-1, first_diff(self->sram_a, self->sram_b, self->sram_size));
	mig_buf_free(&cold);
	mig_buf_free(&pre);
}

/*
 * The MEM records of @b that start in [@from, @to) are exactly the chunks
 * @first .. @last - 1 the LOADs wrote: chunk i at SRAM offset 3 * i *
 * CHUNK, one record of one chunk each, in order, with the bytes the LOAD
 * read from src.  Returns the number of records of other types there.
 */
static int expect_chunk_records(struct __test_metadata *_metadata,
				FIXTURE_DATA(mig) *self, const struct mig_buf *b,
				size_t from, size_t to, int first, int last,
				const char *what)
{
	const size_t rec_over = sizeof(struct vmig_rec_hdr) + sizeof(uint64_t);
	int max = (int)(b->len / sizeof(struct vmig_rec_hdr)) + 1;
	struct mig_rec_ref *recs = calloc(max, sizeof(*recs));
	int n, i, k = first, other = 0;

	EXPECT_NE(NULL, recs) TH_LOG("%s: out of memory", what);
	if (!recs)
		return -1;
	n = mig_stream_index(b->p, b->len, recs, max);
	EXPECT_LT(0, n) TH_LOG("%s: the stream cannot be indexed", what);
	for (i = 0; i < n; i++) {
		const uint8_t *pl = b->p + recs[i].off + sizeof(struct vmig_rec_hdr);
		uint64_t off;

		if (recs[i].off < from || recs[i].off >= to)
			continue;
		if (recs[i].type != VMIG_REC_MEM) {
			other++;
			continue;
		}
		memcpy(&off, pl, sizeof(off));
		EXPECT_GT(last, k) TH_LOG("%s: a MEM record (offset 0x%llx) beyond the %d chunks written",
					  what, (unsigned long long)off, last - first);
		if (k >= last)
			break;
		EXPECT_EQ((uint64_t)k * 3 * CHUNK, off)
			TH_LOG("%s: record %d: offset", what, k - first);
		EXPECT_EQ(rec_over + CHUNK, recs[i].size)
			TH_LOG("%s: record %d: not one chunk", what, k - first);
		if (recs[i].size == rec_over + CHUNK)
			EXPECT_EQ(0, memcmp(pl + sizeof(off), (uint8_t *)self->src.va +
					    (size_t)k * CHUNK, CHUNK))
				TH_LOG("%s: record %d: not the bytes the LOAD wrote",
				       what, k - first);
		k++;
	}
	EXPECT_EQ(last, k) TH_LOG("%s: %d of the %d chunks written were sent",
				  what, k - first, last - first);
	free(recs);
	return other;
}

/*
 * A busy device: LOADs write SRAM during PRE_COPY.  The next pre-copy
 * pass is exactly the chunks the device wrote (offset, size and bytes of
 * each record; no other page), PRECOPY_INFO announces at least their
 * pages and at most those records, and the STOP_COPY part is exactly the
 * chunks written after the last pre-copy read, then STATE and END.
 */
TEST_F_TIMEOUT(mig, pre_copy_busy_device_writes_tracked, 600)
{
	const uint64_t rec_over = sizeof(struct vmig_rec_hdr) + sizeof(uint64_t);
	struct mig_buf pre = { 0 };
	struct refaccel_cpl cpl;
	uint64_t initial, dirty;
	size_t final_bytes, len_init, len_busy;
	bool eof;
	int fd, i;

	ra_rand_fill(self->src.va, NDESC * CHUNK, &self->rng);
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, mig_read_stream(fd, &pre, STREAM_CHUNK, &eof));
	len_init = pre.len;
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0u, initial);

	/* Device writes 8 chunks of SRAM while the session runs. */
	for (i = 0; i < 8; i++) {
		struct refaccel_desc d = ra_desc_load(TAG_BASE | i,
			self->src.iova + (uint64_t)i * CHUNK,
			(uint64_t)(i * 3) * CHUNK, CHUNK);

		ASSERT_EQ(0, ra_run(&self->ring, &d, &cpl, self->tmo));
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
	}
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_LE(8 * CHUNK, dirty) TH_LOG("device writes to SRAM not tracked");
	EXPECT_GE(8 * (CHUNK + rec_over), dirty)
		TH_LOG("dirty bytes %llu: more than the 8 chunks written",
		       (unsigned long long)dirty);
	/* Half of them are read while running, the rest go in STOP_COPY. */
	ASSERT_EQ(0, mig_read_stream(fd, &pre, STREAM_CHUNK, &eof));
	len_busy = pre.len;
	EXPECT_EQ(8 * (CHUNK + rec_over), len_busy - len_init)
		TH_LOG("the pass after the LOADs must be exactly their 8 chunks");
	EXPECT_EQ(0, expect_chunk_records(_metadata, self, &pre, len_init,
					  len_busy, 0, 8, "busy pass"));
	for (i = 8; i < 12; i++) {
		struct refaccel_desc d = ra_desc_load(TAG_BASE | i,
			self->src.iova + (uint64_t)i * CHUNK,
			(uint64_t)(i * 3) * CHUNK, CHUNK);

		ASSERT_EQ(0, ra_run(&self->ring, &d, &cpl, self->tmo));
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
	}
	final_bytes = finish_pre_copy(_metadata, self, fd, &pre);
	TH_LOG("metric: busy device (4 x %u KiB written after the last pre-copy read): STOP_COPY part %zu bytes",
	       CHUNK >> 10, final_bytes);
	/* the 4 chunks, then STATE and END and nothing else */
	EXPECT_EQ(2, expect_chunk_records(_metadata, self, &pre, len_busy,
					  pre.len, 8, 12, "STOP_COPY part"));

	sram_snapshot(_metadata, &self->a, self->sram_a, self->sram_size);
	ASSERT_EQ(0, mig_load(&self->b.vdev, pre.p, pre.len, STREAM_CHUNK));
	sram_snapshot(_metadata, &self->b, self->sram_b, self->sram_size);
	ASSERT_EQ(-1, first_diff(self->sram_a, self->sram_b, self->sram_size));
	for (i = 0; i < 12; i++)
		ASSERT_EQ(-1, first_diff((uint8_t *)self->src.va + (size_t)i * CHUNK,
					 self->sram_b + (size_t)i * 3 * CHUNK, CHUNK));
	mig_buf_free(&pre);
}

/* ================================================================== */
/* Doorbells rung while A is quiesced or stopped travel to B          */
/* ================================================================== */

#define DB_TAG		0x6462000000000000ull	/* "db" */
#define DB_LEN		(4 * PAGE)		/* bytes one FILL writes */
#define DB_VALUE	0x5a17c0deu
#define DB_CLOCK_NS	20000000u		/* B's clock NOP: 20 ms */
#define DB_CQ		4			/* db_cq_head_*: 3 completions fill it */

/*
 * Let virtual time pass that A would need many times over to fetch and
 * perform a descriptor (10 us each): a NOP of DB_CLOCK_NS on B's own
 * ring (the model's virtual clock is shared by all its functions).  Only
 * before B is loaded: the load replaces B's ring with A's.  Without
 * testctl a plain sleep, said so once.
 */
static void db_clock_start(struct __test_metadata *_metadata,
			   FIXTURE_DATA(mig) *self)
{
	int ret;

	if (!self->testctl) {
		TH_LOG("no testctl: waiting with a 200 ms sleep instead of B's virtual clock");
		return;
	}
	ret = ra_ring_setup(&self->b, &self->iommu, &self->clk, 16, 16);
	ASSERT_EQ(0, ret) TH_LOG("B's clock ring: %s", strerror(-ret));
	ASSERT_EQ(0, ra_enable(&self->b, self->tmo));
	ra_wr(&self->b, REFACCEL_REG_TEST_OP_LATENCY, DB_CLOCK_NS);
}

static void db_clock(struct __test_metadata *_metadata, FIXTURE_DATA(mig) *self)
{
	static uint64_t n;
	int ret;

	if (!self->testctl) {
		ra_sleep_ms(200);
		return;
	}
	ret = ra_run_nop(&self->clk, DB_TAG | 0xc000 | (++n & 0xfff), self->tmo);
	if (ret) {
		ra_dump(&self->a, "A, while B's clock NOP did not complete");
		ra_dump(&self->b, "B, clock NOP did not complete");
	}
	ASSERT_EQ(0, ret) TH_LOG("B's clock NOP (%s; A is %s): %s",
				 self->clk.dev->vdev.bdf, self->a.vdev.bdf,
				 strerror(-ret));
}

static bool db_untouched(const void *p, size_t len)
{
	const uint8_t *q = p;

	for (size_t i = 0; i < len; i++)
		if (q[i])
			return false;
	return true;
}

/* A did nothing since @s0: no fetch, no completion, @len bytes at @buf 0. */
static void db_check_idle(struct __test_metadata *_metadata,
			  FIXTURE_DATA(mig) *self, const struct ra_progress *s0,
			  const void *buf, size_t len, const char *when)
{
	struct refaccel_cpl cpl;
	struct ra_progress s;

	ra_progress_read(&self->a, &s);
	ASSERT_EQ(s0->fetched, s.fetched) TH_LOG("%s: A fetched a descriptor", when);
	ASSERT_EQ(s0->sq_head, s.sq_head) TH_LOG("%s: A's SQ_HEAD moved", when);
	ASSERT_EQ(s0->completed, s.completed) TH_LOG("%s: A completed work", when);
	ASSERT_EQ(s0->cq_tail, s.cq_tail) TH_LOG("%s: A's CQ_TAIL moved", when);
	ASSERT_EQ(0, ra_reap(&self->ring, &cpl))
		TH_LOG("%s: a completion appeared in A's CQ (tag 0x%llx)", when,
		       (unsigned long long)cpl.tag);
	ASSERT_TRUE(db_untouched(buf, len))
		TH_LOG("%s: A performed the FILL", when);
}

/*
 * A (in STOP, STOP_COPY or PRE_COPY_P2P as @from says, its data_fd @fd
 * for the last two) is saved to the end and left in STOP; B is loaded
 * with the stream and left in STOP.
 */
static void db_migrate(struct __test_metadata *_metadata,
		       FIXTURE_DATA(mig) *self, uint32_t from, int fd,
		       struct mig_buf *stream)
{
	uint32_t state = ~0u;
	bool eof;
	int ret;

	if (from == VFIO_DEVICE_STATE_STOP) {
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	} else if (from == VFIO_DEVICE_STATE_PRE_COPY_P2P) {
		ret = mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP_COPY,
				    NULL);
		ASSERT_EQ(0, ret) TH_LOG("PRE_COPY_P2P -> STOP_COPY: %s",
					 strerror(-ret));
	}
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_read_stream(fd, stream, STREAM_CHUNK, &eof));
	ASSERT_TRUE(eof) TH_LOG("STOP_COPY must end in EOF");
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP, NULL));

	ret = mig_load(&self->b.vdev, stream->p, stream->len, STREAM_CHUNK);
	ASSERT_EQ(0, ret) TH_LOG("load into B: %s", strerror(-ret));
	ASSERT_EQ(0, mig_get_state(&self->b.vdev, &state));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_STOP, state);
}

/*
 * After B ran the carried work: reset A (as a VMM does with a migrated-away
 * source) and clear the target; a NOP then submitted on the ring, now B's,
 * is the next and only completion, and neither A nor B writes the target
 * again.
 */
static void db_check_after(struct __test_metadata *_metadata,
			   FIXTURE_DATA(mig) *self, void *buf, size_t len)
{
	struct refaccel_desc d = ra_desc_nop(DB_TAG | 0xeeee);
	struct refaccel_cpl cpl;
	int ret;

	ASSERT_EQ(0, ra_reset(&self->a));
	memset(buf, 0, len);
	ret = ra_run(&self->ring, &d, &cpl, self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("marker NOP on B: %s", strerror(-ret));
	ASSERT_EQ(d.tag, cpl.tag)
		TH_LOG("completion 0x%llx before B's marker NOP: work ran twice",
		       (unsigned long long)cpl.tag);
	ASSERT_EQ(0, ra_reap(&self->ring, &cpl))
		TH_LOG("extra completion tag 0x%llx", (unsigned long long)cpl.tag);
	ASSERT_TRUE(db_untouched(buf, len))
		TH_LOG("the FILL was performed again after it completed on B");
	ASSERT_EQ(0u, ra_rd(&self->a, REFACCEL_REG_CNT_FETCHED))
		TH_LOG("A, reset after the migration, fetched work");
	ASSERT_EQ(0u, ra_rd(&self->a, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("A, reset after the migration, completed work");
}

/*
 * A runs its ring (one NOP completes, so the indices are not 0), is moved
 * to @in, and a FILL of DB_LEN bytes is pushed and SQ_TAIL rung.  SQ_TAIL
 * reads the new tail; while 20 ms of virtual time pass (B's clock NOP,
 * 2000 times A's op latency) A fetches and completes nothing and the
 * target stays 0, nor after A is saved to the end.  B, loaded
 * with the stream, reads the same SQ_TAIL and, once RUNNING, completes
 * the FILL (right tag, OK) with the pattern at the target, exactly once.
 */
static void db_sq_tail_carried(struct __test_metadata *_metadata,
			       FIXTURE_DATA(mig) *self, uint32_t in)
{
	struct mig_buf stream = { 0 };
	struct refaccel_desc d;
	struct refaccel_cpl cpl;
	struct ra_progress s0;
	uint8_t *ref, *dst = self->dst.va;
	char when[64];
	uint32_t tail, old_tail, state = ~0u;
	bool eof;
	int fd = -1, ret;

	snprintf(when, sizeof(when), "A in %s", mig_state_name(in));
	db_clock_start(_metadata, self);
	ref = malloc(DB_LEN);
	ASSERT_NE(NULL, ref);
	ra_ref_fill(ref, DB_LEN, DB_VALUE);
	memset(dst, 0, DB_LEN);

	d = ra_desc_nop(DB_TAG | 1);
	ASSERT_EQ(0, ra_run(&self->ring, &d, &cpl, self->tmo));
	ASSERT_EQ(d.tag, cpl.tag);

	switch (in) {
	case VFIO_DEVICE_STATE_RUNNING_P2P:
	case VFIO_DEVICE_STATE_STOP:
		ASSERT_EQ(0, mig_set_state(&self->a.vdev, in, NULL));
		break;
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_PRE_COPY, &fd));
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, mig_read_stream(fd, &stream, STREAM_CHUNK, &eof));
		ASSERT_FALSE(eof) TH_LOG("PRE_COPY read must end in ENOMSG, not EOF");
		ASSERT_EQ(0, mig_set_state(&self->a.vdev, in, NULL));
		break;
	case VFIO_DEVICE_STATE_STOP_COPY:
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, mig_set_state(&self->a.vdev, in, &fd));
		ASSERT_LE(0, fd);
		break;
	default:
		ASSERT_TRUE(false) TH_LOG("state %u not covered", in);
	}

	ra_progress_read(&self->a, &s0);
	old_tail = ra_rd(&self->a, REFACCEL_REG_SQ_TAIL);
	d = ra_desc_fill(DB_TAG | 2, self->dst.iova, DB_LEN, DB_VALUE);
	ASSERT_EQ(0, ra_submit(&self->ring, &d));
	tail = self->ring.sq_tail;
	ASSERT_EQ(tail, ra_rd(&self->a, REFACCEL_REG_SQ_TAIL))
		TH_LOG("%s: SQ_TAIL must read the doorbell just rung", when);
	db_clock(_metadata, self);
	db_check_idle(_metadata, self, &s0, dst, DB_LEN, when);
	ASSERT_EQ(0, mig_get_state(&self->a.vdev, &state));
	ASSERT_EQ(in, state) TH_LOG("%s: the state changed", when);

	if (in == VFIO_DEVICE_STATE_RUNNING_P2P) {
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_STOP, NULL));
		in = VFIO_DEVICE_STATE_STOP;
	}
	db_migrate(_metadata, self, in, fd, &stream);
	/* (B holds A's state now: no more clock NOPs on B) */
	db_check_idle(_metadata, self, &s0, dst, DB_LEN, "A saved, in STOP");
	ASSERT_EQ(tail, ra_rd(&self->a, REFACCEL_REG_SQ_TAIL))
		TH_LOG("A saved, in STOP: SQ_TAIL lost the doorbell");

	if (in == VFIO_DEVICE_STATE_STOP_COPY) {
		/*
		 * The state was saved on entering STOP_COPY, before the
		 * doorbell: the stream has the old tail, and the work is
		 * A's, run there once if the migration is abandoned.
		 */
		ASSERT_EQ(old_tail, ra_rd(&self->b, REFACCEL_REG_SQ_TAIL))
			TH_LOG("%s: B loaded SQ_TAIL %u: a doorbell rung after the save reached the stream",
			       when, ra_rd(&self->b, REFACCEL_REG_SQ_TAIL));
		ASSERT_EQ(0, mig_set_state(&self->a.vdev,
					   VFIO_DEVICE_STATE_RUNNING, NULL));
		ret = ra_wait_cpl(&self->ring, &cpl, self->tmo);
		ASSERT_EQ(0, ret) TH_LOG("abandoned migration: the FILL never completed on A: %s",
					 strerror(-ret));
		ASSERT_EQ(d.tag, cpl.tag);
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
		ASSERT_EQ(-1, first_diff(ref, dst, DB_LEN));
		ASSERT_EQ(s0.completed + 1, ra_rd(&self->a, REFACCEL_REG_CNT_COMPLETED))
			TH_LOG("A ran the held doorbell more than once");
		ASSERT_EQ(0, ra_reap(&self->ring, &cpl))
			TH_LOG("extra completion tag 0x%llx", (unsigned long long)cpl.tag);
		free(ref);
		mig_buf_free(&stream);
		return;
	}
	ASSERT_EQ(tail, ra_rd(&self->b, REFACCEL_REG_SQ_TAIL))
		TH_LOG("%s: B, loaded, has SQ_TAIL %u, not the %u rung on A: the doorbell is not in the stream",
		       when, ra_rd(&self->b, REFACCEL_REG_SQ_TAIL), tail);
	ASSERT_EQ(s0.sq_head, ra_rd(&self->b, REFACCEL_REG_SQ_HEAD));
	ASSERT_TRUE(db_untouched(dst, DB_LEN)) TH_LOG("B performed the FILL in STOP");
	ASSERT_EQ(0, mig_set_state(&self->b.vdev, VFIO_DEVICE_STATE_RUNNING, NULL));
	self->ring.dev = &self->b;
	ret = ra_wait_cpl(&self->ring, &cpl, self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("%s: the FILL never completed on B: %s", when,
				 strerror(-ret));
	ASSERT_EQ(d.tag, cpl.tag);
	ASSERT_EQ(REFACCEL_CPL_OK, cpl.status)
		TH_LOG("FILL on B: %s", ra_cpl_status_name(cpl.status));
	ASSERT_EQ(-1, first_diff(ref, dst, DB_LEN))
		TH_LOG("FILL completed on B but the target does not hold the pattern");
	ASSERT_EQ(s0.completed + 1, ra_rd(&self->b, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("B's counters continue A's");
	db_check_after(_metadata, self, dst, DB_LEN);
	free(ref);
	mig_buf_free(&stream);
}

/* SQ_TAIL rung in RUNNING_P2P: accepted, nothing fetched; reaches B. */
TEST_F_TIMEOUT(mig, db_sq_tail_in_running_p2p_runs_on_b, 600)
{
	db_sq_tail_carried(_metadata, self, VFIO_DEVICE_STATE_RUNNING_P2P);
}

/* SQ_TAIL rung in PRE_COPY_P2P, after the initial pass was read. */
TEST_F_TIMEOUT(mig, db_sq_tail_in_pre_copy_p2p_runs_on_b, 600)
{
	db_sq_tail_carried(_metadata, self, VFIO_DEVICE_STATE_PRE_COPY_P2P);
}

/* SQ_TAIL rung in STOP (frozen): deferred, saved, reaches B. */
TEST_F_TIMEOUT(mig, db_sq_tail_in_stop_runs_on_b, 600)
{
	db_sq_tail_carried(_metadata, self, VFIO_DEVICE_STATE_STOP);
}

/*
 * SQ_TAIL rung in STOP_COPY: held by A but not in the stream (the state
 * was saved on entering STOP_COPY); it runs on A, once, if the migration
 * is abandoned.
 */
TEST_F_TIMEOUT(mig, db_sq_tail_in_stop_copy_stays_on_a, 600)
{
	db_sq_tail_carried(_metadata, self, VFIO_DEVICE_STATE_STOP_COPY);
}

/*
 * A CQ of DB_CQ entries: 4 FILLs submitted, 3 complete and fill the CQ,
 * the 4th waits for room, not performed.  A is stopped; the 3 completions
 * are consumed and CQ_HEAD rung while A is frozen.  CQ_HEAD reads it; A
 * completes nothing and the 4th target stays 0 while 20 ms of virtual
 * time pass, nor after A is saved.  B, loaded, reads the same CQ_HEAD and,
 * once RUNNING, performs and completes the 4th FILL (right tag, OK,
 * pattern there) exactly once; without the doorbell its CQ would be full.
 */
TEST_F_TIMEOUT(mig, db_cq_head_in_stop_frees_room_on_b, 600)
{
	struct mig_buf stream = { 0 };
	struct refaccel_desc d;
	struct refaccel_cpl cpl;
	uint8_t *ref, *dst = self->dst.va, *last;
	struct ra_progress s0;
	uint32_t head;
	int i, ret;

	db_clock_start(_metadata, self);
	ref = malloc(DB_LEN);
	ASSERT_NE(NULL, ref);
	ASSERT_LE((size_t)DB_CQ * DB_LEN, self->dst.size);
	memset(dst, 0, (size_t)DB_CQ * DB_LEN);
	last = dst + (size_t)(DB_CQ - 1) * DB_LEN;

	/* A fresh ring with a small CQ. */
	ASSERT_EQ(0, ra_reset(&self->a));
	ra_ring_free(&self->ring);
	ASSERT_EQ(0, ra_ring_setup(&self->a, &self->iommu, &self->ring, 16, DB_CQ));
	ASSERT_EQ(0, ra_enable(&self->a, self->tmo));

	for (i = 0; i < DB_CQ; i++) {
		d = ra_desc_fill(DB_TAG | 0x100 | i,
				 self->dst.iova + (uint64_t)i * DB_LEN, DB_LEN,
				 DB_VALUE + i);
		ASSERT_EQ(0, ra_sq_push(&self->ring, &d));
	}
	ra_sq_doorbell(&self->ring);
	ret = ra_poll_reg(&self->a, REFACCEL_REG_CNT_COMPLETED, ~0u, DB_CQ - 1,
			  self->tmo);
	if (ret)
		ra_dump(&self->a, "filling the CQ");
	ASSERT_EQ(0, ret) TH_LOG("the first %d FILLs did not complete", DB_CQ - 1);
	/* The 4th is fetched and waits for a CQ slot. */
	ASSERT_EQ(0, ra_poll_reg(&self->a, REFACCEL_REG_CNT_FETCHED, ~0u, DB_CQ,
				 self->tmo));
	db_clock(_metadata, self);
	ASSERT_EQ((uint32_t)DB_CQ - 1, ra_rd(&self->a, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("a completion was written into a full CQ");
	ASSERT_NE(0u, ra_rd(&self->a, REFACCEL_REG_STATUS) & REFACCEL_STATUS_BUSY);
	ASSERT_TRUE(db_untouched(last, DB_LEN))
		TH_LOG("the FILL held back by the full CQ was performed");

	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_STOP, NULL));
	ra_progress_read(&self->a, &s0);
	for (i = 0; i < DB_CQ - 1; i++) {
		ASSERT_EQ(1, ra_reap(&self->ring, &cpl));
		ASSERT_EQ(DB_TAG | 0x100 | i, cpl.tag);
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
		ra_ref_fill(ref, DB_LEN, DB_VALUE + i);
		ASSERT_EQ(-1, first_diff(ref, dst + (size_t)i * DB_LEN, DB_LEN));
	}
	head = self->ring.cq_head;
	ASSERT_EQ(head, ra_rd(&self->a, REFACCEL_REG_CQ_HEAD))
		TH_LOG("CQ_HEAD of a frozen A must read the deferred doorbell");
	db_clock(_metadata, self);
	db_check_idle(_metadata, self, &s0, last, DB_LEN, "A in STOP");

	db_migrate(_metadata, self, VFIO_DEVICE_STATE_STOP, -1, &stream);
	db_check_idle(_metadata, self, &s0, last, DB_LEN, "A saved, in STOP");
	ASSERT_EQ(head, ra_rd(&self->a, REFACCEL_REG_CQ_HEAD));

	ASSERT_EQ(head, ra_rd(&self->b, REFACCEL_REG_CQ_HEAD))
		TH_LOG("B, loaded, has CQ_HEAD %u, not the %u rung on A: the doorbell is not in the stream",
		       ra_rd(&self->b, REFACCEL_REG_CQ_HEAD), head);
	ASSERT_EQ(s0.cq_tail, ra_rd(&self->b, REFACCEL_REG_CQ_TAIL));
	ASSERT_EQ(0, mig_set_state(&self->b.vdev, VFIO_DEVICE_STATE_RUNNING, NULL));
	self->ring.dev = &self->b;
	ret = ra_wait_cpl(&self->ring, &cpl, self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("the held-back FILL never completed on B: %s",
				 strerror(-ret));
	ASSERT_EQ(DB_TAG | 0x100 | (DB_CQ - 1), cpl.tag);
	ASSERT_EQ(REFACCEL_CPL_OK, cpl.status)
		TH_LOG("FILL on B: %s", ra_cpl_status_name(cpl.status));
	ra_ref_fill(ref, DB_LEN, DB_VALUE + DB_CQ - 1);
	ASSERT_EQ(-1, first_diff(ref, last, DB_LEN))
		TH_LOG("FILL completed on B but the target does not hold the pattern");
	ASSERT_EQ(s0.completed + 1, ra_rd(&self->b, REFACCEL_REG_CNT_COMPLETED));
	db_check_after(_metadata, self, dst, (size_t)DB_CQ * DB_LEN);
	free(ref);
	mig_buf_free(&stream);
}

TEST_HARNESS_MAIN
