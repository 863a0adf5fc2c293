#!/bin/bash
# build.sh - build the zsnap testbed guest: a Debian 6.12 cloud kernel plus an
# initramfs that runs real OpenZFS (userland and kernel module from
# bookworm-backports), dropbear for ssh, and the glibc libraries a Rust binary needs.
#
# Debian 12 (bookworm) x86_64. Idempotent: the outputs go to $TB_OUT (see paths.sh,
# a cache directory outside the checkout named by a hash of this recipe); when that
# directory is complete the script only checks that the host packages are present
# and exits (well under 2 s). Needs root only when there is something to build.
#
# Outputs in $TB_OUT: vmlinuz initramfs.cpio.gz id_ed25519{,.pub} known_hosts
#   dropbear_ed25519_host_key kver zfs-version logs/build-*.log logs/build-times.txt .complete
# The compiled zfs/spl modules are cached in $TB_MODS/<kernel>_<zfs>_<recipe hash>/.
# Environment: ZSNAP_TESTBED_CACHE, ZSNAP_TESTBED_KVER, ZSNAP_TESTBED_ZFS_VERSION (paths.sh)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
HERE=$TB_HERE OUT=$TB_OUT LOGS=$TB_OUT/logs
KVER=$TB_KVER ZVER=$TB_ZFS_VERSION ZUP=${TB_ZFS_VERSION%-*}   # e.g. 2.3.2-2~bpo12+2 -> 2.3.2
export DEBIAN_FRONTEND=noninteractive

SOURCES=/etc/apt/sources.list.d/zsnap-testbed.sources
BASE_PKGS="busybox-static dropbear-bin openssh-client cpio kmod xz-utils gzip build-essential file binutils pv mbuffer zstd lz4"
BPO_PKGS="qemu-system-x86 qemu-utils"

is_installed() {  # all given packages (name or name=version) installed?
    local p v
    for p in "$@"; do
        v=$(dpkg-query -W -f='${Status} ${Version}\n' "${p%%=*}" 2>/dev/null) || return 1
        case "$v" in "install ok installed "*) ;; *) return 1 ;; esac
        case "$p" in *=*) [ "${v##* }" = "${p#*=}" ] || return 1 ;; esac
    done
}
host_ready() {
    [ -f "$SOURCES" ] && is_installed $BASE_PKGS $BPO_PKGS "zfsutils-linux=$ZVER" \
        "linux-image-$KVER" "linux-headers-$KVER"
}

# Fast path: everything cached.
if [ -f "$OUT/.complete" ] && host_ready; then
    echo "testbed $TB_KEY: cached in $OUT" >&2
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build.sh: $OUT is incomplete; run build.sh as root" >&2; exit 1; }
mkdir -p "$OUT" "$LOGS" "$TB_MODS"
JOBS=$(nproc)

TIMES=$LOGS/build-times.txt
T_ALL=$(date +%s.%N)
phase() {   # phase NAME FUNCTION : run FUNCTION, log its output and duration
    local name=$1 fn=$2 t0 rc
    t0=$(date +%s.%N)
    echo "==> $name" >&2
    set +e
    ( set -e; "$fn" ) > >(tee "$LOGS/build-$name.log" >&2) 2>&1
    rc=$?
    set -e
    printf '%s %-12s %7.1fs rc=%s\n' "$(date -u +%FT%TZ)" "$name" \
        "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" "$rc" | tee -a "$TIMES" >&2
    [ "$rc" = 0 ] || { echo "phase $name failed, see $LOGS/build-$name.log" >&2; exit "$rc"; }
}

# ---------------------------------------------------------------- phase: apt
do_apt() {
    # bookworm contrib + bookworm-backports main contrib (the stock debian.sources has
    # bookworm, bookworm-updates and bookworm-security main only).
    local want
    want=$(cat <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
)
    [ -f "$SOURCES" ] && [ "$(cat "$SOURCES")" = "$want" ] || echo "$want" > "$SOURCES"
    apt-get update
    if ! apt-cache show "zfsutils-linux=$ZVER" >/dev/null 2>&1 ||
       ! apt-cache show "linux-headers-$KVER" >/dev/null 2>&1; then
        echo "pinned zfsutils-linux=$ZVER or linux-headers-$KVER not available from apt;" \
             "update testbed/versions.env (see apt-cache policy zfsutils-linux linux-image-6.12-cloud-amd64)" >&2
        return 1
    fi
    apt-get install -y --no-install-recommends $BASE_PKGS
    # qemu from backports (bookworm's qemu-utils conflicts otherwise); zfs 2.3 exists only
    # there. No zfs-dkms: the module is built below from its source, without dkms.
    apt-get install -y --no-install-recommends -t bookworm-backports $BPO_PKGS \
        "zfsutils-linux=$ZVER" "libzfs6linux=$ZVER" "libzpool6linux=$ZVER" \
        "libnvpair3linux=$ZVER" "libuutil3linux=$ZVER"
    # guest kernel; INITRD=No: the host needs no initramfs for it
    INITRD=No apt-get install -y --no-install-recommends "linux-image-$KVER" "linux-headers-$KVER"
}

