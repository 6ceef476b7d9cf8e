/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * Driver-private uAPI of refaccel-vfio-pci: the migration stream format and
 * a VFIO_DEVICE_FEATURE to bound and observe the device's quiesce.
 *
 * The migration data stream is opaque to a VMM: it moves the bytes from the
 * source data_fd to the destination data_fd unchanged.  Its format is
 * published here for debugging tools (tools/vmig-decode) and tests, and
 * described in Documentation/migration-stream.rst.  All fields are little
 * endian.
 */
#ifndef _UAPI_LINUX_REFACCEL_VFIO_H
#define _UAPI_LINUX_REFACCEL_VFIO_H

#include <linux/types.h>

/* ---- migration stream, format version 1 ---- */

#define VMIG_STREAM_MAGIC	0x47494d56	/* "VMIG" little endian */
#define VMIG_STREAM_VERSION	1

/* Largest device-memory payload in one MEM record (plus its offset). */
#define VMIG_MEM_CHUNK_MAX	(64 * 1024)

/**
 * struct vmig_stream_hdr - first 32 bytes of every stream
 * @magic: VMIG_STREAM_MAGIC
 * @version: VMIG_STREAM_VERSION
 * @hdr_len: sizeof(struct vmig_stream_hdr); lets a newer reader skip fields
 * @compat_id: device compatibility id; source and destination must match
 * @flags: must be zero in version 1
 * @mem_size: bytes of device memory described by MEM records
 * @page_size: granularity of MEM record offsets and lengths
 * @crc: crc32c of the preceding 28 bytes
 */
struct vmig_stream_hdr {
	__le32 magic;
	__le16 version;
	__le16 hdr_len;
	__le32 compat_id;
	__le32 flags;
	__le64 mem_size;
	__le32 page_size;
	__le32 crc;
};

enum vmig_rec_type {
	VMIG_REC_MEM	= 1,	/* __le64 offset, then device memory bytes */
	VMIG_REC_STATE	= 2,	/* opaque device internal state */
	VMIG_REC_END	= 3,	/* struct vmig_rec_end */
};

/**
 * struct vmig_rec_hdr - header of every record
 * @type: enum vmig_rec_type
 * @flags: must be zero in version 1
 * @seq: 0 for the first record, then +1; catches lost, duplicated and
 *	 reordered records
 * @len: payload bytes that follow this header
 * @payload_crc: crc32c of the payload
 * @crc: crc32c of the preceding 20 bytes of this header
 */
struct vmig_rec_hdr {
	__le16 type;
	__le16 flags;
	__le32 seq;
	__le64 len;
	__le32 payload_crc;
	__le32 crc;
};

/**
 * struct vmig_rec_end - payload of the END record
 * @nr_records: records before END (so END's seq + 1 == nothing else)
 * @mem_bytes: total device memory bytes carried by MEM records
 */
struct vmig_rec_end {
	__le64 nr_records;
	__le64 mem_bytes;
};

/* ---- driver-private VFIO_DEVICE_FEATURE: quiesce control ---- */

/*
 * VFIO_DEVICE_FEATURE index of the quiesce control.  Upstream allocates
 * feature indexes from 0 upwards, one per uAPI addition (6.12 uses 0..10),
 * in a 16-bit field (VFIO_DEVICE_FEATURE_MASK); this index sits at the top
 * of that space, far from anything upstream will reach, and its low byte
 * is 0xac ("accelerator").  A device driven by another driver answers
 * PROBE of it with ENOTTY.
 */
#define REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE	0xfeac

/* Bounds of timeout_ms; the default is the module parameter (1000). */
#define REFACCEL_QUIESCE_TIMEOUT_MIN_MS		1
#define REFACCEL_QUIESCE_TIMEOUT_MAX_MS		60000

/* capability flags, read only */
#define REFACCEL_QUIESCE_F_UNBOUNDED	(1u << 0)	/* may never end */
#define REFACCEL_QUIESCE_F_OPTED_IN	(1u << 1)	/* migrates anyway */
/*
 * PRI_ABORT: a quiesce withdraws the device's outstanding page requests
 * instead of waiting for their answers; the work that asked is retried
 * when the device runs again, and a late answer is discarded.
 * PRI_ENABLED: the device issues page requests now.
 */
#define REFACCEL_QUIESCE_F_PRI_ABORT	(1u << 2)
#define REFACCEL_QUIESCE_F_PRI_ENABLED	(1u << 3)
/* PARK: the device can park executing work (REFACCEL_QUIESCE_MODE_PARK) */
#define REFACCEL_QUIESCE_F_PARK		(1u << 4)
/* every flag GET may report; any other bit is reserved (SET: EINVAL) */
#define REFACCEL_QUIESCE_F_ALL		(REFACCEL_QUIESCE_F_UNBOUNDED |	\
					 REFACCEL_QUIESCE_F_OPTED_IN |	\
					 REFACCEL_QUIESCE_F_PRI_ABORT |	\
					 REFACCEL_QUIESCE_F_PRI_ENABLED | \
					 REFACCEL_QUIESCE_F_PARK)

