/*
 * refaccel: save and restore of the device state through the MIG window
 *
 * The format is described in Documentation/device-spec.rst; every field
 * of a restored state is checked before anything of it is applied.
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/crc32c.h"
#include "refaccel_internal.h"
#include "trace.h"

/* ---- save / restore ---- */

static uint32_t refaccel_crc32c(const uint8_t *p, size_t len)
{
    /* the standard CRC-32C (see the CRC32C op) */
    return crc32c(0xffffffff, p, len);
}

uint32_t refaccel_compute_compat_id(RefaccelState *s)
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

void refaccel_write_mig_cmd(RefaccelState *s, uint32_t val)
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
    trace_refaccel_mig_cmd(val, s->m.status, s->m.err, s->m.state_size);
}

uint32_t refaccel_mig_read_data(RefaccelState *s)
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

void refaccel_mig_write_data(RefaccelState *s, uint32_t val)
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
