/*
 * Host tests for nested/vmenter.c: L1's VMLAUNCH/VMRESUME. The failures in the order of the
 * SDM's VMLAUNCH/VMRESUME operation (31.3) and VM-entry chapter (VMfailInvalid, MOV-SS
 * blocking, launch state, controls, host state, then guest state and MSR loading as VM-entry
 * failures, 27.8), and vmcs02 as nested/ builds it from vmcs12: hv's host state, merged
 * controls and bitmaps, vmcs12's guest state with GUEST_CR3 written at every entry (an entry
 * in the HLT activity state included), EFER/PAT/debug state as the entry controls load them.
 */
#include <string.h>
#include "lib/x86.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
#define MSR_ENTRY(list, i) (&gpa_u64(GPA(PG_MSR_LISTS) + (list))[2 * (i)])
#define ENTRY_LOAD 0
#define EXIT_STORE 0x400
#define EXIT_LOAD 0x800

static void msr_entry(unsigned list, unsigned i, uint32_t msr, uint64_t val)
{
    MSR_ENTRY(list, i)[0] = msr;
    MSR_ENTRY(list, i)[1] = val;
}
static uint64_t g02(uint32_t f) { return fake_vmcs_get_in(ns.vmcs02_pa, f); }
static uint64_t g01(uint32_t f) { return fake_vmcs_get_in(vmcs01_pa, f); }

/* Breaks one stage of the checks each. */
static uint64_t pin12;
static void bad_controls(void)
{
    pin12 = vmcs12_get(V12, PIN_BASED_VM_EXEC_CONTROL);
    vmcs12_set(V12, PIN_BASED_VM_EXEC_CONTROL, pin12 | PIN_BASED_POSTED_INTR);
}
static void bad_host(void) { vmcs12_set(V12, HOST_RIP, 0x0000800000000000ull); }
static void bad_guest(void) { vmcs12_set(V12, GUEST_RFLAGS, 0); }
static void bad_msr(void)
{
    vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 2);
    msr_entry(ENTRY_LOAD, 0, MSR_IA32_STAR, 0x5555);
    msr_entry(ENTRY_LOAD, 1, 0x808, 0); /* x2APIC TPR: never loadable (27.4) */
}

static void fresh(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
}

static void check_vmfail(enum outcome o, uint32_t err, const char *what)
{
    CHECK(o == O_FAIL_VALID && l1_error() == err, "%s: %s error %u, want VMfailValid(%u)", what, outcome_name(o),
          l1_error(), err);
    CHECK(!ns.guest_mode && fake_vmcs_load_count(ns.vmcs02_pa) == 0, "%s: vmcs02 never loaded", what);
}

static void check_entry_fail(enum outcome o, uint32_t reason, uint64_t qual, const char *what)
{
    uint64_t r = vmcs12_get(V12, VM_EXIT_REASON), q = vmcs12_get(V12, EXIT_QUALIFICATION);
    CHECK(o == O_ENTRY_FAILED && r == (reason | VMX_EXIT_REASON_ENTRY_FAIL) && q == qual,
          "%s: %s, exit reason %#llx qual %llu, want VM-entry failure %u qual %llu", what, outcome_name(o), ULL(r),
          ULL(q), reason, ULL(qual));
    CHECK(V12->launch_state == 0, "%s: launch state %u, want still clear (31.3: set only when the entry succeeds)",
          what, V12->launch_state);
}

