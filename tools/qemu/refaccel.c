/*
 * refaccel: the reference PCI accelerator of the refaccel-vfio-pci project
 *
 * A PCIe endpoint with a register BAR, a RAM-backed "SRAM" BAR and an
 * MSI-X BAR.  Work is submitted through a submission ring of 64-byte
 * descriptors in host memory and reported through a completion ring, both
 * reached by DMA through the device's bus master address space (so through
 * a vIOMMU when there is one).  Every operation takes a configurable amount
 * of virtual time so that work is genuinely in flight.
 *
 * A migration block quiesces and freezes the engine and saves/restores its
 * whole internal state through an MMIO window; BAR2 writes are tracked in
 * a read-and-clear dirty bitmap for pre-copy of the SRAM.
 *
 * The register map lives in hw/refaccel_regs.h, shared with the driver and
 * the tests; the behaviour is described in the project's
 * Documentation/device-spec.rst.
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/crc32c.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/dma.h"
#include "qom/object.h"

#include "hw/refaccel_regs.h"
#include "refaccel_dt.h"
#include "refaccel_pri.h"

#define TYPE_REFACCEL "refaccel"
OBJECT_DECLARE_SIMPLE_TYPE(RefaccelState, REFACCEL)

/* Descriptors fetched but not yet completed (the device's internal FIFO). */
#define REFACCEL_FIFO_DEPTH     4

#define REFACCEL_SRAM_MIN_SIZE  (4 * KiB)

/* PCI capability layout */
#define REFACCEL_PCIE_CAP_OFFSET    0x80
#define REFACCEL_PM_CAP_OFFSET      0x60
#define REFACCEL_PASID_MAX_WIDTH    20

/* Migration block: the save/restore window and the version 1 layout. */
#define REFACCEL_MIG_WINDOW_SIZE    4096
#define REFACCEL_MIG_HDR_SIZE       24      /* magic ver compat len crc rsvd */
#define REFACCEL_MIG_FIXED_SIZE     112     /* payload before the FIFO */
#define REFACCEL_MIG_ENTRY_SIZE     72      /* raw desc + state + remaining */

/* A descriptor is exactly one ring slot, a completion exactly 16 bytes. */
QEMU_BUILD_BUG_ON(sizeof(struct refaccel_desc) != REFACCEL_DESC_SIZE);
QEMU_BUILD_BUG_ON(sizeof(struct refaccel_cpl) != REFACCEL_CPL_SIZE);
QEMU_BUILD_BUG_ON(REFACCEL_NUM_VECTORS > 32);
/* the largest state must fit the window with room to spare */
QEMU_BUILD_BUG_ON(REFACCEL_MIG_HDR_SIZE + REFACCEL_MIG_FIXED_SIZE +
                  REFACCEL_FIFO_DEPTH * REFACCEL_MIG_ENTRY_SIZE +
                  REFACCEL_PRI_STATE_SIZE > REFACCEL_MIG_WINDOW_SIZE / 4);

/*
 * Life cycle of a FIFO entry.  Only the entry at the FIFO head moves past
 * QUEUED.  The values are part of the saved state format (version 1).
 */
typedef enum RefaccelEntryState {
    REFACCEL_ENT_QUEUED = 0,    /* fetched, not started (or put back) */
    REFACCEL_ENT_RUNNING = 1,   /* "executing": op latency running */
    REFACCEL_ENT_PRI_WAIT = 2,  /* waits for a page request's answer */
} RefaccelEntryState;
/*
 * Saved with the state of an executing entry: its page request was
 * answered INVALID or FAILURE, so it completes with PAGE_FAULT.  A waiting
 * entry (PRI_WAIT) is never saved: a quiesce answers or aborts it first.
 */
#define REFACCEL_ENT_F_PAGE_FAULT   0x100u

typedef struct RefaccelEntry {
    uint8_t raw[REFACCEL_DESC_SIZE];    /* as fetched (saved verbatim) */
    struct refaccel_desc desc;          /* raw decoded to host byte order */
    uint32_t state;                     /* RefaccelEntryState */
    bool paused;                        /* RUNNING, parked: clock stopped */
    int64_t deadline;                   /* RUNNING && !paused: virtual ns */
    uint32_t remaining;                 /* RUNNING && paused: ns left */
    bool page_fault;                    /* RUNNING: completes PAGE_FAULT */
} RefaccelEntry;

/*
 * Everything the guest can observe lives in RefaccelRegs so that reset is
 * one memset plus defaults, and so that the migration block can serialise
 * it (see refaccel_mig_save() for what is and is not saved).
 */
typedef struct RefaccelRegs {
    uint32_t ctrl;              /* REFACCEL_CTRL_ENABLE only */
    uint32_t status;            /* REFACCEL_STATUS_HALTED only; rest derived */
    uint32_t halt_reason;
    uint32_t op_latency_ns;

    uint64_t sq_base;
    uint32_t sq_base_lo;        /* written half, latched by SQ_BASE_HI */
    uint32_t sq_size;
    uint32_t sq_head;
    uint32_t sq_tail;

    uint64_t cq_base;
    uint32_t cq_base_lo;
    uint32_t cq_size;
    uint32_t cq_head;
    uint32_t cq_tail;
    uint32_t cq_phase;          /* phase bit for the next completion */

    uint32_t int_status;
    uint32_t int_mask;
    uint32_t int_owed;          /* messages held back while stopped */

    uint32_t cnt_fetched;
    uint32_t cnt_completed;
    uint32_t cnt_errors;
    uint32_t cnt_page_reqs;

    uint32_t test_flags;
    uint32_t test_quiesce_delay;
    uint64_t test_dt_mark;      /* TEST_DT_MARK (not saved) */
    uint32_t test_dt_mark_lo;
    uint32_t test_dt_stride;

    RefaccelPri pri;            /* page requests (with the pri property) */

    /* internal FIFO: a circular buffer of fetched descriptors */
    RefaccelEntry fifo[REFACCEL_FIFO_DEPTH];
    uint32_t fifo_head;
    uint32_t fifo_count;
} RefaccelRegs;

/*
 * Progress of a quiesce (QUIESCE, or FREEZE on its own) that has not
 * reached QUIESCED yet.
 */
typedef enum RefaccelQuiesce {
    REFACCEL_Q_IDLE = 0,        /* no request, or QUIESCED reached */
    REFACCEL_Q_DRAINING,        /* the executing op may still finish */
    REFACCEL_Q_DRAINED,         /* stopped; QUIESCED delayed (test knobs) */
} RefaccelQuiesce;

/* The migration and SRAM dirty blocks (not part of the saved state). */
typedef struct RefaccelMig {
    uint32_t ctrl;              /* MIG_CTRL as written: what is requested */
    bool quiesced;              /* MIG_STATUS.QUIESCED (always set if frozen) */
    bool frozen;                /* MIG_STATUS.FROZEN: FREEZE, once QUIESCED */
    uint32_t qstate;            /* RefaccelQuiesce */
    uint32_t status;            /* SAVED, RESTORED, CMD_ERR */
    uint32_t err;               /* MIG_ERR */
    uint32_t state_size;
    bool size_invalid;          /* SIZE written above the window */
    uint32_t state_offset;
    uint8_t window[REFACCEL_MIG_WINDOW_SIZE];

    uint32_t dirty_ctrl;        /* SRAM_DIRTY_CTRL (ENABLE): saved */
    uint32_t dirty_index;       /* SRAM_DIRTY_INDEX */

    /* doorbells rung while frozen: applied at thaw, carried by SAVE */
    bool db_sq_pending;
    bool db_cq_pending;
    uint32_t db_sq_tail;
    uint32_t db_cq_head;
} RefaccelMig;

struct RefaccelState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    MemoryRegion sram;
    uint16_t pasid_cap;         /* PASID extended capability offset, or 0 */
    uint16_t pri_cap;           /* PRI extended capability offset, or 0 */
    uint8_t *sram_ptr;

    QEMUTimer op_timer;
    QEMUTimer quiesce_timer;    /* TEST_QUIESCE_DELAY */
    QEMUBH *work_bh;
    uint8_t *bounce;            /* max_xfer bytes */
    unsigned long *dirty_bm;    /* SRAM pages written (read-and-clear) */
    unsigned long *touched_bm;  /* SRAM pages written since last cleared */
    uint32_t dirty_pages;
    bool sram_logging;          /* VGA dirty log on BAR2, realize to exit */
    uint32_t compat_id;

    /* bumped by every reset: in-progress work notices it and gives up */
    uint64_t generation;
    /*
     * Set by exit.  The function can be unplugged from inside its own DMA
     * or MSI (a write to a root port's slot control through ECAM); the code
     * that issued it must unwind without touching anything, and nothing
     * (kick, timer, notify, MMIO) may run the engine again.  The object
     * lives on until the last reference goes: see refaccel_release().
     */
    bool dead;

    RefaccelRegs r;
    RefaccelMig m;
    RefaccelDt dt;              /* DMA dirty tracking: migration block */

    /* properties */
    uint64_t sram_size;
    uint32_t prop_op_latency_ns;
    uint32_t max_xfer;
    bool testctl;
    bool ats;
    bool pasid;
    bool pri;
    uint32_t dt_ranges;
    uint64_t dt_max_span;
    /* fault injection: reset values of the test registers, and CAPS */
    uint32_t prop_quiesce_delay_us;
    bool prop_never_quiesce;
    bool quiesce_unbounded;     /* cannot park: every quiesce drains */
};

static void refaccel_guest_error(RefaccelState *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void refaccel_guest_error(RefaccelState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (!qemu_loglevel_mask(LOG_GUEST_ERROR)) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (s->dead) {
        /* off its bus: no bus number to print */
        qemu_log("%s (unplugged): %s\n", TYPE_REFACCEL, msg);
        return;
    }
    qemu_log("%s %02x:%02x.%x: %s\n", TYPE_REFACCEL,
             pci_dev_bus_num(PCI_DEVICE(s)), PCI_SLOT(PCI_DEVICE(s)->devfn),
             PCI_FUNC(PCI_DEVICE(s)->devfn), msg);
}

/*
 * Unplugged: exit ran.  Every entry point (kick, timers, bottom half, MMIO)
 * and every loop that does DMA or sends MSI checks this after each step.
 */
static bool refaccel_dead(RefaccelState *s)
{
    return s->dead;
}

static void refaccel_unref_bh(void *opaque)
{
    object_unref(OBJECT(opaque));
}

/*
 * Keep the object across anything that can unplug it: any DMA or MSI write
 * (ECAM is plain MMIO).  Once the device is dead the reference is dropped
 * from a fresh bottom half, never from here: it may be the last one, and
 * our callers (aio_bh_call(), the memory dispatch) still write the
 * device's reentrancy guard after we return.  While the device is alive
 * its parent holds a reference, so a plain unref cannot finalize it.
 */
static void refaccel_hold(RefaccelState *s)
{
    object_ref(OBJECT(s));
}

static void refaccel_release(RefaccelState *s)
{
    if (refaccel_dead(s)) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(), refaccel_unref_bh, s);
        return;
    }
    object_unref(OBJECT(s));
}

static uint32_t refaccel_caps(RefaccelState *s)
{
    uint32_t caps = REFACCEL_CAP_P2P | REFACCEL_CAP_MIGRATION |
                    REFACCEL_CAP_SRAM_DIRTY;

    if (s->testctl) {
        caps |= REFACCEL_CAP_TESTCTL;
    }
    if (s->dt_ranges) {
        caps |= REFACCEL_CAP_DMA_DIRTY;
    }
    if (s->ats) {
        caps |= REFACCEL_CAP_ATS;
    }
    if (s->pasid) {
        caps |= REFACCEL_CAP_PASID;
    }
    if (s->pri) {
        caps |= REFACCEL_CAP_PRI;
    }
    if (s->quiesce_unbounded) {
        caps |= REFACCEL_CAP_QUIESCE_UNBOUNDED;
    }
    return caps;
}

static bool refaccel_enabled(RefaccelState *s)
{
    return s->r.ctrl & REFACCEL_CTRL_ENABLE;
}

static bool refaccel_halted(RefaccelState *s)
{
    return s->r.status & REFACCEL_STATUS_HALTED;
}

static bool refaccel_busy(RefaccelState *s)
{
    return s->r.fifo_count != 0;
}

/* MIG_STATUS.FROZEN: FREEZE was requested and QUIESCED reached. */
static bool refaccel_frozen(RefaccelState *s)
{
    return s->m.frozen;
}

