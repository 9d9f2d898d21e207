/*
 * Host tests for the VMX capabilities hv offers L1 beyond the basics (issue 8: "every
 * capability the CPU has, offered and exact"), each end to end: the bit in the capability
 * MSR only when the CPU has it, the VM-entry checks on vmcs12, vmcs02 as nested/ builds it,
 * and the exits reflected to L1 with their exit information (SDM 28.2).
 */
#include <string.h>
#include "lib/x86.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
static uint64_t g02(uint32_t f) { return fake_vmcs_get_in(ns.vmcs02_pa, f); }
static uint64_t w12(uint32_t f) { return vmcs12_get(V12, f); }
/* Stands for L1's VMWRITE, which hv always sees (an exit, or a shadow field compared at entry):
 * the next VMRESUME must not take the fast path (nested/vmenter_fast.c) past it. */
static void s12(uint32_t f, uint64_t v) { vmcs12_set(V12, f, v); ns.fast_ok = false; }

static void fresh(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
}

/* Caps from hw with one capability MSR's bits removed. */
static struct nested_caps caps_without(uint64_t *msr, uint64_t clear)
{
    uint64_t saved = *msr;
    *msr &= ~clear;
    struct nested_caps c;
    nested_caps_init(&c, &hw);
    *msr = saved;
    return c;
}

static void proc2_on(uint32_t bits)
{
    s12(CPU_BASED_VM_EXEC_CONTROL, w12(CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_ACTIVATE_SECONDARY);
    s12(SECONDARY_VM_EXEC_CONTROL, w12(SECONDARY_VM_EXEC_CONTROL) | bits);
}

/* An exit of L2 with instruction information: reflected with all of it (28.2.1, 28.2.4, 28.2.5). */
static void check_reflected(uint32_t reason, uint64_t qual, uint32_t len, uint32_t info, const char *what)
{
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, len);
    fake_vmcs_set(VMX_INSTRUCTION_INFO, info);
    bool l1 = l2_exit(reason, qual);
    CHECK(l1 && w12(VM_EXIT_REASON) == reason && w12(EXIT_QUALIFICATION) == qual &&
              w12(VM_EXIT_INSTRUCTION_LEN) == len && w12(VMX_INSTRUCTION_INFO) == info,
          "%s: %s, vmcs12 reason %llu qual %#llx len %llu info %#llx", what, l1 ? "L1's" : "hv's",
          ULL(w12(VM_EXIT_REASON)), ULL(w12(EXIT_QUALIFICATION)), ULL(w12(VM_EXIT_INSTRUCTION_LEN)),
          ULL(w12(VMX_INSTRUCTION_INFO)));
}

/* Descriptor-table exiting (secondary bit 2; SDM 26.1.3): LGDT/LIDT/SGDT/SIDT exit with
 * reason 46, LLDT/LTR/SLDT/STR with 47, the instruction information of Tables 28-10/28-11. */
static void test_desc_exiting(void)
{
    fresh();
    CHECK(nested_allowed1(caps.procbased2) & SECONDARY_DESC_EXITING, "descriptor-table exiting offered: %#llx",
          ULL(caps.procbased2));
    struct nested_caps c = caps_without(&hw.procbased2, (uint64_t)SECONDARY_DESC_EXITING << 32);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_DESC_EXITING), "not offered without the CPU's");

    proc2_on(SECONDARY_DESC_EXITING);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED && (g02(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_DESC_EXITING),
          "VMLAUNCH with descriptor-table exiting: %s (error %u), vmcs02 secondary %#llx", outcome_name(o), l1_error(),
          ULL(g02(SECONDARY_VM_EXEC_CONTROL)));
    if (o != O_ENTERED)
        return;
    /* SGDT [rsp-16]: 64-bit addressing, SS, base RSP, no index, identity 0 (SGDT) */
    check_reflected(EXIT_REASON_GDTR_IDTR, (uint64_t)-16, 5, 0x02000000u | (4u << 23) | (1u << 22) | (2u << 15) | (2u << 7),
                    "SGDT exit");
    CHECK(l1_vmresume() == O_ENTERED, "VMRESUME");
    /* LTR cx: register form, reg1 = RCX, identity 3 (LTR). No displacement: qualification 0
     * (27.2.1), whatever the CPU stored (Bochs: a stale one). */
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 3);
    fake_vmcs_set(VMX_INSTRUCTION_INFO, (3u << 28) | (1u << 10) | (1u << 3) | (2u << 7));
    bool l1 = l2_exit(EXIT_REASON_LDTR_TR, 0x50);
    CHECK(l1 && w12(VM_EXIT_REASON) == EXIT_REASON_LDTR_TR && w12(EXIT_QUALIFICATION) == 0,
          "LTR exit: qualification %#llx in vmcs12", ULL(w12(EXIT_QUALIFICATION)));
    CHECK(l1_vmresume() == O_ENTERED, "VMRESUME");
    /* LLDT [rax+0x50]: memory form, the displacement is the qualification */
    check_reflected(EXIT_REASON_LDTR_TR, 0x50, 4, (2u << 28) | II_MEM_RAX, "LLDT [rax+0x50] exit");
    s12(SECONDARY_VM_EXEC_CONTROL, w12(SECONDARY_VM_EXEC_CONTROL) & ~SECONDARY_DESC_EXITING);
    CHECK(l1_vmresume() == O_ENTERED && !(g02(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_DESC_EXITING),
          "L1 turns it off: off in vmcs02");
}

