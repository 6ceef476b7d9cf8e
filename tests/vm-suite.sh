#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (see tools/vm/run): binds the refaccel functions
# to each driver in turn and runs every kselftest binary against them, then
# checks the kernel log.  Output is TAP; tests/check.sh counts it.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
st=tools/testing/selftests/vfio-mig
n=0

tap() {	# tap ok|not-ok NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2${3:+ # $3}"
	else
		echo "not ok $n $2${3:+ # $3}"
	fi
}

echo "# vm-suite: kernel $(uname -r)"
dmesg -c >/dev/null

# The module must carry the PCI alias of the device (modinfo, as users see it).
if modinfo drivers/vfio/pci/refaccel/refaccel-vfio-pci.ko | grep -q '^alias:.*vfio_pci:v00001234d000011AC'; then
	tap ok modinfo-alias
else
	tap not-ok modinfo-alias
fi

for drv in refaccel-vfio-pci vfio-pci; do
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
	for t in "$st"/*_test; do
		[ -x "$t" ] || continue
		echo "# running ${t##*/} on $drv"
		# Harness TAP: renumber into this run's sequence, keep comments.
		"$t" 2>&1 | while IFS= read -r line; do
			case "$line" in
			"ok "*|"not ok "*) echo "$line" | sed -E "s/^((not )?ok [0-9]+ )/\1[$drv] /" ;;
			*) echo "# $line" ;;
			esac
		done
	done
done

# Splat gate: the kernel log must be free of warnings and oopses.
if dmesg | grep -E 'WARNING:|BUG:|lockdep|refcount_t|list_add corruption|hung_task|kmemleak|Oops|general protection' >/tmp/splat; then
	sed 's/^/# /' /tmp/splat
	tap not-ok dmesg-clean
else
	tap ok dmesg-clean
fi
echo "# vm-suite: done"
