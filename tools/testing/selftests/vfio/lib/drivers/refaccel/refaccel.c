// SPDX-License-Identifier: GPL-2.0-only
/*
 * libvfio driver for the reference PCI accelerator ("refaccel", PCI
 * 1234:11ac), so that the VFIO selftests can make it copy memory and send
 * an MSI-X message.
 *
 * The device is a QEMU device model of the refaccel-vfio-pci tree, not
 * silicon.  Its register map, descriptor and completion formats are in that
 * tree's include/hw/refaccel_regs.h and its behaviour in
 * Documentation/device-spec.rst.  In short: a submission queue (SQ) of
 * 64-byte descriptors and a completion queue (CQ) of 16-byte completions,
 * both in host memory and addressed by IOVA, a doorbell for each
 * (SQ_TAIL, CQ_HEAD), one completion per descriptor with a status, and
 * MSI-X vector 0 for completions whose descriptor asks for an interrupt.
 *
 * Only the first 32 KiB of BAR0 are used: refaccel-vfio-pci hides the
 * migration block above them, stock vfio-pci shows the whole 64 KiB.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/io.h>
#include <linux/pci_regs.h>

#include <libvfio.h>

#include <hw/refaccel_regs.h>

/* Both rings get the largest size the device accepts. */
#define RA_RING_ENTRIES		REFACCEL_RING_MAX_ENTRIES

/*
 * One slot of the SQ is always empty (SQ_HEAD == SQ_TAIL means empty), so
 * one memcpy_start() can queue at most this many copies.  The CQ has as
 * many entries; it holds them all, so the device never waits for room.
 */
#define RA_MAX_COPIES		(RA_RING_ENTRIES - 1)

/*
 * memcpy_wait() gives up when no completion has arrived for this long: a
 * stuck device is then reset instead of hanging the test.  It is a bound
 * on one descriptor, not on all of them, so that a long memcpy_storm
 * cannot trip it while the device makes progress.
 */
#define RA_IDLE_TIMEOUT_MS	10000

/* Registers up to here are used; all are below the hidden upper half. */
#define RA_REGS_USED		(REFACCEL_REG_CNT_PAGE_REQS + 4)

static_assert(sizeof(struct refaccel_desc) <= REFACCEL_DESC_SIZE,
	      "a descriptor fits in its SQ slot");
static_assert(sizeof(struct refaccel_cpl) == REFACCEL_CPL_SIZE,
	      "a completion is one CQ entry");
static_assert(RA_REGS_USED <= REFACCEL_REGS_USER_SIZE,
	      "only the part of BAR0 that refaccel-vfio-pci exposes");

/**
 * struct refaccel_state - what the driver keeps in driver->region
 * @sq: the submission queue; first, so that its IOVA is page aligned
 * @cq: the completion queue
 * @sq_tail: next SQ slot to fill (the value last written to SQ_TAIL)
 * @cq_head: next CQ entry to consume (the value last written to CQ_HEAD)
 * @phase: the CQ_F_PHASE value of a new entry at @cq_head
 * @pending: descriptors submitted whose completion was not consumed yet
 * @tag: tag of the last descriptor submitted
 *
 * The rings live in the driver's DMA region because the device reads and
 * writes them by IOVA; the bookkeeping only sits next to them.
 */
struct refaccel_state {
	u8 sq[RA_RING_ENTRIES][REFACCEL_DESC_SIZE] __aligned(REFACCEL_DESC_SIZE);
	struct refaccel_cpl cq[RA_RING_ENTRIES] __aligned(REFACCEL_CPL_SIZE);
	u32 sq_tail;
	u32 cq_head;
	u8 phase;
	u64 pending;
	u64 tag;
};

static inline struct refaccel_state *to_ra(struct vfio_pci_device *device)
{
	return device->driver.region.vaddr;
}

static inline u32 ra_read(struct vfio_pci_device *device, u32 reg)
{
	return readl(device->bars[REFACCEL_BAR_REGS].vaddr + reg);
}

static inline void ra_write(struct vfio_pci_device *device, u32 reg, u32 val)
{
	writel(val, device->bars[REFACCEL_BAR_REGS].vaddr + reg);
}

/* The device latches a 64-bit register pair when its _HI half is written. */
static void ra_write64(struct vfio_pci_device *device, u32 reg_lo, u64 val)
{
	ra_write(device, reg_lo, (u32)val);
	ra_write(device, reg_lo + 4, (u32)(val >> 32));
}

