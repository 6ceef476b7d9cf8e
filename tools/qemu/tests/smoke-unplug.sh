# SPDX-License-Identifier: GPL-2.0
#
# Sourced by smoke-init.sh with refaccel.smoke=unplug (boot 3 of smoke.sh):
# refaccel functions sit behind PCIe root ports and unplug themselves from
# inside their own DMA or MSI.  A write that sets Power Controller Control
# (off) with the Power Indicator off in a port's Slot Control makes QEMU's
# pcie_cap_slot_write_config() unplug the function below at once; ECAM is
# plain MMIO, so the device's own write can be that write.  The port's
# physical slot number says how each victim does it:
#   1  a FILL descriptor aimed at Slot Control, while a quiesce waits for it
#      (testctl=on, with a quiesce delay: a timer would be armed after it)
#   2  the completion's MSI-X message aimed at Slot Control, a descriptor
#      queued behind it (the engine would start it)
#   3  the CQ aimed at Slot Control, a descriptor queued behind (ioh3420:
#      Slot Control falls on the completion's result, a CRC32C whose seed
#      the first function finds)
#   4  an INT_MASK write that releases two messages, vector 0's aimed at
#      Slot Control (vector 1's would follow through a torn-down MSI-X)
# Each must leave QEMU running, the function gone (all ones in its config
# space) and the slot empty.  pciehp sees the presence change but finds the
# slot already off ("Already disabled"), so the stale pci_dev is removed by
# hand; a rescan must not find anything behind the ports.  Last, the first
# function FLRs itself with an MSI-X message aimed at its own Device Control,
# a second message due with it: the function must be reset, QEMU alive and
# the PBA clear.
# Uses the helpers of smoke-init.sh; $RA lists the refaccel functions.

R=0x10000000            # memmap= reserved, identity DMA (no IOMMU)
ecam=$(grep -E 'PCI (MMCONFIG|ECAM)' /proc/iomem | head -n1 | sed 's/^ *//; s/-.*//')
[ -n "$ecam" ] || ecam=b0000000    # q35 default

ecam_of() { # bdf: ECAM address of its config space
	echo $((0x$ecam + (0x$(echo $1 | cut -d: -f2) << 20) +
		(0x$(echo $1 | cut -d: -f3 | cut -d. -f1) << 15) +
		($(echo $1 | cut -d. -f2) << 12)))
}
cfg() { # dev offset size: config space read (through sysfs)
	hexdump -s $(($2)) -n $3 -e "1/$3 \"0x%x\"" "$1/config"
}
cfg_w16() { # dev offset value
	printf "\\$(printf %03o $(($3 & 0xff)))\\$(printf %03o $((($3 >> 8) & 0xff)))" |
		dd of="$1/config" bs=2 seek=$(($2 / 2)) count=1 conv=notrunc 2>/dev/null
}
find_cap() { # dev id: offset of the capability, 0 if none
	p=$(($(cfg $1 0x34 1) & 0xfc))
	n=0
	while [ $p -ne 0 ] && [ $n -lt 48 ]; do
		[ $(($(cfg $1 $p 1))) -eq $(($2)) ] && break
		p=$(($(cfg $1 $((p + 1)) 1) & 0xfc))
		n=$((n + 1))
	done
	echo $p
}
msix_at() { # dev addr data: vector 0's message, MSI-X on (1..3 stay masked)
	x=$(find_cap $1 0x11)
	t=$(cfg $1 $((x + 4)) 4)
	tb=$(($(bar $1 $((t & 7))) + (t & ~7)))
	w32 $tb $2; w32 $((tb + 4)) 0; w32 $((tb + 8)) $3; w32 $((tb + 12)) 0
	cfg_w16 $1 $((x + 2)) $((($(cfg $1 $((x + 2)) 2) | 0x8000) & ~0x4000))
}

# the function on the root bus (A) helps; every one behind a port is a victim
DEV_A=""
VICTIMS=""
for d in $RA; do
	case $(basename $d) in
	0000:00:*) [ -n "$DEV_A" ] || DEV_A=$d ;;
	*) VICTIMS="$VICTIMS $d" ;;
	esac
done
A=$(bar "$DEV_A" 0)
decode_on $DEV_A
check "first function on the root bus (ID)" "$(r32 $A)" 0x52464131
set -- $VICTIMS
check "four functions behind root ports" $# 4

# a CRC32C seed whose result over 4 bytes at BUF has every bit of mask set
# (two ring slots, written once: then only the seed changes)
BUF=$((R + 0x10000))
w32 $BUF 0x600dcafe
crc_seed() { # mask
	SQ=$R; CQ=$((R + 0x1000))
	SQN=2; CQN=2
	setup_rings $A $SQ $CQ
	put_desc 0 3 0 4 0 $BUF 0 0
	put_desc 1 3 0 4 0 $BUF 0 0
	v=1
	while [ $v -lt 1024 ]; do
		w32 $((SQ + TAIL * 64 + 32)) $v
		TAIL=$(((TAIL + 1) % SQN))
		w32 $((A + 0x110)) $TAIL
		want=$(((CQT + 1) % CQN))
		wait_cq $want
		res=$(r32 $((CQ + CQT * 16 + 8)))
		CQT=$want
		w32 $((A + 0x12c)) $CQT
		if [ $((res & $1)) -eq $(($1)) ]; then
			echo $v
			return
		fi
		v=$((v + 1))
	done
	echo 0
}

