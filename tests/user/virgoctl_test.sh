#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virgoctl end to end, as root, on a kernel with virgo.ko loaded and at
# least one reachable peer: alloc/write/read/free with the bytes compared,
# table and status (human and --json) showing the allocation, peers
# list/add/del, alloc --replicas (the table shows the copies; more
# replicas than peers: ENOSPC), exit status 2 for usage errors and 1 for failed
# operations, --help everywhere.  busybox sh compatible.  Prints
# "PASS name" / "FAIL name: ..." and "virgoctl_test: N passed, N failed";
# exits 1 on any failure.
#
# Environment: VIRGOCTL (default: virgoctl from PATH).

VIRGOCTL=${VIRGOCTL:-virgoctl}
pass=0
fail=0

ok() {
	pass=$((pass + 1))
	echo "PASS $1"
}

ko() {
	fail=$((fail + 1))
	echo "FAIL $1${2:+: $2}"
}

# A writable scratch directory: the UML root is read-only, /dev is not.
tmp=
for d in "${TMPDIR:-}" /tmp /run /dev/shm /dev; do
	if [ -z "$d" ] || [ ! -d "$d" ] || [ ! -w "$d" ]; then
		continue
	fi
	tmp=$(mktemp -d "$d/virgoctl_test.XXXXXX" 2>/dev/null) && break
	tmp=
done
if [ -z "$tmp" ] && mkdir -p /dev/shm 2>/dev/null; then
	tmp=$(mktemp -d /dev/shm/virgoctl_test.XXXXXX)
fi
if [ -z "$tmp" ]; then
	echo "FAIL no writable directory for scratch files"
	echo "virgoctl_test: 0 passed, 1 failed"
	exit 1
fi
trap 'rm -rf "$tmp"' EXIT

# vc ARGS...: virgoctl, stdout to $tmp/out, stderr to $tmp/err; status in rc
vc() {
	"$VIRGOCTL" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect RC NAME ARGS...: virgoctl ARGS must exit with RC
expect() {
	want=$1
	name=$2
	shift 2
	vc "$@"
	if [ "$rc" -eq "$want" ]; then
		ok "$name"
	else
		ko "$name" "exit $rc, want $want: $(head -c 300 "$tmp/err")"
	fi
}

# has NAME FILE PATTERN: grep -q in FILE
has() {
	if grep -q -e "$3" "$2"; then
		ok "$1"
	else
		ko "$1" "no '$3' in: $(head -c 400 "$2")"
	fi
}

hasnt() {
	if grep -q -e "$3" "$2"; then
		ko "$1" "'$3' still in: $(head -c 400 "$2")"
	else
		ok "$1"
	fi
}

# hex N: N as 0x...
hex() {
	printf '0x%x' "$1"
}

if ! command -v "$VIRGOCTL" >/dev/null 2>&1; then
	echo "FAIL no $VIRGOCTL (set VIRGOCTL)"
	echo "virgoctl_test: 0 passed, 1 failed"
	exit 1
fi

# --- help and usage errors ----------------------------------------------
expect 0 "--help" --help
has "--help lists the commands" "$tmp/out" "peers add|del"
has "--help documents the exit status" "$tmp/out" "2 usage error"
for c in status table alloc free read write peers; do
	expect 0 "$c --help" "$c" --help
	has "$c --help is its usage" "$tmp/out" "^usage: .* $c"
done
expect 0 "help alloc" help alloc
expect 0 "--version" --version

expect 2 "no command"
expect 2 "unknown option" --bogus status
expect 2 "unknown command" frobnicate
expect 2 "alloc without SIZE" alloc
expect 2 "alloc 0" alloc 0
expect 2 "alloc 12Q" alloc 12Q
expect 2 "alloc -1" alloc -1
expect 2 "alloc too many arguments" alloc 1 2
expect 2 "free xyz" free xyz
expect 2 "read without LEN" read 0x100000000
expect 2 "read -o without FILE" read 0x100000000 1 -o
expect 2 "read unknown option" read 0x100000000 1 -x
expect 2 "write without ADDR" write
expect 2 "peers without command" peers
expect 2 "peers add bad address" peers add 1.2.3:80
expect 2 "peers add port 0" peers add 10.0.0.1:0
expect 2 "peers frob" peers frob
expect 2 "table extra argument" table foo
expect 2 "status extra argument" status foo
has "usage errors say what is wrong" "$tmp/err" "unexpected argument"

# --- alloc, write, read ---------------------------------------------------
# 4 chunks and a byte: 5 chunks, every boundary is crossed.
vc --json status
chunk=$(sed -n 's/.*"chunk_size":\([0-9]*\).*/\1/p' "$tmp/out")
if [ -n "$chunk" ] && [ "$chunk" -gt 0 ]; then
	ok "chunk size from status --json ($chunk)"
else
	ko "chunk size from status --json" "$(head -c 300 "$tmp/out")"
	chunk=262144
fi
size=$((4 * chunk + 1))
expect 0 "alloc $size" alloc "$size"
addr=$(cat "$tmp/out")
case "$addr" in
0x[0-9a-f]*) ok "alloc prints an address ($addr)" ;;
*)
	ko "alloc prints an address" "got '$addr'"
	echo "virgoctl_test: $pass passed, $fail failed"
	exit 1
	;;
