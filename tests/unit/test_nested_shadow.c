/*
 * Host tests for nested/shadow.c: VMCS shadowing for L1 (SDM 25.10). Which encodings L1
 * reads and writes in the shadow VMCS without a VM exit (the VMREAD/VMWRITE bitmaps), and
 * that every such field goes both ways: what L1 wrote in the shadow reaches vmcs12 before hv
 * uses it, what hv changed in vmcs12 is in the shadow before L1 reads it. The shadow VMCS is
 * a fake VMCS of its own (one per pointer), linked from vmcs01 only while L1 has a current
 * vmcs12.
 */
#include <string.h>
#include "lib/x86.h"
#include "nested/checks.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
static bool exits(const uint8_t *bm, uint32_t e) { return (bm[(e & 0x7fff) / 8] >> (e % 8)) & 1; }
static uint64_t sh(uint32_t f) { return fake_vmcs_get_in(ns.shadow_pa, f); }
static uint64_t val_for(uint32_t e) { return (0x3000000000ull + e * 0x10001ull) & vmcs12_width_mask(e); }

/* The bitmaps let through only fields vmcs12 has, and no write of a read-only one. */
static void test_bitmaps(void)
{
    nh_setup(true);
    unsigned reads = 0, writes = 0, bad = 0;
    for (uint32_t e = 0; e < 0x8000; e++) {
        bool r = !exits(vmread_bm, e), w = !exits(vmwrite_bm, e);
        reads += r;
        writes += w;
        unsigned feat = 0;
        bool offered_feat = vmcs12_feat_slot(e, &feat) >= 0 && (nested_vmcs12_features(&caps) & feat);
        if ((r || w) && vmcs12_field_index(e) < 0 && !offered_feat)
            bad++, CHECK(0, "encoding %#x shadowed but not a vmcs12 field", e);
        if (w && vmcs12_field_read_only(e & ~1u))
            bad++, CHECK(0, "read-only encoding %#x writable in the shadow", e);
        if (w && !r)
            bad++, CHECK(0, "encoding %#x writable but not readable", e);
    }
    CHECK(bad == 0 && reads > writes && writes >= 20, "%u readable, %u writable encodings", reads, writes);
    CHECK(!exits(vmwrite_bm, GUEST_RIP) && !exits(vmwrite_bm, TSC_OFFSET) && !exits(vmwrite_bm, TSC_OFFSET | 1),
          "hot fields, both halves of a 64-bit one");
    CHECK(!exits(vmread_bm, VM_EXIT_REASON) && exits(vmwrite_bm, VM_EXIT_REASON), "exit reason: read only");
    CHECK(exits(vmread_bm, EPT_POINTER) && exits(vmwrite_bm, EPT_POINTER), "EPT_POINTER (feature field) exits");
    CHECK(exits(vmread_bm, GUEST_ES_SELECTOR) && exits(vmread_bm, POSTED_INTR_NV), "cold and unsupported fields exit");
    /* KVM's hot path (issue 9): HOST_RSP moves with every system call of a Debian kernel */
    CHECK(!exits(vmwrite_bm, HOST_RSP) && !exits(vmwrite_bm, HOST_CR3) && !exits(vmwrite_bm, HOST_FS_BASE) &&
              !exits(vmwrite_bm, HOST_GS_SELECTOR), "KVM's host fields: no exit");
    CHECK(nested_vmcs12_features(&caps) & VMCS12_FEAT_TPR_SHADOW, "the harness offers TPR shadow");
    CHECK(!exits(vmwrite_bm, TPR_THRESHOLD) && !exits(vmread_bm, TPR_THRESHOLD), "TPR threshold offered: no exit");
    /* KVM reads the PML index after every exit (issue 9: a third L0 exit per round trip) */
    CHECK((nested_vmcs12_features(&caps) & VMCS12_FEAT_PML) && !exits(vmread_bm, GUEST_PML_INDEX) &&
              !exits(vmwrite_bm, GUEST_PML_INDEX), "PML offered: its index does not exit");
    /* L2's segments, activity state and pending debug exceptions: read without an exit, not
     * pulled at entry, so L1's VMWRITE of one must exit (issue 9; KVM writes none of them on
     * its hot path); L1's hot guest fields stay writable */
    static const uint32_t read_only[] = {GUEST_CS_SELECTOR, GUEST_CS_AR_BYTES, GUEST_SS_AR_BYTES, GUEST_ES_BASE,
                                         GUEST_CS_BASE, GUEST_SS_BASE, GUEST_DS_BASE, GUEST_FS_BASE,
                                         GUEST_GS_BASE, GUEST_PENDING_DBG_EXCEPTIONS, GUEST_ACTIVITY_STATE};
    for (unsigned i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
        CHECK(!exits(vmread_bm, read_only[i]) && exits(vmwrite_bm, read_only[i]), "%#x: read, write exits",
              read_only[i]);
    CHECK(!exits(vmwrite_bm, GUEST_RSP) && !exits(vmwrite_bm, GUEST_RFLAGS) && !exits(vmwrite_bm, GUEST_CR0) &&
              !exits(vmwrite_bm, GUEST_INTERRUPTIBILITY_INFO) && !exits(vmwrite_bm, VM_ENTRY_INTR_INFO_FIELD),
          "L1's hot guest fields: no write exit");
    static uint8_t rd[4096], wr[4096];
    nested_shadow_bitmaps(rd, wr, true, 0);
    CHECK(exits(rd, TPR_THRESHOLD) && exits(wr, TPR_THRESHOLD) && exits(wr, GUEST_INTR_STATUS) && !exits(wr, HOST_RSP),
          "a feature field not offered exits (hv answers error 12)");
    hw.misc &= ~(1ull << 29);
    nh_setup(true);
    CHECK(exits(vmread_bm, VM_EXIT_REASON) && !nv.shadow_exit_info, "without IA32_VMX_MISC[29]: exit info exits");
    hw.misc |= 1ull << 29;
}

static void check_linked(bool on, const char *what)
{
    uint64_t link = fake_vmcs_get_in(vmcs01_pa, VMCS_LINK_POINTER);
    bool bit = fake_vmcs_get_in(vmcs01_pa, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_SHADOW_VMCS;
    CHECK(on ? link == ns.shadow_pa && bit && ns.shadowing : link == ~0ull && !bit && !ns.shadowing,
          "%s: link %#llx, shadowing bit %d, want %s", what, ULL(link), bit, on ? "linked" : "none");
    CHECK(fake_vmcs_current() == vmcs01_pa, "%s: vmcs01 current again", what);
}

static void test_link(void)
{
    nh_setup(true);
    check_linked(false, "no current vmcs12");
    l1_ready(PG_VMCS_A);
    check_linked(true, "VMPTRLD");
    CHECK(sh(GUEST_RIP) == vmcs12_get(V12, GUEST_RIP) && sh(CPU_BASED_VM_EXEC_CONTROL) ==
              vmcs12_get(V12, CPU_BASED_VM_EXEC_CONTROL), "the shadow holds vmcs12");
    CHECK(l1_vmclear(GPA(PG_VMCS_B)) == O_SUCCEED, "VMCLEAR of another");
    check_linked(true, "VMCLEAR of another VMCS");
    CHECK(l1_vmclear(GPA(PG_VMCS_A)) == O_SUCCEED, "VMCLEAR of the current");
    check_linked(false, "VMCLEAR of the current VMCS");
    CHECK(l1_vmptrld(GPA(PG_VMCS_A)) == O_SUCCEED, "VMPTRLD");
    check_linked(true, "VMPTRLD again");
    CHECK(l1_vmxoff() == O_SUCCEED, "VMXOFF");
    check_linked(false, "VMXOFF");
}

/* Every field L1 may write without an exit reaches vmcs12 before hv reads it: at nested
 * VM-Enter, at a VMREAD/VMWRITE exit, and in memory at VMCLEAR. */
static void test_pull_every_field(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    unsigned n = 0;
    for (uint32_t e = 0; e < 0x8000; e += 2) /* full encodings: the shadow is a whole VMCS */
        if (!exits(vmwrite_bm, e)) {
            fake_vmcs_set_in(ns.shadow_pa, e, val_for(e)); /* L1's VMWRITE, no exit */
            n++;
        }
    uint64_t v;
    CHECK(l1_vmread(GUEST_ES_SELECTOR, &v) == O_SUCCEED, "a VMREAD exit");
    unsigned wrong = 0;
    for (uint32_t e = 0; e < 0x8000; e += 2)
        if (!exits(vmwrite_bm, e) && vmcs12_get(V12, e) != val_for(e))
            wrong++, CHECK(0, "field %#x: vmcs12 %#llx, shadow %#llx", e, ULL(vmcs12_get(V12, e)), ULL(val_for(e)));
    CHECK(n > 0 && wrong == 0, "%u shadow-written fields in vmcs12 after a VMREAD exit", n);
    CHECK(l1_vmclear(GPA(PG_VMCS_A)) == O_SUCCEED, "VMCLEAR");
    const struct vmcs12 *mem = gpa_ptr(GPA(PG_VMCS_A));
    wrong = 0;
    for (uint32_t e = 0; e < 0x8000; e += 2)
        if (!exits(vmwrite_bm, e) && vmcs12_get(mem, e) != val_for(e))
            wrong++;
    CHECK(wrong == 0, "VMCLEAR wrote them to memory: %u wrong", wrong);
    /* a VMWRITE exit does not lose what L1 wrote in the shadow before it */
    CHECK(l1_vmptrld(GPA(PG_VMCS_A)) == O_SUCCEED, "VMPTRLD");
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RSP, 0x1234560);
    CHECK(l1_vmwrite(GUEST_ES_SELECTOR, 0x18) == O_SUCCEED && vmcs12_get(V12, GUEST_RSP) == 0x1234560 &&
              sh(GUEST_RSP) == 0x1234560, "VMWRITE exit keeps the shadow's RSP");
}

/* Every field L1 may read without an exit holds vmcs12's value whenever L1 can read it. */
static unsigned shadow_mismatches(void)
{
    unsigned wrong = 0;
    for (uint32_t e = 0; e < 0x8000; e += 2)
        if (!exits(vmread_bm, e) && sh(e) != vmcs12_get(V12, e))
            wrong++, CHECK(0, "field %#x: shadow %#llx, vmcs12 %#llx", e, ULL(sh(e)), ULL(vmcs12_get(V12, e)));
    return wrong;
}

static void test_push_every_field(void)
{
    nh_setup(true);
    struct vmcs12 *b = gpa_ptr(GPA(PG_VMCS_B));
    nh_valid_vmcs12(b);
    for (uint32_t e = 0; e < 0x8000; e += 2)
        if (!exits(vmread_bm, e) && vmcs12_field_index(e) >= 0)
            vmcs12_set(b, e, val_for(e));
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmptrld(GPA(PG_VMCS_B)) == O_SUCCEED && shadow_mismatches() == 0, "VMPTRLD B: the shadow is B");
    /* a reflected exit: L2's state and the exit information */
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED, "entered");
    fake_vmcs_set(GUEST_RIP, 0xffffffff8100abcdull);
    fake_vmcs_set(EXIT_QUALIFICATION, 0x44);
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, INTR_INFO_VALID | 14 | INTR_TYPE_HW_EXCEPTION);
    CHECK(l2_exit(EXIT_REASON_HLT, 0x44), "reflected");
    CHECK(sh(GUEST_RIP) == 0xffffffff8100abcdull && sh(VM_EXIT_REASON) == EXIT_REASON_HLT && sh(EXIT_QUALIFICATION) == 0x44,
          "exit in the shadow: RIP %#llx reason %llu", ULL(sh(GUEST_RIP)), ULL(sh(VM_EXIT_REASON)));
    CHECK(shadow_mismatches() == 0, "every readable field after a reflected exit");
    /* VMfailValid: the error number; a VM-entry failure: its reason */
    CHECK(l1_vmptrld(GPA(PG_VMXON)) == O_FAIL_VALID && sh(VM_INSTRUCTION_ERROR) == VMXERR_VMPTRLD_VMXON_PTR,
          "VMfailValid(10) in the shadow: %llu", ULL(sh(VM_INSTRUCTION_ERROR)));
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RFLAGS, 0); /* L1 breaks the guest state in the shadow */
    enum outcome o = l1_vmresume();
    CHECK(o == O_ENTRY_FAILED && sh(VM_EXIT_REASON) == (EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL),
          "VM-entry failure: %s, shadow reason %#llx", outcome_name(o), ULL(sh(VM_EXIT_REASON)));
    CHECK(shadow_mismatches() == 0, "every readable field after a VM-entry failure");
}

