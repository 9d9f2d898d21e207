/* EPT02, the composition of L1's EPT12 with hv's EPT01 (nested/ept02.h). */
#include "ept02.h"
#include <stddef.h>
#include <string.h>
#include "../vmx/vmx_bits.h"
#include "nested.h"

_Static_assert(sizeof(struct ept02) <= 4096, "struct ept02 lives in one page");

#define LEVEL_SHIFT(l) (12 + 9 * ((l) - 1))
#define PAGE_ATTRS (EPT_MT_MASK | EPT_IGNORE_PAT)
/* hv's own pages (the zero page, scratch pages) are WB whatever the guest's PAT says, as
 * in EPT01 (vmx/ept.h EPT_HIDDEN_LEAF): no aliasing of memory types. */
#define HV_PAGE_ATTRS (EPT_MT(MT_WB) | EPT_IGNORE_PAT)

static uint64_t *table_of(uint64_t entry) { return (uint64_t *)(uintptr_t)(entry & EPT_ADDR_MASK); }

/* A zeroed table page from the pool, or NULL when the pool is full. */
static uint64_t *pool_get(struct ept02 *e)
{
    if (e->nused < e->npages)
        return e->pages[e->nused++]; /* cleared by ept02_clear */
    if (e->npages >= e->max_pages)
        return NULL;
    uint64_t *p = hv_alloc_page();
    if (!p)
        return NULL;
    e->pages[e->npages++] = p;
    e->nused++;
    return p;
}

int ept02_init(struct ept02 *e, unsigned max_pages, unsigned min_pages, uint64_t ept_caps, uint8_t phys_bits,
               ept02_l1_page_fn l1_page)
{
    if (max_pages > EPT02_MAX_PAGES)
        max_pages = EPT02_MAX_PAGES;
    if (min_pages < 4)
        min_pages = 4; /* a root and one table per level: one 4 KiB leaf */
    if (min_pages > max_pages)
        return -1;
    e->max_pages = max_pages;
    e->ept_caps = ept_caps;
    e->phys_bits = phys_bits;
    e->l1_page = l1_page;
    if (!e->npages)
        e->eptp12 = EPT02_NO_EPT12;
    for (int i = 0; i < EPT02_STEPS; i++)
        if (!e->scratch[i] && !(e->scratch[i] = hv_alloc_page()))
            return -1;
    while (e->npages < min_pages) {
        uint64_t *p = hv_alloc_page();
        if (!p)
            return -1;
        e->pages[e->npages++] = p;
    }
    if (!e->nused)
        e->nused = 1; /* the root */
    e->eptp = ept_make_eptp((uint64_t)(uintptr_t)e->pages[0], false);
    return 0;
}

void ept02_clear(struct ept02 *e)
{
    for (unsigned i = 0; i < e->nused; i++)
        memset(e->pages[i], 0, 4096);
    e->nused = 1;
    /* A step's leaf went with its table: only its scratch page needs wiping. */
    for (int i = 0; i < EPT02_STEPS; i++) {
        if (e->step[i].leaf)
            memset(e->scratch[i], 0, 4096);
        e->step[i].leaf = NULL;
    }
    e->flush = true;
    e->clears++;
}

void ept02_use(struct ept02 *e, uint64_t eptp12)
{
    /* A change of bit 6 changes what EPT02's leaves mean (clean pages without write access). */
    if (e->eptp12 == EPT02_NO_EPT12 || ((e->eptp12 ^ eptp12) & (EPT_ADDR_MASK | EPTP_AD)))
        ept02_clear(e);
    e->eptp12 = eptp12;
    e->eptp = ept_make_eptp((uint64_t)(uintptr_t)e->pages[0], eptp12 & EPTP_AD);
}

void ept02_set_mbec(struct ept02 *e, bool mbec)
{
    /* What EPT12's bit 10 means (and what EPT02's leaves say) depends on it. */
    if (e->mbec != mbec)
        ept02_clear(e);
    e->mbec = mbec;
}

bool ept02_invept(struct ept02 *e, uint64_t type, uint64_t eptp)
{
    /* 31.3 INVEPT: single-context invalidates the mappings of EPTP[51:12] (and may do
     * more); all-context those of every EPTP. EPT02 shadows one EPT12 at a time. */
    if (e->eptp12 == EPT02_NO_EPT12 || (type == 1 && ((e->eptp12 ^ eptp) & EPT_ADDR_MASK)))
        return false;
    ept02_clear(e);
    return true;
}

