#!/usr/bin/env bash
# Benchmark: `image pull` of derived images, ours vs ostree-ext 0.15.3 `container image pull`.
# The base is the OS-like tree of bench/unencapsulate.sh (FILES files, BYTES bytes, via gen-tree),
# committed and encapsulated by our `encapsulate` (32 layers, gzip) into an oci: layout; two derived
# images add one gzip layer each (bench/oci_derive.py) touching 1% and 10% of FILES paths: 70%
# rewritten files under usr/, 20% new files (existing and new directories, one under etc/, a
# symlink), 10% deleted with `.wh.<name>` whiteouts (files and one whole directory); no directory
# mode changes. One run, ours and ostree-ext alternating, for each mode variant:
#   a-MODE-Npct-IMPL        whole pull into an empty repository (`ostree init --mode=MODE`)
#   b-MODE-30k-Npct-IMPL    pull with the base already present (base pulled first, untimed)
#   merge-MODE-30k-Npct-IMPL  then an image with the same layers and another config (a label):
#                           every layer present, so the pull is the merge commit alone
#   b-/merge-MODE-90k-Npct-ours  the same two over a base LARGE times bigger (default 3x: 90,000
#                           files), with layers touching the same number of paths: the merge step
#                           should grow with the touched paths, not with the base.
# Correctness, checked as it goes (exit 1 on failure): for each image and mode, the trees of both
# implementations' merge commits (`ostree ls -R -C -X` of the image refs: modes, owners, sizes,
# content checksums, xattrs) are equal and contain no whiteout; our merge commit is the same in (a)
# and (b) (deterministic); `ostree fsck` of every repository is clean.
#   bench/pull.sh [--without-ostree-ext]
#   env: FILES (30000), BYTES (536870912), LARGE (3; 0 skips the larger base), BENCH_DIR,
#   MODES (default "bare-user-ext4 bare-ext4"; a mode, optionally suffixed -ext4 or -tmpfs as in
#   bench/unencapsulate.sh), LARGE_MODES (default MODES), SETTLE (seconds after each repository
#   deletion, default 0), FSCK (1; 0 skips fsck), FIXTURES_ONLY=1 (only build the fixtures).
source "$(dirname "$0")/lib.sh"
WITH_EXT=1
if [ "${1:-}" = "--without-ostree-ext" ]; then WITH_EXT=0; shift; fi
FILES=${FILES:-30000}
BYTES=${BYTES:-536870912}
LARGE=${LARGE:-3}
MODES=${MODES:-bare-user-ext4 bare-ext4}
LARGE_MODES=${LARGE_MODES:-$MODES}
FSCK=${FSCK:-1}
PCTS="1 10"
need_packages ostree time gzip tar python3 e2fsprogs skopeo
build_release
[ "$WITH_EXT" = 1 ] && build_ostree_ext
PY="$ROOT/bench/oci_derive.py"
IMPLS="ours"
[ "$WITH_EXT" = 1 ] && IMPLS="ours ostree-ext"

# fixture FILES BYTES: prints the fixture directory: tree, source repo, oci layout "img" with tags
# base, Npct, Npct-relabel. Layers touch N% of $FILES paths whatever the base size.
fixture() {
  local files=$1 bytes=$2 fix="$BENCH_DIR/pull-$1-$2-t$FILES" p
  if [ ! -f "$fix/done" ]; then
    {
    rm -rf "$fix" && mkdir -p "$fix"
    "$GEN" bench "$fix/tree" "$files" "$bytes" >&2
    "$OC" repo init --repo "$fix/src" --mode bare-user
    "$OC" repo commit --quiet --repo "$fix/src" -b bench --timestamp 2020-01-01T00:00:00Z --tree=dir="$fix/tree" >/dev/null
    "$OC" encapsulate --quiet --repo "$fix/src" --max-layers 32 --compression gzip bench "oci:$fix/img:base" >/dev/null
    for p in $PCTS; do
      python3 "$PY" layer "$fix/tree" "$fix/layer-${p}pct.tar.gz" --touch $((FILES * p / 100)) --seed "$p" --name "derived-${p}pct" >"$fix/layer-${p}pct.log"
      python3 "$PY" append "$fix/img" base "${p}pct" "$fix/layer-${p}pct.tar.gz" >/dev/null
      python3 "$PY" append "$fix/img" "${p}pct" "${p}pct-relabel" --label bench.variant=relabel >/dev/null
    done
    rm -rf "$fix/tree"
    touch "$fix/done"
    } >&2
  fi
  echo "$fix"
}

