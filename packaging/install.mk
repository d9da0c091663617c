# SPDX-License-Identifier: GPL-2.0
#
# Installing virgo (included by the top Makefile; docs/operations.md).
#
#   make install        everything below, for the kernel of KDIR
#   make uninstall      removes exactly what install put
#   make deb            Debian packages into build/deb/
#   make pkg-check      tests/pkg/install_test.sh
#
# Parts: install-modules (virgo.ko, virgo_clouddrec.ko, virgo_blk.ko into
# /lib/modules/<kver>/$(INSTALL_MOD_DIR), then depmod unless DESTDIR),
# install-header (<linux/virgo.h> for kernel modules using virgo, in
# $(KINCLUDEDIR)), install-symvers (virgo's Module.symvers for them, in
# $(SYMVERSDIR)), install-tools (libvirgo, virgoctl, man pages),
# install-conf (udev rule, modprobe.d file, boot-time examples).
# install-dkms-src puts the DKMS source tree in $(DKMS_SRCDIR) (debian/rules).
#
# Variables: DESTDIR, PREFIX (/usr/local), LIBDIR, INCLUDEDIR, SBINDIR,
# MANDIR, DOCDIR, KINCLUDEDIR, SYMVERSDIR, SYSCONFDIR (/etc, not under
# PREFIX: modprobe and udev read only there), UDEVRULESDIR, MODPROBEDIR,
# INSTALL_MOD_DIR (updates), KDIR, KVER.

VIRGO_VERSION := $(shell cat $(CURDIR)/VERSION)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/virgo
KINCLUDEDIR ?= $(INCLUDEDIR)/virgo
SYMVERSDIR ?= $(PREFIX)/lib/virgo/$(KVER)
SYSCONFDIR ?= /etc
UDEVRULESDIR ?= $(SYSCONFDIR)/udev/rules.d
MODPROBEDIR ?= $(SYSCONFDIR)/modprobe.d
INSTALL_MOD_DIR ?= updates
DKMS_SRCDIR ?= /usr/src/virgo-$(VIRGO_VERSION)
INSTALL ?= install

# The kernel release of KDIR, as in the modules' vermagic (Debian's
# include/config/kernel.release says 6.1.N, not 6.1.0-N-amd64).
KVER ?= $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null)
MODDIR = /lib/modules/$(KVER)/$(INSTALL_MOD_DIR)
DEST := $(abspath $(DESTDIR))
PKG := $(CURDIR)/packaging

# Debian's headers set CONFIG_MODULE_SIG_ALL but ship no signing key:
# sign only when the key's certificate is there, else kbuild would run
# sign-file and print its OpenSSL error.  Kbuild's own depmod step needs a
# System.map the headers lack ("missing System.map"): it is silenced, and
# depmod run here for KVER instead (not for a DESTDIR, as packagers do).
MODSIGN = $(if $(wildcard $(KDIR)/certs/signing_key.x509),,CONFIG_MODULE_SIG_ALL=)
MODINST_ARGS = INSTALL_MOD_PATH=$(DEST) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) \
	$(MODSIGN) quiet_cmd_depmod= cmd_depmod=:
DEPMOD = $(if $(DESTDIR),,depmod -a $(KVER))

# What the DKMS source tree holds: enough for Kbuild, nothing else.
# (The sources, not kbuild's generated *.mod.c.)
DKMS_FILES := dkms.conf VERSION Kbuild packaging/dkms-post-build.sh \
	$(filter-out %.mod.c,$(notdir $(wildcard $(CURDIR)/virgo_*.c \
		$(CURDIR)/virgo_*.h))) \
	$(patsubst $(CURDIR)/%,%,$(shell find $(CURDIR)/include -type f -name '*.h'))

TOOLS_ARGS = PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) \
	SBINDIR=$(SBINDIR) DESTDIR=$(DEST)

.PHONY: install uninstall install-modules uninstall-modules install-header
.PHONY: uninstall-header install-symvers uninstall-symvers install-tools
.PHONY: uninstall-tools install-conf uninstall-conf install-dkms-src deb
.PHONY: pkg-check

install: install-modules install-header install-symvers install-tools \
	 install-conf

uninstall: uninstall-modules uninstall-header uninstall-symvers \
	   uninstall-tools uninstall-conf

