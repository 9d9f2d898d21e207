/* L1's memory operands: linear → guest-physical through L1's own paging structures (SDM
 * Vol. 3A ch. 4), and copies to/from L1 memory. A walk that fails raises the #PF L1 would
 * get. L1 runs at CPL 0: its accesses are supervisor-mode data accesses.
 * The same for L2's operands while vmcs02 is current (its VMREAD/VMWRITE under L1's VMCS
 * shadowing, at CPL 0): L2's paging (vmcs02's CR0, CR3, CR4, EFER, PDPTEs), and with L1's
 * EPT every L2-physical address of the walk and of the operand through EPT12 (29.3), with
 * EPT12's accessed and dirty flags and PML entries as the CPU makes them (29.3.5, 29.3.6). */
#include <string.h>
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "ept02.h"
#include "gva.h"
#include "nested_int.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_XD (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define PF_P (1u << 0)
#define PF_W (1u << 1)
#define PF_RSVD (1u << 3)
#define CR4_PSE (1ull << 4)
#define EFER_NXE (1ull << 11)
#define CR4_SMAP (1ull << 21)
#define RFLAGS_AC (1ull << 18)

/* Reads of memory L1 cannot see (hv's own, not RAM) give zeros, as EPT01 shows them. */
static uint64_t read_pte(uint64_t gpa, unsigned size)
{
    if (!hv_gpa_is_ram(gpa, size))
        return 0;
    if (size == 4)
        return *(volatile const uint32_t *)(uintptr_t)gpa;
    return *(volatile const uint64_t *)(uintptr_t)gpa;
}

/* A walk ends at a not-present entry (#PF with P = 0, whatever the entries above allowed)
 * or at a present one with a reserved bit set (P = 1, RSVD = 1) (4.7); it collects the R/W
 * and U/S flags of the entries used, checked once it has a translation, and where they are. */
struct walk {
    uint64_t rights, xd; /* R/W and U/S AND-ed, XD OR-ed over the entries used */
    bool paging;         /* rights and xd describe the operand's translation */
    uint64_t entry[4]; /* guest-physical addresses of the entries used, the leaf last */
    unsigned n, size;
    uint32_t ept_reason; /* EPT12 refused an access: exit 48 or 49 for L1 (62: no room in its PML log) */
    uint64_t ept_qual, ept_gpa;
    bool set_ad;         /* the access is made now: flags set (else only checked, 6.5) */
};

/* EPT12's flags for an access it allowed (29.3.5), logged by L1's PML (29.3.6) whose index
 * lives in vmcs12 while L2 runs, as for EPT02's faults (nested/ept02_exit.c). */
static enum ept12_flags ept12_flags(struct nested_vcpu *nv, const struct ept12_walk *e, uint64_t l2_gpa, bool write,
                                    bool set)
{
    struct ept02_fault f = {.l2_gpa = l2_gpa};
    nested_pml_load(nv, &f);
    if (!set)
        return ept12_pml_full(nv->n->ept02, e, write, &f) ? EPT12_FLAGS_PML_FULL : EPT12_FLAGS_SET;
    enum ept12_flags r = ept12_set_flags(nv->n->ept02, e, write, &f);
    nested_pml_store(nv, &f);
    return r;
}

/* An L2-physical address as L1-physical through EPT12 when L2 runs with L1's EPT (else they
 * are the same): 0, or -1 with the EPT violation (qualification as 28.2.1: the access, EPT12's
 * R/W/X, linear address valid, bit 8 for the operand itself rather than a paging-structure
 * entry, which with EPT A/D flags is a write) or misconfiguration the CPU would give L1 recorded in w. */
