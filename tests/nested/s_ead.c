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
}
