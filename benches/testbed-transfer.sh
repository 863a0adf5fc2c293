#!/usr/bin/env bash
# Benchmark (not part of the test suite): transfer throughput inside the testbed guest,
# a bare `zfs send | zfs recv -s -u` against the same full send through zsnap's
# executor (examples/transfer.rs, a release build copied into the guest), in one run.
#
#   . "$(testbed/up.sh)"; benches/testbed-transfer.sh
#
# Four ways, each REPS times, in rotating order, after one untimed warm-up (so every
# way reads the source from the ARC alike):
#   bare     zfs send SRC@b | zfs recv -s -u DST
#   pipeline zsnap's transfer step as it runs by default: zfs send and zfs recv joined
#            by an OS pipe (zsnap is not in the data path)
#   counted  every byte through zsnap in 1 MiB buffers (what progress and bandwidth
#            limits need)
#   cat      for reference, the bare pipeline with one more copying process:
#            zfs send | cat | zfs recv (what any counting stage costs at least)
# Each is timed by the guest shell (/proc/uptime, 10 ms) around the whole command,
# process start included. Rates use the stream size from `zfs send -nvP`.
# Environment: MIB (default 256), REPS (default 4).
# Not destructive: works below src/bench-<id> and dst/bench-<id>, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-256}
REPS=${REPS:-4}
: "${ZSNAP_TESTBED_SSH_CONFIG:?run . \"\$(testbed/up.sh)\" first}"
: "${ZSNAP_TESTBED_HOST:?run . \"\$(testbed/up.sh)\" first}"
SSH=(ssh -F "$ZSNAP_TESTBED_SSH_CONFIG" "$ZSNAP_TESTBED_HOST")
ID=$$-$RANDOM

cargo build --release --quiet -p zsnap-exec --example transfer
"${SSH[@]}" "cat > /tmp/zsnap-transfer-$ID; chmod +x /tmp/zsnap-transfer-$ID" \
    < target/release/examples/transfer

out=$("${SSH[@]}" "ID=$ID MIB=$MIB REPS=$REPS sh -s" <<'SH'
set -eu
export LC_ALL=C
S=src/bench-$ID D=dst/bench-$ID X=/tmp/zsnap-transfer-$ID
cleanup() { zfs destroy -r $S 2>/dev/null; zfs destroy -r $D 2>/dev/null; rm -f $X; }
trap cleanup EXIT
zfs create $S
zfs create $D
dd if=/dev/urandom of=/$S/data bs=1M count=$MIB 2>/dev/null
zfs snapshot $S@b
BYTES=$(zfs send -nvP $S@b | awk '$1 == "size" { print $2 }')
uptime_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
run() {
    case $1 in
        bare) zfs send $S@b | zfs recv -s -u $D/t ;;
        cat) zfs send $S@b | cat | zfs recv -s -u $D/t ;;
        pipeline) $X $S@b $D/t > /dev/null ;;
        counted) $X --counted $S@b $D/t > /dev/null ;;
    esac
}
run bare                                  # warm-up, untimed
zfs destroy -r $D/t
echo "stream bytes: $BYTES ($(uname -r), $(zfs version | head -1))"
i=0
while [ $i -lt $REPS ]; do
    case $((i % 4)) in
        0) order="bare pipeline counted cat" ;;
        1) order="pipeline counted cat bare" ;;
        2) order="counted cat bare pipeline" ;;
        3) order="cat bare pipeline counted" ;;
    esac
    for way in $order; do
        sync
        t0=$(uptime_cs)
        run $way
        t1=$(uptime_cs)
        zfs destroy -r $D/t
        echo "$way $((t1 - t0))"
    done
    i=$((i + 1))
done
SH
)
echo "$out"
# Per way: every run's rate, the median, and the median's ratio to bare.
echo "$out" | awk '
    /^stream bytes:/ { bytes = $3; next }
    NF == 2 { n[$1]++; cs[$1, n[$1]] = $2 }
    END {
        for (w in n) {
            # sort the times of this way (insertion sort, a handful of runs)
            for (i = 1; i <= n[w]; i++) t[i] = cs[w, i]
            for (i = 2; i <= n[w]; i++) { v = t[i]; j = i - 1
                while (j >= 1 && t[j] > v) { t[j + 1] = t[j]; j-- } t[j + 1] = v }
            m = (n[w] % 2) ? t[(n[w] + 1) / 2] : (t[n[w] / 2] + t[n[w] / 2 + 1]) / 2
            med[w] = bytes / 1048576 / (m / 100)
            best[w] = bytes / 1048576 / (t[1] / 100)
        }
        printf "%-9s %14s %12s %10s\n", "way", "median MiB/s", "best MiB/s", "vs bare"
        split("bare pipeline counted cat", ways, " ")
        for (k = 1; k <= 4; k++) { w = ways[k]
            printf "%-9s %14.2f %12.2f %9.1f%%\n", w, med[w], best[w], 100 * med[w] / med["bare"] }
    }'
