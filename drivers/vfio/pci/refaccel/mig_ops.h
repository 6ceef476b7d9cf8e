/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The interface between the generic migration core (mig*.c) and a device.
 *
 * The core owns the VFIO migration FSM, the data_fd sessions and the stream
 * format; it never touches a register.  A device provides the operations
 * below and knows nothing about FSM states or arcs: each operation is one
 * hardware action, and the core decides when to call it.  Adding a device
 * means writing one ops file.
 *
 * Operations may sleep and return 0 or a negative errno after logging why
 * with dev_err().  All are called with the core's state mutex held, except
 * @mem_read, @mem_track_sync and @init_epoch: data_fd reads call those with
 * only their session's mutex, so they may run concurrently with an arc's
 * quiesce or freeze and must not share device registers with them.  The
 * @dma_track_* operations are called with the DMA log's mutex (dirty.c)
 * instead, while arcs and sessions may run: they use only the tracker's own
 * registers.
 *
 * A reset of the function may come while an operation waits to reach the
 * device (the reset holds what the operation needs, vfio-pci's
 * memory_lock).  An operation called with the state mutex held must then
 * not touch the freshly reset function: once it holds that lock it asks
 * vmig_reset_overtook() and, if so, returns -EAGAIN untouched.  The core
 * puts the function back to idle (@idle) when it acts on the reset.
 */
#ifndef VMIG_OPS_H
#define VMIG_OPS_H

#include <linux/types.h>

struct vmig_device;

/**
 * struct vmig_quiesce_args - how to quiesce, and how it went
 * @timeout_ms: give up (and undo the request) after this long
 * @abort_pri: withdraw outstanding page requests (PRI) and put their work
 *	back, to be retried when the device runs again; without it a quiesce
 *	waits for the user's answers, possibly forever
 * @park: stop executing work at once, to go on when the device runs again,
 *	instead of letting it finish; a device that cannot park drains
 * @in_flight: out: work the device still had in flight when it returned
 * @parked: out: of that, work stopped mid-execution (to go on later)
 * @stuck: out, with an error: the request could not be withdrawn (the
 *	device became unreachable while it was polled), so the device may be
 *	quiesced although the arc failed; the core then reports ERROR
 */
struct vmig_quiesce_args {
	unsigned int timeout_ms;
	bool abort_pri;
	bool park;
	u32 in_flight;
	u32 parked;
	bool stuck;
};

/**
 * struct vmig_dma_range - an IOVA range of the DMA dirty tracker
 * @start: first IOVA
 * @last: last IOVA, inclusive
 */
struct vmig_dma_range {
	u64 start;
	u64 last;
};

/**
 * struct vmig_dev_info - static facts the core needs about a device
 * @compat_id: devices with equal ids can exchange state
 * @state_max: upper bound of the internal state blob, in bytes
 * @mem_size: bytes of device memory migrated by page (0: none)
 * @mem_page_size: dirty tracking granularity of that memory
 * @dma_max_ranges: IOVA ranges the DMA dirty tracker holds (0: no tracker)
 * @dma_max_span: largest sum of the lengths of those ranges, in bytes
 * @dma_pgshift_min: smallest tracking page size (log2) of the tracker
 * @dma_pgshift_max: largest tracking page size (log2)
 */
struct vmig_dev_info {
	u32 compat_id;
	u32 state_max;
	u64 mem_size;
	u32 mem_page_size;
	u32 dma_max_ranges;
	u64 dma_max_span;
	u8 dma_pgshift_min;
	u8 dma_pgshift_max;
};

/**
 * struct vmig_dma_run - consecutive dirty pages found by @dma_track_read
 * @iova: first byte of the first page
 * @len: bytes of the run
 */
struct vmig_dma_run {
	u64 iova;
	u64 len;
};

/* A @dma_track_read batch has room for at least this many runs. */
#define VMIG_DMA_RUNS_MIN	32

