/*
 * The harness shared by the nested/ host tests: what hv provides to nested/ (exception
 * injection recorded, L1's RAM, page allocation, MSR accesses), a vCPU on the per-pointer
 * fake VMCS (vmcs01, vmcs02, the shadow VMCS each their own), and L1 executing VMX
 * instructions through the real exit path of nested/ (cache reset, emulation, flush).
 *
 * L1's RAM is mapped at GPA_BASE: nested/ dereferences guest-physical addresses as hv's
 * identity host map allows, and here they are host addresses of the same value.
 */
#include "nested_harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "lib/x86.h"
#include "tests/unit/vmcs12_samples.h"
#include "vmx/vmx_bits.h"

struct vmx_msrs hw; /* bochs_skylake_x from the first nh_setup on; tests may change it */
struct nested_caps caps;
struct regcache rc;
struct nested_state ns;
struct nested_vcpu nv;
bool launch_pending;
uint64_t vmcs01_pa;
uint8_t *vmread_bm, *vmwrite_bm;
struct injected inj;
uint64_t ram_hole;
static uint8_t hv_msr_bm[4096];

/* ---- what hv provides (nested/nested.h) ---- */

void hv_inject_exception(struct regcache *r, uint8_t vector, bool has_error, uint32_t error)
{
    inj.count++;
    inj.vector = vector;
    inj.has_error = has_error;
    inj.error = error;
}

void hv_inject_page_fault(struct regcache *r, uint64_t cr2, uint32_t error)
{
    hv_inject_exception(r, 14, true, error);
    inj.cr2 = cr2;
}

bool hv_gpa_is_ram(uint64_t gpa, uint64_t len)
{
    if (gpa < GPA_BASE || len > 4096ull * GPA_PAGES || gpa - GPA_BASE > 4096ull * GPA_PAGES - len)
        return false;
    return !ram_hole || gpa + len <= ram_hole || gpa >= ram_hole + 4096;
}

static void *pages[512];
static unsigned npages;
void *hv_alloc_page(void)
{
    if (npages == sizeof(pages) / sizeof(pages[0]))
        return NULL;
    void *p = aligned_alloc(4096, 4096);
    if (p)
        memset(p, 0, 4096);
    return pages[npages++] = p;
}

struct fake_msr fmsr[FAKE_MSRS];
struct fake_msr *fake_msr(uint32_t msr)
{
    for (int i = 0; i < FAKE_MSRS; i++)
        if (fmsr[i].msr == msr)
            return &fmsr[i];
    return NULL;
}
int hv_rdmsr(uint32_t msr, uint64_t *val)
{
    struct fake_msr *m = fake_msr(msr);
    if (!m)
        return -1;
    *val = m->val;
    return 0;
}
int hv_wrmsr(uint32_t msr, uint64_t val)
{
    struct fake_msr *m = fake_msr(msr);
    if (!m || m->read_only)
        return -1;
    m->val = val;
    m->writes++;
    return 0;
}

/* ---- the vCPU ---- */

static void map_ram(void)
{
    static bool mapped;
    if (mapped)
        return;
    void *p = mmap((void *)(uintptr_t)GPA_BASE, 4096ull * GPA_PAGES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)GPA_BASE) {
        perror("nested_harness: mmap of L1's RAM at GPA_BASE");
        exit(2);
    }
    mapped = true;
}

void nh_reset_ram(void)
{
    map_ram();
    memset(gpa_ptr(GPA_BASE), 0, 4096ull * GPA_PAGES);
    gpa_u64(GPA(PG_PML4))[0] = GPA(PG_PDPT) | 3;
    gpa_u64(GPA(PG_PDPT))[0] = 0 | 0x83; /* 1 GiB page at 0: P, W, PS */
    ram_hole = 0;
}

static const uint32_t host_fields[NESTED_NR_HOST_FIELDS] = {
    HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR, HOST_GS_SELECTOR,
    HOST_TR_SELECTOR, HOST_IA32_PAT, HOST_IA32_EFER, HOST_IA32_SYSENTER_CS, HOST_CR0, HOST_CR3, HOST_CR4,
    HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE, HOST_IA32_SYSENTER_ESP,
    HOST_IA32_SYSENTER_EIP, HOST_RSP, HOST_RIP,
};

static int identity_l1_page(uint64_t gpa, uint64_t *host, uint64_t *max)
{
    *host = gpa;
    *max = 7;
    return 0;
}
static void no_flush(void) {}
void nh_l1_ept(void)
{
    nv.l1_page = identity_l1_page;
    nv.flush_ept = no_flush;
}

