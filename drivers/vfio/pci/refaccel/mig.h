/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Generic VFIO migration core: FSM, data_fd sessions, stream handling.
 * Device specifics live behind struct vmig_dev_ops (mig_ops.h).
 */
#ifndef VMIG_H
#define VMIG_H

#include <linux/mutex.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>

#include "dirty.h"
#include "mig_ops.h"

struct vmig_file;

/**
 * struct vmig_quiesce_stat - the outcome of one quiesce
 * @done: a quiesce was attempted since the device was opened
 * @err: its result (0, -ETIMEDOUT, -EINTR, or why the device was not reached)
 * @us: how long it took or waited
 * @in_flight: work still in flight when it ended
 */
struct vmig_quiesce_stat {
	bool done;
	int err;
	u32 us;
	u32 in_flight;
};

/* Largest device state and device memory a device may report. */
#define VMIG_STATE_MAX		SZ_1M
#define VMIG_MEM_MAX		SZ_1G

/* Advertised through VFIO_DEVICE_FEATURE_MIGRATION. */
#define VMIG_FLAGS (VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | \
		    VFIO_MIGRATION_PRE_COPY)

/* The errnos an arc fails with that debugfs counts apart (mig.c). */
#define VMIG_STAT_ERRNOS	8

/**
 * struct vmig_stats - counters of one device since probe (debugfs)
 * @arcs: arcs walked
 * @arc_failures: arcs that failed
 * @arc_errno: arcs that failed, by errno: one slot per vmig_stat_errnos[]
 *	entry, the last for any other
 * @quiesces: quiesce attempts
 * @quiesce_failures: quiesces that timed out, were killed or failed
 * @quiesce_us_min: fastest successful quiesce
 * @quiesce_us_max: slowest quiesce, successful or not
 * @bytes_saved: bytes read from saving data_fds
 * @bytes_loaded: bytes written to resuming data_fds
 * @sessions: data_fds opened
 * @resets: resets of the function seen
 */
struct vmig_stats {
	u64 arcs;
	u64 arc_failures;
	u64 arc_errno[VMIG_STAT_ERRNOS + 1];
	u64 quiesces;
	u64 quiesce_failures;
	u32 quiesce_us_min;
	u32 quiesce_us_max;
	atomic64_t bytes_saved;
	atomic64_t bytes_loaded;
	u64 sessions;
	u64 resets;
};

/**
 * struct vmig_device - migration state of one VFIO device
 * @vdev: the VFIO device, for logging
 * @ops: device operations
 * @info: device facts from @ops->get_info, valid while open
 * @state_mutex: serialises FSM arcs; taken before any session lock
 * @state: current FSM state
 * @reset_lock: protects @deferred_reset and @reset_gen updates
 * @deferred_reset: a reset happened; the next @state_mutex holder acts on it
 * @reset_gen: resets seen, read locklessly by sessions
 * @locked_gen: @reset_gen as the holder of @state_mutex last acted on it
 *	(see vmig_reset_overtook())
 * @saving: session of the saving group (holds a file reference)
 * @resuming: RESUMING session (holds a file reference)
 * @quiesce_default_ms: @quiesce_timeout_ms of each new open (sysfs)
 * @quiesce_timeout_ms: bound on each quiesce of this open (private uAPI)
 * @quiesce_park: park executing work instead of draining it (this open)
 * @last_quiesce: how the last quiesce of this open went
 * @precopy_v2: the user opted in to VFIO_PRECOPY_INFO_REINIT on this open,
 *	where the vfio core leaves VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 to
 *	the driver (before 7.x; the 7.x core keeps the opt-in itself)
 * @usable: the open device supports migration (set by vmig_open())
 * @log: DMA logging (dirty.c), with its own lock
 * @stats: counters; updated under @state_mutex, except @bytes_* (the
 *	session's mutex, atomically) and @resets (@reset_lock)
 * @debugfs: this device's debugfs directory, or NULL
 */
struct vmig_device {
	struct vfio_device *vdev;
	const struct vmig_dev_ops *ops;
	struct vmig_dev_info info;
	struct mutex state_mutex;	/* see kernel-doc above */
	enum vfio_device_mig_state state;
	spinlock_t reset_lock;		/* see kernel-doc above */
	bool deferred_reset;
	u32 reset_gen;
	u32 locked_gen;
	struct vmig_file *saving;
	struct vmig_file *resuming;
	unsigned int quiesce_default_ms;
	unsigned int quiesce_timeout_ms;
	bool quiesce_park;
	struct vmig_quiesce_stat last_quiesce;
	bool precopy_v2;
	bool usable;
	struct vmig_log log;
	struct vmig_stats stats;
	struct dentry *debugfs;
};

void vmig_init(struct vmig_device *mig, struct vfio_device *vdev,
	       const struct vmig_dev_ops *ops, unsigned int quiesce_timeout_ms);
void vmig_uninit(struct vmig_device *mig);
void vmig_open(struct vmig_device *mig);
void vmig_close(struct vmig_device *mig);
void vmig_reset_done(struct vmig_device *mig);
bool vmig_reset_overtook(struct vmig_device *mig);
void vmig_debugfs_init(struct vmig_device *mig, struct dentry *parent);
void vmig_debugfs_exit(struct vmig_device *mig);

struct file *vmig_set_state(struct vmig_device *mig,
			    enum vfio_device_mig_state new_state);
int vmig_get_state(struct vmig_device *mig,
		   enum vfio_device_mig_state *cur_state);
int vmig_get_data_size(struct vmig_device *mig, unsigned long *len);
void vmig_get_quiesce(struct vmig_device *mig, unsigned int *timeout_ms,
		      bool *park, struct vmig_quiesce_stat *last);
void vmig_set_quiesce(struct vmig_device *mig, unsigned int timeout_ms,
		      bool park);
int vmig_feature_precopy_v2(struct vmig_device *mig, u32 flags, size_t argsz);

#endif /* VMIG_H */
