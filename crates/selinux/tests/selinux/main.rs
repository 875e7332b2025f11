//! Labels against the oracle: a derived layer imported with a real policy (Debian's
//! `selinux-policy-default`) must give exactly the objects `ostree commit --selinux-policy`
//! gives the same files (ostree 2022.7 on the host, 2025.2 from the Debian 13 chroot).

mod differential;
mod layer;
mod relabel;

use std::path::Path;

use ostree_repo::Repo;
use test_support::ostree_cli::OstreeCli;

/// The two oracles.
pub fn oracles() -> Vec<(&'static str, OstreeCli)> {
    vec![
        ("ostree 2022.7", OstreeCli::new().unwrap()),
        (
            "ostree 2025.2",
            test_support::modern::Debian13::get().ostree(),
        ),
    ]
}

/// A fresh repository of `mode` under `dir`, created by the real ostree.
pub fn init_repo(dir: &Path, mode: &str) -> Repo {
    let p = dir.join(format!("repo-{mode}"));
    OstreeCli::new().unwrap().init(&p, mode).unwrap();
    Repo::open(&p).unwrap()
}

/// A tree holding only the policy (`usr/etc/selinux`).
pub fn policy_tree(dir: &Path) -> std::path::PathBuf {
    let t = dir.join("policy");
    test_support::selinux::install_policy(&t);
    t
}
