#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# blk: virgo_blk.ko, block devices over virgo allocations, on a 4-node
# cluster (node0 client, node1..3 cloud nodes).
#
#   load        insmod configfs.ko, virgo.ko, virgo_blk.ko nr_devices=1
#               size=16M: /dev/virgob0 exists, 16 MiB, logical block 512,
#               physical 4096, no write cache, discard in 1 MiB chunks (the
#               chunk size) up to 256 MiB
#   configfs    mkdir/size/replicas/power make /dev/virgobN; bad sizes and
#               replicas are refused (EINVAL), size is fixed while powered
#               (EBUSY), rmdir of a powered device is refused (EBUSY)
#   rw          virgo_blk_e2e rw: random O_DIRECT writes (512 B .. 1 MiB) at
#               random offsets of a 64 MiB device, each followed by a random
#               read compared with a shadow copy; the whole device read back
#               and compared at the end; the cloud nodes lend 64 MiB
#   zeroes      BLKZEROOUT reads back as zeroes, its neighbours unchanged
#   discard     the 64 MiB device written whole with a pattern, then
#               blkdiscard of 20 MiB at 5 MiB + 4 KiB: the cloud nodes'
#               materialised_bytes go down by exactly the 19 chunks (MiB)
#               the range covers whole, their lent_bytes do not change;
#               the range reads as zeroes, every other byte as written
#   busy        power=0 while a process holds the disk open: EBUSY, the
#               device stays and still reads; once closed, power=0 and
#               rmdir work and the cloud nodes lend nothing
#   virgoctl    tests/e2e/progs/virgoctl_blk_test.sh: virgoctl blk create, list,
#               remove (refused while open), usage errors, data read back
#   ext4        mke2fs -t ext4 on a 96 MiB device (Debian's ext4.ko and
#               e2fsprogs of the host), mount, a tree of files of random
#               sizes, umount, e2fsck -fn clean, mount again: every file's
#               SHA-256 as written; umount, e2fsck clean again
#   swap        mkswap + swapon on a 256 MiB device; a process in a memory
#               cgroup of 48 MiB touches 128 MiB (a pattern per page),
#               swap in use shows in /proc/swaps, every page verified
#               twice; power=0 refused while swapped on; swapoff; removed
#   lowmem      the same without a cgroup: hugepages leave the node ~64
#               MiB, a program touches twice what is left; every page
#               right, no OOM kill, no hung task, no allocation failure
#   swap2       the same with a 192 MiB replicas=2 device and 96 MiB of
#               pressure; node3 killed while pages are swapped out and
#               read back: every page verified twice all the same, no OOM
#               kill, no hung task
#   kill        a 24 MiB replicas=1 device fully written, node2 killed: a
#               read of the whole device fails with EIO within
#               rpc_timeout_ms (8 s) + 5 s, never hangs; the device is
#               removed
#   unload      rmmod virgo_blk refused while a configfs device exists;
#               rmmod virgo_blk (its load-time device goes too), rmmod
#               virgo: node1, the cloud node left, lends nothing and has
#               no session
#
# Environment: VIRGO_E2E_SEED (random by default), VIRGO_E2E_PORT (4646).
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2119 # helpers with optional arguments
set -uo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../helpers.sh
. "$E2E_LIB_DIR/helpers.sh"

seed=${VIRGO_E2E_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
export VIRGO_E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-60}
cfs=/sys/kernel/config/virgo_blk

e2e_begin blk
kver=$(e2e_kver) || e2e_abort "no kernel to boot"
gcc -static -O2 -Wall -Wextra -Werror -o "$E2E_RESULTS/virgo_blk_e2e" \
	"$E2E_LIB_DIR/progs/virgo_blk_e2e.c" ||
	e2e_abort "cannot build tests/e2e/progs/virgo_blk_e2e.c"
cluster_add_file "$E2E_RESULTS/virgo_blk_e2e" /virgo/virgo_blk_e2e
cluster_add_file "$E2E_REPO/virgo_blk.ko" /virgo/virgo_blk.ko
# Debian builds configfs as a module; busybox insmod resolves no
# dependency, so it goes in by hand.
cluster_add_file "/lib/modules/$kver/kernel/fs/configfs/configfs.ko" \
	/virgo/configfs.ko
e2e_build_virgoctl "$E2E_RESULTS/virgoctl" ||
	e2e_abort "cannot build tools/virgoctl"
cluster_add_file "$E2E_RESULTS/virgoctl" /virgo/bin/virgoctl
cluster_add_file "$E2E_REPO/tests/e2e/progs/virgoctl_blk_test.sh" \
	/virgo/virgoctl_blk_test.sh
