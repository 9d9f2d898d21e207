/*
 * Host tests for hv/exit_cr.c (MOV to CR0/CR4 of the bits hv owns) and hv/exit_init.c
 * (INIT and SIPI), on the fake VMCS of tests/unit/exits_harness.c.
 */
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <unistd.h>
#include "hv/apic.h"
#include "exits_harness.h"
#include "lib/x86.h"
#include "vmx/vmx_bits.h"

/* ---- MOV to CR0 / CR4 ------------------------------------------------------- */

/* MOV CRn, GPR: exit qualification bits 3:0 CR, 5:4 type 0, 11:8 GPR (SDM Table 28-3). */
static void cr_exit(unsigned cr, enum hv_reg gpr, uint64_t val)
{
    setup(EXIT_REASON_CR_ACCESS);
    fake_vmcs_set(EXIT_QUALIFICATION, cr | ((uint64_t)gpr << 8));
    if (gpr == HV_REG_RSP)
        fake_vmcs_set(GUEST_RSP, val);
    else
        v.rc.regs[gpr] = val;
}

/* Protected mode without paging: shadow and real CR0. */
static void guest_cr0(uint64_t shadow, uint64_t real, uint64_t efer, uint64_t cr4)
{
    fake_vmcs_set(CR0_READ_SHADOW, shadow);
    fake_vmcs_set(GUEST_CR0, real);
    fake_vmcs_set(GUEST_IA32_EFER, efer);
    fake_vmcs_set(GUEST_CR4, cr4);
    fake_vmcs_set(CR4_READ_SHADOW, cr4 & ~CR4_VMXE);
    if (efer & EFER_LMA)
        fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11ff | VM_ENTRY_IA32E_MODE);
}

static void check_cr0_unchanged(const char *test, uint64_t shadow, uint64_t real)
{
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == shadow && fake_vmcs_get(GUEST_CR0) == real,
          "%s: shadow %#llx real %#llx changed", test, ULL(fake_vmcs_get(CR0_READ_SHADOW)),
          ULL(fake_vmcs_get(GUEST_CR0)));
}

static void test_cr0_invalid(void)
{
    cr_exit(0, HV_REG_RAX, CR0_PG | 0x30); /* PG without PE */
    guest_cr0(0x11, 0x31, 0, 0x2000);
    run_ok("cr0 PG without PE");
    check_gp("cr0 PG without PE");
    check_cr0_unchanged("cr0 PG without PE", 0x11, 0x31);

    cr_exit(0, HV_REG_RBX, CR0_NW | 0x31); /* NW without CD */
    guest_cr0(0x11, 0x31, 0, 0x2000);
    run_ok("cr0 NW without CD");
    check_gp("cr0 NW without CD");
    check_cr0_unchanged("cr0 NW without CD", 0x11, 0x31);

    /* In long mode all 64 bits count: bits 63:32 must be 0. */
    cr_exit(0, HV_REG_R13, (1ull << 32) | 0x80000011);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, 0x2020);
    run_ok("cr0 high bits in long mode");
    check_gp("cr0 high bits in long mode");
    check_cr0_unchanged("cr0 high bits in long mode", 0x80000031, 0x80000031);
}

static void test_cr0_normal_write(void)
{
    cr_exit(0, HV_REG_RCX, 0x11); /* clear NE: the guest sees 0x11, hardware keeps NE */
    guest_cr0(0x31, 0x31, 0, 0x2000);
    run_ok(__func__);
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x11, "shadow %#llx, want 0x11", ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == (0x11 | CR0_NE), "GUEST_CR0 %#llx, want 0x31", ULL(fake_vmcs_get(GUEST_CR0)));
    CHECK(fake_vmcs_write_count(GUEST_IA32_EFER) == 0 && fake_vmcs_write_count(VM_ENTRY_CONTROLS) == 0,
          "EFER/entry controls written without a PG change");
    check_rip_advanced(__func__);
    check_no_event(__func__);

    /* CD|NW are legal together; the source register can be RSP (from GUEST_RSP). */
    cr_exit(0, HV_REG_RSP, 0x60000011);
    guest_cr0(0x31, 0x31, 0, 0x2000);
    run_ok("cr0 from rsp");
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x60000011, "from RSP: shadow %#llx",
          ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x60000031, "from RSP: GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 from rsp");

    /* Outside long mode the operand is 32 bits: the GPR's upper half is ignored. */
    cr_exit(0, HV_REG_R15, 0xdeadbeef00000011ull);
    guest_cr0(0x31, 0x31, 0, 0x2000);
    run_ok("cr0 32-bit guest");
    check_no_event("cr0 32-bit guest");
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x11, "32-bit: shadow %#llx", ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x31, "32-bit: GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 32-bit guest");
}

