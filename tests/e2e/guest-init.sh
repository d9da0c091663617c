#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of a virgo e2e cluster node (busybox ash, runs as PID 1 in the
# initramfs built by tests/e2e/mkinitramfs.sh).
#
# Kernel command line parameters (set by tests/e2e/lib.sh):
#   e2e.node=IDX        node index (hostname becomes nodeIDX)
#   e2e.ip=A.B.C.D/NN   address of eth0
#   e2e.ip6=V6/NN       its IPv6 address (no duplicate address detection:
#                       usable at once)
#
# The console (ttyS0) carries the kernel log and this script's progress
# lines only.  Commands arrive on the second serial port (ttyS1), which the
# kernel never writes to, so kernel messages cannot corrupt the channel.
#
# Command channel protocol, one line per message, fields separated by one
# space, base64 without line wrapping, H = first 8 hex digits of an md5:
#   host  -> guest  VIRGO-PING <id>
#   guest -> host   VIRGO-PONG <id>
#   host  -> guest  VIRGO-RUN <id> <timeout-secs> <H(b64)> <b64 of sh command>
#   guest -> host   VIRGO-ACK <id>                   (on receipt)
#   guest -> host   VIRGO-RES <id> <exit code> <H("o.. e..")> o<b64 stdout> e<b64 stderr>
#   host  -> guest  VIRGO-POLL <id>                  (result lost? send again)
# Frames that do not parse or whose hash does not match are ignored; the
# host sends a RUN again when no ACK comes and polls when no RES comes.  A
# RUN whose id equals the last one run is answered from the stored result,
# not run again, so every command runs at most once.

PATH=/sbin:/bin:/usr/sbin:/usr/bin:/virgo/bin
export PATH

say() { echo "virgo-init: $*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t configfs configfs /sys/kernel/config 2>/dev/null

node=0
addr=
addr6=
debug=0
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	e2e.node=*) node=${arg#e2e.node=} ;;
	e2e.ip=*) addr=${arg#e2e.ip=} ;;
	e2e.ip6=*) addr6=${arg#e2e.ip6=} ;;
	e2e.debug=*) debug=${arg#e2e.debug=} ;;
	esac
done
hostname "node$node"

ip link set lo up

# The only NIC driver needed: e1000 (built as a module in Debian's kernel).
if [ -e /lib/modules/e1000.ko ]; then
	insmod /lib/modules/e1000.ko || say "insmod e1000.ko failed"
fi
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ -n "$addr" ] && [ -e /sys/class/net/eth0 ]; then
	ip addr add "$addr" dev eth0
	if [ -n "$addr6" ] && [ -d /proc/sys/net/ipv6/conf/eth0 ]; then
		echo 0 >/proc/sys/net/ipv6/conf/eth0/accept_dad
		ip addr add "$addr6" dev eth0
	fi
	ip link set eth0 up
	say "node$node eth0 $addr $addr6"
else
	say "node$node: no eth0 or no e2e.ip=; network not configured"
fi

# --- command loop on ttyS1 -------------------------------------------------
ctl=/dev/ttyS1
if [ ! -c "$ctl" ]; then
	say "no $ctl: no command channel, powering off"
	poweroff -f
fi
# Raw mode: no echo, no CR/NL translation, no line editing, no signals.
stty -F "$ctl" raw -echo -echoe -echok -echoctl -echoke -ixon -ixoff -crtscts clocal
exec 3<>"$ctl"
cd /virgo 2>/dev/null || cd /
cr=$(printf '\r')

# First 8 hex digits of the md5 of $1: frames carry it so that a frame hit
# by a lost or changed byte is dropped (and sent again), never executed.
hash8() { printf '%s' "$1" | md5sum | cut -c1-8; }

# Uptime in centiseconds.
now_cs() {
	read -r up _ </proc/uptime
	cs=${up#*.}
	echo $((${up%.*} * 100 + ${cs#0}))
}

seen=0          # 1 once a good frame came in
last=           # id of the last command run
last_sent=0     # when its result was last sent (now_cs)
res=/tmp/.virgo-res

# Mangled frames go to /tmp/virgo-ctl.bad (the host collects it): the
# channel recovers by itself, this is for diagnosis only.
# Junk from before the loop set the port up (early pings) is not logged.
bad() {
	[ "$seen" = 1 ] || return 0
	printf '%s %s\n' "$(cat /proc/uptime)" "$(printf '%s' "$1" | cut -c1-200)" \
		>>/tmp/virgo-ctl.bad
}

send_res() {
	cat "$res" >&3
	last_sent=$(now_cs)
}

command_loop() {
	while IFS= read -r line <&3; do
		line=${line%"$cr"}
		# e2e.debug=1: keep a log of every frame (first 60 bytes) for the host.
		[ "$debug" = 1 ] && printf '%s %s\n' "$(cat /proc/uptime)" \
			"$(printf '%s' "$line" | cut -c1-60)" >>/tmp/virgo-ctl.log
		# shellcheck disable=SC2086 # split the frame into its fields on purpose
		set -- $line
		case "$1" in
		VIRGO-PING)
			[ $# -eq 2 ] && printf 'VIRGO-PONG %s\n' "$2" >&3 && seen=1
			;;
		VIRGO-RUN)
			if [ $# -ne 5 ] || [ "$(hash8 "$5")" != "$4" ]; then
				bad "$line"
				continue
			fi
			seen=1
			id=$2
			limit=$3
			printf 'VIRGO-ACK %s\n' "$id" >&3
			# A resend of the command that already ran: answer again, do not
			# run it twice.
			if [ "$id" = "$last" ]; then
				[ -e "$res" ] && send_res
				continue
			fi
			last=$id
			rm -f "$res"
			cmd=$(printf '%s' "$5" | base64 -d 2>/dev/null)
			timeout -s KILL "$limit" sh -c "$cmd" </dev/null \
				>/tmp/.virgo-out 2>/tmp/.virgo-err
			rc=$?
			o=o$(base64 -w0 /tmp/.virgo-out)
			e=e$(base64 -w0 /tmp/.virgo-err)
			printf 'VIRGO-RES %s %s %s %s %s\n' "$id" "$rc" "$(hash8 "$o $e")" \
				"$o" "$e" >"$res"
			o=
			e=
			rm -f /tmp/.virgo-out /tmp/.virgo-err
			send_res
			;;
		VIRGO-POLL)
			# The host missed the result: send it again, but not more than
			# once per 2 s (polls queue up while a long command runs).
			if [ $# -eq 2 ] && [ "$2" = "$last" ] && [ -e "$res" ] &&
				[ $(($(now_cs) - last_sent)) -ge 200 ]; then
				send_res
			fi
			;;
		'') ;;
		*)
			bad "$line"
			;;
		esac
	done
}

# The loop runs in a child of PID 1, not in PID 1 itself.  Orphans (every
# background process a command leaves behind, and busybox timeout's watcher,
# which daemonizes) are reparented to PID 1, and their SIGCHLD makes ash's
# "read" builtin restart with an empty buffer: the part of a frame read so
# far would be lost.  The loop shell only ever has children it waits for.
command_loop &
loop=$!
say "node$node command loop ready on $ctl"

# PID 1: reap orphans (ash reaps any child while it waits for sleep) and
# power off when the loop ends.
while kill -0 "$loop" 2>/dev/null; do
	sleep 1
done
say "command channel closed, powering off"
poweroff -f
