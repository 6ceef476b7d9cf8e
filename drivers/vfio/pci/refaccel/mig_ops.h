/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The interface between the generic migration core (mig.c) and a device.
 *
 * The core owns the VFIO migration FSM, the data_fd sessions and the stream
 * format; it never touches a register.  A device provides the operations
 * below and knows nothing about FSM states or arcs: each operation is one
 * hardware action, and the core decides when to call it.  Adding a device
 * means writing one ops file.
 *
 * Operations may sleep and return 0 or a negative errno after logging why
 * with dev_err().  All are called with the core's state mutex held, except
 * @mem_read and @mem_track_sync: data_fd reads call those with only their
 * session's mutex, so they may run concurrently with an arc's quiesce or
 * freeze and must not share device registers with them.
 */
#ifndef VMIG_OPS_H
#define VMIG_OPS_H

#include <linux/types.h>

struct vmig_device;

/**
 * struct vmig_quiesce_args - how to quiesce
 * @timeout_ms: give up (and undo the request) after this long
 * @abort_pri: abort outstanding page requests and park their work
 */
struct vmig_quiesce_args {
	unsigned int timeout_ms;
	bool abort_pri;
};

/**
 * struct vmig_dev_info - static facts the core needs about a device
 * @compat_id: devices with equal ids can exchange state
 * @state_max: upper bound of the internal state blob, in bytes
 * @mem_size: bytes of device memory migrated by page (0: none)
 * @mem_page_size: dirty tracking granularity of that memory
 */
struct vmig_dev_info {
	u32 compat_id;
	u32 state_max;
	u64 mem_size;
	u32 mem_page_size;
};

/**
 * struct vmig_dev_ops - device operations called by the migration core
 * @get_info: fill @info; called once when the device is opened
 * @quiesce: stop initiating DMA (including peer-to-peer) and interrupts and
 *	finish or park in-flight work; MMIO, including peer writes into the
 *	device's BARs, keeps working.  On failure the device must be running
 *	as before the call.
 * @unquiesce: undo @quiesce
 * @freeze: from quiesced, stop every internal state change
 * @unfreeze: undo @freeze, back to quiesced
 * @state_save: frozen device: write the internal state blob (at most
 *	@info.state_max bytes) to @buf and its length to @len
 * @state_load: frozen device: replace the internal state with @buf, all or
 *	nothing; a rejected blob leaves the device as it was
 * @mem_track_start: start tracking writes to device memory, clean bitmap
 * @mem_track_stop: stop tracking
 * @mem_track_sync: OR the pages written since the last sync into @bitmap
 *	(one bit per @info.mem_page_size) and clear them in the device
 * @mem_read: copy device memory at @off into @buf
 * @mem_write: copy @buf into device memory at @off
 */
struct vmig_dev_ops {
	int (*get_info)(struct vmig_device *mig, struct vmig_dev_info *info);
	int (*quiesce)(struct vmig_device *mig,
		       const struct vmig_quiesce_args *args);
	int (*unquiesce)(struct vmig_device *mig);
	int (*freeze)(struct vmig_device *mig);
	int (*unfreeze)(struct vmig_device *mig);
	int (*state_save)(struct vmig_device *mig, void *buf, size_t *len);
	int (*state_load)(struct vmig_device *mig, const void *buf, size_t len);
	int (*mem_track_start)(struct vmig_device *mig);
	int (*mem_track_stop)(struct vmig_device *mig);
	int (*mem_track_sync)(struct vmig_device *mig, unsigned long *bitmap);
	int (*mem_read)(struct vmig_device *mig, u64 off, void *buf, size_t len);
	int (*mem_write)(struct vmig_device *mig, u64 off, const void *buf,
			 size_t len);
};

#endif /* VMIG_OPS_H */
