// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live migration of a PCI function through the VFIO migration uAPI (v2),
 * from a source function to a destination function of the same kind, in
 * every IOMMU mode libvfio has.
 *
 * Device-generic: the test knows the device only through its libvfio
 * driver (struct vfio_pci_driver_ops) and the migration uAPI of
 * <linux/vfio.h> (VFIO_DEVICE_FEATURE_MIGRATION, _MIG_DEVICE_STATE,
 * _MIG_DATA_SIZE, the data_fd and VFIO_MIG_GET_PRECOPY_INFO).  Any device
 * with a libvfio driver and migration support can run it.
 *
 * Usage: vfio_pci_device_migration_test [harness options] SRC_BDF DST_BDF
 * or SRC_BDF (or $VFIO_SELFTESTS_BDF) with $VFIO_SELFTESTS_MIG_DST_BDF.
 *
 * Both functions are used by this one process, as a VMM would use them on
 * two hosts.  Each has its own IOMMU (container or IOAS), and the same DMA
 * memory is mapped at the same IOVAs in both: the device state that
 * migrates holds IOVAs (rings, buffers), and a VMM keeps the guest's
 * physical layout on the destination.  The libvfio driver keeps its
 * bookkeeping in device->driver.region, host memory that is then shared
 * by both functions exactly as guest memory is shared by the source and
 * destination guest after a migration: the destination's driver state is
 * the source's, handed over, never initialised again (an init would reset
 * the device and lose the state that was migrated).
 *
 * The tests, each in every IOMMU mode:
 *   migrate_inflight_memcpy  the migration of a memcpy stream in flight,
 *                            which the destination finishes
 *   arcs                     SET of every state from every state: arcs and
 *                            combinations reach it, the rest is refused
 *                            and changes nothing
 *   bad_stream               truncated and garbled streams are refused on
 *                            leaving RESUMING; ERROR if the device goes
 *                            there; VFIO_DEVICE_RESET recovers
 *   data_fd                  which arcs give a data_fd, what it refuses,
 *                            and when it ends
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/sizes.h>
#include <linux/vfio.h>

#include <libvfio.h>

#include "kselftest_harness.h"

static const char *src_bdf;
static const char *dst_bdf;

/*
 * The memcpy stream should keep the source busy for about this long, as
 * sized by a 16-copy calibration.  On a loaded host (TCG, two VMs on two
 * cores) a copy's time changes several-fold within a run: once the
 * calibration measured 1753 us per copy, the 570 copies sized for 1 s then
 * all ran in the 239 ms before STOP_COPY, and the destination had nothing
 * left to do.  Four seconds keep work in flight through the stop at seven
 * times the calibrated speed; the driver's max_memcpy_count caps it.
 */
#define MIG_INFLIGHT_NS		(4000ULL * 1000 * 1000)

/* Largest memcpy the test asks for; its DMA memory holds 4 buffers. */
#define MIG_COPY_MAX		SZ_4M

/* Stop reading pre-copy data of a device that keeps dirtying its state. */
#define MIG_PRECOPY_MAX		SZ_64M

/* What a function quiet for this long would have done by now. */
#define MIG_QUIET_US		(50 * 1000)

#define MIG_READ_CHUNK		SZ_64K
/* Writes are split differently from reads: the uAPI allows it. */
#define MIG_WRITE_CHUNK		(3 * 4096 + 7)

#define MIG_POISON		0x5a

#define MIG_NR_STATES		(VFIO_DEVICE_STATE_PRE_COPY_P2P + 1)

static const char *const mig_state_names[MIG_NR_STATES] = {
	[VFIO_DEVICE_STATE_ERROR] = "ERROR",
	[VFIO_DEVICE_STATE_STOP] = "STOP",
	[VFIO_DEVICE_STATE_RUNNING] = "RUNNING",
	[VFIO_DEVICE_STATE_STOP_COPY] = "STOP_COPY",
	[VFIO_DEVICE_STATE_RESUMING] = "RESUMING",
	[VFIO_DEVICE_STATE_RUNNING_P2P] = "RUNNING_P2P",
	[VFIO_DEVICE_STATE_PRE_COPY] = "PRE_COPY",
	[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
};

static const char *mig_state_name(int state)
{
	if (state >= 0 && state < MIG_NR_STATES)
		return mig_state_names[state];

	return state < 0 ? strerror(-state) : "invalid";
}

/*
 * VFIO_DEVICE_FEATURE with a payload of @size bytes (at most 8 here).
 * Returns 0 or -errno.
 */
static int mig_feature(struct vfio_pci_device *device, u32 flags,
		       void *data, size_t size)
{
	struct {
		struct vfio_device_feature hdr;
		u64 payload;
	} feature = {
		.hdr.argsz = sizeof(feature.hdr) + size,
		.hdr.flags = flags,
	};

	VFIO_ASSERT_LE(size, sizeof(feature.payload));
	memcpy(&feature.payload, data, size);

	if (ioctl(device->fd, VFIO_DEVICE_FEATURE, &feature))
		return -errno;

	memcpy(data, &feature.payload, size);
	return 0;
}

/* The VFIO_MIGRATION_* flags of @device, or -errno. */
static s64 mig_get_flags(struct vfio_pci_device *device)
{
	struct vfio_device_feature_migration mig = {};
	int ret;

	ret = mig_feature(device, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIGRATION, &mig, sizeof(mig));
	return ret ? ret : (s64)mig.flags;
}

/* The migration state of @device, or -errno. */
static int mig_get(struct vfio_pci_device *device)
{
	struct vfio_device_feature_mig_state mig = { .data_fd = -1 };
	int ret;

	ret = mig_feature(device, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  &mig, sizeof(mig));
	return ret ? ret : (int)mig.device_state;
}

/*
 * Ask for @state.  Returns 0 or -errno; *@data_fd gets the data_fd the
 * kernel returned (-1 for none).
 */
static int mig_set(struct vfio_pci_device *device, u32 state, int *data_fd)
{
	struct vfio_device_feature_mig_state mig = {
		.device_state = state,
		.data_fd = -1,
	};
	int ret;

	ret = mig_feature(device, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  &mig, sizeof(mig));
	*data_fd = ret ? -1 : mig.data_fd;
	return ret;
}

static int mig_data_size(struct vfio_pci_device *device, u64 *size)
{
	struct vfio_device_feature_mig_data_size mig = {};
	int ret;

	ret = mig_feature(device, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &mig, sizeof(mig));
	*size = mig.stop_copy_length;
	return ret;
}

static int mig_precopy_info(int data_fd, struct vfio_precopy_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);

	return ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, info) ? -errno : 0;
}

