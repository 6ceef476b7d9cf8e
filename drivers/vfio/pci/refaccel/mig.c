// SPDX-License-Identifier: GPL-2.0-only
/*
 * Generic VFIO migration core: the v2 migration FSM, its data_fd sessions
 * and the v1 stream.  Device specifics are reached only through
 * struct vmig_dev_ops; nothing here knows a register.
 *
 * Locking: mig->state_mutex serialises arcs and is always taken before a
 * session's own mutex.  data_fd file operations take only the session
 * mutex, and never touch the device once the session is disabled, so a
 * data_fd may outlive the device's open (or the device itself).  The device
 * keeps a reference on the session file while the session is current, so
 * closing a data_fd early never frees what the FSM still points at.
 *
 * Reset: reset_done runs with the function's memory_lock held for writing
 * (VFIO_DEVICE_RESET, hot reset), while an arc holding state_mutex or a
 * session reader holding its session mutex may be waiting for memory_lock
 * to reach the device.  So it takes no sleeping lock: it only counts the
 * reset (sessions started before it fail from then on, see
 * vmig_file_dead()) and leaves the FSM work to the next holder of
 * state_mutex (vmig_state_lock() and vmig_state_unlock()).
 */

#include <linux/anon_inodes.h>
#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vmalloc.h>

#include "compat.h"
#include "mig.h"
#include "stream.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/* How often a PRE_COPY poll() with nothing to read looks again. */
#define VMIG_POLL_MS		20

/* Bytes a MEM record adds around its data: record header and offset. */
#define VMIG_REC_OVERHEAD	(sizeof(struct vmig_rec_hdr) + sizeof(__le64))

enum vmig_save_phase {
	VMIG_SAVE_PRECOPY,	/* PRE_COPY(_P2P): device running, pages move */
	VMIG_SAVE_FINAL,	/* STOP_COPY: last pages, STATE, END, then EOF */
};

enum vmig_resume_stage {
	VMIG_RES_HDR,		/* collecting the stream header */
	VMIG_RES_REC,		/* collecting a record header */
	VMIG_RES_PAYLOAD,	/* collecting a record payload */
	VMIG_RES_DONE,		/* END seen: nothing more may come */
};

/**
 * struct vmig_file - one data transfer session (one data_fd)
 * @filp: the anon-inode file
 * @mig: owning device; only dereferenced while !@disabled
 * @lock: protects everything below
 * @devname: the device's name, for tracing (the session may outlive it)
 * @wq: poll waiters
 * @poll_timer: wakes @wq while a PRE_COPY poller waits (see vmig_save_poll())
 * @disabled: session ended; all I/O fails with -ENODEV
 * @reset_gen: the device's reset count when the session began
 * @saving: direction
 * @err: sticky error of a failed resume session
 * @lim: what the stream is checked against / encoded with
 * @npages: pages of device memory
 * @buf: staging buffer: encoded output (save) or one record (resume)
 * @buf_size: capacity of @buf
 * @buf_len: valid bytes in @buf
 * @buf_pos: bytes of @buf consumed (save) / filled (resume)
 * @buf_initial: @buf holds header or initial-pass data (save)
 * @phase: save phase
 * @hdr_done: stream header encoded (save)
 * @init_next: next page of the initial full pass (save)
 * @pending: pages known dirty and not yet sent (save)
 * @init_epoch: the device's @init_epoch when the initial pass began (save)
 * @reinit: the initial pass began again, not yet told by PRECOPY_INFO (save)
 * @seq: next record sequence number (save)
 * @mem_bytes: device memory bytes sent (save)
 * @state: internal state blob (save: saved at STOP_COPY; resume: received)
 * @state_len: bytes in @state
 * @state_done: STATE record encoded (save)
 * @end_done: END record encoded (save)
 * @stage: resume parser position
 * @rec: record header being handled (resume)
 * @chk: stream validation progress (resume)
 * @shadow: device memory image being received (resume)
 * @covered: pages of @shadow received at least once (resume)
 */
struct vmig_file {
	struct file *filp;
	struct vmig_device *mig;
	struct mutex lock;	/* protects all fields below */
	char devname[32];
	wait_queue_head_t wq;
	struct timer_list poll_timer;
	bool disabled;
	u32 reset_gen;
	bool saving;
	int err;
	struct vmig_stream_limits lim;
	unsigned long npages;
	u8 *buf;
	size_t buf_size;
	size_t buf_len;
	size_t buf_pos;
	bool buf_initial;
	/* save */
	enum vmig_save_phase phase;
	bool hdr_done;
	unsigned long init_next;
	unsigned long *pending;
	u32 init_epoch;
	bool reinit;
	u32 seq;
	u64 mem_bytes;
	void *state;
	size_t state_len;
	bool state_done;
	bool end_done;
	/* resume */
	enum vmig_resume_stage stage;
	struct vmig_rec_hdr rec;
	struct vmig_stream_check chk;
	void *shadow;
	unsigned long *covered;
};

static struct device *vmig_dev(struct vmig_device *mig)
{
	return mig->vdev->dev;
}

