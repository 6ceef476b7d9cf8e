// SPDX-License-Identifier: GPL-2.0-only
/*
 * Page request kselftests: the register block that stands in for PCIe PRI
 * (Documentation/device-spec.rst, "Page requests") and its cancellation by
 * the quiesce of refaccel-vfio-pci (project issue 9, "PRI cancellation").
 * The tests play the party that answers page requests (a guest's driver
 * behind a vIOMMU, or the VMM): they map the missing page into the IOMMU
 * and write PRI_RESP.
 *
 * The faulting work is a COPY (or CRC32C) of three pages that starts and
 * ends inside a page; one page of its destination or source, the middle
 * one, is an IOVA that was never mapped.  A request is named by its PRG
 * index and epoch (ra_pri_*() "id"); an answer must carry both.
 *
 *   pri.caps                    CAPS.PRI; the block after open: disabled,
 *                               log empty, nothing pending, counters 0;
 *                               (variant driver) the QUIESCE feature has
 *                               PRI_ABORT, and PRI_ENABLED follows
 *                               PRI_CTRL.ENABLE: 0, 1, 0
 *   pri_fault.request_then_success
 *                               one request for the missing page (address,
 *                               WRITE or READ, index and epoch as in
 *                               PRI_PENDING), CNT_PAGE_REQS + 1, MSI-X
 *                               vector 2, no completion, nothing written;
 *                               map + SUCCESS: completes OK exactly once,
 *                               data right in every page
 *   pri_fault.answer_invalid    INVALID: PAGE_FAULT, nothing pending,
 *                               nothing written
 *   pri_fault.answer_failure    FAILURE: the same
 *   pri_fault.pri_disabled      PRI off: DMA_WRITE_FAULT / DMA_READ_FAULT
 *                               as without PRI, nothing logged
 *   pri.stale_answers           answers while disabled, with nothing
 *                               pending, with another index, another
 *                               epoch, an unknown code, a reserved bit:
 *                               PRI_STALE + 1 each and nothing else; the
 *                               request still completes once when
 *                               answered right
 *   pri.disable_while_pending   clearing ENABLE: log empty, PAGE_FAULT
 *   pri.log_bound               SUCCESS without mapping, again and again:
 *                               a new request each time (next PRG index)
 *                               until 32 are logged, then PAGE_FAULT;
 *                               the log pops oldest first and takes
 *                               requests again once emptied
 *   pri.quiesce_aborts          (variant) RUNNING -> RUNNING_P2P with a
 *                               request pending succeeds: aborted, log
 *                               empty; the late answer is stale; back in
 *                               RUNNING the device asks again (new index,
 *                               new epoch; the new index with the old
 *                               epoch is stale); answered, it completes
 *                               once
 *   pri.no_abort_times_out      (variant, testctl) TEST_FLAGS.NO_PRI_ABORT:
 *                               the arc fails ETIMEDOUT, the device stays
 *                               RUNNING with the request pending
 *   pri.migrate_pending         (variant) saved with a request pending and
 *                               resumed on another function (or the same
 *                               one after a reset): the destination asks
 *                               again and completes once, the source never
 *   pri.reset_pending           VFIO_DEVICE_RESET with a request pending:
 *                               block empty, no completion, the late answer
 *                               is stale
 *
 * Every test SKIPs without CAPS.PRI (the model's pri property).  Bound to
 * stock vfio-pci, the three migration tests SKIP (no migration uAPI) and
 * caps checks the register block only.  Nothing is timed: an event is
 * waited for (REFACCEL_TIMEOUT_MS at most), and "no second completion" is
 * shown by a NOP submitted behind the work completing next (the device
 * executes descriptors one at a time, in order).
 *
 * Environment: REFACCEL_BDF, REFACCEL_TIMEOUT_MS, VFIO_MIG_BACKEND (README).
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
#include "mig_test_env.h"

#define PAGE		REFACCEL_PRI_PAGE_SIZE
#define NPG		3		/* pages of each buffer */
#define HOLE		1		/* the page left unmapped */
#define OFF		0x180u		/* work starts and ends inside a page */
#define XLEN		(NPG * PAGE - 2 * OFF)
#define CRC_SEED	0x5eed0001u
#define TAG_BASE	0x7072690000000000ull	/* "pri" */
#define STREAM_CHUNK	(64u << 10)
#define T_TIMEOUT	300
#define PRGI_MASK	REFACCEL_PRI_INFO_PRGI_MASK
#define EPOCH_SHIFT	REFACCEL_PRI_EPOCH_SHIFT
#define RESP_BAD_CODE	0x2u		/* neither SUCCESS, INVALID nor FAILURE */

enum side { SIDE_DST, SIDE_SRC };

struct pri_env {
	struct ra_found found;
	char bdf[2][VU_BDF_LEN];	/* the variant's functions first */
	int nbdf;
	struct vu_iommu iommu;
	struct ra_dev dev;
	struct ra_dev peer;		/* migrate_pending's destination */
	struct ra_ring ring;
	struct ra_pages src, dst;
	uint32_t caps;
	bool variant;
	int tmo;
	uint64_t tag, rng;
	bool iommu_ok, opened, peer_open, ring_ok;
};

/* What a test reads of the device before and after a step. */
struct pri_snap {
	uint32_t page_reqs, completed, errors, cq_tail;
	uint32_t ctrl, count, pending, stale, aborted;
};

static void snap(struct ra_dev *d, struct pri_snap *s)
{
	s->page_reqs = ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS);
	s->completed = ra_rd(d, REFACCEL_REG_CNT_COMPLETED);
	s->errors = ra_rd(d, REFACCEL_REG_CNT_ERRORS);
	s->cq_tail = ra_rd(d, REFACCEL_REG_CQ_TAIL);
	s->ctrl = ra_rd(d, REFACCEL_REG_PRI_CTRL);
	s->count = ra_rd(d, REFACCEL_REG_PRI_LOG_COUNT);
	s->pending = ra_rd(d, REFACCEL_REG_PRI_PENDING);
	s->stale = ra_rd(d, REFACCEL_REG_PRI_STALE);
	s->aborted = ra_rd(d, REFACCEL_REG_PRI_ABORTED);
}

/* The faulting work of a test. */
struct pri_work {
	struct refaccel_desc desc;
	struct ra_pages *holed;		/* the buffer with the missing page */
	uint64_t addr;			/* the page it asks for */
	uint32_t rw;			/* REFACCEL_PRI_INFO_WRITE or _READ */
	struct pri_snap s0;		/* before its last submission */
	uint32_t id;			/* of its pending request (ra_pri_*) */
};

