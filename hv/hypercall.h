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
#define HV_HC_TEST_FATAL     0x48560004u /* test_hooks=on only: hv's fatal-error path; else unknown */

#define HV_HC_ERR_UNKNOWN    (-1ll)
#endif
