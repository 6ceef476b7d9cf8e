// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO migration uAPI of refaccel-vfio-pci, hard: the v2 FSM arc by
 * arc against the rules of include/uapi/linux/vfio.h and
 * vfio_mig_get_next_state(), data_fd session semantics
 * (Documentation/driver.rst "Sessions"), reset in every state,
 * VFIO_MIG_GET_PRECOPY_INFO, MIG_DATA_SIZE, concurrent readers against
 * state changes and resets, and the failed-arc rules (quiesce timeout,
 * MMIO refused).
 *
 * Needs one function bound to refaccel-vfio-pci whose device has the
 * migration block; bound to stock vfio-pci every test SKIPs (the migration
 * feature is unsupported there).  The quiesce tests need the model's
 * "testctl" property (CAPS.TESTCTL), else they SKIP.
 *
 * Environment: REFACCEL_BDF, REFACCEL_TIMEOUT_MS, VFIO_MIG_BACKEND (see
 * README).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define T_TIMEOUT	300
#define NSTATES		8	/* VFIO_DEVICE_STATE_ERROR .. PRE_COPY_P2P */

#define S_ERROR		VFIO_DEVICE_STATE_ERROR
#define S_STOP		VFIO_DEVICE_STATE_STOP
#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_STOP_COPY	VFIO_DEVICE_STATE_STOP_COPY
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING
#define S_RUNNING_P2P	VFIO_DEVICE_STATE_RUNNING_P2P
#define S_PRE_COPY	VFIO_DEVICE_STATE_PRE_COPY
#define S_PRE_COPY_P2P	VFIO_DEVICE_STATE_PRE_COPY_P2P

/*
 * The uAPI's combination-transition table with every optional feature
 * (P2P, PRE_COPY) supported: vfio_from_fsm_table in 6.12
 * drivers/vfio/vfio_main.c, which implements the rules of
 * include/uapi/linux/vfio.h (shortest path; saving-group states only at
 * either end of a path).  [cur][target] = next state, ERROR = not allowed.
 */
static const uint8_t fsm_next[NSTATES][NSTATES] = {
	[S_STOP] = {
		[S_STOP] = S_STOP, [S_RUNNING] = S_RUNNING_P2P,
		[S_PRE_COPY] = S_RUNNING_P2P, [S_PRE_COPY_P2P] = S_RUNNING_P2P,
		[S_STOP_COPY] = S_STOP_COPY, [S_RESUMING] = S_RESUMING,
		[S_RUNNING_P2P] = S_RUNNING_P2P, [S_ERROR] = S_ERROR,
	},
	[S_RUNNING] = {
		[S_STOP] = S_RUNNING_P2P, [S_RUNNING] = S_RUNNING,
		[S_PRE_COPY] = S_PRE_COPY, [S_PRE_COPY_P2P] = S_RUNNING_P2P,
		[S_STOP_COPY] = S_RUNNING_P2P, [S_RESUMING] = S_RUNNING_P2P,
		[S_RUNNING_P2P] = S_RUNNING_P2P, [S_ERROR] = S_ERROR,
	},
	[S_PRE_COPY] = {
		[S_STOP] = S_RUNNING, [S_RUNNING] = S_RUNNING,
		[S_PRE_COPY] = S_PRE_COPY, [S_PRE_COPY_P2P] = S_PRE_COPY_P2P,
		[S_STOP_COPY] = S_PRE_COPY_P2P, [S_RESUMING] = S_RUNNING,
		[S_RUNNING_P2P] = S_RUNNING, [S_ERROR] = S_ERROR,
	},
	[S_PRE_COPY_P2P] = {
		[S_STOP] = S_RUNNING_P2P, [S_RUNNING] = S_RUNNING_P2P,
		[S_PRE_COPY] = S_PRE_COPY, [S_PRE_COPY_P2P] = S_PRE_COPY_P2P,
		[S_STOP_COPY] = S_STOP_COPY, [S_RESUMING] = S_RUNNING_P2P,
		[S_RUNNING_P2P] = S_RUNNING_P2P, [S_ERROR] = S_ERROR,
	},
	[S_STOP_COPY] = {
		[S_STOP] = S_STOP, [S_RUNNING] = S_STOP,
		[S_PRE_COPY] = S_ERROR, [S_PRE_COPY_P2P] = S_ERROR,
		[S_STOP_COPY] = S_STOP_COPY, [S_RESUMING] = S_STOP,
		[S_RUNNING_P2P] = S_STOP, [S_ERROR] = S_ERROR,
	},
	[S_RESUMING] = {
		[S_STOP] = S_STOP, [S_RUNNING] = S_STOP,
		[S_PRE_COPY] = S_STOP, [S_PRE_COPY_P2P] = S_STOP,
		[S_STOP_COPY] = S_STOP, [S_RESUMING] = S_RESUMING,
		[S_RUNNING_P2P] = S_STOP, [S_ERROR] = S_ERROR,
	},
	[S_RUNNING_P2P] = {
		[S_STOP] = S_STOP, [S_RUNNING] = S_RUNNING,
		[S_PRE_COPY] = S_RUNNING, [S_PRE_COPY_P2P] = S_PRE_COPY_P2P,
		[S_STOP_COPY] = S_STOP, [S_RESUMING] = S_STOP,
		[S_RUNNING_P2P] = S_RUNNING_P2P, [S_ERROR] = S_ERROR,
	},
	[S_ERROR] = { 0 },	/* everything ERROR */
};

/* Arcs that open a new data transfer session (return a data_fd). */
static bool arc_new_session(unsigned int a, unsigned int b)
{
	return (a == S_STOP && b == S_STOP_COPY) ||
	       (a == S_RUNNING && b == S_PRE_COPY) ||
	       (a == S_RUNNING_P2P && b == S_PRE_COPY_P2P) ||
	       (a == S_STOP && b == S_RESUMING);
}

static bool state_saving(unsigned int s)
{
	return s == S_STOP_COPY || s == S_PRE_COPY || s == S_PRE_COPY_P2P;
}

/*
 * Expected outcome of requesting @to in @from: the arcs walked (path[0] is
 * the first state after @from), or false if the request must fail.
 */
static bool fsm_path(unsigned int from, unsigned int to, unsigned int *path,
		     int *n)
{
	unsigned int cur = from;

	*n = 0;
	if (to >= NSTATES || to == S_ERROR)
		return false;
	while (cur != to) {
		unsigned int next = fsm_next[cur][to];

		if (next == S_ERROR || *n >= NSTATES)
			return false;
		path[(*n)++] = next;
		cur = next;
	}
	return true;
}

/*
 * Does the session open in @from survive the request for @to?  It does
 * when the request fails, or when every state walked stays in the same
 * group (the saving group for PRE_COPY*, STOP_COPY; RESUMING alone).
 */
static bool session_survives(unsigned int from, unsigned int to)
{
	unsigned int path[NSTATES];
	int n;

	if (!fsm_path(from, to, path, &n))
		return true;
	for (int i = 0; i < n; i++) {
		if (from == S_RESUMING && path[i] != S_RESUMING)
			return false;
		if (state_saving(from) && !state_saving(path[i]))
			return false;
	}
	/* STOP_COPY never goes back to PRE_COPY (blocked above) */
	return true;
}

static const char *sname(unsigned int s)
{
	return mig_state_name(s);
}

/* ------------------------------------------------------------------ */
/* fixture                                                              */
/* ------------------------------------------------------------------ */

struct fsm_env {
	struct ra_found found;
	struct vu_iommu iommu;
	struct mig_env e;
	bool iommu_ok;
};

static void fsm_env_setup(struct __test_metadata *_metadata,
			  struct fsm_env *f)
{
	char bdf[1][VU_BDF_LEN], why[700];
	enum vu_backend b = vu_backend_from_env();
	int ret;

	if (!env_find(&f->found, bdf, 1, why, sizeof(why)))
		SKIP(return, "%s", why);
	ret = vu_iommu_init(&f->iommu, b);
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend", vu_backend_name(b));
	ASSERT_EQ(0, ret) TH_LOG("%s backend: %s", vu_backend_name(b),
				 strerror(-ret));
	f->iommu_ok = true;
	ret = env_open(&f->e, &f->iommu, bdf[0], why, sizeof(why));
	if (ret == 1)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, ret) TH_LOG("open %s: %s", bdf[0], strerror(-ret));
}

static void fsm_env_teardown(struct fsm_env *f)
{
	env_close(&f->e);
	if (f->iommu_ok)
		vu_iommu_cleanup(&f->iommu);
}

FIXTURE(fsm) {
	struct fsm_env f;
};

FIXTURE_SETUP(fsm)
{
	fsm_env_setup(_metadata, &self->f);
}

FIXTURE_TEARDOWN(fsm)
{
	fsm_env_teardown(&self->f);
}

#define E	(&self->f.e)
#define VDEV	(&self->f.e.dev.vdev)

static uint32_t get_state(struct __test_metadata *_metadata, struct mig_env *e)
{
	uint32_t st = ~0u;
	int ret = mig_get_state(&e->dev.vdev, &st);

	EXPECT_EQ(0, ret) TH_LOG("GET MIG_DEVICE_STATE: %s", strerror(-ret));
	return st;
}

/* The data_fd of an ended session: ENODEV everywhere, poll ERR|HUP. */
static void expect_dead_fd(struct __test_metadata *_metadata, int fd,
			   bool saving, const char *what)
{
	uint8_t buf[64] = { 0 };

	if (saving) {
		EXPECT_EQ(-ENODEV, fd_read(fd, buf, sizeof(buf)))
			TH_LOG("%s: read on an ended session", what);
		/* the uAPI: EINVAL outside the PRE_COPY states */
		EXPECT_EQ(-EINVAL, fd_precopy_info(fd, NULL, NULL))
			TH_LOG("%s: PRECOPY_INFO on an ended session", what);
	} else {
		EXPECT_EQ(-ENODEV, fd_write(fd, buf, sizeof(buf)))
			TH_LOG("%s: write on an ended session", what);
	}
	EXPECT_EQ(POLLERR | POLLHUP, fd_revents(fd))
		TH_LOG("%s: poll on an ended session", what);
}

/*
 * The data_fd of a live session: poll without ERR/HUP, and the session
 * still works.  Saving: poll says readable and the next read() yields one
 * whole, well-formed record (header and payload checksums right).  The
 * callers keep the fd at a record boundary (the stream header, then whole
 * records, were read) and within the initial pass, which always has pages
 * left.  Resuming: poll says writable and a zero-length write() reaches
 * the session and succeeds (an ended session fails it with ENODEV, a
 * rejected stream with its sticky errno) without consuming anything.
 */
