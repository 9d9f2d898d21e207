/* Shared by the files of nested/ only. */
#ifndef NESTED_INT_H
#define NESTED_INT_H
#include "nested.h"
#include "../vmx/vmcs.h"

/* Guest state copied both ways (nested_guest_fields, vmenter.c; the reflected exit's sync,
 * vmexit.c). RIP, RSP, RFLAGS, CR0, CR3, CR4, PDPTEs and interruptibility go through the
 * register cache. Two parts: the fields L1 reads through the shadow VMCS (nested/shadow.c
 * SHADOW_RW_LIST: a reflected exit copies them), and the rarely read ones, which a reflected
 * exit leaves in vmcs02 until something reads them (nested_sync_rare). */
#define NESTED_GUEST_HOT_LIST(F)                                                                             \
    F(GUEST_CS_SELECTOR) F(GUEST_CS_AR_BYTES) F(GUEST_SS_AR_BYTES) F(GUEST_ES_BASE) F(GUEST_CS_BASE)         \
    F(GUEST_SS_BASE) F(GUEST_DS_BASE) F(GUEST_FS_BASE) F(GUEST_GS_BASE) F(GUEST_PENDING_DBG_EXCEPTIONS)      \
    F(GUEST_ACTIVITY_STATE)
#define NESTED_GUEST_RARE_LIST(F)                                                                            \
    F(GUEST_ES_SELECTOR) F(GUEST_SS_SELECTOR) F(GUEST_DS_SELECTOR) F(GUEST_FS_SELECTOR) F(GUEST_GS_SELECTOR)  \
    F(GUEST_LDTR_SELECTOR) F(GUEST_TR_SELECTOR) F(GUEST_ES_LIMIT) F(GUEST_CS_LIMIT) F(GUEST_SS_LIMIT)         \
    F(GUEST_DS_LIMIT) F(GUEST_FS_LIMIT) F(GUEST_GS_LIMIT) F(GUEST_LDTR_LIMIT) F(GUEST_TR_LIMIT)               \
    F(GUEST_GDTR_LIMIT) F(GUEST_IDTR_LIMIT) F(GUEST_ES_AR_BYTES) F(GUEST_DS_AR_BYTES) F(GUEST_FS_AR_BYTES)    \
    F(GUEST_GS_AR_BYTES) F(GUEST_LDTR_AR_BYTES) F(GUEST_TR_AR_BYTES) F(GUEST_LDTR_BASE) F(GUEST_TR_BASE)      \
    F(GUEST_GDTR_BASE) F(GUEST_IDTR_BASE) F(GUEST_SYSENTER_CS) F(GUEST_SYSENTER_ESP) F(GUEST_SYSENTER_EIP)
#define NESTED_GUEST_FIELD_LIST(F) NESTED_GUEST_HOT_LIST(F) NESTED_GUEST_RARE_LIST(F)
/* The exit information a reflected exit copies from vmcs02 (SDM 28.2). The CPU writes the
 * first ones at every exit (bare Bochs the instruction length too); the others only for some
 * exits (nested/vmexit.c exit_info_defined): vmcs02 is also the VMCS of the exits hv hides
 * from L1, so a reflected exit copies those only when the CPU wrote them at that exit. */
#define NESTED_EXIT_INFO_ALWAYS_LIST(F)                                                                     \
    F(VM_EXIT_REASON) F(EXIT_QUALIFICATION) F(VM_EXIT_INTR_INFO) F(IDT_VECTORING_INFO_FIELD)                  \
    F(VM_EXIT_INSTRUCTION_LEN)
#define NESTED_EXIT_INFO_LIST(F)                                                                            \
    NESTED_EXIT_INFO_ALWAYS_LIST(F) F(GUEST_LINEAR_ADDRESS) F(VM_EXIT_INTR_ERROR_CODE)                      \
    F(IDT_VECTORING_ERROR_CODE) F(VMX_INSTRUCTION_INFO)
/* Shadowed fields a reflected exit copies as they are: the copy compares each with vmcs12
 * and the shadow VMCS, which held vmcs12's value, gets only those that changed (bit
 * NESTED_TRK_BIT in nested_state.shadow_dirty; nested_shadow_push_exit). The guest fields
 * first: NESTED_TRK_GUEST_MASK. */
