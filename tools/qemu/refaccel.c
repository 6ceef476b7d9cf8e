/*
 * refaccel: the device: QOM type, properties, realize and exit, resets, PCI
 * configuration space
 *
 * A PCIe endpoint with a register BAR, a RAM-backed "SRAM" BAR and an
 * MSI-X BAR.  Work is submitted through a submission ring of 64-byte
 * descriptors in host memory and reported through a completion ring, both
 * reached by DMA through the device's bus master address space (so through
 * a vIOMMU when there is one).  Every operation takes a configurable amount
 * of virtual time so that work is genuinely in flight.
 *
 * A migration block quiesces and freezes the engine and saves/restores its
 * whole internal state through an MMIO window; BAR2 writes are tracked in
 * a read-and-clear dirty bitmap for pre-copy of the SRAM.
 *
 * The pieces: refaccel_mmio.c (BAR0 dispatch), refaccel_engine.c (rings,
 * descriptors, DMA, interrupts), refaccel_quiesce.c (quiesce and freeze),
 * refaccel_state.c (state save and restore), refaccel_sram_dirty.c (SRAM
 * dirty bitmap), refaccel_dt.c (DMA dirty tracking), refaccel_pri.c (page
 * requests); refaccel_internal.h is what they share.  The register map
 * lives in hw/refaccel_regs.h, shared with the driver and the tests; the
 * behaviour is described in the project's Documentation/device-spec.rst.
 *
 * Copyright (c) 2025 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "refaccel_internal.h"
#include "trace.h"

void refaccel_guest_error(RefaccelState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (!qemu_loglevel_mask(LOG_GUEST_ERROR)) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (s->dead) {
        /* off its bus: no bus number to print */
        qemu_log("%s (unplugged): %s\n", TYPE_REFACCEL, msg);
        return;
    }
    qemu_log("%s %02x:%02x.%x: %s\n", TYPE_REFACCEL,
             pci_dev_bus_num(PCI_DEVICE(s)), PCI_SLOT(PCI_DEVICE(s)->devfn),
             PCI_FUNC(PCI_DEVICE(s)->devfn), msg);
}

static void refaccel_unref_bh(void *opaque)
{
    object_unref(OBJECT(opaque));
}

/*
 * Keep the object across anything that can unplug it: any DMA or MSI write
 * (ECAM is plain MMIO).  Once the device is dead the reference is dropped
 * from a fresh bottom half, never from here: it may be the last one, and
 * our callers (aio_bh_call(), the memory dispatch) still write the
 * device's reentrancy guard after we return.  While the device is alive
 * its parent holds a reference, so a plain unref cannot finalize it.
 */
void refaccel_hold(RefaccelState *s)
{
    object_ref(OBJECT(s));
}

void refaccel_release(RefaccelState *s)
{
    if (refaccel_dead(s)) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(), refaccel_unref_bh, s);
        return;
    }
    object_unref(OBJECT(s));
}

uint32_t refaccel_caps(RefaccelState *s)
{
    uint32_t caps = REFACCEL_CAP_P2P | REFACCEL_CAP_MIGRATION |
                    REFACCEL_CAP_SRAM_DIRTY;

    if (s->testctl) {
        caps |= REFACCEL_CAP_TESTCTL;
    }
    if (s->dt_ranges) {
        caps |= REFACCEL_CAP_DMA_DIRTY;
    }
    if (s->ats) {
        caps |= REFACCEL_CAP_ATS;
    }
    if (s->pasid) {
        caps |= REFACCEL_CAP_PASID;
    }
    if (s->pri) {
        caps |= REFACCEL_CAP_PRI;
    }
    if (s->quiesce_unbounded) {
        caps |= REFACCEL_CAP_QUIESCE_UNBOUNDED;
    }
    return caps;
}

uint32_t refaccel_status(RefaccelState *s)
{
    uint32_t v = s->r.status & REFACCEL_STATUS_HALTED;

    if (refaccel_enabled(s)) {
        v |= REFACCEL_STATUS_ENABLED;
    }
    if (refaccel_busy(s)) {
        v |= REFACCEL_STATUS_BUSY;
    }
    return v;
}

/* ---- reset ---- */

