# Shared helpers for the benchmark scripts (sourced).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/ostree-container-bench}
mkdir -p "$BENCH_DIR"

need_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# build_release: OC and GEN, built from the working tree; with OC_BIN and GEN_BIN set, those
# binaries instead (a snapshot, when the tree is being edited and may not build).
build_release() {
  if [ -n "${OC_BIN:-}" ]; then
    OC=$OC_BIN
    GEN=${GEN_BIN:?GEN_BIN must be set with OC_BIN}
    return 0
  fi
  (cd "$ROOT" && cargo build --release --quiet -p ostree-container-cli -p test-support --bin ostree-container --bin gen-tree)
  OC="$ROOT/target/release/ostree-container"
  GEN="$ROOT/target/release/gen-tree"
}

# measure NAME CMD...: runs CMD under GNU time, appends "NAME wall user sys maxrss_kb" to $RESULTS.
measure() {
  local name=$1; shift
  local t
  t=$(mktemp)
  /usr/bin/time -f '%e %U %S %M' -o "$t" "$@" >/dev/null
  echo "$name $(cat "$t")" >>"$RESULTS"
  rm -f "$t"
}

# summarize BASELINE: median wall/CPU/RSS per name and ratios against BASELINE.
summarize() {
  local baseline=$1
  sort -k1,1 "$RESULTS" | awk -v base="$baseline" '
    { n[$1]++; w[$1, n[$1]] = $2; c[$1, n[$1]] = $3 + $4; m[$1, n[$1]] = $5 }
    function median(arr, name, k,   i, j, t, v) {
      for (i = 1; i <= k; i++) v[i] = arr[name, i]
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
      printf "%-28s %6s %9s %9s %8s %11s %9s\n", "run", "n", "wall(s)", "cpu(s)", "cores", "peakRSS(MB)", "vs " base
      for (name in n) {
        mw[name] = median(w, name, n[name]); mc[name] = median(c, name, n[name]); mm[name] = median(m, name, n[name])
      }
      for (name in n) {
        ratio = (mw[name] > 0 && (base in mw)) ? mw[base] / mw[name] : 0
        printf "%-28s %6d %9.2f %9.2f %8.2f %11.1f %8.2fx\n", name, n[name], mw[name], mc[name], (mw[name] > 0 ? mc[name] / mw[name] : 0), mm[name] / 1024, ratio
      }
    }'
}

# build_ostree_ext: the reference implementation, ostree-ext 0.15.3 from crates.io, built into a
# scratch directory (never vendored or committed) behind its own CLI entry point
# (`ostree_ext::cli::run_from_iter`); sets OSTREE_EXT to the binary.
build_ostree_ext() {
  need_packages libostree-dev libzstd-dev pkg-config libssl-dev
  local root=${OSTREE_EXT_ROOT:-/var/tmp/ostree-ext-0.15.3}
  OSTREE_EXT="$root/target/release/ostree-ext-cli"
  if [ ! -x "$OSTREE_EXT" ]; then
    echo "building ostree-ext 0.15.3 into $root (one-time, slow)" >&2
    mkdir -p "$root/src"
    cat >"$root/Cargo.toml" <<'TOML'
[package]
name = "ostree-ext-cli"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
ostree-ext = "=0.15.3"
tokio = { version = "1", features = ["full"] }
anyhow = "1"
[workspace]
TOML
    cat >"$root/src/main.rs" <<'RS'
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ostree_ext::cli::run_from_iter(std::env::args_os()).await
}
RS
    (cd "$root" && cargo build --release --quiet) >&2
  fi
}

# repo_variant_dir VARIANT NAME: the path of a repository for a mode variant as in
# bench/unencapsulate.sh ("MODE", "MODE-tmpfs" on a 4G tmpfs, "MODE-ext4" on a journaled ext4 in a
# loop-mounted 8G image), mounting on first use; sets REPO_MODE to the bare mode name (not seen by
# the caller when run as $(...)).
# cleanup_variant_mounts undoes the mounts.
repo_variant_dir() {
  local variant=$1 name=$2
  REPO_MODE=${variant%-tmpfs}
  REPO_MODE=${REPO_MODE%-ext4}
  case "$variant" in
    *-tmpfs)
      mkdir -p "$BENCH_DIR/tmpfs"
      mountpoint -q "$BENCH_DIR/tmpfs" || mount -t tmpfs -o size=4G tmpfs "$BENCH_DIR/tmpfs"
      echo "$BENCH_DIR/tmpfs/$name"
      ;;
    *-ext4)
      ext4_mount
      echo "$BENCH_DIR/ext4/$name"
      ;;
    *) echo "$BENCH_DIR/$name" ;;
  esac
}
# ext4_mount: a fresh journaled ext4 (EXT4_SIZE, default 8G) in an image file, mounted on
# $BENCH_DIR/ext4 through a loop device with direct I/O (LOOP_DIO=0: buffered, as `mount -o loop`).
# A buffered loop device caches every block twice (the filesystem's page cache and the image
# file's) and copies between them in a kernel worker: on this VM kind that copy took ~17% of
# both cores during a 2 GB import (perf: lo_rw_aio -> memcpy), which no real disk costs. With
# direct I/O the image's writes go straight to the host disk, as a block device's would.
ext4_mount() {
  mountpoint -q "$BENCH_DIR/ext4" && return 0
  mkdir -p "$BENCH_DIR/ext4"
  rm -f "$BENCH_DIR/ext4.img" && truncate -s "${EXT4_SIZE:-8G}" "$BENCH_DIR/ext4.img"
  mkfs.ext4 -q -F "$BENCH_DIR/ext4.img"
  local dev
  if [ "${LOOP_DIO:-1}" = 1 ]; then
    dev=$(losetup --direct-io=on -f --show "$BENCH_DIR/ext4.img")
  else
    dev=$(losetup -f --show "$BENCH_DIR/ext4.img")
  fi
  # The mount keeps the device; autoclear frees it at umount.
  mount "$dev" "$BENCH_DIR/ext4"
  losetup -d "$dev"
}

