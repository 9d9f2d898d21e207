/*
 * Host tests for VM functions (EPTP switching) and EPT-violation #VE offered to L1
 * (nested/vmfunc.c, nested/ept02_roots.c; SDM 25.5.6, 25.5.7, 26.2.1.1): the EPT02 root
 * cache (one EPT02 per EPT12 root, kept across entries, LRU eviction, INVEPT per root), L2's
 * VMFUNC (hv's switch, or exit 59 to L1), vmcs02's controls, and the #VE conversion of an
 * EPT12 violation (the area, the injection, the conditions, the exception bitmap).
 */
#include <string.h>
#include "lib/x86.h"
#include "nested/ept02.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
enum { PG_LIST = PG_FREE, PG_VE, PG_R1, PG_R2, PG_R3, PG_R4, PG_R5, PG_DATA };
#define EPTP(pg) (GPA(pg) | 0x1e) /* WB, 4-level: each root an empty EPT12 (everything not present) */
#define L2_GPA 0x5000123ull

static int l1_page(uint64_t gpa, uint64_t *host, uint64_t *max)
{
    *host = gpa;
    *max = EPT_RWX;
    return 0;
}
static unsigned flushes;
static void flush_ept(void) { flushes++; }

static enum outcome enter(void) { return V12->launch_state ? l1_vmresume() : l1_vmlaunch(); }

/* L1 ready with a vmcs12 using EPT (root 1), and proc2 extra. */
static void setup(uint32_t proc2)
{
    nh_setup(false);
    nv.l1_page = l1_page;
    nv.flush_ept = flush_ept;
    l1_ready(PG_VMCS_A);
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL,
               vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT | proc2);
    vmcs12_set_eptp(V12, EPTP(PG_R1));
    uint64_t *list = gpa_u64(GPA(PG_LIST));
    memset(list, 0, 4096);
    list[0] = EPTP(PG_R1);
    list[1] = EPTP(PG_R2);
    list[2] = GPA(PG_R3) | 0x19; /* memory type 1 */
    if (proc2 & SECONDARY_VMFUNC) {
        vmcs12_set(V12, VM_FUNCTION_CONTROL, 1);
        vmcs12_set(V12, EPTP_LIST_ADDRESS, GPA(PG_LIST));
    }
    if (proc2 & SECONDARY_EPT_VE)
        vmcs12_set(V12, VE_INFO_ADDRESS, GPA(PG_VE));
    memset(gpa_ptr(GPA(PG_VE)), 0, 4096);
}

static bool vmfunc(uint64_t eax, uint64_t ecx)
{
    rc.regs[HV_REG_RAX] = eax;
    rc.regs[HV_REG_RCX] = ecx;
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 3);
    fake_vmcs_set(GUEST_RIP, 0x1000);
    return l2_exit(EXIT_REASON_VMFUNC, 0);
}

static void test_caps_and_vmcs02(void)
{
    setup(SECONDARY_VMFUNC | SECONDARY_EPT_VE);
    uint64_t v = 0;
    CHECK(nested_caps_msr(&caps, MSR_IA32_VMX_VMFUNC, &v) && v == 1, "IA32_VMX_VMFUNC = 1: %#llx", ULL(v));
    CHECK(enter() == O_ENTERED, "entered with VM functions and #VE");
    uint32_t p2 = (uint32_t)fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL);
    CHECK((p2 & SECONDARY_VMFUNC) && fake_vmcs_get(VM_FUNCTION_CONTROL) == 0,
          "vmcs02: enable VM functions with no function (VMFUNC exits to hv): %#x %#llx", p2,
          ULL(fake_vmcs_get(VM_FUNCTION_CONTROL)));
    CHECK(!(p2 & SECONDARY_EPT_VE), "vmcs02: no #VE (hv converts EPT12's violations)");
    CHECK(fake_vmcs_get(EPT_POINTER) == ns.ept02->eptp && ns.ept02->eptp12 == EPTP(PG_R1), "vmcs02 on root 1's EPT02");
}

