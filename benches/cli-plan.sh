#!/usr/bin/env bash
# Benchmark: `zsnap plan` as a whole process — read and parse a saved `zfs list`
# listing, plan snapshots and pruning for every dataset, print the plan — for a listing
# of 1,000,000 snapshots in 10,000 datasets (100 hourly snapshots each, all managed by
# zsnap, a policy keeping 24 hourly and 7 daily). Target: under 2 s wall time.
#
# Uses hyperfine when installed, /usr/bin/time otherwise.
# Environment: DATASETS (default 10000), PER_DATASET (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASETS=${DATASETS:-10000}
PER_DATASET=${PER_DATASET:-100}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p zsnap-cli
zsnap=target/release/zsnap

# The listing, in the exact format of `zsnap plan --print-list-command`.
awk -v D="$DATASETS" -v P="$PER_DATASET" 'BEGIN {
    OFS = "\t"; txg = 1; guid = 1000; t0 = 1795046400  # 2026-11-18T00:00:00Z
    print "tank", "filesystem", guid++, txg++, t0, "-", "-", "-", "off", "-", "-", "/tank", "1000", "-"
    for (d = 0; d < D; d++) {
        ds = sprintf("tank/ds%05d", d)
        print ds, "filesystem", guid++, txg++, t0, "-", "-", "-", "off", "-", "-", "/" ds, "1000", "-"
        for (s = 0; s < P; s++) {
            t = t0 + s * 3600
            name = sprintf("%s@zsnap_hourly_%s", ds, strftime("%Y%m%dT%H%M%SZ", t, 1))
            print name, "snapshot", guid++, 100000 + s, t, "0", "-", "-", "off", "-", "-", "-", "4096", "yes"
        }
    }
}' > "$work/listing.tsv"

cat > "$work/zsnap.toml" <<'TOML'
[paths]
audit_log = "audit.jsonl"
journal_dir = "journal"
lock_file = "zsnap.lock"

[policies.standard]
snapshot = { hourly = "hourly" }
keep = { hourly = 24, daily = 7 }

[[datasets]]
root = "tank"
recursive = true
policy = "standard"
TOML

rows=$(wc -l < "$work/listing.tsv")
echo "listing: $rows rows ($(du -h "$work/listing.tsv" | cut -f1)), $DATASETS datasets x $PER_DATASET snapshots"
cmd="$zsnap --config $work/zsnap.toml plan run --inventory $work/listing.tsv --now 2026-11-22T04:30:00Z"
if command -v hyperfine > /dev/null; then
    hyperfine --warmup 1 --runs 5 "$cmd > /dev/null"
else
    for i in 1 2 3; do
        /usr/bin/time -f "run $i: %e s wall, %M KiB max RSS" $cmd > /dev/null
    done
fi
