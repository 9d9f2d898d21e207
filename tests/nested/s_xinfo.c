/*
 * Scenario 18, after s_mbec.c (its lines fall in run-diff.sh's EPT section): the exit-
 * information fields the CPU writes only for some exits (SDM 28.2.1, 28.2.5) keep, at the
 * other exits, what L1's previous exit left. Under hv, L2's first touch of a page EPT12 maps
 * is an EPT violation of vmcs02 that hv handles itself (it fills EPT02) and hides from L1;
 * the CPUID exit that follows must not show L1 that hidden exit's guest-physical and
 * guest-linear addresses.
 *
 * L2 reads L2-physical G+0x1000 (not in EPT12: an EPT violation for L1, which maps it and
 * resumes), then G+0x5000 (mapped from the start, never touched), then executes CPUID.
 * Printed after each exit: the guest-physical and guest-linear addresses (as offsets from
 * G) and, at the CPUID exit, the VM-exit instruction information.
 */
#include "l1.h"

#define G 0x40000000ull
extern char l2_ept_rd2_cpuid[];

static struct exit e;

static BOOLEAN is(u32 reason)
{
    return e.st == ST_OK && e.reason == reason && !(reason == R_VMCALL && l2r.r15 == L2_ISR_MARK);
}

/* An offset from G ("G+0x1000") or "elsewhere": no host addresses. */
static void pr_addrs(const char *tag, const char *what)
{
    u64 gpa = vr(G_PHYS_ADDR), gla = vr(G_LINEAR_ADDR);
    BOOLEAN gpa_g = gpa >= G && gpa - G < 0x100000, gla_g = gla >= G && gla - G < 0x100000;
    out("%s: %s: exit %u, guest-physical %s0x%llx, guest-linear %s0x%llx", tag, what, e.reason,
        gpa_g ? "G+" : "elsewhere ", gpa_g ? gpa - G : 0, gla_g ? "G+" : "elsewhere ", gla_g ? gla - G : 0);
}

void s_xinfo(void)
{
    const char *tag = "ept: exit info after an EPT02 fill";
    u8 *x = ept_page(1), *y = ept_page(5);
    if (!x || !y || !ept_setup_l2(tag, l2_ept_rd2_cpuid))
        return; /* no EPT: s_ept.c said so */
    if (!ept_map_rwx(G + 0x5000, PA(y))) {
        out("%s: ERROR: EPT layout", tag);
        return;
    }
    l2r.rbx = G + 0x1000;
    l2r.rcx = G + 0x5000;
    l2_run(&e);
    if (!is(R_EPT_VIOL)) {
        pr_exit(tag, &e, F_LEN);
        return;
    }
    pr_addrs(tag, "L2 reads an unmapped page");
    if (!ept_map_rwx(G + 0x1000, PA(x))) { /* not present before: no INVEPT (SDM 29.4.3.1) */
        out("%s: ERROR: EPT layout", tag);
        return;
    }
    l2_run(&e);
    if (!is(R_CPUID)) {
        pr_exit(tag, &e, F_LEN);
        return;
    }
    pr_addrs(tag, "then a mapped page, then CPUID");
    out("%s: CPUID exit: instruction information 0x%x, length %u", tag, e.info, e.len);
    l2_skip(&e);
    l2_run(&e);
    finish(tag, &e);
    if (is(R_VMCALL))
        out("%s: L2 reached its vmcall", tag);
    ept_invept(tag); /* the next scenario rewrites EPT12's present entries (29.4.3.1) */
}