static void expect_live_fd(struct __test_metadata *_metadata, int fd,
			   bool saving, const char *what)
{
	short r = fd_revents(fd);
	struct vmig_rec_hdr h;
	uint8_t *payload;
	ssize_t n;

	EXPECT_EQ(0, r & (POLLERR | POLLHUP | POLLNVAL))
		TH_LOG("%s: poll 0x%x on a live session", what, r);
	if (!saving) {
		EXPECT_NE(0, r & POLLOUT) TH_LOG("%s: resuming fd not writable",
						 what);
		n = fd_write(fd, &h, 0);
		EXPECT_EQ(0, n) TH_LOG("%s: zero-length write on a live resuming session: %s",
				       what, n < 0 ? strerror((int)-n) : "bytes");
		return;
	}
	EXPECT_NE(0, r & POLLIN) TH_LOG("%s: saving fd not readable", what);
	n = fd_read(fd, &h, sizeof(h));
	ASSERT_EQ((ssize_t)sizeof(h), n)
		TH_LOG("%s: a live saving session yields no record: %s", what,
		       n < 0 ? strerror((int)-n) : n ? "short read" : "EOF");
	ASSERT_EQ(mig_crc32c(&h, offsetof(struct vmig_rec_hdr, crc)), h.crc)
		TH_LOG("%s: record header checksum", what);
	EXPECT_TRUE(h.type == VMIG_REC_MEM || h.type == VMIG_REC_STATE ||
		    h.type == VMIG_REC_END) TH_LOG("%s: record type %u", what, h.type);
	ASSERT_GE(16u << 20, h.len)	/* sanity, before the malloc */
		TH_LOG("%s: record of %llu bytes", what, (unsigned long long)h.len);
	payload = malloc(h.len ?: 1);
	ASSERT_NE(NULL, payload);
	n = fd_read(fd, payload, h.len);
	EXPECT_EQ((ssize_t)h.len, n)
		TH_LOG("%s: payload of a %llu-byte record: %s", what,
		       (unsigned long long)h.len, n < 0 ? strerror((int)-n) : "short");
	if (n == (ssize_t)h.len) {
		EXPECT_EQ(mig_crc32c(payload, h.len), h.payload_crc)
			TH_LOG("%s: record payload checksum", what);
	}
	free(payload);
}

/* A new session's fd works: saving starts with the stream header. */
static void expect_new_fd_works(struct __test_metadata *_metadata,
				struct mig_env *e, int fd, bool saving,
				const char *what)
{
	struct vmig_stream_hdr h;

	if (saving) {
		ASSERT_EQ((ssize_t)sizeof(h), fd_read(fd, &h, sizeof(h)))
			TH_LOG("%s: first read of a new saving session", what);
		EXPECT_EQ((uint32_t)VMIG_STREAM_MAGIC, h.magic);
		EXPECT_EQ(VMIG_STREAM_VERSION, h.version);
		EXPECT_EQ(e->lim.compat_id, h.compat_id);
		EXPECT_EQ(e->lim.mem_size, h.mem_size);
		EXPECT_EQ(mig_crc32c(&h, 28), h.crc);
	} else {
		env_stream_hdr(e, &h);
		EXPECT_EQ((ssize_t)sizeof(h), fd_write(fd, &h, sizeof(h)))
			TH_LOG("%s: a valid stream header into RESUMING", what);
	}
}

/*
 * Request @to in @from (the current state, whose session fd is @old_fd or
 * -1) and check the outcome against the uAPI rules.  Returns the new
 * session's fd (or -1); closes nothing.
 */
static int check_request(struct __test_metadata *_metadata, struct mig_env *e,
			 unsigned int from, int old_fd, unsigned int to)
{
	unsigned int path[NSTATES], last = from;
	bool ok, want_fd;
	char what[96];
	int n, ret, fd = -1;

	snprintf(what, sizeof(what), "%s -> %s", sname(from),
		 to < NSTATES ? sname(to) : "(out of range)");
	ok = fsm_path(from, to, path, &n);
	for (int i = 0; i < n; i++) {
		/* only the last arc of a path may open a session */
		if (i < n - 1) {
			ASSERT_FALSE(arc_new_session(last, path[i]));
		}
		last = path[i];
	}
	want_fd = ok && n && arc_new_session(n > 1 ? path[n - 2] : from, to);

	ret = mig_set_state(&e->dev.vdev, to, &fd);
	if (!ok) {
		EXPECT_EQ(-EINVAL, ret) TH_LOG("%s must be refused", what);
		EXPECT_EQ(-1, fd);
		if (fd >= 0)
			close(fd);
		fd = -1;
		EXPECT_EQ(from, get_state(_metadata, e))
			TH_LOG("%s refused: state must not change", what);
	} else {
		ASSERT_EQ(0, ret) TH_LOG("%s (%d arcs) must succeed: %s", what,
					 n, strerror(-ret));
		EXPECT_EQ(to, get_state(_metadata, e)) TH_LOG("after %s", what);
		if (want_fd) {
			EXPECT_LE(0, fd) TH_LOG("%s starts a session: no data_fd",
						what);
		} else {
			EXPECT_EQ(-1, fd) TH_LOG("%s: unexpected data_fd", what);
		}
	}
	if (old_fd >= 0 && session_survives(from, to))
		expect_live_fd(_metadata, old_fd, state_saving(from), what);
	else if (old_fd >= 0)
		expect_dead_fd(_metadata, old_fd, state_saving(from), what);
	if (fd >= 0)
		expect_new_fd_works(_metadata, e, fd, state_saving(to), what);
	return fd;
}

/* ------------------------------------------------------------------ */
/* feature                                                              */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(fsm, feature_migration, T_TIMEOUT)
{
	uint64_t flags = 0, size = 0;
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_migration m;
	} set = {
		.f.argsz = sizeof(set),
		.f.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIGRATION,
	};

	ASSERT_EQ(0, mig_get_flags(VDEV, &flags));
	EXPECT_EQ((uint64_t)(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
			     VFIO_MIGRATION_PRE_COPY), flags)
		TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION flags 0x%llx",
		       (unsigned long long)flags);
	/* MIGRATION is GET only */
	EXPECT_EQ(-1, ioctl(VDEV->fd, VFIO_DEVICE_FEATURE, &set));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, E));
	ASSERT_EQ(0, mig_data_size(VDEV, &size));
	EXPECT_LT(E->lim.mem_size, size);
	TH_LOG("compat 0x%08x SRAM %llu page %u state_max %u; MIG_DATA_SIZE %llu",
	       E->lim.compat_id, (unsigned long long)E->lim.mem_size,
	       E->lim.page_size, E->lim.state_max, (unsigned long long)size);
	EXPECT_NE(0u, E->lim.state_max);
	EXPECT_EQ((uint32_t)REFACCEL_SRAM_DIRTY_PAGE_SIZE, E->lim.page_size);
}

/* ------------------------------------------------------------------ */
/* every (from, to) pair                                                */
/* ------------------------------------------------------------------ */

FIXTURE(arc) {
	struct fsm_env f;
};

FIXTURE_VARIANT(arc) {
	unsigned int from, to;
};

FIXTURE_SETUP(arc)
{
	fsm_env_setup(_metadata, &self->f);
}

FIXTURE_TEARDOWN(arc)
{
	fsm_env_teardown(&self->f);
}

#define ARC(f, t)							\
	FIXTURE_VARIANT_ADD(arc, f##_to_##t) {				\
		.from = VFIO_DEVICE_STATE_##f, .to = VFIO_DEVICE_STATE_##t \
	};
#define ARCS_FROM(f)							\
	ARC(f, STOP) ARC(f, RUNNING) ARC(f, STOP_COPY) ARC(f, RESUMING)	\
	ARC(f, RUNNING_P2P) ARC(f, PRE_COPY) ARC(f, PRE_COPY_P2P)
ARCS_FROM(STOP)
ARCS_FROM(RUNNING)
ARCS_FROM(STOP_COPY)
ARCS_FROM(RESUMING)
ARCS_FROM(RUNNING_P2P)
ARCS_FROM(PRE_COPY)
ARCS_FROM(PRE_COPY_P2P)

/*
 * From a freshly reset device (RUNNING): request @from (itself checked),
 * then @to; the outcome, the state, the data_fd and the fate of the old
 * session must follow the uAPI.  Then the device still resets and works.
 */
TEST_F_TIMEOUT(arc, request, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct mig_buf own = { 0 };
	int fd_from, fd_to;

	if (variant->from == S_RESUMING) {
		/*
		 * Leaving RESUMING needs a complete stream: the device's own.
		 * check_request() wrote a stream header already.
		 */
		ASSERT_EQ(0, mig_save_stop_copy(&e->dev.vdev, &own));
		fd_from = check_request(_metadata, e, S_STOP, -1, S_RESUMING);
		ASSERT_LE(0, fd_from);
		ASSERT_EQ(0, mig_write_stream(fd_from, own.p + 32, own.len - 32,
					      1 << 20));
		mig_buf_free(&own);
	} else {
		fd_from = check_request(_metadata, e, S_RUNNING, -1,
					variant->from);
	}
	ASSERT_EQ(variant->from, get_state(_metadata, e));
	fd_to = check_request(_metadata, e, variant->from, fd_from, variant->to);
	if (fd_to >= 0)
		close(fd_to);
	if (fd_from >= 0)
		close(fd_from);
	ASSERT_EQ(0, env_reset(e));
	ASSERT_EQ(0, env_work(e));
}

/* Targets that are never valid: ERROR and anything >= STATE_NR. */
TEST_F_TIMEOUT(fsm, invalid_targets, T_TIMEOUT)
{
	static const uint32_t bad[] = {
		S_ERROR, VFIO_DEVICE_STATE_NR, VFIO_DEVICE_STATE_NR + 1,
		0x7fffffff, 0xffffffff,
	};
	struct mig_env *e = E;

	for (unsigned int from = S_STOP; from < NSTATES; from++) {
		int fd = check_request(_metadata, e, S_RUNNING, -1, from);

		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int nfd = -1, ret = mig_set_state(&e->dev.vdev, bad[i], &nfd);

			EXPECT_EQ(-EINVAL, ret) TH_LOG("%s -> %u must fail",
						       sname(from), bad[i]);
			EXPECT_EQ(-1, nfd);
			if (nfd >= 0)
				close(nfd);
			EXPECT_EQ(from, get_state(_metadata, e));
			if (fd >= 0) {
				expect_live_fd(_metadata, fd, state_saving(from),
					       "after an invalid request");
			}
		}
		if (fd >= 0)
			close(fd);
		ASSERT_EQ(0, env_reset(e));
	}
	ASSERT_EQ(0, env_work(e));
}

/* ------------------------------------------------------------------ */
/* VFIO_DEVICE_RESET in every state                                     */
/* ------------------------------------------------------------------ */

FIXTURE(reset) {
	struct fsm_env f;
};

FIXTURE_VARIANT(reset) {
	unsigned int state;
};

FIXTURE_SETUP(reset)
{
	fsm_env_setup(_metadata, &self->f);
}

FIXTURE_TEARDOWN(reset)
{
	fsm_env_teardown(&self->f);
}

