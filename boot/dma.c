/* When hv cannot virtualize but has turned DMA remapping on (HV_DMA_ONLY), its tables live in
 * its region: the region stays reserved, a timer of hv's reads the fault records while boot
 * services run (no VM exits to poll from), and ExitBootServices turns remapping off so the OS
 * finds the units as the firmware left them: without VMX nothing could keep the OS off them. */
#include "boot.h"

typedef int (*dma_entry_fn)(struct hv_handoff *h, uint64_t op, const void *unused);
static struct core kept;
static EFI_EVENT timer, ebs;

static VOID EFIAPI on_timer(EFI_EVENT e, VOID *ctx)
{
    ((dma_entry_fn)kept.dma_entry)(kept.handoff, HV_DMA_OP_POLL, NULL);
}

static VOID EFIAPI on_exit_boot_services(EFI_EVENT e, VOID *ctx)
{
    ((dma_entry_fn)kept.dma_entry)(kept.handoff, HV_DMA_OP_STOP, NULL);
}

EFI_STATUS dma_keep(struct core *core)
{
    kept = *core;
    if (!kept.dma_entry)
        return EFI_UNSUPPORTED; /* cannot happen with a matching core: the region just stays reserved */
    EFI_STATUS s = uefi_call_wrapper(BS->CreateEvent, 5, EVT_TIMER | EVT_NOTIFY_SIGNAL, TPL_CALLBACK, on_timer, NULL,
                                     &timer);
    if (!EFI_ERROR(s))
        s = uefi_call_wrapper(BS->SetTimer, 3, timer, TimerPeriodic, 100000); /* 10 ms in 100 ns units */
    if (EFI_ERROR(s))
        blog(BLOG_WARN, "dma: no polling timer (0x%llx): DMA faults are not logged", (uint64_t)s);
    s = uefi_call_wrapper(BS->CreateEvent, 5, EVT_SIGNAL_EXIT_BOOT_SERVICES, TPL_NOTIFY, on_exit_boot_services, NULL,
                          &ebs);
    if (EFI_ERROR(s))
        blog(BLOG_WARN, "dma: no ExitBootServices event (0x%llx): remapping stays on under the OS", (uint64_t)s);
    blog(BLOG_INFO, "dma: hv's %llu KiB stay reserved for the remapping tables", core->pages << 2);
    return EFI_SUCCESS;
}
