/*
 * Scenario 17, after s_vmfunc.c (its lines fall in run-diff.sh's EPT section): mode-based
 * execute control for EPT (MBEC, secondary control 22, SDM 29.3.3.2) and advanced VM-exit
 * information for EPT violations (IA32_VMX_EPT_VPID_CAP[22], SDM 28.2.1), only where offered.
 *
 * L2 (CPL 0) calls a code page at L2-physical G+0x1000 through three linear addresses whose
 * L2 paging makes them user-mode read/write (0xc0001000), supervisor read/write (0xc0201000)
 * and user-mode read-only (0xc0401000): 2 MiB pages of a PD at L2-physical G+0x6000. With
 * SMEP off a supervisor-mode fetch from a user-mode address is allowed by L2's paging, and
 * EPT12's bit 10 (XU) decides it, bit 2 (XS) the supervisor-mode fetches. Printed: whether
 * L2 ran the code, else the EPT violation's qualification bits 12:0 (bit 6: EPT12's XU; bits
 * 9-11: user-mode, read/write, execute-disable per L2's paging). No data access is made to a
 * page whose EPT12 translation has XU set: Bochs 3.0 then reports bit 10 << 3 as bit 13 and
 * leaves bit 6 clear (docs/nested.md).
 */
#include "l1.h"

#define G 0x40000000ull
#define QUAL_MASK 0x1fffull
#define P2_MBEC (1u << 22)
enum { EPT_R = 1, EPT_W = 2, EPT_X = 4, EPT_XU = 1 << 10, EPT_WB = 6 << 3 };
enum { LIN_USER = 0xc0001000u, LIN_SUP = 0xc0201000u, LIN_USER_RO = 0xc0401000u };
extern char l2_ept_call[], l2_ept_rw[];

static struct exit e;
static u8 *code, *pd;

static BOOLEAN is(u32 reason)
{
    return e.st == ST_OK && e.reason == reason && !(reason == R_VMCALL && l2r.r15 == L2_ISR_MARK);
}

static const char *lin_name(u64 a)
{
    return a == LIN_USER ? "user rw" : a == LIN_SUP ? "supervisor rw" : a == LIN_USER_RO ? "user ro" : "other";
}

static const char *perm_name(u64 p)
{
    static const char *n[] = {"-", "R", "W?", "RW", "XS", "R+XS", "W+XS?", "RW+XS"};
    static char buf[16];
    const char *b = n[p & 7];
    int i = 0;
    if ((p & 7) || !(p & EPT_XU))
        while (*b)
            buf[i++] = *b++;
    if (p & EPT_XU) {
        const char *s = (p & 7) ? "+XU" : "XU";
        while (*s)
            buf[i++] = *s++;
    }
    buf[i] = 0;
    return buf;
}

/* A VMCS for L2 at script with EPT and MBEC, EPT12 mapping the PD page and the code page
 * (perm; the EPT12 tables above it with XU unless tables_xu is FALSE: XU is AND-ed over the
 * walk, 28.2.1 bit 6). */
static BOOLEAN prepare(const char *tag, const char *script, u64 perm, BOOLEAN tables_xu)
{
    if (!ept_setup_l2(tag, script))
        return FALSE;
    vw(PROC2_CTLS, adj(P2_EPT | P2_MBEC, cap.proc2));
    if (!ept_map(G + 0x6000, PA(pd), EPT_R | EPT_W) || !ept_map(G + 0x1000, PA(code), EPT_R)) {
        out("%s: ERROR: EPT layout", tag);
        return FALSE;
    }
    *ept_entry(G + 0x1000, 1) = PA(code) | perm | EPT_WB;
    for (int l = 2; l <= 4 && tables_xu; l++)
        *ept_entry(G + 0x1000, l) |= EPT_XU;
    ept_invept(tag);
    return TRUE;
}

