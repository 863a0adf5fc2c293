#!/bin/bash
# capture-fixtures.sh - with the testbed guest running (up.sh), build awkward cases in
# the pools src and dst with real OpenZFS and save the raw command output as test
# fixtures in zsnap-core/tests/fixtures/real/ (see the README.md there).
#
# DESTRUCTIVE inside the guest: destroys every dataset below src and dst first. Best run
# on a freshly started guest (start.sh recreates empty pools), so the txg numbers stay
# small. Prints a summary of the failure cases; exits non-zero if a case that should
# fail did not, or a setup step failed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
[ -f "$TB_RUN/env" ] || { echo "guest not running (no $TB_RUN/env); run testbed/up.sh" >&2; exit 1; }
DEST=$(cd "$TB_HERE/.." && pwd)/zsnap-core/tests/fixtures/real
SSH=(ssh -F "$TB_RUN/ssh_config" "$TB_HOST")

# The guest part (busybox ash). Writes everything below /tmp/fx in the guest.
read -r -d '' GUEST <<'SH' || true
set -u
export LC_ALL=C
F=/tmp/fx T=/tmp/fx.tmp
rm -rf $F $T; mkdir -p $F/stderr $T
die() { echo "SETUP FAILED: $*" >&2; exit 1; }
run() { "$@" || die "$*"; }     # setup step that must succeed

# cap CASE CMD...: run a command that is expected to fail; stderr/CASE.txt = exit + stderr
cap() {
    c=$1; shift
    "$@" > /dev/null 2> $T/err; rc=$?
    { echo "exit=$rc"; cat $T/err; } > $F/stderr/$c.txt
}
# cap_pipe CASE SEND-CMD RECV-CMD: a pipeline; CASE.txt holds the receiving side, and
# CASE.send.txt the sending side when that failed or wrote to stderr
cap_pipe() {
    c=$1
    { sh -c "$2" 2> $T/send.err; echo $? > $T/send.rc; } | sh -c "$3" > /dev/null 2> $T/err; rc=$?
    { echo "exit=$rc"; cat $T/err; } > $F/stderr/$c.txt
    if [ -s $T/send.err ] || [ "$(cat $T/send.rc)" != 0 ]; then
        { echo "exit=$(cat $T/send.rc)"; cat $T/send.err; } > $F/stderr/$c.send.txt
    fi
}

# ---- clean slate
zpool destroy tiny 2> /dev/null; rm -f /tmp/tiny.img
TAB=$(printf '\t')
zfs list -H -o name,userrefs -t snapshot -r src dst | while IFS=$TAB read -r s refs; do
    [ "$refs" = 0 ] && continue
    zfs holds -H "$s" | while IFS=$TAB read -r n tag t; do zfs release "$tag" "$s"; done
done
for p in src dst; do
    zfs list -H -o name -d 1 $p | tail -n +2 | while IFS= read -r d; do
        zfs list "$d" > /dev/null 2>&1 && zfs destroy -R -f "$d"
    done
done
[ "$(zfs list -H -o name -r src dst | wc -l)" = 2 ] || die "could not empty src and dst"

# ---- datasets and snapshots
run zfs create "src/with space"
run zfs create src/a
run zfs create src/b
echo hello > "/src/with space/f"; echo a > /src/a/f; echo b > /src/b/f
# several snapshots in one atomic call (one txg)
run zfs snapshot src/a@x src/b@x "src/with space@x"
# a snapshot name with a space in it
run zfs snapshot "src/with space@snap with space"
# two snapshots in separate calls (separate txgs) that share one creation second
i=0
while :; do
    zfs snapshot src/a@same_second_1 && zfs snapshot src/a@same_second_2 || die "same-second snapshots"
    [ "$(zfs get -H -p -o value creation src/a@same_second_1)" = "$(zfs get -H -p -o value creation src/a@same_second_2)" ] && break
    zfs destroy src/a@same_second_1,same_second_2; i=$((i + 1)); [ $i -lt 10 ] || die "no two snapshots in one second"
