/* Shared by the test payload's files: output, per-CPU probes, memory checks. */
#ifndef PAYLOAD_H
#define PAYLOAD_H
#include <efi.h>
#include <efilib.h>

/* One "payload: " line on COM1. Supports %s %c %u %llu %llx only (checked by GCC). */
void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What one CPU saw; filled on that CPU (APs call nothing else), printed by the BSP. */
struct cpu_report {
    UINT32 leaf1_ecx;
    UINT32 hv_max_leaf;      /* CPUID 0x40000000 EAX */
    char sig[13];            /* EBX:ECX:EDX, NUL-terminated */
    BOOLEAN sig_ok;          /* max leaf >= 0x40000000 and printable */
    BOOLEAN is_hv;           /* signature is hv's */
    BOOLEAN fc_present;      /* CPUID.1:ECX VMX or SMX: MSR 0x3A exists */
    UINT64 feature_control;
    UINT64 hc_version;       /* VMCALL HV_HC_VERSION, only if is_hv */
    BOOLEAN done;            /* set last, so a timed-out AP is visible */
};

#include "../../boot/mp_services.h"
/* cpus.c: the first AP, if there is one: MP services, its number and information */
BOOLEAN first_ap(MP_SERVICES **mp, UINTN *ap, MP_PROCESSOR_INFO *info);
/* cpus.c: probe the BSP and every AP, print their lines; TRUE if hv answered on the BSP. */
BOOLEAN check_cpus(void);
/* hv present on this CPU: VMCALL is safe. */
UINT64 hv_vmcall(UINT64 fn);
void check_log_ring(void); /* logring.c: hv's log ring through HV_HC_LOG_READ */

/* The same, also returning RBX (HV_HC_HIDDEN_WRITES). */
UINT64 hv_vmcall_rbx(UINT64 fn, UINT64 *rbx);
/* fn(ap_arg) on one AP while fn(bsp_arg) runs on the BSP; FALSE if no AP (or it timed out). */
BOOLEAN run_on_ap_and_bsp(VOID (EFIAPI *fn)(VOID *), VOID *ap_arg, VOID *bsp_arg);

/* bench.c: CPUID path length ("bench" in the load options) */
void bench(BOOLEAN hv_present);

/* nmi.c: NMI stress, self and cross-CPU ("nmi" in the load options) */
void nmi_test(void);
/* sipi.c: INIT and SIPI sent to an AP back to back (after nmi_test, in the same mode) */
void sipi_test(void);

/* debug.c: a hardware watchpoint set before many VM exits still fires after them. */
void check_debug_regs(BOOLEAN hv_present);
void check_single_step(void);

/* memscan.c: canary scan, hv region guess, and the hv memory write test. */
void check_memory(BOOLEAN hv_present);
/* hv's region: the largest reserved WB descriptor below 4 GiB of at least 4 MiB, or NULL. */
EFI_MEMORY_DESCRIPTOR *hv_region(EFI_MEMORY_DESCRIPTOR *map, UINTN n, UINTN dsz);
/* dma.c: disk reads (device DMA) into hv's region and elsewhere ("dma" in the load options) */
void dma_test(EFI_HANDLE self);
#endif
