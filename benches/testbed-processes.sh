#!/usr/bin/env bash
# benches/testbed-processes.sh [N...]: how many `zfs` processes one `zsnap run` spawns
# for N datasets, on real OpenZFS in the testbed guest (default N: 1 10 100).
#
# For each N it creates N datasets under src/pc-N, writes a config (hourly snapshots,
# keep 2, a replication target on dst), and runs `zsnap run` three times an hour apart
# inside the guest with a `zfs` wrapper first on PATH that logs every invocation. It
# prints one line per run: the number of zfs processes by subcommand. The guest is
# emulated (TCG), so wall times are not meaningful; the counts are.
#
# Needs a running testbed: . "$(testbed/up.sh)"; builds the release zsnap (or takes
# ZSNAP_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ZSNAP_TESTBED_SSH_CONFIG:?start the testbed first: . \"\$(testbed/up.sh)\"}"
host=${ZSNAP_TESTBED_HOST:-zfs-testbed}
g() { ssh -F "$ZSNAP_TESTBED_SSH_CONFIG" "$host" "$@"; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 10 100)

# ZSNAP_BIN=path measures another build (an older commit, say).
local_bin=${ZSNAP_BIN:-}
if [ -z "$local_bin" ]; then
    cargo build --release --quiet -p zsnap-cli
    local_bin=${CARGO_TARGET_DIR:-target}/release/zsnap
fi
bin=/tmp/zsnap-bench-$$
g "cat > $bin && chmod +x $bin" < "$local_bin"
# A wrapper named zfs that logs its subcommand and runs the real one (the config below
# names it: zsnap runs zfs by absolute path, never through PATH).
# The real zfs, never a wrapper another script may have put first on PATH.
real=$(g 'PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v zfs')
g "mkdir -p /tmp/zwrap && printf '%s\n' '#!/bin/sh' 'echo \"\$1\" >> /tmp/zwrap/log' 'exec $real \"\$@\"' > /tmp/zwrap/zfs && chmod +x /tmp/zwrap/zfs"

# Removes src/pc-N and dst/pc-N, releasing the cursor holds zsnap placed first.
cleanup() {
    g "for ds in src/pc-$1 dst/pc-$1; do
         zfs list -H -o name -t snapshot -r \$ds 2>/dev/null | while read -r s; do
           zfs holds -H \"\$s\" | while IFS=\"\$(printf '\\t')\" read -r _ tag _; do zfs release \"\$tag\" \"\$s\"; done
         done
         zfs destroy -r \$ds 2>/dev/null || true
       done; rm -rf /tmp/pc-$1.*"
}

printf '%-6s %-4s %-7s %s\n' N run total "by subcommand"
for n in "${sizes[@]}"; do
    root=src/pc-$n
    cleanup "$n"
    g "zfs create -o mountpoint=none $root && i=0; while [ \$i -lt $n ]; do zfs create $root/d\$i; i=\$((i+1)); done"
    g "cat > /tmp/pc-$n.toml" <<EOF
[paths]
zfs = "/tmp/zwrap/zfs"
audit_log = "/tmp/pc-$n.audit"
journal_dir = "/tmp/pc-$n.journal"
lock_file = "/tmp/pc-$n.lock"

[policies.p]
snapshot = { hourly = "hourly" }
keep_counts = { hourly = 2 }

[[datasets]]
root = "$root"
recursive = true
policy = "p"

[targets.backup]
source = "$root"
to = "dst/pc-$n"
policy = "p"
EOF
    for hour in 10 11 12; do
        g ": > /tmp/zwrap/log; $bin --config /tmp/pc-$n.toml --now 2026-11-23T$hour:30:00Z -q run >/dev/null"
        counts=$(g "sort /tmp/zwrap/log | uniq -c | awk '{printf \"%s=%s \", \$2, \$1}'")
        total=$(g "wc -l < /tmp/zwrap/log")
        printf '%-6s %-4s %-7s %s\n' "$n" "$hour:30" "$total" "$counts"
    done
    cleanup "$n"
done
g "rm -rf /tmp/zwrap $bin"
