/* Shared by the nested/ host tests (test_nested_insn.c, test_nested_gva.c, test_nested_vmenter.c,
 * test_nested_vmexit.c, test_nested_shadow.c): see nested_harness.c. */
#ifndef TESTS_NESTED_HARNESS_H
#define TESTS_NESTED_HARNESS_H
#include <stdbool.h>
#include <stdint.h>
#include "nested/nested_int.h"
#include "tests/unit/fake_vmcs.h"
#include "tests/unit/test_util.h"

#define ULL(x) ((unsigned long long)(x))

/* L1's RAM: a host mapping at a fixed low address, so guest-physical address == host address
 * (hv's host map is an identity map) and 32-bit paging structures fit below 4 GiB. */
#define GPA_BASE 0x10000000ull
#define GPA_PAGES 128
#define GPA(page) (GPA_BASE + 4096ull * (page))
static inline void *gpa_ptr(uint64_t gpa) { return (void *)(uintptr_t)gpa; }
static inline uint64_t *gpa_u64(uint64_t gpa) { return (uint64_t *)(uintptr_t)gpa; }
/* Pages of that RAM with a fixed use; tests take theirs from PG_FREE on. */
enum {
    PG_PML4, PG_PDPT,    /* L1's paging: linear == physical for the first GiB */
    PG_SCRATCH,          /* operands of the l1_* helpers */
    PG_VMXON,            /* L1's VMXON region */
    PG_VMCS_A, PG_VMCS_B,/* two vmcs12 regions */
    PG_MSR_LISTS,        /* entry load at 0, exit store at 0x400, exit load at 0x800 */
    PG_IO_A, PG_IO_B, PG_MSR_BM,
    PG_FREE,
};
/* A guest-physical page that is hv's memory, not RAM (0: none). */
extern uint64_t ram_hole;

/* L1's state at each exit the helpers make. */
#define RIP0 0xffffffff81002000ull
#define ILEN 3
#define RFLAGS0 (0x2ull | 0x200 | 0x8d5) /* IF and every arithmetic flag set */
#define L1_CR0 0x80050033ull
#define L1_CR4 0x000026a0ull /* VMXE, PGE, PAE, OSFXSR, OSXMMEXCPT */
#define L1_EFER 0xd01ull
#define CS64_AR 0xa09bu
#define DATA_AR_DPL(d) (0xc093u | ((d) << 5))
#define HOST01(i) (0xabc000ull + (uint64_t)(i)) /* hv's host-state fields, recognisable */

/* The vCPU under test. */
extern struct vmx_msrs hw;
extern struct nested_caps caps;
extern struct regcache rc;
extern struct nested_state ns;
extern struct nested_vcpu nv;
extern bool launch_pending;
extern uint64_t vmcs01_pa;
extern uint8_t *vmread_bm, *vmwrite_bm;

/* What hv_inject_exception / hv_inject_page_fault were asked for since the last reset. */
struct injected {
    int count;
    uint8_t vector;
    bool has_error;
    uint32_t error;
    uint64_t cr2;
};
extern struct injected inj;

/* hv_rdmsr/hv_wrmsr: a few MSRs the fake CPU has, and two hv emulates (read-only: WRMSR #GPs). */
#define FAKE_MSRS 7
struct fake_msr {
    uint32_t msr;
    uint64_t val;
    int writes;
    bool read_only;
};
extern struct fake_msr fmsr[FAKE_MSRS];
struct fake_msr *fake_msr(uint32_t msr);

/* A fresh vCPU: L1 64-bit at CPL 0 with paging, outside VMX operation, vmcs01 current;
 * with_shadow: the CPU has VMCS shadowing and hv uses it. */
void nh_setup(bool with_shadow);
/* L1's EPT usable (EPT02): L1's pages host-identity mapped, any access allowed; INVEPT a no-op. */
void nh_l1_ept(void);
/* L1 memory reads as zeros again, the paging structures above rebuilt. */
void nh_reset_ram(void);

/* VM-exit instruction information (SDM Table 28-13/28-14). */
#define II_SCALE(s) ((uint32_t)(s))
#define II_REG1(r) ((uint32_t)(r) << 3)
#define II_ASIZE(a) ((uint32_t)(a) << 7) /* 0: 16-bit, 1: 32-bit, 2: 64-bit */
#define II_REGFORM (1u << 10)
#define II_SEG(s) ((uint32_t)(s) << 15) /* ES CS SS DS FS GS */
#define II_INDEX(r) ((uint32_t)(r) << 18)
#define II_NO_INDEX (1u << 22)
#define II_BASE(r) ((uint32_t)(r) << 23)
#define II_NO_BASE (1u << 27)
#define II_REG2(r) ((uint32_t)(r) << 28)
/* [rax] with DS, 64-bit addressing */
#define II_MEM_RAX (II_ASIZE(2) | II_SEG(3) | II_NO_INDEX | II_BASE(HV_REG_RAX))

/* The outcome of one L1 instruction as L1 sees it. */
enum outcome {
    O_SUCCEED, O_FAIL_INVALID, O_FAIL_VALID, /* RIP past the instruction */
    O_UD, O_GP, O_SS, O_PF,                  /* an exception, RIP unchanged */
    O_ENTERED,                               /* L2 runs on vmcs02 */
    O_ENTRY_FAILED,                          /* L1 at HOST_RIP with a VM-entry failure */
    O_BAD,                                   /* none of these, consistently (see the log) */
};
const char *outcome_name(enum outcome o);

/* An exit of L1 with this reason and exit information: the VMX instruction emulated, as
 * hv's exit handler does (cache reset, handler, flush). vmcs01 must be current. */
enum outcome l1_insn(uint32_t reason, uint32_t info, uint64_t qual);
/* VM-instruction error L1 reads after VMfailValid. */
uint32_t l1_error(void);
/* The instructions with L1's usual operands ([rax] pointing at a scratch slot). */
enum outcome l1_vmxon(uint64_t pa);
enum outcome l1_vmxoff(void);
enum outcome l1_vmclear(uint64_t pa);
enum outcome l1_vmptrld(uint64_t pa);
enum outcome l1_vmptrst(uint64_t *pa);
enum outcome l1_vmread(uint64_t field, uint64_t *val);  /* register form */
enum outcome l1_vmwrite(uint64_t field, uint64_t val);  /* register form */
enum outcome l1_vmlaunch(void);
enum outcome l1_vmresume(void);
enum outcome l1_invept(uint64_t type, uint64_t eptp);
enum outcome l1_invvpid(uint64_t type, uint64_t desc_lo, uint64_t desc_hi);

/* L1 in VMX operation with a valid vmcs12 (nh_valid_vmcs12) current in region page pg. */
void l1_ready(unsigned pg);
/* A vmcs12 that passes every VM-entry check, its bitmaps and MSR lists in L1's RAM (the
 * lists empty, the bitmaps zero). */
void nh_valid_vmcs12(struct vmcs12 *v);

/* An exit of L2 (vmcs02 current): as hv's exit handler does; true if nested/ took it. */
bool l2_exit(uint32_t reason, uint64_t qual);
#endif
