#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the virgo e2e cluster scenarios (qemu/TCG, needs root).
#
#   tests/e2e/run.sh [--no-build] [--dkms] [scenario...]
#
# --dkms: every scenario's nodes load virgo.ko and virgo_clouddrec.ko as
# DKMS builds them from the virgo-dkms source tree (scratch dkms trees,
# built once: e2e_build_dkms in lib.sh) instead of the tree's make
# modules; the scenario tools does so on its own in any case.
#
# A scenario is a name (data -> tests/e2e/scenarios/data.sh) or a path;
# default: every tests/e2e/scenarios/*.sh.  First builds the modules against
# the headers of the kernel the nodes boot, then runs each scenario under a
# timeout, and ends with the line "N passed, N failed" (exit 1 if any
# failed).  Works without a tty and with stdin closed (CI).
#
# Environment: VIRGO_E2E_SCENARIO_TIMEOUT (seconds per scenario, default
# 900), VIRGO_E2E_RESULTS (results root, default <repo>/build/e2e), and
# everything tests/e2e/lib.sh reads.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

build=1
dkms=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0 ;;
	--dkms) dkms=1 ;;
	*) break ;;
	esac
	shift
done
case "${1:-}" in
-h | --help)
	# The header comment, up to the first shellcheck directive.
	awk 'NR < 3 { next } /^# shellcheck/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"
	exit 0
	;;
esac

limit=${VIRGO_E2E_SCENARIO_TIMEOUT:-900}
run_dir=${VIRGO_E2E_RESULTS:-$repo/build/e2e}/run-$(date +%Y%m%d-%H%M%S)

# Resolve the scenario list.
scenarios=()
if [ $# -eq 0 ]; then
	for s in "$here"/scenarios/*.sh; do
		[ -e "$s" ] && scenarios+=("$s")
	done
else
	for s in "$@"; do
		if [ -f "$s" ]; then
			scenarios+=("$(cd "$(dirname "$s")" && pwd)/$(basename "$s")")
		elif [ -f "$here/scenarios/$s.sh" ]; then
			scenarios+=("$here/scenarios/$s.sh")
		else
			have=$(for f in "$here"/scenarios/*.sh; do basename "$f" .sh; done | tr '\n' ' ')
			e2e_err "no such scenario: $s (have: ${have% })"
			echo "0 passed, 1 failed"
			exit 1
		fi
	done
fi
if [ ${#scenarios[@]} -eq 0 ]; then
	e2e_err "no scenarios found in $here/scenarios"
	echo "0 passed, 1 failed"
	exit 1
fi

fail_all() {
	e2e_err "$*"
	echo "0 passed, ${#scenarios[@]} failed"
	exit 1
}

e2e_check_tools || fail_all "missing prerequisites"
kver=$(e2e_kver) || fail_all "no kernel to boot"
mkdir -p "$run_dir" || fail_all "cannot create $run_dir"

if [ "$build" = 1 ]; then
	e2e_build_modules "$run_dir/build.log" || fail_all "cannot build the modules"
fi
if [ "$dkms" = 1 ]; then
	e2e_build_dkms "$run_dir/dkms" || fail_all "DKMS build failed"
	export VIRGO_E2E_DKMS_DIR=$run_dir/dkms
fi
e2e_log "nodes boot Debian's kernel $kver"

# Forward INT/TERM to the running scenario's timeout, which passes it on to
# the scenario's whole process group; the scenario then tears its cluster
# down.  Then stop.
child=
stop() {
	e2e_err "interrupted; stopping the running scenario"
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
	[ -n "$child" ] && wait "$child" 2>/dev/null
	echo "$passed passed, $((failed + 1)) failed"
	exit 130
}
trap stop INT TERM HUP

passed=0
failed=0
failed_names=()
for s in "${scenarios[@]}"; do
	name=$(basename "$s" .sh)
	echo
	e2e_log "=== scenario $name (timeout ${limit}s)"
	t0=$SECONDS
	VIRGO_E2E_RESULTS_DIR=$run_dir/$name \
		timeout -k 30 "$limit" bash "$s" </dev/null &
	child=$!
	wait "$child"
	rc=$?
	child=
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		e2e_log "=== $name passed ($((SECONDS - t0))s)"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		[ $rc -eq 124 ] && e2e_err "$name timed out after ${limit}s"
		e2e_log "=== $name FAILED (exit $rc, $((SECONDS - t0))s, logs in $run_dir/$name)"
	fi
done

echo
[ $failed -gt 0 ] && e2e_log "failed: ${failed_names[*]}"
e2e_log "results in $run_dir"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
