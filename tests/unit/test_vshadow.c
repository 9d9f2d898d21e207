/*
 * Host tests for VMCS shadowing offered to L1 (nested/vshadow.c; SDM 24.10, 25.10, 26.1,
 * 26.2.1.1, 26.3.1.5, 31.3): L1's shadow VMCSs (VMPTRLD, VMREAD/VMWRITE, VMCLEAR, no VM
 * entry with one), the entry checks of the control, and L2's VMREAD/VMWRITE: a VM exit to L1
 * where L1's bitmap bit is set, else the access to the shadow VMCS at vmcs12's link pointer,
 * with L2's operand through L2's paging and L1's EPT.
 */
#include <string.h>
#include "lib/x86.h"
#include "nested/checks.h"
#include "nested/ept02.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
#ifndef VMCS12_SHADOW
#define VMCS12_SHADOW 0x80000000u /* so that this file also builds on the code before the feature */
#endif
enum { PG_SHADOW = PG_FREE, PG_RBM, PG_WBM, PG_EPT_PML4, PG_EPT_PDPT, PG_EPT_PD, PG_L2DATA, PG_PML_LOG };
#define SHADOW_REV (VMCS12_REVISION | VMCS12_SHADOW)
#define L2_RIP 0xffffffff81000100ull
static struct vmcs12 *shadow(void) { return gpa_ptr(GPA(PG_SHADOW)); }
static void bm_set(unsigned pg, uint32_t e) { ((uint8_t *)gpa_ptr(GPA(pg)))[e / 8] |= (uint8_t)(1u << (e % 8)); }

/* L1 has a shadow VMCS current: VMREAD/VMWRITE on it (through hv's own shadowing when on),
 * VMPTRST names it, VMLAUNCH/VMRESUME fail with VMfailInvalid (26.1 step 4), VMCLEAR clears it. */
static void test_l1_shadow_vmcs(bool hw_shadow)
{
    nh_setup(hw_shadow);
    l1_ready(PG_VMCS_A);
    nh_valid_vmcs12(shadow());
    shadow()->revision = SHADOW_REV;
    vmcs12_set(shadow(), GUEST_RIP, 0x5150);
    CHECK(l1_vmptrld(GPA(PG_SHADOW)) == O_SUCCEED, "VMPTRLD of a shadow VMCS (shadowing offered)");
    uint64_t v = 0, p = 0;
    CHECK(l1_vmptrst(&p) == O_SUCCEED && p == GPA(PG_SHADOW), "VMPTRST: %#llx", ULL(p));
    CHECK(l1_vmread(GUEST_RIP, &v) == O_SUCCEED && v == 0x5150, "VMREAD of it: %#llx", ULL(v));
    CHECK(l1_vmwrite(GUEST_RSP, 0x7788) == O_SUCCEED, "VMWRITE of it");
    CHECK(l1_vmlaunch() == O_FAIL_INVALID, "VMLAUNCH of a shadow VMCS: VMfailInvalid");
    CHECK(l1_vmresume() == O_FAIL_INVALID && !ns.guest_mode, "VMRESUME of a shadow VMCS: VMfailInvalid");
    CHECK(l1_vmclear(GPA(PG_SHADOW)) == O_SUCCEED && ns.current_ptr == ~0ull, "VMCLEAR of it");
    CHECK(vmcs12_get(shadow(), GUEST_RSP) == 0x7788 && shadow()->revision == SHADOW_REV,
          "written back, still a shadow VMCS: rsp %#llx rev %#x", ULL(vmcs12_get(shadow(), GUEST_RSP)),
          shadow()->revision);
    caps.procbased2 &= ~((uint64_t)SECONDARY_SHADOW_VMCS << 32);
    CHECK(l1_vmptrld(GPA(PG_SHADOW)) == O_FAIL_INVALID, "no VMCS shadowing offered: refused (no current VMCS)");
    nested_caps_init(&caps, &hw);
}

/* vmcs12 with "VMCS shadowing", its bitmaps and shadow VMCS in L1's RAM; L1 in VMX operation. */
static void setup_l2(bool hw_shadow)
{
    nh_setup(hw_shadow);
    l1_ready(PG_VMCS_A);
    nh_valid_vmcs12(shadow());
    shadow()->revision = SHADOW_REV;
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_SHADOW_VMCS);
    vmcs12_set(V12, VMREAD_BITMAP, GPA(PG_RBM));
    vmcs12_set(V12, VMWRITE_BITMAP, GPA(PG_WBM));
    vmcs12_set(V12, VMCS_LINK_POINTER, GPA(PG_SHADOW));
    vmcs12_set(V12, GUEST_CR3, GPA(PG_PML4)); /* L2 on L1's page tables: linear == physical */
    nested_shadow_push(&nv);
}

