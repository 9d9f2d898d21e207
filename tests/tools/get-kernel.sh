#!/bin/bash
# Fetch Debian's linux-image-amd64 kernel (not installed: unpacked under DIR) for
# `make test-linux`, and install what that test alone needs (cpio) when root.
# Usage: get-kernel.sh DIR  — leaves DIR/vmlinuz; cached behind DIR/stamp.
set -euo pipefail
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if ! command -v cpio >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "get-kernel: missing Debian package: cpio (run as root, or: sudo apt-get install cpio)" >&2
        exit 1
    fi
    echo "get-kernel: installing cpio"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cpio >/dev/null || {
        apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cpio >/dev/null; }
fi

# The stamp names the package file: a new Debian kernel means a new download.
if [ -f "$dir/stamp" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/$(cat "$dir/stamp")" ]; then
    touch "$dir/vmlinuz" # newer than this script: make need not ask again
    exit 0
fi
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$pkg" ]; then
    echo "get-kernel: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
echo "get-kernel: downloading $pkg"
cd "$dir"
rm -f "${pkg}"_*.deb
# apt-get download fails now and then on a stale mirror: retry once.
apt-get download "$pkg" >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null
deb=$(ls "${pkg}"_*.deb | head -1)
rm -rf root
dpkg-deb -x "$deb" root
cp root/boot/vmlinuz-* vmlinuz
rm -rf root # modules are not needed: the initramfs holds only /init
echo "$deb" >stamp
echo "get-kernel: $dir/vmlinuz from $deb ($(stat -c %s vmlinuz) bytes)"
