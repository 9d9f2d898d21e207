/*
 * l1.efi: entry, capabilities, memory, descriptor tables and the scenario runner.
 * Runs on the BSP only; each scenario runs with interrupts off, the PIC and the local
 * APIC timer masked, and L1's own IDT (so a fault is reported, not fatal).
 */
#include "l1.h"
#include "../../lib/serial.h"

struct caps cap;
struct mem m;
u64 image_base, image_size;
BOOLEAN in_vmx;
u16 tss_sel;
u64 cr4_orig;
static struct dtr fw_gdt, fw_idt, my_gdt, my_idt;
static u16 fw_tr;

u32 adj(u32 want, u64 capmsr) { return (want | (u32)capmsr) & (u32)(capmsr >> 32); }
BOOLEAN allowed(u32 want, u64 capmsr) { return (want & ~(u32)(capmsr >> 32)) == 0; }

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static void cpuid(u32 leaf, u32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

void reload_tables(void)
{
    __asm__ volatile("lgdt %0; lidt %1" ::"m"(my_gdt), "m"(my_idt));
}

static void read_caps(void)
{
    cap.basic = rdmsr(0x480);
    cap.revision = (u32)cap.basic & 0x7fffffff;
    cap.true_ctls = (cap.basic >> 55) & 1; /* SDM A.1: IA32_VMX_TRUE_*_CTLS exist */
    cap.pin = rdmsr(cap.true_ctls ? 0x48d : 0x481);
    cap.proc = rdmsr(cap.true_ctls ? 0x48e : 0x482);
    cap.exit = rdmsr(cap.true_ctls ? 0x48f : 0x483);
    cap.entry = rdmsr(cap.true_ctls ? 0x490 : 0x484);
    cap.misc = rdmsr(0x485);
    cap.cr0_fixed0 = rdmsr(0x486);
    cap.cr0_fixed1 = rdmsr(0x487);
    cap.cr4_fixed0 = rdmsr(0x488);
    cap.cr4_fixed1 = rdmsr(0x489);
    cap.secondary = allowed(P_SECONDARY, cap.proc);
    if (cap.secondary)
        cap.proc2 = rdmsr(0x48b);
    u32 p2 = (u32)(cap.proc2 >> 32);
    if (p2 & (P2_EPT | P2_VPID))
        cap.ept_vpid = rdmsr(0x48c);
    cap.timer = allowed(PIN_TIMER, cap.pin);
    cap.save_timer = cap.timer && allowed(X_SAVE_TIMER, cap.exit);
    cap.vnmi = allowed(PIN_NMI_EXIT | PIN_VNMI, cap.pin);
    cap.nmi_window = cap.vnmi && allowed(P_NMI_WIN, cap.proc);
    cap.hlt_state = (cap.misc >> 6) & 1; /* SDM A.6 */
    cap.ro_write = (cap.misc >> 29) & 1;
    cap.mtf = allowed(P_MTF, cap.proc);
    cap.msr_bitmaps = allowed(P_MSR_BITMAPS, cap.proc);
    cap.io_bitmaps = allowed(P_IO_BITMAPS, cap.proc);
    cap.cr8_exit = allowed(P_CR8_LOAD | P_CR8_STORE, cap.proc);
    cap.cr3_clear = ((u32)cap.proc & (P_CR3_LOAD | P_CR3_STORE)) == 0;
    cap.invept = (p2 & P2_EPT) && (cap.ept_vpid & (1ull << 20));   /* SDM A.10 */
    cap.invvpid = (p2 & P2_VPID) && (cap.ept_vpid & (1ull << 32));
    u32 r[4];
    cpuid(0x80000000, r);
    cap.maxphys = 36;
    if (r[0] >= 0x80000008) {
        cpuid(0x80000008, r);
        cap.maxphys = (u8)r[0];
    }
    /* The watchdog: about 2^24 TSC ticks per L2 run (rate: IA32_VMX_MISC[4:0], SDM 26.5.1). */
    u32 rate = (u32)cap.misc & 0x1f;
    watchdog = rate >= 24 ? 1 : (1u << (24 - rate));
    /* The raw capability MSRs, for the table of what L1 sees next to the CPU's (not compared:
     * tests/tools/captable.sh). Only the MSRs that exist (SDM A.1-A.11). */
    static const struct { u32 msr; const char *name; } raw[] = {
        {0x480, "BASIC"}, {0x481, "PINBASED_CTLS"}, {0x482, "PROCBASED_CTLS"}, {0x483, "EXIT_CTLS"},
        {0x484, "ENTRY_CTLS"}, {0x485, "MISC"}, {0x486, "CR0_FIXED0"}, {0x487, "CR0_FIXED1"},
        {0x488, "CR4_FIXED0"}, {0x489, "CR4_FIXED1"}, {0x48a, "VMCS_ENUM"}, {0x48b, "PROCBASED_CTLS2"},
        {0x48c, "EPT_VPID_CAP"}, {0x48d, "TRUE_PINBASED_CTLS"}, {0x48e, "TRUE_PROCBASED_CTLS"},
        {0x48f, "TRUE_EXIT_CTLS"}, {0x490, "TRUE_ENTRY_CTLS"}, {0x491, "VMFUNC"},
    };
    for (unsigned i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        u32 n = raw[i].msr;
        if ((n == 0x48b && !cap.secondary) || (n == 0x48c && !(p2 & (P2_EPT | P2_VPID))) ||
            (n >= 0x48d && n <= 0x490 && !cap.true_ctls) || (n == 0x491 && !(p2 & (1u << 13))))
            continue;
        outcap("0x%x %s 0x%llx", n, raw[i].name, rdmsr(n));
    }
#define YN(x) ((x) ? "yes" : "no")
    out("caps: true-controls %s preemption-timer %s save-timer %s hlt-activity %s", YN(cap.true_ctls),
        YN(cap.timer), YN(cap.save_timer), YN(cap.hlt_state));
    out("caps: virtual-nmis %s nmi-window %s mtf %s msr-bitmaps %s io-bitmaps %s", YN(cap.vnmi),
        YN(cap.nmi_window), YN(cap.mtf), YN(cap.msr_bitmaps), YN(cap.io_bitmaps));
    out("caps: cr8-exiting %s cr3-exiting-optional %s", YN(cap.cr8_exit), YN(cap.cr3_clear));
}

static BOOLEAN alloc_memory(void)
{
    enum { NPAGES = 27 };
    EFI_PHYSICAL_ADDRESS a = 0xffffffff;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, NPAGES, &a)))
        return FALSE;
    u8 *p = (u8 *)(UINTN)a;
    for (UINTN i = 0; i < NPAGES * 4096; i++)
        p[i] = 0;
    u8 **slots[] = {&m.vmxon, &m.vmcs[0], &m.vmcs[1], &m.vmcs[2], &m.badrev, &m.link, &m.msr_bitmap,
                    &m.io_a, &m.io_b, &m.msr_area, &m.l2_idt, &m.pml4_a, &m.pml4_b, &m.pdpt, &m.gdt,
                    &m.tss, &m.idt, &m.scratch};
    for (unsigned i = 0; i < sizeof(slots) / sizeof(slots[0]); i++, p += 4096)
        *slots[i] = p;
    m.pd = p; /* 4 pages */
    p += 4 * 4096;
    m.l2_stack = p; /* 4 pages, up to NPAGES */
    return TRUE;
}

