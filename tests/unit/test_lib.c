/* lib/: log line format and levels, the page/arena allocator; boot/'s formatter. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "boot/log.h"
#include "lib/log.h"
#include "lib/pages.h"
#include "test_util.h"

static size_t fmt(char *buf, size_t n, enum log_level l, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    size_t r = log_format(buf, n, l, f, ap);
    va_end(ap);
    buf[r] = 0;
    return r;
}
static size_t bf(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    size_t r = bfmt(buf, n, f, ap);
    va_end(ap);
    return r;
}

int main(void)
{
    char b[64];
    fmt(b, sizeof(b), LOG_INFO, "x=%d", 5);
    CHECK(!strcmp(b, "hv: x=5"), "info line: '%s'", b);
    fmt(b, sizeof(b), LOG_ERROR, "bad");
    CHECK(!strcmp(b, "hv: ERROR: bad"), "error tag: '%s'", b);
    fmt(b, sizeof(b), LOG_WARN, "two\nlines");
    CHECK(!strcmp(b, "hv: WARN: two lines"), "newline folded: '%s'", b);
    size_t n = fmt(b, 16, LOG_INFO, "%s", "a very long message indeed");
    CHECK(n == 14 && !strncmp(b, "hv: a very lon", 14), "truncated to leave room for newline: %zu '%s'", n, b);
    log_set_prefix("hv1");
    fmt(b, sizeof(b), LOG_WARN, "inner");
    CHECK(!strcmp(b, "hv1: WARN: inner"), "log_prefix=hv1: '%s'", b);
    log_set_prefix("abcdefghijklmnopqrstuvwxyz");
    fmt(b, sizeof(b), LOG_INFO, "x");
    CHECK(!strcmp(b, "abcdefghijklmno: x"), "a prefix is at most 15 characters: '%s'", b);
    log_set_prefix("");
    fmt(b, sizeof(b), LOG_INFO, "x");
    CHECK(!strcmp(b, "hv: x"), "empty prefix: hv again: '%s'", b);

    test_log_capture();
    log_set_level(LOG_WARN);
    test_log_clear();
    log_info("hidden");
    log_warn("shown %u", 7u);
    CHECK(!test_log_contains("hidden") && test_log_contains("hv: WARN: shown 7\n"), "level filter: '%s'",
          test_log_text());
    CHECK(!strcmp(log_level_name(LOG_DEBUG), "debug") && !strcmp(log_level_name((enum log_level)9), "?"),
          "level names");

    void *mem = aligned_alloc(4096, 64 * 4096);
    pages_init((uint64_t)(uintptr_t)mem + 100, 64 * 4096 - 100); /* unaligned base rounds up */
    CHECK(pages_total() == 63 * 4096, "total %llu", (unsigned long long)pages_total());
    memset(mem, 0xaa, 64 * 4096);
    unsigned char *p = page_alloc(2);
    CHECK(p && ((uintptr_t)p & 4095) == 0 && p[0] == 0 && p[8191] == 0, "zeroed, aligned pages");
    char *a = sbrk_region(100);
    CHECK(a == (char *)mem + 4096, "arena starts at the aligned base");
    CHECK(sbrk_region(0) == a + 100, "arena grows");
    CHECK(sbrk_region(-200) == (void *)-1, "cannot shrink below base");
    CHECK(page_alloc(62) == NULL, "exhaustion: NULL");
    CHECK(page_alloc(60) != NULL && pages_used() == 62 * 4096 + 100, "used %llu", (unsigned long long)pages_used());
    CHECK(sbrk_region(4096) == (void *)-1, "arena cannot run into pages");
    CHECK(page_alloc(0) == NULL, "zero pages");
    free(mem);

    bf(b, sizeof(b), "%s|%5u|%05x|%llx|%d|%lld|%c|%%", "s", 42u, 0xabu, 0x123456789abull, -3, -9000000000ll, 'z');
    CHECK(!strcmp(b, "s|   42|000ab|123456789ab|-3|-9000000000|z|%"), "bfmt: '%s'", b);
    unsigned short w[] = {'E', 'F', 'I', 0x263a, 0};
    bf(b, sizeof(b), "%S", w);
    CHECK(!strcmp(b, "EFI?"), "UCS-2: '%s'", b);
    n = bf(b, 8, "%s", "0123456789");
    CHECK(n == 7 && !strcmp(b, "0123456"), "bfmt truncates: %zu '%s'", n, b);
    bf(b, sizeof(b), "%s", (char *)NULL);
    CHECK(!strcmp(b, "(null)"), "NULL string");

    /* The log ring (HV_HC_LOG_READ's source): every logged line, also without a sink. */
    {
        static char rb[LOG_RING_SIZE + 100];
        uint64_t head0, pos = ~0ull, head;
        CHECK(log_ring_read(&pos, rb, 10, &head0) == 0 && pos == head0, "past the end: nothing, pos = end");
        log_set_level(LOG_INFO);
        log_info("ring line %d", 1);
        log_debug("not at info");
        pos = head0;
        size_t k = log_ring_read(&pos, rb, sizeof(rb), &head);
        rb[k] = 0;
        CHECK(pos == head0 && head == head0 + k && !strcmp(rb, "hv: ring line 1\n"), "one line: '%s'", rb);
        log_set_sink(NULL);
        log_info("no sink");
        pos = head;
        k = log_ring_read(&pos, rb, 5, &head);
        CHECK(k == 5 && !memcmp(rb, "hv: n", 5), "without a sink, 5 bytes at a time: %zu", k);
        for (int i = 0; i < 5000; i++)
            log_info("filler %04d ........", i); /* 25 bytes each: 125000 bytes, the ring wraps */
        pos = 0;
        k = log_ring_read(&pos, rb, sizeof(rb), &head);
        rb[k] = 0;
        CHECK(k == LOG_RING_SIZE && pos == head - LOG_RING_SIZE && !strcmp(rb + k - 25, "hv: filler 4999 ........\n"),
              "wrapped: the last %d bytes kept, oldest first: %zu, pos %llu head %llu", LOG_RING_SIZE, k,
              (unsigned long long)pos, (unsigned long long)head);
        test_log_capture();
    }
    return test_summary();
}
