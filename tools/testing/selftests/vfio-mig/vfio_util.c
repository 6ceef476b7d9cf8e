// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_util - a small userspace VFIO library for the vfio-mig kselftests.
 * See vfio_util.h for the model.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "vfio_util.h"

#define SYSFS_PCI	"/sys/bus/pci/devices"

static long page_size(void)
{
	static long ps;

	if (!ps)
		ps = sysconf(_SC_PAGESIZE);
	return ps > 0 ? ps : 4096;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

uint64_t vu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *vu_backend_name(enum vu_backend b)
{
	switch (b) {
	case VU_BACKEND_CONTAINER:
		return "container";
	case VU_BACKEND_IOMMUFD:
		return "iommufd";
	}
	return "?";
}

enum vu_backend vu_backend_from_env(void)
{
	const char *s = getenv("VFIO_MIG_BACKEND");

	if (s && !strcmp(s, "iommufd"))
		return VU_BACKEND_IOMMUFD;
	return VU_BACKEND_CONTAINER;
}

/* ------------------------------------------------------------------ */
/* sysfs                                                               */
/* ------------------------------------------------------------------ */

int vu_bdf_normalize(const char *in, char *out, size_t len)
{
	unsigned int dom = 0, bus, dev, fn;
	size_t l = strlen(in);
	int n = -1;

	/* only hex digits, ':' and '.'; sscanf's %x would take "0x" too */
	if (!l || strspn(in, "0123456789abcdefABCDEF:.") != l)
		return -EINVAL;
	if (sscanf(in, "%x:%x:%x.%x%n", &dom, &bus, &dev, &fn, &n) == 4 &&
	    n == (int)l) {
		/* full form */
	} else if (n = -1, dom = 0,
		   sscanf(in, "%x:%x.%x%n", &bus, &dev, &fn, &n) == 3 &&
		   n == (int)l) {
		/* no domain */
	} else {
		return -EINVAL;
	}
	if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7)
		return -EINVAL;
	if ((size_t)snprintf(out, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn) >=
	    len)
		return -ENAMETOOLONG;
	return 0;
}

static int read_link_base(const char *path, char *buf, size_t len)
{
	char link[PATH_MAX];
	ssize_t n;
	const char *base;

	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

int vu_pci_driver(const char *bdf, char *buf, size_t len)
{
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver", bdf);
	ret = read_link_base(path, buf, len);
	if (ret == -ENOENT) {
		snprintf(path, sizeof(path), SYSFS_PCI "/%s", bdf);
		if (access(path, F_OK))
			return -ENOENT;
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return ret;
}

int vu_pci_iommu_group(const char *bdf)
{
	char path[PATH_MAX], name[64];
	char *end;
	long num;
	int ret;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/iommu_group", bdf);
	ret = read_link_base(path, name, sizeof(name));
	if (ret) {
		vu_log("%s: no iommu_group (%s); is the IOMMU on (intel_iommu=on)?",
		       bdf, strerror(-ret));
		return ret == -ENOENT ? -ENODEV : ret;
	}
	num = strtol(name, &end, 10);
	if (*end || num < 0 || num > INT_MAX)
		return -EINVAL;
	return (int)num;
}

int vu_pci_read_id(const char *bdf, const char *attr, uint32_t *val)
{
	char path[PATH_MAX], buf[32];
	unsigned long v;
	char *end;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", bdf, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	v = strtoul(buf, &end, 16);
	if (end == buf)
		return -EINVAL;
	*val = (uint32_t)v;
	return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

int vu_pci_find(uint16_t vendor, uint16_t device, const char *const *drivers,
		char (*bdfs)[VU_BDF_LEN], int max)
{
	struct dirent *de;
	int found = 0;
	DIR *dir;

	dir = opendir(SYSFS_PCI);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		uint32_t v, d;
		char drv[64];
		bool ok;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= VU_BDF_LEN)
			continue;
		if (vu_pci_read_id(de->d_name, "vendor", &v) ||
		    vu_pci_read_id(de->d_name, "device", &d))
			continue;
		if (v != vendor || d != device)
			continue;
		if (vu_pci_driver(de->d_name, drv, sizeof(drv)))
			continue;
		ok = !drivers;
		for (int i = 0; drivers && drivers[i]; i++)
			if (!strcmp(drv, drivers[i]))
				ok = true;
		if (!ok)
			continue;
		if (found < max)
			strcpy(bdfs[found], de->d_name);
		found++;
	}
	closedir(dir);
	qsort(bdfs, found < max ? found : max, VU_BDF_LEN, cmp_bdf);
	return found;
}

/* ------------------------------------------------------------------ */
/* container backend                                                   */
/* ------------------------------------------------------------------ */

static int container_init(struct vu_iommu *iommu)
{
	int fd, ret;

	fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		vu_log("open /dev/vfio/vfio: %s (vfio module loaded?)",
		       strerror(errno));
		return ret;
	}
	ret = ioctl(fd, VFIO_GET_API_VERSION);
	if (ret != VFIO_API_VERSION) {
		vu_log("VFIO_GET_API_VERSION: %d, want %d", ret,
		       VFIO_API_VERSION);
		close(fd);
		return -EPROTO;
	}
	ret = ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	if (ret <= 0) {
		vu_log("container lacks VFIO_TYPE1v2_IOMMU (vfio_iommu_type1 loaded?)");
		close(fd);
		return -EOPNOTSUPP;
	}
	iommu->container_fd = fd;
	for (int i = 0; i < VU_MAX_GROUPS; i++) {
		iommu->groups[i].num = -1;
		iommu->groups[i].fd = -1;
	}
	return 0;
}

