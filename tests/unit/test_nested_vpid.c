/*
 * Host tests for nested/vpid.c: VPIDs for L2. The vmcs12 VPID -> hv VPID table (lookup,
 * least-recently-used eviction, forget), and through the real nested VM-Enter and INVVPID
 * emulation (nested_harness.c) the INVVPIDs hv executes on the CPU, recorded: an L2 without
 * vmcs12's VPID has hv's VPID flushed at every entry (SDM 26.3.2.5: VPID 0000H is flushed
 * by L1's entries and exits), an L2 with one keeps its translations across entries and exits,
 * a VPID taken from another vmcs12 VPID is flushed before L2 runs with it, and L1's INVVPID
 * (each type) becomes the same invalidation of hv's VPID, or a wider one the CPU has.
 */
#include <string.h>
#include "lib/x86.h"
#include "nested/vpid.h"
#include "tests/unit/nested_harness.h"
#include "tests/unit/vmcs12_samples.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
#define MAXREC 64
static struct rec { uint64_t type, la; uint16_t vpid; } recs[MAXREC];
static int nrec;
static void record(uint64_t type, uint16_t vpid, uint64_t la)
{
    if (nrec < MAXREC)
        recs[nrec] = (struct rec){type, la, vpid};
    nrec++;
}
static bool rec_is(int i, uint64_t type, uint16_t vpid, uint64_t la)
{
    return i < nrec && recs[i].type == type && recs[i].vpid == vpid && recs[i].la == la;
}
static uint64_t g02(uint32_t f) { return fake_vmcs_get_in(ns.vmcs02_pa, f); }

static void fresh(void)
{
    nh_setup(false);
    nv.invvpid = record;
    nrec = 0;
    l1_ready(PG_VMCS_A);
}

