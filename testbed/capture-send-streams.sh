#!/bin/bash
# capture-send-streams.sh - with the testbed guest running (up.sh), make two small
# datasets with real OpenZFS (one encrypted) and save send streams of them, in every
# form zsnap stores or a user might (full, -c, -e -L, -i, -I, -w, -R, -p), zstd-compressed,
# as fixtures in zsnap-core/tests/fixtures/real/send/, with guids.txt naming the guids
# of the snapshots. The stream check (zsnap_core::backup::SendStreamCheck) is tested
# against them. Destroys src/fx and src/fxe in the guest first.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
[ -f "$TB_RUN/env" ] || { echo "guest not running (no $TB_RUN/env); run testbed/up.sh" >&2; exit 1; }
DEST=$(cd "$TB_HERE/.." && pwd)/zsnap-core/tests/fixtures/real/send
SSH=(ssh -F "$TB_RUN/ssh_config" "$TB_HOST")
command -v zstd >/dev/null || { echo "zstd is needed on this machine" >&2; exit 1; }

# Small random files: random bytes do not compress, and the fixtures stay small.
"${SSH[@]}" 'set -e
zfs destroy -r src/fx 2>/dev/null || true
zfs destroy -r src/fxe 2>/dev/null || true
zfs create -o compression=lz4 src/fx
m=$(zfs get -H -o value mountpoint src/fx)
echo hello > $m/tiny
dd if=/dev/urandom of=$m/rand bs=1k count=4 2>/dev/null
yes zsnap | head -c 300000 > $m/text
mkdir $m/dir && echo x > $m/dir/y
zfs snapshot src/fx@a
dd if=/dev/urandom of=$m/rand2 bs=1k count=2 2>/dev/null
rm $m/tiny
zfs snapshot src/fx@b
echo fixture-passphrase > /tmp/fxkey
zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file:///tmp/fxkey src/fxe
m=$(zfs get -H -o value mountpoint src/fxe)
dd if=/dev/urandom of=$m/r bs=1k count=2 2>/dev/null
echo small > $m/s
zfs snapshot src/fxe@a
echo more >> $m/s
zfs snapshot src/fxe@b'

mkdir -p "$DEST"
rm -f "$DEST"/*.zfs.zst
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS=: read -r name cmd; do
    "${SSH[@]}" "$cmd" < /dev/null > "$tmp/$name.zfs"
    zstd -q -19 -f "$tmp/$name.zfs" -o "$DEST/$name.zfs.zst"
    echo "$name: $(stat -c %s "$tmp/$name.zfs") bytes ($cmd)"
done <<'CASES'
full:zfs send src/fx@a
full-c:zfs send -c src/fx@a
full-e-L:zfs send -e -L src/fx@a
props:zfs send -p src/fx@a
inc:zfs send -i @a src/fx@b
inc-c:zfs send -c -i @a src/fx@b
big-I:zfs send -I @a src/fx@b
compound:zfs send -R src/fx@b
raw-full:zfs send -w src/fxe@a
raw-inc:zfs send -w -i @a src/fxe@b
CASES
"${SSH[@]}" 'zfs list -H -p -o name,guid -t snapshot src/fx src/fxe' > "$DEST/guids.txt"
"${SSH[@]}" 'zfs version' > "$DEST/version.txt"
echo "saved in $DEST"
