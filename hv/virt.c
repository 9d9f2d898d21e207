/* Putting CPUs under hv: the state shared by all vCPUs (EPT01, bitmaps, IDT), and
 * the per-CPU launch that resumes the caller as hv's guest. */
#include <string.h>
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/x86.h"
#include "../vmx/ept.h"
#include "../vmx/mtrr.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "../nested/caps.h"
#include "../nested/caps_hide.h"
#include "acpi.h"
#include "dma.h"
#include "exit.h"
#include "host.h"
#include "vcpu.h"
#include "vmcs01.h"

struct hv_global hv;
static struct ept ept01;

void msr_bitmap_intercept(uint8_t *bm, uint32_t msr, bool read, bool write);
void io_bitmap_intercept(uint8_t *a, uint8_t *b, uint16_t port);
int vmx_launch(void);

static void *alloc_table_page(void) { return page_alloc(1); }

/* hv's code and constants: relocations touch only data, so these bytes never change. */
uint64_t hv_text_checksum(void)
{
    extern const uint8_t __text_start[], __rodata_end[];
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const uint8_t *p = __text_start; p < __rodata_end; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static int build_ept01(void)
{
    struct mtrr_state mtrr;
    uint8_t phys_bits = hv.phys_bits;
    mtrr_read(&mtrr, rdmsr, phys_bits);
    memset(&ept01, 0, sizeof(ept01));
    ept01.hidden_page = (uint64_t)(uintptr_t)hv.zero_page;
    /* Every physical address, not only the memory map's: 64-bit PCI windows live high.
     * boot/ sized the heap for it (hv_ept01_width_pages); without 1 GiB pages the same
     * pages hold one PD per GiB, a narrower map. */
    uint64_t want = ept_full_limit(phys_bits, hv.caps.ept_1g, hv_ept01_width_pages(phys_bits));
    /* The DMA-remapping units' registers are hidden like hv's memory: reads give zeros, writes
     * are dropped, so the guest cannot turn translation off or point it elsewhere. */
    static struct hv_mem_range mem[HV_MAX_MEM + 4];
    memcpy(mem, hv.ho->mem, hv.ho->nmem * sizeof(mem[0]));
    unsigned nregs = dma_register_ranges(mem + hv.ho->nmem, 4);
    if (ept_build_identity(&ept01, mem, hv.ho->nmem + nregs, want, &mtrr, hv.caps.ept_1g, alloc_table_page)) {
        log_err("EPT01: construction failed (%llu table pages used)", (unsigned long long)ept01.pages_used);
        return -1;
    }
    hv.ept = &ept01;
    for (unsigned i = 0; i < nregs; i++)
        log_info("EPT01: DMA-remapping unit registers 0x%llx-0x%llx hidden from the guest",
                 (unsigned long long)mem[hv.ho->nmem + i].base,
                 (unsigned long long)(mem[hv.ho->nmem + i].base + mem[hv.ho->nmem + i].size - 1));
    /* The guest's ICR writes (hv/apic.c): the xAPIC page read-only, the x2APIC ICR intercepted.
     * Before any vCPU clones EPT01, so every copy shares the read-only leaf. */
    uint64_t apic_base = rdmsr(MSR_IA32_APIC_BASE);
    if ((apic_base & (1ull << 11)) && !(apic_base & (1ull << 10)) &&
        !ept_write_protect_4k(&ept01, apic_base & 0xffffff000ull, alloc_table_page))
        hv.apic_page = apic_base & 0xffffff000ull;
    else
        log_warn("local APIC at 0x%llx (IA32_APIC_BASE 0x%llx) not in xAPIC mode or not mapped: its ICR writes are "
                 "not seen by hv", (unsigned long long)(apic_base & 0xffffff000ull), (unsigned long long)apic_base);
    msr_bitmap_intercept(hv.msr_bitmap, MSR_X2APIC_ICR, false, true);
    log_info("EPT01: identity map of %llu GiB (MAXPHYADDR %u bits) in %llu table pages (%llu 1G, %llu 2M, "
             "%llu 4K leaves) + a few per CPU; hv's %llu pages read as zeros, writes dropped; MTRRs %s; "
             "heap %llu of %llu KiB used",
             (unsigned long long)(ept01.limit >> 30), phys_bits, (unsigned long long)ept01.pages_used, (unsigned long long)ept01.leaves_1g,
             (unsigned long long)ept01.leaves_2m, (unsigned long long)ept01.leaves_4k,
             (unsigned long long)ept01.leaves_hidden, mtrr.enabled ? "on" : "off",
             (unsigned long long)(pages_used() >> 10), (unsigned long long)(pages_total() >> 10));
    if (ept01.limit < (1ull << (phys_bits < 48 ? phys_bits : 48)))
        log_warn("EPT01 ends at 0x%llx, below the physical-address width: accesses above it get a reserved-bit "
                 "#PF (hv/exit_ept.c)", (unsigned long long)ept01.limit);

    return 0;
}

/* What L1 is offered: the CPU's VMX as nested/ emulates it, minus hv.cfg's l1_vmx_hide=. */
static void l1_caps_init(void)
{
    struct vmx_msrs l1hw = hv.msrs;
    char list[640];
    nested_hide_lacking(&hv.msrs, list, sizeof(list));
    for (const char *p = list; *p;) { /* lines of at most ~160 characters, cut after a name */
        size_t n = strlen(p);
        if (n > 160) {
            n = 160;
            while (n && p[n] != ',')
                n--;
            n = n ? n : 160;
        }
        log_info("vmx: the CPU lacks (hv neither uses nor offers them): %.*s", (int)n, p);
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (hv.ho->cfg.l1_vmx_hide[0]) {
        struct nested_hide h = {0};
        char bad[32];
        unsigned nbad = nested_hide_parse(hv.ho->cfg.l1_vmx_hide, &h, bad, sizeof(bad));
        if (nbad)
            log_warn("l1_vmx_hide: %u unknown feature name(s), the first \"%s\": ignored (docs/config.md lists them)",
                     nbad, bad);
        nested_hide_apply(&h, &l1hw);
        log_info("l1_vmx_hide: not offered to L1: %s", hv.ho->cfg.l1_vmx_hide);
    }
    nested_caps_init(&hv.ncaps, &l1hw);
}

int hv_global_init(void)
{
    host_idt_init();
    hv.zero_page = page_alloc(1);
    hv.msr_bitmap = page_alloc(1);
    hv.io_bitmap_a = page_alloc(1);
    hv.io_bitmap_b = page_alloc(1);
    if (!hv.zero_page || !hv.msr_bitmap || !hv.io_bitmap_a || !hv.io_bitmap_b) {
        log_err("out of memory for hv's bitmaps");
        return -1;
    }
    /* hv owns IA32_FEATURE_CONTROL and the VMX capability MSRs: they describe what the
     * guest may use, not what the CPU has. Everything else passes through. */
    msr_bitmap_intercept(hv.msr_bitmap, MSR_IA32_FEATURE_CONTROL, true, true);
    for (uint32_t m = MSR_IA32_VMX_BASIC; m <= MSR_IA32_VMX_VMFUNC; m++)
        msr_bitmap_intercept(hv.msr_bitmap, m, true, true);
    const char *src;
    hv.pm1a_cnt = acpi_pm1a_cnt(hv.ho->rsdp, &src);
    if (hv.pm1a_cnt) {
        io_bitmap_intercept(hv.io_bitmap_a, hv.io_bitmap_b, hv.pm1a_cnt);
        io_bitmap_intercept(hv.io_bitmap_a, hv.io_bitmap_b, (uint16_t)(hv.pm1a_cnt + 1));
        log_info("ACPI PM1a control port 0x%x (%s): hv prints its statistics at power-off", hv.pm1a_cnt, src);
    } else {
        log_info("no ACPI PM1a control port found: statistics only through the hypercall");
    }
    hv.phys_bits = (uint8_t)(cpuid(0x80000000, 0).eax >= 0x80000008 ? cpuid(0x80000008, 0).eax & 0xff : 36);
    hv.text_sum = hv_text_checksum();
    l1_caps_init();
    hv.on_fatal = hv.ho->cfg.on_fatal;
    hv.test_hooks = hv.ho->cfg.test_hooks;
    hv.guest_log = hv.ho->cfg.guest_log;
    if (hv.test_hooks)
        log_warn("test_hooks=on in hv.cfg: the guest may call test-only hypercalls (never use this in production)");
    if (dma_active())
        hv.dma_poll = dma_poll_rate_limited;
    hv.nested = hv.ho->cfg.nested;
    cpuid_set_nested(hv.nested);
    if (hv.nested && hv.caps.vmcs_shadowing && hv.ho->cfg.shadow) {
        hv.shadow_vmread_bitmap = page_alloc(1);
        hv.shadow_vmwrite_bitmap = page_alloc(1);
        if (hv.shadow_vmread_bitmap && hv.shadow_vmwrite_bitmap)
            nested_shadow_bitmaps(hv.shadow_vmread_bitmap, hv.shadow_vmwrite_bitmap, hv.msrs.misc & (1ull << 29),
                                  nested_vmcs12_features(&hv.ncaps));
        else
            hv.shadow_vmread_bitmap = NULL;
    }
    log_info("nested VMX %s%s", hv.nested ? "on: the guest sees VMX (docs/nested.md)" : "off (nested=off in hv.cfg)",
             hv.shadow_vmread_bitmap ? "; L1's VMREAD/VMWRITE through VMCS shadowing" : "");

    return build_ept01();
}

int vcpu_start(uint32_t cpu, const struct hv_resume *r, uint64_t fw_cr3)
{
    size_t vpages = (sizeof(struct vcpu) + PAGE_SIZE - 1) / PAGE_SIZE;
    struct vcpu *v = page_alloc(vpages);
    void *vmxon_page = page_alloc(1), *vmcs = page_alloc(1);
    uint8_t *stack = page_alloc(HOST_STACK_SIZE / PAGE_SIZE), *scratch = page_alloc(HV_STEP_PAGES);
    if (!v || !vmxon_page || !vmcs || !stack || !scratch || ept_clone_hidden(&v->ept01, hv.ept, alloc_table_page)) {
        log_err("cpu%u: out of memory for its vCPU", cpu);
        return -1;
    }
    v->self = v;
    v->id = cpu;
    v->apic_id = hv.ho->cpus[cpu].apic_id;
    v->stack = stack;
    for (unsigned i = 0; i < HV_STEP_PAGES; i++)
        v->step.scratch[i] = scratch + i * PAGE_SIZE;
    v->resume = *r;
    v->fw_cr3 = fw_cr3;
    host_cpu_init(v);
    const char *why = "";
    if (vmx_on(&v->root, &hv.caps, vmxon_page, &why)) {
        log_err("cpu%u: %s", cpu, why);
        return -1;
    }
    *(uint32_t *)vmcs = hv.caps.revision;
    v->vmcs_pa = (uint64_t)(uintptr_t)vmcs;
    if (vmclear(v->vmcs_pa) || vmptrld(v->vmcs_pa)) {
        log_err("cpu%u: VMCLEAR/VMPTRLD of its VMCS failed", cpu);
        vmx_off(&v->root);
        return -1;
    }
    regcache_init(&v->rc, true);
    vmcs01_setup(v, v->root.saved_cr0, v->root.saved_cr4);
    if (vcpu_nested_init(v)) {
        log_err("cpu%u: out of memory for nested VMX state", cpu);
        vmx_off(&v->root);
        return -1;
    }
    hv.vcpus[cpu] = v;
    __atomic_add_fetch(&hv.nvcpus, 1, __ATOMIC_RELAXED);
    log_info("cpu%u: VMXON ok, launching the firmware as guest at rip 0x%llx (own EPT01 path: %llu table pages; "
             "heap %llu KiB used)", cpu, (unsigned long long)r->rip, (unsigned long long)v->ept01.pages_used,
             (unsigned long long)(pages_used() >> 10));
    int st = vmx_launch(); /* on success the guest runs on: no return */
    log_err("cpu%u: VMLAUNCH failed (%s), VM-instruction error %llu: continuing without hv on this CPU", cpu,
            st == 1 ? "VMfailInvalid" : "VMfailValid", (unsigned long long)(st == 2 ? vmcs_read(VM_INSTRUCTION_ERROR) : 0));
    hv.vcpus[cpu] = NULL;
    __atomic_sub_fetch(&hv.nvcpus, 1, __ATOMIC_RELAXED);
    vmx_off(&v->root);
    return -1;
}
