/*
 * Host tests for the VM-exit dispatch (hv/exit.c) and the handlers of hv/exit_cpuid.c,
 * exit_msr.c and exit_misc.c, on the fake VMCS of tests/unit/exits_harness.c. CPUID runs
 * for real: only the bits hv controls are checked. handle_invd (WBINVD) is never called.
 * Control registers, INIT and SIPI: test_exit_cr_init.c; NMIs: test_exit_nmi.c.
 */
#include <stdio.h>
#include <string.h>
#include "exits_harness.h"
#include "hv/hypercall.h"
#include "hv/version.h"
#include "lib/x86.h"
#include "vmx/vmx_bits.h"

/* ---- dispatch table --------------------------------------------------------- */

static void test_dispatch_table(void)
{
    static const struct {
        uint32_t reason;
        exit_handler_fn fn;
        const char *name;
    } want[] = {
        {EXIT_REASON_TRIPLE_FAULT, handle_triple_fault, "handle_triple_fault"},
        {EXIT_REASON_INIT_SIGNAL, handle_init, "handle_init"},
        {EXIT_REASON_SIPI_SIGNAL, handle_sipi, "handle_sipi"},
        {EXIT_REASON_NMI_WINDOW, handle_nmi_window, "handle_nmi_window"},
        {EXIT_REASON_EXCEPTION_NMI, handle_exception_nmi, "handle_exception_nmi"},
        {EXIT_REASON_CPUID, handle_cpuid, "handle_cpuid"},
        {EXIT_REASON_GETSEC, handle_ud, "handle_ud"},
        {EXIT_REASON_INVD, handle_invd, "handle_invd"},
        {EXIT_REASON_VMCALL, handle_vmcall, "handle_vmcall"},
        {EXIT_REASON_CR_ACCESS, handle_cr_access, "handle_cr_access"},
        {EXIT_REASON_IO_INSTRUCTION, handle_io, "handle_io"},
        {EXIT_REASON_MSR_READ, handle_rdmsr, "handle_rdmsr"},
        {EXIT_REASON_MSR_WRITE, handle_wrmsr, "handle_wrmsr"},
        {EXIT_REASON_MONITOR_TRAP_FLAG, handle_mtf, "handle_mtf"},
        {EXIT_REASON_EPT_VIOLATION, handle_ept_violation, "handle_ept_violation"},
        {EXIT_REASON_XSETBV, handle_xsetbv, "handle_xsetbv"},
    };
    /* Numeric on purpose: a wrong enum would not hide a wrong table. */
    CHECK(exit_handler_for(10) == handle_cpuid, "CPUID (10)");
    CHECK(exit_handler_for(18) == handle_vmcall, "VMCALL (18)");
    CHECK(exit_handler_for(28) == handle_cr_access, "CR access (28)");
    CHECK(exit_handler_for(31) == handle_rdmsr, "RDMSR (31)");
    CHECK(exit_handler_for(32) == handle_wrmsr, "WRMSR (32)");
    CHECK(exit_handler_for(3) == handle_init, "INIT (3)");
    CHECK(exit_handler_for(4) == handle_sipi, "SIPI (4)");
    CHECK(exit_handler_for(55) == handle_xsetbv, "XSETBV (55)");
    CHECK(exit_handler_for(2) == handle_triple_fault, "triple fault (2)");
    CHECK(exit_handler_for(48) == handle_ept_violation, "EPT violation (48)");
    CHECK(exit_handler_for(37) == handle_mtf, "MTF (37)");
    CHECK(exit_handler_for(30) == handle_io, "I/O (30)");
    CHECK(exit_handler_for(8) == handle_nmi_window, "NMI window (8)");
    CHECK(exit_handler_for(11) == handle_ud, "GETSEC (11)");
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK(exit_handler_for(want[i].reason) == want[i].fn, "reason %u: want %s", want[i].reason, want[i].name);
    /* VMCLEAR..VMXON, INVEPT, INVVPID: nested VMX (handle_vmx_insn: #UD when nested is off;
     * VMRESUME has its own, handle_vmresume); VMFUNC: #UD, hv offers no VM functions */
    CHECK(exit_handler_for(24) == handle_vmresume, "VMRESUME (24)");
    static const uint32_t vmx_insns[] = {19, 20, 21, 22, 23, 25, 26, 27, 50, 53};
    for (unsigned i = 0; i < sizeof(vmx_insns) / sizeof(vmx_insns[0]); i++)
        CHECK(exit_handler_for(vmx_insns[i]) == handle_vmx_insn, "VMX instruction exit %u: want handle_vmx_insn",
              vmx_insns[i]);
    CHECK(exit_handler_for(59) == handle_ud, "VMFUNC (59)");
    /* Reasons hv never enables */
    static const uint32_t none[] = {EXIT_REASON_EXTERNAL_INTERRUPT, EXIT_REASON_HLT, EXIT_REASON_INTERRUPT_WINDOW,
                                    EXIT_REASON_PREEMPTION_TIMER, EXIT_REASON_MAX + 1, EXIT_REASON_MAX + 100,
                                    0xffff, 0x80000021u, 0xffffffffu};
    for (unsigned i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        CHECK(exit_handler_for(none[i]) == NULL, "reason %#x: want NULL", none[i]);
    CHECK(strcmp(exit_reason_name(EXIT_REASON_CPUID), "CPUID") == 0, "name of 10: %s",
          exit_reason_name(EXIT_REASON_CPUID));
    CHECK(strcmp(exit_reason_name(0xffff), "?") == 0, "name of 0xffff: %s", exit_reason_name(0xffff));
}

/* ---- vmexit_handler and CPUID ----------------------------------------------- */

static void test_cpuid_leaf1(void)
{
    struct cpuid_regs host = cpuid(1, 0);

    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0xffffffff00000001ull; /* upper half ignored, and cleared */
    v.rc.regs[HV_REG_RCX] = 0xffffffff00000000ull;
    fake_vmcs_set(GUEST_CR3, 0x1234000);
    run_ok(__func__);
    uint64_t ecx = v.rc.regs[HV_REG_RCX];
    CHECK(ecx & (1ull << 31), "CPUID.1:ECX %#llx: hypervisor-present bit 31 clear", ULL(ecx));
    CHECK(!(ecx & (1ull << 5)), "CPUID.1:ECX %#llx: VMX bit 5 set with hv.nested false", ULL(ecx));
    CHECK(ecx >> 32 == 0, "RCX upper half %#llx not cleared", ULL(ecx));
    CHECK(v.rc.regs[HV_REG_RAX] == host.eax, "CPUID.1:EAX %#llx, host %#x", ULL(v.rc.regs[HV_REG_RAX]), host.eax);
    CHECK(v.rc.regs[HV_REG_RDX] == host.edx, "CPUID.1:EDX %#llx, host %#x", ULL(v.rc.regs[HV_REG_RDX]), host.edx);
    check_rip_advanced(__func__);
    check_no_event(__func__);
    CHECK(v.stats.total == 1, "stats.total %llu", ULL(v.stats.total));
    CHECK(v.stats.by_reason[EXIT_REASON_CPUID] == 1, "stats.by_reason[10] %llu",
          ULL(v.stats.by_reason[EXIT_REASON_CPUID]));
    CHECK(v.stats.entry_failures == 0, "entry_failures %llu", ULL(v.stats.entry_failures));
    CHECK(fake_vmcs_write_count(GUEST_CR3) == 0, "GUEST_CR3 written %u times", fake_vmcs_write_count(GUEST_CR3));
    CHECK(fake_vmcs_get(GUEST_CR3) == 0x1234000, "GUEST_CR3 %#llx", ULL(fake_vmcs_get(GUEST_CR3)));
    CHECK(fake_vmcs_read_count(VM_EXIT_REASON) == 1, "VM_EXIT_REASON read %u times",
          fake_vmcs_read_count(VM_EXIT_REASON));
    CHECK(fake_vmcs_read_count(GUEST_RIP) == 1, "GUEST_RIP read %u times", fake_vmcs_read_count(GUEST_RIP));

    /* A second exit on the same vCPU adds up; with hv.nested, bit 5 is the host's. */
    fake_vmcs_reset();
    fake_vmcs_set(VM_EXIT_REASON, EXIT_REASON_CPUID);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, ILEN);
    fake_vmcs_set(GUEST_RIP, RIP0);
    v.rc.vmreads = v.rc.vmwrites = 0;
    v.rc.regs[HV_REG_RAX] = 1;
    v.rc.regs[HV_REG_RCX] = 0;
    hv.nested = true;
    cpuid_set_nested(true);
    run_ok("cpuid leaf 1, nested");
    ecx = v.rc.regs[HV_REG_RCX];
    CHECK((ecx & (1u << 5)) == (host.ecx & (1u << 5)), "nested: CPUID.1:ECX.VMX %#llx, host ECX %#x", ULL(ecx),
          host.ecx);
    CHECK(ecx & (1ull << 31), "nested: CPUID.1:ECX %#llx: bit 31 clear", ULL(ecx));
    CHECK(v.stats.total == 2 && v.stats.by_reason[EXIT_REASON_CPUID] == 2, "second exit: total %llu, cpuid %llu",
          ULL(v.stats.total), ULL(v.stats.by_reason[EXIT_REASON_CPUID]));
}

