/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Register map of the reference PCI accelerator ("refaccel"), device spec v1.
 *
 * One header shared by the QEMU device model, the vfio-pci variant driver and
 * the userspace tests, so that all three agree on every offset and bit.  It
 * only uses <linux/types.h>, which exists in the kernel, in the kernel uAPI
 * headers installed in userspace and in QEMU's Linux build.
 *
 * Bits are written as unsigned hex constants: the header is also built in
 * QEMU and userspace, which have no BIT().
 *
 * All registers are 32 bits wide, little endian, and must be accessed with
 * naturally aligned 32-bit MMIO.  64-bit quantities are split into _LO/_HI
 * pairs; the device latches the pair when _HI is written.
 *
 * BAR0: registers (64 KiB).  BAR2: device memory ("SRAM"), RAM backed,
 * mmappable.  BAR4: MSI-X table and PBA.
 *
 * See Documentation/device-spec.rst for the behaviour behind each register.
 */
#ifndef REFACCEL_REGS_H
#define REFACCEL_REGS_H

#include <linux/types.h>

/* PCI identity */
#define REFACCEL_PCI_VENDOR_ID		0x1234	/* QEMU's test vendor */
#define REFACCEL_PCI_DEVICE_ID		0x11ac	/* unused by any QEMU device */
#define REFACCEL_PCI_CLASS		0x1200	/* processing accelerator */
#define REFACCEL_PCI_REVISION		0x01

#define REFACCEL_BAR_REGS		0
#define REFACCEL_BAR_SRAM		2
#define REFACCEL_BAR_MSIX		4
#define REFACCEL_REGS_SIZE		0x10000
#define REFACCEL_SRAM_DEFAULT_SIZE	0x100000u
#define REFACCEL_SRAM_MAX_SIZE		(64u << 20)

/* MSI-X vectors */
#define REFACCEL_VEC_COMPLETION		0
#define REFACCEL_VEC_ERROR		1
#define REFACCEL_VEC_PAGE_REQ		2
#define REFACCEL_VEC_SPARE		3
#define REFACCEL_NUM_VECTORS		4

/* ---- identity and control block ---- */
#define REFACCEL_REG_ID			0x0000	/* RO: REFACCEL_ID_MAGIC */
#define  REFACCEL_ID_MAGIC		0x52464131	/* "RFA1" */
#define REFACCEL_REG_VERSION		0x0004	/* RO: major << 16 | minor */
#define  REFACCEL_VERSION_1_0		0x00010000
#define REFACCEL_REG_CAPS		0x0008	/* RO: REFACCEL_CAP_* */
#define  REFACCEL_CAP_MIGRATION		0x1u	/* migration block */
#define  REFACCEL_CAP_SRAM_DIRTY	0x2u	/* SRAM dirty bitmap */
#define  REFACCEL_CAP_DMA_DIRTY		0x4u	/* host IOVA dirty log */
#define  REFACCEL_CAP_PRI		0x8u	/* PRI page requests */
#define  REFACCEL_CAP_ATS		0x10u
#define  REFACCEL_CAP_PASID		0x20u
#define  REFACCEL_CAP_P2P		0x40u	/* STORE to a peer BAR */
#define  REFACCEL_CAP_TESTCTL		0x80u	/* test block enabled */
#define  REFACCEL_CAP_QUIESCE_UNBOUNDED	0x100u	/* quiesce may never end */
#define REFACCEL_REG_SRAM_SIZE		0x000c	/* RO: bytes in BAR2 */
#define REFACCEL_REG_CTRL		0x0010	/* RW */
#define  REFACCEL_CTRL_ENABLE		0x1u	/* fetch descriptors */
#define  REFACCEL_CTRL_RESET		0x2u	/* WO: function reset */
#define REFACCEL_REG_STATUS		0x0014	/* RO */
#define  REFACCEL_STATUS_ENABLED	0x1u
#define  REFACCEL_STATUS_BUSY		0x2u	/* work in flight */
#define  REFACCEL_STATUS_HALTED		0x4u	/* fatal ring error */
#define REFACCEL_REG_OP_LATENCY_NS	0x0018	/* RO: virtual ns per op */
#define REFACCEL_REG_MAX_XFER		0x001c	/* RO: max descriptor len */
#define REFACCEL_REG_HALT_REASON	0x0020	/* RO: REFACCEL_HALT_* */
#define  REFACCEL_HALT_NONE		0
#define  REFACCEL_HALT_SQ_FETCH		1	/* SQ DMA read failed */
#define  REFACCEL_HALT_CQ_WRITE		2	/* CQ DMA write failed */
#define  REFACCEL_HALT_RING_CONFIG	3	/* bad ring base/size */

