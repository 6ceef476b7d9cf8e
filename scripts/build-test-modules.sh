#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the test-only kernel modules for one kernel into OUTDIR and write
# OUTDIR/modules.env, which tests/vm-suite.sh reads inside the VM
# (REFACCEL_TESTMODS=OUTDIR):
#
#   refaccel_splat.ko         tests/splat: deliberate WARN/leak (gate self-test)
#   refaccel-stream-kunit.ko  tests/kunit: KUnit tests of the driver's stream.c
#                             (only if KDIR has CONFIG_KUNIT)
#   refaccel-core-kunit.ko    tests/kunit: the migration core (mig*.c) driving a
#                             second, state-only device (ops_blob.c); same
#                             condition
#   mtty.ko                   the kernel's vfio-mdev sample: taken from KDIR
#                             when it built it (own kernel), else compiled from
#                             the extracted linux-source-6.12 (stock kernel)
#
# Sources are never copied: OUTDIR holds symlink farms (6.12 kbuild has M=
# but no MO=, and writes objects next to the sources).  A module that cannot
# be built for this kernel gets a *_SKIP reason in modules.env instead.
#
#   scripts/build-test-modules.sh KDIR OUTDIR
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$(cd "${1:?usage: build-test-modules.sh KDIR OUTDIR}" && pwd)
out=${2:?usage: build-test-modules.sh KDIR OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
env=$out/modules.env
: >"$env"

kconf() {	# kconf SYM: its value in KDIR's config, empty if unset
	sed -n "s/^CONFIG_$1=//p" "$kdir/include/config/auto.conf" 2>/dev/null
}

farm() {	# farm DIR FILE...: DIR with symlinks to FILEs (only)
	local d=$1
	shift
	mkdir -p "$d"
	find "$d" -maxdepth 1 -type l -delete
	ln -sfn "$@" "$d/"
}

kbuild() {	# kbuild DIR: build the external modules of DIR
	make -C "$kdir" M="$1" W=1 modules >&2
}

# The splat gate's self-test module: any kernel.
farm "$out/tests/splat" "$top"/tests/splat/Kbuild "$top"/tests/splat/*.c
kbuild "$out/tests/splat"
echo "REFACCEL_SPLAT_KO=$out/tests/splat/refaccel_splat.ko" >>"$env"

# KUnit tests of stream.c: only where KUnit is built in.
if [ "$(kconf KUNIT)" = y ]; then
	ln -sfnT "$top/include" "$out/include"
	drv=$top/drivers/vfio/pci/refaccel
	farm "$out/tests/kunit" "$top"/tests/kunit/Kbuild \
		"$top"/tests/kunit/refaccel_stream_kunit.c \
		"$drv/stream.c" "$drv/stream.h"
	kbuild "$out/tests/kunit"
	echo "REFACCEL_KUNIT_KO=$out/tests/kunit/refaccel-stream-kunit.ko" >>"$env"
	# the migration core with a second, state-only device (ops_blob.c)
	farm "$out/tests/kunit-core" "$top"/tests/kunit/refaccel_core_kunit.c \
		"$top"/tests/kunit/ops_blob.[ch] "$drv"/mig*.[ch] "$drv"/dirty.[ch] \
		"$drv"/stream.[ch] "$drv/trace.h" \
		"$drv"/compat.[hm]*
	ln -sfn "$top/tests/kunit/core.Kbuild" "$out/tests/kunit-core/Kbuild"
	kbuild "$out/tests/kunit-core"
	echo "REFACCEL_KUNIT_CORE_KO=$out/tests/kunit-core/refaccel-core-kunit.ko" >>"$env"
else
	echo "REFACCEL_KUNIT_SKIP='kernel built without CONFIG_KUNIT'" >>"$env"
fi

# mtty: the kernel's own sample if it has one, else built from the source.
if [ -f "$kdir/samples/vfio-mdev/mtty.ko" ]; then
	echo "REFACCEL_MTTY_KO=$kdir/samples/vfio-mdev/mtty.ko" >>"$env"
elif [ -z "$(kconf VFIO_MDEV)" ]; then
	echo "REFACCEL_MTTY_SKIP='kernel built without CONFIG_VFIO_MDEV'" >>"$env"
else
	src=$(bash "$top/scripts/prepare-linux-src.sh")/linux-source-6.12
	farm "$out/mtty" "$src/samples/vfio-mdev/mtty.c"
	echo 'obj-m := mtty.o' >"$out/mtty/Kbuild"
	# The sample is upstream code: build it as upstream does (no W=1).
	make -C "$kdir" M="$out/mtty" modules >&2
	echo "REFACCEL_MTTY_KO=$out/mtty/mtty.ko" >>"$env"
fi
cat "$env" >&2
echo "$out"