static void test_cr0_long_mode(void)
{
    /* Entering IA-32e mode: LME set, CR4.PAE set, MOV CR0 with PG. */
    cr_exit(0, HV_REG_RAX, 0x80000011);
    guest_cr0(0x31, 0x31, EFER_LME, CR4_PAE | CR4_VMXE);
    run_ok("cr0 enter long mode");
    check_no_event("cr0 enter long mode");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == (EFER_LME | EFER_LMA), "EFER %#llx, want LME|LMA",
          ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(fake_vmcs_get(VM_ENTRY_CONTROLS) == (0x11ff | VM_ENTRY_IA32E_MODE), "entry controls %#llx, want %#x",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)), 0x11ff | VM_ENTRY_IA32E_MODE);
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x80000011 && fake_vmcs_get(GUEST_CR0) == 0x80000031,
          "shadow %#llx GUEST_CR0 %#llx", ULL(fake_vmcs_get(CR0_READ_SHADOW)), ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 enter long mode");

    /* PG with LME but without CR4.PAE: #GP, nothing changes. */
    cr_exit(0, HV_REG_RAX, 0x80000011);
    guest_cr0(0x31, 0x31, EFER_LME, CR4_VMXE);
    run_ok("cr0 PG without PAE");
    check_gp("cr0 PG without PAE");
    check_cr0_unchanged("cr0 PG without PAE", 0x31, 0x31);
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == EFER_LME && fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff,
          "after #GP: EFER %#llx entry %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)),
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));

    /* PG without LME: 32-bit paging, no IA-32e mode. */
    cr_exit(0, HV_REG_RAX, 0x80000011);
    guest_cr0(0x31, 0x31, 0, CR4_VMXE);
    run_ok("cr0 PG without LME");
    check_no_event("cr0 PG without LME");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == 0 && fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff,
          "32-bit paging: EFER %#llx entry %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)),
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x80000031, "32-bit paging: GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));

    /* Leaving IA-32e mode (from compatibility mode): clearing PG clears LMA and the entry control. */
    cr_exit(0, HV_REG_RDX, 0x11);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok("cr0 leave long mode");
    check_no_event("cr0 leave long mode");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == EFER_LME, "EFER %#llx, want LME only",
          ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff, "entry controls %#llx, want 0x11ff",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x11 && fake_vmcs_get(GUEST_CR0) == 0x31, "shadow %#llx GUEST_CR0 %#llx",
          ULL(fake_vmcs_get(CR0_READ_SHADOW)), ULL(fake_vmcs_get(GUEST_CR0)));
    check_rip_advanced("cr0 leave long mode");
}

/*
 * hv does not own CR0.PG (cr0_mask excludes PE/PG), so the guest turns paging on
 * and off without exits and CR0_READ_SHADOW.PG goes stale. Example, Linux's
 * 64-bit AP trampoline after INIT (shadow 0x60000010): "mov CR0_STATE & ~PG"
 * exits (NE changes) and leaves shadow.PG = 0, then "mov CR0_STATE" enables
 * paging (and the CPU sets LMA) without an exit. A later exiting write that
 * clears PG must still leave IA-32e mode: the current PG is GUEST_CR0's.
 */
