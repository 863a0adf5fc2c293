#!/bin/bash
# start.sh [STATE_DIR] - start a single-node Garage (S3-compatible server) on 127.0.0.1
# for tests, with a fresh key and the bucket zsnap-test, and print the path of an env
# file on stdout (everything else goes to stderr), so
#     . "$(testbed/s3/start.sh)"
# leaves ZSNAP_TEST_S3_* in the calling shell. Stop it with testbed/s3/stop.sh.
#
# STATE_DIR (default ${ZSNAP_GARAGE_ROOT:-$HOME/.cache/zsnap-garage}/run) holds the
# config, metadata and data (fresh at every start), the log, garage.pid and env.
# A server already running from STATE_DIR is stopped first.
#
# Ports: ZSNAP_GARAGE_S3_PORT (3900), ZSNAP_GARAGE_RPC_PORT (3901),
# ZSNAP_GARAGE_ADMIN_PORT (3903). A default port that is busy is replaced by the next
# free one; a port given explicitly must be free.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${1:-${ZSNAP_GARAGE_ROOT:-$HOME/.cache/zsnap-garage}/run}
BUCKET=zsnap-test
KEY_NAME=zsnap-test-key
REGION=garage

BIN=$("$HERE/install.sh")

if [ -f "$STATE/garage.pid" ]; then
    "$HERE/stop.sh" "$STATE"
fi

# Secrets (the rpc secret, the key's secret) are written below: owner-only files.
umask 077
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
CONF=$STATE/garage.toml
rm -rf "$STATE/meta" "$STATE/data"
mkdir "$STATE/meta" "$STATE/data"

# Whether something accepts connections on 127.0.0.1:$1 (bash's /dev/tcp, no tools).
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick VAR DEFAULT: the port in $VAR (must be free), or DEFAULT or the next free one
# not in $TAKEN (ports already picked; pick runs in a subshell, so callers add to it).
TAKEN=" "
pick() {
    local var=$1 default=$2 port
    if [ -n "${!var:-}" ]; then
        port=${!var}
        if busy "$port"; then echo "port $port ($var) is busy" >&2; return 1; fi
    else
        port=$default
        while busy "$port" || [[ $TAKEN == *" $port "* ]]; do port=$((port + 1)); done
    fi
    echo "$port"
}
S3_PORT=$(pick ZSNAP_GARAGE_S3_PORT 3900); TAKEN="$TAKEN$S3_PORT "
RPC_PORT=$(pick ZSNAP_GARAGE_RPC_PORT 3901); TAKEN="$TAKEN$RPC_PORT "
ADMIN_PORT=$(pick ZSNAP_GARAGE_ADMIN_PORT 3903)

if command -v openssl >/dev/null; then
    RPC_SECRET=$(openssl rand -hex 32)
else
    RPC_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
fi

cat >"$CONF" <<TOML
metadata_dir = "$STATE/meta"
data_dir = "$STATE/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$RPC_SECRET"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
TOML

g() { "$BIN" -c "$CONF" "$@"; }

# Detached from our stdout (a caller's $(...) would otherwise wait for the server).
"$BIN" -c "$CONF" server </dev/null >"$STATE/garage.log" 2>&1 &
PID=$!
echo "$PID" >"$STATE/garage.pid"
echo "garage $PID: s3 127.0.0.1:$S3_PORT, rpc $RPC_PORT, admin $ADMIN_PORT, log $STATE/garage.log" >&2

fail() {
    echo "$1; the end of $STATE/garage.log:" >&2
    tail -n 20 "$STATE/garage.log" >&2 || true
    "$HERE/stop.sh" "$STATE" || true
    exit 1
}

# Up when the CLI reaches the node over rpc (a few seconds at most).
for _ in $(seq 1 60); do
    kill -0 "$PID" 2>/dev/null || fail "garage exited"
    if g status >/dev/null 2>&1; then break; fi
    sleep 0.5
done
g status >/dev/null 2>&1 || fail "garage did not answer within 30 s"

# A one-node layout, a key and a bucket it may read, write and own.
node=$(g node id -q | cut -d@ -f1)
g layout assign -z dc1 -c 1G "$node" >&2
g layout apply --version 1 >&2
key_out=$(g key create "$KEY_NAME")
KEY_ID=$(sed -n 's/^Key ID: *//p' <<<"$key_out" | head -n 1)
SECRET=$(sed -n 's/^Secret key: *//p' <<<"$key_out" | head -n 1)
[ -n "$KEY_ID" ] && [ -n "$SECRET" ] || fail "could not read the key from 'garage key create'"
g bucket create "$BUCKET" >&2
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_NAME" >&2

ENDPOINT=http://127.0.0.1:$S3_PORT
cat >"$STATE/env" <<ENV
export ZSNAP_TEST_S3_ENDPOINT=$ENDPOINT
export ZSNAP_TEST_S3_REGION=$REGION
export ZSNAP_TEST_S3_BUCKET=$BUCKET
export ZSNAP_TEST_S3_ACCESS_KEY_ID=$KEY_ID
export ZSNAP_TEST_S3_SECRET_ACCESS_KEY=$SECRET
ENV
echo "garage ready: $ENDPOINT, bucket $BUCKET, key $KEY_ID" >&2
echo "$STATE/env"
