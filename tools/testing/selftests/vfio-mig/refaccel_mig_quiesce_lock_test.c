// SPDX-License-Identifier: GPL-2.0-only
/*
 * A quiesce that takes its time does not hold up the user.  The driver
 * polls the device's quiesce for up to the timeout; every BAR access of
 * the user (region read and write, mmap fault) and every config write that
 * changes memory decode or the power state takes vfio-pci's memory_lock,
 * and so did each poll of the driver, across its sleeps: for reading when
 * the function decodes, for writing when decode is off or the function is
 * in D3hot.  A user's access then waited for the whole quiesce.
 *
 * The device is told never to quiesce (TEST_FLAGS, CAPS.TESTCTL), the
 * quiesce timeout set to QUIESCE_MS, and RUNNING -> RUNNING_P2P asked for
 * from a second thread.  While it polls, the test thread does what a guest
 * would do meanwhile: toggles memory decode, reads BAR0, enters and leaves
 * D3hot.  Each access must have returned before the arc gave up (an order,
 * not a time: the arc's own end is the reference), and the arc must give
 * up with ETIMEDOUT and leave the device running.  How long the quiesce
 * and each access took is printed only.
 *
 * Needs one function bound to refaccel-vfio-pci with CAPS.TESTCTL (else
 * SKIP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define QUIESCE_MS	3000u
/* after the arc has surely started polling, well before it gives up */
#define ACCESS_AT_MS	300u

#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_RUNNING_P2P	VFIO_DEVICE_STATE_RUNNING_P2P

enum start_as { DECODING, DECODE_OFF, IN_D3HOT };

FIXTURE(qlock) {
	struct env_one one;
};

FIXTURE_VARIANT(qlock) {
	enum start_as as;	/* the function while the quiesce is polled */
};

FIXTURE_VARIANT_ADD(qlock, decoding) { .as = DECODING };
FIXTURE_VARIANT_ADD(qlock, decode_off) { .as = DECODE_OFF };
FIXTURE_VARIANT_ADD(qlock, d3hot) { .as = IN_D3HOT };

FIXTURE_SETUP(qlock)
{
	ENV_ONE_SETUP(&self->one);
	if (!env_testctl(&self->one.e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot make the quiesce hang");
}

FIXTURE_TEARDOWN(qlock)
{
	env_one_teardown(&self->one);
}

struct arc {
	struct mig_env *e;
	int ret;
	uint64_t end_ms;
};

static void *arc_fn(void *arg)
{
	struct arc *a = arg;

	a->ret = mig_set_state(&a->e->dev.vdev, S_RUNNING_P2P, NULL);
	a->end_ms = vu_now_ms();
	return NULL;
}

/* A 4-byte read of BAR0 at @off through the device fd: 0 or -errno. */
static int bar0_pread(struct mig_env *e, uint64_t off)
{
	struct vu_device *d = &e->dev.vdev;
	uint32_t v;
	ssize_t n;

	n = pread(d->fd, &v, sizeof(v),
		  d->regions[REFACCEL_BAR_REGS].info.offset + off);
	if (n < 0)
		return -errno;
	return n == sizeof(v) ? 0 : -EIO;
}

/* Bring the function into @as (from decoding in D0), or back from it. */
static int enter(struct mig_env *e, enum start_as as, bool in)
{
	switch (as) {
	case DECODE_OFF:
		return env_mem_decode(e, !in);
	case IN_D3HOT:
		return env_power(e, in ? 3 : 0);
	default:
		return 0;
	}
}

TEST_F_TIMEOUT(qlock, user_not_held_up, 120)
{
	struct mig_env *e = &self->one.e;
	struct arc a = { .e = e };
	uint64_t t0, t_access, t_done;
	uint32_t st = 0;
	pthread_t t;
	int ret;

	ASSERT_EQ(0, mig_quiesce_set(&e->dev.vdev, QUIESCE_MS));
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS, REFACCEL_TEST_NEVER_QUIESCE);
	ASSERT_EQ((uint32_t)REFACCEL_TEST_NEVER_QUIESCE,
		  ra_rd(&e->dev, REFACCEL_REG_TEST_FLAGS));
	ASSERT_EQ(0, enter(e, variant->as, true));

	t0 = vu_now_ms();
	ASSERT_EQ(0, pthread_create(&t, NULL, arc_fn, &a));
	usleep(ACCESS_AT_MS * 1000);

	/* what a guest does meanwhile; each takes memory_lock */
	t_access = vu_now_ms();
	ret = bar0_pread(e, REFACCEL_REG_ID);
	if (variant->as == DECODING)
		EXPECT_EQ(0, ret) TH_LOG("BAR0 read: %s", strerror(-ret));
	EXPECT_EQ(0, env_mem_decode(e, false));
	EXPECT_EQ(0, env_mem_decode(e, variant->as != DECODE_OFF));
	if (variant->as != IN_D3HOT) {
		EXPECT_EQ(0, env_power_set(e, 3, true));
		EXPECT_EQ(0, env_power_set(e, 0, true));
	} else {
		EXPECT_EQ(0, env_power_set(e, 0, true));
		EXPECT_EQ(0, env_power_set(e, 3, true));
	}
	t_done = vu_now_ms();

	ASSERT_EQ(0, pthread_join(t, NULL));
	/* the poll is over: the user's last power write holds, bounce or not */
	EXPECT_EQ(variant->as == IN_D3HOT ? 3 : 0, env_dstate(e))
		TH_LOG("PMCSR after the arc gave up");
	TH_LOG("quiesce gave up after %llu ms (timeout %u ms); the user's accesses took %llu ms, from %llu ms on; D3hot read back as D0 %u time(s) (a poll look had woken the function)",
	       (unsigned long long)(a.end_ms - t0), QUIESCE_MS,
	       (unsigned long long)(t_done - t_access),
	       (unsigned long long)(t_access - t0), e->pm_bounces);
	EXPECT_EQ(-ETIMEDOUT, a.ret) TH_LOG("RUNNING -> RUNNING_P2P: %s",
					    strerror(-a.ret));
	EXPECT_LT(t_done, a.end_ms)
		TH_LOG("the user's accesses waited for the quiesce to give up");

	/* the device runs, as the FSM says */
	ASSERT_EQ(0, enter(e, variant->as, false));
	ASSERT_EQ(0, mig_get_state(&e->dev.vdev, &st));
	EXPECT_EQ((uint32_t)S_RUNNING, st);
	EXPECT_EQ(0u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("quiesce request not withdrawn");
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS, 0);
	EXPECT_EQ(0, env_work(e));
	EXPECT_EQ(0, mig_set_state(&e->dev.vdev, S_RUNNING_P2P, NULL));
	EXPECT_EQ(0, mig_set_state(&e->dev.vdev, S_RUNNING, NULL));
	EXPECT_EQ(0, env_work(e));
}

TEST_HARNESS_MAIN
