// SPDX-License-Identifier: GPL-2.0-only
/*
 * Device DMA dirty tracking of refaccel-vfio-pci through the upstream VFIO
 * uAPI: VFIO_DEVICE_FEATURE_DMA_LOGGING_START, _STOP and _REPORT.
 *
 * Every test keeps a model of what the device wrote: each descriptor's
 * destination (COPY, FILL, STORE; a write that faults part way counts
 * whole) and each completion-queue entry, cut to the tracked ranges, in
 * pages of the tracking page size that START returned.  A REPORT must give
 * exactly the model's pages of its window: a page written and not reported
 * (false negative) is always a failure, and so is a page reported but never
 * written (false positive), except in the one report after a
 * VFIO_DEVICE_RESET, which may conservatively mark every tracked page.
 * Counts are printed as TAP comments.  REFACCEL_TEST_DT_LOSE (testctl)
 * proves the comparison catches a lost page.
 *
 * The feature exists only with refaccel-vfio-pci on a migratable function
 * and a kernel with CONFIG_IOMMUFD_DRIVER.  Elsewhere VFIO_DEVICE_FEATURE
 * PROBE gives ENOTTY and every test SKIPs with that reason, unless
 * REFACCEL_EXPECT_DMA_LOGGING=1 and the function is bound to
 * refaccel-vfio-pci with migration and has a DMA tracker (CAPS DMA_DIRTY):
 * then ENOTTY is a failure.
 *
 * Environment:
 *   REFACCEL_EXPECT_DMA_LOGGING  1: the feature must be there (own kernel)
 *   REFACCEL_BDF, REFACCEL_TIMEOUT_MS, VFIO_MIG_BACKEND  as everywhere
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "mig_util.h"
#include "refaccel_lib.h"

#define PAGE		4096ull
#define SZ_2M		(1ull << 21)
#define T_TIMEOUT	600
#define BUF_PAGES	16		/* src and dst: 64 KiB each */
#define TAG_BASE	0xd17e000000000000ull
#define STREAM_CHUNK	(64u << 10)
/* vfio core: ranges that fit in one kernel page */
#define LOG_MAX_RANGES	(4096 / sizeof(struct vfio_device_feature_dma_logging_range))
/* The model's defaults (hidden registers DT_MAX_RANGES / DT_MAX_SPAN). */
#define DT_MAX_SPAN_DEFAULT	(1ull << 48)
#define MAX_LOGGED	8		/* FN/FP pages printed per report */

typedef struct vfio_device_feature_dma_logging_range dt_range;

static dt_range rg(uint64_t iova, uint64_t len)
{
	dt_range r = { .iova = iova, .length = len };

	return r;
}

/* ------------------------------------------------------------------ */
/* the uAPI                                                            */
/* ------------------------------------------------------------------ */

static int dt_probe(struct vu_device *d, uint32_t feature, uint32_t op)
{
	return mig_feature(d, VFIO_DEVICE_FEATURE_PROBE | op | feature, NULL, 0);
}

/* START with @n ranges at @r; *pgsize in: requested, out: used. */
static int dt_start_raw(struct vu_device *d, uint64_t *pgsize, uint32_t n,
			const dt_range *r)
{
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = *pgsize,
		.num_ranges = n,
		.ranges = (uintptr_t)r,
	};
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_SET |
			 VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &c, sizeof(c));
	if (!ret)
		*pgsize = c.page_size;
	return ret;
}

static int dt_stop_raw(struct vu_device *d)
{
	return mig_feature(d, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

static int dt_report_raw(struct vu_device *d, uint64_t iova, uint64_t len,
			 uint64_t pgsize, void *bitmap)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova,
		.length = len,
		.page_size = pgsize,
		.bitmap = (uintptr_t)bitmap,
	};

	return mig_feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &r, sizeof(r));
}

static const char *errname(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case E2BIG: return "E2BIG";
	case EOVERFLOW: return "EOVERFLOW";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EFAULT: return "EFAULT";
	case ENOTTY: return "ENOTTY";
	case ENOMEM: return "ENOMEM";
	case EBUSY: return "EBUSY";
	case EIO: return "EIO";
	default: return strerror(err < 0 ? -err : err);
	}
}

/* The page size the driver must pick for a valid request. */
static uint64_t dt_used_pgsize(uint64_t req)
{
	if (req < PAGE)
		return PAGE;
	if (req > SZ_2M)
		return SZ_2M;
	return req;
}

/* ------------------------------------------------------------------ */
/* the model of what must be dirty                                     */
/* ------------------------------------------------------------------ */

#define DT_MODEL_RANGES	LOG_MAX_RANGES

struct dt_model {
	bool started;
	uint64_t pgsize;		/* tracking page size (START's output) */
	int nr;
	dt_range r[DT_MODEL_RANGES];	/* as asked */
	uint64_t *dirty;		/* tracking pages written, not reported */
	size_t n, cap;
	bool conservative;		/* next reports may mark all (reset) */
};

struct dt_stats {
	unsigned int reports;
	uint64_t expected;		/* bits expected set, all reports */
	uint64_t fn, fp, fp_tolerated;
};

struct dt_cmp {
	uint64_t exp, got, fn, fp;
	bool overrun;			/* bits set past the window */
};

static bool dt_tracked(const struct dt_model *m, uint64_t page)
{
	for (int i = 0; i < m->nr; i++)
		if (page >= m->r[i].iova && page - m->r[i].iova < m->r[i].length)
			return true;
	return false;
}

static bool dt_has(const struct dt_model *m, uint64_t page)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->dirty[i] == page)
			return true;
	return false;
}

static void dt_add(struct dt_model *m, uint64_t page)
{
	if (dt_has(m, page))
		return;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 256;
		uint64_t *p = realloc(m->dirty, cap * sizeof(*p));

		if (!p) {
			fprintf(stderr, "# dt model: out of memory\n");
			abort();
		}
		m->dirty = p;
		m->cap = cap;
	}
	m->dirty[m->n++] = page;
}

/* The device wrote [addr, addr + len): note its tracked pages. */
static void dt_note(struct dt_model *m, uint64_t addr, uint64_t len)
{
	uint64_t t, last;

	if (!m->started || !len)
		return;
	last = addr + len - 1 < addr ? ~0ull : addr + len - 1;
	for (t = addr & ~(m->pgsize - 1); ; t += m->pgsize) {
		if (dt_tracked(m, t))
			dt_add(m, t);
		if (last - t < m->pgsize)
			break;
	}
}

/* Forget the model's pages in [w, w + len) (a REPORT read and cleared). */
static void dt_forget(struct dt_model *m, uint64_t w, uint64_t len)
{
	size_t i = 0;

	while (i < m->n) {
		if (m->dirty[i] - w < len)
			m->dirty[i] = m->dirty[--m->n];
		else
			i++;
	}
}

static uint64_t bm_words(uint64_t len, uint64_t p)
{
	uint64_t bits = (len - 1) / p + 1;

	return (bits + 63) / 64;
}

static void bm_set(uint64_t *bm, uint64_t bit)
{
	bm[bit / 64] |= 1ull << (bit % 64);
}

static bool bm_test(const uint64_t *bm, uint64_t bit)
{
	return bm[bit / 64] >> (bit % 64) & 1;
}

/* The bitmap a REPORT of [w, w + len) at @p must give. */
static void dt_expect(const struct dt_model *m, uint64_t w, uint64_t len,
		      uint64_t p, uint64_t *bm)
{
	for (size_t i = 0; i < m->n; i++) {
		uint64_t t = m->dirty[i], lo, hi;

		/* [t, t + pgsize) against [w, w + len), inclusive ends */
		if (t + (m->pgsize - 1) < w || t - w >= len)
			continue;
		lo = t < w ? w : t;
		hi = t + (m->pgsize - 1);
		if (hi > w + (len - 1))
			hi = w + (len - 1);
		for (uint64_t b = (lo - w) / p; b <= (hi - w) / p; b++)
			bm_set(bm, b);
	}
}

/* Compare; print up to MAX_LOGGED pages of each kind. */
static struct dt_cmp dt_compare(const uint64_t *exp, const uint64_t *got,
				uint64_t w, uint64_t len, uint64_t p,
				const char *what)
{
	uint64_t nbits = (len - 1) / p + 1, words = bm_words(len, p);
	struct dt_cmp c = { 0 };

	for (uint64_t wd = 0; wd < words; wd++) {
		uint64_t e = exp[wd], g = got[wd];

		if (wd == words - 1 && nbits % 64) {
			uint64_t tail = ~0ull << (nbits % 64);

			if (g & tail)
				c.overrun = true;
			g &= ~tail;
		}
		if (!(e | g))
			continue;
		for (int b = 0; b < 64; b++) {
			bool eb = e >> b & 1, gb = g >> b & 1;
			uint64_t iova = w + (wd * 64 + b) * p;

			c.exp += eb;
			c.got += gb;
			if (eb && !gb && c.fn++ < MAX_LOGGED)
				ksft_print_msg("%s: page 0x%llx (%llu bytes) written but NOT reported\n",
					       what, (unsigned long long)iova,
					       (unsigned long long)p);
			if (!eb && gb && c.fp++ < MAX_LOGGED)
				ksft_print_msg("%s: page 0x%llx (%llu bytes) reported but not written (false positive)\n",
					       what, (unsigned long long)iova,
					       (unsigned long long)p);
		}
	}
	return c;
}

/* ------------------------------------------------------------------ */
/* fixture: one function with a ring, dirty tracking available         */
/* ------------------------------------------------------------------ */

FIXTURE(dirty) {
	struct ra_found found;
	int ia;				/* index of the function in found */
	struct vu_iommu iommu;
	struct ra_dev dev;
	struct ra_ring ring;
	struct vu_dma src, dst;
	struct ra_dev peer;
	struct dt_model m;
	struct dt_stats st;
	uint64_t mig_flags;
	uint64_t tag, rng;
	int tmo;
	bool testctl;
	bool iommu_ok, opened, ring_ok, peer_open;
};

static uint64_t next_tag(FIXTURE_DATA(dirty) *self)
{
	return TAG_BASE | ++self->tag;
}

static bool env_expect_logging(void)
{
	const char *v = getenv("REFACCEL_EXPECT_DMA_LOGGING");

	return v && !strcmp(v, "1");
}

/* Fresh ring on a reset device, interrupts masked, enabled. */
static void dt_ring_start(struct __test_metadata *_metadata,
			  FIXTURE_DATA(dirty) *self)
{
	int ret;

	if (self->ring_ok) {
		ra_ring_restart(&self->ring);
	} else {
		ret = ra_ring_setup(&self->dev, &self->iommu, &self->ring, 64, 64);
		ASSERT_EQ(0, ret) TH_LOG("ring setup: %s", strerror(-ret));
		self->ring_ok = true;
	}
	ra_wr(&self->dev, REFACCEL_REG_INT_MASK, REFACCEL_INT_ALL);
	ret = ra_enable(&self->dev, self->tmo);
	if (ret)
		ra_dump(&self->dev, "enable failed");
	ASSERT_EQ(0, ret) TH_LOG("CTRL.ENABLE: %s", strerror(-ret));
}

