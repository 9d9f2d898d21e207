/*
 * Host tests for hv/exit_ept.c: guest writes to hv's memory, dropped by a step over this
 * vCPU's own EPT01 leaves. The real handlers run behind the real vmexit_handler on the fake
 * VMCS; EPT01 is built by vmx/ept.c in host memory (a host page's address stands in for
 * its physical address), each vCPU with its own clone. What the CPU would do between
 * exits (the instruction writing through a retargeted leaf) the test does by hand.
 */
#include <stdlib.h>
#include <string.h>
#include "exits_harness.h"
#include "hv/hypercall.h"
#include "vmx/vmx.h"
#include "vmx/vmx_bits.h"

#define H0 0x7000000ull  /* hv's region in the test's memory map: 16 pages */
#define HPAGES 16
#define MiB (1ull << 20)
#define QUAL_WRITE (EPT_QUAL_WRITE | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE | (EPT_R | EPT_X) << EPT_QUAL_PERM_SHIFT)
#define MTF CPU_BASED_MONITOR_TRAP_FLAG
#define PROC0 0x84006172u /* some primary controls of vmcs01, MTF clear */

/* ---- what exit_ept.c needs besides the harness ---- */

static int invepts;
static uint64_t invept_type, invept_eptp;
enum vmx_status invept(uint64_t type, uint64_t eptp)
{
    invepts++;
    invept_type = type;
    invept_eptp = eptp;
    return VMX_OK;
}

static int pf_calls;
static uint64_t pf_cr2;
static uint32_t pf_err;
void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t error)
{
    pf_calls++;
    pf_cr2 = cr2;
    pf_err = error;
    inject_exception(&v, 14, true, error);
}

static uint64_t text_sum = 0x1234;
uint64_t hv_text_checksum(void) { return text_sum; }

/* ---- EPT01 in host memory: the shared build and one clone per vCPU ---- */

static void *page(void)
{
    void *p = aligned_alloc(4096, 4096);
    if (!p)
        abort();
    memset(p, 0, 4096);
    return p;
}

static struct ept base;
static uint8_t *zero_page;
static struct vcpu v1; /* the second CPU (the harness's v is the first) */
static struct ept clone[2];
static uint8_t *scratch[2][HV_STEP_PAGES];
static struct vmcs12 *cache;

static void build(void)
{
    static const struct hv_mem_range map[] = {
        { 0, H0, HV_MEM_RAM, 0 },
        { H0, HPAGES * 4096, HV_MEM_HV, 0 },
        { H0 + HPAGES * 4096, 0x10000000, HV_MEM_RAM, 0 },
    };
    struct mtrr_state s = { .enabled = false, .phys_bits = 48 };
    zero_page = page();
    base.hidden_page = (uint64_t)(uintptr_t)zero_page;
    CHECK(ept_build_identity(&base, map, 3, 1ull << 40, &s, true, page) == 0, "EPT01 built");
    for (int c = 0; c < 2; c++) {
        CHECK(ept_clone_hidden(&clone[c], &base, page) == 0, "clone %d", c);
        for (int i = 0; i < HV_STEP_PAGES; i++)
            scratch[c][i] = page();
    }
    cache = calloc(1, sizeof(*cache));
}

static void attach(struct vcpu *x, int c)
{
    x->id = (uint32_t)c;
    x->ept01 = clone[c];
    for (int i = 0; i < HV_STEP_PAGES; i++)
        x->step.scratch[i] = scratch[c][i];
    x->nv.n = &x->nested;
    x->nv.rc = &x->rc;
    x->nested.cache = cache;
}

/* A vCPU 0 fresh from setup(), with hv's EPT01 state. */
static void start(uint32_t reason)
{
    setup(reason);
    hv.ept = &base;
    hv.zero_page = zero_page;
    hv.caps.invept_single = true;
    hv.vcpus[1] = &v1;
    attach(&v, 0);
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, PROC0);
    invepts = pf_calls = 0;
    l2_exit_calls = 0;
    vmcs12_set(cache, CPU_BASED_VM_EXEC_CONTROL, 0);
}

