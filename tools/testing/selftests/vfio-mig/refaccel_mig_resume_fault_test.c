// SPDX-License-Identifier: GPL-2.0-only
/*
 * A RESUMING data_fd written from a buffer that faults part way: the
 * fault is the user's, not the stream's.  write() must say exactly how
 * much it took (a short write, or -EFAULT when it took nothing), so that
 * the rest of the stream written from that point loads the device as if
 * nothing had happened: no byte skipped, none fed twice.
 *
 * The stream is the function's own (saved in STOP_COPY with a random
 * SRAM image), loaded back into it after a reset and another image; the
 * load must bring back the first image.  The buffer of the faulting write
 * ends at a PROT_NONE page, at several points of the stream: in the
 * header, in a record's payload, in the END record.  Needs one function
 * bound to refaccel-vfio-pci (else SKIP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_test_env.h"

#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_STOP		VFIO_DEVICE_STATE_STOP
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING

FIXTURE(rfault) {
	struct env_one one;
	struct mig_buf s;	/* the saved stream */
	uint8_t *img;		/* SRAM when it was saved */
	uint8_t *area;		/* mmap: pages, then one PROT_NONE page */
	size_t area_len;
};

/* Where the faulting write's buffer ends: an offset into the stream. */
FIXTURE_VARIANT(rfault) {
	long at;	/* > 0: from the start; < 0: from the end; 0: middle */
};

FIXTURE_VARIANT_ADD(rfault, in_header) {
	.at = 20,
};

FIXTURE_VARIANT_ADD(rfault, in_stream) {
	.at = 0,
};

FIXTURE_VARIANT_ADD(rfault, in_end_record) {
	.at = -8,
};

FIXTURE_SETUP(rfault)
{
	struct mig_env *e;
	uint64_t rng = 0x7266 ^ (uint64_t)getpid();
	size_t pg = sysconf(_SC_PAGESIZE);

	ENV_ONE_SETUP(&self->one);
	e = &self->one.e;
	if (e->lim.mem_size) {
		self->img = malloc(e->lim.mem_size);
		ASSERT_NE(NULL, self->img);
		ra_rand_fill(self->img, e->lim.mem_size, &rng);
		ASSERT_EQ(0, ra_sram_write(&e->dev, 0, self->img,
					   e->lim.mem_size));
	}
	ASSERT_EQ(0, env_work(e));
	ASSERT_EQ(0, mig_save_stop_copy(&e->dev.vdev, &self->s));
	ASSERT_LT(64u, self->s.len);

	/* a new life: reset, another image, stopped for RESUMING */
	ASSERT_EQ(0, env_reset(e));
	if (e->lim.mem_size) {
		uint8_t *other = malloc(e->lim.mem_size);

		ASSERT_NE(NULL, other);
		ra_rand_fill(other, e->lim.mem_size, &rng);
		ASSERT_EQ(0, ra_sram_write(&e->dev, 0, other, e->lim.mem_size));
		free(other);
	}
	ASSERT_EQ(0, mig_set_state(&e->dev.vdev, S_STOP, NULL));

	self->area_len = (self->s.len + pg - 1) / pg * pg + pg;
	self->area = mmap(NULL, self->area_len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->area);
	ASSERT_EQ(0, mprotect(self->area + self->area_len - pg, pg, PROT_NONE));
}

FIXTURE_TEARDOWN(rfault)
{
	if (self->area && self->area != MAP_FAILED)
		munmap(self->area, self->area_len);
	mig_buf_free(&self->s);
	free(self->img);
	env_one_teardown(&self->one);
}

TEST_F_TIMEOUT(rfault, short_write_then_rest_loads_exactly, 120)
{
	struct mig_env *e = &self->one.e;
	struct vu_device *v = &e->dev.vdev;
	uint8_t *guard = self->area + self->area_len - sysconf(_SC_PAGESIZE);
	size_t len = self->s.len, cut, done;
	uint32_t st;
	ssize_t n;
	int fd = -1;

	cut = variant->at > 0 ? (size_t)variant->at :
	      variant->at < 0 ? len - (size_t)-variant->at : len / 2;
	ASSERT_LT(0u, cut);
	ASSERT_LT(cut, len);
	/* stream bytes [0, cut) end right at the guard page */
	memcpy(guard - cut, self->s.p, cut);

	ASSERT_EQ(0, mig_set_state(v, S_RESUMING, &fd));
	ASSERT_LE(0, fd);

	/* nothing readable: nothing taken, the stream has not moved */
	EXPECT_EQ(-EFAULT, fd_write(fd, guard, 64));

	/* the whole stream asked for, readable up to @cut only */
	n = fd_write(fd, guard - cut, len);
	TH_LOG("%zu-byte stream, buffer readable for %zu: write() returned %zd",
	       len, cut, n);
	ASSERT_LT(0, n) TH_LOG("a fault after taken bytes must be a short write, not %s",
			       n < 0 ? strerror(-n) : "0");
	ASSERT_GE((ssize_t)cut, n);
	done = n;

	/* a fault again, right where the stream stands: still nothing lost */
	EXPECT_EQ(-EFAULT, fd_write(fd, guard, len - done));

	/* the rest, from where write() said the stream stands */
	ASSERT_EQ(0, mig_write_stream(fd, self->s.p + done, len - done, 4096));
	EXPECT_EQ(0, mig_set_state(v, S_STOP, NULL))
		TH_LOG("the stream did not load: bytes skipped or fed twice");
	close(fd);
	ASSERT_EQ(0, mig_get_state(v, &st));
	ASSERT_EQ((uint32_t)S_STOP, st);

	if (self->img) {
		uint8_t *got = malloc(e->lim.mem_size);

		ASSERT_NE(NULL, got);
		ASSERT_EQ(0, ra_sram_read(&e->dev, 0, got, e->lim.mem_size));
		EXPECT_EQ(0, memcmp(self->img, got, e->lim.mem_size))
			TH_LOG("the loaded SRAM is not the one saved");
		free(got);
	}
	/* the loaded ring state is the saved one's; this process's ring was
	 * restarted since: a reset makes the two agree again
	 */
	ASSERT_EQ(0, mig_set_state(v, S_RUNNING, NULL));
	ASSERT_EQ(0, env_reset(e));
	EXPECT_EQ(0, env_work(e));
}

TEST_HARNESS_MAIN
