/*
 * EPT02 on the VMCS side: set-up at nested VM-Enter, L2's EPT violations while L2 runs on
 * EPT02, and hv's single step over L2's writes to hv's memory (nested/ept02.h is the
 * pure part).
 *
 * Dropped writes: L1 reads hv's memory as zeros and its writes vanish (hv/exit_ept.c);
 * L2 must see the same through L1's EPT. EPT02 maps such a page read-only to hv's zero
 * page; a write that EPT12 allows is let through once onto a scratch page (writable for
 * one instruction, monitor trap flag on), then the read-only leaf comes back and the
 * scratch page is wiped. As with EPT01's (hv/exit_ept.c), a step may span several pages
 * (EPT02_STEPS) and ends at whatever exit comes next, so nothing written is ever read back.
 */
#include <string.h>
#include "../lib/log.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx_bits.h"
#include "ept02.h"
#include "nested_int.h"

static void flush(struct nested_vcpu *nv, struct ept02 *e)
{
    /* INVEPT: EPT02's root page is reused across clears, so its guest-physical mappings
     * survive VM entries and exits (29.4.3) and must go explicitly. */
    if (e->flush && nv->flush_ept)
        nv->flush_ept();
    e->flush = false;
}

/* The EPT02 for eptp12 becomes vmcs02's (not yet written to the VMCS): 0, or -1 when out
 * of memory. The current one if it already shadows eptp12 (every fast VMRESUME: vmcs12's
 * EPTP and secondary controls only change through an exiting VMWRITE), counted as used now
 * (the roots' LRU clock); else the roots' search. */
static int use_root(struct nested_vcpu *nv, uint64_t eptp12)
{
    struct nested_state *n = nv->n;
    static bool logged;
    /* vmcs02 has MBEC exactly when vmcs12 has it (nested/vmenter.c passes the control on). */
    uint32_t proc2 = (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY)
                         ? (uint32_t)v12(nv, SECONDARY_VM_EXEC_CONTROL) : 0;
    bool mbec = proc2 & SECONDARY_MBEC;
    struct ept02 *e = n->ept02;
    if (!e || e->mbec != mbec || !ept02_roots_touch(&n->ept02_roots, e, eptp12)) {
        e = ept02_roots_get(&n->ept02_roots, eptp12, EPT02_MAX_PAGES, EPT02_MIN_PAGES, nv->caps->ept_vpid,
                            nv->phys_bits, nv->l1_page);
        if (!e) {
            if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
                log_err("cpu%u: out of memory for EPT02: L1's VM entries with EPT fail", nv->cpu);
            return -1;
        }
        ept02_set_mbec(e, mbec);
        n->ept02 = e;
    }
    flush(nv, e);
    return 0;
}

int nested_ept02_enter(struct nested_vcpu *nv) { return use_root(nv, vmcs12_eptp(nv->n->cache)); }

int nested_ept02_switch(struct nested_vcpu *nv, uint64_t eptp12)
{
    if (use_root(nv, eptp12))
        return -1;
    vmcs_write(EPT_POINTER, nv->n->eptp02 = nv->n->ept02->eptp);
    return 0;
}

void nested_ept02_invalidate(struct nested_vcpu *nv, uint64_t type, uint64_t eptp)
{
    struct ept02_roots *r = &nv->n->ept02_roots;
    /* One INVEPT of all contexts on the CPU covers every EPT02 cleared. */
    if (ept02_roots_invept(r, type, eptp) && nv->flush_ept)
        nv->flush_ept();
    for (int i = 0; i < EPT02_ROOTS; i++)
        if (r->ctx[i])
            r->ctx[i]->flush = false;
}

