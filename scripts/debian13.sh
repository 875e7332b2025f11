#!/usr/bin/env bash
# Debian 13 (trixie) container tools for the tests: skopeo 1.18, podman 5.4, ostree 2025.2.
#
# Their binaries need glibc 2.38, so they live in a debootstrap chroot under
# /var/cache/ostree-container/trixie (override: OSTREE_CONTAINER_CACHE) and run through wrapper
# scripts in /var/cache/ostree-container/bin: skopeo13, podman13, ostree13.
#
# Idempotent: a complete chroot (its stamp file is written last) is reused; a missing or
# incomplete one is rebuilt from the Debian mirror apt already uses (only the suite differs).
# Every run (re)establishes the mounts (checked in /proc/self/mountinfo) and the configuration.
# busybox-static gives test images a shell for RUN steps (test_support::modern add_busybox).
# Run as root; takes ~1.5 min and ~450 MB the first time, well under a second afterwards.
#
# Usage: scripts/debian13.sh                 set up (the default)
#        scripts/debian13.sh --fresh-stores  set up, then empty the chroot's containers-storage
#                                            (the test harness does this once per test process)
#        scripts/debian13.sh --umount        unmount the chroot's mounts (nothing is deleted)
set -euo pipefail

CACHE=${OSTREE_CONTAINER_CACHE:-/var/cache/ostree-container}
DIR=$CACHE/trixie
BIN=$CACHE/bin
STAMP_NAME=.ostree-container-complete
# Bump when the package set or the chroot's build steps change: the chroot is then rebuilt.
STAMP_CONTENT="ostree-container trixie chroot v2: minbase + skopeo ostree podman busybox-static"
PACKAGES=skopeo,ostree,podman,busybox-static
# The directories tests use for scratch data, bound at the same path inside the chroot.
SHARED_DIRS=(/var/tmp)

log() { echo "debian13.sh: $*" >&2; }
die() { echo "debian13.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mount, chroot)"
for d in "${SHARED_DIRS[@]}"; do
  case "$CACHE/" in "$d"/*) die "OSTREE_CONTAINER_CACHE ($CACHE) must not be under $d" ;; esac
done

is_mounted() { # PATH: whether PATH is a mount point
  awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo
}

umount_under() { # DIR: unmount every mount at or below DIR, deepest first
  local d=$1
  awk -v p="$d" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" || die "cannot unmount $m"; done
  # Never delete through a bind mount (of /var/tmp, say): rm cannot tell one on the same disk.
  if awk -v p="$d" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' \
      /proc/self/mountinfo; then
    die "mounts remain under $d"
  fi
}

# The URI of the Debian archive apt uses for this release (deb822 .sources or one-line lists).
debian_mirror() {
  if [ -n "${OSTREE_CONTAINER_DEBIAN_MIRROR:-}" ]; then
    echo "$OSTREE_CONTAINER_DEBIAN_MIRROR"; return
  fi
  local codename files=() f uri
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  for f in "${files[@]}"; do
    # One-line form: deb [opts] URI SUITE COMPONENTS...
    uri=$(awk -v s="$codename" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit } }' "$f")
    # deb822 form: a stanza with "Suites: ... SUITE ..." and "URIs: URI ..."
    [ -n "$uri" ] || uri=$(awk -v s="$codename" '
        function flush() { if (ok && u != "" && !done) { print u; done = 1; exit } ok = 0; u = "" }
        /^[[:space:]]*$/ { flush(); next }
        tolower($1) == "uris:" { u = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
        END { flush() }' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  echo "http://deb.debian.org/debian"
}

build_chroot() {
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  local mirror new=$DIR.new
  mirror=$(debian_mirror)
  log "building the Debian 13 chroot at $DIR from $mirror (about 1.5 min, 450 MB)"
  umount_under "$DIR"
  umount_under "$new"
  rm -rf "$DIR" "$new"
  mkdir -p "$CACHE"
  if ! debootstrap --variant=minbase --include="$PACKAGES" trixie "$new" "$mirror" \
      >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 30 "$CACHE/debootstrap.log" >&2
    die "debootstrap failed (full log: $CACHE/debootstrap.log)"
  fi
  rm -rf "$new"/var/cache/apt/archives/*.deb
  echo "$STAMP_CONTENT" >"$new/$STAMP_NAME"
  mv "$new" "$DIR"
}

configure() {
  mkdir -p "$DIR/etc/containers"
  # overlay does not work inside the chroot; vfs stores plain copies.
  cat >"$DIR/etc/containers/storage.conf" <<'EOF'
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
  # No systemd or journald in the chroot.
  cat >"$DIR/etc/containers/containers.conf" <<'EOF'
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  # The Docker daemon's socket is bound here by the test harness when it runs one.
  mkdir -p "$DIR/run"
}

mount_all() {
  # containers/storage remounts / when unpacking layers: the chroot's / must be a mount point,
  # and it must be mounted before (under) everything else.
  if ! is_mounted "$DIR"; then
    umount_under "$DIR"
    mount --bind "$DIR" "$DIR"
  fi
  local d
  for d in /proc /dev /sys "${SHARED_DIRS[@]}"; do
    mkdir -p "$DIR$d"
    is_mounted "$DIR$d" || mount --bind "$d" "$DIR$d"
  done
}

write_wrappers() {
  mkdir -p "$BIN"
  local name tool tmp
  for name in skopeo13:skopeo podman13:podman ostree13:ostree; do
    tool=${name#*:}
    tmp=$BIN/.${name%%:*}.tmp
    # exec: the tool keeps our pid (and every inherited fd: the image proxy's socket and auth
    # fds pass through chroot unchanged). Paths must be absolute and under a shared directory.
    printf '#!/bin/sh\nexec chroot %s /usr/bin/%s "$@"\n' "$DIR" "$tool" >"$tmp"
    chmod 0755 "$tmp"
    mv "$tmp" "$BIN/${name%%:*}"
  done
}

fresh_stores() {
  # A Docker socket left bound by a killed test process, then podman's stores and state.
  if is_mounted "$DIR/run/docker.sock"; then umount -l "$DIR/run/docker.sock"; fi
  umount_under "$DIR/var/lib/containers"
  rm -rf "$DIR/var/lib/containers/storage" "$DIR/run/containers" "$DIR/run/libpod"
}

main() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/setup.lock"
  flock 9
  if [ "${1:-}" = "--umount" ]; then
    umount_under "$DIR"
    return
  fi
  if [ "$(cat "$DIR/$STAMP_NAME" 2>/dev/null)" != "$STAMP_CONTENT" ]; then
    build_chroot
  fi
  configure
  mount_all
  write_wrappers
  [ "${1:-}" != "--fresh-stores" ] || fresh_stores
  "$BIN/skopeo13" --version >/dev/null || die "the chroot's skopeo does not run"
}

main "$@"; exit  # on one line: bash never reads past it (safe to edit while running)
