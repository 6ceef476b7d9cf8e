/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Freestanding stand-in for <linux/types.h>, just enough for
 * <hw/refaccel_regs.h>.  The real one needs <asm/types.h>, which a plain
 * 64-bit Debian has no 32-bit variant of (that comes with gcc-multilib).
 */
#ifndef REFACCEL_GUEST_LINUX_TYPES_H
#define REFACCEL_GUEST_LINUX_TYPES_H

typedef unsigned char		__u8;
typedef unsigned short		__u16;
typedef unsigned int		__u32;
typedef unsigned long long	__u64;
typedef signed char		__s8;
typedef short			__s16;
typedef int			__s32;
typedef long long		__s64;

#endif