static long first_diff(const uint8_t *x, const uint8_t *y, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

static long first_nonzero(const uint8_t *x, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (x[i])
			return (long)i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* fixtures                                                            */
/* ------------------------------------------------------------------ */

/*
 * The first function env_find() gives (one bound to refaccel-vfio-pci if
 * there is one), reset, MSI-X on with every INT_STATUS bit
 * unmasked, a 16/16 ring enabled; PRI left disabled.
 */
static void env_setup(struct __test_metadata *_metadata, struct pri_env *e)
{
	enum vu_backend b = vu_backend_from_env();
	struct ra_dev *d = &e->dev;
	char why[700];
	int ret;

	e->tmo = ra_timeout_ms();
	e->rng = 0x7072692d74657374ull;
	e->nbdf = env_find(&e->found, e->bdf, 2, why, sizeof(why));
	if (!e->nbdf)
		SKIP(return, "%s", why);
	ret = vu_iommu_init(&e->iommu, b);
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend", vu_backend_name(b));
	ASSERT_EQ(0, ret) TH_LOG("%s backend: %s", vu_backend_name(b),
				 strerror(-ret));
	e->iommu_ok = true;
	ret = ra_open(&e->iommu, e->bdf[0], d);
	ASSERT_EQ(0, ret) TH_LOG("open %s: %s", e->bdf[0], strerror(-ret));
	e->opened = true;
	e->variant = ra_driver_is_variant(d->driver);
	ret = ra_reset(d);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_RESET: %s", strerror(-ret));
	e->caps = ra_rd(d, REFACCEL_REG_CAPS);
	if (!(e->caps & REFACCEL_CAP_PRI))
		SKIP(return, "%s: CAPS 0x%x lacks PRI (the model's pri property is off): the device makes no page requests",
		     d->vdev.bdf, e->caps);
	TH_LOG("%s driver %s, %s backend, CAPS 0x%x", d->vdev.bdf, d->driver,
	       vu_backend_name(e->iommu.backend), e->caps);

	ret = ra_irq_enable(d);
	ASSERT_EQ(0, ret) TH_LOG("MSI-X setup: %s", strerror(-ret));
	ra_wr(d, REFACCEL_REG_INT_MASK, 0);
	ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
	ret = ra_ring_setup(d, &e->iommu, &e->ring, 16, 16);
	ASSERT_EQ(0, ret) TH_LOG("ring setup: %s", strerror(-ret));
	e->ring_ok = true;
	ret = ra_enable(d, e->tmo);
	if (ret)
		ra_dump(d, "enable failed");
	ASSERT_EQ(0, ret) TH_LOG("CTRL.ENABLE: %s", strerror(-ret));
	for (int v = 0; v < REFACCEL_NUM_VECTORS; v++)
		ra_irq_drain(d, v);
}

static void env_teardown(struct pri_env *e)
{
	/* Stop every DMA before the memory goes. */
	if (e->opened && ra_reset(&e->dev))
		ra_wr(&e->dev, REFACCEL_REG_CTRL, 0);
	if (e->peer_open && ra_reset(&e->peer))
		ra_wr(&e->peer, REFACCEL_REG_CTRL, 0);
	ra_pages_free(&e->src);
	ra_pages_free(&e->dst);
	if (e->ring_ok)
		ra_ring_free(&e->ring);
	if (e->peer_open) {
		ra_irq_disable(&e->peer);
		ra_close(&e->peer);
	}
	if (e->opened) {
		ra_irq_disable(&e->dev);
		ra_close(&e->dev);
	}
	if (e->iommu_ok)
		vu_iommu_cleanup(&e->iommu);
}

/* Both fixtures: one struct pri_env, env_setup() and env_teardown(). */
#define PRI_FIXTURE_BODY(name)						\
	FIXTURE_SETUP(name) { env_setup(_metadata, &self->e); }	\
	FIXTURE_TEARDOWN(name) { env_teardown(&self->e); }

FIXTURE(pri) {
	struct pri_env e;
};
PRI_FIXTURE_BODY(pri)

/* The same, once per kind of fault. */
FIXTURE(pri_fault) {
	struct pri_env e;
};
PRI_FIXTURE_BODY(pri_fault)

FIXTURE_VARIANT(pri_fault) {
	enum side side;		/* the buffer with the missing page */
	uint8_t op;
};

FIXTURE_VARIANT_ADD(pri_fault, dst_copy) {
	.side = SIDE_DST, .op = REFACCEL_OP_COPY,
};

FIXTURE_VARIANT_ADD(pri_fault, src_copy) {
	.side = SIDE_SRC, .op = REFACCEL_OP_COPY,
};

FIXTURE_VARIANT_ADD(pri_fault, src_crc32c) {
	.side = SIDE_SRC, .op = REFACCEL_OP_CRC32C,
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static uint64_t next_tag(struct pri_env *e)
{
	return TAG_BASE | ++e->tag;
}

/* The variant driver with its migration uAPI, else the test SKIPs. */
#define NEED_VARIANT(e) do {						\
	if (!(e)->variant)						\
		SKIP(return, "%s is bound to %s: needs the migration uAPI of refaccel-vfio-pci", \
		     (e)->dev.vdev.bdf, (e)->dev.driver);		\
	expect_mig_p2p(_metadata, (e));					\
} while (0)

static void expect_mig_p2p(struct __test_metadata *_metadata,
			   struct pri_env *e)
{
	uint64_t flags = 0;
	int ret;

	ret = mig_get_flags(&e->dev.vdev, &flags);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s",
				 strerror(-ret));
	ASSERT_NE(0ull, (unsigned long long)(flags & VFIO_MIGRATION_P2P));
}

/*
 * The two buffers, NPG pages each: the source random (its unmapped page
 * too: it is mapped later with those bytes), the destination zero.  Page
 * HOLE of the @side buffer is left unmapped.
 */
static void bufs_setup(struct __test_metadata *_metadata, struct pri_env *e,
		       enum side side)
{
	const uint64_t all = (1ull << NPG) - 1, hole = 1ull << HOLE;
	int ret;

	ret = ra_pages_alloc(&e->iommu, NPG, side == SIDE_SRC ? all & ~hole : all,
			     VU_DMA_RW, &e->src);
	ASSERT_EQ(0, ret) TH_LOG("source pages: %s", strerror(-ret));
	ret = ra_pages_alloc(&e->iommu, NPG, side == SIDE_DST ? all & ~hole : all,
			     VU_DMA_RW, &e->dst);
	ASSERT_EQ(0, ret) TH_LOG("destination pages: %s", strerror(-ret));
	ra_rand_fill(e->src.va, NPG * PAGE, &e->rng);
}

/* The work of the test: @op over the two buffers, OFF into the first page. */
static void work_init(struct pri_env *e, enum side side, uint8_t op,
		      struct pri_work *w)
{
	memset(w, 0, sizeof(*w));
	if (op == REFACCEL_OP_CRC32C)
		w->desc = ra_desc_crc32c(0, e->src.iova + OFF, XLEN, CRC_SEED);
	else
		w->desc = ra_desc_copy(0, e->src.iova + OFF, e->dst.iova + OFF,
				       XLEN);
	w->holed = side == SIDE_SRC ? &e->src : &e->dst;
	w->addr = ra_pages_iova(w->holed, HOLE);
	w->rw = side == SIDE_SRC ? REFACCEL_PRI_INFO_READ : REFACCEL_PRI_INFO_WRITE;
}

/*
 * The descriptor just submitted to @r asks for page @addr: PRI_PENDING
 * becomes valid (with an id other than @old, -1: any), the log holds
 * exactly that one request (@addr, @rw, the pending PRG index and epoch),
 * CNT_PAGE_REQS is one more than in @s0, INT_STATUS.PAGE_REQ is set and
 * MSI-X vector 2 fires, and nothing completed.  Clears INT_STATUS.PAGE_REQ,
 * so that the next request interrupts again.  Returns the request's id.
 */
static uint32_t expect_request(struct __test_metadata *_metadata,
			       struct ra_ring *r, const struct pri_snap *s0,
			       uint64_t addr, uint32_t rw, int64_t old, int tmo)
{
	struct ra_dev *d = r->dev;
	struct refaccel_cpl cpl;
	struct ra_pri_req req = { 0 };
	uint32_t id = 0, n;
	int ret;

	ret = ra_pri_wait(d, old, &id, tmo);
	if (ret) {
		ra_pri_dump(d, "no page request");
		ra_dump(d, "no page request");
	}
	ASSERT_EQ(0, ret) TH_LOG("%s: no page request for 0x%llx within %d ms",
				 d->vdev.bdf, (unsigned long long)addr, tmo);
	n = ra_pri_log_head(d, &req);
	ASSERT_EQ(1u, n) TH_LOG("PRI_LOG_COUNT %u: expected exactly the one request",
				n);
	ASSERT_EQ(addr, req.addr)
		TH_LOG("logged page 0x%llx, the missing page is 0x%llx",
		       (unsigned long long)req.addr, (unsigned long long)addr);
	ASSERT_EQ(rw, req.info & (REFACCEL_PRI_INFO_WRITE | REFACCEL_PRI_INFO_READ))
		TH_LOG("PRI_LOG_INFO 0x%x: expected %s only", req.info,
		       rw == REFACCEL_PRI_INFO_WRITE ? "WRITE" : "READ");
	ASSERT_EQ(id, req.id)
		TH_LOG("logged PRG index %u epoch %u, PRI_PENDING says %u epoch %u",
		       ra_pri_prgi(req.id), ra_pri_epoch(req.id), ra_pri_prgi(id),
		       ra_pri_epoch(id));
	ASSERT_EQ(s0->page_reqs + 1, ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS));
	ASSERT_NE(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) & REFACCEL_INT_PAGE_REQ)
		TH_LOG("INT_STATUS.PAGE_REQ not set by the request");
	ASSERT_LT(0, ra_irq_wait(d, REFACCEL_VEC_PAGE_REQ, tmo))
		TH_LOG("MSI-X vector %d (page request) did not fire",
		       REFACCEL_VEC_PAGE_REQ);
	ASSERT_EQ(0, ra_reap(r, &cpl))
		TH_LOG("completion (tag 0x%llx, %s) while the request is pending",
		       (unsigned long long)cpl.tag, ra_cpl_status_name(cpl.status));
	ASSERT_EQ(s0->completed, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_PAGE_REQ);
	return id;
}

