#!/bin/bash
# mkgpt.sh IMG LABEL PARTUUID SRC:DEST... — a 64 MiB GPT disk image with one EFI System
# Partition (FAT32, file-system label LABEL, unique partition GUID PARTUUID or a random one),
# holding each SRC file at DEST ("build/hv.efi:/EFI/BOOT/BOOTX64.EFI"). No root, no loop mount:
# the FAT is made in a file of its own with mkfs.fat + mtools and copied into the partition.
set -euo pipefail
img=$1 label=$2 uuid=$3; shift 3
for t in sfdisk mkfs.fat mcopy; do
    command -v $t >/dev/null || { echo "mkgpt: $t missing (tests/tools/deps.sh build installs it)" >&2; exit 1; }
done
start=2048 sectors=126976 # 1 MiB alignment; 62 MiB ESP; the backup GPT needs the last 33 sectors
rm -f "$img" "$img.fat"
truncate -s 64M "$img"
sfdisk --quiet "$img" <<EOT
label: gpt
start=$start, size=$sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System Partition"${uuid:+, uuid=$uuid}
EOT
mkfs.fat -F 32 -s 1 -n "$label" -C "$img.fat" $((sectors / 2)) >/dev/null
dirs=()
for f in "$@"; do
    d=${f#*:}; d=${d%/*}
    while [ -n "$d" ]; do dirs+=("$d"); d=${d%/*}; done
done
if [ ${#dirs[@]} -gt 0 ]; then
    printf '%s\n' "${dirs[@]}" | sort -u | while read -r d; do mmd -i "$img.fat" "::$d"; done
fi
for f in "$@"; do mcopy -i "$img.fat" "${f%%:*}" "::${f#*:}"; done
dd if="$img.fat" of="$img" bs=512 seek=$start conv=notrunc,sparse status=none
rm -f "$img.fat"