esac

head -c "$size" /dev/urandom >"$tmp/in"
# binary-safe: NULs and newlines at the start for sure
printf 'a\000b\n\000\n' | dd of="$tmp/in" conv=notrunc 2>/dev/null
expect 0 "write -i FILE" write "$addr" -i "$tmp/in"
expect 0 "read -o FILE" read "$addr" "$size" -o "$tmp/back"
if cmp -s "$tmp/in" "$tmp/back"; then
	ok "read back what was written ($size bytes)"
else
	ko "read back what was written" "$(cmp "$tmp/in" "$tmp/back" 2>&1)"
fi

# 5000 bytes across the first chunk boundary, from stdin, read to stdout
off=$((chunk - 4))
head -c 5000 /dev/urandom >"$tmp/piece"
if "$VIRGOCTL" write "$(hex $((addr + off)))" <"$tmp/piece" 2>"$tmp/err"
then
	ok "write from stdin at +$off"
else
	ko "write from stdin at +$off" "$(cat "$tmp/err")"
fi
"$VIRGOCTL" read "$(hex $((addr + off)))" 5000 >"$tmp/piece.back" \
	2>"$tmp/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$tmp/piece" "$tmp/piece.back"; then
	ok "read to stdout at +$off"
else
	ko "read to stdout at +$off" "exit $rc $(cat "$tmp/err")"
fi
{
	head -c "$off" "$tmp/in"
	cat "$tmp/piece"
	tail -c +$((off + 5000 + 1)) "$tmp/in"
} >"$tmp/expect"
kib=$((size / 1024))
expect 0 "read ${kib}K again" read "$addr" "${kib}K" -o "$tmp/back"
head -c $((kib * 1024)) "$tmp/expect" >"$tmp/expect.k"
if cmp -s "$tmp/expect.k" "$tmp/back"; then
	ok "all but the last byte as expected (a K suffix)"
else
	ko "all but the last byte as expected" \
		"$(cmp "$tmp/expect.k" "$tmp/back" 2>&1)"
fi
expect 0 "read the last byte" read "$(hex $((addr + size - 1)))" 1 \
	-o "$tmp/last"
tail -c 1 "$tmp/expect" >"$tmp/last.want"
if cmp -s "$tmp/last" "$tmp/last.want"; then
	ok "last byte"
else
	ko "last byte" "differs"
fi

# --- failures: exit 1 -----------------------------------------------------
expect 1 "read past the end" read "$addr" $((size + 1))
has "read past the end says why" "$tmp/err" "Invalid argument"
expect 1 "write past the end" write "$(hex $((addr + size - 2)))" \
	-i "$tmp/piece"
expect 1 "free not the first address" free "$(hex $((addr + 1)))"
has "free not-first hint" "$tmp/err" "not the first address"
expect 1 "free nowhere" free 0x10
has "free nowhere says why" "$tmp/err" "No such file or directory"
expect 1 "read nowhere" read 0x10 1
expect 1 "write -i missing file" write "$addr" -i "$tmp/does-not-exist"

# --- table ----------------------------------------------------------------
expect 0 "table" table
has "table lists the allocation" "$tmp/out" "^$addr  *$size "
has "table header" "$tmp/out" "^ADDRESS"
expect 0 "table --chunks" table --chunks
n=$(grep -c "^$addr  *[0-9]" "$tmp/out")
if [ "$n" -ge 6 ]; then
	ok "table --chunks: the allocation and its 5 chunks"
else
	ko "table --chunks: the allocation and its 5 chunks" "$n lines"
fi
expect 0 "table --json" --json table
has "table --json has the allocation" "$tmp/out" \
	"\"addr\":\"$addr\",\"size\":$size,\"owner\":\"user\",\"nr_chunks\":5"
expect 0 "table --json after the command" table --json --chunks
has "table --json --chunks" "$tmp/out" "\"chunks\":\[{\"chunk\":0,\"offset\":0,"

# --- status ---------------------------------------------------------------
expect 0 "status" status
has "status: client" "$tmp/out" "^client  *virgo.ko"
has "status: totals" "$tmp/out" "^in use  *[1-9][0-9]* allocations"
has "status: peer table" "$tmp/out" "^ID  *ADDRESS  *STATE"
expect 0 "status --json" --json status
has "status --json: client loaded" "$tmp/out" \
	'^{"client":{"loaded":true,"backend":"'
