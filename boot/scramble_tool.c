/* Build-time tool: scramble the core image before it is embedded in hv.efi. */
#include <stdio.h>
#include "scramble.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s in out\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        perror("scramble");
        return 1;
    }
    uint64_t key = HV_SCRAMBLE_SEED;
    int c;
    while ((c = fgetc(in)) != EOF)
        fputc(c ^ scramble_next(&key), out);
    return fclose(out) != 0;
}