/**
 * enum refaccel_quiesce_mode - what a quiesce does with executing work
 * @REFACCEL_QUIESCE_MODE_DRAIN: it may finish first, and the arc waits for
 *	it (within timeout_ms).  The default of each open.
 * @REFACCEL_QUIESCE_MODE_PARK: it is stopped at once, keeps the time it
 *	has left, travels in the saved state and goes on when the device
 *	runs again: the quiesce no longer depends on how long an op takes.
 *	A device without REFACCEL_QUIESCE_F_PARK drains anyway.
 */
enum refaccel_quiesce_mode {
	REFACCEL_QUIESCE_MODE_DRAIN	= 0,
	REFACCEL_QUIESCE_MODE_PARK	= 1,
};

/**
 * enum refaccel_quiesce_result - how the last quiesce of this open ended
 * @REFACCEL_QUIESCE_NONE: no quiesce since the device was opened
 * @REFACCEL_QUIESCE_OK: the device quiesced
 * @REFACCEL_QUIESCE_TIMEDOUT: not within timeout_ms; the arc failed with
 *	ETIMEDOUT and the device kept running
 * @REFACCEL_QUIESCE_KILLED: the caller got a fatal signal while waiting;
 *	the arc failed with EINTR and the device kept running
 * @REFACCEL_QUIESCE_FAILED: the device could not be reached (errno of the
 *	arc), it kept running
 */
enum refaccel_quiesce_result {
	REFACCEL_QUIESCE_NONE		= 0,
	REFACCEL_QUIESCE_OK		= 1,
	REFACCEL_QUIESCE_TIMEDOUT	= 2,
	REFACCEL_QUIESCE_KILLED		= 3,
	REFACCEL_QUIESCE_FAILED		= 4,
};

/**
 * struct refaccel_vfio_quiesce - REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE
 * @timeout_ms: bound on every arc that quiesces the device (RUNNING ->
 *	RUNNING_P2P, PRE_COPY -> PRE_COPY_P2P, and the arcs walked through
 *	them, such as RUNNING -> STOP) for this open of the device.  GET: the
 *	bound in force; SET: a new one, REFACCEL_QUIESCE_TIMEOUT_MIN_MS ..
 *	REFACCEL_QUIESCE_TIMEOUT_MAX_MS, else EINVAL.  Each open starts with
 *	the device's default (sysfs quiesce_timeout_ms).
 * @flags: GET: REFACCEL_QUIESCE_F_*; SET: ignored within
 *	REFACCEL_QUIESCE_F_ALL (they describe the device, nothing sets
 *	them), any other bit EINVAL
 * @last_result: GET: enum refaccel_quiesce_result; SET: ignored
 * @last_us: GET: how long the last quiesce took or waited, in
 *	microseconds; SET: ignored
 * @last_in_flight: GET: descriptors the device still had in flight when
 *	the last quiesce ended; SET: ignored
 * @mode: GET: the enum refaccel_quiesce_mode in force; SET: a new one
 *	(else EINVAL).  Each open starts with DRAIN.  (Before the mode
 *	existed this field was reserved and 0, which is DRAIN.)
 *
 * Only SET changes anything; GET is side-effect free.  What GET returned
 * may be changed in @timeout_ms or @mode and passed to SET as it is: the
 * fields only GET fills are ignored there.  An arc that times
 * out fails within @timeout_ms plus a slack of at most 20 ms (polling and
 * the undo) and leaves the device in the state it was in, running; a
 * retry with a larger bound may succeed.
 *
 * A function whose quiesce may never end is offered migration only with
 * the module parameter allow_unbounded_quiesce; then GET reports
 * REFACCEL_QUIESCE_F_UNBOUNDED | REFACCEL_QUIESCE_F_OPTED_IN.  Without it
 * the function has no migration, and this feature answers PROBE and GET
 * only (SET: EINVAL), with @flags REFACCEL_QUIESCE_F_UNBOUNDED alone and
 * every other field 0: the reason it does not migrate.  Any other
 * function without migration answers ENOTTY.
 */
struct refaccel_vfio_quiesce {
	__u32 timeout_ms;
	__u32 flags;
	__u32 last_result;
	__u32 last_us;
	__u32 last_in_flight;
	__u32 mode;
};

#endif /* _UAPI_LINUX_REFACCEL_VFIO_H */
