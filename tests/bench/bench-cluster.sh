#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-cluster: virgo against a raw TCP stream and NVMe/TCP on the same
# emulated link, in one qemu cluster boot per vCPU count (make
# bench-cluster; tests/e2e/run.sh runs this file like a scenario).
#
#   node0  client: virgo.ko, virgo_bench_mod.ko (kernel API, debugfs
#          virgo_bench/cmd), /dev/virgo, nvme-tcp, virgo_netbench
#   node1  virgo_clouddrec.ko on :4646, virgo-clouddrecd on :4647 (the
#          same machine and link: the daemon/kernel-server ratio), nvmet
#          + nvmet-tcp on :4420 exporting a brd ramdisk, virgo_netbench
#          server on :5201
#   node2, node3  virgo_clouddrec.ko on :4646, virgo_netbench server
#
# Every round (VIRGO_BENCH_ROUNDS, default 8), interleaved in one boot:
# TCP RTT (16-byte ping-pong with node1; and with node1..3 at once), the
# raw TCP stream both ways, NVMe/TCP O_DIRECT write and read of the
# ramdisk, then with the client's peers set to node1's kernel server:
# virgo_set/virgo_get through the kernel API and pwrite/pread through
# /dev/virgo (and, for comparison, /dev/virgo in 1 MiB calls one after
# the other: the stop-and-wait the user path had inside one call before
# it pinned the user pages), malloc of 4 KiB and 16 MiB; the same with
# node1's daemon;
# then with the three kernel servers.  Transfers of 64 MiB and 1 MiB
# (VIRGO_BENCH_BIG, VIRGO_BENCH_SMALL); every byte read back is compared
# (a difference fails the run).  A virgo write is measured three times:
# cold (the first write into a new allocation: the servers allocate the
# chunks' memory), warm, and warm again after 1 s without traffic (TCP
# restarts its congestion window after an idle RTO, as it does before the
# cold write).  node1's and node3's kernel servers keep a 16 MiB pool of
# zeroed pages (pool_mb=16), node2's none, and node2 is measured alone too
# (k2n): cold writes with and without the pool in the same rounds.
#
# After the rounds of a boot, perf (the host's, shipped with its
# libraries) samples every CPU of node0 and node1 during one 64 MiB set and
# get through the kernel API; the symbols over 1% follow the table
# (VIRGO_BENCH_PROFILE=0: no profile).
#
# Guests: 1 vCPU, then 2 (VIRGO_BENCH_SMP="1 2"), VIRGO_E2E_MEM (1G).
# Raw figures: bench.txt in the results dir; the table of medians and
# ratios (tests/bench/bench-table.py) ends the output and is in table.txt.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
# shellcheck disable=SC2317 # helpers are called through expect
set -uo pipefail

# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

big=${VIRGO_BENCH_BIG:-67108864}
small=${VIRGO_BENCH_SMALL:-1048576}
nmalloc=${VIRGO_BENCH_MALLOCS:-20}
KPORT=4646
DPORT=4647
BENCH=/sys/kernel/debug/virgo_bench/cmd
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The daemon, static, besides what bench_build ships.
build_bench() {
	local out=$E2E_RESULTS/progs cd=$E2E_REPO/tools/clouddrecd
	bench_build || return 1
	gcc -static -O2 -std=c11 -Wall -Wextra -Werror -I"$E2E_REPO/include" \
		-o "$out/virgo-clouddrecd" "$cd/cd_main.c" "$cd/cd_loop.c" \
		"$cd/cd_proto.c" -lcrypto -lpthread 2>"$out/clouddrecd.ld.log" &&
		cluster_add_file "$out/virgo-clouddrecd" /virgo/virgo-clouddrecd &&
		bench_add_perf
}

daemon_start() {
	node_spawn 1 cdd /virgo/virgo-clouddrecd --listen "0.0.0.0:$DPORT" \
		--max-memory 320M --stats-file /tmp/cd.stats &&
		node_run 1 "i=0; while ! grep -q '^port $DPORT\$' /tmp/cd.stats 2>/dev/null && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done; grep -q '^port $DPORT\$' /tmp/cd.stats"
}

# setpeers PEER...: the client's peer set becomes exactly these, all up.
setpeers() {
	local want="$*" f=/sys/kernel/virgo/peers n
	n=$(wc -w <<<"$want")
	node_run 0 "for p in \$(awk 'NR > 1 { print \$2 }' $f); do
			case ' $want ' in *\" \$p \"*) ;; *) echo \"del \$p\" >$f || exit 1 ;; esac
		done
		for p in $want; do grep -q \" \$p \" $f || echo \"add \$p\" >$f || exit 1; done
		echo 'malloc 4096 1' >$BENCH &&
		i=0; while [ \$(awk 'NR > 1 && \$3 == \"up\"' $f | wc -l) -ne $n ] && [ \$i -lt 100 ]; do
			echo 'malloc 4096 1' >$BENCH; sleep 0.1; i=\$((i+1)); done
		[ \$(awk 'NR > 1 && \$3 == \"up\"' $f | wc -l) -eq $n ]"
}

