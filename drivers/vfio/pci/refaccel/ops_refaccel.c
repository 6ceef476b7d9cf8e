// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration operations of the reference accelerator: each function is one
 * hardware action on the migration block of BAR0 or on the SRAM in BAR2.
 * FSM policy lives in the core (mig*.c); nothing here knows a migration state.
 *
 * The migration block must be reachable whatever the user did to the
 * function: a guest that never enabled memory decode, turned it off, or put
 * the function in D3hot must still be migratable (a real device would be
 * reached through its PF or an admin queue).  Every operation therefore runs
 * inside an access window (rv_access_begin()/rv_access_end()) that holds
 * vfio_pci_core's memory_lock, and only if decode is off or the function is
 * in D3hot takes it for writing, turns decode on and brings the function to
 * D0, and afterwards puts back exactly what the user had.  With memory_lock
 * held for writing the user cannot fault in a BAR mapping or change
 * PCI_COMMAND or the power state meanwhile.
 */

#include <linux/delay.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>

#include "compat.h"
#include "refaccel.h"

static struct refaccel_vfio_device *to_rv(struct vmig_device *mig)
{
	return container_of(mig, struct refaccel_vfio_device, mig);
}

static struct device *rv_dev(struct refaccel_vfio_device *rv)
{
	return &rv->core_device.pdev->dev;
}

/**
 * struct rv_access - what an access window changed and must put back
 * @write_locked: memory_lock is held for writing (else for reading)
 * @cmd: PCI_COMMAND as the user left it
 * @restore_cmd: @cmd lacked memory decode; it was turned on
 * @restore_d3hot: the function was in D3hot and was brought to D0
 */
struct rv_access {
	bool write_locked;
	u16 cmd;
	bool restore_cmd;
	bool restore_d3hot;
};

/*
 * With memory_lock held: does BAR0 decode right now, as the user left it?
 * The device's own PCI_COMMAND, not the user's virtual one.  A VF has no
 * memory enable of its own (no_command_memory: the PF's SR-IOV control
 * holds it), as vfio_pci_core's check also knows.
 */
static bool rv_decodes(struct refaccel_vfio_device *rv)
{
	struct pci_dev *pdev = rv->core_device.pdev;
	u16 cmd;

	if (pdev->current_state != PCI_D0)
		return false;
	if (pdev->no_command_memory)
		return true;
	pci_read_config_word(pdev, PCI_COMMAND, &cmd);
	return cmd & PCI_COMMAND_MEMORY;
}

static int rv_access_begin(struct refaccel_vfio_device *rv, struct rv_access *a)
{
	struct vfio_pci_core_device *core = &rv->core_device;
	struct pci_dev *pdev = core->pdev;
	int ret;

	memset(a, 0, sizeof(*a));
	down_read(&core->memory_lock);
	/*
	 * The user asked vfio-pci for runtime low power (the flag is under
	 * memory_lock): the function may be suspended, even in D3cold, at any
	 * moment.  Migration needs it awake; the user must leave low power.
	 */
	if (core->pm_runtime_engaged) {
		up_read(&core->memory_lock);
		dev_err_ratelimited(rv_dev(rv), "migration block unreachable: the user put the function in runtime low power\n");
		return -EBUSY;
	}
	if (rv_decodes(rv))
		return 0;
	up_read(&core->memory_lock);

	down_write(&core->memory_lock);
	a->write_locked = true;
	if (core->pm_runtime_engaged) {
		dev_err_ratelimited(rv_dev(rv), "migration block unreachable: the user put the function in runtime low power\n");
		ret = -EBUSY;
		goto err;
	}
	if (pdev->current_state == PCI_D3hot) {
		/*
		 * Safe only when D3hot -> D0 keeps the function's state
		 * (No_Soft_Reset); otherwise waking it would reset it.
		 */
		if (core->needs_pm_restore) {
			dev_err(rv_dev(rv), "function in D3hot without No_Soft_Reset: its state cannot be reached without resetting it\n");
			ret = -EIO;
			goto err;
		}
		ret = pci_set_power_state(pdev, PCI_D0);
		if (ret) {
			dev_err(rv_dev(rv), "cannot bring the function from D3hot to D0 for migration: %d\n",
				ret);
			goto err;
		}
		a->restore_d3hot = true;
	} else if (pdev->current_state != PCI_D0) {
		dev_err(rv_dev(rv), "migration block unreachable in power state %s\n",
			pci_power_name(pdev->current_state));
		ret = -EIO;
		goto err;
	}
	pci_read_config_word(pdev, PCI_COMMAND, &a->cmd);
	if (!(a->cmd & PCI_COMMAND_MEMORY)) {
		pci_write_config_word(pdev, PCI_COMMAND,
				      a->cmd | PCI_COMMAND_MEMORY);
		a->restore_cmd = true;
	}
	return 0;
err:
	up_write(&core->memory_lock);
	return ret;
}

