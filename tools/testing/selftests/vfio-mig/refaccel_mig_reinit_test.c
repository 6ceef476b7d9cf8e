// SPDX-License-Identifier: GPL-2.0-only
/*
 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 and VFIO_PRECOPY_INFO_REINIT: a
 * function reset by the guest's driver (CTRL.RESET) during PRE_COPY clears
 * the SRAM, which voids the initial data the destination pre-loaded.
 *
 *   v1 (no opt-in): PRECOPY_INFO's flags stay 0 whatever the user passed;
 *     the cleared pages are dirty bytes.
 *   v2 (opt-in): one PRECOPY_INFO reports REINIT, with the whole pass as
 *     new initial_bytes (plus whatever was buffered) and dirty_bytes 0;
 *     the opt-in ends when the device is closed.
 *
 * In every case the stream is valid end to end (mig_stream_verify()) and
 * function B, loaded from it, holds what A holds.  Needs two functions
 * bound to refaccel-vfio-pci (else SKIP).  The feature number and flag are
 * uAPI (7.x's <linux/vfio.h>); the 6.12 headers the suite builds against
 * lack them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define FEATURE_PRECOPY_INFO_V2	12
#define PRECOPY_INFO_REINIT	(1u << 0)
#define STREAM_CHUNK		(64u << 10)

FIXTURE(reinit) {
	struct ra_found found;
	struct vu_iommu iommu;
	struct mig_env a, b;
	char bdf[2][VU_BDF_LEN];
	uint8_t *img, *got;
	uint64_t rng;
	bool iommu_ok;
};

FIXTURE_SETUP(reinit)
{
	char why[700];
	enum vu_backend be = vu_backend_from_env();
	int ret, n, i;

	self->rng = 0x5eed0f2e1417ull;
	n = env_find(&self->found, self->bdf, 2, why, sizeof(why));
	if (!n)
		SKIP(return, "%s", why);
	for (i = 0; i < n; i++)
		if (!ra_driver_is_variant(self->found.driver[i]))
			break;
	if (n < 2 || i < 2)
		SKIP(return, "needs two functions bound to refaccel-vfio-pci");
	ret = vu_iommu_init(&self->iommu, be);
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend", vu_backend_name(be));
	ASSERT_EQ(0, ret);
	self->iommu_ok = true;
	for (i = 0; i < 2; i++) {
		ret = env_open(i ? &self->b : &self->a, &self->iommu,
			       self->bdf[i], why, sizeof(why));
		if (ret == 1)
			SKIP(return, "%s", why);
		ASSERT_EQ(0, ret) TH_LOG("open %s: %s", self->bdf[i],
					 strerror(-ret));
	}
	ASSERT_EQ(self->a.lim.mem_size, self->b.lim.mem_size);
	ASSERT_LT(0u, self->a.lim.mem_size) TH_LOG("no SRAM: nothing to pre-copy");
	self->img = malloc(self->a.lim.mem_size);
	self->got = malloc(self->a.lim.mem_size);
	ASSERT_NE(NULL, self->img);
	ASSERT_NE(NULL, self->got);
}

FIXTURE_TEARDOWN(reinit)
{
	env_close(&self->b);
	env_close(&self->a);
	if (self->iommu_ok)
		vu_iommu_cleanup(&self->iommu);
	free(self->img);
	free(self->got);
}

/* VFIO_MIG_GET_PRECOPY_INFO with @in as the flags passed in. */
static int precopy_info(int fd, uint32_t in, uint32_t *flags, uint64_t *init,
			uint64_t *dirty)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info), .flags = in };

	if (ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		return -errno;
	*flags = info.flags;
	*init = info.initial_bytes;
	*dirty = info.dirty_bytes;
	return 0;
}

static int opt_in(struct mig_env *e)
{
	return mig_feature(&e->dev.vdev, VFIO_DEVICE_FEATURE_SET |
			   FEATURE_PRECOPY_INFO_V2, NULL, 0);
}

/* Bytes of an initial pass over all of SRAM, without the stream header. */
static uint64_t pass_bytes(const struct mig_limits *lim)
{
	uint64_t pages = lim->mem_size / lim->page_size;
	uint64_t per_rec = VMIG_MEM_CHUNK_MAX / lim->page_size;

	return lim->mem_size + (pages + per_rec - 1) / per_rec *
		(sizeof(struct vmig_rec_hdr) + sizeof(uint64_t));
}

static uint64_t one_page_bytes(const struct mig_limits *lim)
{
	return lim->page_size + sizeof(struct vmig_rec_hdr) + sizeof(uint64_t);
}

/* What the guest's driver does: reset the function, SRAM cleared. */
static void guest_reset(struct mig_env *e)
{
	ra_wr(&e->dev, REFACCEL_REG_CTRL, REFACCEL_CTRL_RESET);
}

/* Random data in SRAM page @p of A. */
static void write_page(struct __test_metadata *_metadata,
		       FIXTURE_DATA(reinit) *self, uint32_t p)
{
	uint8_t page[ENV_PAGE];

	ra_rand_fill(page, sizeof(page), &self->rng);
	ASSERT_EQ(0, ra_sram_write(&self->a.dev, (uint64_t)p * ENV_PAGE, page,
				   sizeof(page)));
}

