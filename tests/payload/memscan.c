/*
 * Memory checks on the BSP: scan guest-visible RAM for hv's canary (it must never
 * be found: hv hides its region with EPT), guess hv's region from the memory map,
 * and check that a write into it does not reach hv.
 */
#include "payload.h"
#include "../../hv/hypercall.h"

/*
 * The canary, XOR-encoded in two parts so this image never holds it in plain form
 * (or the scan would find the payload itself). The key is volatile so the compiler
 * cannot fold the decoding back into plain constants.
 */
#define K 0x5a
static volatile UINT8 key = K;
static const UINT8 enc_head[8] = {'H' ^ K, 'V' ^ K, '-' ^ K, 'C' ^ K, 'A' ^ K, 'N' ^ K, 'A' ^ K, 'R' ^ K};
static const UINT8 enc_tail[10] = {'Y' ^ K, '-' ^ K, '7' ^ K, 'f' ^ K, '3' ^ K,
                                   'c' ^ K, '9' ^ K, 'e' ^ K, '2' ^ K, 'a' ^ K};
#define MAX_HITS 5

struct scan {
    UINT64 head;  /* decoded first 8 bytes: harmless alone */
    UINT64 bytes; /* scanned */
    UINT64 hits;
    UINT64 hit_at[MAX_HITS];
};

/* The 10 tail bytes at a, decoded one at a time; bytes past end (unscanned) count as a match. */
static BOOLEAN tail_matches(UINT64 a, UINT64 end)
{
    UINT8 k = key;
    for (int i = 0; i < 10 && a + i < end; i++)
        if (*(volatile const UINT8 *)(a + i) != (UINT8)(enc_tail[i] ^ k))
            return FALSE;
    return TRUE;
}

static void check_at(struct scan *s, UINT64 a, UINT64 end)
{
    if (!tail_matches(a + 8, end))
        return;
    if (s->hits < MAX_HITS)
        s->hit_at[s->hits] = a;
    s->hits++;
}

/* [start, end): page aligned, so 64-byte steps never overrun. */
static void scan_range(struct scan *s, UINT64 start, UINT64 end)
{
    register UINT64 h = s->head;
    for (UINT64 a = start; a < end; a += 64) {
        volatile const UINT64 *p = (volatile const UINT64 *)a;
        UINT64 q0 = p[0], q1 = p[2], q2 = p[4], q3 = p[6];
        if (__builtin_expect(q0 == h || q1 == h || q2 == h || q3 == h, 0)) {
            for (int i = 0; i < 4; i++)
                if (p[2 * i] == h)
                    check_at(s, a + 16 * i, end);
        }
    }
    s->bytes += end - start;
}

static BOOLEAN scanned_type(UINT32 t)
{
    switch (t) {
    case EfiReservedMemoryType: /* includes hv's region: must read as anything but the canary */
    case EfiLoaderCode: case EfiLoaderData:
    case EfiBootServicesCode: case EfiBootServicesData:
    case EfiRuntimeServicesCode: case EfiRuntimeServicesData:
    case EfiConventionalMemory: case EfiACPIReclaimMemory: case EfiACPIMemoryNVS:
        return TRUE;
    }
    return FALSE;
}

#define GiB4 0x100000000ull
#define DESC(map, i, sz) ((EFI_MEMORY_DESCRIPTOR *)((UINT8 *)(map) + (i) * (sz)))

static void canary_scan(EFI_MEMORY_DESCRIPTOR *map, UINTN n, UINTN dsz)
{
    struct scan s;
    SetMem(&s, sizeof(s), 0);
    UINT8 k = key;
    for (int i = 0; i < 8; i++)
        s.head |= (UINT64)(UINT8)(enc_head[i] ^ k) << (8 * i);
    UINT64 cur = 0, cur_end = 0, skipped = 0;
    /* Adjacent descriptors are merged, so a canary straddling two is still seen whole. */
    for (UINTN i = 0; i < n; i++) {
        EFI_MEMORY_DESCRIPTOR *d = DESC(map, i, dsz);
        UINT64 b = d->PhysicalStart, e = b + d->NumberOfPages * 4096;
        if (!scanned_type(d->Type) || d->NumberOfPages == 0)
            continue;
        /* Reserved but not RAM (no WB: e.g. PCIe ECAM on q35, 256 MiB) or above 4 GiB:
         * address holes, not hv's region (WB RAM below 4 GiB). */
        if (d->Type == EfiReservedMemoryType && (!(d->Attribute & EFI_MEMORY_WB) || e > GiB4)) {
            skipped += e - b;
            continue;
        }
        if (b == cur_end && cur_end) {
            cur_end = e;
            continue;
        }
        if (cur_end)
            scan_range(&s, cur, cur_end);
        cur = b;
        cur_end = e;
    }
    if (cur_end)
        scan_range(&s, cur, cur_end);
    out("canary scan: %llu MiB scanned, %llu hits", (unsigned long long)(s.bytes >> 20),
        (unsigned long long)s.hits);
    for (UINT64 i = 0; i < s.hits && i < MAX_HITS; i++)
        out("canary found at 0x%llx", (unsigned long long)s.hit_at[i]);
    if (skipped)
        out("canary scan: skipped %llu MiB reserved non-RAM or above 4 GiB",
            (unsigned long long)(skipped >> 20));
}

/* hv's region: the largest reserved WB (RAM) descriptor below 4 GiB, if >= 4 MiB. */
EFI_MEMORY_DESCRIPTOR *hv_region(EFI_MEMORY_DESCRIPTOR *map, UINTN n, UINTN dsz)
{
    EFI_MEMORY_DESCRIPTOR *best = NULL;
    for (UINTN i = 0; i < n; i++) {
        EFI_MEMORY_DESCRIPTOR *d = DESC(map, i, dsz);
        if (d->Type != EfiReservedMemoryType || d->NumberOfPages < 1024 || !(d->Attribute & EFI_MEMORY_WB) ||
            d->PhysicalStart + d->NumberOfPages * 4096 > GiB4)
            continue;
        if (!best || d->NumberOfPages > best->NumberOfPages)
            best = d;
    }
    return best;
}

