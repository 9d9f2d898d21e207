#include "probe.h"
#include <string.h>
#include "../lib/x86.h"
#include "vmx.h"
#include "vmx_bits.h"

void vmx_read_msrs(struct vmx_msrs *m)
{
    memset(m, 0, sizeof(*m));
    cpuid_vendor(m->vendor);
    m->cpuid1_ecx = cpuid(1, 0).ecx;
    if (cpuid(0, 0).eax >= 7)
        m->cpuid7_ebx = cpuid(7, 0).ebx;
    if (cpuid(0, 0).eax >= 0xa) {
        struct cpuid_regs pm = cpuid(0xa, 0);
        m->cpuid0a_eax = pm.eax;
        m->cpuid0a_ecx = pm.ecx;
        m->cpuid0a_edx = pm.edx;
    }
    if (m->cpuid1_ecx & (1u << 15)) /* PDCM: IA32_PERF_CAPABILITIES exists */
        m->perf_capabilities = rdmsr(MSR_IA32_PERF_CAPABILITIES);
    if (!(m->cpuid1_ecx & (1u << 5)))
        return; /* the MSRs below would #GP */
    m->feature_control = rdmsr(MSR_IA32_FEATURE_CONTROL);
    m->basic = rdmsr(MSR_IA32_VMX_BASIC);
    bool t = m->basic & VMX_BASIC_TRUE_CTLS;
    m->pinbased = rdmsr(t ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS);
    m->procbased = rdmsr(t ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
    m->exit = rdmsr(t ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
    m->entry = rdmsr(t ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
    m->misc = rdmsr(MSR_IA32_VMX_MISC);
    m->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
    m->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    m->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
    m->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    if (m->procbased >> 32 & CPU_BASED_ACTIVATE_SECONDARY) {
        m->procbased2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
        if (m->procbased2 >> 32 & (SECONDARY_EPT | SECONDARY_VPID))
            m->ept_vpid = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
    }
}

int vmx_on(struct vmx_root *r, const struct vmx_caps *caps, void *vmxon_page, const char **why)
{
    uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
    if (!(fc & FEATURE_CONTROL_LOCKED)) {
        /* Firmware left it unlocked (Bochs does): enable VMXON outside SMX and lock. */
        wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMXON_OUTSIDE_SMX);
    } else if (!(fc & FEATURE_CONTROL_VMXON_OUTSIDE_SMX)) {
        *why = "IA32_FEATURE_CONTROL locked with VMXON outside SMX disabled";
        return -1;
    }
    r->saved_cr0 = read_cr0();
    r->saved_cr4 = read_cr4();
    /* SDM 24.8: CR0 and CR4 must honour the VMX fixed bits in VMX operation. */
    uint64_t cr0 = (r->saved_cr0 | rdmsr(MSR_IA32_VMX_CR0_FIXED0)) & rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    uint64_t cr4 = (r->saved_cr4 | rdmsr(MSR_IA32_VMX_CR4_FIXED0) | CR4_VMXE) & rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    write_cr0(cr0);
    write_cr4(cr4);
    *(uint32_t *)vmxon_page = caps->revision;
    r->vmxon_pa = (uint64_t)(uintptr_t)vmxon_page;
    enum vmx_status s = vmxon(r->vmxon_pa);
    if (s != VMX_OK) {
        write_cr4(r->saved_cr4);
        write_cr0(r->saved_cr0);
        *why = s == VMX_FAIL_INVALID ? "VMXON failed (VMfailInvalid): bad VMXON region or already in VMX operation"
                                     : "VMXON failed (VMfailValid)";
        return -2;
    }
    r->on = true;
    return 0;
}

int vmx_off(struct vmx_root *r)
{
    if (!r->on)
        return 0;
    enum vmx_status s = vmxoff();
    r->on = false;
    write_cr4(r->saved_cr4);
    write_cr0(r->saved_cr0);
    return s == VMX_OK ? 0 : -1;
}
