/*
 * Scenario 16, after s_ead.c (its lines fall in run-diff.sh's EPT section): VM functions with
 * EPTP switching (SDM Vol. 3C 25.5.6; secondary control 13, IA32_VMX_VMFUNC bit 0) and
 * EPT-violation #VE (25.5.7; secondary control 18), each only where offered.
 *
 * EPT12 root 1 is s_ept.c's (identity part, test page A at G+0x1000); root 2 copies its
 * tables down to G's page table and maps G+0x1000 to page B instead. The EPTP list holds
 * root 1 at entry 0, root 2 at entry 1. Printed: what L2 reads (values name their page:
 * 0xa0.. for A, 0xb0.. for B), the EPTP and EPTP index by list entry, VMFUNC exits (59),
 * #UD, the entry checks, and for #VE the information area (no host address is printed).
 */
#include "l1.h"

#define G 0x40000000ull
#define QUAL_MASK 0x11bfull /* EPT-violation qualification bits 5:0, 7, 8, 12 (SDM Table 28-7) */
enum { EPT_R = 1, EPT_W = 2, EPT_X = 4, EPT_WB = 6 << 3 };
enum { P2_VMFUNC = 1 << 13, P2_VE = 1 << 18, VMFUNC_CTL = 0x2018, EPTP_LIST = 0x2024, VE_ADDR = 0x202a,
       EPTP_IDX = 0x0004, R_VMFUNC = 59 };
extern char l2_vmfunc[], l2_vmfunc_sw[], l2_vmfunc_ve[];

static struct exit e;
static u64 eptp1, eptp2, *list;
static u8 *pg_a, *pg_b, *ve, *pg_ro;

static BOOLEAN is(u32 reason)
{
    return e.st == ST_OK && e.reason == reason && !(reason == R_VMCALL && l2r.r15 == L2_ISR_MARK);
}
static BOOLEAN offered(u32 p2) { return allowed(p2, cap.proc2); }

static void fill(u8 *p, u64 tag)
{
    for (u64 i = 0; i < 512; i++)
        ((u64 *)p)[i] = tag << 48 | i * 8;
}

static const char *eptp_name(u64 v)
{
    return v == eptp1 ? "entry 0 (root 1)" : v == eptp2 ? "entry 1 (root 2)" : "other";
}

static u64 eptp_index(void) { return offered(P2_VE) ? vr(EPTP_IDX) : 0xdead; }

static void invept_all(const char *tag)
{
    ept_invept(tag); /* root 1 */
    int st = (cap.ept_vpid >> 25) & 1 ? invept_(1, eptp2) : (cap.ept_vpid >> 26) & 1 ? invept_(2, eptp2) : ST_OK;
    if (st != ST_OK)
        out("%s: ERROR: invept %s", tag, st_str(st));
}

/* Root 2: copies of root 1's tables on the way to G+0x1000, whose PTE names page B. */
static BOOLEAN second_root(void)
{
    u64 *prev = NULL, gpa = G + 0x1000;
    for (int l = 4; l >= 1; l--) {
        u64 *ent = ept_entry(gpa, l);
        if (!ent)
            return FALSE;
        u64 *tab = (u64 *)((UINTN)ent & ~0xfffull), *c = (u64 *)ept_page(4 + (4 - l));
        for (int i = 0; i < 512; i++)
            c[i] = tab[i];
        if (prev)
            prev[gpa >> (12 + 9 * l) & 511] = PA(c) | EPT_R | EPT_W | EPT_X;
        else
            eptp2 = PA(c) | 6 | 3 << 3;
        prev = c;
    }
    prev[gpa >> 12 & 511] = PA(pg_b) | EPT_R | EPT_W | EPT_WB;
    return TRUE;
}

/* A fresh EPT12 (root 1: A at G+0x1000, read-only page at G+0x4000), root 2, the list, and
 * a VMCS with EPT, the controls p2 and EPTP switching (vmfunc: VM-function controls). */
