#include "host.h"
#include <stdio.h>
#include <string.h>
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/x86.h"
#include "fatal.h"

struct __attribute__((packed)) idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, rsvd;
};

static struct idt_gate idt[32] __attribute__((aligned(16)));
extern const uint64_t host_idt_stub_table[32];
extern const uint64_t host_fixups[];
extern const uint64_t nmi_rewind[];

void host_idt_init(void)
{
    for (int i = 0; i < 32; i++) {
        uint64_t a = host_idt_stub_table[i];
        /* NMI, #DF and #MC get a known-good stack (IST1): they can hit anywhere. */
        uint8_t ist = (i == 2 || i == 8 || i == 18) ? 1 : 0;
        idt[i] = (struct idt_gate){(uint16_t)a, HOST_CS, ist, 0x8e, (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
    }
}

uint64_t host_idt_base(void) { return (uint64_t)(uintptr_t)idt; }

void host_cpu_init(struct vcpu *v)
{
    uint64_t tss = (uint64_t)(uintptr_t)&v->tss;
    uint8_t *ist = page_alloc(HOST_IST_SIZE / PAGE_SIZE);
    memset(&v->tss, 0, sizeof(v->tss));
    v->tss.ist[0] = ist ? (uint64_t)(uintptr_t)(ist + HOST_IST_SIZE) : 0;
    v->tss.iomap_base = sizeof(v->tss);
    v->gdt[0] = 0;
    v->gdt[1] = 0x00af9b000000ffffull; /* 64-bit code, DPL 0 */
    v->gdt[2] = 0x00cf93000000ffffull; /* data */
    v->gdt[3] = (sizeof(v->tss) - 1) | ((tss & 0xffffff) << 16) | (0x89ull << 40) | ((tss >> 24 & 0xff) << 56);
    v->gdt[4] = tss >> 32;
}

__attribute__((noreturn)) void platform_reset(const char *why)
{
    log_err("resetting the platform: %s", why);
    cli();
    outb(0xcf9, 0x02); /* PCI reset control register: hard reset */
    outb(0xcf9, 0x06);
    for (int i = 0; i < 100000; i++)
        cpu_relax();
    outb(0x64, 0xfe); /* keyboard controller pulse */
    for (;;)
        hlt();
}

__attribute__((noreturn)) void cpu_halt_forever(void)
{
    for (;;) {
        cli();
        hlt();
    }
}

#define APIC_BASE_EXTD (1ull << 10) /* x2APIC mode */
#define APIC_BASE_EN (1ull << 11)
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_ICR_BUSY (1u << 12)
#define MSR_X2APIC_ICR 0x830
/* Destination shorthand "all excluding self", level assert, delivery mode INIT (SDM Vol. 3A,
 * "Interrupt Command Register"). INIT is blocked in VMX root operation and causes a VM exit
 * in VMX non-root operation (SDM Vol. 3C, "Restrictions on VMX Operation" and "Other Causes
 * of VM Exits"): a CPU in its guest exits at once, one inside hv at its next VM entry. */
#define ICR_INIT_ALL_BUT_SELF 0x000c4500u

void host_stop_other_cpus(void)
{
    uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
    if (!(base & APIC_BASE_EN))
        return;
    if (base & APIC_BASE_EXTD) {
        wrmsr(MSR_X2APIC_ICR, ICR_INIT_ALL_BUT_SELF);
        return;
    }
    uint64_t pa = base & 0x000ffffffffff000ull;
    if (pa + 0x1000 > hv.ho->host_map_limit)
        return; /* not in hv's page tables */
    volatile uint32_t *apic = (volatile uint32_t *)(uintptr_t)pa;
    for (int i = 0; i < 100000 && (apic[APIC_ICR_LO / 4] & APIC_ICR_BUSY); i++)
        cpu_relax();
    apic[APIC_ICR_HI / 4] = 0;
    apic[APIC_ICR_LO / 4] = ICR_INIT_ALL_BUT_SELF;
}

void host_exception(struct host_frame *f)
{
    for (const uint64_t *x = host_fixups; x[0]; x += 2)
        if (f->rip == x[0] && (f->vector == 13 || f->vector == 6)) {
            f->rip = x[1]; /* a guest-chosen MSR/XCR faulted: the handler injects #GP */
            return;
        }
    if (f->vector == 2) {
        /* An NMI while hv handled an exit: it belongs to the guest; hv delivers it (hv/exit.c).
         * Past the exit stub's last look at nmi_pending, that look is taken again. */
        struct vcpu *v = this_vcpu();
        v->nmi_pending = true;
        v->nmi_arrived = true;
        v->stats.nmis++;
        for (const uint64_t *x = nmi_rewind; x[0]; x += 2)
            if (f->rip == x[0])
                f->rip = x[1];
        return;
    }
    log_err("host exception %llu error 0x%llx at rip 0x%llx rsp 0x%llx rflags 0x%llx cr2 0x%llx",
            (unsigned long long)f->vector, (unsigned long long)f->error, (unsigned long long)f->rip,
            (unsigned long long)f->rsp, (unsigned long long)f->rflags, (unsigned long long)read_cr2());
    log_err("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", (unsigned long long)f->rax,
            (unsigned long long)f->rbx, (unsigned long long)f->rcx, (unsigned long long)f->rdx);
    log_err("  rsi %016llx rdi %016llx rbp %016llx r8  %016llx", (unsigned long long)f->rsi,
            (unsigned long long)f->rdi, (unsigned long long)f->rbp, (unsigned long long)f->r8);
    char why[64];
    snprintf(why, sizeof(why), "exception %llu (error 0x%llx) in hv", (unsigned long long)f->vector,
             (unsigned long long)f->error);
    hv_fatal(this_vcpu(), why, f->rip, f->rbp);
}
