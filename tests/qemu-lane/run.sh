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
#   REFACCEL_LANE_MIGRATION
#                        on (default): -device vfio-pci,...,enable-migration=on
#                        and QEMU must use the type1 container's dirty
#                        tracking (test LABEL/type1-dirty-tracking);
#                        auto: no enable-migration= (QEMU's default, auto)
#                        and QEMU must use the device's DMA logging (test
#                        LABEL/device-dirty-tracking); needs a kernel with
#                        IOMMUFD (the own kernel)
#   REFACCEL_LANE_BACKEND
#                        container (default): the legacy VFIO container;
#                        iommufd: -object iommufd + iommufd= on the device
#   REFACCEL_LANE_UNBOUNDED
#                        1: run the plan of a VM whose refaccel functions
#                        have quiesce-unbounded=on (tools/vm/run --dev-opts
#                        ",testctl=on,quiesce-unbounded=on") instead of the
#                        normal plan: unbounded-refused (module loaded
#                        without allow_unbounded_quiesce: QEMU must refuse
#                        to migrate) and unbounded-optin (reloaded with
#                        allow_unbounded_quiesce=1: it must migrate); needs
#                        REFACCEL_LANE_MIGRATION=auto.  Default 0.
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
		"# migrations started: "*)
			migrations=${l#"# migrations started: "}
			echo "$l"
			;;
		"# "*) echo "$l" ;;
		__rc=*) rc=${l#__rc=} ;;
		*) echo "# $l" ;;
		esac
	done
}

# The kernel log since the last call, in $klog (kept whole for the splat
# gate).  Not in a subshell: klog_seen must advance.
klog_seen=0
klog=
klog_new() {
	local all
	all=$(dmesg 2>/dev/null)
	klog=$(printf '%s\n' "$all" | tail -n +$((klog_seen + 1)))
	klog_seen=$(printf '%s\n' "$all" | wc -l)
}

dmesg_delta() {	# print the new kernel log lines as comments
	klog_new
	[ -z "$klog" ] || printf '%s\n' "$klog" | sed 's/^/# dmesg: /'
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
dirty-stream|precopy-iters|--iterations 6 --stream-iterations 6 --append "stream=256"
dtlose|precopy-iters|--iterations 4 --stream-iterations 4 --append "mode=dtlose stream=256 timeout=10"
postcopy|postcopy|
migration-events|migration-events|
multifd|multifd|--multifd-channels 4
switchover-ack|pingpong|--switchover-ack-trace
no-switchover-ack|no-switchover-ack|
pingpong-20|pingpong-n|--hops 20
cancel-phases|cancel-phases|
downtime-idle|downtime-size|--append "mode=nodev"
downtime-busy|downtime-size|
'
# The plan of REFACCEL_LANE_UNBOUNDED=1 (functions with CAPS.
# QUIESCE_UNBOUNDED): each scenario first reloads the module with the
# parameters ko_params gives (see unbounded_setup below).
unbounded=${REFACCEL_LANE_UNBOUNDED:-0}
plan_unbounded='
unbounded-refused|refused|--dirty-tracking ""
unbounded-optin|migrate|
'
ko_params() {	# ko_params LABEL: insmod parameters of its scenario
	case "$1" in
	unbounded-optin) echo allow_unbounded_quiesce=1 ;;
	*) echo "" ;;
	esac
}
case "$unbounded" in
0)	;;
1)	plan=$plan_unbounded
	if [ "${REFACCEL_LANE_MIGRATION:-on}" != auto ]; then
		echo "# qemu-lane: REFACCEL_LANE_UNBOUNDED=1 needs REFACCEL_LANE_MIGRATION=auto"
		exit 2
	fi ;;
*)	echo "# qemu-lane: REFACCEL_LANE_UNBOUNDED must be 0 or 1"; exit 2 ;;
esac
labels=${QEMU_LANE_SCENARIOS:-all}
[ $# -gt 0 ] && labels="$*"
[ "$labels" = all ] && labels=$(echo "$plan" | cut -d'|' -f1 | xargs)
logdir=${QEMU_LANE_LOGDIR:-$(mktemp -d /tmp/qemu-lane.XXXXXX)}
mkdir -p "$logdir"

# The mode: which enable-migration, which backend, which dirty tracking
# QEMU must use (qmp_migrate.py checks it from its -trace output).
migration=${REFACCEL_LANE_MIGRATION:-on}
backend=${REFACCEL_LANE_BACKEND:-container}
mode_args=(--backend "$backend")
case "$migration" in
on)	mode_args+=(--enable-migration on)
	# type1 reports every pinned page; iommufd without IOMMU dirty
	# tracking reports nothing at all (QEMU marks all RAM dirty itself)
	[ "$backend" = container ] && mode_args+=(--dirty-tracking type1) ;;
