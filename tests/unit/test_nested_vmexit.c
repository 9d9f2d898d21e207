/*
 * Host tests for nested/vmexit.c: an exit of L2 reflected to L1. vmcs12 receives L2's state
 * and the exit information (SDM 28.2, 28.3), the VM-exit MSR-store list is performed (28.4),
 * L1 continues from vmcs12's host state loaded into vmcs01 (28.5) and the VM-exit MSR-load
 * list (28.6); and the decisions which MSR, I/O and CR exits are L1's (26.1.3) and which hv's.
 */
#include <string.h>
#include "lib/x86.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
#define MSR_ENTRY(list, i) (&gpa_u64(GPA(PG_MSR_LISTS) + (list))[2 * (i)])
#define EXIT_STORE 0x400
#define EXIT_LOAD 0x800

static void msr_entry(unsigned list, unsigned i, uint32_t msr, uint64_t val)
{
    MSR_ENTRY(list, i)[0] = msr;
    MSR_ENTRY(list, i)[1] = val;
}
static uint64_t g01(uint32_t f) { return fake_vmcs_get_in(vmcs01_pa, f); }
static uint64_t w12(uint32_t f) { return vmcs12_get(V12, f); }
/* A field as L1 reads it: its VMREAD (no shadow VMCS in these tests: each one exits). */
static uint64_t r12(uint32_t f)
{
    uint64_t v = 0;
    enum outcome o = l1_vmread(f, &v);
    CHECK(o == O_SUCCEED, "VMREAD %#x: %s", f, outcome_name(o));
    return v;
}

static void enter(void)
{
    enum outcome o = V12->launch_state ? l1_vmresume() : l1_vmlaunch();
    CHECK(o == O_ENTERED, "nested VM-Enter: %s", outcome_name(o));
}

static void fresh(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    enter();
}

static const uint32_t exit_info[] = {
    EXIT_QUALIFICATION, GUEST_LINEAR_ADDRESS, VM_EXIT_INTR_INFO, VM_EXIT_INTR_ERROR_CODE, IDT_VECTORING_INFO_FIELD,
    IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN, VMX_INSTRUCTION_INFO, IO_RCX, IO_RSI, IO_RDI, IO_RIP,
};
#define N(a) (sizeof(a) / sizeof((a)[0]))
static uint64_t val_for(uint32_t f, unsigned i) { return (0x5a00 + i) & (VMCS_FIELD_WIDTH(f) == VMCS_WIDTH_16 ? 0xffff : ~0ull); }

static bool undefined_at_cpuid(uint32_t f)
{
    return f == GUEST_LINEAR_ADDRESS || f == VMX_INSTRUCTION_INFO || f == VM_EXIT_INTR_ERROR_CODE ||
           f == IDT_VECTORING_ERROR_CODE;
}