/* Random data in all of A's SRAM, then A to PRE_COPY: its data_fd. */
static int start_pre_copy(struct __test_metadata *_metadata,
			  FIXTURE_DATA(reinit) *self)
{
	uint64_t size = self->a.lim.mem_size;
	int fd = -1;

	ra_rand_fill(self->img, size, &self->rng);
	EXPECT_EQ(0, ra_sram_write(&self->a.dev, 0, self->img, size));
	EXPECT_EQ(0, mig_set_state(&self->a.dev.vdev, VFIO_DEVICE_STATE_PRE_COPY,
				   &fd));
	return fd;
}

/*
 * Read up to the temporary end of PRE_COPY; afterwards nothing is owed.
 */
static void drain(struct __test_metadata *_metadata, int fd, struct mig_buf *s)
{
	uint64_t init = 0, dirty = 0;
	uint32_t flags = 0;
	bool eof;

	ASSERT_EQ(0, mig_read_stream(fd, s, STREAM_CHUNK, &eof));
	ASSERT_FALSE(eof) TH_LOG("PRE_COPY must not reach EOF");
	ASSERT_EQ(0, precopy_info(fd, 0, &flags, &init, &dirty));
	EXPECT_EQ(0u, flags);
	EXPECT_EQ(0u, init);
	EXPECT_EQ(0u, dirty);
}

/*
 * Leave PRE_COPY for STOP_COPY, read to EOF, check the whole stream, load
 * it into B and compare B's SRAM with A's.
 */
static void finish_and_load(struct __test_metadata *_metadata,
			    FIXTURE_DATA(reinit) *self, int fd,
			    struct mig_buf *s)
{
	struct vu_device *va = &self->a.dev.vdev, *vb = &self->b.dev.vdev;
	struct mig_verdict v;
	uint64_t size = self->a.lim.mem_size;
	bool eof;