/* May the device fetch descriptors and start new ops? */
static bool refaccel_may_start(RefaccelState *s)
{
    return !(s->m.ctrl &
             (REFACCEL_MIG_CTRL_QUIESCE | REFACCEL_MIG_CTRL_FREEZE));
}

/*
 * Stopped: no DMA, no interrupt message, no op progress.  True once a
 * quiesce has drained (whether or not QUIESCED is visible yet) and while
 * frozen.
 */
static bool refaccel_stopped(RefaccelState *s)
{
    return refaccel_frozen(s) || s->m.quiesced ||
           s->m.qstate == REFACCEL_Q_DRAINED;
}

/*
 * In D3hot the function makes no DMA and sends no message (QEMU unmaps its
 * BARs but leaves bus mastering on): the engine waits for D0, interrupts
 * are owed.  No_Soft_Reset: D3hot -> D0 keeps all state.
 */
static bool refaccel_powered_down(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return pci_get_word(pdev->config + pdev->pm_cap + PCI_PM_CTRL) &
           PCI_PM_CTRL_STATE_MASK;
}

static uint32_t refaccel_status(RefaccelState *s)
{
    uint32_t v = s->r.status & REFACCEL_STATUS_HALTED;

    if (refaccel_enabled(s)) {
        v |= REFACCEL_STATUS_ENABLED;
    }
    if (refaccel_busy(s)) {
        v |= REFACCEL_STATUS_BUSY;
    }
    return v;
}

/* ---- interrupts ---- */

static void refaccel_notify(RefaccelState *s, uint32_t bits)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t gen = s->generation;
    unsigned vec;

    if (!bits || refaccel_dead(s)) {
        return;
    }
    if (refaccel_stopped(s) || refaccel_powered_down(s)) {
        /* no message while quiesced or in D3hot: owed until it runs */
        s->r.int_owed |= bits;
        return;
    }
    if (!msix_enabled(pdev)) {
        return;
    }
    refaccel_hold(s);
    for (vec = 0; vec < REFACCEL_NUM_VECTORS; vec++) {
        if (bits & (1u << vec)) {
            /* handles per-vector and function masking (sets PBA) */
            msix_notify(pdev, vec);
            if (refaccel_dead(s) || s->generation != gen) {
                /*
                 * The message unplugged us (MSI-X is gone) or reset us
                 * (an FLR through ECAM): the rest were for a function
                 * that no longer exists, and must not leave PBA bits.
                 */
                break;
            }
        }
    }
    refaccel_release(s);
}

static void refaccel_raise(RefaccelState *s, uint32_t bits)
{
    uint32_t rising = bits & ~s->r.int_status & REFACCEL_INT_ALL;

    s->r.int_status |= bits & REFACCEL_INT_ALL;
    refaccel_notify(s, rising & ~s->r.int_mask);
}

/* ---- engine ---- */

static void refaccel_kick(RefaccelState *s);
static void refaccel_quiesce_progress(RefaccelState *s);

static void refaccel_fifo_clear(RefaccelState *s)
{
    memset(s->r.fifo, 0, sizeof(s->r.fifo));
    s->r.fifo_head = 0;
    s->r.fifo_count = 0;
    timer_del(&s->op_timer);
}

static void refaccel_halt(RefaccelState *s, uint32_t reason)
{
    s->r.status |= REFACCEL_STATUS_HALTED;
    s->r.halt_reason = reason;
    /* a halted engine drops its in-flight work without completions */
    refaccel_fifo_clear(s);
    refaccel_raise(s, REFACCEL_INT_ERROR);
}

static bool refaccel_ring_size_ok(uint32_t size)
{
    return size >= REFACCEL_RING_MIN_ENTRIES &&
           size <= REFACCEL_RING_MAX_ENTRIES && is_power_of_2(size);
}

static bool refaccel_ring_config_ok(const RefaccelRegs *r)
{
    return refaccel_ring_size_ok(r->sq_size) &&
           refaccel_ring_size_ok(r->cq_size) &&
           QEMU_IS_ALIGNED(r->sq_base, REFACCEL_DESC_SIZE) &&
           QEMU_IS_ALIGNED(r->cq_base, REFACCEL_CPL_SIZE) &&
           r->sq_head < r->sq_size && r->sq_tail < r->sq_size &&
           r->cq_head < r->cq_size && r->cq_tail < r->cq_size;
}

static bool refaccel_cq_full(RefaccelState *s)
{
    return ((s->r.cq_tail + 1) & (s->r.cq_size - 1)) == s->r.cq_head;
}

static void refaccel_decode_desc(struct refaccel_desc *d, const uint8_t *raw)
{
    size_t i;

    memset(d, 0, sizeof(*d));
    d->opcode = raw[offsetof(struct refaccel_desc, opcode)];
    d->flags = raw[offsetof(struct refaccel_desc, flags)];
    d->rsvd0 = lduw_le_p(raw + offsetof(struct refaccel_desc, rsvd0));
    d->len = ldl_le_p(raw + offsetof(struct refaccel_desc, len));
    d->tag = ldq_le_p(raw + offsetof(struct refaccel_desc, tag));
    d->src = ldq_le_p(raw + offsetof(struct refaccel_desc, src));
    d->dst = ldq_le_p(raw + offsetof(struct refaccel_desc, dst));
    d->value = ldl_le_p(raw + offsetof(struct refaccel_desc, value));
    for (i = 0; i < ARRAY_SIZE(d->rsvd1); i++) {
        d->rsvd1[i] = ldl_le_p(raw + offsetof(struct refaccel_desc, rsvd1) +
                               i * sizeof(d->rsvd1[0]));
    }
}

static RefaccelEntry *refaccel_fifo_head(RefaccelState *s)
{
    if (!s->r.fifo_count) {
        return NULL;
    }
    return &s->r.fifo[s->r.fifo_head % REFACCEL_FIFO_DEPTH];
}

static void refaccel_fifo_pop(RefaccelState *s)
{
    RefaccelEntry *e = refaccel_fifo_head(s);

    memset(e, 0, sizeof(*e));
    s->r.fifo_head = (s->r.fifo_head + 1) % REFACCEL_FIFO_DEPTH;
    s->r.fifo_count--;
}

/*
 * Fetch descriptors while the engine is enabled, not quiesced and there is
 * room.  Returns false when a reset happened meanwhile (caller must stop).
 */
static bool refaccel_fetch(RefaccelState *s)
{
    uint64_t gen = s->generation;
    uint8_t raw[REFACCEL_DESC_SIZE];

    while (refaccel_enabled(s) && !refaccel_halted(s) &&
           refaccel_may_start(s) &&
           s->r.sq_head != s->r.sq_tail &&
           s->r.fifo_count < REFACCEL_FIFO_DEPTH) {
        dma_addr_t addr = s->r.sq_base +
                          (uint64_t)s->r.sq_head * REFACCEL_DESC_SIZE;
        MemTxResult res;
        RefaccelEntry *e;

        res = pci_dma_read(PCI_DEVICE(s), addr, raw, sizeof(raw));
        if (s->generation != gen) {
            return false;
        }
        if (res != MEMTX_OK) {
            refaccel_guest_error(s, "SQ fetch at 0x%" PRIx64 " failed",
                                 (uint64_t)addr);
            refaccel_halt(s, REFACCEL_HALT_SQ_FETCH);
            return true;
        }
        e = &s->r.fifo[(s->r.fifo_head + s->r.fifo_count) %
                       REFACCEL_FIFO_DEPTH];
        memset(e, 0, sizeof(*e));
        memcpy(e->raw, raw, sizeof(raw));
        refaccel_decode_desc(&e->desc, raw);
        e->state = REFACCEL_ENT_QUEUED;
        s->r.fifo_count++;
        s->r.sq_head = (s->r.sq_head + 1) & (s->r.sq_size - 1);
        s->r.cnt_fetched++;
    }
    return true;
}

static bool refaccel_sram_range_ok(RefaccelState *s, uint64_t off,
                                   uint32_t len)
{
    return off <= s->sram_size && len <= s->sram_size - off;
}

/* The device itself wrote SRAM: count it even if no CPU log catches it. */
static void refaccel_sram_written(RefaccelState *s, uint64_t off, uint32_t len)
{
    uint64_t first = off / REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    uint64_t n = (off + len - 1) / REFACCEL_SRAM_DIRTY_PAGE_SIZE - first + 1;

    memory_region_set_dirty(&s->sram, off, len);
    bitmap_set(s->touched_bm, first, n);
    if (s->m.dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE) {
        bitmap_set(s->dirty_bm, first, n);
    }
}

/*
 * Every write of the device to host memory goes through here.  It is marked
 * before it is made: a write that fails part way may have landed in part.
 */
static MemTxResult refaccel_dma_write(RefaccelState *s, dma_addr_t addr,
                                      const void *buf, dma_addr_t len)
{
    if (!(s->r.test_flags & REFACCEL_TEST_DT_LOSE)) {
        refaccel_dt_mark(&s->dt, addr, len);
    }
    return pci_dma_write(PCI_DEVICE(s), addr, buf, len);
}

static bool refaccel_pri_on(RefaccelState *s)
{
    return s->pri && refaccel_pri_enabled(&s->r.pri);
}

/*
 * Does [addr, addr + len) hold a page that does not translate for this
 * access?  *page is the first such page.  This stands in for an ATS
 * translation request, which QEMU 10.0's vIOMMU does not model: probing
 * through the DMA address space makes the vIOMMU record one translation
 * fault (the first page that fails), where a real ATS completion would
 * record none; the data DMA that follows a successful probe cannot fault
 * on translation.
 */
static bool refaccel_missing_page(RefaccelState *s, uint64_t addr,
                                  uint32_t len, bool write, uint64_t *page)
{
    AddressSpace *as = pci_get_address_space(PCI_DEVICE(s));
    DMADirection dir = write ? DMA_DIRECTION_FROM_DEVICE
                             : DMA_DIRECTION_TO_DEVICE;
    const uint64_t mask = REFACCEL_PRI_PAGE_SIZE - 1;
    uint64_t last = addr + len - 1 < addr ? UINT64_MAX : addr + len - 1;
    uint64_t pg;

    for (pg = addr & ~mask;; pg += REFACCEL_PRI_PAGE_SIZE) {
        uint64_t from = MAX(pg, addr);
        uint64_t to = MIN(pg | mask, last);

        if (!dma_memory_valid(as, from, to - from + 1, dir,
                              MEMTXATTRS_UNSPECIFIED)) {
            *page = pg;
            return true;
        }
        if (to == last) {
            return false;
        }
    }
}

/*
 * With page requests on, a descriptor first makes sure every page of its
 * host buffers translates (its source, then its destination); the first
 * one that does not is the page it asks for.
 */
static bool refaccel_pri_probe(RefaccelState *s,
                               const struct refaccel_desc *d,
                               uint64_t *page, bool *write)
{
    bool reads = d->opcode == REFACCEL_OP_COPY ||
                 d->opcode == REFACCEL_OP_CRC32C ||
                 d->opcode == REFACCEL_OP_LOAD;
    bool writes = d->opcode == REFACCEL_OP_COPY ||
                  d->opcode == REFACCEL_OP_FILL ||
                  d->opcode == REFACCEL_OP_STORE;

    *write = false;
    if (reads && refaccel_missing_page(s, d->src, d->len, false, page)) {
        return true;
    }
    *write = true;
    return writes && refaccel_missing_page(s, d->dst, d->len, true, page);
}

/* refaccel_execute(): not a completion status, the descriptor needs a page */
#define REFACCEL_EXEC_PAGE_REQUEST  UINT32_MAX

/*
 * Validate and execute one descriptor.  Returns the completion status and
 * sets *result, or returns REFACCEL_EXEC_PAGE_REQUEST with the page to ask
 * for in *page and *write (page requests on, nothing done yet).  *aborted is set when the device was reset while a DMA was
 * in progress (e.g. the DMA hit the device's own config space): the caller
 * must then drop the work without touching the state.
 */