/* L2's page tables: identity map of the low 4 GiB with 2 MiB pages. A and B are two PML4s
 * with the same content (the seed scenario switches L2 from A to B). */
static void build_l2(void)
{
    u64 *pd = (u64 *)m.pd, *pdpt = (u64 *)m.pdpt;
    for (u64 i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83; /* P, RW, PS */
    for (u64 i = 0; i < 4; i++)
        pdpt[i] = (PA(m.pd) + i * 4096) | 3;
    ((u64 *)m.pml4_a)[0] = PA(m.pdpt) | 3;
    ((u64 *)m.pml4_b)[0] = PA(m.pdpt) | 3;
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (u64 v = 0; v < 256; v++) { /* 64-bit interrupt gates (SDM Vol. 3A 6.14.1) */
        u64 off = PA(l2_isr_table) + v * 16, *g = (u64 *)(m.l2_idt + v * 16);
        g[0] = (off & 0xffff) | ((u64)cs << 16) | (0x8eull << 40) | ((off >> 16 & 0xffff) << 48);
        g[1] = off >> 32;
    }
}

/* L1's GDT: the firmware's plus a 64-bit TSS (VM exits need a non-null host TR, SDM 26.2.3);
 * L1's IDT: the firmware's with vectors 0-31 sent to asm.asm's stubs. */
static void build_tables(void)
{
    u16 cs;
    __asm__ volatile("sgdt %0; sidt %1; str %2; mov %%cs, %3" : "=m"(fw_gdt), "=m"(fw_idt), "=m"(fw_tr), "=r"(cs));
    u32 n = fw_gdt.limit + 1u;
    if (n > 4096 - 32)
        n = 4096 - 32;
    for (u32 i = 0; i < n; i++)
        m.gdt[i] = ((u8 *)(UINTN)fw_gdt.base)[i];
    tss_sel = (u16)((n + 15) & ~15u);
    u64 base = PA(m.tss), lim = 0x67, *d = (u64 *)(m.gdt + tss_sel);
    d[0] = (lim & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | ((base >> 24 & 0xff) << 56);
    d[1] = base >> 32;
    my_gdt.limit = (u16)(tss_sel + 15);
    my_gdt.base = PA(m.gdt);
    n = fw_idt.limit + 1u;
    for (u32 i = 0; i < n && i < 4096; i++)
        m.idt[i] = ((u8 *)(UINTN)fw_idt.base)[i];
    for (u64 v = 0; v < 32; v++) {
        u64 off = PA(l1_isr_table) + v * 16, *g = (u64 *)(m.idt + v * 16);
        g[0] = (off & 0xffff) | ((u64)cs << 16) | (0x8eull << 40) | ((off >> 16 & 0xffff) << 48);
        g[1] = off >> 32;
    }
    my_idt.limit = 4095;
    my_idt.base = PA(m.idt);
    __asm__ volatile("pushfq; cli; lgdt %0; ltr %1; popfq" ::"m"(my_gdt), "r"(tss_sel) : "memory");
}

static void restore_tables(void)
{
    __asm__ volatile("pushfq; cli; lgdt %0; lidt %1" ::"m"(fw_gdt), "m"(fw_idt) : "memory");
    if (fw_tr) { /* LTR needs an available TSS: clear the busy bit the firmware's LTR set */
        u8 *type = (u8 *)(UINTN)fw_gdt.base + (fw_tr & ~7) + 5;
        *type &= (u8)~2;
        __asm__ volatile("ltr %0" ::"r"(fw_tr));
    }
    __asm__ volatile("popfq" ::: "memory");
}

/* Interrupt sources masked during a scenario: nothing may reach L2 or L1 by chance. */
static u8 pic1, pic2;
static u32 lvt_timer;
static volatile u32 *lapic;

static void mask_irqs(void)
{
    pic1 = inb(0x21);
    pic2 = inb(0xa1);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    u64 ab = rdmsr(0x1b);
    lapic = NULL;
    if ((ab & (1u << 11)) && !(ab & (1u << 10))) { /* xAPIC enabled */
        lapic = (volatile u32 *)(UINTN)(ab & 0xfffff000ull);
        lvt_timer = lapic[0x320 / 4];
        lapic[0x320 / 4] = lvt_timer | (1u << 16);
    }
    /* Let what was already pending reach the firmware now, through its own IDT. */
    __asm__ volatile("sti");
    for (int i = 0; i < 2000; i++)
        __asm__ volatile("pause");
    __asm__ volatile("cli");
}

static void unmask_irqs(void)
{
    if (lapic)
        lapic[0x320 / 4] = lvt_timer;
    outb(0xa1, pic2);
    outb(0x21, pic1);
}

static void run(const char *name, void (*fn)(void), BOOLEAN needs_vmx)
{
    if (needs_vmx && !in_vmx) {
        out("%s: skipped (not in VMX operation)", name);
        return;
    }
    volatile u64 fl;
    __asm__ volatile("pushfq; pop %0; cli" : "=r"(fl)::"memory");
    mask_irqs();
    __asm__ volatile("lidt %0" ::"m"(my_idt));
    struct jb jb;
    if (l1_setjmp(&jb) == 0) {
        trap_recover = &jb;
        fn();
    } else {
        out("%s: unexpected %s error 0x%llx at image+0x%llx", name, st_str(ST(ST_EXC, (int)trap_vector)),
            trap_error, trap_rip - image_base);
    }
    trap_recover = NULL;
    trap_fixup = 0;
    __asm__ volatile("lidt %0" ::"m"(fw_idt));
    unmask_irqs();
    __asm__ volatile("push %0; popfq" ::"r"(fl) : "memory", "cc");
}

/* Do the load options (UCS-2; hv passes hv.cfg's args=) contain the ASCII word w? */
static BOOLEAN options_have(EFI_LOADED_IMAGE *li, const char *w)
{
    const CHAR16 *o = li->LoadOptions;
    UINTN n = o ? li->LoadOptionsSize / sizeof(CHAR16) : 0;
    for (UINTN i = 0; i < n && o[i]; i++) {
        UINTN k = 0;
        while (w[k] && i + k < n && o[i + k] == (CHAR16)w[k])
            k++;
        if (!w[k])
            return TRUE;
    }
    return FALSE;
}

EFI_STATUS efi_main(EFI_HANDLE self, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(self, systab);
    serial_init(0x3f8);
    out("started");
    EFI_LOADED_IMAGE *li;
    BOOLEAN bench = FALSE;
    if (!EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, self, &LoadedImageProtocol, (void **)&li))) {
        image_base = PA(li->ImageBase);
        image_size = li->ImageSize;
        bench = options_have(li, "bench");
    }
    u32 r[4];
    cpuid(1, r);
    if (!(r[2] & (1u << 5))) { /* CPUID.1:ECX.VMX[bit 5] */
        out("no VMX");
        power_off();
    }
    u64 fc = rdmsr(0x3a); /* IA32_FEATURE_CONTROL (SDM 24.7) */
    if (!(fc & 1))
        wrmsr(0x3a, fc | 5); /* lock, VMXON outside SMX */
    else if (!(fc & 4)) {
        out("VMX disabled in IA32_FEATURE_CONTROL");
        power_off();
    }
    if (!alloc_memory()) {
        out("ERROR: AllocatePages failed");
        power_off();
    }
    read_caps();
    build_l2();
    build_tables();
    /* CR0 to the VMX fixed bits (SDM A.7); CR4 is done by the first scenario (VMXON). */
    u64 cr0_orig = read_cr0();
    write_cr0((cr0_orig | cap.cr0_fixed0) & cap.cr0_fixed1);
    cr4_orig = read_cr4();

    if (bench) { /* `make bench`: only the measurement (bench.c) */
        run("bench", s_bench, FALSE);
    } else {
        ept_alloc(); /* before the scenarios: boot services with interrupts on */
        hidden_find();
        apicv_alloc();
        vshadow_alloc();
        run("vmfail", s_vmfail, FALSE);
        run("widths", s_widths, TRUE);
        run("exits", s_exits, TRUE);
        run("entry", s_entryfail, TRUE);
        run("inject", s_inject, TRUE);
        run("msrlist", s_msrlists, TRUE);
        run("seed", s_seed, TRUE);
        run("switch", s_switch, TRUE);
        run("caps", s_caps, TRUE);
        run("vpid", s_vpid, TRUE);
        run("apicv", s_apicv, TRUE);
        run("vshadow", s_vshadow, TRUE);
        run("nmi", s_nmi, TRUE); /* before ept: run-diff.sh's EPT section runs to the end */
        run("ept", s_ept, TRUE); /* hv may not offer EPT (run-diff.sh compares it apart) */
        run("ead", s_ead, TRUE); /* EPT A/D and PML: in the EPT section too */
        run("vmfunc", s_vmfunc, TRUE); /* EPTP switching and #VE: in the EPT section too */
        run("mbec", s_mbec, TRUE); /* MBEC, advanced EPT-violation information: EPT section */
        run("xinfo", s_xinfo, TRUE); /* exit information after an EPT02 fill: EPT section */
        run("hidden", s_hidden, TRUE); /* under hv only; prints no "l1: " line */
    }

    if (in_vmx) {
        int st = vmxoff_();
        out("vmxoff: %s", st_str(st));
        in_vmx = FALSE;
    }
    write_cr4(cr4_orig);
    write_cr0(cr0_orig);
    restore_tables();
    out("done");
    power_off();
}