	ASSERT_EQ(0, mig_set_state(va, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(va, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(0, mig_read_stream(fd, s, STREAM_CHUNK, &eof));
	ASSERT_TRUE(eof);
	close(fd);
	ASSERT_EQ(0, ra_sram_read(&self->a.dev, 0, self->img, size));

	memset(self->got, 0xa5, size);
	mig_stream_verify(s->p, s->len, &self->a.lim, NULL, &v, self->got);
	ASSERT_EQ((int)MIG_V_ACCEPT, (int)v.kind) TH_LOG("stream: %s", v.why);
	EXPECT_EQ(0, memcmp(self->got, self->img, size))
		TH_LOG("the stream's SRAM image is not A's SRAM");

	ASSERT_EQ(0, mig_set_state(vb, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_load(vb, s->p, s->len, STREAM_CHUNK));
	ASSERT_EQ(0, mig_set_state(vb, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, mig_set_state(va, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, ra_sram_read(&self->b.dev, 0, self->got, size));
	EXPECT_EQ(0, memcmp(self->got, self->img, size))
		TH_LOG("B's SRAM after the load is not A's");
}

/* Without the opt-in: flags 0 whatever was passed, cleared pages dirty. */
TEST_F_TIMEOUT(reinit, v1_reset_is_dirty_flags_stay_zero, 600)
{
	struct mig_limits *lim = &self->a.lim;
	struct mig_buf s = { 0 };
	uint64_t init = 0, dirty = 0;
	uint32_t flags = 0;
	int fd;

	fd = start_pre_copy(_metadata, self);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, precopy_info(fd, ~0u, &flags, &init, &dirty));
	EXPECT_EQ(0u, flags) TH_LOG("v1: flags must be 0, got 0x%x", flags);
	drain(_metadata, fd, &s);

	guest_reset(&self->a);
	write_page(_metadata, self, 3);
	ASSERT_EQ(0, precopy_info(fd, ~0u, &flags, &init, &dirty));
	EXPECT_EQ(0u, flags) TH_LOG("v1: no REINIT without the opt-in");
	EXPECT_EQ(0u, init);
	/* every page held random data: every page was cleared */
	EXPECT_EQ(pass_bytes(lim), dirty);
	drain(_metadata, fd, &s);
	finish_and_load(_metadata, self, fd, &s);
	mig_buf_free(&s);
}

/*
 * With the opt-in: writes alone are dirty bytes; a function reset is
 * REINIT, told once, with the whole pass as new initial data.
 */
TEST_F_TIMEOUT(reinit, v2_reset_reports_reinit_once, 600)
{
	struct mig_limits *lim = &self->a.lim;
	struct mig_buf s = { 0 };
	uint64_t init = 0, init0 = 0, dirty = 0;
	static uint8_t buf[STREAM_CHUNK];
	uint32_t flags = 0;
	int fd;

	/* SET only, no payload; PROBE answers for SET */
	EXPECT_EQ(-EINVAL, mig_feature(&self->a.dev.vdev, VFIO_DEVICE_FEATURE_GET |
				       FEATURE_PRECOPY_INFO_V2, NULL, 0));
	EXPECT_EQ(0, mig_feature(&self->a.dev.vdev, VFIO_DEVICE_FEATURE_PROBE |
				 VFIO_DEVICE_FEATURE_SET |
				 FEATURE_PRECOPY_INFO_V2, NULL, 0));
	ASSERT_EQ(0, opt_in(&self->a));

	fd = start_pre_copy(_metadata, self);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, precopy_info(fd, ~0u, &flags, &init0, &dirty));
	EXPECT_EQ(0u, flags) TH_LOG("v2: flags are output: 0 before any reset");
	EXPECT_EQ(pass_bytes(lim) + sizeof(struct vmig_stream_hdr), init0);
	drain(_metadata, fd, &s);

	write_page(_metadata, self, 5);
	ASSERT_EQ(0, precopy_info(fd, 0, &flags, &init, &dirty));
	EXPECT_EQ(0u, flags) TH_LOG("a write is no reason for REINIT");
	EXPECT_EQ(0u, init);
	EXPECT_EQ(one_page_bytes(lim), dirty);

	guest_reset(&self->a);
	write_page(_metadata, self, 7);
	ASSERT_EQ(0, precopy_info(fd, 0, &flags, &init, &dirty));
	EXPECT_EQ(PRECOPY_INFO_REINIT, flags);
	EXPECT_EQ(pass_bytes(lim), init) TH_LOG("REINIT: the whole pass again");
	EXPECT_EQ(0u, dirty) TH_LOG("REINIT: dirty bytes start again at 0");
	ASSERT_EQ(0, precopy_info(fd, 0, &flags, &init0, &dirty));
	EXPECT_EQ(0u, flags) TH_LOG("REINIT is told once per reset");
	EXPECT_EQ(init, init0);

	/* the new initial data drains as it is read */
	ASSERT_EQ((ssize_t)sizeof(buf), fd_read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, mig_buf_append(&s, buf, sizeof(buf)));
	ASSERT_EQ(0, precopy_info(fd, 0, &flags, &init, &dirty));
	EXPECT_EQ(0u, flags);
	EXPECT_EQ(init0 - sizeof(buf), init);
	drain(_metadata, fd, &s);
	finish_and_load(_metadata, self, fd, &s);
	mig_buf_free(&s);
}

/*
 * A reset in the middle of the initial pass: what was buffered is owed
 * before the new pass, and counts as initial data with it.
 */
TEST_F_TIMEOUT(reinit, v2_reset_mid_initial_pass, 600)
{
	struct mig_limits *lim = &self->a.lim;
	const uint64_t rec_max = VMIG_MEM_CHUNK_MAX + sizeof(struct vmig_rec_hdr) +
				 sizeof(uint64_t);
	struct mig_buf s = { 0 };
	static uint8_t buf[STREAM_CHUNK / 2];
	uint64_t init = 0, dirty = 0;
	uint32_t flags = 0;
	int fd;

	ASSERT_EQ(0, opt_in(&self->a));
	fd = start_pre_copy(_metadata, self);
	ASSERT_LE(0, fd);
	/* header and half a record: the rest of that record is buffered */
	ASSERT_EQ((ssize_t)sizeof(buf), fd_read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, mig_buf_append(&s, buf, sizeof(buf)));

	guest_reset(&self->a);
	ASSERT_EQ(0, precopy_info(fd, 0, &flags, &init, &dirty));
	EXPECT_EQ(PRECOPY_INFO_REINIT, flags);
	EXPECT_LT(pass_bytes(lim), init) TH_LOG("the buffered rest counts too");
	EXPECT_GE(pass_bytes(lim) + rec_max, init);
	EXPECT_EQ(0u, dirty);
	drain(_metadata, fd, &s);
	finish_and_load(_metadata, self, fd, &s);
	mig_buf_free(&s);
}

/* The opt-in belongs to one open of the device. */
TEST_F_TIMEOUT(reinit, v2_opt_in_ends_at_close, 600)
{
	struct mig_limits *lim = &self->a.lim;
	struct mig_buf s = { 0 };
	uint64_t init = 0, dirty = 0;
	uint32_t flags = 0;
	char why[700];
	int fd, ret;

	ASSERT_EQ(0, opt_in(&self->a));
	env_close(&self->a);
	ret = env_open(&self->a, &self->iommu, self->bdf[0], why, sizeof(why));
	ASSERT_EQ(0, ret) TH_LOG("reopen %s: %s", self->bdf[0],
				 ret == 1 ? why : strerror(-ret));

	fd = start_pre_copy(_metadata, self);
	ASSERT_LE(0, fd);
	drain(_metadata, fd, &s);
	guest_reset(&self->a);
	ASSERT_EQ(0, precopy_info(fd, ~0u, &flags, &init, &dirty));
	EXPECT_EQ(0u, flags) TH_LOG("a new open is v1 until it opts in");
	EXPECT_EQ(0u, init);
	EXPECT_EQ(pass_bytes(lim), dirty);
	drain(_metadata, fd, &s);
	finish_and_load(_metadata, self, fd, &s);
	mig_buf_free(&s);
}

TEST_HARNESS_MAIN
