/*
 * The test payload: hv's next stage in the boot tests. It reports on the serial
 * log what it observes ("payload: " lines) and powers the machine off. Load options
 * "bench" run the benchmark instead, "fatal" asks hv for a fatal error first (test hook).
 * cpus.c probes every CPU; memscan.c checks that hv's memory stays hidden.
 */
#include "payload.h"
#include "../../lib/serial.h"
#include "../../hv/hypercall.h"

static void cpuid_(UINT32 leaf, UINT32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

EFI_STATUS efi_main(EFI_HANDLE self, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(self, systab);
    serial_init(0x3f8);
    out("started");
    EFI_LOADED_IMAGE *li;
    BOOLEAN bench_mode = FALSE, nmi_mode = FALSE, sipi_only = FALSE, fatal_mode = FALSE;
    if (!EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, self, &LoadedImageProtocol, (void **)&li)) &&
        li->LoadOptionsSize) {
        char buf[128];
        UINTN i = 0;
        const CHAR16 *o = li->LoadOptions;
        for (; i < sizeof(buf) - 1 && i < li->LoadOptionsSize / 2 && o[i]; i++)
            buf[i] = (char)o[i];
        buf[i] = 0;
        out("args: %s", buf);
        bench_mode = buf[0] == 'b' && buf[1] == 'e' && buf[2] == 'n' && buf[3] == 'c' && buf[4] == 'h';
        nmi_mode = buf[0] == 'n' && buf[1] == 'm' && buf[2] == 'i'; /* "nmi": NMI and INIT/SIPI tests */
        sipi_only = buf[0] == 's' && buf[1] == 'i' && buf[2] == 'p' && buf[3] == 'i'; /* "sipi": INIT/SIPI only */
        fatal_mode = buf[0] == 'f' && buf[1] == 'a' && buf[2] == 't' && buf[3] == 'a' && buf[4] == 'l';
        if (buf[0] == 'd' && buf[1] == 'm' && buf[2] == 'a') { /* "dma": device DMA against hv's region */
            dma_test(self);
            out("done: powering off");
            uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
        }
    }
    UINT32 r[4];
    cpuid_(1, r);
    out("cpuid: hypervisor bit %s", r[2] & (1u << 31) ? "set" : "clear");

    if (bench_mode) {
        UINT32 s[4];
        cpuid_(HV_CPUID_LEAF_BASE, s);
        bench(s[1] == 0x76687668); /* "hvhv": hv's signature (EBX) */
        out("done: powering off");
        uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
    }
    if (nmi_mode || sipi_only) {
        UINT32 s[4];
        cpuid_(HV_CPUID_LEAF_BASE, s);
        if (nmi_mode)
            nmi_test();
        sipi_test();
        if (s[1] == 0x76687668)
            hv_vmcall(HV_HC_PRINT_STATS);
        out("done: powering off");
        uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
    }
    BOOLEAN hv = check_cpus();
    if (hv && fatal_mode) { /* "fatal": hv's fatal-error path, through its test hook */
        out("fatal: asking hv for a fatal error (test_hooks=on)");
        UINT64 r = hv_vmcall(HV_HC_TEST_FATAL);
        out("fatal: hv returned 0x%llx instead", (unsigned long long)r);
    }
    check_debug_regs(hv);
    check_single_step();
    check_memory(hv);
    if (hv)
        check_log_ring();
    if (hv) {
        hv_vmcall(HV_HC_PRINT_STATS);
        out("asked hv for exit statistics");
    }
    out("done: powering off");
    uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
    out("ERROR: ResetSystem returned");
    return EFI_SUCCESS;
}
