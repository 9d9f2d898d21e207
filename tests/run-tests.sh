#!/bin/bash
# Everything CI checks: host unit tests (ASan/UBSan), the fuzzer, the boot tests and the
# nested differential test (the same L1 on bare Bochs and on hv), Linux on 2 CPUs under hv.
# Usage: run-tests.sh [unit|fuzz|boot|usb|events|dma|nested|hvhv|linux|kvm|all]. Ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
B=build
mkdir -p $B/host $B/tests
TOTAL_P=0 TOTAL_F=0

# name: sources under test (test_util.c and lib/log.c are always linked)
UNIT_TESTS=(
    "test_config: boot/config.c"
    "test_memmap: boot/memmap.c"
    "test_caps: vmx/caps.c"
    "test_lib: lib/pages.c boot/log.c lib/serial.c"
    "test_regcache: regcache/regcache.c tests/unit/fake_vmcs.c"
    "test_mtrr: vmx/mtrr.c"
    "test_ept: vmx/ept.c vmx/mtrr.c"
    "test_exits: hv/exit.c hv/fatal.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_exit_nmi: hv/exit.c hv/fatal.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_exit_cr_init: hv/exit.c hv/fatal.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_fatal: hv/exit.c hv/fatal.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_vmcs01: hv/vmcs01.c tests/unit/fake_vmcs.c"
    "test_exit_ept: hv/exit.c hv/fatal.c hv/exit_ept.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c vmx/ept.c vmx/mtrr.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_exit_io: hv/exit.c hv/fatal.c hv/exit_ept.c hv/exit_io.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c vmx/ept.c vmx/mtrr.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_apic: hv/exit.c hv/fatal.c hv/exit_ept.c hv/exit_io.c hv/exit_cpuid.c hv/exit_msr.c hv/apic.c hv/exit_cr.c hv/exit_misc.c hv/exit_init.c hv/stats.c regcache/regcache.c nested/caps.c nested/vmcs12.c nested/vpid.c vmx/ept.c vmx/mtrr.c tests/unit/fake_vmcs.c tests/unit/exits_harness.c"
    "test_vmcs12: nested/vmcs12.c"
    "test_nested_checks: nested/checks.c nested/caps.c nested/vmcs12.c nested/vpid.c tests/unit/vmcs12_samples.c"
    "test_nested_caps_msrs: nested/checks.c nested/caps.c nested/vmcs12.c nested/vpid.c tests/unit/vmcs12_samples.c"
    "test_nested_entry: nested/vmenter.c nested/vmenter_fast.c nested/vmexit.c nested/perf_global.c nested/apicv.c nested/insn.c nested/gva.c nested/shadow.c nested/vshadow.c nested/checks.c nested/caps.c nested/vmcs12.c nested/vpid.c nested/ept02.c nested/ept02_exit.c nested/ept02_roots.c nested/vmfunc.c regcache/regcache.c tests/unit/fake_vmcs.c tests/unit/vmcs12_samples.c"
    "test_dmar: hv/dmar.c"
    "test_vtd: hv/vtd.c"
    "test_ept02: nested/ept02.c nested/ept02_exit.c nested/ept02_roots.c nested/vmfunc.c nested/vmcs12.c nested/caps.c regcache/regcache.c tests/unit/fake_vmcs.c"
    "test_ept02_mbec: nested/ept02.c nested/ept02_exit.c nested/ept02_roots.c nested/vmfunc.c nested/vmcs12.c nested/caps.c nested/checks.c nested/vpid.c regcache/regcache.c tests/unit/fake_vmcs.c tests/unit/ept12_l1mem.c tests/unit/vmcs12_samples.c"
    "test_ept02_ad: nested/ept02.c nested/ept02_exit.c nested/ept02_roots.c nested/vmfunc.c nested/vmcs12.c nested/caps.c regcache/regcache.c tests/unit/fake_vmcs.c tests/unit/ept12_l1mem.c"
)
# nested/ on the fake VMCS with L1's RAM mapped at a fixed address (tests/unit/nested_harness.c)
NESTED_SRCS="nested/apicv.c nested/insn.c nested/gva.c nested/vmenter.c nested/vmenter_fast.c nested/vmexit.c nested/perf_global.c nested/shadow.c nested/vshadow.c nested/checks.c nested/caps.c nested/vmcs12.c nested/vpid.c nested/ept02.c nested/ept02_exit.c nested/ept02_roots.c nested/vmfunc.c regcache/regcache.c tests/unit/fake_vmcs.c tests/unit/vmcs12_samples.c tests/unit/nested_harness.c"
UNIT_TESTS+=(
    "test_nested_insn: $NESTED_SRCS"
    "test_nested_gva: $NESTED_SRCS"
    "test_nested_vmenter: $NESTED_SRCS"
    "test_nested_vmexit: $NESTED_SRCS"
    "test_nested_shadow: $NESTED_SRCS"
    "test_nested_vmenter_fast: $NESTED_SRCS"
    "test_nested_fast_changes: $NESTED_SRCS"
    "test_nested_caps: $NESTED_SRCS"
    "test_nested_vpid: $NESTED_SRCS"
    "test_nested_apicv: $NESTED_SRCS"
    "test_vshadow: $NESTED_SRCS"
    "test_nested_vmfunc: $NESTED_SRCS"
    "test_nested_caps_hide: nested/caps_hide.c nested/caps.c nested/vmcs12.c tests/unit/vmcs12_samples.c"
)
UNIT_TESTS+=("${EXTRA_UNIT_TESTS[@]}")