#define NESTED_EXIT_TRACKED_LIST(F) NESTED_GUEST_HOT_LIST(F) NESTED_EXIT_INFO_LIST(F)
enum {
#define NESTED_TRK_ENUM_(e) NESTED_TRK_##e,
    NESTED_EXIT_TRACKED_LIST(NESTED_TRK_ENUM_)
#undef NESTED_TRK_ENUM_
    NESTED_NR_TRK
};
_Static_assert(NESTED_NR_TRK <= 32, "a bit each in nested_state.shadow_dirty");
#define NESTED_TRK_BIT(e) (1u << NESTED_TRK_##e)
#define NESTED_TRK_GUEST_MASK (NESTED_TRK_BIT(VM_EXIT_REASON) - 1)
/* The exit information L1 seldom reads (KVM never does: I/O instructions' SMI fields,
 * 28.2.5): not shadowed, left in vmcs02 like the rare guest fields. */
#define NESTED_EXIT_INFO_RARE_LIST(F) F(IO_RCX) F(IO_RSI) F(IO_RDI) F(IO_RIP)
/* A reflected exit leaves these in vmcs02 (nested_state.rare_in_vmcs02). Not DR7,
 * IA32_DEBUGCTL, IA32_EFER, IA32_PAT: every entry (the fast one too) writes them into
 * vmcs02 from vmcs12. */
void nested_sync_rare(struct nested_vcpu *nv);        /* vmcs01 current (L1 runs): into vmcs12 now */
void nested_sync_rare_vmcs02(struct nested_vcpu *nv); /* the same, vmcs02 current */
bool nested_rare_field(uint32_t encoding);            /* one of them (either half of a 64-bit one) */
extern const uint32_t nested_guest_fields[];
extern const unsigned nested_nr_guest_fields;
void nested_vmx_fail(struct nested_vcpu *nv, uint32_t err);
unsigned nested_l1_cpl(void); /* the CPL of the guest running now (L1, or L2 on vmcs02) */
bool nested_guest_64(void);   /* that guest is in 64-bit mode */
void nested_vmcs12_writeback(struct nested_vcpu *nv);
void nested_vmenter(struct nested_vcpu *nv, bool launch);
/* Build vmcs02's host state and controls (vmcs02 current) from vmcs12 and hv's needs: the
 * full path (a fast VMRESUME keeps them, nested/vmenter.c keep_controls). */
void nested_prepare_vmcs02(struct nested_vcpu *nv);
/* After the checks (vmcs01 current): vmcs02 made current and built, with the guest state
 * vmcs02 keeps across a reflected exit too. pdpte: L2's PDPTEs or NULL. */
void nested_enter_vmcs02(struct nested_vcpu *nv, const uint64_t *pdpte);
/* The same for a fast VMRESUME (nested/vmenter_fast.c): vmcs02's host state and controls kept,
 * the guest fields vmcs02 keeps written only as changes (the classes, NESTED_CHG_*, of the
 * shadowed fields L1 changed) require. */
void nested_enter_vmcs02_fast(struct nested_vcpu *nv, const uint64_t *pdpte, unsigned changes);
static inline void nested_enter_commit(struct nested_vcpu *nv); /* the entry is made: L2 runs next (below) */
bool nested_l2_pdptes(const struct nested_vcpu *nv, uint64_t pdpte[4]); /* false: no PAE paging */
/* VMRESUME doing only what the changes since the last reflected exit need
 * (nested/vmenter_fast.c): true if the entry was made, false for the full path. changes:
 * the classes (NESTED_CHG_*) of the shadowed fields L1 changed. */
