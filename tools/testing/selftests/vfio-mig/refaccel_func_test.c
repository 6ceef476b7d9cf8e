// SPDX-License-Identifier: GPL-2.0-only
/*
 * Functional kselftests of the reference accelerator through VFIO.
 *
 * They run unchanged whether the function is bound to refaccel-vfio-pci or
 * to stock vfio-pci.  The function is found by ra_discover() (first match,
 * or REFACCEL_BDF); without one every test SKIPs.
 *
 * Environment:
 *   REFACCEL_BDF        comma separated PCI addresses to use (first one for
 *                       the single-device tests)
 *   REFACCEL_TIMEOUT_MS per-wait timeout (default 30000; never asserted on)
 *   VFIO_MIG_BACKEND    container (default) | iommufd
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

/*
 * The code kselftest_harness.h (6.12) generates in TEST_F() is not -Wextra
 * clean: unused parameters, and a local kept across setjmp().  Silence just
 * those two here; everything else stays -Wall -Wextra -Werror.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "refaccel_lib.h"
#include "mig_test_env.h"

#define PAGE			4096u
#define TAG_BASE		0xa5c3000000000000ull
#define T_TIMEOUT		300	/* seconds per test (harness alarm) */
#define IRQ_ABSENT_MS		200	/* grace period for "no interrupt" */
#define BUF_CAP			(64u << 20)

static long first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

/* index of the first byte that is not @val, or -1 */
static long first_not(const void *a, size_t len, uint8_t val)
{
	const uint8_t *x = a;

	for (size_t i = 0; i < len; i++)
		if (x[i] != val)
			return (long)i;
	return -1;
}

static long first_nonzero(const void *a, size_t len)
{
	return first_not(a, len, 0);
}

#define ASSERT_MEMEQ(a, b, len, what) do {				\
	long __d = first_diff((a), (b), (len));				\
	ASSERT_EQ(-1, __d) TH_LOG("%s: first difference at byte %ld of %zu", \
				  (what), __d, (size_t)(len));		\
} while (0)

/* Run one descriptor, wait for its completion, check tag and status. */
static struct refaccel_cpl run_expect(struct __test_metadata *_metadata,
				      struct ra_ring *r, int tmo,
				      struct refaccel_desc d, unsigned int want)
{
	struct refaccel_cpl cpl;
	int ret;

	memset(&cpl, 0, sizeof(cpl));
	ret = ra_run(r, &d, &cpl, tmo);
	ASSERT_EQ(0, ret) TH_LOG("opcode %u len %u tag 0x%llx: no completion (%s)",
				 d.opcode, d.len, (unsigned long long)d.tag,
				 strerror(-ret));
	ASSERT_EQ(d.tag, cpl.tag) TH_LOG("completion for another tag");
	ASSERT_EQ(want, cpl.status)
		TH_LOG("opcode %u len %u src 0x%llx dst 0x%llx value 0x%x: status %u (%s), expected %s",
		       d.opcode, d.len, (unsigned long long)d.src,
		       (unsigned long long)d.dst, d.value, cpl.status,
		       ra_cpl_status_name(cpl.status), ra_cpl_status_name(want));
	if (want == REFACCEL_CPL_OK && d.opcode <= REFACCEL_OP_MAX) {
		EXPECT_EQ(d.opcode, cpl.opcode);
		if (d.opcode != REFACCEL_OP_CRC32C) {
			EXPECT_EQ(0u, cpl.result);
		}
	}
	return cpl;
}

/* The device still works: a NOP completes OK and nothing is halted. */
static void expect_alive(struct __test_metadata *_metadata, struct ra_ring *r,
			 int tmo, uint64_t tag)
{
	uint32_t st;

	run_expect(_metadata, r, tmo, ra_desc_nop(tag), REFACCEL_CPL_OK);
	st = ra_rd(r->dev, REFACCEL_REG_STATUS);
	ASSERT_EQ(0u, st & REFACCEL_STATUS_HALTED);
	ASSERT_NE(0u, st & REFACCEL_STATUS_ENABLED);
}

/*
 * Set up the address space of the backend chosen by VFIO_MIG_BACKEND;
 * SKIP if this kernel does not have that backend at all.
 */
#define IOMMU_INIT_OR_SKIP(iommu) do {					\
	enum vu_backend __b = vu_backend_from_env();			\
	int __r = vu_iommu_init((iommu), __b);				\
									\
	if (__r == -ENOENT)						\
		SKIP(return, "kernel has no VFIO %s backend (%s)",	\
		     vu_backend_name(__b), __b == VU_BACKEND_IOMMUFD ?	\
		     "/dev/iommu" : "/dev/vfio/vfio");			\
	ASSERT_EQ(0, __r) TH_LOG("%s backend: %s", vu_backend_name(__b), \
				 strerror(-__r));			\
} while (0)

static void skip_reason_common(char *buf, size_t len, struct ra_found *f)
{
	if (geteuid() != 0)
		snprintf(buf, len, "needs root (VFIO device access)");
	else if (!ra_discover(f))
		snprintf(buf, len, "%s", f->why);
	else
		buf[0] = '\0';
}

/* ================================================================== */
/* discovery                                                           */
/* ================================================================== */

TEST(discovery)
{
	struct ra_found f;
	char why[600];

	skip_reason_common(why, sizeof(why), &f);
	if (why[0])
		SKIP(return, "%s", why);
	for (int i = 0; i < f.n; i++) {
		int grp = vu_pci_iommu_group(f.bdf[i]);

		ksft_print_msg("refaccel %s driver %s%s iommu_group %d\n",
			       f.bdf[i], f.driver[i],
			       ra_driver_is_variant(f.driver[i]) ? " (variant)" : "",
			       grp);
		EXPECT_LE(0, grp);
		EXPECT_TRUE(ra_driver_ok(f.driver[i]));
	}
}

/* ================================================================== */
/* fixture: one function, reset, MSI-X on, 64/64 ring enabled           */
/* ================================================================== */

FIXTURE(refaccel) {
	struct ra_found found;
	struct vu_iommu iommu;
	struct ra_dev dev;
	struct ra_ring ring;
	struct vu_dma src, dst;
	size_t bufsz;
	int tmo;
	uint64_t tag;
	uint64_t rng;
	bool iommu_ok, opened;
};

static uint64_t next_tag(FIXTURE_DATA(refaccel) *self)
{
	return TAG_BASE | ++self->tag;
}

FIXTURE_SETUP(refaccel)
{
	char why[600];
	size_t want;
	int ret;

	self->tmo = ra_timeout_ms();
	self->rng = 0x243f6a8885a308d3ull;
	skip_reason_common(why, sizeof(why), &self->found);
	if (why[0])
		SKIP(return, "%s", why);

	IOMMU_INIT_OR_SKIP(&self->iommu);
	self->iommu_ok = true;
	ret = ra_open(&self->iommu, self->found.bdf[0], &self->dev);
	ASSERT_EQ(0, ret) TH_LOG("open %s: %s", self->found.bdf[0],
				 strerror(-ret));
	self->opened = true;
	TH_LOG("%s driver %s, %s backend, regs %s, sram %s",
	       self->dev.vdev.bdf, self->dev.driver,
	       vu_backend_name(self->iommu.backend),
	       self->dev.regs_mmapped ? "mmap" : "pread/pwrite",
	       self->dev.sram_mmapped ? "mmap" : "pread/pwrite");

	ret = ra_reset(&self->dev);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_RESET: %s", strerror(-ret));
	ret = ra_irq_enable(&self->dev);
	ASSERT_EQ(0, ret) TH_LOG("MSI-X setup: %s", strerror(-ret));
	ra_wr(&self->dev, REFACCEL_REG_INT_MASK, 0);
	ra_wr(&self->dev, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);

	ret = ra_ring_setup(&self->dev, &self->iommu, &self->ring, 64, 64);
	ASSERT_EQ(0, ret) TH_LOG("ring setup: %s", strerror(-ret));
	ret = ra_enable(&self->dev, self->tmo);
	if (ret)
		ra_dump(&self->dev, "enable failed");
	ASSERT_EQ(0, ret) TH_LOG("CTRL.ENABLE with a valid 64/64 ring: %s",
				 strerror(-ret));

	want = self->dev.max_xfer;
	if (want < (256u << 10) || want > BUF_CAP)
		want = 256u << 10;
	self->bufsz = (want + 2 * PAGE + PAGE - 1) & ~(size_t)(PAGE - 1);
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, self->bufsz, VU_DMA_RW,
				  &self->src));
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, self->bufsz, VU_DMA_RW,
				  &self->dst));
}

FIXTURE_TEARDOWN(refaccel)
{
	if (self->opened) {
		/* stop all DMA before the memory goes away */
		if (ra_reset(&self->dev))
			ra_wr(&self->dev, REFACCEL_REG_CTRL, 0);
		ra_irq_disable(&self->dev);
		vu_dma_free(&self->iommu, &self->src);
		vu_dma_free(&self->iommu, &self->dst);
		ra_ring_free(&self->ring);
		ra_close(&self->dev);
	}
	if (self->iommu_ok)
		vu_iommu_cleanup(&self->iommu);
}

/* Reset the device and put a fresh ring of the given sizes on it. */
static void reconfigure(struct __test_metadata *_metadata,
			FIXTURE_DATA(refaccel) *self, uint32_t sq, uint32_t cq)
{
	int ret;

	ASSERT_EQ(0, ra_reset(&self->dev));
	ra_ring_free(&self->ring);
	ret = ra_ring_setup(&self->dev, &self->iommu, &self->ring, sq, cq);
	ASSERT_EQ(0, ret);
	ra_wr(&self->dev, REFACCEL_REG_INT_MASK, 0);
	ret = ra_enable(&self->dev, self->tmo);
	if (ret)
		ra_dump(&self->dev, "enable failed");
	ASSERT_EQ(0, ret) TH_LOG("enable with SQ %u CQ %u: %s", sq, cq,
				 strerror(-ret));
}

#define RUN(desc, status) \
	run_expect(_metadata, &self->ring, self->tmo, (desc), (status))
