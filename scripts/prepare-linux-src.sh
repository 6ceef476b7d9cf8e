#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract one of Debian's kernel source packages into the cache, keyed by
# the package version, and install its uAPI headers there.  Prints the
# cache directory; the tree is <dir>/linux-source-<series>.
#
#   scripts/prepare-linux-src.sh [6.12|7.3]
#
# 6.12 (the default): checkpatch, kselftest_harness.h and the uAPI headers
# the project's own tools build against.  7.3 (trixie-backports): its
# checkpatch (the module must be clean for both), its uAPI headers and
# upstream's VFIO selftests (tools/testing/selftests/vfio).
set -euo pipefail

series=${1:-6.12}
case "$series" in
6.12 | 7.3) ;;
*) echo "prepare-linux-src: unknown series '$series' (6.12 or 7.3)" >&2; exit 2 ;;
esac
cache=${REFACCEL_CACHE:-/var/cache/refaccel}
ver=$(dpkg-query -W -f='${Version}' "linux-source-$series")
tag=${ver//[^A-Za-z0-9.+_-]/_}
dir=$cache/linux-$tag
if [ ! -e "$dir/.done" ]; then
	# Only this series' older trees: the other one stays.
	rm -rf "$dir" "$cache"/linux-"$series".*
	mkdir -p "$dir"
	tar -C "$dir" -xf "/usr/src/linux-source-$series.tar.xz"
	make -s -C "$dir/linux-source-$series" headers_install \
		INSTALL_HDR_PATH="$dir/uapi" >/dev/null
	touch "$dir/.done"
fi
echo "$dir"
