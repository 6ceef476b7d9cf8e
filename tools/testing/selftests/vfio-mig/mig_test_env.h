/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared by refaccel_mig_fsm_test.c and refaccel_mig_stream_test.c: one
 * migration-capable refaccel function opened through VFIO with a ring
 * ready for work, and small data_fd helpers.  Header only (static inline),
 * so the Makefile's library list stays as it is.  Functions return 0 or a
 * negative errno (env_open(): 1 when the test must SKIP, reason in @why).
 */
#ifndef MIG_TEST_ENV_H
#define MIG_TEST_ENV_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "mig_util.h"
#include "refaccel_lib.h"

#define ENV_PAGE	4096u
#define ENV_BUF		(64u << 10)

struct mig_env {
	struct ra_dev dev;
	struct ra_ring ring;
	struct vu_dma src, dst;
	struct vu_iommu *iommu;
	struct mig_limits lim;
	uint32_t caps;
	int tmo;
	uint64_t tag;
	unsigned int pm_bounces;	/* see env_power() */
	bool opened, ring_ok;
};

static inline bool env_testctl(struct mig_env *e)
{
	return e->caps & REFACCEL_CAP_TESTCTL;
}

/*
 * Functions for migration tests: those bound to refaccel-vfio-pci first,
 * then the others (stock vfio-pci: env_open() then finds the migration
 * feature unsupported and the test SKIPs with that reason).  On none, @why
 * says why (for SKIP).
 */
static inline int env_find(struct ra_found *f, char (*bdf)[VU_BDF_LEN], int max,
			   char *why, size_t len)
{
	int n = 0;

	if (geteuid()) {
		snprintf(why, len, "needs root (VFIO device access)");
		return 0;
	}
	if (!ra_discover(f)) {
		snprintf(why, len, "%s", f->why);
		return 0;
	}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < f->n && n < max; i++)
			if (ra_driver_is_variant(f->driver[i]) == !pass)
				strcpy(bdf[n++], f->bdf[i]);
	return n;
}

/* A fresh ring after a reset: program it and enable the device. */
static inline int env_ring_restart(struct mig_env *e)
{
	ra_ring_restart(&e->ring);
	ra_wr(&e->dev, REFACCEL_REG_INT_MASK, REFACCEL_INT_ALL);
	return ra_enable(&e->dev, e->tmo);
}

/* VFIO_DEVICE_RESET; afterwards the migration FSM must be RUNNING. */
static inline int env_reset_fsm(struct mig_env *e)
{
	uint32_t st;
	int ret;

	ret = ra_reset(&e->dev);
	if (ret)
		return ret;
	ret = mig_get_state(&e->dev.vdev, &st);
	if (ret)
		return ret;
	if (st != VFIO_DEVICE_STATE_RUNNING) {
		fprintf(stderr, "# %s: state %s after VFIO_DEVICE_RESET\n",
			e->dev.vdev.bdf, mig_state_name(st));
		return -EIO;
	}
	return 0;
}

/*
 * Open @bdf into @iommu, reset it, check that migration is usable, set up a
 * 64/64 ring and two DMA buffers.  Returns 0, a negative errno, or 1 with
 * @why filled when the test must SKIP.
 */
static inline int env_open(struct mig_env *e, struct vu_iommu *iommu,
			   const char *bdf, char *why, size_t len)
{
	uint64_t flags = 0, size;
	int ret;

	memset(e, 0, sizeof(*e));
	e->iommu = iommu;
	e->tmo = ra_timeout_ms();
	ret = ra_open(iommu, bdf, &e->dev);
	if (ret)
		return ret;
	e->opened = true;
	ret = mig_get_flags(&e->dev.vdev, &flags);
	if (ret == -ENOTTY) {
		snprintf(why, len, "%s bound to %s: VFIO_DEVICE_FEATURE_MIGRATION unsupported (ENOTTY)",
			 bdf, e->dev.driver);
		return 1;
	}
	if (ret)
		return ret;
	ret = env_reset_fsm(e);
	if (ret)
		return ret;
	e->caps = ra_rd(&e->dev, REFACCEL_REG_CAPS);
	ret = mig_data_size(&e->dev.vdev, &size);
	if (ret == -EOPNOTSUPP) {
		snprintf(why, len, "%s: device has no migration block (CAPS 0x%x): the driver refuses migration (EOPNOTSUPP)",
			 bdf, e->caps);
		return 1;
	}
	if (ret)
		return ret;
	e->lim.compat_id = ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_COMPAT_ID));
	e->lim.mem_size = ra_rd(&e->dev, REFACCEL_REG_SRAM_SIZE);
	e->lim.page_size = ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_SRAM_DIRTY_PGSIZE));
	e->lim.state_max = ra_rd(&e->dev, REFACCEL_MIG_MIRROR(REFACCEL_REG_MIG_STATE_MAX));

	ret = ra_ring_setup(&e->dev, iommu, &e->ring, 64, 64);
	if (ret)
		return ret;
	e->ring_ok = true;
	ra_wr(&e->dev, REFACCEL_REG_INT_MASK, REFACCEL_INT_ALL);
	ret = ra_enable(&e->dev, e->tmo);
	if (ret)
		return ret;
	ret = vu_dma_alloc(iommu, ENV_BUF, VU_DMA_RW, &e->src);
	if (!ret)
		ret = vu_dma_alloc(iommu, ENV_BUF, VU_DMA_RW, &e->dst);
	return ret;
}

