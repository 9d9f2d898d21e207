/*
 * NMI stress ("nmi" in the load options): NMIs sent through the local APIC while a CPU
 * loops on CPUID plainly, right after STI, right after MOV SS, inside its own NMI handler
 * and around a WRMSR that faults (#GP). Every NMI must arrive exactly once. On bare Bochs
 * this is the reference; under hv each NMI makes hv hold it, often in root mode or behind
 * an event it injects, and deliver it when the guest can take it (docs/architecture.md).
 *  - self: the BSP sends NMIs to itself (1 or more CPUs);
 *  - cross: the BSP sends NMIs to the first AP while the AP loops (2 or more CPUs).
 * The BSP waits for each NMI to be counted before it sends the next one, so none merge.
 */
#include "payload.h"

#define APIC_BASE 0xfee00000ull
#define APIC_ID 0x20
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define ICR_NMI 0x4400u       /* delivery mode NMI, level assert, physical destination */
#define ICR_BUSY (1u << 12)   /* delivery status: send pending */
#define SELF_NMIS 400
#define CROSS_NMIS 2000
#define WAIT_LOOPS 1000000
#define MAX_LOST 10          /* then the test stops: something is broken */

struct __attribute__((packed)) dtr {
    UINT16 limit;
    UINT64 base;
};

/* Shared with the handlers below (assembly): counted with LOCK, read by the sender. */
volatile UINT64 nmi_count, gp_count, nmi_resend, nmi_resent;
volatile UINT32 nmi_self_apic; /* where the handler sends its own NMI to */
static volatile UINT64 done;
static volatile UINT64 variant_runs[5];

/* NMI: count, maybe send one more NMI to this CPU (it must wait for this handler's IRET:
 * NMI blocking), run CPUID inside the handler, IRET. #GP: count, skip the 2-byte WRMSR. */
__asm__(".text\n"
        "nmi_entry:\n"
        "  push %rax; push %rbx; push %rcx; push %rdx\n"
        "  lock incq nmi_count(%rip)\n"
        "  cmpq $0, nmi_resend(%rip)\n"
        "  je 1f\n"
        "  decq nmi_resend(%rip)\n"
        "  lock incq nmi_resent(%rip)\n"
        "  movl nmi_self_apic(%rip), %eax\n"
        "  shll $24, %eax\n"
        "  movabsq $0xfee00310, %rbx\n"
        "  movl %eax, (%rbx)\n"
        "  movl $0x4400, -0x10(%rbx)\n"
        "1:\n"
        "  xorl %eax, %eax; cpuid\n"
        "  xorl %eax, %eax; cpuid\n"
        "  pop %rdx; pop %rcx; pop %rbx; pop %rax\n"
        "  iretq\n"
        "gp_entry:\n"
        "  lock incq gp_count(%rip)\n"
        "  addq $2, 8(%rsp)\n"
        "  addq $8, %rsp\n"
        "  iretq\n");
extern char nmi_entry[], gp_entry[];

static volatile UINT32 *apic(UINT32 reg) { return (volatile UINT32 *)(UINTN)(APIC_BASE + reg); }
static UINT32 my_apic_id(void) { return *apic(APIC_ID) >> 24; }

static void send_nmi(UINT32 dest)
{
    *apic(APIC_ICR_HI) = dest << 24;
    *apic(APIC_ICR_LO) = ICR_NMI;
    for (int i = 0; i < 100000 && (*apic(APIC_ICR_LO) & ICR_BUSY); i++)
        __asm__ volatile("pause");
}

/* This CPU's IDT, a copy of the firmware's with the NMI and #GP gates replaced. */
struct idt_copy {
    UINT64 gates[512];
    struct dtr old, mine;
};

static void set_gate(UINT64 *g, int vec, void *fn, UINT16 cs)
{
    UINT64 a = (UINT64)(UINTN)fn;
    g[2 * vec] = (a & 0xffff) | ((UINT64)cs << 16) | (0x8eull << 40) | ((a >> 16 & 0xffff) << 48);
    g[2 * vec + 1] = a >> 32;
}

static void idt_install(struct idt_copy *c)
{
    UINT16 cs;
    __asm__ volatile("sidt %0; mov %%cs, %1" : "=m"(c->old), "=r"(cs));
    UINTN n = ((UINTN)c->old.limit + 1) / 8;
    for (UINTN i = 0; i < 512; i++)
        c->gates[i] = i < n ? ((UINT64 *)(UINTN)c->old.base)[i] : 0;
    set_gate(c->gates, 2, nmi_entry, cs);
    set_gate(c->gates, 13, gp_entry, cs);
    c->mine.limit = sizeof(c->gates) - 1;
    c->mine.base = (UINT64)(UINTN)c->gates;
    __asm__ volatile("lidt %0" ::"m"(c->mine));
}

static void idt_restore(struct idt_copy *c) { __asm__ volatile("lidt %0" ::"m"(c->old)); }