#define ALIVE() expect_alive(_metadata, &self->ring, self->tmo, next_tag(self))
#define SRC(off) ((uint8_t *)self->src.va + (off))
#define DST(off) ((uint8_t *)self->dst.va + (off))

/* ---- identity ---- */

TEST_F_TIMEOUT(refaccel, identity, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	struct vfio_irq_info irq;
	uint32_t v, caps, known, cfg[3];

	v = ra_rd(d, REFACCEL_REG_ID);
	EXPECT_EQ((uint32_t)REFACCEL_ID_MAGIC, v);
	v = ra_rd(d, REFACCEL_REG_VERSION);
	EXPECT_EQ((uint32_t)REFACCEL_VERSION_1_0 >> 16, v >> 16)
		TH_LOG("VERSION 0x%08x", v);

	caps = ra_rd(d, REFACCEL_REG_CAPS);
	known = REFACCEL_CAP_MIGRATION | REFACCEL_CAP_SRAM_DIRTY |
		REFACCEL_CAP_DMA_DIRTY | REFACCEL_CAP_PRI | REFACCEL_CAP_ATS |
		REFACCEL_CAP_PASID | REFACCEL_CAP_P2P | REFACCEL_CAP_TESTCTL |
		REFACCEL_CAP_QUIESCE_UNBOUNDED;
	EXPECT_EQ(0u, caps & ~known) TH_LOG("CAPS 0x%08x has unknown bits", caps);
	TH_LOG("CAPS 0x%08x SRAM %u bytes MAX_XFER %u OP_LATENCY %u ns",
	       caps, d->sram_size, d->max_xfer,
	       ra_rd(d, REFACCEL_REG_OP_LATENCY_NS));

	EXPECT_NE(0u, d->sram_size);
	EXPECT_EQ(0u, d->sram_size % PAGE);
	EXPECT_LE(d->sram_size, REFACCEL_SRAM_MAX_SIZE);
	EXPECT_LE((uint64_t)d->sram_size, d->bar2_size);
	EXPECT_NE(0u, d->max_xfer);
	EXPECT_NE(~0u, d->max_xfer);
	EXPECT_NE(~0u, ra_rd(d, REFACCEL_REG_OP_LATENCY_NS));
	/* the variant driver shows BAR0 without the migration block */
	EXPECT_EQ(ra_driver_is_variant(d->driver) ?
		  (uint64_t)REFACCEL_REGS_USER_SIZE : (uint64_t)REFACCEL_REGS_SIZE,
		  vu_region_size(&d->vdev, REFACCEL_BAR_REGS));
	EXPECT_NE(NULL, vu_region_ptr(&d->vdev, REFACCEL_BAR_REGS, 0,
				      vu_region_size(&d->vdev, REFACCEL_BAR_REGS)))
		TH_LOG("BAR0 is not mapped whole");
	EXPECT_TRUE(d->sram_mmapped) TH_LOG("BAR2 (SRAM) is not mmappable");

	ASSERT_EQ(0, vu_config_read(&d->vdev, 0, cfg, sizeof(cfg)));
	EXPECT_EQ((uint32_t)REFACCEL_PCI_VENDOR_ID, cfg[0] & 0xffff);
	EXPECT_EQ((uint32_t)REFACCEL_PCI_DEVICE_ID, cfg[0] >> 16);
	EXPECT_EQ((uint32_t)REFACCEL_PCI_CLASS, cfg[2] >> 16);
	EXPECT_EQ((uint32_t)REFACCEL_PCI_REVISION, cfg[2] & 0xff);

	ASSERT_EQ(0, vu_irq_info(&d->vdev, VFIO_PCI_MSIX_IRQ_INDEX, &irq));
	EXPECT_LE((uint32_t)REFACCEL_NUM_VECTORS, irq.count);
	EXPECT_NE(0u, d->vdev.info.flags & VFIO_DEVICE_FLAGS_RESET);

	/* state right after reset + ring enable */
	v = ra_rd(d, REFACCEL_REG_STATUS);
	EXPECT_NE(0u, v & REFACCEL_STATUS_ENABLED);
	EXPECT_EQ(0u, v & REFACCEL_STATUS_HALTED);
	EXPECT_EQ((uint32_t)REFACCEL_HALT_NONE,
		  ra_rd(d, REFACCEL_REG_HALT_REASON));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_FETCHED));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_ERRORS));
	EXPECT_EQ(self->ring.sq.iova, ra_rd64(d, REFACCEL_REG_SQ_BASE_LO));
	EXPECT_EQ(self->ring.cq.iova, ra_rd64(d, REFACCEL_REG_CQ_BASE_LO));
	EXPECT_EQ(64u, ra_rd(d, REFACCEL_REG_SQ_SIZE));
	EXPECT_EQ(64u, ra_rd(d, REFACCEL_REG_CQ_SIZE));
}

/* ---- NOP ---- */

TEST_F_TIMEOUT(refaccel, nop, T_TIMEOUT)
{
	struct refaccel_cpl cpl;

	cpl = RUN(ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK);
	EXPECT_EQ(REFACCEL_CPL_F_PHASE, cpl.flags & REFACCEL_CPL_F_PHASE);
	EXPECT_EQ(1u, ra_rd(&self->dev, REFACCEL_REG_SQ_HEAD) % 64);
	EXPECT_EQ(1u, ra_rd(&self->dev, REFACCEL_REG_CQ_TAIL) % 64);
	EXPECT_EQ(1u, ra_rd(&self->dev, REFACCEL_REG_CNT_FETCHED));
	EXPECT_EQ(1u, ra_rd(&self->dev, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(0u, ra_rd(&self->dev, REFACCEL_REG_CNT_ERRORS));
	/* a full 64-bit tag comes back intact */
	cpl = RUN(ra_desc_nop(0xfedcba9876543210ull), REFACCEL_CPL_OK);
	EXPECT_EQ(0xfedcba9876543210ull, cpl.tag);
}

/* ---- COPY ---- */

TEST_F_TIMEOUT(refaccel, copy, T_TIMEOUT)
{
	static const struct { uint32_t soff, doff, len; } c[] = {
		{ 0, 0, 4096 }, { 0, 0, 1 }, { 1, 3, 2 }, { 3, 1, 3 },
		{ 4, 8, 4 }, { 5, 7, 5 }, { 0, 64, 63 }, { 64, 0, 64 },
		{ 7, 9, 65 }, { 4095, 1, 4097 }, { 100, 4001, 65537 },
		{ 13, 17, 200003 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint32_t so = c[i].soff, dof = c[i].doff, len = c[i].len;

		ASSERT_LE((size_t)dof + len + 64, self->bufsz);
		ra_rand_fill(SRC(so), len, &self->rng);
		memset(self->dst.va, 0xee, dof + len + 64);
		RUN(ra_desc_copy(next_tag(self), self->src.iova + so,
				 self->dst.iova + dof, len), REFACCEL_CPL_OK);
		ASSERT_MEMEQ(DST(dof), SRC(so), len, "COPY data");
		ASSERT_EQ(-1, first_not(DST(0), dof, 0xee))
			TH_LOG("COPY wrote before dst");
		ASSERT_EQ(-1, first_not(DST(dof + len), 64, 0xee))
			TH_LOG("COPY len %u wrote past the end", len);
	}
}

TEST_F_TIMEOUT(refaccel, copy_overlap, T_TIMEOUT)
{
	/* memmove semantics inside one buffer, both directions */
	static const struct { uint32_t soff, doff, len; } c[] = {
		{ 100, 164, 1000 }, { 1000, 936, 1000 }, { 0, 1, 4097 },
		{ 1, 0, 4097 }, { 5, 0, 65537 }, { 0, 5, 65537 },
		{ 300, 300, 777 }, { 8, 4104, 8192 }, { 4104, 8, 8192 },
	};
	size_t span = 80000;
	uint8_t *ref = malloc(span);

	ASSERT_NE(NULL, ref);
	ASSERT_LE(span, self->bufsz);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ra_rand_fill(self->src.va, span, &self->rng);
		memcpy(ref, self->src.va, span);
		memmove(ref + c[i].doff, ref + c[i].soff, c[i].len);
		RUN(ra_desc_copy(next_tag(self), self->src.iova + c[i].soff,
				 self->src.iova + c[i].doff, c[i].len),
		    REFACCEL_CPL_OK);
		ASSERT_MEMEQ(self->src.va, ref, span, "overlapping COPY");
	}
	free(ref);
}

/* ---- FILL ---- */

TEST_F_TIMEOUT(refaccel, fill, T_TIMEOUT)
{
	static const uint32_t lens[] = {
		1, 2, 3, 4, 5, 6, 7, 8, 9, 63, 4093, 4096, 65535, 100001,
	};
	static const uint32_t vals[] = {
		0xdeadbeef, 0x01020304, 0, 0xffffffff, 0x80000001,
	};
	uint8_t *ref = malloc(100001);

	ASSERT_NE(NULL, ref);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t len = lens[i], off = (uint32_t)(i * 3 % 16);
		uint32_t val = vals[i % (sizeof(vals) / sizeof(vals[0]))];

		memset(self->dst.va, 0x5a, off + len + 64);
		RUN(ra_desc_fill(next_tag(self), self->dst.iova + off, len, val),
		    REFACCEL_CPL_OK);
		ra_ref_fill(ref, len, val);
		ASSERT_MEMEQ(DST(off), ref, len, "FILL data");
		ASSERT_EQ(-1, first_not(DST(0), off, 0x5a))
			TH_LOG("FILL wrote before dst");
		ASSERT_EQ(-1, first_not(DST(off + len), 64, 0x5a))
			TH_LOG("FILL len %u wrote past the end", len);
	}
	free(ref);
}

/* ---- CRC32C ---- */

TEST_F_TIMEOUT(refaccel, crc32c_check_value, T_TIMEOUT)
{
	static const char check[] = "123456789";
	struct refaccel_cpl cpl;

	/* the test's own table implementation first */
	ASSERT_EQ(0xe3069283u, ra_ref_crc32c(0, check, 9));

	for (uint32_t off = 0; off < 4; off++) {
		memcpy(SRC(off), check, 9);
		cpl = RUN(ra_desc_crc32c(next_tag(self), self->src.iova + off,
					 9, 0), REFACCEL_CPL_OK);
		EXPECT_EQ(0xe3069283u, cpl.result)
			TH_LOG("CRC32C(\"123456789\") at offset %u = 0x%08x",
			       off, cpl.result);
	}
}

TEST_F_TIMEOUT(refaccel, crc32c, T_TIMEOUT)
{
	static const uint32_t lens[] = {
		1, 2, 3, 4, 5, 31, 64, 1000, 4096, 4097, 65539, 200000,
	};
	static const uint32_t seeds[] = { 0, 0xffffffff, 0x12345678 };
	struct refaccel_cpl cpl, a, b;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
			uint32_t off = (uint32_t)(i + s) % 8, len = lens[i];

			ra_rand_fill(SRC(off), len, &self->rng);
			cpl = RUN(ra_desc_crc32c(next_tag(self),
						 self->src.iova + off, len,
						 seeds[s]), REFACCEL_CPL_OK);
			ASSERT_EQ(ra_ref_crc32c(seeds[s], SRC(off), len),
				  cpl.result)
				TH_LOG("len %u seed 0x%x", len, seeds[s]);
		}
	}

	/* chaining: crc(A||B, 0) == crc(B, crc(A, 0)) */
	ra_rand_fill(self->src.va, 10000, &self->rng);
	cpl = RUN(ra_desc_crc32c(next_tag(self), self->src.iova, 10000, 0),
		  REFACCEL_CPL_OK);
	a = RUN(ra_desc_crc32c(next_tag(self), self->src.iova, 3333, 0),
		REFACCEL_CPL_OK);
	b = RUN(ra_desc_crc32c(next_tag(self), self->src.iova + 3333,
			       10000 - 3333, a.result), REFACCEL_CPL_OK);
	EXPECT_EQ(cpl.result, b.result);
	EXPECT_EQ(ra_ref_crc32c(0, self->src.va, 10000), cpl.result);
}