static enum outcome enter(void)
{
    enum outcome o = V12->launch_state ? l1_vmresume() : l1_vmlaunch();
    return o;
}

/* 26.2.1.1 (bitmap addresses) and 26.3.1.5 (the link pointer names a shadow VMCS). */
static void test_entry_checks(void)
{
    setup_l2(true);
    CHECK(enter() == O_ENTERED, "shadowing on, link pointer to a shadow VMCS: entered");
    CHECK(fake_vmcs_get(VMCS_LINK_POINTER) == ~0ull &&
              !(fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_SHADOW_VMCS),
          "vmcs02: no shadowing, no L1 link pointer");
    setup_l2(true);
    vmcs12_set(V12, VMCS_LINK_POINTER, ~0ull);
    CHECK(enter() == O_ENTERED, "shadowing on, link pointer all 1s: entered");
    setup_l2(true);
    shadow()->revision = VMCS12_REVISION; /* bit 31 clear with shadowing on */
    CHECK(enter() == O_ENTRY_FAILED && vmcs12_get(V12, VM_EXIT_REASON) == (VMX_EXIT_REASON_ENTRY_FAIL | 33) &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == 4,
          "link pointer to an ordinary VMCS: exit 33 qualification 4 (reason %#llx)",
          ULL(vmcs12_get(V12, VM_EXIT_REASON)));
    setup_l2(true);
    vmcs12_set(V12, VMREAD_BITMAP, GPA(PG_RBM) + 8);
    CHECK(enter() == O_FAIL_VALID && l1_error() == 7, "VMREAD bitmap unaligned: VMfailValid(7)");
    setup_l2(true);
    vmcs12_set(V12, VMWRITE_BITMAP, 1ull << 39);
    CHECK(enter() == O_FAIL_VALID && l1_error() == 7, "VMWRITE bitmap beyond MAXPHYADDR: VMfailValid(7)");
}

/* One VMREAD (reason 23) or VMWRITE (25) of L2, register form: field in RCX, value in RDX. */
static uint64_t l2_rflags;
static bool l2_access(uint32_t reason, uint64_t field, uint64_t *val, uint32_t info)
{
    rc.regs[HV_REG_RCX] = field;
    rc.regs[HV_REG_RDX] = *val;
    fake_vmcs_set(VMX_INSTRUCTION_INFO, info);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 3);
    fake_vmcs_set(GUEST_RIP, L2_RIP);
    fake_vmcs_set(GUEST_RFLAGS, 0x2 | 0x8d5);
    bool taken = l2_exit(reason, 0);
    *val = rc.regs[HV_REG_RDX];
    l2_rflags = ns.guest_mode ? fake_vmcs_get(GUEST_RFLAGS) : 0;
    return taken;
}
#define REGFORM (II_REGFORM | II_REG1(HV_REG_RDX) | II_REG2(HV_REG_RCX))
/* L2 goes on after the instruction with these arithmetic flags (CF 1, ZF 0x40, none 0). */
static bool l2_done(uint64_t flags)
{
    return ns.guest_mode && fake_vmcs_current() == ns.vmcs02_pa && fake_vmcs_get(GUEST_RIP) == L2_RIP + 3 &&
           (l2_rflags & 0x8d5) == flags && !inj.count;
}