count() { # add the counts of the last "N passed, N failed" line of file $1; 1 failure if none
    local line
    line=$(grep -aE '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    if [ -z "$line" ]; then TOTAL_F=$((TOTAL_F + 1)); return 1; fi
    local p f
    p=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    f=$(sed -E 's/^([A-Za-z-]+: )?[0-9]+ passed, ([0-9]+) failed.*/\2/' <<<"$line") # the first count, not a later section's
    TOTAL_P=$((TOTAL_P + p)); TOTAL_F=$((TOTAL_F + f))
}

run_unit() {
    local t name srcs rc
    for t in "${UNIT_TESTS[@]}"; do
        name=${t%%:*} srcs=${t#*:}
        local missing="" f
        for f in tests/unit/$name.c $srcs; do [ -f "$f" ] || missing+=" $f"; done
        if [ -n "$missing" ]; then # a test the list names but cannot build is a failure, never a skip
            echo "unit $name: FAILED: missing file(s):$missing"
            TOTAL_F=$((TOTAL_F + 1)); continue
        fi
        if ! gcc -std=gnu11 -g -O1 -DHV_HOST_TEST -Wall -Wextra -Werror -Wno-unused-parameter \
                -fsanitize=address,undefined -fno-sanitize-recover=all -I. -Itests/unit \
                -o $B/host/$name tests/unit/$name.c $srcs tests/unit/test_util.c lib/log.c \
                >$B/host/$name.build.log 2>&1; then
            echo "unit $name: BUILD FAILED"; cat $B/host/$name.build.log | head -30
            TOTAL_F=$((TOTAL_F + 1)); continue
        fi
        $B/host/$name >$B/host/$name.log 2>&1; rc=$?
        if count $B/host/$name.log && [ $rc -eq 0 ]; then
            echo "unit $name: $(tail -1 $B/host/$name.log)"
        else
            [ $rc -ne 0 ] && grep -q ' 0 failed' <(tail -1 $B/host/$name.log) && TOTAL_F=$((TOTAL_F + 1))
            echo "unit $name: FAILED (exit $rc)"; grep -aE 'FAIL|ERROR|runtime error' $B/host/$name.log | head -20
            tail -5 $B/host/$name.log
        fi
    done
}

run_script() { # a test script that prints its own "N passed, N failed" line
    local name=$1; shift
    if [ ! -f "$1" ]; then
        echo "$name: FAILED: test script $1 is missing"
        TOTAL_F=$((TOTAL_F + 1)); return
    fi
    "$@" 2>&1 | tee $B/tests/$name.out
    count $B/tests/$name.out || echo "$name: no summary line (crashed?)"
}

case $what in
unit) run_unit; run_script layers tests/tools/check-layers.sh ;;
boot) run_script boot tests/boot/test_boot.sh ;;
usb) run_script usb tests/boot/test_usb.sh ;;
events) run_script events tests/boot/test_events.sh ;;
dma) run_script dma tests/boot/test_dma.sh ;;
fuzz) run_script fuzz tests/fuzz/run-fuzz.sh ;;
nested) run_script nested tests/nested/run-diff.sh ;;
hvhv) run_script hvhv tests/hvhv/test-hvhv.sh ;;
linux) run_script linux tests/linux/test-linux.sh ;;
kvm) run_script kvm tests/linux/test-kvm.sh ;;
all)
    run_unit
    run_script layers tests/tools/check-layers.sh
    run_script fuzz tests/fuzz/run-fuzz.sh
    run_script boot tests/boot/test_boot.sh
    run_script usb tests/boot/test_usb.sh
    run_script events tests/boot/test_events.sh
    run_script dma tests/boot/test_dma.sh
    run_script nested tests/nested/run-diff.sh
    run_script hvhv tests/hvhv/test-hvhv.sh # after nested: reuses its bare Bochs log
    run_script linux tests/linux/test-linux.sh
    run_script kvm tests/linux/test-kvm.sh
    ;;
esac
echo "$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_F" -eq 0 ]
