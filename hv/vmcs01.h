/* vmcs01: the VMCS in which hv runs its guest (L1), built from this CPU's live state. */
#ifndef HV_VMCS01_H
#define HV_VMCS01_H
#include "vcpu.h"

/* Host state, controls and guest state = "continue at v->resume as if nothing happened". */
void vmcs01_setup(struct vcpu *v, uint64_t fw_cr0, uint64_t fw_cr4);
/* vmcs01's VM-exit and VM-entry controls on a CPU with these capability MSRs (ia32e: the
 * guest starts in IA-32e mode). */
uint32_t vmcs01_exit_controls(const struct vmx_msrs *m);
uint32_t vmcs01_entry_controls(const struct vmx_msrs *m, bool ia32e);
/* Log the guest state (unexpected exits, failed entries). */
void vmcs01_dump_guest(struct vcpu *v);
#endif
