// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test-only module for the splat gate's self-test (tests/splat/selftest.sh):
 * on load it WARNs (warn=1, default) and/or leaks one allocation (leak=1),
 * so the gate can be shown to catch both.  Never part of the driver.
 */

#include <linux/bug.h>
#include <linux/module.h>
#include <linux/slab.h>

static bool warn = true;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN() once on load (default on)");

static bool leak;
module_param(leak, bool, 0444);
MODULE_PARM_DESC(leak, "leak one 256-byte allocation on load (default off)");

static void *refaccel_splat_ptr;

static int __init refaccel_splat_init(void)
{
	if (leak) {
		/* No printk of the pointer: its stack copy would hide the leak. */
		WRITE_ONCE(refaccel_splat_ptr, kmalloc(256, GFP_KERNEL));
		WRITE_ONCE(refaccel_splat_ptr, NULL);
		pr_info("refaccel_splat: leaked 256 bytes on purpose\n");
	}
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
