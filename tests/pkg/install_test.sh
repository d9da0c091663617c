#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# virgo's installation, as a user gets it (make pkg-check; root).
#
#  1. make install DESTDIR=<tmp>: the exact file list, the modules built
#     for the kernel of KDIR, no signing or depmod noise, the installed
#     header and Module.symvers, libvirgo through its installed .pc and
#     .so, virgoctl and the man pages.
#  2. examples/virgo_example.ko built against the INSTALLED header and
#     Module.symvers (the two-line examples/Kbuild, outside this tree),
#     and, as the control, failing without that Module.symvers.
#  3. make uninstall DESTDIR=<tmp> leaves no file.
#  4. make deb: the five packages, lintian without errors (its tags are
#     printed), their contents (dpkg-deb -c), one version everywhere;
#     virgo-clouddrecd: exactly its daemon, man page, systemd unit (and
#     copyright/changelog), the unit starting /usr/sbin/virgo-clouddrecd
#     with the hardening of docs/clouddrecd.md, neither enabled nor
#     started by its maintainer scripts, the daemon's --help.
#  5. DKMS: the virgo-dkms payload's source tree added to a scratch dkms
#     tree and installed into a scratch module tree (--dkmstree,
#     --sourcetree, --installtree, --no-depmod: nothing under /var/lib/dkms
#     or /lib/modules) for KDIR's kernel: both modules, signed as Debian's
#     dkms signs, and Module.symvers appear; the example builds against
#     the packaged header and that Module.symvers; dkms remove leaves
#     nothing.
#
# Ends with "N passed, N failed"; exit 1 if any check failed.
# Environment: KDIR (default scripts/kdir.sh), VIRGO_PKG_KEEP=1 keeps the
# scratch directory.
# shellcheck disable=SC2317 # functions called through check() and trap
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
start=$SECONDS
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
	echo "pkg-check: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if [ "$(id -u)" -ne 0 ]; then
	echo "install_test.sh: needs root (dkms)" >&2
	exit 1
fi
for tool in dpkg-buildpackage dh dh_dkms dkms lintian pkg-config; do
	command -v "$tool" >/dev/null ||
		{ echo "install_test.sh: no $tool: make deps" >&2; exit 1; }
done

KDIR=${KDIR:-$("$repo/scripts/kdir.sh")} || exit 1
export KDIR
kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"/\1/p' \
	"$KDIR/include/generated/utsrelease.h")
version=$(cat "$repo/VERSION")
arch=$(uname -m)
tmp=$(mktemp -d /tmp/virgo-pkg.XXXXXX)
cleanup() {
	[ "${VIRGO_PKG_KEEP:-0}" = 1 ] && { echo "kept $tmp"; return; }
	rm -rf "$tmp"
}
trap cleanup EXIT
echo "pkg-check: virgo $version, kernel $kver ($KDIR), scratch $tmp"

# A file list: regular files and symlinks under $1, sorted, relative.
list() { (cd "$1" && find . -type f -o -type l | sed 's|^\./||' | sort); }

# ---- 1. make install DESTDIR -------------------------------------------
root=$tmp/root
if ! make -C "$repo" install DESTDIR="$root" >"$tmp/install.log" 2>&1; then
	tail -n 30 "$tmp/install.log"
	bad "make install DESTDIR"
	finish
fi
ok "make install DESTDIR"

