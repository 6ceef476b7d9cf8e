#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the own-kernel lane's kernel from Debian's linux-source-7.3
# (trixie-backports): the virtme-ng base config (`vng --kconfig`) plus
# tools/vm/own-kernel.config (IOMMUFD + VFIO cdev, dma-buf, KUnit, KASAN,
# lockdep, kmemleak, the mtty sample, ...).  The stock-kernel lane stays on
# Debian's own 6.12 image: an own 6.12 tree would only repeat it with the
# debug options, which 7.3 now carries.
# Every option of the fragment is checked after olddefconfig; the build fails
# if one did not end up as asked.
#
# The tree is cached as $REFACCEL_CACHE/kernel-<key>, key = package version
# + hash of the fragment and of this script.  Kbuild records paths, so the
# tree is built in place under its final name and published by writing
# .complete last; a directory without it is a broken or interrupted build
# and is rebuilt.  Older kernel-* trees are removed, except the newest other
# complete one.  Build output goes to stderr; the last line of
# stdout is the tree path, usable as `tools/vm/run --kernel <tree>` and as
# `make module KDIR=<tree>`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cache=${REFACCEL_CACHE:-/var/cache/refaccel}
frag=$top/tools/vm/own-kernel.config
tarball=/usr/src/linux-source-7.3.tar.xz
jobs=${REFACCEL_JOBS:-$(nproc)}

exec 3>&1 1>&2

ver=$(dpkg-query -W -f='${Version}' linux-source-7.3)
[ -r "$tarball" ] || { echo "build-kernel: $tarball missing; run scripts/setup-host.sh"; exit 1; }
hash=$( (cat "$frag" "$0") | sha256sum | cut -c1-12)
key=7.3-$ver-$hash
key=${key//[^A-Za-z0-9.+_-]/_}
dir=$cache/kernel-$key

mkdir -p "$cache"
exec 9>"$cache/kernel.lock"
flock 9

if [ ! -e "$dir/.complete" ]; then
	t0=$(date +%s)
	echo "build-kernel: building $dir (log: $dir.log)"
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -C "$dir" --strip-components=1 -xf "$tarball"
	cd "$dir"
	{
		vng --kconfig
		scripts/kconfig/merge_config.sh -m .config "$frag"
		make olddefconfig
	} >"$dir.log" 2>&1 || { tail -n 30 "$dir.log"; exit 1; }

	# Every option of the fragment must have survived olddefconfig.
	bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF -- "$line" .config && continue
			echo "build-kernel: wanted '$line', got '$(grep -E "^(# )?${line%%=*}[= ]" .config || echo unset)'"
			bad=1 ;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			grep -q "^$opt=" .config || continue
			echo "build-kernel: wanted $opt off, got '$(grep "^$opt=" .config)'"
			bad=1 ;;
		esac
	done <"$frag"
	[ $bad = 0 ] || { echo "build-kernel: config check failed"; exit 1; }

	make -j"$jobs" bzImage modules >>"$dir.log" 2>&1 || { tail -n 40 "$dir.log"; exit 1; }
	# The module tree vng boots with: prepared now so runs never write here.
	virtme-prep-kdir-mods >>"$dir.log" 2>&1
	echo "$(($(date +%s) - t0))" >.build-seconds
	touch .complete
	echo "build-kernel: built in $(($(date +%s) - t0)) s"
fi

# Remove older trees (and their logs), but keep the newest other one: a
# clone at another commit (a CI run while one develops) may be booting it
# right now.
keep=1
for d in $(ls -1dt "$cache"/kernel-* 2>/dev/null); do
	case $d in *.log | "$cache/kernel.lock") continue ;; esac
	[ "$d" = "$dir" ] && continue
	if [ -e "$d/.complete" ] && [ "$keep" -gt 0 ]; then
		keep=$((keep - 1))
		continue
	fi
	echo "build-kernel: removing stale $d"
	rm -rf "$d" "$d.log"
done
echo "$dir" >&3