/* L2 calls the code page at linear lin: it returns 0xc0de in EAX, or the EPT violation. */
static void call(const char *tag, u64 perm, u64 lin, BOOLEAN tables_xu)
{
    if (!prepare(tag, l2_ept_call, perm, tables_xu))
        return;
    l2r.rbx = lin;
    l2_run(&e);
    if (is(R_VMCALL)) {
        out("%s: %s page, fetch from %s address: L2 ran it, eax 0x%llx", tag, perm_name(perm), lin_name(lin),
            l2r.rax & 0xffffffff);
        return;
    }
    if (!is(R_EPT_VIOL)) {
        finish(tag, &e);
        return;
    }
    out("%s: %s page, fetch from %s address: exit 48 qual 0x%llx gpa G+0x%llx linear %s", tag, perm_name(perm),
        lin_name(lin), e.qual & QUAL_MASK, vr(G_PHYS_ADDR) - G,
        (e.qual & 0x80) && vr(G_LINEAR_ADDR) == lin ? "as used" : "other");
}

void s_mbec(void)
{
    BOOLEAN ept = cap.secondary && allowed(P2_EPT, cap.proc2);
    BOOLEAN adv = ept && ((cap.ept_vpid >> 22) & 1);
    out("mbec: advanced EPT-violation information %s", adv ? "offered" : "not offered");
    if (!ept || !allowed(P2_MBEC, cap.proc2) || !ept_page(1)) {
        out("mbec: not offered");
        return;
    }
    pd = ept_page(0);
    code = ept_page(1);
    static const u8 ret_c0de[] = {0xb8, 0xde, 0xc0, 0, 0, 0xc3}; /* mov eax, 0xc0de; ret */
    for (int i = 0; i < 4096; i++)
        code[i] = i < (int)sizeof(ret_c0de) ? ret_c0de[i] : 0xcc;
    u64 *pdq = (u64 *)pd;
    for (int i = 0; i < 512; i++)
        pdq[i] = 0;
    pdq[0] = G | 0x87; /* 2 MiB: present, read/write, user */
    pdq[1] = G | 0x83; /* present, read/write, supervisor */
    pdq[2] = G | 0x85; /* present, read-only, user */
    u64 *pml4 = (u64 *)m.pml4_a, *pdpt = (u64 *)m.pdpt;
    u64 saved_pml4 = pml4[0], saved_pdpt = pdpt[3];
    pml4[0] |= 4; /* U/S: addresses are user-mode only where every level says so (SDM 4.6) */
    pdpt[3] = (G + 0x6000) | 7;

    const char *tag = "mbec: fetch";
    u64 perms[] = {EPT_R | EPT_X, EPT_R | EPT_XU, EPT_R | EPT_X | EPT_XU, EPT_R | EPT_W};
    for (unsigned i = 0; i < sizeof(perms) / sizeof(perms[0]); i++) {
        call(tag, perms[i], LIN_SUP, TRUE);
        call(tag, perms[i], LIN_USER, TRUE);
    }
    call(tag, EPT_R | EPT_X | EPT_XU, LIN_USER_RO, TRUE);
    call(tag, EPT_R | EPT_X, LIN_USER_RO, TRUE);
    if ((cap.ept_vpid & 1)) /* execute-only translations (SDM A.10 bit 0) */
        call(tag, EPT_XU, LIN_USER, TRUE);
    tag = "mbec: fetch, EPT12 tables without XU";
    call(tag, EPT_R | EPT_X | EPT_XU, LIN_USER, FALSE);
    call(tag, EPT_R | EPT_X | EPT_XU, LIN_SUP, FALSE);

    /* A write to a supervisor read/write page EPT12 maps R+XS: bits 9-11 of a data access. */
    tag = "mbec: write";
    if (prepare(tag, l2_ept_rw, EPT_R | EPT_X, FALSE)) {
        l2r.rbx = LIN_SUP + 0x20;
        l2r.rcx = 0x1234;
        l2_run(&e);
        if (is(R_EPT_VIOL))
            out("%s: R+XS page, write to supervisor rw address: exit 48 qual 0x%llx gpa G+0x%llx", tag,
                e.qual & QUAL_MASK, vr(G_PHYS_ADDR) - G);
        else
            finish(tag, &e);
    }

    /* 26.2.1.1: MBEC requires "enable EPT". */
    tag = "mbec: without EPT";
    vmcs_init(0, l2_ept_call);
    set_proc(P_SECONDARY);
    vw(PROC2_CTLS, adj(P2_MBEC, cap.proc2));
    l2_run(&e);
    finish(tag, &e);

    pml4[0] = saved_pml4;
    pdpt[3] = saved_pdpt;
}
