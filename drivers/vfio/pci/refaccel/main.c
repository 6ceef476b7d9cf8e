// SPDX-License-Identifier: GPL-2.0-only
/*
 * refaccel-vfio-pci: vfio-pci variant driver for the reference accelerator.
 *
 * This file holds the PCI and vfio_device glue: probe/remove, the
 * vfio_device_ops table, the open/close hooks and the mapping from the
 * vfio_migration_ops callbacks to the generic migration core (mig*.c), which
 * drives the device through refaccel_vmig_ops (ops_refaccel.c).  Everything
 * else is delegated to vfio_pci_core, so a function bound here behaves
 * exactly like one bound to stock vfio-pci until migration is used.
 */

#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include <uapi/linux/refaccel_vfio.h>

#include "compat.h"
#include "refaccel.h"

static unsigned int quiesce_timeout_ms = 1000;
module_param(quiesce_timeout_ms, uint, 0444);
MODULE_PARM_DESC(quiesce_timeout_ms,
		 "Default bound on each quiesce (reaching RUNNING_P2P), in ms, 1..60000 (default 1000)");

/* <debugfs>/refaccel_vfio_pci/<device>/status of each migratable function */
static struct dentry *refaccel_debugfs_root;

static bool allow_unbounded_quiesce;
module_param(allow_unbounded_quiesce, bool, 0444);
MODULE_PARM_DESC(allow_unbounded_quiesce,
		 "Offer migration for functions whose quiesce may never end (CAPS.QUIESCE_UNBOUNDED); default off");

static struct file *
refaccel_set_state(struct vfio_device *core_vdev,
		   enum vfio_device_mig_state new_state)
{
	return vmig_set_state(&to_refaccel_vdev(core_vdev)->mig, new_state);
}

static int refaccel_get_state(struct vfio_device *core_vdev,
			      enum vfio_device_mig_state *cur_state)
{
	return vmig_get_state(&to_refaccel_vdev(core_vdev)->mig, cur_state);
}

static int refaccel_get_data_size(struct vfio_device *core_vdev,
				  unsigned long *stop_copy_length)
{
	return vmig_get_data_size(&to_refaccel_vdev(core_vdev)->mig,
				  stop_copy_length);
}

static const struct vfio_migration_ops refaccel_mig_ops = {
	.migration_set_state	= refaccel_set_state,
	.migration_get_state	= refaccel_get_state,
	.migration_get_data_size = refaccel_get_data_size,
};

static int refaccel_log_start(struct vfio_device *core_vdev,
			      struct rb_root_cached *ranges, u32 nnodes,
			      u64 *page_size)
{
	return vmig_log_start(&to_refaccel_vdev(core_vdev)->mig, ranges,
			      nnodes, page_size);
}

static int refaccel_log_stop(struct vfio_device *core_vdev)
{
	return vmig_log_stop(&to_refaccel_vdev(core_vdev)->mig);
}

static int refaccel_log_read_and_clear(struct vfio_device *core_vdev,
				       unsigned long iova,
				       unsigned long length,
				       struct iova_bitmap *dirty)
{
	return vmig_log_read_and_clear(&to_refaccel_vdev(core_vdev)->mig,
				       iova, length, dirty);
}

static const struct vfio_log_ops refaccel_log_ops = {
	.log_start		= refaccel_log_start,
	.log_stop		= refaccel_log_stop,
	.log_read_and_clear	= refaccel_log_read_and_clear,
};

static int refaccel_init_dev(struct vfio_device *core_vdev)
{
	struct refaccel_vfio_device *rvdev = to_refaccel_vdev(core_vdev);

	vmig_init(&rvdev->mig, core_vdev, &refaccel_vmig_ops,
		  clamp(quiesce_timeout_ms, REFACCEL_QUIESCE_TIMEOUT_MIN_MS,
			REFACCEL_QUIESCE_TIMEOUT_MAX_MS));
	return vfio_pci_core_init_dev(core_vdev);
}

static void refaccel_release_dev(struct vfio_device *core_vdev)
{
	vmig_uninit(&to_refaccel_vdev(core_vdev)->mig);
	vfio_pci_core_release_dev(core_vdev);
}

static int refaccel_open_device(struct vfio_device *core_vdev)
{
	struct refaccel_vfio_device *rvdev = to_refaccel_vdev(core_vdev);
	int ret;

	ret = vfio_pci_core_enable(&rvdev->core_device);
	if (ret)
		return ret;

	/* Without the migration block the function is plain vfio-pci. */
	if (rvdev->hide_mig)
		vmig_open(&rvdev->mig);
	vfio_pci_core_finish_enable(&rvdev->core_device);
	return 0;
}

