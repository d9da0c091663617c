#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the kernel build directory to build the modules against.
#
# Order: the running kernel's headers when installed; else the version
# that Debian's linux-headers-amd64 meta package points at; else the
# newest /lib/modules/*/build.  Nothing is hard-coded.
set -euo pipefail

running="/lib/modules/$(uname -r)/build"
if [ -e "$running/Makefile" ]; then
	echo "$running"
	exit 0
fi

if [ "${1:-}" != "--any" ]; then
	dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	      grep -o 'linux-headers-[^ ,]*' | head -n1 || true)
	if [ -n "$dep" ]; then
		ver=${dep#linux-headers-}
		if [ -e "/lib/modules/$ver/build/Makefile" ]; then
			echo "/lib/modules/$ver/build"
			exit 0
		fi
	fi
fi

newest=$(ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "$newest" ] && [ -e "$newest/Makefile" ]; then
	echo "$newest"
	exit 0
fi

echo "kdir.sh: no kernel headers found; run scripts/deps.sh or pass KDIR=" >&2
exit 1
