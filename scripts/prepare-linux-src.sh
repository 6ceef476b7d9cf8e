#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract Debian's linux-source-6.12 (checkpatch, kselftest_harness.h, the
# 6.12 uAPI headers) into the cache, keyed by the package version, and
# install its uAPI headers there.  Prints the cache directory.
set -euo pipefail

cache=${REFACCEL_CACHE:-/var/cache/refaccel}
ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
dir=$cache/linux-$ver
if [ ! -e "$dir/.done" ]; then
	rm -rf "$dir" "$cache"/linux-6.12*
	mkdir -p "$dir"
	tar -C "$dir" -xf /usr/src/linux-source-6.12.tar.xz
	make -s -C "$dir/linux-source-6.12" headers_install \
		INSTALL_HDR_PATH="$dir/uapi" >/dev/null
	touch "$dir/.done"
fi
echo "$dir"
