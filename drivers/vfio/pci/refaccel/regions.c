// SPDX-License-Identifier: GPL-2.0-only
/*
 * The user's view of BAR0: the migration block is not part of it.
 *
 * The migration block (BAR0 0x1000-0x1fff: quiesce and freeze control, the
 * state window, the SRAM dirty bitmap and the other tracking and page
 * request logs) belongs to the driver.  A user who could reach it would
 * defeat migration silently: a read of a read-and-clear dirty register
 * loses dirty pages, a write to MIG_CTRL unquiesces a device the FSM calls
 * RUNNING_P2P, a write to the state window corrupts a save.  So:
 *
 *  - mmap never covers the block: VFIO_DEVICE_GET_REGION_INFO reports BAR0
 *    with a sparse mmap capability of the areas around it, and an mmap
 *    request that overlaps it fails;
 *  - read()/write() of the region are trapped there: writes are dropped,
 *    reads return the identity and status registers, which have no side
 *    effect (so a user can see whether the device is quiesced), and zero
 *    for everything else.
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

#include "refaccel.h"

#define HIDE_START	REFACCEL_MIG_BLOCK_OFFSET
#define HIDE_END	(REFACCEL_MIG_BLOCK_OFFSET + REFACCEL_MIG_BLOCK_SIZE)

/* The mmappable areas of BAR0: page aligned, around the hidden block. */
#define MAP_LOW_END	ALIGN_DOWN(HIDE_START, PAGE_SIZE)
#define MAP_HIGH_START	ALIGN(HIDE_END, PAGE_SIZE)

static bool refaccel_bar0(struct refaccel_vfio_device *rv, unsigned int index)
{
	return rv->hide_mig && index == REFACCEL_BAR_REGS;
}

/* Hidden registers a read may see: no side effect, nothing secret. */
static bool refaccel_reg_visible(u32 reg)
{
	switch (reg) {
	case REFACCEL_REG_MIG_CTRL:
	case REFACCEL_REG_MIG_STATUS:
	case REFACCEL_REG_MIG_ERR:
	case REFACCEL_REG_MIG_FORMAT:
	case REFACCEL_REG_MIG_COMPAT_ID:
	case REFACCEL_REG_MIG_STATE_MAX:
	case REFACCEL_REG_MIG_PARKED:
	case REFACCEL_REG_SRAM_DIRTY_CTRL:
	case REFACCEL_REG_SRAM_DIRTY_PGSIZE:
		return true;
	default:
		return false;
	}
}

/* A user read of @len bytes at @off, all inside the hidden block. */
static int refaccel_hidden_read(struct refaccel_vfio_device *rv, u64 off,
				char __user *buf, size_t len)
{
	struct vfio_device *vdev = &rv->core_device.vdev;
	loff_t pos;
	ssize_t n;

	/* Only whole, aligned dwords of a visible register are passed on. */
	if (len == 4 && IS_ALIGNED(off, 4) && refaccel_reg_visible(off)) {
		pos = VFIO_PCI_INDEX_TO_OFFSET(REFACCEL_BAR_REGS) + off;
		n = vfio_pci_core_read(vdev, buf, 4, &pos);
		return n < 0 ? n : 0;
	}
	return clear_user(buf, len) ? -EFAULT : 0;
}

static ssize_t refaccel_bar0_rw(struct refaccel_vfio_device *rv,
				char __user *buf, size_t count, loff_t *ppos,
				bool iswrite)
{
	struct vfio_device *vdev = &rv->core_device.vdev;
	u64 off = *ppos & VFIO_PCI_OFFSET_MASK;
	size_t done = 0, n;
	loff_t pos;
	ssize_t ret;
	int err;

	while (done < count) {
		if (off >= HIDE_START && off < HIDE_END) {
			n = min_t(u64, count - done, HIDE_END - off);
			if (!iswrite) {
				err = refaccel_hidden_read(rv, off, buf + done, n);
				if (err)
					return done ? done : err;
			} else {
				dev_dbg_ratelimited(&rv->core_device.pdev->dev,
						    "user write to hidden BAR0 %#llx dropped\n",
						    off);
			}
		} else {
			n = count - done;
			if (off < HIDE_START)
				n = min_t(u64, n, HIDE_START - off);
			pos = *ppos + done;
			ret = iswrite ?
			      vfio_pci_core_write(vdev, (const char __user *)buf + done,
						  n, &pos) :
			      vfio_pci_core_read(vdev, buf + done, n, &pos);
			if (ret <= 0)
				return done ? done : ret;
			n = ret;
		}
		done += n;
		off += n;
	}
	*ppos += done;
	return done;
}

