/*
 * Host tests for vmcs02's controls on a fast VMRESUME (nested/vmenter.c keep_controls,
 * nested/vmenter_fast.c): vmcs12's controls cannot have changed since the full entry that
 * built vmcs02's, so they are kept; what hv changed in vmcs02 while L2 ran (an NMI window,
 * MTF) goes, and what lives outside vmcs12 (the VPID's flush, EPT02's root, the per-entry APIC
 * fields) is still redone at every entry.
 */
#include <string.h>
#include "lib/x86.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
static uint64_t g02(uint32_t f) { return fake_vmcs_get_in(ns.vmcs02_pa, f); }
static uint32_t w02(uint32_t f) { return fake_vmcs_write_count_in(ns.vmcs02_pa, f); }

/* Before the first entry: vmcs12 and the shadow VMCS L1 writes alike. */
static void set12(uint32_t f, uint64_t v)
{
    vmcs12_set(V12, f, v);
    fake_vmcs_set_in(ns.shadow_pa, f, v);
}

static int nrec;
static uint16_t last_vpid;
static void record(uint64_t type, uint16_t vpid, uint64_t la) { nrec++, last_vpid = vpid; }

/* Launched, one exit reflected: the next VMRESUME may take the fast path. */
static void launched(void)
{
    CHECK(l1_vmlaunch() == O_ENTERED && l2_exit(EXIT_REASON_CPUID, 0) && ns.fast_ok, "launched, exit reflected");
}

static void resume_fast(const char *what)
{
    uint64_t f0 = ns.fast_entries;
    CHECK(l1_vmresume() == O_ENTERED && ns.fast_entries == f0 + 1, "%s: fast VMRESUME", what);
}

/* hv's NMI window and MTF left in vmcs02 by L2's last run (hv/exit.c deliver_pending_nmi) are
 * gone at the next entry; the other controls are not written again. */
static void test_kept(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    launched();
    uint64_t proc = g02(CPU_BASED_VM_EXEC_CONTROL);
    CHECK(!(proc & (CPU_BASED_NMI_WINDOW_EXITING | CPU_BASED_MONITOR_TRAP_FLAG)), "no window at launch: %#llx",
          ULL(proc));
    fake_vmcs_set_in(ns.vmcs02_pa, CPU_BASED_VM_EXEC_CONTROL,
                     proc | CPU_BASED_NMI_WINDOW_EXITING | CPU_BASED_MONITOR_TRAP_FLAG);
    static const uint32_t kept[] = {PIN_BASED_VM_EXEC_CONTROL, SECONDARY_VM_EXEC_CONTROL, VM_EXIT_CONTROLS,
                                    VM_ENTRY_CONTROLS, MSR_BITMAP, EPT_POINTER, VMCS_LINK_POINTER,
                                    VM_EXIT_MSR_STORE_COUNT, XSS_EXIT_BITMAP};
    uint32_t w[sizeof(kept) / sizeof(kept[0])];
    uint64_t v[sizeof(kept) / sizeof(kept[0])];
    for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        w[i] = w02(kept[i]), v[i] = g02(kept[i]);
    resume_fast("window left");
    CHECK(g02(CPU_BASED_VM_EXEC_CONTROL) == proc, "hv's NMI window and MTF removed: %#llx, want %#llx",
          ULL(g02(CPU_BASED_VM_EXEC_CONTROL)), ULL(proc));
    for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        CHECK(w02(kept[i]) == w[i] && g02(kept[i]) == v[i], "field %#x kept (%u writes more)", kept[i],
              w02(kept[i]) - w[i]);
    /* vmcs12 changed by a VMWRITE that exits: the full path builds them again */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    CHECK(l1_vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmcs12_get(V12, PIN_BASED_VM_EXEC_CONTROL)) == O_SUCCEED &&
              l1_vmresume() == O_ENTERED && w02(PIN_BASED_VM_EXEC_CONTROL) == w[0] + 1,
          "after a VMWRITE exit: pin-based controls written again");
}

/* The VPID: an L2 without vmcs12's VPID has hv's flushed at every entry, fast ones too (SDM
 * 26.3.2.5); vmcs02 keeps the VPID it was given. */
