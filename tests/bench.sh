#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: what the driver's migration costs, each figure against the
# physical limit measured in the same run (see Documentation/testing.rst).
# Host side; boots two VMs with tools/vm/run:
#
#   mig   functions of sram-size 1M (two, pri=on), 4M, 16M and 64M:
#         refaccel_mig_bench (STOP_COPY save and RESUMING load against
#         memcpy of BAR2, stop-copy bytes after pre-copy, quiesce against
#         the op in flight, and against an op waiting on a page request) and, on
#         the own kernel, refaccel_dirty_bench (DMA_LOGGING_REPORT of 1 GiB
#         and 16 GiB against reading a bitmap of that size)
#   lane  the QEMU lane's idle and busy scenarios (tests/qemu-lane/run.sh)
#         with the driver's tracepoints on: QEMU's downtime of a busy guest
#         against an idle one, and against the device's own STOP_COPY time
#         (from the arc into STOP_COPY to the data_fd's EOF, in the trace)
#
# Everything lands in $REFACCEL_BENCH_OUT (default out/bench): bench.json
# (all of it merged), the logs, and two PNGs (gnuplot): convergence.png
# (stop-copy bytes per pre-copy iteration) and downtime.png (STOP_COPY save
# time, and QEMU's downtime, against SRAM size).  One table of ratios is
# printed at the end.  Timings never fail anything; a missing piece is a
# SKIP with its reason.  Exit status 1 only if a build failed or a
# benchmark reported a real error (a failing ioctl, a wrong result).
#
# Environment: REFACCEL_OWN_KERNEL=0 (stock kernel only: no DMA logging
# rows, the lane with enable-migration=on), REFACCEL_BENCH_SIZES (extra
# SRAM sizes, default "4M 16M 64M"), REFACCEL_BENCH_LANE=0 (no lane VM),
# REFACCEL_BENCH_ARGS (more refaccel_mig_bench options, word-split).
#
# Inside the VM this script runs itself: tests/bench.sh --in-vm mig|lane DIR.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
st=tools/testing/selftests/vfio-mig

# ---- inside the VM ----
in_vm_mig() {	# DIR
	local d=$1 rc
	# As tests/vm-suite.sh: the gate judges this run, not the boot.
	dmesg -c >/dev/null
	tests/splat-gate.sh begin
	tools/vm/bind.sh refaccel-vfio-pci 2>&1 | sed 's/^/# /'
	lspci -d 1234:11ac | sed 's/^/# lspci: /'
	# shellcheck disable=SC2086	# options, word-split on purpose
	"$BENCH_BIN/refaccel_mig_bench" --json "$d/mig.json" ${REFACCEL_BENCH_ARGS:-} >"$d/mig.txt" 2>"$d/mig.err"
	echo "$?" >"$d/mig.rc"
	if [ "${BENCH_DIRTY:-0}" = 1 ]; then
		REFACCEL_DIRTY_BENCH=$BENCH_BIN/refaccel_dirty_bench \
			tests/dirty-bench.sh --json "$d/dirty.json" >"$d/dirty.txt" 2>&1
		rc=$?
		echo "$rc" >"$d/dirty.rc"
	fi
	tests/splat-gate.sh check >"$d/splat.txt" 2>&1
	echo "$?" >"$d/splat.rc"
}

