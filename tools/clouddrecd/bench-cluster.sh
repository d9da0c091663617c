#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# virgo-clouddrecd against virgo_clouddrec.ko, measured side by side on
# one qemu node (Debian's kernel, TCG, the e2e harness): node1 runs the
# module on port 4646 and the daemon on 4647; virgo-cdbench measures each
# over node1's loopback and from node0 over the emulated network, ROUNDS
# times (default 3) alternating the servers, and prints the median of
# every figure and the daemon/module ratio.  Root; ~3 min.
#
#   tools/clouddrecd/bench-cluster.sh [ROUNDS]
#
# Environment: BENCH_MIB (MiB per WRITE and READ run, default 64),
# BENCH_N (PINGs and ALLOCs, default 200), BENCH_DEPTH (default 4),
# BENCH_PIN=1 (the daemon and the loopback client on vCPU 0 only, with
# taskset: one vCPU, no cross-vCPU wakeup per request).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../../tests/e2e/lib.sh
. "$repo/tests/e2e/lib.sh"
# shellcheck source=../../tests/e2e/helpers.sh
. "$repo/tests/e2e/helpers.sh"

rounds=${1:-3}
mib=${BENCH_MIB:-64}
n=${BENCH_N:-200}
depth=${BENCH_DEPTH:-4}
pin=
[ "${BENCH_PIN:-0}" = 1 ] && pin="taskset -c 0"
kport=4646
dport=4647

e2e_begin cdbench >/dev/null
e2e_build_modules "$E2E_RESULTS/build.log" || e2e_abort "module build failed"
out=$E2E_RESULTS/progs
mkdir -p "$out"
cflags="-static -O2 -std=c11 -Wall -Wextra -Werror -I$repo/include"
# shellcheck disable=SC2086 # word splitting of cflags is wanted
gcc $cflags -o "$out/virgo-clouddrecd" "$here/cd_main.c" "$here/cd_loop.c" \
	"$here/cd_proto.c" -lcrypto -lpthread 2>"$out/ld.log" &&
	gcc $cflags -o "$out/virgo-cdbench" "$here/cd_bench.c" -lcrypto \
		2>>"$out/ld.log" || e2e_abort "static build failed ($out/ld.log)"
cluster_add_file "$out/virgo-clouddrecd" /virgo/virgo-clouddrecd
cluster_add_file "$out/virgo-cdbench" /virgo/virgo-cdbench
cluster_up 2 || e2e_abort "cluster did not come up"

expect "node1: insmod virgo_clouddrec.ko port=$kport" \
	node_run 1 "insmod /virgo/virgo_clouddrec.ko port=$kport max_memory_mb=256"
expect "node1: virgo-clouddrecd on :$dport" \
	node_spawn 1 cdd $pin /virgo/virgo-clouddrecd --listen "0.0.0.0:$dport" \
	--max-memory 256M --threads 2 --stats-file /tmp/cd.stats
sleep 1

res=$E2E_RESULTS/bench.txt
: >"$res"
for ((r = 1; r <= rounds; r++)); do
	for srv in module daemon; do
		port=$kport
		[ "$srv" = daemon ] && port=$dport
		for path in loopback network; do
			if [ "$path" = loopback ]; then
				o=$(node_run -t 600 1 "$pin /virgo/virgo-cdbench -m $mib -n $n -d $depth 127.0.0.1 $port")
			else
				o=$(node_run -t 600 0 "/virgo/virgo-cdbench -m $mib -n $n -d $depth $(node_ip 1) $port")
			fi || e2e_fail "round $r $srv $path: virgo-cdbench failed: $o"
			awk -v s="$srv" -v p="$path" -v r="$r" \
				'{ print r, s, p, $1, $2 }' <<<"$o" >>"$res"
			e2e_log "round $r $srv $path: $(tr '\n' ' ' <<<"$o")"
		done
	done
done

e2e_step "median of $rounds rounds${pin:+ (daemon and loopback client: $pin)} (${mib} MiB per WRITE/READ run, 1 MiB requests, depth $depth; $n PINGs/ALLOCs)"
printf '    %-9s %-11s %12s %12s %8s\n' path metric module daemon ratio
for path in loopback network; do
	for metric in write_mibs read_mibs ping_us alloc_us; do
		med() {
			awk -v s="$1" -v p="$path" -v m="$metric" \
				'$2 == s && $3 == p && $4 == m { print $5 }' "$res" |
				sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
		}
		k=$(med module)
		d=$(med daemon)
		ratio=$(awk -v k="$k" -v d="$d" 'BEGIN { if (k > 0) printf "%.2f", d / k; else print "?" }')
		printf '    %-9s %-11s %12s %12s %8s\n' "$path" "$metric" "$k" "$d" "$ratio"
	done
done | tee "$E2E_RESULTS/summary.txt"
e2e_end
