/* One DMA-remapping unit (VT-d spec chapters 9-11): legacy-mode root and context tables
 * over second-level identity tables, register-based invalidation, fault recording.
 * Register access goes through vtd_regs, so host tests drive it against a model. */
#ifndef HV_VTD_H
#define HV_VTD_H
#include <stdbool.h>
#include <stdint.h>

/* Register offsets (VT-d 11.4). */
enum {
    VTD_VER = 0x00, VTD_CAP = 0x08, VTD_ECAP = 0x10, VTD_GCMD = 0x18, VTD_GSTS = 0x1c, VTD_RTADDR = 0x20,
    VTD_CCMD = 0x28, VTD_FSTS = 0x34, VTD_FECTL = 0x38, VTD_PMEN = 0x64,
};
/* GCMD / GSTS bits: the same position in both (11.4.4, 11.4.5). */
#define VTD_GCMD_TE (1u << 31)
#define VTD_GCMD_SRTP (1u << 30)
#define VTD_GCMD_WBF (1u << 27)
#define VTD_GCMD_QIE (1u << 26)
#define VTD_GCMD_IRE (1u << 25)
/* Status bits of one-shot commands, never written back (11.4.4's example). */
#define VTD_GSTS_ONESHOT_MASK 0x96ffffffu
#define VTD_CCMD_ICC (1ull << 63)
#define VTD_CCMD_GLOBAL (1ull << 61) /* CIRG = 01 */
#define VTD_IOTLB_IVT (1ull << 63)
#define VTD_IOTLB_GLOBAL (1ull << 60) /* IIRG = 01 */
#define VTD_IOTLB_DR (1ull << 49)
#define VTD_IOTLB_DW (1ull << 48)
#define VTD_FSTS_PFO (1u << 0)
#define VTD_FSTS_PPF (1u << 1)

/* CAP and ECAP fields (11.4.2, 11.4.3). */
#define VTD_CAP_RWBF(c) (((c) >> 4) & 1)
#define VTD_CAP_CM(c) (((c) >> 7) & 1)
#define VTD_CAP_SAGAW(c) (((c) >> 8) & 0x1f)
#define VTD_CAP_MGAW(c) ((unsigned)(((c) >> 16) & 0x3f) + 1)
#define VTD_CAP_FRO(c) ((unsigned)(((c) >> 24) & 0x3ff) * 16)
#define VTD_CAP_SLLPS(c) (((c) >> 34) & 0xf)
#define VTD_CAP_NFR(c) ((unsigned)(((c) >> 40) & 0xff) + 1)
#define VTD_ECAP_QI(e) (((e) >> 1) & 1)
#define VTD_ECAP_IRO(e) ((unsigned)(((e) >> 8) & 0x3ff) * 16)

struct vtd_unit;
struct vtd_regs {
    uint32_t (*rd32)(struct vtd_unit *u, unsigned off);
    uint64_t (*rd64)(struct vtd_unit *u, unsigned off);
    void (*wr32)(struct vtd_unit *u, unsigned off, uint32_t v);
    void (*wr64)(struct vtd_unit *u, unsigned off, uint64_t v);
};

/* Second-level identity tables, shared by the units that walk the same number of levels. */
struct vtd_tables {
    unsigned levels;     /* 3 (39-bit) or 4 (48-bit) */
    uint64_t limit;      /* first address not mapped */
    uint64_t hv_base, hv_end; /* never mapped: no device reads or writes it */
    uint64_t root_pt;    /* the top table */
    unsigned pages, leaves_1g, leaves_2m, leaves_4k;
};

struct vtd_unit {
    const struct vtd_regs *regs;
    void *ctx;            /* the register model in host tests */
    uint64_t base;        /* register base (physical) */
    unsigned index;
    uint32_t ver;
    uint64_t cap, ecap;
    unsigned levels;      /* of its second-level tables */
    uint64_t *root, *context; /* root table; one context table every bus shares */
    bool on;              /* translation enabled by hv */
    uint64_t faults, faults_hv; /* recorded faults read, of which on hv's region */
    unsigned logged;      /* fault lines printed (bounded) */
    unsigned poll_spins;  /* bound on every register poll (tests make it small) */
};

/* Reads VER/CAP/ECAP/GSTS and says whether hv can take the unit over: NULL if so, else why
 * not (translation already on, queued invalidation on, no 3- or 4-level tables, ...). */
const char *vtd_probe(struct vtd_unit *u);
/* The address width (bits) and levels hv will use on this unit. */
unsigned vtd_levels(const struct vtd_unit *u);
unsigned vtd_width(const struct vtd_unit *u);

/* Builds identity tables of [0, t->limit) without [hv_base, hv_end), 1 GiB / 2 MiB leaves
 * where sllps allows. Returns 0, -1 when out of pages. */
int vtd_build_tables(struct vtd_tables *t, unsigned sllps, void *(*alloc_page)(void));

/* Root and context tables onto t, then the register sequence: write-buffer flush, root table
 * pointer, global context-cache and IOTLB invalidation, translation enable. NULL on success,
 * else why (the unit is left with translation off). */
const char *vtd_enable(struct vtd_unit *u, const struct vtd_tables *t, void *(*alloc_page)(void));
/* Translation off (GCMD.TE = 0, wait for GSTS.TES = 0). */
const char *vtd_disable(struct vtd_unit *u);

/* Reads, logs and clears the fault recording registers; returns faults found. */
unsigned vtd_poll_faults(struct vtd_unit *u, uint64_t hv_base, uint64_t hv_end);
const char *vtd_fault_reason(unsigned fr);
#endif