static BOOLEAN setup(const char *tag, const char *script, u32 p2, u64 vmfunc)
{
    if (!ept_setup_l2(tag, script))
        return FALSE;
    if (!ept_map(G + 0x1000, PA(pg_a), EPT_R | EPT_W) || !ept_map(G + 0x4000, PA(pg_ro), EPT_R) ||
        !second_root()) {
        out("%s: ERROR: EPT layout", tag);
        return FALSE;
    }
    eptp1 = ept_eptp();
    invept_all(tag);
    fill(pg_a, 0xa0);
    fill(pg_b, 0xb0);
    fill(pg_ro, 0xc0);
    for (int i = 0; i < 512; i++)
        list[i] = 0;
    list[0] = eptp1;
    list[1] = eptp2;
    list[3] = (eptp1 & ~7ull) | 1; /* memory type 1: not a valid EPTP */
    vw(PROC2_CTLS, adj(P2_EPT | p2, cap.proc2));
    if (p2 & P2_VMFUNC) {
        vw(VMFUNC_CTL, vmfunc);
        vw(EPTP_LIST, PA(list));
    }
    return TRUE;
}

/* 1: L2 switches 0 -> 1 -> 0, then 0 -> 1 and stays; L1's next entry uses the EPTP the
 * switch left in the VMCS; then L1 alternates the two EPTPs itself over entries. */
static void t_switch(void)
{
    const char *tag = "vmfunc: switch 0, 1, 0";
    if (!setup(tag, l2_vmfunc_sw, P2_VMFUNC, 1))
        return;
    l2r.rbx = G + 0x1010;
    l2r.rsi = 1;
    l2r.rdi = 0;
    l2_run(&e);
    finish(tag, &e);
    if (!is(R_VMCALL))
        return;
    out("%s: L2 read 0x%llx, 0x%llx, 0x%llx; EPTP %s, index 0x%llx", tag, l2r.r9, l2r.r10, l2r.r11,
        eptp_name(vr(EPTP)), eptp_index());

    tag = "vmfunc: switch 0, 1, 1";
    vw(G_RIP, PA(l2_vmfunc_sw));
    l2r.rsi = 1;
    l2r.rdi = 1;
    l2_run(&e);
    finish(tag, &e);
    if (!is(R_VMCALL))
        return;
    out("%s: L2 read 0x%llx, 0x%llx, 0x%llx; EPTP %s, index 0x%llx", tag, l2r.r9, l2r.r10, l2r.r11,
        eptp_name(vr(EPTP)), eptp_index());

    tag = "vmfunc: next entry on the EPTP L2 left";
    vw(G_RIP, PA(l2_ept_read));
    l2_run(&e);
    finish(tag, &e);
    if (is(R_VMCALL))
        out("%s: L2 read 0x%llx", tag, l2r.rax);

    tag = "vmfunc: L1 alternates the EPTPs";
    for (int i = 0; i < 4; i++) {
        vw(EPTP, i & 1 ? eptp2 : eptp1);
        vw(G_RIP, PA(l2_ept_read));
        l2r.rbx = G + 0x1018 + 8 * i;
        l2_run(&e);
        finish(tag, &e);
        if (!is(R_VMCALL))
            return;
        out("%s: entry %d on %s: L2 read 0x%llx", tag, i, eptp_name(vr(EPTP)), l2r.rax);
    }
}

/* One VMFUNC with EAX, ECX; prints how it ended. */
static void one(const char *tag, u64 eax, u64 ecx)
{
    vw(G_RIP, PA(l2_vmfunc));
    vw(G_RSP, L2_STACK_TOP);
    l2r.rax = eax;
    l2r.rcx = ecx;
    l2r.r15 = 0;
    l2_run(&e);
    if (e.st == ST_OK && e.reason == R_VMCALL && l2r.r15 == L2_ISR_MARK)
        out("%s: L2 took vector %llu; EPTP %s", tag, l2r.rbx, eptp_name(vr(EPTP)));
    else if (is(R_VMFUNC))
        out("%s: exit %u qual 0x%llx len %u at +%llu; EAX 0x%llx ECX 0x%llx; EPTP %s, index 0x%llx", tag, e.reason,
            e.qual, e.len, e.rip - PA(l2_vmfunc), l2r.rax, l2r.rcx, eptp_name(vr(EPTP)), eptp_index());
    else if (is(R_VMCALL))
        out("%s: VMFUNC completed; EPTP %s, index 0x%llx", tag, eptp_name(vr(EPTP)), eptp_index());
    else
        pr_exit(tag, &e, F_LEN);
}

