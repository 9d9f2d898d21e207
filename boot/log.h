/* boot/'s serial log: the same "hv: " lines as the core's, formatted without a libc. */
#ifndef BOOT_LOG_H
#define BOOT_LOG_H
#include <stdarg.h>
#include <stddef.h>

enum { BLOG_ERROR, BLOG_WARN, BLOG_INFO, BLOG_DEBUG };
void blog_init(unsigned short port, int level);
void blog(int level, const char *fmt, ...);
/* One line "<prefix><text>\n" on the serial port; the test payloads use it too. */
void bline(const char *prefix, const char *fmt, va_list ap);
/* %s %c %d %u %x %llx %llu %lld %p %S (UCS-2 string) with optional 0-padding width */
size_t bfmt(char *buf, size_t size, const char *fmt, va_list ap);
#endif