static void rv_access_end(struct refaccel_vfio_device *rv, struct rv_access *a)
{
	struct vfio_pci_core_device *core = &rv->core_device;
	struct pci_dev *pdev = core->pdev;
	int ret;

	if (!a->write_locked) {
		up_read(&core->memory_lock);
		return;
	}
	if (a->restore_cmd)
		pci_write_config_word(pdev, PCI_COMMAND, a->cmd);
	if (a->restore_d3hot) {
		ret = pci_set_power_state(pdev, PCI_D3hot);
		if (ret)
			dev_warn(rv_dev(rv), "cannot return the function to D3hot after migration access: %d\n",
				 ret);
	}
	up_write(&core->memory_lock);
}

/*
 * The access window of an operation the core calls with its state mutex
 * held (the arcs): if the function was reset while the operation waited
 * for memory_lock, it is left untouched and the operation fails with
 * -EAGAIN; the core then returns it to idle (refaccel_idle()).
 */
static int rv_arc_begin(struct refaccel_vfio_device *rv, struct rv_access *a)
{
	int ret = rv_access_begin(rv, a);

	if (ret)
		return ret;
	if (vmig_reset_overtook(&rv->mig)) {
		rv_access_end(rv, a);
		dev_dbg(rv_dev(rv), "function reset while a migration step waited for it: step dropped\n");
		return -EAGAIN;
	}
	return 0;
}

/* Register accessors: only inside an access window. */
static u32 rv_read(struct refaccel_vfio_device *rv, u32 reg)
{
	return ioread32(rv->regs + reg);
}

static void rv_write(struct refaccel_vfio_device *rv, u32 reg, u32 val)
{
	iowrite32(val, rv->regs + reg);
}

/* 64-bit pairs: the device latches a written pair when _HI is written. */
static u64 rv_read64(struct refaccel_vfio_device *rv, u32 reg_lo)
{
	u64 lo = rv_read(rv, reg_lo);

	return lo | (u64)rv_read(rv, reg_lo + 4) << 32;
}

static void rv_write64(struct refaccel_vfio_device *rv, u32 reg_lo, u64 val)
{
	rv_write(rv, reg_lo, lower_32_bits(val));
	rv_write(rv, reg_lo + 4, upper_32_bits(val));
}

static void rv_update(struct refaccel_vfio_device *rv, u32 reg, u32 clear,
		      u32 set)
{
	rv_write(rv, reg, (rv_read(rv, reg) & ~clear) | set);
}

/* The core's kernel mapping of @bar, for the driver's own accesses. */
static int rv_map_bar(struct refaccel_vfio_device *rv, unsigned int bar,
		      void __iomem **map)
{
	void __iomem *io = refaccel_compat_bar_iomap(&rv->core_device, bar);

	if (IS_ERR(io)) {
		dev_err(rv_dev(rv), "cannot map BAR%u for migration: %ld\n",
			bar, PTR_ERR(io));
		return PTR_ERR(io);
	}
	*map = io;
	return 0;
}