static void refaccel_close_device(struct vfio_device *core_vdev)
{
	struct refaccel_vfio_device *rvdev = to_refaccel_vdev(core_vdev);

	vmig_close(&rvdev->mig);
	vfio_pci_core_close_device(core_vdev);
}

static const struct vfio_device_ops refaccel_vfio_ops = {
	.name		= "refaccel-vfio-pci",
	.init		= refaccel_init_dev,
	.release	= refaccel_release_dev,
	.open_device	= refaccel_open_device,
	.close_device	= refaccel_close_device,
	.ioctl		= refaccel_ioctl,
	REFACCEL_OPS_REGION_INFO
	.device_feature	= refaccel_device_feature,
	.read		= refaccel_read,
	.write		= refaccel_write,
	.mmap		= refaccel_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
	REFACCEL_OPS_MATCH_TOKEN
	/* NULL stubs when the kernel lacks IOMMUFD, real ops when it has it */
	.bind_iommufd	= vfio_iommufd_physical_bind,
	.unbind_iommufd	= vfio_iommufd_physical_unbind,
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
};

/*
 * Refuse functions whose BAR layout is not the one the register map
 * describes: a wrong BAR0 size means a different (or broken) device, and
 * every later MMIO offset would be meaningless.
 */
static int refaccel_check_bars(struct pci_dev *pdev)
{
	resource_size_t regs = pci_resource_len(pdev, REFACCEL_BAR_REGS);
	resource_size_t sram = pci_resource_len(pdev, REFACCEL_BAR_SRAM);

	if (regs < REFACCEL_REGS_SIZE) {
		pci_err(pdev, "BAR%d is %pa bytes, need at least %#x: not a refaccel v1 function\n",
			REFACCEL_BAR_REGS, &regs, REFACCEL_REGS_SIZE);
		return -ENODEV;
	}
	if (!sram || sram > REFACCEL_SRAM_MAX_SIZE) {
		pci_err(pdev, "BAR%d (SRAM) is %pa bytes, expected 1..%u\n",
			REFACCEL_BAR_SRAM, &sram, REFACCEL_SRAM_MAX_SIZE);
		return -ENODEV;
	}
	return 0;
}

/*
 * Read CAPS once at probe: only a function with the migration block offers
 * migration (and has it hidden); any other is plain vfio-pci.  The device
 * is enabled just for this read and left as vfio-pci expects to find it.
 */
static bool refaccel_probe_migratable(struct pci_dev *pdev, u32 *caps_out)
{
	void __iomem *regs;
	u32 id, caps;

	if (pci_enable_device_mem(pdev)) {
		pci_warn(pdev, "cannot enable the function to read CAPS: no migration\n");
		return false;
	}
	regs = pci_iomap(pdev, REFACCEL_BAR_REGS, REFACCEL_REG_CAPS + 4);
	if (!regs) {
		pci_disable_device(pdev);
		pci_warn(pdev, "cannot map BAR%d to read CAPS: no migration\n",
			 REFACCEL_BAR_REGS);
		return false;
	}
	id = ioread32(regs + REFACCEL_REG_ID);
	caps = ioread32(regs + REFACCEL_REG_CAPS);
	pci_iounmap(pdev, regs);
	pci_disable_device(pdev);
	*caps_out = caps;

	if (id != REFACCEL_ID_MAGIC) {
		pci_info(pdev, "ID register reads %#x, not %#x: bound without migration\n",
			 id, REFACCEL_ID_MAGIC);
		return false;
	}
	if (!refaccel_caps_migratable(caps)) {
		pci_info(pdev, "no migration block (CAPS %#x): bound without migration\n",
			 caps);
		return false;
	}
	return true;
}

