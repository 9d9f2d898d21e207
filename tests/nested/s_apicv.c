/*
 * Scenario 13: APIC virtualization (SDM chapter 29), each part only where IA32_VMX_* offers
 * it ("not supported" otherwise). L2 runs without L1's EPT; the virtual-APIC page and the
 * APIC-access page are pages of L1's RAM (apicv_alloc). Printed: what L2 reads through CR8
 * and the APIC-access page, VTPR as the CPU leaves it, the VM-entry check on the TPR
 * threshold, and the exits with their qualifications (TPR below threshold 43: trap-like,
 * after the instruction; APIC access 44: fault-like, offset and access type); then, with
 * virtual-interrupt delivery, a virtual interrupt delivered from RVI, the virtualized EOI exit
 * (45), an APIC-write exit (56), and a posted interrupt whose notification arrives in L2
 * (PIR -> VIRR -> delivered): L2's vector, the guest interrupt status, VISR/VIRR, the PID.
 */
#include "l1.h"

#define P_TPR_SHADOW (1u << 21)
#define P2_VAPIC (1u << 0)
#define VAPIC_ADDR 0x2012
#define APIC_ACCESS 0x2014
#define TPR_THRESHOLD 0x401c
#define P2_APIC_REG (1u << 8)
#define P2_VID (1u << 9)
#define PIN_POSTED (1u << 7)
#define X_ACK_INTR (1u << 15)
#define POSTED_NV 0x0002
#define POSTED_DESC 0x2016
#define EOI_EXIT1 0x201e
#define G_INTR_STATUS 0x0810
#define R_TPR_BELOW 43
#define R_APIC_ACCESS 44

extern char l2_av_rd80[], l2_av_wr80[], l2_av_rd20[], l2_av_wr300[], l2_av_eoi[];
static u8 *vapic, *access, *pid;
static struct exit e;

void apicv_alloc(void)
{
    EFI_PHYSICAL_ADDRESS a = 0xffffffff;
    if (!EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, 4, &a))) {
        vapic = (u8 *)(UINTN)a;
        access = vapic + 4096;
        pid = vapic + 2 * 4096;
        for (int i = 0; i < 4 * 4096; i++)
            vapic[i] = 0;
    }
}

static u32 vreg(unsigned off) { return *(volatile u32 *)(vapic + off); }

/* A VMCS for L2 at script with "use TPR shadow" (and virtualize APIC accesses if access_too),
 * VTPR = vtpr (the rest of the page zero), the TPR threshold, RBX = the APIC-access page. */
static void setup(const char *script, BOOLEAN access_too, u32 vtpr, u32 threshold)
{
    for (int i = 0; i < 4096; i++)
        vapic[i] = 0;
    *(volatile u32 *)(vapic + 0x80) = vtpr;
    vmcs_init(0, script);
    set_proc(P_TPR_SHADOW | (access_too ? P_SECONDARY : 0));
    if (access_too) {
        vw(PROC2_CTLS, adj(P2_VAPIC, cap.proc2));
        vw(APIC_ACCESS, PA(access));
    }
    vw(VAPIC_ADDR, PA(vapic));
    vw(TPR_THRESHOLD, threshold);
    l2r.rbx = PA(access);
}

static void t_cr8(void)
{
    const char *tag = "apicv: CR8 with TPR shadow";
    setup(l2_cr8, FALSE, 0xaaaaaa30, 0); /* MOV to CR8 clears VTPR bits 31:8 and 3:0 (29.3) */
    l2_run(&e);
    if (e.st == ST_OK && e.reason == R_VMCALL)
        out("%s: L2 read CR8 %llu after writing 5, VTPR 0x%x", tag, l2r.rsi, vreg(0x80));
    else
        pr_exit(tag, &e, 0);
    setup(l2_cr8, FALSE, 0x60, 6); /* 5 < 6: TPR below threshold, after the MOV (trap-like) */
    l2_run(&e);
    pr_exit("apicv: CR8 5 below threshold 6", &e, 0);
    out("apicv: CR8 5 below threshold 6: VTPR 0x%x", vreg(0x80));
    setup(l2_cr8, FALSE, 0x60, 7); /* 26.2.1.1: threshold 7 above VTPR[7:4] = 6 */
    l2_run(&e);
    pr_exit("apicv: threshold 7 above VTPR 0x60", &e, 0);
    setup(l2_cr8, TRUE, 0x60, 7); /* with virtualize APIC accesses: an exit right after entry (26.6.7) */
    l2_run(&e);
    pr_exit("apicv: threshold 7 above VTPR 0x60, APIC accesses", &e, 0);
}

