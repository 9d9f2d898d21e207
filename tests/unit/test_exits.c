/*
 * Host tests for the VM-exit dispatch (hv/exit.c) and the handlers of
 * hv/exit_cpuid.c, exit_msr.c, exit_cr.c, exit_misc.c and exit_init.c.
 *
 * Every VMCS access goes to tests/unit/fake_vmcs.c. What cannot run on the
 * host is stubbed below: platform_reset longjmps back to the test, the MSR and
 * XSETBV accessors are table-driven fakes, the EPT/MTF/I/O handlers only count
 * their calls. handle_invd (WBINVD) is never called. CPUID runs for real: only
 * the bits hv controls are checked.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "hv/exit.h"
#include "hv/host.h"
#include "hv/hypercall.h"
#include "hv/vmcs01.h"
#include "hv/version.h"
#include "nested/ept02.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/vmx_bits.h"
#include "tests/unit/fake_vmcs.h"
#include "tests/unit/test_util.h"

#define ULL(x) ((unsigned long long)(x))

/* The entry point the exit stub calls (hv/entry.asm); no header declares it. */
struct vcpu *vmexit_handler(struct vcpu *v);

struct hv_global hv;

/* CPUID.1:ECX masks shared with the assembly fast path (hv/exit_cpuid.c, hv/entry.asm). */
extern uint32_t cpuid1_ecx_and, cpuid1_ecx_or;

/* ---- stubs ------------------------------------------------------------------ */

static jmp_buf reset_jmp;
static bool reset_armed;
static int reset_calls;
static const char *reset_why;
static int dump_calls;

__attribute__((noreturn)) void platform_reset(const char *why)
{
    reset_calls++;
    reset_why = why;
    if (!reset_armed) {
        fprintf(stderr, "FAIL: platform_reset(\"%s\") outside a test run\n", why);
        abort();
    }
    longjmp(reset_jmp, 1);
}

void vmcs01_dump_guest(struct vcpu *v) { dump_calls++; }
static int hw_refused_calls;
static uint32_t hw_refused_err;
void nested_hw_refused(struct nested_vcpu *nv, uint32_t err) { hw_refused_calls++, hw_refused_err = err; }
/* EPT12 walks are tested in test_ept02; the CR handlers here never run an L2 on L1's EPT. */
enum ept12_status ept12_walk(const struct ept02 *e, uint64_t l2_gpa, struct ept12_walk *w)
{
    w->status = EPT12_NOT_PRESENT;
    return EPT12_NOT_PRESENT;
}

static int ept_calls, mtf_calls, io_calls;
void handle_ept_violation(struct vcpu *v) { ept_calls++; }
void handle_mtf(struct vcpu *v) { mtf_calls++; }
void handle_io(struct vcpu *v) { io_calls++; }
/* nested/ is tested on its own (test_vmcs12, test_nested_checks); here it is stubbed. */
static int vmx_insn_calls, l2_exit_calls;
void nested_handle_vmx_insn(struct nested_vcpu *nv, uint32_t reason) { vmx_insn_calls++; }
bool nested_l2_exit(struct nested_vcpu *nv, uint32_t reason) { l2_exit_calls++; return true; }
/* Guest memory: the one page a test maps as "RAM" (see test_cr0_pae_loads_pdptrs). */
bool hv_gpa_is_ram(uint64_t gpa, uint64_t len);
bool hv_gpa_is_ram(uint64_t gpa, uint64_t len) { return gpa >= 0x10000000 && gpa + len <= 0x10001000; }

/* MSRs the fake "CPU" knows. MTRRCAP is read-only: WRMSR to it faults. */
#define MSR_TEST_KNOWN 0x4b564d00u /* outside the bitmap's ranges: always exits */
static struct fake_msr {
    uint32_t msr;
    uint64_t val;
    bool ro;
} msrs[4];
static int rdmsr_calls, wrmsr_calls;

static void msrs_reset(void)
{
    msrs[0] = (struct fake_msr){MSR_IA32_APIC_BASE, 0xfee00900ull, false};
    msrs[1] = (struct fake_msr){MSR_IA32_PAT, 0x0007040600070406ull, false};
    msrs[2] = (struct fake_msr){MSR_TEST_KNOWN, 0x123456789abcdef0ull, false};
    msrs[3] = (struct fake_msr){MSR_IA32_MTRRCAP, 0x508ull, true};
    rdmsr_calls = wrmsr_calls = 0;
}