# ext4 (a module in Debian's kernel; its metadata checksums need the
# crc32c shash, which a kernel without modprobe cannot request) and the
# host's e2fsprogs.
cluster_add_kmods "$kver" crc32c_generic ext4 ||
	e2e_abort "cannot ship ext4.ko and its dependencies"
ext4_kmods=$E2E_KMODS
{ cluster_add_prog /sbin/mke2fs /virgo/bin/mke2fs &&
	cluster_add_prog /sbin/e2fsck /virgo/bin/e2fsck; } ||
	e2e_abort "cannot ship mke2fs and e2fsck (install e2fsprogs)"
cluster_up_timed 4 || e2e_abort "cluster did not come up"
e2e_log "seed $seed (VIRGO_E2E_SEED=$seed replays this run)"

# cfs_dev NAME: the disk of configfs device NAME ("" when powered off).
cfs_dev() { node_run 0 "cat $cfs/$1/disk"; }

# make_dev NAME SIZE [REPLICAS]: a powered configfs device; prints its disk.
make_dev() {
	node_run 0 "mkdir $cfs/$1 && echo $2 > $cfs/$1/size &&
		echo ${3:-0} > $cfs/$1/replicas && echo 1 > $cfs/$1/power &&
		cat $cfs/$1/disk"
}

e2e_phase "load: configfs, virgo, virgo_blk nr_devices=1"
servers_load max_memory_mb=400
# rpc_timeout_ms 8 s: under TCG on a loaded host a live cloud node taking
# the whole write load after another one died answered a window of
# requests in just over 2 s (both replicas of a swap write then timed out,
# and a swap-in failed: SIGBUS); 5 s was short once more at host load 8-9
# (every peer "no reply within 5000 ms" in swap2: the client's vCPU starved).
rpc_s=8
client_load rpc_timeout_ms=$((rpc_s * 1000)) connect_timeout_ms=1000
expect "node0: insmod configfs.ko, mount it" node_run 0 \
	"insmod /virgo/configfs.ko && mount -t configfs configfs /sys/kernel/config"
# The first connects may still be under way (a malloc then finds no
# reachable peer: ENOSPC, and the load-time device fails its insmod).
# shellcheck disable=SC2317 # called through wait_for
peer_up() { [ "$(peer_state "$(peer_of "$1")")" = up ]; }
for i in 1 2 3; do
	wait_for 20 peer_up "$i" || e2e_fail "peer node$i is not up"
done
expect "node0: insmod virgo_blk.ko nr_devices=1 size=16M" node_run 0 \
	"insmod /virgo/virgo_blk.ko nr_devices=1 size=16M"
expect "/dev/virgob0: 16 MiB, logical 512, physical 4096, write-through, discard by 1 MiB, no scheduler" \
	node_run 0 "q=/sys/block/virgob0/queue; test -b /dev/virgob0 &&
		test \$(cat /sys/block/virgob0/size) = 32768 &&
		test \$(cat \$q/logical_block_size) = 512 &&
		test \$(cat \$q/physical_block_size) = 4096 &&
		test \"\$(cat \$q/write_cache)\" = 'write through' &&
		test \$(cat \$q/discard_max_bytes) = 268435456 &&
		test \$(cat \$q/discard_granularity) = 1048576 &&
		test \$(cat \$q/write_zeroes_max_bytes) -gt 0 &&
		grep -q '\[none\]' \$q/scheduler"
expect "a load-time device reads and writes (rw, 20 operations)" \
	node_run -t 120 0 "/virgo/virgo_blk_e2e rw /dev/virgob0 $seed 20"

e2e_phase "configfs: create, bad input, busy"
expect "features listed" node_run 0 "grep -q power $cfs/features"
expect "mkdir a; bad sizes and replicas refused (EINVAL)" node_run 0 "
	mkdir $cfs/a || exit 1
	for s in 0 100 4097 1x 128T; do
		echo \$s > $cfs/a/size 2>/dev/null && { echo size \$s taken; exit 1; }
	done
	echo 4 > $cfs/a/replicas 2>/dev/null && { echo replicas 4 taken; exit 1; }
	test \"\$(cat $cfs/a/power)\" = 0 && test -z \"\$(cat $cfs/a/disk)\""
expect "size 64M, replicas 1, power 1: a disk appears" node_run 0 "
	echo 64M > $cfs/a/size && echo 1 > $cfs/a/replicas &&
	echo 1 > $cfs/a/power && d=\$(cat $cfs/a/disk) && test -b /dev/\$d &&
	test \$(cat /sys/block/\$d/size) = 131072"
