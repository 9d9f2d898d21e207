/*
 * Starting the next stage: each next= candidate of hv.cfg in turn, on hv's own device or on
 * another volume found by file-system label or GPT partition GUID. When none starts, hv's
 * image returns an error and the firmware's boot manager boots its next boot option
 * (UEFI spec 3.1.1: a boot option that returns is followed by the next one in BootOrder).
 */
#include "boot.h"
#include "config.h"

static char upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 32) : c; }

/* FAT labels are upper case, padded with blanks (volume_label drops those): compare case-insensitively. */
static int label_eq(const char *l, const char *want)
{
    UINTN i = 0;
    for (; l[i] && want[i]; i++)
        if (upper(l[i]) != upper(want[i]))
            return 0;
    return !l[i] && !want[i];
}

static void volume_label(EFI_HANDLE h, char *out, UINTN cap)
{
    EFI_SIMPLE_FILE_SYSTEM_PROTOCOL *fs;
    EFI_FILE_HANDLE root;
    out[0] = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, h, &FileSystemProtocol, (void **)&fs)) ||
        EFI_ERROR(uefi_call_wrapper(fs->OpenVolume, 2, fs, &root)))
        return;
    /* EFI_FILE_SYSTEM_VOLUME_LABEL first; some drivers only fill EFI_FILE_SYSTEM_INFO's. */
    EFI_FILE_SYSTEM_VOLUME_LABEL *vl = LibFileSystemVolumeLabelInfo(root);
    if (vl) {
        ucs2_to_ascii(out, cap, vl->VolumeLabel);
        FreePool(vl);
    }
    if (!out[0]) {
        EFI_FILE_SYSTEM_INFO *fi = LibFileSystemInfo(root);
        if (fi) {
            ucs2_to_ascii(out, cap, fi->VolumeLabel);
            FreePool(fi);
        }
    }
    uefi_call_wrapper(root->Close, 1, root);
    UINTN n = 0;
    while (out[n])
        n++;
    while (n && out[n - 1] == ' ')
        out[--n] = 0;
}

/* The GPT partition this volume is on: its device path's hard-drive node with a GUID signature. */
static const uint8_t *volume_guid(EFI_HANDLE h)
{
    EFI_DEVICE_PATH *dp = DevicePathFromHandle(h);
    for (; dp && !IsDevicePathEnd(dp); dp = NextDevicePathNode(dp))
        if (DevicePathType(dp) == MEDIA_DEVICE_PATH && DevicePathSubType(dp) == MEDIA_HARDDRIVE_DP &&
            ((HARDDRIVE_DEVICE_PATH *)dp)->SignatureType == SIGNATURE_TYPE_GUID)
            return ((HARDDRIVE_DEVICE_PATH *)dp)->Signature;
    return NULL;
}

static void guid_text(char *out, const uint8_t *g)
{
    static const unsigned char order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    UINTN n = 0;
    for (unsigned i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = "0123456789abcdef"[g[order[i]] >> 4];
        out[n++] = "0123456789abcdef"[g[order[i]] & 15];
    }
    out[n] = 0;
}

/* The volume a label:/guid: candidate names; NULL if none. With list, logs every volume seen. */
static EFI_HANDLE find_volume(const struct next_spec *ns, int list)
{
    EFI_HANDLE *hs = NULL, found = NULL;
    UINTN n = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateHandleBuffer, 5, ByProtocol, &FileSystemProtocol, NULL, &n, &hs)))
        return NULL;
    for (UINTN i = 0; i < n; i++) {
        char label[64], gt[40] = "none (not a GPT partition)";
        const uint8_t *g = volume_guid(hs[i]);
        volume_label(hs[i], label, sizeof(label));
        if (g)
            guid_text(gt, g);
        if (list) {
            CHAR16 *dpt = DevicePathToStr(DevicePathFromHandle(hs[i]));
            blog(BLOG_INFO, "next: volume %u: label \"%s\", partition GUID %s, %S", (unsigned)i, label, gt,
                 dpt ? dpt : L"(no device path)");
            if (dpt)
                FreePool(dpt);
        }
        if (!found && ((ns->kind == NEXT_LABEL && label_eq(label, ns->key)) ||
                       (ns->kind == NEXT_GUID && g && CompareMem(g, ns->guid, 16) == 0)))
            found = hs[i];
    }
    FreePool(hs);
    return found;
}


