/*
 * Nested VM-Exit: an exit from L2 that L1 asked for (its controls, bitmaps,
 * exception bitmap, CR masks) is reflected: vmcs12 receives L2's state and the exit
 * information as hardware would store them (SDM 28.2-28.3), the VM-exit MSR lists are
 * processed (28.4, 28.6), and L1 continues from vmcs12's host state (28.5) in vmcs01.
 */
#include <string.h>
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "checks.h"
#include "nested_int.h"

void nested_log_check(void) { log_debug("nested: vmcs12 fails %s", nested_check_last_rule()); }

/* Exit information the CPU stored in vmcs02 (SDM 28.2). */
static const uint32_t exit_info[] = {
    VM_EXIT_REASON, EXIT_QUALIFICATION, GUEST_LINEAR_ADDRESS, VM_EXIT_INTR_INFO, VM_EXIT_INTR_ERROR_CODE,
    IDT_VECTORING_INFO_FIELD, IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN, VMX_INSTRUCTION_INFO, IO_RCX,
    IO_RSI, IO_RDI, IO_RIP,
};

static void sync_vmcs12(struct nested_vcpu *nv)
{
    struct regcache *rc = nv->rc;
    for (unsigned i = 0; i < nested_nr_guest_fields; i++)
        v12_set(nv, nested_guest_fields[i], vmcs_read(nested_guest_fields[i]));
    for (unsigned i = 0; i < sizeof(exit_info) / sizeof(exit_info[0]); i++)
        v12_set(nv, exit_info[i], vmcs_read(exit_info[i]));
    /* SDM 27.2.1: VMREAD/VMWRITE with a register operand have no displacement, so the exit
     * qualification is 0. Bochs stores a stale decoder displacement there instead; L1 gets
     * the architectural value. */
    uint32_t basic = (uint32_t)v12(nv, VM_EXIT_REASON) & 0xffff;
    if ((basic == EXIT_REASON_VMREAD || basic == EXIT_REASON_VMWRITE) && (v12(nv, VMX_INSTRUCTION_INFO) & (1u << 10)))
        v12_set(nv, EXIT_QUALIFICATION, 0);
    v12_set(nv, GUEST_RIP, reg_rip(rc));
    v12_set(nv, GUEST_RSP, reg_read(rc, HV_REG_RSP));
    v12_set(nv, GUEST_RFLAGS, reg_rflags(rc));
    /* The CR3 L2 really has: vmcs02 was loaded from vmcs12 at entry and the CPU kept it
     * current since; through the cache, so an exit that already read it pays nothing. */
    v12_set(nv, GUEST_CR3, reg_read(rc, HV_REG_CR3));
    /* CR0/CR4 as L1 sees L2's: bits only hv owns come from vmcs02's shadow. */
    uint64_t m0 = v12(nv, CR0_GUEST_HOST_MASK), m4 = v12(nv, CR4_GUEST_HOST_MASK);
    uint64_t hv0 = nv->cr0_mask & ~m0, hv4 = nv->cr4_mask & ~m4;
    v12_set(nv, GUEST_CR0, (reg_read(rc, HV_REG_CR0) & ~hv0) | (vmcs_read(CR0_READ_SHADOW) & hv0));
    v12_set(nv, GUEST_CR4, (reg_read(rc, HV_REG_CR4) & ~hv4) | (vmcs_read(CR4_READ_SHADOW) & hv4));
    uint32_t exit12 = (uint32_t)v12(nv, VM_EXIT_CONTROLS);
    if (exit12 & VM_EXIT_SAVE_DEBUG_CONTROLS) {
        v12_set(nv, GUEST_DR7, vmcs_read(GUEST_DR7));
        v12_set(nv, GUEST_IA32_DEBUGCTL, vmcs_read(GUEST_IA32_DEBUGCTL));
    }
    if (exit12 & VM_EXIT_SAVE_EFER)
        v12_set(nv, GUEST_IA32_EFER, vmcs_read(GUEST_IA32_EFER));
    if (exit12 & VM_EXIT_SAVE_PAT)
        v12_set(nv, GUEST_IA32_PAT, vmcs_read(GUEST_IA32_PAT));
    if (exit12 & VM_EXIT_SAVE_PREEMPTION_TIMER)
        v12_set(nv, VMX_PREEMPTION_TIMER_VALUE, vmcs_read(VMX_PREEMPTION_TIMER_VALUE));
    /* With EPT the CPU saves the PDPTEs (28.3.4) and L2's guest-physical addresses are L1's
     * to see; without L1's EPT both belong to hv's EPT01. */
    if (nv->n->ept12) {
        for (int i = 0; i < 4; i++)
            v12_set(nv, GUEST_PDPTR0 + 2 * i, vmcs_read(GUEST_PDPTR0 + 2 * i));
        v12_set(nv, GUEST_PHYSICAL_ADDRESS, vmcs_read(GUEST_PHYSICAL_ADDRESS));
    }
    /* The CPU stores EFER.LMA into "IA-32e mode guest" on every exit. */
    uint64_t entry = v12(nv, VM_ENTRY_CONTROLS) & ~(uint64_t)VM_ENTRY_IA32E_MODE;
    v12_set(nv, VM_ENTRY_CONTROLS, entry | (vmcs_read(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE));
    /* The valid bit of the VM-entry interruption information is cleared (28.2.?). */
    v12_set(nv, VM_ENTRY_INTR_INFO_FIELD, v12(nv, VM_ENTRY_INTR_INFO_FIELD) & ~(uint64_t)INTR_INFO_VALID);
}

static void segment(enum guest_seg seg, uint16_t sel, uint64_t base, uint32_t ar)
{
    vmcs_write(GUEST_SEG_SELECTOR(seg), sel);
    vmcs_write(GUEST_SEG_BASE(seg), base);
    vmcs_write(GUEST_SEG_LIMIT(seg), 0xffffffff);
    vmcs_write(GUEST_SEG_AR(seg), sel ? ar : 0x10000); /* a null selector leaves the register unusable */
}

void nested_load_l1_host_state(struct nested_vcpu *nv)
{
    struct regcache *rc = nv->rc;
    uint32_t exit12 = (uint32_t)v12(nv, VM_EXIT_CONTROLS);
    bool l64 = exit12 & VM_EXIT_HOST_ADDR_SPACE_SIZE;
    /* 28.5.1: CR0.ET, CD, NW and the reserved bits (63:32, 28:19, 17, 15:6) keep L1's values;
     * vmcs01 still has L1's CR0 from before the entry. */
    uint64_t keep = 0xffffffff00000000ull | 0x1ff80000ull | 1ull << 17 | 0xffc0ull | CR0_CD | CR0_NW | 1ull << 4;
    uint64_t l1_cr0 = (reg_read(rc, HV_REG_CR0) & ~nv->cr0_mask) | (vmcs_read(CR0_READ_SHADOW) & nv->cr0_mask);
    uint64_t cr0 = (v12(nv, HOST_CR0) & ~keep) | (l1_cr0 & keep), cr4 = v12(nv, HOST_CR4);
    vmcs_write(CR0_READ_SHADOW, cr0);
    reg_write(rc, HV_REG_CR0, (cr0 | nv->hw->cr0_fixed0) & nv->hw->cr0_fixed1);
    vmcs_write(CR4_READ_SHADOW, cr4);
    reg_write(rc, HV_REG_CR4, (cr4 | nv->hw->cr4_fixed0) & nv->hw->cr4_fixed1);
    reg_write(rc, HV_REG_CR3, v12(nv, HOST_CR3));
    vmcs_write(GUEST_DR7, 0x400);
    vmcs_write(GUEST_IA32_DEBUGCTL, 0);
    vmcs_write(GUEST_SYSENTER_CS, v12(nv, HOST_IA32_SYSENTER_CS));
    vmcs_write(GUEST_SYSENTER_ESP, v12(nv, HOST_IA32_SYSENTER_ESP));
    vmcs_write(GUEST_SYSENTER_EIP, v12(nv, HOST_IA32_SYSENTER_EIP));
    uint64_t efer = vmcs_read(GUEST_IA32_EFER);
    if (exit12 & VM_EXIT_LOAD_EFER)
        efer = v12(nv, HOST_IA32_EFER);
    else
        efer = l64 ? efer | EFER_LMA | EFER_LME : efer & ~(EFER_LMA | EFER_LME);
    vmcs_write(GUEST_IA32_EFER, efer);
    if (exit12 & VM_EXIT_LOAD_PAT)
        vmcs_write(GUEST_IA32_PAT, v12(nv, HOST_IA32_PAT));
    uint32_t entry01 = (uint32_t)vmcs_read(VM_ENTRY_CONTROLS);
    vmcs_write(VM_ENTRY_CONTROLS, l64 ? entry01 | VM_ENTRY_IA32E_MODE : entry01 & ~VM_ENTRY_IA32E_MODE);
    /* Segments (SDM 28.5.2): flat, CS 64-bit code when the host is 64-bit. */
    segment(SEG_CS, (uint16_t)v12(nv, HOST_CS_SELECTOR),
            0, l64 ? 0xa09b : 0xc09b);
    segment(SEG_SS, (uint16_t)v12(nv, HOST_SS_SELECTOR),
            0, 0xc093);
    segment(SEG_DS, (uint16_t)v12(nv, HOST_DS_SELECTOR),
            0, 0xc093);
    segment(SEG_ES, (uint16_t)v12(nv, HOST_ES_SELECTOR),
            0, 0xc093);
    segment(SEG_FS, (uint16_t)v12(nv, HOST_FS_SELECTOR),
            v12(nv, HOST_FS_BASE), 0xc093);
    segment(SEG_GS, (uint16_t)v12(nv, HOST_GS_SELECTOR),
            v12(nv, HOST_GS_BASE), 0xc093);
    vmcs_write(GUEST_FS_BASE, v12(nv, HOST_FS_BASE)); /* loaded even for a null selector */
    vmcs_write(GUEST_GS_BASE, v12(nv, HOST_GS_BASE));
    vmcs_write(GUEST_TR_SELECTOR, v12(nv, HOST_TR_SELECTOR));
    vmcs_write(GUEST_TR_BASE, v12(nv, HOST_TR_BASE));
    vmcs_write(GUEST_TR_LIMIT, 0x67);
    vmcs_write(GUEST_TR_AR_BYTES, 0x8b);
    vmcs_write(GUEST_LDTR_SELECTOR, 0);
    vmcs_write(GUEST_LDTR_AR_BYTES, 0x10000);
    vmcs_write(GUEST_GDTR_BASE, v12(nv, HOST_GDTR_BASE));
    vmcs_write(GUEST_GDTR_LIMIT, 0xffff);
    vmcs_write(GUEST_IDTR_BASE, v12(nv, HOST_IDTR_BASE));
    vmcs_write(GUEST_IDTR_LIMIT, 0xffff);
    reg_write(rc, HV_REG_RIP, v12(nv, HOST_RIP));
    reg_write(rc, HV_REG_RSP, v12(nv, HOST_RSP));
    reg_write(rc, HV_REG_RFLAGS, 0x2);
    vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
    vmcs_write(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, 0);
    vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);
}