/* 28.2, 28.3: what the CPU stored in vmcs02 reaches vmcs12, with L2's view of CR0/CR4. */
static void test_reflect_saves(void)
{
    fresh();
    for (unsigned i = 0; i < nested_nr_guest_fields; i++)
        fake_vmcs_set(nested_guest_fields[i], val_for(nested_guest_fields[i], i));
    for (unsigned i = 0; i < N(exit_info); i++)
        fake_vmcs_set(exit_info[i], 0x7700 + i);
    fake_vmcs_set(GUEST_RIP, 0xffffffff81234567ull);
    fake_vmcs_set(GUEST_RSP, 0xffffc90000123450ull);
    fake_vmcs_set(GUEST_RFLAGS, 0x10246);
    fake_vmcs_set(GUEST_CR3, 0x7777000);
    fake_vmcs_set(GUEST_CR0, 0x80050033 | CR0_TS);  /* real: NE forced by hv */
    fake_vmcs_set(CR0_READ_SHADOW, 0x80050013);      /* L2 wrote NE = 0: hv's bit */
    fake_vmcs_set(GUEST_CR4, 0x26a0 | (1u << 9));
    fake_vmcs_set(GUEST_DR7, 0x401);
    fake_vmcs_set(GUEST_IA32_DEBUGCTL, 2);
    fake_vmcs_set(GUEST_IA32_PAT, 0x0606060606060606ull);
    fake_vmcs_set(GUEST_IA32_EFER, 0x500);
    fake_vmcs_set(VMX_PREEMPTION_TIMER_VALUE, 1234);
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, 0x99000);
    fake_vmcs_set(VM_ENTRY_CONTROLS, fake_vmcs_get(VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE);
    vmcs12_set(V12, VM_INSTRUCTION_ERROR, 12);
    uint64_t gpa12 = w12(GUEST_PHYSICAL_ADDRESS), before[N(exit_info)];
    for (unsigned i = 0; i < N(exit_info); i++)
        before[i] = w12(exit_info[i]);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0x7700) && !ns.guest_mode, "CPUID exit reflected");
    for (unsigned i = 0; i < nested_nr_guest_fields; i++)
        CHECK(r12(nested_guest_fields[i]) == val_for(nested_guest_fields[i], i), "guest field %#x: %#llx",
              nested_guest_fields[i], ULL(r12(nested_guest_fields[i])));
    for (unsigned i = 0; i < N(exit_info); i++) /* 28.2: a CPUID exit writes neither GLA nor instruction info;
                                                   the error codes only with their (here clear) valid bits */
        CHECK(r12(exit_info[i]) == (undefined_at_cpuid(exit_info[i]) ? before[i] : 0x7700 + i),
              "exit information %#x: %#llx", exit_info[i], ULL(r12(exit_info[i])));
    CHECK(r12(VM_EXIT_REASON) == EXIT_REASON_CPUID && r12(VM_INSTRUCTION_ERROR) == 12, "reason; error unchanged");
    CHECK(r12(GUEST_RIP) == 0xffffffff81234567ull && r12(GUEST_RSP) == 0xffffc90000123450ull &&
              r12(GUEST_RFLAGS) == 0x10246 && r12(GUEST_CR3) == 0x7777000, "RIP, RSP, RFLAGS, CR3");
    CHECK(r12(GUEST_CR0) == (0x80050013 | CR0_TS), "CR0 %#llx: hv's NE as L2 set it", ULL(r12(GUEST_CR0)));
    CHECK(r12(GUEST_CR4) == (0x26a0 | (1u << 9)), "CR4 %#llx (VMXE: L1's mask, the real bit)", ULL(r12(GUEST_CR4)));
    CHECK(r12(GUEST_DR7) == 0x401 && r12(GUEST_IA32_DEBUGCTL) == 2 && r12(GUEST_IA32_PAT) == 0x0606060606060606ull &&
              r12(GUEST_IA32_EFER) == 0x500 && r12(VMX_PREEMPTION_TIMER_VALUE) == 1234,
          "saved as the exit controls ask: DR7, DEBUGCTL, PAT, EFER, timer");
    CHECK(!(r12(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE), "IA-32e mode guest stores EFER.LMA (28.2)");
    CHECK(!(r12(VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID), "entry interruption information invalid after exit");
    CHECK(r12(GUEST_PHYSICAL_ADDRESS) == gpa12, "guest-physical address is EPT01's, not L1's");
    CHECK(ns.reflected_exits == 1, "counted");

    /* exit controls off: those fields keep vmcs12's values */
    nh_valid_vmcs12(V12); /* L1 sets up a valid L2 again */
    V12->launch_state = 1;
    ns.fast_ok = false; /* as L1's VMWRITEs (exits) would leave it: vmcs02's controls are rebuilt */
    uint32_t exit12 = (uint32_t)r12(VM_EXIT_CONTROLS);
    vmcs12_set(V12, VM_EXIT_CONTROLS, exit12 & ~(VM_EXIT_SAVE_DEBUG_CONTROLS | VM_EXIT_SAVE_PAT | VM_EXIT_SAVE_EFER |
                                                 VM_EXIT_SAVE_PREEMPTION_TIMER));
    enter();
    fake_vmcs_set(GUEST_IA32_EFER, 0x500);
    fake_vmcs_set(GUEST_DR7, 0x4ff);
    CHECK(l2_exit(EXIT_REASON_HLT, 0), "HLT exit reflected");
    CHECK(r12(GUEST_IA32_EFER) == 0xd01 && r12(GUEST_DR7) == 0x400, "not saved: EFER %#llx DR7 %#llx",
          ULL(r12(GUEST_IA32_EFER)), ULL(r12(GUEST_DR7)));
    /* 27.2.1: VMREAD/VMWRITE with a register operand: exit qualification 0 */
    enter();
    fake_vmcs_set(VMX_INSTRUCTION_INFO, II_REGFORM);
    CHECK(l2_exit(EXIT_REASON_VMREAD, 0x1234) && w12(EXIT_QUALIFICATION) == 0, "register VMREAD: qual %#llx",
          ULL(w12(EXIT_QUALIFICATION)));
    enter();
    fake_vmcs_set(VMX_INSTRUCTION_INFO, II_MEM_RAX);
    CHECK(l2_exit(EXIT_REASON_VMWRITE, 0x1234) && w12(EXIT_QUALIFICATION) == 0x1234, "memory VMWRITE: displacement");
}

/* The fields a reflected exit leaves in vmcs02 (nested_sync_rare, as KVM's
 * sync_vmcs02_to_vmcs12_rare): L1 still gets L2's values, through its VMREAD, in its VMCS
 * region at VMCLEAR, and in vmcs02 again after any entry that rebuilds it. */
static uint64_t lz(uint64_t base, unsigned i) { return base + 0x10 * i; } /* selectors with RPL 0 */
static void test_lazy_sync(void)
{
    static const uint32_t rare[] = {GUEST_TR_BASE, GUEST_LDTR_LIMIT, GUEST_SYSENTER_EIP, GUEST_ES_SELECTOR, IO_RCX};
    const struct vmcs12 *image = gpa_ptr(GPA(PG_VMCS_A));
    fresh();
    for (unsigned i = 0; i < N(rare); i++)
        fake_vmcs_set(rare[i], lz(0x6100, i));
    uint32_t reads = fake_vmcs_read_count(GUEST_TR_BASE);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && !ns.guest_mode, "CPUID exit reflected");
    CHECK(fake_vmcs_read_count(GUEST_TR_BASE) == reads, "the exit leaves TR base in vmcs02");
    CHECK(r12(GUEST_TR_BASE) == 0x6100 && r12(IO_RCX) == 0x6140, "L1's VMREAD: TR base %#llx, IO_RCX %#llx",
          ULL(r12(GUEST_TR_BASE)), ULL(r12(IO_RCX)));
    CHECK(fake_vmcs_current() == vmcs01_pa, "vmcs01 current again after the VMREAD");

    /* A fast VMRESUME keeps vmcs02's copy; L2 changes the fields; the next exit leaves them.
     * Not IA32_EFER (saved as the exit controls ask): every entry writes it from vmcs12. */
    uint64_t fast0 = ns.fast_entries;
    enter();
    CHECK(ns.fast_entries == fast0 + 1, "fast VMRESUME");
    fake_vmcs_set(GUEST_IA32_EFER, 0x501);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "exit after L2 set EFER.LMA");
    enter();
    CHECK(ns.fast_entries == fast0 + 2 && fake_vmcs_get(GUEST_IA32_EFER) == (0x501),
          "fast VMRESUME: vmcs02 EFER %#llx, L2's saved at the exit", ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    for (unsigned i = 0; i < N(rare); i++)
        fake_vmcs_set(rare[i], lz(0x6200, i));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "second exit reflected");
    CHECK(l1_vmclear(GPA(PG_VMCS_A)) == O_SUCCEED, "VMCLEAR");
    for (unsigned i = 0; i < N(rare); i++)
        CHECK(vmcs12_get(image, rare[i]) == lz(0x6200, i), "VMCLEARed image: field %#x is %#llx", rare[i],
              ULL(vmcs12_get(image, rare[i])));
    /* VMPTRLD and VMLAUNCH: vmcs02 is built from the image */
    CHECK(l1_vmptrld(GPA(PG_VMCS_A)) == O_SUCCEED, "VMPTRLD");
    enter();
    for (unsigned i = 0; i < N(rare) - 1; i++)
        CHECK(fake_vmcs_get(rare[i]) == lz(0x6200, i), "vmcs02 field %#x after VMLAUNCH: %#llx", rare[i],
              ULL(fake_vmcs_get(rare[i])));

    /* L1's VMWRITE of one such field after an exit: neither lost nor overwritten by the others */
    for (unsigned i = 0; i < N(rare); i++)
        fake_vmcs_set(rare[i], lz(0x6300, i));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "third exit reflected");
    CHECK(l1_vmwrite(GUEST_LDTR_LIMIT, 0xabc) == O_SUCCEED, "VMWRITE LDTR limit");
    enter();
    CHECK(fake_vmcs_get(GUEST_LDTR_LIMIT) == 0xabc && fake_vmcs_get(GUEST_TR_BASE) == 0x6300,
          "vmcs02 after the entry: LDTR limit %#llx (L1's), TR base %#llx (L2's)", ULL(fake_vmcs_get(GUEST_LDTR_LIMIT)),
          ULL(fake_vmcs_get(GUEST_TR_BASE)));

    /* The CPU refuses vmcs02 at a fast VMRESUME: vmcs02 is given up, vmcs12 keeps L2's values */
    for (unsigned i = 0; i < N(rare); i++)
        fake_vmcs_set(rare[i], lz(0x6400, i));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "fourth exit reflected");
    fast0 = ns.fast_entries;
    enter();
    CHECK(ns.fast_entries == fast0 + 1, "fast VMRESUME");
    CHECK(!l2_exit(VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE, 0) || !ns.guest_mode, "entry failure");
    for (unsigned i = 0; i < N(rare) - 1; i++)
        fake_vmcs_set_in(ns.vmcs02_pa, rare[i], 0); /* whatever a cleared vmcs02 holds */
    CHECK(r12(GUEST_TR_BASE) == 0x6400, "TR base after the entry failure: %#llx", ULL(r12(GUEST_TR_BASE)));
    enter();
    CHECK(fake_vmcs_get(GUEST_LDTR_LIMIT) == 0x6410 && fake_vmcs_get(GUEST_SYSENTER_EIP) == 0x6420,
          "vmcs02 rebuilt after the failure: LDTR limit %#llx, SYSENTER_EIP %#llx", ULL(fake_vmcs_get(GUEST_LDTR_LIMIT)),
          ULL(fake_vmcs_get(GUEST_SYSENTER_EIP)));
}