/* The next VM exit of vCPU x (the fake VMCS keeps its controls across exits). */
static bool exit_of(struct vcpu *x, uint32_t reason, uint64_t gpa, uint64_t qual)
{
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, gpa);
    fake_vmcs_set(GUEST_LINEAR_ADDRESS, 0xffff800000000000ull + (gpa & 0xfffff));
    fake_vmcs_set(EXIT_QUALIFICATION, qual);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0);
    if (setjmp(reset_jmp) == 0) {
        reset_armed = true;
        vmexit_handler(x);
        reset_armed = false;
        return false;
    }
    reset_armed = false;
    return true;
}

static uint64_t *leaf(struct vcpu *x, uint64_t gpa) { return ept_hidden_leaf(&x->ept01, gpa); }
static uint64_t ro(void) { return (uint64_t)(uintptr_t)zero_page | EPT_HIDDEN_LEAF; }
static uint64_t rw(uint8_t *scr) { return (uint64_t)(uintptr_t)scr | EPT_HIDDEN_LEAF | EPT_W; }

/* The guest's store through EPT01, as the CPU would do it: where the leaf points, if writable. */
static bool guest_store(struct vcpu *x, uint64_t gpa, uint8_t val)
{
    uint64_t e = *leaf(x, gpa);
    if (!(e & EPT_W))
        return false;
    ((uint8_t *)(uintptr_t)(e & EPT_ADDR_MASK))[gpa & 0xfff] = val;
    return true;
}

/* Nothing of hv's writable in x's EPT01 or the shared one, scratch and zero page wiped. */
static void check_sealed(struct vcpu *x, const char *what)
{
    unsigned bad = 0;
    for (uint64_t g = H0; g < H0 + HPAGES * 4096; g += 4096)
        if (*leaf(x, g) != ro() || *ept_hidden_leaf(&base, g) != ro())
            bad++;
    CHECK(bad == 0, "%s: %u hidden leaves not read-only onto the zero page", what, bad);
    bool zero = true;
    for (int i = 0; i < HV_STEP_PAGES; i++)
        for (int b = 0; b < 4096; b++)
            zero &= x->step.scratch[i][b] == 0 && zero_page[b] == 0;
    CHECK(zero, "%s: a scratch page or the zero page is not zero", what);
    CHECK(!x->step.active && x->step.npages == 0, "%s: step still on", what);
}

static uint64_t proc(void) { return fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL); }

/* ---- tests ------------------------------------------------------------------ */

/* An 8-byte store at the last 4 bytes of one hidden page: two violations, then MTF. */
static void test_page_crossing(void)
{
    start(EXIT_REASON_EPT_VIOLATION);
    uint64_t a = H0 + 3 * 4096 + 0xffc;
    uint64_t hw0 = hv.hidden_writes;
    CHECK(!exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE), "first page: no reset");
    CHECK(v.step.active && v.step.npages == 1 && *leaf(&v, a) == rw(scratch[0][0]), "first page onto scratch 0");
    CHECK(proc() == (PROC0 | MTF), "MTF on: %#llx", ULL(proc()));
    CHECK(invepts == 1 && invept_type == 1 && invept_eptp == v.ept01.eptp, "INVEPT single-context of cpu0's EPTP");
    CHECK(v.ept01.eptp != base.eptp, "cpu0 runs on its own EPTP");
    CHECK(fake_vmcs_get(GUEST_RIP) == RIP0, "the instruction is retried, not skipped");
    /* The CPU writes the first 4 bytes, then faults on the next page. */
    for (int i = 0; i < 4; i++)
        CHECK(guest_store(&v, a + i, 0xa0 + i), "byte %d lands in scratch", i);
    CHECK(!guest_store(&v, a + 4, 0xa4), "second page still read-only");
    CHECK(!exit_of(&v, EXIT_REASON_EPT_VIOLATION, a + 4, QUAL_WRITE), "second page: no reset");
    CHECK(v.step.active && v.step.npages == 2 && *leaf(&v, a + 4) == rw(scratch[0][1]) &&
              *leaf(&v, a) == rw(scratch[0][0]),
          "step extended to the second page, first still writable");
    CHECK(proc() == (PROC0 | MTF) && invepts == 2, "MTF still on; INVEPT again");
    for (int i = 4; i < 8; i++)
        CHECK(guest_store(&v, a + i, 0xa0 + i), "byte %d lands in scratch", i);
    CHECK(hv.hidden_writes == hw0 + 2, "two pages counted: %llu", ULL(hv.hidden_writes - hw0));
    /* The MTF exit after the instruction: hv's, consumed. */
    int mtf_warn = test_log_count("without a step");
    CHECK(!exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0), "MTF: no reset");
    CHECK(proc() == PROC0, "MTF off again: %#llx", ULL(proc()));
    CHECK(invepts == 3 && test_log_count("without a step") == mtf_warn, "INVEPT at the end; MTF exit was the step's");
    check_sealed(&v, "page-crossing");
    CHECK(test_log_count("guest wrote to hv's memory") == 1, "one log line: %s", test_log_text());
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == 0, "nothing injected");
}

