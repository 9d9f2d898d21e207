/*
 * Nested VMX: hv emulates VMX for its guest L1 (docs/nested.md).
 *
 * L1's VMCS (vmcs12) lives in L1's memory, cached by hv while current. A nested
 * VM-Enter checks vmcs12, builds the hardware VMCS that runs L2 (vmcs02) from vmcs12
 * plus hv's own needs, and switches to it; an L2 exit that L1 asked for is reflected:
 * vmcs12 gets L2's state and the exit information, and L1 resumes from vmcs12's host
 * state in hv's vmcs01.
 *
 * This layer sits below hv/: it sees the vCPU through struct nested_vcpu and calls
 * back into hv only through the functions declared at the end of this file.
 */
#ifndef NESTED_NESTED_H
#define NESTED_NESTED_H
#include <stdbool.h>
#include <stdint.h>
#include "../regcache/regcache.h"
#include "../vmx/caps.h"
#include "../vmx/vmx_bits.h"
#include "caps.h"
#include "vmcs12.h"
#include "vpid.h"
#include "ept02.h"

#define NESTED_HV_BM_MAX 32 /* quadwords of hv's MSR bitmap merged one by one (merge_bitmap) */
/* L1's host state as vmcs01 takes it at a reflected exit or a VM-entry failure (SDM 28.5,
 * 27.8; nested/vmexit.c), made from vmcs12's host fields and VM-exit controls. A value each,
 * written straight from the image. Not the host fields L1 may change through the shadow VMCS
 * without an exit (HOST_RSP, HOST_CR3, HOST_FS/GS selector and base): read at each exit. */
#define NESTED_HOST_IMG_LIST(F)                                                                             \
    F(GUEST_CS_SELECTOR) F(GUEST_CS_BASE) F(GUEST_CS_LIMIT) F(GUEST_CS_AR_BYTES) F(GUEST_SS_SELECTOR)        \
    F(GUEST_SS_BASE) F(GUEST_SS_LIMIT) F(GUEST_SS_AR_BYTES) F(GUEST_DS_SELECTOR) F(GUEST_DS_BASE)            \
    F(GUEST_DS_LIMIT) F(GUEST_DS_AR_BYTES) F(GUEST_ES_SELECTOR) F(GUEST_ES_BASE) F(GUEST_ES_LIMIT)           \
    F(GUEST_ES_AR_BYTES) F(GUEST_FS_LIMIT) F(GUEST_GS_LIMIT) F(GUEST_TR_SELECTOR) F(GUEST_TR_BASE)           \
    F(GUEST_TR_LIMIT) F(GUEST_TR_AR_BYTES) F(GUEST_LDTR_SELECTOR) F(GUEST_LDTR_AR_BYTES) F(GUEST_GDTR_BASE)  \
    F(GUEST_GDTR_LIMIT) F(GUEST_IDTR_BASE) F(GUEST_IDTR_LIMIT) F(GUEST_SYSENTER_CS) F(GUEST_SYSENTER_ESP)    \
    F(GUEST_SYSENTER_EIP) F(GUEST_DR7) F(GUEST_IA32_DEBUGCTL) F(CR4_READ_SHADOW) F(GUEST_ACTIVITY_STATE)     \
    F(GUEST_PENDING_DBG_EXCEPTIONS) F(VM_ENTRY_INTR_INFO_FIELD)
enum {
#define NESTED_HIMG_ENUM_(e) NESTED_HIMG_##e,
    NESTED_HOST_IMG_LIST(NESTED_HIMG_ENUM_)
#undef NESTED_HIMG_ENUM_
    NESTED_HIMG_CR0,   /* HOST_CR0 without the bits L1's CR0 keeps (28.5.1) */
    NESTED_HIMG_CR4,   /* GUEST_CR4: HOST_CR4 with the CPU's fixed bits */
    NESTED_HIMG_RIP,
    NESTED_HIMG_EFER,  /* with "load IA32_EFER" */
    NESTED_HIMG_PAT,   /* with "load IA32_PAT" */
    NESTED_HIMG_N
};
/* hv's host-state fields, identical in vmcs01 and vmcs02 */
#define NESTED_NR_HOST_FIELDS 22