/* A write into hv's region must not reach hv (EPT drops or redirects it). */
static void write_test(EFI_MEMORY_DESCRIPTOR *r)
{
    UINT64 a = r->PhysicalStart + (r->NumberOfPages / 2) * 4096;
    volatile UINT64 *p = (volatile UINT64 *)a;
    UINT64 before = *p;
    *p = 0x1122334455667788ull;
    UINT64 after = *p;
    BOOLEAN visible = after == 0x1122334455667788ull;
    if (visible)
        *p = before; /* it reached real memory: undo, hv may still be running on it */
    out("hv memory write: before 0x%llx after 0x%llx %s", (unsigned long long)before,
        (unsigned long long)after, visible ? "VISIBLE" : "dropped");
}

/*
 * Every kind of write into hv's region (hv/exit_ept.c drops them all): 1/2/4/8-byte stores,
 * an 8-byte store straddling two of hv's pages, REP STOSB and REP MOVSB across a page
 * boundary of hv's. Runs on any CPU (no UEFI services), `rounds` times.
 */
struct burst {
    UINT64 b;       /* a page boundary inside hv's region, with a page of hv's on both sides */
    UINTN rounds;
    UINT64 check;   /* HV_HC_HIDDEN_WRITES's self-check (RBX) on this CPU afterwards */
    BOOLEAN done;
};

static VOID EFIAPI write_burst(VOID *arg)
{
    struct burst *w = arg;
    static const UINT8 src[48] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    for (UINTN r = 0; r < w->rounds; r++) {
        UINT64 b = w->b;
        *(volatile UINT8 *)(b + 0x10) = 0x5a;
        *(volatile UINT16 *)(b + 0x20) = 0x5a5a;
        *(volatile UINT32 *)(b + 0x40) = 0x5a5a5a5a;
        *(volatile UINT64 *)(b + 0x80) = 0x5a5a5a5a5a5a5a5aull;
        *(volatile UINT64 *)(b - 4) = 0x1122334455667788ull; /* 4 bytes on each page */
        UINT64 d = b - 24, n = 48;
        __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0xab) : "memory");
        UINT64 s = (UINT64)(UINTN)src;
        d = b + 4096 - 20, n = 40; /* into the next page of hv's */
        __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    }
    hv_vmcall_rbx(HV_HC_HIDDEN_WRITES, &w->check);
    __asm__ volatile("" ::: "memory");
    w->done = TRUE;
}

/* [b - 4096, b + 8192): every byte still reads zero. */
static BOOLEAN reads_zero(UINT64 b)
{
    for (UINT64 a = b - 4096; a < b + 8192; a += 8)
        if (*(volatile UINT64 *)a)
            return FALSE;
    return TRUE;
}

static void write_kinds_test(EFI_MEMORY_DESCRIPTOR *r)
{
    UINT64 b = r->PhysicalStart + (r->NumberOfPages / 2) * 4096 + 8 * 4096, chk;
    UINT64 n0 = hv_vmcall_rbx(HV_HC_HIDDEN_WRITES, &chk);
    struct burst w = {b, 1, ~0ull, FALSE};
    write_burst(&w);
    UINT64 n1 = hv_vmcall_rbx(HV_HC_HIDDEN_WRITES, &chk);
    out("hv memory writes (bsp): 1/2/4/8-byte, 8-byte across pages, rep stosb, rep movsb: %s, %llu dropped, "
        "self-check 0x%llx",
        reads_zero(b) ? "reads zeros" : "CHANGED", (unsigned long long)(n1 - n0), (unsigned long long)chk);

    /* The same pages from two CPUs at once, many times over. */
    struct burst ap = {b, 200, ~0ull, FALSE}, bsp = {b, 200, ~0ull, FALSE};
    if (!run_on_ap_and_bsp(write_burst, &ap, &bsp)) {
        out("hv memory writes (2 cpus at once): skipped (no AP, or it did not finish: %s)", ap.done ? "done" : "not done");
        return;
    }
    UINT64 n2 = hv_vmcall_rbx(HV_HC_HIDDEN_WRITES, &chk);
    out("hv memory writes (2 cpus at once): %s, %llu dropped, self-check bsp 0x%llx ap 0x%llx now 0x%llx",
        reads_zero(b) ? "reads zeros" : "CHANGED", (unsigned long long)(n2 - n1), (unsigned long long)bsp.check,
        (unsigned long long)ap.check, (unsigned long long)chk);
}

void check_memory(BOOLEAN hv_present)
{
    UINTN n = 0, mapkey, dsz = 0;
    UINT32 dver;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&n, &mapkey, &dsz, &dver);
    if (!map || !dsz) {
        out("canary scan: no memory map");
        out("hv memory write: skipped (no memory map)");
        return;
    }
    canary_scan(map, n, dsz);
    EFI_MEMORY_DESCRIPTOR *r = hv_region(map, n, dsz);
    if (r)
        out("hv region guess 0x%llx %llu KiB", (unsigned long long)r->PhysicalStart,
            (unsigned long long)(r->NumberOfPages * 4));
    else
        out("hv region guess none");
    if (!hv_present)
        out("hv memory write: skipped (no hv)");
    else if (!r)
        out("hv memory write: skipped (no region)");
    else {
        write_test(r);
        write_kinds_test(r);
    }
    FreePool(map);
}
