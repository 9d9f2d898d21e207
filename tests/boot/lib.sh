# Shared by the boot tests: disk images, QEMU and Bochs runs, log assertions.
# A test's files live in build/tests/<name>/: disk.img, serial.log, bochs.log.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=$ROOT/build
BOCHS=$B/bochs/bin/bochs
OVMF=/usr/share/ovmf/OVMF.fd
PASS=0 FAIL=0
FATAL_RE='^[A-Za-z0-9_.-]{1,15}: FATAL: ' # hv's, whatever its log_prefix=

# mkdisk DIR CFG_TEXT [SRC:DEST ...]  — raw FAT16 "superfloppy" ESP with hv as BOOTX64.EFI
mkdisk() {
    local dir=$1 cfg=$2; shift 2
    mkdir -p "$dir"
    rm -f "$dir/disk.img" "$dir/disk.img.lock"
    dd if=/dev/zero of="$dir/disk.img" bs=1M count=32 status=none
    mkfs.fat -F 16 -n HVTEST "$dir/disk.img" >/dev/null
    mmd -i "$dir/disk.img" ::/EFI ::/EFI/BOOT ::/EFI/hv
    mcopy -i "$dir/disk.img" "$B/hv.efi" ::/EFI/BOOT/BOOTX64.EFI
    if [ -n "$cfg" ]; then
        printf '%s' "$cfg" >"$dir/hv.cfg"
        mcopy -i "$dir/disk.img" "$dir/hv.cfg" ::/EFI/BOOT/hv.cfg
    fi
    local f
    for f in "$@"; do mcopy -i "$dir/disk.img" "${f%%:*}" "::${f#*:}"; done
}

# run_qemu DIR TIMEOUT [CPUS] — TCG (no VMX here); ends when the guest powers off.
# DIR/disk2.img, when there, is a second disk (booted after the first).
run_qemu() {
    local dir=$1 t=$2 d2=()
    : >"$dir/serial.log"
    [ -f "$dir/disk2.img" ] && d2=(-drive file="$dir/disk2.img",format=raw,if=none,id=d2 -device ide-hd,drive=d2,bus=ide.1,bootindex=1)
    timeout --foreground -k 5 "$t" qemu-system-x86_64 -machine q35 -m 256 -bios "$OVMF" \
        -drive file="$dir/disk.img",format=raw,if=none,id=d1 -device ide-hd,drive=d1,bus=ide.0,bootindex=0 "${d2[@]}" \
        -display none -serial file:"$dir/serial.log" \
        -monitor none -no-reboot -net none -smp "${3:-1}" >"$dir/qemu.out" 2>&1
    echo $? >"$dir/rc"
}

# run_bochs DIR CPUS TIMEOUT — Bochs 3.0 with VMX; ends at ACPI soft power off, at the hard
# timeout, or as soon as hv reports a fatal error: a "hv: FATAL: " line (or "<log_prefix>: FATAL: "
# of an hv with log_prefix=, such as the inner hv of tests/hvhv), then the report's
# last line (the one naming on_fatal=) or 10 s. Writes DIR/rc, DIR/elapsed (seconds) and,
# after a fatal error, DIR/fatal; prints the log's tail then.
run_bochs() {
    local dir=$1 cpus=$2 t=$3
    : >"$dir/serial.log"
    rm -f "$dir/disk.img.lock" "$dir/disk2.img.lock" "$dir/fatal"
    cat >"$dir/bochsrc" <<EOC
megs: ${BOCHS_MEGS:-256}
cpu: model=corei7_skylake_x, count=$cpus, ips=200000000
romimage: file=$OVMF, address=0xffe00000
vgaromimage: file=/usr/share/vgabios/vgabios.bin
display_library: nogui
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=disk, path=$dir/disk.img, mode=flat
$([ -f "$dir/disk2.img" ] && echo "ata0-slave: type=disk, path=$dir/disk2.img, mode=flat")
boot: disk
com1: enabled=1, mode=file, dev=$dir/serial.log
port_e9_hack: enabled=1
log: $dir/bochs.log
panic: action=fatal
error: action=report
info: action=ignore
clock: sync=none, time0=local
EOC
    local start now fatal_at="" pid rc
    start=$(date +%s%N)
    (cd "$dir" && exec timeout --foreground -k 5 "$t" "$BOCHS" -q -f "$dir/bochsrc" </dev/null >"$dir/bochs.out" 2>&1) &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.5
        now=$(date +%s%N)
        if [ -z "$fatal_at" ] && grep -qaE "$FATAL_RE" "$dir/serial.log"; then fatal_at=$now; fi
        if [ -n "$fatal_at" ] && { grep -qaE "$FATAL_RE.*on_fatal=" "$dir/serial.log" ||
                                   [ $((now - fatal_at)) -ge 10000000000 ]; }; then
            kill -TERM "$pid" 2>/dev/null
            break
        fi
    done
    wait "$pid"; rc=$?
    echo $rc >"$dir/rc"
    echo $(( ($(date +%s%N) - start) / 1000000000 )) >"$dir/elapsed"
    rm -f "$dir/disk.img.lock" "$dir/disk2.img.lock"
    if [ -n "$fatal_at" ]; then
        echo "fatal" >"$dir/fatal"
        echo "---- hv reported a fatal error: Bochs stopped after $(cat "$dir/elapsed") s (timeout $t s); tail of $dir/serial.log ----"
        local first
        first=$(grep -anE -m 1 "$FATAL_RE" "$dir/serial.log" | cut -d: -f1)
        tail -n +$((first > 3 ? first - 3 : 1)) "$dir/serial.log" | head -n 40 | tr -d '\r'
    fi
}

# expect NAME DIR REGEX DESCRIPTION — one assertion on the serial log
expect() {
    if tr -d '\r' <"$2/serial.log" 2>/dev/null | grep -qaE -- "$3"; then
        PASS=$((PASS + 1)); echo "  ok   $1: $4"
    else
        FAIL=$((FAIL + 1)); echo "  FAIL $1: $4 (no line matching /$3/ in $2/serial.log)"; FAILED_DIRS+=("$2")
    fi
}
expect_not() {
    if tr -d '\r' <"$2/serial.log" 2>/dev/null | grep -qaE -- "$3"; then
        FAIL=$((FAIL + 1)); echo "  FAIL $1: $4 (found: $(tr -d '\r' <"$2/serial.log" | grep -a -m1 -E -- "$3"))"
        FAILED_DIRS+=("$2")
    else
        PASS=$((PASS + 1)); echo "  ok   $1: $4"
    fi
}
FAILED_DIRS=()
show_failures() {
    local d
    for d in $(printf '%s\n' "${FAILED_DIRS[@]}" | sort -u); do
        echo "---- tail of $d/serial.log (exit status $(cat "$d/rc" 2>/dev/null)) ----"
        tail -n 40 "$d/serial.log" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g'
        [ -s "$d/bochs.log" ] && { echo "---- tail of $d/bochs.log ----"; tail -n 15 "$d/bochs.log"; }
    done
}