/* MSRs the VMCS switches itself: list entries for them go to the current VMCS. */
static uint32_t vmcs_msr_field(uint32_t msr)
{
    switch (msr) {
    case MSR_IA32_EFER: return GUEST_IA32_EFER;
    case MSR_IA32_PAT: return GUEST_IA32_PAT;
    case MSR_IA32_DEBUGCTL: return GUEST_IA32_DEBUGCTL;
    case MSR_IA32_SYSENTER_CS: return GUEST_SYSENTER_CS;
    case MSR_IA32_SYSENTER_ESP: return GUEST_SYSENTER_ESP;
    case MSR_IA32_SYSENTER_EIP: return GUEST_SYSENTER_EIP;
    case MSR_IA32_FS_BASE: return GUEST_FS_BASE;
    case MSR_IA32_GS_BASE: return GUEST_GS_BASE;
    default: return 0;
    }
}

static bool hv_owned_msr(uint32_t msr) { return msr == MSR_IA32_FEATURE_CONTROL || (msr >= 0x480 && msr <= 0x491); }

struct msr_entry {
    uint32_t index, rsvd;
    uint64_t value;
};

uint32_t nested_load_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint64_t pa = addr + 16ull * i;
        if (!hv_gpa_is_ram(pa, 16))
            return i + 1;
        const struct msr_entry *e = (const struct msr_entry *)(uintptr_t)pa;
        uint32_t m = e->index, f = vmcs_msr_field(m);
        /* SDM 27.4 (entry), 28.6 (exit): x2APIC MSRs, IA32_SMM_MONITOR_CTL, IA32_SMBASE,
         * FS/GS base and reserved bits fail the load. */
        if ((m >> 8) == 0x8 || m == 0x9b || m == 0x9e || e->rsvd || m == MSR_IA32_FS_BASE ||
            m == MSR_IA32_GS_BASE)
            return i + 1;
        if (f)
            vmcs_write(f, e->value);
        else if (hv_owned_msr(m) || hv_wrmsr(m, e->value))
            return i + 1;
    }
    return 0;
}