static int refaccel_get_info(struct vmig_device *mig, struct vmig_dev_info *info)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 id, caps, sram, pgsize, max, compat, dt_ranges = 0;
	u64 dt_span = 0;
	struct rv_access a;
	int ret;

	ret = rv_map_bar(rv, REFACCEL_BAR_REGS, &rv->regs);
	if (!ret)
		ret = rv_map_bar(rv, REFACCEL_BAR_SRAM, &rv->sram);
	if (ret)
		return ret;

	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	id = rv_read(rv, REFACCEL_REG_ID);
	caps = rv_read(rv, REFACCEL_REG_CAPS);
	sram = rv_read(rv, REFACCEL_REG_SRAM_SIZE);
	pgsize = rv_read(rv, REFACCEL_REG_SRAM_DIRTY_PGSIZE);
	max = rv_read(rv, REFACCEL_REG_MIG_STATE_MAX);
	compat = rv_read(rv, REFACCEL_REG_MIG_COMPAT_ID);
	/*
	 * A new user starts without the previous one's DMA tracking even on a
	 * function whose reset did not work (the rest: refaccel_idle()).
	 */
	if (refaccel_caps_migratable(caps))
		rv_write(rv, REFACCEL_REG_DT_CTRL, 0);
	if (caps & REFACCEL_CAP_DMA_DIRTY) {
		dt_ranges = rv_read(rv, REFACCEL_REG_DT_MAX_RANGES);
		dt_span = rv_read64(rv, REFACCEL_REG_DT_MAX_SPAN_LO);
	}
	rv_access_end(rv, &a);

	if (id != REFACCEL_ID_MAGIC) {
		dev_err(rv_dev(rv), "ID register reads %#x, expected %#x\n",
			id, REFACCEL_ID_MAGIC);
		return -ENODEV;
	}
	if (!refaccel_caps_migratable(caps)) {
		dev_info(rv_dev(rv), "device has no migration block (caps %#x)\n",
			 caps);
		return -EOPNOTSUPP;
	}
	if (sram != pci_resource_len(rv->core_device.pdev, REFACCEL_BAR_SRAM)) {
		dev_err(rv_dev(rv), "SRAM_SIZE register (%u) disagrees with BAR%d\n",
			sram, REFACCEL_BAR_SRAM);
		return -ENODEV;
	}

	info->compat_id = compat;
	info->state_max = max;
	info->mem_size = sram;
	info->mem_page_size = pgsize;
	info->dma_max_ranges = dt_ranges;
	info->dma_max_span = dt_span;
	info->dma_pgshift_min = REFACCEL_DT_PGSHIFT_MIN;
	info->dma_pgshift_max = REFACCEL_DT_PGSHIFT_MAX;
	rv->sram_size = sram;
	rv->sram_pgsize = pgsize;
	return 0;
}

/**
 * refaccel_pri_enabled() - does the device issue page requests right now?
 * @rv: the function
 *
 * PRI_CTRL.ENABLE of the page request block, which the user owns.  False
 * for a device without CAPS.PRI, or when the block cannot be reached.
 */
bool refaccel_pri_enabled(struct refaccel_vfio_device *rv)
{
	struct rv_access a;
	bool on;

	if (!(rv->caps & REFACCEL_CAP_PRI) || rv_access_begin(rv, &a))
		return false;
	on = rv_read(rv, REFACCEL_REG_PRI_CTRL) & REFACCEL_PRI_CTRL_ENABLE;
	rv_access_end(rv, &a);
	return on;
}

static u32 refaccel_in_flight(struct refaccel_vfio_device *rv)
{
	return rv_read(rv, REFACCEL_REG_CNT_FETCHED) -
	       rv_read(rv, REFACCEL_REG_CNT_COMPLETED);
}

/*
 * Request the quiesce and poll for it.  Giving up (timeout, fatal signal)
 * withdraws the request, so the device runs on as before and work the user
 * submitted meanwhile completes.  The poll interval (at most 200 us) and
 * the undo are the slack the uAPI documents on top of the timeout.
 *
 * Each look at MIG_STATUS is its own access window: memory_lock held
 * across the sleeps would queue every BAR fault, region access and config
 * write of the user behind a poll that may last the whole timeout (for
 * writing, when decode is off or the function is in D3hot).  Between two
 * windows the function may be reset (the request is then gone with it:
 * -EAGAIN, as for any arc a reset overtakes) or made unreachable by the
 * user (runtime low power, D3cold): then the request cannot be withdrawn
 * and @args->stuck says so.
 */
