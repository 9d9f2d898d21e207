/*
 * test-linux's ACPI fixture: hv's next stage. Installs the Bochs platform's ACPI tables
 * (acpi_tables.c), then starts the kernel named by its first argument with the rest
 * of its arguments as the kernel's command line:
 *   \EFI\linux\vmlinuz console=ttyS0 initrd=\EFI\linux\initrd.img
 * Started without arguments (by the boot manager, to test without hv) it reads that
 * line from \EFI\hv\linux.cmdline on its own device.
 */
#include "fixture.h"
#include "../../boot/log.h"
#include "../../boot/mp_services.h"
#include "../../lib/serial.h"
#include "../../hv/hypercall.h"

#define CMDLINE_FILE L"\\EFI\\hv\\linux.cmdline"
#define CMDLINE_MAX 1024


void say(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    bline("acpi-fixture: ", fmt, ap); /* boot/log.c's formatter */
    __builtin_va_end(ap);
}

static void cpuid_(UINT32 leaf, UINT32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

/* APIC IDs of all CPUs, BSP first is not required: MADT order is the firmware's. */
static UINTN list_cpus(UINT32 *ids)
{
    EFI_GUID g = MP_SERVICES_GUID;
    MP_SERVICES *mp;
    UINTN total = 0, enabled = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &g, NULL, (void **)&mp)) ||
        EFI_ERROR(uefi_call_wrapper(mp->GetNumberOfProcessors, 3, mp, &total, &enabled)) || !total) {
        UINT32 r[4];
        cpuid_(1, r);
        ids[0] = r[1] >> 24;
        say("no MP services: one CPU, APIC ID %u", ids[0]);
        return 1;
    }
    if (total > HV_FIX_MAX_CPUS)
        total = HV_FIX_MAX_CPUS;
    UINTN n = 0;
    for (UINTN i = 0; i < total; i++) {
        MP_PROCESSOR_INFO info;
        if (EFI_ERROR(uefi_call_wrapper(mp->GetProcessorInfo, 3, mp, i, &info)) || !(info.StatusFlag & 2))
            continue;
        ids[n++] = (UINT32)info.ProcessorId;
        say("cpu%llu: APIC ID %llu%s", (unsigned long long)i, (unsigned long long)info.ProcessorId, info.StatusFlag & 1 ? " (BSP)" : "");
    }
    return n;
}

/* The command line from \EFI\hv\linux.cmdline (ASCII), for runs without hv. */
static UINTN read_cmdline_file(EFI_HANDLE device, CHAR16 *out, UINTN max)
{
    EFI_FILE_HANDLE root = LibOpenRoot(device), f;
    if (!root || EFI_ERROR(uefi_call_wrapper(root->Open, 5, root, &f, CMDLINE_FILE, EFI_FILE_MODE_READ, 0)))
        return 0;
    static char buf[CMDLINE_MAX];
    UINTN n = sizeof(buf) - 1;
    if (EFI_ERROR(uefi_call_wrapper(f->Read, 3, f, &n, buf)))
        n = 0;
    uefi_call_wrapper(f->Close, 1, f);
    UINTN i = 0;
    for (; i < n && i < max - 1 && buf[i] != '\n' && buf[i] != '\r'; i++)
        out[i] = (CHAR16)(UINT8)buf[i];
    out[i] = 0;
    return i;
}

static int is_space(CHAR16 c) { return c == ' ' || c == '\t'; }

static void to_ascii(char *d, UINTN max, const CHAR16 *s)
{
    UINTN i = 0;
    for (; i < max - 1 && s[i]; i++)
        d[i] = s[i] < 0x80 ? (char)s[i] : '?';
    d[i] = 0;
}