/*
 * Work that page-requested (or was refused) has done nothing: the pages
 * are checked before any DMA, so the destination is still all zero.
 */
static void expect_dst_untouched(struct __test_metadata *_metadata,
				 struct pri_env *e, const char *when)
{
	long at = first_nonzero(e->dst.va, NPG * PAGE);

	ASSERT_EQ(-1, at) TH_LOG("%s: the destination was written (byte %ld)",
				 when, at);
}

/*
 * (Re)submit @w's descriptor with a new tag; it must ask for its page.
 * INT_STATUS.PAGE_REQ is cleared first: a bit that stays set sends no
 * message for the next request.
 */
static void work_submit(struct __test_metadata *_metadata, struct pri_env *e,
			struct pri_work *w)
{
	w->desc.tag = next_tag(e);
	ra_wr(e->ring.dev, REFACCEL_REG_INT_STATUS, REFACCEL_INT_PAGE_REQ);
	ra_irq_drain(e->ring.dev, REFACCEL_VEC_PAGE_REQ);
	snap(e->ring.dev, &w->s0);
	ASSERT_EQ(0, ra_submit(&e->ring, &w->desc));
	w->id = expect_request(_metadata, &e->ring, &w->s0, w->addr, w->rw,
			       -1, e->tmo);
	expect_dst_untouched(_metadata, e, "waiting for the page");
}

/* Buffers (if not yet there), PRI on, and the work waiting for its page. */
static void work_start(struct __test_metadata *_metadata, struct pri_env *e,
		       enum side side, uint8_t op, struct pri_work *w)
{
	if (!e->src.va)
		bufs_setup(_metadata, e, side);
	ra_pri_enable(&e->dev, true);
	ASSERT_EQ(REFACCEL_PRI_CTRL_ENABLE, ra_rd(&e->dev, REFACCEL_REG_PRI_CTRL));
	work_init(e, side, op, w);
	work_submit(_metadata, e, w);
}

/*
 * The next completion on @r is @d's with @status, and the only one: a NOP
 * submitted behind it completes next.  *@out gets @d's completion.
 */
static void expect_done_once(struct __test_metadata *_metadata,
			     struct pri_env *e, struct ra_ring *r,
			     const struct refaccel_desc *d, unsigned int status,
			     struct refaccel_cpl *out)
{
	struct refaccel_desc nop = ra_desc_nop(next_tag(e));
	struct refaccel_cpl cpl;
	int ret;

	ret = ra_wait_cpl(r, out, e->tmo);
	if (ret)
		ra_pri_dump(r->dev, "no completion");
	ASSERT_EQ(0, ret) TH_LOG("tag 0x%llx never completed: %s",
				 (unsigned long long)d->tag, strerror(-ret));
	ASSERT_EQ(d->tag, out->tag) TH_LOG("completion of tag 0x%llx",
					   (unsigned long long)out->tag);
	ASSERT_EQ(d->opcode, out->opcode);
	ASSERT_EQ(status, out->status) TH_LOG("status %s, expected %s",
					      ra_cpl_status_name(out->status),
					      ra_cpl_status_name(status));
	ret = ra_run(r, &nop, &cpl, e->tmo);
	ASSERT_EQ(0, ret) TH_LOG("NOP behind the work: %s", strerror(-ret));
	ASSERT_EQ(nop.tag, cpl.tag)
		TH_LOG("a second completion (tag 0x%llx, %s) of the work",
		       (unsigned long long)cpl.tag, ra_cpl_status_name(cpl.status));
	ASSERT_EQ(0, ra_reap(r, &cpl)) TH_LOG("extra completion tag 0x%llx",
					      (unsigned long long)cpl.tag);
}

/* @w completed OK: its result, and every destination page, are right. */
static void expect_data(struct __test_metadata *_metadata, struct pri_env *e,
			const struct pri_work *w, const struct refaccel_cpl *cpl)
{
	const uint8_t *src = e->src.va, *dst = e->dst.va;
	const char *hole = w->holed == &e->dst ? "destination" : "source";

	if (w->desc.opcode == REFACCEL_OP_CRC32C) {
		ASSERT_EQ(ra_ref_crc32c(CRC_SEED, src + OFF, XLEN), cpl->result)
			TH_LOG("CRC32C over the source with page %d mapped late",
			       HOLE);
		return;
	}
	for (uint32_t pg = 0; pg < NPG; pg++) {
		size_t lo = pg ? pg * PAGE : OFF;
		size_t hi = pg < NPG - 1 ? (pg + 1) * PAGE : NPG * PAGE - OFF;
		long at = first_diff(src + lo, dst + lo, hi - lo);

		ASSERT_EQ(-1, at)
			TH_LOG("COPY: page %u differs from the source at byte %ld (%s page %d was mapped after the request)",
			       pg, at, hole, HOLE);
	}
	ASSERT_EQ(-1, first_nonzero(dst, OFF)) TH_LOG("COPY wrote before dst");
	ASSERT_EQ(-1, first_nonzero(dst + NPG * PAGE - OFF, OFF))
		TH_LOG("COPY wrote past its end");
}