/* ---- LOAD / STORE ---- */

static void check_sram(struct __test_metadata *_metadata, struct ra_dev *d,
		       uint64_t off, const void *want, size_t len,
		       const char *what)
{
	uint8_t *got = malloc(len ? len : 1);

	ASSERT_NE(NULL, got);
	if (d->sram_mmapped) {
		/* through the BAR2 mmap */
		ASSERT_EQ(0, ra_sram_read(d, off, got, len));
		ASSERT_MEMEQ(got, want, len, what);
	}
	/* through read() on the vfio device fd */
	memset(got, 0, len);
	ASSERT_EQ(0, ra_sram_pread(d, off, got, len));
	ASSERT_MEMEQ(got, want, len, what);
	free(got);
}

TEST_F_TIMEOUT(refaccel, load, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint32_t sz = d->sram_size;
	struct { uint64_t off; uint32_t len; } c[] = {
		{ 0, 4096 }, { 13, 1001 }, { 4, 4 }, { 1, 1 },
		{ sz - 777, 777 }, { sz - 4, 4 }, { sz / 2 + 3, 65539 },
	};
	uint8_t guard[16];

	ASSERT_LE(65536u + 4096u, sz);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t off = c[i].off;
		uint32_t len = c[i].len;
		uint8_t *pat = malloc(len + 32);

		ASSERT_NE(NULL, pat);
		/* surround the target with a known pattern */
		memset(pat, 0x3c, len + 32);
		if (off >= 16) {
			ASSERT_EQ(0, ra_sram_write(d, off - 16, pat, 16));
		}
		if (off + len + 16 <= sz) {
			ASSERT_EQ(0, ra_sram_write(d, off + len, pat, 16));
		}

		ra_rand_fill(self->src.va, len, &self->rng);
		RUN(ra_desc_load(next_tag(self), self->src.iova, off, len),
		    REFACCEL_CPL_OK);
		check_sram(_metadata, d, off, self->src.va, len, "LOAD data");

		memset(guard, 0x3c, sizeof(guard));
		if (off >= 16)
			check_sram(_metadata, d, off - 16, guard, 16,
				   "LOAD wrote before its range");
		if (off + len + 16 <= sz)
			check_sram(_metadata, d, off + len, guard, 16,
				   "LOAD wrote past its range");
		free(pat);
	}
}

TEST_F_TIMEOUT(refaccel, store, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint32_t sz = d->sram_size;
	struct { uint64_t off; uint32_t len; uint32_t doff; bool pwrite; } c[] = {
		{ 0, 4096, 0, false }, { 7, 999, 5, false },
		{ sz - 4096, 4096, 1, false }, { sz - 3, 3, 2, true },
		{ 8192, 70001, 3, true }, { 1, 1, 0, true },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t off = c[i].off;
		uint32_t len = c[i].len, dof = c[i].doff;
		uint8_t *pat = malloc(len);

		ASSERT_NE(NULL, pat);
		ra_rand_fill(pat, len, &self->rng);
		/* CPU writes to SRAM: through the mmap, or through write() */
		if (c[i].pwrite) {
			ASSERT_EQ(0, ra_sram_pwrite(d, off, pat, len));
		} else {
			ASSERT_EQ(0, ra_sram_write(d, off, pat, len));
		}
		memset(self->dst.va, 0x77, dof + len + 64);
		RUN(ra_desc_store(next_tag(self), off, self->dst.iova + dof,
				  len), REFACCEL_CPL_OK);
		ASSERT_MEMEQ(DST(dof), pat, len, "STORE data");
		ASSERT_EQ(-1, first_not(DST(dof + len), 64, 0x77))
			TH_LOG("STORE wrote past the end");
		free(pat);
	}
}

TEST_F_TIMEOUT(refaccel, load_store_roundtrip, T_TIMEOUT)
{
	static const uint32_t lens[] = { 1, 3, 64, 4097, 123457 };
	uint64_t off = 1000;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t len = lens[i];

		ASSERT_LE(off + len, self->dev.sram_size);
		ra_rand_fill(SRC(1), len, &self->rng);
		memset(self->dst.va, 0, len + 8);
		RUN(ra_desc_load(next_tag(self), self->src.iova + 1, off, len),
		    REFACCEL_CPL_OK);
		RUN(ra_desc_store(next_tag(self), off, self->dst.iova + 3, len),
		    REFACCEL_CPL_OK);
		ASSERT_MEMEQ(DST(3), SRC(1), len, "LOAD+STORE round trip");
		off += 4093;
	}
}

/* ---- largest transfer ---- */

TEST_F_TIMEOUT(refaccel, max_xfer, T_TIMEOUT)
{
	uint32_t max = self->dev.max_xfer;
	struct refaccel_cpl cpl;

	if (max > self->bufsz - PAGE)
		SKIP(return, "MAX_XFER %u larger than the test buffers", max);
	ra_rand_fill(self->src.va, max, &self->rng);
	memset(self->dst.va, 0, self->bufsz);

	RUN(ra_desc_copy(next_tag(self), self->src.iova, self->dst.iova, max),
	    REFACCEL_CPL_OK);
	ASSERT_MEMEQ(self->dst.va, self->src.va, max, "max size COPY");
	ASSERT_EQ(-1, first_nonzero(DST(max), self->bufsz - max));

	cpl = RUN(ra_desc_crc32c(next_tag(self), self->src.iova, max, 0),
		  REFACCEL_CPL_OK);
	EXPECT_EQ(ra_ref_crc32c(0, self->src.va, max), cpl.result);

	RUN(ra_desc_fill(next_tag(self), self->dst.iova, max, 0x0badf00d),
	    REFACCEL_CPL_OK);
	EXPECT_EQ(0x0d, *DST(max - 4));
	EXPECT_EQ(0x0b, *DST(max - 1));
	EXPECT_EQ(0, *DST(max));

	if (self->dev.sram_size >= max) {
		memset(self->dst.va, 0, max);
		RUN(ra_desc_load(next_tag(self), self->src.iova, 0, max),
		    REFACCEL_CPL_OK);
		RUN(ra_desc_store(next_tag(self), 0, self->dst.iova, max),
		    REFACCEL_CPL_OK);
		ASSERT_MEMEQ(self->dst.va, self->src.va, max,
			     "max size LOAD+STORE");
	}
}

/* ---- interrupts ---- */

TEST_F_TIMEOUT(refaccel, irq_completion, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;

	ra_irq_drain(d, REFACCEL_VEC_COMPLETION);
	ra_irq_drain(d, REFACCEL_VEC_ERROR);
	for (int i = 0; i < 3; i++) {
		struct refaccel_cpl cpl;
		int64_t n;

		ASSERT_EQ(0, ra_submit(&self->ring,
				       &(struct refaccel_desc){
					       .opcode = REFACCEL_OP_NOP,
					       .tag = next_tag(self) }));
		n = ra_irq_wait(d, REFACCEL_VEC_COMPLETION, self->tmo);
		ASSERT_LT(0, n) TH_LOG("no MSI-X vector 0 after completion %d", i);
		ASSERT_EQ(0, ra_wait_cpl(&self->ring, &cpl, self->tmo));
		EXPECT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
		EXPECT_NE(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) &
			      REFACCEL_INT_COMPLETION);
		/* RW1C */
		ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_COMPLETION);
		EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) &
			      REFACCEL_INT_COMPLETION);
	}
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) & REFACCEL_INT_ERROR);
	EXPECT_EQ(0u, ra_irq_drain(d, REFACCEL_VEC_ERROR));
}

