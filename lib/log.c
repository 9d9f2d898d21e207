#include "log.h"
#include <stdio.h>
#include <stdint.h>
#include "spinlock.h"

static enum log_level level = LOG_INFO;
static char prefix[16] = "hv";
static void (*sink)(const char *s, size_t n);
static spinlock_t lock;
static volatile int fatal_mode, lock_broken;
/* The ring: the last LOG_RING_SIZE bytes of the log, in hv's own memory (hidden from the guest
 * by EPT01), for machines without a serial port; read through HV_HC_LOG_READ. */
static char ring[LOG_RING_SIZE];
static uint64_t ring_head; /* bytes ever written: the stream position of the next byte */

void log_set_level(enum log_level l) { level = l; }
enum log_level log_get_level(void) { return level; }
void log_set_sink(void (*s)(const char *, size_t)) { sink = s; }

void log_set_prefix(const char *p)
{
    size_t i = 0;
    for (; p && p[i] && i < sizeof(prefix) - 1; i++)
        prefix[i] = p[i];
    if (!i)
        prefix[i++] = 'h', prefix[i++] = 'v';
    prefix[i] = 0;
}

const char *log_level_name(enum log_level l)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "fatal"};
    return (unsigned)l < 5 ? names[l] : "?";
}

size_t log_format(char *buf, size_t size, enum log_level l, const char *fmt, va_list ap)
{
    static const char *const tags[] = {"ERROR: ", "WARN: ", "", "", "FATAL: "};
    if (size < 2)
        return 0;
    int n = snprintf(buf, size, "%s: %s", prefix, (unsigned)l < 5 ? tags[l] : "");
    if (n < 0)
        n = 0;
    if ((size_t)n < size) {
        int m = vsnprintf(buf + n, size - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= size - 1)
        n = (int)size - 2; /* truncated: keep room for the newline */
    /* One message is one line: fold embedded newlines so every line keeps the prefix. */
    for (int i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    return (size_t)n;
}

void log_enter_fatal(void) { fatal_mode = 1; }

/* In fatal mode a lock not given back in about 2^24 tries is broken for good. */
static int lock_log(void)
{
    if (!fatal_mode) {
        spin_lock(&lock);
        return 1;
    }
    for (unsigned long i = 0; !lock_broken && i < (1ul << 24); i++) {
        if (!__atomic_exchange_n(&lock.locked, 1, __ATOMIC_ACQUIRE))
            return 1;
        __builtin_ia32_pause();
    }
    lock_broken = 1;
    return 0;
}

static void ring_put(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ring[(ring_head + i) % LOG_RING_SIZE] = s[i];
    ring_head += n;
}

void log_vprintf(enum log_level l, const char *fmt, va_list ap)
{
    char buf[256];
    if (l > level && l != LOG_FATAL)
        return;
    size_t n = log_format(buf, sizeof(buf) - 1, l, fmt, ap);
    buf[n++] = '\n';
    int locked = lock_log();
    ring_put(buf, n);
    if (sink)
        sink(buf, n);
    if (locked)
        spin_unlock(&lock);
}

size_t log_ring_read(uint64_t *pos, char *buf, size_t n, uint64_t *head)
{
    spin_lock(&lock);
    uint64_t oldest = ring_head > LOG_RING_SIZE ? ring_head - LOG_RING_SIZE : 0;
    uint64_t p = *pos < oldest ? oldest : *pos > ring_head ? ring_head : *pos;
    size_t k = ring_head - p < n ? (size_t)(ring_head - p) : n;
    for (size_t i = 0; i < k; i++)
        buf[i] = ring[(p + i) % LOG_RING_SIZE];
    *pos = p;
    *head = ring_head;
    spin_unlock(&lock);
    return k;
}

void log_printf(enum log_level l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(l, fmt, ap);
    va_end(ap);
}
