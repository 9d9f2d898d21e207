/* The core travels inside hv.efi XOR-scrambled, so no copy of it outside hv's hidden
 * memory (the file, the firmware's disk cache, the loaded hv.efi) shows its contents,
 * e.g. the canary. Not secrecy: just "no plain copy". Shared with the build tool. */
#ifndef BOOT_SCRAMBLE_H
#define BOOT_SCRAMBLE_H
#include <stdint.h>
#define HV_SCRAMBLE_SEED 0x9e3779b97f4a7c15ull
static inline uint8_t scramble_next(uint64_t *s)
{
    *s ^= *s << 13; /* xorshift64 */
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint8_t)(*s >> 24);
}
#endif