/* Whether a device with migration @flags has @state (the uAPI's table). */
static bool mig_has_state(u64 flags, u32 state)
{
	switch (state) {
	case VFIO_DEVICE_STATE_STOP:
	case VFIO_DEVICE_STATE_RUNNING:
	case VFIO_DEVICE_STATE_STOP_COPY:
	case VFIO_DEVICE_STATE_RESUMING:
		return flags & VFIO_MIGRATION_STOP_COPY;
	case VFIO_DEVICE_STATE_RUNNING_P2P:
		return flags & VFIO_MIGRATION_P2P;
	case VFIO_DEVICE_STATE_PRE_COPY:
		return flags & VFIO_MIGRATION_PRE_COPY;
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
		return (flags & VFIO_MIGRATION_P2P) &&
		       (flags & VFIO_MIGRATION_PRE_COPY);
	default:
		/* ERROR is a state, but never one that can be asked for. */
		return false;
	}
}

static bool mig_saving(u32 state)
{
	return state == VFIO_DEVICE_STATE_PRE_COPY ||
	       state == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       state == VFIO_DEVICE_STATE_STOP_COPY;
}

/*
 * Whether SET @to from @from is refused although both states exist: the
 * saving group cannot be entered again from STOP_COPY.  Every other pair
 * of supported states is an arc or a combination of arcs.
 */
static bool mig_blocked(u32 from, u32 to)
{
	return from == VFIO_DEVICE_STATE_STOP_COPY &&
	       (to == VFIO_DEVICE_STATE_PRE_COPY ||
		to == VFIO_DEVICE_STATE_PRE_COPY_P2P);
}

/* Whether SET @to from @from starts a data transfer session (a data_fd). */
static bool mig_opens_session(u32 from, u32 to)
{
	if (from == to)
		return false;
	if (to == VFIO_DEVICE_STATE_RESUMING)
		return true;

	/* The saving group shares one session. */
	return mig_saving(to) && !mig_saving(from);
}

/* A migration stream, as read from a saving data_fd. */
struct mig_stream {
	u8 *data;
	size_t len;
	size_t cap;
};

static void mig_stream_free(struct mig_stream *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
}

/*
 * Append what @data_fd gives to @s until end of stream (returns 0) or, in
 * PRE_COPY, its temporary end (-ENOMSG) or @max bytes (-EFBIG).  Other
 * errors: -errno.
 */
static int mig_read(int data_fd, struct mig_stream *s, size_t max)
{
	size_t total = 0;
	ssize_t n;

	for (;;) {
		if (s->cap - s->len < MIG_READ_CHUNK) {
			s->cap = s->cap * 2 + MIG_READ_CHUNK;
			s->data = realloc(s->data, s->cap);
			VFIO_ASSERT_NOT_NULL(s->data);
		}

		n = read(data_fd, s->data + s->len, MIG_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;

		s->len += n;
		total += n;
		if (total >= max)
			return -EFBIG;
	}
}

/* Write @len bytes to @data_fd in MIG_WRITE_CHUNK pieces: 0 or -errno. */
static int mig_write(int data_fd, const u8 *data, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = write(data_fd, data + off, min_t(size_t, len - off,
						     MIG_WRITE_CHUNK));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;

		off += n;
	}

	return 0;
}

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Bytes no copy of the device could produce from the source pattern. */
static void poison(void *p, u64 size)
{
	memset(p, MIG_POISON, size);
}

static bool is_poisoned(const void *p, u64 size)
{
	const u8 *b = p;
	u64 i;

	for (i = 0; i < size; i++) {
		if (b[i] != MIG_POISON)
			return false;
	}

	return true;
}

/* A pattern that differs from run to run and from one buffer to another. */
static void fill_pattern(void *p, u64 size)
{
	static u64 x;
	u64 *w = p;
	u64 i;

	if (!x)
		x = now_ns() | 1;

	for (i = 0; i < size / sizeof(*w); i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		w[i] = x;
	}
}

/*
 * Which interrupt index the source's driver uses, as a VMM reads it from
 * config space: MSI-X when its capability is enabled, else MSI (whose
 * enable bit vfio-pci virtualises, so it cannot be read back).
 */
static u32 irq_index_in_use(struct vfio_pci_device *device)
{
	u8 pos = vfio_pci_config_readb(device, PCI_CAPABILITY_LIST) & ~3;
	int ttl = 48;
	u16 flags;

	while (pos && ttl--) {
		if (vfio_pci_config_readb(device, pos + PCI_CAP_LIST_ID) ==
		    PCI_CAP_ID_MSIX) {
			flags = vfio_pci_config_readw(device,
						      pos + PCI_MSIX_FLAGS);
			if (flags & PCI_MSIX_FLAGS_ENABLE)
				return VFIO_PCI_MSIX_IRQ_INDEX;
			break;
		}
		pos = vfio_pci_config_readb(device, pos + PCI_CAP_LIST_NEXT) & ~3;
	}

	return VFIO_PCI_MSI_IRQ_INDEX;
}

