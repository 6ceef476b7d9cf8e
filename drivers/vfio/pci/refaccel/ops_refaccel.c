// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration operations of the reference accelerator: each function is one
 * hardware action on the migration block of BAR0 or on the SRAM in BAR2.
 * FSM policy lives in mig.c; nothing here knows a migration state.
 *
 * All MMIO goes through vfio_pci_core's checked accessors (or takes
 * memory_lock itself), so a user who disabled memory decode or put the
 * function in D3 gets -EIO instead of a machine check.
 */

#include <linux/delay.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/pci.h>

#include "refaccel.h"

static struct refaccel_vfio_device *to_rv(struct vmig_device *mig)
{
	return container_of(mig, struct refaccel_vfio_device, mig);
}

static struct device *rv_dev(struct refaccel_vfio_device *rv)
{
	return &rv->core_device.pdev->dev;
}

static int rv_read(struct refaccel_vfio_device *rv, u32 reg, u32 *val)
{
	int ret;

	ret = vfio_pci_core_ioread32(&rv->core_device, true, val, rv->regs + reg);
	if (ret)
		dev_err_ratelimited(rv_dev(rv),
				    "BAR0 read at %#x failed (%d): memory decode off or function in D3\n",
				    reg, ret);
	return ret;
}

static int rv_write(struct refaccel_vfio_device *rv, u32 reg, u32 val)
{
	int ret;

	ret = vfio_pci_core_iowrite32(&rv->core_device, true, val, rv->regs + reg);
	if (ret)
		dev_err_ratelimited(rv_dev(rv),
				    "BAR0 write at %#x failed (%d): memory decode off or function in D3\n",
				    reg, ret);
	return ret;
}

static int rv_update(struct refaccel_vfio_device *rv, u32 reg, u32 clear,
		     u32 set)
{
	u32 val;
	int ret;

	ret = rv_read(rv, reg, &val);
	if (ret)
		return ret;
	return rv_write(rv, reg, (val & ~clear) | set);
}

/* Bulk SRAM access with the same guarantees as the checked accessors. */
static int rv_sram_lock(struct refaccel_vfio_device *rv)
{
	struct vfio_pci_core_device *core = &rv->core_device;
	u16 cmd;

	down_read(&core->memory_lock);
	cmd = le16_to_cpu(*(__le16 *)&core->vconfig[PCI_COMMAND]);
	/* pci_power_t is ordered (D0 < ... < D3hot) but __bitwise. */
	if ((__force int)core->pdev->current_state >= (__force int)PCI_D3hot ||
	    !(cmd & PCI_COMMAND_MEMORY)) {
		up_read(&core->memory_lock);
		dev_err_ratelimited(rv_dev(rv),
				    "SRAM access refused: memory decode off or function in D3\n");
		return -EIO;
	}
	return 0;
}

static void rv_sram_unlock(struct refaccel_vfio_device *rv)
{
	up_read(&rv->core_device.memory_lock);
}

static int refaccel_get_info(struct vmig_device *mig, struct vmig_dev_info *info)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 id, caps, sram, pgsize, max, compat;
	int ret;

	ret = vfio_pci_core_setup_barmap(&rv->core_device, REFACCEL_BAR_REGS);
	if (!ret)
		ret = vfio_pci_core_setup_barmap(&rv->core_device,
						 REFACCEL_BAR_SRAM);
	if (ret) {
		dev_err(rv_dev(rv), "cannot map BARs for migration: %d\n", ret);
		return ret;
	}
	rv->regs = rv->core_device.barmap[REFACCEL_BAR_REGS];
	rv->sram = rv->core_device.barmap[REFACCEL_BAR_SRAM];

	ret = rv_read(rv, REFACCEL_REG_ID, &id) ?:
	      rv_read(rv, REFACCEL_REG_CAPS, &caps) ?:
	      rv_read(rv, REFACCEL_REG_SRAM_SIZE, &sram);
	if (ret)
		return ret;
	if (id != REFACCEL_ID_MAGIC) {
		dev_err(rv_dev(rv), "ID register reads %#x, expected %#x\n",
			id, REFACCEL_ID_MAGIC);
		return -ENODEV;
	}
	if (!(caps & REFACCEL_CAP_MIGRATION) || !(caps & REFACCEL_CAP_SRAM_DIRTY)) {
		dev_info(rv_dev(rv), "device has no migration block (caps %#x)\n",
			 caps);
		return -EOPNOTSUPP;
	}
	ret = rv_read(rv, REFACCEL_REG_SRAM_DIRTY_PGSIZE, &pgsize) ?:
	      rv_read(rv, REFACCEL_REG_MIG_STATE_MAX, &max) ?:
	      rv_read(rv, REFACCEL_REG_MIG_COMPAT_ID, &compat);
	if (ret)
		return ret;
	if (sram != pci_resource_len(rv->core_device.pdev, REFACCEL_BAR_SRAM)) {
		dev_err(rv_dev(rv), "SRAM_SIZE register (%u) disagrees with BAR%d\n",
			sram, REFACCEL_BAR_SRAM);
		return -ENODEV;
	}

	info->compat_id = compat;
	info->state_max = max;
	info->mem_size = sram;
	info->mem_page_size = pgsize;
	rv->sram_size = sram;
	rv->sram_pgsize = pgsize;
	return 0;
}

