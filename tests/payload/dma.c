/*
 * Device DMA against hv's region: the disk controller reads sectors (bus-master DMA) into a
 * page of hv's and into a page of the payload's. With DMA remapping on, the first must leave
 * hv's page as it was (hv logs the blocked write), the second must bring the boot sector.
 * Without VMX (QEMU TCG) the payload can read hv's region, so "unchanged" is checked directly.
 */
#include "payload.h"

static UINT64 sum_page(const volatile UINT8 *p)
{
    UINT64 h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (UINTN i = 0; i < 4096; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void dma_test(EFI_HANDLE self)
{
    EFI_LOADED_IMAGE *li;
    EFI_BLOCK_IO *bio;
    if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, self, &LoadedImageProtocol, (void **)&li)) ||
        EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, li->DeviceHandle, &BlockIoProtocol, (void **)&bio))) {
        out("dma: no block I/O on the boot device");
        return;
    }
    UINTN n = 0, key, dsz = 0;
    UINT32 dver;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&n, &key, &dsz, &dver);
    EFI_MEMORY_DESCRIPTOR *r = map ? hv_region(map, n, dsz) : NULL;
    UINT32 bs = bio->Media->BlockSize, blocks = 4096 / bs;
    out("dma: disk block size %u, media %u", bs, bio->Media->MediaId);
    if (r) {
        UINT64 target = r->PhysicalStart + (r->NumberOfPages / 2) * 4096;
        UINT64 before = sum_page((volatile UINT8 *)target);
        EFI_STATUS s = uefi_call_wrapper(bio->ReadBlocks, 5, bio, bio->Media->MediaId, 0, 4096, (void *)target);
        uefi_call_wrapper(BS->Stall, 1, 100000); /* hv's 10 ms poll logs the fault meanwhile */
        UINT64 after = sum_page((volatile UINT8 *)target);
        volatile UINT8 *t = (volatile UINT8 *)target;
        out("dma: disk read into hv's region at 0x%llx (region 0x%llx, %llu KiB): status 0x%llx, hv's page %s%s",
            (unsigned long long)target, (unsigned long long)r->PhysicalStart,
            (unsigned long long)(r->NumberOfPages * 4), (unsigned long long)s, before == after ? "unchanged" : "CHANGED",
            t[510] == 0x55 && t[511] == 0xaa ? " (it holds the boot sector)" : "");
    } else {
        out("dma: no hv region in the memory map");
    }
    if (map)
        FreePool(map);
    EFI_PHYSICAL_ADDRESS buf = 0xffffffffull;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, 1, &buf))) {
        out("dma: no page for the second read");
        return;
    }
    volatile UINT8 *b = (volatile UINT8 *)buf;
    for (UINTN i = 0; i < 4096; i++)
        b[i] = 0;
    EFI_STATUS s = uefi_call_wrapper(bio->ReadBlocks, 5, bio, bio->Media->MediaId, 0, blocks * bs, (void *)buf);
    out("dma: disk read elsewhere at 0x%llx: status 0x%llx, boot sector signature %s, label %c%c%c%c%c%c",
        (unsigned long long)buf, (unsigned long long)s, b[510] == 0x55 && b[511] == 0xaa ? "55aa" : "missing",
        b[43], b[44], b[45], b[46], b[47], b[48]);
    uefi_call_wrapper(BS->FreePages, 2, buf, 1);

    /* As an OS loader would: hv (without VMX) turns remapping off here and says so. */
    for (int tries = 0; tries < 4; tries++) {
        map = LibMemoryMap(&n, &key, &dsz, &dver);
        if (!EFI_ERROR(uefi_call_wrapper(BS->ExitBootServices, 2, self, key))) {
            out("dma: boot services exited");
            return;
        }
    }
    out("dma: ExitBootServices failed");
}
