// SPDX-License-Identifier: GPL-2.0-only
/*
 * A reset that overtakes an arc.  VFIO_DEVICE_RESET holds vfio-pci's
 * memory_lock for the whole function reset (tens of ms here), and
 * every migration step needs that lock to reach the device.  A second
 * thread resets the function; the arc is requested while the reset is in
 * progress, so its first step waits for the lock and would then run on
 * the freshly reset function.
 *
 * After each round, whichever order things happened in, what GET_STATE
 * says must be what the hardware is (MIG_STATUS and SRAM_DIRTY_CTRL
 * through the read-only mirror), and back in RUNNING the function must
 * run work after a ring restart, without another VFIO reset.  For
 * RESUMING -> STOP, a reset must leave a fresh function: SRAM all zero.
 *
 * Each arc is tried in rounds.  The reset and the arc are started from
 * two threads at offsets spread over twice the time a reset takes
 * (measured first), from the arc a whole reset ahead to the reset a whole
 * reset ahead: an arc that reaches the device late in its steps (the
 * final SRAM pass of PRE_COPY_P2P -> STOP_COPY) is overtaken when the
 * reset starts after it, a quick one when the reset starts first.  A
 * pass of 16 rounds that hit no overtaking is followed by another (up to
 * four), over the longest reset seen and at offsets between the last
 * pass's.  The test fails if no round of an arc was overtaken (the race
 * was then not tested).  Needs one function bound to refaccel-vfio-pci (else SKIP).
 *
 * deferred.debugfs_read_leaves_reset_pending: reading the debugfs status
 * between a reset and the next arc leaves the reset to that arc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define ROUNDS		16
/* more passes of ROUNDS while no round was overtaken (see the test) */
#define MAX_PASSES	4
#define STREAM_CHUNK	(64u << 10)

#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_RUNNING_P2P	VFIO_DEVICE_STATE_RUNNING_P2P
#define S_STOP		VFIO_DEVICE_STATE_STOP
#define S_STOP_COPY	VFIO_DEVICE_STATE_STOP_COPY
#define S_PRE_COPY	VFIO_DEVICE_STATE_PRE_COPY
#define S_PRE_COPY_P2P	VFIO_DEVICE_STATE_PRE_COPY_P2P
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING

FIXTURE(race) {
	struct env_one one;
};

FIXTURE_VARIANT(race) {
	uint32_t from, to;
};

#define RACE_ARC(f, t)							\
	FIXTURE_VARIANT_ADD(race, f##_to_##t) {				\
		.from = S_##f, .to = S_##t,				\
	}

RACE_ARC(RUNNING, RUNNING_P2P);
RACE_ARC(RUNNING_P2P, STOP);
RACE_ARC(RUNNING, PRE_COPY);
RACE_ARC(PRE_COPY_P2P, STOP_COPY);
RACE_ARC(STOP, RUNNING_P2P);
RACE_ARC(RESUMING, STOP);

FIXTURE_SETUP(race)
{
	ENV_ONE_SETUP(&self->one);
}

FIXTURE_TEARDOWN(race)
{
	env_one_teardown(&self->one);
}