/* The step ends at whatever exit comes next, before it is handled. */
static void test_ended_by_other_exit(void)
{
    start(EXIT_REASON_EPT_VIOLATION);
    uint64_t a = H0 + 5 * 4096 + 8;
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    guest_store(&v, a, 0x55);
    CHECK(v.step.active, "step on");
    /* An I/O exit instead of MTF (an interrupt before the instruction ran, a fault of it that
     * L1 intercepts, ...): any exit ends the step. */
    io_calls = 0;
    CHECK(!exit_of(&v, EXIT_REASON_IO_INSTRUCTION, 0, 0), "I/O exit: no reset");
    CHECK(io_calls == 1, "the I/O exit was still handled (%d)", io_calls);
    CHECK(proc() == PROC0, "MTF off: %#llx", ULL(proc()));
    check_sealed(&v, "ended by I/O exit");
    /* A CPUID exit as well (handled in C on this path). */
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    CHECK(!exit_of(&v, EXIT_REASON_CPUID, 0, 0) && fake_vmcs_get(GUEST_RIP) == RIP0 + ILEN,
          "CPUID handled after the step ended");
    check_sealed(&v, "ended by CPUID");
    /* An MTF exit with no step: not hv's to reset for; the control goes off. */
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, PROC0 | MTF);
    CHECK(!exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0) && proc() == PROC0, "stray MTF: no reset, MTF off");
}

/* Two CPUs writing the same hidden page: independent leaves, independent flushes. */
static void test_two_cpus(void)
{
    start(EXIT_REASON_EPT_VIOLATION);
    memset(&v1, 0, sizeof(v1));
    regcache_init(&v1.rc, true);
    attach(&v1, 1);
    uint64_t a = H0 + 7 * 4096 + 0x100;
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    CHECK(*leaf(&v, a) == rw(scratch[0][0]) && *leaf(&v1, a) == ro(), "cpu0 writable, cpu1 still read-only");
    CHECK(invept_eptp == v.ept01.eptp, "cpu0 flushed its own EPTP");
    exit_of(&v1, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    CHECK(*leaf(&v1, a) == rw(scratch[1][0]) && *leaf(&v, a) == rw(scratch[0][0]), "each CPU onto its own scratch");
    CHECK(invept_eptp == v1.ept01.eptp && v1.ept01.eptp != v.ept01.eptp, "cpu1 flushed its own EPTP");
    guest_store(&v, a, 0x11);
    guest_store(&v1, a, 0x22);
    CHECK(scratch[0][0][0x100] == 0x11 && scratch[1][0][0x100] == 0x22, "no CPU writes into the other's page");
    /* cpu0's step ends; cpu1's goes on untouched. */
    exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0);
    CHECK(*leaf(&v, a) == ro() && *leaf(&v1, a) == rw(scratch[1][0]) && scratch[1][0][0x100] == 0x22,
          "cpu0 sealed, cpu1's step intact");
    check_sealed(&v, "cpu0 after its step");
    exit_of(&v1, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0);
    check_sealed(&v1, "cpu1 after its step");
    CHECK(*ept_hidden_leaf(&base, a) == ro(), "the shared EPT01 was never written");
}