/* At nested VM-Enter vmcs02 is built from what L1 wrote in the shadow. */
static void test_entry_pull(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, 0xffffffff81777000ull);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_CR3, 0x5a5000);
    fake_vmcs_set_in(ns.shadow_pa, TSC_OFFSET, 0x1000);
    CHECK(l1_vmlaunch() == O_ENTERED, "entered");
    CHECK(fake_vmcs_get(GUEST_RIP) == 0xffffffff81777000ull && fake_vmcs_get(GUEST_CR3) == 0x5a5000 &&
              fake_vmcs_get(TSC_OFFSET) == 0x1000, "vmcs02 has L1's shadow writes");
    CHECK(fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_EPT &&
              !(fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_SHADOW_VMCS) && fake_vmcs_get(VMCS_LINK_POINTER) == ~0ull,
          "vmcs02 itself links no shadow VMCS");
    static const uint32_t kept[] = {CPU_BASED_VM_EXEC_CONTROL, EXCEPTION_BITMAP, TSC_OFFSET, CR0_READ_SHADOW,
                                    HOST_RSP, HOST_CR3, VM_ENTRY_INSTRUCTION_LEN, VM_INSTRUCTION_ERROR};
    uint32_t w[sizeof(kept) / sizeof(kept[0])], rip_w = fake_vmcs_write_count_in(ns.shadow_pa, GUEST_RIP);
    for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        w[i] = fake_vmcs_write_count_in(ns.shadow_pa, kept[i]);
    vmcs12_set(ns.cache, GUEST_PML_INDEX, 0x1f0); /* hv logged L2's writes in L1's PML (nested/ept02.c) */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && fake_vmcs_current() == vmcs01_pa, "back to vmcs01 after the pushes");
    CHECK(fake_vmcs_get_in(ns.shadow_pa, GUEST_PML_INDEX) == 0x1f0, "the PML index hv moved is pushed: %#llx",
          ULL(fake_vmcs_get_in(ns.shadow_pa, GUEST_PML_INDEX)));
    /* The exit pushes only what it changed: the controls and host state L1 wrote are there. */
    CHECK(fake_vmcs_write_count_in(ns.shadow_pa, GUEST_RIP) == rip_w + 1, "L2's RIP pushed");
    for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        CHECK(fake_vmcs_write_count_in(ns.shadow_pa, kept[i]) == w[i], "field %#x not pushed again at the exit", kept[i]);
    CHECK(shadow_mismatches() == 0, "every readable field after the exit");
}