static inline void env_close(struct mig_env *e)
{
	if (!e->opened)
		return;
	/* Ends every session and stops all DMA before the memory goes. */
	if (ra_reset(&e->dev))
		ra_wr(&e->dev, REFACCEL_REG_CTRL, 0);
	vu_dma_free(e->iommu, &e->src);
	vu_dma_free(e->iommu, &e->dst);
	if (e->ring_ok)
		ra_ring_free(&e->ring);
	ra_close(&e->dev);
	e->opened = false;
}

static inline uint64_t env_tag(struct mig_env *e)
{
	return 0x6d73000000000000ull | ++e->tag;
}

/*
 * The device does work: a NOP and a COPY complete with the right result.
 * Returns 0 or a negative errno / -EIO with the reason logged.
 */
/*
 * The set-up of a test on one function: the first one env_find() offers,
 * an IOMMU of the environment's backend (VFIO_MIG_BACKEND), the device
 * opened (env_open()).  0; 1 when the test must SKIP, @why saying why; or
 * a negative errno, @why saying what failed.  *@iommu_ok: @iommu needs
 * vu_iommu_cleanup().
 */
static inline int env_setup_one(struct ra_found *found, struct vu_iommu *iommu,
				bool *iommu_ok, struct mig_env *e,
				char *why, size_t len)
{
	enum vu_backend be = vu_backend_from_env();
	char bdf[1][VU_BDF_LEN];
	int ret;

	*iommu_ok = false;
	if (!env_find(found, bdf, 1, why, len))
		return 1;
	ret = vu_iommu_init(iommu, be);
	if (ret == -ENOENT) {
		snprintf(why, len, "kernel has no VFIO %s backend",
			 vu_backend_name(be));
		return 1;
	}
	if (ret) {
		snprintf(why, len, "IOMMU (%s): %s", vu_backend_name(be),
			 strerror(-ret));
		return ret;
	}
	*iommu_ok = true;
	ret = env_open(e, iommu, bdf[0], why, len);
	if (ret < 0)
		snprintf(why, len, "open %s: %s", bdf[0], strerror(-ret));
	return ret;
}

/* What a test on one function holds: see ENV_ONE_SETUP(). */
struct env_one {
	struct ra_found found;
	struct vu_iommu iommu;
	struct mig_env e;
	bool iommu_ok;
};

/*
 * In a FIXTURE_SETUP: env_setup_one() into @one, or SKIP / fail the test
 * saying why.  env_one_teardown() in the FIXTURE_TEARDOWN undoes it.
 */
#define ENV_ONE_SETUP(one) do {						\
	char why_[700];							\
	int ret_ = env_setup_one(&(one)->found, &(one)->iommu,		\
				 &(one)->iommu_ok, &(one)->e, why_,	\
				 sizeof(why_));				\
	if (ret_ == 1)							\
		SKIP(return, "%s", why_);				\
	ASSERT_EQ(0, ret_) TH_LOG("%s", why_);				\
} while (0)

static inline void env_one_teardown(struct env_one *one)
{
	env_close(&one->e);
	if (one->iommu_ok)
		vu_iommu_cleanup(&one->iommu);
}

static inline int env_work(struct mig_env *e)
{
	struct refaccel_cpl cpl;
	uint64_t rng = e->tag * 7919 + 1;
	struct refaccel_desc d;
	int ret;

	d = ra_desc_nop(env_tag(e));
	ret = ra_run(&e->ring, &d, &cpl, e->tmo);
	if (ret || cpl.tag != d.tag || cpl.status != REFACCEL_CPL_OK) {
		fprintf(stderr, "# NOP: ret %d tag %llx status %u\n", ret,
			(unsigned long long)cpl.tag, cpl.status);
		return ret ? ret : -EIO;
	}
	ra_rand_fill(e->src.va, ENV_PAGE, &rng);
	memset(e->dst.va, 0, ENV_PAGE);
	d = ra_desc_copy(env_tag(e), e->src.iova, e->dst.iova, ENV_PAGE);
	ret = ra_run(&e->ring, &d, &cpl, e->tmo);
	if (ret || cpl.tag != d.tag || cpl.status != REFACCEL_CPL_OK ||
	    memcmp(e->src.va, e->dst.va, ENV_PAGE)) {
		fprintf(stderr, "# COPY: ret %d status %u data %s\n", ret,
			cpl.status,
			memcmp(e->src.va, e->dst.va, ENV_PAGE) ? "differs" : "ok");
		return ret ? ret : -EIO;
	}
	return 0;
}

