/* EPT01: the identity map hv gives its guest (SDM Vol. 3C 29.3), host-tested.
 * Every guest-physical address below the limit maps to the same host-physical
 * address with RWX, with the memory type the MTRRs give it on bare metal,
 * except hv's own memory (HV_MEM_HV, "hidden"), which is handled in one of two
 * ways, chosen by e->hidden_page before ept_build_identity():
 *  - hidden_page != 0: every 4 KiB page of a hidden range is a 4 KiB leaf
 *    mapping that one host-physical page (which hv keeps zeroed) with R|X, no
 *    W, memory type WB and ignore-PAT (EPT_HIDDEN_LEAF). Guest reads and
 *    fetches of hv's memory see that page without exiting; only writes cause
 *    EPT violations, which hv/ drops (it may retarget one leaf to a scratch
 *    page with ept_hidden_leaf() to single-step the write). Hidden 2 MiB and
 *    1 GiB regions are built down to 4 KiB leaves: one extra PT per 2 MiB.
 *  - hidden_page == 0: hidden pages are not present, so every guest access
 *    exits with an EPT violation that hv/ must emulate. */
#ifndef VMX_EPT_H
#define VMX_EPT_H
#include <stdbool.h>
#include <stdint.h>
#include "../lib/mem_range.h"
#include "mtrr.h"

/* EPT paging-structure entry bits (29.3.2, tables 29-1..29-6). */
#define EPT_R             (1ull << 0)
#define EPT_W             (1ull << 1)
#define EPT_X             (1ull << 2)
#define EPT_RWX           (EPT_R | EPT_W | EPT_X)
#define EPT_MT_SHIFT      3             /* leaf memory type, bits 5:3 */
#define EPT_MT_MASK       (7ull << EPT_MT_SHIFT)
#define EPT_MT(t)         ((uint64_t)(t) << EPT_MT_SHIFT)
#define EPT_IGNORE_PAT    (1ull << 6)
#define EPT_LARGE         (1ull << 7)   /* PDPTE: 1 GiB page, PDE: 2 MiB page */
#define EPT_ACCESSED      (1ull << 8)
#define EPT_DIRTY         (1ull << 9)
#define EPT_XU            (1ull << 10)  /* with MBEC: execute for user-mode linear addresses (29.3.3.2) */
#define EPT_ADDR_MASK     0x000ffffffffff000ull /* bits 51:12 */

/* EPTP (25.6.11). */
#define EPTP_MT_WB        6ull          /* paging-structure memory type, bits 2:0 */
#define EPTP_PWL4         (3ull << 3)   /* page-walk length - 1, bits 5:3 */
#define EPTP_AD           (1ull << 6)   /* enable accessed/dirty flags */

/* Flags of a hidden 4 KiB leaf (OR in the target page's address): readable
 * and executable, not writable, WB whatever the guest's PAT says (the page is
 * hv's, accessed WB by hv, so no aliasing of memory types). */
#define EPT_HIDDEN_LEAF   (EPT_R | EPT_X | EPT_MT(MT_WB) | EPT_IGNORE_PAT)

/* Exit qualification of an EPT violation (SDM 28.2.1, Table 28-7). */
#define EPT_QUAL_ACCESS (7ull)        /* bits 2:0: read, write, instruction fetch */
#define EPT_QUAL_WRITE (1ull << 1)
#define EPT_QUAL_PERM_SHIFT 3         /* bits 5:3: the translation's R, W, X */
#define EPT_QUAL_XU (1ull << 6)       /* with MBEC: the AND of bit 10 (user-mode execute) */
#define EPT_QUAL_GLA_VALID (1ull << 7)
#define EPT_QUAL_GLA_XLATE (1ull << 8) /* the access was to the linear address, not a paging entry */
/* With advanced VM-exit information (IA32_VMX_EPT_VPID_CAP[22]), when bits 7 and 8 are 1: the
 * guest paging's view of the linear address (user-mode, read/write, execute-disable). */
#define EPT_QUAL_USER (1ull << 9)
#define EPT_QUAL_RW_PAGE (1ull << 10)
#define EPT_QUAL_NX_PAGE (1ull << 11)
#define EPT_QUAL_ADV_INFO (EPT_QUAL_USER | EPT_QUAL_RW_PAGE | EPT_QUAL_NX_PAGE)
#define EPT_QUAL_NMI_UNBLOCK (1ull << 12)

#define EPT_MAX_HIDDEN 8
#define EPT_PAGE_1G (1ull << 30)
#define EPT_PAGE_2M (1ull << 21)
#define EPT_PAGE_4K (1ull << 12)
#define EPT_MAX_LIMIT (1ull << 48)      /* what a 4-level walk translates */

struct ept_range {
    uint64_t base, end; /* [base, end), 4 KiB aligned */
};