/**
 * struct vmig_dev_ops - device operations called by the migration core
 * @get_info: fill @info; called once when the device is opened
 * @idle: put the migration block back where a device reset leaves it: not
 *	quiesced, not frozen, SRAM tracking off, no saved state held; the DMA
 *	dirty tracker is left alone (the DMA log owns it).  Called at open,
 *	at close and after a reset, so it must work on any function state
 * @quiesce: stop initiating DMA (including peer-to-peer) and interrupts and
 *	finish or park in-flight work; MMIO, including peer writes into the
 *	device's BARs, keeps working.  Give up with -ETIMEDOUT after
 *	@args.timeout_ms and with -EINTR on a fatal signal.  On failure the
 *	device must be running as before the call, or @args.stuck set.
 * @unquiesce: undo @quiesce
 * @freeze: from quiesced, stop every internal state change
 * @unfreeze: undo @freeze, back to quiesced
 * @state_save: frozen device: write the internal state blob (at most
 *	@info.state_max bytes) to @buf and its length to @len
 * @state_load: frozen device: replace the internal state with @buf, all or
 *	nothing; a rejected blob leaves the device as it was
 * @mem_track_start: start tracking writes to device memory, clean bitmap
 * @mem_track_stop: stop tracking; never concurrent with @mem_track_sync
 *	(the core holds the saving session's mutex around it)
 * @mem_track_sync: OR the pages written since the last sync into @bitmap
 *	(one bit per @info.mem_page_size) and clear them in the device
 * @init_epoch: optional: read a count that changes whenever the device
 *	voids what a destination pre-loaded from the initial pass (a function
 *	reset by the device's own driver clears its memory); called like
 *	@mem_track_sync, only for a user that can be told (PRECOPY_INFOv2)
 * @mem_read: copy device memory at @off into @buf
 * @mem_write: copy @buf into device memory at @off
 * @dma_track_start: track every write the device makes to host memory in
 *	the @nr ranges of @ranges (sorted, not overlapping, within the limits
 *	of @info) at 2^@pgshift bytes per page, every page clean
 * @dma_track_stop: stop tracking and drop every mark
 * @dma_track_read: read and clear marks of the window from *@iova to
 *	@last (aligned to the tracking page) into at most @max runs (at least
 *	%VMIG_DMA_RUNS_MIN), a bounded batch; return the number of runs and
 *	move *@iova past what was read, or set *@done at the end of the
 *	window.  Marks outside the window stay.  A batch holds the device
 *	(and vfio-pci's memory_lock): the caller delivers the runs after it
 */
struct vmig_dev_ops {
	int (*get_info)(struct vmig_device *mig, struct vmig_dev_info *info);
	int (*idle)(struct vmig_device *mig);
	int (*quiesce)(struct vmig_device *mig, struct vmig_quiesce_args *args);
	int (*unquiesce)(struct vmig_device *mig);
	int (*freeze)(struct vmig_device *mig);
	int (*unfreeze)(struct vmig_device *mig);
	int (*state_save)(struct vmig_device *mig, void *buf, size_t *len);
	int (*state_load)(struct vmig_device *mig, const void *buf, size_t len);
	int (*mem_track_start)(struct vmig_device *mig);
	int (*mem_track_stop)(struct vmig_device *mig);
	int (*mem_track_sync)(struct vmig_device *mig, unsigned long *bitmap);
	int (*init_epoch)(struct vmig_device *mig, u32 *epoch);
	int (*mem_read)(struct vmig_device *mig, u64 off, void *buf, size_t len);
	int (*mem_write)(struct vmig_device *mig, u64 off, const void *buf,
			 size_t len);
	int (*dma_track_start)(struct vmig_device *mig,
			       const struct vmig_dma_range *ranges, u32 nr,
			       unsigned int pgshift);
	int (*dma_track_stop)(struct vmig_device *mig);
	int (*dma_track_read)(struct vmig_device *mig, u64 *iova, u64 last,
			      struct vmig_dma_run *runs, unsigned int max,
			      bool *done);
};

#endif /* VMIG_OPS_H */
