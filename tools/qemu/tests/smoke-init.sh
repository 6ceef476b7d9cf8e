#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the refaccel smoke-test initramfs (busybox only).  Lists PCI
# functions, then drives every refaccel function through BAR0 with devmem:
# identity registers, bad ring configurations, hostile register writes and,
# with refaccel.smoke=full (IOMMU off, memmap= reserved buffer), real
# descriptors for every opcode, error statuses, CQ back-pressure, P2P into
# the second function, DMA aimed at the device itself and, on the third and
# fourth functions (testctl=on), the migration block: quiesce with an op in
# flight, freeze, save, restore into the fourth function (and into itself),
# rejected restores, quiesce fault injection, FREEZE waiting for QUIESCED,
# PARK (and a parked op migrated), D3hot with an op in flight, the SRAM
# dirty bitmap (passes, what CTRL.RESET marks); on a fifth
# (quiesce-unbounded=on) a quiesce that must drain, across an FLR.  Without
# smoke=full, the third and fourth functions carry the never-quiesce and
# quiesce-delay-us properties, checked again after an FLR (sysfs reset),
# and an FLR of the second (ats pasid pri) must reset its config controls.
# With refaccel.smoke=unplug, functions behind root ports unplug themselves
# from inside their own DMA or MSI (smoke-unplug.sh).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /tmp

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

bar() { sed -n "$(($2 + 1))p" "$1/resource" | cut -d' ' -f1; }
reset() { w32 $(($1 + 0x10)) 2; }

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

# migration block
mst() { r32 $(($1 + 0x8008)); }
merr() { r32 $(($1 + 0x800c)); }
mctl() { w32 $(($1 + 0x8000)) $2; }
mcmd() { w32 $(($1 + 0x8004)) $2; }
wait_mst() { # bar0 mask want max_ms
	n=0
	while [ $(( $(mst $1) & $2 )) -ne $(($3)) ] && [ $n -lt $4 ]; do
		usleep 5000; n=$((n + 5))
	done
}
wait_tail() { # bar0 want max_ms
	n=0
	while [ $(($(r32 $(($1 + 0x130))))) -ne $2 ] && [ $n -lt $3 ]; do
		usleep 5000; n=$((n + 5))
	done
}
decode_on() { printf '\006\000' | dd of="$1/config" bs=2 seek=2 count=1 conv=notrunc 2>/dev/null; }
flr() { echo 1 >"$1/reset"; }
# config space through sysfs (names with _: the callers' loop variables stay)
cfg_rd() { # dev offset size
	hexdump -s $(($2)) -n $3 -e "1/$3 \"0x%x\"" "$1/config"
}
cfg_wr() { # dev offset size value (offset aligned to size)
	_s=""; _j=0
	while [ $_j -lt $3 ]; do
		_s="$_s\\$(printf %03o $((($4 >> (8 * _j)) & 0xff)))"; _j=$((_j + 1))
	done
	printf "$_s" | dd of="$1/config" bs=$3 seek=$(($2 / $3)) count=1 conv=notrunc 2>/dev/null
}
pci_cap() { # dev id: offset of the capability, 0 if none
	_p=$(($(cfg_rd $1 0x34 1) & 0xfc)); _n=0
	while [ $_p -ne 0 ] && [ $_n -lt 48 ]; do
		[ $(($(cfg_rd $1 $_p 1))) -eq $(($2)) ] && break
		_p=$(($(cfg_rd $1 $((_p + 1)) 1) & 0xfc)); _n=$((_n + 1))
	done
	echo $_p
}
ext_cap() { # dev id: offset of the extended capability, 0 if none
	_p=256; _n=0
	while [ $_p -ne 0 ] && [ $_n -lt 48 ]; do
		_h=$(($(cfg_rd $1 $_p 4)))
		[ $_h -eq 0 ] && { _p=0; break; }
		[ $((_h & 0xffff)) -eq $(($2)) ] && break
		_p=$(((_h >> 20) & 0xffc)); _n=$((_n + 1))
	done
	echo $_p
}
# an FLR through a config write of our own, not sysfs reset (Linux saves and
# restores Device Control around that one); BARs and command put back after
flr_cfg() { # dev
	dd if="$1/config" of=/tmp/flrcfg bs=64 count=1 2>/dev/null
	_x=$(pci_cap $1 0x10)
	cfg_wr $1 $((_x + 8)) 2 $(($(cfg_rd $1 $((_x + 8)) 2) | 0x8000))
	dd if=/tmp/flrcfg of="$1/config" bs=4 skip=4 seek=4 count=12 conv=notrunc 2>/dev/null
	dd if=/tmp/flrcfg of="$1/config" bs=2 skip=2 seek=2 count=1 conv=notrunc 2>/dev/null
}
same() { # name got want: strings
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		nok "$1 (got '$(echo "$2" | cut -c1-60)', want '$3')"
	fi
}

MODE=list
grep -q 'refaccel.smoke=full' /proc/cmdline && MODE=full
grep -q 'refaccel.smoke=unplug' /proc/cmdline && MODE=unplug

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

if [ $MODE = unplug ]; then
	. /smoke-unplug.sh
	echo "smoke: $PASS passed, $FAIL failed"
	poweroff -f
fi