void nh_setup(bool with_shadow)
{
    for (unsigned i = 0; i < npages; i++)
        free(pages[i]); /* the previous vCPU's */
    npages = 0;
    nh_reset_ram();
    fake_vmcs_reset();
    regcache_warn_reset();
    test_log_clear();
    memset(&inj, 0, sizeof(inj));
    static bool hw_set;
    if (!hw_set)
        hw = bochs_skylake_x, hw_set = true;
    nested_caps_init(&caps, &hw);
    regcache_init(&rc, true);
    memset(&ns, 0, sizeof(ns));
    launch_pending = false;
    fmsr[0] = (struct fake_msr){MSR_IA32_KERNEL_GS_BASE, 0x1111, 0, false};
    fmsr[1] = (struct fake_msr){MSR_IA32_STAR, 0x2222, 0, false};
    fmsr[2] = (struct fake_msr){MSR_IA32_LSTAR, 0x3333, 0, false};
    fmsr[3] = (struct fake_msr){0x10 /* TSC */, 0x4444, 0, false};
    fmsr[4] = (struct fake_msr){MSR_IA32_FEATURE_CONTROL, 5, 0, true}; /* as hv/exit_msr.c emulates them */
    fmsr[5] = (struct fake_msr){MSR_IA32_VMX_BASIC, caps.basic, 0, true};
    fmsr[6] = (struct fake_msr){MSR_IA32_PERF_GLOBAL_CTRL, 0x1, 0, false};

    vmcs01_pa = (uint64_t)(uintptr_t)hv_alloc_page();
    vmptrld(vmcs01_pa);
    for (int i = 0; i < NESTED_NR_HOST_FIELDS; i++)
        fake_vmcs_set(host_fields[i], HOST01(i));
    uint64_t cr0_mask = (hw.cr0_fixed0 | ~hw.cr0_fixed1) & ~(CR0_PE | CR0_PG) & 0xffffffffull; /* as vmcs01.c */
    uint64_t cr4_mask = (hw.cr4_fixed0 | ~hw.cr4_fixed1) & 0xffffffffull;
    fake_vmcs_set(CR0_GUEST_HOST_MASK, cr0_mask);
    fake_vmcs_set(CR4_GUEST_HOST_MASK, cr4_mask);
    fake_vmcs_set(GUEST_CR0, L1_CR0);
    fake_vmcs_set(CR0_READ_SHADOW, L1_CR0);
    fake_vmcs_set(GUEST_CR4, L1_CR4);
    fake_vmcs_set(CR4_READ_SHADOW, L1_CR4);
    fake_vmcs_set(GUEST_CR3, GPA(PG_PML4));
    fake_vmcs_set(GUEST_IA32_EFER, L1_EFER);
    fake_vmcs_set(GUEST_CS_AR_BYTES, CS64_AR);
    fake_vmcs_set(GUEST_SS_AR_BYTES, DATA_AR_DPL(0));
    fake_vmcs_set(GUEST_IA32_PAT, 0x0007040600070406ull);
    fake_vmcs_set(GUEST_DR7, 0x400);
    fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11fb | VM_ENTRY_IA32E_MODE | VM_ENTRY_LOAD_EFER | VM_ENTRY_LOAD_PAT);
    fake_vmcs_set(VMCS_LINK_POINTER, ~0ull);
    fake_vmcs_set(SECONDARY_VM_EXEC_CONTROL, SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST);

    if (with_shadow && !vmread_bm) {
        vmread_bm = aligned_alloc(4096, 4096);
        vmwrite_bm = aligned_alloc(4096, 4096);
    }
    if (with_shadow)
        nested_shadow_bitmaps(vmread_bm, vmwrite_bm, hw.misc & (1ull << 29), nested_vmcs12_features(&caps));
    nv = (struct nested_vcpu){
        .rc = &rc, .n = &ns, .caps = &caps, .hw = &hw, .phys_bits = 39, .cr0_mask = cr0_mask,
        .cr4_mask = cr4_mask, .msr_bitmap01 = hv_msr_bm,
        .eptp = 0x5550000ull | 0x1e, .launch_pending = &launch_pending, .shadow_ok = with_shadow,
        .shadow_exit_info = with_shadow && (hw.misc & (1ull << 29)),
        .vmread_bitmap = (uint64_t)(uintptr_t)vmread_bm, .vmwrite_bitmap = (uint64_t)(uintptr_t)vmwrite_bm,
    };
    ns.vmcs01_pa = vmcs01_pa;
    if (nested_vcpu_init(&nv)) {
        fprintf(stderr, "nested_harness: nested_vcpu_init failed\n");
        exit(2);
    }
    memset(hv_msr_bm, 0, sizeof(hv_msr_bm));
}