static void test_cr0_pg_from_guest_cr0(void)
{
    cr_exit(0, HV_REG_RAX, 0x11); /* NE differs from the shadow: exits */
    guest_cr0(0x31 /* PG stale */, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok(__func__);
    check_no_event(__func__);
    CHECK(!(fake_vmcs_get(GUEST_IA32_EFER) & EFER_LMA),
          "PG cleared while shadow.PG was stale: EFER %#llx still has LMA (VM entry would fail: "
          "IA-32e mode with CR0.PG=0)",
          ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(!(fake_vmcs_get(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE),
          "PG cleared while shadow.PG was stale: entry controls %#llx still IA-32e mode",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x31, "GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
}

/*
 * With EPT, a VM entry into PAE paging (CR0.PG=1, CR4.PAE=1, EFER.LMA=0) loads the
 * PDPTEs from GUEST_PDPTR0-3 (SDM 26.3.2.4), which the CPU saved at the exit only
 * if PAE paging was already on (else undefined). A MOV to CR0 that enables PAE
 * paging and exits (because NE changes, e.g. i386 Linux's startup_32_smp after
 * INIT) must therefore load the four PDPTEs from guest CR3, as the instruction
 * would (KVM: load_pdptrs). Guest memory is identity-mapped (EPT 1:1), so the
 * test puts the PDPT at a low fixed address.
 */
static void test_cr0_pae_loads_pdptrs(void)
{
    const uint64_t pdpt_pa = 0x10000000;
    const uint64_t pdpte[4] = {0x1001, 0x2001, 0x3001, 0x4001};
    void *page = mmap((void *)(uintptr_t)pdpt_pa, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    bool mapped = page == (void *)(uintptr_t)pdpt_pa;

    if (mapped)
        memcpy(page, pdpte, sizeof(pdpte));
    cr_exit(0, HV_REG_RAX, 0x80000031);
    guest_cr0(0x11, 0x31, 0, CR4_PAE | CR4_VMXE);
    fake_vmcs_set(GUEST_CR3, pdpt_pa);
    for (int i = 0; i < 4; i++)
        fake_vmcs_set(GUEST_PDPTR0 + 2 * i, 0xbad0000000000bad); /* undefined after the exit */
    run_ok(__func__);
    check_no_event(__func__);
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x80000031, "GUEST_CR0 %#llx", ULL(fake_vmcs_get(GUEST_CR0)));
    for (int i = 0; i < 4; i++) {
        uint64_t got = fake_vmcs_get(GUEST_PDPTR0 + 2 * i);
        if (mapped)
            CHECK(got == pdpte[i], "PAE paging enabled by an emulated MOV CR0: GUEST_PDPTR%d %#llx, want PDPTE %#llx",
                  i, ULL(got), ULL(pdpte[i]));
        else
            CHECK(fake_vmcs_write_count(GUEST_PDPTR0 + 2 * i) == 1,
                  "PAE paging enabled by an emulated MOV CR0: GUEST_PDPTR%d not written (%#llx)", i, ULL(got));
    }
    if (page != MAP_FAILED)
        munmap(page, 4096);
}

static void test_cr4(void)
{
    cr_exit(4, HV_REG_RAX, CR4_PAE | CR4_VMXE);
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    run_ok("cr4 VMXE");
    check_gp("cr4 VMXE");
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == CR4_PAE && fake_vmcs_get(GUEST_CR4) == (CR4_PAE | CR4_VMXE),
          "after #GP: shadow %#llx GUEST_CR4 %#llx", ULL(fake_vmcs_get(CR4_READ_SHADOW)),
          ULL(fake_vmcs_get(GUEST_CR4)));

    cr_exit(4, HV_REG_RSI, 0x6f0); /* PSE PAE MCE PGE OSFXSR OSXMMEXCPT */
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    run_ok("cr4 normal");
    check_no_event("cr4 normal");
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == 0x6f0, "shadow %#llx, want 0x6f0", ULL(fake_vmcs_get(CR4_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR4) == (0x6f0 | CR4_VMXE), "GUEST_CR4 %#llx, want 0x26f0",
          ULL(fake_vmcs_get(GUEST_CR4)));
    check_rip_advanced("cr4 normal");

    cr_exit(4, HV_REG_RAX, CR4_PAE | CR4_VMXE);
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    hv.nested = true;
    run_ok("cr4 VMXE nested");
    check_no_event("cr4 VMXE nested");
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == (CR4_PAE | CR4_VMXE), "nested: shadow %#llx",
          ULL(fake_vmcs_get(CR4_READ_SHADOW)));

    cr_exit(4, HV_REG_RAX, CR4_PAE | (1ull << 12)); /* LA57: not in this CPU's CR4_FIXED1 */
    guest_cr0(0x31, 0x31, 0, CR4_PAE | CR4_VMXE);
    run_ok("cr4 unsupported bit");
    check_gp("cr4 unsupported bit");

    cr_exit(4, HV_REG_RAX, 1ull << 32);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok("cr4 high bit");
    check_gp("cr4 high bit");

    cr_exit(4, HV_REG_RAX, 0x690); /* PAE off in long mode */
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    run_ok("cr4 PAE off in long mode");
    check_gp("cr4 PAE off in long mode");
}

/* In VMX operation (L1 after VMXON, or L2) the bits VMX fixes cannot be cleared: the CPU
 * raises #GP (SDM 24.8, A.7, A.8), as hv offers them to L1 (nested/caps.c). */
static struct vmcs12 cr_vmcs12;

static void vmx_operation(bool l2, uint64_t m0, uint64_t m4, uint32_t exc_bitmap)
{
    hv.nested = true;
    hv.ncaps.cr0_fixed0 = 0x80000021; /* PG NE PE */
    hv.ncaps.cr0_fixed1 = 0xffffffff;
    hv.ncaps.cr4_fixed0 = CR4_VMXE;
    hv.ncaps.cr4_fixed1 = 0x3767ff;
    v.nested.vmxon = true;
    v.nested.guest_mode = l2;
    l2_exit_result = false; /* nested_l2_exit: L1 does not want this CR exit */
    memset(&cr_vmcs12, 0, sizeof(cr_vmcs12));
    vmcs12_set(&cr_vmcs12, CR0_GUEST_HOST_MASK, m0);
    vmcs12_set(&cr_vmcs12, CR4_GUEST_HOST_MASK, m4);
    vmcs12_set(&cr_vmcs12, EXCEPTION_BITMAP, exc_bitmap);
    v.nested.cache = &cr_vmcs12;
}

static void test_cr_vmx_operation(void)
{
    /* L1 in VMX root operation clears CR0.NE: #GP (outside VMX operation it may). */
    cr_exit(0, HV_REG_RCX, 0x80000011);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    vmx_operation(false, 0, 0, 0);
    run_ok("L1 after VMXON clears NE");
    check_gp("L1 after VMXON clears NE");
    check_cr0_unchanged("L1 after VMXON clears NE", 0x80000031, 0x80000031);

    /* The same clearing PG too: the #GP changes nothing, not EFER.LMA nor IA-32e mode. */
    cr_exit(0, HV_REG_RCX, 0x11);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    vmx_operation(false, 0, 0, 0);
    run_ok("L1 after VMXON clears NE and PG");
    check_gp("L1 after VMXON clears NE and PG");
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == (EFER_LME | EFER_LMA) && (fake_vmcs_get(VM_ENTRY_CONTROLS) & VM_ENTRY_IA32E_MODE) &&
              fake_vmcs_write_count(GUEST_IA32_EFER) == 0,
          "a faulting MOV to CR0 changed EFER %#llx / entry controls %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)),
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));

    /* L2 clears NE, which L1 does not own: #GP into L2 (L1 does not intercept #GP). */
    cr_exit(0, HV_REG_RCX, 0x80000011);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    vmx_operation(true, 0, 0, 0);
    run_ok("L2 clears NE");
    check_gp("L2 clears NE");
    CHECK(reflect_exception_calls == 0, "L2's #GP went to L1 without L1's exception bitmap asking");

    /* The same with #GP in L1's exception bitmap: an exception VM exit to L1 (SDM 25.2). */
    cr_exit(0, HV_REG_RCX, 0x80000011);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    vmx_operation(true, 0, 0, 1u << 13);
    run_ok("L2 clears NE, L1 intercepts #GP");
    check_no_event("L2 clears NE, L1 intercepts #GP");
    CHECK(reflect_exception_calls == 1 && reflect_exception_vector == 13 && reflect_exception_error == 0,
          "#GP not reflected to L1 (%d calls, vector %u)", reflect_exception_calls, reflect_exception_vector);

    /* L2 clears CR4.VMXE, which L1 does not own: #GP. */
    cr_exit(4, HV_REG_RAX, CR4_PAE);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE);
    vmx_operation(true, 0, 0, 0);
    run_ok("L2 clears VMXE");
    check_gp("L2 clears VMXE");

    /* L2 sets CR0.TS while L1 owns TS (real TS 1, L1's shadow TS 0) and hv owns NE: the
     * write exits for NE only ... here L2 rewrites NE=1 with TS as L1's shadow says (0). The
     * real TS stays 1, as vmcs12 has it: the CPU leaves bits L1 owns alone. */
    cr_exit(0, HV_REG_RCX, 0x80000031);
    guest_cr0(0x80000011, 0x80000039, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE); /* real TS=1 */
    vmx_operation(true, CR0_TS, 0, 0);
    run_ok("L2 CR0 write keeps L1's bits");
    check_no_event("L2 CR0 write keeps L1's bits");
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x80000039, "GUEST_CR0 %#llx, want TS kept: 0x80000039",
          ULL(fake_vmcs_get(GUEST_CR0)));
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x80000031, "shadow %#llx", ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    check_rip_advanced("L2 CR0 write keeps L1's bits");

    /* Same for CR4: L1 owns PGE (real 1), L2's write has PGE as L1's shadow (0). */
    cr_exit(4, HV_REG_RAX, CR4_PAE);
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE | (1ull << 7));
    fake_vmcs_set(CR4_READ_SHADOW, CR4_PAE);
    vmx_operation(true, 0, (1ull << 7), 0);
    /* L2 clears VMXE in its write, but L1 does not own it: still #GP */
    run_ok("L2 CR4 write without VMXE");
    check_gp("L2 CR4 write without VMXE");
    cr_exit(4, HV_REG_RAX, CR4_PAE | CR4_VMXE | (1ull << 9));
    guest_cr0(0x80000031, 0x80000031, EFER_LME | EFER_LMA, CR4_PAE | CR4_VMXE | (1ull << 7));
    vmx_operation(true, 0, (1ull << 7), 0);
    run_ok("L2 CR4 write keeps L1's bits");
    check_no_event("L2 CR4 write keeps L1's bits");
    CHECK(fake_vmcs_get(GUEST_CR4) == (CR4_PAE | CR4_VMXE | (1ull << 9) | (1ull << 7)), "GUEST_CR4 %#llx: PGE lost",
          ULL(fake_vmcs_get(GUEST_CR4)));
    v.nested.guest_mode = v.nested.vmxon = false;
}

