#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything virgo needs to build, lint, run KUnit, fuzz and boot
# the qemu cluster.  Idempotent: when every package is present it only
# checks and returns.
set -euo pipefail

PKGS=(
	build-essential bc bison flex libelf-dev libssl-dev dwarves kmod cpio
	xz-utils rsync python3
	linux-headers-amd64 linux-image-amd64 linux-source-6.1
	sparse coccinelle
	qemu-system-x86 busybox-static iproute2 e2fsprogs
	clang llvm libclang-rt-14-dev
	dpkg-dev debhelper dh-dkms dkms lintian fakeroot pkg-config
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	     grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done"
