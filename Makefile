# SPDX-License-Identifier: GPL-2.0
#
# Top-level build for refaccel-vfio-pci, its device model and its tests.
#
#   make            build the module against $(KDIR)
#   make install    install it for that kernel (INSTALL_MOD_PATH=/root too),
#                   depmod; make uninstall; make dkms-src (see dkms.conf)
#   make demo       set up the host, build everything, boot the VM, run a
#                   workload through vfio on both functions
#   make check      set up, build, static checks, then the whole suite in the
#                   VM; the last line is "N passed, N failed"
#   make bench      boot the VMs and print a table of ratios (migration cost
#                   against memcpy, stop-copy bytes against bytes dirtied,
#                   quiesce against the op in flight, QEMU downtime), also
#                   out/bench/bench.json and two PNGs; not part of make
#                   check, which only runs the benchmark once, tiny
#
# KDIR defaults to the headers of the Debian 6.12 kernel chosen by
# scripts/setup-host.sh (or the newest installed 6.12 Debian kernel).

REFACCEL_CACHE ?= /var/cache/refaccel
export REFACCEL_CACHE

KVER ?= $(shell cat $(REFACCEL_CACHE)/kver 2>/dev/null || \
	  ls /lib/modules 2>/dev/null | grep '^6\.12\..*+deb12-amd64$$' | sort -V | tail -1)
KDIR ?= /lib/modules/$(KVER)/build
MODDIR := $(CURDIR)/drivers/vfio/pci/refaccel
SELFTESTS := $(CURDIR)/tools/testing/selftests/vfio-mig

# Files checkpatch covers: the whole module.  The shared register header is
# also included by QEMU and userspace, which have no BIT(), so BIT_MACRO is
# the one check waived for it.
MOD_SRCS = $(filter-out %.mod.c,$(wildcard $(MODDIR)/*.c $(MODDIR)/*.h))
# Test-only kernel modules (scripts/build-test-modules.sh) are kernel code too.
MOD_SRCS += $(wildcard $(CURDIR)/tests/kunit/*.c $(CURDIR)/tests/splat/*.c)
SHARED_HDRS = include/hw/refaccel_regs.h
UAPI_HDRS = include/uapi/linux/refaccel_vfio.h

.PHONY: all module clean setup linux-src qemu selftests tools checkpatch \
	sparse demo check bench

all: module

module:
	$(MAKE) -C $(KDIR) M=$(MODDIR) W=1 modules

clean:
	$(MAKE) -C $(KDIR) M=$(MODDIR) clean
	$(MAKE) -C $(SELFTESTS) clean
	$(MAKE) -C tools/vmig-decode clean

setup:
	bash scripts/setup-host.sh

# Later recipes need the directory printed by prepare-linux-src.sh; it is
# stable for a given package version, so compute it lazily.
LINUX_CACHE = $(shell bash scripts/prepare-linux-src.sh)
LINUX73_CACHE = $(shell bash scripts/prepare-linux-src.sh 7.3)

linux-src:
	@bash scripts/prepare-linux-src.sh
	@bash scripts/prepare-linux-src.sh 7.3

qemu:
	bash tools/qemu/build-qemu.sh

selftests:
	$(MAKE) -C $(SELFTESTS) \
		UAPI_INC=$(LINUX_CACHE)/uapi/include \
		KSFT_INC=$(LINUX_CACHE)/linux-source-6.12/tools/testing/selftests

tools:
	$(MAKE) -C tools/vmig-decode UAPI_INC=$(LINUX_CACHE)/uapi/include

# Both kernels' checkpatch: 7.3's knows newer APIs (kzalloc_obj), 6.12's
# is the one Debian's stable users run.
checkpatch:
	@for cp in $(LINUX_CACHE)/linux-source-6.12/scripts/checkpatch.pl \
		   $(LINUX73_CACHE)/linux-source-7.3/scripts/checkpatch.pl; do \
		$$cp --strict --no-tree -q -f \
			$(patsubst $(CURDIR)/%,%,$(MOD_SRCS)) $(UAPI_HDRS) && \
		$$cp --strict --no-tree -q -f $(SHARED_HDRS) || exit 1; \
	done

sparse:
	$(MAKE) -C $(KDIR) M=$(MODDIR) C=2 modules

# ---- Installing (README.md, "Installing") ----
# The project's one version number lives in dkms.conf.
PKG_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' $(CURDIR)/dkms.conf)
# The release KDIR was built for (what kbuild installs under).
KREL = $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
# make install: kbuild's modules_install to
# $(INSTALL_MOD_PATH)/lib/modules/$(KREL)/$(INSTALL_MOD_DIR), compressed like
# the kernel's own modules, then depmod (-b for another root).
# INSTALL_MOD_PATH, or DESTDIR, installs into another root (a package, a test).
INSTALL_MOD_DIR ?= updates
MODROOT = $(abspath $(or $(INSTALL_MOD_PATH),$(DESTDIR)))
DEPMOD = depmod -a $(if $(MODROOT),-b $(MODROOT)) $(KREL)
# Debian's headers ship no signing key: leave the module unsigned rather
# than let sign-file fail on every install (dkms signs with its own key).
SIG_KEY = $(shell sed -n 's/^CONFIG_MODULE_SIG_KEY="\(.*\)"$$/\1/p' $(KDIR)/.config 2>/dev/null)
NOSIGN = $(if $(filter pkcs11:%,$(SIG_KEY))$(wildcard $(KDIR)/$(SIG_KEY) $(SIG_KEY)),,CONFIG_MODULE_SIG_ALL=)
# make dkms-src: the source tree dkms needs (dkms.conf, the module,
# include/) in $(DKMS_SOURCE_TREE)/refaccel-vfio-pci-$(PKG_VERSION).
DKMS_SOURCE_TREE ?= /usr/src
DKMS_SRC = $(DKMS_SOURCE_TREE)/refaccel-vfio-pci-$(PKG_VERSION)

.PHONY: install uninstall dkms-src

install: module
	@test -n "$(KREL)" || { echo "no $(KDIR)/include/config/kernel.release" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(MODDIR) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) \
		INSTALL_MOD_PATH=$(MODROOT) $(NOSIGN) modules_install
	$(DEPMOD)

uninstall:
	@test -n "$(KREL)" || { echo "no $(KDIR)/include/config/kernel.release" >&2; exit 1; }
	rm -f $(MODROOT)/lib/modules/$(KREL)/$(INSTALL_MOD_DIR)/refaccel-vfio-pci.ko*
	$(DEPMOD)

dkms-src:
	@test -n "$(PKG_VERSION)" || { echo "no PACKAGE_VERSION in dkms.conf" >&2; exit 1; }
	rm -rf $(DKMS_SRC)
	mkdir -p $(DKMS_SRC)/drivers/vfio/pci/refaccel
	cp dkms.conf $(DKMS_SRC)/
	cp -r include $(DKMS_SRC)/
	cp $(MODDIR)/Kbuild $(MODDIR)/*.mk $(filter-out %.mod.c,$(wildcard $(MODDIR)/*.[ch])) \
		$(DKMS_SRC)/drivers/vfio/pci/refaccel/
	@echo "next: dkms install refaccel-vfio-pci/$(PKG_VERSION)"

demo:
	bash tests/demo.sh

check:
	bash tests/check.sh

bench:
	bash tests/bench.sh