pull_cmd() { # IMPL REPO TAG [IMG]: sets PULL to the command of one pull
  local impl=$1 repo=$2 tag=$3 img=${4:-$IMG}
  case "$impl" in
    ours) PULL=("$OC" image pull --quiet "$repo" "ostree-unverified-image:oci:$img:$tag") ;;
    ostree-ext) PULL=("$OSTREE_EXT" container image pull --quiet "$repo" "ostree-unverified-image:oci:$img:$tag") ;;
  esac
}
pull() { pull_cmd "$@"; "${PULL[@]}"; }
# mpull NAME IMPL REPO TAG [IMG]: a timed pull, after a sync so that it does not pay for the
# writeback of what came before (e.g. the untimed base pull)
mpull() { local name=$1; shift; pull_cmd "$@"; sync; measure "$name" "${PULL[@]}"; }
fresh_repo() { # VARIANT NAME: prints the path of a new empty repository
  local r mode=${1%-tmpfs}
  mode=${mode%-ext4}
  r=$(repo_variant_dir "$1" "$2")
  rm -rf "$r" && ostree init --repo="$r" --mode="$mode" && sync && sleep "${SETTLE:-0}"
  echo "$r"
}
image_ref() { # REPO TAG: the image ref of oci:...:TAG
  ostree refs --repo="$1" ostree/container/image | grep "_3A_$2\$" | sed 's,^,ostree/container/image/,' || true
}
fail() { echo "FAIL $*" >&2; exit 1; }
describe() { python3 "$PY" describe "$1"; } # LAYER-LOG
ok() { echo "ok   $*"; }
# listing REPO TAG OUT: the merged tree of the image as `ostree ls -R -C -X`, and its commit in OUT.commit
listing() {
  local ref
  ref=$(image_ref "$1" "$2")
  [ -n "$ref" ] || fail "no image ref for tag $2 in $1: $(ostree refs --repo="$1")"
  ostree rev-parse --repo="$1" "$ref" >"$3.commit"
  ostree ls --repo="$1" -R -C -X "$ref" >"$3"
  if grep -q '/\.wh\.' "$3"; then fail "whiteout left in the merged tree of $2 in $1"; fi
}
compare() { # LABEL A B: two listings equal
  if cmp -s "$2" "$3"; then
    ok "$1: equal trees ($(wc -l <"$2") entries)"
  else
    diff "$2" "$3" | head -20 >&2
    fail "$1: trees differ ($2 vs $3)"
  fi
}
fsck() { # REPO LABEL
  [ "$FSCK" = 1 ] || return 0
  ostree fsck --repo="$1" >/dev/null 2>"$W/fsck.err" || { cat "$W/fsck.err" >&2; fail "fsck $2"; }
  ok "fsck $2"
}

W=$(mktemp -d /var/tmp/ostree-container-pull.XXXXXX)
trap 'rm -rf "$W"; cleanup_variant_mounts' EXIT
RESULTS="$W/results"
: >"$RESULTS"
FIX=$(fixture "$FILES" "$BYTES")
IMG="$FIX/img"
echo "fixture: $FIX ($FILES files, $BYTES bytes; base 32 gzip layers), $(nproc) cores, impls: $IMPLS"
for p in $PCTS; do echo "  layer $(describe "$FIX/layer-${p}pct.log")"; done
if [ "${FIXTURES_ONLY:-0}" = 1 ]; then
  [ "$LARGE" -gt 0 ] && fixture $((FILES * LARGE)) $((BYTES * LARGE))
  exit 0
fi

