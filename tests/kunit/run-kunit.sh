#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM: load a KUnit test module (its suites run at load) and
# turn its results (/sys/kernel/debug/kunit/<suite>/results, KTAP) into
# "ok - kunit.<suite>.<case>[.<param>]" / "not ok - ..." lines that
# tests/vm-suite.sh numbers.  SKIPs when the kernel has no KUnit.
#
#   run-kunit.sh MODULE.ko SUITE
set -uo pipefail

ko=${1:?usage: run-kunit.sh MODULE.ko SUITE}
suite=${2:?usage: run-kunit.sh MODULE.ko SUITE}
res=/sys/kernel/debug/kunit/$suite/results

if [ ! -d /sys/module/kunit ]; then
	echo "ok - kunit.$suite # SKIP kernel without KUnit"
	exit 0
fi
[ -d /sys/kernel/debug/kunit ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
name=$(modinfo -F name "$ko")
if ! insmod "$ko"; then
	echo "not ok - kunit.$suite # insmod $ko failed"
	exit 0
fi
if [ ! -r "$res" ]; then
	echo "not ok - kunit.$suite # no $res"
	rmmod "$name"
	exit 0
fi
sed 's/^/# /' "$res" | grep -E '# +(# |Expected|not ok)' | head -n 40
# Cases are indented 4 spaces, their parameters 8; a case line follows its
# parameters.
awk -v s="$suite" '
function emit(st, rest, name,   d) {
	d = ""
	if (match(rest, / # .*/)) { d = substr(rest, RSTART); rest = substr(rest, 1, RSTART - 1) }
	printf "%s - kunit.%s.%s%s\n", st, s, name rest, d
}
/^        (not )?ok [0-9]+ / {
	line = $0; sub(/^ +/, "", line)
	st = (line ~ /^not /) ? "not ok" : "ok"
	sub(/^(not )?ok [0-9]+ /, "", line)
	params[np++] = st "\t" line
	next
}
/^    (not )?ok [0-9]+ / {
	line = $0; sub(/^ +/, "", line)
	st = (line ~ /^not /) ? "not ok" : "ok"
	sub(/^(not )?ok [0-9]+ /, "", line)
	cname = line; sub(/ # .*/, "", cname)
	for (i = 0; i < np; i++) {
		split(params[i], f, "\t")
		emit(f[1], "", cname "." f[2])
	}
	np = 0
	emit(st, "", line)
	ncase++
}
END { if (!ncase) print "not ok - kunit." s " # no test case results" }
' "$res"
rmmod "$name"
