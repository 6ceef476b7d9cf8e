#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (see tools/vm/run): binds the refaccel functions
# to refaccel-vfio-pci and runs every kselftest binary against them, then to
# stock vfio-pci for the functional tests alone, then checks the kernel log.  Output is TAP; tests/check.sh counts it.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
st=tools/testing/selftests/vfio-mig
n=0
# Built for the running kernel: the driver (REFACCEL_KO) and the test-only
# modules (REFACCEL_TESTMODS, see scripts/build-test-modules.sh).
ko=${REFACCEL_KO:-drivers/vfio/pci/refaccel/refaccel-vfio-pci.ko}
testmods=${REFACCEL_TESTMODS:-}
if [ -n "$testmods" ] && [ -f "$testmods/modules.env" ]; then
	# shellcheck disable=SC1091
	. "$testmods/modules.env"
fi

tap() {	# tap ok|not-ok NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2${3:+ # $3}"
	else
		echo "not ok $n $2${3:+ # $3}"
	fi
}

# tap_lines [--keep]: number "ok - NAME" / "not ok - NAME" lines of a
# helper; other lines become comments, or with --keep pass unchanged (the
# harness result lines tests/ksft-run.sh forwards, counted as they are).
tap_lines() {
	local l other='# '
	[ "${1:-}" = --keep ] && other=
	while IFS= read -r l; do
		case "$l" in
		"ok - "*) tap ok "${l#ok - }" ;;
		"not ok - "*) tap not-ok "${l#not ok - }" ;;
		*) echo "$other$l" ;;
		esac
	done
}

# helper NAME CMD...: the result lines of a helper script (the DMA logging
# benchmark, the trace and debugfs checks, KUnit, the splat self-test).
# One that dies part way fails here: an exit status other than 0 without
# a failed result of its own, or no result line at all.
helper() {
	# (not "n": that is tap's counter)
	local name=$1 out rc nres nfail
	shift
	out=$(mktemp /tmp/vm-suite-helper.XXXXXX)
	"$@" >"$out" 2>&1
	rc=$?
	tap_lines <"$out"
	nres=$(grep -Ec '^(not )?ok - ' "$out")
	nfail=$(grep -Ec '^not ok - ' "$out")
	rm -f "$out"
	if [ "$nres" -eq 0 ]; then
		tap not-ok "$name" "printed no result (exit $rc)"
	elif [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		tap not-ok "$name" "exit $rc without a failed result: it died part way"
	fi
}

# ksft LABEL BINARY: run one kselftest binary through tests/ksft-run.sh.
# Its result lines keep the harness's numbers with [LABEL] after them; the
# verdict on the run as a whole (exit status, plan against the results
# printed, the time limit), when it is a result line, is numbered into
# this script's sequence, so a binary that dies, hangs or runs nothing
# fails here.
ksft() {
	tap_lines --keep < <(tests/ksft-run.sh "$@")
}

# took WHAT T0: how long WHAT ran since $SECONDS was T0 (where a lane's
# minutes go; never a verdict).
took() {
	echo "# time: $1 $((SECONDS - $2)) s (suite at $SECONDS s)"
}

echo "# vm-suite: kernel $(uname -r), backend ${VFIO_MIG_BACKEND:-container}"
dmesg -c >/dev/null
tests/splat-gate.sh begin

# The module must carry the PCI alias of the device (modinfo, as users see it).
if modinfo "$ko" | grep -q '^alias:.*vfio_pci:v00001234d000011AC'; then
	tap ok modinfo-alias
else
	tap not-ok modinfo-alias
fi

# REFACCEL_SUITE_DRIVERS: the drivers whose runs this lane makes (default
# both).  The run on stock vfio-pci checks the device model, which does not
# change with the kernel: the slow own-kernel lane leaves it to the stock one.
drivers=${REFACCEL_SUITE_DRIVERS:-refaccel-vfio-pci vfio-pci}
case " $drivers " in
*" vfio-pci "*) ;;
*) echo "# functions on stock vfio-pci: refaccel_func_test runs on the stock lane, not here" ;;
esac
# Every binary the Makefile builds: one that is missing fails, it does not
# quietly run fewer tests.
progs=$(make -s --no-print-directory -C "$st" list-tests 2>/dev/null)
[ -n "$progs" ] || tap not-ok "selftest-list" "make -C $st list-tests printed nothing"
for drv in $drivers; do
	echo "# --- functions bound to $drv ---"
	if ! tools/vm/bind.sh "$drv" | sed 's/^/# /'; then
		tap not-ok "bind-$drv"
		continue
	fi
	nbound=$(lspci -k -d 1234:11ac | grep -c "Kernel driver in use: $drv")
	if [ "$nbound" -ge 2 ]; then
		tap ok "lspci-$drv" "$nbound functions in use by $drv"
	else
		tap not-ok "lspci-$drv" "only $nbound functions in use by $drv"
	fi
	for t in $progs; do
		t=$st/$t
		case "${t##*/}" in mtty_*) continue ;; esac	# below, once
		# On stock vfio-pci only the device's functions can be
		# tested (DMA, MSI-X, reset): every migration, dirty and PRI
		# test would SKIP, and counting those SKIPs again says
		# nothing the refaccel-vfio-pci run has not.
		if [ "$drv" = vfio-pci ] && [ "${t##*/}" != refaccel_func_test ]; then
			continue
		fi
		if [ ! -x "$t" ]; then
			tap not-ok "${t##*/}-$drv" "not built: $t missing"
			continue
		fi
		echo "# running ${t##*/} on $drv"
		t0=$SECONDS
		ksft "$drv" "$t"
		took "${t##*/}/$drv" "$t0"
	done