static int refaccel_quiesce(struct vmig_device *mig,
			    struct vmig_quiesce_args *args)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	/* ktime, not jiffies: a jiffy deadline may expire up to a tick early */
	ktime_t deadline = ktime_add_ms(ktime_get(), args->timeout_ms);
	u32 set = REFACCEL_MIG_CTRL_QUIESCE;
	struct rv_access a;
	int ret;

	if (args->abort_pri && (rv->caps & REFACCEL_CAP_PRI))
		set |= REFACCEL_MIG_CTRL_ABORT_PRI;
	if (args->park)
		set |= REFACCEL_MIG_CTRL_PARK;
	ret = rv_arc_begin(rv, &a);
	if (ret)
		return ret;
	rv_update(rv, REFACCEL_REG_MIG_CTRL, 0, set);
	while (!(rv_read(rv, REFACCEL_REG_MIG_STATUS) &
		 REFACCEL_MIG_STATUS_QUIESCED)) {
		if (ktime_after(ktime_get(), deadline)) {
			dev_err(rv_dev(rv),
				"quiesce did not complete within %u ms (%u descriptors in flight); device left running\n",
				args->timeout_ms, refaccel_in_flight(rv));
			ret = -ETIMEDOUT;
			break;
		}
		if (fatal_signal_pending(current)) {
			dev_warn(rv_dev(rv), "quiesce interrupted by a fatal signal (%u descriptors in flight); device left running\n",
				 refaccel_in_flight(rv));
			ret = -EINTR;
			break;
		}
		rv_access_end(rv, &a);
		usleep_range(50, 200);
		ret = rv_access_begin(rv, &a);
		if (ret) {
			dev_err(rv_dev(rv), "function unreachable while its quiesce was polled (%d): the request stays\n",
				ret);
			args->stuck = true;
			return ret;
		}
		if (vmig_reset_overtook(mig)) {
			rv_access_end(rv, &a);
			dev_dbg(rv_dev(rv), "function reset during its quiesce: request gone with it\n");
			return -EAGAIN;
		}
	}
	/* Undo the request: the arc failed, the device runs. */
	if (ret)
		rv_update(rv, REFACCEL_REG_MIG_CTRL, set, 0);
	args->in_flight = refaccel_in_flight(rv);
	args->parked = ret ? 0 : rv_read(rv, REFACCEL_REG_MIG_PARKED);
	rv_access_end(rv, &a);
	return ret;
}

/*
 * One read-modify-write of MIG_CTRL inside its own access window, and the
 * MIG_STATUS it led to in *@status (if not NULL).
 */
static int refaccel_mig_ctrl(struct refaccel_vfio_device *rv, u32 clear,
			     u32 set, u32 *status)
{
	struct rv_access a;
	int ret;

	ret = rv_arc_begin(rv, &a);
	if (ret)
		return ret;
	rv_update(rv, REFACCEL_REG_MIG_CTRL, clear, set);
	if (status)
		*status = rv_read(rv, REFACCEL_REG_MIG_STATUS);
	rv_access_end(rv, &a);
	return 0;
}

/* Resume, and check it: a device still quiesced is not where the FSM says. */
static int refaccel_unquiesce(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 status;
	int ret;

	ret = refaccel_mig_ctrl(rv, REFACCEL_MIG_CTRL_QUIESCE |
				REFACCEL_MIG_CTRL_ABORT_PRI |
				REFACCEL_MIG_CTRL_PARK, 0, &status);
	if (ret)
		return ret;
	if (status & REFACCEL_MIG_STATUS_QUIESCED) {
		dev_err(rv_dev(rv), "device did not resume from quiesce (status %#x)\n",
			status);
		return -EIO;
	}
	return 0;
}

static int refaccel_freeze(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 status;
	int ret;

	ret = refaccel_mig_ctrl(rv, 0, REFACCEL_MIG_CTRL_FREEZE, &status);
	if (ret)
		return ret;
	if (!(status & REFACCEL_MIG_STATUS_FROZEN)) {
		dev_err(rv_dev(rv), "device did not freeze (status %#x)\n", status);
		/* withdraw the request: the device stays quiesced */
		refaccel_mig_ctrl(rv, REFACCEL_MIG_CTRL_FREEZE, 0, NULL);
		return -EIO;
	}
	return 0;
}

