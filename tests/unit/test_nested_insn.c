/*
 * Host tests for nested/insn.c: L1's eleven VMX instructions in the order of checks of the
 * SDM's "Operation" sections (Vol. 3C ch. 31): #UD outside VMX operation, #GP(0) at CPL > 0,
 * then VMfailInvalid / VMfailValid with the VM-instruction error (31.4), and the memory
 * operand decoded from the VM-exit instruction information (Table 28-13/28-14) with its
 * faults. Everything runs through nested_handle_vmx_insn on the fake VMCS (nested_harness.c).
 */
#include <string.h>
#include "lib/x86.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define UNMAPPED 0x40000000ull /* above L1's 1 GiB identity map: not present */
#define CHECK_O(got, want, what)                                                                 \
    do {                                                                                         \
        enum outcome o_ = (got);                                                                 \
        CHECK(o_ == (want), "%s: %s, want %s", what, outcome_name(o_), outcome_name(want));      \
    } while (0)
#define CHECK_ERR(got, err, what)                                                                \
    do {                                                                                         \
        enum outcome o_ = (got);                                                                 \
        CHECK(o_ == O_FAIL_VALID && l1_error() == (err), "%s: %s error %u, want VMfailValid(%u)", \
              what, outcome_name(o_), l1_error(), (unsigned)(err));                              \
    } while (0)

static void cpl(unsigned c) { fake_vmcs_set(GUEST_SS_AR_BYTES, DATA_AR_DPL(c)); }
static void vmxe(bool on)
{
    uint64_t cr4 = on ? L1_CR4 : L1_CR4 & ~CR4_VMXE;
    fake_vmcs_set(CR4_READ_SHADOW, cr4); /* L1's view: hv keeps VMXE set in the real CR4 */
}
static uint64_t vmptrst(void)
{
    uint64_t pa = 0;
    CHECK(l1_vmptrst(&pa) == O_SUCCEED, "VMPTRST");
    return pa;
}

/* 32-bit protected mode, 32-bit paging with 4 MiB pages: linear == physical for L1's RAM. */
static void mode32(void)
{
    uint32_t *pd = gpa_ptr(GPA(PG_FREE));
    pd[GPA_BASE >> 22] = (uint32_t)GPA_BASE | 0x83;
    fake_vmcs_set(GUEST_CR3, GPA(PG_FREE));
    fake_vmcs_set(GUEST_CR4, (L1_CR4 & ~CR4_PAE) | (1u << 4)); /* PSE */
    fake_vmcs_set(CR4_READ_SHADOW, (L1_CR4 & ~CR4_PAE) | (1u << 4));
    fake_vmcs_set(GUEST_IA32_EFER, 0);
    for (unsigned s = 0; s < 6; s++) { /* flat segments; CS 32-bit code */
        fake_vmcs_set(GUEST_SEG_AR(s), s == 1 ? 0xc09b : 0xc093);
        fake_vmcs_set(GUEST_SEG_LIMIT(s), 0xffffffff);
    }
}

static const struct { uint32_t reason; const char *name; } others[] = {
    {EXIT_REASON_VMXOFF, "VMXOFF"}, {EXIT_REASON_VMCLEAR, "VMCLEAR"}, {EXIT_REASON_VMPTRLD, "VMPTRLD"},
    {EXIT_REASON_VMPTRST, "VMPTRST"}, {EXIT_REASON_VMREAD, "VMREAD"}, {EXIT_REASON_VMWRITE, "VMWRITE"},
    {EXIT_REASON_VMLAUNCH, "VMLAUNCH"}, {EXIT_REASON_VMRESUME, "VMRESUME"}, {EXIT_REASON_INVEPT, "INVEPT"},
    {EXIT_REASON_INVVPID, "INVVPID"},
};
#define NOTHERS (sizeof(others) / sizeof(others[0]))

/* Every instruction but VMXON: "IF (not in VMX operation) ... THEN #UD" comes before CPL. */
static void test_outside_vmx_operation(void)
{
    nh_setup(false);
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH);
    for (unsigned c = 0; c <= 3; c += 3) {
        cpl(c);
        for (unsigned i = 0; i < NOTHERS; i++) {
            enum outcome o = l1_insn(others[i].reason, II_MEM_RAX, 0);
            CHECK(o == O_UD, "%s outside VMX operation at CPL %u: %s", others[i].name, c, outcome_name(o));
        }
    }
    /* In VMX operation and back out with VMXOFF: #UD again. */
    cpl(0);
    l1_ready(PG_VMCS_A);
    CHECK_O(l1_vmxoff(), O_SUCCEED, "VMXOFF");
    CHECK(!ns.vmxon, "VMXOFF leaves VMX operation");
    for (unsigned i = 0; i < NOTHERS; i++) {
        enum outcome o = l1_insn(others[i].reason, II_MEM_RAX, 0);
        CHECK(o == O_UD, "%s after VMXOFF: %s", others[i].name, outcome_name(o));
    }
}

