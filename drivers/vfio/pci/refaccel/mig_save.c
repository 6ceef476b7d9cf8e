// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration core: the saving data_fd.  PRE_COPY sends the device memory
 * while the device runs (an initial pass, then what it dirties); STOP_COPY
 * sends what is left, the device's internal state and the END record.
 * Also the estimate of VFIO_DEVICE_FEATURE_MIG_DATA_SIZE.
 */

#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>

#include "compat.h"
#include "mig_core.h"
#include "trace.h"

/* How often a PRE_COPY poll() with nothing to read looks again. */
#define VMIG_POLL_MS		20

/* Bytes a MEM record adds around its data: record header and offset. */
#define VMIG_REC_OVERHEAD	(sizeof(struct vmig_rec_hdr) + sizeof(__le64))

/* ---- saving ---- */

/* Stream bytes that @pages pages of device memory take as MEM records. */
static size_t vmig_mem_rec_bytes(u32 page_size, unsigned long pages)
{
	if (!pages)
		return 0;
	return pages * page_size +
		DIV_ROUND_UP(pages, VMIG_MEM_CHUNK_MAX / page_size) *
		VMIG_REC_OVERHEAD;
}

/*
 * The user opted in to VFIO_PRECOPY_INFO_REINIT: through the 7.x core, or
 * (before 7.x) through the driver's own device_feature op.
 */
static bool vmig_precopy_v2(struct vmig_device *mig)
{
	return READ_ONCE(mig->precopy_v2) ||
	       refaccel_compat_core_precopy_v2(mig->vdev);
}

/*
 * PRE_COPY, for a user that can be told: if the device voided the initial
 * data since its pass began, start the pass again, as new initial data
 * (VFIO_PRECOPY_INFO_REINIT).  The pages sent so far and those known dirty
 * are all in it, so nothing is owed besides it.  Without the opt-in the
 * pages the device cleared are simply dirty (the v1 accounting); the
 * bytes on the stream are correct either way.
 */
static int vmig_save_reinit_check(struct vmig_file *migf)
{
	struct vmig_device *mig = migf->mig;
	u32 epoch;
	int ret;

	if (migf->phase != VMIG_SAVE_PRECOPY || !mig->ops->init_epoch ||
	    !vmig_precopy_v2(mig))
		return 0;
	ret = mig->ops->init_epoch(mig, &epoch);
	if (ret || epoch == migf->init_epoch)
		return ret;
	migf->init_epoch = epoch;
	migf->init_next = 0;
	bitmap_zero(migf->pending, migf->npages);
	/* what is buffered must be read first: it counts as initial too */
	migf->buf_initial = true;
	migf->reinit = true;
	trace_refaccel_reinit(migf->devname, epoch);
	return 0;
}

/* Pages ahead of the initial pass will be read by it: no need to resend. */
static int vmig_save_sync(struct vmig_file *migf)
{
	int ret;

	/* a device without memory has nothing tracked (ops contract) */
	if (!migf->npages)
		return 0;
	ret = migf->mig->ops->mem_track_sync(migf->mig, migf->pending);
	if (ret)
		return ret;
	ret = vmig_save_reinit_check(migf);
	if (ret)
		return ret;
	if (migf->init_next < migf->npages)
		bitmap_clear(migf->pending, migf->init_next,
			     migf->npages - migf->init_next);
	return 0;
}

static int vmig_encode_mem(struct vmig_file *migf, unsigned long first,
			   unsigned long n)
{
	struct vmig_rec_hdr *rec = (void *)migf->buf;
	u8 *payload = migf->buf + sizeof(*rec);
	u64 off = (u64)first * migf->lim.page_size;
	size_t len = n * migf->lim.page_size;
	int ret;

	put_unaligned_le64(off, payload);
	ret = migf->mig->ops->mem_read(migf->mig, off, payload + sizeof(__le64),
				       len);
	if (ret)
		return ret;
	vmig_rec_hdr_init(rec, VMIG_REC_MEM, migf->seq++, payload,
			  sizeof(__le64) + len);
	vmig_trace_record(migf, true, rec);
	migf->buf_len = sizeof(*rec) + sizeof(__le64) + len;
	migf->mem_bytes += len;
	return 0;
}

/*
 * Put the next piece of the stream in migf->buf.  Returns 0 with data,
 * -ENOMSG at the temporary end of PRE_COPY, 1 at the end of the stream,
 * or another negative errno.
 */