#define RESET_IN(s)							\
	FIXTURE_VARIANT_ADD(reset, s) { .state = VFIO_DEVICE_STATE_##s };
RESET_IN(STOP)
RESET_IN(RUNNING)
RESET_IN(STOP_COPY)
RESET_IN(RESUMING)
RESET_IN(RUNNING_P2P)
RESET_IN(PRE_COPY)
RESET_IN(PRE_COPY_P2P)

TEST_F_TIMEOUT(reset, returns_to_running, T_TIMEOUT)
{
	struct mig_env *e = E;
	unsigned int s = variant->state;
	uint8_t buf[4096];
	int fd, fd2 = -1;

	fd = check_request(_metadata, e, S_RUNNING, -1, s);
	if (state_saving(s)) {
		/* in the middle of a transfer */
		EXPECT_LT(0, fd_read(fd, buf, sizeof(buf)));
	}
	ASSERT_EQ(0, ra_reset(&e->dev));
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e))
		TH_LOG("VFIO_DEVICE_RESET in %s", sname(s));
	if (fd >= 0) {
		expect_dead_fd(_metadata, fd, state_saving(s), "after reset");
		/* still dead a second time, and close is harmless */
		expect_dead_fd(_metadata, fd, state_saving(s), "after reset");
		close(fd);
	}
	ASSERT_EQ(0, env_ring_restart(e));
	ASSERT_EQ(0, env_work(e));

	/* migration works again: a new session starts with a header */
	fd2 = check_request(_metadata, e, S_RUNNING, -1, S_PRE_COPY);
	ASSERT_LE(0, fd2);
	check_request(_metadata, e, S_PRE_COPY, fd2, S_RUNNING);
	close(fd2);
	ASSERT_EQ(0, env_work(e));
}

/* ------------------------------------------------------------------ */
/* data_fd sessions                                                     */
/* ------------------------------------------------------------------ */

/* A full STOP_COPY save from the current state; checks its shape. */
static void full_save_ok(struct __test_metadata *_metadata, struct mig_env *e)
{
	struct mig_rec_ref recs[256];
	struct mig_buf s = { 0 };
	struct mig_verdict v;
	int n, ret;

	ret = mig_save_stop_copy(&e->dev.vdev, &s);
	ASSERT_EQ(0, ret) TH_LOG("full STOP_COPY save: %s", strerror(-ret));
	n = mig_stream_index(s.p, s.len, recs, 256);
	ASSERT_LT(2, n);
	EXPECT_EQ((unsigned int)VMIG_REC_END, recs[n - 1].type);
	EXPECT_EQ((unsigned int)VMIG_REC_STATE, recs[n - 2].type);
	mig_stream_verify(s.p, s.len, &e->lim, NULL, &v, NULL);
	EXPECT_EQ((int)MIG_V_ACCEPT, (int)v.kind) TH_LOG("saved stream invalid: %s", v.why);
	mig_buf_free(&s);
	EXPECT_EQ((uint32_t)S_STOP, get_state(_metadata, e));
}