static uint32_t refaccel_execute(RefaccelState *s,
                                 const struct refaccel_desc *d,
                                 uint32_t *result, bool *aborted,
                                 uint64_t *page, bool *write)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t gen = s->generation;
    uint8_t *buf = s->bounce;
    uint32_t len = d->len;
    MemTxResult res;
    size_t i;

    *result = 0;
    *aborted = false;

    if (d->rsvd0 || (d->flags & ~REFACCEL_DESC_F_VALID_MASK)) {
        return REFACCEL_CPL_BAD_DESC;
    }
    for (i = 0; i < ARRAY_SIZE(d->rsvd1); i++) {
        if (d->rsvd1[i]) {
            return REFACCEL_CPL_BAD_DESC;
        }
    }
    if (d->opcode > REFACCEL_OP_MAX) {
        return REFACCEL_CPL_BAD_OPCODE;
    }
    if (d->opcode == REFACCEL_OP_NOP) {
        return len ? REFACCEL_CPL_BAD_LENGTH : REFACCEL_CPL_OK;
    }
    if (len == 0 || len > s->max_xfer) {
        return REFACCEL_CPL_BAD_LENGTH;
    }
    if (d->opcode == REFACCEL_OP_LOAD &&
        !refaccel_sram_range_ok(s, d->dst, len)) {
        return REFACCEL_CPL_BAD_SRAM_RANGE;
    }
    if (d->opcode == REFACCEL_OP_STORE &&
        !refaccel_sram_range_ok(s, d->src, len)) {
        return REFACCEL_CPL_BAD_SRAM_RANGE;
    }
    if (refaccel_pri_on(s) && refaccel_pri_probe(s, d, page, write)) {
        return REFACCEL_EXEC_PAGE_REQUEST;
    }

    /* Gather the source into the bounce buffer. */
    switch (d->opcode) {
    case REFACCEL_OP_COPY:
    case REFACCEL_OP_CRC32C:
    case REFACCEL_OP_LOAD:
        res = pci_dma_read(pdev, d->src, buf, len);
        if (s->generation != gen) {
            *aborted = true;
            return REFACCEL_CPL_ABORTED;
        }
        if (res != MEMTX_OK) {
            return REFACCEL_CPL_DMA_READ_FAULT;
        }
        break;
    case REFACCEL_OP_FILL:
        /* the 4-byte pattern, then doubling copies of what is filled */
        for (i = 0; i < len && i < 4; i++) {
            buf[i] = d->value >> (8 * i);
        }
        for (; i < len; i *= 2) {
            memcpy(buf + i, buf, MIN(i, len - i));
        }
        break;
    case REFACCEL_OP_STORE:
        memcpy(buf, s->sram_ptr + d->src, len);
        break;
    default:
        g_assert_not_reached();
    }

    /* Scatter it to the destination. */
    switch (d->opcode) {
    case REFACCEL_OP_CRC32C:
        /*
         * QEMU's crc32c() inverts its output: this is the standard CRC-32C
         * for value 0, and passing a result back as value continues it.
         */
        *result = crc32c(~d->value, buf, len);
        return REFACCEL_CPL_OK;
    case REFACCEL_OP_LOAD:
        memcpy(s->sram_ptr + d->dst, buf, len);
        refaccel_sram_written(s, d->dst, len);
        return REFACCEL_CPL_OK;
    case REFACCEL_OP_COPY:
    case REFACCEL_OP_FILL:
    case REFACCEL_OP_STORE:
        /* STORE may target a peer device's BAR: that is plain DMA too. */
        res = refaccel_dma_write(s, d->dst, buf, len);
        if (s->generation != gen) {
            *aborted = true;
            return REFACCEL_CPL_ABORTED;
        }
        return res == MEMTX_OK ? REFACCEL_CPL_OK : REFACCEL_CPL_DMA_WRITE_FAULT;
    default:
        g_assert_not_reached();
    }
}

/*
 * Write the completion of the FIFO head, which just executed; the caller
 * checked that the CQ has room (only the driver's CQ_HEAD doorbell changes
 * that meanwhile, and only ever frees slots).  The entry leaves the FIFO.
 */
static void refaccel_post_completion(RefaccelState *s, RefaccelEntry *e,
                                     uint32_t status, uint32_t result)
{
    uint64_t gen = s->generation;
    uint8_t raw[REFACCEL_CPL_SIZE] = { 0 };
    dma_addr_t addr;
    MemTxResult res;
    bool irq;

    stq_le_p(raw + offsetof(struct refaccel_cpl, tag), e->desc.tag);
    stl_le_p(raw + offsetof(struct refaccel_cpl, result), result);
    stw_le_p(raw + offsetof(struct refaccel_cpl, status), status);
    raw[offsetof(struct refaccel_cpl, opcode)] = e->desc.opcode;
    raw[offsetof(struct refaccel_cpl, flags)] =
        s->r.cq_phase ? REFACCEL_CPL_F_PHASE : 0;

    addr = s->r.cq_base + (uint64_t)s->r.cq_tail * REFACCEL_CPL_SIZE;
    res = refaccel_dma_write(s, addr, raw, sizeof(raw));
    if (s->generation != gen) {
        return;
    }
    if (res != MEMTX_OK) {
        refaccel_guest_error(s, "CQ write at 0x%" PRIx64 " failed",
                             (uint64_t)addr);
        refaccel_halt(s, REFACCEL_HALT_CQ_WRITE);
        return;
    }

    s->r.cq_tail = (s->r.cq_tail + 1) & (s->r.cq_size - 1);
    if (s->r.cq_tail == 0) {
        s->r.cq_phase ^= 1;
    }
    s->r.cnt_completed++;
    if (status != REFACCEL_CPL_OK) {
        s->r.cnt_errors++;
    }
    irq = !(e->desc.flags & REFACCEL_DESC_F_NO_IRQ);
    refaccel_fifo_pop(s);
    if (irq) {
        refaccel_raise(s, REFACCEL_INT_COMPLETION);
    }
}

/* ---- page requests ---- */

/*
 * The head needs a page: ask for it and wait (true), or, with the log
 * full, let it complete with PAGE_FAULT (false).
 */
static bool refaccel_page_request(RefaccelState *s, RefaccelEntry *e,
                                  uint64_t page, bool write)
{
    if (!refaccel_pri_request(&s->r.pri, page, write)) {
        refaccel_guest_error(s, "page request log full (%u requests), "
                             "descriptor 0x%" PRIx64 " faults",
                             REFACCEL_PRI_LOG_DEPTH, (uint64_t)e->desc.tag);
        return false;
    }
    s->r.cnt_page_reqs++;
    e->state = REFACCEL_ENT_PRI_WAIT;
    e->deadline = 0;
    refaccel_raise(s, REFACCEL_INT_PAGE_REQ);
    return true;
}

/*
 * The head's page request is over (answered, or withdrawn by clearing
 * PRI_CTRL.ENABLE): it executes again at once, or completes with
 * PAGE_FAULT.  A draining quiesce treats it as executing work.
 */
static void refaccel_pri_continue(RefaccelState *s, bool fault)
{
    RefaccelEntry *e = refaccel_fifo_head(s);

    if (!e || e->state != REFACCEL_ENT_PRI_WAIT) {
        return;
    }
    e->state = REFACCEL_ENT_RUNNING;
    e->paused = false;
    e->page_fault = fault;
    e->deadline = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    refaccel_quiesce_progress(s);
    refaccel_kick(s);
}

static void refaccel_write_pri_resp(RefaccelState *s, uint32_t val)
{
    if (s->testctl && (s->r.test_flags & REFACCEL_TEST_NO_PRI_RESP)) {
        return;         /* lost on the way: as if never sent */
    }
    switch (refaccel_pri_answer(&s->r.pri, val)) {
    case REFACCEL_PRI_ANSWER_STALE:
        return;
    case REFACCEL_PRI_ANSWER_RETRY:
        refaccel_pri_continue(s, false);
        return;
    case REFACCEL_PRI_ANSWER_FAULT:
        refaccel_pri_continue(s, true);
        return;
    }
}

static void refaccel_write_pri(RefaccelState *s, hwaddr addr, uint32_t val)
{
    if (!s->pri) {
        return;
    }
    switch (addr) {
    case REFACCEL_REG_PRI_CTRL:
        if (refaccel_pri_write_ctrl(&s->r.pri, val)) {
            refaccel_pri_continue(s, true);
        }
        return;
    case REFACCEL_REG_PRI_LOG_POP:
        refaccel_pri_pop(&s->r.pri);
        return;
    case REFACCEL_REG_PRI_RESP:
        refaccel_write_pri_resp(s, val);
        return;
    }
    refaccel_guest_error(s, "write 0x%x to read-only or unknown page request "
                         "register 0x%" HWADDR_PRIx, val, addr);
}

/*
 * The engine.  Runs from a bottom half guarded against re-entrant MMIO, so
 * a DMA that targets this device's own BARs fails instead of recursing.
 *
 * The FIFO head op runs its latency, then executes (DMA, completion,
 * interrupt) in one step once the CQ has a free slot; until then it waits
 * unexecuted.  A draining quiesce lets an op whose latency is running
 * finish, but starts nothing new (a parking one stops it at once, see
 * refaccel_quiesce_progress()); once stopped, nothing here runs.
 */
static void refaccel_work(void *opaque)
{
    RefaccelState *s = opaque;
    bool progress = true;

    /*
     * A DMA or MSI could unplug us (a config write through ECAM): stay
     * alive, and stop at once when it did (exit bumps the generation, so
     * the step that did it reports a reset and we come back here).
     */
    refaccel_hold(s);

    while (progress && !refaccel_dead(s) && !refaccel_halted(s) &&
           !refaccel_stopped(s) && !refaccel_powered_down(s)) {
        uint64_t gen = s->generation;
        RefaccelEntry *e;
        struct refaccel_desc d;
        uint32_t st, result;
        uint64_t page;
        bool aborted, write;

        progress = false;
        if (!refaccel_fetch(s)) {
            progress = true;            /* reset meanwhile: start over */
            continue;
        }

        e = refaccel_fifo_head(s);
        if (!e || refaccel_halted(s)) {
            break;
        }

        if (e->state == REFACCEL_ENT_QUEUED) {
            if (!refaccel_may_start(s)) {
                break;
            }
            e->state = REFACCEL_ENT_RUNNING;
            e->paused = false;
            e->deadline = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                          s->r.op_latency_ns;
            timer_mod(&s->op_timer, e->deadline);
            break;
        }

        if (e->state == REFACCEL_ENT_PRI_WAIT) {
            break;      /* PRI_RESP (or clearing PRI_CTRL) moves it on */
        }
        if (e->paused) {
            break;      /* cannot happen unless stopped; be safe anyway */
        }
        if (qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) < e->deadline) {
            timer_mod(&s->op_timer, e->deadline);
            break;
        }
        if (refaccel_cq_full(s)) {
            break;      /* wait for a CQ_HEAD doorbell, unexecuted */
        }
        d = e->desc;
        if (e->page_fault) {
            st = REFACCEL_CPL_PAGE_FAULT;   /* its page request failed */
            result = 0;
        } else {
            st = refaccel_execute(s, &d, &result, &aborted, &page, &write);
            if (aborted || s->generation != gen) {
                progress = true;            /* reset meanwhile: start over */
                continue;
            }
        }
        if (st == REFACCEL_EXEC_PAGE_REQUEST) {
            if (refaccel_page_request(s, e, page, write)) {
                break;                      /* waits for the answer */
            }
            st = REFACCEL_CPL_PAGE_FAULT;
            result = 0;
        }
        refaccel_post_completion(s, e, st, result);
        progress = true;
    }

    refaccel_quiesce_progress(s);
    refaccel_release(s);
}

static void refaccel_kick(RefaccelState *s)
{
    if (refaccel_dead(s)) {
        return;         /* exit deleted the bottom half */
    }
    qemu_bh_schedule(s->work_bh);
}

static void refaccel_op_timer(void *opaque)
{
    refaccel_kick(opaque);
}

/* ---- quiesce and freeze ---- */

/*
 * A quiesce is requested while MIG_CTRL has QUIESCE or FREEZE (a freeze
 * implies a quiesce and waits for it).  It parks the executing op, rather
 * than letting it finish, when PARK is set or when FREEZE comes on its own
 * (a bare freeze stops at once, as it always did), unless this device
 * cannot park at all ("quiesce-unbounded").
 */
static bool refaccel_may_park(RefaccelState *s)
{
    if (s->quiesce_unbounded) {
        return false;
    }
    return (s->m.ctrl & REFACCEL_MIG_CTRL_PARK) ||
           !(s->m.ctrl & REFACCEL_MIG_CTRL_QUIESCE);
}

/* Descriptors stopped mid-execution, keeping their latency (MIG_PARKED). */
static uint32_t refaccel_parked(RefaccelState *s)
{
    uint32_t i, n = 0;

    for (i = 0; i < s->r.fifo_count; i++) {
        RefaccelEntry *e = &s->r.fifo[(s->r.fifo_head + i) %
                                      REFACCEL_FIFO_DEPTH];

        if (e->state == REFACCEL_ENT_RUNNING && e->paused) {
            n++;
        }
    }
    return n;
}