/* 28.5: L1's state after the exit is vmcs12's host state. */
static void test_host_state(void)
{
    fresh();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(fake_vmcs_current() == vmcs01_pa && !rc.guest_cr3_owned_by_nested, "vmcs01 current");
    CHECK(g01(GUEST_RIP) == w12(HOST_RIP) && g01(GUEST_RSP) == w12(HOST_RSP) && g01(GUEST_RFLAGS) == 2,
          "RIP, RSP, RFLAGS = 2");
    CHECK(g01(CR0_READ_SHADOW) == w12(HOST_CR0) && g01(GUEST_CR0) == ((w12(HOST_CR0) | hw.cr0_fixed0) & hw.cr0_fixed1),
          "CR0 %#llx / shadow %#llx", ULL(g01(GUEST_CR0)), ULL(g01(CR0_READ_SHADOW)));
    CHECK(g01(CR4_READ_SHADOW) == w12(HOST_CR4) && (g01(GUEST_CR4) & CR4_VMXE) && g01(GUEST_CR3) == w12(HOST_CR3),
          "CR4, CR3");
    CHECK(g01(GUEST_DR7) == 0x400 && g01(GUEST_IA32_DEBUGCTL) == 0, "DR7 = 400H, DEBUGCTL = 0");
    CHECK(g01(GUEST_IA32_EFER) == w12(HOST_IA32_EFER) && g01(GUEST_IA32_PAT) == w12(HOST_IA32_PAT), "EFER, PAT loaded");
    CHECK(g01(GUEST_SYSENTER_CS) == w12(HOST_IA32_SYSENTER_CS) && g01(GUEST_SYSENTER_EIP) ==
              w12(HOST_IA32_SYSENTER_EIP), "SYSENTER");
    CHECK((g01(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE), "L1 in IA-32e mode (host address-space size)");
    /* 28.5.2 segments */
    CHECK(g01(GUEST_CS_SELECTOR) == 0x08 && g01(GUEST_CS_AR_BYTES) == 0xa09b && g01(GUEST_CS_BASE) == 0 &&
              g01(GUEST_CS_LIMIT) == 0xffffffff, "CS: 64-bit code, flat");
    const enum guest_seg data[] = {SEG_SS, SEG_DS, SEG_ES};
    for (unsigned i = 0; i < N(data); i++)
        CHECK(g01(GUEST_SEG_SELECTOR(data[i])) == 0x10 && g01(GUEST_SEG_AR(data[i])) == 0xc093 &&
                  g01(GUEST_SEG_BASE(data[i])) == 0 && g01(GUEST_SEG_LIMIT(data[i])) == 0xffffffff,
              "data segment %d: flat read/write, DPL 0", data[i]);
    CHECK(g01(GUEST_FS_SELECTOR) == 0 && g01(GUEST_FS_AR_BYTES) == 0x10000 && g01(GUEST_GS_AR_BYTES) == 0x10000,
          "null FS, GS: unusable");
    CHECK(g01(GUEST_GS_BASE) == w12(HOST_GS_BASE) && g01(GUEST_FS_BASE) == w12(HOST_FS_BASE), "FS/GS bases loaded");
    CHECK(g01(GUEST_TR_SELECTOR) == 0x18 && g01(GUEST_TR_BASE) == w12(HOST_TR_BASE) && g01(GUEST_TR_LIMIT) == 0x67 &&
              g01(GUEST_TR_AR_BYTES) == 0x8b, "TR: busy TSS, limit 67H");
    CHECK(g01(GUEST_LDTR_SELECTOR) == 0 && (g01(GUEST_LDTR_AR_BYTES) & 0x10000), "LDTR unusable");
    CHECK(g01(GUEST_GDTR_BASE) == w12(HOST_GDTR_BASE) && g01(GUEST_GDTR_LIMIT) == 0xffff &&
              g01(GUEST_IDTR_BASE) == w12(HOST_IDTR_BASE) && g01(GUEST_IDTR_LIMIT) == 0xffff, "GDTR, IDTR");
    CHECK(g01(GUEST_INTERRUPTIBILITY_INFO) == 0 && g01(GUEST_ACTIVITY_STATE) == 0 && g01(VM_ENTRY_INTR_INFO_FIELD) == 0,
          "no STI/MOV-SS blocking, active, nothing injected into L1");

    /* without "load IA32_EFER"/"load IA32_PAT": LMA = LME = host address-space size, the other
     * EFER bits as they were at the exit (L2's: it cleared NXE and SCE), PAT stays */
    uint32_t exit12 = (uint32_t)w12(VM_EXIT_CONTROLS);
    CHECK(l1_vmwrite(VM_EXIT_CONTROLS, exit12 & ~(VM_EXIT_LOAD_EFER | VM_EXIT_LOAD_PAT)) == O_SUCCEED,
          "VMWRITE exit controls");
    enter();
    fake_vmcs_set(GUEST_IA32_EFER, EFER_LMA | EFER_LME);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(g01(GUEST_IA32_EFER) == (EFER_LMA | EFER_LME) && g01(GUEST_IA32_PAT) == w12(HOST_IA32_PAT),
          "EFER %#llx (L2's NXE/SCE clear, L1 had %#llx), PAT %#llx", ULL(g01(GUEST_IA32_EFER)), ULL(L1_EFER),
          ULL(g01(GUEST_IA32_PAT)));
}

/* 28.5.1: CR0.ET, CD, NW and CR0's reserved bits (63:32, 28:19, 17, 15:6) keep the values L1
 * had when it entered L2; the other bits come from HOST_CR0. */
static void test_host_cr0(void)
{
    const struct { uint64_t l1, host, want; const char *what; } c[] = {
        {L1_CR0, L1_CR0 | CR0_CD | CR0_NW | CR0_TS, L1_CR0 | CR0_TS, "HOST_CR0 sets CD, NW: L1 keeps them clear"},
        {L1_CR0 | CR0_CD, L1_CR0, L1_CR0 | CR0_CD, "L1 ran with CD: it still does"},
        {L1_CR0, (L1_CR0 & ~0x10ull) | 1ull << 17 | 1ull << 6, L1_CR0, "ET and reserved bits 17, 6 not loaded"},
    };
    for (unsigned i = 0; i < N(c); i++) {
        nh_setup(false);
        fake_vmcs_set(GUEST_CR0, c[i].l1);
        fake_vmcs_set(CR0_READ_SHADOW, c[i].l1);
        l1_ready(PG_VMCS_A);
        vmcs12_set(V12, HOST_CR0, c[i].host);
        enter();
        CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
        CHECK(g01(CR0_READ_SHADOW) == c[i].want && g01(GUEST_CR0) == ((c[i].want | hw.cr0_fixed0) & hw.cr0_fixed1),
              "%s: CR0 %#llx, shadow %#llx, want %#llx", c[i].what, ULL(g01(GUEST_CR0)), ULL(g01(CR0_READ_SHADOW)),
              ULL(c[i].want));
    }
    /* a kept bit hv owns (not so on Bochs: hv owns only NE there): L1's value is its read shadow's */
    nh_setup(false);
    nv.cr0_mask |= CR0_CD;
    fake_vmcs_set(GUEST_CR0, L1_CR0);
    fake_vmcs_set(CR0_READ_SHADOW, L1_CR0 | CR0_CD);
    l1_ready(PG_VMCS_A);
    enter();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(g01(CR0_READ_SHADOW) & CR0_CD, "hv-owned CD: L1's (read shadow) kept, CR0 shadow %#llx",
          ULL(g01(CR0_READ_SHADOW)));
    /* a VM-entry failure loads host state the same way (27.8) */
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    vmcs12_set(V12, HOST_CR0, L1_CR0 | CR0_CD | CR0_NW);
    vmcs12_set(V12, GUEST_RFLAGS, 0);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTRY_FAILED && g01(CR0_READ_SHADOW) == L1_CR0, "VM-entry failure: %s, CR0 %#llx", outcome_name(o),
          ULL(g01(CR0_READ_SHADOW)));
}