/* Open the address space and the function; SKIP or FAIL without the feature. */
static void dt_bringup(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dirty) *self)
{
	enum vu_backend be = vu_backend_from_env();
	const char *drv, *bdf;
	struct utsname u;
	bool variant, expect = env_expect_logging();
	uint32_t caps;
	int ret;

	ret = vu_iommu_init(&self->iommu, be);
	if (ret == -ENOENT)
		SKIP(return, "kernel has no VFIO %s backend", vu_backend_name(be));
	ASSERT_EQ(0, ret) TH_LOG("%s backend: %s", vu_backend_name(be),
				 strerror(-ret));
	self->iommu_ok = true;

	bdf = self->found.bdf[self->ia];
	ret = ra_open(&self->iommu, bdf, &self->dev);
	ASSERT_EQ(0, ret) TH_LOG("open %s: %s", bdf, strerror(-ret));
	self->opened = true;
	drv = self->dev.driver;
	variant = ra_driver_is_variant(drv);

	self->mig_flags = 0;
	ret = mig_get_flags(&self->dev.vdev, &self->mig_flags);
	if (ret == -ENOTTY)
		ret = 0;	/* no migration: mig_flags stays 0 */
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s",
				 strerror(-ret));

	caps = ra_rd(&self->dev, REFACCEL_REG_CAPS);
	ret = dt_probe(&self->dev.vdev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
		       VFIO_DEVICE_FEATURE_SET);
	if (ret == -ENOTTY) {
		uname(&u);
		if (expect && variant && self->mig_flags &&
		    (caps & REFACCEL_CAP_DMA_DIRTY))
			ASSERT_EQ(0, ret)
				TH_LOG("REFACCEL_EXPECT_DMA_LOGGING=1 and %s is bound to %s with migration (flags 0x%llx) and a DMA tracker (CAPS 0x%x), but PROBE of DMA_LOGGING_START gives ENOTTY (kernel %s)",
				       bdf, drv, (unsigned long long)self->mig_flags,
				       caps, u.release);
		SKIP(return, "%s bound to %s%s, kernel %s: VFIO_DEVICE_FEATURE_DMA_LOGGING_START unsupported (ENOTTY)",
		     bdf, drv, !variant ? "" : !self->mig_flags ?
		     " without migration" : !(caps & REFACCEL_CAP_DMA_DIRTY) ?
		     " (device has no DMA dirty tracker: CAPS lacks DMA_DIRTY)" :
		     " (needs CONFIG_IOMMUFD_DRIVER)", u.release);
	}
	ASSERT_EQ(0, ret) TH_LOG("PROBE DMA_LOGGING_START: %s", errname(ret));
	ret = dt_probe(&self->dev.vdev, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
		       VFIO_DEVICE_FEATURE_SET);
	ASSERT_EQ(0, ret) TH_LOG("PROBE DMA_LOGGING_STOP: %s", errname(ret));
	ret = dt_probe(&self->dev.vdev, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
		       VFIO_DEVICE_FEATURE_GET);
	ASSERT_EQ(0, ret) TH_LOG("PROBE DMA_LOGGING_REPORT: %s", errname(ret));
	/* START is SET only, REPORT is GET only */
	ret = dt_probe(&self->dev.vdev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
		       VFIO_DEVICE_FEATURE_GET);
	ASSERT_EQ(-EINVAL, ret) TH_LOG("PROBE GET of DMA_LOGGING_START: %s",
				       errname(ret));

	ret = ra_reset(&self->dev);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_RESET: %s", strerror(-ret));
	self->testctl = ra_rd(&self->dev, REFACCEL_REG_CAPS) & REFACCEL_CAP_TESTCTL;
	dt_ring_start(_metadata, self);
	ret = vu_dma_alloc(&self->iommu, BUF_PAGES * PAGE, VU_DMA_RW, &self->src);
	ASSERT_EQ(0, ret);
	ret = vu_dma_alloc(&self->iommu, BUF_PAGES * PAGE, VU_DMA_RW, &self->dst);
	ASSERT_EQ(0, ret);
	memset(&self->m, 0, sizeof(self->m));
}

static void dt_teardown(FIXTURE_DATA(dirty) *self)
{
	if (self->opened) {
		/* stop DMA before the memory goes */
		if (ra_reset(&self->dev))
			ra_wr(&self->dev, REFACCEL_REG_CTRL, 0);
		if (self->m.started)
			dt_stop_raw(&self->dev.vdev);
	}
	if (self->peer_open) {
		if (ra_reset(&self->peer))
			ra_wr(&self->peer, REFACCEL_REG_CTRL, 0);
		ra_close(&self->peer);
		self->peer_open = false;
	}
	if (self->iommu_ok) {
		vu_dma_free(&self->iommu, &self->src);
		vu_dma_free(&self->iommu, &self->dst);
	}
	if (self->ring_ok)
		ra_ring_free(&self->ring);
	self->ring_ok = false;
	if (self->opened)
		ra_close(&self->dev);
	self->opened = false;
	if (self->iommu_ok)
		vu_iommu_cleanup(&self->iommu);
	self->iommu_ok = false;
	free(self->m.dirty);
	memset(&self->m, 0, sizeof(self->m));
}

FIXTURE_SETUP(dirty)
{
	int i;

	self->tmo = ra_timeout_ms();
	self->rng = 0x6a09e667f3bcc909ull;
	if (geteuid())
		SKIP(return, "needs root (VFIO device access)");
	if (!ra_discover(&self->found))
		SKIP(return, "%s", self->found.why);
	/* the variant first: stock vfio-pci then only shows the SKIP */
	self->ia = 0;
	for (i = 0; i < self->found.n; i++)
		if (ra_driver_is_variant(self->found.driver[i])) {
			self->ia = i;
			break;
		}
	dt_bringup(_metadata, self);
}

FIXTURE_TEARDOWN(dirty)
{
	if (self->st.reports)
		ksft_print_msg("dirty tracking: %u reports, %llu pages expected, %llu false negatives, %llu false positives (%llu of them tolerated after a reset)\n",
			       self->st.reports,
			       (unsigned long long)self->st.expected,
			       (unsigned long long)self->st.fn,
			       (unsigned long long)(self->st.fp + self->st.fp_tolerated),
			       (unsigned long long)self->st.fp_tolerated);
	dt_teardown(self);
}

/* ---- START / STOP with the model ---- */

static void dt_start(struct __test_metadata *_metadata, FIXTURE_DATA(dirty) *self,
		     const dt_range *r, int n, uint64_t req)
{
	uint64_t pg = req;
	int ret;

	ASSERT_LE(n, (int)DT_MODEL_RANGES);
	ret = dt_start_raw(&self->dev.vdev, &pg, n, r);
	ASSERT_EQ(0, ret) TH_LOG("DMA_LOGGING_START, %d ranges (first 0x%llx+0x%llx), page size %llu: %s",
				 n, (unsigned long long)r[0].iova,
				 (unsigned long long)r[0].length,
				 (unsigned long long)req, errname(ret));
	ASSERT_EQ(dt_used_pgsize(req), pg)
		TH_LOG("page size %llu requested: START wrote back %llu",
		       (unsigned long long)req, (unsigned long long)pg);
	self->m.started = true;
	self->m.pgsize = pg;
	self->m.nr = n;
	memcpy(self->m.r, r, n * sizeof(*r));
	self->m.n = 0;
	self->m.conservative = false;
}

static void dt_stop(struct __test_metadata *_metadata, FIXTURE_DATA(dirty) *self)
{
	int ret = dt_stop_raw(&self->dev.vdev);

	ASSERT_EQ(0, ret) TH_LOG("DMA_LOGGING_STOP: %s", errname(ret));
	self->m.started = false;
	self->m.n = 0;
}

/*
 * REPORT [w, w + len) at page size @p, compare with the model, forget the
 * window's pages.  No false negative, ever; no false positive unless the
 * model is conservative (after a reset).
 */
static void dt_check(struct __test_metadata *_metadata, FIXTURE_DATA(dirty) *self,
		     uint64_t w, uint64_t len, uint64_t p, const char *what)
{
	uint64_t words = bm_words(len, p), canary = 0xc3a5c3a5c3a5c3a5ull;
	uint64_t *got, *exp;
	struct dt_cmp c;
	char name[160];
	int ret;

	ASSERT_TRUE(self->m.started);
	/* the model forgets whole tracking pages: keep windows aligned */
	ASSERT_EQ(0u, w % self->m.pgsize) TH_LOG("test bug: window 0x%llx", (unsigned long long)w);
	ASSERT_EQ(0u, len % self->m.pgsize) TH_LOG("test bug: length 0x%llx", (unsigned long long)len);
	got = calloc(words + 1, sizeof(*got));
	exp = calloc(words, sizeof(*exp));
	ASSERT_NE(NULL, got);
	ASSERT_NE(NULL, exp);
	got[words] = canary;
	snprintf(name, sizeof(name), "%s [0x%llx+0x%llx @%llu]", what,
		 (unsigned long long)w, (unsigned long long)len,
		 (unsigned long long)p);

	ret = dt_report_raw(&self->dev.vdev, w, len, p, got);
	ASSERT_EQ(0, ret) TH_LOG("%s: DMA_LOGGING_REPORT: %s", name, errname(ret));
	dt_expect(&self->m, w, len, p, exp);
	c = dt_compare(exp, got, w, len, p, name);
	dt_forget(&self->m, w, len);
	self->st.reports++;
	self->st.expected += c.exp;
	self->st.fn += c.fn;
	if (self->m.conservative)
		self->st.fp_tolerated += c.fp;
	else
		self->st.fp += c.fp;
	if (c.fp)
		ksft_print_msg("%s: %llu false positives%s\n", name,
			       (unsigned long long)c.fp,
			       self->m.conservative ? " (tolerated: first report after a reset)" : "");
	EXPECT_EQ(canary, got[words]) TH_LOG("%s: REPORT wrote past the bitmap", name);
	EXPECT_FALSE(c.overrun) TH_LOG("%s: bits set past the end of the window", name);
	ASSERT_EQ(0u, c.fn) TH_LOG("%s: %llu of %llu dirty pages NOT reported",
				   name, (unsigned long long)c.fn,
				   (unsigned long long)c.exp);
	if (!self->m.conservative)
		ASSERT_EQ(0u, c.fp) TH_LOG("%s: %llu pages reported that the device did not write",
					   name, (unsigned long long)c.fp);
	free(got);
	free(exp);
}

/* dt_check() on every tracked range, at the tracking page size */
static void dt_check_all(struct __test_metadata *_metadata,
			 FIXTURE_DATA(dirty) *self, const char *what)
{
	for (int i = 0; i < self->m.nr; i++)
		dt_check(_metadata, self, self->m.r[i].iova, self->m.r[i].length,
			 self->m.pgsize, what);
}

