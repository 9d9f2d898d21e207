/* INIT and SIPI. In VMX non-root operation INIT always exits and SIPI exits in the
 * wait-for-SIPI state. hv does what the CPU would: INIT puts the vCPU in the state of
 * SDM Vol. 3A Table 10-1 ("IA-32 processor states following power-up, reset, or INIT")
 * and waits for SIPI; SIPI starts it in real mode at vector * 4096 (unrestricted guest). */
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "apic.h"
#include "exit.h"
#include "fatal.h"

static void real_mode_segment(struct vcpu *v, enum guest_seg seg, uint16_t sel, uint64_t base, uint32_t ar)
{
    vm_write(v, GUEST_SEG_SELECTOR(seg), sel);
    vm_write(v, GUEST_SEG_BASE(seg), base);
    vm_write(v, GUEST_SEG_LIMIT(seg), 0xffff);
    vm_write(v, GUEST_SEG_AR(seg), ar);
}

/* How long an INIT'ed vCPU waits in hv for a SIPI its sender latched (hv/apic.c) before it
 * waits in the CPU's wait-for-SIPI state instead: about 20 ms at 2.5 GHz. */
#define SIPI_SPIN_TICKS 50000000ull

/* The SIPI: real mode at vector * 4096. */
static void sipi_start(struct vcpu *v, uint32_t vector)
{
    real_mode_segment(v, SEG_CS, (uint16_t)(vector << 8), (uint64_t)vector << 12, 0x9b);
    reg_write(&v->rc, HV_REG_RIP, 0);
    vm_write(v, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    log_debug("cpu%u: SIPI vector 0x%x: starting at 0x%x", v->id, vector, vector << 12);
}

/* After INIT: the SIPI its sender latched, whenever it came (before this INIT exit was even
 * handled, or while hv waits here); else the CPU's wait-for-SIPI state and a SIPI exit. */
static void wait_for_sipi(struct vcpu *v)
{
    /* Without the wait-for-SIPI activity state (IA32_VMX_MISC bit 8, A.6; a hypervisor below hv
     * may not offer it) entering it would fail the VM entry: wait here until a sender's SIPI is
     * latched (every sender runs under hv, hv/apic.c). */
    bool can_wait_in_cpu = hv.msrs.misc & (1ull << 8);
    uint32_t s = __atomic_fetch_or(&v->sipi, APIC_SIPI_WAITING, __ATOMIC_ACQ_REL) | APIC_SIPI_WAITING;
    for (uint64_t t0 = rdtsc(); !(s & APIC_SIPI_VALID) && (!can_wait_in_cpu || rdtsc() - t0 < SIPI_SPIN_TICKS);
         s = __atomic_load_n(&v->sipi, __ATOMIC_ACQUIRE)) {
        fatal_check_stop(v);
        cpu_relax();
    }
    if ((s & APIC_SIPI_VALID) && __atomic_compare_exchange_n(&v->sipi, &s, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        v->stats.sipis_latched++;
        sipi_start(v, s & 0xff);
    }
}

/* INIT while L1 is in VMX root operation is blocked (SDM 24.8: VMXON blocks INIT) and stays
 * pending: until VMXOFF (init_after_vmxoff) or L1's next VM entry into L2, where it is the INIT
 * exit L1 gets (init_after_vmentry); an INIT while L2 runs is L1's INIT exit (nested/). */
void handle_init(struct vcpu *v)
{
    if (v->nested.vmxon && !v->nested.guest_mode) {
        v->init_blocked = true;
        return;
    }
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
    vm_write(v, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
    wait_for_sipi(v);
}

void init_after_vmxoff(struct vcpu *v)
{
    if (!v->init_blocked || v->nested.vmxon)
        return;
    v->init_blocked = false;
    /* SIPIs that came while INIT was blocked found no CPU waiting for them: gone. */
    __atomic_store_n(&v->sipi, 0, __ATOMIC_RELEASE);
    handle_init(v);
}

void init_after_vmentry(struct vcpu *v)
{
    if (!v->init_blocked || !v->nested.guest_mode)
        return;
    /* Wait-for-SIPI blocks INIT (25.2). An event the entry injects is delivered before the
     * INIT is recognized (its VM exit would follow the delivery): not emulated, the INIT
     * stays held for a later entry or VMXOFF (docs/nested.md). */
    if (vm_read(v, GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI ||
        (vm_read(v, VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID))
        return;
    /* A TPR-below-threshold exit right after the entry has priority over INIT (26.7.7): the
     * CPU takes it (exit 43 to L1); the INIT stays pending for the next entry. */
    if (nested_tpr_exit_after_entry(&v->nv))
        return;
    v->init_blocked = false;
    __atomic_store_n(&v->sipi, 0, __ATOMIC_RELEASE); /* L1's INIT exit: a SIPI latched for it is not hv's */
    nested_reflect_init(&v->nv);
}

void handle_sipi(struct vcpu *v)
{
    /* SIPI exits happen only in wait-for-SIPI (26.6.2); the saved activity state is not
     * reliable (Bochs stores "active"), so it is not checked. */
    __atomic_store_n(&v->sipi, 0, __ATOMIC_RELEASE); /* whatever a sender latched: this is it */
    sipi_start(v, (uint32_t)reg_exit_qual(&v->rc) & 0xff);
}
