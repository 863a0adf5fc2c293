# paths.sh - sourced by the other testbed scripts: computes the cache key and the
# directories in one place. Nothing here writes to the checkout.
#
#   TB_HERE   this folder (testbed/ of the checkout)
#   TB_CACHE  ${ZSNAP_TESTBED_CACHE:-$HOME/.cache/zsnap-testbed}
#   TB_KEY    16 hex digits of the sha256 of the recipe's inputs: build.sh,
#             guest-init.sh, guest-hotplug.sh and the pinned versions (versions.env,
#             or ZSNAP_TESTBED_KVER / ZSNAP_TESTBED_ZFS_VERSION when set)
#   TB_OUT    $TB_CACHE/$TB_KEY      build outputs (vmlinuz, initramfs, keys, logs)
#   TB_MODS   $TB_CACHE/zfs-module   compiled zfs/spl modules, shared by keys whose
#                                    kernel, zfs version and module recipe agree
#   TB_RUN    $TB_CACHE/run          run-time state: pid file, ssh_config, env,
#                                    console log, disk images
TB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$TB_HERE/versions.env"
TB_KVER=${ZSNAP_TESTBED_KVER:-$ZSNAP_TESTBED_KVER_PIN}
TB_ZFS_VERSION=${ZSNAP_TESTBED_ZFS_VERSION:-$ZSNAP_TESTBED_ZFS_PIN}
TB_CACHE=${ZSNAP_TESTBED_CACHE:-$HOME/.cache/zsnap-testbed}
TB_KEY=$( { cat "$TB_HERE/build.sh" "$TB_HERE/guest-init.sh" "$TB_HERE/guest-hotplug.sh"
            printf 'kver=%s\nzfs=%s\n' "$TB_KVER" "$TB_ZFS_VERSION"; } |
          sha256sum | cut -c1-16)
TB_OUT=$TB_CACHE/$TB_KEY
TB_MODS=$TB_CACHE/zfs-module
TB_RUN=$TB_CACHE/run
TB_NAME=zsnap-testbed          # QEMU -name; stop.sh checks it before acting on the pid
TB_HOST=zfs-testbed            # Host alias in $TB_RUN/ssh_config and HostKeyAlias
