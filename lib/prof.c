/* Path-length probes (lib/prof.h): a developer's tool, built with `make ... PROF=1` only. */
#ifdef HV_PROF
#include "prof.h"
#include "log.h"
#include "x86.h"

static uint64_t last;
static struct prof_site *sites;

void prof_begin(void) { last = rdtsc(); }

void prof_hit(struct prof_site *s)
{
    uint64_t t = rdtsc();
    if (!s->registered) {
        s->registered = 1;
        s->next = sites;
        sites = s;
    }
    s->ticks += t - last;
    s->hits++;
    last = rdtsc(); /* the probe's own cost is not charged to the next site */
}

void prof_report(const char *why)
{
    for (struct prof_site *s = sites; s; s = s->next) {
        if (s->hits)
            log_info("prof: %s: %-28s %6llu hits, %llu.%02llu ticks per hit", why, s->name,
                     (unsigned long long)s->hits, (unsigned long long)(s->ticks / s->hits),
                     (unsigned long long)(s->ticks * 100 / s->hits % 100));
        s->ticks = s->hits = 0;
    }
    last = rdtsc(); /* the report's own time (the serial log) is nobody's */
}
#else
typedef int prof_unused; /* ISO C: a translation unit is not empty */
#endif
