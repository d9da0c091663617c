#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# data: one 4-node cluster (node0 client, node1..3 cloud nodes) and
# everything about the bytes themselves.
#
#   smoke       the nodes reach each other, both modules load, the
#               /dev/virgo test program (tests/user) passes
#   integrity   virgo_e2e integrity: 150 random writes and reads at random
#               offsets and lengths (1 byte .. 1 MiB + 2 chunks, a third
#               of them across chunk boundaries, ioctl and pread/pwrite) over
#               four allocations (6 MiB, one chunk, a few chunks and odd,
#               one byte), compared with a shadow copy after every write,
#               all read back at the end; unwritten memory reads as
#               zeroes.  The seed is printed (VIRGO_E2E_SEED replays it).
#   threads     virgo_e2e threads: 4 threads (two sharing a descriptor,
#               two with their own) x 15 iterations of malloc (up to 640
#               KiB), write, read back, rewrite part, read back, free, plus
#               a long-lived allocation per thread; every byte compared
#   ipv6        the IPv4 client's sessions on the servers (default listen
#               address ::, dual-stack) show its IPv4 address; the client
#               reloaded with IPv6 peers only ([fd00:...]:port;
#               node1 and node2 listen on the default ::, dual-stack,
#               node3 reloaded with listen_addr=<its IPv6 address>): the
#               peers file lists them so, every server's sessions come
#               from node0's IPv6 address, virgo_e2e integrity (60 ops
#               over 4 MiB, shadow compare) passes; servers back to 0;
#               node3 and the client back to the defaults
#   large       one 256 MiB allocation: every cloud node lends part of it
#               while it lives (each node's lent_bytes equals what the
#               client's table puts there, and they add up to 256 MiB);
#               64 bytes written across every chunk boundary (so every
#               chunk is written to and every node allocates all it
#               lends), all read back, 256 never-written places read
#               zeroes; freed: every node back to 0
#   unload      rmmod of both modules; no virgo module left; Slab and
#               MemFree of every node back near their values before the
#               first insmod (the 256 MiB of chunks included)
# After each step every server lends nothing (lent_bytes, lent_chunks 0).
#
# Environment: VIRGO_E2E_SEED (random by default), VIRGO_E2E_PORT (4646),
# VIRGO_E2E_LARGE (256M), VIRGO_E2E_MEM (640M here: 512M leaves little room
# next to 86 MiB of lent chunks and the page cache of the initramfs).
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

seed=${VIRGO_E2E_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
large=${VIRGO_E2E_LARGE:-256M}
export VIRGO_E2E_MEM=${VIRGO_E2E_MEM:-640M}
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-30}

e2e_begin data
e2e_build_progs || e2e_abort "cannot build tests/e2e/progs"
cluster_up_timed 4 || e2e_abort "cluster did not come up"
e2e_log "seed $seed (VIRGO_E2E_SEED=$seed replays this run)"

e2e_phase "smoke: network, load, /dev/virgo test program"
for i in 1 2 3; do
	# Three tries: the first echo may go while the new link settles.
	expect "node0 -> node$i ping" node_ping 0 "$(node_ip "$i")" 3
done
slab_all "0 1 2 3" >"$E2E_RESULTS/slab.before"
servers_load max_memory_mb=192
client_load
expect "node0: virgo_dev_test" node_run -t 300 0 /virgo/virgo_dev_test
# rmmod frees whatever is left (an allocation owned by a user outlives
# its descriptor) and closes the connections.
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
expect_all "served requests" "1 2 3" \
	"awk '\$1 == \"requests\" && \$2 > 0 { ok = 1 } END { exit !ok }' $E2E_STATS"
servers_idle
client_load

e2e_phase "integrity: random offsets and lengths"
expect "virgo_e2e integrity -s $seed -S 6M -n 150" \
	node_run -t 300 0 /virgo/virgo_e2e integrity -s "$seed" -S 6M -n 150
servers_lent_zero

e2e_phase "threads: concurrent user-space load"
expect "virgo_e2e threads -s $seed -t 4 -n 15 -m 640K" \
	node_run -t 300 0 /virgo/virgo_e2e threads -s "$seed" -t 4 -n 15 -m 640K
