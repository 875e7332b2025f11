#!/usr/bin/env bash
# The main job end to end on a built-in sample. Installs missing Debian packages, builds, then:
# generates a sample OS-like tree, commits it natively into a fresh repository, has the real
# `ostree` verify it (fsck, same checksum as `ostree commit`), and checks it out again.
source "$(dirname "$0")/scripts/lib.sh"
cd "$ROOT"
ensure_packages
echo "==> building (release)"
cargo build --release --quiet -p ostree-container-cli -p test-support --bin ostree-container --bin gen-tree
OC="$ROOT/target/release/ostree-container"
WORK=$(mktemp -d /var/tmp/ostree-container-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "==> generating a sample tree"
"$ROOT/target/release/gen-tree" sample "$WORK/tree"
echo "==> committing it with ostree-container (bare-user repository)"
"$OC" repo init --repo "$WORK/repo" --mode bare-user
start=$(date +%s.%N)
commit=$("$OC" repo commit --quiet --repo "$WORK/repo" -b demo --timestamp 2020-01-01T00:00:00Z -s "demo" --tree=dir="$WORK/tree")
end=$(date +%s.%N)
objects=$(find "$WORK/repo/objects" -type f | wc -l)
echo "==> verifying with the real ostree"
ostree fsck --repo="$WORK/repo" | tail -1
ostree init --repo="$WORK/ref" --mode=bare-user
theirs=$(ostree commit --repo="$WORK/ref" -b demo --timestamp=2020-01-01T00:00:00Z -s demo --tree=dir="$WORK/tree")
"$OC" repo checkout --repo "$WORK/repo" demo "$WORK/checkout"
diff -r --no-dereference "$WORK/tree" "$WORK/checkout" >/dev/null && echo "checkout matches the source tree"
echo
echo "commit:            $commit"
echo "ostree commit:     $theirs"
[ "$commit" = "$theirs" ] && echo "checksums:         identical" || { echo "checksums differ!" >&2; exit 1; }
echo "objects written:   $objects"
printf 'commit time:       %.2fs\n' "$(echo "$end - $start" | bc 2>/dev/null || echo 0)"
