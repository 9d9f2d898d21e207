/* VMX instruction wrappers, the VMCS for a 64-bit L2, L2 runs and exit reports. */
#include "l1.h"

/* Arm the fixup (asm.asm): a #UD/#GP in the instruction resumes at label 1 with
 * trap_vector set; otherwise CF/ZF give VMfailInvalid/VMfailValid (SDM 31.2). */
#define FX_PRE "lea 1f(%%rip), %%r11\n\tmov %%r11, %[fx]\n\t"
#define FX_POST "\n1:\tmovq $0, %[fx]\n\tsetc %[cf]\n\tsetz %[zf]"
#define FX_OUT [cf] "=qm"(cf), [zf] "=qm"(zf), [fx] "+m"(trap_fixup)

static int fin(u8 cf, u8 zf)
{
    if (trap_vector != NO_TRAP)
        return ST(ST_EXC, (int)trap_vector);
    if (cf)
        return ST_INVALID;
    if (zf) {
        u64 err = 0, f = INSN_ERROR;
        __asm__ volatile("vmread %1, %0" : "=r"(err) : "r"(f) : "cc");
        return ST(ST_VALID, (int)err);
    }
    return ST_OK;
}

int vmxon_(u64 pa)
{
    u8 cf, zf;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmxon %[pa]" FX_POST : FX_OUT : [pa] "m"(pa) : "r11", "cc", "memory");
    return fin(cf, zf);
}

int vmxoff_(void)
{
    u8 cf, zf;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmxoff" FX_POST : FX_OUT : : "r11", "cc", "memory");
    return fin(cf, zf);
}

int vmclear_(u64 pa)
{
    u8 cf, zf;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmclear %[pa]" FX_POST : FX_OUT : [pa] "m"(pa) : "r11", "cc", "memory");
    return fin(cf, zf);
}

int vmptrld_(u64 pa)
{
    u8 cf, zf;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmptrld %[pa]" FX_POST : FX_OUT : [pa] "m"(pa) : "r11", "cc", "memory");
    return fin(cf, zf);
}

int vmptrst_(u64 *pa)
{
    u8 cf, zf;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmptrst %[pa]" FX_POST : FX_OUT, [pa] "=m"(*pa) : : "r11", "cc", "memory");
    return fin(cf, zf);
}

int vmread_(u64 field, u64 *v)
{
    u8 cf, zf;
    u64 val = 0;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmread %[f], %[v]" FX_POST : FX_OUT, [v] "+r"(val) : [f] "r"(field)
                     : "r11", "cc", "memory");
    *v = val;
    return fin(cf, zf);
}

int vmwrite_(u64 field, u64 v)
{
    u8 cf, zf;
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "vmwrite %[v], %[f]" FX_POST : FX_OUT : [f] "r"(field), [v] "r"(v)
                     : "r11", "cc", "memory");
    return fin(cf, zf);
}

int invept_(u64 type, u64 eptp)
{
    u8 cf, zf;
    u64 desc[2] = {eptp, 0};
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "invept %[d], %[t]" FX_POST : FX_OUT : [d] "m"(desc), [t] "r"(type)
                     : "r11", "cc", "memory");
    return fin(cf, zf);
}

int invvpid_(u64 type, u64 vpid, u64 la)
{
    u8 cf, zf;
    u64 desc[2] = {vpid, la};
    trap_vector = NO_TRAP;
    __asm__ volatile(FX_PRE "invvpid %[d], %[t]" FX_POST : FX_OUT : [d] "m"(desc), [t] "r"(type)
                     : "r11", "cc", "memory");
    return fin(cf, zf);
}

u64 vr(u32 field)
{
    u64 v = 0;
    int st = vmread_(field, &v);
    if (st != ST_OK)
        out("ERROR: vmread 0x%x: %s", field, st_str(st));
    return v;
}

void vw(u32 field, u64 v)
{
    int st = vmwrite_(field, v);
    if (st != ST_OK)
        out("ERROR: vmwrite 0x%x: %s", field, st_str(st));
}

