#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run one kselftest binary and judge the run as a whole, so that a binary
# that dies, hangs or runs nothing cannot lose its tests silently.
#
#   tests/ksft-run.sh [-t SECONDS] LABEL BINARY [ARGS...]
#
# Output (for tests/vm-suite.sh, which numbers the "ok - " lines):
#   * every result line of the binary with LABEL put after its number,
#     "ok 3 [LABEL] fixture.test", everything else as a "# " comment;
#   * one verdict for the run, a result line only when it says what the
#     results do not (each fact is counted once):
#       # verdict: [LABEL] BINARY: plan 20, 20 results, exit 0: whole
#       # verdict: [LABEL] BINARY: plan 20, 20 results, exit 1: whole
#         (1 of them "not ok": that result is the failure)
#       ok - [LABEL] BINARY: plan 0, 0 results, exit 4 # SKIP no device
#       not ok - [LABEL] BINARY: plan 3, 1 results, exit 139: killed by
#         SIGSEGV; 1 results for a plan of 3
#
# The run is ok when the binary printed its TAP plan ("1..N", as
# ksft_set_plan() of kselftest.h prints it, or "1..0 # SKIP why" from
# ksft_exit_skip()), printed exactly N result lines, and exited 0
# (KSFT_PASS: the harness's "every test passed or skipped"), or 4
# (KSFT_SKIP: nothing ran, e.g. no device) with every result a SKIP.  Exit
# 1 (KSFT_FAIL), any other status, a signal (128+n), a missing, repeated
# or short plan, and the time limit (SECONDS, default 1200 or
# $REFACCEL_KSFT_TIMEOUT; 124 from timeout(1)) fail it.  When every result
# is a SKIP the verdict is a SKIP too (stock vfio-pci: no migration).
#
# The binary runs in a session of its own: when it ends (or is killed at
# the limit), whatever it left behind in that session (a harness test
# child: the harness puts each in its own process group) is killed too,
# and the output is read up to an end marker, so a leftover holding the
# pipe cannot block the caller.
set -uo pipefail

limit=${REFACCEL_KSFT_TIMEOUT:-1200}
if [ "${1:-}" = -t ]; then
	limit=$2
	shift 2
fi
if [ $# -lt 2 ]; then
	echo "usage: $0 [-t SECONDS] LABEL BINARY [ARGS...]" >&2
	exit 2
fi
label=$1
bin=$2
shift 2
name=${bin##*/}
# Unique per run: cannot be mistaken for a line of the binary.
marker="@@ksft-run-$$-$RANDOM@@ exit"

# The producer: the binary in a session of its own (the session id is the
# pid of the bash -c that setsid starts), under timeout(1); then whatever
# is left in that session is killed, and the marker carries the status.
run_binary() {
	local rcfile=$1 sid rc
	shift
	# shellcheck disable=SC2016 # expanded by the inner bash
	# The status is taken inside the session (128+n for a signal), not
	# from setsid, which may fork and then reports a raw wait status.
	setsid -w bash -c 'f=$1; shift; echo $$ >"$f.sid"; timeout -k 30 "$@"; echo $? >"$f"' \
		"$name" "$rcfile" "$limit" "$bin" "$@" 2>&1 </dev/null
	rc=$(cat "$rcfile" 2>/dev/null)
	sid=$(cat "$rcfile.sid" 2>/dev/null)
	# Leftovers of the run (test children in their own process groups).
	if [ -n "$sid" ] && pgrep -s "$sid" >/dev/null 2>&1; then
		echo "leftover processes of session $sid killed:" \
			"$(pgrep -s "$sid" | tr '\n' ' ')"
		pkill -KILL -s "$sid" 2>/dev/null
	fi
	printf '\n%s %s\n' "$marker" "$rc"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ksft-run.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

plan=
plans=0
plan_skip=
results=0
skips=0
fails=0
rc=
while IFS= read -r line; do
	case "$line" in
	*"$marker "*)
		# A last line without a newline shares the marker's line.
		rest=${line%%"$marker "*}
		rc=${line##*"$marker "}
		[ -n "$rest" ] && echo "# $rest"
		break
		;;
	"")
		continue ;;	# empty lines, and the separator before the marker
	esac
	if [[ $line =~ ^1\.\.([0-9]+)(.*)$ ]]; then
		plans=$((plans + 1))
		rest=${BASH_REMATCH[2]}
		[ -z "$plan" ] && plan=${BASH_REMATCH[1]}
		if [[ $rest =~ ^\ *#\ *SKIP ]]; then
			plan_skip=${rest#*SKIP}
			plan_skip=${plan_skip:- }
		fi
		echo "# $line"
	elif [[ $line =~ ^(not\ )?ok\ [0-9]+(\ |$) ]]; then
		results=$((results + 1))
		head=${BASH_REMATCH[0]% }
		if [ -n "${BASH_REMATCH[1]}" ]; then
			fails=$((fails + 1))
		elif [[ $line =~ \#\ *SKIP ]]; then
			skips=$((skips + 1))
		fi
		echo "$head [$label]${line#"$head"}"
	else
		echo "# $line"
	fi
done < <(run_binary "$tmp/rc" "$@")

# What went wrong, if anything.
why=()
case "$rc" in
"") why+=("no exit status (the run was lost)") ;;
0) ;;
1)
	# The failed results already say so; exit 1 without one does not.
	[ "$fails" -gt 0 ] || why+=("exit 1 (KSFT_FAIL) without a failed result")
	;;
4)
	if [ "$skips" -ne "$results" ]; then
		why+=("exit 4 (KSFT_SKIP) but only $skips of $results results are SKIP")
	fi
	;;
124) why+=("timed out after $limit s") ;;
137) why+=("killed by SIGKILL (the $limit s limit and 30 s grace, or OOM)") ;;
*)
	if [ "$rc" -gt 128 ] 2>/dev/null; then
		why+=("killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))")
	else
		why+=("unexpected exit status")
	fi
	;;
esac
if [ -z "$plan" ]; then
	why+=("no TAP plan")
else
	[ "$plans" -gt 1 ] && why+=("$plans plans")
	if [ "$results" -ne "$plan" ]; then
		why+=("$results results for a plan of $plan")
	elif [ "$plan" -eq 0 ] && [ -z "$plan_skip" ] && [ "$rc" != 4 ]; then
		why+=("empty plan: nothing ran")
	fi
fi
[ "$fails" -gt 0 ] && [ "$rc" = 0 ] && why+=("$fails failed results but exit 0")

summary="[$label] $name: plan ${plan:-none}, $results results, exit ${rc:-none}"
if [ ${#why[@]} -gt 0 ]; then
	msg=$(IFS=';'; echo "${why[*]}")
	echo "not ok - $summary: ${msg//;/; }"
elif [ "$results" -eq 0 ]; then
	echo "ok - $summary # SKIP${plan_skip:- nothing ran}"
else
	# A whole run adds no fact its results have not counted.
	echo "# verdict: $summary: whole"
fi