/* Map @w's missing page and answer SUCCESS: it completes OK once. */
static void map_and_answer(struct __test_metadata *_metadata,
			   struct pri_env *e, struct pri_work *w, uint32_t id)
{
	struct refaccel_cpl cpl;
	int ret;

	ret = ra_pages_map(w->holed, HOLE);
	ASSERT_EQ(0, ret) TH_LOG("map the requested page: %s", strerror(-ret));
	ra_pri_respond(e->ring.dev, id, REFACCEL_PRI_RESP_SUCCESS);
	expect_done_once(_metadata, e, &e->ring, &w->desc, REFACCEL_CPL_OK, &cpl);
	expect_data(_metadata, e, w, &cpl);
	ASSERT_FALSE(ra_pri_pending(e->ring.dev, NULL))
		TH_LOG("a request is pending after the work completed");
}

/*
 * An answer the device must discard: PRI_STALE + 1, and nothing else
 * changes (what is pending, the log, the counters, the CQ).
 */
static void answer_stale(struct __test_metadata *_metadata, struct pri_env *e,
			 uint32_t id, uint32_t code, const char *what)
{
	struct ra_dev *d = e->ring.dev;
	struct pri_snap a, b;
	struct refaccel_cpl cpl;

	snap(d, &a);
	ra_pri_respond(d, id, code);
	snap(d, &b);
	ASSERT_EQ(a.stale + 1, b.stale) TH_LOG("%s (PRI_RESP 0x%x): PRI_STALE %u -> %u",
					       what, id | code << REFACCEL_PRI_RESP_CODE_SHIFT,
					       a.stale, b.stale);
	ASSERT_EQ(a.pending, b.pending) TH_LOG("%s: PRI_PENDING 0x%x -> 0x%x",
					       what, a.pending, b.pending);
	ASSERT_EQ(a.count, b.count) TH_LOG("%s: PRI_LOG_COUNT %u -> %u", what,
					   a.count, b.count);
	ASSERT_EQ(a.page_reqs, b.page_reqs) TH_LOG("%s: a new page request", what);
	ASSERT_EQ(a.aborted, b.aborted);
	ASSERT_EQ(a.ctrl, b.ctrl);
	ASSERT_EQ(a.completed, b.completed) TH_LOG("%s: work completed", what);
	ASSERT_EQ(a.cq_tail, b.cq_tail);
	ASSERT_EQ(0, ra_reap(&e->ring, &cpl)) TH_LOG("%s: completion tag 0x%llx",
						     what, (unsigned long long)cpl.tag);
}

static void expect_state(struct __test_metadata *_metadata, struct ra_dev *d,
			 uint32_t want)
{
	uint32_t st = ~0u;

	ASSERT_EQ(0, mig_get_state(&d->vdev, &st));
	ASSERT_EQ(want, st) TH_LOG("%s is %s, expected %s", d->vdev.bdf,
				   mig_state_name(st), mig_state_name(want));
}

/* ================================================================== */
/* 1. the block and the capability flags                              */
/* ================================================================== */

static uint32_t quiesce_flags(struct __test_metadata *_metadata,
			      struct ra_dev *d)
{
	struct refaccel_vfio_quiesce q;
	int ret = mig_quiesce_get(&d->vdev, &q);

	ASSERT_EQ(0, ret) TH_LOG("GET REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE: %s",
				 strerror(-ret));
	return q.flags;
}

TEST_F_TIMEOUT(pri, caps, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	struct pri_snap s;
	uint32_t f;

	ASSERT_NE(0u, e->caps & REFACCEL_CAP_PRI);
	snap(d, &s);
	EXPECT_EQ(0u, s.ctrl) TH_LOG("PRI_CTRL 0x%x after open", s.ctrl);
	EXPECT_EQ(0u, s.count) TH_LOG("PRI_LOG_COUNT %u after open", s.count);
	EXPECT_EQ(0u, s.pending) TH_LOG("PRI_PENDING 0x%x after open", s.pending);
	EXPECT_EQ(0u, s.stale);
	EXPECT_EQ(0u, s.aborted);
	EXPECT_EQ(0u, s.page_reqs);

	if (e->variant) {
		f = quiesce_flags(_metadata, d);
		EXPECT_NE(0u, f & REFACCEL_QUIESCE_F_PRI_ABORT)
			TH_LOG("QUIESCE flags 0x%x: no PRI_ABORT on a device with CAPS.PRI", f);
		EXPECT_EQ(0u, f & REFACCEL_QUIESCE_F_PRI_ENABLED)
			TH_LOG("QUIESCE flags 0x%x: PRI_ENABLED with PRI_CTRL 0", f);
	} else {
		TH_LOG("%s is bound to %s: no QUIESCE feature, the register block only",
		       d->vdev.bdf, d->driver);
	}

	ra_pri_enable(d, true);
	ASSERT_EQ(REFACCEL_PRI_CTRL_ENABLE, ra_rd(d, REFACCEL_REG_PRI_CTRL));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_PRI_LOG_COUNT));
	EXPECT_FALSE(ra_pri_pending(d, NULL));
	if (e->variant) {
		f = quiesce_flags(_metadata, d);
		EXPECT_NE(0u, f & REFACCEL_QUIESCE_F_PRI_ENABLED)
			TH_LOG("QUIESCE flags 0x%x: no PRI_ENABLED with PRI_CTRL.ENABLE set", f);
		EXPECT_NE(0u, f & REFACCEL_QUIESCE_F_PRI_ABORT);
	}

	ra_pri_enable(d, false);
	ASSERT_EQ(0u, ra_rd(d, REFACCEL_REG_PRI_CTRL));
	if (e->variant) {
		f = quiesce_flags(_metadata, d);
		EXPECT_EQ(0u, f & REFACCEL_QUIESCE_F_PRI_ENABLED)
			TH_LOG("QUIESCE flags 0x%x: PRI_ENABLED after PRI_CTRL.ENABLE was cleared", f);
	}
}

/* ================================================================== */
/* 2, 3, 5. one fault, per kind                                       */
/* ================================================================== */

/*
 * The work asks for its missing page (expect_request()); the test maps it
 * and answers SUCCESS: the work completes OK exactly once with the right
 * data, and asked only once.
 */
