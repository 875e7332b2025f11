#!/usr/bin/env bash
# Benchmark: commit one generated tree (default 20,000 files, 300 MiB) with `ostree commit`
# and with `ostree-container repo commit`, alternating, ROUNDS times each, into fresh repos.
# Prints median wall, CPU, cores used and peak RSS, and the speed-up over `ostree commit`.
#   bench/commit.sh [ROUNDS] [MODE]     env: FILES, BYTES, BENCH_DIR
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
MODE=${2:-bare-user}
FILES=${FILES:-20000}
BYTES=${BYTES:-314572800}
need_packages ostree time
build_release

TREE="$BENCH_DIR/commit-tree-$FILES-$BYTES"
if [ ! -f "$TREE.done" ]; then
  rm -rf "$TREE"
  "$GEN" bench "$TREE" "$FILES" "$BYTES"
  touch "$TREE.done"
fi
RESULTS=$(mktemp)
echo "tree: $TREE ($FILES files, $BYTES bytes), repo mode $MODE, $ROUNDS rounds, $(nproc) cores"
for r in $(seq 1 "$ROUNDS"); do
  for impl in ostree ours; do
    # alternate which one goes first
    if [ $((r % 2)) -eq 0 ]; then impl=$([ "$impl" = ostree ] && echo ours || echo ostree); fi
    repo="$BENCH_DIR/commit-repo-$impl"
    rm -rf "$repo"
    if [ "$impl" = ostree ]; then
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
