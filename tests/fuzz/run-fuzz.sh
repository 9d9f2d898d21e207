#!/bin/bash
# Builds the libFuzzer targets with clang and runs each for a bounded number of runs.
# Prints "fuzz: N passed, N failed" (one check per target: no crash, and the target
# really reached vmcs02 construction). FUZZ_RUNS overrides the run count.
set -u
cd "$(dirname "$0")/../.."
B=build/fuzz
mkdir -p $B/corpus
RUNS=${FUZZ_RUNS:-200000}
PASS=0 FAIL=0
SRCS="tests/fuzz/fuzz_vmenter.c nested/vmenter.c nested/vmenter_fast.c nested/vmexit.c nested/perf_global.c nested/insn.c nested/gva.c nested/shadow.c nested/vshadow.c nested/checks.c nested/caps.c nested/vmcs12.c nested/vpid.c nested/ept02.c nested/ept02_exit.c nested/ept02_roots.c nested/vmfunc.c nested/apicv.c
      regcache/regcache.c lib/log.c tests/unit/fake_vmcs.c tests/unit/vmcs12_samples.c"
if ! clang -g -O1 -DHV_HOST_TEST -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. -Itests/unit \
        -o $B/fuzz_vmenter $SRCS >$B/build.log 2>&1; then
    echo "fuzz: cannot build fuzz_vmenter (clang with libFuzzer: apt-get install clang libclang-rt-14-dev)"
    tail -20 $B/build.log
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi
if $B/fuzz_vmenter -runs="$RUNS" -seed=1 -max_len=4096 $B/corpus tests/fuzz/seeds >$B/fuzz_vmenter.log 2>&1; then
    n=$(grep -o 'fuzz_vmenter: [0-9]* inputs built a vmcs02' $B/fuzz_vmenter.log | tail -1 | awk '{print $2}')
    if [ "${n:-0}" -gt 0 ]; then
        PASS=$((PASS + 1)); echo "fuzz: fuzz_vmenter: $RUNS runs clean, $n built a vmcs02"
    else
        FAIL=$((FAIL + 1)); echo "fuzz: fuzz_vmenter never reached vmcs02 construction"
    fi
else
    FAIL=$((FAIL + 1)); echo "fuzz: fuzz_vmenter FAILED:"; grep -E 'ERROR|SUMMARY|abort|==' $B/fuzz_vmenter.log | head -20
    ls -t crash-* 2>/dev/null | head -1 | xargs -r -I{} mv {} $B/
fi
echo "fuzz: $PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
