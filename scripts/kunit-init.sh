#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of the KUnit UML kernel, started once every suite has run: asks
# kmemleak for a report and powers off.  kunit.sh fails the run on any
# "unreferenced object" this prints.
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox ip link set lo up

# kunit.sh boots a second time with the client's init blacklisted
# (VIRGO_INIT_MODE=enosys from the command line): the syscalls must then
# fail with ENOSYS.
if [ "${VIRGO_INIT_MODE:-}" = enosys ]; then
	/tests/virgo_sys_test --expect-enosys
	echo "virgo-user: virgo_sys_test --expect-enosys exit $?"
	/bin/busybox poweroff -f
fi

# User-space tests against the built-in client and server (loopback).
export PATH=/bin
for t in /tests/*; do
	[ -x "$t" ] || continue
	n=${t##*/}
	n=${n%.sh}
	echo "virgo-user: running $n"
	"$t"
	echo "virgo-user: $n exit $?"
done
k=/sys/kernel/debug/kmemleak
if [ -w $k ]; then
	# Objects younger than 5 s are never reported: wait, then scan
	# twice so transient references are not mistaken for leaks.
	/bin/busybox sleep 6
	echo scan >$k
	echo scan >$k
	echo "virgo-kmemleak: report begins"
	/bin/busybox cat $k
	echo "virgo-kmemleak: report ends"
else
	echo "virgo-kmemleak: unavailable"
fi
/bin/busybox poweroff -f
