/*
 * Scenario 9, the last one: EPT (SDM Vol. 3C 29.3) and unrestricted guest, only if the
 * capabilities offer EPT with a 4-level walk and WB paging structures (SDM A.10); else one
 * line "ept: not offered". run-diff.sh compares the "ept:" lines apart from the others.
 *
 * L1's EPT ("EPT12") maps the pages L2 needs one to one (l1.efi's image, the page block of
 * main.c: stack, page tables, IDT, GDT) and the test pages at L2-physical G + offset, which
 * L2's identity page tables reach at linear G + offset. Test pages hold a pattern: quadword
 * i of a page with tag t reads (t << 48) | 8i, so a value names its page and offset.
 * No A/D flags (EPTP bit 6 = 0), no #VE, no EPTP switching; leaves use memory type WB.
 */
#include "l1.h"

#define G 0x40000000ull /* L2-physical base of the test pages, printed as "G+0x..." */
#define QUAL_MASK 0x11bfull /* EPT-violation qualification bits 5:0, 7, 8, 12 (SDM Table 28-7) */
enum { EPT_R = 1, EPT_W = 2, EPT_X = 4, EPT_RWX = 7, EPT_WB = 6 << 3, EPT_PS = 1 << 7 };
enum { POOL = 16, DATA = 12 };

static u8 *pool;          /* EPT paging structures: page 0 is the PML4 */
static u8 *data[DATA];    /* test pages */
static u8 *big;           /* 2 MiB, 2 MiB-aligned (for the 2 MiB EPT page) */
static unsigned pool_used;
static BOOLEAN pool_full;
static u64 eptp;
static struct exit e;

static BOOLEAN ept_offered(void)
{
    return cap.secondary && ((cap.proc2 >> 32) & P2_EPT) && (cap.ept_vpid & (1ull << 6)) &&
           (cap.ept_vpid & (1ull << 14)); /* SDM A.10: 4-level walk, WB */
}
static BOOLEAN has(int bit) { return (cap.ept_vpid >> bit) & 1; }

void ept_alloc(void)
{
    if (!ept_offered())
        return;
    EFI_PHYSICAL_ADDRESS a = 0xffffffff;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, POOL + DATA, &a)))
        return;
    EFI_PHYSICAL_ADDRESS b = 0xffffffff; /* 4 MiB hold one aligned 2 MiB */
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, 1024, &b)))
        return;
    pool = (u8 *)(UINTN)a;
    for (int i = 0; i < DATA; i++)
        data[i] = pool + (POOL + i) * 4096;
    big = (u8 *)(UINTN)((b + 0x1fffff) & ~0x1fffffull);
}

static void zero(u8 *p)
{
    for (int i = 0; i < 4096; i++)
        p[i] = 0;
}

static void fill(u8 *p, u64 tag)
{
    for (u64 i = 0; i < 512; i++)
        ((u64 *)p)[i] = tag << 48 | i * 8;
}

/* ---- EPT12 ---- */
static void ept_reset(void)
{
    zero(pool);
    pool_used = 1;
    pool_full = FALSE;
    eptp = PA(pool) | 6 | 3 << 3; /* WB, walk length 4 (SDM 25.6.11) */
}

/* The entry for gpa at level 1 (PTE, 4 KiB) or 2 (PDE, 2 MiB); tables made as needed. */
static u64 *slot(u64 gpa, int level)
{
    u64 *t = (u64 *)pool;
    for (int l = 4; l > level; l--) {
        u64 *ent = &t[gpa >> (12 + 9 * (l - 1)) & 511];
        if (!(*ent & 7)) {
            if (pool_used == POOL) {
                pool_full = TRUE;
                return NULL;
            }
            u8 *p = pool + 4096 * pool_used++;
            zero(p);
            *ent = PA(p) | EPT_RWX; /* non-leaf: bits 7:3 reserved (SDM 29.3.2) */
        }
        t = (u64 *)(UINTN)(*ent & 0x000ffffffffff000ull);
    }
    return &t[gpa >> (12 + 9 * (level - 1)) & 511];
}

