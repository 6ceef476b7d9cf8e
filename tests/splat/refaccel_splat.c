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
MODULE_PARM_DESC(leak, "leak this many 256-byte allocations on load (default 0)");

static void *refaccel_splat_ptr;

static int __init refaccel_splat_init(void)
{
	unsigned int i;

	/*
	 * kmemleak is conservative: a stale copy of a pointer left in a stack
	 * slot (this task's stack is cached, unzeroed, after insmod exits)
	 * hides that object.  Each allocation's call chain overwrites the
	 * slots of the one before, so of several leaks at most the last can
	 * hide.  No printk of a pointer: its copy would hide the leak too.
	 */
	for (i = 0; i < min(leak, 64U); i++) {
		WRITE_ONCE(refaccel_splat_ptr, kmalloc(256, GFP_KERNEL));
		WRITE_ONCE(refaccel_splat_ptr, NULL);
	}
	if (leak)
		pr_info("refaccel_splat: leaked %u x 256 bytes on purpose\n", i);
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
