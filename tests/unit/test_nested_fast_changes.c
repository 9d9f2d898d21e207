/*
 * Host tests for what a fast VMRESUME (nested/vmenter_fast.c) must not skip: every change L1
 * made through the shadow VMCS since the last reflected exit is checked and reaches vmcs02 as
 * on the full path, whatever L1 did in between (a VMREAD that exits, a VM entry that failed
 * with VMfail), and the SDM rules that read a changed field are rerun (26.2.1.1 TPR
 * threshold, 26.3.1.2 RFLAGS.VM selecting the segment checks).
 */
#include <string.h>
#include "tests/unit/nested_harness.h"
#include "lib/x86.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
static uint64_t g02(uint32_t f) { return fake_vmcs_get_in(ns.vmcs02_pa, f); }

/* Before the first entry: vmcs12 and the shadow VMCS L1 writes alike. */
static void set12(uint32_t f, uint64_t v)
{
    vmcs12_set(V12, f, v);
    fake_vmcs_set_in(ns.shadow_pa, f, v);
}

/* L1's VMWRITE that the shadow VMCS takes (no exit). */
static void shadow_write(uint32_t f, uint64_t v) { fake_vmcs_set_in(ns.shadow_pa, f, v); }

/* Launched, one exit reflected: the next VMRESUME may take the fast path. */
static void launched(void)
{
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0) && ns.fast_ok, "launched, exit reflected");
}

/* L1 changes a control through the shadow, then VMREADs a field that is not shadowed (the
 * VMREAD exits and hv pulls the shadow into vmcs12), then VMRESUMEs: vmcs02 runs L2 with the
 * new control (a VMRESUME loads the controls of the current VMCS, SDM 26.6.1). */
