#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot-check the refaccel model: build (or reuse) QEMU with build-qemu.sh,
# make a busybox initramfs whose /init is smoke-init.sh, and boot the Debian
# kernel twice under TCG:
#   1. q35 + intel-iommu (intel_iommu=on): enumeration, register checks,
#      hostile MMIO, DMA blocked by the vIOMMU, the never-quiesce and
#      quiesce-delay-us properties before and after an FLR; the HMP monitor
#      is asked for "info pci" and "info mtree -f" meanwhile;
#   2. q35 without IOMMU, 2 MiB reserved with memmap=: descriptors of every
#      opcode run through the rings with devmem; SRAM dirty bitmap; on two
#      more functions (testctl=on) quiesce, PARK, freeze, save and restore;
#      on a fifth (quiesce-unbounded=on) a quiesce that drains, across FLR;
#   3. q35 with native PCIe hotplug, four functions behind root ports that
#      unplug themselves from inside their own DMA or MSI (a FILL, the CQ,
#      a completion's and an INT_MASK write's MSI-X message aimed at the
#      port's Slot Control): QEMU must live on, the function be gone (its
#      config space reads all ones) and the slot empty.
# Prints the guest's TAP lines; exit status 0 when all boots pass.  A boot
# also fails when QEMU does not exit with status 0 or a sanitizer reports.
#   QEMU_DIR=<dir> to skip the build, KERNEL=<vmlinuz> to pick a kernel.
#   REFACCEL_QEMU_ASAN=1: use (and build) the AddressSanitizer QEMU of
#   build-qemu.sh; any ASan report aborts QEMU and fails the boot (leak
#   detection is off: QEMU does not free everything at exit).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ASAN=${REFACCEL_QEMU_ASAN:-0}
[ "$ASAN" = 0 ] || ASAN=1
QEMU_DIR=${QEMU_DIR:-$(REFACCEL_QEMU_ASAN=$ASAN "$HERE/../build-qemu.sh" | tail -n1)}
QEMU=$QEMU_DIR/qemu-system-x86_64
# the ASan QEMU is slower (the whole smoke about 1.4 times here): the
# boots' time limits double
SLOW=1
if [ "$ASAN" = 1 ]; then
	export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	SLOW=2
fi
KERNEL=${KERNEL:-/boot/vmlinuz-$(cat "${REFACCEL_CACHE:-/var/cache/refaccel}/kver" 2>/dev/null || uname -r)}
BUSYBOX=${BUSYBOX:-/bin/busybox}
FW=(-L /usr/share/qemu -L /usr/share/seabios -L /usr/lib/ipxe/qemu)