/* Stop the head op's clock: it keeps the latency it has left. */
static void refaccel_pause_head(RefaccelState *s)
{
    RefaccelEntry *e = refaccel_fifo_head(s);
    int64_t left;

    timer_del(&s->op_timer);
    if (e && e->state == REFACCEL_ENT_RUNNING && !e->paused) {
        left = e->deadline - qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
        e->remaining = MIN(MAX(left, 0), (int64_t)UINT32_MAX);
        e->paused = true;
        e->deadline = 0;
    }
}

/* QUIESCED and FREEZE requested: FROZEN now, every clock stops. */
static void refaccel_freeze_if_due(RefaccelState *s)
{
    if (s->m.quiesced && !s->m.frozen &&
        (s->m.ctrl & REFACCEL_MIG_CTRL_FREEZE)) {
        refaccel_pause_head(s);
        s->m.frozen = true;
    }
}

static void refaccel_set_quiesced(RefaccelState *s)
{
    timer_del(&s->quiesce_timer);
    s->m.quiesced = true;
    s->m.qstate = REFACCEL_Q_IDLE;
    refaccel_freeze_if_due(s);
}

static bool refaccel_never_quiesce(RefaccelState *s)
{
    /* the test registers hold their property values even without testctl */
    return s->r.test_flags & REFACCEL_TEST_NEVER_QUIESCE;
}

/* Drained: QUIESCED now, later (TEST_QUIESCE_DELAY) or never. */
static void refaccel_quiesce_finish(RefaccelState *s)
{
    if (refaccel_dead(s)) {
        return;
    }
    if (s->m.qstate != REFACCEL_Q_DRAINED || s->m.quiesced ||
        timer_pending(&s->quiesce_timer)) {
        return;
    }
    if (refaccel_never_quiesce(s)) {
        return;
    }
    if (s->r.test_quiesce_delay) {
        timer_mod(&s->quiesce_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)s->r.test_quiesce_delay * SCALE_US);
        return;
    }
    refaccel_set_quiesced(s);
}

static void refaccel_quiesce_timer(void *opaque)
{
    RefaccelState *s = opaque;

    if (refaccel_dead(s)) {
        return;
    }
    if (s->m.qstate == REFACCEL_Q_DRAINED && !s->m.quiesced &&
        !refaccel_never_quiesce(s)) {
        refaccel_set_quiesced(s);
    }
}

/*
 * While a quiesce drains: is the head op still executing?  Parking stops
 * it at once with the latency it has left (it resumes with that after the
 * quiesce).  Draining lets it finish; an op whose latency is over but that
 * cannot complete because the CQ is full is put back (QUEUED: it restarts
 * its full latency later), except on a device that cannot park, where the
 * quiesce waits for a CQ_HEAD doorbell to make room.
 */
static void refaccel_quiesce_progress(RefaccelState *s)
{
    RefaccelEntry *e = refaccel_fifo_head(s);

    if (refaccel_dead(s) || s->m.qstate != REFACCEL_Q_DRAINING) {
        return;
    }
    if (e && e->state == REFACCEL_ENT_PRI_WAIT) {
        /*
         * A page request cannot be parked: its answer may come at any
         * time.  Without ABORT_PRI the quiesce waits for it (PRI_RESP
         * brings us back); with it the request is withdrawn and the
         * descriptor put back, to ask again once the device runs.
         */
        if (!(s->m.ctrl & REFACCEL_MIG_CTRL_ABORT_PRI) ||
            (s->testctl && (s->r.test_flags & REFACCEL_TEST_NO_PRI_ABORT))) {
            return;
        }
        refaccel_pri_abort(&s->r.pri);
        e->state = REFACCEL_ENT_QUEUED;
        e->deadline = 0;
    }
    if (e && e->state == REFACCEL_ENT_RUNNING && !e->paused &&
        !refaccel_halted(s)) {
        if (refaccel_may_park(s)) {
            refaccel_pause_head(s);
        } else {
            if (qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) < e->deadline) {
                return;                 /* the op timer brings us back */
            }
            if (refaccel_powered_down(s)) {
                return;                 /* D0 kicks the engine */
            }
            if (!refaccel_cq_full(s)) {
                refaccel_kick(s);       /* it executes, then we come back */
                return;
            }
            if (s->quiesce_unbounded) {
                return;                 /* CQ_HEAD kicks the engine */
            }
            e->state = REFACCEL_ENT_QUEUED;
            e->deadline = 0;
        }
    }
    s->m.qstate = REFACCEL_Q_DRAINED;
    refaccel_quiesce_finish(s);
}

/*
 * The device may run again (quiesce over, back in D0): send the messages
 * owed meanwhile, if they are still due and unmasked, and restart work.
 */
static void refaccel_run_again(RefaccelState *s)
{
    uint32_t owed = s->r.int_owed & s->r.int_status & ~s->r.int_mask;

    if (refaccel_stopped(s) || refaccel_powered_down(s)) {
        return;
    }
    s->r.int_owed = 0;
    refaccel_notify(s, owed);
    refaccel_kick(s);
}

/* Leave the quiesced state (or cancel a quiesce in progress). */
static void refaccel_resume(RefaccelState *s)
{
    RefaccelEntry *e = refaccel_fifo_head(s);

    timer_del(&s->quiesce_timer);
    s->m.frozen = false;
    s->m.quiesced = false;
    s->m.qstate = REFACCEL_Q_IDLE;
    if (e && e->state == REFACCEL_ENT_RUNNING && e->paused) {
        e->deadline = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + e->remaining;
        e->remaining = 0;
        e->paused = false;
    }
    refaccel_run_again(s);
}

/*
 * A doorbell (SQ_TAIL, CQ_HEAD) rung while frozen is not dropped: a frozen
 * device changes no state, so it is held in the migration block, shown
 * when the register is read, saved by SAVE as the register's value, and
 * takes effect at thaw.  A RESTORE replaces it with the restored state.
 */
static bool refaccel_defer_doorbell(RefaccelState *s, hwaddr addr,
                                    uint32_t val)
{
    if (addr == REFACCEL_REG_SQ_TAIL) {
        s->m.db_sq_tail = s->r.sq_size ? val % s->r.sq_size : 0;
        s->m.db_sq_pending = true;
        return true;
    }
    if (addr == REFACCEL_REG_CQ_HEAD) {
        s->m.db_cq_head = s->r.cq_size ? val % s->r.cq_size : 0;
        s->m.db_cq_pending = true;
        return true;
    }
    return false;
}

static uint32_t refaccel_sq_tail(RefaccelState *s)
{
    return s->m.db_sq_pending ? s->m.db_sq_tail : s->r.sq_tail;
}

static uint32_t refaccel_cq_head(RefaccelState *s)
{
    return s->m.db_cq_pending ? s->m.db_cq_head : s->r.cq_head;
}

static void refaccel_apply_doorbells(RefaccelState *s)
{
    s->r.sq_tail = refaccel_sq_tail(s);
    s->r.cq_head = refaccel_cq_head(s);
    s->m.db_sq_pending = s->m.db_cq_pending = false;
}

static void refaccel_write_mig_ctrl(RefaccelState *s, uint32_t val)
{
    const uint32_t stop = REFACCEL_MIG_CTRL_QUIESCE | REFACCEL_MIG_CTRL_FREEZE;
    const uint32_t valid = REFACCEL_MIG_CTRL_QUIESCE |
                           REFACCEL_MIG_CTRL_ABORT_PRI |
                           REFACCEL_MIG_CTRL_FREEZE |
                           REFACCEL_MIG_CTRL_PARK;
    uint32_t old = s->m.ctrl;
    uint32_t new = val & valid;

    if (val & ~valid) {
        refaccel_guest_error(s, "MIG_CTRL reserved bits 0x%x ignored",
                             val & ~valid);
    }
    s->m.ctrl = new;

    if (s->m.frozen) {
        if ((new & REFACCEL_MIG_CTRL_FREEZE) ||
            (s->testctl && (s->r.test_flags & REFACCEL_TEST_NO_THAW))) {
            return;     /* still frozen: other changes are only recorded */
        }
        /* thaw: quiesced if QUIESCE is set, running otherwise */
        s->m.frozen = false;
        refaccel_apply_doorbells(s);
        if (!(new & REFACCEL_MIG_CTRL_QUIESCE)) {
            refaccel_resume(s);
        }
        return;
    }
    if (!(new & stop)) {
        if (old & stop) {
            /* unquiesce, or withdraw a quiesce or freeze not reached yet */
            refaccel_resume(s);
        }
        return;
    }
    /* a quiesce is wanted; FREEZE (if set) waits for QUIESCED */
    if (!s->m.quiesced && s->m.qstate == REFACCEL_Q_IDLE) {
        s->m.qstate = REFACCEL_Q_DRAINING;
    }
    refaccel_quiesce_progress(s);       /* PARK (or bare FREEZE): at once */
    refaccel_freeze_if_due(s);
}

/* ---- SRAM dirty bitmap ---- */

static uint32_t refaccel_dirty_words(RefaccelState *s)
{
    return DIV_ROUND_UP(s->dirty_pages, 32);
}

/*
 * BAR2 logs CPU and peer writes for the VGA client from realize to exit.
 * The log is never switched on and off at run time: that is a memory
 * topology commit, and QEMU 10.0's TCG resolves a vCPU's I/O TLB entries
 * against the live dispatch while its TLB flush is still pending, so a
 * vCPU racing such a commit can abort in iotlb_to_section() (found by
 * fuzzing the migration stream, which starts and stops tracking often).
 * SRAM_DIRTY_CTRL only decides whether what the log caught also goes to
 * the dirty bitmap; it always goes to the touched bitmap, which tells a
 * function reset which pages it has to clear.
 */
static void refaccel_dirty_log_take(RefaccelState *s)
{
    bool track = s->m.dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE;
    const hwaddr pg = REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    const hwaddr chunk = 32 * pg;
    g_autofree DirtyBitmapSnapshot *snap = NULL;
    hwaddr off, p, len;

    /* syncs the accelerator's log first (KVM), then clears ours */
    snap = memory_region_snapshot_and_clear_dirty(&s->sram, 0, s->sram_size,
                                                  DIRTY_MEMORY_VGA);
    for (off = 0; off < s->sram_size; off += chunk) {
        len = MIN(chunk, s->sram_size - off);
        if (!memory_region_snapshot_get_dirty(&s->sram, snap, off, len)) {
            continue;
        }
        for (p = off; p < off + len; p += pg) {
            if (memory_region_snapshot_get_dirty(&s->sram, snap, p, pg)) {
                set_bit(p / pg, s->touched_bm);
                if (track) {
                    set_bit(p / pg, s->dirty_bm);
                }
            }
        }
    }
}

/*
 * While tracking: move what the log caught into our bitmap.  Done when
 * SRAM_DIRTY_INDEX is written, once per pass over the bitmap, not per
 * word read: a snapshot walks the whole SRAM and allocates.
 */
static void refaccel_dirty_sync(RefaccelState *s)
{
    if (s->m.dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE) {
        refaccel_dirty_log_take(s);
    }
}

static void refaccel_dirty_set_enable(RefaccelState *s, bool on)
{
    bool was = s->m.dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE;

    if (on == was) {
        return;
    }
    if (on) {
        /* clean start: forget the log and the device-write bits */
        refaccel_dirty_log_take(s);
        bitmap_zero(s->dirty_bm, s->dirty_pages);
        s->m.dirty_ctrl = REFACCEL_SRAM_DIRTY_ENABLE;
    } else {
        /* what was written while on stays readable until read */
        refaccel_dirty_sync(s);
        s->m.dirty_ctrl = 0;
    }
}

static uint32_t refaccel_dirty_read_data(RefaccelState *s)
{
    uint32_t idx = s->m.dirty_index;
    uint32_t word = 0;
    uint32_t n, first;

    if (s->m.dirty_index < UINT32_MAX) {
        s->m.dirty_index++;
    }
    if (idx >= refaccel_dirty_words(s)) {
        return 0;
    }
    first = idx * 32;
    for (n = 0; n < 32 && first + n < s->dirty_pages; n++) {
        if (test_and_clear_bit(first + n, s->dirty_bm)) {
            word |= 1u << n;
        }
    }
    return word;
}

/* ---- save / restore ---- */

static uint32_t refaccel_crc32c(const uint8_t *p, size_t len)
{
    /* the standard CRC-32C (see the CRC32C op) */
    return crc32c(0xffffffff, p, len);
}