/*
 * What a VMM restores outside the device's migration stream: the command
 * register and the interrupt vectors the source had set up.
 */
static void restore_vmm_config(struct vfio_pci_device *src,
			       struct vfio_pci_device *dst)
{
	int first = -1, last = -1;
	unsigned int i;

	vfio_pci_config_writew(dst, PCI_COMMAND,
			       vfio_pci_config_readw(src, PCI_COMMAND));

	for (i = 0; i < ARRAY_SIZE(src->msi_eventfds); i++) {
		if (src->msi_eventfds[i] < 0)
			continue;
		if (first < 0)
			first = i;
		last = i;
	}

	if (first >= 0)
		vfio_pci_irq_enable(dst, irq_index_in_use(src), first,
				    last - first + 1);
}

/*
 * The work and the driver state move with the device: the destination's
 * driver continues where the source's stopped, on the same driver region
 * (same memory, same IOVAs), and the source has nothing in flight left.
 */
static void driver_hand_over(struct vfio_pci_device *src,
			     struct vfio_pci_device *dst)
{
	struct vfio_pci_driver *from = &src->driver, *to = &dst->driver;

	VFIO_ASSERT_EQ(from->ops, to->ops, "%s and %s have different drivers\n",
		       src->bdf, dst->bdf);
	VFIO_ASSERT_EQ(from->region.vaddr, to->region.vaddr);
	VFIO_ASSERT_EQ(from->region.iova, to->region.iova);

	to->initialized = from->initialized;
	to->memcpy_in_progress = from->memcpy_in_progress;
	to->max_memcpy_size = from->max_memcpy_size;
	to->max_memcpy_count = from->max_memcpy_count;
	to->msi = from->msi;

	from->memcpy_in_progress = false;
}

/* Back to RUNNING, by VFIO_DEVICE_RESET.  Returns whether one was needed. */
static bool reset_to_running(struct vfio_pci_device *device)
{
	int state = mig_get(device);

	if (state == VFIO_DEVICE_STATE_RUNNING)
		return false;

	vfio_pci_device_reset(device);
	state = mig_get(device);
	VFIO_ASSERT_EQ(state, VFIO_DEVICE_STATE_RUNNING,
		       "%s: %s after VFIO_DEVICE_RESET\n", device->bdf,
		       mig_state_name(state));
	return true;
}

/*
 * A VFIO_DEVICE_RESET undid what the driver's init() set up in the
 * device: set it up again.
 */
static void driver_reinit(struct vfio_pci_device *device)
{
	device->driver.memcpy_in_progress = false;
	vfio_pci_driver_remove(device);
	vfio_pci_driver_init(device);
}

/* Undo the driver's init(), whatever state the test left the device in. */
static void driver_teardown(struct vfio_pci_device *device)
{
	struct vfio_pci_driver *driver = &device->driver;
	bool reset = reset_to_running(device);

	if (!driver->initialized)
		return;

	if (driver->memcpy_in_progress) {
		if (reset)
			driver->memcpy_in_progress = false;
		else
			vfio_pci_driver_memcpy_wait(device);
	}

	vfio_pci_driver_remove(device);
}

static void region_map(struct iommu *iommu, struct dma_region *region,
		       void *vaddr, iova_t iova, u64 size)
{
	int ret;

	region->vaddr = vaddr;
	region->iova = iova;
	region->size = size;

	ret = __iommu_map(iommu, region);
	VFIO_ASSERT_EQ(ret, 0, "mapping IOVA 0x%llx size 0x%llx: %s\n",
		       (unsigned long long)iova, (unsigned long long)size,
		       strerror(-ret));
}

static void *alloc_dma_memory(u64 size)
{
	void *vaddr = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	VFIO_ASSERT_NE(vaddr, MAP_FAILED);
	return vaddr;
}

/* One function and its own IOMMU. */
struct mig_side {
	struct iommu *iommu;
	struct vfio_pci_device *device;
	struct dma_region memcpy_region;
};

FIXTURE(vfio_pci_device_migration_test) {
	struct mig_side src;
	struct mig_side dst;
	struct iova_allocator *iova_allocator;
	u64 flags;

	/* DMA memory, mapped at the same IOVAs for both functions. */
	void *mem;
	u64 mem_size;
	void *driver_mem;
	u64 driver_mem_size;
	iova_t mem_iova;

	/* The memcpy size, and four buffers of that size in mem. */
	u64 size;
	void *buf[4];
	iova_t iova[4];

	/* The session the arc walk has open (-1: none). */
	int data_fd;
	/* A stream of the source, written on every entry into RESUMING. */
	struct mig_stream image;
};

FIXTURE_VARIANT(vfio_pci_device_migration_test) {
	const char *iommu_mode;
};

#define FIXTURE_VARIANT_ADD_IOMMU_MODE(_iommu_mode)			\
FIXTURE_VARIANT_ADD(vfio_pci_device_migration_test, _iommu_mode) {	\
	.iommu_mode = #_iommu_mode,					\
}

FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES();