static void test_l2_access(bool hw_shadow)
{
    setup_l2(hw_shadow);
    vmcs12_set(shadow(), GUEST_RIP, 0x1234);
    bm_set(PG_RBM, GUEST_RSP);
    bm_set(PG_WBM, GUEST_RSP);
    CHECK(enter() == O_ENTERED, "entered");
    uint64_t v = 0x5a5a;
    /* bits clear: the shadow VMCS, in L1's memory */
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, REGFORM) && l2_done(0) && v == 0x1234,
          "L2 VMREAD, bit clear: from the shadow VMCS: %#llx flags %#llx", ULL(v), ULL(l2_rflags));
    v = 0xfeed;
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_CR3, &v, REGFORM) && l2_done(0) &&
              vmcs12_get(shadow(), GUEST_CR3) == 0xfeed && vmcs12_get(V12, GUEST_CR3) != 0xfeed,
          "L2 VMWRITE, bit clear: into the shadow VMCS, not vmcs12");
    v = 0x7;
    CHECK(l2_access(EXIT_REASON_VMWRITE, VM_EXIT_REASON, &v, REGFORM) && l2_done(0) &&
              vmcs12_get(shadow(), VM_EXIT_REASON) == 7,
          "L2 VMWRITE of a read-only field with IA32_VMX_MISC[29]: written");
    /* VMfailValid: the error goes to the current VMCS, vmcs12 (31.2) */
    CHECK(l2_access(EXIT_REASON_VMREAD, 0x6ffe, &v, REGFORM) && l2_done(0x40) &&
              vmcs12_get(V12, VM_INSTRUCTION_ERROR) == 12,
          "L2 VMREAD of an unsupported encoding: VMfailValid(12) in vmcs12 (%llu)",
          ULL(vmcs12_get(V12, VM_INSTRUCTION_ERROR)));
    caps.misc &= ~(1ull << 29);
    CHECK(l2_access(EXIT_REASON_VMWRITE, VM_EXIT_REASON, &v, REGFORM) && l2_done(0x40) &&
              vmcs12_get(V12, VM_INSTRUCTION_ERROR) == 13,
          "without IA32_VMX_MISC[29]: VMfailValid(13)");
    nested_caps_init(&caps, &hw);
    /* CPL 3: #GP(0) for L2 (L1's exception bitmap lacks #GP), after the exit decision */
    fake_vmcs_set(GUEST_SS_AR_BYTES, DATA_AR_DPL(3));
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, REGFORM) && ns.guest_mode && inj.count == 1 &&
              inj.vector == 13 && inj.has_error && !inj.error,
          "L2 at CPL 3: #GP(0)");
    fake_vmcs_set(GUEST_SS_AR_BYTES, DATA_AR_DPL(0));
    /* memory operand: VMREAD [rax] through L2's paging */
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 0x40;
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && l2_done(0) &&
              *gpa_u64(GPA(PG_SCRATCH) + 0x40) == 0x1234,
          "L2 VMREAD to memory");
    *gpa_u64(GPA(PG_SCRATCH) + 0x48) = 0xabcd;
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 0x48;
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_RSP | 0, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && !ns.guest_mode,
          "(GUEST_RSP's write bit is set: exit)");
    CHECK(enter() == O_ENTERED, "back to L2");
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 0x48;
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && l2_done(0) &&
              vmcs12_get(shadow(), GUEST_RIP) == 0xabcd,
          "L2 VMWRITE from memory");
    /* bits set, or an encoding beyond bit 14: the VM exit is L1's, with what the CPU gave */
    fake_vmcs_set(EXIT_QUALIFICATION, 0);
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RSP, &v, REGFORM) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_VMREAD && vmcs12_get(V12, VMX_INSTRUCTION_INFO) == REGFORM &&
              vmcs12_get(V12, GUEST_RIP) == L2_RIP && fake_vmcs_current() == vmcs01_pa,
          "L2 VMREAD, bit set: exit 23 to L1");
    CHECK(enter() == O_ENTERED, "back to L2");
    CHECK(l2_access(EXIT_REASON_VMWRITE, 0x8000 | GUEST_RIP, &v, REGFORM) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_VMWRITE,
          "L2 VMWRITE of encoding 0x8000|RIP: exit 25 to L1");
    CHECK(enter() == O_ENTERED, "back to L2");
    CHECK(l2_access(EXIT_REASON_VMREAD, (1ull << 32) | GUEST_RIP, &v, REGFORM) && !ns.guest_mode,
          "L2 VMREAD with bit 32 of the encoding (64-bit mode): exit to L1");
    /* the bitmap is read at the access: L1 clears the bit, L2's next VMREAD of RSP runs */
    ((uint8_t *)gpa_ptr(GPA(PG_RBM)))[GUEST_RSP / 8] = 0;
    CHECK(enter() == O_ENTERED, "back to L2");
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RSP, &v, REGFORM) && l2_done(0), "bit cleared meanwhile: no exit");
    /* without "VMCS shadowing" every VMREAD exits */
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) & ~SECONDARY_SHADOW_VMCS);
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, REGFORM) && !ns.guest_mode, "shadowing off: exit to L1");
}

static void test_l2_link_all_ones(void)
{
    setup_l2(true);
    vmcs12_set(V12, VMCS_LINK_POINTER, ~0ull);
    CHECK(enter() == O_ENTERED, "entered");
    uint64_t v = 0x5a;
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, REGFORM) && l2_done(1) && v == 0x5a,
          "L2 VMREAD, link pointer all 1s: VMfailInvalid");
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_RIP, &v, REGFORM) && l2_done(1), "L2 VMWRITE: VMfailInvalid");
}