bool nested_vmenter_fast(struct nested_vcpu *nv, unsigned changes);
#define NESTED_CHG_GUEST 1u /* RFLAGS, interruptibility, event injection: a few checks */
#define NESTED_CHG_HOST 2u  /* host state: the host checks */
#define NESTED_CHG_FREE 4u  /* written at every entry and never checked (L2's RSP, TPR threshold, PML index) */
#define NESTED_CHG_FULL 8u  /* anything else: the full path */
#define NESTED_CHG_RIP 16u  /* L2's RIP (L1 stepped over the exiting instruction): RIP's rule */
#define NESTED_CHG_COPIED 32u /* exception bitmap, TSC offset, timer: written only then (and the timer when on) */
/* The class of a shadowed field L1 changed (inline: the pull's constant encodings fold). */
static inline unsigned nested_fast_field_class(uint32_t e)
{
    switch (e) {
    case GUEST_RIP:
        return NESTED_CHG_RIP;
    case GUEST_RFLAGS:
    case GUEST_INTERRUPTIBILITY_INFO:
    case VM_ENTRY_INTR_INFO_FIELD:
    case VM_ENTRY_EXCEPTION_ERROR_CODE:
    case VM_ENTRY_INSTRUCTION_LEN:
        return NESTED_CHG_GUEST;
    case TSC_OFFSET:
    case VMX_PREEMPTION_TIMER_VALUE:
    case EXCEPTION_BITMAP:
        return NESTED_CHG_COPIED;
    case GUEST_RSP:
    case TPR_THRESHOLD: /* the VTPR rule runs at every entry (nested_apicv_check) */
    case GUEST_PML_INDEX: /* hv's, not vmcs02's: L1's PML is emulated (nested/ept02.c) */
    case HOST_RSP: /* no VM-entry check reads it (26.2.2-26.2.4); KVM moves it every round trip */
        return NESTED_CHG_FREE;
    default:
        return VMCS_FIELD_TYPE(e) == 3 ? NESTED_CHG_HOST : NESTED_CHG_FULL;
    }
}
unsigned nested_shadow_pull_changes(struct nested_vcpu *nv); /* pull; the classes of what changed */
/* VM-entry failure after the VMfail checks (SDM 27.8): L1 resumes at its host state. efer:
 * IA32_EFER at the failure, L1's if it came before guest state was loaded (reason 33), L2's
 * after (34). vmcs01 must be current. */
void nested_entry_fail(struct nested_vcpu *nv, uint32_t reason, uint64_t qual, uint64_t efer);
/* The MSR lists of vmcs12 (SDM 27.4, 28.4, 28.6): 0, or the 1-based index that failed.
 * undo: record what the load list writes to the CPU (nested_state.entry_undo_*), or not. */
uint32_t nested_load_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count, bool undo);
/* One WRMSR of a VM entry's loads as L1's WRMSR: 0 or -1 (it faults). undo: the old value is
 * added to the entry's undo record first (room permitting). */
int nested_entry_wrmsr(struct nested_state *n, uint32_t msr, uint64_t val, bool undo);
/* The CPU refused vmcs02 with a VM-entry failure (exit reason with bit 31): L1 gets it as
 * the VM-entry failure of its VM entry (SDM 27.8). vmcs02 is current; vmcs01 after. */
void nested_hw_entry_failed(struct nested_vcpu *nv, uint32_t reason, uint64_t qual);
void nested_store_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count);
/* IA32_PERF_GLOBAL_CTRL as vmcs12's load/save controls say (nested/perf_global.c). _enter
 * also starts the entry's undo record (nested_state.entry_undo_*), which the MSR-load list
 * then continues. */
static inline void nested_perf_global_enter(struct nested_vcpu *nv); /* inline, below */
void nested_perf_global_load_guest(struct nested_vcpu *nv);             /* its load, if any */
void nested_perf_global_save(struct nested_vcpu *nv);
void nested_perf_global_load_host(struct nested_vcpu *nv);
/* vmcs12's host state into vmcs01's guest state (SDM 28.5). vmcs01 must be current. efer:
 * IA32_EFER at the exit, whose bits other than LMA/LME stay without "load IA32_EFER". */
void nested_load_l1_host_state(struct nested_vcpu *nv, uint64_t efer);
/* vmcs12's host fields or VM-exit controls may have changed (a full nested VM-Enter): L1's host
 * state is made again from them at the next reflected exit (nested/vmexit.c). */
void nested_host_img_stale(struct nested_vcpu *nv);
void nested_save_host_fields(struct nested_vcpu *nv);
void nested_log_check(void); /* log the vmcs12 check that failed */
/* An EPT violation (48) or misconfiguration (49) of L2 that hv found emulating its instruction,
 * reflected to L1 with these qualification and addresses (vmcs02 current; vmcs01 after). */