static int l1_phys(struct nested_vcpu *nv, uint64_t *gpa, uint64_t need, bool final, struct walk *w)
{
    struct ept12_walk e;
    if (!nv->n->guest_mode || !nv->n->ept12 || !nv->n->ept02)
        return 0;
    /* 29.3.3.2: with EPTP bit 6, accesses to L2's paging structures are writes for EPT12. */
    if (!final && (nv->n->ept02->eptp12 & EPTP_AD))
        need = EPT_W;
    enum ept12_status st;
    for (int tries = 0;; tries++) {
        st = ept12_walk(nv->n->ept02, *gpa, &e);
        if (st != EPT12_OK || (need & ~e.access))
            break;
        enum ept12_flags fl = ept12_flags(nv, &e, *gpa, need & EPT_W, w->set_ad);
        if (fl == EPT12_FLAGS_CHANGED && tries < 4)
            continue; /* L1 changed an entry on another CPU: walk again */
        if (fl == EPT12_FLAGS_PML_FULL) {
            w->ept_gpa = *gpa;
            w->ept_reason = EXIT_REASON_PML_FULL;
            w->ept_qual = 0; /* bit 12 only, for an NMI-unblocking IRET: not this */
            return -1;
        }
        *gpa = e.l1_gpa;
        return 0;
    }
    w->ept_gpa = *gpa;
    w->ept_reason = st == EPT12_MISCONFIG ? EXIT_REASON_EPT_MISCONFIG : EXIT_REASON_EPT_VIOLATION;
    w->ept_qual = st == EPT12_MISCONFIG ? 0 : need | (e.access & EPT_RWX) << EPT_QUAL_PERM_SHIFT | EPT_QUAL_GLA_VALID |
                                                  (final ? EPT_QUAL_GLA_XLATE : 0) |
                                                  (e.access & EPT_XU ? EPT_QUAL_XU : 0); /* MBEC only */
    /* Advanced exit information (28.2.1): with bits 7 and 8 set, L2's paging of the address. */
    if (w->ept_qual && final && w->paging && (nv->caps->ept_vpid & EPT_CAP_ADV_EXIT_INFO))
        w->ept_qual |= (w->rights & PTE_US ? EPT_QUAL_USER : 0) | (w->rights & PTE_W ? EPT_QUAL_RW_PAGE : 0) |
                       (w->xd ? EPT_QUAL_NX_PAGE : 0);
    return -1;
}
static void use(struct walk *w, uint64_t entry_gpa, uint64_t e)
{
    w->rights &= e;
    w->xd |= e & PTE_XD;
    w->entry[w->n++] = entry_gpa;
}

/* The accessed flag of each entry used, the dirty flag of the leaf for a write (4.8). L1's
 * other CPUs may change their entries meanwhile: an atomic OR, as the CPU's locked update. */
static void set_accessed_dirty(const struct walk *w, bool write)
{
    for (unsigned i = 0; i < w->n; i++) {
        uint64_t f = PTE_A | (write && i == w->n - 1 ? PTE_D : 0);
        if (!hv_gpa_is_ram(w->entry[i], w->size))
            continue;
        if (w->size == 4) {
            uint32_t *e = (uint32_t *)(uintptr_t)w->entry[i];
            if ((__atomic_load_n(e, __ATOMIC_RELAXED) & f) != f)
                __atomic_fetch_or(e, (uint32_t)f, __ATOMIC_SEQ_CST);
        } else {
            uint64_t *e = (uint64_t *)(uintptr_t)w->entry[i];
            if ((__atomic_load_n(e, __ATOMIC_RELAXED) & f) != f)
                __atomic_fetch_or(e, f, __ATOMIC_SEQ_CST);
        }
    }
}

/* 32-bit paging (4.3): 4-byte entries; a 4 MiB page with CR4.PSE, whose PDE bits (M-20):13
 * are address bits (M-1):32 and bits 21:(M-19) reserved, M = MIN(MAXPHYADDR, 40) (Table 4-4). */
