#!/usr/bin/env bash
# Benchmark: commit one generated tree (default 20,000 files, 300 MiB) with `ostree commit`
# and with `ostree-container repo commit`, alternating, ROUNDS times each, into fresh repos.
# Prints median wall, CPU, cores used and peak RSS, and the speed-up over `ostree commit`.
#   bench/commit.sh [ROUNDS] [MODE]     env: FILES, BYTES, BENCH_DIR, REPO_VARIANT
#   SOURCE=<dir> commits that directory (e.g. a copy of the host's /usr) instead of a generated
#   tree; REPO_VARIANT=ext4 puts the repositories on a fresh journaled ext4 (see lib.sh); the
#   physical baselines are `tar -c | sha256sum` (read+hash) and `tar -c | tar -x` (read+write).
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
MODE=${2:-bare-user}
FILES=${FILES:-20000}
BYTES=${BYTES:-314572800}
need_packages ostree time
build_release

source_tree commit "$FILES" "$BYTES"
RESULTS=$(mktemp)
echo "tree: $TREE_DESC, repo mode $MODE, $ROUNDS rounds, $(nproc) cores"
variant=$MODE${REPO_VARIANT:+-$REPO_VARIANT}
trap cleanup_variant_mounts EXIT
for r in $(seq 1 "$ROUNDS"); do
  # alternate the order between rounds
  order=(ostree ours base)
  [ $((r % 2)) -eq 0 ] && order=(base ours ostree)
  for impl in "${order[@]}"; do
    repo=$(repo_variant_dir "$variant" "commit-repo-$impl")
    rm -rf "$repo"
    if [ "$impl" = base ]; then
      measure "base-tar-sha256" bash -c "tar -C '$TREE' -cf - . | sha256sum >/dev/null"
      mkdir -p "$repo"
      measure "base-tar-x+sync" bash -c "tar -C '$TREE' -cf - . | tar -C '$repo' -xf - && sync -f '$repo'"
      rm -rf "$repo"
    elif [ "$impl" = ostree ]; then
      ostree init --repo="$repo" --mode="$MODE"
      measure "ostree-commit" ostree commit --repo="$repo" -b bench --timestamp=2020-01-01T00:00:00Z --tree=dir="$TREE"
      theirs=$(ostree rev-parse --repo="$repo" bench)
    else
      "$OC" repo init --repo "$repo" --mode "$MODE"
      measure "ostree-container-commit" "$OC" repo commit --quiet --repo "$repo" -b bench --timestamp 2020-01-01T00:00:00Z --tree=dir="$TREE"
      ours=$("$OC" repo rev-parse --repo "$repo" bench)
    fi
  done
done
if [ "$theirs" != "$ours" ]; then echo "MISMATCH: ostree $theirs vs ours $ours" >&2; exit 1; fi
echo "both commits: $ours"
summarize ostree-commit
rm -f "$RESULTS"
