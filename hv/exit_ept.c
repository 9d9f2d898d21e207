/* Guest writes to hv's memory. EPT01 maps every page of hv's region read-only to one
 * zeroed page, so reads see zeros and only writes exit. hv drops a write by letting
 * the instruction run once against a per-CPU scratch page (monitor trap flag), then
 * restoring the read-only mapping and wiping the scratch page. */
#include <string.h>
#include "../lib/log.h"
#include "../vmx/ept.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"

static void ept_flush(void) { invept(2, 0); /* all contexts: the EPT is shared by every CPU */ }

void handle_ept_violation(struct vcpu *v)
{
    struct ept *e = hv.ept;
    uint64_t gpa = reg_read(&v->rc, HV_REG_GUEST_PHYS_ADDR);
    uint64_t q = reg_exit_qual(&v->rc);
    uint64_t *leaf = ept_hidden_leaf(e, gpa);
    if (!leaf || !(q & EPT_QUAL_WRITE) || v->mtf_hidden_write)
        exit_fatal(v, "EPT violation outside the writes to hv's memory that hv drops");
    hv.hidden_writes++;
    if (!__atomic_exchange_n(&hv.hidden_write_logged, true, __ATOMIC_RELAXED))
        log_warn("cpu%u: guest wrote to hv's memory at 0x%llx (rip 0x%llx): dropped; later attempts are counted, "
                 "not logged", v->id, (unsigned long long)gpa, (unsigned long long)reg_rip(&v->rc));
    *leaf = (uint64_t)(uintptr_t)v->scratch | EPT_HIDDEN_LEAF | EPT_W;
    ept_flush();
    v->mtf_hidden_write = true;
    v->mtf_gpa = gpa;
    vm_write(v, CPU_BASED_VM_EXEC_CONTROL, vm_read(v, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_MONITOR_TRAP_FLAG);
    regcache_redeliver_event(&v->rc, q & EPT_QUAL_NMI_UNBLOCK);
}

void handle_mtf(struct vcpu *v)
{
    if (!v->mtf_hidden_write)
        exit_fatal(v, "unexpected monitor trap flag exit");
    uint64_t *leaf = ept_hidden_leaf(hv.ept, v->mtf_gpa);
    *leaf = (uint64_t)(uintptr_t)hv.zero_page | EPT_HIDDEN_LEAF;
    ept_flush();
    memset(v->scratch, 0, 4096);
    v->mtf_hidden_write = false;
    vm_write(v, CPU_BASED_VM_EXEC_CONTROL, vm_read(v, CPU_BASED_VM_EXEC_CONTROL) & ~CPU_BASED_MONITOR_TRAP_FLAG);
}