static uint32_t refaccel_compute_compat_id(RefaccelState *s)
{
    uint8_t b[28];

    stl_le_p(b + 0, REFACCEL_MIG_STATE_MAGIC);
    /* the oldest format still read: version 2 kept the ids of version 1 */
    stl_le_p(b + 4, REFACCEL_MIG_FORMAT_V1);
    stq_le_p(b + 8, s->sram_size);
    stl_le_p(b + 16, s->max_xfer);
    /* fault injection knobs do not make devices incompatible */
    stl_le_p(b + 20, refaccel_caps(s) &
             ~(REFACCEL_CAP_TESTCTL | REFACCEL_CAP_QUIESCE_UNBOUNDED));
    stl_le_p(b + 24, REFACCEL_FIFO_DEPTH);
    return refaccel_crc32c(b, sizeof(b));
}

/* A little-endian cursor over the window. */
typedef struct RefaccelCursor {
    uint8_t *p;
    size_t pos;
    size_t len;
} RefaccelCursor;

static void cur_put32(RefaccelCursor *c, uint32_t v)
{
    g_assert(c->pos + 4 <= c->len);
    stl_le_p(c->p + c->pos, v);
    c->pos += 4;
}

static void cur_put64(RefaccelCursor *c, uint64_t v)
{
    g_assert(c->pos + 8 <= c->len);
    stq_le_p(c->p + c->pos, v);
    c->pos += 8;
}

static uint32_t cur_get32(RefaccelCursor *c)
{
    uint32_t v;

    g_assert(c->pos + 4 <= c->len);
    v = ldl_le_p(c->p + c->pos);
    c->pos += 4;
    return v;
}

static uint64_t cur_get64(RefaccelCursor *c)
{
    uint64_t v;

    g_assert(c->pos + 8 <= c->len);
    v = ldq_le_p(c->p + c->pos);
    c->pos += 8;
    return v;
}

static void refaccel_mig_fail(RefaccelState *s, uint32_t err, const char *what)
{
    s->m.status |= REFACCEL_MIG_STATUS_CMD_ERR;
    s->m.err = err;
    refaccel_guest_error(s, "migration command failed: %s (MIG_ERR %u)",
                         what, err);
}

/*
 * Version 1 payload, in this order (all little endian; see the spec):
 * the fixed part, REFACCEL_MIG_FIXED_SIZE bytes, then per FIFO entry from
 * the head: the raw 64-byte descriptor, its state, its remaining latency.
 */
static void refaccel_mig_save(RefaccelState *s)
{
    RefaccelRegs *r = &s->r;
    RefaccelCursor c = {
        .p = s->m.window + REFACCEL_MIG_HDR_SIZE,
        .len = REFACCEL_MIG_WINDOW_SIZE - REFACCEL_MIG_HDR_SIZE,
    };
    uint32_t i, crc;

    if (!refaccel_frozen(s)) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_NOT_FROZEN, "SAVE needs FREEZE");
        return;
    }
    if (s->testctl && (s->r.test_flags & REFACCEL_TEST_SAVE_FAIL)) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_INJECTED,
                          "SAVE failure injected");
        return;
    }
    memset(s->m.window, 0, sizeof(s->m.window));

    cur_put32(&c, r->ctrl);
    cur_put32(&c, r->status & REFACCEL_STATUS_HALTED ? 1 : 0);
    cur_put32(&c, r->halt_reason);
    cur_put32(&c, r->op_latency_ns);
    cur_put32(&c, s->max_xfer);
    cur_put32(&c, s->sram_size);
    cur_put64(&c, r->sq_base);
    cur_put32(&c, r->sq_base_lo);
    cur_put32(&c, r->sq_size);
    cur_put32(&c, r->sq_head);
    cur_put32(&c, refaccel_sq_tail(s));
    cur_put64(&c, r->cq_base);
    cur_put32(&c, r->cq_base_lo);
    cur_put32(&c, r->cq_size);
    cur_put32(&c, refaccel_cq_head(s));
    cur_put32(&c, r->cq_tail);
    cur_put32(&c, r->cq_phase);
    cur_put32(&c, r->int_status);
    cur_put32(&c, r->int_mask);
    cur_put32(&c, r->int_owed);
    cur_put32(&c, r->cnt_fetched);
    cur_put32(&c, r->cnt_completed);
    cur_put32(&c, r->cnt_errors);
    cur_put32(&c, r->cnt_page_reqs);
    cur_put32(&c, s->m.dirty_ctrl);
    cur_put32(&c, r->fifo_count);
    g_assert(c.pos == REFACCEL_MIG_FIXED_SIZE);

    /* frozen: a running head op is already paused; make sure anyway */
    refaccel_pause_head(s);
    for (i = 0; i < r->fifo_count; i++) {
        RefaccelEntry *e = &r->fifo[(r->fifo_head + i) % REFACCEL_FIFO_DEPTH];
        bool running = e->state == REFACCEL_ENT_RUNNING;

        memcpy(c.p + c.pos, e->raw, REFACCEL_DESC_SIZE);
        c.pos += REFACCEL_DESC_SIZE;
        cur_put32(&c, running ? REFACCEL_ENT_RUNNING |
                  (e->page_fault ? REFACCEL_ENT_F_PAGE_FAULT : 0)
                  : REFACCEL_ENT_QUEUED);
        cur_put32(&c, running ? e->remaining : 0);
    }
    if (s->pri) {
        refaccel_pri_save(&r->pri, c.p + c.pos);
        c.pos += REFACCEL_PRI_STATE_SIZE;
    }

    crc = refaccel_crc32c(c.p, c.pos);
    stl_le_p(s->m.window + 0, REFACCEL_MIG_STATE_MAGIC);
    stl_le_p(s->m.window + 4, REFACCEL_MIG_FORMAT_V2);
    stl_le_p(s->m.window + 8, s->compat_id);
    stl_le_p(s->m.window + 12, c.pos);
    stl_le_p(s->m.window + 16, crc);
    stl_le_p(s->m.window + 20, 0);
    if (s->testctl && (r->test_flags & REFACCEL_TEST_CORRUPT_SAVE)) {
        c.p[c.pos / 2] ^= 0x5a;
    }

    s->m.state_size = REFACCEL_MIG_HDR_SIZE + c.pos;
    s->m.size_invalid = false;
    s->m.state_offset = 0;
    s->m.status |= REFACCEL_MIG_STATUS_SAVED;
}

/* Is an idle ring's saved register set one the registers could hold? */
static bool refaccel_idle_ring_ok(uint32_t size, uint32_t head, uint32_t tail)
{
    if (!size) {
        return head == 0 && tail == 0;
    }
    return head < size && tail < size;
}

static void refaccel_mig_restore(RefaccelState *s)
{
    uint8_t *w = s->m.window;
    uint32_t size = s->m.state_size;
    uint32_t plen, count, i;
    RefaccelCursor c;
    RefaccelRegs n;
    uint32_t halted, dirty_ctrl, sram, xfer, version;
    bool in_use, pri_block;

    s->m.status &= ~REFACCEL_MIG_STATUS_RESTORED;
    if (!refaccel_frozen(s)) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_NOT_FROZEN,
                          "RESTORE needs FREEZE");
        return;
    }
    if (s->m.size_invalid || size < REFACCEL_MIG_HDR_SIZE ||
        size > REFACCEL_MIG_WINDOW_SIZE) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_SIZE, "state size");
        return;
    }
    if (ldl_le_p(w + 0) != REFACCEL_MIG_STATE_MAGIC) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_MAGIC, "magic");
        return;
    }
    /*
     * Version 1 is version 2 without the page request block and without
     * entry flags: what a device that never made a page request saves.
     */
    version = ldl_le_p(w + 4);
    if (version != REFACCEL_MIG_FORMAT_V1 &&
        version != REFACCEL_MIG_FORMAT_V2) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_VERSION, "format version");
        return;
    }
    pri_block = version >= REFACCEL_MIG_FORMAT_V2 && s->pri;
    if (ldl_le_p(w + 8) != s->compat_id) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_COMPAT, "compatibility id");
        return;
    }
    plen = ldl_le_p(w + 12);
    if (plen != size - REFACCEL_MIG_HDR_SIZE) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_SIZE,
                          "payload length disagrees with MIG_STATE_SIZE");
        return;
    }
    if (ldl_le_p(w + 16) != refaccel_crc32c(w + REFACCEL_MIG_HDR_SIZE, plen)) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_CRC, "payload CRC");
        return;
    }
    if (ldl_le_p(w + 20) != 0) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_FIELD, "header reserved");
        return;
    }
    if (plen < REFACCEL_MIG_FIXED_SIZE) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_SIZE, "payload too short");
        return;
    }

    /* Decode into a scratch copy: nothing changes until all of it checks. */
    c = (RefaccelCursor) {
        .p = w + REFACCEL_MIG_HDR_SIZE,
        .len = plen,
    };
    memset(&n, 0, sizeof(n));
    n.ctrl = cur_get32(&c);
    halted = cur_get32(&c);
    n.halt_reason = cur_get32(&c);
    n.op_latency_ns = cur_get32(&c);
    xfer = cur_get32(&c);
    sram = cur_get32(&c);
    n.sq_base = cur_get64(&c);
    n.sq_base_lo = cur_get32(&c);
    n.sq_size = cur_get32(&c);
    n.sq_head = cur_get32(&c);
    n.sq_tail = cur_get32(&c);
    n.cq_base = cur_get64(&c);
    n.cq_base_lo = cur_get32(&c);
    n.cq_size = cur_get32(&c);
    n.cq_head = cur_get32(&c);
    n.cq_tail = cur_get32(&c);
    n.cq_phase = cur_get32(&c);
    n.int_status = cur_get32(&c);
    n.int_mask = cur_get32(&c);
    n.int_owed = cur_get32(&c);
    n.cnt_fetched = cur_get32(&c);
    n.cnt_completed = cur_get32(&c);
    n.cnt_errors = cur_get32(&c);
    n.cnt_page_reqs = cur_get32(&c);
    dirty_ctrl = cur_get32(&c);
    count = cur_get32(&c);
    g_assert(c.pos == REFACCEL_MIG_FIXED_SIZE);

#define BAD_FIELD(cond, what) do {                                  \
        if (cond) {                                                 \
            refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_FIELD, what); \
            return;                                                 \
        }                                                           \
    } while (0)

    BAD_FIELD(count > REFACCEL_FIFO_DEPTH, "FIFO count above depth");
    if (plen != REFACCEL_MIG_FIXED_SIZE + count * REFACCEL_MIG_ENTRY_SIZE +
        (pri_block ? REFACCEL_PRI_STATE_SIZE : 0)) {
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_SIZE,
                          "payload length disagrees with FIFO count");
        return;
    }
    BAD_FIELD(n.ctrl & ~REFACCEL_CTRL_ENABLE, "CTRL");
    BAD_FIELD(halted > 1, "halted flag");
    BAD_FIELD(halted ? n.halt_reason < REFACCEL_HALT_SQ_FETCH ||
                       n.halt_reason > REFACCEL_HALT_RING_CONFIG
                     : n.halt_reason != REFACCEL_HALT_NONE, "HALT_REASON");
    BAD_FIELD(halted && count, "FIFO entries on a halted device");
    BAD_FIELD(xfer != s->max_xfer, "MAX_XFER");
    BAD_FIELD(sram != s->sram_size, "SRAM_SIZE");
    BAD_FIELD(n.cq_phase > 1, "CQ phase");
    BAD_FIELD(n.int_status & ~REFACCEL_INT_ALL, "INT_STATUS");
    BAD_FIELD(n.int_mask & ~REFACCEL_INT_ALL, "INT_MASK");
    BAD_FIELD(n.int_owed & ~n.int_status, "owed interrupt messages");
    BAD_FIELD(dirty_ctrl & ~REFACCEL_SRAM_DIRTY_ENABLE, "SRAM_DIRTY_CTRL");
    /*
     * A ring in use (enabled and running, or descriptors in the FIFO) went
     * through the enable-time checks and is locked: it must be valid.  An
     * idle ring holds whatever the registers accept.
     */
    n.status = halted ? REFACCEL_STATUS_HALTED : 0;
    in_use = count || ((n.ctrl & REFACCEL_CTRL_ENABLE) && !halted);
    if (in_use) {
        BAD_FIELD(!refaccel_ring_config_ok(&n), "ring configuration");
    } else {
        BAD_FIELD(!refaccel_idle_ring_ok(n.sq_size, n.sq_head, n.sq_tail),
                  "SQ indexes");
        BAD_FIELD(!refaccel_idle_ring_ok(n.cq_size, n.cq_head, n.cq_tail),
                  "CQ indexes");
    }
    for (i = 0; i < count; i++) {
        RefaccelEntry *e = &n.fifo[i];
        uint32_t st, left;

        memcpy(e->raw, c.p + c.pos, REFACCEL_DESC_SIZE);
        c.pos += REFACCEL_DESC_SIZE;
        st = cur_get32(&c);
        left = cur_get32(&c);
        BAD_FIELD((st & REFACCEL_ENT_F_PAGE_FAULT) &&
                  (version < REFACCEL_MIG_FORMAT_V2 ||
                   (st & ~REFACCEL_ENT_F_PAGE_FAULT) != REFACCEL_ENT_RUNNING),
                  "page fault flag on an entry not executing");
        e->page_fault = st & REFACCEL_ENT_F_PAGE_FAULT;
        st &= ~REFACCEL_ENT_F_PAGE_FAULT;
        BAD_FIELD(st > REFACCEL_ENT_RUNNING, "FIFO entry state");
        BAD_FIELD(st == REFACCEL_ENT_RUNNING && i != 0,
                  "executing entry not at the FIFO head");
        BAD_FIELD(st == REFACCEL_ENT_QUEUED && left, "queued entry latency");
        refaccel_decode_desc(&e->desc, e->raw);
        e->state = st;
        e->paused = st == REFACCEL_ENT_RUNNING;
        e->remaining = left;
    }
    if (pri_block) {
        const char *bad = refaccel_pri_load(&n.pri, c.p + c.pos);

        BAD_FIELD(bad, bad);
        c.pos += REFACCEL_PRI_STATE_SIZE;
    }
    g_assert(c.pos == plen);