/* One side of a round: the reset or the arc, after its delay. */
struct racer {
	struct mig_env *e;
	pthread_barrier_t *go;
	uint64_t delay_us;
	bool is_reset;
	uint32_t to;		/* the arc's target state */
	int ret;
	int fd;			/* a data_fd the arc returned, or -1 */
	uint64_t ms;		/* how long the reset took */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* No harness assertions here: they may only fail on the test's thread. */
static void *racer_fn(void *arg)
{
	struct racer *r = arg;
	uint64_t t0;

	pthread_barrier_wait(r->go);
	if (r->delay_us)
		usleep(r->delay_us);
	t0 = vu_now_ms();
	if (r->is_reset)
		r->ret = vu_device_reset(&r->e->dev.vdev);
	else
		r->ret = mig_set_state(&r->e->dev.vdev, r->to, &r->fd);
	r->ms = vu_now_ms() - t0;
	return NULL;
}

/* The mirror of a migration block register (readable by any user). */
static uint32_t mirror(struct mig_env *e, uint32_t reg)
{
	return ra_rd(&e->dev, REFACCEL_MIG_MIRROR(reg));
}

/*
 * What the hardware must show in @state: quiesced in the P2P and stopped
 * states, frozen in the stopped ones, SRAM tracking only in PRE_COPY*.
 */
static void expect_hw_is(struct __test_metadata *_metadata,
			 struct mig_env *e, uint32_t state, unsigned int round)
{
	const uint32_t q = REFACCEL_MIG_STATUS_QUIESCED;
	const uint32_t f = REFACCEL_MIG_STATUS_FROZEN;
	uint32_t st = mirror(e, REFACCEL_REG_MIG_STATUS) & (q | f);
	uint32_t trk = mirror(e, REFACCEL_REG_SRAM_DIRTY_CTRL) &
		       REFACCEL_SRAM_DIRTY_ENABLE;
	uint32_t want_st, want_trk;

	switch (state) {
	case S_RUNNING:
		want_st = 0;
		break;
	case S_RUNNING_P2P:
	case S_PRE_COPY_P2P:
		want_st = q;
		break;
	case S_PRE_COPY:
		want_st = 0;
		break;
	default:	/* STOP, STOP_COPY, RESUMING */
		want_st = q | f;
		break;
	}
	want_trk = (state == S_PRE_COPY || state == S_PRE_COPY_P2P) ?
		   REFACCEL_SRAM_DIRTY_ENABLE : 0;
	EXPECT_EQ(want_st, st)
		TH_LOG("round %u: FSM says %s, MIG_STATUS QUIESCED|FROZEN 0x%x",
		       round, mig_state_name(state), st);
	EXPECT_EQ(want_trk, trk)
		TH_LOG("round %u: FSM says %s, SRAM tracking %s", round,
		       mig_state_name(state), trk ? "on" : "off");
}

static bool sram_zero(struct mig_env *e, uint8_t *buf)
{
	uint64_t i;

	if (ra_sram_read(&e->dev, 0, buf, e->lim.mem_size))
		return false;
	for (i = 0; i < e->lim.mem_size; i++)
		if (buf[i])
			return false;
	return true;
}

/* A stream of this device with random SRAM, for the RESUMING rounds. */
static void make_stream(struct __test_metadata *_metadata, struct mig_env *e,
			struct mig_buf *s, uint8_t *img)
{
	uint64_t rng = 0x7e5e7ace;

	ra_rand_fill(img, e->lim.mem_size, &rng);
	ASSERT_EQ(0, ra_sram_write(&e->dev, 0, img, e->lim.mem_size));
	ASSERT_EQ(0, mig_save_stop_copy(&e->dev.vdev, s));
	ASSERT_EQ(0, mig_set_state(&e->dev.vdev, S_RUNNING, NULL));
	ASSERT_EQ(0, env_reset(e));
}

/* Bring the function to @from; a data_fd it hands out lands in *@fd. */
static void reach(struct __test_metadata *_metadata, struct mig_env *e,
		  uint32_t from, const struct mig_buf *s, int *fd)
{
	struct vu_device *v = &e->dev.vdev;

	*fd = -1;
	if (from == S_RESUMING) {
		ASSERT_EQ(0, mig_set_state(v, S_STOP, NULL));
		ASSERT_EQ(0, mig_set_state(v, S_RESUMING, fd));
		ASSERT_EQ(0, mig_write_stream(*fd, s->p, s->len, STREAM_CHUNK));
		return;
	}
	if (from == S_PRE_COPY_P2P) {
		ASSERT_EQ(0, mig_set_state(v, S_PRE_COPY, fd));
		ASSERT_EQ(0, mig_set_state(v, S_PRE_COPY_P2P, NULL));
		return;
	}
	ASSERT_EQ(0, mig_set_state(v, from, NULL));
}

TEST_F_TIMEOUT(race, arc_overtaken_by_reset, 600)
{
	struct mig_env *e = &self->one.e;
	struct vu_device *v = &e->dev.vdev;
	struct racer rst = { .e = e, .is_reset = true };
	struct racer arc = { .e = e, .to = variant->to };
	unsigned int i, overtaken = 0, done = 0;
	uint64_t reset_ms_min = UINT64_MAX, reset_ms_max = 0, window_us;
	pthread_barrier_t go;
	struct mig_buf s = { 0 };
	int64_t off_us;
	uint8_t *buf;
	uint32_t st = 0;
	pthread_t tr, ta;
	int fd;

	buf = malloc(e->lim.mem_size);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pthread_barrier_init(&go, NULL, 2));
	rst.go = &go;
	arc.go = &go;
	/* how long a reset holds the function: the window to hit */
	window_us = now_us();
	ASSERT_EQ(0, env_reset(e));
	window_us = now_us() - window_us;
	if (variant->from == S_RESUMING)
		make_stream(_metadata, e, &s, buf);

