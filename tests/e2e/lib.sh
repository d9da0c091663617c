# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# virgo e2e cluster harness: boots N qemu (TCG) nodes running Debian's own
# kernel on a private bridge inside a network namespace, and lets a scenario
# run commands on them.  Source it from a scenario:
#
#   . "$(dirname "$0")/../lib.sh"
#   e2e_begin myscenario
#   cluster_up 4 || e2e_abort "cluster did not come up"
#   expect "modules load" node_run 1 insmod /virgo/virgo_clouddrec.ko
#   e2e_end                       # checks logs, tears down, prints PASS/FAIL
#
# API (IDX is a node index 0..N-1):
#   e2e_begin NAME            results dir, output log, traps, counters
#   e2e_build_modules LOG     make the modules for the booted kernel
#   e2e_build_virgoctl OUT    virgoctl, static, for the nodes
#   e2e_build_dkms DIR        the modules as DKMS builds them (and the
#                             example against the installed header), used
#                             by cluster_up instead of the tree's
#   cluster_add_file SRC [DEST]  put SRC into every node's initramfs (before
#                             cluster_up); DEST defaults to /virgo/<name>
#   cluster_up N              boot N nodes, wait until all answer (returns 1
#                             and prints the console tail on failure)
#   node_run [-t SECS] IDX CMD...  run CMD (sh -c) on node IDX: its stdout and
#                             stderr come out here, its exit status is
#                             returned; 124 = no answer in time, 255 = node
#                             unreachable, 137 = killed by the guest timeout
#   node_spawn IDX NAME CMD...     start CMD in the background on node IDX
#   node_wait [-t SECS] IDX NAME   wait for it: prints its output, returns
#                             its status (124 if still running at timeout)
#   node_ip IDX               the node's address (10.99.0.(10+IDX))
#   node_ip6 IDX              its IPv6 address (fd00:7669:7267::(10+IDX))
#   node_ping IDX IP [COUNT]  ping from node IDX; ok if any reply comes back
#   node_count                number of nodes of the cluster
#   node_alive IDX            true while the node's qemu runs
#   node_kill IDX             hard-kill the node's qemu (the node dies)
#   link_down IDX / link_up IDX    set the node's tap down/up on the bridge
#                             (frames are dropped silently; the guest keeps
#                             its carrier)
#   node_monitor IDX CMD...   one qemu monitor (HMP) command, e.g.
#                             "set_link net0 off" (guest sees carrier loss)
#   node_log IDX              path of the node's console (kernel) log
#   cluster_check_logs [IDX...]    fail if a node log shows Oops, BUG:,
#                             WARNING:, KASAN, lockdep, stalls, ...
#                             (VIRGO_E2E_LOG_ALLOW: ERE of lines to ignore)
#   cluster_down              stop qemu, delete taps, bridge, netns and temp
#                             files (idempotent; also run on EXIT, INT,
#                             TERM, HUP)
#   expect DESC CMD...        run CMD; record ok if it succeeds, else FAIL
#                             and show its output
#   expect_fail DESC CMD...   the same, but CMD must fail
#   e2e_ok DESC / e2e_fail DESC    record a result directly
#   e2e_step DESC             print a section header
#   e2e_log MSG               print a harness message
#   e2e_abort MSG             record a failure and finish (e2e_end)
#   e2e_end                   fetch dmesg, check logs, tear down, print the
#                             PASS/FAIL summary, exit 0 or 1
#
# Environment (all optional):
#   VIRGO_E2E_KVER            kernel version to boot (default: the one
#                             linux-image-amd64 depends on)
#   VIRGO_E2E_MEM             guest memory (default 512M)
#   VIRGO_E2E_SMP             guest vCPUs (default 2)
#   VIRGO_E2E_BOOT_TIMEOUT    seconds for all nodes to answer (default 240)
#   VIRGO_E2E_CMD_TIMEOUT     default node_run timeout in seconds (default 60)
#   VIRGO_E2E_RESULTS_DIR     where logs go (default <repo>/build/e2e/NAME-TS)
#   VIRGO_CACHE               work dir base (default ~/.cache/virgo)
#   VIRGO_E2E_KEEP=1          keep the work dir (initramfs, sockets)
#   VIRGO_E2E_VERBOSE=1       echo every node_run command
#   VIRGO_E2E_DEBUG=1         nodes log every command frame to /tmp/virgo-ctl.log
#   VIRGO_E2E_MODULES         space-separated .ko files to put in /virgo
#                             (default: <repo>/virgo.ko <repo>/virgo_clouddrec.ko)
#   VIRGO_E2E_DKMS_DIR        DKMS-built modules for every scenario
#                             (run.sh --dkms sets it; e2e_build_dkms)
#
# Results dir: nodeI.console.log (full kernel log from boot, with
# ignore_loglevel), nodeI.dmesg (dmesg fetched at teardown), nodeI.qemu.log
# (qemu's own stderr), nodeI.commands.log (transcript of every node_run),
# nodeI.ctl-bad.log (command frames the node dropped as mangled; normally
# absent), output.log (the scenario's output).  The node files of a second
# cluster_up in the same scenario go to cluster2/, and so on.
#
# Network: the netns "virgo-e2e-<pid>" holds a bridge br0 without any address
# and one tap per node; the guests use 10.99.0.0/24 and the unique-local
# fd00:7669:7267::/64 among themselves.  There is no route and no link out
# of the namespace, so no guest packet can leave.

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO=$(cd "$E2E_LIB_DIR/../.." && pwd)
E2E_NODECTL=$E2E_LIB_DIR/nodectl.py
E2E_SUBNET=10.99.0
E2E_SUBNET6=fd00:7669:7267:
# shellcheck disable=SC2034 # for scenarios: where modules and -f files land
E2E_GUEST_DIR=/virgo

