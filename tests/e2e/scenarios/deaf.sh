#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# deaf: one deaf crowd must not stall a cloud node (issue 10, item 3).
# A 2-node cluster: node0 the client, node1 the cloud node.
#
#   baseline    a real client (virgo_e2e shell on /dev/virgo) allocates
#               64 MiB on node1, writes all of it, reads all of it back
#               and compares; the time of write + read is the baseline
#   deaf        virgo_hostile -R 300 on node0 opens 300 sessions on node1
#               that each allocate and write a chunk, then pipeline READs
#               of it with a 4 KiB receive buffer and never read a reply;
#               node1 holds them all (sessions > 300); the same 64 MiB run
#               again: no error, every byte right, and its time within 2x
#               of the baseline (plus 2 s of slack for the command channel
#               and TCG noise); node1 still holds the deaf sessions after
#   cleanup     the deaf sessions let go, the client unloaded: node1 has
#               no session and lends nothing
#
# The server runs with max_sessions_per_addr=1024 (all 300 come from
# node0) and io_timeout=60 (the deaf sessions must outlive the run; the
# KUnit case cd_test_deaf_sessions_do_not_stall_others checks that they
# are closed after io_timeout).
#
# Environment: VIRGO_E2E_SEED (random by default), VIRGO_E2E_PORT (4646),
# VIRGO_E2E_DEAF (300 connections), VIRGO_E2E_DEAF_SIZE (64M).
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

seed=${VIRGO_E2E_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
deaf=${VIRGO_E2E_DEAF:-300}
size=${VIRGO_E2E_DEAF_SIZE:-64M}
export VIRGO_E2E_MEM=${VIRGO_E2E_MEM:-640M}
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-30}

e2e_begin deaf
e2e_build_progs || e2e_abort "cannot build tests/e2e/progs"
cluster_up_timed 2 || e2e_abort "cluster did not come up"
e2e_log "seed $seed (VIRGO_E2E_SEED=$seed replays this run)"

servers_load max_sessions=1024 max_sessions_per_addr=1024 io_timeout=60
client_load
vsh_start || e2e_abort "virgo_e2e shell did not start"

# run NAME: allocate $size, fill it, read it all back; prints the
# milliseconds write + read took, fails on any error or wrong byte.
run() {
	local t0 t1
	vsh malloc "$1" "$size" >/dev/null || return 1
	t0=${EPOCHREALTIME/./}
	vsh -t 300 fill "$1" "$seed" >/dev/null || return 1
	vsh -t 300 check "$1" >/dev/null || return 1
	t1=${EPOCHREALTIME/./}
	vsh free "$1" >/dev/null || return 1
	echo $(((t1 - t0) / 1000))
}

e2e_phase "baseline: $size written and read back on node1"
if base=$(run A) && [ -n "$base" ]; then
	e2e_ok "baseline: $size written and read back in $base ms"
else
	e2e_abort "baseline run failed"
fi
expect "node1 lends nothing after it" cd_lent_zero 1

e2e_phase "deaf: $deaf deaf readers on node1, the same run again"
expect "virgo_hostile -R $deaf against node1" \
	node_spawn 0 deaf /virgo/virgo_hostile -a "$(node_ip 1)" -p "$E2E_PORT" \
	-s "$seed" -n 0 -H 0 -R "$deaf" -r /tmp/deaf.ready -W /tmp/deaf.go
expect "... $deaf deaf sessions set up" \
	node_run -t 200 0 "i=0; while [ ! -e /tmp/deaf.ready ] && [ ! -e /tmp/job.deaf.rc ] && [ \$i -lt 1800 ]; do sleep 0.1; i=\$((i+1)); done; [ -e /tmp/deaf.ready ]"
sessions=$(cd_stat 1 sessions)
if [ "${sessions:-0}" -gt "$deaf" ]; then
	e2e_ok "node1 holds $sessions sessions"
else
	e2e_fail "node1 holds '$sessions' sessions, want more than $deaf"
fi
if with=$(run B) && [ -n "$with" ]; then
	e2e_ok "with $deaf deaf readers: $size written and read back in $with ms"
	if [ "$with" -le $((2 * base + 2000)) ]; then
		e2e_ok "within 2x of the baseline ($with ms vs $base ms)"
	else
		e2e_fail "$with ms with deaf readers, $base ms without: more than 2x"
	fi
else
	e2e_fail "the run with $deaf deaf readers failed"
fi
sessions=$(cd_stat 1 sessions)
if [ "${sessions:-0}" -gt "$deaf" ]; then
	e2e_ok "node1 still holds the deaf sessions ($sessions)"
else
	e2e_fail "node1 holds '$sessions' sessions: deaf ones went early"
fi
echo "baseline_ms $base" >"$E2E_RESULTS/deaf.times"
echo "deaf_ms ${with:-}" >>"$E2E_RESULTS/deaf.times"

e2e_phase "cleanup: the deaf let go, node1 lends nothing"
node_run 0 "touch /tmp/deaf.go"
expect "... virgo_hostile done (its clean session at the end works)" \
	node_wait -t 150 0 deaf
vsh_stop
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
expect "node1 has no session, lends nothing" cd_idle 1 20
cd_stats 1 >"$E2E_RESULTS/node1.stats"
expect "node1: rmmod virgo_clouddrec" node_run 1 "rmmod virgo_clouddrec"

phases_report
e2e_end
