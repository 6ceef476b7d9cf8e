/*
 * refaccel: the page request block (a stand-in for PCIe PRI messages)
 *
 * Copyright (c) 2026 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "refaccel_pri.h"

#define PRI_INFO_VALID  (REFACCEL_PRI_INFO_PRGI_MASK | \
                         REFACCEL_PRI_EPOCH_MASK | \
                         REFACCEL_PRI_INFO_WRITE | REFACCEL_PRI_INFO_READ)
#define PRI_RESP_VALID  (REFACCEL_PRI_INFO_PRGI_MASK | \
                         REFACCEL_PRI_EPOCH_MASK | \
                         REFACCEL_PRI_RESP_CODE_MASK)

static uint32_t pri_epoch_bits(const RefaccelPri *p)
{
    return p->epoch << REFACCEL_PRI_EPOCH_SHIFT;
}

bool refaccel_pri_request(RefaccelPri *p, uint64_t addr, bool write)
{
    RefaccelPriReq *q;

    if (p->count == REFACCEL_PRI_LOG_DEPTH) {
        return false;
    }
    q = &p->log[p->count++];
    q->addr = addr & ~(uint64_t)(REFACCEL_PRI_PAGE_SIZE - 1);
    q->info = p->next_prgi | pri_epoch_bits(p) |
              (write ? REFACCEL_PRI_INFO_WRITE : REFACCEL_PRI_INFO_READ);
    p->pending = true;
    p->pending_prgi = p->next_prgi;
    p->next_prgi = (p->next_prgi + 1) % REFACCEL_PRI_PRGI_COUNT;
    return true;
}

RefaccelPriAnswer refaccel_pri_answer(RefaccelPri *p, uint32_t val)
{
    uint32_t prgi = val & REFACCEL_PRI_INFO_PRGI_MASK;
    uint32_t code = (val & REFACCEL_PRI_RESP_CODE_MASK) >>
                    REFACCEL_PRI_RESP_CODE_SHIFT;

    if (!refaccel_pri_enabled(p) || !p->pending || prgi != p->pending_prgi ||
        (val & REFACCEL_PRI_EPOCH_MASK) != pri_epoch_bits(p) ||
        (val & ~PRI_RESP_VALID) ||
        (code != REFACCEL_PRI_RESP_SUCCESS &&
         code != REFACCEL_PRI_RESP_INVALID &&
         code != REFACCEL_PRI_RESP_FAILURE)) {
        p->stale++;
        return REFACCEL_PRI_ANSWER_STALE;
    }
    p->pending = false;
    return code == REFACCEL_PRI_RESP_SUCCESS ? REFACCEL_PRI_ANSWER_RETRY
                                             : REFACCEL_PRI_ANSWER_FAULT;
}

/*
 * The aborted request leaves the log: nobody should answer a request the
 * device no longer makes (and an answer that comes anyway is stale).
 */
void refaccel_pri_abort(RefaccelPri *p)
{
    uint32_t i, n = 0;

    if (!p->pending) {
        return;
    }
    for (i = 0; i < p->count; i++) {
        if ((p->log[i].info & ~(REFACCEL_PRI_INFO_WRITE |
                                REFACCEL_PRI_INFO_READ)) !=
            (p->pending_prgi | pri_epoch_bits(p))) {
            p->log[n++] = p->log[i];
        }
    }
    memset(&p->log[n], 0, (p->count - n) * sizeof(p->log[0]));
    p->count = n;
    p->pending = false;
    p->aborted++;
    p->epoch = (p->epoch + 1) % REFACCEL_PRI_EPOCHS;
}

void refaccel_pri_reset(RefaccelPri *p)
{
    uint32_t epoch = (p->epoch + 1) % REFACCEL_PRI_EPOCHS;

    memset(p, 0, sizeof(*p));
    p->epoch = epoch;
}

bool refaccel_pri_write_ctrl(RefaccelPri *p, uint32_t val)
{
    bool dropped = false;

    p->ctrl = val & REFACCEL_PRI_CTRL_ENABLE;
    if (!refaccel_pri_enabled(p)) {
        dropped = p->pending;
        p->pending = false;
        p->count = 0;
        memset(p->log, 0, sizeof(p->log));
    }
    return dropped;
}

