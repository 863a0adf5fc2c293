#!/usr/bin/env bash
# Benchmark (not part of the test suite): backup and restore throughput against the
# testbed guest, zsnap on this host against the bare commands over the same ssh path,
# in one run and from the same snapshot.
#
#   . "$(testbed/up.sh)"                 # the guest with real OpenZFS
#   . "$(testbed/s3/start.sh)"           # optional: Garage, for the s3 rows
#   benches/testbed-backup.sh
#
# Backup (the stream leaves the guest over ssh and lands in a file or store here):
#   bare        ssh guest zfs send DS@s > FILE
#   dir         zsnap --backend ssh://… backup DS --snapshot s --to dir:STORE
#   dir+zstd    the same with --compress zstd
#   s3          the same to s3://BUCKET/PREFIX (only with ZSNAP_TEST_S3_* set)
# Restore (the stream goes back into the guest, into a new dataset):
#   bare        ssh guest zfs recv -u NEW < FILE
#   dir …       zsnap --backend ssh://… restore --from STORE DS --latest --to NEW
# The data is incompressible (/dev/urandom), so zstd only costs. Each command is timed
# here around the whole command (process and ssh start included); rates are MiB/s of
# the stream size from `zfs send -nvP`. The ways of one direction run in rotating
# order, REPS times.
# Environment: MIB (default 256), REPS (default 1).
# Not destructive: works below src/bb-<id> and dst/bb-<id> in the guest and in a
# temporary directory here (and under the prefix bb-<id> of the S3 bucket); all are
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-256}
REPS=${REPS:-1}
: "${ZSNAP_TESTBED_SSH_CONFIG:?run . \"\$(testbed/up.sh)\" first}"
: "${ZSNAP_TESTBED_HOST:?run . \"\$(testbed/up.sh)\" first}"
SSH=(ssh -F "$ZSNAP_TESTBED_SSH_CONFIG" "$ZSNAP_TESTBED_HOST")
ID=$$-$RANDOM
S=src/bb-$ID
D=dst/bb-$ID
TMP=$(mktemp -d)
PREFIX=bb-$ID

cargo build --release --quiet -p zsnap-cli
ZSNAP=$PWD/target/release/zsnap

# zsnap reaches the guest through the testbed's ssh config (Host alias, key, port);
# a config needs a dataset, so it names the benchmark's (nothing is scheduled).
cat > "$TMP/zsnap.toml" <<EOF
[paths]
ssh_config = "$ZSNAP_TESTBED_SSH_CONFIG"
audit_log = "$TMP/audit.jsonl"
journal_dir = "$TMP/journal"
lock_file = "$TMP/zsnap.lock"

[policies.bench]
prune = false

[[datasets]]
root = "$S"
policy = "bench"
EOF
Z=("$ZSNAP" --config "$TMP/zsnap.toml" --backend "ssh://root@$ZSNAP_TESTBED_HOST" -q)

WAYS="bare dir dir+zstd"
S3_FLAGS=()
if [ -n "${ZSNAP_TEST_S3_ENDPOINT:-}" ]; then
    WAYS="$WAYS s3"
    S3_FLAGS=(--s3-endpoint "$ZSNAP_TEST_S3_ENDPOINT" --s3-region "${ZSNAP_TEST_S3_REGION:-garage}"
        --s3-allow-http)
    export AWS_ACCESS_KEY_ID=$ZSNAP_TEST_S3_ACCESS_KEY_ID
    export AWS_SECRET_ACCESS_KEY=$ZSNAP_TEST_S3_SECRET_ACCESS_KEY
fi