done

# Upstream's own VFIO selftests (Linux 7.3's tools/testing/selftests/vfio
# with our libvfio driver, see scripts/build-upstream-vfio-selftests.sh) on
# refaccel-vfio-pci, in every IOMMU mode the kernel offers.
if [ -n "${REFACCEL_UPSTREAM_VFIO_BIN:-}" ]; then
	echo "# --- upstream VFIO selftests ---"
	uv=$(mktemp /tmp/upstream-vfio.XXXXXX)
	t0=$SECONDS
	tests/upstream-vfio.sh "$REFACCEL_UPSTREAM_VFIO_BIN" >"$uv" 2>&1
	took upstream-vfio "$t0"
	tap_lines --keep <"$uv"
	grep -q '^# upstream-vfio: done' "$uv" ||
		tap not-ok upstream-vfio "tests/upstream-vfio.sh did not run to the end"
	rm -f "$uv"
else
	tap ok upstream-vfio "SKIP REFACCEL_UPSTREAM_VFIO_BIN not set (scripts/build-upstream-vfio-selftests.sh builds them)"
fi

# The uAPI-level live migration A -> B (what `make demo` showed before the
# QEMU lane existed), and the stream it saved, checked by vmig-decode.
echo "# --- uAPI demo ---"
t0=$SECONDS
tests/trace-check.sh begin
if tools/vm/bind.sh refaccel-vfio-pci >/dev/null &&
   "$st/refaccel_migrate_demo" -o /tmp/refaccel-stream.bin 2>&1 | sed 's/^/# /' &&
   tools/vmig-decode/vmig-decode -q /tmp/refaccel-stream.bin | sed 's/^/# /'; then
	tap ok uapi-demo
else
	tap not-ok uapi-demo
fi

# DMA_LOGGING_REPORT against reading a bitmap of the same size from memory
# (1 GiB and 16 GiB; about a second).  Timings never fail; a wrong bitmap
# does.  SKIPs where the kernel or the function offers no DMA logging.
took uapi-demo "$t0"
echo "# --- DMA logging benchmark ---"
t0=$SECONDS
# REFACCEL_DIRTY_BENCH_ARGS: fewer repetitions where timings mean little.
# shellcheck disable=SC2086
helper dirty-bench tests/dirty-bench.sh ${REFACCEL_DIRTY_BENCH_ARGS:-}

