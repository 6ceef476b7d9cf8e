// SPDX-License-Identifier: GPL-2.0-only
/*
 * What a migration session allocates is the user's: a RESUMING session
 * stages the whole device memory (up to 1 GiB for a device the core
 * accepts) before it is applied, and that staging must be charged to the
 * memory cgroup of the process that opened it, like any other memory it
 * makes the kernel hold.  When the session ends (here: VFIO_DEVICE_RESET,
 * then the arc that acts on it) the memory is given back at once, while
 * the user still holds the data_fd.
 *
 * The test moves itself into a memory cgroup of its own (cgroup v2) and
 * reads memory.current around RESUMING.  Needs one function bound to
 * refaccel-vfio-pci with device memory, root and the cgroup v2 memory
 * controller (else SKIP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define CG_ROOT		"/sys/fs/cgroup"
#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING

FIXTURE(acct) {
	struct env_one one;
	char cg[96];
	bool in_cg;
};

/* Write @val to @dir/@file; 0 or -errno. */
static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[160];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

/* memory.current of @dir in bytes, or -1. */
static long long cg_current(const char *dir)
{
	char path[160];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.current", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

FIXTURE_SETUP(acct)
{
	char pid[32];
	int ret;

	ENV_ONE_SETUP(&self->one);
	if (!self->one.e.lim.mem_size)
		SKIP(return, "no device memory: a RESUMING session stages nothing large");
	if (access(CG_ROOT "/cgroup.subtree_control", W_OK))
		SKIP(return, "no writable cgroup v2 hierarchy at " CG_ROOT);
	/* the memory controller for the children of the root */
	ret = cg_write(CG_ROOT, "cgroup.subtree_control", "+memory");
	if (ret)
		SKIP(return, "cannot enable the memory controller: %s",
		     strerror(-ret));
	snprintf(self->cg, sizeof(self->cg), CG_ROOT "/refaccel-acct-%d",
		 getpid());
	ASSERT_EQ(0, mkdir(self->cg, 0755)) TH_LOG("mkdir %s: %s", self->cg,
						    strerror(errno));
	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, cg_write(self->cg, "cgroup.procs", pid));
	self->in_cg = true;
}

FIXTURE_TEARDOWN(acct)
{
	char pid[32];

	env_one_teardown(&self->one);
	if (self->in_cg) {
		snprintf(pid, sizeof(pid), "%d", getpid());
		cg_write(CG_ROOT, "cgroup.procs", pid);
		rmdir(self->cg);
	}
}

TEST_F_TIMEOUT(acct, resuming_staging_charged_and_freed_at_end, 120)
{
	struct mig_env *e = &self->one.e;
	struct vu_device *v = &e->dev.vdev;
	long long mem = e->lim.mem_size, before, open_, ended;
	uint32_t st;
	int fd = -1;

	before = cg_current(self->cg);
	ASSERT_LE(0, before);
	ASSERT_EQ(0, mig_set_state(v, S_RESUMING, &fd));
	ASSERT_LE(0, fd);
	open_ = cg_current(self->cg);
	TH_LOG("memory.current %lld before RESUMING, %lld in it: +%lld for %lld bytes of device memory",
	       before, open_, open_ - before, mem);
	EXPECT_LE(mem, open_ - before)
		TH_LOG("the session's staging of the device memory is not charged to the user");

	/* the reset ends the session; the next arc acts on it */
	ASSERT_EQ(0, vu_device_reset(v));
	ASSERT_EQ(0, mig_get_state(v, &st));
	EXPECT_EQ((uint32_t)S_RUNNING, st);
	ended = cg_current(self->cg);
	TH_LOG("%lld after the session ended, data_fd still open", ended);
	/* the batched charge cache may keep a little: half is given back */
	EXPECT_LE(mem / 2, open_ - ended)
		TH_LOG("an ended session keeps its memory until close()");
	close(fd);
}

TEST_HARNESS_MAIN