static void test_cr_unexpected(void)
{
    setup(EXIT_REASON_CR_ACCESS);
    fake_vmcs_set(EXIT_QUALIFICATION, 3); /* MOV to CR3: hv never enables CR3-load exiting */
    CHECK(run(), "MOV to CR3 exit did not reach platform_reset");
    setup(EXIT_REASON_CR_ACCESS);
    fake_vmcs_set(EXIT_QUALIFICATION, 0 | (1 << 4)); /* MOV from CR0 */
    CHECK(run(), "MOV from CR0 exit did not reach platform_reset");
}

/* ---- INIT / SIPI ------------------------------------------------------------- */

static void check_seg(const char *name, uint32_t sel_f, uint32_t base_f, uint32_t limit_f, uint32_t ar_f,
                      uint64_t sel, uint64_t base, uint64_t limit, uint64_t ar)
{
    CHECK(fake_vmcs_get(sel_f) == sel && fake_vmcs_get(base_f) == base && fake_vmcs_get(limit_f) == limit &&
              fake_vmcs_get(ar_f) == ar,
          "INIT %s: sel %#llx base %#llx limit %#llx ar %#llx, want %#llx %#llx %#llx %#llx", name,
          ULL(fake_vmcs_get(sel_f)), ULL(fake_vmcs_get(base_f)), ULL(fake_vmcs_get(limit_f)),
          ULL(fake_vmcs_get(ar_f)), ULL(sel), ULL(base), ULL(limit), ULL(ar));
}