static int refaccel_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct refaccel_vfio_device *rvdev;
	const char *dt_why = NULL;
	bool unbounded_refused = false;
	bool migratable;
	u32 caps = 0;
	int ret;

	ret = refaccel_check_bars(pdev);
	if (ret)
		return ret;
	migratable = refaccel_probe_migratable(pdev, &caps);
	/*
	 * A quiesce that may never end cannot be bounded by any timeout the
	 * VMM sets; such a function migrates only if the administrator opted
	 * in (QEMU then reports the device as not migratable, and says why).
	 */
	if (migratable && (caps & REFACCEL_CAP_QUIESCE_UNBOUNDED)) {
		if (allow_unbounded_quiesce) {
			pci_info(pdev, "quiesce may never end (CAPS.QUIESCE_UNBOUNDED): migration offered, allow_unbounded_quiesce is set\n");
		} else {
			pci_info(pdev, "quiesce may never end (CAPS.QUIESCE_UNBOUNDED): migration not offered; load with allow_unbounded_quiesce=1 to opt in\n");
			migratable = false;
			unbounded_refused = true;
		}
	}

	rvdev = vfio_alloc_device(refaccel_vfio_device, core_device.vdev,
				  &pdev->dev, &refaccel_vfio_ops);
	if (IS_ERR(rvdev))
		return PTR_ERR(rvdev);
	rvdev->caps = caps;
	rvdev->unbounded_refused = unbounded_refused;
	if (migratable) {
		rvdev->core_device.vdev.migration_flags = VMIG_FLAGS;
		rvdev->core_device.vdev.mig_ops = &refaccel_mig_ops;
		rvdev->hide_mig = true;
		/* log_ops only where the kernel can report (driver.rst) */
		if (!(caps & REFACCEL_CAP_DMA_DIRTY))
			dt_why = "the device has no DMA dirty tracker, no log_ops";
		else if (!IS_ENABLED(CONFIG_IOMMUFD_DRIVER))
			dt_why = "kernel lacks IOMMUFD_DRIVER, no log_ops";
		else
			rvdev->core_device.vdev.log_ops = &refaccel_log_ops;
	}

	dev_set_drvdata(&pdev->dev, &rvdev->core_device);
	ret = vfio_pci_core_register_device(&rvdev->core_device);
	if (ret) {
		vfio_put_device(&rvdev->core_device.vdev);
		return ret;
	}
	pci_info(pdev, "bound, SRAM %llu KiB, migration %s\n",
		 (unsigned long long)pci_resource_len(pdev, REFACCEL_BAR_SRAM) >> 10,
		 migratable ? "supported, BAR0 migration block hidden" : "not supported");
	if (migratable) {
		dev_info(&pdev->dev, "DMA dirty tracking: %s\n",
			 dt_why ?: "device tracker, log_ops registered");
		vmig_debugfs_init(&rvdev->mig, refaccel_debugfs_root);
	}
	return 0;
}

/* Any reset of the function returns the FSM to RUNNING and ends sessions. */
static void refaccel_reset_done(struct pci_dev *pdev)
{
	vmig_reset_done(&refaccel_drvdata(pdev)->mig);
}

static const struct pci_error_handlers refaccel_err_handlers = {
	.reset_done	= refaccel_reset_done,
	.error_detected	= vfio_pci_core_aer_err_detected,
};

static void refaccel_remove(struct pci_dev *pdev)
{
	struct refaccel_vfio_device *rvdev = refaccel_drvdata(pdev);

	vmig_debugfs_exit(&rvdev->mig);
	vfio_pci_core_unregister_device(&rvdev->core_device);
	vfio_put_device(&rvdev->core_device.vdev);
}

static const struct pci_device_id refaccel_pci_table[] = {
	/* Bound only through driver_override, like every vfio-pci variant. */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(REFACCEL_PCI_VENDOR_ID,
					  REFACCEL_PCI_DEVICE_ID) },
	{}
};
MODULE_DEVICE_TABLE(pci, refaccel_pci_table);

static struct pci_driver refaccel_pci_driver = {
	.name			= "refaccel-vfio-pci",
	.id_table		= refaccel_pci_table,
	.probe			= refaccel_probe,
	.remove			= refaccel_remove,
	.err_handler		= &refaccel_err_handlers,
	.dev_groups		= refaccel_dev_groups,
	.driver_managed_dma	= true,
};

static int __init refaccel_init(void)
{
	int ret;

	refaccel_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
	ret = pci_register_driver(&refaccel_pci_driver);
	if (ret)
		debugfs_remove_recursive(refaccel_debugfs_root);
	return ret;
}
module_init(refaccel_init);

static void __exit refaccel_exit(void)
{
	pci_unregister_driver(&refaccel_pci_driver);
	debugfs_remove_recursive(refaccel_debugfs_root);
}
module_exit(refaccel_exit);

MODULE_VERSION(REFACCEL_VFIO_VERSION);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio-pci variant driver with live migration for the reference accelerator");
