// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration stream v1: encoding helpers and the validators the RESUMING
 * side runs on every byte it is given.  Nothing here touches a device.
 *
 * Errno policy (documented in Documentation/migration-stream.rst):
 *   -EBADMSG          a checksum does not match (corruption in transit)
 *   -EPROTONOSUPPORT  stream version this driver does not know
 *   -EPROTO           stream from an incompatible device (compat id, sizes)
 *   -EINVAL           anything else malformed: bad magic, lengths, types,
 *                     offsets, sequence, order, duplicates
 */

#include <linux/crc32c.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/overflow.h>
#include <linux/string.h>
#include <linux/unaligned.h>

#include "stream.h"

/* Standard CRC-32C (Castagnoli): initial ~0, final inversion. */
u32 vmig_crc(const void *buf, size_t len)
{
	return ~crc32c(~0U, buf, len);
}

void vmig_stream_hdr_init(struct vmig_stream_hdr *hdr,
			  const struct vmig_stream_limits *lim)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = cpu_to_le32(VMIG_STREAM_MAGIC);
	hdr->version = cpu_to_le16(VMIG_STREAM_VERSION);
	hdr->hdr_len = cpu_to_le16(sizeof(*hdr));
	hdr->compat_id = cpu_to_le32(lim->compat_id);
	hdr->mem_size = cpu_to_le64(lim->mem_size);
	hdr->page_size = cpu_to_le32(lim->page_size);
	hdr->crc = cpu_to_le32(vmig_crc(hdr, offsetof(typeof(*hdr), crc)));
}

void vmig_rec_hdr_init(struct vmig_rec_hdr *rec, enum vmig_rec_type type,
		       u32 seq, const void *payload, size_t len)
{
	memset(rec, 0, sizeof(*rec));
	rec->type = cpu_to_le16(type);
	rec->seq = cpu_to_le32(seq);
	rec->len = cpu_to_le64(len);
	rec->payload_crc = cpu_to_le32(vmig_crc(payload, len));
	rec->crc = cpu_to_le32(vmig_crc(rec, offsetof(typeof(*rec), crc)));
}

int vmig_stream_check_hdr(const struct vmig_stream_hdr *hdr,
			  const struct vmig_stream_limits *lim,
			  const char **why)
{
	if (le32_to_cpu(hdr->magic) != VMIG_STREAM_MAGIC) {
		*why = "stream header: bad magic (not a refaccel migration stream)";
		return -EINVAL;
	}
	if (le32_to_cpu(hdr->crc) !=
	    vmig_crc(hdr, offsetof(typeof(*hdr), crc))) {
		*why = "stream header: checksum mismatch";
		return -EBADMSG;
	}
	if (le16_to_cpu(hdr->version) != VMIG_STREAM_VERSION) {
		*why = "stream header: unsupported format version";
		return -EPROTONOSUPPORT;
	}
	if (le16_to_cpu(hdr->hdr_len) != sizeof(*hdr) || hdr->flags) {
		*why = "stream header: unknown header length or flags";
		return -EINVAL;
	}
	if (le32_to_cpu(hdr->compat_id) != lim->compat_id) {
		*why = "stream header: device compatibility id differs";
		return -EPROTO;
	}
	if (le64_to_cpu(hdr->mem_size) != lim->mem_size) {
		*why = "stream header: device memory size differs";
		return -EPROTO;
	}
	if (le32_to_cpu(hdr->page_size) != lim->page_size) {
		*why = "stream header: page size differs";
		return -EPROTO;
	}
	return 0;
}

/* Checks that only need the record header: run before any payload is taken. */
int vmig_stream_check_rec(struct vmig_stream_check *chk,
			  const struct vmig_rec_hdr *rec, const char **why)
{
	const struct vmig_stream_limits *lim = chk->lim;
	u64 len = le64_to_cpu(rec->len);

	if (le32_to_cpu(rec->crc) != vmig_crc(rec, offsetof(typeof(*rec), crc))) {
		*why = "record header: checksum mismatch";
		return -EBADMSG;
	}
	if (chk->have_end) {
		*why = "record after END";
		return -EINVAL;
	}
	if (le32_to_cpu(rec->seq) != chk->next_seq) {
		*why = "record out of sequence (lost, duplicated or reordered)";
		return -EINVAL;
	}
	if (rec->flags) {
		*why = "record header: unknown flags";
		return -EINVAL;
	}

	switch (le16_to_cpu(rec->type)) {
	case VMIG_REC_MEM:
		if (chk->have_state) {
			*why = "MEM record after STATE";
			return -EINVAL;
		}
		if (!lim->mem_size) {
			*why = "MEM record for a device without device memory";
			return -EINVAL;
		}
		if (len <= sizeof(__le64) ||
		    len - sizeof(__le64) > VMIG_MEM_CHUNK_MAX ||
		    (len - sizeof(__le64)) % lim->page_size) {
			*why = "MEM record: bad length";
			return -EINVAL;
		}
		break;
	case VMIG_REC_STATE:
		if (chk->have_state) {
			*why = "duplicate STATE record";
			return -EINVAL;
		}
		if (!len || len > lim->state_max) {
			*why = "STATE record: bad length";
			return -EINVAL;
		}
		break;
	case VMIG_REC_END:
		if (!chk->have_state) {
			*why = "END record before STATE";
			return -EINVAL;
		}
		if (len != sizeof(struct vmig_rec_end)) {
			*why = "END record: bad length";
			return -EINVAL;
		}
		break;
	default:
		*why = "unknown record type";
		return -EINVAL;
	}
	return 0;
}

/* Checks on a complete payload; on success the record is accounted. */
int vmig_stream_check_payload(struct vmig_stream_check *chk,
			      const struct vmig_rec_hdr *rec,
			      const void *payload, const char **why)
{
	u64 len = le64_to_cpu(rec->len);
	const struct vmig_rec_end *end;
	u64 off, last;

	if (le32_to_cpu(rec->payload_crc) != vmig_crc(payload, len)) {
		*why = "record payload: checksum mismatch";
		return -EBADMSG;
	}

	switch (le16_to_cpu(rec->type)) {
	case VMIG_REC_MEM:
		off = get_unaligned_le64(payload);
		if (off % chk->lim->page_size ||
		    check_add_overflow(off, len - sizeof(__le64), &last) ||
		    last > chk->lim->mem_size) {
			*why = "MEM record: offset outside device memory";
			return -EINVAL;
		}
		chk->mem_bytes += len - sizeof(__le64);
		break;
	case VMIG_REC_STATE:
		chk->have_state = true;
		break;
	case VMIG_REC_END:
		end = payload;
		if (le64_to_cpu(end->nr_records) != chk->next_seq) {
			*why = "END record: record count mismatch";
			return -EINVAL;
		}
		if (le64_to_cpu(end->mem_bytes) != chk->mem_bytes) {
			*why = "END record: device memory byte count mismatch";
			return -EINVAL;
		}
		chk->have_end = true;
		break;
	}
	chk->next_seq++;
	return 0;
}
