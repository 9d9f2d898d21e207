/* The VMX capability MSRs hv advertises to L1 (SDM Vol. 3D Appendix A). */
#include "caps.h"
#include <stddef.h>
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "nested.h"
#include "vmcs12.h"

/* Controls nested/ emulates; each offered only where the hardware allows it too. */
#define PIN_SUPPORTED (PIN_BASED_EXT_INTR_EXITING | PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS | \
                       PIN_BASED_PREEMPTION_TIMER | PIN_BASED_POSTED_INTR)
#define PROC_SUPPORTED (CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_USE_TSC_OFFSETTING | CPU_BASED_HLT_EXITING | \
                        CPU_BASED_INVLPG_EXITING | CPU_BASED_MWAIT_EXITING | CPU_BASED_RDPMC_EXITING |       \
                        CPU_BASED_RDTSC_EXITING | CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING | \
                        CPU_BASED_CR8_LOAD_EXITING | CPU_BASED_CR8_STORE_EXITING |                          \
                        CPU_BASED_NMI_WINDOW_EXITING | CPU_BASED_MOV_DR_EXITING |                           \
                        CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_USE_IO_BITMAPS |                            \
                        CPU_BASED_MONITOR_TRAP_FLAG | CPU_BASED_USE_MSR_BITMAPS |                           \
                        CPU_BASED_MONITOR_EXITING | CPU_BASED_PAUSE_EXITING | CPU_BASED_ACTIVATE_SECONDARY | \
                        CPU_BASED_TPR_SHADOW)
#define PROC2_SUPPORTED (SECONDARY_EPT | SECONDARY_RDTSCP | SECONDARY_VPID | SECONDARY_WBINVD_EXITING |             \
                         SECONDARY_UNRESTRICTED_GUEST | SECONDARY_RDRAND_EXITING | SECONDARY_INVPCID |         \
                         SECONDARY_RDSEED_EXITING | SECONDARY_XSAVES | SECONDARY_DESC_EXITING | \
                         SECONDARY_PAUSE_LOOP_EXITING | SECONDARY_PML | SECONDARY_SHADOW_VMCS | SECONDARY_TSC_SCALING | \
                         SECONDARY_VIRTUALIZE_APIC | SECONDARY_VIRTUALIZE_X2APIC | \
                         SECONDARY_APIC_REGISTER_VIRT | SECONDARY_VIRTUAL_INTR_DELIVERY | SECONDARY_VMFUNC | \
                         SECONDARY_EPT_VE | SECONDARY_MBEC)
#define EXIT_SUPPORTED (VM_EXIT_SAVE_DEBUG_CONTROLS | VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_ACK_INTR_ON_EXIT | \
                        VM_EXIT_SAVE_PAT | VM_EXIT_LOAD_PAT | VM_EXIT_SAVE_EFER | VM_EXIT_LOAD_EFER |         \
                        VM_EXIT_SAVE_PREEMPTION_TIMER | VM_EXIT_LOAD_PERF_GLOBAL_CTRL | VM_EXIT_SAVE_PERF_GLOBAL_CTRL)
#define ENTRY_SUPPORTED (VM_ENTRY_LOAD_DEBUG_CONTROLS | VM_ENTRY_IA32E_MODE | VM_ENTRY_LOAD_PAT | VM_ENTRY_LOAD_EFER | \
                         VM_ENTRY_LOAD_PERF_GLOBAL_CTRL)

/* EPT for L1 (nested/ept02.c): what EPT02 can shadow. Execute-only, UC paging structures and
 * large pages as the CPU has them (EPT02 maps large EPT12 pages with 4 KiB leaves); accessed/
 * dirty flags (21) as the CPU has them (EPT02 runs with them, for L2's paging-structure
 * accesses to count as writes); 4-level walks, WB and INVEPT of both types always (hv needs
 * the first two, emulates the last). #VE and EPTP switching are secondary controls and
 * IA32_VMX_VMFUNC (no bits here); advanced exit information (22) as the CPU has it: bits 9-11
 * of EPT02's qualifications describe L2's own paging, passed on as they are. */