/* 28.4 and 28.6: MSRs stored from L2's state before the host state is loaded; MSRs loaded
 * after it (a VMCS-switched MSR in the list wins over the host-state field). */
static void test_msr_lists(void)
{
    fresh();
    vmcs12_set(V12, VM_EXIT_MSR_STORE_COUNT, 3);
    msr_entry(EXIT_STORE, 0, MSR_IA32_EFER, 0);
    msr_entry(EXIT_STORE, 1, MSR_IA32_LSTAR, 0);
    msr_entry(EXIT_STORE, 2, 0x1234, 0x77); /* the CPU has no such MSR: a VMX abort on hardware */
    vmcs12_set(V12, VM_EXIT_MSR_LOAD_COUNT, 2);
    msr_entry(EXIT_LOAD, 0, MSR_IA32_EFER, 0x901);
    msr_entry(EXIT_LOAD, 1, MSR_IA32_STAR, 0x2323);
    fake_vmcs_set(GUEST_IA32_EFER, 0x500);
    fake_msr(MSR_IA32_LSTAR)->val = 0xfeedface;
    test_log_capture();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(MSR_ENTRY(EXIT_STORE, 0)[1] == 0x500 && MSR_ENTRY(EXIT_STORE, 1)[1] == 0xfeedface,
          "stored: L2's EFER %#llx, LSTAR %#llx", ULL(MSR_ENTRY(EXIT_STORE, 0)[1]), ULL(MSR_ENTRY(EXIT_STORE, 1)[1]));
    CHECK(test_log_contains("MSR-store list fails at entry") && test_log_contains("MSR 0x1234"), "the failed store is logged");
    CHECK(g01(GUEST_IA32_EFER) == 0x901 && fake_msr(MSR_IA32_STAR)->val == 0x2323, "loaded: EFER %#llx, STAR",
          ULL(g01(GUEST_IA32_EFER)));
}

/* 28.4: the store list stores what RDMSR returns, also for the MSRs hv emulates for L1
 * (IA32_FEATURE_CONTROL, IA32_VMX_*: hv_rdmsr answers as L1's RDMSR); 28.6: loading them
 * fails as WRMSR would (locked, read-only). */
static void test_msr_store_emulated(void)
{
    fresh();
    vmcs12_set(V12, VM_EXIT_MSR_STORE_COUNT, 2);
    msr_entry(EXIT_STORE, 0, MSR_IA32_FEATURE_CONTROL, 0x77);
    msr_entry(EXIT_STORE, 1, MSR_IA32_VMX_BASIC, 0x77);
    vmcs12_set(V12, VM_EXIT_MSR_LOAD_COUNT, 2);
    msr_entry(EXIT_LOAD, 0, MSR_IA32_STAR, 0x2323);
    msr_entry(EXIT_LOAD, 1, MSR_IA32_FEATURE_CONTROL, 1);
    test_log_capture();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(MSR_ENTRY(EXIT_STORE, 0)[1] == 5 && MSR_ENTRY(EXIT_STORE, 1)[1] == caps.basic,
          "stored: FEATURE_CONTROL %#llx, VMX_BASIC %#llx (L1 reads 5, %#llx)", ULL(MSR_ENTRY(EXIT_STORE, 0)[1]),
          ULL(MSR_ENTRY(EXIT_STORE, 1)[1]), ULL(caps.basic));
    CHECK(!test_log_contains("MSR-store list fails"), "no store failure");
    CHECK(fake_msr(MSR_IA32_STAR)->val == 0x2323 && test_log_contains("MSR-load list fails at entry 2") &&
              fake_msr(MSR_IA32_FEATURE_CONTROL)->val == 5, "loading FEATURE_CONTROL fails (locked)");
}

/* 28.6: an entry for IA32_FS_BASE or IA32_GS_BASE fails the VM-exit MSR load (a VMX abort on
 * hardware): neither that MSR nor the entries after it are loaded. */
static void test_msr_load_fs_base(void)
{
    fresh();
    vmcs12_set(V12, VM_EXIT_MSR_LOAD_COUNT, 2);
    msr_entry(EXIT_LOAD, 0, MSR_IA32_FS_BASE, 0x1234000);
    msr_entry(EXIT_LOAD, 1, MSR_IA32_STAR, 0x2323);
    test_log_capture();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(g01(GUEST_FS_BASE) == w12(HOST_FS_BASE) && fake_msr(MSR_IA32_STAR)->val == 0x2222,
          "FS base %#llx (host %#llx), STAR %#llx", ULL(g01(GUEST_FS_BASE)), ULL(w12(HOST_FS_BASE)),
          ULL(fake_msr(MSR_IA32_STAR)->val));
    CHECK(test_log_contains("VM-exit MSR-load list fails at entry 1"), "logged as the VMX abort it is");
}

/* Which exits are L1's (26.1.3 as L1's controls and bitmaps say); the others hv handles on
 * L2's state, vmcs02 staying current. */
static bool l1s(uint32_t reason, uint64_t qual)
{
    bool l1 = l2_exit(reason, qual);
    CHECK(l1 == !ns.guest_mode, "exit %u: taken %d, guest mode %d", reason, l1, ns.guest_mode);
    if (l1)
        enter();
    return l1;
}
#define CHECK_L1(reason, qual, want, what)                                                         \
    do {                                                                                           \
        bool l1_ = l1s(reason, qual);                                                              \
        CHECK(l1_ == (want), "%s: %s, want %s", what, l1_ ? "L1's" : "hv's", (want) ? "L1's" : "hv's"); \
    } while (0)

static void bit(uint64_t page, uint32_t n, bool on)
{
    uint8_t *b = (uint8_t *)gpa_ptr(page) + n / 8;
    *b = on ? *b | (uint8_t)(1u << (n % 8)) : *b & (uint8_t)~(1u << (n % 8));
}

static void test_msr_exits(void)
{
    fresh();
    const struct { uint32_t msr, bit; bool write; } m[] = {
        {0x10, 0x10, false}, {0x1fff, 0x1fff, false}, {0x10, 2048 * 8 + 0x10, true},
        {0xc0000080, 1024 * 8 + 0x80, false}, {0xc0001fff, 3072 * 8 + 0x1fff, true},
    };
    for (unsigned i = 0; i < N(m); i++) {
        uint32_t reason = m[i].write ? EXIT_REASON_MSR_WRITE : EXIT_REASON_MSR_READ;
        rc.regs[HV_REG_RCX] = m[i].msr;
        CHECK_L1(reason, 0, false, "MSR with its bitmap bit clear");
        bit(GPA(PG_MSR_BM), m[i].bit, true);
        rc.regs[HV_REG_RCX] = m[i].msr;
        CHECK_L1(reason, 0, true, "MSR with its bitmap bit set");
        bit(GPA(PG_MSR_BM), m[i].bit, false);
    }
    rc.regs[HV_REG_RCX] = 0x40000000;
    CHECK_L1(EXIT_REASON_MSR_READ, 0, true, "MSR outside the bitmap's ranges");
    rc.regs[HV_REG_RCX] = 0xc0002000;
    CHECK_L1(EXIT_REASON_MSR_WRITE, 0, true, "MSR just above the high range");
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, w12(CPU_BASED_VM_EXEC_CONTROL) & ~CPU_BASED_USE_MSR_BITMAPS);
    rc.regs[HV_REG_RCX] = 0x10;
    CHECK_L1(EXIT_REASON_MSR_READ, 0, true, "no MSR bitmaps: every MSR access");
}

