/*
 * refaccel: the page request block (a stand-in for PCIe PRI messages)
 *
 * The log, the pending request and the counters.  The engine decides when
 * a descriptor asks for a page and what an answer does to it; this file
 * only keeps the book.  See Documentation/device-spec.rst, "Page requests".
 *
 * Copyright (c) 2026 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_REFACCEL_PRI_H
#define HW_MISC_REFACCEL_PRI_H

#include "exec/hwaddr.h"
#include "hw/refaccel_regs.h"

#define REFACCEL_PRI_PRGI_COUNT     (REFACCEL_PRI_INFO_PRGI_MASK + 1)
#define REFACCEL_PRI_EPOCHS         256
/* saved state: six words, then the log, 16 bytes per entry */
#define REFACCEL_PRI_STATE_HDR      24
#define REFACCEL_PRI_STATE_SIZE     (REFACCEL_PRI_STATE_HDR + \
                                     REFACCEL_PRI_LOG_DEPTH * 16)

typedef struct RefaccelPriReq {
    uint64_t addr;              /* page address (IOVA) */
    uint32_t info;              /* PRG index | READ or WRITE | epoch */
} RefaccelPriReq;

typedef struct RefaccelPri {
    uint32_t ctrl;              /* PRI_CTRL */
    uint32_t next_prgi;
    /*
     * PRG indexes are reused (9 bits); the epoch, bumped by every abort
     * and reset, tells an answer to a withdrawn request from one to a new
     * request that happens to reuse its index.
     */
    uint32_t epoch;
    bool pending;               /* the FIFO head waits for pending_prgi */
    uint32_t pending_prgi;
    uint32_t stale;             /* PRI_STALE */
    uint32_t aborted;           /* PRI_ABORTED */
    uint32_t count;             /* PRI_LOG_COUNT; log[0] is the oldest */
    RefaccelPriReq log[REFACCEL_PRI_LOG_DEPTH];
} RefaccelPri;

typedef enum RefaccelPriAnswer {
    REFACCEL_PRI_ANSWER_STALE,  /* discarded: nothing waits for it */
    REFACCEL_PRI_ANSWER_RETRY,  /* SUCCESS: retry the descriptor */
    REFACCEL_PRI_ANSWER_FAULT,  /* INVALID, FAILURE: it completes faulted */
} RefaccelPriAnswer;

static inline bool refaccel_pri_enabled(const RefaccelPri *p)
{
    return p->ctrl & REFACCEL_PRI_CTRL_ENABLE;
}

static inline bool refaccel_pri_block(hwaddr addr)
{
    return addr >= REFACCEL_PRI_BLOCK_OFFSET &&
           addr < REFACCEL_PRI_BLOCK_OFFSET + 0x100;
}

/* Log a request for the page at @addr; false if the log is full. */
bool refaccel_pri_request(RefaccelPri *p, uint64_t addr, bool write);
/* A PRI_RESP write: what it means for the waiting descriptor. */
RefaccelPriAnswer refaccel_pri_answer(RefaccelPri *p, uint32_t val);
/* Withdraw the pending request (quiesce with ABORT_PRI). */
void refaccel_pri_abort(RefaccelPri *p);
/* Function reset: empty, but in a new epoch. */
void refaccel_pri_reset(RefaccelPri *p);
/* PRI_CTRL: true if a pending request was dropped by clearing ENABLE. */
bool refaccel_pri_write_ctrl(RefaccelPri *p, uint32_t val);
void refaccel_pri_pop(RefaccelPri *p);
uint32_t refaccel_pri_read(const RefaccelPri *p, hwaddr addr);

void refaccel_pri_save(const RefaccelPri *p, uint8_t *buf);
/* Decode a saved block into @p; NULL if it is valid, else what is wrong. */
const char *refaccel_pri_load(RefaccelPri *p, const uint8_t *buf);

#endif /* HW_MISC_REFACCEL_PRI_H */