#define EPT_CAPS_AS_HW (EPT_CAP_EXEC_ONLY | EPT_CAP_UC | EPT_CAP_2M | EPT_CAP_1G | EPT_CAP_AD | EPT_CAP_ADV_EXIT_INFO)
#define EPT_CAPS_ALWAYS (EPT_CAP_PWL4 | EPT_CAP_WB | EPT_CAP_INVEPT | EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL)
#define VPID_CAPS (EPT_CAP_INVVPID | EPT_CAP_INVVPID_ADDR | EPT_CAP_INVVPID_SINGLE | EPT_CAP_INVVPID_ALL | \
                   EPT_CAP_INVVPID_SINGLE_NONGLOBAL)

/* IA32_VMX_MISC fields (A.6) */
#define MISC_TIMER_RATE     0x1full
#define MISC_STORE_LMA      (1ull << 5)
#define MISC_ACTIVITY_HLT   (1ull << 6)
#define MISC_ACTIVITY_SHUTDOWN (1ull << 7)
#define MISC_ACTIVITY_SIPI  (1ull << 8)
#define MISC_CR3_TARGETS_SH 16
#define MISC_VMWRITE_ANY    (1ull << 29)
#define MISC_INJECT_LEN0    (1ull << 30)

/* A control MSR: allowed-0 as the hardware's (settings L1 must use so that hv can run
 * L2 with them), allowed-1 = hardware AND supported. Must-be-1 bits stay allowed too:
 * otherwise no VM entry could pass. */
static uint64_t ctl(uint64_t hw, uint32_t supported)
{
    uint32_t must1 = nested_allowed0(hw);
    uint32_t may1 = (nested_allowed1(hw) & supported) | must1;
    return (uint64_t)may1 << 32 | must1;
}

/* The non-true MSR (A.3.2 etc.): default1 bits also reported as must-be-1. */
static uint64_t non_true(uint64_t true_msr, uint32_t default1)
{
    return true_msr | default1;
}

/* The highest index (encoding bits 9:1) among the fields L1 has (A.9): the table's and
 * those of the features offered. */
static uint64_t vmcs_enum(unsigned features)
{
    uint32_t max = 0;
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++) {
        uint32_t idx = (vmcs12_field_encoding(i) >> 1) & 0x1ff;
        if (idx > max)
            max = idx;
    }
    for (unsigned n = 0; n < VMCS12_NR_FEAT_FIELDS; n++) {
        unsigned f;
        uint32_t idx = (vmcs12_feat_encoding(n, &f) >> 1) & 0x1ff;
        if ((features & f) && idx > max)
            max = idx;
    }
    return (uint64_t)max << 1;
}

/* IA32_PERF_GLOBAL_CTRL's defined bits (SDM 21.2, architectural performance monitoring): an
 * enable per general-purpose counter from bit 0 (CPUID.0AH:EAX[15:8], version 1 and up), per
 * fixed counter from bit 32 (version 2 and up: EDX[4:0] counters, and from version 5 also those
 * ECX's bitmap names), and bit 48 for the performance metrics (IA32_PERF_CAPABILITIES[15], as
 * Linux sets it on Ice Lake and later). The rest is reserved (26.2.2, 26.3.1.1). */
static uint64_t perf_global_valid(const struct vmx_msrs *hw)
{
    unsigned version = hw->cpuid0a_eax & 0xff, gp = (hw->cpuid0a_eax >> 8) & 0xff;
    uint64_t valid = 0, fixed = 0;
    if (!version)
        return 0;
    valid = gp >= 32 ? 0xffffffffull : (1ull << gp) - 1;
    if (version >= 2) {
        fixed = (1ull << (hw->cpuid0a_edx & 0x1f)) - 1;
        if (version >= 5)
            fixed |= hw->cpuid0a_ecx;
        valid |= (fixed & 0xffff) << 32;
    }
    if (hw->perf_capabilities & (1ull << 15))
        valid |= 1ull << 48;
    return valid;
}

