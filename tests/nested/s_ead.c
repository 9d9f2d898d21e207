/*
 * Scenario 13, after s_ept.c (its lines fall in run-diff.sh's EPT section): accessed and
 * dirty flags for EPT (SDM Vol. 3C 29.3.5; IA32_VMX_EPT_VPID_CAP bit 21, EPTP bit 6) and
 * page-modification logging (29.3.6; secondary control 17), each only where offered.
 *
 * L1's EPT12 comes from s_ept.c (a fresh one per test, what L2 needs mapped one to one, test
 * pages at L2-physical G + offset), with EPTP bit 6 and an INVEPT after each change of it.
 * Printed: the A/D bits of the EPT12 entries that map a test page ("A A A AD": PML4E, PDPTE,
 * PDE, PTE; '-' for neither), the qualification of each EPT violation, and with PML the
 * logged addresses (by name: no host address is printed), the index and the PML-full exit.
 */
#include "l1.h"

#define G 0x40000000ull
#define QUAL_MASK 0x11bfull /* EPT-violation qualification bits 5:0, 7, 8, 12 (SDM Table 28-7) */
enum { EPT_R = 1, EPT_W = 2, EPT_X = 4, EPT_WB = 6 << 3, EPTP_AD = 1 << 6 };
enum { F_A = 1 << 8, F_D = 1 << 9 };
enum { P2_PML = 1 << 17, PML_ADDR = 0x200e, PML_INDEX = 0x0812, R_PML_FULL = 62 };

static struct exit e;

static BOOLEAN has(int bit) { return (cap.ept_vpid >> bit) & 1; }
static BOOLEAN is(u32 reason)
{
    return e.st == ST_OK && e.reason == reason && !(reason == R_VMCALL && l2r.r15 == L2_ISR_MARK);
}

static void fill(u8 *p, u64 tag)
{
    for (u64 i = 0; i < 512; i++)
        ((u64 *)p)[i] = tag << 48 | i * 8;
}

/* The A/D bits of the EPT12 entries for gpa, PML4E first (down to a PTE). */
static const char *flags(u64 gpa)
{
    static char bufs[2][24];
    static unsigned k;
    char *s = bufs[k++ & 1], *p = s;
    for (int l = 4; l >= 1; l--) {
        u64 *x = ept_entry(gpa, l);
        if (!x)
            return "ERROR";
        if (p != s)
            *p++ = ' ';
        if (!(*x & (F_A | F_D)))
            *p++ = '-';
        if (*x & F_A)
            *p++ = 'A';
        if (*x & F_D)
            *p++ = 'D';
    }
    *p = 0;
    return s;
}

/* A fresh EPT12 with EPTP bit 6 and L2 at script; FALSE (and a line) if that cannot be. */
static BOOLEAN setup(const char *tag, const char *script)
{
    if (!ept_setup_l2(tag, script))
        return FALSE;
    vw(EPTP, ept_eptp() | EPTP_AD);
    return TRUE;
}

/* Resume to L2's final VMCALL (anything else is printed). */
static BOOLEAN to_vmcall(const char *tag)
{
    l2_run(&e);
    finish(tag, &e);
    return is(R_VMCALL);
}

/* An EPT violation: its qualification (the defined bits), whether the guest-physical
 * address is want, L2's RIP in script; anything else as usual. */
static BOOLEAN pr_viol(const char *tag, u64 want, const char *script)
{
    if (!is(R_EPT_VIOL)) {
        pr_exit(tag, &e, F_LEN);
        return FALSE;
    }
    out("%s: exit %u qual 0x%llx gpa %s at +%llu", tag, e.reason, e.qual & QUAL_MASK,
        vr(G_PHYS_ADDR) == want ? "as expected" : "other", e.rip - PA(script));
    return TRUE;
}

/* 1: a read, then a write of the same page (clean, then dirty); flags cleared by L1 with
 * INVEPT, then a fetch-free read again; a write to a read-only page (EPT violation: no D). */
