#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, a short run of every fuzz
# target, and a build of the benchmarks. `.ci/run` calls exactly this after preparing
# the machine (tools, the real-OpenZFS testbed, the S3 server).
#
# Tests that need real OpenZFS read ZSNAP_TESTBED_SSH_CONFIG/ZSNAP_TESTBED_HOST (set by
# sourcing the env file that `testbed/up.sh` prints); tests that need S3 read
# ZSNAP_TEST_S3_* (set by sourcing the env file `testbed/s3/start.sh` prints). Without
# them they are skipped with a message, except under CI=true, where they fail.
#
# Environment: FUZZ_SECONDS (per fuzz target, default 20; 0 skips fuzzing),
# PROPTEST_CASES (default 10000), ZSNAP_BUILD_CACHE (a directory outside the checkout
# for the three workspaces' build outputs, so repeated runs on one machine reuse them;
# default: each workspace's own target/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${PROPTEST_CASES:-10000}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A whole run gains nothing from incremental compilation, and its files double the
# build's size on disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==> %s\n' "$*"; }
# Each workspace gets its own target dir: the fuzz build uses other compiler flags.
in_cache() { if [ -n "${ZSNAP_BUILD_CACHE:-}" ]; then echo "$ZSNAP_BUILD_CACHE/$1"; fi; }
main_target=$(in_cache target)
fuzz_target=$(in_cache fuzz-target)
bench_target=$(in_cache bench-target)
[ -z "$main_target" ] || export CARGO_TARGET_DIR=$main_target
out=$(mktemp)
# Tests that need a service they do not find (outside CI) write a line here; the summary
# counts them as skipped, not passed.
ZSNAP_TEST_SKIPS=$(mktemp)
export ZSNAP_TEST_SKIPS
trap 'rm -f "$out" "$ZSNAP_TEST_SKIPS"' EXIT

# The tools this script runs, installed when missing, so it works alone on a fresh
# machine (`.ci/run` only adds the real-OpenZFS testbed and the S3 server).
step "tools"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if [ "$FUZZ_SECONDS" != 0 ] && ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz (once)"
    cargo install cargo-fuzz --locked --quiet
fi

step "cargo fmt --check"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
(cd benches && cargo fmt --check)

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "light builds: zsnap-core (no clock), zsnap-exec without S3"
# What `cargo add zsnap-core` / `cargo add zsnap-exec` build, so that neither rots:
# zsnap-core without chrono's clock, zsnap-exec without its feature `s3`.
if cargo tree -p zsnap-core -e normal,features | grep -q 'chrono feature "clock"'; then
    echo "zsnap-core's dependencies enable chrono's clock" >&2
    exit 1
fi
cargo check -p zsnap-core --quiet
cargo clippy -p zsnap-exec --no-default-features --all-targets --quiet -- -D warnings

# The whole workspace: zsnap-cli enables zsnap-exec's feature `s3`, so the S3 store
# and its tests (store_s3_real) are built and run here.
step "cargo test (PROPTEST_CASES=$PROPTEST_CASES)"
cargo test --workspace --no-fail-fast 2>&1 | tee "$out"
# one summary line for the whole run, in the plain "N passed, N failed" form
skips=$(wc -l < "$ZSNAP_TEST_SKIPS")
awk -v skips="$skips" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped (%d of them for want of the real-OpenZFS testbed or the S3 server)\n", p - skips, f, s + skips, skips }' "$out"
if [ "$skips" -gt 0 ]; then
    echo "skipped (start testbed/up.sh and testbed/s3/start.sh to run them):"
    cut -f1 "$ZSNAP_TEST_SKIPS" | sort | uniq -c | sed 's/^/  /'
fi

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "benches build"
(cd benches && CARGO_TARGET_DIR=${bench_target:-target} cargo bench --no-run --quiet)

if [ "$FUZZ_SECONDS" != 0 ]; then
    step "fuzz: every target for ${FUZZ_SECONDS}s"
    CARGO_TARGET_DIR=${fuzz_target:-target} fuzz/run.sh "$FUZZ_SECONDS"
fi
echo "all checks passed"
