/*
 * Nested VM-Enter: L1's VMLAUNCH/VMRESUME. vmcs12 is checked in the SDM's order
 * (controls, host state: VMfailValid; guest state, MSR loading: VM-entry failure),
 * then vmcs02 is built from vmcs12 and hv's own needs and made current.
 *
 * GUEST_CR3 rule (KVM's "nVMX GUEST_CR3 bug fix"): vmcs02.GUEST_CR3 is written here,
 * directly from vmcs12, at every nested VM-Enter — also when L2 enters in the HLT
 * activity state and never runs an instruction — and the register cache never writes
 * it while L2 is active (guest_cr3_owned_by_nested). A wake-up exit then copies back
 * the value L1 asked for, never a stale one.
 */
#include <string.h>
#include "../lib/prof.h"
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "checks.h"
#include "ept02.h"
#include "nested_int.h"

/* Guest state that vmcs02 takes from vmcs12 unchanged at entry and gives back at a
 * reflected exit (nested/vmexit.c). */
#define GUEST_FIELD_ENTRY_(e) e,
const uint32_t nested_guest_fields[] = {NESTED_GUEST_FIELD_LIST(GUEST_FIELD_ENTRY_)};
#undef GUEST_FIELD_ENTRY_
const unsigned nested_nr_guest_fields = sizeof(nested_guest_fields) / sizeof(nested_guest_fields[0]);

/* Entry-only fields also copied unchanged, at every full entry: straight-line, a load at a
 * compile-time slot and a VMWRITE each. A fast VMRESUME writes only some (prepare_guest). */
#define COPIED_LIST(F)                                                                                      \
    F(VMX_PREEMPTION_TIMER_VALUE) F(EXCEPTION_BITMAP) F(PAGE_FAULT_ERROR_CODE_MASK)                          \
    F(PAGE_FAULT_ERROR_CODE_MATCH) F(CR3_TARGET_COUNT) F(CR3_TARGET_VALUE0) F(CR3_TARGET_VALUE1)             \
    F(CR3_TARGET_VALUE2) F(CR3_TARGET_VALUE3) F(TSC_OFFSET) F(VM_ENTRY_INTR_INFO_FIELD)                      \
    F(VM_ENTRY_EXCEPTION_ERROR_CODE) F(VM_ENTRY_INSTRUCTION_LEN)

/* L1's MSR bitmap OR hv's (hv's exits stay hv's) into vmcs02's. L1 may have changed its page
 * since the last entry, so all of it is read at every entry that merges; hv's has bits in a
 * few quadwords only (IA32_FEATURE_CONTROL, the VMX capability MSRs, the x2APIC ICR): L1's
 * page is copied whole and those quadwords ORed in after. */
static void merge_bitmap(struct nested_state *n, uint8_t *dst, uint64_t l1_pa, const uint8_t *hv_bm)
{
    const uint64_t *h = (const uint64_t *)hv_bm;
    uint64_t *d = (uint64_t *)dst;
    /* L1's bitmap as L1 sees memory: outside RAM (hv's memory, MMIO) it reads zeros. */
    if (!hv_gpa_is_ram(l1_pa, 4096)) {
        __builtin_memcpy(d, h, 4096);
        return;
    }
    if (!n->hv_bm_known) {
        n->hv_bm_n = 0;
        for (unsigned i = 0; i < 512; i++)
            if (h[i] && n->hv_bm_n++ < NESTED_HV_BM_MAX)
                n->hv_bm_idx[n->hv_bm_n - 1] = (uint16_t)i;
        n->hv_bm_known = true;
    }
    const uint64_t *l1 = (const uint64_t *)(uintptr_t)l1_pa;
    if (n->hv_bm_n > NESTED_HV_BM_MAX) { /* four quadwords a turn, no test in the loop */
        for (int i = 0; i < 512; i += 4) {
            d[i] = l1[i] | h[i];
            d[i + 1] = l1[i + 1] | h[i + 1];
            d[i + 2] = l1[i + 2] | h[i + 2];
            d[i + 3] = l1[i + 3] | h[i + 3];
        }
        return;
    }
    __builtin_memcpy(d, l1, 4096);
    for (unsigned k = 0; k < n->hv_bm_n; k++)
        d[n->hv_bm_idx[k]] |= h[n->hv_bm_idx[k]];
}

