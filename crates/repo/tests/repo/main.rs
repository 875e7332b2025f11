//! Integration tests of the repository engine against the real `ostree` CLI (2022.7).

mod bad_input;
mod concurrency;
mod differential;
mod hardening;
mod mtree;
mod partial;
mod prune;
mod publish;
mod reading;
mod refs;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ostree_repo::format::gvariant::{Type, Value};
use ostree_repo::format::{Checksum, MetaDict};
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::ostree_cli::{CommitOpts, OstreeCli};

pub static NO_INTERRUPT: AtomicBool = AtomicBool::new(false);

pub const MODES: [(RepoMode, &str); 4] = [
    (RepoMode::Bare, "bare"),
    (RepoMode::BareUser, "bare-user"),
    (RepoMode::BareUserOnly, "bare-user-only"),
    (RepoMode::Archive, "archive"),
];

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("ostree-container-test-")
}

/// Generates the test tree of `seed` in `dir` (`GenOptions::full()` if `full`, else the
/// default options).
pub fn generate(dir: &Path, seed: u64, full: bool) {
    let base = if full {
        test_support::tree::TreeOptions::full()
    } else {
        test_support::tree::TreeOptions::default()
    };
    test_support::tree::generate_tree(dir, &test_support::tree::TreeOptions { seed, ..base })
        .unwrap();
}

pub fn ostree() -> OstreeCli {
    OstreeCli::new().unwrap()
}

/// The metadata `ostree commit -b BRANCH --add-metadata-string=...` writes: user keys in order,
/// then `ostree.ref-binding`.
pub fn cli_like_metadata(strings: &[(&str, &str)], branch: Option<&str>) -> MetaDict {
    let mut md = MetaDict::default();
    for (k, v) in strings {
        md.push(*k, Value::Str(v.to_string()));
    }
    if let Some(b) = branch {
        md.push(
            "ostree.ref-binding",
            Value::Array(Type::Str, vec![Value::Str(b.to_string())]),
        );
    }
    md
}

/// Commits `tree` natively with the same fields `cli_commit_opts` gives the CLI.
pub fn native_commit(repo: &Repo, tree: &Path, branch: &str, opts: &TreeOptions) -> Checksum {
    let mut spec = CommitSpec::new();
    spec.subject = "subj".into();
    spec.body = "body".into();
    spec.timestamp = Some(1577836800);
    spec.metadata = cli_like_metadata(&[("version", "1.0")], Some(branch));
    repo.commit_directory(tree, Some(branch), opts, &spec, &NoProgress, &NO_INTERRUPT)
        .unwrap()
}

pub fn cli_commit_opts() -> CommitOpts {
    CommitOpts::reference()
}

pub fn repo_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