/* REP STOSB / MOVSB and XSAVE-sized stores over more pages than slots: the step restarts. */
static void test_many_pages(void)
{
    start(EXIT_REASON_EPT_VIOLATION);
    for (unsigned p = 0; p < HV_STEP_PAGES; p++)
        exit_of(&v, EXIT_REASON_EPT_VIOLATION, H0 + p * 4096, QUAL_WRITE);
    CHECK(v.step.npages == HV_STEP_PAGES && proc() == (PROC0 | MTF), "%u pages in one step", HV_STEP_PAGES);
    guest_store(&v, H0, 1);
    CHECK(!exit_of(&v, EXIT_REASON_EPT_VIOLATION, H0 + HV_STEP_PAGES * 4096, QUAL_WRITE), "one more: no reset");
    CHECK(v.step.npages == 1 && *leaf(&v, H0 + HV_STEP_PAGES * 4096) == rw(scratch[0][0]) && *leaf(&v, H0) == ro() &&
              scratch[0][0][0] == 0 && proc() == (PROC0 | MTF),
          "restarted with the new page only, the old ones sealed and wiped");
    CHECK(test_log_contains("step restarted"), "logged");
    exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0);
    check_sealed(&v, "after a restart");
    /* A violation for a page the step already holds (stale translation): nothing new. */
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, H0, QUAL_WRITE);
    uint64_t n = hv.hidden_writes;
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, H0 + 8, QUAL_WRITE);
    CHECK(v.step.npages == 1 && hv.hidden_writes == n, "same page twice: one slot, one count");
    exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0);
    check_sealed(&v, "same page twice");
}

/* L2 without L1's EPT runs on this CPU's EPT01: the step ends before an exit is reflected. */
static void test_l2_on_ept01(void)
{
    start(EXIT_REASON_EPT_VIOLATION);
    v.nested.guest_mode = true;
    uint64_t a = H0 + 9 * 4096;
    CHECK(!exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE) && l2_exit_calls == 1, "L2's write: nested/ asked");
    CHECK(v.step.active && proc() == (PROC0 | MTF), "hv's step in vmcs02");
    guest_store(&v, a, 0x77);
    /* An exception exit L1 wants comes before the MTF one: reflected after the step ends. */
    CHECK(!exit_of(&v, EXIT_REASON_EXCEPTION_NMI, 0, 0) && l2_exit_calls == 2, "reflected");
    CHECK(!l2_exit_saw_step, "the step was over before nested/ saw the exit");
    CHECK(proc() == PROC0, "vmcs02's MTF back to vmcs12's (clear): %#llx", ULL(proc()));
    check_sealed(&v, "L2, reflected exit");
    /* The step's MTF exit is hv's when L1 did not ask for MTF: not reflected. */
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    l2_exit_calls = 0;
    CHECK(!exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0) && l2_exit_calls == 0, "MTF consumed by hv");
    check_sealed(&v, "L2, MTF");
    /* L1 asked for MTF: the step's MTF exit is L1's too, and MTF stays on. */
    vmcs12_set(cache, CPU_BASED_VM_EXEC_CONTROL, MTF);
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, PROC0 | MTF);
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    CHECK(v.step.active, "step on");
    l2_exit_calls = 0;
    CHECK(!exit_of(&v, EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0) && l2_exit_calls == 1 && !l2_exit_saw_step,
          "MTF reflected to L1 after the step ended");
    CHECK(proc() == (PROC0 | MTF), "vmcs02 keeps L1's MTF: %#llx", ULL(proc()));
    check_sealed(&v, "L2, L1's MTF");
    /* L2 on EPT02 (L1's EPT): its EPT violations are nested/'s, never a step on EPT01. */
    vmcs12_set(cache, CPU_BASED_VM_EXEC_CONTROL, 0);
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, PROC0);
    v.nested.ept12 = true;
    CHECK(!hidden_step_exit(&v, EXIT_REASON_EPT_VIOLATION), "no step, nothing to end");
    /* vmcs02 refused at VMRESUME during a step: no exit will come, the step ends there. */
    v.nested.ept12 = false;
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, a, QUAL_WRITE);
    fake_vmcs_set(VM_INSTRUCTION_ERROR, 7);
    vmresume_failed(&v);
    CHECK(hw_refused_calls >= 1, "L1's entry fails");
    check_sealed(&v, "VMRESUME of vmcs02 failed");
}

