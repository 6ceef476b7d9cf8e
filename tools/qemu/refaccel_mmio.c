/*
 * refaccel: BAR0: register read and write dispatch
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "refaccel_internal.h"
#include "trace.h"

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

/* The read-only mirror of the migration block's side-effect-free status. */
static bool refaccel_mig_mirror(hwaddr addr)
{
    return addr >= REFACCEL_MIG_MIRROR_OFFSET &&
           addr < REFACCEL_MIG_MIRROR_OFFSET + REFACCEL_MIG_MIRROR_SIZE;
}

static uint32_t refaccel_reg_read(RefaccelState *s, hwaddr addr)
{
    hwaddr reg;
    uint32_t val;

    if (refaccel_mig_mirror(addr)) {
        reg = addr - REFACCEL_MIG_MIRROR_OFFSET + REFACCEL_MIG_BLOCK_OFFSET;
        return refaccel_mig_reg_mirrored(reg) ? refaccel_reg_read(s, reg) : 0;
    }
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
    case REFACCEL_REG_MIG_FN_RESETS:
        return s->m.fn_resets;

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
        trace_refaccel_reset(false);
        /* the migration driver's sign that what it pre-copied is void */
        s->m.fn_resets++;
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
    case REFACCEL_REG_MIG_FN_RESETS:
    case REFACCEL_REG_SRAM_DIRTY_PGSIZE:
    case REFACCEL_REG_SRAM_DIRTY_DATA:
        refaccel_guest_error(s, "write 0x%x to read-only register 0x%"
                             HWADDR_PRIx, val, addr);
        return;
    }

    if (refaccel_mig_mirror(addr)) {
        refaccel_guest_error(s, "write 0x%x to the read-only migration "
                             "status mirror 0x%" HWADDR_PRIx ", ignored",
                             val, addr);
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
    uint64_t val;

    if (refaccel_dead(s)) {
        return UINT64_MAX;      /* a stale mapping: nobody answers */
    }
    if (size != 4 || (addr & 3)) {
        refaccel_guest_error(s, "bad BAR0 read: offset 0x%" HWADDR_PRIx
                             " size %u", addr, size);
        return 0;
    }
    val = refaccel_reg_read(s, addr);
    trace_refaccel_mmio_read(addr, size, val);
    return val;
}

static void refaccel_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    RefaccelState *s = opaque;

    trace_refaccel_mmio_write(addr, size, val);
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

const MemoryRegionOps refaccel_mmio_ops = {
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