in_vm_lane() {	# DIR
	local d=$1 t=/sys/kernel/tracing w
	[ -d $t/events ] || mount -t tracefs nodev $t 2>/dev/null
	echo 8192 >$t/buffer_size_kb
	: >$t/trace
	# The lane loads the module and binds the functions itself (it checks
	# what the driver said at probe), so the module's events appear only
	# then: switch them on as soon as they exist, long before the first
	# migration (a QEMU boot later).
	(
		for _ in $(seq 600); do
			if [ -d $t/events/refaccel_vfio ]; then
				echo 1 >$t/events/refaccel_vfio/refaccel_arc/enable
				echo 1 >$t/events/refaccel_vfio/refaccel_data/enable
				exit 0
			fi
			sleep 0.1
		done
		echo "no $t/events/refaccel_vfio within 60 s" >"$d/trace.skip"
	) &
	w=$!
	# One lane run, as tests/check.sh runs it: the migrations of the
	# trace are then those of the log, in order.
	QEMU_LANE_LOGDIR=/tmp/bench-lane bash tests/qemu-lane/run.sh idle busy >"$d/lane.log" 2>&1
	echo "$?" >"$d/lane.rc"
	wait $w
	[ -f "$d/trace.skip" ] || cp $t/trace "$d/trace.txt"
}

if [ "${1:-}" = --in-vm ]; then
	case "${2:-}" in
	mig) in_vm_mig "$3" ;;
	lane) in_vm_lane "$3" ;;
	*) echo "usage: $0 --in-vm mig|lane DIR" >&2; exit 2 ;;
	esac
	echo "# bench: done"
	exit 0
fi

# ---- host ----
out=${REFACCEL_BENCH_OUT:-$top/out/bench}
rm -rf "$out"
mkdir -p "$out"
: >"$out/skips.txt"
errors=0

skip() {	# skip NAME REASON: a piece that cannot run, said out loud
	echo "SKIP $1: $2"
	printf '%s\t%s\n' "$1" "$2" >>"$out/skips.txt"
}

step() {	# step NAME CMD...: build step, output in $out/NAME.log
	local name=$1
	shift
	if "$@" >"$out/$name.log" 2>&1; then
		echo "# bench: $name ok"
		return 0
	fi
	echo "# bench: $name FAILED, last lines of $out/$name.log:"
	tail -n 20 "$out/$name.log" | sed 's/^/#   /'
	errors=$((errors + 1))
	return 1
}

t0=$(date +%s)
step setup bash scripts/setup-host.sh || exit 1
step linux-src bash scripts/prepare-linux-src.sh || exit 1
step qemu-build bash tools/qemu/build-qemu.sh || exit 1
# Everything is built into $out: the source tree is left as it is (a
# `make check` may be using its build products meanwhile).
lsrc=$(bash scripts/prepare-linux-src.sh)
# Only the two benchmarks: a test being worked on cannot stop them.
step selftests-build make -C "$st" OUTPUT="$out/build" \
	UAPI_INC="$lsrc/uapi/include" \
	KSFT_INC="$lsrc/linux-source-6.12/tools/testing/selftests" \
	"$out/build/refaccel_mig_bench" "$out/build/refaccel_dirty_bench" || exit 1
kdir_stock=/lib/modules/$(cat "${REFACCEL_CACHE:-/var/cache/refaccel}/kver")/build
step module-build bash scripts/build-module.sh "$kdir_stock" "$out/stock" W=1 || exit 1
guest=1
step guest-build make -C tools/guest || guest=0

kernel_args=()
ko_env=(--env "REFACCEL_KO=$out/stock/drivers/vfio/pci/refaccel/refaccel-vfio-pci.ko")
own=0
if [ "${REFACCEL_OWN_KERNEL:-1}" = 1 ]; then
	# Cached by `make check`; built here (about 27 minutes) if not.
	if step own-kernel-build sh -c 'bash scripts/build-kernel.sh >"$0"' "$out/own-kdir"; then
		okdir=$(tail -n 1 "$out/own-kdir")
		if step own-module-build bash scripts/build-module.sh "$okdir" "$out/own" W=1; then
			own=1
			kernel_args=(--kernel "$okdir")
			ko_env=(--env "REFACCEL_KO=$out/own/drivers/vfio/pci/refaccel/refaccel-vfio-pci.ko")
		fi
	fi
	[ $own = 1 ] || skip own-kernel "the own kernel or its module did not build (see above): stock kernel only"
