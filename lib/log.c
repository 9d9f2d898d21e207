#include "log.h"
#include <stdio.h>
#include "spinlock.h"

static enum log_level level = LOG_INFO;
static void (*sink)(const char *s, size_t n);
static spinlock_t lock;
static volatile int fatal_mode, lock_broken;

void log_set_level(enum log_level l) { level = l; }
enum log_level log_get_level(void) { return level; }
void log_set_sink(void (*s)(const char *, size_t)) { sink = s; }

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
    int n = snprintf(buf, size, "hv: %s", (unsigned)l < 5 ? tags[l] : "");
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

void log_vprintf(enum log_level l, const char *fmt, va_list ap)
{
    char buf[256];
    if ((l > level && l != LOG_FATAL) || !sink)
        return;
    size_t n = log_format(buf, sizeof(buf) - 1, l, fmt, ap);
    buf[n++] = '\n';
    int locked = lock_log();
    sink(buf, n);
    if (locked)
        spin_unlock(&lock);
}

void log_printf(enum log_level l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(l, fmt, ap);
    va_end(ap);
}