/* Thaw, and check it: a device still frozen is not where the FSM says. */
static int refaccel_unfreeze(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 status;
	int ret;

	ret = refaccel_mig_ctrl(rv, REFACCEL_MIG_CTRL_FREEZE, 0, &status);
	if (ret)
		return ret;
	if (status & REFACCEL_MIG_STATUS_FROZEN) {
		dev_err(rv_dev(rv), "device did not thaw (status %#x)\n", status);
		return -EIO;
	}
	return 0;
}

/* The name of a device error code from one of the tables below. */
static const char *rv_err_name(const char *const *table, size_t n, u32 err)
{
	return err < n && table[err] ? table[err] : "unknown error";
}

static const char *const refaccel_mig_err_str[] = {
	[REFACCEL_MIG_ERR_NONE]		= "no error",
	[REFACCEL_MIG_ERR_NOT_FROZEN]	= "device not frozen",
	[REFACCEL_MIG_ERR_BAD_MAGIC]	= "bad state magic",
	[REFACCEL_MIG_ERR_BAD_VERSION]	= "unsupported state format version",
	[REFACCEL_MIG_ERR_BAD_COMPAT]	= "state from an incompatible device",
	[REFACCEL_MIG_ERR_BAD_SIZE]	= "bad state size",
	[REFACCEL_MIG_ERR_BAD_CRC]	= "state checksum mismatch",
	[REFACCEL_MIG_ERR_BAD_FIELD]	= "state field out of range",
	[REFACCEL_MIG_ERR_BAD_CMD]	= "unknown migration command",
	[REFACCEL_MIG_ERR_INJECTED]	= "failure injected by a test",
};

/* Inside an access window: the outcome of a MIG_CMD as an errno. */
static int refaccel_cmd_result(struct refaccel_vfio_device *rv, const char *cmd,
			       u32 ok_bit)
{
	u32 status, err;

	status = rv_read(rv, REFACCEL_REG_MIG_STATUS);
	if (!(status & REFACCEL_MIG_STATUS_CMD_ERR) && (status & ok_bit))
		return 0;

	err = rv_read(rv, REFACCEL_REG_MIG_ERR);
	/* A restore fails for every bad stream a user feeds: rate limit. */
	dev_err_ratelimited(rv_dev(rv), "device %s failed: %s (code %u, status %#x)\n",
			    cmd, rv_err_name(refaccel_mig_err_str,
					ARRAY_SIZE(refaccel_mig_err_str), err), err,
			    status);
	switch (err) {
	case REFACCEL_MIG_ERR_BAD_CRC:
		return -EBADMSG;
	case REFACCEL_MIG_ERR_BAD_VERSION:
		return -EPROTONOSUPPORT;
	case REFACCEL_MIG_ERR_BAD_COMPAT:
		return -EPROTO;
	case REFACCEL_MIG_ERR_NOT_FROZEN:
	case REFACCEL_MIG_ERR_INJECTED:
	case REFACCEL_MIG_ERR_NONE:
		return -EIO;
	default:
		return -EINVAL;
	}
}

static int refaccel_state_save(struct vmig_device *mig, void *buf, size_t *len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	u32 size, word, i;
	int ret;

	ret = rv_arc_begin(rv, &a);
	if (ret)
		return ret;
	rv_write(rv, REFACCEL_REG_MIG_CMD, REFACCEL_MIG_CMD_SAVE);
	ret = refaccel_cmd_result(rv, "state save", REFACCEL_MIG_STATUS_SAVED);
	if (ret)
		goto out;
	size = rv_read(rv, REFACCEL_REG_MIG_STATE_SIZE);
	if (!size || size > *len) {
		dev_err(rv_dev(rv), "device state is %u bytes, buffer %zu\n",
			size, *len);
		ret = -EIO;
		goto out;
	}
	rv_write(rv, REFACCEL_REG_MIG_STATE_OFFSET, 0);
	for (i = 0; i < size; i += 4) {
		word = rv_read(rv, REFACCEL_REG_MIG_STATE_DATA);
		memcpy(buf + i, &word, min(4U, size - i));
	}
	*len = size;
out:
	rv_access_end(rv, &a);
	return ret;
}

