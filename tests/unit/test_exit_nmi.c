/*
 * Host tests for hv's NMI handling (hv/exit.c): NMIs held by hv and delivered to their
 * owner (the running guest, or L1 as an NMI exit) when it can take them, on the fake VMCS
 * of tests/unit/exits_harness.c. Split from test_exits.c.
 */
#include <stdio.h>
#include <string.h>
#include "exits_harness.h"
#include "lib/x86.h"
#include "vmx/vmx_bits.h"

/* ---- NMIs: held by hv, delivered to their owner when it can take them ------- */

struct vcpu *vmexit_nmi_late(struct vcpu *v);

static void nmi_exit(uint64_t intr_state)
{
    setup(EXIT_REASON_EXCEPTION_NMI);
    fake_vmcs_set(VM_EXIT_INTR_INFO, NMI_INFO);
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, intr_state);
}

static void check_nmi_window(const char *test, bool want)
{
    bool set = fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_NMI_WINDOW_EXITING;
    CHECK(set == want, "%s: NMI-window exiting %s", test, set ? "set" : "clear");
}

static void check_mtf(const char *test, bool want)
{
    bool set = fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_MONITOR_TRAP_FLAG;
    CHECK(set == want, "%s: monitor trap flag %s", test, set ? "set" : "clear");
}

/* CPUID under RFLAGS.TF with an NMI held: the single-step trap is pending (BS) and the NMI
 * waits for the window, since an injection would lose the trap (SDM 26.7.3) and the trap goes
 * first anyway (a trap on the previous instruction). */
static void test_single_step_before_nmi(void)
{
    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0;
    fake_vmcs_set(GUEST_RFLAGS, 0x102);
    v.nmi_pending = true;
    run_ok(__func__);
    check_rip_advanced(__func__);
    CHECK(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS) == PENDING_DBG_BS, "pending debug exceptions %#llx",
          ULL(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS)));
    check_no_event(__func__);
    CHECK(v.nmi_pending, "NMI held");
    check_nmi_window(__func__, true);
}

static void test_nmi_exit(void)
{
    /* An NMI exit with nothing in the way: injected at once, RIP unchanged. */
    nmi_exit(0);
    run_ok("nmi exit");
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO, "nmi exit: entry info %#llx",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(!v.nmi_pending && v.stats.nmis == 1 && v.stats.nmis_injected == 1, "nmi exit: pending %d, %llu/%llu",
          v.nmi_pending, ULL(v.stats.nmis), ULL(v.stats.nmis_injected));
    check_nmi_window("nmi exit", false);
    check_rip_unchanged("nmi exit");

    /* The guest is in its NMI handler (virtual-NMI blocking), or under STI/MOV SS blocking
     * that no instruction completed: held, the window asked for. */
    static const uint64_t blocked[] = {GUEST_INTR_NMI, GUEST_INTR_STI, GUEST_INTR_MOV_SS};
    for (unsigned i = 0; i < 3; i++) {
        nmi_exit(blocked[i]);
        run_ok("nmi blocked");
        check_no_event("nmi blocked");
        CHECK(v.nmi_pending, "NMI lost while blocked (%#llx)", ULL(blocked[i]));
        check_nmi_window("nmi blocked", true);
        CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == blocked[i], "blocking changed");
    }

    /* The window opens: hv's own window exit, the NMI goes in, the window closes. */
    setup(EXIT_REASON_NMI_WINDOW);
    v.nmi_pending = true;
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_NMI_WINDOW_EXITING | CPU_BASED_USE_MSR_BITMAPS);
    run_ok("nmi window");
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == CPU_BASED_USE_MSR_BITMAPS, "NMI window: controls %#llx",
          ULL(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL)));
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO && !v.nmi_pending, "NMI window: info %#llx pending %d",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)), v.nmi_pending);
    check_rip_unchanged("nmi window");

    /* Wait-for-SIPI blocks NMIs: held, no injection (the entry would fail), no window. */
    nmi_exit(0);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
    run_ok("nmi in wait-for-SIPI");
    check_no_event("nmi in wait-for-SIPI");
    CHECK(v.nmi_pending, "NMI lost in wait-for-SIPI");
    check_nmi_window("nmi in wait-for-SIPI", false);

    /* A CPU without virtual NMIs: never NMI-window exiting (error 7); held to the next exit. */
    nmi_exit(GUEST_INTR_NMI);
    hv.msrs.pinbased = 0x0000001700000016ull;
    fake_vmcs_set(PIN_BASED_VM_EXEC_CONTROL, 0x16);
    run_ok("no virtual NMIs");
    check_no_event("no virtual NMIs");
    CHECK(v.nmi_pending, "NMI lost without virtual NMIs");
    check_nmi_window("no virtual NMIs", false);

    /* Not an NMI: hv's exception bitmap is empty, so this is an internal error. */
    setup(EXIT_REASON_EXCEPTION_NMI);
    fake_vmcs_set(VM_EXIT_INTR_INFO, GP_INFO);
    CHECK(run(), "an exception exit hv never asked for is fatal");
}

