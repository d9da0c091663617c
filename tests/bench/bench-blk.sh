#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-blk: /dev/virgob0 (virgo_blk.ko) against NVMe/TCP on a brd
# ramdisk and against the raw TCP stream, on the same emulated link and
# the same two nodes, in one qemu cluster boot per vCPU count (make
# bench-blk; tests/e2e/run.sh runs this file like a scenario).
#
#   node0  client: virgo.ko (its one peer: node1's kernel server),
#          virgo_blk.ko nr_devices=1 (/dev/virgob0, module defaults),
#          nvme-tcp (/dev/nvme0n1), virgo_netbench, virgo_blkbench
#   node1  virgo_clouddrec.ko on :4646, nvmet + nvmet-tcp on :4420
#          exporting a brd ramdisk of the same size (configfs), the
#          virgo_netbench server on :5201
#
# Both devices are written once in full before the first round (brd and
# the cloud node both allocate a page's memory at its first write).  Every
# round (VIRGO_BENCH_ROUNDS, default 8), interleaved in the one boot, the
# two devices in turn, which goes first alternating by round:
#   a 16-byte TCP ping-pong with node1 (VIRGO_BENCH_RTTS, 200), the raw
#   TCP stream of VIRGO_BENCH_SEQ bytes (64 MiB) each way; per device:
#   sequential: VIRGO_BENCH_SEQ bytes written in 1 MiB O_DIRECT requests,
#   VIRGO_BENCH_SEQ_QD (4) in flight, read back the same way;
#   random: VIRGO_BENCH_RAND_N (2000) 4 KiB writes at distinct random
#   offsets of the device, VIRGO_BENCH_RAND_QD (16) in flight, then the
#   same blocks read in another random order; per-request latency, and
#   node0's context switches and busy CPU time over the two passes;
#   latency: the same with one request in flight, VIRGO_BENCH_LAT_N (500)
#   requests a pass (no queueing: the device's own round trip).
# Every byte read back is compared with what the write pass wrote (a
# difference fails the run): a fast wrong device cannot win.
#
# Guests: 1 vCPU, then 2 (VIRGO_BENCH_SMP="1 2"), VIRGO_E2E_MEM (1G);
# the device size is VIRGO_BENCH_SPAN (64 MiB).  Both devices keep the
# kernel's and the module's defaults, unless VIRGO_BENCH_BLK_PARAMS adds
# virgo_blk.ko parameters (e.g. "hw_queues=0") or VIRGO_BENCH_SCHED names
# an I/O scheduler for both (e.g. "none"), or VIRGO_BENCH_PIN=1 keeps the
# client's benchmark program and virgo's receive kthreads on CPU 0.  Raw
# figures: bench.txt in the results dir (the host's load average of every
# round included); the table of medians and ratios
# (tests/bench/bench-blk-table.py) ends the output and is in table.txt.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
set -uo pipefail

# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

span=${VIRGO_BENCH_SPAN:-67108864}
seq=${VIRGO_BENCH_SEQ:-67108864}
sqd=${VIRGO_BENCH_SEQ_QD:-4}
nrand=${VIRGO_BENCH_RAND_N:-2000}
blkparams=${VIRGO_BENCH_BLK_PARAMS:-}
sched=${VIRGO_BENCH_SCHED:-}
pin=
[ "${VIRGO_BENCH_PIN:-0}" = 1 ] && pin="taskset 1 "
rqd=${VIRGO_BENCH_RAND_QD:-16}
nlat=${VIRGO_BENCH_LAT_N:-500}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -A dev=([nvme]=/dev/nvme0n1 [vb]=/dev/virgob0)

# cpu_of CMD...: the guest command that runs CMD and prints its output,
# then the node's context switches and busy CPU time (ns, all CPUs; from
# /proc/stat, whose ticks are 10 ms) while it ran.
cpu_of() {
	echo "st() { awk '/^ctxt/ { c = \$2 } /^cpu / { b = \$2 + \$3 + \$4 + \$7 + \$8 } END { print c, b }' /proc/stat; }
		a=\$(st); o=\$($*) || exit 1; b=\$(st); set -- \$a \$b
		echo \$o \$((\$3 - \$1)) \$(((\$4 - \$2) * 10000000))"
}

