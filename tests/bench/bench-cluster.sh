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
# (a difference fails the run).  A virgo write is measured twice: cold
# (the first write into a new allocation: the servers allocate the
# chunks' memory) and warm.
#
# Guests: 1 vCPU, then 2 (VIRGO_BENCH_SMP="1 2"), VIRGO_E2E_MEM (1G).
# Raw figures: bench.txt in the results dir; the table of medians and
# ratios (tests/bench/bench-table.py) ends the output and is in table.txt.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
# shellcheck disable=SC2317 # helpers are called through expect
set -uo pipefail

# shellcheck source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source=../e2e/helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

rounds=${VIRGO_BENCH_ROUNDS:-8}
smps=${VIRGO_BENCH_SMP:-1 2}
big=${VIRGO_BENCH_BIG:-67108864}
small=${VIRGO_BENCH_SMALL:-1048576}
nmalloc=${VIRGO_BENCH_MALLOCS:-20}
nrtt=${VIRGO_BENCH_RTTS:-200}
export VIRGO_E2E_MEM=${VIRGO_E2E_MEM:-1G}
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-120}
KPORT=4646
DPORT=4647
NPORT=4420
TPORT=5201
NQN=virgo-bench
BENCH=/sys/kernel/debug/virgo_bench/cmd
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Kernel modules of the nodes' kernel, their dependencies first.
kmod_deps() {
	local kver=$1 m d
	shift
	for m in "$@"; do
		for d in $(modinfo -k "$kver" -F depends "$m" | tr ',' ' '); do
			kmod_deps "$kver" "$d"
		done
		echo "$m"
	done
}

# Ship brd, nvmet-tcp and nvme-tcp with their dependencies (decompressed:
# busybox insmod reads plain .ko only) to /virgo/kmod/; KMODS_TARGET and
# KMODS_HOST list what each side loads, dependencies first.
KMODS_TARGET=
KMODS_HOST=
add_kmods() {
	local kver=$1 out=$E2E_RESULTS/kmod m path
	declare -A shipped=()
	mkdir -p "$out" || return 1
	for m in $(kmod_deps "$kver" brd nvmet-tcp nvme-tcp | awk '!seen[$0]++'); do
		path=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || return 1
		case "$path" in
		*.ko) cp "$path" "$out/$m.ko" ;;
		*.ko.xz) xz -dc "$path" >"$out/$m.ko" ;;
		*.ko.zst) zstd -dcq "$path" >"$out/$m.ko" ;;
		*) continue ;;	# built in
		esac
		shipped[$m]=1
		cluster_add_file "$out/$m.ko" "/virgo/kmod/$m.ko" || return 1
	done
	for m in $(kmod_deps "$kver" nvmet-tcp | awk '!seen[$0]++'); do
		[ -n "${shipped[$m]:-}" ] && KMODS_TARGET+=" $m"
	done
	for m in $(kmod_deps "$kver" nvme-tcp | awk '!seen[$0]++'); do
		[ -n "${shipped[$m]:-}" ] && KMODS_HOST+=" $m"
	done
	[ -n "${shipped[brd]:-}" ] && [ -n "$KMODS_TARGET" ] && [ -n "$KMODS_HOST" ]
}

# The benchmark module and program (make bench), the daemon, static.
build_bench() {
	local kver kdir out=$E2E_RESULTS/progs cd=$E2E_REPO/tools/clouddrecd
	kver=$(e2e_kver) || return 1
	kdir=/lib/modules/$kver/build
	mkdir -p "$out" || return 1
	make -C "$E2E_REPO" KDIR="$kdir" bench >"$out/bench.log" 2>&1 || {
		tail -n 20 "$out/bench.log" >&2
		return 1
	}
	gcc -static -O2 -std=c11 -Wall -Wextra -Werror -I"$E2E_REPO/include" \
		-o "$out/virgo-clouddrecd" "$cd/cd_main.c" "$cd/cd_loop.c" \
		"$cd/cd_proto.c" -lcrypto -lpthread 2>"$out/clouddrecd.ld.log" ||
		return 1
	cluster_add_file "$E2E_REPO/tests/bench/virgo_bench_mod.ko" \
		/virgo/virgo_bench_mod.ko &&
		cluster_add_file "$E2E_REPO/tests/bench/virgo_netbench" \
			/virgo/virgo_netbench &&
		cluster_add_file "$out/virgo-clouddrecd" /virgo/virgo-clouddrecd &&
		add_kmods "$kver"
}

# The command that loads shipped modules MOD... in this order.
kmods_cmd() {
	echo "for m in $*; do insmod /virgo/kmod/\$m.ko || grep -q \"^\$(echo \$m | tr - _) \" /proc/modules || exit 1; done"
}