static uint64_t io_qual(uint32_t port, unsigned size) { return (uint64_t)port << 16 | (size - 1); }

static void test_io_exits(void)
{
    fresh();
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x60, 1), false, "port 0x60, bit clear");
    bit(GPA(PG_IO_A), 0x60, true);
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x60, 1), true, "port 0x60, bit set");
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x5f, 2), true, "2 bytes from 0x5f: 0x60's bit");
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x5c, 4), false, "4 bytes 0x5c-0x5f");
    bit(GPA(PG_IO_B), 0x0001, true);
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x8001, 1), true, "port 0x8001 in bitmap B");
    bit(GPA(PG_IO_B), 0x0000, true);
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x7fff, 2), true, "0x7fff-0x8000: bitmap B's bit");
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0xffff, 2), true, "wraps around 0xffff");
    uint32_t proc = (uint32_t)w12(CPU_BASED_VM_EXEC_CONTROL) & ~CPU_BASED_USE_IO_BITMAPS;
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc | CPU_BASED_UNCOND_IO_EXITING);
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x70, 1), true, "unconditional I/O exiting");
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc);
    CHECK_L1(EXIT_REASON_IO_INSTRUCTION, io_qual(0x60, 1), false, "no I/O exiting at all");
}

/* CR-access exit qualification (Table 28-3): CR number, access type, register. */
static uint64_t cr_qual(unsigned cr, unsigned type, enum hv_reg r) { return cr | type << 4 | (uint64_t)r << 8; }

static void test_cr_exits(void)
{
    fresh();
    /* valid64: CR0 mask PG|PE with shadow 0x80050033; CR4 mask VMXE with shadow 0x6a0 */
    rc.regs[HV_REG_RAX] = 0x80050013; /* only NE (hv's) differs from the shadow */
    CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(0, 0, HV_REG_RAX), false, "MOV to CR0 changing hv's bit only");
    rc.regs[HV_REG_RAX] = 0x80050032;
    CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(0, 0, HV_REG_RAX), true, "MOV to CR0 clearing PE (L1's mask)");
    rc.regs[HV_REG_RBX] = 0x6a0;
    CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(4, 0, HV_REG_RBX), false, "MOV to CR4 as the shadow");
    rc.regs[HV_REG_RBX] = 0x26a0;
    CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(4, 0, HV_REG_RBX), true, "MOV to CR4 setting VMXE (L1's mask)");
    const struct { unsigned cr, type; uint32_t ctl; const char *what; } c[] = {
        {3, 0, CPU_BASED_CR3_LOAD_EXITING, "MOV to CR3"}, {3, 1, CPU_BASED_CR3_STORE_EXITING, "MOV from CR3"},
        {8, 0, CPU_BASED_CR8_LOAD_EXITING, "MOV to CR8"}, {8, 1, CPU_BASED_CR8_STORE_EXITING, "MOV from CR8"},
    };
    uint32_t proc = (uint32_t)w12(CPU_BASED_VM_EXEC_CONTROL);
    for (unsigned i = 0; i < N(c); i++) {
        vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc & ~c[i].ctl);
        CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(c[i].cr, c[i].type, HV_REG_RCX), false, c[i].what);
        vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc | c[i].ctl);
        CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(c[i].cr, c[i].type, HV_REG_RCX), true, c[i].what);
    }
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc);
    CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(0, 2, 0), true, "CLTS");
    CHECK_L1(EXIT_REASON_CR_ACCESS, cr_qual(0, 3, 0) | 1ull << 16, true, "LMSW");
}

static void test_other_exits(void)
{
    fresh();
    CHECK_L1(EXIT_REASON_EPT_VIOLATION, 0x181, false, "EPT violation on EPT01: hv's memory");
    const uint32_t always[] = {EXIT_REASON_CPUID, EXIT_REASON_HLT, EXIT_REASON_VMCALL, EXIT_REASON_EXCEPTION_NMI,
                               EXIT_REASON_PREEMPTION_TIMER, EXIT_REASON_TRIPLE_FAULT, EXIT_REASON_VMXON};
    for (unsigned i = 0; i < N(always); i++)
        CHECK_L1(always[i], 0, true, "exit L1 enabled (or that always exits)");
    /* MTF and the NMI window: hv's own too (an NMI it holds for L1, hv/exit.c) */
    uint32_t proc = (uint32_t)w12(CPU_BASED_VM_EXEC_CONTROL);
    CHECK_L1(EXIT_REASON_MONITOR_TRAP_FLAG, 0, false, "MTF L1 did not ask for");
    CHECK_L1(EXIT_REASON_NMI_WINDOW, 0, false, "NMI window L1 did not ask for");
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc | CPU_BASED_MONITOR_TRAP_FLAG | CPU_BASED_NMI_WINDOW_EXITING);
    CHECK_L1(EXIT_REASON_MONITOR_TRAP_FLAG, 0, true, "L1's MTF");
    CHECK_L1(EXIT_REASON_NMI_WINDOW, 0, true, "L1's NMI window");
    vmcs12_set(V12, CPU_BASED_VM_EXEC_CONTROL, proc);
}

/* L2's blocking by NMI at the exit (SDM 26.6.1). Without NMI exiting (so without virtual
 * NMIs) it is the CPU's own and lasts until an IRET: L1's, after the exit. With NMI exiting
 * but no virtual NMIs it lasts as long as L2 runs, even past L2's IRET, which ends vmcs02's
 * virtual-NMI blocking: vmcs12 still shows it, and the exit ends it. */
static void test_nmi_blocking(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
    uint32_t pin = (uint32_t)w12(PIN_BASED_VM_EXEC_CONTROL) & ~(PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS);
    const struct { uint32_t pin; uint64_t intr12, inj12, intr02; bool blocked02, saved, l1; const char *what; } c[] = {
        {pin, 0, 0, GUEST_INTR_NMI, false, true, true, "no NMI exiting, L2 in its NMI handler: L1 blocked"},
        {pin, 0, 0, 0, false, false, false, "no NMI exiting, L2 not blocked"},
        {pin | PIN_BASED_NMI_EXITING, GUEST_INTR_NMI, 0, 0, true, true, false,
         "NMI exiting, entered blocked, L2's IRET: still blocked, until the exit"},
        {pin | PIN_BASED_NMI_EXITING, 0, 0x80000202, 0, true, true, false,
         "NMI exiting, NMI injected, L2's IRET: still blocked, until the exit"},
        {pin | PIN_BASED_NMI_EXITING, 0, 0, 0, false, false, false, "NMI exiting, not blocked"},
        {pin | PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, GUEST_INTR_NMI, 0, 0, false, false, false,
         "virtual NMIs, entered virtual-NMI blocked, L2's IRET"},
        {pin | PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS, 0, 0, GUEST_INTR_NMI, false, true, false,
         "virtual NMIs, L2 virtual-NMI blocked at the exit: L1 not blocked"},
    };
    for (unsigned i = 0; i < N(c); i++) {
        vmcs12_set(V12, PIN_BASED_VM_EXEC_CONTROL, c[i].pin);
        vmcs12_set(V12, GUEST_INTERRUPTIBILITY_INFO, c[i].intr12);
        vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, c[i].inj12);
        enter();
        CHECK(ns.l2_nmi_blocked == c[i].blocked02, "%s: blocked until the exit %d", c[i].what, ns.l2_nmi_blocked);
        fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, c[i].intr02); /* what the CPU left in vmcs02 */
        CHECK(l2_exit(EXIT_REASON_CPUID, 0), "%s: reflected", c[i].what);
        CHECK(!!(w12(GUEST_INTERRUPTIBILITY_INFO) & GUEST_INTR_NMI) == c[i].saved, "%s: vmcs12 interruptibility %#llx",
              c[i].what, ULL(w12(GUEST_INTERRUPTIBILITY_INFO)));
        CHECK(g01(GUEST_INTERRUPTIBILITY_INFO) == (c[i].l1 ? GUEST_INTR_NMI : 0), "%s: L1's interruptibility %#llx",
              c[i].what, ULL(g01(GUEST_INTERRUPTIBILITY_INFO)));
        CHECK(!ns.l2_nmi_blocked, "%s: cleared by the exit", c[i].what);
    }
    /* An NMI exit: L1 blocked until its IRET, whatever L2's state. */
    vmcs12_set(V12, PIN_BASED_VM_EXEC_CONTROL, pin | PIN_BASED_NMI_EXITING);
    vmcs12_set(V12, GUEST_INTERRUPTIBILITY_INFO, 0);
    vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, 0);
    enter();
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, 0);
    regcache_reset(&rc);
    nested_reflect_nmi(&nv);
    regcache_flush(&rc);
    CHECK(w12(VM_EXIT_REASON) == EXIT_REASON_EXCEPTION_NMI && w12(VM_EXIT_INTR_INFO) == 0x80000202 &&
              g01(GUEST_INTERRUPTIBILITY_INFO) == GUEST_INTR_NMI, "NMI exit: info %#llx, L1's interruptibility %#llx",
          ULL(w12(VM_EXIT_INTR_INFO)), ULL(g01(GUEST_INTERRUPTIBILITY_INFO)));
}