servers_lent_zero

e2e_phase "ipv6: the client over IPv6 only"
# The servers listen on the default :: (dual-stack); the IPv4 client's
# sessions show its IPv4 address, not ::ffff:a.b.c.d.
expect_all "the IPv4 client's sessions show as $(node_ip 0)" "$(servers)" \
	"f=/sys/kernel/debug/virgo_clouddrec/sessions; cat \$f; grep -q '^$(node_ip 0):' \$f && ! grep -q '^\[' \$f"
for i in 1 2 3; do
	expect "node0 -> node$i over IPv6" node_ping 0 "$(node_ip6 "$i")" 3
done
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
servers_idle
expect "node3: virgo_clouddrec on listen_addr=$(node_ip6 3) only" \
	node_run 3 "rmmod virgo_clouddrec && insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT max_memory_mb=192 listen_addr=$(node_ip6 3)"
expect "node0: insmod virgo.ko peers=$(all_peers6)" \
	node_run 0 "insmod /virgo/virgo.ko peers=$(all_peers6)"
expect "the client lists its 3 peers by their IPv6 addresses" \
	node_run 0 "cat /sys/kernel/virgo/peers; awk -v p='$(all_peers6)' 'BEGIN { n = split(p, a, \",\"); for (i = 1; i <= n; i++) want[a[i]] = 1 } NR > 1 && (\$2 in want) { ok++ } NR > 1 { all++ } END { exit !(ok == 3 && all == 3) }' /sys/kernel/virgo/peers"
expect "virgo_e2e integrity -s $seed -S 4M -n 60 over IPv6" \
	node_run -t 300 0 /virgo/virgo_e2e integrity -s "$seed" -S 4M -n 60
# The sessions were there during the run; they stay while virgo.ko is loaded.
expect_all "its sessions come from node0's IPv6 address, none over IPv4" \
	"$(servers)" "f=/sys/kernel/debug/virgo_clouddrec/sessions; cat \$f; grep -q '^\[$(node_ip6 0)\]:' \$f && ! grep -q '^$(node_ip 0):' \$f"
servers_lent_zero
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
servers_idle
expect "node3: virgo_clouddrec back on the default address" \
	node_run 3 "rmmod virgo_clouddrec && insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT max_memory_mb=192"
client_load

e2e_phase "large: one $large allocation over the cloud nodes"
expect "start the virgo_e2e shell" vsh_start
large_bytes=$(numfmt --from=iec "$large")
expect "malloc $large" vsh malloc L "$large"
# Writing all of it costs ~30 s under TCG; a write across every chunk
# boundary reaches every chunk, so each node allocates all it lends.
expect "write across every chunk boundary (every chunk written to)" \
	vsh -t 300 touch L "$seed"
where=$(vsh where L)
printf '%s\n' "$where"
sum=0
for i in 1 2 3; do
	want=$(awk -v p="$(peer_of "$i")" '$2 == p { print $6 }' <<<"$where")
	lent=$(cd_stat "$i" lent_bytes)
	if [ -n "$want" ] && [ "$want" -gt 0 ] && [ "$lent" = "$want" ]; then
		e2e_ok "node$i lends its part while allocated: $lent bytes, as the client's table says"
	else
		e2e_fail "node$i lends '$lent' bytes, the client's table says '${want:-0}'"
	fi
	sum=$((sum + ${lent:-0}))
done
if [ "$sum" -eq "$large_bytes" ]; then
	e2e_ok "the nodes lend $sum bytes in all = $large"
else
	e2e_fail "the nodes lend $sum bytes in all, not $large_bytes"
fi
expect "read back every chunk boundary; 256 unwritten places read zeroes" \
	vsh -t 300 check L 256
expect "free it" vsh free L
expect "stop the virgo_e2e shell" vsh_stop
servers_lent_zero

e2e_phase "unload"
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
servers_idle
servers_unload
expect_all "no virgo module left" "0 1 2 3" \
	"! grep -E '^virgo(_clouddrec)? ' /proc/modules"
slab_all "0 1 2 3" >"$E2E_RESULTS/slab.after"
slab_check "$E2E_RESULTS/slab.after" "after everything"

phases_report
e2e_end