else
	skip own-kernel "REFACCEL_OWN_KERNEL=0"
fi

# VM 1: the device-level benchmarks, one function per SRAM size.
sizes=${REFACCEL_BENCH_SIZES-4M 16M 64M}
qopts=()
i=0
for s in $sizes; do
	qopts+=(--qemu-opt "-device refaccel,id=rbench$i,testctl=on,sram-size=$s")
	i=$((i + 1))
done
mkdir -p "$out/mig"
dirty_env=(--env BENCH_DIRTY=$own)
[ $own = 1 ] || skip dirty-bench "DMA_LOGGING_REPORT is only offered on the own kernel (log_ops need CONFIG_IOMMUFD_DRIVER)"
echo "# bench: booting the benchmark VM (SRAM 1M${sizes:+ and $sizes})"
s=$(date +%s)
# pri=on: the first function's PRI abort quiesce rows.  It only adds the
# page request block and CAPS.PRI, but the saved device state carries that
# block (format version 2): 536 bytes more in every 1M stream and in the
# idle stop-copy tail (200 -> 736 B), which the byte rows reflect.
tools/vm/run --dev-opts ",testctl=on,pri=on" "${qopts[@]}" "${kernel_args[@]}" \
	"${ko_env[@]}" "${dirty_env[@]}" --rwdir "$out/mig" \
	--env "REFACCEL_BENCH_ARGS=${REFACCEL_BENCH_ARGS:-}" --env "BENCH_BIN=$out/build" \
	-- bash tests/bench.sh --in-vm mig "$out/mig" 2>&1 | cat >"$out/mig-vm.log"
echo "# bench: benchmark VM exit ${PIPESTATUS[0]} after $(($(date +%s) - s)) s"
if [ -f "$out/mig/mig.txt" ]; then
	cat "$out/mig/mig.txt"
	rc=$(cat "$out/mig/mig.rc")
	case "$rc" in
	0) ;;
	4) skip mig-bench "$(sed -n 's/^RESULT: SKIP (\(.*\))$/\1/p' "$out/mig/mig.txt")" ;;
	*) echo "# bench: refaccel_mig_bench exit $rc"; errors=$((errors + 1)) ;;
	esac
else
	skip mig-bench "the VM did not run it, see $out/mig-vm.log"
	tail -n 20 "$out/mig-vm.log" | sed 's/^/#   /'
fi
if [ $own = 1 ]; then
	if [ -f "$out/mig/dirty.txt" ]; then
		grep -v '^# dirty-bench: done' "$out/mig/dirty.txt"
		grep -q '^not ok - dirty-bench' "$out/mig/dirty.txt" && errors=$((errors + 1))
		why=$(sed -n 's/^ok - dirty-bench # SKIP //p' "$out/mig/dirty.txt")
		[ -n "$why" ] && skip dirty-bench "$why"
	else
		skip dirty-bench "the VM did not run it, see $out/mig-vm.log"
	fi
fi
if [ -f "$out/mig/splat.rc" ] && [ "$(cat "$out/mig/splat.rc")" != 0 ]; then
	echo "# bench: the kernel log of the benchmark VM has splats:"
	sed 's/^/#   /' "$out/mig/splat.txt"
	errors=$((errors + 1))
fi

# VM 2: the QEMU lane, idle then busy guest, with the driver's tracepoints.
mkdir -p "$out/lane"
if [ "${REFACCEL_BENCH_LANE:-1}" != 1 ]; then
	skip qemu-lane "REFACCEL_BENCH_LANE=0"
elif [ $guest = 0 ]; then
	skip qemu-lane "the guest workload (tools/guest) did not build: no busy guest"