/* Without IA32_VMX_MISC[29] the exit information is not shadowed: L1's VMREAD exits and hv
 * answers from vmcs12. */
static void test_no_exit_info(void)
{
    hw.misc &= ~(1ull << 29);
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED, "entered");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(fake_vmcs_write_count_in(ns.shadow_pa, VM_EXIT_REASON) == 0, "exit reason not written to the shadow");
    uint64_t v;
    CHECK(l1_vmread(VM_EXIT_REASON, &v) == O_SUCCEED && v == EXIT_REASON_CPUID, "VMREAD exit: %llu", ULL(v));
    hw.misc |= 1ull << 29;
}

/* The fast path's classes of the shadowed fields L1 writes on KVM's hot path: HOST_RSP, which
 * KVM moves with every system call (its kernel stack offset is randomized), is read by no
 * VM-entry check (SDM 26.2.2-26.2.4), so it reruns none; the other host fields rerun the host
 * checks. Figures: KVM's I/O round trip spent ~690 ticks in nested_check_host per VMRESUME. */
static void test_fast_classes(void)
{
    CHECK(nested_fast_field_class(HOST_RSP) == NESTED_CHG_FREE, "HOST_RSP: no check (class %u)",
          nested_fast_field_class(HOST_RSP));
    static const uint32_t host[] = {HOST_CR3, HOST_FS_SELECTOR, HOST_GS_SELECTOR, HOST_FS_BASE, HOST_GS_BASE};
    for (unsigned i = 0; i < sizeof(host) / sizeof(host[0]); i++)
        CHECK(nested_fast_field_class(host[i]) == NESTED_CHG_HOST, "field %#x: the host checks (class %u)", host[i],
              nested_fast_field_class(host[i]));
    /* a bad HOST_FS_BASE written with HOST_RSP still fails the entry (26.2.3) */
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "launched, exit");
    fake_vmcs_set_in(ns.shadow_pa, HOST_RSP, 0x7100);
    fake_vmcs_set_in(ns.shadow_pa, HOST_FS_BASE, 1ull << 60);
    CHECK(l1_vmresume() == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_HOST,
          "HOST_RSP and a non-canonical HOST_FS_BASE: VMfailValid(8)");
    fake_vmcs_set_in(ns.shadow_pa, HOST_FS_BASE, 0);
    CHECK(l1_vmresume() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "entered (after a failure: the full path), exit");
    fake_vmcs_set_in(ns.shadow_pa, HOST_RSP, 0x7100);
    uint64_t f0 = ns.fast_entries;
    CHECK(l1_vmresume() == O_ENTERED && ns.fast_entries == f0 + 1, "HOST_RSP alone: the fast path");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && fake_vmcs_get_in(ns.vmcs01_pa, GUEST_RSP) == 0x7100,
          "the next exit gives L1 the new HOST_RSP: %#llx", ULL(fake_vmcs_get_in(ns.vmcs01_pa, GUEST_RSP)));
}

