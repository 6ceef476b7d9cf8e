// SPDX-License-Identifier: GPL-2.0-only
/*
 * refaccel_migrate_demo: the project's main job in one program.  Submit
 * work to function A, live-migrate A's whole device state to function B
 * through the VFIO migration uAPI while that work is in flight (PRE_COPY,
 * then STOP_COPY, as QEMU does), let B finish it, verify every result, and
 * print what happened.
 *
 *   refaccel_migrate_demo [-o STREAM_FILE] [BDF_A BDF_B]
 *
 * Without BDFs, the first two functions bound to refaccel-vfio-pci are used.
 * Exit status 0 only if every descriptor completed exactly once, correctly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mig_util.h"
#include "refaccel_lib.h"

#define NDESC		32
#define CHUNK		(32u << 10)
/*
 * 50 ms of device time per op: 1.6 s of work, more than the save takes on
 * a loaded host (on 7.3 KASAN beside another TCG VM the pre-copy read of
 * 1.3 MB alone took 422 ms; with 10 ms per op all 32 were done by then).
 */
#define SLOW_OP_NS	50000000u
#define TAG		0xde0000000000ull

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *what, int err)
{
	printf("RESULT: FAIL (%s: %s)\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static struct refaccel_desc work(struct vu_dma *src, struct vu_dma *dst, int i)
{
	uint64_t s = src->iova + (uint64_t)i * CHUNK;
	uint64_t d = dst->iova + (uint64_t)i * CHUNK;

	switch (i % 3) {
	case 0:
		return ra_desc_copy(TAG | i, s, d, CHUNK);
	case 1:
		return ra_desc_crc32c(TAG | i, s, CHUNK, 0);
	default:
		return ra_desc_load(TAG | i, s, (uint64_t)i * CHUNK, CHUNK);
	}
}

static bool verify(struct ra_dev *b, struct vu_dma *src, struct vu_dma *dst,
		   int i, const struct refaccel_cpl *cpl)
{
	uint8_t *s = (uint8_t *)src->va + (size_t)i * CHUNK;
	uint8_t buf[CHUNK];

	if (cpl->status != REFACCEL_CPL_OK)
		return false;
	switch (i % 3) {
	case 0:
		return !memcmp(s, (uint8_t *)dst->va + (size_t)i * CHUNK, CHUNK);
	case 1:
		return cpl->result == ra_ref_crc32c(0, s, CHUNK);
	default:
		return !ra_sram_read(b, (uint64_t)i * CHUNK, buf, CHUNK) &&
		       !memcmp(s, buf, CHUNK);
	}
}

int main(int argc, char **argv)
{
	const char *out = NULL, *bdf_a = NULL, *bdf_b = NULL;
	struct mig_buf stream = { 0 };
	struct vu_iommu iommu;
	struct ra_dev a, b;
	struct ra_ring ring;
	struct vu_dma src, dst;
	struct refaccel_cpl cpl;
	struct ra_found f;
	uint64_t initial, dirty, rng = 42;
	uint32_t done_a, state;
	size_t pre_len;
	double t0, t_save, t_load, t_down;
	int seen[NDESC] = { 0 };
	int i, fd, ret, ok = 0, opt, nvar = 0;
	bool eof;

	while ((opt = getopt(argc, argv, "o:")) != -1) {
		if (opt != 'o') {
			fprintf(stderr, "usage: %s [-o STREAM_FILE] [BDF_A BDF_B]\n",
				argv[0]);
			return 2;
		}
		out = optarg;
	}
	if (argc - optind == 2) {
		bdf_a = argv[optind];
		bdf_b = argv[optind + 1];
	} else {
		ra_discover(&f);
		for (i = 0; i < f.n; i++) {
			if (!ra_driver_is_variant(f.driver[i]))
				continue;
			if (nvar++ == 0)
				bdf_a = f.bdf[i];
			else if (!bdf_b)
				bdf_b = f.bdf[i];
		}
		if (!bdf_b) {
			printf("RESULT: FAIL (need two functions bound to refaccel-vfio-pci)\n");
			return 1;
		}
	}

	if ((ret = vu_iommu_init(&iommu, vu_backend_from_env())) ||
	    (ret = ra_open(&iommu, bdf_a, &a)) || (ret = ra_open(&iommu, bdf_b, &b)))
		return fail("open", ret);
	if ((ret = ra_reset(&a)) || (ret = ra_reset(&b)))
		return fail("reset", ret);
	printf("refaccel live migration demo\n");
	printf("  source      %s (%s), SRAM %u KiB\n", bdf_a, a.driver, a.sram_size >> 10);
	printf("  destination %s (%s)\n", bdf_b, b.driver);

	if ((ret = ra_ring_setup(&a, &iommu, &ring, 64, 64)) ||
	    (ret = ra_enable(&a, ra_timeout_ms())) ||
	    (ret = vu_dma_alloc(&iommu, NDESC * CHUNK, VU_DMA_RW, &src)) ||
	    (ret = vu_dma_alloc(&iommu, NDESC * CHUNK, VU_DMA_RW, &dst)))
		return fail("setup", ret);
	ra_rand_fill(src.va, NDESC * CHUNK, &rng);
	if (ra_rd(&a, REFACCEL_REG_CAPS) & REFACCEL_CAP_TESTCTL)
		ra_wr(&a, REFACCEL_REG_TEST_OP_LATENCY, SLOW_OP_NS);
	for (i = 0; i < NDESC; i++) {
		struct refaccel_desc d = work(&src, &dst, i);

		ra_sq_push(&ring, &d);
	}
	ra_sq_doorbell(&ring);
	printf("  submitted   %d descriptors (COPY, CRC32C, LOAD of %u KiB each), %u ms of device time each\n",
	       NDESC, CHUNK >> 10, ra_rd(&a, REFACCEL_REG_OP_LATENCY_NS) / 1000000);

	/* The VMM's sequence: PRE_COPY while running, then stop and copy. */
	t0 = now_ms();
	if ((ret = mig_set_state(&a.vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd)))
		return fail("RUNNING -> PRE_COPY", ret);
	if ((ret = mig_read_stream(fd, &stream, 1 << 16, &eof)))
		return fail("pre-copy read", ret);
	mig_precopy_info(fd, &initial, &dirty);
	pre_len = stream.len;
	t_down = now_ms();
	if ((ret = mig_set_state(&a.vdev, VFIO_DEVICE_STATE_STOP_COPY, NULL)))
		return fail("PRE_COPY -> STOP_COPY", ret);
	if ((ret = mig_read_stream(fd, &stream, 1 << 16, &eof)) || !eof)
		return fail("stop-copy read", ret ? ret : EPROTO);
	close(fd);
	if ((ret = mig_set_state(&a.vdev, VFIO_DEVICE_STATE_STOP, NULL)))
		return fail("STOP_COPY -> STOP", ret);
	t_save = now_ms();
	done_a = ra_rd(&a, REFACCEL_REG_CNT_COMPLETED);

	if ((ret = mig_load(&b.vdev, stream.p, stream.len, 1 << 16)))
		return fail("load into destination", ret);
	if ((ret = mig_set_state(&b.vdev, VFIO_DEVICE_STATE_RUNNING, NULL)))
		return fail("destination -> RUNNING", ret);
	t_load = now_ms();
	mig_get_state(&b.vdev, &state);
	printf("  migrated    A had finished %u, %u were in flight or queued\n",
	       done_a, NDESC - done_a);
	printf("  stream      %zu bytes: pre-copy %zu, stop-copy %zu (%s)\n",
	       stream.len, pre_len, stream.len - pre_len,
	       out ? out : "not saved");
	printf("  time        save %.1f ms (device stopped for %.1f ms of it), load+resume %.1f ms\n",
	       t_save - t0, t_save - t_down, t_load - t_save);
	printf("  destination state %s\n", mig_state_name(state));
	if (out) {
		FILE *fp = fopen(out, "wb");

		if (!fp || fwrite(stream.p, 1, stream.len, fp) != stream.len ||
		    fclose(fp))
			return fail("save stream file", errno);
	}

	ring.dev = &b;
	for (i = 0; i < NDESC; i++) {
		ret = ra_wait_cpl(&ring, &cpl, ra_timeout_ms());
		if (ret)
			return fail("waiting for completions", ret);
		if ((cpl.tag & ~0xffffull) != TAG || (cpl.tag & 0xffff) >= NDESC ||
		    seen[cpl.tag & 0xffff]++)
			return fail("unexpected or duplicate completion", EPROTO);
		ok += verify(&b, &src, &dst, cpl.tag & 0xffff, &cpl);
	}
	printf("  completed   %d of %d descriptors exactly once, %d results verified\n",
	       NDESC, NDESC, ok);
	ra_reset(&a);
	ra_reset(&b);
	vu_dma_free(&iommu, &src);
	vu_dma_free(&iommu, &dst);
	ra_ring_free(&ring);
	ra_close(&b);
	ra_close(&a);
	vu_iommu_cleanup(&iommu);
	mig_buf_free(&stream);
	if (ok != NDESC || done_a >= NDESC) {
		printf("RESULT: FAIL (%s)\n", ok != NDESC ? "wrong results" :
		       "nothing was in flight at migration time");
		return 1;
	}
	printf("RESULT: PASS\n");
	return 0;
}
