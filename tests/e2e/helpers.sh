# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# virgo-specific helpers for the e2e scenarios and the demo; source after
# lib.sh.  Node 0 is the client, nodes 1.. are cloud nodes.
#
#   expect_all DESC IDXS CMD   run CMD (sh -c) on the nodes IDXS ("1 2 3")
#                              in parallel; one check "nodeI: DESC" each
#   e2e_build_progs            build tests/e2e/progs/*.c static into the
#                              results dir and add them to the initramfs
#                              (/virgo/virgo_e2e, /virgo/virgo_hostile,
#                              /virgo/virgo_dev_test)
#   servers_load PARAMS        insmod virgo_clouddrec.ko PARAMS on nodes 1..
#   client_load PARAMS         insmod virgo.ko peers=<nodes 1..> PARAMS on 0
#   peer_of IDX                "a.b.c.d:port" of cloud node IDX
#   peer6_of IDX               "[ipv6]:port" of cloud node IDX
#   all_peers / all_peers6     every cloud node, comma-separated
#   cd_stats IDX               the node's virgo_clouddrec/stats
#   cd_stat IDX NAME           one value of it
#   cd_idle IDX [SECS]         wait until the node lends nothing and has
#                              no session (lent_bytes, lent_chunks and
#                              sessions 0); prints the stats if not
#   cd_lent_zero IDX [SECS]    the same for lent_bytes and lent_chunks only
#   servers_idle / servers_lent_zero [SECS]
#                              checks of the two on every live cloud node
#   peer_state ADDR            the client's state of a peer (sysfs peers)
#   wait_for SECS CMD...       retry CMD every 0.5 s until it succeeds
#   slab_kb IDX                Slab: and MemFree: of the node's
#                              /proc/meminfo, in kB, after dropping
#                              reclaimable caches and shrinking every slab
#                              cache (partial slabs of freed objects go)
#   slab_all IDXS              "IDX SLAB_KB MEMFREE_KB" lines, nodes
#                              measured in parallel
#   slab_check FILE WHEN       a check per node: Slab and MemFree in FILE
#                              (slab_all output) against slab.before
#   e2e_phase DESC             e2e_step, and time the phase
#   phases_report              how long each phase took (also in
#                              phases.txt in the results dir)
#   vsh_start / vsh CMD... / vsh_stop
#                              a virgo_e2e shell on the client: holds
#                              allocations across steps; vsh prints the
#                              command's output and returns its status
#
# Settings: VIRGO_E2E_PORT (4646), VIRGO_E2E_SLAB_TOLERANCE_KB (1024),
# VIRGO_E2E_MEMFREE_TOLERANCE_KB (32768).

E2E_PORT=${VIRGO_E2E_PORT:-4646}
# Leak checks: how far Slab may grow and MemFree may fall between two
# measurements of slab_all (kB; tests/e2e/README.md says why).
E2E_SLAB_TOL=${VIRGO_E2E_SLAB_TOLERANCE_KB:-1024}
E2E_FREE_TOL=${VIRGO_E2E_MEMFREE_TOLERANCE_KB:-32768}
E2E_STATS=/sys/kernel/debug/virgo_clouddrec/stats

e2e_build_progs() {
	local out=$E2E_RESULTS/progs cflags="-static -O2 -Wall -Wextra -Werror"

	mkdir -p "$out" || return 1
	# shellcheck disable=SC2086 # word splitting of cflags is wanted
	gcc $cflags -pthread -I"$E2E_REPO/include/uapi" -o "$out/virgo_e2e" \
		"$E2E_LIB_DIR/progs/virgo_e2e.c" &&
		gcc $cflags -I"$E2E_REPO/include" -o "$out/virgo_hostile" \
			"$E2E_LIB_DIR/progs/virgo_hostile.c" &&
		gcc $cflags -I"$E2E_REPO/include/uapi" -o "$out/virgo_dev_test" \
			"$E2E_REPO/tests/user/virgo_dev_test.c" || return 1
	cluster_add_file "$out/virgo_e2e" /virgo/virgo_e2e &&
		cluster_add_file "$out/virgo_hostile" /virgo/virgo_hostile &&
		cluster_add_file "$out/virgo_dev_test" /virgo/virgo_dev_test
}

expect_all() {
	local desc=$1 idxs=$2 cmd=$3 i dir rc
	dir=$(mktemp -d "$E2E_RESULTS/.par.XXXXXX") || return 1
	for i in $idxs; do
		(node_run "$i" "$cmd" >"$dir/$i.out" 2>&1; echo $? >"$dir/$i.rc") &
	done
	wait
	rc=0
	for i in $idxs; do
		if [ "$(cat "$dir/$i.rc" 2>/dev/null)" = 0 ]; then
			e2e_ok "node$i: $desc"
		else
			e2e_fail "node$i: $desc (exit $(cat "$dir/$i.rc" 2>/dev/null))"
			tail -n 40 "$dir/$i.out" | sed 's/^/        | /'
			rc=1
		fi
	done
	rm -rf "$dir"
	return $rc
}

