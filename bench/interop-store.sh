#!/usr/bin/env bash
# Interoperability of the layered-image store with the reference, ostree-ext 0.15.3 (built as
# bench/lib.sh does; slow the first time, hence not in CI). On a small OS-like tree (gen-tree bench,
# FILES files) committed by the real `ostree`, encapsulated by us (8 layers) into an oci: layout with
# the derived image "app" = base + a derived layer (bench/oci_derive.py), for each repository mode:
#   ours writes, ostree-ext reads: `container image list`, `metadata` (manifest and --config),
#     `history`, and its `image pull` of the same image says "No changes";
#   ostree-ext writes, we read and update: `image list`, `history`, `metadata`, our `image pull`
#     of the same image says "No changes";
#   both merge commits of "app" give equal trees (`ostree ls -R -C -X`: modes, owners, content
#     checksums, xattrs; the layer changes no directory metadata, where 0.15.3 keeps the base's);
#   then "app" is updated to base + the same layer + another one: our pull into ostree-ext's store
#     fetches only the new layer ("layers already present: 9; layers needed: 1"), ostree-ext's pull
#     into our store likewise, each then says "No changes" for the other's result, and the two
#     merge trees are equal again; `ostree fsck` clean throughout.
# Prints ok/FAIL lines; exits 1 if anything failed.
#   env: FILES (2000), MODES (default "bare-user bare").
source "$(dirname "$0")/lib.sh"
need_packages ostree skopeo python3
build_release
build_ostree_ext
FILES=${FILES:-2000}
PY="$ROOT/bench/oci_derive.py"
W=$(mktemp -d /var/tmp/ostree-container-interop-store.XXXXXX)
trap 'rm -rf "$W"' EXIT
FAILED=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILED=1; }
# expect LABEL PATTERN CMD...: CMD succeeds and its stdout matches the grep -E PATTERN
expect() {
  local label=$1 pat=$2 out
  shift 2
  if out=$("$@" 2>"$W/err"); then
    if grep -Eq -- "$pat" <<<"$out"; then ok "$label"; else bad "$label: no /$pat/ in output:"; sed 's/^/     /' <<<"$out" | head -20; fi
  else
    bad "$label: exit status $? from $*"; sed 's/^/     /' "$W/err" | tail -20
  fi
  LAST_OUT=$out
}
image_ref() { # REPO TAG
  ostree refs --repo="$1" ostree/container/image | grep "_3A_$2\$" | sed 's,^,ostree/container/image/,' || true
}
merged_tree() { # REPO TAG OUT
  local ref
  ref=$(image_ref "$1" "$2")
  if [ -z "$ref" ]; then : >"$3"; return; fi
  ostree ls --repo="$1" -R -C -X "$ref" >"$3"
}
same_trees() { # LABEL REPO1 REPO2 TAG
  merged_tree "$2" "$4" "$W/t1"
  merged_tree "$3" "$4" "$W/t2"
  if [ -s "$W/t1" ] && cmp -s "$W/t1" "$W/t2"; then
    ok "$1 ($(wc -l <"$W/t1") entries)"
  else
    bad "$1"; diff "$W/t1" "$W/t2" | head -20 | sed 's/^/     /'
  fi
  if grep -q '/\.wh\.' "$W/t1" "$W/t2"; then bad "$1: a whiteout left in a merged tree"; fi
}
fsck() { # REPO LABEL
  if ostree fsck --repo="$1" >/dev/null 2>"$W/err"; then ok "fsck $2"; else bad "fsck $2"; tail -5 "$W/err"; fi
}
# manifest_matches LABEL JSON-FILE TAG [--config]: the printed manifest (config) is the layout's
manifest_matches() {
  local what=${4:-manifest}
  if python3 - "$2" "$W/img" "$3" "$what" <<'PY'; then ok "$1"; else bad "$1"; fi
import json, sys, os
got = json.loads(open(sys.argv[1]).read())
d, tag, what = sys.argv[2], sys.argv[3], sys.argv[4]
idx = json.load(open(os.path.join(d, "index.json")))
m = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
blob = lambda dg: json.load(open(os.path.join(d, "blobs", *dg.split(":"))))
man = blob(m["digest"])
if what == "manifest":
    ok = [l["digest"] for l in got["layers"]] == [l["digest"] for l in man["layers"]] \
        and got["config"]["digest"] == man["config"]["digest"]
else:
    cfg = blob(man["config"]["digest"])
    ok = got["rootfs"]["diff_ids"] == cfg["rootfs"]["diff_ids"] \
        and got.get("config", {}).get("Labels") == cfg.get("config", {}).get("Labels")
if not ok:
    print(json.dumps(got)[:600], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

"$GEN" bench "$W/tree" "$FILES" $((FILES * 16384)) >/dev/null
ostree init --repo="$W/src" --mode=bare-user
C=$(ostree commit --repo="$W/src" -b t -s interop --timestamp=2020-01-01T00:00:00Z --tree=dir="$W/tree")
"$OC" encapsulate --quiet --repo "$W/src" --max-layers 8 t "oci:$W/img:base" >/dev/null
python3 "$PY" layer "$W/tree" "$W/d1.tar.gz" --touch $((FILES / 10)) --seed 1 --name derived-1 >/dev/null
python3 "$PY" layer "$W/tree" "$W/d2.tar.gz" --touch $((FILES / 20)) --seed 2 --name derived-2 >/dev/null
python3 "$PY" append "$W/img" base app "$W/d1.tar.gz" >/dev/null
# The newer "app", kept aside under another tag until the update step.
python3 "$PY" append "$W/img" app app-next "$W/d2.tar.gz" >/dev/null
NLAYERS=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["layers"]))' \
  "$W/img/blobs/sha256/$(python3 -c 'import json,sys; print([m for m in json.load(open(sys.argv[1]))["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"]=="app"][0]["digest"].split(":")[1])' "$W/img/index.json")")
