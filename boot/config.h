/* hv.cfg parser: pure C with no library calls, so boot/ and the host tests share it. */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H
#include <stddef.h>
#include "../hv/handoff.h"

/* Called once per problem found; line is 1-based. */
typedef void (*config_diag_fn)(void *ctx, unsigned line, const char *msg, const char *text, size_t len);

void config_defaults(struct hv_config *cfg);
/* Parses key=value lines (LF or CRLF, '#' comments, blanks around '=' ignored).
 * Bad lines are reported and skipped; the rest still apply. Returns the number of problems. */
unsigned config_parse(struct hv_config *cfg, const char *text, size_t len, config_diag_fn diag, void *ctx);
#endif