/* Close a STOP_COPY data_fd after part of the stream, then go on. */
TEST_F_TIMEOUT(fsm, close_mid_stop_copy, T_TIMEOUT)
{
	struct mig_env *e = E;
	static uint8_t buf[100000];
	int fd;

	fd = check_request(_metadata, e, S_RUNNING, -1, S_STOP_COPY);
	ASSERT_LE(0, fd);
	EXPECT_EQ((ssize_t)sizeof(buf), fd_read(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	EXPECT_EQ((uint32_t)S_STOP, get_state(_metadata, e));
	full_save_ok(_metadata, e);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/* Close a PRE_COPY data_fd after part of the stream: to RUNNING. */
TEST_F_TIMEOUT(fsm, close_mid_pre_copy_to_running, T_TIMEOUT)
{
	struct mig_env *e = E;
	static uint8_t buf[100000];
	int fd;

	fd = check_request(_metadata, e, S_RUNNING, -1, S_PRE_COPY);
	ASSERT_LE(0, fd);
	EXPECT_EQ((ssize_t)sizeof(buf), fd_read(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, env_work(e));	/* still running meanwhile */
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
	full_save_ok(_metadata, e);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/* Same, but the FSM goes on to STOP_COPY (no reader left) and STOP. */
TEST_F_TIMEOUT(fsm, close_mid_pre_copy_to_stop, T_TIMEOUT)
{
	struct mig_env *e = E;
	static uint8_t buf[100000];
	int fd, fd2 = -1;

	fd = check_request(_metadata, e, S_RUNNING, -1, S_PRE_COPY);
	ASSERT_LE(0, fd);
	EXPECT_EQ((ssize_t)sizeof(buf), fd_read(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP_COPY, &fd2));
	EXPECT_EQ(-1, fd2) TH_LOG("PRE_COPY -> STOP_COPY continues the session");
	if (fd2 >= 0)
		close(fd2);
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	full_save_ok(_metadata, e);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/* After STOP_COPY -> STOP the fd is dead; data_fds are streams. */
TEST_F_TIMEOUT(fsm, session_end_and_espipe, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct mig_buf s = { 0 };
	struct vmig_stream_hdr h;
	uint8_t buf[64];
	bool eof = false;
	int fd, rfd;

	fd = check_request(_metadata, e, S_RUNNING, -1, S_STOP_COPY);
	ASSERT_LE(0, fd);
	/* stream files: no offsets */
	EXPECT_EQ(-1, lseek(fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(-1, lseek(fd, 0, SEEK_CUR));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(-1, pread(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(ESPIPE, errno);
	ASSERT_EQ(0, mig_read_stream(fd, &s, 1 << 20, &eof));
	EXPECT_TRUE(eof) TH_LOG("STOP_COPY must end in EOF, not ENOMSG");
	EXPECT_EQ(0, fd_read(fd, buf, sizeof(buf))) TH_LOG("EOF stays EOF");
	EXPECT_EQ(POLLIN, fd_revents(fd) & (POLLIN | POLLERR | POLLHUP));
	EXPECT_EQ(-EINVAL, fd_precopy_info(fd, NULL, NULL))
		TH_LOG("PRECOPY_INFO outside PRE_COPY");
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	expect_dead_fd(_metadata, fd, true, "STOP_COPY -> STOP");
	EXPECT_EQ(-1, lseek(fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	close(fd);
	mig_buf_free(&s);

	/* the resuming side */
	rfd = check_request(_metadata, e, S_STOP, -1, S_RESUMING);
	ASSERT_LE(0, rfd);
	env_stream_hdr(e, &h);
	EXPECT_EQ(-1, pwrite(rfd, &h, sizeof(h), 0));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(-1, lseek(rfd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	/* the stream so far (header + 32 from check_request) is incomplete */
	EXPECT_EQ(-EINVAL, mig_set_state(VDEV, S_STOP, NULL));
	EXPECT_EQ((uint32_t)S_RESUMING, get_state(_metadata, e));
	close(rfd);
	ASSERT_EQ(0, env_reset(e));
	ASSERT_EQ(0, env_work(e));
}

/* Read a PRE_COPY fd until ENOMSG; returns bytes read (bounded). */
static ssize_t drain_precopy(struct __test_metadata *_metadata, int fd,
			     struct mig_buf *out)
{
	static uint8_t buf[1 << 16];
	ssize_t n, total = 0;

	for (int i = 0; i < 100000; i++) {
		n = fd_read(fd, buf, sizeof(buf));
		if (n == -ENOMSG)
			return total;
		EXPECT_LT(0, n) TH_LOG("PRE_COPY read: %s",
				       n ? strerror((int)-n) : "EOF");
		if (n <= 0)
			return n ? n : -EIO;
		if (out)
			mig_buf_append(out, buf, n);
		total += n;
	}
	return -E2BIG;
}

TEST_F_TIMEOUT(fsm, precopy_info, T_TIMEOUT)
{
	struct mig_env *e = E;
	uint64_t init0, dirty0, init, dirty, size;
	uint8_t page[ENV_PAGE], buf[64];
	struct mig_buf s = { 0 };
	struct mig_verdict v;
	bool eof = false;
	ssize_t total;
	uint64_t rng = 42;
	int fd, fd2 = -1;

	ASSERT_EQ(0, mig_set_state(VDEV, S_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fd_precopy_info(fd, &init0, &dirty0));
	TH_LOG("PRE_COPY start: initial %llu dirty %llu",
	       (unsigned long long)init0, (unsigned long long)dirty0);
	EXPECT_LT(e->lim.mem_size, init0);
	total = drain_precopy(_metadata, fd, &s);
	ASSERT_LT(0, total);
	EXPECT_EQ((ssize_t)(init0 + dirty0), total)
		TH_LOG("an idle device sends exactly initial + dirty bytes");
	ASSERT_EQ(0, fd_precopy_info(fd, &init, &dirty));
	EXPECT_EQ(0u, init);
	EXPECT_EQ(0u, dirty);
	EXPECT_EQ(-ENOMSG, fd_read(fd, buf, sizeof(buf))) TH_LOG("still nothing");
	ASSERT_EQ(0, mig_data_size(VDEV, &size));

	/* PRE_COPY_P2P: same session, info still works */
	ASSERT_EQ(0, mig_set_state(VDEV, S_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, fd_precopy_info(fd, &init, &dirty));
	EXPECT_EQ(0u, init);
	EXPECT_EQ(0u, dirty);

	/* a CPU write to SRAM is dirty data */
	ra_rand_fill(page, sizeof(page), &rng);
	ASSERT_EQ(0, ra_sram_write(&e->dev, 5 * ENV_PAGE, page, sizeof(page)));
	ASSERT_EQ(0, fd_precopy_info(fd, &init, &dirty));
	EXPECT_EQ(0u, init);
	EXPECT_EQ(sizeof(struct vmig_rec_hdr) + 8 + ENV_PAGE, dirty)
		TH_LOG("one dirty page: one MEM record");
	total = drain_precopy(_metadata, fd, &s);
	EXPECT_EQ((ssize_t)dirty, total);
	ASSERT_EQ(0, fd_precopy_info(fd, &init, &dirty));
	EXPECT_EQ(0u, dirty);

	/* STOP_COPY: same fd, no PRECOPY_INFO, ends in EOF never ENOMSG */
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP_COPY, &fd2));
	EXPECT_EQ(-1, fd2);
	EXPECT_EQ(-EINVAL, fd_precopy_info(fd, &init, &dirty));
	ASSERT_EQ(0, mig_read_stream(fd, &s, 4093, &eof));
	EXPECT_TRUE(eof) TH_LOG("STOP_COPY read ended in ENOMSG");
	EXPECT_EQ(0, fd_read(fd, buf, sizeof(buf)));

	/* the whole stream, header included, is valid */
	mig_stream_verify(s.p, s.len, &e->lim, NULL, &v, NULL);
	EXPECT_EQ((int)MIG_V_ACCEPT, (int)v.kind) TH_LOG("pre-copy stream: %s", v.why);
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	expect_dead_fd(_metadata, fd, true, "STOP_COPY -> STOP");
	close(fd);
	mig_buf_free(&s);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

TEST_F_TIMEOUT(fsm, precopy_info_p2p_first, T_TIMEOUT)
{
	struct vfio_precopy_info info = { .argsz = 8 };
	uint64_t init, dirty;
	int fd;

	/* RUNNING -> PRE_COPY_P2P goes through RUNNING_P2P */
	fd = check_request(_metadata, E, S_RUNNING, -1, S_PRE_COPY_P2P);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fd_precopy_info(fd, &init, &dirty));
	EXPECT_LT(E->lim.mem_size, init);
	/* argsz too small */
	EXPECT_EQ(-1, ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, VFIO_DEVICE_GET_INFO, NULL));
	EXPECT_EQ(ENOTTY, errno);
	check_request(_metadata, E, S_PRE_COPY_P2P, fd, S_RUNNING_P2P);
	close(fd);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(E));
}

/*
 * Bytes that follow the device memory in every stream: the STATE record
 * (at most MIG_STATE_MAX bytes of payload) and the END record.
 */
static uint64_t stream_tail_max(const struct mig_env *e)
{
	return 2 * sizeof(struct vmig_rec_hdr) + e->lim.state_max +
	       sizeof(struct vmig_rec_end);
}

/*
 * The largest STOP_COPY stream of the device from STOP
 * (Documentation/migration-stream.rst): the stream header, every page of
 * SRAM once in MEM records of up to VMIG_MEM_CHUNK_MAX bytes each with
 * its record header and offset, then the tail.
 */
static uint64_t stream_max(const struct mig_env *e)
{
	uint64_t recs = (e->lim.mem_size + VMIG_MEM_CHUNK_MAX - 1) /
			VMIG_MEM_CHUNK_MAX;

	return sizeof(struct vmig_stream_hdr) + e->lim.mem_size +
	       recs * (sizeof(struct vmig_rec_hdr) + sizeof(uint64_t)) +
	       stream_tail_max(e);
}

/*
 * MIG_DATA_SIZE is an estimate of the STOP_COPY stream that never
 * underestimates it and never exceeds what the device can send: from
 * RUNNING or STOP, at most the largest whole stream (SRAM, state_max,
 * overheads); after the pre-copy of an idle device, at most the dirty
 * bytes PRECOPY_INFO reports plus the tail (STATE and END).
 */
TEST_F_TIMEOUT(fsm, data_size_estimate, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct mig_buf s = { 0 }, rest = { 0 };
	uint64_t est_running, est_stop, est_pre, max = stream_max(e);
	uint64_t init = 0, dirty = 0;
	bool eof = false;
	int fd;

	ASSERT_EQ(0, mig_data_size(VDEV, &est_running));
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	ASSERT_EQ(0, mig_data_size(VDEV, &est_stop));
	ASSERT_EQ(0, mig_save_stop_copy(VDEV, &s));
	TH_LOG("MIG_DATA_SIZE running %llu stop %llu; STOP_COPY stream %zu; largest stream %llu (SRAM %llu, state_max %u)",
	       (unsigned long long)est_running, (unsigned long long)est_stop,
	       s.len, (unsigned long long)max,
	       (unsigned long long)e->lim.mem_size, e->lim.state_max);
	EXPECT_LE(s.len, est_running);
	EXPECT_LE(s.len, est_stop);
	EXPECT_GE(max, (uint64_t)s.len) TH_LOG("the stream exceeds the device's maximum");
	EXPECT_GE(max, est_running) TH_LOG("MIG_DATA_SIZE above the largest stream");
	EXPECT_GE(max, est_stop) TH_LOG("MIG_DATA_SIZE above the largest stream");
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));

	/* mid PRE_COPY: the estimate covers what STOP_COPY still sends */
	fd = check_request(_metadata, e, S_RUNNING, -1, S_PRE_COPY);
	ASSERT_LE(0, fd);
	ASSERT_LT(0, drain_precopy(_metadata, fd, NULL));
	ASSERT_EQ(0, fd_precopy_info(fd, &init, &dirty));
	ASSERT_EQ(0, mig_data_size(VDEV, &est_pre));
	ASSERT_EQ(0, mig_set_state(VDEV, S_STOP_COPY, NULL));
	ASSERT_EQ(0, mig_read_stream(fd, &rest, 1 << 16, &eof));
	EXPECT_TRUE(eof);
	TH_LOG("MIG_DATA_SIZE after pre-copy %llu (PRECOPY_INFO %llu + %llu, tail at most %llu); STOP_COPY rest %zu",
	       (unsigned long long)est_pre, (unsigned long long)init,
	       (unsigned long long)dirty,
	       (unsigned long long)stream_tail_max(e), rest.len);
	EXPECT_EQ(0u, init) TH_LOG("the initial pass was read");
	EXPECT_LE(rest.len, est_pre);
	EXPECT_GE(dirty + stream_tail_max(e), est_pre)
		TH_LOG("MIG_DATA_SIZE above the dirty bytes plus STATE and END");
	close(fd);
	mig_buf_free(&s);
	mig_buf_free(&rest);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/* ------------------------------------------------------------------ */
/* concurrency                                                          */
/* ------------------------------------------------------------------ */

struct reader {
	int fd;
	volatile int stop;
	uint64_t data, eof, enomsg, enodev, other;
	uint64_t info_ok, info_einval, info_enodev, info_other;
	uint64_t poll_bad;
	uint64_t bytes;
	int other_err;
	struct mig_buf s;	/* every byte read, in order: one stream */
	bool append_failed;
};

static void *reader_fn(void *arg)
{
	struct reader *r = arg;
	static __thread uint8_t buf[1 << 16];
	uint64_t i = 0;

	while (!r->stop) {
		ssize_t n = read(r->fd, buf, (i % 3) ? sizeof(buf) : 777);
		int err = n < 0 ? errno : 0;

		if (n > 0) {
			r->data++;
			r->bytes += n;
			if (mig_buf_append(&r->s, buf, n))
				r->append_failed = true;
		} else if (!n) {
			r->eof++;
		} else if (err == ENOMSG) {
			r->enomsg++;
		} else if (err == ENODEV) {
			r->enodev++;
		} else {
			r->other++;
			r->other_err = err;
		}
		if (!(++i % 8)) {
			uint64_t a, b;
			int ret = mig_precopy_info(r->fd, &a, &b);
			short ev = fd_revents(r->fd);

			if (!ret)
				r->info_ok++;
			else if (ret == -EINVAL)
				r->info_einval++;
			else if (ret == -ENODEV)
				r->info_enodev++;
			else
				r->info_other++;
			if (ev < 0 || (ev & ~(POLLIN | POLLRDNORM | POLLERR |
					      POLLHUP)))
				r->poll_bad++;
		}
		if (n <= 0)
			usleep(100);
	}
	return NULL;
}

struct watcher {
	struct vu_device *vdev;
	volatile int stop;
	uint64_t ok, bad;
	int bad_err;
};

/* GET state and MIG_DATA_SIZE while everything else happens */
static void *watcher_fn(void *arg)
{
	struct watcher *w = arg;

	while (!w->stop) {
		uint32_t st;
		uint64_t sz;
		int ret = mig_get_state(w->vdev, &st) ?: mig_data_size(w->vdev, &sz);

		if (!ret && st > S_ERROR && st < NSTATES) {
			w->ok++;
		} else {
			w->bad++;
			w->bad_err = ret;
		}
		usleep(300);
	}
	return NULL;
}

/*
 * What one round's reader got is one stream: the bytes of every read() in
 * order.  Read to EOF (STOP_COPY) it is a whole, valid stream whose device
 * memory is what SRAM holds now (nothing wrote it since the freeze);
 * otherwise the session ended under the reader and the bytes are a valid
 * start of a stream: no byte breaks a rule, only the end is missing.
 */
static void check_round_stream(struct __test_metadata *_metadata,
			       struct mig_env *e, struct reader *r, int round,
			       uint8_t *image, uint8_t *sram, int *whole,
			       int *cut)
{
	struct mig_verdict v;

	EXPECT_FALSE(r->append_failed) TH_LOG("round %d: out of memory keeping the stream", round);
	memset(image, 0, e->lim.mem_size);
	mig_stream_verify(r->s.p, r->s.len, &e->lim, NULL, &v,
			  r->eof ? image : NULL);
	if (r->eof) {
		EXPECT_EQ((int)MIG_V_ACCEPT, (int)v.kind)
			TH_LOG("round %d: the %zu bytes read to EOF are not a valid stream: %s",
			       round, r->s.len, v.why ? v.why : "?");
		EXPECT_EQ(0, ra_sram_read(&e->dev, 0, sram, e->lim.mem_size));
		EXPECT_EQ(0, memcmp(image, sram, e->lim.mem_size))
			TH_LOG("round %d: the stream's device memory is not what SRAM holds",
			       round);
		(*whole)++;
	} else {
		EXPECT_EQ((int)MIG_V_TRUNC, (int)v.kind)
			TH_LOG("round %d: the %zu bytes read before the session ended are not the start of a stream: %s",
			       round, r->s.len, v.why ? v.why : "?");
		(*cut)++;
	}
	mig_buf_free(&r->s);
}

TEST_F_TIMEOUT(fsm, concurrent_read_vs_state_changes, 900)
{
	const int rounds = 40, toggles = 6;
	struct mig_env *e = E;
	struct reader tot = { 0 };
	struct watcher w = { .vdev = VDEV };
	pthread_t wt;
	uint64_t rng = 0xc0ffee;
	uint8_t page[ENV_PAGE];
	uint8_t *image, *sram;
	int whole = 0, cut = 0;
	int ret;

	image = malloc(e->lim.mem_size);
	sram = malloc(e->lim.mem_size);
	ASSERT_NE(NULL, image);
	ASSERT_NE(NULL, sram);
	ASSERT_EQ(0, pthread_create(&wt, NULL, watcher_fn, &w));
	for (int round = 0; round < rounds; round++) {
		struct reader r = { 0 };
		pthread_t rt;
		int fd = -1, end = round % 5;

		ret = mig_set_state(VDEV, S_PRE_COPY, &fd);
		ASSERT_EQ(0, ret) TH_LOG("round %d: -> PRE_COPY: %s", round,
					 strerror(-ret));
		ASSERT_LE(0, fd);
		r.fd = fd;
		ASSERT_EQ(0, pthread_create(&rt, NULL, reader_fn, &r));
		for (int t = 0; t < toggles; t++) {
			ra_rand_fill(page, sizeof(page), &rng);
			ra_sram_write(&e->dev, (ra_rand(&rng) % (e->lim.mem_size /
					ENV_PAGE)) * ENV_PAGE, page, sizeof(page));
			usleep(ra_rand(&rng) % 3000);
			ret = mig_set_state(VDEV, S_PRE_COPY_P2P, NULL);
			EXPECT_EQ(0, ret) TH_LOG("round %d: -> PRE_COPY_P2P: %s (MIG_CTRL 0x%x MIG_STATUS 0x%x)",
						 round, strerror(-ret),
						 ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)),
						 ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATUS)));
			if (end == 4 && t == toggles / 2)
				break;	/* reset while in PRE_COPY_P2P */
			usleep(ra_rand(&rng) % 3000);
			ret = mig_set_state(VDEV, S_PRE_COPY, NULL);
			EXPECT_EQ(0, ret) TH_LOG("round %d: -> PRE_COPY: %s",
						 round, strerror(-ret));
		}
		switch (end) {
		case 0:
			ret = mig_set_state(VDEV, S_RUNNING, NULL);
			break;
		case 1:
		case 4:
			ret = ra_reset(&e->dev);
			break;
		case 2:
			ret = mig_set_state(VDEV, S_STOP_COPY, NULL);
			usleep(ra_rand(&rng) % 20000);
			if (!ret)
				ret = mig_set_state(VDEV, S_STOP, NULL);
			if (!ret)
				ret = mig_set_state(VDEV, S_RUNNING, NULL);
			break;
		case 3:
			/* PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP */
			ret = mig_set_state(VDEV, S_STOP, NULL);
			if (!ret)
				ret = mig_set_state(VDEV, S_RUNNING, NULL);
			break;
		}
		EXPECT_EQ(0, ret) TH_LOG("round %d end %d: %s", round, end,
					 strerror(-ret));
		usleep(2000);	/* let the reader see the ended session */
		r.stop = 1;
		pthread_join(rt, NULL);
		expect_dead_fd(_metadata, fd, true, "after the round");
		close(fd);
		EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
		check_round_stream(_metadata, e, &r, round, image, sram,
				   &whole, &cut);
		tot.data += r.data;
		tot.bytes += r.bytes;
		tot.eof += r.eof;
		tot.enomsg += r.enomsg;
		tot.enodev += r.enodev;
		tot.other += r.other;
		tot.info_ok += r.info_ok;
		tot.info_einval += r.info_einval;
		tot.info_enodev += r.info_enodev;
		tot.info_other += r.info_other;
		tot.poll_bad += r.poll_bad;
		EXPECT_EQ(0u, r.other) TH_LOG("round %d: read failed with %s",
					      round, strerror(r.other_err));
		if (end != 2) {
			EXPECT_EQ(0u, r.eof) TH_LOG("round %d: EOF without STOP_COPY",
						    round);
		}
	}
	w.stop = 1;
	pthread_join(wt, NULL);
	TH_LOG("reads: %llu with data (%llu bytes), %llu EOF, %llu ENOMSG, %llu ENODEV, %llu other",
	       (unsigned long long)tot.data, (unsigned long long)tot.bytes,
	       (unsigned long long)tot.eof, (unsigned long long)tot.enomsg,
	       (unsigned long long)tot.enodev, (unsigned long long)tot.other);
	TH_LOG("PRECOPY_INFO: %llu ok, %llu EINVAL, %llu ENODEV, %llu other; watcher %llu ok %llu bad",
	       (unsigned long long)tot.info_ok,
	       (unsigned long long)tot.info_einval,
	       (unsigned long long)tot.info_enodev,
	       (unsigned long long)tot.info_other, (unsigned long long)w.ok,
	       (unsigned long long)w.bad);
	EXPECT_EQ(0u, tot.other);
	EXPECT_EQ(0u, tot.info_other);
	EXPECT_EQ(0u, tot.poll_bad);
	EXPECT_EQ(0u, w.bad) TH_LOG("GET state / MIG_DATA_SIZE: %s",
				    strerror(-w.bad_err));
	EXPECT_LT(0u, tot.data);
	EXPECT_LT(0u, tot.enodev);
	TH_LOG("streams: %d read to EOF and loaded into an image equal to SRAM, %d cut by the end of their session, each a valid start of a stream",
	       whole, cut);
	free(image);
	free(sram);

	ASSERT_EQ(0, env_reset(e));
	ASSERT_EQ(0, env_work(e));
	full_save_ok(_metadata, e);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
}

/*
 * VFIO_DEVICE_RESET while another thread is inside read() on a live
 * PRE_COPY session, whose reads reach the device.  The reset holds the
 * function's memory_lock while it calls the driver's reset_done; a driver
 * that waits there for the session while the reader waits for memory_lock
 * deadlocks both tasks (unkillable).  So the scenario runs in a child
 * process and the test fails, rather than hangs, if it does not finish.
 */
struct rr_shared {
	volatile int fd;	/* session to read, -1: none */
	volatile int in_read;
	volatile int stop;
	uint64_t reads, enodev, other;
};

static void *rr_reader(void *arg)
{
	struct rr_shared *sh = arg;
	static uint8_t buf[1 << 16];

	while (!sh->stop) {
		int fd;
		ssize_t n;

		__atomic_store_n(&sh->in_read, 1, __ATOMIC_SEQ_CST);
		fd = sh->fd;
		if (fd < 0) {
			__atomic_store_n(&sh->in_read, 0, __ATOMIC_SEQ_CST);
			usleep(100);
			continue;
		}
		n = read(fd, buf, sizeof(buf));
		__atomic_store_n(&sh->in_read, 0, __ATOMIC_SEQ_CST);
		sh->reads++;
		if (n < 0 && errno == ENODEV)
			sh->enodev++;
		else if (n < 0 && errno != ENOMSG)
			sh->other++;
	}
	return NULL;
}

static int rr_child(struct mig_env *e, int rounds)
{
	struct rr_shared sh = { .fd = -1 };
	pthread_t t;
	int fd, ret = 0;

	if (pthread_create(&t, NULL, rr_reader, &sh))
		return 2;
	for (int r = 0; r < rounds && !ret; r++) {
		if (mig_set_state(&e->dev.vdev, S_PRE_COPY, &fd) || fd < 0) {
			ret = 3;
			break;
		}
		sh.fd = fd;
		usleep(5000 + (r % 7) * 3000);	/* reads in flight */
		if (ra_reset(&e->dev))
			ret = 4;
		sh.fd = -1;
		while (__atomic_load_n(&sh.in_read, __ATOMIC_SEQ_CST))
			usleep(100);
		/* the session ended with the reset */
		if (fd_read(fd, &r, sizeof(r)) != -ENODEV)
			ret = 5;
		close(fd);
	}
	sh.stop = 1;
	pthread_join(t, NULL);
	fprintf(stderr, "# reader: %llu reads, %llu ENODEV, %llu other errors\n",
		(unsigned long long)sh.reads, (unsigned long long)sh.enodev,
		(unsigned long long)sh.other);
	return ret ? ret : sh.other ? 6 : 0;
}

TEST_F_TIMEOUT(fsm, reset_while_reading, T_TIMEOUT)
{
	struct mig_env *e = E;
	const int rounds = 20, limit_s = 120;
	int status = 0, waited = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(rr_child(e, rounds));
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (waited++ >= limit_s * 10) {
			kill(pid, SIGKILL);
			/* the device is wedged: teardown must not touch it */
			self->f.e.opened = false;
			self->f.iommu_ok = false;
			ASSERT_TRUE(false) TH_LOG("%d resets with a reader in read() did not finish in %d s: VFIO_DEVICE_RESET deadlocked against the reader (tasks left in D state; reboot the VM)",
					       rounds, limit_s);
		}
		usleep(100000);
	}
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child failed at step %d (3: PRE_COPY, 4: reset, 5: fd alive after reset, 6: read error)",
		       WEXITSTATUS(status));
	ASSERT_EQ(0, env_reset(e));
	ASSERT_EQ(0, env_work(e));
}

/* ------------------------------------------------------------------ */
/* failed arcs                                                          */
/* ------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	return vu_now_ms();
}

/* GET of REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE (below, with its tests). */
static int quiesce_get(struct mig_env *e, struct refaccel_vfio_quiesce *q);

/* The quiesce never completes: RUNNING_P2P times out, device runs on. */
/*
 * The driver's debugfs count of arcs that failed with @name (an errno
 * name of its arc_failures_by_errno line), or -1 where debugfs cannot be
 * read.
 */
static long debugfs_arc_failures(struct mig_env *e, const char *name)
{
	char path[128], line[512], *p;
	size_t n = strlen(name);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/refaccel_vfio_pci/%s/status", e->dev.vdev.bdf);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "arc_failures_by_errno:", 22))
			continue;
		for (p = strchr(line, ' '); p; p = strchr(p + 1, ' '))
			if (!strncmp(p + 1, name, n) && p[1 + n] == '=')
				v = strtol(p + 2 + n, NULL, 10);
	}
	fclose(f);
	return v;
}

TEST_F_TIMEOUT(fsm, quiesce_timeout, T_TIMEOUT)
{
	struct refaccel_vfio_quiesce q;
	struct mig_env *e = E;
	long tmo = env_module_param("quiesce_timeout_ms", 1000);
	long timedout = debugfs_arc_failures(e, "ETIMEDOUT");
	uint64_t t0, dt;
	uint8_t buf[64];
	int ret, fd = -1, fd2 = -1;

	if (!env_testctl(e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot make the quiesce hang");
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS, REFACCEL_TEST_NEVER_QUIESCE);
	ASSERT_EQ((uint32_t)REFACCEL_TEST_NEVER_QUIESCE,
		  ra_rd(&e->dev, REFACCEL_REG_TEST_FLAGS));

	t0 = now_ms();
	ret = mig_set_state(VDEV, S_RUNNING_P2P, &fd);
	dt = now_ms() - t0;
	TH_LOG("RUNNING -> RUNNING_P2P with NEVER_QUIESCE: %s after %llu ms (quiesce_timeout_ms %ld)",
	       strerror(-ret), (unsigned long long)dt, tmo);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_EQ(-1, fd);
	/* the driver's own account, not the host's clock, is asserted */
	ASSERT_EQ(0, quiesce_get(e, &q));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_TIMEDOUT, q.last_result);
	EXPECT_LE((uint32_t)tmo * 1000u, q.last_us) TH_LOG("gave up before the bound");
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	EXPECT_EQ(0u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("quiesce request not withdrawn");
	ASSERT_EQ(0, env_work(e));

	/* multi-step requests stop at the failed first arc */
	EXPECT_EQ(-ETIMEDOUT, mig_set_state(VDEV, S_STOP, NULL));
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	EXPECT_EQ(-ETIMEDOUT, mig_set_state(VDEV, S_PRE_COPY_P2P, &fd));
	EXPECT_EQ(-1, fd);
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	ASSERT_EQ(0, env_work(e));

	/* PRE_COPY -> PRE_COPY_P2P: fails, the session goes on */
	fd = check_request(_metadata, e, S_RUNNING, -1, S_PRE_COPY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ETIMEDOUT, mig_set_state(VDEV, S_STOP_COPY, &fd2));
	EXPECT_EQ(-1, fd2);
	EXPECT_EQ((uint32_t)S_PRE_COPY, get_state(_metadata, e));
	expect_live_fd(_metadata, fd, true, "PRE_COPY after a failed quiesce");
	EXPECT_LT(0, fd_read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, env_work(e));

	/* debugfs counted each of the four failed arcs as ETIMEDOUT */
	if (timedout < 0)
		TH_LOG("no debugfs status of %s: failures by errno not checked",
		       e->dev.vdev.bdf);
	else
		EXPECT_EQ(timedout + 4, debugfs_arc_failures(e, "ETIMEDOUT"));

	/* the hang is gone: everything works */
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS, 0);
	EXPECT_EQ(0, mig_set_state(VDEV, S_PRE_COPY_P2P, NULL));
	EXPECT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	close(fd);
	EXPECT_EQ(0, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	EXPECT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/*
 * A slow quiesce below the bound succeeds; above it, it times out.  The
 * driver's report of the last quiesce says which, and how long it took:
 * the device delays the quiesce by TEST_QUIESCE_DELAY of its virtual time,
 * so a successful one took at least a good part of that delay (half:
 * guest and device clocks need not agree to the microsecond), and one
 * that timed out waited the whole bound.  Host time is printed only.
 */
TEST_F_TIMEOUT(fsm, quiesce_delay, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q;
	uint32_t tmo, short_us, long_us;
	uint64_t t0, dt;
	int ret;

	if (!env_testctl(e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot delay the quiesce");
	ASSERT_EQ(0, quiesce_get(e, &q));
	tmo = q.timeout_ms;	/* the bound of this open */
	short_us = tmo * 1000 / 4;
	long_us = tmo * 1000 * 3;

	ra_wr(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY, short_us);
	ASSERT_EQ(short_us, ra_rd(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY));
	t0 = now_ms();
	ret = mig_set_state(VDEV, S_RUNNING_P2P, NULL);
	dt = now_ms() - t0;
	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("quiesce delay %u us (bound %u ms): %s after %llu ms; driver: result %u after %u us, %u in flight",
	       short_us, tmo, strerror(-ret), (unsigned long long)dt,
	       q.last_result, q.last_us, q.last_in_flight);
	EXPECT_EQ(0, ret);
	EXPECT_EQ((uint32_t)S_RUNNING_P2P, get_state(_metadata, e));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result);
	EXPECT_LE(short_us / 2, q.last_us) TH_LOG("the device's delay did not apply");
	EXPECT_EQ(0u, q.last_in_flight);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));

	ra_wr(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY, long_us);
	t0 = now_ms();
	ret = mig_set_state(VDEV, S_RUNNING_P2P, NULL);
	dt = now_ms() - t0;
	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("quiesce delay %u us (bound %u ms): %s after %llu ms; driver: result %u after %u us",
	       long_us, tmo, strerror(-ret), (unsigned long long)dt,
	       q.last_result, q.last_us);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_TIMEDOUT, q.last_result);
	EXPECT_LE(tmo * 1000u, q.last_us) TH_LOG("gave up before the bound");
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	EXPECT_EQ(0u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("quiesce request not withdrawn");
	ASSERT_EQ(0, env_work(e));
	ra_wr(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY, 0);
	/* a late quiesce completion must not leave the device quiesced */
	usleep(long_us);
	ASSERT_EQ(0, env_work(e));
	EXPECT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	ASSERT_EQ(0, quiesce_get(e, &q));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result)
		TH_LOG("the quiesce without delay: result %u", q.last_result);
	EXPECT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/* Memory decode off: arcs that touch the device fail with EIO, no change. */
/*
 * The saving half of a migration, RUNNING -> PRE_COPY -> STOP_COPY with the
 * stream read to its end, on a function whose user left it as it is now;
 * afterwards PCI_COMMAND and PMCSR read as the user left them.
 */
static void save_as_left(struct __test_metadata *_metadata, struct mig_env *e,
			 const char *how)
{
	struct mig_buf s = { 0 };
	uint16_t cmd0 = 0, cmd = 0, pm0 = 0, pm = 0;
	int pmcsr = env_pmcsr(e), fd = -1, ret;
	bool eof = false;

	ASSERT_EQ(0, env_command(e, &cmd0));
	if (pmcsr > 0)
		ASSERT_EQ(0, vu_config_read(&e->dev.vdev, pmcsr, &pm0, 2));
	ret = mig_set_state(&e->dev.vdev, S_PRE_COPY, &fd);
	ASSERT_EQ(0, ret) TH_LOG("%s: RUNNING -> PRE_COPY: %s", how, strerror(-ret));
	ret = mig_read_stream(fd, &s, 1 << 16, &eof);
	EXPECT_EQ(0, ret) TH_LOG("%s: PRE_COPY read: %s", how, strerror(-ret));
	ret = mig_set_state(&e->dev.vdev, S_STOP_COPY, NULL);
	EXPECT_EQ(0, ret) TH_LOG("%s: PRE_COPY -> STOP_COPY: %s", how,
				 strerror(-ret));
	ret = mig_read_stream(fd, &s, 1 << 16, &eof);
	EXPECT_EQ(0, ret) TH_LOG("%s: STOP_COPY read: %s", how, strerror(-ret));
	EXPECT_TRUE(eof) TH_LOG("%s: the stream has no end", how);
	EXPECT_LT((size_t)e->lim.mem_size, s.len);
	close(fd);
	EXPECT_EQ(0, mig_set_state(&e->dev.vdev, S_STOP, NULL));

	ASSERT_EQ(0, env_command(e, &cmd));
	EXPECT_EQ(cmd0, cmd) TH_LOG("%s: PCI_COMMAND changed behind the user", how);
	if (pmcsr > 0) {
		ASSERT_EQ(0, vu_config_read(&e->dev.vdev, pmcsr, &pm, 2));
		EXPECT_EQ(pm0 & 3, pm & 3) TH_LOG("%s: power state changed behind the user",
						  how);
	}
	mig_buf_free(&s);
}

/* A user (a guest) that turned memory decode off cannot block migration. */
TEST_F_TIMEOUT(fsm, decode_off_migrates, T_TIMEOUT)
{
	struct mig_env *e = E;
	uint32_t st = 0;
	int ret;

	ASSERT_EQ(0, env_mem_decode(e, false));
	ret = mig_set_state(VDEV, S_RUNNING_P2P, NULL);
	EXPECT_EQ(0, ret) TH_LOG("RUNNING -> RUNNING_P2P, decode off: %s",
				 strerror(-ret));
	ret = mig_set_state(VDEV, S_RUNNING, NULL);
	EXPECT_EQ(0, ret) TH_LOG("RUNNING_P2P -> RUNNING, decode off: %s",
				 strerror(-ret));
	save_as_left(_metadata, e, "decode off");
	EXPECT_EQ(0, mig_get_state(VDEV, &st));
	EXPECT_EQ((uint32_t)S_STOP, st);
	ASSERT_EQ(0, env_mem_decode(e, true));
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/*
 * A function the user put in D3hot is saved in D0 (it has No_Soft_Reset,
 * so nothing is lost) and put back in D3hot; in D0 again it still works.
 */
TEST_F_TIMEOUT(fsm, d3hot_migrates, T_TIMEOUT)
{
	struct mig_env *e = E;
	int ret;

	if (env_pmcsr(e) < 0)
		SKIP(return, "the function has no PM capability: it cannot enter D3hot");
	ret = env_power(e, 3);
	ASSERT_EQ(0, ret) TH_LOG("D0 -> D3hot through PMCSR: %s", strerror(-ret));
	save_as_left(_metadata, e, "D3hot");
	ret = mig_set_state(VDEV, S_RUNNING, NULL);
	EXPECT_EQ(0, ret) TH_LOG("STOP -> RUNNING in D3hot: %s", strerror(-ret));
	ASSERT_EQ(0, env_power(e, 0));
	ASSERT_EQ(0, env_work(e));
}

/*
 * The user asked vfio-pci for runtime low power: the device may be
 * suspended, so the driver does not reach into it and says so (EBUSY); the
 * arc fails recoverably and works once the user takes the request back.
 */
TEST_F_TIMEOUT(fsm, low_power_refused, T_TIMEOUT)
{
	struct mig_env *e = E;
	uint32_t st = 0;
	int ret;

	ret = mig_low_power(VDEV, true);
	if (ret)
		SKIP(return, "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: %s", strerror(-ret));
	ret = mig_set_state(VDEV, S_RUNNING_P2P, NULL);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("RUNNING -> RUNNING_P2P in low power: %s",
				      strerror(-ret));
	EXPECT_EQ(0, mig_get_state(VDEV, &st));
	EXPECT_EQ((uint32_t)S_RUNNING, st);
	ASSERT_EQ(0, mig_low_power(VDEV, false));
	ret = mig_set_state(VDEV, S_RUNNING_P2P, NULL);
	EXPECT_EQ(0, ret) TH_LOG("after LOW_POWER_EXIT: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/* ------------------------------------------------------------------ */
/* the driver-private quiesce control (REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE) */
/* ------------------------------------------------------------------ */

#define F_QUIESCE	REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE

static int quiesce_get(struct mig_env *e, struct refaccel_vfio_quiesce *q)
{
	return mig_quiesce_get(&e->dev.vdev, q);
}

static int quiesce_set(struct mig_env *e, uint32_t timeout_ms)
{
	return mig_quiesce_set(&e->dev.vdev, timeout_ms);
}

static uint32_t quiesce_timeout_now(struct __test_metadata *_metadata,
				    struct mig_env *e)
{
	struct refaccel_vfio_quiesce q;

	EXPECT_EQ(0, quiesce_get(e, &q));
	return q.timeout_ms;
}

/* sysfs quiesce_timeout_ms of the function: read, or write (val >= 0). */
static long quiesce_sysfs(struct mig_env *e, long val)
{
	char path[160], buf[32];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/quiesce_timeout_ms",
		 e->dev.vdev.bdf);
	f = fopen(path, val < 0 ? "r" : "w");
	if (!f)
		return -errno;
	if (val >= 0) {
		v = fprintf(f, "%ld\n", val) < 0 ? -EIO : 0;
		if (fclose(f))
			return -errno;
		return v;
	}
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 0);
	fclose(f);
	return v;
}

/* PROBE, GET of a fresh open, and what the flags say about the model. */
TEST_F_TIMEOUT(fsm, quiesce_feature_get, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q;
	long def = quiesce_sysfs(e, -1);

	ASSERT_EQ(0, mig_feature(VDEV, VFIO_DEVICE_FEATURE_PROBE |
				 VFIO_DEVICE_FEATURE_GET |
				 VFIO_DEVICE_FEATURE_SET | F_QUIESCE, NULL, 0));
	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("timeout %u ms (sysfs default %ld, module %ld), flags 0x%x, last result %u",
	       q.timeout_ms, def, env_module_param("quiesce_timeout_ms", -1),
	       q.flags, q.last_result);
	EXPECT_EQ((uint32_t)def, q.timeout_ms);
	EXPECT_LE((uint32_t)REFACCEL_QUIESCE_TIMEOUT_MIN_MS, q.timeout_ms);
	EXPECT_GE((uint32_t)REFACCEL_QUIESCE_TIMEOUT_MAX_MS, q.timeout_ms);
	/* the function migrates, so a quiesce that may never end was opted in */
	EXPECT_EQ(!!(e->caps & REFACCEL_CAP_QUIESCE_UNBOUNDED),
		  !!(q.flags & REFACCEL_QUIESCE_F_UNBOUNDED));
	EXPECT_EQ(!!(q.flags & REFACCEL_QUIESCE_F_UNBOUNDED),
		  !!(q.flags & REFACCEL_QUIESCE_F_OPTED_IN));
	EXPECT_EQ(!!(e->caps & REFACCEL_CAP_PRI),
		  !!(q.flags & REFACCEL_QUIESCE_F_PRI_ABORT));
	/* a device parks unless its quiesce is unbounded (it cannot park) */
	EXPECT_EQ(!(e->caps & REFACCEL_CAP_QUIESCE_UNBOUNDED),
		  !!(q.flags & REFACCEL_QUIESCE_F_PARK));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_NONE, q.last_result);
	EXPECT_EQ(0u, q.last_us);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_MODE_DRAIN, q.mode);

	/* GET is side-effect free; a quiesce is then recorded */
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, quiesce_get(e, &q));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result);
	EXPECT_EQ(0u, q.last_in_flight);
	TH_LOG("quiesce of an idle device: %u us", q.last_us);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
}

/* SET takes MIN..MAX and nothing but timeout_ms; a refusal changes nothing. */
TEST_F_TIMEOUT(fsm, quiesce_feature_set_invalid, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q = { .timeout_ms = 100 };
	uint32_t before = quiesce_timeout_now(_metadata, e);

	EXPECT_EQ(-EINVAL, quiesce_set(e, 0));
	EXPECT_EQ(-EINVAL, quiesce_set(e, REFACCEL_QUIESCE_TIMEOUT_MAX_MS + 1));
	EXPECT_EQ(-EINVAL, quiesce_set(e, UINT32_MAX));
	q.flags = ~REFACCEL_QUIESCE_F_ALL;
	EXPECT_EQ(-EINVAL, mig_feature(VDEV, VFIO_DEVICE_FEATURE_SET | F_QUIESCE,
				       &q, sizeof(q))) TH_LOG("SET with a reserved flag");
	q.flags = 0;
	q.mode = REFACCEL_QUIESCE_MODE_PARK + 1;
	EXPECT_EQ(-EINVAL, mig_feature(VDEV, VFIO_DEVICE_FEATURE_SET | F_QUIESCE,
				       &q, sizeof(q))) TH_LOG("SET with an unknown mode");
	q.mode = 0;
	EXPECT_EQ(-EINVAL, mig_feature(VDEV, VFIO_DEVICE_FEATURE_SET | F_QUIESCE,
				       &q, sizeof(q) - 4)) TH_LOG("short argsz");
	EXPECT_EQ(-EINVAL, mig_feature(VDEV, VFIO_DEVICE_FEATURE_GET | F_QUIESCE,
				       &q, 4)) TH_LOG("short GET");
	EXPECT_EQ(before, quiesce_timeout_now(_metadata, e));

	EXPECT_EQ(0, quiesce_set(e, REFACCEL_QUIESCE_TIMEOUT_MIN_MS));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_TIMEOUT_MIN_MS,
		  quiesce_timeout_now(_metadata, e));
	EXPECT_EQ(0, quiesce_set(e, REFACCEL_QUIESCE_TIMEOUT_MAX_MS));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_TIMEOUT_MAX_MS,
		  quiesce_timeout_now(_metadata, e));
}