void nested_reflect_ept(struct nested_vcpu *nv, uint32_t reason, uint64_t qual, uint64_t gpa, uint64_t gla);
/* L1's VMCS shadowing (nested/vshadow.c): L2's VMREAD/VMWRITE exit (reason 23, 25), vmcs02
 * current. true: hv carried it out on the shadow VMCS (or raised its fault); false: L1's exit. */
bool nested_vshadow_l2_access(struct nested_vcpu *nv, uint32_t reason);
/* VMREAD/VMWRITE (reason) of L2 on the shadow VMCS at link, from the CPL check on (31.3). */
void nested_l2_vmread_vmwrite(struct nested_vcpu *nv, uint32_t reason, uint64_t link);
/* VMCS shadowing (nested/shadow.c): no-ops while it is off */
int nested_shadow_init(struct nested_vcpu *nv);
void nested_shadow_pull(struct nested_vcpu *nv);
void nested_shadow_push(struct nested_vcpu *nv);
void nested_shadow_push_exit(struct nested_vcpu *nv);
void nested_shadow_push_field(struct nested_vcpu *nv, uint32_t encoding);
void nested_shadow_activate(struct nested_vcpu *nv);
void nested_shadow_deactivate(struct nested_vcpu *nv);

/* EPT02 on the VMCS side (nested/ept02_exit.c). */
/* Before vmcs02 is built for L1's EPT: EPT02 set up and shadowing vmcs12's EPTP. 0 or -1. */
int nested_ept02_enter(struct nested_vcpu *nv);
/* First at every L2 exit: ends hv's single step over a dropped write; true if the exit
 * was that step's MTF and nothing else is to be done. Inline without EPT02 (no step then). */
bool nested_ept02_step_exit(struct nested_vcpu *nv, uint32_t basic);
static inline bool nested_ept02_before_exit(struct nested_vcpu *nv, uint32_t basic)
{
    return nv->n->ept02 && nested_ept02_step_exit(nv, basic);
}
/* An EPT violation/misconfiguration of L2 on EPT02: 0 if resolved (L2 retries), else the
 * exit reason (48, 49, 62) to reflect with *qual12, or NESTED_EXIT_VE: L2's #VE is L1's
 * exception exit (its exception bitmap has bit 20). */
#define NESTED_EXIT_VE 0xffffu
uint32_t nested_ept02_exit(struct nested_vcpu *nv, uint32_t basic, uint64_t *qual12);
/* L2's EPTP switch (VMFUNC): vmcs02 (current) runs on the EPT02 for eptp12. 0 or -1 (out
 * of memory). */
int nested_ept02_switch(struct nested_vcpu *nv, uint64_t eptp12);
/* L1's PML (29.3.6) for an access hv handles on L2's behalf: the index lives in vmcs12 while
 * L2 runs (vmcs02 has no PML). _load fills f's PML fields from vmcs12, _store gives the index
 * back. */
void nested_pml_load(const struct nested_vcpu *nv, struct ept02_fault *f);
void nested_pml_store(struct nested_vcpu *nv, const struct ept02_fault *f);
/* L1's INVEPT (checked), L1's VMXOFF (type 2): EPT02s and the CPU's EPT TLB cleared. */
void nested_ept02_invalidate(struct nested_vcpu *nv, uint64_t type, uint64_t eptp);

/* VM functions and #VE (nested/vmfunc.c). L2's VMFUNC exit (59), vmcs02 current: true if
 * hv carried out the EPTP switch (L2 resumes after VMFUNC), false if it is L1's exit. */
bool nested_vmfunc_exit(struct nested_vcpu *nv);
/* An EPT02 violation reflected as EPT12's (f as ept02_fault left it): 25.5.7's #VE instead? */
enum { NESTED_VE_NONE, NESTED_VE_INJECTED, NESTED_VE_EXIT };
#define NESTED_VE_VECTOR 20
int nested_ve_convert(struct nested_vcpu *nv, const struct ept02_fault *f);

/* VPIDs for L2 (nested/vpid.c). At nested VM-Enter: the VPID vmcs02 gets (invalidated as
 * vmcs12 requires), or 0 for none. */
