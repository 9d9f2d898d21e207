/* INIT and SIPI. In VMX non-root operation INIT always exits and SIPI exits in the
 * wait-for-SIPI state. hv does what the CPU would: INIT puts the vCPU in the state of
 * SDM Vol. 3A Table 10-1 ("IA-32 processor states following power-up, reset, or INIT")
 * and waits for SIPI; SIPI starts it in real mode at vector * 4096 (unrestricted guest). */
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"

static void real_mode_segment(struct vcpu *v, enum guest_seg seg, uint16_t sel, uint64_t base, uint32_t ar)
{
    vm_write(v, GUEST_SEG_SELECTOR(seg), sel);
    vm_write(v, GUEST_SEG_BASE(seg), base);
    vm_write(v, GUEST_SEG_LIMIT(seg), 0xffff);
    vm_write(v, GUEST_SEG_AR(seg), ar);
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
    real_mode_segment(v, SEG_CS, 0xf000, 0xffff0000, 0x9b);
    real_mode_segment(v, SEG_ES, 0, 0, 0x93);
    real_mode_segment(v, SEG_SS, 0, 0, 0x93);
    real_mode_segment(v, SEG_DS, 0, 0, 0x93);
    real_mode_segment(v, SEG_FS, 0, 0, 0x93);
    real_mode_segment(v, SEG_GS, 0, 0, 0x93);
    real_mode_segment(v, SEG_LDTR, 0, 0, 0x82);
    real_mode_segment(v, SEG_TR, 0, 0, 0x8b);
    vm_write(v, GUEST_GDTR_BASE, 0);
    vm_write(v, GUEST_GDTR_LIMIT, 0xffff);
    vm_write(v, GUEST_IDTR_BASE, 0);
    vm_write(v, GUEST_IDTR_LIMIT, 0xffff);
    vm_write(v, GUEST_DR7, 0x400);
    vm_write(v, GUEST_IA32_DEBUGCTL, 0);
    vm_write(v, GUEST_PENDING_DBG_EXCEPTIONS, 0);
    /* No blocking at all: Bochs 2.7 used to leave "blocking by SMI" here, which must be 0
     * outside SMM (26.3.1.5). */
    reg_write(&v->rc, HV_REG_INTR_STATE, 0);
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
    real_mode_segment(v, SEG_CS, (uint16_t)(vector << 8), (uint64_t)vector << 12, 0x9b);
    reg_write(&v->rc, HV_REG_RIP, 0);
    vm_write(v, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    log_debug("cpu%u: SIPI vector 0x%x: starting at 0x%x", v->id, vector, vector << 12);
}