TEST_F_TIMEOUT(refaccel, irq_masked_then_unmasked, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	struct refaccel_cpl cpl;

	ra_wr(d, REFACCEL_REG_INT_MASK, REFACCEL_INT_COMPLETION);
	EXPECT_EQ(REFACCEL_INT_COMPLETION,
		  ra_rd(d, REFACCEL_REG_INT_MASK) & REFACCEL_INT_ALL);
	ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
	ra_irq_drain(d, REFACCEL_VEC_COMPLETION);

	RUN(ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK);
	/* pending in INT_STATUS, but no message while masked */
	EXPECT_NE(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) &
		      REFACCEL_INT_COMPLETION);
	EXPECT_EQ(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, IRQ_ABSENT_MS))
		TH_LOG("MSI-X vector 0 fired while INT_MASK masks it");

	/* unmasking with the status pending delivers it */
	ra_wr(d, REFACCEL_REG_INT_MASK, 0);
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, self->tmo))
		TH_LOG("pending completion interrupt not sent on unmask");
	ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_COMPLETION);

	/* and the next completion interrupts normally */
	ASSERT_EQ(0, ra_submit(&self->ring, &(struct refaccel_desc){
		.opcode = REFACCEL_OP_NOP, .tag = next_tag(self) }));
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, self->tmo));
	ASSERT_EQ(0, ra_wait_cpl(&self->ring, &cpl, self->tmo));
}

TEST_F_TIMEOUT(refaccel, irq_no_irq_flag, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	struct refaccel_desc desc;
	struct refaccel_cpl cpl;

	ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
	ra_irq_drain(d, REFACCEL_VEC_COMPLETION);

	desc = ra_desc_fill(next_tag(self), self->dst.iova, 64, 0x11223344);
	desc.flags = REFACCEL_DESC_F_NO_IRQ;
	RUN(desc, REFACCEL_CPL_OK);
	EXPECT_EQ(0x44, *DST(0));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) &
		      REFACCEL_INT_COMPLETION)
		TH_LOG("NO_IRQ descriptor set INT_STATUS.COMPLETION");
	EXPECT_EQ(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, IRQ_ABSENT_MS))
		TH_LOG("NO_IRQ descriptor raised MSI-X vector 0");

	/* without the flag it interrupts again */
	ASSERT_EQ(0, ra_submit(&self->ring, &(struct refaccel_desc){
		.opcode = REFACCEL_OP_NOP, .tag = next_tag(self) }));
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, self->tmo));
	ASSERT_EQ(0, ra_wait_cpl(&self->ring, &cpl, self->tmo));
	EXPECT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
}

/* ---- error completions ---- */

/* An error completion must not touch the destination. */
static void expect_dst_untouched(struct __test_metadata *_metadata,
				 const uint8_t *p, size_t len, uint8_t fill)
{
	long k = first_not(p, len, fill);

	ASSERT_EQ(-1, k) TH_LOG("rejected descriptor wrote byte %ld", k);
}

TEST_F_TIMEOUT(refaccel, err_bad_desc, T_TIMEOUT)
{
	struct refaccel_desc nop = ra_desc_nop(TAG_BASE | 0xbad);

	for (int i = 0; i < 7; i++) {
		struct refaccel_desc d = ra_desc_fill(next_tag(self),
						      self->dst.iova, 256,
						      0xcafef00d);

		switch (i) {
		case 0: d.rsvd0 = 1; break;
		case 1: d.rsvd0 = 0x8000; break;
		case 2: d.rsvd1[0] = 1; break;
		case 3: d.rsvd1[4] = 0x80000000u; break;
		case 4: d.flags = 0x02; break;
		case 5: d.flags = 0x80; break;
		case 6: d.flags = REFACCEL_DESC_F_NO_IRQ | 0x40; break;
		}
		memset(self->dst.va, 0x99, 256);
		RUN(d, REFACCEL_CPL_BAD_DESC);
		expect_dst_untouched(_metadata, self->dst.va, 256, 0x99);
		ALIVE();
	}
	/* a NOP with reserved bits is just as bad */
	nop.rsvd1[2] = 0x100;
	RUN(nop, REFACCEL_CPL_BAD_DESC);
	ALIVE();
}

TEST_F_TIMEOUT(refaccel, err_bad_opcode, T_TIMEOUT)
{
	static const uint8_t ops[] = { REFACCEL_OP_MAX + 1, 7, 0x80, 0xff };

	for (size_t i = 0; i < sizeof(ops); i++) {
		struct refaccel_desc d = ra_desc_copy(next_tag(self),
						      self->src.iova,
						      self->dst.iova, 64);

		d.opcode = ops[i];
		memset(self->dst.va, 0x99, 64);
		RUN(d, REFACCEL_CPL_BAD_OPCODE);
		expect_dst_untouched(_metadata, self->dst.va, 64, 0x99);
		ALIVE();
	}
}

TEST_F_TIMEOUT(refaccel, err_bad_length, T_TIMEOUT)
{
	uint32_t max = self->dev.max_xfer;
	uint64_t s = self->src.iova, t = self->dst.iova;
	struct refaccel_desc c[] = {
		/* len == 0 for an op that moves data */
		ra_desc_copy(0, s, t, 0),
		ra_desc_fill(0, t, 0, 1),
		ra_desc_crc32c(0, s, 0, 0),
		ra_desc_load(0, s, 0, 0),
		ra_desc_store(0, 0, t, 0),
		/* len > MAX_XFER */
		ra_desc_copy(0, s, t, max + 1),
		ra_desc_fill(0, t, max + 1, 1),
		ra_desc_fill(0, t, 0xffffffffu, 1),
		ra_desc_crc32c(0, s, max + 1, 0),
		/* NOP with a length */
		ra_desc_nop(0),
		ra_desc_nop(0),
	};
	size_t n = sizeof(c) / sizeof(c[0]);

	c[n - 2].len = 1;
	c[n - 1].len = 0xffffffffu;
	ASSERT_NE(0u, max);
	ASSERT_NE(~0u, max);
	for (size_t i = 0; i < n; i++) {
		c[i].tag = next_tag(self);
		memset(self->dst.va, 0x99, 64);
		RUN(c[i], REFACCEL_CPL_BAD_LENGTH);
		expect_dst_untouched(_metadata, self->dst.va, 64, 0x99);
		ALIVE();
	}
}

TEST_F_TIMEOUT(refaccel, err_bad_sram_range, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint64_t sz = d->sram_size, s = self->src.iova, t = self->dst.iova;
	struct refaccel_desc c[] = {
		ra_desc_load(0, s, sz - 4, 8),		/* crosses the end */
		ra_desc_load(0, s, sz, 1),		/* starts at the end */
		ra_desc_load(0, s, sz + 4096, 4),
		ra_desc_load(0, s, 1ull << 32, 4),	/* not truncated */
		ra_desc_load(0, s, ~0ull - 3, 8),	/* off + len wraps */
		ra_desc_store(0, sz - 1, t, 2),
		ra_desc_store(0, sz, t, 4),
		ra_desc_store(0, 1ull << 32, t, 4),
		ra_desc_store(0, ~0ull - 0xfff, t, 0x2000), /* wraps */
	};
	uint8_t head[64], zero[64];

	memset(zero, 0, sizeof(zero));
	ASSERT_EQ(0, ra_sram_write(d, 0, zero, sizeof(zero)));
	ra_rand_fill(self->src.va, 0x2000, &self->rng);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		c[i].tag = next_tag(self);
		memset(self->dst.va, 0x99, 0x2000);
		RUN(c[i], REFACCEL_CPL_BAD_SRAM_RANGE);
		expect_dst_untouched(_metadata, self->dst.va, 0x2000, 0x99);
		/* a wrapped offset must not land at the start of SRAM */
		ASSERT_EQ(0, ra_sram_read(d, 0, head, sizeof(head)));
		ASSERT_MEMEQ(head, zero, sizeof(head), "SRAM start modified");
		ALIVE();
	}
}

TEST_F_TIMEOUT(refaccel, err_dma_read_fault, T_TIMEOUT)
{
	uint64_t hole = vu_iova_alloc(&self->iommu, 0x10000);
	uint64_t end = self->src.iova + self->src.size;
	struct refaccel_desc c[] = {
		ra_desc_copy(0, hole, self->dst.iova, 64),
		ra_desc_copy(0, end - 16, self->dst.iova, 64), /* runs off */
		ra_desc_crc32c(0, hole + 0x100, 4096, 0),
		ra_desc_crc32c(0, end - 4096, 8192, 0),
		ra_desc_load(0, hole, 0, 256),
	};

	ASSERT_NE(0u, hole);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		c[i].tag = next_tag(self);
		RUN(c[i], REFACCEL_CPL_DMA_READ_FAULT);
		ALIVE();
	}
}

TEST_F_TIMEOUT(refaccel, err_dma_write_fault, T_TIMEOUT)
{
	uint64_t hole = vu_iova_alloc(&self->iommu, 0x10000);
	uint64_t end = self->dst.iova + self->dst.size;
	struct refaccel_desc c[6];
	struct vu_dma ro;
	int ret;

	ASSERT_NE(0u, hole);
	ret = vu_dma_alloc(&self->iommu, PAGE, VU_DMA_READ, &ro);
	ASSERT_EQ(0, ret) TH_LOG("read-only DMA mapping: %s", strerror(-ret));
	memset(ro.va, 0x42, PAGE);
	c[0] = ra_desc_copy(0, self->src.iova, hole, 64);
	c[1] = ra_desc_fill(0, hole + 64, 128, 7);
	c[2] = ra_desc_fill(0, end - 32, 64, 7);		/* runs off */
	c[3] = ra_desc_store(0, 0, hole, 256);
	c[4] = ra_desc_fill(0, ro.iova, 64, 7);			/* read-only */
	c[5] = ra_desc_copy(0, self->src.iova, ro.iova + 64, 64);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		c[i].tag = next_tag(self);
		RUN(c[i], REFACCEL_CPL_DMA_WRITE_FAULT);
		ALIVE();
	}
	expect_dst_untouched(_metadata, ro.va, PAGE, 0x42);
	/* the device may read a read-only mapping */
	RUN(ra_desc_copy(next_tag(self), ro.iova, self->dst.iova, 64),
	    REFACCEL_CPL_OK);
	EXPECT_EQ(0x42, *DST(63));
	vu_dma_free(&self->iommu, &ro);
}

/* ---- counters ---- */

