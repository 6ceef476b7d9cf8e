// SPDX-License-Identifier: GPL-2.0-only
/*
 * A second device for the migration core, in one ops file: "blob", a
 * device whose whole state is a buffer of bytes, with no device memory
 * and no DMA dirty tracker.  It exists to show that the core (mig*.c)
 * serves a device other than the reference accelerator through struct
 * vmig_dev_ops alone, and to exercise the core's paths for a device
 * without device memory (refaccel_core_kunit.c).  Each operation is one
 * "hardware" action on the buffer and records that it ran, so the tests
 * can check what the core asked for and in which order.
 */

#include <linux/errno.h>
#include <linux/string.h>

#include "ops_blob.h"

static struct blob_dev *to_blob(struct vmig_device *mig)
{
	return container_of(mig, struct blob_dev, mig);
}

static int blob_get_info(struct vmig_device *mig, struct vmig_dev_info *info)
{
	*info = (struct vmig_dev_info){
		.compat_id = BLOB_COMPAT_ID,
		.state_max = BLOB_STATE_MAX,
	};
	return 0;
}

/* A reset leaves the blob running: not quiesced, not frozen. */
static int blob_idle(struct vmig_device *mig)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.idle++;
	b->quiesced = false;
	b->frozen = false;
	return 0;
}

static int blob_quiesce(struct vmig_device *mig, struct vmig_quiesce_args *args)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.quiesce++;
	args->in_flight = 0;
	args->parked = 0;
	b->quiesced = true;
	return 0;
}

static int blob_unquiesce(struct vmig_device *mig)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.unquiesce++;
	if (b->frozen)
		b->misuse++;
	b->quiesced = false;
	return 0;
}

static int blob_freeze(struct vmig_device *mig)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.freeze++;
	if (!b->quiesced)
		b->misuse++;	/* the core must quiesce before it freezes */
	b->frozen = true;
	return 0;
}

static int blob_unfreeze(struct vmig_device *mig)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.unfreeze++;
	b->frozen = false;
	return 0;
}

static int blob_state_save(struct vmig_device *mig, void *buf, size_t *len)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.save++;
	if (!b->frozen)
		b->misuse++;
	if (*len < b->len)
		return -ENOSPC;
	memcpy(buf, b->state, b->len);
	*len = b->len;
	return 0;
}

static int blob_state_load(struct vmig_device *mig, const void *buf,
			   size_t len)
{
	struct blob_dev *b = to_blob(mig);

	b->calls.load++;
	if (!b->frozen)
		b->misuse++;
	if (len > BLOB_STATE_MAX)
		return -EINVAL;
	memcpy(b->state, buf, len);
	b->len = len;
	return 0;
}

/* No device memory and no tracker: the core must never call these. */
static int blob_mem_track(struct vmig_device *mig)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

static int blob_mem_track_sync(struct vmig_device *mig, unsigned long *bitmap)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

static int blob_mem_read(struct vmig_device *mig, u64 off, void *buf,
			 size_t len)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

static int blob_mem_write(struct vmig_device *mig, u64 off, const void *buf,
			  size_t len)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

static int blob_dma_track_start(struct vmig_device *mig,
				const struct vmig_dma_range *ranges, u32 nr,
				unsigned int pgshift)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

static int blob_dma_track_stop(struct vmig_device *mig)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

static int blob_dma_track_read(struct vmig_device *mig, u64 *iova, u64 last,
			       struct vmig_dma_run *runs, unsigned int max,
			       bool *done)
{
	to_blob(mig)->misuse++;
	return -EOPNOTSUPP;
}

const struct vmig_dev_ops blob_vmig_ops = {
	.get_info = blob_get_info,
	.idle = blob_idle,
	.quiesce = blob_quiesce,
	.unquiesce = blob_unquiesce,
	.freeze = blob_freeze,
	.unfreeze = blob_unfreeze,
	.state_save = blob_state_save,
	.state_load = blob_state_load,
	.mem_track_start = blob_mem_track,
	.mem_track_stop = blob_mem_track,
	.mem_track_sync = blob_mem_track_sync,
	.mem_read = blob_mem_read,
	.mem_write = blob_mem_write,
	.dma_track_start = blob_dma_track_start,
	.dma_track_stop = blob_dma_track_stop,
	.dma_track_read = blob_dma_track_read,
};