# The migration benchmark of `make bench` (tests/bench.sh), once on a tiny
# run (--quick: a few seconds), so that it cannot rot: a failing ioctl, a
# load that does not restore SRAM or a stream that does not parse fails;
# its timings never do.
took dirty-bench "$t0"
echo "# --- migration benchmark (--quick) ---"
t0=$SECONDS
mig_bench() {
	local log rc why
	log=$(mktemp /tmp/mig-bench.XXXXXX)
	"$st/refaccel_mig_bench" --quick --json /tmp/mig-bench.json >"$log" 2>&1
	rc=$?
	cat "$log"	# tap_lines makes comments of it
	why=$(sed -n 's/^RESULT: [A-Z]* (\(.*\))$/\1/p' "$log" | tail -n 1)
	rm -f "$log"
	case "$rc" in
	0) echo "ok - mig-bench" ;;
	4) echo "ok - mig-bench # SKIP ${why:-no reason given}" ;;
	*) echo "not ok - mig-bench (exit $rc: ${why:-no RESULT line})" ;;
	esac
}
if tools/vm/bind.sh refaccel-vfio-pci >/dev/null 2>&1; then
	tap_lines < <(mig_bench)
else
	tap_lines < <(echo "not ok - mig-bench (tools/vm/bind.sh refaccel-vfio-pci failed)")
fi

took mig-bench "$t0"

# The driver's tracepoints through tracefs: what the demo's migration and
# (where DMA logging is offered) the benchmark must have produced.
dma=
[ -n "$(grep -s 'log_ops registered' <(dmesg))" ] && dma=dma
helper trace-check tests/trace-check.sh check $dma
helper debugfs-check tests/trace-check.sh debugfs

# The kernel's mtty sample through the same migration uAPI.
if [ -n "${REFACCEL_MTTY_KO:-}" ] && [ -x "$st/mtty_mig_test" ]; then
	echo "# --- mtty ---"
	t0=$SECONDS
	for dep in $(modinfo -F depends "$REFACCEL_MTTY_KO" | tr ',' ' '); do
		modprobe "$dep"
	done
	if insmod "$REFACCEL_MTTY_KO"; then
		backends=container
		[ -e /dev/iommu ] && backends="container iommufd"
		for be in $backends; do
			VFIO_MIG_BACKEND=$be ksft "mtty-$be" "$st/mtty_mig_test"
		done
		rmmod mtty
		took mtty "$t0"
	else
		tap not-ok mtty-load
	fi
else
	tap ok mtty "SKIP ${REFACCEL_MTTY_SKIP:-mtty.ko or mtty_mig_test not built}"
fi

# KUnit tests of the driver's stream code and of the migration core with a
# second device (own kernel only).
if [ -n "${REFACCEL_KUNIT_KO:-}" ]; then
	echo "# --- kunit ---"
	t0=$SECONDS
	helper kunit-refaccel-stream tests/kunit/run-kunit.sh "$REFACCEL_KUNIT_KO" refaccel-stream
	if [ -n "${REFACCEL_KUNIT_CORE_KO:-}" ]; then
		helper kunit-refaccel-core tests/kunit/run-kunit.sh "$REFACCEL_KUNIT_CORE_KO" refaccel-core
	else
		tap not-ok kunit-refaccel-core "module not built"
	fi
	took kunit "$t0"
else
	tap ok kunit-refaccel-stream "SKIP ${REFACCEL_KUNIT_SKIP:-test modules not built}"
	tap ok kunit-refaccel-core "SKIP ${REFACCEL_KUNIT_SKIP:-test modules not built}"
fi

# Splat gate: the kernel log must be free of warnings, oopses, lockdep
# reports and (with kmemleak) leaks.
if tests/splat-gate.sh check; then
	tap ok dmesg-clean
else
	tap not-ok dmesg-clean
fi

# Then prove the gate works (after it ran: the real verdict is above).
if [ -n "${REFACCEL_SPLAT_KO:-}" ]; then
	helper splat-gate-selftest tests/splat/selftest.sh "$REFACCEL_SPLAT_KO"
else
	tap ok splat-gate-selftest "SKIP test modules not built"
fi
echo "# vm-suite: done"