static int walk32(struct nested_vcpu *nv, uint64_t cr3, uint64_t cr4, uint64_t gva, struct walk *w,
                  uint64_t *gpa, uint32_t *err)
{
    uint64_t pde_gpa = (cr3 & 0xfffff000ull) + ((gva >> 22) & 1023) * 4;
    if (l1_phys(nv, &pde_gpa, EPT_R, false, w))
        return -1;
    uint64_t pde = read_pte(pde_gpa, 4);
    w->size = 4;
    if (!(pde & PTE_P))
        return -1;
    if ((pde & PTE_PS) && (cr4 & CR4_PSE)) {
        unsigned hi = (nv->phys_bits < 40 ? nv->phys_bits : 40) - 32;
        if (pde & (((1ull << 22) - 1) & ~((1ull << (13 + hi)) - 1)))
            return *err |= PF_P | PF_RSVD, -1;
        use(w, pde_gpa, pde);
        *gpa = (pde & 0xffc00000ull) | ((pde >> 13) & ((1ull << hi) - 1)) << 32 | (gva & 0x3fffff);
        return 0;
    }
    uint64_t pte_gpa = (pde & 0xfffff000ull) + ((gva >> 12) & 1023) * 4;
    if (l1_phys(nv, &pte_gpa, EPT_R, false, w))
        return -1;
    uint64_t pte = read_pte(pte_gpa, 4);
    if (!(pte & PTE_P))
        return -1;
    use(w, pde_gpa, pde);
    use(w, pte_gpa, pte);
    *gpa = (pte & 0xfffff000ull) | (gva & 0xfff);
    return 0;
}

/* 4-level (4.5) and PAE (4.4) paging: 8-byte entries. Reserved: address bits 51:MAXPHYADDR,
 * XD without EFER.NXE, PS in a PML4E, bits 29:13 / 20:13 of a 1 GiB / 2 MiB page; PAE
 * entries also bits 62:52. */
static int walk64(struct nested_vcpu *nv, uint64_t cr3, uint64_t efer, uint64_t gva, struct walk *w,
                  uint64_t *gpa, uint32_t *err)
{
    bool lma = efer & EFER_LMA;
    uint64_t rsvd = (PTE_ADDR & ~((1ull << nv->phys_bits) - 1)) | ((efer & EFER_NXE) ? 0 : PTE_XD) |
                    (lma ? 0 : 0x7ff0000000000000ull);
    uint64_t table;
    int level;
    w->size = 8;
    if (lma) {
        table = cr3 & PTE_ADDR;
        level = 4;
    } else {
        /* PAE: the PDPTEs loaded with CR3 (4.4.1), not memory at CR3 now; with EPT the VM exit
         * saved them in vmcs01 (28.3.4) */
        uint64_t pdpte = reg_read(nv->rc, (enum hv_reg)(HV_REG_PDPTR0 + ((gva >> 30) & 3)));
        if (!(pdpte & PTE_P))
            return -1;
        table = pdpte & PTE_ADDR;
        level = 2;
    }
    for (; level >= 1; level--) { /* at most 4 entries */
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t e_gpa = table + ((gva >> shift) & 511) * 8;
        if (l1_phys(nv, &e_gpa, EPT_R, false, w))
            return -1;
        uint64_t e = read_pte(e_gpa, 8);
        if (!(e & PTE_P))
            return -1;
        bool leaf = level == 1 || ((e & PTE_PS) && level <= 3);
        uint64_t bad = rsvd | (level == 4 ? PTE_PS : 0) | (leaf && level > 1 ? ((1ull << shift) - 1) & ~0x1fffull : 0);
        if (e & bad)
            return *err |= PF_P | PF_RSVD, -1;
        use(w, e_gpa, e);
        if (leaf) {
            uint64_t mask = (1ull << shift) - 1;
            *gpa = (e & PTE_ADDR & ~mask) | (gva & mask);
            return 0;
        }
        table = e & PTE_ADDR;
    }
    return -1;
}

