#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, then all unit and integration tests against the
# real ostree, skopeo and a loopback docker-registry, and (the `modern` tests) Debian 13's skopeo,
# podman and ostree in a chroot plus a Docker daemon. Installs missing Debian packages and sets
# up the chroot first.
source "$(dirname "$0")/scripts/lib.sh"
cd "$ROOT"
ensure_packages
echo "==> Debian 13 tools (scripts/debian13.sh)"
ensure_debian13
echo "==> SELinux policy root (scripts/selinux-root.sh)"
ensure_selinux_root
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> engine crates must not depend on tokio or the image proxy"
for c in ostree-format ostree-repo ostree-tar; do
  if cargo tree -p "$c" -e normal 2>/dev/null | grep -qE '^.*(tokio|containers-image-proxy) v'; then
    echo "error: $c depends on tokio or containers-image-proxy" >&2; exit 1
  fi
done
echo "==> cargo test"
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
