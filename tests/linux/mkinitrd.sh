#!/bin/bash
# Pack test-linux's initramfs: /init (static) and a /dev/console node, newc cpio; with
# KVMTEST and MODULES_DIR also /kvmtest and /lib/modules/*.ko (test-kvm's init mode).
# Usage: mkinitrd.sh INIT OUT [KVMTEST MODULES_DIR]
set -euo pipefail
init=$1 out=$2 kvmtest=${3:-} mods=${4:-}
stage=$(mktemp -d "${out%/*}/initrd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/dev" "$stage/proc" "$stage/sys"
install -m 0755 "$init" "$stage/init"
if [ -n "$kvmtest" ]; then
    install -m 0755 "$kvmtest" "$stage/kvmtest"
    mkdir -p "$stage/lib/modules"
    install -m 0644 "$mods"/*.ko "$stage/lib/modules/"
fi
# The kernel opens /dev/console for init before init runs: it must exist in the archive.
# mknod needs root; without it init falls back to mounting devtmpfs.
if [ "$(id -u)" = 0 ]; then mknod -m 0600 "$stage/dev/console" c 5 1
else echo "mkinitrd: not root: no /dev/console node (init mounts devtmpfs instead)" >&2; fi
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
echo "mkinitrd: $out ($(stat -c %s "$out") bytes)"
