#!/usr/bin/env bash
# What embedding the library costs to build: for zsnap-core alone, zsnap-exec without
# and with its feature `s3`, and the `zsnap` command, the crates in the dependency tree,
# the wall time of a clean `cargo build --release` (each in a fresh target directory,
# one after the other, on every core cargo sees) and the CPU time it took (user +
# system: less sensitive than the wall time to other work on the machine). The README's
# table ("Embedding the library: what it costs to build") comes from this script.
#
# Crates are counted two ways:
#   tree     `cargo tree -p PKG [--features F] -e normal --prefix none`, the lines
#            without their " (*)" mark, sorted, unique: the package and every library
#            it links (proc-macros included; build-only dependencies left out);
#   built    the `Compiling` lines of the clean build: every crate compiled, build
#            scripts' own dependencies (cc, cmake…) included.
#
# Environment: BUILD_COST_DIR (where the target directories go; default a temporary
# directory, removed at the end), JOBS (cargo's -j; default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=${BUILD_COST_DIR:+yes}
work=${BUILD_COST_DIR:-$(mktemp -d)}
mkdir -p "$work"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT
jobs=${JOBS:-$(nproc)}

# Download everything first, so the timings are of building only.
cargo fetch --locked --quiet

echo "$(nproc) cores, cargo -j $jobs, $(rustc --version), $(uname -m)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| build | crates (tree) | crates built | clean \`cargo build --release\`, wall | CPU (user + sys) |"
echo "|---|---|---|---|---|"

# measure NAME PACKAGE [CARGO FLAGS…]
measure() {
    local name=$1 package=$2
    shift 2
    local tree built wall user sys target=$work/$package${1:+-features}
    tree=$(cargo tree --locked -p "$package" "$@" -e normal --prefix none \
        | sed 's/ (\*)$//' | sort -u | wc -l)
    rm -rf "$target"
    CARGO_TARGET_DIR=$target CARGO_INCREMENTAL=0 /usr/bin/time -f '%e %U %S' -o "$target.time" \
        cargo build --locked --release -j "$jobs" -p "$package" "$@" >"$target.log" 2>&1
    built=$(grep -c '^ *Compiling ' "$target.log")
    # wall seconds, then CPU seconds (user + system, all processes of the build)
    read -r wall user sys <"$target.time"
    printf '| %s | %d | %d | %.0f s | %.0f s |\n' "$name" "$tree" "$built" "$wall" \
        "$(echo "$user + $sys" | bc)"
}

measure "zsnap-core" zsnap-core
measure "zsnap-exec (default: no \`s3\`)" zsnap-exec
measure "zsnap-exec \`--features s3\`" zsnap-exec --features s3
measure "zsnap-cli (the \`zsnap\` command)" zsnap-cli

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
