#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the project needs on a Debian 12 (bookworm) host, from
# Debian's own packages only.  Idempotent: a second run only checks.
#
# Adds bookworm-backports (QEMU 10 build deps: meson 1.7, pycotap), trixie
# (deb-src for QEMU 10.0 source, virtme-ng) and trixie-backports
# (linux-source-7.3, the own-kernel lane and the second build target);
# trixie and trixie-backports are pinned below the base system so nothing is
# upgraded from them unless asked for by name.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "setup-host: must run as root" >&2; exit 1; }

STAMP_DIR=${REFACCEL_CACHE:-/var/cache/refaccel}
mkdir -p "$STAMP_DIR"

SRC=/etc/apt/sources.list.d/refaccel.sources
PREF=/etc/apt/preferences.d/refaccel.pref

# The Debian mirror this machine already uses for bookworm, read from its
# own apt configuration (deb822 .sources stanzas first, then one-line
# "deb URI bookworm ..." entries), so the added suites come from the same
# place as the base system.
debian_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] && [ "$f" != "$SRC" ] || continue
		awk '
		function flush() { if (suite && uri != "" && !done) { print uri; done = 1 } suite = 0; uri = "" }
		/^[[:space:]]*$/ { flush(); next }
		/^[[:space:]]*#/ { next }
		$1 == "URIs:" { uri = $2 }
		$1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
		END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == "bookworm") print $i
		}' "$f"
	done
}
mirror=$(debian_mirror | awk 'NR == 1')
[ -n "$mirror" ] || {
	echo "setup-host: no bookworm entry in this machine's apt sources" >&2
	exit 1
}

want_src="Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $mirror
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
want_pref='Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50'

changed=0
if [ "$(cat "$SRC" 2>/dev/null)" != "$want_src" ]; then
	printf '%s\n' "$want_src" >"$SRC"
	changed=1
fi
if [ "$(cat "$PREF" 2>/dev/null)" != "$want_pref" ]; then
	printf '%s\n' "$want_pref" >"$PREF"
	changed=1
fi
# Refresh package lists when sources changed or lists are older than a day.
if [ $changed = 1 ] || [ -z "$(find "$STAMP_DIR/apt-updated" -mmin -1440 2>/dev/null)" ]; then
	apt-get update -q
	touch "$STAMP_DIR/apt-updated"
fi

# The kernel the VM lane boots and the module builds against: the newest
# Debian 6.12 kernel from bookworm-security unless KVER_DEB is given
# (form: 6.12.117+deb12-amd64).
if [ -z "${KVER_DEB:-}" ]; then
	srcver=$(apt-cache policy linux-source-6.12 | awk '/Candidate:/ {print $2}')
	KVER_DEB="$(echo "$srcver" | sed -E 's/^([0-9.]+)-.*/\1/')+deb12-amd64"
fi

pkgs=(
	# module build and checks
	build-essential kmod bc flex bison libelf-dev libssl-dev sparse rsync xz-utils
	pciutils
	"linux-image-$KVER_DEB" "linux-headers-$KVER_DEB" linux-source-6.12
	# Linux 7.3: the own-kernel lane (KASAN, IOMMUFD, dma-buf), the second
	# kernel the module builds for, upstream's tools/testing/selftests/vfio
	linux-source-7.3/trixie-backports
	# upstream's libvfio links libuuid (VF tokens)
	uuid-dev
	# packaging check: dkms add/build/install of dkms.conf (temporary trees)
	dkms
	# QEMU 10.0 build (device model host)
	dpkg-dev ninja-build pkg-config python3-venv libglib2.0-dev
	zlib1g-dev libattr1-dev libcap-ng-dev libpixman-1-dev libfdt-dev
	meson/bookworm-backports python3-pycotap/bookworm-backports
	# firmware for the "+ds" QEMU build
	seabios/bookworm-backports ipxe-qemu qemu-system-data/bookworm-backports
	# VM lane
	virtme-ng/trixie busybox-static file
	# make bench: the convergence and downtime plots (PNG)
	gnuplot-nox
	# stock QEMU 10 that runs inside the VM (QEMU migration lane)
	qemu-system-x86/bookworm-backports qemu-system-common/bookworm-backports
)

missing=()
for p in "${pkgs[@]}"; do
	name=${p%/*}
	if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-host: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "$KVER_DEB" >"$STAMP_DIR/kver"
echo "setup-host: ok (kernel $KVER_DEB)"
