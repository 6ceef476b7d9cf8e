#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM: the driver's tracepoints (events/refaccel_vfio/, see
# drivers/vfio/pci/refaccel/trace.h) seen through tracefs.
#
#   trace-check.sh begin          clear the trace buffer, enable the events
#   trace-check.sh check [dma]    disable them and print one "ok - " /
#                                 "not ok - " line per event class that a
#                                 migration must have produced (with dma:
#                                 DMA logging reports too), for
#                                 tests/vm-suite.sh to number
#   trace-check.sh debugfs        the same for the debugfs status files of
#                                 the functions that migrated
set -uo pipefail

t=/sys/kernel/tracing
[ -d $t/events ] || t=/sys/kernel/debug/tracing
[ -d $t/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
[ -d /sys/kernel/tracing/events ] && t=/sys/kernel/tracing
ev=$t/events/refaccel_vfio

case "${1:-}" in
begin)
	[ -d "$ev" ] || exit 0
	: >$t/trace
	echo 1 >"$ev/enable"
	;;
check)
	if [ ! -d "$ev" ]; then
		echo "not ok - trace-events: no $ev (module not loaded, or no tracefs)"
		exit 0
	fi
	echo 0 >"$ev/enable"
	trace=$(grep -E ' refaccel_[a-z_]+: ' $t/trace)
	echo "# trace: $(printf '%s\n' "$trace" | grep -c .) events"
	expect() {	# expect NAME REGEX WHAT
		local line
		line=$(printf '%s\n' "$trace" | grep -E -m1 "$2")
		if [ -n "$line" ]; then
			echo "ok - trace-$1"
			echo "# trace: $line"
		else
			echo "not ok - trace-$1 (no event: $3)"
		fi
	}
	expect arc 'refaccel_arc: .* RUNNING -> RUNNING_P2P: [0-9]+ us, err 0' "an arc RUNNING -> RUNNING_P2P"
	expect quiesce 'refaccel_quiesce: .* bound [0-9]+ ms, (drain|park): [0-9]+ us, 0 in flight, [0-9]+ parked, err 0' "a successful quiesce"
	expect data-read 'refaccel_data: .* read [0-9]+ bytes: [1-9][0-9]*' "a data_fd read with data"
	expect data-write 'refaccel_data: .* write [0-9]+ bytes: [1-9][0-9]*' "a data_fd write"
	expect record-saved 'refaccel_record: .* saved record [0-9]+: STATE, [1-9][0-9]* bytes' "a STATE record saved"
	expect record-loaded 'refaccel_record: .* loaded record [0-9]+: END, [1-9][0-9]* bytes' "an END record loaded"
	expect reset 'refaccel_reset: .* reset [0-9]+' "a reset"
	if [ "${2:-}" = dma ]; then
		expect dma-report 'refaccel_dma_report: .* dirty bytes, err 0' "a DMA logging report"
	fi
	;;
debugfs)
	# <debugfs>/refaccel_vfio_pci/<bdf>/status of the functions that
	# migrated: the state, the bound and counters that moved.
	d=/sys/kernel/debug/refaccel_vfio_pci
	[ -d $d ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	n=0
	for f in $d/*/status; do
		[ -r "$f" ] || continue
		grep -q '^arcs: [1-9]' "$f" || continue
		n=$((n + 1))
		sed "s|^|# debugfs ${f#"$d/"}: |" "$f"
		if grep -qx 'state: RUNNING' "$f" && grep -q '^quiesces: [1-9]' "$f" &&
		   grep -q '^quiesce_timeout_ms: [1-9]' "$f" &&
		   grep -Eq '^bytes_(saved|loaded): [1-9]' "$f"; then
			echo "ok - debugfs-status ${f#"$d/"}"
		else
			echo "not ok - debugfs-status ${f#"$d/"} (state, quiesces, bound or bytes missing)"
		fi
		# every failed arc is in exactly one errno slot
		fails=$(sed -n 's/^arc_failures: //p' "$f")
		byerr=$(grep '^arc_failures_by_errno: ' "$f" | tr ' ' '\n' |
			awk -F= 'NF == 2 { s += $2; n++ } END { if (n) print s }')
		# (0 = 0 proves nothing: say so instead of passing)
		if [ "$fails" = 0 ] && [ "${byerr:-x}" = 0 ]; then
			echo "ok - debugfs-failures-by-errno ${f#"$d/"} # SKIP no failed arc since probe: nothing to classify"
		elif [ -n "$fails" ] && [ "$fails" = "${byerr:-x}" ]; then
			echo "ok - debugfs-failures-by-errno ${f#"$d/"} # $fails failed arcs"
		else
			echo "not ok - debugfs-failures-by-errno ${f#"$d/"} (arc_failures ${fails:-?}, by errno ${byerr:-?})"
		fi
	done
	[ $n -gt 0 ] || echo "not ok - debugfs-status (no $d/*/status with arcs)"
	;;
*)
	echo "usage: $0 begin|check [dma]|debugfs" >&2
	exit 2
	;;
esac
