/* The DMAR parser: well-formed tables (QEMU's, a client's with RMRRs) and malformed ones. */
#include <string.h>
#include "hv/dmar.h"
#include "test_util.h"

static uint8_t tb[512];
static size_t tl;

static void put(const void *p, size_t n) { memcpy(tb + tl, p, n), tl += n; }
static void put8(uint8_t v) { put(&v, 1); }
static void put16(uint16_t v) { put(&v, 2); }
static void put64(uint64_t v) { put(&v, 8); }

static void begin(uint8_t haw_minus_1, uint8_t flags)
{
    memset(tb, 0, sizeof(tb));
    tl = 0;
    put("DMAR", 4);
    tl = 36;
    put8(haw_minus_1);
    put8(flags);
    tl = 48;
}

static void finish(void)
{
    uint32_t len = (uint32_t)tl;
    memcpy(tb + 4, &len, 4);
    tb[9] = 0;
    uint8_t s = 0;
    for (size_t i = 0; i < tl; i++)
        s = (uint8_t)(s + tb[i]);
    tb[9] = (uint8_t)-s;
}

static void scope(uint8_t type, uint8_t id, uint8_t bus, uint8_t dev, uint8_t fn)
{
    put8(type), put8(8), put16(0), put8(id), put8(bus), put8(dev), put8(fn);
}

static void drhd(uint8_t flags, uint8_t size, uint64_t base, unsigned nscopes)
{
    put16(0), put16((uint16_t)(16 + 8 * nscopes)), put8(flags), put8(size), put16(0), put64(base);
}

static void rmrr(uint64_t base, uint64_t limit, unsigned nscopes)
{
    put16(1), put16((uint16_t)(24 + 8 * nscopes)), put16(0), put16(0), put64(base), put64(limit);
}

static int parse(struct dmar_info *d, const char **why) { return dmar_parse(tb, tl, d, why); }

static void expect_refused(const char *what, const char *want_why)
{
    struct dmar_info d;
    const char *why;
    int rc = parse(&d, &why);
    CHECK(rc == -1, "%s: refused (rc %d)", what, rc);
    CHECK(strstr(why, want_why) != NULL, "%s: why '%s', want '%s'", what, why, want_why);
}

static void qemu_like(void)
{
    begin(38, 1); /* HAW 39, INTR_REMAP */
    drhd(1, 0, 0xfed90000, 1);
    scope(DMAR_SCOPE_IOAPIC, 0, 0xff, 0, 0);
    finish();
}

