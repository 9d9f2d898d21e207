/* INIT and SIPI. In VMX non-root operation INIT always exits and SIPI exits in the
 * wait-for-SIPI state. hv does what the CPU would: INIT puts the vCPU in the state of
 * SDM Vol. 3A Table 10-1 ("IA-32 processor states following power-up, reset, or INIT")
 * and waits for SIPI; SIPI starts it in real mode at vector * 4096 (unrestricted guest). */
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"

static void real_mode_segment(struct vcpu *v, uint32_t sel_f, uint16_t sel, uint64_t base, uint32_t ar)
{
    /* Guest segment fields are laid out in parallel: selector, base, limit, AR (Appendix B). */
    static const struct { uint32_t sel, base, limit, ar; } f[] = {
        {GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES},
        {GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES},
        {GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES},
        {GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES},
        {GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES},
        {GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES},
        {GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES},
        {GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES},
    };
    unsigned i = (sel_f - GUEST_ES_SELECTOR) / 2;
    vm_write(v, f[i].sel, sel);
    vm_write(v, f[i].base, base);
    vm_write(v, f[i].limit, 0xffff);
    vm_write(v, f[i].ar, ar);
}

void handle_init(struct vcpu *v)
{
    uint64_t *g = v->rc.regs;
    for (int i = 0; i < 16; i++)
        g[i] = 0;
    g[HV_REG_RDX] = cpuid(1, 0).eax; /* family/model/stepping, as after reset */
    reg_write(&v->rc, HV_REG_RSP, 0);
    reg_write(&v->rc, HV_REG_RIP, 0xfff0);
    reg_write(&v->rc, HV_REG_RFLAGS, 0x2);
    const uint64_t cr0 = 0x60000010; /* CD, NW, ET */
    vm_write(v, CR0_READ_SHADOW, cr0);
    reg_write(&v->rc, HV_REG_CR0, (cr0 | (hv.msrs.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & hv.msrs.cr0_fixed1);
    vm_write(v, CR4_READ_SHADOW, 0);
    reg_write(&v->rc, HV_REG_CR4, hv.msrs.cr4_fixed0);
    reg_write(&v->rc, HV_REG_CR3, 0);
    vm_write(v, GUEST_IA32_EFER, 0);
    vm_write(v, VM_ENTRY_CONTROLS, vm_read(v, VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE);
    real_mode_segment(v, GUEST_CS_SELECTOR, 0xf000, 0xffff0000, 0x9b);
    real_mode_segment(v, GUEST_ES_SELECTOR, 0, 0, 0x93);
    real_mode_segment(v, GUEST_SS_SELECTOR, 0, 0, 0x93);
    real_mode_segment(v, GUEST_DS_SELECTOR, 0, 0, 0x93);
    real_mode_segment(v, GUEST_FS_SELECTOR, 0, 0, 0x93);
    real_mode_segment(v, GUEST_GS_SELECTOR, 0, 0, 0x93);
    real_mode_segment(v, GUEST_LDTR_SELECTOR, 0, 0, 0x82);
    real_mode_segment(v, GUEST_TR_SELECTOR, 0, 0, 0x8b);
    vm_write(v, GUEST_GDTR_BASE, 0);
    vm_write(v, GUEST_GDTR_LIMIT, 0xffff);
    vm_write(v, GUEST_IDTR_BASE, 0);
    vm_write(v, GUEST_IDTR_LIMIT, 0xffff);
    vm_write(v, GUEST_DR7, 0x400);
    vm_write(v, GUEST_IA32_DEBUGCTL, 0);
    vm_write(v, GUEST_PENDING_DBG_EXCEPTIONS, 0);
    /* No blocking at all: Bochs 2.7 used to leave "blocking by SMI" here, which must be 0
     * outside SMM (26.3.1.5). */
    vm_write(v, GUEST_INTERRUPTIBILITY_INFO, 0);
    vm_write(v, VM_ENTRY_INTR_INFO_FIELD, 0);
    /* No log line here: the OS sends SIPI about 10 us after INIT, and a SIPI that finds
     * this CPU still in root mode (a polled serial line takes milliseconds) is lost. */
    vm_write(v, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
}

void handle_sipi(struct vcpu *v)
{
    uint32_t vector = (uint32_t)reg_exit_qual(&v->rc) & 0xff;
    /* SIPI exits happen only in wait-for-SIPI (26.6.2); the saved activity state is not
     * reliable (Bochs stores "active"), so it is not checked. */
    real_mode_segment(v, GUEST_CS_SELECTOR, (uint16_t)(vector << 8), (uint64_t)vector << 12, 0x9b);
    reg_write(&v->rc, HV_REG_RIP, 0);
    vm_write(v, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    log_debug("cpu%u: SIPI vector 0x%x: starting at 0x%x", v->id, vector, vector << 12);
}
