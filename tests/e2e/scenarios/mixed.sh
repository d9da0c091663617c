#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mixed: the two kinds of lender in one cluster.  node0 is the client
# (virgo.ko), node1 runs the kernel server (virgo_clouddrec.ko), node2 and
# node3 the user-space daemon (virgo-clouddrecd, linked static, with its
# stats file /tmp/cd.stats).
#
#   conformance  tests/conformance from node0 against node1's kernel server
#                (with a key, then without) and node2's daemon, over the
#                emulated network; VIRGO_E2E_CONFORMANCE_SKIP_KERNEL
#                (default: none) names cases to skip for the kernel,
#                which then run once more for the log only; every
#                server idle afterwards
#   integrity    virgo_e2e integrity (random offsets and lengths against a
#                shadow copy, unwritten memory reads zeroes)
#   threads      virgo_e2e threads
#   large        one 48 MiB allocation: every lender lends part of it
#                (lent_bytes > 0 on the kernel server and on both daemons,
#                each equal to what the client's table places there, 48 MiB
#                in all); a write across every chunk boundary, read back;
#                freed: every lender back to 0
#   kill         node3's daemon SIGKILLed while the client holds an
#                allocation with chunks there: those chunks fail with EIO
#                within 1 s, the others read back, the free succeeds, a new
#                allocation works and places nothing on node3
#   stop         node2's daemon SIGTERMed: exits 0 within 10 s; node1 and
#                node2 lend nothing
#
# Environment: VIRGO_E2E_SEED, VIRGO_E2E_PORT (4646),
# VIRGO_E2E_CONFORMANCE_SKIP_KERNEL.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
# shellcheck disable=SC2317 # helpers are called through expect
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

seed=${VIRGO_E2E_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
skip_kernel=${VIRGO_E2E_CONFORMANCE_SKIP_KERNEL-}
psk=virgo-mixed-$seed
large=48M
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-30}
CDD_STATS=/tmp/cd.stats
KO_STATS=$E2E_STATS

# The daemon and the suite, linked static for the busybox initramfs.
build_userspace() {
	local out=$E2E_RESULTS/progs cflags="-static -O2 -std=c11 -Wall -Wextra -Werror"
	local cd=$E2E_REPO/tools/clouddrecd
	mkdir -p "$out" || return 1
	# shellcheck disable=SC2086 # word splitting of cflags is wanted
	# (libcrypto.a warns about getaddrinfo in code we never call)
	gcc $cflags -I"$E2E_REPO/include" -o "$out/virgo-clouddrecd" \
		"$cd/cd_main.c" "$cd/cd_loop.c" "$cd/cd_proto.c" \
		-lcrypto -lpthread 2>"$out/clouddrecd.ld.log" &&
		gcc $cflags -I"$E2E_REPO/include" -o "$out/virgo-conformance" \
			"$E2E_REPO/tests/conformance/virgo_conformance.c" \
			-lcrypto 2>"$out/conformance.ld.log" || return 1
	cluster_add_file "$out/virgo-clouddrecd" /virgo/virgo-clouddrecd &&
		cluster_add_file "$out/virgo-conformance" /virgo/virgo-conformance
}

# Which stats file a cloud node has.
stats_of() { if [ "$1" = 1 ]; then echo "$KO_STATS"; else echo "$CDD_STATS"; fi; }

lender_stat() { node_run "$1" "awk '\$1 == \"$2\" { print \$2 }' $(stats_of "$1")"; }

# lenders_zero IDXS: each lends nothing (polls up to 10 s: the daemon
# rewrites its stats file once a second).
lenders_zero() {
	local i
	for i in $1; do
		expect_all "lends nothing" "$i" \
			"$(E2E_STATS=$(stats_of "$i") _cd_zero_cmd 10 "lent_bytes lent_chunks")"
	done
}

lenders_idle() {
	local i
	for i in $1; do
		expect_all "no session, lends nothing" "$i" \
			"$(E2E_STATS=$(stats_of "$i") _cd_zero_cmd 10 "lent_bytes lent_chunks sessions")"
	done
}

daemon_start() {
	local i=$1
	node_spawn "$i" cdd /virgo/virgo-clouddrecd --listen "0.0.0.0:$E2E_PORT" \
		--max-memory 192M --threads 2 --stats-file "$CDD_STATS" &&
		node_run "$i" "i=0; while ! grep -q '^port $E2E_PORT\$' $CDD_STATS 2>/dev/null && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done; grep -q '^port $E2E_PORT\$' $CDD_STATS"
}

# lends_as_table IDX WHERE: the node's lent_bytes > 0 and equal to what the
# client's table (vsh where) places on it.
lends_as_table() {
	local i=$1 where=$2 want lent t
	want=$(awk -v p="$(peer_of "$i")" '$2 == p { print $6 }' <<<"$where")
	for ((t = 0; t < 10; t++)); do
		lent=$(lender_stat "$i" lent_bytes)
		[ -n "$want" ] && [ "$want" -gt 0 ] && [ "$lent" = "$want" ] && break
		sleep 0.5
	done
	echo "$lent"
	[ -n "$want" ] && [ "$want" -gt 0 ] && [ "$lent" = "$want" ]
}

# vsh is a function: a predicate for expect, no "sh -c".

e2e_begin mixed
e2e_build_progs || e2e_abort "cannot build tests/e2e/progs"
build_userspace || e2e_abort "cannot build virgo-clouddrecd / virgo-conformance static"
cluster_up_timed 4 || e2e_abort "cluster did not come up"
e2e_log "seed $seed (VIRGO_E2E_SEED=$seed replays this run)"
n3=$(peer_of 3)