/* In VMX operation, CPL > 0: #GP(0) before any operand or VMCS check. */
static void test_cpl(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    *gpa_u64(GPA(PG_SCRATCH)) = 1; /* a pointer every check would refuse */
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH);
    rc.regs[HV_REG_RBX] = 99; /* an INVEPT/INVVPID type nobody supports */
    for (unsigned c = 1; c <= 3; c++) {
        cpl(c);
        for (unsigned i = 0; i < NOTHERS; i++) {
            enum outcome o = l1_insn(others[i].reason, II_MEM_RAX | II_REG2(HV_REG_RBX), 0);
            CHECK(o == O_GP, "%s at CPL %u: %s", others[i].name, c, outcome_name(o));
        }
        CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_GP, "VMXON in VMX operation at CPL > 0");
    }
    cpl(0);
    CHECK(ns.vmxon && ns.current_ptr == GPA(PG_VMCS_A), "nothing changed");
}

static void test_vmxon(void)
{
    nh_setup(false);
    uint32_t *rev = gpa_ptr(GPA(PG_VMXON));
    *rev = VMCS12_REVISION;
    /* #UD: CR4.VMXE = 0 as L1 sees it, also at CPL 3 (before the CPL check) */
    vmxe(false);
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_UD, "VMXON with CR4.VMXE = 0");
    cpl(3);
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_UD, "VMXON with CR4.VMXE = 0 at CPL 3");
    vmxe(true);
    /* #GP(0): CPL > 0, CR0/CR4 not supported in VMX operation (IA32_VMX_CR*_FIXED*), before
     * the operand is even read (an unmapped operand gives no #PF) */
    CHECK_O(l1_vmxon(1), O_GP, "VMXON at CPL 3, bad pointer");
    cpl(0);
    fake_vmcs_set(CR0_READ_SHADOW, L1_CR0 & ~CR0_NE); /* NE is hv's bit: L1's view of it */
    rc.regs[HV_REG_RAX] = UNMAPPED;
    CHECK_O(l1_insn(EXIT_REASON_VMXON, II_MEM_RAX, 0), O_GP, "VMXON with CR0.NE = 0 (fixed 1)");
    fake_vmcs_set(CR0_READ_SHADOW, L1_CR0);
    fake_vmcs_set(CR4_READ_SHADOW, L1_CR4 | (1u << 12)); /* LA57: not in CR4_FIXED1 */
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_GP, "VMXON with a CR4 bit fixed to 0");
    vmxe(true);
    /* the operand: #PF if not mapped */
    rc.regs[HV_REG_RAX] = UNMAPPED;
    CHECK_O(l1_insn(EXIT_REASON_VMXON, II_MEM_RAX, 0), O_PF, "VMXON operand not mapped");
    CHECK(inj.error == 0 && inj.cr2 == UNMAPPED, "#PF error %#x cr2 %#llx", inj.error, ULL(inj.cr2));
    /* VMfailInvalid: not 4 KiB aligned, beyond the physical-address width, not RAM, wrong
     * revision identifier or bit 31 set (no current VMCS yet: VMfail is VMfailInvalid) */
    const struct { uint64_t pa; uint32_t rev; const char *what; } bad[] = {
        {GPA(PG_VMXON) + 0x800, VMCS12_REVISION, "unaligned"},
        {GPA(PG_VMXON) | 1ull << 39, VMCS12_REVISION, "beyond MAXPHYADDR"},
        {0x1000, VMCS12_REVISION, "outside RAM"},
        {GPA(PG_VMXON), VMCS12_REVISION + 1, "wrong revision"},
        {GPA(PG_VMXON), VMCS12_REVISION | 0x80000000u, "revision bit 31"},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        *rev = bad[i].rev;
        enum outcome o = l1_vmxon(bad[i].pa);
        CHECK(o == O_FAIL_INVALID && !ns.vmxon, "VMXON %s: %s", bad[i].what, outcome_name(o));
    }
    *rev = VMCS12_REVISION;
    ram_hole = GPA(PG_VMXON);
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_FAIL_INVALID, "VMXON region in hv's memory");
    ram_hole = 0;
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_SUCCEED, "VMXON");
    CHECK(ns.vmxon && ns.vmxon_ptr == GPA(PG_VMXON), "in VMX operation");
    CHECK(vmptrst() == ~0ull, "no current VMCS after VMXON");
    /* In VMX operation: VMfail(15), VMfailInvalid without a current VMCS */
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_FAIL_INVALID, "VMXON in VMX operation, no current VMCS");
    l1_ready(PG_VMCS_A);
    CHECK_ERR(l1_vmxon(GPA(PG_VMXON)), VMXERR_VMXON_IN_ROOT, "VMXON in VMX operation");
}

static void test_vmxoff(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    CHECK_O(l1_vmwrite(GUEST_RIP, 0x1234), O_SUCCEED, "VMWRITE");
    CHECK_O(l1_vmxoff(), O_SUCCEED, "VMXOFF");
    CHECK(!ns.vmxon, "out of VMX operation");
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_SUCCEED, "VMXON again");
    CHECK(vmptrst() == ~0ull, "VMXOFF forgot the current VMCS");
    CHECK_O(l1_vmptrld(GPA(PG_VMCS_A)), O_SUCCEED, "VMPTRLD the old one");
    uint64_t v;
    CHECK(l1_vmread(GUEST_RIP, &v) == O_SUCCEED && v == 0x1234, "its data survived: %#llx", ULL(v));
}

