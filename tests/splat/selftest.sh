#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM, after the real gate of tests/vm-suite.sh has run:
# prove that tests/splat-gate.sh catches what it claims to.  Loads the
# test-only module tests/splat/refaccel_splat.ko (KO) and checks the gate,
# restricted to the log after a fresh marker, (1) passes on a quiet window,
# (2) fails on a WARN, (3) with kmemleak, fails on a leaked allocation.
# Output: "ok - NAME" / "not ok - NAME" lines (vm-suite.sh numbers them).
set -uo pipefail

ko=${1:?usage: selftest.sh refaccel_splat.ko}
gate=$(cd "$(dirname "$0")/.." && pwd)/splat-gate.sh

marker() {
	local m="refaccel-splat-selftest-$RANDOM$RANDOM"
	echo "$m" >/dev/kmsg
	echo "$m"
}

# (1) A window with nothing in it passes (the whole gate, kmemleak scans
# included: the suite's own check has just scanned, so what it found is
# only forgotten here, not scanned for again).
"$gate" forget
m=$(marker)
if out=$("$gate" check "$m"); then
	echo "ok - splat-gate-selftest-quiet"
else
	echo "not ok - splat-gate-selftest-quiet # gate failed on a quiet window"
	printf '%s\n' "$out"
fi

# (2) A WARN is caught.
m=$(marker)
insmod "$ko" warn=1 leak=0
rmmod refaccel_splat
if out=$("$gate" log-only "$m"); then
	echo "not ok - splat-gate-selftest-warn # gate passed a WARN"
elif printf '%s\n' "$out" | grep -q 'WARNING:.*refaccel_splat'; then
	echo "ok - splat-gate-selftest-warn"
else
	echo "not ok - splat-gate-selftest-warn # gate failed, but not on the WARN"
	printf '%s\n' "$out"
fi

# (3) A leak is caught, where the kernel has kmemleak.
if [ ! -e /sys/kernel/debug/kmemleak ]; then
	echo "ok - splat-gate-selftest-leak # SKIP kernel without kmemleak"
	exit 0
fi
"$gate" begin >/dev/null
m=$(marker)
# 64 leaks of 16 KiB (page allocator, not a slab cache whose per-CPU
# sheaves would keep stale pointers to them on 7.x): a stale stack copy of
# a pointer hides one object at most (see refaccel_splat.c).
insmod "$ko" warn=0 leak=64
sleep 6		# kmemleak reports objects older than 5 s only
# Still conservative: give the gate a few scans, a second apart, before
# calling it blind.
caught=
for _ in 1 2 3 4 5; do
	if ! out=$("$gate" check "$m"); then
		caught=1
		break
	fi
	sleep 1
done
if [ -z "$caught" ]; then
	echo "not ok - splat-gate-selftest-leak # gate passed a leak"
elif printf '%s\n' "$out" | grep -q 'unreferenced object.*(size 16384)'; then
	echo "ok - splat-gate-selftest-leak"
else
	echo "not ok - splat-gate-selftest-leak # gate failed, but not on the leak"
	printf '%s\n' "$out"
fi
rmmod refaccel_splat
# Keep the leak out of anything that runs later (its scans reported it).
"$gate" forget
