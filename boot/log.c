#include "log.h"
#include <stdint.h>
#include "../lib/serial.h"

static int blevel = BLOG_INFO;

void blog_init(unsigned short port, int level)
{
    serial_init(port);
    blevel = level;
}

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

void blog(int level, const char *fmt, ...)
{
    static const char *const tag[] = {"hv: ERROR: ", "hv: WARN: ", "hv: ", "hv: "};
    if (level > blevel)
        return;
    va_list ap;
    va_start(ap, fmt);
    bline(tag[level & 3], fmt, ap);
    va_end(ap);
}
