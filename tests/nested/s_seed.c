/* Scenarios 6 (MSR lists) and 7 (the seed: GUEST_CR3 written while L2 is halted). */
#include "l1.h"

static struct exit e;

/* 6: VM-entry MSR-load, VM-exit MSR-store and MSR-load (SDM 27.4, 28.4, 28.6) with
 * IA32_KERNEL_GS_BASE, which VMX does not switch by itself. L2 reads and writes it
 * with RDMSR/WRMSR that the (empty) MSR bitmap lets through. */
void s_msrlists(void)
{
    if (!cap.msr_bitmaps) {
        out("msrlist: not supported (needs MSR bitmaps)");
        return;
    }
    u64 saved = rdmsr(0xc0000102);
    u64 *entry_ld = (u64 *)m.msr_area, *exit_st = entry_ld + 32, *exit_ld = entry_ld + 64;
    for (int with_exit_load = 1; with_exit_load >= 0; with_exit_load--) {
        const char *tag = with_exit_load ? "msrlist: entry load, exit store, exit load"
                                         : "msrlist: entry load, exit store";
        wrmsr(0xc0000102, 0x7777000);
        entry_ld[0] = 0xc0000102;
        entry_ld[1] = 0x1111000;
        exit_st[0] = 0xc0000102;
        exit_st[1] = 0;
        exit_ld[0] = 0xc0000102;
        exit_ld[1] = 0x3333000;
        vmcs_init(0, l2_kgs);
        set_proc(P_MSR_BITMAPS);
        vw(ENTRY_MSR_LD_ADDR, PA(entry_ld));
        vw(ENTRY_MSR_LD_CNT, 1);
        vw(EXIT_MSR_ST_ADDR, PA(exit_st));
        vw(EXIT_MSR_ST_CNT, 1);
        vw(EXIT_MSR_LD_ADDR, PA(exit_ld));
        vw(EXIT_MSR_LD_CNT, with_exit_load ? 1 : 0);
        l2_run(&e);
        u64 l1v = rdmsr(0xc0000102);
        wrmsr(0xc0000102, saved);
        finish(tag, &e);
        if (e.st != ST_OK || e.reason != R_VMCALL)
            continue;
        out("%s: L2 read 0x%llx", tag, l2r.r8 | l2r.r9 << 32);
        out("%s: exit store area holds 0x%llx", tag, exit_st[1]);
        out("%s: L1 reads 0x%llx after the exit", tag, l1v);
    }
    /* The exit store list stores what RDMSR returns, for MSRs a VMM emulates too (SDM 28.4). */
    static const struct { u32 msr; const char *name; } st[] = {
        {0x3a, "IA32_FEATURE_CONTROL"}, {0x480, "IA32_VMX_BASIC"}, {0xc0000102, "IA32_KERNEL_GS_BASE"}};
    vmcs_init(0, l2_vmcall);
    for (unsigned i = 0; i < 3; i++) {
        exit_st[2 * i] = st[i].msr;
        exit_st[2 * i + 1] = 0x5a5a;
    }
    vw(EXIT_MSR_ST_ADDR, PA(exit_st));
    vw(EXIT_MSR_ST_CNT, 3);
    l2_run(&e);
    pr_exit("msrlist: exit store", &e, F_LEN);
    for (unsigned i = 0; i < 3; i++)
        out("msrlist: exit store of %s: %s", st[i].name,
            exit_st[2 * i + 1] == rdmsr(st[i].msr) ? "what RDMSR reads" : "not what RDMSR reads");
    for (int i = 0; i < 96; i++)
        entry_ld[i] = 0;

    /* Without "load IA32_EFER" on exit only LME/LMA change (SDM 28.5.1): EFER.SCE stays L2's. */
    u64 efer = rdmsr(0xc0000080);
    if (!allowed(E_LOAD_EFER, cap.entry)) {
        out("msrlist: efer: load IA32_EFER not offered");
        return;
    }
    /* The same after VM-entry failures (SDM 27.8): L1's EFER for one on guest state (checked
     * before it is loaded), L2's for one in MSR loading (after). */
    static const char *const how[] = {"an exit", "a guest-state entry failure", "an MSR-loading entry failure"};
    for (unsigned k = 0; k < 3; k++) {
        vmcs_init(0, l2_vmcall);
        vw(ENTRY_CTLS, adj(E_IA32E | E_LOAD_EFER, cap.entry));
        vw(G_EFER, efer ^ 1);
        if (k == 1)
            vw(G_RFLAGS, 0);
        if (k == 2) {
            entry_ld[0] = 0x808; /* x2APIC TPR: never loadable (SDM 27.4) */
            entry_ld[1] = 0;
            vw(ENTRY_MSR_LD_ADDR, PA(entry_ld));
            vw(ENTRY_MSR_LD_CNT, 1);
        }
        u32 x = (u32)vr(EXIT_CTLS);
        l2_run(&e);
        u64 after = rdmsr(0xc0000080);
        wrmsr(0xc0000080, efer);
        pr_exit("msrlist: efer: L2 with EFER.SCE flipped", &e, F_LEN);
        out("msrlist: efer: %s %s load IA32_EFER: L1's EFER.SCE after it is %s", how[k],
            x & X_LOAD_EFER ? "with" : "without", (after & 1) == (efer & 1) ? "L1's" : "L2's");
    }
    entry_ld[0] = 0;
}

