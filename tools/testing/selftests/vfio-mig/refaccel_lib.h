/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * refaccel_lib - userspace access to the reference accelerator ("refaccel")
 * through VFIO, for the vfio-mig kselftests.  Everything is prefixed "ra_".
 *
 *   ra_discover()        find functions bound to refaccel-vfio-pci/vfio-pci
 *                        (or those named in REFACCEL_BDF)
 *   ra_open()/ra_close() open one function into a struct vu_iommu (several
 *                        functions can share one vu_iommu: same IOVA space)
 *   ra_rd()/ra_wr()      32-bit BAR0 registers (mmap, else pread/pwrite)
 *   ra_sram_*()          BAR2 device memory
 *   ra_irq_*()           the 4 MSI-X vectors, one eventfd each
 *   ra_ring_*()          one SQ/CQ pair in DMA-mapped host memory
 *   ra_submit()/ra_reap()/ra_wait_cpl()/ra_run()
 *   ra_pages_*()         host pages at one IOVA range, each mapped or not
 *   ra_pri_*()           the page request block (CAPS.PRI)
 *   ra_ref_*()           reference models of the ops (CRC32C, FILL, ...)
 *
 * The register map is include/hw/refaccel_regs.h, shared with the QEMU model
 * and the driver.
 */
#ifndef REFACCEL_LIB_H
#define REFACCEL_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/refaccel_regs.h"
#include "vfio_util.h"

#define RA_MAX_DEVS		8
#define RA_DRIVER_LEN		64
/* Per-wait default; TCG is slow.  REFACCEL_TIMEOUT_MS overrides. */
#define RA_TIMEOUT_MS_DEFAULT	30000

/* ---- discovery ---- */
struct ra_found {
	int n;
	char bdf[RA_MAX_DEVS][VU_BDF_LEN];
	char driver[RA_MAX_DEVS][RA_DRIVER_LEN];
	char why[512];		/* reason when n == 0 */
};

/* true for refaccel-vfio-pci (either spelling) and vfio-pci */
bool ra_driver_ok(const char *driver);
bool ra_driver_is_variant(const char *driver);
/*
 * Fill @f with usable functions: REFACCEL_BDF (comma separated) if set, else
 * every 0x1234:0x11ac function bound to refaccel-vfio-pci or vfio-pci.
 * Returns f->n; when 0, f->why says why (for SKIP()).
 */
int ra_discover(struct ra_found *f);

/* ---- device ---- */
struct ra_dev {
	struct vu_device vdev;
	char driver[RA_DRIVER_LEN];
	uint32_t sram_size;	/* REG_SRAM_SIZE */
	uint32_t max_xfer;	/* REG_MAX_XFER */
	uint64_t bar2_size;	/* BAR2 region size */
	bool regs_mmapped;	/* BAR0 registers through mmap */
	bool sram_mmapped;	/* whole SRAM through mmap */
	volatile uint8_t *sram;	/* BAR2 mmap, NULL if not mmappable */
};

/*
 * Open @bdf into @iommu: region info, mmap BAR0 and BAR2 (fallback
 * pread/pwrite), memory + bus master enable, check the ID register.
 * Does not reset the device nor enable interrupts.
 */
int ra_open(struct vu_iommu *iommu, const char *bdf, struct ra_dev *d);
void ra_close(struct ra_dev *d);
uint32_t ra_rd(struct ra_dev *d, uint32_t reg);

/* How far the engine got: to tell "did nothing since" from "did work". */
struct ra_progress {
	uint32_t fetched, completed, sq_head, cq_tail;
};
void ra_progress_read(struct ra_dev *d, struct ra_progress *p);
void ra_wr(struct ra_dev *d, uint32_t reg, uint32_t val);
/* Write a _LO/_HI pair (LO first; the device latches on HI). */
void ra_wr64(struct ra_dev *d, uint32_t reg_lo, uint64_t val);
uint64_t ra_rd64(struct ra_dev *d, uint32_t reg_lo);
/* VFIO_DEVICE_RESET (FLR), then memory/bus master enable again. */
int ra_reset(struct ra_dev *d);
/* Poll until (reg & mask) == want; 0, or -ETIMEDOUT. */
int ra_poll_reg(struct ra_dev *d, uint32_t reg, uint32_t mask, uint32_t want,
		int timeout_ms);
/* Print the main registers as TAP comments. */
void ra_dump(struct ra_dev *d, const char *why);

/* SRAM (BAR2): through the mmap if any, else pread/pwrite. */
int ra_sram_read(struct ra_dev *d, uint64_t off, void *buf, size_t len);
int ra_sram_write(struct ra_dev *d, uint64_t off, const void *buf, size_t len);
/* Always through pread/pwrite on the vfio device fd. */
int ra_sram_pread(struct ra_dev *d, uint64_t off, void *buf, size_t len);
int ra_sram_pwrite(struct ra_dev *d, uint64_t off, const void *buf, size_t len);