TEST_F_TIMEOUT(refaccel, counters, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint64_t hole = vu_iova_alloc(&self->iommu, PAGE);
	struct refaccel_desc bad;
	unsigned int ok = 0, err = 0;

	ASSERT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_FETCHED));
	ASSERT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	ASSERT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_ERRORS));

	RUN(ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK); ok++;
	RUN(ra_desc_fill(next_tag(self), self->dst.iova, 100, 1),
	    REFACCEL_CPL_OK); ok++;
	RUN(ra_desc_copy(next_tag(self), self->src.iova, self->dst.iova, 100),
	    REFACCEL_CPL_OK); ok++;
	RUN(ra_desc_crc32c(next_tag(self), self->src.iova, 100, 0),
	    REFACCEL_CPL_OK); ok++;
	RUN(ra_desc_load(next_tag(self), self->src.iova, 0, 100),
	    REFACCEL_CPL_OK); ok++;
	RUN(ra_desc_store(next_tag(self), 0, self->dst.iova, 100),
	    REFACCEL_CPL_OK); ok++;

	bad = ra_desc_nop(next_tag(self));
	bad.opcode = 0x42;
	RUN(bad, REFACCEL_CPL_BAD_OPCODE); err++;
	bad = ra_desc_copy(next_tag(self), self->src.iova, self->dst.iova, 0);
	RUN(bad, REFACCEL_CPL_BAD_LENGTH); err++;
	RUN(ra_desc_copy(next_tag(self), hole, self->dst.iova, 8),
	    REFACCEL_CPL_DMA_READ_FAULT); err++;
	RUN(ra_desc_load(next_tag(self), self->src.iova, d->sram_size, 8),
	    REFACCEL_CPL_BAD_SRAM_RANGE); err++;

	EXPECT_EQ(ok + err, ra_rd(d, REFACCEL_REG_CNT_FETCHED));
	EXPECT_EQ(ok + err, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(err, ra_rd(d, REFACCEL_REG_CNT_ERRORS));
	EXPECT_EQ((uint64_t)(ok + err), self->ring.reaped);
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_STATUS) & REFACCEL_STATUS_BUSY);
}

/* ---- rings ---- */

/*
 * Push @total FILL descriptors through the ring (each writes 64 bytes of a
 * distinct value at dst + 64 * i), reaping as it goes; every tag must come
 * back exactly once with OK and every block must hold its value.
 */
static void pump_fills(struct __test_metadata *_metadata,
		       FIXTURE_DATA(refaccel) *self, uint32_t total)
{
	struct ra_ring *r = &self->ring;
	uint8_t *seen = calloc(total, 1);
	uint32_t next = 0, done = 0, phases = 0;
	uint64_t base = self->tag + 1;

	ASSERT_NE(NULL, seen);
	ASSERT_LE((size_t)total * 64, self->bufsz);
	memset(self->dst.va, 0, (size_t)total * 64);
	while (done < total) {
		struct refaccel_cpl cpl;
		uint64_t idx;

		while (next < total && ra_ring_space(r)) {
			struct refaccel_desc d = ra_desc_fill(
				TAG_BASE | (base + next),
				self->dst.iova + 64ull * next, 64,
				0x01000000u | next);

			ASSERT_EQ(0, ra_sq_push(r, &d));
			next++;
		}
		ra_sq_doorbell(r);
		ASSERT_EQ(0, ra_wait_cpl(r, &cpl, self->tmo))
			TH_LOG("%u of %u completions, %u submitted", done,
			       total, next);
		idx = (cpl.tag & ~TAG_BASE) - base;
		ASSERT_EQ(TAG_BASE, cpl.tag & TAG_BASE);
		ASSERT_LT(idx, (uint64_t)next) TH_LOG("unknown tag 0x%llx",
						      (unsigned long long)cpl.tag);
		ASSERT_EQ(0, seen[idx]) TH_LOG("tag %llu completed twice",
					       (unsigned long long)idx);
		seen[idx] = 1;
		ASSERT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
		phases |= 1u << (cpl.flags & REFACCEL_CPL_F_PHASE);
		done++;
	}
	self->tag += total;
	for (uint32_t i = 0; i < total; i++) {
		uint8_t want[64];

		ra_ref_fill(want, 64, 0x01000000u | i);
		ASSERT_MEMEQ(DST(64 * i), want, 64, "FILL through ring");
	}
	if (total > r->cq_size) {
		EXPECT_EQ(3u, phases) TH_LOG("phase bit never flipped");
	}
	EXPECT_EQ((uint64_t)total / r->cq_size, r->cq_wraps);
	EXPECT_EQ(total % r->sq_size,
		  ra_rd(self->ring.dev, REFACCEL_REG_SQ_HEAD) % r->sq_size);
	EXPECT_EQ(total % r->cq_size,
		  ra_rd(self->ring.dev, REFACCEL_REG_CQ_TAIL) % r->cq_size);
	free(seen);
}

TEST_F_TIMEOUT(refaccel, ring_wrap, T_TIMEOUT)
{
	static const struct { uint32_t sq, cq; } c[] = {
		{ 2, 2 }, { 4, 4 }, { 8, 2 }, { 2, 8 }, { 16, 4 }, { 4, 16 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint32_t big = c[i].sq > c[i].cq ? c[i].sq : c[i].cq;

		reconfigure(_metadata, self, c[i].sq, c[i].cq);
		pump_fills(_metadata, self, 5 * big + 3);
		EXPECT_EQ(5 * big + 3,
			  ra_rd(&self->dev, REFACCEL_REG_CNT_COMPLETED));
	}
}

TEST_F_TIMEOUT(refaccel, ring_max_size, T_TIMEOUT)
{
	reconfigure(_metadata, self, REFACCEL_RING_MAX_ENTRIES,
		    REFACCEL_RING_MAX_ENTRIES);
	pump_fills(_metadata, self, 300);
}

TEST_F_TIMEOUT(refaccel, many_in_flight, T_TIMEOUT)
{
	/* 60 mixed descriptors queued at once (the device runs 4 at a time) */
	struct refaccel_cpl cpl;
	uint32_t crc[60];
	int seen[60] = { 0 };

	ra_rand_fill(self->src.va, 60 * 1024, &self->rng);
	memset(self->dst.va, 0, 60 * 1024);
	for (int i = 0; i < 60; i++) {
		uint64_t tag = TAG_BASE | (0x1000 + i);
		struct refaccel_desc d;

		switch (i % 3) {
		case 0:
			d = ra_desc_copy(tag, self->src.iova + 1024 * i,
					 self->dst.iova + 1024 * i, 1024);
			break;
		case 1:
			d = ra_desc_fill(tag, self->dst.iova + 1024 * i, 1024,
					 0xa0000000u | i);
			break;
		default:
			d = ra_desc_crc32c(tag, self->src.iova + 1024 * i,
					   1024, i);
			break;
		}
		ASSERT_EQ(0, ra_sq_push(&self->ring, &d));
	}
	ra_sq_doorbell(&self->ring);
	for (int n = 0; n < 60; n++) {
		uint64_t i;

		ASSERT_EQ(0, ra_wait_cpl(&self->ring, &cpl, self->tmo));
		ASSERT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
		i = cpl.tag - (TAG_BASE | 0x1000);
		ASSERT_LT(i, 60u);
		ASSERT_EQ(0, seen[i]);
		seen[i] = 1;
		crc[i] = cpl.result;
	}
	for (int i = 0; i < 60; i++) {
		uint8_t want[1024];

		switch (i % 3) {
		case 0:
			ASSERT_MEMEQ(DST(1024 * i), SRC(1024 * i), 1024,
				     "COPY in batch");
			break;
		case 1:
			ra_ref_fill(want, 1024, 0xa0000000u | i);
			ASSERT_MEMEQ(DST(1024 * i), want, 1024, "FILL in batch");
			break;
		default:
			EXPECT_EQ(ra_ref_crc32c(i, SRC(1024 * i), 1024), crc[i]);
			break;
		}
	}
}

TEST_F_TIMEOUT(refaccel, cq_full_backpressure, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	const uint32_t total = 48;
	uint32_t fetched, completed;
	uint8_t seen[48] = { 0 };
	struct refaccel_cpl cpl;
	uint64_t deadline, base;

	reconfigure(_metadata, self, 64, 2);
	memset(self->dst.va, 0, total * 64);
	base = self->tag + 1;
	for (uint32_t i = 0; i < total; i++) {
		struct refaccel_desc dsc = ra_desc_fill(
			TAG_BASE | (base + i), self->dst.iova + 64ull * i, 64,
			0x01000000u | i);

		ASSERT_EQ(0, ra_sq_push(&self->ring, &dsc));
	}
	self->tag += total;
	ra_sq_doorbell(&self->ring);

	/* let the device fill the CQ and stall; nothing consumed yet */
	deadline = vu_now_ms() + self->tmo;
	while (!ra_rd(d, REFACCEL_REG_CNT_COMPLETED) && vu_now_ms() < deadline)
		ra_sleep_ms(1);
	ra_sleep_ms(500);	/* time to overrun, were it broken */
	fetched = ra_rd(d, REFACCEL_REG_CNT_FETCHED);
	completed = ra_rd(d, REFACCEL_REG_CNT_COMPLETED);
	ASSERT_LT(0u, completed) TH_LOG("no completion at all");
	/* full = one free slot left: (CQ_TAIL + 1) mod size == CQ_HEAD */
	EXPECT_LE(completed, 1u)
		TH_LOG("device wrote %u completions into a 2-entry CQ nobody consumed",
		       completed);
	EXPECT_LE(fetched, completed + 4)
		TH_LOG("%u fetched, %u completed: more than 4 in flight",
		       fetched, completed);
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_STATUS) & REFACCEL_STATUS_HALTED);

	/* now consume: every tag exactly once, nothing lost */
	for (uint32_t n = 0; n < total; n++) {
		uint64_t idx;

		ASSERT_EQ(0, ra_wait_cpl(&self->ring, &cpl, self->tmo))
			TH_LOG("%u of %u completions", n, total);
		idx = (cpl.tag & ~TAG_BASE) - base;
		ASSERT_LT(idx, (uint64_t)total);
		ASSERT_EQ(0, seen[idx]) TH_LOG("tag %llu completed twice",
					       (unsigned long long)idx);
		seen[idx] = 1;
		ASSERT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
	}
	for (uint32_t i = 0; i < total; i++) {
		uint8_t want[64];

		ra_ref_fill(want, 64, 0x01000000u | i);
		ASSERT_MEMEQ(DST(64 * i), want, 64, "FILL under backpressure");
	}
	EXPECT_EQ(total, ra_rd(d, REFACCEL_REG_CNT_FETCHED));
	EXPECT_EQ(total, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_ERRORS));
	EXPECT_EQ((uint64_t)total / 2, self->ring.cq_wraps);
	/* nothing more arrives */
	EXPECT_EQ(0, ra_reap(&self->ring, &cpl));
}

