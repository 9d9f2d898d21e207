#include "config.h"

enum { LOG_ERROR_, LOG_WARN_, LOG_INFO_, LOG_DEBUG_ }; /* = enum log_level */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

static int word_eq(const char *s, size_t n, const char *w)
{
    size_t i = 0;
    for (; i < n && w[i]; i++)
        if (lower(s[i]) != w[i])
            return 0;
    return i == n && !w[i];
}

void config_defaults(struct hv_config *cfg)
{
    char *p = (char *)cfg;
    for (size_t i = 0; i < sizeof(*cfg); i++)
        p[i] = 0;
    cfg->serial_port = 0x3f8;
    cfg->log_level = LOG_INFO_;
    cfg->nested = 1;
    cfg->vmx = 1;
    cfg->shadow = 1;
    cfg->on_fatal = HV_ON_FATAL_HALT;
    cfg->test_hooks = 0;
    cfg->dma_protect = 1;
    cfg->guest_log = HV_GUEST_LOG_KERNEL; /* the log names guest addresses: not for any process */
}

static int parse_bool(const char *v, size_t n, uint8_t *out)
{
    if (word_eq(v, n, "on") || word_eq(v, n, "1") || word_eq(v, n, "yes") || word_eq(v, n, "true"))
        return *out = 1, 1;
    if (word_eq(v, n, "off") || word_eq(v, n, "0") || word_eq(v, n, "no") || word_eq(v, n, "false"))
        return *out = 0, 1;
    return 0;
}

static int parse_port(const char *v, size_t n, uint16_t *out)
{
    static const uint16_t com[] = {0x3f8, 0x2f8, 0x3e8, 0x2e8};
    if (word_eq(v, n, "off"))
        return *out = 0, 1;
    if (n == 4 && lower(v[0]) == 'c' && lower(v[1]) == 'o' && lower(v[2]) == 'm' && v[3] >= '1' && v[3] <= '4')
        return *out = com[v[3] - '1'], 1;
    if (n < 3 || v[0] != '0' || lower(v[1]) != 'x')
        return 0;
    uint32_t x = 0;
    for (size_t i = 2; i < n; i++) {
        char c = lower(v[i]);
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0 || (x = x * 16 + (uint32_t)d) > 0xfff8)
            return 0;
    }
    if (!x)
        return 0;
    *out = (uint16_t)x;
    return 1;
}

static int copy_str(char *dst, size_t cap, const char *v, size_t n, int is_path)
{
    if (n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
            return 0; /* ASCII only: it becomes UCS-2 one byte per char */
    for (size_t i = 0; i < n; i++)
        dst[i] = is_path && v[i] == '/' ? '\\' : v[i];
    dst[n] = 0;
    return 1;
}

static unsigned parse_line(struct hv_config *cfg, unsigned no, const char *s, size_t n, config_diag_fn diag, void *ctx)
{
#define BAD(msg) (diag ? diag(ctx, no, msg, s, n) : (void)0, 1u)
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    if (!n || *s == '#')
        return 0;
    size_t eq = 0;
    while (eq < n && s[eq] != '=')
        eq++;
    if (eq == n)
        return BAD("not key=value");
    size_t kn = eq;
    while (kn && is_space(s[kn - 1]))
        kn--;
    const char *v = s + eq + 1;
    size_t vn = n - eq - 1;
    while (vn && is_space(*v))
        v++, vn--;
    if (word_eq(s, kn, "next")) {
        unsigned i = 0;
        struct next_spec ns;
        while (i < HV_NEXT_MAX && cfg->next[i][0])
            i++;
        if (!vn) { /* "next=" empties the list */
            for (i = 0; i < HV_NEXT_MAX; i++)
                cfg->next[i][0] = 0;
            return 0;
        }
        if (i == HV_NEXT_MAX)
            return BAD("too many next= lines (at most 4 candidates)");
        if (!copy_str(cfg->next[i], sizeof(cfg->next[i]), v, vn, 1))
            return BAD("bad path (ASCII, shorter than 256)");
        if (!next_spec_parse(cfg->next[i], &ns)) {
            cfg->next[i][0] = 0;
            return BAD("bad next= (a path, label:LABEL:\\path or guid:PARTITION-GUID:\\path)");
        }
        return 0;
    }
    if (word_eq(s, kn, "guest_log")) {
        if (word_eq(v, vn, "any"))
            return cfg->guest_log = HV_GUEST_LOG_ANY, 0;
        if (word_eq(v, vn, "kernel"))
            return cfg->guest_log = HV_GUEST_LOG_KERNEL, 0;
        if (word_eq(v, vn, "off"))
            return cfg->guest_log = HV_GUEST_LOG_OFF, 0;
        return BAD("bad value for guest_log (any, kernel, off)");
    }
    if (word_eq(s, kn, "log_prefix")) {
        for (size_t i = 0; i < vn; i++)
            if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') ||
                  v[i] == '-' || v[i] == '_' || v[i] == '.'))
                return BAD("bad log_prefix (1-15 letters, digits, '-', '_', '.')");
        return vn && copy_str(cfg->log_prefix, sizeof(cfg->log_prefix), v, vn, 0)
                   ? 0
                   : BAD("bad log_prefix (1-15 letters, digits, '-', '_', '.')");
    }
    /* The names are checked by the core (nested/caps_hide.c), which logs any it does not know. */
    if (word_eq(s, kn, "l1_vmx_hide"))
        return copy_str(cfg->l1_vmx_hide, sizeof(cfg->l1_vmx_hide), v, vn, 0)
                   ? 0
                   : BAD("bad l1_vmx_hide (a list of feature names, ASCII, shorter than 256)");
    if (word_eq(s, kn, "args"))
        return copy_str(cfg->args, sizeof(cfg->args), v, vn, 0) ? 0 : BAD("bad args (ASCII, shorter than 512)");
    if (word_eq(s, kn, "serial"))
        return parse_port(v, vn, &cfg->serial_port) ? 0 : BAD("bad serial port (com1..com4, 0xNNN or off)");
    if (word_eq(s, kn, "nested"))
        return parse_bool(v, vn, &cfg->nested) ? 0 : BAD("bad value for nested (on/off)");
    if (word_eq(s, kn, "vmx"))
        return parse_bool(v, vn, &cfg->vmx) ? 0 : BAD("bad value for vmx (on/off)");
    if (word_eq(s, kn, "vmcs_shadowing"))
        return parse_bool(v, vn, &cfg->shadow) ? 0 : BAD("bad value for vmcs_shadowing (on/off)");
    if (word_eq(s, kn, "on_fatal")) {
        if (word_eq(v, vn, "halt"))
            return cfg->on_fatal = HV_ON_FATAL_HALT, 0;
        if (word_eq(v, vn, "reset"))
            return cfg->on_fatal = HV_ON_FATAL_RESET, 0;
        return BAD("bad value for on_fatal (halt, reset)");
    }
    if (word_eq(s, kn, "dma_protect"))
        return parse_bool(v, vn, &cfg->dma_protect) ? 0 : BAD("bad value for dma_protect (on/off)");
    if (word_eq(s, kn, "test_hooks"))
        return parse_bool(v, vn, &cfg->test_hooks) ? 0 : BAD("bad value for test_hooks (on/off)");
    if (word_eq(s, kn, "log")) {
        static const char *const lv[] = {"error", "warn", "info", "debug"};
        for (uint8_t i = 0; i < 4; i++)
            if (word_eq(v, vn, lv[i]))
                return cfg->log_level = i, 0;
        return BAD("bad log level (error, warn, info, debug)");
    }
    return BAD("unknown key");