static void t_rw(void)
{
    const char *tag = "ead: read, then write";
    u8 *p0 = ept_page(0), *p1 = ept_page(1);
    if (!setup(tag, l2_ept_read))
        return;
    if (!ept_map(G, PA(p0), EPT_R | EPT_W) || !ept_map(G + 0x1000, PA(p1), EPT_R)) {
        out("%s: ERROR: EPT layout", tag);
        return;
    }
    ept_invept(tag);
    out("%s: before L2 runs: G+0x0 %s, G+0x1000 %s", tag, flags(G), flags(G + 0x1000));
    fill(p0, 0xe0);
    fill(p1, 0xe1);
    l2r.rbx = G + 0x18;
    if (!to_vmcall(tag))
        return;
    out("%s: L2 read 0x%llx: G+0x0 %s, G+0x1000 %s", tag, l2r.rax, flags(G), flags(G + 0x1000));
    vw(G_RIP, PA(l2_ept_rw));
    l2r.rcx = 0x0123456789abcdefull;
    if (!to_vmcall(tag))
        return;
    out("%s: L2 wrote, the page holds 0x%llx: G+0x0 %s", tag, ((u64 *)p0)[3], flags(G));

    tag = "ead: flags cleared, INVEPT, read";
    *ept_entry(G, 1) &= ~(u64)(F_A | F_D);
    *ept_entry(G, 2) &= ~(u64)F_A;
    ept_invept(tag);
    out("%s: G+0x0 %s", tag, flags(G));
    vw(G_RIP, PA(l2_ept_read));
    l2r.rbx = G + 0x20;
    if (to_vmcall(tag))
        out("%s: L2 read 0x%llx: G+0x0 %s", tag, l2r.rax, flags(G));

    tag = "ead: write to a read-only page";
    vw(G_RIP, PA(l2_ept_rw));
    l2r.rbx = G + 0x1028;
    l2_run(&e); /* the read succeeds (A), the store exits: no D */
    if (pr_viol(tag, G + 0x1028, l2_ept_rw))
        out("%s: L2 read 0x%llx first: G+0x1000 %s", tag, l2r.rax, flags(G + 0x1000));
}

/* 2: L2's paging-structure accesses count as writes (29.3.3.2): its PD in a test page whose
 * PDE has A and D set already (no write of L2's own), read-only in EPT12: an EPT violation
 * with "write" in the qualification; made writable: the PD's page is dirty after a read. */
static void t_walk(void)
{
    const char *tag = "ead: L2 page table in a test page";
    u8 *pd = ept_page(2), *p0 = ept_page(3);
    if (!setup(tag, l2_ept_read))
        return;
    if (!ept_map(G + 0x6000, PA(pd), EPT_R) || !ept_map(G, PA(p0), EPT_R | EPT_W)) {
        out("%s: ERROR: EPT layout", tag);
        return;
    }
    ept_invept(tag);
    for (int i = 0; i < 512; i++)
        ((u64 *)pd)[i] = 0;
    ((u64 *)pd)[0] = G | 0xe3; /* linear 0xc0000000 -> L2-physical G: 2 MiB, P RW A D PS */
    fill(p0, 0xe3);
    u64 *pdpt = (u64 *)m.pdpt, saved = pdpt[3];
    pdpt[3] = (G + 0x6000) | 0x23; /* P RW A */
    l2r.rbx = 0xc0000030;
    l2_run(&e);
    if (pr_viol(tag, G + 0x6000, l2_ept_read)) {
        out("%s: G+0x6000 %s", tag, flags(G + 0x6000));
        *ept_entry(G + 0x6000, 1) = PA(pd) | EPT_R | EPT_W | EPT_WB; /* after a violation: no INVEPT */
        if (to_vmcall(tag))
            out("%s: made writable: L2 read 0x%llx: G+0x6000 %s, G+0x0 %s", tag, l2r.rax, flags(G + 0x6000),
                flags(G));
    }
    pdpt[3] = saved;
}

/* A page L2's accesses may log, by name: no host address reaches a line. */
static const char *name(u64 a)
{
    static char bufs[4][24];
    static unsigned k;
    char *s = bufs[k++ & 3];
    const char *fixed = a == PA(m.pml4_a) ? "pml4" : a == PA(m.pdpt) ? "pdpt" : NULL;
    if (a >= PA(m.pd) && a < PA(m.pd) + 4 * 4096 && !(a & 0xfff)) {
        s[0] = 'p', s[1] = 'd', s[2] = (char)('0' + ((a - PA(m.pd)) >> 12)), s[3] = 0;
        return s;
    }
    if (fixed)
        return fixed;
    if (a < G || a - G >= 0x100000 || (a & 0xfff))
        return "other";
    const char *pre = "G+0x";
    int i = 0, j = 0;
    while (*pre)
        s[i++] = *pre++;
    char d[8];
    u64 off = a - G;
    do {
        d[j++] = "0123456789abcdef"[off & 15];
        off >>= 4;
    } while (off);
    while (j)
        s[i++] = d[--j];
    s[i] = 0;
    return s;
}

/* The PML index and the entries logged since it was `from` (from down to index + 1). */
static void pr_log(const char *tag, const u64 *log, u64 from)
{
    u64 index = vr(PML_INDEX);
    char line[200];
    int n = 0;
    for (u64 i = from; i != index && i < 512 && n < 170; i--) {
        const char *s = name(log[i]);
        line[n++] = ' ';
        while (*s)
            line[n++] = *s++;
    }
    line[n] = 0;
    out("%s: index 0x%llx, logged:%s", tag, index, n ? line : " nothing");
}

