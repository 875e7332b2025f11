#!/usr/bin/env bash
# The main job end to end on a built-in sample. Installs missing Debian packages and builds, then:
#  1. generates a sample OS-like tree and commits it natively into an OSTree repository;
#  2. encapsulates the commit as a chunked OCI image and pushes it to a docker-registry started
#     on 127.0.0.1;
#  3. unencapsulates the image from the registry into a fresh repository;
#  4. has the real `ostree` verify the result (fsck, same commit, identical checkout).
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
