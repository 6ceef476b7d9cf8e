#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM: the kernel-log gate of tests/vm-suite.sh.
#
#   splat-gate.sh begin           start of a run: with kmemleak, scan once
#                                 and forget what boot already leaked
#   splat-gate.sh check [MARKER]  end of a run: with kmemleak, scan and list
#                                 unreferenced objects; then match the
#                                 kernel log (only lines after the last
#                                 MARKER line, if given) for splats.
#                                 Prints the matches as "# " lines; exit 1
#                                 if there is any.
#   splat-gate.sh log-only [MARKER]
#                                 the kernel-log half of check alone
#   splat-gate.sh forget          with kmemleak, forget the leaks already
#                                 reported (no scan)
#
# A kmemleak scan of the VM's memory takes minutes on the KASAN kernel
# under TCG: the gate's own self-test (tests/splat/selftest.sh) scans only
# where kmemleak is what it tests.
#
# Matched: WARNING/BUG/Oops/GPF, lockdep ("possible circular locking",
# "possible recursive locking", "inconsistent lock state", "suspicious RCU",
# any "lockdep" line), kmemleak ("unreferenced object", "new suspected
# memory leaks"), refcount_t, list corruption, hung tasks, KASAN/UBSAN.
set -uo pipefail

pat='WARNING:|BUG:|Oops|general protection|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU|INFO: possible|lockdep|unreferenced object|new suspected memory leak|refcount_t|list_add corruption|list_del corruption|hung_task|blocked for more than|KASAN|UBSAN'
kml=/sys/kernel/debug/kmemleak

kmemleak_ready() {
	[ -e /sys/kernel/debug/kmemleak ] ||
		mount -t debugfs none /sys/kernel/debug 2>/dev/null
	[ -w $kml ]
}

case "${1:-}" in
begin)
	if kmemleak_ready; then
		echo scan >$kml && echo scan >$kml && echo clear >$kml
		echo "# splat-gate: kmemleak armed (boot-time reports cleared)"
	fi
	exit 0 ;;
forget)
	if kmemleak_ready; then
		echo clear >$kml
	fi
	exit 0 ;;
check|log-only)
	marker=${2:-}
	found=0
	if [ "$1" = check ] && kmemleak_ready; then
		# Twice: an object whose contents changed since the previous scan
		# is not reported yet.
		echo scan >$kml
		echo scan >$kml
		if grep -q 'unreferenced object' $kml; then
			sed 's/^/# kmemleak: /' $kml | head -n 60
			found=1
		fi
	fi
	if [ -n "$marker" ]; then
		log=$(dmesg | awk -v m="$marker" 'index($0, m) { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }')
	else
		log=$(dmesg)
	fi
	if printf '%s\n' "$log" | grep -E "$pat" >/tmp/splat-gate.$$; then
		sed 's/^/# splat: /' /tmp/splat-gate.$$ | head -n 60
		found=1
	fi
	rm -f /tmp/splat-gate.$$
	exit $found ;;
*)
	echo "usage: splat-gate.sh begin | check [MARKER] | log-only [MARKER] | forget" >&2
	exit 2 ;;
esac