/* ---- CTRL.ENABLE gates fetching ---- */

/* Drain @n completions; tags TAG_BASE | (base + i), i < total, once each. */
static void drain_tags(struct __test_metadata *_metadata,
		       FIXTURE_DATA(refaccel) *self, uint8_t *seen,
		       uint64_t base, uint32_t total, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		struct refaccel_cpl cpl;
		uint64_t idx;

		ASSERT_EQ(0, ra_wait_cpl(&self->ring, &cpl, self->tmo))
			TH_LOG("completion %u of %u", k, n);
		idx = (cpl.tag & ~TAG_BASE) - base;
		ASSERT_LT(idx, (uint64_t)total) TH_LOG("unknown tag 0x%llx",
			(unsigned long long)cpl.tag);
		ASSERT_EQ(0, seen[idx]) TH_LOG("tag %llu completed twice",
					       (unsigned long long)idx);
		seen[idx] = 1;
		ASSERT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
	}
}

TEST_F_TIMEOUT(refaccel, enable_gates_fetch, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint8_t seen[8] = { 0 };
	uint64_t base = self->tag + 1;

	/* ring programmed, engine off: a doorbell fetches nothing */
	ASSERT_EQ(0, ra_reset(d));
	ra_ring_restart(&self->ring);
	for (uint32_t i = 0; i < 8; i++) {
		struct refaccel_desc dsc = ra_desc_nop(TAG_BASE | (base + i));

		ASSERT_EQ(0, ra_sq_push(&self->ring, &dsc));
	}
	self->tag += 8;
	ra_sq_doorbell(&self->ring);
	ra_sleep_ms(IRQ_ABSENT_MS);
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_FETCHED));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_SQ_HEAD));
	EXPECT_EQ(8u, ra_rd(d, REFACCEL_REG_SQ_TAIL));

	ASSERT_EQ(0, ra_enable(d, self->tmo));
	drain_tags(_metadata, self, seen, base, 8, 8);
	EXPECT_EQ(8u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
}

TEST_F_TIMEOUT(refaccel, disable_completes_fetched, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	const uint32_t total = 40;
	uint8_t seen[40] = { 0 };
	uint64_t base = self->tag + 1;
	uint32_t fetched, head;

	for (uint32_t i = 0; i < total; i++) {
		struct refaccel_desc dsc = ra_desc_nop(TAG_BASE | (base + i));

		ASSERT_EQ(0, ra_sq_push(&self->ring, &dsc));
	}
	self->tag += total;
	ra_sq_doorbell(&self->ring);
	ra_wr(d, REFACCEL_REG_CTRL, 0);

	/* what was fetched before the disable still completes */
	ASSERT_EQ(0, ra_poll_reg(d, REFACCEL_REG_STATUS, REFACCEL_STATUS_BUSY,
				 0, self->tmo)) TH_LOG("still busy after disable");
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_STATUS) & REFACCEL_STATUS_ENABLED);
	fetched = ra_rd(d, REFACCEL_REG_CNT_FETCHED);
	head = ra_rd(d, REFACCEL_REG_SQ_HEAD);
	EXPECT_EQ(fetched, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(fetched % 64, head);
	TH_LOG("%u of %u fetched before the disable took effect", fetched,
	       total);
	drain_tags(_metadata, self, seen, base, total, fetched);

	/* nothing more is fetched while disabled */
	ra_sleep_ms(IRQ_ABSENT_MS);
	EXPECT_EQ(fetched, ra_rd(d, REFACCEL_REG_CNT_FETCHED));

	/* re-enable: the rest runs, nothing lost or repeated */
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	drain_tags(_metadata, self, seen, base, total, total - fetched);
	EXPECT_EQ(total, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ(total, ra_rd(d, REFACCEL_REG_CNT_FETCHED));
}

/* A valid ring may sit at the minimum alignments, not page aligned. */
TEST_F_TIMEOUT(refaccel, ring_min_alignment, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	struct vu_dma sq, cq;
	volatile struct refaccel_cpl *e;
	struct refaccel_desc desc = ra_desc_nop(TAG_BASE | 0x77);
	uint64_t deadline;

	ASSERT_EQ(0, ra_reset(d));
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, PAGE, VU_DMA_RW, &sq));
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, PAGE, VU_DMA_RW, &cq));
	ra_wr64(d, REFACCEL_REG_SQ_BASE_LO, sq.iova + 64);
	ra_wr(d, REFACCEL_REG_SQ_SIZE, 2);
	ra_wr64(d, REFACCEL_REG_CQ_BASE_LO, cq.iova + 16);
	ra_wr(d, REFACCEL_REG_CQ_SIZE, 2);
	ASSERT_EQ(0, ra_enable(d, self->tmo));

	memcpy((char *)sq.va + 64, &desc, sizeof(desc));
	ra_wr(d, REFACCEL_REG_SQ_TAIL, 1);
	e = (volatile struct refaccel_cpl *)((char *)cq.va + 16);
	deadline = vu_now_ms() + self->tmo;
	while (!(e->flags & REFACCEL_CPL_F_PHASE) && vu_now_ms() < deadline)
		ra_sleep_ms(1);
	ASSERT_NE(0u, e->flags & REFACCEL_CPL_F_PHASE) TH_LOG("no completion");
	(void)ra_rd(d, REFACCEL_REG_CQ_TAIL);
	EXPECT_EQ(TAG_BASE | 0x77, e->tag);
	EXPECT_EQ(0, e->status);
	/* nothing written before the CQ base */
	EXPECT_EQ(-1, first_nonzero(cq.va, 16));

	ASSERT_EQ(0, ra_reset(d));
	vu_dma_free(&self->iommu, &sq);
	vu_dma_free(&self->iommu, &cq);
}

/* ---- DMA faults on the rings themselves halt the device ---- */

static void expect_halt(struct __test_metadata *_metadata,
			FIXTURE_DATA(refaccel) *self, unsigned int reason)
{
	struct ra_dev *d = &self->dev;
	uint32_t got;

	ASSERT_EQ(0, ra_poll_reg(d, REFACCEL_REG_STATUS, REFACCEL_STATUS_HALTED,
				 REFACCEL_STATUS_HALTED, self->tmo))
		TH_LOG("device did not halt");
	got = ra_rd(d, REFACCEL_REG_HALT_REASON);
	EXPECT_EQ(reason, got) TH_LOG("HALT_REASON %u (%s), expected %s", got,
				      ra_halt_reason_name(got),
				      ra_halt_reason_name(reason));
	EXPECT_NE(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) & REFACCEL_INT_ERROR);
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_ERROR, self->tmo))
		TH_LOG("no MSI-X vector 1 on halt");

	/* recovered by a reset */
	ASSERT_EQ(0, ra_reset(d));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_STATUS) & REFACCEL_STATUS_HALTED);
	EXPECT_EQ((uint32_t)REFACCEL_HALT_NONE,
		  ra_rd(d, REFACCEL_REG_HALT_REASON));
	ra_ring_restart(&self->ring);
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	ALIVE();
}

TEST_F_TIMEOUT(refaccel, halt_sq_fetch_fault, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint64_t hole = vu_iova_alloc(&self->iommu, PAGE);

	ASSERT_NE(0u, hole);
	ASSERT_EQ(0, ra_reset(d));
	ra_irq_drain(d, REFACCEL_VEC_ERROR);
	ra_wr64(d, REFACCEL_REG_SQ_BASE_LO, hole);
	ra_wr(d, REFACCEL_REG_SQ_SIZE, 64);
	ra_wr64(d, REFACCEL_REG_CQ_BASE_LO, self->ring.cq.iova);
	ra_wr(d, REFACCEL_REG_CQ_SIZE, 64);
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	ra_wr(d, REFACCEL_REG_SQ_TAIL, 1);
	expect_halt(_metadata, self, REFACCEL_HALT_SQ_FETCH);
}

TEST_F_TIMEOUT(refaccel, halt_cq_write_fault, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint64_t hole = vu_iova_alloc(&self->iommu, PAGE);
	struct refaccel_desc desc = ra_desc_nop(TAG_BASE | 1);

	ASSERT_NE(0u, hole);
	ASSERT_EQ(0, ra_reset(d));
	ra_irq_drain(d, REFACCEL_VEC_ERROR);
	memset(self->ring.sq.va, 0, self->ring.sq.size);
	memcpy(self->ring.sq.va, &desc, sizeof(desc));
	ra_wr64(d, REFACCEL_REG_SQ_BASE_LO, self->ring.sq.iova);
	ra_wr(d, REFACCEL_REG_SQ_SIZE, 64);
	ra_wr64(d, REFACCEL_REG_CQ_BASE_LO, hole);
	ra_wr(d, REFACCEL_REG_CQ_SIZE, 64);
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	ra_wr(d, REFACCEL_REG_SQ_TAIL, 1);
	expect_halt(_metadata, self, REFACCEL_HALT_CQ_WRITE);
}

/* ---- reset ---- */

