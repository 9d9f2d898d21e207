/* Structure offsets for hv/entry.asm, extracted at build time (build/core/asm_offsets.inc):
 * NASM cannot read C headers, and hand-copied numbers would drift. */
#include <stddef.h>
#include "vcpu.h"

#define DEFINE(sym, val) __asm__ volatile("\n.ascii \"->" #sym " %c0\"" ::"i"(val))

void asm_offsets(void);
void asm_offsets(void)
{
    DEFINE(VCPU_NMI_ARRIVED, offsetof(struct vcpu, nmi_arrived));
    DEFINE(VCPU_LAUNCH_PENDING, offsetof(struct vcpu, launch_pending));
    DEFINE(VCPU_GUEST_MODE, offsetof(struct vcpu, nested.guest_mode));
    DEFINE(VCPU_STATS_TOTAL, offsetof(struct vcpu, stats.total));
    DEFINE(VCPU_STATS_CPUID, offsetof(struct vcpu, stats.by_reason[EXIT_REASON_CPUID]));
    DEFINE(VCPU_REGS, offsetof(struct vcpu, rc.regs));
    DEFINE(VCPU_VMREADS, offsetof(struct vcpu, rc.vmreads));
    DEFINE(VCPU_VMWRITES, offsetof(struct vcpu, rc.vmwrites));
    DEFINE(VMCS_EXIT_REASON, VM_EXIT_REASON);
    DEFINE(VMCS_GUEST_RIP, GUEST_RIP);
    DEFINE(VMCS_GUEST_INTR_STATE, GUEST_INTERRUPTIBILITY_INFO);
    DEFINE(VMCS_GUEST_RFLAGS, GUEST_RFLAGS);
    DEFINE(VMCS_EXIT_INSTR_LEN, VM_EXIT_INSTRUCTION_LEN);
    DEFINE(EXIT_CPUID, EXIT_REASON_CPUID);
}
