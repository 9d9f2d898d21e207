/*
 * VMRESUME after a reflected exit, doing only what L1's changes since that exit need
 * (issue 9). At a reflected exit vmcs12 receives what vmcs02 holds (nested/vmexit.c
 * sync_vmcs12), so vmcs02 is still right for every field L1 did not change since:
 *  - L1's VMWRITEs that exit (fields hv does not shadow) are not tracked: the next entry
 *    takes the full path (nested/insn.c handle_vmwrite); so do VMPTRLD, VMCLEAR, VMXOFF,
 *    VMLAUNCH and any entry after a failed one (vmcs02_for, fast_ok);
 *  - the shadowed fields are compared with vmcs12 as they are pulled (nested/shadow.c):
 *    a change to a control, CR, segment or other guest field takes the full path; L2's
 *    RFLAGS, interruptibility and the event injection rerun only the rules that read them
 *    (nested_check_entry_fast), RIP alone only RIP's rule (nested_check_entry_rip); a failure
 *    there reruns every check for the SDM's verdict and order; a host field reruns the host
 *    checks; the TPR threshold and L2's RSP are written at every entry anyway, the TSC
 *    offset and exception bitmap only when L1 changed one of them, the timer value also when
 *    L1's timer is on (nested/vmenter.c prepare_guest); L2's segments, activity state and
 *    pending debug exceptions are not even pulled (L1's VMWRITE of one exits);
 *  - a pull outside nested VM-Enter (a VMREAD/VMWRITE exit) that finds a change clears
 *    fast_ok: that change is in vmcs12 but not in vmcs02, and the entry's pull will not see it.
 * vmcs02's host state and controls are kept (nested/vmenter.c keep_controls) but for what hv
 * changes or what lives outside vmcs12: the primary controls written back (hv's NMI window or
 * MTF may be left in them), the VPID's flush or last use (nested_vpid02_resume), EPT02's root,
 * L1's MSR bitmap merged again (L1 may have written its page), the per-entry APIC fields. Redone as on the full path: the VTPR rule (L1's
 * virtual-APIC page is memory), L1's EFER/PAT/debug state, GUEST_CR3.
 * Anything that reads L1's memory at each entry otherwise (a VMCS link pointer other than
 * all 1s, PDPTEs from L2's CR3, a VM-entry MSR-load list) takes the full path.
 */
#include "../lib/prof.h"
#include "../vmx/vmx_bits.h"
#include "checks.h"
#include "nested_int.h"

bool nested_vmenter_fast(struct nested_vcpu *nv, unsigned changes)
{
    struct nested_state *n = nv->n;
    const struct vmcs12 *c = n->cache;
    if (!n->fast_ok || (changes & NESTED_CHG_FULL) || n->vmcs02_for != n->current_ptr || !n->vmcs02_launched ||
        v12(nv, VMCS_LINK_POINTER) != ~0ull || v12(nv, VM_ENTRY_MSR_LOAD_COUNT))
        return false;
    uint64_t pdpte[4];
    bool pae = nested_l2_pae_pdptes(nv, pdpte);
    if (pae && !n->ept12)
        return false;
    if ((changes & NESTED_CHG_GUEST) ? nested_check_entry_fast(c, nv->caps, nv->phys_bits)
                                     : (changes & NESTED_CHG_RIP) && nested_check_entry_rip(c))
        return false;
    if ((changes & NESTED_CHG_HOST) && nested_check_host(c, nv->caps, nv->phys_bits))
        return false;
    if (nested_apicv_check(nv) || (n->ept12 && nested_ept02_enter(nv)))
        return false; /* the full path gives the verdict */
    PROF("enter: fast checks");
    n->fast_ok = false; /* until the next reflected exit */
    nested_enter_vmcs02_fast(nv, pae ? pdpte : NULL, changes);
    nested_perf_global_enter(nv);
    nested_enter_commit(nv);
    PROF("enter: commit");
    n->fast_entries++;
    return true;
}