struct l1_state {
    uint64_t efer, pat, dr7, debugctl;
};

/* L2 runs on EPT02 with L1's EPT, else on EPT01. */
static uint64_t eptp02_for(const struct nested_vcpu *nv) { return nv->n->ept12 ? nv->n->ept02->eptp : nv->eptp; }

/* A fast VMRESUME (nested/vmenter_fast.c) keeps vmcs02's controls: vmcs12's cannot have
 * changed since the last full entry built them (a change to one takes the full path). Redone
 * here is what hv changed or what changes without vmcs12: the primary controls, in which hv
 * may have left an NMI window, MTF or an I/O step of L2's last run (hv/exit.c, hv/exit_ept.c,
 * hv/exit_io.c, nested/ept02_exit.c), written back as built; the VPID's flush or last use
 * (nested_vpid02_resume: the VPID itself is kept); EPT02's root; the APIC fields
 * that are per entry; L1's MSR bitmap, merged again. */
static void keep_controls(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    nested_vpid02_resume(nv);
    if (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_USE_MSR_BITMAPS)
        merge_bitmap(n, n->msr_bitmap02, v12(nv, MSR_BITMAP), nv->msr_bitmap01);
    vmcs_write(CPU_BASED_VM_EXEC_CONTROL, n->proc02);
    uint64_t eptp = eptp02_for(nv);
    if (eptp != n->eptp02)
        vmcs_write(EPT_POINTER, n->eptp02 = eptp);
    /* Every APIC-virtualization control requires "use TPR shadow" (26.2.1.1) */
    if (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_TPR_SHADOW)
        nested_apicv_prepare(nv, false);
    else
        n->vid_entry_armed = false;
}