nvmet_setup() {
	local ip n=/sys/kernel/config/nvmet
	ip=$(node_ip 1)
	node_run 1 "insmod /virgo/kmod/brd.ko rd_nr=1 rd_size=$(((big / 1024) * 2)) &&
		$(kmods_cmd "$KMODS_TARGET") &&
		mount -t configfs configfs /sys/kernel/config 2>/dev/null;
		mkdir $n/subsystems/$NQN &&
		echo 1 >$n/subsystems/$NQN/attr_allow_any_host &&
		mkdir $n/subsystems/$NQN/namespaces/1 &&
		echo -n /dev/ram0 >$n/subsystems/$NQN/namespaces/1/device_path &&
		echo 1 >$n/subsystems/$NQN/namespaces/1/enable &&
		mkdir $n/ports/1 &&
		echo tcp >$n/ports/1/addr_trtype && echo ipv4 >$n/ports/1/addr_adrfam &&
		echo $ip >$n/ports/1/addr_traddr && echo $NPORT >$n/ports/1/addr_trsvcid &&
		ln -s $n/subsystems/$NQN $n/ports/1/subsystems/$NQN"
}

nvme_connect() {
	node_run 0 "$(kmods_cmd "$KMODS_HOST") &&
		echo transport=tcp,traddr=$(node_ip 1),trsvcid=$NPORT,nqn=$NQN >/dev/nvme-fabrics &&
		i=0; while [ ! -b /dev/nvme0n1 ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done;
		[ -b /dev/nvme0n1 ] && { cat /sys/class/nvme/nvme0/queue_count 2>/dev/null || echo '?'; }"
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

# record METRIC SIZE CMD...: run CMD on node0, append its numbers.
record() {
	local metric=$1 size=$2 out
	shift 2
	out=$(node_run -t 600 0 "$*") || {
		e2e_fail "$metric $size: $out"
		return 1
	}
	echo "$smp $round $metric $size $out" >>"$E2E_RESULTS/bench.txt"
}

kapi() { record "$1" "$2" "echo rw $2 >$BENCH && cat $BENCH | cut -d' ' -f3-"; }
kmalloc() { record "$1" "$2" "echo malloc $2 $nmalloc >$BENCH && cat $BENCH | cut -d' ' -f4-"; }

one_round() {
	local k1 d1 k3 s
	k1="$(node_ip 1):$KPORT"
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
	local i r queues
	export VIRGO_E2E_SMP=$smp
	cluster_up_timed 4 || return 1
	e2e_phase "setup, $smp vCPU per guest"
	for i in 1 2 3; do
		expect "node$i: insmod virgo_clouddrec.ko" node_run "$i" \
			"insmod /virgo/virgo_clouddrec.ko port=$KPORT max_memory_mb=320"
		expect "node$i: netbench server" node_spawn "$i" tcp \
			/virgo/virgo_netbench server $TPORT
	done
	expect "node1: virgo-clouddrecd on :$DPORT" daemon_start
	expect "node1: nvmet-tcp exports a $((big / 512 / 1024)) MiB brd" nvmet_setup
	queues=$(nvme_connect) || { e2e_fail "nvme connect: $queues"; return 1; }
	e2e_log "nvme-tcp: $queues queues (admin + I/O)"
	expect "node0: insmod virgo.ko, virgo_bench_mod.ko" node_run 0 \
		"insmod /virgo/virgo.ko peers=$(node_ip 1):$KPORT && insmod /virgo/virgo_bench_mod.ko"
	# libvirgo's syscall path needs a kernel with patches/ applied;
	# without it libvirgo falls back to /dev/virgo (the dev1 columns).
	if node_run 0 "grep -q ' virgo_syscall_register' /proc/kallsyms" >/dev/null; then
		echo "syscalls: this kernel has them; not measured separately (libvirgo's syscall path moves data as /dev/virgo does, virgo_user_rw())"
	else
		echo "syscalls: not in this kernel (Debian's, without patches/): libvirgo's syscall path not measurable here; libvirgo falls back to /dev/virgo (the dev columns)"
	fi >>"$E2E_RESULTS/notes.txt"
	for ((r = 1; r <= rounds; r++)); do
		round=$r
		e2e_phase "round $r of $rounds, $smp vCPU"
		one_round || return 1
	done
	e2e_phase "teardown"
	expect "node0: rmmod" node_run 0 "rmmod virgo_bench_mod && rmmod virgo"
	servers_lent_zero
	cluster_check_logs
	cluster_down
}

e2e_begin bench-cluster
build_bench || e2e_abort "cannot build the benchmark (make bench), the daemon or the module list"
: >"$E2E_RESULTS/bench.txt"
for smp in $smps; do
	one_boot || { cluster_down; e2e_fail "boot with $smp vCPU"; }
done
python3 "$here/bench-table.py" "$E2E_RESULTS/bench.txt" \
	"$E2E_RESULTS/notes.txt" | tee "$E2E_RESULTS/table.txt"
e2e_end
