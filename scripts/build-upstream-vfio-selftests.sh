#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build Linux 7.3's own VFIO selftests (tools/testing/selftests/vfio) with
# a libvfio driver for the refaccel device added, so that upstream's
# vfio_pci_driver_test can copy memory and send MSIs on it.
#
#   scripts/build-upstream-vfio-selftests.sh [OUTDIR]
#
# OUTDIR (default out/upstream-vfio) gets
#   src/   a copy of the parts of the 7.3 tree the selftests build needs
#          (tools/include, tools/arch, scripts/subarch.include, lib.mk,
#          kselftest*.h, kselftest/ and selftests/vfio), with our driver
#          linked in as lib/drivers/refaccel/refaccel.c and registered;
#   bin/   the test binaries and the libvfio objects.
# The last line printed is the bin/ directory (tests/upstream-vfio.sh takes
# it).  The copy is made once per 7.3 source package version; a rerun only
# runs make, which rebuilds what changed (our driver and register header
# included).
#
# Edits to the copy, each made after an exact anchor line that must occur
# once (the script fails if 7.3's text is not what it expects):
#   lib/libvfio.mk          LIBVFIO_C += drivers/refaccel/refaccel.c
#   lib/vfio_pci_driver.c   refaccel_ops declared and put in driver_ops[]
#   Makefile                TEST_GEN_PROGS += vfio_pci_device_migration_test,
#                           our migration test (linked in like the driver:
#                           tools/testing/selftests/vfio/ of this tree)
#   lib/iommu.c             VFIO_SELFTESTS_IOMMU_MODE, when set, replaces
#                           default_iommu_mode ("iommufd"): the tests that
#                           use the default (vfio_pci_driver_test's main()
#                           among them) cannot run at all where /dev/iommu
#                           is absent, as on Debian's 6.12 kernel.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/out/upstream-vfio}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cache=$(bash "$top/scripts/prepare-linux-src.sh" 7.3 | tail -n 1)
linux=$cache/linux-source-7.3
uapi=$cache/uapi/include
ksft_rel=tools/testing/selftests
[ -d "$linux/$ksft_rel/vfio" ] || {
	echo "build-upstream-vfio: no $ksft_rel/vfio in $linux" >&2
	exit 1
}
[ -f "$uapi/linux/vfio.h" ] || {
	echo "build-upstream-vfio: no uAPI headers in $uapi" >&2
	exit 1
}

src=$out/src
bin=$out/bin
vfio=$src/$ksft_rel/vfio
driver=$top/tools/testing/selftests/vfio/lib/drivers/refaccel/refaccel.c
migtest=vfio_pci_device_migration_test

die() { echo "build-upstream-vfio: $*" >&2; exit 1; }

# insert_after FILE ANCHOR MARKER TEXT: put TEXT (lines) after the line
# that is exactly ANCHOR, unless FILE already contains MARKER.
insert_after() {
	local file=$1 anchor=$2 marker=$3 text=$4 n
	if grep -qF -- "$marker" "$file"; then
		return 0
	fi
	n=$(grep -cxF -- "$anchor" "$file" || true)
	[ "$n" = 1 ] || die "${file#"$src"/}: anchor line '$anchor' found $n times, expected once; 7.3's file changed, update this script"
	ANCHOR=$anchor TEXT=$text awk '
		BEGIN { a = ENVIRON["ANCHOR"]; t = ENVIRON["TEXT"] }
		{ print }
		$0 == a { print t }
	' "$file" >"$file.tmp"
	mv "$file.tmp" "$file"
	grep -qF -- "$marker" "$file" || die "${file#"$src"/}: edit did not apply"
}

