/*
 * The core's entry points, called by boot/ through struct hv_handoff.
 * Runs on hv's own page tables with interrupts off and returns to boot/.
 */
#include <stdbool.h>
#include <string.h>
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/serial.h"
#include "../lib/x86.h"
#include "../vmx/probe.h"
#include "cpu.h"
#include "dma.h"
#include "handoff.h"
#include "vcpu.h"
#include "version.h"

int hv_global_init(void);
int vcpu_start(uint32_t cpu, const struct hv_resume *r, uint64_t fw_cr3);

/* Canary: lives only in hv's memory; no guest may ever read it (docs/architecture.md). */
__attribute__((aligned(16), used)) const char hv_canary[32] = "HV-CANARY-7f3c9e2a";

static struct hv_handoff *ho;
static bool vmx_ok;
#define caps hv.caps

struct host_ctx {
    uint64_t cr3, rflags;
};

/* Enter hv's own address space: the firmware's page tables are not hv's. */
static void host_enter(struct host_ctx *c)
{
    c->rflags = read_rflags();
    cli();
    c->cr3 = read_cr3();
    write_cr3(ho->host_cr3);
}

static void host_leave(const struct host_ctx *c)
{
    write_cr3(c->cr3);
    if (c->rflags & (1u << 9))
        __asm__ volatile("sti");
}

static const char *mem_type_name(uint32_t t)
{
    static const char *const n[] = {"?", "ram", "reserved", "acpi", "mmio", "hv"};
    return t < 6 ? n[t] : "?";
}

static void log_platform(void)
{
    struct cpu_ident id;
    cpu_identify(&id);
    log_info("cpu: %s family 0x%x model 0x%x stepping %u, %u-bit physical addresses, %u CPU(s)",
             id.vendor, id.family, id.model, id.stepping, id.phys_bits, ho->ncpus);
    if (id.brand[0])
        log_info("cpu: %s", id.brand);
    uint64_t ram = 0;
    for (uint32_t i = 0; i < ho->nmem; i++) {
        if (ho->mem[i].type == HV_MEM_RAM)
            ram += ho->mem[i].size;
        log_debug("mem: %016llx-%016llx %s", (unsigned long long)ho->mem[i].base,
                  (unsigned long long)(ho->mem[i].base + ho->mem[i].size - 1), mem_type_name(ho->mem[i].type));
    }
    log_info("memory: %llu MiB usable RAM; hv reserved %llu KiB at 0x%llx (image %llu KiB, heap %llu KiB)",
             (unsigned long long)(ram >> 20), (unsigned long long)(ho->hv_size >> 10), (unsigned long long)ho->hv_base,
             (unsigned long long)(ho->image_size >> 10), (unsigned long long)(ho->heap_size >> 10));
    log_info("acpi: RSDP %s0x%llx", ho->rsdp ? "" : "absent ", (unsigned long long)ho->rsdp);
}

static void probe_vmx(void)
{
    char why[160];
    vmx_read_msrs(&hv.msrs);
    vmx_ok = vmx_caps_decode(&hv.msrs, &caps, why, sizeof(why));
    if (!vmx_ok) {
        log_warn("VMX unavailable: %s", why);
        log_warn("continuing without virtualization: the next stage runs on bare hardware");
        return;
    }
    log_info("vmx: VMCS revision 0x%x, %u bytes, %s controls%s", caps.revision, caps.vmcs_size,
             caps.true_ctls ? "true" : "default", caps.feature_control_unlocked ? ", IA32_FEATURE_CONTROL unlocked" : "");
    log_info("vmx: EPT (4-level%s%s%s), VPID %s, unrestricted guest, INVEPT%s%s, preemption timer %s, VMCS shadowing %s",
             caps.ept_2m ? ", 2M" : "", caps.ept_1g ? ", 1G" : "", caps.ept_ad ? ", A/D" : "", caps.vpid ? "yes" : "no",
             caps.invept_single ? " single" : "", caps.invept_all ? " all" : "", caps.preemption_timer ? "yes" : "no",
             caps.vmcs_shadowing ? "yes" : "no");
}

int hv_main(struct hv_handoff *h, uint64_t unused, const struct hv_resume *r)
{
    (void)unused;
    if (h->magic != HV_HANDOFF_MAGIC || h->version != HV_HANDOFF_VERSION || h->size != sizeof(*h))
        return HV_BAD_HANDOFF; /* boot/ says so */
    ho = hv.ho = h;
    serial_init(h->cfg.serial_port);
    log_set_sink(serial_write);
    log_set_prefix(h->cfg.log_prefix);
    log_set_level((enum log_level)h->cfg.log_level);
    pages_init(h->heap_base, h->heap_size);

    struct host_ctx ctx;
    host_enter(&ctx);
    log_info("core %s running on its own page tables (CR3 0x%llx)", HV_VERSION, (unsigned long long)h->host_cr3);
    log_platform();
    probe_vmx();
    dma_init(h); /* before the next stage runs: no device it drives may reach hv */
    int rc = HV_NOT_VIRTUALIZED;
    if (vmx_ok && !h->cfg.vmx) {
        log_warn("vmx=off in hv.cfg: not entering VMX operation");
        vmx_ok = false;
    } else if (vmx_ok && hv_global_init()) {
        log_err("cannot set up virtualization: continuing without it");
        vmx_ok = false;
    } else if (vmx_ok) {
        dma_hide_table(true); /* EPT01 keeps the guest off the units' registers */
        vcpu_start(0, r, ctx.cr3); /* returns only if this CPU could not be virtualized */
        dma_hide_table(false);
        vmx_ok = false;
    }
    if (dma_active()) {
        log_warn("dma: hv does not virtualize this machine: DMA remapping stays on while boot services run (faults "
                 "polled every 10 ms), off at ExitBootServices; nothing stops the OS from reprogramming the units");
        rc = HV_DMA_ONLY;
    }
    host_leave(&ctx);
    return rc;
}

/* boot/'s timer and ExitBootServices events when hv runs without VMX (HV_DMA_ONLY): on the
 * firmware's stack, at its TPL; hv's own page tables for the registers, interrupts off. */
int hv_dma_entry(struct hv_handoff *h, uint64_t op, const void *unused)
{
    (void)unused;
    if (h != ho)
        return -1;
    struct host_ctx ctx;
    host_enter(&ctx);
    if (op == HV_DMA_OP_POLL)
        dma_poll();
    else if (op == HV_DMA_OP_STOP)
        dma_stop();
    host_leave(&ctx);
    return 0;
}

int hv_cpu_main(struct hv_handoff *h, uint64_t cpu, const struct hv_resume *r)
{
    if (h != ho || !hv.vcpus[0] || cpu >= HV_MAX_CPUS)
        return HV_NOT_VIRTUALIZED; /* the boot CPU is not virtualized: neither are the APs */
    struct host_ctx ctx;
    host_enter(&ctx);
    vcpu_start((uint32_t)cpu, r, ctx.cr3);
    host_leave(&ctx);
    return HV_NOT_VIRTUALIZED;
}
