// SPDX-License-Identifier: GPL-2.0-only
/*
 * Multi-device peer-to-peer migration kselftests (project issue 9, item
 * "multi-device P2P"): devices of one VM that DMA into each other's BARs
 * must all be quiesced (RUNNING_P2P: no outgoing DMA, peer writes into
 * their BARs still accepted) before any of them is stopped.
 *
 *   p2p_quiesce_order            the VMM's order: A (streaming STOREs into
 *                                B's BAR2) to RUNNING_P2P, B to RUNNING_P2P,
 *                                both STOP, both saved, resumed into C and
 *                                D (or into A and B after a reset); every
 *                                STORE lands exactly once, none is lost or
 *                                replayed, nothing is written after A's
 *                                quiesce.
 *   p2p_wrong_order_documented   B stopped while A still RUNNING and
 *                                storing into B: what the spec and the
 *                                driver documentation guarantee (peer
 *                                writes into a quiesced B are accepted and
 *                                tracked; writes after B's STOP_COPY arc
 *                                are not in B's stream, so they are lost
 *                                on the destination although A completed
 *                                them).
 *   p2p_quiesced_issues_no_dma   A in RUNNING_P2P (and STOP) fetches and
 *                                writes nothing, however long it waits; it
 *                                completes the STORE exactly once when
 *                                running again.
 *
 * A and B share one IOMMU address space (container), as devices of one VM
 * do, and a window of B's BAR2 mmap is DMA-mapped into it.  With the
 * iommufd backend the 6.12 kernel cannot map a BAR mmap (IOMMU_IOAS_MAP:
 * EFAULT), so the tests that need the peer window SKIP with that reason;
 * p2p_quiesced_issues_no_dma then stores into host memory instead.
 *
 * Needs at least two functions bound to refaccel-vfio-pci (four for the
 * C/D destinations), else SKIP.  No timing threshold is asserted: waits
 * for "nothing happens" are measured in the device's own virtual time (a
 * NOP with a long latency on another function, with the model's testctl),
 * times are only printed.
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
#define NDEV		4
#define TAG_BASE	0x7032700000000000ull	/* "p2p" */
#define TAG_MASK	0xffffull
#define STREAM_CHUNK	(64u << 10)

/* p2p_quiesce_order */
#define Q_N		48		/* STOREs, more than the CQ holds */
#define Q_SLOT		256u		/* bytes per STORE */
#define Q_SQ		64
#define Q_CQ		32		/* A blocks after 31 unreaped completions */
#define Q_OP_NS		10000000u	/* 10 ms per STORE (testctl) */
#define Q_WIN		(4 * PAGE)	/* B's BAR2 window mapped for A */

/* p2p_wrong_order_documented */
#define W_LEN		512u
#define W_OFF		64u		/* inside each page */
#define W_WIN		(8 * PAGE)

/* p2p_quiesced_issues_no_dma */
#define N_OP_NS		1000000u	/* A: 1 ms per op */
#define N_CLOCK_NS	20000000u	/* the clock's NOP: 20 ms */

FIXTURE(p2p) {
	struct ra_found found;
	char bdf[NDEV][VU_BDF_LEN];
	int n;				/* variant functions opened */
	struct vu_iommu iommu;
	struct ra_dev dev[NDEV];
	bool open[NDEV];
	struct ra_ring ring[2];		/* A's, B's */
	bool ring_ok[2];
	struct vu_dma buf;		/* host memory target (fallback) */
	uint64_t map_iova, map_len;	/* the peer window, if mapped */
	bool mapped;
	uint32_t sram_size;
	bool testctl;
	int tmo;
	bool iommu_ok;
	bool irq;			/* A's MSI-X eventfds are set up */
};

FIXTURE_SETUP(p2p)
{
	uint64_t flags;
	int i, ret;

	self->tmo = ra_timeout_ms();
	if (geteuid())
		SKIP(return, "needs root (VFIO device access)");
	if (!ra_discover(&self->found))
		SKIP(return, "%s", self->found.why);
	for (i = 0; i < self->found.n && self->n < NDEV; i++)
		if (ra_driver_is_variant(self->found.driver[i]))
			strcpy(self->bdf[self->n++], self->found.bdf[i]);
	if (self->n < 2)
		SKIP(return, "needs two functions bound to refaccel-vfio-pci, found %d (of %d refaccel functions bound to a vfio driver)",
		     self->n, self->found.n);

	ret = vu_iommu_init(&self->iommu, vu_backend_from_env());
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend",
		     vu_backend_name(vu_backend_from_env()));
	ASSERT_EQ(0, ret) TH_LOG("%s backend: %s",
				 vu_backend_name(vu_backend_from_env()),
				 strerror(-ret));
	self->iommu_ok = true;

	for (i = 0; i < self->n; i++) {
		ret = ra_open(&self->iommu, self->bdf[i], &self->dev[i]);
		ASSERT_EQ(0, ret) TH_LOG("open %s: %s", self->bdf[i],
					 strerror(-ret));
		self->open[i] = true;
		flags = 0;
		ret = mig_get_flags(&self->dev[i].vdev, &flags);
		ASSERT_EQ(0, ret) TH_LOG("%s: VFIO_DEVICE_FEATURE_MIGRATION: %s",
					 self->bdf[i], strerror(-ret));
		ASSERT_NE(0ull, (unsigned long long)(flags & VFIO_MIGRATION_P2P))
			TH_LOG("%s: migration flags 0x%llx lack VFIO_MIGRATION_P2P",
			       self->bdf[i], (unsigned long long)flags);
		ret = ra_reset(&self->dev[i]);
		ASSERT_EQ(0, ret) TH_LOG("%s: VFIO_DEVICE_RESET: %s",
					 self->bdf[i], strerror(-ret));
		ra_wr(&self->dev[i], REFACCEL_REG_INT_MASK, REFACCEL_INT_ALL);
	}
	self->sram_size = self->dev[0].sram_size;
	ASSERT_EQ(self->sram_size, self->dev[1].sram_size)
		TH_LOG("A and B must have the same SRAM size");
	/* C and D are destinations only if compatible. */
	for (i = 2; i < self->n; i++)
		if (ra_rd(&self->dev[i], REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)) !=
		    ra_rd(&self->dev[0], REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID))) {
			TH_LOG("%s: other compatibility id than A: not used as a destination",
			       self->bdf[i]);
			self->n = i;
			break;
		}
	self->testctl = ra_rd(&self->dev[0], REFACCEL_REG_CAPS) &
			REFACCEL_CAP_TESTCTL;
}

