/*
 * refaccel: the SRAM dirty bitmap (SRAM_DIRTY_*) and what a reset clears
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "refaccel_internal.h"
#include "trace.h"

bool refaccel_sram_range_ok(RefaccelState *s, uint64_t off,
                            uint32_t len)
{
    return off <= s->sram_size && len <= s->sram_size - off;
}

/* The device itself wrote SRAM: count it even if no CPU log catches it. */
void refaccel_sram_written(RefaccelState *s, uint64_t off, uint32_t len)
{
    uint64_t first = off / REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    uint64_t n = (off + len - 1) / REFACCEL_SRAM_DIRTY_PAGE_SIZE - first + 1;

    memory_region_set_dirty(&s->sram, off, len);
    bitmap_set(s->touched_bm, first, n);
    if (s->m.dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE) {
        bitmap_set(s->dirty_bm, first, n);
    }
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
void refaccel_dirty_log_take(RefaccelState *s)
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
void refaccel_dirty_sync(RefaccelState *s)
{
    if (s->m.dirty_ctrl & REFACCEL_SRAM_DIRTY_ENABLE) {
        refaccel_dirty_log_take(s);
    }
}

void refaccel_dirty_set_enable(RefaccelState *s, bool on)
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

uint32_t refaccel_dirty_read_data(RefaccelState *s)
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

/*
 * Zero the SRAM pages written since they were last zeroed, not all of it (a
 * memset of 64 MiB per reset would stall the main loop), and count as
 * written only the pages that were not zero: SRAM a reset really cleared
 * while tracking is dirty SRAM.  The pages cleared here come back through
 * the log as touched, and the next reset finds them zero.
 */
void refaccel_sram_clear(RefaccelState *s)
{
    const uint64_t pg = REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    unsigned long p;

    refaccel_dirty_log_take(s);
    for (p = find_first_bit(s->touched_bm, s->dirty_pages);
         p < s->dirty_pages;
         p = find_next_bit(s->touched_bm, s->dirty_pages, p + 1)) {
        if (!buffer_is_zero(s->sram_ptr + p * pg, pg)) {
            memset(s->sram_ptr + p * pg, 0, pg);
            refaccel_sram_written(s, p * pg, pg);
        }
        clear_bit(p, s->touched_bm);    /* zero, as far as we know */
    }
}