/* 29.3.3.1: a present EPT12 entry that makes the walk an EPT misconfiguration. */
static bool misconfigured(const struct ept02 *e, uint64_t pte, int level, bool leaf)
{
    uint64_t rsvd = e->phys_bits >= 52 ? 0 : EPT_ADDR_MASK & ~((1ull << e->phys_bits) - 1); /* 51:MAXPHYADDR */
    if ((pte & (EPT_R | EPT_W)) == EPT_W)
        return true; /* write without read */
    if (!(pte & EPT_R) && (pte & (EPT_X | (e->mbec ? EPT_XU : 0))) && !(e->ept_caps & EPT_CAP_EXEC_ONLY))
        return true; /* execute-only (supervisor or, with MBEC, user), not advertised */
    if (!leaf) {
        rsvd |= 0xf8; /* bits 7:3 of a PML4E, and of a PDPTE/PDE that references a table */
    } else {
        unsigned mt = (pte & EPT_MT_MASK) >> EPT_MT_SHIFT;
        if (mt == 2 || mt == 3 || mt == 7)
            return true; /* reserved memory types */
        if (level == 3)
            rsvd |= (e->ept_caps & EPT_CAP_1G) ? 0x3ffff000ull : ~0ull; /* 29:12; bit 7 if no 1 GiB pages */
        else if (level == 2)
            rsvd |= (e->ept_caps & EPT_CAP_2M) ? 0x1ff000ull : ~0ull; /* 20:12; bit 7 if no 2 MiB pages */
    }
    return (pte & rsvd) != 0;
}

enum ept12_status ept12_walk(const struct ept02 *e, uint64_t l2_gpa, struct ept12_walk *w)
{
    uint64_t table = e->eptp12 & EPT_ADDR_MASK;
    uint64_t perms = EPT_RWX | (e->mbec ? EPT_XU : 0); /* 29.3.2: with MBEC bit 10 makes it present too */
    memset(w, 0, sizeof(*w));
    w->access = perms;
    for (int level = 4; level >= 1; level--) {
        uint64_t pa = table + ((l2_gpa >> LEVEL_SHIFT(level)) & 511) * 8;
        /* One atomic read: L1 may be changing the entry on another CPU. */
        uint64_t pte = hv_gpa_is_ram(pa, 8) ? __atomic_load_n((const uint64_t *)(uintptr_t)pa, __ATOMIC_RELAXED) : 0;
        bool leaf = level == 1 || (level <= 3 && (pte & EPT_LARGE));
        w->level = level;
        w->entry_pa[level] = pa;
        w->entry[level] = pte;
        if (!(pte & perms)) {
            w->access = 0; /* the not-present entry is one of those AND-ed (28.2.1) */
            return w->status = EPT12_NOT_PRESENT;
        }
        if (misconfigured(e, pte, level, leaf))
            return w->status = EPT12_MISCONFIG;
        w->access &= pte & perms;
        if (leaf) {
            uint64_t size = 1ull << LEVEL_SHIFT(level);
            w->leaf = pte;
            w->l1_gpa = (pte & EPT_ADDR_MASK & ~(size - 1)) | (l2_gpa & (size - 1));
            return w->status = EPT12_OK;
        }
        table = pte & EPT_ADDR_MASK;
    }
    return w->status = EPT12_NOT_PRESENT; /* not reached: level 1 is always a leaf */
}

/* EPT02's PTE for gpa, with the tables above it; NULL if the pool ran out. */
static uint64_t *leaf_slot(struct ept02 *e, uint64_t gpa)
{
    uint64_t *t = e->pages[0];
    for (int level = 4; level > 1; level--) {
        uint64_t *pte = &t[(gpa >> LEVEL_SHIFT(level)) & 511];
        if (!(*pte & EPT_RWX)) {
            uint64_t *sub = pool_get(e);
            if (!sub)
                return NULL;
            /* non-leaf: bits 7:3 reserved; bit 10 (XU) counts only with MBEC, ignored else */
            *pte = (uint64_t)(uintptr_t)sub | EPT_RWX | EPT_XU;
        }
        t = table_of(*pte);
    }
    return &t[(gpa >> 12) & 511];
}

/* L1's exit qualification (28.2.1): the access and the hardware's GLA and NMI bits as
 * reported for EPT02, the permissions as EPT12 gives them (bit 6: user-mode execute, with
 * MBEC only); with advanced VM-exit information offered, bits 9-11 as reported: they describe
 * L2's own paging of the linear address, which EPT02 does not change. */
static uint64_t qual12(const struct ept02 *e, uint64_t qual, uint64_t access)
{
    uint64_t keep = EPT_QUAL_ACCESS | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE | EPT_QUAL_NMI_UNBLOCK;
    if (e->ept_caps & EPT_CAP_ADV_EXIT_INFO)
        keep |= EPT_QUAL_ADV_INFO;
    return (qual & keep) | (access & EPT_RWX) << EPT_QUAL_PERM_SHIFT | (access & EPT_XU ? EPT_QUAL_XU : 0);
}