static struct fake_msr *msr_find(uint32_t msr)
{
    for (unsigned i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++)
        if (msrs[i].msr == msr)
            return &msrs[i];
    return NULL;
}

int safe_rdmsr(uint32_t msr, uint64_t *val)
{
    struct fake_msr *m = msr_find(msr);

    rdmsr_calls++;
    if (!m)
        return -1;
    *val = m->val;
    return 0;
}

int safe_wrmsr(uint32_t msr, uint64_t val)
{
    struct fake_msr *m = msr_find(msr);

    wrmsr_calls++;
    if (!m || m->ro)
        return -1;
    m->val = val;
    return 0;
}

static bool xsetbv_fails;
static int xsetbv_calls;
static uint32_t xsetbv_xcr;
static uint64_t xsetbv_val;

int safe_xsetbv(uint32_t xcr, uint64_t val)
{
    xsetbv_calls++;
    xsetbv_xcr = xcr;
    xsetbv_val = val;
    return xsetbv_fails ? -1 : 0;
}

/* ---- harness ---------------------------------------------------------------- */

#define RIP0 0xffffffff81001000ull
#define ILEN 3
#define AR_CPL(cpl) (0x93u | ((cpl) << 5)) /* SS access rights: DPL is the CPL */
#define GP_INFO 0x80000b0du                /* valid, hardware exception, error code, #GP */
#define UD_INFO 0x80000306u                /* valid, hardware exception, #UD */
#define NMI_INFO 0x80000202u               /* valid, NMI, vector 2 */

static struct vcpu v;

/* A vCPU that has just taken a VM exit with this (full) exit reason. */
static void setup(uint32_t reason)
{
    fake_vmcs_reset();
    regcache_warn_reset();
    test_log_clear();
    memset(&v, 0, sizeof(v));
    regcache_init(&v.rc, true);
    memset(&hv, 0, sizeof(hv));
    hv.nested = false;
    cpuid_set_nested(hv.nested); /* as hv/virt.c does */
    hv.msrs.cr0_fixed0 = 0x80000021; /* Bochs-like */
    hv.msrs.cr0_fixed1 = 0xffffffff;
    hv.msrs.cr4_fixed0 = 0x2000;
    hv.msrs.cr4_fixed1 = 0x3767ff;
    hv.vcpus[0] = &v;
    hv.nvcpus = 1;
    msrs_reset();
    reset_calls = dump_calls = 0;
    reset_why = NULL;
    ept_calls = mtf_calls = io_calls = 0;
    xsetbv_fails = false;
    xsetbv_calls = 0;
    xsetbv_xcr = 0;
    xsetbv_val = 0;
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, ILEN);
    fake_vmcs_set(GUEST_RIP, RIP0);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(0));
    fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11ff); /* IA-32e mode guest (bit 9) clear */
}

/* Run vmexit_handler; true if it reached platform_reset. */
static bool run(void)
{
    if (setjmp(reset_jmp) == 0) {
        reset_armed = true;
        struct vcpu *r = vmexit_handler(&v);
        reset_armed = false;
        CHECK(r == &v, "vmexit_handler returned %p, not its vcpu %p", (void *)r, (void *)&v);
        return false;
    }
    reset_armed = false;
    return true;
}

/* Run an exit that must be handled (no reset); check the access accounting. */
static void run_ok(const char *test)
{
    bool reset = run();

    CHECK(!reset, "%s: platform_reset(\"%s\") reached", test, reset_why ? reset_why : "?");
    /* Handlers count every VMCS access through vm_read/vm_write or the cache. */
    CHECK(v.rc.vmreads == fake_vmcs_reads && v.rc.vmwrites == fake_vmcs_writes,
          "%s: counted %llu/%llu VMREAD/VMWRITE, fake saw %llu/%llu", test, ULL(v.rc.vmreads),
          ULL(v.rc.vmwrites), ULL(fake_vmcs_reads), ULL(fake_vmcs_writes));
    CHECK(fake_vmcs_ro_writes == 0 && fake_vmcs_bad_fields == 0, "%s: %llu read-only writes, %llu bad fields",
          test, ULL(fake_vmcs_ro_writes), ULL(fake_vmcs_bad_fields));
    CHECK(v.rc.dirty == 0, "%s: registers left dirty after the flush: %#llx", test, ULL(v.rc.dirty));
}