void nested_caps_init(struct nested_caps *c, const struct vmx_msrs *hw)
{
    *c = (struct nested_caps){0};

    /* A.1: revision, 4 KiB region, WB, true controls; no 32-bit address limit (48),
     * no dual-monitor SMM (49), no relaxed error-code injection (56). */
    c->basic = VMCS12_REVISION | (uint64_t)VMCS12_SIZE << 32 | 6ull << 50 | (hw->basic & VMX_BASIC_INOUT) |
               VMX_BASIC_TRUE_CTLS;

    c->true_pinbased = ctl(hw->pinbased, PIN_SUPPORTED);
    c->true_procbased = ctl(hw->procbased, PROC_SUPPORTED);
    c->true_exit = ctl(hw->exit, EXIT_SUPPORTED);
    c->true_entry = ctl(hw->entry, ENTRY_SUPPORTED);
    /* vmcs02 keeps what is left of L1's timer across the exits hv handles itself only by saving
     * it (nested/vmenter.c): without that control the timer would restart at each of them. */
    if (!(nested_allowed1(hw->exit) & VM_EXIT_SAVE_PREEMPTION_TIMER))
        c->true_pinbased &= ~((uint64_t)PIN_BASED_PREEMPTION_TIMER << 32);
    if (!(nested_allowed1(c->true_pinbased) & PIN_BASED_PREEMPTION_TIMER))
        c->true_exit &= ~((uint64_t)VM_EXIT_SAVE_PREEMPTION_TIMER << 32);
    c->pinbased = non_true(c->true_pinbased, NESTED_PIN_DEFAULT1);
    c->procbased = non_true(c->true_procbased, NESTED_PROC_DEFAULT1);
    c->exit = non_true(c->true_exit, NESTED_EXIT_DEFAULT1);
    c->entry = non_true(c->true_entry, NESTED_ENTRY_DEFAULT1);

    if (nested_allowed1(c->true_procbased) & CPU_BASED_ACTIVATE_SECONDARY)
        c->procbased2 = ctl(hw->procbased2, PROC2_SUPPORTED);
    /* EPT only where hv's own EPT01 works the same way (4-level, WB); unrestricted guest
     * only with EPT (SDM 26.2.1.1: it requires "enable EPT"). */
    if ((hw->ept_vpid & (EPT_CAP_PWL4 | EPT_CAP_WB)) != (EPT_CAP_PWL4 | EPT_CAP_WB))
        c->procbased2 &= ~((uint64_t)SECONDARY_EPT << 32);
    /* Unrestricted guest, EPTP switching and #VE only with EPT (26.2.1.1; hv emulates the
     * latter two on EPT02: nested/vmfunc.c). */
    if (!(nested_allowed1(c->procbased2) & SECONDARY_EPT))
        c->procbased2 &= ~((uint64_t)(SECONDARY_UNRESTRICTED_GUEST | SECONDARY_VMFUNC | SECONDARY_EPT_VE |
                                      SECONDARY_MBEC) << 32);

    /* A.6: timer rate and LMA storing as the hardware; the HLT, shutdown and wait-for-SIPI
     * activity states as the hardware (vmcs02 takes vmcs12's after hv's checks of 26.3.1.5;
     * INIT and SIPI exits of L2 are L1's, and hv holds NMIs in wait-for-SIPI); at most 4 CR3
     * targets; 512 MSRs per list (27:25 = 0); no SMM features; VMWRITE to exit-information
     * fields and zero-length software-event injection (30: vmcs02 takes vmcs12's instruction
     * length as it is) as the hardware. */
    unsigned cr3_targets = (unsigned)(hw->misc >> MISC_CR3_TARGETS_SH) & 0x1ff;
    if (cr3_targets > 4)
        cr3_targets = 4;
    c->misc = (hw->misc & (MISC_TIMER_RATE | MISC_STORE_LMA | MISC_ACTIVITY_HLT | MISC_ACTIVITY_SHUTDOWN | MISC_ACTIVITY_SIPI |
                          MISC_VMWRITE_ANY | MISC_INJECT_LEN0)) |
              (uint64_t)cr3_targets << MISC_CR3_TARGETS_SH;

    /* A.7, A.8: as the hardware. PE and PG stay reported as fixed to 1: unrestricted guest
     * lifts them for the guest CR0 only (26.3.1.1), as on hardware. */
    c->cr0_fixed0 = hw->cr0_fixed0;
    c->cr0_fixed1 = hw->cr0_fixed1;
    c->cr4_fixed0 = hw->cr4_fixed0;
    c->cr4_fixed1 = hw->cr4_fixed1;


    /* A.10: EPT as EPT02 shadows it; INVVPID and its types as the hardware. */
    if (nested_allowed1(c->procbased2) & SECONDARY_VPID)
        c->ept_vpid = hw->ept_vpid & VPID_CAPS;
    if (!(c->ept_vpid & EPT_CAP_INVVPID))
        c->ept_vpid = 0;
    if (nested_allowed1(c->procbased2) & SECONDARY_EPT)
        c->ept_vpid |= (hw->ept_vpid & EPT_CAPS_AS_HW) | EPT_CAPS_ALWAYS;
    /* PML is emulated on EPT02's faults with the A/D flags (nested/ept02.c): only with them. */
    if (!(c->ept_vpid & EPT_CAP_AD))
        c->procbased2 &= ~((uint64_t)SECONDARY_PML << 32);
    /* MBEC (29.3.3.2) on EPT02 needs to know whether a fetch was from a user-mode linear
     * address: bit 9 of the CPU's qualification, with advanced exit information only. */
    if (!(c->ept_vpid & EPT_CAP_ADV_EXIT_INFO))
        c->procbased2 &= ~((uint64_t)SECONDARY_MBEC << 32);
    c->vmcs_enum = vmcs_enum(nested_vmcs12_features(c));
    /* A.11: EPTP switching (bit 0), emulated by hv; the MSR exists with "enable VM functions". */
    c->vmfunc = (nested_allowed1(c->procbased2) & SECONDARY_VMFUNC) ? 1 : 0;
    /* hv passes CPUID leaf 7 through: L1 has SGX and RTM exactly when the CPU has them. */
    c->sgx = hw->cpuid7_ebx & (1u << 2);
    c->rtm = hw->cpuid7_ebx & (1u << 11);
    c->perf_global_valid = perf_global_valid(hw);
}

