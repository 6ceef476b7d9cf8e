// SPDX-License-Identifier: GPL-2.0-only
/*
 * The user's view of BAR0: the migration block is not part of it.
 *
 * The migration block (the upper half of BAR0, 0x8000-0xffff: quiesce and
 * freeze control, the state window, the SRAM dirty bitmap and the DMA
 * dirty log) belongs to the driver.  A user who could reach it would defeat
 * migration silently: a read of a read-and-clear dirty register loses dirty
 * pages, a write to MIG_CTRL unquiesces a device the FSM calls RUNNING_P2P,
 * a write to the state window corrupts a save.  So the user's BAR0 is the
 * lower half only, as hisi_acc does with its migration registers:
 *
 *  - VFIO_DEVICE_GET_REGION_INFO reports BAR0 as REFACCEL_REGS_USER_SIZE
 *    bytes (a power of two, as VMMs require of a BAR), mmappable whole:
 *    libvfio and QEMU map a region that has the MMAP flag in one piece;
 *  - read(), write(), mmap() and VFIO_DEVICE_IOEVENTFD beyond that size
 *    fail with EINVAL, as they would past the end of any region;
 *  - the 7.x dma-buf export of BARs (VFIO_DEVICE_FEATURE_DMA_BUF) needs a
 *    get_dmabuf_phys op, which this driver does not provide: refused.
 *
 * What a user may see of the block (quiesce and freeze status, the format
 * and compatibility id) the device mirrors read-only in the lower half
 * (REFACCEL_MIG_MIRROR_OFFSET), so nothing here has to emulate registers.
 *
 * The MSI-X BAR (BAR4) holds nothing but the MSI-X table and PBA, which a
 * VMM emulates.  Reported mappable (vfio-pci's MSIX_MAPPABLE), QEMU 10.0
 * maps it and overlays its emulated table on part of a page; the mapped
 * remainder of that page is a sub-page RAM section that QEMU cannot
 * DMA-map and, with type1 dirty tracking, asks the kernel to report with
 * an unaligned size: VFIO_IOMMU_DIRTY_PAGES fails with EINVAL and the
 * migration with it (Documentation/qemu.rst).  Nothing in that BAR gains
 * from mmap, so it is reported, and handled, without it.
 *
 * A function without the migration block is plain vfio-pci: none of this
 * applies (refaccel_vfio_device.hide_mig is false).
 */

#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "compat.h"
#include "refaccel.h"

/* The user's BAR0: everything below the migration block. */
#define USER_BAR0_SIZE	REFACCEL_REGS_USER_SIZE
static_assert((USER_BAR0_SIZE & (USER_BAR0_SIZE - 1)) == 0);
static_assert(USER_BAR0_SIZE + REFACCEL_MIG_BLOCK_SIZE <= REFACCEL_REGS_SIZE);

static bool refaccel_bar0(struct refaccel_vfio_device *rv, unsigned int index)
{
	return rv->hide_mig && index == REFACCEL_BAR_REGS;
}

/*
 * The bytes of a user access of @count bytes at @pos that it may make: all
 * of them outside BAR0, those below the migration block in BAR0, and
 * -EINVAL for an access of BAR0 that starts at or above the block.
 */
static ssize_t refaccel_user_count(struct refaccel_vfio_device *rv,
				   loff_t pos, size_t count)
{
	u64 off = pos & VFIO_PCI_OFFSET_MASK;

	if (!refaccel_bar0(rv, VFIO_PCI_OFFSET_TO_INDEX(pos)))
		return count;
	if (off >= USER_BAR0_SIZE) {
		dev_dbg_ratelimited(&rv->core_device.pdev->dev,
				    "BAR0 access at %#llx refused: beyond the user's %#x bytes\n",
				    off, USER_BAR0_SIZE);
		return -EINVAL;
	}
	return min_t(u64, count, USER_BAR0_SIZE - off);
}

ssize_t refaccel_read(struct vfio_device *core_vdev, char __user *buf,
		      size_t count, loff_t *ppos)
{
	ssize_t n = refaccel_user_count(to_refaccel_vdev(core_vdev), *ppos,
					count);

	return n < 0 ? n : vfio_pci_core_read(core_vdev, buf, n, ppos);
}

ssize_t refaccel_write(struct vfio_device *core_vdev, const char __user *buf,
		       size_t count, loff_t *ppos)
{
	ssize_t n = refaccel_user_count(to_refaccel_vdev(core_vdev), *ppos,
					count);

	return n < 0 ? n : vfio_pci_core_write(core_vdev, buf, n, ppos);
}

int refaccel_mmap(struct vfio_device *core_vdev, struct vm_area_struct *vma)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);
	u64 pgoff_mask = (1ULL << (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT)) - 1;
	unsigned int index;
	u64 start, len;

	index = vma->vm_pgoff >> (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT);
	if (refaccel_bar0(rv, index)) {
		start = (u64)(vma->vm_pgoff & pgoff_mask) << PAGE_SHIFT;
		len = vma->vm_end - vma->vm_start;
		if (start >= USER_BAR0_SIZE || len > USER_BAR0_SIZE - start) {
			dev_dbg(&rv->core_device.pdev->dev,
				"mmap of BAR0 %#llx+%#llx refused: beyond the user's %#x bytes\n",
				start, len, USER_BAR0_SIZE);
			return -EINVAL;
		}
	}
	if (rv->hide_mig && index == REFACCEL_BAR_MSIX)
		return -EINVAL;
	return vfio_pci_core_mmap(core_vdev, vma);
}

