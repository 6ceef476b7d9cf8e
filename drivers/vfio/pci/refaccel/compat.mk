# SPDX-License-Identifier: GPL-2.0-only
# Probes of the kernel's headers for compat.h, where a version number would
# be a guess; included by every Kbuild that compiles the driver's files.
# The 7.x vfio_pci_core maps BARs itself (vfio_pci_core_get_iomap).
ccflags-y += $(shell grep -qs vfio_pci_core_get_iomap \
		$(srctree)/include/linux/vfio_pci_core.h && \
		echo -DREFACCEL_HAVE_PCI_CORE_GET_IOMAP)
# The 7.x core answers VFIO_DEVICE_GET_REGION_INFO through an op.
ccflags-y += $(shell grep -qs get_region_info_caps \
		$(srctree)/include/linux/vfio.h && \
		echo -DREFACCEL_HAVE_REGION_INFO_OP)
# Since 6.17 vfio_pci_core_match() calls the match_token_uuid op without
# checking it (the VF token check moved behind an op for iommufd's bind).
ccflags-y += $(shell grep -qs match_token_uuid \
		$(srctree)/include/linux/vfio.h && \
		echo -DREFACCEL_HAVE_MATCH_TOKEN_UUID_OP)
# The 7.x core keeps the PRECOPY_INFOv2 opt-in in struct vfio_device.
ccflags-y += $(shell grep -qs precopy_info_v2 \
		$(srctree)/include/linux/vfio.h && \
		echo -DREFACCEL_HAVE_CORE_PRECOPY_INFO_V2)