/* L1: VMLAUNCH/VMRESUME as the launch state says; L2 then exits to L1 with a VMCALL. */
static enum outcome enter_and_exit(void)
{
    enum outcome o = ns.cache->launch_state ? l1_vmresume() : l1_vmlaunch();
    if (o == O_ENTERED)
        CHECK(l2_exit(EXIT_REASON_VMCALL, 0) && !ns.guest_mode, "VMCALL reflected to L1");
    return o;
}
/* L1's VMWRITEs (they exit: the next entry takes the full path, as on hardware it checks them) */
static void set_vpid12(uint16_t vpid)
{
    uint64_t proc2 = vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) & ~(uint64_t)SECONDARY_VPID;
    CHECK(l1_vmwrite(SECONDARY_VM_EXEC_CONTROL, proc2 | (vpid ? SECONDARY_VPID : 0)) == O_SUCCEED &&
              l1_vmwrite(VIRTUAL_PROCESSOR_ID, vpid) == O_SUCCEED,
          "VMWRITE VPID %u", vpid);
}
static bool vmcs02_vpid(uint16_t want)
{
    bool on = g02(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_VPID;
    return want ? on && g02(VIRTUAL_PROCESSOR_ID) == want : !on;
}

static void test_table(void)
{
    struct vpid02_table t;
    memset(&t, 0, sizeof(t));
    bool flush;
    CHECK(vpid02_lookup(&t, 5) == 0 && vpid02_lookup(&t, 0) == 0, "empty table maps nothing");
    CHECK(vpid02_get(&t, 5, &flush) == 1 && !flush, "first VPID: slot 1, free, no flush");
    CHECK(vpid02_get(&t, 0xffff, &flush) == 2 && !flush, "second: slot 2");
    CHECK(vpid02_get(&t, 5, &flush) == 1 && !flush, "again: the same VPID, no flush");
    CHECK(vpid02_lookup(&t, 5) == 1 && vpid02_lookup(&t, 0xffff) == 2 && vpid02_lookup(&t, 6) == 0, "lookups");
    for (uint16_t v = 100; v < 100 + VPID02_SLOTS - 2; v++)
        CHECK(vpid02_get(&t, v, &flush) && !flush, "VPID %u fills a free slot", v);
    /* Full. Least recently used: 0xffff (slot 2), then 5 (slot 1) was used after it. */
    uint16_t got = vpid02_get(&t, 7, &flush);
    CHECK(got == 2 && flush, "a new VPID when full takes the least recently used slot (%u) and flushes it", got);
    CHECK(vpid02_lookup(&t, 0xffff) == 0 && vpid02_lookup(&t, 7) == 2, "the evicted VPID maps to nothing");
    CHECK(vpid02_get(&t, 5, &flush) == 1 && !flush, "5 kept its slot");
    got = vpid02_get(&t, 8, &flush);
    CHECK(got == 3 && flush, "next eviction: slot 3 (VPID 100, oldest now), got %u", got);
    unsigned seen = 0;
    for (uint16_t v = 1; v <= VPID02_SLOTS; v++)
        for (uint16_t x = 1; x < 200; x++)
            if (vpid02_lookup(&t, x) == v)
                seen |= 1u << v;
    CHECK(seen == ((1u << (VPID02_SLOTS + 1)) - 2), "every slot maps exactly one VPID (%#x)", seen);
    CHECK(VPID02_NO_VPID12 > VPID02_SLOTS, "the no-VPID L2's VPID is none of the slots'");
    vpid02_forget(&t);
    CHECK(vpid02_lookup(&t, 5) == 0 && vpid02_lookup(&t, 7) == 0, "forget: nothing mapped");
    CHECK(vpid02_get(&t, 9, &flush) == 1 && !flush, "after forget: free slots again");
}

static void test_entries(void)
{
    fresh();
    set_vpid12(5);
    CHECK(enter_and_exit() == O_ENTERED, "VMLAUNCH with VPID 5");
    CHECK(vmcs02_vpid(1), "vmcs02 runs with enable VPID and hv's VPID 1 (VPID %llu)", ULL(g02(VIRTUAL_PROCESSOR_ID)));
    CHECK(nrec == 1 && rec_is(0, 2, 0, 0), "first use on this CPU: one INVVPID of all contexts (%d recorded)", nrec);
    nrec = 0;
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(1), "VMRESUME: the same VPID");
    CHECK(nrec == 0, "with vmcs12's VPID, L1's entries and exits keep L2's translations (%d INVVPIDs)", nrec);

    /* L1 changes vmcs12's VPID between entries: each VPID has its own, kept. */
    set_vpid12(6);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(2) && nrec == 0, "VPID 6: hv's VPID 2, free, no flush");
    set_vpid12(5);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(1) && nrec == 0, "back to 5: VPID 1 again, kept");

    /* Without enable VPID: VPID 0000H, flushed by every VM entry and exit of L1's. */
    set_vpid12(0);
    for (int i = 0; i < 2; i++) {
        nrec = 0;
        CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(VPID02_NO_VPID12), "no VPID in vmcs12: hv's VPID %u",
              VPID02_NO_VPID12);
        CHECK(nrec == 1 && rec_is(0, 1, VPID02_NO_VPID12, 0),
              "entry %d without vmcs12's VPID: single-context INVVPID of its VPID before L2 runs", i);
    }
    /* Nor without secondary controls at all. */
    uint64_t proc = vmcs12_get(V12, CPU_BASED_VM_EXEC_CONTROL);
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc & ~(uint64_t)CPU_BASED_ACTIVATE_SECONDARY);
    set_vpid12(5); /* ignored: secondary controls off */
    nrec = 0;
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(VPID02_NO_VPID12) && rec_is(0, 1, VPID02_NO_VPID12, 0),
          "secondary controls off: no VPID for L2, flushed");
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc);
}

static void test_eviction(void)
{
    fresh();
    for (uint16_t v = 1; v <= VPID02_SLOTS; v++) {
        set_vpid12(v * 10);
        CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(v), "VPID %u: hv's VPID %u", v * 10, v);
    }
    nrec = 0;
    set_vpid12(999);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(1), "a ninth VPID takes the least recently used (hv's 1)");
    CHECK(nrec == 1 && rec_is(0, 1, 1, 0), "and VPID 1 is flushed before L2 runs with it (%d recorded)", nrec);
    nrec = 0;
    set_vpid12(10);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(2) && rec_is(0, 1, 2, 0),
          "the evicted VPID 10 comes back on another slot, flushed");
    nrec = 0;
    CHECK(l1_invvpid(1, 20, 0) == O_SUCCEED && nrec == 0, "INVVPID of VPID 20 (evicted by 10): nothing tagged, nothing done");
}