static void container_cleanup(struct vu_iommu *iommu)
{
	for (int i = 0; i < VU_MAX_GROUPS; i++) {
		if (iommu->groups[i].fd >= 0)
			close(iommu->groups[i].fd);
		iommu->groups[i].fd = -1;
		iommu->groups[i].num = -1;
	}
	if (iommu->container_fd >= 0)
		close(iommu->container_fd);
	iommu->container_fd = -1;
	iommu->iommu_set = false;
}

static void container_put_group(struct vu_iommu *iommu, int slot)
{
	struct vu_group *g = &iommu->groups[slot];
	bool any = false;

	if (--g->users > 0)
		return;
	close(g->fd);	/* also removes the group from the container */
	g->fd = -1;
	g->num = -1;
	for (int i = 0; i < VU_MAX_GROUPS; i++)
		if (iommu->groups[i].fd >= 0)
			any = true;
	/* The last group leaving releases the IOMMU and all mappings. */
	if (!any)
		iommu->iommu_set = false;
}

static int container_get_group(struct vu_iommu *iommu, int num)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int slot = -1, fd, ret;

	for (int i = 0; i < VU_MAX_GROUPS; i++) {
		if (iommu->groups[i].fd >= 0 && iommu->groups[i].num == num) {
			iommu->groups[i].users++;
			return i;
		}
		if (slot < 0 && iommu->groups[i].fd < 0)
			slot = i;
	}
	if (slot < 0)
		return -ENOSPC;

	snprintf(path, sizeof(path), "/dev/vfio/%d", num);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (errno == EBUSY)
			vu_log("open %s: busy (group in use by another process?)",
			       path);
		else
			vu_log("open %s: %s (device bound to a vfio driver?)",
			       path, strerror(errno));
		return ret;
	}
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st)) {
		ret = -errno;
		vu_log("VFIO_GROUP_GET_STATUS %s: %s", path, strerror(errno));
		goto err;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		vu_log("group %d not viable: bind every device of the group to vfio",
		       num);
		ret = -EBUSY;
		goto err;
	}
	if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &iommu->container_fd)) {
		ret = -errno;
		vu_log("VFIO_GROUP_SET_CONTAINER group %d: %s%s", num,
		       strerror(errno), errno == EPERM ?
		       " (no MSI isolation? intel-iommu intremap or vfio_iommu_type1.allow_unsafe_interrupts=1)" : "");
		goto err;
	}
	if (!iommu->iommu_set) {
		if (ioctl(iommu->container_fd, VFIO_SET_IOMMU,
			  VFIO_TYPE1v2_IOMMU)) {
			ret = -errno;
			vu_log("VFIO_SET_IOMMU(TYPE1v2): %s%s", strerror(errno),
			       errno == EPERM ?
			       " (no MSI isolation? intel-iommu intremap or vfio_iommu_type1.allow_unsafe_interrupts=1)" : "");
			goto err;
		}
		iommu->iommu_set = true;
	}
	iommu->groups[slot].num = num;
	iommu->groups[slot].fd = fd;
	iommu->groups[slot].users = 1;
	return slot;
err:
	close(fd);
	return ret;
}

static int container_attach(struct vu_iommu *iommu, struct vu_device *dev)
{
	int num, slot, fd;

	num = vu_pci_iommu_group(dev->bdf);
	if (num < 0)
		return num;
	slot = container_get_group(iommu, num);
	if (slot < 0)
		return slot;
	fd = ioctl(iommu->groups[slot].fd, VFIO_GROUP_GET_DEVICE_FD, dev->bdf);
	if (fd < 0) {
		int ret = -errno;

		vu_log("VFIO_GROUP_GET_DEVICE_FD %s: %s", dev->bdf,
		       strerror(errno));
		container_put_group(iommu, slot);
		return ret;
	}
	dev->fd = fd;
	dev->group_slot = slot;
	return 0;
}

static void container_detach(struct vu_iommu *iommu, struct vu_device *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	if (dev->group_slot >= 0)
		container_put_group(iommu, dev->group_slot);
	dev->group_slot = -1;
}