uint16_t nested_vpid02_enter(struct nested_vcpu *nv);
/* The same for a fast VMRESUME, whose vmcs02 keeps its VPID (nested_state.vpid02_ctl). */
void nested_vpid02_resume(struct nested_vcpu *nv);
/* L1's INVVPID (checked) on hv's VPID for vpid12 (type 2: all of hv's VPIDs). */
void nested_vpid02_invvpid(struct nested_vcpu *nv, uint64_t type, uint16_t vpid12, uint64_t la);
/* L1's VMXOFF: hv's VPIDs flushed and forgotten. */
void nested_vpid02_vmxoff(struct nested_vcpu *nv);
/* APIC virtualization (nested/apicv.c). The VTPR rule of 26.2.1.1 on L1's virtual-APIC
 * page (and hv's stand-in pages): 0 or VMXERR_ENTRY_INVALID_CONTROL (nested_apicv_check,
 * below: inline without "use TPR shadow", where it cannot apply; it runs at every entry). */
int nested_apicv_check_tpr_shadow(struct nested_vcpu *nv);
/* vmcs02's APIC-virtualization fields from vmcs12 (vmcs02 current). full: all of them; else
 * (a fast VMRESUME: vmcs12's APIC fields unchanged, vmcs02 holds them) only what is per entry. */
void nested_apicv_prepare(struct nested_vcpu *nv, bool full);
/* Before hv's own re-entry of vmcs02 (not L1's VM entry): vmcs02's TPR threshold at most
 * VTPR[7:4], so the CPU neither refuses vmcs02 nor exits for a VTPR L2 lowered by a store. */
void nested_apicv_l2_resume(struct nested_vcpu *nv);
/* At every exit of vmcs02, first: an event the exit interrupted that can only be the
 * virtual interrupt of the entry becomes that, for hv's own redelivery (nested/apicv.c).
 * Inline when the entry delivered no virtual interrupt (the common case). */
void nested_apicv_exit_armed(struct nested_vcpu *nv);
static inline void nested_apicv_exit(struct nested_vcpu *nv)
{
    if (nv->n->vid_entry_armed)
        nested_apicv_exit_armed(nv);
}
/* At a reflected exit: the guest interrupt status into vmcs12. */
void nested_apicv_sync(struct nested_vcpu *nv);
/* An APIC-access VM exit (reason 44) with this qualification, made up by hv. */
void nested_reflect_apic_access(struct nested_vcpu *nv, uint64_t qual);

/* A prepared field list (vmcs12_list_prepare) from the cache into the current VMCS. */
static inline void v12_list_write(const struct vmcs12 *c, const uint32_t *list, unsigned n)
{
    for (const uint32_t *p = list, *end = list + n; p != end; p++)
        vmcs_write(VMCS12_LIST_FIELD(*p), c->fields[VMCS12_LIST_SLOT(*p)]);
}

static inline uint64_t v12(const struct nested_vcpu *nv, uint32_t f) { return vmcs12_get(nv->n->cache, f); }
static inline void v12_set(struct nested_vcpu *nv, uint32_t f, uint64_t x) { vmcs12_set(nv->n->cache, f, x); }
static inline void nested_perf_global_enter(struct nested_vcpu *nv)
{
    nv->n->entry_undo_n = 0;
    if (v12(nv, VM_ENTRY_CONTROLS) & VM_ENTRY_LOAD_PERF_GLOBAL_CTRL)
        nested_perf_global_load_guest(nv);
}
static inline void nested_enter_commit(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    struct vmcs12 *c = n->cache;
    n->launch_was_clear = !c->launch_state;
    n->entry_in_flight = true; /* until vmcs02's first exit (nested_vmcs02_accepted) */
    c->launch_state = 1;
    n->guest_mode = true;
    nv->rc->guest_cr3_owned_by_nested = true;
    *nv->launch_pending = !n->vmcs02_launched;
    n->vmcs02_launched = true;
    n->nested_entries++;
}
static inline int nested_apicv_check(struct nested_vcpu *nv)
{
    if (!(v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_TPR_SHADOW))
        return 0;
    return nested_apicv_check_tpr_shadow(nv);
}
/* PAE paging outside IA-32e mode, the only case with PDPTEs (SDM 26.3.1.6): an IA-32e mode
 * L2 (the common case) is known without a call. */
static inline bool nested_l2_pae_pdptes(const struct nested_vcpu *nv, uint64_t pdpte[4])
{
    return !(v12(nv, VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE) && nested_l2_pdptes(nv, pdpte);
}
#endif