cat >"$tmp/expected" <<EOF
etc/modprobe.d/virgo.conf
etc/udev/rules.d/60-virgo.rules
lib/modules/$kver/updates/virgo.ko
lib/modules/$kver/updates/virgo_blk.ko
lib/modules/$kver/updates/virgo_clouddrec.ko
usr/local/include/libvirgo.h
usr/local/include/linux/virgo.h
usr/local/include/virgo/linux/virgo.h
usr/local/lib/libvirgo.a
usr/local/lib/libvirgo.so
usr/local/lib/libvirgo.so.1
usr/local/lib/libvirgo.so.1.0.0
usr/local/lib/pkgconfig/libvirgo.pc
usr/local/lib/virgo/$kver/Module.symvers
usr/local/sbin/virgoctl
usr/local/share/doc/virgo/examples/modprobe.d/virgo-clouddrec.conf
usr/local/share/doc/virgo/examples/modules-load.d/virgo-clouddrec.conf
usr/local/share/man/man3/libvirgo.3
usr/local/share/man/man8/virgoctl.8
EOF
list "$root" >"$tmp/got"
check "install: exactly the expected $(wc -l <"$tmp/expected") files" \
	diff -u "$tmp/expected" "$tmp/got"

# Debian's headers have CONFIG_MODULE_SIG_ALL and no key, and no System.map.
check "install: no sign-file, OpenSSL or depmod noise" \
	bash -c "! grep -Ei 'sign-file|ssl error|System\.map|depmod:|warning:|error:' '$tmp/install.log'"
for m in virgo virgo_clouddrec virgo_blk; do
	vm=$(modinfo -F vermagic "$root/lib/modules/$kver/updates/$m.ko" 2>/dev/null)
	check "install: $m.ko built for $kver" test "${vm%% *}" = "$kver"
done
check "install: the kernel header is include/linux/virgo.h" \
	cmp -s "$repo/include/linux/virgo.h" "$root/usr/local/include/virgo/linux/virgo.h"
symvers=$root/usr/local/lib/virgo/$kver/Module.symvers
check "install: Module.symvers exports __virgo_malloc GPL-only" \
	grep -Eq $'^0x[0-9a-f]+\t__virgo_malloc\t.*\tEXPORT_SYMBOL_GPL' "$symvers"
check "install: libvirgo.so -> libvirgo.so.1 -> libvirgo.so.1.0.0" \
	test "$(readlink "$root/usr/local/lib/libvirgo.so")" = libvirgo.so.1 -a \
	"$(readlink "$root/usr/local/lib/libvirgo.so.1")" = libvirgo.so.1.0.0
check "install: libvirgo.pc has version $version" \
	grep -qx "Version: $version" "$root/usr/local/lib/pkgconfig/libvirgo.pc"

# A program built with the installed .pc, run against the installed .so.
cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <libvirgo.h>

int main(void)
{
	struct virgo_ioc_stat st;

	(void)st;
	printf("backend %s\n", virgo_backend());
	return 0;
}
EOF
pcflags=$(PKG_CONFIG_PATH=$root/usr/local/lib/pkgconfig \
	PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs libvirgo)
# shellcheck disable=SC2086 # pkg-config's words
check "install: a program builds with pkg-config libvirgo" \
	cc -Wall -Wextra -Werror -o "$tmp/prog" "$tmp/prog.c" $pcflags
check "install: and runs on the installed libvirgo.so.1" bash -c \
	"LD_LIBRARY_PATH='$root/usr/local/lib' ldd '$tmp/prog' |
	 grep -q 'libvirgo.so.1 => $root/usr/local/lib/libvirgo.so.1' &&
	 LD_LIBRARY_PATH='$root/usr/local/lib' '$tmp/prog' | grep -q '^backend '"
check "install: virgoctl --help" \
	bash -c "'$root/usr/local/sbin/virgoctl' --help >/dev/null"
for page in man8/virgoctl.8 man3/libvirgo.3; do
	check "install: $page renders without warnings" bash -c \
		"out=\$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings \
		 -E UTF-8 -l -Tutf8 -Z '$root/usr/local/share/man/$page' 2>&1 >/dev/null) &&
		 test -z \"\$out\""
done

# The configuration files: modprobe reads them as meant, nothing active.
ex=$root/usr/local/share/doc/virgo/examples
check "install: /etc/modprobe.d/virgo.conf is all comments (not active)" \
	test -z "$(grep -v '^#' "$root/etc/modprobe.d/virgo.conf" | grep -v '^$')"
