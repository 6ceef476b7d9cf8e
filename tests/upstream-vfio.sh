#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (see tools/vm/run), like tests/vm-suite.sh: binds
# the refaccel functions to refaccel-vfio-pci and runs Linux 7.3's own VFIO
# selftests, built with our libvfio driver by
# scripts/build-upstream-vfio-selftests.sh, on the first function (all of
# them for vfio_pci_device_init_perf_test, which initialises devices in
# parallel), and our vfio_pci_device_migration_test (built with them) from
# the first function to the second.
#
#   tests/upstream-vfio.sh [BINDIR]
#
# BINDIR: the bin/ directory the build script printed; default
# $REFACCEL_UPSTREAM_VFIO_BIN, else out/upstream-vfio/bin.  REFACCEL_KO as
# for tools/vm/bind.sh; REFACCEL_UPSTREAM_DRV=vfio-pci runs them under the
# stock driver instead.
#
# Output is TAP, numbered in one sequence: each binary's results as
# tests/ksft-run.sh forwards them ("ok N [DRIVER] fixture.variant.test"),
# then its verdict on the run as a whole (exit status, plan, time limit),
# and a SKIP line for what was left out and why.  The last line is
# "# upstream-vfio: done".
#
# The BDF goes last on each command line (libvfio also reads
# $VFIO_SELFTESTS_BDF, which the argument overrides).  What the running
# kernel or the device lacks is left out with the harness's filters
# (-V variant, -T test) and reported as one SKIP line per binary:
#   * no /dev/iommu (Debian's 6.12 kernel has no IOMMUFD): the iommufd,
#     iommufd_compat_type1 and iommufd_compat_type1v2 variants, and
#     vfio_iommufd_setup_test as a whole; the tests that use libvfio's
#     default mode (iommufd) get vfio_type1v2_iommu through
#     $VFIO_SELFTESTS_IOMMU_MODE, which the build script adds to libvfio;
#   * /dev/iommu but no VFIO device cdev: the plain iommufd variants;
#   * no /dev/vfio/vfio: the vfio_type1* variants;
#   * no free 2 MiB or 1 GiB hugepage: vfio_dma_mapping_test's
#     anonymous_hugetlb_2mb or _1gb variants;
#   * a kernel before 6.18: vfio_dma_map_limit_test's overflow test, which
#     expects EOVERFLOW where older type1 returns EINVAL;
#   * no SR-IOV (sriov_totalvfs) on the function, or a PF not on vfio-pci:
#     vfio_pci_sriov_uapi_test as a whole;
#   * fewer than two functions: vfio_pci_device_migration_test as a whole
#     (it takes SRC_BDF DST_BDF).  It never runs on the mtty sample: libvfio
#     opens PCI functions by BDF, an mdev has a UUID and no PCI device node
#     (tests/vm-suite.sh migrates mtty with mtty_mig_test instead).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bindir=${1:-${REFACCEL_UPSTREAM_VFIO_BIN:-$top/out/upstream-vfio/bin}}
drv=${REFACCEL_UPSTREAM_DRV:-refaccel-vfio-pci}
n=0

emit() {	# emit ok|"not ok" REST: one numbered TAP line
	n=$((n + 1))
	echo "$1 $n $2"
}

tap() {	# tap ok|not-ok NAME [DETAIL]
	if [ "$1" = ok ]; then
		emit ok "$2${3:+ # $3}"
	else
		emit "not ok" "$2${3:+ # $3}"
	fi
}

# The output of tests/ksft-run.sh: its result lines ("ok 3 [L] name",
# numbered by the harness) and its verdict when not a comment ("not ok -
# [L] bin: ..." or a skip plan's "ok - ... # SKIP") are
# numbered into this script's sequence, the rest are comments.
tap_lines() {
	local l
	while IFS= read -r l; do
		if [[ $l =~ ^(not\ ok|ok)\ (-|[0-9]+)\ (.*)$ ]]; then
			emit "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}"
		elif [[ $l == "#"* ]]; then
			echo "$l"
		else
			echo "# $l"
		fi
	done
}

finish() {
	echo "# upstream-vfio: done"
	exit 0
}

kernel_older_than() {	# kernel_older_than MAJOR MINOR
	local maj min
	maj=$(uname -r | cut -d. -f1)
	min=$(uname -r | cut -d. -f2 | tr -cd 0-9)
	[ "$maj" -lt "$1" ] || { [ "$maj" -eq "$1" ] && [ "${min:-0}" -lt "$2" ]; }
}

