/*
 * Path-length probes for hv's own code (`make bench PROF=1`, a developer's tool; compiled
 * out otherwise). Under Bochs a TSC tick is about one instruction, so the ticks between two
 * probes are the length of the path between them. PROF_BEGIN() starts a span (the top of
 * vmexit_handler); each PROF("name") charges the ticks since the previous probe to its site
 * and counts a hit. HV_HC_GET_EXITS prints the sites hit since its last call and clears them
 * (lib/prof.c), so a benchmark window that calls it at both ends gets its own breakdown.
 * One set of counters for the machine: meaningful with 1 CPU only. A probe costs about 8
 * ticks, charged to the next one.
 */
#ifndef HV_PROF_H
#define HV_PROF_H
#include <stdint.h>

#ifdef HV_PROF
struct prof_site {
    const char *name;
    uint64_t ticks, hits;
    struct prof_site *next; /* registered at its first hit */
    int registered;
};
void prof_hit(struct prof_site *s);
void prof_begin(void);
void prof_report(const char *why);
#define PROF_BEGIN() prof_begin()
#define PROF(name)                                                                                          \
    do {                                                                                                    \
        static struct prof_site prof_site_ = {name, 0, 0, 0, 0};                                            \
        prof_hit(&prof_site_);                                                                              \
    } while (0)
#define PROF_REPORT(why) prof_report(why)
#else
#define PROF_BEGIN() ((void)0)
#define PROF(name) ((void)0)
#define PROF_REPORT(why) ((void)0)
#endif
#endif