/* VFIO_DEVICE_RESET, then a fresh ring; the FSM must be RUNNING. */
static inline int env_reset(struct mig_env *e)
{
	int ret = env_reset_fsm(e);

	return ret ? ret : env_ring_restart(e);
}

/* poll() revents without waiting (requests IN and OUT). */
static inline short fd_revents(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

/* read() as -errno or the count */
static inline ssize_t fd_read(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : n;
}

static inline ssize_t fd_write(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	return n < 0 ? -errno : n;
}

static inline int fd_precopy_info(int fd, uint64_t *init, uint64_t *dirty)
{
	uint64_t a, b;

	return mig_precopy_info(fd, init ? init : &a, dirty ? dirty : &b);
}

/* The stream header this device expects (for writes into RESUMING). */
static inline void env_stream_hdr(struct mig_env *e, struct vmig_stream_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = VMIG_STREAM_MAGIC;
	h->version = VMIG_STREAM_VERSION;
	h->hdr_len = sizeof(*h);
	h->compat_id = e->lim.compat_id;
	h->mem_size = e->lim.mem_size;
	h->page_size = e->lim.page_size;
	mig_hdr_fix_crc((uint8_t *)h);
}

/* /sys/module/refaccel_vfio_pci/parameters/@name, or @def */
static inline long env_module_param(const char *name, long def)
{
	char path[256], buf[64];
	FILE *f;
	long v = def;

	snprintf(path, sizeof(path),
		 "/sys/module/refaccel_vfio_pci/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return def;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 0);
	fclose(f);
	return v;
}

/* PCI_COMMAND memory decode on/off (BAR access faults while off). */
static inline int env_mem_decode(struct mig_env *e, bool on)
{
	uint16_t cmd;
	int ret;

	ret = vu_config_read(&e->dev.vdev, 4, &cmd, sizeof(cmd));
	if (ret)
		return ret;
	if (on)
		cmd |= 0x2;
	else
		cmd &= ~0x2;
	return vu_config_write(&e->dev.vdev, 4, &cmd, sizeof(cmd));
}

/* PCI_COMMAND as the user (vfio's virtual config space) sees it. */
static inline int env_command(struct mig_env *e, uint16_t *cmd)
{
	return vu_config_read(&e->dev.vdev, 4, cmd, sizeof(*cmd));
}

/* Offset of the PM capability's PMCSR, or a negative errno. */
static inline int env_pmcsr(struct mig_env *e)
{
	uint8_t pos = 0, id = 0;
	int ret, n;

	ret = vu_config_read(&e->dev.vdev, 0x34, &pos, 1);
	for (n = 0; !ret && pos && n < 48; n++) {
		ret = vu_config_read(&e->dev.vdev, pos, &id, 1);
		if (!ret && id == 0x01)		/* PCI_CAP_ID_PM */
			return pos + 4;		/* PCI_PM_CTRL */
		if (!ret)
			ret = vu_config_read(&e->dev.vdev, pos + 1, &pos, 1);
	}
	return ret ? ret : -ENOENT;
}

/*
 * Move the function to D0 (0) or D3hot (3) through its PMCSR, as a guest,
 * and read the state back from the function (vfio-pci does not virtualize
 * it).  With @bounce_ok, a read-back of D0 right after D3hot counts in
 * @e->pm_bounces instead of failing: a migration step running at the same
 * time wakes a function in D3hot for each look at its registers (the
 * access window of ops_refaccel.c; a known side effect, see
 * Documentation/driver.rst), so the guest can see D0 there.
 */
static inline int env_power_set(struct mig_env *e, unsigned int d,
				bool bounce_ok)
{
	int off = env_pmcsr(e), ret;
	uint16_t pmcsr;

	if (off < 0)
		return off;
	ret = vu_config_read(&e->dev.vdev, off, &pmcsr, sizeof(pmcsr));
	if (ret)
		return ret;
	pmcsr = (pmcsr & ~3u) | (d & 3u);
	ret = vu_config_write(&e->dev.vdev, off, &pmcsr, sizeof(pmcsr));
	if (ret)
		return ret;
	ret = vu_config_read(&e->dev.vdev, off, &pmcsr, sizeof(pmcsr));
	if (ret)
		return ret;
	if ((pmcsr & 3u) == (d & 3u))
		return 0;
	if (bounce_ok && d == 3 && !(pmcsr & 3u)) {
		e->pm_bounces++;
		return 0;
	}
	return -EIO;
}

/* The function's power state from its PMCSR (0 or 3), or a negative errno. */
static inline int env_dstate(struct mig_env *e)
{
	int off = env_pmcsr(e), ret;
	uint16_t pmcsr;

	if (off < 0)
		return off;
	ret = vu_config_read(&e->dev.vdev, off, &pmcsr, sizeof(pmcsr));
	return ret ? ret : (int)(pmcsr & 3u);
}

static inline int env_power(struct mig_env *e, unsigned int d)
{
	return env_power_set(e, d, false);
}

#endif /* MIG_TEST_ENV_H */