#undef BAD_FIELD

    /* All good: apply.  The device stays frozen (and so quiesced). */
    n.fifo_head = 0;
    n.fifo_count = count;
    n.test_flags = s->r.test_flags;                 /* host knobs stay */
    n.test_quiesce_delay = s->r.test_quiesce_delay;
    if (!pri_block) {
        /* nothing saved: an empty block, in a new epoch */
        n.pri = s->r.pri;
        refaccel_pri_reset(&n.pri);
    }
    s->generation++;
    timer_del(&s->op_timer);
    s->r = n;
    s->m.db_sq_pending = s->m.db_cq_pending = false;
    refaccel_dirty_set_enable(s, dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE);
    s->m.status |= REFACCEL_MIG_STATUS_RESTORED;
}

static void refaccel_mig_discard(RefaccelState *s)
{
    memset(s->m.window, 0, sizeof(s->m.window));
    s->m.state_size = 0;
    s->m.size_invalid = false;
    s->m.state_offset = 0;
    s->m.status &= ~(REFACCEL_MIG_STATUS_SAVED | REFACCEL_MIG_STATUS_RESTORED);
}

static void refaccel_write_mig_cmd(RefaccelState *s, uint32_t val)
{
    s->m.status &= ~REFACCEL_MIG_STATUS_CMD_ERR;
    s->m.err = REFACCEL_MIG_ERR_NONE;
    switch (val) {
    case REFACCEL_MIG_CMD_SAVE:
        refaccel_mig_save(s);
        break;
    case REFACCEL_MIG_CMD_RESTORE:
        refaccel_mig_restore(s);
        break;
    case REFACCEL_MIG_CMD_DISCARD:
        refaccel_mig_discard(s);
        break;
    default:
        refaccel_mig_fail(s, REFACCEL_MIG_ERR_BAD_CMD, "unknown MIG_CMD");
        break;
    }
}

static uint32_t refaccel_mig_read_data(RefaccelState *s)
{
    uint32_t off = s->m.state_offset;
    uint8_t b[4] = { 0 };

    if (off < s->m.state_size) {
        memcpy(b, s->m.window + off, MIN(4u, s->m.state_size - off));
    }
    if (off < REFACCEL_MIG_WINDOW_SIZE) {
        s->m.state_offset += 4;
    }
    return ldl_le_p(b);
}

static void refaccel_mig_write_data(RefaccelState *s, uint32_t val)
{
    uint32_t off = s->m.state_offset;

    if (off < REFACCEL_MIG_WINDOW_SIZE) {
        stl_le_p(s->m.window + off, val);
        s->m.state_offset += 4;
        s->m.status &= ~REFACCEL_MIG_STATUS_SAVED;
    } else {
        refaccel_guest_error(s, "MIG_STATE_DATA write at offset 0x%x past "
                             "the window, ignored", off);
    }
}

/* ---- reset ---- */

/*
 * Zero the SRAM pages written since they were last zeroed, not all of it (a
 * memset of 64 MiB per reset would stall the main loop), and count as
 * written only the pages that were not zero: SRAM a reset really cleared
 * while tracking is dirty SRAM.  The pages cleared here come back through
 * the log as touched, and the next reset finds them zero.
 */
static void refaccel_sram_clear(RefaccelState *s)
{
    const uint64_t pg = REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    unsigned long p;

    refaccel_dirty_log_take(s);
    for (p = find_first_bit(s->touched_bm, s->dirty_pages);
         p < s->dirty_pages;
         p = find_next_bit(s->touched_bm, s->dirty_pages, p + 1)) {
        clear_bit(p, s->touched_bm);
        if (!buffer_is_zero(s->sram_ptr + p * pg, pg)) {
            memset(s->sram_ptr + p * pg, 0, pg);
            refaccel_sram_written(s, p * pg, pg);
            clear_bit(p, s->touched_bm);    /* zero, as far as we know */
        }
    }
}

/*
 * Function reset (CTRL.RESET): the rings, work, counters and SRAM go back
 * to power-on values; the migration block does not (it belongs to the
 * migration driver, whose quiesce, freeze and tracking must survive what
 * the guest's driver does).  SRAM cleared while tracking is dirty SRAM.
 */
static void refaccel_function_reset(RefaccelState *s)
{
    RefaccelPri pri = s->r.pri;

    s->generation++;
    timer_del(&s->op_timer);
    memset(&s->r, 0, sizeof(s->r));
    /* empty, in a new epoch: an answer from before the reset is stale */
    s->r.pri = pri;
    refaccel_pri_reset(&s->r.pri);
    s->r.op_latency_ns = s->prop_op_latency_ns;
    s->r.cq_phase = 1;
    /* the fault injection properties are the test registers' reset values */
    s->r.test_flags = s->prop_never_quiesce ? REFACCEL_TEST_NEVER_QUIESCE : 0;
    s->r.test_quiesce_delay = s->prop_quiesce_delay_us;
    /* the next user must not see the previous user's data */
    if (s->sram_ptr) {
        refaccel_sram_clear(s);
    }
    /* a quiesce that waited for the dropped work is over now */
    refaccel_quiesce_progress(s);
}

/*
 * What pci_do_device_reset() leaves alone: the error reporting enables of
 * DEVCTL and the ATS, PASID and PRI controls.  An FLR clears them (they are
 * not sticky); PRI reports "stopped" again.
 */
static void refaccel_reset_config(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    pcie_cap_deverr_reset(pdev);
    if (pdev->exp.ats_cap) {
        pci_set_word(pdev->config + pdev->exp.ats_cap + PCI_ATS_CTRL, 0);
    }
    if (s->pasid_cap) {
        pci_set_word(pdev->config + s->pasid_cap + PCI_PASID_CTRL, 0);
    }
    if (s->pri_cap) {
        pci_set_word(pdev->config + s->pri_cap + PCI_PRI_CTRL, 0);
        pci_set_word(pdev->config + s->pri_cap + PCI_PRI_STATUS,
                     PCI_PRI_STATUS_STOPPED);
        pci_set_long(pdev->config + s->pri_cap + PCI_PRI_ALLOC_REQ, 0);
    }
}

/* Device reset (power on, FLR, bus reset): everything, migration too. */
static void refaccel_reset_state(RefaccelState *s)
{
    refaccel_reset_config(s);
    timer_del(&s->quiesce_timer);
    memset(&s->m, 0, sizeof(s->m));
    refaccel_dt_reset(&s->dt);
    if (s->dirty_bm) {
        bitmap_zero(s->dirty_bm, s->dirty_pages);
    }
    refaccel_function_reset(s);
}

static void refaccel_qdev_reset(DeviceState *dev)
{
    refaccel_reset_state(REFACCEL(dev));
}

/* ---- BAR0 ---- */

static bool refaccel_rings_locked(RefaccelState *s, hwaddr addr)
{
    if (refaccel_enabled(s) || refaccel_busy(s)) {
        refaccel_guest_error(s, "ring register 0x%" HWADDR_PRIx
                             " written while enabled or busy, ignored", addr);
        return true;
    }
    return false;
}

/* Reserved: the rest of the DT block; read 0, ignore writes. */
static bool refaccel_reserved_block(hwaddr addr)
{
    return addr >= REFACCEL_REG_DT_CTRL &&
           addr < REFACCEL_REG_DT_CTRL + 0x100;
}

/* TEST_DT_COUNT: marks as if the device wrote one byte at each address. */
static void refaccel_test_dt_mark(RefaccelState *s, uint32_t count)
{
    uint64_t iova = s->r.test_dt_mark;
    uint32_t i;

    /* bounded work per MMIO write: 16 Mi marks (64 GiB at 4 KiB pages) */
    count = MIN(count, 1u << 24);

    for (i = 0; i < count; i++, iova += s->r.test_dt_stride) {
        refaccel_dt_mark(&s->dt, iova, 1);
    }
}

static uint32_t refaccel_reg_read(RefaccelState *s, hwaddr addr)
{
    uint32_t val;

    if (refaccel_dt_read(&s->dt, addr, &val)) {
        return val;
    }
    if (refaccel_pri_block(addr)) {
        return s->pri ? refaccel_pri_read(&s->r.pri, addr) : 0;
    }
    switch (addr) {
    case REFACCEL_REG_ID:
        return REFACCEL_ID_MAGIC;
    case REFACCEL_REG_VERSION:
        return REFACCEL_VERSION_1_0;
    case REFACCEL_REG_CAPS:
        return refaccel_caps(s);
    case REFACCEL_REG_SRAM_SIZE:
        return s->sram_size;
    case REFACCEL_REG_CTRL:
        return s->r.ctrl & REFACCEL_CTRL_ENABLE;
    case REFACCEL_REG_STATUS:
        return refaccel_status(s);
    case REFACCEL_REG_OP_LATENCY_NS:
        return s->r.op_latency_ns;
    case REFACCEL_REG_MAX_XFER:
        return s->max_xfer;
    case REFACCEL_REG_HALT_REASON:
        return s->r.halt_reason;

    case REFACCEL_REG_SQ_BASE_LO:
        return s->r.sq_base;
    case REFACCEL_REG_SQ_BASE_HI:
        return s->r.sq_base >> 32;
    case REFACCEL_REG_SQ_SIZE:
        return s->r.sq_size;
    case REFACCEL_REG_SQ_HEAD:
        return s->r.sq_head;
    case REFACCEL_REG_SQ_TAIL:
        return refaccel_sq_tail(s);
    case REFACCEL_REG_CQ_BASE_LO:
        return s->r.cq_base;
    case REFACCEL_REG_CQ_BASE_HI:
        return s->r.cq_base >> 32;
    case REFACCEL_REG_CQ_SIZE:
        return s->r.cq_size;
    case REFACCEL_REG_CQ_HEAD:
        return refaccel_cq_head(s);
    case REFACCEL_REG_CQ_TAIL:
        return s->r.cq_tail;

    case REFACCEL_REG_INT_STATUS:
        return s->r.int_status;
    case REFACCEL_REG_INT_MASK:
        return s->r.int_mask;

    case REFACCEL_REG_CNT_FETCHED:
        return s->r.cnt_fetched;
    case REFACCEL_REG_CNT_COMPLETED:
        return s->r.cnt_completed;
    case REFACCEL_REG_CNT_ERRORS:
        return s->r.cnt_errors;
    case REFACCEL_REG_CNT_PAGE_REQS:
        return s->r.cnt_page_reqs;

    case REFACCEL_REG_MIG_CTRL:
        return s->m.ctrl;
    case REFACCEL_REG_MIG_CMD:
        return 0;
    case REFACCEL_REG_MIG_STATUS:
        return s->m.status |
               (s->m.quiesced ? REFACCEL_MIG_STATUS_QUIESCED : 0) |
               (refaccel_frozen(s) ? REFACCEL_MIG_STATUS_FROZEN : 0);
    case REFACCEL_REG_MIG_ERR:
        return s->m.err;
    case REFACCEL_REG_MIG_STATE_SIZE:
        return s->m.state_size;
    case REFACCEL_REG_MIG_STATE_OFFSET:
        return s->m.state_offset;
    case REFACCEL_REG_MIG_STATE_DATA:
        return refaccel_mig_read_data(s);
    case REFACCEL_REG_MIG_FORMAT:
        return REFACCEL_MIG_FORMAT_V2;
    case REFACCEL_REG_MIG_COMPAT_ID:
        return s->compat_id;
    case REFACCEL_REG_MIG_STATE_MAX:
        return REFACCEL_MIG_WINDOW_SIZE;
    case REFACCEL_REG_MIG_PARKED:
        return refaccel_parked(s);

    case REFACCEL_REG_SRAM_DIRTY_CTRL:
        return s->m.dirty_ctrl;
    case REFACCEL_REG_SRAM_DIRTY_PGSIZE:
        return REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    case REFACCEL_REG_SRAM_DIRTY_INDEX:
        return s->m.dirty_index;
    case REFACCEL_REG_SRAM_DIRTY_DATA:
        return refaccel_dirty_read_data(s);

    case REFACCEL_REG_TEST_FLAGS:
        return s->testctl ? s->r.test_flags : 0;
    case REFACCEL_REG_TEST_QUIESCE_DELAY:
        return s->testctl ? s->r.test_quiesce_delay : 0;
    case REFACCEL_REG_TEST_OP_LATENCY:
        return s->testctl ? s->r.op_latency_ns : 0;
    case REFACCEL_REG_TEST_DT_MARK_LO:
        return s->testctl ? s->r.test_dt_mark : 0;
    case REFACCEL_REG_TEST_DT_MARK_HI:
        return s->testctl ? s->r.test_dt_mark >> 32 : 0;
    case REFACCEL_REG_TEST_DT_STRIDE:
        return s->testctl ? s->r.test_dt_stride : 0;
    case REFACCEL_REG_TEST_DT_COUNT:
        return 0;
    }

    if (refaccel_reserved_block(addr)) {
        return 0;
    }
    refaccel_guest_error(s, "read of unknown register 0x%" HWADDR_PRIx, addr);
    return 0;
}

