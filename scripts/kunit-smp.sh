#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run virgo's KUnit suites on x86_64 under qemu (TCG, 2 vCPUs) with the
# kernel's race detectors, over Debian's linux-source-6.1 (make kunit-smp).
# UML in 6.1 has one CPU; this is where virgo runs on several at once.
#
# Two kernels, because 6.1's KCSAN excludes KASAN (lib/Kconfig.kcsan:
# "depends on DEBUG_KERNEL && !KASAN"):
#
#   kasan   KASAN (+vmalloc), PROVE_LOCKING (lockdep), atomic-sleep checks
#   kcsan   KCSAN (data races), sampling 10 times as often as by default,
#           and PROVE_LOCKING (lockdep): the kernel make check-full runs
#
# both SMP with PREEMPT, the hung-task and soft-lockup detectors
# (tests/.kunitconfig.smp + tests/.kunitconfig.smp-<name>).  Only the KUnit
# suites run: the user-space tests (tests/user) need UML's hostfs and stay
# in scripts/kunit.sh.
#
# Fails on a failed or crashed test, on any BUG, WARNING, KASAN or lockdep
# report in the kernel log, and on any KCSAN report where one of the two
# racing accesses is in virgo's code (the top frame is a function of
# drivers/virgo: the modules and their tests).  Reports of races inside
# kernel code that virgo called (virgo further down the stack) are shown
# and listed, and so are those wholly elsewhere; they do not fail the run;
# nor do the kernel patterns listed with their reasons in
# tests/kcsan-known.txt.
#
#   scripts/kunit-smp.sh                 both kernels, the suites below
#   scripts/kunit-smp.sh 'virgo_xlat*'   a subset of the suites
#
# Two suites are left to UML (scripts/kunit.sh), being far too slow under
# TCG (measured on the shared 2-core machine):
#  - virgo_xlat_million fills and walks a million entries on one CPU: it
#    had not finished filling its table after 15 min under KASAN+lockdep;
#  - virgo_bench moves ~3 GiB through loopback: at the ~5 MB/s of TCG
#    with KASAN and lockdep that is well over 15 min, and its cases would
#    hit KUnit's 300 s timeout.
# 6.1's kunit.filter_glob takes one glob and no exclusions: the default
# is virgo_*[...] with the last letters of the other suites' names (an
# inverted class cannot be used, 6.1's glob_match() lets [!n] match the
# terminating NUL).  Every other suite of tests/*.c must have run, so a
# suite the glob misses fails the run.
#   VIRGO_SMP_CONFIGS=kcsan scripts/kunit-smp.sh
#
# VIRGO_SMP_CPUS (2), VIRGO_SMP_MEM (4096 MiB: the million-entry cases
# under KASAN), VIRGO_SMP_TIMEOUT (1800 s per boot).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${VIRGO_CACHE:-$HOME/.cache/virgo}
configs=${VIRGO_SMP_CONFIGS:-kasan kcsan}
cpus=${VIRGO_SMP_CPUS:-2}
mem=${VIRGO_SMP_MEM:-4096}
tmo=${VIRGO_SMP_TIMEOUT:-1800}