/* A REPORT that must fail with @err (and nothing else). */
static void dt_report_fails(struct __test_metadata *_metadata,
			    FIXTURE_DATA(dirty) *self, uint64_t w, uint64_t len,
			    uint64_t p, int err, const char *what)
{
	uint64_t words = len / (p >= PAGE ? p : PAGE) / 64 + 2, *bm;
	int ret;

	/* big enough should the REPORT wrongly succeed (capped: 1 MiB) */
	if (words > (1u << 17))
		words = 1u << 17;
	bm = calloc(words, sizeof(*bm));
	ASSERT_NE(NULL, bm);
	ret = dt_report_raw(&self->dev.vdev, w, len, p, bm);
	free(bm);
	ASSERT_EQ(err, ret) TH_LOG("REPORT %s [0x%llx+0x%llx @%llu]: %s, expected %s",
				   what, (unsigned long long)w,
				   (unsigned long long)len, (unsigned long long)p,
				   errname(ret), errname(err));
}

/* ---- running work, with its writes noted ---- */

static bool op_writes_host(uint8_t op)
{
	return op == REFACCEL_OP_COPY || op == REFACCEL_OP_FILL ||
	       op == REFACCEL_OP_STORE;
}

static struct refaccel_cpl dt_run(struct __test_metadata *_metadata,
				  FIXTURE_DATA(dirty) *self, struct refaccel_desc d,
				  unsigned int want)
{
	uint64_t slot = self->ring.cq.iova +
			(uint64_t)self->ring.cq_head * REFACCEL_CPL_SIZE;
	struct refaccel_cpl cpl;
	int ret;

	memset(&cpl, 0, sizeof(cpl));
	ASSERT_EQ(0u, ra_ring_outstanding(&self->ring));
	ret = ra_run(&self->ring, &d, &cpl, self->tmo);
	ASSERT_EQ(0, ret) TH_LOG("opcode %u len %u: no completion (%s)",
				 d.opcode, d.len, strerror(-ret));
	ASSERT_EQ(d.tag, cpl.tag);
	ASSERT_EQ(want, cpl.status)
		TH_LOG("opcode %u src 0x%llx dst 0x%llx len %u: status %s, expected %s",
		       d.opcode, (unsigned long long)d.src,
		       (unsigned long long)d.dst, d.len,
		       ra_cpl_status_name(cpl.status), ra_cpl_status_name(want));
	dt_note(&self->m, slot, REFACCEL_CPL_SIZE);
	if (op_writes_host(d.opcode) &&
	    (want == REFACCEL_CPL_OK || want == REFACCEL_CPL_DMA_WRITE_FAULT))
		dt_note(&self->m, d.dst, d.len);
	return cpl;
}

static void dt_fill(struct __test_metadata *_metadata, FIXTURE_DATA(dirty) *self,
		    uint64_t iova, uint32_t len)
{
	dt_run(_metadata, self, ra_desc_fill(next_tag(self), iova, len,
					     0x5eed0000u | (uint32_t)self->tag),
	       REFACCEL_CPL_OK);
}

/* the ranges most tests track: CQ, src, dst */
static int dt_std_ranges(FIXTURE_DATA(dirty) *self, dt_range *r)
{
	r[0] = rg(self->ring.cq.iova, self->ring.cq.size);
	r[1] = rg(self->src.iova, self->src.size);
	r[2] = rg(self->dst.iova, self->dst.size);
	return 3;
}

#define DST(p)	(self->dst.iova + (uint64_t)(p) * PAGE)
#define SRC(p)	(self->src.iova + (uint64_t)(p) * PAGE)
#define DSTVA(off) ((uint8_t *)self->dst.va + (off))
#define SRCVA(off) ((uint8_t *)self->src.va + (off))

/* ================================================================== */
/* what the device writes                                              */
/* ================================================================== */

/*
 * Each op, then a REPORT of every tracked range (SQ, CQ, src, dst + two
 * unmapped guard pages): exactly the destination pages and the CQ page.
 * Reads (SQ fetch, COPY/CRC32C/LOAD sources) mark nothing; a write that
 * faults part way marks all of its range.
 */
TEST_F_TIMEOUT(dirty, each_op_exact, T_TIMEOUT)
{
	uint8_t ref[3 * PAGE + 64];
	dt_range r[4];
	struct refaccel_cpl cpl;

	r[0] = rg(self->ring.sq.iova, self->ring.sq.size);
	r[1] = rg(self->ring.cq.iova, self->ring.cq.size);
	r[2] = rg(self->src.iova, self->src.size);
	/* dst and 2 pages of its unmapped guard */
	r[3] = rg(self->dst.iova, self->dst.size + 2 * PAGE);
	ra_rand_fill(self->src.va, self->src.size, &self->rng);
	ASSERT_EQ(0, ra_sram_write(&self->dev, 0, self->src.va, 4 * PAGE));
	dt_start(_metadata, self, r, 4, PAGE);
	dt_check_all(_metadata, self, "nothing done yet");

	dt_run(_metadata, self, ra_desc_nop(next_tag(self)), REFACCEL_CPL_OK);
	dt_check_all(_metadata, self, "NOP");

	/* COPY of 100 bytes straddling dst pages 0/1 */
	dt_run(_metadata, self, ra_desc_copy(next_tag(self), SRC(0) + 100,
					     DST(1) - 50, 100), REFACCEL_CPL_OK);
	ASSERT_EQ(0, memcmp(DSTVA(PAGE - 50), SRCVA(100), 100));
	dt_check_all(_metadata, self, "COPY straddling 2 pages");

	/* COPY of 3 pages + 1 byte starting on the last byte of page 4 */
	dt_run(_metadata, self, ra_desc_copy(next_tag(self), SRC(1),
					     DST(5) - 1, 3 * PAGE + 1),
	       REFACCEL_CPL_OK);
	ASSERT_EQ(0, memcmp(DSTVA(5 * PAGE - 1), SRCVA(PAGE), 3 * PAGE + 1));
	dt_check_all(_metadata, self, "COPY over 4 pages");

	/* FILL of 1 byte, then of 2 pages at +8 (3 pages) */
	dt_fill(_metadata, self, DST(9), 1);
	dt_check_all(_metadata, self, "FILL 1 byte");
	dt_run(_metadata, self, ra_desc_fill(next_tag(self), DST(10) + 8,
					     2 * PAGE, 0xa1b2c3d4u),
	       REFACCEL_CPL_OK);
	ra_ref_fill(ref, 2 * PAGE, 0xa1b2c3d4u);
	ASSERT_EQ(0, memcmp(DSTVA(10 * PAGE + 8), ref, 2 * PAGE));
	dt_check_all(_metadata, self, "FILL 2 pages at +8");

	/* STORE of 4 bytes straddling pages 12/13 */
	dt_run(_metadata, self, ra_desc_store(next_tag(self), 16, DST(13) - 2, 4),
	       REFACCEL_CPL_OK);
	ASSERT_EQ(0, memcmp(DSTVA(13 * PAGE - 2), SRCVA(16), 4));
	dt_check_all(_metadata, self, "STORE straddling 2 pages");

	/* LOAD and CRC32C write nothing to host memory */
	dt_run(_metadata, self, ra_desc_load(next_tag(self), SRC(2),
					     8 * PAGE, 2 * PAGE), REFACCEL_CPL_OK);
	dt_check_all(_metadata, self, "LOAD");
	cpl = dt_run(_metadata, self, ra_desc_crc32c(next_tag(self), SRC(0),
						     3 * PAGE, 0), REFACCEL_CPL_OK);
	ASSERT_EQ(ra_ref_crc32c(0, self->src.va, 3 * PAGE), cpl.result);
	dt_check_all(_metadata, self, "CRC32C");

	/* FILL from the last mapped page into the guard: faults, marks all */
	dt_run(_metadata, self, ra_desc_fill(next_tag(self), DST(BUF_PAGES - 1),
					     3 * PAGE, 0x0badf00du),
	       REFACCEL_CPL_DMA_WRITE_FAULT);
	dt_check_all(_metadata, self, "FILL faulting part way");

	/* COPY whose source faults writes nothing */
	dt_run(_metadata, self, ra_desc_copy(next_tag(self),
					     self->src.iova + self->src.size,
					     DST(2), PAGE),
	       REFACCEL_CPL_DMA_READ_FAULT);
	dt_check_all(_metadata, self, "COPY with faulting source");

	/* a STORE whose source is out of SRAM never reaches the bus */
	dt_run(_metadata, self, ra_desc_store(next_tag(self),
					      self->dev.sram_size, DST(3), 64),
	       REFACCEL_CPL_BAD_SRAM_RANGE);
	dt_check_all(_metadata, self, "STORE with bad SRAM range");
	dt_stop(_metadata, self);
}

/*
 * Negative control: with REFACCEL_TEST_DT_LOSE the tracker misses the
 * device's writes, and the comparison must see the missing page.  Then,
 * with the bit clear again, a new write is reported exactly.
 */
TEST_F_TIMEOUT(dirty, lose_is_caught, T_TIMEOUT)
{
	uint64_t words, *got, *exp;
	struct dt_cmp c;
	dt_range r[1];

	if (!self->testctl)
		SKIP(return, "needs the model's testctl=on (REFACCEL_TEST_DT_LOSE)");
	/* only dst: the completion writes are not part of the check */
	r[0] = rg(self->dst.iova, self->dst.size);
	dt_start(_metadata, self, r, 1, PAGE);

	ra_wr(&self->dev, REFACCEL_REG_TEST_FLAGS, REFACCEL_TEST_DT_LOSE);
	ASSERT_EQ((uint32_t)REFACCEL_TEST_DT_LOSE,
		  ra_rd(&self->dev, REFACCEL_REG_TEST_FLAGS) & REFACCEL_TEST_DT_LOSE);
	dt_fill(_metadata, self, DST(5) + 100, 200);
	ra_wr(&self->dev, REFACCEL_REG_TEST_FLAGS, 0);

	words = bm_words(self->dst.size, PAGE);
	got = calloc(words, sizeof(*got));
	exp = calloc(words, sizeof(*exp));
	ASSERT_NE(NULL, got);
	ASSERT_NE(NULL, exp);
	ASSERT_EQ(0, dt_report_raw(&self->dev.vdev, self->dst.iova,
				   self->dst.size, PAGE, got));
	dt_expect(&self->m, self->dst.iova, self->dst.size, PAGE, exp);
	c = dt_compare(exp, got, self->dst.iova, self->dst.size, PAGE,
		       "with DT_LOSE (a miss is expected here)");
	TH_LOG("negative control: %llu expected, %llu reported, %llu missed, %llu false positives",
	       (unsigned long long)c.exp, (unsigned long long)c.got,
	       (unsigned long long)c.fn, (unsigned long long)c.fp);
	ASSERT_EQ(1u, c.exp);
	ASSERT_LT(0u, c.fn) TH_LOG("DT_LOSE set, yet the page was reported: the control proves nothing");
	dt_forget(&self->m, self->dst.iova, self->dst.size);
	free(got);
	free(exp);

	/* the tracker works again */
	dt_fill(_metadata, self, DST(7), 8);
	dt_check_all(_metadata, self, "after DT_LOSE cleared");
	dt_stop(_metadata, self);
}