struct nested_state {
    bool vmxon;              /* L1 is in VMX operation */
    bool guest_mode;         /* L2 is running: vmcs02 is the current hardware VMCS */
    bool vmcs02_launched;    /* vmcs02 was launched for current_ptr: VMRESUME it */
    bool launch_was_clear;   /* the entry in flight was a VMLAUNCH */
    uint64_t vmxon_ptr;
    uint64_t current_ptr;    /* ~0 when L1 has no current VMCS */
    uint64_t vmcs02_for;     /* the vmcs12 whose L2 vmcs02 holds */
    struct vmcs12 *cache;    /* hv's copy of the current vmcs12 */
    uint64_t vmcs01_pa, vmcs02_pa;
    uint8_t *msr_bitmap02;
    uint64_t host_fields[NESTED_NR_HOST_FIELDS];
    /* L1's host state for vmcs01 (NESTED_HOST_IMG_LIST), made from vmcs12 at the first reflected
     * exit after a full entry: only what makes an entry take the full path (an exiting VMWRITE,
     * VMPTRLD, ...) changes the fields it is made of. host_img_exit: vmcs12's VM-exit controls. */
    bool host_img_ok;
    uint32_t host_img_exit;
    uint64_t host_img[NESTED_HIMG_N];
    uint64_t nested_entries, reflected_exits, fast_entries;
    uint64_t shadow_pa;      /* hardware shadow VMCS linked from vmcs01 (nested/shadow.c) */
    bool shadowing;          /* vmcs01 has VMCS shadowing on: the shadow holds vmcs12 */
    struct shadow_lists *shadow_lists; /* its field lists (nested/shadow.c), one page */
    bool ept12;              /* L2 runs with L1's EPT: on EPT02 (nested/ept02.h), not EPT01 */
    struct ept02 *ept02;     /* the EPT02 vmcs02 runs on (one of ept02_roots), from the first entry with L1's EPT */
    struct ept02_roots ept02_roots; /* this vCPU's EPT02s, one per EPT12 root in use */
    uint64_t vmfunc_switches, ve_delivered; /* L2's EPTP switches and #VEs (nested/vmfunc.c) */
    uint64_t msr_list_failures; /* VM-exit MSR-store/load lists that failed (a VMX abort on hardware) */
    bool msr_list_warned;    /* the first failure was logged; the rest are only counted */
    /* L1 has NMI exiting without virtual NMIs and L2 entered NMI-blocked (bit 3, or an NMI
     * injected): blocked until the nested VM exit, IRET or not (SDM 26.6.1, 25.3). vmcs02's
     * virtual-NMI blocking, which L2's IRET ends, does not show it. */
    bool l2_nmi_blocked;
    /* From a nested VM-Enter until vmcs02's first exit: the CPU may still refuse vmcs02. The
     * MSRs its VM-entry MSR-load list wrote to the CPU, with their old values, are then
     * restored: the CPU checks everything before it loads any MSR (SDM 27.4). */
    bool entry_in_flight;
    bool fast_ok;            /* vmcs02 and vmcs12 alike since a reflected exit (nested/vmenter_fast.c) */
    /* Since a reflected exit, the rarely read guest and exit-information fields are in vmcs02
     * only (vmcs02_for == current_ptr): copied into vmcs12 before anything reads it or vmcs02
     * is reused (nested_sync_rare, nested/vmexit.c). */
    bool rare_in_vmcs02;
    uint32_t shadow_dirty;   /* NESTED_TRK_BIT: changed in vmcs12, not yet in the shadow VMCS (nested/shadow.c) */
    uint32_t entry_undo_n;
    uint32_t *entry_undo_msr; /* one page each, NESTED_MSR_UNDO_MAX entries */
    uint64_t *entry_undo_val;
    struct vpid02_table vpid02; /* hv's VPIDs for L1's (nested/vpid.c) */
    uint16_t vpid02_cur;     /* the VPID vmcs02 runs L2 with; 0: none */
    /* vmcs02's controls as the last full entry built them (nested/vmenter.c prepare_controls),
     * which a fast VMRESUME keeps: the primary processor-based controls (hv's NMI window, MTF
     * and I/O steps change vmcs02's while L2 runs), the VPID and the EPTP vmcs02 was given
     * (nested_ept02_switch too). */
    uint32_t proc02;
    uint16_t vpid02_ctl;
    uint64_t eptp02;
    /* The quadwords of hv's MSR bitmap with a bit set (nested/vmenter.c merge_bitmap), found at
     * the first merge: hv sets its bitmap before any guest runs (hv/virt.c) and never again.
     * hv_bm_n > NESTED_HV_BM_MAX: too many, every quadword is merged. */
    bool hv_bm_known;
    uint16_t hv_bm_n;
    uint16_t hv_bm_idx[NESTED_HV_BM_MAX];
    uint8_t *apicv_page[2];  /* stand-ins for a virtual-APIC page / PI descriptor not in RAM (nested/apicv.c) */
    /* From a nested VM-Enter with virtual-interrupt delivery, RVI to deliver and nothing
     * injected, until vmcs02's next exit: L2's RIP and guest interrupt status at that entry
     * (nested_apicv_exit: the event an exit interrupted may be that virtual interrupt). */
    bool vid_entry_armed;
    uint16_t vid_entry_gis;
    uint64_t vid_entry_rip;
};
#define NESTED_MSR_UNDO_MAX 512

