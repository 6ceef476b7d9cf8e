#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Packaging checks for `make check` (README.md, "Installing"), all on the
# host and all in temporary trees under WORKDIR: nothing is written to the
# real /lib/modules, /var/lib/dkms or /usr/src.
#
#   tests/packaging.sh install WORKDIR   make install / make uninstall into a
#                                        temporary root (needs `make module`)
#   tests/packaging.sh dkms WORKDIR      dkms add/build/install/remove with
#                                        --dkmstree/--sourcetree/--installtree
#   tests/packaging.sh run-tests         make -C tools/testing/selftests/vfio-mig
#                                        run_tests (host: no device, SKIPs)
#
# Each mode exits 0 when every check held; it prints what it checked.
# The kernel is KVER (default: the one scripts/setup-host.sh chose).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:?usage: packaging.sh install|dkms WORKDIR | run-tests}
kver=${KVER:-$(cat "${REFACCEL_CACHE:-/var/cache/refaccel}/kver")}
name=refaccel-vfio-pci
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' dkms.conf)
# What a module built for this kernel must say (any of its own modules).
stock_ko=$(find "/lib/modules/$kver/kernel/drivers/vfio/pci" -name 'vfio-pci.ko*' | head -n 1)
want_vermagic=$(modinfo -F vermagic "$stock_ko")

fail() {
	echo "FAIL: $*"
	exit 1
}

# A temporary module root that resolves dependencies against the real
# kernel: kernel/ is a symlink (depmod -b reads through it, writes only in
# the temporary lib/modules/KVER).
fake_root() {
	local root=$1 m=$1/lib/modules/$kver
	mkdir -p "$m"
	ln -sfn "/lib/modules/$kver/kernel" "$m/kernel"
	cp "/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$m/"
}

# The real trees must not change: list what in them is newer than STAMP.
changed_real_trees() {
	find /var/lib/dkms "/lib/modules/$kver" -newer "$1" -print 2>/dev/null
	find /usr/src -maxdepth 1 -newer "$1" -print 2>/dev/null
}

case $mode in
install)
	w=${2:?WORKDIR}
	rm -rf "$w"
	mkdir -p "$w"
	touch "$w/stamp"
	sleep 1
	root=$w/root
	fake_root "$root"
	make install INSTALL_MOD_PATH="$root" KVER="$kver"
	ko=$(find "$root/lib/modules/$kver/updates" -name "$name.ko*")
	[ -n "$ko" ] || fail "no $name.ko* under $root/lib/modules/$kver/updates"
	echo "installed: ${ko#"$root"}"
	dep=$(grep "^updates/$name\.ko[.a-z]*:" "$root/lib/modules/$kver/modules.dep") ||
		fail "no updates/$name.ko entry in modules.dep"
	echo "modules.dep: $dep"
	# depmod resolved its symbols against the real kernel's modules.
	case $dep in
	*kernel/drivers/vfio/pci/vfio-pci-core.ko*) ;;
	*) fail "modules.dep entry lacks vfio-pci-core" ;;
	esac
	vm=$(modinfo -F vermagic "$ko")
	[ "$vm" = "$want_vermagic" ] || fail "vermagic '$vm', want '$want_vermagic'"
	echo "vermagic: $vm"
	# DESTDIR works as INSTALL_MOD_PATH does.
	make -s install DESTDIR="$w/destdir" KVER="$kver" >/dev/null 2>&1
	[ -n "$(find "$w/destdir/lib/modules/$kver/updates" -name "$name.ko*")" ] ||
		fail "make install DESTDIR= installed nothing"
	make uninstall INSTALL_MOD_PATH="$root" KVER="$kver"
	[ -z "$(find "$root/lib/modules/$kver/updates" -name "$name.ko*")" ] ||
		fail "make uninstall left the module"
	! grep -q "/$name\.ko" "$root/lib/modules/$kver/modules.dep" ||
		fail "modules.dep still lists $name after make uninstall"
	echo "uninstalled, modules.dep entry gone"
	c=$(changed_real_trees "$w/stamp")
	[ -z "$c" ] || fail "real trees changed: $c"
	echo "real /lib/modules/$kver, /var/lib/dkms, /usr/src untouched"
	;;
