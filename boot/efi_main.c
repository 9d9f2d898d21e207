/*
 * hv.efi: read hv.cfg, load the core into reserved memory, run it on every CPU,
 * then start the next stage (or return to the firmware's boot manager).
 * Whatever fails, the machine still boots: every refusal is one log line.
 */
#include "boot.h"
#include "config.h"
#include "../hv/version.h"

static struct hv_config cfg;

static void cfg_diag(void *ctx, unsigned line, const char *msg, const char *text, size_t len)
{
    char t[80];
    size_t n = len < sizeof(t) - 1 ? len : sizeof(t) - 1;
    for (size_t i = 0; i < n; i++)
        t[i] = text[i] == '\r' ? ' ' : text[i];
    t[n] = 0;
    blog(BLOG_WARN, "%S line %u: %s: \"%s\" (ignored)", (CHAR16 *)ctx, line, msg, t);
}

static void read_config(EFI_HANDLE device, const CHAR16 *dir)
{
    static CHAR16 path[HV_PATH_MAX];
    void *text;
    UINTN size;
    path_join(path, HV_PATH_MAX, dir, "hv.cfg");
    EFI_STATUS s = fs_read(device, path, &text, &size, 64 * 1024);
    if (s == EFI_NOT_FOUND) {
        blog(BLOG_INFO, "no %S: using defaults", path);
        return;
    }
    if (EFI_ERROR(s)) {
        blog(BLOG_WARN, "cannot read %S (%s0x%llx): using defaults", path,
             s == EFI_BAD_BUFFER_SIZE ? "larger than 64 KiB, " : "", (uint64_t)s);
        return;
    }
    unsigned bad = config_parse(&cfg, text, size, cfg_diag, path);
    blog(BLOG_INFO, "config %S: %u bytes%s", path, (unsigned)size, bad ? ", with problems (see above)" : "");
    uefi_call_wrapper(BS->FreePool, 1, text);
}

EFI_STATUS efi_main(EFI_HANDLE self, EFI_SYSTEM_TABLE *systab)
{
    static CHAR16 dir[HV_PATH_MAX];
    InitializeLib(self, systab);
    config_defaults(&cfg);
    /* hv.cfg first, its lines held: the version line is the first, with log_prefix= already. */
    blog_hold();
    EFI_LOADED_IMAGE *li;
    EFI_STATUS s = uefi_call_wrapper(BS->HandleProtocol, 3, self, &LoadedImageProtocol, (void **)&li);
    if (!EFI_ERROR(s)) {
        path_dir_of(li->FilePath, dir, HV_PATH_MAX);
        read_config(li->DeviceHandle, dir);
    }
    blog_init(cfg.serial_port, BLOG_INFO); /* the version line whatever log= says */
    blog_set_prefix(cfg.log_prefix);
    blog(BLOG_INFO | BLOG_NOW, "hv %s starting (UEFI %u.%u, firmware %S rev 0x%x)", HV_VERSION, ST->Hdr.Revision >> 16,
         ST->Hdr.Revision & 0xffff, ST->FirmwareVendor, ST->FirmwareRevision);
    blog_set_level(cfg.log_level);
    blog_release();
    if (EFI_ERROR(s)) {
        blog(BLOG_ERROR, "no EFI_LOADED_IMAGE_PROTOCOL on hv's image (0x%llx): cannot find hv.cfg", (uint64_t)s);
        return s;
    }
    blog(BLOG_INFO, "loaded from %S; next stage: %s%s; nested VMX %s", dir, cfg.next[0][0] ? cfg.next[0] : "(none)",
         cfg.next[1][0] ? " (and fallbacks)" : "", cfg.nested ? "on" : "off");

    struct core core;
    s = core_load(&core, &cfg);
    if (!EFI_ERROR(s)) {
        ucs2_to_ascii(core.handoff->boot_path, HV_PATH_MAX, dir);
        mp_cpus(core.handoff);
        int rc = boot_call_core(core.main, core.handoff, 0);
        if (rc == HV_BAD_HANDOFF)
            blog(BLOG_ERROR, "core rejected the handoff: hv.efi and its core come from different builds");
        if (rc == 0)
            mp_run_aps(&core);
        else if (rc == HV_DMA_ONLY)
            dma_keep(&core);
        else
            core_unload(&core); /* not virtualized: give the memory back, leave nothing behind */
    } else {
        blog(BLOG_ERROR, "core not loaded (0x%llx): continuing without hv", (uint64_t)s);
    }

    return next_start(self, li->DeviceHandle, dir, &cfg);
}
