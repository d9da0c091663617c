#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# DKMS POST_BUILD (dkms.conf): keep virgo's Module.symvers for this kernel
# next to the built modules, in $dkms_tree/virgo/<version>/<kernel>/<arch>/,
# so that modules using virgo's API find it (KBUILD_EXTRA_SYMBOLS; after
# "dkms install" also as /var/lib/dkms/virgo/kernel-<kernel>-<arch>/
# Module.symvers).  dkms removes it with the modules (dkms remove/unbuild).
# Runs in the DKMS build directory; $1 is the per-kernel directory.
set -e
[ -d "$1" ] || { echo "dkms-post-build.sh: no directory $1" >&2; exit 1; }
cp Module.symvers "$1/Module.symvers"