/* ---- rings (in host memory, addressed by IOVA) ---- */
#define REFACCEL_REG_SQ_BASE_LO		0x0100	/* 64-byte aligned */
#define REFACCEL_REG_SQ_BASE_HI		0x0104
#define REFACCEL_REG_SQ_SIZE		0x0108	/* entries, power of 2 */
#define REFACCEL_REG_SQ_HEAD		0x010c	/* RO: next entry to fetch */
#define REFACCEL_REG_SQ_TAIL		0x0110	/* doorbell: producer index */
#define REFACCEL_REG_CQ_BASE_LO		0x0120	/* 16-byte aligned */
#define REFACCEL_REG_CQ_BASE_HI		0x0124
#define REFACCEL_REG_CQ_SIZE		0x0128	/* entries, power of 2 */
#define REFACCEL_REG_CQ_HEAD		0x012c	/* doorbell: consumer index */
#define REFACCEL_REG_CQ_TAIL		0x0130	/* RO: producer index */
#define REFACCEL_RING_MIN_ENTRIES	2
#define REFACCEL_RING_MAX_ENTRIES	4096

/* ---- interrupts ---- */
#define REFACCEL_REG_INT_STATUS		0x0200	/* RW1C */
#define REFACCEL_REG_INT_MASK		0x0204	/* RW: 1 = masked */
#define  REFACCEL_INT_COMPLETION	0x1u	/* vector 0 */
#define  REFACCEL_INT_ERROR		0x2u	/* vector 1 */
#define  REFACCEL_INT_PAGE_REQ		0x4u	/* vector 2 */
#define  REFACCEL_INT_SPARE		0x8u	/* vector 3 */
#define  REFACCEL_INT_ALL		0xf

/* ---- counters (RO, wrap at 2^32) ---- */
#define REFACCEL_REG_CNT_FETCHED	0x0300
#define REFACCEL_REG_CNT_COMPLETED	0x0304
#define REFACCEL_REG_CNT_ERRORS		0x0308	/* completions with error */
#define REFACCEL_REG_CNT_PAGE_REQS	0x030c

/*
 * ---- migration block ----
 * The upper half of BAR0, 0x8000..0xffff (registers at 0x8000..0x8fff: this
 * block, the SRAM dirty bitmap and the DMA dirty log; the rest reserved), is
 * the migration driver's: a function reset (CTRL.RESET) leaves it alone, and
 * the vfio driver hides it from the user by reporting BAR0 as its lower
 * half, REFACCEL_REGS_USER_SIZE bytes, which stays contiguous and mappable
 * whole.  The registers a read of which has no side effect are mirrored,
 * read-only, in the lower half (REFACCEL_MIG_MIRROR_OFFSET).
 */
