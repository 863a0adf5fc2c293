#!/usr/bin/env bash
# benches/testbed-compare.sh [N...]: zsnap against syncoid, bzfs and zfs-autobackup,
# replicating N small datasets on real OpenZFS in the testbed guest (default N: 10 100;
# 1000 works but takes long under emulation).
#
#   . "$(testbed/up.sh)"; benches/testbed-compare.sh 10 100
#   ZSNAP_BIN=/path/to/zsnap benches/testbed-compare.sh 10    # another zsnap build
#   TOOLS="zsnap syncoid" benches/testbed-compare.sh 100       # some tools, in this order
#   KEEP_LOGS=DIR ...   # keeps each timed run's zfs log, ssh log and output in DIR
#
# Every tool runs on this host and reaches the guest over ssh for both the source and the
# target (pull-push, as a third machine would), with one ssh client config for all. Per N:
#   1. N datasets src/cmp-N/d0.. (plus the root src/cmp-N), 4 KiB of random data each;
#      two snapshots of the tree (`zfs snapshot -r`), named as sanoid names them
#      (autosnap_YYYY-MM-DD_HH:MM:SS_hourly, UTC), a name every tool accepts.
#   2. Untimed: each tool's first replication into its own root dst/cmp-N-<tool>
#      (all tools at the same time; one that fails then runs again alone).
#   3. A line appended to a file in every dataset, then three more `zfs snapshot -r`.
#   4. Timed, one tool after the other: the incremental replication of these three
#      snapshots, with a logging `zfs` wrapper in the guest that counts every zfs process
#      the tool causes there, and a logging `ssh` wrapper here that counts ssh processes.
#   5. Each target is checked to hold all five snapshots of every dataset.
# What each tool is told (no tool takes or prunes snapshots):
#   syncoid   --recursive --no-sync-snap root@zfs-testbed:src/cmp-N root@zfs-testbed:dst/..
#             (syncoid 2.1.0 has no option for an ssh config file: the ssh wrapper passes
#             -F; syncoid opens its own ControlMaster per side and closes it at the end)
#   bzfs      root@zfs-testbed:src/cmp-N root@zfs-testbed:dst/.. --recursive --threads 1,
#             the ssh config through --ssh-{src,dst}-config-file (defaults otherwise: no
#             snapshots taken, nothing deleted, bookmarks created on the source). With its
#             default of one thread per core, some of its parallel ssh sessions to the
#             guest's dropbear fail (ssh exit 255, no message), and after its retries
#             the run fails with datasets left behind.
#   zfs-autobackup  cmp-N dst/cmp-N-zab --ssh-source/--ssh-target root@zfs-testbed
#             --ssh-config FILE --no-snapshot --no-thinning --utc --snapshot-format
#             autosnap_%Y-%m-%d_%H:%M:%S_hourly (so it sees these snapshots as its own)
#             --exclude-received (source and target are one host here: without it, it
#             would also select the other tools' received copies of src/cmp-N, which carry
#             the autobackup:cmp-N property); datasets selected by autobackup:cmp-N=true
#   zsnap     `zsnap replicate` with a config whose [[datasets]] (src/cmp-N, recursive)
#             and target (dst/cmp-N-zsnap) are on ssh://root@zfs-testbed; both policies
#             adopt sanoid's names; the target's keeps everything (keep_last = 1000,
#             prune = false); cursor "hold" (the default)
# The guest is emulated (QEMU TCG): wall seconds compare the tools with each other on
# this setup, not with real hardware. The zfs wrapper sits at /usr/local/sbin/zfs (first
# on the guest's PATH, which the other tools use) only during each timed run, and is
# removed by an exit trap; zsnap runs zfs by absolute path, so its config points
# `remote_zfs` at a copy of the wrapper. A logged command counts when it names
# src/cmp-N, dst/cmp-N-* or the property autobackup:cmp-N, or is a version or feature
# probe (`zfs --version`, zfs-autobackup's option tests); other lines come from other
# users of the guest and are left out (their number is shown).
#
# Tools are installed under $HOME/.cache/zsnap-compare: sanoid 2.1.0 (Debian bookworm's
# package, unpacked with apt-get download and dpkg -x; its perl modules come from
# Debian), bzfs and zfs-autobackup from PyPI into a venv. Needs python3, perl, and
# apt-get for the perl modules when they are missing. Builds zsnap unless ZSNAP_BIN is set.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ZSNAP_TESTBED_SSH_CONFIG:?start the testbed first: . \"\$(testbed/up.sh)\"}"
: "${ZSNAP_TESTBED_KEY:?start the testbed first: . \"\$(testbed/up.sh)\"}"
: "${ZSNAP_TESTBED_KNOWN_HOSTS:?start the testbed first: . \"\$(testbed/up.sh)\"}"
host=${ZSNAP_TESTBED_HOST:-zfs-testbed}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100)
for n in "${sizes[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive number: $n" >&2; exit 2; }
done