static int refaccel_state_load(struct vmig_device *mig, const void *buf,
			       size_t len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	u32 word, i;
	int ret;

	ret = rv_arc_begin(rv, &a);
	if (ret)
		return ret;
	rv_write(rv, REFACCEL_REG_MIG_STATE_SIZE, len);
	rv_write(rv, REFACCEL_REG_MIG_STATE_OFFSET, 0);
	for (i = 0; i < len; i += 4) {
		word = 0;
		memcpy(&word, buf + i, min_t(size_t, 4, len - i));
		rv_write(rv, REFACCEL_REG_MIG_STATE_DATA, word);
	}
	rv_write(rv, REFACCEL_REG_MIG_CMD, REFACCEL_MIG_CMD_RESTORE);
	ret = refaccel_cmd_result(rv, "state restore",
				  REFACCEL_MIG_STATUS_RESTORED);
	rv_access_end(rv, &a);
	return ret;
}

static u32 refaccel_dirty_words(struct refaccel_vfio_device *rv)
{
	return DIV_ROUND_UP(rv->sram_size / rv->sram_pgsize, 32);
}

/*
 * Inside an access window: read-and-clear the device's SRAM dirty bitmap,
 * ORing it into @bitmap (NULL: discard).
 */
static void refaccel_dirty_collect(struct refaccel_vfio_device *rv,
				   unsigned long *bitmap)
{
	u32 i, words = refaccel_dirty_words(rv), npages;
	u32 word, bit;

	npages = rv->sram_size / rv->sram_pgsize;
	rv_write(rv, REFACCEL_REG_SRAM_DIRTY_INDEX, 0);
	for (i = 0; i < words; i++) {
		word = rv_read(rv, REFACCEL_REG_SRAM_DIRTY_DATA);
		if (!bitmap)
			continue;
		while (word) {
			bit = __ffs(word);
			word &= word - 1;
			if (i * 32 + bit < npages)
				__set_bit(i * 32 + bit, bitmap);
		}
	}
}

/*
 * The migration block as a device reset leaves it: every MIG_CTRL request
 * withdrawn (the function thaws and runs its parked work), SRAM tracking
 * off and its bitmap dropped, the state window discarded.  Checked: a
 * function still quiesced or frozen afterwards is not where the FSM is.
 */
static int refaccel_idle(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	const u32 busy = REFACCEL_MIG_STATUS_QUIESCED | REFACCEL_MIG_STATUS_FROZEN;
	struct rv_access a;
	u32 status;
	int ret;

	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	rv_write(rv, REFACCEL_REG_MIG_CTRL, 0);
	rv_write(rv, REFACCEL_REG_SRAM_DIRTY_CTRL, 0);
	if (rv->sram_size)
		refaccel_dirty_collect(rv, NULL);
	rv_write(rv, REFACCEL_REG_MIG_CMD, REFACCEL_MIG_CMD_DISCARD);
	status = rv_read(rv, REFACCEL_REG_MIG_STATUS);
	rv_access_end(rv, &a);
	if (status & busy) {
		dev_err(rv_dev(rv), "migration block does not return to idle (status %#x)\n",
			status);
		return -EIO;
	}
	return 0;
}

static int refaccel_mem_track_start(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	int ret;

	ret = rv_arc_begin(rv, &a);
	if (ret)
		return ret;
	/* Enable first, then drop whatever was logged before: clean start. */
	rv_write(rv, REFACCEL_REG_SRAM_DIRTY_CTRL, REFACCEL_SRAM_DIRTY_ENABLE);
	refaccel_dirty_collect(rv, NULL);
	rv_access_end(rv, &a);
	return 0;
}

/* One register write inside its own access window. */
static int rv_write_once(struct refaccel_vfio_device *rv, u32 reg, u32 val)
{
	struct rv_access a;
	int ret;

	ret = rv_arc_begin(rv, &a);
	if (ret)
		return ret;
	rv_write(rv, reg, val);
	rv_access_end(rv, &a);
	return 0;
}

static int refaccel_mem_track_stop(struct vmig_device *mig)
{
	return rv_write_once(to_rv(mig), REFACCEL_REG_SRAM_DIRTY_CTRL, 0);
}

