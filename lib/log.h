/* The serial log: every line "hv: " (or hv.cfg's log_prefix= and ": ") + level tag + text. */
#ifndef LIB_LOG_H
#define LIB_LOG_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* LOG_FATAL lines ("hv: FATAL: ") are printed at every level: hv's report of an error it
 * cannot go on from (hv/fatal.c). */
enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_FATAL };

void log_set_level(enum log_level l);
enum log_level log_get_level(void);
/* Where finished lines go (serial_write in hv; a buffer in host tests). */
void log_set_sink(void (*sink)(const char *s, size_t n));
/* The word before ": " on every line; NULL or "" = "hv"; up to 15 characters kept. */
void log_set_prefix(const char *prefix);
void log_printf(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vprintf(enum log_level l, const char *fmt, va_list ap);
/* Format one line into buf (no trailing newline is added); returns its length. */
size_t log_format(char *buf, size_t size, enum log_level l, const char *fmt, va_list ap);
const char *log_level_name(enum log_level l);
/* From now on, wait only so long for the log's lock, then print anyway: the CPU that holds
 * it may never give it back (a fatal error hit it while it printed). */
void log_enter_fatal(void);

/* Every line logged (at the log level, with or without a sink) also goes into a ring of the
 * last LOG_RING_SIZE bytes. log_ring_read copies up to n bytes of the log stream from position
 * *pos (bytes since hv started); a *pos older than the ring holds moves to the oldest byte kept,
 * one past the end to the end. Returns the bytes copied; *head = the stream's end. */
#define LOG_RING_SIZE (64 * 1024)
size_t log_ring_read(uint64_t *pos, char *buf, size_t n, uint64_t *head);

#define log_err(...) log_printf(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_printf(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)
#define log_fatal(...) log_printf(LOG_FATAL, __VA_ARGS__)
#endif