static void test_init(void)
{
    static const struct {
        const char *name;
        uint32_t sel, base, limit, ar;
    } segs[] = {
        {"ES", GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES},
        {"SS", GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES},
        {"DS", GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES},
        {"FS", GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES},
        {"GS", GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES},
    };
    uint32_t sig = cpuid(1, 0).eax;

    setup(EXIT_REASON_INIT_SIGNAL);
    /* A 64-bit guest in the middle of things. */
    for (int i = 0; i < 16; i++)
        v.rc.regs[i] = 0xdead000000000000ull | (uint64_t)i;
    fake_vmcs_set(GUEST_RSP, 0xffffc90000123450ull);
    fake_vmcs_set(GUEST_RFLAGS, 0x246);
    fake_vmcs_set(CR0_READ_SHADOW, 0x80050033);
    fake_vmcs_set(GUEST_CR0, 0x80050033);
    fake_vmcs_set(CR4_READ_SHADOW, 0x3606f0);
    fake_vmcs_set(GUEST_CR4, 0x3626f0);
    fake_vmcs_set(GUEST_CR3, 0x1234000);
    fake_vmcs_set(GUEST_IA32_EFER, 0xd01);
    fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11ff | VM_ENTRY_IA32E_MODE);
    fake_vmcs_set(GUEST_CS_SELECTOR, 0x10);
    fake_vmcs_set(GUEST_CS_BASE, 0x1000);
    fake_vmcs_set(GUEST_CS_LIMIT, 0xffffffff);
    fake_vmcs_set(GUEST_CS_AR_BYTES, 0xa09b);
    for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        fake_vmcs_set(segs[i].sel, 0x18);
        fake_vmcs_set(segs[i].base, 0x7000);
        fake_vmcs_set(segs[i].limit, 0xfffff);
        fake_vmcs_set(segs[i].ar, 0xc093);
    }
    fake_vmcs_set(GUEST_LDTR_AR_BYTES, 0x10000); /* unusable */
    fake_vmcs_set(GUEST_TR_SELECTOR, 0x40);
    fake_vmcs_set(GUEST_TR_BASE, 0xfffffe0000003000ull);
    fake_vmcs_set(GUEST_TR_LIMIT, 0x4087);
    fake_vmcs_set(GUEST_GDTR_BASE, 0xfffffe0000001000ull);
    fake_vmcs_set(GUEST_GDTR_LIMIT, 0x7f);
    fake_vmcs_set(GUEST_IDTR_BASE, 0xfffffe0000000000ull);
    fake_vmcs_set(GUEST_IDTR_LIMIT, 0xfff);
    fake_vmcs_set(GUEST_DR7, 0x455);
    fake_vmcs_set(GUEST_IA32_DEBUGCTL, 1);
    fake_vmcs_set(GUEST_PENDING_DBG_EXCEPTIONS, 0x4000);
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STI | GUEST_INTR_SMI);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, GP_INFO);
    run_ok(__func__);

    CHECK(fake_vmcs_get(GUEST_RIP) == 0xfff0, "RIP %#llx, want 0xfff0", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(fake_vmcs_get(GUEST_RFLAGS) == 2, "RFLAGS %#llx, want 2", ULL(fake_vmcs_get(GUEST_RFLAGS)));
    CHECK(fake_vmcs_get(GUEST_RSP) == 0, "RSP %#llx, want 0", ULL(fake_vmcs_get(GUEST_RSP)));
    check_seg("CS", GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES, 0xf000, 0xffff0000, 0xffff,
              0x9b);
    for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
        check_seg(segs[i].name, segs[i].sel, segs[i].base, segs[i].limit, segs[i].ar, 0, 0, 0xffff, 0x93);
    check_seg("LDTR", GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES, 0, 0, 0xffff,
              0x82);
    check_seg("TR", GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES, 0, 0, 0xffff, 0x8b);
    CHECK(fake_vmcs_get(CR0_READ_SHADOW) == 0x60000010, "CR0 shadow %#llx, want 0x60000010",
          ULL(fake_vmcs_get(CR0_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR0) == 0x60000030, "GUEST_CR0 %#llx, want 0x60000030 (NE forced)",
          ULL(fake_vmcs_get(GUEST_CR0)));
    CHECK(fake_vmcs_get(CR4_READ_SHADOW) == 0, "CR4 shadow %#llx", ULL(fake_vmcs_get(CR4_READ_SHADOW)));
    CHECK(fake_vmcs_get(GUEST_CR4) == CR4_VMXE, "GUEST_CR4 %#llx, want VMXE only", ULL(fake_vmcs_get(GUEST_CR4)));
    CHECK(fake_vmcs_get(GUEST_CR3) == 0 && fake_vmcs_write_count(GUEST_CR3) == 1, "GUEST_CR3 %#llx (%u writes)",
          ULL(fake_vmcs_get(GUEST_CR3)), fake_vmcs_write_count(GUEST_CR3));
    CHECK(fake_vmcs_get(GUEST_IA32_EFER) == 0, "EFER %#llx", ULL(fake_vmcs_get(GUEST_IA32_EFER)));
    CHECK(fake_vmcs_get(VM_ENTRY_CONTROLS) == 0x11ff, "entry controls %#llx: IA-32e mode not cleared (or others lost)",
          ULL(fake_vmcs_get(VM_ENTRY_CONTROLS)));
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI, "activity %llu, want 3 (wait-for-SIPI)",
          ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)));
    CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == 0, "interruptibility %#llx",
          ULL(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO)));
    CHECK(!(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID), "event still pending: %#llx",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
    CHECK(v.rc.regs[HV_REG_RDX] == sig, "RDX %#llx, want CPUID.1:EAX %#x", ULL(v.rc.regs[HV_REG_RDX]), sig);
    for (int i = 0; i < 16; i++)
        if (i != HV_REG_RDX && i != HV_REG_RSP)
            CHECK(v.rc.regs[i] == 0, "GPR %d = %#llx, want 0", i, ULL(v.rc.regs[i]));
    CHECK(fake_vmcs_get(GUEST_DR7) == 0x400, "DR7 %#llx", ULL(fake_vmcs_get(GUEST_DR7)));
    CHECK(fake_vmcs_get(GUEST_IA32_DEBUGCTL) == 0, "DEBUGCTL %#llx", ULL(fake_vmcs_get(GUEST_IA32_DEBUGCTL)));
    CHECK(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS) == 0, "pending debug %#llx",
          ULL(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS)));
    CHECK(fake_vmcs_get(GUEST_GDTR_BASE) == 0 && fake_vmcs_get(GUEST_GDTR_LIMIT) == 0xffff, "GDTR %#llx/%#llx",
          ULL(fake_vmcs_get(GUEST_GDTR_BASE)), ULL(fake_vmcs_get(GUEST_GDTR_LIMIT)));
    CHECK(fake_vmcs_get(GUEST_IDTR_BASE) == 0 && fake_vmcs_get(GUEST_IDTR_LIMIT) == 0xffff, "IDTR %#llx/%#llx",
          ULL(fake_vmcs_get(GUEST_IDTR_BASE)), ULL(fake_vmcs_get(GUEST_IDTR_LIMIT)));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 1, "GUEST_RIP written %u times", fake_vmcs_write_count(GUEST_RIP));
}

