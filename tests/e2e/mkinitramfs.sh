#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the initramfs of a virgo e2e cluster node.
#
#   mkinitramfs.sh -o OUT.cpio -k KVER [-f SRC[:DEST]]...
#
# Contents:
#   /init                  tests/e2e/guest-init.sh
#   /bin/busybox + links   from busybox-static (host /bin/busybox)
#   /lib/modules/e1000.ko  the NIC driver of KVER (decompressed if needed)
#   /virgo/...             every -f SRC; DEST (absolute path in the guest)
#                          defaults to /virgo/<basename of SRC>
#
# The output is an uncompressed newc cpio archive; nothing is written
# outside the directory of OUT (the staging tree is a sibling directory
# that is removed again).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
	echo "usage: $0 -o OUT.cpio -k KVER [-f SRC[:DEST]]..." >&2
	exit 2
}

out=
kver=
files=()
while getopts "o:k:f:" opt; do
	case "$opt" in
	o) out=$OPTARG ;;
	k) kver=$OPTARG ;;
	f) files+=("$OPTARG") ;;
	*) usage ;;
	esac
done
if [ -z "$out" ] || [ -z "$kver" ]; then
	usage
fi

die() { echo "mkinitramfs: $*" >&2; exit 1; }

busybox=${VIRGO_E2E_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "no $busybox (install busybox-static)"
# A dynamically linked busybox would need its libc in the initramfs.
if LC_ALL=C ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; install busybox-static"
fi
command -v cpio >/dev/null || die "cpio not found (install cpio)"

moddir=/lib/modules/$kver
e1000=$(find "$moddir/kernel/drivers/net/ethernet/intel/e1000" \
	-maxdepth 1 -name 'e1000.ko*' 2>/dev/null | head -n1)
[ -n "$e1000" ] || die "e1000.ko not found under $moddir (install linux-image-$kver)"

stage=$(mktemp -d "$(dirname "$out")/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp,run,virgo/bin,etc,root}
cp "$busybox" "$stage/bin/busybox"
# The kernel opens /dev/console for /init's stdio before /init runs.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
# One symlink per applet, at the path busybox itself lists for it.
while read -r applet; do
	[ "$applet" = /bin/busybox ] && continue
	[ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done < <("$busybox" --list-full)

# Busybox insmod cannot read compressed modules: decompress on the host.
case "$e1000" in
*.ko) cp "$e1000" "$stage/lib/modules/e1000.ko" ;;
*.ko.xz) xz -dc "$e1000" >"$stage/lib/modules/e1000.ko" ;;
*.ko.zst) zstd -dcq "$e1000" >"$stage/lib/modules/e1000.ko" ;;
*.ko.gz) gzip -dc "$e1000" >"$stage/lib/modules/e1000.ko" ;;
*) die "unknown module format: $e1000" ;;
esac

cp "$here/guest-init.sh" "$stage/init"
chmod 0755 "$stage/init"
echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
echo "root:x:0:" >"$stage/etc/group"

for spec in "${files[@]}"; do
	src=${spec%%:*}
	dest=
	[ "$src" != "$spec" ] && dest=${spec#*:}
	[ -n "$dest" ] || dest=/virgo/$(basename "$src")
	case "$dest" in
	/*) ;;
	*) die "destination must be an absolute path: $dest" ;;
	esac
	[ -e "$src" ] || die "no such file: $src"
	mkdir -p "$stage$(dirname "$dest")"
	cp -a "$src" "$stage$dest"
done

(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --quiet --owner=0:0) >"$out.tmp"
mv "$out.tmp" "$out"