/*
 * GET, change the bound and the mode, SET what GET returned: the fields
 * only GET fills (flags, the last quiesce) are ignored, the change holds.
 */
TEST_F_TIMEOUT(fsm, quiesce_feature_get_modify_set, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q, back;

	/* a quiesce first, so that every GET-only field may be non-zero */
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, quiesce_get(e, &q));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result);
	q.timeout_ms = q.timeout_ms == 777 ? 778 : 777;
	q.mode = REFACCEL_QUIESCE_MODE_PARK;
	q.last_us = q.last_us ?: 1;
	EXPECT_EQ(0, mig_feature(VDEV, VFIO_DEVICE_FEATURE_SET | F_QUIESCE,
				 &q, sizeof(q)))
		TH_LOG("SET of what GET returned (flags 0x%x, last result %u)",
		       q.flags, q.last_result);
	ASSERT_EQ(0, quiesce_get(e, &back));
	EXPECT_EQ(q.timeout_ms, back.timeout_ms);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_MODE_PARK, back.mode);
	EXPECT_EQ(q.flags, back.flags);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, back.last_result);
}

/*
 * The bound set through the feature gates every quiescing arc: with a
 * delayed quiesce a short bound fails with ETIMEDOUT, leaves the device
 * RUNNING and working (work submitted before the arc completes), and a
 * retry with a larger bound succeeds.
 */