void nested_store_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint64_t pa = addr + 16ull * i, val = 0;
        if (!hv_gpa_is_ram(pa, 16))
            return;
        struct msr_entry *e = (struct msr_entry *)(uintptr_t)pa;
        uint32_t f = vmcs_msr_field(e->index);
        if (f)
            val = vmcs_read(f);
        else if (hv_owned_msr(e->index) || hv_rdmsr(e->index, &val))
            log_warn("nested: VM-exit MSR-store of 0x%x failed (a VMX abort on hardware)", e->index);
        e->value = val;
    }
}

/* vmcs02 → vmcs12 and back to L1. Called with vmcs02 current. reason12 (if not 0) and
 * qual12 replace what the CPU reported: an EPT02 exit is L1's as EPT12 explains it. */
static void reflect(struct nested_vcpu *nv, uint32_t reason12, uint64_t qual12)
{
    struct nested_state *n = nv->n;
    sync_vmcs12(nv);
    if (reason12) {
        v12_set(nv, VM_EXIT_REASON, reason12);
        v12_set(nv, EXIT_QUALIFICATION, qual12);
    }
    nested_store_msr_list(nv, v12(nv, VM_EXIT_MSR_STORE_ADDR), (uint32_t)v12(nv, VM_EXIT_MSR_STORE_COUNT));
    regcache_reset(nv->rc); /* the cache described vmcs02 */
    nv->rc->guest_cr3_owned_by_nested = false;
    n->guest_mode = false;
    vmptrld(n->vmcs01_pa);
    nested_load_l1_host_state(nv);
    if (nested_load_msr_list(nv, v12(nv, VM_EXIT_MSR_LOAD_ADDR), (uint32_t)v12(nv, VM_EXIT_MSR_LOAD_COUNT)))
        log_warn("nested: VM-exit MSR-load failed (a VMX abort on hardware)");
    nested_shadow_push_exit(nv); /* L1 VMREADs the exit information from the shadow */
    n->reflected_exits++;
}

