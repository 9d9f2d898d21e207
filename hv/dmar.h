/* The ACPI DMAR table (VT-d spec chapter 8): the DMA-remapping units and the memory
 * devices must keep reaching. Pure: takes the table's bytes, so host tests drive it. */
#ifndef HV_DMAR_H
#define HV_DMAR_H
#include <stddef.h>
#include <stdint.h>

#define DMAR_MAX_UNITS 8
#define DMAR_MAX_RMRR 16
#define DMAR_MAX_SCOPES 16 /* per unit; more are counted, not kept */

/* Device scope types (VT-d 8.3.1). */
enum { DMAR_SCOPE_ENDPOINT = 1, DMAR_SCOPE_BRIDGE = 2, DMAR_SCOPE_IOAPIC = 3, DMAR_SCOPE_HPET = 4,
       DMAR_SCOPE_ACPI = 5 };

struct dmar_scope {
    uint8_t type;
    uint8_t enum_id;
    uint8_t bus;   /* start bus */
    uint8_t dev, fn; /* the last element of the path: the device itself */
    uint8_t depth; /* path elements */
};

struct dmar_unit {
    uint64_t base;         /* register base */
    uint32_t reg_size;     /* bytes of the register set: 2^Size pages (DRHD Size, bits 3:0) */
    uint16_t segment;
    uint8_t include_all;   /* INCLUDE_PCI_ALL: every device of the segment no other unit names */
    uint8_t nscopes;       /* kept in scopes[] */
    uint16_t scopes_total; /* as many as the table has */
    struct dmar_scope scopes[DMAR_MAX_SCOPES];
};

struct dmar_rmrr {
    uint64_t base, limit; /* limit: the last byte */
    uint16_t segment;
    uint8_t nscopes;
    struct dmar_scope scope; /* the first device (enough for the log) */
};

struct dmar_info {
    uint8_t haw;      /* host address width in bits (the table's value + 1) */
    uint8_t flags;    /* bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT, bit 2 DMA_CTRL_PLATFORM_OPT_IN */
    unsigned nunits, nrmrr;
    unsigned unknown; /* structures of other or unknown types, skipped */
    struct dmar_unit units[DMAR_MAX_UNITS];
    struct dmar_rmrr rmrr[DMAR_MAX_RMRR];
};

/* Parses [t, t + avail). Returns 0, or -1 with why set (the table is then not used at all:
 * half a table could leave a unit's devices out). avail bounds every read: the header's
 * length is checked against it. */
int dmar_parse(const uint8_t *t, size_t avail, struct dmar_info *out, const char **why);

/* Hides the table from the guest: its signature becomes "HVDM" (no OS knows it) and the
 * checksum is fixed so the table still sums to 0. In place, so a firmware that rebuilds
 * its XSDT later (a table installed after hv ran) brings back only a table nobody reads. */
void dmar_hide(uint8_t *t);
void dmar_unhide(uint8_t *t);
#endif