/*
 * Writes across range boundaries: two adjacent ranges, and two ranges with
 * an untracked gap between them; nothing outside the ranges is reported
 * and the gap cannot be reported at all.
 */
TEST_F_TIMEOUT(dirty, straddle_ranges, T_TIMEOUT)
{
	uint64_t bm[4] = { 0 };
	dt_range r[4];
	int ret;

	r[0] = rg(self->ring.cq.iova, self->ring.cq.size);
	r[1] = rg(DST(0), 4 * PAGE);		/* R1: pages 0-3 */
	r[2] = rg(DST(4), 4 * PAGE);		/* R2: pages 4-7, adjacent */
	r[3] = rg(DST(10), 2 * PAGE);		/* R3: pages 10-11; 8-9 gap */
	dt_start(_metadata, self, r, 4, PAGE);

	dt_fill(_metadata, self, DST(4) - 10, 20);
	dt_check(_metadata, self, r[1].iova, r[1].length, PAGE, "R1, write across R1/R2");
	dt_check(_metadata, self, r[2].iova, r[2].length, PAGE, "R2, write across R1/R2");

	dt_fill(_metadata, self, DST(8) - 100, 2 * PAGE + 200);
	dt_check(_metadata, self, r[2].iova, r[2].length, PAGE, "R2, write R2-gap-R3");
	dt_check(_metadata, self, r[3].iova, r[3].length, PAGE, "R3, write R2-gap-R3");
	dt_report_fails(_metadata, self, DST(8), 2 * PAGE, PAGE, -EINVAL,
			"of the untracked gap");
	dt_report_fails(_metadata, self, DST(7), 2 * PAGE, PAGE, -EINVAL,
			"across R2's end into the gap");

	/* just outside R3 on both sides, then one byte into it */
	dt_fill(_metadata, self, DST(12), 8);
	dt_fill(_metadata, self, DST(10) - 8, 8);
	dt_check(_metadata, self, r[3].iova, r[3].length, PAGE, "R3, writes just outside");
	dt_fill(_metadata, self, DST(10) - 8, 9);
	dt_check(_metadata, self, r[3].iova, r[3].length, PAGE, "R3, one byte inside");

	/* one report over the two adjacent ranges: allowed or EINVAL, never wrong */
	dt_fill(_metadata, self, DST(3), 2 * PAGE);
	ret = dt_report_raw(&self->dev.vdev, DST(0), 8 * PAGE, PAGE, bm);
	if (ret == -EINVAL) {
		TH_LOG("a report spanning two adjacent ranges is refused (EINVAL)");
		dt_check(_metadata, self, r[1].iova, r[1].length, PAGE, "R1");
		dt_check(_metadata, self, r[2].iova, r[2].length, PAGE, "R2");
	} else {
		ASSERT_EQ(0, ret) TH_LOG("report over R1+R2: %s", errname(ret));
		ASSERT_EQ(0x18ull, bm[0]) TH_LOG("report over R1+R2: bitmap 0x%llx, expected pages 3-4",
						 (unsigned long long)bm[0]);
		dt_forget(&self->m, DST(0), 8 * PAGE);
	}
	dt_check_all(_metadata, self, "end");
	dt_stop(_metadata, self);
}

/* ================================================================== */
/* REPORT semantics                                                    */
/* ================================================================== */

/*
 * REPORT reads and clears: a second report shows nothing new; a page
 * written again shows again; REPORT only sets bits, never clears bits the
 * user already had; a bitmap that starts 8 bytes before a page boundary
 * works.
 */
TEST_F_TIMEOUT(dirty, read_and_clear, T_TIMEOUT)
{
	uint64_t words = bm_words(self->dst.size, PAGE), *bm;
	dt_range r[3];
	int n = dt_std_ranges(self, r);

	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(1), 8);
	dt_fill(_metadata, self, DST(3) + 4000, 200);
	dt_fill(_metadata, self, DST(9), PAGE);
	dt_check_all(_metadata, self, "first report");
	dt_check_all(_metadata, self, "second report, nothing new");

	dt_fill(_metadata, self, DST(3), 8);
	dt_check_all(_metadata, self, "page 3 written again");

	/* bits the user set stay set; the write of page 2 is reported */
	dt_fill(_metadata, self, DST(2), 8);
	bm = calloc(words, sizeof(*bm));
	ASSERT_NE(NULL, bm);
	bm[0] = 1ull << 6 | 1ull << 11;
	ASSERT_EQ(0, dt_report_raw(&self->dev.vdev, self->dst.iova,
				   self->dst.size, PAGE, bm));
	EXPECT_EQ(1ull << 2 | 1ull << 6 | 1ull << 11, bm[0])
		TH_LOG("REPORT must only set bits: 0x%llx", (unsigned long long)bm[0]);
	dt_forget(&self->m, self->dst.iova, self->dst.size);
	free(bm);

	/* a report through a bitmap at a page offset */
	dt_fill(_metadata, self, DST(15), 8);
	bm = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bm);
	ASSERT_EQ(0, dt_report_raw(&self->dev.vdev, self->dst.iova,
				   self->dst.size, PAGE,
				   (uint8_t *)bm + PAGE - 8));
	EXPECT_EQ(1ull << 15, *(uint64_t *)((uint8_t *)bm + PAGE - 8));
	EXPECT_EQ(0u, *(uint64_t *)((uint8_t *)bm + PAGE));
	dt_forget(&self->m, self->dst.iova, self->dst.size);
	munmap(bm, 2 * PAGE);

	dt_check_all(_metadata, self, "after the raw reports");
	dt_stop(_metadata, self);
}

/* REPORT page sizes other than the tracking page size, both ways. */
TEST_F_TIMEOUT(dirty, report_page_sizes, T_TIMEOUT)
{
	static const uint64_t ps[] = { PAGE, 2 * PAGE, 16 * PAGE, SZ_2M, 1ull << 30 };
	dt_range r[3];
	int n = dt_std_ranges(self, r);

	/* tracking 4 KiB, reports coarser */
	dt_start(_metadata, self, r, n, PAGE);
	for (size_t i = 0; i < ARRAY_SIZE(ps); i++) {
		char what[64];

		dt_fill(_metadata, self, DST(1) + 8, 8);
		dt_fill(_metadata, self, DST(6) - 4, 8);
		dt_fill(_metadata, self, DST(13), 2 * PAGE);
		snprintf(what, sizeof(what), "tracking 4096, report %llu",
			 (unsigned long long)ps[i]);
		dt_check(_metadata, self, self->dst.iova, self->dst.size, ps[i], what);
		dt_check(_metadata, self, r[0].iova, r[0].length, ps[i], what);
		dt_check(_metadata, self, self->dst.iova, self->dst.size, PAGE,
			 "nothing left after a coarse report");
	}
	dt_stop(_metadata, self);
}

/* [*lo, *hi): the CQ and dst buffers, widened to multiples of @align. */
static void cq_dst_window(FIXTURE_DATA(dirty) *self, uint64_t align,
			  uint64_t *lo, uint64_t *hi)
{
	*lo = self->ring.cq.iova < self->dst.iova ? self->ring.cq.iova : self->dst.iova;
	*hi = self->dst.iova + self->dst.size;
	if (self->ring.cq.iova + self->ring.cq.size > *hi)
		*hi = self->ring.cq.iova + self->ring.cq.size;
	*lo &= ~(align - 1);
	*hi = (*hi + align - 1) & ~(align - 1);
}

/*
 * The page size START picks: below 4 KiB raised to 4 KiB, above 2 MiB
 * lowered to 2 MiB, written back; reports finer than the tracking page
 * replicate its bit.
 */
TEST_F_TIMEOUT(dirty, tracking_page_sizes, T_TIMEOUT)
{
	static const uint64_t req[] = { 1024, PAGE, 2 * PAGE, 16 * PAGE, SZ_2M,
					1ull << 22, 1ull << 30 };

	for (size_t i = 0; i < ARRAY_SIZE(req); i++) {
		uint64_t a = req[i] > PAGE ? req[i] : PAGE, lo, hi;
		dt_range r[1];
		char what[64];

		/* one range, aligned to the request, over the CQ and dst */
		cq_dst_window(self, a, &lo, &hi);
		r[0] = rg(lo, hi - lo);
		dt_start(_metadata, self, r, 1, req[i]);
		/* a window splitting a tracking page would lose marks */
		if (self->m.pgsize > PAGE)
			dt_report_fails(_metadata, self, lo + PAGE,
					self->m.pgsize, PAGE, -EINVAL,
					"not aligned to the tracking page");
		dt_fill(_metadata, self, DST(2) + 8, 8);
		dt_fill(_metadata, self, DST(7) - 1, 2);
		snprintf(what, sizeof(what), "tracking %llu (asked %llu), report 4096",
			 (unsigned long long)self->m.pgsize,
			 (unsigned long long)req[i]);
		dt_check(_metadata, self, lo, hi - lo, PAGE, what);
		dt_fill(_metadata, self, DST(11), 8);
		snprintf(what, sizeof(what), "tracking %llu, report 2M",
			 (unsigned long long)self->m.pgsize);
		if (self->m.pgsize <= SZ_2M && (hi - lo) % self->m.pgsize == 0)
			dt_check(_metadata, self, lo, hi - lo, SZ_2M, what);
		dt_stop(_metadata, self);
	}
}

/*
 * START below 4 KiB with ranges that begin and end inside a tracking page
 * (the vfio core only aligns them to the size asked for): the driver
 * tracks whole 4 KiB pages, so a report of those pages works, the head
 * and tail pages included, and two ranges that meet once widened are one.
 * Before the driver widened them, the report failed EINVAL.
 */
TEST_F_TIMEOUT(dirty, subpage_ranges_widened, T_TIMEOUT)
{
	uint64_t lo, hi;
	dt_range r[2];

	cq_dst_window(self, PAGE, &lo, &hi);
	ASSERT_LT(lo + PAGE, hi);
	/* 1 KiB into the first page, 1 KiB short of the last */
	r[0] = rg(lo + 1024, hi - lo - 2048);
	dt_start(_metadata, self, r, 1, 1024);
	/* the model: what the driver tracks */
	self->m.r[0] = rg(lo, hi - lo);
	dt_fill(_metadata, self, DST(2) + 8, 8);
	dt_fill(_metadata, self, DST(7) - 1, 2);
	dt_check(_metadata, self, lo, PAGE, PAGE, "head page of a 1 KiB-aligned range");
	dt_check(_metadata, self, lo, hi - lo, PAGE, "1 KiB-aligned range, widened");
	dt_stop(_metadata, self);

	/* two ranges in the first page's two halves: one tracked range */
	r[0] = rg(lo + 1024, 1024);
	r[1] = rg(lo + 3072, hi - lo - 3072);
	dt_start(_metadata, self, r, 2, 1024);
	self->m.nr = 1;
	self->m.r[0] = rg(lo, hi - lo);
	dt_fill(_metadata, self, DST(3), 8);
	dt_check(_metadata, self, lo, hi - lo, PAGE, "two 1 KiB-aligned ranges, merged");
	dt_stop(_metadata, self);
}

