#!/bin/bash
# stop.sh [STATE_DIR] - stop the Garage that start.sh started from STATE_DIR (by its pid
# file: SIGTERM, up to 10 s, then SIGKILL) and remove its state: config, metadata,
# data, log, pid and env files (STATE_DIR itself only if nothing else is left in it).
set -euo pipefail
STATE=${1:-${ZSNAP_GARAGE_ROOT:-$HOME/.cache/zsnap-garage}/run}
PIDFILE=$STATE/garage.pid

if [ -f "$PIDFILE" ]; then
    PID=$(cat "$PIDFILE")
    alive() { kill -0 "$PID" 2>/dev/null; }
    # Act only on the garage serving this STATE_DIR's config, never on a reused pid.
    if alive && tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null | grep -qF -- "$STATE/garage.toml server"; then
        kill -TERM "$PID"
        for _ in $(seq 1 20); do alive || break; sleep 0.5; done
        if alive; then
            echo "garage $PID ignored SIGTERM; SIGKILL" >&2
            kill -KILL "$PID"
            for _ in $(seq 1 10); do alive || break; sleep 0.5; done
        fi
        if alive; then echo "could not stop garage $PID" >&2; exit 1; fi
        echo "stopped garage $PID" >&2
    else
        echo "garage not running (stale $PIDFILE)" >&2
    fi
else
    echo "garage not running (no $PIDFILE)" >&2
fi

if [ -d "$STATE" ]; then
    rm -rf "$STATE/meta" "$STATE/data"
    rm -f "$STATE/garage.toml" "$STATE/garage.log" "$STATE/env" "$PIDFILE"
    rmdir "$STATE" 2>/dev/null || true
fi
