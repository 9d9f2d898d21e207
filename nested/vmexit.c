/*
 * Nested VM-Exit: an exit from L2 that L1 asked for (its controls, bitmaps,
 * exception bitmap, CR masks) is reflected: vmcs12 receives L2's state and the exit
 * information as hardware would store them (SDM 28.2-28.3), the VM-exit MSR lists are
 * processed (28.4, 28.6), and L1 continues from vmcs12's host state (28.5) in vmcs01.
 */
#include <string.h>
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/prof.h"
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "checks.h"
#include "nested_int.h"

void nested_log_check(void) { log_debug("nested: vmcs12 fails %s", nested_check_last_rule()); }

/* A field of NESTED_EXIT_TRACKED_LIST set by hv: the shadow VMCS gets it at the push. */
#define V12_SET_TRK(nv, e, val)                                                                             \
    do {                                                                                                    \
        v12_set(nv, e, val);                                                                                \
        (nv)->n->shadow_dirty |= NESTED_TRK_BIT(e);                                                         \
    } while (0)

/* The fields a reflected exit leaves in vmcs02 (as KVM's sync_vmcs02_to_vmcs12_rare): L1
 * reads them only through a VMREAD that exits to hv (they are not shadowed), hv reads them
 * only at a full entry or when vmcs12 leaves the cache, and no entry but a full one writes
 * them into vmcs02. vmcs02 is current; L2 has not run since the exit, so vmcs02 still holds
 * what the CPU stored then. */
static void sync_rare(struct nested_vcpu *nv)
{
    struct vmcs12 *c = nv->n->cache;
#define SYNC_FIELD_(e) c->fields[VMCS12_TSLOT_##e] = vmcs_read(e);
    NESTED_GUEST_RARE_LIST(SYNC_FIELD_)
    NESTED_EXIT_INFO_RARE_LIST(SYNC_FIELD_)
#undef SYNC_FIELD_
    nv->n->rare_in_vmcs02 = false;
}

void nested_sync_rare_vmcs02(struct nested_vcpu *nv)
{
    if (nv->n->rare_in_vmcs02)
        sync_rare(nv);
}

void nested_sync_rare(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->rare_in_vmcs02)
        return;
    vmptrld(n->vmcs02_pa);
    sync_rare(nv);
    vmptrld(n->vmcs01_pa);
}

bool nested_rare_field(uint32_t e)
{
    switch (e & ~1u) { /* the high half of a 64-bit field too */
#define CASE_(f) case f:
    NESTED_GUEST_RARE_LIST(CASE_)
    NESTED_EXIT_INFO_RARE_LIST(CASE_)
#undef CASE_
        return true;
    default:
        return false;
    }
}

/* What a reflected exit reports instead of what the CPU stored in vmcs02: an EPT02 exit
 * as EPT12 explains it, an exit hv makes up (an NMI it held). */
struct exit12 {
    uint32_t reason;
    uint64_t qual;
    uint32_t intr_info;     /* VM-exit interruption information */
    bool event;             /* intr_info, and IDT-vectoring info from vmcs02's pending injection */
    uint32_t error;         /* VM-exit interruption error code */
    /* event: IDT-vectoring error code without a pending event; vmcs12's, as the error code
     * without valid interruption information (INIT): undefined, the CPU leaves them (28.2.2-3) */
    uint64_t idt_error;
};

/* SDM 28.2.1, 28.2.5: the exit-information fields the CPU writes only for some exits, by
 * basic exit reason; for the others they are undefined, and the CPU (bare Bochs) leaves them
 * as they were. The union of the SDM's and bare Bochs's: Bochs also writes the guest-linear
 * address at an EPT misconfiguration, and the instruction information for UMWAIT and TPAUSE. */
#define XI_GLA 1u   /* guest-linear address */
#define XI_GPA 2u   /* guest-physical address (L1's only with EPT12) */
#define XI_INSN 4u  /* VM-exit instruction information */
#define XI_IO 8u    /* both of GLA and INSN for INS/OUTS only (qualification bit 4) */
#define XI_LMSW 16u /* GLA for LMSW with a memory operand only (qualification bits 6:4) */
static const uint8_t exit_info_defined[EXIT_REASON_LOADIWKEY + 1] = {
    [EXIT_REASON_IO_INSTRUCTION] = XI_IO,
    [EXIT_REASON_CR_ACCESS] = XI_LMSW,
    [EXIT_REASON_EPT_VIOLATION] = XI_GLA | XI_GPA,
    [EXIT_REASON_EPT_MISCONFIG] = XI_GLA | XI_GPA,
    [EXIT_REASON_SPP] = XI_GLA | XI_GPA,
    [EXIT_REASON_VMCLEAR] = XI_INSN,
    [EXIT_REASON_VMPTRLD] = XI_INSN,
    [EXIT_REASON_VMPTRST] = XI_INSN,
    [EXIT_REASON_VMREAD] = XI_INSN,
    [EXIT_REASON_VMWRITE] = XI_INSN,
    [EXIT_REASON_VMXON] = XI_INSN,
    [EXIT_REASON_GDTR_IDTR] = XI_INSN,
    [EXIT_REASON_LDTR_TR] = XI_INSN,
    [EXIT_REASON_INVEPT] = XI_INSN,
    [EXIT_REASON_INVVPID] = XI_INSN,
    [EXIT_REASON_INVPCID] = XI_INSN,
    [EXIT_REASON_RDRAND] = XI_INSN,
    [EXIT_REASON_RDSEED] = XI_INSN,
    [EXIT_REASON_XSAVES] = XI_INSN,
    [EXIT_REASON_XRSTORS] = XI_INSN,
    [EXIT_REASON_UMWAIT] = XI_INSN,
    [EXIT_REASON_TPAUSE] = XI_INSN,
    [EXIT_REASON_LOADIWKEY] = XI_INSN,
};