dev_a=$(cfs_dev a)
e2e_log "device a is /dev/$dev_a"
expect "size fixed while powered (EBUSY); rmdir refused while powered" \
	node_run 0 "! echo 1M > $cfs/a/size 2>/tmp/e && grep -qi busy /tmp/e &&
		! rmdir $cfs/a 2>/tmp/e && grep -qi busy /tmp/e &&
		test -d $cfs/a"

e2e_phase "rw: random O_DIRECT I/O compared with a shadow copy"
expect "virgo_blk_e2e rw /dev/$dev_a $seed 150" \
	node_run -t 300 0 "/virgo/virgo_blk_e2e rw /dev/$dev_a $seed 150"
lent=0
for i in 1 2 3; do
	lent=$((lent + $(cd_stat "$i" lent_bytes)))
done
# The load-time device (16 MiB) and this one (64 MiB).
if [ "$lent" -eq $(((16 + 64) << 20)) ]; then
	e2e_ok "the cloud nodes lend 80 MiB for the two devices"
else
	e2e_fail "the cloud nodes lend $lent bytes, not 80 MiB"
fi

e2e_phase "zeroes: WRITE_ZEROES"
expect "BLKZEROOUT of 1 MiB + 512 at 3 MiB - 512" \
	node_run 0 "/virgo/virgo_blk_e2e zeroes /dev/$dev_a 3145216 1049088"

e2e_phase "discard: the device is thin, blkdiscard gives memory back"
# sum_stat NAME: counter NAME of the cloud nodes' stats, summed.
sum_stat() {
	local i sum=0

	for i in 1 2 3; do
		sum=$((sum + $(cd_stat "$i" "$1")))
	done
	echo "$sum"
}
expect "fill /dev/$dev_a whole with a pattern" \
	node_run -t 300 0 "/virgo/virgo_blk_e2e fill /dev/$dev_a $seed"
mat0=$(sum_stat materialised_bytes)
lent0=$(sum_stat lent_bytes)
# [5 MiB + 4 KiB, 25 MiB + 4 KiB): chunks 6..24 whole, 5 and 25 in part.
doff=$(((5 << 20) + 4096))
dlen=$((20 << 20))
expect "blkdiscard -o $doff -l $dlen /dev/$dev_a" \
	node_run -t 120 0 "blkdiscard -o $doff -l $dlen /dev/$dev_a"
mat1=$(sum_stat materialised_bytes)
lent1=$(sum_stat lent_bytes)
if [ $((mat0 - mat1)) -eq $((19 << 20)) ] && [ "$lent1" -eq "$lent0" ]; then
	e2e_ok "materialised $mat0 -> $mat1 bytes (19 MiB given back), lent $lent1 unchanged"
else
	e2e_fail "materialised $mat0 -> $mat1, lent $lent0 -> $lent1: want 19 MiB back, lent unchanged"
fi
expect "the range reads as zeroes, the rest as written" \
	node_run -t 300 0 \
	"/virgo/virgo_blk_e2e verify /dev/$dev_a $seed $doff $dlen"

e2e_phase "busy: remove while open"
expect "hold /dev/$dev_a open" node_spawn 0 hold \
	"/virgo/virgo_blk_e2e hold /dev/$dev_a 6"
sleep 1
expect "power=0 while open: EBUSY, the disk stays" node_run 0 "
	! echo 0 > $cfs/a/power 2>/tmp/e && grep -qi busy /tmp/e &&
	test -b /dev/$dev_a && test \"\$(cat $cfs/a/power)\" = 1"
expect "the holder ends" node_wait -t 20 0 hold
expect "closed: power=0 and rmdir work" node_run 0 "
	echo 0 > $cfs/a/power && ! test -e /dev/$dev_a && rmdir $cfs/a"

e2e_phase "virgoctl blk"
expect "node0: virgoctl_blk_test.sh" node_run -t 300 0 \
	"VIRGOCTL=/virgo/bin/virgoctl sh /virgo/virgoctl_blk_test.sh"
e2e_phase "ext4: mkfs, files, umount, fsck, mount again and verify"
dev_f=$(make_dev f 96M)
e2e_log "ext4 device is /dev/$dev_f"
expect "load ext4 ($ext4_kmods )" node_run 0 "$(kmods_cmd "$ext4_kmods")"
expect "mke2fs -t ext4 /dev/$dev_f" node_run -t 300 0 \
	"/virgo/bin/mke2fs -q -F -t ext4 /dev/$dev_f"
