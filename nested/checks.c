/*
 * VM-entry checks of vmcs12 (SDM Vol. 3C 26.2 and 26.3.1; ch. 28 in newer SDMs), the
 * ones KVM's nested_vmx_check_controls/_host_state/_guest_state perform plus the
 * guest-state checks KVM leaves to the hardware (hv runs L2 from its own vmcs02, so
 * it checks everything L1 could get wrong here). One line per rule: CHECK_RULE(what
 * must hold, "section: rule"). The checks may run in any order (SDM 31.4 note b);
 * the order here follows the SDM except where noted.
 */
#include "checks.h"
#include <string.h>
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"

#ifndef CR4_PCIDE
#define CR4_PCIDE (1ull << 17)
#endif
#define EFER_SCE (1ull << 0)
#define EFER_NXE (1ull << 11)
#define EFER_VALID (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)
#define DEBUGCTL_BTF (1ull << 1)
#define DEBUGCTL_VALID 0xffc3ull /* 17.4.1: bits 2-5 and 63:16 reserved */
#define RFLAGS_FIXED1 (1ull << 1)
#define RFLAGS_RESERVED (~0x3fffffull | 1ull << 15 | 1ull << 5 | 1ull << 3)
#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_VM (1ull << 17)
#define INTR_INFO_TYPE(i) (((i) >> 8) & 7)
#define INTR_INFO_RESERVED 0x7ffff000u /* bits 30:12 */
#define AR_TYPE(ar) ((ar) & 0xf)
#define AR_S (1u << 4)
#define AR_DPL(ar) (((ar) >> 5) & 3)
#define AR_P (1u << 7)
#define AR_RSVD_11_8 0xf00u
#define AR_L (1u << 13)
#define AR_DB (1u << 14)
#define AR_G (1u << 15)
#define AR_UNUSABLE (1u << 16)
#define AR_RSVD_31_17 0xfffe0000u
#define SEL_RPL(s) ((s) & 3)
#define SEL_TI 4u
#define PDE_RESERVED (0xff0ull | 1ull << 13 | 1ull << 15 | ~0x1ffffull) /* 11:4, 13, 15, 63:17 */
#define PDE_ENABLED_BP (1ull << 12)
#define PDE_BS (1ull << 14)
#define PDE_RTM (1ull << 16)
#define INTERRUPTIBILITY_ENCLAVE (1u << 4)

enum { T_EXT_INTR = 0, T_RESERVED = 1, T_NMI = 2, T_HW_EXC = 3, T_SW_INTR = 4, T_PRIV_SW_EXC = 5,
       T_SW_EXC = 6, T_OTHER = 7 };

static const char *last_rule = "(none)";
static char composed[96]; /* for rules naming a segment register */

const char *nested_check_last_rule(void) { return last_rule; }

/* What one VM entry looks at, decoded once. */
struct ctx {
    const struct vmcs12 *v;
    const struct nested_caps *c;
    const struct nested_link *link;
    uint8_t pa;
    uint32_t pin, proc, proc2, exit, entry, intr_info, intr_type, vector;
    bool intr_valid, ia32e_guest, host64, v86, ept, ug;
    uint64_t qual;
};

#define G(field) vmcs12_get(x->v, field)
#define CHECK_RULE(cond, rule) \
    do { if (!(cond)) { last_rule = (rule); return false; } } while (0)
#define CHECK_RULE_Q(cond, q, rule) \
    do { if (!(cond)) { last_rule = (rule); x->qual = (q); return false; } } while (0)

static void ctx_init(struct ctx *x, const struct vmcs12 *v, const struct nested_caps *c, uint8_t pa)
{
    memset(x, 0, sizeof(*x));
    x->v = v;
    x->c = c;
    x->pa = pa;
    x->pin = (uint32_t)G(PIN_BASED_VM_EXEC_CONTROL);
    x->proc = (uint32_t)G(CPU_BASED_VM_EXEC_CONTROL);
    /* 25.6.2: with "activate secondary controls" 0 the secondary controls are all 0. */
    x->proc2 = x->proc & CPU_BASED_ACTIVATE_SECONDARY ? (uint32_t)G(SECONDARY_VM_EXEC_CONTROL) : 0;
    x->exit = (uint32_t)G(VM_EXIT_CONTROLS);
    x->entry = (uint32_t)G(VM_ENTRY_CONTROLS);
    x->intr_info = (uint32_t)G(VM_ENTRY_INTR_INFO_FIELD);
    x->intr_valid = x->intr_info & INTR_INFO_VALID;
    x->intr_type = INTR_INFO_TYPE(x->intr_info);
    x->vector = x->intr_info & 0xff;
    x->ia32e_guest = x->entry & VM_ENTRY_IA32E_MODE;
    x->host64 = x->exit & VM_EXIT_HOST_ADDR_SPACE_SIZE;
    x->v86 = G(GUEST_RFLAGS) & RFLAGS_VM;
    x->ept = x->proc2 & SECONDARY_EPT;
    x->ug = x->proc2 & SECONDARY_UNRESTRICTED_GUEST;
}

/* Linear addresses are 48 bits (L1 is not offered 5-level paging). */
static bool canonical(uint64_t a)
{
    uint64_t top = a >> 47;
    return top == 0 || top == 0x1ffff;
}
static bool pa_ok(const struct ctx *x, uint64_t a) { return x->pa >= 64 || (a >> x->pa) == 0; }
static bool pat_ok(uint64_t pat) /* every entry UC, WC, WT, WP, WB or UC- */
{
    for (int i = 0; i < 8; i++) {
        unsigned t = (pat >> (8 * i)) & 0xff;
        if (t == 2 || t == 3 || t > 7)
            return false;
    }
    return true;
}
static bool fixed_ok(uint64_t val, uint64_t fixed0, uint64_t fixed1)
{
    return (val & fixed0) == fixed0 && (val & ~fixed1) == 0;
}

/* ---- 26.2.1 checks on VMX controls ---- */

/* A 4 KiB-aligned address within the physical-address width (I/O and MSR bitmaps). */
static bool page_addr_ok(const struct ctx *x, uint32_t field, const char *align_rule, const char *width_rule)
{
    uint64_t a = G(field);
    CHECK_RULE((a & 0xfff) == 0, align_rule);
    CHECK_RULE(pa_ok(x, a), width_rule);
    return true;
}

/* 26.2.1.1: VM functions (bits of IA32_VMX_VMFUNC only; EPTP switching needs EPT and an
 * EPTP-list address 4 KiB aligned within the width) and the #VE information address. */