/* 31.3 VMLAUNCH/VMRESUME: each failure wins over every later one. */
static void test_failure_order(void)
{
    fresh();
    enum outcome o;
    ns.current_ptr = ~0ull;
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_MOV_SS);
    o = l1_vmlaunch();
    CHECK(o == O_FAIL_INVALID, "no current VMCS, MOV-SS blocking: %s, want VMfailInvalid", outcome_name(o));
    ns.current_ptr = GPA(PG_VMCS_A);

    bad_controls();
    bad_host();
    bad_guest();
    bad_msr();
    V12->launch_state = 1;
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_MOV_SS);
    check_vmfail(l1_vmlaunch(), VMXERR_ENTRY_MOV_SS_BLOCKING, "VMLAUNCH with blocking by MOV SS");
    /* The failed VMLAUNCH completed: the blocking by MOV SS it ran under is over. */
    CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == 0, "MOV-SS blocking after the VMfail: %#llx",
          (unsigned long long)fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO));
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_MOV_SS);
    check_vmfail(l1_vmresume(), VMXERR_ENTRY_MOV_SS_BLOCKING, "VMRESUME with blocking by MOV SS");
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STI); /* STI blocking does not stop an entry */
    check_vmfail(l1_vmlaunch(), VMXERR_VMLAUNCH_NONCLEAR, "VMLAUNCH of a launched VMCS");
    V12->launch_state = 0;
    check_vmfail(l1_vmresume(), VMXERR_VMRESUME_NONLAUNCHED, "VMRESUME of a clear VMCS");
    check_vmfail(l1_vmlaunch(), VMXERR_ENTRY_INVALID_CONTROL, "bad controls and host state");
    vmcs12_set(V12, PIN_BASED_VM_EXEC_CONTROL, pin12);
    check_vmfail(l1_vmlaunch(), VMXERR_ENTRY_INVALID_HOST, "bad host and guest state");
    vmcs12_set(V12, HOST_RIP, 0xffffffff81000000ull);
    check_entry_fail(l1_vmlaunch(), EXIT_REASON_INVALID_STATE, 0, "bad guest state and MSR list");
    CHECK(fake_msr(MSR_IA32_STAR)->writes == 0, "MSR list not processed after a guest-state failure");
    vmcs12_set(V12, GUEST_RFLAGS, 0x202);
    check_entry_fail(l1_vmlaunch(), EXIT_REASON_MSR_LOAD_FAIL, 2, "bad second MSR-list entry");
    CHECK(fake_msr(MSR_IA32_STAR)->val == 0x5555, "the entries before it were loaded (27.4)");
    CHECK(fake_vmcs_current() == vmcs01_pa && !ns.guest_mode && !rc.guest_cr3_owned_by_nested,
          "back on vmcs01 after a VM-entry failure");
    vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 0);
    CHECK(l1_vmlaunch() == O_ENTERED && V12->launch_state == 1, "and with nothing wrong, L2 runs");
}

/* 27.8: a VM-entry failure loads host state as a VM exit would and processes the VM-exit
 * MSR-load list, but stores no MSRs, leaves the guest-state area and the VM-entry
 * interruption information alone, and updates only reason and qualification. */
