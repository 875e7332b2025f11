#!/usr/bin/env bash
# Benchmark: updating a pulled image from a registry (issue 12), ours vs ostree-ext 0.15.3, and
# `repo prune --refs-only` vs `ostree prune --refs-only`.
# Update: the OS-like tree of bench/unencapsulate.sh (gen-tree bench, FILES files, BYTES bytes) is
# committed as v1; v2 is the same tree with "a few packages' worth" of files changed (CHANGED files,
# default 51, rewritten in 3 directories); each commit is encapsulated by our `encapsulate
# --max-layers 90` (gzip) and pushed with skopeo to the same tag of a docker-registry on 127.0.0.1
# (random port). Each implementation pulls v1 into a fresh bare-user repository (untimed), then v2
# is pushed to the same tag and the timed pull of v2 follows. Prints how many layers differ between
# the two manifests and each implementation's "layers already present: N; layers needed: M" line;
# checks that both merged v2 trees are equal (`ostree ls -R -C -X`).
# Prune: the source repository holding both commits on two refs (no parent link); the v1 ref is
# deleted, then `ostree-container repo prune --refs-only` and `ostree prune --refs-only` run on
# identical `cp -a` copies; both must leave the same object files.
# One run only; the last column is ostree-ext (or ostree) wall / ours.
#   bench/update.sh        env: FILES (30000), BYTES (536870912), CHANGED (51), BENCH_DIR
source "$(dirname "$0")/lib.sh"
FILES=${FILES:-30000}
BYTES=${BYTES:-536870912}
CHANGED=${CHANGED:-51}
need_packages ostree time skopeo docker-registry python3 curl
build_release
build_ostree_ext
W=$(mktemp -d /var/tmp/ostree-container-update.XXXXXX)
REGISTRY_PID=""
cleanup() {
  [ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
RESULTS="$W/results"
: >"$RESULTS"
fail() { echo "FAIL $*" >&2; exit 1; }

# Trees and commits.
"$GEN" bench "$W/tree" "$FILES" "$BYTES" >/dev/null
"$OC" repo init --repo "$W/src" --mode bare-user
C1=$("$OC" repo commit --quiet --repo "$W/src" -b v1 --timestamp 2020-01-01T00:00:00Z --tree=dir="$W/tree")
# v2: CHANGED files rewritten, spread over 3 directories (3 "packages") of the tree.
# The leaf directories holding files, three picked at 1/4, 1/2 and 3/4 of their sorted list.
mapfile -t LEAVES < <(find "$W/tree/usr" -type f -printf '%h\n' | sort -u)
DIRS=()
for q in 1 2 3; do DIRS+=("${LEAVES[$(( ${#LEAVES[@]} * q / 4 ))]}"); done
mapfile -t DIRS < <(printf '%s\n' "${DIRS[@]}" | sort -u)
per=$(( (CHANGED + ${#DIRS[@]} - 1) / ${#DIRS[@]} ))
n=0
for d in "${DIRS[@]}"; do
  while read -r f; do
    printf 'v2 update of %s\n' "${f#$W/tree/}" >>"$f"; n=$((n + 1))
  done < <(find "$d" -type f | sort | head -"$per")
done
C2=$("$OC" repo commit --quiet --repo "$W/src" -b v2 --timestamp 2020-01-02T00:00:00Z --tree=dir="$W/tree")
rm -rf "$W/tree"
echo "fixture: $FILES files, $BYTES bytes; v1 $C1; v2 $C2: $n files changed in ${#DIRS[@]} directories ($(for d in "${DIRS[@]}"; do printf '%s ' "${d#$W/tree/}"; done)); $(nproc) cores (shared: figures noisy)"
for v in v1 v2; do
  "$OC" encapsulate --quiet --repo "$W/src" --max-layers 90 --compression gzip "$v" "oci:$W/img-$v:latest" >/dev/null
done

# Registry.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$W/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
IMAGE="127.0.0.1:$port/bench/update:latest"
SPEC="ostree-unverified-registry:$IMAGE"
push() { skopeo copy --quiet --dest-tls-verify=false "oci:$W/img-$1:latest" "docker://$IMAGE"; }
layers() { skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | python3 -c 'import json,sys; [print(l["digest"]) for l in json.load(sys.stdin)["layers"]]'; }
pull_cmd() { # IMPL REPO
  case "$1" in
    ours) PULL=("$OC" image pull --insecure-skip-tls-verification "$2" "$SPEC") ;;
    ostree-ext) PULL=("$OSTREE_EXT" container image pull "$2" "$SPEC" --insecure-skip-tls-verification) ;;
  esac
}

push v1
layers >"$W/l1"
for impl in ours ostree-ext; do
  ostree init --repo="$W/r-$impl" --mode=bare-user
  pull_cmd "$impl" "$W/r-$impl"
  "${PULL[@]}" >"$W/v1-$impl.out" 2>&1 || { cat "$W/v1-$impl.out" >&2; fail "$impl: pull of v1"; }
done
push v2
layers >"$W/l2"
echo "manifests: v1 $(wc -l <"$W/l1") layers, v2 $(wc -l <"$W/l2") layers; layers of v2 not in v1: $(sort "$W/l1" | comm -13 - <(sort "$W/l2") | wc -l)"
sync
for impl in ours ostree-ext; do
  pull_cmd "$impl" "$W/r-$impl"
  measure "update-v2-$impl" bash -c '"$@" >"$0" 2>&1' "$W/v2-$impl.out" "${PULL[@]}" || { cat "$W/v2-$impl.out" >&2; fail "$impl: pull of v2"; }
  echo "$impl: $(grep -Eo 'layers already present: [0-9]+; layers needed: [0-9]+[^)]*\)?' "$W/v2-$impl.out" | head -1)"
  sync
done
for impl in ours ostree-ext; do
  ref=$(ostree refs --repo="$W/r-$impl" ostree/container/image | head -1)
  ostree ls --repo="$W/r-$impl" -R -C -X "ostree/container/image/$ref" >"$W/tree-$impl"
done
cmp -s "$W/tree-ours" "$W/tree-ostree-ext" && echo "ok   merged v2 trees equal ($(wc -l <"$W/tree-ours") entries)" \
  || { diff "$W/tree-ours" "$W/tree-ostree-ext" | head >&2; fail "merged v2 trees differ"; }
kill "$REGISTRY_PID" 2>/dev/null || true; REGISTRY_PID=""
rm -rf "$W/r-ours" "$W/r-ostree-ext" "$W/registry" "$W"/img-*

echo
echo "update-v2: timed pull of v2 with v1 present (registry on 127.0.0.1); last column: ostree-ext wall / ours"
echo "One run; CPU shared with another job: figures noisy."
summarize_vs ours ostree-ext
echo

# Prune: both commits stored, v1's ref deleted.
RESULTS="$W/results-prune"
: >"$RESULTS"
ostree refs --repo="$W/src" --delete v1
cp -a "$W/src" "$W/p-ours"
cp -a "$W/src" "$W/p-ostree"
sync
measure "prune-refs-only-ours" "$OC" repo prune --repo "$W/p-ours" --refs-only
sync
measure "prune-refs-only-ostree" ostree prune --repo="$W/p-ostree" --refs-only
for r in ours ostree; do (cd "$W/p-$r" && find objects -type f | sort) >"$W/objs-$r"; done
before=$(cd "$W/src" && find objects -type f | wc -l)
cmp -s "$W/objs-ours" "$W/objs-ostree" && echo "ok   prune: same object set ($before objects before, $(wc -l <"$W/objs-ours") after)" \
  || { diff "$W/objs-ours" "$W/objs-ostree" | head >&2; fail "prune: object sets differ"; }
ostree fsck --repo="$W/p-ours" >/dev/null 2>&1 && echo "ok   fsck after our prune" || fail "fsck after our prune"
echo "prune --refs-only after deleting one of two refs (bare-user); last column: ostree wall / ours"
summarize_vs ours ostree
