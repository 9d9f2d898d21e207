/*
 * VPIDs for L2 (nested/vpid.h). What the CPU guarantees L1 (SDM 28.3.3.1, 26.3.2.5, 28.5.5,
 * 31.3 INVVPID), and how hv keeps no translation the CPU would have dropped:
 *
 * - vmcs12 with "enable VPID": L1's VM entries and exits need not invalidate anything tagged
 *   with L1's VPID V. hv tags L2 with its own VPID for V (a per-vCPU table: TLBs are per
 *   logical processor, and a vCPU is one), so L2's translations stay across entries and
 *   exits, L1's and hv's own. A VPID of hv's taken from another V is flushed first.
 * - vmcs12 without it: L2 runs with VPID 0000H, which each of L1's VM entries and exits
 *   flushes. hv gives L2 VPID02_NO_VPID12 and flushes it at every nested VM-Enter: within
 *   one L2 run (exits hv handles itself are no transitions for L1) nothing is dropped.
 * - L1's INVVPID on V becomes the same INVVPID on hv's VPID for V (nothing if V has none:
 *   an evicted V was flushed); all-context on every VPID of hv's. INVEPT drops combined
 *   mappings with EPT02 (nested/ept02_exit.c: INVEPT of all contexts, every VPID).
 * - L2's own MOV to CR3, INVLPG and INVPCID run on the CPU with hv's VPID current: they
 *   invalidate what they would for V. A MOV to CR0/CR4 of L2 that hv emulates (a bit hv
 *   owns, hv/exit_cr.c) invalidates hv's VPID for L2 as the instruction could (4.10.4.1).
 * - L1's VMXOFF forgets the table after a flush of all of hv's VPIDs (dropping more than
 *   the CPU would is always allowed: it may drop any cached translation at any time).
 */
#include "../vmx/vmx_bits.h"
#include "nested_int.h"
#include "vpid.h"

uint16_t vpid02_lookup(const struct vpid02_table *t, uint16_t vpid12)
{
    for (unsigned i = 0; vpid12 && i < VPID02_SLOTS; i++)
        if (t->vpid12[i] == vpid12)
            return (uint16_t)(i + 1);
    return 0;
}

uint16_t vpid02_get(struct vpid02_table *t, uint16_t vpid12, bool *flush)
{
    unsigned slot = VPID02_SLOTS, lru = 0;
    *flush = false;
    for (unsigned i = 0; i < VPID02_SLOTS && slot == VPID02_SLOTS; i++)
        if (t->vpid12[i] == vpid12)
            slot = i;
    for (unsigned i = 0; i < VPID02_SLOTS && slot == VPID02_SLOTS; i++)
        if (!t->vpid12[i])
            slot = i; /* free slots hold no translations: only forgotten after a flush */
    if (slot == VPID02_SLOTS) {
        for (unsigned i = 1; i < VPID02_SLOTS; i++)
            if (t->last_use[i] < t->last_use[lru])
                lru = i;
        slot = lru;
        *flush = true; /* 28.3.3.3: a VPID reused for another address space is invalidated first */
    }
    t->vpid12[slot] = vpid12;
    t->last_use[slot] = ++t->clock;
    return (uint16_t)(slot + 1);
}

void vpid02_forget(struct vpid02_table *t)
{
    for (unsigned i = 0; i < VPID02_SLOTS; i++)
        t->vpid12[i] = 0, t->last_use[i] = 0;
    t->clock = 0;
}

/* hv can tag vmcs02: the CPU has "enable VPID" and an INVVPID that flushes one VPID or all. */
static bool usable(const struct nested_vcpu *nv)
{
    uint64_t ev = nv->hw->ept_vpid;
    return nv->invvpid && (nested_allowed1(nv->hw->procbased2) & SECONDARY_VPID) && (ev & EPT_CAP_INVVPID) &&
           (ev & (EPT_CAP_INVVPID_SINGLE | EPT_CAP_INVVPID_ALL));
}

/* INVVPID of hv's on the CPU: the type asked for, else a wider one the CPU has (an address
 * or the non-global translations within the whole VPID, one VPID within all of them). */
static void hw_invvpid(const struct nested_vcpu *nv, uint64_t type, uint16_t vpid02, uint64_t la)
{
    uint64_t ev = nv->hw->ept_vpid;
    if ((type == 0 && !(ev & EPT_CAP_INVVPID_ADDR)) || (type == 3 && !(ev & EPT_CAP_INVVPID_SINGLE_NONGLOBAL)))
        type = 1;
    if (type == 1 && !(ev & EPT_CAP_INVVPID_SINGLE))
        type = 2;
    nv->invvpid(type, type == 2 ? 0 : vpid02, type == 0 ? la : 0);
}

uint16_t nested_vpid02_enter(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    struct vpid02_table *t = &n->vpid02;
    n->vpid02_cur = 0;
    if (!usable(nv))
        return 0; /* vmcs02 without VPID: every VM entry and exit flushes L2's translations */
    if (!t->ready) { /* what ran on this CPU before hv (firmware, a loader) may have used them */
        hw_invvpid(nv, 2, 0, 0);
        vpid02_forget(t);
        t->ready = true;
    }
    bool vpid12 = (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
                  (v12(nv, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_VPID);
    bool flush = true;
    uint16_t v = VPID02_NO_VPID12; /* 26.3.2.5: the entry flushes VPID 0000H, L2's */
    if (vpid12) /* not 0: 26.2.1.1, nested/checks.c */
        v = vpid02_get(t, (uint16_t)v12(nv, VIRTUAL_PROCESSOR_ID), &flush);
    if (flush)
        hw_invvpid(nv, 1, v, 0);
    n->vpid02_cur = v;
    return v;
}

/* A fast VMRESUME (nested/vmenter_fast.c): vmcs12's VPID controls and VPID are those of the
 * last full entry, which gave vmcs02 n->vpid02_ctl, and no other vmcs12 entered since (vmcs02
 * is still this one's): the table would give the same VPID without an eviction. What remains
 * per entry: the flush of an L2 without vmcs12's VPID (26.3.2.5) and the slot's last use. */
void nested_vpid02_resume(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    uint16_t v = n->vpid02_ctl;
    n->vpid02_cur = v;
    if (v == VPID02_NO_VPID12)
        hw_invvpid(nv, 1, v, 0);
    else if (v)
        n->vpid02.last_use[v - 1] = ++n->vpid02.clock;
}

void nested_vpid02_invvpid(struct nested_vcpu *nv, uint64_t type, uint16_t vpid12, uint64_t la)
{
    struct vpid02_table *t = &nv->n->vpid02;
    if (!usable(nv) || !t->ready)
        return; /* no vmcs02 ever ran with a VPID of hv's: nothing is tagged */
    if (type == 2) {
        hw_invvpid(nv, 2, 0, 0);
        return;
    }
    uint16_t v = vpid02_lookup(t, vpid12);
    if (v)
        hw_invvpid(nv, type, v, la);
}

void nested_vpid02_vmxoff(struct nested_vcpu *nv)
{
    struct vpid02_table *t = &nv->n->vpid02;
    if (!usable(nv) || !t->ready)
        return;
    hw_invvpid(nv, 2, 0, 0);
    vpid02_forget(t);
}

void nested_vpid02_flush_current(struct nested_vcpu *nv)
{
    if (nv->n->guest_mode && nv->n->vpid02_cur)
        hw_invvpid(nv, 1, nv->n->vpid02_cur, 0);
}
