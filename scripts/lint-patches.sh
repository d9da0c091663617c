#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Check the project's kernel patches (patches/*.patch); part of make lint.
#
#   scripts/lint-patches.sh TREE PATCH...
#
# TREE is the cached linux-source tree (for checkpatch.pl only: kunit.sh
# patches it in place, so it is no reference for "pristine").  Each patch
#
#  - is a git format-patch mail: From:, Subject:, Signed-off-by:, a
#    diffstat, git diff headers;
#  - touches only the allow-listed files below;
#  - only adds lines to files that exist upstream (it never rewrites or
#    removes what is there) and adds at most one Kconfig entry;
#  - applies, in order after the patches before it, without fuzz or
#    offset to pristine files taken straight from Debian's
#    linux-source-6.1 tarball;
#  - passes checkpatch --strict, ignoring two types: FILE_PATH_CHANGES
#    (the new files are ours; MAINTAINERS is not) and ENOSYS (the
#    syscalls return it while virgo.ko is not loaded, which is exactly
#    "no such system call here": docs/syscalls.md).
#
# Prints what is wrong; exits 1 if anything is.
set -euo pipefail

allowed=(
	arch/x86/entry/syscalls/syscall_64.tbl
	include/linux/virgo_syscall.h
	init/Kconfig
	kernel/Makefile
	kernel/sys_ni.c
	kernel/virgo_syscall.c
)
tarball=/usr/src/linux-source-6.1.tar.xz

tree=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

bad() {
	echo "$p: $*"
	fail=1
}

# Old (a/) and new (b/) paths of every file a patch touches, one per
# line as "old new", /dev/null for a created or deleted file.
touched() {
	awk '/^--- / { o = $2; sub(/^a\//, "", o) }
	     /^\+\+\+ / { n = $2; sub(/^b\//, "", n); print o, n }' "$1"
}

is_allowed() {
	local a

	for a in "${allowed[@]}"; do
		[ "$a" = "$1" ] && return 0
	done
	return 1
}

# 1. Form and file list; collect the upstream files to extract.
declare -A upstream=()
for p in "$@"; do
	for h in '^From: ' '^Subject: ' '^Signed-off-by: ' \
		 '^ [0-9]+ files? changed' '^diff --git a/'; do
		grep -Eq "$h" "$p" || bad "no '${h#^}' line (git format-patch)"
	done
	while read -r old new; do
		f=$new
		[ "$f" = /dev/null ] && f=$old
		if ! is_allowed "$f" || { [ "$old" != /dev/null ] &&
					  [ "$old" != "$f" ]; }; then
			bad "touches $f, which is not allow-listed"
		fi
		[ "$old" != /dev/null ] && upstream[$old]=1
	done < <(touched "$p")
	# Lines removed from, or Kconfig entries added to, existing files.
	awk -v p="$p" '
		/^diff / { body = 1; new = 0 }
		!body { next }
		/^new file mode/ { new = 1 }
		/^\+\+\+ / { file = $2; sub(/^b\//, "", file) }
		/^(---|\+\+\+) / { next }
		/^-/ && !new { printf "%s: removes or rewrites a line of %s: %s\n", p, file, $0; bad = 1 }
		/^\+config / && file ~ /Kconfig/ { kconfig++ }
		END {
			if (kconfig > 1) { printf "%s: adds %d Kconfig entries (one allowed)\n", p, kconfig; bad = 1 }
			exit bad
		}' "$p" || fail=1
done

# 2. Applies cleanly, in order, to pristine upstream files.
top=$( (tar -tJf "$tarball" 2>/dev/null || true) | head -n 1)
top=${top%%/*}
mkdir -p "$work/a"
if [ ${#upstream[@]} -gt 0 ]; then
	members=()
	for f in "${!upstream[@]}"; do
		members+=("$top/$f")
	done
	if ! tar -xJf "$tarball" -C "$work/a" --strip-components=1 \
		"${members[@]}" 2>"$work/tar.err"; then
		echo "lint-patches: not in $tarball:"
		cat "$work/tar.err"
		fail=1
	fi
fi
for p in "$@"; do
	if ! patch -d "$work/a" -p1 -F0 -N --no-backup-if-mismatch \
		<"$p" >"$work/patch.out" 2>&1 ||
	   grep -Eiq 'offset|fuzz|fail|reject|reversed|malformed' \
		"$work/patch.out"; then
		bad "does not apply cleanly to pristine $top:"
		cat "$work/patch.out"
	fi
done

# 3. checkpatch on the patch itself, read from stdin: given the name of a
#    file git tracks, checkpatch would check it as a source file instead.
for p in "$@"; do
	if ! "$tree/scripts/checkpatch.pl" --strict --no-tree --quiet \
		--show-types --max-line-length=80 \
		--ignore FILE_PATH_CHANGES,ENOSYS - <"$p" >"$work/cp.out" 2>&1; then
		bad "checkpatch:"
		cat "$work/cp.out"
	fi
done
exit "$fail"