/* ---- L1's instructions ---- */

const char *outcome_name(enum outcome o)
{
    static const char *names[] = {"VMsucceed", "VMfailInvalid", "VMfailValid", "#UD", "#GP", "#SS", "#PF",
                                  "entered L2", "VM-entry failure", "inconsistent"};
    return (unsigned)o <= O_BAD ? names[o] : "?";
}

static enum outcome outcome(void)
{
    if (ns.guest_mode)
        return fake_vmcs_current() == ns.vmcs02_pa && !inj.count ? O_ENTERED : O_BAD;
    if (fake_vmcs_current() != vmcs01_pa) {
        fprintf(stderr, "outcome: vmcs01 is not current\n");
        return O_BAD;
    }
    uint64_t rip = fake_vmcs_get(GUEST_RIP), rflags = fake_vmcs_get(GUEST_RFLAGS);
    if (inj.count) {
        if (inj.count != 1 || rip != RIP0 || rflags != RFLAGS0) {
            fprintf(stderr, "outcome: %d exceptions, rip %#llx, rflags %#llx\n", inj.count, ULL(rip), ULL(rflags));
            return O_BAD;
        }
        switch (inj.vector) {
        case 6: return inj.has_error ? O_BAD : O_UD;
        case 12: return inj.has_error && !inj.error ? O_SS : O_BAD;
        case 13: return inj.has_error && !inj.error ? O_GP : O_BAD;
        case 14: return inj.has_error ? O_PF : O_BAD;
        default: return O_BAD;
        }
    }
    if (rip == vmcs12_get(ns.cache, HOST_RIP) && rip != RIP0 + ILEN &&
        (vmcs12_get(ns.cache, VM_EXIT_REASON) & VMX_EXIT_REASON_ENTRY_FAIL))
        return rflags == 2 ? O_ENTRY_FAILED : O_BAD;
    /* VMsucceed, VMfailInvalid, VMfailValid (SDM 31.2): the six arithmetic flags are all
     * cleared but CF or ZF; nothing else in RFLAGS changes. */
    uint64_t keep = RFLAGS0 & ~0x8d5ull;
    if (rip != RIP0 + ILEN || (rflags & ~0x41ull) != keep) {
        fprintf(stderr, "outcome: rip %#llx, rflags %#llx\n", ULL(rip), ULL(rflags));
        return O_BAD;
    }
    switch (rflags & 0x41) {
    case 0: return O_SUCCEED;
    case 1: return O_FAIL_INVALID;
    case 0x40: return O_FAIL_VALID;
    default: return O_BAD;
    }
}

enum outcome l1_insn(uint32_t reason, uint32_t info, uint64_t qual)
{
    if (fake_vmcs_current() != vmcs01_pa) {
        fprintf(stderr, "l1_insn: vmcs01 is not current\n");
        return O_BAD;
    }
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(VMX_INSTRUCTION_INFO, info);
    fake_vmcs_set(EXIT_QUALIFICATION, qual);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, ILEN);
    fake_vmcs_set(GUEST_RIP, RIP0);
    fake_vmcs_set(GUEST_RFLAGS, RFLAGS0);
    memset(&inj, 0, sizeof(inj));
    regcache_reset(&rc);
    nested_handle_vmx_insn(&nv, reason);
    regcache_flush(&rc);
    return outcome();
}

uint32_t l1_error(void) { return (uint32_t)vmcs12_get(ns.cache, VM_INSTRUCTION_ERROR); }

static enum outcome ptr_insn(uint32_t reason, uint64_t ptr)
{
    *gpa_u64(GPA(PG_SCRATCH)) = ptr;
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH);
    return l1_insn(reason, II_MEM_RAX, 0);
}

enum outcome l1_vmxon(uint64_t pa) { return ptr_insn(EXIT_REASON_VMXON, pa); }
enum outcome l1_vmclear(uint64_t pa) { return ptr_insn(EXIT_REASON_VMCLEAR, pa); }
enum outcome l1_vmptrld(uint64_t pa) { return ptr_insn(EXIT_REASON_VMPTRLD, pa); }
enum outcome l1_vmxoff(void) { return l1_insn(EXIT_REASON_VMXOFF, 0, 0); }
enum outcome l1_vmlaunch(void) { return l1_insn(EXIT_REASON_VMLAUNCH, 0, 0); }
enum outcome l1_vmresume(void) { return l1_insn(EXIT_REASON_VMRESUME, 0, 0); }

