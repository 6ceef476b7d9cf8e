/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel API differences between the kernels this module builds for:
 * Debian's 6.12 (bookworm-security, the stock lane) and 7.3
 * (trixie-backports, the own-kernel lane).  Every entry names the kernel
 * that changed what; the .c files use only the names defined here, so no
 * kernel difference is handled anywhere else.  Where a version number
 * would be a guess, the Kbuild probes the kernel's headers instead.
 */
#ifndef REFACCEL_COMPAT_H
#define REFACCEL_COMPAT_H

#include <linux/err.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/vfio_pci_core.h>

/*
 * 6.13 made the symbol namespace of MODULE_IMPORT_NS() a string literal
 * (MODULE_IMPORT_NS("NS")); up to 6.12 it was a bare name the macro
 * stringified.  Both expand to the same modinfo tag, which this writes
 * directly: the IOMMUFD namespace holds iova_bitmap_set().
 */
#define REFACCEL_IMPORT_NS_IOMMUFD()	MODULE_INFO(import_ns, "IOMMUFD")

/* 6.16 renamed from_timer() to timer_container_of() (and removed the old). */
#ifndef timer_container_of
#define timer_container_of(var, t, field)	from_timer(var, t, field)
#endif

/*
 * The typed allocators (kzalloc_obj() and friends) came after 6.12; 7.3's
 * checkpatch asks for them.  The 6.12 fallback takes the same arguments.
 */
#ifndef kzalloc_obj
#define kzalloc_obj(P, gfp)	kzalloc(sizeof(P), gfp)
#endif

/*
 * The driver's own kernel mapping of a BAR, valid between
 * vfio_pci_core_enable() and vfio_pci_core_disable().  Up to 6.12 a driver
 * asks vfio_pci_core_setup_barmap() to map the BAR on first use; the 7.x
 * core maps every BAR at enable and vfio_pci_core_get_iomap() returns that
 * mapping (the setup call is gone).  REFACCEL_HAVE_PCI_CORE_GET_IOMAP is
 * the Kbuild's probe of <linux/vfio_pci_core.h> for the 7.x call.  Returns
 * an ERR_PTR on failure.
 */
static inline void __iomem *
refaccel_compat_bar_iomap(struct vfio_pci_core_device *vdev, unsigned int bar)
{
#ifdef REFACCEL_HAVE_PCI_CORE_GET_IOMAP
	return vfio_pci_core_get_iomap(vdev, bar);
#else
	int ret = vfio_pci_core_setup_barmap(vdev, bar);

	return ret ? IOMEM_ERR_PTR(ret) : vdev->barmap[bar];
#endif
}

/*
 * VFIO_DEVICE_GET_REGION_INFO: up to 6.12 it is one of the driver's ioctls;
 * the 7.x core answers it itself through the get_region_info_caps op (and
 * no longer passes it to the ioctl op), with vfio-pci's answer exported as
 * vfio_pci_ioctl_get_region_info().  REFACCEL_OPS_REGION_INFO is the
 * driver's entry for its vfio_device_ops, empty where the op does not
 * exist.  REFACCEL_HAVE_REGION_INFO_OP is the Kbuild's probe of
 * <linux/vfio.h> for the op.
 */
#ifdef REFACCEL_HAVE_REGION_INFO_OP
#define REFACCEL_CORE_REGION_INFO_OP		true
#define REFACCEL_OPS_REGION_INFO \
	.get_region_info_caps = refaccel_get_region_info_caps,

static inline int
refaccel_compat_core_region_info(struct vfio_device *core_vdev,
				 struct vfio_region_info *info,
				 struct vfio_info_cap *caps)
{
	return vfio_pci_ioctl_get_region_info(core_vdev, info, caps);
}
#else
#define REFACCEL_CORE_REGION_INFO_OP		false
#define REFACCEL_OPS_REGION_INFO

/* Not reached: without the op the core never asks the driver. */
static inline int
refaccel_compat_core_region_info(struct vfio_device *core_vdev,
				 struct vfio_region_info *info,
				 struct vfio_info_cap *caps)
{
	return -ENOTTY;
}
#endif

/*
 * match_token_uuid (6.17): the VF token check became a device op, which
 * vfio_pci_core_match() (the group path's VFIO_GROUP_GET_DEVICE_FD) calls
 * unchecked: a driver without it oopses on the first group open.
 * REFACCEL_OPS_MATCH_TOKEN is empty where the op does not exist.
 * REFACCEL_HAVE_MATCH_TOKEN_UUID_OP is the Kbuild's probe of <linux/vfio.h>.
 */
#ifdef REFACCEL_HAVE_MATCH_TOKEN_UUID_OP
#define REFACCEL_OPS_MATCH_TOKEN \
	.match_token_uuid = vfio_pci_core_match_token_uuid,
#else
#define REFACCEL_OPS_MATCH_TOKEN
#endif

/*
 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (7.x): the user's opt-in to the
 * VFIO_PRECOPY_INFO_REINIT flag of VFIO_MIG_GET_PRECOPY_INFO.  The 7.x core
 * handles the feature itself and keeps the opt-in in vfio_device until the
 * close; before, the feature reaches the driver's device_feature op, and
 * the driver keeps it (vmig_device.precopy_v2).  The numbers are uAPI, the
 * same on both; the feature's is named here without 7.x's lower-case v.
 * REFACCEL_HAVE_CORE_PRECOPY_INFO_V2 is the Kbuild's probe of
 * <linux/vfio.h>.
 */
#define REFACCEL_FEATURE_MIG_PRECOPY_INFO_V2	12
#ifndef VFIO_PRECOPY_INFO_REINIT
#define VFIO_PRECOPY_INFO_REINIT		BIT(0)
#endif

static inline bool
refaccel_compat_core_precopy_v2(const struct vfio_device *vdev)
{
#ifdef REFACCEL_HAVE_CORE_PRECOPY_INFO_V2
	return READ_ONCE(vdev->precopy_info_v2);
#else
	return false;
#endif
}

#endif /* REFACCEL_COMPAT_H */