/* Pages in one MEM record; only for a device with memory (npages > 0). */
static unsigned long vmig_pages_per_rec(struct vmig_file *migf)
{
	return VMIG_MEM_CHUNK_MAX / migf->lim.page_size;
}

static int vmig_save_next(struct vmig_file *migf)
{
	struct vmig_rec_hdr *rec = (void *)migf->buf;
	struct vmig_rec_end *end = (void *)(migf->buf + sizeof(*rec));
	unsigned long first, last;
	int ret;

	migf->buf_pos = 0;
	migf->buf_len = 0;
	migf->buf_initial = !migf->hdr_done || migf->init_next < migf->npages;

	if (!migf->hdr_done) {
		vmig_stream_hdr_init((void *)migf->buf, &migf->lim);
		migf->buf_len = sizeof(struct vmig_stream_hdr);
		migf->hdr_done = true;
		return 0;
	}
	first = find_first_bit(migf->pending, migf->npages);
	if (migf->init_next >= migf->npages && first >= migf->npages &&
	    migf->phase == VMIG_SAVE_PRECOPY) {
		ret = vmig_save_sync(migf);
		if (ret)
			return ret;
		first = find_first_bit(migf->pending, migf->npages);
	}
	/* Pages count as sent only once read: a failed read loses none. */
	if (migf->init_next < migf->npages) {
		/* a restarted initial pass (REINIT) is initial data again */
		migf->buf_initial = true;
		first = migf->init_next;
		last = min(first + vmig_pages_per_rec(migf), migf->npages);
		ret = vmig_encode_mem(migf, first, last - first);
		if (!ret)
			migf->init_next = last;
		return ret;
	}
	if (first < migf->npages) {
		last = find_next_zero_bit(migf->pending, migf->npages, first);
		last = min(last, first + vmig_pages_per_rec(migf));
		ret = vmig_encode_mem(migf, first, last - first);
		if (!ret)
			bitmap_clear(migf->pending, first, last - first);
		return ret;
	}
	if (migf->phase == VMIG_SAVE_PRECOPY)
		return -ENOMSG;

	if (!migf->state_done) {
		memcpy(migf->buf + sizeof(*rec), migf->state, migf->state_len);
		vmig_rec_hdr_init(rec, VMIG_REC_STATE, migf->seq++,
				  migf->buf + sizeof(*rec), migf->state_len);
		vmig_trace_record(migf, true, rec);
		migf->buf_len = sizeof(*rec) + migf->state_len;
		migf->state_done = true;
		return 0;
	}
	if (!migf->end_done) {
		end->nr_records = cpu_to_le64(migf->seq);
		end->mem_bytes = cpu_to_le64(migf->mem_bytes);
		vmig_rec_hdr_init(rec, VMIG_REC_END, migf->seq++, end,
				  sizeof(*end));
		vmig_trace_record(migf, true, rec);
		migf->buf_len = sizeof(*rec) + sizeof(*end);
		migf->end_done = true;
		return 0;
	}
	return 1;
}

static ssize_t vmig_save_read(struct file *filp, char __user *ubuf,
			      size_t len, loff_t *pos)
{
	struct vmig_file *migf = filp->private_data;
	size_t len0 = len;
	ssize_t done = 0;
	size_t n;
	int ret;

	if (pos)
		return -ESPIPE;

	mutex_lock(&migf->lock);
	if (vmig_file_dead(migf)) {
		done = -ENODEV;
		goto out;
	}
	while (len) {
		if (migf->buf_pos == migf->buf_len) {
			/* a reset may have come while this read waited */
			if (vmig_file_dead(migf)) {
				if (!done)
					done = -ENODEV;
				break;
			}
			ret = vmig_save_next(migf);
			/*
			 * A reset that came while the device was read (it
			 * waits for the access window) ends the session: what
			 * was read must not be delivered after it.
			 */
			if (ret != 1 && vmig_file_dead(migf)) {
				migf->buf_pos = 0;
				migf->buf_len = 0;
				if (!done)
					done = -ENODEV;
				break;
			}
			if (ret == 1)
				break;
			if (ret) {
				if (!done)
					done = ret;
				/* the user can repeat this at will */
				if (ret != -ENOMSG)
					dev_err_ratelimited(vmig_dev(migf->mig),
							    "migration save failed: %d\n",
							    ret);
				break;
			}
			/* one record per pass: a 64 MiB read is many */
			cond_resched();
		}
		n = min(len, migf->buf_len - migf->buf_pos);
		if (copy_to_user(ubuf, migf->buf + migf->buf_pos, n)) {
			/* Bytes already copied stay delivered; report them. */
			if (!done)
				done = -EFAULT;
			break;
		}
		migf->buf_pos += n;
		ubuf += n;
		len -= n;
		done += n;
	}
out:
	if (done > 0 && migf->mig)
		atomic64_add(done, &migf->mig->stats.bytes_saved);
	mutex_unlock(&migf->lock);
	trace_refaccel_data(migf->devname, true, len0, done);
	return done;
}