has "status --json: peers" "$tmp/out" '"peers":\[{"id":[0-9]'
bytes=$(sed -n 's/.*"stat":{[^}]*"bytes":\([0-9]*\).*/\1/p' "$tmp/out")
if [ -n "$bytes" ] && [ "$bytes" -ge "$size" ]; then
	ok "status --json counts the allocation ($bytes bytes live)"
else
	ko "status --json counts the allocation" "bytes '$bytes'"
fi

# --- peers ----------------------------------------------------------------
expect 0 "peers list" peers list
has "peers list header" "$tmp/out" "^ID  *ADDRESS"
has "peers list: sessions resumed and lost" "$tmp/out" "RESUMED  *LOST"
first=$(awk 'NR == 2 { print $2 }' "$tmp/out")
case "$first" in
*.*.*.*:*) ok "peers list shows a peer ($first)" ;;
*) ko "peers list shows a peer" "got '$first'" ;;
esac
expect 0 "peers list --json" --json peers list
has "peers list --json" "$tmp/out" '^{"source":"[a-z]*","peers":\[{"id":'
has "peers list --json: resumed, sessions_lost" "$tmp/out" '"resumed":[0-9][0-9]*,"sessions_lost":[0-9]'
# A peer nobody listens at: added, listed, refused twice, removed.
spare=127.0.0.1:9
expect 0 "peers add $spare" peers add "$spare"
expect 0 "peers list after add" peers list
has "peers list has $spare" "$tmp/out" " $spare "
expect 1 "peers add $spare again" peers add "$spare"
has "peers add twice says why" "$tmp/err" "File exists"
expect 0 "peers del $spare" peers del "$spare"
expect 0 "peers list after del" peers list
hasnt "peers list lacks $spare" "$tmp/out" " $spare "
expect 1 "peers del $spare again" peers del "$spare"

# --- alloc --json, free ---------------------------------------------------
expect 0 "alloc --json" --json alloc 4K
a2=$(sed -n 's/^{"addr":"\(0x[0-9a-f]*\)","size":4096,.*/\1/p' "$tmp/out")
if [ -n "$a2" ]; then
	ok "alloc --json ($a2)"
	expect 0 "free the --json allocation" free "$a2"
else
	ko "alloc --json" "got '$(cat "$tmp/out")'"
fi
# --- alloc --replicas ---------------------------------------------------
expect 2 "alloc --replicas 4" alloc 4K --replicas 4
expect 2 "alloc -r without N" alloc 4K -r
vc --json status
npeers=$(sed -n 's/.*"nr_peers":\([0-9]*\).*/\1/p' "$tmp/out")
npeers=${npeers:-0}
expect 0 "alloc --replicas 1 --json" --json alloc 4K --replicas 1
has "alloc --json says replicas 1" "$tmp/out" '"replicas":1}'
a3=$(sed -n 's/^{"addr":"\(0x[0-9a-f]*\)".*/\1/p' "$tmp/out")
[ -n "$a3" ] && expect 0 "free the replicas 1 allocation" free "$a3"
if [ "$npeers" -ge 2 ]; then
	# 2 chunks and a byte, every chunk on 2 peers, written and read back.
	rsize=$((2 * chunk + 1))
	expect 0 "alloc $rsize -r 2" alloc "$rsize" -r 2
	a4=$(cat "$tmp/out")
	head -c "$rsize" /dev/urandom >"$tmp/r2"
	expect 0 "write the replicated allocation" write "$a4" -i "$tmp/r2"
	expect 0 "read it back" read "$a4" "$rsize" -o "$tmp/r2.back"
	if cmp -s "$tmp/r2" "$tmp/r2.back"; then
		ok "replicas 2: read back what was written"
	else
		ko "replicas 2: read back what was written" "differs"
	fi
	t=/sys/kernel/debug/virgo/table
	if [ -r "$t" ]; then
		n2=$(awk -v a="$a4" '/^[^ ]/ { in_a = ($1 == a) }
			in_a && /^  chunk / && / replicas 2 / { n++ }
			END { print n + 0 }' "$t")
		if [ "$n2" -eq 3 ]; then
			ok "debugfs table: its 3 chunks have 2 replicas"
		else
			ko "debugfs table: its 3 chunks have 2 replicas" "$n2"
		fi
	fi
	expect 0 "free the replicated allocation" free "$a4"
fi
if [ "$npeers" -ge 1 ] && [ "$npeers" -lt 3 ]; then
	expect 1 "alloc --replicas $((npeers + 1)) with $npeers peers" \
		alloc 4K --replicas $((npeers + 1))
	has "... fails with ENOSPC" "$tmp/err" "No space left on device"
fi

expect 0 "free" free "$addr"
expect 1 "free again" free "$addr"
expect 0 "table after free" table
hasnt "table no longer lists it" "$tmp/out" "^$addr "
expect 1 "read after free" read "$addr" 1

echo "virgoctl_test: $pass passed, $fail failed"
rm -rf "$tmp"
trap - EXIT
[ "$fail" -eq 0 ] || exit 1
exit 0
