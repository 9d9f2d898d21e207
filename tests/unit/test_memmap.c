/* UEFI memory map conversion: types, sorting, merging, hv's region carved out. */
#include <string.h>
#include "boot/memmap.h"
#include "test_util.h"

#define MB(x) ((uint64_t)(x) << 20)
struct desc { struct efi_md md; uint64_t extra; }; /* firmware descriptors may be larger: stride 48 */

static unsigned conv(struct desc *d, unsigned n, uint64_t hb, uint64_t hs, struct hv_mem_range *out, unsigned max,
                     unsigned *dropped)
{
    return memmap_convert(d, n * sizeof(*d), sizeof(*d), hb, hs, out, max, dropped);
}

int main(void)
{
    struct desc d[] = {
        {{7, 0, 0, 0, 0xa0, 0}, 0},               /* 0-640K conventional */
        {{0, 0, 0xa0000, 0, 0x60, 0}, 0},         /* legacy hole reserved */
        {{4, 0, MB(2), 0, MB(2) >> 12, 0}, 0},    /* out of order: boot services data 2-4M */
        {{7, 0, MB(1), 0, MB(1) >> 12, 0}, 0},    /* 1-2M conventional */
        {{1, 0, MB(4), 0, MB(60) >> 12, 0}, 0},   /* loader code 4-64M: hv inside */
        {{9, 0, MB(64), 0, 16, 0}, 0},            /* ACPI reclaim */
        {{10, 0, MB(64) + 0x10000, 0, 16, 0}, 0}, /* ACPI NVS */
        {{11, 0, 0xfec00000, 0, 1, 0}, 0},        /* MMIO */
        {{5, 0, MB(80), 0, 0, 0}, 0},             /* empty: dropped */
    };
    struct hv_mem_range r[16];
    unsigned dropped;
    unsigned n = conv(d, 9, MB(8), MB(8), r, 16, &dropped);
    CHECK(dropped == 0, "nothing dropped");
    CHECK(n == 8, "8 ranges after merging, got %u", n);
    for (unsigned i = 1; i < n; i++)
        CHECK(r[i - 1].base + r[i - 1].size <= r[i].base, "sorted, disjoint at %u", i);
    CHECK(r[0].base == 0 && r[0].size == 0xa0000 && r[0].type == HV_MEM_RAM, "low RAM");
    CHECK(r[1].type == HV_MEM_RESERVED, "legacy hole reserved");
    CHECK(r[2].base == MB(1) && r[2].size == MB(7) && r[2].type == HV_MEM_RAM, "1M..8M merged RAM: %llx+%llx",
          (unsigned long long)r[2].base, (unsigned long long)r[2].size);
    CHECK(r[3].base == MB(8) && r[3].size == MB(8) && r[3].type == HV_MEM_HV, "hv's region carved out");
    CHECK(r[4].base == MB(16) && r[4].size == MB(48) && r[4].type == HV_MEM_RAM, "RAM after hv");
    CHECK(r[5].type == HV_MEM_ACPI && r[6].type == HV_MEM_RESERVED && r[7].type == HV_MEM_MMIO, "ACPI, NVS, MMIO");

    n = conv(d, 9, MB(4), MB(60), r, 16, &dropped);
    int found = 0;
    for (unsigned i = 0; i < n; i++)
        found += r[i].type == HV_MEM_HV && r[i].base == MB(4) && r[i].size == MB(60);
    CHECK(found == 1, "hv region equal to a whole descriptor");

    n = conv(d, 9, MB(8), MB(8), r, 3, &dropped);
    CHECK(n == 3 && dropped > 0, "overflow counted: n=%u dropped=%u", n, dropped);
    CHECK(memmap_convert(d, sizeof(d), 16, 0, 0, r, 16, &dropped) == 0, "descriptor size too small refused");
    CHECK(memmap_type(14) == HV_MEM_RESERVED && memmap_type(99) == HV_MEM_RESERVED, "persistent/unknown reserved");
    CHECK(memmap_type(3) == HV_MEM_RAM && memmap_type(12) == HV_MEM_MMIO, "boot services code RAM, port space MMIO");
    return test_summary();
}