/* VMRESUME after a reflected exit (nested/vmenter_fast.c): only what L1 changed is redone,
 * and every change still reaches vmcs02 or fails the entry as the full checks would. */
static void test_fast_resume(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "launched, exit");
    uint64_t fast0 = ns.fast_entries, rip = sh(GUEST_RIP) + 2;
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, rip);
    fake_vmcs_set_in(ns.shadow_pa, HOST_RSP, 0x7000);
    CHECK(l1_vmresume() == O_ENTERED && fake_vmcs_get(GUEST_RIP) == rip && ns.fast_entries == fast0 + 1,
          "RIP and HOST_RSP changed: fast entry, vmcs02 RIP %#llx", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    uint64_t cr0 = sh(GUEST_CR0) ^ (1ull << 1);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_CR0, cr0);
    CHECK(l1_vmresume() == O_ENTERED && (fake_vmcs_get(GUEST_CR0) & (1ull << 1)) == (cr0 & (1ull << 1)) &&
              ns.fast_entries == fast0 + 1, "CR0 changed: the full path, vmcs02 CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    fake_vmcs_set_in(ns.shadow_pa, VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | (1u << 8) | 32); /* type 1 is reserved */
    CHECK(l1_vmresume() == O_FAIL_VALID && ns.fast_entries == fast0 + 1, "a bad injection (reserved type 1): VMfailValid");
    fake_vmcs_set_in(ns.shadow_pa, VM_ENTRY_INTR_INFO_FIELD, 0);
    fake_vmcs_set_in(ns.shadow_pa, HOST_CR3, 1ull << 60);
    CHECK(l1_vmresume() == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_HOST, "a bad HOST_CR3: VMfailValid(8)");
    fake_vmcs_set_in(ns.shadow_pa, HOST_CR3, GPA(PG_PML4));
    CHECK(l1_vmresume() == O_ENTERED, "entered again");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    uint64_t f1 = ns.fast_entries;
    CHECK(l1_vmwrite(GUEST_ES_SELECTOR, 0x18) == O_SUCCEED && l1_vmresume() == O_ENTERED &&
              fake_vmcs_get(GUEST_ES_SELECTOR) == 0x18 && ns.fast_entries == f1,
          "a VMWRITE exit (unshadowed ES): the full path, vmcs02 ES %#llx", ULL(fake_vmcs_get(GUEST_ES_SELECTOR)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    uint64_t rflags = sh(GUEST_RFLAGS);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RFLAGS, 0);
    CHECK(l1_vmresume() == O_ENTRY_FAILED, "RFLAGS bit 1 clear: VM-entry failure (the fast checks)");
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RFLAGS, rflags);
    CHECK(l1_vmresume() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "entered again, exit");
}

