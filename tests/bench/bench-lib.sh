# shellcheck shell=bash source-path=SCRIPTDIR
# SPDX-License-Identifier: GPL-2.0
#
# What the cluster benchmarks share (tests/bench/bench-cluster.sh,
# tests/bench/bench-blk.sh source it; it sources tests/e2e/lib.sh and
# helpers.sh).  Settings: VIRGO_BENCH_ROUNDS (8), VIRGO_BENCH_SMP ("1 2"),
# VIRGO_BENCH_RTTS (200), VIRGO_E2E_MEM (1G).
#
#   bench_boots TABLE.PY     for each vCPU count of VIRGO_BENCH_SMP: the
#                            caller's one_boot; then TABLE.PY over
#                            bench.txt and notes.txt (printed, and saved as
#                            table.txt); e2e_end
#   bench_rounds             the caller's one_round, VIRGO_BENCH_ROUNDS times
#   bench_build              make bench for the nodes' kernel; ships
#                            virgo_bench_mod.ko, virgo_netbench,
#                            virgo_blkbench and Debian's brd, nvmet-tcp,
#                            nvme-tcp with their dependencies (add_kmods)
#   kmods_cmd MOD...         (tests/e2e/lib.sh) the guest command that
#                            loads shipped modules
#   nvmet_setup IDX KIB      on node IDX: brd of KIB KiB, exported by nvmet
#                            + nvmet-tcp on :$NPORT as $NQN (configfs)
#   nvme_connect IDX TGT     on node IDX: nvme-tcp to node TGT's export;
#                            prints the queue count (admin + I/O)
#   record METRIC SIZE CMD   run CMD on node0, append "$smp $round METRIC
#                            SIZE <its output>" to bench.txt
#   bench_add_perf           ship the host's perf (bench_profile)
#   bench_profile NAME CMD   CMD on node0 under perf on node0 and node1;
#                            top symbols in profile-*.txt, after the table
#   bench_load               append the host's 1-min load average (x100)
#                            of this round to bench.txt ("load" metric)
# shellcheck disable=SC2317 # helpers are called through expect
# shellcheck disable=SC2154 # smp, round: the benchmark's loop sets them

# shellcheck source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source=../e2e/helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

# shellcheck disable=SC2034 # used by the benchmarks that source this
rounds=${VIRGO_BENCH_ROUNDS:-8}
smps=${VIRGO_BENCH_SMP:-1 2}
# shellcheck disable=SC2034
nrtt=${VIRGO_BENCH_RTTS:-200}
export VIRGO_E2E_MEM=${VIRGO_E2E_MEM:-1G}
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-120}
# shellcheck disable=SC2034
TPORT=5201

NPORT=${NPORT:-4420}
NQN=${NQN:-virgo-bench}

# Ship brd, nvmet-tcp and nvme-tcp with their dependencies
# (cluster_add_kmods); KMODS_TARGET and KMODS_HOST list what each side
# loads, dependencies first.  configfs (a dependency of nvmet) is among
# them.
KMODS_TARGET=
KMODS_HOST=
add_kmods() {
	local kver=$1
	cluster_add_kmods "$kver" nvmet-tcp || return 1
	KMODS_TARGET=$E2E_KMODS
	cluster_add_kmods "$kver" nvme-tcp || return 1
	KMODS_HOST=$E2E_KMODS
	cluster_add_kmods "$kver" brd || return 1
	[ "$E2E_KMODS" = " brd" ] && [ -n "$KMODS_TARGET" ] && [ -n "$KMODS_HOST" ]
}

bench_build() {
	local kver kdir out=$E2E_RESULTS/progs
	kver=$(e2e_kver) || return 1
	kdir=/lib/modules/$kver/build
	mkdir -p "$out" || return 1
	make -C "$E2E_REPO" KDIR="$kdir" bench >"$out/bench.log" 2>&1 || {
		tail -n 20 "$out/bench.log" >&2
		return 1
	}
	cluster_add_file "$E2E_REPO/tests/bench/virgo_bench_mod.ko" \
		/virgo/virgo_bench_mod.ko &&
		cluster_add_file "$E2E_REPO/tests/bench/virgo_netbench" \
			/virgo/virgo_netbench &&
		cluster_add_file "$E2E_REPO/tests/bench/virgo_blkbench" \
			/virgo/virgo_blkbench &&
		add_kmods "$kver"
}

