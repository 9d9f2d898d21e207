/* Loading the core: reserved pages, descramble + relocate, host page tables, handoff. */
#include "boot.h"
#include "memmap.h"
#include "scramble.h"

extern const uint8_t hv_core_blob[], hv_core_blob_end[];

#define R_X86_64_RELATIVE 8
struct elf64_rela { uint64_t off, info; int64_t addend; };

static uint64_t pages_of(uint64_t bytes) { return (bytes + 4095) >> 12; }

static void cpuid_(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static EFI_STATUS get_memmap(void **map, UINTN *size, UINTN *dsize)
{
    UINTN key;
    UINT32 ver;
    EFI_STATUS s;
    *size = 0;
    *map = NULL;
    for (int tries = 0; tries < 4; tries++) {
        s = uefi_call_wrapper(BS->GetMemoryMap, 5, size, *map, &key, dsize, &ver);
        if (s != EFI_BUFFER_TOO_SMALL)
            return s;
        if (*map)
            uefi_call_wrapper(BS->FreePool, 1, *map);
        *size += 8 * sizeof(EFI_MEMORY_DESCRIPTOR); /* the allocation itself may add entries */
        if (EFI_ERROR((s = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, *size, map))))
            return s;
    }
    return EFI_BUFFER_TOO_SMALL;
}

/* Identity map of [0, limit): 1 GiB pages where the CPU has them, else 2 MiB. */
static uint64_t build_page_tables(uint64_t *pt, uint64_t limit, int gbpages)
{
    uint64_t *pml4 = pt, *next = pt + 512;
    for (uint64_t va = 0; va < limit; va += 1ull << 30) {
        uint64_t i4 = va >> 39, i3 = (va >> 30) & 511;
        if (!(pml4[i4] & 1)) {
            pml4[i4] = (uint64_t)(uintptr_t)next | 3;
            next += 512;
        }
        uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[i4] & ~0xfffull);
        if (gbpages) {
            pdpt[i3] = va | 0x83; /* P, RW, PS */
            continue;
        }
        uint64_t *pd = next;
        next += 512;
        pdpt[i3] = (uint64_t)(uintptr_t)pd | 3;
        for (uint64_t j = 0; j < 512; j++)
            pd[j] = (va + (j << 21)) | 0x83;
    }
    return (uint64_t)(uintptr_t)pml4;
}

static uint64_t pt_pages(uint64_t limit, int gbpages)
{
    uint64_t gib = limit >> 30;
    return 1 + ((limit + (1ull << 39) - 1) >> 39) + (gbpages ? 0 : gib);
}

static uint64_t find_rsdp(void)
{
    EFI_GUID acpi20 = ACPI_20_TABLE_GUID, acpi10 = ACPI_TABLE_GUID;
    uint64_t v1 = 0;
    for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
        EFI_CONFIGURATION_TABLE *t = &ST->ConfigurationTable[i];
        if (!CompareGuid(&t->VendorGuid, &acpi20))
            return (uint64_t)(uintptr_t)t->VendorTable;
        if (!CompareGuid(&t->VendorGuid, &acpi10))
            v1 = (uint64_t)(uintptr_t)t->VendorTable;
    }
    return v1;
}