/* Map one 4 KiB page; a different mapping already there is a layout conflict. */
static BOOLEAN map(u64 gpa, u64 hpa, u32 perm)
{
    u64 *s = slot(gpa, 1);
    if (!s)
        return FALSE;
    u64 v = hpa | perm | EPT_WB;
    if ((*s & 7) && *s != v)
        return FALSE;
    *s = v;
    return TRUE;
}

static void set_pte(u64 gpa, u64 v)
{
    u64 *s = slot(gpa, 1);
    if (s)
        *s = v;
}

static BOOLEAN map_range(u64 start, u64 end, u32 perm)
{
    for (u64 p = start & ~0xfffull; p < end; p += 4096)
        if (!map(p, p, perm))
            return FALSE;
    return TRUE;
}

/* What L2 needs, one to one: code (and IDT stubs) in the image; stack, page tables, IDT,
 * GDT in main.c's block (m.vmxon .. the stack top). */
static BOOLEAN map_identity(void)
{
    return map_range(image_base, image_base + image_size, EPT_R | EPT_X) &&
           map_range(PA(m.vmxon), L2_STACK_TOP, EPT_R | EPT_W);
}

/* INVEPT for EPT12 after changing a present entry: single-context if supported, else global. */
static void inv(const char *tag)
{
    int st = has(25) ? invept_(1, eptp) : has(26) ? invept_(2, eptp) : ST_OK;
    if (st != ST_OK)
        out("%s: ERROR: invept %s", tag, st_str(st));
}

/* ---- the VMCS ---- */
static void ept_vmcs(const char *script, u32 p2)
{
    vmcs_init(0, script);
    set_proc(P_SECONDARY);
    vw(PROC2_CTLS, adj(P2_EPT | p2, cap.proc2));
    vw(EPTP, eptp);
}

/* A fresh EPT12 with the identity part and a VMCS for a 64-bit L2 at script. */
static BOOLEAN setup(const char *tag, const char *script)
{
    ept_reset();
    if (!map_identity()) {
        out("%s: ERROR: EPT layout (%s)", tag, pool_full ? "pool full" : "overlaps the test pages");
        return FALSE;
    }
    ept_vmcs(script, 0);
    for (unsigned k = 0; k < sizeof(l2r) / 8; k++)
        ((u64 *)&l2r)[k] = 0;
    return TRUE;
}

/* The exit was `reason` (a VMCALL only if it is not an L2 IDT stub's). */
static BOOLEAN is(u32 reason)
{
    return e.st == ST_OK && e.reason == reason && !(reason == R_VMCALL && l2r.r15 == L2_ISR_MARK);
}

/* "G+0x18", "script+0x3" or "elsewhere": addresses without host addresses in them. */
static const char *where(u64 a)
{
    static char bufs[4][32];
    static unsigned k;
    char *s = bufs[k++ & 3];
    const char *pre;
    u64 off;
    if (a >= G && a - G < 0x100000000ull) {
        pre = "G+0x";
        off = a - G;
    } else if (e.base && a >= PA(e.base) && a - PA(e.base) < 0x1000) {
        pre = "script+0x";
        off = a - PA(e.base);
    } else {
        return "elsewhere";
    }
    int i = 0;
    while (*pre)
        s[i++] = *pre++;
    char d[20];
    int j = 0;
    do {
        d[j++] = "0123456789abcdef"[off & 15];
        off >>= 4;
    } while (off);
    while (j)
        s[i++] = d[--j];
    s[i] = 0;
    return s;
}

/* An EPT exit: reason, qualification (violations: the defined bits), guest-physical address,
 * whether the guest-linear address is the one L2 used, where L2 was. Anything else: as usual. */
static BOOLEAN pr_ept(const char *tag, u32 want, u64 linear)
{
    if (!is(want)) {
        if (e.st == ST_OK && e.reason == R_VMCALL && l2r.r15 == L2_ISR_MARK)
            out("%s: L2 took vector %llu", tag, l2r.rbx);
        else
            pr_exit(tag, &e, F_LEN);
        return FALSE;
    }
    u64 gpa = vr(G_PHYS_ADDR);
    if (want == R_EPT_MISC) { /* no qualification (SDM 28.2.1) */
        out("%s: exit %u gpa %s at %s", tag, e.reason, where(gpa), where(e.rip));
        return TRUE;
    }
    const char *la = "not valid";
    if (e.qual & 0x80) /* bit 7: guest-linear address valid */
        la = vr(G_LINEAR_ADDR) == linear ? "as used" : "other";
    out("%s: exit %u qual 0x%llx gpa %s linear %s at %s", tag, e.reason, e.qual & QUAL_MASK, where(gpa), la,
        where(e.rip));
    return TRUE;
}

