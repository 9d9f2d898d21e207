/* Scenario 3: VM exits caused by L2, one control at a time (SDM Vol. 3C ch. 26 and 28.2).
 * Each line: exit reason, qualification, instruction length where defined (SDM 28.2.4),
 * interruption/IDT-vectoring info where valid, and L2's RIP as an offset in its script. */
#include "l1.h"

static struct exit e;

static BOOLEAN is(u32 reason) { return e.st == ST_OK && e.reason == reason; }

/* Two exits of one reason, each instruction skipped by L1, then L2's closing VMCALL. */
static void two_exits(const char *tag, u32 reason)
{
    for (int k = 0; k < 2; k++) {
        l2_run(&e);
        pr_exit(tag, &e, F_LEN);
        if (!is(reason))
            return;
        l2_skip(&e);
    }
    l2_run(&e);
    finish(tag, &e);
}

static BOOLEAN setup(const char *tag, const char *script, u32 proc, BOOLEAN supported)
{
    if (!supported || !allowed(proc, cap.proc)) {
        out("%s: not supported", tag);
        return FALSE;
    }
    vmcs_init(0, script);
    set_proc(proc);
    return TRUE;
}

/* An instruction that exits once: print, step over it, run to the final VMCALL. */
static void once(const char *tag, const char *script, u32 proc, u32 reason, unsigned flags)
{
    if (!setup(tag, script, proc, TRUE))
        return;
    l2_run(&e);
    pr_exit(tag, &e, flags);
    if (is(reason) && reason != R_VMCALL) {
        l2_skip(&e);
        l2_run(&e);
        finish(tag, &e);
    }
}

static void t_io(void)
{
    once("exits: out 0x80, unconditional I/O exiting", l2_out80, P_UNCOND_IO, R_IO, F_LEN);
    if (!setup("exits: out 0x80, I/O bitmap {0x80}", l2_out80, P_IO_BITMAPS, cap.io_bitmaps))
        return;
    m.io_a[0x80 / 8] |= 1u << (0x80 % 8); /* SDM 25.6.4: bitmap A covers ports 0-0x7fff */
    l2_run(&e);
    pr_exit("exits: out 0x80, I/O bitmap {0x80}", &e, F_LEN);
    m.io_a[0x80 / 8] = 0;
    vmcs_init(0, l2_io2);
    set_proc(P_IO_BITMAPS | P_UNCOND_IO); /* the bitmaps win over unconditional exiting */
    m.io_b[(0x9000 - 0x8000) / 8] |= 1u << (0x9000 % 8);
    l2_run(&e);
    pr_exit("exits: in from dx=0x9000, I/O bitmap {0x9000}", &e, F_LEN);
    m.io_b[(0x9000 - 0x8000) / 8] = 0;
    if (is(R_IO)) {
        l2_skip(&e);
        l2_run(&e);
        finish("exits: in from dx=0x9000", &e);
    }
}

static void t_msr(void)
{
    const char *tag = "exits: msr bitmap {r 0x174, w 0x174}";
    if (setup(tag, l2_msr, P_MSR_BITMAPS, cap.msr_bitmaps)) {
        /* SDM 25.6.9: read-low at 0, write-low at 2048 (MSRs 0-0x1fff). */
        m.msr_bitmap[0x174 / 8] |= 1u << (0x174 % 8);
        m.msr_bitmap[2048 + 0x174 / 8] |= 1u << (0x174 % 8);
        l2_run(&e);
        pr_exit(tag, &e, F_LEN);
        if (is(R_RDMSR)) {
            out("%s: rdmsr ecx 0x%llx", tag, l2r.rcx);
            l2_skip(&e);
            l2_run(&e);
            pr_exit(tag, &e, F_LEN);
        }
        if (is(R_WRMSR)) {
            out("%s: wrmsr ecx 0x%llx edx:eax 0x%llx:0x%llx", tag, l2r.rcx, l2r.rdx, l2r.rax);
            l2_skip(&e);
            l2_run(&e);
            finish(tag, &e);
            if (is(R_VMCALL))
                out("%s: L2 read SYSENTER_ESP 0x%llx, guest SYSENTER_CS 0x%llx", tag, l2r.rax,
                    vr(G_SYSENTER_CS));
        }
        m.msr_bitmap[0x174 / 8] = 0;
        m.msr_bitmap[2048 + 0x174 / 8] = 0;
    }
    tag = "exits: msr without bitmap";
    setup(tag, l2_msr, 0, TRUE); /* every RDMSR/WRMSR exits (SDM 26.1.3) */
    for (int k = 0; k < 4; k++) {
        l2_run(&e);
        if (!is(R_RDMSR) && !is(R_WRMSR))
            break;
        pr_exit(tag, &e, F_LEN);
        out("%s: ecx 0x%llx", tag, l2r.rcx);
        l2_skip(&e);
    }
    finish(tag, &e);
}