/* ================================================================== */
/* START / STOP life cycle                                             */
/* ================================================================== */

TEST_F_TIMEOUT(dirty, start_stop_start, T_TIMEOUT)
{
	uint64_t pg;
	dt_range r[3];
	int n = dt_std_ranges(self, r), ret;

	dt_report_fails(_metadata, self, self->dst.iova, PAGE, PAGE, -EINVAL,
			"before any START");
	ASSERT_EQ(0, dt_stop_raw(&self->dev.vdev)) TH_LOG("STOP when not started must return 0");

	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(2), 8);

	/* START while started: EINVAL, and tracking goes on untouched */
	pg = PAGE;
	ret = dt_start_raw(&self->dev.vdev, &pg, n, r);
	ASSERT_EQ(-EINVAL, ret) TH_LOG("START while started: %s", errname(ret));
	pg = PAGE;
	ret = dt_start_raw(&self->dev.vdev, &pg, 1, &r[2]);
	ASSERT_EQ(-EINVAL, ret) TH_LOG("START of other ranges while started: %s",
				       errname(ret));
	dt_fill(_metadata, self, DST(4), 8);
	dt_check_all(_metadata, self, "after a refused second START");

	/* dirty pages at STOP are dropped */
	dt_fill(_metadata, self, DST(6), 8);
	dt_stop(_metadata, self);
	ASSERT_EQ(0, dt_stop_raw(&self->dev.vdev)) TH_LOG("second STOP must return 0");
	dt_report_fails(_metadata, self, self->dst.iova, self->dst.size, PAGE,
			-EINVAL, "after STOP");
	dt_fill(_metadata, self, DST(8), 8);	/* untracked */

	dt_start(_metadata, self, r, n, PAGE);
	dt_check_all(_metadata, self, "START again: clean");
	dt_fill(_metadata, self, DST(10), 8);
	dt_check_all(_metadata, self, "START again: new write");
	dt_stop(_metadata, self);

	/* and a third time with other ranges and page size */
	r[0] = rg(self->dst.iova, self->dst.size);
	dt_start(_metadata, self, r, 1, 2 * PAGE);
	dt_fill(_metadata, self, DST(3), 8);
	dt_check_all(_metadata, self, "third START");
	dt_stop(_metadata, self);
}

/*
 * Closing the device fd ends tracking: after a reopen nothing is started
 * (REPORT EINVAL) and START works.
 */
TEST_F_TIMEOUT(dirty, close_stops, T_TIMEOUT)
{
	dt_range r[3];
	int n = dt_std_ranges(self, r);

	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(1), 8);
	/* close everything, as a VMM that exits; no STOP */
	self->m.started = false;
	dt_teardown(self);
	dt_bringup(_metadata, self);
	ASSERT_TRUE(self->opened);

	dt_report_fails(_metadata, self, self->dst.iova, self->dst.size, PAGE,
			-EINVAL, "after close and reopen");
	n = dt_std_ranges(self, r);
	dt_start(_metadata, self, r, n, PAGE);
	dt_check_all(_metadata, self, "START after reopen: clean");
	dt_fill(_metadata, self, DST(5), 8);
	dt_check_all(_metadata, self, "START after reopen: a write");
	dt_stop(_metadata, self);
}

/*
 * VFIO_DEVICE_RESET while tracking: tracking stays on; the first report
 * after the reset may mark every tracked page, but must hold both the
 * pages written before the reset and not yet reported and those written
 * after it; the next report is exact again.
 */
TEST_F_TIMEOUT(dirty, reset_keeps_tracking, T_TIMEOUT)
{
	dt_range r[3];
	int n = dt_std_ranges(self, r), ret;

	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(1), 8);
	dt_check_all(_metadata, self, "before the reset");
	dt_fill(_metadata, self, DST(3), 8);	/* not reported before reset */

	ret = ra_reset(&self->dev);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_RESET while tracking: %s", strerror(-ret));
	self->m.conservative = true;
	dt_ring_start(_metadata, self);
	dt_fill(_metadata, self, DST(5), 8);
	dt_check_all(_metadata, self, "first report after the reset");
	self->m.conservative = false;
	dt_check_all(_metadata, self, "second report after the reset");
	dt_fill(_metadata, self, DST(7), 8);
	dt_check_all(_metadata, self, "a write after the reset");

	/* STOP / START still work after the reset */
	dt_stop(_metadata, self);
	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(9), 8);
	dt_check_all(_metadata, self, "restarted after the reset");
	dt_stop(_metadata, self);
}

/* ================================================================== */
/* invalid input                                                       */
/* ================================================================== */

/* A START that must fail with @err and leave tracking off. */
static void start_fails(struct __test_metadata *_metadata,
			FIXTURE_DATA(dirty) *self, uint64_t pg, uint32_t n,
			const dt_range *r, int err, const char *what)
{
	uint64_t p = pg, bm[1] = { 0 };
	int ret;

	ret = dt_start_raw(&self->dev.vdev, &p, n, r);
	if (!ret)
		dt_stop_raw(&self->dev.vdev);
	ASSERT_EQ(err, ret) TH_LOG("START %s: %s, expected %s", what,
				   errname(ret), errname(err));
	ret = dt_report_raw(&self->dev.vdev, self->dst.iova, PAGE, PAGE, bm);
	ASSERT_EQ(-EINVAL, ret) TH_LOG("after the refused START %s, REPORT gives %s: tracking was left on",
				       what, errname(ret));
}

TEST_F_TIMEOUT(dirty, start_invalid, T_TIMEOUT)
{
	const uint64_t top = 0;		/* 2^64 wraps to 0 */
	dt_range r[LOG_MAX_RANGES + 1], one[2];
	uint64_t d = self->dst.iova, pg;
	int ret;

	memset(r, 0, sizeof(r));
	for (unsigned int i = 0; i <= LOG_MAX_RANGES; i++)
		r[i] = rg(d + 2ull * i * PAGE, PAGE);

	/* vfio core rules */
	start_fails(_metadata, self, PAGE, 0, r, -EINVAL, "with no range");
	start_fails(_metadata, self, PAGE, LOG_MAX_RANGES + 1, r, -E2BIG,
		    "with 257 ranges");
	start_fails(_metadata, self, PAGE, 1, NULL, -EFAULT, "with ranges = NULL");
	one[0] = rg(d + 1, PAGE);
	start_fails(_metadata, self, PAGE, 1, one, -EINVAL, "with an unaligned iova");
	one[0] = rg(d, PAGE + 1);
	start_fails(_metadata, self, PAGE, 1, one, -EINVAL, "with an unaligned length");
	one[0] = rg(d + PAGE, 2 * PAGE);
	start_fails(_metadata, self, 2 * PAGE, 1, one, -EINVAL,
		    "with an iova not aligned to the 8 KiB page size");
	one[0] = rg(top - PAGE, 2 * PAGE);
	start_fails(_metadata, self, PAGE, 1, one, -EOVERFLOW, "with iova + length past 2^64");
	one[0] = rg(top - PAGE, PAGE);
	start_fails(_metadata, self, PAGE, 1, one, -EOVERFLOW, "with iova + length == 2^64");
	one[0] = rg(d, 2 * PAGE);
	one[1] = rg(d + PAGE, 2 * PAGE);
	start_fails(_metadata, self, PAGE, 2, one, -EINVAL, "with overlapping ranges");
	one[1] = one[0];
	start_fails(_metadata, self, PAGE, 2, one, -EINVAL, "with the same range twice");

	/* driver rules */
	one[0] = rg(d, 0);
	start_fails(_metadata, self, PAGE, 1, one, -EINVAL, "with a zero-length range");
	one[0] = rg(d + 8 * PAGE, 0);
	one[1] = rg(d, 4 * PAGE);
	start_fails(_metadata, self, PAGE, 2, one, -EINVAL,
		    "with a zero-length range among others");
	one[0] = rg(d, 4 * PAGE);
	start_fails(_metadata, self, 0, 1, one, -EINVAL, "with page size 0");
	one[0] = rg(d, 0x4000);		/* aligned to 0x3000's mask: passes core */
	start_fails(_metadata, self, 0x3000, 1, one, -EINVAL,
		    "with page size 12288 (not a power of 2)");
	one[0] = rg(d, 0x1800 * 16);
	start_fails(_metadata, self, 0x1800, 1, one, -EINVAL,
		    "with page size 6144 (not a power of 2)");

	/* span: the model's default maximum is 2^48 */
	one[0] = rg(0, DT_MAX_SPAN_DEFAULT + PAGE);
	start_fails(_metadata, self, PAGE, 1, one, -EOPNOTSUPP, "of 2^48 + 4096 bytes");
	one[0] = rg(0, DT_MAX_SPAN_DEFAULT / 2);
	one[1] = rg(1ull << 50, DT_MAX_SPAN_DEFAULT / 2 + PAGE);
	start_fails(_metadata, self, PAGE, 2, one, -EOPNOTSUPP,
		    "of two ranges adding up to 2^48 + 4096 bytes");
	/* 9 tiny ranges 2^49 apart: combined for the device, far above 2^48 */
	{
		dt_range far[9];

		far[0] = rg(0, PAGE);
		for (int i = 1; i < 9; i++)
			far[i] = rg(1ull << (48 + i), PAGE);
		start_fails(_metadata, self, PAGE, 9, far, -EOPNOTSUPP,
			    "of 9 ranges whose combination spans > 2^48");
	}
	one[0] = rg(0, DT_MAX_SPAN_DEFAULT);
	pg = PAGE;
	ret = dt_start_raw(&self->dev.vdev, &pg, 1, one);
	ASSERT_EQ(0, ret) TH_LOG("START of exactly 2^48 bytes (the maximum): %s",
				 errname(ret));
	ASSERT_EQ(0, dt_stop_raw(&self->dev.vdev));

	/* after all that, a valid START works and tracks */
	one[0] = rg(self->dst.iova, self->dst.size);
	dt_start(_metadata, self, one, 1, PAGE);
	dt_fill(_metadata, self, DST(3), 8);
	dt_check_all(_metadata, self, "valid START after refused ones");
	dt_stop(_metadata, self);
}

