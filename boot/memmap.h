/* UEFI memory map → hv's ranges. Pure logic (host-tested): no UEFI headers here. */
#ifndef BOOT_MEMMAP_H
#define BOOT_MEMMAP_H
#include <stddef.h>
#include <stdint.h>
#include "../hv/handoff.h"

/* Same layout as EFI_MEMORY_DESCRIPTOR (UEFI 2.x, 7.2); entries are desc_size apart. */
struct efi_md {
    uint32_t type;
    uint32_t pad;
    uint64_t phys;
    uint64_t virt;
    uint64_t pages;
    uint64_t attr;
};

/* Converts, sorts and merges; hv's region [hv_base, hv_base+hv_size) becomes HV_MEM_HV.
 * Returns the number of ranges written (at most max); *dropped counts what did not fit. */
unsigned memmap_convert(const void *map, size_t map_size, size_t desc_size, uint64_t hv_base, uint64_t hv_size,
                        struct hv_mem_range *out, unsigned max, unsigned *dropped);
uint32_t memmap_type(uint32_t efi_type);
#endif
