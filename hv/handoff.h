/*
 * The one interface between boot/ (the UEFI application) and the core.
 *
 * boot/ copies the core image into EfiReservedMemoryType pages, applies its
 * relocations, builds the host page tables, fills a struct hv_handoff (which
 * lives in that same reserved memory, so it outlives ExitBootServices) and calls
 * the entry points named in the image header. The core never calls UEFI.
 * Both sides are compiled from this header; HV_HANDOFF_VERSION changes whenever
 * the layout does, and the core refuses a handoff of another version.
 */
#ifndef HV_HANDOFF_H
#define HV_HANDOFF_H
#include <stdint.h>
#include "../lib/mem_range.h" /* struct hv_mem_range, enum hv_mem_type */

#define HV_IMAGE_MAGIC 0x45524f4356480a7full /* "\x7f\nHVCORE" */
#define HV_HANDOFF_MAGIC 0x46464f444e414856ull /* "HVANDOFF" */
#define HV_HANDOFF_VERSION 6

#define HV_MAX_CPUS 64
#define HV_MAX_MEM 256
#define HV_PATH_MAX 256
#define HV_ARGS_MAX 512
#define HV_NEXT_MAX 4 /* next= candidates, tried in order */
#define HV_LOG_PREFIX_MAX 16 /* log_prefix=: up to 15 characters */
#define HV_L1_HIDE_MAX 256  /* l1_vmx_hide=: the list as written, < 256 characters */

/* At offset 0 of the core image. All offsets are from the image's load address. */
struct hv_image_header {
    uint64_t magic;
    uint32_t version;      /* HV_HANDOFF_VERSION the core was built for */
    uint32_t header_size;
    uint64_t file_size;    /* bytes to copy */
    uint64_t mem_size;     /* bytes the image occupies once .bss is added (zeroed by boot) */
    uint64_t rela_start;   /* Elf64_Rela[] of R_X86_64_RELATIVE relocations */
    uint64_t rela_end;
    uint64_t entry;        /* int hv_main(struct hv_handoff *, uint64_t cpu = 0, const struct hv_resume *) on the boot CPU */
    uint64_t cpu_entry;    /* int hv_cpu_main(struct hv_handoff *, uint32_t cpu, const struct hv_resume *) on each AP */
    uint64_t dma_entry;    /* int hv_dma_entry(struct hv_handoff *, uint64_t op, const void *): HV_DMA_OP_* */
};

/*
 * Where the caller continues as hv's guest. boot/'s trampoline (boot/trampoline.asm)
 * fills it: when the core has put this CPU under VMX, the guest resumes at rip with
 * rsp and rflags and RAX = 0, exactly as if the call into the core had returned 0.
 */
struct hv_resume {
    uint64_t rip, rsp, rflags;
};
/* Entry point results: 0 = this CPU now runs as hv's guest. */
#define HV_NOT_VIRTUALIZED 1      /* no (usable) VMX, vmx=off, or a failure that was logged */
#define HV_BAD_HANDOFF (-100)     /* boot/ and core from different builds */
/* Not virtualized, but DMA remapping is on and its tables are in hv's region: boot/ keeps
 * the region, polls faults while boot services run and turns remapping off at
 * ExitBootServices, both through dma_entry (docs/architecture.md, "Device isolation"). */
#define HV_DMA_ONLY 2
#define HV_DMA_OP_POLL 1
#define HV_DMA_OP_STOP 2

/* Table pages EPT01 takes to map the whole physical-address width with 1 GiB leaves (one
 * PDPT per 512 GiB; a 4-level walk stops at 2^48): boot/ adds them to the core's heap and
 * the core's EPT01 stays within them (hv/virt.c). */
static inline uint64_t hv_ept01_width_pages(unsigned phys_bits)
{
    unsigned b = phys_bits > 48 ? 48 : phys_bits;
    return b > 39 ? 1ull << (b - 39) : 1;
}

struct hv_cpu {
    uint32_t apic_id;
    uint32_t flags; /* HV_CPU_BSP */
};
#define HV_CPU_BSP 1u

#define HV_ON_FATAL_HALT 0  /* stop every CPU, so the log can be read */
#define HV_ON_FATAL_RESET 1 /* reset the platform */

#define HV_GUEST_LOG_ANY 0    /* the log-ring hypercall works at any CPL (a root tool in Linux) */
#define HV_GUEST_LOG_KERNEL 1 /* CPL 0 only */
#define HV_GUEST_LOG_OFF 2    /* never */

/* Parsed hv.cfg (see docs/config.md). */
struct hv_config {
    /* next stage candidates, tried in order: "\\path" (hv's device), "label:L:\\path" or
     * "guid:G:\\path" (another volume); "" ends the list; none = return to firmware */
    char next[HV_NEXT_MAX][HV_PATH_MAX];
    char args[HV_ARGS_MAX];   /* its load options */
    uint16_t serial_port;     /* 0 = no serial log */
    uint8_t log_level;        /* enum log_level */
    uint8_t nested;           /* emulate VMX for the guest */
    uint8_t vmx;              /* 0: never enter VMX operation (debugging aid) */
    uint8_t shadow;           /* VMCS shadowing for L1's VMREAD/VMWRITE when the CPU has it */
    uint8_t on_fatal;         /* HV_ON_FATAL_*: what hv does after reporting a fatal error */
    uint8_t test_hooks;       /* test-only hypercalls (docs/hypercalls.md); never in production */
    uint8_t guest_log;        /* HV_GUEST_LOG_*: who may read hv's log ring (HV_HC_LOG_READ) */
    uint8_t dma_protect;      /* DMA remapping (VT-d) keeps devices out of hv's region */
    char log_prefix[HV_LOG_PREFIX_MAX]; /* every log line starts "<prefix>: "; "" = "hv" */
    char l1_vmx_hide[HV_L1_HIDE_MAX];   /* VMX features not offered to L1 (nested/caps_hide.c parses it) */
};

struct hv_handoff {
    uint64_t magic;
    uint32_t version;
    uint32_t size;            /* sizeof(struct hv_handoff) */
    uint64_t hv_base;         /* hv's reserved region: image, handoff, page tables, heap */
    uint64_t hv_size;
    uint64_t image_base;
    uint64_t image_size;      /* mem_size rounded to pages */
    uint64_t heap_base;       /* free part of the region, for the core's allocator */
    uint64_t heap_size;
    uint64_t host_cr3;        /* identity map of all physical memory, built by boot/ */
    uint64_t host_map_limit;  /* first address the host page tables do not map */
    uint64_t rsdp;            /* ACPI 2.0+ RSDP, 0 if none */
    uint32_t ncpus;
    uint32_t nmem;
    struct hv_cpu cpus[HV_MAX_CPUS];
    struct hv_mem_range mem[HV_MAX_MEM];
    struct hv_config cfg;
    char boot_path[HV_PATH_MAX]; /* where hv.efi was loaded from, for the log */
};
#endif