/* PAUSE-loop exiting (secondary bit 10; SDM 26.1.3, 25.6.13): PLE_GAP and PLE_WINDOW exist
 * only while it is offered (32-bit control fields: no high half, VMWRITE truncates), and
 * vmcs02 gets L1's values; the PAUSE exit (40) is L1's. */
static void test_ple(void)
{
    fresh();
    CHECK(nested_allowed1(caps.procbased2) & SECONDARY_PAUSE_LOOP_EXITING, "PAUSE-loop exiting offered");
    struct nested_caps c = caps_without(&hw.procbased2, (uint64_t)SECONDARY_PAUSE_LOOP_EXITING << 32);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_PAUSE_LOOP_EXITING), "not offered without the CPU's");

    uint64_t gap = 0, win = 0, hi = 0;
    enum outcome o1 = l1_vmwrite(PLE_GAP, 0xabcd00000080ull), o2 = l1_vmwrite(PLE_WINDOW, 0x1000);
    enum outcome r1 = l1_vmread(PLE_GAP, &gap), r2 = l1_vmread(PLE_WINDOW, &win);
    CHECK(o1 == O_SUCCEED && o2 == O_SUCCEED && r1 == O_SUCCEED && r2 == O_SUCCEED && gap == 0x80 && win == 0x1000,
          "VMWRITE/VMREAD PLE_GAP %#llx PLE_WINDOW %#llx (32 bits)", ULL(gap), ULL(win));
    enum outcome rh = l1_vmread(PLE_GAP | 1, &hi);
    CHECK(rh == O_FAIL_VALID && l1_error() == VMXERR_UNSUPPORTED_FIELD, "PLE_GAP has no high half: %s (error %u)",
          outcome_name(rh), l1_error());

    proc2_on(SECONDARY_PAUSE_LOOP_EXITING);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED && (g02(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_PAUSE_LOOP_EXITING) && g02(PLE_GAP) == 0x80 &&
              g02(PLE_WINDOW) == 0x1000,
          "VMLAUNCH with PAUSE-loop exiting: %s (error %u), vmcs02 gap %#llx window %#llx", outcome_name(o), l1_error(),
          ULL(g02(PLE_GAP)), ULL(g02(PLE_WINDOW)));
    if (o != O_ENTERED)
        return;
    check_reflected(EXIT_REASON_PAUSE, 0, 2, 0, "PAUSE-loop exit");

    /* Not offered: the fields do not exist (SDM 31.3: error 12), as on a CPU without it. */
    caps.procbased2 &= ~((uint64_t)SECONDARY_PAUSE_LOOP_EXITING << 32);
    enum outcome w = l1_vmwrite(PLE_WINDOW, 5);
    CHECK(w == O_FAIL_VALID && l1_error() == VMXERR_UNSUPPORTED_FIELD, "not offered: VMWRITE PLE_WINDOW %s (error %u)",
          outcome_name(w), l1_error());
}

/* Zero-length software-event injection (IA32_VMX_MISC[30]; SDM 26.2.1.3): offered as the
 * CPU has it; then a software interrupt, software exception or privileged software
 * exception may be injected with VM-entry instruction length 0, which vmcs02 gets as it is.
 * Without it (and for length 16 always) the VM entry fails with error 7. */
static enum outcome inject_len(uint32_t info, uint32_t len)
{
    s12(VM_ENTRY_INTR_INFO_FIELD, info);
    s12(VM_ENTRY_INSTRUCTION_LEN, len);
    return V12->launch_state ? l1_vmresume() : l1_vmlaunch();
}