TEST_F_TIMEOUT(fsm, quiesce_timeout_retry, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q;
	const uint32_t delay_us = 300000, short_ms = 20;
	struct refaccel_desc d;
	struct refaccel_cpl cpl;

	if (!env_testctl(e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot delay the quiesce");
	ra_wr(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY, delay_us);
	ASSERT_EQ(0, quiesce_set(e, short_ms));

	/* a FILL in flight across the failed arc (1 ms of device time) */
	ra_wr(&e->dev, REFACCEL_REG_TEST_OP_LATENCY, 1000000);
	memset(e->dst.va, 0, ENV_PAGE);
	d = ra_desc_fill(env_tag(e), e->dst.iova, ENV_PAGE, 0x5eed5eed);
	ASSERT_EQ(0, ra_submit(&e->ring, &d));

	EXPECT_EQ(-ETIMEDOUT, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("bound %u ms, quiesce delay %u us: result %u after %u us, %u in flight",
	       short_ms, delay_us, q.last_result, q.last_us, q.last_in_flight);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_TIMEDOUT, q.last_result);
	EXPECT_LE(short_ms * 1000u, q.last_us) TH_LOG("gave up before the bound");
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	EXPECT_EQ(0u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("quiesce request not withdrawn");
	ASSERT_EQ(0, ra_wait_cpl(&e->ring, &cpl, e->tmo));
	EXPECT_EQ(d.tag, cpl.tag);
	EXPECT_EQ(REFACCEL_CPL_OK, cpl.status);
	EXPECT_EQ(0x5eed5eedu, *(uint32_t *)e->dst.va);
	ra_wr(&e->dev, REFACCEL_REG_TEST_OP_LATENCY, 10000);
	ASSERT_EQ(0, env_work(e));

	/* the same through RUNNING -> STOP and PRE_COPY -> PRE_COPY_P2P */
	EXPECT_EQ(-ETIMEDOUT, mig_set_state(VDEV, S_STOP, NULL));
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	ASSERT_EQ(0, env_work(e));

	/* a larger bound succeeds */
	ASSERT_EQ(0, quiesce_set(e, 30000));
	EXPECT_EQ(0, mig_set_state(VDEV, S_STOP, NULL));
	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("bound 30000 ms: result %u after %u us", q.last_result, q.last_us);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result);
	EXPECT_EQ((uint32_t)S_STOP, get_state(_metadata, e));
	ra_wr(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY, 0);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

/*
 * PARK makes the quiesce independent of how long an op takes: with a 2 s
 * op executing, a 50 ms bound fails in DRAIN mode (the op goes on and
 * completes), and succeeds in PARK mode with the op parked, not
 * performed; RUNNING again, it completes exactly once with its data.  A
 * new open starts in DRAIN again.
 */
TEST_F_TIMEOUT(fsm, quiesce_park, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q;
	const uint32_t op_ns = 2000000000u, bound_ms = 50;
	struct refaccel_desc d;
	struct refaccel_cpl cpl;

	if (!env_testctl(e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot set a long op latency");
	if (e->caps & REFACCEL_CAP_QUIESCE_UNBOUNDED)
		SKIP(return, "CAPS.QUIESCE_UNBOUNDED: this device cannot park");
	ra_wr(&e->dev, REFACCEL_REG_TEST_OP_LATENCY, op_ns);

	/* DRAIN: the bound expires while the op executes */
	ASSERT_EQ(0, quiesce_set(e, bound_ms));
	memset(e->dst.va, 0, ENV_PAGE);
	d = ra_desc_fill(env_tag(e), e->dst.iova, ENV_PAGE, 0x9a4c9a4c);
	ASSERT_EQ(0, ra_submit(&e->ring, &d));
	usleep(20000);		/* let it start executing */
	EXPECT_EQ(-ETIMEDOUT, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	ASSERT_EQ(0, ra_wait_cpl(&e->ring, &cpl, e->tmo));
	EXPECT_EQ(d.tag, cpl.tag);
	EXPECT_EQ(REFACCEL_CPL_OK, cpl.status);

	/* PARK: the same arc succeeds at once, the op stopped mid-way */
	ASSERT_EQ(0, mig_quiesce_set_mode(VDEV, bound_ms,
					  REFACCEL_QUIESCE_MODE_PARK));
	ASSERT_EQ(0, quiesce_get(e, &q));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_MODE_PARK, q.mode);
	memset(e->dst.va, 0, ENV_PAGE);
	d = ra_desc_fill(env_tag(e), e->dst.iova, ENV_PAGE, 0x7a4c7a4c);
	ASSERT_EQ(0, ra_submit(&e->ring, &d));
	usleep(20000);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("PARK with a %u ms op executing: %u us, %u in flight",
	       op_ns / 1000000, q.last_us, q.last_in_flight);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_OK, q.last_result);
	EXPECT_EQ(1u, q.last_in_flight);
	EXPECT_EQ(1u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_PARKED)));
	EXPECT_EQ(0u, *(uint32_t *)e->dst.va) TH_LOG("a parked op was performed");
	EXPECT_EQ(0, ra_reap(&e->ring, &cpl)) TH_LOG("a parked op completed");
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, ra_wait_cpl(&e->ring, &cpl, e->tmo));
	EXPECT_EQ(d.tag, cpl.tag);
	EXPECT_EQ(REFACCEL_CPL_OK, cpl.status);
	EXPECT_EQ(0x7a4c7a4cu, *(uint32_t *)e->dst.va);
	EXPECT_EQ(0, ra_reap(&e->ring, &cpl)) TH_LOG("completed twice");
	ra_wr(&e->dev, REFACCEL_REG_TEST_OP_LATENCY, 10000);
	ASSERT_EQ(0, env_work(e));
}

/*
 * The wait is killable: a process stuck in RUNNING -> RUNNING_P2P with a
 * quiesce that never ends and a 60 s bound dies of SIGKILL at once; the
 * device runs on, and the driver records the quiesce as killed.
 */
TEST_F_TIMEOUT(fsm, quiesce_killable, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_vfio_quiesce q;
	uint64_t t0;
	int status;
	pid_t pid;

	if (!env_testctl(e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot make the quiesce hang");
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS, REFACCEL_TEST_NEVER_QUIESCE);
	ASSERT_EQ(0, quiesce_set(e, REFACCEL_QUIESCE_TIMEOUT_MAX_MS));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(mig_set_state(VDEV, S_RUNNING_P2P, NULL) ? 1 : 0);

	/* the child is inside the arc once the quiesce was requested */
	t0 = now_ms();
	while (!(ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		 REFACCEL_MIG_CTRL_QUIESCE) && now_ms() - t0 < 10000)
		usleep(1000);
	EXPECT_NE(0u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("the child never started the quiesce");
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	ASSERT_EQ(0, quiesce_get(e, &q));
	TH_LOG("killed after %u us (bound %u ms): result %u", q.last_us,
	       q.timeout_ms, q.last_result);
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_KILLED, q.last_result);
	EXPECT_GT(q.timeout_ms * 1000u, q.last_us);
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	EXPECT_EQ(0u, ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_CTRL)) &
		  REFACCEL_MIG_CTRL_QUIESCE) TH_LOG("quiesce request not withdrawn");
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS, 0);
	ASSERT_EQ(0, env_work(e));
	EXPECT_EQ(0, mig_set_state(VDEV, S_RUNNING_P2P, NULL));
	EXPECT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
}