static u32 refaccel_in_flight(struct refaccel_vfio_device *rv)
{
	u32 fetched = 0, completed = 0;

	if (rv_read(rv, REFACCEL_REG_CNT_FETCHED, &fetched) ||
	    rv_read(rv, REFACCEL_REG_CNT_COMPLETED, &completed))
		return 0;
	return fetched - completed;
}

static int refaccel_quiesce(struct vmig_device *mig,
			    const struct vmig_quiesce_args *args)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	unsigned long deadline = jiffies + msecs_to_jiffies(args->timeout_ms);
	u32 set = REFACCEL_MIG_CTRL_QUIESCE;
	u32 status;
	int ret;

	if (args->abort_pri)
		set |= REFACCEL_MIG_CTRL_ABORT_PRI;
	ret = rv_update(rv, REFACCEL_REG_MIG_CTRL, 0, set);
	if (ret)
		return ret;

	for (;;) {
		ret = rv_read(rv, REFACCEL_REG_MIG_STATUS, &status);
		if (ret)
			break;
		if (status & REFACCEL_MIG_STATUS_QUIESCED)
			return 0;
		if (time_after(jiffies, deadline)) {
			ret = -ETIMEDOUT;
			dev_err(rv_dev(rv),
				"quiesce did not complete within %u ms (%u descriptors in flight); device left running\n",
				args->timeout_ms, refaccel_in_flight(rv));
			break;
		}
		usleep_range(50, 200);
	}
	/* Undo the request: the caller's arc failed, the device must run. */
	rv_update(rv, REFACCEL_REG_MIG_CTRL, set, 0);
	return ret;
}

static int refaccel_unquiesce(struct vmig_device *mig)
{
	return rv_update(to_rv(mig), REFACCEL_REG_MIG_CTRL,
			 REFACCEL_MIG_CTRL_QUIESCE | REFACCEL_MIG_CTRL_ABORT_PRI, 0);
}

static int refaccel_freeze(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 status;
	int ret;

	ret = rv_update(rv, REFACCEL_REG_MIG_CTRL, 0, REFACCEL_MIG_CTRL_FREEZE) ?:
	      rv_read(rv, REFACCEL_REG_MIG_STATUS, &status);
	if (ret)
		return ret;
	if (!(status & REFACCEL_MIG_STATUS_FROZEN)) {
		dev_err(rv_dev(rv), "device did not freeze (status %#x)\n", status);
		rv_update(rv, REFACCEL_REG_MIG_CTRL, REFACCEL_MIG_CTRL_FREEZE, 0);
		return -EIO;
	}
	return 0;
}

static int refaccel_unfreeze(struct vmig_device *mig)
{
	return rv_update(to_rv(mig), REFACCEL_REG_MIG_CTRL,
			 REFACCEL_MIG_CTRL_FREEZE, 0);
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
};

/* Check the outcome of a MIG_CMD; map device errors to errnos. */
static int refaccel_cmd_result(struct refaccel_vfio_device *rv, const char *cmd,
			       u32 ok_bit)
{
	u32 status, err;
	int ret;

	ret = rv_read(rv, REFACCEL_REG_MIG_STATUS, &status);
	if (ret)
		return ret;
	if (!(status & REFACCEL_MIG_STATUS_CMD_ERR) && (status & ok_bit))
		return 0;

	ret = rv_read(rv, REFACCEL_REG_MIG_ERR, &err);
	if (ret)
		return ret;
	/* A restore fails for every bad stream a user feeds: rate limit. */
	dev_err_ratelimited(rv_dev(rv), "device %s failed: %s (code %u, status %#x)\n",
			    cmd, err < ARRAY_SIZE(refaccel_mig_err_str) ?
			    refaccel_mig_err_str[err] : "unknown", err, status);
	switch (err) {
	case REFACCEL_MIG_ERR_BAD_CRC:
		return -EBADMSG;
	case REFACCEL_MIG_ERR_BAD_VERSION:
		return -EPROTONOSUPPORT;
	case REFACCEL_MIG_ERR_BAD_COMPAT:
		return -EPROTO;
	case REFACCEL_MIG_ERR_NOT_FROZEN:
	case REFACCEL_MIG_ERR_NONE:
		return -EIO;
	default:
		return -EINVAL;
	}
}