expect "mount, write a tree of files, umount" node_run -t 300 0 "
	set -e
	mkdir -p /mnt/f
	mount -t ext4 /dev/$dev_f /mnt/f
	i=0
	while [ \$i -lt 24 ]; do
		mkdir -p /mnt/f/d\$((i % 4))
		dd if=/dev/urandom of=/mnt/f/d\$((i % 4))/f\$i bs=4096 \\
			count=\$((1 + (i * 37) % 900)) 2>/dev/null
		i=\$((i + 1))
	done
	dd if=/dev/urandom of=/mnt/f/odd bs=1 count=12345 2>/dev/null
	(cd /mnt/f && find . -type f | sort | xargs sha256sum) >/tmp/f.sums
	test \$(wc -l </tmp/f.sums) = 25
	umount /mnt/f"
expect "e2fsck -fn: clean" node_run -t 300 0 "/virgo/bin/e2fsck -fn /dev/$dev_f"
expect "mount again: every file's SHA-256 as written" node_run -t 300 0 "
	set -e
	echo 3 >/proc/sys/vm/drop_caches
	mount -t ext4 /dev/$dev_f /mnt/f
	(cd /mnt/f && sha256sum -c -s /tmp/f.sums) || { umount /mnt/f; exit 1; }
	umount /mnt/f"
expect "e2fsck -fn: still clean; power=0, rmdir" node_run -t 300 0 \
	"/virgo/bin/e2fsck -fn /dev/$dev_f && echo 0 > $cfs/f/power && rmdir $cfs/f"

e2e_phase "swap: swapon a device, memory pressure, every page verified"
dev_s=$(make_dev s 256M 1)
e2e_log "swap device is /dev/$dev_s"
expect "mkswap + swapon /dev/$dev_s" node_run 0 \
	"mkswap /dev/$dev_s >/dev/null && swapon /dev/$dev_s &&
		grep -q '^/dev/$dev_s ' /proc/swaps"
expect "power=0 while swapped on: EBUSY" node_run 0 \
	"! echo 0 > $cfs/s/power 2>/tmp/e && grep -qi busy /tmp/e"
expect "cgroup of 48 MiB" node_run 0 "
	mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup &&
	echo +memory > /sys/fs/cgroup/cgroup.subtree_control &&
	mkdir /sys/fs/cgroup/p && echo 48M > /sys/fs/cgroup/p/memory.max"
