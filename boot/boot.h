/* boot/: the UEFI application. Only code in this folder calls UEFI. */
#ifndef BOOT_BOOT_H
#define BOOT_BOOT_H
#include <efi.h>
#include <efilib.h>
#include "../hv/handoff.h"
#include "log.h"

#define HV_HEAP_SIZE (6ull << 20) /* core allocator: per-CPU VMCS, stacks, EPT tables */

/* fs.c: files on the device hv.efi was loaded from */
EFI_STATUS fs_read(EFI_HANDLE device, const CHAR16 *path, void **data, UINTN *size, UINTN max);
void path_dir_of(const EFI_DEVICE_PATH *fp, CHAR16 *dir, UINTN cap);  /* "\EFI\BOOT" */
void path_join(CHAR16 *out, UINTN cap, const CHAR16 *dir, const char *name);
void ascii_to_ucs2(CHAR16 *out, UINTN cap, const char *s);
void ucs2_to_ascii(char *out, UINTN cap, const CHAR16 *s);

/* load.c: the core image in reserved memory, page tables, handoff */
struct core {
    struct hv_handoff *handoff;
    void *main;     /* int hv_main(handoff, 0, resume) */
    void *cpu_main; /* int hv_cpu_main(handoff, cpu, resume) */
    void *dma_entry; /* int hv_dma_entry(handoff, op, NULL) */
    uint64_t base, pages; /* hv's region, for core_unload */
};
/* trampoline.asm: fn(arg0, arg1, &resume); if the core virtualizes this CPU, its
 * guest continues at the return of this call with 0. */
int boot_call_core(void *fn, void *arg0, uint64_t arg1);
EFI_STATUS core_load(struct core *core, const struct hv_config *cfg);
void core_unload(struct core *core); /* only while the core runs on no CPU */

/* mp.c: the firmware's MP services */
EFI_STATUS mp_cpus(struct hv_handoff *h);
EFI_STATUS mp_run_aps(struct core *core);

/* dma.c: hv not virtualizing but DMA remapping on (HV_DMA_ONLY): keep the region, poll the
 * fault records from a timer, remapping off at ExitBootServices. */
EFI_STATUS dma_keep(struct core *core);

/* next.c: the next stage */
EFI_STATUS next_start(EFI_HANDLE self, EFI_HANDLE device, const CHAR16 *dir, const struct hv_config *cfg);
#endif