struct ept {
    uint64_t *pml4;          /* VA == PA (identity-mapped host) */
    uint64_t eptp;           /* 0 until a build succeeds */
    uint64_t pages_used;     /* table pages taken from alloc_page */
    uint64_t limit;          /* [0, limit) is mapped (hidden pages specially) */
    uint64_t leaves_1g, leaves_2m, leaves_4k; /* identity leaves */
    uint64_t leaves_hidden;  /* 4 KiB leaves pointing at hidden_page */
    /* Input, set by the caller before ept_build_identity() (which keeps it
     * across its reset of *e): 0 = hidden pages not present, else the 4 KiB
     * aligned host-physical page every hidden page maps to, R|X only. */
    uint64_t hidden_page;
    unsigned nhidden;
    struct ept_range hidden[EPT_MAX_HIDDEN]; /* sorted, merged, page-rounded outwards */
};

static inline uint64_t ept_make_eptp(uint64_t pml4_pa, bool ad)
{
    return (pml4_pa & EPT_ADDR_MASK) | EPTP_MT_WB | EPTP_PWL4 | (ad ? EPTP_AD : 0);
}

/* max(4 GiB, top of mem[], min_limit) rounded up to 1 GiB. */
uint64_t ept_identity_limit(const struct hv_mem_range *mem, unsigned nmem, uint64_t min_limit);

/*
 * Builds the identity map of [0, ept_identity_limit(mem, nmem, limit)).
 * Pass limit 0 to let the memory map decide. Leaves are 1 GiB (if use_1g),
 * 2 MiB or 4 KiB: the largest page whose range has one MTRR type and does not
 * touch a hidden range. HV_MEM_HV ranges are hidden (rounded outwards to whole
 * pages, so no byte of hv is reachable): not present if e->hidden_page is 0,
 * else 4 KiB leaves hidden_page | EPT_HIDDEN_LEAF. All other fields of *e are
 * reset; set e->hidden_page (or zero it) before calling. alloc_page returns a
 * zeroed 4 KiB page with VA == PA, or NULL. Returns 0, or -1 (allocation
 * failure, more than EPT_MAX_HIDDEN disjoint hidden ranges, limit beyond
 * MAXPHYADDR or 2^48, hidden_page not 4 KiB aligned or beyond MAXPHYADDR,
 * mtrr NULL); after a failure the partial tables are still reachable from
 * e->pml4 for ept_free(), and e->eptp is 0.
 */
int ept_build_identity(struct ept *e, const struct hv_mem_range *mem, unsigned nmem,
                       uint64_t limit, const struct mtrr_state *mtrr, bool use_1g,
                       void *(*alloc_page)(void));

/* Is gpa in a range hidden at build time (not present, or mapped to
 * hidden_page read/execute-only)? */
bool ept_is_hidden(const struct ept *e, uint64_t gpa);

/* The entry that translates gpa: a leaf (level 3 = 1 GiB, 2 = 2 MiB, 1 = 4 KiB)
 * or the first non-present entry on the walk (*level says where). NULL if gpa
 * is beyond a 4-level walk or there are no tables. */
uint64_t *ept_walk(const struct ept *e, uint64_t gpa, int *level);

/* The 4 KiB leaf (PTE) that maps hidden gpa to hidden_page, or NULL if gpa is
 * not hidden, hidden_page was 0 at build time, or there is no such leaf. hv
 * may point it at a scratch page (e.g. scratch_pa | EPT_HIDDEN_LEAF | EPT_W
 * while single-stepping a dropped write) and must restore
 * hidden_page | EPT_HIDDEN_LEAF afterwards; after each change the caller must
 * INVEPT (single-context, this EPTP) before the guest runs again, on every
 * CPU using this EPT, or stale translations may survive. */
uint64_t *ept_hidden_leaf(const struct ept *e, uint64_t gpa);

/* Makes the page at gpa read-only (its writes exit), splitting large leaves into 4 KiB ones
 * of the same memory type on the way. 0, or -1 if gpa is not mapped or out of memory. */
int ept_write_protect_4k(struct ept *e, uint64_t gpa, void *(*alloc_page)(void));

/* The limit to pass ept_build_identity() for a map of every physical address:
 * 2^min(MAXPHYADDR, 48) (a 4-level walk translates 48 bits; 36 if phys_bits is 0), halved
 * while the tables above the memory map would take more than max_pages pages (1 GiB
 * leaves: one PDPT per 512 GiB; 2 MiB leaves: one PD per GiB), never below 4 GiB. */
uint64_t ept_full_limit(unsigned phys_bits, bool use_1g, uint64_t max_pages);

/*
 * A per-CPU copy of base for hv's dropped writes: *clone gets its own PML4 and its own
 * copy of every table on the path to a hidden range (PDPT, PD, the PTs of hidden pages);
 * every other table is base's, shared (base must not change afterwards). So
 * ept_hidden_leaf(clone, gpa) is the clone's own leaf: retargeting it changes no other
 * CPU's view, and INVEPT on the CPU that uses the clone suffices. A few pages per clone
 * (pages_used: those of the clone only). 0, or -1 (allocation failure, base not built):
 * then the partial copy is still reachable for ept_free_clone() and clone->eptp is 0.
 */
int ept_clone_hidden(struct ept *clone, const struct ept *base, void *(*alloc_page)(void));
/* Returns the clone's own pages (not base's) to free_page (tests). */
void ept_free_clone(struct ept *clone, const struct ept *base, void (*free_page)(void *));

/* Returns every table page to free_page (tests; hv never frees EPT01). */
void ept_free(struct ept *e, void (*free_page)(void *));
#endif