/* ---- the VMCS ---- */
struct regs l2r;
u32 watchdog;
static int cur = -1;
static BOOLEAN launched[3];
static const char *script_base;

static u16 sel(int which)
{
    u16 v = 0;
    switch (which) {
    case 0: __asm__ volatile("mov %%cs, %0" : "=r"(v)); break;
    case 1: __asm__ volatile("mov %%ss, %0" : "=r"(v)); break;
    case 2: __asm__ volatile("mov %%ds, %0" : "=r"(v)); break;
    case 3: __asm__ volatile("mov %%es, %0" : "=r"(v)); break;
    case 4: __asm__ volatile("mov %%fs, %0" : "=r"(v)); break;
    case 5: __asm__ volatile("mov %%gs, %0" : "=r"(v)); break;
    }
    return v;
}

void set_pin(u32 bits) { vw(PIN_CTLS, adj(PIN_EXT_INT | (cap.timer ? PIN_TIMER : 0) | bits, cap.pin)); }
void set_proc(u32 bits) { vw(PROC_CTLS, adj(bits, cap.proc)); }
void set_exit_ctls(u32 bits) { vw(EXIT_CTLS, adj(X_HOST64 | bits, cap.exit)); }

void vmcs_init(int i, const char *script)
{
    u8 *v = m.vmcs[i];
    *(u32 *)v = cap.revision; /* SDM 25.2: bits 30:0 revision, bit 31 shadow = 0 */
    int st = vmclear_(PA(v));
    if (st == ST_OK)
        st = vmptrld_(PA(v));
    if (st != ST_OK)
        out("ERROR: VMCLEAR/VMPTRLD vmcs%d: %s", i, st_str(st));
    cur = i;
    launched[i] = FALSE;
    script_base = script;

    /* Controls: external-interrupt exiting so a stray interrupt exits (reason 1) instead of
     * entering L2's IDT; the preemption timer as a watchdog against a stuck L2. */
    set_pin(0);
    set_proc(0); /* with true controls, CR3-load/store exiting can be 0 (SDM A.3.2) */
    set_exit_ctls(0);
    vw(ENTRY_CTLS, adj(E_IA32E, cap.entry));
    vw(EXC_BITMAP, 0);
    vw(CR3_TARGET_COUNT, 0);
    vw(EXIT_MSR_ST_CNT, 0);
    vw(EXIT_MSR_LD_CNT, 0);
    vw(ENTRY_MSR_LD_CNT, 0);
    vw(ENTRY_INTR, 0);
    vw(CR0_MASK, 0);
    vw(CR4_MASK, 0);
    vw(CR0_SHADOW, 0);
    vw(CR4_SHADOW, 0);
    vw(IO_A, PA(m.io_a));
    vw(IO_B, PA(m.io_b));
    vw(MSR_BITMAP, PA(m.msr_bitmap));
    if (cap.timer)
        vw(G_TIMER, watchdog);

    /* Host state = L1 now (SDM 26.2.2-26.2.4: selectors RPL/TI 0, TR and CS not 0). */
    struct dtr g, d;
    __asm__ volatile("sgdt %0; sidt %1" : "=m"(g), "=m"(d));
    vw(H_CR0, read_cr0());
    vw(H_CR3, read_cr3());
    vw(H_CR4, read_cr4());
    vw(H_CS_SEL, sel(0) & ~7);
    vw(H_SS_SEL, sel(1) & ~7);
    vw(H_DS_SEL, sel(2) & ~7);
    vw(H_ES_SEL, sel(3) & ~7);
    vw(H_FS_SEL, sel(4) & ~7);
    vw(H_GS_SEL, sel(5) & ~7);
    vw(H_TR_SEL, tss_sel);
    vw(H_FS_BASE, rdmsr(0xc0000100));
    vw(H_GS_BASE, rdmsr(0xc0000101));
    vw(H_TR_BASE, PA(m.tss));
    vw(H_GDTR_BASE, g.base);
    vw(H_IDTR_BASE, d.base);
    vw(H_SYSENTER_CS, rdmsr(0x174));
    vw(H_SYSENTER_ESP, rdmsr(0x175));
    vw(H_SYSENTER_EIP, rdmsr(0x176));
    vw(H_RIP, PA(vmx_exit_landing));

    /* Guest: flat 64-bit CPL 0 on L1's GDT; CR3 = A, L2's own IDT (SDM 26.3.1). */
    u16 cs = sel(0), ds = sel(2);
    const u32 segs[] = {G_ES_SEL, G_SS_SEL, G_DS_SEL, G_FS_SEL, G_GS_SEL};
    for (unsigned k = 0; k < 5; k++) {
        u32 s = segs[k];
        vw(s, ds);
        vw(s - G_ES_SEL + G_ES_LIMIT, 0xffffffff);
        vw(s - G_ES_SEL + G_ES_AR, 0xc093); /* data RW accessed, P, D/B, G */
        vw((s - G_ES_SEL) + G_ES_BASE, 0);
    }
    vw(G_CS_SEL, cs);
    vw(G_CS_LIMIT, 0xffffffff);
    vw(G_CS_AR, 0xa09b); /* code XR accessed, P, L, G */
    vw(G_CS_BASE, 0);
    vw(G_TR_SEL, tss_sel);
    vw(G_TR_LIMIT, 0x67);
    vw(G_TR_AR, 0x8b); /* busy 64-bit TSS */
    vw(G_TR_BASE, PA(m.tss));
    vw(G_LDTR_SEL, 0);
    vw(G_LDTR_LIMIT, 0);
    vw(G_LDTR_AR, 0x10000); /* unusable */
    vw(G_LDTR_BASE, 0);
    vw(G_GDTR_BASE, g.base);
    vw(G_GDTR_LIMIT, g.limit);
    vw(G_IDTR_BASE, PA(m.l2_idt));
    vw(G_IDTR_LIMIT, 0xfff);
    vw(G_CR0, read_cr0());
    vw(G_CR3, PA(m.pml4_a));
    vw(G_CR4, read_cr4());
    vw(G_DR7, 0x400);
    vw(G_RSP, L2_STACK_TOP);
    vw(G_RIP, PA(script));
    vw(G_RFLAGS, 2);
    vw(G_PENDING_DBG, 0);
    vw(G_DEBUGCTL, 0);
    vw(G_SYSENTER_CS, 0);
    vw(G_SYSENTER_ESP, 0x5a5a000);
    vw(G_SYSENTER_EIP, 0);
    vw(G_INTR_STATE, 0);
    vw(G_ACTIVITY, 0);
    vw(LINK_PTR, ~0ull);
    for (unsigned k = 0; k < sizeof(l2r) / 8; k++)
        ((u64 *)&l2r)[k] = 0;
}

