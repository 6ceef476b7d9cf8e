// SPDX-License-Identifier: GPL-2.0-only
/*
 * refaccel_mig_bench: what refaccel-vfio-pci's migration costs, each figure
 * against the physical limit measured in the same run, inside the same VM.
 *
 *   refaccel_mig_bench [options] [BDF...]
 *
 *   --quick            one repetition, two pre-copy iterations, one op
 *                      latency, only the first function: a few seconds, for
 *                      `make check` (the program must not rot; its numbers
 *                      mean little there)
 *   --reps N           timed repetitions per row (default 5, --quick 1)
 *   --iterations N     pre-copy passes after the initial one (default 6,
 *                      --quick 2)
 *   --hot SIZE         bytes dirtied between two pre-copy reads (default
 *                      SRAM/16)
 *   --latencies LIST   op latencies of the quiesce rows, comma separated,
 *                      with ns/us/ms suffixes (default 1ms,10ms,100ms,
 *                      --quick 5ms)
 *   --json FILE        also write every sample and series as JSON
 *   -v                 per-repetition lines on stderr
 *
 * Without BDF: every function bound to refaccel-vfio-pci (REFACCEL_BDF
 * narrows that down, as for every test here).  VFIO_MIG_BACKEND picks the
 * backend.
 *
 * Transfer, on each function with an SRAM size not seen yet (so a VM with
 * functions of sram-size=1M, 4M, 16M and 64M gives one row each): SRAM is
 * filled with random bytes; then, per repetition, from STOP the time of
 * STOP -> STOP_COPY, reading the data_fd to EOF in 1 MiB reads (QEMU's
 * default buffer) and STOP_COPY -> STOP ("save"), and of STOP -> RESUMING,
 * writing the stream back and RESUMING -> STOP ("load"); against a memcpy()
 * of the same SRAM bytes from and to the BAR2 mmap while RUNNING, the
 * fastest a user can move those bytes.  An untimed pass first pays for
 * TCG's translation of every path and checks that the load put back every
 * byte (a benchmark of a wrong load would be worthless).
 *
 * Pre-copy, on the first function: RUNNING -> PRE_COPY, the initial pass,
 * then --iterations passes, each after dirtying the hot set (--hot bytes at
 * a quarter of SRAM) once, then the hot set once more after the last read,
 * then PRE_COPY_P2P -> STOP_COPY to EOF.  Four workloads:
 *
 *   idle        nothing is written
 *   cpu         the guest writes whole pages of the hot set through BAR2
 *   cpu-sparse  the guest writes 8 bytes into each page of the hot set
 *   device      the device LOADs the hot set from host memory into SRAM
 *
 * Per pass it records what PRECOPY_INFO announced and what the read gave
 * (the convergence series); then the STOP_COPY part's bytes and its MEM
 * payload against the bytes dirtied (pages touched x 4 KiB) and written
 * since the last pre-copy read.  An idle device is held against a cold
 * STOP_COPY of the same function.
 *
 * Quiesce, on the first function (needs testctl=on for TEST_OP_LATENCY):
 * per latency L, one NOP of L is submitted, and once the device is busy
 * the RUNNING -> RUNNING_P2P arc is timed; the driver's own account of the
 * quiesce (REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE: microseconds, descriptors
 * in flight) is recorded with it.  Row 0 is the same arc with nothing in
 * flight.  All of it twice: in the quiesce mode DRAIN (the op may finish
 * first, so the arc follows L) and PARK (it is stopped at once and goes
 * on after RUNNING, so the arc should not).  Then, per L, on a device with
 * CAPS.PRI (pri=on, else a SKIP row): a FILL of L whose destination page
 * is not mapped in the IOMMU waits, once L has run, on its unanswered page
 * request (PRI_PENDING); the arc is timed (the driver's ABORT_PRI must
 * withdraw the request: no answer comes), then the page is mapped and back
 * in RUNNING the put-back FILL runs anew and completes.
 *
 * Ratios are measured / baseline of medians.  There are no thresholds: the
 * program reports, it never fails on speed.  Exit status 0 done, 1 an error
 * (an ioctl failed, a load did not restore SRAM, a stream did not parse),
 * 2 usage, 4 SKIP (no function bound to refaccel-vfio-pci, or it offers no
 * migration); the last line is "RESULT: PASS|FAIL|SKIP (...)".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "bench_util.h"
#include "mig_util.h"
#include "refaccel_lib.h"

#define PAGE		((uint64_t)4096)
#define CHUNK		(1u << 20)	/* data_fd read/write size */
#define MAX_REPS	32
#define MAX_FUNCS	RA_MAX_DEVS
#define MAX_ITERS	32
#define MAX_LAT		8
#define MAX_RATIOS	64
#define SPARSE_BYTES	8		/* cpu-sparse: bytes per page */
#define TAG		0xbe0000000000ull
#define WHAT_LEN	160

struct opts {
	bool quick;
	int reps;
	int iters;
	uint64_t hot;
	uint64_t lat_ns[MAX_LAT];
	int nlat;
	const char *json;
	const char *bdf[MAX_FUNCS];
	int nbdf;
	bool verbose;
};

/* One function's SRAM saved and loaded, against memcpy. */
struct xfer {
	char bdf[VU_BDF_LEN];
	uint32_t sram_size;
	size_t stream_bytes;
	int n;
	double save_ns[MAX_REPS], arc_ns[MAX_REPS], load_ns[MAX_REPS];
	double from_ns[MAX_REPS], to_ns[MAX_REPS];
	double save, arc, load, from, to;	/* medians */
	int err;
	char what[WHAT_LEN];
};

enum pc_mode { PC_IDLE, PC_CPU, PC_CPU_SPARSE, PC_DEV, NPC };
static const char *const pc_name[NPC] = {
	"idle", "cpu", "cpu-sparse", "device",
};
static const char *const pc_desc[NPC] = {
	"idle device",
	"guest writes whole pages through BAR2",
	"guest writes 8 bytes per page through BAR2",
	"device LOADs into SRAM",
};

/* One pre-copy session and its STOP_COPY tail. */
struct precopy {
	enum pc_mode mode;
	int passes;			/* initial + iterations read */
	uint64_t pending[MAX_ITERS + 1];	/* PRECOPY_INFO before each read */
	uint64_t read[MAX_ITERS + 1];	/* bytes each read gave */
	uint64_t announced;		/* PRECOPY_INFO dirty before STOP_COPY */
	uint64_t stop_copy;		/* bytes of the STOP_COPY part */
	uint64_t stop_mem;		/* MEM payload bytes in it */
	int stop_recs;
	uint64_t dirtied;		/* pages touched since the last read, bytes */
	uint64_t written;		/* bytes stored since the last read */
	double stop_ns;			/* PRE_COPY_P2P -> STOP_COPY, read to EOF */
	int err;
	char what[WHAT_LEN];
};