#define REFACCEL_MIG_BLOCK_OFFSET	0x8000
#define REFACCEL_MIG_BLOCK_SIZE		0x8000
#define REFACCEL_REGS_USER_SIZE		REFACCEL_MIG_BLOCK_OFFSET
#define REFACCEL_REG_MIG_CTRL		0x8000	/* RW */
#define  REFACCEL_MIG_CTRL_QUIESCE	0x1u	/* stop DMA and irqs */
#define  REFACCEL_MIG_CTRL_ABORT_PRI	0x2u	/* with QUIESCE */
#define  REFACCEL_MIG_CTRL_FREEZE	0x4u	/* no state change */
#define  REFACCEL_MIG_CTRL_PARK		0x8u	/* with QUIESCE: park, not drain */
#define REFACCEL_REG_MIG_CMD		0x8004	/* WO: REFACCEL_MIG_CMD_* */
#define  REFACCEL_MIG_CMD_SAVE		1	/* snapshot into window */
#define  REFACCEL_MIG_CMD_RESTORE	2	/* load window, all or none */
#define  REFACCEL_MIG_CMD_DISCARD	3	/* drop window contents */
#define REFACCEL_REG_MIG_STATUS		0x8008	/* RO */
#define  REFACCEL_MIG_STATUS_QUIESCED	0x1u
#define  REFACCEL_MIG_STATUS_FROZEN	0x2u
#define  REFACCEL_MIG_STATUS_SAVED	0x4u	/* window holds a save */
#define  REFACCEL_MIG_STATUS_RESTORED	0x8u	/* last restore ok */
#define  REFACCEL_MIG_STATUS_CMD_ERR	0x10u	/* last cmd failed */
#define REFACCEL_REG_MIG_ERR		0x800c	/* RO: REFACCEL_MIG_ERR_* */
#define  REFACCEL_MIG_ERR_NONE		0
#define  REFACCEL_MIG_ERR_NOT_FROZEN	1	/* SAVE/RESTORE need FREEZE */
#define  REFACCEL_MIG_ERR_BAD_MAGIC	2
#define  REFACCEL_MIG_ERR_BAD_VERSION	3
#define  REFACCEL_MIG_ERR_BAD_COMPAT	4
#define  REFACCEL_MIG_ERR_BAD_SIZE	5
#define  REFACCEL_MIG_ERR_BAD_CRC	6
#define  REFACCEL_MIG_ERR_BAD_FIELD	7	/* a value out of range */
#define  REFACCEL_MIG_ERR_BAD_CMD	8	/* unknown MIG_CMD value */
#define  REFACCEL_MIG_ERR_INJECTED	9	/* TEST_FLAGS.SAVE_FAIL */
#define REFACCEL_REG_MIG_STATE_SIZE	0x8010	/* RW: bytes in window */
#define REFACCEL_REG_MIG_STATE_OFFSET	0x8014	/* RW: byte offset, 4-aligned */
#define REFACCEL_REG_MIG_STATE_DATA	0x8018	/* RW: 4 bytes, offset += 4 */
#define REFACCEL_REG_MIG_FORMAT		0x801c	/* RO: state format version */
#define REFACCEL_REG_MIG_COMPAT_ID	0x8020	/* RO: compatibility id */
#define REFACCEL_REG_MIG_STATE_MAX	0x8024	/* RO: window capacity */
#define REFACCEL_REG_MIG_PARKED		0x8028	/* RO: parked descriptors */
#define REFACCEL_REG_MIG_FN_RESETS	0x802c	/* RO: CTRL.RESETs, wraps */
#define REFACCEL_MIG_STATE_MAGIC	0x52415354	/* "RAST" */
#define REFACCEL_MIG_FORMAT_V1		1	/* first format: still read */
#define REFACCEL_MIG_FORMAT_V2		2	/* MIG_FORMAT of this spec */

/* ---- SRAM dirty bitmap (CPU and device writes to BAR2) ---- */
#define REFACCEL_REG_SRAM_DIRTY_CTRL	0x8100	/* RW */
#define  REFACCEL_SRAM_DIRTY_ENABLE	0x1u
#define REFACCEL_REG_SRAM_DIRTY_PGSIZE	0x8104	/* RO: bytes per bit */
#define REFACCEL_REG_SRAM_DIRTY_INDEX	0x8108	/* RW: bitmap word index */
#define REFACCEL_REG_SRAM_DIRTY_DATA	0x810c	/* RO: read-and-clear, index++ */
#define REFACCEL_SRAM_DIRTY_PAGE_SIZE	4096

/*
 * ---- device-side DMA dirty tracking of host IOVAs ----
 * Every write the device makes to host memory (descriptor destinations,
 * peer BARs, completions) marks the pages it covers, in IOVA space, if they
 * lie in one of the programmed ranges; a write that fails part way marks
 * its whole range.  Ranges, page shift and NR_RANGES are writable only while
 * ENABLE is clear; setting ENABLE checks them (DT_ERR says why it did not
 * set) and starts with every page clean; clearing it drops all marks.
 * Reading: a query window [QUERY, LIMIT] of page addresses.  NEXT is the
 * first dirty page in it (reading NEXT_LO computes it, NEXT_HI gives the
 * upper half of that result); QUERY_DATA reads and clears the 32 pages from
 * QUERY (bit i: the page at QUERY + (i << PGSHIFT)), only those up to LIMIT,
 * and moves QUERY 32 pages on.  Pages outside the window are left alone.
 */