int vmcs_load(int i)
{
    int st = vmptrld_(PA(m.vmcs[i]));
    if (st == ST_OK)
        cur = i;
    return st;
}

int vmcs_clear(int i)
{
    int st = vmclear_(PA(m.vmcs[i]));
    if (st == ST_OK) {
        launched[i] = FALSE;
        if (cur == i)
            cur = -1;
    }
    return st;
}

const char *pname(u64 pa)
{
    for (int i = 0; i < 3; i++)
        if (pa == PA(m.vmcs[i]))
            return i == 0 ? "vmcs0" : i == 1 ? "vmcs1" : "vmcs2";
    if (pa == PA(m.vmxon))
        return "vmxon";
    return pa == ~0ull ? "none" : "other";
}

static void read_exit(struct exit *e)
{
    e->reason = (u32)vr(EXIT_REASON);
    e->qual = vr(EXIT_QUAL);
    e->len = (u32)vr(EXIT_LEN);
    e->intr = (u32)vr(EXIT_INTR);
    e->intr_err = (u32)vr(EXIT_INTR_ERR);
    e->idt = (u32)vr(IDT_INFO);
    e->idt_err = (u32)vr(IDT_ERR);
    e->info = (u32)vr(INSN_INFO);
    e->rip = vr(G_RIP);
    e->rsp = vr(G_RSP);
    e->activity = (u32)vr(G_ACTIVITY);
    e->intrst = (u32)vr(G_INTR_STATE);
    e->base = script_base;
}

