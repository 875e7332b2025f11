#!/usr/bin/env bash
# Benchmark: import a realistic image (default 30,000 files, 512 MiB) with
# `ostree-container unencapsulate`, single-layer and 32-layer, gzip and zstd, into bare-user and
# archive repositories, alternating over ROUNDS; physical baselines on the same layer blobs
# (decompress to /dev/null, decompress+sha256sum, decompress+tar -x, decompress to one file + sync); with --with-ostree-ext,
# ostree-ext-cli 0.15.3 importing the same images.
#   bench/unencapsulate.sh [--with-ostree-ext] [ROUNDS]
#   env: FILES, BYTES, BENCH_DIR; IMAGES (default "1-gzip 32-gzip 1-zstd 32-zstd");
#   MODES (default "bare-user archive"): a repository mode, optionally suffixed "-tmpfs" (the
#   repository on a tmpfs, to see the import when the disk is not the limit) or "-ext4" (on a
#   freshly made, journaled ext4 in a loop-mounted image with direct I/O (LOOP_DIO=0: buffered):
#   the filesystem a distribution installs.
#   The root filesystem of some VMs is ext4 without a journal, where ext4 skips inodes freed in the
#   last minute when allocating, so importing right after deleting the previous run's 30,000-file
#   repository costs seconds of system time for any tool; SETTLE=65 waits that long after each
#   deletion so that neither tool pays it).
#   SOURCE=<dir>: commit that directory (e.g. a copy of the host's /usr) instead of a generated
#   tree. OC_BEFORE=<binary>: also imports with that (older) ostree-container, as "before-…"
#   (only into the modes in BEFORE_MODES when that is set).
#   PEER_IMAGE=<oci dir>: an image of the same commit made by ostree-ext's encapsulate, imported
#   as image "peer-1-gzip" (add it to IMAGES). Archive variants also time libostree's own
#   archive writes, `ostree pull-local` from a bare-user copy of the commit ("ostree-pull-local-…").
#   ARCHIVE_CHECK=0 skips the `ostree fsck` + `ostree checkout` of the first archive import (minutes
#   on a /usr-sized tree). Baselines per image: decompress (gzip -dc / zstd -dc, and `pigz -dc` for gzip), decompress
#   + sha256sum, decompress + tar -x.
source "$(dirname "$0")/lib.sh"
WITH_EXT=0
if [ "${1:-}" = "--with-ostree-ext" ]; then WITH_EXT=1; shift; fi
ROUNDS=${1:-3}
FILES=${FILES:-30000}
BYTES=${BYTES:-536870912}
need_packages ostree time zstd gzip pigz tar python3 e2fsprogs
build_release
[ "$WITH_EXT" = 1 ] && build_ostree_ext

if [ -n "${SOURCE:-}" ]; then
  source_tree unencap "$FILES" "$BYTES"
  FIX="$BENCH_DIR/unencap-$FIXKEY"
else
  FIX="$BENCH_DIR/unencap-$FILES-$BYTES"
fi
if [ ! -f "$FIX/done" ]; then
  rm -rf "$FIX" && mkdir -p "$FIX"
  if [ -z "${SOURCE:-}" ]; then
    "$GEN" bench "$FIX/tree" "$FILES" "$BYTES"
    TREE="$FIX/tree"
  fi
  "$OC" repo init --repo "$FIX/src" --mode bare-user
  "$OC" repo commit --quiet --repo "$FIX/src" -b bench --timestamp 2020-01-01T00:00:00Z --tree=dir="$TREE" >/dev/null
  for layers in 1 32; do
    for comp in gzip zstd; do
      "$OC" encapsulate --quiet --repo "$FIX/src" --max-layers "$layers" --compression "$comp" bench "oci:$FIX/img-$layers-$comp:latest" >/dev/null
    done
  done
  touch "$FIX/done"
fi
COMMIT=$("$OC" repo rev-parse --repo "$FIX/src" bench)
RESULTS=$(mktemp)
blobs() { # layer blobs of an image, from its manifest
  python3 - "$1" <<'PY'
import json, sys, os
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
m = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(os.path.join(d, "blobs/sha256", m)))
for l in man["layers"]:
    print(os.path.join(d, "blobs/sha256", l["digest"].split(":")[1]))
PY
}
if [ -n "${PEER_IMAGE:-}" ] && [ ! -e "$FIX/img-peer-1-gzip" ]; then
  cp -r "$PEER_IMAGE" "$FIX/img-peer-1-gzip"
  # ostree-ext writes no tag when the destination has none: tag it "latest".
  python3 - "$FIX/img-peer-1-gzip/index.json" <<'PY2'
