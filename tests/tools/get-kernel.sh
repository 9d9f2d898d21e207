#!/bin/bash
# Fetch Debian's linux-image-amd64 kernel (not installed: unpacked under DIR) for
# `make test-linux`, and install what that test alone needs (cpio) when root.
# Usage: get-kernel.sh DIR  — leaves DIR/vmlinuz and DIR/modules/{irqbypass,kvm,kvm-intel}.ko
# (test-kvm's initramfs loads them); cached behind DIR/stamp.
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
KVM_MODULES="virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-intel.ko"
have_modules() { local m; for m in $KVM_MODULES; do [ -f "$dir/modules/${m##*/}" ] || return 1; done; }
if [ -f "$dir/stamp" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/$(cat "$dir/stamp")" ] && have_modules; then
    touch "$dir/vmlinuz" # newer than this script: make need not ask again
    exit 0
fi
# The package is cached but an older get-kernel.sh kept no modules: unpack it again.
if [ -f "$dir/stamp" ] && [ -f "$dir/$(cat "$dir/stamp")" ]; then
    pkg=$(cat "$dir/stamp"); pkg=${pkg%%_*}
else
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
fi
cd "$dir"
deb=$(ls "${pkg}"_*.deb | head -1)
rm -rf root
dpkg-deb -x "$deb" root
cp root/boot/vmlinuz-* vmlinuz
# KVM's modules (no modules.dep in the package: test-kvm's /init loads them in this order).
rm -rf modules && mkdir modules
for m in $KVM_MODULES; do cp root/lib/modules/*/kernel/$m modules/; done
rm -rf root
echo "$deb" >stamp
echo "get-kernel: $dir/vmlinuz from $deb ($(stat -c %s vmlinuz) bytes), modules: $(ls modules | tr '\n' ' ')"
