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
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/dma.h"
#include "qom/object.h"

#include "hw/refaccel_regs.h"

#define TYPE_REFACCEL "refaccel"
OBJECT_DECLARE_SIMPLE_TYPE(RefaccelState, REFACCEL)

/* Descriptors fetched but not yet completed (the device's internal FIFO). */
#define REFACCEL_FIFO_DEPTH     4

#define REFACCEL_SRAM_MIN_SIZE  (4 * KiB)

/* PCI capability layout */
#define REFACCEL_PCIE_CAP_OFFSET    0x80
#define REFACCEL_PASID_MAX_WIDTH    20

/* The descriptor structure must fit in one ring slot. */
QEMU_BUILD_BUG_ON(sizeof(struct refaccel_desc) > REFACCEL_DESC_SIZE);
QEMU_BUILD_BUG_ON(sizeof(struct refaccel_cpl) != REFACCEL_CPL_SIZE);
QEMU_BUILD_BUG_ON(REFACCEL_NUM_VECTORS > 32);

/*
 * Life cycle of a FIFO entry.  Only the entry at the FIFO head moves past
 * QUEUED.  The enum values are part of the (phase 2) saved state format.
 */
typedef enum RefaccelEntryState {
    REFACCEL_ENT_QUEUED = 0,    /* fetched, waiting to reach the FIFO head */
    REFACCEL_ENT_RUNNING = 1,   /* op latency running until @deadline */
    REFACCEL_ENT_DONE = 2,      /* executed, completion waits for a CQ slot */
} RefaccelEntryState;

typedef struct RefaccelEntry {
    struct refaccel_desc desc;  /* decoded to host byte order */
    uint32_t state;             /* RefaccelEntryState */
    int64_t deadline;           /* QEMU_CLOCK_VIRTUAL ns, when RUNNING */
    uint32_t cpl_status;        /* enum refaccel_cpl_status, when DONE */
    uint32_t cpl_result;        /* when DONE */
} RefaccelEntry;

/*
 * Everything the guest can observe lives in RefaccelRegs so that reset is
 * one memset plus defaults, and so that phase 2 can serialise it.
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

    uint32_t cnt_fetched;
    uint32_t cnt_completed;
    uint32_t cnt_errors;
    uint32_t cnt_page_reqs;

    uint32_t test_flags;
    uint32_t test_quiesce_delay;

    /* internal FIFO: a circular buffer of fetched descriptors */
    RefaccelEntry fifo[REFACCEL_FIFO_DEPTH];
    uint32_t fifo_head;
    uint32_t fifo_count;
} RefaccelRegs;

struct RefaccelState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    MemoryRegion sram;
    uint16_t pri_cap;           /* PRI extended capability offset, or 0 */
    uint8_t *sram_ptr;

    QEMUTimer op_timer;
    QEMUBH *work_bh;
    uint8_t *bounce;            /* max_xfer bytes */

    /* bumped by every reset: in-progress work notices it and gives up */
    uint64_t generation;

    RefaccelRegs r;

    /* properties */
    uint64_t sram_size;
    uint32_t prop_op_latency_ns;
    uint32_t max_xfer;
    bool testctl;
    bool ats;
    bool pasid;
    bool pri;
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
    qemu_log("%s %02x:%02x.%x: %s\n", TYPE_REFACCEL,
             pci_dev_bus_num(PCI_DEVICE(s)), PCI_SLOT(PCI_DEVICE(s)->devfn),
             PCI_FUNC(PCI_DEVICE(s)->devfn), msg);
}

