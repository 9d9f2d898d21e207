#!/bin/bash
# Build Bochs 3.0 (Debian trixie's source) once into build/bochs, keyed on the
# tarball's hash. Debian 12's packaged Bochs 2.7 loses any virtualized CPU that
# receives INIT (see docs/testing.md), so VMX tests need this build.
set -euo pipefail
OUT=${1:-build/bochs}
SHA=78f6c73d4a6472d5130a87ab9dc306d02c7c71ed8e25b3a8ef642e2a7acd282b
TARBALL=bochs_3.0+dfsg.orig.tar.xz
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -x "$OUT/bin/bochs" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$SHA" ]; then
    exit 0
fi
cd "$OUT"
if ! echo "$SHA  $TARBALL" | sha256sum -c --status 2>/dev/null; then
    echo "build-bochs: fetching $TARBALL from Debian trixie's source package"
    mkdir -p apt/parts apt/lists/partial
    awk 'BEGIN{RS="";FS="\n"} NR==1{print}' /etc/apt/sources.list.d/debian.sources \
        | sed -e 's/^Types:.*/Types: deb-src/' -e 's/^Suites:.*/Suites: trixie/' \
        > apt/parts/trixie-src.sources
    OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$OUT/apt/parts"
          -o "Dir::State::Lists=$OUT/apt/lists")
    apt-get "${OPTS[@]}" update >apt/update.log 2>&1 || true
    # The .dsc may 404 (apt then exits non-zero) while the orig tarball arrives.
    apt-get "${OPTS[@]}" source --download-only bochs=3.0+dfsg-1 >apt/source.log 2>&1 || true
    if ! echo "$SHA  $TARBALL" | sha256sum -c --status; then
        echo "build-bochs: could not get $TARBALL with sha256 $SHA" >&2
        tail -5 apt/source.log >&2 || true
        exit 1
    fi
fi
rm -rf src && mkdir src
tar -xf "$TARBALL" -C src --strip-components=1
cd src
echo "build-bochs: configuring and building (about 2 minutes)"
./configure --prefix="$OUT" --with-nogui --enable-x86-64 --enable-vmx=2 --enable-smp \
    --enable-cpu-level=6 --enable-all-optimizations --enable-avx --enable-evex --enable-pci \
    --enable-a20-pin --enable-fpu --enable-cdrom --enable-memtype --enable-protection-keys \
    --enable-cet --enable-usb --enable-repeat-speedups --disable-debugger --disable-docbook \
    >../configure.log 2>&1
make -j"$(nproc)" >../make.log 2>&1 || { tail -30 ../make.log >&2; exit 1; }
make install >../install.log 2>&1 || { tail -30 ../install.log >&2; exit 1; }
echo "$SHA" > "$OUT/stamp"
echo "build-bochs: built $OUT/bin/bochs"
