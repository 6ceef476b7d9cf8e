#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build QEMU 10.0 (Debian's trixie source package) with the refaccel device
# model and print the directory that holds qemu-system-x86_64.
#
#   tools/qemu/build-qemu.sh            -> last stdout line: the directory
#   PATH=$(tools/qemu/build-qemu.sh | tail -n1):$PATH qemu-system-x86_64 ...
#
# Result: ${REFACCEL_CACHE:-/var/cache/refaccel}/qemu-build-<key>, where <key>
# is the QEMU source version plus a short sha256 of every input of the model
# (tools/qemu/refaccel*.[ch], tools/qemu/trace-events, the shared register
# header) and of this script.  A published directory is complete by
# construction (filled under a temporary name, renamed at the end), so an
# existing <dir>/qemu-system-x86_64 is a cache hit and returns at once.
#
# The QEMU tree itself is kept in <cache>/qemu-work (one tree, reused while
# the QEMU version and this script are unchanged), so a change to the model
# only recompiles the model: seconds, not the ~6 minutes of a cold build.
# REFACCEL_QEMU_COLD=1 forces a fresh tree.  REFACCEL_QEMU_JOBS (default 2).
#
# REFACCEL_QEMU_ASAN=1 builds the same QEMU with AddressSanitizer
# (configure --enable-asan) instead, kept apart from the normal build: its
# own tree <cache>/qemu-asan-work, result <cache>/qemu-asan-build-<key> and
# lock, so neither build disturbs the other's cache.  Run it with
#   ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
# (QEMU does not free everything at exit; any other report aborts).  A cold
# ASan build took about 7 minutes on 2 cores, the normal one about 4.
#
# tools/qemu/patches/*.patch are applied to the QEMU tree when it is set up
# (in name order, patch -p1), each a fix to QEMU itself that the lanes need;
# they are inputs of the key and of the tree's recipe.  Today: a TCG
# dirty-tracking fix without which a TCG guest loses stores across a
# migration whose dirty pages come from a device's DMA logging (see the
# patch and Documentation/qemu.rst).
#
# The built QEMU carries no firmware: run it with
#   -L /usr/share/qemu -L /usr/share/seabios -L /usr/lib/ipxe/qemu
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
HDR=$TOP/include/hw/refaccel_regs.h
CACHE=${REFACCEL_CACHE:-/var/cache/refaccel}
SRCDIR=$CACHE/src
JOBS=${REFACCEL_QEMU_JOBS:-2}
ASAN=${REFACCEL_QEMU_ASAN:-0}
[ "$ASAN" = 0 ] || ASAN=1
# names of this variant's tree, results and lock under $CACHE (the normal
# build's names are what they always were; the ASan ones do not match its
# "qemu-build-*" clean-up glob)
if [ "$ASAN" = 1 ]; then
	VARIANT=qemu-asan
else
	VARIANT=qemu
fi
WORK=$CACHE/$VARIANT-work

CONFIGURE_ARGS=(
	--target-list=x86_64-softmmu
	--without-default-features
	--disable-docs --disable-tools --disable-user --disable-install-blobs
	--enable-attr --enable-cap-ng --enable-virtfs
	# Debian's python3 is the one that sees Debian's meson (not a pyenv
	# or venv python that may come first in PATH)
	--python=/usr/bin/python3
)
if [ "$ASAN" = 1 ]; then
	CONFIGURE_ARGS+=(--enable-asan)
fi

msg() { echo "build-qemu: $*" >&2; }
die() { msg "error: $*"; exit 1; }

[ -f "$HDR" ] || die "missing $HDR"
mkdir -p "$CACHE" "$SRCDIR"

# ---- the QEMU source package ----
find_dsc() {
	find "$SRCDIR" -maxdepth 1 -name 'qemu_*.dsc' | sort -V | tail -n1
}
DSC=$(find_dsc)
if [ -z "$DSC" ]; then
	msg "fetching QEMU source (apt-get source --download-only qemu/trixie)"
	(cd "$SRCDIR" && apt-get source -q --download-only qemu/trixie) >&2 ||
		die "apt-get source failed (run scripts/setup-host.sh first?)"
	DSC=$(find_dsc)
	[ -n "$DSC" ] || die "no qemu_*.dsc in $SRCDIR after download"
fi
QVER=$(sed -n 's/^Version: //p' "$DSC" | head -n1)
[ -n "$QVER" ] || die "no Version in $DSC"
QVER_SAFE=$(printf '%s' "${QVER#*:}" | tr -c 'A-Za-z0-9.+_-' '_')