static __poll_t vmig_save_poll(struct file *filp, poll_table *wait)
{
	struct vmig_file *migf = filp->private_data;
	__poll_t mask = 0;
	int ret;

	poll_wait(filp, &migf->wq, wait);
	mutex_lock(&migf->lock);
	if (vmig_file_dead(migf)) {
		mask = EPOLLERR | EPOLLHUP;
	} else if (migf->phase == VMIG_SAVE_FINAL ||
		   migf->buf_pos < migf->buf_len ||
		   migf->init_next < migf->npages || !migf->hdr_done) {
		mask = EPOLLIN | EPOLLRDNORM;
	} else if (find_first_bit(migf->pending, migf->npages) < migf->npages) {
		/* dirty pages already collected: readable, no device access */
		mask = EPOLLIN | EPOLLRDNORM;
	} else {
		/*
		 * Ask the device for new dirty pages; none: nothing to say
		 * yet.  A sync that fails (the function unreachable: runtime
		 * low power) is an error the next read() reports: say so
		 * rather than let the waiter sleep on a device it cannot read.
		 */
		ret = vmig_save_sync(migf);
		if (ret)
			mask = EPOLLERR;
		else if (find_first_bit(migf->pending, migf->npages) <
			 migf->npages)
			mask = EPOLLIN | EPOLLRDNORM;
	}
	/*
	 * PRE_COPY and nothing to read: the device raises no event when it
	 * dirties memory, and reset_done may not touch sessions, so a waiter
	 * is woken every VMIG_POLL_MS to look again (new dirty pages, or
	 * the session ended).  One timer per session, only while waited on.
	 */
	if (!mask && wait && !timer_pending(&migf->poll_timer))
		mod_timer(&migf->poll_timer,
			  jiffies + msecs_to_jiffies(VMIG_POLL_MS));
	mutex_unlock(&migf->lock);
	return mask;
}

static long vmig_precopy_info(struct vmig_file *migf, void __user *arg)
{
	struct vfio_precopy_info info;
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	unsigned long unread_init = 0, dirty;
	size_t buffered;
	int ret = 0;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	mutex_lock(&migf->lock);
	/*
	 * The uAPI: EINVAL outside the PRE_COPY states, and a session that
	 * ended (reset, left the saving group, device closed) is outside.
	 */
	if (vmig_file_dead(migf)) {
		ret = -EINVAL;
		goto out;
	}
	if (migf->phase != VMIG_SAVE_PRECOPY) {
		ret = -EINVAL;
		goto out;
	}
	ret = vmig_save_sync(migf);
	if (ret)
		goto out;

	buffered = migf->buf_len - migf->buf_pos;
	if (migf->init_next < migf->npages)
		unread_init = migf->npages - migf->init_next;
	dirty = bitmap_weight(migf->pending, migf->npages);

	/* v1: flags stay 0; v2: REINIT once per restart of the pass */
	info.flags = 0;
	if (migf->reinit && vmig_precopy_v2(migf->mig)) {
		info.flags |= VFIO_PRECOPY_INFO_REINIT;
		migf->reinit = false;
	}
	info.initial_bytes = vmig_mem_rec_bytes(migf->lim.page_size, unread_init);
	if (!migf->hdr_done)
		info.initial_bytes += sizeof(struct vmig_stream_hdr);
	info.dirty_bytes = vmig_mem_rec_bytes(migf->lim.page_size, dirty);
	/* Whatever sits in the buffer belongs to the pass that produced it. */
	if (migf->buf_initial)
		info.initial_bytes += buffered;
	else
		info.dirty_bytes += buffered;
out:
	mutex_unlock(&migf->lock);
	if (!ret && copy_to_user(arg, &info, minsz))
		ret = -EFAULT;
	return ret;
}

static long vmig_save_ioctl(struct file *filp, unsigned int cmd,
			    unsigned long arg)
{
	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	return vmig_precopy_info(filp->private_data, (void __user *)arg);
}

static const struct file_operations vmig_save_fops = {
	.owner = THIS_MODULE,
	.read = vmig_save_read,
	.poll = vmig_save_poll,
	.unlocked_ioctl = vmig_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = vmig_file_release,
};

