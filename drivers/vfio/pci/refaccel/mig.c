// SPDX-License-Identifier: GPL-2.0-only
/*
 * Generic VFIO migration core: the v2 migration FSM, its state mutex and
 * the deferred reset, and the debugfs status.  Device specifics are
 * reached only through struct vmig_dev_ops; nothing in the core knows a
 * register.  The data_fd sessions are in mig_session.c, the stream's two
 * directions in mig_save.c and mig_resume.c, open and close in
 * mig_lifecycle.c.
 *
 * Locking: mig->state_mutex serialises arcs and is always taken before a
 * session's own mutex.  data_fd file operations take only the session
 * mutex, and never touch the device once the session is disabled, so a
 * data_fd may outlive the device's open (or the device itself).  The device
 * keeps a reference on the session file while the session is current, so
 * closing a data_fd early never frees what the FSM still points at.
 *
 * Reset: reset_done runs with the function's memory_lock held for writing
 * (VFIO_DEVICE_RESET, hot reset), while an arc holding state_mutex or a
 * session reader holding its session mutex may be waiting for memory_lock
 * to reach the device.  So it takes no sleeping lock: it only counts the
 * reset (sessions started before it fail from then on, see
 * vmig_file_dead()) and leaves the FSM work to the next holder of
 * state_mutex (vmig_state_lock() and vmig_state_unlock()).
 */

#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/ktime.h>
#include <linux/seq_file.h>

