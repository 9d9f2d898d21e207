/*
 * The ACPI tables of the Bochs platform (see ../../shared/platform.md, "Giving Linux an
 * ACPI platform"): OVMF on Bochs installs none, so Linux would see one CPU and could
 * not power off. Installed through EFI_ACPI_TABLE_PROTOCOL, which copies each table,
 * fills the FADT's FACS/DSDT pointers and builds RSDT/XSDT/RSDP.
 */
#include "fixture.h"

#define ACPI_TABLE_PROTOCOL_GUID {0xffe06bdd, 0x6107, 0x46a6, {0x7b, 0xb2, 0x5a, 0x9c, 0x7e, 0xc5, 0x27, 0x5c}}

typedef struct _ACPI_TABLE_PROTOCOL ACPI_TABLE_PROTOCOL;
struct _ACPI_TABLE_PROTOCOL {
    EFI_STATUS(EFIAPI *InstallAcpiTable)(ACPI_TABLE_PROTOCOL *, VOID *table, UINTN size, UINTN *key);
    EFI_STATUS(EFIAPI *UninstallAcpiTable)(ACPI_TABLE_PROTOCOL *, UINTN key);
};

struct sdt_header {
    char sig[4];
    UINT32 length;
    UINT8 revision, checksum;
    char oem_id[6], oem_table_id[8];
    UINT32 oem_revision, creator_id, creator_revision;
} __attribute__((packed));

struct gas { /* Generic Address Structure */
    UINT8 space, bit_width, bit_offset, access_size;
    UINT64 address;
} __attribute__((packed));

struct fadt { /* revision 4 (ACPI 3.0) layout: 244 bytes */
    struct sdt_header h;
    UINT32 firmware_ctrl, dsdt;
    UINT8 reserved0, pm_profile;
    UINT16 sci_int;
    UINT32 smi_cmd;
    UINT8 acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
    UINT32 pm1a_evt, pm1b_evt, pm1a_cnt, pm1b_cnt, pm2_cnt, pm_tmr, gpe0, gpe1;
    UINT8 pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_len, gpe1_len, gpe1_base, cst_cnt;
    UINT16 p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
    UINT8 duty_offset, duty_width, day_alrm, mon_alrm, century;
    UINT16 iapc_boot_arch;
    UINT8 reserved1;
    UINT32 flags;
    struct gas reset_reg;
    UINT8 reset_value, reserved2[3];
    UINT64 x_firmware_ctrl, x_dsdt;
    struct gas x_pm1a_evt, x_pm1b_evt, x_pm1a_cnt, x_pm1b_cnt, x_pm2_cnt, x_pm_tmr, x_gpe0, x_gpe1;
} __attribute__((packed));
_Static_assert(sizeof(struct fadt) == 244, "FADT rev 4 is 244 bytes");

struct facs {
    char sig[4];
    UINT32 length, hw_signature, waking_vector, global_lock, flags;
    UINT64 x_waking_vector;
    UINT8 version, reserved0[3];
    UINT32 ospm_flags;
    UINT8 reserved1[24];
} __attribute__((packed));
_Static_assert(sizeof(struct facs) == 64, "FACS is 64 bytes");

/* DSDT body, hand-assembled AML: Name (\_S5, Package (4) {0, 0, 0, 0}).
 * 08 NameOp, 5C '\', "_S5_", 12 PackageOp, 06 PkgLength (itself + count + 4 elements),
 * 04 NumElements, 00 ZeroOp x4. SLP_TYP 0 + SLP_EN makes Bochs power off. */
static const UINT8 dsdt_aml[] = {0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00};

#define MADT_MAX (44 + HV_FIX_MAX_CPUS * 8 + 12 + 10 + 6)

static void header(struct sdt_header *h, const char *sig, UINT32 len, UINT8 rev)
{
    CopyMem(h->sig, (VOID *)sig, 4);
    h->length = len;
    h->revision = rev;
    CopyMem(h->oem_id, "HVTEST", 6);
    CopyMem(h->oem_table_id, "HVBOCHS ", 8);
    h->oem_revision = 1;
    CopyMem(&h->creator_id, "HVFX", 4);
    h->creator_revision = 1;
}

static void checksum(void *t, UINT32 len)
{
    UINT8 *p = t, sum = 0;
    p[9] = 0;
    for (UINT32 i = 0; i < len; i++)
        sum += p[i];
    p[9] = (UINT8)-sum;
}

static struct gas io_gas(UINT8 bits, UINT8 access, UINT64 port)
{
    struct gas g = {.space = 1 /* system I/O */, .bit_width = bits, .access_size = access, .address = port};
    return g;
}

