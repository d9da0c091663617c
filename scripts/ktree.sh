#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Make sure Debian's linux-source-6.1 is unpacked in the cache and print
# its path.  The cache is keyed by the package version, so a new Debian
# point release gets a fresh tree.
set -euo pipefail

cache=${VIRGO_CACHE:-$HOME/.cache/virgo}
ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
tarball=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)
if [ -z "$ver" ] || [ -z "$tarball" ]; then
	echo "ktree.sh: linux-source-6.1 is not installed; run scripts/deps.sh" >&2
	exit 1
fi

tree="$cache/linux-source-$ver"
if [ ! -e "$tree/.virgo-unpacked" ]; then
	mkdir -p "$cache"
	rm -rf "$tree" "$tree.tmp"
	mkdir -p "$tree.tmp"
	tar -C "$tree.tmp" -xf "$tarball" --strip-components=1
	touch "$tree.tmp/.virgo-unpacked"
	mv "$tree.tmp" "$tree"
fi
echo "$tree"
