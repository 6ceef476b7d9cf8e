/*
 * refaccel: quiesce and freeze (MIG_CTRL), and doorbells held while frozen
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "refaccel_internal.h"
#include "trace.h"

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
uint32_t refaccel_parked(RefaccelState *s)
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
void refaccel_pause_head(RefaccelState *s)
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
        trace_refaccel_quiesced(refaccel_parked(s), true);
    }
}

static void refaccel_set_quiesced(RefaccelState *s)
{
    timer_del(&s->quiesce_timer);
    s->m.quiesced = true;
    s->m.qstate = REFACCEL_Q_IDLE;
    trace_refaccel_quiesced(refaccel_parked(s), false);
    refaccel_freeze_if_due(s);
}

static bool refaccel_never_quiesce(RefaccelState *s)
{
    /* the test registers hold their property values even without testctl */
    return s->r.test_flags & REFACCEL_TEST_NEVER_QUIESCE;
}

/* Drained: QUIESCED now, later (TEST_QUIESCE_DELAY) or never. */
void refaccel_quiesce_finish(RefaccelState *s)
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

void refaccel_quiesce_timer(void *opaque)
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
void refaccel_quiesce_progress(RefaccelState *s)
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
 * owed meanwhile, if they are still due and unmasked, and the ones QEMU's
 * MSI-X left pending for vectors unmasked meanwhile (see
 * refaccel_config_write()), and restart work.
 */
void refaccel_run_again(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint32_t owed = s->r.int_owed & s->r.int_status & ~s->r.int_mask;
    uint64_t gen = s->generation;
    unsigned vec;

    if (refaccel_silent(s)) {
        return;
    }
    s->r.int_owed = 0;
    refaccel_hold(s);
    for (vec = 0; vec < REFACCEL_NUM_VECTORS && msix_enabled(pdev); vec++) {
        if (refaccel_msix_pending(pdev, vec) && !msix_is_masked(pdev, vec)) {
            /* one message for what was pending and what is owed */
            msix_clr_pending(pdev, vec);
            owed &= ~(1u << vec);
            msix_notify(pdev, vec);
            if (refaccel_dead(s) || s->generation != gen) {
                refaccel_release(s);
                return;         /* the message unplugged or reset us */
            }
        }
    }
    refaccel_release(s);
    refaccel_notify(s, owed);
    refaccel_kick(s);
}

/* Leave the quiesced state (or cancel a quiesce in progress). */
static void refaccel_resume(RefaccelState *s)
{
    RefaccelEntry *e = refaccel_fifo_head(s);

    trace_refaccel_resume();
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
bool refaccel_defer_doorbell(RefaccelState *s, hwaddr addr,
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

uint32_t refaccel_sq_tail(RefaccelState *s)
{
    return s->m.db_sq_pending ? s->m.db_sq_tail : s->r.sq_tail;
}

uint32_t refaccel_cq_head(RefaccelState *s)
{
    return s->m.db_cq_pending ? s->m.db_cq_head : s->r.cq_head;
}

static void refaccel_apply_doorbells(RefaccelState *s)
{
    s->r.sq_tail = refaccel_sq_tail(s);
    s->r.cq_head = refaccel_cq_head(s);
    s->m.db_sq_pending = s->m.db_cq_pending = false;
}

void refaccel_write_mig_ctrl(RefaccelState *s, uint32_t val)
{
    const uint32_t stop = REFACCEL_MIG_CTRL_QUIESCE | REFACCEL_MIG_CTRL_FREEZE;
    const uint32_t valid = REFACCEL_MIG_CTRL_QUIESCE |
                           REFACCEL_MIG_CTRL_ABORT_PRI |
                           REFACCEL_MIG_CTRL_FREEZE |
                           REFACCEL_MIG_CTRL_PARK;
    uint32_t old = s->m.ctrl;
    uint32_t new = val & valid;

    trace_refaccel_mig_ctrl(old, new);
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