enum outcome l1_vmptrst(uint64_t *pa)
{
    *gpa_u64(GPA(PG_SCRATCH) + 8) = 0x5a5a5a5a5a5a5a5aull;
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 8;
    enum outcome o = l1_insn(EXIT_REASON_VMPTRST, II_MEM_RAX, 0);
    *pa = *gpa_u64(GPA(PG_SCRATCH) + 8);
    return o;
}

/* VMREAD rdx, rcx / VMWRITE rcx, rdx (field in RCX, value in RDX) */
enum outcome l1_vmread(uint64_t field, uint64_t *val)
{
    rc.regs[HV_REG_RCX] = field;
    rc.regs[HV_REG_RDX] = 0x5a5a5a5a5a5a5a5aull;
    enum outcome o = l1_insn(EXIT_REASON_VMREAD, II_REGFORM | II_REG1(HV_REG_RDX) | II_REG2(HV_REG_RCX), 0);
    *val = rc.regs[HV_REG_RDX];
    return o;
}

enum outcome l1_vmwrite(uint64_t field, uint64_t val)
{
    rc.regs[HV_REG_RCX] = field;
    rc.regs[HV_REG_RDX] = val;
    return l1_insn(EXIT_REASON_VMWRITE, II_REGFORM | II_REG1(HV_REG_RDX) | II_REG2(HV_REG_RCX), 0);
}

static enum outcome inv_insn(uint32_t reason, uint64_t type, uint64_t lo, uint64_t hi)
{
    gpa_u64(GPA(PG_SCRATCH) + 16)[0] = lo;
    gpa_u64(GPA(PG_SCRATCH) + 16)[1] = hi;
    rc.regs[HV_REG_RAX] = GPA(PG_SCRATCH) + 16;
    rc.regs[HV_REG_RBX] = type;
    return l1_insn(reason, II_MEM_RAX | II_REG2(HV_REG_RBX), 0);
}
enum outcome l1_invept(uint64_t type, uint64_t eptp) { return inv_insn(EXIT_REASON_INVEPT, type, eptp, 0); }
enum outcome l1_invvpid(uint64_t type, uint64_t lo, uint64_t hi) { return inv_insn(EXIT_REASON_INVVPID, type, lo, hi); }

void nh_valid_vmcs12(struct vmcs12 *v)
{
    valid64(v);
    vmcs12_set(v, HOST_CR3, GPA(PG_PML4)); /* L1 keeps its page tables across L2's runs */
    vmcs12_set(v, IO_BITMAP_A, GPA(PG_IO_A));
    vmcs12_set(v, IO_BITMAP_B, GPA(PG_IO_B));
    vmcs12_set(v, MSR_BITMAP, GPA(PG_MSR_BM));
    vmcs12_set(v, VM_ENTRY_MSR_LOAD_ADDR, GPA(PG_MSR_LISTS));
    vmcs12_set(v, VM_EXIT_MSR_STORE_ADDR, GPA(PG_MSR_LISTS) + 0x400);
    vmcs12_set(v, VM_EXIT_MSR_LOAD_ADDR, GPA(PG_MSR_LISTS) + 0x800);
    vmcs12_set(v, VM_ENTRY_MSR_LOAD_COUNT, 0);
    vmcs12_set(v, VM_EXIT_MSR_STORE_COUNT, 0);
    vmcs12_set(v, VM_EXIT_MSR_LOAD_COUNT, 0);
}

void l1_ready(unsigned pg)
{
    *(uint32_t *)gpa_ptr(GPA(PG_VMXON)) = VMCS12_REVISION;
    if (!ns.vmxon)
        CHECK(l1_vmxon(GPA(PG_VMXON)) == O_SUCCEED, "l1_ready: VMXON");
    nh_valid_vmcs12(gpa_ptr(GPA(pg)));
    CHECK(l1_vmptrld(GPA(pg)) == O_SUCCEED, "l1_ready: VMPTRLD");
}

bool l2_exit(uint32_t reason, uint64_t qual)
{
    if (fake_vmcs_current() != ns.vmcs02_pa || !ns.guest_mode) {
        fprintf(stderr, "l2_exit: L2 is not running on vmcs02\n");
        return false;
    }
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(EXIT_QUALIFICATION, qual);
    memset(&inj, 0, sizeof(inj));
    launch_pending = false;
    regcache_reset(&rc);
    if (!(reason & VMX_EXIT_REASON_ENTRY_FAIL)) /* as hv/exit.c: vmcs02 ran */
        nested_vmcs02_accepted(&ns);
    bool taken = nested_l2_exit(&nv, reason);
    regcache_flush(&rc);
    return taken;
}
