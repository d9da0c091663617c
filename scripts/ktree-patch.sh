#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bring the cached linux-source tree to exactly "pristine + these
# patches", in this order; used by kunit.sh.
#
#   scripts/ktree-patch.sh TREE PATCH...
#
# The patches applied are recorded (copies in TREE/.virgo-patches/, in
# order).  When the wanted list is the recorded one nothing happens; when
# it differs (a patch changed, was added or dropped) the recorded ones
# are reverted, newest first, and the wanted ones applied.
#
# A tree without a record comes from an older kunit.sh.  Each patch that
# reverse-applies is taken as applied, each that applies is applied.  A
# patch that does neither means the tree carries another version of it
# (e.g. the syscall patch before it was regenerated): then every file that
# differs from Debian's tarball is put back (a fresh extraction compared
# by content: only the changed files are rewritten, and they get a new
# mtime, so the incremental build recompiles exactly what depends on
# them) and the patches are applied to that.
#
# patch(1) gives the files it touches a new mtime, so the build always
# recompiles what a change of patch affects.
set -euo pipefail

tree=$1
shift
rec="$tree/.virgo-patches"
tarball=${VIRGO_KTARBALL:-/usr/src/linux-source-6.1.tar.xz}

# The record matches the wanted list exactly.
recorded_is_wanted() {
	local i=0 p

	[ -f "$rec/list" ] || return 1
	[ "$(wc -l <"$rec/list")" -eq $# ] || return 1
	for p in "$@"; do
		i=$((i + 1))
		cmp -s "$p" "$rec/$i.patch" || return 1
	done
}

apply_all() {
	local i=0 p

	rm -rf "$rec"
	mkdir -p "$rec"
	for p in "$@"; do
		i=$((i + 1))
		patch -d "$tree" -p1 -s -N -F0 --no-backup-if-mismatch <"$p"
		cp "$p" "$rec/$i.patch"
		echo "${p##*/}" >>"$rec/list"
	done
}

# Every file of the tree that differs from the tarball rewritten (new
# mtime), files the tarball does not have removed; the kunit.sh
# additions (drivers/virgo, the drivers/ Kconfig and Makefile lines) go
# too and are made again by kunit.sh.
restore_pristine() {
	local fresh="$tree.pristine"

	echo "ktree-patch: $tree carries other versions of the patches;" \
	     "restoring the files that differ from $tarball" >&2
	rm -rf "$fresh"
	mkdir -p "$fresh"
	tar -C "$fresh" -xf "$tarball" --strip-components=1
	rsync -rlpc --delete --exclude=/.virgo-unpacked \
		--exclude=/.virgo-patches "$fresh/" "$tree/"
	rm -rf "$fresh" "$rec"
}

if recorded_is_wanted "$@"; then
	exit 0
fi

if [ -f "$rec/list" ]; then
	n=$(wc -l <"$rec/list")
	ok=1
	for ((i = n; i > 0; i--)); do
		if ! patch -d "$tree" -p1 -R -s -f -F0 --no-backup-if-mismatch \
			<"$rec/$i.patch"; then
			ok=0
			break
		fi
	done
	[ "$ok" -eq 1 ] || restore_pristine
	apply_all "$@"
	exit 0
fi

# No record: a fresh tree, or one patched by an older kunit.sh.
for p in "$@"; do
	if ! patch -d "$tree" -p1 -R -s -f --dry-run <"$p" >/dev/null 2>&1 &&
	   ! patch -d "$tree" -p1 -N -s -f -F0 --dry-run <"$p" >/dev/null 2>&1
	then
		restore_pristine
		break
	fi
done
mkdir -p "$rec"
: >"$rec/list.new"
i=0
for p in "$@"; do
	i=$((i + 1))
	if ! patch -d "$tree" -p1 -R -s -f --dry-run <"$p" >/dev/null 2>&1; then
		patch -d "$tree" -p1 -s -N -F0 --no-backup-if-mismatch <"$p"
	fi
	cp "$p" "$rec/$i.patch"
	echo "${p##*/}" >>"$rec/list.new"
done
mv "$rec/list.new" "$rec/list"
