/* Reading the CPU's VMX capabilities and entering/leaving VMX operation on this CPU. */
#ifndef VMX_PROBE_H
#define VMX_PROBE_H
#include "caps.h"

void vmx_read_msrs(struct vmx_msrs *m);

/* What vmx_on changed, so vmx_off can put it back. */
struct vmx_root {
    uint64_t vmxon_pa;
    uint64_t saved_cr0, saved_cr4;
    bool on;
};
/* Sets IA32_FEATURE_CONTROL if unlocked, applies the CR0/CR4 fixed bits, VMXON.
 * vmxon_page is a zeroed 4 KiB page (identity-mapped). Returns 0 or a negative
 * code; *why gets the reason on failure. */
int vmx_on(struct vmx_root *r, const struct vmx_caps *caps, void *vmxon_page, const char **why);
int vmx_off(struct vmx_root *r);
#endif