/* Resume and expect L2's final VMCALL (anything else is printed by finish). */
static BOOLEAN to_vmcall(const char *tag)
{
    l2_run(&e);
    finish(tag, &e);
    return is(R_VMCALL);
}

BOOLEAN ept_setup_l2(const char *tag, const char *script)
{
    return ept_offered() && pool && setup(tag, script);
}

BOOLEAN ept_map_rwx(u64 l2pa, u64 l1pa) { return map(l2pa, l1pa, EPT_RWX); }
BOOLEAN ept_map(u64 l2pa, u64 l1pa, u32 perm) { return map(l2pa, l1pa, perm); }
u64 *ept_entry(u64 gpa, int level) { return slot(gpa, level); }
u64 ept_eptp(void) { return eptp; }
void ept_invept(const char *tag) { inv(tag); }
u8 *ept_page(int i) { return i >= 0 && i < DATA ? data[i] : NULL; }

/* 1: EPT12 maps what L2 needs one to one: CPUID exits as without EPT. */
static void t_identity(void)
{
    const char *tag = "ept: identity map, 64-bit L2 cpuid";
    if (!setup(tag, l2_cpuid))
        return;
    l2_run(&e);
    pr_exit(tag, &e, F_LEN);
    if (!is(R_CPUID))
        return;
    l2_skip(&e);
    if (to_vmcall(tag))
        out("%s: L2 reached its vmcall", tag);
}

/* 2: a read of an unmapped L2-physical page, then L1 maps it and resumes without INVEPT
 * (not-present entries are not cached; the violation invalidates what was, SDM 29.4.3.1).
 * Then a violation in L2's own page walk: a PD at an unmapped L2-physical page. */
static void t_absent(void)
{
    const char *tag = "ept: read of an unmapped page";
    if (!setup(tag, l2_ept_read))
        return;
    fill(data[0], 0xa1);
    l2r.rbx = G + 0x18;
    l2_run(&e);
    if (!pr_ept(tag, R_EPT_VIOL, l2r.rbx))
        return;
    map(G, PA(data[0]), EPT_R);
    if (to_vmcall(tag))
        out("%s: mapped read-only, no INVEPT: L2 read 0x%llx", tag, l2r.rax);

    tag = "ept: L2 page table in an unmapped page";
    u64 *pdpt = (u64 *)m.pdpt, saved = pdpt[3];
    pdpt[3] = (G + 0x6000) | 3; /* L2's PD for linear 3-4 GiB: L2-physical G+0x6000 */
    zero(data[1]);
    ((u64 *)data[1])[0] = G | 0x83; /* linear 0xc0000000 -> L2-physical G, a 2 MiB page */
    vw(G_RIP, PA(l2_ept_read));
    l2r.rbx = 0xc0000020;
    l2_run(&e); /* a read of a paging structure: qual bit 8 = 0 (SDM Table 28-7) */
    if (pr_ept(tag, R_EPT_VIOL, l2r.rbx)) {
        map(G + 0x6000, PA(data[1]), EPT_R | EPT_W); /* the walk sets accessed flags */
        if (to_vmcall(tag))
            out("%s: mapped, no INVEPT: L2 read 0x%llx", tag, l2r.rax);
    }
    pdpt[3] = saved;
}

/* 3: permissions. Each fix is resumed without INVEPT: an EPT violation invalidates the
 * mappings that would translate its guest-physical (and linear) address (SDM 29.4.3.1). */
