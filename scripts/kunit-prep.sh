#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepare Debian's linux-source-6.1 in $VIRGO_CACHE for a KUnit build of
# virgo (scripts/kunit.sh for UML, scripts/kunit-smp.sh for x86_64 under
# qemu) and print the tree's path:
#
#  - a clean copy of the sources in $VIRGO_CACHE/kunit-src, linked into
#    the tree as drivers/virgo (with O= make would otherwise find the
#    host's out-of-tree virgo_*.o through VPATH);
#  - patches/*.patch (the syscalls) and tests/uml/*.patch applied
#    (scripts/ktree-patch.sh).
#
# Both are kept by content, not by mtime: kbuild rebuilds what is newer
# than its object, so a copy that kept the work tree's mtimes would test
# an edited file whose mtime is older than the cached object (a checkout,
# a tar, touch -d) with code it never compiled.  rsync --checksum without
# -t leaves unchanged files alone (incremental builds stay incremental)
# and writes every changed one with the current time.
#
#   scripts/kunit-prep.sh              prepare, print the tree
#   scripts/kunit-prep.sh --sync A B   only the copy step, A/ to B/
#                                      (tests/scripts/kunit_sync_test.sh)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

# sync_sources FROM TO: make TO/ a copy of FROM/ by content.
sync_sources() {
	local excl=()

	[ -f "$1/.gitignore" ] && excl=(--exclude-from="$1/.gitignore")
	mkdir -p "$2"
	rsync -rlpc --delete --exclude=.git "${excl[@]}" "$1/" "$2/"
}

if [ "${1:-}" = --sync ]; then
	sync_sources "$2" "$3"
	exit 0
fi

cache=${VIRGO_CACHE:-$HOME/.cache/virgo}
tree=$("$repo/scripts/ktree.sh")
src="$cache/kunit-src"

sync_sources "$repo" "$src"

# The project's kernel patch (the virgo syscalls; UML x86_64 uses the
# x86_64 syscall table), then test-environment fixes to the UML kernel
# itself (not to virgo): the tree becomes exactly pristine + these
# (scripts/ktree-patch.sh; patch(1) gives what it touches a new mtime).
"$repo/scripts/ktree-patch.sh" "$tree" "$repo"/patches/*.patch \
	"$repo"/tests/uml/*.patch >&2

# Then link the sources in (after: restoring a pristine tree drops them).
ln -sfn "$src" "$tree/drivers/virgo"
if ! grep -q '^source "drivers/virgo/Kconfig"' "$tree/drivers/Kconfig"; then
	sed -i '/^menu "Device Drivers"/a source "drivers/virgo/Kconfig"' \
		"$tree/drivers/Kconfig"
fi
if ! grep -q '^obj-y += virgo/' "$tree/drivers/Makefile"; then
	echo 'obj-y += virgo/' >>"$tree/drivers/Makefile"
fi
echo "$tree"