/* The cache: one EPT02 per root, kept across entries; LRU eviction; INVEPT per root. */
static void test_roots(void)
{
    setup(0);
    CHECK(enter() == O_ENTERED, "entered on root 1");
    struct ept02 *e1 = ns.ept02;
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, L2_GPA);
    /* root 1 maps L2_GPA, so the violation fills EPT02 */
    uint64_t *pml4 = gpa_u64(GPA(PG_R1)), *pdpt = gpa_u64(GPA(PG_R4)), *pd = gpa_u64(GPA(PG_R5));
    uint64_t *pt = gpa_u64(GPA(PG_DATA));
    memset(pdpt, 0, 4096), memset(pd, 0, 4096), memset(pt, 0, 4096);
    pml4[0] = GPA(PG_R4) | 7;
    pdpt[0] = GPA(PG_R5) | 7;
    pd[L2_GPA >> 21 & 511] = GPA(PG_DATA) | 7;
    pt[L2_GPA >> 12 & 511] = GPA(PG_DATA + 1) | 7 | 6 << 3;
    CHECK(l2_exit(EXIT_REASON_EPT_VIOLATION, 1) && ns.guest_mode && e1->fills == 1, "root 1 filled");
    uint64_t clears = e1->clears;
    /* L1 alternates two EPTPs over entries: neither EPT02 is rebuilt */
    for (int i = 0; i < 4; i++) {
        CHECK(l2_exit(EXIT_REASON_VMCALL, 0) && !ns.guest_mode, "VMCALL to L1");
        vmcs12_set_eptp(V12, EPTP(i & 1 ? PG_R1 : PG_R2));
        CHECK(enter() == O_ENTERED, "entered");
        CHECK(ns.ept02->eptp12 == EPTP(i & 1 ? PG_R1 : PG_R2) && (ns.ept02 == e1) == (i & 1),
              "entry %d on its root's EPT02", i);
        CHECK(fake_vmcs_get(EPT_POINTER) == ns.ept02->eptp, "vmcs02's EPTP is that EPT02's");
    }
    CHECK(e1->clears == clears && e1->fills == 1 && (e1->pages[0][0] & 7), "root 1's EPT02 kept its fill");
    CHECK(ns.ept02_roots.evictions == 0, "no eviction with two roots");
    /* INVEPT single-context of root 2 leaves root 1's EPT02 */
    CHECK(l2_exit(EXIT_REASON_VMCALL, 0), "to L1");
    flushes = 0;
    CHECK(l1_invept(1, EPTP(PG_R2)) == O_SUCCEED && e1->clears == clears && flushes == 1,
          "INVEPT single-context of root 2: root 1's EPT02 kept (%u flushes)", flushes);
    CHECK(l1_invept(1, EPTP(PG_R1)) == O_SUCCEED && e1->clears == clears + 1, "INVEPT of root 1 clears its EPT02");
    /* five roots: the least recently used goes */
    uint64_t roots[] = {EPTP(PG_R1), EPTP(PG_R2), EPTP(PG_R3), EPTP(PG_R4), EPTP(PG_R5)};
    for (int i = 0; i < 5; i++) {
        vmcs12_set_eptp(V12, roots[i]);
        CHECK(enter() == O_ENTERED && l2_exit(EXIT_REASON_VMCALL, 0), "entry on root %d", i + 1);
    }
    CHECK(ns.ept02_roots.evictions == 1, "one eviction: %llu", ULL(ns.ept02_roots.evictions));
    bool r1_kept = false, r2_kept = false;
    for (int i = 0; i < EPT02_ROOTS; i++) {
        r1_kept |= ns.ept02_roots.ctx[i]->eptp12 == EPTP(PG_R1);
        r2_kept |= ns.ept02_roots.ctx[i]->eptp12 == EPTP(PG_R2);
    }
    CHECK(!r1_kept && r2_kept, "root 1 (least recently used) evicted, root 2 kept");
    CHECK(l1_invept(2, 0) == O_SUCCEED, "INVEPT all contexts");
    bool all = true;
    for (int i = 0; i < EPT02_ROOTS; i++)
        all &= ns.ept02_roots.ctx[i]->nused == 1;
    CHECK(all, "all-context INVEPT empties every EPT02");
}