# ---- cache key ----
# The model's files: what sync_model copies into the QEMU tree.
model_files() {
	(cd "$TOP" && ls -1 tools/qemu/refaccel*.[ch] tools/qemu/trace-events |
		LC_ALL=C sort)
}
# The fixes to QEMU itself, in the order they are applied.
patch_files() {
	(cd "$TOP" && ls -1 tools/qemu/patches/*.patch 2>/dev/null |
		LC_ALL=C sort)
}
patches_hash() {
	local f
	for f in $(patch_files); do
		printf '%s\0' "$f"
		cat "$TOP/$f"
	done | sha256sum | cut -c1-16
}
hash_inputs() {
	local f
	# names matter too (renames change the key)
	for f in $(model_files) $(patch_files) tools/qemu/build-qemu.sh include/hw/refaccel_regs.h; do
		printf '%s\0' "$f"
		cat "$TOP/$f"
	done | sha256sum | cut -c1-12
}
KEY="$QVER_SAFE-$(hash_inputs)"
OUT=$CACHE/$VARIANT-build-$KEY

if [ -x "$OUT/qemu-system-x86_64" ]; then
	msg "cache hit"
	echo "$OUT"
	exit 0
fi

# One build at a time per work tree (it is shared).
exec 9>"$CACHE/$VARIANT-build.lock"
flock 9
if [ -x "$OUT/qemu-system-x86_64" ]; then
	msg "cache hit (built by a concurrent run)"
	echo "$OUT"
	exit 0
fi

START=$(date +%s)
mkdir -p "$WORK"
LOG=$WORK/build.log
: >"$LOG"

fail() {
	msg "FAILED: $* (log: $LOG), last 40 lines:"
	tail -n 40 "$LOG" >&2
	exit 1
}

# Put the model into the QEMU tree: its files into hw/misc (only what
# changed, so ninja rebuilds only what depends on it; files the model no
# longer has go), its source list into hw/misc/meson.build (the line after
# MESON_MARK) and its trace events after hw/misc's own.  A changed
# meson.build or trace-events makes ninja reconfigure by itself.
MESON_MARK="# refaccel model sources, written by build-qemu.sh"
sync_model() {
	local f name srcs="" line tev
	for f in "$SRC"/hw/misc/refaccel*.[ch]; do
		[ -e "$f" ] && [ ! -e "$HERE/${f##*/}" ] && rm -f "$f"
	done
	for f in "$HERE"/refaccel*.[ch]; do
		name=${f##*/}
		cmp -s "$f" "$SRC/hw/misc/$name" || cp "$f" "$SRC/hw/misc/"
		case $name in *.c) srcs="$srcs${srcs:+, }'$name'" ;; esac
	done
	cmp -s "$HDR" "$SRC/include/hw/refaccel_regs.h" ||
		cp "$HDR" "$SRC/include/hw/refaccel_regs.h"
	line="system_ss.add(when: 'CONFIG_REFACCEL', if_true: files($srcs))"
	grep -qxF "$MESON_MARK" "$SRC/hw/misc/meson.build" ||
		fail "no refaccel hook in hw/misc/meson.build"
	if ! grep -qxF "$line" "$SRC/hw/misc/meson.build"; then
		awk -v mark="$MESON_MARK" -v line="$line" \
			'skip { print line; skip = 0; next } $0 == mark { skip = 1 } { print }' \
			"$SRC/hw/misc/meson.build" >"$SRC/hw/misc/meson.build.new"
		mv "$SRC/hw/misc/meson.build.new" "$SRC/hw/misc/meson.build"
	fi
	tev=$(mktemp)
	cat "$SRC/hw/misc/trace-events.upstream" "$HERE/trace-events" >"$tev"
	if cmp -s "$tev" "$SRC/hw/misc/trace-events"; then
		rm -f "$tev"
	else
		mv "$tev" "$SRC/hw/misc/trace-events"
	fi
}