# Settings; read again by cluster_up, so a scenario may set VIRGO_E2E_*
# after sourcing this file.
_e2e_settings() {
	E2E_MEM=${VIRGO_E2E_MEM:-512M}
	E2E_SMP=${VIRGO_E2E_SMP:-2}
	E2E_BOOT_TIMEOUT=${VIRGO_E2E_BOOT_TIMEOUT:-240}
	E2E_CMD_TIMEOUT=${VIRGO_E2E_CMD_TIMEOUT:-60}
}
_e2e_settings

E2E_NAME=${E2E_NAME:-e2e}
E2E_RESULTS=
E2E_WORK=
E2E_NETNS=
E2E_N=0
E2E_PID=()
E2E_DEAD=()
E2E_FILES=()
E2E_MODFILES=()
E2E_NODEDIR=
E2E_CLUSTERS=0
E2E_READY=0
E2E_PASS=0
E2E_FAILED=()
E2E_TRAPS=0
E2E_DOWN=1
E2E_T0=$SECONDS

# --- messages ----------------------------------------------------------------

e2e_log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
e2e_err() { printf '[e2e %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- kernel and tools ------------------------------------------------------------

# Print the version of Debian's kernel image to boot.  Never hard-coded:
# VIRGO_E2E_KVER, else what linux-image-amd64 depends on, else the newest
# /boot/vmlinuz-* that has an e1000 module.
e2e_kver() {
	local dep ver v
	if [ -n "${VIRGO_E2E_KVER:-}" ]; then
		echo "$VIRGO_E2E_KVER"
		return 0
	fi
	dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
		grep -o 'linux-image-[^ ,]*' | head -n1 || true)
	ver=${dep#linux-image-}
	if [ -n "$ver" ] && [ -e "/boot/vmlinuz-$ver" ]; then
		echo "$ver"
		return 0
	fi
	ver=
	for v in /boot/vmlinuz-*; do
		[ -e "$v" ] || continue
		v=${v#/boot/vmlinuz-}
		[ -d "/lib/modules/$v/kernel/drivers/net/ethernet/intel/e1000" ] &&
			ver=$v
	done
	if [ -z "$ver" ]; then
		e2e_err "no bootable Debian kernel: install linux-image-amd64 (scripts/deps.sh)"
		return 1
	fi
	echo "$ver"
}

# e2e_build_modules LOG: build the modules against the headers of the kernel
# the nodes boot (make -C <repo> KDIR=/lib/modules/<kver>/build), output to
# LOG; on failure show its tail.
e2e_build_modules() {
	local log=$1 kver kdir
	kver=$(e2e_kver) || return 1
	kdir=/lib/modules/$kver/build
	if [ ! -e "$kdir/Makefile" ]; then
		e2e_err "no headers for $kver at $kdir (install linux-headers-$kver: scripts/deps.sh)"
		return 1
	fi
	e2e_log "building the modules against $kdir"
	if ! make -C "$E2E_REPO" KDIR="$kdir" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		e2e_err "module build failed (full log: $log)"
		return 1
	fi
}

# e2e_build_dkms DIR: virgo.ko and virgo_clouddrec.ko as DKMS builds them
# for the nodes' kernel, from the tree the virgo-dkms package ships (make
# install-dkms-src), in scratch dkms/source/install trees under DIR
# (--dkmstree, --sourcetree, --installtree, --no-depmod: nothing under
# /var/lib/dkms, /usr/src or /lib/modules; signed with a throw-away key,
# as Debian's dkms signs), then examples/virgo_example.ko built as a third
# party would: against the installed <linux/virgo.h> (make install-header)
# and the Module.symvers DKMS keeps.  Leaves DIR/virgo.ko,
# DIR/virgo_clouddrec.ko, DIR/Module.symvers, DIR/virgo_example.ko and
# DIR/*.log, and sets VIRGO_E2E_MODULES to the two modules (cluster_up
# puts them into /virgo/).  With VIRGO_E2E_DKMS_DIR set (run.sh --dkms
# built them once for every scenario) it only uses that directory.
e2e_build_dkms() {
	local dir=$1 kver kdir version arch t0 m rc=0
	if [ -n "${VIRGO_E2E_DKMS_DIR:-}" ] && [ "$dir" != "$VIRGO_E2E_DKMS_DIR" ]; then
		dir=$VIRGO_E2E_DKMS_DIR
		e2e_log "DKMS-built modules from $dir"
	else
		kver=$(e2e_kver) || return 1
		kdir=/lib/modules/$kver/build
		version=$(cat "$E2E_REPO/VERSION")
		arch=$(uname -m)
		command -v dkms >/dev/null ||
			{ e2e_err "no dkms (scripts/deps.sh)"; return 1; }
		rm -rf "$dir"
		mkdir -p "$dir/src" "$dir/dkms" "$dir/inst/$kver" "$dir/ex" || return 1
		t0=$SECONDS
		e2e_log "DKMS build of virgo $version for $kver (scratch trees in $dir)"
		{
			make -s -C "$E2E_REPO" install-dkms-src KDIR="$kdir" \
				DESTDIR="$dir/src" DKMS_SRCDIR="/virgo-$version" &&
			make -s -C "$E2E_REPO" install-header KDIR="$kdir" \
				DESTDIR="$dir" KINCLUDEDIR=/include &&
			mok_signing_key=$dir/mok.key mok_certificate=$dir/mok.der \
				dkms add -m virgo -v "$version" --dkmstree "$dir/dkms" \
				--sourcetree "$dir/src" --installtree "$dir/inst" \
				--no-depmod &&
			mok_signing_key=$dir/mok.key mok_certificate=$dir/mok.der \
				dkms install -m virgo -v "$version" -k "$kver" \
				--dkmstree "$dir/dkms" --sourcetree "$dir/src" \
				--installtree "$dir/inst" --no-depmod
		} >"$dir/dkms.log" 2>&1 || rc=1
		for m in virgo virgo_clouddrec; do
			cp "$dir/inst/$kver/updates/dkms/$m.ko" "$dir/$m.ko" 2>/dev/null ||
				rc=1
		done
		cp "$dir/dkms/virgo/kernel-$kver-$arch/Module.symvers" \
			"$dir/Module.symvers" 2>/dev/null || rc=1
		if [ $rc -ne 0 ]; then
			find "$dir/dkms" -name make.log -exec cat {} + >>"$dir/dkms.log" 2>/dev/null
			tail -n 30 "$dir/dkms.log" >&2
			e2e_err "DKMS build failed (full log: $dir/dkms.log)"
			return 1
		fi
		cp "$E2E_REPO/examples/virgo_example.c" "$E2E_REPO/examples/Kbuild" \
			"$dir/ex/"
		if ! make -C "$kdir" M="$dir/ex" VIRGO_INCLUDE="$dir/include" \
			KBUILD_EXTRA_SYMBOLS="$dir/Module.symvers" modules \
			>"$dir/example.log" 2>&1; then
			tail -n 20 "$dir/example.log" >&2
			e2e_err "examples/virgo_example.c against the DKMS build failed"
			return 1
		fi
		cp "$dir/ex/virgo_example.ko" "$dir/virgo_example.ko"
		# Only the results stay: no module tree, no build objects.
		rm -rf "$dir/src" "$dir/dkms" "$dir/inst" "$dir/ex" "$dir/mok.key"
		e2e_log "DKMS build and example: $((SECONDS - t0)) s"
	fi
	VIRGO_E2E_MODULES="$dir/virgo.ko $dir/virgo_clouddrec.ko"
}

# e2e_build_virgoctl OUT: virgoctl (tools/virgoctl, with libvirgo and
# libcrypto) linked fully static for the nodes' busybox root, built into
# OUT, outside the tree.  The linker's notes about dlopen/getaddrinfo in
# static libcrypto go to OUT.log (virgoctl resolves no host names).
e2e_build_virgoctl() {
	local out=$1 r=$E2E_REPO
	if ! gcc -static -O2 -Wall -Wextra -Werror -I"$r/include/uapi" \
		-I"$r/tools/libvirgo" -I"$r/include" -o "$out" \
		"$r/tools/virgoctl/virgoctl.c" "$r/tools/virgoctl/vc_remote.c" \
		"$r/tools/libvirgo/libvirgo.c" -lcrypto >"$out.log" 2>&1; then
		cat "$out.log" >&2
		e2e_err "cannot build tools/virgoctl (libssl-dev: scripts/deps.sh)"
		return 1
	fi
}

# Check that everything the harness needs is there; say what is missing.
e2e_check_tools() {
	local t missing=()
	if [ "$(id -u)" -ne 0 ]; then
		e2e_err "the cluster harness needs root (network namespace, taps)"
		return 1
	fi
	for t in qemu-system-x86_64 ip python3 cpio modinfo timeout; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		e2e_err "missing tools: ${missing[*]} (run scripts/deps.sh)"
		return 1
	fi
	if [ ! -c /dev/net/tun ]; then
		e2e_err "/dev/net/tun missing: cannot create tap devices"
		return 1
	fi
}

# --- scenario bookkeeping ---------------------------------------------------

# e2e_begin NAME: set up the results dir, tee all output into it, install
# the cleanup traps.
e2e_begin() {
	E2E_NAME=$1
	E2E_T0=$SECONDS
	E2E_RESULTS=${VIRGO_E2E_RESULTS_DIR:-$E2E_REPO/build/e2e/$E2E_NAME-$(date +%Y%m%d-%H%M%S)}
	mkdir -p "$E2E_RESULTS" || { e2e_err "cannot create $E2E_RESULTS"; exit 1; }
	E2E_RESULTS=$(cd "$E2E_RESULTS" && pwd)
	# Copy all output into output.log.  tee ignores INT/TERM so that the
	# cleanup's messages still get through when the whole process group is
	# signalled, and it is not our child (through a fifo, not a process
	# substitution): a bare "wait" in a scenario must not wait for it.
	local fifo=$E2E_RESULTS/.output.fifo
	rm -f "$fifo"
	if mkfifo "$fifo"; then
		(trap '' INT TERM HUP; exec tee -a "$E2E_RESULTS/output.log" <"$fifo" &)
		exec >"$fifo" 2>&1
		rm -f "$fifo"
	fi
	_e2e_traps
	e2e_log "scenario $E2E_NAME, results in $E2E_RESULTS"
}

e2e_step() { printf '\n== %s\n' "$*"; }

e2e_ok() {
	E2E_PASS=$((E2E_PASS + 1))
	printf '  ok    %s\n' "$*"
}

e2e_fail() {
	E2E_FAILED+=("$*")
	printf '  FAIL  %s\n' "$*"
}

# expect DESC CMD...: CMD must succeed.  Its output is shown on failure (and
# with VIRGO_E2E_VERBOSE=1).
expect() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		e2e_ok "$desc"
		[ "${VIRGO_E2E_VERBOSE:-0}" = 1 ] && [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/        | /'
		return 0
	fi
	e2e_fail "$desc (exit $rc)"
	[ -n "$out" ] && printf '%s\n' "$out" | tail -n 40 | sed 's/^/        | /'
	return 1
}

# expect_fail DESC CMD...: CMD must fail (non-zero exit).
expect_fail() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		e2e_ok "$desc (exit $rc, as expected)"
		return 0
	fi
	e2e_fail "$desc (succeeded, failure expected)"
	[ -n "$out" ] && printf '%s\n' "$out" | tail -n 40 | sed 's/^/        | /'
	return 1
}

# e2e_end: check the node logs, tear the cluster down, print the summary and
# exit 0 (all passed) or 1.
e2e_end() {
	local total
	if [ "$E2E_DOWN" = 0 ]; then
		e2e_step "node logs"
		_e2e_fetch_dmesg
		# shellcheck disable=SC2119 # no arguments: all nodes
		if cluster_check_logs; then
			e2e_ok "no Oops/BUG/WARNING/KASAN/lockdep/stall in any node log"
		else
			e2e_fail "kernel problems in node logs (see above)"
		fi
	fi
	cluster_down
	total=$((E2E_PASS + ${#E2E_FAILED[@]}))
	echo
	if [ ${#E2E_FAILED[@]} -eq 0 ] && [ "$E2E_PASS" -gt 0 ]; then
		printf 'PASS %s: %d checks, %ds, results in %s\n' \
			"$E2E_NAME" "$total" $((SECONDS - E2E_T0)) "$E2E_RESULTS"
		exit 0
	fi
	[ "$E2E_PASS" -eq 0 ] && [ ${#E2E_FAILED[@]} -eq 0 ] &&
		E2E_FAILED+=("no checks were run")
	printf 'FAIL %s: %d of %d checks failed, %ds, results in %s\n' \
		"$E2E_NAME" ${#E2E_FAILED[@]} "$total" $((SECONDS - E2E_T0)) "$E2E_RESULTS"
	local f
	for f in "${E2E_FAILED[@]}"; do
		printf '  - %s\n' "$f"
	done
	exit 1
}

e2e_abort() {
	e2e_fail "$*"
	e2e_end
}

# --- cleanup -------------------------------------------------------------------

_e2e_traps() {
	[ "$E2E_TRAPS" = 1 ] && return 0
	E2E_TRAPS=1
	trap '_e2e_on_exit' EXIT
	trap '_e2e_on_signal INT 130' INT
	trap '_e2e_on_signal TERM 143' TERM
	trap '_e2e_on_signal HUP 129' HUP
}

_e2e_on_exit() {
	local rc=$?
	trap '' PIPE
	[ "$E2E_DOWN" = 0 ] && cluster_down
	exit $rc
}

_e2e_on_signal() {
	trap '' PIPE INT TERM HUP
	e2e_err "interrupted by SIG$1; tearing the cluster down"
	cluster_down
	trap - EXIT
	exit "$2"
}

# Runs detached (setsid) next to the harness: if the harness dies without
# cleaning up (SIGKILL), kill its qemu processes and delete its netns and
# work dir.  Exits as soon as the work dir is gone (normal teardown).
_e2e_reaper() {
	local parent=$1 work=$2 ns=$3 f pid
	while [ -d "$work" ] && kill -0 "$parent" 2>/dev/null; do
		sleep 2
	done
	[ -d "$work" ] || exit 0
	for f in "$work"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		# Only a qemu of this very run: its command line names the work dir.
		if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
			grep -qF -- "$work/"; then
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	sleep 1
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}

# True while process $1 exists and is not a zombie (qemu is not our child,
# so it is reaped by init, or by nobody in some containers).
_e2e_pid_alive() {
	local st
	[ -n "${1:-}" ] && st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}

_e2e_fetch_dmesg() {
	local i
	# Nodes that never answered would only make us wait.
	[ "$E2E_READY" = 1 ] || return 0
	for ((i = 0; i < E2E_N; i++)); do
		node_alive "$i" || continue
		E2E_TRANSCRIPT='' node_run -t 15 "$i" dmesg >"$E2E_NODEDIR/node$i.dmesg" 2>/dev/null ||
			e2e_err "node$i: could not fetch dmesg"
		# Frames the node's command loop dropped as mangled (diagnosis).
		E2E_TRANSCRIPT='' node_run -t 15 "$i" "cat /tmp/virgo-ctl.bad 2>/dev/null" \
			>"$E2E_NODEDIR/node$i.ctl-bad.log" 2>/dev/null
		[ -s "$E2E_NODEDIR/node$i.ctl-bad.log" ] || rm -f "$E2E_NODEDIR/node$i.ctl-bad.log"
	done
}

# cluster_down: stop every qemu of this cluster, delete taps, bridge, netns
# and the work dir.  Safe to call twice and from traps.
cluster_down() {
	local i pid t
	[ "$E2E_DOWN" = 1 ] && return 0
	E2E_DOWN=1
	for ((i = 0; i < E2E_N; i++)); do
		pid=${E2E_PID[i]:-}
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done
	for ((i = 0; i < E2E_N; i++)); do
		pid=${E2E_PID[i]:-}
		[ -n "$pid" ] || continue
		for ((t = 0; t < 50; t++)); do
			_e2e_pid_alive "$pid" || break
			sleep 0.1
		done
		_e2e_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
		E2E_DEAD[i]=1
	done
	if [ -n "$E2E_NETNS" ]; then
		for ((i = 0; i < E2E_N; i++)); do
			ip -n "$E2E_NETNS" link del "tap$i" 2>/dev/null
		done
		ip -n "$E2E_NETNS" link del br0 2>/dev/null
		ip netns del "$E2E_NETNS" 2>/dev/null ||
			e2e_err "could not delete netns $E2E_NETNS"
	fi
	if [ -n "$E2E_WORK" ] && [ -d "$E2E_WORK" ]; then
		if [ "${VIRGO_E2E_KEEP:-0}" = 1 ]; then
			e2e_log "keeping work dir $E2E_WORK"
		else
			rm -rf "$E2E_WORK"
		fi
	fi
	e2e_log "cluster down (netns $E2E_NETNS deleted, ${E2E_N} qemu stopped)"
}

# --- bring-up ------------------------------------------------------------------

cluster_add_file() {
	local src=$1 dest=${2:-}
	if [ ! -e "$src" ]; then
		e2e_err "cluster_add_file: no such file: $src"
		return 1
	fi
	E2E_FILES+=("$src${dest:+:$dest}")
}

# cluster_add_prog SRC DEST: a dynamically linked program of the host at
# DEST in the guests, with the shared libraries and loader ldd lists for
# it at their host paths.  DEST should not be a busybox applet's path
# (copying onto its symlink would overwrite busybox).
cluster_add_prog() {
	local src=$1 dest=$2 lib
	[ -x "$src" ] || { e2e_err "cluster_add_prog: no program $src"; return 1; }
	cluster_add_file "$(readlink -f "$src")" "$dest" || return 1
	for lib in $(LC_ALL=C ldd "$src" |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		cluster_add_file "$(readlink -f "$lib")" "$lib" || return 1
	done
}

# _e2e_kmod_deps KVER MOD...: MOD and its dependencies, dependencies first.
_e2e_kmod_deps() {
	local kver=$1 m d
	shift
	for m in "$@"; do
		for d in $(modinfo -k "$kver" -F depends "$m" | tr ',' ' '); do
			_e2e_kmod_deps "$kver" "$d"
		done
		echo "$m"
	done
}

# cluster_add_kmods KVER MOD...: ship MOD... of the nodes' kernel with
# their dependencies to /virgo/kmod/NAME.ko (decompressed: busybox insmod
# reads plain .ko only); E2E_KMODS lists the shipped ones in load order
# (built-in ones are left out; kmods_cmd loads them).
E2E_KMODS=
cluster_add_kmods() {
	local kver=$1 out=$E2E_RESULTS/kmod m path
	shift
	E2E_KMODS=
	mkdir -p "$out" || return 1
	for m in $(_e2e_kmod_deps "$kver" "$@" | awk '!seen[$0]++'); do
		path=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || return 1
		case "$path" in
		*.ko) cp "$path" "$out/$m.ko" ;;
		*.ko.xz) xz -dc "$path" >"$out/$m.ko" ;;
		*.ko.zst) zstd -dcq "$path" >"$out/$m.ko" ;;
		*) continue ;;	# built in
		esac || return 1
		cluster_add_file "$out/$m.ko" "/virgo/kmod/$m.ko" || return 1
		E2E_KMODS+=" $m"
	done
}

# kmods_cmd MOD...: the guest command that loads shipped modules in this
# order (one already loaded is fine).
kmods_cmd() {
	echo "for m in $*; do insmod /virgo/kmod/\$m.ko || grep -q \"^\$(echo \$m | tr - _) \" /proc/modules || exit 1; done"
}

# Make the work dir: short enough for unix socket paths (108 bytes).
_e2e_mkwork() {
	local base
	base=${VIRGO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virgo}/e2e
	if mkdir -p "$base" 2>/dev/null && [ ${#base} -lt 70 ]; then
		E2E_WORK=$(mktemp -d "$base/run.XXXXXX") || return 1
	else
		E2E_WORK=$(mktemp -d /tmp/virgo-e2e.XXXXXX) || return 1
	fi
}

# Put the project modules into the initramfs; refuse ones built for another
# kernel (they would not load, and the error would be confusing).
_e2e_modules() {
	local kver=$1 m vm mods
	E2E_MODFILES=()
	mods=${VIRGO_E2E_MODULES:-$E2E_REPO/virgo.ko $E2E_REPO/virgo_clouddrec.ko}
	if [ -z "${VIRGO_E2E_MODULES:-}" ] && [ -n "${VIRGO_E2E_DKMS_DIR:-}" ]; then
		mods="$VIRGO_E2E_DKMS_DIR/virgo.ko $VIRGO_E2E_DKMS_DIR/virgo_clouddrec.ko"
	fi
	for m in $mods; do
		if [ ! -e "$m" ]; then
			e2e_err "module $m not built (make KDIR=/lib/modules/$kver/build); nodes boot without it"
			continue
		fi
		vm=$(modinfo -F vermagic "$m" 2>/dev/null)
		if [ "${vm%% *}" != "$kver" ]; then
			e2e_err "$m is built for '${vm%% *}', not $kver: run make KDIR=/lib/modules/$kver/build"
			return 1
		fi
		E2E_MODFILES+=("$m")
	done
}

_e2e_netns_up() {
	local n=$1 i
	E2E_NETNS=virgo-e2e-$$
	if ip netns list | grep -qw "^$E2E_NETNS"; then
		e2e_err "netns $E2E_NETNS already exists (stale? scripts/cluster.sh cleanup)"
		E2E_NETNS=
		return 1
	fi
	ip netns add "$E2E_NETNS" || { E2E_NETNS=; return 1; }
	ip -n "$E2E_NETNS" link set lo up
	# The namespace's own stack stays silent on the bridge: no IPv6, no
	# address, no route.
	ip netns exec "$E2E_NETNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
	# No multicast snooping: IPv6 neighbour discovery needs no querier.
	ip -n "$E2E_NETNS" link add br0 type bridge stp_state 0 forward_delay 0 \
		mcast_snooping 0 || return 1
	ip -n "$E2E_NETNS" link set br0 up || return 1
	for ((i = 0; i < n; i++)); do
		ip -n "$E2E_NETNS" tuntap add dev "tap$i" mode tap &&
			ip -n "$E2E_NETNS" link set "tap$i" master br0 &&
			ip -n "$E2E_NETNS" link set "tap$i" up || return 1
	done
}

_e2e_qemu_start() {
	local i=$1 kver=$2 mac
	mac=$(printf '52:54:00:99:%02x:%02x' $((i / 256)) $((i % 256)))
	# -nodefaults: no VGA, no default serial/monitor on stdio.  ttyS0 is
	# the console (to a file), ttyS1 the command channel (unix socket).
	# Started from a subshell so that qemu is not a child of the scenario
	# shell (a bare "wait" in a scenario would wait for it forever).
	# init_on_alloc=0: Debian's kernel zeroes every allocation by default,
	# which would hide a server that lends a chunk without zeroing it; the
	# scenarios' zero checks only mean something without it.
	# no_timer_check: on a loaded host TCG can be too slow for the IO-APIC
	# timer check at boot, which then panics ("IO-APIC + timer doesn't
	# work"; seen twice in one bench-cluster run at load 12 on 2 cores).
	E2E_PID[i]=$( (ip netns exec "$E2E_NETNS" qemu-system-x86_64 \
		-name "virgo-e2e-$$-node$i" \
		-accel tcg -cpu max -smp "$E2E_SMP" -m "$E2E_MEM" \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "/boot/vmlinuz-$kver" -initrd "$E2E_WORK/initramfs.cpio" \
		-append "console=ttyS0,115200 ignore_loglevel panic=1 init_on_alloc=0 no_timer_check e2e.node=$i e2e.ip=$(node_ip "$i")/24 e2e.ip6=$(node_ip6 "$i")/64 e2e.debug=${VIRGO_E2E_DEBUG:-0}" \
		-serial "file:$E2E_NODEDIR/node$i.console.log" \
		-chardev "socket,id=ctl,path=$E2E_WORK/n$i.ctl,server=on,wait=off" \
		-serial chardev:ctl \
		-monitor "unix:$E2E_WORK/n$i.mon,server=on,wait=off" \
		-netdev "tap,id=net0,ifname=tap$i,script=no,downscript=no" \
		-device "e1000,netdev=net0,mac=$mac" \
		-pidfile "$E2E_WORK/n$i.pid" \
		</dev/null >"$E2E_NODEDIR/node$i.qemu.log" 2>&1 & echo $!))
	# ip netns exec execs qemu: $! is qemu's pid.
	E2E_DEAD[i]=0
}

# Wait until every node answers on its command channel, failing early when a
# qemu exits.
_e2e_wait_ready() {
	local i rc pending=() ping=() left
	for ((i = 0; i < E2E_N; i++)); do
		python3 "$E2E_NODECTL" ping "$E2E_WORK/n$i.ctl" "$E2E_BOOT_TIMEOUT" \
			>/dev/null 2>"$E2E_WORK/n$i.ping.err" &
		ping[i]=$!
		pending+=("$i")
	done
	while [ ${#pending[@]} -gt 0 ]; do
		left=()
		for i in "${pending[@]}"; do
			if ! kill -0 "${ping[i]}" 2>/dev/null; then
				wait "${ping[i]}"
				rc=$?
				if [ $rc -ne 0 ]; then
					e2e_err "node$i did not come up: $(cat "$E2E_WORK/n$i.ping.err")"
					_e2e_boot_failed "$i" "${ping[@]}"
					return 1
				fi
			elif ! _e2e_pid_alive "${E2E_PID[i]}"; then
				e2e_err "node$i: qemu exited during boot: $(tail -n 5 "$E2E_NODEDIR/node$i.qemu.log")"
				E2E_DEAD[i]=1
				_e2e_boot_failed "$i" "${ping[@]}"
				return 1
			else
				left+=("$i")
			fi
		done
		pending=("${left[@]}")
		[ ${#pending[@]} -gt 0 ] && sleep 0.5
	done
	return 0
}

_e2e_boot_failed() {
	local i=$1 p
	shift
	for p in "$@"; do
		kill "$p" 2>/dev/null
	done
	wait "$@" 2>/dev/null
	e2e_err "last lines of node$i console ($E2E_NODEDIR/node$i.console.log):"
	tail -n 25 "$E2E_NODEDIR/node$i.console.log" 2>/dev/null | sed 's/^/    /' >&2
}

# cluster_up N: boot N nodes; returns when all of them answer commands.
cluster_up() {
	local n=${1:-}
	local kver i t0=$SECONDS
	if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 200 ]; then
		e2e_err "cluster_up: node count must be 1..200, got '$n'"
		return 1
	fi
	if [ "$E2E_DOWN" = 0 ]; then
		e2e_err "cluster_up: a cluster is already up"
		return 1
	fi
	_e2e_settings
	e2e_check_tools || return 1
	kver=$(e2e_kver) || return 1
	if [ ! -r "/boot/vmlinuz-$kver" ] || [ ! -d "/lib/modules/$kver" ]; then
		e2e_err "kernel $kver: /boot/vmlinuz-$kver or /lib/modules/$kver missing (install linux-image-$kver)"
		return 1
	fi
	[ -n "$E2E_RESULTS" ] || e2e_begin "$E2E_NAME"
	_e2e_traps
	# Node logs of the first cluster go to the results dir itself, those of
	# a second cluster_up in the same scenario to cluster2/, ...
	E2E_CLUSTERS=$((E2E_CLUSTERS + 1))
	E2E_NODEDIR=$E2E_RESULTS
	[ "$E2E_CLUSTERS" -gt 1 ] && E2E_NODEDIR=$E2E_RESULTS/cluster$E2E_CLUSTERS
	mkdir -p "$E2E_NODEDIR" || return 1
	E2E_READY=0
	_e2e_mkwork || { e2e_err "cannot create a work dir"; return 1; }
	E2E_DOWN=0
	E2E_N=$n
	E2E_PID=()
	E2E_DEAD=()

	_e2e_modules "$kver" || return 1
	if ! "$E2E_LIB_DIR/mkinitramfs.sh" -o "$E2E_WORK/initramfs.cpio" \
		-k "$kver" "${E2E_MODFILES[@]/#/-f}" "${E2E_FILES[@]/#/-f}"; then
		e2e_err "building the initramfs failed"
		return 1
	fi

	_e2e_netns_up "$n" || { e2e_err "network namespace setup failed"; return 1; }
	# Detached, and not our child: a bare "wait" in a scenario must not
	# wait for it.
	(setsid bash -c "$(declare -f _e2e_reaper); _e2e_reaper \"\$@\"" reaper \
		"$$" "$E2E_WORK" "$E2E_NETNS" </dev/null >/dev/null 2>&1 &)

	e2e_log "booting $n nodes (kernel $kver, TCG, $E2E_SMP vCPU, $E2E_MEM each, netns $E2E_NETNS)"
	for ((i = 0; i < n; i++)); do
		_e2e_qemu_start "$i" "$kver"
	done
	_e2e_wait_ready || return 1
	E2E_READY=1
	e2e_log "$n nodes up in $((SECONDS - t0))s"
}

# --- node operations ----------------------------------------------------------------

_e2e_idx() {
	if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || [ "$1" -ge "$E2E_N" ]; then
		e2e_err "bad node index '${1:-}' (cluster has $E2E_N nodes)"
		return 1
	fi
}

node_count() { echo "$E2E_N"; }

node_ip() { echo "$E2E_SUBNET.$((10 + $1))"; }

node_ip6() { echo "$E2E_SUBNET6:$((10 + $1))"; }

node_log() { echo "$E2E_NODEDIR/node$1.console.log"; }

node_alive() {
	_e2e_idx "$1" || return 1
	[ "${E2E_DEAD[$1]:-1}" = 0 ] && _e2e_pid_alive "${E2E_PID[$1]}"
}

# node_run [-t SECS] IDX CMD...
node_run() {
	local secs=$E2E_CMD_TIMEOUT idx
	if [ "${1:-}" = -t ]; then
		secs=$2
		shift 2
	fi
	idx=${1:-}
	shift
	_e2e_idx "$idx" || return 255
	if ! node_alive "$idx"; then
		e2e_err "node$idx is not running"
		return 255
	fi
	[ "${VIRGO_E2E_VERBOSE:-0}" = 1 ] && e2e_log "node$idx\$ $*" >&2
	NODECTL_LOG=${E2E_TRANSCRIPT-$E2E_NODEDIR/node$idx.commands.log} \
		python3 "$E2E_NODECTL" run "$E2E_WORK/n$idx.ctl" "$secs" "$*"
}

# node_spawn IDX NAME CMD...: start CMD in the background on the node; its
# output and status land in /tmp/job.NAME.{out,rc} there.
node_spawn() {
	local idx=$1 name=$2 j
	shift 2
	j=/tmp/job.$name
	node_run "$idx" "rm -f $j.out $j.rc; ( ( $* ) >$j.out 2>&1; echo \$? >$j.rc.tmp; mv $j.rc.tmp $j.rc ) </dev/null >/dev/null 2>&1 &"
}

# node_wait [-t SECS] IDX NAME: wait for a node_spawn job, print its output,
# return its status (124 when it did not finish in time).
node_wait() {
	local secs=$E2E_CMD_TIMEOUT idx name j
	if [ "${1:-}" = -t ]; then
		secs=$2
		shift 2
	fi
	idx=$1
	name=$2
	j=/tmp/job.$name
	node_run -t $((secs + 5)) "$idx" "i=0; while [ ! -e $j.rc ] && [ \$i -lt $((secs * 10)) ]; do sleep 0.1; i=\$((i+1)); done; cat $j.out 2>/dev/null; [ -e $j.rc ] || { echo 'job $name still running after ${secs}s' >&2; exit 124; }; exit \$(cat $j.rc)"
}

# node_ping IDX IP [COUNT]: ping IP from node IDX; succeeds when at least
# one reply comes back (busybox ping fails on any loss).  Bounded: COUNT
# (default 3) probes, 2 s each.
node_ping() {
	local idx=$1 ip=$2 count=${3:-3}
	node_run -t $((count * 3 + 10)) "$idx" \
		"out=\$(ping -c $count -W 2 $ip 2>&1); echo \"\$out\"; echo \"\$out\" | grep -q 'bytes from'"
}

node_kill() {
	_e2e_idx "$1" || return 1
	e2e_log "killing node$1 (qemu pid ${E2E_PID[$1]})"
	local t
	kill -KILL "${E2E_PID[$1]}" 2>/dev/null
	for ((t = 0; t < 50; t++)); do
		_e2e_pid_alive "${E2E_PID[$1]}" || break
		sleep 0.1
	done
	E2E_DEAD[$1]=1
	return 0
}

link_down() {
	_e2e_idx "$1" || return 1
	e2e_log "link of node$1 down"
	ip -n "$E2E_NETNS" link set "tap$1" down
}

link_up() {
	_e2e_idx "$1" || return 1
	e2e_log "link of node$1 up"
	ip -n "$E2E_NETNS" link set "tap$1" up
}

node_monitor() {
	local idx=$1
	shift
	_e2e_idx "$idx" || return 1
	python3 "$E2E_NODECTL" monitor "$E2E_WORK/n$idx.mon" "$*"
}

# --- log checks ------------------------------------------------------------------

# Lines that mean a kernel problem.  The taint messages of an unsigned
# out-of-tree module are expected and not matched.
E2E_LOG_BAD='Oops|BUG:|WARNING:|KASAN|UBSAN|KFENCE|kmemleak|general protection|Call Trace|Kernel panic|kernel BUG|soft lockup|hard LOCKUP|blocked for more than|rcu.*(stall|self-detected)|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|list_(add|del) corruption|refcount_t:|double free|use-after-free|stack-protector|Unable to handle|unable to handle|segfault at|invalid opcode'

# cluster_check_logs [IDX...]: print every offending line (with the node) and
# return 1 if there is one.
# shellcheck disable=SC2120 # arguments are optional
cluster_check_logs() {
	local files=() i f bad=0 hits
	if [ $# -eq 0 ]; then
		# Every node of every cluster this scenario booted.
		for f in "$E2E_RESULTS"/node*.console.log "$E2E_RESULTS"/node*.dmesg \
			"$E2E_RESULTS"/cluster*/node*.console.log "$E2E_RESULTS"/cluster*/node*.dmesg; do
			[ -e "$f" ] && files+=("$f")
		done
	else
		for i in "$@"; do
			files+=("$E2E_NODEDIR/node$i.console.log" "$E2E_NODEDIR/node$i.dmesg")
		done
	fi
	for f in "${files[@]}"; do
		[ -s "$f" ] || continue
		hits=$(grep -aE -- "$E2E_LOG_BAD" "$f" | grep -av '^virgo-init:' |
			{ if [ -n "${VIRGO_E2E_LOG_ALLOW:-}" ]; then grep -avE -- "$VIRGO_E2E_LOG_ALLOW"; else cat; fi; })
		if [ -n "$hits" ]; then
			bad=1
			e2e_err "kernel problem in ${f#"$E2E_RESULTS"/}:"
			printf '%s\n' "$hits" | head -n 20 | sed 's/^/    /' >&2
		fi
	done
	return $bad
}