BZFS_VERSION=1.25.0
ZAB_VERSION=3.3
SANOID_DEB_VERSION=2.1.0-1.1
cache=$HOME/.cache/zsnap-compare
mkdir -p "$cache"
# Scratch: configs, wrappers, logs, ssh sockets (short paths: a socket's must fit 108 bytes).
work=$(mktemp -d "${TMPDIR:-/tmp}/zsnap-compare.XXXXXX")
g() { ssh -F "$ZSNAP_TESTBED_SSH_CONFIG" "$host" "$@"; }

# --- the tools ---------------------------------------------------------------------------
if [ -z "${ZSNAP_BIN:-}" ]; then
    cargo build --release --quiet -p zsnap-cli
    ZSNAP_BIN=${CARGO_TARGET_DIR:-target}/release/zsnap
fi
ZSNAP_BIN=$(realpath "$ZSNAP_BIN")
[ -x "$ZSNAP_BIN" ] || { echo "not an executable: $ZSNAP_BIN" >&2; exit 2; }

venv=$cache/venv
if ! "$venv/bin/bzfs" --version 2>/dev/null | grep -qF "bzfs-$BZFS_VERSION" ||
    ! "$venv/bin/zfs-autobackup" --version 2>/dev/null | grep -qF "v$ZAB_VERSION "; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "bzfs==$BZFS_VERSION" "zfs-autobackup==$ZAB_VERSION"
fi
syncoid=$cache/sanoid-$SANOID_DEB_VERSION/usr/sbin/syncoid
if [ ! -f "$syncoid" ]; then
    deb=$(mktemp -d "$cache/deb.XXXXXX")
    (cd "$deb" && apt-get download -q "sanoid=$SANOID_DEB_VERSION")
    dpkg -x "$deb"/sanoid_*.deb "$cache/sanoid-$SANOID_DEB_VERSION"
    rm -rf "$deb"
fi
if ! perl -MCapture::Tiny -MConfig::IniFiles -e 1 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libcapture-tiny-perl libconfig-inifiles-perl
fi
versions=(
    "syncoid=$(perl "$syncoid" --version 2>&1 | awk '/version/ { print $NF; exit }')"
    "bzfs=$("$venv/bin/bzfs" --version | sed 's/^bzfs-//; s/,.*//')"
    "zab=$("$venv/bin/zfs-autobackup" --version | awk '{ sub(/^v/, "", $2); print $2; exit }')"
    "zsnap=$("$ZSNAP_BIN" --version | awk '{ print $2; exit }')"
)
version_of() {
    local v
    for v in "${versions[@]}"; do [ "${v%%=*}" != "$1" ] || echo "${v#*=}"; done
}