FIXTURE_SETUP(vfio_pci_device_migration_test)
{
	struct vfio_pci_device *src, *dst;
	unsigned int i;
	iova_t iova;
	s64 flags;

	self->data_fd = -1;

	self->src.iommu = iommu_init(variant->iommu_mode);
	self->src.device = vfio_pci_device_init(src_bdf, self->src.iommu);
	self->dst.iommu = iommu_init(variant->iommu_mode);
	self->dst.device = vfio_pci_device_init(dst_bdf, self->dst.iommu);
	src = self->src.device;
	dst = self->dst.device;

	VFIO_ASSERT_NOT_NULL(src->driver.ops, "%s: no libvfio driver\n",
			     src_bdf);
	VFIO_ASSERT_EQ(src->driver.ops, dst->driver.ops,
		       "%s and %s are not driven by the same libvfio driver\n",
		       src_bdf, dst_bdf);

	flags = mig_get_flags(src);
	VFIO_ASSERT_GE(flags, 0, "%s: no migration support\n", src_bdf);
	VFIO_ASSERT_EQ(flags, mig_get_flags(dst),
		       "%s and %s differ in migration flags\n",
		       src_bdf, dst_bdf);
	self->flags = flags;

	/* The IOVAs come from the source's ranges and must fit both. */
	self->iova_allocator = iova_allocator_init(self->src.iommu);

	self->driver_mem_size = SZ_2M;
	self->driver_mem = alloc_dma_memory(self->driver_mem_size);
	iova = iova_allocator_alloc(self->iova_allocator,
				    self->driver_mem_size);
	region_map(self->src.iommu, &src->driver.region, self->driver_mem,
		   iova, self->driver_mem_size);
	region_map(self->dst.iommu, &dst->driver.region, self->driver_mem,
		   iova, self->driver_mem_size);

	vfio_pci_driver_init(src);

	self->size = min_t(u64, src->driver.max_memcpy_size, MIG_COPY_MAX);
	self->mem_size = 4 * self->size;
	self->mem = alloc_dma_memory(self->mem_size);
	self->mem_iova = iova_allocator_alloc(self->iova_allocator,
					      self->mem_size);
	region_map(self->src.iommu, &self->src.memcpy_region, self->mem,
		   self->mem_iova, self->mem_size);
	region_map(self->dst.iommu, &self->dst.memcpy_region, self->mem,
		   self->mem_iova, self->mem_size);

	for (i = 0; i < ARRAY_SIZE(self->buf); i++) {
		self->buf[i] = self->mem + i * self->size;
		self->iova[i] = to_iova(src, self->buf[i]);
		VFIO_ASSERT_EQ(self->iova[i], to_iova(dst, self->buf[i]));
	}
}

FIXTURE_TEARDOWN(vfio_pci_device_migration_test)
{
	struct vfio_pci_device *src = self->src.device;
	struct vfio_pci_device *dst = self->dst.device;

	if (self->data_fd >= 0)
		close(self->data_fd);
	mig_stream_free(&self->image);

	/* The destination first: after a hand-over it has the work. */
	driver_teardown(dst);
	driver_teardown(src);

	iommu_unmap(self->dst.iommu, &self->dst.memcpy_region);
	iommu_unmap(self->src.iommu, &self->src.memcpy_region);
	iommu_unmap(self->dst.iommu, &dst->driver.region);
	iommu_unmap(self->src.iommu, &src->driver.region);
	VFIO_ASSERT_EQ(munmap(self->mem, self->mem_size), 0);
	VFIO_ASSERT_EQ(munmap(self->driver_mem, self->driver_mem_size), 0);

	iova_allocator_cleanup(self->iova_allocator);
	vfio_pci_device_cleanup(dst);
	vfio_pci_device_cleanup(src);
	iommu_cleanup(self->dst.iommu);
	iommu_cleanup(self->src.iommu);
}

/*
 * Copy one buffer of the fixture to another on @device and check the
 * result: the device works.
 */
static void memcpy_check(struct __test_metadata *_metadata,
			 FIXTURE_DATA(vfio_pci_device_migration_test) *self,
			 struct vfio_pci_device *device, int from, int to)
{
	fill_pattern(self->buf[from], self->size);
	poison(self->buf[to], self->size);

	ASSERT_EQ(0, vfio_pci_driver_memcpy(device, self->iova[from],
					    self->iova[to], self->size));
	ASSERT_EQ(0, memcmp(self->buf[from], self->buf[to], self->size));
}

/* Save the source's state from RUNNING, for the tests that resume it. */
static void capture_image(struct __test_metadata *_metadata,
			  FIXTURE_DATA(vfio_pci_device_migration_test) *self)
{
	struct vfio_pci_device *device = self->src.device;
	int fd, fd2, ret;

	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(device));
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_GE(fd, 0);

	ret = mig_read(fd, &self->image, SIZE_MAX);
	ASSERT_EQ(0, ret) TH_LOG("reading STOP_COPY data: %s", strerror(-ret));
	ASSERT_NE(0UL, self->image.len);

	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RUNNING, &fd2));
	ASSERT_EQ(-1, fd2);
	ASSERT_EQ(0, close(fd));
}

/*
 * SET @to on the source, an arc or a combination of arcs the device must
 * take, and check the outcome: GET reports @to, and a data_fd comes back
 * exactly when a session starts.  The session the walk has open follows
 * (self->data_fd); one that ended must refuse I/O.  A RESUMING session is
 * fed the image at once, so that it can be left.
 */