static bool check_vmfunc_ve(const struct ctx *x, const struct nested_caps *c)
{
    if (x->proc2 & SECONDARY_VMFUNC) {
        uint64_t fc = G(VM_FUNCTION_CONTROL);
        CHECK_RULE(!(fc & ~c->vmfunc), "26.2.1.1: VM-function controls beyond IA32_VMX_VMFUNC");
        CHECK_RULE(!(fc & 1) || x->ept, "26.2.1.1: EPTP switching requires enable EPT");
        if ((fc & 1) && !page_addr_ok(x, EPTP_LIST_ADDRESS, "26.2.1.1: EPTP-list address bits 11:0 must be 0",
                                      "26.2.1.1: EPTP-list address beyond physical-address width"))
            return false;
    }
    if ((x->proc2 & SECONDARY_EPT_VE) &&
        !page_addr_ok(x, VE_INFO_ADDRESS, "26.2.1.1: virtualization-exception information address bits 11:0 must be 0",
                      "26.2.1.1: virtualization-exception information address beyond physical-address width"))
        return false;
    return true;
}

/* An MSR-load/store area: 16-byte aligned, it and its last byte within the width. */
static bool msr_area_ok(const struct ctx *x, uint32_t count_field, uint32_t addr_field, const char *const rule[3])
{
    uint64_t n = G(count_field), a = G(addr_field);
    if (n == 0)
        return true;
    CHECK_RULE((a & 0xf) == 0, rule[0]);
    CHECK_RULE(pa_ok(x, a), rule[1]);
    CHECK_RULE(pa_ok(x, a + n * 16 - 1), rule[2]); /* cannot wrap: a < 2^52, n < 2^32 */
    return true;
}

/* APIC virtualization (29), posted interrupts (29.6). */
static bool check_apic_controls(struct ctx *x)
{
    bool tpr = x->proc & CPU_BASED_TPR_SHADOW, vid = x->proc2 & SECONDARY_VIRTUAL_INTR_DELIVERY;
    if (tpr) {
        if (!page_addr_ok(x, VIRTUAL_APIC_PAGE_ADDR, "26.2.1.1: virtual-APIC address bits 11:0 must be 0",
                          "26.2.1.1: virtual-APIC address beyond physical-address width"))
            return false;
        CHECK_RULE(vid || !(G(TPR_THRESHOLD) & ~0xfull),
                   "26.2.1.1: TPR threshold bits 31:4 must be 0 (use TPR shadow, no virtual-interrupt delivery)");
    }
    CHECK_RULE(tpr || !(x->proc2 & SECONDARY_VIRTUALIZE_X2APIC), "26.2.1.1: virtualize x2APIC mode requires use TPR shadow");
    CHECK_RULE(tpr || !(x->proc2 & SECONDARY_APIC_REGISTER_VIRT),
               "26.2.1.1: APIC-register virtualization requires use TPR shadow");
    CHECK_RULE(tpr || !vid, "26.2.1.1: virtual-interrupt delivery requires use TPR shadow");
    CHECK_RULE(!(x->proc2 & SECONDARY_VIRTUALIZE_X2APIC) || !(x->proc2 & SECONDARY_VIRTUALIZE_APIC),
               "26.2.1.1: virtualize x2APIC mode requires virtualize APIC accesses 0");
    CHECK_RULE(!vid || (x->pin & PIN_BASED_EXT_INTR_EXITING),
               "26.2.1.1: virtual-interrupt delivery requires external-interrupt exiting");
    if (x->pin & PIN_BASED_POSTED_INTR) {
        uint64_t pid = G(POSTED_INTR_DESC_ADDR);
        CHECK_RULE(vid, "26.2.1.1: process posted interrupts requires virtual-interrupt delivery");
        CHECK_RULE(x->exit & VM_EXIT_ACK_INTR_ON_EXIT,
                   "26.2.1.1: process posted interrupts requires acknowledge interrupt on exit");
        CHECK_RULE(!(G(POSTED_INTR_NV) & 0xff00), "26.2.1.1: posted-interrupt notification vector bits 15:8 must be 0");
        CHECK_RULE(!(pid & 0x3f), "26.2.1.1: posted-interrupt descriptor address bits 5:0 must be 0");
        CHECK_RULE(pa_ok(x, pid), "26.2.1.1: posted-interrupt descriptor address beyond physical-address width");
    }
    if ((x->proc2 & SECONDARY_VIRTUALIZE_APIC) &&
        !page_addr_ok(x, APIC_ACCESS_ADDR, "26.2.1.1: APIC-access address bits 11:0 must be 0",
                      "26.2.1.1: APIC-access address beyond physical-address width"))
        return false;
    return true;
}

static bool check_exec_controls(struct ctx *x)
{
    const struct nested_caps *c = x->c;
    CHECK_RULE(nested_ctl_ok(c->true_pinbased, x->pin), "26.2.1.1: pin-based controls reserved bits");
    CHECK_RULE(nested_ctl_ok(c->true_procbased, x->proc), "26.2.1.1: primary processor-based controls reserved bits");
    CHECK_RULE(!(x->proc & CPU_BASED_ACTIVATE_SECONDARY) || nested_ctl_ok(c->procbased2, x->proc2),
               "26.2.1.1: secondary processor-based controls reserved bits");
    CHECK_RULE(G(CR3_TARGET_COUNT) <= nested_cr3_targets(c), "26.2.1.1: CR3-target count above IA32_VMX_MISC[24:16]");
    if (x->proc & CPU_BASED_USE_IO_BITMAPS) {
        if (!page_addr_ok(x, IO_BITMAP_A, "26.2.1.1: I/O-bitmap A address bits 11:0 must be 0",
                          "26.2.1.1: I/O-bitmap A address beyond physical-address width") ||
            !page_addr_ok(x, IO_BITMAP_B, "26.2.1.1: I/O-bitmap B address bits 11:0 must be 0",
                          "26.2.1.1: I/O-bitmap B address beyond physical-address width"))
            return false;
    }
    if ((x->proc & CPU_BASED_USE_MSR_BITMAPS) &&
        !page_addr_ok(x, MSR_BITMAP, "26.2.1.1: MSR-bitmap address bits 11:0 must be 0",
                      "26.2.1.1: MSR-bitmap address beyond physical-address width"))
        return false;
    if (!check_apic_controls(x))
        return false;
    if ((x->proc2 & SECONDARY_SHADOW_VMCS) &&
        (!page_addr_ok(x, VMREAD_BITMAP, "26.2.1.1: VMREAD-bitmap address bits 11:0 must be 0",
                       "26.2.1.1: VMREAD-bitmap address beyond physical-address width") ||
         !page_addr_ok(x, VMWRITE_BITMAP, "26.2.1.1: VMWRITE-bitmap address bits 11:0 must be 0",
                       "26.2.1.1: VMWRITE-bitmap address beyond physical-address width")))
        return false;
    CHECK_RULE(!(x->proc2 & SECONDARY_TSC_SCALING) || G(TSC_MULTIPLIER) != 0,
               "26.2.1.1: TSC multiplier must not be 0 with use TSC scaling");
    if (!check_vmfunc_ve(x, c))
        return false;
    if (x->ept) {
        const char *why = nested_eptp_problem(c, vmcs12_eptp(x->v), x->pa);
        CHECK_RULE(!why, why);
    }
    CHECK_RULE(x->ept || !(x->proc2 & SECONDARY_PML), "26.2.1.1: enable PML requires enable EPT");
    if ((x->proc2 & SECONDARY_PML) &&
        !page_addr_ok(x, PML_ADDRESS, "26.2.1.1: PML address bits 11:0 must be 0",
                      "26.2.1.1: PML address beyond physical-address width"))
        return false;
    CHECK_RULE(x->ept || !x->ug, "26.2.1.1: unrestricted guest requires enable EPT");
    CHECK_RULE(x->ept || !(x->proc2 & SECONDARY_MBEC), "26.2.1.1: mode-based execute control for EPT requires enable EPT");
    CHECK_RULE((x->pin & PIN_BASED_NMI_EXITING) || !(x->pin & PIN_BASED_VIRTUAL_NMIS),
               "26.2.1.1: virtual NMIs require NMI exiting");
    CHECK_RULE((x->pin & PIN_BASED_VIRTUAL_NMIS) || !(x->proc & CPU_BASED_NMI_WINDOW_EXITING),
               "26.2.1.1: NMI-window exiting requires virtual NMIs");
    CHECK_RULE(!(x->proc2 & SECONDARY_VPID) || G(VIRTUAL_PROCESSOR_ID) != 0,
               "26.2.1.1: VPID must not be 0 with enable VPID");
    return true;
}

