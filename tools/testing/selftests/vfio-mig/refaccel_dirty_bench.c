// SPDX-License-Identifier: GPL-2.0-only
/*
 * refaccel_dirty_bench: how long VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT of
 * one refaccel function takes, against reading a bitmap of the same size
 * from memory in the same run.
 *
 *   refaccel_dirty_bench [options] [BDF]
 *
 *   --sizes LIST        tracked range sizes, comma separated, K/M/G/T
 *                       suffixes, multiples of 256K (default 1G,16G)
 *   --patterns LIST     any of clean,sparse,dense (default all three)
 *   --reps N            timed reports per row (default 3)
 *   --mem-reps N        timed memory reads per row (default 9)
 *   --sparse-stride S   bytes between the pages of the sparse pattern
 *                       (default 2M: one dirty page per 2 MiB)
 *   --iova ADDR         start of the tracked range (default 0x1000000000)
 *   --json FILE         also write the results as JSON
 *   --no-warmup         skip the untimed warm-up pass (see below)
 *   -v                  per-repetition times on stderr
 *
 * Without BDF: the first function bound to refaccel-vfio-pci (REFACCEL_BDF
 * overrides, as for every test here).  VFIO_MIG_BACKEND picks the backend.
 *
 * Per size: DMA_LOGGING_START with one range [iova, iova + size) at 4 KiB
 * pages (a tracked range needs no IOMMU mapping); then per pattern:
 *
 *   clean   nothing marked: the cost of walking an empty log
 *   sparse  the page at offset 0x5000 of every --sparse-stride block
 *           (default: one page per 2 MiB, 512 per GiB; 0x5000 so that the
 *           marks are not all bit 0 of the device's 32-page words)
 *   dense   every page of the range
 *
 * The pattern is made by the model's test registers (testctl=on):
 * TEST_DT_MARK/STRIDE/COUNT mark pages as if the device had written them.
 * Each repetition marks, then times one REPORT of the whole range into a
 * zeroed user bitmap (page_size 4096), then checks that the bitmap holds
 * exactly the marked pages and that a second REPORT finds nothing (the log
 * is read and cleared).  A wrong bitmap or a failing ioctl is an error.
 *
 * The memory baseline: popcount of every 64-bit word of a malloc'd,
 * pre-faulted (so: warm) buffer of the same byte size as the report's
 * bitmap (size / 4096 / 8 bytes), repeated --mem-reps times right after
 * the row's reports.  Before the timed sizes, one untimed pass of every
 * pattern over a 64 MiB range (checked like the others) warms up the code
 * paths: under TCG the first run of a path pays for its translation, which
 * otherwise lands in whichever row runs it first.  The table gives the median of the reports and the
 * median of the memory reads, and their ratio.  There are no thresholds:
 * the program reports, it never fails on speed.
 *
 * Exit status: 0 done, 1 an error (wrong bitmap, ioctl failure),
 * 2 usage, 4 SKIP (no suitable function, DMA logging not offered, or no
 * test registers); the last line is "RESULT: PASS|FAIL|SKIP (...)".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "bench_util.h"
#include "mig_util.h"
#include "refaccel_lib.h"

#define PAGE		((uint64_t)4096)
#define SPARSE_OFF	((uint64_t)0x5000)
#define MAX_SIZES	8
#define MAX_REPS	32
#define SIZE_ALIGN	(64 * PAGE)	/* whole u64 words of bitmap */
#define CANARY_WORDS	8
#define CANARY		0x5a5aa5a5c3c33c3cull
#define DEFAULT_IOVA	0x1000000000ull	/* 64 GiB, clear of the MSI window */
#define WARMUP_SIZE	(64ull << 20)

enum pat { PAT_CLEAN, PAT_SPARSE, PAT_DENSE, NPAT };
static const char *const pat_name[NPAT] = { "clean", "sparse", "dense" };