t0=$SECONDS
out=$(node_run -t 600 0 "echo \$\$ > /sys/fs/cgroup/p/cgroup.procs &&
	exec /virgo/virgo_blk_e2e pressure 128 $seed")
rc=$?
printf '%s\n' "$out" | sed 's/^/        | /'
used=$(awk '/written in/ { print $(NF - 1) }' <<<"$out")
if [ "$rc" = 0 ] && [ "${used:-0}" -gt 0 ]; then
	e2e_ok "128 MiB through a 48 MiB cgroup: every page right, ${used} kB swapped out ($((SECONDS - t0)) s)"
else
	e2e_fail "pressure: exit $rc, swap in use '${used:-}' kB"
fi
expect "no OOM kill" node_run 0 "! dmesg | grep -qi 'out of memory\|oom-kill'"
expect "swapoff; power=0; rmdir" node_run -t 120 0 \
	"swapoff /dev/$dev_s && echo 0 > $cfs/s/power && rmdir $cfs/s"

e2e_phase "lowmem: swap while the whole node is short of memory"
# Not a cgroup this time: hugepages take memory away from everything else,
# so the program's pages are reclaimed by kswapd and direct reclaim while
# the node itself runs low, and the write-out has to work from what is
# left (min_free_kbytes as docs/blk.md advises).
dev_l=$(make_dev l 320M 1)
e2e_log "swap device is /dev/$dev_l"
lowmem=$(node_run 0 "
	mkswap /dev/$dev_l >/dev/null && swapon /dev/$dev_l || exit 1
	sysctl -qw vm.min_free_kbytes=16384
	echo 3 > /proc/sys/vm/drop_caches
	avail=\$(awk '/^MemAvailable:/ { print int(\$2 / 1024) }' /proc/meminfo)
	echo \$(((avail - 64) / 2)) > /proc/sys/vm/nr_hugepages
	awk '/^MemAvailable:/ { print int(\$2 / 1024) }' /proc/meminfo")
rc=$?
if [ "$rc" = 0 ] && [ "${lowmem:-0}" -gt 32 ] && [ "$lowmem" -lt 128 ]; then
	e2e_ok "swap on /dev/$dev_l; hugepages leave $lowmem MiB available"
else
	e2e_fail "lowmem setup: exit $rc, '$lowmem' MiB available"
fi
t0=$SECONDS
want=$((2 * ${lowmem:-64}))
out=$(node_run -t 900 0 "/virgo/virgo_blk_e2e pressure $want $seed")
rc=$?
printf '%s\n' "$out" | sed 's/^/        | /'
used=$(awk '/written in/ { print $(NF - 1) }' <<<"$out")
if [ "$rc" = 0 ] && [ "$(grep -c ' 0 wrong' <<<"$out")" = 2 ] &&
	[ "${used:-0}" -gt 0 ]; then
	e2e_ok "$want MiB with $lowmem MiB available: every page right, twice, ${used} kB swapped out ($((SECONDS - t0)) s)"
else
	e2e_fail "lowmem pressure: exit $rc, swap in use '${used:-}' kB"
fi
expect "no OOM kill, no hung task, no allocation failure" node_run 0 \
	"! dmesg | grep -qi 'out of memory\|oom-kill\|blocked for more than\|page allocation failure'"
expect "hugepages back; swapoff; power=0; rmdir" node_run -t 300 0 \
	"echo 0 > /proc/sys/vm/nr_hugepages && swapoff /dev/$dev_l &&
		echo 0 > $cfs/l/power && rmdir $cfs/l"

e2e_phase "swap2: replicas=2, a cloud node killed under the swap load"
dev_r=$(make_dev r 192M 2)
e2e_log "swap device is /dev/$dev_r (replicas 2)"
expect "mkswap + swapon /dev/$dev_r" node_run 0 \
	"mkswap /dev/$dev_r >/dev/null && swapon /dev/$dev_r"
t0=$SECONDS
expect "start 96 MiB of pressure in the 48 MiB cgroup" node_spawn 0 press \
	"sh -c 'echo \$\$ > /sys/fs/cgroup/p/cgroup.procs && exec /virgo/virgo_blk_e2e pressure 96 $seed'"
# Kill while pages are out on the device and being read back.
wait_for 120 node_run 0 "grep -q 'swap in use [1-9]' /tmp/job.press.out"
sleep 5
node_kill 3
out=$(node_wait -t 900 0 press)
rc=$?
printf '%s\n' "$out" | sed 's/^/        | /'
if [ "$rc" = 0 ] && [ "$(grep -c ' 0 wrong' <<<"$out")" = 2 ]; then
	e2e_ok "node3 killed under swap with replicas=2: every page right, twice ($((SECONDS - t0)) s)"
else
	e2e_fail "swap with node3 killed: exit $rc"
fi
expect "no OOM kill, no hung task" node_run 0 \
	"! dmesg | grep -qi 'out of memory\|oom-kill\|blocked for more than'"
expect "swapoff; power=0; rmdir" node_run -t 300 0 \
	"swapoff /dev/$dev_r && echo 0 > $cfs/r/power && rmdir $cfs/r"

e2e_phase "kill: a cloud node dies under a replicas=1 device"
dev_k=$(make_dev k 24M 1)
expect "write all of /dev/$dev_k" node_run -t 120 0 \
	"dd if=/dev/urandom of=/dev/$dev_k bs=1M count=24 conv=fsync 2>/dev/null"
node_kill 2
out=$(node_run -t 120 0 "/virgo/virgo_blk_e2e readall /dev/$dev_k")
rc=$?
printf '%s\n' "$out" | sed 's/^/        | /'
secs=$(awk '/readall:/ { print $(NF - 1) }' <<<"$out")
if [ "$rc" = 1 ] && grep -q 'Input/output error' <<<"$out" &&
	awk -v s="${secs:-99}" -v b=$((rpc_s + 5)) 'BEGIN { exit !(s < b) }'
then
	e2e_ok "reading it fails with EIO after ${secs} s (< $((rpc_s + 5)) s)"
else
	e2e_fail "reading with node2 dead: exit $rc, '$out'"
fi
expect "the device is removed" node_run -t 60 0 \
	"echo 0 > $cfs/k/power && rmdir $cfs/k"

e2e_phase "unload"
expect "rmmod virgo_blk refused while a configfs device exists" node_run 0 \
	"mkdir $cfs/x && ! rmmod virgo_blk 2>/dev/null && rmdir $cfs/x"
expect "rmmod virgo_blk" node_run -t 60 0 "rmmod virgo_blk && ! test -e /dev/virgob0"
expect "rmmod virgo" node_run -t 60 0 "rmmod virgo"
servers_idle
expect_all "rmmod virgo_clouddrec" "$(servers)" "rmmod virgo_clouddrec"

phases_report
e2e_end