TEST_F_TIMEOUT(dirty, report_invalid, T_TIMEOUT)
{
	uint64_t d = self->dst.iova, s = self->src.iova;
	dt_range r[3];
	int n = dt_std_ranges(self, r);

	dt_report_fails(_metadata, self, d, PAGE, PAGE, -EINVAL, "before START");
	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(2), 8);

	dt_report_fails(_metadata, self, d, PAGE, 0, -EINVAL, "with page size 0");
	dt_report_fails(_metadata, self, d, PAGE, 2048, -EINVAL, "with page size 2048");
	dt_report_fails(_metadata, self, d, 0x6000, 0x3000, -EINVAL,
			"with page size 12288");
	dt_report_fails(_metadata, self, 0ull - PAGE, PAGE, PAGE, -EOVERFLOW,
			"ending at 2^64");
	dt_report_fails(_metadata, self, 0ull - PAGE, 2 * PAGE, PAGE, -EOVERFLOW,
			"past 2^64");
	dt_report_fails(_metadata, self, d - PAGE, 2 * PAGE, PAGE, -EINVAL,
			"starting a page before dst's range");
	dt_report_fails(_metadata, self, d + self->dst.size - PAGE, 2 * PAGE,
			PAGE, -EINVAL, "ending a page after dst's range");
	dt_report_fails(_metadata, self, s + self->src.size, PAGE, PAGE, -EINVAL,
			"between src and dst");
	dt_report_fails(_metadata, self, 0, PAGE, PAGE, -EINVAL, "at IOVA 0");
	ASSERT_LT(s, d);
	dt_report_fails(_metadata, self, s, d + self->dst.size - s, 2 * SZ_2M,
			-EINVAL, "over src, the gap and dst");
	/* the refusals consumed nothing */
	dt_check_all(_metadata, self, "after refused reports");
	dt_stop(_metadata, self);
	dt_report_fails(_metadata, self, d, PAGE, PAGE, -EINVAL, "after STOP");
}

/*
 * A REPORT whose bitmap the kernel cannot write (PROT_NONE, read-only,
 * NULL), with a dirty page to write there, should fail with EFAULT.  Then
 * STOP and START (the uAPI says the log is corrupt after an error) are
 * clean.
 *
 * In 6.12 the vfio core pins the user bitmap lazily, inside
 * iova_bitmap_set(), which returns void and drops a pinning failure; the
 * driver never sees it, and the REPORT returns 0 with the pages read,
 * cleared and not delivered.  On such a kernel the EFAULT part is reported
 * as a SKIP with that reason; any other result fails, and so does the
 * restart (then no SKIP: it would overwrite the failure).
 */
TEST_F_TIMEOUT(dirty, report_bad_bitmap, T_TIMEOUT)
{
	uint64_t d = self->dst.iova;
	uint8_t *none, *ro;
	dt_range r[3];
	int n = dt_std_ranges(self, r), ret, lost = 0;

	dt_start(_metadata, self, r, n, PAGE);
	none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	ASSERT_NE(MAP_FAILED, ro);
	dt_fill(_metadata, self, DST(4), 8);
	ret = dt_report_raw(&self->dev.vdev, d, self->dst.size, PAGE, none);
	ASSERT_TRUE(ret == -EFAULT || ret == 0)
		TH_LOG("REPORT into a PROT_NONE bitmap with a dirty page: %s",
		       errname(ret));
	lost += !ret;
	dt_fill(_metadata, self, DST(4), 8);
	ret = dt_report_raw(&self->dev.vdev, d, self->dst.size, PAGE, ro);
	ASSERT_TRUE(ret == -EFAULT || ret == 0)
		TH_LOG("REPORT into a read-only bitmap with a dirty page: %s",
		       errname(ret));
	lost += !ret;
	dt_fill(_metadata, self, DST(4), 8);
	ret = dt_report_raw(&self->dev.vdev, d, self->dst.size, PAGE, NULL);
	ASSERT_TRUE(ret == -EFAULT || ret == 0)
		TH_LOG("REPORT into bitmap NULL with a dirty page: %s",
		       errname(ret));
	lost += !ret;
	munmap(none, PAGE);
	munmap(ro, PAGE);

	/*
	 * After an error the log counts as corrupted (uAPI): STOP and START
	 * again, which must be clean and work.
	 */
	dt_stop(_metadata, self);
	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(6), 8);
	dt_check_all(_metadata, self, "restarted after EFAULT");
	dt_stop(_metadata, self);
	if (!lost)
		return;
	/* a SKIP would hide a failure of the restart above */
	if (_metadata->exit_code == KSFT_FAIL)
		TH_LOG("also: %d of 3 REPORTs into an unwritable bitmap returned 0 (this kernel's vfio core); not a SKIP, the test failed",
		       lost);
	else
		SKIP(return, "%d of 3 REPORTs into an unwritable bitmap returned 0, not EFAULT: this kernel's iova_bitmap_set() drops pinning failures (vfio core, not the driver)",
		     lost);
}

/* ================================================================== */
/* combining ranges                                                    */
/* ================================================================== */

/*
 * 12 one-page ranges with gaps of 1..11 pages (all different) in one
 * buffer, more than the device holds: the driver combines them, closing
 * the smallest gaps.  Every asked page is tracked exactly; a gap report is
 * either refused (gap kept open) or holds exactly the gap's write; the
 * closed gaps must be the smallest ones, at least 12 - 8 of them.  Then
 * 256 ranges (the core's guaranteed minimum) are accepted and tracked.
 */
#define NCOMB	12

TEST_F_TIMEOUT(dirty, combine_ranges, T_TIMEOUT)
{
	uint64_t off[NCOMB], pages = 0, bm[1];
	struct vu_dma buf;
	dt_range r[LOG_MAX_RANGES];
	int closed = 0, first_open = -1, ret;
	bool ok = true;
	/* gap sizes in a non-monotonic order */
	static const int gap[NCOMB - 1] = { 5, 1, 9, 3, 11, 2, 7, 4, 10, 6, 8 };

	for (int i = 0; i < NCOMB; i++) {
		off[i] = pages;
		pages += 1 + (i < NCOMB - 1 ? gap[i] : 0);
	}
	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, pages * PAGE, VU_DMA_RW, &buf));
	for (int i = 0; i < NCOMB; i++)
		r[i] = rg(buf.iova + off[i] * PAGE, PAGE);
	dt_start(_metadata, self, r, NCOMB, PAGE);

	for (int i = 0; i < NCOMB; i++)
		dt_fill(_metadata, self, r[i].iova + 8 * i, 64);
	/* one write in the middle page of each gap (not in the model) */
	for (int i = 0; i < NCOMB - 1; i++) {
		struct refaccel_desc dd = ra_desc_fill(next_tag(self),
			buf.iova + (off[i] + 1 + gap[i] / 2) * PAGE, 16, 0x6a9);
		struct refaccel_cpl cpl;

		ASSERT_EQ(0, ra_run(&self->ring, &dd, &cpl, self->tmo));
		ASSERT_EQ(REFACCEL_CPL_OK, cpl.status);
	}
	for (int i = 0; i < NCOMB; i++)
		dt_check(_metadata, self, r[i].iova, PAGE, PAGE, "asked one-page range");

	/* the gaps, by increasing size */
	for (int g = 1; g <= 11; g++) {
		int i;

		for (i = 0; i < NCOMB - 1 && gap[i] != g; i++)
			;
		bm[0] = 0;
		ret = dt_report_raw(&self->dev.vdev,
				    buf.iova + (off[i] + 1) * PAGE,
				    (uint64_t)g * PAGE, PAGE, bm);
		if (ret == -EINVAL) {
			if (first_open < 0)
				first_open = g;
			continue;
		}
		ASSERT_EQ(0, ret) TH_LOG("report of the %d-page gap: %s", g, errname(ret));
		closed++;
		if (first_open >= 0) {
			TH_LOG("the %d-page gap is tracked but the smaller %d-page gap is not: not the smallest gaps closed",
			       g, first_open);
			ok = false;
		}
		if (bm[0] != 1ull << (g / 2)) {
			TH_LOG("%d-page gap (combined, tracked): bitmap 0x%llx, expected 0x%llx (its one write)",
			       g, (unsigned long long)bm[0], 1ull << (g / 2));
			ok = false;
		}
	}
	TH_LOG("%d ranges asked: %d smallest gaps closed, so the device holds %d ranges",
	       NCOMB, closed, NCOMB - closed);
	ASSERT_TRUE(ok);
	ASSERT_LE(NCOMB - REFACCEL_DT_MAX_RANGES, closed);
	dt_stop(_metadata, self);

	/*
	 * 256 ranges: 255 one-page ranges every 2 pages from buf (mostly
	 * unmapped IOVA, which is fine to track), and the last one out of
	 * order, in src below them all.
	 */
	for (unsigned int i = 0; i < LOG_MAX_RANGES - 1; i++)
		r[i] = rg(buf.iova + 2ull * i * PAGE, PAGE);
	r[LOG_MAX_RANGES - 1] = rg(self->src.iova, PAGE);
	ASSERT_LT(self->src.iova, buf.iova);
	dt_start(_metadata, self, r, LOG_MAX_RANGES, PAGE);
	dt_fill(_metadata, self, r[0].iova, 8);
	dt_fill(_metadata, self, r[1].iova + PAGE - 8, 8);
	dt_fill(_metadata, self, self->src.iova + 100, 8);
	dt_check(_metadata, self, r[0].iova, PAGE, PAGE, "256 ranges: first");
	dt_check(_metadata, self, r[1].iova, PAGE, PAGE, "256 ranges: second");
	dt_check(_metadata, self, r[2].iova, PAGE, PAGE, "256 ranges: third");
	dt_check(_metadata, self, self->src.iova, PAGE, PAGE,
		 "256 ranges: last (in src, out of order)");
	dt_stop(_metadata, self);
	vu_dma_free(&self->iommu, &buf);
}

/* ================================================================== */
/* large, high and wide ranges                                         */
/* ================================================================== */

/* Mark @count pages as written at @iova + i * @stride (testctl). */
static void dt_mark(FIXTURE_DATA(dirty) *self, uint64_t iova, uint32_t stride,
		    uint32_t count)
{
	ra_wr64(&self->dev, REFACCEL_REG_TEST_DT_MARK_LO, iova);
	ra_wr(&self->dev, REFACCEL_REG_TEST_DT_STRIDE, stride);
	ra_wr(&self->dev, REFACCEL_REG_TEST_DT_COUNT, count);
	for (uint32_t i = 0; i < count; i++)
		dt_note(&self->m, iova + (uint64_t)i * stride, 1);
}

/*
 * One range of 2^43 bytes from IOVA 0 (above 2^42) holds every buffer:
 * real writes inside it are reported, from a window and from the whole
 * range at 2 MiB pages; with testctl, marks above 2^42 too.
 */