for variant in $MODES; do
  # (a) whole pull into an empty repository.
  for p in $PCTS; do
    for impl in $IMPLS; do
      repo=$(fresh_repo "$variant" pull-a)
      mpull "a-$variant-${p}pct-$impl" "$impl" "$repo" "${p}pct"
      listing "$repo" "${p}pct" "$W/a-$variant-$p-$impl"
      fsck "$repo" "(a) $variant ${p}pct $impl"
      rm -rf "$repo"
    done
    [ "$WITH_EXT" = 1 ] && compare "(a) $variant ${p}pct ours vs ostree-ext" "$W/a-$variant-$p-ours" "$W/a-$variant-$p-ostree-ext"
  done
  # (b) base present; then the merge alone (same layers, new config).
  for impl in $IMPLS; do
    r=$(fresh_repo "$variant" "pull-b-$impl")
    pull "$impl" "$r" base >/dev/null
  done
  for p in $PCTS; do
    for impl in $IMPLS; do
      r=$(repo_variant_dir "$variant" "pull-b-$impl")
      mpull "b-$variant-30k-${p}pct-$impl" "$impl" "$r" "${p}pct"
    done
    # The physical floor of (b): the derived layer alone extracted durably on the same filesystem.
    x=$(repo_variant_dir "$variant" "pull-floor") && rm -rf "$x" && mkdir -p "$x" && sync
    measure "floor-$variant-${p}pct-tar-x+sync" bash -c "gzip -dc '$FIX/layer-${p}pct.tar.gz' | tar -x -C '$x' && sync -f '$x'"
    rm -rf "$x"
    for impl in $IMPLS; do
      r=$(repo_variant_dir "$variant" "pull-b-$impl")
      mpull "merge-$variant-30k-${p}pct-$impl" "$impl" "$r" "${p}pct-relabel"
      listing "$r" "${p}pct" "$W/b-$variant-$p-$impl"
      listing "$r" "${p}pct-relabel" "$W/m-$variant-$p-$impl"
    done
    compare "(b) $variant ${p}pct ours, base present vs empty repository" "$W/b-$variant-$p-ours" "$W/a-$variant-$p-ours"
    cmp -s "$W/b-$variant-$p-ours.commit" "$W/a-$variant-$p-ours.commit" \
      && ok "(b) $variant ${p}pct ours: same merge commit as (a) $(cat "$W/a-$variant-$p-ours.commit")" \
      || fail "(b) $variant ${p}pct ours: merge commit $(cat "$W/b-$variant-$p-ours.commit") differs from (a) $(cat "$W/a-$variant-$p-ours.commit")"
    compare "(merge) $variant ${p}pct-relabel ours vs ${p}pct" "$W/m-$variant-$p-ours" "$W/b-$variant-$p-ours"
    if [ "$WITH_EXT" = 1 ]; then
      compare "(b) $variant ${p}pct ours vs ostree-ext" "$W/b-$variant-$p-ours" "$W/b-$variant-$p-ostree-ext"
      compare "(merge) $variant ${p}pct-relabel ours vs ostree-ext" "$W/m-$variant-$p-ours" "$W/m-$variant-$p-ostree-ext"
    fi
  done
  for impl in $IMPLS; do
    r=$(repo_variant_dir "$variant" "pull-b-$impl")
    fsck "$r" "(b) $variant $impl"
    rm -rf "$r"
  done
done

# The merge step over a LARGE times bigger base, ours only, layers touching the same paths.
if [ "$LARGE" -gt 0 ]; then
  LFILES=$((FILES * LARGE))
  LFIX=$(fixture "$LFILES" $((BYTES * LARGE)))
  echo "large fixture: $LFIX ($LFILES files, $((BYTES * LARGE)) bytes)"
  for p in $PCTS; do echo "  layer $(describe "$LFIX/layer-${p}pct.log")"; done
  lk="$((LFILES / 1000))k"
  LK=$lk
  for variant in $LARGE_MODES; do
    r=$(fresh_repo "$variant" pull-large)
    pull ours "$r" base "$LFIX/img" >/dev/null
    for p in $PCTS; do
      mpull "b-$variant-$lk-${p}pct-ours" ours "$r" "${p}pct" "$LFIX/img"
      mpull "merge-$variant-$lk-${p}pct-ours" ours "$r" "${p}pct-relabel" "$LFIX/img"
      listing "$r" "${p}pct" "$W/l-$variant-$p"
      listing "$r" "${p}pct-relabel" "$W/lm-$variant-$p"
      compare "(merge) $variant $lk ${p}pct-relabel vs ${p}pct" "$W/lm-$variant-$p" "$W/l-$variant-$p"
    done
    fsck "$r" "(large) $variant"
    rm -rf "$r"
  done
fi
echo
echo "a-: whole pull into an empty repository; b-: base present; merge-: every layer present (the merge"
echo "commit alone); 30k/${LK:-90k}: base size, layers touching the same paths; floor-: the derived layer"
echo "alone, gzip -dc | tar -x then sync, on the same filesystem; last column: ostree-ext wall / ours"
summarize_vs ours ostree-ext