T=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "keeping $T" || trap 'rm -rf "$T"' EXIT
mkdir -p "$T/root/bin" "$T/root/proc" "$T/root/sys" "$T/root/dev"
cp "$BUSYBOX" "$T/root/bin/busybox"
ln -s busybox "$T/root/bin/sh"
cp "$HERE/smoke-init.sh" "$T/root/init"
cp "$HERE/smoke-unplug.sh" "$T/root/smoke-unplug.sh"
chmod 755 "$T/root/init"
(cd "$T/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$T/initrd"

rc=0
# qemu_ok <boot> <exit status>: QEMU exited cleanly and nothing reported
qemu_ok() {
	local err=$T/err$1
	if [ -s "$err" ]; then
		echo "-- boot $1: QEMU stderr:"
		sed 's/^/  /' "$err" | head -n 80
	fi
	if [ "$2" != 0 ]; then
		echo "not ok - boot $1: QEMU exit status $2"
		rc=1
	fi
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$err"; then
		echo "not ok - boot $1: sanitizer report"
		rc=1
	fi
}

# smoke_wait SECS: let the booted QEMU ($qpid) run its /init, at most SECS
smoke_wait() {
	timeout $(($1 * SLOW)) tail --pid=$qpid -f /dev/null || kill $qpid
}

# smoke_result N PATTERN: reap boot N's QEMU, show the console lines that
# match PATTERN, and fail unless the guest's summary says 0 failed and
# QEMU exited cleanly
smoke_result() {
	local st=0

	wait $qpid || st=$?
	tr -d '\r' <"$T/serial$1" | grep -E "$2" || true
	grep -q '^smoke: [0-9]* passed, 0 failed' "$T/serial$1" ||
		{ rc=1; echo "-- boot $1 console tail:"; tail -n 30 "$T/serial$1"; }
	qemu_ok "$1" $st
}

# -icount: the guest's clock is its instruction count (1 ns each) while it
# runs, and jumps to the next timer while it idles (sleep=off).  The checks
# here are about order on that clock (an op of 200 ms in flight after a 30 ms sleep; a
# quiesce that must not complete before its delay), and the model's timers
# use the same clock, so the order no longer depends on how busy the host
# is: without it, a loaded host (three VMs on two cores) stretched the
# guest's own commands past the model's deadlines and failed such checks.
common=(-M q35 -accel tcg -icount shift=0,sleep=off -m 512 -nographic -no-reboot "${FW[@]}"
	-kernel "$KERNEL" -initrd "$T/initrd")

echo "== boot 1: intel-iommu, intel_iommu=on"
"$QEMU" "${common[@]}" -display none -serial "file:$T/serial1" -monitor none \
	-qmp "unix:$T/qmp,server=on,wait=off" \
	-device intel-iommu,caching-mode=on \
	-device refaccel -device refaccel,sram-size=2M,ats=on,pasid=on,pri=on,testctl=on \
	-device refaccel,never-quiesce=on \
	-device refaccel,testctl=on,quiesce-delay-us=200000 \
	-append "console=ttyS0 intel_iommu=on panic=-1" 2>"$T/err1" &
qpid=$!
for _ in $(seq $((300 * SLOW))); do
	grep -q '^smoke:' "$T/serial1" 2>/dev/null && break
	kill -0 $qpid 2>/dev/null || break
	sleep 1
done
python3 - "$T/qmp" >"$T/monitor1" <<'PY' || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def cmd(c, **a):
    f.write(json.dumps({"execute": c, "arguments": a} if a else {"execute": c}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r.get("return", r.get("error"))
f.readline()
cmd("qmp_capabilities")
for c in ("info pci", "info mtree -f"):
    print("(qemu) " + c)
    print(cmd("human-monitor-command", **{"command-line": c}))
cmd("quit")
PY
smoke_result 1 '^(ok|not ok|smoke:|== |A=|[0-9a-f]{4}:)'
echo "== monitor: refaccel in 'info pci'"
awk 'BEGIN { RS = "  Bus " } /1234:11ac/ { print "  Bus " $0 }' "$T/monitor1"
echo "== monitor: refaccel regions in 'info mtree -f' (flat view)"
{ grep -E 'refaccel' "$T/monitor1" || true; } | sort -u | sed 's/^/  /'

echo "== boot 2: no IOMMU, descriptors through the rings"
"$QEMU" "${common[@]}" -serial "file:$T/serial2" -monitor none -display none \
	-device refaccel -device refaccel,sram-size=2M \
	-device refaccel,testctl=on -device refaccel,testctl=on \
	-device refaccel,quiesce-unbounded=on,op-latency-ns=400000000 \
	-append "console=ttyS0 panic=-1 memmap=2M\$0x10000000 refaccel.smoke=full" \
	2>"$T/err2" &
qpid=$!
smoke_wait 600
smoke_result 2 '^(ok|not ok|smoke:|A=)'

# native PCIe hotplug (no ACPI hotplug on the bridges): pciehp owns the
# slots and removes what QEMU unplugged; slot numbers pick the test case
echo "== boot 3: root ports, functions that unplug themselves"
"$QEMU" "${common[@]}" -serial "file:$T/serial3" -monitor none -display none \
	-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off \
	-device refaccel \
	-device pcie-root-port,id=rp1,chassis=1,slot=1 \
	-device refaccel,bus=rp1,testctl=on \
	-device pcie-root-port,id=rp2,chassis=2,slot=2 -device refaccel,bus=rp2 \
	-device ioh3420,id=rp3,chassis=3,slot=3 -device refaccel,bus=rp3 \
	-device pcie-root-port,id=rp4,chassis=4,slot=4 -device refaccel,bus=rp4 \
	-append "console=ttyS0 panic=-1 quiet memmap=2M\$0x10000000 refaccel.smoke=unplug" \
	2>"$T/err3" &
qpid=$!
smoke_wait 300
smoke_result 3 '^(ok|not ok|smoke:|victim )'
[ $rc = 0 ] && echo "smoke: PASS" || echo "smoke: FAIL"
exit $rc