else
	lane_env=()
	[ $own = 1 ] && lane_env=(--env REFACCEL_LANE_MIGRATION=auto)
	echo "# bench: booting the QEMU lane VM (idle and busy guest)"
	s=$(date +%s)
	tools/vm/run --mem 3G --nfunc 4 --dev-opts ",testctl=on" "${kernel_args[@]}" \
		"${ko_env[@]}" "${lane_env[@]}" --rwdir "$out/lane" \
		-- bash tests/bench.sh --in-vm lane "$out/lane" 2>&1 | cat >"$out/lane-vm.log"
	echo "# bench: QEMU lane VM exit ${PIPESTATUS[0]} after $(($(date +%s) - s)) s"
	if [ ! -f "$out/lane/lane.rc" ]; then
		skip qemu-lane "the VM did not run it, see $out/lane-vm.log"
		tail -n 20 "$out/lane-vm.log" | sed 's/^/#   /'
	elif [ "$(cat "$out/lane/lane.rc")" != 0 ]; then
		echo "# bench: the QEMU lane failed (its downtimes are still used if reported):"
		grep '^not ok' "$out/lane/lane.log" | sed 's/^/#   /'
		errors=$((errors + 1))
	fi
	[ -f "$out/lane/trace.skip" ] && skip device-stop-copy-time "$(cat "$out/lane/trace.skip")"
fi

# Merge, print the table, draw.
python3 - "$out" <<'EOF'
import json, os, re, sys

out = sys.argv[1]
skips = [l.rstrip("\n").split("\t", 1) for l in open(os.path.join(out, "skips.txt")) if l.strip()]
bench = {"skips": [{"what": w, "reason": r} for w, r in skips], "ratios": []}
rows = bench["ratios"]

