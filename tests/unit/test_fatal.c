/*
 * hv's fatal-error path (hv/fatal.c) through the exit-handler harness: the report's lines
 * (exit reason and qualification, guest RIP/RSP/CR0/CR3/CR4, VM-instruction error, hv's
 * rip, load base and backtrace), on_fatal=halt|reset, the other CPUs stopping, the frame
 * walk's bounds, and the test-only hypercall behind test_hooks=on.
 */
#include <string.h>
#include "exits_harness.h"
#include "hv/fatal.h"
#include "hv/hypercall.h"
#include "lib/log.h"
#include "vmx/vmx_bits.h"

static struct hv_handoff ho;

/* An exit hv has no handler for, with recognisable guest state. */
static void setup_fatal(uint32_t reason)
{
    setup(reason);
    memset(&ho, 0, sizeof(ho));
    ho.image_base = 0x7e000000;
    hv.ho = &ho;
    fake_vmcs_set(EXIT_QUALIFICATION, 0x1234);
    fake_vmcs_set(VM_INSTRUCTION_ERROR, 7);
    fake_vmcs_set(GUEST_RSP, 0x7fe0);
    fake_vmcs_set(GUEST_CR0, 0x80050033);
    fake_vmcs_set(GUEST_CR3, 0x1234000);
    fake_vmcs_set(GUEST_CR4, 0x26a0);
}

static void test_report(void)
{
    setup_fatal(EXIT_REASON_HLT);
    log_set_level(LOG_ERROR); /* FATAL lines print at every level */
    CHECK(run(), "an unexpected exit ends hv");
    log_set_level(LOG_DEBUG);
    static const char *const lines[] = {
        "hv: FATAL: cpu0: unexpected VM exit\n",
        "hv: FATAL: cpu0: exit reason 12 (HLT), qualification 0x1234, VM-instruction error 7, guest L1 (vmcs01)\n",
        "hv: FATAL: cpu0: guest rip 0xffffffff81001000 rsp 0x7fe0 cr0 0x80050033 cr3 0x1234000 cr4 0x26a0\n",
        "hv: FATAL: cpu0: hv rip 0x",
        "hv is loaded at 0x7e000000: addr2line -f -e build/core.elf ADDRESS-0x7e000000",
        "hv: FATAL: cpu0: backtrace",
        "hv: FATAL: cpu0: halted; 0 of 0 other CPU(s) stopped (on_fatal=halt in hv.cfg",
    };
    for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        CHECK(test_log_contains(lines[i]), "report lacks \"%s\":\n%s", lines[i], test_log_text());
    CHECK(halt_calls == 1 && reset_calls == 0, "on_fatal=halt (default): halted %d, reset %d", halt_calls, reset_calls);
    CHECK(stop_others_calls == 0, "one CPU: no INIT IPI");
    CHECK(hv.fatal_cpu == 1, "cpu0 owns the fatal error: %u", hv.fatal_cpu);

    /* A VM-entry failure of vmcs01 names itself. */
    setup_fatal(VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE);
    run();
    CHECK(test_log_contains("exit reason 33 VM-entry failure (invalid guest state)"), "entry failure: %s",
          test_log_text());
}

static void test_on_fatal_reset(void)
{
    setup_fatal(EXIT_REASON_HLT);
    hv.on_fatal = HV_ON_FATAL_RESET;
    CHECK(run(), "fatal");
    CHECK(reset_calls == 1 && halt_calls == 0, "on_fatal=reset: reset %d, halted %d", reset_calls, halt_calls);
    CHECK(test_log_contains("hv: FATAL: cpu0: resetting the platform (on_fatal=reset in hv.cfg)"), "log: %s",
          test_log_text());
}

static void test_other_cpus(void)
{
    /* cpu0 fails with a second vCPU: INIT to the others, then it waits for them. */
    setup_fatal(EXIT_REASON_HLT);
    hv.nvcpus = 2;
    hv.cpus_stopped = 1; /* as cpu1 would after its INIT exit */
    CHECK(run(), "fatal");
    CHECK(stop_others_calls == 1, "INIT IPI sent %d times", stop_others_calls);
    CHECK(test_log_contains("halted; 1 of 1 other CPU(s) stopped"), "log: %s", test_log_text());

    /* cpu0 takes an exit after cpu1 hit a fatal error: it stops before handling it. */
    setup(EXIT_REASON_CPUID);
    hv.fatal_cpu = 2;
    CHECK(run(), "cpu0 must stop");
    CHECK(halt_calls == 1 && hv.cpus_stopped == 1, "halted %d, stopped %u", halt_calls, hv.cpus_stopped);
    CHECK(test_log_contains("hv: FATAL: cpu0: stopped: cpu1 hit a fatal error"), "log: %s", test_log_text());
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 0 && v.stats.total == 0, "the exit was not handled");

    /* A fatal error inside this CPU's own report: no second report, still the end. */
    setup_fatal(EXIT_REASON_HLT);
    hv.fatal_cpu = 1;
    if (setjmp(reset_jmp) == 0) {
        reset_armed = true;
        exit_fatal(&v, "again");
    }
    reset_armed = false;
    CHECK(halt_calls == 1, "halted %d", halt_calls);
    CHECK(test_log_contains("during the report of a fatal error") && !test_log_contains("guest rip"),
          "nested fatal: %s", test_log_text());
}

