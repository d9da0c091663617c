#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lint every source of the project; any warning fails.
#
#  - checkpatch.pl --strict (from the cached Debian linux-source tree:
#    the headers package does not ship it)
#  - kernel-doc -Wall over every kernel source
#  - a W=1 build with sparse on every file (C=2)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tree=$("$repo/scripts/ktree.sh")
kdir=${KDIR:-$("$repo/scripts/kdir.sh")}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0

cd "$repo"
mapfile -t srcs < <(git ls-files -co --exclude-standard -- '*.c' '*.h' |
		    sort -u)
mapfile -t ksrcs < <(printf '%s\n' "${srcs[@]}" | grep -v '^tools/' || true)

# User-space programs (tools/, tests/user/, tests/e2e/progs/) are held to
# the same rules but one: checkpatch's ENOSYS rule is about what kernel
# code returns; user space checking errno for ENOSYS (the syscalls' "not
# here") is exactly right.
mapfile -t usrcs < <(printf '%s\n' "${srcs[@]}" |
		     grep -E '^(tools|tests/user|tests/e2e)/' || true)
mapfile -t kcsrcs < <(printf '%s\n' "${srcs[@]}" |
		      grep -vE '^(tools|tests/user|tests/e2e)/' || true)
echo "lint: checkpatch --strict over ${#srcs[@]} files"
cp_run() {
	local ignore=$1

	shift
	[ $# -gt 0 ] || return 0
	"$tree/scripts/checkpatch.pl" --strict --no-tree --quiet \
		--show-types --max-line-length=80 --ignore "$ignore" \
		-f "$@" >>"$out/checkpatch" 2>&1
}
if ! cp_run SPDX_LICENSE_TAG,FILE_PATH_CHANGES "${kcsrcs[@]}" ||
   ! cp_run SPDX_LICENSE_TAG,FILE_PATH_CHANGES,ENOSYS "${usrcs[@]}" ||
   [ -s "$out/checkpatch" ]; then
	cat "$out/checkpatch"
	fail=1
fi

echo "lint: kernel-doc over ${#ksrcs[@]} files"
"$tree/scripts/kernel-doc" -none -v "${ksrcs[@]}" 2>&1 |
	grep -v ': info: ' >"$out/kdoc" || true
# Every exported symbol needs a kernel-doc comment of its own.
for f in "${ksrcs[@]}"; do
	for sym in $(sed -n 's/^EXPORT_SYMBOL[A-Z_]*(\([a-z0-9_]*\));/\1/p' "$f"); do
		if ! grep -q "^ \* $sym() - " "$f"; then
			echo "$f: exported $sym() has no kernel-doc" >>"$out/kdoc"
		fi
	done
done
if [ -s "$out/kdoc" ]; then
	cat "$out/kdoc"
	fail=1
fi

# The kernel patches: format, allow-listed files, clean application to
# pristine Debian sources, checkpatch (scripts/lint-patches.sh).
mapfile -t kpatches < <(ls patches/*.patch 2>/dev/null || true)
echo "lint: ${#kpatches[@]} kernel patch(es) against pristine linux-source"
if [ ${#kpatches[@]} -gt 0 ] &&
   ! "$repo/scripts/lint-patches.sh" "$tree" "${kpatches[@]}" \
	>"$out/patches" 2>&1; then
	cat "$out/patches"
	fail=1
fi

echo "lint: make W=1 C=2 against $kdir"
make -C "$kdir" M="$repo" clean >/dev/null
# The benchmark module (tests/bench) too, against virgo's Module.symvers.
if ! make -C "$kdir" M="$repo" W=1 C=2 modules >"$out/build" 2>&1 ||
   ! make -C "$kdir" M="$repo/tests/bench" VIRGO_INCLUDE="$repo/include" \
	KBUILD_EXTRA_SYMBOLS="$repo/Module.symvers" W=1 C=2 modules \
	>>"$out/build" 2>&1; then
	cat "$out/build"
	fail=1
elif grep -E -i 'warning|error' "$out/build"; then
	fail=1
fi

if [ "$fail" -ne 0 ]; then
	echo "lint: FAILED" >&2
	exit 1
fi
echo "lint: clean"
