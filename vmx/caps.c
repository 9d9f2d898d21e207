#include "caps.h"
#include <stdio.h>
#include <string.h>
#include "vmx_bits.h"

/* Allowed-1 settings are the high 32 bits of a capability MSR (SDM A.3). */
static uint32_t allowed1(uint64_t msr) { return (uint32_t)(msr >> 32); }

bool vmx_caps_decode(const struct vmx_msrs *in, struct vmx_caps *c, char *why, size_t n)
{
    memset(c, 0, sizeof(*c));
    snprintf(why, n, "ok");
    if (strcmp(in->vendor, "GenuineIntel") != 0 && !(in->cpuid1_ecx & (1u << 5))) {
        snprintf(why, n, "no VMX: CPU vendor is %s and CPUID.1:ECX[5] (VMX) is 0", in->vendor);
        return false;
    }
    if (!(in->cpuid1_ecx & (1u << 5))) {
        snprintf(why, n, "no VMX: CPUID.1:ECX[5] is 0 (VT-x absent, or hidden by a hypervisor below)");
        return false;
    }
    uint64_t fc = in->feature_control;
    if ((fc & FEATURE_CONTROL_LOCKED) && !(fc & FEATURE_CONTROL_VMXON_OUTSIDE_SMX)) {
        snprintf(why, n, "VMX disabled and locked in IA32_FEATURE_CONTROL (0x%llx): enable VT-x in firmware setup",
                 (unsigned long long)fc);
        return false;
    }
    c->feature_control_unlocked = !(fc & FEATURE_CONTROL_LOCKED);

    c->revision = (uint32_t)(in->basic & 0x7fffffff);
    c->vmcs_size = (uint32_t)(in->basic >> 32) & 0x1fff;
    c->true_ctls = in->basic & VMX_BASIC_TRUE_CTLS;
    c->pin_allowed1 = allowed1(in->pinbased);
    c->proc_allowed1 = allowed1(in->procbased);
    c->exit_allowed1 = allowed1(in->exit);
    c->entry_allowed1 = allowed1(in->entry);
    c->proc2_allowed1 = (c->proc_allowed1 & CPU_BASED_ACTIVATE_SECONDARY) ? allowed1(in->procbased2) : 0;

    c->ept = c->proc2_allowed1 & SECONDARY_EPT;
    c->vpid = c->proc2_allowed1 & SECONDARY_VPID;
    c->unrestricted = c->proc2_allowed1 & SECONDARY_UNRESTRICTED_GUEST;
    c->vmcs_shadowing = c->proc2_allowed1 & SECONDARY_SHADOW_VMCS;
    c->msr_bitmaps = c->proc_allowed1 & CPU_BASED_USE_MSR_BITMAPS;
    c->io_bitmaps = c->proc_allowed1 & CPU_BASED_USE_IO_BITMAPS;
    c->mtf = c->proc_allowed1 & CPU_BASED_MONITOR_TRAP_FLAG;
    c->preemption_timer = c->pin_allowed1 & PIN_BASED_PREEMPTION_TIMER;
    c->preemption_timer_shift = in->misc & 0x1f;
    uint64_t ev = c->ept || c->vpid ? in->ept_vpid : 0;
    c->ept_4level = ev & EPT_CAP_PWL4;
    c->ept_wb = ev & EPT_CAP_WB;
    c->ept_2m = ev & EPT_CAP_2M;
    c->ept_1g = ev & EPT_CAP_1G;
    c->ept_ad = ev & EPT_CAP_AD;
    c->invept_single = (ev & EPT_CAP_INVEPT) && (ev & EPT_CAP_INVEPT_SINGLE);
    c->invept_all = (ev & EPT_CAP_INVEPT) && (ev & EPT_CAP_INVEPT_ALL);
    c->invvpid_single = (ev & EPT_CAP_INVVPID) && (ev & EPT_CAP_INVVPID_SINGLE);
    c->invvpid_all = (ev & EPT_CAP_INVVPID) && (ev & EPT_CAP_INVVPID_ALL);

    /* What hv cannot run a firmware and an OS without, in the order a reader would check. */
    static const struct { size_t off; const char *name; } need[] = {
        {offsetof(struct vmx_caps, msr_bitmaps), "MSR bitmaps"},
        /* hv/exit_ept.c, hv/exit_io.c: a write to hv's memory, a string I/O, is one instruction stepped */
        {offsetof(struct vmx_caps, mtf), "monitor trap flag (primary control bit 27)"},
        {offsetof(struct vmx_caps, ept), "EPT (secondary control bit 1)"},
        {offsetof(struct vmx_caps, unrestricted), "unrestricted guest (secondary control bit 7)"},
        {offsetof(struct vmx_caps, ept_4level), "4-level EPT page walk"},
        {offsetof(struct vmx_caps, ept_wb), "write-back EPT paging structures"},
        /* vmx/ept.c: EPT01 maps what 1 GiB leaves do not cover with 2 MiB ones */
        {offsetof(struct vmx_caps, ept_2m), "2 MiB EPT pages (IA32_VMX_EPT_VPID_CAP bit 16)"},
        {offsetof(struct vmx_caps, invept_all), "INVEPT all-context"},
    };
    if ((in->basic >> 50 & 0xf) != 6) {
        snprintf(why, n, "required feature missing: write-back VMCS memory type (IA32_VMX_BASIC[53:50]=%u)",
                 (unsigned)(in->basic >> 50 & 0xf));
        return false;
    }
    if (!(c->proc_allowed1 & CPU_BASED_ACTIVATE_SECONDARY)) {
        snprintf(why, n, "required feature missing: secondary processor-based controls");
        return false;
    }
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!*(const bool *)((const char *)c + need[i].off)) {
            snprintf(why, n, "required feature missing: %s", need[i].name);
            return false;
        }
    c->usable = true;
    return true;
}
