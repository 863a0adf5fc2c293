#!/bin/bash
# install.sh - make sure the pinned Garage binary exists and print its path on stdout.
#
# The binary lives at ${ZSNAP_GARAGE_ROOT:-$HOME/.cache/zsnap-garage}/$GARAGE_VERSION/bin/garage.
# When it is missing it is built from crates.io with `cargo install --locked` (about ten
# minutes on two cores, once per machine and version). Build output goes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"

ROOT=${ZSNAP_GARAGE_ROOT:-$HOME/.cache/zsnap-garage}/$GARAGE_VERSION
BIN=$ROOT/bin/garage

if [ ! -x "$BIN" ]; then
    echo "building garage $GARAGE_VERSION into $ROOT (about 10 minutes, once)" >&2
    cargo install garage --locked --version "$GARAGE_VERSION" --root "$ROOT" >&2
fi

# A binary of another version at the pinned path would make tests lie about what they ran.
version=$("$BIN" --version)
case "$version" in
    *":$GARAGE_VERSION "*) ;;
    *) echo "$BIN says \"$version\", expected version $GARAGE_VERSION" >&2; exit 1 ;;
esac
echo "$BIN"
