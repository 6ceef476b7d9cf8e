/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio_util - a small userspace VFIO library for the vfio-mig kselftests.
 *
 * Everything is prefixed "vu_".  The library is device agnostic; the
 * refaccel specifics live in refaccel_lib.h.
 *
 * Model:
 *   struct vu_iommu   one IOMMU address space (IOVA space) that one or more
 *                     devices are attached to.  Backend "container" is the
 *                     legacy /dev/vfio/vfio container with VFIO_TYPE1v2_IOMMU
 *                     (groups are attached to it); backend "iommufd" is an
 *                     iommufd IOAS with devices opened through their vfio
 *                     cdev (/dev/vfio/devices/vfioN), bound and attached.
 *                     Both are reached through struct vu_iommu_ops, so
 *                     callers never see which one is in use.
 *   struct vu_device  one opened VFIO PCI device: device fd, region info,
 *                     mmaps of regions, MSI-X/MSI/INTx eventfds.
 *
 * Several devices (e.g. migration source A and destination B) can be opened
 * into the same vu_iommu; DMA mappings are per vu_iommu and so are shared.
 *
 * All functions return 0 (or a count) on success and a negative errno on
 * failure, and print the reason to stderr as a TAP comment ("# ...").
 */
#ifndef VFIO_UTIL_H
#define VFIO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

#define VU_BDF_LEN		32	/* "0000:00:03.0" */
#define VU_MAX_GROUPS		16
#define VU_MAX_AREAS		8	/* mmapped areas per region */
#define VU_MAX_IRQS		32	/* eventfds per device */
#define VU_MAX_IOVA_RANGES	16

/* First IOVA handed out by vu_iova_alloc(); below the 39-bit VT-d limit. */
#define VU_IOVA_BASE		0x40000000ull
/* Unmapped gap left after every vu_iova_alloc() allocation. */
#define VU_IOVA_GUARD		0x10000ull

/* DMA mapping permissions, as seen from the device. */
#define VU_DMA_READ		(1u << 0)	/* device may read the memory */
#define VU_DMA_WRITE		(1u << 1)	/* device may write the memory */
#define VU_DMA_RW		(VU_DMA_READ | VU_DMA_WRITE)

enum vu_backend {
	VU_BACKEND_CONTAINER = 0,	/* legacy group/container, type1v2 */
	VU_BACKEND_IOMMUFD,		/* iommufd IOAS + vfio device cdev */
};

struct vu_iommu;
struct vu_device;

struct vu_iova_range {
	uint64_t start;
	uint64_t last;			/* inclusive */
};

/* One backend.  New backends only add a struct vu_iommu_ops instance. */
struct vu_iommu_ops {
	const char *name;
	int (*init)(struct vu_iommu *iommu);
	void (*cleanup)(struct vu_iommu *iommu);
	/* Open dev->bdf, attach it to the address space, set dev->fd. */
	int (*attach)(struct vu_iommu *iommu, struct vu_device *dev);
	/* Close dev->fd and detach it. */
	void (*detach)(struct vu_iommu *iommu, struct vu_device *dev);
	int (*dma_map)(struct vu_iommu *iommu, void *vaddr, uint64_t iova,
		       uint64_t size, unsigned int prot);
	int (*dma_unmap)(struct vu_iommu *iommu, uint64_t iova, uint64_t size);
	/* Valid IOVA ranges now (they can shrink as devices attach). */
	int (*iova_ranges)(struct vu_iommu *iommu, struct vu_iova_range *r,
			   int max);
};

struct vu_group {
	int num;			/* /dev/vfio/<num> */
	int fd;
	int users;			/* devices opened from this group */
};

struct vu_iommu {
	enum vu_backend backend;
	const struct vu_iommu_ops *ops;
	/* container backend */
	int container_fd;
	bool iommu_set;			/* VFIO_SET_IOMMU done */
	struct vu_group groups[VU_MAX_GROUPS];
	/* iommufd backend */
	int iommufd;
	uint32_t ioas_id;
	/* IOVA bump allocator (never reuses space) */
	uint64_t next_iova;
	int nr_devices;
};

struct vu_area {
	uint64_t offset;		/* offset inside the region */
	uint64_t size;
	void *ptr;			/* NULL: not mmapped */
};

struct vu_region {
	struct vfio_region_info info;	/* index, flags, size, offset */
	bool valid;			/* GET_REGION_INFO succeeded */
	int nr_areas;
	struct vu_area areas[VU_MAX_AREAS];
};

struct vu_device {
	struct vu_iommu *iommu;
	char bdf[VU_BDF_LEN];
	int fd;
	int group_slot;			/* container: index in iommu->groups */
	uint32_t devid;			/* iommufd: bound device id */
	struct vfio_device_info info;
	struct vu_region regions[VFIO_PCI_NUM_REGIONS];
	int irq_index;			/* enabled IRQ index, -1: none */
	int nr_irqs;
	int irq_fds[VU_MAX_IRQS];
};

/* ---- misc ---- */
#define vu_log(fmt, ...) fprintf(stderr, "# vfio: " fmt "\n", ##__VA_ARGS__)
uint64_t vu_now_ms(void);
const char *vu_backend_name(enum vu_backend b);
/* VFIO_MIG_BACKEND=container|iommufd, default container. */
enum vu_backend vu_backend_from_env(void);