TEST_F_TIMEOUT(pri_fault, request_then_success, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct pri_work w;

	work_start(_metadata, e, variant->side, variant->op, &w);
	TH_LOG("request for 0x%llx (%s), PRG index %u, epoch %u",
	       (unsigned long long)w.addr,
	       w.rw == REFACCEL_PRI_INFO_WRITE ? "WRITE" : "READ",
	       ra_pri_prgi(w.id), ra_pri_epoch(w.id));
	map_and_answer(_metadata, e, &w, w.id);
	EXPECT_EQ(w.s0.page_reqs + 1, ra_rd(&e->dev, REFACCEL_REG_CNT_PAGE_REQS))
		TH_LOG("the retry asked again although the page is mapped");
	EXPECT_EQ(w.s0.completed + 2, ra_rd(&e->dev, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("the work and the NOP behind it, once each");
	EXPECT_EQ(w.s0.errors, ra_rd(&e->dev, REFACCEL_REG_CNT_ERRORS));
}

/* Refuse @w's request by PRI_CTRL.ENABLE := 0 instead of an answer. */
#define REFUSE_DISABLE	(~0u)

/*
 * The work's request refused by the answer @code, or by REFUSE_DISABLE:
 * the work completes PAGE_FAULT, once, nothing is pending any more and it
 * was not asked again.
 */
static void refuse(struct __test_metadata *_metadata, struct pri_env *e,
		   enum side side, uint8_t op, uint32_t code)
{
	struct ra_dev *d = &e->dev;
	struct refaccel_cpl cpl;
	struct pri_work w;

	work_start(_metadata, e, side, op, &w);
	if (code == REFUSE_DISABLE)
		ra_pri_enable(d, false);
	else
		ra_pri_respond(d, w.id, code);
	expect_done_once(_metadata, e, &e->ring, &w.desc, REFACCEL_CPL_PAGE_FAULT,
			 &cpl);
	ASSERT_FALSE(ra_pri_pending(d, NULL)) TH_LOG("PRI_PENDING 0x%x after the refusal",
						     ra_rd(d, REFACCEL_REG_PRI_PENDING));
	EXPECT_EQ(w.s0.errors + 1, ra_rd(d, REFACCEL_REG_CNT_ERRORS));
	EXPECT_EQ(w.s0.page_reqs + 1, ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS))
		TH_LOG("a refused request was asked again");
	expect_dst_untouched(_metadata, e, "refused");
}

/* The answers leave the log alone (only a pop drops an entry): printed. */
TEST_F_TIMEOUT(pri_fault, answer_invalid, T_TIMEOUT)
{
	refuse(_metadata, &self->e, variant->side, variant->op,
	       REFACCEL_PRI_RESP_INVALID);
	TH_LOG("after INVALID: PRI_LOG_COUNT %u",
	       ra_rd(&self->e.dev, REFACCEL_REG_PRI_LOG_COUNT));
}

TEST_F_TIMEOUT(pri_fault, answer_failure, T_TIMEOUT)
{
	refuse(_metadata, &self->e, variant->side, variant->op,
	       REFACCEL_PRI_RESP_FAILURE);
	TH_LOG("after FAILURE: PRI_LOG_COUNT %u",
	       ra_rd(&self->e.dev, REFACCEL_REG_PRI_LOG_COUNT));
}

/* PRI off: the fault completes as without PRI and nothing is logged. */
TEST_F_TIMEOUT(pri_fault, pri_disabled, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	unsigned int want = variant->side == SIDE_SRC ?
			    REFACCEL_CPL_DMA_READ_FAULT : REFACCEL_CPL_DMA_WRITE_FAULT;
	struct refaccel_cpl cpl;
	struct pri_snap s0, s1;
	struct pri_work w;

	bufs_setup(_metadata, e, variant->side);
	ASSERT_EQ(0u, ra_rd(d, REFACCEL_REG_PRI_CTRL));
	work_init(e, variant->side, variant->op, &w);
	w.desc.tag = next_tag(e);
	ra_irq_drain(d, REFACCEL_VEC_PAGE_REQ);
	snap(d, &s0);
	ASSERT_EQ(0, ra_submit(&e->ring, &w.desc));
	expect_done_once(_metadata, e, &e->ring, &w.desc, want, &cpl);
	snap(d, &s1);
	EXPECT_EQ(0u, s1.count) TH_LOG("PRI off, yet %u requests logged", s1.count);
	EXPECT_EQ(0u, s1.pending);
	EXPECT_EQ(s0.page_reqs, s1.page_reqs) TH_LOG("CNT_PAGE_REQS counted");
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) & REFACCEL_INT_PAGE_REQ)
		TH_LOG("INT_STATUS.PAGE_REQ set with PRI off");
	EXPECT_EQ(0u, ra_irq_drain(d, REFACCEL_VEC_PAGE_REQ))
		TH_LOG("MSI-X vector %d fired with PRI off", REFACCEL_VEC_PAGE_REQ);
	EXPECT_EQ(s0.errors + 1, s1.errors);
}

/* ================================================================== */
/* 4, 6, 7. answers, disable, the log                                 */
/* ================================================================== */

/* @id with PRG index @prgi instead, or epoch @epoch instead. */
static uint32_t with_prgi(uint32_t id, uint32_t prgi)
{
	return (id & ~PRGI_MASK) | (prgi & PRGI_MASK);
}

static uint32_t with_epoch(uint32_t id, uint32_t epoch)
{
	return (id & ~REFACCEL_PRI_EPOCH_MASK) | (epoch & 0xffu) << EPOCH_SHIFT;
}

/*
 * Answers that match no request: while PRI is disabled, with nothing
 * pending, and while a request is pending: another PRG index (SUCCESS and
 * INVALID), another epoch, an unknown code, a reserved bit set (9, in the
 * gap above the index; 20, above the code).  Each counts in PRI_STALE and
 * changes nothing else; the pending request still completes once when
 * answered right.
 */
TEST_F_TIMEOUT(pri, stale_answers, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	struct pri_work w;
	uint32_t id;

	bufs_setup(_metadata, e, SIDE_DST);
	ASSERT_EQ(0u, ra_rd(d, REFACCEL_REG_PRI_CTRL));
	answer_stale(_metadata, e, 0, REFACCEL_PRI_RESP_SUCCESS,
		     "an answer while PRI_CTRL.ENABLE is clear");
	ra_pri_enable(d, true);
	answer_stale(_metadata, e, 5, REFACCEL_PRI_RESP_SUCCESS,
		     "an answer with nothing pending");

	work_start(_metadata, e, SIDE_DST, REFACCEL_OP_COPY, &w);
	id = w.id;
	answer_stale(_metadata, e, with_prgi(id, ra_pri_prgi(id) + 1),
		     REFACCEL_PRI_RESP_SUCCESS,
		     "SUCCESS with another PRG index than the pending one");
	answer_stale(_metadata, e, with_prgi(id, ra_pri_prgi(id) + 1),
		     REFACCEL_PRI_RESP_INVALID,
		     "INVALID with another PRG index than the pending one");
	answer_stale(_metadata, e, with_epoch(id, ra_pri_epoch(id) + 1),
		     REFACCEL_PRI_RESP_SUCCESS,
		     "SUCCESS with the pending PRG index but another epoch");
	answer_stale(_metadata, e, id, RESP_BAD_CODE,
		     "the pending request with an unknown response code");
	answer_stale(_metadata, e, id | 1u << 9, REFACCEL_PRI_RESP_SUCCESS,
		     "the pending request with reserved bit 9 set");
	answer_stale(_metadata, e, id | 1u << 20, REFACCEL_PRI_RESP_SUCCESS,
		     "the pending request with reserved bit 20 set");
	ASSERT_TRUE(ra_pri_pending(d, &id));
	ASSERT_EQ(w.id, id) TH_LOG("the pending request changed");

	/* None of them resumed it: the right answer still does, once. */
	map_and_answer(_metadata, e, &w, w.id);
	EXPECT_EQ(w.s0.page_reqs + 1, ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS));
	EXPECT_EQ(w.s0.stale + 6, ra_rd(d, REFACCEL_REG_PRI_STALE));
}