/* VMRESUME after an exit that changed L2's RIP alone (NESTED_CHG_RIP): only RIP's rule runs,
 * and a bad RIP still fails the entry as the full checks fail it (SDM 26.3.1.4: exit 33 with
 * bit 31, qualification 0); RIP with RFLAGS still runs the RFLAGS rules. */
static void entry_failed_with(const char *rule, const char *what)
{
    uint64_t r = vmcs12_get(ns.cache, VM_EXIT_REASON), q = vmcs12_get(ns.cache, EXIT_QUALIFICATION);
    CHECK(r == (VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE) && q == ENTRY_FAIL_DEFAULT &&
              strstr(nested_check_last_rule(), rule), "%s: exit reason %#llx qualification %llu, rule \"%s\"", what,
          ULL(r), ULL(q), nested_check_last_rule());
}

static void test_fast_resume_rip(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "launched, exit");
    uint64_t fast0 = ns.fast_entries, rip = sh(GUEST_RIP), rflags = sh(GUEST_RFLAGS);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, rip + 2);
    CHECK(l1_vmresume() == O_ENTERED && fake_vmcs_get(GUEST_RIP) == rip + 2 && ns.fast_entries == fast0 + 1,
          "RIP alone changed: fast entry, vmcs02 RIP %#llx", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, 0x0000800000000000ull); /* not canonical; bits 63:32 set */
    CHECK(l1_vmresume() == O_ENTRY_FAILED && ns.fast_entries == fast0 + 1, "a bad RIP alone: VM-entry failure");
    entry_failed_with("26.3.1.4: guest RIP", "a bad RIP alone");
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, rip);
    CHECK(l1_vmresume() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "entered again (full path), exit");
    fast0 = ns.fast_entries;
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, rip + 3);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RFLAGS, rflags & ~2ull); /* bit 1 must be 1 */
    CHECK(l1_vmresume() == O_ENTRY_FAILED && ns.fast_entries == fast0, "RIP and a bad RFLAGS: VM-entry failure");
    entry_failed_with("26.3.1.4: guest RFLAGS reserved bits", "RIP and a bad RFLAGS");
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RFLAGS, rflags);
    CHECK(l1_vmresume() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "entered again, exit");
    fast0 = ns.fast_entries;
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RIP, rip + 4);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_RFLAGS, rflags | 1); /* CF */
    CHECK(l1_vmresume() == O_ENTERED && fake_vmcs_get(GUEST_RFLAGS) == (rflags | 1) && ns.fast_entries == fast0 + 1,
          "RIP and a good RFLAGS: fast entry, vmcs02 RFLAGS %#llx", ULL(fake_vmcs_get(GUEST_RFLAGS)));
}