void nested_entry_fail(struct nested_vcpu *nv, uint32_t reason, uint64_t qual)
{
    /* SDM 27.8: host state is loaded as for a VM exit; only reason and qualification change. */
    v12_set(nv, VM_EXIT_REASON, reason | VMX_EXIT_REASON_ENTRY_FAIL);
    v12_set(nv, EXIT_QUALIFICATION, qual);
    nested_load_l1_host_state(nv);
    if (nested_load_msr_list(nv, v12(nv, VM_EXIT_MSR_LOAD_ADDR), (uint32_t)v12(nv, VM_EXIT_MSR_LOAD_COUNT)))
        log_warn("nested: VM-exit MSR-load failed (a VMX abort on hardware)");
    nested_shadow_push_exit(nv);
}

static bool bitmap_bit(uint64_t pa, uint32_t bit)
{
    if (!hv_gpa_is_ram(pa + bit / 8, 1))
        return false;
    return (*(const uint8_t *)(uintptr_t)(pa + bit / 8) >> (bit % 8)) & 1;
}

static bool l1_wants_msr(struct nested_vcpu *nv, bool write)
{
    if (!(v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_USE_MSR_BITMAPS))
        return true;
    uint32_t msr = (uint32_t)nv->rc->regs[HV_REG_RCX];
    uint32_t base = write ? 2048 : 0;
    if (msr <= 0x1fff)
        return bitmap_bit(v12(nv, MSR_BITMAP) + base, msr);
    if (msr >= 0xc0000000u && msr <= 0xc0001fffu)
        return bitmap_bit(v12(nv, MSR_BITMAP) + base + 1024, msr & 0x1fff);
    return true;
}