done
# bookmark with the same short name as its snapshot, and one whose snapshot is gone
run zfs bookmark src/a@x src/a#x
echo c > /src/b/g; run zfs snapshot src/b@gone
run zfs bookmark src/b@gone src/b#gone
run zfs destroy src/b@gone
# held snapshot (two holds), clone of a snapshot
echo y > /src/a/y; run zfs snapshot src/a@held
run zfs hold zsnap src/a@held
run zfs hold keep "src/a@held"
run zfs clone src/a@x src/a_clone
# a volume with a snapshot
run zfs create -V 16M src/vol
run zfs snapshot src/vol@v1
# user property set at snapshot creation
run zfs snapshot -o zsnap:managed=yes src/a@zsnap_hourly_20261123T150000Z
# names in the schemes of zsnap, sanoid, zfs-auto-snapshot and zrepl
run zfs create src/names
for s in zsnap_hourly_20261123T150000Z autosnap_2026-11-23_15:00:01_hourly \
         zfs-auto-snap_hourly-2026-11-23-1500 zrepl_20261123_150000_000 manual; do
    echo $s > /src/names/$s; run zfs snapshot src/names@$s
done
run zfs set zsnap:managed=yes src/names@zsnap_hourly_20261123T150000Z
# replicated copy on dst (same snapshot guids, properties with source "received")
zfs send -R src/names@manual | zfs recv -u dst/names || die "send -R names"
# encrypted dataset (hex key file, fast under emulation) with a child, and one whose
# key is unloaded
od -v -An -tx1 -N32 /dev/urandom | tr -d ' \n' > /root/key
run zfs create -o encryption=on -o keyformat=hex -o keylocation=file:///root/key src/enc
run zfs create src/enc/child
echo secret > /src/enc/s; run zfs snapshot -r src/enc@e1
run zfs create -o encryption=on -o keyformat=hex -o keylocation=file:///root/key src/enc_locked
run zfs unmount src/enc_locked
run zfs unload-key src/enc_locked
# interrupted receives: a full stream and an incremental one, each cut at 200000 bytes
run zfs create src/big
dd if=/dev/urandom of=/src/big/r1 bs=1M count=4 2> /dev/null; run zfs snapshot src/big@full
dd if=/dev/urandom of=/src/big/r2 bs=1M count=4 2> /dev/null; run zfs snapshot src/big@incr
cap_pipe interrupted-full-recv "zfs send src/big@full | head -c 200000" "zfs recv -s dst/partial"
zfs send src/big@full | zfs recv -s dst/incpartial || die "recv dst/incpartial"
cap_pipe interrupted-incremental-recv "zfs send -i @full src/big@incr | head -c 200000" "zfs recv -s dst/incpartial"
# a dataset with a quota (used below), and one kept busy (below)
run zfs create -o quota=1M src/quota
run zfs create src/busy

# ---- listings
zfs version > $F/version.txt
LC_ALL=C zfs list -H -p -t filesystem,volume,snapshot,bookmark -o name,type,guid,createtxg,creation,userrefs,clones,origin,encryption,keystatus,receive_resume_token,mountpoint,used,zsnap:managed,zsnap:expires -r src dst > $F/list.tsv
g() { f=$1; shift; zfs get -H -p -o name,property,value,source all "$@" > $F/get-$f.tsv; }
g with-space "src/with space"
g snapshot-held src/a@held
g snapshot-user-prop src/a@zsnap_hourly_20261123T150000Z
g bookmark src/a#x
g clone src/a_clone
g volume src/vol
g encrypted src/enc/child
g encrypted-locked src/enc_locked
g partial-full dst/partial
g partial-incremental dst/incpartial
g received dst/names
zfs holds -H -p src/a@held > $F/holds.tsv

