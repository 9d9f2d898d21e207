/* Minimal host test harness: CHECK records results, test_summary reports them. */
#ifndef TESTS_UNIT_TEST_UTIL_H
#define TESTS_UNIT_TEST_UTIL_H
#include <stdbool.h>

/* Record one check; on failure print file:line, the expression and the message. */
#define CHECK(cond, fmt, ...) \
    test_check(!!(cond), __FILE__, __LINE__, #cond, fmt, ##__VA_ARGS__)

bool test_check(bool ok, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Print exactly one line "N passed, N failed"; returns the exit code. */
int test_summary(void);

/* Route lib/log.c output into a buffer (also sets the level to debug). */
void test_log_capture(void);
void test_log_clear(void);
bool test_log_contains(const char *substr);
/* Non-overlapping occurrences of substr in the captured log. */
int test_log_count(const char *substr);
const char *test_log_text(void);
#endif