/* A sender that latches its SIPI after 100 ms, longer than hv spins for one (~20 ms). */
static void *late_sipi(void *arg)
{
    (void)arg;
    usleep(100000);
    uint32_t s = __atomic_load_n(&v.sipi, __ATOMIC_ACQUIRE);
    while (!__atomic_compare_exchange_n(&v.sipi, &s, s | APIC_SIPI_VALID | 0x9a, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
        ;
    return NULL;
}

/* A CPU without the wait-for-SIPI activity state (hv under a hypervisor that does not offer it):
 * INIT must not enter that state (the VM entry would fail); the vCPU waits in hv for the SIPI,
 * however late it comes. */
static void test_init_no_wait_for_sipi(void)
{
    setup(EXIT_REASON_INIT_SIGNAL);
    hv.msrs.misc &= ~(1ull << 8);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, late_sipi, NULL) == 0, "sender thread");
    run_ok(__func__);
    pthread_join(t, NULL);
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_ACTIVE && fake_vmcs_get(GUEST_CS_SELECTOR) == 0x9a00 &&
              fake_vmcs_get(GUEST_CS_BASE) == 0x9a000,
          "no wait-for-SIPI state: activity %llu (want 0), CS %#llx base %#llx (want the late SIPI's 0x9a00)",
          ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)), ULL(fake_vmcs_get(GUEST_CS_SELECTOR)),
          ULL(fake_vmcs_get(GUEST_CS_BASE)));
}

