#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the refaccel-vfio-pci module against KDIR into OUTDIR, leaving the
# source directory alone, so modules for several kernels (Debian's stock
# 6.12, the own-kernel tree of scripts/build-kernel.sh) coexist.  Linux 6.12
# has no MO= for external modules (it came in 6.13), so OUTDIR gets a
# symlink farm mirroring drivers/vfio/pci/refaccel and include/, and kbuild
# runs with M= on it.  Extra make arguments (W=1, C=2, ...) are passed on.
# Prints the path of the built .ko as the last line.
#
#   scripts/build-module.sh KDIR OUTDIR [MAKEARGS...]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=${1:?usage: build-module.sh KDIR OUTDIR [MAKEARGS...]}
out=${2:?usage: build-module.sh KDIR OUTDIR [MAKEARGS...]}
shift 2
mkdir -p "$out"
out=$(cd "$out" && pwd)	# kbuild wants an absolute M=
src=$top/drivers/vfio/pci/refaccel
mdir=$out/drivers/vfio/pci/refaccel

mkdir -p "$mdir"
ln -sfnT "$top/include" "$out/include"
# Mirror the sources (and only them: objects stay in OUTDIR).
find "$mdir" -maxdepth 1 -type l -delete
for f in "$src"/Kbuild "$src"/*.mk "$src"/*.c "$src"/*.h; do
	case "$f" in *.mod.c) continue ;; esac
	ln -sfn "$f" "$mdir/"
done
make -C "$kdir" M="$mdir" "$@" modules >&2
echo "$mdir/refaccel-vfio-pci.ko"
