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

# One row per VM lane (lane_reap): name, passed, failed, skipped, seconds.
lane_rows=()
# Every failed result, "lane: line", repeated at the end: a lane's log is
# printed when the lane ends, long before the last lines a CI shows.
failed_rows=()
summary() {
	local row
	if [ ${#failed_rows[@]} -gt 0 ]; then
		echo "# failed (${#failed_rows[@]}):"
		for row in "${failed_rows[@]:0:40}"; do
			echo "#   $row"
		done
		[ ${#failed_rows[@]} -le 40 ] ||
			echo "#   ... and $((${#failed_rows[@]} - 40)) more, see the logs"
	fi
	if [ ${#lane_rows[@]} -gt 0 ]; then
		printf '# %-26s %6s %6s %6s %7s\n' lane passed failed skipped seconds
		for row in "${lane_rows[@]}"; do
			# shellcheck disable=SC2086 # the row is five words
			printf '# %-26s %6s %6s %6s %7s\n' $row
		done
	fi
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
	failed_rows+=("$name ($out/$name.log)")
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
	# Packaging (tests/packaging.sh), in temporary trees only: make
	# install/uninstall into a temporary root with depmod -b; dkms
	# add/build/install/remove in temporary dkms, source and install trees
	# (one module build), the .ko's vermagic that of the kernel's own.
	run_step packaging-install bash tests/packaging.sh install "$out/packaging-install"
	if command -v dkms >/dev/null; then
		run_step packaging-dkms bash tests/packaging.sh dkms "$out/packaging-dkms"
	else
		echo "ok - packaging-dkms # SKIP dkms not installed (scripts/setup-host.sh installs it)"
		skip=$((skip + 1))
	fi
fi
run_step checkpatch-strict sh -c 'o=$(make -s checkpatch 2>&1); echo "$o"; [ -z "$o" ]'
if run_step sparse make sparse; then
	run_step sparse-clean no_diagnostics "$out/sparse.log"
fi
run_step qemu-build bash tools/qemu/build-qemu.sh || summary
# The project's QEMU (10.0.13 from Debian's source, with the model and the
# fixes of tools/qemu/patches): the VMM of the lanes that migrate with the
# device's DMA logging, see the own-kernel lanes below.
# A copy under $out: the VM sees the host's tree and /tmp, but virtme-init
# mounts a tmpfs over /var/cache, where the build lives.
project_qemu=$(REFACCEL_QEMU_ASAN=0 bash tools/qemu/build-qemu.sh 2>/dev/null | tail -n 1)/qemu-system-x86_64
if [ ! -x "$project_qemu" ] || ! mkdir -p "$out/vmm" ||
   ! cp "$project_qemu" "$out/vmm/qemu-system-x86_64"; then
	echo "not ok - project-qemu: no qemu-system-x86_64 at '$project_qemu' to copy into $out/vmm"
	failed_rows+=("project-qemu: no VMM to copy")
	fail=$((fail + 1))
	summary
fi
project_qemu=$out/vmm/qemu-system-x86_64
# The device model on its own: registers, rings, reset rules, migration
# block, self-unplug from its own DMA, through devmem in a busybox guest
# (three boots, about 1.5 minutes).
run_step model-smoke bash tools/qemu/tests/smoke.sh
# The same under AddressSanitizer, with its own cached QEMU build (about
# 7 minutes cold, seconds after a model change): any report fails it.
run_step model-smoke-asan env REFACCEL_QEMU_ASAN=1 bash tools/qemu/tests/smoke.sh
run_step selftests-build make selftests || summary
# The documented `make -C tools/testing/selftests/vfio-mig run_tests` on the
# host (no device: SKIPs): the kernel's runner, one result per binary, the
# timeout from `settings`.
run_step kselftest-run-tests bash tests/packaging.sh run-tests
run_step tools-build make tools || summary
run_step guest-build make -C tools/guest || summary
run_step guest-build-clean no_diagnostics "$out/guest-build.log"

# vm_lane NAME SCRIPT RUN-ARGS...: boot the VM with tools/vm/run RUN-ARGS
# and run SCRIPT (tests/vm-suite.sh or tests/qemu-lane/run.sh) in it; its
# TAP lines are counted one by one, and it must end with "# <tag>: done"
# (tag: vm-suite or qemu-lane) and hold at least one result.  (Each
# kselftest binary's own exit status and plan are checked in the VM, by
# tests/ksft-run.sh: a result line of its own only for a run that is not
# whole, or that printed nothing but a skip plan.)
#
# Lanes run in the background, $lane_slots at a time: TCG runs a VM's vCPUs
# on one host thread (thread=single, see tools/vm/run), so a lane alone
# leaves the second core idle.  A lane's log is printed and counted when it
# ends; lane_drain waits for the rest.
lane_slots=${REFACCEL_LANE_SLOTS:-2}
declare -A lane_name=() lane_tag=() lane_t0=()
vm_lane() {
	local name=$1 script=$2 tag opts nfunc log pid
	shift 2
	# testctl=on: the fault-injection registers the robustness tests need;
	# pri=on (the VM suites): the page request block the PRI tests need;
	# four functions (the VM suites): the P2P test migrates a pair of
	# functions that DMA into each other to the other pair; 3 GiB: the
	# upstream driver tests pin 1 GiB.
	case "$script" in
	*qemu-lane*) tag=qemu-lane opts=",testctl=on" nfunc=() ;;
	*) tag=vm-suite opts=",testctl=on,pri=on" nfunc=(--nfunc 4 --mem 3G) ;;
	esac
	while [ ${#lane_name[@]} -ge "$lane_slots" ]; do
		lane_reap
	done
	log=$out/$name.log
	# Through a pipe: something in the VM stack reopens stderr at offset 0
	# (QEMU's vtd fault lines overwrote the first lines of the log).
	(
		tools/vm/run --dev-opts "$opts" "${nfunc[@]}" "$@" -- bash "$script" 2>&1 | cat >"$log"
		echo "${PIPESTATUS[0]}" >"$log.rc"
	) &
	pid=$!
	lane_name[$pid]=$name
	lane_tag[$pid]=$tag
	lane_t0[$pid]=$(date +%s)
	echo "# $name: started"
}

# lane_reap: wait for one lane to end, print and count its log.
lane_reap() {
	local pid name tag log rc vm_pass vm_skip vm_fail secs fail0 row
	wait -n -p pid "${!lane_name[@]}"
	name=${lane_name[$pid]}
	tag=${lane_tag[$pid]}
	log=$out/$name.log
	rc=$(cat "$log.rc" 2>/dev/null || echo '?')
	secs=$(($(date +%s) - ${lane_t0[$pid]}))
	fail0=$fail
	echo "# $name: exit $rc, $secs s"
	unset "lane_name[$pid]" "lane_tag[$pid]" "lane_t0[$pid]"
	cat "$log"
	vm_pass=$(grep -Ec '^ok [0-9]+ ' "$log" | tr -d ' ')
	vm_skip=$(grep -E '^ok [0-9]+ ' "$log" | grep -c '# SKIP' | tr -d ' ')
	vm_fail=$(grep -Ec '^not ok [0-9]+ ' "$log" | tr -d ' ')
	while IFS= read -r row; do
		failed_rows+=("$name: $row")
	done < <(grep -E '^not ok [0-9]+ ' "$log" | cut -c1-200)
	pass=$((pass + vm_pass - vm_skip))
	skip=$((skip + vm_skip))
	fail=$((fail + vm_fail))
	if ! grep -q "^# $tag: done" "$log"; then
		echo "not ok - $name: $tag did not run to the end (exit $rc)"
		failed_rows+=("$name: did not run to the end (exit $rc)")
		fail=$((fail + 1))
		echo "#   the last lines of $name's log:"
		tail -n 20 "$log" | sed 's/^/#     /'
	fi
	# A lane that reached its end without one result ran nothing.
	if [ $((vm_pass + vm_fail)) -eq 0 ]; then
		echo "not ok - $name: no TAP result in the VM log (exit $rc)"
		failed_rows+=("$name: no TAP result (exit $rc)")
		fail=$((fail + 1))
	fi
	lane_rows+=("$name $((vm_pass - vm_skip)) $((fail - fail0)) $vm_skip $secs")
}

lane_drain() {
	while [ ${#lane_name[@]} -gt 0 ]; do
		lane_reap
	done
}

# The QEMU lane's VM: four functions (A, B and a second pair for the
# two-function guest), room for two nested guests.
qemu_lane_args=(--mem 3G --nfunc 4)

# ---- builds for the lanes, before any lane starts (they use both cores) ----
# Test-only modules (splat gate self-test, mtty) for the stock kernel.
kdir_stock=/lib/modules/$(cat "${REFACCEL_CACHE:-/var/cache/refaccel}/kver")/build
stock_env=()
if run_step testmods-build bash scripts/build-test-modules.sh "$kdir_stock" "$out/stock"; then
	stock_env=(--env "REFACCEL_TESTMODS=$out/stock")
fi
# Upstream's VFIO selftests (Linux 7.3's, with our libvfio driver), run by
# tests/vm-suite.sh in every VM-suite lane.
upstream_env=()
if run_step upstream-vfio-build sh -c 'bash scripts/build-upstream-vfio-selftests.sh "$1" >"$2"' \
		sh "$out/upstream-vfio" "$out/upstream-vfio-bin"; then
	upstream_env=(--env "REFACCEL_UPSTREAM_VFIO_BIN=$(tail -n 1 "$out/upstream-vfio-bin")")
fi
# The own kernel: Linux 7.3 (Debian's linux-source-7.3) with IOMMUFD, VFIO
# cdev, KUnit, KASAN, lockdep and kmemleak (REFACCEL_OWN_KERNEL=0 skips its
# lanes); the driver and test modules built for it with W=1 and sparse into
# $out/own (the stock .ko in the source tree is left alone).
okdir=
if [ "${REFACCEL_OWN_KERNEL:-1}" = 1 ] &&
   run_step own-kernel-build sh -c 'bash scripts/build-kernel.sh >"$0"' "$out/own-kdir"; then
	if run_step own-module-build bash scripts/build-module.sh "$(tail -n 1 "$out/own-kdir")" "$out/own" W=1 C=1; then
		run_step own-module-w1-clean no_diagnostics "$out/own-module-build.log"
		run_step own-testmods-build bash scripts/build-test-modules.sh "$(tail -n 1 "$out/own-kdir")" "$out/own" &&
			okdir=$(tail -n 1 "$out/own-kdir")
	fi
fi

# ---- lanes ----
# Each scenario runs where it adds coverage.  Stock Debian 6.12 (no
# IOMMUFD): the whole VM suite and the whole QEMU plan on the type1
# container.  Own 7.3 kernel: the VM suite with the iommufd cdev (upstream's
# selftests there also run every type1 and iommufd-compat mode), the QEMU
# scenarios whose dirty tracking differs with the device's DMA logging on
# iommufd, and the unbounded-quiesce plan on the container (the 7.x
# group path).  The stock lane runs the full 10,000-stream fuzz; with KASAN,
# lockdep and kmemleak slowing every ioctl, the own lane 1,000.  Repeats
# that only re-measure are cut there: the device-model run on stock
# vfio-pci (stock lane only) and the DMA-logging benchmark's repetitions
# (one report per row; its checks all still run).
# The longest lanes (own kernel: KASAN under TCG boots in about 7 minutes)
# start first, so that the short stock ones fill the slot left over.
own_ko=$out/own/drivers/vfio/pci/refaccel/refaccel-vfio-pci.ko
if [ -n "$okdir" ]; then
	vm_lane vm-own-iommufd tests/vm-suite.sh --kernel "$okdir" \
		--env "REFACCEL_KO=$own_ko" --env "REFACCEL_TESTMODS=$out/own" \
		"${upstream_env[@]}" --env REFACCEL_UPSTREAM_SLOW=1 \
		--env VFIO_MIG_BACKEND=iommufd \
		--env REFACCEL_EXPECT_DMA_LOGGING=1 \
		--env REFACCEL_FUZZ_ITERS=1000 \
		--env REFACCEL_SUITE_DRIVERS=refaccel-vfio-pci \
		--env "REFACCEL_DIRTY_BENCH_ARGS=--reps 1 --mem-reps 3"
	# QEMU's default enable-migration=auto: the device's DMA logging
	# (log_ops) on iommufd, with the guest that detects lost dirty pages.
	# The VMM here is the project's QEMU, not Debian's stock 10.0.2:
	# under TCG, stock QEMU loses guest stores across a migration whose
	# dirty pages come from a device's DMA logging (the aligned fast path
	# of its dirty-bitmap sync does not re-arm the TCG TLB when every page
	# it clears was still queued; tools/qemu/patches/0001-*).  With the
	# type1 container's tracking (the stock lane) every pinned page is
	# dirty in every sync, which hides it; KVM has no such TLB.  Measured
	# on 7.3 KASAN, busy: stock 10.0.2 lost stores in 3 of 4 runs (stack
	# page: #UD on the destination; SQ ring: stale descriptors), 10.0.13
	# with the fix 0 of 3 runs, 6 migrations.
	echo "# note: the own-kernel QEMU lanes run $project_qemu as the VMM, not Debian's 10.0.2 (TCG loses guest stores with a device's DMA logging; tools/qemu/patches/0001)"
	vm_lane qemu-lane-own-iommufd tests/qemu-lane/run.sh \
		"${qemu_lane_args[@]}" --kernel "$okdir" \
		--env "REFACCEL_KO=$own_ko" \
		--env "QEMU_LANE_QEMU=$project_qemu" \
		--env REFACCEL_LANE_MIGRATION=auto \
		--env REFACCEL_LANE_BACKEND=iommufd \
		--env "QEMU_LANE_SCENARIOS=${REFACCEL_OWN_SCENARIOS:-busy dtlose}"
	# A device whose quiesce may never end: not migrated without the
	# opt-in (QEMU says why), migrated with it; through the container.
	vm_lane qemu-lane-own-unbounded tests/qemu-lane/run.sh \
		"${qemu_lane_args[@]}" --dev-opts ",testctl=on,quiesce-unbounded=on" \
		--kernel "$okdir" \
		--env "REFACCEL_KO=$own_ko" \
		--env "QEMU_LANE_QEMU=$project_qemu" \
		--env REFACCEL_LANE_MIGRATION=auto \
		--env REFACCEL_LANE_BACKEND=container \
		--env REFACCEL_LANE_UNBOUNDED=1
elif [ "${REFACCEL_OWN_KERNEL:-1}" != 1 ]; then
	echo "ok - own-kernel-lanes # SKIP REFACCEL_OWN_KERNEL=${REFACCEL_OWN_KERNEL}: vm-own-iommufd, qemu-lane-own-iommufd and qemu-lane-own-unbounded not run"
	skip=$((skip + 1))
fi
vm_lane vm tests/vm-suite.sh "${stock_env[@]}" "${upstream_env[@]}"
# Debian's stock QEMU live-migrates guests that drive the device.
vm_lane qemu-lane tests/qemu-lane/run.sh "${qemu_lane_args[@]}"
lane_drain
summary
