#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Fuzz the virgo wire codec for FUZZ_TIME seconds (default 60), starting
# from a copy of the committed seed corpus, so that corpus/ is never
# touched.  Fails on any crash, sanitizer report or round-trip mismatch
# (the reproducer is left in tools/fuzz/crash-*); prints the number of
# executions from libFuzzer's final stats.
#
#   FUZZ_TIME=600 FUZZ_FLAGS="-jobs=2" ./run.sh     (after make)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
time=${FUZZ_TIME:-60}
flags=${FUZZ_FLAGS:-}
fuzzer=$here/wire_fuzz

if [ ! -x "$fuzzer" ]; then
	echo "run.sh: $fuzzer missing: make -C $here" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/virgo-wire-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$here/corpus" "$work/corpus"
seeds=$(find "$work/corpus" -type f | wc -l)

echo "run.sh: fuzzing for ${time}s from $seeds seeds (work dir $work)"
rc=0
# shellcheck disable=SC2086  # FUZZ_FLAGS is a list of options
"$fuzzer" -max_total_time="$time" -print_final_stats=1 \
	-artifact_prefix="$here/" $flags "$work/corpus" \
	>"$work/log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" |
	tail -n 1)
if [ "$rc" -ne 0 ] ||
   grep -q -E 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error:|deadly signal|check failed|round trip differs' \
	"$work/log"; then
	tail -n 60 "$work/log"
	echo "run.sh: FAILED (exit $rc); reproducer: $here/crash-* etc." >&2
	exit 1
fi
if [ -z "$execs" ]; then
	tail -n 20 "$work/log"
	echo "run.sh: no final stats from libFuzzer" >&2
	exit 1
fi

grep -E '^(stat::|Done )' "$work/log" || true
corpus=$(find "$work/corpus" -type f | wc -l)
echo "run.sh: OK: $execs executions in ${time}s" \
     "($((execs / (time > 0 ? time : 1)))/s), corpus $seeds -> $corpus inputs"