/*
 * The bound belongs to one open: the next open starts from the device's
 * default, which the administrator sets in sysfs (MIN..MAX).
 */
TEST_F_TIMEOUT(fsm, quiesce_timeout_per_open, T_TIMEOUT)
{
	struct refaccel_vfio_quiesce q;
	struct mig_env *e = E;
	char bdf[VU_BDF_LEN], why[256];
	long def = quiesce_sysfs(e, -1);

	ASSERT_LT(0, def) TH_LOG("no sysfs quiesce_timeout_ms: %s", strerror(-def));
	EXPECT_EQ(-EINVAL, quiesce_sysfs(e, 0));
	EXPECT_EQ(-EINVAL, quiesce_sysfs(e, REFACCEL_QUIESCE_TIMEOUT_MAX_MS + 1));
	EXPECT_EQ(def, quiesce_sysfs(e, -1));

	ASSERT_EQ(0, mig_quiesce_set_mode(VDEV, 77, REFACCEL_QUIESCE_MODE_PARK));
	ASSERT_EQ(0, quiesce_sysfs(e, 1234));
	/* the open device keeps its own bound */
	EXPECT_EQ(77u, quiesce_timeout_now(_metadata, e));

	snprintf(bdf, sizeof(bdf), "%s", e->dev.vdev.bdf);
	env_close(e);
	ASSERT_EQ(0, env_open(e, &self->f.iommu, bdf, why, sizeof(why)))
		TH_LOG("reopen %s", bdf);
	EXPECT_EQ(1234u, quiesce_timeout_now(_metadata, e));
	/* and each open starts draining again */
	ASSERT_EQ(0, quiesce_get(e, &q));
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_MODE_DRAIN, q.mode);
	EXPECT_EQ(0, quiesce_sysfs(e, def));
	env_close(e);
	ASSERT_EQ(0, env_open(e, &self->f.iommu, bdf, why, sizeof(why)));
	EXPECT_EQ((uint32_t)def, quiesce_timeout_now(_metadata, e));
}

