#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tools: libvirgo and virgoctl on Debian's stock kernel (no virgo system
# calls, so libvirgo uses /dev/virgo with VIRGO_MALLOC_F_USER).
#
#   node0      client: insmod virgo.ko peers=<node1..N-1>
#   node1..    cloud:  insmod virgo_clouddrec.ko port=<port>
#
# Before the client is loaded virgoctl fails with exit 1 and says why; a
# cloud node's virgoctl status shows its server; on the client,
# tests/user/virgo_sys_test (VIRGO_BACKEND=device: round trips, bad input,
# another uid refused both ways, everything freed) and
# tests/user/virgoctl_test.sh pass; without debugfs virgoctl table says
# how to mount it; an allocation left behind by virgoctl outlives the
# process and is released on the cloud nodes when virgo.ko is unloaded.
# The nodes load the modules DKMS built (e2e_build_dkms: the virgo-dkms
# source tree in scratch dkms trees, as tests/pkg/install_test.sh step 5).
# examples/virgo_example.ko, a third-party-style module built out of tree
# against the installed <linux/virgo.h> and the Module.symvers of that
# DKMS build, loads (its init
# writes and reads back 3 MiB and checks the API contract); the
# allocation it keeps is its own (virgoctl read: EPERM) and is freed when
# it unloads without freeing it.  virgoctl status --peer against node1's
# kernel server (tests/remote/virgoctl_peer_test.sh on node1, and from node0
# while it holds memory there: capacity, lent_bytes, lent_chunks equal
# node1's debugfs stats), then with psk=: key verified, no key and a wrong
# key refused (err_auth counts it).
#
# Environment: VIRGO_E2E_NODES (default 3), VIRGO_E2E_PORT (default 4646).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

nodes=${VIRGO_E2E_NODES:-3}
port=${VIRGO_E2E_PORT:-4646}

e2e_begin tools
[ "$nodes" -ge 2 ] || e2e_abort "tools needs at least 2 nodes"

# Static, built here (not in the tree: nothing shared with other builds).
cflags=(-static -O2 -Wall -Wextra -Werror -I"$E2E_REPO/include/uapi"
	-I"$E2E_REPO/tools/libvirgo")
gcc "${cflags[@]}" -o "$E2E_RESULTS/virgo_sys_test" \
	"$E2E_REPO/tests/user/virgo_sys_test.c" \
	"$E2E_REPO/tools/libvirgo/libvirgo.c" -lpthread ||
	e2e_abort "cannot build tests/user/virgo_sys_test.c"
e2e_build_virgoctl "$E2E_RESULTS/virgoctl" ||
	e2e_abort "cannot build tools/virgoctl"
cluster_add_file "$E2E_RESULTS/virgo_sys_test" /virgo/virgo_sys_test
cluster_add_file "$E2E_RESULTS/virgoctl" /virgo/bin/virgoctl
cluster_add_file "$E2E_REPO/tests/user/virgoctl_test.sh" /virgo/virgoctl_test.sh
cluster_add_file "$E2E_REPO/tests/remote/virgoctl_peer_test.sh" \
	/virgo/virgoctl_peer_test.sh
# The modules as DKMS builds them from the virgo-dkms source tree (not the
# tree's make modules), and the example module built as a user would: out
# of tree, against the installed <linux/virgo.h> and the Module.symvers of
# that DKMS build.
dkms_dir=$E2E_RESULTS/dkms
t0=$SECONDS
e2e_build_dkms "$dkms_dir" || e2e_abort "DKMS build of the modules failed"
dkms_dir=${VIRGO_E2E_DKMS_DIR:-$dkms_dir}
e2e_ok "modules built by DKMS for $(e2e_kver), example against the installed header ($((SECONDS - t0)) s)"
expect "the DKMS modules are signed as Debian's dkms signs them" \
	test "$(modinfo -F signer "$dkms_dir/virgo.ko")" = "DKMS module signing key"
expect "the example depends on virgo (modpost used the DKMS Module.symvers)" \
	test "$(modinfo -F depends "$dkms_dir/virgo_example.ko")" = virgo
cluster_add_file "$dkms_dir/virgo_example.ko" /virgo/virgo_example.ko
cluster_up "$nodes" || e2e_abort "cluster did not come up"
for m in virgo virgo_clouddrec; do
	sum=$(md5sum <"$dkms_dir/$m.ko" | cut -d' ' -f1)
	expect "node0's /virgo/$m.ko is the DKMS build" \
		node_run 0 "test \"\$(md5sum </virgo/$m.ko | cut -d' ' -f1)\" = $sum"
done