/* ---- sysfs discovery ---- */
/* Canonicalise "00:03.0" to "0000:00:03.0"; -EINVAL if malformed. */
int vu_bdf_normalize(const char *in, char *out, size_t len);
/* Driver bound to @bdf, "" if none; -ENOENT if the device does not exist. */
int vu_pci_driver(const char *bdf, char *buf, size_t len);
/* IOMMU group number of @bdf or -errno. */
int vu_pci_iommu_group(const char *bdf);
/* Read a hex sysfs attribute (vendor, device, class). */
int vu_pci_read_id(const char *bdf, const char *attr, uint32_t *val);
/*
 * Find PCI functions with @vendor/@device bound to one of @drivers (a NULL
 * terminated list; NULL: any driver).  Sorted by BDF.  Returns the count
 * found (may exceed @max, only @max are stored).
 */
int vu_pci_find(uint16_t vendor, uint16_t device, const char *const *drivers,
		char (*bdfs)[VU_BDF_LEN], int max);

/* ---- address space ---- */
int vu_iommu_init(struct vu_iommu *iommu, enum vu_backend backend);
/* Devices must be closed first. */
void vu_iommu_cleanup(struct vu_iommu *iommu);

/* ---- devices ---- */
int vu_device_open(struct vu_iommu *iommu, const char *bdf,
		   struct vu_device *dev);
/* Disables IRQs, unmaps regions, closes; safe on a zeroed/closed device. */
void vu_device_close(struct vu_device *dev);
/* VFIO_DEVICE_RESET; -EOPNOTSUPP if the device does not advertise reset. */
int vu_device_reset(struct vu_device *dev);

/* ---- regions ---- */
/*
 * mmap whatever of region @index the kernel allows (whole region, or the
 * areas of a sparse-mmap capability).  Returns the number of mmapped areas
 * (0 if the region is not mmappable: accesses then use pread/pwrite).
 */
int vu_region_mmap(struct vu_device *dev, int index);
uint64_t vu_region_size(struct vu_device *dev, int index);
/* Pointer to [off, off+len) if it lies in one mmapped area, else NULL. */
void *vu_region_ptr(struct vu_device *dev, int index, uint64_t off,
		    uint64_t len);
/* Bulk access, through the mmap when possible, else pread/pwrite. */
int vu_region_read(struct vu_device *dev, int index, uint64_t off, void *buf,
		   size_t len);
int vu_region_write(struct vu_device *dev, int index, uint64_t off,
		    const void *buf, size_t len);
/* Bulk access always through pread/pwrite on the device fd. */
int vu_region_pread(struct vu_device *dev, int index, uint64_t off, void *buf,
		    size_t len);
int vu_region_pwrite(struct vu_device *dev, int index, uint64_t off,
		     const void *buf, size_t len);
/* Naturally aligned 32-bit access; read returns ~0u on error (logged). */
uint32_t vu_read32(struct vu_device *dev, int index, uint64_t off);
int vu_write32(struct vu_device *dev, int index, uint64_t off, uint32_t val);

/* PCI config space (pread/pwrite on the config region). */
int vu_config_read(struct vu_device *dev, uint32_t off, void *buf, size_t len);
int vu_config_write(struct vu_device *dev, uint32_t off, const void *buf,
		    size_t len);
/* Set PCI_COMMAND memory space + bus master enable. */
int vu_pci_enable_bus_master(struct vu_device *dev);

/* ---- interrupts ---- */
int vu_irq_info(struct vu_device *dev, int index, struct vfio_irq_info *info);
/* One eventfd per vector, vectors 0..nvec-1 of @index (e.g. MSI-X). */
int vu_irq_enable(struct vu_device *dev, int index, int nvec);
int vu_irq_disable(struct vu_device *dev);
int vu_irq_fd(struct vu_device *dev, int vec);
/*
 * Wait up to @timeout_ms for vector @vec; returns the eventfd count (> 0,
 * the counter is consumed), 0 on timeout, -errno on error.
 */
int64_t vu_irq_wait(struct vu_device *dev, int vec, int timeout_ms);
/* Consume and return any pending count on @vec without waiting. */
uint64_t vu_irq_drain(struct vu_device *dev, int vec);

/* ---- DMA ---- */
struct vu_dma {
	void *va;
	uint64_t iova;
	size_t size;
	unsigned int prot;
	bool mapped;
};

int vu_dma_map(struct vu_iommu *iommu, void *va, uint64_t iova, uint64_t size,
	       unsigned int prot);
int vu_dma_unmap(struct vu_iommu *iommu, uint64_t iova, uint64_t size);
/*
 * Reserve @size bytes (rounded up to pages) of valid IOVA space, followed by
 * an unmapped guard gap of VU_IOVA_GUARD.  Space is never reused, so a
 * reserved but unmapped range is guaranteed to fault.  0 on failure.
 */
uint64_t vu_iova_alloc(struct vu_iommu *iommu, uint64_t size);
/* Anonymous zeroed memory, mapped at a fresh IOVA (vu_iova_alloc). */
int vu_dma_alloc(struct vu_iommu *iommu, size_t size, unsigned int prot,
		 struct vu_dma *buf);
/* Same at a caller chosen IOVA. */
int vu_dma_alloc_at(struct vu_iommu *iommu, size_t size, uint64_t iova,
		    unsigned int prot, struct vu_dma *buf);
/* Unmap and free; safe on a zeroed or already freed buffer. */
void vu_dma_free(struct vu_iommu *iommu, struct vu_dma *buf);

#endif /* VFIO_UTIL_H */