/* RUNNING -> RUNNING_P2P with one op of lat_ns in flight. */
struct quiesce {
	uint64_t lat_ns;		/* 0: nothing in flight */
	bool park;			/* REFACCEL_QUIESCE_MODE_PARK, else DRAIN */
	bool pri;			/* waiting on a page request (ABORT_PRI) */
	int n;
	double arc_ns[MAX_REPS];
	double left_ns[MAX_REPS];	/* op time left when the arc began;
					 * pri: time the request was pending */
	double drv_ns[MAX_REPS];	/* the driver's last_us */
	uint32_t in_flight;		/* after the last quiesce */
	double arc, left, drv;
	int err;
	char what[WHAT_LEN];
};

struct ratio {
	char key[48];
	char what[96];
	const char *unit;		/* "ns" or "bytes" */
	double measured, baseline;
};

struct bench {
	struct opts o;
	struct vu_iommu iommu;
	struct xfer xf[MAX_FUNCS];
	int nxf;
	size_t cold_bytes;		/* cold STOP_COPY of the first function */
	struct precopy pc[NPC];
	bool pc_run;
	uint64_t hot_off, hot;
	struct quiesce q[3 * (MAX_LAT + 1)];	/* DRAIN, PARK, PRI abort */
	int nq;
	char q_skip[WHAT_LEN];		/* why the quiesce rows did not run */
	uint64_t rng;
};

static void set_err(int *errp, char *what, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_err(int *errp, char *what, int err, const char *fmt, ...)
{
	va_list ap;

	*errp = err < 0 ? -err : err;
	va_start(ap, fmt);
	vsnprintf(what, WHAT_LEN, fmt, ap);
	va_end(ap);
	fprintf(stderr, "# error: %s: %s (errno %d)\n", what, strerror(*errp),
		*errp);
}

/* Reading the data_fd to EOF (or ENOMSG in PRE_COPY): bytes it gave. */
static int read_part(int fd, struct mig_buf *b, bool want_eof, uint64_t *got)
{
	size_t before = b->len;
	bool eof;
	int ret;

	ret = mig_read_stream(fd, b, CHUNK, &eof);
	*got = b->len - before;
	if (!ret && eof != want_eof)
		ret = want_eof ? -ENOMSG : -EPROTO;
	return ret;
}

/* ---- transfer: STOP_COPY save and RESUMING load against memcpy ---- */

/* One timed save into @s (emptied first); device in STOP before and after. */
static int timed_save(struct ra_dev *d, struct mig_buf *s, double *save,
		      double *arc)
{
	double t0, t1;
	uint64_t got;
	int fd, ret;

	s->len = 0;	/* keep the allocation: no realloc in the timing */
	t0 = bu_now_ns();
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	t1 = bu_now_ns();
	if (ret)
		return ret;
	ret = read_part(fd, s, true, &got);
	close(fd);
	if (!ret)
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_STOP, NULL);
	*save = bu_now_ns() - t0;
	*arc = t1 - t0;
	return ret;
}

static void bench_xfer(struct bench *b, struct ra_dev *d, struct xfer *x,
		       int reps)
{
	size_t size = d->sram_size;
	struct mig_buf s = { 0 };
	uint8_t *want = malloc(size), *buf = malloc(size);
	void *sram = (void *)d->sram;	/* memcpy() takes no volatile */
	char sz[24], t[5][24];
	double t0, arc;
	int ret;

	snprintf(x->bdf, sizeof(x->bdf), "%s", d->vdev.bdf);
	x->sram_size = size;
	bu_fmt_size(size, sz, sizeof(sz));
	if (!want || !buf) {
		set_err(&x->err, x->what, ENOMEM, "%s: SRAM buffers", sz);
		goto out;
	}
	if (!d->sram_mmapped) {
		set_err(&x->err, x->what, EOPNOTSUPP,
			"%s: BAR2 of %s is not mmappable, no memcpy baseline",
			sz, x->bdf);
		goto out;
	}
	ra_rand_fill(want, size, &b->rng);
	memcpy(sram, want, size);
	memset(buf, 0, size);	/* pre-fault */

	/* Untimed: TCG translates every path once, and the load must work. */
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = timed_save(d, &s, &t0, &arc);
	if (ret) {
		set_err(&x->err, x->what, ret, "%s: warm-up STOP_COPY save", sz);
		goto out;
	}
	memset(sram, 0, size);	/* what the load must undo */
	ret = mig_load(&d->vdev, s.p, s.len, CHUNK);
	if (!ret)
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (ret) {
		set_err(&x->err, x->what, ret, "%s: warm-up RESUMING load", sz);
		goto out;
	}
	memcpy(buf, sram, size);
	if (memcmp(buf, want, size)) {
		set_err(&x->err, x->what, EBADMSG,
			"%s: SRAM after the load differs from SRAM saved", sz);
		goto out;
	}
	x->stream_bytes = s.len;

	for (int i = 0; i < reps; i++) {
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_STOP, NULL);
		if (!ret)
			ret = timed_save(d, &s, &x->save_ns[i], &x->arc_ns[i]);
		if (ret) {
			set_err(&x->err, x->what, ret, "%s: STOP_COPY save (rep %d)",
				sz, i + 1);
			goto out;
		}
		t0 = bu_now_ns();
		ret = mig_load(&d->vdev, s.p, s.len, CHUNK);
		x->load_ns[i] = bu_now_ns() - t0;
		if (!ret)
			ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
		if (ret) {
			set_err(&x->err, x->what, ret, "%s: RESUMING load (rep %d)",
				sz, i + 1);
			goto out;
		}
		/* The same bytes by the CPU: BAR2 to memory and back. */
		t0 = bu_now_ns();
		memcpy(buf, sram, size);
		x->from_ns[i] = bu_now_ns() - t0;
		t0 = bu_now_ns();
		memcpy(sram, buf, size);
		x->to_ns[i] = bu_now_ns() - t0;
		x->n++;
		if (b->o.verbose)
			fprintf(stderr, "# %s %s rep %d: save %s (arc %s), load %s, memcpy from %s, to %s\n",
				x->bdf, sz, i + 1,
				bu_fmt_ns(x->save_ns[i], t[0], sizeof(t[0])),
				bu_fmt_ns(x->arc_ns[i], t[1], sizeof(t[1])),
				bu_fmt_ns(x->load_ns[i], t[2], sizeof(t[2])),
				bu_fmt_ns(x->from_ns[i], t[3], sizeof(t[3])),
				bu_fmt_ns(x->to_ns[i], t[4], sizeof(t[4])));
	}
	x->save = bu_median(x->save_ns, x->n);
	x->arc = bu_median(x->arc_ns, x->n);
	x->load = bu_median(x->load_ns, x->n);
	x->from = bu_median(x->from_ns, x->n);
	x->to = bu_median(x->to_ns, x->n);
out:
	mig_buf_free(&s);
	free(want);
	free(buf);
}

/* ---- pre-copy: what is left for STOP_COPY ---- */

struct work {
	struct ra_dev *d;
	struct ra_ring ring;
	struct vu_dma src;		/* the device mode's LOAD source */
	uint8_t *pages;			/* fresh bytes for the cpu mode */
	bool have_ring;
	uint64_t tag;
};