TEST_F_TIMEOUT(dirty, span_2_43, T_TIMEOUT)
{
	const uint64_t span = 1ull << 43;
	uint64_t w;
	dt_range r[1];

	ASSERT_LT(self->dst.iova + self->dst.size, span);
	r[0] = rg(0, span);
	dt_start(_metadata, self, r, 1, PAGE);
	dt_fill(_metadata, self, DST(3) - 2, 4);
	dt_run(_metadata, self, ra_desc_copy(next_tag(self), SRC(0), DST(8), 100),
	       REFACCEL_CPL_OK);
	w = self->ring.sq.iova & ~(SZ_2M - 1);
	dt_check(_metadata, self, w, (self->dst.iova + self->dst.size + SZ_2M - 1 - w) & ~(SZ_2M - 1),
		 PAGE, "2^43 range, window around the buffers");
	dt_fill(_metadata, self, DST(12), 8);
	if (self->testctl) {
		dt_mark(self, (1ull << 42) + (5ull << 30) + 3 * PAGE, 0, 1);
		dt_mark(self, span - PAGE, 0, 1);
		dt_mark(self, span - SZ_2M - 8 * PAGE, 4 * PAGE, 3);
		dt_check(_metadata, self, span - 4 * SZ_2M, 4 * SZ_2M, PAGE,
			 "2^43 range, top 8 MiB");
	} else {
		TH_LOG("no testctl: no marks above 2^42 (only the real writes below)");
	}
	dt_fill(_metadata, self, DST(14), 8);
	if (self->testctl)
		dt_mark(self, (1ull << 42) + PAGE, 0, 1);
	dt_check(_metadata, self, 0, span, SZ_2M, "whole 2^43 range at 2 MiB");
	dt_check(_metadata, self, 0, span, SZ_2M, "whole 2^43 range again, clean");
	dt_stop(_metadata, self);
}

/*
 * Ranges ending just below 2^64 (at 2^64 - 2 MiB and 2^64 - 4 KiB), beside
 * a normal one; pages marked in them (testctl: no IOMMU maps there) are
 * reported, the page above them is not.
 */
TEST_F_TIMEOUT(dirty, ranges_near_2_64, T_TIMEOUT)
{
	const uint64_t r1 = 0ull - SZ_2M - (1ull << 20), r2 = 0ull - 64 * PAGE;
	dt_range r[3];

	if (!self->testctl)
		SKIP(return, "needs testctl=on: nothing can DMA near 2^64, so pages there are marked with TEST_DT_MARK");
	r[0] = rg(r1, 1ull << 20);		/* ends at 2^64 - 2 MiB */
	r[1] = rg(r2, 63 * PAGE);		/* ends at 2^64 - 4 KiB */
	r[2] = rg(self->dst.iova, self->dst.size);
	dt_start(_metadata, self, r, 3, PAGE);
	dt_mark(self, r1, 0, 1);
	dt_mark(self, r1 + (1ull << 20) - PAGE + 4095, 0, 1);
	dt_mark(self, r1 + 100 * PAGE, 2 * PAGE, 5);
	dt_mark(self, r2, 0, 1);
	dt_mark(self, r2 + 62 * PAGE + 7, 0, 1);
	dt_mark(self, 0ull - PAGE, 0, 1);	/* above the range: not tracked */
	dt_mark(self, r1 + (1ull << 20), 0, 1);	/* just above r1 */
	dt_fill(_metadata, self, DST(1), 8);
	dt_check(_metadata, self, r[0].iova, r[0].length, PAGE, "range ending at 2^64 - 2 MiB");
	dt_check(_metadata, self, r[1].iova, r[1].length, PAGE, "range ending at 2^64 - 4 KiB");
	dt_check(_metadata, self, r[2].iova, r[2].length, PAGE, "dst");
	dt_mark(self, r2 + 30 * PAGE, PAGE, 2);
	dt_check(_metadata, self, r[1].iova, r[1].length, SZ_2M,
		 "range ending at 2^64 - 4 KiB, at 2 MiB");
	dt_report_fails(_metadata, self, r2, 64 * PAGE, PAGE, -EOVERFLOW,
			"of the range plus the last page");
	dt_report_fails(_metadata, self, r1 + (1ull << 20) - PAGE, 2 * PAGE, PAGE,
			-EINVAL, "of the last page of the 2^64 - 2 MiB range and the one above");
	dt_check_all(_metadata, self, "end");
	dt_stop(_metadata, self);
}

/*
 * Real DMA at the highest IOVA the IOMMU allows (just below 2^48 with
 * QEMU 10's VT-d), in a range there.
 */
TEST_F_TIMEOUT(dirty, high_iova_dma, T_TIMEOUT)
{
	struct vu_iova_range ir[VU_MAX_IOVA_RANGES];
	struct vu_dma hi = { 0 };
	uint64_t top = 0, iova;
	dt_range r[2];
	int n = 0, ret;

	if (self->iommu.ops->iova_ranges)
		n = self->iommu.ops->iova_ranges(&self->iommu, ir, VU_MAX_IOVA_RANGES);
	if (n <= 0)
		SKIP(return, "the %s backend reports no valid IOVA ranges",
		     vu_backend_name(self->iommu.backend));
	for (int i = 0; i < n; i++)
		if (ir[i].last > top)
			top = ir[i].last;
	if (top < (1ull << 32))
		SKIP(return, "highest valid IOVA is 0x%llx: nothing high to test",
		     (unsigned long long)top);
	iova = ((top + 1) & ~(SZ_2M - 1)) - SZ_2M;
	ret = vu_dma_alloc_at(&self->iommu, 4 * PAGE, iova, VU_DMA_RW, &hi);
	if (ret)
		SKIP(return, "cannot map 16 KiB at IOVA 0x%llx (top 0x%llx): %s",
		     (unsigned long long)iova, (unsigned long long)top,
		     strerror(-ret));
	TH_LOG("highest valid IOVA 0x%llx, buffer at 0x%llx", (unsigned long long)top,
	       (unsigned long long)iova);
	r[0] = rg(iova, SZ_2M);
	r[1] = rg(self->ring.cq.iova, self->ring.cq.size);
	dt_start(_metadata, self, r, 2, PAGE);
	dt_fill(_metadata, self, iova + PAGE - 4, 8);
	dt_run(_metadata, self, ra_desc_copy(next_tag(self), SRC(0), iova + 3 * PAGE, 64),
	       REFACCEL_CPL_OK);
	ASSERT_EQ(0, memcmp((uint8_t *)hi.va + 3 * PAGE, self->src.va, 64));
	dt_check_all(_metadata, self, "high IOVA");
	dt_check(_metadata, self, iova, SZ_2M, SZ_2M, "high IOVA, clean at 2 MiB");
	dt_stop(_metadata, self);
	vu_dma_free(&self->iommu, &hi);
}

/*
 * A large synthetic pattern (testctl marks): 4096 pages 32 MiB apart in a
 * 128 GiB range, reported through one 4 MiB bitmap (more than one chunk of
 * pinned bitmap pages), exactly.
 */
TEST_F_TIMEOUT(dirty, synthetic_large, T_TIMEOUT)
{
	const uint64_t span = 1ull << 37, base = 1ull << 38;
	dt_range r[1];

	if (!self->testctl)
		SKIP(return, "needs testctl=on (TEST_DT_MARK)");
	/* above every mapping and the rings: only the marks are in it */
	ASSERT_LT(self->dst.iova + self->dst.size, base);
	r[0] = rg(base, span);
	dt_start(_metadata, self, r, 1, PAGE);
	dt_mark(self, base + PAGE, 32u << 20, 4096);
	dt_mark(self, base + span - PAGE, 0, 1);
	dt_check(_metadata, self, base, span, PAGE, "4097 marks in 128 GiB at 4 KiB");
	dt_check(_metadata, self, base, span, PAGE, "128 GiB again, clean");
	dt_mark(self, base + 3 * PAGE, 64u << 20, 2048);
	dt_check(_metadata, self, base, span, SZ_2M, "2048 marks in 128 GiB at 2 MiB");
	dt_stop(_metadata, self);
}

/* ================================================================== */
/* peer-to-peer                                                        */
/* ================================================================== */

/*
 * STORE and COPY into the other function's BAR2, DMA-mapped into the same
 * IOVA space: the peer's pages are tracked like host memory.
 */
TEST_F_TIMEOUT(dirty, peer_bar_writes, T_TIMEOUT)
{
	const uint64_t win = 16 * PAGE;
	uint8_t got[3 * PAGE], want[3 * PAGE];
	uint64_t piova;
	dt_range r[3];
	int ib = -1, ret;

	for (int i = 0; i < self->found.n; i++)
		if (i != self->ia) {
			ib = i;
			break;
		}
	if (ib < 0)
		SKIP(return, "needs a second refaccel function for peer writes");
	ret = ra_open(&self->iommu, self->found.bdf[ib], &self->peer);
	ASSERT_EQ(0, ret) TH_LOG("open peer %s: %s", self->found.bdf[ib], strerror(-ret));
	self->peer_open = true;
	ASSERT_EQ(0, ra_reset(&self->peer));
	if (!self->peer.sram || self->peer.bar2_size < win)
		SKIP(return, "peer %s: BAR2 not mmappable", self->peer.vdev.bdf);
	piova = vu_iova_alloc(&self->iommu, win);
	ASSERT_NE(0u, piova);
	ret = vu_dma_map(&self->iommu, (void *)self->peer.sram, piova, win, VU_DMA_RW);
	if (ret)
		SKIP(return, "the %s backend cannot DMA-map the peer's BAR2 mmap: %s",
		     vu_backend_name(self->iommu.backend), strerror(-ret));

	r[0] = rg(self->ring.cq.iova, self->ring.cq.size);
	r[1] = rg(self->src.iova, self->src.size);
	r[2] = rg(piova, win);
	ra_rand_fill(self->src.va, self->src.size, &self->rng);
	ASSERT_EQ(0, ra_sram_write(&self->dev, 0, self->src.va, 4 * PAGE));
	memset(want, 0, sizeof(want));
	ASSERT_EQ(0, ra_sram_write(&self->peer, 0, want, sizeof(want)));
	ASSERT_EQ(0, ra_sram_write(&self->peer, 8 * PAGE, want, sizeof(want)));
	dt_start(_metadata, self, r, 3, PAGE);

	/* STORE A's SRAM into B's, straddling B's pages 0/1 */
	dt_run(_metadata, self, ra_desc_store(next_tag(self), 0, piova + PAGE - 100, 300),
	       REFACCEL_CPL_OK);
	ASSERT_EQ(0, ra_sram_read(&self->peer, PAGE - 100, got, 300));
	ASSERT_EQ(0, memcmp(got, self->src.va, 300)) TH_LOG("STORE did not reach the peer's SRAM");
	dt_check_all(_metadata, self, "STORE into the peer BAR");

	/* COPY host memory into B, over pages 8-10 */
	dt_run(_metadata, self, ra_desc_copy(next_tag(self), SRC(4), piova + 8 * PAGE + 1,
					     2 * PAGE), REFACCEL_CPL_OK);
	ASSERT_EQ(0, ra_sram_read(&self->peer, 8 * PAGE + 1, got, 2 * PAGE));
	ASSERT_EQ(0, memcmp(got, SRCVA(4 * PAGE), 2 * PAGE)) TH_LOG("COPY did not reach the peer's SRAM");
	dt_check_all(_metadata, self, "COPY into the peer BAR");

	/* reading the peer (COPY from B to host) marks only the host side */
	dt_run(_metadata, self, ra_desc_copy(next_tag(self), piova, SRC(10), 64),
	       REFACCEL_CPL_OK);
	dt_check_all(_metadata, self, "COPY from the peer BAR");
	dt_stop(_metadata, self);
	vu_dma_unmap(&self->iommu, piova, win);
}

