/* When hv itself cannot go on: the report on the serial log, then hv.cfg's on_fatal=. */
#ifndef HV_FATAL_H
#define HV_FATAL_H
#include "vcpu.h"

/* Report why, the exit, the guest's registers, the VM-instruction error, hv's rip and the
 * return addresses of the frame chain from rbp; then halt every CPU or reset the platform. */
__attribute__((noreturn)) void hv_fatal(struct vcpu *v, const char *why, uint64_t rip, uint64_t rbp);
/* The return addresses of the frame-pointer chain from rbp (saved RBP at [rbp], return
 * address at [rbp + 8]), following only frames inside [lo, hi) that grow upwards; at most max. */
unsigned fatal_backtrace(uint64_t rbp, uint64_t lo, uint64_t hi, uint64_t *ret, unsigned max);
/* First thing at every exit: another CPU hit a fatal error, this one stops. */
__attribute__((noreturn)) void fatal_stop_this_cpu(struct vcpu *v);
static inline void fatal_check_stop(struct vcpu *v)
{
    if (__atomic_load_n(&hv.fatal_cpu, __ATOMIC_ACQUIRE))
        fatal_stop_this_cpu(v);
}
#endif