	/*
	 * Whether a round is overtaken depends on where the scheduler puts
	 * two threads on a busy host: a pass that hit none is followed by
	 * another, its window the longest reset seen so far and its offsets
	 * between the last pass's, up to MAX_PASSES.  Every round is checked.
	 */
	for (i = 0; i < ROUNDS * MAX_PASSES; i++) {
		unsigned int pass = i / ROUNDS, j = i % ROUNDS;

		if (j == 0 && pass) {
			if (overtaken)
				break;
			window_us = reset_ms_max > 1 ? reset_ms_max * 1000 : 1000;
		}
		reach(_metadata, e, variant->from, &s, &fd);
		/* from -window (the arc first) to +window (the reset first) */
		off_us = ((int64_t)(4 * j + 1 + 2 * (pass & 1)) - 2 * ROUNDS) *
			 (int64_t)window_us / (2 * ROUNDS);
		rst.delay_us = off_us < 0 ? -off_us : 0;
		arc.delay_us = off_us > 0 ? off_us : 0;
		arc.fd = -1;
		ASSERT_EQ(0, pthread_create(&tr, NULL, racer_fn, &rst));
		ASSERT_EQ(0, pthread_create(&ta, NULL, racer_fn, &arc));
		ASSERT_EQ(0, pthread_join(ta, NULL));
		ASSERT_EQ(0, pthread_join(tr, NULL));
		ASSERT_EQ(0, rst.ret) TH_LOG("VFIO_DEVICE_RESET: %s",
					    strerror(-rst.ret));
		if (rst.ms < reset_ms_min)
			reset_ms_min = rst.ms;
		if (rst.ms > reset_ms_max)
			reset_ms_max = rst.ms;
		if (arc.ret == -EAGAIN)
			overtaken++;
		else if (!arc.ret)
			done++;
		else
			EXPECT_EQ(0, arc.ret) TH_LOG("round %u: %s -> %s: %s", i,
						     mig_state_name(variant->from),
						     mig_state_name(variant->to),
						     strerror(-arc.ret));
		if (arc.fd >= 0)
			close(arc.fd);
		if (fd >= 0)
			close(fd);

		ASSERT_EQ(0, mig_get_state(v, &st));
		expect_hw_is(_metadata, e, st, i);
		if (variant->from == S_RESUMING)
			EXPECT_TRUE(sram_zero(e, buf))
				TH_LOG("round %u: a reset function holds loaded SRAM",
				       i);
		/* back to work: a fresh ring (the reset cleared it), no reset */
		ASSERT_EQ(0, mig_set_state(v, S_RUNNING, NULL));
		expect_hw_is(_metadata, e, S_RUNNING, i);
		ASSERT_EQ(0, vu_pci_enable_bus_master(v));
		ASSERT_EQ(0, env_ring_restart(e));
		EXPECT_EQ(0, env_work(e)) TH_LOG("round %u: no work after the race (FSM %s)",
						 i, mig_state_name(st));
	}
	TH_LOG("%s -> %s: %u rounds overtaken by the reset (EAGAIN), %u done, of %u at offsets +-%llu us; resets took %llu..%llu ms",
	       mig_state_name(variant->from), mig_state_name(variant->to),
	       overtaken, done, i, (unsigned long long)window_us,
	       (unsigned long long)reset_ms_min,
	       (unsigned long long)reset_ms_max);
	EXPECT_LT(0u, overtaken) TH_LOG("the reset never overtook the arc: the race was not tested");
	pthread_barrier_destroy(&go);
	mig_buf_free(&s);
	free(buf);
}

