#!/bin/bash
# Build newlib's libc for hv's freestanding core, once, into $OUT behind a stamp
# keyed on the tarball and the flags. The core never touches SSE state (it
# belongs to the guest), so libc is built with -mgeneral-regs-only; the ~10
# files that need `double` (strtod, dtoa, ...) cannot build that way and are
# skipped with make -k: nothing in hv uses them.
set -euo pipefail
OUT=${1:-build/newlib}
TARBALL=$(ls /usr/src/newlib/newlib-*.tar.* 2>/dev/null | head -1)
[ -n "$TARBALL" ] || { echo "build-newlib: no tarball under /usr/src/newlib (apt-get install newlib-source)" >&2; exit 1; }
GCCINC=$(gcc -print-file-name=include)
CFLAGS_T="-O2 -g -fpie -mgeneral-regs-only -mno-red-zone -fno-stack-protector -ffunction-sections -fdata-sections -nostdinc -idirafter $GCCINC"
CONF="--target=x86_64-elf --disable-multilib --disable-nls --disable-newlib-supplied-syscalls --disable-newlib-io-float --enable-newlib-io-c99-formats --enable-newlib-io-long-long --enable-newlib-nano-malloc --disable-newlib-multithread"
KEY=$( (sha256sum <"$TARBALL"; sha256sum <"$0"; echo "$CFLAGS_T $CONF") | sha256sum | cut -c1-16)
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
if [ -f "$OUT/install/x86_64-elf/lib/libc.a" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$KEY" ]; then exit 0; fi
echo "build-newlib: building libc from $TARBALL (about 2 minutes)"
rm -rf "$OUT/src" "$OUT/obj" "$OUT/install"; mkdir -p "$OUT/src" "$OUT/obj"
tar -xf "$TARBALL" -C "$OUT/src" --strip-components=1
cd "$OUT/obj"
export CC_FOR_TARGET="gcc" CFLAGS_FOR_TARGET="$CFLAGS_T"
for t in AR AS LD NM OBJCOPY OBJDUMP RANLIB READELF STRIP; do
    lc=$(echo $t | tr A-Z a-z); export ${t}_FOR_TARGET=$lc
done
"$OUT/src/configure" --prefix="$OUT/install" $CONF >configure.log 2>&1
# Files that need SSE/x87 fail to compile; replace each failed object by an
# empty one so the directory's archive still forms, then build again.
for pass in 1 2 3 4; do
    if make -k -j"$(nproc)" all-target-newlib >make.log 2>&1; then break; fi
    grep -o '\*\*\* \[[^]]*: [^]]*\.o\] Error' make.log | sed 's/.*: \([^]]*\.o\)\].*/\1/' | sort -u >failed.txt
    [ -s failed.txt ] || break
    while read -r o; do
        for d in $(grep -l "$o" $(find x86_64-elf/newlib -name Makefile) | xargs -n1 dirname); do
            [ -f "$d/$o" ] || echo "" | gcc -c -x c - -o "$d/$o"
        done
    done <failed.txt
done
make -k install-target-newlib >install.log 2>&1 || true
[ -f "$OUT/install/x86_64-elf/lib/libc.a" ] || { echo "build-newlib: libc.a was not built; see $OUT/obj/make.log" >&2; tail -20 make.log >&2; exit 1; }
echo "$KEY" > "$OUT/stamp"
echo "build-newlib: $OUT/install/x86_64-elf/lib/libc.a"