static bool check_exit_controls(struct ctx *x)
{
    static const char *const store[3] = {
        "26.2.1.2: VM-exit MSR-store address bits 3:0 must be 0",
        "26.2.1.2: VM-exit MSR-store address beyond physical-address width",
        "26.2.1.2: VM-exit MSR-store area last byte beyond physical-address width"};
    static const char *const load[3] = {
        "26.2.1.2: VM-exit MSR-load address bits 3:0 must be 0",
        "26.2.1.2: VM-exit MSR-load address beyond physical-address width",
        "26.2.1.2: VM-exit MSR-load area last byte beyond physical-address width"};
    CHECK_RULE(nested_ctl_ok(x->c->true_exit, x->exit), "26.2.1.2: VM-exit controls reserved bits");
    CHECK_RULE((x->pin & PIN_BASED_PREEMPTION_TIMER) || !(x->exit & VM_EXIT_SAVE_PREEMPTION_TIMER),
               "26.2.1.2: save VMX-preemption timer value requires activate VMX-preemption timer");
    return msr_area_ok(x, VM_EXIT_MSR_STORE_COUNT, VM_EXIT_MSR_STORE_ADDR, store) &&
           msr_area_ok(x, VM_EXIT_MSR_LOAD_COUNT, VM_EXIT_MSR_LOAD_ADDR, load);
}

/* Exceptions that push an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP). */
static bool has_error_code(uint32_t vector)
{
    return vector < 32 && ((1u << vector) & (1u << 8 | 1u << 10 | 1u << 11 | 1u << 12 | 1u << 13 | 1u << 14 |
                                             1u << 17 | 1u << 21));
}

static bool check_event_injection(struct ctx *x)
{
    uint32_t t = x->intr_type, info = x->intr_info;
    if (!x->intr_valid)
        return true;
    CHECK_RULE(t != T_RESERVED, "26.2.1.3: event injection: interruption type 1 is reserved");
    CHECK_RULE(t != T_OTHER || (nested_allowed1(x->c->true_procbased) & CPU_BASED_MONITOR_TRAP_FLAG),
               "26.2.1.3: event injection: type 7 (other event) needs monitor trap flag support");
    CHECK_RULE(t != T_NMI || x->vector == 2, "26.2.1.3: event injection: NMI vector must be 2");
    CHECK_RULE(t != T_HW_EXC || x->vector <= 31, "26.2.1.3: event injection: hardware exception vector above 31");
    CHECK_RULE(t != T_OTHER || x->vector == 0, "26.2.1.3: event injection: other-event vector must be 0 (pending MTF)");
    /* IA32_VMX_BASIC[56] is 0 for L1: "if and only if". Without unrestricted guest the
     * guest is in protected mode (CR0.PE is a fixed-1 bit). */
    bool prot = !(x->proc2 & SECONDARY_UNRESTRICTED_GUEST) || (G(GUEST_CR0) & CR0_PE);
    bool want_code = t == T_HW_EXC && prot && has_error_code(x->vector);
    CHECK_RULE(!!(info & INTR_INFO_DELIVER_CODE) == want_code,
               "26.2.1.3: event injection: deliver-error-code bit does not match type and vector");
    CHECK_RULE(!(info & INTR_INFO_RESERVED), "26.2.1.3: event injection: interruption-information bits 30:12 must be 0");
    CHECK_RULE(!(info & INTR_INFO_DELIVER_CODE) || !(G(VM_ENTRY_EXCEPTION_ERROR_CODE) & 0xffff0000u),
               "26.2.1.3: event injection: error code bits 31:16 must be 0");
    /* Length 0 only with IA32_VMX_MISC[30] as advertised. */
    uint64_t len = G(VM_ENTRY_INSTRUCTION_LEN), min = (x->c->misc >> 30) & 1 ? 0 : 1;
    CHECK_RULE(!(t == T_SW_INTR || t == T_PRIV_SW_EXC || t == T_SW_EXC) || (len >= min && len <= 15),
               "26.2.1.3: event injection: instruction length of a software event must be 1-15 (0-15 with "
               "IA32_VMX_MISC[30])");
    return true;
}

static bool check_entry_controls(struct ctx *x)
{
    static const char *const load[3] = {
        "26.2.1.3: VM-entry MSR-load address bits 3:0 must be 0",
        "26.2.1.3: VM-entry MSR-load address beyond physical-address width",
        "26.2.1.3: VM-entry MSR-load area last byte beyond physical-address width"};
    CHECK_RULE(nested_ctl_ok(x->c->true_entry, x->entry), "26.2.1.3: VM-entry controls reserved bits");
    return check_event_injection(x) && msr_area_ok(x, VM_ENTRY_MSR_LOAD_COUNT, VM_ENTRY_MSR_LOAD_ADDR, load);
}

int nested_check_controls(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits)
{
    struct ctx ctx, *x = &ctx;
    ctx_init(x, v, c, phys_bits);
    if (!check_exec_controls(x) || !check_exit_controls(x) || !check_entry_controls(x))
        return VMXERR_ENTRY_INVALID_CONTROL;
    return 0;
}

