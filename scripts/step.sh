#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# step.sh NAME CMD...: run CMD and say how long it took, for make check's
# log (where the minutes of a CI run go).  Exits with CMD's status.
name=$1
shift
t0=$(date +%s)
rc=0
"$@" || rc=$?
echo "== step $name: $(($(date +%s) - t0)) s, exit $rc"
exit "$rc"
