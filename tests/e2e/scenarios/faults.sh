#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# faults: one 4-node cluster (node0 client, node1..3 cloud nodes) and
# everything that goes wrong, in an order that keeps the cluster usable:
#
#   logcheck   a WARNING injected into node0's kernel log is caught by
#              cluster_check_logs (then allowed, so the run can pass)
#   cycles     rmmod/insmod of both modules, with and without load:
#              - virgo.ko loaded, used and unloaded twice: every server
#                back to no session and nothing lent each time
#              - rmmod virgo while a load program has /dev/virgo open:
#                refused (the open file holds a module reference; busybox
#                rmmod gets EAGAIN, "Resource temporarily unavailable"),
#                the module stays, the load sees no error and no wrong
#                byte; once the load stops, rmmod succeeds
#              - rmmod/insmod virgo_clouddrec on node1 while the client
#                holds no allocation: new allocations work at once, node1
#                is used again after it comes back
#              - the same while the client holds an allocation: its
#                chunks on node1 are gone (reads fail with EIO, at once),
#                its chunks elsewhere still read back right, the free
#                succeeds, node1 lends nothing
#              - node1's server cycled twice under load (errors tolerated,
#                wrong data never)
#              - Slab and MemFree of every node back near their values
#                before the first insmod (again at the very end, for the
#                nodes still alive)
#   auth       servers with psk=: a client with a wrong key, and one with
#              none, cannot allocate (ENOSPC: no reachable peer), the
#              servers count the wrong key in err_auth and lend nothing;
#              a client with the key works; it refuses a server without a
#              key (no downgrade)
#   hostile    virgo_hostile on node0 against node1 (no key, io_timeout
#              2 s, idle_timeout 4 s): 150 connections of garbage,
#              truncated and mutated frames, abandoned sessions, deaf
#              pipelines, and 12 half-open connections, which the server
#              must close within 20 s of the start; while the client
#              still holds the deaf ones, node1 has no session and lends
#              nothing; its error counters moved; then one clean session
#              works; the same with 40 connections against node2, which
#              wants a key (everything refused before AUTH, err_perm);
#              then a real client allocates, writes and reads on node1
#   idle       an allocation untouched for longer than node1's
#              idle_timeout (4 s) still reads back
#   link       node2's link cut: reads of its chunks fail with ETIMEDOUT or
#              EIO within rpc_timeout_ms (2000) + 1 s, chunks elsewhere
#              read back; rewriting the allocation fails (ETIMEDOUT or
#              EIO) within 2 x rpc_timeout_ms + 2 s; after the link is
#              back node2 is up for the client (the connection usually
#              survives a short cut), its old chunks read back or fail
#              within the limit, new allocations use node2 again
#   deadpeer   12 mallocs of 1 MiB, 250 ms apart, without and with a
#              dead peer (an address nobody answers) in the list, same
#              run: median at most 2x + 20 ms, slowest at most the
#              slowest without + 500 ms (a connect inside a malloc would
#              cost 1000); the first malloc right after the add waits
#              for that peer's first connect attempt: <= 1000 + 500 ms
#   kill       node3 killed (qemu SIGKILL): one 8 MiB VIRGO_IOC_SET right
#              after, over chunks there, fails (EIO/ETIMEDOUT) within
#              rpc_timeout_ms + 1 s; reads of its chunks fail
#              within rpc_timeout_ms + 1 s, the others read back, new
#              allocations succeed and place nothing on node3
#
# Environment: VIRGO_E2E_SEED, VIRGO_E2E_PORT (4646),
# VIRGO_E2E_SLAB_TOLERANCE_KB (1024), VIRGO_E2E_MEMFREE_TOLERANCE_KB
# (32768): see tests/e2e/README.md.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
# shellcheck disable=SC2317 # predicates are called through expect
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

seed=${VIRGO_E2E_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
# A command that hangs means a wedged node: do not wait a minute for each.
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-30}
rpc_ms=2000
# 256 KiB chunks: a few MiB make enough chunks to be on every node.
client_params="rpc_timeout_ms=$rpc_ms connect_timeout_ms=1000 chunk_size=262144"
limit_ms=$((rpc_ms + 1000))
key=e2e-secret-key
n1=$(node_ip 1):$E2E_PORT
n2=$(node_ip 2):$E2E_PORT
n3=$(node_ip 3):$E2E_PORT

