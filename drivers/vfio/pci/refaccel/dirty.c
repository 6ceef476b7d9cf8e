// SPDX-License-Identifier: GPL-2.0-only
/*
 * DMA logging: the vfio_log_ops of a device with a device-side tracker of
 * its writes to host memory.  Policy lives here (checking the request,
 * combining ranges, what a report owes after a reset); the tracker itself
 * is reached only through the dma_track_* operations of struct vmig_dev_ops.
 *
 * The vfio core has already checked a START (1..LOG_MAX_RANGES ranges,
 * each aligned to the page size, not overflowing, not overlapping) and a
 * REPORT (page size, overflow).  Left to the driver, as in mlx5 and pds:
 * the page size itself, empty ranges, what the device can hold, and that a
 * report stays within what is tracked.
 *
 * A reset of the function wipes the device's tracker, and reset_done may
 * not take our mutex (the reset path holds memory_lock, which a report in
 * progress may be waiting for).  So, like the FSM, the log notices resets
 * through the device's reset count: the next operation programs the
 * tracker again and owes every page of every range as dirty, once.  Pages
 * the device wrote between the reset and that moment are thereby reported
 * too: a reset may cost extra pages in the next pass, never a missed one.
 */

#include <linux/interval_tree.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/vfio.h>

#include "compat.h"
#include "mig.h"
#include "trace.h"

/* iova_bitmap_set() (IOMMUFD_DRIVER) lives in the IOMMUFD namespace */
#if IS_ENABLED(CONFIG_IOMMUFD_DRIVER)
REFACCEL_IMPORT_NS_IOMMUFD();
#endif

static_assert(VMIG_LOG_RUNS >= VMIG_DMA_RUNS_MIN);

static struct device *log_dev(struct vmig_device *mig)
{
	return mig->vdev->dev;
}

void vmig_log_init(struct vmig_log *log)
{
	mutex_init(&log->lock);
}

void vmig_log_uninit(struct vmig_log *log)
{
	mutex_destroy(&log->lock);
}

static int vmig_log_program(struct vmig_device *mig)
{
	struct vmig_log *log = &mig->log;
	struct vmig_dma_range r[VMIG_LOG_MAX_RANGES];
	u32 i;

	for (i = 0; i < log->nr; i++) {
		r[i].start = log->range[i].start;
		r[i].last = log->range[i].last;
	}
	return mig->ops->dma_track_start(mig, r, log->nr, log->pgshift);
}

/*
 * Copy the (combined) interval tree into @log->range, each range widened to
 * whole tracking pages (1 << @log->pgshift): the vfio core aligns ranges to
 * the page size the user asked for, which may be finer than the one the
 * device tracks, and a report may only ask for whole tracking pages.  Ranges
 * that share a page once widened become one.  Check what they span.
 */
static int vmig_log_take_ranges(struct vmig_device *mig,
				struct rb_root_cached *ranges, u32 nr)
{
	struct vmig_log *log = &mig->log;
	struct interval_tree_node *node;
	u64 mask = (1ull << log->pgshift) - 1;
	u64 span = 0, start, last;
	u32 i = 0;

	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		start = node->start & ~mask;
		last = node->last | mask;
		/*
		 * Sorted and disjoint: only the previous range can share a
		 * tracking page with this one (ranges that only touch stay
		 * apart, as the user gave them).
		 */
		if (i && start <= log->range[i - 1].last) {
			span -= log->range[i - 1].last -
				log->range[i - 1].start + 1;
			start = log->range[i - 1].start;
			i--;
		} else if (WARN_ON_ONCE(i >= nr)) {
			return -EINVAL;
		}
		/* in two steps: a range of the whole space has no u64 length */
		if (check_add_overflow(span, last - start, &span) ||
		    check_add_overflow(span, 1ull, &span) ||
		    span > mig->info.dma_max_span) {
			dev_dbg(log_dev(mig), "DMA logging: ranges span more than the %llu bytes the device tracks\n",
				mig->info.dma_max_span);
			return -EOPNOTSUPP;
		}
		log->range[i].start = start;
		log->range[i].last = last;
		/* nothing owed yet */
		log->range[i].stale_start = 1;
		log->range[i].stale_last = 0;
		i++;
	}
	log->nr = i;
	return 0;
}