static void test_vmfunc(void)
{
    setup(SECONDARY_VMFUNC | SECONDARY_EPT_VE);
    CHECK(enter() == O_ENTERED, "entered");
    struct ept02 *e1 = ns.ept02;
    CHECK(vmfunc(0, 1) && ns.guest_mode, "VMFUNC 0, entry 1: hv's switch, L2 goes on");
    CHECK(vmcs12_eptp(V12) == EPTP(PG_R2) && vmcs12_get(V12, EPTP_INDEX) == 1, "vmcs12: EPTP of entry 1, index 1");
    CHECK(ns.ept02 != e1 && ns.ept02->eptp12 == EPTP(PG_R2) && fake_vmcs_get(EPT_POINTER) == ns.ept02->eptp,
          "vmcs02 on root 2's EPT02");
    CHECK(fake_vmcs_get(GUEST_RIP) == 0x1003, "RIP past VMFUNC: %#llx", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(vmfunc(0, 0) && ns.ept02 == e1 && vmcs12_get(V12, EPTP_INDEX) == 0, "back to entry 0: root 1's EPT02 again");
    static const struct { uint64_t eax, ecx; const char *what; } fail[] = {
        {0, 512, "index 512"}, {0, 2, "entry 2: memory type 1"}, {0, 3, "entry 3: zero"},
        {1, 0, "function 1 not enabled"}, {63, 0, "function 63"},
    };
    for (unsigned i = 0; i < sizeof(fail) / sizeof(fail[0]); i++) {
        setup(SECONDARY_VMFUNC | SECONDARY_EPT_VE);
        CHECK(enter() == O_ENTERED, "entered");
        vmcs12_set(V12, EPTP_INDEX, 7);
        CHECK(vmfunc(fail[i].eax, fail[i].ecx) && !ns.guest_mode &&
                  vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_VMFUNC && vmcs12_get(V12, GUEST_RIP) == 0x1000,
              "%s: exit 59 to L1 at the VMFUNC", fail[i].what);
        CHECK(vmcs12_eptp(V12) == EPTP(PG_R1) && vmcs12_get(V12, EPTP_INDEX) == 7, "%s: EPTP and index unchanged",
              fail[i].what);
    }
    setup(SECONDARY_VMFUNC);
    vmcs12_set(V12, VM_FUNCTION_CONTROL, 0);
    CHECK(enter() == O_ENTERED && vmfunc(0, 1) && !ns.guest_mode && vmcs12_eptp(V12) == EPTP(PG_R1),
          "EPTP switching off: exit 59");
    setup(SECONDARY_VMFUNC);
    gpa_u64(GPA(PG_LIST))[1] = EPTP(PG_R2) | 0x80; /* bit 7 reserved */
    CHECK(enter() == O_ENTERED && vmfunc(0, 1) && !ns.guest_mode, "list entry with bit 7: exit 59");
}

/* A not-present EPT12 violation at L2_GPA; returns what nested/ did. */
static bool violation(uint64_t qual)
{
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, L2_GPA);
    fake_vmcs_set(GUEST_LINEAR_ADDRESS, 0x7f0000123ull);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0);
    return l2_exit(EXIT_REASON_EPT_VIOLATION, qual);
}