/* IA32_PERF_GLOBAL_CTRL (nested/perf_global.c): loaded from vmcs12 at entry (27.3.2.1), saved
 * at exit (28.3), L1's host value loaded after (28.5.1), each only with its control. */
static void test_perf_global(void)
{
    struct fake_msr *pg;
    uint64_t hw_exit = hw.exit;
    hw.exit |= (uint64_t)VM_EXIT_SAVE_PERF_GLOBAL_CTRL << 32; /* as Bochs 3.0 has it; the sample has not */
    nh_setup(false);
    pg = fake_msr(MSR_IA32_PERF_GLOBAL_CTRL);
    l1_ready(PG_VMCS_A);
    vmcs12_set(V12, VM_ENTRY_CONTROLS, w12(VM_ENTRY_CONTROLS) | VM_ENTRY_LOAD_PERF_GLOBAL_CTRL);
    vmcs12_set(V12, VM_EXIT_CONTROLS,
               w12(VM_EXIT_CONTROLS) | VM_EXIT_LOAD_PERF_GLOBAL_CTRL | VM_EXIT_SAVE_PERF_GLOBAL_CTRL);
    vmcs12_set(V12, GUEST_IA32_PERF_GLOBAL_CTRL, 0x3);
    vmcs12_set(V12, HOST_IA32_PERF_GLOBAL_CTRL, 0x70000000full);
    enter();
    CHECK(pg->val == 0x3, "entry loads L2's value: %#llx", ULL(pg->val));
    pg->val = 0x2; /* L2 writes the MSR (L1 passes it through) */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(w12(GUEST_IA32_PERF_GLOBAL_CTRL) == 0x2, "saved: %#llx", ULL(w12(GUEST_IA32_PERF_GLOBAL_CTRL)));
    CHECK(pg->val == 0x70000000full, "L1's host value loaded: %#llx", ULL(pg->val));

    /* A VM-entry failure for a machine-check event (41) comes after the load: it stays
     * (27.8); a refusal on guest state (33) comes before it: undone. */
    nh_setup(false);
    pg = fake_msr(MSR_IA32_PERF_GLOBAL_CTRL);
    l1_ready(PG_VMCS_A);
    vmcs12_set(V12, VM_ENTRY_CONTROLS, w12(VM_ENTRY_CONTROLS) | VM_ENTRY_LOAD_PERF_GLOBAL_CTRL);
    vmcs12_set(V12, GUEST_IA32_PERF_GLOBAL_CTRL, 0x3);
    enter();
    l2_exit(VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_MCE_DURING_VMENTRY, 0);
    CHECK(!ns.guest_mode && pg->val == 0x3, "machine check during entry: L2's value stays: %#llx", ULL(pg->val));
    pg->val = 0x1;
    enter();
    l2_exit(VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_STATE, 0);
    CHECK(!ns.guest_mode && pg->val == 0x1, "CPU refused guest state: L1's value back: %#llx", ULL(pg->val));

    /* Without the controls: the MSR is whatever runs, vmcs12's fields untouched. */
    nh_setup(false);
    pg = fake_msr(MSR_IA32_PERF_GLOBAL_CTRL);
    l1_ready(PG_VMCS_A);
    vmcs12_set(V12, GUEST_IA32_PERF_GLOBAL_CTRL, 0x3);
    vmcs12_set(V12, HOST_IA32_PERF_GLOBAL_CTRL, 0x4);
    enter();
    CHECK(pg->val == 0x1 && pg->writes == 0, "no load at entry: %#llx", ULL(pg->val));
    pg->val = 0x5;
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(pg->val == 0x5 && w12(GUEST_IA32_PERF_GLOBAL_CTRL) == 0x3, "no save, no host load: %#llx, field %#llx",
          ULL(pg->val), ULL(w12(GUEST_IA32_PERF_GLOBAL_CTRL)));

    /* A reserved bit (counter 4 of 4): VM-entry failure, nothing loaded (26.3.1.1). */
    nh_setup(false);
    pg = fake_msr(MSR_IA32_PERF_GLOBAL_CTRL);
    l1_ready(PG_VMCS_A);
    vmcs12_set(V12, VM_ENTRY_CONTROLS, w12(VM_ENTRY_CONTROLS) | VM_ENTRY_LOAD_PERF_GLOBAL_CTRL);
    vmcs12_set(V12, GUEST_IA32_PERF_GLOBAL_CTRL, 1ull << 4);
    l1_vmlaunch();
    CHECK(!ns.guest_mode && (uint32_t)w12(VM_EXIT_REASON) == (EXIT_REASON_INVALID_STATE | VMX_EXIT_REASON_ENTRY_FAIL) &&
              pg->val == 0x1, "reserved bit: exit %#llx, MSR %#llx", ULL(w12(VM_EXIT_REASON)), ULL(pg->val));
    hw.exit = hw_exit;
}

/* An INIT held while L1 was in VMX root: the INIT exit right after L1's entry, vmcs02 never
 * run (hv/exit_init.c init_after_vmentry). vmcs12 gets the guest state it entered with, no
 * event information (vmcs02's are stale), and the next entry VMLAUNCHes vmcs02. */
