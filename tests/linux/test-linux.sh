#!/bin/bash
# test-linux: Debian's kernel as hv's next stage under Bochs 3.0 with 2 CPUs.
# hv -> acpi_fixture.efi (installs MADT/FADT/FACS/DSDT) -> vmlinuz (EFI stub) -> /init,
# which prints the CPU count and powers off through S5. Linux starts its AP with
# INIT-SIPI-SIPI while hv virtualizes both CPUs: that is the path under test.
# Usage: test-linux.sh [hv|nohv]  — nohv boots the fixture directly (a baseline).
# Env: LINUX_TIMEOUT (s, default 900), LINUX_DISK_MB (default 64), BOCHS_MEGS (default 512),
#      HV_EFI (default build/hv.efi), HV_LOG (hv's log= level, default debug: the SIPI lines
#      need it; info checks that Linux's AP bring-up does not depend on hv's logging).
# Logs: build/linux-test/<mode>/serial.log, bochs.log.
source "$(dirname "$0")/../boot/lib.sh"
mode=${1:-hv}
T=$B/linux-test
D=$T/$mode
TMO=${LINUX_TIMEOUT:-900}
export BOCHS_MEGS=${BOCHS_MEGS:-512}
HV_LOG=${HV_LOG:-debug}
KERNEL=$B/linux/vmlinuz INITRD=$B/linux/initrd.img FIXTURE=$B/acpi_fixture.efi HV_EFI=${HV_EFI:-$B/hv.efi}
KARGS='console=ttyS0 earlyprintk=serial,ttyS0,115200 initrd=\EFI\linux\initrd.img'
for f in "$KERNEL" "$INITRD" "$FIXTURE" "$HV_EFI" "$BOCHS"; do
    [ -f "$f" ] || { echo "test-linux: missing $f (run: make test-linux)"; echo "linux: 0 passed, 1 failed"; exit 1; }
done

# Like lib.sh's mkdisk, but sized for a kernel: LINUX_DISK_MB, FAT16.
mkdisk_linux() { # DIR BOOT_EFI [SRC:DEST ...]
    local dir=$1 boot=$2 f; shift 2
    mkdir -p "$dir"
    rm -f "$dir/disk.img" "$dir/disk.img.lock"
    dd if=/dev/zero of="$dir/disk.img" bs=1M count="${LINUX_DISK_MB:-64}" status=none
    mkfs.fat -F 16 -n HVLINUX "$dir/disk.img" >/dev/null
    mmd -i "$dir/disk.img" ::/EFI ::/EFI/BOOT ::/EFI/hv ::/EFI/linux
    mcopy -i "$dir/disk.img" "$boot" ::/EFI/BOOT/BOOTX64.EFI
    for f in "$@"; do mcopy -i "$dir/disk.img" "${f%%:*}" "::${f#*:}"; done
}

mkdir -p "$D"
files=("$KERNEL:/EFI/linux/vmlinuz" "$INITRD:/EFI/linux/initrd.img")
if [ "$mode" = nohv ]; then
    printf '%s\n' "\\EFI\\linux\\vmlinuz $KARGS" >"$D/linux.cmdline"
    mkdisk_linux "$D" "$FIXTURE" "${files[@]}" "$D/linux.cmdline:/EFI/hv/linux.cmdline"
else
    printf '%s\r\n' '# test-linux' 'next=\EFI\hv\acpi_fixture.efi' "args=\\EFI\\linux\\vmlinuz $KARGS" \
        "log=$HV_LOG" >"$D/hv.cfg"
    mkdisk_linux "$D" "$HV_EFI" "${files[@]}" "$FIXTURE:/EFI/hv/acpi_fixture.efi" "$D/hv.cfg:/EFI/BOOT/hv.cfg"
fi

# A panic, an hv error or a reset will not power off: end the run soon after instead of
# at the timeout. Bochs can also flood its log (seen: gigabytes in seconds after a reset).
STOP_RE='Kernel panic|hv: ERROR|triple fault'
watch_log() { # SUBSHELL_PID
    local sub=$1 why= p
    while kill -0 "$sub" 2>/dev/null; do
        sleep 5
        if tr -d '\r' <"$D/serial.log" 2>/dev/null | grep -qaE "$STOP_RE"; then
            why=$(tr -d '\r' <"$D/serial.log" | grep -aE -m1 "$STOP_RE")
            sleep 10 # let the rest of the report reach the log
        elif [ "$(tr -d '\r' <"$D/serial.log" 2>/dev/null | grep -ac 'BdsDxe: starting Boot')" -gt 1 ]; then
            why="the machine reset (firmware booted again)"
        elif [ "$(stat -c %s "$D/bochs.log" 2>/dev/null || echo 0)" -gt $((200 << 20)) ]; then
            why="bochs.log over 200 MiB"
        fi
        if [ -n "$why" ]; then
            for p in $(pgrep -P "$sub"); do kill "$p" 2>/dev/null; done
            echo "test-linux: stopped Bochs early: $why"
            return
        fi
    done
}
# Keep a flooded bochs.log readable: its head and tail.
trim_bochs_log() {
    local l=$D/bochs.log
    [ "$(stat -c %s "$l" 2>/dev/null || echo 0)" -gt $((8 << 20)) ] || return 0
    { head -n 3000 "$l"; echo "... (trimmed by test-linux.sh: $(stat -c %s "$l") bytes) ..."; tail -n 3000 "$l"; } >"$l.trim"
    mv "$l.trim" "$l"
}

