#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job of `make demo`, inside the test VM: Debian's stock QEMU
# live-migrates a guest that keeps the device busy from function A to
# function B, then prints a short report.  Exit status 0 on success.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
work=$(mktemp -d /tmp/refaccel-demo.XXXXXX)

tools/vm/bind.sh refaccel-vfio-pci >/dev/null || exit 1
mapfile -t bdfs < <(lspci -D -n -d 1234:11ac | cut -d' ' -f1)
[ ${#bdfs[@]} -ge 2 ] || { echo "demo: need two refaccel functions" >&2; exit 1; }
a=${bdfs[0]}
b=${bdfs[1]}

python3 "$here/qmp_migrate.py" --qemu /usr/bin/qemu-system-x86_64 \
	--host-a "$a" --host-b "$b" --guest tools/guest/refaccel-guest.elf \
	--trace vfio_save_block --trace vfio_save_complete_precopy_start \
	--label demo --workdir "$work" migrate >"$work/run.log" 2>&1
rc=$?

metric() {	# metric KEY: the value from the "# metric:" lines
	sed -n "s/^# metric: .*[ ]$1=\([^ ]*\).*/\1/p" "$work/run.log" | tail -n 1
}
# Device data QEMU read from the data_fd after the switchover began
# (stop-copy: last dirty SRAM pages, internal state, end record).
src_log=$(ls "$work"/src*.log 2>/dev/null | grep -Ev "serial|debugcon" | head -n 1)
stopcopy=$(awk '/vfio_save_complete_precopy_start/ { on = 1 }
	on && /vfio_save_block/ { for (i = 1; i <= NF; i++) if ($i == "data_size") s += $(i + 1) }
	END { print s + 0 }' "${src_log:-/dev/null}")
summary=$(grep -h 'refaccel-guest: [0-9]* submitted' "$work"/dst*.serial.log 2>/dev/null | tail -n 1)
verdict=$(sed -n 's/^\(not \)\{0,1\}ok - demo\/migrate-A-to-B-guest-verdict # //p' "$work/run.log")

echo "refaccel live migration with stock QEMU ($(/usr/bin/qemu-system-x86_64 --version | head -n 1))"
echo "  source       $a (refaccel-vfio-pci), guest: tools/guest/refaccel-guest.elf"
echo "  destination  $b (refaccel-vfio-pci), -incoming unix socket"
echo "  completed    before switchover $(metric guest-completed-before) descriptors, after $(metric guest-completed-after)"
echo "  QEMU         total $(metric total-time-ms) ms, downtime $(metric downtime-ms) ms"
echo "  vfio         $(metric vfio-bytes) bytes (device data read in stop-copy: $stopcopy bytes), RAM $(metric ram-bytes) bytes"
echo "  guest        ${summary#refaccel-guest: }"
echo "  verdict      ${verdict:-none}"
if [ $rc -eq 0 ] && [ "$verdict" = PASS ]; then
	echo "RESULT: PASS"
	exit 0
fi
echo "RESULT: FAIL (log: $work/run.log)"
grep -E '^(not ok|# .*(error|failed|Failure))' "$work/run.log" | head -n 20
exit 1
