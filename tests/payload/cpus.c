/*
 * Per-CPU probes: the hypervisor bit, hv's CPUID signature, VMX and
 * IA32_FEATURE_CONTROL, and hv's version hypercall, on the BSP and every AP.
 * APs run probe() via EFI_MP_SERVICES_PROTOCOL.StartupThisAP one at a time;
 * they touch only their report, and the BSP prints after each one returns.
 */
#include "payload.h"
#include "../../hv/hypercall.h"

#include "../../boot/mp_services.h"

static EFI_GUID mp_guid = MP_SERVICES_GUID;

static void cpuid2(UINT32 leaf, UINT32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static UINT64 rdmsr(UINT32 msr)
{
    UINT32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((UINT64)hi << 32) | lo;
}

/* Only when hv's signature was seen: without a hypervisor VMCALL raises #UD. */
UINT64 hv_vmcall(UINT64 fn)
{
    UINT64 a = fn, b = 0, c = 0, d = 0;
    __asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "+d"(d) : : "memory");
    return a;
}

/* The same with RBX's result too (HV_HC_HIDDEN_WRITES). */
UINT64 hv_vmcall_rbx(UINT64 fn, UINT64 *rbx)
{
    UINT64 a = fn, b = 0, c = 0, d = 0;
    __asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "+d"(d) : : "memory");
    *rbx = b;
    return a;
}

/* fn(ap_arg) on the first enabled AP while fn(bsp_arg) runs on the BSP: StartupThisAP
 * with an event returns at once; then up to 20 s for the AP. FALSE if there is no AP
 * or it did not finish. */
BOOLEAN run_on_ap_and_bsp(VOID (EFIAPI *fn)(VOID *), VOID *ap_arg, VOID *bsp_arg)
{
    MP_SERVICES *mp = NULL;
    UINTN total = 1, enabled = 1, bsp = 0, ap = 0;
    EFI_EVENT ev = NULL;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &mp_guid, NULL, (void **)&mp)) ||
        EFI_ERROR(mp->GetNumberOfProcessors(mp, &total, &enabled)) || EFI_ERROR(mp->WhoAmI(mp, &bsp)))
        return FALSE;
    for (UINTN n = 0; n < total && !ap; n++) {
        MP_PROCESSOR_INFO info;
        SetMem(&info, sizeof(info), 0);
        if (n != bsp && !EFI_ERROR(mp->GetProcessorInfo(mp, n, &info)) && (info.StatusFlag & MP_STATUS_ENABLED))
            ap = n;
    }
    if (!ap || EFI_ERROR(uefi_call_wrapper(BS->CreateEvent, 5, 0, 0, NULL, NULL, &ev)))
        return FALSE;
    if (EFI_ERROR(mp->StartupThisAP(mp, fn, ap, ev, 20000000, ap_arg, NULL))) {
        uefi_call_wrapper(BS->CloseEvent, 1, ev);
        return FALSE;
    }
    fn(bsp_arg);
    EFI_STATUS st = EFI_NOT_READY;
    for (int i = 0; i < 20000 && st == EFI_NOT_READY; i++) {
        st = uefi_call_wrapper(BS->CheckEvent, 1, ev);
        if (st == EFI_NOT_READY)
            uefi_call_wrapper(BS->Stall, 1, 1000);
    }
    uefi_call_wrapper(BS->CloseEvent, 1, ev);
    return st == EFI_SUCCESS;
}

/* Runs on any CPU: no UEFI services, no output, no allocation. */
static VOID EFIAPI probe(VOID *arg)
{
    struct cpu_report *r = arg;
    UINT32 v[4];
    cpuid2(1, v);
    r->leaf1_ecx = v[2];
    cpuid2(HV_CPUID_LEAF_BASE, v);
    r->hv_max_leaf = v[0];
    UINT32 regs[3] = {v[1], v[2], v[3]};
    r->sig_ok = v[0] >= HV_CPUID_LEAF_BASE;
    for (int i = 0; i < 12; i++) {
        char ch = (char)(regs[i / 4] >> (8 * (i % 4)));
        r->sig[i] = ch;
        if (ch < 0x20 || ch > 0x7e)
            r->sig_ok = FALSE;
    }
    r->sig[12] = 0;
    const char *want = HV_CPUID_SIGNATURE;
    r->is_hv = r->sig_ok;
    for (int i = 0; i < 12; i++)
        if (r->sig[i] != want[i])
            r->is_hv = FALSE;
    /* IA32_FEATURE_CONTROL exists with VMX (ECX[5]) or SMX (ECX[6]); else rdmsr #GPs.
     * hv emulates it whatever it shows in CPUID, so read it under hv too. */
    r->fc_present = (r->leaf1_ecx & (3u << 5)) != 0 || r->is_hv;
    if (r->fc_present)
        r->feature_control = rdmsr(0x3a);
    if (r->is_hv)
        r->hc_version = hv_vmcall(HV_HC_VERSION);
    __asm__ volatile("" ::: "memory");
    r->done = TRUE;
}