/* What nested/ needs of one vCPU; hv fills it once. */
struct nested_vcpu {
    struct regcache *rc;
    struct nested_state *n;
    const struct nested_caps *caps;
    const struct vmx_msrs *hw;              /* the CPU's own VMX capabilities */
    uint8_t phys_bits;
    uint64_t cr0_mask, cr4_mask;            /* bits hv owns in L1 (vmcs01 masks) */
    const uint8_t *msr_bitmap01;            /* hv's MSR bitmap */
    uint64_t eptp;                          /* EPT01: L2 runs on it */
    uint32_t cpu;
    bool *launch_pending;                   /* the exit stub VMLAUNCHes instead of VMRESUMEs */
    bool shadow_ok;                         /* the CPU has VMCS shadowing and hv uses it */
    bool shadow_exit_info;                  /* exit-information fields live in the shadow too */
    uint64_t vmread_bitmap, vmwrite_bitmap; /* shared by all vCPUs (nested_shadow_bitmaps) */
    /* For EPT02 (nested/ept02.h): where EPT01 puts an L1 page (ept02_l1_page_fn), and INVEPT
     * of all contexts on this CPU. Pointers, not hv_* functions: NULL in host tests. */
    int (*l1_page)(uint64_t l1_gpa, uint64_t *host_pa, uint64_t *max_access);
    void (*flush_ept)(void);
    /* L2's write on EPT02 to an L1 page whose writes hv emulates (EPT02_L1_MMIO: hv's xAPIC
     * page): hv performs L2's store at this L1-physical address as it does L1's own, or gives
     * L1 the APIC-access exit (nested_l2_apic_page_write). NULL in host tests: L1's EPT violation. */
    void (*l1_mmio_write)(struct nested_vcpu *nv, uint64_t l1_gpa, uint64_t ept_qual);
    /* INVVPID on this CPU (nested/vpid.c); NULL in host tests: vmcs02 then has no VPID. */
    void (*invvpid)(uint64_t type, uint16_t vpid, uint64_t la);
};

/* VMREAD/VMWRITE bitmaps for VMCS shadowing: the fields hv supports run in hardware. */
/* features: nested_vmcs12_features of what hv offers (its feature fields on the hot path). */
void nested_shadow_bitmaps(uint8_t *vmread_bm, uint8_t *vmwrite_bm, bool exit_info_writable, unsigned features);

int nested_vcpu_init(struct nested_vcpu *nv);   /* allocate cache, vmcs02, bitmaps */

/* The VMX instruction exits of L1 (reason 19..27, 50, 53). */
void nested_handle_vmx_insn(struct nested_vcpu *nv, uint32_t reason);
/* The same for VMRESUME (reason 24) alone: the hot one, dispatched without the others' tests. */
void nested_handle_vmresume(struct nested_vcpu *nv);
/* An exit while L2 runs: true if nested/ dealt with it (reflected to L1, or an EPT02 fault
 * resolved: nothing else to do), false if hv handles it itself (on L2's state in vmcs02). */
bool nested_l2_exit(struct nested_vcpu *nv, uint32_t reason);
/* The CPU refused vmcs02 (VMfailValid on VMLAUNCH/VMRESUME of it): back to vmcs01,
 * and L1's VM-entry instruction fails with that error. A VM-entry failure of vmcs02 (an
 * exit with bit 31 set) reaches L1 through nested_l2_exit as a VM-entry failure. */
