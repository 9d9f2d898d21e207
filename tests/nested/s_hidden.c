/*
 * Scenario 10, under hv only (its lines are "l1hv: ", which run-diff.sh does not compare
 * with the bare run but checks in the hv runs): L2 writes into hv's memory, which hv shows
 * L1 as zeros, read-only (docs/architecture.md, "hv's memory"). Through EPT01 (vmcs12 without
 * EPT: L2 runs on this vCPU's EPT01) and through EPT02 (L1's EPT maps L2 pages onto hv's):
 * an 8-byte store straddling two of hv's pages and a REP STOSB across the boundary. Each
 * must end at L2's VMCALL, with L2 having read zeros, hv's region reading zeros from L1,
 * hv's count of dropped writes grown and its self-check 0 (HV_HC_HIDDEN_WRITES).
 */
#include "l1.h"
#include "../../hv/hypercall.h"

static u64 b; /* a page boundary in hv's region with a page of hv's on both sides; 0: no hv */
static struct exit e;

void hidden_find(void)
{
    u32 a, sig, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(sig), "=c"(c), "=d"(d) : "a"(HV_CPUID_LEAF_BASE), "c"(0));
    if (sig != 0x76687668) /* "hvhv": not under hv (the bare run) */
        return;
    UINTN n = 0, key, dsz = 0;
    UINT32 dver;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&n, &key, &dsz, &dver), *best = NULL;
    for (UINTN i = 0; map && i < n; i++) {
        EFI_MEMORY_DESCRIPTOR *m = (EFI_MEMORY_DESCRIPTOR *)((u8 *)map + i * dsz);
        /* hv's region: the largest reserved WB (RAM) range below 4 GiB, as the test payload guesses it */
        if (m->Type == EfiReservedMemoryType && m->NumberOfPages >= 1024 && (m->Attribute & EFI_MEMORY_WB) &&
            m->PhysicalStart + m->NumberOfPages * 4096 <= 0x100000000ull &&
            (!best || m->NumberOfPages > best->NumberOfPages))
            best = m;
    }
    if (best)
        b = best->PhysicalStart + (best->NumberOfPages / 2) * 4096 + 24 * 4096;
    if (map)
        FreePool(map);
}

static u64 hc_hidden(u64 *check)
{
    u64 a = HV_HC_HIDDEN_WRITES, bx = 0, c = 0, d = 0;
    __asm__ volatile("vmcall" : "+a"(a), "+b"(bx), "+c"(c), "+d"(d) : : "memory");
    *check = bx;
    return a;
}

static const char *zeros(void)
{
    for (u64 a = b - 4096; a < b + 8192; a += 8)
        if (*(volatile u64 *)(UINTN)a)
            return "CHANGED";
    return "reads zeros";
}

static void clear_regs(void)
{
    for (unsigned k = 0; k < sizeof(l2r) / 8; k++)
        ((u64 *)&l2r)[k] = 0;
}

/* Runs L2 (already set up) to its VMCALL; reports how it ended. */
static void report(const char *tag, u64 n0)
{
    l2_run(&e);
    u64 check, n = hc_hidden(&check);
    BOOLEAN ok = e.st == ST_OK && e.reason == 18 && l2r.r15 != L2_ISR_MARK;
    outhv("hidden: %s: %s, L2 read 0x%llx, hv's region %s, %llu dropped, self-check 0x%llx", tag,
          ok ? "L2 reached its VMCALL" : "L2 did NOT reach its VMCALL", l2r.rax, zeros(), n - n0, check);
    if (!ok)
        pr_exit(tag, &e, F_LEN);
}

void s_hidden(void)
{
    if (!b)
        return;
    u64 check;
    /* EPT01: vmcs12 without EPT. */
    vmcs_init(0, l2_ept_rw);
    clear_regs();
    l2r.rbx = b - 4; /* 8 bytes: 4 on each page */
    l2r.rcx = 0x1122334455667788ull;
    report("L2 on EPT01, 8-byte store across two pages", hc_hidden(&check));
    vmcs_init(0, l2_rep_stos);
    clear_regs();
    l2r.rdi = b - 24;
    l2r.rcx = 48;
    l2r.rax = 0xab;
    report("L2 on EPT01, rep stosb across two pages", hc_hidden(&check));
    /* EPT02: L1's EPT maps G+0x1000..G+0x3fff onto three of hv's pages. */
    const u64 g = 0x40000000ull;
    const char *tag = "L2 on EPT02, 8-byte store across two pages";
    if (!ept_setup_l2(tag, l2_ept_rw) || !ept_map_rwx(g + 0x1000, b - 4096) || !ept_map_rwx(g + 0x2000, b) ||
        !ept_map_rwx(g + 0x3000, b + 4096)) {
        outhv("hidden: L2 on EPT02: not run (no EPT, or no room in EPT12)");
        return;
    }
    l2r.rbx = g + 0x2000 - 4;
    l2r.rcx = 0x1122334455667788ull;
    report(tag, hc_hidden(&check));
    tag = "L2 on EPT02, rep stosb across two pages";
    if (!ept_setup_l2(tag, l2_rep_stos) || !ept_map_rwx(g + 0x1000, b - 4096) || !ept_map_rwx(g + 0x2000, b) ||
        !ept_map_rwx(g + 0x3000, b + 4096))
        return;
    l2r.rdi = g + 0x2000 - 24;
    l2r.rcx = 48;
    l2r.rax = 0xab;
    report(tag, hc_hidden(&check));
}