struct opts {
	uint64_t sizes[MAX_SIZES];
	int nsizes;
	bool pat[NPAT];
	int reps;
	int mem_reps;
	uint64_t sparse_stride;
	uint64_t iova;
	const char *json;
	const char *bdf;
	bool verbose;
	bool no_warmup;
};

struct row {
	uint64_t size;
	enum pat pat;
	uint64_t dirty;			/* pages marked per repetition */
	int nrep;
	double rep_ns[MAX_REPS];	/* timed reports */
	double mark_ns[MAX_REPS];	/* TEST_DT_COUNT write */
	double clear_ns[MAX_REPS];	/* the following (clean) report */
	double rep_med, rep_min, mark_med, clear_med;
	double mem_ns[MAX_REPS];
	double mem_med, mem_min;
	int err;			/* 0, or a positive errno */
	char what[160];			/* what failed */
};

static volatile uint64_t sink;

static int log_start(struct ra_dev *d, uint64_t iova, uint64_t size,
		     uint64_t *page_size)
{
	struct vfio_device_feature_dma_logging_range range = {
		.iova = iova,
		.length = size,
	};
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = PAGE,
		.num_ranges = 1,
		.ranges = (uintptr_t)&range,
	};
	int ret;

	ret = mig_feature(&d->vdev, VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl, sizeof(ctl));
	*page_size = ctl.page_size;
	return ret;
}

static int log_stop(struct ra_dev *d)
{
	return mig_feature(&d->vdev, VFIO_DEVICE_FEATURE_SET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

/* REPORT [iova, iova + size) into @bm; *ns: time of the ioctl alone. */
static int log_report(struct ra_dev *d, uint64_t iova, uint64_t size,
		      uint64_t *bm, double *ns)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = iova,
		.length = size,
		.page_size = PAGE,
		.bitmap = (uintptr_t)bm,
	};
	double t0;
	int ret;

	t0 = bu_now_ns();
	ret = mig_feature(&d->vdev, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep, sizeof(rep));
	*ns = bu_now_ns() - t0;
	return ret;
}

/* The pattern's marks: first offset, stride and count. */
static uint64_t pattern(const struct opts *o, enum pat p, uint64_t size,
			uint64_t *off, uint64_t *stride)
{
	switch (p) {
	case PAT_SPARSE:
		*off = SPARSE_OFF;
		*stride = o->sparse_stride;
		return size > SPARSE_OFF ?
		       (size - SPARSE_OFF - 1) / o->sparse_stride + 1 : 0;
	case PAT_DENSE:
		*off = 0;
		*stride = PAGE;
		return size / PAGE;
	default:
		*off = 0;
		*stride = PAGE;
		return 0;
	}
}

/*
 * The bitmap the report must give: each mark's page, widened to the
 * tracking granule @gran (bytes) that LOGGING_START returned, since the
 * report then replicates each granule's bit over its 4 KiB pages.
 */
static uint64_t expect_bitmap(uint64_t *bm, uint64_t nwords, uint64_t off,
			      uint64_t stride, uint64_t count, uint64_t gran)
{
	uint64_t gp = gran / PAGE, npages = nwords * 64, set = 0;

	memset(bm, 0, nwords * 8);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t first = (off + i * stride) / PAGE / gp * gp;

		for (uint64_t p = first; p < first + gp && p < npages; p++)
			bm[p / 64] |= 1ull << (p % 64);
	}
	for (uint64_t w = 0; w < nwords; w++)
		set += __builtin_popcountll(bm[w]);
	return set;
}