static void test_vmclear(void)
{
    nh_setup(false);
    *(uint32_t *)gpa_ptr(GPA(PG_VMXON)) = VMCS12_REVISION;
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_SUCCEED, "VMXON");
    /* No current VMCS: VMfail is VMfailInvalid */
    CHECK_O(l1_vmclear(GPA(PG_VMCS_A) + 8), O_FAIL_INVALID, "VMCLEAR unaligned, no current VMCS");
    CHECK_O(l1_vmclear(GPA(PG_VMXON)), O_FAIL_INVALID, "VMCLEAR of the VMXON pointer, no current VMCS");
    l1_ready(PG_VMCS_A);
    CHECK_ERR(l1_vmclear(GPA(PG_VMCS_B) + 8), VMXERR_VMCLEAR_INVALID_ADDR, "VMCLEAR unaligned");
    CHECK_ERR(l1_vmclear(GPA(PG_VMCS_B) | 1ull << 39), VMXERR_VMCLEAR_INVALID_ADDR, "VMCLEAR beyond MAXPHYADDR");
    CHECK_ERR(l1_vmclear(GPA_BASE - 4096), VMXERR_VMCLEAR_INVALID_ADDR, "VMCLEAR outside RAM");
    CHECK_ERR(l1_vmclear(GPA(PG_VMXON)), VMXERR_VMCLEAR_VMXON_PTR, "VMCLEAR of the VMXON pointer");
    CHECK(vmptrst() == GPA(PG_VMCS_A), "failed VMCLEARs keep the current VMCS");
    /* VMCLEAR needs no revision identifier; it does not touch the current VMCS */
    struct vmcs12 *b = gpa_ptr(GPA(PG_VMCS_B));
    b->revision = 0x1234;
    b->launch_state = 1;
    CHECK_O(l1_vmclear(GPA(PG_VMCS_B)), O_SUCCEED, "VMCLEAR of another region");
    CHECK(b->launch_state == 0 && vmptrst() == GPA(PG_VMCS_A), "B clear, A still current");
    /* VMCLEAR of the current VMCS: its data in memory, launch state clear, no current VMCS */
    CHECK_O(l1_vmwrite(GUEST_RSP, 0xfeed), O_SUCCEED, "VMWRITE");
    struct vmcs12 *a = gpa_ptr(GPA(PG_VMCS_A));
    a->launch_state = 1;
    ns.cache->launch_state = 1;
    CHECK_O(l1_vmclear(GPA(PG_VMCS_A)), O_SUCCEED, "VMCLEAR of the current VMCS");
    CHECK(vmptrst() == ~0ull, "no current VMCS");
    CHECK(vmcs12_get(a, GUEST_RSP) == 0xfeed && a->launch_state == 0, "region: RSP %#llx, launch %u",
          ULL(vmcs12_get(a, GUEST_RSP)), a->launch_state);
    CHECK_O(l1_vmread(GUEST_RSP, &(uint64_t){0}), O_FAIL_INVALID, "VMREAD without a current VMCS");
    /* the operand */
    rc.regs[HV_REG_RAX] = UNMAPPED + 0x10;
    CHECK_O(l1_insn(EXIT_REASON_VMCLEAR, II_MEM_RAX, 0), O_PF, "VMCLEAR operand not mapped");
    CHECK(inj.error == 0 && inj.cr2 == UNMAPPED + 0x10, "#PF error %#x cr2 %#llx", inj.error, ULL(inj.cr2));
}