int main(void)
{
    struct dmar_info d;
    const char *why;

    qemu_like();
    CHECK(parse(&d, &why) == 0, "QEMU's table parses: %s", why);
    CHECK(d.haw == 39 && d.flags == 1, "haw %u flags %u", d.haw, d.flags);
    CHECK(d.nunits == 1 && d.units[0].base == 0xfed90000 && d.units[0].include_all, "one INCLUDE_PCI_ALL unit");
    CHECK(d.units[0].reg_size == 4096, "register set of 1 page: %u", d.units[0].reg_size);
    CHECK(d.units[0].nscopes == 1 && d.units[0].scopes[0].type == DMAR_SCOPE_IOAPIC, "the IOAPIC scope");
    CHECK(d.nrmrr == 0 && d.unknown == 0, "no RMRR, nothing unknown");

    /* A client: a GPU unit with an endpoint, the rest unit, two RMRRs, an ATSR and a type from the future. */
    begin(45, 5);
    drhd(0, 0, 0xfed90000, 1);
    scope(DMAR_SCOPE_ENDPOINT, 0, 0, 2, 0);
    drhd(1, 1, 0xfed91000, 2); /* 2 pages of registers */
    scope(DMAR_SCOPE_IOAPIC, 2, 0xf0, 0x1f, 0);
    scope(DMAR_SCOPE_HPET, 0, 0xf0, 0x0f, 0);
    rmrr(0x3e2e0000, 0x3e2fffff, 2);
    scope(DMAR_SCOPE_ENDPOINT, 0, 0, 0x14, 0);
    scope(DMAR_SCOPE_ENDPOINT, 0, 0, 0x1a, 0);
    rmrr(0x7b800000, 0x7fffffff, 1);
    scope(DMAR_SCOPE_ENDPOINT, 0, 0, 2, 0);
    put16(2), put16(8), put8(0), put8(0), put16(0); /* ATSR, no scopes */
    put16(0x77), put16(12), put64(0);               /* unknown type */
    finish();
    CHECK(parse(&d, &why) == 0, "client table parses: %s", why);
    CHECK(d.haw == 46 && d.nunits == 2 && d.nrmrr == 2 && d.unknown == 2, "haw %u units %u rmrr %u unknown %u", d.haw,
          d.nunits, d.nrmrr, d.unknown);
    CHECK(!d.units[0].include_all && d.units[0].scopes[0].type == DMAR_SCOPE_ENDPOINT && d.units[0].scopes[0].dev == 2,
          "GPU unit: endpoint 00:02.0");
    CHECK(d.units[1].reg_size == 8192 && d.units[1].nscopes == 2, "second unit: 2 pages, 2 scopes");
    CHECK(d.rmrr[0].base == 0x3e2e0000 && d.rmrr[0].limit == 0x3e2fffff && d.rmrr[0].nscopes == 2 &&
              d.rmrr[0].scope.dev == 0x14,
          "USB RMRR: range and first device");
    CHECK(d.rmrr[1].base == 0x7b800000 && d.rmrr[1].scope.dev == 2, "GPU stolen memory RMRR");

    /* A path of depth 2 (behind a bridge): the device is the last element. */
    begin(38, 0);
    put16(0), put16(16 + 10), put8(0), put8(0), put16(0), put64(0xfed90000);
    put8(DMAR_SCOPE_ENDPOINT), put8(10), put16(0), put8(0), put8(0), put8(0x1c), put8(0), put8(0), put8(3);
    finish();
    CHECK(parse(&d, &why) == 0 && d.units[0].scopes[0].depth == 2 && d.units[0].scopes[0].dev == 0 &&
              d.units[0].scopes[0].fn == 3,
          "path of 2: the device is the last element (%s)", why);

    /* Hiding: the signature changes, the sum stays 0, and it parses no more; unhide restores it. */
    qemu_like();
    dmar_hide(tb);
    uint8_t s = 0;
    for (size_t i = 0; i < tl; i++)
        s = (uint8_t)(s + tb[i]);
    CHECK(!memcmp(tb, "HVDM", 4) && s == 0, "hidden: HVDM, checksum still right");
    expect_refused("hidden table", "signature");
    dmar_unhide(tb);
    CHECK(parse(&d, &why) == 0, "unhidden: parses again (%s)", why);

    /* Malformed tables. */
    qemu_like();
    CHECK(dmar_parse(tb, 40, &d, &why) == -1 && strstr(why, "header"), "shorter than the header");
    CHECK(dmar_parse(tb, tl - 1, &d, &why) == -1 && strstr(why, "length"), "length beyond what is readable");
    tb[4] = 20;
    expect_refused("length below the header", "length");
    qemu_like();
    tb[40] ^= 1;
    expect_refused("one byte changed", "checksum");

    begin(38, 0);
    finish();
    expect_refused("zero units", "no remapping unit");
    begin(38, 0);
    rmrr(0x100000, 0x1fffff, 0);
    finish();
    expect_refused("an RMRR but no unit", "no remapping unit");

    begin(38, 0);
    put16(0), put16(12), put8(0), put8(0), put16(0), put(&(uint32_t){0xfed90000}, 4);
    finish();
    expect_refused("DRHD of 12 bytes", "DRHD shorter");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    put16(0), put16(3);
    finish();
    expect_refused("structure length 3", "length invalid");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    put16(0);
    finish();
    expect_refused("2 bytes left at the end", "truncated");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    tb[tl - 14] = 64; /* the DRHD's length runs past the table */
    finish();
    expect_refused("DRHD longer than the table", "length invalid");
    begin(38, 0);
    put16(0), put16(16 + 4), put8(0), put8(0), put16(0), put64(0xfed90000), put16(0x0801), put16(0);
    finish();
    expect_refused("device scope of 4 bytes", "device scope truncated");
    begin(38, 0);
    drhd(0, 0, 0xfed90000, 1);
    scope(DMAR_SCOPE_ENDPOINT, 0, 0, 2, 0);
    tb[tl - 7] = 7; /* odd length */
    finish();
    expect_refused("device scope of odd length", "device scope length");
    begin(38, 0);
    drhd(0, 0, 0xfed90000, 1);
    scope(DMAR_SCOPE_ENDPOINT, 0, 0, 2, 0);
    tb[tl - 7] = 16; /* past the DRHD */
    finish();
    expect_refused("device scope past its DRHD", "device scope length");
    begin(38, 0);
    drhd(1, 0, 0xfed90800, 0);
    finish();
    expect_refused("unaligned register base", "aligned");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    rmrr(0x100000, 0x100ffe, 0);
    finish();
    expect_refused("RMRR limit not at a page end", "RMRR range");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    rmrr(0x200000, 0xfffff, 0);
    finish();
    expect_refused("RMRR limit below its base", "RMRR range");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    put16(1), put16(20), put16(0), put16(0), put64(0x100000), put(&(uint32_t){0}, 4);
    finish();
    expect_refused("RMRR of 20 bytes", "RMRR shorter");
    begin(38, 0);
    for (int i = 0; i < 9; i++)
        drhd(0, 0, 0xfed90000 + 0x1000 * (uint64_t)i, 0);
    finish();
    expect_refused("9 units", "more remapping units");
    begin(38, 0);
    drhd(1, 0, 0xfed90000, 0);
    memcpy(tb, "DMAX", 4);
    finish();
    expect_refused("another signature", "signature");
    return test_summary();
}
