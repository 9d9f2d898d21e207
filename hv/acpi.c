#include "acpi.h"
#include <stdbool.h>
#include <string.h>
#include "../lib/x86.h"

static const void *phys(uint64_t pa) { return (const void *)(uintptr_t)pa; }

uint64_t acpi_find_table(uint64_t rsdp, const char *sig)
{
    const uint8_t *r = phys(rsdp);
    if (memcmp(r, "RSD PTR ", 8))
        return 0;
    bool x = r[15] >= 2;
    uint64_t sdt = x ? *(const uint64_t *)(r + 24) : *(const uint32_t *)(r + 16);
    if (!sdt)
        return 0;
    const uint8_t *h = phys(sdt);
    uint32_t len = *(const uint32_t *)(h + 4), esz = x ? 8 : 4;
    if (len < 36 || len > 0x10000)
        return 0;
    for (uint32_t off = 36; off + esz <= len; off += esz) {
        uint64_t t = x ? *(const uint64_t *)(h + off) : *(const uint32_t *)(h + off);
        if (t && !memcmp(phys(t), sig, 4))
            return t;
    }
    return 0;
}

static uint32_t pci_read32(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg)
{
    outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
    return inl(0xcfc);
}

uint16_t acpi_pm1a_cnt(uint64_t rsdp, const char **source)
{
    uint64_t fadt = rsdp ? acpi_find_table(rsdp, "FACP") : 0;
    if (fadt) {
        const uint8_t *f = phys(fadt);
        uint32_t len = *(const uint32_t *)(f + 4);
        uint32_t blk = len >= 68 ? *(const uint32_t *)(f + 64) : 0;
        if (!blk && len >= 184 && f[172] == 1) /* X_PM1a_CNT_BLK in I/O space */
            blk = (uint32_t)*(const uint64_t *)(f + 176);
        if (blk && blk < 0x10000) {
            *source = "FADT";
            return (uint16_t)blk;
        }
    }
    uint32_t id = pci_read32(0, 1, 3, 0);
    if (id == 0x71138086u && (pci_read32(0, 1, 3, 0x80) & 1)) { /* PIIX4 PM, PMIOSE */
        *source = "PIIX4 PMBA";
        return (uint16_t)((pci_read32(0, 1, 3, 0x40) & 0xffc0) + 4);
    }
    id = pci_read32(0, 0x1f, 0, 0);
    if (id == 0x29188086u) { /* ICH9 LPC (QEMU q35) */
        *source = "ICH9 PMBASE";
        return (uint16_t)((pci_read32(0, 0x1f, 0, 0x40) & 0xff80) + 4);
    }
    *source = "none";
    return 0;
}
