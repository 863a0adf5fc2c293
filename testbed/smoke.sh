#!/bin/bash
# smoke.sh - quick check that real ZFS works in the running testbed guest, over ssh
# from the host, and that a host-built (Rust, when rustc is installed) binary runs in
# the guest. Prints each step; exits non-zero if any step failed.
# Uses the datasets src/smoke, dst/smoke and dst/smoke-viahost (destroyed at the end).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
[ -f "$TB_RUN/env" ] || { echo "guest not running (no $TB_RUN/env); run start.sh or up.sh" >&2; exit 1; }
SSH=(ssh -F "$TB_RUN/ssh_config" "$TB_HOST")
S=src/smoke D=dst/smoke
PASS=0 FAIL=0 T_START=$(date +%s.%N)

g() { "${SSH[@]}" "set -o pipefail; $*"; }
report() {  # report DESC RC OUTPUT T0
    local dt; dt=$(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $4}")
    if [ "$2" = 0 ]; then PASS=$((PASS + 1)); printf 'PASS %6ss  %s\n' "$dt" "$1"
    else FAIL=$((FAIL + 1)); printf 'FAIL %6ss  %s (rc=%s)\n' "$dt" "$1" "$2"; fi
    [ -n "$3" ] && printf '%s\n' "$3" | sed 's/^/      | /' | head -n 12
}
step() {       # step DESC GUEST-COMMAND: expects exit status 0
    local t0 out rc; t0=$(date +%s.%N); out=$(g "$2" 2>&1); rc=$?; report "$1" "$rc" "$out" "$t0"
}
step_fail() {  # step_fail DESC GUEST-COMMAND: expects a non-zero exit status
    local t0 out rc; t0=$(date +%s.%N); out=$(g "$2" 2>&1); rc=$?
    if [ "$rc" != 0 ]; then report "$1" 0 "(failed as expected, rc=$rc) $out" "$t0"
    else report "$1" 1 "UNEXPECTED SUCCESS $out" "$t0"; fi
}

step "versions, /dev/zfs, pools" \
    'uname -r; zfs version; ls -l /dev/zfs; zpool list -H -o name,size,health'
step "clean up leftovers" \
    "for d in $S $D $D-viahost; do zfs list -H -o name \$d >/dev/null 2>&1 && zfs destroy -r \$d; done; true"
step "create, write 4 MiB, snapshots s1 s2" \
    "zfs create $S && dd if=/dev/urandom of=/$S/f1 bs=1M count=4 2>/dev/null && zfs snapshot $S@s1 && echo two > /$S/f2 && zfs snapshot $S@s2"
step "zfs list -Hp is numeric" \
    "zfs list -Hp -t all -o name,used,createtxg,creation -r $S | tee /tmp/l; awk -F'\t' '\$2 !~ /^[0-9]+\$/ {exit 1}' /tmp/l"
step "full send s1 + incremental s1..s2 -> dst, same content" \
    "zfs send $S@s1 | zfs recv $D && zfs send -i @s1 $S@s2 | zfs recv $D && [ \"\$(sha256sum < /$S/f1)\" = \"\$(sha256sum < /$D/f1)\" ] && cat /$D/f2"
t0=$(date +%s.%N)
out=$(g "zfs send $S@s1" | g "zfs recv $D-viahost && zfs list -H -o name,used $D-viahost" 2>&1); rc=$?
report "stream through the host: ssh zfs send | ssh zfs recv" $rc "$out" "$t0"
step_fail "interrupted receive (stream cut at 200 kB), recv -s" \
    "dd if=/dev/urandom of=/$S/f3 bs=1M count=2 2>/dev/null && zfs snapshot $S@s3 && zfs send -i @s2 $S@s3 | head -c 200000 | zfs recv -s $D"
step "receive_resume_token set; resume with send -t" \
    "t=\$(zfs get -H -o value receive_resume_token $D); [ \"\$t\" != - ] && zfs send -t \$t | zfs recv -s $D && zfs list -H -o name $D@s3"
step "bookmark, hold, destroy of held snapshot refused, release" \
    "zfs bookmark $S@s3 $S#b3 && zfs hold keep $S@s3 && ! zfs destroy $S@s3 2>/dev/null && zfs release keep $S@s3"
step "encryption with a hex key file" \
    "od -v -An -tx1 -N32 /dev/urandom | tr -d ' \n' > /root/smoke.key && zfs create -o encryption=on -o keyformat=hex -o keylocation=file:///root/smoke.key $S/enc && zfs get -H -o value keystatus $S/enc"

# A host-built binary in the guest (the glibc libraries are in the initramfs).
t0=$(date +%s.%N); tmp=$(mktemp -d)
if command -v rustc >/dev/null 2>&1; then
    cat > "$tmp/hello.rs" <<'RS'
fn main() {
    let h = std::thread::spawn(|| (2.0f64).sqrt());
    let r = std::panic::catch_unwind(|| panic!("unwinding works"));
    println!("rust ok: sqrt2={:.3} unwind={} args={:?}", h.join().unwrap(), r.is_err(),
             std::env::args().skip(1).collect::<Vec<_>>());
}
RS
    rustc -O -C strip=symbols -o "$tmp/bin" "$tmp/hello.rs" 2>&1 && what=rust
else
    cp "$(command -v env)" "$tmp/bin" && what=env
fi
out=$(ldd "$tmp/bin" 2>&1; g 'cat > /tmp/smoke-bin && chmod +x /tmp/smoke-bin && /tmp/smoke-bin "a b" c' < "$tmp/bin" 2>&1); rc=$?
report "host-built binary ($what) runs in the guest" $rc "$out" "$t0"
rm -rf "$tmp"
step "cleanup" "zfs destroy -r $S && zfs destroy -r $D && zfs destroy -r $D-viahost && rm -f /root/smoke.key /tmp/smoke-bin /tmp/l"

printf 'smoke: %d passed, %d failed (%.1fs)\n' "$PASS" "$FAIL" "$(awk "BEGIN{print $(date +%s.%N) - $T_START}")"
[ "$FAIL" = 0 ]
