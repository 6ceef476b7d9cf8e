// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration core: the life of a data_fd session.  A session is created by
 * an arc (mig.c) and ended by an arc, a reset or the device's close; the
 * user's fd may outlive all three, so an ended session only fails I/O.
 */

#include <linux/anon_inodes.h>
#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/slab.h>

#include "compat.h"
#include "mig_core.h"
#include "trace.h"

/* ---- sessions: common ---- */

/* The session's buffers: what only its I/O uses (none once it ended). */
static void vmig_file_free_bufs(struct vmig_file *migf)
{
	kvfree(migf->buf);
	migf->buf = NULL;
	bitmap_free(migf->pending);
	migf->pending = NULL;
	bitmap_free(migf->covered);
	migf->covered = NULL;
	kvfree(migf->state);
	migf->state = NULL;
	kvfree(migf->shadow);
	migf->shadow = NULL;
}

static void vmig_file_free(struct vmig_file *migf)
{
	timer_shutdown_sync(&migf->poll_timer);
	vmig_file_free_bufs(migf);
	mutex_destroy(&migf->lock);
	kfree(migf);
}

/* End a session: I/O fails from now on and the device drops its reference. */
static void vmig_file_disable(struct vmig_file *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	migf->mig = NULL;
	/*
	 * Every file operation fails from now on before it looks at a
	 * buffer: free them now, not when the user gets round to close().
	 */
	vmig_file_free_bufs(migf);
	mutex_unlock(&migf->lock);
	wake_up_interruptible(&migf->wq);
	fput(migf->filp);
}

int vmig_file_release(struct inode *inode, struct file *filp)
{
	vmig_file_free(filp->private_data);
	return 0;
}

void vmig_end_saving(struct vmig_device *mig)
{
	if (!mig->saving)
		return;
	vmig_file_disable(mig->saving);
	mig->saving = NULL;
}

void vmig_end_resuming(struct vmig_device *mig)
{
	if (!mig->resuming)
		return;
	vmig_file_disable(mig->resuming);
	mig->resuming = NULL;
}

void vmig_end_sessions(struct vmig_device *mig)
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

struct vmig_file *vmig_file_alloc(struct vmig_device *mig, bool saving,
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
		/* up to VMIG_MEM_MAX, charged to the user like the rest */
		migf->shadow = kvzalloc(mig->info.mem_size ?: 1,
					GFP_KERNEL_ACCOUNT);
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

void vmig_trace_record(struct vmig_file *migf, bool saving,
		       const struct vmig_rec_hdr *rec)
{
	trace_refaccel_record(migf->devname, saving, le16_to_cpu(rec->type),
			      le32_to_cpu(rec->seq), le64_to_cpu(rec->len));
}
