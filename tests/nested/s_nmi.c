/*
 * Scenario 11: NMIs while L2 runs. L2 sends NMIs to its own local APIC (nmi.asm); L1 sets
 * "NMI exiting" and "virtual NMIs" (SDM Vol. 3C 24.6.1) or not, injects NMIs, asks for the
 * NMI window. What is checked, per the SDM:
 *  - with NMI exiting, an NMI is a VM exit (reason 0, interruption info 0x80000202) right
 *    after the instruction that sent it (25.2), and L1 is NMI-blocked until its next IRET
 *    (an NMI L1 sends itself waits for it);
 *  - without, L2's own IDT takes it; a second NMI waits for L2's IRET (6.7.1); with blocking
 *    by NMI when L2 exits, L1 is blocked until its IRET (26.6.1: until IRET);
 *  - L2 NMI-blocked at entry: with virtual NMIs the NMI exits anyway; without, IRET does not
 *    end the blocking while NMI exiting is 1 (25.3, 26.6.1): no exit until L2's VMCALL;
 *  - NMI injection (26.5.1.1), with blocking by NMI when L1 lacks virtual NMIs (legal:
 *    26.3.1.5 checks it only with virtual NMIs); an NMI pending at that entry exits right
 *    after the injected event's delivery (virtual-NMI blocking does not block NMIs, 26.6.1);
 *  - the NMI-window exit L1 asked for comes after L2's IRET (25.2);
 *  - 200 NMIs from L2: each one NMI exit to L1 (or one run of L2's handler).
 */
#include "l1.h"

extern char l1_nmi_handler[], l2_nmi_handler[], l2_nmi_handler_sent[], l2_nmi_self[], l2_nmi_self_sent[],
    l2_nmi_iret[], l2_nmi_iret_sent[], l2_nmi_iret_after[], l2_nmi_many[], l2_nmi_many_sent[];
extern volatile u64 nmi_apic, l1_nmi_count, l2_nmi_count, l2_nmi_resend, l2_nmi_inside;
extern volatile u32 nmi_dest;
void l1_iret_self(void);

static struct exit e;

static BOOLEAN is(u32 reason) { return e.st == ST_OK && e.reason == reason; }

static void set_gate(u8 *idt, unsigned v, const void *fn)
{
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    u64 off = PA(fn), *g = (u64 *)(idt + v * 16);
    g[0] = (off & 0xffff) | ((u64)cs << 16) | (0x8eull << 40) | ((off >> 16 & 0xffff) << 48);
    g[1] = off >> 32;
}

/* One NMI to L1 itself; enough instructions after it for the NMI to be taken if it can. */
static void l1_send_nmi(void)
{
    volatile u32 *a = (volatile u32 *)(UINTN)nmi_apic;
    a[0x310 / 4] = nmi_dest;
    a[0x300 / 4] = 0x4400;
    for (int i = 0; i < 2000; i++)
        __asm__ volatile("pause" ::: "memory");
}

/* Is L1 NMI-blocked? It sends itself an NMI: the count before and after its own IRET. */
static void l1_blocked(const char *tag)
{
    l1_nmi_count = 0;
    l1_send_nmi();
    u64 before = l1_nmi_count;
    l1_iret_self();
    out("%s: L1's own NMI: %llu before its IRET, %llu after", tag, before, l1_nmi_count);
}

/* Only what L1 sees after its IRET (an NMI it sent itself): where L1's blocking after the
 * exit differs between the SDM and Bochs (docs/testing.md), the line shows only that the
 * NMI arrives, once. */
static void l1_nmi_after_iret(const char *tag)
{
    l1_nmi_count = 0;
    l1_send_nmi();
    l1_iret_self();
    out("%s: L1's own NMI: %llu after its IRET", tag, l1_nmi_count);
}

static void pr_state(const char *tag)
{
    if (e.st == ST_OK && !(e.reason & R_ENTRY_FAIL))
        out("%s: idt-vectoring 0x%x interruptibility 0x%x", tag, e.idt, e.intrst);
}

static void prepare(const char *script, u32 pin)
{
    vmcs_init(0, script);
    set_pin(pin);
    l2_nmi_count = l2_nmi_resend = l2_nmi_inside = 0;
}

/* To L2's closing VMCALL; the count of L2's handler. */
static void to_vmcall(const char *tag)
{
    l2_run(&e);
    finish(tag, &e);
    if (is(R_VMCALL) && l2r.r15 != L2_ISR_MARK)
        out("%s: L2 reached its VMCALL, L2's handler ran %llu times", tag, l2_nmi_count);
}