/* The masks themselves: the host CPU may lack VMX, which would hide a missing mask above. */
static void test_cpuid_masks(void)
{
    /* Before hv/virt.c decides: the safe default hides VMX (run first, before any setup()). */
    CHECK(cpuid1_ecx_and == ~(1u << 5), "default CPUID.1:ECX and-mask %#x, want VMX hidden", cpuid1_ecx_and);
    cpuid_set_nested(false);
    CHECK(!(cpuid1_ecx_and & (1u << 5)), "nested off: CPUID.1:ECX and-mask %#x keeps VMX", cpuid1_ecx_and);
    CHECK(cpuid1_ecx_and == ~(1u << 5), "nested off: and-mask %#x clears more than VMX", cpuid1_ecx_and);
    CHECK(cpuid1_ecx_or == 1u << 31, "or-mask %#x, want the hypervisor bit only", cpuid1_ecx_or);
    cpuid_set_nested(true);
    CHECK(cpuid1_ecx_and == ~0u, "nested on: and-mask %#x, want all ones", cpuid1_ecx_and);
    CHECK(cpuid1_ecx_or == 1u << 31, "nested on: or-mask %#x", cpuid1_ecx_or);
    cpuid_set_nested(false);
}

static void test_cpuid_leaf0_passthrough(void)
{
    struct cpuid_regs host = cpuid(0, 0);

    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0;
    run_ok(__func__);
    CHECK(v.rc.regs[HV_REG_RAX] == host.eax && v.rc.regs[HV_REG_RBX] == host.ebx &&
              v.rc.regs[HV_REG_RCX] == host.ecx && v.rc.regs[HV_REG_RDX] == host.edx,
          "CPUID.0 %#llx %#llx %#llx %#llx, host %#x %#x %#x %#x", ULL(v.rc.regs[HV_REG_RAX]),
          ULL(v.rc.regs[HV_REG_RBX]), ULL(v.rc.regs[HV_REG_RCX]), ULL(v.rc.regs[HV_REG_RDX]), host.eax, host.ebx,
          host.ecx, host.edx);
    check_rip_advanced(__func__);
}