/*
 * Function reset (CTRL.RESET): the rings, work, counters and SRAM go back
 * to power-on values; the migration block does not (it belongs to the
 * migration driver, whose quiesce, freeze and tracking must survive what
 * the guest's driver does).  SRAM cleared while tracking is dirty SRAM.
 */
void refaccel_function_reset(RefaccelState *s)
{
    RefaccelPri pri = s->r.pri;

    s->generation++;
    timer_del(&s->op_timer);
    memset(&s->r, 0, sizeof(s->r));
    /* empty, in a new epoch: an answer from before the reset is stale */
    s->r.pri = pri;
    refaccel_pri_reset(&s->r.pri);
    s->r.op_latency_ns = s->prop_op_latency_ns;
    s->r.cq_phase = 1;
    /* the fault injection properties are the test registers' reset values */
    s->r.test_flags = s->prop_never_quiesce ? REFACCEL_TEST_NEVER_QUIESCE : 0;
    s->r.test_quiesce_delay = s->prop_quiesce_delay_us;
    /* the next user must not see the previous user's data */
    if (s->sram_ptr) {
        refaccel_sram_clear(s);
    }
    /* a quiesce that waited for the dropped work is over now */
    refaccel_quiesce_progress(s);
}

/*
 * What pci_do_device_reset() leaves alone: the error reporting enables of
 * DEVCTL and the ATS, PASID and PRI controls.  An FLR clears them (they are
 * not sticky); PRI reports "stopped" again.
 */
static void refaccel_reset_config(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    pcie_cap_deverr_reset(pdev);
    if (pdev->exp.ats_cap) {
        pci_set_word(pdev->config + pdev->exp.ats_cap + PCI_ATS_CTRL, 0);
    }
    if (s->pasid_cap) {
        pci_set_word(pdev->config + s->pasid_cap + PCI_PASID_CTRL, 0);
    }
    if (s->pri_cap) {
        pci_set_word(pdev->config + s->pri_cap + PCI_PRI_CTRL, 0);
        pci_set_word(pdev->config + s->pri_cap + PCI_PRI_STATUS,
                     PCI_PRI_STATUS_STOPPED);
        pci_set_long(pdev->config + s->pri_cap + PCI_PRI_ALLOC_REQ, 0);
    }
}

/* Device reset (power on, FLR, bus reset): everything, migration too. */
static void refaccel_reset_state(RefaccelState *s)
{
    trace_refaccel_reset(true);
    refaccel_reset_config(s);
    timer_del(&s->quiesce_timer);
    memset(&s->m, 0, sizeof(s->m));
    refaccel_dt_reset(&s->dt);
    if (s->dirty_bm) {
        bitmap_zero(s->dirty_bm, s->dirty_pages);
    }
    refaccel_function_reset(s);
}

static void refaccel_qdev_reset(DeviceState *dev)
{
    refaccel_reset_state(REFACCEL(dev));
}

/* ---- PCI config space ---- */

static void refaccel_update_pri_status(RefaccelState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint16_t ctrl, status;

    if (!s->pri_cap) {
        return;
    }
    ctrl = pci_get_word(pdev->config + s->pri_cap + PCI_PRI_CTRL);
    status = pci_get_word(pdev->config + s->pri_cap + PCI_PRI_STATUS);
    /* page requests go through the BAR0 block (see the spec) */
    if (ctrl & PCI_PRI_CTRL_ENABLE) {
        status &= ~PCI_PRI_STATUS_STOPPED;
    } else {
        status |= PCI_PRI_STATUS_STOPPED;
    }
    pci_set_word(pdev->config + s->pri_cap + PCI_PRI_STATUS, status);
}