TEST_F_TIMEOUT(refaccel, reset_clears_state, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint32_t id = ra_rd(d, REFACCEL_REG_ID);
	uint32_t ver = ra_rd(d, REFACCEL_REG_VERSION);
	uint32_t caps = ra_rd(d, REFACCEL_REG_CAPS);
	uint32_t sz = d->sram_size;
	uint8_t *buf = malloc(sz);
	struct { uint32_t reg; const char *name; } zero_regs[] = {
		{ REFACCEL_REG_CTRL, "CTRL" },
		{ REFACCEL_REG_STATUS, "STATUS" },
		{ REFACCEL_REG_HALT_REASON, "HALT_REASON" },
		{ REFACCEL_REG_SQ_BASE_LO, "SQ_BASE_LO" },
		{ REFACCEL_REG_SQ_BASE_HI, "SQ_BASE_HI" },
		{ REFACCEL_REG_SQ_SIZE, "SQ_SIZE" },
		{ REFACCEL_REG_SQ_HEAD, "SQ_HEAD" },
		{ REFACCEL_REG_SQ_TAIL, "SQ_TAIL" },
		{ REFACCEL_REG_CQ_BASE_LO, "CQ_BASE_LO" },
		{ REFACCEL_REG_CQ_BASE_HI, "CQ_BASE_HI" },
		{ REFACCEL_REG_CQ_SIZE, "CQ_SIZE" },
		{ REFACCEL_REG_CQ_HEAD, "CQ_HEAD" },
		{ REFACCEL_REG_CQ_TAIL, "CQ_TAIL" },
		{ REFACCEL_REG_INT_STATUS, "INT_STATUS" },
		{ REFACCEL_REG_INT_MASK, "INT_MASK" },
		{ REFACCEL_REG_CNT_FETCHED, "CNT_FETCHED" },
		{ REFACCEL_REG_CNT_COMPLETED, "CNT_COMPLETED" },
		{ REFACCEL_REG_CNT_ERRORS, "CNT_ERRORS" },
	};

	ASSERT_NE(NULL, buf);
	/* dirty everything: SRAM, counters, ring pointers, interrupts */
	memset(buf, 0xa5, sz);
	ASSERT_EQ(0, ra_sram_write(d, 0, buf, sz));
	RUN(ra_desc_fill(next_tag(self), self->dst.iova, 64, 9),
	    REFACCEL_CPL_OK);
	RUN(ra_desc_copy(next_tag(self), self->src.iova, self->dst.iova, 0),
	    REFACCEL_CPL_BAD_LENGTH);
	ra_wr(d, REFACCEL_REG_INT_MASK, REFACCEL_INT_PAGE_REQ |
					REFACCEL_INT_SPARE);
	ASSERT_NE(0u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));

	ASSERT_EQ(0, ra_reset(d));

	for (size_t i = 0; i < sizeof(zero_regs) / sizeof(zero_regs[0]); i++) {
		EXPECT_EQ(0u, ra_rd(d, zero_regs[i].reg))
			TH_LOG("%s not cleared by reset", zero_regs[i].name);
	}
	EXPECT_EQ(id, ra_rd(d, REFACCEL_REG_ID));
	EXPECT_EQ(ver, ra_rd(d, REFACCEL_REG_VERSION));
	EXPECT_EQ(caps, ra_rd(d, REFACCEL_REG_CAPS));
	EXPECT_EQ(sz, ra_rd(d, REFACCEL_REG_SRAM_SIZE));
	EXPECT_EQ(d->max_xfer, ra_rd(d, REFACCEL_REG_MAX_XFER));

	memset(buf, 0xff, sz);
	ASSERT_EQ(0, ra_sram_read(d, 0, buf, sz));
	EXPECT_EQ(-1, first_nonzero(buf, sz)) TH_LOG("SRAM not cleared by reset");
	memset(buf, 0xff, PAGE);
	ASSERT_EQ(0, ra_sram_pread(d, sz - PAGE, buf, PAGE));
	EXPECT_EQ(-1, first_nonzero(buf, PAGE));
	free(buf);

	/* and it works again, interrupts included */
	ra_irq_drain(d, REFACCEL_VEC_COMPLETION);
	ra_ring_restart(&self->ring);
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	RUN(ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK);
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, self->tmo))
		TH_LOG("no completion interrupt after reset");
	EXPECT_EQ(1u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
}

/* CTRL.RESET: same clearing as an FLR, MSI-X left alone */
/* VFIO_DEVICE_FEATURE with @flags and an optional payload: 0 or -errno */
static int dev_feature(struct ra_dev *d, uint32_t flags, void *data,
		       size_t len)
{
	struct {
		struct vfio_device_feature hdr;
		uint8_t data[64];
	} f = { .hdr = { .argsz = sizeof(f.hdr) + len, .flags = flags } };

	if (len > sizeof(f.data))
		return -EINVAL;
	if (data)
		memcpy(f.data, data, len);
	if (ioctl(d->vdev.fd, VFIO_DEVICE_FEATURE, &f) < 0)
		return -errno;
	if (data)
		memcpy(data, f.data, len);
	return 0;
}

/*
 * Whatever the binding: the private quiesce feature exists exactly where
 * it has something to say.  A function that migrates answers PROBE of
 * GET and SET; one refused migration for its unbounded quiesce (the
 * variant driver without allow_unbounded_quiesce) answers GET only, with
 * F_UNBOUNDED alone, the reason it does not migrate; any other (stock
 * vfio-pci, no migration block) answers ENOTTY.
 */
TEST_F_TIMEOUT(refaccel, quiesce_feature_says_why, T_TIMEOUT)
{
	const uint32_t f_quiesce = REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE;
	struct ra_dev *d = &self->dev;
	struct refaccel_vfio_quiesce q, zero = { 0 };
	struct vfio_device_feature_migration mig = { 0 };
	uint32_t caps = ra_rd(d, REFACCEL_REG_CAPS);
	bool ours = ra_driver_is_variant(d->driver);
	bool migrates, refused;
	int ret;

	migrates = dev_feature(d, VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_MIGRATION,
			       &mig, sizeof(mig)) == 0;
	refused = ours && !migrates &&
		  (caps & REFACCEL_CAP_QUIESCE_UNBOUNDED) &&
		  (caps & REFACCEL_CAP_MIGRATION);
	TH_LOG("%s: caps 0x%x, migration %s, allow_unbounded_quiesce %ld",
	       d->driver, caps, migrates ? "offered" : "not offered",
	       env_module_param("allow_unbounded_quiesce", -1));

	ret = dev_feature(d, VFIO_DEVICE_FEATURE_PROBE |
			  VFIO_DEVICE_FEATURE_GET | f_quiesce, NULL, 0);
	if (!migrates && !refused) {
		EXPECT_EQ(-ENOTTY, ret);
		return;
	}
	ASSERT_EQ(0, ret);
	ret = dev_feature(d, VFIO_DEVICE_FEATURE_PROBE |
			  VFIO_DEVICE_FEATURE_SET | f_quiesce, NULL, 0);
	EXPECT_EQ(migrates ? 0 : -EINVAL, ret);
	memset(&q, 0xff, sizeof(q));
	ASSERT_EQ(0, dev_feature(d, VFIO_DEVICE_FEATURE_GET | f_quiesce,
				 &q, sizeof(q)));
	TH_LOG("GET: flags 0x%x timeout %u ms", q.flags, q.timeout_ms);
	if (migrates) {
		/* an unbounded quiesce migrates only opted in */
		EXPECT_EQ(!!(caps & REFACCEL_CAP_QUIESCE_UNBOUNDED),
			  !!(q.flags & REFACCEL_QUIESCE_F_OPTED_IN));
		return;
	}
	EXPECT_EQ((uint32_t)REFACCEL_QUIESCE_F_UNBOUNDED, q.flags);
	zero.flags = q.flags;
	EXPECT_EQ(0, memcmp(&zero, &q, sizeof(q)));
	memset(&q, 0, sizeof(q));
	q.timeout_ms = 1000;
	EXPECT_EQ(-EINVAL, dev_feature(d, VFIO_DEVICE_FEATURE_SET | f_quiesce,
				       &q, sizeof(q)));
}

TEST_F_TIMEOUT(refaccel, ctrl_reset, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	uint8_t pat[256], got[256];

	memset(pat, 0x6b, sizeof(pat));
	ASSERT_EQ(0, ra_sram_write(d, 4096, pat, sizeof(pat)));
	RUN(ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK);
	ra_wr(d, REFACCEL_REG_INT_MASK, REFACCEL_INT_SPARE);

	ra_wr(d, REFACCEL_REG_CTRL, REFACCEL_CTRL_RESET);
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CTRL));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_STATUS));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_SQ_SIZE));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CQ_TAIL));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_INT_STATUS));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_INT_MASK));
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_COMPLETED));
	EXPECT_EQ((uint32_t)REFACCEL_ID_MAGIC, ra_rd(d, REFACCEL_REG_ID));
	ASSERT_EQ(0, ra_sram_read(d, 4096, got, sizeof(got)));
	EXPECT_EQ(-1, first_nonzero(got, sizeof(got)));

	/* MSI-X was not touched: completions interrupt without re-setup */
	ra_irq_drain(d, REFACCEL_VEC_COMPLETION);
	ra_ring_restart(&self->ring);
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	RUN(ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK);
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_COMPLETION, self->tmo));
}

/* ================================================================== */
/* fixture: bad ring configurations                                    */
/* ================================================================== */

FIXTURE(ringcfg) {
	struct vu_iommu iommu;
	struct ra_dev dev;
	struct ra_ring ring;
	int tmo;
	bool iommu_ok, opened;
};

FIXTURE_VARIANT(ringcfg) {
	uint32_t sq_size, cq_size;
	uint32_t sq_off, cq_off;	/* added to the base IOVAs */
};

FIXTURE_VARIANT_ADD(ringcfg, sq_size_0) { .sq_size = 0, .cq_size = 64 };
FIXTURE_VARIANT_ADD(ringcfg, sq_size_1) { .sq_size = 1, .cq_size = 64 };
FIXTURE_VARIANT_ADD(ringcfg, sq_size_3) { .sq_size = 3, .cq_size = 64 };
FIXTURE_VARIANT_ADD(ringcfg, sq_size_96) { .sq_size = 96, .cq_size = 64 };
FIXTURE_VARIANT_ADD(ringcfg, sq_size_8192) { .sq_size = 8192, .cq_size = 64 };
FIXTURE_VARIANT_ADD(ringcfg, sq_size_2g) {
	.sq_size = 0x80000000u, .cq_size = 64 };
