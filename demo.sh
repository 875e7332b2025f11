#!/usr/bin/env bash
# The main job end to end on a built-in sample. Installs missing Debian packages and builds, then:
#  1. generates a sample OS-like tree and commits it natively into an OSTree repository;
#  2. encapsulates the commit as a chunked OCI image and pushes it to a docker-registry started
#     on 127.0.0.1;
#  3. unencapsulates the image from the registry into a fresh repository;
#  4. has the real `ostree` verify the result (fsck, same commit, identical checkout);
#  5. builds a derived image (the base plus an ordinary container layer that changes, adds and
#     deletes files), pushes it, and pulls it into the layered-image store (`image pull`): a merge
#     commit composed from trees, checked by `ostree fsck` and `ostree checkout`.
source "$(dirname "$0")/scripts/lib.sh"
cd "$ROOT"
ensure_packages
echo "==> building (release)"
cargo build --release --quiet -p ostree-container-cli -p test-support --bin ostree-container --bin gen-tree
OC="$ROOT/target/release/ostree-container"
WORK=$(mktemp -d /var/tmp/ostree-container-demo.XXXXXX)
REGISTRY_PID=""
cleanup() {
  [ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> 1. sample tree and commit"
"$ROOT/target/release/gen-tree" sample "$WORK/tree"
mkdir -p "$WORK/tree/usr/bin" "$WORK/tree/usr/share/demo" "$WORK/tree/usr/etc"
for i in $(seq 1 20); do echo "demo file $i" >"$WORK/tree/usr/share/demo/file$i"; done
printf '#!/bin/sh\necho demo\n' >"$WORK/tree/usr/bin/demo" && chmod 0755 "$WORK/tree/usr/bin/demo"
echo "demo=1" >"$WORK/tree/usr/etc/demo.conf"
"$OC" repo init --repo "$WORK/source" --mode bare-user
commit=$("$OC" repo commit --quiet --repo "$WORK/source" -b demo -s "ostree-container demo" \
  --add-metadata-string version=1.0 --timestamp 2020-01-01T00:00:00Z --tree=dir="$WORK/tree")
echo "committed $commit"

echo "==> 2. encapsulate and push to a loopback registry"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
image="127.0.0.1:$port/demo/sample:latest"
digest=$("$OC" encapsulate --quiet --repo "$WORK/source" --max-layers 8 --insecure-skip-tls-verification \
  demo "docker://$image")
echo "pushed docker://$image ($digest)"

echo "==> 3. unencapsulate from the registry into a fresh repository"
"$OC" repo init --repo "$WORK/imported" --mode bare-user
start=$(date +%s%N)
"$OC" unencapsulate --repo "$WORK/imported" --write-ref demo --insecure-skip-tls-verification \
  "ostree-unverified-registry:$image"
end=$(date +%s%N)

echo "==> 4. verification with the real ostree"
ostree fsck --repo="$WORK/imported" | tail -1
imported=$(ostree rev-parse --repo="$WORK/imported" demo)
ostree checkout --repo="$WORK/source" demo "$WORK/co-source"
ostree checkout --repo="$WORK/imported" demo "$WORK/co-imported"
diff -r --no-dereference "$WORK/co-source" "$WORK/co-imported" >/dev/null && echo "checkouts are identical"
objects=$(find "$WORK/imported/objects" -type f | wc -l)
echo
echo "image:             docker://$image"
echo "manifest digest:   $digest"
echo "source commit:     $commit"
echo "imported commit:   $imported"
[ "$commit" = "$imported" ] || { echo "commits differ!" >&2; exit 1; }
echo "objects imported:  $objects"
echo "import time:       $(( (end - start) / 1000000 )) ms"

echo
echo "==> 5. a derived image through the layered-image store"
"$OC" encapsulate --quiet --repo "$WORK/source" --max-layers 8 demo "oci:$WORK/layout:base" >/dev/null
python3 "$ROOT/bench/oci_derive.py" layer "$WORK/tree" "$WORK/app-layer.tar.gz" --touch 8 >/dev/null
python3 "$ROOT/bench/oci_derive.py" append "$WORK/layout" base app "$WORK/app-layer.tar.gz" >/dev/null
app="127.0.0.1:$port/demo/app:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layout:app" "docker://$app"
"$OC" repo init --repo "$WORK/store" --mode bare-user
"$OC" image pull --insecure-skip-tls-verification "$WORK/store" "ostree-unverified-registry:$app" \
  | tee "$WORK/pull.out"
merge=$(sed -n 's/^Wrote: .* => //p' "$WORK/pull.out")
"$OC" image pull --quiet --insecure-skip-tls-verification "$WORK/store" "ostree-unverified-registry:$app"
"$OC" image list --repo "$WORK/store"
"$OC" image history --repo "$WORK/store" "docker://$app" | tail -2
ostree fsck --repo="$WORK/store" | tail -1
ostree checkout --repo="$WORK/store" "$merge" "$WORK/co-store"
changed=$( (diff -rq --no-dereference "$WORK/co-imported" "$WORK/co-store" || true) | wc -l)
parent=$(ostree show --repo="$WORK/store" --print-metadata-key=ostree.manifest-digest "$merge")
echo
echo "derived image:     docker://$app (manifest $parent)"
echo "merge commit:      $merge"
echo "paths that differ from the base checkout: $changed (the derived layer's changes)"
[ "$changed" -gt 0 ] || { echo "the derived layer changed nothing?" >&2; exit 1; }