# Small predicates for expect (vsh is a function: no "sh -c").
fill_check() { vsh fill "$1" "$seed" && vsh check "$1"; }
peer_up() { [ "$(peer_state "$1")" = up ]; }
peer_epoch() {
	node_run 0 "awk '\$2 == \"$1\" { print \$4 }' /sys/kernel/virgo/peers"
}
use_then_up() {
	node_run -t 30 0 /virgo/virgo_e2e load -t 1 -d 1 >/dev/null
	peer_up "$1"
}
free_anyway() { vsh free "$1"; true; }

e2e_begin faults
e2e_build_progs || e2e_abort "cannot build tests/e2e/progs"
cluster_up_timed 4 || e2e_abort "cluster did not come up"
e2e_log "seed $seed (VIRGO_E2E_SEED=$seed replays this run)"

# ---------------------------------------------------------------------------
e2e_phase "logcheck: cluster_check_logs catches a kernel warning"
node_run 0 "echo '<4>virgo-e2e-selftest: WARNING: injected by faults.sh' >/dev/kmsg"
wait_for 10 grep -q virgo-e2e-selftest "$(node_log 0)"
expect_fail "cluster_check_logs sees the injected WARNING" cluster_check_logs 0
export VIRGO_E2E_LOG_ALLOW=virgo-e2e-selftest
expect "... and lets it pass once allowed" cluster_check_logs 0

# ---------------------------------------------------------------------------
e2e_phase "cycles: rmmod/insmod of both modules, with and without load"
slab_all "0 1 2 3" >"$E2E_RESULTS/slab.before"
servers_load
for round in 1 2; do
	client_load "$client_params"
	expect "round $round: short load" \
		node_run -t 60 0 /virgo/virgo_e2e load -s "$seed" -t 2 -d 1
	expect "round $round: rmmod virgo" node_run 0 "rmmod virgo"
	servers_idle
done

client_load "$client_params"
expect "start a load that keeps /dev/virgo open" \
	node_spawn 0 load /virgo/virgo_e2e load -s "$seed" -t 2 -d 120 \
	-x /tmp/load.stop -r /tmp/load.ready
expect "the load runs" node_run -t 40 0 \
	"i=0; while [ ! -e /tmp/load.ready ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done; [ -e /tmp/load.ready ]"
for try in 1 2 3; do
	out=$(node_run 0 "rmmod virgo 2>&1")
	rc=$?
	if [ $rc -ne 0 ] && node_run 0 "grep -q '^virgo ' /proc/modules"; then
		e2e_ok "rmmod virgo under load refused ($try): ${out//$'\n'/ }"
	else
		e2e_fail "rmmod virgo under load: exit $rc, '$out', module gone?"
	fi
done
node_run 0 "touch /tmp/load.stop"
expect "the load saw no error and no wrong byte" node_wait -t 60 0 load
expect "rmmod virgo once the load stopped" node_run 0 "rmmod virgo"
servers_idle

client_load "$client_params"
expect "warm-up load (connections to every server)" \
	node_run -t 60 0 /virgo/virgo_e2e load -s "$seed" -t 1 -d 1
expect "node1: rmmod virgo_clouddrec, client holds nothing" \
	node_run 1 "rmmod virgo_clouddrec" ||
	e2e_abort "node1: rmmod virgo_clouddrec did not finish (see node1.console.log)"
expect "allocations work with node1 gone" \
	node_run -t 60 0 /virgo/virgo_e2e load -s "$seed" -t 1 -d 2
expect "node1: insmod virgo_clouddrec again" \
	node_run 1 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT"
expect "the client gets node1 back (peer up)" \
	wait_for 20 use_then_up "$n1"
expect "start the virgo_e2e shell" vsh_start
expect "malloc H 4M with chunks on node1" vsh_malloc_on H 4M "$n1"
expect "fill H" vsh fill H "$seed"
expect "node1: rmmod virgo_clouddrec while the client holds H" \
	node_run 1 "rmmod virgo_clouddrec" ||
	e2e_abort "node1: rmmod virgo_clouddrec did not finish (see node1.console.log)"
