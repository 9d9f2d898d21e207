/* L1's memory operands: linear → guest-physical through L1's own paging structures,
 * and copies to/from L1 memory. A walk that fails raises the #PF L1 would get. */
#include <string.h>
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "gva.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull
#define PF_P (1u << 0)
#define PF_W (1u << 1)

/* Reads of memory L1 cannot see (hv's own, not RAM) give zeros, as EPT01 shows them. */
static uint64_t read_pte(uint64_t gpa)
{
    if (!hv_gpa_is_ram(gpa, 8))
        return 0;
    return *(volatile const uint64_t *)(uintptr_t)gpa;
}

int gva_to_gpa(struct nested_vcpu *nv, uint64_t gva, bool write, uint64_t *gpa, uint32_t *pferr)
{
    uint64_t cr0 = reg_cr0(nv->rc), cr4 = reg_cr4(nv->rc), efer = vmcs_read(GUEST_IA32_EFER);
    uint64_t cr3 = reg_read(nv->rc, HV_REG_CR3);
    *pferr = write ? PF_W : 0;
    if (!(cr0 & CR0_PG)) {
        *gpa = gva & 0xffffffffull;
        return 0;
    }
    uint64_t e, table;
    int level;
    if (efer & EFER_LMA) {
        table = cr3 & PTE_ADDR;
        level = 4;
    } else if (cr4 & CR4_PAE) {
        e = read_pte((cr3 & 0xffffffe0ull) + ((gva >> 30) & 3) * 8);
        if (!(e & PTE_P))
            return -1;
        table = e & PTE_ADDR;
        level = 2;
    } else {
        /* 32-bit paging: 4-byte entries */
        uint32_t pde = (uint32_t)read_pte((cr3 & 0xfffff000ull) + ((gva >> 22) & 1023) * 4);
        if (!(pde & PTE_P))
            return -1;
        if (write && !(pde & PTE_W) && (cr0 & CR0_WP))
            return *pferr |= PF_P, -1;
        if ((pde & PTE_PS) && (cr4 & (1u << 4))) {
            *gpa = (pde & 0xffc00000u) | (gva & 0x3fffff);
            return 0;
        }
        uint32_t pte = (uint32_t)read_pte((pde & 0xfffff000u) + ((gva >> 12) & 1023) * 4);
        if (!(pte & PTE_P))
            return -1;
        if (write && !(pte & PTE_W) && (cr0 & CR0_WP))
            return *pferr |= PF_P, -1;
        *gpa = (pte & 0xfffff000u) | (gva & 0xfff);
        return 0;
    }
    for (; level >= 1; level--) {
        unsigned shift = 12 + 9 * (level - 1);
        e = read_pte(table + ((gva >> shift) & 511) * 8);
        if (!(e & PTE_P))
            return -1;
        if (write && !(e & PTE_W) && (cr0 & CR0_WP))
            return *pferr |= PF_P, -1; /* L1 runs at CPL 0: only WP stops its writes */
        if (level == 1 || ((e & PTE_PS) && level <= 3)) {
            uint64_t mask = (1ull << shift) - 1;
            *gpa = (e & PTE_ADDR & ~mask) | (gva & mask);
            return 0;
        }
        table = e & PTE_ADDR;
    }
    return -1;
}

static int copy(struct nested_vcpu *nv, uint64_t gva, void *buf, size_t len, bool write)
{
    uint8_t *b = buf;
    while (len) {
        uint64_t gpa;
        uint32_t err;
        size_t chunk = 4096 - (gva & 4095);
        if (chunk > len)
            chunk = len;
        if (gva_to_gpa(nv, gva, write, &gpa, &err)) {
            hv_inject_page_fault(nv->rc, gva, err);
            return -1;
        }
        if (hv_gpa_is_ram(gpa, chunk)) {
            if (write)
                memcpy((void *)(uintptr_t)gpa, b, chunk);
            else
                memcpy(b, (const void *)(uintptr_t)gpa, chunk);
        } else if (!write) {
            memset(b, 0, chunk); /* hv's memory and MMIO read as zeros; writes are dropped */
        }
        gva += chunk;
        b += chunk;
        len -= chunk;
    }
    return 0;
}

int guest_read(struct nested_vcpu *nv, uint64_t gva, void *buf, size_t len) { return copy(nv, gva, buf, len, false); }
int guest_write(struct nested_vcpu *nv, uint64_t gva, const void *buf, size_t len)
{
    return copy(nv, gva, (void *)buf, len, true);
}