FIXTURE_TEARDOWN(p2p)
{
	int i;

	/* Stop every DMA before the memory and the peer window go. */
	for (i = 0; i < NDEV; i++)
		if (self->open[i] && ra_reset(&self->dev[i]))
			ra_wr(&self->dev[i], REFACCEL_REG_CTRL, 0);
	if (self->mapped)
		vu_dma_unmap(&self->iommu, self->map_iova, self->map_len);
	if (self->iommu_ok)
		vu_dma_free(&self->iommu, &self->buf);
	for (i = 0; i < 2; i++)
		if (self->ring_ok[i])
			ra_ring_free(&self->ring[i]);
	for (i = NDEV - 1; i >= 0; i--)
		if (self->open[i])
			ra_close(&self->dev[i]);
	if (self->iommu_ok)
		vu_iommu_cleanup(&self->iommu);
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* Ring @i (0: A's, 1: B's) on dev[i], interrupts masked, enabled. */
static void ring_start(struct __test_metadata *_metadata,
		       FIXTURE_DATA(p2p) *self, int i, uint32_t sq, uint32_t cq)
{
	int ret;

	ret = ra_ring_setup(&self->dev[i], &self->iommu, &self->ring[i], sq, cq);
	ASSERT_EQ(0, ret) TH_LOG("ring setup on %s: %s", self->bdf[i],
				 strerror(-ret));
	self->ring_ok[i] = true;
	ra_wr(&self->dev[i], REFACCEL_REG_INT_MASK, REFACCEL_INT_ALL);
	ret = ra_enable(&self->dev[i], self->tmo);
	if (ret)
		ra_dump(&self->dev[i], "enable failed");
	ASSERT_EQ(0, ret) TH_LOG("CTRL.ENABLE on %s: %s", self->bdf[i],
				 strerror(-ret));
}

/*
 * DMA-map the first @len bytes of @d's BAR2 mmap at a fresh IOVA (one
 * window per test).  0, or a negative errno with the reason in @why.
 */
static int peer_map(FIXTURE_DATA(p2p) *self, struct ra_dev *d, uint64_t len,
		    char *why, size_t wlen)
{
	uint64_t iova;
	int ret;

	if (!d->sram || d->bar2_size < len) {
		snprintf(why, wlen, "%s: BAR2 not mmappable (%llu bytes)",
			 d->vdev.bdf, (unsigned long long)d->bar2_size);
		return -ENODEV;
	}
	iova = vu_iova_alloc(&self->iommu, len);
	if (!iova) {
		snprintf(why, wlen, "no IOVA space for the peer window");
		return -ENOSPC;
	}
	ret = vu_dma_map(&self->iommu, (void *)d->sram, iova, len, VU_DMA_RW);
	if (ret) {
		snprintf(why, wlen, "the %s backend cannot DMA-map the peer's BAR2 mmap: %s%s",
			 vu_backend_name(self->iommu.backend), strerror(-ret),
			 self->iommu.backend == VU_BACKEND_IOMMUFD ?
			 " (6.12 IOMMU_IOAS_MAP of a BAR mmap; the container backend can)" : "");
		return ret;
	}
	self->map_iova = iova;
	self->map_len = len;
	self->mapped = true;
	return 0;
}

/* Point the peer window at @d's BAR2 instead (a destination VMM's map). */
static void peer_remap(struct __test_metadata *_metadata,
		       FIXTURE_DATA(p2p) *self, struct ra_dev *d)
{
	int ret;

	ASSERT_NE(NULL, d->sram) TH_LOG("%s: BAR2 not mmappable", d->vdev.bdf);
	ASSERT_EQ(0, vu_dma_unmap(&self->iommu, self->map_iova, self->map_len));
	self->mapped = false;
	ret = vu_dma_map(&self->iommu, (void *)d->sram, self->map_iova,
			 self->map_len, VU_DMA_RW);
	ASSERT_EQ(0, ret) TH_LOG("map %s's BAR2 at the peer IOVA: %s",
				 d->vdev.bdf, strerror(-ret));
	self->mapped = true;
}

/* Deterministic bytes of one kind (@kind) for slot @i. */
static void pat(uint8_t *buf, size_t len, uint32_t kind, uint32_t i)
{
	uint64_t s = ((uint64_t)kind << 32 | i) * 0x9e3779b97f4a7c15ull | 1;

	ra_rand_fill(buf, len, &s);
}

enum { K_A = 0x41, K_CANARY = 0x43, K_CPU = 0x55 };

/* -1 if @d's SRAM at @off holds pattern (@kind, @i), else the first bad byte. */
static long slot_diff(struct __test_metadata *_metadata, struct ra_dev *d,
		      uint64_t off, size_t len, uint32_t kind, uint32_t i)
{
	uint8_t want[PAGE], got[PAGE];

	ASSERT_GE(sizeof(want), len);
	pat(want, len, kind, i);
	ASSERT_EQ(0, ra_sram_read(d, off, got, len));
	for (size_t b = 0; b < len; b++)
		if (want[b] != got[b])
			return (long)b;
	return -1;
}

static void slot_write(struct __test_metadata *_metadata, struct ra_dev *d,
		       uint64_t off, size_t len, uint32_t kind, uint32_t i)
{
	uint8_t buf[PAGE];

	ASSERT_GE(sizeof(buf), len);
	pat(buf, len, kind, i);
	ASSERT_EQ(0, ra_sram_write(d, off, buf, len));
}

static const char *kind_name(uint32_t kind)
{
	return kind == K_A ? "A's data" : kind == K_CPU ? "the CPU write" :
	       "the canary";
}

/*
 * p2p_quiesce_order: slots [0, k) of @d's window hold @done_kind, slots
 * [k, Q_N) @rest_kind.
 */
static void q_check_slots(struct __test_metadata *_metadata, struct ra_dev *d,
			  int k, uint32_t done_kind, uint32_t rest_kind,
			  const char *when)
{
	for (int i = 0; i < Q_N; i++) {
		uint32_t kind = i < k ? done_kind : rest_kind;
		long at = slot_diff(_metadata, d, (uint64_t)i * Q_SLOT, Q_SLOT,
				    kind, i);

		ASSERT_EQ(-1, at)
			TH_LOG("%s: %s slot %d (STORE %s before A's quiesce, k %d) does not hold %s (byte %ld)",
			       when, d->vdev.bdf, i, i < k ? "completed" : "not completed",
			       k, kind_name(kind), at);
	}
}

/*
 * A's CQ memory: entries [0, k) are the completions of STOREs 0..k-1, in
 * order, OK, first pass; entries [k, size) were never written.
 */
static void q_check_cq(struct __test_metadata *_metadata, struct ra_ring *r,
		       int k, const char *when)
{
	const volatile struct refaccel_cpl *cq = r->cq.va;

	for (int i = 0; i < (int)r->cq_size; i++) {
		if (i < k) {
			ASSERT_EQ(REFACCEL_CPL_F_PHASE, cq[i].flags & REFACCEL_CPL_F_PHASE)
				TH_LOG("%s: CQ entry %d missing", when, i);
			ASSERT_EQ(TAG_BASE | (uint64_t)i, (uint64_t)cq[i].tag)
				TH_LOG("%s: CQ entry %d tag 0x%llx", when, i,
				       (unsigned long long)cq[i].tag);
			ASSERT_EQ(REFACCEL_CPL_OK, cq[i].status)
				TH_LOG("%s: STORE %d status %s", when, i,
				       ra_cpl_status_name(cq[i].status));
		} else {
			ASSERT_EQ(0u, cq[i].flags & REFACCEL_CPL_F_PHASE)
				TH_LOG("%s: CQ entry %d written (tag 0x%llx) after A's quiesce with %d completed",
				       when, i, (unsigned long long)cq[i].tag, k);
		}
	}
}

static void set_state(struct __test_metadata *_metadata, struct ra_dev *d,
		      uint32_t state, const char *name)
{
	uint64_t t0 = vu_now_ms();
	int ret = mig_set_state(&d->vdev, state, NULL);

	ASSERT_EQ(0, ret) TH_LOG("%s (%s) -> %s: %s", name, d->vdev.bdf,
				 mig_state_name(state), strerror(-ret));
	TH_LOG("%s -> %s: %llu ms", name, mig_state_name(state),
	       (unsigned long long)(vu_now_ms() - t0));
}

static void expect_state(struct __test_metadata *_metadata, struct ra_dev *d,
			 uint32_t want, const char *name)
{
	uint32_t st = ~0u;

	ASSERT_EQ(0, mig_get_state(&d->vdev, &st));
	ASSERT_EQ(want, st) TH_LOG("%s is %s, expected %s", name,
				   mig_state_name(st), mig_state_name(want));
}

/* ================================================================== */
/* 1. the VMM's order                                                 */
/* ================================================================== */

/*
 * A streams Q_N STOREs (A's SRAM slot i -> B's BAR2 slot i) through a CQ
 * smaller than the stream, so that work is outstanding when A is quiesced
 * whatever the guest's speed: A blocks after Q_CQ - 1 unreaped completions.
 *
 * The VMM: A -> RUNNING_P2P (k STOREs completed), B -> RUNNING_P2P; with A
 * quiesced the CPU overwrites B's slots [0, k) through the mmap (B, in
 * RUNNING_P2P, still accepts writes into its BAR); A -> STOP, B -> STOP;
 * both saved; loaded into C and D (the peer IOVA now maps D's BAR2) or,
 * with fewer than four functions, into A and B after a VFIO_DEVICE_RESET;
 * both to RUNNING_P2P before either runs; then RUNNING.
 *
 * Asserted: at A's quiesce slots [0, k) hold A's data and [k, Q_N) the
 * canary, and so they stay until the save (nothing written after A's
 * quiesce; A's CQ gains no entry, CNT_COMPLETED stays k); the destination
 * B gets the CPU writes and the canary; after resuming, every tag
 * completes exactly once, in order, OK, and the counters add up to Q_N;
 * slots [0, k) still hold the CPU writes (no completed STORE replayed),
 * slots [k, Q_N) hold A's data (no submitted STORE lost).
 */
TEST_F_TIMEOUT(p2p, p2p_quiesce_order, 900)
{
	struct ra_dev *A = &self->dev[0], *B = &self->dev[1], *C, *D;
	struct ra_ring *r = &self->ring[0];
	struct mig_buf sa = { 0 }, sb = { 0 };
	struct refaccel_cpl cpl;
	uint8_t buf[Q_SLOT];
	char why[256];
	uint32_t fetched, st;
	uint64_t t0;
	int i, k, ret;
	bool self_resume = self->n < NDEV;

	ret = peer_map(self, B, Q_WIN, why, sizeof(why));
	if (ret)
		SKIP(return, "%s", why);
	ring_start(_metadata, self, 0, Q_SQ, Q_CQ);
	if (self->testctl)
		ra_wr(A, REFACCEL_REG_TEST_OP_LATENCY, Q_OP_NS);
	else
		TH_LOG("no testctl: STOREs run at the default latency; the CQ (%d entries) still keeps %d of them outstanding",
		       Q_CQ, Q_N - (Q_CQ - 1));

	for (i = 0; i < Q_N; i++) {
		slot_write(_metadata, A, (uint64_t)i * Q_SLOT, Q_SLOT, K_A, i);
		slot_write(_metadata, B, (uint64_t)i * Q_SLOT, Q_SLOT, K_CANARY, i);
	}
	for (i = 0; i < Q_N; i++) {
		struct refaccel_desc d = ra_desc_store(TAG_BASE | i,
			(uint64_t)i * Q_SLOT, self->map_iova + (uint64_t)i * Q_SLOT,
			Q_SLOT);

		ASSERT_EQ(0, ra_sq_push(r, &d));
	}
	ra_sq_doorbell(r);

	/* A condition, not a delay: the stream is under way. */
	t0 = vu_now_ms();
	while (ra_rd(A, REFACCEL_REG_CNT_COMPLETED) < 2 &&
	       vu_now_ms() - t0 < (uint64_t)self->tmo)
		ra_sleep_ms(1);
	ASSERT_LE(2u, ra_rd(A, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("A completed no STORE into the peer BAR");

	/* The VMM, step 1: A quiesced (no outgoing DMA, P2P included). */
	set_state(_metadata, A, VFIO_DEVICE_STATE_RUNNING_P2P, "A");
	k = (int)ra_rd(A, REFACCEL_REG_CNT_COMPLETED);
	fetched = ra_rd(A, REFACCEL_REG_CNT_FETCHED);
	st = ra_rd(A, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS));
	TH_LOG("at A's quiesce: %d of %d STOREs completed, %u fetched, SQ_HEAD %u, CQ %s",
	       k, Q_N, fetched, ra_rd(A, REFACCEL_REG_SQ_HEAD),
	       k == Q_CQ - 1 ? "full (A was blocked)" : "not full");
	ASSERT_NE(0u, st & REFACCEL_MIG_STATUS_QUIESCED)
		TH_LOG("A in RUNNING_P2P: MIG_STATUS 0x%x lacks QUIESCED", st);
	ASSERT_LT(k, Q_N) TH_LOG("no STORE outstanding at A's quiesce");
	ASSERT_GE(fetched, (uint32_t)k);
	q_check_cq(_metadata, r, k, "A just quiesced");
	q_check_slots(_metadata, B, k, K_A, K_CANARY, "A just quiesced");

	/* Step 2: B quiesced too; it must still accept writes into BAR2. */
	set_state(_metadata, B, VFIO_DEVICE_STATE_RUNNING_P2P, "B");
	for (i = 0; i < k; i++) {
		pat(buf, Q_SLOT, K_CPU, i);
		memcpy((uint8_t *)B->sram + (size_t)i * Q_SLOT, buf, Q_SLOT);
	}
	__sync_synchronize();
	for (i = 0; i < k; i++) {
		uint8_t got[Q_SLOT];

		pat(buf, Q_SLOT, K_CPU, i);
		ASSERT_EQ(0, ra_sram_pread(B, (uint64_t)i * Q_SLOT, got, Q_SLOT));
		ASSERT_EQ(0, memcmp(buf, got, Q_SLOT))
			TH_LOG("CPU write into B's BAR2 mmap (B in RUNNING_P2P) slot %d not there",
			       i);
	}
	ASSERT_EQ((uint32_t)k, ra_rd(A, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("A completed work after its quiesce");
	q_check_cq(_metadata, r, k, "both quiesced");
	q_check_slots(_metadata, B, k, K_CPU, K_CANARY, "both quiesced");

	/* Step 3: only now does anything stop. */
	set_state(_metadata, A, VFIO_DEVICE_STATE_STOP, "A");
	set_state(_metadata, B, VFIO_DEVICE_STATE_STOP, "B");
	ASSERT_EQ((uint32_t)k, ra_rd(A, REFACCEL_REG_CNT_COMPLETED));
	q_check_cq(_metadata, r, k, "both stopped");
	q_check_slots(_metadata, B, k, K_CPU, K_CANARY, "both stopped");

	t0 = vu_now_ms();
	ret = mig_save_stop_copy(&A->vdev, &sa);
	ASSERT_EQ(0, ret) TH_LOG("save A: %s", strerror(-ret));
	ret = mig_save_stop_copy(&B->vdev, &sb);
	ASSERT_EQ(0, ret) TH_LOG("save B: %s", strerror(-ret));
	TH_LOG("saved A (%zu bytes) and B (%zu bytes) in %llu ms", sa.len,
	       sb.len, (unsigned long long)(vu_now_ms() - t0));
	ASSERT_EQ((uint32_t)k, ra_rd(A, REFACCEL_REG_CNT_COMPLETED));
	q_check_slots(_metadata, B, k, K_CPU, K_CANARY, "both saved");

	/* The destination. */
	if (self_resume) {
		TH_LOG("only %d functions: resuming into A (%s) and B (%s) themselves after VFIO_DEVICE_RESET",
		       self->n, A->vdev.bdf, B->vdev.bdf);
		C = A;
		D = B;
		ASSERT_EQ(0, ra_reset(C));
		ASSERT_EQ(0, ra_reset(D));
		ASSERT_EQ(0u, ra_rd(C, REFACCEL_REG_CNT_COMPLETED));
		expect_state(_metadata, C, VFIO_DEVICE_STATE_RUNNING, "A after reset");
	} else {
		C = &self->dev[2];
		D = &self->dev[3];
		TH_LOG("resuming A (%s) into C (%s), B (%s) into D (%s); the peer IOVA now maps D's BAR2",
		       A->vdev.bdf, C->vdev.bdf, B->vdev.bdf, D->vdev.bdf);
		peer_remap(_metadata, self, D);
	}
	set_state(_metadata, C, VFIO_DEVICE_STATE_STOP, "C");
	set_state(_metadata, D, VFIO_DEVICE_STATE_STOP, "D");
	ret = mig_load(&C->vdev, sa.p, sa.len, STREAM_CHUNK);
	ASSERT_EQ(0, ret) TH_LOG("load A's stream into %s: %s", C->vdev.bdf,
				 strerror(-ret));
	ret = mig_load(&D->vdev, sb.p, sb.len, STREAM_CHUNK);
	ASSERT_EQ(0, ret) TH_LOG("load B's stream into %s: %s", D->vdev.bdf,
				 strerror(-ret));
	q_check_slots(_metadata, D, k, K_CPU, K_CANARY, "destination B loaded");
	ASSERT_EQ((uint32_t)k, ra_rd(C, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("destination A's counters must continue the source's");

	/* Every device accepts peer writes before any device runs. */
	set_state(_metadata, D, VFIO_DEVICE_STATE_RUNNING_P2P, "D");
	set_state(_metadata, C, VFIO_DEVICE_STATE_RUNNING_P2P, "C");
	ASSERT_EQ((uint32_t)k, ra_rd(C, REFACCEL_REG_CNT_COMPLETED));
	q_check_slots(_metadata, D, k, K_CPU, K_CANARY, "destination quiesced");
	set_state(_metadata, D, VFIO_DEVICE_STATE_RUNNING, "D");
	set_state(_metadata, C, VFIO_DEVICE_STATE_RUNNING, "C");

	/* The ring (host memory, same IOVAs) now belongs to C. */
	r->dev = C;
	for (i = 0; i < Q_N; i++) {
		ret = ra_wait_cpl(r, &cpl, self->tmo);
		if (ret)
			ra_dump(C, "waiting for the migrated STOREs");
		ASSERT_EQ(0, ret) TH_LOG("after %d of %d completions: %s", i, Q_N,
					 strerror(-ret));
		ASSERT_EQ(TAG_BASE | i, cpl.tag)
			TH_LOG("completion %d: tag 0x%llx (lost, duplicated or reordered)",
			       i, (unsigned long long)cpl.tag);
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status)
			TH_LOG("STORE %d: %s", i, ra_cpl_status_name(cpl.status));
		ASSERT_EQ(REFACCEL_OP_STORE, cpl.opcode);
	}
	/* Idle and everything fetched: no completion can follow. */
	ASSERT_EQ(0, ra_poll_reg(C, REFACCEL_REG_STATUS, REFACCEL_STATUS_BUSY, 0,
				 self->tmo));
	ASSERT_EQ((uint32_t)Q_N, ra_rd(C, REFACCEL_REG_CNT_FETCHED));
	ASSERT_EQ((uint32_t)Q_N, ra_rd(C, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("completions counted once across source and destination");
	ASSERT_EQ(0u, ra_rd(C, REFACCEL_REG_CNT_ERRORS));
	ASSERT_EQ(0, ra_reap(r, &cpl)) TH_LOG("extra completion tag 0x%llx",
					      (unsigned long long)cpl.tag);
	if (!self_resume) {
		ASSERT_EQ((uint32_t)k, ra_rd(A, REFACCEL_REG_CNT_COMPLETED))
			TH_LOG("the stopped source ran again");
		expect_state(_metadata, A, VFIO_DEVICE_STATE_STOP, "source A");
	}
	q_check_slots(_metadata, D, k, K_CPU, K_A, "after resume");
	TH_LOG("%d STOREs completed on the source before its quiesce, %d on the destination, each once",
	       k, Q_N - k);
	r->dev = A;
	mig_buf_free(&sa);
	mig_buf_free(&sb);
}

/* ================================================================== */
/* 2. the order the uAPI forbids                                      */
/* ================================================================== */

/* One STORE from A's SRAM page @pg into B's window page @pg; waits. */
static void w_store(struct __test_metadata *_metadata, FIXTURE_DATA(p2p) *self,
		    int pg, const char *when)
{
	struct refaccel_desc d;
	struct refaccel_cpl cpl;
	int ret;

	d = ra_desc_store(TAG_BASE | 0x100 | pg, (uint64_t)pg * PAGE + W_OFF,
			  self->map_iova + (uint64_t)pg * PAGE + W_OFF, W_LEN);
	ret = ra_run(&self->ring[0], &d, &cpl, self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("A's STORE into B page %d (%s): %s", pg, when,
				 strerror(-ret));
	ASSERT_EQ(d.tag, cpl.tag);
	ASSERT_EQ(REFACCEL_CPL_OK, cpl.status)
		TH_LOG("A's STORE into B page %d (%s): %s", pg, when,
		       ra_cpl_status_name(cpl.status));
}

/* B's registers that a frozen device must keep. */
struct w_regs {
	uint32_t v[8];
};

static const uint32_t w_reg_list[8] = {
	REFACCEL_REG_STATUS, REFACCEL_REG_SQ_HEAD, REFACCEL_REG_SQ_TAIL,
	REFACCEL_REG_CQ_TAIL, REFACCEL_REG_CQ_HEAD, REFACCEL_REG_INT_STATUS,
	REFACCEL_REG_CNT_FETCHED, REFACCEL_REG_CNT_COMPLETED,
};

static void w_regs_read(struct ra_dev *d, struct w_regs *r)
{
	for (int i = 0; i < 8; i++)
		r->v[i] = ra_rd(d, w_reg_list[i]);
}

/*
 * The forbidden order: B (in a PRE_COPY session) is stopped while A is
 * still RUNNING and storing into B's BAR2.  B's window pages:
 *   1  stored by A while B is PRE_COPY (tracking on)
 *   2  stored by A while B is PRE_COPY_P2P (quiesced, tracking on: the
 *      legal P2P state for a target)
 *   3  stored by A after B's PRE_COPY_P2P -> STOP_COPY arc (B frozen),
 *      before B's final part is read
 *   4  stored by A after B's stream was read to the end
 *
 * What the documents guarantee, and is asserted:
 *   - SRAM dirty bitmap (device spec): peer writes are tracked while
 *     tracking is on: PRECOPY_INFO counts pages 1 and 2 as dirty;
 *   - Quiesce (device spec): BAR2 stays writable by peers: page 2 lands;
 *   - A is RUNNING, its DMA target is mapped: all four STOREs complete OK;
 *   - Freeze (device spec): B frozen changes no register, whatever A does;
 *     the FSM keeps B in STOP_COPY / STOP;
 *   - migration-stream.rst and driver.rst (PRE_COPY_P2P -> STOP_COPY:
 *     freeze, *last* dirty sync, save state): pages 1 and 2 are carried,
 *     page 3 (clean at that last sync, already sent) and page 4 are not:
 *     the destination keeps the canary there although A completed those
 *     STOREs.  That loss is why every device must reach RUNNING_P2P
 *     before any is stopped.
 * Printed only: whether A's writes into the frozen B's BAR2 landed in the
 * source's SRAM (the spec does not say).
 */
TEST_F_TIMEOUT(p2p, p2p_wrong_order_documented, 900)
{
	struct ra_dev *A = &self->dev[0], *B = &self->dev[1];
	struct mig_buf s = { 0 };
	struct mig_limits lim;
	struct mig_verdict v;
	struct w_regs before, after;
	struct refaccel_cpl cpl;
	struct refaccel_desc d;
	uint64_t initial, dirty;
	uint8_t *img = NULL, want[W_LEN];
	char why[256];
	bool eof;
	int fd = -1, pg, ret;
	long at;

	ret = peer_map(self, B, W_WIN, why, sizeof(why));
	if (ret)
		SKIP(return, "%s", why);
	ring_start(_metadata, self, 0, 16, 16);
	ring_start(_metadata, self, 1, 16, 16);
	for (pg = 1; pg <= 4; pg++) {
		slot_write(_metadata, A, (uint64_t)pg * PAGE + W_OFF, W_LEN, K_A, pg);
		slot_write(_metadata, B, (uint64_t)pg * PAGE + W_OFF, W_LEN,
			   K_CANARY, pg);
	}
	/* B has done work of its own: its state is not all zeros. */
	d = ra_desc_nop(TAG_BASE | 0x200);
	ASSERT_EQ(0, ra_run(&self->ring[1], &d, &cpl, self->tmo));

	ret = mig_set_state(&B->vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	ASSERT_EQ(0, ret) TH_LOG("B -> PRE_COPY: %s", strerror(-ret));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_read_stream(fd, &s, STREAM_CHUNK, &eof));
	ASSERT_FALSE(eof);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0u, initial);
	ASSERT_EQ(0u, dirty) TH_LOG("idle B: nothing dirty after the initial pass");

	/* 1: tracked peer write into a running B */
	w_store(_metadata, self, 1, "B in PRE_COPY");
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_LE(PAGE, dirty) TH_LOG("A's write into B's BAR2 not tracked as dirty");

	/* 2: B quiesced (the legal target state), A still running */
	set_state(_metadata, B, VFIO_DEVICE_STATE_PRE_COPY_P2P, "B");
	w_store(_metadata, self, 2, "B in PRE_COPY_P2P");
	ASSERT_EQ(-1, at = slot_diff(_metadata, B, 2 * PAGE + W_OFF, W_LEN, K_A, 2))
		TH_LOG("quiesced B did not accept A's peer write (byte %ld)", at);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_LE(2 * PAGE, dirty)
		TH_LOG("A's write into quiesced B's BAR2 not tracked as dirty (%llu bytes)",
		       (unsigned long long)dirty);

	/* The forbidden step: B stopped while A is RUNNING. */
	set_state(_metadata, B, VFIO_DEVICE_STATE_STOP_COPY, "B (A still RUNNING)");
	ASSERT_NE(0u, ra_rd(B, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS)) & REFACCEL_MIG_STATUS_FROZEN);
	w_regs_read(B, &before);

	/* 3: A stores into the frozen B, before B's final part is read */
	w_store(_metadata, self, 3, "B frozen in STOP_COPY, stream not read");
	at = slot_diff(_metadata, B, 3 * PAGE + W_OFF, W_LEN, K_A, 3);
	TH_LOG("A's STORE into frozen B page 3 completed OK; B's SRAM %s",
	       at < 0 ? "holds it (BAR2 is RAM: the peer write landed)" :
	       "does not hold it");
	w_regs_read(B, &after);
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ(before.v[i], after.v[i])
			TH_LOG("frozen B's register 0x%x changed 0x%x -> 0x%x under A's peer write",
			       w_reg_list[i], before.v[i], after.v[i]);
	}
	expect_state(_metadata, B, VFIO_DEVICE_STATE_STOP_COPY, "B");

	ASSERT_EQ(0, mig_read_stream(fd, &s, STREAM_CHUNK, &eof));
	ASSERT_TRUE(eof) TH_LOG("STOP_COPY must end in EOF");
	close(fd);
	set_state(_metadata, B, VFIO_DEVICE_STATE_STOP, "B");

	/* 4: A stores into B after B's stream is complete */
	w_store(_metadata, self, 4, "B in STOP, stream complete");
	at = slot_diff(_metadata, B, 4 * PAGE + W_OFF, W_LEN, K_A, 4);
	TH_LOG("A's STORE into stopped B page 4 completed OK; B's SRAM %s",
	       at < 0 ? "holds it" : "does not hold it");
	w_regs_read(B, &after);
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ(before.v[i], after.v[i])
			TH_LOG("stopped B's register 0x%x changed 0x%x -> 0x%x",
			       w_reg_list[i], before.v[i], after.v[i]);
	}

	/* What B's destination gets: the reference validator's image. */
	lim.compat_id = ra_rd(B, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID));
	lim.mem_size = self->sram_size;
	lim.page_size = ra_rd(B, REFACCEL_MIG_MIRROR(REFACCEL_REG_SRAM_DIRTY_PGSIZE));
	lim.state_max = ra_rd(B, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATE_MAX));
	img = calloc(1, self->sram_size);
	ASSERT_NE(NULL, img);
	mig_stream_verify(s.p, s.len, &lim, NULL, &v, img);
	ASSERT_EQ((int)MIG_V_ACCEPT, (int)v.kind) TH_LOG("B's stream: %s", v.why);
	for (pg = 1; pg <= 4; pg++) {
		uint32_t kind = pg <= 2 ? K_A : K_CANARY;

		pat(want, W_LEN, kind, pg);
		ASSERT_EQ(0, memcmp(want, img + (size_t)pg * PAGE + W_OFF, W_LEN))
			TH_LOG("B's stream, page %d: expected %s (%s)", pg,
			       kind_name(kind), pg <= 2 ?
			       "a tracked write before the stop must be carried" :
			       "a write after the last dirty sync is not carried");
	}
	TH_LOG("B's stream (%zu bytes) carries A's STOREs into pages 1-2 (before B's stop) but not 3-4 (after it): A completed 3 and 4, the destination loses them",
	       s.len);

	/* And a real destination, if there is a spare function. */
	if (self->n >= 3) {
		struct ra_dev *D = &self->dev[2];

		set_state(_metadata, D, VFIO_DEVICE_STATE_STOP, "D");
		ret = mig_load(&D->vdev, s.p, s.len, STREAM_CHUNK);
		ASSERT_EQ(0, ret) TH_LOG("load B's stream into %s: %s",
					 D->vdev.bdf, strerror(-ret));
		for (pg = 1; pg <= 4; pg++) {
			uint32_t kind = pg <= 2 ? K_A : K_CANARY;

			ASSERT_EQ(-1, at = slot_diff(_metadata, D,
					(uint64_t)pg * PAGE + W_OFF, W_LEN, kind, pg))
				TH_LOG("destination %s page %d: not %s (byte %ld)",
				       D->vdev.bdf, pg, kind_name(kind), at);
		}
		TH_LOG("destination %s confirms: pages 3 and 4 lost", D->vdev.bdf);
	} else {
		TH_LOG("no third function: the stream checked by mig_stream_verify() only");
	}
	free(img);
	mig_buf_free(&s);
}

/* ================================================================== */
/* 3. a quiesced device issues no DMA                                 */
/* ================================================================== */

/*
 * Let time pass that A would need many times over to fetch and perform a
 * descriptor: a NOP of N_CLOCK_NS on B (the model's virtual clock is
 * shared by all functions), against A's N_OP_NS.  Without testctl a plain
 * sleep, said so.
 */
static void n_clock(struct __test_metadata *_metadata, FIXTURE_DATA(p2p) *self)
{
	static uint64_t n;
	int ret;

	if (!self->testctl) {
		ra_sleep_ms(200);
		return;
	}
	ret = ra_run_nop(&self->ring[1], TAG_BASE | 0x300 | (++n & 0xff),
			 self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("B's clock NOP: %s", strerror(-ret));
}

/* The STORE to @dst (@target bytes, now the canary) has not happened. */
static void n_check_idle(struct __test_metadata *_metadata,
			 FIXTURE_DATA(p2p) *self, const struct ra_progress *s0,
			 const volatile uint8_t *target, const uint8_t *canary,
			 const char *when)
{
	struct ra_dev *A = &self->dev[0];
	struct refaccel_cpl cpl;
	struct ra_progress s;

	ra_progress_read(A, &s);
	ASSERT_EQ(s0->fetched, s.fetched) TH_LOG("%s: A fetched a descriptor", when);
	ASSERT_EQ(s0->sq_head, s.sq_head) TH_LOG("%s: A's SQ_HEAD moved", when);
	ASSERT_EQ(s0->completed, s.completed) TH_LOG("%s: A completed work", when);
	ASSERT_EQ(s0->cq_tail, s.cq_tail) TH_LOG("%s: A's CQ_TAIL moved", when);
	ASSERT_EQ(0, ra_reap(&self->ring[0], &cpl))
		TH_LOG("%s: a completion appeared in A's CQ (tag 0x%llx)", when,
		       (unsigned long long)cpl.tag);
	ASSERT_EQ(0, memcmp(canary, (const void *)target, W_LEN))
		TH_LOG("%s: A's STORE reached its target", when);
	ASSERT_EQ(0u, ra_irq_drain(A, REFACCEL_VEC_COMPLETION))
		TH_LOG("%s: A sent a completion interrupt", when);
	ASSERT_EQ(0u, ra_rd(A, REFACCEL_REG_INT_STATUS))
		TH_LOG("%s: A set an interrupt status bit", when);
}

/* Let A run: the queued STORE completes exactly once. */
static void n_check_once(struct __test_metadata *_metadata,
			 FIXTURE_DATA(p2p) *self, const struct ra_progress *s0,
			 uint64_t tag, const volatile uint8_t *target,
			 const uint8_t *data, const char *when)
{
	struct ra_dev *A = &self->dev[0];
	struct refaccel_cpl cpl;
	int ret;

	ret = ra_wait_cpl(&self->ring[0], &cpl, self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("%s: the queued STORE never completed: %s",
				 when, strerror(-ret));
	ASSERT_EQ(tag, cpl.tag);
	ASSERT_EQ(REFACCEL_CPL_OK, cpl.status)
		TH_LOG("%s: %s", when, ra_cpl_status_name(cpl.status));
	ASSERT_EQ(0, memcmp(data, (const void *)target, W_LEN))
		TH_LOG("%s: completed, but the data is not at the target", when);
	if (self->irq) {
		/* the positive control of n_check_idle()'s eventfd check */
		ASSERT_LT(0, ra_irq_wait(A, REFACCEL_VEC_COMPLETION, self->tmo))
			TH_LOG("%s: completed without its MSI-X message", when);
		ra_wr(A, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
	}
	n_clock(_metadata, self);
	ASSERT_EQ(0, ra_reap(&self->ring[0], &cpl))
		TH_LOG("%s: a second completion (tag 0x%llx)", when,
		       (unsigned long long)cpl.tag);
	ASSERT_EQ(s0->completed + 1, ra_rd(A, REFACCEL_REG_CNT_COMPLETED));
	ASSERT_EQ(s0->fetched + 1, ra_rd(A, REFACCEL_REG_CNT_FETCHED));
}

/*
 * A in RUNNING_P2P, then in STOP: a STORE submitted meanwhile (its doorbell
 * accepted, or deferred while frozen) is neither fetched nor performed nor
 * completed while B's clock NOP lets 20x A's op latency of virtual time
 * pass; A's CQ, its interrupt status and eventfd and the target stay as
 * they were.  Back in RUNNING it completes once with the data at the
 * target, and its MSI-X message arrives.  The target is B's BAR2
 * (peer window) where the backend can map it, else host memory (said so).
 */
TEST_F_TIMEOUT(p2p, p2p_quiesced_issues_no_dma, 600)
{
	struct ra_dev *A = &self->dev[0], *B = &self->dev[1];
	struct ra_ring *r = &self->ring[0];
	uint8_t canary[W_LEN], data[W_LEN];
	volatile uint8_t *target[2];
	uint64_t dst[2];
	struct refaccel_desc d;
	struct ra_progress s0;
	char why[256];
	int ret;

	ret = peer_map(self, B, PAGE, why, sizeof(why));
	if (!ret) {
		target[0] = B->sram;
		target[1] = B->sram + W_LEN;
		dst[0] = self->map_iova;
		dst[1] = self->map_iova + W_LEN;
		TH_LOG("target: B's BAR2 (%s) through the peer window", B->vdev.bdf);
	} else {
		ASSERT_EQ(0, vu_dma_alloc(&self->iommu, PAGE, VU_DMA_RW, &self->buf));
		target[0] = self->buf.va;
		target[1] = (uint8_t *)self->buf.va + W_LEN;
		dst[0] = self->buf.iova;
		dst[1] = self->buf.iova + W_LEN;
		TH_LOG("%s: the target is host memory instead", why);
	}
	ring_start(_metadata, self, 0, 16, 16);
	ring_start(_metadata, self, 1, 16, 16);
	/* A's completion interrupts: none while stopped, one after */
	ASSERT_EQ(0, ra_irq_enable(A));
	self->irq = true;
	ra_wr(A, REFACCEL_REG_INT_MASK, 0);
	ra_wr(A, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
	ra_irq_drain(A, REFACCEL_VEC_COMPLETION);
	if (self->testctl) {
		ra_wr(A, REFACCEL_REG_TEST_OP_LATENCY, N_OP_NS);
		ra_wr(B, REFACCEL_REG_TEST_OP_LATENCY, N_CLOCK_NS);
	} else {
		TH_LOG("no testctl: waiting with a 200 ms sleep instead of B's virtual clock");
	}
	pat(canary, W_LEN, K_CANARY, 0);
	pat(data, W_LEN, K_A, 0);
	memcpy((void *)target[0], canary, W_LEN);
	memcpy((void *)target[1], canary, W_LEN);
	ASSERT_EQ(0, ra_sram_write(A, 0, data, W_LEN));

	/* RUNNING_P2P: doorbell accepted, nothing fetched */
	set_state(_metadata, A, VFIO_DEVICE_STATE_RUNNING_P2P, "A");
	ra_progress_read(A, &s0);
	d = ra_desc_store(TAG_BASE | 0x401, 0, dst[0], W_LEN);
	ASSERT_EQ(0, ra_submit(r, &d));
	ASSERT_EQ(r->sq_tail, ra_rd(A, REFACCEL_REG_SQ_TAIL))
		TH_LOG("SQ_TAIL doorbell of a quiesced A not accepted");
	n_clock(_metadata, self);
	n_check_idle(_metadata, self, &s0, target[0], canary, "A in RUNNING_P2P");
	expect_state(_metadata, A, VFIO_DEVICE_STATE_RUNNING_P2P, "A");
	ASSERT_NE(0u, ra_rd(A, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS)) & REFACCEL_MIG_STATUS_QUIESCED);
	set_state(_metadata, A, VFIO_DEVICE_STATE_RUNNING, "A");
	n_check_once(_metadata, self, &s0, d.tag, target[0], data,
		     "A back from RUNNING_P2P");

	/* STOP: doorbell deferred, nothing fetched, also via RUNNING_P2P */
	set_state(_metadata, A, VFIO_DEVICE_STATE_STOP, "A");
	ra_progress_read(A, &s0);
	d = ra_desc_store(TAG_BASE | 0x402, 0, dst[1], W_LEN);
	ASSERT_EQ(0, ra_submit(r, &d));
	ASSERT_EQ(r->sq_tail, ra_rd(A, REFACCEL_REG_SQ_TAIL))
		TH_LOG("SQ_TAIL of a frozen A must read the deferred doorbell");
	n_clock(_metadata, self);
	n_check_idle(_metadata, self, &s0, target[1], canary, "A in STOP");
	set_state(_metadata, A, VFIO_DEVICE_STATE_RUNNING_P2P, "A");
	n_clock(_metadata, self);
	n_check_idle(_metadata, self, &s0, target[1], canary,
		     "A in RUNNING_P2P after STOP");
	set_state(_metadata, A, VFIO_DEVICE_STATE_RUNNING, "A");
	n_check_once(_metadata, self, &s0, d.tag, target[1], data,
		     "A back from STOP");
}

TEST_HARNESS_MAIN