# One run at a time per cache: the tree and the copy of the sources are
# shared with scripts/kunit.sh.
mkdir -p "$cache"
exec 9>"$cache/kunit.lock"
flock 9
tree=$("$repo/scripts/kunit-prep.sh")
ver=${tree##*/linux-source-}
cd "$tree"

# Every splat but KCSAN's (judged by where it is, below).
splats='BUG:|WARNING:|KASAN|Kernel panic|general protection fault|'
splats+='possible circular locking|possible recursive locking|'
splats+='inconsistent lock state|lock held when returning|'
splats+='suspicious RCU usage|INFO: task .* blocked|'
splats+='soft lockup|hard LOCKUP|rcu_.* detected stall|'
splats+='scheduling while atomic|sleeping function called from invalid context'

# kcsan_reports LOG SYMS KNOWN: print each KCSAN report of LOG, prefixed
# with "known" when the top frames of its two accesses are a pair listed in
# KNOWN (tests/kcsan-known.txt: kernel patterns, each with its reason),
# else "virgo" when one of the racing accesses is in a function named in
# SYMS (its top frame), "via-virgo" when such a function is only further
# down a stack (the race is inside kernel code virgo called), else "other".
kcsan_reports() {
	awk -v syms="$2" -v knownf="$3" '
	BEGIN {
		while ((getline s <syms) > 0)
			virgo[s] = 1
		while ((getline s <knownf) > 0)
			if (s !~ /^#/ && split(s, kf) >= 2) {
				known[kf[1] " " kf[2]] = 1
				known[kf[2] " " kf[1]] = 1
			}
	}
	function fname(t) {
		sub(/\+0x.*/, "", t)
		sub(/\.(constprop|isra|part|cold)\..*/, "", t)
		return t
	}
	/BUG: KCSAN: / {
		inrep = 1; rep = ""; top = 0; deep = 0; want = 0; ntop = 0
	}
	inrep {
		rep = rep "\n" $0
		if ($0 ~ / to 0x[0-9a-f]+ of [0-9]+ bytes by |race at unknown origin/) {
			want = 1
		} else if ($1 ~ /\+0x[0-9a-f]+\/0x/) {
			f = fname($1)
			if (want)
				tops[++ntop] = f
			if (f in virgo) {
				if (want)
					top = 1
				deep = 1
			}
			want = 0
		}
		if (/Reported by Kernel Concurrency Sanitizer/) {
			kind = top ? "virgo" : deep ? "via-virgo" : "other"
			if (ntop == 2 && ((tops[1] " " tops[2]) in known))
				kind = "known"
			print kind rep "\n"
			inrep = 0
		}
	}' "$1"
}

# The suites a full run must show, and a glob for them alone.
skip="virgo_xlat_million virgo_bench"
suites=$(grep -h -A6 '^static struct kunit_suite ' "$repo"/tests/*.c |
	sed -n 's/^[[:space:]]*\.name = "\([a-z0-9_]*\)",/\1/p' |
	grep -vxF "${skip// /$'\n'}")
default_glob="virgo_*[$(for s in $suites; do echo "${s: -1}"; done |
	sort -u | tr -d '\n')]"
for s in $skip; do
	# shellcheck disable=SC2053
	if [[ $s == $default_glob ]]; then
		echo "kunit-smp.sh: no glob leaves out $s ($default_glob)" >&2
		exit 2
	fi
done

# Every reason the run fails, repeated at its end: CI shows the tail.
reasons=()
why() {
	echo "kunit-smp.sh: $*" >&2
	reasons+=("$*")
}

# failed_cases LOG: each failed case with the lines its test printed.
failed_cases() {
	awk '/^ *# Subtest: / { n = 0 }
	     { buf[n++ % 25] = $0 }
	     /^ *not ok [0-9]+ / {
		k = n > 25 ? n - 25 : 0
		for (i = k; i < n; i++) print buf[i % 25]
		print "--"
		n = 0
	     }' "$1" | tail -n 120
}

for cfg in $configs; do
	kc="$repo/tests/.kunitconfig.smp-$cfg"
	if [ ! -f "$kc" ]; then
		echo "kunit-smp.sh: no $kc" >&2
		exit 2
	fi
	build="$cache/kunit-$ver-x86_64-$cfg"
	log="$build/test.log"
	mkdir -p "$build"
	echo "kunit-smp.sh: [$cfg] building ($build)"
	t0=$(date +%s)
	# kunit.py's x86_64 qemu config only adds the serial console; it is
	# used for the build, qemu is run below (TCG, SMP, enough memory).
	python3 tools/testing/kunit/kunit.py build --arch=x86_64 \
		--build_dir="$build" \
		--kunitconfig="$repo/tests/.kunitconfig.smp" \
		--kunitconfig="$kc" \
		--jobs="${VIRGO_JOBS:-2}" >"$build/build.log" 2>&1 || {
		tail -n 40 "$build/build.log" >&2
		echo "kunit-smp.sh: [$cfg] build failed" >&2
		exit 1
	}
	if grep -E '(drivers/virgo/|kernel/virgo_syscall).*(warning|error):' \
		"$build/build.log"; then
		echo "kunit-smp.sh: [$cfg] compiler warnings in virgo sources" >&2
		exit 1
	fi
	t1=$(date +%s)

	glob=${1:-$default_glob}
	# KCSAN samples one access in kcsan.skip_watch (4000 by default) for
	# a watchpoint; the suites are short, so look ten times as often.
	extra=
	[ "$cfg" = kcsan ] &&
		extra="kcsan.skip_watch=${VIRGO_KCSAN_SKIP_WATCH:-400}"
	echo "kunit-smp.sh: [$cfg] running qemu, $cpus vCPUs, TCG (log: $log)"
	set +e
	timeout -k 10 "$tmo" qemu-system-x86_64 -nodefaults -no-reboot \
		-nographic -serial stdio -accel tcg,thread=multi \
		-smp "$cpus" -m "$mem" -bios qboot.rom \
		-monitor "unix:$build/monitor.sock,server=on,wait=off" \
		-kernel "$build/arch/x86/boot/bzImage" \
		-append "console=ttyS0 kunit_shutdown=reboot kunit.enable=1 kunit.filter_glob=$glob $extra" \
		</dev/null >"$log.raw" 2>&1
	qrc=$?
	# The serial console ends its lines with CR LF.
	tr -d '\r' <"$log.raw" >"$log"
	python3 tools/testing/kunit/kunit.py parse "$log" >"$build/summary.txt"
	rc=$?
	set -e
	t2=$(date +%s)
	cat "$build/summary.txt"
	echo "kunit-smp.sh: [$cfg] build $((t1 - t0)) s, run $((t2 - t1)) s"

	if [ "$qrc" -eq 124 ]; then
		why "[$cfg] qemu timed out after $tmo s"
	fi
	if [ "$rc" -ne 0 ] || ! grep -q 'Testing complete' "$build/summary.txt"
	then
		why "[$cfg] kunit.py: tests failed or missing:" \
			"$(grep -E '^ *not ok [0-9]+ ' "$log" | sed 's/^ *//' |
				tr '\n' ';')"
		failed_cases "$log" >&2
	fi
	if [ $# -eq 0 ]; then
		for suite in $suites; do
			if ! grep -Eq "^(not )?ok [0-9]+ $suite\$" "$log"; then
				why "[$cfg] suite $suite did not run"
			fi
		done
	fi
	if grep -v 'BUG: KCSAN: ' "$log" | grep -E -n "$splats" \
		>"$build/splats.txt"; then
		echo "kunit-smp.sh: [$cfg] the kernel log has reports ($log):" >&2
		head -n 40 "$build/splats.txt" >&2
		why "[$cfg] kernel log reports: $(head -n 3 "$build/splats.txt" |
			tr '\n' ';')"
	fi
	nm --defined-only "$build/drivers/virgo/built-in.a" 2>/dev/null |
		awk 'NF == 3 && $2 ~ /^[tTwW]$/ { print $3 }' |
		sed 's/\.\(constprop\|isra\|part\|cold\)\..*//' |
		sort -u >"$build/virgo-syms.txt"
	kcsan_reports "$log" "$build/virgo-syms.txt" \
		"$repo/tests/kcsan-known.txt" >"$build/kcsan.txt"
	nk=$(grep -c '^known$' "$build/kcsan.txt" || true)
	nv=$(grep -c '^virgo$' "$build/kcsan.txt" || true)
	nd=$(grep -c '^via-virgo$' "$build/kcsan.txt" || true)
	no=$(grep -c '^other$' "$build/kcsan.txt" || true)
	if [ "$cfg" = kcsan ] || [ $((nv + nd + no + nk)) -gt 0 ]; then
		echo "kunit-smp.sh: [$cfg] KCSAN reports: $nv in virgo code," \
			"$nd in kernel code virgo called, $no elsewhere," \
			"$nk known (tests/kcsan-known.txt) ($build/kcsan.txt)"
	fi
	# Shown, to be judged; only a race in virgo's own code fails.
	if [ "$nd" -gt 0 ]; then
		awk '/^via-virgo$/ { p = 1 } /^(virgo|other|known)$/ { p = 0 } p' \
			"$build/kcsan.txt" | head -n 60
	fi
	if [ "$nv" -gt 0 ]; then
		awk '/^virgo$/ { p = 1 } /^(via-virgo|other|known)$/ { p = 0 } p' \
			"$build/kcsan.txt" | head -n 80 >&2
		why "[$cfg] $nv KCSAN reports in virgo code ($build/kcsan.txt)"
	fi
	if [ "$cfg" = kcsan ] && ! grep -q 'kcsan: enabled early' "$log"; then
		why "[$cfg] KCSAN did not start"
	fi
done
if [ "${#reasons[@]}" -ne 0 ]; then
	echo "kunit-smp.sh: FAILED, because:" >&2
	printf '  %s\n' "${reasons[@]}" >&2
	exit 1
fi
echo "kunit-smp.sh: all suites passed on $cpus CPUs ($configs), kernel logs clean"