static u64 ra_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *ra_status_name(unsigned int status)
{
	switch (status) {
	case REFACCEL_CPL_OK:
		return "OK";
	case REFACCEL_CPL_BAD_OPCODE:
		return "BAD_OPCODE";
	case REFACCEL_CPL_BAD_LENGTH:
		return "BAD_LENGTH";
	case REFACCEL_CPL_BAD_SRAM_RANGE:
		return "BAD_SRAM_RANGE";
	case REFACCEL_CPL_DMA_READ_FAULT:
		return "DMA_READ_FAULT";
	case REFACCEL_CPL_DMA_WRITE_FAULT:
		return "DMA_WRITE_FAULT";
	case REFACCEL_CPL_BAD_DESC:
		return "BAD_DESC";
	case REFACCEL_CPL_ABORTED:
		return "ABORTED";
	case REFACCEL_CPL_PAGE_FAULT:
		return "PAGE_FAULT";
	default:
		return "?";
	}
}

static int refaccel_probe(struct vfio_pci_device *device)
{
	struct vfio_pci_bar *bar = &device->bars[REFACCEL_BAR_REGS];
	u32 id;

	if (!vfio_pci_device_match(device, REFACCEL_PCI_VENDOR_ID,
				   REFACCEL_PCI_DEVICE_ID))
		return -EINVAL;

	if (!bar->vaddr || bar->info.size < RA_REGS_USED) {
		dev_err(device, "refaccel: BAR0 not mapped or too small (0x%llx)\n",
			(unsigned long long)bar->info.size);
		return -EINVAL;
	}

	id = ra_read(device, REFACCEL_REG_ID);
	if (id != REFACCEL_ID_MAGIC) {
		dev_err(device, "refaccel: ID register 0x%08x, expected 0x%08x\n",
			id, REFACCEL_ID_MAGIC);
		return -EINVAL;
	}

	return 0;
}

/*
 * CTRL.RESET is a function reset: in-flight work is dropped without a
 * completion or an interrupt and every register (outside the hidden
 * migration block) returns to its reset value.  Configuration space and
 * the MSI-X table are left alone, so the vfio interrupt setup survives it.
 */
static void refaccel_reset(struct vfio_pci_device *device)
{
	u32 sleep_ms = 1, attempts = 1000 / sleep_ms;
	u32 status;

	ra_write(device, REFACCEL_REG_CTRL, REFACCEL_CTRL_RESET);

	for (;;) {
		status = ra_read(device, REFACCEL_REG_STATUS);
		if (!status)
			break;

		/* A device frozen for migration ignores the reset. */
		VFIO_ASSERT_GT(--attempts, 0,
			       "refaccel: STATUS 0x%x after CTRL.RESET\n",
			       status);
		usleep(sleep_ms * 1000);
	}
}

/* Program the rings and interrupt mask into a freshly reset function. */
static void refaccel_hw_init(struct vfio_pci_device *device)
{
	struct refaccel_state *ra = to_ra(device);
	u32 sleep_ms = 1, attempts = 1000 / sleep_ms;
	u32 status;

	memset(ra, 0, sizeof(*ra));
	ra->phase = 1;

	/* Writing a base or a size also zeroes that ring's indexes. */
	ra_write64(device, REFACCEL_REG_SQ_BASE_LO, to_iova(device, ra->sq));
	ra_write(device, REFACCEL_REG_SQ_SIZE, RA_RING_ENTRIES);
	ra_write64(device, REFACCEL_REG_CQ_BASE_LO, to_iova(device, ra->cq));
	ra_write(device, REFACCEL_REG_CQ_SIZE, RA_RING_ENTRIES);

	/*
	 * Only completions may interrupt, and only those of descriptors that
	 * ask for it (send_msi()): the tests count the messages on
	 * driver->msi, and an error vector has no eventfd anyway.
	 */
	ra_write(device, REFACCEL_REG_INT_STATUS, REFACCEL_INT_ALL);
	ra_write(device, REFACCEL_REG_INT_MASK,
		 REFACCEL_INT_ALL & ~REFACCEL_INT_COMPLETION);

	/* Enabling checks the ring configuration; a bad one halts. */
	ra_write(device, REFACCEL_REG_CTRL, REFACCEL_CTRL_ENABLE);
	for (;;) {
		status = ra_read(device, REFACCEL_REG_STATUS);
		VFIO_ASSERT_FALSE(status & REFACCEL_STATUS_HALTED,
				  "refaccel: halted at enable, reason %u\n",
				  ra_read(device, REFACCEL_REG_HALT_REASON));
		if (status & REFACCEL_STATUS_ENABLED)
			break;

		VFIO_ASSERT_GT(--attempts, 0,
			       "refaccel: not enabled, STATUS 0x%x\n", status);
		usleep(sleep_ms * 1000);
	}
}