static const char *cr3_name(u64 v)
{
    return v == PA(m.pml4_b) ? "B" : v == PA(m.pml4_a) ? "A (stale!)" : "another value";
}

/* Wake L2 from HLT: the preemption timer if there is one (SDM 26.5.1), else an NMI window
 * (SDM 26.7.6), which also ends HLT after VM entry (SDM 27.7.2). */
static BOOLEAN set_wakeup(const char *tag)
{
    if (cap.timer) {
        vw(G_TIMER, 2000);
        out("%s: wake-up by the preemption timer", tag);
        return TRUE;
    }
    if (cap.nmi_window) {
        set_pin(PIN_NMI_EXIT | PIN_VNMI);
        set_proc(P_NMI_WIN);
        out("%s: wake-up by an NMI window", tag);
        return TRUE;
    }
    out("%s: no wake-up source (no preemption timer, no NMI window)", tag);
    return FALSE;
}

static void after_wakeup(const char *tag)
{
    char t[32];
    int i = 0;
    for (const char *p = tag; *p && i < 16; p++)
        t[i++] = *p;
    for (const char *p = ": wake-up"; *p; p++)
        t[i++] = *p;
    t[i] = 0;
    pr_exit(t, &e, F_ACT);
    if (e.st != ST_OK || (e.reason & R_ENTRY_FAIL))
        return;
    out("%s: guest cr3 after wake-up is %s", tag, cr3_name(vr(G_CR3)));
    vw(G_ACTIVITY, 0);
    /* An NMI window is open at once: its exit comes before L2's own HLT ran (SDM 26.7.6), and
     * with nothing left to wake it (no timer) L2 would halt for good: step over the HLT. */
    if (!cap.timer && e.rip == PA(l2_seed_hlt))
        vw(G_RIP, e.rip + 1);
    if (cap.timer)
        vw(G_TIMER, watchdog);
    set_pin(0);
    set_proc(0);
    l2_run(&e); /* L2: mov rax, cr3; vmcall */
    finish(tag, &e);
    if (e.st == ST_OK && e.reason == R_VMCALL && l2r.r15 != L2_ISR_MARK)
        out("%s: L2 reads cr3 %s", tag, cr3_name(l2r.rax));
}

/* 7: L2 runs on A and exits (CPUID); L1 writes GUEST_CR3 = B and puts L2 into HLT;
 * after the wake-up exit GUEST_CR3 must still be B, and L2 must run on B. */
void s_seed(void)
{
    const char *tag = "seed";
    if (!cap.hlt_state)
        out("%s: HLT activity state not supported, trying anyway", tag);
    vmcs_init(0, l2_seed);
    l2_run(&e);
    pr_exit("seed: first exit", &e, F_LEN);
    if (e.st != ST_OK || e.reason != R_CPUID)
        return;
    out("seed: guest cr3 at the first exit is %s", e.st == ST_OK && vr(G_CR3) == PA(m.pml4_a) ? "A" : "not A");
    vw(G_CR3, PA(m.pml4_b));
    vw(G_ACTIVITY, 1); /* HLT (SDM 25.4.2), HLT exiting off */
    l2_skip(&e);
    if (!set_wakeup(tag))
        return;
    l2_run(&e);
    after_wakeup("seed");

    /* The same with L2 executing HLT itself (HLT exiting off). */
    vmcs_init(0, l2_seed);
    l2_run(&e);
    if (e.st != ST_OK || e.reason != R_CPUID) {
        pr_exit("seed-hlt: first exit", &e, F_LEN);
        return;
    }
    vw(G_CR3, PA(m.pml4_b));
    vw(G_RIP, PA(l2_seed_hlt));
    if (!set_wakeup("seed-hlt"))
        return;
    l2_run(&e);
    after_wakeup("seed-hlt");
}