static void check_rip_advanced(const char *test)
{
    uint64_t rip = fake_vmcs_get(GUEST_RIP);

    CHECK(rip == RIP0 + ILEN, "%s: rip %#llx, want %#llx", test, ULL(rip), ULL(RIP0 + ILEN));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 1, "%s: GUEST_RIP written %u times", test,
          fake_vmcs_write_count(GUEST_RIP));
}

static void check_rip_unchanged(const char *test)
{
    uint64_t rip = fake_vmcs_get(GUEST_RIP);

    CHECK(rip == RIP0, "%s: rip %#llx, want it unchanged at %#llx", test, ULL(rip), ULL(RIP0));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 0, "%s: GUEST_RIP written %u times", test,
          fake_vmcs_write_count(GUEST_RIP));
}

static void check_gp(const char *test)
{
    uint64_t info = fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD);

    CHECK(info == GP_INFO, "%s: entry interruption info %#llx, want #GP %#x", test, ULL(info), GP_INFO);
    CHECK(fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE) == 1 &&
              fake_vmcs_get(VM_ENTRY_EXCEPTION_ERROR_CODE) == 0,
          "%s: error code written %u times, value %#llx (want once, 0)", test,
          fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE), ULL(fake_vmcs_get(VM_ENTRY_EXCEPTION_ERROR_CODE)));
    check_rip_unchanged(test);
}

static void check_ud(const char *test)
{
    uint64_t info = fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD);

    CHECK(info == UD_INFO, "%s: entry interruption info %#llx, want #UD %#x", test, ULL(info), UD_INFO);
    CHECK(fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE) == 0, "%s: #UD has no error code, written %u times",
          test, fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE));
    check_rip_unchanged(test);
}

static void check_no_event(const char *test)
{
    CHECK(fake_vmcs_write_count(VM_ENTRY_INTR_INFO_FIELD) == 0, "%s: event injected: %#llx", test,
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
}

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
    /* VMCLEAR..VMXON, INVEPT, INVVPID: nested VMX (handle_vmx_insn: #UD when nested is off);
     * VMFUNC: #UD, hv offers no VM functions */
    static const uint32_t vmx_insns[] = {19, 20, 21, 22, 23, 24, 25, 26, 27, 50, 53};
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

static void rdmsr_exit(uint32_t msr)
{
    setup(EXIT_REASON_MSR_READ);
    v.rc.regs[HV_REG_RCX] = msr;
    v.rc.regs[HV_REG_RAX] = 0xaaaaaaaaaaaaaaaaull;
    v.rc.regs[HV_REG_RDX] = 0xbbbbbbbbbbbbbbbbull;
}

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

/* ---- MOV to CR0 / CR4 ------------------------------------------------------- */

/* MOV CRn, GPR: exit qualification bits 3:0 CR, 5:4 type 0, 11:8 GPR (SDM Table 28-3). */
static void cr_exit(unsigned cr, enum hv_reg gpr, uint64_t val)
{
    setup(EXIT_REASON_CR_ACCESS);
    fake_vmcs_set(EXIT_QUALIFICATION, cr | ((uint64_t)gpr << 8));
    if (gpr == HV_REG_RSP)
        fake_vmcs_set(GUEST_RSP, val);
    else
        v.rc.regs[gpr] = val;
}

/* Protected mode without paging: shadow and real CR0. */
static void guest_cr0(uint64_t shadow, uint64_t real, uint64_t efer, uint64_t cr4)
{
    fake_vmcs_set(CR0_READ_SHADOW, shadow);
    fake_vmcs_set(GUEST_CR0, real);
    fake_vmcs_set(GUEST_IA32_EFER, efer);
    fake_vmcs_set(GUEST_CR4, cr4);
    fake_vmcs_set(CR4_READ_SHADOW, cr4 & ~CR4_VMXE);
    if (efer & EFER_LMA)
        fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11ff | VM_ENTRY_IA32E_MODE);
}

static void check_cr0_unchanged(const char *test, uint64_t shadow, uint64_t real)
{
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == shadow && fake_vmcs_get(GUEST_CR0) == real,
          "%s: shadow %#llx real %#llx changed", test, ULL(fake_vmcs_get(CR0_READ_SHADOW)),
          ULL(fake_vmcs_get(GUEST_CR0)));
}