TEST_F_TIMEOUT(pri, disable_while_pending, T_TIMEOUT)
{
	struct ra_dev *d = &self->e.dev;

	refuse(_metadata, &self->e, SIDE_DST, REFACCEL_OP_COPY, REFUSE_DISABLE);
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_PRI_CTRL));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_PRI_LOG_COUNT))
		TH_LOG("clearing PRI_CTRL.ENABLE must empty the log");
}

/*
 * SUCCESS without mapping the page: the retry fails and asks again, with
 * the next PRG index, while the log (never popped) has room; with 32
 * requests logged the work completes PAGE_FAULT.  Popping then shows them
 * oldest first, and an empty log takes a new request.
 */
TEST_F_TIMEOUT(pri, log_bound, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	struct ra_pri_req head;
	struct refaccel_cpl cpl;
	struct pri_work w;
	uint32_t k, n, p, prev, first;
	int ret;

	work_start(_metadata, e, SIDE_DST, REFACCEL_OP_COPY, &w);
	first = w.id;
	prev = w.id;
	for (k = 2; k <= REFACCEL_PRI_LOG_DEPTH; k++) {
		ra_pri_respond(d, prev, REFACCEL_PRI_RESP_SUCCESS);
		ret = ra_pri_wait(d, prev, &p, e->tmo);
		if (ret)
			ra_pri_dump(d, "no new request");
		ASSERT_EQ(0, ret) TH_LOG("SUCCESS for an unmapped page: request %u did not follow",
					 k);
		ASSERT_EQ(with_prgi(prev, ra_pri_prgi(prev) + 1), p)
			TH_LOG("request %u: PRG index %u epoch %u after index %u epoch %u",
			       k, ra_pri_prgi(p), ra_pri_epoch(p), ra_pri_prgi(prev),
			       ra_pri_epoch(prev));
		n = ra_pri_log_head(d, &head);
		ASSERT_EQ(k, n) TH_LOG("PRI_LOG_COUNT after %u requests", k);
		ASSERT_EQ(first, head.id) TH_LOG("the log head is not the oldest request");
		ASSERT_EQ(w.addr, head.addr);
		ASSERT_EQ(0, ra_reap(&e->ring, &cpl))
			TH_LOG("completion (%s) with %u requests logged",
			       ra_cpl_status_name(cpl.status), k);
		prev = p;
	}
	ASSERT_EQ(w.s0.page_reqs + REFACCEL_PRI_LOG_DEPTH,
		  ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS));

	/* The log is full: the next retry cannot ask. */
	ra_pri_respond(d, prev, REFACCEL_PRI_RESP_SUCCESS);
	expect_done_once(_metadata, e, &e->ring, &w.desc, REFACCEL_CPL_PAGE_FAULT,
			 &cpl);
	ASSERT_FALSE(ra_pri_pending(d, NULL));
	ASSERT_EQ((uint32_t)REFACCEL_PRI_LOG_DEPTH, ra_pri_log_head(d, NULL));
	TH_LOG("log full: PAGE_FAULT; CNT_PAGE_REQS +%u for %u logged requests",
	       ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS) - w.s0.page_reqs,
	       REFACCEL_PRI_LOG_DEPTH);

	for (k = 0; k < REFACCEL_PRI_LOG_DEPTH; k++) {
		uint32_t want = with_prgi(first, ra_pri_prgi(first) + k);

		n = ra_pri_log_head(d, &head);
		ASSERT_EQ(REFACCEL_PRI_LOG_DEPTH - k, n);
		ASSERT_EQ(want, head.id)
			TH_LOG("log entry %u: PRG index %u epoch %u, expected %u epoch %u",
			       k, ra_pri_prgi(head.id), ra_pri_epoch(head.id),
			       ra_pri_prgi(want), ra_pri_epoch(want));
		ASSERT_EQ(w.addr, head.addr);
		ASSERT_EQ(w.rw, head.info & (REFACCEL_PRI_INFO_WRITE |
					     REFACCEL_PRI_INFO_READ));
		ra_pri_log_pop(d);
	}
	ASSERT_EQ(0u, ra_pri_log_head(d, NULL));
	ra_pri_log_pop(d);
	ASSERT_EQ(0u, ra_pri_log_head(d, NULL)) TH_LOG("a pop of the empty log");

	/* Emptied, the log takes requests again. */
	work_submit(_metadata, e, &w);
	map_and_answer(_metadata, e, &w, w.id);
}

/* ================================================================== */
/* 8, 9. the quiesce aborts, and migration                            */
/* ================================================================== */

/*
 * RUNNING -> RUNNING_P2P with a request pending: the answer never comes,
 * so only the abort (MIG_CTRL.ABORT_PRI, set by the driver) lets the
 * quiesce end.  The request is gone (PRI_ABORTED + 1, nothing pending, log
 * empty), the work did not complete; the late answer is stale.  Back in
 * RUNNING the put-back work runs anew and asks again (new PRG index,
 * vector 2); answered, it completes exactly once with the right data.
 */
