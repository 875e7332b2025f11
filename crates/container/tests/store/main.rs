//! The layered-image store end to end: derived and non-ostree images made in code (our base
//! commit layer plus ordinary container layers), pulled into every repository mode, the merge
//! commit checked out by the real `ostree` and compared with the tree a container runtime would
//! show; determinism, already-present pulls, state queries, and bad input.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
mod derived;
mod faults;
mod lifecycle;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use ostree_repo::format::Checksum;
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_tar::ExportPlan;

pub static NO: AtomicBool = AtomicBool::new(false);

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-store-")
}

/// Writes a regular file with mode and owner (parents created 0755).
pub fn put(root: &Path, rel: &str, data: &[u8], mode: u32, uid: u32, gid: u32) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, data).unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates a directory with mode and owner (parents created 0755).
pub fn mkdir(root: &Path, rel: &str, mode: u32, uid: u32, gid: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(&p).unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Commits `tree` into a new bare-user repository at `dir/source`; returns the repo, the commit
/// and its commit layer (single-layer export, uncompressed).
pub fn commit_base(dir: &Path, tree: &Path) -> (Repo, Checksum, Vec<u8>) {
    let repo = Repo::create(&dir.join("source"), RepoMode::BareUser).unwrap();
    let mut spec = CommitSpec::new();
    spec.subject = "base".into();
    spec.timestamp = Some(1_577_836_800);
    let commit = repo
        .commit_directory(tree, None, &TreeOptions::new(), &spec, &NoProgress, &NO)
        .unwrap();
    let mut layer = Vec::new();
    ExportPlan::new(&repo, commit)
        .unwrap()
        .write_commit_layer(&mut layer, &HashSet::new())
        .unwrap();
    (repo, commit, layer)
}
