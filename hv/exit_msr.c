/* RDMSR/WRMSR: the MSR bitmap passes everything through except what hv owns
 * (IA32_FEATURE_CONTROL, the IA32_VMX_* capabilities). MSRs outside the bitmap's
 * ranges always exit: hv performs them and turns a fault into the guest's #GP. The MSRs
 * the VMCS switches (EFER, PAT, DEBUGCTL, SYSENTER_*, FS/GS base) are the guest's fields,
 * never hv's registers. */
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "apic.h"
#include "exit.h"
#include "host.h"
#include "../nested/caps.h"

/* MSR bitmap layout (SDM 25.6.9): read low, read high, write low, write high; 1 KiB each. */
void msr_bitmap_intercept(uint8_t *bm, uint32_t msr, bool read, bool write)
{
    uint32_t off = msr >= 0xc0000000u ? 1024 : 0, bit = msr & 0x1fff;
    if (msr > 0x1fff && (msr < 0xc0000000u || msr > 0xc0001fffu))
        return; /* outside the bitmap: always exits anyway */
    if (read)
        bm[off + bit / 8] |= (uint8_t)(1u << (bit % 8));
    if (write)
        bm[2048 + off + bit / 8] |= (uint8_t)(1u << (bit % 8));
}

static bool is_vmx_cap_msr(uint32_t msr) { return msr >= MSR_IA32_VMX_BASIC && msr <= MSR_IA32_VMX_VMFUNC; }

static bool canonical(uint64_t a) { return (uint64_t)((int64_t)(a << 16) >> 16) == a; }

/* A value the CPU's WRMSR accepts for an MSR the VMCS switches (else #GP): EFER's defined
 * bits, with LME fixed while paging is on (LMA is read-only: kept); PAT's memory types
 * (SDM 13.12.2); canonical bases; DEBUGCTL's architectural bits. */
static bool vmcs_msr_value_ok(struct vcpu *v, uint32_t msr, uint64_t *val)
{
    switch (msr) {
    case MSR_IA32_EFER: {
        uint64_t old = vm_read(v, GUEST_IA32_EFER);
        if (*val & ~(uint64_t)(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
            return false;
        if ((reg_cr0(&v->rc) & CR0_PG) && ((*val ^ old) & EFER_LME))
            return false;
        *val = (*val & ~(uint64_t)EFER_LMA) | (old & EFER_LMA);
        return true;
    }
    case MSR_IA32_PAT:
        for (int i = 0; i < 8; i++) {
            uint8_t t = (uint8_t)(*val >> (8 * i));
            if (t > 7 || t == 2 || t == 3)
                return false;
        }
        return true;
    case MSR_IA32_DEBUGCTL:
        return !(*val & ~0xffc3ull);
    case MSR_IA32_SYSENTER_CS:
        *val &= 0xffffffffull;
        return true;
    default: /* FS/GS base, SYSENTER_ESP/EIP */
        return canonical(*val);
    }
}

/* What the guest's RDMSR reads: 0, or -1 for #GP. Also what L1's VM-exit MSR-store lists store
 * (nested/ through hv_rdmsr): hardware stores what RDMSR would return (SDM 28.4). */
int guest_rdmsr(uint32_t msr, uint64_t *val)
{
    if (msr == MSR_IA32_FEATURE_CONTROL) {
        /* Locked; VMXON allowed only when hv emulates VMX (Hyper-V checks this). */
        *val = FEATURE_CONTROL_LOCKED | (hv.nested ? FEATURE_CONTROL_VMXON_OUTSIDE_SMX : 0);
        return 0;
    }
    if (is_vmx_cap_msr(msr)) /* what hv emulates (nested/caps.c); without nested VMX they do not exist */
        return hv.nested && nested_caps_msr(&hv.ncaps, msr, val) ? 0 : -1;
    return safe_rdmsr(msr, val) ? -1 : 0;
}

/* What the guest's WRMSR does: 0, or -1 for #GP (locked, read-only, or refused by the CPU).
 * Also the MSR-load lists of nested VMX (hv_wrmsr). */
int guest_wrmsr(uint32_t msr, uint64_t val)
{
    return msr == MSR_IA32_FEATURE_CONTROL || is_vmx_cap_msr(msr) || safe_wrmsr(msr, val) ? -1 : 0;
}

void handle_rdmsr(struct vcpu *v)
{
    uint64_t *g = v->rc.regs;
    uint32_t msr = (uint32_t)g[HV_REG_RCX];
    uint64_t val;
    if (vmcs_guest_msr_field(msr)) {
        val = vm_read(v, vmcs_guest_msr_field(msr)); /* the guest's, not hv's register */
    } else if (guest_rdmsr(msr, &val)) {
        inject_gp(v);
        return;
    }
    g[HV_REG_RAX] = (uint32_t)val;
    g[HV_REG_RDX] = val >> 32;
    reg_skip_instruction(&v->rc);
}

void handle_wrmsr(struct vcpu *v)
{
    uint64_t *g = v->rc.regs;
    uint32_t msr = (uint32_t)g[HV_REG_RCX];
    uint64_t val = (g[HV_REG_RDX] << 32) | (uint32_t)g[HV_REG_RAX];
    uint32_t field = vmcs_guest_msr_field(msr);
    if (msr == MSR_X2APIC_ICR)
        apic_icr_write(v, (uint32_t)val, (uint32_t)(val >> 32), true); /* INIT/SIPI latched, then sent */
    if (field) {
        /* The guest's value lives in the VMCS; the register holds hv's (e.g. GS_BASE, hv's
         * per-CPU pointer). An L2 reaches this when L1's MSR bitmap changed while it ran. */
        if (!vmcs_msr_value_ok(v, msr, &val)) {
            inject_gp(v);
            return;
        }
        vm_write(v, field, val);
    } else if (guest_wrmsr(msr, val)) {
        inject_gp(v); /* locked, read-only, or refused by the CPU */
        return;
    }
    reg_skip_instruction(&v->rc);
}