/* ================================================================== */
/* migration states                                                    */
/* ================================================================== */

/*
 * Tracking runs across the migration FSM: writes in RUNNING and PRE_COPY
 * are reported (during PRE_COPY and after STOP_COPY is reached), nothing
 * new appears while the device is in STOP_COPY, and writes after the
 * device is RUNNING again are reported.
 */
TEST_F_TIMEOUT(dirty, across_pre_copy_stop_copy, T_TIMEOUT)
{
	struct mig_buf stream = { 0 };
	dt_range r[3];
	int n = dt_std_ranges(self, r), fd = -1, ret;
	uint32_t state;
	bool eof;

	if (!(self->mig_flags & VFIO_MIGRATION_PRE_COPY))
		SKIP(return, "no PRE_COPY (migration flags 0x%llx)",
		     (unsigned long long)self->mig_flags);
	dt_start(_metadata, self, r, n, PAGE);
	dt_fill(_metadata, self, DST(1), 8);		/* RUNNING */

	ret = mig_set_state(&self->dev.vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	ASSERT_EQ(0, ret) TH_LOG("RUNNING -> PRE_COPY: %s", strerror(-ret));
	ASSERT_LE(0, fd);
	dt_fill(_metadata, self, DST(3) - 4, 8);	/* PRE_COPY */
	dt_check_all(_metadata, self, "in PRE_COPY");
	dt_fill(_metadata, self, DST(6), 8);		/* PRE_COPY, after a report */
	ASSERT_EQ(0, mig_read_stream(fd, &stream, STREAM_CHUNK, &eof));
	ASSERT_FALSE(eof);

	ASSERT_EQ(0, mig_set_state(&self->dev.vdev, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ret = mig_set_state(&self->dev.vdev, VFIO_DEVICE_STATE_STOP_COPY, NULL);
	ASSERT_EQ(0, ret) TH_LOG("PRE_COPY_P2P -> STOP_COPY: %s", strerror(-ret));
	dt_check_all(_metadata, self, "in STOP_COPY: the PRE_COPY write");
	dt_check_all(_metadata, self, "in STOP_COPY: nothing new");
	ASSERT_EQ(0, mig_read_stream(fd, &stream, STREAM_CHUNK, &eof));
	ASSERT_TRUE(eof);
	dt_check_all(_metadata, self, "in STOP_COPY after the stream: nothing new");
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->dev.vdev, VFIO_DEVICE_STATE_STOP, NULL));
	dt_check_all(_metadata, self, "in STOP: nothing new");

	ret = mig_set_state(&self->dev.vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	ASSERT_EQ(0, ret) TH_LOG("STOP -> RUNNING: %s", strerror(-ret));
	ASSERT_EQ(0, mig_get_state(&self->dev.vdev, &state));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, state);
	dt_fill(_metadata, self, DST(9), 8);
	dt_check_all(_metadata, self, "RUNNING again");
	dt_stop(_metadata, self);
	mig_buf_free(&stream);
}

/* ================================================================== */
/* a report while the device writes                                    */
/* ================================================================== */

#define CONC_PAGES	96
#define CONC_WRITES	64		/* distinct pages, each written once */
#define CONC_BATCH	8

struct conc {
	struct ra_ring *ring;
	struct vu_dma *buf;
	int tmo;
	int page[CONC_WRITES];		/* page of write i */
	int done;			/* writes completed (atomic) */
	int reports_mid;		/* reports after the first batch (atomic) */
	int err;			/* first failure, -errno / -EIO */
	char why[160];
};

static void *conc_worker(void *arg)
{
	struct conc *c = arg;
	struct refaccel_cpl cpl;
	int i = 0, b, ret;

	while (i < CONC_WRITES) {
		int nb = CONC_WRITES - i < CONC_BATCH ? CONC_WRITES - i : CONC_BATCH;

		for (b = 0; b < nb; b++) {
			struct refaccel_desc d = ra_desc_fill(TAG_BASE | 0xc0000 | (i + b),
				c->buf->iova + (uint64_t)c->page[i + b] * PAGE +
				(uint64_t)(i + b) * 40, 32, 0xc0c0 + i + b);

			ret = ra_sq_push(c->ring, &d);
			if (ret) {
				c->err = ret;
				snprintf(c->why, sizeof(c->why), "push %d: %s", i + b, strerror(-ret));
				return NULL;
			}
		}
		ra_sq_doorbell(c->ring);
		for (b = 0; b < nb; b++) {
			ret = ra_wait_cpl(c->ring, &cpl, c->tmo);
			if (ret || cpl.status != REFACCEL_CPL_OK) {
				c->err = ret ? ret : -EIO;
				snprintf(c->why, sizeof(c->why), "write %d: %s status %u",
					 i + b, strerror(-c->err), cpl.status);
				return NULL;
			}
			__atomic_store_n(&c->done, i + b + 1, __ATOMIC_RELEASE);
		}
		i += nb;
		/* after the first batch, wait for a report to happen meanwhile */
		if (i == CONC_BATCH)
			while (!__atomic_load_n(&c->reports_mid, __ATOMIC_ACQUIRE))
				usleep(100);
	}
	return NULL;
}

/*
 * A second thread keeps submitting FILLs (batches of 8, each to a page of
 * its own) while the main thread reports over and over.  Every write that
 * completed before a report began is in the union of the reports up to
 * it; the final union is exactly the written pages (and the CQ page).
 */
TEST_F_TIMEOUT(dirty, report_while_running, T_TIMEOUT)
{
	uint64_t uni[(CONC_PAGES + 63) / 64] = { 0 }, bm[(CONC_PAGES + 63) / 64];
	uint64_t cq_bm, cq_uni = 0;
	struct vu_dma buf;
	struct conc c;
	pthread_t th;
	dt_range r[2];
	unsigned int reports = 0, fp = 0, fn = 0, dup = 0;
	int ret;
	bool running = true;

	ASSERT_EQ(0, vu_dma_alloc(&self->iommu, CONC_PAGES * PAGE, VU_DMA_RW, &buf));
	memset(&c, 0, sizeof(c));
	c.ring = &self->ring;
	c.buf = &buf;
	c.tmo = self->tmo;
	for (int i = 0; i < CONC_WRITES; i++)
		c.page[i] = (i * 5 + 3) % CONC_PAGES;	/* 5 and 96 coprime */
	r[0] = rg(buf.iova, buf.size);
	r[1] = rg(self->ring.cq.iova, self->ring.cq.size);
	dt_start(_metadata, self, r, 2, PAGE);

	ASSERT_EQ(0, pthread_create(&th, NULL, conc_worker, &c));
	while (running) {
		int done = __atomic_load_n(&c.done, __ATOMIC_ACQUIRE);

		running = done < CONC_WRITES && !c.err;
		memset(bm, 0, sizeof(bm));
		cq_bm = 0;
		ret = dt_report_raw(&self->dev.vdev, buf.iova, buf.size, PAGE, bm);
		if (!ret)
			ret = dt_report_raw(&self->dev.vdev, r[1].iova, r[1].length,
					    PAGE, &cq_bm);
		if (ret) {
			c.err = ret;
			__atomic_store_n(&c.reports_mid, 1, __ATOMIC_RELEASE);
			break;
		}
		reports++;
		for (size_t w = 0; w < sizeof(bm) / 8; w++) {
			dup += __builtin_popcountll(uni[w] & bm[w]);
			uni[w] |= bm[w];
		}
		cq_uni |= cq_bm;
		/* every write completed before this report began is in */
		for (int i = 0; i < done; i++)
			if (!bm_test(uni, c.page[i]) && fn++ < MAX_LOGGED)
				ksft_print_msg("report %u: write %d (page %d) completed before it, never reported\n",
					       reports, i, c.page[i]);
		if (done >= CONC_BATCH)
			__atomic_store_n(&c.reports_mid, 1, __ATOMIC_RELEASE);
		usleep(500);	/* leave the (TCG) CPU to the device too */
	}
	pthread_join(th, NULL);
	ASSERT_EQ(0, c.err) TH_LOG("%s", c.why[0] ? c.why : errname(c.err));
	/* after the last write: one more report catches everything */
	memset(bm, 0, sizeof(bm));
	ASSERT_EQ(0, dt_report_raw(&self->dev.vdev, buf.iova, buf.size, PAGE, bm));
	cq_bm = 0;
	ASSERT_EQ(0, dt_report_raw(&self->dev.vdev, r[1].iova, r[1].length, PAGE, &cq_bm));
	reports++;
	for (size_t w = 0; w < sizeof(bm) / 8; w++) {
		dup += __builtin_popcountll(uni[w] & bm[w]);
		uni[w] |= bm[w];
	}
	cq_uni |= cq_bm;
	for (int p = 0; p < CONC_PAGES; p++) {
		bool written = false;

		for (int i = 0; i < CONC_WRITES; i++)
			written |= c.page[i] == p;
		if (written && !bm_test(uni, p) && fn++ < MAX_LOGGED)
			ksft_print_msg("page %d written, never reported\n", p);
		if (!written && bm_test(uni, p) && fp++ < MAX_LOGGED)
			ksft_print_msg("page %d reported, never written (false positive)\n", p);
	}
	ksft_print_msg("concurrent: %u reports (both windows) during %d writes; %u false negatives, %u false positives, %u pages reported twice\n",
		       reports, CONC_WRITES, fn, fp, dup);
	self->st.reports += reports;
	self->st.expected += CONC_WRITES + 1;
	self->st.fn += fn;
	self->st.fp += fp;
	ASSERT_LE(2u, reports);
	ASSERT_EQ(0u, fn);
	ASSERT_EQ(0u, fp);
	/* each page was written once: a second report of it is a false positive */
	ASSERT_EQ(0u, dup) TH_LOG("pages written once but reported twice: not read-and-clear");
	ASSERT_EQ(1ull, cq_uni) TH_LOG("CQ page: union 0x%llx", (unsigned long long)cq_uni);
	self->m.n = 0;
	dt_stop(_metadata, self);
	vu_dma_free(&self->iommu, &buf);
}

TEST_HARNESS_MAIN