static void test_entry_failure_state(void)
{
    fresh();
    bad_guest();
    uint32_t event = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 13 | INTR_INFO_DELIVER_CODE;
    vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, event);
    vmcs12_set(V12, VM_ENTRY_EXCEPTION_ERROR_CODE, 0);
    vmcs12_set(V12, VM_EXIT_INTR_INFO, 0x1234);
    vmcs12_set(V12, VM_EXIT_MSR_STORE_COUNT, 1);
    msr_entry(EXIT_STORE, 0, MSR_IA32_LSTAR, 0xdead);
    vmcs12_set(V12, VM_EXIT_MSR_LOAD_COUNT, 1);
    msr_entry(EXIT_LOAD, 0, MSR_IA32_KERNEL_GS_BASE, 0xbeef);
    enum outcome o = l1_vmlaunch();
    check_entry_fail(o, EXIT_REASON_INVALID_STATE, 0, "invalid guest RFLAGS");
    CHECK(vmcs12_get(V12, GUEST_RFLAGS) == 0 && vmcs12_get(V12, GUEST_RIP) == 0xffffffff81000100ull,
          "guest-state area unchanged");
    CHECK(vmcs12_get(V12, VM_ENTRY_INTR_INFO_FIELD) == event, "entry interruption information still valid: %#llx",
          ULL(vmcs12_get(V12, VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(vmcs12_get(V12, VM_EXIT_INTR_INFO) == 0x1234, "other exit information unchanged");
    CHECK(MSR_ENTRY(EXIT_STORE, 0)[1] == 0xdead, "no MSR stored");
    CHECK(fake_msr(MSR_IA32_KERNEL_GS_BASE)->val == 0xbeef, "VM-exit MSR-load list performed");
    CHECK(g01(GUEST_RSP) == vmcs12_get(V12, HOST_RSP) && g01(GUEST_CR3) == vmcs12_get(V12, HOST_CR3) &&
              g01(GUEST_CS_SELECTOR) == vmcs12_get(V12, HOST_CS_SELECTOR),
          "L1 continues in its host state");
}

static const uint32_t host_fields[NESTED_NR_HOST_FIELDS] = {
    HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR, HOST_GS_SELECTOR,
    HOST_TR_SELECTOR, HOST_IA32_PAT, HOST_IA32_EFER, HOST_IA32_SYSENTER_CS, HOST_CR0, HOST_CR3, HOST_CR4,
    HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE, HOST_IA32_SYSENTER_ESP,
    HOST_IA32_SYSENTER_EIP, HOST_RSP, HOST_RIP,
}; /* the order of nested_harness.c's HOST01(i) */

static void test_vmcs02(void)
{
    fresh();
    /* L1's bitmaps: MSR 0x10 read and port 0x60 exit for L1; hv's own: MSR 0x1b write */
    gpa_u64(GPA(PG_MSR_BM))[0] = 1ull << 0x10;
    ((uint8_t *)gpa_ptr(GPA(PG_IO_A)))[0x60 / 8] = 1u << (0x60 % 8);
    ((uint8_t *)nv.msr_bitmap01)[2048 + 0x1b / 8] |= 1u << (0x1b % 8);
    vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 2);
    msr_entry(ENTRY_LOAD, 0, MSR_IA32_SYSENTER_CS, 0x73);
    msr_entry(ENTRY_LOAD, 1, MSR_IA32_KERNEL_GS_BASE, 0x4242);
    vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED && fake_vmcs_current() == ns.vmcs02_pa, "VMLAUNCH: %s", outcome_name(o));
    CHECK(launch_pending && V12->launch_state == 1 && rc.guest_cr3_owned_by_nested && ns.nested_entries == 1,
          "launch pending, vmcs12 launched, GUEST_CR3 nested's");
    for (int i = 0; i < NESTED_NR_HOST_FIELDS; i++)
        CHECK(g02(host_fields[i]) == (VMCS_FIELD_WIDTH(host_fields[i]) == VMCS_WIDTH_16 ? HOST01(i) & 0xffff
                                                                                         : HOST01(i)),
              "vmcs02 host field %#x = %#llx: hv's, never vmcs12's", host_fields[i], ULL(g02(host_fields[i])));
    for (unsigned i = 0; i < nested_nr_guest_fields; i++)
        CHECK(nested_guest_fields[i] == GUEST_SYSENTER_CS || /* from the MSR list below */
                  g02(nested_guest_fields[i]) == vmcs12_get(V12, nested_guest_fields[i]),
              "guest field %#x", nested_guest_fields[i]);
    const uint32_t same[] = {GUEST_RIP, GUEST_RSP, GUEST_RFLAGS, GUEST_CR3, EXCEPTION_BITMAP, TSC_OFFSET,
                             VMX_PREEMPTION_TIMER_VALUE, VM_ENTRY_INTR_INFO_FIELD};
    for (unsigned i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        CHECK(g02(same[i]) == vmcs12_get(V12, same[i]), "field %#x %#llx, vmcs12 %#llx", same[i], ULL(g02(same[i])),
              ULL(vmcs12_get(V12, same[i])));
    /* CR0/CR4: masks with hv's bits, shadows as L1 set them up, VMX's fixed bits in the real ones */
    uint64_t m0 = vmcs12_get(V12, CR0_GUEST_HOST_MASK), cr0 = vmcs12_get(V12, GUEST_CR0);
    CHECK(g02(CR0_GUEST_HOST_MASK) == (m0 | nv.cr0_mask) && g02(CR4_GUEST_HOST_MASK) ==
              (vmcs12_get(V12, CR4_GUEST_HOST_MASK) | nv.cr4_mask), "masks merged");
    CHECK(g02(CR0_READ_SHADOW) == ((cr0 & ~m0) | (vmcs12_get(V12, CR0_READ_SHADOW) & m0)), "CR0 shadow %#llx",
          ULL(g02(CR0_READ_SHADOW)));
    CHECK(g02(GUEST_CR0) == ((cr0 | hw.cr0_fixed0) & hw.cr0_fixed1) && (g02(GUEST_CR4) & CR4_VMXE), "real CR0/CR4");
    /* controls: hv's merged bitmaps, EPT01, no VPID, no VMCS link, no CPU-side MSR lists */
    const uint8_t *bm = ns.msr_bitmap02;
    CHECK(g02(MSR_BITMAP) == (uint64_t)(uintptr_t)bm && (bm[0x10 / 8] & 1u << (0x10 % 8)) &&
              (bm[2048 + 0x1b / 8] & 1u << (0x1b % 8)) && !(bm[0x11 / 8] & 1u << (0x11 % 8)),
          "MSR bitmap: L1's OR hv's, in hv's page");
    const uint8_t *l1bm = gpa_ptr(GPA(PG_MSR_BM)), *hvbm = nv.msr_bitmap01;
    unsigned bad = 0;
    for (unsigned i = 0; i < 4096; i++)
        bad += bm[i] != (uint8_t)(l1bm[i] | hvbm[i]);
    CHECK(bad == 0, "MSR bitmap: every byte L1's OR hv's (%u differ)", bad);
    uint32_t proc02 = (uint32_t)g02(CPU_BASED_VM_EXEC_CONTROL);
    CHECK((proc02 & CPU_BASED_UNCOND_IO_EXITING) && !(proc02 & CPU_BASED_USE_IO_BITMAPS),
          "I/O: every instruction exits to hv, which asks L1's live bitmaps (controls %#x)", proc02);
    CHECK(g02(EPT_POINTER) == nv.eptp, "L2 on EPT01 without L1's EPT");
    uint32_t p2 = (uint32_t)g02(SECONDARY_VM_EXEC_CONTROL);
    CHECK((p2 & SECONDARY_EPT) && !(p2 & SECONDARY_VPID) && (p2 & SECONDARY_RDTSCP), "secondary %#x", p2);
    CHECK(g02(VMCS_LINK_POINTER) == ~0ull && !g02(VM_ENTRY_MSR_LOAD_COUNT) && !g02(VM_EXIT_MSR_STORE_COUNT) &&
              !g02(VM_EXIT_MSR_LOAD_COUNT), "no L1 pointer reaches the CPU");
    uint32_t exit02 = (uint32_t)g02(VM_EXIT_CONTROLS), entry02 = (uint32_t)g02(VM_ENTRY_CONTROLS);
    CHECK((exit02 & VM_EXIT_HOST_ADDR_SPACE_SIZE) && (exit02 & VM_EXIT_LOAD_EFER) && (exit02 & VM_EXIT_SAVE_EFER),
          "exit controls %#x: back to hv's 64-bit host with hv's EFER", exit02);
    CHECK((entry02 & VM_ENTRY_IA32E_MODE) && (entry02 & VM_ENTRY_LOAD_EFER), "entry controls %#x", entry02);
    CHECK(g02(GUEST_IA32_EFER) == vmcs12_get(V12, GUEST_IA32_EFER) && g02(GUEST_IA32_PAT) ==
              vmcs12_get(V12, GUEST_IA32_PAT), "EFER and PAT loaded from vmcs12");
    /* the VM-entry MSR-load list: VMCS-switched MSRs into vmcs02, the others to the CPU */
    CHECK(g02(GUEST_SYSENTER_CS) == 0x73 && fake_msr(MSR_IA32_KERNEL_GS_BASE)->val == 0x4242,
          "MSR list: SYSENTER_CS %#llx, KERNEL_GS_BASE %#llx", ULL(g02(GUEST_SYSENTER_CS)),
          ULL(fake_msr(MSR_IA32_KERNEL_GS_BASE)->val));
    CHECK(fake_vmcs_no_current == 0 && fake_vmcs_bad_fields == 0 && fake_vmcs_ro_writes == 0,
          "VMCS accesses: %llu without a VMCS, %llu bad, %llu read-only", ULL(fake_vmcs_no_current),
          ULL(fake_vmcs_bad_fields), ULL(fake_vmcs_ro_writes));
}

/* 27.3.2.1: without "load IA32_EFER" LMA follows "IA-32e mode guest" (and LME with CR0.PG);
 * without "load IA32_PAT" / "load debug controls" L1's PAT, DR7, DEBUGCTL stay. */
static void test_entry_controls(void)
{
    fresh();
    fake_vmcs_set(GUEST_DR7, 0x455);
    fake_vmcs_set(GUEST_IA32_DEBUGCTL, 1);
    uint32_t entry = (uint32_t)vmcs12_get(V12, VM_ENTRY_CONTROLS);
    vmcs12_set(V12, VM_ENTRY_CONTROLS, entry & ~(VM_ENTRY_LOAD_EFER | VM_ENTRY_LOAD_PAT | VM_ENTRY_LOAD_DEBUG_CONTROLS));
    vmcs12_set(V12, GUEST_IA32_EFER, 0);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED, "entry: %s (%s)", outcome_name(o), o == O_ENTERED ? "" : "see the log");
    CHECK(g02(GUEST_IA32_EFER) == (L1_EFER | EFER_LMA | EFER_LME), "EFER %#llx: L1's, LMA/LME from the control",
          ULL(g02(GUEST_IA32_EFER)));
    CHECK(g02(GUEST_IA32_PAT) == g01(GUEST_IA32_PAT) && g02(GUEST_DR7) == 0x455 && g02(GUEST_IA32_DEBUGCTL) == 1,
          "PAT, DR7, DEBUGCTL stay L1's");
}

