#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, a short run of every fuzz
# target, and a build of the benchmarks. `.ci/run` calls exactly this after preparing
# the machine (tools, the real-OpenZFS testbed, the S3 server).
#
# Tests that need real OpenZFS read ZSNAP_TESTBED_SSH_CONFIG/ZSNAP_TESTBED_HOST (set by
# sourcing the env file that `testbed/up.sh` prints). Without them they are skipped
# with a message, except under CI=true, where they fail.
#
# Environment: FUZZ_SECONDS (per fuzz target, default 20; 0 skips fuzzing),
# PROPTEST_CASES (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${PROPTEST_CASES:-10000}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
(cd benches && cargo fmt --check)

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (PROPTEST_CASES=$PROPTEST_CASES)"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
# one summary line for the whole run, in the plain "N passed, N failed" form
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "benches build"
(cd benches && cargo bench --no-run --quiet)

if [ "$FUZZ_SECONDS" != 0 ]; then
    step "fuzz: every target for ${FUZZ_SECONDS}s"
    fuzz/run.sh "$FUZZ_SECONDS"
fi
echo "all checks passed"