static int refaccel_mem_track_sync(struct vmig_device *mig,
				   unsigned long *bitmap)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	int ret;

	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	refaccel_dirty_collect(rv, bitmap);
	rv_access_end(rv, &a);
	return 0;
}

/* Function resets by the guest's driver: each one clears the SRAM. */
static int refaccel_init_epoch(struct vmig_device *mig, u32 *epoch)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	int ret;

	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	*epoch = rv_read(rv, REFACCEL_REG_MIG_FN_RESETS);
	rv_access_end(rv, &a);
	return 0;
}

static int refaccel_mem_read(struct vmig_device *mig, u64 off, void *buf,
			     size_t len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	int ret;

	if (off > rv->sram_size || len > rv->sram_size - off)
		return -EINVAL;
	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	memcpy_fromio(buf, rv->sram + off, len);
	rv_access_end(rv, &a);
	return 0;
}

static int refaccel_mem_write(struct vmig_device *mig, u64 off,
			      const void *buf, size_t len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	int ret;

	if (off > rv->sram_size || len > rv->sram_size - off)
		return -EINVAL;
	/*
	 * A restore writes all of SRAM (up to 64 MiB) under the state mutex:
	 * in chunks, each in its own access window, so that memory_lock is
	 * released and the CPU yielded between them.
	 */
	while (len) {
		size_t n = min_t(size_t, len, SZ_1M);

		ret = rv_arc_begin(rv, &a);
		if (ret)
			return ret;
		memcpy_toio(rv->sram + off, buf, n);
		rv_access_end(rv, &a);
		off += n;
		buf += n;
		len -= n;
		cond_resched();
	}
	return 0;
}

/* ---- DMA dirty tracking of host IOVAs ---- */

static const char *const refaccel_dt_err_str[] = {
	[REFACCEL_DT_ERR_NONE]		= "no error",
	[REFACCEL_DT_ERR_BAD_PGSHIFT]	= "page shift out of range",
	[REFACCEL_DT_ERR_BAD_NR]	= "bad number of ranges",
	[REFACCEL_DT_ERR_BAD_RANGE]	= "empty, wrapping or overlapping range",
	[REFACCEL_DT_ERR_TOO_LARGE]	= "ranges span too much",
};

static int refaccel_dma_track_start(struct vmig_device *mig,
				    const struct vmig_dma_range *ranges,
				    u32 nr, unsigned int pgshift)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	struct rv_access a;
	u32 i, err = 0;
	bool on;
	int ret;

	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	rv_write(rv, REFACCEL_REG_DT_CTRL, 0);
	rv_write(rv, REFACCEL_REG_DT_PGSHIFT, pgshift);
	rv_write(rv, REFACCEL_REG_DT_NR_RANGES, nr);
	for (i = 0; i < nr; i++) {
		rv_write(rv, REFACCEL_REG_DT_RANGE_SEL, i);
		rv_write64(rv, REFACCEL_REG_DT_RANGE_BASE_LO, ranges[i].start);
		rv_write64(rv, REFACCEL_REG_DT_RANGE_LEN_LO,
			   ranges[i].last - ranges[i].start + 1);
	}
	rv_write(rv, REFACCEL_REG_DT_CTRL, REFACCEL_DT_CTRL_ENABLE);
	on = rv_read(rv, REFACCEL_REG_DT_STATUS) & REFACCEL_DT_STATUS_ENABLED;
	if (!on)
		err = rv_read(rv, REFACCEL_REG_DT_ERR);
	rv_access_end(rv, &a);

	if (on) {
		rv->dt_pgshift = pgshift;
		return 0;
	}
	dev_err(rv_dev(rv), "device refused DMA dirty tracking of %u ranges: %s (DT_ERR %u)\n",
		nr, rv_err_name(refaccel_dt_err_str,
				    ARRAY_SIZE(refaccel_dt_err_str), err), err);
	return -EIO;
}

static int refaccel_dma_track_stop(struct vmig_device *mig)
{
	return rv_write_once(to_rv(mig), REFACCEL_REG_DT_CTRL, 0);
}

/* Runs one 32-page word can hold (alternating bits), and words per batch. */
#define RV_DT_WORD_RUNS		16
#define RV_DT_BATCH_WORDS	1024

