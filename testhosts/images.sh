#!/usr/bin/env bash
# Build (once, then cached) the images siteops' test hosts run from, per Debian
# release (13 trixie, the default, and 12 bookworm):
#
#   siteops-testhost-bare:SUITE  what a provider's minimal VPS image holds: systemd
#                                as PID 1, openssh-server, sudo, python3,
#                                ca-certificates and the apt sources; the roles
#                                install everything else
#   siteops-testhost:SUITE       + the packages in baked.packages, for scenarios
#                                that do not test installation (faster only)
#
#   testhosts/images.sh [SUITE...]      (default: trixie bookworm)
#
# No container registry is reachable, so the bare image comes from debootstrap
# against the Debian mirror this machine's own apt sources name. Each image
# carries a label with a hash of the inputs that made it; when the inputs
# change it is rebuilt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=0
SOURCES=/etc/apt/sources.list.d/debian.sources
BARE_INCLUDE=systemd,systemd-sysv,dbus,openssh-server,sudo,python3,ca-certificates

log() { printf '[images] %s\n' "$*" >&2; }

# A root filesystem left behind by an interrupted debootstrap is removed on exit.
ROOTFS=
trap '[ -z "$ROOTFS" ] || rm -rf "$ROOTFS" "$ROOTFS.log"' EXIT

# Bump when build_bare changes what the bare image holds.
BARE_RECIPE=2

# The suite this machine's apt sources name (its first "Suites:" word).
machine_suite() { sed -n 's/^Suites:[[:space:]]*\([a-z]*\).*/\1/p' "$SOURCES" | head -n 1; }

# The machine's apt sources with its suite names turned into SUITE's.
sources_for() {
  local suite=$1 own
  own=$(machine_suite)
  sed "s/\b$own\(-updates\|-security\|-backports\)\?\b/$suite\1/g" "$SOURCES"
}

# The mirror debootstrap uses: the first URI of the machine's sources.
mirror() { sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$SOURCES" | head -n 1; }

bare_hash() { # suite: everything that changes its bare image
  { echo "$BARE_RECIPE $1 $BARE_INCLUDE"
    cat "$HERE/Dockerfile.bare"
    sources_for "$1"
    cat /etc/apt/apt.conf.d/99* 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

baked_hash() { # suite: its bare image plus what the baked layer adds
  { bare_hash "$1"; cat "$HERE/Dockerfile.baked" "$HERE/baked.packages"; } | sha256sum | cut -c1-16
}

label_of() { "$DOCKER" image inspect -f '{{ index .Config.Labels "siteops.inputs" }}' "$1" 2>/dev/null || true; }

build_bare() {
  local suite=$1 hash=$2 root
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  [ -e "/usr/share/debootstrap/scripts/$suite" ] || {
    log "this machine's debootstrap has no script for $suite"; return 1; }
  root=$(mktemp -d /var/tmp/siteops-rootfs.XXXXXX)
  ROOTFS=$root
  log "debootstrap $suite into $root (about a minute)"
  debootstrap --variant=minbase --include="$BARE_INCLUDE" "$suite" "$root" "$(mirror)" \
      >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; return 1; }
  rm -f "$root.log"

  # apt inside uses the same mirror settings as this machine, for its release.
  rm -f "$root/etc/apt/sources.list"
  sources_for "$suite" >"$root/etc/apt/sources.list.d/debian.sources"
  for f in /etc/apt/apt.conf.d/99*; do [ -f "$f" ] && cp "$f" "$root/etc/apt/apt.conf.d/"; done
  # Each container gets its own machine-id at boot, and its own SSH host keys
  # (the sandbox runs ssh-keygen -A).
  : >"$root/etc/machine-id"
  rm -f "$root"/etc/ssh/ssh_host_*
  # Units that cannot work (or only spam errors) inside a container.
  for unit in getty@tty1.service console-getty.service serial-getty@.service \
      systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
      systemd-udev-trigger.service systemd-udev-settle.service \
      sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
      sys-fs-fuse-connections.mount dev-hugepages.mount systemd-remount-fs.service \
      systemd-modules-load.service systemd-sysctl.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  # An empty, ancient apt cache: the first `apt update` in a test host really runs.
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin
  touch -d @0 "$root/var/lib/apt/lists"

  log "importing the root filesystem"
  tar -C "$root" -c . | "$DOCKER" import - "siteops-testhost-rootfs:$suite" >/dev/null
  "$DOCKER" build -q -f "$HERE/Dockerfile.bare" --build-arg "ROOTFS=siteops-testhost-rootfs:$suite" \
    --label "siteops.inputs=$hash" -t "siteops-testhost-bare:$suite" "$HERE" >/dev/null
  "$DOCKER" rmi "siteops-testhost-rootfs:$suite" >/dev/null
  rm -rf "$root"
  ROOTFS=
}

build_baked() {
  local suite=$1 hash=$2 packages
  packages=$(grep -v '^\s*#' "$HERE/baked.packages" | xargs)
  log "baking packages into siteops-testhost:$suite: $packages"
  "$DOCKER" build -q -f "$HERE/Dockerfile.baked" --build-arg "BASE=siteops-testhost-bare:$suite" \
    --build-arg "PACKAGES=$packages" --label "siteops.inputs=$hash" \
    -t "siteops-testhost:$suite" "$HERE" >/dev/null
}

ensure() { # suite
  local suite=$1 bare baked
  bare=$(bare_hash "$suite")
  baked=$(baked_hash "$suite")
  if [ "$(label_of "siteops-testhost-bare:$suite")" != "$bare" ]; then
    build_bare "$suite" "$bare"
    log "built siteops-testhost-bare:$suite ($bare)"
  fi
  if [ "$(label_of "siteops-testhost:$suite")" = "$baked" ]; then
    log "siteops-testhost:$suite is up to date ($baked)"
    return 0
  fi
  build_baked "$suite" "$baked"
  log "built siteops-testhost:$suite ($baked)"
}

main() {
  local suite
  [ $# -gt 0 ] || set -- trixie bookworm
  for suite in "$@"; do ensure "$suite"; done
  "$DOCKER" image prune -f >/dev/null
}

main "$@"