static void refaccel_config_write(PCIDevice *pdev, uint32_t addr,
                                  uint32_t val, int len)
{
    RefaccelState *s = REFACCEL(pdev);
    bool was_down = refaccel_powered_down(s);
    uint32_t held = 0;
    unsigned vec;

    /*
     * Clearing the MSI-X function mask (or setting Enable) makes QEMU send
     * what is pending at once.  While the function may not signal, keep
     * those messages pending instead: refaccel_run_again() sends them.
     */
    if (refaccel_silent(s) && msix_present(pdev) &&
        range_covers_byte(addr, len, pdev->msix_cap + PCI_MSIX_FLAGS + 1)) {
        for (vec = 0; vec < REFACCEL_NUM_VECTORS; vec++) {
            if (refaccel_msix_pending(pdev, vec)) {
                held |= 1u << vec;
                msix_clr_pending(pdev, vec);
            }
        }
    }
    pci_default_write_config(pdev, addr, val, len);
    for (vec = 0; vec < REFACCEL_NUM_VECTORS; vec++) {
        if (held & (1u << vec)) {
            msix_set_pending(pdev, vec);
        }
    }
    if (s->pri_cap) {
        /* PRI Ctrl.Reset reads as 0 (our requests live in BAR0) */
        pci_word_test_and_clear_mask(pdev->config + s->pri_cap + PCI_PRI_CTRL,
                                     PCI_PRI_CTRL_RESET);
    }
    refaccel_update_pri_status(s);
    if (was_down != refaccel_powered_down(s)) {
        trace_refaccel_power(!was_down);
    }
    if (was_down && !refaccel_powered_down(s)) {
        refaccel_run_again(s);
    }
    /* last: an FLR resets all of the above */
    pcie_cap_flr_write_config(pdev, addr, val, len);
}

static void refaccel_init_pasid(PCIDevice *pdev, uint16_t off)
{
    pcie_add_capability(pdev, PCI_EXT_CAP_ID_PASID, 1, off,
                        PCI_EXT_CAP_PASID_SIZEOF);
    /* no execute/privileged mode; 20-bit PASIDs */
    pci_set_word(pdev->config + off + PCI_PASID_CAP,
                 REFACCEL_PASID_MAX_WIDTH << 8);
    pci_set_word(pdev->config + off + PCI_PASID_CTRL, 0);
    pci_set_word(pdev->wmask + off + PCI_PASID_CTRL, PCI_PASID_CTRL_ENABLE);
}

static void refaccel_init_pri(PCIDevice *pdev, uint16_t off)
{
    pcie_add_capability(pdev, PCI_EXT_CAP_ID_PRI, 1, off,
                        PCI_EXT_CAP_PRI_SIZEOF);
    pci_set_word(pdev->config + off + PCI_PRI_CTRL, 0);
    pci_set_word(pdev->wmask + off + PCI_PRI_CTRL,
                 PCI_PRI_CTRL_ENABLE | PCI_PRI_CTRL_RESET);
    pci_set_word(pdev->config + off + PCI_PRI_STATUS, PCI_PRI_STATUS_STOPPED);
    /* response failure and unexpected PRG index are RW1C */
    pci_set_word(pdev->w1cmask + off + PCI_PRI_STATUS,
                 PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI);
    pci_set_long(pdev->config + off + PCI_PRI_MAX_REQ,
                 REFACCEL_PRI_LOG_DEPTH);
    pci_set_long(pdev->config + off + PCI_PRI_ALLOC_REQ, 0);
    pci_set_long(pdev->wmask + off + PCI_PRI_ALLOC_REQ, 0xffffffff);
}

/* ---- realize / exit ---- */