static void t_access(void)
{
    const char *tag = "apicv: APIC-access page";
    setup(l2_av_rd80, TRUE, 0x40, 0);
    l2_run(&e);
    if (e.st == ST_OK && e.reason == R_VMCALL)
        out("%s: L2 read TPR 0x%llx", tag, l2r.rax);
    else
        pr_exit(tag, &e, 0);
    setup(l2_av_wr80, TRUE, 0x40, 0);
    l2_run(&e);
    pr_exit("apicv: TPR write 0x30, threshold 0", &e, 0);
    out("apicv: TPR write 0x30, threshold 0: VTPR 0x%x", vreg(0x80));
    setup(l2_av_wr80, TRUE, 0x40, 4);
    l2_run(&e);
    pr_exit("apicv: TPR write 0x30, threshold 4", &e, 0);
    setup(l2_av_rd20, TRUE, 0, 0);
    l2_run(&e);
    pr_exit("apicv: APIC ID read", &e, 0);
    setup(l2_av_wr300, TRUE, 0, 0);
    l2_run(&e);
    pr_exit("apicv: ICR write", &e, 0);
    out("apicv: ICR write: virtual ICR 0x%x, APIC-access page untouched: %s", vreg(0x300),
        *(volatile u32 *)(access + 0x300) == 0 ? "yes" : "no");
}

/* Virtual-interrupt delivery (29.2): RVI 0x51 with vIRR bit 0x51 and L2's IF = 1 is delivered
 * at VM entry through L2's IDT (its stub VMCALLs); then L2's EOI write is virtualized (29.1.3)
 * and, with the vector in the EOI-exit bitmap, exits (45, trap-like, qualification the vector). */
static void vid_setup(const char *script)
{
    setup(script, TRUE, 0, 0);
    vw(PROC2_CTLS, adj(P2_VAPIC | P2_APIC_REG | P2_VID, cap.proc2));
    vw(G_RFLAGS, 0x202);
}

static void t_vid(void)
{
    const char *tag = "apicv: virtual-interrupt delivery";
    vid_setup(l2_nops);
    *(volatile u32 *)(vapic + 0x220) = 1u << (0x51 & 31);
    vw(G_INTR_STATUS, 0x0051);
    l2_run(&e);
    finish(tag, &e);
    out("%s: guest interrupt status 0x%llx, VISR 0x%x, VIRR 0x%x, VPPR 0x%x", tag, vr(G_INTR_STATUS), vreg(0x120),
        vreg(0x220), vreg(0xa0));
    vw(EOI_EXIT1, 1ull << (0x51 - 64));
    vw(G_RIP, PA(l2_av_eoi));
    l2r.rbx = PA(access);
    l2_run(&e);
    out("apicv: virtualized EOI: exit %u qual 0x%llx at +%llu, guest interrupt status 0x%llx, VISR 0x%x", e.reason,
        e.qual, e.rip - PA(l2_av_eoi), vr(G_INTR_STATUS), vreg(0x120));
    vid_setup(l2_av_wr300); /* with APIC-register virtualization: virtualized, then an APIC-write exit (56) */
    l2_run(&e);
    pr_exit("apicv: ICR write, APIC-register virtualization", &e, 0);
    out("apicv: ICR write, APIC-register virtualization: virtual ICR 0x%x", vreg(0x300));
}

/* Posted-interrupt processing (29.6): L1 posts vector 0x62 (PIR bit, ON), sends itself the
 * notification vector 0xf2 with interrupts off, and enters L2: the notification arrives in
 * L2, the CPU moves PIR into VIRR and delivers 0x62 to L2. */
static void t_posted(void)
{
    const char *tag = "apicv: posted interrupt";
    u64 ab = rdmsr(0x1b);
    if (!(ab & (1u << 11)) || (ab & (1u << 10))) {
        out("%s: no xAPIC", tag);
        return;
    }
    volatile u32 *apic = (volatile u32 *)(UINTN)(ab & 0xfffff000ull);
    vid_setup(l2_nops);
    set_pin(PIN_POSTED);
    set_exit_ctls(X_ACK_INTR);
    for (int i = 0; i < 64; i++)
        pid[i] = 0;
    ((volatile u64 *)pid)[1] = 1ull << (0x62 - 64);
    pid[32] = 1; /* outstanding notification */
    vw(POSTED_NV, 0xf2);
    vw(POSTED_DESC, PA(pid));
    vw(G_INTR_STATUS, 0);
    apic[0x310 / 4] = 0;
    apic[0x300 / 4] = 0x000440f2; /* fixed, edge, self: pending while L1 runs with IF = 0 */
    l2_run(&e);
    finish(tag, &e);
    out("%s: ON %u, PIR 0x%llx, VIRR 0x%x, VISR 0x%x, guest interrupt status 0x%llx", tag, pid[32] & 1,
        ((volatile u64 *)pid)[1], vreg(0x230), vreg(0x130), vr(G_INTR_STATUS));
}

void s_apicv(void)
{
    BOOLEAN tpr = allowed(P_TPR_SHADOW, cap.proc) && vapic;
    if (!tpr) {
        out("apicv: use TPR shadow not supported");
        return;
    }
    t_cr8();
    if (cap.secondary && allowed(P2_VAPIC, cap.proc2))
        t_access();
    else
        out("apicv: virtualize APIC accesses not supported");
    if (!cap.secondary || !allowed(P2_VAPIC | P2_APIC_REG | P2_VID, cap.proc2)) {
        out("apicv: virtual-interrupt delivery not supported");
        return;
    }
    t_vid();
    if (allowed(PIN_POSTED | PIN_EXT_INT, cap.pin) && allowed(X_ACK_INTR, cap.exit))
        t_posted();
    else
        out("apicv: process posted interrupts not supported");
}