static void test_cpuid_hv_leaves(void)
{
    char sig[13];

    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0x40000000;
    v.rc.regs[HV_REG_RBX] = 0xdeadbeefdeadbeefull;
    run_ok(__func__);
    uint32_t b = (uint32_t)v.rc.regs[HV_REG_RBX], c = (uint32_t)v.rc.regs[HV_REG_RCX],
             d = (uint32_t)v.rc.regs[HV_REG_RDX];
    memcpy(sig, &b, 4);
    memcpy(sig + 4, &c, 4);
    memcpy(sig + 8, &d, 4);
    sig[12] = '\0';
    CHECK(strcmp(sig, "hvhvhvhvhvhv") == 0, "signature \"%s\"", sig);
    CHECK(v.rc.regs[HV_REG_RBX] >> 32 == 0, "RBX upper half %#llx", ULL(v.rc.regs[HV_REG_RBX]));
    CHECK(v.rc.regs[HV_REG_RAX] == 0x40000001, "max hv leaf %#llx", ULL(v.rc.regs[HV_REG_RAX]));
    check_rip_advanced(__func__);

    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0x40000001;
    run_ok("cpuid 0x40000001");
    CHECK(v.rc.regs[HV_REG_RAX] == HV_VERSION_NUM, "0x40000001 EAX %#llx, want %#x", ULL(v.rc.regs[HV_REG_RAX]),
          HV_VERSION_NUM);
    check_rip_advanced("cpuid 0x40000001");

    /* Past hv's range: zeros, never the host's (a host hypervisor's) answer. */
    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0x40000010;
    v.rc.regs[HV_REG_RBX] = 0x1234;
    run_ok("cpuid 0x40000010");
    CHECK(v.rc.regs[HV_REG_RAX] == 0 && v.rc.regs[HV_REG_RBX] == 0 && v.rc.regs[HV_REG_RCX] == 0 &&
              v.rc.regs[HV_REG_RDX] == 0,
          "0x40000010: %#llx %#llx %#llx %#llx", ULL(v.rc.regs[HV_REG_RAX]), ULL(v.rc.regs[HV_REG_RBX]),
          ULL(v.rc.regs[HV_REG_RCX]), ULL(v.rc.regs[HV_REG_RDX]));
}

