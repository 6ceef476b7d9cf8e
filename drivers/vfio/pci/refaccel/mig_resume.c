// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration core: the resuming data_fd.  The stream is checked record by
 * record into a shadow of the device memory; nothing reaches the device
 * before RESUMING -> STOP applies a complete, valid stream at once
 * (vmig_apply()), so a bad stream never leaves state half-loaded.
 */

#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>

#include "compat.h"
#include "mig_core.h"
#include "trace.h"

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

/*
 * Take bytes into migf->buf up to @want; returns bytes consumed or -EFAULT.
 * On a fault the bytes copied before it still count as consumed, so that
 * the stream position is exactly what write() reports (see there).
 */
static ssize_t vmig_resume_take(struct vmig_file *migf, const char __user **ubuf,
				size_t *len, size_t want)
{
	size_t n = min(*len, want - migf->buf_pos);
	size_t left = copy_from_user(migf->buf + migf->buf_pos, *ubuf, n);

	n -= left;
	migf->buf_pos += n;
	*ubuf += n;
	*len -= n;
	return left ? -EFAULT : n;
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

/*
 * A fault in the user's buffer is not the stream's fault and is not sticky:
 * write() returns the bytes taken before it (a short write, as pipes do),
 * or -EFAULT if there were none, so the caller knows exactly where the
 * stream stands and a retry from there neither skips nor repeats a byte.
 * A stream found invalid fails this and every later write().
 */
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
	if (ret == -EFAULT && left < len)
		ret = 0;
	trace_refaccel_data(migf->devname, false, len, ret ? ret : len - left);
	return ret ? ret : len - left;
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

struct file *vmig_start_resuming(struct vmig_device *mig)
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
int vmig_apply(struct vmig_device *mig)
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
