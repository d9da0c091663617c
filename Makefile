# SPDX-License-Identifier: GPL-2.0
#
# virgo: kernel memory spread across many machines.
#
#   make            build virgo.ko and virgo_clouddrec.ko against the
#                   installed kernel headers (KDIR=/path for another tree)
#   make check      build + lint + KUnit + e2e + pkg-check
#   make check-full make check, then the e2e scenarios of E2E_FULL (blk
#                   today) and kunit-smp with SMP_FULL (the KCSAN +
#                   lockdep kernel); the CI entry point
#   make kunit      KUnit suites in UML over Debian's linux-source-6.1
#   make kunit-smp  the KUnit suites on x86_64 qemu, 2 vCPUs, under
#                   KASAN + lockdep and under KCSAN + lockdep
#                   (scripts/kunit-smp.sh; SMP_CONFIGS="kcsan" for one)
#   make lint       checkpatch --strict, sparse (C=2) and W=1, zero warnings
#   make fuzz       libFuzzer over the wire decoder for FUZZ_TIME s (300)
#   make demo       a 4-node qemu cluster at work: 64 MiB allocated, written,
#                   read back, freed (root; scripts/demo.sh)
#   make e2e        qemu cluster scenarios on Debian's kernel (root, TCG;
#                   E2E="data" runs only some)
#   make deps       install every package the above need (root)
#   make examples   examples/virgo_example.ko, a module using the kernel API
#   make bench      the cluster benchmark's module and program (tests/bench)
#   make bench-cluster  virgo vs raw TCP and NVMe/TCP in a qemu cluster
#                   (root, TCG, ~20 min; tests/bench/bench-cluster.sh)
#   make bench-blk  /dev/virgobN vs NVMe/TCP on brd vs raw TCP in a qemu
#                   cluster (root, TCG, ~10 min; tests/bench/bench-blk.sh)
#   make tools      libvirgo (tools/libvirgo) and virgoctl (tools/virgoctl)
#   make tools-static   the same, virgoctl linked fully static
#   make install    modules, headers, Module.symvers, libvirgo, virgoctl, man
#                   pages, udev rule, modprobe.d file (DESTDIR, PREFIX);
#                   make uninstall removes them (docs/operations.md)
#   make deb        Debian packages into build/deb/ (dpkg-buildpackage)
#   make pkg-check  tests/pkg/install_test.sh: install, deb, lintian, DKMS
#   make clouddrecd     virgo-clouddrecd, the user-space cloud node
#                       (tools/clouddrecd) and the conformance suite
#   make clouddrecd-check   the daemon under ASan/UBSan/LSan against the
#                       conformance suite (no key, key), its fuzzer

KDIR ?= $(shell $(CURDIR)/scripts/kdir.sh)

.PHONY: all modules deps check kunit lint fuzz fuzz-check e2e clean
.PHONY: tools tools-static demo examples clouddrecd clouddrecd-check
.PHONY: check-full kunit-smp bench bench-cluster bench-blk

all: modules

modules:
	@test -n "$(KDIR)" || { echo "no kernel headers: make deps" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# examples/: modules using virgo's API, built the way a third party would.
examples: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR)/examples VIRGO_INCLUDE=$(CURDIR)/include \
		KBUILD_EXTRA_SYMBOLS=$(CURDIR)/Module.symvers modules

# tests/bench: the kernel-API benchmark module, virgo_netbench and
# virgo_blkbench (static).
bench: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tests/bench VIRGO_INCLUDE=$(CURDIR)/include \
		KBUILD_EXTRA_SYMBOLS=$(CURDIR)/Module.symvers modules
	for p in virgo_netbench virgo_blkbench; do \
		$(CC) -static -O2 -Wall -Wextra -Werror \
			-I$(CURDIR)/include/uapi -o $(CURDIR)/tests/bench/$$p \
			$(CURDIR)/tests/bench/$$p.c || exit 1; \
	done

# Not in make check (a benchmark); its build is (make bench, in check).
bench-cluster:
	VIRGO_E2E_SCENARIO_TIMEOUT=$${VIRGO_E2E_SCENARIO_TIMEOUT:-5400} \
		$(CURDIR)/tests/e2e/run.sh $(CURDIR)/tests/bench/bench-cluster.sh