static void test_vmptrld(void)
{
    nh_setup(false);
    *(uint32_t *)gpa_ptr(GPA(PG_VMXON)) = VMCS12_REVISION;
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_SUCCEED, "VMXON");
    struct vmcs12 *a = gpa_ptr(GPA(PG_VMCS_A)), *b = gpa_ptr(GPA(PG_VMCS_B));
    nh_valid_vmcs12(a);
    nh_valid_vmcs12(b);
    vmcs12_set(a, GUEST_RIP, 0xaaaa);
    vmcs12_set(b, GUEST_RIP, 0xbbbb);
    CHECK_O(l1_vmptrld(GPA(PG_VMCS_A) + 16), O_FAIL_INVALID, "VMPTRLD unaligned, no current VMCS");
    CHECK_O(l1_vmptrld(GPA(PG_VMCS_A)), O_SUCCEED, "VMPTRLD A");
    CHECK(vmptrst() == GPA(PG_VMCS_A), "A is current");
    uint64_t v;
    CHECK(l1_vmread(GUEST_RIP, &v) == O_SUCCEED && v == 0xaaaa, "A's data: %#llx", ULL(v));
    /* errors 9, 10, 11 in the SDM's order; the current VMCS stays */
    CHECK_ERR(l1_vmptrld(GPA(PG_VMCS_B) + 16), VMXERR_VMPTRLD_INVALID_ADDR, "VMPTRLD unaligned");
    CHECK_ERR(l1_vmptrld(GPA(PG_VMCS_B) | 1ull << 39), VMXERR_VMPTRLD_INVALID_ADDR, "VMPTRLD beyond MAXPHYADDR");
    CHECK_ERR(l1_vmptrld(0x2000), VMXERR_VMPTRLD_INVALID_ADDR, "VMPTRLD outside RAM");
    ram_hole = GPA(PG_VMCS_B);
    CHECK_ERR(l1_vmptrld(GPA(PG_VMCS_B)), VMXERR_VMPTRLD_INVALID_ADDR, "VMPTRLD of hv's memory");
    ram_hole = 0;
    CHECK_ERR(l1_vmptrld(GPA(PG_VMXON)), VMXERR_VMPTRLD_VMXON_PTR, "VMPTRLD of the VMXON pointer");
    b->revision = VMCS12_REVISION ^ 1;
    CHECK_ERR(l1_vmptrld(GPA(PG_VMCS_B)), VMXERR_VMPTRLD_BAD_REVISION, "VMPTRLD wrong revision");
    b->revision = VMCS12_REVISION | 0x80000000u; /* a shadow VMCS, where VMCS shadowing is not offered */
    caps.procbased2 &= ~((uint64_t)SECONDARY_SHADOW_VMCS << 32);
    CHECK_ERR(l1_vmptrld(GPA(PG_VMCS_B)), VMXERR_VMPTRLD_BAD_REVISION, "VMPTRLD shadow-VMCS indicator");
    nested_caps_init(&caps, &hw);
    CHECK(vmptrst() == GPA(PG_VMCS_A), "A still current");
    /* switching: each VMCS keeps its own data */
    b->revision = VMCS12_REVISION;
    CHECK_O(l1_vmwrite(GUEST_RIP, 0xa2), O_SUCCEED, "VMWRITE to A");
    CHECK_O(l1_vmptrld(GPA(PG_VMCS_B)), O_SUCCEED, "VMPTRLD B");
    CHECK(l1_vmread(GUEST_RIP, &v) == O_SUCCEED && v == 0xbbbb, "B's data: %#llx", ULL(v));
    CHECK_O(l1_vmptrld(GPA(PG_VMCS_A)), O_SUCCEED, "VMPTRLD A again");
    CHECK(l1_vmread(GUEST_RIP, &v) == O_SUCCEED && v == 0xa2, "A's VMWRITE kept: %#llx", ULL(v));
    /* operand faults: #PF, non-canonical #GP(0) */
    rc.regs[HV_REG_RAX] = UNMAPPED;
    CHECK_O(l1_insn(EXIT_REASON_VMPTRLD, II_MEM_RAX, 0), O_PF, "VMPTRLD operand not mapped");
    rc.regs[HV_REG_RAX] = 0x0000800000000000ull;
    CHECK_O(l1_insn(EXIT_REASON_VMPTRLD, II_MEM_RAX, 0), O_GP, "VMPTRLD non-canonical operand");
}

static void test_vmptrst(void)
{
    nh_setup(false);
    *(uint32_t *)gpa_ptr(GPA(PG_VMXON)) = VMCS12_REVISION;
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_SUCCEED, "VMXON");
    CHECK(vmptrst() == ~0ull, "VMPTRST without a current VMCS: FFFFFFFF_FFFFFFFFH");
    l1_ready(PG_VMCS_A);
    CHECK(vmptrst() == GPA(PG_VMCS_A), "VMPTRST");
    /* the destination is written: #PF with W set, also for a read-only page (CR0.WP = 1) */
    rc.regs[HV_REG_RAX] = UNMAPPED;
    CHECK_O(l1_insn(EXIT_REASON_VMPTRST, II_MEM_RAX, 0), O_PF, "VMPTRST destination not mapped");
    CHECK(inj.error == 2, "#PF error %#x, want 2 (write, not present)", inj.error);
    gpa_u64(GPA(PG_PDPT))[0] &= ~2ull; /* the 1 GiB page read-only */
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 0x100;
    CHECK_O(l1_insn(EXIT_REASON_VMPTRST, II_MEM_RAX, 0), O_PF, "VMPTRST to a read-only page");
    CHECK(inj.error == 3 && *gpa_u64(GPA(PG_SCRATCH) + 0x100) == 0, "#PF error %#x, want 3; memory %#llx",
          inj.error, ULL(*gpa_u64(GPA(PG_SCRATCH) + 0x100)));
}