static void test_cr0_invalid(void)
{
    cr_exit(0, HV_REG_RAX, CR0_PG | 0x30); /* PG without PE */
    guest_cr0(0x11, 0x31, 0, 0x2000);
    run_ok("cr0 PG without PE");
    check_gp("cr0 PG without PE");
    check_cr0_unchanged("cr0 PG without PE", 0x11, 0x31);

    cr_exit(0, HV_REG_RBX, CR0_NW | 0x31); /* NW without CD */
    guest_cr0(0x11, 0x31, 0, 0x2000);
    run_ok("cr0 NW without CD");
    check_gp("cr0 NW without CD");
    check_cr0_unchanged("cr0 NW without CD", 0x11, 0x31);

    /* In long mode all 64 bits count: bits 63:32 must be 0. */
    cr_exit(0, HV_REG_R13, (1ull << 32) | 0x80000011);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, 0x2020);
    run_ok("cr0 high bits in long mode");
    check_gp("cr0 high bits in long mode");
    check_cr0_unchanged("cr0 high bits in long mode", 0x80000031, 0x80000031);
}

static void test_cr0_normal_write(void)
{
    cr_exit(0, HV_REG_RCX, 0x11); /* clear NE: the guest sees 0x11, hardware keeps NE */
    guest_cr0(0x31, 0x31, 0, 0x2000);
    run_ok(__func__);
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x11, "shadow %#llx, want 0x11", ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == (0x11 | CR0_NE), "GUEST_CR0 %#llx, want 0x31", ULL(fake_vmcs_get(GUEST_CR0)));
    CHECK(fake_vmcs_write_count(GUEST_IA32_EFER) == 0 && fake_vmcs_write_count(VM_ENTRY_CONTROLS) == 0,
          "EFER/entry controls written without a PG change");
    check_rip_advanced(__func__);
    check_no_event(__func__);

    /* CD|NW are legal together; the source register can be RSP (from GUEST_RSP). */
    cr_exit(0, HV_REG_RSP, 0x60000011);
    guest_cr0(0x31, 0x31, 0, 0x2000);
    run_ok("cr0 from rsp");
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x60000011, "from RSP: shadow %#llx",
          ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x60000031, "from RSP: GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 from rsp");

    /* Outside long mode the operand is 32 bits: the GPR's upper half is ignored. */
    cr_exit(0, HV_REG_R15, 0xdeadbeef00000011ull);
    guest_cr0(0x31, 0x31, 0, 0x2000);
    run_ok("cr0 32-bit guest");
    check_no_event("cr0 32-bit guest");
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x11, "32-bit: shadow %#llx", ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x31, "32-bit: GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 32-bit guest");
}

static void test_cr0_long_mode(void)
{
    /* Entering IA-32e mode: LME set, CR4.PAE set, MOV CR0 with PG. */
    cr_exit(0, HV_REG_RAX, 0x80000011);
    guest_cr0(0x31, 0x31, EFER_LME, CR4_PAE | CR4_VMXE);
    run_ok("cr0 enter long mode");
    check_no_event("cr0 enter long mode");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == (EFER_LME | EFER_LMA), "EFER %#llx, want LME|LMA",
          ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(fake_vmcs_get(VM_ENTRY_CONTROLS) == (0x11ff | VM_ENTRY_IA32E_MODE), "entry controls %#llx, want %#x",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)), 0x11ff | VM_ENTRY_IA32E_MODE);
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x80000011 && fake_vmcs_get(GUEST_CR0) == 0x80000031,
          "shadow %#llx GUEST_CR0 %#llx", ULL(fake_vmcs_get(CR0_READ_SHADOW)), ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 enter long mode");

    /* PG with LME but without CR4.PAE: #GP, nothing changes. */
    cr_exit(0, HV_REG_RAX, 0x80000011);
    guest_cr0(0x31, 0x31, EFER_LME, CR4_VMXE);
    run_ok("cr0 PG without PAE");
    check_gp("cr0 PG without PAE");
    check_cr0_unchanged("cr0 PG without PAE", 0x31, 0x31);
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == EFER_LME && fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff,
          "after #GP: EFER %#llx entry %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)),
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));

    /* PG without LME: 32-bit paging, no IA-32e mode. */
    cr_exit(0, HV_REG_RAX, 0x80000011);
    guest_cr0(0x31, 0x31, 0, CR4_VMXE);
    run_ok("cr0 PG without LME");
    check_no_event("cr0 PG without LME");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == 0 && fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff,
          "32-bit paging: EFER %#llx entry %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)),
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x80000031, "32-bit paging: GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));

    /* Leaving IA-32e mode (from compatibility mode): clearing PG clears LMA and the entry control. */
    cr_exit(0, HV_REG_RDX, 0x11);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok("cr0 leave long mode");
    check_no_event("cr0 leave long mode");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == EFER_LME, "EFER %#llx, want LME only",
          ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff, "entry controls %#llx, want 0x11ff",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x11 && fake_vmcs_get(GUEST_CR0) == 0x31, "shadow %#llx GUEST_CR0 %#llx",
          ULL(fake_vmcs_get(CR0_READ_SHADOW)), ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 leave long mode");
}

