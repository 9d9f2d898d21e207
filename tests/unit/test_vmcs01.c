/*
 * vmcs01's controls (hv/vmcs01.c) on a Bochs-like CPU, and what they mean for the guest's
 * debug registers across VM exits: a small model of the SDM's VM exit (28.3.1: DR7 and
 * IA32_DEBUGCTL saved only with "save debug controls"; 28.5.1: DR7 = 400H and DEBUGCTL = 0
 * in root mode) and VM entry (26.3.2.1: loaded only with "load debug controls").
 */
#include <stdio.h>
#include "fake_vmcs.h"
#include "hv/vcpu.h"
#include "hv/vmcs01.h"
#include "tests/unit/test_util.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))

/* What hv/vmcs01.c links against besides the VMCS. */
struct hv_global hv;
char vmx_exit_stub[1];
uint64_t host_idt_base(void) { return 0; }

/* Bochs' corei7_skylake_x (true controls): save/load debug controls may be 0 there. */
static const struct vmx_msrs bochs = {
    .basic = 0x00d810000000002bull, .pinbased = 0x0000007f00000016ull, .procbased = 0xfff9fffe04006172ull,
    .exit = 0x01ffffff00036dfbull, .entry = 0x0003ffff000011fbull, .procbased2 = 0x02177fff00000000ull,
};

struct cpu { uint64_t dr7, debugctl; };

/* One VM exit and the VM entry after it, as the CPU performs them with vmcs01's controls. */
static void exit_and_entry(struct cpu *c, uint32_t exit_ctls, uint32_t entry_ctls)
{
    if (exit_ctls & VM_EXIT_SAVE_DEBUG_CONTROLS) {
        fake_vmcs_set(GUEST_DR7, c->dr7);
        fake_vmcs_set(GUEST_IA32_DEBUGCTL, c->debugctl);
    }
    c->dr7 = 0x400; /* root mode: breakpoints off */
    c->debugctl = 0;
    if (entry_ctls & VM_ENTRY_LOAD_DEBUG_CONTROLS) {
        c->dr7 = fake_vmcs_get(GUEST_DR7);
        c->debugctl = fake_vmcs_get(GUEST_IA32_DEBUGCTL);
    }
}

int main(void)
{
    uint32_t exit = vmcs01_exit_controls(&bochs), entry = vmcs01_entry_controls(&bochs, true);
    CHECK(exit & VM_EXIT_SAVE_DEBUG_CONTROLS, "vmcs01 exit controls %#x: no \"save debug controls\"", exit);
    CHECK(entry & VM_ENTRY_LOAD_DEBUG_CONTROLS, "vmcs01 entry controls %#x: no \"load debug controls\"", entry);
    CHECK((exit & (VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_EFER | VM_EXIT_LOAD_EFER)) ==
              (VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_EFER | VM_EXIT_LOAD_EFER),
          "exit controls %#x keep the 64-bit host and EFER switching", exit);
    CHECK(entry & VM_ENTRY_IA32E_MODE, "IA-32e guest");
    CHECK(!(vmcs01_entry_controls(&bochs, false) & VM_ENTRY_IA32E_MODE), "32-bit guest: no IA-32e mode");
    /* Must-be-1 bits of the capability MSR stay set, allowed-0 bits never appear. */
    CHECK((exit & 0x36dfb) == 0x36dfb && !(exit & ~0x01ffffffu), "exit controls %#x within the MSR", exit);

    /* The guest's watchpoint (DR0, write, 4 bytes, L0) and DEBUGCTL.BTF survive 1000 exits. */
    fake_vmcs_reset();
    struct cpu c = {0xd0401, 0x2};
    fake_vmcs_set(GUEST_DR7, c.dr7);
    fake_vmcs_set(GUEST_IA32_DEBUGCTL, c.debugctl);
    for (int i = 0; i < 1000; i++)
        exit_and_entry(&c, exit, entry);
    CHECK(c.dr7 == 0xd0401, "guest DR7 after 1000 exits: %#llx, want 0xd0401", ULL(c.dr7));
    CHECK(c.debugctl == 0x2, "guest IA32_DEBUGCTL after 1000 exits: %#llx, want 0x2", ULL(c.debugctl));
    /* A DR7 the guest changed between two exits is the one that comes back. */
    c.dr7 = 0x401;
    exit_and_entry(&c, exit, entry);
    CHECK(c.dr7 == 0x401, "DR7 changed by the guest: %#llx after the next exit, want 0x401", ULL(c.dr7));
    return test_summary();
}