# The work tree is reusable when it was set up from the same QEMU source by
# the same version of this script and configured successfully.
RECIPE="$QVER $(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16) patches $(patches_hash) ${CONFIGURE_ARGS[*]}"
SRC=$WORK/src
if [ "${REFACCEL_QEMU_COLD:-0}" != 0 ] ||
   [ "$(cat "$WORK/recipe" 2>/dev/null)" != "$RECIPE" ] ||
   [ ! -f "$SRC/build/build.ninja" ]; then
	msg "cold build: QEMU $QVER in $SRC"
	rm -rf "$SRC" "$WORK/recipe"

	# Prefer the tree setup-host extracted, when it is this exact version.
	upver=${QVER#*:}
	upver=${upver%%+*}
	upver=${upver%-*}
	extracted=$SRCDIR/qemu-$upver
	if [ -f "$extracted/debian/changelog" ] &&
	   [ "$(dpkg-parsechangelog -l "$extracted/debian/changelog" -S Version 2>/dev/null)" = "$QVER" ]; then
		msg "copying $extracted"
		cp -a "$extracted" "$SRC.tmp" >>"$LOG" 2>&1 || fail "copy of the source"
	else
		msg "extracting $DSC"
		rm -rf "$SRC.tmp"
		dpkg-source -x "$DSC" "$SRC.tmp" >>"$LOG" 2>&1 || fail "dpkg-source -x"
	fi
	mv "$SRC.tmp" "$SRC"

	for f in $(patch_files); do
		msg "applying ${f##*/}"
		patch -d "$SRC" -p1 --forward --fuzz=0 --no-backup-if-mismatch \
			<"$TOP/$f" >>"$LOG" 2>&1 ||
			fail "patch ${f##*/} does not apply to QEMU $QVER"
	done

	# Hook the model into the tree (Kconfig, meson, x86_64 device config);
	# sync_model fills in the source list and the trace events.
	cat >>"$SRC/hw/misc/Kconfig" <<-'EOF'

	config REFACCEL
	    bool
	    default y if TEST_DEVICES
	    depends on PCI && MSI_NONBROKEN
	EOF
	printf '%s\n%s\n' "$MESON_MARK" "system_ss.add()" >>"$SRC/hw/misc/meson.build"
	cp "$SRC/hw/misc/trace-events" "$SRC/hw/misc/trace-events.upstream"
	# q35/pc get it whether or not TEST_DEVICES is on
	echo "CONFIG_REFACCEL=y" >>"$SRC/configs/devices/x86_64-softmmu/default.mak"

	# The "+ds" tarball has no edk2 blobs: never unpack them (Debian's
	# skip-unpack-edk2-blobs.patch does the same; this is idempotent).
	sed -i 's/^if unpack_edk2_blobs$/if unpack_edk2_blobs and false/' \
		"$SRC/pc-bios/meson.build"
	grep -q '^if unpack_edk2_blobs and false' "$SRC/pc-bios/meson.build" ||
		fail "could not disable the edk2 blob unpack in pc-bios/meson.build"

	sync_model

	msg "configure ${CONFIGURE_ARGS[*]}"
	(cd "$SRC" && ./configure "${CONFIGURE_ARGS[@]}") >>"$LOG" 2>&1 ||
		fail "configure"
	echo "$RECIPE" >"$WORK/recipe"
else
	msg "incremental build in $SRC"
	sync_model
fi

msg "ninja -j$JOBS (log: $LOG)"
ninja -C "$SRC/build" -j"$JOBS" qemu-system-x86_64 >>"$LOG" 2>&1 || fail "ninja"

grep -qx 'CONFIG_REFACCEL=y' "$SRC/build/x86_64-softmmu-config-devices.mak" ||
	fail "CONFIG_REFACCEL is not enabled for x86_64-softmmu"
# (-device help leaks a little: no LeakSanitizer verdict on it)
ASAN_OPTIONS=detect_leaks=0 "$SRC/build/qemu-system-x86_64" -device help 2>/dev/null |
	grep -q '"refaccel"' ||
	fail "the built QEMU does not list -device refaccel"

# ---- publish atomically ----
TMP=$(mktemp -d "$OUT.tmp.XXXXXX")
cp "$SRC/build/qemu-system-x86_64" "$TMP/"
cp "$LOG" "$TMP/build.log"
{
	echo "qemu-source: $QVER"
	echo "key: $KEY"
	echo "configure: ${CONFIGURE_ARGS[*]}"
	if [ "$ASAN" = 1 ]; then
		echo "asan: run with ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
	fi
	echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - START))s"
	echo "firmware: -L /usr/share/qemu -L /usr/share/seabios -L /usr/lib/ipxe/qemu"
} >"$TMP/BUILD-INFO"
chmod 755 "$TMP"
rm -rf "$OUT"
mv -T "$TMP" "$OUT"

# Old results of this variant go, except the newest few: another clone at
# another commit (a CI run while one develops) may be using its build right
# now.  Leftovers of interrupted runs go too.  We hold the variant's lock.
keep=3
for d in $(ls -1dt "$CACHE/$VARIANT"-build-* 2>/dev/null); do
	[ "$d" = "$OUT" ] && continue
	case $d in
	"$CACHE/$VARIANT-build.lock") continue ;;
	*.tmp.*) rm -rf "$d"; continue ;;
	esac
	if [ "$keep" -gt 0 ]; then
		keep=$((keep - 1))
		continue
	fi
	rm -rf "$d"
done

msg "built in $(($(date +%s) - START))s"
echo "$OUT"
