# SPDX-License-Identifier: GPL-2.0
#
# Top-level build for refaccel-vfio-pci, its device model and its tests.
#
#   make            build the module against $(KDIR)
#   make demo       set up the host, build everything, boot the VM, run a
#                   workload through vfio on both functions
#   make check      set up, build, static checks, then the whole suite in the
#                   VM; the last line is "N passed, N failed"
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
	sparse demo check

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

linux-src:
	@bash scripts/prepare-linux-src.sh

qemu:
	bash tools/qemu/build-qemu.sh

selftests:
	$(MAKE) -C $(SELFTESTS) \
		UAPI_INC=$(LINUX_CACHE)/uapi/include \
		KSFT_INC=$(LINUX_CACHE)/linux-source-6.12/tools/testing/selftests

tools:
	$(MAKE) -C tools/vmig-decode UAPI_INC=$(LINUX_CACHE)/uapi/include

checkpatch:
	$(LINUX_CACHE)/linux-source-6.12/scripts/checkpatch.pl --strict \
		--no-tree -q -f $(patsubst $(CURDIR)/%,%,$(MOD_SRCS)) $(UAPI_HDRS)
	$(LINUX_CACHE)/linux-source-6.12/scripts/checkpatch.pl --strict \
		--no-tree -q -f $(SHARED_HDRS)

sparse:
	$(MAKE) -C $(KDIR) M=$(MODDIR) C=2 modules

demo:
	bash tests/demo.sh

check:
	bash tests/check.sh
