/*
 * Scenario 13: VPIDs for L2 (SDM 28.1, 28.3.3) and INVVPID (31.3). L2's page tables (its own
 * PML4: the identity map of main.c plus slot 1) map linear X to page A or page B; L1 switches
 * that PTE and re-enters. Only what the SDM guarantees is a check ("must"): after INVVPID of
 * each type, MOV to CR3 / INVLPG in L2, a VPID that never ran since an all-context INVVPID, an
 * L2 without VPID (its entries and exits flush VPID 0000H, 26.3.2.5 / 28.5.5), or INVEPT of
 * combined mappings, L2 reads the new page. Without an invalidation the old translation may
 * survive on hardware ("either allowed"): Bochs drops all at every VM entry and exit, so those
 * lines are deterministic here, and on a CPU that keeps them they show the VPID tagging.
 */
#include "l1.h"

#define X 0x0000008000000018ull /* PML4 slot 1, offset 0x18 of the page */
#define GV 0x50000000ull        /* with EPT: an L2-physical page of its own (identity linear) */
enum { PML4, PDPT, PD, PT, A, B, NPG };
static u8 pg[NPG][4096] __attribute__((aligned(4096)));
static struct exit e;
static const u64 val[NPG] = {[A] = 0xaaaa000000000018ull, [B] = 0xbbbb000000000018ull};

/* L2 scripts: RAX = [RBX]; [RCX] = RDX (L2 changes its PTE); an invalidation; RSI = [RBX]. */
__asm__(".pushsection .text\n"
        ".globl l2_vpid_invlpg, l2_vpid_cr3\n"
        "l2_vpid_invlpg:\n mov (%rbx), %rax\n mov %rdx, (%rcx)\n invlpg (%rbx)\n mov (%rbx), %rsi\n vmcall\n ud2\n"
        "l2_vpid_cr3:\n mov (%rbx), %rax\n mov %rdx, (%rcx)\n mov %cr3, %r8\n mov %r8, %cr3\n mov (%rbx), %rsi\n"
        " vmcall\n ud2\n"
        ".popsection\n");
extern char l2_vpid_invlpg[], l2_vpid_cr3[];

static BOOLEAN has(int bit) { return (cap.ept_vpid >> bit) & 1; }
static u64 *pte(void) { return (u64 *)pg[PT] + ((X >> 12) & 511); }
static void point(int page) { *pte() = PA(pg[page]) | 3; } /* P, RW; not global */
static int other(int page) { return page == A ? B : A; }
static const char *name(u64 v) { return v == val[A] ? "A" : v == val[B] ? "B" : "neither"; }

/* Run L2 from script (RBX = X) to its VMCALL; RAX afterwards, or ~0 (printed). */
static u64 run(const char *tag, const char *script)
{
    vw(G_RIP, PA(script));
    l2r.rbx = X;
    l2_run(&e);
    finish(tag, &e);
    return e.st == ST_OK && e.reason == R_VMCALL ? l2r.rax : ~0ull;
}

/* A guaranteed read: "L2 reads B", plus a mark if it is not the page the SDM requires. */
static void must(const char *tag, u64 v, int want)
{
    out("%s: L2 reads %s%s", tag, name(v), v == val[want] ? "" : " (must be the new page)");
}

static int inv(const char *tag, u64 type, u64 vpid, u64 la)
{
    int st = invvpid_(type, vpid, la);
    if (st != ST_OK)
        out("%s: ERROR: invvpid type %llu: %s", tag, type, st_str(st));
    return st;
}

static void build(void)
{
    for (int p = 0; p < NPG; p++)
        for (int i = 0; i < 512; i++)
            ((u64 *)pg[p])[i] = 0;
    ((u64 *)pg[PML4])[0] = ((u64 *)m.pml4_a)[0]; /* the identity map of the low 4 GiB */
    ((u64 *)pg[PML4])[1] = PA(pg[PDPT]) | 3;
    ((u64 *)pg[PDPT])[0] = PA(pg[PD]) | 3;
    ((u64 *)pg[PD])[0] = PA(pg[PT]) | 3;
    ((u64 *)pg[A])[3] = val[A];
    ((u64 *)pg[B])[3] = val[B];
}

/* Enable VPID with this VPID (0: "enable VPID" off). */
static void set_vpid(u16 vpid)
{
    vw(PROC2_CTLS, adj(vpid ? P2_VPID : 0, cap.proc2));
    if (vpid)
        vw(VPID, vpid);
}