static void arc(struct __test_metadata *_metadata,
		FIXTURE_DATA(vfio_pci_device_migration_test) *self, u32 to)
{
	struct vfio_pci_device *device = self->src.device;
	int from = mig_get(device), fd, ret;
	bool ended;
	char c = 0;

	ASSERT_GE(from, 0);
	ret = mig_set(device, to, &fd);
	ASSERT_EQ(0, ret) TH_LOG("%s -> %s: %s", mig_state_name(from),
				 mig_state_name(to), strerror(-ret));
	ret = mig_get(device);
	ASSERT_EQ((int)to, ret)
		TH_LOG("%s -> %s: GET says %s", mig_state_name(from),
		       mig_state_name(to), mig_state_name(ret));
	ASSERT_EQ(mig_opens_session(from, to), fd >= 0)
		TH_LOG("%s -> %s: data_fd %d", mig_state_name(from),
		       mig_state_name(to), fd);

	if (self->data_fd >= 0) {
		if (mig_saving(from))
			ended = !mig_saving(to);
		else
			ended = to != VFIO_DEVICE_STATE_RESUMING;

		if (ended && mig_saving(from)) {
			ASSERT_EQ(-1, read(self->data_fd, &c, 1))
				TH_LOG("%s -> %s: the saving data_fd still reads",
				       mig_state_name(from), mig_state_name(to));
		} else if (ended) {
			ASSERT_EQ(-1, write(self->data_fd, &c, 1))
				TH_LOG("%s -> %s: the resuming data_fd still writes",
				       mig_state_name(from), mig_state_name(to));
		}
		if (ended) {
			ASSERT_EQ(0, close(self->data_fd));
			self->data_fd = -1;
		}
	}

	if (fd < 0)
		return;

	ASSERT_EQ(-1, self->data_fd);
	self->data_fd = fd;
	if (to == VFIO_DEVICE_STATE_RESUMING) {
		ret = mig_write(fd, self->image.data, self->image.len);
		ASSERT_EQ(0, ret) TH_LOG("writing %zu bytes in RESUMING: %s",
					 self->image.len, strerror(-ret));
	}
}

/* SET @to must fail and leave the source where it is. */
static void refused(struct __test_metadata *_metadata,
		    FIXTURE_DATA(vfio_pci_device_migration_test) *self, u32 to)
{
	struct vfio_pci_device *device = self->src.device;
	int from = mig_get(device), fd, ret;

	ASSERT_GE(from, 0);
	ret = mig_set(device, to, &fd);
	ASSERT_NE(0, ret) TH_LOG("%s -> %s (%u) accepted",
				 mig_state_name(from), mig_state_name(to), to);
	ASSERT_EQ(-1, fd);
	ret = mig_get(device);
	ASSERT_EQ(from, ret) TH_LOG("%s -> %s (%u) failed, but GET says %s",
				    mig_state_name(from), mig_state_name(to),
				    to, mig_state_name(ret));
}

/* Move the source to @state by arcs that are not the ones under test. */
static void walk_to(struct __test_metadata *_metadata,
		    FIXTURE_DATA(vfio_pci_device_migration_test) *self, u32 state)
{
	int cur = mig_get(self->src.device);

	if (cur == (int)state)
		return;
	if (mig_blocked(cur, state))
		arc(_metadata, self, VFIO_DEVICE_STATE_RUNNING);
	arc(_metadata, self, state);
}

/*
 * From every state the device has, SET every state: the ones it has
 * (single arcs and combinations alike) are reached, the others (ERROR,
 * states of features it lacks, values beyond the enum, and the saving
 * group from STOP_COPY) are refused with the state unchanged.
 */
TEST_F_TIMEOUT(vfio_pci_device_migration_test, arcs, 120)
{
	const u32 extra[] = { VFIO_DEVICE_STATE_NR, 0x80, ~0U };
	u32 from, to, i, nr_ok = 0, nr_refused = 0;
	u64 t0 = now_ns();

	capture_image(_metadata, self);

	for (from = 0; from < MIG_NR_STATES; from++) {
		if (!mig_has_state(self->flags, from))
			continue;

		for (i = 0; i < MIG_NR_STATES + ARRAY_SIZE(extra); i++) {
			to = i < MIG_NR_STATES ? i : extra[i - MIG_NR_STATES];

			walk_to(_metadata, self, from);
			if (mig_has_state(self->flags, to) &&
			    !mig_blocked(from, to)) {
				arc(_metadata, self, to);
				nr_ok++;
			} else {
				refused(_metadata, self, to);
				nr_refused++;
			}
		}
	}

	walk_to(_metadata, self, VFIO_DEVICE_STATE_RUNNING);
	TH_LOG("flags 0x%llx: %u transitions taken, %u refused, %llu ms",
	       (unsigned long long)self->flags, nr_ok, nr_refused,
	       (unsigned long long)(now_ns() - t0) / 1000000);

	/* The walk ended on the state it started from: the device works. */
	memcpy_check(_metadata, self, self->src.device, 0, 1);
}

/*
 * A stream the device cannot load is refused when RESUMING is left (or
 * already by write()), and the device does not pretend it was loaded: it
 * stays in RESUMING or goes to ERROR.  ERROR refuses every state, and
 * VFIO_DEVICE_RESET brings the device back to RUNNING, working.
 */
TEST_F_TIMEOUT(vfio_pci_device_migration_test, bad_stream, 60)
{
	struct vfio_pci_device *device = self->src.device;
	int round, fd, fd2, ret, wret, state;
	bool seen_error = false;
	size_t len, j;
	u32 to;
	u8 *data;
	char c = 0;

	capture_image(_metadata, self);
	data = malloc(self->image.len);
	ASSERT_NE(NULL, data);

	for (round = 0; round < 2; round++) {
		/* Round 0: half of a good stream; round 1: inverted bytes. */
		if (round == 0) {
			len = self->image.len / 2;
			memcpy(data, self->image.data, len);
		} else {
			len = self->image.len;
			for (j = 0; j < len; j++)
				data[j] = ~self->image.data[j];
		}

		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RESUMING, &fd));
		ASSERT_GE(fd, 0);
		wret = mig_write(fd, data, len);

		ret = mig_set(device, VFIO_DEVICE_STATE_STOP, &fd2);
		ASSERT_NE(0, ret) TH_LOG("%s stream of %zu bytes loaded (write: %s)",
					 round ? "an inverted" : "a truncated",
					 len, strerror(-wret));
		state = mig_get(device);
		ASSERT_TRUE(state == VFIO_DEVICE_STATE_RESUMING ||
			    state == VFIO_DEVICE_STATE_ERROR)
			TH_LOG("RESUMING -> STOP failed (%s), GET says %s",
			       strerror(-ret), mig_state_name(state));
		TH_LOG("%s stream: write %s, RESUMING -> STOP %s, now %s",
		       round ? "inverted" : "truncated", strerror(-wret),
		       strerror(-ret), mig_state_name(state));

		if (state == VFIO_DEVICE_STATE_ERROR) {
			seen_error = true;
			for (to = 0; to < MIG_NR_STATES; to++) {
				if (mig_has_state(self->flags, to))
					refused(_metadata, self, to);
			}
		}

		vfio_pci_device_reset(device);
		ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(device));
		ASSERT_EQ(-1, write(fd, &c, 1))
			TH_LOG("the resuming data_fd still writes after VFIO_DEVICE_RESET");
		ASSERT_EQ(0, close(fd));

		driver_reinit(device);
		memcpy_check(_metadata, self, device, 0, 1);
	}

	TH_LOG("ERROR state %s", seen_error ? "reached and left by reset" :
	       "not reached (the device stayed in RESUMING)");
	free(data);
}