static void refaccel_init(struct vfio_pci_device *device)
{
	struct vfio_pci_driver *driver = &device->driver;
	u32 max_xfer;

	VFIO_ASSERT_GE(driver->region.size, sizeof(struct refaccel_state));

	vfio_pci_config_writew(device, PCI_COMMAND,
			       PCI_COMMAND_MEMORY |
			       PCI_COMMAND_MASTER |
			       PCI_COMMAND_INTX_DISABLE);

	refaccel_reset(device);
	refaccel_hw_init(device);

	vfio_pci_msix_enable(device, REFACCEL_VEC_COMPLETION, 1);

	max_xfer = ra_read(device, REFACCEL_REG_MAX_XFER);
	VFIO_ASSERT_GT(max_xfer, 0, "refaccel: MAX_XFER is 0\n");

	driver->msi = REFACCEL_VEC_COMPLETION;
	driver->max_memcpy_size = max_xfer;
	driver->max_memcpy_count = RA_MAX_COPIES;
}

static void refaccel_remove(struct vfio_pci_device *device)
{
	/* The reset stops fetching and drops whatever was in flight. */
	refaccel_reset(device);
	to_ra(device)->pending = 0;
	vfio_pci_msix_disable(device);
}

static void refaccel_submit(struct vfio_pci_device *device, u8 opcode,
			    u8 flags, iova_t src, iova_t dst, u32 len)
{
	struct refaccel_state *ra = to_ra(device);
	struct refaccel_desc desc = {
		.opcode = opcode,
		.flags = flags,
		.len = len,
		.tag = ++ra->tag,
		.src = src,
		.dst = dst,
	};
	void *slot = ra->sq[ra->sq_tail];

	/* The reserved bytes of the slot must be zero. */
	memset(slot, 0, REFACCEL_DESC_SIZE);
	memcpy(slot, &desc, sizeof(desc));

	ra->sq_tail = (ra->sq_tail + 1) % RA_RING_ENTRIES;
	ra->pending++;
}

/* writel() orders the descriptor stores before the doorbell. */
static void refaccel_doorbell(struct vfio_pci_device *device)
{
	ra_write(device, REFACCEL_REG_SQ_TAIL, to_ra(device)->sq_tail);
}

static void refaccel_memcpy_start(struct vfio_pci_device *device,
				  iova_t src, iova_t dst, u64 size, u64 count)
{
	struct refaccel_state *ra = to_ra(device);
	u64 i;

	VFIO_ASSERT_EQ(ra->pending, 0);
	VFIO_ASSERT_LE(count, RA_MAX_COPIES);
	VFIO_ASSERT_GT(size, 0);
	VFIO_ASSERT_LE(size, device->driver.max_memcpy_size);

	/* NO_IRQ: memcpy_start() must not make the device interrupt. */
	for (i = 0; i < count; i++)
		refaccel_submit(device, REFACCEL_OP_COPY, REFACCEL_DESC_F_NO_IRQ,
				src, dst, size);

	refaccel_doorbell(device);
}

/*
 * Consume the completions that arrived.  CQ_TAIL is read before the
 * entries: the device writes an entry and moves CQ_TAIL in one step, so
 * every entry before the CQ_TAIL read is complete, even if the phase bit
 * of the next one became visible first.  Returns how many were consumed.
 */