/* 3: PML (29.3.6) with EPTP bit 6: L2's first run logs each page whose dirty flag it sets
 * (L2's paging structures, as its walks count as writes, and the page it writes); then index
 * 0: one entry, index 0xffff, and the next write to a clean page is a PML-full exit that sets
 * no flag; L1 empties the log and resumes: the write is logged at 511. */
static void t_pml(void)
{
    const char *tag = "ead: pml";
    u8 *log8 = ept_page(4);
    u64 *log = (u64 *)log8;
    if (!allowed(P2_PML, cap.proc2)) {
        out("%s: not supported", tag);
        return;
    }
    if (!setup(tag, l2_ept_rw))
        return;
    if (!ept_map(G + 0x1000, PA(ept_page(5)), EPT_R | EPT_W) || !ept_map(G + 0x2000, PA(ept_page(6)), EPT_R | EPT_W) ||
        !ept_map(G + 0x3000, PA(ept_page(7)), EPT_R | EPT_W)) {
        out("%s: ERROR: EPT layout", tag);
        return;
    }
    ept_invept(tag);
    vw(PROC2_CTLS, adj(P2_EPT | P2_PML, cap.proc2));
    for (int i = 0; i < 512; i++)
        log[i] = 0;
    vw(PML_ADDR, PA(log8));
    vw(PML_INDEX, 511);
    l2r.rbx = G + 0x1008;
    l2r.rcx = 0x1111;
    if (!to_vmcall(tag))
        return;
    pr_log(tag, log, 511);
    out("%s: G+0x1000 %s, G+0x2000 %s", tag, flags(G + 0x1000), flags(G + 0x2000));

    tag = "ead: pml index 0, then full";
    vw(PML_INDEX, 0);
    vw(G_RIP, PA(l2_ept_w2));
    l2r.rbx = G + 0x2010;
    l2r.rdx = G + 0x3018;
    l2_run(&e);
    if (!is(R_PML_FULL)) {
        pr_exit(tag, &e, F_LEN);
        return;
    }
    out("%s: exit %u qual 0x%llx at +%llu", tag, e.reason, e.qual, e.rip - PA(l2_ept_w2));
    pr_log(tag, log, 0);
    out("%s: G+0x2000 %s, G+0x3000 %s; G+0x3018 holds 0x%llx", tag, flags(G + 0x2000), flags(G + 0x3000),
        ((u64 *)ept_page(7))[3]);
    vw(PML_INDEX, 511);
    if (!to_vmcall(tag))
        return;
    pr_log(tag, log, 511);
    out("%s: log emptied, resumed: G+0x3000 %s; G+0x3018 holds 0x%llx", tag, flags(G + 0x3000),
        ((u64 *)ept_page(7))[3]);

    /* Without EPTP bit 6 nothing is logged, and a full log makes no exit. */
    tag = "ead: pml without EPTP bit 6";
    if (!ept_map(G + 0x4000, PA(ept_page(8)), EPT_R | EPT_W))
        return;
    vw(EPTP, ept_eptp());
    ept_invept(tag);
    vw(PML_INDEX, 0xffff);
    vw(G_RIP, PA(l2_ept_rw));
    l2r.rbx = G + 0x4000;
    if (to_vmcall(tag))
        out("%s: L2 wrote: index 0x%llx, G+0x4000 %s", tag, vr(PML_INDEX), flags(G + 0x4000));
}

/* 4: the VM-entry checks of PML (26.2.1.1): "enable EPT" required, the address 4 KiB
 * aligned and within the physical-address width. */
static void t_pml_checks(void)
{
    const char *tag = "ead: pml entry check";
    if (!allowed(P2_PML, cap.proc2) || !setup(tag, l2_vmcall))
        return;
    static const struct { u32 p2; u64 addr; const char *what; } t[] = {
        {P2_PML, 0, "without EPT"},
        {P2_EPT | P2_PML, 8, "address bit 3"},
        {P2_EPT | P2_PML, 1, "address at MAXPHYADDR"},
    };
    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        vw(PROC2_CTLS, adj(t[i].p2, cap.proc2));
        vw(PML_ADDR, i == 2 ? 1ull << cap.maxphys : PA(ept_page(4)) + t[i].addr);
        l2_enter(&e, 0); /* VMfailValid leaves the VMCS clear: VMLAUNCH again */
        out("%s %s: %s", tag, t[i].what, e.st == ST_OK && (e.reason & R_ENTRY_FAIL) ? "entry failure" : st_str(e.st));
    }
}

void s_ead(void)
{
    if (!has(21)) { /* SDM A.10: accessed and dirty flags for EPT */
        out("ead: EPT accessed/dirty flags not offered");
        return;
    }
    if (!ept_page(0) || !ept_setup_l2("ead: setup", l2_vmcall)) {
        out("ead: ERROR: no EPT12");
        return;
    }
    t_rw();
    t_walk();
    t_pml();
    t_pml_checks();
}
