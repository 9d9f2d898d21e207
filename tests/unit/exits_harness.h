/* Shared by the exit-handler host tests: see exits_harness.c. */
#ifndef TESTS_EXITS_HARNESS_H
#define TESTS_EXITS_HARNESS_H
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include "hv/exit.h"
#include "tests/unit/fake_vmcs.h"
#include "tests/unit/test_util.h"

#define ULL(x) ((unsigned long long)(x))
#define MSR_TEST_KNOWN 0x4b564d00u /* outside the bitmap's ranges: always exits */
#define RIP0 0xffffffff81001000ull
#define ILEN 3
#define AR_CPL(cpl) (0x93u | ((cpl) << 5)) /* SS access rights: DPL is the CPL */
#define GP_INFO 0x80000b0du                /* valid, hardware exception, error code, #GP */
#define UD_INFO 0x80000306u                /* valid, hardware exception, #UD */
#define NMI_INFO 0x80000202u               /* valid, NMI, vector 2 */

/* The entry point the exit stub calls (hv/entry.asm); no header declares it. */
struct vcpu *vmexit_handler(struct vcpu *v);
/* CPUID.1:ECX masks shared with the assembly fast path (hv/exit_cpuid.c, hv/entry.asm). */
extern uint32_t cpuid1_ecx_and, cpuid1_ecx_or;

struct fake_msr {
    uint32_t msr;
    uint64_t val;
    bool ro;
};
extern struct fake_msr msrs[4];
extern struct vcpu v;
extern jmp_buf reset_jmp;
extern bool reset_armed;
extern bool l2_exit_result;
extern int reflect_nmi_calls, reflect_exception_calls;
extern uint32_t reflect_exception_vector, reflect_exception_error;
extern int reset_calls, halt_calls, stop_others_calls, dump_calls, hw_refused_calls, ept_calls, mtf_calls, io_calls, vmx_insn_calls, l2_exit_calls;
extern bool l2_exit_saw_step;
extern bool vmx_insn_enters; /* nested_handle_vmx_insn's VMLAUNCH/VMRESUME enter L2 (guest_mode) */
extern int reflect_init_calls;
extern bool tpr_exit_pending; /* nested_tpr_exit_after_entry's answer */
struct port_op {
    uint16_t port;
    unsigned size;
    bool in;
    uint32_t val;
};
extern struct port_op port_ops[16];
extern unsigned nport_ops;
extern uint32_t port_in_value;
extern int rdmsr_calls, wrmsr_calls, xsetbv_calls;
extern const char *reset_why;
extern uint32_t hw_refused_err, xsetbv_xcr;
extern bool xsetbv_fails;
extern uint64_t xsetbv_val;

void setup(uint32_t reason);          /* a vCPU that has just taken this VM exit */
bool run(void);                       /* vmexit_handler; true if it reached a fatal end (reset or halt) */
void run_ok(const char *test);        /* handled, with the VMREAD/VMWRITE accounting checked */
void check_rip_advanced(const char *test);
void check_rip_unchanged(const char *test);
void check_gp(const char *test);
void check_ud(const char *test);
/* An RDMSR exit of msr, RAX and RDX filled with a pattern the handler must replace. */
void rdmsr_exit(uint32_t msr);
void check_no_event(const char *test);
#endif
