/*
 * Guest writes to hv's memory (docs/architecture.md, "hv's memory").
 *
 * EPT01 maps every page of hv's region read/execute-only onto one zeroed page, so reads
 * see zeros and only writes exit. Each vCPU runs on its own copy of the tables on the path
 * to those pages (vmx/ept.h ept_clone_hidden; its EPTP is in vmcs01 and in any vmcs02 of
 * an L2 without L1's EPT), so nothing another CPU uses is ever changed here, and INVEPT on
 * this CPU (it acts on this logical processor only, SDM 30.3) is enough.
 *
 * A write is dropped by a step: the leaf of each hidden page the instruction writes points
 * at one of this vCPU's scratch pages, writable, and the monitor trap flag is set (SDM
 * 26.5.2: an MTF VM exit follows the instruction, an iteration of a REP string
 * instruction, or the delivery of an event). The next VM exit of any kind ends the step
 * before hv dispatches it or reflects it to L1: leaves back to the zero page, INVEPT,
 * scratch pages wiped, MTF as the VMCS's owner has it (off in vmcs01; vmcs12's bit in a
 * vmcs02). That exit is consumed only if it is the MTF one and L1 did not ask for MTF. An
 * EPT violation on another hidden page during the step extends it (HV_STEP_PAGES pages).
 */
#include <string.h>
#include "../lib/log.h"
#include "../nested/ept02.h"
#include "../vmx/ept.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "apic.h"
#include "exit.h"
#include "hypercall.h"

/* Every translation of this vCPU's EPT01 on this CPU (vmcs01's and an L2's on it). */
static void flush(struct vcpu *v)
{
    if (hv.caps.invept_single)
        invept(1, v->ept01.eptp);
    else
        invept(2, 0);
}

static uint64_t hidden_leaf_value(void) { return (uint64_t)(uintptr_t)hv.zero_page | EPT_HIDDEN_LEAF; }

/* The MTF control as the current VMCS's owner wants it once a step of hv's is over: on
 * while another step of hv's goes on (an I/O step, hv/exit_io.c), else off in vmcs01 and
 * vmcs12's bit in a vmcs02. */
void step_restore_mtf(struct vcpu *v)
{
    uint32_t proc = (uint32_t)vm_read(v, CPU_BASED_VM_EXEC_CONTROL) & ~CPU_BASED_MONITOR_TRAP_FLAG;
    if (v->step.active || v->io_step || (v->nested.guest_mode && nested_l1_wants_mtf(&v->nv)))
        proc |= CPU_BASED_MONITOR_TRAP_FLAG;
    vm_write(v, CPU_BASED_VM_EXEC_CONTROL, proc);
}

bool step_mtf_exit_is_hvs(struct vcpu *v, uint32_t basic)
{
    return basic == EXIT_REASON_MONITOR_TRAP_FLAG && !(v->nested.guest_mode && nested_l1_wants_mtf(&v->nv));
}

bool hidden_step_end(struct vcpu *v)
{
    struct hidden_step *s = &v->step;
    if (!s->active)
        return false;
    for (unsigned i = 0; i < s->npages; i++)
        *s->leaf[i] = hidden_leaf_value();
    flush(v);
    for (unsigned i = 0; i < s->npages; i++)
        memset(s->scratch[i], 0, EPT_PAGE_4K);
    s->npages = 0;
    s->active = false;
    step_restore_mtf(v);
    return true;
}

/* Is this exit an EPT violation of a write to hv's memory through this vCPU's EPT01? */
static uint64_t *hidden_write_leaf(struct vcpu *v)
{
    if (v->nested.guest_mode && v->nested.ept12)
        return NULL; /* L2 on EPT02: nested/ept02_exit.c's */
    if (!(reg_exit_qual(&v->rc) & EPT_QUAL_WRITE))
        return NULL;
    return ept_hidden_leaf(&v->ept01, reg_read(&v->rc, HV_REG_GUEST_PHYS_ADDR));
}

bool hidden_step_extends(struct vcpu *v, uint32_t basic)
{
    return v->step.active && basic == EXIT_REASON_EPT_VIOLATION && hidden_write_leaf(v);
}

bool hidden_step_exit(struct vcpu *v, uint32_t basic)
{
    if (!v->step.active)
        return false;
    if (hidden_step_extends(v, basic))
        return false; /* the instruction's next page of hv's: handle_ept_violation extends the step */
    hidden_step_end(v);
    return step_mtf_exit_is_hvs(v, basic);
}

