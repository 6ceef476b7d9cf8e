// SPDX-License-Identifier: GPL-2.0-only
/*
 * refaccel-vfio-pci: vfio-pci variant driver for the reference accelerator.
 *
 * This file holds the PCI and vfio_device glue: probe/remove, the
 * vfio_device_ops table and the open/close hooks.  Everything the variant
 * does not change is delegated to vfio_pci_core, so a function bound here
 * behaves exactly like one bound to stock vfio-pci until migration is used.
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "refaccel.h"

static int refaccel_open_device(struct vfio_device *core_vdev)
{
	struct refaccel_vfio_device *rvdev = to_refaccel_vdev(core_vdev);
	int ret;

	ret = vfio_pci_core_enable(&rvdev->core_device);
	if (ret)
		return ret;

	vfio_pci_core_finish_enable(&rvdev->core_device);
	return 0;
}

static const struct vfio_device_ops refaccel_vfio_ops = {
	.name		= "refaccel-vfio-pci",
	.init		= vfio_pci_core_init_dev,
	.release	= vfio_pci_core_release_dev,
	.open_device	= refaccel_open_device,
	.close_device	= vfio_pci_core_close_device,
	.ioctl		= vfio_pci_core_ioctl,
	.device_feature	= vfio_pci_core_ioctl_feature,
	.read		= vfio_pci_core_read,
	.write		= vfio_pci_core_write,
	.mmap		= vfio_pci_core_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
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

static int refaccel_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct refaccel_vfio_device *rvdev;
	int ret;

	ret = refaccel_check_bars(pdev);
	if (ret)
		return ret;

	rvdev = vfio_alloc_device(refaccel_vfio_device, core_device.vdev,
				  &pdev->dev, &refaccel_vfio_ops);
	if (IS_ERR(rvdev))
		return PTR_ERR(rvdev);

	dev_set_drvdata(&pdev->dev, &rvdev->core_device);
	ret = vfio_pci_core_register_device(&rvdev->core_device);
	if (ret) {
		vfio_put_device(&rvdev->core_device.vdev);
		return ret;
	}
	pci_info(pdev, "bound, SRAM %llu KiB\n",
		 (unsigned long long)pci_resource_len(pdev, REFACCEL_BAR_SRAM) >> 10);
	return 0;
}

static void refaccel_remove(struct pci_dev *pdev)
{
	struct refaccel_vfio_device *rvdev = refaccel_drvdata(pdev);

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
	.name			= KBUILD_MODNAME,
	.id_table		= refaccel_pci_table,
	.probe			= refaccel_probe,
	.remove			= refaccel_remove,
	.err_handler		= &vfio_pci_core_err_handlers,
	.driver_managed_dma	= true,
};
module_pci_driver(refaccel_pci_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio-pci variant driver with live migration for the reference accelerator");