# The copy, once per source version (the cache path holds the version).
stamp=$src/.refaccel-source
if [ "$(cat "$stamp" 2>/dev/null)" != "$linux" ]; then
	echo "build-upstream-vfio: copying the selftests of $linux"
	rm -rf "$src" "$src.tmp" "$bin"
	mkdir -p "$src.tmp/$ksft_rel" "$src.tmp/scripts" "$src.tmp/tools"
	cp -a "$linux/tools/include" "$linux/tools/arch" "$src.tmp/tools/"
	cp -a "$linux/scripts/subarch.include" "$src.tmp/scripts/"
	for f in lib.mk kselftest.h kselftest_harness.h kselftest vfio; do
		cp -a "$linux/$ksft_rel/$f" "$src.tmp/$ksft_rel/"
	done
	# Relative symlinks into the rest of the tree (the drivers' register
	# headers, tools/include/linux/pci_ids.h): copy what they point to.
	while IFS= read -r l; do
		rel=${l#"$src.tmp"/}
		t=$(realpath -m "$linux/$(dirname "$rel")/$(readlink "$l")")
		case "$t" in
		"$linux"/*) ;;
		*) die "$rel points outside the source tree" ;;
		esac
		t=${t#"$linux"/}
		mkdir -p "$src.tmp/$(dirname "$t")"
		cp -L "$linux/$t" "$src.tmp/$t"
	done < <(find "$src.tmp" -xtype l)
	[ -z "$(find "$src.tmp" -xtype l)" ] || die "dangling symlinks in the copy"
	echo "$linux" >"$src.tmp/.refaccel-source"
	mv "$src.tmp" "$src"
fi

# Our driver, linked so that edits to it are picked up by make.
mkdir -p "$vfio/lib/drivers/refaccel"
ln -sfn "$driver" "$vfio/lib/drivers/refaccel/refaccel.c"
# Our migration test, built like upstream's own (no 7.3 test migrates).
ln -sfn "$top/tools/testing/selftests/vfio/$migtest.c" "$vfio/$migtest.c"

tab=$'\t'
insert_after "$vfio/Makefile" \
	"TEST_GEN_PROGS += vfio_pci_sriov_uapi_test" \
	"TEST_GEN_PROGS += $migtest" \
	"TEST_GEN_PROGS += $migtest"
insert_after "$vfio/lib/libvfio.mk" \
	"LIBVFIO_C += drivers/igb/igb.c" \
	"drivers/refaccel/refaccel.c" \
	"LIBVFIO_C += drivers/refaccel/refaccel.c"
insert_after "$vfio/lib/vfio_pci_driver.c" \
	"extern struct vfio_pci_driver_ops igb_ops;" \
	"extern struct vfio_pci_driver_ops refaccel_ops;" \
	"extern struct vfio_pci_driver_ops refaccel_ops;"
insert_after "$vfio/lib/vfio_pci_driver.c" \
	"$tab&igb_ops," \
	"$tab&refaccel_ops," \
	"$tab&refaccel_ops,"
insert_after "$vfio/lib/iommu.c" \
	"const char *default_iommu_mode = MODE_IOMMUFD;" \
	"VFIO_SELFTESTS_IOMMU_MODE" \
	"
/*
 * Added by the refaccel-vfio-pci tree: \$VFIO_SELFTESTS_IOMMU_MODE, when
 * set, replaces the default mode, for kernels without /dev/iommu.
 */
static void __attribute__((constructor)) default_iommu_mode_from_env(void)
{
${tab}const char *mode = getenv(\"VFIO_SELFTESTS_IOMMU_MODE\");

${tab}if (mode && *mode)
${tab}${tab}default_iommu_mode = mode;
}"

# KHDR_INCLUDES as -isystem (lib.mk's own default form): searched after
# the -I of tools/include, whose linux/types.h the tests need.
mkdir -p "$bin"
make -C "$vfio" -j"$(nproc)" \
	OUTPUT="$bin" \
	KHDR_INCLUDES="-isystem $uapi" \
	EXTRA_CFLAGS="-I$top/include"

progs=$(sed -n 's/^TEST_GEN_PROGS += //p' "$vfio/Makefile")
[ -n "$progs" ] || die "no TEST_GEN_PROGS in $vfio/Makefile"
missing=0
echo "build-upstream-vfio: 7.3 source  $linux"
echo "build-upstream-vfio: uAPI        $uapi"
echo "build-upstream-vfio: copy        $vfio"
echo "build-upstream-vfio: driver      $driver"
echo "build-upstream-vfio: libvfio     $bin/libvfio"
for p in $progs; do
	if [ -x "$bin/$p" ]; then
		echo "build-upstream-vfio: built       $bin/$p"
	else
		echo "build-upstream-vfio: MISSING     $bin/$p" >&2
		missing=1
	fi
done
[ -f "$bin/libvfio/drivers/refaccel/refaccel.o" ] ||
	die "libvfio was built without the refaccel driver"
[ "$missing" = 0 ] || die "some test binaries were not built"
echo "$bin"
