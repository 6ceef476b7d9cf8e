#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: set up the host, build the module, the device model, the
# guest workload and the tools, boot the test VM, bind both refaccel
# functions to refaccel-vfio-pci, and live-migrate a busy guest from A to
# B with Debian's stock QEMU (tests/qemu-lane/demo.sh).  Prints a short
# report.  (The uAPI-level migration it showed before is a test in
# tests/vm-suite.sh now.)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${REFACCEL_OUT:-$top/out/demo}
mkdir -p "$out"

step() {	# step "what" CMD...: quiet unless it fails
	local what=$1
	shift
	printf '%-44s' "$what..."
	if "$@" >"$out/last-step.log" 2>&1; then
		echo " done"
	else
		echo " FAILED"
		tail -n 30 "$out/last-step.log"
		exit 1
	fi
}

step "installing Debian packages (if missing)" bash scripts/setup-host.sh
step "preparing linux-source-6.12 (cached)" bash scripts/prepare-linux-src.sh
step "building refaccel-vfio-pci.ko" make module
step "building QEMU 10.0 with the model (cached)" bash tools/qemu/build-qemu.sh
step "building the selftests and tools" make selftests tools
step "building the guest workload" make -C tools/guest
echo "booting the VM (TCG, q35, VT-d, 2 refaccel functions)..."
tools/vm/run --mem 3G -- bash tests/qemu-lane/demo.sh
