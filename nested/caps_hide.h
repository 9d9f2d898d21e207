/*
 * hv.cfg's l1_vmx_hide=: VMX features hv does not offer L1 although the CPU has them, to run
 * an L1 (hv itself, say) on a smaller set such as a nested KVM's. The hidden allowed-1 bits
 * and capability flags are taken out of a copy of the hardware's VMX MSRs before
 * nested_caps_init, so every rule derived from them follows (no unrestricted guest without
 * EPT, no preemption-timer save without the timer, ...). docs/config.md lists the names.
 */
#ifndef NESTED_CAPS_HIDE_H
#define NESTED_CAPS_HIDE_H
#include <stddef.h>
#include <stdint.h>
#include "../vmx/caps.h"

/* Bits to clear: allowed-1 settings of each control MSR (as in bits 31:0 of a control value),
 * IA32_VMX_EPT_VPID_CAP and IA32_VMX_MISC bits. */
struct nested_hide {
    uint32_t pin, proc, proc2, exit, entry;
    uint64_t ept_vpid, misc;
};

/* Names separated by commas and/or blanks, any case. Adds each to *h; an unknown name is
 * skipped and counted, the first copied into bad (bad_len bytes, NUL-terminated). */
unsigned nested_hide_parse(const char *list, struct nested_hide *h, char *bad, size_t bad_len);
/* Clears h's bits in hw (pinbased ... misc; the TRUE control MSRs where hw has them). */
void nested_hide_apply(const struct nested_hide *h, struct vmx_msrs *hw);
/* The names of the features hw lacks entirely, comma-separated, into buf: what an L1 of this
 * CPU cannot get (and hv cannot use). Returns how many. */
unsigned nested_hide_lacking(const struct vmx_msrs *hw, char *buf, size_t len);
#endif
