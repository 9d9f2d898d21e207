/* DMAR parser (VT-d spec 8.1-8.4). Every structure is bounds-checked against its parent:
 * a table the firmware got wrong is refused whole, never half-used. */
#include "dmar.h"
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

enum { DMAR_DRHD = 0, DMAR_RMRR = 1 };
#define DMAR_HDR 48   /* ACPI header (36), host address width, flags, 10 reserved */
#define DRHD_FIXED 16 /* type, length, flags, size, segment, register base */
#define RMRR_FIXED 24 /* type, length, reserved, segment, base, limit */

/* The device scopes in [p, end): each at least 6 bytes plus 2 per path element. */
static int parse_scopes(const uint8_t *p, const uint8_t *end, struct dmar_scope *keep, unsigned max,
                        unsigned *nkept, unsigned *total, const char **why)
{
    *nkept = *total = 0;
    while (p < end) {
        if (end - p < 6) {
            *why = "device scope truncated";
            return -1;
        }
        uint8_t len = p[1];
        if (len < 6 || (len - 6) % 2 || len > end - p) {
            *why = "device scope length invalid";
            return -1;
        }
        if (*nkept < max) {
            struct dmar_scope *s = &keep[(*nkept)++];
            s->type = p[0];
            s->enum_id = p[4];
            s->bus = p[5];
            s->depth = (uint8_t)((len - 6) / 2);
            s->dev = s->depth ? p[len - 2] : 0;
            s->fn = s->depth ? p[len - 1] : 0;
        }
        (*total)++;
        p += len;
    }
    return 0;
}

int dmar_parse(const uint8_t *t, size_t avail, struct dmar_info *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = "";
    if (avail < DMAR_HDR) {
        *why = "shorter than its header";
        return -1;
    }
    if (memcmp(t, "DMAR", 4)) {
        *why = "signature is not DMAR";
        return -1;
    }
    uint32_t len = rd32(t + 4);
    if (len < DMAR_HDR || len > avail) {
        *why = "table length invalid";
        return -1;
    }
    uint8_t sum = 0;
    for (uint32_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + t[i]);
    if (sum) {
        *why = "checksum wrong";
        return -1;
    }
    out->haw = (uint8_t)(t[36] + 1);
    out->flags = t[37];
    const uint8_t *p = t + DMAR_HDR, *end = t + len;
    while (p < end) {
        if (end - p < 4) {
            *why = "remapping structure truncated";
            return -1;
        }
        uint16_t type = rd16(p), slen = rd16(p + 2);
        if (slen < 4 || slen > end - p) {
            *why = "remapping structure length invalid";
            return -1;
        }
        unsigned kept, total;
        if (type == DMAR_DRHD) {
            if (slen < DRHD_FIXED) {
                *why = "DRHD shorter than 16 bytes";
                return -1;
            }
            if (out->nunits == DMAR_MAX_UNITS) {
                *why = "more remapping units than hv handles (8)";
                return -1;
            }
            struct dmar_unit *u = &out->units[out->nunits];
            u->include_all = p[4] & 1;
            u->reg_size = 4096u << (p[5] & 15);
            u->segment = rd16(p + 6);
            u->base = rd64(p + 8);
            if (!u->base || (u->base & 4095)) {
                *why = "DRHD register base not page aligned";
                return -1;
            }
            if (parse_scopes(p + DRHD_FIXED, p + slen, u->scopes, DMAR_MAX_SCOPES, &kept, &total, why))
                return -1;
            u->nscopes = (uint8_t)kept;
            u->scopes_total = (uint16_t)total;
            out->nunits++;
        } else if (type == DMAR_RMRR) {
            if (slen < RMRR_FIXED) {
                *why = "RMRR shorter than 24 bytes";
                return -1;
            }
            if (out->nrmrr == DMAR_MAX_RMRR) {
                *why = "more RMRRs than hv handles (16)";
                return -1;
            }
            struct dmar_rmrr *r = &out->rmrr[out->nrmrr];
            r->segment = rd16(p + 6);
            r->base = rd64(p + 8);
            r->limit = rd64(p + 16);
            /* 8.4: base 4 KiB aligned, limit + 1 4 KiB aligned. */
            if ((r->base & 4095) || ((r->limit + 1) & 4095) || r->limit < r->base) {
                *why = "RMRR range invalid";
                return -1;
            }
            if (parse_scopes(p + RMRR_FIXED, p + slen, &r->scope, 1, &kept, &total, why))
                return -1;
            r->nscopes = (uint8_t)(total > 255 ? 255 : total);
            out->nrmrr++;
        } else {
            out->unknown++; /* ATSR, RHSA, ANDD, SATC, SIDP and later: nothing hv needs */
        }
        p += slen;
    }
    if (!out->nunits) {
        *why = "no remapping unit (DRHD)";
        return -1;
    }
    return 0;
}

static void resign(uint8_t *t, const char *sig)
{
    uint8_t delta = 0;
    for (int i = 0; i < 4; i++) {
        delta = (uint8_t)(delta + t[i] - (uint8_t)sig[i]);
        t[i] = (uint8_t)sig[i];
    }
    t[9] = (uint8_t)(t[9] + delta);
}

void dmar_hide(uint8_t *t) { resign(t, "HVDM"); }
void dmar_unhide(uint8_t *t) { resign(t, "DMAR"); }