auto)	mode_args+=(--enable-migration "" --dirty-tracking device) ;;
*)	echo "# qemu-lane: REFACCEL_LANE_MIGRATION must be on or auto"; exit 2 ;;
esac
case "$backend" in
container|iommufd) ;;
*)	echo "# qemu-lane: REFACCEL_LANE_BACKEND must be container or iommufd"; exit 2 ;;
esac

echo "# qemu-lane: kernel $(uname -r), $("$qemu" --version | head -n1)"
echo "# qemu-lane: guest ${guest:-idle SeaBIOS}, logs in $logdir"
echo "# qemu-lane: $(grep MemTotal /proc/meminfo), $(nproc) CPUs"
echo "# qemu-lane: mode enable-migration=$migration backend=$backend${REFACCEL_LANE_UNBOUNDED:+ unbounded=$unbounded}"
dmesg -c >/dev/null 2>&1
tests/splat-gate.sh begin

if tools/vm/bind.sh refaccel-vfio-pci 2>&1 | sed 's/^/# /'; then
	tap ok bind-refaccel-vfio-pci
else
	tap not-ok bind-refaccel-vfio-pci
fi
# The driver's DMA logging (dirty.c; log_ops only with CONFIG_IOMMUFD_DRIVER)
# logs start, stop and every request it refuses with dev_dbg: with the
# module and function names prefixed (+pmf) they are counted per scenario
# below.
ddc=/proc/dynamic_debug/control
[ -w $ddc ] || ddc=/sys/kernel/debug/dynamic_debug/control
dyndbg_on() {	# again after every load of the module
	local nsites
	echo 'module refaccel_vfio_pci file dirty.c +pmf' >$ddc 2>/dev/null
	nsites=$(grep -c '/dirty\.c:[0-9]* \[refaccel_vfio_pci\]' $ddc 2>/dev/null)
	echo "# qemu-lane: dynamic debug: ${nsites:-0} call sites of dirty.c in refaccel_vfio_pci on (+pmf)"
}
dyndbg_on
# What the driver decided at bind time (log_ops registered or why not).
klog_bind=$(dmesg | grep -E 'refaccel-vfio-pci [0-9a-f:.]+: DMA dirty tracking: ')
[ -z "$klog_bind" ] || printf '%s\n' "$klog_bind" | sed 's/^/# qemu-lane: /'
# The probe lines of a function with CAPS.QUIESCE_UNBOUNDED.
unb_pat='refaccel-vfio-pci [0-9a-f:.]+: quiesce may never end \(CAPS\.QUIESCE_UNBOUNDED\): '
if [ "$unbounded" = 1 ]; then
	# every scenario reloads the module and checks what probe said
	dmesg | grep -E "$unb_pat" | sed 's/^/# qemu-lane: /'
elif [ "$migration" = auto ]; then
	if [ -n "$klog_bind" ] && ! printf '%s\n' "$klog_bind" | grep -vq 'log_ops registered'; then
		tap ok driver-log-ops-registered
	else
		tap not-ok driver-log-ops-registered "enable-migration=auto needs the driver's DMA logging"
	fi
fi
if [ "$backend" = iommufd ] && [ ! -c /dev/iommu ]; then
	tap not-ok backend-iommufd "no /dev/iommu: this kernel has no IOMMUFD"
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
if [ "$unbounded" = 1 ]; then
	# the VM must have been booted with quiesce-unbounded=on
	klog_unb=$(dmesg | grep -E "$unb_pat")
	missing=
	for f in "${bdfs[@]}"; do
		printf '%s\n' "$klog_unb" | grep -q "refaccel-vfio-pci $f: " || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		tap ok unbounded-caps "${#bdfs[@]} functions with CAPS.QUIESCE_UNBOUNDED"
	else
		tap not-ok unbounded-caps "no CAPS.QUIESCE_UNBOUNDED probe line for$missing: boot the VM with --dev-opts \",testctl=on,quiesce-unbounded=on\""
	fi
fi
lspci -vv -s "$a" 2>/dev/null | grep -E '^[0-9a-f]|Region|MSI-X|Vector table|PBA' | sed 's/^/# lspci A: /'
dmesg_delta >/dev/null