static void refaccel_write_ctrl(RefaccelState *s, uint32_t val)
{
    bool was_enabled = refaccel_enabled(s);

    if (val & REFACCEL_CTRL_RESET) {
        refaccel_function_reset(s);
        return;
    }
    if (val & ~REFACCEL_CTRL_ENABLE) {
        refaccel_guest_error(s, "CTRL reserved bits 0x%x ignored",
                             val & ~(REFACCEL_CTRL_ENABLE |
                                     REFACCEL_CTRL_RESET));
    }
    s->r.ctrl = val & REFACCEL_CTRL_ENABLE;

    if (!was_enabled && refaccel_enabled(s) && !refaccel_halted(s)) {
        if (!refaccel_ring_config_ok(&s->r)) {
            refaccel_guest_error(s, "invalid ring configuration: "
                                 "sq 0x%" PRIx64 "/%u cq 0x%" PRIx64 "/%u",
                                 s->r.sq_base, s->r.sq_size,
                                 s->r.cq_base, s->r.cq_size);
            refaccel_halt(s, REFACCEL_HALT_RING_CONFIG);
            return;
        }
    }
    refaccel_kick(s);
}

static void refaccel_write_int_mask(RefaccelState *s, uint32_t val)
{
    uint32_t unmasked = s->r.int_mask & ~val;

    s->r.int_mask = val & REFACCEL_INT_ALL;
    refaccel_notify(s, unmasked & s->r.int_status);
}

static void refaccel_reg_write(RefaccelState *s, hwaddr addr, uint32_t val)
{
    if (refaccel_frozen(s) && refaccel_defer_doorbell(s, addr, val)) {
        return;
    }
    /* frozen: only the migration block and the host's test knobs */
    if (refaccel_frozen(s) &&
        (addr < REFACCEL_MIG_BLOCK_OFFSET ||
         addr >= REFACCEL_MIG_BLOCK_OFFSET + REFACCEL_MIG_BLOCK_SIZE) &&
        !(addr >= REFACCEL_TEST_BLOCK_OFFSET &&
          addr < REFACCEL_TEST_BLOCK_OFFSET + 0x1000)) {
        refaccel_guest_error(s, "write 0x%x to register 0x%" HWADDR_PRIx
                             " while frozen, ignored", val, addr);
        return;
    }
    if (refaccel_dt_write(&s->dt, addr, val)) {
        return;
    }
    if (refaccel_pri_block(addr)) {
        refaccel_write_pri(s, addr, val);
        return;
    }

    switch (addr) {
    case REFACCEL_REG_CTRL:
        refaccel_write_ctrl(s, val);
        return;

    case REFACCEL_REG_SQ_BASE_LO:
        if (!refaccel_rings_locked(s, addr)) {
            s->r.sq_base_lo = val;
        }
        return;
    case REFACCEL_REG_SQ_BASE_HI:
        if (!refaccel_rings_locked(s, addr)) {
            s->r.sq_base = deposit64(s->r.sq_base_lo, 32, 32, val);
            s->r.sq_head = s->r.sq_tail = 0;
        }
        return;
    case REFACCEL_REG_SQ_SIZE:
        if (!refaccel_rings_locked(s, addr)) {
            s->r.sq_size = val;
            s->r.sq_head = s->r.sq_tail = 0;
        }
        return;
    case REFACCEL_REG_SQ_TAIL:
        s->r.sq_tail = s->r.sq_size ? val % s->r.sq_size : 0;
        refaccel_kick(s);
        return;
    case REFACCEL_REG_CQ_BASE_LO:
        if (!refaccel_rings_locked(s, addr)) {
            s->r.cq_base_lo = val;
        }
        return;
    case REFACCEL_REG_CQ_BASE_HI:
        if (!refaccel_rings_locked(s, addr)) {
            s->r.cq_base = deposit64(s->r.cq_base_lo, 32, 32, val);
            s->r.cq_head = s->r.cq_tail = 0;
            s->r.cq_phase = 1;
        }
        return;
    case REFACCEL_REG_CQ_SIZE:
        if (!refaccel_rings_locked(s, addr)) {
            s->r.cq_size = val;
            s->r.cq_head = s->r.cq_tail = 0;
            s->r.cq_phase = 1;
        }
        return;
    case REFACCEL_REG_CQ_HEAD:
        s->r.cq_head = s->r.cq_size ? val % s->r.cq_size : 0;
        refaccel_kick(s);
        return;

    case REFACCEL_REG_INT_STATUS:
        s->r.int_status &= ~val;
        s->r.int_owed &= s->r.int_status;
        return;
    case REFACCEL_REG_INT_MASK:
        refaccel_write_int_mask(s, val);
        return;

    case REFACCEL_REG_MIG_CTRL:
        refaccel_write_mig_ctrl(s, val);
        return;
    case REFACCEL_REG_MIG_CMD:
        refaccel_write_mig_cmd(s, val);
        return;
    case REFACCEL_REG_MIG_STATE_SIZE:
        if (val > REFACCEL_MIG_WINDOW_SIZE) {
            refaccel_guest_error(s, "MIG_STATE_SIZE %u above the window, "
                                 "clamped; RESTORE will refuse it", val);
            s->m.state_size = REFACCEL_MIG_WINDOW_SIZE;
            s->m.size_invalid = true;
        } else {
            s->m.state_size = val;
            s->m.size_invalid = false;
        }
        s->m.status &= ~REFACCEL_MIG_STATUS_SAVED;
        return;
    case REFACCEL_REG_MIG_STATE_OFFSET:
        if (val & 3) {
            refaccel_guest_error(s, "MIG_STATE_OFFSET 0x%x not 4-aligned, "
                                 "rounded down", val);
        }
        s->m.state_offset = val & ~3u;
        return;
    case REFACCEL_REG_MIG_STATE_DATA:
        refaccel_mig_write_data(s, val);
        return;

    case REFACCEL_REG_SRAM_DIRTY_CTRL:
        if (val & ~REFACCEL_SRAM_DIRTY_ENABLE) {
            refaccel_guest_error(s, "SRAM_DIRTY_CTRL reserved bits 0x%x "
                                 "ignored", val & ~REFACCEL_SRAM_DIRTY_ENABLE);
        }
        refaccel_dirty_set_enable(s, val & REFACCEL_SRAM_DIRTY_ENABLE);
        return;
    case REFACCEL_REG_SRAM_DIRTY_INDEX:
        s->m.dirty_index = val;
        refaccel_dirty_sync(s);     /* a pass over the bitmap starts */
        return;

    case REFACCEL_REG_TEST_FLAGS:
        if (s->testctl) {
            s->r.test_flags = val;
            /* NO_PRI_ABORT or NEVER_QUIESCE may be gone */
            refaccel_quiesce_progress(s);
            refaccel_quiesce_finish(s);
        }
        return;
    case REFACCEL_REG_TEST_QUIESCE_DELAY:
        if (s->testctl) {
            s->r.test_quiesce_delay = val;
        }
        return;
    case REFACCEL_REG_TEST_OP_LATENCY:
        if (s->testctl) {
            /* applies to ops that start from now on */
            s->r.op_latency_ns = val;
        }
        return;
    case REFACCEL_REG_TEST_DT_MARK_LO:
        s->r.test_dt_mark_lo = val;
        return;
    case REFACCEL_REG_TEST_DT_MARK_HI:
        if (s->testctl) {
            s->r.test_dt_mark = (uint64_t)val << 32 | s->r.test_dt_mark_lo;
        }
        return;
    case REFACCEL_REG_TEST_DT_STRIDE:
        if (s->testctl) {
            s->r.test_dt_stride = val;
        }
        return;
    case REFACCEL_REG_TEST_DT_COUNT:
        if (s->testctl) {
            refaccel_test_dt_mark(s, val);
        }
        return;

    case REFACCEL_REG_ID:
    case REFACCEL_REG_VERSION:
    case REFACCEL_REG_CAPS:
    case REFACCEL_REG_SRAM_SIZE:
    case REFACCEL_REG_STATUS:
    case REFACCEL_REG_OP_LATENCY_NS:
    case REFACCEL_REG_MAX_XFER:
    case REFACCEL_REG_HALT_REASON:
    case REFACCEL_REG_SQ_HEAD:
    case REFACCEL_REG_CQ_TAIL:
    case REFACCEL_REG_CNT_FETCHED:
    case REFACCEL_REG_CNT_COMPLETED:
    case REFACCEL_REG_CNT_ERRORS:
    case REFACCEL_REG_CNT_PAGE_REQS:
    case REFACCEL_REG_MIG_STATUS:
    case REFACCEL_REG_MIG_ERR:
    case REFACCEL_REG_MIG_FORMAT:
    case REFACCEL_REG_MIG_COMPAT_ID:
    case REFACCEL_REG_MIG_STATE_MAX:
    case REFACCEL_REG_MIG_PARKED:
    case REFACCEL_REG_SRAM_DIRTY_PGSIZE:
    case REFACCEL_REG_SRAM_DIRTY_DATA:
        refaccel_guest_error(s, "write 0x%x to read-only register 0x%"
                             HWADDR_PRIx, val, addr);
        return;
    }

    if (refaccel_reserved_block(addr)) {
        return;
    }
    refaccel_guest_error(s, "write 0x%x to unknown register 0x%" HWADDR_PRIx,
                         val, addr);
}

static uint64_t refaccel_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    RefaccelState *s = opaque;

    if (refaccel_dead(s)) {
        return UINT64_MAX;      /* a stale mapping: nobody answers */
    }
    if (size != 4 || (addr & 3)) {
        refaccel_guest_error(s, "bad BAR0 read: offset 0x%" HWADDR_PRIx
                             " size %u", addr, size);
        return 0;
    }
    return refaccel_reg_read(s, addr);
}

static void refaccel_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    RefaccelState *s = opaque;

    if (refaccel_dead(s)) {
        return;
    }
    if (size != 4 || (addr & 3)) {
        refaccel_guest_error(s, "bad BAR0 write: offset 0x%" HWADDR_PRIx
                             " size %u", addr, size);
        return;
    }
    refaccel_reg_write(s, addr, val);
}