/* ---- interrupts (MSI-X, REFACCEL_NUM_VECTORS eventfds) ---- */
int ra_irq_enable(struct ra_dev *d);
int ra_irq_disable(struct ra_dev *d);
/* > 0: fired (count consumed), 0: timeout, < 0: error */
int64_t ra_irq_wait(struct ra_dev *d, int vec, int timeout_ms);
uint64_t ra_irq_drain(struct ra_dev *d, int vec);

/* ---- rings ---- */
struct ra_ring {
	struct ra_dev *dev;
	struct vu_iommu *iommu;
	struct vu_dma sq;	/* sq_size * 64 bytes */
	struct vu_dma cq;	/* cq_size * 16 bytes */
	uint32_t sq_size, cq_size;
	uint32_t sq_tail;	/* next SQ slot to write */
	uint32_t sq_unrung;	/* written but doorbell not rung yet */
	uint32_t cq_head;	/* next CQ slot to read */
	uint8_t phase;		/* phase of a new entry at cq_head */
	uint64_t submitted;
	uint64_t reaped;
	uint64_t cq_wraps;	/* times the consumer wrapped the CQ */
};

/*
 * Allocate and DMA-map an SQ of @sq_entries and a CQ of @cq_entries, and
 * program the ring registers (not CTRL).  Requires a freshly reset device
 * (SQ_HEAD == CQ_TAIL == 0).  Sizes are not validated, so bad sizes can be
 * tested; the memory is always at least one page.
 */
int ra_ring_setup(struct ra_dev *d, struct vu_iommu *iommu,
		  struct ra_ring *r, uint32_t sq_entries, uint32_t cq_entries);
/* Program SQ/CQ base/size from @r (also after ra_reset()); no CTRL. */
void ra_ring_program(struct ra_ring *r);
/* After ra_reset(): zero the ring memory, reset indices, program. */
void ra_ring_restart(struct ra_ring *r);
void ra_ring_free(struct ra_ring *r);
/*
 * CTRL.ENABLE := 1 and wait for STATUS.ENABLED.  -EIO if the device HALTED
 * instead (see REG_HALT_REASON), -ETIMEDOUT.
 */
int ra_enable(struct ra_dev *d, int timeout_ms);

/* Descriptors that may be queued now (conservative: completions too). */
uint32_t ra_ring_space(struct ra_ring *r);
uint64_t ra_ring_outstanding(struct ra_ring *r);
/* Write one descriptor into the SQ without ringing; -EAGAIN when full. */
int ra_sq_push(struct ra_ring *r, const struct refaccel_desc *desc);
/* Ring SQ_TAIL for everything pushed. */
void ra_sq_doorbell(struct ra_ring *r);
/* push + doorbell */
int ra_submit(struct ra_ring *r, const struct refaccel_desc *desc);
/*
 * Take the next completion if one is there: 1 (copied to *cpl, CQ_HEAD
 * advanced), 0 if none.
 */
int ra_reap(struct ra_ring *r, struct refaccel_cpl *cpl);
/*
 * Wait up to @timeout_ms for the next completion.  0 on success, -EIO if
 * the device halted, -ETIMEDOUT.
 */
int ra_wait_cpl(struct ra_ring *r, struct refaccel_cpl *cpl, int timeout_ms);
/* submit one descriptor and wait for the next completion */
/*
 * Run one NOP with @tag on @r: 0 when it completed OK with that tag,
 * -EPROTO when another completion came, else ra_run()'s error.  With
 * TEST_OP_LATENCY set, a clock in the model's virtual time.
 */
int ra_run_nop(struct ra_ring *r, uint64_t tag, int timeout_ms);
int ra_run(struct ra_ring *r, const struct refaccel_desc *desc,
	   struct refaccel_cpl *cpl, int timeout_ms);

/*
 * ---- host pages mapped one by one ----
 * @npages (1..64) zeroed host pages of REFACCEL_PRI_PAGE_SIZE bytes (the
 * host page size must be that) at a fresh IOVA range from vu_iova_alloc(),
 * never mapped before, so a page left unmapped faults.  Page i is
 * DMA-mapped on its own (so it can be unmapped alone) iff bit i of @map is
 * set.  Its memory is there whether mapped or not: the CPU can prepare the
 * contents of a page before mapping it.
 */
struct ra_pages {
	struct vu_iommu *iommu;
	uint8_t *va;
	uint64_t iova;
	uint32_t npages;
	unsigned int prot;	/* VU_DMA_* of every mapping */
	uint64_t mapped;	/* bit i: page i is mapped */
};

int ra_pages_alloc(struct vu_iommu *iommu, uint32_t npages, uint64_t map,
		   unsigned int prot, struct ra_pages *p);