/* The permissions an access reported in bits 2:0 needs: with MBEC an instruction fetch needs
 * XU from a user-mode linear address, X (supervisor) else (29.3.3.2). A fetch always has bits
 * 7 and 8 set, so bit 9 tells which (hv offers MBEC only with advanced exit information). */
static uint64_t needed(const struct ept02 *e, uint64_t qual)
{
    uint64_t need = qual & EPT_QUAL_ACCESS;
    if (e->mbec && (need & EPT_X) && (qual & EPT_QUAL_USER))
        need = (need & ~EPT_X) | EPT_XU;
    return need;
}

/* 29.3.5: does the access need a flag set: an accessed flag in an EPT12 entry the
 * translation used, or for a write the dirty flag of its leaf? */
static bool flags_needed(const struct ept12_walk *w, bool write)
{
    for (int level = 4; level >= w->level; level--)
        if (!(w->entry[level] & EPT_ACCESSED))
            return true;
    return write && !(w->leaf & EPT_DIRTY);
}

/* 29.3.5: the accessed flag in each EPT12 entry the translation used, the dirty flag in its
 * leaf for a write. The CPU sets them with locked operations; here each is a compare-exchange
 * against the value the walk used: -1 if L1 changed an entry otherwise meanwhile (flags set
 * so far stay: the CPU used those entries), and the walk must be done again; else 1 if this
 * set the dirty flag (0 to 1), 0 if not. */