/* ---- fatal exits ------------------------------------------------------------ */

static void test_entry_failure(void)
{
    setup(VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE);
    bool reset = run();
    CHECK(reset, "VM-entry failure did not reach platform_reset");
    CHECK(v.stats.entry_failures == 1, "entry_failures %llu", ULL(v.stats.entry_failures));
    CHECK(v.stats.total == 1, "total %llu", ULL(v.stats.total));
    CHECK(v.stats.by_reason[EXIT_REASON_INVALID_STATE] == 1, "by_reason[33] %llu",
          ULL(v.stats.by_reason[EXIT_REASON_INVALID_STATE]));
    CHECK(dump_calls == 1, "guest state dumped %d times", dump_calls);
    CHECK(test_log_contains("VM entry failed") && test_log_contains("VM-entry failure"), "log: %s",
          test_log_text());
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 0, "GUEST_RIP written on a fatal exit");
}

static void test_unexpected_exits(void)
{
    static const uint32_t reasons[] = {EXIT_REASON_EXTERNAL_INTERRUPT, EXIT_REASON_HLT, EXIT_REASON_INTERRUPT_WINDOW,
                                       EXIT_REASON_PREEMPTION_TIMER, EXIT_REASON_MAX + 1, 0xffff};
    for (unsigned i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        setup(reasons[i]);
        bool reset = run();
        CHECK(reset, "exit reason %#x did not reach platform_reset", reasons[i]);
        CHECK(v.stats.entry_failures == 0 && v.stats.total == 1, "reason %#x: entry_failures %llu, total %llu",
              reasons[i], ULL(v.stats.entry_failures), ULL(v.stats.total));
        CHECK(test_log_contains("unexpected VM exit"), "reason %#x: log: %s", reasons[i], test_log_text());
        if (reasons[i] <= EXIT_REASON_MAX)
            CHECK(v.stats.by_reason[reasons[i]] == 1, "by_reason[%u] %llu", reasons[i],
                  ULL(v.stats.by_reason[reasons[i]]));
    }
    /* The statistics printed before the reset include this vCPU. */
    setup(EXIT_REASON_EXTERNAL_INTERRUPT);
    run();
    CHECK(test_log_contains("external interrupt"), "statistics/log lack the exit's name: %s", test_log_text());
}