/* An exit reflected before vmcs02 ever ran (an NMI or a held INIT for L1 right after its
 * entry): the entry's guest state never reached vmcs02, so the next VMRESUME must not take the
 * fast path on the belief that vmcs02 holds what vmcs12 does (review finding, SDM 28.3). */
static void test_reflect_before_run(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "launched, exit");
    uint64_t cr0 = sh(GUEST_CR0) ^ (1ull << 1);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_CR0, cr0);
    CHECK(l1_vmresume() == O_ENTERED, "CR0 changed: entered (full path)");
    nested_reflect_nmi(&nv); /* before vmcs02 runs */
    uint64_t fast0 = ns.fast_entries;
    CHECK(l1_vmresume() == O_ENTERED, "entered again");
    CHECK((fake_vmcs_get(GUEST_CR0) & (1ull << 1)) == (cr0 & (1ull << 1)) && ns.fast_entries == fast0,
          "vmcs02 has L1's CR0 %#llx (fast entries %llu)", ULL(fake_vmcs_get(GUEST_CR0)), ULL(ns.fast_entries - fast0));
}

/* The fields a reflected exit leaves in vmcs02 are exactly those L1 cannot read through the
 * shadow (its VMREAD exits to hv, which syncs them first); the other guest fields are shadowed. */
static void test_rare_not_shadowed(void)
{
    nh_setup(true);
    unsigned bad = 0;
#define RARE_(e) if (!exits(vmread_bm, e) || !nested_rare_field(e)) bad++, CHECK(0, "rare field %#x shadowed", e);
#define HOT_(e) if (exits(vmread_bm, e) || nested_rare_field(e)) bad++, CHECK(0, "hot field %#x not shadowed", e);
    NESTED_GUEST_RARE_LIST(RARE_)
    NESTED_EXIT_INFO_RARE_LIST(RARE_)
    NESTED_GUEST_HOT_LIST(HOT_)
#undef RARE_
#undef HOT_
    CHECK(bad == 0 && exits(vmread_bm, GUEST_DR7) && exits(vmread_bm, GUEST_IA32_EFER | 1),
          "the lazily synced fields exit on VMREAD");
}