peers=
for ((i = 1; i < nodes; i++)); do
	peers+="${peers:+,}$(node_ip "$i"):$port"
done

# vc_out IDX CMD: run CMD on node IDX, stdout and stderr together, status kept
vc_out() {
	local idx=$1
	shift
	node_run "$idx" "$* 2>&1"
}

# vc_fails IDX DESC PATTERN ARGS: virgoctl ARGS exits 1 saying PATTERN
vc_fails() {
	local idx=$1 desc=$2 pattern=$3 o rc
	shift 3
	o=$(vc_out "$idx" "virgoctl $*")
	rc=$?
	if [ "$rc" -eq 1 ] && grep -q -e "$pattern" <<<"$o"; then
		e2e_ok "$desc"
	else
		e2e_fail "$desc (exit $rc, want 1 and '$pattern')"
		printf '%s\n' "$o" | tail -n 20 | sed 's/^/        | /'
	fi
}

e2e_step "before any module: virgoctl says what is missing"
vc_fails 0 "node0: alloc fails, virgo.ko not loaded" "virgo.ko is not loaded" \
	alloc 1M
vc_fails 0 "node0: status fails, nothing loaded" "neither virgo.ko" status
vc_fails 0 "node0: peers list fails, virgo.ko not loaded" \
	"virgo.ko is not loaded" peers list
expect "node0: libvirgo finds no backend" \
	node_run 0 "test \"\$(/virgo/virgo_sys_test --backend)\" = none"

e2e_step "load"
for ((i = 1; i < nodes; i++)); do
	expect "node$i: insmod virgo_clouddrec.ko port=$port" \
		node_run "$i" "insmod /virgo/virgo_clouddrec.ko port=$port"
done
expect "node0: insmod virgo.ko peers=$peers" \
	node_run 0 "insmod /virgo/virgo.ko peers=$peers"

e2e_step "a cloud node: virgoctl status shows the server"
expect "node1: virgoctl status" \
	node_run 1 "virgoctl status | grep -q '^server  *virgo_clouddrec, capacity'"
expect "node1: virgoctl --json status" \
	node_run 1 "virgoctl --json status | grep -q '\"client\":{\"loaded\":false},\"server\":{\"loaded\":true,\"stats\":{\"capacity\":'"

e2e_step "client: libvirgo over /dev/virgo (stock kernel: no syscalls)"
# The initramfs root is 0700 (a mktemp -d stage): uid 1000, which
# virgo_sys_test becomes for the other-user checks, could not reach /dev.
node_run 0 "chmod 0755 /" >/dev/null
expect "node0: libvirgo chooses the device" \
	node_run 0 "test \"\$(/virgo/virgo_sys_test --backend)\" = device"
expect "node0: VIRGO_BACKEND=device virgo_sys_test" \
	node_run -t 600 0 "VIRGO_BACKEND=device /virgo/virgo_sys_test"
expect "node0: virgoctl_test.sh" \
	node_run -t 600 0 "sh /virgo/virgoctl_test.sh"
expect "node0: virgoctl status" node_run 0 "virgoctl status"
for ((i = 1; i < nodes; i++)); do
	expect "node0: virgoctl peers list shows node$i up" \
		node_run 0 "virgoctl peers list | grep -q ' $(node_ip "$i"):$port  *up '"
done

e2e_step "without debugfs"
node_run 0 "umount /sys/kernel/debug" >/dev/null
vc_fails 0 "node0: table says debugfs is not mounted" \
	"debugfs is not mounted: mount -t debugfs" table
expect "node0: peers list falls back to sysfs" \
	node_run 0 "virgoctl --json peers list | grep -q '^{\"source\":\"sysfs\"'"
node_run 0 "mount -t debugfs debugfs /sys/kernel/debug" >/dev/null

e2e_step "a module built against <linux/virgo.h>: examples/virgo_example.ko"
expect "node0: insmod virgo_example.ko (3 MiB round trip, contract checks)" \
	node_run -t 120 0 "insmod /virgo/virgo_example.ko && rmmod virgo_example"
expect "node0: insmod virgo_example.ko keep=1" \
	node_run -t 120 0 "insmod /virgo/virgo_example.ko keep=1"
ex=$(node_run 0 "cat /sys/module/virgo_example/parameters/addr")
vc_fails 0 "node0: the module's allocation is not user space's ($ex)" \
	"Operation not permitted" read "$(printf '0x%x' "${ex:-0}")" 16
expect "node0: rmmod virgo_example without freeing" \
	node_run 0 "rmmod virgo_example"
expect "node0: virgo freed what the module left" \
	node_run 0 "dmesg | grep -q 'module virgo_example unloaded holding 1 allocations: freed'"