/* One VMLAUNCH (resume = 0) or VMRESUME, exactly as asked. */
void l2_enter(struct exit *e, int resume)
{
    int rc = vmx_enter(&l2r, resume);
    reload_tables();
    e->st = rc == 0 ? ST_OK : rc == 1 ? ST_INVALID : rc == 3 ? ST(ST_EXC, (int)trap_vector) : ST_VALID;
    if (rc == 2)
        e->st = ST(ST_VALID, (int)vr(INSN_ERROR));
    if (rc != 0)
        return;
    read_exit(e);
    if (!(e->reason & R_ENTRY_FAIL) && cur >= 0) /* a failed entry leaves it clear (SDM 27.8) */
        launched[cur] = TRUE;
}

void l2_run(struct exit *e)
{
    l2_enter(e, cur >= 0 && launched[cur]);
}

void l2_skip(const struct exit *e)
{
    vw(G_RIP, e->rip + e->len);
}

static int app(char *s, int n, const char *fmt, u64 a)
{
    /* tiny formatter for pr_exit's optional parts: "%s" then one hex number */
    int i = n;
    for (const char *f = fmt; *f && i < 180; f++)
        s[i++] = *f;
    char d[20];
    int j = 0;
    do {
        d[j++] = "0123456789abcdef"[a & 15];
        a >>= 4;
    } while (a);
    s[i++] = '0';
    s[i++] = 'x';
    while (j)
        s[i++] = d[--j];
    s[i] = 0;
    return i;
}

void pr_exit(const char *tag, const struct exit *e, unsigned flags)
{
    if (e->st != ST_OK) {
        out("%s: entry %s", tag, st_str(e->st));
        return;
    }
    if (e->reason & R_ENTRY_FAIL) { /* VM-entry failure: no guest state saved (SDM 27.8) */
        out("%s: exit 0x%x qual 0x%llx", tag, e->reason, e->qual);
        return;
    }
    char s[200];
    int n = 0;
    s[0] = 0;
    if (flags & F_LEN)
        n = app(s, n, " len ", e->len);
    u32 r = e->reason & 0xffff;
    if (r == R_EXC || r == R_EXTINT) { /* interruption info valid for these (SDM 28.2.2) */
        n = app(s, n, " intr ", e->intr);
        if (e->intr & (1u << 11))
            n = app(s, n, " err ", e->intr_err);
    }
    if (e->idt & (1u << 31)) {
        n = app(s, n, " idt ", e->idt);
        if (e->idt & (1u << 11))
            n = app(s, n, " idt-err ", e->idt_err);
    }
    if (flags & F_INFO)
        n = app(s, n, " info ", e->info);
    if (flags & F_ACT)
        n = app(s, n, " activity ", e->activity);
    if (flags & F_NORIP)
        out("%s: exit %u qual 0x%llx%s", tag, e->reason, e->qual, s);
    else
        out("%s: exit %u qual 0x%llx%s at +%llu", tag, e->reason, e->qual, s,
            e->rip - PA(e->base));
}

void finish(const char *tag, struct exit *e)
{
    for (int k = 0; k < 8; k++) {
        if (e->st != ST_OK || (e->reason & R_ENTRY_FAIL)) {
            pr_exit(tag, e, 0);
            return;
        }
        if (e->reason == R_VMCALL) {
            if (l2r.r15 == L2_ISR_MARK)
                out("%s: L2 took vector %llu", tag, l2r.rbx);
            return;
        }
        char t[64];
        int i = 0;
        for (const char *p = tag; *p && i < 40; p++)
            t[i++] = *p;
        for (const char *p = ": unexpected"; *p; p++)
            t[i++] = *p;
        t[i] = 0;
        pr_exit(t, e, F_LEN);
        if (e->reason != R_CPUID && e->reason != R_HLT && e->reason != R_IO && e->reason != R_CR &&
            e->reason != R_RDMSR && e->reason != R_WRMSR)
            return;
        l2_skip(e);
        l2_run(e);
    }
    out("%s: too many exits", tag);
}
