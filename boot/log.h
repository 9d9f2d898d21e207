/* boot/'s serial log: the same "hv: " lines as the core's, formatted without a libc. */
#ifndef BOOT_LOG_H
#define BOOT_LOG_H
#include <stdarg.h>
#include <stddef.h>

enum { BLOG_ERROR, BLOG_WARN, BLOG_INFO, BLOG_DEBUG };
#define BLOG_NOW 0x10 /* or-ed into the level: printed at once, even while lines are held */
void blog_init(unsigned short port, int level);
void blog(int level, const char *fmt, ...);
/* Every line starts "<prefix>: " ("hv: " by default; hv.cfg's log_prefix=). */
void blog_set_prefix(const char *prefix);
void blog_set_level(int level);
/* Keep lines from now on (up to 8) and print them at blog_release(), with the prefix and level
 * set meanwhile: hv logs nothing before it has read hv.cfg. */
void blog_hold(void);
void blog_release(void);
/* One line "<prefix><text>\n" on the serial port; the test payloads use it too. */
void bline(const char *prefix, const char *fmt, va_list ap);
/* %s %c %d %u %x %llx %llu %lld %p %S (UCS-2 string) with optional 0-padding width */
size_t bfmt(char *buf, size_t size, const char *fmt, va_list ap);
#endif