static u32 refaccel_reap(struct vfio_pci_device *device, int *err)
{
	struct refaccel_state *ra = to_ra(device);
	struct refaccel_cpl *cpl;
	u32 tail, n = 0;

	cpl = &ra->cq[ra->cq_head];
	if ((READ_ONCE(cpl->flags) & REFACCEL_CPL_F_PHASE) != ra->phase)
		return 0;

	tail = ra_read(device, REFACCEL_REG_CQ_TAIL);
	while (ra->cq_head != tail && ra->pending) {
		cpl = &ra->cq[ra->cq_head];
		VFIO_ASSERT_EQ(cpl->flags & REFACCEL_CPL_F_PHASE, ra->phase,
			       "refaccel: CQ entry %u behind CQ_TAIL %u\n",
			       ra->cq_head, tail);

		if (cpl->status != REFACCEL_CPL_OK && !*err) {
			dev_err(device,
				"refaccel: descriptor %llu (opcode %u) failed: %s (%u), CNT_ERRORS %u\n",
				(unsigned long long)cpl->tag, cpl->opcode,
				ra_status_name(cpl->status), cpl->status,
				ra_read(device, REFACCEL_REG_CNT_ERRORS));
			if (cpl->status == REFACCEL_CPL_DMA_READ_FAULT ||
			    cpl->status == REFACCEL_CPL_DMA_WRITE_FAULT)
				*err = -EFAULT;
			else
				*err = -EIO;
		}

		if (++ra->cq_head == RA_RING_ENTRIES) {
			ra->cq_head = 0;
			ra->phase ^= 1;
		}
		ra->pending--;
		n++;
	}

	ra_write(device, REFACCEL_REG_CQ_HEAD, ra->cq_head);
	return n;
}

/*
 * The device neither halted nor answered: reset it, which ends whatever
 * DMA it still had in flight, and set it up again for the next memcpy.
 */
static void refaccel_recover(struct vfio_pci_device *device, const char *why)
{
	dev_err(device,
		"refaccel: %s: STATUS 0x%x HALT_REASON %u SQ %u/%u CQ %u/%u, resetting\n",
		why, ra_read(device, REFACCEL_REG_STATUS),
		ra_read(device, REFACCEL_REG_HALT_REASON),
		ra_read(device, REFACCEL_REG_SQ_HEAD),
		ra_read(device, REFACCEL_REG_SQ_TAIL),
		ra_read(device, REFACCEL_REG_CQ_HEAD),
		ra_read(device, REFACCEL_REG_CQ_TAIL));

	refaccel_reset(device);
	refaccel_hw_init(device);
}

/*
 * Wait until every submitted descriptor has completed.  A copy from or to
 * an unmapped IOVA completes with DMA_READ_FAULT or DMA_WRITE_FAULT (and
 * counts in CNT_ERRORS) and the device goes on with the next one, so such
 * an error is reported once all the copies are done.  Only a fault on the
 * rings themselves halts the device.
 */
static int refaccel_wait_all(struct vfio_pci_device *device)
{
	struct refaccel_state *ra = to_ra(device);
	u64 progress = ra_now_ms(), next_check = 0, now;
	unsigned int sleep_us = 10;
	int err = 0;

	while (ra->pending) {
		if (refaccel_reap(device, &err)) {
			progress = ra_now_ms();
			sleep_us = 10;
			continue;
		}

		now = ra_now_ms();
		if (now >= next_check) {
			if (ra_read(device, REFACCEL_REG_STATUS) &
			    REFACCEL_STATUS_HALTED) {
				refaccel_recover(device, "device halted");
				return -EIO;
			}
			next_check = now + 10;
		}

		if (now - progress > RA_IDLE_TIMEOUT_MS) {
			refaccel_recover(device, "no completion in time");
			return -ETIMEDOUT;
		}

		usleep(sleep_us);
		if (sleep_us < 1000)
			sleep_us *= 2;
	}

	/* The copies are done: make their data visible before returning. */
	rmb();
	return err;
}

static int refaccel_memcpy_wait(struct vfio_pci_device *device)
{
	return refaccel_wait_all(device);
}

/*
 * The device has no "send an interrupt" command: a NOP without NO_IRQ sets
 * INT_STATUS.COMPLETION when it completes, and that bit becoming set while
 * unmasked sends one message on vector 0.  A bit that stays set sends
 * nothing more, so it is cleared before and after.
 */
static void refaccel_send_msi(struct vfio_pci_device *device)
{
	ra_write(device, REFACCEL_REG_INT_STATUS, REFACCEL_INT_COMPLETION);

	refaccel_submit(device, REFACCEL_OP_NOP, 0, 0, 0, 0);
	refaccel_doorbell(device);
	VFIO_ASSERT_EQ(refaccel_wait_all(device), 0);

	ra_write(device, REFACCEL_REG_INT_STATUS, REFACCEL_INT_COMPLETION);
}

struct vfio_pci_driver_ops refaccel_ops = {
	.name = "refaccel",
	.probe = refaccel_probe,
	.init = refaccel_init,
	.remove = refaccel_remove,
	.memcpy_start = refaccel_memcpy_start,
	.memcpy_wait = refaccel_memcpy_wait,
	.send_msi = refaccel_send_msi,
};