expect "H's chunks on node1: EIO at once (< 1 s)" vsh probe H "$n1" 4 fail 1000
expect "H's chunks elsewhere read back right" vsh others H "$n1"
expect "free H succeeds" vsh free H
expect "node1: insmod virgo_clouddrec again" \
	node_run 1 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT"
expect "node1 lends nothing (the client may be connected again)" cd_lent_zero 1

expect "start a load that tolerates I/O errors" \
	node_spawn 0 eload /virgo/virgo_e2e load -s "$seed" -t 2 -d 120 -e \
	-x /tmp/eload.stop -r /tmp/eload.ready
expect "it runs" node_run -t 40 0 \
	"i=0; while [ ! -e /tmp/eload.ready ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done; [ -e /tmp/eload.ready ]"
# A node whose rmmod hangs is wedged for good: stop there, the console
# log says why.  (Seen before the fix: the client's FIN/RST queued a
# session's I/O work on the draining workqueue, __queue_work() WARNed and
# left it pending, and cancel_work_sync() in the session release spun
# forever; tests/e2e/README.md, bugs found.)
for round in 1 2; do
	expect "round $round: node1 rmmod virgo_clouddrec under load" \
		node_run 1 "sleep 1; rmmod virgo_clouddrec" ||
		e2e_abort "node1: rmmod virgo_clouddrec under load did not finish (see node1.console.log)"
	expect "round $round: node1 insmod virgo_clouddrec under load" \
		node_run 1 "sleep 1; insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT" ||
		e2e_abort "node1: insmod virgo_clouddrec failed"
done
node_run 0 "sleep 1; touch /tmp/eload.stop"
expect "the load never saw wrong data and never hung" node_wait -t 60 0 eload
expect "stop the virgo_e2e shell" vsh_stop
expect "rmmod virgo" node_run 0 "rmmod virgo"
servers_idle
servers_unload
expect_all "no virgo module left" "0 1 2 3" \
	"! grep -E '^virgo(_clouddrec)? ' /proc/modules"
slab_all "0 1 2 3" >"$E2E_RESULTS/slab.after"
slab_check "$E2E_RESULTS/slab.after" "after the cycles"

# ---------------------------------------------------------------------------
e2e_phase "auth: wrong key, no key, right key"
servers_load "psk=$key"
client_load "$client_params psk=wrong-$key"
expect "start the virgo_e2e shell" vsh_start
out=$(vsh malloc A 1M)
rc=$?
printf '%s\n' "$out"
if [ $rc -eq 28 ]; then
	e2e_ok "wrong key: malloc fails with ENOSPC (no reachable peer)"
else
	e2e_fail "wrong key: malloc exit $rc, want 28 (ENOSPC)"
fi
expect "stop the virgo_e2e shell" vsh_stop
auth=0
for i in 1 2 3; do
	auth=$((auth + $(cd_stat "$i" err_auth)))
done
if [ "$auth" -ge 1 ]; then
	e2e_ok "the servers counted $auth failed AUTH"
else
	e2e_fail "no server counted a failed AUTH (err_auth 0)"
fi
servers_idle
expect "rmmod virgo" node_run 0 "rmmod virgo"

client_load "$client_params"
expect "start the virgo_e2e shell" vsh_start
out=$(vsh malloc A 1M)
rc=$?
printf '%s\n' "$out"
if [ $rc -eq 28 ]; then
	e2e_ok "no key: malloc fails with ENOSPC (no reachable peer)"
else
	e2e_fail "no key: malloc exit $rc, want 28 (ENOSPC)"
fi
expect "stop the virgo_e2e shell" vsh_stop
expect "the client said why" node_run 0 "dmesg | grep -q 'wants a key and none is set'"
expect "rmmod virgo" node_run 0 "rmmod virgo"
servers_idle
expect_all "nothing was ever lent" "1 2 3" \
	"awk '\$1 == \"chunks_allocated\" && \$2 == 0 { ok = 1 } END { exit !ok }' $E2E_STATS"

# node1 without a key: a client with a key must not use it.
expect "node1: reload without a key" \
	node_run 1 "rmmod virgo_clouddrec && insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT"
