/* One virtual CPU: hv's per-CPU state in VMX root mode. */
#ifndef HV_VCPU_H
#define HV_VCPU_H
#include <stdbool.h>
#include <stdint.h>
#include "../nested/nested.h"
#include "../regcache/regcache.h"
#include "../vmx/caps.h"
#include "../vmx/ept.h"
#include "../vmx/probe.h"
#include "../vmx/vmcs_fields.h"
#include "handoff.h"

#define HOST_STACK_SIZE (16 * 1024)
#define HOST_IST_SIZE (8 * 1024)
/* Pages of hv's memory one instruction may write in one step (hv/exit_ept.c): a store
 * crossing a page, a string instruction's source and destination, an XSAVE area. */
#define HV_STEP_PAGES 4

/* A dropped write in flight (hv/exit_ept.c): this vCPU's EPT01 leaves pointed at its
 * scratch pages, writable, until the next VM exit. */
struct hidden_step {
    bool active;
    unsigned npages;
    uint64_t *leaf[HV_STEP_PAGES]; /* in this vCPU's EPT01 (ept01), slots 0..npages-1 */
    uint8_t *scratch[HV_STEP_PAGES];
    uint64_t dropped;              /* pages of hv's this vCPU wrote through EPT01, dropped */
};

struct exit_stats {
    uint64_t total;
    uint64_t by_reason[EXIT_REASON_MAX + 1];
    uint64_t entry_failures;
    uint64_t l2_exits;        /* exits while L2 ran (reflected to L1 or handled by hv) */
    uint64_t nmis;            /* NMIs hv received (NMI exits and NMIs in root mode) */
    uint64_t nmis_injected, nmis_to_l1; /* delivered: injected into the guest, NMI exits to L1 */
    uint64_t io_steps;        /* I/O instructions run natively for the guest (hv/exit_io.c) */
    uint64_t sipis_latched;   /* vCPU starts from a SIPI hv latched (not a SIPI exit) */
    uint64_t apic_writes, icr_latched; /* xAPIC stores hv performed; INIT/SIPI it latched (hv/apic.c) */
};

/* 64-bit TSS (SDM Vol. 3A 8.7) */
struct __attribute__((packed)) tss64 {
    uint32_t rsvd0;
    uint64_t rsp[3];
    uint64_t rsvd1;
    uint64_t ist[7];
    uint64_t rsvd2;
    uint16_t rsvd3, iomap_base;
};

struct vcpu {
    struct regcache rc; /* first: the exit stub saves GPRs at offset 0 */
    struct vcpu *self;
    uint32_t id;        /* index in the handoff's CPU list */
    uint32_t apic_id;
    uint64_t vmcs_pa;
    struct vmx_root root;
    uint64_t cr0_mask, cr4_mask; /* guest/host masks: the bits hv owns */
    bool launch_pending;  /* the exit stub must VMLAUNCH (a fresh vmcs02), not VMRESUME */
    bool nmi_pending;     /* an NMI hv holds for the guest (hv/exit.c) */
    bool nmi_arrived;     /* one came in root mode since hv last looked: the exit stub looks again */
    struct hv_resume resume; /* where the guest continues at launch */
    uint64_t fw_cr3;
    struct exit_stats stats;
    uint64_t gdt[5];
    struct tss64 tss;
    struct ept ept01;     /* this CPU's EPT01: own tables on the path to hv's pages (ept_clone_hidden) */
    struct hidden_step step;
    uint32_t sipi;        /* INIT/SIPI latched for this vCPU by senders (hv/apic.h APIC_SIPI_*) */
    bool init_blocked;    /* an INIT came while L1 was in VMX root operation: it waits for VMXOFF */
    bool io_step;         /* an I/O instruction runs natively with I/O exiting off (hv/exit_io.c) */
    uint32_t io_step_ctls; /* the I/O-exiting controls it took off */
    uint8_t *stack;       /* host stack for VM exits; the vcpu pointer sits at its top */
    struct nested_state nested;
    struct nested_vcpu nv;
};

/* hv's global state: set up once on the boot CPU. */
struct hv_global {
    struct hv_handoff *ho;
    struct vmx_caps caps;
    struct vmx_msrs msrs;
    struct nested_caps ncaps; /* the VMX hv offers its guest */
    uint8_t *shadow_vmread_bitmap, *shadow_vmwrite_bitmap; /* NULL: no VMCS shadowing for L1 */
    uint8_t phys_bits;
    struct ept *ept;      /* EPT01 as built: shared, never changed (each vCPU uses its clone) */
    uint8_t *msr_bitmap, *io_bitmap_a, *io_bitmap_b;
    uint8_t *zero_page;   /* what guests read in place of hv's memory */
    uint64_t apic_page;   /* the xAPIC page EPT01 keeps read-only (hv/apic.c), 0 if none */
    uint16_t pm1a_cnt;    /* ACPI PM1a control port (power-off detection), 0 if unknown */
    bool nested;
    bool hidden_write_logged;
    uint64_t hidden_writes; /* guest writes to hv's memory through EPT01, dropped (pages; atomic) */
    uint64_t text_sum;      /* checksum of hv's .text and .rodata at start (hv_text_checksum) */
    struct vcpu *vcpus[HV_MAX_CPUS];
    uint32_t nvcpus;
    uint8_t on_fatal;     /* hv.cfg on_fatal= (HV_ON_FATAL_*) */
    bool test_hooks;      /* hv.cfg test_hooks=on: test-only hypercalls */
    uint8_t guest_log;    /* hv.cfg guest_log=: HV_GUEST_LOG_*, who may call HV_HC_LOG_READ */
    uint32_t fatal_cpu;   /* 1 + the CPU that hit a fatal error; 0 while all is well */
    uint32_t cpus_stopped; /* other CPUs that stopped since (hv/fatal.c) */
    void (*dma_poll)(void); /* DMA-remapping fault polling (hv/dma.c), NULL without it */
};
extern struct hv_global hv;

static inline struct vcpu *this_vcpu(void)
{
    struct vcpu *v;
    __asm__ volatile("mov %%gs:%c1, %0" : "=r"(v) : "i"(__builtin_offsetof(struct vcpu, self)));
    return v;
}
#endif