static void test_sipi(void)
{
    setup(EXIT_REASON_SIPI_SIGNAL);
    fake_vmcs_set(EXIT_QUALIFICATION, 0x9a);
    fake_vmcs_set(GUEST_RIP, 0xfff0);
    fake_vmcs_set(GUEST_CS_SELECTOR, 0xf000);
    fake_vmcs_set(GUEST_CS_BASE, 0xffff0000);
    fake_vmcs_set(GUEST_CS_LIMIT, 0xffff);
    fake_vmcs_set(GUEST_CS_AR_BYTES, 0x9b);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
    run_ok(__func__);
    check_seg("SIPI CS", GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES, 0x9a00, 0x9a000, 0xffff,
              0x9b);
    CHECK(fake_vmcs_get(GUEST_RIP) == 0, "SIPI: RIP %#llx, want 0", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_ACTIVE, "SIPI: activity %llu, want 0",
          ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)));
    check_no_event(__func__);
}

int main(void)
{
    test_log_capture();
    test_cr0_invalid();
    test_cr0_normal_write();
    test_cr0_long_mode();
    test_cr0_pg_from_guest_cr0();
    test_cr0_pae_loads_pdptrs();
    test_cr4();
    test_cr_vmx_operation();
    test_cr_unexpected();
    test_init();
    test_sipi();
    test_init_no_wait_for_sipi();
    return test_summary();
}