/* 2: what exits to L1 (59) and what is #UD in L2. */
static void t_fail(void)
{
    const char *tag = "vmfunc: fail";
    if (!setup(tag, l2_vmfunc, P2_VMFUNC, 1))
        return;
    one("vmfunc: index 1", 0, 1);
    one("vmfunc: index 512", 0, 512);
    one("vmfunc: index 0xffffffff00000000 (ECX 0)", 0, 0xffffffff00000000ull);
    one("vmfunc: entry 2 (zero)", 0, 2);
    one("vmfunc: entry 3 (memory type 1)", 0, 3);
    one("vmfunc: function 1 (not enabled)", 1, 0);
    one("vmfunc: function 63", 63, 0);
    one("vmfunc: function 64", 64, 0);
    if (setup(tag, l2_vmfunc, P2_VMFUNC, 0))
        one("vmfunc: EPTP switching off", 0, 1);
    if (setup(tag, l2_vmfunc, 0, 0))
        one("vmfunc: enable VM functions off", 0, 1);
}

/* 3: the VM-entry checks (26.2.1.1). */
static void t_checks(void)
{
    static const struct { u32 p2; u64 ctl, addr; const char *what; } t[] = {
        {P2_EPT | P2_VMFUNC, 2, 0, "VM-function control bit 1"},
        {P2_VMFUNC, 1, 0, "EPTP switching without EPT"},
        {P2_EPT | P2_VMFUNC, 1, 8, "EPTP-list address bit 3"},
        {P2_EPT | P2_VMFUNC, 1, 1, "EPTP-list address at MAXPHYADDR"},
    };
    const char *tag = "vmfunc: entry check";
    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (!setup(tag, l2_vmcall, P2_VMFUNC, 1))
            return;
        vw(PROC2_CTLS, adj(t[i].p2, cap.proc2));
        vw(VMFUNC_CTL, t[i].ctl);
        vw(EPTP_LIST, t[i].addr == 1 ? 1ull << cap.maxphys : PA(list) + t[i].addr);
        l2_enter(&e, 0);
        out("%s %s: %s", tag, t[i].what, e.st == ST_OK && (e.reason & R_ENTRY_FAIL) ? "entry failure" : st_str(e.st));
    }
    if (!offered(P2_VE))
        return;
    for (int i = 0; i < 2; i++) {
        if (!setup(tag, l2_vmcall, P2_VE, 0))
            return;
        vw(VE_ADDR, i ? 1ull << cap.maxphys : PA(ve) + 8);
        l2_enter(&e, 0);
        out("%s #VE address %s: %s", tag, i ? "at MAXPHYADDR" : "bit 3",
            e.st == ST_OK && (e.reason & R_ENTRY_FAIL) ? "entry failure" : st_str(e.st));
    }
}

static const char *gname(u64 a)
{
    static char s[4][24];
    static unsigned k;
    char *p = s[k++ & 3];
    if (a < G || a - G >= 0x10000)
        return "other";
    u64 off = a - G;
    const char *pre = "G+0x";
    int i = 0;
    while (*pre)
        p[i++] = *pre++;
    for (int sh = 12; sh >= 0; sh -= 4)
        p[i++] = "0123456789abcdef"[(off >> sh) & 15];
    p[i] = 0;
    return p;
}

/* The information area as L1 reads it. */
static void pr_area(const char *tag, u64 linear)
{
    u32 *d = (u32 *)ve;
    u64 *q = (u64 *)ve;
    out("%s: area: reason %u, dword 4 0x%x, qual 0x%llx, linear %s, gpa %s, index 0x%llx", tag, d[0], d[1],
        q[1] & QUAL_MASK, q[2] == linear ? "as used" : "other", gname(q[3]), q[4] & 0xffff);
}