static void t_cr(void)
{
    const char *tag = "exits: mov to cr0, TS owned by L1";
    setup(tag, l2_cr0, 0, TRUE);
    vw(CR0_MASK, 8); /* SDM 26.1.3: MOV to CR0 exits if a masked bit differs from the shadow */
    vw(CR0_SHADOW, 0);
    vw(G_CR0, read_cr0() | 8);
    l2_run(&e);
    pr_exit(tag, &e, F_LEN);
    if (is(R_CR)) {
        l2_skip(&e);
        l2_run(&e);
        finish(tag, &e);
        if (is(R_VMCALL)) /* MOV from CR0 reads masked bits from the shadow */
            out("%s: L2 read cr0.TS %llu, guest cr0.TS %llu", tag, l2r.rax >> 3 & 1, vr(G_CR0) >> 3 & 1);
    }
    tag = "exits: cr4 VMXE owned by L1, shadow 0";
    setup(tag, l2_cr4, 0, TRUE);
    vw(CR4_MASK, 1u << 13); /* the usual nested setup: L2 sees CR4.VMXE = 0 */
    vw(CR4_SHADOW, 0);
    l2_run(&e);
    finish(tag, &e);
    if (is(R_VMCALL))
        out("%s: L2 read VMXE %llu twice %llu, guest CR4.VMXE %llu", tag, l2r.rax >> 13 & 1,
            l2r.rbx >> 13 & 1, vr(G_CR4) >> 13 & 1);
    tag = "exits: cr3 load/store exiting";
    setup(tag, l2_cr3, P_CR3_LOAD | P_CR3_STORE, TRUE);
    l2_run(&e);
    pr_exit(tag, &e, F_LEN);
    if (is(R_CR)) {
        l2r.rcx = vr(G_CR3); /* emulate the MOV from CR3 */
        l2_skip(&e);
        l2_run(&e);
        pr_exit(tag, &e, F_LEN);
        if (is(R_CR)) {
            l2_skip(&e);
            l2_run(&e);
            finish(tag, &e);
        }
    }
    tag = "exits: cr8 load/store exiting";
    if (setup(tag, l2_cr8, P_CR8_LOAD | P_CR8_STORE, cap.cr8_exit))
        two_exits(tag, R_CR);
}

static void t_exc(void)
{
    const char *tag = "exits: exceptions #UD #BP #GP #PF in the bitmap";
    setup(tag, l2_exc, 0, TRUE);
    vw(EXC_BITMAP, (1u << 6) | (1u << 3) | (1u << 13) | (1u << 14));
    l2_run(&e); /* ud2: a fault, no instruction length (SDM 28.2.4) */
    pr_exit(tag, &e, 0);
    if (!is(R_EXC))
        return;
    vw(G_RIP, e.rip + 2);
    l2_run(&e); /* int3: a software exception, length defined */
    pr_exit(tag, &e, F_LEN);
    if (!is(R_EXC))
        return;
    l2_skip(&e);
    l2_run(&e);
    pr_exit(tag, &e, 0);
    if (!is(R_EXC))
        return;
    vw(G_RIP, e.rip + 3);
    l2_run(&e); /* #PF: qualification = the linear address (SDM 28.2.1) */
    pr_exit(tag, &e, 0);
    if (!is(R_EXC))
        return;
    vw(G_RIP, e.rip + 3);
    l2_run(&e);
    finish(tag, &e);
}

static void t_windows(void)
{
    const char *tag = "exits: interrupt window, IF=1";
    setup(tag, l2_vmcall, P_INTR_WIN, TRUE);
    vw(G_RFLAGS, 0x202);
    l2_run(&e); /* before the first instruction (SDM 26.7.5) */
    pr_exit(tag, &e, 0);
    if (is(R_INTR_WIN)) {
        set_proc(0);
        l2_run(&e);
        finish(tag, &e);
    }
    tag = "exits: interrupt window after sti";
    setup(tag, l2_sti, P_INTR_WIN, TRUE);
    l2_run(&e); /* after the instruction following STI (blocking by STI) */
    pr_exit(tag, &e, 0);
    if (is(R_INTR_WIN)) {
        out("%s: interruptibility 0x%x", tag, e.intrst);
        set_proc(0);
        l2_run(&e);
        finish(tag, &e);
    }
    tag = "exits: nmi window";
    if (!setup(tag, l2_vmcall, P_NMI_WIN, cap.nmi_window))
        return;
    set_pin(PIN_NMI_EXIT | PIN_VNMI);
    l2_run(&e);
    pr_exit(tag, &e, 0);
    tag = "exits: nmi window, virtual-NMI blocking until iret";
    setup(tag, l2_iret, P_NMI_WIN, TRUE);
    set_pin(PIN_NMI_EXIT | PIN_VNMI);
    vw(G_INTR_STATE, 8); /* blocking by NMI = virtual-NMI blocking (SDM 25.4.2) */
    l2_run(&e);
    pr_exit(tag, &e, 0);
    if (is(R_NMI_WIN)) {
        out("%s: interruptibility 0x%x", tag, e.intrst);
        set_proc(0);
        l2_run(&e);
        finish(tag, &e);
    }
}