e2e_phase "start: daemons on node2 and node3"
slab_all "0 1" >"$E2E_RESULTS/slab.before"
for i in 2 3; do
	expect "node$i: virgo-clouddrecd listens on :$E2E_PORT" daemon_start "$i"
done

e2e_phase "conformance: the same suite against both servers"
suite="/virgo/virgo-conformance ${skip_kernel:+--skip $skip_kernel}"
expect "node1: insmod virgo_clouddrec.ko psk=..." \
	node_run 1 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT max_memory_mb=192 psk=$psk"
node_run 0 "umask 077; printf '%s' '$psk' >/tmp/psk"
expect "node0 -> node1 (virgo_clouddrec.ko, key): virgo-conformance --key${skip_kernel:+ --skip $skip_kernel}" \
	node_run -t 240 0 "$suite --key /tmp/psk $(node_ip 1) $E2E_PORT"
expect "node1: rmmod virgo_clouddrec" node_run 1 "rmmod virgo_clouddrec"
expect "node1: insmod virgo_clouddrec.ko (no key)" \
	node_run 1 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT max_memory_mb=192"
expect "node0 -> node1 (virgo_clouddrec.ko, no key): virgo-conformance${skip_kernel:+ --skip $skip_kernel}" \
	node_run -t 240 0 "$suite $(node_ip 1) $E2E_PORT"
if [ -n "$skip_kernel" ]; then
	# Not a check: where the kernel server and the spec disagree today
	# (fixed on the server's hardening branch; then empty the skip list).
	if out=$(node_run -t 120 0 "/virgo/virgo-conformance --only $skip_kernel $(node_ip 1) $E2E_PORT"); then
		e2e_log "virgo_clouddrec.ko now passes the skipped cases ($skip_kernel): drop them from VIRGO_E2E_CONFORMANCE_SKIP_KERNEL"
	else
		e2e_log "known disagreements of virgo_clouddrec.ko with docs/protocol.md (skipped above):"
		grep -E '^(FAIL|ok)' <<<"$out" | sed 's/^/    /'
	fi
fi
expect "node0 -> node2 (virgo-clouddrecd): virgo-conformance" \
	node_run -t 240 0 "/virgo/virgo-conformance $(node_ip 2) $E2E_PORT"
lenders_idle "1 2 3"

e2e_phase "integrity: random offsets and lengths over both kinds of lenders"
client_load
expect "virgo_e2e integrity -s $seed -S 6M -n 80" \
	node_run -t 300 0 /virgo/virgo_e2e integrity -s "$seed" -S 6M -n 80
lenders_zero "1 2 3"

e2e_phase "threads"
expect "virgo_e2e threads -s $seed -t 4 -n 10 -m 640K" \
	node_run -t 300 0 /virgo/virgo_e2e threads -s "$seed" -t 4 -n 10 -m 640K
lenders_zero "1 2 3"

e2e_phase "large: one $large allocation on every lender"
expect "start the virgo_e2e shell" vsh_start
large_bytes=$(numfmt --from=iec "$large")
expect "malloc $large" vsh malloc L "$large"
expect "write across every chunk boundary" vsh -t 300 touch L "$seed"
where=$(vsh where L)
printf '%s\n' "$where"
sum=0
for i in 1 2 3; do
	kind=daemon
	[ "$i" = 1 ] && kind="kernel server"
	if lent=$(lends_as_table "$i" "$where"); then
		e2e_ok "node$i ($kind) lends $lent bytes (> 0), as the client's table says"
	else
		e2e_fail "node$i ($kind) lends '$lent' bytes; the client's table says otherwise"
	fi
	sum=$((sum + ${lent:-0}))
done
if [ "$sum" -eq "$large_bytes" ]; then
	e2e_ok "the three lend $sum bytes in all = $large"
else
	e2e_fail "the three lend $sum bytes in all, not $large_bytes"
fi
expect "read back every chunk boundary; 64 unwritten places read zeroes" \
	vsh -t 300 check L 64
expect "free it" vsh free L
lenders_zero "1 2 3"

e2e_phase "kill: node3's daemon SIGKILLed while it holds chunks"
expect "malloc K 6M with chunks on node3" vsh_malloc_on K 6M "$n3"
expect "fill K" vsh fill K "$seed"
expect "node3: kill -KILL virgo-clouddrecd" node_run 3 "kill -KILL \$(pidof virgo-clouddrecd)"
expect "K's chunks on node3: EIO within 1 s" vsh probe K "$n3" 4 fail 1000
expect "K's chunks elsewhere read back right" vsh -t 60 others K "$n3"
expect "free K" vsh free K
expect "a new allocation after the kill: malloc N 4M" vsh malloc N 4M
expect "N has no chunk on node3" vsh avoid N "$n3"
expect "fill N" vsh fill N "$seed"
expect "check N" vsh check N
expect "free N" vsh free N
expect "stop the virgo_e2e shell" vsh_stop
lenders_zero "1 2"

e2e_phase "stop: unload the client, SIGTERM node2's daemon"
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
lenders_idle "1 2"
expect "node2: kill -TERM virgo-clouddrecd" node_run 2 "kill -TERM \$(pidof virgo-clouddrecd)"
expect "node2: the daemon exits 0 within 10 s (drained, nothing lent)" \
	node_wait -t 10 2 cdd
expect "node1: rmmod virgo_clouddrec" node_run 1 "rmmod virgo_clouddrec"
slab_all "0 1" >"$E2E_RESULTS/slab.after"
slab_check "$E2E_RESULTS/slab.after" "after everything (kernel nodes)"

phases_report
e2e_end