/*
 * Device frozen: collect the last dirty pages (after PRE_COPY), snapshot the
 * internal state and move the session to its final phase.
 */
int vmig_save_finalize(struct vmig_device *mig, struct vmig_file *migf,
		       bool sync)
{
	size_t len = mig->info.state_max;
	int ret = 0;

	mutex_lock(&migf->lock);
	if (sync && migf->npages) {
		ret = vmig_save_sync(migf);
		if (ret)
			goto out;
	}
	ret = mig->ops->state_save(mig, migf->state, &len);
	if (ret)
		goto out;
	if (!len || len > mig->info.state_max) {
		dev_err(vmig_dev(mig), "device saved %zu bytes of state, limit %u\n",
			len, mig->info.state_max);
		ret = -EIO;
		goto out;
	}
	migf->state_len = len;
	migf->phase = VMIG_SAVE_FINAL;
out:
	mutex_unlock(&migf->lock);
	wake_up_interruptible(&migf->wq);
	return ret;
}

struct file *vmig_start_saving(struct vmig_device *mig, bool precopy)
{
	struct vmig_file *migf;
	int ret;

	migf = vmig_file_alloc(mig, true, &vmig_save_fops);
	if (IS_ERR(migf))
		return ERR_CAST(migf);

	if (precopy) {
		migf->phase = VMIG_SAVE_PRECOPY;
		ret = migf->npages ? mig->ops->mem_track_start(mig) : 0;
		/* the epoch the initial pass is valid in */
		if (!ret && migf->npages && mig->ops->init_epoch)
			ret = mig->ops->init_epoch(mig, &migf->init_epoch);
	} else {
		ret = vmig_save_finalize(mig, migf, false);
	}
	if (ret) {
		fput(migf->filp);
		return ERR_PTR(ret);
	}
	get_file(migf->filp);
	mig->saving = migf;
	return migf->filp;
}

/*
 * Stop SRAM tracking, never while a reader of the saving session is in
 * mem_track_sync (the ops contract): the reader holds the session's mutex,
 * which nests inside the state mutex we hold.
 */
int vmig_mem_track_stop(struct vmig_device *mig)
{
	struct vmig_file *migf = mig->saving;
	int ret;

	if (!mig->info.mem_size)
		return 0;
	if (migf)
		mutex_lock(&migf->lock);
	ret = mig->ops->mem_track_stop(mig);
	if (migf)
		mutex_unlock(&migf->lock);
	return ret;
}

/* Leaving the saving group: stop tracking (if PRE_COPY) and end the fd. */
void vmig_stop_saving(struct vmig_device *mig, bool tracking)
{
	if (tracking)
		vmig_mem_track_stop(mig);
	vmig_end_saving(mig);
}

/* Bytes a STOP_COPY would produce from here (an estimate, per uAPI). */
int vmig_get_data_size(struct vmig_device *mig, unsigned long *len)
{
	struct vmig_file *migf;
	unsigned long pages;
	size_t tail;
	int ret = 0;

	vmig_state_lock(mig);
	if (!mig->usable) {
		*len = 0;
		vmig_state_unlock(mig);
		return -EOPNOTSUPP;
	}
	/* STATE and END always follow the device memory. */
	tail = sizeof(struct vmig_rec_hdr) * 2 + mig->info.state_max +
		sizeof(struct vmig_rec_end);
	migf = mig->saving;
	if (migf) {
		mutex_lock(&migf->lock);
		/*
		 * In PRE_COPY the pages the device dirtied since the last
		 * sync are still in its tracker, not in pending: fetch them,
		 * or the estimate QEMU sizes its downtime on misses them.
		 */
		if (migf->phase == VMIG_SAVE_PRECOPY && !vmig_file_dead(migf)) {
			ret = vmig_save_sync(migf);
			if (ret) {
				mutex_unlock(&migf->lock);
				goto out;
			}
		}
		pages = migf->npages - migf->init_next +
			bitmap_weight(migf->pending, migf->npages);
		*len = vmig_mem_rec_bytes(migf->lim.page_size, pages) + tail +
			(migf->buf_len - migf->buf_pos);
		mutex_unlock(&migf->lock);
	} else {
		*len = sizeof(struct vmig_stream_hdr) + tail +
			vmig_mem_rec_bytes(mig->info.mem_page_size,
					   vmig_npages(&mig->info));
	}
out:
	vmig_state_unlock(mig);
	return ret;
}
