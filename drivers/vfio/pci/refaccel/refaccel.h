/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private definitions of the refaccel-vfio-pci variant driver.
 */
#ifndef REFACCEL_VFIO_H
#define REFACCEL_VFIO_H

#include <linux/pci.h>
#include <linux/vfio_pci_core.h>

#include <hw/refaccel_regs.h>

#include "mig.h"

/**
 * struct refaccel_vfio_device - one bound refaccel function
 * @core_device: the vfio_pci_core device; must stay first (vfio_alloc_device)
 * @mig: migration core state
 * @regs: BAR0 mapping (valid while open)
 * @sram: BAR2 mapping (valid while open)
 * @sram_size: bytes of SRAM
 * @sram_pgsize: SRAM dirty tracking granularity
 * @hide_mig: the function has the migration block, and it is hidden from
 *	the user (regions.c); set at probe, constant afterwards
 * @dt_pgshift: page shift the DMA dirty tracker was started with
 * @caps: the CAPS register as read at probe
 * @unbounded_refused: migration not offered only because the quiesce may
 *	never end (no allow_unbounded_quiesce); the quiesce feature says so
 */
struct refaccel_vfio_device {
	struct vfio_pci_core_device core_device;
	struct vmig_device mig;
	void __iomem *regs;
	void __iomem *sram;
	u32 sram_size;
	u32 sram_pgsize;
	bool hide_mig;
	unsigned int dt_pgshift;
	u32 caps;
	bool unbounded_refused;
};

extern const struct vmig_dev_ops refaccel_vmig_ops;

/* CAPS bits without which the function cannot migrate. */
static inline bool refaccel_caps_migratable(u32 caps)
{
	const u32 need = REFACCEL_CAP_MIGRATION | REFACCEL_CAP_SRAM_DIRTY;

	return (caps & need) == need;
}

/* ops_refaccel.c: the page request block, for the quiesce flags */
bool refaccel_pri_enabled(struct refaccel_vfio_device *rv);

/* feature.c: the driver-private quiesce controls */
int refaccel_device_feature(struct vfio_device *core_vdev, u32 flags,
			    void __user *arg, size_t argsz);
extern const struct attribute_group *refaccel_dev_groups[];

/* regions.c: BAR0 as the user sees it */
ssize_t refaccel_read(struct vfio_device *core_vdev, char __user *buf,
		      size_t count, loff_t *ppos);
ssize_t refaccel_write(struct vfio_device *core_vdev, const char __user *buf,
		       size_t count, loff_t *ppos);
int refaccel_mmap(struct vfio_device *core_vdev, struct vm_area_struct *vma);
long refaccel_ioctl(struct vfio_device *core_vdev, unsigned int cmd,
		    unsigned long arg);
int refaccel_get_region_info_caps(struct vfio_device *core_vdev,
				  struct vfio_region_info *info,
				  struct vfio_info_cap *caps);

static inline struct refaccel_vfio_device *
to_refaccel_vdev(struct vfio_device *core_vdev)
{
	return container_of(core_vdev, struct refaccel_vfio_device,
			    core_device.vdev);
}

static inline struct refaccel_vfio_device *refaccel_drvdata(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	return container_of(core, struct refaccel_vfio_device, core_device);
}

#endif /* REFACCEL_VFIO_H */