/* 0, -1 for a #PF (*pferr), -2 for an EPT12 exit (w). */
static int translate(struct nested_vcpu *nv, uint64_t gva, bool write, bool set_ad, uint64_t *gpa, uint32_t *pferr,
                     struct walk *fail)
{
    uint64_t cr0 = reg_cr0(nv->rc), cr4 = reg_cr4(nv->rc), efer = vmcs_read(GUEST_IA32_EFER);
    uint64_t cr3 = reg_read(nv->rc, HV_REG_CR3);
    struct walk w = {.rights = PTE_W | PTE_US, .set_ad = set_ad};
    fail->set_ad = set_ad;
    uint64_t need = write ? EPT_W : EPT_R;
    *pferr = write ? PF_W : 0;
    if (!(cr0 & CR0_PG)) {
        *gpa = gva & 0xffffffffull;
        return l1_phys(nv, gpa, need, true, fail) ? -2 : 0;
    }
    int r = (efer & EFER_LMA) || (cr4 & CR4_PAE) ? walk64(nv, cr3, efer, gva, &w, gpa, pferr)
                                                 : walk32(nv, cr3, cr4, gva, &w, gpa, pferr);
    if (r) {
        *fail = w;
        return w.ept_reason ? -2 : -1;
    }
    /* Access rights (4.6): at CPL 0 only CR0.WP stops a write to a read-only translation, and
     * SMAP (CR4.SMAP = 1, RFLAGS.AC = 0) any access to a user-mode page (4.6.1). */
    if (write && !(w.rights & PTE_W) && (cr0 & CR0_WP))
        return *pferr |= PF_P, -1;
    if ((w.rights & PTE_US) && (cr4 & CR4_SMAP) && !(reg_rflags(nv->rc) & RFLAGS_AC))
        return *pferr |= PF_P, -1;
    fail->rights = w.rights;
    fail->xd = w.xd;
    fail->paging = true;
    if (l1_phys(nv, gpa, need, true, fail))
        return -2;
    if (set_ad)
        set_accessed_dirty(&w, write);
    return 0;
}

int gva_to_gpa(struct nested_vcpu *nv, uint64_t gva, bool write, uint64_t *gpa, uint32_t *pferr)
{
    struct walk fail = {0};
    return translate(nv, gva, write, true, gpa, pferr, &fail) ? -1 : 0;
}

/* An operand on two pages is copied only once both translate: a #PF on the second leaves
 * L1's memory, and its paging structures' accessed and dirty flags, as they were (a faulting
 * instruction has not executed, SDM 6.5). */
static int copy(struct nested_vcpu *nv, uint64_t gva, void *buf, size_t len, bool write)
{
    for (int pass = 0; pass < 2; pass++) { /* translate all, then translate and copy */
        uint64_t a = gva;
        uint8_t *b = buf;
        for (size_t left = len; left;) {
            uint64_t gpa;
            uint32_t err;
            struct walk fail = {0};
            size_t chunk = 4096 - (a & 4095);
            if (chunk > left)
                chunk = left;
            int r = translate(nv, a, write, pass, &gpa, &err, &fail);
            if (r == -2) {
                nested_reflect_ept(nv, fail.ept_reason, fail.ept_qual, fail.ept_gpa, a);
                return -1;
            }
            if (r) {
                hv_inject_page_fault(nv->rc, a, err);
                return -1;
            }
            if (pass && hv_gpa_is_ram(gpa, chunk)) {
                if (write)
                    memcpy((void *)(uintptr_t)gpa, b, chunk);
                else
                    memcpy(b, (const void *)(uintptr_t)gpa, chunk);
            } else if (pass && !write) {
                memset(b, 0, chunk); /* hv's memory and MMIO read as zeros; writes are dropped */
            }
            a += chunk;
            b += chunk;
            left -= chunk;
        }
    }
    return 0;
}

int guest_read(struct nested_vcpu *nv, uint64_t gva, void *buf, size_t len) { return copy(nv, gva, buf, len, false); }
int guest_write(struct nested_vcpu *nv, uint64_t gva, const void *buf, size_t len)
{
    return copy(nv, gva, (void *)buf, len, true);
}
