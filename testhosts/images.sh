#!/usr/bin/env bash
# Build (once, then cached) the Debian 12 images siteops' test hosts run from.
#
#   siteops-testhost-base:bookworm  debootstrap minbase + systemd as PID 1
#   siteops-testhost:bookworm       + the packages most scenarios need (baked.packages)
#
# No container registry is reachable, so the base comes from debootstrap against
# the same Debian mirror this machine uses. Each image carries a label with a
# hash of the inputs that made it; when the inputs change it is rebuilt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=0
SUITE=bookworm
MIRROR=${SITEOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=siteops-testhost-base:$SUITE
IMAGE=siteops-testhost:$SUITE
BASE_INCLUDE=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,sudo,procps

log() { printf '[images] %s\n' "$*" >&2; }

# A root filesystem left behind by an interrupted debootstrap is removed on exit.
ROOTFS=
trap '[ -z "$ROOTFS" ] || rm -rf "$ROOTFS" "$ROOTFS.log"' EXIT

# Bump when build_base changes what the base image holds.
BASE_RECIPE=1

base_hash() {
  # Everything that changes the base image.
  { echo "$BASE_RECIPE $SUITE $MIRROR $BASE_INCLUDE"
    cat "$HERE/Dockerfile.base"
    cat /etc/apt/sources.list.d/debian.sources /etc/apt/apt.conf.d/99* 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

baked_hash() {
  # The base, plus what the baked layer adds: a new package list does not
  # repeat the debootstrap.
  { base_hash; cat "$HERE/Dockerfile.baked" "$HERE/baked.packages"; } | sha256sum | cut -c1-16
}

label_of() { "$DOCKER" image inspect -f '{{ index .Config.Labels "siteops.inputs" }}' "$1" 2>/dev/null || true; }

build_base() {
  local hash=$1 root
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  root=$(mktemp -d /var/tmp/siteops-rootfs.XXXXXX)
  ROOTFS=$root
  log "debootstrap $SUITE into $root (about a minute)"
  debootstrap --variant=minbase --include="$BASE_INCLUDE" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2; rm -f "$root.log"; return 1; }
  rm -f "$root.log"

  # apt inside must use the same mirror settings as this machine.
  rm -f "$root/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  for f in /etc/apt/apt.conf.d/99*; do [ -f "$f" ] && cp "$f" "$root/etc/apt/apt.conf.d/"; done
  # Each container gets its own machine-id at boot.
  : >"$root/etc/machine-id"
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
  tar -C "$root" -c . | "$DOCKER" import - siteops-testhost-rootfs:$SUITE >/dev/null
  "$DOCKER" build -q -f "$HERE/Dockerfile.base" --label "siteops.inputs=$hash" \
    -t "$BASE_IMAGE" "$HERE" >/dev/null
  "$DOCKER" rmi siteops-testhost-rootfs:$SUITE >/dev/null
  rm -rf "$root"
}

build_baked() {
  local hash=$1 packages
  packages=$(grep -v '^\s*#' "$HERE/baked.packages" | xargs)
  log "baking packages into $IMAGE: $packages"
  "$DOCKER" build -q -f "$HERE/Dockerfile.baked" --build-arg "BASE=$BASE_IMAGE" \
    --build-arg "PACKAGES=$packages" --label "siteops.inputs=$hash" \
    -t "$IMAGE" "$HERE" >/dev/null
}

main() {
  local base baked
  base=$(base_hash)
  baked=$(baked_hash)
  if [ "$(label_of "$IMAGE")" = "$baked" ]; then
    log "$IMAGE is up to date ($baked)"
    return 0
  fi
  if [ "$(label_of "$BASE_IMAGE")" != "$base" ]; then
    build_base "$base"
  fi
  build_baked "$baked"
  "$DOCKER" image prune -f >/dev/null
  log "built $IMAGE ($baked)"
}

main "$@"
