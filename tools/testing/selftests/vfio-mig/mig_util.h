/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mig_util - the VFIO migration uAPI from userspace, for the vfio-mig
 * kselftests: feature get/set, data_fd transfer, PRECOPY_INFO, and whole
 * save/load sequences the way a VMM (QEMU's hw/vfio/migration.c) drives
 * them.  Every function returns 0 or a negative errno.
 */
#ifndef MIG_UTIL_H
#define MIG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/vfio.h>

#include "uapi/linux/refaccel_vfio.h"
#include "vfio_util.h"

#define MIG_NSTATES	VFIO_DEVICE_STATE_NR

const char *mig_state_name(unsigned int state);

/* VFIO_DEVICE_FEATURE_MIGRATION: the advertised VFIO_MIGRATION_* flags. */
int mig_get_flags(struct vu_device *d, uint64_t *flags);
int mig_get_state(struct vu_device *d, uint32_t *state);
/*
 * VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET.  *data_fd (may be NULL when the
 * caller expects none) receives the new session's fd or -1.
 */
int mig_set_state(struct vu_device *d, uint32_t state, int *data_fd);
/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE */
int mig_data_size(struct vu_device *d, uint64_t *bytes);
/*
 * VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY (@enter) or _EXIT: the user asks
 * vfio-pci to let the function runtime-suspend, or takes that back.
 */
int mig_low_power(struct vu_device *d, bool enter);
/* One VFIO_DEVICE_FEATURE call, payload of at most 64 bytes: 0 or -errno. */
int mig_feature(struct vu_device *d, uint32_t flags, void *data, size_t len);
/*
 * REFACCEL_VFIO_DEVICE_FEATURE_QUIESCE (refaccel-vfio-pci only): GET the
 * bound and the last quiesce's outcome (*q is poisoned first, so a field
 * the driver does not fill shows), or SET the bound of this open (and the
 * DRAIN mode: mig_quiesce_set_mode() for another).
 */
int mig_quiesce_get(struct vu_device *d, struct refaccel_vfio_quiesce *q);
int mig_quiesce_set(struct vu_device *d, uint32_t timeout_ms);
/* The same with a REFACCEL_QUIESCE_MODE_*. */
int mig_quiesce_set_mode(struct vu_device *d, uint32_t timeout_ms,
			 uint32_t mode);
/* VFIO_MIG_GET_PRECOPY_INFO on a data_fd */
int mig_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty);

/* A growable byte buffer for streams. */
struct mig_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

int mig_buf_append(struct mig_buf *b, const void *p, size_t len);
void mig_buf_free(struct mig_buf *b);

/*
 * Read @fd into @b in @chunk-sized reads until EOF (returns 0, *eof true)
 * or, in PRE_COPY, ENOMSG (returns 0, *eof false).  Other errors: -errno.
 */
int mig_read_stream(int fd, struct mig_buf *b, size_t chunk, bool *eof);
/* Write all of @p to @fd in @chunk-sized writes; -errno of the first failure. */
int mig_write_stream(int fd, const void *p, size_t len, size_t chunk);

/*
 * Save: move @d to STOP_COPY (through STOP from wherever it is), read the
 * whole stream into @out, then move @d to STOP.
 */
int mig_save_stop_copy(struct vu_device *d, struct mig_buf *out);
/*
 * Load: move @d (in STOP) to RESUMING, write @p in @chunk-sized pieces and
 * move to STOP.  On a write failure the device is left in RESUMING and the
 * errno of the write is returned; on a failed RESUMING -> STOP, that errno.
 */
int mig_load(struct vu_device *d, const void *p, size_t len, size_t chunk);

/* Parse a stream just enough to find records (for building bad streams). */
struct mig_rec_ref {
	size_t off;		/* of the record header */
	size_t size;		/* header + payload */
	unsigned int type;
};
/* Returns the number of records found (at most @max), or -EINVAL. */
int mig_stream_index(const uint8_t *p, size_t len, struct mig_rec_ref *recs,
		     int max);