int vmig_log_start(struct vmig_device *mig, struct rb_root_cached *ranges,
		   u32 nnodes, u64 *page_size)
{
	const struct vmig_dev_info *info = &mig->info;
	struct vmig_log *log = &mig->log;
	struct interval_tree_node *node;
	u32 nr = nnodes;
	int ret;

	if (!*page_size || !is_power_of_2(*page_size)) {
		dev_dbg(log_dev(mig), "DMA logging: page size %llu is not a power of 2\n",
			*page_size);
		return -EINVAL;
	}
	/*
	 * The core computes last = iova + length - 1: a zero length shows as
	 * last < start, or, at IOVA 0, as the whole space (which no aligned,
	 * non-overflowing range can be).
	 */
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		if (node->last < node->start ||
		    (node->start == 0 && node->last == ULONG_MAX)) {
			dev_dbg(log_dev(mig), "DMA logging: empty range at %#lx\n",
				node->start);
			return -EINVAL;
		}
	}

	mutex_lock(&log->lock);
	if (log->active) {
		dev_dbg(log_dev(mig), "DMA logging already started\n");
		ret = -EINVAL;
		goto out;
	}
	/*
	 * Not on an open whose migration set-up failed: @info and the
	 * device's mappings may be the previous open's.
	 */
	if (!READ_ONCE(mig->usable)) {
		dev_dbg(log_dev(mig), "DMA logging: migration is not usable on this open\n");
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (!info->dma_max_ranges) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (nr > info->dma_max_ranges) {
		/* close the smallest gaps: more is tracked, nothing less */
		vfio_combine_iova_ranges(ranges, nr, info->dma_max_ranges);
		nr = info->dma_max_ranges;
	}
	log->pgshift = clamp_t(unsigned int, ilog2(*page_size),
			       info->dma_pgshift_min, info->dma_pgshift_max);
	ret = vmig_log_take_ranges(mig, ranges, nr);
	if (ret)
		goto out;
	log->reset_gen = READ_ONCE(mig->reset_gen);
	ret = vmig_log_program(mig);
	if (ret)
		goto out;
	log->active = true;
	*page_size = 1ull << log->pgshift;
	dev_dbg(log_dev(mig), "DMA logging started: %u ranges (%u asked), page size %llu\n",
		log->nr, nnodes, *page_size);
out:
	mutex_unlock(&log->lock);
	return ret;
}

static void vmig_log_stop_locked(struct vmig_device *mig)
{
	struct vmig_log *log = &mig->log;

	if (!log->active)
		return;
	/* a failure is logged by the device; tracking is over either way */
	mig->ops->dma_track_stop(mig);
	log->active = false;
	dev_dbg(log_dev(mig), "DMA logging stopped\n");
}

int vmig_log_stop(struct vmig_device *mig)
{
	mutex_lock(&mig->log.lock);
	vmig_log_stop_locked(mig);
	mutex_unlock(&mig->log.lock);
	return 0;
}

/* Called when the device is closed: the next user starts untracked. */
void vmig_log_close(struct vmig_device *mig)
{
	vmig_log_stop(mig);
}

/* After a reset: program the tracker again and owe every page once. */
static int vmig_log_after_reset(struct vmig_device *mig)
{
	struct vmig_log *log = &mig->log;
	u32 gen = READ_ONCE(mig->reset_gen);
	int ret;
	u32 i;

	if (gen == log->reset_gen)
		return 0;
	ret = vmig_log_program(mig);
	if (ret)
		return ret;
	for (i = 0; i < log->nr; i++) {
		log->range[i].stale_start = log->range[i].start;
		log->range[i].stale_last = log->range[i].last;
	}
	log->reset_gen = gen;
	dev_dbg(log_dev(mig), "DMA logging: function reset, tracker reprogrammed, every tracked page reported dirty once\n");
	return 0;
}

