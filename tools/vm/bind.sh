#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM: bind every refaccel function to DRIVER
# (refaccel-vfio-pci or vfio-pci) through driver_override, loading the
# module first.  Prints one line per function; exits non-zero if any
# function could not be bound.
#
# Environment:
#   REFACCEL_KO         the module built for the running kernel
#                       (scripts/build-module.sh); default: the one in the
#                       source tree
#   REFACCEL_KO_PARAMS  module parameters for insmod, shell words, e.g.
#                       "allow_unbounded_quiesce=1"; used only when this
#                       script loads the module (rmmod refaccel_vfio_pci
#                       first to change them); default: none
set -euo pipefail

drv=${1:?usage: bind.sh refaccel-vfio-pci|vfio-pci}
top=$(cd "$(dirname "$0")/../.." && pwd)
ko=${REFACCEL_KO:-$top/drivers/vfio/pci/refaccel/refaccel-vfio-pci.ko}
# shellcheck disable=SC2206	# shell words on purpose
params=(${REFACCEL_KO_PARAMS:-})

modprobe vfio-pci
if [ "$drv" = refaccel-vfio-pci ] && [ ! -d /sys/module/refaccel_vfio_pci ]; then
	# insmod does not resolve dependencies: load them by name first.
	for dep in $(modinfo -F depends "$ko" | tr ',' ' '); do
		modprobe "$dep"
	done
	insmod "$ko" "${params[@]+"${params[@]}"}"
	[ ${#params[@]} -eq 0 ] || echo "bind: loaded $(basename "$ko") with ${params[*]}"
elif [ "$drv" = refaccel-vfio-pci ] && [ ${#params[@]} -gt 0 ]; then
	echo "bind: refaccel_vfio_pci already loaded, REFACCEL_KO_PARAMS (${params[*]}) not applied: rmmod it first" >&2
fi

rc=0
n=0
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11ac ] || continue
	bdf=${d##*/}
	n=$((n + 1))
	if [ -e "$d/driver" ]; then
		cur=$(basename "$(readlink "$d/driver")")
		[ "$cur" = "$drv" ] && { echo "bind: $bdf already on $drv"; continue; }
		echo "$bdf" >"$d/driver/unbind"
	fi
	echo "$drv" >"$d/driver_override"
	echo "$bdf" >/sys/bus/pci/drivers_probe || true
	if [ -e "$d/driver" ] && [ "$(basename "$(readlink "$d/driver")")" = "$drv" ]; then
		echo "bind: $bdf -> $drv (group $(basename "$(readlink "$d/iommu_group")"))"
	else
		echo "bind: $bdf failed to bind to $drv" >&2
		rc=1
	fi
done
[ $n -gt 0 ] || { echo "bind: no refaccel function found" >&2; exit 1; }
exit $rc