free_hugepages() {	# free_hugepages KB: free hugepages of that size
	cat "/sys/kernel/mm/hugepages/hugepages-${1}kB/free_hugepages" 2>/dev/null || echo 0
}

# names BIN BDF...: the fixture, variant and test names of BIN's harness,
# from its -l listing (on stderr; the harness then exits with KSFT_SKIP).
# Some main()s open the device first; if that fails, nothing is printed.
names() {
	local b=$1 list
	shift
	list=$(timeout 120 "$b" -l "$@" 2>&1 >/dev/null)
	[ $? = 4 ] || return 0
	awk '!/^---/ { for (i = 1; i <= NF; i++) print $i }' <<<"$list" | sort -u
}

echo "# upstream-vfio: kernel $(uname -r), binaries in $bindir, driver $drv"
if [ ! -x "$bindir/vfio_pci_driver_test" ]; then
	tap not-ok build "no $bindir/vfio_pci_driver_test: run scripts/build-upstream-vfio-selftests.sh"
	finish
fi

echo "# --- functions bound to $drv ---"
if ! tools/vm/bind.sh "$drv" | sed 's/^/# /'; then
	tap not-ok "bind-$drv"
	finish
fi
mapfile -t bdfs < <(lspci -D -d 1234:11ac | awk '{ print $1 }')
if [ ${#bdfs[@]} -eq 0 ]; then
	tap not-ok "bind-$drv" "no 1234:11ac function in lspci"
	finish
fi
bdf=${bdfs[0]}
cur=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver" 2>/dev/null)")
if [ "$cur" != "$drv" ]; then
	tap not-ok "bind-$drv" "$bdf is on '${cur:-no driver}'"
	finish
fi
tap ok "bind-$drv" "${#bdfs[@]} functions, tests on $bdf"

# What the kernel offers: the IOMMU modes, by the device nodes they open.
have_type1=; have_compat=; have_iommufd=
[ -c /dev/vfio/vfio ] && have_type1=1
if [ -c /dev/iommu ]; then
	have_compat=1
	[ -d "/sys/bus/pci/devices/$bdf/vfio-dev" ] && have_iommufd=1
fi
echo "# IOMMU modes: type1 ${have_type1:-no}, iommufd compat ${have_compat:-no}, iommufd ${have_iommufd:-no}"
if [ -z "$have_type1$have_compat" ]; then
	tap ok upstream-vfio "SKIP neither /dev/vfio/vfio nor /dev/iommu: no IOMMU backend"
	finish
fi
if [ -z "$have_iommufd" ] && [ -n "$have_type1" ]; then
	export VFIO_SELFTESTS_IOMMU_MODE=vfio_type1v2_iommu
	echo "# default IOMMU mode: $VFIO_SELFTESTS_IOMMU_MODE (no iommufd)"
	grep -aq VFIO_SELFTESTS_IOMMU_MODE "$bindir/vfio_pci_driver_test" ||
		echo "# warning: these binaries ignore VFIO_SELFTESTS_IOMMU_MODE (not built by scripts/build-upstream-vfio-selftests.sh?)"
fi

# exclude REASON REGEX [BUT]: leave out the variants of the binary run_bin
# is running whose names match REGEX (and not BUT).
exclude() {
	local v vs=
	while read -r v; do
		if [ -z "$v" ] || [ -n "${gone[$v]:-}" ]; then
			continue	# blank, or already left out
		fi
		gone[$v]=1
		args+=(-V "$v")
		vs="$vs $v"
	done < <(grep -E "$2" <<<"$all" | grep -Ev "${3:-^$}")
	[ -z "$vs" ] || skipped+=("variants$vs ($1)")
}

# run_bin BIN BDF...: BIN with what cannot run here filtered out.
run_bin() {
	local name=$1 b=$bindir/$1 all why
	local -a args=() skipped=()
	local -A gone=()
	shift
	if [ ! -x "$b" ]; then
		tap not-ok "$name" "not built"
		return
	fi

	all=$(names "$b" "$@")
	if [ -z "$all" ]; then
		echo "# $name -l failed (see its run below): running it unfiltered"
	fi
	if [ -z "$have_compat" ]; then
		exclude "no /dev/iommu: kernel without IOMMUFD" '^iommufd'
	elif [ -z "$have_iommufd" ]; then
		exclude "no VFIO device cdev" '^iommufd($|_)' '^iommufd_compat'
	fi
	[ -n "$have_type1" ] || exclude "no /dev/vfio/vfio" '^vfio_type1'
	[ "$(free_hugepages 2048)" -gt 0 ] ||
		exclude "no free 2 MiB hugepage" 'hugetlb_2mb$'
	[ "$(free_hugepages 1048576)" -gt 0 ] ||
		exclude "no free 1 GiB hugepage" 'hugetlb_1gb$'
	if grep -qx overflow <<<"$all" && kernel_older_than 6 18; then
		args+=(-T overflow)
		skipped+=("test overflow (type1 before 6.18 fails an IOVA overflow with EINVAL, the test wants EOVERFLOW)")
	fi
	if [ ${#skipped[@]} -gt 0 ]; then
		why=$(printf '%s; ' "${skipped[@]}")
		tap ok "$name: not run" "SKIP ${why%; }"
	fi
	echo "# running $name ${args[*]} $*"
	local t0=$SECONDS
	tap_lines < <(tests/ksft-run.sh "$drv" "$b" "${args[@]}" "$@")
	echo "# time: $name $((SECONDS - t0)) s"
}

# vfio_dma_mapping_test's 2 MiB hugetlb variants need a free hugepage:
# reserve a few (cheap); a 1 GiB one is not worth a quarter of the VM.
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ "$(free_hugepages 2048)" -eq 0 ] && [ -w "$hp" ]; then
	echo 4 >"$hp" 2>/dev/null
	echo "# reserved $(free_hugepages 2048) free 2 MiB hugepages"
fi

echo "# --- upstream VFIO selftests ---"
run_bin vfio_pci_device_test "$bdf"
run_bin vfio_dma_mapping_test "$bdf"
run_bin vfio_dma_mapping_mmio_test "$bdf"
# REFACCEL_UPSTREAM_SLOW=1 (the own KASAN kernel under TCG): pinning the
# driver test's 1 GiB region takes longer than the harness's fixed 30 s
# per test (TEST_TIMEOUT_DEFAULT), and a test killed at its limit leaves
# the group busy for the next ones.  Its type1 modes run on the stock lane.
if [ "${REFACCEL_UPSTREAM_SLOW:-0}" = 1 ]; then
	tap ok vfio_pci_driver_test "SKIP a kernel this slow (KASAN under TCG) pins its 1 GiB region in more than the harness's fixed 30 s per test; run in the type1 modes on the stock lane"
else
	run_bin vfio_pci_driver_test "$bdf"
fi
run_bin vfio_pci_device_init_perf_test "${bdfs[@]}"

# Ours: a live migration of the first function into the second, the arcs
# of the FSM and the data_fd rules, in every IOMMU mode the kernel has.
if [ ${#bdfs[@]} -lt 2 ]; then
	tap ok vfio_pci_device_migration_test "SKIP needs two functions (source and destination), found ${#bdfs[@]}"
else
	run_bin vfio_pci_device_migration_test "${bdfs[0]}" "${bdfs[1]}"
fi
tap ok "vfio_pci_device_migration_test on mtty" "SKIP libvfio opens a PCI function by BDF (/sys/bus/pci/devices/BDF); mtty is an mdev (a UUID, no PCI device node) and has no libvfio driver; tests/vm-suite.sh migrates it with mtty_mig_test"

# Every test of this one needs /dev/iommu and the device's cdev.
if [ -z "$have_compat" ]; then
	tap ok vfio_iommufd_setup_test "SKIP no /dev/iommu: kernel without IOMMUFD"
elif [ -z "$have_iommufd" ]; then
	tap ok vfio_iommufd_setup_test "SKIP no VFIO device cdev (/sys/bus/pci/devices/$bdf/vfio-dev)"
else
	run_bin vfio_iommufd_setup_test "$bdf"
fi

# A PF with SR-IOV whose VF comes up on vfio-pci; the model has no SR-IOV.
totalvfs=$(cat "/sys/bus/pci/devices/$bdf/sriov_totalvfs" 2>/dev/null || echo 0)
if [ "${totalvfs:-0}" -le 0 ]; then
	tap ok vfio_pci_sriov_uapi_test "SKIP $bdf has no SR-IOV capability (no sriov_totalvfs)"
elif [ "$drv" != vfio-pci ]; then
	tap ok vfio_pci_sriov_uapi_test "SKIP needs the PF on vfio-pci (its VF must come up on vfio-pci), not $drv"
else
	run_bin vfio_pci_sriov_uapi_test "$bdf"
fi

finish
