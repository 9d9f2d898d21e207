/* hv.cfg parser: every key, both line endings, comments, and each kind of bad input. */
#include <stdio.h>
#include <string.h>
#include "boot/config.h"
#include "test_util.h"

static char diag_text[4096];
static unsigned ndiag;
static void diag(void *ctx, unsigned line, const char *msg, const char *text, size_t len)
{
    (void)ctx;
    ndiag++;
    size_t n = strlen(diag_text);
    snprintf(diag_text + n, sizeof(diag_text) - n, "%u:%s:%.*s|", line, msg, (int)len, text);
}

static unsigned parse(struct hv_config *c, const char *s)
{
    diag_text[0] = 0;
    ndiag = 0;
    config_defaults(c);
    return config_parse(c, s, strlen(s), diag, NULL);
}

int main(void)
{
    struct hv_config c;
    config_defaults(&c);
    CHECK(c.serial_port == 0x3f8 && c.log_level == 2 && c.nested == 1 && c.vmx == 1 && !c.next[0], "defaults");

    const char *lf = "# comment\nnext=\\EFI\\linux\\vmlinuz.efi\nargs=console=ttyS0 root=/dev/sda\n\n"
                     "serial=com2\nlog=debug\nnested=off\nvmx=on\n";
    CHECK(parse(&c, lf) == 0 && ndiag == 0, "LF file parses cleanly: %s", diag_text);
    CHECK(!strcmp(c.next, "\\EFI\\linux\\vmlinuz.efi"), "next: %s", c.next);
    CHECK(!strcmp(c.args, "console=ttyS0 root=/dev/sda"), "args: %s", c.args);
    CHECK(c.serial_port == 0x2f8 && c.log_level == 3 && c.nested == 0 && c.vmx == 1, "values");

    const char *crlf = "next = /EFI/hv/payload.efi \r\nserial=0x3E8\r\n  # indented comment\r\nLOG=Warn\r\n";
    CHECK(parse(&c, crlf) == 0, "CRLF, blanks around '=' and case: %s", diag_text);
    CHECK(!strcmp(c.next, "\\EFI\\hv\\payload.efi"), "slashes become backslashes, trailing blank dropped: '%s'",
          c.next);
    CHECK(c.serial_port == 0x3e8 && c.log_level == 1, "hex port, case-insensitive level");

    CHECK(parse(&c, "\xef\xbb\xbfnext=a.efi") == 0 && !strcmp(c.next, "a.efi"), "UTF-8 BOM skipped, no final newline");
    CHECK(parse(&c, "serial=off\n") == 0 && c.serial_port == 0, "serial=off");
    CHECK(c.shadow == 1 && parse(&c, "vmcs_shadowing=off\n") == 0 && c.shadow == 0, "vmcs_shadowing=off");
    CHECK(parse(&c, "vmcs_shadowing=sometimes\n") == 1 && c.shadow == 1, "bad vmcs_shadowing keeps default");
    CHECK(parse(&c, "args=\n") == 0 && c.args[0] == 0, "empty args");
    CHECK(c.on_fatal == HV_ON_FATAL_HALT && !c.test_hooks, "on_fatal=halt and no test hooks by default");
    CHECK(parse(&c, "on_fatal=reset\n") == 0 && c.on_fatal == HV_ON_FATAL_RESET, "on_fatal=reset: %s", diag_text);
    CHECK(parse(&c, "on_fatal = Halt\r\n") == 0 && c.on_fatal == HV_ON_FATAL_HALT, "on_fatal=Halt: %s", diag_text);
    CHECK(parse(&c, "on_fatal=reboot\n") == 1 && c.on_fatal == HV_ON_FATAL_HALT &&
              strstr(diag_text, "1:bad value for on_fatal (halt, reset):on_fatal=reboot"),
          "bad on_fatal keeps halt: %s", diag_text);
    CHECK(parse(&c, "test_hooks=on\n") == 0 && c.test_hooks == 1, "test_hooks=on: %s", diag_text);
    CHECK(parse(&c, "test_hooks=sure\n") == 1 && c.test_hooks == 0, "bad test_hooks keeps off");

    /* Bad input: one diagnostic each, with its line number; the good lines still apply. */
    CHECK(parse(&c, "colour=blue\nlog=info\n") == 1 && strstr(diag_text, "1:unknown key:colour=blue"), "unknown key: %s",
          diag_text);
    CHECK(parse(&c, "nested=maybe\n") == 1 && c.nested == 1 && strstr(diag_text, "1:bad value for nested"),
          "bad bool keeps default: %s", diag_text);
    CHECK(parse(&c, "\n\nserial=0x10000\n") == 1 && c.serial_port == 0x3f8 && strstr(diag_text, "3:bad serial"),
          "port out of range: %s", diag_text);
    CHECK(parse(&c, "serial=0x\n") == 1, "port with no digits");
    CHECK(parse(&c, "serial=com5\n") == 1, "no COM5");
    CHECK(parse(&c, "log=verbose\nnext=x.efi\n") == 1 && !strcmp(c.next, "x.efi"), "bad level, next line applies");
    CHECK(parse(&c, "just text\n") == 1 && strstr(diag_text, "not key=value"), "line without '='");
    CHECK(parse(&c, "next=caf\xc3\xa9.efi\n") == 1 && !c.next[0], "non-ASCII path refused");
    char longp[400];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "next=", 5);
    longp[sizeof(longp) - 1] = 0;
    CHECK(parse(&c, longp) == 1 && !c.next[0], "path longer than 255 refused");
    const char nul[] = "next=a\0b\n";
    diag_text[0] = 0;
    config_defaults(&c);
    CHECK(config_parse(&c, nul, sizeof(nul) - 1, diag, NULL) >= 1 && strstr(diag_text, "NUL"), "NUL byte: %s",
          diag_text);
    CHECK(config_parse(&c, "x", 1, NULL, NULL) == 1, "no diag callback: still counted");
    return test_summary();
}