static void t_invvpid(void)
{
    static const struct { int type, bit; const char *what; } types[] = {
        {0, 40, "individual-address"}, {1, 41, "single-context"},
        {3, 43, "single-context-retaining-globals"}, {2, 42, "all-context"},
    };
    char tag[96];
    int cur = A;
    point(A);
    u64 v = run("vpid: VPID 1", l2_ept_read);
    must("vpid: VPID 1, X at A", v, A);
    point(B);
    v = run("vpid: VPID 1", l2_ept_read);
    out("vpid: VPID 1, X moved to B, no INVVPID: L2 reads %s (either allowed)", name(v));
    cur = B;
    for (unsigned k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        const char *w = types[k].what;
        int n = 0;
        for (const char *p = "vpid: VPID 1, INVVPID "; *p; p++)
            tag[n++] = *p;
        for (const char *p = w; *p; p++)
            tag[n++] = *p;
        tag[n] = 0;
        if (!has(types[k].bit)) {
            out("%s: not supported", tag);
            continue;
        }
        cur = other(cur);
        point(cur);
        if (inv(tag, (u64)types[k].type, types[k].type == 2 ? 0 : 1, X) == ST_OK)
            must(tag, run(tag, l2_ept_read), cur);
    }
    /* Since the all-context INVVPID only VPID 1 ran: VPID 2 holds no translation (28.3.3.1). */
    cur = other(cur);
    point(cur);
    set_vpid(2);
    must("vpid: VPID 2 (never ran since), X moved, no INVVPID", run("vpid: VPID 2", l2_ept_read), cur);
    point(other(cur));
    set_vpid(1);
    v = run("vpid: back to VPID 1", l2_ept_read);
    out("vpid: back to VPID 1, X moved, no INVVPID: L2 reads %s (either allowed)", name(v));
    cur = other(cur);
    /* Without VPID: L2 is VPID 0000H, which L1's VM entries and exits flush. */
    set_vpid(0);
    for (int i = 0; i < 2; i++) {
        cur = other(cur);
        point(cur);
        must("vpid: enable VPID off, X moved, no INVVPID", run("vpid: no VPID", l2_ept_read), cur);
    }
}

/* L2's own invalidations act on its VPID (28.3.3.1): INVLPG and MOV to CR3 (non-global PTE). */
static void t_l2(void)
{
    static const struct { const char *tag, *script; } s[] = {
        {"vpid: VPID 1, L2 moves X and executes INVLPG", l2_vpid_invlpg},
        {"vpid: VPID 1, L2 moves X and reloads CR3", l2_vpid_cr3},
    };
    set_vpid(1);
    for (unsigned k = 0; k < 2; k++) {
        point(A);
        if (inv(s[k].tag, 1, 1, 0) != ST_OK)
            return;
        l2r.rcx = PA(pte());
        l2r.rdx = PA(pg[B]) | 3;
        u64 v = run(s[k].tag, s[k].script);
        if (v == ~0ull)
            continue;
        out("%s: first read %s", s[k].tag, name(v));
        must(s[k].tag, l2r.rsi, B);
    }
}

/* INVEPT invalidates combined mappings (28.3.3.1): L2 with EPT and VPID 3, GV moved from A to
 * B in EPT12 (rebuilt at the same root), then INVEPT single-context. */
static void t_ept(void)
{
    const char *tag = "vpid: EPT and VPID 3";
    if (!ept_setup_l2(tag, l2_ept_read) || !ept_map_rwx(GV, PA(pg[A]))) {
        out("%s: EPT not offered", tag);
        return;
    }
    u32 p2 = adj(P2_EPT | P2_VPID, cap.proc2);
    vw(PROC2_CTLS, p2);
    vw(VPID, 3);
    vw(G_RIP, PA(l2_ept_read));
    l2r.rbx = GV + 0x18;
    l2_run(&e);
    finish(tag, &e);
    must("vpid: EPT and VPID 3, GV at A", e.st == ST_OK && e.reason == R_VMCALL ? l2r.rax : ~0ull, A);
    u64 eptp = vr(EPTP);
    if (!ept_setup_l2(tag, l2_ept_read) || !ept_map_rwx(GV, PA(pg[B])))
        return;
    vw(PROC2_CTLS, p2);
    vw(VPID, 3);
    int st = has(25) ? invept_(1, eptp) : invept_(2, 0);
    if (st != ST_OK) {
        out("%s: ERROR: invept: %s", tag, st_str(st));
        return;
    }
    l2r.rbx = GV + 0x18;
    l2_run(&e);
    finish(tag, &e);
    must("vpid: EPT and VPID 3, GV moved to B, INVEPT", e.st == ST_OK && e.reason == R_VMCALL ? l2r.rax : ~0ull, B);
}

void s_vpid(void)
{
    if (!cap.invvpid || !allowed(P_SECONDARY, cap.proc) || !allowed(P2_VPID, cap.proc2) || !has(42)) {
        out("vpid: not offered");
        return;
    }
    build();
    vmcs_init(0, l2_ept_read);
    set_proc(P_SECONDARY);
    set_vpid(1);
    vw(G_CR3, PA(pg[PML4]));
    if (inv("vpid: start", 2, 0, 0) != ST_OK) /* what ran before holds nothing for X now */
        return;
    t_invvpid();
    t_l2();
    t_ept();
}