/* A VMRESUME after a reflected exit that takes the full path (L1 changed a shadowed field the
 * fast path does not handle) rebuilds vmcs02 from vmcs12: the fields the exit left in vmcs02
 * are synced first, so vmcs02 keeps L2's values. */
static void test_lazy_full_path(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED, "launched");
    fake_vmcs_set(GUEST_GDTR_BASE, 0x5550000);
    fake_vmcs_set(GUEST_SYSENTER_ESP, 0x5551000);
    fake_vmcs_set(IO_RDI, 0x5552000);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    uint64_t fast0 = ns.fast_entries, cr0 = sh(GUEST_CR0) ^ (1ull << 1);
    fake_vmcs_set_in(ns.shadow_pa, GUEST_CR0, cr0); /* L1's VMWRITE in the shadow: no exit */
    CHECK(l1_vmresume() == O_ENTERED && ns.fast_entries == fast0, "CR0 changed: the full path");
    CHECK(fake_vmcs_get(GUEST_GDTR_BASE) == 0x5550000 && fake_vmcs_get(GUEST_SYSENTER_ESP) == 0x5551000,
          "vmcs02 keeps L2's GDTR base %#llx, SYSENTER_ESP %#llx", ULL(fake_vmcs_get(GUEST_GDTR_BASE)),
          ULL(fake_vmcs_get(GUEST_SYSENTER_ESP)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    uint64_t v = 0;
    CHECK(l1_vmread(IO_RDI, &v) == O_SUCCEED && v == 0x5552000, "IO_RDI through a VMREAD exit: %#llx", ULL(v));
}

/* A reflected exit compares the fields it copies as they are with vmcs12 and writes into
 * the shadow only those that changed (the shadow held vmcs12's values); what hv makes up
 * (an INIT exit's reason, an entry failure's) reaches it too. */
static void test_push_changed_only(void)
{
    static const uint32_t trk[] = {
#define E_(e) e,
        NESTED_EXIT_TRACKED_LIST(E_)
#undef E_
    };
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0), "launched, exit");
    CHECK(l1_vmresume() == O_ENTERED, "resumed");
    uint32_t w0[sizeof(trk) / sizeof(trk[0])];
    for (unsigned i = 0; i < sizeof(trk) / sizeof(trk[0]); i++)
        w0[i] = fake_vmcs_write_count_in(ns.shadow_pa, trk[i]);
    fake_vmcs_set(GUEST_FS_BASE, 0x7f0000abc000ull);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "the same exit again, L2's FS base changed");
    unsigned written = 0;
    for (unsigned i = 0; i < sizeof(trk) / sizeof(trk[0]); i++)
        written += fake_vmcs_write_count_in(ns.shadow_pa, trk[i]) != w0[i];
    CHECK(written == 1 && sh(GUEST_FS_BASE) == 0x7f0000abc000ull, "%u tracked fields written to the shadow, FS base %#llx",
          written, ULL(sh(GUEST_FS_BASE)));
    CHECK(shadow_mismatches() == 0, "the shadow is vmcs12");
    /* every one changed */
    CHECK(l1_vmresume() == O_ENTERED, "resumed");
    for (unsigned i = 0; i < sizeof(trk) / sizeof(trk[0]); i++)
        fake_vmcs_set(trk[i], (vmcs12_get(V12, trk[i]) + 0x11) & vmcs12_width_mask(trk[i]));
    CHECK(l2_exit(fake_vmcs_get(VM_EXIT_REASON), 0x11), "an exit where each changed");
    CHECK(shadow_mismatches() == 0, "the shadow is vmcs12");
    /* an exit hv makes up */
    CHECK(l1_vmresume() == O_ENTERED, "resumed");
    regcache_reset(&rc);
    nested_reflect_init(&nv);
    regcache_flush(&rc);
    CHECK(sh(VM_EXIT_REASON) == EXIT_REASON_INIT_SIGNAL && shadow_mismatches() == 0, "INIT exit in the shadow");
}

int main(void)
{
    test_bitmaps();
    test_link();
    test_pull_every_field();
    test_push_every_field();
    test_entry_pull();
    test_no_exit_info();
    test_fast_resume();
    test_fast_classes();
    test_fast_resume_rip();
    test_reflect_before_run();
    test_rare_not_shadowed();
    test_lazy_full_path();
    test_push_changed_only();
    return test_summary();
}