/* With L1's EPT: L2's paging structures and operand are L2-physical, translated by EPT12. */
static void test_l2_ept12(void)
{
    setup_l2(false);
    uint64_t *pml4 = gpa_ptr(GPA(PG_EPT_PML4)), *pdpt = gpa_ptr(GPA(PG_EPT_PDPT)), *pd = gpa_ptr(GPA(PG_EPT_PD));
    pml4[0] = GPA(PG_EPT_PDPT) | 7;
    pdpt[0] = GPA(PG_EPT_PD) | 7;
    pd[GPA_BASE >> 21] = GPA_BASE | 7 | 6 << 3 | 0x80;          /* L1's RAM, identity, 2 MiB */
    pd[0x20000000 >> 21] = GPA_BASE | 1 | 6 << 3 | 0x80;        /* L2 0x20000000 -> L1 RAM, read-only */
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT);
    vmcs12_set_eptp(V12, GPA(PG_EPT_PML4) | 0x1e);
    vmcs12_set(shadow(), GUEST_RIP, 0x4242);
    CHECK(enter() == O_ENTERED && ns.ept12, "entered with L1's EPT");
    uint64_t v = 0;
    *gpa_u64(GPA(PG_L2DATA)) = 0x9999;
    rc.regs[HV_REG_RAX] = 0x20000000 + GPA(PG_L2DATA) - GPA_BASE; /* L2 linear == L2-physical */
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_RSP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && l2_done(0) &&
              vmcs12_get(shadow(), GUEST_RSP) == 0x9999,
          "L2 VMWRITE from memory through EPT12");
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_EPT_VIOLATION &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == (EPT_QUAL_WRITE | 1 << 3 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE) &&
              vmcs12_get(V12, GUEST_PHYSICAL_ADDRESS) == rc.regs[HV_REG_RAX] &&
              vmcs12_get(V12, GUEST_LINEAR_ADDRESS) == rc.regs[HV_REG_RAX] && *gpa_u64(GPA(PG_L2DATA)) == 0x9999,
          "L2 VMREAD to a page EPT12 maps read-only: EPT violation for L1 (qual %#llx)",
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)));
    pd[GPA_BASE >> 21] = 0; /* L2's page tables are no longer mapped */
    CHECK(enter() == O_ENTERED, "back to L2");
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_EPT_VIOLATION &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == (1 | EPT_QUAL_GLA_VALID) &&
              vmcs12_get(V12, GUEST_PHYSICAL_ADDRESS) == GPA(PG_PML4),
          "L2's PML4 not in EPT12: EPT violation on the paging-structure read (qual %#llx gpa %#llx)",
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)), ULL(vmcs12_get(V12, GUEST_PHYSICAL_ADDRESS)));
    /* EPTP12 bit 6: L2's paging-structure accesses are writes for EPT violations (29.3.3.2), so
     * L2's page tables on a page EPT12 maps without write access fault, with qualification bit 1. */
    pd[GPA_BASE >> 21] = GPA_BASE | 5 | 6 << 3 | 0x80; /* L1's RAM, R+X */
    vmcs12_set_eptp(V12, GPA(PG_EPT_PML4) | 0x5e);
    CHECK(enter() == O_ENTERED, "back to L2, EPT A/D flags on");
    *gpa_u64(GPA(PG_L2DATA)) = 0x7777;
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_RSP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_EPT_VIOLATION &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == (EPT_QUAL_WRITE | 5 << 3 | EPT_QUAL_GLA_VALID) &&
              vmcs12_get(V12, GUEST_PHYSICAL_ADDRESS) == GPA(PG_PML4) && vmcs12_get(shadow(), GUEST_RSP) == 0x9999,
          "EPT A/D: L2's PML4 on a page EPT12 maps R+X: EPT violation, a write (qual %#llx gpa %#llx)",
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)), ULL(vmcs12_get(V12, GUEST_PHYSICAL_ADDRESS)));
}

/* EPTP12 bit 6 and PML (29.3.5, 29.3.6): L2's VMREAD/VMWRITE memory operands, which hv carries
 * out under L1's VMCS shadowing, set EPT12's accessed and dirty flags and log dirtied pages as
 * the CPU's own accesses would; a full log is L1's PML-full exit, nothing set or written. */