ssize_t refaccel_read(struct vfio_device *core_vdev, char __user *buf,
		      size_t count, loff_t *ppos)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);

	if (refaccel_bar0(rv, VFIO_PCI_OFFSET_TO_INDEX(*ppos)))
		return refaccel_bar0_rw(rv, buf, count, ppos, false);
	return vfio_pci_core_read(core_vdev, buf, count, ppos);
}

ssize_t refaccel_write(struct vfio_device *core_vdev, const char __user *buf,
		       size_t count, loff_t *ppos)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);

	if (refaccel_bar0(rv, VFIO_PCI_OFFSET_TO_INDEX(*ppos)))
		return refaccel_bar0_rw(rv, (char __user *)buf, count, ppos,
					true);
	return vfio_pci_core_write(core_vdev, buf, count, ppos);
}

int refaccel_mmap(struct vfio_device *core_vdev, struct vm_area_struct *vma)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);
	unsigned int index;
	u64 start, len;

	index = vma->vm_pgoff >> (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT);
	if (refaccel_bar0(rv, index)) {
		start = (u64)(vma->vm_pgoff &
			      ((1ULL << (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT)) - 1)) <<
			PAGE_SHIFT;
		len = vma->vm_end - vma->vm_start;
		if (start < MAP_HIGH_START && start + len > MAP_LOW_END) {
			dev_dbg(&rv->core_device.pdev->dev,
				"mmap of BAR0 %#llx+%#llx refused: covers the migration block\n",
				start, len);
			return -EINVAL;
		}
	}
	if (rv->hide_mig && index == REFACCEL_BAR_MSIX)
		return -EINVAL;
	return vfio_pci_core_mmap(core_vdev, vma);
}

/* The MSI-X BAR's region info: read/write only, no mmap (see the top). */
static int refaccel_msix_bar_info(struct refaccel_vfio_device *rv,
				  struct vfio_region_info __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	info.offset = VFIO_PCI_INDEX_TO_OFFSET(REFACCEL_BAR_MSIX);
	info.size = pci_resource_len(rv->core_device.pdev, REFACCEL_BAR_MSIX);
	info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	info.cap_offset = 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/* BAR0's region info: mmappable only around the migration block. */
static int refaccel_bar0_info(struct refaccel_vfio_device *rv,
			      struct vfio_region_info __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct pci_dev *pdev = rv->core_device.pdev;
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct vfio_region_info_cap_sparse_mmap *sparse;
	struct vfio_region_info info;
	u64 bar_len = pci_resource_len(pdev, REFACCEL_BAR_REGS);
	unsigned int nr = 0;
	size_t size;
	int ret;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	info.offset = VFIO_PCI_INDEX_TO_OFFSET(REFACCEL_BAR_REGS);
	info.size = bar_len;
	info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

	if (rv->core_device.bar_mmap_supported[REFACCEL_BAR_REGS]) {
		size = struct_size(sparse, areas, 2);
		sparse = kzalloc(size, GFP_KERNEL);
		if (!sparse)
			return -ENOMEM;
		if (MAP_LOW_END) {
			sparse->areas[nr].offset = 0;
			sparse->areas[nr++].size = MAP_LOW_END;
		}
		if (bar_len > MAP_HIGH_START) {
			sparse->areas[nr].offset = MAP_HIGH_START;
			sparse->areas[nr++].size = bar_len - MAP_HIGH_START;
		}
		sparse->nr_areas = nr;
		sparse->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
		sparse->header.version = 1;
		ret = vfio_info_add_capability(&caps, &sparse->header,
					       struct_size(sparse, areas, nr));
		kfree(sparse);
		if (ret)
			return ret;
		info.flags |= VFIO_REGION_INFO_FLAG_MMAP |
			      VFIO_REGION_INFO_FLAG_CAPS;
		if (info.argsz < sizeof(info) + caps.size) {
			info.argsz = sizeof(info) + caps.size;
			info.cap_offset = 0;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user(arg + 1, caps.buf, caps.size)) {
				kfree(caps.buf);
				return -EFAULT;
			}
			info.cap_offset = sizeof(*arg);
		}
		kfree(caps.buf);
	}
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

long refaccel_ioctl(struct vfio_device *core_vdev, unsigned int cmd,
		    unsigned long arg)
{
	struct refaccel_vfio_device *rv = to_refaccel_vdev(core_vdev);
	struct vfio_region_info __user *uinfo = (void __user *)arg;
	u32 index;

	if (cmd == VFIO_DEVICE_GET_REGION_INFO && rv->hide_mig) {
		if (get_user(index, &uinfo->index))
			return -EFAULT;
		if (index == REFACCEL_BAR_REGS)
			return refaccel_bar0_info(rv, uinfo);
		if (index == REFACCEL_BAR_MSIX)
			return refaccel_msix_bar_info(rv, uinfo);
	}
	return vfio_pci_core_ioctl(core_vdev, cmd, arg);
}