#undef BAD
}

static int hex_digit(char c)
{
    c = lower(c);
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" as in the GPT entry: the first three fields are stored
 * little-endian, the last two byte by byte (UEFI spec, appendix A, EFI GUID format). */
int guid_parse(const char *s, size_t n, uint8_t out[16])
{
    static const unsigned char order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    unsigned b = 0;
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-')
                return 0;
            continue;
        }
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[order[b++]] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return b == 16;
}

int next_spec_parse(const char *s, struct next_spec *ns)
{
    size_t c1 = 0, c2;
    while (s[c1] && s[c1] != ':')
        c1++;
    ns->kind = NEXT_PATH;
    ns->key[0] = 0;
    ns->path = s;
    if (!s[c1])
        return s[0] != 0;
    for (c2 = c1 + 1; s[c2] && s[c2] != ':'; c2++)
        ;
    if (!s[c2] || s[c2 + 1] != '\\' || c2 - c1 - 1 == 0 || c2 - c1 - 1 >= sizeof(ns->key))
        return 0; /* another volume's path is absolute: there is no "hv's directory" there */
    if (word_eq(s, c1, "label"))
        ns->kind = NEXT_LABEL;
    else if (word_eq(s, c1, "guid") || word_eq(s, c1, "partuuid")) {
        ns->kind = NEXT_GUID;
        if (!guid_parse(s + c1 + 1, c2 - c1 - 1, ns->guid))
            return 0;
    } else
        return 0;
    for (size_t i = c1 + 1; i < c2; i++)
        ns->key[i - c1 - 1] = s[i];
    ns->key[c2 - c1 - 1] = 0;
    ns->path = s + c2 + 1;
    return 1;
}

unsigned config_parse(struct hv_config *cfg, const char *text, size_t len, config_diag_fn diag, void *ctx)
{
    unsigned problems = 0, no = 1;
    size_t start = 0;
    /* A UTF-8 byte order mark, as Windows editors write it, is not part of the first key. */
    if (len >= 3 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb && (unsigned char)text[2] == 0xbf)
        start = 3;
    for (size_t i = start; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            problems += parse_line(cfg, no++, text + start, i - start, diag, ctx);
            start = i + 1;
        } else if (text[i] == 0) {
            return problems + (diag ? diag(ctx, no, "NUL byte: file is not text", "", 0), 1u : 1u);
        }
    }
    return problems;
}