expect "node0: the table is empty again" \
	node_run 0 "head -n 1 /sys/kernel/debug/virgo/table | grep -q '^allocations 0 '"

e2e_step "an allocation outlives virgoctl, and virgo.ko's unload frees it"
a=$(node_run 0 "virgoctl alloc 3M")
expect "node0: virgoctl alloc 3M ($a)" test -n "$a"
expect "node0: write it from another process" \
	node_run 0 "head -c 3145728 /dev/urandom >/tmp/r && virgoctl write $a -i /tmp/r"
expect "node0: read it from a third one" \
	node_run 0 "virgoctl read $a 3M -o /tmp/r2 && cmp /tmp/r /tmp/r2"
lent=0
for ((i = 1; i < nodes; i++)); do
	b=$(node_run "$i" "awk '\$1 == \"lent_bytes\" { print \$2 }' /sys/kernel/debug/virgo_clouddrec/stats")
	lent=$((lent + ${b:-0}))
done
expect "cloud nodes lend the 3 MiB ($lent bytes)" test "$lent" -ge 3145728

e2e_step "virgoctl status --peer: the kernel server's counters over the wire"
cdstats=/sys/kernel/debug/virgo_clouddrec/stats
# On node1 itself, against its own address: the counters equal debugfs.
expect "node1: virgoctl_peer_test.sh against itself (no key)" \
	node_run -t 120 1 "sh /virgo/virgoctl_peer_test.sh $(node_ip 1):$port $cdstats"
# From the client, while it holds the 3 MiB there.
wire=$(node_run 0 "virgoctl --json status --peer $(node_ip 1):$port")
expect "node0: status --peer node1 ($wire)" grep -q '"protocol":1' <<<"$wire"
for f in capacity lent_bytes lent_chunks; do
	w=$(sed -n "s/.*\"$f\":\([0-9]*\).*/\1/p" <<<"$wire")
	d=$(node_run 1 "awk '\$1 == \"$f\" { print \$2 }' $cdstats")
	expect "node0 sees node1's $f over the wire ($w = debugfs $d)" \
		test -n "$w" -a "$w" = "$d"
done
expect "... and node1 lends part of the 3 MiB" test "${w:-0}" -gt 0

expect "node0: rmmod virgo with the allocation live" \
	node_run 0 "rmmod virgo"
for ((i = 1; i < nodes; i++)); do
	expect "node$i: lends nothing now" node_run "$i" \
		"for n in 1 2 3 4 5 6 7 8 9 10; do grep -qx 'lent_bytes 0' /sys/kernel/debug/virgo_clouddrec/stats && exit 0; sleep 1; done; exit 1"
done

e2e_step "virgoctl status --peer against a kernel server with a key"
# The key as the module takes it (psk=) and as virgoctl reads it (a file,
# mode 0600, one trailing newline dropped).
psk=e2e-tools-key-$RANDOM
expect "node1: reload virgo_clouddrec with psk=" \
	node_run 1 "rmmod virgo_clouddrec && insmod /virgo/virgo_clouddrec.ko port=$port psk=$psk"
for i in 0 1; do
	node_run "$i" "umask 077; echo $psk >/tmp/psk" >/dev/null
done
expect "node1: virgoctl_peer_test.sh against itself (key)" \
	node_run -t 120 1 "sh /virgo/virgoctl_peer_test.sh $(node_ip 1):$port $cdstats /tmp/psk"
expect "node0: status --peer node1 --psk-file: key verified" \
	node_run 0 "virgoctl status --peer $(node_ip 1):$port --psk-file /tmp/psk | grep -q ', key verified,'"
vc_fails 0 "node0: status --peer node1 without the key" "asks for the key" \
	status --peer "$(node_ip 1):$port"
err0=$(node_run 1 "awk '\$1 == \"err_auth\" { print \$2 }' $cdstats")
node_run 0 "umask 077; echo wrong-$psk >/tmp/bad" >/dev/null
vc_fails 0 "node0: status --peer node1 with a wrong key" "refused the key" \
	status --peer "$(node_ip 1):$port" --psk-file /tmp/bad
err1=$(node_run 1 "awk '\$1 == \"err_auth\" { print \$2 }' $cdstats")
expect "node1 counted the wrong key (err_auth $err0 -> $err1)" \
	test "${err1:-0}" -gt "${err0:-0}"

e2e_step "unload"
for ((i = 1; i < nodes; i++)); do
	expect "node$i: rmmod virgo_clouddrec" node_run "$i" "rmmod virgo_clouddrec"
done

e2e_end
