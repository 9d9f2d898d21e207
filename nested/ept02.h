/*
 * EPT02: the EPT hv builds to run L2 when L1 enables EPT (docs/nested.md, "EPT for L1").
 *
 * L1's EPT (EPT12) translates L2-physical to L1-physical addresses; hv's EPT01 translates
 * L1-physical to host-physical ones. EPT02 is their composition, built lazily like KVM's
 * shadow EPT MMU: it starts empty, and each EPT violation of L2 walks EPT12 for the
 * faulting address (ept02_fault). What EPT12 does not allow is reflected to L1 as the
 * EPT violation or misconfiguration the CPU would have given it; what it allows gets a
 * 4 KiB EPT02 leaf to the host page EPT01 has for that L1 page, and L2 retries.
 *
 * EPT02 is a cache of EPT12, per vCPU and EPT12 root (struct ept02_roots), like the TLB it
 * stands in for: entries stay until L1's INVEPT, the eviction of its root, or a full table
 * pool (then it starts over).
 * Pure logic over host memory: host-tested by tests/unit/test_ept02.c; the VMCS side
 * (reflection, MTF steps, INVEPT of the hardware) is nested/ept02_exit.c.
 */
#ifndef NESTED_EPT02_H
#define NESTED_EPT02_H
#include <stdbool.h>
#include <stdint.h>
#include "../vmx/ept.h"

#define EPT02_MAX_PAGES 64 /* table pages per vCPU, the root included */
#define EPT02_MIN_PAGES 24 /* taken up front: every page a single L2 instruction touches */
#define EPT02_STEPS 4      /* pages of hv's memory one L2 instruction may write (as hv/vcpu.h HV_STEP_PAGES) */
#define EPT02_NO_EPT12 (~0ull)

/* Where EPT01 puts L1 guest-physical page l1_gpa (4 KiB aligned): 0 with the host page and
 * the most access EPT02 may give to it (EPT_R|EPT_W|EPT_X), or -1 if EPT01 maps nothing
 * there. A result 0 without EPT_W means hv's memory: host_pa is then hv's zero page, and L2
 * must read zeros and have its writes dropped, as L1 does. EPT02_L1_MMIO: a page whose
 * writes hv emulates for L1 (its xAPIC page, hv/apic.c): reads go to host_pa with max's
 * access, a write is hv's to perform (EPT02_MMIO_WRITE). */
#define EPT02_L1_MMIO 1
typedef int (*ept02_l1_page_fn)(uint64_t l1_gpa, uint64_t *host_pa, uint64_t *max_access);

struct ept02_step {
    uint64_t *leaf;   /* EPT02 leaf retargeted to a scratch page, NULL if the slot is free */
    uint64_t restore; /* its read-only value (hv's zero page) */
};

struct ept02 {
    uint64_t *pages[EPT02_MAX_PAGES]; /* table pool; pages[0] is the root (PML4) */
    unsigned npages, nused, max_pages;
    uint64_t eptp;       /* EPT02's own pointer (WB, 4-level, A/D as EPTP12): vmcs02.EPT_POINTER */
    uint64_t eptp12;     /* L1's EPTP that EPT02 shadows, EPT02_NO_EPT12 if none yet */
    uint64_t ept_caps;   /* IA32_VMX_EPT_VPID_CAP as advertised to L1 */
    uint8_t phys_bits;   /* MAXPHYADDR as L1 sees it */
    ept02_l1_page_fn l1_page;
    uint8_t *scratch[EPT02_STEPS];
    struct ept02_step step[EPT02_STEPS];
    bool flush;          /* present EPT02 entries changed: INVEPT before L2 runs again */
    bool mtf;            /* hv turned on MTF in vmcs02 for the steps (nested/ept02_exit.c) */
    bool mbec;           /* vmcs12's "mode-based execute control for EPT": bit 10 is XU */
    uint64_t fills, reflected, clears, hidden_writes;
};

