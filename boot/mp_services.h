/* EFI_MP_SERVICES_PROTOCOL (UEFI PI spec Vol. 2, 13.4): GNU-EFI has no header for it.
 * Shared by boot/ and the test apps. */
#ifndef BOOT_MP_SERVICES_H
#define BOOT_MP_SERVICES_H
#include <efi.h>

#define MP_SERVICES_GUID {0x3fdda605, 0xa76e, 0x4f46, {0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08}}
#define MP_STATUS_BSP 1u
#define MP_STATUS_ENABLED 2u

typedef struct {
    UINT64 ProcessorId; /* APIC ID */
    UINT32 StatusFlag;  /* bit 0 BSP, bit 1 enabled, bit 2 healthy */
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
#endif