static void prepare_controls(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    const struct vmx_msrs *hw = nv->hw;
    uint32_t proc = (uint32_t)v12(nv, CPU_BASED_VM_EXEC_CONTROL);
    uint32_t proc2 = (proc & CPU_BASED_ACTIVATE_SECONDARY) ? (uint32_t)v12(nv, SECONDARY_VM_EXEC_CONTROL) : 0;
    if (proc & CPU_BASED_USE_MSR_BITMAPS) {
        merge_bitmap(n, n->msr_bitmap02, v12(nv, MSR_BITMAP), nv->msr_bitmap01);
        vmcs_write(MSR_BITMAP, (uint64_t)(uintptr_t)n->msr_bitmap02);
    } /* else every MSR access exits: L1 asked for that */
    /* Every I/O instruction of L2 exits to hv, which asks L1's I/O bitmaps as they are at
     * that moment (nested_l2_exit): L1 or L2 may change them while L2 runs, and the CPU
     * honours the new bits at once (KVM does the same). */
    proc = (proc & ~CPU_BASED_USE_IO_BITMAPS) | CPU_BASED_UNCOND_IO_EXITING;
    /* L2 runs on EPT02 with L1's EPT, else on EPT01; either way EPT is on, so unrestricted
     * guest may pass through (it requires EPT, 26.2.1.1). L2's VPID is hv's (nested/vpid.c). */
    uint16_t vpid02 = nested_vpid02_enter(nv);
    n->vpid02_ctl = vpid02;
    proc2 = (proc2 & ~SECONDARY_VPID) | SECONDARY_EPT | (vpid02 ? SECONDARY_VPID : 0);
    if (vpid02)
        vmcs_write(VIRTUAL_PROCESSOR_ID, vpid02);
    proc2 &= ~SECONDARY_PML; /* L1's PML is hv's (nested/ept02.c): the CPU would log EPT02's faults */
    /* L1's VMCS shadowing is emulated (nested/vshadow.c): L2's VMREAD/VMWRITE exit to hv. */
    proc2 &= ~SECONDARY_SHADOW_VMCS;
    /* L1's #VE is hv's, from EPT12 (nested/vmfunc.c): the CPU would convert EPT02's violations. */
    proc2 &= ~SECONDARY_EPT_VE;
    proc |= CPU_BASED_ACTIVATE_SECONDARY;
    /* hv's NMI handling (hv/exit.c) in vmcs02 too: NMIs exit to hv, which gives each to L1 or
     * L2 as L1's controls say. L2's NMI blocking is then virtual, as L1 expects it. */
    vmcs_write(PIN_BASED_VM_EXEC_CONTROL, vmx_adjust_ctls(hw->pinbased, (uint32_t)v12(nv, PIN_BASED_VM_EXEC_CONTROL) |
                                                                             vmx_virtual_nmi_pin(hw->pinbased)));
    n->proc02 = vmx_adjust_ctls(hw->procbased, proc);
    vmcs_write(CPU_BASED_VM_EXEC_CONTROL, n->proc02);
    vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmx_adjust_ctls(hw->procbased2, proc2));
    uint32_t exit = (uint32_t)v12(nv, VM_EXIT_CONTROLS) & VM_EXIT_ACK_INTR_ON_EXIT;
    exit |= VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_EFER | VM_EXIT_LOAD_EFER | VM_EXIT_SAVE_PAT | VM_EXIT_LOAD_PAT;
    /* After an exit hv handles itself L2 resumes from vmcs02: its DR7/DEBUGCTL (28.3.1) and
     * what is left of L1's timer (28.3.4) must be there, whatever L1 asked to have saved in
     * vmcs12 (sync_vmcs12 copies them only then). */
    exit |= VM_EXIT_SAVE_DEBUG_CONTROLS;
    if (v12(nv, PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_PREEMPTION_TIMER)
        exit |= VM_EXIT_SAVE_PREEMPTION_TIMER;
    vmcs_write(VM_EXIT_CONTROLS, vmx_adjust_ctls(hw->exit, exit));
    uint32_t entry = ((uint32_t)v12(nv, VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE) | VM_ENTRY_LOAD_EFER |
                     VM_ENTRY_LOAD_PAT | VM_ENTRY_LOAD_DEBUG_CONTROLS;
    vmcs_write(VM_ENTRY_CONTROLS, vmx_adjust_ctls(hw->entry, entry));
    vmcs_write(EPT_POINTER, n->eptp02 = eptp02_for(nv));
    if (nested_allowed1(nv->caps->procbased2) & SECONDARY_XSAVES) /* offered: the CPU has the field */
        vmcs_write(XSS_EXIT_BITMAP, proc2 & SECONDARY_XSAVES ? vmcs12_xss_exit_bitmap(n->cache) : 0);
    /* TSC scaling and offsetting pass through: hv neither scales nor offsets L1's TSC, so
     * L2 reads what L1 asked for (SDM 26.6.5). */
    if (proc2 & SECONDARY_TSC_SCALING)
        vmcs_write(TSC_MULTIPLIER, v12(nv, TSC_MULTIPLIER));
    if (nested_allowed1(nv->caps->procbased2) & SECONDARY_PAUSE_LOOP_EXITING) { /* offered: the CPU has them */
        vmcs_write(PLE_GAP, vmcs12_ple_gap(n->cache));
        vmcs_write(PLE_WINDOW, vmcs12_ple_window(n->cache));
    }
    /* "Enable VM functions" as vmcs12 has it, but no function: each VMFUNC of L2 exits to hv
     * (nested/vmfunc.c). */
    if (proc2 & SECONDARY_VMFUNC)
        vmcs_write(VM_FUNCTION_CONTROL, 0);
    nested_apicv_prepare(nv, true); /* TPR shadow, APIC-access page, posted interrupts (nested/apicv.c) */
    vmcs_write(VMCS_LINK_POINTER, ~0ull); /* vmcs02 has no shadowing: never L1's link pointer, an L1 page */
    vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0); /* hv performs vmcs12's MSR lists itself */
    vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
    vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
}

/* PAE paging outside IA-32e mode (26.3.1.6, 26.3.2.4): with EPT on, the CPU takes the PDPTEs
 * from the VMCS. With L1's EPT that is what L1 expects (vmcs12's fields, checked with the
 * guest state); without, L1 expects them loaded from L2's CR3, an L1 address: hv loads them
 * (zeros outside RAM) and checks them as the CPU would. false if L2 has no PAE paging. */