# One ssh client config for every tool (bzfs wants "bzfs_ssh_config" in its file name).
# Connection sharing is on: syncoid, bzfs and zsnap open ControlMasters of their own
# anyway; zfs-autobackup gets one from this file.
sshcfg=$work/cmp_bzfs_ssh_config
cat > "$sshcfg" <<EOF
Host zfs-testbed
  HostName ${ZSNAP_TESTBED_ADDR:-127.0.0.1}
  Port ${ZSNAP_TESTBED_PORT:-2222}
  User root
  IdentityFile $ZSNAP_TESTBED_KEY
  IdentitiesOnly yes
  UserKnownHostsFile $ZSNAP_TESTBED_KNOWN_HOSTS
  HostKeyAlias zfs-testbed
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
  ControlMaster auto
  ControlPath $work/mux-%C
  ControlPersist 60
EOF
# ssh as the tools see it: logs every ssh process, adds the config (for syncoid).
mkdir -p "$work/bin"
printf '%s\n' '#!/bin/sh' "echo \"\$*\" >> '$work/ssh.log'" \
    "exec /usr/bin/ssh -F '$sshcfg' \"\$@\"" > "$work/bin/ssh"
chmod +x "$work/bin/ssh"

# --- the guest's zfs wrapper ---------------------------------------------------------------
mark="# zsnap benches/testbed-compare.sh wrapper"
real=$(g 'command -v zfs')
case $real in
    /usr/local/sbin/zfs) echo "the guest already has /usr/local/sbin/zfs; not replacing it" >&2; exit 1 ;;
    /*) ;;
    *) echo "no zfs in the guest's PATH" >&2; exit 1 ;;
esac
g "mkdir -p /tmp/cmp-zwrap && printf '%s\n' '#!/bin/sh' '$mark' 'echo \"\$*\" >> /tmp/cmp-zwrap/log' 'exec $real \"\$@\"' > /tmp/cmp-zwrap/zfs && chmod +x /tmp/cmp-zwrap/zfs"
# /usr/local/sbin is made if missing, and then removed again with the wrapper.
made_dir=$(g '[ -d /usr/local/sbin ] && echo no || echo yes')
wrapper_on() {
    g "[ ! -e /usr/local/sbin/zfs ] || { echo 'the guest already has /usr/local/sbin/zfs' >&2; exit 1; }
       mkdir -p /usr/local/sbin && cp /tmp/cmp-zwrap/zfs /usr/local/sbin/zfs && : > /tmp/cmp-zwrap/log"
}
wrapper_off() {
    g "! grep -qxF '$mark' /usr/local/sbin/zfs 2>/dev/null || rm -f /usr/local/sbin/zfs
       [ $made_dir = no ] || rmdir /usr/local/sbin 2>/dev/null || true"
}

# Removes src/cmp-N and dst/cmp-N-*, releasing the holds zsnap and zfs-autobackup placed.
destroy_trees() {
    g "for ds in dst/cmp-$1-syncoid dst/cmp-$1-bzfs dst/cmp-$1-zab dst/cmp-$1-zsnap src/cmp-$1; do
         zfs list -H -o name \$ds >/dev/null 2>&1 || continue
         zfs list -H -o name,userrefs -t snapshot -r \$ds | while read -r s refs; do
           [ \"\$refs\" = 0 ] && continue
           zfs holds -H \"\$s\" | while IFS=\"\$(printf '\\t')\" read -r _ tag _; do zfs release \"\$tag\" \"\$s\"; done
         done
         zfs destroy -r \$ds
       done"
}

# Ends the ControlMasters the tools left (bzfs keeps its own, in ~/.ssh/bzfs of the
# user's passwd entry, for 600 s), so that every timed run starts without a connection.
bzfs_sockets=$(getent passwd "$(id -un)" | cut -d: -f6)/.ssh/bzfs
close_masters() {
    local s
    while IFS= read -r s; do
        /usr/bin/ssh -F "$sshcfg" -S "$s" -O exit zfs-testbed >/dev/null 2>&1 || true
    done < <(find "$work" "$bzfs_sockets" -type s 2>/dev/null)
}

sizes_done=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait || true
    wrapper_off || true
    close_masters
    local n
    for n in "${sizes_done[@]}"; do destroy_trees "$n" || true; done
    g "rm -rf /tmp/cmp-zwrap" || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- one tool's replication -------------------------------------------------------------------
# replicate TOOL N: the tool's replication of src/cmp-N into dst/cmp-N-TOOL.
replicate() {
    local tool=$1 n=$2 out=$work/$1-$2
    case $tool in
        syncoid)
            PATH=$work/bin:$PATH perl "$syncoid" --recursive --no-sync-snap \
                "root@zfs-testbed:src/cmp-$n" "root@zfs-testbed:dst/cmp-$n-syncoid" ;;
        bzfs)
            PATH=$work/bin:$PATH "$venv/bin/bzfs" \
                "root@zfs-testbed:src/cmp-$n" "root@zfs-testbed:dst/cmp-$n-bzfs" --recursive \
                --threads 1 \
                --ssh-src-config-file "$sshcfg" --ssh-dst-config-file "$sshcfg" \
                --log-dir "$work/bzfs-logs" ;;
        zab)
            PATH=$work/bin:$PATH "$venv/bin/zfs-autobackup" --ssh-config "$sshcfg" \
                --ssh-source root@zfs-testbed --ssh-target root@zfs-testbed \
                --no-snapshot --no-thinning --exclude-received --utc \
                --clear-mountpoint --clear-refreservation \
                --snapshot-format 'autosnap_%Y-%m-%d_%H:%M:%S_hourly' \
                "cmp-$n" "dst/cmp-$n-zab" ;;
        zsnap)
            "$ZSNAP_BIN" --config "$work/zsnap-$n.toml" replicate ;;
    esac >> "$out.log" 2>&1 || {
        echo "$tool failed for N=$n; the end of its output:" >&2
        tail -n 20 "$out.log" >&2
        return 1
    }
}

zsnap_config() {
    local n=$1
    cat > "$work/zsnap-$n.toml" <<EOF
[paths]
audit_log = "$work/zsnap-$n/audit.jsonl"
journal_dir = "$work/zsnap-$n/journal"
lock_file = "$work/zsnap-$n/lock"
ssh_config = "$sshcfg"
ssh = "$work/bin/ssh"
remote_zfs = "/tmp/cmp-zwrap/zfs"

[policies.source]
adopt = ["sanoid"]
prune = false

[policies.copy]
adopt = ["sanoid"]
prune = false
keep_last = 1000

[[datasets]]
host = "ssh://root@zfs-testbed"
root = "src/cmp-$n"
recursive = true
policy = "source"

[targets.zsnap]
source = "src/cmp-$n"
to = "ssh://root@zfs-testbed/dst/cmp-$n-zsnap"
policy = "copy"
EOF
    mkdir -m 700 "$work/zsnap-$n"
}

# snapshots N HOURS...: appends a line to every dataset's file, then one `zfs snapshot -r`
# per HOURS ago, named like sanoid's.
snapshots() {
    local n=$1 h names=()
    shift
    for h in "$@"; do
        names+=("autosnap_$(date -u -d "@$(($(date +%s) / 60 * 60 - h * 3600))" +%Y-%m-%d_%H:%M:%S)_hourly")
    done
    g "for f in /src/cmp-$n/f /src/cmp-$n/d*/f; do date >> \$f; done
       for s in ${names[*]}; do zfs snapshot -r src/cmp-$n@\$s; done"
}

