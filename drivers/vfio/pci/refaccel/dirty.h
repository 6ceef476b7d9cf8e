/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*) on top of a device-side
 * tracker reached through struct vmig_dev_ops.  See dirty.c.
 */
#ifndef VMIG_DIRTY_H
#define VMIG_DIRTY_H

#include <linux/iova_bitmap.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/types.h>

#include "mig_ops.h"

struct vmig_device;

/* Most ranges any device tracker may hold (a device reports its own). */
#define VMIG_LOG_MAX_RANGES	8
/* Dirty runs read from the device per batch. */
#define VMIG_LOG_RUNS		64

/**
 * struct vmig_log_range - one range programmed into the device
 * @start: first IOVA
 * @last: last IOVA (inclusive, so a range may end at the top of the space)
 * @stale_start: start of the part still owed as all-dirty after a reset
 * @stale_last: its last IOVA; the part is empty when @stale_start >
 *	@stale_last
 */
struct vmig_log_range {
	u64 start;
	u64 last;
	u64 stale_start;
	u64 stale_last;
};

/**
 * struct vmig_log - DMA logging state of one device
 * @lock: serialises the log operations; independent of the FSM's mutex
 * @active: tracking was started and not stopped
 * @pgshift: log2 of the tracking page size in use
 * @nr: ranges in @range, sorted by address, not overlapping
 * @range: the ranges programmed into the device (after combining)
 * @reset_gen: the device's reset count when the tracker was last programmed
 * @runs: one batch of a report, delivered after the device is released
 */
struct vmig_log {
	struct mutex lock;	/* see kernel-doc above */
	bool active;
	unsigned int pgshift;
	u32 nr;
	struct vmig_log_range range[VMIG_LOG_MAX_RANGES];
	u32 reset_gen;
	struct vmig_dma_run runs[VMIG_LOG_RUNS];
};

void vmig_log_init(struct vmig_log *log);
void vmig_log_uninit(struct vmig_log *log);

int vmig_log_start(struct vmig_device *mig, struct rb_root_cached *ranges,
		   u32 nnodes, u64 *page_size);
int vmig_log_stop(struct vmig_device *mig);
void vmig_log_close(struct vmig_device *mig);
int vmig_log_read_and_clear(struct vmig_device *mig, unsigned long iova,
			    unsigned long length, struct iova_bitmap *dirty);

#endif /* VMIG_DIRTY_H */