TEST_F_TIMEOUT(pri, quiesce_aborts, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	struct refaccel_vfio_quiesce q;
	struct pri_snap s1, s2;
	struct refaccel_cpl cpl;
	struct pri_work w;
	uint32_t id2;
	uint64_t t0;
	int ret;

	NEED_VARIANT(e);
	work_start(_metadata, e, SIDE_DST, REFACCEL_OP_COPY, &w);
	snap(d, &s1);

	t0 = vu_now_ms();
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING_P2P, NULL);
	ASSERT_EQ(0, ret) TH_LOG("RUNNING -> RUNNING_P2P with a page request pending: %s (no answer will come: only the abort ends this quiesce)",
				 strerror(-ret));
	ASSERT_EQ(0, mig_quiesce_get(&d->vdev, &q));
	TH_LOG("RUNNING -> RUNNING_P2P: %llu ms; driver: result %u, %u us, %u in flight; MIG_CTRL 0x%x",
	       (unsigned long long)(vu_now_ms() - t0), q.last_result, q.last_us,
	       q.last_in_flight, ra_rd(d, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)));
	ASSERT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result);
	ASSERT_NE(0u, ra_rd(d, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS)) & REFACCEL_MIG_STATUS_QUIESCED);
	ASSERT_EQ(s1.aborted + 1, ra_rd(d, REFACCEL_REG_PRI_ABORTED));
	ASSERT_FALSE(ra_pri_pending(d, NULL)) TH_LOG("PRI_PENDING 0x%x after the abort",
						     ra_rd(d, REFACCEL_REG_PRI_PENDING));
	ASSERT_EQ(0u, ra_pri_log_head(d, NULL)) TH_LOG("the aborted request is still logged");
	ASSERT_EQ(0, ra_reap(&e->ring, &cpl))
		TH_LOG("the aborted work completed (%s)", ra_cpl_status_name(cpl.status));
	ASSERT_EQ(s1.completed, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));

	answer_stale(_metadata, e, w.id, REFACCEL_PRI_RESP_SUCCESS,
		     "the late answer to the aborted request, in RUNNING_P2P");

	snap(d, &s2);
	ra_irq_drain(d, REFACCEL_VEC_PAGE_REQ);
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	ASSERT_EQ(0, ret) TH_LOG("RUNNING_P2P -> RUNNING: %s", strerror(-ret));
	id2 = expect_request(_metadata, &e->ring, &s2, w.addr, w.rw, -1, e->tmo);
	expect_dst_untouched(_metadata, e, "asked again after the abort");
	TH_LOG("aborted PRG index %u epoch %u, asked again with %u epoch %u",
	       ra_pri_prgi(w.id), ra_pri_epoch(w.id), ra_pri_prgi(id2),
	       ra_pri_epoch(id2));
	ASSERT_NE(ra_pri_prgi(w.id), ra_pri_prgi(id2))
		TH_LOG("the new request reuses the aborted PRG index");
	ASSERT_NE(ra_pri_epoch(w.id), ra_pri_epoch(id2))
		TH_LOG("the epoch did not move on with the abort");
	answer_stale(_metadata, e, w.id, REFACCEL_PRI_RESP_SUCCESS,
		     "the late answer to the aborted request, back in RUNNING");
	answer_stale(_metadata, e, with_epoch(id2, ra_pri_epoch(w.id)),
		     REFACCEL_PRI_RESP_SUCCESS,
		     "the new request's PRG index with the aborted request's epoch");
	map_and_answer(_metadata, e, &w, id2);
	EXPECT_EQ(w.s0.completed + 2, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(w.s0.page_reqs + 2, ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS));
	EXPECT_EQ(s1.aborted + 1, ra_rd(d, REFACCEL_REG_PRI_ABORTED));
}

/*
 * A device that cannot withdraw its page requests (TEST_FLAGS.NO_PRI_ABORT:
 * MIG_CTRL.ABORT_PRI has no effect): the quiesce waits for an answer that
 * never comes, so RUNNING -> RUNNING_P2P fails with ETIMEDOUT (bound set to
 * NA_TIMEOUT_MS for this open), reported TIMEDOUT, and leaves the device
 * RUNNING with the request still pending, not aborted; answered then, the
 * work completes once.  The time the arc took is printed only.
 */
#define NA_TIMEOUT_MS	100

TEST_F_TIMEOUT(pri, no_abort_times_out, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	struct refaccel_vfio_quiesce q;
	struct pri_snap s1, s2;
	struct pri_work w;
	uint64_t t0;
	int ret;

	NEED_VARIANT(e);
	if (!(e->caps & REFACCEL_CAP_TESTCTL))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot take the abort away");
	ret = mig_quiesce_set(&d->vdev, NA_TIMEOUT_MS);
	ASSERT_EQ(0, ret) TH_LOG("SET quiesce timeout %u ms: %s", NA_TIMEOUT_MS,
				 strerror(-ret));
	ra_wr(d, REFACCEL_REG_TEST_FLAGS, REFACCEL_TEST_NO_PRI_ABORT);
	ASSERT_EQ(REFACCEL_TEST_NO_PRI_ABORT, ra_rd(d, REFACCEL_REG_TEST_FLAGS));
	work_start(_metadata, e, SIDE_DST, REFACCEL_OP_COPY, &w);
	snap(d, &s1);

	t0 = vu_now_ms();
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING_P2P, NULL);
	TH_LOG("RUNNING -> RUNNING_P2P without the abort: %s after %llu ms (bound %u ms)",
	       ret ? strerror(-ret) : "ok", (unsigned long long)(vu_now_ms() - t0),
	       NA_TIMEOUT_MS);
	ASSERT_EQ(-ETIMEDOUT, ret);
	expect_state(_metadata, d, VFIO_DEVICE_STATE_RUNNING);
	ASSERT_EQ(0, mig_quiesce_get(&d->vdev, &q));
	ASSERT_EQ((uint32_t)REFACCEL_QUIESCE_TIMEDOUT, q.last_result);
	ASSERT_EQ(0u, ra_rd(d, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) & REFACCEL_MIG_CTRL_QUIESCE)
		TH_LOG("quiesce request not withdrawn");
	snap(d, &s2);
	ASSERT_EQ(s1.pending, s2.pending) TH_LOG("PRI_PENDING 0x%x -> 0x%x across the failed arc",
						 s1.pending, s2.pending);
	ASSERT_EQ(s1.count, s2.count);
	ASSERT_EQ(s1.aborted, s2.aborted) TH_LOG("the request was aborted anyway");
	ASSERT_EQ(s1.completed, s2.completed);

	ra_wr(d, REFACCEL_REG_TEST_FLAGS, 0);
	map_and_answer(_metadata, e, &w, w.id);
	EXPECT_EQ(w.s0.page_reqs + 1, ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS));
}

/*
 * A second function bound to refaccel-vfio-pci with A's compatibility id,
 * opened into A's address space as the destination (MSI-X on), or NULL.
 */
static struct ra_dev *open_peer(struct __test_metadata *_metadata,
				struct pri_env *e)
{
	struct ra_dev *A = &e->dev, *B = &e->peer;
	int ret;

	if (e->nbdf < 2)
		return NULL;
	ret = ra_open(&e->iommu, e->bdf[1], B);
	ASSERT_EQ(0, ret) TH_LOG("open %s: %s", e->bdf[1], strerror(-ret));
	e->peer_open = true;
	if (!ra_driver_is_variant(B->driver)) {
		TH_LOG("%s is bound to %s: not a destination", B->vdev.bdf,
		       B->driver);
		return NULL;
	}
	ASSERT_EQ(0, ra_reset(B));
	if (ra_rd(B, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)) != ra_rd(A, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)) ||
	    ra_rd(B, REFACCEL_REG_CAPS) != e->caps) {
		TH_LOG("%s: CAPS 0x%x compat 0x%x, A's 0x%x 0x%x: not a destination",
		       B->vdev.bdf, ra_rd(B, REFACCEL_REG_CAPS),
		       ra_rd(B, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)), e->caps,
		       ra_rd(A, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID)));
		return NULL;
	}
	ret = ra_irq_enable(B);
	ASSERT_EQ(0, ret) TH_LOG("%s: MSI-X setup: %s", B->vdev.bdf, strerror(-ret));
	return B;
}

