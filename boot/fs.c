#include "boot.h"

EFI_STATUS fs_read(EFI_HANDLE device, const CHAR16 *path, void **data, UINTN *size, UINTN max)
{
    EFI_SIMPLE_FILE_SYSTEM_PROTOCOL *fs;
    EFI_FILE_HANDLE root, f;
    EFI_STATUS s = uefi_call_wrapper(BS->HandleProtocol, 3, device, &FileSystemProtocol, (void **)&fs);
    if (EFI_ERROR(s))
        return s;
    if (EFI_ERROR((s = uefi_call_wrapper(fs->OpenVolume, 2, fs, &root))))
        return s;
    s = uefi_call_wrapper(root->Open, 5, root, &f, (CHAR16 *)path, EFI_FILE_MODE_READ, 0);
    uefi_call_wrapper(root->Close, 1, root);
    if (EFI_ERROR(s))
        return s;
    void *buf;
    if (EFI_ERROR((s = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, max + 1, &buf)))) {
        uefi_call_wrapper(f->Close, 1, f);
        return s;
    }
    UINTN n = max + 1; /* one more than allowed: tells "too large" from "exactly max" */
    s = uefi_call_wrapper(f->Read, 3, f, &n, buf);
    uefi_call_wrapper(f->Close, 1, f);
    if (!EFI_ERROR(s) && n > max)
        s = EFI_BAD_BUFFER_SIZE;
    if (EFI_ERROR(s)) {
        uefi_call_wrapper(BS->FreePool, 1, buf);
        return s;
    }
    *data = buf;
    *size = n;
    return EFI_SUCCESS;
}

void ascii_to_ucs2(CHAR16 *out, UINTN cap, const char *s)
{
    UINTN i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (unsigned char)s[i];
    out[i] = 0;
}

void ucs2_to_ascii(char *out, UINTN cap, const CHAR16 *s)
{
    UINTN i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = s[i] < 0x80 ? (char)s[i] : '?';
    out[i] = 0;
}

/* The loaded image's FilePath is one or more file-path nodes ("\EFI", "BOOT\BOOTX64.EFI", ...). */
void path_dir_of(const EFI_DEVICE_PATH *dp, CHAR16 *dir, UINTN cap)
{
    UINTN n = 0;
    dir[0] = 0;
    for (; dp && !IsDevicePathEnd(dp); dp = NextDevicePathNode(dp)) {
        if (DevicePathType(dp) != MEDIA_DEVICE_PATH || DevicePathSubType(dp) != MEDIA_FILEPATH_DP)
            continue;
        const CHAR16 *p = ((const FILEPATH_DEVICE_PATH *)dp)->PathName;
        if (n && dir[n - 1] != L'\\' && *p != L'\\' && n + 1 < cap)
            dir[n++] = L'\\';
        for (; *p && n + 1 < cap; p++)
            dir[n++] = *p == L'/' ? L'\\' : *p;
    }
    while (n && dir[n - 1] != L'\\') /* drop the file name */
        n--;
    while (n > 1 && dir[n - 1] == L'\\')
        n--;
    if (!n)
        dir[n++] = L'\\';
    dir[n] = 0;
}

void path_join(CHAR16 *out, UINTN cap, const CHAR16 *dir, const char *name)
{
    UINTN n = 0;
    if (*name != '\\') { /* relative to hv's directory */
        for (; dir[n] && n + 1 < cap; n++)
            out[n] = dir[n];
        if (n && out[n - 1] != L'\\' && n + 1 < cap)
            out[n++] = L'\\';
    }
    for (; *name && n + 1 < cap; name++)
        out[n++] = (unsigned char)*name;
    out[n] = 0;
}
