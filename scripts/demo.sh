#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: a 4-node virgo cluster at work (qemu/TCG in a private network
# namespace, Debian's own kernel; needs root).
#
#   node0        client: virgo.ko, and virgoctl (tools/virgoctl, static)
#   node1..3     cloud nodes: virgo_clouddrec.ko
#
# On node0 it allocates 64 MiB, shows where the chunks went (the VIRGO
# address translation table, condensed per node), writes 64 MiB of random
# bytes and reads them back (both timed, compared with cmp), shows what
# every cloud node lends before, during and after, frees, and ends with a
# summary.  Exit status 0 only if every step worked and the bytes came
# back identical.
#
# Environment: VIRGO_DEMO_SIZE (64M), VIRGO_E2E_PORT (4646), and what
# tests/e2e/lib.sh reads (VIRGO_E2E_MEM, ...).  Logs: build/e2e/demo-*/.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/e2e/lib.sh
. "$repo/tests/e2e/lib.sh"
# shellcheck source=../tests/e2e/helpers.sh
. "$repo/tests/e2e/helpers.sh"

size=${VIRGO_DEMO_SIZE:-64M}
nodes=4
t_start=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespace, taps): sudo make demo" >&2
	exit 1
fi

VIRGO_E2E_RESULTS_DIR=${VIRGO_E2E_RESULTS_DIR:-$repo/build/e2e/demo-$(date +%Y%m%d-%H%M%S)}
export VIRGO_E2E_RESULTS_DIR
e2e_begin demo >/dev/null
say() { printf '%s\n' "$*"; }
die() { e2e_err "$*"; e2e_abort "$*"; }

# Build: modules for the kernel the nodes boot, virgoctl fully static.
e2e_build_modules "$E2E_RESULTS/build.log" || die "module build failed"
e2e_build_virgoctl "$E2E_RESULTS/virgoctl" ||
	die "cannot build tools/virgoctl (see $E2E_RESULTS/virgoctl.log)"
cluster_add_file "$E2E_RESULTS/virgoctl" /virgo/bin/virgoctl

t0=$SECONDS
cluster_up "$nodes" >"$E2E_RESULTS/boot.log" 2>&1 ||
	{ cat "$E2E_RESULTS/boot.log"; die "the cluster did not come up"; }
boot_s=$((SECONDS - t0))

# The demo shows results, not checks: those go to steps.log.
run() { node_run "$@" || die "node$1: '${*:2}' failed"; }
expect_all "insmod virgo_clouddrec.ko" "1 2 3" \
	"insmod /virgo/virgo_clouddrec.ko port=$E2E_PORT" \
	>>"$E2E_RESULTS/steps.log" || die "insmod virgo_clouddrec.ko failed"
run 0 "insmod /virgo/virgo.ko peers=$(all_peers)"

# lent IDX: "BYTES CHUNKS" lent by cloud node IDX.
lent() {
	node_run "$1" "awk '\$1 == \"lent_bytes\" { b = \$2 } \$1 == \"lent_chunks\" { c = \$2 } END { print b, c }' $E2E_STATS"
}
# mib BYTES: "12.3 MiB"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
lent_table() {
	local i b c
	for i in 1 2 3; do
		read -r b c < <(lent "$i")
		printf '  node%d  %-15s lends %9s  in %4s chunks\n' "$i" \
			"$(peer_of "$i")" "$(mib "$b")" "$c"
	done
}

say
say "virgo demo: $nodes qemu nodes up in ${boot_s}s (Debian kernel $(e2e_kver), TCG)"
say "  node0  $(node_ip 0)  client: virgo.ko + virgoctl"
for i in 1 2 3; do
	say "  node$i  $(node_ip "$i")  cloud node: virgo_clouddrec.ko, $(node_run "$i" "awk '\$1 == \"capacity\" { printf \"%.0f MiB\", \$2 / 1048576 }' $E2E_STATS") to lend"
done

say
say "== before: what each cloud node lends"
lent_table

say
say "== node0\$ virgoctl alloc $size"
addr=$(node_run 0 "virgoctl alloc $size") || die "virgoctl alloc $size failed"
say "$addr"
bytes=$(numfmt --from=iec "$size")