static int set_ad(const struct ept12_walk *w, bool write)
{
    int dirtied = 0;
    for (int level = 4; level >= w->level; level--) {
        uint64_t want = EPT_ACCESSED | (level == w->level && write ? EPT_DIRTY : 0);
        uint64_t old = w->entry[level];
        uint64_t *p = (uint64_t *)(uintptr_t)w->entry_pa[level];
        while ((old & want) != want) {
            if (__atomic_compare_exchange_n(p, &old, old | want, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
                dirtied = (want & ~old & EPT_DIRTY) != 0;
                break;
            }
            if ((old ^ w->entry[level]) & ~(EPT_ACCESSED | EPT_DIRTY))
                return -1;
        }
    }
    return dirtied;
}

/* 29.3.6: the log entry for a dirty flag just set (the page's L2-physical address), then the
 * index goes down (0 becomes 0xffff). A PML address that is not L1's RAM (hv's memory, MMIO)
 * takes nothing, as L1's own writes there. */
static void pml_log(struct ept02_fault *f)
{
    uint64_t pa = f->pml_address + 8ull * f->pml_index;
    if (hv_gpa_is_ram(pa, 8))
        __atomic_store_n((uint64_t *)(uintptr_t)pa, f->l2_gpa & ~0xfffull, __ATOMIC_RELAXED);
    f->pml_index--;
}

bool ept12_pml_full(const struct ept02 *e, const struct ept12_walk *w, bool write, const struct ept02_fault *f)
{
    return (e->eptp12 & EPTP_AD) && f->pml && f->pml_index > 511 && flags_needed(w, write);
}

enum ept12_flags ept12_set_flags(const struct ept02 *e, const struct ept12_walk *w, bool write, struct ept02_fault *f)
{
    if (!(e->eptp12 & EPTP_AD))
        return EPT12_FLAGS_SET;
    if (ept12_pml_full(e, w, write, f))
        return EPT12_FLAGS_PML_FULL;
    int dirtied = set_ad(w, write);
    if (dirtied < 0)
        return EPT12_FLAGS_CHANGED;
    if (dirtied && f->pml)
        pml_log(f);
    return EPT12_FLAGS_SET;
}

enum ept02_result ept02_fault(struct ept02 *e, struct ept02_fault *f)
{
    struct ept12_walk w;
    uint64_t need = needed(e, f->qual);
    bool ad = e->eptp12 & EPTP_AD;
    int tries = 0;
walk:;
    enum ept12_status st = ept12_walk(e, f->l2_gpa, &w);
    if (st == EPT12_MISCONFIG) {
        e->reflected++;
        return EPT02_MISCONFIG;
    }
    if (st == EPT12_NOT_PRESENT || (need & ~w.access)) {
        f->qual12 = qual12(e, f->qual, w.access);
        f->suppress_ve = w.entry[w.level] >> 63;
        e->reflected++;
        return EPT02_VIOLATION;
    }
    f->l1_gpa = w.l1_gpa;
    uint64_t host = 0, max = 0;
    int kind = e->l1_page ? e->l1_page(w.l1_gpa & ~0xfffull, &host, &max) : -1;
    if ((kind != 0 && kind != EPT02_L1_MMIO) || !(w.access & (max | (max & EPT_X ? EPT_XU : 0)))) {
        /* L2 reaches no further than L1: where EPT01 maps nothing, L1 gets an EPT
         * violation it cannot explain rather than hv a page it must not give. */
        f->qual12 = qual12(e, f->qual, 0);
        e->reflected++;
        return EPT02_UNBACKED;
    }
    if (max & EPT_X)
        max |= EPT_XU; /* EPT01's execute covers both modes */
    uint64_t perm = w.access & max;
    if (ad) {
        enum ept12_flags fl = ept12_set_flags(e, &w, need & EPT_W, f);
        if (fl == EPT12_FLAGS_PML_FULL) {
            f->qual12 = f->qual & EPT_QUAL_NMI_UNBLOCK; /* the only bit defined for exit 62 */
            e->reflected++;
            return EPT02_PML_FULL;
        }
        if (fl == EPT12_FLAGS_CHANGED) {
            /* Another CPU of L1 keeps changing the entries: let L2 retry the access, as
             * it would after an EPT02 fill, so hv never spins here. */
            if (++tries < 4)
                goto walk;
            f->leaf = NULL;
            return EPT02_FILLED; /* nothing filled: L2 faults again */
        }
        if (!(need & EPT_W) && !(w.leaf & EPT_DIRTY))
            perm &= ~EPT_W; /* clean: the first write must set the dirty flag */
    }
    bool mmio = kind == EPT02_L1_MMIO;
    uint64_t attrs = (max & EPT_W) || mmio ? w.leaf & PAGE_ATTRS : HV_PAGE_ATTRS; /* EPT12's type, or hv's page */
    uint64_t val = (host & EPT_ADDR_MASK) | perm | attrs;
    uint64_t *leaf = leaf_slot(e, f->l2_gpa);
    if (!leaf) { /* pool full: start over (the instruction's other pages fault in again) */
        ept02_clear(e);
        if (!(leaf = leaf_slot(e, f->l2_gpa))) { /* cannot happen: ept02_init keeps 4 pages */
            f->qual12 = qual12(e, f->qual, 0);
            return EPT02_UNBACKED;
        }
    }
    /* A present leaf changing (L1 remapped or widened EPT12 without INVEPT) is flushed. */
    if ((*leaf & (EPT_RWX | EPT_XU)) && ((*leaf ^ val) & ~(EPT_ACCESSED | EPT_DIRTY))) /* A/D: the CPU's, in EPT02 */
        e->flush = true;
    *leaf = val;
    f->leaf = leaf;
    e->fills++;
    /* need is within EPT12's access, so only a write to hv's memory (or to a page whose
     * writes hv emulates for L1: the same access L1 would make, hv's to perform) is left over. */
    if (!(need & ~perm))
        return EPT02_FILLED;
    return mmio ? EPT02_MMIO_WRITE : EPT02_HIDDEN_WRITE;
}

int ept02_step_begin(struct ept02 *e, uint64_t *leaf)
{
    int slot = -1;
    for (int i = EPT02_STEPS - 1; i >= 0; i--) {
        if (e->step[i].leaf == leaf) {
            slot = i; /* the leaf was filled again since: take its new value */
            break;
        }
        if (!e->step[i].leaf)
            slot = i;
    }
    if (slot < 0)
        return -1;
    uint64_t scratch = (uint64_t)(uintptr_t)e->scratch[slot];
    if ((*leaf & EPT_ADDR_MASK) != scratch) {
        e->step[slot] = (struct ept02_step){leaf, *leaf};
        /* The write faulted although EPT12 allows it (so R too, 29.3.3.1): hv's page. */
        *leaf = scratch | (*leaf & (EPT_RWX | EPT_XU)) | EPT_W | HV_PAGE_ATTRS;
        e->flush = true;
        e->hidden_writes++;
    }
    return slot;
}

bool ept02_step_pending(const struct ept02 *e)
{
    for (int i = 0; i < EPT02_STEPS; i++)
        if (e->step[i].leaf)
            return true;
    return false;
}

void ept02_step_end(struct ept02 *e)
{
    for (int i = 0; i < EPT02_STEPS; i++) {
        if (!e->step[i].leaf)
            continue;
        *e->step[i].leaf = e->step[i].restore;
        memset(e->scratch[i], 0, 4096); /* what L2 wrote never becomes readable */
        e->step[i].leaf = NULL;
        e->flush = true;
    }
}
