/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * Driver-private uAPI of refaccel-vfio-pci.
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

#endif /* _UAPI_LINUX_REFACCEL_VFIO_H */