FIXTURE_VARIANT_ADD(ringcfg, cq_size_0) { .sq_size = 64, .cq_size = 0 };
FIXTURE_VARIANT_ADD(ringcfg, cq_size_1) { .sq_size = 64, .cq_size = 1 };
FIXTURE_VARIANT_ADD(ringcfg, cq_size_6) { .sq_size = 64, .cq_size = 6 };
FIXTURE_VARIANT_ADD(ringcfg, cq_size_8192) { .sq_size = 64, .cq_size = 8192 };
FIXTURE_VARIANT_ADD(ringcfg, sq_base_align_32) {
	.sq_size = 64, .cq_size = 64, .sq_off = 32 };
FIXTURE_VARIANT_ADD(ringcfg, sq_base_align_4) {
	.sq_size = 64, .cq_size = 64, .sq_off = 4 };
FIXTURE_VARIANT_ADD(ringcfg, cq_base_align_8) {
	.sq_size = 64, .cq_size = 64, .cq_off = 8 };
FIXTURE_VARIANT_ADD(ringcfg, cq_base_align_1) {
	.sq_size = 64, .cq_size = 64, .cq_off = 1 };

FIXTURE_SETUP(ringcfg)
{
	struct ra_found found;
	char why[600];
	int ret;

	self->tmo = ra_timeout_ms();
	skip_reason_common(why, sizeof(why), &found);
	if (why[0])
		SKIP(return, "%s", why);
	IOMMU_INIT_OR_SKIP(&self->iommu);
	self->iommu_ok = true;
	ret = ra_open(&self->iommu, found.bdf[0], &self->dev);
	ASSERT_EQ(0, ret) TH_LOG("open %s: %s", found.bdf[0], strerror(-ret));
	self->opened = true;
	ASSERT_EQ(0, ra_reset(&self->dev));
	ASSERT_EQ(0, ra_irq_enable(&self->dev));
	ra_wr(&self->dev, REFACCEL_REG_INT_MASK, 0);
	ra_wr(&self->dev, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
}

FIXTURE_TEARDOWN(ringcfg)
{
	if (self->opened) {
		if (ra_reset(&self->dev))
			ra_wr(&self->dev, REFACCEL_REG_CTRL, 0);
		ra_irq_disable(&self->dev);
		ra_ring_free(&self->ring);
		ra_close(&self->dev);
	}
	if (self->iommu_ok)
		vu_iommu_cleanup(&self->iommu);
}

TEST_F_TIMEOUT(ringcfg, halts_and_recovers, T_TIMEOUT)
{
	struct ra_dev *d = &self->dev;
	struct refaccel_cpl cpl;
	uint32_t st, reason;
	int ret;

	ASSERT_EQ(0, ra_ring_setup(d, &self->iommu, &self->ring,
				   variant->sq_size, variant->cq_size));
	ra_wr64(d, REFACCEL_REG_SQ_BASE_LO, self->ring.sq.iova + variant->sq_off);
	ra_wr64(d, REFACCEL_REG_CQ_BASE_LO, self->ring.cq.iova + variant->cq_off);
	ra_irq_drain(d, REFACCEL_VEC_ERROR);

	ret = ra_enable(d, self->tmo);
	st = ra_rd(d, REFACCEL_REG_STATUS);
	reason = ra_rd(d, REFACCEL_REG_HALT_REASON);
	EXPECT_EQ(-EIO, ret) TH_LOG("SQ %u@+%u CQ %u@+%u accepted (STATUS 0x%x)",
				    variant->sq_size, variant->sq_off,
				    variant->cq_size, variant->cq_off, st);
	/* (STATUS.ENABLED just mirrors CTRL.ENABLE) */
	EXPECT_NE(0u, st & REFACCEL_STATUS_HALTED);
	EXPECT_EQ((uint32_t)REFACCEL_HALT_RING_CONFIG, reason)
		TH_LOG("HALT_REASON %u (%s)", reason,
		       ra_halt_reason_name(reason));
	EXPECT_NE(0u, ra_rd(d, REFACCEL_REG_INT_STATUS) & REFACCEL_INT_ERROR);
	EXPECT_LT(0, ra_irq_wait(d, REFACCEL_VEC_ERROR, self->tmo))
		TH_LOG("no MSI-X vector 1 for the ring config error");
	/* a doorbell on a halted device fetches nothing */
	ra_wr(d, REFACCEL_REG_SQ_TAIL, 1);
	EXPECT_EQ(0u, ra_rd(d, REFACCEL_REG_CNT_FETCHED));

	/* reset recovers it with a good configuration */
	ASSERT_EQ(0, ra_reset(d));
	st = ra_rd(d, REFACCEL_REG_STATUS);
	EXPECT_EQ(0u, st & REFACCEL_STATUS_HALTED);
	EXPECT_EQ((uint32_t)REFACCEL_HALT_NONE,
		  ra_rd(d, REFACCEL_REG_HALT_REASON));
	ra_ring_free(&self->ring);
	ASSERT_EQ(0, ra_ring_setup(d, &self->iommu, &self->ring, 8, 8));
	ASSERT_EQ(0, ra_enable(d, self->tmo));
	ASSERT_EQ(0, ra_run(&self->ring, &(struct refaccel_desc){
		.opcode = REFACCEL_OP_NOP, .tag = 0x5151 }, &cpl, self->tmo));
	EXPECT_EQ(0x5151u, cpl.tag);
	EXPECT_EQ((uint16_t)REFACCEL_CPL_OK, cpl.status);
}

/* ================================================================== */
/* two functions in one container (what migration tests build on)      */
/* ================================================================== */

FIXTURE(pair) {
	int unused;
};

FIXTURE_SETUP(pair)
{
}

FIXTURE_TEARDOWN(pair)
{
}

TEST_F_TIMEOUT(pair, two_devices_one_container, T_TIMEOUT)
{
	struct ra_found f;
	struct vu_iommu iommu;
	struct ra_dev a, b;
	struct ra_ring ra, rb;
	struct vu_dma src, da, db;
	struct refaccel_cpl cpl;
	const uint32_t len = 65536;
	uint8_t *sram = malloc(len);
	int tmo = ra_timeout_ms();
	uint64_t rng = 7;
	char why[600];

	ASSERT_NE(NULL, sram);
	skip_reason_common(why, sizeof(why), &f);
	if (why[0])
		SKIP(return, "%s", why);
	if (f.n < 2)
		SKIP(return, "needs two usable refaccel functions, found only %s",
		     f.bdf[0]);

	IOMMU_INIT_OR_SKIP(&iommu);
	ASSERT_EQ(0, ra_open(&iommu, f.bdf[0], &a));
	ASSERT_EQ(0, ra_open(&iommu, f.bdf[1], &b));
	EXPECT_EQ(2, iommu.nr_devices);
	TH_LOG("A %s (%s), B %s (%s)", a.vdev.bdf, a.driver, b.vdev.bdf,
	       b.driver);
	ASSERT_EQ(0, ra_reset(&a));
	ASSERT_EQ(0, ra_reset(&b));
	ASSERT_EQ(0, ra_ring_setup(&a, &iommu, &ra, 16, 16));
	ASSERT_EQ(0, ra_ring_setup(&b, &iommu, &rb, 16, 16));
	ASSERT_EQ(0, ra_enable(&a, tmo));
	ASSERT_EQ(0, ra_enable(&b, tmo));
	/* one mapping, seen by both functions at the same IOVA */
	ASSERT_EQ(0, vu_dma_alloc(&iommu, len, VU_DMA_RW, &src));
	ASSERT_EQ(0, vu_dma_alloc(&iommu, len, VU_DMA_RW, &da));
	ASSERT_EQ(0, vu_dma_alloc(&iommu, len, VU_DMA_RW, &db));
	ra_rand_fill(src.va, len, &rng);

	run_expect(_metadata, &ra, tmo, ra_desc_copy(1, src.iova, da.iova, len),
		   REFACCEL_CPL_OK);
	run_expect(_metadata, &rb, tmo, ra_desc_copy(2, src.iova, db.iova, len),
		   REFACCEL_CPL_OK);
	ASSERT_MEMEQ(da.va, src.va, len, "COPY by A");
	ASSERT_MEMEQ(db.va, src.va, len, "COPY by B");

	/* A writes, B reads the result */
	run_expect(_metadata, &ra, tmo, ra_desc_fill(3, da.iova, len, 0x5eed1e55),
		   REFACCEL_CPL_OK);
	cpl = run_expect(_metadata, &rb, tmo, ra_desc_crc32c(4, da.iova, len, 0),
			 REFACCEL_CPL_OK);
	EXPECT_EQ(ra_ref_crc32c(0, da.va, len), cpl.result);

	/* SRAMs are per function */
	run_expect(_metadata, &rb, tmo, ra_desc_load(5, src.iova, 0, len),
		   REFACCEL_CPL_OK);
	ASSERT_EQ(0, ra_sram_read(&b, 0, sram, len));
	ASSERT_MEMEQ(sram, src.va, len, "B's SRAM after LOAD");
	ASSERT_EQ(0, ra_sram_read(&a, 0, sram, len));
	EXPECT_EQ(-1, first_nonzero(sram, len)) TH_LOG("LOAD on B changed A's SRAM");

	ra_reset(&a);
	ra_reset(&b);
	vu_dma_free(&iommu, &src);
	vu_dma_free(&iommu, &da);
	vu_dma_free(&iommu, &db);
	ra_ring_free(&ra);
	ra_ring_free(&rb);
	ra_close(&a);
	ra_close(&b);
	EXPECT_EQ(0, iommu.nr_devices);
	vu_iommu_cleanup(&iommu);
	free(sram);
}

/*
 * The harness exits 0 when every test was skipped.  Without a device
 * nothing was tested, so exit KSFT_SKIP (4) then, as kselftests do.
 */
static void exit_skip_if_nothing_ran(void)
{
	if (!ksft_cnt.ksft_pass && !ksft_cnt.ksft_fail &&
	    !ksft_cnt.ksft_error && ksft_cnt.ksft_xskip) {
		fflush(NULL);
		_exit(KSFT_SKIP);
	}
}

int main(int argc, char **argv)
{
	atexit(exit_skip_if_nothing_ran);
	return test_harness_run(argc, argv);
}