static void test_vpid(void)
{
    nh_setup(true);
    nv.invvpid = record;
    nrec = 0;
    l1_ready(PG_VMCS_A);
    set12(SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) & ~(uint64_t)SECONDARY_VPID);
    launched();
    int n0 = nrec;
    uint16_t vpid = (uint16_t)g02(VIRTUAL_PROCESSOR_ID);
    uint32_t w = w02(VIRTUAL_PROCESSOR_ID);
    CHECK(vpid && (g02(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_VPID), "vmcs02 has hv's VPID %u", vpid);
    resume_fast("no VPID12");
    CHECK(nrec == n0 + 1 && last_vpid == vpid, "the fast entry flushed VPID %u (%d INVVPIDs)", last_vpid, nrec - n0);
    CHECK(w02(VIRTUAL_PROCESSOR_ID) == w && g02(VIRTUAL_PROCESSOR_ID) == vpid, "VPID kept");
    nv.invvpid = NULL;
}

/* With vmcs12's VPID: a fast entry keeps hv's VPID for it, flushes nothing (the last entry's
 * table gives the same one without an eviction) and marks the slot used (its LRU clock). */
static void test_vpid12(void)
{
    nh_setup(true);
    nv.invvpid = record;
    l1_ready(PG_VMCS_A);
    CHECK(vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) & SECONDARY_VPID, "vmcs12 has a VPID");
    launched();
    uint16_t vpid = (uint16_t)g02(VIRTUAL_PROCESSOR_ID);
    int n0 = nrec;
    uint32_t clock = ns.vpid02.clock;
    CHECK(vpid >= 1 && vpid <= VPID02_SLOTS && ns.vpid02_cur == vpid, "hv's VPID %u for vmcs12's", vpid);
    resume_fast("VPID12");
    CHECK(nrec == n0, "no INVVPID (%d)", nrec - n0);
    CHECK(ns.vpid02_cur == vpid && g02(VIRTUAL_PROCESSOR_ID) == vpid, "VPID %u kept", ns.vpid02_cur);
    CHECK(ns.vpid02.clock == clock + 1 && ns.vpid02.last_use[vpid - 1] == clock + 1, "slot used at %u, clock %u",
          ns.vpid02.last_use[vpid - 1], ns.vpid02.clock);
    nv.invvpid = NULL;
}

/* EPTP: a root vmcs02 got from elsewhere than the last build is replaced by the one the entry
 * computes (here EPT01's, as without L1's EPT). */
static void test_eptp(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    launched();
    CHECK(g02(EPT_POINTER) == nv.eptp, "L2 on EPT01");
    ns.eptp02 = 0x1234000; /* as if nested_ept02_switch had put another root there */
    fake_vmcs_set_in(ns.vmcs02_pa, EPT_POINTER, 0x1234000);
    resume_fast("another root");
    CHECK(g02(EPT_POINTER) == nv.eptp && ns.eptp02 == nv.eptp, "EPTP %#llx", ULL(g02(EPT_POINTER)));
}

/* APIC virtualization: the TPR threshold hv lowered for its own re-entry
 * (nested_apicv_l2_resume) is vmcs12's again at L1's entry; the APIC-access address is kept. */