client_load "$client_params psk=$key"
expect "start the virgo_e2e shell" vsh_start
expect "right key: malloc 4M" vsh malloc A 4M
expect "right key: write and read back" fill_check A
expect "no chunk on node1, which asks for no key" vsh avoid A "$n1"
expect "free" vsh free A
expect "stop the virgo_e2e shell" vsh_stop
expect "rmmod virgo" node_run 0 "rmmod virgo"
servers_idle
servers_unload

# ---------------------------------------------------------------------------
e2e_phase "hostile: a fuzzing client against node1"
expect "node1: insmod virgo_clouddrec io_timeout=2 idle_timeout=4" \
	node_run 1 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT io_timeout=2 idle_timeout=4"
expect "node2: insmod virgo_clouddrec psk=..." \
	node_run 2 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT psk=$key io_timeout=2 idle_timeout=4"
expect "node3: insmod virgo_clouddrec" \
	node_run 3 "insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT"
# hostile IDX NAME ARGS: run virgo_hostile against node IDX; once it has
# fuzzed and seen its half-open connections closed, the server must have
# no session left while the client still holds the deaf ones.
hostile() {
	local idx=$1 name=$2
	shift 2
	expect "virgo_hostile against node$idx: $*" \
		node_spawn 0 "$name" /virgo/virgo_hostile -a "$(node_ip "$idx")" \
		-p "$E2E_PORT" -s "$seed" "$@" -r "/tmp/$name.ready" -W "/tmp/$name.go"
	expect "... it fuzzed, the server closed every half-open connection" \
		node_run -t 200 0 "i=0; while [ ! -e /tmp/$name.ready ] && [ ! -e /tmp/job.$name.rc ] && [ \$i -lt 1800 ]; do sleep 0.1; i=\$((i+1)); done; [ -e /tmp/$name.ready ]"
	expect "... node$idx has no session left, lends nothing" cd_idle "$idx" 15
	node_run 0 "touch /tmp/$name.go"
	expect "... virgo_hostile passed (half-open closed in time, a clean session works)" \
		node_wait -t 60 0 "$name"
}
hostile 1 hostile1 -n 150 -H 12 -w 20
hostile 2 hostile2 -n 40 -H 4 -w 12
expect "node1 and node2 answer" node_ping 0 "$(node_ip 1)" 1
cd_stats 1 >"$E2E_RESULTS/node1.hostile.stats"
cd_stats 2 >"$E2E_RESULTS/node2.hostile.stats"
sed 's/^/    node1 /' "$E2E_RESULTS/node1.hostile.stats" | paste - - - -
for c in err_header err_payload err_timeout err_handle; do
	v=$(awk -v c=$c '$1 == c { print $2 }' "$E2E_RESULTS/node1.hostile.stats")
	if [ "${v:-0}" -gt 0 ]; then
		e2e_ok "node1 counted $c ($v)"
	else
		e2e_fail "node1: $c is ${v:-?}, expected > 0"
	fi
done
v=$(awk '$1 == "err_perm" { print $2 }' "$E2E_RESULTS/node2.hostile.stats")
if [ "${v:-0}" -gt 0 ]; then
	e2e_ok "node2 refused requests before AUTH (err_perm $v)"
else
	e2e_fail "node2: err_perm is ${v:-?}, expected > 0"
fi
expect "node2: reload without a key" \
	node_run 2 "rmmod virgo_clouddrec && insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT"
client_load "$client_params"
expect "start the virgo_e2e shell" vsh_start
expect "a real client: malloc 4M with chunks on node1" vsh_malloc_on R 4M "$n1"
expect "... written and read back" fill_check R
expect "free" vsh free R

# ---------------------------------------------------------------------------
e2e_phase "idle: an allocation outlives node1's idle_timeout (4 s)"
expect "malloc I 3M with chunks on node1" vsh_malloc_on I 3M "$n1"
expect "fill I" vsh fill I "$seed"
sleep 6
# The data is still there: idle_timeout closes only sessions that hold
# nothing (before the fix the reaper freed I's chunks on node1 and the
# check read EIO; tests/e2e/README.md, bugs found).
expect "I reads back after 6 s untouched" vsh check I
vsh free I >/dev/null
expect "node1: reload with the default timeouts" \
	node_run 1 "rmmod virgo_clouddrec && insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT"

