#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virgoctl blk end to end, as root, with virgo.ko (reachable peers),
# virgo_blk.ko and configfs mounted: create (named, default name,
# replicas), list (table and --json), the disk reads back what was
# written, remove (refused while open, then done), exit status 2 for
# usage errors and 1 for failed operations.  busybox sh compatible.
# Prints "PASS name" / "FAIL name: ..." and
# "virgoctl_blk_test: N passed, N failed"; exits 1 on any failure.
#
# Environment: VIRGOCTL (default: virgoctl from PATH).

VIRGOCTL=${VIRGOCTL:-virgoctl}
CFS=/sys/kernel/config/virgo_blk
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

tmp=$(mktemp -d /tmp/virgoctl_blk_test.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

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
		ko "$name" "exit $rc, want $want: $(cat "$tmp/err")"
	fi
}

expect 2 "no blk command: usage error" blk
expect 2 "unknown blk command" blk frob
expect 2 "create without SIZE" blk create
expect 2 "create with a size not a multiple of 4K" blk create 1000
expect 2 "create with replicas 4" blk create 1M --replicas 4
expect 2 "create with a bad name" blk create 1M --name ../x
expect 2 "create with --name and no value" blk create 1M --name
expect 2 "remove without NAME" blk remove
expect 1 "remove of a device that does not exist" blk remove nosuch
expect 1 "create beyond what the peers lend (ENOSPC/ENOMEM)" blk create 64T
if [ -d "$CFS/blk0" ]; then
	ko "a failed create leaves no directory behind"
else
	ok "a failed create leaves no directory behind"
fi

expect 0 "create 4M --name t1 --replicas 1" blk create 4M --name t1 --replicas 1
disk=$(awk '{ print $2 }' "$tmp/out")
if [ -b "$disk" ] && [ "$(cat "$CFS/t1/disk")" = "${disk#/dev/}" ]; then
	ok "create prints the name and the disk ($disk)"
else
	ko "create prints the name and the disk" "'$(cat "$tmp/out")'"
fi
expect 1 "create t1 again: exists" blk create 4M --name t1
expect 0 "create 8M (default name)" blk create 8M
name2=$(awk '{ print $1 }' "$tmp/out")
case "$name2" in
blk[0-9]*) ok "the default name is blkN ($name2)" ;;
*) ko "the default name is blkN" "'$name2'" ;;
esac

expect 0 "list" blk list
if grep -Eq "^t1 +${disk#/dev/} +4194304 +1 +on$" "$tmp/out" &&
	grep -Eq "^$name2 +virgob[0-9]+ +8388608 +0 +on$" "$tmp/out" &&
	head -n1 "$tmp/out" | grep -q '^NAME'; then
	ok "list shows both with disk, size, replicas, power"
else
	ko "list shows both" "$(cat "$tmp/out")"
fi
expect 0 "list --json" --json blk list
if grep -q '"name": *"t1"' "$tmp/out" && grep -q '"size": *4194304' "$tmp/out" &&
	grep -q '"power": *true' "$tmp/out"; then
	ok "list --json has name, size, power"
else
	ko "list --json" "$(cat "$tmp/out")"
fi

# The disk holds what was written (through the page cache, dropped).
dd if=/dev/urandom of="$tmp/data" bs=4096 count=1024 2>/dev/null
dd if="$tmp/data" of="$disk" bs=65536 conv=fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
if cmp "$tmp/data" "$disk" 2>/dev/null ||
	cmp -n 4194304 "$tmp/data" "$disk"; then
	ok "4 MiB written to $disk read back"
else
	ko "4 MiB written to $disk read back"
fi

# Open: remove refused, the device stays.
# shellcheck disable=SC2217 # the redirection is what holds it open
sleep 5 <"$disk" &
holder=$!
sleep 1
expect 1 "remove t1 while open" blk remove t1
if grep -qi busy "$tmp/err" && [ -b "$disk" ] && [ -d "$CFS/t1" ]; then
	ok "remove while open says busy, the device stays"
else
	ko "remove while open" "$(cat "$tmp/err")"
fi
wait "$holder"

expect 0 "remove t1" blk remove t1
expect 0 "remove $name2" blk remove "$name2"
if [ ! -d "$CFS/t1" ] && [ ! -d "$CFS/$name2" ] && [ ! -b "$disk" ]; then
	ok "removed: no directory, no disk"
else
	ko "removed: no directory, no disk"
fi

echo "virgoctl_blk_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