/* Append the runs of set bits of @bits (bit i: @base + i pages). */
static unsigned int rv_dt_add_runs(struct vmig_dma_run *runs, unsigned int n,
				   u32 bits, u64 base, unsigned int shift)
{
	while (bits) {
		unsigned int first = __ffs(bits);
		u32 rest = bits >> first;
		unsigned int len = rest == U32_MAX ? 32 : ffz(rest);
		u64 iova = base + ((u64)first << shift);

		if (n && runs[n - 1].iova + runs[n - 1].len == iova)
			runs[n - 1].len += (u64)len << shift;
		else
			runs[n++] = (struct vmig_dma_run){ iova, (u64)len << shift };
		if (first + len >= 32)
			break;
		bits &= ~0u << (first + len);
	}
	return n;
}

/*
 * One batch of a report: walk the window with the device's "next dirty
 * page" query, so that clean stretches cost nothing.  Per word of up to 32
 * dirty pages: two reads for NEXT, a cursor move only when NEXT jumped,
 * one data read.  A batch ends when @runs may not hold another word, after
 * RV_DT_BATCH_WORDS words (memory_lock is held meanwhile), or at the end.
 */
static int refaccel_dma_track_read(struct vmig_device *mig, u64 *iova,
				   u64 last, struct vmig_dma_run *runs,
				   unsigned int max, bool *done)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	unsigned int shift = rv->dt_pgshift;
	u64 step = (u64)REFACCEL_DT_WORD_PAGES << shift;
	unsigned int n = 0, words = 0;
	u64 cur = *iova, next;
	struct rv_access a;
	int ret;

	ret = rv_access_begin(rv, &a);
	if (ret)
		return ret;
	if (rv_read(rv, REFACCEL_REG_DT_STATUS) & REFACCEL_DT_STATUS_OVERFLOW) {
		dev_err(rv_dev(rv), "DMA dirty tracker overflowed: dirty pages were lost, DMA logging must be restarted\n");
		ret = -EIO;
		goto out;
	}
	rv_write64(rv, REFACCEL_REG_DT_LIMIT_LO, last);
	rv_write64(rv, REFACCEL_REG_DT_QUERY_LO, cur);
	*done = false;
	while (n + RV_DT_WORD_RUNS <= max && words++ < RV_DT_BATCH_WORDS) {
		next = rv_read64(rv, REFACCEL_REG_DT_NEXT_LO);
		if (next == REFACCEL_DT_NEXT_NONE) {
			*done = true;
			break;
		}
		if (next < cur || next > last ||
		    !IS_ALIGNED(next, 1ull << shift)) {
			dev_err(rv_dev(rv), "DMA dirty tracker answered %#llx for the window [%#llx, %#llx]\n",
				next, cur, last);
			ret = -EIO;
			goto out;
		}
		if (next != cur) {
			rv_write64(rv, REFACCEL_REG_DT_QUERY_LO, next);
			cur = next;
		}
		n = rv_dt_add_runs(runs, n,
				   rv_read(rv, REFACCEL_REG_DT_QUERY_DATA),
				   cur, shift);
		if (last - cur < step) {
			*done = true;
			break;
		}
		cur += step;
	}
	*iova = cur;
	ret = n;
out:
	rv_access_end(rv, &a);
	return ret;
}

const struct vmig_dev_ops refaccel_vmig_ops = {
	.get_info	= refaccel_get_info,
	.idle		= refaccel_idle,
	.quiesce	= refaccel_quiesce,
	.unquiesce	= refaccel_unquiesce,
	.freeze		= refaccel_freeze,
	.unfreeze	= refaccel_unfreeze,
	.state_save	= refaccel_state_save,
	.state_load	= refaccel_state_load,
	.mem_track_start = refaccel_mem_track_start,
	.mem_track_stop	= refaccel_mem_track_stop,
	.mem_track_sync	= refaccel_mem_track_sync,
	.init_epoch	= refaccel_init_epoch,
	.mem_read	= refaccel_mem_read,
	.mem_write	= refaccel_mem_write,
	.dma_track_start = refaccel_dma_track_start,
	.dma_track_stop	= refaccel_dma_track_stop,
	.dma_track_read	= refaccel_dma_track_read,
};