static void refaccel_realize(PCIDevice *pdev, Error **errp)
{
    RefaccelState *s = REFACCEL(pdev);
    uint16_t ext_off = PCI_CONFIG_SPACE_SIZE;
    unsigned vec;
    int pm;

    if (s->sram_size < REFACCEL_SRAM_MIN_SIZE ||
        s->sram_size > REFACCEL_SRAM_MAX_SIZE ||
        !is_power_of_2(s->sram_size)) {
        error_setg(errp, "sram-size must be a power of 2 between 4 KiB and "
                   "64 MiB (got %" PRIu64 ")", s->sram_size);
        return;
    }
    if (s->dt_ranges > REFACCEL_DT_MAX_RANGES) {
        error_setg(errp, "dt-ranges must be at most %u (got %u)",
                   REFACCEL_DT_MAX_RANGES, s->dt_ranges);
        return;
    }
    if (s->dt_ranges && s->dt_max_span < (1ull << REFACCEL_DT_PGSHIFT_MAX)) {
        error_setg(errp, "dt-max-span must be at least 2 MiB (got %" PRIu64
                   ")", s->dt_max_span);
        return;
    }
    if (s->max_xfer == 0 || s->max_xfer > REFACCEL_SRAM_MAX_SIZE) {
        error_setg(errp, "max-xfer must be between 1 and %u (got %u)",
                   REFACCEL_SRAM_MAX_SIZE, s->max_xfer);
        return;
    }
    if (!pci_is_express(pdev)) {
        error_setg(errp, "refaccel needs PCI Express config space");
        return;
    }

    pci_config_set_interrupt_pin(pdev->config, 0);  /* MSI-X only */

    if (pcie_endpoint_cap_init(pdev, REFACCEL_PCIE_CAP_OFFSET) < 0) {
        error_setg(errp, "failed to add the PCIe capability");
        return;
    }
    pcie_cap_flr_init(pdev);
    pcie_cap_deverr_init(pdev);
    /*
     * Immediate Readiness, so the OS need not wait 100 ms after FLR (every
     * VFIO open, close and reset does one).  Linux reads the bit only for
     * functions with a PM capability; NoSoftRst keeps "pm" out of the reset
     * methods, so FLR stays the only one.
     */
    pci_word_test_and_set_mask(pdev->config + PCI_STATUS, PCI_STATUS_IMM_READY);
    pm = pci_pm_init(pdev, REFACCEL_PM_CAP_OFFSET, errp);
    if (pm < 0) {
        return;
    }
    pci_set_word(pdev->config + pm + PCI_PM_PMC, 0x3);
    pci_set_word(pdev->config + pm + PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET);
    pci_set_word(pdev->wmask + pm + PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK);
    /* extended capabilities are packed from 0x100 in this order */
    if (s->ats) {
        pcie_ats_init(pdev, ext_off, true);
        ext_off += PCI_EXT_CAP_ATS_SIZEOF;
    }
    if (s->pasid) {
        refaccel_init_pasid(pdev, ext_off);
        s->pasid_cap = ext_off;
        ext_off += PCI_EXT_CAP_PASID_SIZEOF;
    }
    if (s->pri) {
        refaccel_init_pri(pdev, ext_off);
        s->pri_cap = ext_off;
        ext_off += PCI_EXT_CAP_PRI_SIZEOF;
    }

    memory_region_init_io(&s->mmio, OBJECT(s), &refaccel_mmio_ops, s,
                          "refaccel-regs", REFACCEL_REGS_SIZE);
    pci_register_bar(pdev, REFACCEL_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->mmio);

    if (!memory_region_init_ram(&s->sram, OBJECT(s), "refaccel-sram",
                                s->sram_size, errp)) {
        pcie_cap_exit(pdev);
        return;
    }
    s->sram_ptr = memory_region_get_ram_ptr(&s->sram);
    pci_register_bar(pdev, REFACCEL_BAR_SRAM,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &s->sram);

    if (msix_init_exclusive_bar(pdev, REFACCEL_NUM_VECTORS,
                                REFACCEL_BAR_MSIX, errp)) {
        pcie_cap_exit(pdev);
        return;
    }
    for (vec = 0; vec < REFACCEL_NUM_VECTORS; vec++) {
        msix_vector_use(pdev, vec);
    }

    /* for SRAM_DIRTY: see refaccel_dirty_log_take() */
    memory_region_set_log(&s->sram, true, DIRTY_MEMORY_VGA);
    s->sram_logging = true;
    s->bounce = g_malloc(s->max_xfer);
    s->dirty_pages = s->sram_size / REFACCEL_SRAM_DIRTY_PAGE_SIZE;
    s->dirty_bm = bitmap_new(s->dirty_pages);
    s->touched_bm = bitmap_new(s->dirty_pages);
    refaccel_dt_init(&s->dt, s->dt_ranges, s->dt_max_span);
    s->compat_id = refaccel_compute_compat_id(s);
    timer_init_ns(&s->op_timer, QEMU_CLOCK_VIRTUAL, refaccel_op_timer, s);
    timer_init_ns(&s->quiesce_timer, QEMU_CLOCK_VIRTUAL,
                  refaccel_quiesce_timer, s);
    s->work_bh = qemu_bh_new_guarded(refaccel_work, s,
                                     &DEVICE(pdev)->mem_reentrancy_guard);
    refaccel_reset_state(s);
}

