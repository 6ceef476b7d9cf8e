/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Migration stream format v1: a header followed by typed, checksummed,
 * sequence-numbered records.  Pure data handling, no device access, so the
 * encoder and the validators can be unit tested on their own.
 *
 * Documentation/migration-stream.rst describes the format for users.
 */
#ifndef VMIG_STREAM_H
#define VMIG_STREAM_H

#include <linux/types.h>

#include <uapi/linux/refaccel_vfio.h>

/* What the destination knows about itself, to judge a stream against. */
struct vmig_stream_limits {
	u32 compat_id;
	u64 mem_size;
	u32 page_size;
	u32 state_max;
};

/* Progress of a stream being validated, record by record. */
struct vmig_stream_check {
	const struct vmig_stream_limits *lim;
	u32 next_seq;
	u64 mem_bytes;
	bool have_state;
	bool have_end;
};

u32 vmig_crc(const void *buf, size_t len);

void vmig_stream_hdr_init(struct vmig_stream_hdr *hdr,
			  const struct vmig_stream_limits *lim);
void vmig_rec_hdr_init(struct vmig_rec_hdr *rec, enum vmig_rec_type type,
		       u32 seq, const void *payload, size_t len);

/*
 * Validators return 0 or a negative errno and set *why to a static string
 * naming the failed check, for the caller's log line.
 */
int vmig_stream_check_hdr(const struct vmig_stream_hdr *hdr,
			  const struct vmig_stream_limits *lim,
			  const char **why);
int vmig_stream_check_rec(struct vmig_stream_check *chk,
			  const struct vmig_rec_hdr *rec, const char **why);
int vmig_stream_check_payload(struct vmig_stream_check *chk,
			      const struct vmig_rec_hdr *rec,
			      const void *payload, const char **why);

#endif /* VMIG_STREAM_H */