static void t_perm(void)
{
    const char *tag = "ept: write to a read-only page";
    if (setup(tag, l2_ept_rw)) {
        fill(data[2], 0xa2);
        map(G + 0x1000, PA(data[2]), EPT_R);
        l2r.rbx = G + 0x1020;
        l2r.rcx = 0x5a5a5a5a12345678ull;
        l2_run(&e); /* the read succeeds, the store exits */
        if (pr_ept(tag, R_EPT_VIOL, l2r.rbx)) {
            out("%s: L2 read 0x%llx before the store", tag, l2r.rax);
            set_pte(G + 0x1000, PA(data[2]) | EPT_R | EPT_W | EPT_WB);
            if (to_vmcall(tag))
                out("%s: made writable, no INVEPT: the page holds 0x%llx", tag, ((u64 *)data[2])[4]);
        }
    }

    tag = "ept: fetch from a read/write page";
    if (setup(tag, l2_ept_call)) {
        static const u8 code[] = {0xb8, 0xde, 0xc0, 0, 0, 0xc3}; /* mov eax, 0xc0de; ret */
        zero(data[3]);
        for (unsigned i = 0; i < sizeof(code); i++)
            data[3][i] = code[i];
        map(G + 0x2000, PA(data[3]), EPT_R | EPT_W);
        l2r.rbx = G + 0x2000;
        l2_run(&e);
        if (pr_ept(tag, R_EPT_VIOL, l2r.rbx)) {
            set_pte(G + 0x2000, PA(data[3]) | EPT_RWX | EPT_WB);
            if (to_vmcall(tag))
                out("%s: made executable, no INVEPT: L2 ran it, eax 0x%llx", tag, l2r.rax & 0xffffffff);
        }
    }

    tag = "ept: read of an execute-only page";
    if (!has(0)) { /* SDM A.10: bit 0, execute-only translations */
        out("%s: not supported", tag);
        return;
    }
    if (setup(tag, l2_ept_read)) {
        fill(data[4], 0xa4);
        map(G + 0x3000, PA(data[4]), EPT_X);
        l2r.rbx = G + 0x3028;
        l2_run(&e);
        if (pr_ept(tag, R_EPT_VIOL, l2r.rbx)) {
            set_pte(G + 0x3000, PA(data[4]) | EPT_R | EPT_X | EPT_WB);
            if (to_vmcall(tag))
                out("%s: made readable, no INVEPT: L2 read 0x%llx", tag, l2r.rax);
        }
    }
}

/* 4: L2-physical G+0x4000 -> Z, then Z2 with single-context INVEPT, then Z3 with global. */
static void t_remap(void)
{
    const char *tag = "ept: remap";
    if (!setup(tag, l2_ept_read))
        return;
    fill(data[5], 0xb1);
    fill(data[6], 0xb2);
    fill(data[7], 0xb3);
    map(G + 0x4000, PA(data[5]), EPT_R);
    l2r.rbx = G + 0x4030;
    l2_run(&e);
    finish(tag, &e);
    if (!is(R_VMCALL))
        return;
    out("%s: G+0x4000 -> page b1: L2 read 0x%llx", tag, l2r.rax);
    static const struct { int type, bit; const char *name; } t[] = {
        {1, 25, "single-context"}, {2, 26, "all-context"}};
    for (int i = 0; i < 2; i++) {
        if (!has(t[i].bit)) {
            out("%s: invept %s not supported", tag, t[i].name);
            continue;
        }
        set_pte(G + 0x4000, PA(data[6 + i]) | EPT_R | EPT_WB);
        int st = invept_(t[i].type, eptp);
        vw(G_RIP, PA(l2_ept_read));
        if (!to_vmcall(tag))
            return;
        out("%s: -> page b%d, invept %s %s: L2 read 0x%llx", tag, 2 + i, t[i].name, st_str(st), l2r.rax);
    }
}

/* 5: a 2 MiB EPT page (SDM A.10 bit 16): two reads at different 4 KiB offsets, then a
 * write to it while it is read-only. */