# The dev_dbg lines of dirty.c, with dynamic debug's +mf prefix:
# "refaccel_vfio_pci:FUNC: refaccel-vfio-pci BDF: ..."
dbg_pat='refaccel_vfio_pci:[A-Za-z0-9_]+: refaccel-vfio-pci [0-9a-f:.]+: '

# driver_logging LABEL SCENARIO LINES: summarize the driver's DMA logging
# lines of a scenario; with device dirty tracking expected, a scenario that
# migrates must show the driver starting and stopping the logging, and no
# request it refused.  (A report that succeeds logs nothing: QEMU's
# vfio_get_dirty_bitmap traces count those, see qmp_migrate.py.)
driver_logging() {
	local label=$1 sc=$2 lines=$3 nl starts stops refused
	nl=$(printf '%s' "$lines" | grep -c .)
	if [ "$nl" -gt 0 ]; then
		echo "# $label: $nl DMA logging debug lines from the driver (function, message):"
		printf '%s\n' "$lines" | sed -E 's/.*refaccel_vfio_pci:[A-Za-z0-9_]+: refaccel-vfio-pci ([0-9a-f:.]+): ([^:0-9]*).*/\1 \2/' |
			sort | uniq -c | sed 's/^ */#   /'
		printf '%s\n' "$lines" | head -n 4 | sed 's/^/# dmesg: /'
		[ "$nl" -gt 8 ] && echo "# dmesg: ..."
		[ "$nl" -gt 4 ] && printf '%s\n' "$lines" | tail -n $((nl > 8 ? 4 : nl - 4)) | sed 's/^/# dmesg: /'
	fi
	[ "$migration" = auto ] || return 0
	# no migration, no logging
	[ "$sc" = stop-cont ] || [ "$sc" = refused ] && return 0
	starts=$(printf '%s\n' "$lines" | grep -c "$dbg_start")
	stops=$(printf '%s\n' "$lines" | grep -c "$dbg_stop")
	refused=$(printf '%s\n' "$lines" | grep -Ec "$dbg_refused")
	if [ "$starts" -gt 0 ] && [ "$stops" -gt 0 ] && [ "$refused" = 0 ]; then
		tap ok "$label/driver-dma-logging" "$starts start(s), $stops stop(s)"
	else
		tap not-ok "$label/driver-dma-logging" "$starts start(s), $stops stop(s), $refused refused request(s) in the driver's debug log"
	fi
}
# The messages of dirty.c: start, stop, and the requests it refuses.
dbg_start=': DMA logging started: '
dbg_stop=': DMA logging stopped$'
dbg_refused=': DMA logging( report)? .*(not a power|empty range|already started|span more|not aligned|not inside|while not started)'

# Lines the driver logs when an arc failed or a reset cut a migration
# short: then QEMU reset the device behind the guest's back.
reset_pat='refaccel-vfio-pci [0-9a-f:.]+: (arc .* failed|reset in migration state)'