REF="oci:$W/img:app"
SPEC="ostree-unverified-image:$REF"
echo "base commit $C; image app: $NLAYERS layers (8 from the base, one derived)"

for mode in ${MODES:-bare-user bare}; do
  echo "== $mode"
  ostree init --repo="$W/ours-$mode" --mode="$mode"
  ostree init --repo="$W/ext-$mode" --mode="$mode"
  O="$W/ours-$mode" E="$W/ext-$mode"
  # Ours writes, ostree-ext reads.
  expect "ours: pull into an empty repository" "^Wrote: (ostree-unverified-image:)?$REF => " "$OC" image pull "$O" "$SPEC"
  expect "ostree-ext reads our store: container image list" "^$REF\$" "$OSTREE_EXT" container image list --repo "$O"
  "$OSTREE_EXT" container image metadata --repo "$O" "$REF" >"$W/m.json" 2>"$W/err" || true
  manifest_matches "ostree-ext reads our store: container image metadata (manifest)" "$W/m.json" app
  "$OSTREE_EXT" container image metadata --repo "$O" --config "$REF" >"$W/c.json" 2>"$W/err" || true
  manifest_matches "ostree-ext reads our store: container image metadata --config" "$W/c.json" app config
  expect "ostree-ext reads our store: container image history" "bench derived layer derived-1" "$OSTREE_EXT" container image history --repo "$O" "$REF"
  expect "ostree-ext: pull of the same image into our store says No changes" "^No changes in (ostree-unverified-image:)?$REF => " "$OSTREE_EXT" container image pull "$O" "$SPEC"
  fsck "$O" "our store after ostree-ext's reads ($mode)"
  # ostree-ext writes, we read and update.
  expect "ostree-ext: pull into an empty repository" "^Wrote: (ostree-unverified-image:)?$REF => " "$OSTREE_EXT" container image pull "$E" "$SPEC"
  expect "we read ostree-ext's store: image list" "^$REF\$" "$OC" image list --repo "$E"
  expect "we read ostree-ext's store: image history" "bench derived layer derived-1" "$OC" image history --repo "$E" "$REF"
  "$OC" image metadata --repo "$E" "$REF" >"$W/m.json" 2>"$W/err" || true
  manifest_matches "we read ostree-ext's store: image metadata (manifest)" "$W/m.json" app
  "$OC" image metadata --repo "$E" --config "$REF" >"$W/c.json" 2>"$W/err" || true
  manifest_matches "we read ostree-ext's store: image metadata --config" "$W/c.json" app config
  expect "ours: pull of the same image into ostree-ext's store says No changes" "^No changes in (ostree-unverified-image:)?$REF => " "$OC" image pull "$E" "$SPEC"
  same_trees "merge commits of app equal: ours vs ostree-ext ($mode)" "$O" "$E" app
  # The newer image under the same reference: only the new layer is fetched, by either side.
  python3 "$PY" append "$W/img" app-next app >/dev/null
  expect "ours: update of ostree-ext's store fetches only the new layer" "^layers already present: $NLAYERS; layers needed: 1 " "$OC" image pull "$E" "$SPEC"
  grep -Eq "^Wrote: (ostree-unverified-image:)?$REF => " <<<"$LAST_OUT" && ok "ours: update of ostree-ext's store wrote a new merge" || bad "ours: update wrote no merge: $LAST_OUT"
  expect "ostree-ext: pull of the updated image into the store we updated says No changes" "^No changes in (ostree-unverified-image:)?$REF => " "$OSTREE_EXT" container image pull "$E" "$SPEC"
  expect "ostree-ext: update of our store fetches only the new layer" "layers already present: $NLAYERS; layers needed: 1 " "$OSTREE_EXT" container image pull "$O" "$SPEC"
  expect "ours: pull of the updated image into the store ostree-ext updated says No changes" "^No changes in (ostree-unverified-image:)?$REF => " "$OC" image pull "$O" "$SPEC"
  same_trees "merge commits of the updated app equal: ours vs ostree-ext ($mode)" "$E" "$O" app
  fsck "$O" "our store after ostree-ext's update ($mode)"
  fsck "$E" "ostree-ext's store after our update ($mode)"
  # Back to the first "app" for the next mode.
  python3 "$PY" append "$W/img" base app "$W/d1.tar.gz" >/dev/null
done
if [ "$FAILED" = 0 ]; then echo "all store interoperability checks passed"; else echo "store interoperability: FAILURES" >&2; exit 1; fi
