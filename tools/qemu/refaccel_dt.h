/*
 * refaccel: device-side DMA dirty tracking of host IOVAs
 *
 * The tracker knows nothing about the rest of the device: the engine calls
 * refaccel_dt_mark() before each write to host memory, and the register
 * block at REFACCEL_REG_DT_CTRL is forwarded here.  See
 * Documentation/device-spec.rst, "DMA dirty tracking".
 *
 * Copyright (c) 2026 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_REFACCEL_DT_H
#define HW_MISC_REFACCEL_DT_H

#include "exec/hwaddr.h"
#include "hw/refaccel_regs.h"

typedef struct RefaccelDtRange {
    uint64_t base;
    uint64_t len;
} RefaccelDtRange;

typedef struct RefaccelDt {
    /* limits, from the device's properties */
    uint32_t max_ranges;        /* 0: no tracker */
    uint64_t max_span;

    /* registers */
    uint32_t ctrl;
    uint32_t pgshift;
    uint32_t nr_ranges;
    uint32_t sel;
    uint32_t err;
    uint32_t base_lo;           /* written halves, latched by _HI */
    uint32_t len_lo;
    uint32_t query_lo;
    uint32_t limit_lo;
    RefaccelDtRange range[REFACCEL_DT_MAX_RANGES];
    uint64_t cursor;            /* query window start, page aligned */
    uint64_t limit;             /* query window end, inclusive */
    uint64_t next;              /* computed by a DT_NEXT_LO read */

    /* marks: chunks of 512 pages, sorted by index, some possibly empty */
    GArray *chunks;
    uint32_t empty;             /* chunks with no bit set */
    bool overflow;              /* out of chunks: marks were lost */
} RefaccelDt;

void refaccel_dt_init(RefaccelDt *dt, uint32_t max_ranges, uint64_t max_span);
void refaccel_dt_finalize(RefaccelDt *dt);
/* power on, FLR, bus reset: tracking off, configuration cleared */
void refaccel_dt_reset(RefaccelDt *dt);
/* the device is about to write [iova, iova + len) of host memory */
void refaccel_dt_mark(RefaccelDt *dt, uint64_t iova, uint64_t len);
/* register access; false if @addr is not a tracker register */
bool refaccel_dt_read(RefaccelDt *dt, hwaddr addr, uint32_t *val);
bool refaccel_dt_write(RefaccelDt *dt, hwaddr addr, uint32_t val);

#endif /* HW_MISC_REFACCEL_DT_H */
