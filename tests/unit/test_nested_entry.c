/*
 * Nested VM-Enter and VM-Exit (nested/vmenter.c, nested/vmexit.c) on a fake VMCS with two
 * banks, vmcs01 and vmcs02, switched by VMPTRLD: what vmcs02 makes the CPU do across exits
 * that hv handles itself (debug registers, VMX-preemption timer), the bounds of vmcs12's MSR
 * lists, and the PAE-PDPTE entry check without L1's EPT. A few lines model the CPU: what a
 * VM exit saves into vmcs02 and what the VM entry after it loads from there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "fake_vmcs.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "nested/checks.h"
#include "nested/nested_int.h"
#include "tests/unit/test_util.h"
#include "vmcs12_samples.h"
#include "vmx/vmx.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))
#define VMCS01_PA 0x7000ull
#define ENTRY_FAIL(reason) ((reason) | VMX_EXIT_REASON_ENTRY_FAIL)

/* ---- what nested/ needs of hv ---- */

/* L1's RAM, below 4 GiB: a PAE guest's CR3 is a 32-bit address. */
#define L1_SIZE (32 * 4096)
static uint8_t *l1_mem;
#define L1(off) ((uint64_t)(uintptr_t)l1_mem + (off))
bool hv_gpa_is_ram(uint64_t gpa, uint64_t len)
{
    return gpa >= L1(0) && len <= L1_SIZE && gpa - L1(0) <= L1_SIZE - len;
}
void *hv_alloc_page(void)
{
    void *p = aligned_alloc(4096, 4096);
    memset(p, 0, 4096);
    return p;
}
void hv_inject_exception(struct regcache *rc, uint8_t v, bool e, uint32_t c) {}
void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t e) {}
/* The CPU knows one MSR beyond those the VMCS switches: IA32_KERNEL_GS_BASE. */
static uint64_t kernel_gs_base;
int hv_rdmsr(uint32_t m, uint64_t *v)
{
    if (m != MSR_IA32_KERNEL_GS_BASE)
        return -1;
    *v = kernel_gs_base;
    return 0;
}
int hv_wrmsr(uint32_t m, uint64_t v)
{
    if (m != MSR_IA32_KERNEL_GS_BASE)
        return -1;
    kernel_gs_base = v;
    return 0;
}

static struct nested_state ns; /* VMPTRLD/VMCLEAR: tests/unit/fake_vmcs.c, one fake VMCS per pointer */

static const struct vmx_msrs *const hw = &bochs_skylake_x; /* tests/unit/vmcs12_samples.c */
static struct nested_caps caps;
static struct regcache rc;
static struct nested_vcpu nv;
static bool launch_pending;
static uint8_t hv_msr_bm[4096];

struct msr_entry {
    uint32_t index, rsvd;
    uint64_t value;
};
/* L1's pages: 0-2 bitmaps, 3-11 entry MSR-load list (up to 4608 entries would not fit:
 * its tail runs into the other lists, all valid entries), 12-14 exit MSR-store list,
 * 15-17 exit MSR-load list, 20+ page tables. */
#define ENTRY_LIST L1(3 * 4096)
#define STORE_LIST L1(12 * 4096)
#define LOAD_LIST L1(15 * 4096)
#define ENTRY_LIST_MAX ((12 - 3) * 4096 / 16)
static struct msr_entry *list_at(uint64_t pa) { return (struct msr_entry *)(uintptr_t)pa; }

static void fill_list(uint64_t pa, unsigned n, uint32_t msr)
{
    for (unsigned i = 0; i < n; i++)
        list_at(pa)[i] = (struct msr_entry){msr, 0, 0x1000 + i};
}