static void test_vmread_vmwrite(void)
{
    nh_setup(false);
    *(uint32_t *)gpa_ptr(GPA(PG_VMXON)) = VMCS12_REVISION;
    CHECK_O(l1_vmxon(GPA(PG_VMXON)), O_SUCCEED, "VMXON");
    uint64_t v;
    CHECK_O(l1_vmread(GUEST_RIP, &v), O_FAIL_INVALID, "VMREAD without a current VMCS");
    CHECK_O(l1_vmwrite(GUEST_RIP, 1), O_FAIL_INVALID, "VMWRITE without a current VMCS");
    CHECK_O(l1_vmwrite(POSTED_INTR_NV, 1), O_FAIL_INVALID, "VMWRITE unsupported field, no current VMCS");
    l1_ready(PG_VMCS_A);
    /* error 12: a field hv does not offer, bits 63:15 set (64-bit mode: all 64 bits count) */
    CHECK_ERR(l1_vmread(POSTED_INTR_NV, &v), VMXERR_UNSUPPORTED_FIELD, "VMREAD posted-interrupt vector");
    CHECK_ERR(l1_vmwrite(POSTED_INTR_NV, 1), VMXERR_UNSUPPORTED_FIELD, "VMWRITE posted-interrupt vector");
    CHECK_ERR(l1_vmread(1ull << 32 | GUEST_RIP, &v), VMXERR_UNSUPPORTED_FIELD, "VMREAD bit 32 of the field");
    CHECK_ERR(l1_vmwrite(0x8000 | GUEST_RIP, 1), VMXERR_UNSUPPORTED_FIELD, "VMWRITE bit 15 of the field");
    /* error 13: exit-information fields without IA32_VMX_MISC[29] */
    caps.misc &= ~(1ull << 29);
    CHECK_ERR(l1_vmwrite(VM_EXIT_REASON, 1), VMXERR_VMWRITE_READ_ONLY, "VMWRITE exit reason, MISC[29] = 0");
    CHECK_ERR(l1_vmwrite(GUEST_LINEAR_ADDRESS, 1), VMXERR_VMWRITE_READ_ONLY, "VMWRITE guest linear address");
    caps.misc |= 1ull << 29;
    CHECK_O(l1_vmwrite(VM_EXIT_REASON, 0x30), O_SUCCEED, "VMWRITE exit reason, MISC[29] = 1");
    CHECK(l1_vmread(VM_EXIT_REASON, &v) == O_SUCCEED && v == 0x30, "read back %#llx", ULL(v));
    /* EPT_POINTER exists only while EPT is advertised */
    CHECK_O(l1_vmwrite(EPT_POINTER, 0x5000 | 0x1e), O_SUCCEED, "VMWRITE EPTP, EPT offered");
    uint64_t p2 = caps.procbased2;
    caps.procbased2 &= ~((uint64_t)SECONDARY_EPT << 32);
    CHECK_ERR(l1_vmread(EPT_POINTER, &v), VMXERR_UNSUPPORTED_FIELD, "VMREAD EPTP, EPT not offered");
    caps.procbased2 = p2;
    /* widths (SDM 31.3 VMREAD/VMWRITE, B.1): 16-bit truncation, high half of a 64-bit field */
    CHECK(l1_vmwrite(GUEST_CS_SELECTOR, 0x12345) == O_SUCCEED && l1_vmread(GUEST_CS_SELECTOR, &v) == O_SUCCEED &&
              v == 0x2345, "16-bit field: %#llx", ULL(v));
    CHECK(l1_vmwrite(TSC_OFFSET, 0x1111222233334444ull) == O_SUCCEED && l1_vmread(TSC_OFFSET | 1, &v) == O_SUCCEED &&
              v == 0x11112222, "high half: %#llx", ULL(v));
    CHECK(l1_vmwrite(TSC_OFFSET | 1, 0xabcd) == O_SUCCEED && l1_vmread(TSC_OFFSET, &v) == O_SUCCEED &&
              v == 0x0000abcd33334444ull, "write of the high half: %#llx", ULL(v));
    /* memory operands: VMREAD [rbx+rsi*8+0x10], VMWRITE from [rbx-8] */
    uint32_t mem = II_ASIZE(2) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_INDEX(HV_REG_RSI) | II_SCALE(3);
    uint64_t *slot = gpa_u64(GPA(PG_SCRATCH) + 0x200 + 5 * 8 + 0x10);
    rc.regs[HV_REG_RBX] = GPA(PG_SCRATCH) + 0x200;
    rc.regs[HV_REG_RSI] = 5;
    rc.regs[HV_REG_RCX] = TSC_OFFSET;
    CHECK_O(l1_insn(EXIT_REASON_VMREAD, mem | II_REG2(HV_REG_RCX), 0x10), O_SUCCEED, "VMREAD to memory");
    CHECK(*slot == 0x0000abcd33334444ull, "VMREAD wrote %#llx", ULL(*slot));
    gpa_u64(GPA(PG_SCRATCH) + 0x200)[-1] = 0x77;
    rc.regs[HV_REG_RCX] = GUEST_RSP;
    uint32_t src = II_ASIZE(2) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_NO_INDEX | II_REG2(HV_REG_RCX);
    CHECK(l1_insn(EXIT_REASON_VMWRITE, src, (uint64_t)-8) == O_SUCCEED && l1_vmread(GUEST_RSP, &v) == O_SUCCEED &&
              v == 0x77, "VMWRITE from memory: %#llx", ULL(v));
    /* VMREAD to an unmapped destination: #PF (write); an unsupported field fails first */
    rc.regs[HV_REG_RBX] = UNMAPPED;
    rc.regs[HV_REG_RCX] = GUEST_RIP;
    CHECK_O(l1_insn(EXIT_REASON_VMREAD, src, 0), O_PF, "VMREAD to an unmapped destination");
    CHECK(inj.error == 2 && inj.cr2 == UNMAPPED, "#PF error %#x cr2 %#llx", inj.error, ULL(inj.cr2));
    rc.regs[HV_REG_RCX] = POSTED_INTR_NV;
    enum outcome o = l1_insn(EXIT_REASON_VMREAD, src, 0);
    CHECK_ERR(o, VMXERR_UNSUPPORTED_FIELD, "VMREAD of an unsupported field to an unmapped destination");
    rc.regs[HV_REG_RCX] = GUEST_RIP;
    CHECK_O(l1_insn(EXIT_REASON_VMWRITE, src, 0), O_PF, "VMWRITE from an unmapped source");
    CHECK(inj.error == 0, "#PF error %#x (read)", inj.error);
}