# unbounded_setup LABEL: reload the module with the parameters of LABEL
# (ko_params; the driver reads allow_unbounded_quiesce at probe, so every
# function is probed again), then check what probe said for every
# function: without the opt-in "migration not offered" and bound without
# migration, with it "migration offered", bound with migration and (auto)
# log_ops registered.  Returns 1 if the scenario cannot run.
unbounded_setup() {
	local label=$1 params want bound tname f bad='' p rc
	params=$(ko_params "$label")
	dmesg_delta
	echo "# $label: rmmod refaccel_vfio_pci, then bind.sh with REFACCEL_KO_PARAMS=\"$params\""
	# (a module still in use stays: bind.sh then warns, the check fails)
	rmmod refaccel_vfio_pci 2>&1 | sed 's/^/# /'
	REFACCEL_KO_PARAMS=$params tools/vm/bind.sh refaccel-vfio-pci 2>&1 | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	p=$(cat /sys/module/refaccel_vfio_pci/parameters/allow_unbounded_quiesce 2>/dev/null)
	case "$params" in
	*allow_unbounded_quiesce=1*) want=Y ;;
	*) want=N ;;
	esac
	if [ "$rc" = 0 ] && [ "$p" = "$want" ]; then
		tap ok "$label/module-reload" "allow_unbounded_quiesce=$p"
	else
		tap not-ok "$label/module-reload" "bind.sh exited with $rc, allow_unbounded_quiesce=${p:-?}, want $want"
		return 1
	fi
	dyndbg_on
	klog_new
	[ -z "$klog" ] || printf '%s\n' "$klog" | sed 's/^/# dmesg: /'
	if [ "$want" = Y ]; then
		want='migration offered, allow_unbounded_quiesce is set'
		bound='migration supported'
		tname=probe-migration-offered
	else
		want='migration not offered; load with allow_unbounded_quiesce=1 to opt in'
		bound='migration not supported'
		tname=probe-migration-not-offered
	fi
	for f in "${bdfs[@]}"; do
		printf '%s\n' "$klog" | grep -Fq "refaccel-vfio-pci $f: quiesce may never end (CAPS.QUIESCE_UNBOUNDED): $want" &&
			printf '%s\n' "$klog" | grep -Eq "refaccel-vfio-pci $f: bound, .*$bound" ||
			bad="$bad $f"
	done
	if [ -z "$bad" ]; then
		tap ok "$label/$tname" "${#bdfs[@]} functions: \"$want\", $bound"
	else
		tap not-ok "$label/$tname" "no \"$want\" + \"$bound\" probe lines for$bad"
		return 1
	fi
	# What the private quiesce feature tells userspace: F_UNBOUNDED alone
	# (the reason there is no migration), or F_UNBOUNDED | F_OPTED_IN.
	bad=
	for f in "${bdfs[@]}"; do
		out=$(REFACCEL_BDF=$f "$top/tools/testing/selftests/vfio-mig/refaccel_func_test" \
			-t quiesce_feature_says_why 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed 's/^/# /'
		[ "$rc" = 0 ] && printf '%s\n' "$out" |
			grep -E '^ok 1 refaccel\.quiesce_feature_says_why$' >/dev/null ||
			bad="$bad $f"
	done
	if [ -z "$bad" ]; then
		tap ok "$label/quiesce-feature-flags" "${#bdfs[@]} functions"
	else
		tap not-ok "$label/quiesce-feature-flags" "refaccel_func_test quiesce_feature_says_why failed or skipped on$bad"
	fi
	if [ "$tname" = probe-migration-offered ] && [ "$migration" = auto ]; then
		bad=
		for f in "${bdfs[@]}"; do
			printf '%s\n' "$klog" | grep -Fq "refaccel-vfio-pci $f: DMA dirty tracking: device tracker, log_ops registered" ||
				bad="$bad $f"
		done
		if [ -z "$bad" ]; then
			tap ok "$label/driver-log-ops-registered"
		else
			tap not-ok "$label/driver-log-ops-registered" "no log_ops for$bad: enable-migration=auto needs the driver's DMA logging"
			return 1
		fi
	fi
	return 0
}

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
	if [ "$unbounded" = 1 ] && ! unbounded_setup "$label"; then
		echo "# --- $label: not run (module reload or probe check failed) ---"
		continue
	fi
	extra=$(echo "$extra" | sed -e "s/A2/$a2/g; s/B2/$b2/g" \
		-e "s/--host-a A+/--host-a $a+/; s/--host-b B+/--host-b $b+/")
	args=(--qemu "$qemu" --host-a "$a" --host-b "$b" "${mode_args[@]}")
	[ -n "$guest" ] && args+=(--guest "$guest")
	# QEMU_LANE_ARGS and the plan are shell words: quotes work.
	eval "args+=(${QEMU_LANE_ARGS:-} $extra)"
	echo "# --- $label: $sc ${extra} ---"
	rc=
	migrations=
	before=$nfail
	tap_lines < <(python3 "$here/qmp_migrate.py" "${args[@]}" \
		--label "$label" --workdir "$logdir/$label" "$sc" 2>&1; echo "__rc=$?")
	# a scenario that died without saying which test failed
	if [ "$rc" != 0 ] && [ "$nfail" = "$before" ]; then
		tap not-ok "$label" "qmp_migrate.py exited with ${rc:-?}"
	fi
	klog_new
	dlog=$(printf '%s\n' "$klog" | grep -E "$dbg_pat")
	[ -n "$klog" ] && printf '%s\n' "$klog" | grep -Ev "$dbg_pat" | sed 's/^/# dmesg: /'
	driver_logging "$label" "$sc" "$dlog"
	# A failed arc or a reset mid-migration fails wherever it shows; no
	# such line is a fact only where a migration ran (not after a refusal).
	if printf '%s\n' "$klog" | grep -Eq "$reset_pat"; then
		tap not-ok "$label/no-device-reset" "the driver logged a failed arc or a reset mid-migration"
	elif [ "${migrations:-0}" -gt 0 ]; then
		tap ok "$label/no-device-reset"
	else
		echo "# $label/no-device-reset: not counted, no migration started (${migrations:-no count printed})"
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