bool nested_caps_msr(const struct nested_caps *c, uint32_t msr, uint64_t *val)
{
    uint32_t proc2 = nested_allowed1(c->procbased2);

    switch (msr) {
    case MSR_IA32_VMX_BASIC: *val = c->basic; return true;
    case MSR_IA32_VMX_PINBASED_CTLS: *val = c->pinbased; return true;
    case MSR_IA32_VMX_PROCBASED_CTLS: *val = c->procbased; return true;
    case MSR_IA32_VMX_EXIT_CTLS: *val = c->exit; return true;
    case MSR_IA32_VMX_ENTRY_CTLS: *val = c->entry; return true;
    case MSR_IA32_VMX_MISC: *val = c->misc; return true;
    case MSR_IA32_VMX_CR0_FIXED0: *val = c->cr0_fixed0; return true;
    case MSR_IA32_VMX_CR0_FIXED1: *val = c->cr0_fixed1; return true;
    case MSR_IA32_VMX_CR4_FIXED0: *val = c->cr4_fixed0; return true;
    case MSR_IA32_VMX_CR4_FIXED1: *val = c->cr4_fixed1; return true;
    case MSR_IA32_VMX_VMCS_ENUM: *val = c->vmcs_enum; return true;
    case MSR_IA32_VMX_PROCBASED_CTLS2:
        if (!(nested_allowed1(c->true_procbased) & CPU_BASED_ACTIVATE_SECONDARY))
            return false;
        *val = c->procbased2;
        return true;
    case MSR_IA32_VMX_EPT_VPID_CAP:
        if (!(proc2 & (SECONDARY_EPT | SECONDARY_VPID)))
            return false;
        *val = c->ept_vpid;
        return true;
    case MSR_IA32_VMX_TRUE_PINBASED_CTLS: *val = c->true_pinbased; return true;
    case MSR_IA32_VMX_TRUE_PROCBASED_CTLS: *val = c->true_procbased; return true;
    case MSR_IA32_VMX_TRUE_EXIT_CTLS: *val = c->true_exit; return true;
    case MSR_IA32_VMX_TRUE_ENTRY_CTLS: *val = c->true_entry; return true;
    case MSR_IA32_VMX_VMFUNC:
        if (!(proc2 & SECONDARY_VMFUNC))
            return false;
        *val = c->vmfunc;
        return true;
    default:
        return false;
    }
}