static void test_triple_fault(void)
{
    setup(EXIT_REASON_TRIPLE_FAULT);
    bool reset = run();
    CHECK(reset, "triple fault did not reach platform_reset");
    CHECK(reset_why && strstr(reset_why, "triple fault"), "reset reason \"%s\"", reset_why ? reset_why : "(null)");
}

static void test_stub_handlers_dispatched(void)
{
    setup(EXIT_REASON_EPT_VIOLATION);
    run_ok("EPT violation");
    CHECK(ept_calls == 1 && mtf_calls == 0 && io_calls == 0, "EPT exit: ept %d mtf %d io %d", ept_calls, mtf_calls,
          io_calls);
    setup(EXIT_REASON_MONITOR_TRAP_FLAG);
    run_ok("MTF");
    CHECK(mtf_calls == 1 && ept_calls == 0 && io_calls == 0, "MTF exit: ept %d mtf %d io %d", ept_calls, mtf_calls,
          io_calls);
    setup(EXIT_REASON_IO_INSTRUCTION);
    run_ok("I/O");
    CHECK(io_calls == 1 && ept_calls == 0 && mtf_calls == 0, "I/O exit: ept %d mtf %d io %d", ept_calls, mtf_calls,
          io_calls);
}

/* ---- RDMSR / WRMSR ---------------------------------------------------------- */

static void test_rdmsr(void)
{
    rdmsr_exit(MSR_IA32_FEATURE_CONTROL);
    run_ok("rdmsr 0x3a");
    CHECK(v.rc.regs[HV_REG_RAX] == 1 && v.rc.regs[HV_REG_RDX] == 0,
          "FEATURE_CONTROL without nested: EDX:EAX %#llx:%#llx, want 0:1 (locked, no VMXON)",
          ULL(v.rc.regs[HV_REG_RDX]), ULL(v.rc.regs[HV_REG_RAX]));
    CHECK(rdmsr_calls == 0, "FEATURE_CONTROL read from the host (%d calls)", rdmsr_calls);
    check_rip_advanced("rdmsr 0x3a");
    check_no_event("rdmsr 0x3a");

    rdmsr_exit(MSR_IA32_FEATURE_CONTROL);
    hv.nested = true;
    run_ok("rdmsr 0x3a nested");
    CHECK(v.rc.regs[HV_REG_RAX] == 5 && v.rc.regs[HV_REG_RDX] == 0,
          "FEATURE_CONTROL with nested: EDX:EAX %#llx:%#llx, want 0:5", ULL(v.rc.regs[HV_REG_RDX]),
          ULL(v.rc.regs[HV_REG_RAX]));
    check_rip_advanced("rdmsr 0x3a nested");

    static const uint32_t caps[] = {MSR_IA32_VMX_BASIC, MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_CR0_FIXED0,
                                    MSR_IA32_VMX_CR4_FIXED1};
    for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        rdmsr_exit(caps[i]);
        msrs[0].msr = caps[i]; /* even if the CPU has it, the guest must not see it */
        run_ok("rdmsr vmx cap");
        check_gp("rdmsr vmx cap");
        CHECK(v.rc.regs[HV_REG_RAX] == 0xaaaaaaaaaaaaaaaaull && v.rc.regs[HV_REG_RDX] == 0xbbbbbbbbbbbbbbbbull,
              "rdmsr %#x after #GP: EDX:EAX changed", caps[i]);
    }

    rdmsr_exit(MSR_TEST_KNOWN);
    run_ok("rdmsr known");
    CHECK(v.rc.regs[HV_REG_RAX] == 0x9abcdef0 && v.rc.regs[HV_REG_RDX] == 0x12345678,
          "rdmsr 0x123456789abcdef0: EDX:EAX %#llx:%#llx", ULL(v.rc.regs[HV_REG_RDX]), ULL(v.rc.regs[HV_REG_RAX]));
    check_rip_advanced("rdmsr known");
    check_no_event("rdmsr known");

    rdmsr_exit(0x40000123); /* not an MSR of this CPU: RDMSR faults */
    run_ok("rdmsr unknown");
    CHECK(rdmsr_calls == 1, "safe_rdmsr called %d times", rdmsr_calls);
    check_gp("rdmsr unknown");
}