/* Reads only the three fields it needs (no ctx_init): it runs at every entry with TPR shadow. */
static bool vtpr_ok(const struct vmcs12 *v, uint8_t vtpr)
{
    uint32_t proc = (uint32_t)vmcs12_get(v, CPU_BASED_VM_EXEC_CONTROL);
    uint32_t proc2 = proc & CPU_BASED_ACTIVATE_SECONDARY ? (uint32_t)vmcs12_get(v, SECONDARY_VM_EXEC_CONTROL) : 0;
    if (!(proc & CPU_BASED_TPR_SHADOW))
        return true;
    /* Also in check_apic_controls; again here, as a fast VMRESUME checks a changed threshold
     * only here (nested/vmenter_fast.c: TPR_THRESHOLD is NESTED_CHG_FREE). */
    CHECK_RULE((proc2 & SECONDARY_VIRTUAL_INTR_DELIVERY) || !(vmcs12_get(v, TPR_THRESHOLD) & ~0xfull),
               "26.2.1.1: TPR threshold bits 31:4 must be 0 (use TPR shadow, no virtual-interrupt delivery)");
    if (proc2 & (SECONDARY_VIRTUALIZE_APIC | SECONDARY_VIRTUAL_INTR_DELIVERY))
        return true;
    CHECK_RULE((vmcs12_get(v, TPR_THRESHOLD) & 0xf) <= (vtpr >> 4u), "26.2.1.1: TPR threshold bits 3:0 must not "
               "exceed VTPR bits 7:4 (use TPR shadow, no virtualize APIC accesses, no virtual-interrupt delivery)");
    return true;
}

int nested_check_vtpr(const struct vmcs12 *v, uint8_t vtpr)
{
    return vtpr_ok(v, vtpr) ? 0 : VMXERR_ENTRY_INVALID_CONTROL;
}

/* ---- 26.2.2-26.2.4 checks on host state ---- */

static bool check_host_cr_msrs(struct ctx *x)
{
    const struct nested_caps *c = x->c;
    CHECK_RULE(fixed_ok(G(HOST_CR0), c->cr0_fixed0, c->cr0_fixed1), "26.2.2: host CR0 fixed bits (IA32_VMX_CR0_FIXED0/1)");
    CHECK_RULE(fixed_ok(G(HOST_CR4), c->cr4_fixed0, c->cr4_fixed1), "26.2.2: host CR4 fixed bits (IA32_VMX_CR4_FIXED0/1)");
    CHECK_RULE(pa_ok(x, G(HOST_CR3)), "26.2.2: host CR3 beyond physical-address width");
    CHECK_RULE(canonical(G(HOST_IA32_SYSENTER_ESP)), "26.2.2: host IA32_SYSENTER_ESP not canonical");
    CHECK_RULE(canonical(G(HOST_IA32_SYSENTER_EIP)), "26.2.2: host IA32_SYSENTER_EIP not canonical");
    if (x->exit & VM_EXIT_LOAD_PERF_GLOBAL_CTRL)
        CHECK_RULE(!(G(HOST_IA32_PERF_GLOBAL_CTRL) & ~c->perf_global_valid), "26.2.2: host IA32_PERF_GLOBAL_CTRL reserved bits");
    if (x->exit & VM_EXIT_LOAD_PAT)
        CHECK_RULE(pat_ok(G(HOST_IA32_PAT)), "26.2.2: host IA32_PAT memory type invalid");
    if (x->exit & VM_EXIT_LOAD_EFER) {
        uint64_t efer = G(HOST_IA32_EFER);
        CHECK_RULE(!(efer & ~EFER_VALID), "26.2.2: host IA32_EFER reserved bits");
        CHECK_RULE(!!(efer & EFER_LMA) == x->host64, "26.2.2: host IA32_EFER.LMA must equal host address-space size");
        CHECK_RULE(!!(efer & EFER_LME) == x->host64, "26.2.2: host IA32_EFER.LME must equal host address-space size");
    }
    return true;
}

