/*
 * The guest's debug registers across VM exits: a hardware data watchpoint (DR0 + DR7) on a
 * variable, then many exits (CPUID, and RDMSR of IA32_FEATURE_CONTROL, which hv emulates),
 * then a write to the variable. Under a hypervisor that loses DR7 at VM exits (SDM 28.5.1
 * sets it to 400H) the #DB never comes. The #DB handler lives in a copy of the firmware's IDT
 * (the firmware's own table is left untouched) that is loaded only for the test.
 */
#include "payload.h"
#include "../../hv/hypercall.h"

#define DR7_WATCH_DR0 0xd0401ull /* L0, R/W0 = 01 (data writes), LEN0 = 11 (4 bytes), bit 10 */
#define EXITS_CPUID 1000
#define EXITS_RDMSR 100

static volatile UINT32 db_count __attribute__((used));
static volatile UINT64 db_dr6 __attribute__((used));
static volatile UINT64 db_rip[8] __attribute__((used)); /* where each of the first 8 #DBs returns to */
static volatile UINT32 watched;

/* #DB (a trap for data breakpoints): count it, keep DR6, clear it as the SDM asks. */
__asm__(".text\n"
        ".globl payload_db_handler\n"
        "payload_db_handler:\n"
        "    push %rax\n"
        "    push %rbx\n"
        "    mov db_count(%rip), %eax\n"
        "    cmp $8, %eax\n"
        "    jae 1f\n"
        "    lea db_rip(%rip), %rbx\n"
        "    push %rcx\n"
        "    mov 24(%rsp), %rcx\n" /* the frame's RIP: after the stepped instruction */
        "    mov %rcx, (%rbx,%rax,8)\n"
        "    pop %rcx\n"
        "1:  pop %rbx\n"
        "    lock incl db_count(%rip)\n"
        "    mov %dr6, %rax\n"
        "    mov %rax, db_dr6(%rip)\n"
        "    mov $0xffff0ff0, %eax\n"
        "    mov %rax, %dr6\n"
        "    pop %rax\n"
        "    iretq\n");
extern char payload_db_handler[];

struct __attribute__((packed)) idtr {
    UINT16 limit;
    UINT64 base;
};

static UINT64 read_dr7(void)
{
    UINT64 v;
    __asm__ volatile("mov %%dr7, %0" : "=r"(v));
    return v;
}

static UINT64 rdmsr_fc(void)
{
    UINT32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x3a));
    return ((UINT64)hi << 32) | lo;
}

/* A copy of the firmware's IDT with vector 1 sent to payload_db_handler; false if impossible. */
static BOOLEAN db_idt(struct idtr *old, struct idtr *mine)
{
    static UINT8 idt[4096] __attribute__((aligned(16)));
    __asm__ volatile("sidt %0" : "=m"(*old));
    if (old->limit + 1u > sizeof(idt) || old->limit < 2 * 16 - 1) {
        out("debug: firmware IDT limit 0x%llx: test skipped", (unsigned long long)old->limit);
        return FALSE;
    }
    CopyMem(idt, (void *)(UINTN)old->base, old->limit + 1u);
    UINT16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    UINT64 h = (UINT64)(UINTN)payload_db_handler;
    UINT8 *g = idt + 16; /* vector 1: a 64-bit interrupt gate, DPL 0 */
    g[0] = (UINT8)h, g[1] = (UINT8)(h >> 8), g[2] = (UINT8)cs, g[3] = (UINT8)(cs >> 8);
    g[4] = 0, g[5] = 0x8e, g[6] = (UINT8)(h >> 16), g[7] = (UINT8)(h >> 24);
    for (int i = 0; i < 4; i++)
        g[8 + i] = (UINT8)(h >> (32 + 8 * i)), g[12 + i] = 0;
    mine->limit = old->limit;
    mine->base = (UINT64)(UINTN)idt;
    return TRUE;
}

/* Single-stepping (RFLAGS.TF) over instructions that exit: the CPU leaves their single-step
 * trap to the hypervisor, which must deliver it once it completes the instruction (as KVM
 * does: DR6.BS and #DB). A debugger's stepi over CPUID or RDMSR. */