/*
 * hv does not own CR0.PG (cr0_mask excludes PE/PG), so the guest turns paging on
 * and off without exits and CR0_READ_SHADOW.PG goes stale. Example, Linux's
 * 64-bit AP trampoline after INIT (shadow 0x60000010): "mov CR0_STATE & ~PG"
 * exits (NE changes) and leaves shadow.PG = 0, then "mov CR0_STATE" enables
 * paging (and the CPU sets LMA) without an exit. A later exiting write that
 * clears PG must still leave IA-32e mode: the current PG is GUEST_CR0's.
 */
static void test_cr0_pg_from_guest_cr0(void)
{
    cr_exit(0, HV_REG_RAX, 0x11); /* NE differs from the shadow: exits */
    guest_cr0(0x31 /* PG stale */, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok(__func__);
    check_no_event(__func__);
    CHECK(!(fake_vmcs_get(GUEST_IA32_EFER) & EFER_LMA),
          "PG cleared while shadow.PG was stale: EFER %#llx still has LMA (VM entry would fail: "
          "IA-32e mode with CR0.PG=0)",
          ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(!(fake_vmcs_get(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE),
          "PG cleared while shadow.PG was stale: entry controls %#llx still IA-32e mode",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x31, "GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
}

/*
 * With EPT, a VM entry into PAE paging (CR0.PG=1, CR4.PAE=1, EFER.LMA=0) loads the
 * PDPTEs from GUEST_PDPTR0-3 (SDM 26.3.2.4), which the CPU saved at the exit only
 * if PAE paging was already on (else undefined). A MOV to CR0 that enables PAE
 * paging and exits (because NE changes, e.g. i386 Linux's startup_32_smp after
 * INIT) must therefore load the four PDPTEs from guest CR3, as the instruction
 * would (KVM: load_pdptrs). Guest memory is identity-mapped (EPT 1:1), so the
 * test puts the PDPT at a low fixed address.
 */
static void test_cr0_pae_loads_pdptrs(void)
{
    const uint64_t pdpt_pa = 0x10000000;
    const uint64_t pdpte[4] = {0x1001, 0x2001, 0x3001, 0x4001};
    void *page = mmap((void *)(uintptr_t)pdpt_pa, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    bool mapped = page == (void *)(uintptr_t)pdpt_pa;

    if (mapped)
        memcpy(page, pdpte, sizeof(pdpte));
    cr_exit(0, HV_REG_RAX, 0x80000031);
    guest_cr0(0x11, 0x31, 0, CR4_PAE | CR4_VMXE);
    fake_vmcs_set(GUEST_CR3, pdpt_pa);
    for (int i = 0; i < 4; i++)
        fake_vmcs_set(GUEST_PDPTR0 + 2 * i, 0xbad0000000000bad); /* undefined after the exit */
    run_ok(__func__);
    check_no_event(__func__);
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x80000031, "GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    for (int i = 0; i < 4; i++) {
        uint64_t got = fake_vmcs_get(GUEST_PDPTR0 + 2 * i);
        if (mapped)
            CHECK(got == pdpte[i], "PAE paging enabled by an emulated MOV CR0: GUEST_PDPTR%d %#llx, want PDPTE %#llx",
                  i, ULL(got), ULL(pdpte[i]));
        else
            CHECK(fake_vmcs_write_count(GUEST_PDPTR0 + 2 * i) == 1,
                  "PAE paging enabled by an emulated MOV CR0: GUEST_PDPTR%d not written (%#llx)", i, ULL(got));
    }
    if (page != MAP_FAILED)
        munmap(page, 4096);
}

static void test_cr4(void)
{
    cr_exit(4, HV_REG_RAX, CR4_PAE | CR4_VMXE);
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    run_ok("cr4 VMXE");
    check_gp("cr4 VMXE");
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == CR4_PAE && fake_vmcs_get(GUEST_CR4) == (CR4_PAE | CR4_VMXE),
          "after #GP: shadow %#llx GUEST_CR4 %#llx", ULL(fake_vmcs_get(CR4_READ_SHADOW)),
          ULL(fake_vmcs_get(GUEST_CR4)));

    cr_exit(4, HV_REG_RSI, 0x6f0); /* PSE PAE MCE PGE OSFXSR OSXMMEXCPT */
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    run_ok("cr4 normal");
    check_no_event("cr4 normal");
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == 0x6f0, "shadow %#llx, want 0x6f0", ULL(fake_vmcs_get(CR4_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR4) == (0x6f0 | CR4_VMXE), "GUEST_CR4 %#llx, want 0x26f0",
          ULL(fake_vmcs_get(GUEST_CR4)));
    check_rip_advanced("cr4 normal");

    cr_exit(4, HV_REG_RAX, CR4_PAE | CR4_VMXE);
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    hv.nested = true;
    run_ok("cr4 VMXE nested");
    check_no_event("cr4 VMXE nested");
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == (CR4_PAE | CR4_VMXE), "nested: shadow %#llx",
          ULL(fake_vmcs_get(CR4_READ_SHADOW)));

    cr_exit(4, HV_REG_RAX, CR4_PAE | (1ull << 12)); /* LA57: not in this CPU's CR4_FIXED1 */
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    run_ok("cr4 unsupported bit");
    check_gp("cr4 unsupported bit");

    cr_exit(4, HV_REG_RAX, 1ull << 32);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok("cr4 high bit");
    check_gp("cr4 high bit");

    cr_exit(4, HV_REG_RAX, 0x690); /* PAE off in long mode */
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok("cr4 PAE off in long mode");
    check_gp("cr4 PAE off in long mode");
}

static void test_cr_unexpected(void)
{
    setup(EXIT_REASON_CR_ACCESS);
    fake_vmcs_set(EXIT_QUALIFICATION, 3); /* MOV to CR3: hv never enables CR3-load exiting */
    CHECK(run(), "MOV to CR3 exit did not reach platform_reset");
    setup(EXIT_REASON_CR_ACCESS);
    fake_vmcs_set(EXIT_QUALIFICATION, 0 | (1 << 4)); /* MOV from CR0 */
    CHECK(run(), "MOV from CR0 exit did not reach platform_reset");
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

/* ---- INIT / SIPI ------------------------------------------------------------- */

static void check_seg(const char *name, uint32_t sel_f, uint32_t base_f, uint32_t limit_f, uint32_t ar_f,
                      uint64_t sel, uint64_t base, uint64_t limit, uint64_t ar)
{
    CHECK(fake_vmcs_get(sel_f) == sel && fake_vmcs_get(base_f) == base && fake_vmcs_get(limit_f) == limit &&
              fake_vmcs_get(ar_f) == ar,
          "INIT %s: sel %#llx base %#llx limit %#llx ar %#llx, want %#llx %#llx %#llx %#llx", name,
          ULL(fake_vmcs_get(sel_f)), ULL(fake_vmcs_get(base_f)), ULL(fake_vmcs_get(limit_f)),
          ULL(fake_vmcs_get(ar_f)), ULL(sel), ULL(base), ULL(limit), ULL(ar));
}

static void test_init(void)
{
    static const struct {
        const char *name;
        uint32_t sel, base, limit, ar;
    } segs[] = {
        {"ES", GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES},
        {"SS", GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES},
        {"DS", GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES},
        {"FS", GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES},
        {"GS", GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES},
    };
    uint32_t sig = cpuid(1, 0).eax;

    setup(EXIT_REASON_INIT_SIGNAL);
    /* A 64-bit guest in the middle of things. */
    for (int i = 0; i < 16; i++)
        v.rc.regs[i] = 0xdead000000000000ull | (uint64_t)i;
    fake_vmcs_set(GUEST_RSP, 0xffffc90000123450ull);
    fake_vmcs_set(GUEST_RFLAGS, 0x246);
    fake_vmcs_set(CR0_READ_SHADOW, 0x80050033);
    fake_vmcs_set(GUEST_CR0, 0x80050033);
    fake_vmcs_set(CR4_READ_SHADOW, 0x3606f0);
    fake_vmcs_set(GUEST_CR4, 0x3626f0);
    fake_vmcs_set(GUEST_CR3, 0x1234000);
    fake_vmcs_set(GUEST_IA32_EFER, 0xd01);
    fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11ff | VM_ENTRY_IA32E_MODE);
    fake_vmcs_set(GUEST_CS_SELECTOR, 0x10);
    fake_vmcs_set(GUEST_CS_BASE, 0x1000);
    fake_vmcs_set(GUEST_CS_LIMIT, 0xffffffff);
    fake_vmcs_set(GUEST_CS_AR_BYTES, 0xa09b);
    for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        fake_vmcs_set(segs[i].sel, 0x18);
        fake_vmcs_set(segs[i].base, 0x7000);
        fake_vmcs_set(segs[i].limit, 0xfffff);
        fake_vmcs_set(segs[i].ar, 0xc093);
    }
    fake_vmcs_set(GUEST_LDTR_AR_BYTES, 0x10000); /* unusable */
    fake_vmcs_set(GUEST_TR_SELECTOR, 0x40);
    fake_vmcs_set(GUEST_TR_BASE, 0xfffffe0000003000ull);
    fake_vmcs_set(GUEST_TR_LIMIT, 0x4087);
    fake_vmcs_set(GUEST_GDTR_BASE, 0xfffffe0000001000ull);
    fake_vmcs_set(GUEST_GDTR_LIMIT, 0x7f);
    fake_vmcs_set(GUEST_IDTR_BASE, 0xfffffe0000000000ull);
    fake_vmcs_set(GUEST_IDTR_LIMIT, 0xfff);
    fake_vmcs_set(GUEST_DR7, 0x455);
    fake_vmcs_set(GUEST_IA32_DEBUGCTL, 1);
    fake_vmcs_set(GUEST_PENDING_DBG_EXCEPTIONS, 0x4000);
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STI | GUEST_INTR_SMI);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, GP_INFO);
    run_ok(__func__);

    CHECK(fake_vmcs_get(GUEST_RIP) == 0xfff0, "RIP %#llx, want 0xfff0", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(fake_vmcs_get(GUEST_RFLAGS) == 2, "RFLAGS %#llx, want 2", ULL(fake_vmcs_get(GUEST_RFLAGS)));
    CHECK(fake_vmcs_get(GUEST_RSP) == 0, "RSP %#llx, want 0", ULL(fake_vmcs_get(GUEST_RSP)));
    check_seg("CS", GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES, 0xf000, 0xffff0000, 0xffff,
              0x9b);
    for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
        check_seg(segs[i].name, segs[i].sel, segs[i].base, segs[i].limit, segs[i].ar, 0, 0, 0xffff, 0x93);
    check_seg("LDTR", GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES, 0, 0, 0xffff,
              0x82);
    check_seg("TR", GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES, 0, 0, 0xffff, 0x8b);
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x60000010, "CR0 shadow %#llx, want 0x60000010",
          ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x60000030, "GUEST_CR0 %#llx, want 0x60000030 (NE forced)",
          ULL(fake_vmcs_get(GUEST_CR0)));
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == 0, "CR4 shadow %#llx", ULL(fake_vmcs_get(CR4_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR4) == CR4_VMXE, "GUEST_CR4 %#llx, want VMXE only", ULL(fake_vmcs_get(GUEST_CR4)));
    CHECK(fake_vmcs_get(GUEST_CR3) == 0 && fake_vmcs_write_count(GUEST_CR3) == 1, "GUEST_CR3 %#llx (%u writes)",
          ULL(fake_vmcs_get(GUEST_CR3)), fake_vmcs_write_count(GUEST_CR3));
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == 0, "EFER %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff, "entry controls %#llx: IA-32e mode not cleared (or others lost)",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI, "activity %llu, want 3 (wait-for-SIPI)",
          ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)));
    CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == 0, "interruptibility %#llx",
          ULL(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO)));
    CHECK(!(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID), "event still pending: %#llx",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(v.rc.regs[HV_REG_RDX] == sig, "RDX %#llx, want CPUID.1:EAX %#x", ULL(v.rc.regs[HV_REG_RDX]), sig);
    for (int i = 0; i < 16; i++)
        if (i != HV_REG_RDX && i != HV_REG_RSP)
            CHECK(v.rc.regs[i] == 0, "GPR %d = %#llx, want 0", i, ULL(v.rc.regs[i]));
    CHECK(fake_vmcs_get(GUEST_DR7) == 0x400, "DR7 %#llx", ULL(fake_vmcs_get(GUEST_DR7)));
    CHECK(fake_vmcs_get(GUEST_IA32_DEBUGCTL) == 0, "DEBUGCTL %#llx", ULL(fake_vmcs_get(GUEST_IA32_DEBUGCTL)));
    CHECK(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS) == 0, "pending debug %#llx",
          ULL(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS)));
    CHECK(fake_vmcs_get(GUEST_GDTR_BASE) == 0 && fake_vmcs_get(GUEST_GDTR_LIMIT) == 0xffff, "GDTR %#llx/%#llx",
          ULL(fake_vmcs_get(GUEST_GDTR_BASE)), ULL(fake_vmcs_get(GUEST_GDTR_LIMIT)));
    CHECK(fake_vmcs_get(GUEST_IDTR_BASE) == 0 && fake_vmcs_get(GUEST_IDTR_LIMIT) == 0xffff, "IDTR %#llx/%#llx",
          ULL(fake_vmcs_get(GUEST_IDTR_BASE)), ULL(fake_vmcs_get(GUEST_IDTR_LIMIT)));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 1, "GUEST_RIP written %u times", fake_vmcs_write_count(GUEST_RIP));
}

