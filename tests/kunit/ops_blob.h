/* SPDX-License-Identifier: GPL-2.0-only */
/* The "blob" device of ops_blob.c: state only, no device memory. */
#ifndef OPS_BLOB_H
#define OPS_BLOB_H

#include "mig.h"

#define BLOB_COMPAT_ID	0xb10b0001
#define BLOB_STATE_MAX	256

/**
 * struct blob_dev - a device whose state is @len bytes of @state
 * @mig: the migration core's per-device data
 * @state: the device's whole state
 * @len: bytes of @state in use
 * @quiesced: quiesce requested and not undone
 * @frozen: freeze requested and not undone
 * @calls: how often the core called each operation
 * @misuse: calls the core must never make (freeze before quiesce, save
 *	or load while running, any memory or DMA tracker operation)
 */
struct blob_dev {
	struct vmig_device mig;
	u8 state[BLOB_STATE_MAX];
	size_t len;
	bool quiesced;
	bool frozen;
	struct {
		unsigned int idle, quiesce, unquiesce, freeze, unfreeze, save, load;
	} calls;
	unsigned int misuse;
};

extern const struct vmig_dev_ops blob_vmig_ops;

#endif /* OPS_BLOB_H */
