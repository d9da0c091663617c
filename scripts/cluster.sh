#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bring up a virgo qemu cluster by hand (the e2e harness, tests/e2e/lib.sh,
# driven from a prompt or a script on stdin).  Needs root; qemu runs with
# TCG inside a private network namespace.
#
#   scripts/cluster.sh up [--no-build] [N]
#       build the modules, boot N nodes (default 4), then read commands
#       from stdin until "quit" or end of input, and tear everything down:
#         IDX CMD...      run CMD on node IDX (e.g. "1 insmod /virgo/virgo_clouddrec.ko")
#         all CMD...      run CMD on every node
#         kill IDX        hard-kill node IDX        down IDX / up IDX   its link
#         mon IDX CMD...  qemu monitor command      ip IDX              its addresses
#         check           scan the node logs for Oops/BUG/WARNING/...
#         help, quit
#   scripts/cluster.sh initramfs OUT [SRC[:DEST]]...
#       only build a node initramfs (extra files land in /virgo by default)
#   scripts/cluster.sh cleanup
#       remove what a killed harness left behind: qemu processes, netns
#       virgo-e2e-<pid> and work dirs whose harness process is gone
#   scripts/cluster.sh kver
#       print the kernel version the nodes boot
#
# Environment: see tests/e2e/lib.sh (VIRGO_E2E_MEM, VIRGO_E2E_SMP, ...).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/e2e/lib.sh
. "$repo/tests/e2e/lib.sh"

usage() {
	# The header comment, up to the first shellcheck directive.
	awk 'NR < 3 { next } /^# shellcheck/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

repl_help() {
	cat <<-'EOF'
		IDX CMD...      run CMD (sh -c) on node IDX
		all CMD...      run CMD on every node
		kill IDX        hard-kill node IDX
		down IDX        cut node IDX's link        up IDX   restore it
		mon IDX CMD...  qemu monitor command       ip IDX   node addresses
		check           scan node logs for kernel problems
		quit            tear down and exit (also: end of input)
	EOF
}

cmd_up() {
	local build=1 n=4 line idx cmd i prompt=
	if [ "${1:-}" = --no-build ]; then
		build=0
		shift
	fi
	n=${1:-4}
	e2e_begin cluster
	if [ "$build" = 1 ]; then
		e2e_build_modules "$E2E_RESULTS/build.log" || exit 1
	fi
	cluster_up "$n" || exit 1
	for ((i = 0; i < n; i++)); do
		e2e_log "node$i $(node_ip "$i") $(node_ip6 "$i")"
	done
	e2e_log "modules are in /virgo on every node; type help for commands"
	[ -t 0 ] && prompt="virgo-cluster> "
	while true; do
		[ -n "$prompt" ] && printf '%s' "$prompt"
		IFS= read -r line || break
		case "$line" in
		'' | '#'*) ;;
		quit | exit) break ;;
		help) repl_help ;;
		check) cluster_check_logs && e2e_log "node logs clean" ;;
		kill\ *) node_kill "${line#kill }" ;;
		down\ *) link_down "${line#down }" ;;
		up\ *) link_up "${line#up }" ;;
		ip\ *) node_ip "${line#ip }"; node_ip6 "${line#ip }" ;;
		mon\ *)
			line=${line#mon }
			node_monitor "${line%% *}" "${line#* }"
			;;
		all\ *)
			for ((i = 0; i < n; i++)); do
				node_alive "$i" || continue
				echo "--- node$i"
				node_run "$i" "${line#all }"
				echo "[exit $?]"
			done
			;;
		[0-9]*)
			idx=${line%% *}
			cmd=${line#"$idx"}
			node_run "$idx" "$cmd"
			echo "[exit $?]"
			;;
		*) echo "unknown command: $line (try help)" ;;
		esac
	done
	[ -n "$prompt" ] && echo
	cluster_check_logs
	cluster_down
	e2e_log "logs in $E2E_RESULTS"
}

# Leftovers of harness runs whose process is gone (SIGKILL before the
# reaper could act, or a reboot of the reaper).  Only objects that carry
# the harness naming are touched, and only when their owner pid is dead.
cmd_cleanup() {
	local ns pid qpid name dir base f alive
	[ "$(id -u)" -eq 0 ] || { e2e_err "cleanup needs root"; exit 1; }
	for ns in $(ip netns list | awk '{print $1}' | grep '^virgo-e2e-[0-9]*$'); do
		pid=${ns#virgo-e2e-}
		kill -0 "$pid" 2>/dev/null && continue
		# qemu processes of that run are named virgo-e2e-<pid>-node<i>.
		for qpid in $(pgrep -f "^qemu-system-x86_64 -name virgo-e2e-$pid-node"); do
			name=$(tr '\0' ' ' <"/proc/$qpid/cmdline" 2>/dev/null | awk '{print $3}')
			e2e_log "killing stale qemu $qpid ($name)"
			kill -KILL "$qpid"
		done
		e2e_log "deleting stale netns $ns"
		ip netns del "$ns"
	done
	base=${VIRGO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virgo}/e2e
	for dir in "$base"/run.* /tmp/virgo-e2e.*; do
		[ -d "$dir" ] || continue
		alive=0
		for f in "$dir"/n*.pid; do
			[ -e "$f" ] || continue
			pid=$(cat "$f")
			[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
		done
		# A run still booting has no pid files yet: leave young dirs alone.
		if [ $alive = 0 ] && [ -n "$(find "$dir" -maxdepth 0 -mmin +10)" ]; then
			e2e_log "removing stale work dir $dir"
			rm -rf "$dir"
		fi
	done
	e2e_log "cleanup done"
}

cmd_initramfs() {
	local out=${1:-} kver args=() f
	[ -n "$out" ] || { usage >&2; exit 2; }
	shift
	kver=$(e2e_kver) || exit 1
	for f in "$@"; do
		args+=(-f "$f")
	done
	"$repo/tests/e2e/mkinitramfs.sh" -o "$out" -k "$kver" "${args[@]}" &&
		e2e_log "wrote $out (kernel $kver)"
}

case "${1:-}" in
up) shift; cmd_up "$@" ;;
cleanup) cmd_cleanup ;;
initramfs) shift; cmd_initramfs "$@" ;;
kver) e2e_kver ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