static int container_dma_map(struct vu_iommu *iommu, void *vaddr,
			     uint64_t iova, uint64_t size, unsigned int prot)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	if (!iommu->iommu_set) {
		vu_log("DMA map before any device is open in the container");
		return -EINVAL;
	}
	if (prot & VU_DMA_READ)
		map.flags |= VFIO_DMA_MAP_FLAG_READ;
	if (prot & VU_DMA_WRITE)
		map.flags |= VFIO_DMA_MAP_FLAG_WRITE;
	if (ioctl(iommu->container_fd, VFIO_IOMMU_MAP_DMA, &map)) {
		int ret = -errno;

		vu_log("VFIO_IOMMU_MAP_DMA iova 0x%llx size 0x%llx: %s",
		       (unsigned long long)iova, (unsigned long long)size,
		       strerror(errno));
		return ret;
	}
	return 0;
}

static int container_dma_unmap(struct vu_iommu *iommu, uint64_t iova,
			       uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};

	if (!iommu->iommu_set)
		return 0;	/* IOMMU released: nothing mapped any more */
	if (ioctl(iommu->container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap)) {
		int ret = -errno;

		vu_log("VFIO_IOMMU_UNMAP_DMA iova 0x%llx: %s",
		       (unsigned long long)iova, strerror(errno));
		return ret;
	}
	if (unmap.size != size) {
		vu_log("VFIO_IOMMU_UNMAP_DMA iova 0x%llx: unmapped 0x%llx of 0x%llx",
		       (unsigned long long)iova,
		       (unsigned long long)unmap.size,
		       (unsigned long long)size);
		return -EIO;
	}
	return 0;
}

static int container_iova_ranges(struct vu_iommu *iommu,
				 struct vu_iova_range *r, int max)
{
	struct vfio_iommu_type1_info *info;
	uint32_t argsz = sizeof(*info), off;
	int n = 0;

	if (!iommu->iommu_set)
		return 0;
	for (int tries = 0; tries < 2; tries++) {
		info = calloc(1, argsz);
		if (!info)
			return -ENOMEM;
		info->argsz = argsz;
		if (ioctl(iommu->container_fd, VFIO_IOMMU_GET_INFO, info)) {
			int ret = -errno;

			free(info);
			return ret;
		}
		if (info->argsz <= argsz)
			break;
		argsz = info->argsz;
		free(info);
		info = NULL;
	}
	if (!info)
		return -EIO;
	if (!(info->flags & VFIO_IOMMU_INFO_CAPS) || !info->cap_offset) {
		free(info);
		return 0;
	}
	for (off = info->cap_offset; off && off + sizeof(struct vfio_info_cap_header) <= argsz;) {
		struct vfio_info_cap_header *h = (void *)((char *)info + off);

		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *c = (void *)h;

			for (uint32_t i = 0; i < c->nr_iovas && n < max; i++, n++) {
				r[n].start = c->iova_ranges[i].start;
				r[n].last = c->iova_ranges[i].end;
			}
			break;
		}
		if (h->next <= off)
			break;
		off = h->next;
	}
	free(info);
	return n;
}

static const struct vu_iommu_ops container_ops = {
	.name = "container",
	.init = container_init,
	.cleanup = container_cleanup,
	.attach = container_attach,
	.detach = container_detach,
	.dma_map = container_dma_map,
	.dma_unmap = container_dma_unmap,
	.iova_ranges = container_iova_ranges,
};

/* ------------------------------------------------------------------ */
/* iommufd backend (vfio device cdev).  Needs CONFIG_IOMMUFD and        */
/* CONFIG_VFIO_DEVICE_CDEV, i.e. the own-kernel lane.                   */
/* ------------------------------------------------------------------ */

static int iommufd_init(struct vu_iommu *iommu)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	int fd;

	fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int ret = -errno;

		vu_log("open /dev/iommu: %s (kernel without CONFIG_IOMMUFD?)",
		       strerror(errno));
		return ret;
	}
	if (ioctl(fd, IOMMU_IOAS_ALLOC, &alloc)) {
		int ret = -errno;

		vu_log("IOMMU_IOAS_ALLOC: %s", strerror(errno));
		close(fd);
		return ret;
	}
	iommu->iommufd = fd;
	iommu->ioas_id = alloc.out_ioas_id;
	return 0;
}

static void iommufd_cleanup(struct vu_iommu *iommu)
{
	if (iommu->iommufd >= 0) {
		struct iommu_destroy d = {
			.size = sizeof(d), .id = iommu->ioas_id,
		};

		ioctl(iommu->iommufd, IOMMU_DESTROY, &d);
		close(iommu->iommufd);
	}
	iommu->iommufd = -1;
}

static int iommufd_attach(struct vu_iommu *iommu, struct vu_device *dev)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind), .iommufd = iommu->iommufd,
	};
	struct vfio_device_attach_iommufd_pt at = {
		.argsz = sizeof(at), .pt_id = iommu->ioas_id,
	};
	char path[PATH_MAX], node[64] = "";
	struct dirent *de;
	DIR *dir;
	int fd, ret;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/vfio-dev", dev->bdf);
	dir = opendir(path);
	if (!dir) {
		vu_log("%s: no vfio-dev in sysfs (kernel without VFIO_DEVICE_CDEV?)",
		       dev->bdf);
		return -ENODEV;
	}
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, "vfio", 4) &&
		    strlen(de->d_name) < sizeof(node))
			strcpy(node, de->d_name);
	closedir(dir);
	if (!node[0])
		return -ENODEV;
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", node);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		vu_log("open %s: %s", path, strerror(errno));
		return ret;
	}
	if (ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		ret = -errno;
		vu_log("VFIO_DEVICE_BIND_IOMMUFD %s: %s", dev->bdf,
		       strerror(errno));
		goto err;
	}
	if (ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		ret = -errno;
		vu_log("VFIO_DEVICE_ATTACH_IOMMUFD_PT %s: %s", dev->bdf,
		       strerror(errno));
		goto err;
	}
	dev->fd = fd;
	dev->devid = bind.out_devid;
	return 0;