static void test_pending_nmi(void)
{
    /* An NMI hit hv in root mode during a CPUID exit. */
    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0;
    v.nmi_pending = true;
    run_ok("nmi injected");
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO, "NMI: entry interruption info %#llx, want %#x",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)), NMI_INFO);
    CHECK(!v.nmi_pending, "NMI still pending after injection");

    /* An exception is being injected: the NMI waits for the NMI window. */
    rdmsr_exit(MSR_IA32_VMX_BASIC);
    v.nmi_pending = true;
    run_ok("nmi behind #GP");
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == GP_INFO, "NMI behind #GP: info %#llx",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(v.nmi_pending, "NMI lost behind #GP");
    check_nmi_window("nmi behind #GP", true);

    /* CPUID right after STI or MOV SS: hv completes it, which ends that blocking (as the CPU
     * would), so the NMI goes in at once instead of waiting for a window. */
    static const uint64_t shadow[] = {GUEST_INTR_STI, GUEST_INTR_MOV_SS, GUEST_INTR_STI | GUEST_INTR_NMI};
    for (unsigned i = 0; i < 3; i++) {
        setup(EXIT_REASON_CPUID);
        v.rc.regs[HV_REG_RAX] = 0;
        v.nmi_pending = true;
        fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, shadow[i]);
        run_ok("nmi after sti/mov ss");
        check_rip_advanced("nmi after sti/mov ss");
        CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == (shadow[i] & GUEST_INTR_NMI),
              "blocking %#llx not ended: %#llx", ULL(shadow[i]), ULL(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO)));
        bool nmi_blocked = shadow[i] & GUEST_INTR_NMI;
        CHECK(v.nmi_pending == nmi_blocked, "pending %d after %#llx", v.nmi_pending, ULL(shadow[i]));
        check_nmi_window("nmi after sti/mov ss", nmi_blocked);
        if (!nmi_blocked)
            CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO, "not injected after %#llx", ULL(shadow[i]));
    }

    /* The late look also follows the stub's CPUID fast path, which leaves the register cache
     * as an earlier exit left it: here the guest has since entered its NMI handler. */
    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0;
    run_ok("exit before the fast path");
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_NMI);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0);
    v.nmi_pending = true;
    vmexit_nmi_late(&v);
    CHECK(!(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID) && v.nmi_pending,
          "late NMI injected on a stale interruptibility state: %#llx", ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
    check_nmi_window("late NMI, guest NMI-blocked", true);

    /* Held after vmexit_handler's last look: the exit stub's late path delivers it. */
    setup(EXIT_REASON_CPUID);
    v.nmi_pending = true;
    vmexit_nmi_late(&v);
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO && !v.nmi_pending && v.rc.dirty == 0,
          "late NMI: info %#llx pending %d", ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)), v.nmi_pending);
}

/* While L2 runs: L1's "NMI exiting" says whether an NMI is an NMI VM exit to L1 or L2's. */
static struct vmcs12 nmi_vmcs12;

static void l2_nmi(uint32_t pin12, uint64_t intr_state)
{
    nmi_exit(intr_state);
    memset(&nmi_vmcs12, 0, sizeof(nmi_vmcs12));
    vmcs12_set(&nmi_vmcs12, PIN_BASED_VM_EXEC_CONTROL, pin12);
    v.nested.cache = &nmi_vmcs12;
    v.nv.n = &v.nested;
    v.nested.guest_mode = true;
    l2_exit_result = false; /* nested_l2_exit leaves NMIs to hv */
}

