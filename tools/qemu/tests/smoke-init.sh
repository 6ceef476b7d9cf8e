#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the refaccel smoke-test initramfs (busybox only).  Lists PCI
# functions, then drives every refaccel function through BAR0 with devmem:
# identity registers, bad ring configurations, hostile register writes and,
# with refaccel.smoke=full (IOMMU off, memmap= reserved buffer), real
# descriptors for every opcode, error statuses, CQ back-pressure, P2P into
# the second function and DMA aimed at the device itself.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok $((PASS + FAIL)) - $*"; }
nok() { FAIL=$((FAIL + 1)); echo "not ok $((PASS + FAIL)) - $*"; }
check() { # name got want
	if [ "$(printf '0x%x' $(($2)))" = "$(printf '0x%x' $(($3)))" ]; then
		ok "$1"
	else
		nok "$1 (got $(printf '0x%x' $(($2))), want $(printf '0x%x' $(($3))))"
	fi
}
r32() { devmem $(printf '0x%x' $(($1))) 32; }
w32() { devmem $(printf '0x%x' $(($1))) 32 $(printf '0x%x' $(($2 & 0xffffffff))); }
r8() { devmem $(printf '0x%x' $(($1))) 8; }
w8() { devmem $(printf '0x%x' $(($1))) 8 $(printf '0x%x' $(($2 & 0xff))); }

MODE=list
grep -q 'refaccel.smoke=full' /proc/cmdline && MODE=full

