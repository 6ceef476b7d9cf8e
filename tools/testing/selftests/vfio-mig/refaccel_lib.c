// SPDX-License-Identifier: GPL-2.0-only
/*
 * refaccel_lib - userspace access to the reference accelerator through VFIO.
 * See refaccel_lib.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "refaccel_lib.h"

/* struct refaccel_desc (56 bytes) sits at the start of a 64-byte SQ slot */
_Static_assert(sizeof(struct refaccel_desc) <= REFACCEL_DESC_SIZE,
	       "descriptor layout");
_Static_assert(sizeof(struct refaccel_cpl) == REFACCEL_CPL_SIZE,
	       "completion layout");
/* descriptors and completions are used in place: little endian only */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little endian");

#define ra_log(fmt, ...) fprintf(stderr, "# refaccel: " fmt "\n", ##__VA_ARGS__)

static const char *const ra_drivers[] = {
	"refaccel-vfio-pci", "refaccel_vfio_pci", "vfio-pci", NULL,
};

bool ra_driver_is_variant(const char *driver)
{
	return !strcmp(driver, "refaccel-vfio-pci") ||
	       !strcmp(driver, "refaccel_vfio_pci");
}

bool ra_driver_ok(const char *driver)
{
	for (int i = 0; ra_drivers[i]; i++)
		if (!strcmp(driver, ra_drivers[i]))
			return true;
	return false;
}

int ra_timeout_ms(void)
{
	const char *s = getenv("REFACCEL_TIMEOUT_MS");
	long v;

	if (s && *s) {
		v = strtol(s, NULL, 0);
		if (v > 0 && v < 24L * 3600 * 1000)
			return (int)v;
	}
	return RA_TIMEOUT_MS_DEFAULT;
}

void ra_sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* discovery                                                           */
/* ------------------------------------------------------------------ */

