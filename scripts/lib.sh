# Shared by demo.sh and test.sh: install what is missing, idempotently.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_PACKAGES=(ostree skopeo docker-registry attr openssl zstd time curl python3 ca-certificates
  tmux debootstrap docker.io gnupg
  libselinux1-dev libclang-dev)

ensure_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "error: cargo (Rust stable) is required: install it with rustup or 'apt-get install cargo'" >&2
      exit 1
    fi
  fi
  for c in clippy rustfmt; do
    if command -v rustup >/dev/null 2>&1 && ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      rustup component add "$c"
    fi
  done
}

# The SELinux policy root of the labelling tests (scripts/selinux-root.sh): reused when
# complete, built (~4 min) otherwise.
ensure_selinux_root() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  local start=$SECONDS
  $sudo bash "$ROOT/scripts/selinux-root.sh"
  echo "==> SELinux policy root ready ($((SECONDS - start)) s)"
}

# The Debian 13 chroot (skopeo 1.18, podman 5.4, ostree 2025.2) the `modern` tests use; see
# scripts/debian13.sh. Reused when complete, built (~1.5 min) otherwise.
ensure_debian13() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  local start=$SECONDS
  $sudo bash "$ROOT/scripts/debian13.sh"
  echo "==> Debian 13 tools ready ($((SECONDS - start)) s)"
}
