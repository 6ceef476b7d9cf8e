#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The QEMU lane.  Runs INSIDE the test VM (tools/vm/run): Debian's stock
# QEMU is the VMM of a nested guest that owns refaccel function A through
# -device vfio-pci, and live-migrates it to a second QEMU on function B over
# a unix socket (tests/qemu-lane/qmp_migrate.py does the QMP part).
#
#   tools/vm/run --mem 3G --nfunc 4 -- bash tests/qemu-lane/run.sh [LABEL...]
#
# Output is TAP ("ok N name" / "not ok N name"), numbers as "# " comments,
# then the kernel log, and the last line is "# qemu-lane: done".  Exit
# status 1 if any test failed.
#
# Environment:
#   QEMU_LANE_SCENARIOS  labels of the plan below to run (default: all;
#                        arguments override it)
#   QEMU_LANE_GUEST      guest workload ELF (-kernel); default
#                        tools/guest/refaccel-guest.elf if it exists, else
#                        an idle SeaBIOS guest
#   QEMU_LANE_QEMU       the VMM (default /usr/bin/qemu-system-x86_64)
#   QEMU_LANE_ARGS       more qmp_migrate.py options (word-split)
#   QEMU_LANE_LOGDIR     where QEMU logs and serial logs go (default: a
#                        fresh directory under /tmp; pass a --rwdir to
#                        keep them)
#   REFACCEL_KO          the module, as for tools/vm/bind.sh
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 1
n=0
nfail=0

tap() {	# tap ok|not-ok NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2${3:+ # $3}"
	else
		nfail=$((nfail + 1))
		echo "not ok $n $2${3:+ # $3}"
	fi
}

# Number the "ok - NAME" / "not ok - NAME" lines of qmp_migrate.py.
tap_lines() {
	local l
	while IFS= read -r l; do
		case "$l" in
		"ok - "*) tap ok "${l#ok - }" ;;
		"not ok - "*) tap not-ok "${l#not ok - }" ;;
		"# "*) echo "$l" ;;
		__rc=*) rc=${l#__rc=} ;;
		*) echo "# $l" ;;
		esac
	done
}

# The kernel log since the last call (kept whole for the splat gate).
klog_seen=0
klog_new() {
	local all
	all=$(dmesg 2>/dev/null)
	printf '%s\n' "$all" | tail -n +$((klog_seen + 1))
	klog_seen=$(printf '%s\n' "$all" | wc -l)
}

dmesg_delta() {	# print the new kernel log lines as comments
	klog_new | sed 's/^/# dmesg: /'
}

qemu=${QEMU_LANE_QEMU:-/usr/bin/qemu-system-x86_64}
guest=${QEMU_LANE_GUEST-}
if [ -z "${QEMU_LANE_GUEST+set}" ] && [ -f tools/guest/refaccel-guest.elf ]; then
	guest=tools/guest/refaccel-guest.elf