static void t_large(void)
{
    const char *tag = "ept: 2 MiB page";
    if (!has(16)) {
        out("%s: not supported", tag);
        return;
    }
    if (!setup(tag, l2_ept_rd2))
        return;
    fill(big + 0x3000, 0xc1);
    fill(big + 0x1fe000, 0xc2);
    u64 *pde = slot(G + 0x200000, 2);
    if (!pde)
        return;
    *pde = PA(big) | EPT_R | EPT_PS | EPT_WB;
    l2r.rbx = G + 0x203008;
    l2r.rcx = G + 0x3fe010;
    if (to_vmcall(tag))
        out("%s: L2 read 0x%llx at G+0x203008 and 0x%llx at G+0x3fe010", tag, l2r.rax, l2r.rdx);

    tag = "ept: write to a read-only 2 MiB page";
    if (!setup(tag, l2_ept_rw) || !(pde = slot(G + 0x200000, 2)))
        return;
    *pde = PA(big) | EPT_R | EPT_PS | EPT_WB;
    l2r.rbx = G + 0x3fe010;
    l2r.rcx = 0x2222333344445555ull;
    l2_run(&e);
    if (pr_ept(tag, R_EPT_VIOL, l2r.rbx)) {
        *pde = PA(big) | EPT_R | EPT_W | EPT_PS | EPT_WB;
        if (to_vmcall(tag))
            out("%s: made writable, no INVEPT: the page holds 0x%llx", tag, ((u64 *)(big + 0x1fe000))[2]);
    }
}

/* 6: EPT misconfigurations (SDM 29.3.3.1): a leaf that is writable but not readable, and a
 * leaf with the reserved memory type 7. Fixed, INVEPT, resumed. */
static void t_misconfig(void)
{
    const char *tag = "ept: misconfig, leaf W=1 R=0";
    if (!setup(tag, l2_ept_read))
        return;
    fill(data[8], 0xd1);
    map(G + 0x5000, PA(data[8]), EPT_W);
    l2r.rbx = G + 0x5038;
    l2_run(&e);
    if (!pr_ept(tag, R_EPT_MISC, 0))
        return;
    set_pte(G + 0x5000, PA(data[8]) | EPT_R | EPT_WB);
    inv(tag);
    if (!to_vmcall(tag))
        return;
    out("%s: fixed, INVEPT: L2 read 0x%llx", tag, l2r.rax);

    tag = "ept: misconfig, leaf memory type 7";
    set_pte(G + 0x5000, PA(data[8]) | EPT_R | 7 << 3);
    inv(tag);
    vw(G_RIP, PA(l2_ept_read));
    l2_run(&e);
    if (!pr_ept(tag, R_EPT_MISC, 0))
        return;
    set_pte(G + 0x5000, PA(data[8]) | EPT_R | EPT_WB);
    inv(tag);
    if (to_vmcall(tag))
        out("%s: fixed, INVEPT: L2 read 0x%llx", tag, l2r.rax);
}

/* 7: unrestricted guest (secondary control 7): L2 in real mode, CR0.PE = PG = 0, which the
 * CR0 fixed-bit check then allows (SDM 27.3.1.1); segments as real mode has them
 * (SDM 27.3.1.2 with "unrestricted guest" 1). Code at CS 0x1000:0x100, L2-physical 0x10100. */