def load(p):
    try:
        with open(os.path.join(out, p)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def ratio(key, what, unit, m, b, src):
    rows.append({"key": key, "what": what, "unit": unit, "measured": m,
                 "baseline": b, "ratio": m / b if b else None,
                 "source": src})

mig = load("mig/mig.json")
if mig:
    bench["mig_bench"] = mig
    for r in mig["ratios"]:
        ratio(r["key"], r["what"], r["unit"], r["measured"], r["baseline"],
              "refaccel_mig_bench")
dirty = load("mig/dirty.json")
if dirty:
    bench["dirty_bench"] = dirty
    for r in dirty["rows"]:
        if "error" in r:
            continue
        size = r["size"] >> 30
        ratio("dma_report_%dG_%s" % (size, r["pattern"]),
              "DMA_LOGGING_REPORT %dG %s / bitmap read" % (size, r["pattern"]),
              "ns", r["report_ns"], r["mem_ns"], "refaccel_dirty_bench")

# The QEMU lane: "# metric: NAME total-time-ms=.. downtime-ms=.." per
# migration, the driver's arcs and data_fd reads in the trace.
lane, order = {}, []
p = os.path.join(out, "lane", "lane.log")
if os.path.exists(p):
    sc = None
    for l in open(p, errors="replace"):
        m = re.match(r"# --- (\S+): ", l)
        if m:
            sc = m.group(1)
            lane.setdefault(sc, {"migrations": [], "device_stop_copy": []})
            continue
        m = re.search(r"metric: (migrate-\S+) total-time-ms=(\d+) downtime-ms=(\d+)"
                      r".* vfio-bytes=(\d+) ram-bytes=(\d+)", l)
        if m and sc:
            lane[sc]["migrations"].append({
                "name": m.group(1), "total_ms": int(m.group(2)),
                "downtime_ms": int(m.group(3)), "vfio_bytes": int(m.group(4)),
                "ram_bytes": int(m.group(5))})
            order.append(sc)

def stop_copy_times(path):
    """Each arc into STOP_COPY, in order: from the arc's start (its
    timestamp minus its duration) to the EOF read of the same function,
    and the bytes read in between."""
    res, open_ = [], {}
    ev = re.compile(r"\s(\d+\.\d+): (\S+): (.*)$")
    for l in open(path, errors="replace"):
        m = ev.search(l)
        if not m:
            continue
        ts, name, rest = float(m.group(1)), m.group(2), m.group(3)
        if name == "refaccel_arc":
            mm = re.match(r"(\S+) (\S+) -> (\S+): (-?\d+) us, err (-?\d+)", rest)
            if mm and mm.group(3) == "STOP_COPY" and mm.group(5) == "0":
                open_[mm.group(1)] = {"start": ts - int(mm.group(4)) / 1e6,
                                      "from": mm.group(2), "bytes": 0}
        elif name == "refaccel_data":
            mm = re.match(r"(\S+) read \d+ bytes: (-?\d+)", rest)
            if mm and mm.group(1) in open_:
                o = open_[mm.group(1)]
                n = int(mm.group(2))
                if n > 0:
                    o["bytes"] += n
                elif n == 0:
                    res.append({"bdf": mm.group(1), "from": o["from"],
                                "stop_copy_ms": (ts - o["start"]) * 1e3,
                                "bytes": o["bytes"]})
                    del open_[mm.group(1)]
    return res

tp = os.path.join(out, "lane", "trace.txt")
if os.path.exists(tp):
    sct = stop_copy_times(tp)
    # Completed migrations and STOP_COPY sessions pair up one to one, in
    # order, or not at all (a failed migration leaves one side alone).
    if len(sct) == len(order):
        for sc, t in zip(order, sct):
            lane[sc]["device_stop_copy"].append(t)
    else:
        bench["skips"].append({"what": "device STOP_COPY time",
                               "reason": "%d STOP_COPY sessions in the trace for %d completed migrations"
                               % (len(sct), len(order))})
bench["qemu_lane"] = lane

def first(sc, key):
    l = lane.get(sc, {}).get(key) or []
    return l[0] if l else None

busy, idle = first("busy", "migrations"), first("idle", "migrations")
if busy and idle:
    ratio("downtime_busy_vs_idle", "QEMU downtime, busy guest / idle guest",
          "ms", busy["downtime_ms"], idle["downtime_ms"], "qemu-lane")
else:
    bench["skips"].append({"what": "downtime_busy_vs_idle",
                           "reason": "no completed idle and busy migration in the lane logs"})
for sc, g in (("busy", busy), ("idle", idle)):
    dsc = first(sc, "device_stop_copy")
    if g and dsc:
        ratio("downtime_%s_vs_device_stop_copy" % sc,
              "QEMU downtime, %s guest / device STOP_COPY" % sc, "ms",
              g["downtime_ms"], dsc["stop_copy_ms"], "qemu-lane + trace")
    else:
        bench["skips"].append({"what": "downtime_%s_vs_device_stop_copy" % sc,
                               "reason": "no %s" % ("migration in the lane log" if not g
                                                    else "STOP_COPY arc with EOF in the driver's trace")})

with open(os.path.join(out, "bench.json"), "w") as f:
    json.dump(bench, f, indent=2)

def fmt(unit, v):
    if unit == "ns":
        return "%.1f us" % (v / 1e3) if v < 1e6 else "%.2f ms" % (v / 1e6)
    if unit == "ms":
        return "%.1f ms" % v
    return "%d B" % v

print()
print("%-52s %12s %12s %9s" % ("ratio (measured / baseline, medians)", "measured", "baseline", "ratio"))
for r in rows:
    print("%-52s %12s %12s %9s" % (r["what"], fmt(r["unit"], r["measured"]),
                                  fmt(r["unit"], r["baseline"]),
                                  "%.3f" % r["ratio"] if r["ratio"] is not None else "-"))
for s in bench["skips"]:
    print("SKIP %-47s %s" % (s["what"], s["reason"]))

# gnuplot data: convergence (per mode: pending bytes before each pass, then
# the STOP_COPY part) and time against SRAM size.
if mig:
    with open(os.path.join(out, "convergence.dat"), "w") as f:
        for p in mig.get("precopy", []):
            if "error" in p:
                continue
            f.write("# %s\n" % p["mode"])
            for i, v in enumerate(p["pending_bytes"]):
                f.write("%d %d\n" % (i, v))
            f.write("%d %d\n\n\n" % (len(p["pending_bytes"]), p["stop_copy_bytes"]))
    with open(os.path.join(out, "sizes.dat"), "w") as f:
        f.write("# sram_mib save_ms load_ms memcpy_from_ms memcpy_to_ms\n")
        for x in sorted(mig.get("transfer", []), key=lambda x: x["sram_size"]):
            if "error" in x:
                continue
            f.write("%g %.3f %.3f %.3f %.3f\n" % (x["sram_size"] / 2**20,
                    x["save_ns"] / 1e6, x["load_ns"] / 1e6,
                    x["memcpy_from_ns"] / 1e6, x["memcpy_to_ns"] / 1e6))
    with open(os.path.join(out, "downtime.dat"), "w") as f:
        sram = mig["transfer"][0]["sram_size"] / 2**20 if mig.get("transfer") else 1
        for sc, g in (("busy", busy), ("idle", idle)):
            if g:
                f.write("%g %d %s\n" % (sram, g["downtime_ms"], sc))
    modes = [p["mode"] for p in mig.get("precopy", []) if "error" not in p]
    with open(os.path.join(out, "modes.txt"), "w") as f:
        f.write(" ".join(modes))
EOF
[ $? = 0 ] || errors=$((errors + 1))

if ! command -v gnuplot >/dev/null; then
	echo "SKIP plots: no gnuplot (Debian package gnuplot-nox, scripts/setup-host.sh)"
elif [ ! -s "$out/convergence.dat" ]; then
	echo "SKIP plots: no refaccel_mig_bench data"
else
	term="pngcairo size 900,560"
	gnuplot -e 'set terminal pngcairo' 2>/dev/null || term="png size 900,560"
	modes=$(cat "$out/modes.txt")
	plot=
	i=0
	for m in $modes; do
		plot="$plot${plot:+, }'$out/convergence.dat' index $i using 1:(\$2/1024) with linespoints title '$m'"
		i=$((i + 1))
	done
	dt_plot=
	[ -s "$out/downtime.dat" ] &&
		dt_plot=", '$out/downtime.dat' using 1:2 with points pt 7 ps 1.5 title 'QEMU downtime (lane; busy, idle)'"
	gnuplot <<-EOF 2>"$out/gnuplot.log" || echo "# bench: gnuplot failed, see $out/gnuplot.log"
	set terminal $term
	set output '$out/convergence.png'
	set title 'refaccel: what a switchover would send, per pre-copy pass'
	set xlabel 'pre-copy pass (0: initial pass; last point: the STOP\_COPY part)'
	set ylabel 'KiB pending (PRECOPY\_INFO; 0 not drawn); last: STOP\_COPY'
	set grid
	set logscale y
	set key right top
	plot $plot
	set output '$out/downtime.png'
	set logscale xy 2
	set xrange [0.8:80]
	set offsets 0, 0, graph 0.1, 0
	set title 'refaccel: STOP\_COPY save and RESUMING load against SRAM size'
	set xlabel 'SRAM size (MiB)'
	set ylabel 'ms'
	set key right bottom
	plot '$out/sizes.dat' using 1:2 with linespoints title 'STOP\_COPY save (device stopped)', \\
	     '$out/sizes.dat' using 1:3 with linespoints title 'RESUMING load', \\
	     '$out/sizes.dat' using 1:4 with linespoints title 'memcpy from BAR2', \\
	     '$out/sizes.dat' using 1:5 with linespoints title 'memcpy to BAR2'$dt_plot
	EOF
	for p in convergence downtime; do
		[ -s "$out/$p.png" ] && echo "# bench: plot $out/$p.png"
	done
fi
echo "# bench: results in $out/bench.json, total time $(($(date +%s) - t0)) s"
[ $errors = 0 ]