static void wrmsr_exit(uint32_t msr, uint64_t rdx, uint64_t rax)
{
    setup(EXIT_REASON_MSR_WRITE);
    v.rc.regs[HV_REG_RCX] = msr;
    v.rc.regs[HV_REG_RAX] = rax;
    v.rc.regs[HV_REG_RDX] = rdx;
}

static void test_wrmsr(void)
{
    wrmsr_exit(MSR_IA32_FEATURE_CONTROL, 0, 5);
    run_ok("wrmsr 0x3a");
    check_gp("wrmsr 0x3a");
    CHECK(wrmsr_calls == 0, "FEATURE_CONTROL written to the host (%d calls)", wrmsr_calls);

    wrmsr_exit(MSR_IA32_VMX_BASIC, 0, 0);
    run_ok("wrmsr 0x480");
    check_gp("wrmsr 0x480");
    CHECK(wrmsr_calls == 0, "VMX_BASIC written to the host (%d calls)", wrmsr_calls);

    /* Upper halves of RAX/RDX are ignored by WRMSR. */
    wrmsr_exit(MSR_TEST_KNOWN, 0xffffffff11223344ull, 0xffffffff55667788ull);
    run_ok("wrmsr known");
    CHECK(msrs[2].val == 0x1122334455667788ull, "MSR value %#llx, want 0x1122334455667788", ULL(msrs[2].val));
    check_rip_advanced("wrmsr known");
    check_no_event("wrmsr known");

    wrmsr_exit(MSR_IA32_MTRRCAP, 0, 0); /* read-only: the CPU refuses */
    run_ok("wrmsr read-only");
    check_gp("wrmsr read-only");

    wrmsr_exit(0x40000123, 0, 0);
    run_ok("wrmsr unknown");
    check_gp("wrmsr unknown");
}

/* ---- VMCALL ------------------------------------------------------------------ */

static void vmcall_exit(unsigned cpl, uint64_t fn)
{
    setup(EXIT_REASON_VMCALL);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(cpl));
    v.rc.regs[HV_REG_RAX] = fn;
    v.rc.regs[HV_REG_RBX] = 0x5555;
}

static void test_vmcall(void)
{
    vmcall_exit(3, HV_HC_VERSION);
    run_ok("vmcall cpl3");
    check_ud("vmcall cpl3");
    CHECK(v.rc.regs[HV_REG_RAX] == HV_HC_VERSION && v.rc.regs[HV_REG_RBX] == 0x5555, "cpl3: RAX %#llx RBX %#llx",
          ULL(v.rc.regs[HV_REG_RAX]), ULL(v.rc.regs[HV_REG_RBX]));

    vmcall_exit(1, HV_HC_VERSION);
    run_ok("vmcall cpl1");
    check_ud("vmcall cpl1");

    vmcall_exit(0, HV_HC_VERSION);
    run_ok("vmcall version");
    check_no_event("vmcall version");
    CHECK(v.rc.regs[HV_REG_RAX] == HV_VERSION_NUM, "version: RAX %#llx, want %#x", ULL(v.rc.regs[HV_REG_RAX]),
          HV_VERSION_NUM);
    CHECK(v.rc.regs[HV_REG_RBX] == 0x76687668, "version: RBX %#llx, want 0x76687668", ULL(v.rc.regs[HV_REG_RBX]));
    check_rip_advanced("vmcall version");

    vmcall_exit(0, HV_HC_GET_EXITS);
    v.stats.total = 41;
    run_ok("vmcall get exits");
    CHECK(v.rc.regs[HV_REG_RAX] == 42, "get exits: RAX %llu, want 42 (this exit included)",
          ULL(v.rc.regs[HV_REG_RAX]));
    check_rip_advanced("vmcall get exits");

    vmcall_exit(0, HV_HC_PRINT_STATS);
    run_ok("vmcall print stats");
    CHECK(v.rc.regs[HV_REG_RAX] == 0, "print stats: RAX %#llx", ULL(v.rc.regs[HV_REG_RAX]));
    CHECK(test_log_contains("exit statistics (hypercall)") && test_log_contains("VMCALL 1"),
          "print stats: log: %s", test_log_text());
    check_rip_advanced("vmcall print stats");

    vmcall_exit(0, 0x12345);
    run_ok("vmcall unknown");
    check_no_event("vmcall unknown");
    CHECK(v.rc.regs[HV_REG_RAX] == (uint64_t)-1, "unknown: RAX %#llx, want -1", ULL(v.rc.regs[HV_REG_RAX]));
    check_rip_advanced("vmcall unknown");
}