echo "test-linux ($mode): booting Debian's $(cat "$B/linux/stamp" 2>/dev/null | sed 's/_amd64.deb//') under Bochs, 2 CPUs, timeout ${TMO}s"
start=$(date +%s)
run_bochs "$D" 2 "$TMO" 2>/dev/null & # quiet: "Terminated" when stopped early
bochs_sub=$!
watch_log "$bochs_sub" &
watcher=$!
wait "$bochs_sub"
kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
trim_bochs_log
secs=$(( $(date +%s) - start ))
rc=$(cat "$D/rc" 2>/dev/null)
echo "test-linux ($mode): Bochs ended after ${secs}s (exit status $rc)"

# Lines after Linux starts its APs only: earlier SIPIs come from OVMF (MP services, and
# its AP loop at ExitBootServices).
expect_after_smp() { # NAME REGEX DESCRIPTION
    local log
    log=$(tr -d '\r' <"$D/serial.log" 2>/dev/null | sed -n '/smp: Bringing up secondary CPUs/,$p')
    if grep -qaE -- "$2" <<<"$log"; then PASS=$((PASS + 1)); echo "  ok   $1: $3"
    else FAIL=$((FAIL + 1)); echo "  FAIL $1: $3 (no line matching /$2/ after Linux began to start its APs)"; FAILED_DIRS+=("$D"); fi
}

m=linux-$mode
if [ "$mode" != nohv ]; then
    expect "$m" "$D" '^hv: cpu0: VMXON ok, launching the firmware as guest' "hv virtualizes cpu0"
    expect "$m" "$D" '^hv: cpu1: VMXON ok, launching the firmware as guest' "hv virtualizes cpu1"
    expect "$m" "$D" '^hv: starting next stage .*acpi_fixture.efi' "hv starts the fixture"
fi
expect "$m" "$D" '^acpi-fixture: installed ACPI tables: FACS DSDT FADT MADT \(2 CPUs\)' "fixture installed the ACPI tables"
expect "$m" "$D" '^acpi-fixture: starting kernel .*vmlinuz' "fixture starts the kernel"
expect "$m" "$D" 'Command line: .*console=ttyS0' "kernel runs with the command line from args="
expect "$m" "$D" 'ACPI: (FACP|MADT|APIC) .*HVTEST' "kernel found the fixture's tables"
expect "$m" "$D" 'smp: Brought up 1 node, 2 CPUs' "Linux brought up both CPUs"
expect "$m" "$D" 'init: running' "init runs"
expect "$m" "$D" 'init: cpus online 2 \(sysconf 2\)' "init sees 2 CPUs"
expect "$m" "$D" 'init: powering off' "init powers off"
expect "$m" "$D" 'reboot: Power down' "Linux powers down (S5)"
if [ "$mode" != nohv ]; then
    if [ "$HV_LOG" = debug ]; then
        expect_after_smp "$m" 'hv: cpu1: SIPI vector 0x[0-9a-f]+' "hv starts cpu1 on Linux's SIPI"
    else echo "  skip $m: hv's INIT/SIPI lines (log=$HV_LOG; they are debug lines)"; fi
    expect "$m" "$D" 'hv: stats: exit statistics \(guest power-off\)' "hv's statistics at power-off"
    expect "$m" "$D" 'hv: stats: cpu1: [0-9]+ exits' "cpu1 statistics"
    expect "$m" "$D" 'hv: stats: cpu1: .*INIT [0-9]+' "hv emulated INIT for cpu1"
    expect "$m" "$D" 'hv: stats: cpu1: .*(SIPI [1-9]|INIT/SIPI: [1-9][0-9]* start\(s\) from a latched SIPI)' \
        "cpu1 started from the OS's SIPI (latched by hv, or a SIPI exit)"
    expect_not "$m" "$D" 'hv: ERROR' "no hv errors"
fi
expect_not "$m" "$D" 'Kernel panic' "no kernel panic"
# Bochs reports S5 as a "panic" (exit status 1): look for its message, not the status.
if grep -q 'ACPI control: soft power off' "$D/bochs.log" 2>/dev/null; then
    PASS=$((PASS + 1)); echo "  ok   $m: Bochs powered off (ACPI S5) before the timeout"
else FAIL=$((FAIL + 1)); echo "  FAIL $m: Bochs did not power off (exit status $rc: 124 timeout, 143 stopped early)"
    FAILED_DIRS+=("$D"); fi
show_failures
echo "test-linux ($mode): wall time ${secs}s"
echo "linux: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