err:
	close(fd);
	return ret;
}

static void iommufd_detach(struct vu_iommu *iommu, struct vu_device *dev)
{
	(void)iommu;
	if (dev->fd >= 0)
		close(dev->fd);	/* unbinds and detaches */
	dev->fd = -1;
}

static int iommufd_dma_map(struct vu_iommu *iommu, void *vaddr, uint64_t iova,
			   uint64_t size, unsigned int prot)
{
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = iommu->ioas_id,
		.user_va = (uintptr_t)vaddr,
		.length = size,
		.iova = iova,
	};

	if (prot & VU_DMA_READ)
		map.flags |= IOMMU_IOAS_MAP_READABLE;
	if (prot & VU_DMA_WRITE)
		map.flags |= IOMMU_IOAS_MAP_WRITEABLE;
	if (ioctl(iommu->iommufd, IOMMU_IOAS_MAP, &map)) {
		int ret = -errno;

		vu_log("IOMMU_IOAS_MAP iova 0x%llx size 0x%llx: %s",
		       (unsigned long long)iova, (unsigned long long)size,
		       strerror(errno));
		return ret;
	}
	return 0;
}

static int iommufd_dma_unmap(struct vu_iommu *iommu, uint64_t iova,
			     uint64_t size)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = iommu->ioas_id,
		.iova = iova,
		.length = size,
	};

	if (ioctl(iommu->iommufd, IOMMU_IOAS_UNMAP, &unmap)) {
		int ret = -errno;

		vu_log("IOMMU_IOAS_UNMAP iova 0x%llx: %s",
		       (unsigned long long)iova, strerror(errno));
		return ret;
	}
	return 0;
}

static int iommufd_iova_ranges(struct vu_iommu *iommu, struct vu_iova_range *r,
			       int max)
{
	struct iommu_iova_range ranges[VU_MAX_IOVA_RANGES];
	struct iommu_ioas_iova_ranges q = {
		.size = sizeof(q),
		.ioas_id = iommu->ioas_id,
		.num_iovas = VU_MAX_IOVA_RANGES,
		.allowed_iovas = (uintptr_t)ranges,
	};
	int n = 0;

	if (ioctl(iommu->iommufd, IOMMU_IOAS_IOVA_RANGES, &q))
		return -errno;
	for (uint32_t i = 0; i < q.num_iovas && n < max; i++, n++) {
		r[n].start = ranges[i].start;
		r[n].last = ranges[i].last;
	}
	return n;
}

static const struct vu_iommu_ops iommufd_ops = {
	.name = "iommufd",
	.init = iommufd_init,
	.cleanup = iommufd_cleanup,
	.attach = iommufd_attach,
	.detach = iommufd_detach,
	.dma_map = iommufd_dma_map,
	.dma_unmap = iommufd_dma_unmap,
	.iova_ranges = iommufd_iova_ranges,
};

/* ------------------------------------------------------------------ */
/* address space                                                       */
/* ------------------------------------------------------------------ */

int vu_iommu_init(struct vu_iommu *iommu, enum vu_backend backend)
{
	int ret;

	memset(iommu, 0, sizeof(*iommu));
	iommu->container_fd = -1;
	iommu->iommufd = -1;
	iommu->backend = backend;
	iommu->next_iova = VU_IOVA_BASE;
	switch (backend) {
	case VU_BACKEND_CONTAINER:
		iommu->ops = &container_ops;
		break;
	case VU_BACKEND_IOMMUFD:
		iommu->ops = &iommufd_ops;
		break;
	default:
		return -EINVAL;
	}
	ret = iommu->ops->init(iommu);
	if (ret)
		iommu->ops = NULL;
	return ret;
}

void vu_iommu_cleanup(struct vu_iommu *iommu)
{
	if (!iommu->ops)
		return;
	if (iommu->nr_devices)
		vu_log("vu_iommu_cleanup with %d device(s) still open",
		       iommu->nr_devices);
	iommu->ops->cleanup(iommu);
	iommu->ops = NULL;
}

/* ------------------------------------------------------------------ */
/* devices                                                             */
/* ------------------------------------------------------------------ */

static int region_info(struct vu_device *dev, int index,
		       struct vfio_region_info **out)
{
	struct vfio_region_info *info;
	uint32_t argsz = sizeof(*info);