import json, sys
p = sys.argv[1]
idx = json.load(open(p))
idx["manifests"][0].setdefault("annotations", {})["org.opencontainers.image.ref.name"] = "latest"
json.dump(idx, open(p, "w"))
PY2
fi
echo "fixture: $FIX (${TREE_DESC:-$FILES files, $BYTES bytes}), commit $COMMIT, $ROUNDS rounds, $(nproc) cores"
for r in $(seq 1 "$ROUNDS"); do
  for img in ${IMAGES:-1-gzip 32-gzip 1-zstd 32-zstd}; do
    dir="$FIX/img-$img"
    dec=$([ "${img##*-}" = gzip ] && echo "gzip -dc" || echo "zstd -dcq")
    # Physical baselines over the same blobs, one core, as a shell pipeline would do it.
    list=$(blobs "$dir" | tr '\n' ' ')
    measure "base-decompress-$img" bash -c "for b in $list; do $dec \"\$b\" >/dev/null; done"
    [ "${img##*-}" = gzip ] && measure "base-pigz-dc-$img" bash -c "for b in $list; do pigz -dc \"\$b\" >/dev/null; done"
    measure "base-decomp+sha256-$img" bash -c "for b in $list; do $dec \"\$b\" | sha256sum >/dev/null; done"
    # Baselines that write go to the repositories' filesystem (the loop-mounted ext4 when a
    # variant uses it), so that they pay what the import pays for the same bytes.
    X="$BENCH_DIR/x"
    if [[ " ${MODES:-} " == *-ext4* ]]; then ext4_mount && X="$BENCH_DIR/ext4/x"; fi
    rm -rf "$X" && mkdir -p "$X" && sync
    measure "base-decomp+tar-x-$img" bash -c "for b in $list; do $dec \"\$b\" | tar -x -C $X; done"
    rm -rf "$X" && mkdir -p "$X" && sync
    # The write floor: the layers' bytes decompressed into one file there, made durable as the
    # import's final syncfs makes its objects (no per-file cost at all).
    wdec=$([ "${img##*-}" = gzip ] && echo "pigz -dc" || echo "zstd -dcq")
    measure "base-decomp-to-file-$img" bash -c "for b in $list; do $wdec \"\$b\"; done > $X/layers && sync -f $X/layers"
    rm -rf "$X"
    for variant in ${MODES:-bare-user archive}; do
      mode=${variant%-tmpfs}
      mode=${mode%-ext4}
      repo="$BENCH_DIR/unencap-repo"
      case "$variant" in
        *-tmpfs)
          repo="$BENCH_DIR/tmpfs/repo"
          mkdir -p "$BENCH_DIR/tmpfs"
          mountpoint -q "$BENCH_DIR/tmpfs" || mount -t tmpfs -o size=4G tmpfs "$BENCH_DIR/tmpfs"
          ;;
        *-ext4)
          repo="$BENCH_DIR/ext4/repo"
          ext4_mount
          ;;
      esac
      rm -rf "$repo" && "$OC" repo init --repo "$repo" --mode "$mode" && sync && sleep "${SETTLE:-0}"
      measure "ours-$img-$variant" "$OC" unencapsulate --quiet --repo "$repo" "ostree-unverified-image:oci:$dir:latest"
      got=$("$OC" repo rev-parse --repo "$repo" "$COMMIT")
      [ "$got" = "$COMMIT" ] || { echo "import mismatch" >&2; exit 1; }
      if [ "$mode" = archive ] && [ "$r" = 1 ] && [ "${ARCHIVE_CHECK:-1}" = 1 ]; then
        # readable by libostree: fsck and a checkout of the commit
        ostree fsck --repo="$repo" -q >/dev/null 2>&1 || { echo "ostree fsck failed on $img $variant" >&2; exit 1; }
        rm -rf "$BENCH_DIR/co" && ostree checkout --repo="$repo" -U "$COMMIT" "$BENCH_DIR/co" && rm -rf "$BENCH_DIR/co"
        echo "ok: ostree fsck + checkout of the archive import ($img $variant)" >&2
      fi
      if [ -n "${OC_BEFORE:-}" ] && [[ " ${BEFORE_MODES:-$mode} " == *" $mode "* ]]; then
        rm -rf "$repo" && "$OC" repo init --repo "$repo" --mode "$mode" && sync && sleep "${SETTLE:-0}"
        measure "before-$img-$variant" "$OC_BEFORE" unencapsulate --quiet --repo "$repo" "ostree-unverified-image:oci:$dir:latest"
      fi
      if [ "$mode" = archive ]; then
        rm -rf "$repo" && ostree init --repo "$repo" --mode archive && sync && sleep "${SETTLE:-0}"
        measure "ostree-pull-local-$img-$variant" ostree pull-local --repo="$repo" "$FIX/src" "$COMMIT"
      fi
      # ostree-ext 0.15.3 cannot import into archive repositories with libostree 2022.7
      # ("Cannot currently use ostree_repo_write_regfile() on an archive mode repository").
      if [ "$WITH_EXT" = 1 ] && [ "$mode" = bare-user ] && [ "$variant" = "${variant%-tmpfs}" ]; then
        rm -rf "$repo" && ostree init --repo "$repo" --mode "$mode" && sync && sleep "${SETTLE:-0}"
        measure "ostree-ext-$img-$variant" "$OSTREE_EXT" container unencapsulate --quiet --repo "$repo" "ostree-unverified-image:oci:$dir:latest"
      fi
    done
  done
done
summarize "${BASELINE:-base-decomp+sha256-1-gzip}"
rm -f "$RESULTS"
mountpoint -q "$BENCH_DIR/tmpfs" && umount "$BENCH_DIR/tmpfs" || true
if mountpoint -q "$BENCH_DIR/ext4"; then umount "$BENCH_DIR/ext4" && rm -f "$BENCH_DIR/ext4.img"; fi
