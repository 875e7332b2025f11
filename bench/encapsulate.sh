#!/usr/bin/env bash
# Benchmark: encapsulate one committed OS-like tree (default 30,000 files, ~500 MB) into `oci:`
# directories: single layer and 32 layers, gzip level 6 and zstd level 3, alternating, ROUNDS
# times each. Prints median wall, CPU, cores used and peak RSS.
#   bench/encapsulate.sh [--with-ostree-ext] [ROUNDS]
#   env: FILES, BYTES, BENCH_DIR; SOURCE=<dir> commits that directory instead of a generated tree
#   (e.g. a copy of the host's /usr); RUNS (default "ours-1-gzip ours-32-gzip ours-1-zstd
#   ours-32-zstd"); BASELINES=0 skips the physical baselines (one tar stream of the tree read,
#   hashed with sha256sum, compressed by `pigz -6` and `zstd -3` on every core).
# --with-ostree-ext also builds the ostree-ext 0.15.3 CLI (library from crates.io, scratch crate
# in /var/tmp/ostree-ext-0.15.3, never vendored) and measures its `container encapsulate` on the
# same commit; ratios are then against it.
source "$(dirname "$0")/lib.sh"
WITH_EXT=0
if [ "${1:-}" = "--with-ostree-ext" ]; then WITH_EXT=1; shift; fi
ROUNDS=${1:-3}
FILES=${FILES:-30000}
BYTES=${BYTES:-524288000}
need_packages time skopeo
build_release
if [ -z "${OC_BIN:-}" ]; then
  # build_release builds into CARGO_TARGET_DIR when that is set.
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  OC="$TARGET/release/ostree-container"
  GEN="$TARGET/release/gen-tree"
fi

need_packages pigz zstd
source_tree encap "$FILES" "$BYTES"
REPO="$BENCH_DIR/encap-repo-$FIXKEY"
if [ ! -f "$REPO.done" ]; then
  rm -rf "$REPO"
  "$OC" repo init --repo "$REPO" --mode bare-user
  "$OC" repo commit --quiet --repo "$REPO" -b bench --timestamp 2020-01-01T00:00:00Z --tree=dir="$TREE" >/dev/null
  touch "$REPO.done"
fi

EXT=""
if [ "$WITH_EXT" = 1 ]; then
  # ostree-ext-cli is not published on crates.io; its main is a one-liner over the published
  # library, so build that one-liner against ostree-ext 0.15.3 in a scratch crate.
  EXT_ROOT=/var/tmp/ostree-ext-0.15.3
  EXT="$EXT_ROOT/target/release/ostree-ext-cli"
  if [ ! -x "$EXT" ]; then
    need_packages libostree-dev libzstd-dev pkg-config
    mkdir -p "$EXT_ROOT/src"
    cat >"$EXT_ROOT/Cargo.toml" <<'TOML'
[package]
name = "ostree-ext-cli"
version = "0.15.3"
edition = "2021"
publish = false
[dependencies]
ostree-ext = "=0.15.3"
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
anyhow = "1"
[workspace]
TOML
    cat >"$EXT_ROOT/src/main.rs" <<'RS'
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ostree_ext::cli::run_from_iter(std::env::args_os()).await
}
RS
    (cd "$EXT_ROOT" && CARGO_TARGET_DIR="$EXT_ROOT/target" cargo build --release --quiet)
  fi
fi

RESULTS=$(mktemp)
SIZES=$(mktemp)
echo "tree: $TREE_DESC, $ROUNDS rounds, $(nproc) cores"
read -r -a runs <<<"${RUNS:-ours-1-gzip ours-32-gzip ours-1-zstd ours-32-zstd}"
[ -n "$EXT" ] && runs+=(ostree-ext-1-gzip)
[ "${BASELINES:-1}" = 1 ] && runs+=(base-tar-read base-tar-sha256 base-tar-pigz6 base-tar-zstd3)
for r in $(seq 1 "$ROUNDS"); do
  order=("${runs[@]}")
  # alternate the order between rounds
  if [ $((r % 2)) -eq 0 ]; then
    order=(); for ((i = ${#runs[@]} - 1; i >= 0; i--)); do order+=("${runs[i]}"); done
  fi
  for name in "${order[@]}"; do
    out="$BENCH_DIR/encap-out-$name"
    rm -rf "$out"
    # Every run starts with no dirty pages of the previous one (its ~800 MB of output being
    # written back made the next run 10.5 s or 18.7 s at random on this VM).
    sync
    n=$(nproc)
    case $name in
      base-tar-read) measure "$name" bash -c "tar -C '$TREE' -cf - . | cat >/dev/null"; continue ;;
      base-tar-sha256) measure "$name" bash -c "tar -C '$TREE' -cf - . | sha256sum >/dev/null"; continue ;;
      base-tar-pigz6)
        measure "$name" bash -c "tar -C '$TREE' -cf - . | pigz -6 -p $n >'$out'"
        echo "$name $(stat -c %s "$out")" >>"$SIZES"; rm -f "$out"; continue ;;
      base-tar-zstd3)
        measure "$name" bash -c "tar -C '$TREE' -cf - . | zstd -q -3 -T$n >'$out'"
        echo "$name $(stat -c %s "$out")" >>"$SIZES"; rm -f "$out"; continue ;;
      ours-*)
        layers=$(echo "$name" | cut -d- -f2); comp=$(echo "$name" | cut -d- -f3)
        measure "$name" "$OC" encapsulate --quiet --repo "$REPO" bench "oci:$out" \
          --max-layers "$layers" --compression "$comp"
        ;;
      ostree-ext-*)
        measure "$name" "$EXT" container encapsulate --repo "$REPO" bench "oci:$out"
        ;;
    esac
    echo "$name $(du -sb "$out/blobs" | cut -f1)" >>"$SIZES"
  done
done
if [ -n "$EXT" ]; then summarize ostree-ext-1-gzip; else summarize ours-1-gzip; fi
echo "compressed bytes (blobs incl. config/manifest; last round):"
awk '{ s[$1] = $2 } END { for (k in s) printf "  %-24s %13d\n", k, s[k] }' "$SIZES" | sort
if grep -q '^ostree-ext-1-gzip ' "$SIZES"; then
  awk '{ s[$1] = $2 } END { for (k in s) if (k ~ /gzip/ && k != "ostree-ext-1-gzip")
    printf "  %-24s %+.2f%% vs ostree-ext-1-gzip\n", k, 100 * (s[k] / s["ostree-ext-1-gzip"] - 1) }' "$SIZES" | sort
fi
rm -f "$RESULTS" "$SIZES"