/*
 * The data_fd rules: a saving fd does not write, a resuming fd does not
 * read, neither seeks; VFIO_MIG_GET_PRECOPY_INFO works only in the
 * PRE_COPY states; the saving group shares one fd; leaving the session's
 * states or VFIO_DEVICE_RESET ends it.
 */
TEST_F_TIMEOUT(vfio_pci_device_migration_test, data_fd, 60)
{
	struct vfio_pci_device *device = self->src.device;
	bool precopy = self->flags & VFIO_MIGRATION_PRE_COPY;
	bool p2p = self->flags & VFIO_MIGRATION_P2P;
	struct mig_stream s = {};
	struct vfio_precopy_info info;
	int fd, fd2, ret;
	u64 size;
	char c = 0;

	capture_image(_metadata, self);

	/* STOP_COPY, entered from RUNNING through the combination arc. */
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_GE(fd, 0);
	ASSERT_EQ(-1, write(fd, &c, 1));
	ASSERT_EQ(-1, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, pread(fd, &c, 1, 0));
	ASSERT_EQ(ESPIPE, errno);
	ret = mig_precopy_info(fd, &info);
	/* Mandatory with PRE_COPY (EINVAL here), maybe absent without. */
	ASSERT_TRUE(precopy ? ret == -EINVAL : ret != 0)
		TH_LOG("VFIO_MIG_GET_PRECOPY_INFO in STOP_COPY: %s",
		       strerror(-ret));
	ASSERT_EQ(0, mig_data_size(device, &size));
	ASSERT_NE(0ULL, size);
	TH_LOG("STOP_COPY: MIG_DATA_SIZE %llu, stream %zu bytes",
	       (unsigned long long)size, self->image.len);
	ASSERT_EQ(1, read(fd, &c, 1));
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP, &fd2));
	ASSERT_EQ(-1, fd2);
	ASSERT_EQ(-1, read(fd, &c, 1)) TH_LOG("read after STOP_COPY -> STOP");
	ASSERT_EQ(0, close(fd));

	/* RESUMING, entered from STOP. */
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_GE(fd, 0);
	ASSERT_EQ(-1, read(fd, &c, 1));
	ASSERT_EQ(-1, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, pwrite(fd, &c, 1, 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_NE(0, mig_precopy_info(fd, &info));
	ASSERT_EQ(0, mig_write(fd, self->image.data, self->image.len));
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP, &fd2));
	ASSERT_EQ(-1, fd2);
	ASSERT_EQ(-1, write(fd, &c, 1)) TH_LOG("write after RESUMING -> STOP");
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RUNNING, &fd2));
	ASSERT_EQ(-1, fd2);

	if (precopy) {
		/* PRE_COPY, then STOP_COPY on the same fd. */
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_PRE_COPY, &fd));
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, mig_precopy_info(fd, &info));
		ASSERT_EQ(-1, write(fd, &c, 1));
		ASSERT_EQ(-1, lseek(fd, 0, SEEK_SET));
		ASSERT_EQ(ESPIPE, errno);
		ret = mig_read(fd, &s, MIG_PRECOPY_MAX);
		ASSERT_TRUE(ret == -ENOMSG || ret == -EFBIG)
			TH_LOG("reading PRE_COPY data: %s", strerror(-ret));
		if (p2p) {
			ASSERT_EQ(0, mig_set(device,
					     VFIO_DEVICE_STATE_PRE_COPY_P2P,
					     &fd2));
			ASSERT_EQ(-1, fd2);
			ASSERT_EQ(0, mig_precopy_info(fd, &info));
		}
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP_COPY, &fd2));
		ASSERT_EQ(-1, fd2);
		ASSERT_EQ(-EINVAL, mig_precopy_info(fd, &info));
		ret = mig_read(fd, &s, SIZE_MAX);
		ASSERT_EQ(0, ret) TH_LOG("reading STOP_COPY data after PRE_COPY: %s",
					 strerror(-ret));
		ASSERT_EQ(0, read(fd, &c, 1));
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP, &fd2));
		ASSERT_EQ(-1, read(fd, &c, 1));
		ASSERT_EQ(0, close(fd));

		/* That stream loads. */
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RESUMING, &fd));
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, mig_write(fd, s.data, s.len));
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RUNNING, &fd2));
		ASSERT_EQ(-1, fd2);
		ASSERT_EQ(0, close(fd));

		/* PRE_COPY -> RUNNING ends the session. */
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_PRE_COPY, &fd));
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_RUNNING, &fd2));
		ASSERT_EQ(-1, read(fd, &c, 1));
		ASSERT_NE(0, mig_precopy_info(fd, &info));
		ASSERT_EQ(0, close(fd));
	}
	mig_stream_free(&s);

	/* VFIO_DEVICE_RESET ends a session and returns to RUNNING. */
	ASSERT_EQ(0, mig_set(device, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_GE(fd, 0);
	vfio_pci_device_reset(device);
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(device));
	ASSERT_EQ(-1, read(fd, &c, 1)) TH_LOG("read after VFIO_DEVICE_RESET");
	ASSERT_EQ(0, close(fd));

	driver_reinit(device);
	memcpy_check(_metadata, self, device, 0, 1);
}