mkdir -p "$tmp/modprobe.d"
cp "$ex/modprobe.d/virgo-clouddrec.conf" "$tmp/modprobe.d/"
sed 's/^#options/options/' "$root/etc/modprobe.d/virgo.conf" >"$tmp/modprobe.d/virgo.conf"
check "install: modprobe parses the examples' options" bash -c \
	"modprobe -C '$tmp/modprobe.d' -c 2>&1 | grep -q '^options virgo_clouddrec listen_addr=' &&
	 modprobe -C '$tmp/modprobe.d' -c 2>&1 | grep -q '^options virgo peers=' &&
	 ! modprobe -C '$tmp/modprobe.d' -c 2>&1 | grep -qi 'unknown\|ignoring'"
# Every parameter the examples name exists in the installed module.
params_exist() {
	local mod key
	modprobe -C "$tmp/modprobe.d" -c 2>/dev/null | grep '^options virgo' |
	while read -r _ mod rest; do
		for kv in $rest; do
			key=${kv%%=*}
			modinfo -p "$root/lib/modules/$kver/updates/$mod.ko" |
				grep -q "^$key:" || { echo "no parameter $mod $key"; exit 1; }
		done
	done
}
check "install: every parameter in the examples is the modules'" params_exist
check "install: the modules-load.d example loads virgo_clouddrec" \
	test "$(grep -v '^#' "$ex/modules-load.d/virgo-clouddrec.conf")" = virgo_clouddrec
check "install: the udev rule gives group virgo mode 0660 on misc/virgo" \
	grep -qx 'KERNEL=="virgo", SUBSYSTEM=="misc", GROUP="virgo", MODE="0660"' \
	"$root/etc/udev/rules.d/60-virgo.rules"

# ---- 2. a module built against the installed header and symvers ---------
build_example() { # DIR SYMVERS...
	local dir=$1
	shift
	mkdir -p "$dir"
	cp "$repo/examples/virgo_example.c" "$repo/examples/Kbuild" "$dir/"
	make -C "$KDIR" M="$dir" VIRGO_INCLUDE="$incdir" "$@" modules \
		>"$dir/build.log" 2>&1
}
check "example: its Kbuild is two lines (and comments)" \
	test "$(grep -cv '^#' "$repo/examples/Kbuild")" -eq 2
incdir=$root/usr/local/include/virgo
if build_example "$tmp/ex" KBUILD_EXTRA_SYMBOLS="$symvers"; then
	ok "example: builds against the installed header + Module.symvers"
	check "example: depends on virgo" \
		test "$(modinfo -F depends "$tmp/ex/virgo_example.ko")" = virgo
	check "example: no modpost warning" \
		bash -c "! grep -Ei 'warning|undefined' '$tmp/ex/build.log'"
else
	tail -n 20 "$tmp/ex/build.log"
	bad "example: builds against the installed header + Module.symvers"
fi
# The control: without virgo's Module.symvers modpost must refuse it.
if build_example "$tmp/ex-nosym"; then
	bad "example: without Module.symvers the build fails"
else
	check "example: without Module.symvers the build fails (undefined)" \
		grep -q '"__virgo_malloc" \[.*\] undefined' "$tmp/ex-nosym/build.log"
fi

# ---- 3. make uninstall DESTDIR ------------------------------------------
if make -C "$repo" uninstall DESTDIR="$root" >"$tmp/uninstall.log" 2>&1; then
	ok "make uninstall DESTDIR"
	check "uninstall: no file left" test -z "$(list "$root")"
else
	tail -n 20 "$tmp/uninstall.log"
	bad "make uninstall DESTDIR"
fi

# ---- 4. make deb ----------------------------------------------------------
debdir=$repo/build/deb
if ! make -C "$repo" deb >"$tmp/deb.log" 2>&1; then
	tail -n 40 "$tmp/deb.log"
	bad "make deb"
	finish