/* Map / unmap page @i (0 if it already is / is not). */
int ra_pages_map(struct ra_pages *p, uint32_t i);
int ra_pages_unmap(struct ra_pages *p, uint32_t i);
static inline uint64_t ra_pages_iova(const struct ra_pages *p, uint32_t i)
{
	return p->iova + (uint64_t)i * REFACCEL_PRI_PAGE_SIZE;
}
/* Unmap every mapped page and free; safe on a zeroed or freed struct. */
void ra_pages_free(struct ra_pages *p);

/*
 * ---- page requests (CAPS.PRI, device spec "Page requests") ----
 * A request is named by its PRG index and the epoch it was made in, as
 * PRI_LOG_INFO and PRI_PENDING give them and PRI_RESP takes them: an "id"
 * here is that pair, (prgi | epoch << REFACCEL_PRI_EPOCH_SHIFT).
 */
#define RA_PRI_ID_MASK	(REFACCEL_PRI_INFO_PRGI_MASK | REFACCEL_PRI_EPOCH_MASK)

static inline uint32_t ra_pri_prgi(uint32_t id)
{
	return id & REFACCEL_PRI_INFO_PRGI_MASK;
}

static inline uint32_t ra_pri_epoch(uint32_t id)
{
	return (id & REFACCEL_PRI_EPOCH_MASK) >> REFACCEL_PRI_EPOCH_SHIFT;
}

struct ra_pri_req {
	uint64_t addr;		/* PRI_LOG_ADDR: the page address */
	uint32_t info;		/* PRI_LOG_INFO */
	uint32_t id;		/* its PRG index and epoch */
};

/* PRI_CTRL.ENABLE := @on */
void ra_pri_enable(struct ra_dev *d, bool on);
/* PRI_PENDING.VALID; the pending request's id in *@id (may be NULL). */
bool ra_pri_pending(struct ra_dev *d, uint32_t *id);
/*
 * Wait until a request is pending whose id is not @old (-1: any); 0 with
 * its id in *@id (may be NULL), or -ETIMEDOUT.
 */
int ra_pri_wait(struct ra_dev *d, int64_t old, uint32_t *id, int timeout_ms);
/* PRI_LOG_COUNT; when not 0, the oldest request in *@req (may be NULL). */
uint32_t ra_pri_log_head(struct ra_dev *d, struct ra_pri_req *req);
void ra_pri_log_pop(struct ra_dev *d);
/*
 * PRI_RESP := @id | @code << REFACCEL_PRI_RESP_CODE_SHIFT.  @id is written
 * as it is (other bits than RA_PRI_ID_MASK too, for tests of bad answers).
 */
void ra_pri_respond(struct ra_dev *d, uint32_t id, uint32_t code);
/* Print the page request block as TAP comments. */
void ra_pri_dump(struct ra_dev *d, const char *why);

/* ---- descriptors ---- */
struct refaccel_desc ra_desc_nop(uint64_t tag);
struct refaccel_desc ra_desc_copy(uint64_t tag, uint64_t src, uint64_t dst,
				  uint32_t len);
struct refaccel_desc ra_desc_fill(uint64_t tag, uint64_t dst, uint32_t len,
				  uint32_t value);
struct refaccel_desc ra_desc_crc32c(uint64_t tag, uint64_t src, uint32_t len,
				    uint32_t seed);
struct refaccel_desc ra_desc_load(uint64_t tag, uint64_t src_iova,
				  uint64_t sram_off, uint32_t len);
struct refaccel_desc ra_desc_store(uint64_t tag, uint64_t sram_off,
				   uint64_t dst_iova, uint32_t len);
const char *ra_cpl_status_name(unsigned int status);
const char *ra_halt_reason_name(unsigned int reason);

/* ---- reference models and helpers ---- */
/* raw reflected CRC-32C (Castagnoli, poly 0x82f63b78), no inversion */
uint32_t ra_ref_crc32c_raw(uint32_t crc, const void *buf, size_t len);
/* the device's CRC32C: ~raw(~seed, data); seed 0 gives standard CRC-32C */
uint32_t ra_ref_crc32c(uint32_t seed, const void *buf, size_t len);
/* FILL: 4 LE bytes of @value repeated from buf[0], tail truncated */
void ra_ref_fill(void *buf, size_t len, uint32_t value);
/* deterministic pseudo random bytes (xorshift64*) */
uint64_t ra_rand(uint64_t *state);
void ra_rand_fill(void *buf, size_t len, uint64_t *state);
/* REFACCEL_TIMEOUT_MS or RA_TIMEOUT_MS_DEFAULT */
int ra_timeout_ms(void);
void ra_sleep_ms(unsigned int ms);

#endif /* REFACCEL_LIB_H */