static void test_invvpid(void)
{
    fresh();
    set_vpid12(5);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(1), "VPID 5 -> 1");
    set_vpid12(6);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(2), "VPID 6 -> 2");
    const uint64_t la = 0xffff800000123456ull;
    nrec = 0;
    CHECK(l1_invvpid(0, 5, la) == O_SUCCEED && nrec == 1 && rec_is(0, 0, 1, la), "individual address: on VPID 1");
    nrec = 0;
    CHECK(l1_invvpid(1, 6, 0) == O_SUCCEED && nrec == 1 && rec_is(0, 1, 2, 0), "single context: on VPID 2");
    nrec = 0;
    CHECK(l1_invvpid(3, 5, 0) == O_SUCCEED && nrec == 1 && rec_is(0, 3, 1, 0), "single context retaining globals: on VPID 1");
    nrec = 0;
    CHECK(l1_invvpid(2, 0, 0) == O_SUCCEED && nrec == 1 && rec_is(0, 2, 0, 0), "all contexts: all of hv's VPIDs");
    nrec = 0;
    CHECK(l1_invvpid(1, 77, 0) == O_SUCCEED && nrec == 0, "a VPID L2 never ran with: nothing to invalidate");
    /* The VMfail rules come first and invalidate nothing. */
    nrec = 0;
    CHECK(l1_invvpid(1, 0, 0) == O_FAIL_VALID && l1_error() == VMXERR_INVALID_INVEPT_INVVPID, "VPID 0: error 28");
    CHECK(l1_invvpid(0, 5, 0x0000800000000000ull) == O_FAIL_VALID && l1_error() == 28, "non-canonical: error 28");
    CHECK(l1_invvpid(1, 5 | 1ull << 16, 0) == O_FAIL_VALID && l1_error() == 28, "descriptor bits 63:16: error 28");
    CHECK(l1_invvpid(4, 5, 0) == O_FAIL_VALID && l1_error() == 28, "type 4: error 28");
    CHECK(nrec == 0, "no INVVPID for a failing one (%d)", nrec);

    /* The CPU without types 0 and 3: hv invalidates the whole VPID; without 1: all of them. */
    hw.ept_vpid &= ~(EPT_CAP_INVVPID_ADDR | EPT_CAP_INVVPID_SINGLE_NONGLOBAL);
    nrec = 0;
    CHECK(l1_invvpid(0, 5, la) == O_SUCCEED && rec_is(0, 1, 1, 0), "no individual-address INVVPID: single context");
    nrec = 0;
    CHECK(l1_invvpid(3, 5, 0) == O_SUCCEED && rec_is(0, 1, 1, 0), "no retaining-globals INVVPID: single context");
    hw.ept_vpid &= ~EPT_CAP_INVVPID_SINGLE;
    nrec = 0;
    CHECK(l1_invvpid(0, 5, la) == O_SUCCEED && rec_is(0, 2, 0, 0), "no single-context INVVPID either: all contexts");
    hw = bochs_skylake_x;
}

static void test_vmxoff_and_cr(void)
{
    fresh();
    set_vpid12(5);
    CHECK(l1_vmlaunch() == O_ENTERED && vmcs02_vpid(1), "VPID 5 -> 1");
    nrec = 0;
    nested_vpid02_flush_current(&nv);
    CHECK(nrec == 1 && rec_is(0, 1, 1, 0), "hv emulated L2's MOV to CR0/CR4: L2's VPID flushed");
    CHECK(l2_exit(EXIT_REASON_VMCALL, 0), "back to L1");
    nrec = 0;
    nested_vpid02_flush_current(&nv);
    CHECK(nrec == 0, "no L2 running: nothing to flush");
    CHECK(l1_vmxoff() == O_SUCCEED && nrec == 1 && rec_is(0, 2, 0, 0), "VMXOFF: all of hv's VPIDs flushed");
    nrec = 0;
    l1_ready(PG_VMCS_B);
    CHECK(l1_invvpid(1, 5, 0) == O_SUCCEED && nrec == 0, "after VMXOFF VPID 5 maps to nothing");
    set_vpid12(5);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(1) && nrec == 0, "and takes a free slot again, no flush");
}

static void test_without(void)
{
    /* Host tests' default (no INVVPID to call) and a CPU without VPID: vmcs02 as before. */
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    set_vpid12(5);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(0), "no INVVPID: vmcs02 without VPID");
    fresh();
    hw.procbased2 &= ~((uint64_t)SECONDARY_VPID << 32);
    set_vpid12(0);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(0) && nrec == 0, "CPU without VPID: vmcs02 without VPID");
    hw = bochs_skylake_x;
    fresh();
    hw.ept_vpid &= ~EPT_CAP_INVVPID;
    set_vpid12(0);
    CHECK(enter_and_exit() == O_ENTERED && vmcs02_vpid(0) && nrec == 0, "CPU without INVVPID: vmcs02 without VPID");
    hw = bochs_skylake_x;
}

int main(void)
{
    test_table();
    test_entries();
    test_eviction();
    test_invvpid();
    test_vmxoff_and_cr();
    test_without();
    return test_summary();
}