__attribute__((noinline)) void check_single_step(void)
{
    struct idtr old, mine;
    if (!db_idt(&old, &mine))
        return;
    extern char ss_after_cpuid[], ss_after_rdmsr[], ss_after_nop[];
    UINT64 flags;
    __asm__ volatile("pushfq; pop %0" : "=r"(flags));
    db_count = 0;
    __asm__ volatile("cli; lidt %0" ::"m"(mine));
    __asm__ volatile("mov %0, %%dr6" ::"r"(0xffff0ff0ull));
    UINT32 leaf = 0;
    __asm__ volatile(".globl ss_after_cpuid, ss_after_rdmsr, ss_after_nop\n\t"
                     "pushfq\n\t"
                     "orq $0x100, (%%rsp)\n\t"
                     "popfq\n\t" /* TF from here: the first trap follows the next instruction */
                     "cpuid\n"
                     "ss_after_cpuid:\n\t"
                     "mov $0x3a, %%ecx\n\t"
                     "rdmsr\n"
                     "ss_after_rdmsr:\n\t"
                     "nop\n"
                     "ss_after_nop:\n\t"
                     "pushfq\n\t"
                     "andq $~0x100, (%%rsp)\n\t"
                     "popfq"
                     : "+a"(leaf) : : "rbx", "rcx", "rdx", "memory", "cc");
    UINT32 n = db_count;
    __asm__ volatile("lidt %0" ::"m"(old));
    if (flags & 0x200)
        __asm__ volatile("sti");
    BOOLEAN cpuid_ok = FALSE, rdmsr_ok = FALSE, nop_ok = FALSE;
    for (UINT32 i = 0; i < n && i < 8; i++) {
        cpuid_ok |= db_rip[i] == (UINT64)(UINTN)ss_after_cpuid;
        rdmsr_ok |= db_rip[i] == (UINT64)(UINTN)ss_after_rdmsr;
        nop_ok |= db_rip[i] == (UINT64)(UINTN)ss_after_nop;
    }
    out("debug: single-step: #DB after CPUID %s, after RDMSR %s, after NOP %s, %u in all, DR6.BS %u",
        cpuid_ok ? "yes" : "no", rdmsr_ok ? "yes" : "no", nop_ok ? "yes" : "no", n,
        (unsigned)((db_dr6 >> 14) & 1));
}

void check_debug_regs(BOOLEAN hv_present)
{
    struct idtr old, mine;
    if (!db_idt(&old, &mine))
        return;

    UINT64 exits0 = hv_present ? hv_vmcall(HV_HC_GET_EXITS) : 0;
    db_count = 0;
    __asm__ volatile("lidt %0" ::"m"(mine));
    __asm__ volatile("mov %0, %%dr0" ::"r"((UINT64)(UINTN)&watched));
    __asm__ volatile("mov %0, %%dr6" ::"r"(0xffff0ff0ull));
    __asm__ volatile("mov %0, %%dr7" ::"r"(DR7_WATCH_DR0));
    for (int i = 0; i < EXITS_CPUID; i++) {
        UINT32 a = 0, b, c = 0, d;
        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    }
    for (int i = 0; hv_present && i < EXITS_RDMSR; i++)
        (void)rdmsr_fc();
    UINT64 dr7 = read_dr7();
    UINT32 before = db_count;
    watched = 1; /* the watchpoint: #DB right after this write */
    __asm__ volatile("" ::: "memory");
    UINT32 fired = db_count - before;
    __asm__ volatile("mov %0, %%dr7" ::"r"(0x400ull));
    __asm__ volatile("mov %0, %%dr0" ::"r"(0ull));
    __asm__ volatile("lidt %0" ::"m"(old));
    UINT64 exits = hv_present ? hv_vmcall(HV_HC_GET_EXITS) - exits0 : 0;
    out("debug: DR7 0x%llx after %u CPUID and %u RDMSR (hv counted %llu exits); watchpoint #DB %u time(s), DR6 0x%llx",
        (unsigned long long)dr7, EXITS_CPUID, hv_present ? EXITS_RDMSR : 0, (unsigned long long)exits, fired,
        (unsigned long long)db_dr6);
}