#define REFACCEL_REG_DT_CTRL		0x8200	/* RW */
#define  REFACCEL_DT_CTRL_ENABLE	0x1u
#define REFACCEL_REG_DT_PGSHIFT		0x8204	/* RW while disabled */
#define  REFACCEL_DT_PGSHIFT_MIN	12
#define  REFACCEL_DT_PGSHIFT_MAX	21
#define REFACCEL_REG_DT_MAX_RANGES	0x8208	/* RO: ranges the device holds */
#define REFACCEL_REG_DT_NR_RANGES	0x820c	/* RW while disabled */
#define REFACCEL_REG_DT_RANGE_SEL	0x8210	/* RW: range the next 4 address */
#define REFACCEL_REG_DT_RANGE_BASE_LO	0x8214	/* RW while disabled */
#define REFACCEL_REG_DT_RANGE_BASE_HI	0x8218
#define REFACCEL_REG_DT_RANGE_LEN_LO	0x821c	/* RW while disabled */
#define REFACCEL_REG_DT_RANGE_LEN_HI	0x8220
#define REFACCEL_REG_DT_QUERY_LO	0x8224	/* RW: window start (a page) */
#define REFACCEL_REG_DT_QUERY_HI	0x8228
#define REFACCEL_REG_DT_QUERY_DATA	0x822c	/* RO: read-and-clear 32 pages */
#define REFACCEL_REG_DT_NEXT_LO		0x8230	/* RO: first dirty page in window */
#define REFACCEL_REG_DT_NEXT_HI		0x8234
#define  REFACCEL_DT_NEXT_NONE		(~0ull)	/* the window is clean */
#define REFACCEL_REG_DT_MAX_SPAN_LO	0x8238	/* RO: max sum of range lengths */
#define REFACCEL_REG_DT_MAX_SPAN_HI	0x823c
#define REFACCEL_REG_DT_STATUS		0x8240	/* RO */
#define  REFACCEL_DT_STATUS_ENABLED	0x1u
#define  REFACCEL_DT_STATUS_OVERFLOW	0x2u	/* marks were lost */
#define REFACCEL_REG_DT_ERR		0x8244	/* RO: why ENABLE did not set */
#define REFACCEL_REG_DT_LIMIT_LO	0x8248	/* RW: window end, inclusive */
#define REFACCEL_REG_DT_LIMIT_HI	0x824c
#define  REFACCEL_DT_ERR_NONE		0
#define  REFACCEL_DT_ERR_BAD_PGSHIFT	1	/* outside MIN..MAX */
#define  REFACCEL_DT_ERR_BAD_NR		2	/* 0 or above MAX_RANGES */
#define  REFACCEL_DT_ERR_BAD_RANGE	3	/* empty, wraps or overlaps */
#define  REFACCEL_DT_ERR_TOO_LARGE	4	/* lengths add up above MAX_SPAN */
#define REFACCEL_DT_WORD_PAGES		32
#define REFACCEL_DT_MAX_RANGES		8	/* largest MAX_RANGES of spec v1 */

/*
 * ---- read-only mirror of the migration block's status ----
 * REFACCEL_MIG_MIRROR(reg) reads the same value as reg for the registers
 * refaccel_mig_reg_mirrored() names (no read side effect, nothing that
 * would let a user disturb a migration) and 0 for every other offset of the
 * first REFACCEL_MIG_MIRROR_SIZE bytes of the block; writes are ignored.
 * The mirror is in the part of BAR0 the user sees, so a VMM or a test can
 * watch the quiesce and freeze status without reaching the block.
 */
#define REFACCEL_MIG_MIRROR_OFFSET	0x4000
#define REFACCEL_MIG_MIRROR_SIZE	0x200
#define REFACCEL_MIG_MIRROR(reg) \
	(REFACCEL_MIG_MIRROR_OFFSET + ((reg) - REFACCEL_MIG_BLOCK_OFFSET))

