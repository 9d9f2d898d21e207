/* x86 primitives that C cannot express: port I/O, MSRs, CPUID, control registers. */
#ifndef LIB_X86_H
#define LIB_X86_H
#include <stdint.h>

#ifdef HV_HOST_TEST
/* Host tests supply the ports (a host process has none). */
uint32_t fake_port_in(uint16_t port, unsigned size);
void fake_port_out(uint16_t port, unsigned size, uint32_t v);
static inline void outb(uint16_t port, uint8_t v) { fake_port_out(port, 1, v); }
static inline uint8_t inb(uint16_t port) { return (uint8_t)fake_port_in(port, 1); }
static inline void outw(uint16_t port, uint16_t v) { fake_port_out(port, 2, v); }
static inline uint16_t inw(uint16_t port) { return (uint16_t)fake_port_in(port, 2); }
static inline void outl(uint16_t port, uint32_t v) { fake_port_out(port, 4, v); }
static inline uint32_t inl(uint16_t port) { return fake_port_in(port, 4); }
#else
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
#endif

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

struct cpuid_regs { uint32_t eax, ebx, ecx, edx; };
static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t sub)
{
    struct cpuid_regs r;
    __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(sub));
    return r;
}

/* CPUID.0 vendor string ("GenuineIntel"), NUL-terminated */
static inline void cpuid_vendor(char out[13])
{
    struct cpuid_regs r = cpuid(0, 0);
    __builtin_memcpy(out, &r.ebx, 4);
    __builtin_memcpy(out + 4, &r.edx, 4);
    __builtin_memcpy(out + 8, &r.ecx, 4);
    out[12] = 0;
}

#define DEF_CR(n)                                                                             \
    static inline uint64_t read_cr##n(void) { uint64_t v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
    static inline void write_cr##n(uint64_t v) { __asm__ volatile("mov %0, %%cr" #n ::"r"(v) : "memory"); }
DEF_CR(0)
DEF_CR(2)
DEF_CR(3)
DEF_CR(4)
#undef DEF_CR

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t read_rflags(void) { uint64_t v; __asm__ volatile("pushfq; popq %0" : "=r"(v)); return v; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };
static inline void sgdt(struct dtr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
static inline void sidt(struct dtr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }
static inline void lgdt(const struct dtr *d) { __asm__ volatile("lgdt %0" ::"m"(*d)); }
static inline void lidt(const struct dtr *d) { __asm__ volatile("lidt %0" ::"m"(*d)); }
#define READ_SEG(name)                                                                        \
    static inline uint16_t read_##name(void) { uint16_t v; __asm__ volatile("mov %%" #name ", %0" : "=r"(v)); return v; }
READ_SEG(cs)
READ_SEG(ss)
READ_SEG(ds)
READ_SEG(es)
READ_SEG(fs)
READ_SEG(gs)
#undef READ_SEG
static inline uint16_t read_tr(void) { uint16_t v; __asm__ volatile("str %0" : "=r"(v)); return v; }
static inline uint16_t read_ldtr(void) { uint16_t v; __asm__ volatile("sldt %0" : "=r"(v)); return v; }

/* MSRs (SDM Vol. 4) */
#define MSR_IA32_APIC_BASE        0x1b
#define MSR_IA32_FEATURE_CONTROL  0x3a
#define MSR_X2APIC_ICR            0x830
#define MSR_IA32_SYSENTER_CS      0x174
#define MSR_IA32_SYSENTER_ESP     0x175
#define MSR_IA32_SYSENTER_EIP     0x176
#define MSR_IA32_DEBUGCTL         0x1d9
#define MSR_IA32_PAT              0x277
#define MSR_IA32_PERF_GLOBAL_CTRL 0x38f
#define MSR_IA32_PERF_CAPABILITIES 0x345
#define MSR_IA32_MTRRCAP          0xfe
#define MSR_IA32_MTRR_DEF_TYPE    0x2ff
#define MSR_IA32_VMX_BASIC        0x480
#define MSR_IA32_VMX_PINBASED_CTLS 0x481
#define MSR_IA32_VMX_PROCBASED_CTLS 0x482
#define MSR_IA32_VMX_EXIT_CTLS    0x483
#define MSR_IA32_VMX_ENTRY_CTLS   0x484
#define MSR_IA32_VMX_MISC         0x485
#define MSR_IA32_VMX_CR0_FIXED0   0x486
#define MSR_IA32_VMX_CR0_FIXED1   0x487
#define MSR_IA32_VMX_CR4_FIXED0   0x488
#define MSR_IA32_VMX_CR4_FIXED1   0x489
#define MSR_IA32_VMX_VMCS_ENUM    0x48a
#define MSR_IA32_VMX_PROCBASED_CTLS2 0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP 0x48c
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS 0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS 0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS 0x490
#define MSR_IA32_VMX_VMFUNC       0x491
#define MSR_IA32_EFER             0xc0000080
#define MSR_IA32_STAR             0xc0000081
#define MSR_IA32_LSTAR            0xc0000082
#define MSR_IA32_FS_BASE          0xc0000100
#define MSR_IA32_GS_BASE          0xc0000101
#define MSR_IA32_KERNEL_GS_BASE   0xc0000102

#define X86_EFLAGS_CF (1ull << 0)
#define X86_EFLAGS_PF (1ull << 2)
#define X86_EFLAGS_AF (1ull << 4)
#define X86_EFLAGS_ZF (1ull << 6)
#define X86_EFLAGS_SF (1ull << 7)
#define X86_EFLAGS_TF (1ull << 8)
#define X86_EFLAGS_IF (1ull << 9)
#define X86_EFLAGS_OF (1ull << 11)

#define CR0_PE (1ull << 0)
#define CR0_TS (1ull << 3)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_VMXE (1ull << 13)
#define CR4_SMXE (1ull << 14)
#define CR4_OSXSAVE (1ull << 18)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#endif