/* One pass of the receiver's loop; v picks where an NMI may land. */
static void variant(UINTN v)
{
    UINT32 a = 0, b, c = 0, d;
    switch (v) {
    case 0: /* plain CPUID */
        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
        break;
    case 1: /* CPUID in the STI shadow */
        __asm__ volatile("pushfq; cli; sti; cpuid; popfq" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
        break;
    case 2: /* CPUID in the MOV SS shadow */
        __asm__ volatile("mov %%ss, %%bx; mov %%bx, %%ss; cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
        break;
    case 3: /* WRMSR to IA32_VMX_BASIC, read-only: #GP (injected by hv, which owns it) */
        __asm__ volatile("wrmsr" ::"a"(0), "d"(0), "c"(0x480u) : "memory");
        break;
    default:
        __asm__ volatile("pause");
    }
    variant_runs[v]++;
}

static BOOLEAN wait_count(UINT64 want)
{
    for (UINTN i = 0; i < WAIT_LOOPS && nmi_count < want; i++)
        __asm__ volatile("pause");
    return nmi_count >= want;
}

static void report(const char *what, UINT64 sent, UINT64 lost_waits)
{
    UINT64 got = nmi_count;
    out("nmi: %s: %llu sent, %llu received (%llu missing, %llu extra), %llu waits timed out", what,
        (unsigned long long)sent, (unsigned long long)got, (unsigned long long)(sent > got ? sent - got : 0),
        (unsigned long long)(got > sent ? got - sent : 0), (unsigned long long)lost_waits);
}

/* Self NMIs on the BSP: each followed by one variant; every 8th NMI's handler sends one
 * more, which must wait for that handler's IRET. */
static void self_test(void)
{
    struct idt_copy c;
    UINT64 timeouts = 0;
    nmi_count = gp_count = nmi_resent = nmi_resend = 0;
    nmi_self_apic = my_apic_id();
    idt_install(&c);
    for (UINTN i = 0; i < SELF_NMIS && timeouts < MAX_LOST; i++) {
        UINT64 want = nmi_count + 1;
        if (i % 8 == 7) {
            nmi_resend = 1;
            want++;
        }
        send_nmi(nmi_self_apic);
        variant(i % 4);
        timeouts += !wait_count(want);
        nmi_resend = 0;
    }
    idt_restore(&c);
    report("self", SELF_NMIS + nmi_resent, timeouts);
    out("nmi: self: %llu sent by the NMI handler, %llu #GP delivered", (unsigned long long)nmi_resent,
        (unsigned long long)gp_count);
}

static VOID EFIAPI receiver(VOID *arg)
{
    struct idt_copy *c = arg;
    idt_install(c);
    for (UINTN i = 0; !done; i++)
        variant(i % 5);
    idt_restore(c);
}

static void cross_test(void)
{
    static struct idt_copy ap_idt;
    MP_SERVICES *mp;
    UINTN ap;
    MP_PROCESSOR_INFO info;
    EFI_EVENT ev;
    if (!first_ap(&mp, &ap, &info)) {
        out("nmi: cross: skipped (one CPU)");
        return;
    }
    if (EFI_ERROR(uefi_call_wrapper(BS->CreateEvent, 5, 0, 0, NULL, NULL, &ev))) {
        out("nmi: cross: no event");
        return;
    }
    nmi_count = gp_count = 0;
    nmi_resend = 0;
    done = 0;
    for (int i = 0; i < 5; i++)
        variant_runs[i] = 0;
    if (EFI_ERROR(mp->StartupThisAP(mp, receiver, ap, ev, 0, &ap_idt, NULL))) {
        out("nmi: cross: StartupThisAP failed");
        return;
    }
    while (!variant_runs[4]) /* the receiver runs every variant once before the first NMI */
        __asm__ volatile("pause");
    UINT64 timeouts = 0, sent = 0;
    for (; sent < CROSS_NMIS && timeouts < MAX_LOST; sent++) {
        UINT64 want = nmi_count + 1;
        send_nmi((UINT32)info.ProcessorId);
        timeouts += !wait_count(want);
    }
    report("cross", sent, timeouts);
    /* Burst: NMIs back to back, at whatever point of the receiver's loop they land (NMIs
     * sent while one is held and one in service merge: fewer may arrive, never more). */
    UINT64 before = nmi_count;
    for (UINTN i = 0; i < CROSS_NMIS; i++) {
        send_nmi((UINT32)info.ProcessorId);
        for (UINTN j = 0; j < (i * 7919) % 97; j++)
            __asm__ volatile("pause");
    }
    for (UINTN i = 0; i < WAIT_LOOPS; i++)
        __asm__ volatile("pause");
    UINT64 burst = nmi_count - before;
    out("nmi: burst: %u sent back to back, %s received", CROSS_NMIS,
        burst == 0 ? "none" : burst <= CROSS_NMIS ? "at most that many" : "MORE than that many");
    done = 1;
    while (uefi_call_wrapper(BS->CheckEvent, 1, ev) == EFI_NOT_READY)
        __asm__ volatile("pause");
    uefi_call_wrapper(BS->CloseEvent, 1, ev);
    BOOLEAN all = TRUE;
    for (int i = 0; i < 5; i++)
        all = all && variant_runs[i] > 0;
    out("nmi: cross: the receiver ran %s", all ? "every variant" : "NOT every variant");
}

void nmi_test(void)
{
    self_test();
    cross_test();
}
