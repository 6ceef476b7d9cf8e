// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration core: probe-time set-up, and what an open and a close of the
 * device do (read and check the device's migration facts; return the
 * migration block to idle for the next user).
 */

#include <linux/log2.h>

#include "compat.h"
#include "mig_core.h"

/* ---- lifecycle ---- */

void vmig_init(struct vmig_device *mig, struct vfio_device *vdev,
	       const struct vmig_dev_ops *ops, unsigned int quiesce_timeout_ms)
{
	mig->vdev = vdev;
	mig->ops = ops;
	mig->quiesce_default_ms = quiesce_timeout_ms;
	mig->quiesce_timeout_ms = quiesce_timeout_ms;
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	mutex_init(&mig->state_mutex);
	spin_lock_init(&mig->reset_lock);
	vmig_log_init(&mig->log);
}

void vmig_uninit(struct vmig_device *mig)
{
	vmig_log_uninit(&mig->log);
	mutex_destroy(&mig->state_mutex);
}

/* A tracker the log cannot use is no tracker (DMA logging: EOPNOTSUPP). */
static bool vmig_dma_info_valid(const struct vmig_dev_info *info)
{
	return info->dma_max_ranges <= VMIG_LOG_MAX_RANGES &&
	       info->dma_pgshift_min >= 12 &&
	       info->dma_pgshift_min <= info->dma_pgshift_max &&
	       info->dma_pgshift_max < 32 &&
	       info->dma_max_span >= 1ull << info->dma_pgshift_max;
}

static bool vmig_info_valid(const struct vmig_dev_info *info)
{
	/* both size buffers the core allocates per session */
	if (!info->state_max || info->state_max > VMIG_STATE_MAX)
		return false;
	if (!info->mem_size)
		return true;
	if (info->mem_size > VMIG_MEM_MAX)
		return false;
	return info->mem_page_size && is_power_of_2(info->mem_page_size) &&
	       info->mem_page_size <= VMIG_MEM_CHUNK_MAX &&
	       !(info->mem_size % info->mem_page_size);
}

/*
 * Whatever goes wrong here, the function still opens and works as with
 * vfio-pci; only migration is refused (every arc fails with EOPNOTSUPP).
 */
/*
 * The operations every arc, open, close and reset may call; the memory and
 * DMA tracker ones only where get_info reports memory or a tracker.
 */
static bool vmig_ops_complete(const struct vmig_dev_ops *ops)
{
	return ops->get_info && ops->idle && ops->quiesce && ops->unquiesce &&
	       ops->freeze && ops->unfreeze && ops->state_save &&
	       ops->state_load;
}

void vmig_open(struct vmig_device *mig)
{
	struct vmig_dev_info info = {};
	int ret;

	vmig_state_lock(mig);
	mig->usable = false;
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	if (!vmig_ops_complete(mig->ops)) {
		dev_err(vmig_dev(mig), "device driver lacks a mandatory migration operation: migration refused\n");
		goto out;
	}
	ret = mig->ops->get_info(mig, &info);
	if (ret) {
		if (ret != -EOPNOTSUPP)
			dev_err(vmig_dev(mig), "cannot read the migration facts of the device (%d): migration refused\n",
				ret);
		goto out;
	}
	if (!vmig_info_valid(&info)) {
		dev_err(vmig_dev(mig), "device reports unusable migration geometry (state %u bytes, memory %llu bytes in %u-byte pages): migration refused\n",
			info.state_max, info.mem_size, info.mem_page_size);
		goto out;
	}
	if (info.dma_max_ranges && !vmig_dma_info_valid(&info)) {
		dev_warn(vmig_dev(mig), "device reports unusable DMA dirty tracking limits (%u ranges, page shift %u..%u, span %llu): no DMA logging\n",
			 info.dma_max_ranges, info.dma_pgshift_min,
			 info.dma_pgshift_max, info.dma_max_span);
		info.dma_max_ranges = 0;
	}
	/* whatever the previous user or a failed close left behind */
	ret = mig->ops->idle(mig);
	if (ret) {
		dev_err(vmig_dev(mig), "cannot return the migration block to idle (%d): migration refused\n",
			ret);
		goto out;
	}
	mig->info = info;
	mig->quiesce_timeout_ms = READ_ONCE(mig->quiesce_default_ms);
	mig->quiesce_park = false;
	mig->last_quiesce = (struct vmig_quiesce_stat){};
	WRITE_ONCE(mig->precopy_v2, false);
	mig->usable = true;
out:
	vmig_state_unlock(mig);
}

void vmig_close(struct vmig_device *mig)
{
	vmig_log_close(mig);
	vmig_state_lock(mig);
	vmig_end_sessions(mig);
	/* the next user must find the function running, whatever we left */
	if (mig->usable && mig->state != VFIO_DEVICE_STATE_RUNNING &&
	    mig->ops->idle(mig))
		dev_warn(vmig_dev(mig), "migration block not idle at close; the function reset of the close clears it\n");
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	mig->usable = false;
	WRITE_ONCE(mig->precopy_v2, false);
	vmig_state_unlock(mig);
}