static void report(UINTN n, const struct cpu_report *r)
{
    unsigned cpu = (unsigned)n;
    if (!r->done) {
        out("cpu%u: no report", cpu);
        return;
    }
    out("cpu%u: hypervisor bit %s", cpu, r->leaf1_ecx & (1u << 31) ? "set" : "clear");
    out("cpu%u: signature %s", cpu, r->sig_ok ? r->sig : "none");
    out("cpu%u: vmx bit %s", cpu, r->leaf1_ecx & (1u << 5) ? "set" : "clear");
    if (r->fc_present)
        out("cpu%u: feature_control 0x%llx", cpu, (unsigned long long)r->feature_control);
    else
        out("cpu%u: feature_control absent", cpu);
    if (r->is_hv)
        out("cpu%u: hypercall version 0x%llx", cpu, (unsigned long long)r->hc_version);
}

BOOLEAN check_cpus(void)
{
    struct cpu_report r;
    MP_SERVICES *mp = NULL;
    UINTN total = 1, enabled = 1, bsp = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &mp_guid, NULL, (void **)&mp)))
        mp = NULL;
    if (mp && (EFI_ERROR(mp->GetNumberOfProcessors(mp, &total, &enabled)) ||
               EFI_ERROR(mp->WhoAmI(mp, &bsp))))
        mp = NULL;
    if (mp)
        out("cpus: %u total, %u enabled, bsp cpu%u", (unsigned)total, (unsigned)enabled, (unsigned)bsp);
    else
        out("cpus: mp services unavailable, bsp only");

    SetMem(&r, sizeof(r), 0);
    probe(&r);
    report(bsp, &r);
    BOOLEAN hv = r.is_hv;

    for (UINTN n = 0; mp && n < total; n++) {
        MP_PROCESSOR_INFO info;
        SetMem(&info, sizeof(info), 0);
        if (n == bsp)
            continue;
        if (EFI_ERROR(mp->GetProcessorInfo(mp, n, &info)) || !(info.StatusFlag & MP_STATUS_ENABLED)) {
            out("cpu%u: disabled or unknown, skipped", (unsigned)n);
            continue;
        }
        SetMem(&r, sizeof(r), 0);
        /* Blocking (no event), 5 s: one AP at a time keeps the output ordered. */
        EFI_STATUS st = mp->StartupThisAP(mp, probe, n, NULL, 5000000, &r, NULL);
        if (EFI_ERROR(st))
            out("cpu%u: StartupThisAP failed 0x%llx", (unsigned)n, (unsigned long long)st);
        report(n, &r);
    }
    return hv;
}

/* The first AP (its MP services number and information), for the tests that send it IPIs. */
BOOLEAN first_ap(MP_SERVICES **mp_out, UINTN *ap, MP_PROCESSOR_INFO *info)
{
    MP_SERVICES *mp = NULL;
    UINTN total = 1, enabled = 1, bsp = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &mp_guid, NULL, (void **)&mp)) ||
        EFI_ERROR(mp->GetNumberOfProcessors(mp, &total, &enabled)) || EFI_ERROR(mp->WhoAmI(mp, &bsp)) ||
        enabled < 2)
        return FALSE;
    *ap = bsp == 0 ? 1 : 0;
    SetMem(info, sizeof(*info), 0);
    if (EFI_ERROR(mp->GetProcessorInfo(mp, *ap, info)))
        return FALSE;
    *mp_out = mp;
    return TRUE;
}