static void t_timer(void)
{
    const char *tag = "exits: preemption timer 0";
    if (!setup(tag, l2_vmcall, 0, cap.timer))
        return;
    vw(G_TIMER, 0); /* expires before the first instruction (SDM 26.5.1) */
    l2_run(&e);
    pr_exit(tag, &e, 0);
    /* Expired -> 0 is saved. (Not with an initial 0: Bochs then saves a stale value.) */
    tag = "exits: preemption timer 100, saved";
    if (setup(tag, l2_spin, 0, cap.save_timer)) {
        set_exit_ctls(X_SAVE_TIMER);
        vw(G_TIMER, 100);
        l2_run(&e);
        pr_exit(tag, &e, F_NORIP);
        out("%s: timer value after exit %llu", tag, vr(G_TIMER));
    }
    tag = "exits: preemption timer 1000, L2 spinning";
    setup(tag, l2_spin, 0, TRUE);
    vw(G_TIMER, 1000);
    l2_run(&e);
    pr_exit(tag, &e, F_NORIP); /* where in the loop depends on timing: only "in the loop" */
    out("%s: rip in the loop %s", tag, e.st == ST_OK && e.rip - PA(l2_spin) < 5 ? "yes" : "no");
    /* The timer counts only while L2 runs (SDM 26.5.1) and L1 sees no exit in between, so
     * 1000 ticks end a loop of 2000 OUTs early (after about 100 on Bochs), however many exits
     * a hypervisor below L1 takes for them: it must resume L2 with what is left each time. */
    tag = "exits: preemption timer 1000, L2 doing 2000 OUTs L1 does not intercept";
    if (setup(tag, l2_out_loop, 0, cap.timer)) {
        vw(G_TIMER, 1000);
        l2_run(&e);
        pr_exit(tag, &e, F_NORIP);
        out("%s: OUTs left %s", tag, e.st == ST_OK && is(R_TIMER) && l2r.rcx > 0 ? "some" : "none");
    }
}

static void t_mtf(void)
{
    const char *tag = "exits: monitor trap flag";
    if (!setup(tag, l2_nops, P_MTF, cap.mtf))
        return;
    for (int k = 0; k < 2; k++) { /* after each instruction, RIP past it (SDM 26.5.2) */
        l2_run(&e);
        pr_exit(tag, &e, 0);
        if (!is(R_MTF))
            return;
    }
    set_proc(0);
    l2_run(&e);
    finish(tag, &e);
}

/* RDTSC without exiting returns TSC + offset (SDM 26.6.5); only the relation is printed. */
static void t_tsc_offset(void)
{
    const char *tag = "exits: rdtsc with TSC offset 2^60";
    if (!setup(tag, l2_rdtsc, P_TSC_OFFSET, TRUE))
        return;
    vw(TSC_OFFSET, 1ull << 60);
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    u64 before = lo | (u64)hi << 32;
    l2_run(&e);
    finish(tag, &e);
    if (!is(R_VMCALL))
        return;
    u64 d = ((l2r.rax & 0xffffffff) | l2r.rdx << 32) - before;
    out("%s: L2 TSC - L1 TSC in [2^60, 2^60 + 2^40): %s", tag,
        d >= 1ull << 60 && d < (1ull << 60) + (1ull << 40) ? "yes" : "no");
}

static void t_movdr(void)
{
    const char *tag = "exits: mov dr";
    if (setup(tag, l2_movdr, P_MOV_DR, TRUE))
        two_exits(tag, R_DR);
}

/* VMX instructions in L2 always exit (no VMCS shadowing); the instruction information
 * (SDM 28.2.5, Table 28-13) is printed masked to the bits defined for the operand form. */
static void t_vmxinsn(void)
{
    const char *tag = "exits: vmread and vmptrst in L2";
    setup(tag, l2_vmxinsn, 0, TRUE);
    l2_run(&e);
    if (is(R_VMREAD))
        e.info &= 0xf0000478; /* register form: reg1, bit 10, reg2 */
    pr_exit(tag, &e, F_LEN | F_INFO);
    if (!is(R_VMREAD))
        return;
    l2_skip(&e);
    l2_run(&e);
    if (is(R_VMPTRST))
        e.info &= 0x0fff8783; /* memory form: scale, address size, segment, index, base */
    pr_exit(tag, &e, F_LEN | F_INFO);
    if (!is(R_VMPTRST))
        return;
    l2_skip(&e);
    l2_run(&e);
    finish(tag, &e);
}

void s_exits(void)
{
    once("exits: vmcall", l2_vmcall, 0, R_VMCALL, F_LEN);
    once("exits: cpuid", l2_cpuid, 0, R_CPUID, F_LEN);
    once("exits: hlt", l2_hlt, P_HLT, R_HLT, F_LEN | F_ACT);
    t_io();
    t_msr();
    t_cr();
    t_exc();
    t_windows();
    t_timer();
    t_mtf();
    once("exits: rdtsc", l2_rdtsc, P_RDTSC, R_RDTSC, F_LEN);
    t_tsc_offset();
    once("exits: invlpg", l2_invlpg, P_INVLPG, R_INVLPG, F_LEN);
    once("exits: pause", l2_pause, P_PAUSE, R_PAUSE, F_LEN);
    t_movdr();
    t_vmxinsn();
}