/* Addresses EPT01 does not map (item 10): the architectural answer, not a reset. */
static void test_beyond_ept01(void)
{
    start(EXIT_REASON_EPT_VIOLATION);
    uint64_t far = 1ull << 48;
    CHECK(v.ept01.limit == 1ull << 40, "test EPT01 ends at 1 TiB");
    CHECK(!exit_of(&v, EXIT_REASON_EPT_VIOLATION, far + 0x123, QUAL_WRITE), "no reset beyond EPT01");
    CHECK(pf_calls == 1 && pf_err == (1 | 2 | 8) && pf_cr2 == 0xffff800000000000ull + 0x123,
          "#PF P|W|RSVD at the linear address: err %#x cr2 %#llx", pf_err, ULL(pf_cr2));
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | 14),
          "#PF injected");
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(3));
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, far, EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE | 4);
    CHECK(pf_calls == 2 && pf_err == (1 | 4 | 8 | 16), "user fetch: P|U|RSVD|I err %#x", pf_err);
    exit_of(&v, EXIT_REASON_EPT_VIOLATION, far, 1); /* no linear address: a PDPTE load */
    CHECK(pf_calls == 2 && fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == GP_INFO, "#GP(0) without a linear address");
    CHECK(test_log_count("beyond EPT01") == 1, "logged once: %s", test_log_text());
    check_sealed(&v, "beyond EPT01");
    /* A violation EPT01 cannot explain (a read of a mapped page) is hv's bug: logged reset. */
    CHECK(exit_of(&v, EXIT_REASON_EPT_VIOLATION, 0x1000, 1) && test_log_contains("hv's tables are wrong"),
          "inexplicable violation: fatal, logged");
}

/* HV_HC_HIDDEN_WRITES: the count and the self-check. */
static void test_hypercall(void)
{
    start(EXIT_REASON_VMCALL);
    hv.text_sum = text_sum;
    hv.hidden_writes = 41;
    v.rc.regs[HV_REG_RAX] = HV_HC_HIDDEN_WRITES;
    run_ok("hidden writes hypercall");
    CHECK(v.rc.regs[HV_REG_RAX] == 41 && v.rc.regs[HV_REG_RBX] == 0, "count %llu, self-check %#llx",
          ULL(v.rc.regs[HV_REG_RAX]), ULL(v.rc.regs[HV_REG_RBX]));
    check_rip_advanced("hidden writes hypercall");
    /* Each kind of damage is reported. */
    zero_page[5] = 1;
    CHECK(hidden_self_check(&v) == HV_SELFCHECK_ZERO_PAGE, "zero page");
    zero_page[5] = 0;
    scratch[0][2][9] = 1;
    CHECK(hidden_self_check(&v) == HV_SELFCHECK_SCRATCH, "scratch page");
    scratch[0][2][9] = 0;
    *leaf(&v, H0 + 4096) |= EPT_W;
    CHECK(hidden_self_check(&v) == HV_SELFCHECK_LEAF, "writable leaf");
    *leaf(&v, H0 + 4096) &= ~EPT_W;
    *ept_hidden_leaf(&base, H0) |= EPT_W;
    CHECK(hidden_self_check(&v) == HV_SELFCHECK_SHARED, "shared leaf (cpu0's own copy unchanged)");
    *ept_hidden_leaf(&base, H0) &= ~EPT_W;
    text_sum++;
    CHECK(hidden_self_check(&v) == HV_SELFCHECK_TEXT, "text checksum");
    text_sum--;
    CHECK(hidden_self_check(&v) == 0, "all well again");
}

int main(void)
{
    test_log_capture();
    build();
    test_page_crossing();
    test_ended_by_other_exit();
    test_two_cpus();
    test_many_pages();
    test_l2_on_ept01();
    test_beyond_ept01();
    test_hypercall();
    return test_summary();
}