# ---------------------------------------------------------------------------
e2e_phase "link: node2's link cut and restored"
expect "malloc E 6M" vsh malloc E 6M
expect "fill E" vsh fill E "$seed"
epoch0=$(peer_epoch "$n2")
link_down 2
expect "E's chunks on node2 fail within $limit_ms ms" \
	vsh probe E "$n2" 2 fail "$limit_ms"
expect "E's chunks elsewhere read back right" vsh -t 60 others E "$n2"
# Rewriting it: the WRITEs to node2 go into the socket buffer and are
# never answered; the call fails within the timeout.  (They are applied
# once the link is back, if the connection survives: a timed-out write
# has an unknown outcome.)
t0=$(date +%s%N)
out=$(vsh -t 60 fill E "$seed")
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
printf '%s\n' "$out" | sed 's/^/    /'
if { [ $rc -eq 5 ] || [ $rc -eq 110 ]; } && [ $ms -le $((2 * rpc_ms + 2000)) ]; then
	e2e_ok "rewriting E during the cut fails (exit $rc) in $ms ms"
else
	e2e_fail "rewriting E during the cut: exit $rc in $ms ms (want EIO/ETIMEDOUT within $((2 * rpc_ms + 2000)) ms)"
fi
e2e_log "node2 for the client during the cut: $(peer_state "$n2")"
link_up 2
expect "node2 is up again for the client (used, then up)" \
	wait_for 30 use_then_up "$n2"
epoch1=$(peer_epoch "$n2")
if [ "${epoch1:-0}" -gt "${epoch0:-0}" ]; then
	e2e_log "the client reconnected to node2 (epoch $epoch0 -> $epoch1)"
else
	e2e_log "the connection to node2 survived the cut (epoch $epoch1)"
fi
# Right after the cut TCP may still wait for its next retransmission:
# a request may time out, but never take longer.
expect "E's chunks on node2: back, EIO or ETIMEDOUT, within $limit_ms ms" \
	vsh probe E "$n2" 2 any "$limit_ms"
expect "free E" vsh free E
expect "a new allocation after the cut: malloc N 6M with chunks on node2" \
	vsh_malloc_on N 6M "$n2"
expect "... written and read back" fill_check N
expect "free N" vsh free N
servers_lent_zero 20

# ---------------------------------------------------------------------------
e2e_phase "deadpeer: a dead peer configured costs a malloc nothing"
# 10.99.0.99 is no node: its ARP requests go unanswered, so a connect to
# it hangs until connect_timeout_ms (1000) like one to a dead host.  The
# same mallocs (1 MiB, 4 chunks, each freed, 250 ms apart: 3 s, over
# several of the background reconnects' backoff steps) without and with
# it in the peer list, in one run: placement skips a peer that is down and
# reconnects it in the background, never inside a malloc (issue 15: a
# malloc used to stall ~connect_timeout_ms on and off for a minute).
# Only the first malloc after the peer is added waits, by design, for
# that peer's first connect attempt (virgo_peers_wait_tried(): at most
# connect_timeout_ms, so that a freshly added live peer is used at once).
dead=10.99.0.99:$E2E_PORT
connect_ms=1000
# mtime_of OUT median|max: a figure of "vsh mtime"
mtime_of() { sed -n "s/^mtime .*: median \([0-9]*\) ms max \([0-9]*\) ms\$/\\$2/p" <<<"$1"; }
out0=$(vsh -t 120 mtime 12 1M 250)
expect "12 mallocs without the dead peer" test -n "$(mtime_of "$out0" 1)"
expect "add the dead peer $dead" \
	node_run 0 "echo 'add $dead' >/sys/kernel/virgo/peers"
outf=$(vsh -t 60 mtime 1 1M)
first=$(mtime_of "$outf" 2)
expect "the first malloc after the add waits at most its first connect attempt ($first ms <= $connect_ms + 500)" \
	test "${first:-99999}" -le $((connect_ms + 500))
