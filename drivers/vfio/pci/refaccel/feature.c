// SPDX-License-Identifier: GPL-2.0-only
/*
 * The driver-private controls of the quiesce: the VFIO_DEVICE_FEATURE
 * REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE (include/uapi/linux/refaccel_vfio.h)
 * for the user of an open device, and the sysfs attribute
 * quiesce_timeout_ms for the administrator (the default of each open);
 * and, where the vfio core leaves it to the driver (before 7.x), the
 * opt-in VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2.  Every other feature goes
 * to vfio_pci_core.
 */

#include <linux/pci.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include <uapi/linux/refaccel_vfio.h>

#include "compat.h"
#include "refaccel.h"

static u32 refaccel_quiesce_flags(struct refaccel_vfio_device *rvdev)
{
	u32 flags = 0;

	/* migration is offered for such a device only after the opt-in */
	if (rvdev->caps & REFACCEL_CAP_QUIESCE_UNBOUNDED)
		flags |= REFACCEL_QUIESCE_F_UNBOUNDED | REFACCEL_QUIESCE_F_OPTED_IN;
	else
		flags |= REFACCEL_QUIESCE_F_PARK;
	/* every quiesce withdraws the device's page requests (ABORT_PRI) */
	if (rvdev->caps & REFACCEL_CAP_PRI)
		flags |= REFACCEL_QUIESCE_F_PRI_ABORT;
	/*
	 * The device's page requests are governed by its own block (vfio-pci
	 * lets no user write the PRI capability); that is what "enabled" is.
	 */
	if (refaccel_pri_enabled(rvdev))
		flags |= REFACCEL_QUIESCE_F_PRI_ENABLED;
	return flags;
}

static u32 refaccel_quiesce_result(const struct vmig_quiesce_stat *last)
{
	if (!last->done)
		return REFACCEL_QUIESCE_NONE;
	switch (last->err) {
	case 0:
		return REFACCEL_QUIESCE_OK;
	case -ETIMEDOUT:
		return REFACCEL_QUIESCE_TIMEDOUT;
	case -EINTR:
		return REFACCEL_QUIESCE_KILLED;
	default:
		return REFACCEL_QUIESCE_FAILED;
	}
}

static int refaccel_feature_quiesce(struct refaccel_vfio_device *rvdev,
				    u32 flags, void __user *arg, size_t argsz)
{
	struct refaccel_vfio_quiesce q;
	struct vmig_quiesce_stat last;
	unsigned int timeout_ms;
	bool park;
	int ret;

	/*
	 * Only a function that migrates has a quiesce to control.  One that
	 * was refused migration for its unbounded quiesce answers GET, so
	 * that a VMM can tell why it has no migration.
	 */
	if (!rvdev->core_device.vdev.mig_ops || !rvdev->mig.usable) {
		if (!rvdev->unbounded_refused)
			return -ENOTTY;
		ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET,
					 sizeof(q));
		if (ret != 1)
			return ret;
		q = (struct refaccel_vfio_quiesce){
			.flags = REFACCEL_QUIESCE_F_UNBOUNDED,
		};
		return copy_to_user(arg, &q, sizeof(q)) ? -EFAULT : 0;
	}
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET |
				 VFIO_DEVICE_FEATURE_SET, sizeof(q));
	if (ret != 1)
		return ret;

	if (flags & VFIO_DEVICE_FEATURE_SET) {
		if (copy_from_user(&q, arg, sizeof(q)))
			return -EFAULT;
		/*
		 * What only GET fills is ignored, so that GET, a change and
		 * SET works; a flag no GET can report is someone's mistake.
		 */
		if (q.flags & ~REFACCEL_QUIESCE_F_ALL)
			return -EINVAL;
		if (q.timeout_ms < REFACCEL_QUIESCE_TIMEOUT_MIN_MS ||
		    q.timeout_ms > REFACCEL_QUIESCE_TIMEOUT_MAX_MS)
			return -EINVAL;
		if (q.mode != REFACCEL_QUIESCE_MODE_DRAIN &&
		    q.mode != REFACCEL_QUIESCE_MODE_PARK)
			return -EINVAL;
		vmig_set_quiesce(&rvdev->mig, q.timeout_ms,
				 q.mode == REFACCEL_QUIESCE_MODE_PARK);
		return 0;
	}

	vmig_get_quiesce(&rvdev->mig, &timeout_ms, &park, &last);
	q = (struct refaccel_vfio_quiesce){
		.timeout_ms = timeout_ms,
		.flags = refaccel_quiesce_flags(rvdev),
		.last_result = refaccel_quiesce_result(&last),
		.last_us = last.us,
		.last_in_flight = last.in_flight,
		.mode = park ? REFACCEL_QUIESCE_MODE_PARK :
			       REFACCEL_QUIESCE_MODE_DRAIN,
	};
	return copy_to_user(arg, &q, sizeof(q)) ? -EFAULT : 0;
}

int refaccel_device_feature(struct vfio_device *core_vdev, u32 flags,
			    void __user *arg, size_t argsz)
{
	struct refaccel_vfio_device *rvdev = to_refaccel_vdev(core_vdev);

	switch (flags & VFIO_DEVICE_FEATURE_MASK) {
	case REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE:
		return refaccel_feature_quiesce(rvdev, flags, arg, argsz);
	case REFACCEL_FEATURE_MIG_PRECOPY_INFO_V2:
		/* only before 7.x: the 7.x core answers it itself */
		if (!core_vdev->mig_ops)
			return -EINVAL;
		return vmig_feature_precopy_v2(&rvdev->mig, flags, argsz);
	}
	return vfio_pci_core_ioctl_feature(core_vdev, flags, arg, argsz);
}

/* ---- sysfs: the device's default bound, applied at each open ---- */

static ssize_t quiesce_timeout_ms_show(struct device *dev,
				       struct device_attribute *attr,
				       char *buf)
{
	struct refaccel_vfio_device *rvdev = refaccel_drvdata(to_pci_dev(dev));

	return sysfs_emit(buf, "%u\n", READ_ONCE(rvdev->mig.quiesce_default_ms));
}

static ssize_t quiesce_timeout_ms_store(struct device *dev,
					struct device_attribute *attr,
					const char *buf, size_t count)
{
	struct refaccel_vfio_device *rvdev = refaccel_drvdata(to_pci_dev(dev));
	unsigned int ms;
	int ret;

	ret = kstrtouint(buf, 0, &ms);
	if (ret)
		return ret;
	if (ms < REFACCEL_QUIESCE_TIMEOUT_MIN_MS ||
	    ms > REFACCEL_QUIESCE_TIMEOUT_MAX_MS)
		return -EINVAL;
	WRITE_ONCE(rvdev->mig.quiesce_default_ms, ms);
	return count;
}
static DEVICE_ATTR_RW(quiesce_timeout_ms);

static struct attribute *refaccel_attrs[] = {
	&dev_attr_quiesce_timeout_ms.attr,
	NULL,
};

static const struct attribute_group refaccel_attr_group = {
	.attrs = refaccel_attrs,
};

const struct attribute_group *refaccel_dev_groups[] = {
	&refaccel_attr_group,
	NULL,
};