static const MemoryRegionOps refaccel_mmio_ops = {
    .read = refaccel_mmio_read,
    .write = refaccel_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/* ---- PCI config space ---- */

static void refaccel_update_pri_status(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint16_t ctrl, status;

    if (!s->pri_cap) {
        return;
    }
    ctrl = pci_get_word(pdev->config + s->pri_cap + PCI_PRI_CTRL);
    status = pci_get_word(pdev->config + s->pri_cap + PCI_PRI_STATUS);
    /* page requests go through the BAR0 block (see the spec) */
    if (ctrl & PCI_PRI_CTRL_ENABLE) {
        status &= ~PCI_PRI_STATUS_STOPPED;
    } else {
        status |= PCI_PRI_STATUS_STOPPED;
    }
    pci_set_word(pdev->config + s->pri_cap + PCI_PRI_STATUS, status);
}

static void refaccel_config_write(PCIDevice *pdev, uint32_t addr,
                                  uint32_t val, int len)
{
    RefaccelState *s = REFACCEL(pdev);
    bool was_down = refaccel_powered_down(s);

    pci_default_write_config(pdev, addr, val, len);
    if (s->pri_cap) {
        /* PRI Ctrl.Reset reads as 0 (our requests live in BAR0) */
        pci_word_test_and_clear_mask(pdev->config + s->pri_cap + PCI_PRI_CTRL,
                                     PCI_PRI_CTRL_RESET);
    }
    refaccel_update_pri_status(s);
    if (was_down && !refaccel_powered_down(s)) {
        refaccel_run_again(s);
    }
    /* last: an FLR resets all of the above */
    pcie_cap_flr_write_config(pdev, addr, val, len);
}

static void refaccel_init_pasid(PCIDevice *pdev, uint16_t off)
{
    pcie_add_capability(pdev, PCI_EXT_CAP_ID_PASID, 1, off,
                        PCI_EXT_CAP_PASID_SIZEOF);
    /* no execute/privileged mode; 20-bit PASIDs */
    pci_set_word(pdev->config + off + PCI_PASID_CAP,
                 REFACCEL_PASID_MAX_WIDTH << 8);
    pci_set_word(pdev->config + off + PCI_PASID_CTRL, 0);
    pci_set_word(pdev->wmask + off + PCI_PASID_CTRL, PCI_PASID_CTRL_ENABLE);
}

static void refaccel_init_pri(PCIDevice *pdev, uint16_t off)
{
    pcie_add_capability(pdev, PCI_EXT_CAP_ID_PRI, 1, off,
                        PCI_EXT_CAP_PRI_SIZEOF);
    pci_set_word(pdev->config + off + PCI_PRI_CTRL, 0);
    pci_set_word(pdev->wmask + off + PCI_PRI_CTRL,
                 PCI_PRI_CTRL_ENABLE | PCI_PRI_CTRL_RESET);
    pci_set_word(pdev->config + off + PCI_PRI_STATUS, PCI_PRI_STATUS_STOPPED);
    /* response failure and unexpected PRG index are RW1C */
    pci_set_word(pdev->w1cmask + off + PCI_PRI_STATUS,
                 PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI);
    pci_set_long(pdev->config + off + PCI_PRI_MAX_REQ,
                 REFACCEL_PRI_LOG_DEPTH);
    pci_set_long(pdev->config + off + PCI_PRI_ALLOC_REQ, 0);
    pci_set_long(pdev->wmask + off + PCI_PRI_ALLOC_REQ, 0xffffffff);
}

/* ---- realize / exit ---- */

static void refaccel_realize(PCIDevice *pdev, Error **errp)
{
    RefaccelState *s = REFACCEL(pdev);
    uint16_t ext_off = PCI_CONFIG_SPACE_SIZE;
    unsigned vec;
    int pm;

    if (s->sram_size < REFACCEL_SRAM_MIN_SIZE ||
        s->sram_size > REFACCEL_SRAM_MAX_SIZE ||
        !is_power_of_2(s->sram_size)) {
        error_setg(errp, "sram-size must be a power of 2 between 4 KiB and "
                   "64 MiB (got %" PRIu64 ")", s->sram_size);
        return;
    }
    if (s->dt_ranges > REFACCEL_DT_MAX_RANGES) {
        error_setg(errp, "dt-ranges must be at most %u (got %u)",
                   REFACCEL_DT_MAX_RANGES, s->dt_ranges);
        return;
    }
    if (s->dt_ranges && s->dt_max_span < (1ull << REFACCEL_DT_PGSHIFT_MAX)) {
        error_setg(errp, "dt-max-span must be at least 2 MiB (got %" PRIu64
                   ")", s->dt_max_span);
        return;
    }
    if (s->max_xfer == 0 || s->max_xfer > REFACCEL_SRAM_MAX_SIZE) {
        error_setg(errp, "max-xfer must be between 1 and %u (got %u)",
                   REFACCEL_SRAM_MAX_SIZE, s->max_xfer);
        return;
    }
    if (!pci_is_express(pdev)) {
        error_setg(errp, "refaccel needs PCI Express config space");
        return;
    }

    pci_config_set_interrupt_pin(pdev->config, 0);  /* MSI-X only */

    if (pcie_endpoint_cap_init(pdev, REFACCEL_PCIE_CAP_OFFSET) < 0) {
        error_setg(errp, "failed to add the PCIe capability");
        return;
    }
    pcie_cap_flr_init(pdev);
    pcie_cap_deverr_init(pdev);
    /*
     * Immediate Readiness, so the OS need not wait 100 ms after FLR (every
     * VFIO open, close and reset does one).  Linux reads the bit only for
     * functions with a PM capability; NoSoftRst keeps "pm" out of the reset
     * methods, so FLR stays the only one.
     */
    pci_word_test_and_set_mask(pdev->config + PCI_STATUS, PCI_STATUS_IMM_READY);
    pm = pci_pm_init(pdev, REFACCEL_PM_CAP_OFFSET, errp);
    if (pm < 0) {
        return;
    }
    pci_set_word(pdev->config + pm + PCI_PM_PMC, 0x3);
    pci_set_word(pdev->config + pm + PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET);
    pci_set_word(pdev->wmask + pm + PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK);
    /* extended capabilities are packed from 0x100 in this order */
    if (s->ats) {
        pcie_ats_init(pdev, ext_off, true);
        ext_off += PCI_EXT_CAP_ATS_SIZEOF;
    }
    if (s->pasid) {
        refaccel_init_pasid(pdev, ext_off);
        s->pasid_cap = ext_off;
        ext_off += PCI_EXT_CAP_PASID_SIZEOF;
    }
    if (s->pri) {
        refaccel_init_pri(pdev, ext_off);
        s->pri_cap = ext_off;
        ext_off += PCI_EXT_CAP_PRI_SIZEOF;
    }

    memory_region_init_io(&s->mmio, OBJECT(s), &refaccel_mmio_ops, s,
                          "refaccel-regs", REFACCEL_REGS_SIZE);
    pci_register_bar(pdev, REFACCEL_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->mmio);

    if (!memory_region_init_ram(&s->sram, OBJECT(s), "refaccel-sram",
                                s->sram_size, errp)) {
        pcie_cap_exit(pdev);
        return;
    }
    s->sram_ptr = memory_region_get_ram_ptr(&s->sram);
    pci_register_bar(pdev, REFACCEL_BAR_SRAM,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &s->sram);

    if (msix_init_exclusive_bar(pdev, REFACCEL_NUM_VECTORS,
                                REFACCEL_BAR_MSIX, errp)) {
        pcie_cap_exit(pdev);
        return;
    }
    for (vec = 0; vec < REFACCEL_NUM_VECTORS; vec++) {
        msix_vector_use(pdev, vec);
    }

    /* for SRAM_DIRTY: see refaccel_dirty_log_take() */
    memory_region_set_log(&s->sram, true, DIRTY_MEMORY_VGA);
    s->sram_logging = true;
    s->bounce = g_malloc(s->max_xfer);
    s->dirty_pages = s->sram_size / REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    s->dirty_bm = bitmap_new(s->dirty_pages);
    s->touched_bm = bitmap_new(s->dirty_pages);
    refaccel_dt_init(&s->dt, s->dt_ranges, s->dt_max_span);
    s->compat_id = refaccel_compute_compat_id(s);
    timer_init_ns(&s->op_timer, QEMU_CLOCK_VIRTUAL, refaccel_op_timer, s);
    timer_init_ns(&s->quiesce_timer, QEMU_CLOCK_VIRTUAL,
                  refaccel_quiesce_timer, s);
    s->work_bh = qemu_bh_new_guarded(refaccel_work, s,
                                     &DEVICE(pdev)->mem_reentrancy_guard);
    refaccel_reset_state(s);
}

static void refaccel_exit(PCIDevice *pdev)
{
    RefaccelState *s = REFACCEL(pdev);

    /*
     * Unplug may come from inside the engine (a DMA or MSI write to the
     * slot control of the port above us): mark the device dead and bump
     * the generation, so that the step in progress unwinds as if reset and
     * nothing re-arms a timer, schedules the (deleted) bottom half or
     * sends a message through the address space being destroyed.
     */
    s->dead = true;
    s->generation++;
    timer_del(&s->op_timer);
    timer_del(&s->quiesce_timer);
    if (s->sram_logging) {
        memory_region_set_log(&s->sram, false, DIRTY_MEMORY_VGA);
        s->sram_logging = false;
    }
    if (s->work_bh) {
        qemu_bh_delete(s->work_bh);
        s->work_bh = NULL;
    }
    msix_unuse_all_vectors(pdev);
    msix_uninit_exclusive_bar(pdev);
    pcie_cap_exit(pdev);
}

static void refaccel_instance_finalize(Object *obj)
{
    RefaccelState *s = REFACCEL(obj);

    /*
     * Freed here, not in exit: an in-progress op may still hold a ref.
     * The timers cannot be armed (exit stopped them, nothing re-arms a
     * dead device); deleting them again is free and keeps it so.
     */
    timer_del(&s->op_timer);
    timer_del(&s->quiesce_timer);
    g_free(s->bounce);
    s->bounce = NULL;
    g_free(s->dirty_bm);
    s->dirty_bm = NULL;
    g_free(s->touched_bm);
    s->touched_bm = NULL;
    refaccel_dt_finalize(&s->dt);
}

static const Property refaccel_properties[] = {
    DEFINE_PROP_SIZE("sram-size", RefaccelState, sram_size,
                     REFACCEL_SRAM_DEFAULT_SIZE),
    DEFINE_PROP_UINT32("op-latency-ns", RefaccelState, prop_op_latency_ns,
                       10000),
    DEFINE_PROP_UINT32("max-xfer", RefaccelState, max_xfer,
                       REFACCEL_MAX_XFER_DEFAULT),
    DEFINE_PROP_BOOL("testctl", RefaccelState, testctl, false),
    DEFINE_PROP_BOOL("ats", RefaccelState, ats, false),
    DEFINE_PROP_BOOL("pasid", RefaccelState, pasid, false),
    DEFINE_PROP_BOOL("pri", RefaccelState, pri, false),
    /* DMA dirty tracking: ranges held (0: none) and bytes they may span */
    DEFINE_PROP_UINT32("dt-ranges", RefaccelState, dt_ranges, 4),
    DEFINE_PROP_UINT64("dt-max-span", RefaccelState, dt_max_span, 1ull << 48),
    /*
     * Fault injection that outlives FLR (every VFIO open, close and reset
     * does one), without testctl: the reset values of TEST_QUIESCE_DELAY
     * and TEST_FLAGS.NEVER_QUIESCE, and a device that cannot park.
     */
    DEFINE_PROP_UINT32("quiesce-delay-us", RefaccelState,
                       prop_quiesce_delay_us, 0),
    DEFINE_PROP_BOOL("never-quiesce", RefaccelState, prop_never_quiesce,
                     false),
    DEFINE_PROP_BOOL("quiesce-unbounded", RefaccelState, quiesce_unbounded,
                     false),
};

/*
 * The device's state migrates through VFIO inside the guest (the migration
 * block), never through the QEMU that hosts the model.
 */
static const VMStateDescription refaccel_vmstate = {
    .name = TYPE_REFACCEL,
    .unmigratable = 1,
};

static void refaccel_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = refaccel_realize;
    k->exit = refaccel_exit;
    k->config_write = refaccel_config_write;
    k->vendor_id = REFACCEL_PCI_VENDOR_ID;
    k->device_id = REFACCEL_PCI_DEVICE_ID;
    k->revision = REFACCEL_PCI_REVISION;
    k->class_id = REFACCEL_PCI_CLASS;

    dc->desc = "refaccel reference PCI accelerator";
    dc->vmsd = &refaccel_vmstate;
    device_class_set_props(dc, refaccel_properties);
    device_class_set_legacy_reset(dc, refaccel_qdev_reset);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo refaccel_info = {
    .name = TYPE_REFACCEL,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(RefaccelState),
    .instance_finalize = refaccel_instance_finalize,
    .class_init = refaccel_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void refaccel_register_types(void)
{
    type_register_static(&refaccel_info);
}

type_init(refaccel_register_types)
