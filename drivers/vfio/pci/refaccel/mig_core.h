/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the files of the migration core share and nothing else sees: the
 * data_fd session (struct vmig_file) and the calls between the core's
 * jobs.  mig.c: the FSM, its state mutex and the deferred reset;
 * mig_session.c: a data_fd's life; mig_save.c and mig_resume.c: the two
 * directions of the stream; mig_lifecycle.c: probe, open and close.
 */
#ifndef VMIG_CORE_H
#define VMIG_CORE_H

#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/timer.h>
#include <linux/wait.h>

#include "mig.h"
#include "stream.h"

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

static inline struct device *vmig_dev(struct vmig_device *mig)
{
	return mig->vdev->dev;
}

/* Pages of device memory the stream carries (0: the device has none). */
static inline unsigned long vmig_npages(const struct vmig_dev_info *info)
{
	return info->mem_size ? info->mem_size / info->mem_page_size : 0;
}

/*
 * With migf->lock held: the session is over, or the device was reset since
 * it began (vmig_reset_done() cannot end it at once).  @mig is valid while
 * the session is not disabled.
 */
static inline bool vmig_file_dead(struct vmig_file *migf)
{
	return migf->disabled ||
	       READ_ONCE(migf->mig->reset_gen) != migf->reset_gen;
}

/* the FSM (mig.c) */
void vmig_state_lock(struct vmig_device *mig);
void vmig_state_unlock(struct vmig_device *mig);

/* sessions (mig_session.c) */
int vmig_file_release(struct inode *inode, struct file *filp);
void vmig_end_saving(struct vmig_device *mig);
void vmig_end_resuming(struct vmig_device *mig);
void vmig_end_sessions(struct vmig_device *mig);
struct vmig_file *vmig_file_alloc(struct vmig_device *mig, bool saving,
				  const struct file_operations *fops);
void vmig_trace_record(struct vmig_file *migf, bool saving,
		       const struct vmig_rec_hdr *rec);

/* saving (mig_save.c) */
int vmig_save_finalize(struct vmig_device *mig, struct vmig_file *migf,
		       bool sync);
struct file *vmig_start_saving(struct vmig_device *mig, bool precopy);
int vmig_mem_track_stop(struct vmig_device *mig);
void vmig_stop_saving(struct vmig_device *mig, bool tracking);

/* resuming (mig_resume.c) */
struct file *vmig_start_resuming(struct vmig_device *mig);
int vmig_apply(struct vmig_device *mig);

#endif /* VMIG_CORE_H */