# --------------------------------------------------------- phase: zfs-module
# Builds spl.ko and zfs.ko from the zfs-dkms source (configure + make, no dkms, no
# debug info) into $MODDIR; the source tree is removed afterwards (~250 MB).
do_zfs_module() {
    local b=$MODDIR.build t0=$SECONDS
    rm -rf "$b"; mkdir -p "$b/deb"
    ( cd "$b/deb" && apt-get download "zfs-dkms=$ZVER" )
    dpkg-deb -x "$b"/deb/zfs-dkms_*.deb "$b/deb/x"
    cd "$b/deb/x/usr/src/zfs-$ZUP"
    ./configure --disable-dependency-tracking --prefix=/usr --with-config=kernel \
        --with-linux="$(readlink -f "/lib/modules/$KVER/source")" \
        --with-linux-obj="$(readlink -f "/lib/modules/$KVER/build")"
    echo "configure: $((SECONDS - t0))s"; t0=$SECONDS
    # CONFIG_DEBUG_INFO= : no -g (zfs.ko ~11 MB instead of ~100 MB, faster);
    # CONFIG_DEBUG_INFO_BTF_MODULES= : no BTF (pahole would need the DWARF).
    make -C module -j"$JOBS" CONFIG_DEBUG_INFO= CONFIG_DEBUG_INFO_BTF_MODULES=
    echo "make: $((SECONDS - t0))s"
    modinfo -F vermagic module/zfs.ko
    mkdir -p "$MODDIR.tmp"
    strip --strip-debug -o "$MODDIR.tmp/spl.ko" module/spl.ko
    strip --strip-debug -o "$MODDIR.tmp/zfs.ko" module/zfs.ko
    cd /; rm -rf "$b" "$MODDIR"; mv "$MODDIR.tmp" "$MODDIR"
    ls -l "$MODDIR"
}
# The module cache is named by kernel, zfs version and the text of do_zfs_module, so a
# change elsewhere in the recipe (guest-init.sh, the initramfs) does not rebuild it.
MODDIR=$TB_MODS/${KVER}_${ZUP}_$(declare -f do_zfs_module | sha256sum | cut -c1-12)