static bool l1_wants_io(struct nested_vcpu *nv)
{
    uint32_t proc = (uint32_t)v12(nv, CPU_BASED_VM_EXEC_CONTROL);
    if (!(proc & CPU_BASED_USE_IO_BITMAPS))
        return proc & CPU_BASED_UNCOND_IO_EXITING;
    uint64_t q = reg_exit_qual(nv->rc);
    uint32_t port = (uint32_t)(q >> 16), size = (uint32_t)(q & 7) + 1;
    for (uint32_t p = port; p < port + size; p++) {
        if (p > 0xffff)
            return true; /* wrap-around: SDM 26.1.3 says it exits */
        if (bitmap_bit(p < 0x8000 ? v12(nv, IO_BITMAP_A) : v12(nv, IO_BITMAP_B), p & 0x7fff))
            return true;
    }
    return false;
}

static bool l1_wants_cr(struct nested_vcpu *nv)
{
    uint64_t q = reg_exit_qual(nv->rc);
    unsigned cr = q & 15, type = (q >> 4) & 3;
    uint32_t proc = (uint32_t)v12(nv, CPU_BASED_VM_EXEC_CONTROL);
    if (type == 0 && (cr == 0 || cr == 4)) { /* MOV to CR0/CR4: a bit L1 owns changes */
        uint64_t val = reg_read(nv->rc, (enum hv_reg)((q >> 8) & 15));
        uint32_t mf = cr ? CR4_GUEST_HOST_MASK : CR0_GUEST_HOST_MASK, sf = cr ? CR4_READ_SHADOW : CR0_READ_SHADOW;
        return (val ^ v12(nv, sf)) & v12(nv, mf);
    }
    if (cr == 3)
        return proc & (type == 0 ? CPU_BASED_CR3_LOAD_EXITING : CPU_BASED_CR3_STORE_EXITING);
    if (cr == 8)
        return proc & (type == 0 ? CPU_BASED_CR8_LOAD_EXITING : CPU_BASED_CR8_STORE_EXITING);
    return true; /* CLTS, LMSW: only exit for bits in a mask; L1's masks are in vmcs02 */
}

bool nested_l2_exit(struct nested_vcpu *nv, uint32_t reason)
{
    bool l1;
    uint32_t basic = reason & 0xffff, reason12;
    uint64_t qual12;
    if (nested_ept02_before_exit(nv, basic))
        return true; /* the end of hv's step over a dropped write */
    switch (basic) {
    case EXIT_REASON_MSR_READ: l1 = l1_wants_msr(nv, false); break;
    case EXIT_REASON_MSR_WRITE: l1 = l1_wants_msr(nv, true); break;
    case EXIT_REASON_IO_INSTRUCTION: l1 = l1_wants_io(nv); break;
    case EXIT_REASON_CR_ACCESS: l1 = l1_wants_cr(nv); break;
    case EXIT_REASON_EPT_VIOLATION:
    case EXIT_REASON_EPT_MISCONFIG:
        if (!nv->n->ept12) {
            l1 = false; /* EPT01 is hv's */
            break;
        }
        reason12 = nested_ept02_exit(nv, basic, &qual12);
        if (reason12)
            reflect(nv, reason12, qual12);
        return true;
    default: l1 = true; /* vmcs02 only enables what L1 asked for, or what always exits */
    }
    if (l1)
        reflect(nv, 0, 0);
    return l1;
}

int nested_vcpu_init(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    n->current_ptr = n->vmcs02_for = ~0ull;
    n->cache = hv_alloc_page();
    void *vmcs02 = hv_alloc_page();
    n->msr_bitmap02 = hv_alloc_page();
    n->io_bitmap02_a = hv_alloc_page();
    n->io_bitmap02_b = hv_alloc_page();
    if (!n->cache || !vmcs02 || !n->msr_bitmap02 || !n->io_bitmap02_a || !n->io_bitmap02_b)
        return -1;
    *(uint32_t *)vmcs02 = (uint32_t)(nv->hw->basic & 0x7fffffff);
    n->vmcs02_pa = (uint64_t)(uintptr_t)vmcs02;
    nested_save_host_fields(nv); /* vmcs01 is current */
    return nested_shadow_init(nv);
}