/* ---- XSETBV, GETSEC, VMX instructions --------------------------------------- */

static void xsetbv_exit(unsigned cpl)
{
    setup(EXIT_REASON_XSETBV);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(cpl));
    v.rc.regs[HV_REG_RCX] = 0;
    v.rc.regs[HV_REG_RAX] = 0xffffffff00000007ull;
    v.rc.regs[HV_REG_RDX] = 0xffffffff00000000ull;
}

static void test_xsetbv(void)
{
    xsetbv_exit(3);
    run_ok("xsetbv cpl3");
    check_gp("xsetbv cpl3");
    CHECK(xsetbv_calls == 0, "xsetbv executed for CPL 3");

    xsetbv_exit(0);
    xsetbv_fails = true;
    run_ok("xsetbv refused");
    check_gp("xsetbv refused");
    CHECK(xsetbv_calls == 1, "safe_xsetbv called %d times", xsetbv_calls);

    xsetbv_exit(0);
    run_ok("xsetbv ok");
    check_no_event("xsetbv ok");
    CHECK(xsetbv_calls == 1 && xsetbv_xcr == 0 && xsetbv_val == 7, "xsetbv(%u, %#llx), %d calls; want (0, 7)",
          xsetbv_xcr, ULL(xsetbv_val), xsetbv_calls);
    check_rip_advanced("xsetbv ok");
}

static void test_ud_exits(void)
{
    static const uint32_t reasons[] = {EXIT_REASON_GETSEC, EXIT_REASON_VMXON, EXIT_REASON_VMCLEAR,
                                       EXIT_REASON_VMLAUNCH, EXIT_REASON_VMREAD, EXIT_REASON_INVEPT,
                                       EXIT_REASON_VMFUNC};
    for (unsigned i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "#UD exit %u", reasons[i]);
        setup(reasons[i]);
        run_ok(name);
        check_ud(name);
    }
}

/* ---- MSRs the VMCS switches: the guest's fields, never hv's registers --------- */

/* An L2 reaches these only when L1's MSR bitmap changed while it ran (hv merged it at
 * entry): hv performs the access on L2's state, as the CPU would have without an exit. */
static void l2_msr(void)
{
    static struct vmcs12 c;
    memset(&c, 0, sizeof(c));
    v.nested.cache = &c;
    v.nested.guest_mode = true;
    l2_exit_result = false;
}

