/* Exit statistics: per vCPU counts by exit reason, and VMREAD/VMWRITE counts. */
#include <stdio.h>
#include "../lib/log.h"
#include "exit.h"
#include "../nested/ept02.h"

void stats_print(struct vcpu *v)
{
    const struct exit_stats *s = &v->stats;
    log_info("stats: cpu%u: %llu exits, %llu VMREADs, %llu VMWRITEs (fast path, register cache and handlers)",
             v->id, (unsigned long long)s->total, (unsigned long long)v->rc.vmreads,
             (unsigned long long)v->rc.vmwrites);
    char line[200];
    int n = 0;
    for (uint32_t r = 0; r <= EXIT_REASON_MAX; r++) {
        if (!s->by_reason[r])
            continue;
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s %llu", n ? ", " : "", exit_reason_name(r),
                      (unsigned long long)s->by_reason[r]);
        if (n > 120) {
            log_info("stats: cpu%u:   %s", v->id, line);
            n = 0;
        }
    }
    if (n)
        log_info("stats: cpu%u:   %s", v->id, line);
    if (s->sipis_latched || s->icr_latched)
        log_info("stats: cpu%u:   INIT/SIPI: %llu start(s) from a latched SIPI; sent %llu INIT/SIPI IPI(s); "
                 "%llu xAPIC store(s) performed", v->id, (unsigned long long)s->sipis_latched,
                 (unsigned long long)s->icr_latched, (unsigned long long)s->apic_writes);
    if (s->io_steps)
        log_info("stats: cpu%u:   %llu string I/O iterations run natively (I/O steps)", v->id,
                 (unsigned long long)s->io_steps);
    if (s->nmis)
        log_info("stats: cpu%u:   NMIs: %llu received, %llu injected, %llu as NMI exits to L1", v->id,
                 (unsigned long long)s->nmis, (unsigned long long)s->nmis_injected,
                 (unsigned long long)s->nmis_to_l1);
    if (v->step.dropped)
        log_info("stats: cpu%u:   %llu writes to hv's memory dropped (pages written, through EPT01)", v->id,
                 (unsigned long long)v->step.dropped);
    const struct nested_state *ns = &v->nested;
    if (ns->nested_entries)
        log_info("stats: cpu%u:   nested: %llu VM entries into L2 (%llu on the fast path), %llu exits while L2 ran, "
                 "%llu reflected to L1", v->id, (unsigned long long)ns->nested_entries,
                 (unsigned long long)ns->fast_entries, (unsigned long long)s->l2_exits,
                 (unsigned long long)ns->reflected_exits);
    if (ns->msr_list_failures)
        log_info("stats: cpu%u:   nested: %llu VM-exit MSR lists of L1 failed (VMX aborts on hardware)", v->id,
                 (unsigned long long)ns->msr_list_failures);
    for (int r = 0; r < EPT02_ROOTS; r++) {
        const struct ept02 *e = ns->ept02_roots.ctx[r];
        if (e && ns->ept02_roots.used[r])
            log_info("stats: cpu%u:   EPT02 %d: %llu fills, %llu violations reflected, %llu clears, %llu writes to "
                     "hv's memory dropped", v->id, r, (unsigned long long)e->fills, (unsigned long long)e->reflected,
                     (unsigned long long)e->clears, (unsigned long long)e->hidden_writes);
    }
    if (ns->ept02)
        log_info("stats: cpu%u:   EPT02 roots: %llu evictions; %llu EPTP switches (VMFUNC), %llu #VE", v->id,
                 (unsigned long long)ns->ept02_roots.evictions, (unsigned long long)ns->vmfunc_switches,
                 (unsigned long long)ns->ve_delivered);
}

void stats_print_all(const char *why)
{
    log_info("stats: exit statistics (%s), %u vCPU(s); %llu writes to hv's memory dropped", why, hv.nvcpus,
             (unsigned long long)hidden_writes_total());
    for (uint32_t i = 0; i < HV_MAX_CPUS; i++)
        if (hv.vcpus[i])
            stats_print(hv.vcpus[i]);
}