/* Outside 64-bit mode the operands are 32 bits (SDM 31.3 VMREAD/VMWRITE: "operand size"). */
static void test_vmread_vmwrite_32bit(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    mode32();
    uint64_t v;
    CHECK_O(l1_vmwrite(1ull << 32 | GUEST_RIP, 0xffffffff12345678ull), O_SUCCEED, "VMWRITE, field bits 63:32 ignored");
    CHECK(vmcs12_get(ns.cache, GUEST_RIP) == 0x12345678, "natural-width field gets 32 bits: %#llx",
          ULL(vmcs12_get(ns.cache, GUEST_RIP)));
    vmcs12_set(ns.cache, TSC_OFFSET, 0x1111222233334444ull);
    CHECK(l1_vmread(TSC_OFFSET, &v) == O_SUCCEED && v == 0x33334444, "VMREAD 64-bit field: %#llx", ULL(v));
    uint64_t *dst = gpa_u64(GPA(PG_SCRATCH) + 0x300);
    *dst = ~0ull;
    rc.regs[HV_REG_RBX] = GPA(PG_SCRATCH) + 0x300;
    rc.regs[HV_REG_RCX] = TSC_OFFSET;
    uint32_t mem = II_ASIZE(1) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_NO_INDEX | II_REG2(HV_REG_RCX);
    CHECK_O(l1_insn(EXIT_REASON_VMREAD, mem, 0), O_SUCCEED, "VMREAD to memory in 32-bit mode");
    CHECK(*dst == 0xffffffff33334444ull, "4 bytes written: %#llx", ULL(*dst));
}

/* The memory operand (SDM Table 28-13): base + index << scale + displacement, address size,
 * segment base (64-bit mode: FS and GS only), canonical check. */
static void test_operand(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    uint64_t target = GPA(PG_SCRATCH) + 0x400;
    *gpa_u64(target) = GPA(PG_VMCS_B);
    nh_valid_vmcs12(gpa_ptr(GPA(PG_VMCS_B)));
    const struct { uint32_t info; uint64_t base, index, disp, fs, ds; const char *what; } ok[] = {
        {II_ASIZE(2) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_INDEX(HV_REG_RSI) | II_SCALE(2), target - 0x30, 8, 0x10,
         0, 0, "base + index * 4 + disp"},
        {II_ASIZE(2) | II_SEG(3) | II_NO_BASE | II_INDEX(HV_REG_RSI) | II_SCALE(0), 0, target + 8, (uint64_t)-8, 0, 0,
         "index only, negative disp"},
        {II_ASIZE(2) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_NO_INDEX, target, 0, 0, 0, 0x7000000, "DS base ignored"},
        {II_ASIZE(2) | II_SEG(4) | II_BASE(HV_REG_RBX) | II_NO_INDEX, target - 0x1000, 0, 0, 0x1000, 0,
         "FS base added"},
        {II_ASIZE(1) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0xabc00000000ull + target, 0, 0, 0, 0,
         "32-bit address size"},
        {II_ASIZE(2) | II_SEG(3) | II_NO_BASE | II_NO_INDEX, 0, 0, target, 0, 0, "displacement only"},
    };
    for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        rc.regs[HV_REG_RBX] = ok[i].base;
        rc.regs[HV_REG_RSI] = ok[i].index;
        fake_vmcs_set(GUEST_FS_BASE, ok[i].fs);
        fake_vmcs_set(GUEST_DS_BASE, ok[i].ds);
        ns.current_ptr = GPA(PG_VMCS_A);
        enum outcome o = l1_insn(EXIT_REASON_VMPTRLD, ok[i].info, ok[i].disp);
        CHECK(o == O_SUCCEED && ns.current_ptr == GPA(PG_VMCS_B), "%s: %s, current %#llx", ok[i].what,
              outcome_name(o), ULL(ns.current_ptr));
    }
    fake_vmcs_set(GUEST_FS_BASE, 0);
    fake_vmcs_set(GUEST_DS_BASE, 0);
    /* non-canonical: #GP(0), or #SS(0) for an SS-based operand */
    rc.regs[HV_REG_RBX] = 0xffff7fffffff0000ull;
    CHECK_O(l1_insn(EXIT_REASON_VMPTRLD, II_ASIZE(2) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0), O_GP,
            "non-canonical DS operand");
    CHECK_O(l1_insn(EXIT_REASON_VMPTRLD, II_ASIZE(2) | II_SEG(2) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0), O_SS,
            "non-canonical SS operand");
    rc.regs[HV_REG_RBX] = 0x00007ffffffff000ull;
    fake_vmcs_set(GUEST_GS_BASE, 0x2000);
    CHECK_O(l1_insn(EXIT_REASON_VMPTRLD, II_ASIZE(2) | II_SEG(5) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0), O_GP,
            "GS base makes it non-canonical");
    /* 32-bit mode: every segment base counts, the address wraps at 4 GiB; 16-bit addressing */
    mode32();
    ns.current_ptr = GPA(PG_VMCS_A);
    fake_vmcs_set(GUEST_DS_BASE, 0xf0000000ull);
    rc.regs[HV_REG_RBX] = (target - 0xf0000000ull) & 0xffffffff;
    enum outcome o = l1_insn(EXIT_REASON_VMPTRLD, II_ASIZE(1) | II_SEG(3) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0);
    CHECK(o == O_SUCCEED && ns.current_ptr == GPA(PG_VMCS_B), "32-bit mode, DS base, wrap: %s", outcome_name(o));
    ns.current_ptr = GPA(PG_VMCS_A);
    fake_vmcs_set(GUEST_SS_BASE, target - 0x400);
    rc.regs[HV_REG_RBX] = 0x12340300;
    o = l1_insn(EXIT_REASON_VMPTRLD, II_ASIZE(0) | II_SEG(2) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0x100);
    CHECK(o == O_SUCCEED && ns.current_ptr == GPA(PG_VMCS_B), "16-bit addressing, SS base: %s", outcome_name(o));
}