static void test_zero_length_injection(void)
{
    uint64_t misc = hw.misc;
    hw.misc |= 1ull << 30; /* Bochs' corei7_skylake_x has it (0x7004c1e7) */
    fresh();
    CHECK(caps.misc & (1ull << 30), "IA32_VMX_MISC[30] offered: %#llx", ULL(caps.misc));
    const uint32_t events[] = {INTR_INFO_VALID | INTR_TYPE_SW_INTR | 0x30, INTR_INFO_VALID | INTR_TYPE_SW_EXCEPTION | 3,
                               INTR_INFO_VALID | INTR_TYPE_PRIV_SW_EXCEPTION | 1};
    for (unsigned i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        enum outcome o = inject_len(events[i], 0);
        CHECK(o == O_ENTERED && g02(VM_ENTRY_INTR_INFO_FIELD) == events[i] && g02(VM_ENTRY_INSTRUCTION_LEN) == 0,
              "inject %#x length 0: %s (error %u), vmcs02 info %#llx len %llu", events[i], outcome_name(o), l1_error(),
              ULL(g02(VM_ENTRY_INTR_INFO_FIELD)), ULL(g02(VM_ENTRY_INSTRUCTION_LEN)));
        if (o == O_ENTERED)
            l2_exit(EXIT_REASON_CPUID, 0); /* back to L1 */
    }
    enum outcome o = inject_len(events[0], 16);
    CHECK(o == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_CONTROL, "length 16: %s (error %u)",
          outcome_name(o), l1_error());

    hw.misc = misc & ~(1ull << 30);
    fresh();
    CHECK(!(caps.misc & (1ull << 30)), "not offered without the CPU's");
    o = inject_len(events[0], 0);
    CHECK(o == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_CONTROL, "not offered: length 0 %s (error %u)",
          outcome_name(o), l1_error());
    hw.misc = misc;
}

/* The shutdown and wait-for-SIPI activity states (IA32_VMX_MISC[7], [8]; SDM 26.3.1.5,
 * 26.6.2): offered as the CPU has them; vmcs02 enters in the state vmcs12 names once hv's
 * checks passed (an event L2 cannot take in it is a VM-entry failure, exit 33, before
 * vmcs02 is touched); INIT and SIPI exits of L2 are L1's, with the activity state saved. */
static void test_activity_states(void)
{
    fresh();
    CHECK((caps.misc & (3ull << 7)) == (3ull << 7), "shutdown and wait-for-SIPI offered: %#llx", ULL(caps.misc));
    struct nested_caps c = caps_without(&hw.misc, 3ull << 7);
    CHECK(!(c.misc & (3ull << 7)), "not offered without the CPU's");

    s12(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
    s12(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTRY_FAILED && w12(VM_EXIT_REASON) == (VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE),
          "wait-for-SIPI with an NMI injected: %s, reason %#llx", outcome_name(o), ULL(w12(VM_EXIT_REASON)));
    s12(VM_ENTRY_INTR_INFO_FIELD, 0);
    o = l1_vmlaunch();
    CHECK(o == O_ENTERED && g02(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI,
          "VMLAUNCH into wait-for-SIPI: %s (error %u), vmcs02 activity %llu", outcome_name(o), l1_error(),
          ULL(g02(GUEST_ACTIVITY_STATE)));
    if (o != O_ENTERED)
        return;
    /* A SIPI (vector 0x9a) exits (26.6.2); the CPU saved the activity state. */
    bool l1 = l2_exit(EXIT_REASON_SIPI_SIGNAL, 0x9a);
    CHECK(l1 && w12(VM_EXIT_REASON) == EXIT_REASON_SIPI_SIGNAL && w12(EXIT_QUALIFICATION) == 0x9a &&
              w12(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI,
          "SIPI exit: %s, reason %llu qual %#llx activity %llu", l1 ? "L1's" : "hv's", ULL(w12(VM_EXIT_REASON)),
          ULL(w12(EXIT_QUALIFICATION)), ULL(w12(GUEST_ACTIVITY_STATE)));

    s12(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_SHUTDOWN);
    s12(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 6);
    o = l1_vmresume();
    CHECK(o == O_ENTRY_FAILED && w12(VM_EXIT_REASON) == (VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE),
          "shutdown with #UD injected: %s, reason %#llx", outcome_name(o), ULL(w12(VM_EXIT_REASON)));
    s12(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
    o = l1_vmresume();
    CHECK(o == O_ENTERED && g02(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_SHUTDOWN &&
              g02(VM_ENTRY_INTR_INFO_FIELD) == (INTR_INFO_VALID | INTR_TYPE_NMI | 2),
          "VMRESUME into shutdown with an NMI injected: %s (error %u), vmcs02 activity %llu", outcome_name(o),
          l1_error(), ULL(g02(GUEST_ACTIVITY_STATE)));
    if (o != O_ENTERED)
        return;
    l1 = l2_exit(EXIT_REASON_INIT_SIGNAL, 0);
    CHECK(l1 && w12(VM_EXIT_REASON) == EXIT_REASON_INIT_SIGNAL, "INIT exit: %s", l1 ? "L1's" : "hv's");
}

int main(void)
{
    test_desc_exiting();
    test_ple();
    test_zero_length_injection();
    test_activity_states();
    return test_summary();
}