/* 0, or -EBADMSG after printing where @got differs from @want. */
static int check_bitmap(const uint64_t *got, const uint64_t *want,
			uint64_t nwords, uint64_t iova, const char *what)
{
	uint64_t missing = 0, extra = 0, shown = 0;

	if (!memcmp(got, want, nwords * 8))
		goto canary;
	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t diff = got[w] ^ want[w];

		if (!diff)
			continue;
		missing += __builtin_popcountll(diff & want[w]);
		extra += __builtin_popcountll(diff & got[w]);
		for (int b = 0; b < 64 && shown < 8; b++) {
			uint64_t p = w * 64 + b;

			if (!(diff >> b & 1))
				continue;
			fprintf(stderr, "#   %s: page %" PRIu64 " (IOVA 0x%" PRIx64
				") %s\n", what, p, iova + p * PAGE,
				want[w] >> b & 1 ? "marked but not reported" :
				"reported but not marked");
			shown++;
		}
	}
	fprintf(stderr, "# %s: wrong bitmap: %" PRIu64 " marked pages missing, %"
		PRIu64 " unmarked pages reported\n", what, missing, extra);
	return -EBADMSG;
canary:
	for (int i = 0; i < CANARY_WORDS; i++) {
		if (got[nwords + i] != CANARY) {
			fprintf(stderr, "# %s: REPORT wrote past the end of the bitmap (word %" PRIu64 " + %d = 0x%" PRIx64 ")\n",
				what, nwords, i, got[nwords + i]);
			return -EBADMSG;
		}
	}
	return 0;
}

/* The baseline: popcount of every word of @buf, timed. */
static double mem_read(const uint64_t *buf, uint64_t nwords)
{
	uint64_t sum = 0;
	double t0 = bu_now_ns();

	for (uint64_t w = 0; w < nwords; w++)
		sum += __builtin_popcountll(buf[w]);
	sink += sum;
	return bu_now_ns() - t0;
}

static void row_fail(struct row *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void row_fail(struct row *r, int err, const char *fmt, ...)
{
	va_list ap;

	r->err = err < 0 ? -err : err;
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# error: %s: %s (errno %d)\n", r->what,
		strerror(r->err), r->err);
}

static void mark(struct ra_dev *d, uint64_t iova, uint64_t stride,
		 uint64_t count)
{
	ra_wr64(d, REFACCEL_REG_TEST_DT_MARK_LO, iova);
	ra_wr(d, REFACCEL_REG_TEST_DT_STRIDE, (uint32_t)stride);
	ra_wr(d, REFACCEL_REG_TEST_DT_COUNT, (uint32_t)count);
}

/*
 * One row: @reps times mark the pattern, time one REPORT, check it, check
 * that a second REPORT is empty; then time the memory baseline.
 */
static void run_row(const struct opts *o, struct ra_dev *d, struct row *r,
		    int reps, uint64_t gran, uint64_t *bm, uint64_t *want,
		    const uint64_t *membuf)
{
	uint64_t nwords = r->size / PAGE / 64, off, stride, count;
	char what[96], sz[24], t1[24], t2[24], t3[24];
	int ret;

	count = pattern(o, r->pat, r->size, &off, &stride);
	r->dirty = expect_bitmap(want, nwords, off, stride, count, gran);
	bu_fmt_size(r->size, sz, sizeof(sz));
	snprintf(what, sizeof(what), "%s %s", sz, pat_name[r->pat]);

	for (int i = 0; i < reps; i++) {
		memset(bm, 0, nwords * 8);
		for (int c = 0; c < CANARY_WORDS; c++)
			bm[nwords + c] = CANARY;
		r->mark_ns[i] = 0;
		if (count) {
			double t0 = bu_now_ns();

			mark(d, o->iova + off, stride, count);
			r->mark_ns[i] = bu_now_ns() - t0;
		}
		ret = log_report(d, o->iova, r->size, bm, &r->rep_ns[i]);
		if (ret) {
			row_fail(r, ret, "%s: DMA_LOGGING_REPORT (rep %d)",
				 what, i + 1);
			return;
		}
		ret = check_bitmap(bm, want, nwords, o->iova, what);
		if (ret) {
			row_fail(r, ret, "%s: rep %d: report does not match the marks",
				 what, i + 1);
			return;
		}
		/* Read and clear: nothing may be left. */
		memset(bm, 0, nwords * 8);
		ret = log_report(d, o->iova, r->size, bm, &r->clear_ns[i]);
		if (ret) {
			row_fail(r, ret, "%s: second DMA_LOGGING_REPORT (rep %d)",
				 what, i + 1);
			return;
		}
		memset(want, 0, nwords * 8);
		ret = check_bitmap(bm, want, nwords, o->iova, what);
		if (ret) {
			row_fail(r, ret, "%s: rep %d: second report not empty (log not cleared)",
				 what, i + 1);
			return;
		}
		if (i + 1 < reps)
			expect_bitmap(want, nwords, off, stride, count, gran);
		r->nrep++;
		if (o->verbose)
			fprintf(stderr, "# %s rep %d: mark %s, report %s, then empty report %s\n",
				what, i + 1, bu_fmt_ns(r->mark_ns[i], t1, sizeof(t1)),
				bu_fmt_ns(r->rep_ns[i], t2, sizeof(t2)),
				bu_fmt_ns(r->clear_ns[i], t3, sizeof(t3)));
	}
	r->rep_med = bu_median(r->rep_ns, r->nrep);
	r->rep_min = bu_minimum(r->rep_ns, r->nrep);
	r->mark_med = bu_median(r->mark_ns, r->nrep);
	r->clear_med = bu_median(r->clear_ns, r->nrep);

	mem_read(membuf, nwords);	/* once untimed */
	for (int i = 0; i < o->mem_reps; i++)
		r->mem_ns[i] = mem_read(membuf, nwords);
	r->mem_med = bu_median(r->mem_ns, o->mem_reps);
	r->mem_min = bu_minimum(r->mem_ns, o->mem_reps);
}

