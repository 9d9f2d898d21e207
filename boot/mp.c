/* EFI_MP_SERVICES_PROTOCOL (UEFI PI spec, Vol. 2, 13.4): GNU-EFI has no header for it. */
#include "boot.h"

#define MP_SERVICES_GUID {0x3fdda605, 0xa76e, 0x4f46, {0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08}}

typedef struct {
    UINT64 ProcessorId;
    UINT32 StatusFlag; /* bit 0 BSP, bit 1 enabled, bit 2 healthy */
    UINT32 Package, Core, Thread;
    UINT32 Extended[6]; /* PI 1.7 extended topology: room in case the firmware writes it */
} MP_PROCESSOR_INFO;

typedef VOID(EFIAPI *MP_PROCEDURE)(VOID *);
typedef struct _MP_SERVICES MP_SERVICES;
struct _MP_SERVICES {
    EFI_STATUS(EFIAPI *GetNumberOfProcessors)(MP_SERVICES *, UINTN *total, UINTN *enabled);
    EFI_STATUS(EFIAPI *GetProcessorInfo)(MP_SERVICES *, UINTN n, MP_PROCESSOR_INFO *);
    EFI_STATUS(EFIAPI *StartupAllAPs)(MP_SERVICES *, MP_PROCEDURE, BOOLEAN single, EFI_EVENT, UINTN timeout_us,
                                     VOID *arg, UINTN **failed);
    EFI_STATUS(EFIAPI *StartupThisAP)(MP_SERVICES *, MP_PROCEDURE, UINTN n, EFI_EVENT, UINTN timeout_us, VOID *arg,
                                     BOOLEAN *finished);
    EFI_STATUS(EFIAPI *SwitchBSP)(MP_SERVICES *, UINTN n, BOOLEAN enable_old);
    EFI_STATUS(EFIAPI *EnableDisableAP)(MP_SERVICES *, UINTN n, BOOLEAN enable, UINT32 *health);
    EFI_STATUS(EFIAPI *WhoAmI)(MP_SERVICES *, UINTN *n);
};

static MP_SERVICES *mp;
static struct core *ap_core;
static volatile int ap_rc[HV_MAX_CPUS];
/* boot/'s own copy: once the core runs, the handoff sits in hv's memory, which the
 * guest (boot/ included) can no longer read. */
static uint32_t ncpus = 1;

static MP_SERVICES *locate(void)
{
    EFI_GUID g = MP_SERVICES_GUID;
    if (!mp && EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &g, NULL, (void **)&mp)))
        mp = NULL;
    return mp;
}

EFI_STATUS mp_cpus(struct hv_handoff *h)
{
    UINTN total = 1, enabled = 1;
    h->ncpus = 1;
    h->cpus[0].flags = HV_CPU_BSP;
    if (!locate()) {
        blog(BLOG_WARN, "no MP services protocol: hv runs on the boot CPU only");
        return EFI_NOT_FOUND;
    }
    EFI_STATUS s = uefi_call_wrapper(mp->GetNumberOfProcessors, 3, mp, &total, &enabled);
    if (EFI_ERROR(s))
        return s;
    if (total > HV_MAX_CPUS) {
        blog(BLOG_WARN, "%llu CPUs: hv supports %u, the rest stay offline to it", (uint64_t)total, HV_MAX_CPUS);
        total = HV_MAX_CPUS;
    }
    h->ncpus = ncpus = (uint32_t)total;
    for (UINTN i = 0; i < total; i++) {
        MP_PROCESSOR_INFO info;
        if (EFI_ERROR(uefi_call_wrapper(mp->GetProcessorInfo, 3, mp, i, &info)))
            continue;
        h->cpus[i].apic_id = (uint32_t)info.ProcessorId;
        h->cpus[i].flags = (info.StatusFlag & 1) ? HV_CPU_BSP : 0;
    }
    return EFI_SUCCESS;
}

static VOID EFIAPI ap_proc(VOID *arg)
{
    (void)arg;
    UINTN n = 0;
    uefi_call_wrapper(mp->WhoAmI, 2, mp, &n); /* the one MP service an AP may call */
    if (n < HV_MAX_CPUS)
        ap_rc[n] = boot_call_core(ap_core->cpu_main, ap_core->handoff, n);
}

EFI_STATUS mp_run_aps(struct core *core)
{
    if (ncpus < 2 || !locate())
        return EFI_SUCCESS;
    ap_core = core;
    UINTN *failed = NULL;
    /* Bounded: an AP that never comes back is reported, not waited for forever. */
    blog(BLOG_DEBUG, "starting the core on %u AP(s)", ncpus - 1);
    EFI_STATUS s = uefi_call_wrapper(mp->StartupAllAPs, 7, mp, ap_proc, FALSE, NULL, 30000000, NULL, &failed);
    blog(BLOG_DEBUG, "StartupAllAPs returned 0x%llx", (uint64_t)s);
    if (EFI_ERROR(s))
        blog(BLOG_ERROR, "StartupAllAPs failed: 0x%llx", (uint64_t)s);
    for (uint32_t i = 0; i < ncpus; i++)
        if (ap_rc[i])
            blog(BLOG_ERROR, "cpu%u: not under hv (core returned %d; see above)", i, ap_rc[i]);
    return s;
}