static inline int refaccel_mig_reg_mirrored(__u32 reg)
{
	switch (reg) {
	case REFACCEL_REG_MIG_CTRL:
	case REFACCEL_REG_MIG_STATUS:
	case REFACCEL_REG_MIG_ERR:
	case REFACCEL_REG_MIG_FORMAT:
	case REFACCEL_REG_MIG_COMPAT_ID:
	case REFACCEL_REG_MIG_STATE_MAX:
	case REFACCEL_REG_MIG_PARKED:
	case REFACCEL_REG_MIG_FN_RESETS:
	case REFACCEL_REG_SRAM_DIRTY_CTRL:
	case REFACCEL_REG_SRAM_DIRTY_PGSIZE:
		return 1;
	default:
		return 0;
	}
}

/*
 * ---- page requests (PRI stand-in, see device spec) ----
 * In its own page, outside the migration block: the user's driver answers
 * the page requests of its own work, as a guest would through a vIOMMU.
 * Only the abort (MIG_CTRL.ABORT_PRI) belongs to the migration driver.
 * Present only with CAPS.PRI.
 */
#define REFACCEL_PRI_BLOCK_OFFSET	0x3000
#define REFACCEL_REG_PRI_CTRL		0x3000	/* RW */
#define  REFACCEL_PRI_CTRL_ENABLE	0x1u
#define REFACCEL_REG_PRI_LOG_COUNT	0x3004	/* RO: requests in the log */
#define REFACCEL_REG_PRI_LOG_ADDR_LO	0x3008	/* RO: head entry */
#define REFACCEL_REG_PRI_LOG_ADDR_HI	0x300c
#define REFACCEL_REG_PRI_LOG_INFO	0x3010	/* RO: head entry */
#define  REFACCEL_PRI_INFO_PRGI_MASK	0x1ffu
#define  REFACCEL_PRI_INFO_WRITE	0x10000u
#define  REFACCEL_PRI_INFO_READ		0x20000u
#define  REFACCEL_PRI_EPOCH_SHIFT	24	/* also in PRI_RESP, PENDING */
#define  REFACCEL_PRI_EPOCH_MASK	0xff000000u
#define REFACCEL_REG_PRI_LOG_POP	0x3014	/* WO: drop head entry */
#define REFACCEL_REG_PRI_RESP		0x3018	/* WO: prgi | code | epoch */
#define  REFACCEL_PRI_RESP_CODE_SHIFT	16
#define  REFACCEL_PRI_RESP_CODE_MASK	0xf0000u
#define  REFACCEL_PRI_RESP_SUCCESS	0x0u
#define  REFACCEL_PRI_RESP_INVALID	0x1u
#define  REFACCEL_PRI_RESP_FAILURE	0xfu
#define REFACCEL_REG_PRI_PENDING	0x301c	/* RO: prgi | VALID | epoch */
#define  REFACCEL_PRI_PENDING_VALID	0x100000u
#define REFACCEL_REG_PRI_STALE		0x3020	/* RO: responses discarded */
#define REFACCEL_REG_PRI_ABORTED	0x3024	/* RO: requests aborted */
#define REFACCEL_PRI_PAGE_SIZE		4096
#define REFACCEL_PRI_LOG_DEPTH		32

/*
 * ---- test control (only when the model's "testctl" property is on) ----
 * Host-side fault injection, in its own page below the migration block so
 * that tests reach it through vfio while the block itself stays hidden.
 */
#define REFACCEL_TEST_BLOCK_OFFSET	0x2000
#define REFACCEL_REG_TEST_FLAGS		0x2000	/* RW: REFACCEL_TEST_* */
#define  REFACCEL_TEST_NEVER_QUIESCE	0x1u
#define  REFACCEL_TEST_CORRUPT_SAVE	0x2u
#define  REFACCEL_TEST_NO_PRI_RESP	0x4u
#define  REFACCEL_TEST_DT_LOSE		0x8u	/* DMA tracker misses writes */
#define  REFACCEL_TEST_SAVE_FAIL	0x10u	/* SAVE fails: INJECTED */
#define  REFACCEL_TEST_NO_THAW		0x20u	/* clearing FREEZE ignored */
#define  REFACCEL_TEST_NO_PRI_ABORT	0x40u	/* ABORT_PRI has no effect */
#define REFACCEL_REG_TEST_QUIESCE_DELAY	0x2004	/* RW: extra virtual us */
#define REFACCEL_REG_TEST_OP_LATENCY	0x2008	/* RW: virtual ns per op */
/*
 * Mark COUNT pages in the DMA dirty tracker as if the device had written
 * one byte at MARK + i * STRIDE (i < COUNT), with the same range rules:
 * benchmarks build large dirty patterns with it without moving the bytes.
 */