static EFI_STATUS try_candidate(EFI_HANDLE self, EFI_HANDLE hv_device, const CHAR16 *dir, const char *spec,
                                const char *args, unsigned no, unsigned total)
{
    static CHAR16 path[HV_PATH_MAX], uargs[HV_ARGS_MAX];
    struct next_spec ns;
    EFI_HANDLE dev = hv_device;
    if (!next_spec_parse(spec, &ns))
        return EFI_INVALID_PARAMETER; /* the parser already refused it */
    blog(BLOG_INFO, "next: candidate %u of %u: %s", no, total, spec);
    if (ns.kind != NEXT_PATH) {
        dev = find_volume(&ns, 0);
        if (!dev) {
            blog(BLOG_WARN, "next: no volume with %s %s; the volumes hv sees:", ns.kind == NEXT_LABEL ? "label" : "partition GUID",
                 ns.key);
            find_volume(&ns, 1);
            return EFI_NOT_FOUND;
        }
        CHAR16 *dpt = DevicePathToStr(DevicePathFromHandle(dev));
        blog(BLOG_INFO, "next: %s %s is %S", ns.kind == NEXT_LABEL ? "label" : "partition GUID", ns.key,
             dpt ? dpt : L"(no device path)");
        if (dpt)
            FreePool(dpt);
    }
    path_join(path, HV_PATH_MAX, dir, ns.path); /* relative: to hv's directory (on hv's device only) */
    EFI_DEVICE_PATH *dp = FileDevicePath(dev, path);
    if (!dp) {
        blog(BLOG_ERROR, "next stage %s: cannot build its device path", spec);
        return EFI_OUT_OF_RESOURCES;
    }
    EFI_HANDLE img;
    EFI_STATUS s = uefi_call_wrapper(BS->LoadImage, 6, FALSE, self, dp, NULL, 0, &img);
    FreePool(dp);
    if (EFI_ERROR(s)) {
        blog(BLOG_WARN, "next stage %s: LoadImage of %S failed: %s (0x%llx)", spec, path,
             s == EFI_NOT_FOUND ? "file not found" : s == EFI_LOAD_ERROR ? "not an EFI image" :
             s == EFI_SECURITY_VIOLATION || s == EFI_ACCESS_DENIED ? "refused by Secure Boot" : "error", (uint64_t)s);
        return s;
    }
    if (args[0]) {
        EFI_LOADED_IMAGE *li;
        if (!EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, img, &LoadedImageProtocol, (void **)&li))) {
            ascii_to_ucs2(uargs, HV_ARGS_MAX, args);
            li->LoadOptions = uargs;
            li->LoadOptionsSize = (UINT32)(StrLen(uargs) + 1) * sizeof(CHAR16);
        }
    }
    blog(BLOG_INFO, "starting next stage %s%s%s", spec, args[0] ? " with args: " : "", args);
    s = uefi_call_wrapper(BS->StartImage, 3, img, NULL, NULL);
    blog(s ? BLOG_WARN : BLOG_INFO, "next stage %s returned 0x%llx", spec, (uint64_t)s);
    return s;
}

EFI_STATUS next_start(EFI_HANDLE self, EFI_HANDLE device, const CHAR16 *dir, const struct hv_config *cfg)
{
    unsigned total = 0;
    while (total < HV_NEXT_MAX && cfg->next[total][0])
        total++;
    EFI_STATUS s = EFI_NOT_FOUND;
    for (unsigned i = 0; i < total; i++) {
        s = try_candidate(self, device, dir, cfg->next[i], cfg->args, i + 1, total);
        if (s == EFI_SUCCESS)
            return s; /* it ran and returned success: back to the boot manager, as it would be without hv */
    }
    if (total)
        blog(BLOG_WARN, "next: none of the %u next= candidate(s) started: returning to the firmware, which boots "
                        "its next boot option", total);
    else
        blog(BLOG_INFO, "no next= in hv.cfg: returning to the firmware to boot its next boot option");
    return EFI_NOT_FOUND;
}