/* The GUEST_CR3 rule (docs/nested.md): vmcs02.GUEST_CR3 = vmcs12.GUEST_CR3 at every nested
 * VM-Enter, one entering the HLT activity state included; the wake-up exit stores it back. */
static void test_guest_cr3(void)
{
    fresh();
    vmcs12_set(V12, GUEST_CR3, 0xa000);
    CHECK(l1_vmlaunch() == O_ENTERED && g02(GUEST_CR3) == 0xa000, "first entry: CR3 A");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && vmcs12_get(V12, GUEST_CR3) == 0xa000, "exit: vmcs12 CR3 A");
    vmcs12_set(V12, GUEST_CR3, 0xb000);
    vmcs12_set(V12, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT);
    ns.fast_ok = false; /* as L1's VMWRITEs (exits) would leave it */
    uint32_t writes = fake_vmcs_write_count_in(ns.vmcs02_pa, GUEST_CR3);
    enum outcome o = l1_vmresume();
    CHECK(o == O_ENTERED && g02(GUEST_CR3) == 0xb000 && g02(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_HLT,
          "HLT entry: %s, CR3 %#llx, activity %llu", outcome_name(o), ULL(g02(GUEST_CR3)),
          ULL(g02(GUEST_ACTIVITY_STATE)));
    CHECK(fake_vmcs_write_count_in(ns.vmcs02_pa, GUEST_CR3) == writes + 1, "written once at this entry");
    CHECK(!launch_pending, "VMRESUME of a launched vmcs02");
    /* an exit handler writing CR3 through the cache cannot clobber it while L2 is active */
    reg_write(&rc, HV_REG_CR3, 0xc000);
    regcache_flush(&rc);
    CHECK(g02(GUEST_CR3) == 0xb000, "the cache never writes GUEST_CR3 while L2 runs: %#llx", ULL(g02(GUEST_CR3)));
    regcache_warn_reset();
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    CHECK(l2_exit(EXIT_REASON_PREEMPTION_TIMER, 0), "wake-up exit reflected");
    CHECK(vmcs12_get(V12, GUEST_CR3) == 0xb000, "wake-up exit stores CR3 B: %#llx", ULL(vmcs12_get(V12, GUEST_CR3)));
}

