// SPDX-License-Identifier: GPL-2.0-only
/*
 * A saving session whose function the driver may not reach: in PRE_COPY,
 * with the initial pass read, the user asks vfio-pci for runtime low power
 * (VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: the function may be suspended at
 * any moment, so the driver keeps out of it).  Every call whose answer
 * needs the device's dirty bits then fails instead of answering stale
 * data: poll() reports POLLERR (not "nothing to read", which would leave
 * a waiter asleep on a device it cannot read), read(), PRECOPY_INFO and
 * MIG_DATA_SIZE fail with EBUSY.  Nothing is lost by it: after
 * LOW_POWER_EXIT the same session answers again, the dirty pages written
 * before are still owed, and the device goes back to RUNNING and works.
 *
 * Needs one function bound to refaccel-vfio-pci with device memory (else
 * SKIP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define STREAM_CHUNK	(64u << 10)
#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_PRE_COPY	VFIO_DEVICE_STATE_PRE_COPY

FIXTURE(unreach) {
	struct env_one one;
};

FIXTURE_SETUP(unreach)
{
	uint64_t flags = 0;

	ENV_ONE_SETUP(&self->one);
	ASSERT_EQ(0, mig_get_flags(&self->one.e.dev.vdev, &flags));
	if (!(flags & VFIO_MIGRATION_PRE_COPY))
		SKIP(return, "no PRE_COPY (migration flags 0x%llx)",
		     (unsigned long long)flags);
	if (!self->one.e.lim.mem_size)
		SKIP(return, "no device memory: PRE_COPY has no dirty pages to ask the device for");
}

FIXTURE_TEARDOWN(unreach)
{
	env_one_teardown(&self->one);
}

/* The events poll() reports on @fd right now. */
static short poll_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

TEST_F_TIMEOUT(unreach, pre_copy_in_low_power, 120)
{
	struct mig_env *e = &self->one.e;
	struct vu_device *d = &e->dev.vdev;
	struct mig_buf s = { 0 };
	uint64_t init = 0, dirty = 0, size = 0, size0 = 0;
	/* one MEM record of one page: header, offset, the page */
	const uint64_t one_page = sizeof(struct vmig_rec_hdr) +
				  sizeof(uint64_t) + e->lim.page_size;
	uint32_t st = 0;
	uint8_t pat[64];
	short ev;
	char byte;
	bool eof;
	int fd = -1, ret;

	ASSERT_EQ(0, mig_set_state(d, S_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	/* header and initial pass: what poll() reports next needs the device */
	ASSERT_EQ(0, mig_read_stream(fd, &s, STREAM_CHUNK, &eof));
	ASSERT_FALSE(eof);
	ASSERT_EQ(0, mig_precopy_info(fd, &init, &dirty));
	ASSERT_EQ(0u, init);
	ASSERT_EQ(0u, dirty);
	ASSERT_EQ(0, mig_data_size(d, &size0));
	/* owed after the low-power spell: a page of SRAM written now */
	memset(pat, 0x5a, sizeof(pat));
	ASSERT_EQ(0, ra_sram_write(&e->dev, 0, pat, sizeof(pat)));

	ret = mig_low_power(d, true);
	if (ret == -ENOTTY || ret == -EOPNOTSUPP) {
		close(fd);
		mig_buf_free(&s);
		SKIP(return, "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: %s",
		     strerror(-ret));
	}
	ASSERT_EQ(0, ret) TH_LOG("LOW_POWER_ENTRY: %s", strerror(-ret));
	ev = poll_now(fd);
	EXPECT_TRUE(ev > 0 && (ev & POLLERR))
		TH_LOG("poll in low power: revents %#x (POLLERR expected)", ev);
	EXPECT_EQ(-EBUSY, mig_precopy_info(fd, &init, &dirty));
	EXPECT_EQ(-EBUSY, mig_data_size(d, &size));
	errno = 0;
	EXPECT_EQ(-1, read(fd, &byte, 1));
	EXPECT_EQ(EBUSY, errno) TH_LOG("read in low power: %s", strerror(errno));
	ASSERT_EQ(0, mig_low_power(d, false));

	/*
	 * The same session answers again and still owes the page: first
	 * MIG_DATA_SIZE, which must fetch it from the device itself (nothing
	 * else has asked since it was written), then PRECOPY_INFO and poll.
	 */
	ASSERT_EQ(0, mig_data_size(d, &size));
	EXPECT_EQ(size0 + one_page, size)
		TH_LOG("MIG_DATA_SIZE %llu, %llu before the write: one page (%llu bytes) more expected",
		       (unsigned long long)size, (unsigned long long)size0,
		       (unsigned long long)one_page);
	ASSERT_EQ(0, mig_precopy_info(fd, &init, &dirty));
	EXPECT_EQ(0u, init);
	EXPECT_EQ(one_page, dirty) TH_LOG("the page written before low power");
	ev = poll_now(fd);
	EXPECT_TRUE(ev > 0 && (ev & POLLIN) && !(ev & POLLERR))
		TH_LOG("poll after LOW_POWER_EXIT: revents %#x (POLLIN expected)", ev);
	/* and the page read now is the one written */
	mig_buf_free(&s);
	ASSERT_EQ(0, mig_read_stream(fd, &s, STREAM_CHUNK, &eof));
	ASSERT_EQ((size_t)one_page, s.len);
	EXPECT_EQ(0, memcmp(s.p + one_page - e->lim.page_size, pat,
			    sizeof(pat))) TH_LOG("the record does not carry the write");

	ASSERT_EQ(0, mig_set_state(d, S_RUNNING, NULL));
	ASSERT_EQ(0, mig_get_state(d, &st));
	EXPECT_EQ((uint32_t)S_RUNNING, st);
	EXPECT_EQ(0, env_work(e));
	close(fd);
	mig_buf_free(&s);
}

TEST_HARNESS_MAIN
