/*
 * refaccel: what the files of the device model share
 *
 * The device state (RefaccelState), its parts, the predicates every part
 * asks, and the calls between the parts.  Nothing outside tools/qemu
 * includes this; the register map is hw/refaccel_regs.h.
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_REFACCEL_INTERNAL_H
#define HW_MISC_REFACCEL_INTERNAL_H

#include "qemu/log.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "qemu/main-loop.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msix.h"
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
    uint32_t fn_resets;         /* MIG_FN_RESETS: CTRL.RESETs since reset */

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

/*
 * Unplugged: exit ran.  Every entry point (kick, timers, bottom half, MMIO)
 * and every loop that does DMA or sends MSI checks this after each step.
 */
static inline bool refaccel_dead(RefaccelState *s)
{
    return s->dead;
}

static inline bool refaccel_enabled(RefaccelState *s)
{
    return s->r.ctrl & REFACCEL_CTRL_ENABLE;
}

static inline bool refaccel_halted(RefaccelState *s)
{
    return s->r.status & REFACCEL_STATUS_HALTED;
}

static inline bool refaccel_busy(RefaccelState *s)
{
    return s->r.fifo_count != 0;
}

/* MIG_STATUS.FROZEN: FREEZE was requested and QUIESCED reached. */
static inline bool refaccel_frozen(RefaccelState *s)
{
    return s->m.frozen;
}

/* May the device fetch descriptors and start new ops? */
static inline bool refaccel_may_start(RefaccelState *s)
{
    return !(s->m.ctrl &
             (REFACCEL_MIG_CTRL_QUIESCE | REFACCEL_MIG_CTRL_FREEZE));
}

/*
 * Stopped: no DMA, no interrupt message, no op progress.  True once a
 * quiesce has drained (whether or not QUIESCED is visible yet) and while
 * frozen.
 */
static inline bool refaccel_stopped(RefaccelState *s)
{
    return refaccel_frozen(s) || s->m.quiesced ||
           s->m.qstate == REFACCEL_Q_DRAINED;
}

/*
 * In D3hot the function makes no DMA and sends no message (QEMU unmaps its
 * BARs but leaves bus mastering on): the engine waits for D0, interrupts
 * are owed.  No_Soft_Reset: D3hot -> D0 keeps all state.
 */
static inline bool refaccel_powered_down(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return pci_get_word(pdev->config + pdev->pm_cap + PCI_PM_CTRL) &
           PCI_PM_CTRL_STATE_MASK;
}

static inline bool refaccel_msix_pending(PCIDevice *pdev, unsigned vec)
{
    return pdev->msix_pba[vec / 8] & (1u << (vec % 8));
}

/* No MSI-X message may leave the function now (quiesced, frozen, D3hot). */
static inline bool refaccel_silent(RefaccelState *s)
{
    return refaccel_stopped(s) || refaccel_powered_down(s);
}

/* refaccel.c */
/* a guest mistake, with LOG_GUEST_ERROR (-d guest_errors) */
void refaccel_guest_error(RefaccelState *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
void refaccel_hold(RefaccelState *s);
void refaccel_release(RefaccelState *s);
uint32_t refaccel_caps(RefaccelState *s);
uint32_t refaccel_status(RefaccelState *s);
void refaccel_function_reset(RefaccelState *s);

/* refaccel_engine.c */
void refaccel_notify(RefaccelState *s, uint32_t bits);
void refaccel_halt(RefaccelState *s, uint32_t reason);
bool refaccel_ring_config_ok(const RefaccelRegs *r);
bool refaccel_cq_full(RefaccelState *s);
void refaccel_decode_desc(struct refaccel_desc *d, const uint8_t *raw);
RefaccelEntry *refaccel_fifo_head(RefaccelState *s);
void refaccel_write_pri(RefaccelState *s, hwaddr addr, uint32_t val);
void refaccel_work(void *opaque);
void refaccel_kick(RefaccelState *s);
void refaccel_op_timer(void *opaque);

/* refaccel_quiesce.c */
uint32_t refaccel_parked(RefaccelState *s);
void refaccel_pause_head(RefaccelState *s);
void refaccel_quiesce_finish(RefaccelState *s);
void refaccel_quiesce_timer(void *opaque);
void refaccel_quiesce_progress(RefaccelState *s);
void refaccel_run_again(RefaccelState *s);
bool refaccel_defer_doorbell(RefaccelState *s, hwaddr addr, uint32_t val);
uint32_t refaccel_sq_tail(RefaccelState *s);
uint32_t refaccel_cq_head(RefaccelState *s);
void refaccel_write_mig_ctrl(RefaccelState *s, uint32_t val);

/* refaccel_state.c */
uint32_t refaccel_compute_compat_id(RefaccelState *s);
void refaccel_write_mig_cmd(RefaccelState *s, uint32_t val);
uint32_t refaccel_mig_read_data(RefaccelState *s);
void refaccel_mig_write_data(RefaccelState *s, uint32_t val);

/* refaccel_sram_dirty.c */
bool refaccel_sram_range_ok(RefaccelState *s, uint64_t off, uint32_t len);
void refaccel_sram_written(RefaccelState *s, uint64_t off, uint32_t len);
void refaccel_dirty_log_take(RefaccelState *s);
void refaccel_dirty_sync(RefaccelState *s);
void refaccel_dirty_set_enable(RefaccelState *s, bool on);
uint32_t refaccel_dirty_read_data(RefaccelState *s);
void refaccel_sram_clear(RefaccelState *s);

/* refaccel_mmio.c */
extern const MemoryRegionOps refaccel_mmio_ops;

#endif /* HW_MISC_REFACCEL_INTERNAL_H */
