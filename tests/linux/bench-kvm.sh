#!/bin/bash
# `make bench-kvm`: figures, not a test. KVM as L1 and Linux's boot, under hv vs bare Bochs,
# in TSC ticks (Bochs: about one tick per instruction, so repeatable path lengths).
# Boots test-kvm's two runs (tests/linux/test-kvm.sh: same kernel, initramfs and fixture) with
# 1 CPU, one after the other, into build/kvm-bench (reused while newer than hv.efi, the fixture
# and the initramfs). One CPU because Bochs's SMP clock is not one tick per instruction: with N
# CPUs it advances by the mean of the instructions each CPU ran in its turn (one trace), a halted
# CPU counting as 16 (Bochs main.cc), so a 2-instruction guest loop took 9 ticks an iteration
# with the other CPU idle, fewer when it was busy: the figures measured the other CPU.
#  - "kvmbench: io": 1000 OUTs of a KVM guest, each a round trip guest -> kvm_intel ->
#    kvmtest (KVM_EXIT_IO) -> KVM_RUN -> guest, timed by kvmtest (tests/linux/kvmtest.c);
#  - "kvmbench: cpu": a guest loop of 10M iterations without exits;
#  - Linux's boot: "acpi-fixture: starting kernel ... at tsc N" to "init: tsc N";
#  - under hv (test_hooks=on), hv's exit statistics at the fixture's start of the kernel, at
#    /init's start and around the timed I/O loop: their differences by exit reason.
# Env: BENCH_REUSE=1 (report on the logs there, never boot), BENCH_DIR (default build/kvm-bench).
# Output: build/kvm-bench/bench.txt too.
source "$(dirname "$0")/../boot/lib.sh"
T=${BENCH_DIR:-$B/kvm-bench}
fresh() { # the run's log is newer than everything the boot is made of
    local f
    grep -qa 'kvmbench: io' "$T/$1/serial.log" 2>/dev/null || return 1
    for f in "$B/hv.efi" "$B/acpi_fixture.efi" "$B/linux/initrd.img" "$B/linux/vmlinuz"; do
        [ "$T/$1/serial.log" -nt "$f" ] || return 1
    done
}
if [ -z "$BENCH_REUSE" ] && { ! fresh bare || ! fresh hv; }; then
    echo "bench-kvm: booting test-kvm's two runs (bare Bochs, then hv), 1 CPU each, into $T"
    # test-kvm's checks of a 2-CPU run (the SMP guests on cpu1) do not apply: only its timing line
    KVM_SEQUENTIAL=1 KVM_CPUS=1 KVM_DIR=$T "$(dirname "$0")/test-kvm.sh" | grep -a 'both runs ended'
else
    echo "bench-kvm: reusing the logs in $T (newer than hv.efi, the fixture and the initramfs)"