	for (int tries = 0; tries < 2; tries++) {
		info = calloc(1, argsz);
		if (!info)
			return -ENOMEM;
		info->argsz = argsz;
		info->index = index;
		if (ioctl(dev->fd, VFIO_DEVICE_GET_REGION_INFO, info)) {
			int ret = -errno;

			free(info);
			return ret;
		}
		if (info->argsz <= argsz) {
			*out = info;
			return 0;
		}
		argsz = info->argsz;
		free(info);
	}
	return -EIO;
}

int vu_device_open(struct vu_iommu *iommu, const char *bdf,
		   struct vu_device *dev)
{
	int ret;

	memset(dev, 0, sizeof(*dev));
	dev->fd = -1;
	dev->group_slot = -1;
	dev->irq_index = -1;
	for (int i = 0; i < VU_MAX_IRQS; i++)
		dev->irq_fds[i] = -1;
	if (!iommu->ops)
		return -EINVAL;
	ret = vu_bdf_normalize(bdf, dev->bdf, sizeof(dev->bdf));
	if (ret) {
		vu_log("bad PCI address '%s'", bdf);
		return ret;
	}
	ret = iommu->ops->attach(iommu, dev);
	if (ret)
		return ret;
	dev->iommu = iommu;
	iommu->nr_devices++;

