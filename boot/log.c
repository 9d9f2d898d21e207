#include "log.h"
#include <stdint.h>
#include "../lib/serial.h"

static int blevel = BLOG_INFO;
static char bprefix[16] = "hv";
/* Lines logged before hv.cfg was read (blog_hold): printed at blog_release with the prefix and
 * at the level hv.cfg names, so that even hv's first line carries log_prefix=. */
static struct {
    int on;
    unsigned n, dropped;
    struct { int level; char text[200]; } line[8];
} held;

void blog_init(unsigned short port, int level)
{
    serial_init(port);
    blevel = level;
}

void blog_set_level(int level) { blevel = level; }

void blog_set_prefix(const char *p)
{
    size_t i = 0;
    for (; p && p[i] && i < sizeof(bprefix) - 1; i++)
        bprefix[i] = p[i];
    if (!i)
        bprefix[i++] = 'h', bprefix[i++] = 'v';
    bprefix[i] = 0;
}

void blog_hold(void) { held.on = 1; }

static void put(char *buf, size_t size, size_t *n, char c)
{
    if (*n + 1 < size)
        buf[*n] = c;
    (*n)++;
}

static void put_num(char *buf, size_t size, size_t *n, uint64_t v, unsigned base, int neg, int width, char pad)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[i++] = '-';
    while (i < width--)
        put(buf, size, n, pad);
    while (i)
        put(buf, size, n, tmp[--i]);
}

size_t bfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(buf, size, &n, *fmt);
            continue;
        }
        char pad = ' ';
        int width = 0, longs = 0;
        if (*++fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            longs++, fmt++;
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                put(buf, size, &n, *s);
            break;
        }
        case 'S': { /* UCS-2 from the firmware: ASCII kept, the rest shown as '?' */
            const uint16_t *s = va_arg(ap, const uint16_t *);
            for (; s && *s; s++)
                put(buf, size, &n, *s < 0x80 ? (char)*s : '?');
            break;
        }
        case 'c':
            put(buf, size, &n, (char)va_arg(ap, int));
            break;
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(buf, size, &n, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_num(buf, size, &n, v, *fmt == 'u' ? 10 : 16, 0, width, pad);
            break;
        }
        case 'p':
            put(buf, size, &n, '0');
            put(buf, size, &n, 'x');
            put_num(buf, size, &n, (uintptr_t)va_arg(ap, void *), 16, 0, width, pad);
            break;
        case '%':
            put(buf, size, &n, '%');
            break;
        default:
            put(buf, size, &n, '?');
            if (!*fmt)
                fmt--;
        }
    }
    if (size)
        buf[n < size ? n : size - 1] = 0;
    return n < size ? n : size - 1;
}

void bline(const char *prefix, const char *fmt, va_list ap)
{
    char line[320];
    size_t t = 0;
    for (; *prefix && t < 64; prefix++)
        line[t++] = *prefix;
    size_t n = t + bfmt(line + t, sizeof(line) - t - 1, fmt, ap);
    line[n++] = '\n';
    serial_write(line, n);
}

static void emit(int level, const char *fmt, va_list ap)
{
    static const char *const tag[] = {"ERROR: ", "WARN: ", "", ""};
    char p[40];
    size_t n = 0;
    for (const char *s = bprefix; *s; s++)
        p[n++] = *s;
    p[n++] = ':', p[n++] = ' ';
    for (const char *s = tag[level & 3]; *s; s++)
        p[n++] = *s;
    p[n] = 0;
    bline(p, fmt, ap);
}

static void emit_fmt(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(level, fmt, ap);
    va_end(ap);
}

void blog(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int now = level & BLOG_NOW;
    level &= 3;
    if (held.on && !now && held.n < sizeof(held.line) / sizeof(held.line[0])) {
        held.line[held.n].level = level;
        bfmt(held.line[held.n++].text, sizeof(held.line[0].text), fmt, ap);
    } else if (held.on && !now) {
        held.dropped++;
    } else if (level <= blevel) {
        emit(level, fmt, ap);
    }
    va_end(ap);
}

void blog_release(void)
{
    held.on = 0;
    for (unsigned i = 0; i < held.n; i++)
        if (held.line[i].level <= blevel)
            emit_fmt(held.line[i].level, "%s", held.line[i].text);
    if (held.dropped)
        blog(BLOG_WARN, "%u early log line(s) lost (more than %u before hv.cfg was read)", held.dropped, held.n);
    held.n = held.dropped = 0;
}
