#!/bin/bash
# stop.sh - power the testbed guest off cleanly, acting only on the pid in $TB_RUN/qemu.pid.
# 1. ssh: sync, export the pools, poweroff -f   2. QEMU monitor "quit"   3. SIGTERM to the pid
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
RUN=$TB_RUN
PIDFILE=$RUN/qemu.pid
close_mux() { [ -S "$RUN/ssh-mux" ] && ssh -F "$RUN/ssh_config" -O exit "$TB_HOST" 2>/dev/null; rm -f "$RUN/ssh-mux"; }

if [ ! -f "$PIDFILE" ]; then echo "not running (no $PIDFILE)" >&2; close_mux; exit 0; fi
PID=$(cat "$PIDFILE")
alive() { kill -0 "$PID" 2>/dev/null; }
waitgone() { local n=$1; while [ "$n" -gt 0 ] && alive; do sleep 1; n=$((n - 1)); done; ! alive; }

if ! alive; then echo "not running (stale pid file)" >&2; rm -f "$PIDFILE" "$RUN/env"; close_mux; exit 0; fi
# only act on the QEMU process this testbed started
if ! tr '\0' ' ' < "/proc/$PID/cmdline" | grep -q -- "-name $TB_NAME "; then
    echo "pid $PID is not the $TB_NAME qemu; refusing" >&2; exit 1
fi

how=""
timeout 60 ssh -F "$RUN/ssh_config" "$TB_HOST" \
    'sync; zpool export -a; sync; (sleep 1; poweroff -f) >/dev/null 2>&1 &' 2>/dev/null
close_mux
if waitgone 30; then how="guest poweroff"; fi
if [ -z "$how" ] && [ -S "$RUN/monitor.sock" ]; then
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"quit\n"); s.recv(100)' \
        "$RUN/monitor.sock" 2>/dev/null
    waitgone 15 && how="qemu monitor quit"
fi
if [ -z "$how" ]; then
    kill -TERM "$PID"; waitgone 15 && how="SIGTERM"
fi
if [ -n "$how" ]; then
    rm -f "$PIDFILE" "$RUN/env"; echo "stopped ($how)" >&2
else
    echo "could not stop pid $PID" >&2; exit 1
fi
