#!/bin/bash
# Install what hv's build and tests need on Debian 12, or name what is missing.
# Usage: deps.sh [build|test]
set -uo pipefail
want=${1:-test}
# package:file-or-command that proves it is installed
need=(gcc:gcc g++:g++ libc6-dev:/usr/include/stdio.h make:make binutils:objcopy gnu-efi:/usr/lib/crt0-efi-x86_64.o nasm:nasm
      newlib-source:/usr/src/newlib xz-utils:xz mtools:mcopy dosfstools:mkfs.fat fdisk:sfdisk)
if [ "$want" = test ]; then
    need+=(qemu-system-x86:qemu-system-x86_64 ovmf:/usr/share/ovmf/OVMF.fd vgabios:/usr/share/vgabios/vgabios.bin
           clang:clang libclang-rt-14-dev:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
           bc:bc)
fi
missing=()
for n in "${need[@]}"; do
    pkg=${n%%:*} probe=${n#*:}
    if [[ $probe == /* ]]; then [ -e "$probe" ] || missing+=("$pkg")
    else command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root, or: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
