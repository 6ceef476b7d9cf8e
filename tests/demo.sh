#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: set up the host, build the module, the device model and the
# tools, boot the test VM, bind both refaccel functions to
# refaccel-vfio-pci, and live-migrate a working device A -> B through the
# VFIO migration uAPI.  Prints a short human-readable result.
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
echo "booting the VM (TCG, q35, VT-d, 2 refaccel functions)..."
tools/vm/run --dev-opts ",testctl=on" -- bash -c '
	tools/vm/bind.sh refaccel-vfio-pci >/dev/null || exit 1
	lspci -k -d 1234:11ac | sed -n "s/^\([0-9a-f:.]*\) .*/  function \1/p; s/.*Kernel driver in use: /    driver: /p"
	tools/testing/selftests/vfio-mig/refaccel_migrate_demo -o /tmp/refaccel-stream.bin || exit 1
	echo "  stream check: $(tools/vmig-decode/vmig-decode -q /tmp/refaccel-stream.bin)"
'