fi
ok "make deb"
deb() { echo "$debdir/${1}_${version}_${2}.deb"; }
hostarch=$(dpkg --print-architecture)
for p in virgo-dkms:all virgoctl:$hostarch libvirgo1:$hostarch \
	 libvirgo-dev:$hostarch virgo-clouddrecd:$hostarch; do
	f=$(deb "${p%%:*}" "${p#*:}")
	check "deb: $(basename "$f")" test -f "$f"
done
# dpkg-buildpackage's usual droppings: ../*.deb, debian/tmp, debian/files...
leftovers() {
	local f
	for f in "$repo"/../*virgo*_"${version}"_* "$repo"/debian/files \
		 "$repo"/debian/tmp "$repo"/debian/.debhelper \
		 "$repo"/debian/*.substvars "$repo"/debian/virgo-dkms \
		 "$repo"/debian/virgoctl "$repo"/debian/libvirgo1 \
		 "$repo"/debian/libvirgo-dev "$repo"/debian/virgo-clouddrecd \
		 "$repo"/tools/clouddrecd/virgo-clouddrecd.service.tmp; do
		[ -e "$f" ] && echo "left: $f"
	done
	return 0
}
check "deb: nothing written outside build/deb" test -z "$(leftovers)"

lintian --fail-on error --tag-display-limit 0 \
	"$debdir/virgo_${version}_${hostarch}.changes" >"$tmp/lintian.log" 2>&1
rc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" | sed 's/^/      lintian: /'
check "deb: lintian reports no error" test "$rc" -eq 0

# contents PACKAGE ARCH PATH...: every PATH is in the package.
contents() {
	local f
	f=$(deb "$1" "$2")
	shift 2
	dpkg-deb -c "$f" | awk '{ print $6 }' | sed 's|^\./||' >"$tmp/c"
	for path in "$@"; do
		grep -qx "$path" "$tmp/c" || { echo "missing $path"; return 1; }
	done
}
src=usr/src/virgo-$version
ma=usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
check "deb: virgo-dkms holds the DKMS tree, header, udev, modprobe.d, examples" \
	contents virgo-dkms all "$src/dkms.conf" "$src/VERSION" "$src/Kbuild" \
	"$src/virgo_main.c" "$src/virgo_clouddrec.c" \
	"$src/virgo_blk_main.c" "$src/virgo_blk_dev.c" \
	"$src/virgo_blk_configfs.c" "$src/virgo_blk.h" \
	"$src/include/linux/virgo.h" "$src/include/uapi/linux/virgo.h" \
	"$src/packaging/dkms-post-build.sh" \
	usr/include/virgo/linux/virgo.h lib/udev/rules.d/60-virgo.rules \
	etc/modprobe.d/virgo.conf \
	usr/share/doc/virgo-dkms/examples/modules-load.d/virgo-clouddrec.conf \
	usr/share/doc/virgo-dkms/examples/modprobe.d/virgo-clouddrec.conf
check "deb: virgo-dkms ships no built module" \
	bash -c "! dpkg-deb -c '$(deb virgo-dkms all)' | grep -q '\.ko$'"
check "deb: virgoctl" contents virgoctl "$hostarch" usr/sbin/virgoctl \
	usr/share/man/man8/virgoctl.8.gz
check "deb: libvirgo1" contents libvirgo1 "$hostarch" \
	"$ma/libvirgo.so.1" "$ma/libvirgo.so.1.0.0"
check "deb: libvirgo-dev" contents libvirgo-dev "$hostarch" \
	usr/include/libvirgo.h usr/include/linux/virgo.h "$ma/libvirgo.a" \
	"$ma/libvirgo.so" "$ma/pkgconfig/libvirgo.pc" \
	usr/share/man/man3/libvirgo.3.gz
# virgo-clouddrecd: exactly these files, the unit as docs/clouddrecd.md says.
cdeb=$(deb virgo-clouddrecd "$hostarch")
cat >"$tmp/cd.expected" <<'EOF2'
lib/systemd/system/virgo-clouddrecd.service
usr/sbin/virgo-clouddrecd
usr/share/doc/virgo-clouddrecd/changelog.gz
usr/share/doc/virgo-clouddrecd/copyright
usr/share/man/man8/virgo-clouddrecd.8.gz
EOF2
dpkg-deb -c "$cdeb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./||' | sort \
	>"$tmp/cd.got"
check "deb: virgo-clouddrecd holds exactly daemon, man page, unit" \
	diff -u "$tmp/cd.expected" "$tmp/cd.got"
dpkg-deb -x "$cdeb" "$tmp/cd"
unit=$tmp/cd/lib/systemd/system/virgo-clouddrecd.service
check "deb: the unit starts /usr/sbin/virgo-clouddrecd with the key as a credential" \
	bash -c "grep -q '^ExecStart=/usr/sbin/virgo-clouddrecd ' '$unit' &&
		 grep -q -- '--psk-file \${CREDENTIALS_DIRECTORY}/psk' '$unit' &&
		 grep -qx 'LoadCredential=psk:/etc/virgo/clouddrecd.psk' '$unit'"
hardening_ok() {
	local d
	for d in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
		 ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
		 ProtectKernelTunables=yes ProtectKernelModules=yes \
		 ProtectControlGroups=yes MemoryDenyWriteExecute=yes \
		 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
		 SystemCallFilter=@system-service SystemCallFilter=~@privileged \
		 CapabilityBoundingSet= UMask=0077; do
		grep -qx -- "$d" "$unit" || { echo "unit lacks $d"; return 1; }
	done
	grep -q '^MemoryMax=[0-9]' "$unit" || { echo "unit lacks MemoryMax"; return 1; }
}
check "deb: the unit has the hardening of docs/clouddrecd.md" hardening_ok
# systemd's own parser: no unknown key, no bad line (exit 0 and silent).
if command -v systemd-analyze >/dev/null; then
	sed "s|^ExecStart=/usr/sbin/|ExecStart=$tmp/cd/usr/sbin/|" "$unit" \
		>"$tmp/virgo-clouddrecd.service"
	check "deb: systemd-analyze verify accepts the unit, silently" bash -c \
		"out=\$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
		 '$tmp/virgo-clouddrecd.service' 2>&1) && test -z \"\$out\""
fi
dpkg-deb -e "$cdeb" "$tmp/cdctl"
# dh_installsystemd --no-enable --no-start --no-stop-on-upgrade: no
# deb-systemd-invoke at all (no start, stop or restart: a restart frees
# what the daemon lends), and enable only for a unit the admin enabled.
check "deb: virgo-clouddrecd's scripts never start, stop or enable it on their own" \
	bash -c "! cat '$tmp'/cdctl/preinst '$tmp'/cdctl/postinst '$tmp'/cdctl/prerm \
		 2>/dev/null | grep -q 'deb-systemd-invoke' &&
		 grep -q \"deb-systemd-helper debian-installed 'virgo-clouddrecd.service'\" '$tmp/cdctl/postinst' &&
		 ! grep -q 'was-enabled defaults to true' '$tmp/cdctl/postinst'"
check "deb: the packaged daemon runs (--help)" bash -c \
	"'$tmp/cd/usr/sbin/virgo-clouddrecd' --help | grep -q -- '--psk-file'"
check "deb: the packaged man page renders without warnings" bash -c \
	"out=\$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings \
	 -E UTF-8 -l -Tutf8 -Z '$tmp/cd/usr/share/man/man8/virgo-clouddrecd.8.gz' 2>&1 >/dev/null) &&
	 test -z \"\$out\""
check "deb: virgoctl links libcrypto (status --peer)" bash -c \
	"dpkg-deb -f '$(deb virgoctl "$hostarch")' Depends | grep -q libssl"
check "deb: every package is version $version" bash -c \
	"for f in '$debdir'/*_${version}_*.deb; do
	   test \"\$(dpkg-deb -f \"\$f\" Version)\" = '$version' || exit 1; done"
check "deb: virgo-dkms's postinst adds virgo $version to dkms" bash -c \
	"dpkg-deb -e '$(deb virgo-dkms all)' '$tmp/ctl' &&
	 grep -q '^DKMS_VERSION=$version\$' '$tmp/ctl/postinst' &&
	 grep -q 'addgroup --system --quiet virgo' '$tmp/ctl/postinst'"

# ---- 5. DKMS from the package's source tree -------------------------------
x=$tmp/x
dpkg-deb -x "$(deb virgo-dkms all)" "$x"
check "dkms: the packaged dkms.conf is the top-level one" \
	cmp -s "$repo/dkms.conf" "$x/$src/dkms.conf"
# The same tree as make install-dkms-src makes from the sources.
make -s -C "$repo" install-dkms-src DESTDIR="$tmp/tree" \
	DKMS_SRCDIR="/virgo-$version" >"$tmp/tree.log" 2>&1
check "dkms: the package's tree is make install-dkms-src's" \
	diff -r "$tmp/tree/virgo-$version" "$x/$src"
mkdir -p "$tmp/src" "$tmp/dkms" "$tmp/inst/$kver"
cp -a "$x/$src" "$tmp/src/"
# A scratch dkms tree, source tree and module tree (/lib/modules stand-in):
# nothing under /var/lib/dkms, /usr/src or /lib/modules, and no depmod.
dk=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/inst"
    --no-depmod)
# Signing as Debian's dkms does, with a throw-away key (not /var/lib/dkms).
export mok_signing_key=$tmp/mok.key mok_certificate=$tmp/mok.der
if dkms add -m virgo -v "$version" "${dk[@]}" >"$tmp/dkms.log" 2>&1 &&
   dkms install -m virgo -v "$version" -k "$kver" "${dk[@]}" \
	>>"$tmp/dkms.log" 2>&1; then
	ok "dkms: add + install (build) for $kver"
else
	tail -n 30 "$tmp/dkms.log"
	find "$tmp/dkms" -name make.log -exec tail -n 20 {} \;
	bad "dkms: add + install (build) for $kver"
fi
for m in virgo virgo_clouddrec virgo_blk; do
	ko=$tmp/inst/$kver/updates/dkms/$m.ko
	vm=$(modinfo -F vermagic "$ko" 2>/dev/null)
	check "dkms: $m.ko built for $kver in updates/dkms" \
		test "${vm%% *}" = "$kver"
done
check "dkms: modules signed with the (scratch) DKMS key, as on Debian" \
	test "$(modinfo -F signer "$tmp/inst/$kver/updates/dkms/virgo.ko")" = \
	"DKMS module signing key"
# What docs/kernel-api.md names: /var/lib/dkms/virgo/kernel-<kver>-<arch>/.
dsym=$tmp/dkms/virgo/kernel-$kver-$arch/Module.symvers
check "dkms: Module.symvers in virgo/kernel-$kver-$arch/" \
	grep -q __virgo_malloc "$dsym"
check "dkms: status shows virgo/$version installed" bash -c \
	"dkms status ${dk[*]} | grep -q '^virgo/$version, $kver, $arch: installed'"
incdir=$x/usr/include/virgo
if build_example "$tmp/ex-dkms" KBUILD_EXTRA_SYMBOLS="$dsym"; then
	ok "dkms: example builds against the packaged header + DKMS Module.symvers"
else
	tail -n 20 "$tmp/ex-dkms/build.log"
	bad "dkms: example builds against the packaged header + DKMS Module.symvers"
fi
dkms remove -m virgo -v "$version" --all "${dk[@]}" >>"$tmp/dkms.log" 2>&1
check "dkms: remove leaves nothing (modules, dkms tree)" \
	test -z "$(ls -A "$tmp/dkms")" -a -z "$(list "$tmp/inst")"

finish
