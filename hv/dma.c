/* hv's DMA protection: the DMAR table's units, one set of identity tables without hv's
 * region, fault polling. The policy lives here; hv/vtd.c knows the unit, hv/dmar.c the table. */
#include "dma.h"
#include <string.h>
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/x86.h"
#include "acpi.h"
#include "dmar.h"
#include "vtd.h"

static struct hv_handoff *ho;
static struct dmar_info dmar;
static uint8_t *dmar_table;
static struct vtd_unit units[DMAR_MAX_UNITS];
static struct vtd_tables tables[2]; /* 3 and 4 levels */
static unsigned nunits, non;
static int poll_busy;
static uint64_t last_poll;

static uint32_t mm_rd32(struct vtd_unit *u, unsigned o) { return *(volatile uint32_t *)(uintptr_t)(u->base + o); }
static uint64_t mm_rd64(struct vtd_unit *u, unsigned o) { return *(volatile uint64_t *)(uintptr_t)(u->base + o); }
static void mm_wr32(struct vtd_unit *u, unsigned o, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(u->base + o) = v; }
static void mm_wr64(struct vtd_unit *u, unsigned o, uint64_t v) { *(volatile uint64_t *)(uintptr_t)(u->base + o) = v; }
static const struct vtd_regs mmio = {mm_rd32, mm_rd64, mm_wr32, mm_wr64};

static void *alloc_page(void) { return page_alloc(1); }

/* Every address the memory map and the RMRRs name, at least 4 GiB (legacy MMIO is often
 * missing from the map), in 1 GiB steps; with 1 GiB leaves the whole top table is free. */
static uint64_t map_limit(unsigned width, unsigned sllps)
{
    uint64_t top = 4ull << 30, max = 1ull << width;
    for (unsigned i = 0; i < ho->nmem; i++)
        if (ho->mem[i].base + ho->mem[i].size > top)
            top = ho->mem[i].base + ho->mem[i].size;
    for (unsigned i = 0; i < dmar.nrmrr; i++)
        if (dmar.rmrr[i].limit + 1 > top)
            top = dmar.rmrr[i].limit + 1;
    top = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    if (top > max) {
        log_warn("dma: memory up to 0x%llx, the units translate %u bits: devices cannot reach above 0x%llx",
                 (unsigned long long)top, width, (unsigned long long)max);
        top = max;
    }
    if ((sllps & 2) && top < (512ull << 30))
        top = max < (512ull << 30) ? max : 512ull << 30;
    return top;
}

static const char *prepare_tables(struct vtd_unit *u, struct vtd_tables **out)
{
    struct vtd_tables *t = &tables[u->levels - 3];
    *out = t;
    if (t->root_pt)
        return NULL; /* built for an earlier unit of the same depth */
    t->levels = u->levels;
    t->limit = map_limit(vtd_width(u), VTD_CAP_SLLPS(u->cap));
    t->hv_base = ho->hv_base;
    t->hv_end = ho->hv_base + ho->hv_size;
    if (vtd_build_tables(t, VTD_CAP_SLLPS(u->cap), alloc_page)) {
        t->root_pt = 0;
        return "out of memory for its page tables";
    }
    log_info("dma: %u-level identity map of [0, 0x%llx) without hv's region 0x%llx-0x%llx: %u table pages "
             "(%u 1G, %u 2M, %u 4K leaves)", t->levels, (unsigned long long)t->limit, (unsigned long long)t->hv_base,
             (unsigned long long)t->hv_end - 1, t->pages, t->leaves_1g, t->leaves_2m, t->leaves_4k);
    return NULL;
}

static void log_rmrrs(void)
{
    for (unsigned i = 0; i < dmar.nrmrr; i++) {
        const struct dmar_rmrr *r = &dmar.rmrr[i];
        bool in_hv = r->base < ho->hv_base + ho->hv_size && ho->hv_base <= r->limit;
        log_info("dma: RMRR 0x%llx-0x%llx for %u device(s) (first %02x:%02x.%u): %s", (unsigned long long)r->base,
                 (unsigned long long)r->limit, r->nscopes, r->scope.bus, r->scope.dev, r->scope.fn,
                 in_hv ? "overlaps hv's region, which stays unmapped: that device may fail" : "stays mapped");
    }
}

