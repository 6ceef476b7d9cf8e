#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (tools/vm/run, with --dev-opts ",testctl=on"): bind the
# refaccel functions to refaccel-vfio-pci and run the DMA_LOGGING_REPORT
# benchmark (tools/testing/selftests/vfio-mig/refaccel_dirty_bench.c),
# printing its table.
#
#   tests/dirty-bench.sh [BENCH OPTIONS]      e.g. --sizes 64M --reps 1
#
# Environment:
#   REFACCEL_KO           the module built for the running kernel (bind.sh)
#   REFACCEL_DIRTY_BENCH  the benchmark binary (default: the one built in
#                         the selftests directory)
#
# The last lines are one TAP-like verdict and "# dirty-bench: done":
#   ok - dirty-bench                  ran; every report matched its marks
#   ok - dirty-bench # SKIP REASON    DMA logging not offered (stock kernel,
#                                     no log_ops) or no test registers
#   not ok - dirty-bench (REASON)     a real error (exit status 1)
# Timings never fail the run.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bin=${REFACCEL_DIRTY_BENCH:-tools/testing/selftests/vfio-mig/refaccel_dirty_bench}
log=$(mktemp /tmp/dirty-bench.XXXXXX)
marker="dirty-bench: start $$ $(date +%s)"
trap 'rm -f "$log"' EXIT

verdict() {	# verdict ok|skip|fail TEXT
	case "$1" in
	ok) echo "ok - dirty-bench" ;;
	skip) echo "ok - dirty-bench # SKIP $2" ;;
	fail) echo "not ok - dirty-bench ($2)" ;;
	esac
	echo "# dirty-bench: done"
	[ "$1" != fail ]
	exit $?
}

# Kernel messages since the start of this run.
new_dmesg() {
	dmesg | awk -v m="$marker" 'index($0, m) { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }'
}

echo "# dirty-bench: kernel $(uname -r), backend ${VFIO_MIG_BACKEND:-container}"
[ "$(id -u)" = 0 ] || verdict fail "must run as root, inside the test VM"
[ -x "$bin" ] || verdict fail "no $bin: build it (make selftests, or REFACCEL_DIRTY_BENCH=<path>)"
echo "$marker" >/dev/kmsg 2>/dev/null || true

if ! tools/vm/bind.sh refaccel-vfio-pci 2>&1 | sed 's/^/# /'; then
	verdict fail "tools/vm/bind.sh refaccel-vfio-pci failed"
fi
# What the driver said at probe about DMA dirty tracking (log_ops or not).
probe_msg=$(dmesg | grep -o 'DMA dirty tracking: .*' | tail -n 1)
[ -n "$probe_msg" ] && echo "# driver: $probe_msg"

s=$(date +%s)
"$bin" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "# dirty-bench: benchmark exit $rc after $(($(date +%s) - s)) s"

# The kernel log must stay clean (warnings, lockdep, leaks: splat-gate.sh).
splat=0
if ! tests/splat-gate.sh check "$marker"; then
	splat=1
	# The whole report (lock chains, stacks), not only the matched lines.
	new_dmesg | grep -v 'dirty-bench: start' | tail -n 200 | sed 's/^/# dmesg: /'
fi

case "$rc" in
0)	[ $splat = 0 ] || verdict fail "kernel log has splats, see '# splat:' lines"
	verdict ok ;;
4)	why=$(sed -n 's/^RESULT: SKIP (\(.*\))$/\1/p' "$log" | tail -n 1)
	[ $splat = 0 ] || verdict fail "skipped (${why:-?}), and the kernel log has splats"
	verdict skip "${why:-benchmark skipped}${probe_msg:+; driver: $probe_msg}" ;;
*)	new_dmesg | tail -n 40 | sed 's/^/# dmesg: /'
	why=$(sed -n 's/^RESULT: FAIL (\(.*\))$/\1/p' "$log" | tail -n 1)
	verdict fail "exit $rc: ${why:-no RESULT line}" ;;
esac