/*
 * A request pending on A; A saved (RUNNING -> STOP_COPY: the quiesce
 * aborts the request, the work is put back and travels), the stream
 * loaded into B (a second function sharing A's IOVA space, or A itself
 * after a VFIO_DEVICE_RESET), B -> RUNNING: B runs the work, asks for the
 * page (still missing), and once it is mapped and the answer given,
 * completes it exactly once with the right data.  The PRI state (enabled,
 * PRI_ABORTED) travels; the stopped source completes nothing and, frozen,
 * ignores an answer.
 */
TEST_F_TIMEOUT(pri, migrate_pending, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *A = &e->dev, *B;
	struct mig_buf s = { 0 };
	struct pri_snap sa, sb;
	struct pri_work w;
	uint32_t id, aborted;
	bool self_resume;
	int ret;

	NEED_VARIANT(e);
	B = open_peer(_metadata, e);
	self_resume = !B;
	work_start(_metadata, e, SIDE_DST, REFACCEL_OP_COPY, &w);

	ret = mig_save_stop_copy(&A->vdev, &s);
	ASSERT_EQ(0, ret) TH_LOG("save %s with a page request pending: %s",
				 A->vdev.bdf, strerror(-ret));
	expect_state(_metadata, A, VFIO_DEVICE_STATE_STOP);
	snap(A, &sa);
	ASSERT_EQ(w.s0.aborted + 1, sa.aborted) TH_LOG("the save did not abort the request");
	ASSERT_EQ(0u, sa.pending & REFACCEL_PRI_PENDING_VALID);
	ASSERT_EQ(0u, sa.count);
	ASSERT_EQ(w.s0.completed, sa.completed) TH_LOG("the source completed the work");
	aborted = sa.aborted;
	TH_LOG("saved %s: %zu bytes; PRG index %u epoch %u aborted", A->vdev.bdf,
	       s.len, ra_pri_prgi(w.id), ra_pri_epoch(w.id));

	if (self_resume) {
		TH_LOG("no second compatible function bound to refaccel-vfio-pci: resuming into %s itself after VFIO_DEVICE_RESET",
		       A->vdev.bdf);
		ASSERT_EQ(0, ra_reset(A));
		B = A;
	} else {
		/* The frozen source takes no answer, not even as stale. */
		ASSERT_NE(0u, ra_rd(A, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS)) & REFACCEL_MIG_STATUS_FROZEN);
		ra_pri_respond(A, w.id, REFACCEL_PRI_RESP_SUCCESS);
		ASSERT_EQ(sa.stale, ra_rd(A, REFACCEL_REG_PRI_STALE))
			TH_LOG("a frozen device counted an answer");
		TH_LOG("resuming %s into %s", A->vdev.bdf, B->vdev.bdf);
	}
	ASSERT_EQ(0, mig_set_state(&B->vdev, VFIO_DEVICE_STATE_STOP, NULL));
	ret = mig_load(&B->vdev, s.p, s.len, STREAM_CHUNK);
	ASSERT_EQ(0, ret) TH_LOG("load into %s: %s", B->vdev.bdf, strerror(-ret));
	snap(B, &sb);
	ASSERT_EQ(REFACCEL_PRI_CTRL_ENABLE, sb.ctrl) TH_LOG("PRI_CTRL did not travel");
	ASSERT_EQ(aborted, sb.aborted) TH_LOG("PRI_ABORTED did not travel");
	ASSERT_EQ(0u, sb.count);
	ASSERT_EQ(0u, sb.pending & REFACCEL_PRI_PENDING_VALID);
	ASSERT_EQ(sa.completed, sb.completed);

	ra_irq_drain(B, REFACCEL_VEC_PAGE_REQ);
	ret = mig_set_state(&B->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	ASSERT_EQ(0, ret) TH_LOG("%s -> RUNNING: %s", B->vdev.bdf, strerror(-ret));
	/* The ring (host memory, same IOVAs) now belongs to B. */
	e->ring.dev = B;
	id = expect_request(_metadata, &e->ring, &sb, w.addr, w.rw, -1, e->tmo);
	expect_dst_untouched(_metadata, e, "asked again on the destination");
	TH_LOG("the destination asks again with PRG index %u epoch %u",
	       ra_pri_prgi(id), ra_pri_epoch(id));
	answer_stale(_metadata, e, w.id, REFACCEL_PRI_RESP_SUCCESS,
		     "the source's aborted request answered on the destination");
	map_and_answer(_metadata, e, &w, id);
	EXPECT_EQ(sa.completed + 2, ra_rd(B, REFACCEL_REG_CNT_COMPLETED))
		TH_LOG("the work and the NOP, once each on the destination");
	if (!self_resume) {
		EXPECT_EQ(sa.completed, ra_rd(A, REFACCEL_REG_CNT_COMPLETED))
			TH_LOG("the stopped source completed work");
		EXPECT_EQ(sa.page_reqs, ra_rd(A, REFACCEL_REG_CNT_PAGE_REQS));
		expect_state(_metadata, A, VFIO_DEVICE_STATE_STOP);
	}
	mig_buf_free(&s);
}

/* ================================================================== */
/* 10. reset                                                          */
/* ================================================================== */

/*
 * VFIO_DEVICE_RESET with a request pending: the work vanishes without a
 * completion, the block is empty (and disabled); a late answer is stale,
 * also once PRI is enabled again, and the device works.
 */
TEST_F_TIMEOUT(pri, reset_pending, T_TIMEOUT)
{
	struct pri_env *e = &self->e;
	struct ra_dev *d = &e->dev;
	struct refaccel_desc nop;
	struct refaccel_cpl cpl;
	struct pri_work w;
	struct pri_snap s;
	int ret;

	work_start(_metadata, e, SIDE_DST, REFACCEL_OP_COPY, &w);
	ret = ra_reset(d);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_RESET: %s", strerror(-ret));
	snap(d, &s);
	EXPECT_EQ(0u, s.ctrl);
	EXPECT_EQ(0u, s.count) TH_LOG("%u requests logged after the reset", s.count);
	EXPECT_EQ(0u, s.pending) TH_LOG("PRI_PENDING 0x%x after the reset", s.pending);
	EXPECT_EQ(0u, s.stale);
	EXPECT_EQ(0u, s.aborted);
	EXPECT_EQ(0u, s.completed);
	ASSERT_EQ(0, ra_reap(&e->ring, &cpl))
		TH_LOG("the work completed (%s) across the reset",
		       ra_cpl_status_name(cpl.status));

	answer_stale(_metadata, e, w.id, REFACCEL_PRI_RESP_SUCCESS,
		     "the late answer after the reset");

	ra_ring_restart(&e->ring);
	ra_wr(d, REFACCEL_REG_INT_MASK, 0);
	ASSERT_EQ(0, ra_enable(d, e->tmo));
	ra_pri_enable(d, true);
	answer_stale(_metadata, e, w.id, REFACCEL_PRI_RESP_SUCCESS,
		     "the late answer after the reset, PRI enabled again");
	nop = ra_desc_nop(next_tag(e));
	ASSERT_EQ(0, ra_run(&e->ring, &nop, &cpl, e->tmo));
	ASSERT_EQ(nop.tag, cpl.tag) TH_LOG("first completion after the reset: tag 0x%llx",
					   (unsigned long long)cpl.tag);
	ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
	EXPECT_EQ(1u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
}

TEST_HARNESS_MAIN
