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

/* One next= candidate, split: NEXT_PATH = a path on hv's own device (path = the whole string);
 * NEXT_LABEL = the volume whose file-system label is key; NEXT_GUID = the partition whose GPT
 * unique partition GUID is guid. Returns 0 if malformed (the parser refuses such a line). */
enum { NEXT_PATH, NEXT_LABEL, NEXT_GUID };
struct next_spec {
    int kind;
    char key[40];
    uint8_t guid[16]; /* as stored on disk and in HARDDRIVE_DEVICE_PATH.Signature */
    const char *path;
};
int next_spec_parse(const char *s, struct next_spec *ns);
int guid_parse(const char *s, size_t n, uint8_t out[16]);
#endif