/* vmcs02 is cleared and its host state written when it starts another L2 (another vmcs12,
 * or the same after VMCLEAR); a VMRESUME of the same one rewrites neither. */
static void test_vmcs02_reuse(void)
{
    fresh();
    uint64_t v02 = ns.vmcs02_pa;
    CHECK(l1_vmlaunch() == O_ENTERED && fake_vmcs_clear_count(v02) == 1, "first VMLAUNCH clears vmcs02");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    CHECK(l1_vmresume() == O_ENTERED && fake_vmcs_clear_count(v02) == 1 && !launch_pending, "VMRESUME");
    CHECK(fake_vmcs_write_count_in(v02, HOST_RIP) == 1, "host state written once: %u",
          fake_vmcs_write_count_in(v02, HOST_RIP));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    CHECK(l1_vmclear(GPA(PG_VMCS_A)) == O_SUCCEED && l1_vmptrld(GPA(PG_VMCS_A)) == O_SUCCEED, "VMCLEAR, VMPTRLD");
    CHECK(l1_vmresume() == O_FAIL_VALID && l1_error() == VMXERR_VMRESUME_NONLAUNCHED, "VMRESUME after VMCLEAR");
    CHECK(l1_vmlaunch() == O_ENTERED && fake_vmcs_clear_count(v02) == 2 && launch_pending &&
              fake_vmcs_write_count_in(v02, HOST_RIP) == 2, "VMLAUNCH after VMCLEAR: a clear vmcs02, launched anew");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit");
    nh_valid_vmcs12(gpa_ptr(GPA(PG_VMCS_B)));
    CHECK(l1_vmptrld(GPA(PG_VMCS_B)) == O_SUCCEED && l1_vmlaunch() == O_ENTERED && fake_vmcs_clear_count(v02) == 3,
          "another vmcs12: vmcs02 cleared");
}

/* PAE paging in L2 without L1's EPT: L1 expects the PDPTEs loaded from L2's CR3 (an L1
 * address); vmcs02 runs on EPT01, so nested/ loads them into vmcs02 (27.3.2.4). */
static void test_pae_pdptes(void)
{
    fresh();
    uint32_t entry = (uint32_t)vmcs12_get(V12, VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE;
    vmcs12_set(V12, VM_ENTRY_CONTROLS, entry);
    vmcs12_set(V12, GUEST_IA32_EFER, 0);
    vmcs12_set(V12, GUEST_CS_AR_BYTES, 0xc09b);
    vmcs12_set(V12, GUEST_RIP, 0x1000);
    vmcs12_set(V12, GUEST_RSP, 0x2000);
    vmcs12_set(V12, GUEST_GDTR_BASE, 0x3000);
    vmcs12_set(V12, GUEST_IDTR_BASE, 0x4000);
    vmcs12_set(V12, GUEST_TR_BASE, 0x5000);
    vmcs12_set(V12, GUEST_GS_BASE, 0);
    vmcs12_set(V12, GUEST_FS_BASE, 0);
    vmcs12_set(V12, GUEST_SYSENTER_ESP, 0);
    vmcs12_set(V12, GUEST_SYSENTER_EIP, 0);
    uint64_t pdpt = GPA(PG_FREE) + 0x40;
    vmcs12_set(V12, GUEST_CR3, pdpt);
    for (int i = 0; i < 4; i++)
        gpa_u64(pdpt)[i] = i == 2 ? 0 : (0x100000ull * (i + 1)) | 1;
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED, "32-bit PAE L2: %s", outcome_name(o));
    for (int i = 0; i < 4; i++)
        CHECK(g02(GUEST_PDPTR0 + 2 * i) == gpa_u64(pdpt)[i], "PDPTE%d %#llx", i, ULL(g02(GUEST_PDPTR0 + 2 * i)));
}

