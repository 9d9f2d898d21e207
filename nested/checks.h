/*
 * VM-entry checks of a vmcs12 (SDM Vol. 3C 26.2 "Checks on VMX controls and host-state
 * area" and 26.3.1 "Checks on the guest state area"; chapter 28 in newer SDMs), for the
 * features hv advertises to L1 (nested/caps.h). Call them in the order VM entry
 * performs them: controls, host state, guest state.
 */
#ifndef NESTED_CHECKS_H
#define NESTED_CHECKS_H
#include <stdint.h>
#include "caps.h"
#include "vmcs12.h"

/* Exit qualifications of a VM-entry failure due to invalid guest state (26.8). */
enum {
    ENTRY_FAIL_DEFAULT = 0,
    ENTRY_FAIL_PDPTE = 2,         /* PDPTEs with reserved bits set */
    ENTRY_FAIL_NMI_STI = 3,       /* NMI injection with blocking by STI */
    ENTRY_FAIL_VMCS_LINK_PTR = 4, /* invalid VMCS link pointer */
};

/* 26.2.1: 0 or VMXERR_ENTRY_INVALID_CONTROL (VMfailValid 7). */
int nested_check_controls(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits);
/* 26.2.1.1, the one control check on memory: with "use TPR shadow" but neither "virtualize
 * APIC accesses" nor "virtual-interrupt delivery", TPR threshold bits 3:0 must not exceed
 * VTPR bits 7:4 (vtpr: byte 0x80 of the virtual-APIC page). 0 or VMXERR_ENTRY_INVALID_CONTROL. */
int nested_check_vtpr(const struct vmcs12 *v, uint8_t vtpr);
/* 26.2.2-26.2.4: 0 or VMXERR_ENTRY_INVALID_HOST (VMfailValid 8). L1 is taken to be in
 * IA-32e mode (hv's L1 is 64-bit), so "host address-space size" must be 1. */
int nested_check_host(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits);
/* The rules that read L2's RIP, RSP, RFLAGS, interruptibility and the event injection only
 * (26.2.1.3, 26.3.1.4, 26.3.1.5): 0, or -1 (then run the full checks for the verdict). */
int nested_check_entry_fast(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits);
/* The same when L2's RIP alone changed: the RIP rule (26.3.1.4). 0, or -1 (run the full checks). */
int nested_check_entry_rip(const struct vmcs12 *v);
/* What the guest-state checks read besides vmcs12 (26.3.1.5, VMCS link pointer): L1's
 * current-VMCS pointer and the 32 bits at the link pointer in L1's memory (0 where that is not
 * L1's RAM: hv's memory reads as zeros, and no revision identifier is 0). */
struct nested_link {
    uint64_t vmcs_ptr;
    uint32_t revision;
};
/* 26.3.1: 0 or EXIT_REASON_INVALID_STATE (the VM-entry failure L1 sees as exit reason
 * 33 with bit 31 set); *exit_qual gets the exit qualification (ENTRY_FAIL_*). */
int nested_check_guest(const struct vmcs12 *v, const struct nested_caps *c, uint8_t phys_bits,
                       const struct nested_link *link, uint64_t *exit_qual);
/* 26.3.1.6 for PAE paging outside IA-32e mode without EPT: the four PDPTEs the CPU loads
 * from guest CR3 (the caller reads them). 0 or EXIT_REASON_INVALID_STATE, *exit_qual = 2. */
int nested_check_loaded_pdptes(const uint64_t pdpte[4], uint8_t phys_bits, uint64_t *exit_qual);
/* The rule of the last failed check, "<SDM section>: <text>" (for the log and tests).
 * One global: with several vCPUs it names the most recent failure of any of them. */
const char *nested_check_last_rule(void);
#endif