static UINT32 build_madt(UINT8 *m, const UINT32 *apic_ids, UINTN ncpus)
{
    SetMem(m, MADT_MAX, 0);
    UINT32 off = 44;
    *(UINT32 *)(m + 36) = 0xfee00000; /* local APIC address */
    *(UINT32 *)(m + 40) = 1;          /* PC-AT compatible: dual 8259s present */
    for (UINTN i = 0; i < ncpus; i++, off += 8) {
        m[off] = 0, m[off + 1] = 8;                  /* Processor Local APIC */
        m[off + 2] = (UINT8)i;                       /* ACPI processor UID */
        m[off + 3] = (UINT8)apic_ids[i];
        *(UINT32 *)(m + off + 4) = 1;                /* enabled */
    }
    m[off] = 1, m[off + 1] = 12;                     /* I/O APIC */
    m[off + 2] = (UINT8)ncpus;                       /* Bochs gives it the ID after the CPUs' */
    *(UINT32 *)(m + off + 4) = 0xfec00000;
    *(UINT32 *)(m + off + 8) = 0;                    /* GSI base */
    off += 12;
    m[off] = 2, m[off + 1] = 10;                     /* Interrupt Source Override */
    m[off + 2] = 0, m[off + 3] = 9;                  /* ISA IRQ 9 (the SCI) */
    *(UINT32 *)(m + off + 4) = 9;                    /* -> GSI 9 */
    *(UINT16 *)(m + off + 8) = 0x000d;               /* level, active high */
    off += 10;
    m[off] = 4, m[off + 1] = 6;                      /* Local APIC NMI */
    m[off + 2] = 0xff;                               /* all processors */
    *(UINT16 *)(m + off + 3) = 0x0005;               /* edge, active high */
    m[off + 5] = 1;                                  /* LINT1 */
    off += 6;
    header((struct sdt_header *)m, "APIC", off, 3);
    checksum(m, off);
    return off;
}

static UINT8 pci_cfg_write8(UINT32 dev, UINT32 fn, UINT32 reg, UINT8 v)
{
    UINT32 addr = 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc);
    __asm__ volatile("outl %0, %1" : : "a"(addr), "Nd"((UINT16)0xcf8));
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"((UINT16)(0xcfc + (reg & 3))));
    UINT8 r;
    __asm__ volatile("inb %1, %0" : "=a"(r) : "Nd"((UINT16)(0xcfc + (reg & 3))));
    return r;
}

static EFI_STATUS install(ACPI_TABLE_PROTOCOL *p, const char *name, void *t, UINTN len)
{
    UINTN key = 0;
    EFI_STATUS s = uefi_call_wrapper(p->InstallAcpiTable, 4, p, t, len, &key);
    if (EFI_ERROR(s))
        say("ERROR: InstallAcpiTable(%s) failed: 0x%llx", name, (unsigned long long)s);
    else
        say("installed %s (%llu bytes)", name, (unsigned long long)len);
    return s;
}

EFI_STATUS install_acpi_tables(const UINT32 *apic_ids, UINTN ncpus)
{
    EFI_GUID g = ACPI_TABLE_PROTOCOL_GUID;
    ACPI_TABLE_PROTOCOL *p;
    EFI_STATUS s = uefi_call_wrapper(BS->LocateProtocol, 3, &g, NULL, (void **)&p);
    if (EFI_ERROR(s)) {
        say("ERROR: no EFI_ACPI_TABLE_PROTOCOL: 0x%llx", (unsigned long long)s);
        return s;
    }
    /* OVMF leaves the SCI on PIRQA = IRQ 10; the FADT and the override say IRQ 9. */
    UINT8 pirqa = pci_cfg_write8(1, 0, 0x60, 9), line = pci_cfg_write8(1, 3, 0x3c, 9);
    say("SCI routed to IRQ 9 (PIIX3 PIRQA route %u, PIIX4 PM interrupt line %u)", pirqa, line);

    static struct facs facs;
    SetMem(&facs, sizeof(facs), 0);
    CopyMem(facs.sig, "FACS", 4);
    facs.length = sizeof(facs);
    facs.version = 2;

    static UINT8 dsdt[sizeof(struct sdt_header) + sizeof(dsdt_aml)];
    SetMem(dsdt, sizeof(dsdt), 0);
    CopyMem(dsdt + sizeof(struct sdt_header), (VOID *)dsdt_aml, sizeof(dsdt_aml));
    header((struct sdt_header *)dsdt, "DSDT", sizeof(dsdt), 2);
    checksum(dsdt, sizeof(dsdt));

    static struct fadt f;
    SetMem(&f, sizeof(f), 0);
    f.sci_int = 9;
    f.pm1a_evt = 0xb000, f.pm1_evt_len = 4;
    f.pm1a_cnt = 0xb004, f.pm1_cnt_len = 2;
    f.pm_tmr = 0xb008, f.pm_tmr_len = 4;
    f.p_lvl2_lat = 0xfff, f.p_lvl3_lat = 0xfff; /* no C2/C3 */
    f.iapc_boot_arch = 3;                       /* legacy devices, 8042 */
    /* WBINVD, C1 on all CPUs, power and sleep buttons not fixed features, RESET_REG_SUP */
    f.flags = 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 10;
    f.reset_reg = io_gas(8, 1, 0xcf9), f.reset_value = 6;
    f.x_pm1a_evt = io_gas(32, 0, 0xb000);
    f.x_pm1a_cnt = io_gas(16, 0, 0xb004);
    f.x_pm_tmr = io_gas(32, 0, 0xb008);
    header(&f.h, "FACP", sizeof(f), 4);
    checksum(&f, sizeof(f));

    static UINT8 madt[MADT_MAX];
    UINT32 madt_len = build_madt(madt, apic_ids, ncpus);

    /* FACS and DSDT first: the protocol links them into the FADT when that arrives. */
    if (EFI_ERROR((s = install(p, "FACS", &facs, sizeof(facs)))) ||
        EFI_ERROR((s = install(p, "DSDT", dsdt, sizeof(dsdt)))) ||
        EFI_ERROR((s = install(p, "FADT", &f, sizeof(f)))) ||
        EFI_ERROR((s = install(p, "MADT", madt, madt_len))))
        return s;
    say("installed ACPI tables: FACS DSDT FADT MADT (%llu CPUs)", (unsigned long long)ncpus);
    return EFI_SUCCESS;
}