/* Outside 64-bit mode the segment is checked (SDM 31.3, each instruction's "Protected Mode
 * Exceptions"; 5.3, 5.4): #GP(0) for an operand outside the DS/ES/FS/GS/CS limit, an unusable
 * segment, a write to a read-only data or a code segment, a read of an execute-only one;
 * #SS(0) for SS. */
static void test_operand_segments(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    mode32();
    uint64_t target = GPA(PG_SCRATCH) + 0x600;
    *gpa_u64(target) = GPA(PG_VMCS_A);
    const struct { unsigned seg; uint32_t ar, limit; uint64_t off; uint32_t reason; enum outcome o; const char *what; }
        c[] = {
            {3, 0xc093, 0xffffffff, target, EXIT_REASON_VMPTRLD, O_SUCCEED, "flat DS"},
            {3, 0x4093, 0xfff, 0xff8, EXIT_REASON_VMPTRLD, O_SUCCEED, "last 8 bytes within the DS limit"},
            {3, 0x4093, 0xfff, 0xffc, EXIT_REASON_VMPTRLD, O_GP, "8 bytes across the DS limit"},
            {3, 0x4093, 0xfff, 0x1000, EXIT_REASON_VMPTRLD, O_GP, "beyond the DS limit"},
            {2, 0x4093, 0xfff, 0x1000, EXIT_REASON_VMPTRLD, O_SS, "beyond the SS limit"},
            {4, 0x10000, 0xffffffff, target, EXIT_REASON_VMPTRLD, O_GP, "unusable FS"},
            {5, 0xc091, 0xffffffff, target, EXIT_REASON_VMPTRLD, O_SUCCEED, "read-only GS, read"},
            {5, 0xc091, 0xffffffff, target, EXIT_REASON_VMPTRST, O_GP, "read-only GS, write"},
            {1, 0xc09b, 0xffffffff, target, EXIT_REASON_VMPTRLD, O_SUCCEED, "readable code segment, read"},
            {1, 0xc09b, 0xffffffff, target, EXIT_REASON_VMPTRST, O_GP, "code segment, write"},
            {0, 0xc099, 0xffffffff, target, EXIT_REASON_VMPTRLD, O_GP, "execute-only segment, read"},
            {0, 0x4097, 0xfff, 0x1000, EXIT_REASON_VMPTRLD, O_SUCCEED, "expand-down ES above its limit"},
            {0, 0x4097, 0xfff, 0xff8, EXIT_REASON_VMPTRLD, O_GP, "expand-down ES at its limit"},
            {0, 0x0097, 0xfff, 0xfffc, EXIT_REASON_VMPTRLD, O_GP, "expand-down 16-bit ES past 0xffff"},
        };
    for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        for (unsigned s = 0; s < 6; s++) {
            fake_vmcs_set(GUEST_SEG_AR(s), s == 1 ? 0xc09b : 0xc093);
            fake_vmcs_set(GUEST_SEG_LIMIT(s), 0xffffffff);
            fake_vmcs_set(GUEST_SEG_BASE(s), 0);
        }
        fake_vmcs_set(GUEST_SEG_AR(c[i].seg), c[i].ar);
        fake_vmcs_set(GUEST_SEG_LIMIT(c[i].seg), c[i].limit);
        fake_vmcs_set(GUEST_SEG_BASE(c[i].seg), c[i].off == target ? 0 : target - c[i].off);
        rc.regs[HV_REG_RBX] = c[i].off;
        enum outcome o = l1_insn(c[i].reason, II_ASIZE(1) | II_SEG(c[i].seg) | II_BASE(HV_REG_RBX) | II_NO_INDEX, 0);
        CHECK(o == c[i].o, "%s: %s, want %s", c[i].what, outcome_name(o), outcome_name(c[i].o));
    }
}

