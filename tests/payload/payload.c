/*
 * The test payload: hv's next stage in the boot tests. It reports on the serial
 * log what it observes ("payload: " lines) and powers the machine off.
 */
#include <efi.h>
#include <efilib.h>
#include "../../lib/serial.h"

static void say(const char *s)
{
    serial_write("payload: ", 9);
    UINTN n = 0;
    while (s[n])
        n++;
    serial_write(s, n);
    serial_write("\n", 1);
}

static void cpuid_(UINT32 leaf, UINT32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

EFI_STATUS efi_main(EFI_HANDLE self, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(self, systab);
    serial_init(0x3f8);
    say("started");
    EFI_LOADED_IMAGE *li;
    if (!EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, self, &LoadedImageProtocol, (void **)&li)) &&
        li->LoadOptionsSize) {
        char buf[128];
        UINTN i = 0;
        const CHAR16 *o = li->LoadOptions;
        for (; i < sizeof(buf) - 1 && i < li->LoadOptionsSize / 2 && o[i]; i++)
            buf[i] = (char)o[i];
        buf[i] = 0;
        serial_write("payload: args: ", 15);
        serial_write(buf, i);
        serial_write("\n", 1);
    }
    UINT32 r[4];
    cpuid_(1, r);
    say(r[2] & (1u << 31) ? "cpuid: hypervisor bit set" : "cpuid: hypervisor bit clear");
    say("done: powering off");
    uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
    say("ERROR: ResetSystem returned");
    return EFI_SUCCESS;
}