/* 27.8 with 28.5.1: a VM-entry failure loads host state; without "load IA32_EFER" EFER keeps
 * its bits but LMA/LME: L1's for a guest-state failure (checked before loading), L2's for an
 * MSR-loading failure (guest state already loaded). */
static void test_entry_failure_efer(void)
{
    for (int msr = 0; msr <= 1; msr++) {
        fresh();
        vmcs12_set(V12, VM_EXIT_CONTROLS, vmcs12_get(V12, VM_EXIT_CONTROLS) & ~VM_EXIT_LOAD_EFER);
        vmcs12_set(V12, VM_ENTRY_CONTROLS, vmcs12_get(V12, VM_ENTRY_CONTROLS) | VM_ENTRY_LOAD_EFER);
        vmcs12_set(V12, GUEST_IA32_EFER, EFER_LMA | EFER_LME); /* L2 without NXE, SCE */
        if (msr) {
            vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 1);
            msr_entry(ENTRY_LOAD, 0, 0x808, 0);
        } else {
            bad_guest();
        }
        check_entry_fail(l1_vmlaunch(), msr ? EXIT_REASON_MSR_LOAD_FAIL : EXIT_REASON_INVALID_STATE, msr ? 1 : 0,
                         msr ? "MSR loading" : "guest state");
        uint64_t want = msr ? EFER_LMA | EFER_LME : L1_EFER;
        CHECK(g01(GUEST_IA32_EFER) == want, "%s failure: EFER %#llx, want %#llx", msr ? "MSR-loading" : "guest-state",
              ULL(g01(GUEST_IA32_EFER)), ULL(want));
    }
}

/* 27.8 step 3: after a VM-entry failure blocking by NMI is what it was before the entry (an L1
 * in its NMI handler stays NMI-blocked); a VM exit's other blocking (STI) is gone. Failures
 * on guest state, in MSR loading and by the CPU refusing vmcs02. */
static void test_entry_failure_nmi_blocking(void)
{
    for (int k = 0; k < 3; k++) {
        fresh();
        if (k == 0)
            bad_guest();
        if (k == 1) {
            vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 1);
            msr_entry(ENTRY_LOAD, 0, 0x808, 0);
        }
        fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_NMI | GUEST_INTR_STI);
        enum outcome o = l1_vmlaunch();
        if (k == 2) {
            CHECK(o == O_ENTERED, "entered");
            l2_exit(EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL, 0);
        } else {
            CHECK(o == O_ENTRY_FAILED, "VM-entry failure %d: %s", k, outcome_name(o));
        }
        CHECK(fake_vmcs_current() == vmcs01_pa && g01(GUEST_INTERRUPTIBILITY_INFO) == GUEST_INTR_NMI,
              "failure %d: L1's interruptibility %#llx, want NMI blocking only", k,
              ULL(g01(GUEST_INTERRUPTIBILITY_INFO)));
    }
}

/* 26.3.1.5: a VMCS link pointer other than all 1s must name memory holding the revision
 * identifier with bit 31 = "VMCS shadowing" (0: hv offers no shadowing), not the current VMCS;
 * else a VM-entry failure with qualification 4. vmcs02 never gets L1's pointer. */