static void test_change_then_vmread(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    launched();
    uint64_t proc = vmcs12_get(V12, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_RDTSC_EXITING;
    CHECK(!(g02(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_RDTSC_EXITING), "no RDTSC exiting before");
    shadow_write(CPU_BASED_VM_EXEC_CONTROL, proc);
    uint64_t val;
    CHECK(l1_vmread(VM_EXIT_CONTROLS, &val) == O_SUCCEED, "VMREAD of a field that is not shadowed");
    CHECK(l1_vmresume() == O_ENTERED, "VMRESUME");
    CHECK(g02(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_RDTSC_EXITING,
          "RDTSC exiting L1 wrote before its VMREAD is in vmcs02: %#llx", ULL(g02(CPU_BASED_VM_EXEC_CONTROL)));
}

/* The same with a VMLAUNCH that fails (VMfailValid 5, VMCS not clear) between the change and
 * the VMRESUME, and with a guest field the next entry must check: bad RFLAGS (reserved bit 15)
 * fails the VMRESUME with an invalid-guest-state VM-entry failure (26.3.1.4). */
static void test_change_then_vmfail(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    launched();
    uint64_t proc = vmcs12_get(V12, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_RDTSC_EXITING;
    shadow_write(CPU_BASED_VM_EXEC_CONTROL, proc);
    CHECK(l1_vmlaunch() == O_FAIL_VALID && l1_error() == VMXERR_VMLAUNCH_NONCLEAR, "VMLAUNCH of a launched VMCS");
    CHECK(l1_vmresume() == O_ENTERED, "VMRESUME");
    CHECK(g02(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_RDTSC_EXITING,
          "RDTSC exiting written before the failed VMLAUNCH is in vmcs02: %#llx", ULL(g02(CPU_BASED_VM_EXEC_CONTROL)));

    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && ns.fast_ok, "exit reflected");
    shadow_write(GUEST_RFLAGS, vmcs12_get(V12, GUEST_RFLAGS) | (1u << 15));
    CHECK(l1_vmlaunch() == O_FAIL_VALID && l1_error() == VMXERR_VMLAUNCH_NONCLEAR, "VMLAUNCH of a launched VMCS");
    enum outcome o = l1_vmresume();
    CHECK(o == O_ENTRY_FAILED && (uint32_t)vmcs12_get(V12, VM_EXIT_REASON) ==
                                     (EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL),
          "RFLAGS bit 15 written before the failed VMLAUNCH: %s, exit reason %#llx", outcome_name(o),
          ULL(vmcs12_get(V12, VM_EXIT_REASON)));
}

/* 26.2.1.1: with "use TPR shadow" and without virtual-interrupt delivery, TPR threshold bits
 * 31:4 must be 0 (VMfailValid 7), also when L1 wrote the threshold through the shadow since
 * the last exit (the VTPR rule alone passes: bits 3:0 are 5, VTPR[7:4] 6). */
static void test_tpr_threshold_high(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    set12(CPU_BASED_VM_EXEC_CONTROL, vmcs12_get(V12, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_TPR_SHADOW);
    set12(VIRTUAL_APIC_PAGE_ADDR, GPA(PG_FREE));
    set12(TPR_THRESHOLD, 5);
    ((uint8_t *)gpa_ptr(GPA(PG_FREE)))[0x80] = 0x60;
    launched();
    shadow_write(TPR_THRESHOLD, 0x15);
    enum outcome o = l1_vmresume();
    CHECK(o == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_CONTROL, "TPR threshold 0x15: %s, error %u",
          outcome_name(o), l1_error());
}

/* 26.3.1.2: RFLAGS.VM selects the segment checks. A 32-bit protected-mode L2 whose RFLAGS.VM
 * L1 sets through the shadow keeps its flat segments, which are no virtual-8086 ones (CS base
 * 0, selector 0x10; AR 0xc09b, not 0xf3): the VMRESUME is an invalid-guest-state failure. */
static void test_rflags_vm(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    set12(VM_ENTRY_CONTROLS, vmcs12_get(V12, VM_ENTRY_CONTROLS) & ~(uint64_t)VM_ENTRY_IA32E_MODE);
    set12(GUEST_IA32_EFER, 0);
    set12(GUEST_CR4, vmcs12_get(V12, GUEST_CR4) & ~(uint64_t)CR4_PAE); /* 32-bit paging: no PDPTEs */
    set12(GUEST_CS_AR_BYTES, 0xc09b);
    set12(GUEST_RIP, 0x81000100);
    launched();
    shadow_write(GUEST_RFLAGS, vmcs12_get(V12, GUEST_RFLAGS) | X86_EFLAGS_VM);
    enum outcome o = l1_vmresume();
    CHECK(o == O_ENTRY_FAILED && (uint32_t)vmcs12_get(V12, VM_EXIT_REASON) ==
                                     (EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL),
          "RFLAGS.VM with flat segments: %s, exit reason %#llx", outcome_name(o), ULL(vmcs12_get(V12, VM_EXIT_REASON)));
    /* the same RFLAGS.VM change on a full entry, for reference */
    CHECK(l1_vmresume() == O_ENTRY_FAILED, "and again (full path)");
}

/* L2 left IA-32e mode by itself (unrestricted guest, on L1's EPT): the exit stores LMA = 0
 * into "IA-32e mode guest" (SDM 28.3.1), with vmcs12's GUEST_IA32_EFER still LMA = 1 (L1 loads
 * EFER but does not save it). The VMRESUME that follows must fail as hardware's would (26.3.1.1:
 * EFER.LMA must equal "IA-32e mode guest", exit 33), not enter on the fast path. */
static void test_mode_switch(void)
{
    nh_setup(true);
    nh_l1_ept();
    l1_ready(PG_VMCS_A);
    memset(gpa_ptr(GPA(PG_FREE)), 0, 4096); /* an empty EPT12 */
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT);
    vmcs12_set_eptp(V12, GPA(PG_FREE) | 0x1e);
    vmcs12_set(V12, VM_EXIT_CONTROLS, vmcs12_get(V12, VM_EXIT_CONTROLS) & ~(uint64_t)VM_EXIT_SAVE_EFER);
    CHECK(vmcs12_get(V12, GUEST_IA32_EFER) & EFER_LMA, "L2's EFER has LMA");
    CHECK(l1_vmlaunch() == O_ENTERED && ns.ept12, "launched on L1's EPT");
    fake_vmcs_set_in(ns.vmcs02_pa, VM_ENTRY_CONTROLS, g02(VM_ENTRY_CONTROLS) & ~(uint64_t)VM_ENTRY_IA32E_MODE);
    fake_vmcs_set_in(ns.vmcs02_pa, GUEST_CR4, g02(GUEST_CR4) & ~(uint64_t)CR4_PAE); /* 32-bit paging */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit after L2 left IA-32e mode");
    CHECK(!(vmcs12_get(V12, VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE), "vmcs12's IA-32e mode guest is 0");
    uint64_t f0 = ns.fast_entries;
    CHECK(l1_vmresume() == O_ENTRY_FAILED && ns.fast_entries == f0,
          "VMRESUME: VM-entry failure (EFER.LMA != IA-32e mode guest), not the fast path");
}

int main(void)
{
    test_change_then_vmread();
    test_change_then_vmfail();
    test_tpr_threshold_high();
    test_rflags_vm();
    test_mode_switch();
    return test_summary();
}
