/* Starting the next stage with LoadImage/StartImage from hv's own device. */
#include "boot.h"

EFI_STATUS next_start(EFI_HANDLE self, EFI_HANDLE device, const struct hv_config *cfg)
{
    static CHAR16 path[HV_PATH_MAX], args[HV_ARGS_MAX];
    ascii_to_ucs2(path, HV_PATH_MAX, cfg->next);
    EFI_DEVICE_PATH *dp = FileDevicePath(device, path);
    if (!dp) {
        blog(BLOG_ERROR, "next stage %s: cannot build its device path", cfg->next);
        return EFI_OUT_OF_RESOURCES;
    }
    EFI_HANDLE img;
    EFI_STATUS s = uefi_call_wrapper(BS->LoadImage, 6, FALSE, self, dp, NULL, 0, &img);
    if (EFI_ERROR(s)) {
        blog(BLOG_ERROR, "next stage %s: LoadImage failed: %s (0x%llx)", cfg->next,
             s == EFI_NOT_FOUND ? "file not found" : s == EFI_LOAD_ERROR ? "not an EFI image" : "error", (uint64_t)s);
        return s;
    }
    if (cfg->args[0]) {
        EFI_LOADED_IMAGE *li;
        if (!EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, img, &LoadedImageProtocol, (void **)&li))) {
            ascii_to_ucs2(args, HV_ARGS_MAX, cfg->args);
            li->LoadOptions = args;
            li->LoadOptionsSize = (UINT32)(StrLen(args) + 1) * sizeof(CHAR16);
        }
    }
    blog(BLOG_INFO, "starting next stage %s%s%s", cfg->next, cfg->args[0] ? " with args: " : "", cfg->args);
    s = uefi_call_wrapper(BS->StartImage, 3, img, NULL, NULL);
    blog(s ? BLOG_WARN : BLOG_INFO, "next stage %s returned 0x%llx", cfg->next, (uint64_t)s);
    return s;
}
