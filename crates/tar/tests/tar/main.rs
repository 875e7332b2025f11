//! Integration tests of the ostree tar format against the real `ostree` CLI (2022.7) and GNU tar.

mod chunked;
mod depth;
mod format;
mod fuzz;
mod hostile;
mod oci;
mod parallel;
mod roundtrip;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ostree_repo::format::Checksum;
use ostree_repo::{Repo, RepoMode};
use ostree_tar::{ExportPlan, ImportSession};
use test_support::ostree_cli::{CommitOpts, OstreeCli};

pub static NO_INTERRUPT: AtomicBool = AtomicBool::new(false);

pub const MODES: [(RepoMode, &str); 4] = [
    (RepoMode::Bare, "bare"),
    (RepoMode::BareUser, "bare-user"),
    (RepoMode::BareUserOnly, "bare-user-only"),
    (RepoMode::Archive, "archive"),
];

use test_support::ostree_cli::REFERENCE_COMMIT;

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("ostree-tar-test-")
}

pub fn ostree() -> OstreeCli {
    OstreeCli::new().unwrap()
}

/// Which tree a source commit holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    Reference,
    Generated,
}

/// A source repository (created with `ostree init`) holding one commit of `kind` on branch
/// `test`, committed by `ostree commit` (as the spec's examples are).
pub struct Source {
    pub dir: PathBuf,
    pub repo: Repo,
    pub commit: Checksum,
}

pub fn make_source(base: &Path, mode: &str, kind: TreeKind) -> Source {
    let o = ostree();
    let tree = base.join(format!("tree-{mode}"));
    match kind {
        TreeKind::Reference => test_support::tree::reference_tree(&tree).unwrap(),
        TreeKind::Generated => {
            test_support::tree::generate_tree(&tree, &Default::default()).unwrap();
        }
    }
    let dir = base.join(format!("src-{mode}"));
    o.init(&dir, mode).unwrap();
    let opts = CommitOpts {
        detached_metadata_strings: vec![("sig".into(), "abc".into())],
        ..CommitOpts::reference()
    };
    let c = o.commit(&dir, "test", &tree, &opts).unwrap();
    let repo = Repo::open(&dir).unwrap();
    Source {
        dir,
        repo,
        commit: c.parse().unwrap(),
    }
}

/// The `tar export` stream of a commit.
pub fn export_bytes(repo: &Repo, commit: &Checksum) -> Vec<u8> {
    let mut out = Vec::new();
    ExportPlan::new(repo, *commit)
        .unwrap()
        .write_export(&mut out)
        .unwrap();
    out
}

/// Imports one commit-layer stream in a fresh transaction and publishes it.
pub fn import_commit_layer(repo: &Repo, data: &[u8]) -> ostree_tar::Result<Checksum> {
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let c = s.import_commit_layer(data, None)?;
    s.finish()?;
    txn.commit().unwrap();
    Ok(c)
}

pub fn new_repo(base: &Path, name: &str, mode: RepoMode) -> Repo {
    Repo::create(&base.join(name), mode).unwrap()
}

/// `ostree fsck` must pass.
pub fn fsck_ok(repo: &Path) {
    ostree().fsck(repo).unwrap().check().unwrap();
}
