/* A range of physical memory and what it is: the memory map boot/ hands to the core
 * (hv/handoff.h) and vmx/ept.c builds EPT01 from. Below both, so neither reaches up. */
#ifndef LIB_MEM_RANGE_H
#define LIB_MEM_RANGE_H
#include <stdint.h>

enum hv_mem_type {
    HV_MEM_RAM = 1,       /* usable by the OS after ExitBootServices */
    HV_MEM_RESERVED = 2,  /* firmware reserved, ACPI NVS, runtime services */
    HV_MEM_ACPI = 3,      /* ACPI reclaim */
    HV_MEM_MMIO = 4,
    HV_MEM_HV = 5,        /* hv's own region: hidden from every guest */
};

struct hv_mem_range {
    uint64_t base;
    uint64_t size;
    uint32_t type; /* enum hv_mem_type */
    uint32_t pad;
};
#endif