static void test_ve(void)
{
    const uint64_t q = EPT_QUAL_WRITE | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE;
    setup(SECONDARY_VMFUNC | SECONDARY_EPT_VE);
    vmcs12_set(V12, EPTP_INDEX, 0x1ff);
    CHECK(enter() == O_ENTERED, "entered with #VE");
    uint32_t *d = gpa_ptr(GPA(PG_VE));
    uint64_t *a = gpa_ptr(GPA(PG_VE));
    CHECK(violation(q) && ns.guest_mode, "convertible violation: L2 goes on");
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 20),
          "#VE injected: %#llx", ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(d[0] == 48 && d[1] == 0xffffffffu && a[1] == q && a[2] == 0x7f0000123ull && a[3] == L2_GPA &&
              (a[4] & 0xffff) == 0x1ff,
          "area: %u %#x %#llx %#llx %#llx %#llx", d[0], d[1], ULL(a[1]), ULL(a[2]), ULL(a[3]), ULL(a[4]));
    CHECK(violation(q) && !ns.guest_mode && vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_EPT_VIOLATION &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == q,
          "dword 4 not 0: L1's EPT violation");
    /* suppress #VE in the not-present PML4E */
    setup(SECONDARY_EPT_VE);
    gpa_u64(GPA(PG_R1))[0] = 1ull << 63;
    CHECK(enter() == O_ENTERED && violation(q) && !ns.guest_mode && d[1] == 0,
          "bit 63 set: L1's EPT violation, area untouched");
    gpa_u64(GPA(PG_R1))[0] = 0;
    /* without the control */
    setup(0);
    CHECK(enter() == O_ENTERED && violation(q) && !ns.guest_mode && d[1] == 0, "no #VE control: L1's violation");
    /* during event delivery */
    setup(SECONDARY_EPT_VE);
    CHECK(enter() == O_ENTERED, "entered");
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30);
    CHECK(violation(q) && !ns.guest_mode && d[1] == 0, "during event delivery: L1's violation");
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, 0);
    /* CR0.PE = 0 */
    setup(SECONDARY_EPT_VE | SECONDARY_UNRESTRICTED_GUEST);
    CHECK(enter() == O_ENTERED, "entered");
    fake_vmcs_set(GUEST_CR0, fake_vmcs_get(GUEST_CR0) & ~(uint64_t)CR0_PE);
    CHECK(violation(q) && !ns.guest_mode && d[1] == 0, "CR0.PE = 0: L1's violation");
    /* L1's exception bitmap bit 20: exit 0 with vector 20, the area written */
    setup(SECONDARY_EPT_VE);
    vmcs12_set(V12, EXCEPTION_BITMAP, vmcs12_get(V12, EXCEPTION_BITMAP) | 1u << 20);
    CHECK(enter() == O_ENTERED && violation(q) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_EXCEPTION_NMI &&
              vmcs12_get(V12, VM_EXIT_INTR_INFO) == (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 20) && d[1] == 0xffffffffu,
          "exception bitmap bit 20: exit 0, vector 20 (info %#llx), area written",
          ULL(vmcs12_get(V12, VM_EXIT_INTR_INFO)));
    /* an area outside L1's RAM: #VE, nothing written */
    setup(SECONDARY_EPT_VE);
    vmcs12_set(V12, VE_INFO_ADDRESS, GPA(GPA_PAGES));
    CHECK(enter() == O_ENTERED && violation(q) && ns.guest_mode &&
              (fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) & 0xff) == 20,
          "area outside RAM: #VE (dword 4 reads 0)");
}

/* Entries on the same EPTP (every fast VMRESUME) keep their EPT02 (nested_ept02_enter's
 * shortcut, ept02_roots_touch) and still do what use_root would: the root counts as used now
 * (LRU clock), a flush pending from L1's INVEPT happens before L2 runs. */
static void test_same_root(void)
{
    setup(0);
    CHECK(enter() == O_ENTERED && ns.ept02 && ns.ept02->eptp12 == EPTP(PG_R1), "launched on root 1");
    struct ept02 *e = ns.ept02;
    int slot = -1;
    for (int i = 0; i < EPT02_ROOTS; i++)
        if (ns.ept02_roots.ctx[i] == e)
            slot = i;
    CHECK(slot >= 0, "root 1 has a slot");
    CHECK(l2_exit(EXIT_REASON_VMCALL, 0), "to L1");
    vmcs12_set_eptp(V12, EPTP(PG_R2));
    CHECK(enter() == O_ENTERED && ns.ept02 != e, "an entry on root 2");
    uint64_t r2_used = ns.ept02_roots.clock;
    CHECK(l2_exit(EXIT_REASON_VMCALL, 0), "to L1");
    vmcs12_set_eptp(V12, EPTP(PG_R1));
    for (int i = 0; i < 3; i++) {
        CHECK(enter() == O_ENTERED && ns.ept02 == e && l2_exit(EXIT_REASON_VMCALL, 0), "entry %d on root 1: same EPT02", i);
        CHECK(slot >= 0 && ns.ept02_roots.used[slot] == r2_used + 1 + i, "entry %d: root 1 used last (%llu, root 2 %llu)",
              i, ULL(slot >= 0 ? ns.ept02_roots.used[slot] : 0), ULL(r2_used));
    }
    e->flush = true; /* as an INVEPT L1 ran while L2 did not */
    flushes = 0;
    CHECK(enter() == O_ENTERED && flushes == 1 && !e->flush, "the pending flush done at the entry (%u)", flushes);
    CHECK(l2_exit(EXIT_REASON_VMCALL, 0), "to L1");
    flushes = 0;
    CHECK(enter() == O_ENTERED && flushes == 0, "no flush without one pending (%u)", flushes);
}

int main(void)
{
    test_caps_and_vmcs02();
    test_roots();
    test_same_root();
    test_vmfunc();
    test_ve();
    return test_summary();
}
