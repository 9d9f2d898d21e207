/* Running the core on every CPU through the firmware's MP services. */
#include "boot.h"
#include "mp_services.h"

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