	dev->info.argsz = sizeof(dev->info);
	if (ioctl(dev->fd, VFIO_DEVICE_GET_INFO, &dev->info)) {
		ret = -errno;
		vu_log("VFIO_DEVICE_GET_INFO %s: %s", dev->bdf, strerror(errno));
		goto err;
	}
	if (!(dev->info.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    dev->info.num_regions < VFIO_PCI_CONFIG_REGION_INDEX + 1) {
		vu_log("%s: not a VFIO PCI device (flags 0x%x, %u regions)",
		       dev->bdf, dev->info.flags, dev->info.num_regions);
		ret = -ENODEV;
		goto err;
	}
	for (int i = 0; i < VFIO_PCI_NUM_REGIONS &&
			(uint32_t)i < dev->info.num_regions; i++) {
		struct vfio_region_info *info;

		if (region_info(dev, i, &info))
			continue;
		dev->regions[i].info = *info;
		dev->regions[i].info.argsz = sizeof(struct vfio_region_info);
		dev->regions[i].valid = true;
		free(info);
	}
	return 0;
err:
	vu_device_close(dev);
	return ret;
}

static void region_unmap(struct vu_region *r)
{
	for (int i = 0; i < r->nr_areas; i++)
		if (r->areas[i].ptr)
			munmap(r->areas[i].ptr, r->areas[i].size);
	r->nr_areas = 0;
	memset(r->areas, 0, sizeof(r->areas));
}

void vu_device_close(struct vu_device *dev)
{
	if (!dev->iommu) {
		if (dev->fd >= 0)
			close(dev->fd);
		dev->fd = -1;
		return;
	}
	if (dev->irq_index >= 0)
		vu_irq_disable(dev);
	for (int i = 0; i < VFIO_PCI_NUM_REGIONS; i++)
		region_unmap(&dev->regions[i]);
	dev->iommu->ops->detach(dev->iommu, dev);
	dev->iommu->nr_devices--;
	dev->iommu = NULL;
}

int vu_device_reset(struct vu_device *dev)
{
	if (!(dev->info.flags & VFIO_DEVICE_FLAGS_RESET)) {
		vu_log("%s: device does not advertise VFIO_DEVICE_FLAGS_RESET",
		       dev->bdf);
		return -EOPNOTSUPP;
	}
	if (ioctl(dev->fd, VFIO_DEVICE_RESET)) {
		int ret = -errno;

		vu_log("VFIO_DEVICE_RESET %s: %s", dev->bdf, strerror(errno));
		return ret;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* regions                                                             */
/* ------------------------------------------------------------------ */

static struct vu_region *get_region(struct vu_device *dev, int index)
{
	if (index < 0 || index >= VFIO_PCI_NUM_REGIONS ||
	    !dev->regions[index].valid)
		return NULL;
	return &dev->regions[index];
}

uint64_t vu_region_size(struct vu_device *dev, int index)
{
	struct vu_region *r = get_region(dev, index);

	return r ? r->info.size : 0;
}

int vu_region_mmap(struct vu_device *dev, int index)
{
	struct vu_region *r = get_region(dev, index);
	struct vfio_region_info *info;
	struct vu_area want[VU_MAX_AREAS];
	int nwant = 0, prot = 0, ret;

	if (!r)
		return -EINVAL;
	region_unmap(r);
	if (!(r->info.flags & VFIO_REGION_INFO_FLAG_MMAP) || !r->info.size)
		return 0;
	if (r->info.flags & VFIO_REGION_INFO_FLAG_READ)
		prot |= PROT_READ;
	if (r->info.flags & VFIO_REGION_INFO_FLAG_WRITE)
		prot |= PROT_WRITE;

	ret = region_info(dev, index, &info);
	if (ret)
		return ret;
	want[0].offset = 0;
	want[0].size = r->info.size;
	nwant = 1;
	if ((info->flags & VFIO_REGION_INFO_FLAG_CAPS) && info->cap_offset) {
		uint32_t off = info->cap_offset;

		while (off && off + sizeof(struct vfio_info_cap_header) <=
		       info->argsz) {
			struct vfio_info_cap_header *h =
				(void *)((char *)info + off);

			if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
				struct vfio_region_info_cap_sparse_mmap *s =
					(void *)h;

				nwant = 0;
				for (uint32_t i = 0; i < s->nr_areas &&
				     nwant < VU_MAX_AREAS; i++) {
					if (!s->areas[i].size)
						continue;
					want[nwant].offset = s->areas[i].offset;
					want[nwant].size = s->areas[i].size;
					nwant++;
				}
				break;
			}
			if (h->next <= off)
				break;
			off = h->next;
		}
	}
	free(info);

	for (int i = 0; i < nwant; i++) {
		void *p = mmap(NULL, want[i].size, prot, MAP_SHARED, dev->fd,
			       r->info.offset + want[i].offset);

		if (p == MAP_FAILED) {
			vu_log("%s: mmap region %d [0x%llx+0x%llx]: %s (using pread/pwrite)",
			       dev->bdf, index,
			       (unsigned long long)want[i].offset,
			       (unsigned long long)want[i].size,
			       strerror(errno));
			continue;
		}
		r->areas[r->nr_areas] = want[i];
		r->areas[r->nr_areas].ptr = p;
		r->nr_areas++;
	}
	return r->nr_areas;
}

void *vu_region_ptr(struct vu_device *dev, int index, uint64_t off,
		    uint64_t len)
{
	struct vu_region *r = get_region(dev, index);

	if (!r || off + len < off)
		return NULL;
	for (int i = 0; i < r->nr_areas; i++) {
		struct vu_area *a = &r->areas[i];

		if (a->ptr && off >= a->offset &&
		    off + len <= a->offset + a->size)
			return (char *)a->ptr + (off - a->offset);
	}
	return NULL;
}

/*
 * Copies to/from a mapped BAR: 32-bit accesses where aligned, bytes at the
 * edges.  Never wider than 32 bits, never libc memcpy (which may use vector
 * or string instructions on device memory).
 */
static void mmio_copy_from(void *dst, const volatile void *src, size_t len)
{
	const volatile uint8_t *s = src;
	uint8_t *d = dst;

	while (len && ((uintptr_t)s & 3)) {
		*d++ = *s++;
		len--;
	}
	while (len >= 4) {
		uint32_t v = *(const volatile uint32_t *)s;

		memcpy(d, &v, 4);
		s += 4;
		d += 4;
		len -= 4;
	}
	while (len--)
		*d++ = *s++;
}

static void mmio_copy_to(volatile void *dst, const void *src, size_t len)
{
	volatile uint8_t *d = dst;
	const uint8_t *s = src;

	while (len && ((uintptr_t)d & 3)) {
		*d++ = *s++;
		len--;
	}
	while (len >= 4) {
		uint32_t v;

		memcpy(&v, s, 4);
		*(volatile uint32_t *)d = v;
		s += 4;
		d += 4;
		len -= 4;
	}
	while (len--)
		*d++ = *s++;
}

static int region_check(struct vu_device *dev, int index, uint64_t off,
			size_t len, struct vu_region **out)
{
	struct vu_region *r = get_region(dev, index);

	if (!r)
		return -EINVAL;
	if (off + len < off || off + len > r->info.size) {
		vu_log("%s: region %d access [0x%llx+0x%zx] beyond size 0x%llx",
		       dev->bdf, index, (unsigned long long)off, len,
		       (unsigned long long)r->info.size);
		return -ERANGE;
	}
	*out = r;
	return 0;
}

int vu_region_pread(struct vu_device *dev, int index, uint64_t off, void *buf,
		    size_t len)
{
	struct vu_region *r;
	size_t done = 0;
	int ret;

	ret = region_check(dev, index, off, len, &r);
	if (ret)
		return ret;
	while (done < len) {
		ssize_t n = pread(dev->fd, (char *)buf + done, len - done,
				  r->info.offset + off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			vu_log("%s: pread region %d off 0x%llx len 0x%zx: %s",
			       dev->bdf, index,
			       (unsigned long long)(off + done), len - done,
			       strerror(-ret));
			return ret;
		}
		done += n;
	}
	return 0;
}

int vu_region_pwrite(struct vu_device *dev, int index, uint64_t off,
		     const void *buf, size_t len)
{
	struct vu_region *r;
	size_t done = 0;
	int ret;

	ret = region_check(dev, index, off, len, &r);
	if (ret)
		return ret;
	while (done < len) {
		ssize_t n = pwrite(dev->fd, (const char *)buf + done,
				   len - done, r->info.offset + off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			vu_log("%s: pwrite region %d off 0x%llx len 0x%zx: %s",
			       dev->bdf, index,
			       (unsigned long long)(off + done), len - done,
			       strerror(-ret));
			return ret;
		}
		done += n;
	}
	return 0;
}

int vu_region_read(struct vu_device *dev, int index, uint64_t off, void *buf,
		   size_t len)
{
	void *p = vu_region_ptr(dev, index, off, len);

	if (!p)
		return vu_region_pread(dev, index, off, buf, len);
	mmio_copy_from(buf, p, len);
	return 0;
}

int vu_region_write(struct vu_device *dev, int index, uint64_t off,
		    const void *buf, size_t len)
{
	void *p = vu_region_ptr(dev, index, off, len);

	if (!p)
		return vu_region_pwrite(dev, index, off, buf, len);
	mmio_copy_to(p, buf, len);
	__sync_synchronize();
	return 0;
}

uint32_t vu_read32(struct vu_device *dev, int index, uint64_t off)
{
	volatile uint32_t *p;
	uint32_t v;

	if (off & 3) {
		vu_log("%s: unaligned 32-bit read at 0x%llx", dev->bdf,
		       (unsigned long long)off);
		return ~0u;
	}
	p = vu_region_ptr(dev, index, off, 4);
	if (p) {
		__sync_synchronize();
		return le32toh(*p);
	}
	if (vu_region_pread(dev, index, off, &v, 4))
		return ~0u;
	return le32toh(v);
}

int vu_write32(struct vu_device *dev, int index, uint64_t off, uint32_t val)
{
	volatile uint32_t *p;
	uint32_t v = htole32(val);

	if (off & 3) {
		vu_log("%s: unaligned 32-bit write at 0x%llx", dev->bdf,
		       (unsigned long long)off);
		return -EINVAL;
	}
	p = vu_region_ptr(dev, index, off, 4);
	if (p) {
		/* order earlier stores to DMA memory before the doorbell */
		__sync_synchronize();
		*p = v;
		__sync_synchronize();
		return 0;
	}
	__sync_synchronize();
	return vu_region_pwrite(dev, index, off, &v, 4);
}

int vu_config_read(struct vu_device *dev, uint32_t off, void *buf, size_t len)
{
	return vu_region_pread(dev, VFIO_PCI_CONFIG_REGION_INDEX, off, buf, len);
}

int vu_config_write(struct vu_device *dev, uint32_t off, const void *buf,
		    size_t len)
{
	return vu_region_pwrite(dev, VFIO_PCI_CONFIG_REGION_INDEX, off, buf,
				len);
}

int vu_pci_enable_bus_master(struct vu_device *dev)
{
	uint16_t cmd;
	int ret;

	ret = vu_config_read(dev, PCI_COMMAND, &cmd, sizeof(cmd));
	if (ret)
		return ret;
	cmd = le16toh(cmd);
	if ((cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) ==
	    (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
		return 0;
	cmd = htole16(cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	return vu_config_write(dev, PCI_COMMAND, &cmd, sizeof(cmd));
}

/* ------------------------------------------------------------------ */
/* interrupts                                                          */
/* ------------------------------------------------------------------ */

int vu_irq_info(struct vu_device *dev, int index, struct vfio_irq_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	if (ioctl(dev->fd, VFIO_DEVICE_GET_IRQ_INFO, info)) {
		int ret = -errno;

		vu_log("%s: VFIO_DEVICE_GET_IRQ_INFO(%d): %s", dev->bdf, index,
		       strerror(errno));
		return ret;
	}
	return 0;
}

int vu_irq_enable(struct vu_device *dev, int index, int nvec)
{
	struct vfio_irq_info info;
	struct vfio_irq_set *set;
	size_t sz;
	int ret;

	if (nvec <= 0 || nvec > VU_MAX_IRQS)
		return -EINVAL;
	if (dev->irq_index >= 0)
		vu_irq_disable(dev);
	ret = vu_irq_info(dev, index, &info);
	if (ret)
		return ret;
	if (!(info.flags & VFIO_IRQ_INFO_EVENTFD) || info.count < (uint32_t)nvec) {
		vu_log("%s: irq index %d has %u vectors (flags 0x%x), need %d",
		       dev->bdf, index, info.count, info.flags, nvec);
		return -ENOSPC;
	}
	sz = sizeof(*set) + nvec * sizeof(int32_t);
	set = calloc(1, sz);
	if (!set)
		return -ENOMEM;
	set->argsz = sz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = index;
	set->start = 0;
	set->count = nvec;
	for (int i = 0; i < nvec; i++) {
		dev->irq_fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (dev->irq_fds[i] < 0) {
			ret = -errno;
			goto err;
		}
		((int32_t *)set->data)[i] = dev->irq_fds[i];
	}
	dev->nr_irqs = nvec;
	if (ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, set)) {
		ret = -errno;
		vu_log("%s: VFIO_DEVICE_SET_IRQS(index %d, %d vectors): %s",
		       dev->bdf, index, nvec, strerror(errno));
		goto err;
	}
	free(set);
	dev->irq_index = index;
	return 0;
err:
	free(set);
	for (int i = 0; i < nvec; i++) {
		if (dev->irq_fds[i] >= 0)
			close(dev->irq_fds[i]);
		dev->irq_fds[i] = -1;
	}
	dev->nr_irqs = 0;
	return ret;
}

int vu_irq_disable(struct vu_device *dev)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.start = 0,
		.count = 0,
	};
	int ret = 0;

	if (dev->irq_index < 0)
		return 0;
	set.index = dev->irq_index;
	if (ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, &set)) {
		ret = -errno;
		vu_log("%s: disable irqs: %s", dev->bdf, strerror(errno));
	}
	for (int i = 0; i < dev->nr_irqs; i++) {
		if (dev->irq_fds[i] >= 0)
			close(dev->irq_fds[i]);
		dev->irq_fds[i] = -1;
	}
	dev->nr_irqs = 0;
	dev->irq_index = -1;
	return ret;
}

int vu_irq_fd(struct vu_device *dev, int vec)
{
	if (vec < 0 || vec >= dev->nr_irqs)
		return -EINVAL;
	return dev->irq_fds[vec];
}

int64_t vu_irq_wait(struct vu_device *dev, int vec, int timeout_ms)
{
	uint64_t deadline = vu_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int fd = vu_irq_fd(dev, vec);

	if (fd < 0)
		return fd;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - vu_now_ms());
		uint64_t cnt;
		int ret;