static void test_sipi(void)
{
    setup(EXIT_REASON_SIPI_SIGNAL);
    fake_vmcs_set(EXIT_QUALIFICATION, 0x9a);
    fake_vmcs_set(GUEST_RIP, 0xfff0);
    fake_vmcs_set(GUEST_CS_SELECTOR, 0xf000);
    fake_vmcs_set(GUEST_CS_BASE, 0xffff0000);
    fake_vmcs_set(GUEST_CS_LIMIT, 0xffff);
    fake_vmcs_set(GUEST_CS_AR_BYTES, 0x9b);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
    run_ok(__func__);
    check_seg("SIPI CS", GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES, 0x9a00, 0x9a000, 0xffff,
              0x9b);
    CHECK(fake_vmcs_get(GUEST_RIP) == 0, "SIPI: RIP %#llx, want 0", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_ACTIVE, "SIPI: activity %llu, want 0",
          ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)));
    check_no_event(__func__);
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

/* ---- NMIs that hit hv in root mode ------------------------------------------ */

static void test_pending_nmi(void)
{
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
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_NMI_WINDOW_EXITING, "NMI-window exiting not set");

    /* Blocked by STI: wait too. */
    setup(EXIT_REASON_CPUID);
    v.rc.regs[HV_REG_RAX] = 0;
    v.nmi_pending = true;
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STI);
    run_ok("nmi blocked by sti");
    check_no_event("nmi blocked by sti");
    CHECK(v.nmi_pending, "NMI lost while blocked");
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_NMI_WINDOW_EXITING, "NMI-window exiting not set");

    /* The NMI window opens. */
    setup(EXIT_REASON_NMI_WINDOW);
    v.nmi_pending = true;
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_NMI_WINDOW_EXITING | CPU_BASED_USE_MSR_BITMAPS);
    run_ok("nmi window");
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == CPU_BASED_USE_MSR_BITMAPS, "NMI window: controls %#llx",
          ULL(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL)));
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == NMI_INFO && !v.nmi_pending, "NMI window: info %#llx pending %d",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)), v.nmi_pending);
    check_rip_unchanged("nmi window");
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
    test_cr0_invalid();
    test_cr0_normal_write();
    test_cr0_long_mode();
    test_cr0_pg_from_guest_cr0();
    test_cr0_pae_loads_pdptrs();
    test_cr4();
    test_cr_unexpected();
    test_vmcall();
    test_init();
    test_sipi();
    test_xsetbv();
    test_ud_exits();
    test_pending_nmi();
    test_vmresume_failed();
    return test_summary();
}