static void test_invept(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    uint64_t eptp = GPA(PG_FREE) | 0x1e; /* WB, 4-level */
    CHECK_O(l1_invept(2, 0), O_SUCCEED, "INVEPT all-context");
    CHECK_O(l1_invept(1, eptp), O_SUCCEED, "INVEPT single-context");
    /* VMfail(28): a type that is not 1 or 2, or not advertised; an EPTP entry would refuse */
    CHECK_ERR(l1_invept(0, eptp), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT type 0");
    CHECK_ERR(l1_invept(3, eptp), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT type 3");
    CHECK_ERR(l1_invept(1ull << 32 | 2, eptp), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT type bit 32 (64-bit mode)");
    CHECK_ERR(l1_invept(1, GPA(PG_FREE) | 0x1e | 0x80), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT EPTP bit 7");
    CHECK_ERR(l1_invept(1, GPA(PG_FREE) | 0x1a), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT EPTP memory type 2");
    CHECK_ERR(l1_invept(1, GPA(PG_FREE) | 0x16), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT EPTP 3-level walk");
    CHECK_ERR(l1_invept(1, eptp | 1ull << 39), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT EPTP beyond MAXPHYADDR");
    caps.ept_vpid &= ~EPT_CAP_INVEPT_SINGLE;
    CHECK_ERR(l1_invept(1, eptp), VMXERR_INVALID_INVEPT_INVVPID, "INVEPT single-context not advertised");
    caps.ept_vpid |= EPT_CAP_INVEPT_SINGLE;
    /* the type is checked before the descriptor is read; the descriptor may then #PF */
    rc.regs[HV_REG_RAX] = UNMAPPED;
    rc.regs[HV_REG_RBX] = 7;
    CHECK_ERR(l1_insn(EXIT_REASON_INVEPT, II_MEM_RAX | II_REG2(HV_REG_RBX), 0), VMXERR_INVALID_INVEPT_INVVPID,
              "INVEPT bad type, unmapped descriptor");
    rc.regs[HV_REG_RBX] = 2;
    CHECK_O(l1_insn(EXIT_REASON_INVEPT, II_MEM_RAX | II_REG2(HV_REG_RBX), 0), O_PF, "INVEPT unmapped descriptor");
    /* bits 127:64 of the descriptor are not checked (31.3 INVEPT) */
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 0x500;
    gpa_u64(GPA(PG_SCRATCH) + 0x500)[0] = eptp;
    gpa_u64(GPA(PG_SCRATCH) + 0x500)[1] = ~0ull;
    rc.regs[HV_REG_RBX] = 1;
    CHECK_O(l1_insn(EXIT_REASON_INVEPT, II_MEM_RAX | II_REG2(HV_REG_RBX), 0), O_SUCCEED, "INVEPT, bits 127:64 set");
    /* no current VMCS: VMfailInvalid */
    CHECK_O(l1_vmclear(GPA(PG_VMCS_A)), O_SUCCEED, "VMCLEAR");
    CHECK_O(l1_invept(0, eptp), O_FAIL_INVALID, "INVEPT type 0 without a current VMCS");
    /* outside 64-bit mode the type register is 32 bits */
    mode32();
    CHECK_O(l1_invept(1ull << 32 | 2, 0), O_SUCCEED, "INVEPT in 32-bit mode, type bits 63:32 ignored");
    /* not advertised: the instruction does not exist for L1 */
    caps.procbased2 &= ~((uint64_t)SECONDARY_EPT << 32);
    CHECK_O(l1_invept(2, 0), O_UD, "INVEPT without EPT");
}

static void test_invvpid(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    const struct { uint64_t type, lo, hi; enum outcome o; const char *what; } cases[] = {
        {0, 1, 0xffff800000001000ull, O_SUCCEED, "individual address, canonical"},
        {0, 1, 0x0000800000000000ull, O_FAIL_VALID, "individual address, non-canonical"},
        {0, 0, 0x1000, O_FAIL_VALID, "individual address, VPID 0"},
        {1, 5, 0x0000800000000000ull, O_SUCCEED, "single context (address not checked)"},
        {1, 0, 0, O_FAIL_VALID, "single context, VPID 0"},
        {2, 0, 0, O_SUCCEED, "all contexts, VPID 0"},
        {2, 1ull << 16, 0, O_FAIL_VALID, "all contexts, descriptor bits 63:16"},
        {3, 7, 0, O_SUCCEED, "single context retaining globals"},
        {3, 0, 0, O_FAIL_VALID, "single context retaining globals, VPID 0"},
        {1, 0x80000005ull, 0, O_FAIL_VALID, "descriptor bit 31"},
        {4, 1, 0, O_FAIL_VALID, "type 4"},
        {1ull << 32 | 1, 1, 0, O_FAIL_VALID, "type bit 32"},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum outcome o = l1_invvpid(cases[i].type, cases[i].lo, cases[i].hi);
        CHECK(o == cases[i].o && (o != O_FAIL_VALID || l1_error() == VMXERR_INVALID_INVEPT_INVVPID),
              "INVVPID %s: %s (error %u), want %s", cases[i].what, outcome_name(o), l1_error(),
              outcome_name(cases[i].o));
    }
    caps.ept_vpid &= ~EPT_CAP_INVVPID_ADDR;
    CHECK_ERR(l1_invvpid(0, 1, 0), VMXERR_INVALID_INVEPT_INVVPID, "INVVPID type 0 not advertised");
    rc.regs[HV_REG_RAX] = UNMAPPED;
    rc.regs[HV_REG_RBX] = 2;
    CHECK_O(l1_insn(EXIT_REASON_INVVPID, II_MEM_RAX | II_REG2(HV_REG_RBX), 0), O_PF, "INVVPID unmapped descriptor");
    caps.procbased2 &= ~((uint64_t)SECONDARY_VPID << 32);
    CHECK_O(l1_invvpid(2, 0, 0), O_UD, "INVVPID without VPID");
}

int main(void)
{
    test_outside_vmx_operation();
    test_cpl();
    test_vmxon();
    test_vmxoff();
    test_vmclear();
    test_vmptrld();
    test_vmptrst();
    test_vmread_vmwrite();
    test_vmread_vmwrite_32bit();
    test_operand();
    test_operand_segments();
    test_invept();
    test_invvpid();
    return test_summary();
}