static void test_init_exit(void)
{
    fresh();
    uint64_t rip12 = w12(GUEST_RIP);
    CHECK(launch_pending && ns.vmcs02_launched, "VMLAUNCH: vmcs02 to be launched");
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 14); /* a previous run's */
    fake_vmcs_set(VM_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x31);
    fake_vmcs_set(VM_EXIT_INTR_ERROR_CODE, 0xe1); /* its error code, and the (invalid) injection's */
    fake_vmcs_set(VM_ENTRY_EXCEPTION_ERROR_CODE, 0xe3);
    vmcs12_set(V12, VM_EXIT_INTR_ERROR_CODE, 0x11); /* what L1's previous exit left */
    vmcs12_set(V12, IDT_VECTORING_ERROR_CODE, 0x12);
    regcache_reset(&rc);
    nested_reflect_init(&nv);
    regcache_flush(&rc);
    CHECK(w12(VM_EXIT_INTR_ERROR_CODE) == 0x11 && w12(IDT_VECTORING_ERROR_CODE) == 0x12,
          "INIT exit: error codes %#llx/%#llx as L1's last exit left them (28.2.2, 28.2.3: undefined)",
          ULL(w12(VM_EXIT_INTR_ERROR_CODE)), ULL(w12(IDT_VECTORING_ERROR_CODE)));
    CHECK(w12(VM_EXIT_REASON) == EXIT_REASON_INIT_SIGNAL && w12(EXIT_QUALIFICATION) == 0 && !w12(VM_EXIT_INTR_INFO) &&
              !w12(IDT_VECTORING_INFO_FIELD) && w12(GUEST_RIP) == rip12,
          "INIT exit: reason %llu, info %#llx, vectoring %#llx, rip %#llx", ULL(w12(VM_EXIT_REASON)),
          ULL(w12(VM_EXIT_INTR_INFO)), ULL(w12(IDT_VECTORING_INFO_FIELD)), ULL(w12(GUEST_RIP)));
    CHECK(!ns.guest_mode && fake_vmcs_current() == vmcs01_pa && g01(GUEST_RIP) == w12(HOST_RIP) &&
              !launch_pending && !ns.vmcs02_launched,
          "L1 at its host RIP, vmcs02 not launched");
    enter();
    CHECK(launch_pending, "the next entry VMLAUNCHes vmcs02");
}

/* L1's host state comes from an image made at the first reflected exit after a full entry
 * (nested/vmexit.c host_img_build): an exiting VMWRITE of a host field or of the VM-exit
 * controls makes the next entry a full one, and that exit loads the new values. */
static void test_host_img_rebuilt(void)
{
    fresh();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected: the image is made");
    uint64_t fast0 = ns.fast_entries;
    enter();
    CHECK(ns.fast_entries == fast0 + 1 && l2_exit(EXIT_REASON_CPUID, 0), "fast VMRESUME, exit");
    CHECK(g01(GUEST_TR_BASE) == w12(HOST_TR_BASE) && g01(GUEST_RIP) == w12(HOST_RIP), "the image, unchanged");
    CHECK(l1_vmwrite(HOST_TR_BASE, 0xffff880000123000ull) == O_SUCCEED &&
              l1_vmwrite(HOST_RIP, 0xffffffff81abc000ull) == O_SUCCEED && l1_vmwrite(HOST_SS_SELECTOR, 0) == O_SUCCEED &&
              l1_vmwrite(HOST_IA32_SYSENTER_EIP, 0xffffffff81def000ull) == O_SUCCEED &&
              l1_vmwrite(HOST_CR4, w12(HOST_CR4) | (1ull << 7)) == O_SUCCEED,
          "L1's VMWRITEs of host fields");
    enter();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected after the full entry");
    CHECK(g01(GUEST_TR_BASE) == 0xffff880000123000ull && g01(GUEST_RIP) == 0xffffffff81abc000ull &&
              g01(GUEST_SYSENTER_EIP) == 0xffffffff81def000ull,
          "new TR base %#llx, RIP %#llx, SYSENTER_EIP %#llx", ULL(g01(GUEST_TR_BASE)), ULL(g01(GUEST_RIP)),
          ULL(g01(GUEST_SYSENTER_EIP)));
    CHECK(g01(GUEST_SS_SELECTOR) == 0 && g01(GUEST_SS_AR_BYTES) == 0x10000, "null SS: unusable (AR %#llx)",
          ULL(g01(GUEST_SS_AR_BYTES)));
    CHECK(g01(CR4_READ_SHADOW) == w12(HOST_CR4) && (g01(GUEST_CR4) & (1ull << 7)), "CR4 %#llx, shadow %#llx",
          ULL(g01(GUEST_CR4)), ULL(g01(CR4_READ_SHADOW)));
}

/* HOST_RSP, HOST_CR3 and FS/GS are shadowed: L1 changes them without an exit, and the fast
 * VMRESUME that follows makes no image. The exit after it still loads L1's new values. */
static void test_host_shadowed(void)
{
    nh_setup(true);
    l1_ready(PG_VMCS_A);
    enter();
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected: the image is made");
    fake_vmcs_set_in(ns.shadow_pa, HOST_RSP, 0xffffc90000456ff0ull); /* L1's VMWRITEs, no exit */
    fake_vmcs_set_in(ns.shadow_pa, HOST_CR3, 0x4567000);
    fake_vmcs_set_in(ns.shadow_pa, HOST_FS_SELECTOR, 0x30);
    fake_vmcs_set_in(ns.shadow_pa, HOST_FS_BASE, 0x7f0000001000ull);
    fake_vmcs_set_in(ns.shadow_pa, HOST_GS_BASE, 0xffff88807fc00000ull);
    uint64_t fast0 = ns.fast_entries;
    enter();
    CHECK(ns.fast_entries == fast0 + 1, "fast VMRESUME after host-state writes in the shadow");
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "reflected");
    CHECK(g01(GUEST_RSP) == 0xffffc90000456ff0ull && g01(GUEST_CR3) == 0x4567000, "RSP %#llx, CR3 %#llx",
          ULL(g01(GUEST_RSP)), ULL(g01(GUEST_CR3)));
    CHECK(g01(GUEST_FS_SELECTOR) == 0x30 && g01(GUEST_FS_AR_BYTES) == 0xc093 && g01(GUEST_FS_BASE) == 0x7f0000001000ull,
          "FS %#llx, AR %#llx, base %#llx", ULL(g01(GUEST_FS_SELECTOR)), ULL(g01(GUEST_FS_AR_BYTES)),
          ULL(g01(GUEST_FS_BASE)));
    CHECK(g01(GUEST_GS_BASE) == 0xffff88807fc00000ull && g01(GUEST_GS_AR_BYTES) == 0x10000, "GS base %#llx, AR %#llx",
          ULL(g01(GUEST_GS_BASE)), ULL(g01(GUEST_GS_AR_BYTES)));
}