/*
 * VFIO_DEVICE_IOEVENTFD: vfio-pci checks the range against the BAR's real
 * length, so one on BAR0 above the user's part would write the migration
 * block (unfreeze in STOP, drop dirty pages).  Refuse it as out of range.
 */
static long refaccel_ioeventfd(struct refaccel_vfio_device *rv,
			       struct vfio_device_ioeventfd __user *arg,
			       unsigned long uarg)
{
	unsigned long minsz = offsetofend(struct vfio_device_ioeventfd, fd);
	struct vfio_device_ioeventfd ioeventfd;
	u64 off;
	u32 size;

	if (copy_from_user(&ioeventfd, arg, minsz))
		return -EFAULT;
	if (ioeventfd.argsz < minsz)
		return -EINVAL;
	if (refaccel_bar0(rv, VFIO_PCI_OFFSET_TO_INDEX(ioeventfd.offset))) {
		off = ioeventfd.offset & VFIO_PCI_OFFSET_MASK;
		/* the size flags are the byte counts 1, 2, 4 and 8 */
		size = ioeventfd.flags & VFIO_DEVICE_IOEVENTFD_SIZE_MASK;
		if (off >= USER_BAR0_SIZE || size > USER_BAR0_SIZE - off) {
			dev_dbg(&rv->core_device.pdev->dev,
				"ioeventfd on BAR0 %#llx refused: beyond the user's %#x bytes\n",
				off, USER_BAR0_SIZE);
			return -EINVAL;
		}
	}
	return vfio_pci_core_ioctl(&rv->core_device.vdev,
				   VFIO_DEVICE_IOEVENTFD, uarg);
}

/* The MSI-X BAR's region info: read/write only, no mmap (see the top). */
static void refaccel_msix_bar_info(struct refaccel_vfio_device *rv,
				   struct vfio_region_info *info)
{
	info->offset = VFIO_PCI_INDEX_TO_OFFSET(REFACCEL_BAR_MSIX);
	info->size = pci_resource_len(rv->core_device.pdev, REFACCEL_BAR_MSIX);
	info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
}

/* BAR0's region info: its lower half, mappable whole (see the top). */
static void refaccel_bar0_info(struct refaccel_vfio_device *rv,
			       struct vfio_region_info *info)
{
	info->offset = VFIO_PCI_INDEX_TO_OFFSET(REFACCEL_BAR_REGS);
	info->size = USER_BAR0_SIZE;
	info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	/* with pages above 32 KiB, a page would take in the block */
	if (rv->core_device.bar_mmap_supported[REFACCEL_BAR_REGS] &&
	    USER_BAR0_SIZE >= PAGE_SIZE)
		info->flags |= VFIO_REGION_INFO_FLAG_MMAP;
}

/*
 * The region info of the BARs this driver changes (no capabilities: none
 * of them has a sparse or MSI-X mmap part); -ENOTTY for every other
 * region, whose answer is vfio-pci's.
 */
static int refaccel_own_region_info(struct refaccel_vfio_device *rv,
				    struct vfio_region_info *info)
{
	if (!rv->hide_mig)
		return -ENOTTY;
	switch (info->index) {
	case REFACCEL_BAR_REGS:
		refaccel_bar0_info(rv, info);
		return 0;
	case REFACCEL_BAR_MSIX:
		refaccel_msix_bar_info(rv, info);
		return 0;
	default:
		return -ENOTTY;
	}
}

/* The vfio core's region info op (kernels that have it, see compat.h). */
int refaccel_get_region_info_caps(struct vfio_device *core_vdev,
				  struct vfio_region_info *info,
				  struct vfio_info_cap *caps)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);
	int ret = refaccel_own_region_info(rv, info);

	if (ret != -ENOTTY)
		return ret;
	return refaccel_compat_core_region_info(core_vdev, info, caps);
}

/*
 * VFIO_DEVICE_GET_REGION_INFO where the driver's ioctl op answers it
 * (6.12): the user copies newer cores do around the region info op.
 */
static long refaccel_ioctl_region_info(struct refaccel_vfio_device *rv,
				       struct vfio_region_info __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info info;
	int ret;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	ret = refaccel_own_region_info(rv, &info);
	if (ret == -ENOTTY)
		return vfio_pci_core_ioctl(&rv->core_device.vdev,
					   VFIO_DEVICE_GET_REGION_INFO,
					   (unsigned long)arg);
	if (ret)
		return ret;
	info.cap_offset = 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

long refaccel_ioctl(struct vfio_device *core_vdev, unsigned int cmd,
		    unsigned long arg)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);

	switch (cmd) {
	case VFIO_DEVICE_GET_REGION_INFO:
		if (REFACCEL_CORE_REGION_INFO_OP)
			break;
		return refaccel_ioctl_region_info(rv, (void __user *)arg);
	case VFIO_DEVICE_IOEVENTFD:
		return refaccel_ioeventfd(rv, (void __user *)arg, arg);
	}
	return vfio_pci_core_ioctl(core_vdev, cmd, arg);
}