cleanup_variant_mounts() {
  if mountpoint -q "$BENCH_DIR/tmpfs"; then umount "$BENCH_DIR/tmpfs"; fi
  if mountpoint -q "$BENCH_DIR/ext4"; then umount "$BENCH_DIR/ext4" && rm -f "$BENCH_DIR/ext4.img"; fi
  return 0
}

# summarize_vs OURS REF: like summarize, rows sorted by name, and for each row named X-OURS the
# ratio X-REF wall / X-OURS wall ("how many times faster than REF"), blank when X-REF was not run.
summarize_vs() {
  local ours=$1 ref=$2
  sort -k1,1 "$RESULTS" | awk -v ours="$ours" -v ref="$ref" '
    { if (!($1 in n)) order[++names] = $1
      n[$1]++; w[$1, n[$1]] = $2; c[$1, n[$1]] = $3 + $4; m[$1, n[$1]] = $5 }
    function median(arr, name, k,   i, j, t, v) {
      for (i = 1; i <= k; i++) v[i] = arr[name, i]
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
      printf "%-42s %3s %9s %9s %6s %11s %10s\n", "run", "n", "wall(s)", "cpu(s)", "cores", "peakRSS(MB)", "vs " ref
      for (i = 1; i <= names; i++) {
        name = order[i]
        mw[name] = median(w, name, n[name]); mc[name] = median(c, name, n[name]); mm[name] = median(m, name, n[name])
      }
      for (i = 1; i <= names; i++) {
        name = order[i]; r = ""
        if (length(name) > length(ours) && substr(name, length(name) - length(ours)) == "-" ours) {
          other = substr(name, 1, length(name) - length(ours)) ref
          if ((other in mw) && mw[name] > 0) r = sprintf("%9.2fx", mw[other] / mw[name])
        }
        printf "%-42s %3d %9.2f %9.2f %6.2f %11.1f %10s\n", name, n[name], mw[name], mc[name], (mw[name] > 0 ? mc[name] / mw[name] : 0), mm[name] / 1024, r
      }
    }'
}

# source_tree PREFIX FILES BYTES: sets TREE to the benchmark tree and TREE_DESC to a description.
# With SOURCE=<dir> (e.g. a copy of the host's /usr) that directory is used as is; otherwise an
# OS-like tree of FILES files / BYTES bytes is generated once under $BENCH_DIR/PREFIX-FILES-BYTES.
# FIXKEY names the fixtures made from it (so that a SOURCE and a generated tree never share them).
source_tree() {
  local prefix=$1 files=$2 bytes=$3
  if [ -n "${SOURCE:-}" ]; then
    TREE=$(cd "$SOURCE" && pwd)
    FIXKEY="src-$(echo "$TREE" | tr / _)"
    local stamp="$BENCH_DIR/$FIXKEY.stats"
    [ -f "$stamp" ] || echo "$(find "$TREE" -type f | wc -l) files, $(find "$TREE" | wc -l) entries, $(du -sb "$TREE" | cut -f1) bytes" >"$stamp"
    TREE_DESC="SOURCE=$TREE: $(cat "$stamp")"
  else
    TREE="$BENCH_DIR/$prefix-tree-$files-$bytes"
    FIXKEY="$files-$bytes"
    if [ ! -f "$TREE.done" ]; then
      rm -rf "$TREE"
      "$GEN" bench "$TREE" "$files" "$bytes"
      touch "$TREE.done"
    fi
    TREE_DESC="generated $TREE ($files files, $bytes bytes)"
  fi
}

# tree_stream DIR: the tree as one tar stream on stdout (for the physical baselines).
tree_stream() { tar -C "$1" -cf - --numeric-owner . ; }