# counts LOG N: one row of counts from the guest's zfs log: total list/get send recv
# snapshot hold/release destroy other. `send` counts dry runs (-n, size estimates) too.
counts() {
    awk -v n="$2" '
        BEGIN { mine = "cmp-" n "([^0-9]|$)" }
        # Ours name src/cmp-N or dst/cmp-N-*, or no dataset at all: version and feature
        # probes. Anything else is another user of the guest.
        $0 !~ mine && $0 !~ /^(--version|version)$|zfs_autobackup_option_test/ { foreign++; next }
        { total++ }
        $1 == "list" || $1 == "get" || $1 == "holds" { lg++; next }
        $1 == "send" { s++; next }
        $1 == "recv" || $1 == "receive" { r++; next }
        $1 == "snapshot" || $1 == "snap" { sn++; next }
        $1 == "hold" || $1 == "release" { h++; next }
        $1 == "destroy" { d++; next }
        { o++ }
        END { printf "%d %d %d %d %d %d %d %d %d\n", total, lg, s, r, sn, h, d, o, foreign }
    ' "$1"
}

read -r -a tools <<< "${TOOLS:-syncoid bzfs zab zsnap}"
rows=()
for n in "${sizes[@]}"; do
    echo "== N=$n: setting up" >&2
    destroy_trees "$n"
    sizes_done+=("$n")
    g "zfs create -o autobackup:cmp-$n=true src/cmp-$n
       head -c 4096 /dev/urandom > /src/cmp-$n/f
       i=0; while [ \$i -lt $n ]; do
         zfs create src/cmp-$n/d\$i && head -c 4096 /dev/urandom > /src/cmp-$n/d\$i/f; i=\$((i+1))
       done
       zfs create dst/cmp-$n-zab"
    snapshots "$n" 5 4
    zsnap_config "$n"
    # All at once (the guest's ssh server may refuse some of so many connections:
    # a tool that failed then runs again alone, resuming).
    echo "== N=$n: initial replications (untimed, all at once)" >&2
    pids=()
    for t in "${tools[@]}"; do replicate "$t" "$n" 2>/dev/null & pids+=($!); done
    again=()
    for i in "${!tools[@]}"; do wait "${pids[$i]}" || again+=("${tools[$i]}"); done
    close_masters
    for t in "${again[@]}"; do
        echo "== N=$n: initial replication of $t again, alone" >&2
        replicate "$t" "$n"
        close_masters
    done
    snapshots "$n" 3 2 1
    for t in "${tools[@]}"; do
        echo "== N=$n: $t (timed)" >&2
        : > "$work/ssh.log"
        wrapper_on
        start=$(date +%s.%N)
        status=ok
        replicate "$t" "$n" || status="exit $?"
        end=$(date +%s.%N)
        wrapper_off
        close_masters
        g "cat /tmp/cmp-zwrap/log" > "$work/zfs-$t-$n.log"
        root=dst/cmp-$n-$t
        [ "$t" != zab ] || root=dst/cmp-$n-zab/src/cmp-$n
        got=$(g "zfs list -H -o name -t snapshot -r $root | wc -l")
        check=$status
        [ "$got" -eq $(((n + 1) * 5)) ] || check="FAILED ($status): $got of $(((n + 1) * 5)) snapshots"
        read -r total lg s r sn h d o foreign < <(counts "$work/zfs-$t-$n.log" "$n")
        [ "$foreign" -eq 0 ] || echo "   ($foreign zfs commands of another user not counted)" >&2
        ssh=$(wc -l < "$work/ssh.log")
        rows+=("$(printf '| %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
            "$t" "$(version_of "$t")" "$n" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
            "$total" "$lg" "$s" "$r" "$sn" "$h" "$d" "$o" "$ssh" "$check")")
        echo "${rows[-1]}" >&2
        if [ -n "${KEEP_LOGS:-}" ]; then
            mkdir -p "$KEEP_LOGS"
            cp "$work/zfs-$t-$n.log" "$KEEP_LOGS/"
            cp "$work/ssh.log" "$KEEP_LOGS/ssh-$t-$n.log"
            cp "$work/$t-$n.log" "$KEEP_LOGS/out-$t-$n.log"
        fi
    done
    destroy_trees "$n"
done

echo
echo "guest: $(g 'uname -r; zfs version | head -n 1' | paste -sd ' ')"
echo
echo "| tool | version | N | wall s | zfs total | list/get | send | recv | snapshot | hold/release | destroy | other | ssh | check |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
