#include "memmap.h"

uint32_t memmap_type(uint32_t t)
{
    switch (t) {
    case 1: case 2: case 3: case 4: case 7: /* loader/boot-services code+data, conventional */
        return HV_MEM_RAM;
    case 9: /* ACPI reclaim */
        return HV_MEM_ACPI;
    case 11: case 12: /* MMIO, MMIO port space */
        return HV_MEM_MMIO;
    default: /* reserved, runtime services, unusable, ACPI NVS, PAL code, persistent, unknown */
        return HV_MEM_RESERVED;
    }
}

static void insert(struct hv_mem_range *out, unsigned *n, unsigned max, unsigned *dropped, uint64_t base,
                   uint64_t size, uint32_t type)
{
    if (!size)
        return;
    /* Merge with a neighbour of the same type when contiguous (the common case: sorted input). */
    if (*n && out[*n - 1].type == type && out[*n - 1].base + out[*n - 1].size == base) {
        out[*n - 1].size += size;
        return;
    }
    if (*n == max) {
        (*dropped)++;
        return;
    }
    unsigned i = *n;
    while (i && out[i - 1].base > base) { /* insertion sort: maps are nearly sorted */
        out[i] = out[i - 1];
        i--;
    }
    out[i] = (struct hv_mem_range){.base = base, .size = size, .type = type};
    (*n)++;
}

unsigned memmap_convert(const void *map, size_t map_size, size_t desc_size, uint64_t hv_base, uint64_t hv_size,
                        struct hv_mem_range *out, unsigned max, unsigned *dropped)
{
    unsigned n = 0;
    *dropped = 0;
    if (desc_size < sizeof(struct efi_md))
        return 0;
    uint64_t hv_end = hv_base + hv_size;
    for (size_t off = 0; off + desc_size <= map_size; off += desc_size) {
        const struct efi_md *d = (const struct efi_md *)((const char *)map + off);
        uint64_t b = d->phys, e = d->phys + (d->pages << 12);
        uint32_t t = memmap_type(d->type);
        if (e <= b)
            continue;
        if (hv_size && b < hv_end && e > hv_base) { /* carve hv's region out of its descriptor */
            insert(out, &n, max, dropped, b, (hv_base > b ? hv_base : b) - b, t);
            uint64_t hb = hv_base > b ? hv_base : b, he = hv_end < e ? hv_end : e;
            insert(out, &n, max, dropped, hb, he - hb, HV_MEM_HV);
            insert(out, &n, max, dropped, he, e - he, t);
        } else {
            insert(out, &n, max, dropped, b, e - b, t);
        }
    }
    /* Second pass: merge neighbours that became adjacent after sorting. */
    unsigned w = 0;
    for (unsigned i = 0; i < n; i++) {
        if (w && out[w - 1].type == out[i].type && out[w - 1].base + out[w - 1].size == out[i].base)
            out[w - 1].size += out[i].size;
        else
            out[w++] = out[i];
    }
    return w;
}