/* 1: L2's NMI is an NMI exit to L1, which is then NMI-blocked until its IRET. */
static void t_exit(const char *tag, u32 pin)
{
    prepare(l2_nmi_self, pin);
    l2_run(&e);
    e.base = l2_nmi_self_sent; /* +0: right after the ICR write */
    pr_exit(tag, &e, 0);
    pr_state(tag);
    if (!is(R_EXC))
        return;
    l1_blocked(tag);
    to_vmcall(tag);
}

/* L2 enters with blocking by NMI, sends itself an NMI, IRETs, VMCALLs. */
static void t_blocked(const char *tag, u32 pin)
{
    prepare(l2_nmi_iret, pin);
    vw(G_INTR_STATE, 8);
    l2_run(&e);
    e.base = l2_nmi_iret_sent;
    pr_exit(tag, &e, 0);
    pr_state(tag);
    if (is(R_EXC)) { /* virtual NMIs: the NMI exits, virtual-NMI blocking stays */
        l1_blocked(tag);
        l2_run(&e);
        e.base = l2_nmi_iret_sent;
        pr_exit(tag, &e, 0);
        pr_state(tag);
    } else if (is(R_VMCALL)) { /* without: blocked until the VM exit, IRET or not */
        l1_nmi_after_iret(tag);
    }
}

/* 2: no NMI exiting: L2's handler takes it; the NMI it sends itself waits for its IRET. */
static void t_l2_idt(void)
{
    const char *tag = "nmi: L2 self-NMI, no NMI exiting";
    prepare(l2_nmi_self, 0);
    l2_nmi_resend = 1;
    to_vmcall(tag);
    out("%s: the handler's own NMI came after its IRET: %s", tag, l2_nmi_inside == 1 ? "yes" : "no");
    pr_state(tag);

    /* L2's handler is the VMCALL stub: L2 exits NMI-blocked, and L1 stays blocked. */
    tag = "nmi: L2 exits from its NMI handler, no NMI exiting";
    prepare(l2_nmi_self, 0);
    set_gate(m.l2_idt, 2, l2_isr_table + 2 * 16);
    l2_run(&e);
    finish(tag, &e);
    pr_state(tag);
    if (is(R_VMCALL))
        l1_blocked(tag);
    set_gate(m.l2_idt, 2, l2_nmi_handler);
}

/* 3: the NMI window L1 asked for opens at L2's IRET from the NMI L1 injected. */
static void t_window(void)
{
    const char *tag = "nmi: injected NMI with NMI-window exiting";
    for (int resend = 0; resend < 2; resend++) {
        prepare(l2_nops, PIN_NMI_EXIT | PIN_VNMI);
        set_proc(P_NMI_WIN);
        vw(ENTRY_INTR, 0x80000202);
        l2_nmi_resend = (u64)resend;
        l2_run(&e);
        if (resend) { /* L2's handler sends an NMI: an NMI exit first, inside the handler */
            tag = "nmi: injected NMI with NMI-window exiting, an NMI from L2's handler";
            e.base = l2_nmi_handler_sent;
            pr_exit(tag, &e, 0);
            pr_state(tag);
            if (!is(R_EXC))
                continue;
            l1_blocked(tag);
            l2_run(&e);
        }
        pr_exit(tag, &e, 0);
        pr_state(tag);
        out("%s: L2's handler ran %llu times", tag, l2_nmi_count);
        if (!is(R_NMI_WIN))
            continue;
        set_proc(0);
        to_vmcall(tag);
    }
}

/* 4: NMI injection, with and without virtual NMIs, blocking by NMI in vmcs12 or not. */
static void t_inject(void)
{
    static const struct { u32 pin, intr; const char *tag; } c[] = {
        {0, 0, "nmi: inject NMI, no NMI exiting"},
        {0, 8, "nmi: inject NMI, no NMI exiting, blocking by NMI"},
        {PIN_NMI_EXIT, 0, "nmi: inject NMI, NMI exiting"},
        {PIN_NMI_EXIT, 8, "nmi: inject NMI, NMI exiting, blocking by NMI"},
        {PIN_NMI_EXIT | PIN_VNMI, 0, "nmi: inject NMI, virtual NMIs"},
    };
    for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if ((c[i].pin & PIN_VNMI) && !cap.vnmi) {
            out("%s: not supported", c[i].tag);
            continue;
        }
        prepare(l2_nops, c[i].pin);
        vw(ENTRY_INTR, 0x80000202);
        vw(G_INTR_STATE, c[i].intr);
        l2_run(&e);
        e.base = l2_nops;
        pr_exit(c[i].tag, &e, 0);
        pr_state(c[i].tag);
        out("%s: L2's handler ran %llu times", c[i].tag, l2_nmi_count);
        l1_iret_self(); /* whatever blocking the exit left L1 (docs/testing.md) */
    }
}