static void test_link_pointer(void)
{
    fresh();
    uint64_t link = GPA(PG_FREE);
    *(uint32_t *)gpa_ptr(link) = VMCS12_REVISION;
    vmcs12_set(V12, VMCS_LINK_POINTER, link);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED && g02(VMCS_LINK_POINTER) == ~0ull, "link pointer to a VMCS: %s, vmcs02 link %#llx",
          outcome_name(o), ULL(g02(VMCS_LINK_POINTER)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && vmcs12_get(V12, VMCS_LINK_POINTER) == link, "kept in vmcs12");
    static const struct { uint32_t rev; bool hole; const char *what; } bad[] = {
        {VMCS12_REVISION + 1, false, "another revision"},
        {VMCS12_REVISION | 0x80000000u, false, "a shadow VMCS without VMCS shadowing"},
        {VMCS12_REVISION, true, "hv's memory (reads as zeros)"},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fresh();
        *(uint32_t *)gpa_ptr(link) = bad[i].rev;
        ram_hole = bad[i].hole ? link : 0;
        vmcs12_set(V12, VMCS_LINK_POINTER, link);
        check_entry_fail(l1_vmlaunch(), EXIT_REASON_INVALID_STATE, 4, bad[i].what);
    }
    fresh();
    vmcs12_set(V12, VMCS_LINK_POINTER, GPA(PG_VMCS_A));
    check_entry_fail(l1_vmlaunch(), EXIT_REASON_INVALID_STATE, 4, "the current VMCS");
}

/* "enable XSAVES/XRSTORS" is offered (Bochs has it), so its XSS-exiting bitmap exists for L1
 * (SDM 25.6.20; KVM VMWRITEs it whenever the control is offered) and reaches vmcs02. */
static void test_xss_exit_bitmap(void)
{
    fresh();
    CHECK(nested_allowed1(caps.procbased2) & SECONDARY_XSAVES, "XSAVES offered");
    enum outcome o = l1_vmwrite(XSS_EXIT_BITMAP, 0x1800);
    uint64_t val = 0;
    enum outcome r = l1_vmread(XSS_EXIT_BITMAP, &val);
    CHECK(o == O_SUCCEED && r == O_SUCCEED && val == 0x1800, "VMWRITE %s (error %u), VMREAD %s %#llx",
          outcome_name(o), l1_error(), outcome_name(r), ULL(val));
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_XSAVES);
    CHECK(l1_vmlaunch() == O_ENTERED && (g02(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_XSAVES) &&
              g02(XSS_EXIT_BITMAP) == 0x1800, "vmcs02: XSAVES, XSS-exiting bitmap %#llx", ULL(g02(XSS_EXIT_BITMAP)));
    CHECK(l2_exit(EXIT_REASON_XSAVES, 0) && vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_XSAVES, "XSAVES exit: L1's");
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(V12, SECONDARY_VM_EXEC_CONTROL) & ~SECONDARY_XSAVES);
    ns.fast_ok = false; /* as L1's VMWRITE (an exit) would leave it */
    CHECK(l1_vmresume() == O_ENTERED && g02(XSS_EXIT_BITMAP) == 0, "without the control: 0 in vmcs02");
}

/* A VM-entry MSR-load list writing KERNEL_GS_BASE twice and STAR (the CPU has 0x1111, 0x2222). */
static void entry_msr_list(void)
{
    vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 3);
    msr_entry(ENTRY_LOAD, 0, MSR_IA32_KERNEL_GS_BASE, 0x4242);
    msr_entry(ENTRY_LOAD, 1, MSR_IA32_STAR, 0x5555);
    msr_entry(ENTRY_LOAD, 2, MSR_IA32_KERNEL_GS_BASE, 0x6666);
}
static bool msrs_as_before(void) { return fake_msr(MSR_IA32_KERNEL_GS_BASE)->val == 0x1111 && fake_msr(MSR_IA32_STAR)->val == 0x2222; }

/* The CPU refused vmcs02 after all: L1's VMLAUNCH fails with the CPU's error, as a VMfail,
 * and nothing of the entry happened: the CPU checks before it loads MSRs (27.4). */
static void test_hw_refused(void)
{
    fresh();
    entry_msr_list();
    CHECK(l1_vmlaunch() == O_ENTERED && fake_msr(MSR_IA32_KERNEL_GS_BASE)->val == 0x6666, "entered");
    memset(&inj, 0, sizeof(inj));
    regcache_reset(&rc);
    nested_hw_refused(&nv, VMXERR_ENTRY_INVALID_HOST);
    regcache_flush(&rc);
    CHECK(fake_vmcs_current() == vmcs01_pa && !ns.guest_mode && !rc.guest_cr3_owned_by_nested, "back on vmcs01");
    CHECK(fake_vmcs_get(GUEST_RIP) == RIP0 + ILEN && (fake_vmcs_get(GUEST_RFLAGS) & 0x41) == 0x40 &&
              l1_error() == VMXERR_ENTRY_INVALID_HOST, "VMLAUNCH: VMfailValid(8)");
    CHECK(V12->launch_state == 0, "the failed VMLAUNCH leaves the VMCS clear");
    CHECK(msrs_as_before(), "the VM-entry MSR-load list undone: KERNEL_GS_BASE %#llx, STAR %#llx",
          ULL(fake_msr(MSR_IA32_KERNEL_GS_BASE)->val), ULL(fake_msr(MSR_IA32_STAR)->val));
    vmcs12_set(V12, VM_ENTRY_MSR_LOAD_COUNT, 0);
    CHECK(l1_vmlaunch() == O_ENTERED && fake_vmcs_clear_count(ns.vmcs02_pa) == 2, "next entry: a clear vmcs02");
}