/*
 * Of the @nrecs records of a stream (indexed by mig_stream_index()), those
 * that start in [@from, @to): how many of each type, and the device memory
 * bytes their MEM records carry (what one part of a stream, such as the
 * STOP_COPY tail after a pre-copy, is made of).
 */
struct mig_rec_span {
	int n, mem, state, end;
	uint64_t mem_bytes;
};

struct mig_rec_span mig_stream_span(const struct mig_rec_ref *recs, int nrecs,
				    size_t from, size_t to);
/* Standard CRC-32C, as the stream uses it. */
uint32_t mig_crc32c(const void *p, size_t len);
/* Recompute every checksum of the record at @off (after editing it). */
void mig_rec_fix_crc(uint8_t *p, size_t off);


/* ---- stream construction and checking (for the stream tests) ---- */

/* Recompute the stream header checksum (after editing the header). */
void mig_hdr_fix_crc(uint8_t *p);

/*
 * Renumber every complete record of the stream in @p (seq 0, 1, ...), make
 * the END record(s) carry the totals of what precedes them, and fix the
 * checksums of the headers and END payloads touched.  MEM and STATE
 * payloads are not re-checksummed (they do not change).
 */
void mig_stream_renumber(uint8_t *p, size_t len);

/* What a destination knows about itself (migration-stream.rst). */
struct mig_limits {
	uint32_t compat_id;
	uint64_t mem_size;
	uint32_t page_size;
	uint32_t state_max;
};

/* Errno classes of a rejected stream, as a bit mask. */
#define MIG_E_BADMSG		(1u << 0)
#define MIG_E_PROTONOSUPPORT	(1u << 1)
#define MIG_E_PROTO		(1u << 2)
#define MIG_E_INVAL		(1u << 3)
/* MIG_E_* bit of a (positive) errno, 0 if it is none of them. */
unsigned int mig_errbit(int err);
/* "EBADMSG|EINVAL" */
const char *mig_errbits_str(unsigned int bits, char *buf, size_t len);

enum mig_verdict_kind {
	MIG_V_ACCEPT,	/* valid stream: every write and RESUMING -> STOP pass */
	MIG_V_WRITE,	/* rejected by the write() carrying byte @detect_off */
	MIG_V_TRUNC,	/* writes pass, RESUMING -> STOP fails with EINVAL */
};

struct mig_verdict {
	enum mig_verdict_kind kind;
	unsigned int errs;	/* MIG_V_WRITE: every errno the rules allow */
	size_t detect_off;	/* MIG_V_WRITE: arrival of this byte rejects */
	int rec;		/* failing record, -1: stream header */
	const char *why;	/* first rule broken */
	size_t state_off;	/* MIG_V_ACCEPT: STATE payload in the stream */
	size_t state_len;
	unsigned int nr_records;	/* complete, accepted records */
};

/*
 * Payloads whose checksum is known to be right: those of a reference
 * stream (its records indexed by mig_stream_index()).  A payload that is
 * byte for byte one of them is not checksummed again, which keeps checking
 * mutated 1 MiB streams cheap.  May be NULL.
 */
struct mig_crc_cache {
	const uint8_t *p;
	const struct mig_rec_ref *recs;
	int n;
};

/*
 * Reference validator: judge @p/@len against the rules of
 * Documentation/migration-stream.rst ("What the destination checks"), the
 * way the destination sees it arriving byte by byte.  When several rules
 * are broken by the same header or payload, every matching errno is
 * allowed (the document gives no precedence).  If @image (lim->mem_size
 * bytes) is given, the device memory of an accepted stream is built there
 * (last copy of a page wins).  Does not judge the STATE blob's contents:
 * the device does that on RESUMING -> STOP.
 */
void mig_stream_verify(const uint8_t *p, size_t len,
		       const struct mig_limits *lim,
		       const struct mig_crc_cache *cache,
		       struct mig_verdict *v, uint8_t *image);

#endif /* MIG_UTIL_H */