/*
 * Reading the driver's debugfs status must not act on a deferred reset:
 * the reset is the next arc's (or the close's) to handle, and a read of
 * a status file that ended sessions and touched the device would make
 * the status change what it reports.  After VFIO_DEVICE_RESET in
 * STOP_COPY the status says the reset is pending, however often it is
 * read; the next GET_STATE acts on it.
 */
FIXTURE(deferred) {
	struct env_one one;
};

FIXTURE_SETUP(deferred)
{
	ENV_ONE_SETUP(&self->one);
}

FIXTURE_TEARDOWN(deferred)
{
	env_one_teardown(&self->one);
}

/* The value of @key in the device's debugfs status, or "" if absent. */
static int debugfs_status(struct mig_env *e, const char *key, char *val,
			  size_t len)
{
	char path[128], line[512];
	size_t n = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/refaccel_vfio_pci/%s/status",
		 e->dev.vdev.bdf);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	val[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, n) || line[n] != ':')
			continue;
		snprintf(val, len, "%s", line + n + 1 + (line[n + 1] == ' '));
		val[strcspn(val, "\n")] = '\0';
	}
	fclose(f);
	return 0;
}

TEST_F_TIMEOUT(deferred, debugfs_read_leaves_reset_pending, 120)
{
	struct mig_env *e = &self->one.e;
	struct vu_device *v = &e->dev.vdev;
	char val[64];
	uint32_t st;
	int fd = -1, ret, i;

	ret = debugfs_status(e, "state", val, sizeof(val));
	if (ret)
		SKIP(return, "no debugfs status of %s (%s): mount debugfs, run as root",
		     v->bdf, strerror(-ret));
	ASSERT_EQ(0, mig_set_state(v, S_STOP_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vu_device_reset(v));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, debugfs_status(e, "reset_pending", val, sizeof(val)));
		EXPECT_STREQ("yes", val) TH_LOG("read %d: reset_pending '%s'", i, val);
		ASSERT_EQ(0, debugfs_status(e, "saving_session", val, sizeof(val)));
		EXPECT_STREQ("yes", val)
			TH_LOG("read %d: the status read ended the session", i);
		ASSERT_EQ(0, debugfs_status(e, "state", val, sizeof(val)));
		EXPECT_STREQ("STOP_COPY", val)
			TH_LOG("read %d: the status read moved the FSM", i);
	}
	/* The session is over for its user, pending or not. */
	EXPECT_GT(0, fd_read(fd, val, sizeof(val)));
	ASSERT_EQ(0, mig_get_state(v, &st));
	EXPECT_EQ((uint32_t)S_RUNNING, st);
	ASSERT_EQ(0, debugfs_status(e, "reset_pending", val, sizeof(val)));
	EXPECT_STREQ("no", val);
	ASSERT_EQ(0, debugfs_status(e, "saving_session", val, sizeof(val)));
	EXPECT_STREQ("no", val);
	ASSERT_EQ(0, debugfs_status(e, "state", val, sizeof(val)));
	EXPECT_STREQ("RUNNING", val);
	close(fd);
	ASSERT_EQ(0, vu_pci_enable_bus_master(v));
	ASSERT_EQ(0, env_ring_restart(e));
	EXPECT_EQ(0, env_work(e));
}

TEST_HARNESS_MAIN