say
say "== node0\$ virgoctl table   (and the chunks, condensed per node)"
node_run 0 "virgoctl table" | sed 's/^/  /'
per_node=$(node_run 0 "awk '/^0x/ { on = (\$1 == \"$addr\") } on && \$1 == \"chunk\" { n[\$9]++; b[\$9] += \$6;
	if (!(\$9 in first)) first[\$9] = \$2; last[\$9] = \$2 }
	END { for (p in n) printf \"%s %d %d %s %s\\n\", p, n[p], b[p], first[p], last[p] }' /sys/kernel/debug/virgo/table | sort")
chunks_total=0
while read -r peer n b first last; do
	printf '  %-15s %4d chunks, %9s   (chunk %s .. %s, interleaved)\n' \
		"$peer" "$n" "$(mib "$b")" "$first" "$last"
	chunks_total=$((chunks_total + n))
done <<<"$per_node"
say "  first chunks:"
node_run 0 "awk '/^0x/ { on = (\$1 == \"$addr\") } on && \$1 == \"chunk\" && n++ < 4 { printf \"    chunk %s  offset %9s  len %s  on %s  (handle %s)\\n\", \$2, \$4, \$6, \$9, \$13 }' /sys/kernel/debug/virgo/table"

say
say "== write $(mib "$bytes") of random bytes into it, read them back"
run 0 "dd if=/dev/urandom of=/tmp/pattern bs=1M count=$((bytes >> 20)) 2>/dev/null; md5sum /tmp/pattern >/tmp/pattern.md5"
# Centiseconds of /proc/uptime around each transfer, on the client.
w_cs=$(node_run -t 300 0 "read a _ </proc/uptime; virgoctl write $addr -i /tmp/pattern || exit 1; read b _ </proc/uptime; echo \$a \$b" |
	awk '{ printf "%d", ($2 - $1) * 100 }') || die "virgoctl write failed"
r_cs=$(node_run -t 300 0 "read a _ </proc/uptime; virgoctl read $addr $size -o /tmp/back || exit 1; read b _ </proc/uptime; echo \$a \$b" |
	awk '{ printf "%d", ($2 - $1) * 100 }') || die "virgoctl read failed"
rate() { awk -v b="$bytes" -v cs="$1" 'BEGIN { printf "%.1f MiB/s", (cs > 0 ? b / 1048576 / (cs / 100) : 0) }'; }
say "  node0\$ virgoctl write $addr -i /tmp/pattern    $(awk -v c="$w_cs" 'BEGIN { printf "%.2f s", c / 100 }'), $(rate "$w_cs")"
say "  node0\$ virgoctl read $addr $size -o /tmp/back   $(awk -v c="$r_cs" 'BEGIN { printf "%.2f s", c / 100 }'), $(rate "$r_cs")"
if node_run 0 "cmp /tmp/pattern /tmp/back" >/dev/null; then
	verified="OK ($bytes bytes identical, md5 $(node_run 0 "cut -c1-12 /tmp/pattern.md5")...)"
	say "  node0\$ cmp /tmp/pattern /tmp/back          identical"
else
	verified="FAILED (the bytes read back differ)"
	e2e_fail "the bytes read back differ"
fi

say
say "== while allocated: what each cloud node lends"
during=$(lent_table)
printf '%s\n' "$during"

say
say "== node0\$ virgoctl free $addr"
run 0 "virgoctl free $addr"
wait_for 10 node_run 1 "grep -qx 'lent_bytes 0' $E2E_STATS" >/dev/null
say "== after the free: what each cloud node lends"
after=$(lent_table)
printf '%s\n' "$after"
after_total=$(awk '{ gsub(/[^0-9.]/, "", $4); s += $4 } END { print s + 0 }' <<<"$after")

say
say "== summary"
say "  nodes        1 client + 3 cloud nodes (qemu TCG, 2 vCPU each, on a 2-core host)"
say "  allocation   $(mib "$bytes") ($bytes bytes) at $addr, $chunks_total chunks"
while read -r peer n b _; do
	say "               $n chunks ($(mib "$b")) on $peer"
done <<<"$per_node"
say "  write        $(rate "$w_cs")"
say "  read         $(rate "$r_cs")"
say "  verified     $verified"
if [ "$after_total" = 0 ]; then
	say "  after free   every cloud node lends 0 bytes"
else
	say "  after free   STILL LENT: $after_total MiB"
	e2e_fail "cloud nodes still lend memory after the free"
fi
say "  took         $((SECONDS - t_start)) s (cluster boot ${boot_s} s)"
say

case "$verified" in
OK*) e2e_ok "demo: verified" ;;
esac
e2e_end