/* ------------------------------------------------------------------ */
/* blocking poll() of a PRE_COPY data_fd                               */
/* ------------------------------------------------------------------ */

struct poller {
	int fd;
	short revents;
	int ret;
	volatile int started;
};

/* One poll() with a long safety timeout (a hang fails, it is no timer). */
static void *poller_fn(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

	p->started = 1;
	p->ret = poll(&pfd, 1, 120000);
	p->revents = pfd.revents;
	return NULL;
}

/* Read PRE_COPY until ENOMSG: the data_fd has nothing more for now. */
static void precopy_drain(struct __test_metadata *_metadata, int fd)
{
	static uint8_t buf[256 << 10];
	ssize_t n;

	do {
		n = fd_read(fd, buf, sizeof(buf));
	} while (n > 0);
	ASSERT_EQ(-ENOMSG, n);
}

/*
 * A second thread blocks in poll() on a PRE_COPY data_fd with nothing to
 * read.  The device writes SRAM (LOAD): the poller wakes readable.  Then a
 * reset ends the session while a poller waits: it wakes with ERR|HUP.
 */
TEST_F_TIMEOUT(fsm, precopy_blocking_poll, T_TIMEOUT)
{
	struct mig_env *e = E;
	struct refaccel_desc d;
	struct refaccel_cpl cpl;
	struct poller p = { 0 };
	pthread_t t;
	int fd = -1;

	ASSERT_EQ(0, mig_set_state(VDEV, S_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	precopy_drain(_metadata, fd);
	EXPECT_EQ(0, fd_revents(fd)) TH_LOG("nothing to read, yet poll says 0x%x",
					    fd_revents(fd));

	/* new dirty data wakes a blocked poller */
	p.fd = fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, poller_fn, &p));
	while (!p.started)
		usleep(1000);
	usleep(100000);
	memset(e->src.va, 0x3c, ENV_PAGE);
	d = ra_desc_load(env_tag(e), e->src.iova, 3 * ENV_PAGE, ENV_PAGE);
	ASSERT_EQ(0, ra_run(&e->ring, &d, &cpl, e->tmo));
	ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(1, p.ret) TH_LOG("poll returned %d (0: timed out)", p.ret);
	EXPECT_EQ(POLLIN, p.revents & (POLLIN | POLLERR | POLLHUP));
	precopy_drain(_metadata, fd);

	/* a reset wakes a blocked poller with ERR|HUP */
	memset(&p, 0, sizeof(p));
	p.fd = fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, poller_fn, &p));
	while (!p.started)
		usleep(1000);
	usleep(100000);
	ASSERT_EQ(0, env_reset(e));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(1, p.ret) TH_LOG("poll returned %d (0: timed out)", p.ret);
	EXPECT_EQ(POLLERR | POLLHUP, p.revents & (POLLIN | POLLERR | POLLHUP));
	close(fd);
	ASSERT_EQ(0, env_work(e));
}

/* ------------------------------------------------------------------ */
/* an arc racing a reset                                               */
/* ------------------------------------------------------------------ */

struct resetter {
	struct mig_env *e;
	unsigned int delay_us;
	int ret;
};

static void *resetter_fn(void *arg)
{
	struct resetter *r = arg;

	usleep(r->delay_us);
	r->ret = vu_device_reset(&r->e->dev.vdev);
	return NULL;
}

/*
 * RUNNING -> STOP_COPY while a second thread resets the function at a
 * varying moment.  The rule (Documentation/driver.rst): an arc a reset
 * overtakes fails with EAGAIN and hands out no data_fd; a data_fd handed
 * out yields either the whole valid stream or ENODEV (from the reset
 * after the arc), and never data after ENODEV.  Afterwards the device is
 * RUNNING (the reset came last) or in STOP_COPY with a complete stream
 * (the reset came first).
 */
TEST_F_TIMEOUT(fsm, reset_races_stop_copy, T_TIMEOUT)
{
	struct mig_env *e = E;
	unsigned int i, ok = 0, eagain = 0, cut = 0, whole = 0, first = 0;
	struct resetter r = { .e = e };
	struct mig_verdict v;
	struct mig_buf b;
	uint8_t byte;
	pthread_t t;
	bool eof;
	int ret, fd;

	for (i = 0; i < 24; i++) {
		/* a slower quiesce (50 ms of device time) widens the arc */
		if (env_testctl(e))
			ra_wr(&e->dev, REFACCEL_REG_TEST_QUIESCE_DELAY, 50000);
		memset(&b, 0, sizeof(b));
		fd = -1;
		eof = false;
		r.delay_us = (i % 8) * 10000;
		ASSERT_EQ(0, pthread_create(&t, NULL, resetter_fn, &r));
		ret = mig_set_state(VDEV, S_STOP_COPY, &fd);
		if (ret) {
			EXPECT_EQ(-EAGAIN, ret) TH_LOG("round %u: %s", i,
						       strerror(-ret));
			EXPECT_EQ(-1, fd);
			eagain++;
		} else {
			ok++;
			ret = mig_read_stream(fd, &b, 4096, &eof);
			if (ret) {
				EXPECT_EQ(-ENODEV, ret) TH_LOG("round %u: read: %s",
							       i, strerror(-ret));
				/* nothing after ENODEV */
				EXPECT_EQ(-ENODEV, fd_read(fd, &byte, 1));
				cut++;
			} else {
				EXPECT_TRUE(eof);
				mig_stream_verify(b.p, b.len, &e->lim, NULL, &v,
						  NULL);
				EXPECT_EQ((int)MIG_V_ACCEPT, (int)v.kind)
					TH_LOG("round %u: stream: %s", i,
					       v.why ? v.why : "?");
				whole++;
			}
			close(fd);
		}
		ASSERT_EQ(0, pthread_join(t, NULL));
		ASSERT_EQ(0, r.ret);
		ret = (int)get_state(_metadata, e);
		if (ret == S_STOP_COPY) {
			/* the reset came first: the arc and its stream are whole */
			EXPECT_TRUE(b.len && eof);
			first++;
		} else {
			EXPECT_EQ(S_RUNNING, ret);
		}
		mig_buf_free(&b);
		ASSERT_EQ(0, env_reset(e));
		ASSERT_EQ(0, env_work(e));
	}
	TH_LOG("24 rounds: %u arcs ok (%u whole streams, %u cut by the reset), %u EAGAIN, %u resets before the arc",
	       ok, whole, cut, eagain, first);
}

/* ------------------------------------------------------------------ */
/* the ERROR state, reached through fault injection                    */
/* ------------------------------------------------------------------ */

/*
 * PRE_COPY_P2P -> STOP_COPY with a SAVE that fails and a device that will
 * not thaw (TEST_FLAGS.SAVE_FAIL | NO_THAW): the undo of the freeze fails,
 * so the device is in ERROR.  Then: the session is over, every SET_STATE
 * fails with EINVAL and leaves ERROR, and only VFIO_DEVICE_RESET brings
 * the device back, fully working and migratable.
 */
TEST_F_TIMEOUT(fsm, error_state, T_TIMEOUT)
{
	static const uint32_t targets[] = {
		S_STOP, S_RUNNING, S_STOP_COPY, S_RESUMING, S_RUNNING_P2P,
		S_PRE_COPY, S_PRE_COPY_P2P,
	};
	struct mig_env *e = E;
	struct mig_buf b = { 0 };
	unsigned int i;
	int ret, fd = -1, fd2 = -1;

	if (!env_testctl(e))
		SKIP(return, "CAPS.TESTCTL clear (model property testctl=off): cannot inject a failed undo");
	fd = check_request(_metadata, e, S_RUNNING, -1, S_PRE_COPY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_set_state(VDEV, S_PRE_COPY_P2P, NULL));
	ra_wr(&e->dev, REFACCEL_REG_TEST_FLAGS,
	      REFACCEL_TEST_SAVE_FAIL | REFACCEL_TEST_NO_THAW);
	ret = mig_set_state(VDEV, S_STOP_COPY, &fd2);
	TH_LOG("PRE_COPY_P2P -> STOP_COPY with SAVE failing and no thaw: %s",
	       strerror(-ret));
	EXPECT_EQ(-EIO, ret);
	EXPECT_EQ(-1, fd2);
	ASSERT_EQ((uint32_t)S_ERROR, get_state(_metadata, e));
	expect_dead_fd(_metadata, fd, true, "the session of a device in ERROR");
	close(fd);

	for (i = 0; i < ARRAY_SIZE(targets); i++) {
		fd2 = -1;
		EXPECT_EQ(-EINVAL, mig_set_state(VDEV, targets[i], &fd2))
			TH_LOG("SET_STATE %s from ERROR", sname(targets[i]));
		EXPECT_EQ(-1, fd2);
		EXPECT_EQ((uint32_t)S_ERROR, get_state(_metadata, e));
	}

	/* VFIO_DEVICE_RESET: RUNNING, working, and a migration works again */
	ASSERT_EQ(0, env_reset(e));
	EXPECT_EQ((uint32_t)S_RUNNING, get_state(_metadata, e));
	EXPECT_EQ(0u, ra_rd(&e->dev, REFACCEL_REG_TEST_FLAGS))
		TH_LOG("the reset did not clear the injected faults");
	ASSERT_EQ(0, env_work(e));
	ASSERT_EQ(0, mig_save_stop_copy(VDEV, &b));
	EXPECT_LT(0u, (unsigned int)b.len);
	mig_buf_free(&b);
	ASSERT_EQ(0, mig_set_state(VDEV, S_RUNNING, NULL));
	ASSERT_EQ(0, env_work(e));
}

TEST_HARNESS_MAIN
