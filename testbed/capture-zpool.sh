#!/bin/bash
# capture-zpool.sh - with the testbed guest running (up.sh), build pools in awkward
# states from scratch file vdevs and save what `zpool list` and `zpool status` print
# about them as test fixtures in zsnap-core/tests/fixtures/real/zpool/ (see the
# README.md there).
#
# The scratch pools (fx*) live on files under /tmp/zpfx in the guest and are destroyed
# at the end; the testbed's own pools src and dst are only listed, never changed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
[ -f "$TB_RUN/env" ] || { echo "guest not running (no $TB_RUN/env); run testbed/up.sh" >&2; exit 1; }
DEST=$(cd "$TB_HERE/.." && pwd)/zsnap-core/tests/fixtures/real/zpool
SSH=(ssh -F "$TB_RUN/ssh_config" "$TB_HOST")

# The guest part (busybox ash). Writes everything below /tmp/zfx in the guest.
read -r -d '' GUEST <<'SH' || true
set -u
export LC_ALL=C
D=/tmp/zpfx F=/tmp/zfx
P=/sys/module/zfs/parameters/zfs_scan_suspend_progress
die() { echo "SETUP FAILED: $*" >&2; exit 1; }
run() { "$@" || die "$*"; }
cleanup() {
    [ -w $P ] && echo 0 > $P
    for p in fxdeg fxfault fxmiss fxck fxdata fxcx; do zpool destroy -f $p 2> /dev/null; done
    rm -rf $D
}
img() { for f in "$@"; do truncate -s ${SIZE:-64M} $D/$f.img || die "truncate $f"; done; }
# st CASE POOL...: what zsnap runs, for these pools
st() { c=$1; shift; zpool status -p "$@" > $F/status-$c.txt 2>&1 || die "status $c"; }
# cap CASE CMD...: a command expected to fail; CASE.txt = exit status, then stderr
cap() { c=$1; shift; "$@" > /dev/null 2> $F/err; rc=$?; { echo "exit=$rc"; cat $F/err; } > $F/stderr-$c.txt; rm -f $F/err; }

cleanup
rm -rf $F; mkdir -p $D $F

# the testbed's pools, healthy
st healthy src dst

# a mirror with one side offlined: DEGRADED pool, OFFLINE vdev
img deg-a deg-b
run zpool create -o failmode=continue -m none fxdeg mirror $D/deg-a.img $D/deg-b.img
run zpool offline fxdeg $D/deg-b.img
st degraded-offline fxdeg

# a mirror with one side forced into a fault: FAULTED vdev
img fault-a fault-b
run zpool create -o failmode=continue -m none fxfault mirror $D/fault-a.img $D/fault-b.img
run zpool offline -f fxfault $D/fault-b.img
st faulted-vdev fxfault

# a mirror imported without one of its files: UNAVAIL vdev ("was /path")
img miss-a miss-b
run zpool create -o failmode=continue -m none fxmiss mirror $D/miss-a.img $D/miss-b.img
run zpool export fxmiss
mkdir -p $D/away; run mv $D/miss-b.img $D/away/
run zpool import -d $D/miss-a.img fxmiss
st unavail-vdev fxmiss

# a mirror with one side overwritten behind ZFS's back, then scrubbed: CKSUM errors,
# repaired from the other side, and a finished scrub
SIZE=128M img ck-a ck-b
run zpool create -o failmode=continue -O mountpoint=/tmp/zpfx/ck fxck mirror $D/ck-a.img $D/ck-b.img
run dd if=/dev/urandom of=/tmp/zpfx/ck/f bs=1M count=16 2> /dev/null
run zpool sync fxck
run dd if=/dev/zero of=$D/ck-b.img bs=1M seek=8 count=112 conv=notrunc 2> /dev/null
run zpool scrub -w fxck
st cksum-repaired fxck

# one file vdev, no redundancy, overwritten: permanent data errors
SIZE=128M img data-a
run zpool create -o failmode=continue -O mountpoint=/tmp/zpfx/data fxdata $D/data-a.img
run dd if=/dev/urandom of=/tmp/zpfx/data/f bs=1M count=16 2> /dev/null
run zpool sync fxdata
run dd if=/dev/zero of=$D/data-a.img bs=1M seek=40 count=40 conv=notrunc 2> /dev/null
zpool scrub -w fxdata
st data-errors fxdata

# raidz1 with a mirrored log, a cache device and a spare; a scrub held in progress,
# then paused
SIZE=128M img cx-1 cx-2 cx-3 cx-l1 cx-l2 cx-c cx-s
run zpool create -o failmode=continue -O mountpoint=/tmp/zpfx/cx fxcx raidz1 $D/cx-1.img $D/cx-2.img $D/cx-3.img \
    log mirror $D/cx-l1.img $D/cx-l2.img cache $D/cx-c.img spare $D/cx-s.img
run dd if=/dev/urandom of=/tmp/zpfx/cx/f bs=1M count=16 2> /dev/null
run zpool sync fxcx
st layout fxcx
echo 1 > $P || die "suspend scans"
run zpool scrub fxcx
sleep 2
st scrub-in-progress fxcx
run zpool scrub -p fxcx
st scrub-paused fxcx
run zpool scrub -s fxcx
echo 0 > $P

# everything at once, as one location's `zpool status -p` and `zpool list` give it
zpool status -p > $F/status-all.txt 2>&1 || die "status all"
zpool list -H -p -o name,size,allocated,free,capacity,health > $F/list.tsv || die "list"
cap status-no-such-pool zpool status -p nosuchpool
cap list-no-such-pool zpool list -H -p -o name,size,allocated,free,capacity,health nosuchpool
zpool version > $F/version.txt 2>&1

cleanup
SH

t0=$(date +%s)
printf '%s\n' "$GUEST" | "${SSH[@]}" 'cat > /tmp/capture-zpool.sh'
"${SSH[@]}" 'sh /tmp/capture-zpool.sh' < /dev/null
rm -rf "$DEST.new"; mkdir -p "$DEST.new"
"${SSH[@]}" 'tar -C /tmp/zfx -cf - . && rm -rf /tmp/zfx /tmp/capture-zpool.sh' < /dev/null | tar -C "$DEST.new" -xf -
[ -f "$DEST/README.md" ] && cp "$DEST/README.md" "$DEST.new/"
rm -rf "$DEST"; mv "$DEST.new" "$DEST"
echo "captured into $DEST in $(( $(date +%s) - t0 ))s"
grep -h -e '^  pool:' -e '^ state:' -e '^  scan:' "$DEST"/status-all.txt