#define REFACCEL_REG_TEST_DT_MARK_LO	0x200c	/* RW: first IOVA */
#define REFACCEL_REG_TEST_DT_MARK_HI	0x2010
#define REFACCEL_REG_TEST_DT_STRIDE	0x2014	/* RW: bytes between marks */
#define REFACCEL_REG_TEST_DT_COUNT	0x2018	/* WO: marks to make now */

/* ---- work descriptors (64 bytes, little endian) ---- */
#define REFACCEL_DESC_SIZE		64
#define REFACCEL_CPL_SIZE		16
#define REFACCEL_MAX_XFER_DEFAULT	0x100000u

enum refaccel_opcode {
	REFACCEL_OP_NOP		= 0,
	REFACCEL_OP_COPY	= 1,	/* host src -> host dst */
	REFACCEL_OP_FILL	= 2,	/* 32-bit pattern -> host dst */
	REFACCEL_OP_CRC32C	= 3,	/* crc32c(seed, host src) -> result */
	REFACCEL_OP_LOAD	= 4,	/* host src -> SRAM offset dst */
	REFACCEL_OP_STORE	= 5,	/* SRAM offset src -> host/peer dst */
	REFACCEL_OP_MAX		= REFACCEL_OP_STORE,
};

#define REFACCEL_DESC_F_NO_IRQ		0x1u	/* no completion irq */
#define REFACCEL_DESC_F_VALID_MASK	REFACCEL_DESC_F_NO_IRQ

/**
 * struct refaccel_desc - one submission queue entry
 * @opcode: enum refaccel_opcode
 * @flags: REFACCEL_DESC_F_*; unknown bits make the descriptor invalid
 * @rsvd0: must be zero
 * @len: bytes to move/fill/checksum; 0 < len <= MAX_XFER (NOP: 0)
 * @tag: opaque, echoed in the completion
 * @src: source IOVA (COPY, CRC32C, LOAD) or SRAM offset (STORE)
 * @dst: destination IOVA (COPY, FILL, STORE) or SRAM offset (LOAD)
 * @value: fill pattern (FILL) or CRC seed (CRC32C)
 * @rsvd1: must be zero
 */
struct refaccel_desc {
	__u8	opcode;
	__u8	flags;
	__u16	rsvd0;
	__u32	len;
	__u64	tag;
	__u64	src;
	__u64	dst;
	__u32	value;
	__u32	rsvd1[7];
};

enum refaccel_cpl_status {
	REFACCEL_CPL_OK			= 0,
	REFACCEL_CPL_BAD_OPCODE		= 1,
	REFACCEL_CPL_BAD_LENGTH		= 2,
	REFACCEL_CPL_BAD_SRAM_RANGE	= 3,
	REFACCEL_CPL_DMA_READ_FAULT	= 4,
	REFACCEL_CPL_DMA_WRITE_FAULT	= 5,
	REFACCEL_CPL_BAD_DESC		= 6,	/* reserved bits/flags set */
	REFACCEL_CPL_ABORTED		= 7,	/* aborted by quiesce/reset */
	REFACCEL_CPL_PAGE_FAULT		= 8,	/* PRI response failure */
};

#define REFACCEL_CPL_F_PHASE		0x1u	/* flips per CQ wrap */

/**
 * struct refaccel_cpl - one completion queue entry
 * @tag: the descriptor's tag
 * @result: CRC32C result, otherwise 0
 * @status: enum refaccel_cpl_status
 * @opcode: the descriptor's opcode
 * @flags: REFACCEL_CPL_F_*; the phase bit starts at 1 on the first pass
 */
struct refaccel_cpl {
	__u64	tag;
	__u32	result;
	__u16	status;
	__u8	opcode;
	__u8	flags;
};

#endif /* REFACCEL_REGS_H */