[ $# -ge 2 ] && ok "two refaccel functions enumerated" || nok "two refaccel functions enumerated"
DEV_A=$1
DEV_B=$2
DEV_C=${3:-}
DEV_D=${4:-}
DEV_E=${5:-}

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
check "CAPS (P2P MIGRATION SRAM_DIRTY DMA_DIRTY by default)" "$(r32 $((A + 8)))" 0x47
check "SRAM_SIZE A (1 MiB)" "$(r32 $((A + 0xc)))" 0x100000
check "SRAM_SIZE B (2 MiB)" "$(r32 $((B + 0xc)))" 0x200000
check "OP_LATENCY_NS" "$(r32 $((A + 0x18)))" 10000
check "MAX_XFER" "$(r32 $((A + 0x1c)))" 0x100000
check "unknown register reads 0" "$(r32 $((A + 0x4000)))" 0
check "DT_PGSHIFT default" "$(r32 $((B + 0x8204)))" 12
check "DT_STATUS: not tracking" "$(r32 $((B + 0x8240)))" 0
check "test block reads 0 without testctl" "$(r32 $((A + 0x2008)))" 0

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
fnr=$(r32 $((A + 0x802c)))
reset $A
check "CTRL.RESET clears STATUS" "$(r32 $((A + 0x14)))" 0
check "CTRL.RESET counted in MIG_FN_RESETS" "$(r32 $((A + 0x802c)))" $((fnr + 1))
check "status mirror: MIG_FN_RESETS" "$(r32 $((A + 0x402c)))" $((fnr + 1))
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

# hostile writes: every register in the first 8 KiB, the status mirror
# and the migration block's registers, odd sizes and offsets
for range in 0x0:0x2000 0x4000:0x4200 0x8000:0x9000; do
	i=$((${range%:*}))
	while [ $i -lt $((${range#*:})) ]; do
		w32 $((A + i)) 0xffffffff
		i=$((i + 4))
	done
done
devmem $(printf '0x%x' $((A + 0x10))) 8 0x1
devmem $(printf '0x%x' $((A + 0x10))) 16 0x1
devmem $(printf '0x%x' $((A + 0x11))) 32 0x1
devmem $(printf '0x%x' $((A + 0xfffc))) 32 0xffffffff
check "still alive after hostile writes (ID)" "$(r32 $A)" 0x52464131
check "8-bit read of ID reads 0" "$(r8 $A)" 0
check "hostile writes froze the device" "$(( $(r32 $((A + 0x8008))) & 3 ))" 3
check "hostile MIG_CMD: BAD_CMD" "$(r32 $((A + 0x800c)))" 8
reset $A
check "frozen: CTRL.RESET ignored (MIG_CTRL kept)" "$(r32 $((A + 0x8000)))" 0xf
check "status mirror: MIG_CTRL" "$(r32 $((A + 0x4000)))" 0xf
check "status mirror: MIG_STATUS" "$(r32 $((A + 0x4008)))" "$(r32 $((A + 0x8008)))"
check "status mirror: MIG_STATE_DATA is not mirrored" "$(r32 $((A + 0x4018)))" 0
check "status mirror: SRAM_DIRTY_PGSIZE" "$(r32 $((A + 0x4104)))" 4096
w32 $((A + 0x8000)) 0
w32 $((A + 0x8100)) 0                   # CTRL.RESET keeps the migration block
reset $A
check "reset after hostile writes: STATUS" "$(r32 $((A + 0x14)))" 0

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

	# FILL of a length that is no multiple of 4 (the pattern doubles): every
	# byte is the pattern's, the byte after the end stays; read and preset
	# through /dev/mem, 0xee everywhere before
	dd if=/dev/zero bs=4096 count=2 2>/dev/null | tr '\000' '\356' >/tmp/ee
	fill_bytes() { # len value
		FB=$((R + 0x50000))
		dd if=/tmp/ee of=/dev/mem bs=4096 seek=$((FB / 4096)) count=2 conv=notrunc 2>/dev/null
		check "FILL $1 bytes: preset through /dev/mem" "$(r32 $FB)" 0xeeeeeeee
		run "FILL $1 bytes" 2 0 $1 0 $FB $2 0
		check "FILL $1 bytes: word 0" "$(r32 $FB)" $2
		dd if=/dev/mem of=/tmp/fill bs=4096 skip=$((FB / 4096)) count=2 2>/dev/null
		bad=$(hexdump -v -e '1/1 "%u\n"' /tmp/fill | awk -v n=$1 \
			-v p="$(($2 & 0xff)) $((($2 >> 8) & 0xff)) $((($2 >> 16) & 0xff)) $((($2 >> 24) & 0xff))" '
			BEGIN { split(p, b, " ") }
			NR <= n && $1 != b[(NR - 1) % 4 + 1] { bad++ }
			NR == n + 1 && $1 != 238 { bad++ }
			END { if (NR <= n) bad++; print bad + 0 }')
		check "FILL $1 bytes: every byte the pattern's, the next one untouched" "$bad" 0
	}
	fill_bytes 13 0xa1b2c3d4
	fill_bytes 4099 0x5e6f7081

	# DMA dirty tracking (0x8200 block): one range [BUF, BUF + 64 KiB)
	dt_query() { # first last: window
		w32 $((A + 0x8248)) $2; w32 $((A + 0x824c)) 0
		w32 $((A + 0x8224)) $1; w32 $((A + 0x8228)) 0
	}
	check "DT_MAX_RANGES (dt-ranges default)" "$(r32 $((A + 0x8208)))" 4
	check "DT_MAX_SPAN_HI (2^48 default)" "$(r32 $((A + 0x823c)))" 0x10000
	# the hostile writes above set every DT register (CTRL.RESET keeps them)
	w32 $((A + 0x8204)) 22
	w32 $((A + 0x8200)) 1
	check "DT enable with page shift 22: DT_ERR BAD_PGSHIFT" "$(r32 $((A + 0x8244)))" 1
	w32 $((A + 0x8204)) 12
	w32 $((A + 0x820c)) 0
	w32 $((A + 0x8200)) 1
	check "DT enable with 0 ranges: not enabled" "$(r32 $((A + 0x8240)))" 0
	check "DT enable with 0 ranges: DT_ERR BAD_NR" "$(r32 $((A + 0x8244)))" 2
	w32 $((A + 0x820c)) 1
	w32 $((A + 0x8210)) 0
	w32 $((A + 0x8214)) $BUF; w32 $((A + 0x8218)) 0
	w32 $((A + 0x821c)) 0; w32 $((A + 0x8220)) 0
	w32 $((A + 0x8200)) 1
	check "DT enable with an empty range: DT_ERR BAD_RANGE" "$(r32 $((A + 0x8244)))" 3
	w32 $((A + 0x821c)) 0x10000; w32 $((A + 0x8220)) 0
	w32 $((A + 0x8200)) 1
	check "DT enabled" "$(r32 $((A + 0x8240)))" 1
	w32 $((A + 0x8204)) 13
	check "DT_PGSHIFT locked while enabled" "$(r32 $((A + 0x8204)))" 12
	run "DT: FILL in page 2" 2 0 10 0 $((BUF + 0x2000)) 0x11111111 0
	dt_query $BUF $((BUF + 0xffff))
	check "DT_NEXT: page 2" "$(r32 $((A + 0x8230)))" $((BUF + 0x2000))
	check "DT_NEXT_HI" "$(r32 $((A + 0x8234)))" 0
	dt_query $((BUF + 0x2000)) $((BUF + 0xffff))
	check "DT_QUERY_DATA: page 2" "$(r32 $((A + 0x822c)))" 1
	dt_query $BUF $((BUF + 0xffff))
	check "DT_NEXT after read-and-clear: none" "$(r32 $((A + 0x8230)))" 0xffffffff
	run "DT: FILL straddling pages 3..5" 2 0 0x1002 0 $((BUF + 0x3fff)) 0 0
	run "DT: FILL outside the range" 2 0 16 0 $((BUF + 0x20000)) 0 0
	dt_query $BUF $((BUF + 0xffff))
	check "DT_QUERY_DATA: pages 3, 4, 5" "$(r32 $((A + 0x822c)))" 0x38
	check "DT_QUERY_DATA: next 32 pages clean" "$(r32 $((A + 0x822c)))" 0
	run "DT: FILL pages 6 and 7" 2 0 2 0 $((BUF + 0x6fff)) 0 0
	dt_query $BUF $((BUF + 0x6fff))
	check "DT window up to page 6: page 6 only" "$(r32 $((A + 0x822c)))" 0x40
	dt_query $BUF $((BUF + 0xffff))
	check "DT page 7 kept for a later window" "$(r32 $((A + 0x822c)))" 0x80
	w32 $((A + 0x8200)) 0
	check "DT disabled" "$(r32 $((A + 0x8240)))" 0

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

	# ---- SRAM dirty bitmap (A: 1 MiB = 256 pages = 8 words) ----
	rdw() { # bar0 index -> SRAM_DIRTY_DATA word
		w32 $(($1 + 0x8108)) $2
		r32 $(($1 + 0x810c))
	}
	check "SRAM_DIRTY_PGSIZE" "$(r32 $((A + 0x8104)))" 4096
	w32 $((A + 0x8100)) 1
	check "SRAM_DIRTY_CTRL enabled" "$(r32 $((A + 0x8100)))" 1
	check "dirty: clean start" "$(rdw $A 0)" 0
	w32 $((A2 + 0x5000)) 0x11111111         # page 5: word 0 bit 5
	w32 $((A2 + 0x21004)) 0x22222222        # page 33: word 1 bit 1
	check "dirty: CPU write page 5" "$(rdw $A 0)" 0x20
	check "dirty: INDEX advanced" "$(r32 $((A + 0x8108)))" 1
	check "dirty: CPU write page 33 (next word, auto index)" "$(r32 $((A + 0x810c)))" 0x2
	check "dirty: read cleared word 0" "$(rdw $A 0)" 0
	check "dirty: read cleared word 1" "$(rdw $A 1)" 0
	w32 $((A2 + 0x5008)) 0x33333333
	check "dirty: same page written again after clear" "$(rdw $A 0)" 0x20
	w8 $((A2 + 0xfffff)) 0x44                # last page, byte write
	check "dirty: byte write to the last page" "$(rdw $A 7)" 0x80000000
	check "dirty: past the end reads 0" "$(rdw $A 8)" 0
	check "dirty: far past the end reads 0" "$(rdw $A 0x100000)" 0
	SQN=8; CQN=4
	w32 $((A + 0x8100)) 0
	setup_rings $A $SQ $CQ                  # tracking off, then reset
	w32 $((A + 0x8100)) 1
	run "LOAD for dirty tracking" 4 0 0x20 $((BUF + 0x100)) 0x7ff0 0 0
	check "dirty: LOAD across pages 7 and 8" "$(rdw $A 0)" 0x180
	w32 $((A + 0x8100)) 0
	w32 $((A2 + 0x1000)) 1                  # page 1, tracking off
	w32 $((A + 0x8100)) 1
	check "dirty: re-enable starts clean" "$(rdw $A 0)" 0
	w32 $((A2 + 0x2000)) 1
	w32 $((A + 0x8100)) 0
	check "dirty: bits from before disable stay readable" "$(rdw $A 0)" 0x4
	w32 $((A + 0x8100)) 1
	reset $A
	check "CTRL.RESET keeps SRAM dirty tracking on" "$(r32 $((A + 0x8100)))" 1
	# only the pages that held data (1, 2, 7: the LOAD's bytes on page 8
	# were zero) are cleared, and so dirty; not the whole SRAM
	check "CTRL.RESET: the SRAM it cleared is dirty" "$(rdw $A 0)" 0x86
	w32 $((A + 0x8100)) 0
	reset $A
	dirty_pages() { # bar0 words: the pages one pass over the bitmap reports
		w32 $(($1 + 0x8108)) 0
		_i=0; _l=""
		while [ $_i -lt $2 ]; do
			_w=$(($(r32 $(($1 + 0x810c)))))
			_b=0
			while [ $_w -ne 0 ]; do
				[ $((_w & 1)) -eq 1 ] && _l="$_l $((_i * 32 + _b))"
				_w=$((_w >> 1)); _b=$((_b + 1))
			done
			_i=$((_i + 1))
		done
		echo ${_l:-none}
	}
	# a CTRL.RESET clears, and marks dirty, only the pages that held data
	w32 $((A + 0x8100)) 1                   # clean start
	w32 $((A2 + 0x3010)) 0x5a5a5a5a         # page 3
	w32 $((A2 + 0x28ffc)) 0xa5              # page 40
	w32 $((A2 + 0x5000)) 0                  # page 5: written, still zero
	same "dirty: CPU writes to pages 3, 5 and 40" "$(dirty_pages $A 8)" "3 5 40"
	reset $A
	same "CTRL.RESET: dirty are the pages that held data (3, 40)" "$(dirty_pages $A 8)" "3 40"
	check "CTRL.RESET cleared pages 3 and 40" \
		"$(( $(r32 $((A2 + 0x3010))) | $(r32 $((A2 + 0x28ffc))) ))" 0
	reset $A
	same "second CTRL.RESET: nothing dirty" "$(dirty_pages $A 8)" none
	# writing SRAM_DIRTY_INDEX starts a pass: a CPU write made during the
	# pass is in the next one
	w32 $((A + 0x8108)) 0
	w32 $((A2 + 0x9000)) 0x99               # page 9
	check "dirty pass: a write during the pass is not in it" "$(r32 $((A + 0x810c)))" 0
	check "dirty pass: the next pass has it (page 9)" "$(rdw $A 0)" 0x200
	w32 $((A + 0x8100)) 0
	reset $A

	# ---- migration block: C and D (1 MiB, testctl=on) ----
	if [ -z "${DEV_D:-}" ]; then
		nok "third and fourth refaccel functions (testctl) present"
	else
	C=$(bar "$DEV_C" 0); C2=$(bar "$DEV_C" 2)
	D=$(bar "$DEV_D" 0); D2=$(bar "$DEV_D" 2)
	for d in $DEV_C $DEV_D; do
		printf '\006\000' | dd of="$d/config" bs=2 seek=2 count=1 conv=notrunc 2>/dev/null
	done
	echo "C=$DEV_C bar0=$C bar2=$C2  D=$DEV_D bar0=$D bar2=$D2"
	save_win() { # bar0 file
		sz=$(($(r32 $(($1 + 0x8010)))))
		w32 $(($1 + 0x8014)) 0
		: >$2
		k=0
		while [ $k -lt $sz ]; do r32 $(($1 + 0x8018)) >>$2; k=$((k + 4)); done
	}
	load_win() { # bar0 file size
		w32 $(($1 + 0x8010)) $3
		w32 $(($1 + 0x8014)) 0
		while read v; do w32 $(($1 + 0x8018)) $v; done <$2
	}
	patch_win() { # in word value out
		awk -v n=$2 -v v=$3 'NR == n + 1 { print v; next } { print }' $1 >$4
	}
	word() { sed -n "$(($2 + 1))p" $1; }

	check "C CAPS (+TESTCTL)" "$(r32 $((C + 8)))" 0xc7
	check "MIG_FORMAT" "$(r32 $((C + 0x801c)))" 2
	check "MIG_STATE_MAX" "$(r32 $((C + 0x8024)))" 4096
	check "COMPAT_ID: testctl does not count (A = C)" \
		"$(r32 $((A + 0x8020)))" "$(r32 $((C + 0x8020)))"
	[ "$(r32 $((B + 0x8020)))" != "$(r32 $((C + 0x8020)))" ] &&
		ok "COMPAT_ID: 2 MiB B differs from 1 MiB C" ||
		nok "COMPAT_ID: 2 MiB B differs from 1 MiB C"
	mcmd $C 1
	check "SAVE while running: CMD_ERR" "$(( $(mst $C) & 0x10 ))" 0x10
	check "SAVE while running: NOT_FROZEN" "$(merr $C)" 1

	# quiesce fault injection (no work in flight)
	w32 $((C + 0x2004)) 200000              # QUIESCED 200 ms late
	mctl $C 1
	check "quiesce delay: not QUIESCED at once" "$(( $(mst $C) & 1 ))" 0
	wait_mst $C 1 1 2000
	check "quiesce delay: QUIESCED later" "$(( $(mst $C) & 1 ))" 1
	mctl $C 0
	check "unquiesce clears QUIESCED" "$(( $(mst $C) & 1 ))" 0
	mctl $C 1
	usleep 50000
	mctl $C 0
	usleep 300000
	check "quiesce cancelled during the delay: never QUIESCED" "$(( $(mst $C) & 1 ))" 0
	w32 $((C + 0x2004)) 0
	w32 $((C + 0x2000)) 1                   # NEVER_QUIESCE
	mctl $C 1
	usleep 200000
	check "NEVER_QUIESCE: not QUIESCED" "$(( $(mst $C) & 1 ))" 0
	mctl $C 0
	w32 $((C + 0x2000)) 0
	mctl $C 1
	check "no delay, nothing in flight: QUIESCED at once" "$(( $(mst $C) & 1 ))" 1
	mctl $C 0

	# FREEZE takes effect only once QUIESCED is reached
	w32 $((C + 0x2000)) 1                   # NEVER_QUIESCE
	mctl $C 1
	mctl $C 5                               # QUIESCE | FREEZE
	usleep 100000
	check "NEVER_QUIESCE + FREEZE: neither FROZEN nor QUIESCED" "$(( $(mst $C) & 3 ))" 0
	check "NEVER_QUIESCE + FREEZE: FREEZE stays requested" "$(r32 $((C + 0x8000)))" 5
	mcmd $C 1
	check "NEVER_QUIESCE + FREEZE: SAVE fails with NOT_FROZEN" "$(merr $C)" 1
	w32 $((C + 0x204)) 0xf
	check "FREEZE pending: INT_MASK still writable" "$(r32 $((C + 0x204)))" 0xf
	w32 $((C + 0x204)) 0
	w32 $((C + 0x2000)) 0
	check "NEVER_QUIESCE cleared: QUIESCED, then FROZEN" "$(( $(mst $C) & 3 ))" 3
	mctl $C 1
	check "FREEZE cleared: QUIESCED stays" "$(( $(mst $C) & 3 ))" 1
	mctl $C 0
	w32 $((C + 0x2000)) 1
	mctl $C 5
	mctl $C 1                               # withdraw the freeze only
	w32 $((C + 0x2000)) 0
	check "FREEZE withdrawn, quiesce kept: QUIESCED, not FROZEN" "$(( $(mst $C) & 3 ))" 1
	mctl $C 0
	w32 $((C + 0x2000)) 1
	mctl $C 4                               # FREEZE on its own
	usleep 50000
	check "NEVER_QUIESCE + bare FREEZE: not FROZEN" "$(( $(mst $C) & 3 ))" 0
	mctl $C 0
	w32 $((C + 0x2000)) 0
	usleep 50000
	check "bare FREEZE withdrawn: never QUIESCED nor FROZEN" "$(( $(mst $C) & 3 ))" 0
	w32 $((C + 0x2004)) 200000              # QUIESCED 200 ms late
	mctl $C 5
	check "quiesce delay + FREEZE: not FROZEN at once" "$(( $(mst $C) & 3 ))" 0
	wait_mst $C 3 3 2000
	check "quiesce delay + FREEZE: QUIESCED and FROZEN later" "$(( $(mst $C) & 3 ))" 3
	mctl $C 0
	check "thawed and unquiesced" "$(( $(mst $C) & 3 ))" 0
	w32 $((C + 0x2004)) 0

	# quiesce with an op in flight, freeze, save
	MSQ=$((R + 0x20000)); MCQ=$((R + 0x21000)); MBUF=$((R + 0x30000))
	k=0; while [ $k -lt 128 ]; do w32 $((MCQ + k * 4)) 0; k=$((k + 1)); done
	k=0; while [ $k -lt 256 ]; do w32 $((MBUF + k * 4)) 0; k=$((k + 1)); done
	i=0
	for b in 0x31 0x32 0x33 0x34 0x35 0x36 0x37 0x38 0x39; do
		w8 $((MBUF + 0x100 + i)) $b; i=$((i + 1))
	done
	SQN=8; CQN=8
	setup_rings $C $MSQ $MCQ
	w32 $((C + 0x2008)) 200000000           # 200 ms per op
	SQ=$MSQ
	put_desc 0 2 0 16 0x101 0 $MBUF 0xa5a5a5a5
	put_desc 1 3 0 9 0x102 $((MBUF + 0x100)) 0 0
	put_desc 2 4 0 9 0x103 $((MBUF + 0x100)) 0x2000 0
	put_desc 3 1 0 9 0x104 $((MBUF + 0x100)) $((MBUF + 0x200)) 0
	w32 $((C + 0x110)) 4
	usleep 30000
	check "op 0 in flight: CQ_TAIL 0" "$(r32 $((C + 0x130)))" 0
	mctl $C 1
	check "QUIESCE with op in flight: not QUIESCED yet" "$(( $(mst $C) & 1 ))" 0
	check "QUIESCE with op in flight: still no completion" "$(r32 $((C + 0x130)))" 0
	wait_mst $C 1 1 2000
	check "QUIESCED reached" "$(( $(mst $C) & 1 ))" 1
	check "QUIESCED only after op 0 completed (CQ_TAIL 1)" "$(r32 $((C + 0x130)))" 1
	check "op 0 result (FILL)" "$(r32 $((MBUF + 12)))" 0xa5a5a5a5
	check "all 4 fetched, 3 left in the FIFO" "$(r32 $((C + 0x300)))" 4
	usleep 500000
	check "quiesced: no progress (CQ_TAIL still 1)" "$(r32 $((C + 0x130)))" 1
	check "quiesced: CRC op not executed" "$(r32 $((MCQ + 16)))" 0
	put_desc 4 2 0 8 0x105 0 $((MBUF + 0x300)) 0x5a5a5a5a
	w32 $((C + 0x110)) 5
	check "quiesced: SQ_TAIL doorbell accepted" "$(r32 $((C + 0x110)))" 5
	check "quiesced: no fetch (SQ_HEAD 4)" "$(r32 $((C + 0x10c)))" 4
	w32 $((C2 + 0x8000)) 0x77777777
	check "quiesced: BAR2 writable" "$(r32 $((C2 + 0x8000)))" 0x77777777
	mctl $C 5                               # QUIESCE | FREEZE
	check "FROZEN" "$(( $(mst $C) & 3 ))" 3          # CMD_ERR may stay: CTRL.RESET keeps it
	w32 $((C + 0x204)) 0xf
	check "frozen: INT_MASK write ignored" "$(r32 $((C + 0x204)))" 0
	w32 $((C + 0x2000)) 2                   # CORRUPT_SAVE
	mcmd $C 1
	save_win $C /tmp/bad_crc
	w32 $((C + 0x2000)) 0
	mcmd $C 1
	check "SAVE: status SAVED|FROZEN|QUIESCED" "$(mst $C)" 7
	check "SAVE: MIG_ERR none" "$(merr $C)" 0
	SZ=$(($(r32 $((C + 0x8010)))))
	check "SAVE: size = 24 + 112 + 3 * 72" $SZ 352
	check "SAVE: OFFSET 0" "$(r32 $((C + 0x8014)))" 0
	save_win $C /tmp/win
	check "window: magic" "$(word /tmp/win 0)" 0x52415354
	check "window: version" "$(word /tmp/win 1)" 2
	check "window: compat id" "$(word /tmp/win 2)" "$(r32 $((C + 0x8020)))"
	check "window: payload length" "$(word /tmp/win 3)" $((SZ - 24))
	check "window: FIFO count" "$(word /tmp/win 33)" 3
	check "window: first entry is the CRC op (tag)" "$(word /tmp/win 36)" 0x102
	check "window: first entry queued, not executing" "$(word /tmp/win 50)" 0
	check "read past SIZE returns 0" "$(r32 $((C + 0x8018)))" 0

	# rejected restores into D: state untouched
	reset $D
	w32 $((D + 0x204)) 9                    # marker
	mctl $D 1
	wait_mst $D 1 1 1000
	load_win $D /tmp/win $SZ
	mcmd $D 2
	check "RESTORE not frozen: NOT_FROZEN" "$(merr $D)" 1
	mctl $D 5
	rej() { # name file size want_err
		load_win $D $2 $3
		mcmd $D 2
		check "restore $1: CMD_ERR" "$(( $(mst $D) & 0x18 ))" 0x10
		check "restore $1: MIG_ERR" "$(merr $D)" $4
		check "restore $1: state untouched" \
			"$(( $(r32 $((D + 0x204))) | $(r32 $((D + 0x108))) | $(r32 $((D + 0x300))) ))" 9
	}
	rej "of a CORRUPT_SAVE window" /tmp/bad_crc $SZ 6
	patch_win /tmp/win 40 0x12345678 /tmp/w1
	rej "with a flipped payload word" /tmp/w1 $SZ 6
	patch_win /tmp/win 0 0 /tmp/w1
	rej "with bad magic" /tmp/w1 $SZ 2
	patch_win /tmp/win 1 3 /tmp/w1
	rej "of version 3" /tmp/w1 $SZ 3
	patch_win /tmp/win 2 0xdeadbeef /tmp/w1
	rej "with another compat id" /tmp/w1 $SZ 4
	rej "with SIZE above MAX" /tmp/win 5000 5
	check "SIZE clamped to MAX" "$(r32 $((D + 0x8010)))" 4096
	rej "truncated" /tmp/win $((SZ - 4)) 5
	# BAD_FIELD needs a right CRC: let A's CRC32C op compute it
	patch_win /tmp/win 68 1 /tmp/w1         # 2nd entry "executing"
	k=0
	tail -n +7 /tmp/w1 | while read v; do w32 $((BUF + 0x1000 + k * 4)) $v; k=$((k + 1)); done
	SQN=8; CQN=4; SQ=$R
	setup_rings $A $SQ $CQ
	run "CRC32C of a doctored state" 3 0 $((SZ - 24)) $((BUF + 0x1000)) 0 0 0
	crc=$(r32 $((CQ + 8)))
	patch_win /tmp/w1 4 $crc /tmp/w2
	rej "with an executing entry behind the head" /tmp/w2 $SZ 7
	reset $A
	mctl $B 4
	load_win $B /tmp/win $SZ
	mcmd $B 2
	check "restore into 2 MiB B: BAD_COMPAT" "$(merr $B)" 4
	mctl $B 0

	# version 1 (no page request block: this device has no pri) is read
	patch_win /tmp/win 1 1 /tmp/w1
	load_win $D /tmp/w1 $SZ
	mcmd $D 2
	check "restore of version 1: RESTORED" "$(( $(mst $D) & 0x18 ))" 8
	check "restore of version 1: restored SQ_TAIL" "$(r32 $((D + 0x110)))" 5

	# the real restore into D
	load_win $D /tmp/win $SZ
	mcmd $D 2
	check "RESTORE: RESTORED|FROZEN|QUIESCED" "$(mst $D)" 0xb
	check "RESTORE: MIG_ERR none" "$(merr $D)" 0
	check "restored SQ_HEAD" "$(r32 $((D + 0x10c)))" 4
	check "restored SQ_TAIL" "$(r32 $((D + 0x110)))" 5
	check "restored CQ_TAIL" "$(r32 $((D + 0x130)))" 1
	check "restored INT_MASK (marker gone)" "$(r32 $((D + 0x204)))" 0
	check "restored STATUS (enabled, busy)" "$(r32 $((D + 0x14)))" 3
	check "restored OP_LATENCY_NS" "$(r32 $((D + 0x18)))" 200000000
	# the source is never resumed: thaw it into quiesce, then reset it
	check "source still at CQ_TAIL 1" "$(r32 $((C + 0x130)))" 1
	mctl $C 1
	reset $C
	check "source reset" "$(r32 $((C + 0x10)))" 0
	mctl $D 1
	check "D thawed, still quiesced" "$(( $(mst $D) & 3 ))" 1
	usleep 300000
	check "D quiesced: no progress" "$(r32 $((D + 0x130)))" 1
	mctl $D 0
	check "D running" "$(( $(mst $D) & 3 ))" 0
	wait_tail $D 5 5000
	check "D: 4 more completions (CQ_TAIL 5)" "$(r32 $((D + 0x130)))" 5
	k=0
	for t in 0x101 0x102 0x103 0x104 0x105; do
		c=$((MCQ + k * 16))
		check "CQ[$k]: tag $t, status OK, phase 1" \
			"$(( ($(r32 $c) << 16) | ($(r32 $((c + 12))) & 0x100ffff) ))" "$(( (t << 16) | 0x1000000 ))"
		k=$((k + 1))
	done
	check "CQ[5] empty (nothing completed twice)" "$(r32 $((MCQ + 80)))" 0
	check "D: CRC result" "$(r32 $((MCQ + 24)))" 0xe3069283
	check "D: LOAD landed in D's SRAM" "$(r32 $((D2 + 0x2004)))" 0x38373635
	check "D: COPY result" "$(r32 $((MBUF + 0x204)))" 0x38373635
	check "D: FILL submitted while quiesced" "$(r32 $((MBUF + 0x304)))" 0x5a5a5a5a
	check "D: CNT_FETCHED" "$(r32 $((D + 0x300)))" 5
	check "D: CNT_COMPLETED" "$(r32 $((D + 0x304)))" 5
	check "D: INT_STATUS completion" "$(r32 $((D + 0x200)))" 1
	check "source C untouched by D's work" "$(r32 $((C + 0x130)))" 0

	# FREEZE without QUIESCE mid-op, save, restore into the same device
	w32 $((D + 0x2008)) 300000000           # 300 ms
	SQ=$MSQ
	put_desc 5 2 0 8 0x106 0 $((MBUF + 0x400)) 0x66666666
	w32 $((D + 0x110)) 6
	usleep 60000
	mctl $D 4
	check "FREEZE alone: FROZEN and QUIESCED" "$(( $(mst $D) & 3 ))" 3
	mcmd $D 1
	save_win $D /tmp/win2
	SZ2=$(($(r32 $((D + 0x8010)))))
	check "mid-op save: one entry" $SZ2 $((24 + 112 + 72))
	check "mid-op save: entry executing" "$(word /tmp/win2 50)" 1
	left=$(($(word /tmp/win2 51)))
	[ $left -gt 0 ] && [ $left -lt 300000000 ] &&
		ok "mid-op save: remaining latency $left ns" ||
		nok "mid-op save: remaining latency $left ns"
	usleep 400000
	check "frozen: op does not finish" "$(r32 $((D + 0x130)))" 5
	load_win $D /tmp/win2 $SZ2
	mcmd $D 2
	check "restore into the same device" "$(( $(mst $D) & 0x18 ))" 8
	mctl $D 0
	check "thawed: op resumes its remaining latency (not done yet)" "$(r32 $((D + 0x130)))" 5
	wait_tail $D 6 3000
	check "thawed: op completes once" "$(r32 $((D + 0x130)))" 6
	check "thawed: FILL result" "$(r32 $((MBUF + 0x404)))" 0x66666666
	check "CQ[6] empty" "$(r32 $((MCQ + 96)))" 0

	# a doorbell rung while frozen is deferred, not dropped
	w32 $((D + 0x2008)) 10000               # 10 us ops again
	put_desc 6 2 0 8 0x107 0 $((MBUF + 0x500)) 0x77777777
	mctl $D 5                               # QUIESCE | FREEZE
	check "frozen again" "$(( $(mst $D) & 3 ))" 3
	w32 $((D + 0x110)) 7
	check "frozen: SQ_TAIL doorbell deferred (reads back)" "$(r32 $((D + 0x110)))" 7
	usleep 100000
	check "frozen: deferred doorbell fetches nothing (SQ_HEAD 6)" "$(r32 $((D + 0x10c)))" 6
	mcmd $D 1
	save_win $D /tmp/win3
	check "SAVE carries the deferred SQ_TAIL" "$(word /tmp/win3 17)" 7
	mcmd $D 3
	mctl $D 0
	wait_tail $D 7 3000
	check "thawed: the deferred doorbell ran the op" "$(r32 $((MBUF + 0x504)))" 0x77777777
	mcmd $D 3
	check "DISCARD clears SAVED/RESTORED and SIZE" \
		"$(( ($(mst $D) & 0xc) | $(r32 $((D + 0x8010))) ))" 0
	reset $D

	# head op expired but the CQ is full: QUIESCED at once, op put back
	SQN=8; CQN=2
	setup_rings $D $MSQ $MCQ
	w32 $((D + 0x2008)) 20000000            # 20 ms
	put_desc 0 0 0 0 0x201 0 0 0
	put_desc 1 0 0 0 0x202 0 0 0
	w32 $((D + 0x110)) 2
	usleep 200000
	check "CQ full (size 2): one completion" "$(r32 $((D + 0x130)))" 1
	mctl $D 1
	check "CQ full: QUIESCED at once" "$(( $(mst $D) & 1 ))" 1
	w32 $((D + 0x12c)) 1
	usleep 200000
	check "quiesced: CQ_HEAD doorbell accepted" "$(r32 $((D + 0x12c)))" 1
	check "quiesced: put-back op not executed" "$(r32 $((D + 0x304)))" 1
	mctl $D 0
	wait_tail $D 0 2000
	check "unquiesced: put-back op completes" "$(r32 $((D + 0x304)))" 2
	reset $D

	# PARK: the quiesce stops the executing op at once, keeping its latency
	cpl() { # bar0-name cq-index tag: tag, status OK, phase 1
		c=$((MCQ + $2 * 16))
		check "$1 CQ[$2]: tag $3, status OK, phase 1" \
			"$(( ($(r32 $c) << 16) | ($(r32 $((c + 12))) & 0x100ffff) ))" "$(( ($3 << 16) | 0x1000000 ))"
	}
	mctl $C 0                               # C was left quiesced above
	k=0; while [ $k -lt 32 ]; do w32 $((MCQ + k * 4)) 0; k=$((k + 1)); done
	SQN=8; CQN=8; SQ=$MSQ
	setup_rings $C $MSQ $MCQ
	w32 $((C + 0x2008)) 1000000000          # 1 s per op
	put_desc 0 2 0 8 0x301 0 $((MBUF + 0x500)) 0x3c3c3c3c
	put_desc 1 0 0 0 0x302 0 0 0
	w32 $((C + 0x110)) 2
	usleep 300000
	mctl $C 9                               # QUIESCE | PARK
	check "PARK: QUIESCED at once with a 1 s op in flight" "$(( $(mst $C) & 3 ))" 1
	check "PARK: MIG_PARKED 1" "$(r32 $((C + 0x8028)))" 1
	check "PARK: busy, no completion" "$(( ($(r32 $((C + 0x14))) << 8) | $(r32 $((C + 0x130))) ))" 0x300
	usleep 1200000
	check "parked longer than the op takes: still not done" "$(r32 $((C + 0x130)))" 0
	mctl $C 0
	check "unquiesced: MIG_PARKED 0" "$(r32 $((C + 0x8028)))" 0
	wait_tail $C 2 5000
	check "unquiesced: parked op, then the NOP, complete" "$(r32 $((C + 0x130)))" 2
	cpl C 0 0x301
	cpl C 1 0x302
	check "C CQ[2] empty (nothing completed twice)" "$(r32 $((MCQ + 32)))" 0
	check "parked FILL result" "$(r32 $((MBUF + 0x504)))" 0x3c3c3c3c
	check "C: CNT_COMPLETED 2" "$(r32 $((C + 0x304)))" 2

	# a parked op migrates: C parks and freezes, D restores and runs it
	k=0; while [ $k -lt 32 ]; do w32 $((MCQ + k * 4)) 0; k=$((k + 1)); done
	setup_rings $C $MSQ $MCQ
	w32 $((C + 0x2008)) 1000000000
	put_desc 0 2 0 8 0x311 0 $((MBUF + 0x600)) 0x4d4d4d4d
	w32 $((C + 0x110)) 1
	usleep 300000
	mctl $C 9
	check "PARK for migration: QUIESCED, parked" \
		"$(( ($(mst $C) & 3) | ($(r32 $((C + 0x8028))) << 4) ))" 0x11
	mctl $C 13                              # QUIESCE | PARK | FREEZE
	check "PARK then FREEZE: FROZEN at once" "$(( $(mst $C) & 3 ))" 3
	mcmd $C 1
	save_win $C /tmp/win3
	SZ3=$(($(r32 $((C + 0x8010)))))
	check "parked save: one entry" $SZ3 $((24 + 112 + 72))
	check "parked save: entry executing" "$(word /tmp/win3 50)" 1
	left=$(($(word /tmp/win3 51)))
	[ $left -gt 0 ] && [ $left -lt 1000000000 ] &&
		ok "parked save: remaining latency $left ns" ||
		nok "parked save: remaining latency $left ns"
	reset $D
	mctl $D 5
	load_win $D /tmp/win3 $SZ3
	mcmd $D 2
	check "RESTORE of a parked op: RESTORED|FROZEN|QUIESCED" "$(mst $D)" 0xb
	check "D: MIG_PARKED 1 after restore" "$(r32 $((D + 0x8028)))" 1
	mctl $C 1                               # the source is never resumed
	reset $C
	mctl $C 0
	mctl $D 1
	usleep 100000
	check "D thawed into quiesce: still parked, no completion" \
		"$(( ($(r32 $((D + 0x8028))) << 8) | $(r32 $((D + 0x130))) ))" 0x100
	mctl $D 0
	wait_tail $D 1 5000
	check "D: the parked op completes on the destination" "$(r32 $((D + 0x130)))" 1
	cpl D 0 0x311
	check "D CQ[1] empty (nothing completed twice)" "$(r32 $((MCQ + 16)))" 0
	check "D: migrated FILL result" "$(r32 $((MBUF + 0x604)))" 0x4d4d4d4d
	reset $D

	# D3hot: no DMA and no completion until D0 (BAR0 is unmapped in D3hot:
	# only host memory is read there)
	DPM=$(pci_cap $DEV_D 0x01)
	k=0; while [ $k -lt 32 ]; do w32 $((MCQ + k * 4)) 0; k=$((k + 1)); done
	w32 $((MBUF + 0x700)) 0; w32 $((MBUF + 0x704)) 0
	SQN=8; CQN=8; SQ=$MSQ
	setup_rings $D $MSQ $MCQ
	w32 $((D + 0x2008)) 300000000           # 300 ms
	put_desc 0 2 0 8 0x501 0 $((MBUF + 0x700)) 0x6b6b6b6b
	w32 $((D + 0x110)) 1
	pmcsr=$(cfg_rd $DEV_D $((DPM + 4)) 2)
	cfg_wr $DEV_D $((DPM + 4)) 2 $((pmcsr | 3))
	check "D3hot: PM state 3" "$(( $(cfg_rd $DEV_D $((DPM + 4)) 2) & 3 ))" 3
	usleep 1000000                          # past the op's 300 ms
	check "D3hot: the FILL did not write host memory" "$(r32 $((MBUF + 0x704)))" 0
	check "D3hot: no completion written" "$(( $(r32 $MCQ) | $(r32 $((MCQ + 12))) ))" 0
	cfg_wr $DEV_D $((DPM + 4)) 2 $((pmcsr & ~3))
	check "D0 again: PM state 0" "$(( $(cfg_rd $DEV_D $((DPM + 4)) 2) & 3 ))" 0
	wait_tail $D 1 3000
	check "D0: CQ_TAIL advanced to 1" "$(r32 $((D + 0x130)))" 1
	check "D0: the FILL landed" "$(r32 $((MBUF + 0x704)))" 0x6b6b6b6b
	cpl D 0 0x501
	check "D0: INT_STATUS completion" "$(r32 $((D + 0x200)))" 1
	reset $D

	# D3hot MSI-X: a message pending in the PBA (a completion raised with
	# the MSI-X Function Mask set) stays pending when the Function Mask is
	# cleared, or MSI-X enabled, in D3hot, and is sent back in D0.
	# Vector 0 is aimed at host memory (DSCR), the only thing read in D3hot
	# (the MSI-X BAR is unmapped there, like BAR0).
	DMX=$(pci_cap $DEV_D 0x11)
	_t=$(cfg_rd $DEV_D $((DMX + 4)) 4)
	DTB=$(($(bar $DEV_D $((_t & 7))) + (_t & ~7)))
	_t=$(cfg_rd $DEV_D $((DMX + 8)) 4)
	DPBA=$(($(bar $DEV_D $((_t & 7))) + (_t & ~7)))
	DSCR=$((R + 0x78000))
	dmsixf=$(cfg_rd $DEV_D $((DMX + 2)) 2)
	dpm=$(cfg_rd $DEV_D $((DPM + 4)) 2)
	dmx() { cfg_wr $DEV_D $((DMX + 2)) 2 $(( (dmsixf & ~0xc000) | $1 )); }
	dpms() { cfg_wr $DEV_D $((DPM + 4)) 2 $(( (dpm & ~3) | $1 )); }
	dnop() { # tag: MSI-X on, Function Mask set, vector 0 at DSCR; one NOP
		w32 $DSCR 0
		dmx 0xc000
		w32 $DTB $DSCR; w32 $((DTB + 4)) 0; w32 $((DTB + 8)) $DMSG; w32 $((DTB + 12)) 0
		SQN=8; CQN=8; SQ=$MSQ
		setup_rings $D $MSQ $MCQ
		put_desc 0 0 0 0 $1 0 0 0
		w32 $((D + 0x110)) 1
		wait_tail $D 1 1000
	}
	dpend() { # name on: vector 0 pending in the PBA, then D3hot (on=0: MSI-X off first)
		dnop 0x511
		check "D3hot MSI-X ($1): completion raised, vector 0 pending in the PBA" \
			"$(( ($(r32 $((D + 0x200))) << 4) | ($(r32 $DPBA) & 0xf) ))" 0x11
		check "D3hot MSI-X ($1): vector 0 unmasked, message not sent (Function Mask)" \
			"$(( ($(r32 $((DTB + 12))) & 1) | $(r32 $DSCR) ))" 0
		[ "$2" = 0 ] && dmx 0x4000          # MSI-X off: the PBA bit stays
		dpms 3
		check "D3hot MSI-X ($1): PM state 3" "$(( $(cfg_rd $DEV_D $((DPM + 4)) 2) & 3 ))" 3
	}

	# 1: Function Mask cleared in D3hot, set again before D0: still pending
	DMSG=0x5a5a0001
	dpend "mask cleared, set again" 1
	dmx 0x8000
	check "D3hot MSI-X (mask cleared, set again): Function Mask clear in D3hot" \
		"$(( $(cfg_rd $DEV_D $((DMX + 2)) 2) & 0xc000 ))" 0x8000
	usleep 100000
	check "D3hot MSI-X (mask cleared, set again): no message in D3hot" "$(r32 $DSCR)" 0
	dmx 0xc000
	dpms 0
	usleep 50000
	check "D3hot MSI-X (mask cleared, set again): D0, masked: PBA bit still set" \
		"$(( $(r32 $DPBA) & 0xf ))" 1
	check "D3hot MSI-X (mask cleared, set again): D0, masked: no message" "$(r32 $DSCR)" 0
	dmx 0x8000                              # unmasked in D0: sent at once
	check "D3hot MSI-X (mask cleared, set again): unmasked in D0: message written" \
		"$(r32 $DSCR)" $DMSG
	check "D3hot MSI-X (mask cleared, set again): unmasked in D0: PBA clear" \
		"$(( $(r32 $DPBA) & 0xf ))" 0

	# 2: Function Mask cleared in D3hot: the message waits for D0
	DMSG=0x5a5a0002
	dpend "mask cleared" 1
	dmx 0x8000
	usleep 100000
	check "D3hot MSI-X (mask cleared): no message in D3hot" "$(r32 $DSCR)" 0
	dpms 0
	check "D3hot MSI-X (mask cleared): PM state 0" "$(( $(cfg_rd $DEV_D $((DPM + 4)) 2) & 3 ))" 0
	usleep 50000
	check "D3hot MSI-X (mask cleared): D0: message written" "$(r32 $DSCR)" $DMSG
	check "D3hot MSI-X (mask cleared): D0: PBA clear" "$(( $(r32 $DPBA) & 0xf ))" 0
	check "D3hot MSI-X (mask cleared): D0: MSI-X on, unmasked" \
		"$(( $(cfg_rd $DEV_D $((DMX + 2)) 2) & 0xc000 ))" 0x8000
	w32 $DSCR 0
	usleep 50000
	check "D3hot MSI-X (mask cleared): D0: sent once (no second message)" "$(r32 $DSCR)" 0

	# 3: MSI-X disabled with the bit pending, enabled (unmasked) in D3hot
	DMSG=0x5a5a0003
	dpend "enabled in D3hot" 0
	dmx 0x8000
	usleep 100000
	check "D3hot MSI-X (enabled in D3hot): no message in D3hot" "$(r32 $DSCR)" 0
	dpms 0
	usleep 50000
	check "D3hot MSI-X (enabled in D3hot): D0: message written" "$(r32 $DSCR)" $DMSG
	check "D3hot MSI-X (enabled in D3hot): D0: PBA clear" "$(( $(r32 $DPBA) & 0xf ))" 0

	# 4: quiesced, vector 0 both pending in the PBA and owed (INT_MASK
	# cleared while stopped): the Function Mask cleared while quiesced
	# sends nothing; the resume sends one message and leaves the PBA clear,
	# so toggling the mask afterwards sends no second one
	DMSG=0x5a5a0004
	dnop 0x512
	w32 $((D + 0x204)) 1                    # completion masked
	mctl $D 1
	wait_mst $D 1 1 1000
	w32 $((D + 0x204)) 0                    # unmasked while stopped: owed
	dmx 0x8000
	usleep 50000
	check "quiesced MSI-X: Function Mask cleared: no message" "$(r32 $DSCR)" 0
	check "quiesced MSI-X: still pending in the PBA" "$(( $(r32 $DPBA) & 0xf ))" 1
	mctl $D 0
	usleep 50000
	check "quiesced MSI-X: resume sends the message" "$(r32 $DSCR)" $DMSG
	check "quiesced MSI-X: resume clears the PBA" "$(( $(r32 $DPBA) & 0xf ))" 0
	w32 $DSCR 0
	dmx 0xc000
	dmx 0x8000
	usleep 50000
	check "quiesced MSI-X: mask toggled after resume: no second message" \
		"$(r32 $DSCR)" 0

	cfg_wr $DEV_D $((DMX + 2)) 2 $dmsixf
	reset $D
	fi

	# ---- E: quiesce-unbounded=on, op-latency-ns=400000000, no testctl ----
	if [ -z "${DEV_E:-}" ]; then
		nok "fifth refaccel function (quiesce-unbounded) present"
	else
	E=$(bar "$DEV_E" 0)
	decode_on $DEV_E
	ESQ=$((R + 0x40000)); ECQ=$((R + 0x41000)); EBUF=$((R + 0x42000))
	unbounded() { # what
		k=0; while [ $k -lt 32 ]; do w32 $((ECQ + k * 4)) 0; k=$((k + 1)); done
		w32 $((EBUF + 4)) 0
		SQN=8; CQN=8; SQ=$ESQ
		setup_rings $E $ESQ $ECQ
		put_desc 0 2 0 8 0x401 0 $EBUF 0x12345678
		w32 $((E + 0x110)) 1
		usleep 50000
		mctl $E 9                       # QUIESCE | PARK
		check "E ($1): cannot park: not QUIESCED with the op in flight" "$(( $(mst $E) & 3 ))" 0
		check "E ($1): MIG_PARKED 0" "$(r32 $((E + 0x8028)))" 0
		mctl $E 13                      # and FREEZE
		check "E ($1): FREEZE waits for the drain" \
			"$(( (($(mst $E) & 3) << 8) | $(r32 $((E + 0x130))) ))" 0
		wait_mst $E 3 3 3000
		check "E ($1): drained, then QUIESCED and FROZEN" "$(( $(mst $E) & 3 ))" 3
		check "E ($1): the op completed before (CQ_TAIL 1)" "$(r32 $((E + 0x130)))" 1
		check "E ($1): FILL result" "$(r32 $((EBUF + 4)))" 0x12345678
		mctl $E 0
		reset $E
	}
	check "E CAPS (+QUIESCE_UNBOUNDED)" "$(r32 $((E + 8)))" 0x147
	check "E COMPAT_ID: QUIESCE_UNBOUNDED does not count (A = E)" \
		"$(r32 $((A + 0x8020)))" "$(r32 $((E + 0x8020)))"
	check "E OP_LATENCY_NS from op-latency-ns" "$(r32 $((E + 0x18)))" 400000000
	unbounded "power-on"
	mctl $E 1
	if [ $(($(r32 $((E + 0x802c))))) -gt 0 ]; then
		ok "E: MIG_FN_RESETS counts setup_rings' CTRL.RESET"
	else
		nok "E: MIG_FN_RESETS 0 after CTRL.RESET"
	fi
	flr $DEV_E
	check "E FLR: MIG_CTRL reset" "$(r32 $((E + 0x8000)))" 0
	check "E FLR: MIG_FN_RESETS reset" "$(r32 $((E + 0x802c)))" 0
	check "E FLR: OP_LATENCY_NS still op-latency-ns" "$(r32 $((E + 0x18)))" 400000000
	check "E FLR: CAPS still QUIESCE_UNBOUNDED" "$(r32 $((E + 8)))" 0x147
	unbounded "after FLR"
	fi
else
	# B has ats=on,pasid=on,pri=on,testctl=on here
	check "B CAPS (MIGRATION SRAM_DIRTY DMA_DIRTY P2P PRI ATS PASID TESTCTL)" "$(r32 $((B + 8)))" 0xff
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
	w32 $((B + 0x2008)) 50000
	check "TEST_OP_LATENCY -> OP_LATENCY_NS" "$(r32 $((B + 0x18)))" 50000
	w32 $((B + 0x2000)) 5
	check "TEST_FLAGS stored" "$(r32 $((B + 0x2000)))" 5
	reset $B
	check "reset restores op latency" "$(r32 $((B + 0x18)))" 10000

	# IOMMU on, no driver: the device's DMA is not mapped -> fetch fault
	setup_rings $A 0x10000000 0x10001000
	w32 $((A + 0x110)) 1
	usleep 200000
	check "DMA blocked by vIOMMU: STATUS halted" "$(r32 $((A + 0x14)))" 5
	check "DMA blocked by vIOMMU: HALT_REASON" "$(r32 $((A + 0x20)))" 1
	reset $A

	# fault injection properties, kept across FLR (no ring work here)
	if [ -z "${DEV_D:-}" ]; then
		nok "third and fourth refaccel functions (properties) present"
	else
	C=$(bar "$DEV_C" 0)
	D=$(bar "$DEV_D" 0)
	decode_on $DEV_C
	decode_on $DEV_D
	[ -e "$DEV_C/reset" ] && ok "sysfs reset present ($(cat "$DEV_C/reset_method" 2>/dev/null))" ||
		nok "sysfs reset present"
	# C: never-quiesce=on, testctl off
	nq() { # what
		mctl $C 1
		usleep 100000
		check "never-quiesce ($1): QUIESCE never QUIESCED" "$(( $(mst $C) & 3 ))" 0
		mctl $C 5
		usleep 50000
		check "never-quiesce ($1): FREEZE waits (neither FROZEN nor QUIESCED)" "$(( $(mst $C) & 3 ))" 0
		check "never-quiesce ($1): FREEZE stays requested" "$(r32 $((C + 0x8000)))" 5
		mcmd $C 1
		check "never-quiesce ($1): SAVE fails with NOT_FROZEN" "$(merr $C)" 1
		mctl $C 4
		usleep 50000
		check "never-quiesce ($1): bare FREEZE waits too" "$(( $(mst $C) & 3 ))" 0
		mctl $C 0
		check "never-quiesce ($1): withdrawn" "$(( $(r32 $((C + 0x8000))) | ($(mst $C) & 3) ))" 0
	}
	check "C (never-quiesce=on) CAPS: no TESTCTL" "$(r32 $((C + 8)))" 0x47
	check "C: test block reads 0 without testctl" "$(r32 $((C + 0x2000)))" 0
	nq "power-on"
	reset $C
	nq "after CTRL.RESET"
	mctl $C 1
	flr $DEV_C
	check "C FLR: MIG_CTRL reset, ID readable" "$(( $(r32 $((C + 0x8000))) | $(r32 $C) ))" 0x52464131
	nq "after FLR"
	# D: testctl=on, quiesce-delay-us=200000
	qd() { # what
		check "quiesce-delay-us ($1): TEST_QUIESCE_DELAY" "$(r32 $((D + 0x2004)))" 200000
		mctl $D 5                       # QUIESCE | FREEZE
		check "quiesce-delay-us ($1): neither QUIESCED nor FROZEN at once" "$(( $(mst $D) & 3 ))" 0
		wait_mst $D 3 3 2000
		check "quiesce-delay-us ($1): QUIESCED and FROZEN later" "$(( $(mst $D) & 3 ))" 3
		mctl $D 1
		check "quiesce-delay-us ($1): thawed, QUIESCED" "$(( $(mst $D) & 3 ))" 1
		mctl $D 0
		check "quiesce-delay-us ($1): unquiesced" "$(( $(mst $D) & 3 ))" 0
	}
	qd "power-on"
	w32 $((D + 0x2004)) 0
	mctl $D 1
	check "TEST_QUIESCE_DELAY write overrides the property" "$(( $(mst $D) & 1 ))" 1
	mctl $D 0
	reset $D
	qd "after CTRL.RESET"
	w32 $((D + 0x2004)) 0
	flr $DEV_D
	qd "after FLR"
	fi

	# FLR resets what QEMU's own reset leaves alone (B: ats pasid pri):
	# the DEVCTL error reporting enables, the ATS, PASID and PRI Controls
	BX=$(pci_cap $DEV_B 0x10)
	BATS=$(ext_cap $DEV_B 0x0f); BPASID=$(ext_cap $DEV_B 0x1b); BPRI=$(ext_cap $DEV_B 0x13)
	check "B: PCIe capability at 0x80" $BX 0x80
	[ $BATS -ne 0 ] && [ $BPASID -ne 0 ] && [ $BPRI -ne 0 ] &&
		ok "B: ATS at $BATS, PASID at $BPASID, PRI at $BPRI" ||
		nok "B: ATS, PASID and PRI found ($BATS $BPASID $BPRI)"
	cfg_wr $DEV_B $((BX + 8)) 2 $(($(cfg_rd $DEV_B $((BX + 8)) 2) | 0xf))
	cfg_wr $DEV_B $((BATS + 6)) 2 0x8000    # ATS Control: Enable
	cfg_wr $DEV_B $((BPASID + 6)) 2 1       # PASID Control: Enable
	cfg_wr $DEV_B $((BPRI + 4)) 2 3         # PRI Control: Enable | Reset
	check "PRI Control: Reset (bit 1) reads 0" "$(cfg_rd $DEV_B $((BPRI + 4)) 2)" 1
	check "before FLR: DEVCTL error enables, ATS, PASID, PRI enabled, PRI running" \
		"$(( ($(cfg_rd $DEV_B $((BX + 8)) 2) & 0xf) | ($(cfg_rd $DEV_B $((BATS + 6)) 2) & 0x8000) |
		     (($(cfg_rd $DEV_B $((BPASID + 6)) 2) & 1) << 4) | (($(cfg_rd $DEV_B $((BPRI + 4)) 2) & 1) << 5) |
		     ($(cfg_rd $DEV_B $((BPRI + 6)) 2) & 0x100) ))" 0x803f
	flr_cfg $DEV_B
	check "FLR: DEVCTL error reporting enables (bits 0-3) clear" \
		"$(( $(cfg_rd $DEV_B $((BX + 8)) 2) & 0xf ))" 0
	check "FLR: ATS Control clear" "$(cfg_rd $DEV_B $((BATS + 6)) 2)" 0
	check "FLR: PASID Control clear" "$(cfg_rd $DEV_B $((BPASID + 6)) 2)" 0
	check "FLR: PRI Control clear" "$(cfg_rd $DEV_B $((BPRI + 4)) 2)" 0
	check "FLR: PRI Status reads stopped (bit 8)" "$(cfg_rd $DEV_B $((BPRI + 6)) 2)" 0x100
	check "FLR: B's BAR0 back (ID)" "$(r32 $B)" 0x52464131
fi

echo "smoke: $PASS passed, $FAIL failed"
# list mode: give the host time to look at the monitor (it quits QEMU)
[ $MODE = list ] && sleep 60
poweroff -f
