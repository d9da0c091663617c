#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virgoctl status --peer against one cloud node (virgo_clouddrec.ko or
# virgo-clouddrecd), busybox sh compatible:
#
#   virgoctl_peer_test.sh ADDR:PORT STATS [KEYFILE]
#
# STATS is the server's own counters ("key value" lines: the module's
# debugfs virgo_clouddrec/stats or the daemon's --stats-file), read right
# after each STAT.  The node must not change what it lends meanwhile.
#
# Without KEYFILE (a server without a key): status --peer exits 0, its
# --json capacity, lent_bytes and lent_chunks equal STATS, requests grow
# from one call to the next, sessions >= 1; a client with a key refuses
# the server (exit 1, no downgrade).  With KEYFILE (the server's key, mode
# 0600): without the key, with a wrong key, and with the key in a file
# its group can read, exit 1 and a message saying which; with the key, as
# above.  Always: a port nobody listens on, exit 1; a malformed address,
# exit 2.  Prints "PASS name" / "FAIL name: ..." and
# "virgoctl_peer_test: N passed, N failed"; exits 1 on any failure.
#
# Environment: VIRGOCTL (default: virgoctl from PATH), TMPDIR.

VIRGOCTL=${VIRGOCTL:-virgoctl}
peer=${1:?usage: virgoctl_peer_test.sh ADDR:PORT STATS [KEYFILE]}
stats=${2:?usage: virgoctl_peer_test.sh ADDR:PORT STATS [KEYFILE]}
keyfile=${3:-}
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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/virgoctl_peer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
umask 077

# vc ARGS...: virgoctl; stdout in $tmp/out, stderr in $tmp/err, status rc
vc() {
	"$VIRGOCTL" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect RC NAME PATTERN ARGS...: exit RC and PATTERN on stderr (or "")
expect() {
	want=$1
	name=$2
	pattern=$3
	shift 3
	vc "$@"
	if [ "$rc" -ne "$want" ]; then
		ko "$name" "exit $rc, want $want: $(head -c 300 "$tmp/err")"
	elif [ -n "$pattern" ] && ! grep -q -e "$pattern" "$tmp/err"; then
		ko "$name" "no '$pattern' in: $(head -c 300 "$tmp/err")"
	else
		ok "$name"
	fi
}

# jnum FIELD: a number of the last --json output
jnum() {
	sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" "$tmp/out"
}

# snum KEY: a counter of the server's stats
snum() {
	awk -v k="$1" '$1 == k { print $2 }' "$stats"
}

# same FIELD: the --json value equals the server's own
same() {
	got=$(jnum "$1")
	want=$(snum "$1")
	if [ -n "$got" ] && [ "$got" = "$want" ]; then
		ok "$1 over the wire = the server's ($got)"
	else
		ko "$1 over the wire = the server's" "wire '$got', stats '$want'"
	fi
}

key=
[ -n "$keyfile" ] && key="--psk-file $keyfile"

# --- the counters -------------------------------------------------------
# shellcheck disable=SC2086 # $key: an option and its value, or nothing
expect 0 "status --peer $peer" "" status --peer "$peer" $key
if grep -q "^server  *$peer, protocol 1, " "$tmp/out" &&
   grep -q '^lent  *' "$tmp/out" && grep -q '^requests  *[0-9]' "$tmp/out"
then
	ok "the human table names the server, lent and requests"
else
	ko "the human table" "$(head -c 400 "$tmp/out")"
fi
# shellcheck disable=SC2086
expect 0 "--json status --peer" "" --json status --peer "$peer" $key
for f in capacity lent_bytes lent_chunks; do
	same "$f"
done
r1=$(jnum requests)
s1=$(jnum sessions)
if [ "${s1:-0}" -ge 1 ]; then
	ok "sessions counts this one ($s1)"
else
	ko "sessions counts this one" "'$s1'"
fi
if [ -n "$keyfile" ]; then
	auth=true
else
	auth=false
fi
if grep -q "\"authenticated\":$auth" "$tmp/out"; then
	ok "authenticated: $auth"
else
	ko "authenticated: $auth" "$(head -c 300 "$tmp/out")"
fi
# shellcheck disable=SC2086
vc --json status --peer "$peer" $key
r2=$(jnum requests)
if [ "$rc" -eq 0 ] && [ "${r2:-0}" -gt "${r1:-0}" ]; then
	ok "requests grow from one call to the next ($r1 -> $r2)"
else
	ko "requests grow" "exit $rc, '$r1' -> '$r2'"
fi

# --- keys -------------------------------------------------------------------
printf 'not-the-key\n' >"$tmp/wrong"
chmod 600 "$tmp/wrong"
if [ -n "$keyfile" ]; then
	expect 1 "no key: refused, says so" "asks for the key" \
		status --peer "$peer"
	expect 1 "wrong key: refused, says so" "refused the key" \
		status --peer "$peer" --psk-file "$tmp/wrong"
	cp "$keyfile" "$tmp/shared"
	chmod 640 "$tmp/shared"
	expect 1 "the key in a group-readable file: refused" \
		"group or others may access it" \
		status --peer "$peer" --psk-file "$tmp/shared"
	if [ -s "$tmp/out" ]; then
		ko "nothing printed on stdout when refused" "$(head -c 200 "$tmp/out")"
	else
		ok "nothing printed on stdout when refused"
	fi
else
	expect 1 "a key for a server without one: refused (no downgrade)" \
		"does not ask for the key" \
		status --peer "$peer" --psk-file "$tmp/wrong"
fi

# --- unreachable, malformed ----------------------------------------------
host=${peer%:*}
expect 1 "a port nobody listens on" "connect" \
	status --peer "$host:1" --timeout 3
expect 2 "a malformed address" "not a peer address" status --peer 1.2.3:4
expect 2 "--psk-file without --peer" "go with --peer" \
	status --psk-file "$tmp/wrong"

echo "virgoctl_peer_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
