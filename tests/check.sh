#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: set up the host, build everything, run the static checks and
# then the whole suite inside the test VM.  Every check prints one TAP-like
# line; the last line of output is "N passed, N failed, N skipped" and the
# exit status is non-zero if anything failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${REFACCEL_OUT:-$top/out/check}
rm -rf "$out"
mkdir -p "$out"

pass=0
fail=0
skip=0
t0=$(date +%s)

summary() {
	echo "# total time $(($(date +%s) - t0)) s, logs in $out"
	echo "$pass passed, $fail failed, $skip skipped"
	[ "$fail" -eq 0 ]
	exit $?
}

# run_step NAME CMD...: run CMD with its output in $out/NAME.log.
run_step() {
	local name=$1 s
	shift
	s=$(date +%s)
	if "$@" >"$out/$name.log" 2>&1; then
		echo "ok - $name ($(($(date +%s) - s)) s)"
		pass=$((pass + 1))
		return 0
	fi
	echo "not ok - $name ($(($(date +%s) - s)) s)"
	tail -n 40 "$out/$name.log" | sed 's/^/#   /'
	fail=$((fail + 1))
	return 1
}

# A log must not contain compiler or checker diagnostics.
no_diagnostics() {
	! grep -E '(warning|error):' "$1"
}

# Host setup and builds: without them nothing else can run.
run_step setup bash scripts/setup-host.sh || summary
run_step linux-src bash scripts/prepare-linux-src.sh || summary

if run_step module-build make module; then
	run_step module-w1-clean no_diagnostics "$out/module-build.log"
fi
run_step checkpatch-strict sh -c 'o=$(make -s checkpatch 2>&1); echo "$o"; [ -z "$o" ]'
if run_step sparse make sparse; then
	run_step sparse-clean no_diagnostics "$out/sparse.log"
fi
run_step qemu-build bash tools/qemu/build-qemu.sh || summary
run_step selftests-build make selftests || summary

# The VM lane: its TAP lines are counted one by one.
s=$(date +%s)
tools/vm/run -- bash tests/vm-suite.sh >"$out/vm.log" 2>&1
rc=$?
echo "# VM run: exit $rc, $(($(date +%s) - s)) s"
cat "$out/vm.log"
vm_pass=$(grep -Ec '^ok [0-9]+ ' "$out/vm.log" | tr -d ' ')
vm_skip=$(grep -E '^ok [0-9]+ ' "$out/vm.log" | grep -c '# SKIP' | tr -d ' ')
vm_fail=$(grep -Ec '^not ok [0-9]+ ' "$out/vm.log" | tr -d ' ')
pass=$((pass + vm_pass - vm_skip))
skip=$((skip + vm_skip))
fail=$((fail + vm_fail))
if ! grep -q '^# vm-suite: done' "$out/vm.log"; then
	echo "not ok - vm-suite did not run to the end (exit $rc)"
	fail=$((fail + 1))
fi
summary