		if (left < 0)
			left = 0;
		ret = poll(&pfd, 1, (int)left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return 0;
		if (read(fd, &cnt, sizeof(cnt)) == sizeof(cnt))
			return (int64_t)cnt;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (vu_now_ms() >= deadline)
			return 0;
	}
}

uint64_t vu_irq_drain(struct vu_device *dev, int vec)
{
	int fd = vu_irq_fd(dev, vec);
	uint64_t cnt;

	if (fd < 0)
		return 0;
	if (read(fd, &cnt, sizeof(cnt)) == sizeof(cnt))
		return cnt;
	return 0;
}

/* ------------------------------------------------------------------ */
/* DMA                                                                 */
/* ------------------------------------------------------------------ */

int vu_dma_map(struct vu_iommu *iommu, void *va, uint64_t iova, uint64_t size,
	       unsigned int prot)
{
	if (!iommu->ops)
		return -EINVAL;
	return iommu->ops->dma_map(iommu, va, iova, size, prot);
}

int vu_dma_unmap(struct vu_iommu *iommu, uint64_t iova, uint64_t size)
{
	if (!iommu->ops)
		return -EINVAL;
	return iommu->ops->dma_unmap(iommu, iova, size);
}

uint64_t vu_iova_alloc(struct vu_iommu *iommu, uint64_t size)
{
	struct vu_iova_range r[VU_MAX_IOVA_RANGES];
	const uint64_t align = 0x10000;
	uint64_t cand;
	int n = 0;

	if (!size)
		return 0;
	size = align_up(size, page_size());
	if (iommu->ops && iommu->ops->iova_ranges)
		n = iommu->ops->iova_ranges(iommu, r, VU_MAX_IOVA_RANGES);
	cand = align_up(iommu->next_iova, align);
	if (n > 0) {
		bool ok = false;

		for (int i = 0; i < n && !ok; i++) {
			uint64_t c = cand;

			if (r[i].last < c)
				continue;
			if (r[i].start > c)
				c = align_up(r[i].start, align);
			if (c + size - 1 >= c && c + size - 1 <= r[i].last) {
				cand = c;
				ok = true;
			}
		}
		if (!ok) {
			vu_log("no valid IOVA range for 0x%llx bytes above 0x%llx",
			       (unsigned long long)size,
			       (unsigned long long)cand);
			return 0;
		}
	}
	if (cand + size + VU_IOVA_GUARD < cand)
		return 0;
	iommu->next_iova = cand + size + VU_IOVA_GUARD;
	return cand;
}