/* Dirty the hot set once the @mode's way; bytes written and pages touched. */
static int dirty_hot(struct bench *b, struct work *w, enum pc_mode mode,
		     uint64_t *written, uint64_t *dirtied)
{
	uint8_t *sram = (uint8_t *)w->d->sram;
	uint64_t off, n, step = w->d->max_xfer ? w->d->max_xfer : PAGE;
	struct refaccel_cpl cpl;
	int ret;

	*written = *dirtied = 0;
	switch (mode) {
	case PC_IDLE:
		return 0;
	case PC_CPU:
		ra_rand_fill(w->pages, b->hot, &b->rng);
		memcpy(sram + b->hot_off, w->pages, b->hot);
		*written = b->hot;
		break;
	case PC_CPU_SPARSE:
		for (off = 0; off < b->hot; off += PAGE) {
			uint64_t v = ra_rand(&b->rng);

			memcpy(sram + b->hot_off + off + (off / PAGE % 64) * 8,
			       &v, SPARSE_BYTES);
		}
		*written = b->hot / PAGE * SPARSE_BYTES;
		break;
	case PC_DEV:
		ra_rand_fill(w->src.va, b->hot, &b->rng);
		for (off = 0; off < b->hot; off += n) {
			struct refaccel_desc desc;

			n = b->hot - off < step ? b->hot - off : step;
			desc = ra_desc_load(TAG | w->tag++, w->src.iova + off,
					    b->hot_off + off, n);
			ret = ra_run(&w->ring, &desc, &cpl, ra_timeout_ms());
			if (ret)
				return ret;
			if (cpl.status != REFACCEL_CPL_OK)
				return -EIO;
		}
		*written = b->hot;
		break;
	default:
		return -EINVAL;
	}
	*dirtied = b->hot;
	return 0;
}

static void bench_precopy(struct bench *b, struct work *w, struct precopy *p)
{
	struct ra_dev *d = w->d;
	struct mig_buf s = { 0 };
	struct mig_rec_ref *recs = NULL;
	struct mig_rec_span span;
	uint64_t init, dirty, got, wr, dt;
	size_t pre_len;
	double t0;
	int fd = -1, ret, nrecs, max_recs;
	const char *m = pc_name[p->mode];

	if (p->mode == PC_DEV && !w->have_ring) {
		set_err(&p->err, p->what, ENODEV, "%s: no ring for device work", m);
		return;
	}
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	if (ret) {
		set_err(&p->err, p->what, ret, "%s: RUNNING -> PRE_COPY", m);
		return;
	}
	for (int i = 0; i <= b->o.iters; i++) {
		if (i) {
			ret = dirty_hot(b, w, p->mode, &wr, &dt);
			if (ret) {
				set_err(&p->err, p->what, ret, "%s: work before pass %d",
					m, i);
				goto out;
			}
		}
		ret = mig_precopy_info(fd, &init, &dirty);
		if (!ret)
			ret = read_part(fd, &s, false, &got);
		if (ret) {
			set_err(&p->err, p->what, ret, "%s: pre-copy pass %d", m, i);
			goto out;
		}
		p->pending[i] = init + dirty;
		p->read[i] = got;
		p->passes++;
	}
	/* What STOP_COPY must carry: one more round of work after the last read. */
	ret = dirty_hot(b, w, p->mode, &p->written, &p->dirtied);
	if (!ret)
		ret = mig_precopy_info(fd, &init, &p->announced);
	if (!ret)
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL);
	if (ret) {
		set_err(&p->err, p->what, ret, "%s: last work, PRE_COPY -> PRE_COPY_P2P", m);
		goto out;
	}
	pre_len = s.len;
	t0 = bu_now_ns();
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_STOP_COPY, NULL);
	if (!ret)
		ret = read_part(fd, &s, true, &p->stop_copy);
	p->stop_ns = bu_now_ns() - t0;
	if (ret) {
		set_err(&p->err, p->what, ret, "%s: PRE_COPY_P2P -> STOP_COPY, read to EOF", m);
		goto out;
	}
	close(fd);
	fd = -1;
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_STOP, NULL);
	if (ret) {
		set_err(&p->err, p->what, ret, "%s: STOP_COPY -> STOP", m);
		goto out;
	}

	/* The STOP_COPY part, record by record: its MEM payload. */
	max_recs = (int)(s.len / sizeof(struct vmig_rec_hdr)) + 1;
	recs = calloc(max_recs, sizeof(*recs));
	nrecs = recs ? mig_stream_index(s.p, s.len, recs, max_recs) : -ENOMEM;
	if (nrecs <= 0 || recs[nrecs - 1].off + recs[nrecs - 1].size != s.len) {
		set_err(&p->err, p->what, nrecs < 0 ? nrecs : EBADMSG,
			"%s: the saved stream (%zu bytes) does not parse", m, s.len);
		goto out;
	}
	span = mig_stream_span(recs, nrecs, pre_len, s.len);
	p->stop_mem = span.mem_bytes;
	p->stop_recs = span.n;
out:
	if (fd >= 0)
		close(fd);
	ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (ret && !p->err)
		set_err(&p->err, p->what, ret, "%s: back to RUNNING", m);
	free(recs);
	mig_buf_free(&s);
}

/* ---- quiesce: RUNNING -> RUNNING_P2P against the op in flight ---- */

/*
 * Spin (no sleep: a 1 ms op would be over before a 1 ms nap ends) until
 * the op submitted is executing: 0; -EAGAIN if it completed before it was
 * seen (the arc would then measure nothing in flight), -ETIMEDOUT.
 */
static int wait_in_flight(struct ra_dev *d, uint32_t done0)
{
	double end = bu_now_ns() + 1e9;

	while (bu_now_ns() < end) {
		if (ra_rd(d, REFACCEL_REG_STATUS) & REFACCEL_STATUS_BUSY)
			return 0;
		if (ra_rd(d, REFACCEL_REG_CNT_COMPLETED) != done0)
			return -EAGAIN;
	}
	return -ETIMEDOUT;
}

#define QUIESCE_MISSES	5	/* ops over before the arc, per row */

/*
 * Record rep q->n of @q: the arc took @arc_ns, and @left_ns is what the
 * row measures besides (@what: the op's latency left, or how long the
 * page request had waited, at the arc).
 */
static void quiesce_rep(struct bench *b, struct quiesce *q, const char *kind,
			double arc_ns, double left_ns, const char *what)
{
	char t[3][24];
	int i = q->n++;

	q->arc_ns[i] = arc_ns;
	q->left_ns[i] = left_ns;
	if (b->o.verbose)
		fprintf(stderr, "# quiesce %s%" PRIu64 " ns rep %d: arc %s, driver %s, %s %s\n",
			kind, q->lat_ns, i + 1,
			bu_fmt_ns(q->arc_ns[i], t[0], sizeof(t[0])),
			bu_fmt_ns(q->drv_ns[i], t[1], sizeof(t[1])),
			what, bu_fmt_ns(q->left_ns[i], t[2], sizeof(t[2])));
}

static void quiesce_medians(struct quiesce *q)
{
	q->arc = bu_median(q->arc_ns, q->n);
	q->left = bu_median(q->left_ns, q->n);
	q->drv = bu_median(q->drv_ns, q->n);
}