# V: the victim, VB its BAR0; P its port, PX the port's PCIe capability,
# SLT the ECAM address of its Slot Control, OFF a Slot Control value that
# powers the slot off (and keeps pciehp's interrupt enables), PSN its slot.
# two_due bar0 tag: with completion and error masked, a NOP completes and an
# SQ fetch fault halts the function: both interrupts wait in INT_STATUS
# for an INT_MASK write to release their messages together
two_due() {
	setup_rings $1 $SQ $CQ
	w32 $(($1 + 0x204)) 3           # completion and error masked
	put_desc 0 0 0 0 $2 0 0 0
	w32 $(($1 + 0x110)) 1
	wait_tail $1 1 1000
	w32 $(($1 + 0x10)) 0            # disabled and idle: rings unlocked
	w32 $(($1 + 0x100)) 0; w32 $(($1 + 0x104)) 0xfff
	w32 $(($1 + 0x10)) 1
	w32 $(($1 + 0x110)) 1           # SQ fetch fault: halted
	usleep 50000
}

victim() { # dev
	V=$1
	P=$(dirname "$(readlink -f "$V")")
	PX=$(find_cap $P 0x10)
	SLT=$(($(ecam_of $(basename $P)) + PX + 0x18))
	OFF=$(($(cfg $P $((PX + 0x18)) 2) | 0x700))
	PSN=$(($(cfg $P $((PX + 0x14)) 4) >> 19))
	VB=$(bar $V 0)
	decode_on $V
	echo "victim $(basename $V) below $(basename $P) (slot $PSN): Slot Control" \
		"at $(printf '0x%x' $SLT) = $(cfg $P $((PX + 0x18)) 2), off = $(printf '0x%x' $OFF)"
}
gone() { # what
	check "$1: QEMU alive (first function's ID)" "$(r32 $A)" 0x52464131
	check "$1: function gone (config space reads all ones)" "$(cfg $V 0 4)" 0xffffffff
	check "$1: slot empty (Slot Status PDS)" \
		"$(($(cfg $P $((PX + 0x1a)) 2) & 0x40))" 0
	check "$1: slot powered off" "$(($(cfg $P $((PX + 0x18)) 2) & 0x400))" 0x400
	echo 1 >"$V/remove"
	[ -e "$V" ] && nok "$1: stale function removed" || ok "$1: stale function removed"
}

SEEN=""
k=0
for d in $VICTIMS; do
	victim $d
	k=$((k + 1))
	SQ=$((R + 0x20000 + k * 0x4000))
	CQ=$((SQ + 0x1000))
	w32 $CQ 0; w32 $((CQ + 16)) 0
	SQN=8; CQN=4
	SEEN="$SEEN $PSN"
	case $PSN in
	1)
		setup_rings $VB $SQ $CQ
		w32 $((VB + 0x2008)) 100000000  # 100 ms per op
		w32 $((VB + 0x2004)) 300000     # QUIESCED 300 ms after the drain
		put_desc 0 2 0 2 0x601 0 $SLT $OFF
		put_desc 1 0 0 0 0x602 0 0 0
		w32 $((VB + 0x110)) 2
		usleep 20000
		mctl $VB 1                      # QUIESCE: the FILL may finish
		check "FILL: in flight, quiesce waits" \
			"$(( ($(mst $VB) & 1) | $(r32 $((VB + 0x130))) ))" 0
		usleep 600000                   # past the op and the quiesce delay
		gone "FILL into the port's Slot Control"
		check "FILL: no completion after the unplug" "$(r32 $CQ)" 0
		;;
	2)
		msix_at $V $SLT $OFF
		setup_rings $VB $SQ $CQ
		put_desc 0 0 0 0 0x701 0 0 0
		put_desc 1 0 0 0 0x702 0 0 0
		w32 $((VB + 0x110)) 2
		usleep 100000
		gone "completion MSI-X into the port's Slot Control"
		check "MSI-X: the completion before it was written" "$(r32 $CQ)" 0x701
		check "MSI-X: the next descriptor did not run" "$(r32 $((CQ + 16)))" 0
		;;
	3)
		if [ $(((SLT - 8) & 15)) -ne 0 ]; then
			nok "CQ: Slot Control 8 bytes into a completion slot"
			continue
		fi
		# a result that sets power off and indicator off in Slot Control
		seed=$(crc_seed 0x700)
		[ $seed -ne 0 ] && ok "CQ: CRC32C seed $seed found" ||
			nok "CQ: CRC32C seed found"
		# the tag lands on Link Control/Status: write them back as they are
		lnk=$(cfg $P $((PX + 0x10)) 4)
		SQ=$((R + 0x20000 + k * 0x4000))
		CQN=2
		setup_rings $VB $SQ $((SLT - 8))
		CQN=4
		put_desc 0 3 0 4 $lnk $BUF 0 $seed
		put_desc 1 2 0 4 0x802 0 $((SQ + 0x2000)) 0x12345678
		w32 $((SQ + 0x2000)) 0
		w32 $((VB + 0x110)) 2
		usleep 100000
		gone "completion into the port's Slot Control"
		check "CQ: the next descriptor did not run" "$(r32 $((SQ + 0x2000)))" 0
		;;
	4)
		msix_at $V $SLT $OFF
		two_due $VB 0x901
		check "INT_MASK: completion and error pending" "$(r32 $((VB + 0x200)))" 3
		w32 $((VB + 0x204)) 0           # both messages go: the first unplugs
		gone "INT_MASK write releasing MSI-X into the port's Slot Control"
		;;
	*)
		nok "victim behind a port with slot number $PSN"
		;;
	esac