dkms)
	w=${2:?WORKDIR}
	command -v dkms >/dev/null || fail "dkms not installed"
	rm -rf "$w"
	mkdir -p "$w"
	touch "$w/stamp"
	sleep 1
	src=$w/src
	inst=$w/lib/modules
	mkdir -p "$inst/$kver" "$w/dkms"
	trees=(--dkmstree "$w/dkms" --sourcetree "$src" --installtree "$inst")
	# dkms signs with its MOK key, created on first use in /var/lib/dkms
	# unless told otherwise: keep it in WORKDIR too.
	export mok_signing_key=$w/mok.key mok_certificate=$w/mok.pub
	dkms --version
	# Only dkms.conf, the module and include/: no other tooling.
	make -s dkms-src DKMS_SOURCE_TREE="$src"
	(cd "$src/$name-$ver" && find . -type f | sort)
	dkms add -m "$name" -v "$ver" "${trees[@]}"
	dkms build -m "$name" -v "$ver" -k "$kver" "${trees[@]}" ||
		{ cat "$w/dkms/$name/$ver/build/make.log" 2>/dev/null; exit 1; }
	# --no-depmod: dkms's depmod would run on the real /lib/modules.
	dkms install -m "$name" -v "$ver" -k "$kver" "${trees[@]}" --no-depmod
	st=$(dkms status -m "$name" -v "$ver" -k "$kver" "${trees[@]}")
	echo "status: $st"
	case $st in *": installed"*) ;; *) fail "dkms status: '$st'" ;; esac
	ko=$(find "$inst/$kver/updates/dkms" -name "$name.ko*")
	[ -n "$ko" ] || fail "no $name.ko* under $inst/$kver/updates/dkms"
	echo "installed: ${ko#"$w"}"
	vm=$(modinfo -F vermagic "$ko")
	[ "$vm" = "$want_vermagic" ] || fail "vermagic '$vm', want '$want_vermagic'"
	echo "vermagic: $vm"
	[ "$(modinfo -F name "$ko")" = "${name//-/_}" ] || fail "modinfo name"
	[ "$(modinfo -F version "$ko")" = "$ver" ] ||
		fail "modinfo version '$(modinfo -F version "$ko")', want $ver (dkms.conf)"
	echo "version: $ver"
	echo "signer: $(modinfo -F signer "$ko")"
	dkms remove -m "$name" -v "$ver" --all "${trees[@]}" --no-depmod
	[ -z "$(find "$inst/$kver" -name "$name.ko*")" ] || fail "dkms remove left the module"
	echo "removed"
	c=$(changed_real_trees "$w/stamp")
	[ -z "$c" ] || fail "real trees changed: $c"
	echo "real /lib/modules/$kver, /var/lib/dkms, /usr/src untouched"
	;;
run-tests)
	# The documented command, with its defaults.  Without the device every
	# test SKIPs; what is checked is the runner: its plan, one result per
	# binary, the timeout from `settings`, and no failure.
	d=tools/testing/selftests/vfio-mig
	o=$(make -s -C "$d" run_tests 2>&1) || { echo "$o"; fail "run_tests exited non-zero"; }
	echo "$o" | grep -E '^(1\.\.|ok |not ok |# timeout)'
	plan=$(echo "$o" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p')
	results=$(echo "$o" | grep -cE '^(not )?ok [0-9]+ selftests: vfio-mig: ')
	if [ -z "$plan" ] || [ "$plan" = 0 ] || [ "$plan" != "$results" ]; then
		fail "plan '$plan', $results results"
	fi
	want=$(sed -n 's/^timeout=//p' "$d/settings")
	[ "$(echo "$o" | grep -c "^# timeout set to $want\$")" = "$plan" ] ||
		fail "not every binary ran with the settings timeout $want"
	;;
*)
	fail "unknown mode $mode"
	;;
esac
echo "packaging $mode: ok"
