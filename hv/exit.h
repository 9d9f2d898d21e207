/* VM-exit dispatch: one table from basic exit reason to handler (hv/exit.c). */
#ifndef HV_EXIT_H
#define HV_EXIT_H
#include "../vmx/vmcs.h"
#include "vcpu.h"

typedef void (*exit_handler_fn)(struct vcpu *v);
exit_handler_fn exit_handler_for(uint32_t basic_reason); /* NULL: unexpected */
const char *exit_reason_name(uint32_t basic_reason);

/* Counted VMCS access for handlers (the statistics count every VMREAD/VMWRITE). */
static inline uint64_t vm_read(struct vcpu *v, uint32_t f) { v->rc.vmreads++; return vmcs_read(f); }
static inline void vm_write(struct vcpu *v, uint32_t f, uint64_t x) { v->rc.vmwrites++; vmcs_write(f, x); }

/* Event injection on the next VM entry (SDM 26.6). RIP is not advanced. */
void inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error);
static inline void inject_ud(struct vcpu *v) { inject_exception(v, 6, false, 0); }
static inline void inject_gp(struct vcpu *v) { inject_exception(v, 13, true, 0); }
unsigned guest_cpl(struct vcpu *v);

/* An exit hv cannot handle: the fatal report, then hv.cfg's on_fatal= (hv/fatal.c). */
__attribute__((noreturn)) void exit_fatal(struct vcpu *v, const char *why);
void stats_print(struct vcpu *v);
struct vcpu *vmresume_failed(struct vcpu *v);
void stats_print_all(const char *why);

/* Handlers, each with its topic */
void handle_cpuid(struct vcpu *v);
void cpuid_set_nested(bool on); /* CPUID.1:ECX[5] follows hv.nested */
void handle_rdmsr(struct vcpu *v);
int guest_rdmsr(uint32_t msr, uint64_t *val); /* the guest's RDMSR / WRMSR: 0, or -1 for #GP */
int guest_wrmsr(uint32_t msr, uint64_t val);
void handle_wrmsr(struct vcpu *v);
void handle_cr_access(struct vcpu *v);
void handle_xsetbv(struct vcpu *v);
void handle_invd(struct vcpu *v);
void handle_ud(struct vcpu *v);
void handle_vmx_insn(struct vcpu *v);
void handle_vmresume(struct vcpu *v);
int vcpu_nested_init(struct vcpu *v);
void handle_vmcall(struct vcpu *v);
void handle_init(struct vcpu *v);
void handle_sipi(struct vcpu *v);
void init_after_vmxoff(struct vcpu *v); /* an INIT VMXON blocked takes effect now */
void init_after_vmentry(struct vcpu *v); /* L1 entered L2: an INIT VMXON blocked is L1's INIT exit now */
void handle_triple_fault(struct vcpu *v);
void handle_ept_violation(struct vcpu *v);
void handle_mtf(struct vcpu *v);
/* hv/exit_ept.c: the step over a dropped write ends at the next VM exit, whatever it is.
 * hidden_step_exit runs first for every exit: it ends the step (unless the exit is an EPT
 * violation that extends it) and returns true if the exit was the step's own MTF exit,
 * with nothing left to do. hidden_step_end: the same, without an exit (VM entry failed). */
bool hidden_step_exit(struct vcpu *v, uint32_t basic);
bool hidden_step_end(struct vcpu *v);
bool hidden_step_extends(struct vcpu *v, uint32_t basic); /* an EPT violation that extends the step */
void step_restore_mtf(struct vcpu *v);
/* The exit that ends a step is consumed when it is the step's own MTF exit, unless L1 asked
 * for MTF on this L2 (then it is L1's too). */
bool step_mtf_exit_is_hvs(struct vcpu *v, uint32_t basic);
/* hv/exit_io.c: an I/O instruction hv lets run natively once (string I/O, I/O of an L2 that L1
 * does not intercept): the same rules as the step above (io_step_exit runs first; the exit
 * that ends it is consumed if it is the step's own MTF exit). */
bool io_step_exit(struct vcpu *v, uint32_t basic);
void io_step_end(struct vcpu *v);
/* HV_HC_HIDDEN_WRITES: dropped writes so far (EPT01 and EPT02, every CPU); *problems: 0 if
 * hv's memory is as it must be (HV_SELFCHECK_* bits in hv/hypercall.h otherwise). */
uint64_t hidden_writes_total(void);
uint64_t hidden_self_check(struct vcpu *v);
uint64_t hv_text_checksum(void); /* hv/virt.c: FNV-1a of hv's .text and .rodata */
void handle_io(struct vcpu *v);
void handle_nmi_window(struct vcpu *v);
void handle_exception_nmi(struct vcpu *v);
/* Deliver a held NMI to its owner now, or ask for the NMI window (hv/exit.c). */
void deliver_pending_nmi(struct vcpu *v);
#endif