echo "== PCI functions (slot vendor device class)"
RA=""
for d in /sys/bus/pci/devices/*; do
	echo "$(basename "$d") $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"
	if [ "$(cat "$d/vendor") $(cat "$d/device")" = "0x1234 0x11ac" ]; then
		RA="$RA $d"
	fi
done
set -- $RA
echo "== refaccel functions: $#"
[ $# -ge 2 ] && ok "two refaccel functions enumerated" || nok "two refaccel functions enumerated"
DEV_A=$1
DEV_B=$2

bar() { sed -n "$(($2 + 1))p" "$1/resource" | cut -d' ' -f1; }
A=$(bar "$DEV_A" 0)
A2=$(bar "$DEV_A" 2)
B=$(bar "$DEV_B" 0)
B2=$(bar "$DEV_B" 2)
echo "A=$DEV_A bar0=$A bar2=$A2  B=$DEV_B bar0=$B bar2=$B2"
check "class is processing accelerator" "$(cat "$DEV_A/class")" 0x120000

# memory decode + bus master on both
for d in $DEV_A $DEV_B; do
	printf '\006\000' | dd of="$d/config" bs=2 seek=2 count=1 conv=notrunc 2>/dev/null
done

check "ID" "$(r32 $A)" 0x52464131
check "VERSION" "$(r32 $((A + 4)))" 0x00010000
check "CAPS (P2P only by default)" "$(r32 $((A + 8)))" 0x40
check "SRAM_SIZE A (1 MiB)" "$(r32 $((A + 0xc)))" 0x100000
check "SRAM_SIZE B (2 MiB)" "$(r32 $((B + 0xc)))" 0x200000
check "OP_LATENCY_NS" "$(r32 $((A + 0x18)))" 10000
check "MAX_XFER" "$(r32 $((A + 0x1c)))" 0x100000
check "unknown register reads 0" "$(r32 $((A + 0x4000)))" 0
check "test block reads 0 without testctl" "$(r32 $((A + 0x1f08)))" 0

reset() { w32 $(($1 + 0x10)) 2; }

# bad ring configurations -> HALTED/RING_CONFIG/INT_ERROR
bad_ring() { # name sqbase sqsize cqbase cqsize
	reset $A
	w32 $((A + 0x100)) $2; w32 $((A + 0x104)) $(($2 >> 32))
	w32 $((A + 0x108)) $3
	w32 $((A + 0x120)) $4; w32 $((A + 0x124)) $(($4 >> 32))
	w32 $((A + 0x128)) $5
	w32 $((A + 0x10)) 1
	check "bad ring ($1): STATUS" "$(r32 $((A + 0x14)))" 5
	check "bad ring ($1): HALT_REASON" "$(r32 $((A + 0x20)))" 3
	check "bad ring ($1): INT_STATUS" "$(r32 $((A + 0x200)))" 2
}
bad_ring "sq size 3" 0x1000 3 0x2000 4
bad_ring "sq size 8192" 0x1000 8192 0x2000 4
bad_ring "cq size 1" 0x1000 4 0x2000 1
bad_ring "cq size 0" 0x1000 4 0x2000 0
bad_ring "sq misaligned" 0x1020 4 0x2000 4
bad_ring "cq misaligned" 0x1000 4 0x2008 4
reset $A
check "CTRL.RESET clears STATUS" "$(r32 $((A + 0x14)))" 0
check "CTRL.RESET clears INT_STATUS" "$(r32 $((A + 0x200)))" 0

# ring registers are locked while enabled
w32 $((A + 0x108)) 4; w32 $((A + 0x128)) 4
w32 $((A + 0x100)) 0x100000; w32 $((A + 0x104)) 0
w32 $((A + 0x120)) 0x200000; w32 $((A + 0x124)) 0
w32 $((A + 0x10)) 1
w32 $((A + 0x108)) 16
check "SQ_SIZE write ignored while enabled" "$(r32 $((A + 0x108)))" 4
w32 $((A + 0x12c)) 7
check "CQ_HEAD taken modulo size" "$(r32 $((A + 0x12c)))" 3
reset $A

# hostile writes: every register in the first 8 KiB, odd sizes and offsets
i=0
while [ $i -lt 8192 ]; do
	w32 $((A + i)) 0xffffffff
	i=$((i + 4))
done
devmem $(printf '0x%x' $((A + 0x10))) 8 0x1
devmem $(printf '0x%x' $((A + 0x10))) 16 0x1
devmem $(printf '0x%x' $((A + 0x11))) 32 0x1
devmem $(printf '0x%x' $((A + 0xfffc))) 32 0xffffffff
check "still alive after hostile writes (ID)" "$(r32 $A)" 0x52464131
check "8-bit read of ID reads 0" "$(r8 $A)" 0
reset $A
check "reset after hostile writes: STATUS" "$(r32 $((A + 0x14)))" 0

# ---- descriptors ----
SQN=8
CQN=4
TAIL=0
CQT=0
PHASE=1
setup_rings() { # bar0 sq cq
	reset $1
	w32 $(($1 + 0x100)) $2; w32 $(($1 + 0x104)) $(($2 >> 32)); w32 $(($1 + 0x108)) $SQN
	w32 $(($1 + 0x120)) $3; w32 $(($1 + 0x124)) $(($3 >> 32)); w32 $(($1 + 0x128)) $CQN
	w32 $(($1 + 0x10)) 1
	TAIL=0; CQT=0; PHASE=1
}
put_desc() { # slot opcode flags len tag src dst value rsvd0 rsvd1
	a=$((SQ + $1 * 64))
	w32 $a $(($2 | ($3 << 8) | (${9:-0} << 16)))
	w32 $((a + 4)) $4
	w32 $((a + 8)) $5; w32 $((a + 12)) $(($5 >> 32))
	w32 $((a + 16)) $6; w32 $((a + 20)) $((($6 >> 32) & 0xffffffff))
	w32 $((a + 24)) $7; w32 $((a + 28)) $((($7 >> 32) & 0xffffffff))
	w32 $((a + 32)) $8
	w32 $((a + 36)) ${10:-0}
	j=40
	while [ $j -lt 64 ]; do w32 $((a + j)) 0; j=$((j + 4)); done
}
wait_cq() { # wanted CQ_TAIL
	n=0
	while [ "$(r32 $((A + 0x130)))" != "$(printf '0x%08X' $1)" ] && [ $n -lt 200 ]; do
		n=$((n + 1))
		usleep 1000
	done
}
# run name opcode flags len src dst value want_status [want_result] [rsvd0] [rsvd1]
run() {
	tag=$((0x7a000000 + PASS + FAIL))
	put_desc $TAIL $2 $3 $4 $tag $5 $6 $7 ${10:-0} ${11:-0}
	TAIL=$(((TAIL + 1) % SQN))
	w32 $((A + 0x110)) $TAIL
	want=$(((CQT + 1) % CQN))
	wait_cq $want
	c=$((CQ + CQT * 16))
	w3=$(r32 $((c + 12)))
	check "$1: status" $((w3 & 0xffff)) $8
	check "$1: tag/opcode/phase" \
		"$(( ($(r32 $c) << 16) | (((w3 >> 16) & 0xff) << 8) | ((w3 >> 24) & 1) ))" \
		"$(( (tag << 16) | ($2 << 8) | PHASE ))"
	[ -n "$9" ] && check "$1: result" "$(r32 $((c + 8)))" $9
	CQT=$want
	[ $CQT = 0 ] && PHASE=$((PHASE ^ 1))
	w32 $((A + 0x12c)) $CQT
}

if [ $MODE = full ]; then
	R=0x10000000            # memmap= reserved, identity DMA (no IOMMU)
	SQ=$R
	CQ=$((R + 0x1000))
	BUF=$((R + 0x10000))
	setup_rings $A $SQ $CQ
	check "enable with good rings: STATUS" "$(r32 $((A + 0x14)))" 1

	run "NOP" 0 0 0 0 0 0 0
	run "NOP with len" 0 0 4 0 0 0 2
	run "FILL 10 bytes" 2 0 10 0 $BUF 0x44332211 0
	check "FILL data word 0" "$(r32 $BUF)" 0x44332211
	check "FILL data word 1" "$(r32 $((BUF + 4)))" 0x44332211
	check "FILL data word 2 (truncated)" "$(r32 $((BUF + 8)) )" 0x2211
	# "123456789"
	i=0
	for b in 0x31 0x32 0x33 0x34 0x35 0x36 0x37 0x38 0x39; do
		w8 $((BUF + 0x100 + i)) $b; i=$((i + 1))
	done
	run "CRC32C check value" 3 0 9 $((BUF + 0x100)) 0 0 0 0xe3069283
	run "COPY" 1 0 9 $((BUF + 0x100)) $((BUF + 0x200)) 0 0
	check "COPY data" "$(r32 $((BUF + 0x204)))" 0x38373635
	run "COPY overlapping (memmove)" 1 0 8 $((BUF + 0x200)) $((BUF + 0x201)) 0 0
	check "memmove data" "$(r32 $((BUF + 0x204)))" 0x37363534
	run "LOAD to SRAM" 4 0 9 $((BUF + 0x100)) 0x100 0 0
	check "LOAD data in BAR2" "$(r32 $((A2 + 0x104)))" 0x38373635
	run "LOAD len 0" 4 0 0 0 0 0 2
	run "STORE to host" 5 0 9 0x100 $((BUF + 0x300)) 0 0
	check "STORE data" "$(r32 $((BUF + 0x300)))" 0x34333231
	run "STORE P2P to peer SRAM" 5 0 9 0x100 $((B2 + 0x40)) 0 0
	check "peer SRAM got data" "$(r32 $((B2 + 0x40)))" 0x34333231
	run "STORE P2P to peer register (INT_MASK)" 5 0 4 0x100 $((B + 0x204)) 0 0
	check "peer INT_MASK written" "$(r32 $((B + 0x204)))" 0x1
	run "bad opcode" 9 0 4 0 0 0 1
	run "len 0" 1 0 0 $BUF $BUF 0 2
	run "len > max" 1 0 0xffffffff $BUF $BUF 0 2
	run "unknown flag" 0 2 0 0 0 0 6
	run "rsvd0" 0 0 0 0 0 0 6 "" 1
	run "rsvd1" 0 0 0 0 0 0 6 "" 0 5
	run "LOAD past SRAM end" 4 0 16 $BUF 0xffff8 0 3
	run "LOAD offset overflow" 4 0 16 $BUF 0xfffffffffffffff8 0 3
	run "STORE past SRAM end" 5 0 0x100000 1 $BUF 0 3
	run "COPY from unassigned" 1 0 16 0xfff00000000 $BUF 0 4
	run "FILL to unassigned" 2 0 16 0 0xfff00000000 0 5
	run "COPY into own BAR0 (re-entrancy blocked)" 1 0 4 $BUF $((A + 0x10)) 0 5
	run "NO_IRQ" 0 1 0 0 0 0 0
	check "CNT_FETCHED" "$(r32 $((A + 0x300)))" 24
	check "CNT_COMPLETED" "$(r32 $((A + 0x304)))" 24
	check "CNT_ERRORS" "$(r32 $((A + 0x308)))" 14
	check "INT_STATUS completion" "$(r32 $((A + 0x200)))" 1
	w32 $((A + 0x200)) 1
	check "INT_STATUS RW1C" "$(r32 $((A + 0x200)))" 0

	# CQ back-pressure: 5 NOPs, CQ holds 3 until CQ_HEAD moves
	setup_rings $A $SQ $CQ
	i=0
	while [ $i -lt 5 ]; do put_desc $i 0 0 0 $i 0 0 0; i=$((i + 1)); done
	w32 $((A + 0x110)) 5
	usleep 200000
	check "CQ full: CQ_TAIL stops at 3" "$(r32 $((A + 0x130)))" 3
	check "CQ full: STATUS busy" "$(r32 $((A + 0x14)))" 3
	w32 $((A + 0x12c)) 3
	usleep 200000
	check "CQ drained: CQ_TAIL wraps to 1" "$(r32 $((A + 0x130)))" 1
	check "CQ drained: STATUS idle" "$(r32 $((A + 0x14)))" 1
	check "phase flipped after wrap" "$(( ($(r32 $((CQ + 12))) >> 24) & 1 ))" 0

	# SRAM cleared by reset
	reset $A
	check "SRAM cleared by reset" "$(r32 $((A2 + 0x104)))" 0

	# FLR through a DMA into our own config space (ECAM): no completion
	ecam=$(grep -E 'PCI (MMCONFIG|ECAM)' /proc/iomem | head -n1 | sed 's/^ *//; s/-.*//')
	[ -n "$ecam" ] || ecam=b0000000    # q35 default
	bdf=$(basename "$DEV_A")
	busn=$((0x$(echo "$bdf" | cut -d: -f2)))
	devn=$((0x$(echo "$bdf" | cut -d: -f3 | cut -d. -f1)))
	fnn=$(echo "$bdf" | cut -d. -f2)
	cfg=$((0x$ecam + (busn << 20) + (devn << 15) + (fnn << 12)))
	dd if="$DEV_A/config" of=/cfg bs=64 count=1 2>/dev/null
	setup_rings $A $SQ $CQ
	w32 $CQ 0; w32 $((CQ + 12)) 0
	put_desc 0 2 0 2 0x99 0 $((cfg + 0x88)) 0x8000
	w32 $((A + 0x110)) 1
	usleep 200000
	# FLR cleared the BARs and the command register: put them back
	dd if=/cfg of="$DEV_A/config" bs=4 skip=4 seek=4 count=12 conv=notrunc 2>/dev/null
	dd if=/cfg of="$DEV_A/config" bs=2 skip=2 seek=2 count=1 conv=notrunc 2>/dev/null
	check "self-FLR via DMA: device reset (CTRL)" "$(r32 $((A + 0x10)))" 0
	check "self-FLR via DMA: no completion written" "$(r32 $CQ)" 0
	check "self-FLR via DMA: ID still readable" "$(r32 $A)" 0x52464131

	# SQ fetch fault and CQ write fault
	setup_rings $A 0xfff00000000 $CQ
	w32 $((A + 0x110)) 1
	usleep 100000
	check "SQ fetch fault: STATUS" "$(r32 $((A + 0x14)))" 5
	check "SQ fetch fault: HALT_REASON" "$(r32 $((A + 0x20)))" 1
	setup_rings $A $SQ 0xfff00000000
	put_desc 0 0 0 0 0 0 0 0
	w32 $((A + 0x110)) 1
	usleep 100000
	check "CQ write fault: STATUS" "$(r32 $((A + 0x14)))" 5
	check "CQ write fault: HALT_REASON" "$(r32 $((A + 0x20)))" 2
	check "CQ write fault: INT_ERROR" "$(r32 $((A + 0x200)))" 2
	reset $A
