#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make clouddrecd-check: virgo-clouddrecd built with ASan + UBSan (+ LSan)
# on 127.0.0.1 (a port the kernel picks), the conformance suite against it
# without a key and with one (both with --orphan-timeout 2: the session
# resumption cases, orphan expiry included), once more against a daemon
# with --orphan-timeout 0 and --no-discard (RESUME and DISCARD never
# granted: those cases skip, PROTO without them is checked), a SIGTERM with an orphan left (freed), SIGTERM: the daemon must exit 0 within
# 15 s with nothing lent and no sanitizer or leak report in its log; a
# key file others can read must be refused; virgoctl status --peer against
# it, without and with the key (tests/remote/virgoctl_peer_test.sh: its
# counters equal the daemon's stats file, no/wrong/exposed key refused
# with exit 1); then the daemon's fuzzer for FUZZ_TIME seconds (default
# 25).  Last line: "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
fuzz_time=${FUZZ_TIME:-25}
work=$(mktemp -d "${TMPDIR:-/tmp}/virgo-cd-check.XXXXXX")
daemon_pid=
passed=0
failed=0

cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -KILL "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT

ok() { echo "ok $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

make -s -C "$here" asan || exit 1
make -s -C "$top/tests/conformance" asan || exit 1
make -s -C "$top/tools/virgoctl" || exit 1
daemon=$here/virgo-clouddrecd-asan
suite=$top/tests/conformance/virgo-conformance-asan

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# start NAME ARGS...: the daemon in the background; sets $port.
start() {
	local name=$1 i
	shift
	rm -f "$work/stats"
	"$daemon" --listen 127.0.0.1:0 --threads 2 --max-memory 64M \
		--handshake-timeout 2 --orphan-timeout "$orphan_timeout" \
		--stats-file "$work/stats" "$@" \
		2>"$work/$name.log" &
	daemon_pid=$!
	port=
	for i in $(seq 100); do
		port=$(awk '/^port /{print $2}' "$work/stats" 2>/dev/null)
		[ -n "$port" ] && return 0
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$work/$name.log"
	return 1
}

# peer_test NAME [KEYFILE]: virgoctl status --peer against the daemon,
# once its stats file shows no orphan left by the suite (orphans expire
# after --orphan-timeout) and nothing lent by one, or by the orphan the
# caller keeps on purpose (then lent_bytes is what the test compares).
peer_test() {
	local name=$1 i
	shift
	for i in $(seq 100); do
		grep -q "^orphans ${want_orphans:-0}\$" "$work/stats" && break
		sleep 0.1
	done
	if VIRGOCTL=$top/tools/virgoctl/virgoctl TMPDIR=$work \
		sh "$top/tests/remote/virgoctl_peer_test.sh" "127.0.0.1:$port" \
		"$work/stats" "$@" >"$work/$name.out" 2>&1; then
		ok "$name: $(tail -n 1 "$work/$name.out")"
	else
		cat "$work/$name.out"
		bad "$name: virgoctl status --peer"
	fi
}

# stop NAME: SIGTERM, exit 0 within 15 s, clean log, nothing lent.
stop() {
	local name=$1 rc i
	kill -TERM "$daemon_pid"
	for i in $(seq 150); do
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$daemon_pid" 2>/dev/null; then
		bad "$name: still running 15 s after SIGTERM"
		return
	fi
	wait "$daemon_pid"
	rc=$?
	daemon_pid=
	if grep -E -q 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY:' \
		"$work/$name.log"; then
		cat "$work/$name.log"
		bad "$name: sanitizer report"
	elif [ "$rc" -ne 0 ]; then
		cat "$work/$name.log"
		bad "$name: exit $rc after SIGTERM"
	elif ! grep -q '^lent_bytes 0$' "$work/stats" ||
	     ! grep -q '^sessions 0$' "$work/stats" ||
	     ! grep -q '^orphans 0$' "$work/stats"; then
		cat "$work/stats"
		bad "$name: stats file after exit"
	else
		ok "$name: SIGTERM: exit 0, nothing lent, no sanitizer report"
	fi
}

# suite NAME ARGS...
suite() {
	local name=$1
	shift
	if timeout 300 "$suite" --handshake-timeout 2 \
		--orphan-timeout "$orphan_timeout" "$@" 127.0.0.1 "$port" \
		>"$work/$name.out" 2>&1; then
		ok "$name: $(tail -n 1 "$work/$name.out")"
	else
		cat "$work/$name.out"
		bad "$name: conformance suite"
	fi
}

orphan_timeout=2
if start nokey; then
	suite conformance-nokey
	peer_test virgoctl-peer-nokey
	stop nokey
else
	bad "nokey: daemon did not start"
fi

# A session left as an orphan when SIGTERM comes: freed, exit 0.  The
# client: HELLO offering RESUME, ALLOC of 4096 bytes, connection dropped.
leave_orphan() {
	python3 - "$1" <<'PY'
import socket, struct, sys
def frame(op, pl):
    return struct.pack("<IBBHIIQ", 0x4f475256, 1, op, 0, len(pl), 0, op) + pl
def reply(s):
    hdr = b""
    while len(hdr) < 24:
        hdr += s.recv(24 - len(hdr))
    n, st = struct.unpack_from("<II", hdr, 8)
    pl = b""
    while len(pl) < n:
        pl += s.recv(n - len(pl))
    return st, pl
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(frame(1, struct.pack("<HHI", 1, 1, 1) + bytes(32)))
st, pl = reply(s)
assert st == 0 and len(pl) == 112, (st, len(pl))
s.sendall(frame(3, struct.pack("<III", 1, 0, 4096)))
st, pl = reply(s)
assert st == 0 and len(pl) == 16, (st, len(pl))
s.close()
PY
}

orphan_timeout=600
if start orphan; then
	if leave_orphan "$port" >"$work/orphan.out" 2>&1; then
		for i in $(seq 30); do
			grep -q '^orphans 1$' "$work/stats" && break
			sleep 0.1
		done
		if grep -q '^orphans 1$' "$work/stats" &&
		   grep -q '^lent_bytes 4096$' "$work/stats"; then
			ok "a broken session is kept: orphans 1, lent_bytes 4096"
			# Lent and stable: what STAT over the wire must say too.
			want_orphans=1 peer_test virgoctl-peer-orphan
		else
			cat "$work/stats"
			bad "no orphan in the stats file"
		fi
	else
		cat "$work/orphan.out"
		bad "orphan: could not leave an orphan"
	fi
	stop orphan
else
	bad "orphan: daemon did not start"
fi

# Resumption and discard off: neither capability is granted.
orphan_timeout=0
if start noresume --no-discard; then
	suite conformance-noresume
	if grep -q '^# server does not grant RESUME' \
		"$work/conformance-noresume.out"; then
		ok "--orphan-timeout 0: RESUME not granted"
	else
		bad "--orphan-timeout 0: RESUME granted"
	fi
	if grep -q '^# server does not grant DISCARD' \
		"$work/conformance-noresume.out"; then
		ok "--no-discard: DISCARD not granted"
	else
		bad "--no-discard: DISCARD granted"
	fi
	stop noresume
else
	bad "noresume: daemon did not start"
fi
orphan_timeout=2

umask 077
printf 'virgo-check-%s\n' "$RANDOM$RANDOM" >"$work/psk"
chmod 0640 "$work/psk"
if "$daemon" --listen 127.0.0.1:0 --psk-file "$work/psk" \
	2>"$work/perm.log"; then
	bad "a key file readable by its group was accepted"
elif grep -q 'group or others' "$work/perm.log"; then
	ok "a key file readable by its group is refused"
else
	cat "$work/perm.log"
	bad "key file refusal"
fi
chmod 0600 "$work/psk"

if start key --psk-file "$work/psk"; then
	suite conformance-key --key "$work/psk"
	peer_test virgoctl-peer-key "$work/psk"
	# The same server from a client without the key: setup must fail.
	if "$suite" 127.0.0.1 "$port" >"$work/nokey-client.out" 2>&1; then
		bad "a client without the key passed against a keyed server"
	else
		ok "a client without the key is told the server wants one"
	fi
	stop key
else
	bad "key: daemon did not start"
fi

if make -s -C "$here" fuzz && FUZZ_TIME=$fuzz_time "$here/fuzz.sh"; then
	ok "fuzz ${fuzz_time}s"
else
	bad "fuzz"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