peer_of() { echo "$(node_ip "$1"):$E2E_PORT"; }

peer6_of() { echo "[$(node_ip6 "$1")]:$E2E_PORT"; }

all_peers() {
	local i peers='' of=${1:-peer_of}
	for ((i = 1; i < $(node_count); i++)); do
		peers+="${peers:+,}$("$of" "$i")"
	done
	echo "$peers"
}

all_peers6() { all_peers peer6_of; }

# The live cloud nodes.
servers() {
	local i
	for ((i = 1; i < $(node_count); i++)); do
		node_alive "$i" && printf '%d ' "$i"
	done
}

servers_load() {
	expect_all "insmod virgo_clouddrec.ko port=$E2E_PORT $*" "$(servers)" \
		"insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT $*"
}

servers_unload() {
	expect_all "rmmod virgo_clouddrec" "$(servers)" "rmmod virgo_clouddrec"
}

client_load() {
	expect "node0: insmod virgo.ko $*" \
		node_run 0 "insmod /virgo/virgo.ko peers=$(all_peers) $*"
}

cd_stats() { node_run "$1" "cat $E2E_STATS"; }

cd_stat() { node_run "$1" "awk '\$1 == \"$2\" { print \$2 }' $E2E_STATS"; }

# The command that waits up to SECS until the counters NAMES are all 0
# on a server, and prints the stats if they are not.
_cd_zero_cmd() {
	local secs=$1 names=$2
	echo "
		i=0
		while :; do
			bad=\$(awk -v n='$names' 'BEGIN { split(n, a, \" \"); for (k in a) w[a[k]] = 1 }
				(\$1 in w) && \$2 != 0 { print \$1 \"=\" \$2 }' $E2E_STATS)
			[ -z \"\$bad\" ] && exit 0
			[ \$i -ge $((secs * 10)) ] && break
			sleep 0.1
			i=\$((i + 1))
		done
		echo \"after ${secs}s:\" \$bad
		cat $E2E_STATS
		exit 1"
}

cd_idle() {
	node_run -t $((${2:-10} + 10)) "$1" \
		"$(_cd_zero_cmd "${2:-10}" "lent_bytes lent_chunks sessions")"
}

cd_lent_zero() {
	node_run -t $((${2:-10} + 10)) "$1" \
		"$(_cd_zero_cmd "${2:-10}" "lent_bytes lent_chunks")"
}

# servers_lent_zero [SECS]: a check per live cloud node, in parallel.
servers_lent_zero() {
	expect_all "lends nothing (lent_bytes, lent_chunks 0)" "$(servers)" \
		"$(_cd_zero_cmd "${1:-10}" "lent_bytes lent_chunks")"
}

# servers_idle [SECS]: no session either.
servers_idle() {
	expect_all "no session, lends nothing" "$(servers)" \
		"$(_cd_zero_cmd "${1:-10}" "lent_bytes lent_chunks sessions")"
}

# peer_state ADDR: idle, up, down (from the client's sysfs peers file).
peer_state() {
	node_run 0 "awk '\$2 == \"$1\" { print \$3 }' /sys/kernel/virgo/peers"
}

wait_for() {
	local secs=$1 t
	shift
	for ((t = 0; t < secs * 2; t++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	"$@"
}

slab_kb() {
	node_run "$1" "echo 3 >/proc/sys/vm/drop_caches; for f in /sys/kernel/slab/*/shrink; do echo 1 >\$f; done 2>/dev/null; awk '/^(Slab|MemFree):/ { v[\$1] = \$2 } END { print v[\"Slab:\"], v[\"MemFree:\"] }' /proc/meminfo"
}

# slab_all IDXS: "IDX SLAB_KB MEMFREE_KB" per node, measured in parallel.
slab_all() {
	local i dir
	dir=$(mktemp -d "$E2E_RESULTS/.slab.XXXXXX") || return 1
	for i in $1; do
		slab_kb "$i" >"$dir/$i" 2>/dev/null &
	done
	wait
	for i in $1; do
		echo "$i $(cat "$dir/$i")"
	done
	rm -rf "$dir"
}

# slab_check FILE WHEN: each node's Slab and MemFree in FILE against
# slab.before (see tests/e2e/README.md for the tolerances).
slab_check() {
	local i sb fb sa fa
	join "$E2E_RESULTS/slab.before" "$1" |
		awk 'BEGIN { printf "    %-6s %10s %10s %7s %12s %12s %8s\n", "node", "Slab kB", "after", "delta", "MemFree kB", "after", "delta" }
		     { printf "    node%-2s %10s %10s %+7d %12s %12s %+8d\n", $1, $2, $4, $4 - $2, $3, $5, $5 - $3 }'
	while read -r i sb fb sa fa; do
		if [ -n "$sb" ] && [ -n "$sa" ] && [ $((sa - sb)) -le "$E2E_SLAB_TOL" ]; then
			e2e_ok "node$i: Slab $2 within $E2E_SLAB_TOL kB of its start ($((sa - sb)) kB)"
		else
			e2e_fail "node$i: Slab $2 grew from '$sb' to '$sa' kB (tolerance $E2E_SLAB_TOL kB)"
		fi
		if [ -n "$fb" ] && [ -n "$fa" ] && [ $((fb - fa)) -le "$E2E_FREE_TOL" ]; then
			e2e_ok "node$i: MemFree $2 within $E2E_FREE_TOL kB of its start ($((fa - fb)) kB)"
		else
			e2e_fail "node$i: MemFree $2 fell from '$fb' to '$fa' kB (tolerance $E2E_FREE_TOL kB)"
		fi
	done < <(join "$E2E_RESULTS/slab.before" "$1")
}

# --- phases -----------------------------------------------------------------

E2E_PHASE=
E2E_PHASE_T0=0

_phase_end() {
	[ -n "$E2E_PHASE" ] &&
		printf '%-10s %4d s\n' "$E2E_PHASE" $((SECONDS - E2E_PHASE_T0)) \
			>>"$E2E_RESULTS/phases.txt"
	E2E_PHASE=
}

e2e_phase() {
	_phase_end
	E2E_PHASE=${1%%:*}
	E2E_PHASE_T0=$SECONDS
	e2e_step "$1"
}

phases_report() {
	_phase_end
	e2e_step "time per phase (cluster up: $(cat "$E2E_RESULTS/boot.txt" 2>/dev/null || echo ?))"
	sed 's/^/    /' "$E2E_RESULTS/phases.txt"
}

# cluster_up_timed N: cluster_up, and remember how long it took.
cluster_up_timed() {
	local t0=$SECONDS
	cluster_up "$1" || return 1
	echo "$((SECONDS - t0)) s" >"$E2E_RESULTS/boot.txt"
}

# --- the virgo_e2e shell on the client ---------------------------------------

vsh_start() {
	node_run 0 "rm -f /tmp/vsh.in /tmp/vsh.out; touch /tmp/vsh.out" &&
		node_spawn 0 vsh /virgo/virgo_e2e shell /tmp/vsh.in /tmp/vsh.out &&
		node_run 0 "i=0; while [ ! -p /tmp/vsh.in ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done; [ -p /tmp/vsh.in ]"
}

# vsh [-t SECS] CMD...: run one shell command (default limit 120 s).
vsh() {
	local secs=120
	if [ "${1:-}" = -t ]; then
		secs=$2
		shift 2
	fi
	# A fresh id (callers may run in subshells: no counter).
	local id
	id=$(date +%s%N)
	node_run -t $((secs + 5)) 0 "
		echo '$id $*' >/tmp/vsh.in
		i=0
		while ! grep -q '^#end $id ' /tmp/vsh.out; do
			[ -e /tmp/job.vsh.rc ] && { echo 'virgo_e2e shell is gone:' >&2; cat /tmp/job.vsh.out >&2; exit 255; }
			[ \$i -ge $((secs * 20)) ] && { echo 'no answer in ${secs}s' >&2; exit 124; }
			sleep 0.05
			i=\$((i + 1))
		done
		sed -n '/^#begin $id\$/,/^#end $id /p' /tmp/vsh.out | sed '1d;\$d'
		exit \$(sed -n 's/^#end $id //p' /tmp/vsh.out)"
}

# vsh_malloc_on NAME SIZE PEER: allocate NAME with at least one chunk on
# PEER.  Placement takes the roomier of two random peers, so a small
# allocation may miss one peer of three; the misses are kept aside while
# trying again (they fill the other peers), then freed.  On failure the
# client's view of its peers is printed.
vsh_malloc_on() {
	local name=$1 size=$2 peer=$3 try ret=1 misses=""
	for try in 1 2 3 4 5 6 7 8; do
		vsh malloc "$name" "$size" || break
		if ! vsh avoid "$name" "$peer" >/dev/null; then
			ret=0
			break
		fi
		vsh rename "$name" "$name.miss$try" || break
		misses="$misses $name.miss$try"
	done
	for try in $misses; do
		vsh free "$try" || ret=1
	done
	[ $ret = 0 ] || { vsh where "$name"; node_run 0 "cat /sys/kernel/virgo/peers"; }
	return $ret
}

vsh_stop() {
	vsh quit >/dev/null
	node_wait -t 30 0 vsh >/dev/null
}
