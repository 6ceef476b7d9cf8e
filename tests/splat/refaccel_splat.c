// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test-only module for the splat gate's self-test (tests/splat/selftest.sh):
 * on load it WARNs (warn=1, default) and/or leaks `leak` allocations, so
 * the gate can be shown to catch both.  Never part of the driver.
 */

#include <linux/bug.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/slab.h>

static bool warn = true;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN() once on load (default on)");

static unsigned int leak;
module_param(leak, uint, 0444);
MODULE_PARM_DESC(leak, "leak this many 16 KiB allocations on load (default 0)");

/* Above KMALLOC_MAX_CACHE_SIZE (two pages): not from a slab cache. */
#define SPLAT_LEAK_SIZE	(4 * PAGE_SIZE)

static void *refaccel_splat_ptr;

static int __init refaccel_splat_init(void)
{
	unsigned int i;

	/*
	 * kmemleak is conservative: a stale copy of a pointer left in a stack
	 * slot (this task's stack is cached, unzeroed, after insmod exits)
	 * hides that object.  Each allocation's call chain overwrites the
	 * slots of the one before, so of several leaks at most the last can
	 * hide.  The leaks are larger than any kmalloc cache, so they come
	 * from the page allocator: 7.x SLUB hands small objects out of
	 * per-CPU sheaves, arrays whose slots keep the pointers already
	 * handed out, and those hid up to two sheaves' worth (64 of 64 on
	 * 7.3 after a VM suite run).  No printk of a pointer: its copy would
	 * hide the leak too.
	 */
	for (i = 0; i < min(leak, 64U); i++) {
		WRITE_ONCE(refaccel_splat_ptr, kmalloc(SPLAT_LEAK_SIZE, GFP_KERNEL));
		WRITE_ONCE(refaccel_splat_ptr, NULL);
	}
	if (leak)
		pr_info("refaccel_splat: leaked %u x %lu bytes on purpose\n", i,
			SPLAT_LEAK_SIZE);
	WARN(warn, "refaccel_splat: deliberate warning for the splat gate self-test\n");
	return 0;
}

static void __exit refaccel_splat_exit(void)
{
}

module_init(refaccel_splat_init);
module_exit(refaccel_splat_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("splat gate self-test: deliberate WARN and leak");