EFI_STATUS core_load(struct core *core, const struct hv_config *cfg)
{
    struct hv_image_header hdr;
    uint64_t key = HV_SCRAMBLE_SEED;
    uint64_t blob = (uint64_t)(hv_core_blob_end - hv_core_blob);
    if (blob < sizeof(hdr)) {
        blog(BLOG_ERROR, "core image missing from hv.efi (%llu bytes)", blob);
        return EFI_LOAD_ERROR;
    }
    for (UINTN i = 0; i < sizeof(hdr); i++)
        ((uint8_t *)&hdr)[i] = hv_core_blob[i] ^ scramble_next(&key);
    if (hdr.magic != HV_IMAGE_MAGIC || hdr.version != HV_HANDOFF_VERSION || hdr.file_size != blob ||
        hdr.mem_size < hdr.file_size || hdr.rela_end < hdr.rela_start || hdr.rela_end > hdr.file_size) {
        blog(BLOG_ERROR, "core image header invalid (magic %llx version %u)", hdr.magic, hdr.version);
        return EFI_LOAD_ERROR;
    }

    void *map;
    UINTN msize, dsize;
    EFI_STATUS s = get_memmap(&map, &msize, &dsize);
    if (EFI_ERROR(s)) {
        blog(BLOG_ERROR, "GetMemoryMap failed: 0x%llx", (uint64_t)s);
        return s;
    }
    uint64_t top = 4ull << 30;
    for (UINTN off = 0; off + dsize <= msize; off += dsize) {
        const struct efi_md *d = (const struct efi_md *)((char *)map + off);
        if (d->phys + (d->pages << 12) > top)
            top = d->phys + (d->pages << 12);
    }
    uint32_t a, b, c, d;
    cpuid_(0x80000000, &a, &b, &c, &d);
    uint32_t maxext = a, phys_bits = 36;
    int gbpages = 0;
    if (maxext >= 0x80000001) {
        cpuid_(0x80000001, &a, &b, &c, &d);
        gbpages = (d >> 26) & 1;
    }
    if (maxext >= 0x80000008) {
        cpuid_(0x80000008, &a, &b, &c, &d);
        phys_bits = a & 0xff;
    }
    uint64_t limit = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    if (phys_bits < 52 && limit > (1ull << phys_bits))
        limit = 1ull << phys_bits;

    uint64_t img_pages = pages_of(hdr.mem_size), ho_pages = pages_of(sizeof(struct hv_handoff));
    uint64_t ptp = pt_pages(limit, gbpages), heap_pages = (HV_HEAP_SIZE >> 12) + hv_ept01_width_pages(phys_bits);
    uint64_t total = img_pages + ho_pages + ptp + heap_pages;
    EFI_PHYSICAL_ADDRESS base = 0xffffffffull; /* below 4 GiB: reachable from any mode */
    s = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiReservedMemoryType, total, &base);
    if (EFI_ERROR(s)) {
        blog(BLOG_ERROR, "cannot reserve %llu KiB for hv: 0x%llx", total << 2, (uint64_t)s);
        return s;
    }
    uint8_t *img = (uint8_t *)(uintptr_t)base;
    key = HV_SCRAMBLE_SEED;
    for (uint64_t i = 0; i < hdr.file_size; i++)
        img[i] = hv_core_blob[i] ^ scramble_next(&key);
    SetMem(img + hdr.file_size, (total << 12) - hdr.file_size, 0);

    /* The core is linked at 0 as a static PIE: only R_X86_64_RELATIVE can appear. */
    for (uint64_t r = hdr.rela_start; r + sizeof(struct elf64_rela) <= hdr.rela_end; r += sizeof(struct elf64_rela)) {
        const struct elf64_rela *e = (const struct elf64_rela *)(img + r);
        if ((uint32_t)e->info != R_X86_64_RELATIVE || e->off + 8 > hdr.mem_size) {
            blog(BLOG_ERROR, "core image: unsupported relocation type %u at 0x%llx", (uint32_t)e->info, e->off);
            uefi_call_wrapper(BS->FreePages, 2, base, total);
            return EFI_LOAD_ERROR;
        }
        *(uint64_t *)(img + e->off) = base + (uint64_t)e->addend;
    }

    struct hv_handoff *h = (struct hv_handoff *)(img + (img_pages << 12));
    uint64_t *pt = (uint64_t *)((uint8_t *)h + (ho_pages << 12));
    h->magic = HV_HANDOFF_MAGIC;
    h->version = HV_HANDOFF_VERSION;
    h->size = sizeof(*h);
    h->hv_base = base;
    h->hv_size = total << 12;
    h->image_base = base;
    h->image_size = img_pages << 12;
    h->host_cr3 = build_page_tables(pt, limit, gbpages);
    h->host_map_limit = limit;
    h->heap_base = (uint64_t)(uintptr_t)(pt + (ptp << 9));
    h->heap_size = heap_pages << 12;
    h->rsdp = find_rsdp();
    h->cfg = *cfg;

    uefi_call_wrapper(BS->FreePool, 1, map);
    if (EFI_ERROR((s = get_memmap(&map, &msize, &dsize)))) /* again: now it shows hv's pages */
        return s;
    unsigned dropped;
    h->nmem = memmap_convert(map, msize, dsize, h->hv_base, h->hv_size, h->mem, HV_MAX_MEM, &dropped);
    uefi_call_wrapper(BS->FreePool, 1, map);
    if (dropped)
        blog(BLOG_WARN, "memory map: %u ranges beyond %u not passed to the core", dropped, HV_MAX_MEM);

    core->handoff = h;
    core->base = base;
    core->pages = total;
    core->main = img + hdr.entry;
    core->cpu_main = img + hdr.cpu_entry;
    core->dma_entry = hdr.dma_entry ? img + hdr.dma_entry : NULL;
    blog(BLOG_INFO, "core loaded at 0x%llx: %llu KiB image, %llu page-table pages (%s pages up to %llu GiB)",
         (uint64_t)base, img_pages << 2, ptp, gbpages ? "1 GiB" : "2 MiB", limit >> 30);
    return EFI_SUCCESS;
}

void core_unload(struct core *core)
{
    SetMem((void *)(uintptr_t)core->base, core->pages << 12, 0);
    EFI_STATUS s = uefi_call_wrapper(BS->FreePages, 2, core->base, core->pages);
    blog(BLOG_INFO, "hv not active: its %llu KiB wiped and %s", core->pages << 2,
         EFI_ERROR(s) ? "kept reserved (FreePages failed)" : "returned to the firmware");
}