static void bench_quiesce(struct bench *b, struct work *w, struct quiesce *q,
			  int reps)
{
	int misses = 0;

	struct ra_dev *d = w->d;
	struct refaccel_vfio_quiesce qs;
	struct refaccel_cpl cpl;
	double t_sub = 0, t0, t1;
	int ret;

	ra_wr(d, REFACCEL_REG_TEST_OP_LATENCY, (uint32_t)q->lat_ns);
	for (int i = 0; i < reps; i++) {
		if (q->lat_ns) {
			struct refaccel_desc desc = ra_desc_nop(TAG | w->tag++);
			uint32_t done0 = ra_rd(d, REFACCEL_REG_CNT_COMPLETED);

			ret = ra_submit(&w->ring, &desc);
			t_sub = bu_now_ns();
			if (!ret)
				ret = wait_in_flight(d, done0);
			if (ret == -EAGAIN) {
				ret = ra_wait_cpl(&w->ring, &cpl, ra_timeout_ms());
				if (!ret && ++misses < QUIESCE_MISSES) {
					i--;	/* again: this one was too quick */
					continue;
				}
				if (!ret) {
					snprintf(q->what, sizeof(q->what),
						 "quiesce %" PRIu64 " ns: the op completed before the arc began %d times: too short for this VM",
						 q->lat_ns, misses);
					return;
				}
			}
			if (ret) {
				set_err(&q->err, q->what, ret,
					"quiesce %" PRIu64 " ns: submit, wait for BUSY",
					q->lat_ns);
				return;
			}
		}
		t0 = bu_now_ns();
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING_P2P, NULL);
		t1 = bu_now_ns();
		if (ret) {
			set_err(&q->err, q->what, ret,
				"quiesce %" PRIu64 " ns: RUNNING -> RUNNING_P2P",
				q->lat_ns);
			return;
		}
		ret = mig_quiesce_get(&d->vdev, &qs);
		if (!ret) {
			q->drv_ns[i] = qs.last_us * 1e3;
			q->in_flight = qs.last_in_flight;
		}
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
		if (!ret && q->lat_ns)
			ret = ra_wait_cpl(&w->ring, &cpl, ra_timeout_ms());
		if (!ret && q->lat_ns && cpl.status != REFACCEL_CPL_OK)
			ret = -EIO;
		if (ret) {
			set_err(&q->err, q->what, ret,
				"quiesce %" PRIu64 " ns: RUNNING, the op's completion",
				q->lat_ns);
			return;
		}
		quiesce_rep(b, q, "", t1 - t0,
			    q->lat_ns ? q->lat_ns - (t0 - t_sub) : 0, "op left");
	}
	quiesce_medians(q);
}

/*
 * The PRI abort row: per repetition, a FILL of q->lat_ns into page 0 of
 * @pg, left unmapped in the IOMMU, with PRI enabled (by the caller): once
 * its latency has run it asks for the page and waits (PRI_PENDING).  No
 * answer comes, so only the driver's MIG_CTRL.ABORT_PRI ends the timed
 * RUNNING -> RUNNING_P2P; the request must be gone after it (PRI_ABORTED
 * + 1, nothing pending).  Then the page is mapped and back in RUNNING the
 * put-back FILL runs anew (its latency again) and completes OK with its
 * value in the page.  Whatever fails, the device is left RUNNING with
 * nothing of the row in flight.
 */
#define PRI_FILL	0x50524900u	/* "PRI", + the repetition */
#define PRI_ARC_MS	5000		/* a request not withdrawn: ETIMEDOUT */

static void bench_quiesce_pri(struct bench *b, struct work *w,
			      struct quiesce *q, struct ra_pages *pg, int reps)
{
	struct ra_dev *d = w->d;
	uint32_t len = d->max_xfer && d->max_xfer < PAGE ? d->max_xfer : PAGE;
	int tmo = (int)(q->lat_ns / 1000000) + ra_timeout_ms();
	struct refaccel_vfio_quiesce qs;
	struct refaccel_cpl cpl;
	struct refaccel_desc desc;
	double t_req, t0, t1;
	uint32_t aborted, id, v;
	bool submitted = false;
	int ret;

	ra_wr(d, REFACCEL_REG_TEST_OP_LATENCY, (uint32_t)q->lat_ns);
	for (int i = 0; i < reps; i++) {
		desc = ra_desc_fill(TAG | w->tag++, ra_pages_iova(pg, 0), len,
				    PRI_FILL + i);
		ret = ra_pages_unmap(pg, 0);
		memset(pg->va, 0, len);
		ra_wr(d, REFACCEL_REG_INT_STATUS, REFACCEL_INT_PAGE_REQ);
		if (!ret)
			ret = ra_submit(&w->ring, &desc);
		submitted = !ret;
		if (!ret)
			ret = ra_pri_wait(d, -1, &id, tmo);
		t_req = bu_now_ns();
		if (ret) {
			set_err(&q->err, q->what, ret,
				"quiesce PRI %" PRIu64 " ns: submit, wait for the page request",
				q->lat_ns);
			goto clean;
		}
		aborted = ra_rd(d, REFACCEL_REG_PRI_ABORTED);
		t0 = bu_now_ns();
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING_P2P, NULL);
		t1 = bu_now_ns();
		if (ret) {
			set_err(&q->err, q->what, ret,
				"quiesce PRI %" PRIu64 " ns: RUNNING -> RUNNING_P2P, page request pending (not withdrawn?)",
				q->lat_ns);
			goto clean;
		}
		ret = mig_quiesce_get(&d->vdev, &qs);
		if (!ret) {
			q->drv_ns[i] = qs.last_us * 1e3;
			q->in_flight = qs.last_in_flight;
		}
		v = ra_rd(d, REFACCEL_REG_PRI_ABORTED);
		if (ra_pri_pending(d, NULL) || v != aborted + 1) {
			set_err(&q->err, q->what, EPROTO,
				"quiesce PRI %" PRIu64 " ns: in RUNNING_P2P the request is %s, PRI_ABORTED %u -> %u",
				q->lat_ns,
				ra_pri_pending(d, NULL) ? "still pending" : "gone",
				aborted, v);
			goto clean;
		}
		ret = ra_pages_map(pg, 0);
		if (!ret)
			ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
		if (!ret)
			ret = ra_wait_cpl(&w->ring, &cpl, tmo);
		if (!ret)
			submitted = false;
		if (!ret && (cpl.tag != desc.tag || cpl.status != REFACCEL_CPL_OK))
			ret = -EIO;
		if (!ret) {
			memcpy(&v, pg->va, sizeof(v));
			if (v != PRI_FILL + (uint32_t)i)
				ret = -EIO;
		}
		if (ret) {
			set_err(&q->err, q->what, ret,
				"quiesce PRI %" PRIu64 " ns: map the page, RUNNING, the FILL's completion",
				q->lat_ns);
			goto clean;
		}
		quiesce_rep(b, q, "PRI ", t1 - t0, t0 - t_req, "request pending");
	}
	quiesce_medians(q);
	return;