static void test_l2_ept12_ad_pml(void)
{
    setup_l2(false);
    uint64_t *pml4 = gpa_ptr(GPA(PG_EPT_PML4)), *pdpt = gpa_ptr(GPA(PG_EPT_PDPT)), *pd = gpa_ptr(GPA(PG_EPT_PD));
    uint64_t *log = gpa_ptr(GPA(PG_PML_LOG));
    const uint64_t A = 1ull << 8, D = 1ull << 9;
    pml4[0] = GPA(PG_EPT_PDPT) | 7;
    pdpt[0] = GPA(PG_EPT_PD) | 7;
    pd[GPA_BASE >> 21] = GPA_BASE | 7 | 6 << 3 | 0x80;   /* L1's RAM (L2's page tables), clean */
    pd[0x20000000 >> 21] = GPA_BASE | 7 | 6 << 3 | 0x80; /* L2's data, clean */
    pd[0x20200000 >> 21] = GPA_BASE | 7 | 6 << 3 | 0x80; /* more of it, clean */
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL,
               vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT | SECONDARY_PML);
    vmcs12_set_eptp(V12, GPA(PG_EPT_PML4) | 0x5e);
    vmcs12_set(V12, PML_ADDRESS, GPA(PG_PML_LOG));
    vmcs12_set(V12, GUEST_PML_INDEX, 511);
    vmcs12_set(shadow(), GUEST_RIP, 0x4242);
    CHECK(enter() == O_ENTERED && ns.ept12, "entered with EPT A/D and PML: %s", nested_check_last_rule());
    uint64_t v = 0, op = 0x20000000 + GPA(PG_L2DATA) - GPA_BASE; /* L2 linear == L2-physical */
    *gpa_u64(GPA(PG_L2DATA)) = 0x9999;
    rc.regs[HV_REG_RAX] = op;
    CHECK(l2_access(EXIT_REASON_VMWRITE, GUEST_RSP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && l2_done(0) &&
              vmcs12_get(shadow(), GUEST_RSP) == 0x9999,
          "L2 VMWRITE from memory");
    CHECK((pml4[0] & A) && (pdpt[0] & A), "EPT12's upper entries accessed: %llx %llx", ULL(pml4[0]), ULL(pdpt[0]));
    CHECK((pd[GPA_BASE >> 21] & (A | D)) == (A | D), "L2's page tables: accessed and dirty (walks are writes): %llx",
          ULL(pd[GPA_BASE >> 21]));
    CHECK((pd[0x20000000 >> 21] & (A | D)) == A, "the operand read: accessed, clean: %llx", ULL(pd[0x20000000 >> 21]));
    CHECK(vmcs12_get(V12, GUEST_PML_INDEX) == 510 && log[511] == GPA(PG_PML4), "PML: index %llu, entry %llx",
          ULL(vmcs12_get(V12, GUEST_PML_INDEX)), ULL(log[511]));
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && l2_done(0) &&
              *gpa_u64(GPA(PG_L2DATA)) == 0x4242,
          "L2 VMREAD to memory");
    CHECK((pd[0x20000000 >> 21] & (A | D)) == (A | D), "the operand written: dirty: %llx", ULL(pd[0x20000000 >> 21]));
    CHECK(vmcs12_get(V12, GUEST_PML_INDEX) == 509 && log[510] == (op & ~0xfffull), "PML: index %llu, entry %llx",
          ULL(vmcs12_get(V12, GUEST_PML_INDEX)), ULL(log[510]));
    /* The log full: a flag to set is L1's PML-full exit (62); nothing set, nothing written. */
    vmcs12_set(V12, GUEST_PML_INDEX, 0xffff);
    rc.regs[HV_REG_RAX] = op + 0x200000;
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && !ns.guest_mode &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_PML_FULL && !(pd[0x20200000 >> 21] & (A | D)) &&
              *gpa_u64(GPA(PG_L2DATA)) == 0x4242,
          "log full: exit %llu, leaf %llx", ULL(vmcs12_get(V12, VM_EXIT_REASON)), ULL(pd[0x20200000 >> 21]));
    /* Flags already set need no entry: no exit with the log full. */
    CHECK(enter() == O_ENTERED, "back to L2");
    rc.regs[HV_REG_RAX] = op;
    CHECK(l2_access(EXIT_REASON_VMREAD, GUEST_RIP, &v, II_MEM_RAX | II_REG2(HV_REG_RCX)) && l2_done(0),
          "log full, flags set: VMREAD done");
}

int main(void)
{
    test_l1_shadow_vmcs(true);
    test_l1_shadow_vmcs(false);
    test_entry_checks();
    test_l2_access(true);
    test_l2_access(false);
    test_l2_link_all_ones();
    test_l2_ept12();
    test_l2_ept12_ad_pml();
    return test_summary();
}