unsigned dma_init(struct hv_handoff *h)
{
    ho = h;
    if (!h->cfg.dma_protect) {
        log_warn("dma: dma_protect=off in hv.cfg: no DMA remapping, devices can reach all memory, hv's too");
        return 0;
    }
    uint64_t pa = h->rsdp ? acpi_find_table(h->rsdp, "DMAR") : 0;
    if (!pa) {
        log_warn("dma: no DMAR table (no DMA-remapping unit described): devices can reach all memory, hv's too");
        return 0;
    }
    const char *why;
    uint8_t *t = (uint8_t *)(uintptr_t)pa;
    uint32_t len = *(const uint32_t *)(t + 4);
    if (dmar_parse(t, len > 0x10000 ? 0x10000 : len, &dmar, &why)) {
        log_err("dma: DMAR table at 0x%llx refused: %s: no DMA protection", (unsigned long long)pa, why);
        return 0;
    }
    dmar_table = t;
    log_info("dma: DMAR at 0x%llx: %u unit(s), %u RMRR(s), host address width %u, flags 0x%x%s",
             (unsigned long long)pa, dmar.nunits, dmar.nrmrr, dmar.haw, dmar.flags,
             dmar.unknown ? " (other structures skipped)" : "");
    log_rmrrs();
    for (unsigned i = 0; i < dmar.nunits; i++) {
        struct vtd_unit *u = &units[nunits++];
        u->regs = &mmio;
        u->base = dmar.units[i].base;
        u->index = i;
        if (u->base + dmar.units[i].reg_size > h->host_map_limit) {
            log_err("dma: unit %u at 0x%llx: beyond hv's page tables: not used", i, (unsigned long long)u->base);
            continue;
        }
        why = vtd_probe(u);
        log_info("dma: unit %u at 0x%llx: VT-d %u.%u, CAP 0x%llx ECAP 0x%llx, %u device scope(s)%s", i,
                 (unsigned long long)u->base, (u->ver >> 4) & 15, u->ver & 15, (unsigned long long)u->cap,
                 (unsigned long long)u->ecap, dmar.units[i].scopes_total,
                 dmar.units[i].include_all ? ", every other device of its segment" : "");
        struct vtd_tables *tt;
        if (!why)
            why = prepare_tables(u, &tt);
        if (!why)
            why = vtd_enable(u, tt, alloc_page);
        if (why) {
            log_err("dma: unit %u: not used: %s: its devices can reach all memory, hv's too", i, why);
            continue;
        }
        non++;
        log_info("dma: unit %u: remapping on (%u-bit, %u-level, register-based invalidation%s%s, %u fault records)", i,
                 vtd_width(u), u->levels, VTD_CAP_CM(u->cap) ? ", caching mode" : "",
                 VTD_CAP_RWBF(u->cap) ? ", write-buffer flushing" : "", VTD_CAP_NFR(u->cap));
    }
    return non;
}

bool dma_active(void) { return non != 0; }

unsigned dma_register_ranges(struct hv_mem_range *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < nunits && n < max; i++)
        if (units[i].on)
            out[n++] = (struct hv_mem_range){.base = units[i].base, .size = dmar.units[i].reg_size, .type = HV_MEM_HV};
    return n;
}

void dma_hide_table(bool hide)
{
    if (!dmar_table || !non)
        return;
    hide ? dmar_hide(dmar_table) : dmar_unhide(dmar_table);
    if (hide)
        log_info("dma: DMAR table renamed HVDM (checksum kept): the guest sees no remapping unit");
}

void dma_poll(void)
{
    if (!non || __atomic_exchange_n(&poll_busy, 1, __ATOMIC_ACQUIRE))
        return; /* another CPU polls right now: its pass covers this one */
    for (unsigned i = 0; i < nunits; i++)
        if (units[i].on)
            vtd_poll_faults(&units[i], ho->hv_base, ho->hv_base + ho->hv_size);
    __atomic_store_n(&poll_busy, 0, __ATOMIC_RELEASE);
}

void dma_poll_rate_limited(void)
{
    uint64_t now = rdtsc();
    if (non && now - __atomic_load_n(&last_poll, __ATOMIC_RELAXED) > (1ull << 24)) {
        __atomic_store_n(&last_poll, now, __ATOMIC_RELAXED);
        dma_poll();
    }
}

void dma_stop(void)
{
    dma_poll();
    for (unsigned i = 0; i < nunits; i++) {
        if (!units[i].on)
            continue;
        const char *why = vtd_disable(&units[i]);
        log_info("dma: unit %u: %s (%llu fault(s), %llu on hv's region)", i, why ? why : "translation off",
                 (unsigned long long)units[i].faults, (unsigned long long)units[i].faults_hv);
    }
    non = 0;
}