clean:
	/* The page there, the device RUNNING, any request answered: it completes. */
	ra_pages_map(pg, 0);
	mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (ra_pri_pending(d, &id))
		ra_pri_respond(d, id, REFACCEL_PRI_RESP_SUCCESS);
	if (submitted && ra_wait_cpl(&w->ring, &cpl, tmo))
		fprintf(stderr, "# quiesce PRI: the FILL did not complete after the error\n");
}

/*
 * The PRI abort rows, one per op latency, after the DRAIN and PARK rows;
 * one SKIP row (with its reason) where they cannot run.
 */
static void bench_pri(struct bench *b, struct work *w)
{
	struct ra_dev *d = w->d;
	struct ra_pages pg;
	struct quiesce *q;
	const char *why;
	int ret = 0;

	if (!(ra_rd(d, REFACCEL_REG_CAPS) & REFACCEL_CAP_PRI)) {
		ret = -ENODEV;
	} else {
		ret = ra_pages_alloc(&b->iommu, 1, 0, VU_DMA_RW, &pg);
		if (ret && ret != -EINVAL)
			fprintf(stderr, "# quiesce PRI: one page: %s\n", strerror(-ret));
	}
	if (!ret)
		ret = mig_quiesce_set(&d->vdev, PRI_ARC_MS);	/* DRAIN */
	if (ret) {
		q = &b->q[b->nq++];
		q->pri = true;
		q->lat_ns = b->o.lat_ns[0];
		why = ret == -ENODEV ? "no CAPS.PRI: the model needs pri=on" :
		      ret == -EINVAL ? "the page request needs 4 KiB host pages" :
		      "a page to leave unmapped, the quiesce bound";
		if (ret != -ENODEV && ret != -EINVAL)
			set_err(&q->err, q->what, ret, "quiesce PRI abort rows: %s", why);
		else
			snprintf(q->what, sizeof(q->what), "quiesce PRI abort rows: %s", why);
		if (ret != -ENODEV)
			ra_pages_free(&pg);
		return;
	}
	ra_pri_enable(d, true);
	for (int i = 0; i < b->o.nlat; i++) {
		q = &b->q[b->nq++];
		q->lat_ns = b->o.lat_ns[i];
		q->pri = true;
		bench_quiesce_pri(b, w, q, &pg, b->o.reps);
		if (q->err)
			break;	/* the device may not be fit for more */
	}
	ra_pri_enable(d, false);
	ra_pages_free(&pg);
}

/* ---- the first function: cold save, pre-copy, quiesce ---- */

