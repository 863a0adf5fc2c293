#!/bin/bash
# up.sh - the one entry point: build the guest (or reuse the cached build), boot it,
# and print the path of the env file on stdout. Everything else goes to stderr, so
#     . "$(testbed/up.sh)"
# leaves ZSNAP_TESTBED_* in the calling shell. A guest of the same build that is
# already running and answering is reused. Stop it with testbed/stop.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/paths.sh"

if [ -f "$TB_RUN/qemu.pid" ] && kill -0 "$(cat "$TB_RUN/qemu.pid")" 2>/dev/null; then
    if [ "$(cat "$TB_RUN/key" 2>/dev/null)" = "$TB_KEY" ] && [ -f "$TB_RUN/env" ] &&
       ssh -F "$TB_RUN/ssh_config" "$TB_HOST" true 2>/dev/null; then
        echo "guest $TB_KEY already running, reused" >&2
        echo "$TB_RUN/env"; exit 0
    fi
    echo "a guest of another build ($(cat "$TB_RUN/key" 2>/dev/null)) or a dead one is running; run testbed/stop.sh first" >&2
    exit 1
fi
"$HERE/build.sh" >&2
"$HERE/start.sh"