# ---------------------------------------------------------------- phase: keys
do_keys() {
    [ -f "$OUT/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$TB_HOST" -f "$OUT/id_ed25519"
    [ -f "$OUT/dropbear_ed25519_host_key" ] ||
        dropbearkey -t ed25519 -f "$OUT/dropbear_ed25519_host_key" >/dev/null
    # known_hosts entry for the alias used by ssh_config (HostKeyAlias)
    echo "$TB_HOST $(dropbearkey -y -f "$OUT/dropbear_ed25519_host_key" | grep '^ssh-ed25519' | cut -d' ' -f1,2)" \
        > "$OUT/known_hosts"
    cat "$OUT/known_hosts"
}

# ----------------------------------------------------------- phase: initramfs
ST=$OUT/initramfs
copy_file() {   # copy_file /abs/path : copy into the merged-/usr staging root
    local p=$1 d
    case "$p" in /usr/*) d=$ST$p ;; *) d=$ST/usr$p ;; esac
    [ -e "$d" ] && return 0
    mkdir -p "$(dirname "$d")"
    cp -L "$p" "$d"
}
copy_bin() {    # copy_bin /abs/path/binary : binary into /usr/bin, plus its shared libraries
    local b=$1 lib
    cp -L "$b" "$ST/usr/bin/$(basename "$b")"
    for lib in $(ldd "$b" 2>/dev/null | grep -oE '/[^ ]+' | sort -u); do copy_file "$lib"; done
}
do_initramfs() {
    local m rel modroot=$OUT/modroot a b p l
    rm -rf "$ST"; mkdir -p "$ST"
    cd "$ST"
    mkdir -p usr/bin usr/lib usr/lib64 etc root/.ssh proc sys dev run tmp var mnt \
        etc/dropbear etc/zfs etc/testbed
    ln -s usr/bin bin; ln -s usr/bin sbin; ln -s bin usr/sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
    chmod 700 root root/.ssh; chmod 1777 tmp

    # busybox (static) with all applets as symlinks
    cp /bin/busybox usr/bin/busybox
    for a in $(usr/bin/busybox --list); do
        [ -e "usr/bin/$a" ] || ln -s busybox "usr/bin/$a"
    done
    # dropbear + zfs userland (replacing any busybox applet of the same name)
    for b in /usr/sbin/dropbear /sbin/zfs /sbin/zpool /sbin/zdb /sbin/zstream /sbin/mount.zfs \
             /sbin/zhack /sbin/zgenhostid; do
        rm -f "usr/bin/$(basename "$b")"
        copy_bin "$b"
    done
    ln -sf zstream usr/bin/zstreamdump
    # tools replication scripts like to find on the remote side
    for b in pv mbuffer zstd lz4; do
        p=$(command -v "$b" || true)
        [ -n "$p" ] && { rm -f "usr/bin/$b"; copy_bin "$p"; }
    done
    # glibc as a host-built (Rust) binary needs it: libgcc_s is dlopen()ed by glibc for
    # pthread_cancel and is used by Rust's unwinder (zfs send aborts without it too);
    # libpthread/libdl/librt/libutil are stubs in glibc 2.34+ but older-targeted
    # binaries still name them. ldconfig -p gives the x86-64 paths.
    for l in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 \
             libutil.so.1 libresolv.so.2 libgcc_s.so.1; do
        p=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ {print $NF; exit}')
        [ -n "$p" ] || { echo "library $l not found on the host" >&2; return 1; }
        copy_file "$p"
    done

    # kernel modules: a private module tree with the zfs modules, to resolve dependencies
    rm -rf "$modroot"; mkdir -p "$modroot/lib/modules/$KVER/extra"
    cp -a "/lib/modules/$KVER/kernel" "/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} \
        "$modroot/lib/modules/$KVER/"
    cp "$MODDIR/spl.ko" "$MODDIR/zfs.ko" "$modroot/lib/modules/$KVER/extra/"
    depmod -b "$modroot" "$KVER"
    : > etc/testbed/modules.list
    modprobe -d "$modroot" -S "$KVER" -a --show-depends virtio_blk virtio_net virtio_rng zfs |
        awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' | while read -r m; do
        rel=${m#"$modroot"/lib/modules/"$KVER"/}; rel=${rel%.xz}
        mkdir -p "usr/lib/modules/$KVER/$(dirname "$rel")"
        case "$m" in
            *.xz) xz -dc "$m" > "usr/lib/modules/$KVER/$rel" ;;
            *)    cp "$m" "usr/lib/modules/$KVER/$rel" ;;
        esac
        echo "/lib/modules/$KVER/$rel" >> etc/testbed/modules.list
    done
    rm -rf "$modroot"
    cat etc/testbed/modules.list

    # configuration
    cat > etc/passwd <<'CFG'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
CFG
    cat > etc/group <<'CFG'
root:x:0:
tty:x:5:
nogroup:x:65534:
CFG
    echo 'root:*:19000:0:99999:7:::' > etc/shadow; chmod 600 etc/shadow
    printf '/bin/sh\n/bin/ash\n' > etc/shells
    printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' > etc/nsswitch.conf
    printf '127.0.0.1 localhost %s\n' "$TB_HOST" > etc/hosts
    echo "$TB_HOST" > etc/hostname
    cat > etc/profile <<'CFG'
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PS1='zfs-testbed:\w# '
CFG
    cp "$OUT/dropbear_ed25519_host_key" etc/dropbear/
    chmod 600 etc/dropbear/dropbear_ed25519_host_key
    cp "$OUT/id_ed25519.pub" root/.ssh/authorized_keys; chmod 600 root/.ssh/authorized_keys
    install -m 755 "$HERE/guest-init.sh" init
    install -m 755 "$HERE/guest-hotplug.sh" etc/testbed/hotplug.sh
    echo "zfs $ZVER kernel $KVER key $TB_KEY" > etc/testbed/version

    find . -print0 | sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -6 > "$OUT/initramfs.cpio.gz.tmp"
    mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
    cd "$OUT"; rm -rf "$ST"
    cp "/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
    echo "$KVER" > "$OUT/kver"; echo "$ZVER" > "$OUT/zfs-version"
    ls -l "$OUT"
}

# ------------------------------------------------------------------- main
rm -f "$OUT/.complete"
if host_ready; then echo "==> apt: packages present, skipped" >&2; else phase apt do_apt; fi
if [ -f "$MODDIR/zfs.ko" ]; then echo "==> zfs-module: cached in $MODDIR" >&2; else phase zfs-module do_zfs_module; fi
if [ -f "$OUT/id_ed25519" ] && [ -f "$OUT/dropbear_ed25519_host_key" ] && [ -f "$OUT/known_hosts" ]; then
    echo "==> keys: present, skipped" >&2
else
    phase keys do_keys
fi
phase initramfs do_initramfs
touch "$OUT/.complete"
printf '%s %-12s %7.1fs\n' "$(date -u +%FT%TZ)" total "$(awk "BEGIN{print $(date +%s.%N) - $T_ALL}")" | tee -a "$TIMES" >&2
echo "testbed $TB_KEY built: kernel $KVER, zfs $ZVER; outputs in $OUT" >&2
