#!/usr/bin/env bash
# Interoperability with the reference implementation, ostree-ext 0.15.3 (built from crates.io
# into a scratch directory on first use; slow). Not part of CI because of that build.
# Checks, on a generated tree committed by the real `ostree`:
#   ostree-ext encapsulate  -> our unencapsulate   (bare-user, archive)
#   our encapsulate         -> ostree-ext unencapsulate (single and 8 layers)
#   our tar export          -> ostree-ext tar import
#   ostree-ext tar export   -> our tar import
# Every import must yield the source commit and pass `ostree fsck`.
source "$(dirname "$0")/lib.sh"
need_packages ostree skopeo
build_release
build_ostree_ext
W=$(mktemp -d /var/tmp/ostree-container-interop.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$GEN" sample "$W/tree" >/dev/null
ostree init --repo="$W/src" --mode=bare-user
C=$(ostree commit --repo="$W/src" -b t -s interop --timestamp=2020-01-01T00:00:00Z --tree=dir="$W/tree")
ok() { echo "ok   $*"; }
check() { # REPO LABEL
  local got
  got=$(ostree rev-parse --repo="$1" "$C")
  [ "$got" = "$C" ] && ostree fsck --repo="$1" >/dev/null && ok "$2" || { echo "FAIL $2" >&2; exit 1; }
}
"$OSTREE_EXT" container encapsulate --repo "$W/src" t "oci:$W/ext-img:latest" >/dev/null
for mode in bare-user archive; do
  "$OC" repo init --repo "$W/ours-$mode" --mode "$mode"
  "$OC" unencapsulate --quiet --repo "$W/ours-$mode" "ostree-unverified-image:oci:$W/ext-img:latest" >/dev/null
  check "$W/ours-$mode" "ostree-ext encapsulate -> our unencapsulate ($mode)"
done
for layers in 1 8; do
  "$OC" encapsulate --quiet --repo "$W/src" --max-layers "$layers" t "oci:$W/our-img-$layers:latest" >/dev/null
  ostree init --repo="$W/ext-$layers" --mode=bare-user
  "$OSTREE_EXT" container unencapsulate --quiet --repo "$W/ext-$layers" "ostree-unverified-image:oci:$W/our-img-$layers:latest" >/dev/null
  check "$W/ext-$layers" "our encapsulate ($layers layers) -> ostree-ext unencapsulate"
done
"$OC" tar export --repo "$W/src" t --output "$W/ours.tar"
ostree init --repo="$W/ext-tar" --mode=bare-user
"$OSTREE_EXT" tar import --repo "$W/ext-tar" "$W/ours.tar" >/dev/null
check "$W/ext-tar" "our tar export -> ostree-ext tar import"
"$OSTREE_EXT" tar export --repo "$W/src" --format-version 1 t >"$W/ext.tar"
"$OC" repo init --repo "$W/ours-tar" --mode bare-user
"$OC" tar import --repo "$W/ours-tar" "$W/ext.tar" >/dev/null
check "$W/ours-tar" "ostree-ext tar export -> our tar import"
echo "all interoperability checks passed for commit $C"