# ---- failing commands
cap destroy-held-snapshot zfs destroy src/a@held
cap destroy-snapshot-with-clones zfs destroy src/a@x
cap destroy-nonexistent-dataset zfs destroy src/nonexistent
cap destroy-nonexistent-snapshot zfs destroy src/a@nonexistent
cap list-nonexistent-dataset zfs list -H -p -t all -r src/nonexistent
cap send-invalid-resume-token zfs send -t 1-0123abcd-c0-789c
cap snapshot-exists zfs snapshot src/a@x
cap snapshot-exists-atomic zfs snapshot src/a@x2 src/b@x
cap_pipe recv-full-into-resumable "zfs send src/big@full" "zfs recv dst/partial"
cap_pipe recv-incremental-into-resumable "zfs send -i @full src/big@incr" "zfs recv dst/incpartial"
cap_pipe recv-incremental-missing-target "zfs send -i @x src/a@held" "zfs recv dst/a_nobase"
zfs send src/names@zsnap_hourly_20261123T150000Z | zfs recv -u dst/n2 || die "recv dst/n2"
cap_pipe recv-incremental-base-mismatch \
    "zfs send -i @zrepl_20261123_150000_000 src/names@manual" "zfs recv -u dst/n2"
cap_pipe recv-truncated-stream "zfs send src/big@full | head -c 200000" "zfs recv dst/trunc"
cap_pipe recv-garbage-stream "head -c 100000 /dev/urandom" "zfs recv dst/garbage"
cap_pipe recv-existing-without-force "zfs send src/a@x" "zfs recv dst/names"
(cd /src/busy && exec sleep 60) & busy=$!
sleep 1
cap destroy-busy-dataset zfs destroy src/busy
cap unmount-busy-dataset zfs unmount src/busy
kill $busy; wait $busy 2> /dev/null
# as an unprivileged user (/dev/zfs is 0666, so the kernel's delegation check answers)
cap permission-denied-snapshot su -s /bin/sh nobody -c 'cd /; zfs snapshot src/a@perm'
cap permission-denied-destroy su -s /bin/sh nobody -c 'cd /; zfs destroy src/names@manual'
cap permission-denied-destroy-dataset su -s /bin/sh nobody -c 'cd /; zfs destroy src/quota'
cap load-key-wrong-key sh -c 'od -v -An -tx1 -N32 /dev/zero | tr -d " \n" > /root/wrongkey; zfs load-key -L file:///root/wrongkey src/enc_locked'
cap write-over-quota dd if=/dev/urandom of=/src/quota/f bs=64k count=64
# out of space in a tiny file-backed pool
truncate -s 64M /tmp/tiny.img
run zpool create -O mountpoint=/tiny tiny /tmp/tiny.img
run zfs create tiny/fill
cap write-enospc dd if=/dev/urandom of=/tiny/fill/f bs=1M count=200
sync
cap snapshot-full-pool zfs snapshot tiny/fill@s
cap create-full-pool zfs create tiny/other
cap_pipe recv-full-pool "zfs send src/big@full" "zfs recv tiny/recv"
zpool list -H -p tiny > $T/tiny.txt
run zpool destroy tiny; rm -f /tmp/tiny.img /root/wrongkey
echo "tiny pool at the end: $(cat $T/tiny.txt)"
rm -rf $T
SH

t0=$(date +%s)
printf '%s\n' "$GUEST" | "${SSH[@]}" 'cat > /tmp/capture.sh'
"${SSH[@]}" 'sh /tmp/capture.sh' < /dev/null
rm -rf "$DEST.new"; mkdir -p "$DEST.new"
"${SSH[@]}" 'tar -C /tmp/fx -cf - .' < /dev/null | tar -C "$DEST.new" -xf -
[ -f "$DEST/README.md" ] && cp "$DEST/README.md" "$DEST.new/"
rm -rf "$DEST"; mv "$DEST.new" "$DEST"
echo "captured into $DEST in $(( $(date +%s) - t0 ))s"

bad=0
for f in "$DEST"/stderr/*.txt; do
    rc=$(head -n1 "$f"); rc=${rc#exit=}
    printf '%-42s exit=%-3s %s\n' "$(basename "$f" .txt)" "$rc" "$(sed -n 2p "$f" | cut -c1-90)"
    case "$f" in *.send.txt) ;; *) [ "$rc" != 0 ] || { echo "  ^ expected a failure" >&2; bad=1; } ;; esac
done
exit $bad