static void test_vmcs_msrs(void)
{
    /* WRMSR GS_BASE: into GUEST_GS_BASE (hv's GS_BASE is its per-CPU pointer). */
    wrmsr_exit(MSR_IA32_GS_BASE, 0xffff8880, 0x12345000);
    l2_msr();
    run_ok("L2 wrmsr GS_BASE");
    check_rip_advanced("L2 wrmsr GS_BASE");
    CHECK(fake_vmcs_get(GUEST_GS_BASE) == 0xffff888012345000ull && wrmsr_calls == 0,
          "GS_BASE: guest field %#llx, %d host WRMSRs", ULL(fake_vmcs_get(GUEST_GS_BASE)), wrmsr_calls);

    rdmsr_exit(MSR_IA32_GS_BASE);
    l2_msr();
    fake_vmcs_set(GUEST_GS_BASE, 0xffff888000001000ull);
    run_ok("L2 rdmsr GS_BASE");
    CHECK(v.rc.regs[HV_REG_RAX] == 0x1000 && v.rc.regs[HV_REG_RDX] == 0xffff8880 && rdmsr_calls == 0,
          "RDMSR GS_BASE: %#llx:%#llx, %d host RDMSRs", ULL(v.rc.regs[HV_REG_RDX]), ULL(v.rc.regs[HV_REG_RAX]),
          rdmsr_calls);

    static const struct { uint32_t msr; uint64_t val; bool ok; const char *what; } w[] = {
        {MSR_IA32_FS_BASE, 0x0000800000000000ull, false, "non-canonical FS base"},
        {MSR_IA32_SYSENTER_EIP, 0xffff800000001000ull, true, "canonical SYSENTER_EIP"},
        {MSR_IA32_EFER, EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE | (1ull << 1), false, "EFER reserved bit 1"},
        {MSR_IA32_EFER, EFER_SCE | EFER_LMA, false, "EFER.LME cleared while paging"},
        {MSR_IA32_EFER, EFER_LME | EFER_NXE, true, "EFER SCE off (LMA read-only, kept)"},
        {MSR_IA32_PAT, 0x0007040600070402ull, false, "PAT type 2"},
        {MSR_IA32_PAT, 0x0007040600070406ull, true, "PAT"},
        {MSR_IA32_DEBUGCTL, 1ull << 2, false, "DEBUGCTL reserved bit 2"},
    };
    for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        wrmsr_exit(w[i].msr, w[i].val >> 32, (uint32_t)w[i].val);
        l2_msr();
        fake_vmcs_set(GUEST_CR0, 0x80000031);
        fake_vmcs_set(GUEST_IA32_EFER, EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE);
        run_ok(w[i].what);
        uint32_t field = vmcs_guest_msr_field(w[i].msr);
        if (w[i].ok) {
            check_rip_advanced(w[i].what);
            uint64_t want = w[i].msr == MSR_IA32_EFER ? (w[i].val | EFER_LMA) : w[i].val;
            CHECK(fake_vmcs_get(field) == want, "%s: field %#llx, want %#llx", w[i].what, ULL(fake_vmcs_get(field)),
                  ULL(want));
        } else {
            check_gp(w[i].what);
        }
        CHECK(wrmsr_calls == 0, "%s: the host register was written", w[i].what);
    }
    v.nested.guest_mode = false;
}

/* A VM entry the CPU refuses: fatal for hv's own guest, L1's VMfail when it was vmcs02. */
static void test_vmresume_failed(void)
{
    setup(EXIT_REASON_CPUID);
    fake_vmcs_set(VM_INSTRUCTION_ERROR, 7);
    hw_refused_calls = 0;
    v.nested.guest_mode = true;
    v.launch_pending = true;
    struct vcpu *r = NULL;
    if (setjmp(reset_jmp) == 0) {
        reset_armed = true;
        r = vmresume_failed(&v);
        reset_armed = false;
    }
    reset_armed = false;
    CHECK(r == &v && hw_refused_calls == 1 && hw_refused_err == 7 && !v.launch_pending,
          "refused vmcs02: back to L1 with error 7 (r %p, calls %d, err %u)", (void *)r, hw_refused_calls,
          hw_refused_err);
    v.nested.guest_mode = false;
    hw_refused_calls = 0;
    bool reset = false;
    if (setjmp(reset_jmp) == 0) {
        reset_armed = true;
        vmresume_failed(&v);
        reset_armed = false;
    } else {
        reset = true;
    }
    reset_armed = false;
    CHECK(reset && hw_refused_calls == 0, "refused vmcs01: platform reset, not a nested VMfail");
}

int main(void)
{
    test_log_capture();
    test_cpuid_masks();
    test_dispatch_table();
    test_cpuid_leaf1();
    test_cpuid_leaf0_passthrough();
    test_cpuid_hv_leaves();
    test_entry_failure();
    test_unexpected_exits();
    test_triple_fault();
    test_stub_handlers_dispatched();
    test_rdmsr();
    test_wrmsr();
    test_vmcall();
    test_xsetbv();
    test_ud_exits();
    test_vmcs_msrs();
    test_vmresume_failed();
    return test_summary();
}