fi
# The plan: LABEL|SCENARIO|qmp_migrate.py options (shell words).  A and B
# stand for the first and second function, A2 and B2 for the third and
# fourth (the two-function guest).
plan='
idle|migrate|--guest=
busy|pingpong|
precopy|precopy-iters|--iterations 4
cancel|cancel-retry|
kill-dst|kill-dst|
nodev|pingpong|--append "mode=nodev"
decodeoff|pingpong|--append "mode=decodeoff"
reboot|reset|--loops 3
stop-cont|stop-cont|--loops 20
two-functions|pingpong|--host-a A+A2 --host-b B+B2
'
labels=${QEMU_LANE_SCENARIOS:-all}
[ $# -gt 0 ] && labels="$*"
[ "$labels" = all ] && labels=$(echo "$plan" | cut -d'|' -f1 | xargs)
logdir=${QEMU_LANE_LOGDIR:-$(mktemp -d /tmp/qemu-lane.XXXXXX)}
mkdir -p "$logdir"

echo "# qemu-lane: kernel $(uname -r), $("$qemu" --version | head -n1)"
echo "# qemu-lane: guest ${guest:-idle SeaBIOS}, logs in $logdir"
echo "# qemu-lane: $(grep MemTotal /proc/meminfo), $(nproc) CPUs"
dmesg -c >/dev/null 2>&1
tests/splat-gate.sh begin

if tools/vm/bind.sh refaccel-vfio-pci 2>&1 | sed 's/^/# /'; then
	tap ok bind-refaccel-vfio-pci
else
	tap not-ok bind-refaccel-vfio-pci
fi
mapfile -t bdfs < <(for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11ac ] &&
		[ "$(basename "$(readlink -f "$d/driver" 2>/dev/null)")" = refaccel-vfio-pci ] &&
		echo "${d##*/}"
done)
if [ ${#bdfs[@]} -lt 2 ]; then
	tap not-ok two-functions "only ${#bdfs[@]} function(s) on refaccel-vfio-pci"
	dmesg_delta
	echo "# qemu-lane: done"
	exit 1
fi
a=${bdfs[0]}
b=${bdfs[1]}
a2=${bdfs[2]:-}
b2=${bdfs[3]:-}
echo "# qemu-lane: A=$a B=$b${a2:+ A2=$a2 B2=$b2}"
lspci -vv -s "$a" 2>/dev/null | grep -E '^[0-9a-f]|Region|MSI-X|Vector table|PBA' | sed 's/^/# lspci A: /'
dmesg_delta >/dev/null

# Lines the driver logs when an arc failed or a reset cut a migration
# short: then QEMU reset the device behind the guest's back.
reset_pat='refaccel-vfio-pci [0-9a-f:.]+: (arc .* failed|reset in migration state)'

for label in $labels; do
	line=$(echo "$plan" | grep "^$label|") || {
		tap not-ok "$label" "no such scenario"
		continue
	}
	sc=$(echo "$line" | cut -d'|' -f2)
	extra=$(echo "$line" | cut -d'|' -f3-)
	case "$extra" in
	*A2*|*B2*)
		if [ -z "$b2" ]; then
			tap ok "$label" "SKIP needs 4 functions on refaccel-vfio-pci, have ${#bdfs[@]}"
			continue
		fi ;;
	esac
	extra=$(echo "$extra" | sed -e "s/A2/$a2/g; s/B2/$b2/g" \
		-e "s/--host-a A+/--host-a $a+/; s/--host-b B+/--host-b $b+/")
	args=(--qemu "$qemu" --host-a "$a" --host-b "$b")
	[ -n "$guest" ] && args+=(--guest "$guest")
	# QEMU_LANE_ARGS and the plan are shell words: quotes work.
	eval "args+=(${QEMU_LANE_ARGS:-} $extra)"
	echo "# --- $label: $sc ${extra} ---"
	rc=
	before=$nfail
	tap_lines < <(python3 "$here/qmp_migrate.py" "${args[@]}" \
		--label "$label" --workdir "$logdir/$label" "$sc" 2>&1; echo "__rc=$?")
	# a scenario that died without saying which test failed
	if [ "$rc" != 0 ] && [ "$nfail" = "$before" ]; then
		tap not-ok "$label" "qmp_migrate.py exited with ${rc:-?}"
	fi
	klog=$(klog_new)
	[ -n "$klog" ] && printf '%s\n' "$klog" | sed 's/^/# dmesg: /'
	if printf '%s\n' "$klog" | grep -Eq "$reset_pat"; then
		tap not-ok "$label/no-device-reset" "the driver logged a failed arc or a reset mid-migration"
	else
		tap ok "$label/no-device-reset"
	fi
done

# No warning, oops, lockdep report or leak in the kernel log of the lane.
if tests/splat-gate.sh check; then
	tap ok qemu-lane-dmesg-clean
else
	tap not-ok qemu-lane-dmesg-clean
fi

echo "# qemu-lane: $n tests, $nfail failed"
echo "# qemu-lane: done"
[ "$nfail" -eq 0 ]
