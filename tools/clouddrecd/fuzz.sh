#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz virgo-clouddrecd's frame handling for FUZZ_TIME seconds (default
# 25) from a copy of the seed corpus (corpus/ is never touched).  Fails on
# any crash, sanitizer report or failed check (reproducer left in
# tools/clouddrecd/crash-*); prints the number of executions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
time=${FUZZ_TIME:-25}
fuzzer=$here/cd_fuzz

if [ ! -x "$fuzzer" ]; then
	echo "fuzz.sh: $fuzzer missing: make -C $here fuzz" >&2
	exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/virgo-cd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$here/corpus" "$work/corpus"
seeds=$(find "$work/corpus" -type f | wc -l)

echo "fuzz.sh: fuzzing the daemon's frame handling for ${time}s from $seeds seeds"
rc=0
"$fuzzer" -max_total_time="$time" -print_final_stats=1 -max_len=65536 \
	-rss_limit_mb=2048 -artifact_prefix="$here/" "$work/corpus" \
	>"$work/log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" |
	tail -n 1)
if [ "$rc" -ne 0 ] ||
   grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error:|deadly signal|check failed' \
	"$work/log"; then
	tail -n 60 "$work/log"
	echo "fuzz.sh: FAILED (exit $rc); reproducer: $here/crash-* etc." >&2
	exit 1
fi
if [ -z "$execs" ]; then
	tail -n 20 "$work/log"
	echo "fuzz.sh: no final stats from libFuzzer" >&2
	exit 1
fi
cov=$(grep -E '^#[0-9]+.*cov:' "$work/log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
corpus=$(find "$work/corpus" -type f | wc -l)
echo "fuzz.sh: OK: $execs executions in ${time}s, coverage ${cov:-?} edges," \
     "corpus $seeds -> $corpus inputs"
