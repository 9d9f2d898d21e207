/* hv's own host environment per CPU: GDT, TSS, IDT, exception handling, reset. */
#ifndef HV_HOST_H
#define HV_HOST_H
#include <stdint.h>
#include "vcpu.h"

#define HOST_CS 0x08
#define HOST_DS 0x10
#define HOST_TR 0x18

struct host_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

void host_idt_init(void);               /* once: the IDT is shared by all CPUs */
void host_cpu_init(struct vcpu *v);     /* this CPU's GDT and TSS (in struct vcpu) */
uint64_t host_idt_base(void);
__attribute__((noreturn)) void platform_reset(const char *why);
/* This CPU stops for good: interrupts off, HLT (an NMI only wakes it into HLT again). */
__attribute__((noreturn)) void cpu_halt_forever(void);
/* INIT to every other CPU: each takes a VM exit into hv (hv/fatal.c stops it there). */
void host_stop_other_cpus(void);

int safe_rdmsr(uint32_t msr, uint64_t *val);
int safe_wrmsr(uint32_t msr, uint64_t val);
int safe_xsetbv(uint32_t xcr, uint64_t val);
#endif
