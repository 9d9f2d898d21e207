#include "test_util.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "lib/log.h"

static int passed, failed;
static char logbuf[16384];
static size_t loglen;
static bool log_overflow;

bool test_check(bool ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        passed++;
        return true;
    }
    failed++;
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

int test_summary(void)
{
    if (log_overflow)
        fprintf(stderr, "note: captured log overflowed\n");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

static void sink(const char *s, size_t n)
{
    if (n > sizeof(logbuf) - 1 - loglen) {
        n = sizeof(logbuf) - 1 - loglen;
        log_overflow = true;
    }
    memcpy(logbuf + loglen, s, n);
    loglen += n;
    logbuf[loglen] = '\0';
}

void test_log_capture(void)
{
    log_set_sink(sink);
    log_set_level(LOG_DEBUG);
    test_log_clear();
}

void test_log_clear(void)
{
    loglen = 0;
    logbuf[0] = '\0';
}

bool test_log_contains(const char *substr)
{
    return strstr(logbuf, substr) != NULL;
}

int test_log_count(const char *substr)
{
    size_t n = strlen(substr);
    int count = 0;

    if (!n)
        return 0;
    for (const char *p = logbuf; (p = strstr(p, substr)); p += n)
        count++;
    return count;
}

const char *test_log_text(void)
{
    return logbuf;
}

/* Ports (lib/x86.h under HV_HOST_TEST): nothing answers, unless a test supplies its own. */
__attribute__((weak)) uint32_t fake_port_in(uint16_t port, unsigned size) { return ~0u; }
__attribute__((weak)) void fake_port_out(uint16_t port, unsigned size, uint32_t v) {}