static int refaccel_state_save(struct vmig_device *mig, void *buf, size_t *len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 size, word, i;
	int ret;

	ret = rv_write(rv, REFACCEL_REG_MIG_CMD, REFACCEL_MIG_CMD_SAVE) ?:
	      refaccel_cmd_result(rv, "state save", REFACCEL_MIG_STATUS_SAVED) ?:
	      rv_read(rv, REFACCEL_REG_MIG_STATE_SIZE, &size);
	if (ret)
		return ret;
	if (!size || size > *len) {
		dev_err(rv_dev(rv), "device state is %u bytes, buffer %zu\n",
			size, *len);
		return -EIO;
	}
	ret = rv_write(rv, REFACCEL_REG_MIG_STATE_OFFSET, 0);
	for (i = 0; !ret && i < size; i += 4) {
		ret = rv_read(rv, REFACCEL_REG_MIG_STATE_DATA, &word);
		memcpy(buf + i, &word, min(4U, size - i));
	}
	if (ret)
		return ret;
	*len = size;
	return 0;
}

static int refaccel_state_load(struct vmig_device *mig, const void *buf,
			       size_t len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	u32 word, i;
	int ret;

	ret = rv_write(rv, REFACCEL_REG_MIG_STATE_SIZE, len) ?:
	      rv_write(rv, REFACCEL_REG_MIG_STATE_OFFSET, 0);
	for (i = 0; !ret && i < len; i += 4) {
		word = 0;
		memcpy(&word, buf + i, min_t(size_t, 4, len - i));
		ret = rv_write(rv, REFACCEL_REG_MIG_STATE_DATA, word);
	}
	if (ret)
		return ret;
	return rv_write(rv, REFACCEL_REG_MIG_CMD, REFACCEL_MIG_CMD_RESTORE) ?:
	       refaccel_cmd_result(rv, "state restore",
				   REFACCEL_MIG_STATUS_RESTORED);
}

static u32 refaccel_dirty_words(struct refaccel_vfio_device *rv)
{
	return DIV_ROUND_UP(rv->sram_size / rv->sram_pgsize, 32);
}

/* Read-and-clear the device's SRAM dirty bitmap, ORing it into @bitmap. */
static int refaccel_dirty_collect(struct refaccel_vfio_device *rv,
				  unsigned long *bitmap)
{
	u32 i, words = refaccel_dirty_words(rv), npages;
	u32 word, bit;
	int ret;

	npages = rv->sram_size / rv->sram_pgsize;
	ret = rv_write(rv, REFACCEL_REG_SRAM_DIRTY_INDEX, 0);
	for (i = 0; !ret && i < words; i++) {
		ret = rv_read(rv, REFACCEL_REG_SRAM_DIRTY_DATA, &word);
		if (ret || !bitmap)
			continue;
		while (word) {
			bit = __ffs(word);
			word &= word - 1;
			if (i * 32 + bit < npages)
				__set_bit(i * 32 + bit, bitmap);
		}
	}
	return ret;
}

static int refaccel_mem_track_start(struct vmig_device *mig)
{
	struct refaccel_vfio_device *rv = to_rv(mig);

	/* Enable first, then drop whatever was logged before: clean start. */
	return rv_write(rv, REFACCEL_REG_SRAM_DIRTY_CTRL,
			REFACCEL_SRAM_DIRTY_ENABLE) ?:
	       refaccel_dirty_collect(rv, NULL);
}

static int refaccel_mem_track_stop(struct vmig_device *mig)
{
	return rv_write(to_rv(mig), REFACCEL_REG_SRAM_DIRTY_CTRL, 0);
}

static int refaccel_mem_track_sync(struct vmig_device *mig,
				   unsigned long *bitmap)
{
	return refaccel_dirty_collect(to_rv(mig), bitmap);
}

static int refaccel_mem_read(struct vmig_device *mig, u64 off, void *buf,
			     size_t len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	int ret;

	if (off > rv->sram_size || len > rv->sram_size - off)
		return -EINVAL;
	ret = rv_sram_lock(rv);
	if (ret)
		return ret;
	memcpy_fromio(buf, rv->sram + off, len);
	rv_sram_unlock(rv);
	return 0;
}

static int refaccel_mem_write(struct vmig_device *mig, u64 off,
			      const void *buf, size_t len)
{
	struct refaccel_vfio_device *rv = to_rv(mig);
	int ret;

	if (off > rv->sram_size || len > rv->sram_size - off)
		return -EINVAL;
	ret = rv_sram_lock(rv);
	if (ret)
		return ret;
	memcpy_toio(rv->sram + off, buf, len);
	rv_sram_unlock(rv);
	return 0;
}

const struct vmig_dev_ops refaccel_vmig_ops = {
	.get_info	= refaccel_get_info,
	.quiesce	= refaccel_quiesce,
	.unquiesce	= refaccel_unquiesce,
	.freeze		= refaccel_freeze,
	.unfreeze	= refaccel_unfreeze,
	.state_save	= refaccel_state_save,
	.state_load	= refaccel_state_load,
	.mem_track_start = refaccel_mem_track_start,
	.mem_track_stop	= refaccel_mem_track_stop,
	.mem_track_sync	= refaccel_mem_track_sync,
	.mem_read	= refaccel_mem_read,
	.mem_write	= refaccel_mem_write,
};