done
check "slots 1 2 3 4 exercised" "0x$(echo $SEEN | tr ' ' '\n' | sort | tr -d '\n')" 0x1234

# QEMU's view: a rescan finds nothing behind the ports
echo 1 >/sys/bus/pci/rescan
usleep 200000
left=0
for d in $VICTIMS; do [ -e "$d" ] && left=$((left + 1)); done
check "rescan: no function came back" $left 0
check "QEMU alive at the end (first function's ID)" "$(r32 $A)" 0x52464131

# An MSI-X message that FLRs its own function: A's vector 0 aimed at its own
# Device Control through ECAM (Initiate FLR; the 32-bit write also writes
# zeros to Device Status, which is RW1C), vector 1 due at the same time
# (an INT_MASK write releases both).  The FLR disables MSI-X: the message
# owed to vector 1 was for the function before the reset, and must not be
# left pending in the PBA of the new one, nor be sent.
dd if="$DEV_A/config" of=/tmp/cfga bs=64 count=1 2>/dev/null
AX=$(find_cap $DEV_A 0x10)
AM=$(find_cap $DEV_A 0x11)
SCR=$((R + 0x70000))                    # where vector 1's message would land
w32 $SCR 0
msix_at $DEV_A $(($(ecam_of $(basename $DEV_A)) + AX + 8)) 0x8000
t=$(cfg $DEV_A $((AM + 4)) 4)
tb=$(($(bar $DEV_A $((t & 7))) + (t & ~7)))
w32 $((tb + 16)) $SCR; w32 $((tb + 20)) 0; w32 $((tb + 24)) 0x5a5a; w32 $((tb + 28)) 0
SQ=$((R + 0x60000)); CQ=$((SQ + 0x1000))
SQN=8; CQN=4
two_due $A 0xa01
check "self-FLR by MSI-X: completion and error pending" "$(r32 $((A + 0x200)))" 3
check "self-FLR by MSI-X: MSI-X on, vectors 0 and 1 unmasked" \
	"$(( ($(cfg $DEV_A $((AM + 2)) 2) & 0xc000) | ($(r32 $((tb + 12))) & 1) | ($(r32 $((tb + 28))) & 1) ))" 0x8000
w32 $((A + 0x204)) 0                    # both messages due: the first FLRs A
usleep 50000
check "self-FLR by MSI-X: QEMU alive (A's config space)" "$(cfg $DEV_A 0 4)" 0x11ac1234
check "self-FLR by MSI-X: FLR cleared the command register" "$(cfg $DEV_A 4 2)" 0
dd if=/tmp/cfga of="$DEV_A/config" bs=4 skip=4 seek=4 count=12 conv=notrunc 2>/dev/null
dd if=/tmp/cfga of="$DEV_A/config" bs=2 skip=2 seek=2 count=1 conv=notrunc 2>/dev/null
check "self-FLR by MSI-X: A's BAR0 back (ID)" "$(r32 $A)" 0x52464131
check "self-FLR by MSI-X: A reset (CTRL, STATUS, INT_STATUS read 0)" \
	"$(( $(r32 $((A + 0x10))) | $(r32 $((A + 0x14))) | $(r32 $((A + 0x200))) ))" 0
check "self-FLR by MSI-X: MSI-X disabled" "$(( $(cfg $DEV_A $((AM + 2)) 2) & 0x8000 ))" 0
p=$(cfg $DEV_A $((AM + 8)) 4)
pba=$(($(bar $DEV_A $((p & 7))) + (p & ~7)))
check "self-FLR by MSI-X: PBA at 0x800 of the MSI-X BAR" $((p & ~7)) 0x800
check "self-FLR by MSI-X: no pending bit in the PBA" \
	"$(( $(r32 $pba) | $(r32 $((pba + 4))) ))" 0
check "self-FLR by MSI-X: vector 1's message not sent" "$(r32 $SCR)" 0