static void test_backtrace(void)
{
    static uint64_t stack[64] __attribute__((aligned(16)));
    uint64_t lo = (uint64_t)(uintptr_t)stack, hi = lo + sizeof(stack), ret[16];
#define AT(i) ((uint64_t)(uintptr_t)&stack[i])
    memset(stack, 0, sizeof(stack));
    stack[4] = AT(10), stack[5] = 0x1111;
    stack[10] = AT(20), stack[11] = 0x2222;
    stack[20] = 0x12345678, stack[21] = 0x3333; /* the guest's RBP ends the chain */
    unsigned n = fatal_backtrace(AT(4), lo, hi, ret, 16);
    CHECK(n == 3 && ret[0] == 0x1111 && ret[1] == 0x2222 && ret[2] == 0x3333, "chain of 3: %u frames", n);
    CHECK(fatal_backtrace(AT(4), lo, hi, ret, 2) == 2, "at most max frames");
    CHECK(fatal_backtrace(lo - 16, lo, hi, ret, 16) == 0, "rbp below the stack");
    CHECK(fatal_backtrace(hi - 8, lo, hi, ret, 16) == 0, "a frame that would end past the stack");
    CHECK(fatal_backtrace(AT(4) + 4, lo, hi, ret, 16) == 0, "misaligned rbp");
    CHECK(fatal_backtrace(0, 0, 0, ret, 16) == 0, "no stack");
    stack[20] = AT(4); /* a loop */
    CHECK(fatal_backtrace(AT(4), lo, hi, ret, 16) == 3, "a loop ends the walk");
    stack[10] = AT(62); /* a frame whose return address would lie past the stack */
    CHECK(fatal_backtrace(AT(4), lo, hi, ret, 16) == 2, "frame at the top: %u", fatal_backtrace(AT(4), lo, hi, ret, 16));
    for (int i = 0; i < 30; i++) /* a deep chain: bounded */
        stack[2 * i] = AT(2 * i + 2), stack[2 * i + 1] = 0x1000 + (uint64_t)i;
    CHECK(fatal_backtrace(AT(0), lo, hi, ret, 16) == 16, "deep chain bounded at 16");
#undef AT
}

static void vmcall(uint64_t fn)
{
    setup(EXIT_REASON_VMCALL);
    v.rc.regs[HV_REG_RAX] = fn;
}

static void test_hook(void)
{
    vmcall(HV_HC_TEST_FATAL);
    run_ok("test-fatal hypercall without test_hooks");
    CHECK(v.rc.regs[HV_REG_RAX] == (uint64_t)HV_HC_ERR_UNKNOWN, "without test_hooks: unknown, RAX %#llx",
          ULL(v.rc.regs[HV_REG_RAX]));
    CHECK(!test_log_contains("FATAL"), "no fatal error: %s", test_log_text());
    check_rip_advanced("test-fatal hypercall without test_hooks");

    vmcall(HV_HC_TEST_FATAL);
    hv.test_hooks = true;
    CHECK(run(), "test_hooks=on: the hypercall ends hv");
    CHECK(test_log_contains("hv: FATAL: cpu0: test hook") && test_log_contains("exit reason 18 (VMCALL)"), "log: %s",
          test_log_text());
}

/* test_hooks=on lets user space (the benchmarks in tests/linux) read exit counts; the
 * other hypercalls stay CPL 0 only. */
static void test_hook_user_stats(void)
{
    bool hooks = false; /* setup() resets hv: set after each vmcall() */
    vmcall(HV_HC_GET_EXITS);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(3));
    hv.test_hooks = hooks;
    run_ok("get exits at CPL 3 without test_hooks");
    check_ud("get exits at CPL 3 without test_hooks");

    hooks = true;
    vmcall(HV_HC_GET_EXITS);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(3));
    hv.test_hooks = hooks;
    v.stats.total = 99;
    run_ok("get exits at CPL 3 with test_hooks");
    check_no_event("get exits at CPL 3 with test_hooks");
    CHECK(v.rc.regs[HV_REG_RAX] == 100, "CPL 3 get exits: RAX %llu, want 100", ULL(v.rc.regs[HV_REG_RAX]));
    check_rip_advanced("get exits at CPL 3 with test_hooks");

    vmcall(HV_HC_PRINT_STATS);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(3));
    hv.test_hooks = hooks;
    run_ok("print stats at CPL 3 with test_hooks");
    check_no_event("print stats at CPL 3 with test_hooks");
    CHECK(test_log_contains("exit statistics (hypercall)"), "CPL 3 print stats: log: %s", test_log_text());

    vmcall(HV_HC_VERSION);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(3));
    hv.test_hooks = hooks;
    run_ok("version at CPL 3 with test_hooks");
    check_ud("version at CPL 3 with test_hooks");
    hv.test_hooks = false;
}

int main(void)
{
    test_log_capture();
    test_report();
    test_on_fatal_reset();
    test_other_cpus();
    test_backtrace();
    test_hook_user_stats();
    test_hook();
    return test_summary();
}