bool nested_l2_pdptes(const struct nested_vcpu *nv, uint64_t pdpte[4])
{
    uint64_t cr0 = v12(nv, GUEST_CR0), cr4 = v12(nv, GUEST_CR4);
    if ((v12(nv, VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE) || !(cr4 & CR4_PAE) || !(cr0 & CR0_PG))
        return false;
    uint64_t base = v12(nv, GUEST_CR3) & 0xffffffe0ull;
    bool ram = hv_gpa_is_ram(base, 32);
    for (int i = 0; i < 4; i++)
        pdpte[i] = nv->n->ept12 ? v12(nv, GUEST_PDPTR0 + 2 * i) : ram ? ((const uint64_t *)(uintptr_t)base)[i] : 0;
    return true;
}

/* Guest state vmcs02 keeps from one entry to the next: after a reflected exit vmcs12 holds
 * what vmcs02 holds (sync_vmcs12), so a VMRESUME that changed none of it skips this. */
static void prepare_guest_bulk(struct nested_vcpu *nv)
{
    for (unsigned i = 0; i < nested_nr_guest_fields; i++)
        vmcs_write(nested_guest_fields[i], v12(nv, nested_guest_fields[i]));
    /* CR0/CR4: L2 sees vmcs12's shadows for the bits L1 owns, its own value for the
     * rest; hv adds the bits it owns (CR0.NE, CR4.VMXE) to the masks. */
    struct regcache *rc = nv->rc;
    uint64_t m0 = v12(nv, CR0_GUEST_HOST_MASK), m4 = v12(nv, CR4_GUEST_HOST_MASK);
    uint64_t cr0 = v12(nv, GUEST_CR0), cr4 = v12(nv, GUEST_CR4);
    vmcs_write(CR0_GUEST_HOST_MASK, m0 | nv->cr0_mask);
    vmcs_write(CR4_GUEST_HOST_MASK, m4 | nv->cr4_mask);
    vmcs_write(CR0_READ_SHADOW, (cr0 & ~m0) | (v12(nv, CR0_READ_SHADOW) & m0));
    vmcs_write(CR4_READ_SHADOW, (cr4 & ~m4) | (v12(nv, CR4_READ_SHADOW) & m4));
    /* Unrestricted guest: PE and PG are L2's own (26.3.1.1), not VMX's fixed 1s. */
    uint64_t cr0_fixed0 = nv->hw->cr0_fixed0;
    if ((v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
        (v12(nv, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_UNRESTRICTED_GUEST))
        cr0_fixed0 &= ~(CR0_PE | CR0_PG);
    reg_write(rc, HV_REG_CR0, (cr0 | cr0_fixed0) & nv->hw->cr0_fixed1);
    reg_write(rc, HV_REG_CR4, (cr4 | nv->hw->cr4_fixed0) & nv->hw->cr4_fixed1);
}

/* Guest state written at every entry: what L1 changes on its hot path (RIP, RSP, RFLAGS,
 * interruptibility, the event injection), what vmcs02 changed without vmcs12 (the timer,
 * EFER/PAT/debug state vmcs12 does not save, hv's injections) and GUEST_CR3. */
static inline __attribute__((always_inline)) void prepare_guest(struct nested_vcpu *nv, const struct l1_state *l1,
                                                                const uint64_t *pdpte, bool bulk, unsigned changes)
{
#define COPY_(e) vmcs_write(e, v12(nv, e));
    if (bulk) {
        COPIED_LIST(COPY_)
    } else {
        /* A fast VMRESUME: vmcs02 still holds what the last entry wrote, and hv changes none of
         * these in vmcs02 but the event injection (its own, hv/exit.c, regcache redelivery).
         * The unshadowed ones (page-fault mask and match, CR3 targets) cannot have changed: L1's
         * VMWRITE of one exits and takes the full path. The timer counts down in vmcs02 while L2
         * runs: L1's value is loaded at every entry with L1's timer on (SDM 26.7.4). */
        if (changes & NESTED_CHG_COPIED) {
            COPY_(EXCEPTION_BITMAP) COPY_(TSC_OFFSET) COPY_(VMX_PREEMPTION_TIMER_VALUE)
        } else if (v12(nv, PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_PREEMPTION_TIMER) {
            COPY_(VMX_PREEMPTION_TIMER_VALUE)
        }
        COPY_(VM_ENTRY_INTR_INFO_FIELD) COPY_(VM_ENTRY_EXCEPTION_ERROR_CODE) COPY_(VM_ENTRY_INSTRUCTION_LEN)
    }
#undef COPY_
    /* Without L1's virtual NMIs, an NMI may be injected into an L2 that blocks NMIs (26.3.1.5
     * checks that only with virtual NMIs, which vmcs02 always has): its delivery blocks
     * NMIs anyway. */
    struct regcache *rc = nv->rc;
    uint64_t intr = v12(nv, GUEST_INTERRUPTIBILITY_INFO);
    uint32_t inj = (uint32_t)v12(nv, VM_ENTRY_INTR_INFO_FIELD);
    bool inject_nmi = (inj & (INTR_INFO_VALID | INTR_INFO_TYPE_MASK)) == (INTR_INFO_VALID | INTR_TYPE_NMI);
    nv->n->l2_nmi_blocked = nested_exit_on_nmi(nv) && !nested_l1_virtual_nmis(nv) &&
                            (inject_nmi || (intr & GUEST_INTR_NMI));
    if (inject_nmi && !nested_l1_virtual_nmis(nv))
        intr &= ~(uint64_t)GUEST_INTR_NMI;
    reg_write(rc, HV_REG_INTR_STATE, intr);
    reg_write(rc, HV_REG_RIP, v12(nv, GUEST_RIP));
    reg_write(rc, HV_REG_RSP, v12(nv, GUEST_RSP));
    reg_write(rc, HV_REG_RFLAGS, v12(nv, GUEST_RFLAGS));
    uint64_t cr0 = v12(nv, GUEST_CR0);
    vmcs_write(GUEST_CR3, v12(nv, GUEST_CR3)); /* always, from vmcs12: see the file comment */
    uint32_t entry12 = (uint32_t)v12(nv, VM_ENTRY_CONTROLS);
    bool ia32e = entry12 & VM_ENTRY_IA32E_MODE;
    uint64_t efer = l1->efer;
    if (entry12 & VM_ENTRY_LOAD_EFER) {
        efer = v12(nv, GUEST_IA32_EFER);
    } else { /* SDM 27.3.2.1: LMA follows "IA-32e mode guest", LME too when paging */
        efer = ia32e ? efer | EFER_LMA : efer & ~EFER_LMA;
        if (cr0 & CR0_PG)
            efer = ia32e ? efer | EFER_LME : efer & ~EFER_LME;
    }
    vmcs_write(GUEST_IA32_EFER, efer);
    vmcs_write(GUEST_IA32_PAT, (entry12 & VM_ENTRY_LOAD_PAT) ? v12(nv, GUEST_IA32_PAT) : l1->pat);
    bool dbg = entry12 & VM_ENTRY_LOAD_DEBUG_CONTROLS;
    vmcs_write(GUEST_DR7, dbg ? v12(nv, GUEST_DR7) : l1->dr7);
    vmcs_write(GUEST_IA32_DEBUGCTL, dbg ? v12(nv, GUEST_IA32_DEBUGCTL) : l1->debugctl);
    for (int i = 0; pdpte && i < 4; i++)
        reg_write(rc, (enum hv_reg)(HV_REG_PDPTR0 + i), pdpte[i]);
}

static const uint32_t host_fields[NESTED_NR_HOST_FIELDS] = {
    HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR, HOST_GS_SELECTOR,
    HOST_TR_SELECTOR, HOST_IA32_PAT, HOST_IA32_EFER, HOST_IA32_SYSENTER_CS, HOST_CR0, HOST_CR3, HOST_CR4,
    HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE, HOST_IA32_SYSENTER_ESP,
    HOST_IA32_SYSENTER_EIP, HOST_RSP, HOST_RIP,
};

void nested_save_host_fields(struct nested_vcpu *nv)
{
    for (int i = 0; i < NESTED_NR_HOST_FIELDS; i++)
        nv->n->host_fields[i] = vmcs_read(host_fields[i]);
}

void nested_prepare_vmcs02(struct nested_vcpu *nv)
{
    /* VM exits from L2 come to hv. Host state never changes, so a vmcs02 that was already
     * launched (and not cleared since) still holds it. */
    if (!nv->n->vmcs02_launched)
        for (int i = 0; i < NESTED_NR_HOST_FIELDS; i++)
            vmcs_write(host_fields[i], nv->n->host_fields[i]);
    prepare_controls(nv);
}

void nested_vmenter(struct nested_vcpu *nv, bool launch)
{
    struct nested_state *n = nv->n;
    struct vmcs12 *c = n->cache;
    /* 26.1: no current VMCS, or a shadow VMCS (24.10): VMfailInvalid. */
    if (n->current_ptr == ~0ull || (c->revision & VMCS12_SHADOW)) {
        reg_set_rflags(nv->rc, (reg_rflags(nv->rc) & ~0x8d5ull) | X86_EFLAGS_CF);
        reg_skip_instruction(nv->rc);
        return;
    }
    PROF("enter: to nested_vmenter");
    if (reg_read(nv->rc, HV_REG_INTR_STATE) & GUEST_INTR_MOV_SS) {
        nested_vmx_fail(nv, VMXERR_ENTRY_MOV_SS_BLOCKING);
        return;
    }
    if (launch && c->launch_state) {
        nested_vmx_fail(nv, VMXERR_VMLAUNCH_NONCLEAR);
        return;
    }
    if (!launch && !c->launch_state) {
        nested_vmx_fail(nv, VMXERR_VMRESUME_NONLAUNCHED);
        return;
    }
    /* L1's VMWRITEs went to the shadow VMCS. Pulled only now: an entry that fails above leaves
     * them there, for the next entry to see as changes (the fast path checks only those). */
    unsigned changes = nested_shadow_pull_changes(nv);
    PROF("enter: shadow pull");
    if (!launch && nested_vmenter_fast(nv, changes))
        return;
    nested_sync_rare(nv); /* the checks and vmcs02's bulk guest state read every field */
    n->fast_ok = false; /* until a reflected exit leaves vmcs02 and vmcs12 alike */
    nested_host_img_stale(nv);
    if (nested_check_controls(c, nv->caps, nv->phys_bits)) {
        nested_log_check();
        nested_vmx_fail(nv, VMXERR_ENTRY_INVALID_CONTROL);
        return;
    }
    if (nested_apicv_check(nv)) {
        nested_log_check();
        nested_vmx_fail(nv, VMXERR_ENTRY_INVALID_CONTROL);
        return;
    }
    if (nested_check_host(c, nv->caps, nv->phys_bits)) {
        nested_log_check();
        nested_vmx_fail(nv, VMXERR_ENTRY_INVALID_HOST);
        return;
    }
    uint64_t qual = 0, link_ptr = v12(nv, VMCS_LINK_POINTER);
    struct nested_link link = {n->current_ptr, 0};
    if (!(link_ptr & 0xfff) && hv_gpa_is_ram(link_ptr, 4)) /* the CPU reads it there (26.3.1.5) */
        link.revision = *(const uint32_t *)(uintptr_t)link_ptr;
    if (nested_check_guest(c, nv->caps, nv->phys_bits, &link, &qual)) {
        nested_log_check();
        nested_entry_fail(nv, EXIT_REASON_INVALID_STATE, qual, vmcs_read(GUEST_IA32_EFER));
        return;
    }
    /* L1's EPT: EPT02 must exist and shadow vmcs12's EPTP before vmcs02 points at it. Out of
     * memory for it, the CPU "refuses" the entry (hv's limit, not an SDM rule). */
    n->ept12 = (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
               (v12(nv, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_EPT);
    uint64_t pdpte[4];
    bool pae = nested_l2_pdptes(nv, pdpte);
    if (pae && !n->ept12 && nested_check_loaded_pdptes(pdpte, nv->phys_bits, &qual)) {
        nested_log_check();
        nested_entry_fail(nv, EXIT_REASON_INVALID_STATE, qual, vmcs_read(GUEST_IA32_EFER));
        return;
    }
    if (n->ept12 && nested_ept02_enter(nv)) {
        nested_vmx_fail(nv, VMXERR_ENTRY_INVALID_CONTROL);
        return;
    }
    nested_enter_vmcs02(nv, pae ? pdpte : NULL);
    nested_perf_global_enter(nv);
    uint32_t bad = nested_load_msr_list(nv, v12(nv, VM_ENTRY_MSR_LOAD_ADDR),
                                        (uint32_t)v12(nv, VM_ENTRY_MSR_LOAD_COUNT), true);
    if (bad) {
        uint64_t efer = vmcs_read(GUEST_IA32_EFER); /* L2's as loaded: the failure comes after (27.8) */
        regcache_discard(nv->rc); /* L2's registers never reach vmcs02 (nor vmcs01) */
        vmptrld(n->vmcs01_pa);
        nested_entry_fail(nv, EXIT_REASON_MSR_LOAD_FAIL, bad, efer);
        return;
    }
    nested_enter_commit(nv);
}

/* nested_enter_vmcs02 and nested_enter_vmcs02_fast: one body, made twice (bulk constant). */
static inline __attribute__((always_inline)) void enter_vmcs02(struct nested_vcpu *nv, bool bulk,
                                                               const uint64_t *pdpte, unsigned changes)
{
    struct nested_state *n = nv->n;
    /* L1's state stays in vmcs01 until the nested VM exit; what L1 left dirty goes there now. */
    struct l1_state l1 = {vmcs_read(GUEST_IA32_EFER), vmcs_read(GUEST_IA32_PAT), vmcs_read(GUEST_DR7),
                          vmcs_read(GUEST_IA32_DEBUGCTL)};
    regcache_flush(nv->rc);
    regcache_reset(nv->rc);
    if (n->vmcs02_for != n->current_ptr) {
        vmclear(n->vmcs02_pa); /* another L2: start from a clear vmcs02 */
        n->vmcs02_for = n->current_ptr;
        n->vmcs02_launched = false;
    }
    vmptrld(n->vmcs02_pa);
    PROF("enter: L1 state, flush, VMPTRLD");
    if (bulk) /* the full path */
        nested_prepare_vmcs02(nv);
    else /* a fast VMRESUME: vmcs02's host state and controls are kept */
        keep_controls(nv);
    PROF("enter: vmcs02 controls");
    if (bulk)
        prepare_guest_bulk(nv);
    prepare_guest(nv, &l1, pdpte, bulk, changes);
    PROF("enter: guest fields");
}

void nested_enter_vmcs02(struct nested_vcpu *nv, const uint64_t *pdpte) { enter_vmcs02(nv, true, pdpte, ~0u); }

void nested_enter_vmcs02_fast(struct nested_vcpu *nv, const uint64_t *pdpte, unsigned changes)
{
    enter_vmcs02(nv, false, pdpte, changes);
}

/* Back to vmcs01 after the CPU refused vmcs02. If that was at the nested VM-Enter in flight,
 * the entry never happened for L1: the CPU checks controls, host and guest state before it
 * loads anything (SDM 27.1-27.4), so L1's VMCS stays clear after a VMLAUNCH and the MSRs of the
 * VM-entry MSR-load list keep their old values. A later VMRESUME of vmcs02 (after an exit hv
 * handled) that the CPU refuses undoes nothing: L2 has run. */
static void leave_refused_vmcs02(struct nested_vcpu *nv, bool loaded)
{
    struct nested_state *n = nv->n;
    nested_sync_rare_vmcs02(nv); /* vmcs02 is given up below: what it alone holds first */
    regcache_reset(nv->rc); /* the cache described vmcs02 */
    nv->rc->guest_cr3_owned_by_nested = false;
    n->guest_mode = false;
    n->vmcs02_for = ~0ull; /* start the next entry from a clear vmcs02 */
    if (n->entry_in_flight) {
        if (n->launch_was_clear)
            n->cache->launch_state = 0;
        while (!loaded && n->entry_undo_n) { /* last written first: a list may name an MSR twice */
            n->entry_undo_n--;
            hv_wrmsr(n->entry_undo_msr[n->entry_undo_n], n->entry_undo_val[n->entry_undo_n]);
        }
        n->entry_in_flight = false;
    }
    vmptrld(n->vmcs01_pa);
}

void nested_hw_refused(struct nested_vcpu *nv, uint32_t err)
{
    leave_refused_vmcs02(nv, false);
    nested_vmx_fail(nv, err == VMXERR_ENTRY_INVALID_HOST ? err : VMXERR_ENTRY_INVALID_CONTROL);
}

/* SDM 27.8: no guest state, MSR store or exit information but reason and qualification; the
 * VM-entry interruption information stays valid; host state and the VM-exit MSR-load list. */
void nested_hw_entry_failed(struct nested_vcpu *nv, uint32_t reason, uint64_t qual)
{
    /* A machine-check event during VM entry (27.8) comes after the guest state and the MSRs
     * were loaded: they stay. Every other failure the CPU finds comes before. */
    leave_refused_vmcs02(nv, (reason & 0xffff) == EXIT_REASON_MCE_DURING_VMENTRY);
    /* The CPU checks guest state before it loads it: L1's EFER (vmcs01) is the one in place. */
    nested_entry_fail(nv, reason & ~VMX_EXIT_REASON_ENTRY_FAIL, qual, vmcs_read(GUEST_IA32_EFER));
}