static void t_unrestricted(void)
{
    const char *tag = "ept: unrestricted guest, real mode";
    if (!((cap.proc2 >> 32) & P2_UG)) {
        out("%s: not supported", tag);
        return;
    }
    ept_reset();
    static const u8 code[] = {0x0f, 0xa2, 0x0f, 0x01, 0xc1, 0x0f, 0x0b}; /* cpuid; vmcall; ud2 */
    zero(data[9]);
    for (unsigned i = 0; i < sizeof(code); i++)
        data[9][0x100 + i] = code[i];
    if (!map(0x10000, PA(data[9]), EPT_RWX)) {
        out("%s: ERROR: EPT layout", tag);
        return;
    }
    ept_vmcs(l2_vmcall, P2_UG);
    vw(ENTRY_CTLS, adj(0, cap.entry)); /* not IA-32e mode */
    vw(G_CR0, cap.cr0_fixed0 & ~0x80000001ull);
    vw(G_CR3, 0);
    vw(G_CR4, cap.cr4_fixed0);
    const u32 segs[] = {G_ES_SEL, G_SS_SEL, G_DS_SEL, G_FS_SEL, G_GS_SEL};
    for (unsigned k = 0; k < 5; k++) {
        u32 s = segs[k];
        vw(s, 0);
        vw(s - G_ES_SEL + G_ES_LIMIT, 0xffff);
        vw(s - G_ES_SEL + G_ES_AR, 0x93); /* data RW accessed, P, 16-bit */
        vw(s - G_ES_SEL + G_ES_BASE, 0);
    }
    vw(G_CS_SEL, 0x1000);
    vw(G_CS_LIMIT, 0xffff);
    vw(G_CS_AR, 0x9b); /* code XR accessed, P, 16-bit */
    vw(G_CS_BASE, 0x10000);
    vw(G_IDTR_BASE, 0);
    vw(G_IDTR_LIMIT, 0x3ff);
    vw(G_RIP, 0x100);
    vw(G_RSP, 0);
    for (unsigned k = 0; k < sizeof(l2r) / 8; k++)
        ((u64 *)&l2r)[k] = 0;
    l2_run(&e);
    if (!is(R_CPUID)) {
        pr_exit(tag, &e, F_LEN | F_NORIP);
        return;
    }
    u64 cr0 = vr(G_CR0);
    out("%s: exit %u len %u cs 0x%llx rip 0x%llx cr0.PE %llu cr0.PG %llu", tag, e.reason, e.len, vr(G_CS_SEL),
        e.rip, cr0 & 1, cr0 >> 31 & 1);
    l2_skip(&e);
    l2_run(&e);
    if (is(R_VMCALL))
        out("%s: exit %u len %u cs 0x%llx rip 0x%llx", tag, e.reason, e.len, vr(G_CS_SEL), e.rip);
    else
        pr_exit(tag, &e, F_LEN | F_NORIP);
}

/* 8: INVEPT's checks (SDM 31.3 INVEPT): the type against the capabilities; for a
 * single-context INVEPT, the EPTP as VM entry checks it (SDM 27.2.1.1); a global one
 * ignores the descriptor. VMfailValid needs a current VMCS, VMfailInvalid without. */
static void t_invept(void)
{
    const char *tag = "ept: invept";
    if (!cap.invept) {
        out("%s: not supported", tag);
        return;
    }
    ept_reset();
    ept_vmcs(l2_vmcall, 0);
    static const struct { u64 type, set, clear; const char *what; } t[] = {
        {3, 0, 0, "type 3"},
        {1, 0, 0x38, "single-context, page-walk length 1"},
        {1, 2, 7, "single-context, EPTP memory type 2"},
        {1, 0x100, 0, "single-context, EPTP reserved bit 8"},
        {1, 0, 0, "single-context, EPTP bit MAXPHYADDR"},
        {1, 0, 0, "single-context, valid EPTP"},
        {2, 0x102, 0x3f, "all-context, invalid EPTP in the descriptor"},
    };
    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        u64 v = (eptp & ~t[i].clear) | t[i].set;
        if (i == 4)
            v |= 1ull << cap.maxphys;
        out("%s %s: %s", tag, t[i].what, st_str(invept_(t[i].type, v)));
    }
    vmcs_clear(0);
    out("%s type 3, no current VMCS: %s", tag, st_str(invept_(3, eptp)));
    out("%s single-context, valid EPTP, no current VMCS: %s", tag, st_str(invept_(1, eptp)));
}

void s_ept(void)
{
    if (!ept_offered()) {
        out("ept: not offered");
        return;
    }
    if (!pool) {
        out("ept: ERROR: AllocatePages failed");
        return;
    }
    out("ept: caps: execute-only %s 2m-pages %s invept-single %s invept-all %s unrestricted-guest %s",
        has(0) ? "yes" : "no", has(16) ? "yes" : "no", has(25) ? "yes" : "no", has(26) ? "yes" : "no",
        ((cap.proc2 >> 32) & P2_UG) ? "yes" : "no");
    out("ept: test pages at L2-physical G = 0x%llx", G);
    t_identity();
    t_absent();
    t_perm();
    t_remap();
    t_large();
    t_misconfig();
    t_unrestricted();
    t_invept();
}