void nested_pml_load(const struct nested_vcpu *nv, struct ept02_fault *f)
{
    f->pml = (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
             (v12(nv, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_PML);
    if (f->pml) {
        f->pml_address = v12(nv, PML_ADDRESS);
        f->pml_index = (uint16_t)v12(nv, GUEST_PML_INDEX);
    }
}

void nested_pml_store(struct nested_vcpu *nv, const struct ept02_fault *f)
{
    if (f->pml)
        v12_set(nv, GUEST_PML_INDEX, f->pml_index);
}

/* The steps end: read-only leaves back, scratch wiped, MTF as L1 set it (when L2 runs on). */
static void steps_end(struct nested_vcpu *nv, struct ept02 *e, bool in_l2)
{
    ept02_step_end(e);
    if (e->mtf && in_l2) {
        uint32_t proc = (uint32_t)vmcs_read(CPU_BASED_VM_EXEC_CONTROL) & ~CPU_BASED_MONITOR_TRAP_FLAG;
        vmcs_write(CPU_BASED_VM_EXEC_CONTROL, proc | ((uint32_t)v12(nv, CPU_BASED_VM_EXEC_CONTROL) &
                                                      CPU_BASED_MONITOR_TRAP_FLAG));
    }
    e->mtf = false;
    flush(nv, e);
}

bool nested_ept02_step_exit(struct nested_vcpu *nv, uint32_t basic)
{
    struct ept02 *e = nv->n->ept02;
    if (!e || !e->mtf)
        return false;
    if (basic == EXIT_REASON_EPT_VIOLATION)
        return false; /* perhaps the instruction's next page: the step goes on */
    steps_end(nv, e, true);
    /* The step's MTF exit is hv's, unless L1 asked for MTF itself: then it is L1's too. */
    return basic == EXIT_REASON_MONITOR_TRAP_FLAG &&
           !(v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_MONITOR_TRAP_FLAG);
}

static void hidden_write(struct nested_vcpu *nv, struct ept02 *e, const struct ept02_fault *f)
{
    static bool logged;
    if (ept02_step_begin(e, f->leaf) < 0) {
        /* More pages of hv's memory than slots in one instruction: start the step over. */
        ept02_step_end(e);
        ept02_step_begin(e, f->leaf);
    }
    if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
        log_warn("cpu%u: L2 wrote to hv's memory through L1's EPT (L2 0x%llx, L1 0x%llx): dropped; later attempts "
                 "are counted, not logged", nv->cpu, (unsigned long long)f->l2_gpa, (unsigned long long)f->l1_gpa);
    if (!e->mtf) {
        e->mtf = true;
        vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmcs_read(CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_MONITOR_TRAP_FLAG);
    }
}

uint32_t nested_ept02_exit(struct nested_vcpu *nv, uint32_t basic, uint64_t *qual12)
{
    struct ept02 *e = nv->n->ept02;
    struct regcache *rc = nv->rc;
    struct ept02_fault f = {.l2_gpa = reg_read(rc, HV_REG_GUEST_PHYS_ADDR)};
    enum ept02_result r;
    if (basic == EXIT_REASON_EPT_MISCONFIG) {
        /* EPT02 is hv's: only a misconfigured EPT12 leaf hv copied could do this. */
        struct ept12_walk w;
        if (ept12_walk(e, f.l2_gpa, &w) == EPT12_MISCONFIG) {
            r = EPT02_MISCONFIG;
        } else {
            log_err("cpu%u: EPT misconfiguration in EPT02 at L2 0x%llx: EPT02 rebuilt", nv->cpu,
                    (unsigned long long)f.l2_gpa);
            ept02_clear(e);
            r = EPT02_FILLED;
        }
    } else {
        f.qual = reg_exit_qual(rc);
        nested_pml_load(nv, &f);
        r = ept02_fault(e, &f);
        nested_pml_store(nv, &f);
    }
    switch (r) {
    case EPT02_HIDDEN_WRITE:
        hidden_write(nv, e, &f);
        /* fall through */
    case EPT02_FILLED:
        flush(nv, e);
        regcache_redeliver_event(nv->rc, f.qual & EPT_QUAL_NMI_UNBLOCK);
        return 0;
    case EPT02_MMIO_WRITE:
        /* hv's xAPIC page (hv/apic.c): L2's store goes through hv's emulation with the L1
         * address, as L1's own through EPT01 would, never straight to the APIC. */
        steps_end(nv, e, true);
        if (nv->l1_mmio_write) {
            nv->l1_mmio_write(nv, f.l1_gpa, f.qual);
            return 0;
        }
        /* fall through */
    case EPT02_UNBACKED: {
        static bool logged;
        if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
            log_warn("cpu%u: L1's EPT maps L2 0x%llx to L1 0x%llx, which hv's EPT01 does not map: EPT violation "
                     "for L1", nv->cpu, (unsigned long long)f.l2_gpa, (unsigned long long)f.l1_gpa);
    }
        /* fall through */
    case EPT02_VIOLATION:
    {
        /* A convertible violation is L2's #VE instead (25.5.7), or L1's exception exit. */
        int ve = r == EPT02_VIOLATION ? nested_ve_convert(nv, &f) : NESTED_VE_NONE;
        if (ve == NESTED_VE_INJECTED) {
            steps_end(nv, e, true);
            return 0;
        }
        steps_end(nv, e, false); /* before L1 runs: nothing of a step may stay mapped */
        if (ve == NESTED_VE_EXIT) {
            *qual12 = 0;
            return NESTED_EXIT_VE; /* L1's exception exit, vector 20 */
        }
    }
        *qual12 = f.qual12;
        return EXIT_REASON_EPT_VIOLATION;
    case EPT02_PML_FULL:
        steps_end(nv, e, false);
        *qual12 = f.qual12;
        return EXIT_REASON_PML_FULL;
    case EPT02_MISCONFIG:
    default:
        steps_end(nv, e, false);
        *qual12 = 0; /* no exit qualification for misconfigurations (28.2.1) */
        return EXIT_REASON_EPT_MISCONFIG;
    }
}