static void test_apicv(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    set12(CPU_BASED_VM_EXEC_CONTROL, vmcs12_get(V12, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_TPR_SHADOW);
    set12(SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_VIRTUALIZE_APIC);
    set12(VIRTUAL_APIC_PAGE_ADDR, GPA(PG_FREE));
    set12(APIC_ACCESS_ADDR, GPA(PG_FREE + 1));
    set12(TPR_THRESHOLD, 5);
    ((uint8_t *)gpa_ptr(GPA(PG_FREE)))[0x80] = 0x60;
    launched();
    CHECK(g02(TPR_THRESHOLD) == 5 && g02(APIC_ACCESS_ADDR) == GPA(PG_FREE + 1), "APIC fields at launch");
    fake_vmcs_set_in(ns.vmcs02_pa, TPR_THRESHOLD, 2);
    uint32_t w = w02(APIC_ACCESS_ADDR), wv = w02(VIRTUAL_APIC_PAGE_ADDR);
    resume_fast("TPR threshold lowered");
    CHECK(g02(TPR_THRESHOLD) == 5, "TPR threshold %llu, want vmcs12's 5", ULL(g02(TPR_THRESHOLD)));
    CHECK(w02(APIC_ACCESS_ADDR) == w && w02(VIRTUAL_APIC_PAGE_ADDR) == wv, "APIC-access and virtual-APIC addresses kept");
}

/* vmcs02's MSR bitmap at each entry, fast ones too: L1's page as it is now OR hv's, with hv's
 * bits in a few quadwords (ORed one by one) or in many (every quadword merged). */
static unsigned bitmap_bad(void)
{
    const uint8_t *bm = ns.msr_bitmap02, *l1 = gpa_ptr(GPA(PG_MSR_BM)), *h = nv.msr_bitmap01;
    unsigned bad = 0;
    for (unsigned i = 0; i < 4096; i++)
        bad += bm[i] != (uint8_t)(l1[i] | h[i]);
    return bad;
}

static void test_msr_bitmap(unsigned hv_quadwords)
{
    nh_setup(true);
    uint8_t *h = (uint8_t *)nv.msr_bitmap01;
    for (unsigned k = 0; k < hv_quadwords; k++)
        h[(k * 8 * 37) % 4096] |= (uint8_t)(1u << (k % 8)); /* one bit in each of hv_quadwords quadwords */
    l1_ready(PG_VMCS_A);
    uint8_t *l1 = gpa_ptr(GPA(PG_MSR_BM));
    l1[0] = 0x11, l1[4095] = 0x80;
    launched();
    CHECK(bitmap_bad() == 0, "hv %u quadwords: merged at launch (%u bytes differ)", hv_quadwords, bitmap_bad());
    for (unsigned i = 0; i < 4096; i += 97)
        l1[i] ^= 0x5a; /* L1 changes its page while in VMX root (SDM 25.11.4 allows it then) */
    resume_fast("L1 changed its MSR bitmap");
    CHECK(bitmap_bad() == 0, "hv %u quadwords: L1's change merged (%u bytes differ)", hv_quadwords, bitmap_bad());
    CHECK(ns.hv_bm_known && (ns.hv_bm_n == hv_quadwords || hv_quadwords == 0), "hv's quadwords found: %u",
          ns.hv_bm_n);
}

/* L2's segment bases are read in the shadow without an exit but not pulled at entry: L1's
 * VMWRITE of one exits, reaches vmcs02 through the full path, and the shadow (L1's next
 * VMREAD) has it. */
static void test_segment_write(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    launched();
    uint64_t f0 = ns.fast_entries;
    CHECK(l1_vmwrite(GUEST_FS_BASE, 0x7000) == O_SUCCEED && fake_vmcs_get_in(ns.shadow_pa, GUEST_FS_BASE) == 0x7000,
          "VMWRITE of FS base: in the shadow");
    CHECK(l1_vmresume() == O_ENTERED && ns.fast_entries == f0 && g02(GUEST_FS_BASE) == 0x7000,
          "full path: FS base %#llx in vmcs02", ULL(g02(GUEST_FS_BASE)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    resume_fast("after the full one");
}

/* L1 changes L2's CR0 in the shadow (no exit), then a VMREAD of an unshadowed field exits
 * (its pull brings CR0 into vmcs12): the VMRESUME's own pull then finds nothing new, yet vmcs02
 * still has the old CR0, so the entry must not be the fast one. */
static void test_change_before_vmread_exit(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    launched();
    uint64_t cr0 = vmcs12_get(V12, GUEST_CR0) ^ CR0_CD, v, f0 = ns.fast_entries;
    fake_vmcs_set_in(ns.shadow_pa, GUEST_CR0, cr0); /* L1's VMWRITE, no exit */
    CHECK(l1_vmread(GUEST_ES_SELECTOR, &v) == O_SUCCEED, "a VMREAD exit");
    CHECK(l1_vmresume() == O_ENTERED && ns.fast_entries == f0, "full path after a change a VMREAD exit pulled");
    CHECK((g02(GUEST_CR0) & CR0_CD) == (cr0 & CR0_CD), "vmcs02's CR0.CD %#llx is L1's new one",
          ULL(g02(GUEST_CR0) & CR0_CD));
}

/* The entry-only fields on a fast VMRESUME: those L1 left alone are not written again
 * (vmcs02 has them), a changed exception bitmap is; the event injection is vmcs12's again
 * over what hv's own injection left in vmcs02; L1's timer value is loaded at every entry that
 * runs it (vmcs02 counted it down), and not written when L1's timer is off. */
static const uint32_t unchanged[] = {PAGE_FAULT_ERROR_CODE_MASK, PAGE_FAULT_ERROR_CODE_MATCH, CR3_TARGET_COUNT,
                                     CR3_TARGET_VALUE0, CR3_TARGET_VALUE3, EXCEPTION_BITMAP, TSC_OFFSET};
#define NUNCH (sizeof(unchanged) / sizeof(unchanged[0]))

static void test_copied(bool timer)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    /* L1's timer without "save": vmcs12 keeps L1's value while vmcs02 counts down */
    set12(VM_EXIT_CONTROLS, vmcs12_get(V12, VM_EXIT_CONTROLS) & ~(uint64_t)VM_EXIT_SAVE_PREEMPTION_TIMER);
    if (!timer)
        set12(PIN_BASED_VM_EXEC_CONTROL,
              vmcs12_get(V12, PIN_BASED_VM_EXEC_CONTROL) & ~(uint64_t)PIN_BASED_PREEMPTION_TIMER);
    set12(VMX_PREEMPTION_TIMER_VALUE, 5000);
    set12(VM_ENTRY_EXCEPTION_ERROR_CODE, 0x18);
    launched();
    uint32_t w[NUNCH], wt = w02(VMX_PREEMPTION_TIMER_VALUE);
    for (unsigned i = 0; i < NUNCH; i++)
        w[i] = w02(unchanged[i]);
    fake_vmcs_set_in(ns.vmcs02_pa, VMX_PREEMPTION_TIMER_VALUE, 7); /* L2 ran */
    fake_vmcs_set_in(ns.vmcs02_pa, VM_ENTRY_EXCEPTION_ERROR_CODE, 0x55); /* hv injected a #GP into L2 */
    fake_vmcs_set_in(ns.vmcs02_pa, VM_ENTRY_INTR_INFO_FIELD, INTR_TYPE_HW_EXCEPTION | 13); /* delivered */
    resume_fast(timer ? "timer on" : "timer off");
    for (unsigned i = 0; i < NUNCH; i++)
        CHECK(w02(unchanged[i]) == w[i] && g02(unchanged[i]) == vmcs12_get(V12, unchanged[i]),
              "field %#x: not written again (%u writes more), vmcs12's", unchanged[i], w02(unchanged[i]) - w[i]);
    CHECK(g02(VM_ENTRY_EXCEPTION_ERROR_CODE) == 0x18 && g02(VM_ENTRY_INTR_INFO_FIELD) == 0,
          "the event injection is vmcs12's: error code %#llx, info %#llx", ULL(g02(VM_ENTRY_EXCEPTION_ERROR_CODE)),
          ULL(g02(VM_ENTRY_INTR_INFO_FIELD)));
    if (timer)
        CHECK(g02(VMX_PREEMPTION_TIMER_VALUE) == 5000, "timer on: L1's value %llu loaded again",
              ULL(g02(VMX_PREEMPTION_TIMER_VALUE)));
    else
        CHECK(w02(VMX_PREEMPTION_TIMER_VALUE) == wt, "timer off: its value not written");
    /* L1 changes its exception bitmap in the shadow (no exit): written */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    uint64_t eb = vmcs12_get(V12, EXCEPTION_BITMAP) ^ (1u << 6);
    fake_vmcs_set_in(ns.shadow_pa, EXCEPTION_BITMAP, eb);
    resume_fast("exception bitmap changed");
    CHECK(g02(EXCEPTION_BITMAP) == eb, "L1's new exception bitmap %#llx in vmcs02", ULL(g02(EXCEPTION_BITMAP)));
}

int main(void)
{
    test_copied(true);
    test_copied(false);
    test_change_before_vmread_exit();
    test_segment_write();
    test_msr_bitmap(3);
    test_msr_bitmap(NESTED_HV_BM_MAX + 9);
    test_kept();
    test_vpid();
    test_vpid12();
    test_eptp();
    test_apicv();
    return test_summary();
}
