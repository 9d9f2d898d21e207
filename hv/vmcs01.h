/* vmcs01: the VMCS in which hv runs its guest (L1), built from this CPU's live state. */
#ifndef HV_VMCS01_H
#define HV_VMCS01_H
#include "vcpu.h"

/* Host state, controls and guest state = "continue at v->resume as if nothing happened". */
void vmcs01_setup(struct vcpu *v, uint64_t fw_cr0, uint64_t fw_cr4);
/* Log the guest state (unexpected exits, failed entries). */
void vmcs01_dump_guest(struct vcpu *v);
#endif