static bool check_host_segments(struct ctx *x)
{
    static const struct { uint16_t field; const char *rule; } sels[] = {
        {HOST_ES_SELECTOR, "26.2.3: host ES selector RPL and TI must be 0"},
        {HOST_CS_SELECTOR, "26.2.3: host CS selector RPL and TI must be 0"},
        {HOST_SS_SELECTOR, "26.2.3: host SS selector RPL and TI must be 0"},
        {HOST_DS_SELECTOR, "26.2.3: host DS selector RPL and TI must be 0"},
        {HOST_FS_SELECTOR, "26.2.3: host FS selector RPL and TI must be 0"},
        {HOST_GS_SELECTOR, "26.2.3: host GS selector RPL and TI must be 0"},
        {HOST_TR_SELECTOR, "26.2.3: host TR selector RPL and TI must be 0"},
    }, bases[] = {
        {HOST_FS_BASE, "26.2.3: host FS base not canonical"},
        {HOST_GS_BASE, "26.2.3: host GS base not canonical"},
        {HOST_GDTR_BASE, "26.2.3: host GDTR base not canonical"},
        {HOST_IDTR_BASE, "26.2.3: host IDTR base not canonical"},
        {HOST_TR_BASE, "26.2.3: host TR base not canonical"},
    };
    for (unsigned i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
        CHECK_RULE(!(G(sels[i].field) & (SEL_TI | 3)), sels[i].rule);
    CHECK_RULE(G(HOST_CS_SELECTOR) != 0, "26.2.3: host CS selector must not be 0");
    CHECK_RULE(G(HOST_TR_SELECTOR) != 0, "26.2.3: host TR selector must not be 0");
    CHECK_RULE(G(HOST_SS_SELECTOR) != 0 || x->host64, "26.2.3: host SS selector 0 requires host address-space size 1");
    for (unsigned i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
        CHECK_RULE(canonical(G(bases[i].field)), bases[i].rule);
    return true;
}

static bool check_host_address_space(struct ctx *x)
{
    if (!x->host64) {
        CHECK_RULE(!x->ia32e_guest, "26.2.4: IA-32e mode guest requires host address-space size 1");
        CHECK_RULE(!(G(HOST_CR4) & CR4_PCIDE), "26.2.4: host CR4.PCIDE requires host address-space size 1");
        CHECK_RULE(!(G(HOST_RIP) >> 32), "26.2.4: host RIP bits 63:32 must be 0 with host address-space size 0");
    } else {
        CHECK_RULE(G(HOST_CR4) & CR4_PAE, "26.2.4: host CR4.PAE must be 1 with host address-space size 1");
        CHECK_RULE(canonical(G(HOST_RIP)), "26.2.4: host RIP not canonical");
    }
    /* Last so that the rules above stay reachable: L1 executes VMLAUNCH in IA-32e mode. */
    CHECK_RULE(x->host64, "26.2.4: host address-space size must be 1 (L1 is in IA-32e mode)");
    return true;
}

int nested_check_host(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits)
{
    struct ctx ctx, *x = &ctx;
    ctx_init(x, v, c, phys_bits);
    if (!check_host_cr_msrs(x) || !check_host_segments(x) || !check_host_address_space(x))
        return VMXERR_ENTRY_INVALID_HOST;
    return 0;
}

/* ---- 26.3.1 checks on the guest-state area ---- */

static bool check_guest_cr_msrs(struct ctx *x)
{
    const struct nested_caps *c = x->c;
    uint64_t cr0 = G(GUEST_CR0), cr4 = G(GUEST_CR4);
    /* NW and CD are never checked; PE and PG not with unrestricted guest. */
    uint64_t free = CR0_NW | CR0_CD | (x->ug ? CR0_PE | CR0_PG : 0);
    CHECK_RULE(fixed_ok(cr0 & ~free, c->cr0_fixed0 & ~free, c->cr0_fixed1 | free),
               "26.3.1.1: guest CR0 fixed bits (IA32_VMX_CR0_FIXED0/1; PE, PG free with unrestricted guest)");
    CHECK_RULE(!(cr0 & CR0_PG) || (cr0 & CR0_PE), "26.3.1.1: guest CR0.PG requires CR0.PE");
    CHECK_RULE(fixed_ok(cr4, c->cr4_fixed0, c->cr4_fixed1), "26.3.1.1: guest CR4 fixed bits (IA32_VMX_CR4_FIXED0/1)");
    if (x->entry & VM_ENTRY_LOAD_DEBUG_CONTROLS) {
        CHECK_RULE(!(G(GUEST_IA32_DEBUGCTL) & ~DEBUGCTL_VALID), "26.3.1.1: guest IA32_DEBUGCTL reserved bits");
        CHECK_RULE(!(G(GUEST_DR7) >> 32), "26.3.1.1: guest DR7 bits 63:32 must be 0");
    }
    if (x->ia32e_guest) {
        CHECK_RULE(cr0 & CR0_PG, "26.3.1.1: IA-32e mode guest requires CR0.PG");
        CHECK_RULE(cr4 & CR4_PAE, "26.3.1.1: IA-32e mode guest requires CR4.PAE");
    } else {
        CHECK_RULE(!(cr4 & CR4_PCIDE), "26.3.1.1: guest CR4.PCIDE requires IA-32e mode guest");
    }
    CHECK_RULE(pa_ok(x, G(GUEST_CR3)), "26.3.1.1: guest CR3 beyond physical-address width");
    CHECK_RULE(canonical(G(GUEST_SYSENTER_ESP)), "26.3.1.1: guest IA32_SYSENTER_ESP not canonical");
    CHECK_RULE(canonical(G(GUEST_SYSENTER_EIP)), "26.3.1.1: guest IA32_SYSENTER_EIP not canonical");
    if (x->entry & VM_ENTRY_LOAD_PERF_GLOBAL_CTRL)
        CHECK_RULE(!(G(GUEST_IA32_PERF_GLOBAL_CTRL) & ~x->c->perf_global_valid),
                   "26.3.1.1: guest IA32_PERF_GLOBAL_CTRL reserved bits");
    if (x->entry & VM_ENTRY_LOAD_PAT)
        CHECK_RULE(pat_ok(G(GUEST_IA32_PAT)), "26.3.1.1: guest IA32_PAT memory type invalid");
    if (x->entry & VM_ENTRY_LOAD_EFER) {
        uint64_t efer = G(GUEST_IA32_EFER);
        CHECK_RULE(!(efer & ~EFER_VALID), "26.3.1.1: guest IA32_EFER reserved bits");
        CHECK_RULE(!!(efer & EFER_LMA) == x->ia32e_guest, "26.3.1.1: guest IA32_EFER.LMA must equal IA-32e mode guest");
        CHECK_RULE(!(cr0 & CR0_PG) || !!(efer & EFER_LME) == x->ia32e_guest,
                   "26.3.1.1: guest IA32_EFER.LME must equal IA-32e mode guest when CR0.PG=1");
    }
    return true;
}

/* Checked before the segment registers (whose checks depend on RFLAGS.VM), so that a
 * wrong RFLAGS.VM is reported as such. */
/* 26.3.1.4, RIP: canonical in 64-bit mode (IA-32e mode guest and CS.L), else bits 63:32 are 0. */
static bool guest_rip_ok(uint64_t rip, bool ia32e_guest, uint64_t cs_ar)
{
    if (ia32e_guest && (cs_ar & AR_L)) {
        CHECK_RULE(canonical(rip), "26.3.1.4: guest RIP not canonical");
    } else {
        CHECK_RULE(!(rip >> 32), "26.3.1.4: guest RIP bits 63:32 must be 0 outside 64-bit mode");
    }
    return true;
}

static bool check_guest_rip_rflags(struct ctx *x)
{
    uint64_t rip = G(GUEST_RIP), rflags = G(GUEST_RFLAGS);
    if (!guest_rip_ok(rip, x->ia32e_guest, G(GUEST_CS_AR_BYTES)))
        return false;
    CHECK_RULE(!(rflags & RFLAGS_RESERVED) && (rflags & RFLAGS_FIXED1),
               "26.3.1.4: guest RFLAGS reserved bits (63:22, 15, 5, 3 must be 0, 1 must be 1)");
    CHECK_RULE(!(rflags & RFLAGS_VM) || (!x->ia32e_guest && (G(GUEST_CR0) & CR0_PE)),
               "26.3.1.4: guest RFLAGS.VM must be 0 in IA-32e mode or with CR0.PE=0");
    CHECK_RULE(!(x->intr_valid && x->intr_type == T_EXT_INTR) || (rflags & RFLAGS_IF),
               "26.3.1.4: guest RFLAGS.IF must be 1 to inject an external interrupt");
    return true;
}

struct seg {
    const char *name;
    uint16_t sel, base, limit, ar;
};
#define SEG_FIELDS(name, s) {name, GUEST_SEG_SELECTOR(s), GUEST_SEG_BASE(s), GUEST_SEG_LIMIT(s), GUEST_SEG_AR(s)}
static const struct seg CS_SEG = SEG_FIELDS("CS", SEG_CS);
static const struct seg SS_SEG = SEG_FIELDS("SS", SEG_SS);
static const struct seg TR_SEG = SEG_FIELDS("TR", SEG_TR);
static const struct seg LDTR_SEG = SEG_FIELDS("LDTR", SEG_LDTR);
static const struct seg DATA_SEGS[] = {
    SEG_FIELDS("DS", SEG_DS), SEG_FIELDS("ES", SEG_ES), SEG_FIELDS("FS", SEG_FS), SEG_FIELDS("GS", SEG_GS),
};

/* "26.3.1.2: guest <reg> <text>" in a static buffer (no snprintf in the core). */
static const char *seg_rule(const char *reg, const char *text)
{
    const char *parts[] = {"26.3.1.2: guest ", reg, " ", text};
    size_t n = 0;
    for (unsigned i = 0; i < 4; i++)
        for (const char *p = parts[i]; *p && n < sizeof(composed) - 1; p++)
            composed[n++] = *p;
    composed[n] = '\0';
    return composed;
}
#define SEG_RULE(cond, s, text) \
    do { if (!(cond)) { last_rule = seg_rule((s)->name, text); return false; } } while (0)

/* Checks shared by CS (always) and by SS, DS, ES, FS, GS, LDTR, TR (when usable). */
static bool seg_common_ok(struct ctx *x, const struct seg *s, bool want_s)
{
    uint32_t ar = (uint32_t)G(s->ar), limit = (uint32_t)G(s->limit);
    SEG_RULE(!!(ar & AR_S) == want_s, s, want_s ? "AR S must be 1" : "AR S must be 0");
    SEG_RULE(ar & AR_P, s, "AR P must be 1");
    SEG_RULE(!(ar & AR_RSVD_11_8), s, "AR bits 11:8 must be 0");
    SEG_RULE((limit & 0xfff) == 0xfff || !(ar & AR_G), s, "AR G must be 0 if limit bits 11:0 are not all 1");
    SEG_RULE(!(limit & 0xfff00000u) || (ar & AR_G), s, "AR G must be 1 if limit bits 31:20 are not all 0");
    SEG_RULE(!(ar & AR_RSVD_31_17), s, "AR bits 31:17 must be 0");
    return true;
}

static bool check_guest_v86_segments(struct ctx *x)
{
    const struct seg *all[] = {&CS_SEG, &SS_SEG, &DATA_SEGS[0], &DATA_SEGS[1], &DATA_SEGS[2], &DATA_SEGS[3]};
    for (unsigned i = 0; i < 6; i++) {
        const struct seg *s = all[i];
        SEG_RULE(G(s->base) == G(s->sel) << 4, s, "base must be selector << 4 (virtual-8086)");
        SEG_RULE(G(s->limit) == 0xffff, s, "limit must be 0xffff (virtual-8086)");
        SEG_RULE(G(s->ar) == 0xf3, s, "AR must be 0xf3 (virtual-8086)");
    }
    return true;
}

static bool check_guest_code_stack(struct ctx *x)
{
    uint32_t cs_ar = (uint32_t)G(GUEST_CS_AR_BYTES), ss_ar = (uint32_t)G(GUEST_SS_AR_BYTES);
    uint32_t cs_type = AR_TYPE(cs_ar);
    uint64_t ss_sel = G(GUEST_SS_SELECTOR);
    bool pe = G(GUEST_CR0) & CR0_PE;
    /* Unrestricted guest (real mode, big real mode) relaxes the RPL/DPL rules and allows a
     * read/write data segment in CS. */
    if (!x->ug)
        SEG_RULE(SEL_RPL(ss_sel) == SEL_RPL(G(GUEST_CS_SELECTOR)), &SS_SEG, "selector RPL must equal CS RPL");
    SEG_RULE(!(G(GUEST_CS_BASE) >> 32), &CS_SEG, "base bits 63:32 must be 0");
    SEG_RULE(cs_type == 9 || cs_type == 11 || cs_type == 13 || cs_type == 15 || (x->ug && cs_type == 3), &CS_SEG,
             x->ug ? "AR type must be 3, 9, 11, 13 or 15 (unrestricted guest)"
                   : "AR type must be 9, 11, 13 or 15 (accessed code)");
    if (cs_type == 3)
        SEG_RULE(AR_DPL(cs_ar) == 0, &CS_SEG, "AR DPL must be 0 for type 3 (unrestricted guest)");
    else if (cs_type <= 11)
        SEG_RULE(AR_DPL(cs_ar) == AR_DPL(ss_ar), &CS_SEG, "AR DPL must equal SS DPL (non-conforming code)");
    else
        SEG_RULE(AR_DPL(cs_ar) <= AR_DPL(ss_ar), &CS_SEG, "AR DPL must not exceed SS DPL (conforming code)");
    SEG_RULE(!x->ia32e_guest || !(cs_ar & AR_L) || !(cs_ar & AR_DB), &CS_SEG, "AR D/B must be 0 with L=1 in IA-32e mode");
    if (!seg_common_ok(x, &CS_SEG, true))
        return false;
    if (!x->ug)
        SEG_RULE(AR_DPL(ss_ar) == SEL_RPL(ss_sel), &SS_SEG, "AR DPL must equal selector RPL");
    SEG_RULE(AR_DPL(ss_ar) == 0 || (pe && cs_type != 3), &SS_SEG, "AR DPL must be 0 with CS type 3 or CR0.PE=0");
    if (ss_ar & AR_UNUSABLE)
        return true;
    SEG_RULE(!(G(GUEST_SS_BASE) >> 32), &SS_SEG, "base bits 63:32 must be 0");
    SEG_RULE(AR_TYPE(ss_ar) == 3 || AR_TYPE(ss_ar) == 7, &SS_SEG, "AR type must be 3 or 7 (read/write, accessed)");
    return seg_common_ok(x, &SS_SEG, true);
}

static bool check_guest_data_segments(struct ctx *x)
{
    for (unsigned i = 0; i < sizeof(DATA_SEGS) / sizeof(DATA_SEGS[0]); i++) {
        const struct seg *s = &DATA_SEGS[i];
        uint32_t ar = (uint32_t)G(s->ar), type = AR_TYPE(ar);
        bool fs_gs = s->base == GUEST_FS_BASE || s->base == GUEST_GS_BASE;
        if (fs_gs) /* FS and GS bases are checked even when unusable */
            SEG_RULE(canonical(G(s->base)), s, "base not canonical");
        if (ar & AR_UNUSABLE)
            continue;
        if (!fs_gs)
            SEG_RULE(!(G(s->base) >> 32), s, "base bits 63:32 must be 0");
        SEG_RULE(type & 1, s, "AR type must be accessed");
        SEG_RULE(!(type & 8) || (type & 2), s, "AR type: code segment must be readable");
        SEG_RULE(x->ug || type > 11 || AR_DPL(ar) >= SEL_RPL(G(s->sel)), s, "AR DPL must not be below selector RPL");
        if (!seg_common_ok(x, s, true))
            return false;
    }
    return true;
}

static bool check_guest_system_segments(struct ctx *x)
{
    uint32_t tr_ar = (uint32_t)G(GUEST_TR_AR_BYTES), ldtr_ar = (uint32_t)G(GUEST_LDTR_AR_BYTES);
    SEG_RULE(!(G(GUEST_TR_SELECTOR) & SEL_TI), &TR_SEG, "selector TI must be 0");
    SEG_RULE(canonical(G(GUEST_TR_BASE)), &TR_SEG, "base not canonical");
    if (x->ia32e_guest)
        SEG_RULE(AR_TYPE(tr_ar) == 11, &TR_SEG, "AR type must be 11 (64-bit busy TSS) in IA-32e mode");
    else
        SEG_RULE(AR_TYPE(tr_ar) == 3 || AR_TYPE(tr_ar) == 11, &TR_SEG, "AR type must be 3 or 11 (busy TSS)");
    SEG_RULE(!(tr_ar & AR_UNUSABLE), &TR_SEG, "must be usable");
    if (!seg_common_ok(x, &TR_SEG, false))
        return false;
    if (ldtr_ar & AR_UNUSABLE)
        return true;
    SEG_RULE(!(G(GUEST_LDTR_SELECTOR) & SEL_TI), &LDTR_SEG, "selector TI must be 0");
    SEG_RULE(canonical(G(GUEST_LDTR_BASE)), &LDTR_SEG, "base not canonical");
    SEG_RULE(AR_TYPE(ldtr_ar) == 2, &LDTR_SEG, "AR type must be 2 (LDT)");
    return seg_common_ok(x, &LDTR_SEG, false);
}

static bool check_guest_segments(struct ctx *x)
{
    if (x->v86) {
        if (!check_guest_v86_segments(x))
            return false;
    } else if (!check_guest_code_stack(x) || !check_guest_data_segments(x)) {
        return false;
    }
    return check_guest_system_segments(x);
}

static bool check_guest_descriptor_tables(struct ctx *x)
{
    CHECK_RULE(canonical(G(GUEST_GDTR_BASE)), "26.3.1.3: guest GDTR base not canonical");
    CHECK_RULE(canonical(G(GUEST_IDTR_BASE)), "26.3.1.3: guest IDTR base not canonical");
    CHECK_RULE(!(G(GUEST_GDTR_LIMIT) >> 16), "26.3.1.3: guest GDTR limit bits 31:16 must be 0");
    CHECK_RULE(!(G(GUEST_IDTR_LIMIT) >> 16), "26.3.1.3: guest IDTR limit bits 31:16 must be 0");
    return true;
}

/* An event the HLT state lets through: external interrupt, NMI, #DB, #MC, pending MTF. */
static bool injectable_in_hlt(const struct ctx *x)
{
    switch (x->intr_type) {
    case T_EXT_INTR:
    case T_NMI:
        return true;
    case T_HW_EXC:
        return x->vector == 1 || x->vector == 18;
    case T_OTHER:
        return x->vector == 0;
    default:
        return false;
    }
}

static bool check_guest_activity(struct ctx *x)
{
    uint64_t act = G(GUEST_ACTIVITY_STATE), intr = G(GUEST_INTERRUPTIBILITY_INFO);
    /* IA32_VMX_MISC[8:6] as advertised: HLT, shutdown, wait-for-SIPI as the CPU has them. */
    CHECK_RULE(act == GUEST_ACTIVITY_ACTIVE || (act <= 3 && (x->c->misc >> (5 + act) & 1)),
               "26.3.1.5: activity state not supported (IA32_VMX_MISC[8:6])");
    CHECK_RULE(act != GUEST_ACTIVITY_HLT || AR_DPL(G(GUEST_SS_AR_BYTES)) == 0,
               "26.3.1.5: HLT activity state requires SS.DPL 0");
    CHECK_RULE(act == GUEST_ACTIVITY_ACTIVE || !(intr & (GUEST_INTR_STI | GUEST_INTR_MOV_SS)),
               "26.3.1.5: activity state must be active with blocking by STI or MOV SS");
    CHECK_RULE(!x->intr_valid || act != GUEST_ACTIVITY_HLT || injectable_in_hlt(x),
               "26.3.1.5: injected event not allowed in the HLT activity state");
    CHECK_RULE(!x->intr_valid || act != GUEST_ACTIVITY_SHUTDOWN || x->intr_type == T_NMI ||
                   (x->intr_type == T_HW_EXC && x->vector == 18),
               "26.3.1.5: only an NMI or #MC may be injected in the shutdown activity state");
    CHECK_RULE(!x->intr_valid || act != GUEST_ACTIVITY_WAIT_SIPI,
               "26.3.1.5: no event may be injected in the wait-for-SIPI activity state");
    return true;
}

static bool check_guest_interruptibility(struct ctx *x)
{
    uint64_t intr = G(GUEST_INTERRUPTIBILITY_INFO);
    bool nmi = x->intr_valid && x->intr_type == T_NMI;
    CHECK_RULE(!(intr >> 5), "26.3.1.5: interruptibility-state bits 31:5 must be 0");
    CHECK_RULE((intr & (GUEST_INTR_STI | GUEST_INTR_MOV_SS)) != (GUEST_INTR_STI | GUEST_INTR_MOV_SS),
               "26.3.1.5: interruptibility-state blocking by both STI and MOV SS");
    CHECK_RULE(!(intr & GUEST_INTR_STI) || (G(GUEST_RFLAGS) & RFLAGS_IF),
               "26.3.1.5: blocking by STI requires RFLAGS.IF=1");
    CHECK_RULE(!(x->intr_valid && x->intr_type == T_EXT_INTR) || !(intr & (GUEST_INTR_STI | GUEST_INTR_MOV_SS)),
               "26.3.1.5: blocking by STI or MOV SS with external-interrupt injection");
    CHECK_RULE(!nmi || !(intr & GUEST_INTR_MOV_SS), "26.3.1.5: blocking by MOV SS with NMI injection");
    CHECK_RULE(!(intr & GUEST_INTR_SMI), "26.3.1.5: blocking by SMI outside SMM");
    /* Optional in the SDM ("a processor may require"); hv requires it, as the CPU
     * running vmcs02 may. */
    CHECK_RULE_Q(!nmi || !(intr & GUEST_INTR_STI), ENTRY_FAIL_NMI_STI, "26.3.1.5: blocking by STI with NMI injection");
    CHECK_RULE(!nmi || !(x->pin & PIN_BASED_VIRTUAL_NMIS) || !(intr & GUEST_INTR_NMI),
               "26.3.1.5: virtual-NMI blocking with NMI injection");
    CHECK_RULE(!(intr & INTERRUPTIBILITY_ENCLAVE) || !(intr & GUEST_INTR_MOV_SS),
               "26.3.1.5: enclave interruption with blocking by MOV SS");
    CHECK_RULE(!(intr & INTERRUPTIBILITY_ENCLAVE) || x->c->sgx,
               "26.3.1.5: enclave interruption (bit 4) requires SGX (CPUID.(EAX=07H,ECX=0):EBX[2])");
    return true;
}

static bool check_guest_pending_debug(struct ctx *x)
{
    uint64_t pde = G(GUEST_PENDING_DBG_EXCEPTIONS), intr = G(GUEST_INTERRUPTIBILITY_INFO);
    CHECK_RULE(!(pde & PDE_RESERVED), "26.3.1.5: pending debug exceptions bits 11:4, 13, 15, 63:17 must be 0");
    if ((intr & (GUEST_INTR_STI | GUEST_INTR_MOV_SS)) || G(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_HLT) {
        bool single_step = (G(GUEST_RFLAGS) & RFLAGS_TF) && !(G(GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF);
        CHECK_RULE(!single_step || (pde & PDE_BS), "26.3.1.5: pending debug exceptions BS must be 1 (TF=1, BTF=0)");
        CHECK_RULE(single_step || !(pde & PDE_BS), "26.3.1.5: pending debug exceptions BS must be 0 (TF=0 or BTF=1)");
    }
    if (pde & PDE_RTM) {
        CHECK_RULE((pde & PDE_ENABLED_BP) && !(pde & (0xfffull | PDE_BS)) && !(intr & GUEST_INTR_MOV_SS),
                   "26.3.1.5: pending debug exceptions RTM needs bit 12 only, no MOV-SS blocking");
        CHECK_RULE(x->c->rtm, "26.3.1.5: pending debug exceptions RTM (bit 16) requires RTM (CPUID.(EAX=07H,ECX=0):EBX[11])");
    }
    return true;
}

static bool check_guest_link_pointer(struct ctx *x)
{
    uint64_t link = G(VMCS_LINK_POINTER);
    if (link == ~0ull)
        return true;
    CHECK_RULE_Q(!(link & 0xfff), ENTRY_FAIL_VMCS_LINK_PTR, "26.3.1.5: VMCS link pointer bits 11:0 must be 0");
    CHECK_RULE_Q(pa_ok(x, link), ENTRY_FAIL_VMCS_LINK_PTR, "26.3.1.5: VMCS link pointer beyond physical-address width");
    uint32_t rev = x->link->revision;
    CHECK_RULE_Q((rev & 0x7fffffffu) == (uint32_t)(x->c->basic & 0x7fffffffu), ENTRY_FAIL_VMCS_LINK_PTR,
                 "26.3.1.5: VMCS link pointer: bits 30:0 there must be the VMCS revision identifier");
    CHECK_RULE_Q(!!(rev >> 31) == !!(x->proc2 & SECONDARY_SHADOW_VMCS), ENTRY_FAIL_VMCS_LINK_PTR,
                 "26.3.1.5: VMCS link pointer: bit 31 there (shadow VMCS) must equal VMCS shadowing");
    /* L1 is never in SMM (no dual-monitor treatment offered): the current-VMCS rule applies. */
    CHECK_RULE_Q(link != x->link->vmcs_ptr, ENTRY_FAIL_VMCS_LINK_PTR,
                 "26.3.1.5: VMCS link pointer must not be the current-VMCS pointer");
    return true;
}

/* 26.3.1.6: a present PDPTE sets no reserved bit (2:1, 8:5, 63:MAXPHYADDR). */
static bool pdpte_ok(uint64_t pdpte, uint8_t pa)
{
    return !(pdpte & 1) || (!(pdpte & 0x1e6) && (pa >= 64 || !((pdpte & ~0xfffull) >> pa)));
}

/* 26.3.1.6: with EPT and PAE paging the CPU takes the PDPTEs from the VMCS fields. Qualification
 * 2, as for PDPTEs loaded from memory without EPT (nested_check_loaded_pdptes). */
static bool check_guest_pdptes(struct ctx *x)
{
    if (!x->ept || x->ia32e_guest || !(G(GUEST_CR0) & CR0_PG) || !(G(GUEST_CR4) & CR4_PAE))
        return true;
    for (int i = 0; i < 4; i++)
        CHECK_RULE_Q(pdpte_ok(G(GUEST_PDPTR0 + 2 * i), x->pa), ENTRY_FAIL_PDPTE,
                     "26.3.1.6: guest PDPTE reserved bits (enable EPT, PAE paging)");
    return true;
}

int nested_check_loaded_pdptes(const uint64_t pdpte[4], uint8_t phys_bits, uint64_t *exit_qual)
{
    for (int i = 0; i < 4; i++) {
        if (!pdpte_ok(pdpte[i], phys_bits)) {
            last_rule = "26.3.1.6: PDPTE loaded from guest CR3 has reserved bits (PAE paging without EPT)";
            *exit_qual = ENTRY_FAIL_PDPTE;
            return EXIT_REASON_INVALID_STATE;
        }
    }
    return 0;
}

int nested_check_guest(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits,
                       const struct nested_link *link, uint64_t *exit_qual)
{
    struct ctx ctx, *x = &ctx;
    ctx_init(x, v, c, phys_bits);
    x->link = link;
    bool ok = check_guest_cr_msrs(x) && check_guest_rip_rflags(x) && check_guest_segments(x) &&
              check_guest_descriptor_tables(x) && check_guest_activity(x) && check_guest_interruptibility(x) &&
              check_guest_pending_debug(x) && check_guest_link_pointer(x) && check_guest_pdptes(x);
    *exit_qual = ok ? ENTRY_FAIL_DEFAULT : x->qual;
    return ok ? 0 : EXIT_REASON_INVALID_STATE;
}

/* VMRESUME after an exit, when only L2's RIP, RSP, RFLAGS, interruptibility or the event
 * injection changed since vmcs12 last passed (nested/vmenter_fast.c): the rules that read
 * them. A failure here is no verdict: the caller runs every check in the SDM's order. */
int nested_check_entry_fast(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits)
{
    struct ctx ctx, *x = &ctx;
    ctx_init(x, v, c, phys_bits);
    bool ok = check_event_injection(x) && check_guest_rip_rflags(x) && check_guest_activity(x) &&
              check_guest_interruptibility(x) && check_guest_pending_debug(x);
    return ok ? 0 : -1;
}

/* VMRESUME after an exit when L2's RIP is the only guest field L1 changed since vmcs12 last
 * passed or was stored by a VM exit (nested/vmenter_fast.c, NESTED_CHG_RIP): of the rules the
 * fast path reruns, RIP's is the one that reads RIP (26.3.1.4, with the IA-32e mode guest
 * control and CS.L, both unchanged). The event injection's rules (26.2.1.3, its instruction
 * length included) and the RFLAGS, activity and interruptibility rules read no RIP. 0, or -1
 * (then run the full checks for the verdict). */
int nested_check_entry_rip(const struct vmcs12 *v)
{
    bool ia32e = vmcs12_get(v, VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE;
    return guest_rip_ok(vmcs12_get(v, GUEST_RIP), ia32e, vmcs12_get(v, GUEST_CS_AR_BYTES)) ? 0 : -1;
}
