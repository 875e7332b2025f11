#!/usr/bin/env bash
# SELinux labelling figures (issue 13): a generated 30,000-file tree with Debian's
# selinux-policy-default (scripts/selinux-root.sh), labelled by ostree-selinux: policy load,
# lookups, a full relabel, a relabel that changes nothing, and the merge's policy-unchanged check,
# for each lookup backend (libselinux first as the baseline, then the native matcher, with ratios).
# Baseline in the same run: `ostree commit --selinux-policy` of the same tree (2022.7).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_selinux_root
FILES=${FILES:-30000}
dir=$(mktemp -d /var/tmp/oc-bench-selinux-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cargo run -q --release -p ostree-selinux --example relabel_bench -- "$dir" "$FILES"
ostree init --repo="$dir/oracle" --mode=bare-user
start=$(date +%s.%N)
ostree commit --repo="$dir/oracle" -b t --selinux-policy="$dir/tree" --tree=dir="$dir/tree" >/dev/null
end=$(date +%s.%N)
start2=$(date +%s.%N)
ostree commit --repo="$dir/oracle" -b u --tree=dir="$dir/tree" >/dev/null
end2=$(date +%s.%N)
echo "baseline: ostree commit --selinux-policy of the tree: $(echo "$end - $start" | bc) s; without policy (objects already present): $(echo "$end2 - $start2" | bc) s"