#include "compat.h"
#include "mig_core.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static const char *vmig_state_name(enum vfio_device_mig_state state)
{
	static const char *const names[] = {
		[VFIO_DEVICE_STATE_ERROR]	= "ERROR",
		[VFIO_DEVICE_STATE_STOP]	= "STOP",
		[VFIO_DEVICE_STATE_RUNNING]	= "RUNNING",
		[VFIO_DEVICE_STATE_STOP_COPY]	= "STOP_COPY",
		[VFIO_DEVICE_STATE_RESUMING]	= "RESUMING",
		[VFIO_DEVICE_STATE_RUNNING_P2P]	= "RUNNING_P2P",
		[VFIO_DEVICE_STATE_PRE_COPY]	= "PRE_COPY",
		[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
	};

	return state < ARRAY_SIZE(names) && names[state] ? names[state] : "?";
}

/* ---- state mutex with deferred reset ---- */

/*
 * With state_mutex held: the function was reset.  An operation refuses to
 * touch a function reset under it (vmig_reset_overtook()), but one that
 * reached the device just before the reset and an undo that could not run
 * leave nothing behind only if the migration block is put back to idle;
 * otherwise RUNNING could be reported for a quiesced or frozen function.
 * If even that fails, the FSM says ERROR, which only a reset leaves.
 */
static void vmig_idle_after_reset(struct vmig_device *mig)
{
	int ret;

	if (!mig->usable)
		return;
	ret = mig->ops->idle(mig);
	if (!ret)
		return;
	dev_err(vmig_dev(mig), "migration block not idle after a reset (%d): device in ERROR until VFIO_DEVICE_RESET\n",
		ret);
	mig->state = VFIO_DEVICE_STATE_ERROR;
}

/* With state_mutex held: act on resets recorded by vmig_reset_done(). */
static void vmig_reset_pending(struct vmig_device *mig)
{
	bool reset;

	for (;;) {
		spin_lock(&mig->reset_lock);
		reset = mig->deferred_reset;
		mig->deferred_reset = false;
		/* what the operations of this holder are valid for */
		mig->locked_gen = mig->reset_gen;
		spin_unlock(&mig->reset_lock);
		if (!reset)
			return;
		/*
		 * Say so when a reset cut a migration short: a VMM resets the
		 * device when an arc failed, and the guest then lost its state.
		 */
		if (mig->state != VFIO_DEVICE_STATE_RUNNING || mig->saving ||
		    mig->resuming)
			dev_info(vmig_dev(mig),
				 "reset in migration state %s: sessions ended, device RUNNING\n",
				 vmig_state_name(mig->state));
		mig->state = VFIO_DEVICE_STATE_RUNNING;
		vmig_end_sessions(mig);
		vmig_idle_after_reset(mig);
	}
}

/**
 * vmig_reset_overtook - whether the function was reset under an operation
 * @mig: the device
 *
 * For an operation called with the state mutex held, once it holds what a
 * reset of the function holds (vfio-pci's memory_lock, so no reset can
 * come while it works): true if a reset came after the core took the
 * mutex.  The operation must then leave the function alone and return
 * -EAGAIN; the core returns it to idle when it acts on the reset.
 *
 * Return: true if the function was reset since the core looked.
 */
bool vmig_reset_overtook(struct vmig_device *mig)
{
	return READ_ONCE(mig->reset_gen) != mig->locked_gen;
}

void vmig_state_lock(struct vmig_device *mig)
{
	mutex_lock(&mig->state_mutex);
	vmig_reset_pending(mig);
}

void vmig_state_unlock(struct vmig_device *mig)
{
	vmig_reset_pending(mig);
	mutex_unlock(&mig->state_mutex);
}

/* ---- the FSM ---- */

static int vmig_quiesce(struct vmig_device *mig)
{
	/*
	 * Never wait for the user to answer a page request: it may not come
	 * (QEMU stops the vCPUs before this arc), so outstanding requests are
	 * withdrawn and their work retried once the device runs again.
	 */
	struct vmig_quiesce_args args = {
		.timeout_ms = mig->quiesce_timeout_ms,
		.abort_pri = true,
		.park = mig->quiesce_park,
	};
	ktime_t start = ktime_get();
	int ret;

	ret = mig->ops->quiesce(mig, &args);
	mig->last_quiesce = (struct vmig_quiesce_stat){
		.done = true,
		.err = ret,
		.us = min_t(s64, ktime_us_delta(ktime_get(), start), U32_MAX),
		.in_flight = args.in_flight,
	};
	trace_refaccel_quiesce(dev_name(vmig_dev(mig)), args.timeout_ms,
			       args.park, mig->last_quiesce.us, args.in_flight,
			       args.parked, ret);
	mig->stats.quiesces++;
	if (ret)
		mig->stats.quiesce_failures++;
	else if (!mig->stats.quiesce_us_min ||
		 mig->last_quiesce.us < mig->stats.quiesce_us_min)
		mig->stats.quiesce_us_min = max(mig->last_quiesce.us, 1u);
	mig->stats.quiesce_us_max = max(mig->stats.quiesce_us_max,
					mig->last_quiesce.us);
	if (ret && args.stuck) {
		dev_err(vmig_dev(mig), "quiesce failed (%d) and could not be withdrawn: device in ERROR\n",
			ret);
		mig->state = VFIO_DEVICE_STATE_ERROR;
	}
	return ret;
}

/*
 * Execute one arc.  On failure the device is still in mig->state unless
 * the arc set VFIO_DEVICE_STATE_ERROR itself (see Documentation).
 */
static struct file *vmig_step(struct vmig_device *mig,
			      enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = mig->state;
	int ret;

#define ARC(a, b) (cur == VFIO_DEVICE_STATE_##a && next == VFIO_DEVICE_STATE_##b)
	if (ARC(RUNNING, RUNNING_P2P) || ARC(PRE_COPY, PRE_COPY_P2P)) {
		ret = vmig_quiesce(mig);
	} else if (ARC(RUNNING_P2P, RUNNING) || ARC(PRE_COPY_P2P, PRE_COPY)) {
		ret = mig->ops->unquiesce(mig);
	} else if (ARC(RUNNING_P2P, STOP)) {
		ret = mig->ops->freeze(mig);
	} else if (ARC(STOP, RUNNING_P2P)) {
		ret = mig->ops->unfreeze(mig);
	} else if (ARC(STOP, STOP_COPY)) {
		return vmig_start_saving(mig, false);
	} else if (ARC(RUNNING, PRE_COPY) || ARC(RUNNING_P2P, PRE_COPY_P2P)) {
		return vmig_start_saving(mig, true);
	} else if (ARC(PRE_COPY_P2P, STOP_COPY)) {
		ret = mig->ops->freeze(mig);
		if (ret)
			return ERR_PTR(ret);
		if (mig->saving) {
			ret = vmig_save_finalize(mig, mig->saving, true);
		} else {
			dev_err(vmig_dev(mig), "no PRE_COPY session to finish\n");
			ret = -EINVAL;
		}
		if (ret && mig->ops->unfreeze(mig))
			mig->state = VFIO_DEVICE_STATE_ERROR;
		/*
		 * The final pass is complete and the session in its final
		 * phase: STOP_COPY is reached.  Tracking that will not stop
		 * is only cleanup (the device is frozen, nothing dirties SRAM)
		 * and the next session or reset starts it afresh.
		 */
		if (!ret && vmig_mem_track_stop(mig))
			dev_warn(vmig_dev(mig), "SRAM tracking did not stop after the final pass; STOP_COPY reached anyway\n");
	} else if (ARC(PRE_COPY, RUNNING) || ARC(PRE_COPY_P2P, RUNNING_P2P)) {
		vmig_stop_saving(mig, true);
		ret = 0;
	} else if (ARC(STOP_COPY, STOP)) {
		vmig_stop_saving(mig, false);
		ret = 0;
	} else if (ARC(STOP, RESUMING)) {
		return vmig_start_resuming(mig);
	} else if (ARC(RESUMING, STOP)) {
		ret = vmig_apply(mig);
		if (!ret || mig->state == VFIO_DEVICE_STATE_ERROR)
			vmig_end_resuming(mig);
	} else {
		/* vfio_mig_get_next_state() never hands out anything else. */
		ret = -EINVAL;
	}
#undef ARC
	return ret ? ERR_PTR(ret) : NULL;
}

/*
 * The errnos an arc fails with, counted apart in debugfs: the bound
 * (ETIMEDOUT), a killed wait (EINTR), a reset overtaking the arc
 * (EAGAIN), a bad request (EINVAL), device errors (EIO, ENODEV, EBUSY:
 * runtime PM) and a refused stream version (EPROTONOSUPPORT).
 */
static const struct {
	int err;
	const char *name;
} vmig_stat_errnos[VMIG_STAT_ERRNOS] = {
	{ ETIMEDOUT, "ETIMEDOUT" }, { EINTR, "EINTR" }, { EAGAIN, "EAGAIN" },
	{ EINVAL, "EINVAL" }, { EIO, "EIO" }, { ENODEV, "ENODEV" },
	{ EBUSY, "EBUSY" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
};

static void vmig_count_failure(struct vmig_stats *st, long err)
{
	unsigned int i;

	st->arc_failures++;
	for (i = 0; i < VMIG_STAT_ERRNOS; i++)
		if (vmig_stat_errnos[i].err == -err)
			break;
	st->arc_errno[i]++;
}

/*
 * An arc left the device in ERROR: nothing it was doing can go on.  End the
 * sessions (their fds fail from now on) and stop tracking if it may still
 * run; only VFIO_DEVICE_RESET brings the device back.
 */
static void vmig_enter_error(struct vmig_device *mig)
{
	if (mig->saving)
		vmig_mem_track_stop(mig);
	vmig_end_sessions(mig);
	dev_err(vmig_dev(mig),
		"migration state ERROR: sessions ended, VFIO_DEVICE_RESET recovers the device\n");
}

struct file *vmig_set_state(struct vmig_device *mig,
			    enum vfio_device_mig_state new_state)
{
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	u32 gen;
	ktime_t t0;
	int ret;

	vmig_state_lock(mig);
	/* the reset count the operations check against */
	gen = mig->locked_gen;
	if (!mig->usable) {
		res = ERR_PTR(-EOPNOTSUPP);
	} else if (mig->state == VFIO_DEVICE_STATE_ERROR &&
		   new_state != VFIO_DEVICE_STATE_ERROR) {
		/* No arc leaves ERROR (vfio_mig_get_next_state() WARNs). */
		dev_err_ratelimited(vmig_dev(mig),
				    "SET_STATE %u refused: the device is in ERROR until VFIO_DEVICE_RESET\n",
				    new_state);
		res = ERR_PTR(-EINVAL);
	}
	while (!IS_ERR(res) && mig->state != new_state) {
		/* overtaken by a reset: no further arc (EAGAIN below) */
		if (READ_ONCE(mig->reset_gen) != gen)
			break;
		ret = vfio_mig_get_next_state(mig->vdev, mig->state, new_state,
					      &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		t0 = ktime_get();
		res = vmig_step(mig, next);
		trace_refaccel_arc(dev_name(vmig_dev(mig)), mig->state, next,
				   ktime_us_delta(ktime_get(), t0),
				   PTR_ERR_OR_ZERO(res));
		mig->stats.arcs++;
		if (IS_ERR(res))
			vmig_count_failure(&mig->stats, PTR_ERR(res));
		else if (res)
			mig->stats.sessions++;
		/*
		 * A reset overtook the arc: the device is RUNNING again (below),
		 * so an ERROR or an undo the arc could not make is moot.
		 */
		if (IS_ERR(res) && READ_ONCE(mig->reset_gen) != gen)
			break;
		if (IS_ERR(res)) {
			/* A VMM may reset the device for this: always say it. */
			dev_warn_ratelimited(vmig_dev(mig),
					     "arc %s -> %s failed (%ld), device in %s\n",
					     vmig_state_name(mig->state),
					     vmig_state_name(next), PTR_ERR(res),
					     vmig_state_name(mig->state));
			if (mig->state == VFIO_DEVICE_STATE_ERROR)
				vmig_enter_error(mig);
			break;
		}
		dev_dbg(vmig_dev(mig), "arc %s -> %s took %lld us\n",
			vmig_state_name(mig->state), vmig_state_name(next),
			ktime_us_delta(ktime_get(), t0));
		mig->state = next;
		if (WARN_ON(res && new_state != next)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	/*
	 * A reset overtook the request (it came while an arc waited for the
	 * device): the device is RUNNING again, whatever the arc did or
	 * failed to do because of it, and a session it opened is already
	 * over.  Say so, the same way every time.
	 */
	if (READ_ONCE(mig->reset_gen) != gen) {
		dev_dbg(vmig_dev(mig), "SET_STATE %s overtaken by a reset: EAGAIN, device RUNNING\n",
			vmig_state_name(new_state));
		if (!IS_ERR_OR_NULL(res))
			fput(res);
		res = ERR_PTR(-EAGAIN);
	}
	vmig_state_unlock(mig);
	return res;
}

int vmig_get_state(struct vmig_device *mig,
		   enum vfio_device_mig_state *cur_state)
{
	vmig_state_lock(mig);
	*cur_state = mig->state;
	vmig_state_unlock(mig);
	return 0;
}

/* ---- the quiesce bound of this open (driver-private uAPI) ---- */

void vmig_get_quiesce(struct vmig_device *mig, unsigned int *timeout_ms,
		      bool *park, struct vmig_quiesce_stat *last)
{
	vmig_state_lock(mig);
	*timeout_ms = mig->quiesce_timeout_ms;
	*park = mig->quiesce_park;
	*last = mig->last_quiesce;
	vmig_state_unlock(mig);
}

/* The caller checked the bounds; the next quiesce uses them. */
void vmig_set_quiesce(struct vmig_device *mig, unsigned int timeout_ms,
		      bool park)
{
	vmig_state_lock(mig);
	mig->quiesce_timeout_ms = timeout_ms;
	mig->quiesce_park = park;
	vmig_state_unlock(mig);
}

/*
 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 SET, where the vfio core passes it
 * to the driver (before 7.x): the same rules as the 7.x core's handler.
 * The opt-in lasts until the device is closed.
 */
int vmig_feature_precopy_v2(struct vmig_device *mig, u32 flags, size_t argsz)
{
	int ret;

	if (!mig->usable || !(VMIG_FLAGS & VFIO_MIGRATION_PRE_COPY))
		return -EINVAL;
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;
	WRITE_ONCE(mig->precopy_v2, true);
	return 0;
}

/*
 * The function was reset (VFIO_DEVICE_RESET, FLR, bus reset): the device is
 * RUNNING again and any session is over.  The caller holds memory_lock for
 * writing, which arcs and session readers may be waiting for while they
 * hold state_mutex or a session mutex: take neither (see the comment at the
 * top).  Sessions see the new count at once; the next holder of
 * state_mutex moves the FSM to RUNNING and ends them.
 */
void vmig_reset_done(struct vmig_device *mig)
{
	spin_lock(&mig->reset_lock);
	mig->deferred_reset = true;
	WRITE_ONCE(mig->reset_gen, mig->reset_gen + 1);
	mig->stats.resets++;
	spin_unlock(&mig->reset_lock);
	trace_refaccel_reset(dev_name(vmig_dev(mig)), READ_ONCE(mig->reset_gen));
}

/* ---- debugfs: <debugfs>/refaccel_vfio_pci/<device>/status ---- */

static int vmig_status_show(struct seq_file *m, void *unused)
{
	struct vmig_device *mig = m->private;
	struct vmig_stats *st = &mig->stats;
	bool reset_pending;
	unsigned int i;

	/*
	 * Not vmig_state_lock(): reading the status must not act on a
	 * deferred reset (end sessions, touch the device); it says one is
	 * pending instead.
	 */
	mutex_lock(&mig->state_mutex);
	spin_lock(&mig->reset_lock);
	reset_pending = mig->deferred_reset;
	spin_unlock(&mig->reset_lock);
	seq_printf(m, "state: %s\n", vmig_state_name(mig->state));
	seq_printf(m, "reset_pending: %s\n", reset_pending ? "yes" : "no");
	seq_printf(m, "migration: %s\n", mig->usable ? "usable (open)" : "closed or not usable");
	seq_printf(m, "saving_session: %s\n", mig->saving ? "yes" : "no");
	seq_printf(m, "resuming_session: %s\n", mig->resuming ? "yes" : "no");
	seq_printf(m, "quiesce_timeout_ms: %u\n", mig->quiesce_timeout_ms);
	seq_printf(m, "quiesce_mode: %s\n", mig->quiesce_park ? "park" : "drain");
	seq_printf(m, "quiesce_default_ms: %u\n",
		   READ_ONCE(mig->quiesce_default_ms));
	seq_printf(m, "dma_logging: %s\n", mig->log.active ? "on" : "off");
	seq_printf(m, "arcs: %llu\n", st->arcs);
	seq_printf(m, "arc_failures: %llu\n", st->arc_failures);
	seq_puts(m, "arc_failures_by_errno:");
	for (i = 0; i < VMIG_STAT_ERRNOS; i++)
		seq_printf(m, " %s=%llu", vmig_stat_errnos[i].name,
			   st->arc_errno[i]);
	seq_printf(m, " other=%llu\n", st->arc_errno[VMIG_STAT_ERRNOS]);
	seq_printf(m, "quiesces: %llu\n", st->quiesces);
	seq_printf(m, "quiesce_failures: %llu\n", st->quiesce_failures);
	seq_printf(m, "quiesce_us_min: %u\n", st->quiesce_us_min);
	seq_printf(m, "quiesce_us_max: %u\n", st->quiesce_us_max);
	seq_printf(m, "quiesce_us_last: %u\n", mig->last_quiesce.us);
	seq_printf(m, "sessions: %llu\n", st->sessions);
	seq_printf(m, "bytes_saved: %lld\n", atomic64_read(&st->bytes_saved));
	seq_printf(m, "bytes_loaded: %lld\n", atomic64_read(&st->bytes_loaded));
	seq_printf(m, "resets: %llu\n", READ_ONCE(st->resets));
	mutex_unlock(&mig->state_mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vmig_status);

void vmig_debugfs_init(struct vmig_device *mig, struct dentry *parent)
{
	if (IS_ERR_OR_NULL(parent))
		return;
	mig->debugfs = debugfs_create_dir(dev_name(vmig_dev(mig)), parent);
	debugfs_create_file("status", 0400, mig->debugfs, mig,
			    &vmig_status_fops);
}

void vmig_debugfs_exit(struct vmig_device *mig)
{
	debugfs_remove_recursive(mig->debugfs);
	mig->debugfs = NULL;
}