/* Set up *e (zeroed by the caller, or a previous partial set-up: this is idempotent) with
 * min_pages table pages and the scratch pages from hv_alloc_page; the pool grows up to
 * max_pages (<= EPT02_MAX_PAGES) on demand. 0, or -1 when out of memory. */
int ept02_init(struct ept02 *e, unsigned max_pages, unsigned min_pages, uint64_t ept_caps, uint8_t phys_bits,
               ept02_l1_page_fn l1_page);

/* Shadow EPT12 eptp12 from now on: EPT02 is cleared if its root (bits 51:12) or its A/D
 * enable (bit 6) changed. With EPTP12 bit 6, EPT02 runs with A/D too, so that the CPU treats
 * L2's paging-structure accesses as writes (29.3.3.2) and they reach EPT12's dirty flags. */
void ept02_use(struct ept02 *e, uint64_t eptp12);
/* vmcs12's "mode-based execute control for EPT" (29.3.3.2), which vmcs02 then has too: with
 * it, bit 10 of EPT12's entries is execute access for user-mode linear addresses (XU), and
 * makes an entry present; EPT02 is cleared when the setting changes. */
void ept02_set_mbec(struct ept02 *e, bool mbec);
/* Forget every translation (and any step in flight): the root stays, empty. */
void ept02_clear(struct ept02 *e);
/* L1's INVEPT (type 1 single-context with eptp, 2 all-context), already checked: true if
 * EPT02 held translations it asks to invalidate and was cleared. */
bool ept02_invept(struct ept02 *e, uint64_t type, uint64_t eptp);

/* The walk of EPT12 for one L2-physical address (SDM 29.3.2, 29.3.3). */
enum ept12_status { EPT12_OK, EPT12_NOT_PRESENT, EPT12_MISCONFIG };
struct ept12_walk {
    enum ept12_status status;
    uint64_t access; /* EPT_R|W|X (and EPT_XU with MBEC) AND-ed over the entries used; 0 if
                      * one was not present */
    uint64_t leaf;   /* EPT12's leaf entry (EPT12_OK) */
    int level;       /* 4 = PML4E .. 1 = PTE: the leaf's, or where the walk stopped */
    uint64_t l1_gpa; /* the translation (EPT12_OK) */
    uint64_t entry_pa[5], entry[5]; /* by level: where each entry used is, and its value */
};
/* EPT12's tables are read from L1's memory as hv_gpa_is_ram() allows; anything else reads
 * as a not-present entry. */
enum ept12_status ept12_walk(const struct ept02 *e, uint64_t l2_gpa, struct ept12_walk *w);

enum ept02_result {
    EPT02_FILLED,       /* EPT02 maps l2_gpa now with the access it needs: L2 retries */
    EPT02_HIDDEN_WRITE, /* mapped, but the write goes to hv's memory: hv must drop it */
    EPT02_VIOLATION,    /* EPT12 does not allow the access: reflect exit 48 with qual12 */
    EPT02_MISCONFIG,    /* EPT12 is misconfigured there: reflect exit 49 */
    EPT02_UNBACKED,     /* EPT12 maps it where EPT01 has nothing: reflect 48 with qual12 */
    EPT02_PML_FULL,     /* a flag to set, the PML index outside 0..511: reflect 62 with qual12 */
    EPT02_MMIO_WRITE,   /* mapped read-only, the write is to an L1 page hv emulates (l1_gpa) */
};
struct ept02_fault {
    uint64_t l2_gpa, qual; /* in: what the CPU reported for EPT02 */
    uint64_t qual12;       /* out: L1's exit qualification (VIOLATION, UNBACKED) */
    uint64_t l1_gpa;       /* out: EPT12's translation (FILLED, HIDDEN_WRITE, UNBACKED, MMIO_WRITE) */
    uint64_t *leaf;        /* out: EPT02's 4 KiB leaf for l2_gpa (FILLED, HIDDEN_WRITE, MMIO_WRITE) */
    bool pml;              /* in: vmcs12's "enable PML" (it logs only with EPTP12 bit 6) */
    uint64_t pml_address;  /* in: vmcs12's PML address (L1-physical, checked at entry) */
    uint16_t pml_index;    /* in/out: vmcs12's guest PML index */
    bool suppress_ve;      /* out (VIOLATION): bit 63 of the EPT12 entry that caused it, the
                            * not-present one or the leaf (25.5.7.1: convertible only if clear) */
};
/* An EPT violation of L2 on EPT02. With EPTP12 bit 6 (29.3.5) a translation that succeeds
 * sets the accessed flag of each EPT12 entry it used and, for a write, the dirty flag of its
 * leaf, atomically (L1 may race on another CPU); EPT02 maps a page whose EPT12 leaf is clean
 * without write access, so that the first write comes back here to set the dirty flag.
 * With PML (29.3.6) a flag to set needs a PML index in 0..511 (else EPT02_PML_FULL, nothing
 * set, the access not done), and each dirty flag set logs the 4 KiB-aligned L2-physical
 * address at the index, which is then decremented. */
