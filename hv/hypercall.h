/*
 * hv's hypercall interface (VMCALL), documented in docs/hypercalls.md.
 * In: RAX = function, RBX/RCX/RDX = arguments. Out: RAX = result
 * (HV_HC_ERR_* are negative). From CPL > 0 VMCALL raises #UD, as on bare metal.
 */
#ifndef HV_HYPERCALL_H
#define HV_HYPERCALL_H

#define HV_CPUID_LEAF_BASE   0x40000000u /* EAX = max leaf, EBX:ECX:EDX = signature */
#define HV_CPUID_LEAF_INFO   0x40000001u /* EAX = version (major << 16 | minor << 8 | patch) */
#define HV_CPUID_SIGNATURE   "hvhvhvhvhvhv"

#define HV_HC_VERSION        0x48560001u /* RAX <- version, RBX <- "hvhv" (0x76687668) */
#define HV_HC_PRINT_STATS    0x48560002u /* print every vCPU's exit statistics; RAX <- 0 */
#define HV_HC_GET_EXITS      0x48560003u /* RAX <- this vCPU's total exit count */
#define HV_HC_HIDDEN_WRITES  0x48560004u /* RAX <- guest writes to hv's memory dropped so far,
                                            RBX <- HV_SELFCHECK_* bits (0: hv's memory intact) */

/* HV_HC_HIDDEN_WRITES's self-check: what is wrong with hv's memory, as seen from the calling CPU. */
#define HV_SELFCHECK_ZERO_PAGE (1u << 0) /* the page guests read in place of hv's is not zero */
#define HV_SELFCHECK_SCRATCH   (1u << 1) /* a scratch page of this vCPU is not zero */
#define HV_SELFCHECK_LEAF      (1u << 2) /* a hidden leaf of this vCPU's EPT01 is not R/X onto the zero page */
#define HV_SELFCHECK_SHARED    (1u << 3) /* a hidden leaf of the shared EPT01 changed */
#define HV_SELFCHECK_TEXT      (1u << 4) /* hv's .text/.rodata checksum differs from the one at start */
#define HV_HC_TEST_FATAL     0x48560005u /* test_hooks=on only: hv's fatal-error path; else unknown */

/* Reads hv's log ring (lib/log.c), 24 bytes a call; the one call allowed at any CPL (hv.cfg
 * guest_log=any, the default; guest_log=kernel: CPL 0 only; off: never, HV_HC_ERR_DENIED).
 * In: RBX = stream position (bytes since hv started). Out: RAX = bytes returned (0 = the end),
 * RBX, RCX, RDX = the bytes (little-endian, in that order), RSI = position of the first byte
 * returned (later than RBX when that part was overwritten), RDI = end of the stream. */
#define HV_HC_LOG_READ       0x48560006u

#define HV_HC_ERR_UNKNOWN    (-1ll)
#define HV_HC_ERR_DENIED     (-2ll)
#endif