out1=$(vsh -t 120 mtime 12 1M 250)
expect "12 mallocs with it" test -n "$(mtime_of "$out1" 1)"
med0=$(mtime_of "$out0" 1) max0=$(mtime_of "$out0" 2)
med1=$(mtime_of "$out1" 1) max1=$(mtime_of "$out1" 2)
e2e_log "malloc 1M: median $med0 ms, max $max0 ms without; first after the add $first ms; then median $med1 ms, max $max1 ms with $dead ($(peer_state "$dead"))"
# Bounds: the median at most twice (+20 ms of TCG noise), no malloc
# longer than the slowest without plus half a connect timeout (a connect
# inside a malloc costs the whole connect_timeout_ms).
expect "median with the dead peer <= 2 x without + 20 ms ($med1 vs $med0)" \
	test "${med1:-99999}" -le $((2 * ${med0:-0} + 20))
expect "slowest with it <= slowest without + $((connect_ms / 2)) ms ($max1 vs $max0)" \
	test "${max1:-99999}" -le $((${max0:-0} + connect_ms / 2))
expect "del the dead peer" \
	node_run 0 "echo 'del $dead' >/sys/kernel/virgo/peers"

# ---------------------------------------------------------------------------
e2e_phase "kill: node3 dies"
expect "malloc K 6M with chunks on node3" vsh_malloc_on K 6M "$n3"
expect "fill K" vsh fill K "$seed"
expect "malloc L 8M with chunks on node3" vsh_malloc_on L 8M "$n3"
expect "fill L" vsh fill L "$seed"
node_kill 3
# Right after the death, one 8 MiB VIRGO_IOC_SET (replicas=1) over chunks
# on node3: its requests there go unanswered (no RST from a dead host),
# and the call fails within one rpc_timeout_ms (+1 s margin for TCG).
# (It took two, 4.1-4.4 s, while a send that filled the dead node's window
# waited a full timeout per partial send: vcf_send_to_a_stuck_peer_takes_
# one_timeout.)
set1_limit=$limit_ms
out=$(vsh -t 60 set1 L $((seed + 1)))
rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
ms=$(sed -n 's/.* in one call, \([0-9]*\) ms$/\1/p' <<<"$out")
if { [ $rc -eq 5 ] || [ $rc -eq 110 ]; } && [ "${ms:-99999}" -le "$set1_limit" ]; then
	e2e_ok "an 8 MiB set right after node3 died fails (exit $rc) in $ms ms (<= $set1_limit)"
else
	e2e_fail "an 8 MiB set right after node3 died: exit $rc in ${ms:-?} ms (want EIO/ETIMEDOUT within $set1_limit ms)"
fi
expect "K's chunks on node3 fail within $limit_ms ms" \
	vsh probe K "$n3" 2 fail "$limit_ms"
expect "K's chunks elsewhere read back right" vsh -t 60 others K "$n3"
# New allocations avoid the dead node: after the timed-out reads the
# client holds node3 "suspect" and places nothing there (before the fix it
# stayed "up" for ~15 min and every malloc placing a chunk there failed
# with ETIMEDOUT; tests/e2e/README.md, bugs found).
for n in 1 2; do
	t0=$(date +%s%N)
	expect "new malloc $n after the kill" vsh malloc M$n 4M
	ms=$((($(date +%s%N) - t0) / 1000000))
	expect "... places nothing on node3" vsh avoid "M$n" "$n3"
	expect "... written and read back" fill_check "M$n"
	if [ "$ms" -le $((limit_ms + 2000)) ]; then
		e2e_ok "... took $ms ms"
	else
		e2e_fail "... took $ms ms (over $((limit_ms + 2000)) ms)"
	fi
	vsh free "M$n" >/dev/null
done
e2e_log "the client's peers after the kill:"
node_run 0 "cat /sys/kernel/virgo/peers" | sed 's/^/    /'
expect "free K (its node3 part is lost)" free_anyway K
expect "free L (its node3 part is lost)" free_anyway L
expect "stop the virgo_e2e shell" vsh_stop
expect "node1: nothing lent" cd_lent_zero 1 20
expect "node2: nothing lent" cd_lent_zero 2 20
expect "rmmod virgo" node_run 0 "rmmod virgo"
expect_all "rmmod virgo_clouddrec" "1 2" "rmmod virgo_clouddrec"
slab_all "0 1 2" >"$E2E_RESULTS/slab.end"
slab_check "$E2E_RESULTS/slab.end" "at the end"

phases_report
e2e_end