/* L1 ready, its vmcs12 with EPT on an empty EPT12. */
static void setup_ept12(void)
{
    nh_setup(false);
    nh_l1_ept();
    l1_ready(PG_VMCS_A);
    memset(gpa_ptr(GPA(PG_FREE)), 0, 4096); /* an empty EPT12 */
    vmcs12_set(V12, SECONDARY_VM_EXEC_CONTROL, w12(SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT);
    vmcs12_set_eptp(V12, GPA(PG_FREE) | 0x1e);
}

/* With L1's EPT the CPU saves L2's PDPTEs only when L2 uses PAE paging (SDM 28.3.4; bare Bochs
 * likewise): a 64-bit L2's exit leaves vmcs12's fields as L1 wrote them. */
static void test_pdptes_saved(void)
{
    setup_ept12();
    for (unsigned i = 0; i < 4; i++)
        vmcs12_set(V12, GUEST_PDPTR0 + 2 * i, 0x1000 * (i + 1) | 1);
    enter();
    CHECK(ns.ept12, "L2 on L1's EPT");
    for (unsigned i = 0; i < 4; i++)
        fake_vmcs_set(GUEST_PDPTR0 + 2 * i, 0xdead000); /* whatever vmcs02 holds: the CPU did not store it */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "64-bit L2's exit reflected");
    for (unsigned i = 0; i < 4; i++)
        CHECK(w12(GUEST_PDPTR0 + 2 * i) == (0x1000 * (i + 1) | 1), "PDPTE%u %#llx: L1's, not saved", i,
              ULL(w12(GUEST_PDPTR0 + 2 * i)));
    /* L2 with PAE paging at the exit: saved */
    enter();
    fake_vmcs_set(VM_ENTRY_CONTROLS, fake_vmcs_get(VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE);
    fake_vmcs_set(GUEST_CR0, fake_vmcs_get(GUEST_CR0) | CR0_PG);
    fake_vmcs_set(GUEST_CR4, fake_vmcs_get(GUEST_CR4) | CR4_PAE);
    for (unsigned i = 0; i < 4; i++)
        fake_vmcs_set(GUEST_PDPTR0 + 2 * i, 0x7000 * (i + 1) | 1);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "PAE L2's exit reflected");
    for (unsigned i = 0; i < 4; i++)
        CHECK(w12(GUEST_PDPTR0 + 2 * i) == (0x7000 * (i + 1) | 1), "PDPTE%u %#llx: saved", i,
              ULL(w12(GUEST_PDPTR0 + 2 * i)));
}

/* SDM 28.2.1-28.2.3, 28.2.5: the guest-linear and guest-physical addresses, the instruction
 * information and the error codes are written only at the exits that define them; the CPU
 * (bare Bochs) leaves them as they were at the others. vmcs02 also holds the exit information
 * of the exits hv handles and hides from L1: a later reflected exit shows L1 none of it. */
static void set02_info(uint64_t base)
{
    fake_vmcs_set(GUEST_LINEAR_ADDRESS, base + 1);
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, base + 2);
    fake_vmcs_set(VMX_INSTRUCTION_INFO, (uint32_t)base + 3);
    fake_vmcs_set(VM_EXIT_INTR_ERROR_CODE, (uint32_t)base + 4);
    fake_vmcs_set(IDT_VECTORING_ERROR_CODE, (uint32_t)base + 5);
    fake_vmcs_set(VM_EXIT_INTR_INFO, 0); /* what the CPU writes at the exits below but an exception's */
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, 0);
}
#define INFO12(gla, gpa, insn, err, idt)                                                           \
    (w12(GUEST_LINEAR_ADDRESS) == (gla) && w12(GUEST_PHYSICAL_ADDRESS) == (gpa) &&                 \
     w12(VMX_INSTRUCTION_INFO) == (insn) && w12(VM_EXIT_INTR_ERROR_CODE) == (err) &&               \
     w12(IDT_VECTORING_ERROR_CODE) == (idt))
#define SHOW12 ULL(w12(GUEST_LINEAR_ADDRESS)), ULL(w12(GUEST_PHYSICAL_ADDRESS)), ULL(w12(VMX_INSTRUCTION_INFO)), \
               ULL(w12(VM_EXIT_INTR_ERROR_CODE)), ULL(w12(IDT_VECTORING_ERROR_CODE))
static void test_exit_info_defined(void)
{
    setup_ept12();
    const uint32_t l1_info[] = {GUEST_LINEAR_ADDRESS, GUEST_PHYSICAL_ADDRESS, VMX_INSTRUCTION_INFO,
                                VM_EXIT_INTR_ERROR_CODE, IDT_VECTORING_ERROR_CODE};
    for (unsigned i = 0; i < N(l1_info); i++) /* what L1's earlier exits left */
        vmcs12_set(V12, l1_info[i], 0x100 + i + 1);
    enter();
    CHECK(ns.ept12, "L2 on L1's EPT");
    /* an OUTS to a port L1 does not intercept: hv's; vmcs02 keeps its GLA and instruction
     * information, and what other hidden exits left (an EPT02 fill's guest-physical address) */
    set02_info(0xd000);
    CHECK(!l2_exit(EXIT_REASON_IO_INSTRUCTION, io_qual(0x60, 1) | 1u << 4) && ns.guest_mode, "OUTS: hv's");
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 2);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && !ns.guest_mode, "CPUID exit reflected");
    CHECK(INFO12(0x101, 0x102, 0x103, 0x104, 0x105), "CPUID exit: GLA %#llx GPA %#llx insn %#llx err %#llx/%#llx: L1's",
          SHOW12);
    CHECK(w12(VM_EXIT_REASON) == EXIT_REASON_CPUID && w12(VM_EXIT_INSTRUCTION_LEN) == 2 &&
              w12(VM_EXIT_INTR_INFO) == 0 && w12(IDT_VECTORING_INFO_FIELD) == 0,
          "the fields written at every exit are taken");
    /* the exits that define them take them */
    bit(GPA(PG_IO_A), 0x60, true);
    const struct { uint32_t reason; uint64_t qual; uint32_t intr, idt; bool gla, gpa, insn, err, idt_err; const char *what; } c[] = {
        {EXIT_REASON_IO_INSTRUCTION, io_qual(0x60, 1) | 1u << 4, 0, 0, true, false, true, false, false, "OUTS"},
        {EXIT_REASON_IO_INSTRUCTION, io_qual(0x60, 1), 0, 0, false, false, false, false, false, "OUT"},
        {EXIT_REASON_CR_ACCESS, 3u << 4 | 1u << 6 | 1u << 16, 0, 0, true, false, false, false, false, "LMSW m16"},
        {EXIT_REASON_CR_ACCESS, 3u << 4 | 1u << 16, 0, 0, false, false, false, false, false, "LMSW r16"},
        {EXIT_REASON_INVEPT, 0, 0, 0, false, false, true, false, false, "INVEPT"},
        {EXIT_REASON_EXCEPTION_NMI, 0, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | 13,
         INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | 14, false, false, false, true, true,
         "#GP in the delivery of a #PF"},
        {EXIT_REASON_EPT_VIOLATION, 0x181, 0, 0, true, true, false, false, false, "EPT violation (EPT12)"},
    };
    for (unsigned i = 0; i < N(c); i++) {
        uint64_t base = 0x1000 * (i + 1), old[N(l1_info)];
        enter();
        for (unsigned j = 0; j < N(l1_info); j++)
            old[j] = w12(l1_info[j]);
        set02_info(base);
        fake_vmcs_set(VM_EXIT_INTR_INFO, c[i].intr);
        fake_vmcs_set(IDT_VECTORING_INFO_FIELD, c[i].idt);
        CHECK(l2_exit(c[i].reason, c[i].qual) && !ns.guest_mode, "%s reflected", c[i].what);
        CHECK(INFO12(c[i].gla ? base + 1 : old[0], c[i].gpa ? base + 2 : old[1], c[i].insn ? base + 3 : old[2],
                     c[i].err ? base + 4 : old[3], c[i].idt_err ? base + 5 : old[4]),
              "%s: GLA %#llx GPA %#llx insn %#llx err %#llx/%#llx", c[i].what, SHOW12);
    }
}

int main(void)
{
    test_reflect_saves();
    test_lazy_sync();
    test_host_state();
    test_host_cr0();
    test_host_img_rebuilt();
    test_host_shadowed();
    test_pdptes_saved();
    test_exit_info_defined();
    test_msr_lists();
    test_msr_store_emulated();
    test_msr_load_fs_base();
    test_msr_exits();
    test_io_exits();
    test_cr_exits();
    test_other_exits();
    test_nmi_blocking();
    test_perf_global();
    test_init_exit();
    return test_summary();
}