/*
 * The migration itself.  The source copies buf[0] to buf[1] over and
 * over (one memcpy_start(), sized to last about MIG_INFLIGHT_NS) and is
 * migrated while it does: RUNNING -> PRE_COPY (reading pre-copy data
 * while it runs) -> PRE_COPY_P2P or RUNNING_P2P -> STOP_COPY, as far as
 * the device has these states.  From STOP_COPY on, buf[1] is poisoned
 * and nothing may write it: the source is stopped, and the destination
 * does not run yet.  The destination resumes the stream and runs; its
 * memcpy_wait() on the state handed over must then see every copy
 * complete, and buf[1] equal buf[0] again, which only a copy done after
 * the resume can have written.  Then nothing writes buf[1] any more (no
 * copy ran twice past the count), and the destination goes on working:
 * a second memcpy and an MSI.
 */
TEST_F_TIMEOUT(vfio_pci_device_migration_test, migrate_inflight_memcpy, 120)
{
	struct vfio_pci_device *src = self->src.device;
	struct vfio_pci_device *dst = self->dst.device;
	bool precopy = self->flags & VFIO_MIGRATION_PRE_COPY;
	bool p2p = self->flags & VFIO_MIGRATION_P2P;
	void *from = self->buf[0], *to = self->buf[1];
	u64 n0, count, per_op, t0, t_stop, t_resume, size;
	u64 precopy_len = 0, initial = 0, value;
	struct vfio_precopy_info info;
	struct mig_stream stream = {};
	int fd = -1, fd2, ret, state;

	/* How long one copy takes, to size the stream kept in flight. */
	n0 = min_t(u64, 16, src->driver.max_memcpy_count);
	fill_pattern(from, self->size);
	poison(to, self->size);
	t0 = now_ns();
	vfio_pci_driver_memcpy_start(src, self->iova[0], self->iova[1],
				     self->size, n0);
	ASSERT_EQ(0, vfio_pci_driver_memcpy_wait(src));
	per_op = max_t(u64, 1, (now_ns() - t0) / n0);
	ASSERT_EQ(0, memcmp(from, to, self->size));

	count = max_t(u64, MIG_INFLIGHT_NS / per_op, n0);
	count = min_t(u64, count, src->driver.max_memcpy_count);
	TH_LOG("%llu copies of 0x%llx bytes, %llu us each: about %llu ms of work",
	       (unsigned long long)count, (unsigned long long)self->size,
	       (unsigned long long)per_op / 1000,
	       (unsigned long long)(count * per_op / 1000000));

	fill_pattern(from, self->size);
	poison(to, self->size);
	t0 = now_ns();
	vfio_pci_driver_memcpy_start(src, self->iova[0], self->iova[1],
				     self->size, count);

	if (precopy) {
		ASSERT_EQ(0, mig_set(src, VFIO_DEVICE_STATE_PRE_COPY, &fd));
		ASSERT_GE(fd, 0);
		ASSERT_EQ(VFIO_DEVICE_STATE_PRE_COPY, mig_get(src));
		ASSERT_EQ(0, mig_precopy_info(fd, &info));
		initial = info.initial_bytes;

		ret = mig_read(fd, &stream, MIG_PRECOPY_MAX);
		ASSERT_TRUE(ret == -ENOMSG || ret == -EFBIG)
			TH_LOG("reading PRE_COPY data: %s", strerror(-ret));
		precopy_len = stream.len;
		if (ret == -ENOMSG) {
			/* The temporary end: all initial data was read. */
			ASSERT_GE(precopy_len, initial);
			ASSERT_EQ(0, mig_precopy_info(fd, &info));
			ASSERT_EQ(0ULL, info.initial_bytes);
		}
	}

	if (p2p) {
		state = precopy ? VFIO_DEVICE_STATE_PRE_COPY_P2P :
				  VFIO_DEVICE_STATE_RUNNING_P2P;
		ASSERT_EQ(0, mig_set(src, state, &fd2));
		ASSERT_EQ(-1, fd2);
		ASSERT_EQ(state, mig_get(src));
	}

	ASSERT_EQ(0, mig_set(src, VFIO_DEVICE_STATE_STOP_COPY, &fd2));
	t_stop = now_ns();
	if (fd >= 0) {
		ASSERT_EQ(-1, fd2);
	} else {
		ASSERT_GE(fd2, 0);
		fd = fd2;
	}
	ASSERT_EQ(VFIO_DEVICE_STATE_STOP_COPY, mig_get(src));

	/* Stopped: from here on the source must not write memory. */
	poison(to, self->size);

	ASSERT_EQ(0, mig_data_size(src, &size));
	ret = mig_read(fd, &stream, SIZE_MAX);
	ASSERT_EQ(0, ret) TH_LOG("reading STOP_COPY data: %s", strerror(-ret));
	ASSERT_GT(stream.len, precopy_len);
	ASSERT_EQ(0, mig_set(src, VFIO_DEVICE_STATE_STOP, &fd2));
	ASSERT_EQ(0, close(fd));
	TH_LOG("stopped after %llu ms; pre-copy %zu bytes (initial_bytes %llu)",
	       (unsigned long long)(t_stop - t0) / 1000000, precopy_len,
	       (unsigned long long)initial);
	TH_LOG("stop-copy %zu bytes (MIG_DATA_SIZE %llu)",
	       stream.len - precopy_len, (unsigned long long)size);

	usleep(MIG_QUIET_US);
	ASSERT_TRUE(is_poisoned(to, self->size))
		TH_LOG("%s wrote to memory after STOP_COPY", src->bdf);

	/* The destination loads the stream, as the source's twin. */
	ASSERT_EQ(0, mig_set(dst, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_GE(fd, 0);
	ret = mig_write(fd, stream.data, stream.len);
	ASSERT_EQ(0, ret) TH_LOG("writing %zu bytes to %s: %s", stream.len,
				 dst->bdf, strerror(-ret));
	restore_vmm_config(src, dst);
	ret = mig_set(dst, VFIO_DEVICE_STATE_STOP, &fd2);
	ASSERT_EQ(0, ret) TH_LOG("%s: RESUMING -> STOP: %s", dst->bdf,
				 strerror(-ret));
	ASSERT_EQ(0, close(fd));
	ASSERT_TRUE(is_poisoned(to, self->size))
		TH_LOG("memory written before %s runs", dst->bdf);

	t_resume = now_ns();
	ASSERT_EQ(0, mig_set(dst, VFIO_DEVICE_STATE_RUNNING, &fd2));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(dst));
	driver_hand_over(src, dst);

	ASSERT_EQ(0, vfio_pci_driver_memcpy_wait(dst));
	TH_LOG("the destination finished the stream %llu ms after it ran",
	       (unsigned long long)(now_ns() - t_resume) / 1000000);
	ASSERT_EQ(0, memcmp(from, to, self->size))
		TH_LOG("no copy ran on %s after the resume (or %s did all %llu before STOP_COPY)",
		       dst->bdf, src->bdf, (unsigned long long)count);

	/* Exactly the copies submitted: nothing runs after the wait. */
	poison(to, self->size);
	usleep(MIG_QUIET_US);
	ASSERT_TRUE(is_poisoned(to, self->size))
		TH_LOG("memory written after memcpy_wait() returned");

	/* The destination goes on working: another copy, an MSI. */
	memcpy_check(_metadata, self, dst, 2, 3);
	if (dst->driver.ops->send_msi) {
		struct pollfd pfd = {
			.fd = dst->msi_eventfds[dst->driver.msi],
			.events = POLLIN,
		};

		fcntl_set_nonblock(src->msi_eventfds[src->driver.msi]);
		vfio_pci_driver_send_msi(dst);
		/*
		 * The completion is seen before the guest kernel has taken
		 * the interrupt and signalled the eventfd: wait for it (the
		 * bound only turns a lost MSI into a failure, it is no timer).
		 */
		ASSERT_EQ(1, poll(&pfd, 1, 60000))
			TH_LOG("no MSI from %s", dst->bdf);
		ASSERT_EQ(8, read(pfd.fd, &value, 8));
		ASSERT_EQ(1ULL, value);
		ASSERT_EQ(-1, read(src->msi_eventfds[src->driver.msi], &value, 8))
			TH_LOG("%s sent %llu interrupts", src->bdf,
			       (unsigned long long)value);
		ASSERT_EQ(EAGAIN, errno);
	}

	/* The source, reset out of STOP, has nothing left to do either. */
	ASSERT_TRUE(reset_to_running(src));
	poison(to, self->size);
	usleep(MIG_QUIET_US);
	ASSERT_TRUE(is_poisoned(to, self->size))
		TH_LOG("memory written after %s was reset", src->bdf);

	mig_stream_free(&stream);
}

/* Why the function at @bdf cannot take part, or NULL. */
static const char *cannot_migrate(const char *bdf)
{
	struct vfio_pci_device *device;
	const char *why = NULL;
	struct iommu *iommu;
	s64 flags;

	iommu = iommu_init(default_iommu_mode);
	device = vfio_pci_device_init(bdf, iommu);

	flags = mig_get_flags(device);
	if (!device->driver.ops)
		why = "no libvfio driver for this device";
	else if (flags < 0)
		why = "no VFIO_DEVICE_FEATURE_MIGRATION";
	else if (!(flags & VFIO_MIGRATION_STOP_COPY))
		why = "VFIO_MIGRATION_STOP_COPY not set";

	vfio_pci_device_cleanup(device);
	iommu_cleanup(iommu);
	return why;
}

int main(int argc, char *argv[])
{
	const char *why;
	char **bdfs;
	int nr_bdfs;

	bdfs = vfio_selftests_get_bdfs(&argc, argv, &nr_bdfs);
	if (nr_bdfs > 2) {
		fprintf(stderr, "usage: %s [options] SRC_BDF [DST_BDF]\n",
			argv[0]);
		return KSFT_FAIL;
	}

	src_bdf = bdfs[0];
	dst_bdf = nr_bdfs == 2 ? bdfs[1] : getenv("VFIO_SELFTESTS_MIG_DST_BDF");
	/* A plan of 0 and the reason, for the TAP reader. */
	if (!dst_bdf || !*dst_bdf)
		ksft_exit_skip("no destination: pass SRC_BDF DST_BDF or set %s\n",
			       "$VFIO_SELFTESTS_MIG_DST_BDF");
	if (!strcmp(src_bdf, dst_bdf)) {
		fprintf(stderr, "Source and destination are both %s\n", src_bdf);
		return KSFT_FAIL;
	}

	why = cannot_migrate(src_bdf);
	if (why)
		ksft_exit_skip("source %s: %s\n", src_bdf, why);
	why = cannot_migrate(dst_bdf);
	if (why)
		ksft_exit_skip("destination %s: %s\n", dst_bdf, why);

	return test_harness_run(argc, argv);
}