static int bench_first(struct bench *b, struct ra_dev *d)
{
	struct work w = { .d = d };
	struct mig_buf cold = { 0 };
	uint32_t lat0;
	int ret;

	b->hot_off = d->sram_size / 4 / PAGE * PAGE;
	b->hot = b->o.hot ? b->o.hot : d->sram_size / 16;
	b->hot = (b->hot + PAGE - 1) / PAGE * PAGE;
	if (b->hot > d->sram_size - b->hot_off)
		b->hot = (d->sram_size - b->hot_off) / PAGE * PAGE;
	if (!b->hot || !d->sram_mmapped) {
		printf("RESULT: FAIL (pre-copy: SRAM of %u bytes%s leaves no hot set)\n",
		       d->sram_size, d->sram_mmapped ? "" : " not mmappable");
		return BU_EXIT_FAIL;
	}
	w.pages = malloc(b->hot);
	if (!w.pages)
		return BU_EXIT_FAIL;
	/*
	 * The ring needs a freshly reset device; the reset clears SRAM, so
	 * random bytes again (a stream of zeroes would be no less work for
	 * this driver, but a later one might skip zero pages).
	 */
	ret = ra_reset(d);
	if (ret) {
		printf("RESULT: FAIL (reset %s: %s)\n", d->vdev.bdf, strerror(-ret));
		free(w.pages);
		return BU_EXIT_FAIL;
	}
	ra_rand_fill(w.pages, b->hot, &b->rng);
	for (uint64_t off = 0; off < d->sram_size; off += b->hot)
		memcpy((uint8_t *)d->sram + off, w.pages,
		       d->sram_size - off < b->hot ? d->sram_size - off : b->hot);
	ret = ra_ring_setup(d, &b->iommu, &w.ring, 64, 64);
	if (!ret)
		ret = ra_enable(d, ra_timeout_ms());
	if (!ret)
		ret = vu_dma_alloc(&b->iommu, b->hot, VU_DMA_RW, &w.src);
	w.have_ring = !ret;
	if (ret)
		fprintf(stderr, "# ring or DMA buffer: %s: device rows fail\n",
			strerror(-ret));

	/* A cold STOP_COPY: what an idle device's tail is measured against. */
	ret = mig_save_stop_copy(&d->vdev, &cold);
	if (!ret)
		ret = mig_set_state(&d->vdev, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (ret) {
		printf("RESULT: FAIL (cold STOP_COPY of %s: %s)\n", d->vdev.bdf,
		       strerror(-ret));
		mig_buf_free(&cold);
		return BU_EXIT_FAIL;
	}
	b->cold_bytes = cold.len;
	mig_buf_free(&cold);

	for (int m = 0; m < NPC; m++) {
		b->pc[m].mode = m;
		bench_precopy(b, &w, &b->pc[m]);
	}
	b->pc_run = true;

	if (!(ra_rd(d, REFACCEL_REG_CAPS) & REFACCEL_CAP_TESTCTL)) {
		snprintf(b->q_skip, sizeof(b->q_skip),
			 "no TEST_OP_LATENCY: the model needs testctl=on");
	} else if (!w.have_ring) {
		snprintf(b->q_skip, sizeof(b->q_skip), "no ring");
	} else {
		lat0 = ra_rd(d, REFACCEL_REG_OP_LATENCY_NS);
		b->nq = 0;
		for (int park = 0; park < 2; park++) {
			/* A bound the longest op cannot reach: no time out. */
			ret = mig_quiesce_set_mode(&d->vdev,
						   REFACCEL_QUIESCE_TIMEOUT_MAX_MS,
						   park ? REFACCEL_QUIESCE_MODE_PARK :
							  REFACCEL_QUIESCE_MODE_DRAIN);
			if (ret) {
				fprintf(stderr, "# quiesce %s mode: %s%s\n",
					park ? "PARK" : "DRAIN", strerror(-ret),
					park ? " (no PARK rows)" : " (default bound)");
				if (park)
					break;
			}
			for (int i = -1; i < b->o.nlat; i++) {
				struct quiesce *q = &b->q[b->nq++];

				q->lat_ns = i < 0 ? 0 : b->o.lat_ns[i];
				q->park = park;
				bench_quiesce(b, &w, q, b->o.reps);
			}
		}
		bench_pri(b, &w);
		mig_quiesce_set(&d->vdev, REFACCEL_QUIESCE_TIMEOUT_MAX_MS);
		ra_wr(d, REFACCEL_REG_TEST_OP_LATENCY, lat0);
	}

	if (w.have_ring) {
		ra_reset(d);
		vu_dma_free(&b->iommu, &w.src);
	}
	ra_ring_free(&w.ring);
	free(w.pages);
	return BU_EXIT_PASS;
}

/* ---- output ---- */

static int add_ratio(struct ratio *r, int n, const char *unit,
		     double measured, double baseline, const char *key,
		     const char *what)
{
	if (n >= MAX_RATIOS)
		return n;
	snprintf(r[n].key, sizeof(r[n].key), "%s", key);
	snprintf(r[n].what, sizeof(r[n].what), "%s", what);
	r[n].unit = unit;
	r[n].measured = measured;
	r[n].baseline = baseline;
	return n + 1;
}

/* A quiesce row's mode: key and JSON "mode", and the table's label. */
static const char *q_key(const struct quiesce *q)
{
	return q->pri ? "pri_abort" : q->park ? "park" : "drain";
}

static const char *q_label(const struct quiesce *q)
{
	return q->pri ? "PRI  " : q->park ? "PARK " : "DRAIN";
}

static int build_ratios(const struct bench *b, struct ratio *r)
{
	char key[48], what[96], sz[24], lat[24];
	const struct precopy *idle = &b->pc[PC_IDLE];
	int n = 0;

	for (int i = 0; i < b->nxf; i++) {
		const struct xfer *x = &b->xf[i];

		if (x->err || !x->n)
			continue;
		bu_fmt_size(x->sram_size, sz, sizeof(sz));
		snprintf(key, sizeof(key), "save_%s", sz);
		snprintf(what, sizeof(what), "save %s: STOP_COPY / memcpy from BAR2", sz);
		n = add_ratio(r, n, "ns", x->save, x->from, key, what);
		snprintf(key, sizeof(key), "load_%s", sz);
		snprintf(what, sizeof(what), "load %s: RESUMING / memcpy to BAR2", sz);
		n = add_ratio(r, n, "ns", x->load, x->to, key, what);
	}
	if (b->pc_run && !idle->err)
		n = add_ratio(r, n, "bytes", idle->stop_copy, b->cold_bytes,
			      "stop_copy_idle_vs_cold",
			      "stop-copy after pre-copy, idle / cold STOP_COPY");
	for (int m = PC_CPU; b->pc_run && m < NPC; m++) {
		const struct precopy *p = &b->pc[m];

		if (p->err)
			continue;
		snprintf(key, sizeof(key), "stop_copy_%s_vs_dirtied", pc_name[m]);
		snprintf(what, sizeof(what), "stop-copy, %s / bytes dirtied", pc_name[m]);
		n = add_ratio(r, n, "bytes", p->stop_copy, p->dirtied, key, what);
		if (m == PC_CPU_SPARSE) {
			n = add_ratio(r, n, "bytes", p->stop_copy, p->written,
				      "stop_copy_cpu-sparse_vs_written",
				      "stop-copy, cpu-sparse / bytes written");
			continue;
		}
		snprintf(key, sizeof(key), "stop_mem_%s_vs_dirtied", pc_name[m]);
		snprintf(what, sizeof(what), "stop-copy MEM payload, %s / bytes dirtied",
			 pc_name[m]);
		n = add_ratio(r, n, "bytes", p->stop_mem, p->dirtied, key, what);
		if (!idle->err) {
			snprintf(key, sizeof(key), "stop_copy_%s_vs_idle", pc_name[m]);
			snprintf(what, sizeof(what), "stop-copy, %s / idle", pc_name[m]);
			n = add_ratio(r, n, "bytes", p->stop_copy, idle->stop_copy,
				      key, what);
		}
	}
	for (int i = 0; i < b->nq; i++) {
		const struct quiesce *q = &b->q[i];

		if (q->err || !q->lat_ns || !q->n)
			continue;
		snprintf(key, sizeof(key), "quiesce_%s_%" PRIu64 "us",
			 q_key(q), q->lat_ns / 1000);
		if (q->pri)
			snprintf(what, sizeof(what), "quiesce PRI abort, %s op / op latency",
				 bu_fmt_ns(q->lat_ns, lat, sizeof(lat)));
		else
			snprintf(what, sizeof(what), "quiesce %s, %s op in flight / op latency",
				 q->park ? "PARK" : "DRAIN",
				 bu_fmt_ns(q->lat_ns, lat, sizeof(lat)));
		n = add_ratio(r, n, "ns", q->arc, q->lat_ns, key, what);
	}
	return n;
}

static const char *fmt_val(const char *unit, double v, char *buf, size_t len)
{
	if (!strcmp(unit, "ns"))
		return bu_fmt_ns(v, buf, len);
	snprintf(buf, len, "%.0f B", v);
	return buf;
}

static void print_table(const struct bench *b, const struct ratio *r, int n)
{
	char t1[24], t2[24], t3[24], sz[24];

	printf("\n%-50s %12s %12s %9s\n", "ratio", "measured", "baseline", "ratio");
	for (int i = 0; i < n; i++) {
		printf("%-50s %12s %12s ", r[i].what,
		       fmt_val(r[i].unit, r[i].measured, t1, sizeof(t1)),
		       fmt_val(r[i].unit, r[i].baseline, t2, sizeof(t2)));
		if (r[i].baseline > 0)
			printf("%9.3f\n", r[i].measured / r[i].baseline);
		else
			printf("%9s\n", "-");
	}
	for (int i = 0; i < b->nxf; i++)
		if (b->xf[i].err)
			printf("  ERROR transfer %s: %s: %s\n", b->xf[i].bdf,
			       b->xf[i].what, strerror(b->xf[i].err));
	for (int m = 0; b->pc_run && m < NPC; m++)
		if (b->pc[m].err)
			printf("  ERROR pre-copy %s: %s: %s\n", pc_name[m],
			       b->pc[m].what, strerror(b->pc[m].err));
	for (int i = 0; i < b->nq; i++) {
		if (b->q[i].err)
			printf("  ERROR %s: %s\n", b->q[i].what, strerror(b->q[i].err));
		else if (!b->q[i].n && b->q[i].what[0])
			printf("  SKIP %s\n", b->q[i].what);
	}
	if (b->q_skip[0])
		printf("  SKIP quiesce rows: %s\n", b->q_skip);

	printf("\n  transfer  stream bytes, and the STOP -> STOP_COPY arc alone:\n");
	for (int i = 0; i < b->nxf; i++) {
		const struct xfer *x = &b->xf[i];

		if (x->err)
			continue;
		printf("    %-6s %s: stream %zu bytes, arc %s, save %.1f MB/s, memcpy from BAR2 %.1f MB/s\n",
		       bu_fmt_size(x->sram_size, sz, sizeof(sz)), x->bdf,
		       x->stream_bytes, bu_fmt_ns(x->arc, t1, sizeof(t1)),
		       x->save > 0 ? x->sram_size / x->save * 1e3 : 0,
		       x->from > 0 ? x->sram_size / x->from * 1e3 : 0);
	}
	if (b->pc_run) {
		printf("  pre-copy  hot set %" PRIu64 " bytes at SRAM offset 0x%" PRIx64
		       "; bytes read per pass, then the STOP_COPY part:\n",
		       b->hot, b->hot_off);
		for (int m = 0; m < NPC; m++) {
			const struct precopy *p = &b->pc[m];

			if (p->err)
				continue;
			printf("    %-10s", pc_name[m]);
			for (int i = 0; i < p->passes; i++)
				printf(" %" PRIu64, p->read[i]);
			printf(" | %" PRIu64 " (MEM %" PRIu64 ", %d records, %s)\n",
			       p->stop_copy, p->stop_mem, p->stop_recs,
			       bu_fmt_ns(p->stop_ns, t1, sizeof(t1)));
		}
	}
	for (int i = 0; i < b->nq; i++) {
		const struct quiesce *q = &b->q[i];

		if (q->err || !q->n)
			continue;
		printf("  quiesce   %s op %s: arc %s, driver %s, %s %s, %u in flight after\n",
		       q_label(q),
		       q->lat_ns ? bu_fmt_ns(q->lat_ns, sz, sizeof(sz)) : "none",
		       bu_fmt_ns(q->arc, t1, sizeof(t1)),
		       bu_fmt_ns(q->drv, t2, sizeof(t2)),
		       q->pri ? "page request pending at the arc for" :
				"op left at the arc",
		       bu_fmt_ns(q->left, t3, sizeof(t3)), q->in_flight);
	}
	printf("  (medians; ratio = measured / baseline; timings are informational)\n");
}

static void json_u64(FILE *f, const uint64_t *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%" PRIu64, i ? ", " : "", v[i]);
	fputc(']', f);
}

static int write_json(const struct bench *b, const struct ratio *r, int n,
		      const struct ra_dev *d, const char *result)
{
	struct utsname u;
	FILE *f = fopen(b->o.json, "w");

	if (!f)
		return -errno;
	uname(&u);
	fprintf(f, "{\n  \"tool\": \"refaccel_mig_bench\",\n  \"kernel\": \"%s\",\n",
		u.release);
	fprintf(f, "  \"backend\": \"%s\",\n  \"bdf\": \"%s\",\n  \"driver\": \"%s\",\n",
		vu_backend_name(b->iommu.backend), d->vdev.bdf, d->driver);
	fprintf(f, "  \"quick\": %s,\n  \"reps\": %d,\n  \"stat\": \"median\",\n",
		b->o.quick ? "true" : "false", b->o.reps);
	fprintf(f, "  \"result\": \"%s\",\n  \"ratios\": [", result);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\n    {\"key\": \"%s\", \"what\": \"%s\", \"unit\": \"%s\", \"measured\": %.0f, \"baseline\": %.0f, \"ratio\": %.4f}",
			i ? "," : "", r[i].key, r[i].what, r[i].unit,
			r[i].measured, r[i].baseline,
			r[i].baseline > 0 ? r[i].measured / r[i].baseline : 0);
	fprintf(f, "\n  ],\n  \"transfer\": [");
	for (int i = 0; i < b->nxf; i++) {
		const struct xfer *x = &b->xf[i];

		fprintf(f, "%s\n    {\"bdf\": \"%s\", \"sram_size\": %u",
			i ? "," : "", x->bdf, x->sram_size);
		if (x->err) {
			fprintf(f, ", \"error\": \"%s\", \"errno\": %d}", x->what, x->err);
			continue;
		}
		fprintf(f, ", \"stream_bytes\": %zu, \"save_ns\": %.0f, \"arc_ns\": %.0f, \"load_ns\": %.0f, \"memcpy_from_ns\": %.0f, \"memcpy_to_ns\": %.0f",
			x->stream_bytes, x->save, x->arc, x->load, x->from, x->to);
		fprintf(f, ",\n     \"save_samples_ns\": ");
		bu_json_arr(f, x->save_ns, x->n);
		fprintf(f, ", \"load_samples_ns\": ");
		bu_json_arr(f, x->load_ns, x->n);
		fprintf(f, ", \"memcpy_from_samples_ns\": ");
		bu_json_arr(f, x->from_ns, x->n);
		fprintf(f, ", \"memcpy_to_samples_ns\": ");
		bu_json_arr(f, x->to_ns, x->n);
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"cold_stop_copy_bytes\": %zu,\n", b->cold_bytes);
	fprintf(f, "  \"hot_bytes\": %" PRIu64 ",\n  \"hot_offset\": %" PRIu64 ",\n",
		b->hot, b->hot_off);
	fprintf(f, "  \"precopy\": [");
	for (int m = 0; b->pc_run && m < NPC; m++) {
		const struct precopy *p = &b->pc[m];

		fprintf(f, "%s\n    {\"mode\": \"%s\", \"what\": \"%s\"", m ? "," : "",
			pc_name[m], pc_desc[m]);
		if (p->err) {
			fprintf(f, ", \"error\": \"%s\", \"errno\": %d}", p->what, p->err);
			continue;
		}
		fprintf(f, ", \"pending_bytes\": ");
		json_u64(f, p->pending, p->passes);
		fprintf(f, ", \"read_bytes\": ");
		json_u64(f, p->read, p->passes);
		fprintf(f, ",\n     \"announced_bytes\": %" PRIu64 ", \"stop_copy_bytes\": %" PRIu64
			", \"stop_copy_mem_bytes\": %" PRIu64 ", \"stop_copy_records\": %d",
			p->announced, p->stop_copy, p->stop_mem, p->stop_recs);
		fprintf(f, ", \"dirtied_bytes\": %" PRIu64 ", \"written_bytes\": %" PRIu64
			", \"stop_copy_ns\": %.0f}", p->dirtied, p->written, p->stop_ns);
	}
	fprintf(f, "\n  ],\n  \"quiesce\": [");
	for (int i = 0; i < b->nq; i++) {
		const struct quiesce *q = &b->q[i];

		fprintf(f, "%s\n    {\"mode\": \"%s\", \"op_latency_ns\": %" PRIu64,
			i ? "," : "", q_key(q), q->lat_ns);
		if (q->err || !q->n) {
			fprintf(f, ", \"%s\": \"%s\", \"errno\": %d}",
				q->err ? "error" : "skip", q->what, q->err);
			continue;
		}
		fprintf(f, ", \"arc_ns\": %.0f, \"driver_ns\": %.0f, \"%s\": %.0f, \"in_flight_after\": %u",
			q->arc, q->drv, q->pri ? "request_pending_ns" : "op_left_ns",
			q->left, q->in_flight);
		fprintf(f, ", \"arc_samples_ns\": ");
		bu_json_arr(f, q->arc_ns, q->n);
		fputc('}', f);
	}
	fprintf(f, "\n  ]%s%s%s\n}\n", b->q_skip[0] ? ",\n  \"quiesce_skip\": \"" : "",
		b->q_skip, b->q_skip[0] ? "\"" : "");
	return fclose(f) ? -errno : 0;
}

/* ---- options ---- */

static int parse_ns(const char *s, uint64_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		v *= 1e6;
	else if (!strcmp(end, "us"))
		v *= 1e3;
	else if (*end && strcmp(end, "ns"))
		return -EINVAL;
	if (v > UINT32_MAX)	/* TEST_OP_LATENCY is 32 bits of ns */
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--quick] [--reps N] [--iterations N] [--hot SIZE]\n"
		"       [--latencies 1ms,10ms,100ms] [--json FILE] [-v] [BDF...]\n",
		prog);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "reps", required_argument, NULL, 'r' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "hot", required_argument, NULL, 'H' },
		{ "latencies", required_argument, NULL, 'l' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int reps = 0, iters = -1, c;
	const char *lats = NULL;
	char *list, *tok, *save;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o->quick = true;
			break;
		case 'r':
			reps = atoi(optarg);
			if (reps < 1 || reps > MAX_REPS) {
				fprintf(stderr, "--reps: 1..%d\n", MAX_REPS);
				return -EINVAL;
			}
			break;
		case 'i':
			iters = atoi(optarg);
			if (iters < 0 || iters > MAX_ITERS) {
				fprintf(stderr, "--iterations: 0..%d\n", MAX_ITERS);
				return -EINVAL;
			}
			break;
		case 'H':
			if (bu_parse_size(optarg, &o->hot) || !o->hot) {
				fprintf(stderr, "--hot: a size\n");
				return -EINVAL;
			}
			break;
		case 'l':
			lats = optarg;
			break;
		case 'j':
			o->json = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		default:
			return -EINVAL;
		}
	}
	o->reps = reps ? reps : o->quick ? 1 : 5;
	o->iters = iters >= 0 ? iters : o->quick ? 2 : 6;
	if (!lats)
		lats = o->quick ? "5ms" : "1ms,10ms,100ms";
	list = strdup(lats);
	if (!list)
		return -ENOMEM;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->nlat == MAX_LAT || parse_ns(tok, &o->lat_ns[o->nlat]) ||
		    !o->lat_ns[o->nlat]) {
			fprintf(stderr, "bad --latencies entry '%s' (at most %d, 1ns .. 4.29s)\n",
				tok, MAX_LAT);
			free(list);
			return -EINVAL;
		}
		o->nlat++;
	}
	free(list);
	while (optind < argc) {
		if (o->nbdf == MAX_FUNCS)
			return -EINVAL;
		o->bdf[o->nbdf++] = argv[optind++];
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	struct ratio ratios[MAX_RATIOS];
	struct ra_dev dev, first;
	const char *bdfs[MAX_FUNCS];
	struct ra_found f;
	struct utsname u;
	uint64_t flags;
	int nbdf = 0, nr, ret, rc = BU_EXIT_PASS;
	char sz[24];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_opts(argc, argv, &b.o)) {
		usage(argv[0]);
		return BU_EXIT_USAGE;
	}
	b.rng = 0x9e3779b97f4a7c15ull;

	if (b.o.nbdf) {
		memcpy(bdfs, b.o.bdf, b.o.nbdf * sizeof(bdfs[0]));
		nbdf = b.o.nbdf;
	} else {
		ra_discover(&f);
		for (int i = 0; i < f.n; i++)
			if (ra_driver_is_variant(f.driver[i]))
				bdfs[nbdf++] = f.bdf[i];
		if (!nbdf)
			return bu_skip("no function bound to refaccel-vfio-pci%s%s",
				       f.n ? "" : ": ", f.n ? "" : f.why);
	}
	if (b.o.quick)
		nbdf = 1;

	ret = vu_iommu_init(&b.iommu, vu_backend_from_env());
	if (ret) {
		printf("RESULT: FAIL (iommu init: %s)\n", strerror(-ret));
		return BU_EXIT_FAIL;
	}
	ret = ra_open(&b.iommu, bdfs[0], &first);
	if (ret) {
		printf("RESULT: FAIL (open %s: %s)\n", bdfs[0], strerror(-ret));
		vu_iommu_cleanup(&b.iommu);
		return BU_EXIT_FAIL;
	}
	if (mig_get_flags(&first.vdev, &flags) ||
	    (flags & (VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
		      VFIO_MIGRATION_PRE_COPY)) !=
	    (VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY)) {
		rc = bu_skip("%s (%s) offers no STOP_COPY + P2P + PRE_COPY migration",
			     first.vdev.bdf, first.driver);
		goto out;
	}
	/* FLR: no test register (op latency, flags) left by an earlier test. */
	ret = ra_reset(&first);
	if (ret) {
		printf("RESULT: FAIL (reset %s: %s)\n", first.vdev.bdf, strerror(-ret));
		rc = BU_EXIT_FAIL;
		goto out;
	}
	uname(&u);
	printf("refaccel migration benchmark%s\n", b.o.quick ? " (--quick: one repetition, numbers mean little)" : "");
	printf("  function  %s (%s), SRAM %s, backend %s, kernel %s\n",
	       first.vdev.bdf, first.driver,
	       bu_fmt_size(first.sram_size, sz, sizeof(sz)),
	       vu_backend_name(b.iommu.backend), u.release);
	printf("  runs      %d repetition(s) per row, %d pre-copy iteration(s)\n",
	       b.o.reps, b.o.iters);

	/* Transfer: the first function, then each new SRAM size. */
	bench_xfer(&b, &first, &b.xf[b.nxf++], b.o.reps);
	for (int i = 1; i < nbdf; i++) {
		bool seen = false;

		ret = ra_open(&b.iommu, bdfs[i], &dev);
		if (ret) {
			printf("# open %s: %s: not measured\n", bdfs[i], strerror(-ret));
			rc = BU_EXIT_FAIL;
			continue;
		}
		for (int k = 0; k < b.nxf; k++)
			seen |= b.xf[k].sram_size == dev.sram_size;
		if (!seen && !ra_reset(&dev)) {
			printf("  function  %s, SRAM %s\n", dev.vdev.bdf,
			       bu_fmt_size(dev.sram_size, sz, sizeof(sz)));
			bench_xfer(&b, &dev, &b.xf[b.nxf++], b.o.reps);
		}
		ra_close(&dev);
	}

	ret = bench_first(&b, &first);
	if (ret)
		rc = ret;

	for (int i = 0; i < b.nxf; i++)
		rc |= b.xf[i].err ? BU_EXIT_FAIL : 0;
	for (int m = 0; b.pc_run && m < NPC; m++)
		rc |= b.pc[m].err ? BU_EXIT_FAIL : 0;
	for (int i = 0; i < b.nq; i++)
		rc |= b.q[i].err ? BU_EXIT_FAIL : 0;

	nr = build_ratios(&b, ratios);
	print_table(&b, ratios, nr);
	if (b.o.json) {
		ret = write_json(&b, ratios, nr, &first, rc ? "FAIL" : "PASS");
		if (ret) {
			fprintf(stderr, "# --json %s: %s\n", b.o.json, strerror(-ret));
			rc = BU_EXIT_FAIL;
		}
	}
	if (rc)
		printf("RESULT: FAIL (see the ERROR lines and the '# error:' lines)\n");
	else
		printf("RESULT: PASS (every load restored SRAM, every stream parsed; timings are informational)\n");
out:
	ra_close(&first);
	vu_iommu_cleanup(&b.iommu);
	return rc;
}