int vu_dma_alloc_at(struct vu_iommu *iommu, size_t size, uint64_t iova,
		    unsigned int prot, struct vu_dma *buf)
{
	void *va;
	int ret;

	memset(buf, 0, sizeof(*buf));
	if (!size)
		return -EINVAL;
	size = align_up(size, page_size());
	va = mmap(NULL, size, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (va == MAP_FAILED)
		return -errno;
	/* pinned pages must not become copy-on-write in a forked child */
	madvise(va, size, MADV_DONTFORK);
	ret = vu_dma_map(iommu, va, iova, size, prot);
	if (ret) {
		munmap(va, size);
		return ret;
	}
	buf->va = va;
	buf->iova = iova;
	buf->size = size;
	buf->prot = prot;
	buf->mapped = true;
	return 0;
}

int vu_dma_alloc(struct vu_iommu *iommu, size_t size, unsigned int prot,
		 struct vu_dma *buf)
{
	uint64_t iova = vu_iova_alloc(iommu, size);

	memset(buf, 0, sizeof(*buf));
	if (!iova)
		return -ENOSPC;
	return vu_dma_alloc_at(iommu, size, iova, prot, buf);
}

void vu_dma_free(struct vu_iommu *iommu, struct vu_dma *buf)
{
	if (buf->mapped && iommu->ops)
		vu_dma_unmap(iommu, buf->iova, buf->size);
	if (buf->va)
		munmap(buf->va, buf->size);
	memset(buf, 0, sizeof(*buf));
}