static void test_l2_nmi(void)
{
    l2_nmi(PIN_BASED_NMI_EXITING, 0);
    run_ok("L2 nmi, L1 exits on NMIs");
    CHECK(reflect_nmi_calls == 1 && !v.nmi_pending && v.stats.nmis_to_l1 == 1, "NMI exit to L1: %d calls",
          reflect_nmi_calls);
    check_no_event("L2 nmi, L1 exits on NMIs");

    l2_nmi(0, 0);
    run_ok("L2 nmi, L2's own");
    CHECK(reflect_nmi_calls == 0 && fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO, "NMI not injected into L2");

    /* L2 in its NMI handler: L1 with virtual NMIs still gets the exit; without, it waits
     * for L2's IRET (the NMI window), as the CPU blocks the NMI until then. */
    l2_nmi(PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, GUEST_INTR_NMI);
    run_ok("L2 nmi-blocked, L1 virtual NMIs");
    CHECK(reflect_nmi_calls == 1, "NMI exit to L1 with virtual NMIs: %d", reflect_nmi_calls);
    l2_nmi(PIN_BASED_NMI_EXITING, GUEST_INTR_NMI);
    run_ok("L2 nmi-blocked, L1 without virtual NMIs");
    CHECK(reflect_nmi_calls == 0 && v.nmi_pending, "NMI exit to L1 despite L2's blocking");
    check_nmi_window("L2 nmi-blocked, L1 without virtual NMIs", true);
    l2_nmi(0, GUEST_INTR_NMI);
    run_ok("L2 nmi-blocked, L2's own");
    CHECK(v.nmi_pending && reflect_nmi_calls == 0, "NMI not held for L2");
    check_nmi_window("L2 nmi-blocked, L2's own", true);
    check_no_event("L2 nmi-blocked, L2's own");

    /* L1 without virtual NMIs, L2 entered NMI-blocked: blocked until the nested VM exit
     * (SDM 26.6.1), even once L2's IRET ended vmcs02's virtual-NMI blocking. No window (it
     * would open at that IRET), no MTF: held. */
    l2_nmi(PIN_BASED_NMI_EXITING, 0);
    v.nested.l2_nmi_blocked = true;
    run_ok("L2 blocked until the exit");
    CHECK(reflect_nmi_calls == 0 && v.nmi_pending, "NMI exit to L1 while L2 blocks NMIs until the exit");
    check_nmi_window("L2 blocked until the exit", false);
    check_mtf("L2 blocked until the exit", false);
    v.nested.l2_nmi_blocked = false;

    /* ... and the exit that ends L2's run (reflected by nested/) delivers it to L1. */
    l2_nmi(0, 0);
    fake_vmcs_set(VM_EXIT_REASON, EXIT_REASON_CPUID);
    v.nmi_pending = true;
    l2_exit_result = true;
    run_ok("held NMI at a reflected exit");
    CHECK(!v.nmi_pending && fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO,
          "held NMI not delivered after the exit nested/ took: info %#llx",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));

    /* L1 with virtual NMIs: an NMI exit waits only for STI/MOV SS or an injection, but with
     * L2 virtual-NMI blocked (or an NMI being injected) the NMI window would open only at
     * L2's IRET: hv asks for MTF, the next instruction boundary (SDM 25.5.2). */
    l2_nmi(PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, GUEST_INTR_STI | GUEST_INTR_NMI);
    hv.msrs.procbased = (uint64_t)CPU_BASED_MONITOR_TRAP_FLAG << 32;
    run_ok("L2 virtual-NMI blocked and STI");
    CHECK(reflect_nmi_calls == 0 && v.nmi_pending, "NMI exit to L1 under STI blocking");
    check_mtf("L2 virtual-NMI blocked and STI", true);
    check_nmi_window("L2 virtual-NMI blocked and STI", false);

    l2_nmi(PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, 0);
    hv.msrs.procbased = (uint64_t)CPU_BASED_MONITOR_TRAP_FLAG << 32;
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, NMI_INFO); /* L1's NMI for L2, not delivered yet */
    run_ok("NMI being injected into L2");
    check_mtf("NMI being injected into L2", true);
    check_nmi_window("NMI being injected into L2", false);

    l2_nmi(PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, GUEST_INTR_STI);
    hv.msrs.procbased = (uint64_t)CPU_BASED_MONITOR_TRAP_FLAG << 32;
    run_ok("L2 under STI blocking only");
    check_mtf("L2 under STI blocking only", false);
    check_nmi_window("L2 under STI blocking only", true); /* it opens right after the shadow */

    l2_nmi(PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, GUEST_INTR_STI | GUEST_INTR_NMI);
    run_ok("no MTF on this CPU");
    check_mtf("no MTF on this CPU", false);
    check_nmi_window("no MTF on this CPU", true); /* late (at L2's IRET) but not lost */
    v.nested.guest_mode = false;
}

int main(void)
{
    test_log_capture();
    test_nmi_exit();
    test_single_step_before_nmi();
    test_pending_nmi();
    test_l2_nmi();
    return test_summary();
}