void refaccel_pri_pop(RefaccelPri *p)
{
    if (!p->count) {
        return;
    }
    memmove(&p->log[0], &p->log[1], (p->count - 1) * sizeof(p->log[0]));
    memset(&p->log[--p->count], 0, sizeof(p->log[0]));
}

uint32_t refaccel_pri_read(const RefaccelPri *p, hwaddr addr)
{
    const RefaccelPriReq *head = p->count ? &p->log[0] : NULL;

    switch (addr) {
    case REFACCEL_REG_PRI_CTRL:
        return p->ctrl;
    case REFACCEL_REG_PRI_LOG_COUNT:
        return p->count;
    case REFACCEL_REG_PRI_LOG_ADDR_LO:
        return head ? (uint32_t)head->addr : 0;
    case REFACCEL_REG_PRI_LOG_ADDR_HI:
        return head ? head->addr >> 32 : 0;
    case REFACCEL_REG_PRI_LOG_INFO:
        return head ? head->info : 0;
    case REFACCEL_REG_PRI_PENDING:
        return p->pending ? REFACCEL_PRI_PENDING_VALID | p->pending_prgi |
                            pri_epoch_bits(p) : 0;
    case REFACCEL_REG_PRI_STALE:
        return p->stale;
    case REFACCEL_REG_PRI_ABORTED:
        return p->aborted;
    default:
        return 0;       /* write-only and unused offsets */
    }
}

/* A pending request is never saved: see the spec (it needs FROZEN). */
void refaccel_pri_save(const RefaccelPri *p, uint8_t *buf)
{
    uint32_t i;

    stl_le_p(buf + 0, p->ctrl);
    stl_le_p(buf + 4, p->next_prgi);
    stl_le_p(buf + 8, p->epoch);
    stl_le_p(buf + 12, p->stale);
    stl_le_p(buf + 16, p->aborted);
    stl_le_p(buf + 20, p->count);
    for (i = 0; i < REFACCEL_PRI_LOG_DEPTH; i++) {
        uint8_t *q = buf + REFACCEL_PRI_STATE_HDR + i * 16;

        stq_le_p(q, i < p->count ? p->log[i].addr : 0);
        stl_le_p(q + 8, i < p->count ? p->log[i].info : 0);
        stl_le_p(q + 12, 0);
    }
}

const char *refaccel_pri_load(RefaccelPri *p, const uint8_t *buf)
{
    uint32_t i;

    memset(p, 0, sizeof(*p));
    p->ctrl = ldl_le_p(buf + 0);
    p->next_prgi = ldl_le_p(buf + 4);
    p->epoch = ldl_le_p(buf + 8);
    p->stale = ldl_le_p(buf + 12);
    p->aborted = ldl_le_p(buf + 16);
    p->count = ldl_le_p(buf + 20);
    if (p->ctrl & ~REFACCEL_PRI_CTRL_ENABLE) {
        return "PRI_CTRL";
    }
    if (p->next_prgi >= REFACCEL_PRI_PRGI_COUNT) {
        return "next PRG index";
    }
    if (p->epoch >= REFACCEL_PRI_EPOCHS) {
        return "page request epoch";
    }
    if (p->count > REFACCEL_PRI_LOG_DEPTH ||
        (p->count && !refaccel_pri_enabled(p))) {
        return "page request log count";
    }
    for (i = 0; i < REFACCEL_PRI_LOG_DEPTH; i++) {
        const uint8_t *q = buf + REFACCEL_PRI_STATE_HDR + i * 16;
        uint64_t addr = ldq_le_p(q);
        uint32_t info = ldl_le_p(q + 8);
        uint32_t rw = info & (REFACCEL_PRI_INFO_WRITE | REFACCEL_PRI_INFO_READ);

        if (ldl_le_p(q + 12)) {
            return "page request reserved word";
        }
        if (i >= p->count) {
            if (addr || info) {
                return "page request log entry past the count";
            }
            continue;
        }
        if ((info & ~PRI_INFO_VALID) || !rw ||
            rw == (REFACCEL_PRI_INFO_WRITE | REFACCEL_PRI_INFO_READ) ||
            (addr & (REFACCEL_PRI_PAGE_SIZE - 1))) {
            return "page request log entry";
        }
        p->log[i].addr = addr;
        p->log[i].info = info;
    }
    return NULL;
}