/* L2 ran to an EPT violation or its #VE stub: print which. */
static void pr_ve(const char *tag, const char *script, u64 linear)
{
    if (e.st == ST_OK && e.reason == R_VMCALL && l2r.r15 == L2_ISR_MARK) {
        u64 rip = *(u64 *)(UINTN)vr(G_RSP); /* the frame's RIP (no error code for #VE) */
        out("%s: L2 took vector %llu, saved RIP at +%llu", tag, l2r.rbx, rip - PA(script));
    } else if (is(R_EPT_VIOL)) {
        out("%s: exit %u qual 0x%llx gpa %s at +%llu", tag, e.reason, e.qual & QUAL_MASK, gname(vr(G_PHYS_ADDR)),
            e.rip - PA(script));
    } else {
        pr_exit(tag, &e, F_LEN);
    }
    pr_area(tag, linear);
}

static void run_ve(const char *script, u64 rbx)
{
    vw(G_RIP, PA(script));
    vw(G_RSP, L2_STACK_TOP);
    l2r.rbx = rbx;
    l2r.rsi = 1;
    l2r.rcx = 0x5555;
    l2r.r15 = 0;
    l2_run(&e);
}

/* 4: #VE (25.5.7): a not-present EPT12 entry with bit 63 clear, the area's dword 4 at 0:
 * L2's #VE; again while dword 4 is FFFFFFFFH: L1's EPT violation; bit 63 set: L1's; a write
 * to a read-only page; L1's exception bitmap bit 20: exit 0 with vector 20. */
static void t_ve(void)
{
    const char *tag = "ve: not present";
    if (!offered(P2_VE)) {
        out("ve: not offered");
        return;
    }
    if (!setup(tag, l2_vmfunc_ve, P2_VMFUNC | P2_VE, 1))
        return;
    list[1] = eptp1; /* the EPTP index becomes 1, the mappings stay root 1's */
    for (int i = 0; i < 4096; i++)
        ve[i] = 0;
    vw(VE_ADDR, PA(ve));
    vw(EPTP_IDX, 0);
    run_ve(l2_vmfunc_ve, G + 0x3008);
    pr_ve(tag, l2_vmfunc_ve, G + 0x3008);

    tag = "ve: again, dword 4 not 0";
    run_ve(l2_vmfunc_ve, G + 0x3010);
    pr_ve(tag, l2_vmfunc_ve, G + 0x3008);

    tag = "ve: suppress #VE (bit 63) set";
    ((u32 *)ve)[1] = 0;
    u64 *pte = ept_entry(G + 0x3000, 1);
    if (pte)
        *pte = 1ull << 63;
    run_ve(l2_vmfunc_ve, G + 0x3018);
    pr_ve(tag, l2_vmfunc_ve, G + 0x3008);

    tag = "ve: write to a read-only page";
    run_ve(l2_ept_rw, G + 0x4020);
    pr_ve(tag, l2_ept_rw, G + 0x4020);
    out("%s: L2 read 0x%llx first; the page holds 0x%llx", tag, l2r.rax, ((u64 *)pg_ro)[4]);

    tag = "ve: exception bitmap bit 20";
    ((u32 *)ve)[1] = 0;
    if (pte)
        *pte = 0;
    vw(EXC_BITMAP, vr(EXC_BITMAP) | 1u << 20);
    run_ve(l2_vmfunc_ve, G + 0x3028);
    pr_exit(tag, &e, 0); /* no length: undefined for a hardware exception's exit (28.2.4) */
    pr_area(tag, G + 0x3028);
}

void s_vmfunc(void)
{
    if (!ept_page(11) || !ept_setup_l2("vmfunc: setup", l2_vmcall)) {
        out("vmfunc: ERROR: no EPT12");
        return;
    }
    pg_a = ept_page(0);
    pg_b = ept_page(1);
    list = (u64 *)ept_page(2);
    ve = ept_page(3);
    pg_ro = ept_page(8);
    if (!offered(P2_VMFUNC) || !(rdmsr(0x491) & 1)) { /* SDM A.11 */
        out("vmfunc: EPTP switching not offered");
    } else {
        t_switch();
        t_fail();
        t_checks();
    }
    t_ve();
}
