#!/usr/bin/env bash
# fuzz/run.sh SECONDS: build every cargo-fuzz target, then run each for SECONDS seconds,
# starting from its committed seeds (fuzz/seeds/<target>/) and the local corpus
# (fuzz/corpus/<target>/, git-ignored, grows between runs), with the dictionary
# fuzz/dicts/<target>.dict when there is one. Exits non-zero on the first
# crash, after printing the end of that target's log; libFuzzer leaves the crashing
# input in fuzz/artifacts/<target>/ (reproduce: cargo fuzz run <target> <file>).
set -euo pipefail
secs=${1:?usage: fuzz/run.sh SECONDS}
cd "$(dirname "$0")"
# cargo-fuzz passes nightly-only flags (-Z...) to rustc; the project's toolchain is stable.
export RUSTC_BOOTSTRAP=1
# zsnap-core forbids unsafe code, so AddressSanitizer would find little and cost a lot of
# build and run time: the targets run without a sanitizer (panics are what we look for).
san=(--sanitizer none)

cargo fuzz build "${san[@]}"
mkdir -p artifacts
for t in $(cargo fuzz list); do
    mkdir -p "corpus/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    log="artifacts/$t.log"
    if ! cargo fuzz run "${san[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}" \
        > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $t FAILED (log: fuzz/$log)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "fuzz: $t ok (${runs:-?} runs in ${secs}s, corpus $(ls "corpus/$t" | wc -l) inputs)"
done
