/*
 * refaccel: the work engine: rings, descriptors, DMA, page requests and
 * interrupts
 *
 * The engine runs in a bottom half (refaccel_work()): it fetches
 * descriptors into the FIFO, runs the head op for its latency, executes it
 * (DMA through the bus master address space) and posts its completion.
 * Quiesce and freeze (refaccel_quiesce.c) decide when it may move.
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

/* ---- interrupts ---- */

void refaccel_notify(RefaccelState *s, uint32_t bits)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t gen = s->generation;
    unsigned vec;

    if (!bits || refaccel_dead(s)) {
        return;
    }
    if (refaccel_silent(s)) {
        /* no message while quiesced or in D3hot: owed until it runs */
        trace_refaccel_notify(bits, true);
        s->r.int_owed |= bits;
        return;
    }
    trace_refaccel_notify(bits, false);
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


static void refaccel_fifo_clear(RefaccelState *s)
{
    memset(s->r.fifo, 0, sizeof(s->r.fifo));
    s->r.fifo_head = 0;
    s->r.fifo_count = 0;
    timer_del(&s->op_timer);
}

void refaccel_halt(RefaccelState *s, uint32_t reason)
{
    trace_refaccel_halt(reason);
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

bool refaccel_ring_config_ok(const RefaccelRegs *r)
{
    return refaccel_ring_size_ok(r->sq_size) &&
           refaccel_ring_size_ok(r->cq_size) &&
           QEMU_IS_ALIGNED(r->sq_base, REFACCEL_DESC_SIZE) &&
           QEMU_IS_ALIGNED(r->cq_base, REFACCEL_CPL_SIZE) &&
           r->sq_head < r->sq_size && r->sq_tail < r->sq_size &&
           r->cq_head < r->cq_size && r->cq_tail < r->cq_size;
}

bool refaccel_cq_full(RefaccelState *s)
{
    return ((s->r.cq_tail + 1) & (s->r.cq_size - 1)) == s->r.cq_head;
}

void refaccel_decode_desc(struct refaccel_desc *d, const uint8_t *raw)
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

RefaccelEntry *refaccel_fifo_head(RefaccelState *s)
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
        trace_refaccel_fetch(s->r.sq_head, e->desc.opcode, e->desc.tag);
        s->r.fifo_count++;
        s->r.sq_head = (s->r.sq_head + 1) & (s->r.sq_size - 1);
        s->r.cnt_fetched++;
    }
    return true;
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
 * for in *page and *write (page requests on, nothing done yet).  *aborted
 * is set when the device was reset while a DMA was in progress (e.g. the
 * DMA hit the device's own config space): the caller must then drop the
 * work without touching the state.
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
    trace_refaccel_complete(e->desc.tag, status, s->r.cq_tail);
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
    trace_refaccel_page_request(page, write, e->desc.tag);
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
    RefaccelPriAnswer answer;

    if (s->testctl && (s->r.test_flags & REFACCEL_TEST_NO_PRI_RESP)) {
        return;         /* lost on the way: as if never sent */
    }
    answer = refaccel_pri_answer(&s->r.pri, val);

    trace_refaccel_page_answer(val, answer);
    switch (answer) {
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

void refaccel_write_pri(RefaccelState *s, hwaddr addr, uint32_t val)
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
void refaccel_work(void *opaque)
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

void refaccel_kick(RefaccelState *s)
{
    if (refaccel_dead(s)) {
        return;         /* exit deleted the bottom half */
    }
    qemu_bh_schedule(s->work_bh);
}

void refaccel_op_timer(void *opaque)
{
    refaccel_kick(opaque);
}