else
	# B has ats=on,pasid=on,pri=on,testctl=on here
	check "B CAPS (P2P PRI ATS PASID TESTCTL)" "$(r32 $((B + 8)))" 0xf8
	cfgw() { hexdump -s $(($2)) -n 4 -e '1/4 "0x%08x"' "$1/config"; }
	check "FLR in DEVCAP" "$(( ($(cfgw $DEV_A 0x84) >> 28) & 1 ))" 1
	ids=""
	off=0x100
	n=0
	while [ $((off)) -ne 0 ] && [ $n -lt 16 ]; do
		h=$(cfgw $DEV_B $off)
		[ $((h)) -eq 0 ] && break
		ids="$ids $(printf '%x' $((h & 0xffff)))"
		off=$(((h >> 20) & 0xffc))
		n=$((n + 1))
	done
	check "B extended caps ATS PASID PRI" "0x$(echo $ids | tr -d ' ')" 0xf1b13
	check "A has no extended caps" "$(cfgw $DEV_A 0x100)" 0
	w32 $((B + 0x1f08)) 50000
	check "TEST_OP_LATENCY -> OP_LATENCY_NS" "$(r32 $((B + 0x18)))" 50000
	w32 $((B + 0x1f00)) 5
	check "TEST_FLAGS stored" "$(r32 $((B + 0x1f00)))" 5
	reset $B
	check "reset restores op latency" "$(r32 $((B + 0x18)))" 10000

	# IOMMU on, no driver: the device's DMA is not mapped -> fetch fault
	setup_rings $A 0x10000000 0x10001000
	w32 $((A + 0x110)) 1
	usleep 200000
	check "DMA blocked by vIOMMU: STATUS halted" "$(r32 $((A + 0x14)))" 5
	check "DMA blocked by vIOMMU: HALT_REASON" "$(r32 $((A + 0x20)))" 1
	reset $A
fi

echo "smoke: $PASS passed, $FAIL failed"
# list mode: give the host time to look at the monitor (it quits QEMU)
[ $MODE = list ] && sleep 60
poweroff -f
