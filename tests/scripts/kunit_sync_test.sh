#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The copy step of scripts/kunit-prep.sh keeps the KUnit tree's sources by
# content: a source edited to an mtime older than its cached object must
# still be rebuilt, and an unchanged source must not be (incremental
# builds).  make decides here as kbuild does, by mtime.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() {
	echo "kunit_sync_test: FAIL: $*" >&2
	exit 1
}

mkdir -p "$t/work" "$t/obj"
echo 'int a = 1;' >"$t/work/a.c"
echo 'int b = 1;' >"$t/work/b.c"
printf '*.o\n' >"$t/work/.gitignore"
echo stale >"$t/work/host.o"
touch -d '2001-01-01' "$t/work/a.c" "$t/work/b.c"
cat >"$t/Makefile" <<'MK'
obj/%.o: copy/%.c
	cp $< $@
all: obj/a.o obj/b.o
MK

"$repo/scripts/kunit-prep.sh" --sync "$t/work" "$t/copy"
[ ! -e "$t/copy/host.o" ] || fail "ignored build products were copied"
make -s -C "$t" all
sleep 1.1
touch "$t/obj/a.o" "$t/obj/b.o"

# An edit whose mtime is older than the object (a checkout, a tar, an
# editor keeping times): same size, so only the content tells.
echo 'int a = 2;' >"$t/work/a.c"
touch -d '2001-01-01' "$t/work/a.c"
before=$(stat -c %Y "$t/copy/b.c")
"$repo/scripts/kunit-prep.sh" --sync "$t/work" "$t/copy"

cmp -s "$t/work/a.c" "$t/copy/a.c" || fail "a.c not copied"
if make -s -q -C "$t" obj/a.o; then
	fail "a.c changed with an old mtime, but its object counts as up to date"
fi
make -s -q -C "$t" obj/b.o || fail "unchanged b.c would be rebuilt"
[ "$(stat -c %Y "$t/copy/b.c")" = "$before" ] ||
	fail "unchanged b.c was rewritten"
make -s -C "$t" all
grep -q 'a = 2' "$t/obj/a.o" || fail "a.o not rebuilt from the new a.c"

# A file removed from the work tree leaves the copy.
rm "$t/work/b.c"
"$repo/scripts/kunit-prep.sh" --sync "$t/work" "$t/copy"
[ ! -e "$t/copy/b.c" ] || fail "removed b.c still in the copy"
echo "kunit_sync_test: ok"