enum ept02_result ept02_fault(struct ept02 *e, struct ept02_fault *f);
/* The same flags and PML entries for an access EPT12 allows that hv makes itself on L2's
 * behalf (w: a walk with EPT12_OK; f: l2_gpa and the PML fields as for ept02_fault). Nothing
 * without EPTP12 bit 6. PML_FULL: a flag to set and no room (nothing set, the access must not
 * be done: exit 62); CHANGED: L1 changed an entry meanwhile, walk again. */
enum ept12_flags { EPT12_FLAGS_SET, EPT12_FLAGS_PML_FULL, EPT12_FLAGS_CHANGED };
enum ept12_flags ept12_set_flags(const struct ept02 *e, const struct ept12_walk *w, bool write, struct ept02_fault *f);
/* Would ept12_set_flags answer PML_FULL (nothing changed)? */
bool ept12_pml_full(const struct ept02 *e, const struct ept12_walk *w, bool write, const struct ept02_fault *f);

/* Dropping a write to hv's memory (EPT02_HIDDEN_WRITE): the leaf gets a zeroed scratch page,
 * writable, for one instruction; ept02_step_end() restores every such leaf and wipes the
 * scratch pages. ept02_step_begin returns the slot, or -1 if all are taken. */
int ept02_step_begin(struct ept02 *e, uint64_t *leaf);
bool ept02_step_pending(const struct ept02 *e);
void ept02_step_end(struct ept02 *e);

/* Several EPT02s per vCPU, one per EPT12 root in use (L1's EPTP list with EPTP switching,
 * or L2s on different EPTPs): a small cache keyed by EPTP12 bits 51:12, least recently
 * used evicted. Each EPT02 has its own root and pool, so switching among them keeps every
 * one's translations (the CPU tags them by EPTP, 29.4). */
#define EPT02_ROOTS 4
struct ept02_roots {
    struct ept02 *ctx[EPT02_ROOTS]; /* a page each, from hv_alloc_page; NULL until used */
    uint64_t used[EPT02_ROOTS];     /* clock of the last use: 0 never */
    uint64_t clock, evictions;
};
/* The EPT02 that shadows eptp12, made current for it (ept02_use): the one already keyed by
 * its root, else a free slot, else the least recently used one (cleared by ept02_use).
 * Set up as ept02_init says; NULL when out of memory. */
struct ept02 *ept02_roots_get(struct ept02_roots *r, uint64_t eptp12, unsigned max_pages, unsigned min_pages,
                              uint64_t ept_caps, uint8_t phys_bits, ept02_l1_page_fn l1_page);
/* L1's INVEPT on every EPT02 (ept02_invept): true if any was cleared. */
/* e still shadows exactly eptp12: counted as used now (the LRU clock), true; else false. */
bool ept02_roots_touch(struct ept02_roots *r, const struct ept02 *e, uint64_t eptp12);
bool ept02_roots_invept(struct ept02_roots *r, uint64_t type, uint64_t eptp);
#endif