static void refaccel_exit(PCIDevice *pdev)
{
    RefaccelState *s = REFACCEL(pdev);

    /*
     * Unplug may come from inside the engine (a DMA or MSI write to the
     * slot control of the port above us): mark the device dead and bump
     * the generation, so that the step in progress unwinds as if reset and
     * nothing re-arms a timer, schedules the (deleted) bottom half or
     * sends a message through the address space being destroyed.
     */
    s->dead = true;
    s->generation++;
    timer_del(&s->op_timer);
    timer_del(&s->quiesce_timer);
    if (s->sram_logging) {
        memory_region_set_log(&s->sram, false, DIRTY_MEMORY_VGA);
        s->sram_logging = false;
    }
    if (s->work_bh) {
        qemu_bh_delete(s->work_bh);
        s->work_bh = NULL;
    }
    msix_unuse_all_vectors(pdev);
    msix_uninit_exclusive_bar(pdev);
    pcie_cap_exit(pdev);
}

static void refaccel_instance_finalize(Object *obj)
{
    RefaccelState *s = REFACCEL(obj);

    /*
     * Freed here, not in exit: an in-progress op may still hold a ref.
     * The timers cannot be armed (exit stopped them, nothing re-arms a
     * dead device); deleting them again is free and keeps it so.
     */
    timer_del(&s->op_timer);
    timer_del(&s->quiesce_timer);
    g_free(s->bounce);
    s->bounce = NULL;
    g_free(s->dirty_bm);
    s->dirty_bm = NULL;
    g_free(s->touched_bm);
    s->touched_bm = NULL;
    refaccel_dt_finalize(&s->dt);
}

static const Property refaccel_properties[] = {
    DEFINE_PROP_SIZE("sram-size", RefaccelState, sram_size,
                     REFACCEL_SRAM_DEFAULT_SIZE),
    DEFINE_PROP_UINT32("op-latency-ns", RefaccelState, prop_op_latency_ns,
                       10000),
    DEFINE_PROP_UINT32("max-xfer", RefaccelState, max_xfer,
                       REFACCEL_MAX_XFER_DEFAULT),
    DEFINE_PROP_BOOL("testctl", RefaccelState, testctl, false),
    DEFINE_PROP_BOOL("ats", RefaccelState, ats, false),
    DEFINE_PROP_BOOL("pasid", RefaccelState, pasid, false),
    DEFINE_PROP_BOOL("pri", RefaccelState, pri, false),
    /* DMA dirty tracking: ranges held (0: none) and bytes they may span */
    DEFINE_PROP_UINT32("dt-ranges", RefaccelState, dt_ranges, 4),
    DEFINE_PROP_UINT64("dt-max-span", RefaccelState, dt_max_span, 1ull << 48),
    /*
     * Fault injection that outlives FLR (every VFIO open, close and reset
     * does one), without testctl: the reset values of TEST_QUIESCE_DELAY
     * and TEST_FLAGS.NEVER_QUIESCE, and a device that cannot park.
     */
    DEFINE_PROP_UINT32("quiesce-delay-us", RefaccelState,
                       prop_quiesce_delay_us, 0),
    DEFINE_PROP_BOOL("never-quiesce", RefaccelState, prop_never_quiesce,
                     false),
    DEFINE_PROP_BOOL("quiesce-unbounded", RefaccelState, quiesce_unbounded,
                     false),
};

/*
 * The device's state migrates through VFIO inside the guest (the migration
 * block), never through the QEMU that hosts the model.
 */
static const VMStateDescription refaccel_vmstate = {
    .name = TYPE_REFACCEL,
    .unmigratable = 1,
};

static void refaccel_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = refaccel_realize;
    k->exit = refaccel_exit;
    k->config_write = refaccel_config_write;
    k->vendor_id = REFACCEL_PCI_VENDOR_ID;
    k->device_id = REFACCEL_PCI_DEVICE_ID;
    k->revision = REFACCEL_PCI_REVISION;
    k->class_id = REFACCEL_PCI_CLASS;

    dc->desc = "refaccel reference PCI accelerator";
    dc->vmsd = &refaccel_vmstate;
    device_class_set_props(dc, refaccel_properties);
    device_class_set_legacy_reset(dc, refaccel_qdev_reset);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo refaccel_info = {
    .name = TYPE_REFACCEL,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(RefaccelState),
    .instance_finalize = refaccel_instance_finalize,
    .class_init = refaccel_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void refaccel_register_types(void)
{
    type_register_static(&refaccel_info);
}

type_init(refaccel_register_types)