install-modules: modules
	@test -n "$(KVER)" || { echo "no kernel release in $(KDIR)" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(MODINST_ARGS) modules_install
	$(DEPMOD)

uninstall-modules:
	@test -n "$(KVER)" || { echo "no kernel release in $(KDIR)" >&2; exit 1; }
	rm -f $(DEST)$(MODDIR)/virgo.ko $(DEST)$(MODDIR)/virgo_clouddrec.ko \
		$(DEST)$(MODDIR)/virgo_blk.ko
	$(DEPMOD)

install-header:
	$(INSTALL) -D -m 0644 $(CURDIR)/include/linux/virgo.h \
		$(DEST)$(KINCLUDEDIR)/linux/virgo.h

uninstall-header:
	rm -f $(DEST)$(KINCLUDEDIR)/linux/virgo.h
	-rmdir $(DEST)$(KINCLUDEDIR)/linux $(DEST)$(KINCLUDEDIR) 2>/dev/null

install-symvers: modules
	@test -n "$(KVER)" || { echo "no kernel release in $(KDIR)" >&2; exit 1; }
	$(INSTALL) -D -m 0644 $(CURDIR)/Module.symvers \
		$(DEST)$(SYMVERSDIR)/Module.symvers

uninstall-symvers:
	rm -f $(DEST)$(SYMVERSDIR)/Module.symvers
	-rmdir $(DEST)$(SYMVERSDIR) $(DEST)$(dir $(SYMVERSDIR)) 2>/dev/null

install-tools:
	$(MAKE) -C $(CURDIR)/tools/libvirgo $(TOOLS_ARGS) install
	$(MAKE) -C $(CURDIR)/tools/virgoctl $(TOOLS_ARGS) STATIC=0 install
	$(INSTALL) -D -m 0644 $(PKG)/virgoctl.8 $(DEST)$(MANDIR)/man8/virgoctl.8
	$(INSTALL) -D -m 0644 $(PKG)/libvirgo.3 $(DEST)$(MANDIR)/man3/libvirgo.3

uninstall-tools:
	$(MAKE) -C $(CURDIR)/tools/libvirgo $(TOOLS_ARGS) uninstall
	$(MAKE) -C $(CURDIR)/tools/virgoctl $(TOOLS_ARGS) uninstall
	rm -f $(DEST)$(MANDIR)/man8/virgoctl.8 $(DEST)$(MANDIR)/man3/libvirgo.3

# The modprobe.d file is all comments; the boot-time load of the server is
# an example to copy (docs/operations.md), never active by itself.
install-conf:
	$(INSTALL) -D -m 0644 $(PKG)/60-virgo.rules \
		$(DEST)$(UDEVRULESDIR)/60-virgo.rules
	$(INSTALL) -D -m 0644 $(PKG)/virgo.modprobe.conf \
		$(DEST)$(MODPROBEDIR)/virgo.conf
	$(INSTALL) -D -m 0644 $(PKG)/virgo-clouddrec.modules-load.conf \
		$(DEST)$(DOCDIR)/examples/modules-load.d/virgo-clouddrec.conf
	$(INSTALL) -D -m 0644 $(PKG)/virgo-clouddrec.modprobe.conf \
		$(DEST)$(DOCDIR)/examples/modprobe.d/virgo-clouddrec.conf

uninstall-conf:
	rm -f $(DEST)$(UDEVRULESDIR)/60-virgo.rules \
		$(DEST)$(MODPROBEDIR)/virgo.conf \
		$(DEST)$(DOCDIR)/examples/modules-load.d/virgo-clouddrec.conf \
		$(DEST)$(DOCDIR)/examples/modprobe.d/virgo-clouddrec.conf
	-rmdir $(DEST)$(DOCDIR)/examples/modules-load.d \
		$(DEST)$(DOCDIR)/examples/modprobe.d $(DEST)$(DOCDIR)/examples \
		$(DEST)$(DOCDIR) 2>/dev/null

install-dkms-src:
	cd $(CURDIR) && for f in $(DKMS_FILES); do \
		mode=0644; test -x $$f && mode=0755; \
		$(INSTALL) -D -m $$mode $$f $(DEST)$(DKMS_SRCDIR)/$$f || exit 1; \
	done

# dpkg-buildpackage in a copy of the tree (build/deb/virgo-VERSION), so that
# neither its debian/ leftovers nor its user-space build touch this tree;
# the packages land in build/deb/.
DEB_DIR := $(CURDIR)/build/deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/virgo-$(VIRGO_VERSION)
	cd $(CURDIR) && if git rev-parse --is-inside-work-tree >/dev/null 2>&1; \
	then git ls-files -z --cached --others --exclude-standard | \
		xargs -0 sh -c 'for f; do test -e "$$f" && printf "%s\0" "$$f"; done' sh | \
		xargs -0 cp --parents -a -t $(DEB_DIR)/virgo-$(VIRGO_VERSION); \
	else tar --exclude=./build --exclude=./.git -cf - . | \
		tar -C $(DEB_DIR)/virgo-$(VIRGO_VERSION) -xf -; fi
	cd $(DEB_DIR)/virgo-$(VIRGO_VERSION) && \
		dpkg-buildpackage -us -uc -b -j2 >$(DEB_DIR)/build.log 2>&1 || \
		{ tail -n 40 $(DEB_DIR)/build.log >&2; exit 1; }
	rm -rf $(DEB_DIR)/virgo-$(VIRGO_VERSION)
	@ls -1 $(DEB_DIR)/*.deb

pkg-check:
	$(CURDIR)/tests/pkg/install_test.sh