static uint32_t refaccel_caps(RefaccelState *s)
{
    uint32_t caps = REFACCEL_CAP_P2P;

    if (s->testctl) {
        caps |= REFACCEL_CAP_TESTCTL;
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
    unsigned vec;

    if (!bits || !msix_enabled(pdev)) {
        return;
    }
    for (vec = 0; vec < REFACCEL_NUM_VECTORS; vec++) {
        if (bits & (1u << vec)) {
            /* handles per-vector and function masking (sets PBA) */
            msix_notify(pdev, vec);
        }
    }
}

static void refaccel_raise(RefaccelState *s, uint32_t bits)
{
    uint32_t rising = bits & ~s->r.int_status & REFACCEL_INT_ALL;

    s->r.int_status |= bits & REFACCEL_INT_ALL;
    refaccel_notify(s, rising & ~s->r.int_mask);
}

/* ---- engine ---- */

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

static bool refaccel_ring_config_ok(RefaccelState *s)
{
    return refaccel_ring_size_ok(s->r.sq_size) &&
           refaccel_ring_size_ok(s->r.cq_size) &&
           QEMU_IS_ALIGNED(s->r.sq_base, REFACCEL_DESC_SIZE) &&
           QEMU_IS_ALIGNED(s->r.cq_base, REFACCEL_CPL_SIZE) &&
           s->r.sq_head < s->r.sq_size && s->r.sq_tail < s->r.sq_size &&
           s->r.cq_head < s->r.cq_size && s->r.cq_tail < s->r.cq_size;
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
 * Fetch descriptors while the engine is enabled and there is room.
 * Returns false when a reset happened meanwhile (caller must stop).
 */
static bool refaccel_fetch(RefaccelState *s)
{
    uint64_t gen = s->generation;
    uint8_t raw[REFACCEL_DESC_SIZE];

    while (refaccel_enabled(s) && !refaccel_halted(s) &&
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

/*
 * Validate and execute one descriptor.  Returns the completion status and
 * sets *result.  *aborted is set when the device was reset while a DMA was
 * in progress (e.g. the DMA hit the device's own config space): the caller
 * must then drop the work without touching the state.
 */
static uint32_t refaccel_execute(RefaccelState *s,
                                 const struct refaccel_desc *d,
                                 uint32_t *result, bool *aborted)
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
        for (i = 0; i < len; i++) {
            buf[i] = d->value >> (8 * (i % 4));
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
        memory_region_set_dirty(&s->sram, d->dst, len);
        return REFACCEL_CPL_OK;
    case REFACCEL_OP_COPY:
    case REFACCEL_OP_FILL:
    case REFACCEL_OP_STORE:
        /* STORE may target a peer device's BAR: that is plain DMA too. */
        res = pci_dma_write(pdev, d->dst, buf, len);
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
 * Write the completion of the FIFO head if the CQ has room.  Returns true
 * when the entry left the FIFO (completed, or dropped by a halt/reset).
 */
static bool refaccel_post_completion(RefaccelState *s, RefaccelEntry *e)
{
    uint64_t gen = s->generation;
    uint32_t mask = s->r.cq_size - 1;
    uint8_t raw[REFACCEL_CPL_SIZE] = { 0 };
    dma_addr_t addr;
    MemTxResult res;
    bool irq;

    if (((s->r.cq_tail + 1) & mask) == s->r.cq_head) {
        return false;       /* CQ full: wait for a CQ_HEAD doorbell */
    }

    stq_le_p(raw + offsetof(struct refaccel_cpl, tag), e->desc.tag);
    stl_le_p(raw + offsetof(struct refaccel_cpl, result), e->cpl_result);
    stw_le_p(raw + offsetof(struct refaccel_cpl, status), e->cpl_status);
    raw[offsetof(struct refaccel_cpl, opcode)] = e->desc.opcode;
    raw[offsetof(struct refaccel_cpl, flags)] =
        s->r.cq_phase ? REFACCEL_CPL_F_PHASE : 0;

    addr = s->r.cq_base + (uint64_t)s->r.cq_tail * REFACCEL_CPL_SIZE;
    res = pci_dma_write(PCI_DEVICE(s), addr, raw, sizeof(raw));
    if (s->generation != gen) {
        return true;
    }
    if (res != MEMTX_OK) {
        refaccel_guest_error(s, "CQ write at 0x%" PRIx64 " failed",
                             (uint64_t)addr);
        refaccel_halt(s, REFACCEL_HALT_CQ_WRITE);
        return true;
    }

    s->r.cq_tail = (s->r.cq_tail + 1) & mask;
    if (s->r.cq_tail == 0) {
        s->r.cq_phase ^= 1;
    }
    s->r.cnt_completed++;
    if (e->cpl_status != REFACCEL_CPL_OK) {
        s->r.cnt_errors++;
    }
    irq = !(e->desc.flags & REFACCEL_DESC_F_NO_IRQ);
    refaccel_fifo_pop(s);
    if (irq) {
        refaccel_raise(s, REFACCEL_INT_COMPLETION);
    }
    return true;
}

/*
 * The engine.  Runs from a bottom half guarded against re-entrant MMIO, so
 * a DMA that targets this device's own BARs fails instead of recursing.
 */
static void refaccel_work(void *opaque)
{
    RefaccelState *s = opaque;
    bool progress = true;

    /* a DMA could unplug us (config write through ECAM): stay alive */
    object_ref(OBJECT(s));

    while (progress && !refaccel_halted(s)) {
        uint64_t gen = s->generation;
        RefaccelEntry *e;

        progress = false;
        if (!refaccel_fetch(s)) {
            progress = true;            /* reset meanwhile: start over */
            continue;
        }

        e = refaccel_fifo_head(s);
        if (!e || refaccel_halted(s)) {
            break;
        }

        switch (e->state) {
        case REFACCEL_ENT_QUEUED:
            e->state = REFACCEL_ENT_RUNNING;
            e->deadline = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                          s->r.op_latency_ns;
            timer_mod(&s->op_timer, e->deadline);
            break;
        case REFACCEL_ENT_RUNNING:
            if (qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) < e->deadline) {
                timer_mod(&s->op_timer, e->deadline);
                break;
            } else {
                struct refaccel_desc d = e->desc;
                uint32_t result;
                bool aborted;
                uint32_t st = refaccel_execute(s, &d, &result, &aborted);

                if (aborted || s->generation != gen) {
                    progress = true;    /* reset meanwhile: start over */
                    break;
                }
                e->cpl_status = st;
                e->cpl_result = result;
                e->state = REFACCEL_ENT_DONE;
            }
            /* fall through */
        case REFACCEL_ENT_DONE:
            progress = refaccel_post_completion(s, e);
            break;
        default:
            g_assert_not_reached();
        }
    }

    object_unref(OBJECT(s));
}

static void refaccel_kick(RefaccelState *s)
{
    qemu_bh_schedule(s->work_bh);
}

static void refaccel_op_timer(void *opaque)
{
    refaccel_kick(opaque);
}

/* ---- reset ---- */

static void refaccel_reset_state(RefaccelState *s)
{
    s->generation++;
    timer_del(&s->op_timer);
    memset(&s->r, 0, sizeof(s->r));
    s->r.op_latency_ns = s->prop_op_latency_ns;
    s->r.cq_phase = 1;
    /* the next user must not see the previous user's data */
    if (s->sram_ptr) {
        memset(s->sram_ptr, 0, s->sram_size);
        memory_region_set_dirty(&s->sram, 0, s->sram_size);
    }
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

static uint32_t refaccel_reg_read(RefaccelState *s, hwaddr addr)
{
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
        return s->r.sq_tail;
    case REFACCEL_REG_CQ_BASE_LO:
        return s->r.cq_base;
    case REFACCEL_REG_CQ_BASE_HI:
        return s->r.cq_base >> 32;
    case REFACCEL_REG_CQ_SIZE:
        return s->r.cq_size;
    case REFACCEL_REG_CQ_HEAD:
        return s->r.cq_head;
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

    case REFACCEL_REG_TEST_FLAGS:
        return s->testctl ? s->r.test_flags : 0;
    case REFACCEL_REG_TEST_QUIESCE_DELAY:
        return s->testctl ? s->r.test_quiesce_delay : 0;
    case REFACCEL_REG_TEST_OP_LATENCY:
        return s->testctl ? s->r.op_latency_ns : 0;
    }

    /* migration, SRAM dirty, DMA dirty and PRI blocks: not yet (phase 2) */
    if (addr >= REFACCEL_REG_MIG_CTRL && addr < REFACCEL_REG_TEST_FLAGS) {
        return 0;
    }
    refaccel_guest_error(s, "read of unknown register 0x%" HWADDR_PRIx, addr);
    return 0;
}

static void refaccel_write_ctrl(RefaccelState *s, uint32_t val)
{
    bool was_enabled = refaccel_enabled(s);

    if (val & REFACCEL_CTRL_RESET) {
        refaccel_reset_state(s);
        return;
    }
    if (val & ~REFACCEL_CTRL_ENABLE) {
        refaccel_guest_error(s, "CTRL reserved bits 0x%x ignored",
                             val & ~(REFACCEL_CTRL_ENABLE |
                                     REFACCEL_CTRL_RESET));
    }
    s->r.ctrl = val & REFACCEL_CTRL_ENABLE;

    if (!was_enabled && refaccel_enabled(s) && !refaccel_halted(s)) {
        if (!refaccel_ring_config_ok(s)) {
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
        return;
    case REFACCEL_REG_INT_MASK:
        refaccel_write_int_mask(s, val);
        return;

    case REFACCEL_REG_TEST_FLAGS:
        if (s->testctl) {
            s->r.test_flags = val;
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
        refaccel_guest_error(s, "write 0x%x to read-only register 0x%"
                             HWADDR_PRIx, val, addr);
        return;
    }

    if (addr >= REFACCEL_REG_MIG_CTRL && addr < REFACCEL_REG_TEST_FLAGS) {
        return;     /* phase 2 blocks */
    }
    refaccel_guest_error(s, "write 0x%x to unknown register 0x%" HWADDR_PRIx,
                         val, addr);
}

static uint64_t refaccel_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    RefaccelState *s = opaque;

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
    /* no page request is ever outstanding in phase 1 */
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

    pci_default_write_config(pdev, addr, val, len);
    pcie_cap_flr_write_config(pdev, addr, val, len);
    refaccel_update_pri_status(s);
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

    if (s->sram_size < REFACCEL_SRAM_MIN_SIZE ||
        s->sram_size > REFACCEL_SRAM_MAX_SIZE ||
        !is_power_of_2(s->sram_size)) {
        error_setg(errp, "sram-size must be a power of 2 between 4 KiB and "
                   "64 MiB (got %" PRIu64 ")", s->sram_size);
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
    /* extended capabilities are packed from 0x100 in this order */
    if (s->ats) {
        pcie_ats_init(pdev, ext_off, true);
        ext_off += PCI_EXT_CAP_ATS_SIZEOF;
    }
    if (s->pasid) {
        refaccel_init_pasid(pdev, ext_off);
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

    s->bounce = g_malloc(s->max_xfer);
    timer_init_ns(&s->op_timer, QEMU_CLOCK_VIRTUAL, refaccel_op_timer, s);
    s->work_bh = qemu_bh_new_guarded(refaccel_work, s,
                                     &DEVICE(pdev)->mem_reentrancy_guard);
    refaccel_reset_state(s);
}

static void refaccel_exit(PCIDevice *pdev)
{
    RefaccelState *s = REFACCEL(pdev);

    timer_del(&s->op_timer);
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

    /* freed here, not in exit: an in-progress op may still hold a ref */
    g_free(s->bounce);
    s->bounce = NULL;
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
