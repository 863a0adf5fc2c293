#!/bin/bash
# start.sh - boot the testbed guest in the background (QEMU, software emulation/TCG)
# and wait until ssh answers. Writes $TB_RUN/ssh_config and $TB_RUN/env and prints
# the env file's path on stdout (progress goes to stderr).
#
# Environment (defaults in brackets):
#   ZSNAP_TESTBED_PORT       host port forwarded from 127.0.0.1 to guest port 22 [2222]
#   ZSNAP_TESTBED_MEM        guest RAM in MiB [3072]
#   ZSNAP_TESTBED_SMP        vCPUs [2]
#   ZSNAP_TESTBED_POOLS      pool names, one virtio disk each [src dst]
#   ZSNAP_TESTBED_DISK_SIZE  size of each sparse raw disk [4G]
#   ZSNAP_TESTBED_FRESH      1: new empty disks and pools on every start; 0: keep [1]
#   ZSNAP_TESTBED_BOOT_TIMEOUT seconds to wait for ssh [300]
#   ZSNAP_TESTBED_SSH_MUX    1: ssh connection sharing (ControlMaster) in ssh_config [1]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
OUT=$TB_OUT RUN=$TB_RUN
PORT=${ZSNAP_TESTBED_PORT:-2222}
MEM=${ZSNAP_TESTBED_MEM:-3072}
SMP=${ZSNAP_TESTBED_SMP:-2}
POOLS=${ZSNAP_TESTBED_POOLS:-src dst}
DISK_SIZE=${ZSNAP_TESTBED_DISK_SIZE:-4G}
FRESH=${ZSNAP_TESTBED_FRESH:-1}
TIMEOUT=${ZSNAP_TESTBED_BOOT_TIMEOUT:-300}
PIDFILE=$RUN/qemu.pid

[ -f "$OUT/.complete" ] || { echo "testbed $TB_KEY not built ($OUT); run build.sh (as root) or up.sh" >&2; exit 1; }
mkdir -p "$RUN"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "guest already running (pid $(cat "$PIDFILE"), testbed $(cat "$RUN/key" 2>/dev/null)); run stop.sh first" >&2
    exit 1
fi
# a connection master left from an earlier boot would talk to a dead guest
[ -S "$RUN/ssh-mux" ] && ssh -F "$RUN/ssh_config" -O exit "$TB_HOST" 2>/dev/null || true
rm -f "$PIDFILE" "$RUN/monitor.sock" "$RUN/ssh-mux" "$RUN/env"
echo "$TB_KEY" > "$RUN/key"

cat > "$RUN/ssh_config" <<CFG
Host $TB_HOST
  HostName 127.0.0.1
  Port $PORT
  User root
  IdentityFile $OUT/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $OUT/known_hosts
  HostKeyAlias $TB_HOST
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
  ConnectTimeout 10
  ServerAliveInterval 15
CFG
if [ "${ZSNAP_TESTBED_SSH_MUX:-1}" = 1 ]; then
    printf '  ControlMaster auto\n  ControlPath %s/ssh-mux\n  ControlPersist 600\n' "$RUN" >> "$RUN/ssh_config"
fi

# One sparse raw disk per pool: vda, vdb, ... in the guest (in this order); the disk
# serial is the pool name (guest-hotplug.sh makes /dev/disk/by-id/virtio-<pool>).
drives=() spec="" i=0
for p in $POOLS; do
    img=$RUN/disk-$p.img
    if [ "$FRESH" = 1 ] || [ ! -f "$img" ]; then
        rm -f "$img"; truncate -s "$DISK_SIZE" "$img"
    fi
    dev=vd$(printf "\\x$(printf %x $((97 + i)))")
    drives+=(-drive "file=$img,if=none,id=d$i,format=raw,cache=unsafe,discard=unmap,aio=threads"
             -device "virtio-blk-pci,drive=d$i,serial=$p")
    spec="$spec${spec:+,}$p:$dev"
    i=$((i + 1))
done

: > "$RUN/console.log"
t0=$(date +%s.%N)
qemu-system-x86_64 \
    -name "$TB_NAME" -machine q35 -accel tcg,thread=multi -cpu max \
    -smp "$SMP" -m "$MEM" \
    -nodefaults -no-user-config -display none -vga none \
    -serial "file:$RUN/console.log" \
    -monitor "unix:$RUN/monitor.sock,server,nowait" \
    -kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
    -append "console=ttyS0 loglevel=4 panic=-1 zfstb.pools=$spec zfstb.fresh=$FRESH" \
    "${drives[@]}" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:22" \
    -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci \
    -no-reboot -daemonize -pidfile "$PIDFILE"

SSH=(ssh -F "$RUN/ssh_config" "$TB_HOST")
while :; do
    if ! kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null; then
        echo "qemu exited during boot; see $RUN/console.log" >&2; exit 1
    fi
    if grep -q ZFSTB-READY "$RUN/console.log" 2>/dev/null &&
       "${SSH[@]}" -o ConnectTimeout=5 true 2>/dev/null; then
        break
    fi
    if [ "$(awk "BEGIN{print ($(date +%s.%N) - $t0 > $TIMEOUT)}")" = 1 ]; then
        echo "ssh not ready after ${TIMEOUT}s; see $RUN/console.log (guest left running, pid $(cat "$PIDFILE"); stop.sh stops it)" >&2
        exit 1
    fi
    sleep 1
done
t1=$(date +%s.%N)

cat > "$RUN/env" <<ENV
export ZSNAP_TESTBED_SSH_CONFIG=$RUN/ssh_config
export ZSNAP_TESTBED_HOST=$TB_HOST
export ZSNAP_TESTBED_ADDR=127.0.0.1
export ZSNAP_TESTBED_PORT=$PORT
export ZSNAP_TESTBED_USER=root
export ZSNAP_TESTBED_KEY=$OUT/id_ed25519
export ZSNAP_TESTBED_KNOWN_HOSTS=$OUT/known_hosts
export ZSNAP_TESTBED_POOLS="$POOLS"
export ZSNAP_TESTBED_ZFS_VERSION=$TB_ZFS_VERSION
ENV
printf 'guest up (pid %s) in %.1fs; pools: %s\n' "$(cat "$PIDFILE")" \
    "$(awk "BEGIN{print $t1 - $t0}")" "$("${SSH[@]}" "zpool list -H -o name,health | tr '\t\n' ': '")" >&2
"${SSH[@]}" 'grep -E "FAILED|failed" /var/log/testbed.log' >&2 || true
cat >&2 <<MSG
ssh:            ssh -F $RUN/ssh_config $TB_HOST <command>
without config: ssh -p $PORT -i $OUT/id_ed25519 -o UserKnownHostsFile=$OUT/known_hosts -o HostKeyAlias=$TB_HOST root@127.0.0.1 <command>
MSG
echo "$RUN/env"