nvmet_setup() {
	local idx=$1 kib=$2 ip n=/sys/kernel/config/nvmet
	ip=$(node_ip "$idx")
	node_run "$idx" "insmod /virgo/kmod/brd.ko rd_nr=1 rd_size=$kib &&
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
	node_run "$1" "$(kmods_cmd "$KMODS_HOST") &&
		echo transport=tcp,traddr=$(node_ip "$2"),trsvcid=$NPORT,nqn=$NQN >/dev/nvme-fabrics &&
		i=0; while [ ! -b /dev/nvme0n1 ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done;
		[ -b /dev/nvme0n1 ] && { cat /sys/class/nvme/nvme0/queue_count 2>/dev/null || echo '?'; }"
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

bench_load() {
	echo "$smp $round load 0 $(awk '{ printf "%d", $1 * 100 }' /proc/loadavg)" \
		>>"$E2E_RESULTS/bench.txt"
}

bench_rounds() {
	local r
	for ((r = 1; r <= rounds; r++)); do
		round=$r
		e2e_phase "round $r of $rounds, $smp vCPU"
		one_round || return 1
	done
}

# Ship perf for bench_profile (VIRGO_BENCH_PROFILE=0: no profile).
bench_perf=
bench_add_perf() {
	local perf
	[ "${VIRGO_BENCH_PROFILE:-1}" != 0 ] || return 0
	perf=$(command -v perf) || {
		echo "profile: none (no perf on the host: apt-get install linux-perf)" \
			>>"$E2E_RESULTS/notes.txt"
		return 0
	}
	cluster_add_prog "$perf" /virgo/bin/perf && bench_perf=/virgo/bin/perf
}

# bench_profile NAME CMD: run CMD on node0 while perf samples every CPU of
# node0 and node1 (cpu-clock: TCG emulates no PMU); the symbols that took
# at least 1% of a node's samples go to profile-NAME-<smp>cpu-nodeN.txt,
# printed after the table.
bench_profile() {
	local name=$1 cmd=$2 i out rec
	[ -n "$bench_perf" ] || return 0
	rec="$bench_perf record -q -N -B -e cpu-clock -a -o /tmp/perf.data"
	e2e_phase "profile: $name, $smp vCPU"
	expect "node1: perf record" node_spawn 1 perf "$rec -- sleep 600" ||
		return 1
	sleep 2
	expect "node0: perf record -- $cmd" \
		node_run -t 600 0 "$rec -- sh -c '$cmd' >/dev/null"
	node_run 1 "kill -INT \$(pidof perf)"
	node_wait -t 120 1 perf >/dev/null
	for i in 0 1; do
		out=$E2E_RESULTS/profile-$name-${smp}cpu-node$i.txt
		{
			echo "profile $name, $smp vCPU per guest, node$i (perf, cpu-clock, every CPU; symbols >= 1%):"
			node_run -t 300 "$i" "$bench_perf report -i /tmp/perf.data --stdio --no-children --sort sym --percent-limit 1 2>/dev/null |
				grep -v '^#' | grep -v '^\$' | head -40" | sed 's/^/    /'
		} >"$out"
	done
}

bench_boots() {
	local table=$1 f
	: >>"$E2E_RESULTS/bench.txt"
	: >>"$E2E_RESULTS/notes.txt"
	for smp in $smps; do
		one_boot || { cluster_down; e2e_fail "boot with $smp vCPU"; }
	done
	{
		python3 "$table" "$E2E_RESULTS/bench.txt" "$E2E_RESULTS/notes.txt"
		for f in "$E2E_RESULTS"/profile-*.txt; do
			[ -e "$f" ] && echo && cat "$f"
		done
	} | tee "$E2E_RESULTS/table.txt"
	e2e_end
}