static void hidden_write(struct vcpu *v, uint64_t *leaf, uint64_t gpa)
{
    struct hidden_step *s = &v->step;
    static bool full_logged;
    for (unsigned i = 0; i < s->npages; i++)
        if (s->leaf[i] == leaf)
            return; /* already writable in this step (a stale translation): retry */
    if (s->npages == HV_STEP_PAGES) {
        /* More pages of hv's than slots in one instruction: start the step over. */
        if (!__atomic_exchange_n(&full_logged, true, __ATOMIC_RELAXED))
            log_warn("cpu%u: one instruction wrote more than %u pages of hv's memory: step restarted", v->id,
                     HV_STEP_PAGES);
        hidden_step_end(v);
    }
    __atomic_add_fetch(&hv.hidden_writes, 1, __ATOMIC_RELAXED);
    s->dropped++;
    if (!__atomic_exchange_n(&hv.hidden_write_logged, true, __ATOMIC_RELAXED))
        log_warn("cpu%u: guest wrote to hv's memory at 0x%llx (rip 0x%llx): dropped; later attempts are counted, "
                 "not logged", v->id, (unsigned long long)gpa, (unsigned long long)reg_rip(&v->rc));
    s->leaf[s->npages] = leaf;
    *leaf = (uint64_t)(uintptr_t)s->scratch[s->npages] | EPT_HIDDEN_LEAF | EPT_W;
    s->npages++;
    flush(v);
    if (!s->active) {
        s->active = true;
        vm_write(v, CPU_BASED_VM_EXEC_CONTROL,
                 vm_read(v, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_MONITOR_TRAP_FLAG);
    }
}

/*
 * An address EPT01 does not map: at or above 2^48 when MAXPHYADDR is larger (a 4-level
 * walk translates 48 bits), or above a width hv's heap could not cover (hv/virt.c logs
 * it). Below that limit EPT01 maps everything, so only an address past the top of what
 * the guest may treat as physical memory lands here. hv answers as the CPU answers for a
 * physical address beyond MAXPHYADDR, as if MAXPHYADDR ended at EPT01's limit (KVM does
 * the same for a guest MAXPHYADDR smaller than the host's): the paging-structure entry
 * that produced it has reserved bits set, a page fault with P and RSVD (SDM 4.7) at the
 * linear address, W/U/I as the access. Without a linear address (PDPTE loads, SDM 4.4.1)
 * the CPU's answer to reserved bits is #GP(0). Logged once.
 */
static void beyond_ept01(struct vcpu *v, uint64_t gpa, uint64_t q)
{
    static bool logged;
    if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
        log_warn("cpu%u: guest accessed 0x%llx, beyond EPT01's 0x%llx: reserved-bit #PF (or #GP) injected, "
                 "as above MAXPHYADDR", v->id, (unsigned long long)gpa, (unsigned long long)v->ept01.limit);
    if (!(q & EPT_QUAL_GLA_VALID)) {
        inject_gp(v);
        return;
    }
    uint32_t err = 1u /* P */ | 1u << 3 /* RSVD */;
    if (q & EPT_QUAL_WRITE)
        err |= 1u << 1;
    if (guest_cpl(v) == 3)
        err |= 1u << 2;
    if (q & 4) /* instruction fetch */
        err |= 1u << 4;
    hv_inject_page_fault(&v->rc, reg_read(&v->rc, HV_REG_GUEST_LINEAR_ADDR), err);
}

void handle_ept_violation(struct vcpu *v)
{
    uint64_t gpa = reg_read(&v->rc, HV_REG_GUEST_PHYS_ADDR);
    uint64_t q = reg_exit_qual(&v->rc);
    uint64_t *leaf = hidden_write_leaf(v);
    if (leaf) {
        hidden_write(v, leaf, gpa);
        regcache_redeliver_event(&v->rc, q & EPT_QUAL_NMI_UNBLOCK);
        return;
    }
    if (gpa >= v->ept01.limit) {
        beyond_ept01(v, gpa, q);
        return;
    }
    if (hv.apic_page && (gpa & ~0xfffull) == hv.apic_page && (q & EPT_QUAL_WRITE) &&
        !(v->nested.guest_mode && v->nested.ept12)) {
        /* L1 made this page L2's APIC-access page: the write is L1's APIC access, never the APIC's */
        if (!nested_l2_apic_page_write(&v->nv, gpa, q))
            apic_mmio_write(v, gpa); /* the guest's store to its local APIC (hv/apic.c) */
        return;
    }
    exit_fatal(v, "EPT violation on a page EPT01 maps for this access (hv's tables are wrong)");
}

void handle_mtf(struct vcpu *v)
{
    /* hv sets MTF for its steps, whose MTF exits never get here (hidden_step_exit), and to
     * reach the next instruction boundary of an L2 with an NMI held for L1 (hv/exit.c), which
     * vmexit_handler delivers after this. Nothing to undo but the control itself. */
    static bool logged;
    if (!v->nmi_pending && !__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
        log_warn("cpu%u: monitor trap flag exit without a step of hv's: MTF turned off", v->id);
    step_restore_mtf(v);
}

uint64_t hidden_writes_total(void)
{
    uint64_t n = __atomic_load_n(&hv.hidden_writes, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < HV_MAX_CPUS; i++)
        for (int r = 0; hv.vcpus[i] && r < EPT02_ROOTS; r++)
            if (hv.vcpus[i]->nested.ept02_roots.ctx[r])
                n += hv.vcpus[i]->nested.ept02_roots.ctx[r]->hidden_writes;
    return n;
}

static bool all_zero(const uint8_t *p)
{
    for (unsigned i = 0; i < EPT_PAGE_4K; i++)
        if (p[i])
            return false;
    return true;
}

uint64_t hidden_self_check(struct vcpu *v)
{
    uint64_t bad = 0;
    if (!all_zero(hv.zero_page))
        bad |= HV_SELFCHECK_ZERO_PAGE;
    for (unsigned i = 0; i < HV_STEP_PAGES; i++)
        if (!all_zero(v->step.scratch[i]))
            bad |= HV_SELFCHECK_SCRATCH;
    /* Called from an exit: this vCPU's step is over, so every hidden leaf is read-only. */
    const struct ept *e = hv.ept;
    for (unsigned r = 0; e && r < e->nhidden; r++)
        for (uint64_t gpa = e->hidden[r].base; gpa < e->hidden[r].end; gpa += EPT_PAGE_4K) {
            uint64_t *mine = ept_hidden_leaf(&v->ept01, gpa), *shared = ept_hidden_leaf(e, gpa);
            if (!mine || *mine != hidden_leaf_value())
                bad |= HV_SELFCHECK_LEAF;
            if (!shared || *shared != hidden_leaf_value())
                bad |= HV_SELFCHECK_SHARED;
        }
    if (hv_text_checksum() != hv.text_sum)
        bad |= HV_SELFCHECK_TEXT;
    return bad;
}