/* The CPU refused vmcs02 with a VM-entry failure (reason 33 with bit 31): L1 sees the VM-entry
 * failure of its VMLAUNCH as SDM 27.8 describes it, not a reflected exit: no guest state or
 * MSR stored, the event to inject still valid, host state and the exit MSR-load list, the VMCS
 * still clear, and no MSR of the entry list loaded (the checks come first, 27.4). */
static void test_hw_entry_failure(void)
{
    fresh();
    entry_msr_list();
    uint32_t event = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 6;
    vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, event);
    vmcs12_set(V12, VM_EXIT_MSR_STORE_COUNT, 1);
    msr_entry(EXIT_STORE, 0, MSR_IA32_LSTAR, 0xdead);
    vmcs12_set(V12, VM_EXIT_MSR_LOAD_COUNT, 1);
    msr_entry(EXIT_LOAD, 0, MSR_IA32_LSTAR, 0xbeef);
    vmcs12_set(V12, VM_EXIT_INTR_INFO, 0x1234);
    uint64_t rip12 = vmcs12_get(V12, GUEST_RIP);
    CHECK(l1_vmlaunch() == O_ENTERED, "entered");
    fake_vmcs_set(GUEST_RIP, rip12 + 0x10); /* what a reflected exit would store */
    CHECK(l2_exit(EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL, 0), "taken by nested/");
    CHECK(fake_vmcs_current() == vmcs01_pa && !ns.guest_mode && !rc.guest_cr3_owned_by_nested, "back on vmcs01");
    CHECK(vmcs12_get(V12, VM_EXIT_REASON) == (EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL) &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == 0 && vmcs12_get(V12, VM_EXIT_INTR_INFO) == 0x1234,
          "exit reason %#llx, other exit information unchanged", ULL(vmcs12_get(V12, VM_EXIT_REASON)));
    CHECK(vmcs12_get(V12, GUEST_RIP) == rip12, "guest-state area unchanged: RIP %#llx", ULL(vmcs12_get(V12, GUEST_RIP)));
    CHECK(vmcs12_get(V12, VM_ENTRY_INTR_INFO_FIELD) == event, "event still valid: %#llx",
          ULL(vmcs12_get(V12, VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(MSR_ENTRY(EXIT_STORE, 0)[1] == 0xdead && fake_msr(MSR_IA32_LSTAR)->val == 0xbeef,
          "no MSR stored (%#llx), the exit MSR-load list performed", ULL(MSR_ENTRY(EXIT_STORE, 0)[1]));
    CHECK(msrs_as_before(), "the VM-entry MSR-load list undone: KERNEL_GS_BASE %#llx, STAR %#llx",
          ULL(fake_msr(MSR_IA32_KERNEL_GS_BASE)->val), ULL(fake_msr(MSR_IA32_STAR)->val));
    CHECK(V12->launch_state == 0, "the VMCS stays clear");
    CHECK(g01(GUEST_RIP) == vmcs12_get(V12, HOST_RIP) && g01(GUEST_RFLAGS) == 2, "L1 at its host RIP");
    CHECK(l1_vmresume() == O_FAIL_VALID && l1_error() == VMXERR_VMRESUME_NONLAUNCHED, "VMRESUME after it: error 5");

    /* After an exit hv handled L2 has run: a VMRESUME the CPU refuses then undoes nothing. */
    vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, 0);
    CHECK(l1_vmlaunch() == O_ENTERED, "entered again");
    rc.regs[HV_REG_RCX] = 0x10;
    CHECK(!l2_exit(EXIT_REASON_MSR_READ, 0), "an exit hv handles");
    CHECK(l2_exit(EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL, 0) && !ns.guest_mode, "refused later");
    CHECK(fake_msr(MSR_IA32_KERNEL_GS_BASE)->val == 0x6666 && V12->launch_state == 1,
          "after L2 ran: MSRs as L2 left them, the VMCS launched");
}

int main(void)
{
    test_failure_order();
    test_entry_failure_state();
    test_vmcs02();
    test_entry_controls();
    test_guest_cr3();
    test_vmcs02_reuse();
    test_pae_pdptes();
    test_entry_failure_efer();
    test_entry_failure_nmi_blocking();
    test_link_pointer();
    test_xss_exit_bitmap();
    test_hw_refused();
    test_hw_entry_failure();
    return test_summary();
}