EFI_STATUS efi_main(EFI_HANDLE self, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(self, systab);
    serial_init(0x3f8);
    say("started");
    EFI_LOADED_IMAGE *li;
    EFI_STATUS s = uefi_call_wrapper(BS->HandleProtocol, 3, self, &LoadedImageProtocol, (void **)&li);
    if (EFI_ERROR(s)) {
        say("ERROR: no EFI_LOADED_IMAGE: 0x%llx", (unsigned long long)s);
        return s;
    }

    /* Our command line: LoadOptions if they start with a path, else the file. */
    static CHAR16 cmd[CMDLINE_MAX];
    UINTN n = 0;
    const CHAR16 *o = li->LoadOptions;
    UINTN olen = o ? li->LoadOptionsSize / sizeof(CHAR16) : 0;
    UINTN skip = 0;
    while (skip < olen && is_space(o[skip]))
        skip++;
    if (skip < olen && (o[skip] == '\\' || o[skip] == '/' || o[skip] > ' ')) {
        for (; n < CMDLINE_MAX - 1 && skip + n < olen && o[skip + n]; n++)
            cmd[n] = o[skip + n];
        cmd[n] = 0;
    }
    /* An EFI shell passes our own name first: drop a first word ending in ".efi" that
     * is followed by a path. */
    UINTN w = 0, a;
    while (cmd[w] && !is_space(cmd[w]))
        w++;
    for (a = w; is_space(cmd[a]); a++)
        ;
    if (w > 4 && cmd[w - 4] == '.' && (cmd[w - 3] | 0x20) == 'e' && (cmd[w - 2] | 0x20) == 'f' &&
        (cmd[w - 1] | 0x20) == 'i' && (cmd[a] == '\\' || cmd[a] == '/')) {
        for (n = 0; cmd[a + n]; n++)
            cmd[n] = cmd[a + n];
        cmd[n] = 0;
    }
    if (!n || (cmd[0] != '\\' && cmd[0] != '/')) {
        n = read_cmdline_file(li->DeviceHandle, cmd, CMDLINE_MAX);
        say("no kernel path in load options: command line from %s", n ? "\\EFI\\hv\\linux.cmdline" : "nowhere");
    }
    static char ascii[CMDLINE_MAX];
    to_ascii(ascii, sizeof(ascii), cmd);
    say("command line: %s", ascii);

    /* Split: kernel path, then its command line. */
    static CHAR16 path[256];
    UINTN p = 0;
    while (cmd[p] && !is_space(cmd[p]) && p < 255) {
        path[p] = cmd[p] == '/' ? '\\' : cmd[p];
        p++;
    }
    path[p] = 0;
    const CHAR16 *kargs = cmd + p;
    while (is_space(*kargs))
        kargs++;
    if (!p) {
        say("ERROR: no kernel path given");
        return EFI_INVALID_PARAMETER;
    }

    static UINT32 ids[HV_FIX_MAX_CPUS];
    UINTN ncpus = list_cpus(ids);
    s = install_acpi_tables(ids, ncpus);
    if (EFI_ERROR(s))
        say("ERROR: ACPI tables incomplete: Linux will see one CPU and cannot power off");

    EFI_DEVICE_PATH *dp = FileDevicePath(li->DeviceHandle, path);
    EFI_HANDLE img;
    to_ascii(ascii, sizeof(ascii), path);
    s = dp ? uefi_call_wrapper(BS->LoadImage, 6, FALSE, self, dp, NULL, 0, &img) : EFI_OUT_OF_RESOURCES;
    if (EFI_ERROR(s)) {
        say("ERROR: LoadImage(%s) failed: 0x%llx", ascii, (unsigned long long)s);
        return s;
    }
    EFI_LOADED_IMAGE *kli;
    if (!EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, img, &LoadedImageProtocol, (void **)&kli))) {
        kli->LoadOptions = (VOID *)kargs;
        kli->LoadOptionsSize = (UINT32)(StrLen(kargs) + 1) * sizeof(CHAR16);
    }
    /* bench-kvm: the TSC here and hv's exit counts so far, so that Linux's boot to /init
     * can be told apart from the firmware's (Bochs: about one tick per instruction). */
    UINT32 r[4];
    cpuid_(HV_CPUID_LEAF_BASE, r);
    int under_hv = r[1] == 0x76687668 && r[2] == 0x76687668 && r[3] == 0x76687668; /* "hvhv" x3 */
    if (under_hv) {
        UINT64 rax = HV_HC_PRINT_STATS;
        __asm__ volatile("vmcall" : "+a"(rax) : : "rbx", "rcx", "rdx", "memory");
    }
    UINT32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    say("starting kernel %s at tsc %llu", ascii, (unsigned long long)hi << 32 | lo);
    s = uefi_call_wrapper(BS->StartImage, 3, img, NULL, NULL);
    say("ERROR: kernel returned 0x%llx", (unsigned long long)s);
    return s;
}