static void why_append(struct ra_found *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void why_append(struct ra_found *f, const char *fmt, ...)
{
	size_t len = strlen(f->why);
	va_list ap;

	if (len >= sizeof(f->why) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(f->why + len, sizeof(f->why) - len, fmt, ap);
	va_end(ap);
}

static int discover_env(struct ra_found *f, const char *env)
{
	char *list = strdup(env), *save = NULL, *tok;

	if (!list)
		return -ENOMEM;
	for (tok = strtok_r(list, ", \t\n", &save); tok;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		char bdf[VU_BDF_LEN], drv[RA_DRIVER_LEN];
		uint32_t ven = 0, dev = 0;

		if (vu_bdf_normalize(tok, bdf, sizeof(bdf))) {
			why_append(f, " %s: not a PCI address;", tok);
			continue;
		}
		if (vu_pci_driver(bdf, drv, sizeof(drv))) {
			why_append(f, " %s: no such device;", bdf);
			continue;
		}
		if (vu_pci_read_id(bdf, "vendor", &ven) ||
		    vu_pci_read_id(bdf, "device", &dev) ||
		    ven != REFACCEL_PCI_VENDOR_ID ||
		    dev != REFACCEL_PCI_DEVICE_ID) {
			why_append(f, " %s: is %04x:%04x, not a refaccel;", bdf,
				   ven, dev);
			continue;
		}
		if (!ra_driver_ok(drv)) {
			why_append(f, " %s: bound to '%s', not refaccel-vfio-pci or vfio-pci;",
				   bdf, drv[0] ? drv : "(none)");
			continue;
		}
		if (f->n < RA_MAX_DEVS) {
			strcpy(f->bdf[f->n], bdf);
			strcpy(f->driver[f->n], drv);
			f->n++;
		}
	}
	free(list);
	return f->n;
}

int ra_discover(struct ra_found *f)
{
	char all[RA_MAX_DEVS][VU_BDF_LEN];
	const char *env = getenv("REFACCEL_BDF");
	int n;

	memset(f, 0, sizeof(*f));
	if (env && *env) {
		snprintf(f->why, sizeof(f->why), "REFACCEL_BDF=%s unusable:",
			 env);
		n = discover_env(f, env);
		if (n > 0)
			f->why[0] = '\0';
		return n < 0 ? 0 : n;
	}

	n = vu_pci_find(REFACCEL_PCI_VENDOR_ID, REFACCEL_PCI_DEVICE_ID,
			ra_drivers, f->bdf, RA_MAX_DEVS);
	if (n > 0) {
		f->n = n < RA_MAX_DEVS ? n : RA_MAX_DEVS;
		for (int i = 0; i < f->n; i++)
			if (vu_pci_driver(f->bdf[i], f->driver[i],
					  RA_DRIVER_LEN))
				strcpy(f->driver[i], "?");
		return f->n;
	}

	/* Nothing usable: say why. */
	n = vu_pci_find(REFACCEL_PCI_VENDOR_ID, REFACCEL_PCI_DEVICE_ID, NULL,
			all, RA_MAX_DEVS);
	if (n <= 0) {
		snprintf(f->why, sizeof(f->why),
			 "no %04x:%04x refaccel PCI function present",
			 REFACCEL_PCI_VENDOR_ID, REFACCEL_PCI_DEVICE_ID);
		return 0;
	}
	snprintf(f->why, sizeof(f->why),
		 "%d refaccel function(s) but none bound to refaccel-vfio-pci or vfio-pci:",
		 n);
	for (int i = 0; i < n && i < RA_MAX_DEVS; i++) {
		char drv[RA_DRIVER_LEN] = "";

		vu_pci_driver(all[i], drv, sizeof(drv));
		why_append(f, " %s(%s)", all[i], drv[0] ? drv : "no driver");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* device                                                              */
/* ------------------------------------------------------------------ */

void ra_progress_read(struct ra_dev *d, struct ra_progress *p)
{
	p->fetched = ra_rd(d, REFACCEL_REG_CNT_FETCHED);
	p->completed = ra_rd(d, REFACCEL_REG_CNT_COMPLETED);
	p->sq_head = ra_rd(d, REFACCEL_REG_SQ_HEAD);
	p->cq_tail = ra_rd(d, REFACCEL_REG_CQ_TAIL);
}

uint32_t ra_rd(struct ra_dev *d, uint32_t reg)
{
	return vu_read32(&d->vdev, REFACCEL_BAR_REGS, reg);
}

void ra_wr(struct ra_dev *d, uint32_t reg, uint32_t val)
{
	vu_write32(&d->vdev, REFACCEL_BAR_REGS, reg, val);
}

void ra_wr64(struct ra_dev *d, uint32_t reg_lo, uint64_t val)
{
	ra_wr(d, reg_lo, (uint32_t)val);
	ra_wr(d, reg_lo + 4, (uint32_t)(val >> 32));
}

uint64_t ra_rd64(struct ra_dev *d, uint32_t reg_lo)
{
	uint64_t lo = ra_rd(d, reg_lo);

	return lo | (uint64_t)ra_rd(d, reg_lo + 4) << 32;
}

int ra_open(struct vu_iommu *iommu, const char *bdf, struct ra_dev *d)
{
	uint64_t bar0;
	uint32_t id;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = vu_device_open(iommu, bdf, &d->vdev);
	if (ret)
		return ret;
	if (vu_pci_driver(d->vdev.bdf, d->driver, sizeof(d->driver)))
		strcpy(d->driver, "?");

	bar0 = vu_region_size(&d->vdev, REFACCEL_BAR_REGS);
	if (bar0 < REFACCEL_REG_TEST_OP_LATENCY + 4) {
		ra_log("%s: BAR0 is 0x%llx bytes, too small for the register map",
		       d->vdev.bdf, (unsigned long long)bar0);
		ret = -ENODEV;
		goto err;
	}
	ret = vu_region_mmap(&d->vdev, REFACCEL_BAR_REGS);
	if (ret < 0)
		goto err;
	d->regs_mmapped = vu_region_ptr(&d->vdev, REFACCEL_BAR_REGS,
					REFACCEL_REG_ID, 4) != NULL;

	ret = vu_pci_enable_bus_master(&d->vdev);
	if (ret)
		goto err;

	id = ra_rd(d, REFACCEL_REG_ID);
	if (id != REFACCEL_ID_MAGIC) {
		ra_log("%s: ID register 0x%08x, expected 0x%08x", d->vdev.bdf,
		       id, REFACCEL_ID_MAGIC);
		ret = -ENODEV;
		goto err;
	}

	d->bar2_size = vu_region_size(&d->vdev, REFACCEL_BAR_SRAM);
	ret = vu_region_mmap(&d->vdev, REFACCEL_BAR_SRAM);
	if (ret < 0)
		goto err;
	d->sram = vu_region_ptr(&d->vdev, REFACCEL_BAR_SRAM, 0, d->bar2_size);
	d->sram_mmapped = d->sram != NULL;
	d->sram_size = ra_rd(d, REFACCEL_REG_SRAM_SIZE);
	d->max_xfer = ra_rd(d, REFACCEL_REG_MAX_XFER);
	return 0;
err:
	vu_device_close(&d->vdev);
	return ret;
}

void ra_close(struct ra_dev *d)
{
	vu_device_close(&d->vdev);
	d->sram = NULL;
}

int ra_reset(struct ra_dev *d)
{
	int ret = vu_device_reset(&d->vdev);

	if (ret)
		return ret;
	return vu_pci_enable_bus_master(&d->vdev);
}

int ra_poll_reg(struct ra_dev *d, uint32_t reg, uint32_t mask, uint32_t want,
		int timeout_ms)
{
	uint64_t deadline = vu_now_ms() + timeout_ms;

	for (;;) {
		if ((ra_rd(d, reg) & mask) == want)
			return 0;
		if (vu_now_ms() > deadline)
			return (ra_rd(d, reg) & mask) == want ? 0 : -ETIMEDOUT;
		ra_sleep_ms(1);
	}
}

void ra_dump(struct ra_dev *d, const char *why)
{
	ra_log("%s: %s: CTRL 0x%x STATUS 0x%x HALT_REASON %u (%s)",
	       d->vdev.bdf, why, ra_rd(d, REFACCEL_REG_CTRL),
	       ra_rd(d, REFACCEL_REG_STATUS), ra_rd(d, REFACCEL_REG_HALT_REASON),
	       ra_halt_reason_name(ra_rd(d, REFACCEL_REG_HALT_REASON)));
	ra_log("  SQ base 0x%llx size %u head %u tail %u; CQ base 0x%llx size %u head %u tail %u",
	       (unsigned long long)ra_rd64(d, REFACCEL_REG_SQ_BASE_LO),
	       ra_rd(d, REFACCEL_REG_SQ_SIZE), ra_rd(d, REFACCEL_REG_SQ_HEAD),
	       ra_rd(d, REFACCEL_REG_SQ_TAIL),
	       (unsigned long long)ra_rd64(d, REFACCEL_REG_CQ_BASE_LO),
	       ra_rd(d, REFACCEL_REG_CQ_SIZE), ra_rd(d, REFACCEL_REG_CQ_HEAD),
	       ra_rd(d, REFACCEL_REG_CQ_TAIL));
	ra_log("  INT_STATUS 0x%x INT_MASK 0x%x FETCHED %u COMPLETED %u ERRORS %u",
	       ra_rd(d, REFACCEL_REG_INT_STATUS), ra_rd(d, REFACCEL_REG_INT_MASK),
	       ra_rd(d, REFACCEL_REG_CNT_FETCHED),
	       ra_rd(d, REFACCEL_REG_CNT_COMPLETED),
	       ra_rd(d, REFACCEL_REG_CNT_ERRORS));
}

int ra_sram_read(struct ra_dev *d, uint64_t off, void *buf, size_t len)
{
	return vu_region_read(&d->vdev, REFACCEL_BAR_SRAM, off, buf, len);
}

int ra_sram_write(struct ra_dev *d, uint64_t off, const void *buf, size_t len)
{
	return vu_region_write(&d->vdev, REFACCEL_BAR_SRAM, off, buf, len);
}

int ra_sram_pread(struct ra_dev *d, uint64_t off, void *buf, size_t len)
{
	return vu_region_pread(&d->vdev, REFACCEL_BAR_SRAM, off, buf, len);
}

int ra_sram_pwrite(struct ra_dev *d, uint64_t off, const void *buf, size_t len)
{
	return vu_region_pwrite(&d->vdev, REFACCEL_BAR_SRAM, off, buf, len);
}

/* ------------------------------------------------------------------ */
/* interrupts                                                          */
/* ------------------------------------------------------------------ */

int ra_irq_enable(struct ra_dev *d)
{
	return vu_irq_enable(&d->vdev, VFIO_PCI_MSIX_IRQ_INDEX,
			     REFACCEL_NUM_VECTORS);
}

int ra_irq_disable(struct ra_dev *d)
{
	return vu_irq_disable(&d->vdev);
}

int64_t ra_irq_wait(struct ra_dev *d, int vec, int timeout_ms)
{
	return vu_irq_wait(&d->vdev, vec, timeout_ms);
}

uint64_t ra_irq_drain(struct ra_dev *d, int vec)
{
	return vu_irq_drain(&d->vdev, vec);
}

/* ------------------------------------------------------------------ */
/* rings                                                               */
/* ------------------------------------------------------------------ */

static size_t ring_bytes(uint32_t entries, size_t esize)
{
	/* bad sizes are allowed (they are tested); bound the allocation */
	if (entries > 2 * REFACCEL_RING_MAX_ENTRIES)
		entries = 2 * REFACCEL_RING_MAX_ENTRIES;
	if (!entries)
		entries = 1;
	return entries * esize;
}

void ra_ring_program(struct ra_ring *r)
{
	struct ra_dev *d = r->dev;

	ra_wr64(d, REFACCEL_REG_SQ_BASE_LO, r->sq.iova);
	ra_wr(d, REFACCEL_REG_SQ_SIZE, r->sq_size);
	ra_wr64(d, REFACCEL_REG_CQ_BASE_LO, r->cq.iova);
	ra_wr(d, REFACCEL_REG_CQ_SIZE, r->cq_size);
}

int ra_ring_setup(struct ra_dev *d, struct vu_iommu *iommu,
		  struct ra_ring *r, uint32_t sq_entries, uint32_t cq_entries)
{
	uint32_t head, tail;
	int ret;

	memset(r, 0, sizeof(*r));
	r->dev = d;
	r->iommu = iommu;
	r->sq_size = sq_entries;
	r->cq_size = cq_entries;
	r->phase = 1;

	head = ra_rd(d, REFACCEL_REG_SQ_HEAD);
	tail = ra_rd(d, REFACCEL_REG_CQ_TAIL);
	if (head || tail) {
		ra_log("%s: ring setup needs a reset device (SQ_HEAD %u CQ_TAIL %u)",
		       d->vdev.bdf, head, tail);
		return -EBUSY;
	}
	ret = vu_dma_alloc(iommu, ring_bytes(sq_entries, REFACCEL_DESC_SIZE),
			   VU_DMA_RW, &r->sq);
	if (ret)
		return ret;
	ret = vu_dma_alloc(iommu, ring_bytes(cq_entries, REFACCEL_CPL_SIZE),
			   VU_DMA_RW, &r->cq);
	if (ret) {
		vu_dma_free(iommu, &r->sq);
		return ret;
	}
	ra_ring_program(r);
	return 0;
}

void ra_ring_restart(struct ra_ring *r)
{
	memset(r->sq.va, 0, r->sq.size);
	memset(r->cq.va, 0, r->cq.size);
	r->sq_tail = 0;
	r->sq_unrung = 0;
	r->cq_head = 0;
	r->phase = 1;
	r->submitted = 0;
	r->reaped = 0;
	r->cq_wraps = 0;
	__sync_synchronize();
	ra_ring_program(r);
}

void ra_ring_free(struct ra_ring *r)
{
	if (!r->iommu)
		return;
	vu_dma_free(r->iommu, &r->sq);
	vu_dma_free(r->iommu, &r->cq);
	r->iommu = NULL;
}

int ra_enable(struct ra_dev *d, int timeout_ms)
{
	uint64_t deadline = vu_now_ms() + timeout_ms;
	uint32_t st;

	ra_wr(d, REFACCEL_REG_CTRL, REFACCEL_CTRL_ENABLE);
	for (;;) {
		st = ra_rd(d, REFACCEL_REG_STATUS);
		if (st & REFACCEL_STATUS_HALTED)
			return -EIO;
		if (st & REFACCEL_STATUS_ENABLED)
			return 0;
		if (vu_now_ms() > deadline)
			return -ETIMEDOUT;
		ra_sleep_ms(1);
	}
}

uint64_t ra_ring_outstanding(struct ra_ring *r)
{
	return r->submitted - r->reaped;
}

uint32_t ra_ring_space(struct ra_ring *r)
{
	uint64_t out = ra_ring_outstanding(r);

	/* one slot stays empty: SQ_HEAD == SQ_TAIL means empty */
	if (r->sq_size < 2 || out >= r->sq_size - 1)
		return 0;
	return r->sq_size - 1 - (uint32_t)out;
}

int ra_sq_push(struct ra_ring *r, const struct refaccel_desc *desc)
{
	void *slot;

	if (!ra_ring_space(r))
		return -EAGAIN;
	slot = (char *)r->sq.va + (size_t)r->sq_tail * REFACCEL_DESC_SIZE;
	memset(slot, 0, REFACCEL_DESC_SIZE);
	memcpy(slot, desc, sizeof(*desc));
	r->sq_tail = (r->sq_tail + 1) % r->sq_size;
	r->sq_unrung++;
	r->submitted++;
	return 0;
}

void ra_sq_doorbell(struct ra_ring *r)
{
	if (!r->sq_unrung)
		return;
	/* vu_write32() orders the descriptor stores before the doorbell */
	ra_wr(r->dev, REFACCEL_REG_SQ_TAIL, r->sq_tail);
	r->sq_unrung = 0;
}

int ra_submit(struct ra_ring *r, const struct refaccel_desc *desc)
{
	int ret = ra_sq_push(r, desc);

	if (!ret)
		ra_sq_doorbell(r);
	return ret;
}

int ra_reap(struct ra_ring *r, struct refaccel_cpl *cpl)
{
	volatile struct refaccel_cpl *e;

	if (!r->cq_size || !r->cq.va)
		return 0;
	e = (volatile struct refaccel_cpl *)((char *)r->cq.va +
			(size_t)r->cq_head * REFACCEL_CPL_SIZE);
	if ((e->flags & REFACCEL_CPL_F_PHASE) != r->phase)
		return 0;
	/*
	 * The phase bit may become visible before the rest of the entry.  The
	 * model writes the entry and updates its registers in one step under
	 * QEMU's big lock, and an MMIO read cannot complete inside that step,
	 * so after this read the whole entry is there.
	 */
	(void)ra_rd(r->dev, REFACCEL_REG_CQ_TAIL);
	__sync_synchronize();
	memcpy(cpl, (const void *)e, sizeof(*cpl));

	if (++r->cq_head == r->cq_size) {
		r->cq_head = 0;
		r->phase ^= 1;
		r->cq_wraps++;
	}
	r->reaped++;
	ra_wr(r->dev, REFACCEL_REG_CQ_HEAD, r->cq_head);
	return 1;
}

int ra_wait_cpl(struct ra_ring *r, struct refaccel_cpl *cpl, int timeout_ms)
{
	uint64_t deadline = vu_now_ms() + timeout_ms, next_check = 0;
	unsigned int sleep_us = 20;

	for (;;) {
		uint64_t now;

		if (ra_reap(r, cpl))
			return 0;
		now = vu_now_ms();
		if (now >= next_check) {
			uint32_t st = ra_rd(r->dev, REFACCEL_REG_STATUS);

			if (st & REFACCEL_STATUS_HALTED) {
				if (ra_reap(r, cpl))
					return 0;
				ra_dump(r->dev, "device halted while waiting for a completion");
				return -EIO;
			}
			next_check = now + 50;
		}
		if (now > deadline) {
			if (ra_reap(r, cpl))
				return 0;
			ra_dump(r->dev, "timeout waiting for a completion");
			return -ETIMEDOUT;
		}
		usleep(sleep_us);
		if (sleep_us < 2000)
			sleep_us *= 2;
	}
}

int ra_run(struct ra_ring *r, const struct refaccel_desc *desc,
	   struct refaccel_cpl *cpl, int timeout_ms)
{
	int ret = ra_submit(r, desc);

	if (ret)
		return ret;
	return ra_wait_cpl(r, cpl, timeout_ms);
}

int ra_run_nop(struct ra_ring *r, uint64_t tag, int timeout_ms)
{
	struct refaccel_desc d = ra_desc_nop(tag);
	struct refaccel_cpl cpl;
	int ret = ra_run(r, &d, &cpl, timeout_ms);

	if (ret)
		return ret;
	return cpl.tag == tag && cpl.status == REFACCEL_CPL_OK ? 0 : -EPROTO;
}

/* ------------------------------------------------------------------ */
/* host pages mapped one by one                                        */
/* ------------------------------------------------------------------ */

#define RA_PG		REFACCEL_PRI_PAGE_SIZE

int ra_pages_alloc(struct vu_iommu *iommu, uint32_t npages, uint64_t map,
		   unsigned int prot, struct ra_pages *p)
{
	size_t size = (size_t)npages * RA_PG;
	void *va;
	int ret;

	memset(p, 0, sizeof(*p));
	if (!npages || npages > 64 || sysconf(_SC_PAGESIZE) != RA_PG)
		return -EINVAL;
	p->iova = vu_iova_alloc(iommu, size);
	if (!p->iova)
		return -ENOSPC;
	va = mmap(NULL, size, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (va == MAP_FAILED)
		return -errno;
	/* pinned pages must not become copy-on-write in a forked child */
	madvise(va, size, MADV_DONTFORK);
	p->iommu = iommu;
	p->va = va;
	p->npages = npages;
	p->prot = prot;
	for (uint32_t i = 0; i < npages; i++) {
		if (!(map >> i & 1))
			continue;
		ret = ra_pages_map(p, i);
		if (ret) {
			ra_pages_free(p);
			return ret;
		}
	}
	return 0;
}

int ra_pages_map(struct ra_pages *p, uint32_t i)
{
	int ret;

	if (i >= p->npages)
		return -EINVAL;
	if (p->mapped >> i & 1)
		return 0;
	ret = vu_dma_map(p->iommu, p->va + (size_t)i * RA_PG,
			 ra_pages_iova(p, i), RA_PG, p->prot);
	if (!ret)
		p->mapped |= 1ull << i;
	return ret;
}

int ra_pages_unmap(struct ra_pages *p, uint32_t i)
{
	int ret;

	if (i >= p->npages)
		return -EINVAL;
	if (!(p->mapped >> i & 1))
		return 0;
	ret = vu_dma_unmap(p->iommu, ra_pages_iova(p, i), RA_PG);
	if (!ret)
		p->mapped &= ~(1ull << i);
	return ret;
}

void ra_pages_free(struct ra_pages *p)
{
	if (p->va) {
		for (uint32_t i = 0; i < p->npages; i++)
			ra_pages_unmap(p, i);
		munmap(p->va, (size_t)p->npages * RA_PG);
	}
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------ */
/* page requests                                                       */
/* ------------------------------------------------------------------ */

void ra_pri_enable(struct ra_dev *d, bool on)
{
	ra_wr(d, REFACCEL_REG_PRI_CTRL, on ? REFACCEL_PRI_CTRL_ENABLE : 0);
}

bool ra_pri_pending(struct ra_dev *d, uint32_t *id)
{
	uint32_t v = ra_rd(d, REFACCEL_REG_PRI_PENDING);

	if (id)
		*id = v & RA_PRI_ID_MASK;
	return v & REFACCEL_PRI_PENDING_VALID;
}

int ra_pri_wait(struct ra_dev *d, int64_t old, uint32_t *id, int timeout_ms)
{
	uint64_t deadline = vu_now_ms() + timeout_ms;
	bool last = false;
	uint32_t v;

	for (;;) {
		if (ra_pri_pending(d, &v) && (old < 0 || v != (uint64_t)old)) {
			if (id)
				*id = v;
			return 0;
		}
		if (last)
			return -ETIMEDOUT;
		last = vu_now_ms() > deadline;
		ra_sleep_ms(1);
	}
}

uint32_t ra_pri_log_head(struct ra_dev *d, struct ra_pri_req *req)
{
	uint32_t n = ra_rd(d, REFACCEL_REG_PRI_LOG_COUNT);

	if (n && req) {
		req->addr = ra_rd64(d, REFACCEL_REG_PRI_LOG_ADDR_LO);
		req->info = ra_rd(d, REFACCEL_REG_PRI_LOG_INFO);
		req->id = req->info & RA_PRI_ID_MASK;
	}
	return n;
}

void ra_pri_log_pop(struct ra_dev *d)
{
	ra_wr(d, REFACCEL_REG_PRI_LOG_POP, 1);
}

void ra_pri_respond(struct ra_dev *d, uint32_t id, uint32_t code)
{
	ra_wr(d, REFACCEL_REG_PRI_RESP, id | code << REFACCEL_PRI_RESP_CODE_SHIFT);
}

void ra_pri_dump(struct ra_dev *d, const char *why)
{
	ra_log("%s: %s: PRI_CTRL 0x%x LOG_COUNT %u head 0x%llx/0x%x PENDING 0x%x STALE %u ABORTED %u PAGE_REQS %u",
	       d->vdev.bdf, why, ra_rd(d, REFACCEL_REG_PRI_CTRL),
	       ra_rd(d, REFACCEL_REG_PRI_LOG_COUNT),
	       (unsigned long long)ra_rd64(d, REFACCEL_REG_PRI_LOG_ADDR_LO),
	       ra_rd(d, REFACCEL_REG_PRI_LOG_INFO),
	       ra_rd(d, REFACCEL_REG_PRI_PENDING),
	       ra_rd(d, REFACCEL_REG_PRI_STALE),
	       ra_rd(d, REFACCEL_REG_PRI_ABORTED),
	       ra_rd(d, REFACCEL_REG_CNT_PAGE_REQS));
}

/* ------------------------------------------------------------------ */
/* descriptors                                                         */
/* ------------------------------------------------------------------ */

static struct refaccel_desc desc(uint8_t op, uint64_t tag, uint64_t src,
				 uint64_t dst, uint32_t len, uint32_t value)
{
	struct refaccel_desc d;

	memset(&d, 0, sizeof(d));
	d.opcode = op;
	d.tag = tag;
	d.src = src;
	d.dst = dst;
	d.len = len;
	d.value = value;
	return d;
}

struct refaccel_desc ra_desc_nop(uint64_t tag)
{
	return desc(REFACCEL_OP_NOP, tag, 0, 0, 0, 0);
}

struct refaccel_desc ra_desc_copy(uint64_t tag, uint64_t src, uint64_t dst,
				  uint32_t len)
{
	return desc(REFACCEL_OP_COPY, tag, src, dst, len, 0);
}

struct refaccel_desc ra_desc_fill(uint64_t tag, uint64_t dst, uint32_t len,
				  uint32_t value)
{
	return desc(REFACCEL_OP_FILL, tag, 0, dst, len, value);
}

struct refaccel_desc ra_desc_crc32c(uint64_t tag, uint64_t src, uint32_t len,
				    uint32_t seed)
{
	return desc(REFACCEL_OP_CRC32C, tag, src, 0, len, seed);
}

struct refaccel_desc ra_desc_load(uint64_t tag, uint64_t src_iova,
				  uint64_t sram_off, uint32_t len)
{
	return desc(REFACCEL_OP_LOAD, tag, src_iova, sram_off, len, 0);
}

struct refaccel_desc ra_desc_store(uint64_t tag, uint64_t sram_off,
				   uint64_t dst_iova, uint32_t len)
{
	return desc(REFACCEL_OP_STORE, tag, sram_off, dst_iova, len, 0);
}

const char *ra_cpl_status_name(unsigned int status)
{
	static const char *const names[] = {
		[REFACCEL_CPL_OK] = "OK",
		[REFACCEL_CPL_BAD_OPCODE] = "BAD_OPCODE",
		[REFACCEL_CPL_BAD_LENGTH] = "BAD_LENGTH",
		[REFACCEL_CPL_BAD_SRAM_RANGE] = "BAD_SRAM_RANGE",
		[REFACCEL_CPL_DMA_READ_FAULT] = "DMA_READ_FAULT",
		[REFACCEL_CPL_DMA_WRITE_FAULT] = "DMA_WRITE_FAULT",
		[REFACCEL_CPL_BAD_DESC] = "BAD_DESC",
		[REFACCEL_CPL_ABORTED] = "ABORTED",
		[REFACCEL_CPL_PAGE_FAULT] = "PAGE_FAULT",
	};

	if (status < sizeof(names) / sizeof(names[0]) && names[status])
		return names[status];
	return "?";
}

const char *ra_halt_reason_name(unsigned int reason)
{
	switch (reason) {
	case REFACCEL_HALT_NONE:
		return "NONE";
	case REFACCEL_HALT_SQ_FETCH:
		return "SQ_FETCH";
	case REFACCEL_HALT_CQ_WRITE:
		return "CQ_WRITE";
	case REFACCEL_HALT_RING_CONFIG:
		return "RING_CONFIG";
	}
	return "?";
}

/* ------------------------------------------------------------------ */
/* reference models                                                    */
/* ------------------------------------------------------------------ */

static uint32_t crc32c_table[256];

static void crc32c_init(void)
{
	if (crc32c_table[1])
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc32c_table[i] = c;
	}
}

uint32_t ra_ref_crc32c_raw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc32c_init();
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t ra_ref_crc32c(uint32_t seed, const void *buf, size_t len)
{
	return ~ra_ref_crc32c_raw(~seed, buf, len);
}

void ra_ref_fill(void *buf, size_t len, uint32_t value)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(value >> (8 * (i & 3)));
}

uint64_t ra_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

void ra_rand_fill(void *buf, size_t len, uint64_t *state)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = ra_rand(state);

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = ra_rand(state);

		memcpy(p, &v, len);
	}
}
