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
    CHECK(c.serial_port == 0x3f8 && c.log_level == 2 && c.nested == 1 && c.vmx == 1 && !c.next[0][0], "defaults");

    const char *lf = "# comment\nnext=\\EFI\\linux\\vmlinuz.efi\nargs=console=ttyS0 root=/dev/sda\n\n"
                     "serial=com2\nlog=debug\nnested=off\nvmx=on\n";
    CHECK(parse(&c, lf) == 0 && ndiag == 0, "LF file parses cleanly: %s", diag_text);
    CHECK(!strcmp(c.next[0], "\\EFI\\linux\\vmlinuz.efi"), "next: %s", c.next[0]);
    CHECK(!strcmp(c.args, "console=ttyS0 root=/dev/sda"), "args: %s", c.args);
    CHECK(c.serial_port == 0x2f8 && c.log_level == 3 && c.nested == 0 && c.vmx == 1, "values");

    const char *crlf = "next = /EFI/hv/payload.efi \r\nserial=0x3E8\r\n  # indented comment\r\nLOG=Warn\r\n";
    CHECK(parse(&c, crlf) == 0, "CRLF, blanks around '=' and case: %s", diag_text);
    CHECK(!strcmp(c.next[0], "\\EFI\\hv\\payload.efi"), "slashes become backslashes, trailing blank dropped: '%s'",
          c.next[0]);
    CHECK(c.serial_port == 0x3e8 && c.log_level == 1, "hex port, case-insensitive level");

    CHECK(parse(&c, "\xef\xbb\xbfnext=a.efi") == 0 && !strcmp(c.next[0], "a.efi"), "UTF-8 BOM skipped, no final newline");
    CHECK(parse(&c, "serial=off\n") == 0 && c.serial_port == 0, "serial=off");
    CHECK(c.shadow == 1 && parse(&c, "vmcs_shadowing=off\n") == 0 && c.shadow == 0, "vmcs_shadowing=off");
    CHECK(parse(&c, "vmcs_shadowing=sometimes\n") == 1 && c.shadow == 1, "bad vmcs_shadowing keeps default");
    CHECK(parse(&c, "args=\n") == 0 && c.args[0] == 0, "empty args");
    CHECK(!c.log_prefix[0] && parse(&c, "log_prefix=hv1\r\n") == 0 && !strcmp(c.log_prefix, "hv1"), "log_prefix=hv1: %s",
          diag_text);
    CHECK(parse(&c, "log_prefix=hv-L1.inner_0\n") == 0 && !strcmp(c.log_prefix, "hv-L1.inner_0"), "log_prefix of 13: %s",
          c.log_prefix);
    CHECK(parse(&c, "log_prefix=\n") == 1 && !c.log_prefix[0], "empty log_prefix refused");
    CHECK(parse(&c, "log_prefix=hv 1\n") == 1 && !c.log_prefix[0] && strstr(diag_text, "bad log_prefix"),
          "log_prefix with a blank refused: %s", diag_text);
    CHECK(parse(&c, "log_prefix=hv:\n") == 1 && !c.log_prefix[0], "log_prefix with ':' refused");
    CHECK(parse(&c, "log_prefix=abcdefghijklmnop\n") == 1 && !c.log_prefix[0], "log_prefix of 16 refused");
    CHECK(!c.l1_vmx_hide[0] && parse(&c, "l1_vmx_hide = shadow-vmcs, ept-ad preemption-timer-save\r\n") == 0 &&
              !strcmp(c.l1_vmx_hide, "shadow-vmcs, ept-ad preemption-timer-save"),
          "l1_vmx_hide kept as written: '%s' %s", c.l1_vmx_hide, diag_text);
    CHECK(parse(&c, "l1_vmx_hide=caf\xc3\xa9\n") == 1 && !c.l1_vmx_hide[0], "non-ASCII l1_vmx_hide refused");
    CHECK(c.on_fatal == HV_ON_FATAL_HALT && !c.test_hooks, "on_fatal=halt and no test hooks by default");
    CHECK(parse(&c, "on_fatal=reset\n") == 0 && c.on_fatal == HV_ON_FATAL_RESET, "on_fatal=reset: %s", diag_text);
    CHECK(parse(&c, "on_fatal = Halt\r\n") == 0 && c.on_fatal == HV_ON_FATAL_HALT, "on_fatal=Halt: %s", diag_text);
    CHECK(parse(&c, "on_fatal=reboot\n") == 1 && c.on_fatal == HV_ON_FATAL_HALT &&
              strstr(diag_text, "1:bad value for on_fatal (halt, reset):on_fatal=reboot"),
          "bad on_fatal keeps halt: %s", diag_text);
    CHECK(parse(&c, "test_hooks=on\n") == 0 && c.test_hooks == 1, "test_hooks=on: %s", diag_text);
    CHECK(parse(&c, "test_hooks=sure\n") == 1 && c.test_hooks == 0, "bad test_hooks keeps off");
    CHECK(c.dma_protect == 1 && parse(&c, "dma_protect=off\n") == 0 && c.dma_protect == 0, "dma_protect: on by default, off");
    CHECK(parse(&c, "dma_protect=maybe\n") == 1 && c.dma_protect == 1 && strstr(diag_text, "dma_protect (on/off)"),
          "bad dma_protect: %s", diag_text);

    /* Bad input: one diagnostic each, with its line number; the good lines still apply. */
    CHECK(parse(&c, "colour=blue\nlog=info\n") == 1 && strstr(diag_text, "1:unknown key:colour=blue"), "unknown key: %s",
          diag_text);
    CHECK(parse(&c, "nested=maybe\n") == 1 && c.nested == 1 && strstr(diag_text, "1:bad value for nested"),
          "bad bool keeps default: %s", diag_text);
    CHECK(parse(&c, "\n\nserial=0x10000\n") == 1 && c.serial_port == 0x3f8 && strstr(diag_text, "3:bad serial"),
          "port out of range: %s", diag_text);
    CHECK(parse(&c, "serial=0x\n") == 1, "port with no digits");
    CHECK(parse(&c, "serial=com5\n") == 1, "no COM5");
    CHECK(parse(&c, "log=verbose\nnext=x.efi\n") == 1 && !strcmp(c.next[0], "x.efi"), "bad level, next line applies");
    CHECK(parse(&c, "just text\n") == 1 && strstr(diag_text, "not key=value"), "line without '='");
    CHECK(parse(&c, "next=caf\xc3\xa9.efi\n") == 1 && !c.next[0][0], "non-ASCII path refused");
    char longp[400];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "next=", 5);
    longp[sizeof(longp) - 1] = 0;
    CHECK(parse(&c, longp) == 1 && !c.next[0][0], "path longer than 255 refused");
    const char nul[] = "next=a\0b\n";
    diag_text[0] = 0;
    config_defaults(&c);
    CHECK(config_parse(&c, nul, sizeof(nul) - 1, diag, NULL) >= 1 && strstr(diag_text, "NUL"), "NUL byte: %s",
          diag_text);
    CHECK(config_parse(&c, "x", 1, NULL, NULL) == 1, "no diag callback: still counted");

    /* next= candidates on other volumes, tried in order (issue 10) */
    const char *multi = "next=label:NOSUCH:\\EFI\\x.efi\n"
                        "next=guid:0FC63DAF-8483-4772-8E79-3D69D8477DE4:/EFI/debian/shimx64.efi\n"
                        "next=LABEL:EFI:\\EFI\\debian\\grubx64.efi\nnext=payload.efi\n";
    CHECK(parse(&c, multi) == 0, "four candidates: %s", diag_text);
    CHECK(!strcmp(c.next[0], "label:NOSUCH:\\EFI\\x.efi") && !strcmp(c.next[3], "payload.efi"),
          "in file order: %s / %s", c.next[0], c.next[3]);
    CHECK(!strcmp(c.next[1], "guid:0FC63DAF-8483-4772-8E79-3D69D8477DE4:\\EFI\\debian\\shimx64.efi"),
          "slashes become backslashes in the path: %s", c.next[1]);
    struct next_spec ns;
    CHECK(next_spec_parse(c.next[0], &ns) && ns.kind == NEXT_LABEL && !strcmp(ns.key, "NOSUCH") &&
              !strcmp(ns.path, "\\EFI\\x.efi"), "label: split");
    static const uint8_t want[16] = {0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
                                     0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4};
    CHECK(next_spec_parse(c.next[1], &ns) && ns.kind == NEXT_GUID && !memcmp(ns.guid, want, 16) &&
              !strcmp(ns.path, "\\EFI\\debian\\shimx64.efi"), "guid: mixed-endian bytes as on disk");
    CHECK(next_spec_parse(c.next[2], &ns) && ns.kind == NEXT_LABEL && !strcmp(ns.key, "EFI"), "LABEL: any case");
    CHECK(next_spec_parse(c.next[3], &ns) && ns.kind == NEXT_PATH && ns.path == c.next[3], "plain path");
    CHECK(parse(&c, "next=partuuid:0fc63daf-8483-4772-8e79-3d69d8477de4:\\a.efi\n") == 0 &&
              next_spec_parse(c.next[0], &ns) && ns.kind == NEXT_GUID && !memcmp(ns.guid, want, 16),
          "partuuid: alias, lower case");
    CHECK(parse(&c, multi) == 0 && parse(&c, "next=a.efi\nnext=b.efi\nnext=\nnext=c.efi\n") == 0 &&
              !strcmp(c.next[0], "c.efi") && !c.next[1][0], "empty next= clears the list");
    CHECK(parse(&c, "next=a\nnext=b\nnext=c\nnext=d\nnext=e\n") == 1 && strstr(diag_text, "5:too many next="),
          "a fifth candidate refused: %s", diag_text);
    CHECK(parse(&c, "next=label:EFI:EFI\\x.efi\n") == 1 && !c.next[0][0], "relative path on another volume refused");
    CHECK(parse(&c, "next=guid:1234:\\x.efi\n") == 1 && !c.next[0][0], "short GUID refused");
    CHECK(parse(&c, "next=guid:0FC63DAF-8483-4772-8E79-3D69D8477DEZ:\\x.efi\n") == 1, "non-hex GUID refused");
    CHECK(parse(&c, "next=disk:1:\\x.efi\n") == 1 && strstr(diag_text, "bad next="), "unknown kind: %s", diag_text);
    CHECK(parse(&c, "next=label::\\x.efi\n") == 1, "empty label refused");
    CHECK(parse(&c, "next=label:EFI\n") == 1, "label without path refused");
    CHECK(c.guest_log == HV_GUEST_LOG_KERNEL && parse(&c, "guest_log=any\n") == 0 && c.guest_log == HV_GUEST_LOG_ANY &&
              parse(&c, "guest_log=kernel\n") == 0 &&
              c.guest_log == HV_GUEST_LOG_KERNEL && parse(&c, "guest_log=Off\n") == 0 && c.guest_log == HV_GUEST_LOG_OFF,
          "guest_log: kernel (default), any, off");
    CHECK(parse(&c, "guest_log=root\n") == 1 && c.guest_log == HV_GUEST_LOG_KERNEL, "bad guest_log keeps the default");
    return test_summary();
}