void nested_hw_refused(struct nested_vcpu *nv, uint32_t vm_instruction_error);
/* An L2 exit that is no VM-entry failure: the CPU accepted vmcs02 (hv/exit.c). */
static inline void nested_vmcs02_accepted(struct nested_state *n) { n->entry_in_flight = false; }
/* NMIs while L2 runs (hv/exit.c holds them): L1's pin-based controls decide who owns one. */
static inline bool nested_exit_on_nmi(const struct nested_vcpu *nv)
{
    return vmcs12_get(nv->n->cache, PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_NMI_EXITING;
}
static inline bool nested_l1_virtual_nmis(const struct nested_vcpu *nv)
{
    return vmcs12_get(nv->n->cache, PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_VIRTUAL_NMIS;
}
/* A write of L2 to hv's write-protected xAPIC page (hv/apic.c; gpa L1-physical: on EPT01, or
 * through EPT12) that L1 made its APIC-access page: true if reflected to L1 as an APIC-access
 * VM exit (nested/apicv.c). */
bool nested_l2_apic_page_write(struct nested_vcpu *nv, uint64_t gpa, uint64_t ept_qual);
/* An INIT that L1's VMX root operation blocked (SDM 24.8), right after L1's VM entry into L2
 * (vmcs02 built, not run, no event injected): the INIT VM exit (reason 3, 25.2) L1 gets then,
 * vmcs01 current after. */
void nested_reflect_init(struct nested_vcpu *nv);
/* L1's entry just made is followed by a TPR-below-threshold VM exit (SDM 26.7.7: TPR threshold
 * above VTPR[7:4], "use TPR shadow" without virtual-interrupt delivery), which comes before a
 * pending INIT is recognized. */
bool nested_tpr_exit_after_entry(const struct nested_vcpu *nv);
/* An NMI for L1 while L2 runs: an NMI VM exit to L1 (SDM 25.2), vmcs01 current after. */
void nested_reflect_nmi(struct nested_vcpu *nv);
/* An exception hv raises for L2 while emulating its instruction goes through L1's
 * exception bitmap (SDM 25.2; for #PF the error-code mask and match): true if L1 takes it. */
static inline bool nested_l1_wants_exception(const struct nested_vcpu *nv, uint8_t vector, uint32_t error)
{
    const struct vmcs12 *c = nv->n->cache;
    bool bit = (vmcs12_get(c, EXCEPTION_BITMAP) >> (vector & 31)) & 1;
    if (vector != 14)
        return bit;
    bool match = (error & vmcs12_get(c, PAGE_FAULT_ERROR_CODE_MASK)) == vmcs12_get(c, PAGE_FAULT_ERROR_CODE_MATCH);
    return bit == match;
}
/* That exception as an exception VM exit to L1 (qualification: CR2 for #PF), vmcs01 current after. */
void nested_reflect_exception(struct nested_vcpu *nv, uint8_t vector, bool has_error, uint32_t error, uint64_t qual);
/* The CR0/CR4 bits fixed for the guest hv runs now: in VMX operation (L1 after VMXON, or
 * L2) the fixed bits hv offers L1 (IA32_VMX_CR0/CR4_FIXED0/1); PE and PG are free for an
 * L2 with unrestricted guest (26.3.1.1). *fixed0 = 0, *fixed1 = ~0 outside VMX operation. */
void nested_guest_cr_fixed(const struct nested_vcpu *nv, bool cr4, uint64_t *fixed0, uint64_t *fixed1);
/* L1 set the monitor trap flag for its L2 (vmcs12): hv's own MTF steps leave it on. */
static inline bool nested_l1_wants_mtf(const struct nested_vcpu *nv)
{
    return vmcs12_get(nv->n->cache, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_MONITOR_TRAP_FLAG;
}

/* hv emulated an instruction of L2 that may invalidate its translations (a MOV to CR0/CR4
 * of a bit hv owns): L2's VPID is flushed, as the CPU would have done (SDM 4.10.4.1). */
void nested_vpid02_flush_current(struct nested_vcpu *nv);

/* ---- provided by hv/ ---- */
void hv_inject_exception(struct regcache *rc, uint8_t vector, bool has_error, uint32_t error);
void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t error);
/* Guest-physical range usable as VMX structure memory: RAM outside hv's region. */
bool hv_gpa_is_ram(uint64_t gpa, uint64_t len);
void *hv_alloc_page(void);
/* MSR access on L1's behalf (VM-entry/exit MSR lists) as L1's RDMSR/WRMSR would do it, MSRs
 * hv emulates included (IA32_FEATURE_CONTROL, IA32_VMX_*): 0, or -1 where they #GP. */
int hv_rdmsr(uint32_t msr, uint64_t *val);
int hv_wrmsr(uint32_t msr, uint64_t val);
#endif