one_round() {
	local d order="nvme vb"
	[ $((round % 2)) = 0 ] && order="vb nvme"
	bench_load
	record rtt1 16 /virgo/virgo_netbench rtt "$nrtt" $TPORT "$(node_ip 1)"
	record tcp_send "$seq" /virgo/virgo_netbench send "$(node_ip 1)" $TPORT "$seq"
	record tcp_recv "$seq" /virgo/virgo_netbench recv "$(node_ip 1)" $TPORT "$seq"
	for d in $order; do
		record "seq_$d" "$seq" "$pin"/virgo/virgo_blkbench seq "${dev[$d]}" \
			"$seq" 1048576 "$sqd" || return 1
	done
	for d in $order; do
		record "rand_$d" "$nrand" "$(cpu_of "$pin"/virgo/virgo_blkbench rand \
			"${dev[$d]}" "$span" "$nrand" 4096 "$rqd" \
			"$((smp * 1000 + round))")" || return 1
	done
	for d in $order; do
		record "lat_$d" "$nlat" "$pin"/virgo/virgo_blkbench rand "${dev[$d]}" \
			"$span" "$nlat" 4096 1 "$((smp * 1000 + round + 500))" ||
			return 1
	done
}

# What the devices are, for the notes (nvme0n1 is nvme's multipath head;
# its queues are those of the path under it, nvme0c0n1).
describe() {
	node_run 0 "for d in nvme0c0n1 nvme0n1 virgob0; do
		b=/sys/class/block/\$d; [ -e \$b/queue ] || continue
		echo \"\$d: \$(ls \$b/mq 2>/dev/null | wc -l) hw queues, nr_requests \$(cat \$b/queue/nr_requests), max_sectors_kb \$(cat \$b/queue/max_sectors_kb), scheduler \$(cat \$b/queue/scheduler)\"
	done"
}

one_boot() {
	local queues
	export VIRGO_E2E_SMP=$smp
	cluster_up_timed 2 || return 1
	e2e_phase "setup, $smp vCPU per guest"
	servers_load max_memory_mb=$(((span >> 20) + 64))
	expect "node1: netbench server" node_spawn 1 tcp \
		/virgo/virgo_netbench server $TPORT
	expect "node1: nvmet-tcp exports a $((span >> 20)) MiB brd" \
		nvmet_setup 1 $((span >> 10))
	queues=$(nvme_connect 0 1) || { e2e_fail "nvme connect: $queues"; return 1; }
	client_load
	wait_for 20 node_run 0 "grep -q ' up' /sys/kernel/virgo/peers" ||
		e2e_fail "node1 is not up as a peer"
	expect "node0: configfs, virgo_blk.ko nr_devices=1 size=$span $blkparams" \
		node_run 0 "$(kmods_cmd configfs) &&
			insmod /virgo/virgo_blk.ko nr_devices=1 size=$span $blkparams"
	[ -z "$sched" ] || expect "scheduler $sched for both" node_run 0 \
		"for d in nvme0c0n1 virgob0; do echo $sched >/sys/class/block/\$d/queue/scheduler || exit 1; done"
	[ -z "$pin" ] || expect "virgo's receive kthreads on CPU 0" node_run 0 \
		"n=0; for p in \$(ps | awk '\$NF ~ /^\\[virgo_rx/ { print \$1 }'); do
			taskset -p 1 \$p >/dev/null && n=\$((n + 1)) || exit 1
		done; [ \$n -gt 0 ]"
	describe | sed "s/^/$smp vCPU: /" >>"$E2E_RESULTS/notes.txt"
	echo "$smp vCPU: nvme-tcp queue_count $queues (admin + I/O)" \
		>>"$E2E_RESULTS/notes.txt"
	for d in nvme vb; do
		expect "warm-up: write all of ${dev[$d]}" node_run -t 600 0 \
			"/virgo/virgo_blkbench seq ${dev[$d]} $span 1048576 $sqd"
	done
	bench_rounds || return 1
	e2e_phase "teardown"
	expect "node0: rmmod virgo_blk, virgo" node_run -t 60 0 \
		"rmmod virgo_blk && rmmod virgo"
	servers_lent_zero
	cluster_check_logs
	cluster_down
}

e2e_begin bench-blk
bench_build || e2e_abort "cannot build the benchmark (make bench) or the module list"
cluster_add_file "$E2E_REPO/virgo_blk.ko" /virgo/virgo_blk.ko
[ -z "$blkparams$sched$pin" ] ||
	echo "not the defaults: virgo_blk.ko $blkparams; scheduler ${sched:-default}; ${pin:+program and virgo_rx on CPU 0}" >>"$E2E_RESULTS/notes.txt"
echo "in flight: sequential $sqd x 1 MiB, random $rqd x 4 KiB ($nrand requests a pass); devices of $((span >> 20)) MiB" \
	>>"$E2E_RESULTS/notes.txt"
bench_boots "$here/bench-blk-table.py"