kapi() { record "$1" "$2" "echo rw $2 >$BENCH && cat $BENCH | cut -d' ' -f3-"; }
kmalloc() { record "$1" "$2" "echo malloc $2 $nmalloc >$BENCH && cat $BENCH | cut -d' ' -f4-"; }

one_round() {
	local k1 k2 d1 k3 s
	k1="$(node_ip 1):$KPORT"
	k2="$(node_ip 2):$KPORT"
	d1="$(node_ip 1):$DPORT"
	k3="$k1 $(node_ip 2):$KPORT $(node_ip 3):$KPORT"
	record rtt1 16 /virgo/virgo_netbench rtt "$nrtt" $TPORT "$(node_ip 1)"
	record rtt3 16 /virgo/virgo_netbench rtt "$nrtt" $TPORT \
		"$(node_ip 1)" "$(node_ip 2)" "$(node_ip 3)"
	for s in $big $small; do
		record tcp_send "$s" /virgo/virgo_netbench send "$(node_ip 1)" $TPORT "$s"
		record tcp_recv "$s" /virgo/virgo_netbench recv "$(node_ip 1)" $TPORT "$s"
		record nvme "$s" /virgo/virgo_netbench nvme /dev/nvme0n1 "$s"
	done
	expect "peers: node1's kernel server" setpeers "$k1" || return 1
	for s in $big $small; do
		kapi k1 "$s"
		record dev1 "$s" /virgo/virgo_netbench dev "$s"
	done
	record dev1s "$big" /virgo/virgo_netbench dev "$big" 1048576
	kmalloc mk1 4096
	kmalloc mk1 16777216
	expect "peers: node2's kernel server, no pool" setpeers "$k2" || return 1
	for s in $big $small; do
		kapi k2n "$s"
	done
	expect "peers: node1's daemon" setpeers "$d1" || return 1
	for s in $big $small; do
		kapi d1 "$s"
	done
	kmalloc md1 4096
	kmalloc md1 16777216
	expect "peers: three kernel servers" setpeers "$k3" || return 1
	kapi k3 "$big"
	kmalloc mk3 4096
	kmalloc mk3 16777216
}

one_boot() {
	local i queues
	export VIRGO_E2E_SMP=$smp
	cluster_up_timed 4 || return 1
	e2e_phase "setup, $smp vCPU per guest"
	for i in 1 2 3; do
		# node1 and node3 with a 16 MiB pool of zeroed pages, node2
		# without: cold writes with and without it, in the same rounds
		# (k1, k2n).
		expect "node$i: insmod virgo_clouddrec.ko" node_run "$i" \
			"insmod /virgo/virgo_clouddrec.ko port=$KPORT max_memory_mb=320 pool_mb=$([ "$i" = 2 ] && echo 0 || echo 16)"
		expect "node$i: netbench server" node_spawn "$i" tcp \
			/virgo/virgo_netbench server $TPORT
	done
	expect "node1: virgo-clouddrecd on :$DPORT" daemon_start
	expect "node1: nvmet-tcp exports a $((big / 512 / 1024)) MiB brd" \
		nvmet_setup 1 $(((big / 1024) * 2))
	queues=$(nvme_connect 0 1) || { e2e_fail "nvme connect: $queues"; return 1; }
	e2e_log "nvme-tcp: $queues queues (admin + I/O)"
	expect "node0: insmod virgo.ko, virgo_bench_mod.ko" node_run 0 \
		"insmod /virgo/virgo.ko peers=$(node_ip 1):$KPORT && insmod /virgo/virgo_bench_mod.ko"
	# queues=0 (the default): one per online CPU.
	echo "virgo: $(node_run 0 "q=\$(cat /sys/module/virgo/parameters/queues); [ \$q = 0 ] && q=\$(grep -c ^processor /proc/cpuinfo); echo \$q") connection(s) per kernel server with $smp vCPU (parameter queues; the daemon grants one)" \
		>>"$E2E_RESULTS/notes.txt"
	# libvirgo's syscall path needs a kernel with patches/ applied;
	# without it libvirgo falls back to /dev/virgo (the dev1 columns).
	if node_run 0 "grep -q ' virgo_syscall_register' /proc/kallsyms" >/dev/null; then
		echo "syscalls: this kernel has them; not measured separately (libvirgo's syscall path moves data as /dev/virgo does, virgo_user_rw())"
	else
		echo "syscalls: not in this kernel (Debian's, without patches/): libvirgo's syscall path not measurable here; libvirgo falls back to /dev/virgo (the dev columns)"
	fi >>"$E2E_RESULTS/notes.txt"
	bench_rounds || return 1
	# Where the time goes: one 64 MiB set and get through the kernel API
	# on node1's kernel server.
	expect "peers: node1's kernel server" setpeers "$(node_ip 1):$KPORT" &&
		bench_profile kapi-set-get "echo rw $big >$BENCH && cat $BENCH"
	e2e_phase "teardown"
	expect "node0: rmmod" node_run 0 "rmmod virgo_bench_mod && rmmod virgo"
	servers_lent_zero
	cluster_check_logs
	cluster_down
}

e2e_begin bench-cluster
build_bench || e2e_abort "cannot build the benchmark (make bench), the daemon or the module list"
bench_boots "$here/bench-table.py"