/* L1 has a valid 64-bit vmcs12 current, with its bitmaps and empty MSR lists in its RAM. */
static void fresh(void)
{
    static bool once;
    if (!once) {
        once = true;
        l1_mem = mmap(NULL, L1_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (l1_mem == MAP_FAILED) {
            perror("mmap below 4 GiB");
            exit(1);
        }
        nested_caps_init(&caps, hw);
        nv = (struct nested_vcpu){.rc = &rc, .n = &ns, .caps = &caps, .hw = hw, .phys_bits = 48, .cr0_mask = 0x20,
                                  .cr4_mask = 0x2000, .msr_bitmap01 = hv_msr_bm,
                                  .eptp = 0x1234000ull | 0x1e,
                                  .launch_pending = &launch_pending};
        fake_vmcs_reset();
        nested_vcpu_init(&nv);
        ns.vmcs01_pa = VMCS01_PA;
    }
    fake_vmcs_reset();
    vmptrld(VMCS01_PA); /* L1 runs on vmcs01 */
    test_log_clear();
    regcache_init(&rc, true);
    memset(l1_mem, 0, L1_SIZE);
    ns.vmxon = true;
    ns.guest_mode = false;
    ns.current_ptr = 0x100000;
    ns.vmcs02_for = ~0ull;
    ns.vmcs02_launched = false;
    ns.rare_in_vmcs02 = false;
    ns.msr_list_warned = false;
    valid64(ns.cache);
    vmcs12_set(ns.cache, IO_BITMAP_A, L1(0));
    vmcs12_set(ns.cache, IO_BITMAP_B, L1(4096));
    vmcs12_set(ns.cache, MSR_BITMAP, L1(2 * 4096));
    vmcs12_set(ns.cache, VM_ENTRY_MSR_LOAD_ADDR, ENTRY_LIST);
    vmcs12_set(ns.cache, VM_EXIT_MSR_STORE_ADDR, STORE_LIST);
    vmcs12_set(ns.cache, VM_EXIT_MSR_LOAD_ADDR, LOAD_LIST);
    vmcs12_set(ns.cache, VM_ENTRY_MSR_LOAD_COUNT, 0);
    vmcs12_set(ns.cache, VM_EXIT_MSR_STORE_COUNT, 0);
    vmcs12_set(ns.cache, VM_EXIT_MSR_LOAD_COUNT, 0);
    ns.cache->launch_state = 0;
    fake_vmcs_set(GUEST_SS_AR_BYTES, 0); /* L1 at CPL 0, no MOV-SS blocking */
    fake_vmcs_set(GUEST_DR7, 0x400);
}

static bool enter(void)
{
    vmptrld(VMCS01_PA);
    nested_vmenter(&nv, !ns.cache->launch_state);
    regcache_flush(&rc); /* as vmexit_handler does before the VM entry */
    return ns.guest_mode;
}

/* ---- the CPU, as far as these tests need it (vmcs02 current) ---- */

struct l2 { uint64_t dr7, timer; };

/* VM entry into L2: what it loads from vmcs02. */
static void cpu_entry(struct l2 *s)
{
    if (fake_vmcs_get(VM_ENTRY_CONTROLS) & VM_ENTRY_LOAD_DEBUG_CONTROLS)
        s->dr7 = fake_vmcs_get(GUEST_DR7);
    if (fake_vmcs_get(PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_PREEMPTION_TIMER)
        s->timer = fake_vmcs_get(VMX_PREEMPTION_TIMER_VALUE);
}

/* A VM exit of L2 with this reason, then hv's handling of it: true if nested/ took it
 * (reflected to L1), false if it is hv's. */
static bool cpu_exit(const struct l2 *s, uint32_t reason)
{
    uint32_t ctls = (uint32_t)fake_vmcs_get(VM_EXIT_CONTROLS);
    fake_vmcs_set(VM_EXIT_REASON, reason);
    if (ctls & VM_EXIT_SAVE_DEBUG_CONTROLS)
        fake_vmcs_set(GUEST_DR7, s->dr7);
    if (ctls & VM_EXIT_SAVE_PREEMPTION_TIMER)
        fake_vmcs_set(VMX_PREEMPTION_TIMER_VALUE, s->timer);
    regcache_reset(&rc);
    bool l1 = nested_l2_exit(&nv, reason);
    regcache_flush(&rc);
    return l1;
}

/* ---- debug registers and the VMX-preemption timer (issue 7 items 3 and 7) ---- */

static void test_l2_state_across_hv_exits(void)
{
    fresh();
    uint32_t exit12 = (uint32_t)vmcs12_get(ns.cache, VM_EXIT_CONTROLS);
    vmcs12_set(ns.cache, VM_EXIT_CONTROLS, exit12 & ~(VM_EXIT_SAVE_DEBUG_CONTROLS | VM_EXIT_SAVE_PREEMPTION_TIMER));
    vmcs12_set(ns.cache, GUEST_DR7, 0x400);
    vmcs12_set(ns.cache, VMX_PREEMPTION_TIMER_VALUE, 100000);
    CHECK(enter(), "entry: %s", nested_check_last_rule());
    uint32_t exit02 = (uint32_t)fake_vmcs_get(VM_EXIT_CONTROLS);
    CHECK(exit02 & VM_EXIT_SAVE_DEBUG_CONTROLS, "vmcs02 exit controls %#x: L2's DR7 not saved", exit02);
    CHECK(exit02 & VM_EXIT_SAVE_PREEMPTION_TIMER, "vmcs02 exit controls %#x: L1's timer not saved", exit02);

    struct l2 s = {0};
    cpu_entry(&s);
    CHECK(s.dr7 == 0x400 && s.timer == 100000, "L2 starts with vmcs12's DR7 %#llx and timer %llu", ULL(s.dr7),
          ULL(s.timer));
    /* L2 sets a watchpoint; 60000 timer ticks pass; an EPT violation on EPT01 is hv's. Then
     * 20000 more and an MSR access L1 does not intercept (hv's too), then 30000 more. */
    s.dr7 = 0xd0401;
    s.timer = 40000;
    CHECK(!cpu_exit(&s, EXIT_REASON_EPT_VIOLATION), "EPT01 violation: hv's");
    cpu_entry(&s);
    CHECK(s.dr7 == 0xd0401, "L2's DR7 after an hv-handled exit: %#llx, want 0xd0401", ULL(s.dr7));
    CHECK(s.timer == 40000, "L1's timer after an hv-handled exit restarts at %llu, want the remaining 40000",
          ULL(s.timer));
    s.timer = 20000;
    CHECK(!cpu_exit(&s, EXIT_REASON_EPT_VIOLATION), "second hv exit");
    cpu_entry(&s);
    CHECK(s.timer == 20000, "timer after a second hv exit: %llu, want 20000", ULL(s.timer));

    /* A reflected exit: vmcs12 gets neither (L1 did not ask), L1 gets DR7 = 400H (28.5.1). */
    s.timer = 10000;
    CHECK(cpu_exit(&s, EXIT_REASON_CPUID), "CPUID: L1's");
    CHECK(!ns.guest_mode, "back in L1");
    CHECK(vmcs12_get(ns.cache, GUEST_DR7) == 0x400, "vmcs12 DR7 %#llx: not saved without 'save debug controls'",
          ULL(vmcs12_get(ns.cache, GUEST_DR7)));
    CHECK(vmcs12_get(ns.cache, VMX_PREEMPTION_TIMER_VALUE) == 100000,
          "vmcs12 timer %llu: not saved without 'save VMX-preemption timer value'",
          ULL(vmcs12_get(ns.cache, VMX_PREEMPTION_TIMER_VALUE)));
    CHECK(fake_vmcs_get(GUEST_DR7) == 0x400, "L1's DR7 after the exit: %#llx", ULL(fake_vmcs_get(GUEST_DR7)));

    /* L1 re-enters: the timer restarts from vmcs12's value, as on hardware. */
    CHECK(enter(), "resume: %s", nested_check_last_rule());
    cpu_entry(&s);
    CHECK(s.timer == 100000 && s.dr7 == 0x400, "re-entry: timer %llu, DR7 %#llx from vmcs12", ULL(s.timer),
          ULL(s.dr7));
}

static void test_l1_asks_to_save(void)
{
    fresh(); /* valid64 asks for both savings */
    vmcs12_set(ns.cache, VMX_PREEMPTION_TIMER_VALUE, 5000);
    CHECK(enter(), "entry: %s", nested_check_last_rule());
    struct l2 s = {0};
    cpu_entry(&s);
    s.dr7 = 0x401, s.timer = 3000;
    CHECK(!cpu_exit(&s, EXIT_REASON_EPT_VIOLATION), "hv exit");
    CHECK(vmcs12_get(ns.cache, VMX_PREEMPTION_TIMER_VALUE) == 5000 && vmcs12_get(ns.cache, GUEST_DR7) == 0x400,
          "an hv-handled exit leaves vmcs12 alone");
    cpu_entry(&s);
    s.timer = 1000;
    CHECK(cpu_exit(&s, EXIT_REASON_CPUID), "CPUID: L1's");
    CHECK(vmcs12_get(ns.cache, GUEST_DR7) == 0x401, "vmcs12 DR7 %#llx, want L2's 0x401",
          ULL(vmcs12_get(ns.cache, GUEST_DR7)));
    CHECK(vmcs12_get(ns.cache, VMX_PREEMPTION_TIMER_VALUE) == 1000, "vmcs12 timer %llu, want 1000",
          ULL(vmcs12_get(ns.cache, VMX_PREEMPTION_TIMER_VALUE)));
}

static void test_no_timer(void)
{
    fresh();
    vmcs12_set(ns.cache, PIN_BASED_VM_EXEC_CONTROL,
               vmcs12_get(ns.cache, PIN_BASED_VM_EXEC_CONTROL) & ~(uint64_t)PIN_BASED_PREEMPTION_TIMER);
    vmcs12_set(ns.cache, VM_EXIT_CONTROLS,
               vmcs12_get(ns.cache, VM_EXIT_CONTROLS) & ~(uint64_t)VM_EXIT_SAVE_PREEMPTION_TIMER);
    CHECK(enter(), "entry: %s", nested_check_last_rule());
    CHECK(!(fake_vmcs_get(VM_EXIT_CONTROLS) & VM_EXIT_SAVE_PREEMPTION_TIMER) &&
              !(fake_vmcs_get(PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_PREEMPTION_TIMER),
          "no timer for L2 when L1 has none");
}

/* ---- MSR lists (issue 7 item 6): 512 * (IA32_VMX_MISC[27:25] + 1) entries at most ---- */

static unsigned max_msrs(void) { return 512u * (unsigned)(((caps.misc >> 25) & 7) + 1); }

static void test_entry_list_bound(void)
{
    CHECK(max_msrs() == 512, "hv advertises %u MSRs per list", max_msrs());
    fresh();
    fill_list(ENTRY_LIST, 512, MSR_IA32_SYSENTER_CS);
    vmcs12_set(ns.cache, VM_ENTRY_MSR_LOAD_COUNT, 512);
    CHECK(enter(), "512 entries load: %s", nested_check_last_rule());
    CHECK(fake_vmcs_get(GUEST_SYSENTER_CS) == 0x1000 + 511, "the last entry loaded: %#llx",
          ULL(fake_vmcs_get(GUEST_SYSENTER_CS)));

    uint32_t counts[] = {513, 600, ENTRY_LIST_MAX, 0xffffffffu};
    for (unsigned k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        fresh();
        fill_list(ENTRY_LIST, ENTRY_LIST_MAX, MSR_IA32_SYSENTER_CS);
        vmcs12_set(ns.cache, VM_ENTRY_MSR_LOAD_COUNT, counts[k]);
        CHECK(!enter(), "count %u: L2 must not run", counts[k]);
        uint64_t r = vmcs12_get(ns.cache, VM_EXIT_REASON), q = vmcs12_get(ns.cache, EXIT_QUALIFICATION);
        CHECK(r == ENTRY_FAIL(EXIT_REASON_MSR_LOAD_FAIL) && q == 513,
              "count %u: exit reason %#llx qualification %llu, want VM-entry failure 34 at entry 513", counts[k],
              ULL(r), ULL(q));
    }
    /* A bad entry before the bound still names itself. */
    fresh();
    fill_list(ENTRY_LIST, 600, MSR_IA32_SYSENTER_CS);
    list_at(ENTRY_LIST)[7].index = 0x12345;
    vmcs12_set(ns.cache, VM_ENTRY_MSR_LOAD_COUNT, 600);
    CHECK(!enter() && vmcs12_get(ns.cache, EXIT_QUALIFICATION) == 8, "bad entry 8 before the bound: qual %llu",
          ULL(vmcs12_get(ns.cache, EXIT_QUALIFICATION)));
}

static void test_exit_lists_bounded_logged_once(void)
{
    fresh();
    test_log_clear();
    /* Store list: 600 entries, all unknown MSRs but the first; past entry 512 a sentinel. */
    fill_list(STORE_LIST, 600, 0x12345);
    list_at(STORE_LIST)[0].index = MSR_IA32_SYSENTER_CS;
    for (unsigned i = 512; i < 600; i++)
        list_at(STORE_LIST)[i].value = 0x5e5e;
    vmcs12_set(ns.cache, VM_EXIT_MSR_STORE_COUNT, 600);
    /* Load list: 700 entries of an MSR the CPU refuses. */
    fill_list(LOAD_LIST, 700, 0x12345);
    vmcs12_set(ns.cache, VM_EXIT_MSR_LOAD_COUNT, 700);
    struct l2 s = {0};
    for (int round = 0; round < 3; round++) {
        CHECK(enter(), "round %d: entry: %s", round, nested_check_last_rule());
        cpu_entry(&s);
        CHECK(cpu_exit(&s, EXIT_REASON_CPUID), "round %d: CPUID reflected", round);
    }
    CHECK(list_at(STORE_LIST)[511].value == 0, "entry 512 stored (as 0: the CPU refused it)");
    unsigned untouched = 0;
    for (unsigned i = 512; i < 600; i++)
        untouched += list_at(STORE_LIST)[i].value == 0x5e5e;
    CHECK(untouched == 88, "store list: %u of the 88 entries past the bound left alone", untouched);
    int lines = test_log_count("hv: WARN: ");
    CHECK(lines == 1, "3 exits with 599 failing store entries and 700 failing load entries: %d WARN lines, want 1:\n%s",
          lines, test_log_text());
    CHECK(test_log_contains("0x12345"), "the line names the MSR: %s", test_log_text());
    CHECK(ns.msr_list_failures >= 3, "failures still counted: %llu", ULL(ns.msr_list_failures));
}

/* ---- PAE paging without L1's EPT: the PDPTEs hv loads from L2's CR3 (SDM 26.3.1.6) ---- */

static void pae32(uint64_t pdpte0)
{
    vmcs12_set(ns.cache, VM_ENTRY_CONTROLS, vmcs12_get(ns.cache, VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE);
    vmcs12_set(ns.cache, GUEST_IA32_EFER, 0x801); /* SCE, NXE */
    vmcs12_set(ns.cache, GUEST_CS_AR_BYTES, 0xc09b);
    vmcs12_set(ns.cache, GUEST_RIP, 0xc1000000);
    vmcs12_set(ns.cache, GUEST_TR_BASE, 0xc2000000);
    vmcs12_set(ns.cache, GUEST_GDTR_BASE, 0xc2001000);
    vmcs12_set(ns.cache, GUEST_IDTR_BASE, 0xc2002000);
    vmcs12_set(ns.cache, GUEST_FS_BASE, 0);
    vmcs12_set(ns.cache, GUEST_GS_BASE, 0);
    uint64_t *pdpt = (uint64_t *)(uintptr_t)L1(20 * 4096 + 0x40);
    for (int i = 0; i < 4; i++)
        pdpt[i] = L1((21 + i) * 4096ull) | 1;
    pdpt[0] = pdpte0;
    vmcs12_set(ns.cache, GUEST_CR3, L1(20 * 4096 + 0x40));
}

static void test_pae_pdptes(void)
{
    fresh();
    pae32(L1(21 * 4096) | 1);
    CHECK(enter(), "valid PDPTEs: %s", nested_check_last_rule());
    CHECK(fake_vmcs_get(GUEST_PDPTR0) == (L1(21 * 4096) | 1), "vmcs02 PDPTE0 %#llx from L2's CR3",
          ULL(fake_vmcs_get(GUEST_PDPTR0)));
    fresh();
    pae32(0xfff0); /* not present: the rest is ignored */
    CHECK(enter(), "a non-present PDPTE with junk: %s", nested_check_last_rule());

    static const uint64_t bad[] = {1ull << 1, 1ull << 2, 1ull << 5, 1ull << 8, 1ull << 48, 1ull << 63};
    for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        fresh();
        test_log_clear();
        pae32(L1(21 * 4096) | 1 | bad[k]);
        CHECK(!enter(), "PDPTE0 with %#llx: L2 must not run (the CPU would refuse vmcs02)", ULL(bad[k]));
        uint64_t r = vmcs12_get(ns.cache, VM_EXIT_REASON), q = vmcs12_get(ns.cache, EXIT_QUALIFICATION);
        CHECK(r == ENTRY_FAIL(EXIT_REASON_INVALID_STATE) && q == ENTRY_FAIL_PDPTE,
              "PDPTE0 with %#llx: exit reason %#llx qualification %llu, want 33 with qualification 2", ULL(bad[k]),
              ULL(r), ULL(q));
        CHECK(!test_log_contains("ERROR"), "an L1 mistake is no ERROR line: %s", test_log_text());
    }
    /* In IA-32e mode the same CR3 is a PML4: no PDPTEs. */
    fresh();
    uint64_t *pml4 = (uint64_t *)(uintptr_t)L1(20 * 4096);
    pml4[0] = L1(21 * 4096) | 1 | 2 | (1ull << 5); /* R/W and A: reserved in a PDPTE, fine in a PML4E */
    vmcs12_set(ns.cache, GUEST_CR3, L1(20 * 4096));
    CHECK(enter(), "IA-32e mode: no PDPTE check: %s", nested_check_last_rule());
}

int main(void)
{
    test_log_capture();
    log_set_level(LOG_INFO);
    test_l2_state_across_hv_exits();
    test_l1_asks_to_save();
    test_no_timer();
    test_entry_list_bound();
    test_exit_lists_bounded_logged_once();
    test_pae_pdptes();
    return test_summary();
}