/* Is all of [iova, last] inside the (sorted, disjoint) tracked ranges? */
static bool vmig_log_covers(struct vmig_log *log, u64 iova, u64 last)
{
	u32 i;

	for (i = 0; i < log->nr; i++) {
		const struct vmig_log_range *r = &log->range[i];

		if (iova < r->start)
			return false;
		if (iova > r->last)
			continue;
		if (last <= r->last)
			return true;
		iova = r->last + 1;	/* r->last < last: no wrap */
	}
	return false;
}

/*
 * Report what a reset left owed in [iova, last].  The owed part of a range
 * shrinks only from its ends, as reports reach them (iova_bitmap_for_each()
 * walks upwards), so a sweep clears it; a report in its middle reports it
 * again next time, which costs pages, never correctness.
 */
static u64 vmig_log_report_stale(struct vmig_log *log, u64 iova, u64 last,
				 struct iova_bitmap *dirty)
{
	u64 bytes = 0;
	u32 i;

	for (i = 0; i < log->nr; i++) {
		struct vmig_log_range *r = &log->range[i];
		u64 lo = max(iova, r->stale_start);
		u64 hi = min(last, r->stale_last);

		if (r->stale_start > r->stale_last || lo > hi)
			continue;
		iova_bitmap_set(dirty, lo, hi - lo + 1);
		bytes += hi - lo + 1;
		if (iova <= r->stale_start) {
			if (hi == r->stale_last) {
				r->stale_start = 1;	/* all reported */
				r->stale_last = 0;
			} else {
				r->stale_start = hi + 1;
			}
		} else if (last >= r->stale_last) {
			r->stale_last = lo - 1;		/* lo > stale_start */
		}
	}
	return bytes;
}

/*
 * Read the device in batches and fill the user's bitmap between them:
 * iova_bitmap_set() pins the bitmap's pages (mmap_lock), which must not
 * nest in the device access (memory_lock, itself taken under mmap_lock by
 * a BAR mmap fault).
 */
static int vmig_log_read(struct vmig_device *mig, u64 iova, u64 last,
			 struct iova_bitmap *dirty, u64 *bytes)
{
	struct vmig_log *log = &mig->log;
	bool done = false;
	int n, i;

	while (!done) {
		n = mig->ops->dma_track_read(mig, &iova, last, log->runs,
					     VMIG_LOG_RUNS, &done);
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			iova_bitmap_set(dirty, log->runs[i].iova,
					log->runs[i].len);
			*bytes += log->runs[i].len;
		}
		cond_resched();
	}
	return 0;
}

int vmig_log_read_and_clear(struct vmig_device *mig, unsigned long iova,
			    unsigned long length, struct iova_bitmap *dirty)
{
	struct vmig_log *log = &mig->log;
	u64 last = (u64)iova + length - 1;
	u64 bytes = 0;
	int ret;

	if (!length)
		return 0;
	mutex_lock(&log->lock);
	if (!log->active) {
		dev_dbg(log_dev(mig), "DMA logging report while not started\n");
		ret = -EINVAL;
		goto out;
	}
	/*
	 * Pages are read and cleared whole: a window that split a tracking
	 * page would lose the other part's marks.
	 */
	if (!IS_ALIGNED(iova | length, 1ull << log->pgshift)) {
		dev_dbg(log_dev(mig), "DMA logging report [%#lx, +%#lx) not aligned to the tracking page size %llu\n",
			iova, length, 1ull << log->pgshift);
		ret = -EINVAL;
		goto out;
	}
	if (!vmig_log_covers(log, iova, last)) {
		dev_dbg(log_dev(mig), "DMA logging report [%#lx, +%#lx) is not inside the tracked ranges\n",
			iova, length);
		ret = -EINVAL;
		goto out;
	}
	ret = vmig_log_after_reset(mig);
	if (ret)
		goto out;
	ret = vmig_log_read(mig, iova, last, dirty, &bytes);
	if (ret)
		goto out;
	bytes += vmig_log_report_stale(log, iova, last, dirty);
out:
	mutex_unlock(&log->lock);
	trace_refaccel_dma_report(dev_name(log_dev(mig)), iova, length, bytes,
				  ret);
	return ret;
}