cleanup() {
    "${SSH[@]}" "zfs destroy -r $S; zfs destroy -r $D" 2>/dev/null || true
    if [ ${#S3_FLAGS[@]} -gt 0 ]; then
        # Every backup the run stored under its prefixes (stream and sidecar each).
        for r in $(seq 1 "$REPS"); do
            store=s3://$ZSNAP_TEST_S3_BUCKET/$PREFIX-$r
            for id in $("${Z[@]}" backups list --from "$store" "${S3_FLAGS[@]}" 2>/dev/null |
                        awk 'NR > 1 { print $NF }'); do
                "${Z[@]}" backups delete --from "$store" "$id" "${S3_FLAGS[@]}" >/dev/null || true
            done
        done
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

"${SSH[@]}" "set -e; zfs create $S; zfs create $D
    dd if=/dev/urandom of=/$S/data bs=1M count=$MIB 2>/dev/null; zfs snapshot $S@s"
BYTES=$("${SSH[@]}" "zfs send -nvP $S@s" | awk '$1 == "size" { print $2 }')
echo "stream bytes: $BYTES (guest $("${SSH[@]}" 'uname -r; zfs version | head -1' | paste -sd' '))"

now() { date +%s.%N; }
store() { # the store of way $1 in repetition $2
    case $1 in
        dir) echo "dir:$TMP/store-$2" ;;
        dir+zstd) echo "dir:$TMP/store-zstd-$2" ;;
        s3) echo "s3://$ZSNAP_TEST_S3_BUCKET/$PREFIX-$2" ;;
    esac
}
backup() { # way rep
    case $1 in
        bare) "${SSH[@]}" "zfs send $S@s" > "$TMP/stream-$2" ;;
        dir) "${Z[@]}" backup "$S" --snapshot s --to "$(store dir "$2")" ;;
        dir+zstd) "${Z[@]}" backup "$S" --snapshot s --compress zstd --to "$(store dir+zstd "$2")" ;;
        s3) "${Z[@]}" backup "$S" --snapshot s --to "$(store s3 "$2")" "${S3_FLAGS[@]}" ;;
    esac
}
restore() { # way rep
    case $1 in
        bare) "${SSH[@]}" "zfs recv -u $D/t" < "$TMP/stream-$2" ;;
        s3) "${Z[@]}" restore --from "$(store s3 "$2")" "$S" --latest --to "$D/t" "${S3_FLAGS[@]}" ;;
        *) "${Z[@]}" restore --from "$(store "$1" "$2")" "$S" --latest --to "$D/t" ;;
    esac
}
rotate() { # the ways, rotated by $1
    local -a w
    read -ra w <<< "$WAYS"
    local n=${#w[@]} i
    for ((i = 0; i < n; i++)); do printf '%s ' "${w[$(((i + $1) % n))]}"; done
}

results=()
for r in $(seq 1 "$REPS"); do
    for way in $(rotate $((r - 1))); do
        t0=$(now); backup "$way" "$r" >&2; t1=$(now)
        results+=("backup $way $(echo "$t1 - $t0" | bc)")
        echo "${results[-1]}" >&2
    done
    for way in $(rotate $((r - 1))); do
        "${SSH[@]}" sync
        t0=$(now); restore "$way" "$r" >&2; t1=$(now)
        "${SSH[@]}" "zfs destroy -r $D/t"
        results+=("restore $way $(echo "$t1 - $t0" | bc)")
        echo "${results[-1]}" >&2
    done
done
if [ -d "$TMP/store-zstd-1" ]; then
    echo "stored with zstd: $(du -cb "$TMP/store-zstd-1" | tail -1 | cut -f1) bytes"
fi

# Per direction and way: the median time's rate, the best, and the ratio to bare.
printf '%s\n' "${results[@]}" | awk -v bytes="$BYTES" -v ways="$WAYS" '
    { k = $1 SUBSEP $2; n[k]++; t[k, n[k]] = $3 }
    END {
        printf "%-8s %-9s %13s %11s %8s\n", "", "way", "median MiB/s", "best MiB/s", "vs bare"
        split(ways, w, " ")
        split("backup restore", dirs, " ")
        for (d = 1; d <= 2; d++) for (i = 1; i in w; i++) {
            k = dirs[d] SUBSEP w[i]
            m = n[k]
            for (a = 1; a <= m; a++) s[a] = t[k, a]
            for (a = 2; a <= m; a++) { v = s[a]; b = a - 1
                while (b >= 1 && s[b] > v) { s[b + 1] = s[b]; b-- } s[b + 1] = v }
            med = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
            rate[d, i] = bytes / 1048576 / med
            if (i == 1) base = rate[d, i]
            printf "%-8s %-9s %13.2f %11.2f %7.1f%%\n", dirs[d], w[i], rate[d, i],
                bytes / 1048576 / s[1], 100 * rate[d, i] / base
        }
    }'
