/*
 * IA32_PERF_GLOBAL_CTRL across nested VM entries and exits: "load IA32_PERF_GLOBAL_CTRL"
 * (entry control 13, exit control 12) and "save IA32_PERF_GLOBAL_CTRL" (exit control 30).
 *
 * hv itself never uses the performance counters and passes the MSR through to L1, so the
 * CPU's MSR is always the value of the guest that runs: L1's in VMX root operation, L2's
 * while L2 runs (also across the exits hv handles itself, which leave it alone). hv loads
 * and saves it where the CPU would, with WRMSR/RDMSR in VMX root operation, rather than
 * through vmcs02's controls: those would load it again at each of hv's own re-entries of
 * vmcs02, over what L2 may have written since. The order is the CPU's: the load with guest
 * state, before the VM-entry MSR-load list (SDM 27.3.2.1, 27.4); the save with guest state,
 * before the VM-exit MSR-store list (28.3, 28.4); the host load with host state, before the
 * VM-exit MSR-load list (28.5.1, 28.6). The values were checked at entry (26.2.2, 26.3.1.1).
 */
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "nested_int.h"

/* nested_perf_global_enter (nested_int.h, inline) with "load IA32_PERF_GLOBAL_CTRL": undone
 * like the MSR-load list if the CPU then refuses vmcs02 (nested/vmenter.c). */
void nested_perf_global_load_guest(struct nested_vcpu *nv)
{
    nested_entry_wrmsr(nv->n, MSR_IA32_PERF_GLOBAL_CTRL, v12(nv, GUEST_IA32_PERF_GLOBAL_CTRL), true);
}

void nested_perf_global_save(struct nested_vcpu *nv)
{
    uint64_t val;
    if ((v12(nv, VM_EXIT_CONTROLS) & VM_EXIT_SAVE_PERF_GLOBAL_CTRL) && !hv_rdmsr(MSR_IA32_PERF_GLOBAL_CTRL, &val))
        v12_set(nv, GUEST_IA32_PERF_GLOBAL_CTRL, val);
}

void nested_perf_global_load_host(struct nested_vcpu *nv)
{
    if (v12(nv, VM_EXIT_CONTROLS) & VM_EXIT_LOAD_PERF_GLOBAL_CTRL)
        hv_wrmsr(MSR_IA32_PERF_GLOBAL_CTRL, v12(nv, HOST_IA32_PERF_GLOBAL_CTRL));
}