# Not in make check either; it builds with make bench.
bench-blk:
	VIRGO_E2E_SCENARIO_TIMEOUT=$${VIRGO_E2E_SCENARIO_TIMEOUT:-5400} \
		$(CURDIR)/tests/e2e/run.sh $(CURDIR)/tests/bench/bench-blk.sh

deps:
	$(CURDIR)/scripts/deps.sh

kunit:
	$(CURDIR)/tests/scripts/kunit_sync_test.sh
	$(CURDIR)/scripts/kunit.sh

SMP_CONFIGS ?= kasan kcsan
kunit-smp:
	VIRGO_SMP_CONFIGS="$(SMP_CONFIGS)" $(CURDIR)/scripts/kunit-smp.sh

lint:
	KDIR=$(KDIR) $(CURDIR)/scripts/lint.sh

# The default run is long enough for well over a million executions.
FUZZ_TIME ?= 300
fuzz:
	$(MAKE) -C tools/fuzz run FUZZ_TIME=$(FUZZ_TIME)

# What make check runs: the user-space codec suite and a bounded fuzz run.
fuzz-check:
	$(MAKE) -C tools/fuzz test
	$(MAKE) -C tools/fuzz run FUZZ_TIME=30

# User space; CFLAGS passes through (warnings: WARNFLAGS).
tools:
	$(MAKE) -C tools/libvirgo
	$(MAKE) -C tools/virgoctl STATIC=0

tools-static:
	$(MAKE) -C tools/libvirgo
	$(MAKE) -C tools/virgoctl STATIC=1

clouddrecd:
	$(MAKE) -C tools/clouddrecd
	$(MAKE) -C tests/conformance

clouddrecd-check:
	$(CURDIR)/tools/clouddrecd/check.sh

# Builds the modules (for the nodes' kernel) and virgoctl itself.
demo:
	$(CURDIR)/scripts/deps.sh
	$(CURDIR)/scripts/demo.sh

# Builds the modules against the booted kernel's headers itself.
e2e:
	$(CURDIR)/tests/e2e/run.sh $(E2E)

# The e2e scenarios of make check (about 10 min); check-full adds E2E_FULL.
E2E_CHECK ?= data deaf durability faults mixed tools
E2E_FULL ?= blk

# Each step says how long it took (scripts/step.sh).
STEP = $(CURDIR)/scripts/step.sh
check:
	$(CURDIR)/scripts/deps.sh
	$(STEP) modules $(MAKE) modules
	$(STEP) bench $(MAKE) bench
	$(STEP) lint $(MAKE) lint
	$(STEP) fuzz-check $(MAKE) fuzz-check
	$(STEP) clouddrecd-check $(MAKE) clouddrecd-check
	$(STEP) kunit $(MAKE) kunit
	$(STEP) e2e $(MAKE) e2e E2E="$(E2E_CHECK)"
	$(STEP) pkg-check $(MAKE) pkg-check

# What CI runs: make check, the E2E_FULL scenarios and the suites on an SMP
# debug kernel.  One kernel of kunit-smp's two fits the 45 min budget cold
# on 2 cores: KCSAN + lockdep (UML runs every suite under KASAN already; the
# SMP KASAN kernel is make kunit-smp's, by hand; docs/design.md).
SMP_FULL ?= kcsan
check-full: check
	$(if $(strip $(E2E_FULL)),$(STEP) e2e-full $(MAKE) e2e E2E="$(E2E_FULL)")
	$(if $(strip $(SMP_FULL)),$(STEP) kunit-smp $(MAKE) kunit-smp SMP_CONFIGS="$(SMP_FULL)")

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	$(MAKE) -C $(KDIR) M=$(CURDIR)/examples clean
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tests/bench clean
	rm -f $(CURDIR)/tests/bench/virgo_netbench $(CURDIR)/tests/bench/virgo_blkbench
	$(MAKE) -C tools/fuzz clean
	$(MAKE) -C tools/libvirgo clean
	$(MAKE) -C tools/virgoctl clean
	$(MAKE) -C tools/clouddrecd clean
	$(MAKE) -C tests/conformance clean

include $(CURDIR)/packaging/install.mk