static void print_table(const struct row *rows, int n)
{
	char sz[24], t1[24], t2[24], t3[24];

	printf("%-6s %-7s %11s %12s %12s %10s %12s\n", "size", "pattern",
	       "dirty pages", "report", "memory read", "ratio", "mark");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		bu_fmt_size(r->size, sz, sizeof(sz));
		if (r->err) {
			printf("%-6s %-7s %11" PRIu64 "  ERROR: %s: %s\n", sz,
			       pat_name[r->pat], r->dirty, r->what,
			       strerror(r->err));
			continue;
		}
		printf("%-6s %-7s %11" PRIu64 " %12s %12s %10.1f %12s\n", sz,
		       pat_name[r->pat], r->dirty,
		       bu_fmt_ns(r->rep_med, t1, sizeof(t1)),
		       bu_fmt_ns(r->mem_med, t2, sizeof(t2)),
		       r->mem_med > 0 ? r->rep_med / r->mem_med : 0,
		       r->dirty ? bu_fmt_ns(r->mark_med, t3, sizeof(t3)) : "-");
	}
}

static int write_json(const char *path, const struct opts *o,
		      const struct ra_dev *d, uint64_t gran,
		      const struct row *rows, int n, const char *result)
{
	struct utsname u;
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	uname(&u);
	fprintf(f, "{\n  \"tool\": \"refaccel_dirty_bench\",\n");
	fprintf(f, "  \"kernel\": \"%s\",\n  \"bdf\": \"%s\",\n  \"driver\": \"%s\",\n",
		u.release, d->vdev.bdf, d->driver);
	fprintf(f, "  \"backend\": \"%s\",\n", vu_backend_name(d->vdev.iommu->backend));
	fprintf(f, "  \"iova\": %" PRIu64 ",\n  \"page_size\": %" PRIu64 ",\n", o->iova, PAGE);
	fprintf(f, "  \"tracking_page_size\": %" PRIu64 ",\n", gran);
	fprintf(f, "  \"sparse_stride\": %" PRIu64 ",\n  \"sparse_offset\": %" PRIu64 ",\n",
		o->sparse_stride, SPARSE_OFF);
	fprintf(f, "  \"report_stat\": \"median\",\n  \"mem_stat\": \"median\",\n");
	fprintf(f, "  \"mem_read\": \"popcount of a pre-faulted buffer of the bitmap's size\",\n");
	fprintf(f, "  \"result\": \"%s\",\n  \"rows\": [", result);
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		fprintf(f, "%s\n    {\"size\": %" PRIu64 ", \"pattern\": \"%s\", \"dirty_pages\": %" PRIu64,
			i ? "," : "", r->size, pat_name[r->pat], r->dirty);
		fprintf(f, ", \"bitmap_bytes\": %" PRIu64, r->size / PAGE / 8);
		if (r->err) {
			fprintf(f, ", \"error\": \"%s\", \"errno\": %d}", r->what, r->err);
			continue;
		}
		fprintf(f, ", \"report_ns\": %.0f, \"report_min_ns\": %.0f",
			r->rep_med, r->rep_min);
		fprintf(f, ", \"mem_ns\": %.0f, \"mem_min_ns\": %.0f, \"ratio\": %.3f",
			r->mem_med, r->mem_min,
			r->mem_med > 0 ? r->rep_med / r->mem_med : 0);
		fprintf(f, ", \"mark_ns\": %.0f, \"empty_after_ns\": %.0f",
			r->mark_med, r->clear_med);
		fprintf(f, ", \"report_samples_ns\": ");
		bu_json_arr(f, r->rep_ns, r->nrep);
		fprintf(f, ", \"mem_samples_ns\": ");
		bu_json_arr(f, r->mem_ns, o->mem_reps);
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) ? -errno : 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--sizes 1G,16G] [--patterns clean,sparse,dense] [--reps N]\n"
		"       [--mem-reps N] [--sparse-stride 2M] [--iova ADDR] [--json FILE]\n"
		"       [--no-warmup] [-v] [BDF]\n",
		prog);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "patterns", required_argument, NULL, 'p' },
		{ "reps", required_argument, NULL, 'r' },
		{ "mem-reps", required_argument, NULL, 'm' },
		{ "sparse-stride", required_argument, NULL, 'S' },
		{ "iova", required_argument, NULL, 'i' },
		{ "json", required_argument, NULL, 'j' },
		{ "no-warmup", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *list, *tok, *save;
	int c;

	memset(o, 0, sizeof(*o));
	o->sizes[0] = 1ull << 30;
	o->sizes[1] = 16ull << 30;
	o->nsizes = 2;
	o->pat[PAT_CLEAN] = o->pat[PAT_SPARSE] = o->pat[PAT_DENSE] = true;
	o->reps = 3;
	o->mem_reps = 9;
	o->sparse_stride = 2ull << 20;
	o->iova = DEFAULT_IOVA;

	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->nsizes = 0;
			list = strdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				uint64_t v;

				if (o->nsizes == MAX_SIZES || bu_parse_size(tok, &v) ||
				    !v || v % SIZE_ALIGN) {
					fprintf(stderr, "bad --sizes entry '%s' (at most %d, multiples of 256K)\n",
						tok, MAX_SIZES);
					free(list);
					return -EINVAL;
				}
				o->sizes[o->nsizes++] = v;
			}
			free(list);
			if (!o->nsizes)
				return -EINVAL;
			break;
		case 'p':
			memset(o->pat, 0, sizeof(o->pat));
			list = strdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				int p;

				for (p = 0; p < NPAT; p++)
					if (!strcmp(tok, pat_name[p]))
						break;
				if (p == NPAT) {
					fprintf(stderr, "bad --patterns entry '%s'\n", tok);
					free(list);
					return -EINVAL;
				}
				o->pat[p] = true;
			}
			free(list);
			break;
		case 'r':
		case 'm': {
			int v = atoi(optarg);

			if (v < 1 || v > MAX_REPS) {
				fprintf(stderr, "--%s: 1..%d\n",
					c == 'r' ? "reps" : "mem-reps", MAX_REPS);
				return -EINVAL;
			}
			*(c == 'r' ? &o->reps : &o->mem_reps) = v;
			break;
		}
		case 'S':
			if (bu_parse_size(optarg, &o->sparse_stride) ||
			    o->sparse_stride % PAGE ||
			    o->sparse_stride <= SPARSE_OFF ||
			    o->sparse_stride > UINT32_MAX) {
				fprintf(stderr, "--sparse-stride: a multiple of 4K above 0x%" PRIx64 ", below 4G\n",
					SPARSE_OFF);
				return -EINVAL;
			}
			break;
		case 'i':
			if (bu_parse_size(optarg, &o->iova) || o->iova % SIZE_ALIGN) {
				fprintf(stderr, "--iova: 256K aligned\n");
				return -EINVAL;
			}
			break;
		case 'j':
			o->json = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'W':
			o->no_warmup = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind > 1)
		return -EINVAL;
	if (argc - optind == 1)
		o->bdf = argv[optind];
	for (int i = 0; i < o->nsizes; i++) {
		if (o->sizes[i] / PAGE > UINT32_MAX ||
		    o->iova + o->sizes[i] < o->iova) {
			fprintf(stderr, "size %" PRIu64 " too large\n", o->sizes[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* One untimed pass of each pattern over WARMUP_SIZE; BU_EXIT_FAIL on error. */
static int warmup(const struct opts *o, struct ra_dev *d, uint64_t *bm,
		  uint64_t *want, const uint64_t *membuf)
{
	struct row r;
	uint64_t g;
	double t0 = bu_now_ns();
	char t1[24];
	int ret, rc = BU_EXIT_PASS;

	ret = log_start(d, o->iova, WARMUP_SIZE, &g);
	if (ret) {
		printf("RESULT: FAIL (warm-up: DMA_LOGGING_START of 64M at IOVA 0x%" PRIx64 ": %s)\n",
		       o->iova, strerror(-ret));
		return BU_EXIT_FAIL;
	}
	if (!g || g % PAGE || (g & (g - 1)))
		g = PAGE;
	for (int p = 0; p < NPAT && !rc; p++) {
		if (!o->pat[p])
			continue;
		memset(&r, 0, sizeof(r));
		r.size = WARMUP_SIZE;
		r.pat = p;
		run_row(o, d, &r, 1, g, bm, want, membuf);
		if (r.err) {
			printf("RESULT: FAIL (warm-up: %s: %s)\n", r.what,
			       strerror(r.err));
			rc = BU_EXIT_FAIL;
		}
	}
	ret = log_stop(d);
	if (ret && !rc) {
		printf("RESULT: FAIL (warm-up: DMA_LOGGING_STOP: %s)\n",
		       strerror(-ret));
		rc = BU_EXIT_FAIL;
	}
	fprintf(stderr, "# warm-up pass (64M, untimed) took %s\n",
		bu_fmt_ns(bu_now_ns() - t0, t1, sizeof(t1)));
	return rc;
}

/* Is the function's DMA logging there?  0, or the errno of the probe. */
static int probe_logging(struct ra_dev *d)
{
	static const uint32_t f[] = {
		VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
		VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
		VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		int ret = mig_feature(&d->vdev, VFIO_DEVICE_FEATURE_PROBE | f[i], NULL, 0);

		if (ret)
			return ret;
	}
	return 0;
}

/* Do the test registers of TEST_DT_* exist (testctl=on, a model with them)? */
static bool have_mark_regs(struct ra_dev *d)
{
	const uint64_t probe = 0x123456789000ull;
	bool ok;

	if (!(ra_rd(d, REFACCEL_REG_CAPS) & REFACCEL_CAP_TESTCTL))
		return false;
	ra_wr64(d, REFACCEL_REG_TEST_DT_MARK_LO, probe);
	ra_wr(d, REFACCEL_REG_TEST_DT_STRIDE, 0x3000);
	ok = ra_rd64(d, REFACCEL_REG_TEST_DT_MARK_LO) == probe &&
	     ra_rd(d, REFACCEL_REG_TEST_DT_STRIDE) == 0x3000;
	ra_wr64(d, REFACCEL_REG_TEST_DT_MARK_LO, 0);
	ra_wr(d, REFACCEL_REG_TEST_DT_STRIDE, 0);
	return ok;
}

int main(int argc, char **argv)
{
	struct row rows[MAX_SIZES * NPAT];
	struct vu_iommu iommu;
	struct ra_dev dev;
	struct ra_found f;
	struct opts o;
	struct utsname u;
	const char *bdf = NULL;
	uint64_t gran = PAGE, maxwords = 0, *bm = NULL, *want = NULL, *membuf = NULL;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int nrows = 0, ret, rc = BU_EXIT_PASS;
	char sz[24], t1[24];
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_opts(argc, argv, &o)) {
		usage(argv[0]);
		return BU_EXIT_USAGE;
	}

	if (o.bdf) {
		bdf = o.bdf;
	} else {
		ra_discover(&f);
		for (int i = 0; i < f.n && !bdf; i++)
			if (ra_driver_is_variant(f.driver[i]))
				bdf = f.bdf[i];
		if (!bdf)
			return bu_skip("no function bound to refaccel-vfio-pci%s%s",
				    f.n ? "" : ": ", f.n ? "" : f.why);
	}

	ret = vu_iommu_init(&iommu, vu_backend_from_env());
	if (ret) {
		printf("RESULT: FAIL (iommu init: %s)\n", strerror(-ret));
		return BU_EXIT_FAIL;
	}
	ret = ra_open(&iommu, bdf, &dev);
	if (ret) {
		printf("RESULT: FAIL (open %s: %s)\n", bdf, strerror(-ret));
		return BU_EXIT_FAIL;
	}
	/* FLR: no test flag (e.g. TEST_DT_LOSE) left from an earlier test. */
	ret = ra_reset(&dev);
	if (ret) {
		printf("RESULT: FAIL (reset %s: %s)\n", bdf, strerror(-ret));
		return BU_EXIT_FAIL;
	}
	uname(&u);
	printf("refaccel DMA dirty-tracking report benchmark\n");
	printf("  function  %s (%s), backend %s, kernel %s\n", dev.vdev.bdf,
	       dev.driver, vu_backend_name(iommu.backend), u.release);

	ret = probe_logging(&dev);
	if (ret && ret != -ENOTTY && ret != -EOPNOTSUPP) {
		printf("RESULT: FAIL (VFIO_DEVICE_FEATURE PROBE of DMA_LOGGING_*: %s)\n",
		       strerror(-ret));
		rc = BU_EXIT_FAIL;
		goto out;
	}
	if (ret) {
		rc = bu_skip("DMA logging not offered by %s on %s: VFIO_DEVICE_FEATURE PROBE of DMA_LOGGING_* gives %s%s",
			  dev.driver, u.release, strerrorname_np(-ret) ?: "?",
			  ret == -ENOTTY ? ", no log_ops (stock kernel without IOMMUFD_DRIVER?)" : "");
		goto out;
	}
	if (!have_mark_regs(&dev)) {
		rc = bu_skip("no TEST_DT_MARK/STRIDE/COUNT registers: the model needs testctl=on (CAPS 0x%x) and DT_NEXT/TEST_DT support",
			  ra_rd(&dev, REFACCEL_REG_CAPS));
		goto out;
	}
	ra_wr(&dev, REFACCEL_REG_TEST_FLAGS, 0);

	maxwords = o.no_warmup ? 0 : WARMUP_SIZE / PAGE / 64;
	for (int i = 0; i < o.nsizes; i++)
		if (o.sizes[i] / PAGE / 64 > maxwords)
			maxwords = o.sizes[i] / PAGE / 64;
	bm = malloc((maxwords + CANARY_WORDS) * 8);
	want = malloc(maxwords * 8);
	membuf = malloc(maxwords * 8);
	if (!bm || !want || !membuf) {
		printf("RESULT: FAIL (out of memory)\n");
		rc = BU_EXIT_FAIL;
		goto out;
	}
	/* Pre-fault everything; the baseline reads random words. */
	memset(bm, 0, (maxwords + CANARY_WORDS) * 8);
	memset(want, 0, maxwords * 8);
	for (uint64_t w = 0; w < maxwords; w++)
		membuf[w] = ra_rand(&rng);

	printf("  range     IOVA 0x%" PRIx64 " + size, report page 4 KiB, %d report(s) and %d memory read(s) per row, medians\n",
	       o.iova, o.reps, o.mem_reps);
	printf("  sparse    one page per %s (offset 0x%" PRIx64 " in each); dense: every page\n",
	       bu_fmt_size(o.sparse_stride, sz, sizeof(sz)), SPARSE_OFF);
	printf("  memory    popcount of a pre-faulted buffer of the bitmap's size (size/32768 bytes)\n");

	if (!o.no_warmup) {
		rc = warmup(&o, &dev, bm, want, membuf);
		if (rc)
			goto out;
	}

	for (int i = 0; i < o.nsizes; i++) {
		uint64_t size = o.sizes[i], g = 0;

		bu_fmt_size(size, sz, sizeof(sz));
		t0 = bu_now_ns();
		ret = log_start(&dev, o.iova, size, &g);
		if (ret) {
			struct row *r = &rows[nrows++];

			memset(r, 0, sizeof(*r));
			r->size = size;
			r->pat = PAT_CLEAN;
			row_fail(r, ret, "DMA_LOGGING_START of %s at IOVA 0x%" PRIx64,
				 sz, o.iova);
			rc = BU_EXIT_FAIL;
			continue;
		}
		fprintf(stderr, "# %s: DMA_LOGGING_START took %s, page_size %" PRIu64 "\n",
			sz, bu_fmt_ns(bu_now_ns() - t0, t1, sizeof(t1)), g);
		if (g != PAGE) {
			fprintf(stderr, "# note: %s: START returned page_size %" PRIu64
				" for 4096 asked: checking at that granule\n", sz, g);
			if (!g || g % PAGE || (g & (g - 1)))
				g = PAGE;
		}
		gran = g;
		for (int p = 0; p < NPAT; p++) {
			struct row *r;

			if (!o.pat[p])
				continue;
			r = &rows[nrows++];
			memset(r, 0, sizeof(*r));
			r->size = size;
			r->pat = p;
			run_row(&o, &dev, r, o.reps, g, bm, want, membuf);
			if (r->err) {
				rc = BU_EXIT_FAIL;
				break;	/* the log is suspect now: next size */
			}
		}
		ret = log_stop(&dev);
		if (ret) {
			struct row *r = &rows[nrows++];

			memset(r, 0, sizeof(*r));
			r->size = size;
			r->pat = PAT_CLEAN;
			row_fail(r, ret, "DMA_LOGGING_STOP of %s", sz);
			rc = BU_EXIT_FAIL;
		}
	}

	printf("\n");
	print_table(rows, nrows);
	printf("  (report: median DMA_LOGGING_REPORT ioctl of the whole range; memory read: median popcount pass;\n"
	       "   ratio = report / memory read; mark: median time of the TEST_DT_COUNT write that made the pattern)\n");
	if (o.json) {
		ret = write_json(o.json, &o, &dev, gran, rows, nrows,
				 rc ? "FAIL" : "PASS");
		if (ret) {
			fprintf(stderr, "# --json %s: %s\n", o.json, strerror(-ret));
			rc = BU_EXIT_FAIL;
		}
	}
	if (rc)
		printf("RESULT: FAIL (see the ERROR rows and the '# error:' lines)\n");
	else
		printf("RESULT: PASS (every report matched its marks; timings are informational)\n");
out:
	free(bm);
	free(want);
	free(membuf);
	ra_close(&dev);
	vu_iommu_cleanup(&iommu);
	return rc;
}