unsigned nested_vmcs12_features(const struct nested_caps *c)
{
    uint32_t pin = nested_allowed1(c->true_pinbased), proc = nested_allowed1(c->true_procbased);
    uint32_t proc2 = (proc & CPU_BASED_ACTIVATE_SECONDARY) ? nested_allowed1(c->procbased2) : 0;
    return (proc2 & SECONDARY_EPT ? VMCS12_FEAT_EPT : 0) | (proc2 & SECONDARY_XSAVES ? VMCS12_FEAT_XSAVES : 0) |
           (proc2 & SECONDARY_PAUSE_LOOP_EXITING ? VMCS12_FEAT_PLE : 0) |
           (proc & CPU_BASED_TPR_SHADOW ? VMCS12_FEAT_TPR_SHADOW : 0) |
           (proc2 & SECONDARY_VIRTUALIZE_APIC ? VMCS12_FEAT_APIC_ACCESS : 0) |
           (pin & PIN_BASED_POSTED_INTR ? VMCS12_FEAT_POSTED_INTR : 0) |
           (proc2 & SECONDARY_VIRTUAL_INTR_DELIVERY ? VMCS12_FEAT_VID : 0) | (proc2 & SECONDARY_PML ? VMCS12_FEAT_PML : 0) |
           (proc2 & SECONDARY_SHADOW_VMCS ? VMCS12_FEAT_SHADOW_VMCS : 0) |
           (proc2 & SECONDARY_VMFUNC ? VMCS12_FEAT_VMFUNC : 0) | (proc2 & SECONDARY_EPT_VE ? VMCS12_FEAT_EPT_VE : 0) |
           (proc2 & SECONDARY_TSC_SCALING ? VMCS12_FEAT_TSC_SCALING : 0) |
           ((nested_allowed1(c->true_entry) & VM_ENTRY_LOAD_PERF_GLOBAL_CTRL) ||
                    (nested_allowed1(c->true_exit) & (VM_EXIT_LOAD_PERF_GLOBAL_CTRL | VM_EXIT_SAVE_PERF_GLOBAL_CTRL))
                ? VMCS12_FEAT_PERF_GLOBAL
                : 0);
}

bool nested_ctl_ok(uint64_t cap_msr, uint32_t value)
{
    uint32_t must1 = nested_allowed0(cap_msr), may1 = nested_allowed1(cap_msr);
    return (value & must1) == must1 && (value & ~may1) == 0;
}

/* 26.2.1.1 "enable EPT": the EPTP (25.6.11) as IA32_VMX_EPT_VPID_CAP advertises it. */
const char *nested_eptp_problem(const struct nested_caps *c, uint64_t eptp, uint8_t phys_bits)
{
    unsigned mt = eptp & 7;
    if (!((mt == 0 && (c->ept_vpid & EPT_CAP_UC)) || (mt == 6 && (c->ept_vpid & EPT_CAP_WB))))
        return "26.2.1.1: EPTP memory type not supported (IA32_VMX_EPT_VPID_CAP bits 8, 14)";
    if (((eptp >> 3) & 7) != 3 || !(c->ept_vpid & EPT_CAP_PWL4))
        return "26.2.1.1: EPTP page-walk length must be 4 (bits 5:3 = 3)";
    if ((eptp & (1ull << 6)) && !(c->ept_vpid & EPT_CAP_AD))
        return "26.2.1.1: EPTP bit 6 (accessed/dirty flags) requires IA32_VMX_EPT_VPID_CAP[21]";
    if (eptp & 0xf80)
        return "26.2.1.1: EPTP bits 11:7 are reserved";
    if (phys_bits < 64 && (eptp >> phys_bits))
        return "26.2.1.1: EPTP beyond physical-address width";
    return NULL;
}

void nested_guest_cr_fixed(const struct nested_vcpu *nv, bool cr4, uint64_t *fixed0, uint64_t *fixed1)
{
    const struct nested_caps *c = nv->caps;
    *fixed0 = 0;
    *fixed1 = ~0ull;
    if (!nv->n->vmxon)
        return;
    *fixed0 = cr4 ? c->cr4_fixed0 : c->cr0_fixed0;
    *fixed1 = cr4 ? c->cr4_fixed1 : c->cr0_fixed1;
    if (!cr4 && nv->n->guest_mode && (vmcs12_get(nv->n->cache, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
        (vmcs12_get(nv->n->cache, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_UNRESTRICTED_GUEST))
        *fixed0 &= ~(uint64_t)(CR0_PE | CR0_PG);
}