#define SYNC_TRACKED_(e)                                                                                    \
    {                                                                                                       \
        uint64_t v_ = vmcs_read(e);                                                                         \
        if (v_ != c->fields[VMCS12_TSLOT_##e]) {                                                            \
            c->fields[VMCS12_TSLOT_##e] = v_;                                                               \
            dirty |= NESTED_TRK_BIT(e);                                                                     \
        }                                                                                                   \
    }

/* The guest-linear address and the instruction information at the exits that define them
 * (def: exit_info_defined), out of the way of the exits that define none (CPUID). Returns
 * what changed (NESTED_TRK_BIT), and def as the qualification refines it. */
static __attribute__((noinline)) uint32_t sync_defined(struct vmcs12 *c, unsigned *def, uint64_t qual)
{
    uint32_t dirty = 0;
    if (*def & XI_IO)
        *def = qual & (1u << 4) ? XI_GLA | XI_INSN : 0; /* string (Table 28-5) */
    else if (*def & XI_LMSW)
        *def = (qual & 0x70) == 0x70 ? XI_GLA : 0; /* LMSW (type 3), memory operand (Table 28-3) */
    if (*def & XI_GLA)
        SYNC_TRACKED_(GUEST_LINEAR_ADDRESS)
    if (*def & XI_INSN)
        SYNC_TRACKED_(VMX_INSTRUCTION_INFO)
    return dirty;
}

/* reason: what L1 is told (reflect); ov (or NULL): what it is told instead of what the CPU
 * stored. true: L2 switched modes ("IA-32e mode guest" changed), below. */
static bool sync_vmcs12(struct nested_vcpu *nv, uint32_t reason, const struct exit12 *ov)
{
    struct regcache *rc = nv->rc;
    struct vmcs12 *c = nv->n->cache;
    /* The fields vmcs12 gets as they are, straight-line: a VMREAD and a compare each (VMREAD
     * zero-extends the field, SDM 31.3, as vmcs12_set would store it); most are unchanged
     * (L2's segments, the exit information of a loop of the same exit), and the shadow
     * VMCS, which holds vmcs12's value, gets only the others. */
    uint32_t dirty = 0;
    NESTED_GUEST_HOT_LIST(SYNC_TRACKED_)
    NESTED_EXIT_INFO_ALWAYS_LIST(SYNC_TRACKED_)
    /* The others only if the CPU wrote them at this exit (28.2): else vmcs02 may hold those of
     * an exit hv handled and hid from L1 (an EPT02 fill, an I/O instruction it stepped). */
    uint32_t basic = reason & 0xffff;
    unsigned def = basic < sizeof(exit_info_defined) ? exit_info_defined[basic] : 0;
    if (def)
        dirty |= sync_defined(c, &def, ov ? ov->qual : c->fields[VMCS12_TSLOT_EXIT_QUALIFICATION]);
    /* 28.2.2, 28.2.3: the error codes when the information is valid (the SDM defines them with
     * bit 11 set only; bare Bochs writes them whenever the information is valid). An event
     * exit hv makes up sets its own after (reflect, save_pending_event). */
    if (c->fields[VMCS12_TSLOT_VM_EXIT_INTR_INFO] & INTR_INFO_VALID)
        SYNC_TRACKED_(VM_EXIT_INTR_ERROR_CODE)
    if (c->fields[VMCS12_TSLOT_IDT_VECTORING_INFO_FIELD] & INTR_INFO_VALID)
        SYNC_TRACKED_(IDT_VECTORING_ERROR_CODE)
#undef SYNC_TRACKED_
    nv->n->shadow_dirty |= dirty;
    nv->n->rare_in_vmcs02 = true;
    /* SDM 27.2.1: VMREAD/VMWRITE with a register operand have no displacement, so the exit
     * qualification is 0. Bochs stores a stale decoder displacement there instead; L1 gets
     * the architectural value. */
    if ((basic == EXIT_REASON_VMREAD || basic == EXIT_REASON_VMWRITE || basic == EXIT_REASON_LDTR_TR) &&
        (v12(nv, VMX_INSTRUCTION_INFO) & (1u << 10))) /* also LLDT/LTR/SLDT/STR reg (Table 28-11) */
        V12_SET_TRK(nv, EXIT_QUALIFICATION, 0);
    /* hv may have ended STI blocking; L2's blocking by NMI that vmcs02 lost (l2_nmi_blocked) */
    /* The registers through the cache, which reflect discards after: what hv changed (an exit
     * it handled just before one it makes up) or already read, else vmcs02's (reg_peek). */
    v12_set(nv, GUEST_INTERRUPTIBILITY_INFO,
            reg_peek(rc, HV_REG_INTR_STATE) | (nv->n->l2_nmi_blocked ? GUEST_INTR_NMI : 0));
    v12_set(nv, GUEST_RIP, reg_peek(rc, HV_REG_RIP));
    v12_set(nv, GUEST_RSP, reg_peek(rc, HV_REG_RSP));
    uint64_t rflags = reg_peek(rc, HV_REG_RFLAGS);
    if (!rc->unrestricted_guest && rc->vm86_active) /* as reg_rflags (never in hv) */
        rflags &= ~(X86_EFLAGS_VM | X86_EFLAGS_IOPL);
    v12_set(nv, GUEST_RFLAGS, rflags);
    /* The CR3 L2 really has: vmcs02 was loaded from vmcs12 at entry and the CPU kept it
     * current since. */
    v12_set(nv, GUEST_CR3, reg_peek(rc, HV_REG_CR3));
    /* CR0/CR4 as L1 sees L2's: bits only hv owns come from vmcs02's shadow. */
    uint64_t m0 = v12(nv, CR0_GUEST_HOST_MASK), m4 = v12(nv, CR4_GUEST_HOST_MASK);
    uint64_t hv0 = nv->cr0_mask & ~m0, hv4 = nv->cr4_mask & ~m4;
    uint64_t cr0 = reg_peek(rc, HV_REG_CR0), cr4 = reg_peek(rc, HV_REG_CR4); /* L2's real paging bits */
    v12_set(nv, GUEST_CR0, (cr0 & ~hv0) | (vmcs_read(CR0_READ_SHADOW) & hv0));
    v12_set(nv, GUEST_CR4, (cr4 & ~hv4) | (vmcs_read(CR4_READ_SHADOW) & hv4));
    /* DR7, IA32_DEBUGCTL, IA32_EFER and IA32_PAT stay eager: every entry, the fast one too,
     * writes vmcs02's from vmcs12 (or L1's) values. */
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
    /* The CPU stores EFER.LMA into "IA-32e mode guest" on every exit. L2 switched modes if it
     * changed: rules that read the control (26.2.1.3, 26.2.4, 26.3.1.1 EFER.LMA and CR0.PG,
     * 26.3.1.2 CS.L) were checked against the old one, so the next entry checks in full. */
    uint32_t ia32e = (uint32_t)vmcs_read(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE;
    uint64_t entry = v12(nv, VM_ENTRY_CONTROLS);
    bool mode_switched = (entry ^ ia32e) & VM_ENTRY_IA32E_MODE;
    v12_set(nv, VM_ENTRY_CONTROLS, (entry & ~(uint64_t)VM_ENTRY_IA32E_MODE) | ia32e);
    /* With EPT L2's guest-physical addresses are L1's to see, and the CPU saves the PDPTEs
     * when L2 uses PAE paging (28.3.4; else they are undefined, and the CPU, bare Bochs too,
     * leaves the fields alone), the guest-physical address at the exits that define it
     * (28.2.1); without L1's EPT both belong to hv's EPT01. */
    if (nv->n->ept12) {
        if (!ia32e && (cr0 & CR0_PG) && (cr4 & CR4_PAE))
            for (int i = 0; i < 4; i++)
                v12_set(nv, GUEST_PDPTR0 + 2 * i, reg_peek(rc, (enum hv_reg)(HV_REG_PDPTR0 + i)));
        if (def & XI_GPA)
            v12_set(nv, GUEST_PHYSICAL_ADDRESS, reg_peek(rc, HV_REG_GUEST_PHYS_ADDR));
    }
    /* 28.3.3: RVI and SVI are saved with virtual-interrupt delivery (nested_apicv_sync) */
    if ((v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
        (v12(nv, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_VIRTUAL_INTR_DELIVERY))
        nested_apicv_sync(nv);
    /* The valid bit of the VM-entry interruption information is cleared (28.2.?). */
    v12_set(nv, VM_ENTRY_INTR_INFO_FIELD, v12(nv, VM_ENTRY_INTR_INFO_FIELD) & ~(uint64_t)INTR_INFO_VALID);
    return mode_switched;
}

/* 28.5.1: CR0.ET, CD, NW and the reserved bits (63:32, 28:19, 17, 15:6) keep L1's values. */
#define HOST_CR0_KEEP (0xffffffff00000000ull | 0x1ff80000ull | 1ull << 17 | 0xffc0ull | CR0_CD | CR0_NW | 1ull << 4)

/* L1's host state from vmcs12 (SDM 28.5) as vmcs01 takes it, but for what depends on the
 * state at the exit (L1's CR0 bits, EFER without "load IA32_EFER", vmcs01's entry controls)
 * or is shadowed (HOST_RSP, HOST_CR3, FS/GS). */
static void host_img_build(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    uint64_t *img = n->host_img;
    uint32_t exit12 = (uint32_t)v12(nv, VM_EXIT_CONTROLS);
    bool l64 = exit12 & VM_EXIT_HOST_ADDR_SPACE_SIZE;
    n->host_img_exit = exit12;
#define IMG(e) img[NESTED_HIMG_##e]
    IMG(CR0) = v12(nv, HOST_CR0) & ~HOST_CR0_KEEP;
    IMG(CR4_READ_SHADOW) = v12(nv, HOST_CR4);
    IMG(CR4) = (v12(nv, HOST_CR4) | nv->hw->cr4_fixed0) & nv->hw->cr4_fixed1;
    IMG(RIP) = v12(nv, HOST_RIP);
    IMG(EFER) = v12(nv, HOST_IA32_EFER);
    IMG(PAT) = v12(nv, HOST_IA32_PAT);
    IMG(GUEST_DR7) = 0x400;
    IMG(GUEST_IA32_DEBUGCTL) = 0;
    IMG(GUEST_SYSENTER_CS) = v12(nv, HOST_IA32_SYSENTER_CS);
    IMG(GUEST_SYSENTER_ESP) = v12(nv, HOST_IA32_SYSENTER_ESP);
    IMG(GUEST_SYSENTER_EIP) = v12(nv, HOST_IA32_SYSENTER_EIP);
    /* Segments (28.5.2): flat, CS 64-bit code when the host is 64-bit; a null selector leaves
     * the register unusable. FS and GS: at the exit. */
#define SEG(s, ar)                                                                                          \
    IMG(GUEST_##s##_SELECTOR) = (uint16_t)v12(nv, HOST_##s##_SELECTOR);                                    \
    IMG(GUEST_##s##_BASE) = 0;                                                                              \
    IMG(GUEST_##s##_LIMIT) = 0xffffffff;                                                                    \
    IMG(GUEST_##s##_AR_BYTES) = IMG(GUEST_##s##_SELECTOR) ? (ar) : 0x10000;
    SEG(CS, l64 ? 0xa09b : 0xc09b)
    SEG(SS, 0xc093)
    SEG(DS, 0xc093)
    SEG(ES, 0xc093)
#undef SEG
    IMG(GUEST_FS_LIMIT) = IMG(GUEST_GS_LIMIT) = 0xffffffff;
    IMG(GUEST_TR_SELECTOR) = (uint16_t)v12(nv, HOST_TR_SELECTOR);
    IMG(GUEST_TR_BASE) = v12(nv, HOST_TR_BASE);
    IMG(GUEST_TR_LIMIT) = 0x67;
    IMG(GUEST_TR_AR_BYTES) = 0x8b;
    IMG(GUEST_LDTR_SELECTOR) = 0;
    IMG(GUEST_LDTR_AR_BYTES) = 0x10000;
    IMG(GUEST_GDTR_BASE) = v12(nv, HOST_GDTR_BASE);
    IMG(GUEST_GDTR_LIMIT) = 0xffff;
    IMG(GUEST_IDTR_BASE) = v12(nv, HOST_IDTR_BASE);
    IMG(GUEST_IDTR_LIMIT) = 0xffff;
    IMG(GUEST_ACTIVITY_STATE) = GUEST_ACTIVITY_ACTIVE;
    IMG(GUEST_PENDING_DBG_EXCEPTIONS) = 0;
    IMG(VM_ENTRY_INTR_INFO_FIELD) = 0;
#undef IMG
    n->host_img_ok = true;
}

void nested_host_img_stale(struct nested_vcpu *nv) { nv->n->host_img_ok = false; }

void nested_load_l1_host_state(struct nested_vcpu *nv, uint64_t efer)
{
    struct nested_state *n = nv->n;
    struct regcache *rc = nv->rc;
    const struct vmcs12 *c = n->cache;
    if (!n->host_img_ok)
        host_img_build(nv);
    const uint64_t *img = n->host_img;
    uint32_t exit12 = n->host_img_exit;
    bool l64 = exit12 & VM_EXIT_HOST_ADDR_SPACE_SIZE;
    /* 28.5.1: the bits CR0 keeps are L1's; vmcs01 still has L1's CR0 from before the entry. */
    uint64_t l1_cr0 = reg_peek(rc, HV_REG_CR0);
    if (nv->cr0_mask & HOST_CR0_KEEP) /* an owned bit L1 keeps is in the read shadow (not NE, PE, PG) */
        l1_cr0 = (l1_cr0 & ~nv->cr0_mask) | (vmcs_read(CR0_READ_SHADOW) & nv->cr0_mask);
    uint64_t cr0 = img[NESTED_HIMG_CR0] | (l1_cr0 & HOST_CR0_KEEP);
    vmcs_write(CR0_READ_SHADOW, cr0);
#define IMG_(e) vmcs_write_mem(e, &img[NESTED_HIMG_##e]);
    NESTED_HOST_IMG_LIST(IMG_)
#undef IMG_
    /* 28.5.1: without "load IA32_EFER" only LMA and LME change; NXE, SCE keep their value. */
    if (exit12 & VM_EXIT_LOAD_EFER)
        vmcs_write_mem(GUEST_IA32_EFER, &img[NESTED_HIMG_EFER]);
    else
        vmcs_write(GUEST_IA32_EFER, l64 ? efer | EFER_LMA | EFER_LME : efer & ~(EFER_LMA | EFER_LME));
    if (exit12 & VM_EXIT_LOAD_PAT)
        vmcs_write_mem(GUEST_IA32_PAT, &img[NESTED_HIMG_PAT]);
    uint32_t entry01 = (uint32_t)vmcs_read(VM_ENTRY_CONTROLS);
    vmcs_write(VM_ENTRY_CONTROLS, l64 ? entry01 | VM_ENTRY_IA32E_MODE : entry01 & ~VM_ENTRY_IA32E_MODE);
    /* FS and GS (shadowed): the base even for a null selector */
    vmcs_write_mem(GUEST_FS_SELECTOR, &c->fields[VMCS12_TSLOT_HOST_FS_SELECTOR]);
    vmcs_write_mem(GUEST_FS_BASE, &c->fields[VMCS12_TSLOT_HOST_FS_BASE]);
    vmcs_write(GUEST_FS_AR_BYTES, (uint16_t)v12(nv, HOST_FS_SELECTOR) ? 0xc093 : 0x10000);
    vmcs_write_mem(GUEST_GS_SELECTOR, &c->fields[VMCS12_TSLOT_HOST_GS_SELECTOR]);
    vmcs_write_mem(GUEST_GS_BASE, &c->fields[VMCS12_TSLOT_HOST_GS_BASE]);
    vmcs_write(GUEST_GS_AR_BYTES, (uint16_t)v12(nv, HOST_GS_SELECTOR) ? 0xc093 : 0x10000);
    /* The registers last, together: the cache's bookkeeping is merged. */
    reg_write_now(rc, HV_REG_CR3, v12(nv, HOST_CR3));
    reg_write_now(rc, HV_REG_CR0, (cr0 | nv->hw->cr0_fixed0) & nv->hw->cr0_fixed1);
    reg_write_now(rc, HV_REG_CR4, img[NESTED_HIMG_CR4]);
    reg_write_now(rc, HV_REG_RIP, img[NESTED_HIMG_RIP]);
    reg_write_now(rc, HV_REG_RSP, v12(nv, HOST_RSP));
    reg_write_now(rc, HV_REG_RFLAGS, 0x2);
    reg_write_now(rc, HV_REG_INTR_STATE, 0);
    if (exit12 & VM_EXIT_LOAD_PERF_GLOBAL_CTRL)
        nested_perf_global_load_host(nv);
}

struct msr_entry {
    uint32_t index, rsvd;
    uint64_t value;
};

/* IA32_VMX_MISC[27:25] = N as hv advertises it: at most 512 * (N + 1) entries per list (A.6).
 * Above that the SDM promises nothing; like KVM, hv processes the entries up to the bound and
 * fails the one after it, so no guest count makes a list longer than that. */
static uint32_t msr_list_max(const struct nested_vcpu *nv)
{
    return 512u * (uint32_t)(((nv->caps->misc >> 25) & 7) + 1);
}

uint32_t nested_load_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count, bool undo)
{
    struct nested_state *n = nv->n;
    uint32_t max = msr_list_max(nv); /* undo: the record nested_perf_global_enter started */
    for (uint32_t i = 0; i < count; i++) {
        uint64_t pa = addr + 16ull * i;
        if (i == max || !hv_gpa_is_ram(pa, 16))
            return i + 1;
        const struct msr_entry *e = (const struct msr_entry *)(uintptr_t)pa;
        uint32_t m = e->index, f = vmcs_guest_msr_field(m);
        /* SDM 27.4 (entry), 28.6 (exit): x2APIC MSRs, IA32_SMM_MONITOR_CTL, IA32_SMBASE,
         * FS/GS base and reserved bits fail the load. */
        if ((m >> 8) == 0x8 || m == 0x9b || m == 0x9e || e->rsvd || m == MSR_IA32_FS_BASE ||
            m == MSR_IA32_GS_BASE)
            return i + 1;
        if (f) {
            vmcs_write(f, e->value);
            continue;
        }
        if (nested_entry_wrmsr(n, m, e->value, undo))
            return i + 1;
    }
    return 0;
}

int nested_entry_wrmsr(struct nested_state *n, uint32_t msr, uint64_t val, bool undo)
{
    uint64_t old = 0; /* a write-only MSR (a command) has no old value to restore */
    bool record = undo && n->entry_undo_n < NESTED_MSR_UNDO_MAX && !hv_rdmsr(msr, &old);
    if (hv_wrmsr(msr, val))
        return -1;
    if (record) {
        n->entry_undo_msr[n->entry_undo_n] = msr;
        n->entry_undo_val[n->entry_undo_n++] = old;
    }
    return 0;
}

/* A VM-exit MSR list of L1 failed at its entry bad (1-based): a VMX abort on hardware (28.7).
 * hv goes on; the first failure of this vCPU is logged, the others only counted, so that no
 * guest can flood the log. */
static void msr_list_failed(struct nested_vcpu *nv, const char *list, uint64_t addr, uint32_t bad)
{
    struct nested_state *n = nv->n;
    n->msr_list_failures++;
    if (n->msr_list_warned)
        return;
    n->msr_list_warned = true;
    uint64_t pa = addr + 16ull * (bad - 1);
    if (bad > msr_list_max(nv))
        log_warn("nested: cpu%u: L1's VM-exit MSR-%s list has more than %u entries (a VMX abort on hardware); "
                 "hv goes on and only counts further failures", nv->cpu, list, msr_list_max(nv));
    else if (!hv_gpa_is_ram(pa, 16))
        log_warn("nested: cpu%u: L1's VM-exit MSR-%s list entry %u is not in RAM (a VMX abort on hardware); "
                 "hv goes on and only counts further failures", nv->cpu, list, bad);
    else
        log_warn("nested: cpu%u: L1's VM-exit MSR-%s list fails at entry %u, MSR 0x%x (a VMX abort on hardware); "
                 "hv goes on and only counts further failures", nv->cpu, list, bad,
                 ((const struct msr_entry *)(uintptr_t)pa)->index);
}

void nested_store_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count)
{
    uint32_t max = msr_list_max(nv), bad = 0; /* the first failing entry */
    for (uint32_t i = 0; i < count && i < max; i++) {
        uint64_t pa = addr + 16ull * i, val = 0;
        if (!hv_gpa_is_ram(pa, 16)) {
            bad = bad ? bad : i + 1;
            break;
        }
        struct msr_entry *e = (struct msr_entry *)(uintptr_t)pa;
        uint32_t f = vmcs_guest_msr_field(e->index);
        if (f)
            val = vmcs_read(f);
        else if (hv_rdmsr(e->index, &val) && !bad) /* what RDMSR returns, emulated MSRs too (28.4) */
            bad = i + 1;
        e->value = val;
    }
    if (!bad && count > max)
        bad = max + 1;
    if (bad)
        msr_list_failed(nv, "store", addr, bad);
}

static void load_exit_msr_list(struct nested_vcpu *nv)
{
    uint64_t addr = v12(nv, VM_EXIT_MSR_LOAD_ADDR);
    uint32_t count = (uint32_t)v12(nv, VM_EXIT_MSR_LOAD_COUNT);
    if (!count)
        return; /* the usual case: nothing to walk */
    uint32_t bad = nested_load_msr_list(nv, addr, count, false);
    if (bad)
        msr_list_failed(nv, "load", addr, bad);
}

/* An event hv or L1 was injecting into L2 that the exit overtook: L1 sees it in the
 * IDT-vectoring fields, to inject again (SDM 27.2.4; KVM: vmcs12_save_pending_event). */
static void save_pending_event(struct nested_vcpu *nv, uint64_t idt_err12)
{
    uint32_t inj = (uint32_t)vmcs_read(VM_ENTRY_INTR_INFO_FIELD);
    V12_SET_TRK(nv, IDT_VECTORING_INFO_FIELD, inj & INTR_INFO_VALID ? inj : 0);
    /* without an event: undefined, the CPU leaves it (28.2.3): vmcs12's before the exit */
    V12_SET_TRK(nv, IDT_VECTORING_ERROR_CODE, inj & INTR_INFO_VALID ? vmcs_read(VM_ENTRY_EXCEPTION_ERROR_CODE) : idt_err12);
    uint32_t type = inj & INTR_INFO_TYPE_MASK;
    bool soft = type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXCEPTION || type == INTR_TYPE_SW_EXCEPTION;
    V12_SET_TRK(nv, VM_EXIT_INSTRUCTION_LEN, (inj & INTR_INFO_VALID) && soft ? vmcs_read(VM_ENTRY_INSTRUCTION_LEN) : 0);
}

/* vmcs02 → vmcs12 and back to L1. Called with vmcs02 current; ov (if not NULL) replaces
 * what the CPU reported. */
static void reflect(struct nested_vcpu *nv, const struct exit12 *ov)
{
    struct nested_state *n = nv->n;
    PROF("reflect: route");
    uint32_t reason = ov ? ov->reason : (uint32_t)reg_read(nv->rc, HV_REG_EXIT_REASON);
    if (!ov && (reason & VMX_EXIT_REASON_ENTRY_FAIL)) { /* the CPU refused vmcs02 */
        nested_hw_entry_failed(nv, reason, reg_exit_qual(nv->rc));
        return;
    }
    /* vmcs02 never ran (an NMI or INIT for L1 right after its entry): the entry's guest state is
     * only in the cache, which is discarded below, so vmcs02 does not hold what vmcs12 will. */
    bool vmcs02_ran = !n->entry_in_flight;
    n->entry_in_flight = false;
    bool mode_switched = sync_vmcs12(nv, reason, ov);
    PROF("reflect: sync vmcs12");
    if (ov) {
        V12_SET_TRK(nv, VM_EXIT_REASON, ov->reason);
        V12_SET_TRK(nv, EXIT_QUALIFICATION, ov->qual);
        if (ov->event) {
            V12_SET_TRK(nv, VM_EXIT_INTR_INFO, ov->intr_info);
            V12_SET_TRK(nv, VM_EXIT_INTR_ERROR_CODE, ov->error);
            save_pending_event(nv, ov->idt_error);
        }
    }
    uint32_t r12 = (uint32_t)v12(nv, VM_EXIT_REASON), info12 = (uint32_t)v12(nv, VM_EXIT_INTR_INFO);
    bool nmi_exit = r12 == EXIT_REASON_EXCEPTION_NMI &&
                    (info12 & (INTR_INFO_VALID | INTR_INFO_TYPE_MASK)) == (INTR_INFO_VALID | INTR_TYPE_NMI);
    /* Without NMI exiting (so without virtual NMIs) L2's blocking by NMI is the CPU's own: it
     * lasts until an IRET (SDM 26.6.1, 6.7.1), L1's after this exit. With NMI exiting it ends
     * with VMX non-root operation (26.6.1); with virtual NMIs it was virtual. */
    bool l2_blocked = !nested_exit_on_nmi(nv) && (v12(nv, GUEST_INTERRUPTIBILITY_INFO) & GUEST_INTR_NMI);
    n->l2_nmi_blocked = false;
    if (v12(nv, VM_EXIT_CONTROLS) & VM_EXIT_SAVE_PERF_GLOBAL_CTRL)
        nested_perf_global_save(nv);
    if (v12(nv, VM_EXIT_MSR_STORE_COUNT))
        nested_store_msr_list(nv, v12(nv, VM_EXIT_MSR_STORE_ADDR), (uint32_t)v12(nv, VM_EXIT_MSR_STORE_COUNT));
    uint64_t efer = vmcs_read(GUEST_IA32_EFER); /* L2's: vmcs02 always saves it */
    /* The cache described vmcs02, and vmcs12 now has what it held (also what hv changed for
     * an exit it handled just before one it made up): nothing of it goes to vmcs01. */
    regcache_discard(nv->rc);
    nv->rc->guest_cr3_owned_by_nested = false;
    n->guest_mode = false;
    vmptrld(n->vmcs01_pa);
    PROF("reflect: MSR store, to vmcs01");
    nested_load_l1_host_state(nv, efer);
    PROF("reflect: L1's host state");
    /* After an NMI VM exit the CPU blocks NMIs until L1's next IRET (bare Bochs does the
     * same), and L2's own blocking carries over (above): L1 runs on vmcs01 with virtual NMIs,
     * so that is bit 3. */
    if (nmi_exit || l2_blocked)
        reg_write(nv->rc, HV_REG_INTR_STATE, GUEST_INTR_NMI);
    if (v12(nv, VM_EXIT_MSR_LOAD_COUNT))
        load_exit_msr_list(nv);
    nested_shadow_push_exit(nv); /* L1 VMREADs the exit information from the shadow */
    PROF("reflect: MSR load, shadow push");
    /* vmcs12 has what vmcs02 holds: a VMRESUME may take the fast path (unless L2 changed mode) */
    n->fast_ok = vmcs02_ran && !mode_switched;
    n->reflected_exits++;
}

void nested_reflect_nmi(struct nested_vcpu *nv)
{
    const struct exit12 nmi = {EXIT_REASON_EXCEPTION_NMI, 0, INTR_INFO_VALID | INTR_TYPE_NMI | 2, true, 0,
                               v12(nv, IDT_VECTORING_ERROR_CODE)};
    reflect(nv, &nmi);
}

void nested_reflect_init(struct nested_vcpu *nv)
{
    /* vmcs02 was built and never ran: the next entry must VMLAUNCH it if this one would have. */
    if (*nv->launch_pending) {
        nv->n->vmcs02_launched = false;
        *nv->launch_pending = false;
    }
    /* event: no interruption information, IDT-vectoring from the (absent) injection */
    const struct exit12 init = {EXIT_REASON_INIT_SIGNAL, 0, 0, true, (uint32_t)v12(nv, VM_EXIT_INTR_ERROR_CODE),
                                v12(nv, IDT_VECTORING_ERROR_CODE)};
    reflect(nv, &init);
}

void nested_reflect_apic_access(struct nested_vcpu *nv, uint64_t qual)
{
    const struct exit12 acc = {EXIT_REASON_APIC_ACCESS, qual, 0, false, 0, 0};
    reflect(nv, &acc);
}

void nested_reflect_exception(struct nested_vcpu *nv, uint8_t vector, bool has_error, uint32_t error, uint64_t qual)
{
    const struct exit12 ex = {EXIT_REASON_EXCEPTION_NMI, qual,
                              INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector | (has_error ? INTR_INFO_DELIVER_CODE : 0),
                              true, has_error ? error : 0, v12(nv, IDT_VECTORING_ERROR_CODE)};
    reflect(nv, &ex);
}

void nested_reflect_ept(struct nested_vcpu *nv, uint32_t reason, uint64_t qual, uint64_t gpa, uint64_t gla)
{
    const struct exit12 ept = {reason, qual, 0, false, 0, 0};
    reflect(nv, &ept);
    v12_set(nv, GUEST_PHYSICAL_ADDRESS, gpa);
    v12_set(nv, GUEST_LINEAR_ADDRESS, gla); /* defined for violations only (28.2.1); harmless */
    nested_shadow_push_field(nv, GUEST_PHYSICAL_ADDRESS);
    nested_shadow_push_field(nv, GUEST_LINEAR_ADDRESS);
}

void nested_entry_fail(struct nested_vcpu *nv, uint32_t reason, uint64_t qual, uint64_t efer)
{
    /* SDM 27.8: host state is loaded as for a VM exit; only reason and qualification change.
     * vmcs12 may have changed since the image was made (an entry that fails makes none). */
    nested_host_img_stale(nv);
    V12_SET_TRK(nv, VM_EXIT_REASON, reason | VMX_EXIT_REASON_ENTRY_FAIL);
    V12_SET_TRK(nv, EXIT_QUALIFICATION, qual);
    uint64_t nmi_blocked = reg_read(nv->rc, HV_REG_INTR_STATE) & GUEST_INTR_NMI; /* L1's, in vmcs01 */
    nested_load_l1_host_state(nv, efer);
    if (nmi_blocked) /* 27.8: blocking by NMI is what it was before the VM entry */
        reg_write(nv->rc, HV_REG_INTR_STATE, nmi_blocked);
    load_exit_msr_list(nv);
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

static bool route_l2_exit(struct nested_vcpu *nv, uint32_t reason)
{
    bool l1;
    uint32_t basic = reason & 0xffff, reason12;
    uint64_t qual12;
    nested_apicv_exit(nv);
    if (nested_ept02_before_exit(nv, basic))
        return true; /* the end of hv's step over a dropped write */
    switch (basic) {
    case EXIT_REASON_MSR_READ: l1 = l1_wants_msr(nv, false); break;
    case EXIT_REASON_MSR_WRITE: l1 = l1_wants_msr(nv, true); break;
    case EXIT_REASON_IO_INSTRUCTION: l1 = l1_wants_io(nv); break;
    case EXIT_REASON_CR_ACCESS: l1 = l1_wants_cr(nv); break;
    case EXIT_REASON_VMREAD:
    case EXIT_REASON_VMWRITE: /* L1's VMCS shadowing: perhaps L2's access to its shadow VMCS */
        if (nested_vshadow_l2_access(nv, basic))
            return true;
        l1 = true;
        break;
    case EXIT_REASON_VMFUNC: /* vmcs02 enables no VM function: hv switches EPTPs (nested/vmfunc.c) */
        if (nested_vmfunc_exit(nv))
            return true; /* the switch is done: L2 goes on */
        l1 = true;
        break;
    case EXIT_REASON_EPT_VIOLATION:
    case EXIT_REASON_EPT_MISCONFIG:
        if (!nv->n->ept12) {
            l1 = false; /* EPT01 is hv's */
            break;
        }
        reason12 = nested_ept02_exit(nv, basic, &qual12);
        if (reason12 == NESTED_EXIT_VE) {
            nested_reflect_exception(nv, NESTED_VE_VECTOR, false, 0, 0);
        } else if (reason12) {
            const struct exit12 ept = {reason12, qual12, 0, false, 0, 0};
            reflect(nv, &ept);
        }
        return true;
    case EXIT_REASON_EXCEPTION_NMI: /* an NMI is hv's to hold and deliver (hv/exit.c) */
        l1 = ((uint32_t)reg_read(nv->rc, HV_REG_EXIT_INTR_INFO) & INTR_INFO_TYPE_MASK) != INTR_TYPE_NMI;
        break;
    case EXIT_REASON_NMI_WINDOW: /* vmcs02 has hv's NMI window too */
        l1 = v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_NMI_WINDOW_EXITING;
        break;
    case EXIT_REASON_MONITOR_TRAP_FLAG: /* and hv's MTF, for an NMI of L1's (hv/exit.c) */
        l1 = nested_l1_wants_mtf(nv);
        break;
    default: l1 = true; /* vmcs02 only enables what L1 asked for, or what always exits */
    }
    if (l1)
        reflect(nv, NULL);
    return l1;
}

bool nested_l2_exit(struct nested_vcpu *nv, uint32_t reason)
{
    bool taken = route_l2_exit(nv, reason);
    if (nv->n->guest_mode) /* L2 goes on: hv re-enters vmcs02, not L1 */
        nested_apicv_l2_resume(nv);
    return taken;
}

int nested_vcpu_init(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    n->current_ptr = n->vmcs02_for = ~0ull;
    n->cache = hv_alloc_page();
    void *vmcs02 = hv_alloc_page();
    n->msr_bitmap02 = hv_alloc_page();
    n->entry_undo_msr = hv_alloc_page();
    n->entry_undo_val = hv_alloc_page();
    _Static_assert(NESTED_MSR_UNDO_MAX * sizeof(uint64_t) <= 4096, "the undo record fits a page");
    if (!n->cache || !vmcs02 || !n->msr_bitmap02 || !n->entry_undo_msr || !n->entry_undo_val)
        return -1;
    *(uint32_t *)vmcs02 = (uint32_t)(nv->hw->basic & 0x7fffffff);
    n->vmcs02_pa = (uint64_t)(uintptr_t)vmcs02;
    nested_save_host_fields(nv); /* vmcs01 is current */
    return nested_shadow_init(nv);
}