fi
log() { tr -d '\r' <"$T/$1/serial.log" 2>/dev/null | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'; }
field() { # RUN REGEX SED: the first match, through SED
    log "$1" | grep -a -m1 -E "$2" | sed -nE "$3"
}
calc() { echo "scale=${2:-3}; $1" | bc 2>/dev/null | sed -E 's/^(-?)\./\10./'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && calc "$2 / $1"; }

# hv's statistics blocks as "BLOCK<TAB>CPU<TAB>KEY<TAB>COUNT" (BLOCK counts from 1, in log order).
stats_tsv() {
    log hv | grep -a 'hv: stats: ' | sed 's/.*hv: stats: //' | awk -F'\t' '
        function num(s, pat, t) { # the number before PAT in S, "" if none
            if (!match(s, "[0-9]+" pat)) return ""
            t = substr(s, RSTART, RLENGTH); sub(/[^0-9].*/, "", t); return t }
        function put(cpu, key, n) { if (n != "") print b "\t" cpu "\t" key "\t" n }
        /^exit statistics \(/ { b++; next }
        /^cpu[0-9]+: [0-9]+ exits,/ {
            cpu = $0; sub(/:.*/, "", cpu)
            put(cpu, "total", num($0, " exits"))
            next }
        /^cpu[0-9]+:   nested: / {
            cpu = $0; sub(/:.*/, "", cpu)
            put(cpu, "L2 entries (nested)", num($0, " VM entries into L2"))
            put(cpu, "L2 entries on the fast path (nested)", num($0, " on the fast path"))
            put(cpu, "exits while L2 ran (nested)", num($0, " exits while L2 ran"))
            put(cpu, "reflected to L1 (nested)", num($0, " reflected to L1"))
            next }
        /^cpu[0-9]+:   [A-Za-z]/ {
            cpu = $0; sub(/:.*/, "", cpu)
            rest = $0; sub(/^cpu[0-9]+:   /, "", rest)
            if (rest ~ /:/) next # INIT/SIPI:, EPT02 n:, ... (not by exit reason)
            n = split(rest, items, /, /)
            for (i = 1; i <= n; i++) {
                k = items[i]; c = k; sub(/ [0-9]+$/, "", k); sub(/.* /, "", c)
                if (c ~ /^[0-9]+$/) print b "\t" cpu "\t" k "\t" c
            } }'
}
# diff_stats TSV B0 B1 CPU DIV: per reason, (count in B1 - count in B0) / DIV, CPU "all" sums
# the CPUs; reasons that did not change are left out; most first.
diff_stats() {
    awk -F'\t' -v b0="$2" -v b1="$3" -v cpu="$4" -v div="$5" '
        ($2 == cpu || cpu == "all") && ($1 == b0 || $1 == b1) { d[$3] += ($1 == b1 ? $4 : -$4) }
        END { for (k in d) if (d[k] != 0) printf "%s\t%d\t%.3f\n", k, d[k], d[k] / div }' "$1" | sort -t$'\t' -k2,2nr
}

{
io_b=$(field bare 'kvmbench: io:' 's/.*, ([0-9]+) ticks per round trip.*/\1/p')
io_h=$(field hv 'kvmbench: io:' 's/.*, ([0-9]+) ticks per round trip.*/\1/p')
io_x=$(field hv 'kvmbench: io:' 's/.*L0 exits [0-9]+ \(([0-9.]+) per round trip.*/\1/p')
cpu_b=$(field bare 'kvmbench: cpu:' 's/.*, ([0-9.]+) ticks per iteration.*/\1/p')
cpu_h=$(field hv 'kvmbench: cpu:' 's/.*, ([0-9.]+) ticks per iteration.*/\1/p')
cpu_x=$(field hv 'kvmbench: cpu:' 's/.*L0 exits ([0-9]+) .*/\1/p')
fx_b=$(field bare 'acpi-fixture: starting kernel .* at tsc' 's/.* at tsc ([0-9]+).*/\1/p')
fx_h=$(field hv 'acpi-fixture: starting kernel .* at tsc' 's/.* at tsc ([0-9]+).*/\1/p')
in_b=$(field bare 'init: tsc [0-9]+' 's/.*init: tsc ([0-9]+).*/\1/p')
in_h=$(field hv 'init: tsc [0-9]+' 's/.*init: tsc ([0-9]+).*/\1/p')
lx_b= lx_h=
[ -n "$fx_b" ] && [ -n "$in_b" ] && lx_b=$((in_b - fx_b))
[ -n "$fx_h" ] && [ -n "$in_h" ] && lx_h=$((in_h - fx_h))
echo "bench-kvm: figure                                | bare Bochs   | under hv     | hv/bare"
printf 'bench-kvm: %-38s | %12s | %12s | %s\n' \
    "KVM guest I/O round trip (ticks)" "${io_b:-?}" "${io_h:-?}" "$(ratio "$io_b" "$io_h")" \
    "KVM guest loop, no exits (ticks/iter)" "${cpu_b:-?}" "${cpu_h:-?}" "$(ratio "$cpu_b" "$cpu_h")" \
    "Linux boot, fixture to /init (ticks)" "${lx_b:-?}" "${lx_h:-?}" "$(ratio "$lx_b" "$lx_h")" \
    "power-on to /init (ticks)" "${in_b:-?}" "${in_h:-?}" "$(ratio "$in_b" "$in_h")"
echo "bench-kvm: L0 exits per I/O round trip (hv's GET_EXITS around the loop): ${io_x:-?}; during the 10M-iteration loop: ${cpu_x:-?}"

S=$T/hv.stats.tsv
stats_tsv >"$S"
nb=$(cut -f1 "$S" | sort -n | uniq | tail -1)
# Blocks: 1 the fixture (before the kernel), 2 /init's start, 3 and 4 around the I/O loop, 5 power-off.
if [ "${nb:-0}" -ge 4 ]; then
    cpu=$(field hv 'kvmbench: io:' 's/.* on (cpu[0-9]+),.*/\1/p')
    echo "bench-kvm: hv's exits per I/O round trip on $cpu by reason (statistics around the 1000 round trips; VMCALL includes kvmtest's 3 hypercalls, 0.003):"
    diff_stats "$S" 3 4 "$cpu" 1000 | awk -F'\t' '{ printf "bench-kvm:   %-40s %8d  %7s per round trip\n", $1, $2, $3 }'
    echo "bench-kvm: hv's exits during Linux's boot (fixture's start of the kernel to /init's start, all CPUs):"
    diff_stats "$S" 1 2 all 1 | awk -F'\t' '{ printf "bench-kvm:   %-40s %8d\n", $1, $2 }'
    echo "bench-kvm: hv's exits before the kernel (firmware, hv's start, the fixture; all CPUs):"
    diff_stats "$S" 0 1 all 1 | awk -F'\t' '{ printf "bench-kvm:   %-40s %8d\n", $1, $2 }'
else
    echo "bench-kvm: hv's statistics blocks missing ($nb of 5; hv.cfg needs test_hooks=on): no breakdown"
fi
} | tee "$T/bench.txt"