static const char *vmig_state_name(enum vfio_device_mig_state state)
{
	static const char *const names[] = {
		[VFIO_DEVICE_STATE_ERROR]	= "ERROR",
		[VFIO_DEVICE_STATE_STOP]	= "STOP",
		[VFIO_DEVICE_STATE_RUNNING]	= "RUNNING",
		[VFIO_DEVICE_STATE_STOP_COPY]	= "STOP_COPY",
		[VFIO_DEVICE_STATE_RESUMING]	= "RESUMING",
		[VFIO_DEVICE_STATE_RUNNING_P2P]	= "RUNNING_P2P",
		[VFIO_DEVICE_STATE_PRE_COPY]	= "PRE_COPY",
		[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
	};

	return state < ARRAY_SIZE(names) && names[state] ? names[state] : "?";
}

/* Pages of device memory the stream carries (0: the device has none). */
static unsigned long vmig_npages(const struct vmig_dev_info *info)
{
	return info->mem_size ? info->mem_size / info->mem_page_size : 0;
}

/*
 * With migf->lock held: the session is over, or the device was reset since
 * it began (vmig_reset_done() cannot end it at once).  @mig is valid while
 * the session is not disabled.
 */
static bool vmig_file_dead(struct vmig_file *migf)
{
	return migf->disabled ||
	       READ_ONCE(migf->mig->reset_gen) != migf->reset_gen;
}

/* ---- state mutex with deferred reset ---- */

static void vmig_end_sessions(struct vmig_device *mig);

/*
 * With state_mutex held: the function was reset.  An operation refuses to
 * touch a function reset under it (vmig_reset_overtook()), but one that
 * reached the device just before the reset and an undo that could not run
 * leave nothing behind only if the migration block is put back to idle;
 * otherwise RUNNING could be reported for a quiesced or frozen function.
 * If even that fails, the FSM says ERROR, which only a reset leaves.
 */
static void vmig_idle_after_reset(struct vmig_device *mig)
{
	int ret;

	if (!mig->usable)
		return;
	ret = mig->ops->idle(mig);
	if (!ret)
		return;
	dev_err(vmig_dev(mig), "migration block not idle after a reset (%d): device in ERROR until VFIO_DEVICE_RESET\n",
		ret);
	mig->state = VFIO_DEVICE_STATE_ERROR;
}

/* With state_mutex held: act on resets recorded by vmig_reset_done(). */
static void vmig_reset_pending(struct vmig_device *mig)
{
	bool reset;

	for (;;) {
		spin_lock(&mig->reset_lock);
		reset = mig->deferred_reset;
		mig->deferred_reset = false;
		/* what the operations of this holder are valid for */
		mig->locked_gen = mig->reset_gen;
		spin_unlock(&mig->reset_lock);
		if (!reset)
			return;
		/*
		 * Say so when a reset cut a migration short: a VMM resets the
		 * device when an arc failed, and the guest then lost its state.
		 */
		if (mig->state != VFIO_DEVICE_STATE_RUNNING || mig->saving ||
		    mig->resuming)
			dev_info(vmig_dev(mig),
				 "reset in migration state %s: sessions ended, device RUNNING\n",
				 vmig_state_name(mig->state));
		mig->state = VFIO_DEVICE_STATE_RUNNING;
		vmig_end_sessions(mig);
		vmig_idle_after_reset(mig);
	}
}

/**
 * vmig_reset_overtook - whether the function was reset under an operation
 * @mig: the device
 *
 * For an operation called with the state mutex held, once it holds what a
 * reset of the function holds (vfio-pci's memory_lock, so no reset can
 * come while it works): true if a reset came after the core took the
 * mutex.  The operation must then leave the function alone and return
 * -EAGAIN; the core returns it to idle when it acts on the reset.
 *
 * Return: true if the function was reset since the core looked.
 */
bool vmig_reset_overtook(struct vmig_device *mig)
{
	return READ_ONCE(mig->reset_gen) != mig->locked_gen;
}

static void vmig_state_lock(struct vmig_device *mig)
{
	mutex_lock(&mig->state_mutex);
	vmig_reset_pending(mig);
}

static void vmig_state_unlock(struct vmig_device *mig)
{
	vmig_reset_pending(mig);
	mutex_unlock(&mig->state_mutex);
}

/* ---- sessions: common ---- */

static void vmig_file_free(struct vmig_file *migf)
{
	timer_shutdown_sync(&migf->poll_timer);
	kvfree(migf->buf);
	bitmap_free(migf->pending);
	bitmap_free(migf->covered);
	kvfree(migf->state);
	vfree(migf->shadow);
	mutex_destroy(&migf->lock);
	kfree(migf);
}

/* End a session: I/O fails from now on and the device drops its reference. */
static void vmig_file_disable(struct vmig_file *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	migf->mig = NULL;
	/* Staged data is useless now; free it early rather than at close. */
	vfree(migf->shadow);
	migf->shadow = NULL;
	mutex_unlock(&migf->lock);
	wake_up_interruptible(&migf->wq);
	fput(migf->filp);
}

static int vmig_file_release(struct inode *inode, struct file *filp)
{
	vmig_file_free(filp->private_data);
	return 0;
}

static void vmig_end_saving(struct vmig_device *mig)
{
	if (!mig->saving)
		return;
	vmig_file_disable(mig->saving);
	mig->saving = NULL;
}

static void vmig_end_resuming(struct vmig_device *mig)
{
	if (!mig->resuming)
		return;
	vmig_file_disable(mig->resuming);
	mig->resuming = NULL;
}

static void vmig_end_sessions(struct vmig_device *mig)
{
	vmig_end_saving(mig);
	vmig_end_resuming(mig);
}

static void vmig_limits(struct vmig_device *mig, struct vmig_stream_limits *lim)
{
	lim->compat_id = mig->info.compat_id;
	lim->mem_size = mig->info.mem_size;
	lim->page_size = mig->info.mem_page_size;
	lim->state_max = mig->info.state_max;
}

static void vmig_poll_timer(struct timer_list *t)
{
	struct vmig_file *migf = timer_container_of(migf, t, poll_timer);

	wake_up_interruptible(&migf->wq);
}

static struct vmig_file *vmig_file_alloc(struct vmig_device *mig, bool saving,
					 const struct file_operations *fops)
{
	struct vmig_file *migf;
	int ret = -ENOMEM;

	migf = kzalloc_obj(*migf, GFP_KERNEL_ACCOUNT);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	mutex_init(&migf->lock);
	init_waitqueue_head(&migf->wq);
	timer_setup(&migf->poll_timer, vmig_poll_timer, 0);
	strscpy(migf->devname, dev_name(vmig_dev(mig)), sizeof(migf->devname));
	migf->mig = mig;
	migf->reset_gen = READ_ONCE(mig->reset_gen);
	migf->saving = saving;
	vmig_limits(mig, &migf->lim);
	migf->npages = vmig_npages(&mig->info);

	/* One buffer fits the largest record of either kind. */
	migf->buf_size = sizeof(struct vmig_rec_hdr) +
		max_t(size_t, sizeof(__le64) + VMIG_MEM_CHUNK_MAX,
		      mig->info.state_max);
	migf->buf = kvmalloc(migf->buf_size, GFP_KERNEL_ACCOUNT);
	migf->state = kvmalloc(mig->info.state_max, GFP_KERNEL_ACCOUNT);
	if (!migf->buf || !migf->state)
		goto err;
	if (saving) {
		migf->pending = bitmap_zalloc(migf->npages, GFP_KERNEL_ACCOUNT);
		if (!migf->pending && migf->npages)
			goto err;
	} else {
		migf->covered = bitmap_zalloc(migf->npages, GFP_KERNEL_ACCOUNT);
		migf->shadow = vzalloc(mig->info.mem_size ?: 1);
		if ((!migf->covered && migf->npages) || !migf->shadow)
			goto err;
		migf->chk.lim = &migf->lim;
	}

	migf->filp = anon_inode_getfile("refaccel_mig", fops, migf,
					saving ? O_RDONLY : O_WRONLY);
	if (IS_ERR(migf->filp)) {
		ret = PTR_ERR(migf->filp);
		goto err;
	}
	stream_open(migf->filp->f_inode, migf->filp);
	return migf;
err:
	vmig_file_free(migf);
	return ERR_PTR(ret);
}

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

static void vmig_trace_record(struct vmig_file *migf, bool saving,
			      const struct vmig_rec_hdr *rec)
{
	trace_refaccel_record(migf->devname, saving, le16_to_cpu(rec->type),
			      le32_to_cpu(rec->seq), le64_to_cpu(rec->len));
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
				if (ret != -ENOMSG)
					dev_err(vmig_dev(migf->mig),
						"migration save failed: %d\n", ret);
				break;
			}
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

	poll_wait(filp, &migf->wq, wait);
	mutex_lock(&migf->lock);
	if (vmig_file_dead(migf)) {
		mask = EPOLLERR | EPOLLHUP;
	} else if (migf->phase == VMIG_SAVE_FINAL ||
		   migf->buf_pos < migf->buf_len ||
		   migf->init_next < migf->npages || !migf->hdr_done) {
		mask = EPOLLIN | EPOLLRDNORM;
	} else if (!vmig_save_sync(migf) &&
		   find_first_bit(migf->pending, migf->npages) < migf->npages) {
		/* Dirty pages: readable.  Otherwise nothing to say yet. */
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
static int vmig_save_finalize(struct vmig_device *mig, struct vmig_file *migf,
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

static struct file *vmig_start_saving(struct vmig_device *mig, bool precopy)
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
static int vmig_mem_track_stop(struct vmig_device *mig)
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
static void vmig_stop_saving(struct vmig_device *mig, bool tracking)
{
	if (tracking)
		vmig_mem_track_stop(mig);
	vmig_end_saving(mig);
}

/* ---- resuming ---- */

static int vmig_resume_fail(struct vmig_file *migf, int err, const char *why)
{
	/* A user can feed any number of bad streams: don't flood the log. */
	dev_err_ratelimited(vmig_dev(migf->mig),
			    "migration stream rejected at record %u: %s (%d)\n",
			    migf->chk.next_seq, why, err);
	migf->err = err;
	return err;
}

/* A complete record payload is in migf->buf: validate it and stage it. */
static int vmig_resume_record(struct vmig_file *migf)
{
	u64 len = le64_to_cpu(migf->rec.len);
	const char *why;
	u64 off;
	int ret;

	ret = vmig_stream_check_payload(&migf->chk, &migf->rec, migf->buf, &why);
	if (ret)
		return vmig_resume_fail(migf, ret, why);
	vmig_trace_record(migf, false, &migf->rec);

	switch (le16_to_cpu(migf->rec.type)) {
	case VMIG_REC_MEM:
		off = get_unaligned_le64(migf->buf);
		len -= sizeof(__le64);
		memcpy(migf->shadow + off, migf->buf + sizeof(__le64), len);
		bitmap_set(migf->covered, off / migf->lim.page_size,
			   len / migf->lim.page_size);
		break;
	case VMIG_REC_STATE:
		memcpy(migf->state, migf->buf, len);
		migf->state_len = len;
		break;
	case VMIG_REC_END:
		if (!bitmap_full(migf->covered, migf->npages))
			return vmig_resume_fail(migf, -EINVAL,
				"stream ends with device memory pages never sent");
		migf->stage = VMIG_RES_DONE;
		return 0;
	}
	migf->stage = VMIG_RES_REC;
	return 0;
}

/* Take bytes into migf->buf up to @want; returns bytes consumed or -errno. */
static ssize_t vmig_resume_take(struct vmig_file *migf, const char __user **ubuf,
				size_t *len, size_t want)
{
	size_t n = min(*len, want - migf->buf_pos);

	if (copy_from_user(migf->buf + migf->buf_pos, *ubuf, n))
		return -EFAULT;
	migf->buf_pos += n;
	*ubuf += n;
	*len -= n;
	return n;
}

static int vmig_resume_step(struct vmig_file *migf, const char __user **ubuf,
			    size_t *len)
{
	const char *why;
	ssize_t n;
	int ret;

	switch (migf->stage) {
	case VMIG_RES_HDR:
		n = vmig_resume_take(migf, ubuf, len, sizeof(struct vmig_stream_hdr));
		if (n < 0)
			return n;
		if (migf->buf_pos < sizeof(struct vmig_stream_hdr))
			return 0;
		ret = vmig_stream_check_hdr((void *)migf->buf, &migf->lim, &why);
		if (ret)
			return vmig_resume_fail(migf, ret, why);
		break;
	case VMIG_RES_REC:
		n = vmig_resume_take(migf, ubuf, len, sizeof(struct vmig_rec_hdr));
		if (n < 0)
			return n;
		if (migf->buf_pos < sizeof(struct vmig_rec_hdr))
			return 0;
		memcpy(&migf->rec, migf->buf, sizeof(migf->rec));
		ret = vmig_stream_check_rec(&migf->chk, &migf->rec, &why);
		if (ret)
			return vmig_resume_fail(migf, ret, why);
		/* Lengths are bounded by the check above, so they fit buf. */
		migf->stage = VMIG_RES_PAYLOAD;
		migf->buf_pos = 0;
		return 0;
	case VMIG_RES_PAYLOAD:
		n = vmig_resume_take(migf, ubuf, len, le64_to_cpu(migf->rec.len));
		if (n < 0)
			return n;
		if (migf->buf_pos < le64_to_cpu(migf->rec.len))
			return 0;
		ret = vmig_resume_record(migf);
		if (ret)
			return ret;
		break;
	case VMIG_RES_DONE:
		return vmig_resume_fail(migf, -EINVAL, "data after END record");
	}
	if (migf->stage == VMIG_RES_HDR)
		migf->stage = VMIG_RES_REC;
	migf->buf_pos = 0;
	return 0;
}

static ssize_t vmig_resume_write(struct file *filp, const char __user *ubuf,
				 size_t len, loff_t *pos)
{
	struct vmig_file *migf = filp->private_data;
	size_t left = len;
	int ret = 0;

	if (pos)
		return -ESPIPE;

	mutex_lock(&migf->lock);
	if (vmig_file_dead(migf))
		ret = -ENODEV;
	else if (migf->err)
		ret = migf->err;
	while (!ret && left)
		ret = vmig_resume_step(migf, &ubuf, &left);
	if (migf->mig)
		atomic64_add(len - left, &migf->mig->stats.bytes_loaded);
	mutex_unlock(&migf->lock);
	trace_refaccel_data(migf->devname, false, len, ret ? ret : len);
	return ret ? ret : len;
}

static __poll_t vmig_resume_poll(struct file *filp, poll_table *wait)
{
	struct vmig_file *migf = filp->private_data;
	__poll_t mask;

	poll_wait(filp, &migf->wq, wait);
	mutex_lock(&migf->lock);
	if (vmig_file_dead(migf) || migf->err)
		mask = EPOLLERR | EPOLLHUP;
	else
		mask = EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&migf->lock);
	return mask;
}

static const struct file_operations vmig_resume_fops = {
	.owner = THIS_MODULE,
	.write = vmig_resume_write,
	.poll = vmig_resume_poll,
	.release = vmig_file_release,
};

static struct file *vmig_start_resuming(struct vmig_device *mig)
{
	struct vmig_file *migf;

	migf = vmig_file_alloc(mig, false, &vmig_resume_fops);
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	get_file(migf->filp);
	mig->resuming = migf;
	return migf->filp;
}

/*
 * RESUMING -> STOP.  Everything was validated as it arrived; the device gets
 * the state first (it may still refuse it, and then nothing was applied),
 * then the memory image.  Only a failure after that point is ERROR.
 */
static int vmig_apply(struct vmig_device *mig)
{
	struct vmig_file *migf = mig->resuming;
	int ret;

	mutex_lock(&migf->lock);
	if (migf->err) {
		ret = migf->err;
		dev_err_ratelimited(vmig_dev(mig),
				    "cannot leave RESUMING: the stream was rejected (%d)\n",
				    ret);
		goto out;
	}
	if (migf->stage != VMIG_RES_DONE) {
		ret = -EINVAL;
		dev_err_ratelimited(vmig_dev(mig),
				    "cannot leave RESUMING: stream truncated after %u records\n",
				    migf->chk.next_seq);
		goto out;
	}
	ret = mig->ops->state_load(mig, migf->state, migf->state_len);
	if (ret)
		goto out;
	if (mig->info.mem_size) {
		ret = mig->ops->mem_write(mig, 0, migf->shadow,
					  mig->info.mem_size);
		/* a reset overtook it: RUNNING, not ERROR (vmig_set_state()) */
		if (ret && ret != -EAGAIN) {
			dev_err(vmig_dev(mig),
				"device memory restore failed after state load (%d): device in ERROR\n",
				ret);
			ret = -EIO;
		}
	}
	if (ret)
		mig->state = VFIO_DEVICE_STATE_ERROR;
out:
	mutex_unlock(&migf->lock);
	return ret;
}

/* ---- the FSM ---- */

static int vmig_quiesce(struct vmig_device *mig)
{
	/*
	 * Never wait for the user to answer a page request: it may not come
	 * (QEMU stops the vCPUs before this arc), so outstanding requests are
	 * withdrawn and their work retried once the device runs again.
	 */
	struct vmig_quiesce_args args = {
		.timeout_ms = mig->quiesce_timeout_ms,
		.abort_pri = true,
		.park = mig->quiesce_park,
	};
	ktime_t start = ktime_get();
	int ret;

	ret = mig->ops->quiesce(mig, &args);
	mig->last_quiesce = (struct vmig_quiesce_stat){
		.done = true,
		.err = ret,
		.us = min_t(s64, ktime_us_delta(ktime_get(), start), U32_MAX),
		.in_flight = args.in_flight,
	};
	trace_refaccel_quiesce(dev_name(vmig_dev(mig)), args.timeout_ms,
			       args.park, mig->last_quiesce.us, args.in_flight,
			       args.parked, ret);
	mig->stats.quiesces++;
	if (ret)
		mig->stats.quiesce_failures++;
	else if (!mig->stats.quiesce_us_min ||
		 mig->last_quiesce.us < mig->stats.quiesce_us_min)
		mig->stats.quiesce_us_min = max(mig->last_quiesce.us, 1u);
	mig->stats.quiesce_us_max = max(mig->stats.quiesce_us_max,
					mig->last_quiesce.us);
	if (ret && args.stuck) {
		dev_err(vmig_dev(mig), "quiesce failed (%d) and could not be withdrawn: device in ERROR\n",
			ret);
		mig->state = VFIO_DEVICE_STATE_ERROR;
	}
	return ret;
}

/*
 * Execute one arc.  On failure the device is still in mig->state unless
 * the arc set VFIO_DEVICE_STATE_ERROR itself (see Documentation).
 */
static struct file *vmig_step(struct vmig_device *mig,
			      enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = mig->state;
	int ret;

#define ARC(a, b) (cur == VFIO_DEVICE_STATE_##a && next == VFIO_DEVICE_STATE_##b)
	if (ARC(RUNNING, RUNNING_P2P) || ARC(PRE_COPY, PRE_COPY_P2P)) {
		ret = vmig_quiesce(mig);
	} else if (ARC(RUNNING_P2P, RUNNING) || ARC(PRE_COPY_P2P, PRE_COPY)) {
		ret = mig->ops->unquiesce(mig);
	} else if (ARC(RUNNING_P2P, STOP)) {
		ret = mig->ops->freeze(mig);
	} else if (ARC(STOP, RUNNING_P2P)) {
		ret = mig->ops->unfreeze(mig);
	} else if (ARC(STOP, STOP_COPY)) {
		return vmig_start_saving(mig, false);
	} else if (ARC(RUNNING, PRE_COPY) || ARC(RUNNING_P2P, PRE_COPY_P2P)) {
		return vmig_start_saving(mig, true);
	} else if (ARC(PRE_COPY_P2P, STOP_COPY)) {
		ret = mig->ops->freeze(mig);
		if (ret)
			return ERR_PTR(ret);
		if (mig->saving) {
			ret = vmig_save_finalize(mig, mig->saving, true);
		} else {
			dev_err(vmig_dev(mig), "no PRE_COPY session to finish\n");
			ret = -EINVAL;
		}
		if (ret && mig->ops->unfreeze(mig))
			mig->state = VFIO_DEVICE_STATE_ERROR;
		/*
		 * The final pass is complete and the session in its final
		 * phase: STOP_COPY is reached.  Tracking that will not stop
		 * is only cleanup (the device is frozen, nothing dirties SRAM)
		 * and the next session or reset starts it afresh.
		 */
		if (!ret && vmig_mem_track_stop(mig))
			dev_warn(vmig_dev(mig), "SRAM tracking did not stop after the final pass; STOP_COPY reached anyway\n");
	} else if (ARC(PRE_COPY, RUNNING) || ARC(PRE_COPY_P2P, RUNNING_P2P)) {
		vmig_stop_saving(mig, true);
		ret = 0;
	} else if (ARC(STOP_COPY, STOP)) {
		vmig_stop_saving(mig, false);
		ret = 0;
	} else if (ARC(STOP, RESUMING)) {
		return vmig_start_resuming(mig);
	} else if (ARC(RESUMING, STOP)) {
		ret = vmig_apply(mig);
		if (!ret || mig->state == VFIO_DEVICE_STATE_ERROR)
			vmig_end_resuming(mig);
	} else {
		/* vfio_mig_get_next_state() never hands out anything else. */
		ret = -EINVAL;
	}
#undef ARC
	return ret ? ERR_PTR(ret) : NULL;
}

/*
 * The errnos an arc fails with, counted apart in debugfs: the bound
 * (ETIMEDOUT), a killed wait (EINTR), a reset overtaking the arc
 * (EAGAIN), a bad request (EINVAL), device errors (EIO, ENODEV, EBUSY:
 * runtime PM) and a refused stream version (EPROTONOSUPPORT).
 */
static const struct {
	int err;
	const char *name;
} vmig_stat_errnos[VMIG_STAT_ERRNOS] = {
	{ ETIMEDOUT, "ETIMEDOUT" }, { EINTR, "EINTR" }, { EAGAIN, "EAGAIN" },
	{ EINVAL, "EINVAL" }, { EIO, "EIO" }, { ENODEV, "ENODEV" },
	{ EBUSY, "EBUSY" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
};

static void vmig_count_failure(struct vmig_stats *st, long err)
{
	unsigned int i;

	st->arc_failures++;
	for (i = 0; i < VMIG_STAT_ERRNOS; i++)
		if (vmig_stat_errnos[i].err == -err)
			break;
	st->arc_errno[i]++;
}

/*
 * An arc left the device in ERROR: nothing it was doing can go on.  End the
 * sessions (their fds fail from now on) and stop tracking if it may still
 * run; only VFIO_DEVICE_RESET brings the device back.
 */
static void vmig_enter_error(struct vmig_device *mig)
{
	if (mig->saving)
		vmig_mem_track_stop(mig);
	vmig_end_sessions(mig);
	dev_err(vmig_dev(mig),
		"migration state ERROR: sessions ended, VFIO_DEVICE_RESET recovers the device\n");
}

struct file *vmig_set_state(struct vmig_device *mig,
			    enum vfio_device_mig_state new_state)
{
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	u32 gen;
	ktime_t t0;
	int ret;

	vmig_state_lock(mig);
	/* the reset count the operations check against */
	gen = mig->locked_gen;
	if (!mig->usable) {
		res = ERR_PTR(-EOPNOTSUPP);
	} else if (mig->state == VFIO_DEVICE_STATE_ERROR &&
		   new_state != VFIO_DEVICE_STATE_ERROR) {
		/* No arc leaves ERROR (vfio_mig_get_next_state() WARNs). */
		dev_err_ratelimited(vmig_dev(mig),
				    "SET_STATE %u refused: the device is in ERROR until VFIO_DEVICE_RESET\n",
				    new_state);
		res = ERR_PTR(-EINVAL);
	}
	while (!IS_ERR(res) && mig->state != new_state) {
		/* overtaken by a reset: no further arc (EAGAIN below) */
		if (READ_ONCE(mig->reset_gen) != gen)
			break;
		ret = vfio_mig_get_next_state(mig->vdev, mig->state, new_state,
					      &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		t0 = ktime_get();
		res = vmig_step(mig, next);
		trace_refaccel_arc(dev_name(vmig_dev(mig)), mig->state, next,
				   ktime_us_delta(ktime_get(), t0),
				   PTR_ERR_OR_ZERO(res));
		mig->stats.arcs++;
		if (IS_ERR(res))
			vmig_count_failure(&mig->stats, PTR_ERR(res));
		else if (res)
			mig->stats.sessions++;
		/*
		 * A reset overtook the arc: the device is RUNNING again (below),
		 * so an ERROR or an undo the arc could not make is moot.
		 */
		if (IS_ERR(res) && READ_ONCE(mig->reset_gen) != gen)
			break;
		if (IS_ERR(res)) {
			/* A VMM may reset the device for this: always say it. */
			dev_warn_ratelimited(vmig_dev(mig),
					     "arc %s -> %s failed (%ld), device in %s\n",
					     vmig_state_name(mig->state),
					     vmig_state_name(next), PTR_ERR(res),
					     vmig_state_name(mig->state));
			if (mig->state == VFIO_DEVICE_STATE_ERROR)
				vmig_enter_error(mig);
			break;
		}
		dev_dbg(vmig_dev(mig), "arc %s -> %s took %lld us\n",
			vmig_state_name(mig->state), vmig_state_name(next),
			ktime_us_delta(ktime_get(), t0));
		mig->state = next;
		if (WARN_ON(res && new_state != next)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	/*
	 * A reset overtook the request (it came while an arc waited for the
	 * device): the device is RUNNING again, whatever the arc did or
	 * failed to do because of it, and a session it opened is already
	 * over.  Say so, the same way every time.
	 */
	if (READ_ONCE(mig->reset_gen) != gen) {
		dev_dbg(vmig_dev(mig), "SET_STATE %s overtaken by a reset: EAGAIN, device RUNNING\n",
			vmig_state_name(new_state));
		if (!IS_ERR_OR_NULL(res))
			fput(res);
		res = ERR_PTR(-EAGAIN);
	}
	vmig_state_unlock(mig);
	return res;
}

int vmig_get_state(struct vmig_device *mig,
		   enum vfio_device_mig_state *cur_state)
{
	vmig_state_lock(mig);
	*cur_state = mig->state;
	vmig_state_unlock(mig);
	return 0;
}

/* Bytes a STOP_COPY would produce from here (an estimate, per uAPI). */
int vmig_get_data_size(struct vmig_device *mig, unsigned long *len)
{
	struct vmig_file *migf;
	unsigned long pages;
	size_t tail;

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
	vmig_state_unlock(mig);
	return 0;
}

/* ---- the quiesce bound of this open (driver-private uAPI) ---- */

void vmig_get_quiesce(struct vmig_device *mig, unsigned int *timeout_ms,
		      bool *park, struct vmig_quiesce_stat *last)
{
	vmig_state_lock(mig);
	*timeout_ms = mig->quiesce_timeout_ms;
	*park = mig->quiesce_park;
	*last = mig->last_quiesce;
	vmig_state_unlock(mig);
}

/* The caller checked the bounds; the next quiesce uses them. */
void vmig_set_quiesce(struct vmig_device *mig, unsigned int timeout_ms,
		      bool park)
{
	vmig_state_lock(mig);
	mig->quiesce_timeout_ms = timeout_ms;
	mig->quiesce_park = park;
	vmig_state_unlock(mig);
}

/*
 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 SET, where the vfio core passes it
 * to the driver (before 7.x): the same rules as the 7.x core's handler.
 * The opt-in lasts until the device is closed.
 */
int vmig_feature_precopy_v2(struct vmig_device *mig, u32 flags, size_t argsz)
{
	int ret;

	if (!mig->usable || !(VMIG_FLAGS & VFIO_MIGRATION_PRE_COPY))
		return -EINVAL;
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;
	WRITE_ONCE(mig->precopy_v2, true);
	return 0;
}

/* ---- lifecycle ---- */

void vmig_init(struct vmig_device *mig, struct vfio_device *vdev,
	       const struct vmig_dev_ops *ops, unsigned int quiesce_timeout_ms)
{
	mig->vdev = vdev;
	mig->ops = ops;
	mig->quiesce_default_ms = quiesce_timeout_ms;
	mig->quiesce_timeout_ms = quiesce_timeout_ms;
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	mutex_init(&mig->state_mutex);
	spin_lock_init(&mig->reset_lock);
	vmig_log_init(&mig->log);
}

void vmig_uninit(struct vmig_device *mig)
{
	vmig_log_uninit(&mig->log);
	mutex_destroy(&mig->state_mutex);
}

/* A tracker the log cannot use is no tracker (DMA logging: EOPNOTSUPP). */
static bool vmig_dma_info_valid(const struct vmig_dev_info *info)
{
	return info->dma_max_ranges <= VMIG_LOG_MAX_RANGES &&
	       info->dma_pgshift_min >= 12 &&
	       info->dma_pgshift_min <= info->dma_pgshift_max &&
	       info->dma_pgshift_max < 32 &&
	       info->dma_max_span >= 1ull << info->dma_pgshift_max;
}

static bool vmig_info_valid(const struct vmig_dev_info *info)
{
	/* both size buffers the core allocates per session */
	if (!info->state_max || info->state_max > VMIG_STATE_MAX)
		return false;
	if (!info->mem_size)
		return true;
	if (info->mem_size > VMIG_MEM_MAX)
		return false;
	return info->mem_page_size && is_power_of_2(info->mem_page_size) &&
	       info->mem_page_size <= VMIG_MEM_CHUNK_MAX &&
	       !(info->mem_size % info->mem_page_size);
}

/*
 * Whatever goes wrong here, the function still opens and works as with
 * vfio-pci; only migration is refused (every arc fails with EOPNOTSUPP).
 */
/*
 * The operations every arc, open, close and reset may call; the memory and
 * DMA tracker ones only where get_info reports memory or a tracker.
 */
static bool vmig_ops_complete(const struct vmig_dev_ops *ops)
{
	return ops->get_info && ops->idle && ops->quiesce && ops->unquiesce &&
	       ops->freeze && ops->unfreeze && ops->state_save &&
	       ops->state_load;
}

void vmig_open(struct vmig_device *mig)
{
	struct vmig_dev_info info = {};
	int ret;

	vmig_state_lock(mig);
	mig->usable = false;
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	if (!vmig_ops_complete(mig->ops)) {
		dev_err(vmig_dev(mig), "device driver lacks a mandatory migration operation: migration refused\n");
		goto out;
	}
	ret = mig->ops->get_info(mig, &info);
	if (ret) {
		if (ret != -EOPNOTSUPP)
			dev_err(vmig_dev(mig), "cannot read the migration facts of the device (%d): migration refused\n",
				ret);
		goto out;
	}
	if (!vmig_info_valid(&info)) {
		dev_err(vmig_dev(mig), "device reports unusable migration geometry (state %u bytes, memory %llu bytes in %u-byte pages): migration refused\n",
			info.state_max, info.mem_size, info.mem_page_size);
		goto out;
	}
	if (info.dma_max_ranges && !vmig_dma_info_valid(&info)) {
		dev_warn(vmig_dev(mig), "device reports unusable DMA dirty tracking limits (%u ranges, page shift %u..%u, span %llu): no DMA logging\n",
			 info.dma_max_ranges, info.dma_pgshift_min,
			 info.dma_pgshift_max, info.dma_max_span);
		info.dma_max_ranges = 0;
	}
	/* whatever the previous user or a failed close left behind */
	ret = mig->ops->idle(mig);
	if (ret) {
		dev_err(vmig_dev(mig), "cannot return the migration block to idle (%d): migration refused\n",
			ret);
		goto out;
	}
	mig->info = info;
	mig->quiesce_timeout_ms = READ_ONCE(mig->quiesce_default_ms);
	mig->quiesce_park = false;
	mig->last_quiesce = (struct vmig_quiesce_stat){};
	WRITE_ONCE(mig->precopy_v2, false);
	mig->usable = true;
out:
	vmig_state_unlock(mig);
}

void vmig_close(struct vmig_device *mig)
{
	vmig_log_close(mig);
	vmig_state_lock(mig);
	vmig_end_sessions(mig);
	/* the next user must find the function running, whatever we left */
	if (mig->usable && mig->state != VFIO_DEVICE_STATE_RUNNING &&
	    mig->ops->idle(mig))
		dev_warn(vmig_dev(mig), "migration block not idle at close; the function reset of the close clears it\n");
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	mig->usable = false;
	WRITE_ONCE(mig->precopy_v2, false);
	vmig_state_unlock(mig);
}

/*
 * The function was reset (VFIO_DEVICE_RESET, FLR, bus reset): the device is
 * RUNNING again and any session is over.  The caller holds memory_lock for
 * writing, which arcs and session readers may be waiting for while they
 * hold state_mutex or a session mutex: take neither (see the comment at the
 * top).  Sessions see the new count at once; the next holder of
 * state_mutex moves the FSM to RUNNING and ends them.
 */
void vmig_reset_done(struct vmig_device *mig)
{
	spin_lock(&mig->reset_lock);
	mig->deferred_reset = true;
	WRITE_ONCE(mig->reset_gen, mig->reset_gen + 1);
	mig->stats.resets++;
	spin_unlock(&mig->reset_lock);
	trace_refaccel_reset(dev_name(vmig_dev(mig)), READ_ONCE(mig->reset_gen));
}

/* ---- debugfs: <debugfs>/refaccel_vfio_pci/<device>/status ---- */

static int vmig_status_show(struct seq_file *m, void *unused)
{
	struct vmig_device *mig = m->private;
	struct vmig_stats *st = &mig->stats;
	unsigned int i;

	vmig_state_lock(mig);
	seq_printf(m, "state: %s\n", vmig_state_name(mig->state));
	seq_printf(m, "migration: %s\n", mig->usable ? "usable (open)" : "closed or not usable");
	seq_printf(m, "saving_session: %s\n", mig->saving ? "yes" : "no");
	seq_printf(m, "resuming_session: %s\n", mig->resuming ? "yes" : "no");
	seq_printf(m, "quiesce_timeout_ms: %u\n", mig->quiesce_timeout_ms);
	seq_printf(m, "quiesce_mode: %s\n", mig->quiesce_park ? "park" : "drain");
	seq_printf(m, "quiesce_default_ms: %u\n",
		   READ_ONCE(mig->quiesce_default_ms));
	seq_printf(m, "dma_logging: %s\n", mig->log.active ? "on" : "off");
	seq_printf(m, "arcs: %llu\n", st->arcs);
	seq_printf(m, "arc_failures: %llu\n", st->arc_failures);
	seq_puts(m, "arc_failures_by_errno:");
	for (i = 0; i < VMIG_STAT_ERRNOS; i++)
		seq_printf(m, " %s=%llu", vmig_stat_errnos[i].name,
			   st->arc_errno[i]);
	seq_printf(m, " other=%llu\n", st->arc_errno[VMIG_STAT_ERRNOS]);
	seq_printf(m, "quiesces: %llu\n", st->quiesces);
	seq_printf(m, "quiesce_failures: %llu\n", st->quiesce_failures);
	seq_printf(m, "quiesce_us_min: %u\n", st->quiesce_us_min);
	seq_printf(m, "quiesce_us_max: %u\n", st->quiesce_us_max);
	seq_printf(m, "quiesce_us_last: %u\n", mig->last_quiesce.us);
	seq_printf(m, "sessions: %llu\n", st->sessions);
	seq_printf(m, "bytes_saved: %lld\n", atomic64_read(&st->bytes_saved));
	seq_printf(m, "bytes_loaded: %lld\n", atomic64_read(&st->bytes_loaded));
	seq_printf(m, "resets: %llu\n", READ_ONCE(st->resets));
	vmig_state_unlock(mig);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vmig_status);

void vmig_debugfs_init(struct vmig_device *mig, struct dentry *parent)
{
	if (IS_ERR_OR_NULL(parent))
		return;
	mig->debugfs = debugfs_create_dir(dev_name(vmig_dev(mig)), parent);
	debugfs_create_file("status", 0400, mig->debugfs, mig,
			    &vmig_status_fops);
}

void vmig_debugfs_exit(struct vmig_device *mig)
{
	debugfs_remove_recursive(mig->debugfs);
	mig->debugfs = NULL;
}