/* 4, continued: an NMI pending when L1 enters L2 with an event to inject. L1 gets it
 * blocked (after an NMI exit, before its IRET), then enters. */
static void t_pending(const char *tag, u32 inj, const char *base)
{
    prepare(l2_nmi_self, PIN_NMI_EXIT | PIN_VNMI);
    l2_run(&e);
    if (!is(R_EXC)) {
        pr_exit(tag, &e, 0);
        return;
    }
    l1_nmi_count = 0;
    l1_send_nmi(); /* pending: L1 is NMI-blocked */
    prepare(l2_nops, PIN_NMI_EXIT | PIN_VNMI);
    vw(ENTRY_INTR, inj);
    vw(G_RFLAGS, 0x202);
    l2_run(&e);
    e.base = base;
    pr_exit(tag, &e, 0);
    pr_state(tag);
    out("%s: L1's handler ran %llu times, L2's %llu", tag, l1_nmi_count, l2_nmi_count);
    if (is(R_EXC))
        l1_blocked(tag);
    else
        l1_iret_self();
}

/* 5: many NMIs, each one NMI exit (or one run of L2's handler). */
static void t_many(const char *tag, u32 pin)
{
    prepare(l2_nmi_many, pin);
    l2r.rbx = 200;
    unsigned exits = 0, at = 0;
    for (int k = 0; k < 1000; k++) {
        l2_run(&e);
        if (!is(R_EXC))
            break;
        exits++;
        at += e.rip == PA(l2_nmi_many_sent) && e.intr == 0x80000202 && !(e.idt >> 31);
    }
    finish(tag, &e);
    out("%s: %u NMI exits, %u of them right after the ICR write; L2's handler ran %llu times, %llu NMIs left to send",
        tag, exits, at, l2_nmi_count, l2r.rbx);
    l1_iret_self();
}

void s_nmi(void)
{
    u64 ab = rdmsr(0x1b); /* IA32_APIC_BASE: enabled, not x2APIC (SDM Vol. 3A 10.4.4) */
    if (!(ab & (1u << 11)) || (ab & (1u << 10))) {
        out("nmi: no xAPIC");
        return;
    }
    nmi_apic = ab & 0xfffff000ull;
    nmi_dest = ((volatile u32 *)(UINTN)nmi_apic)[0x20 / 4] & 0xff000000u; /* APIC ID, bits 31:24 */
    set_gate(m.idt, 2, l1_nmi_handler);
    set_gate(m.l2_idt, 2, l2_nmi_handler);

    t_exit("nmi: L2 self-NMI, NMI exiting", PIN_NMI_EXIT);
    if (cap.vnmi) {
        t_exit("nmi: L2 self-NMI, NMI exiting and virtual NMIs", PIN_NMI_EXIT | PIN_VNMI);
        t_blocked("nmi: L2 virtual-NMI-blocked at entry", PIN_NMI_EXIT | PIN_VNMI);
    }
    t_blocked("nmi: L2 NMI-blocked at entry, NMI exiting", PIN_NMI_EXIT);
    t_l2_idt();
    if (cap.nmi_window)
        t_window();
    t_inject();
    if (cap.vnmi) {
        t_pending("nmi: NMI pending at an entry injecting an NMI", 0x80000202, l2_nmi_handler);
        t_pending("nmi: NMI pending at an entry injecting interrupt 0x40", 0x80000040, l2_isr_table);
    }
    t_many("nmi: 200 NMIs from L2, NMI exiting", PIN_NMI_EXIT);
    if (cap.vnmi)
        t_many("nmi: 200 NMIs from L2, NMI exiting and virtual NMIs", PIN_NMI_EXIT | PIN_VNMI);
    t_many("nmi: 200 NMIs from L2, no NMI exiting", 0);

    set_gate(m.l2_idt, 2, l2_isr_table + 2 * 16);
    set_gate(m.idt, 2, l1_isr_table + 2 * 16);
}
