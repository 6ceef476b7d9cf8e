// SPDX-License-Identifier: GPL-2.0-only
/*
 * Smoke test of the VFIO migration uAPI against a second, independent
 * implementation: the kernel's mtty sample (samples/vfio-mdev/mtty.c).
 * Creates two mtty-2 mdev instances, opens both through vfio (group +
 * container, or the device cdev + iommufd with VFIO_MIG_BACKEND=iommufd),
 * puts a mark in the UART scratch registers of the source and moves its
 * state through STOP_COPY into the destination, which must then read the
 * same marks.  Also asks for a DMA dirty report: mtty offers log_ops, and
 * on a kernel without IOMMUFD_DRIVER the report is a stub (EOPNOTSUPP),
 * which is why QEMU's migration of mtty fails there (printed as a SKIP).
 *
 * SKIPs when mtty is not loaded.  Plain TAP (kselftest.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest.h"
#include "mig_util.h"

#define MTTY_TYPE	"/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2"
#define MDEV_DEVS	"/sys/bus/mdev/devices"
#define UART_SCR	7
#define REGION_OFF(i)	((uint64_t)(i) << 40)	/* mtty's region offsets */

struct mtty {
	char uuid[40];
	bool created;
	int group_fd;
	struct vu_device d;
};

static int container_fd = -1, iommufd = -1;
static uint32_t ioas_id;
static bool iommu_set;

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int mtty_create(struct mtty *m)
{
	FILE *f = fopen("/proc/sys/kernel/random/uuid", "r");
	int ret;

	if (!f || !fgets(m->uuid, sizeof(m->uuid), f)) {
		if (f)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	m->uuid[strcspn(m->uuid, "\n")] = 0;
	ret = write_str(MTTY_TYPE "/create", m->uuid);
	if (ret)
		ksft_print_msg("create %s: %s\n", m->uuid, strerror(-ret));
	m->created = !ret;
	return ret;
}

static void mtty_destroy(struct mtty *m)
{
	char path[PATH_MAX];

	if (m->d.fd > 0)
		close(m->d.fd);
	m->d.fd = -1;
	if (m->group_fd > 0)
		close(m->group_fd);
	m->group_fd = -1;
	if (m->created) {
		snprintf(path, sizeof(path), MDEV_DEVS "/%s/remove", m->uuid);
		write_str(path, "1");
		m->created = false;
	}
}

/* Legacy path: the mdev's (emulated) IOMMU group in a type1 container. */
static int open_group(struct mtty *m)
{
	char path[PATH_MAX], link[256];
	struct vfio_group_status st = { .argsz = sizeof(st) };
	ssize_t n;
	char *g;

	snprintf(path, sizeof(path), MDEV_DEVS "/%s/iommu_group", m->uuid);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	g = strrchr(link, '/');
	snprintf(path, sizeof(path), "/dev/vfio/%s", g ? g + 1 : link);
	m->group_fd = open(path, O_RDWR);
	if (m->group_fd < 0)
		return -errno;
	if (ioctl(m->group_fd, VFIO_GROUP_GET_STATUS, &st) ||
	    !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EBUSY;
	if (container_fd < 0) {
		container_fd = open("/dev/vfio/vfio", O_RDWR);
		if (container_fd < 0)
			return -errno;
	}
	if (ioctl(m->group_fd, VFIO_GROUP_SET_CONTAINER, &container_fd))
		return -errno;
	/* Once, after the first group joined the container. */
	if (!iommu_set) {
		if (ioctl(container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
			return -errno;
		iommu_set = true;
	}
	m->d.fd = ioctl(m->group_fd, VFIO_GROUP_GET_DEVICE_FD, m->uuid);
	return m->d.fd < 0 ? -errno : 0;
}

/* iommufd path: /dev/vfio/devices/vfioN bound to /dev/iommu, one IOAS. */
static int open_cdev(struct mtty *m)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	char path[PATH_MAX];
	struct dirent *de;
	char name[sizeof(de->d_name)] = "";
	DIR *dir;

	if (iommufd < 0) {
		struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };

		iommufd = open("/dev/iommu", O_RDWR);
		if (iommufd < 0)
			return -errno;
		if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
			return -errno;
		ioas_id = alloc.out_ioas_id;
	}
	snprintf(path, sizeof(path), MDEV_DEVS "/%s/vfio-dev", m->uuid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, "vfio", 4))
			snprintf(name, sizeof(name), "%s", de->d_name);
	closedir(dir);
	if (!name[0])
		return -ENOENT;
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	m->d.fd = open(path, O_RDWR);
	if (m->d.fd < 0)
		return -errno;
	bind.iommufd = iommufd;
	if (ioctl(m->d.fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	at.pt_id = ioas_id;
	if (ioctl(m->d.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
		return -errno;
	return 0;
}

static int uart_rw(struct mtty *m, int port, int reg, uint8_t *val, bool wr)
{
	uint64_t off = REGION_OFF(port) + reg;
	ssize_t n = wr ? pwrite(m->d.fd, val, 1, off) : pread(m->d.fd, val, 1, off);

	return n == 1 ? 0 : (n < 0 ? -errno : -EIO);
}

/* VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT over 64 KiB at IOVA 0. */
static int dma_logging_report(struct mtty *m)
{
	uint8_t buf[sizeof(struct vfio_device_feature) +
		    sizeof(struct vfio_device_feature_dma_logging_report)]
		__attribute__((aligned(8))) = { 0 };
	struct vfio_device_feature *f = (void *)buf;
	struct vfio_device_feature_dma_logging_report *r = (void *)f->data;
	uint64_t bitmap[4] = { 0 };

	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT;
	r->iova = 0;
	r->length = 64 << 10;
	r->page_size = 4096;
	r->bitmap = (uintptr_t)bitmap;
	return ioctl(m->d.fd, VFIO_DEVICE_FEATURE, f) ? -errno : 0;
}

int main(void)
{
	static const uint8_t mark[2] = { 0x5a, 0xa5 };
	struct mtty src = { .group_fd = -1, .d.fd = -1 };
	struct mtty dst = { .group_fd = -1, .d.fd = -1 };
	enum vu_backend be = vu_backend_from_env();
	struct mig_buf stream = { 0 };
	uint64_t flags = 0;
	uint32_t state;
	uint8_t v;
	int ret, p;
	bool ok;

	ksft_print_header();
	if (access(MTTY_TYPE "/create", W_OK))
		ksft_exit_skip("mtty not loaded (no %s)\n", MTTY_TYPE);
	ksft_set_plan(5);
	ksft_print_msg("backend %s\n", vu_backend_name(be));

	ret = mtty_create(&src) ?: mtty_create(&dst);
	if (!ret)
		ret = be == VU_BACKEND_IOMMUFD ? open_cdev(&src) ?: open_cdev(&dst)
					       : open_group(&src) ?: open_group(&dst);
	if (ret) {
		ksft_test_result_fail("mtty-open: %s\n", strerror(-ret));
		mtty_destroy(&src);
		mtty_destroy(&dst);
		ksft_exit_fail();
	}
	ksft_test_result_pass("mtty-open (%s, %s)\n", src.uuid, dst.uuid);

	ret = mig_get_flags(&src.d, &flags);
	ksft_test_result(!ret && (flags & VFIO_MIGRATION_STOP_COPY) &&
			 (flags & VFIO_MIGRATION_P2P),
			 "mtty-mig-flags (%#llx)\n", (unsigned long long)flags);

	/* Mark both ports of the source, then move it into the destination. */
	ok = true;
	for (p = 0; p < 2; p++) {
		v = mark[p];
		ok &= !uart_rw(&src, p, UART_SCR, &v, true);
		v = 0;
		ok &= !uart_rw(&dst, p, UART_SCR, &v, true);
	}
	ret = ok ? mig_save_stop_copy(&src.d, &stream) : -EIO;
	if (!ret)
		ret = mig_set_state(&dst.d, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = mig_load(&dst.d, stream.p, stream.len, 4096);
	if (!ret)
		ret = mig_set_state(&dst.d, VFIO_DEVICE_STATE_RUNNING, NULL);
	for (p = 0; !ret && p < 2; p++) {
		ret = uart_rw(&dst, p, UART_SCR, &v, false);
		if (!ret && v != mark[p]) {
			ksft_print_msg("port %d scratch %#x, want %#x\n", p, v, mark[p]);
			ret = -EBADMSG;
		}
	}
	ksft_test_result(!ret, "mtty-stop-copy-move (%zu stream bytes)%s%s\n",
			 stream.len, ret ? ": " : "", ret ? strerror(-ret) : "");

	ret = mig_set_state(&src.d, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (!ret)
		ret = mig_get_state(&src.d, &state);
	ksft_test_result(!ret && state == VFIO_DEVICE_STATE_RUNNING,
			 "mtty-source-resumes-running\n");

	ret = dma_logging_report(&src);
	if (!ret)
		ksft_test_result_pass("mtty-dma-logging-report (kernel has IOMMUFD_DRIVER)\n");
	else if (ret == -EOPNOTSUPP)
		ksft_test_result_skip("mtty-dma-logging-report: EOPNOTSUPP, kernel lacks IOMMUFD_DRIVER; mtty offers log_ops anyway, so QEMU's migration of mtty fails on this kernel (informational, not a uAPI failure)\n");
	else
		ksft_test_result_fail("mtty-dma-logging-report: %s\n", strerror(-ret));

	mig_buf_free(&stream);
	mtty_destroy(&src);
	mtty_destroy(&dst);
	if (container_fd >= 0)
		close(container_fd);
	if (iommufd >= 0)
		close(iommufd);
	ksft_finished();
}
