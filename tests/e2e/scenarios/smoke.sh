#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# smoke: the cluster boots, the nodes reach each other, both modules load,
# the /dev/virgo test program passes on the client against the cloud nodes,
# every server lends nothing once it is done, both modules unload cleanly,
# no node log shows a kernel problem.
#
#   node0      client: insmod virgo.ko peers=<node1..N-1>
#   node1..    cloud:  insmod virgo_clouddrec.ko port=<port>
#
# Environment: VIRGO_E2E_NODES (default 4), VIRGO_E2E_PORT (default 4646),
# VIRGO_E2E_SERVER_PARAMS / VIRGO_E2E_CLIENT_PARAMS to override the module
# parameters.  (Module parameters a module does not know yet are ignored by
# the kernel with a notice, so the defaults work with skeleton modules too.)
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

nodes=${VIRGO_E2E_NODES:-4}
port=${VIRGO_E2E_PORT:-4646}

e2e_begin smoke
[ "$nodes" -ge 2 ] || e2e_abort "smoke needs at least 2 nodes"
gcc -static -O2 -Wall -Wextra -Werror -I"$E2E_REPO/include/uapi" \
	-o "$E2E_RESULTS/virgo_dev_test" "$E2E_REPO/tests/user/virgo_dev_test.c" ||
	e2e_abort "cannot build tests/user/virgo_dev_test.c"
cluster_add_file "$E2E_RESULTS/virgo_dev_test" /virgo/virgo_dev_test
cluster_up "$nodes" || e2e_abort "cluster did not come up"

peers=
for ((i = 1; i < nodes; i++)); do
	peers+="${peers:+,}$(node_ip "$i"):$port"
done
server_params=${VIRGO_E2E_SERVER_PARAMS-port=$port}
client_params=${VIRGO_E2E_CLIENT_PARAMS-peers=$peers}

# Slab: in kB from the node's /proc/meminfo.
slab_kb() { node_run "$1" "awk '/^Slab:/ { print \$2 }' /proc/meminfo"; }

e2e_step "network (10.99.0.0/24 on the bridge)"
for ((i = 1; i < nodes; i++)); do
	expect "node0 -> node$i ($(node_ip "$i")) ping" node_ping 0 "$(node_ip "$i")"
done
expect "node1 -> node0 ping" node_ping 1 "$(node_ip 0)"

declare -a before after
for ((i = 0; i < nodes; i++)); do
	before[i]=$(slab_kb "$i")
done

e2e_step "load"
for ((i = 1; i < nodes; i++)); do
	expect "node$i: insmod virgo_clouddrec.ko $server_params" \
		node_run "$i" "insmod /virgo/virgo_clouddrec.ko $server_params"
done
expect "node0: insmod virgo.ko $client_params" \
	node_run 0 "insmod /virgo/virgo.ko $client_params"
for ((i = 1; i < nodes; i++)); do
	expect "node$i: virgo_clouddrec in /proc/modules" \
		node_run "$i" "grep '^virgo_clouddrec ' /proc/modules"
done
expect "node0: virgo in /proc/modules" node_run 0 "grep '^virgo ' /proc/modules"

e2e_step "/dev/virgo on the client, memory on the cloud nodes"
expect "node0: virgo_dev_test" node_run -t 300 0 /virgo/virgo_dev_test
for ((i = 1; i < nodes; i++)); do
	node_run "$i" "mount -t debugfs none /sys/kernel/debug 2>/dev/null; true" \
		>/dev/null
	expect "node$i: served requests" node_run "$i" \
		"awk '\$1 == \"requests\" && \$2 > 0 { ok = 1 } END { exit !ok }' /sys/kernel/debug/virgo_clouddrec/stats"
	expect "node$i: lends nothing now" node_run "$i" \
		"grep -qx 'lent_bytes 0' /sys/kernel/debug/virgo_clouddrec/stats"
done

e2e_step "unload"
expect "node0: rmmod virgo" node_run 0 "rmmod virgo"
for ((i = 1; i < nodes; i++)); do
	expect "node$i: rmmod virgo_clouddrec" node_run "$i" "rmmod virgo_clouddrec"
done
for ((i = 0; i < nodes; i++)); do
	expect "node$i: no virgo module left" \
		node_run "$i" "! grep -E '^virgo(_clouddrec)? ' /proc/modules"
done

e2e_step "slab (kB, /proc/meminfo) before load / after unload"
{
	printf '%-6s %8s %8s %8s\n' node before after delta
	for ((i = 0; i < nodes; i++)); do
		after[i]=$(slab_kb "$i")
		printf '%-6s %8s %8s %8s\n' "node$i" "${before[i]:-?}" "${after[i]:-?}" \
			$(( ${after[i]:-0} - ${before[i]:-0} ))
	done
} | tee "$E2E_RESULTS/slab.txt"

e2e_end
