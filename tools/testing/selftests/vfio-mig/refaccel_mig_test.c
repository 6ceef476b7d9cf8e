// SPDX-License-Identifier: GPL-2.0-only
/*
 * End-to-end migration kselftests: the whole device moves from function A
 * to function B through the VFIO migration uAPI, the way a VMM drives it,
 * while work is in flight; B must complete every descriptor exactly once
 * with correct results and hold the same SRAM.  Also PRE_COPY convergence
 * and the stream sizes it saves (printed as "metric:" lines).
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
	uint32_t state_max = ra_rd(&self->a, REFACCEL_REG_MIG_STATE_MAX);
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
 * A busy device: LOADs write SRAM during PRE_COPY.  Device writes must be
 * tracked as dirty and reach B; the STOP_COPY part is reported.
 */
TEST_F_TIMEOUT(mig, pre_copy_busy_device_writes_tracked, 600)
{
	struct mig_buf pre = { 0 };
	struct refaccel_cpl cpl;
	uint64_t initial, dirty;
	size_t final_bytes;
	bool eof;
	int fd, i;

	ra_rand_fill(self->src.va, NDESC * CHUNK, &self->rng);
	ASSERT_EQ(0, mig_set_state(&self->a.vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, mig_read_stream(fd, &pre, STREAM_CHUNK, &eof));
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
	/* Half of them are read while running, the rest go in STOP_COPY. */
	ASSERT_EQ(0, mig_read_stream(fd, &pre, STREAM_CHUNK, &eof));
	for (i = 8; i < 12; i++) {
		struct refaccel_desc d = ra_desc_load(TAG_BASE | i,
			self->src.iova + (uint64_t)i * CHUNK,
			(uint64_t)(i * 3) * CHUNK, CHUNK);

		ASSERT_EQ(0, ra_run(&self->ring, &d, &cpl, self->tmo));
	}
	final_bytes = finish_pre_copy(_metadata, self, fd, &pre);
	TH_LOG("metric: busy device (4 x %u KiB written after the last pre-copy read): STOP_COPY part %zu bytes",
	       CHUNK >> 10, final_bytes);
	ASSERT_LE(4 * CHUNK, final_bytes);

	sram_snapshot(_metadata, &self->a, self->sram_a, self->sram_size);
	ASSERT_EQ(0, mig_load(&self->b.vdev, pre.p, pre.len, STREAM_CHUNK));
	sram_snapshot(_metadata, &self->b, self->sram_b, self->sram_size);
	ASSERT_EQ(-1, first_diff(self->sram_a, self->sram_b, self->sram_size));
	for (i = 0; i < 12; i++)
		ASSERT_EQ(-1, first_diff((uint8_t *)self->src.va + (size_t)i * CHUNK,
					 self->sram_b + (size_t)i * 3 * CHUNK, CHUNK));
	mig_buf_free(&pre);
}

TEST_HARNESS_MAIN
