//! ostree 2025.2 as a second oracle (the first is Debian 12's 2022.7): repositories our engine
//! writes in every mode pass its fsck, its checkout of our commit equals the tree, our commit
//! of a generated tree has the checksum its `ostree commit` gives, and both versions list our
//! commits identically.

use std::path::Path;

use ostree_repo::format::gvariant::{Type, Value};
use ostree_repo::format::{Checksum, MetaDict};
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::ostree_cli::{CommitOpts, OstreeCli, list_object_files};
use test_support::tree::{self, TreeOptions as GenOptions};

use crate::{NO, d13, scratch};

/// Our commit with the fields `CommitOpts::reference()` gives `ostree commit -b BRANCH`.
fn native_commit(repo: &Repo, src: &Path, branch: &str, opts: &TreeOptions) -> Checksum {
    let mut spec = CommitSpec::new();
    spec.subject = "subj".into();
    spec.body = "body".into();
    spec.timestamp = Some(1_577_836_800);
    let mut md = MetaDict::default();
    md.push("version", Value::Str("1.0".into()));
    md.push(
        "ostree.ref-binding",
        Value::Array(Type::Str, vec![Value::Str(branch.into())]),
    );
    spec.metadata = md;
    repo.commit_directory(src, Some(branch), opts, &spec, &NoProgress, &NO)
        .unwrap()
}

fn differential(mode: RepoMode, gen_opts: &GenOptions) {
    let name = mode.name();
    let d = scratch();
    let src = d.path().join("tree");
    tree::generate_tree(&src, gen_opts).unwrap();
    let new = d13().ostree();
    let old = OstreeCli::new().unwrap();

    let theirs = d.path().join("theirs");
    new.init(&theirs, name).unwrap();
    let their_commit = new
        .commit(&theirs, "test", &src, &CommitOpts::reference())
        .unwrap();
    let repo = Repo::create(&d.path().join("ours"), mode).unwrap();
    let ours = native_commit(&repo, &src, "test", &TreeOptions::new());
    assert_eq!(
        ours.to_hex(),
        their_commit,
        "{name}: commit checksum vs 2025.2"
    );
    assert_eq!(
        list_object_files(repo.path()).unwrap(),
        list_object_files(&theirs).unwrap(),
        "{name}: object files"
    );
    new.fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("{name}: ostree 2025.2 fsck of ours: {e}"));
    // Both versions list our commit exactly as 2025.2 lists its own.
    let listing = new.ls_rxc(&theirs, "test").unwrap();
    assert_eq!(new.ls_rxc(repo.path(), "test").unwrap(), listing, "{name}");
    assert_eq!(
        old.ls_rxc(repo.path(), "test").unwrap(),
        listing,
        "{name}: 2022.7 vs 2025.2"
    );

    let out = d.path().join("checkout");
    new.checkout(repo.path(), "test", &out, false).unwrap();
    let snap = if mode == RepoMode::BareUserOnly {
        // Canonical permissions only, and user-mode checkouts make files owner-readable.
        SnapshotOptions {
            ownership: false,
            xattrs: false,
            mode_mask: 0o355,
            ..Default::default()
        }
    } else {
        SnapshotOptions::default()
    };
    assert_trees_equal(&src, &out, &snap)
        .unwrap_or_else(|e| panic!("{name}: 2025.2 checkout of ours: {e}"));
}

#[test]
fn bare() {
    differential(RepoMode::Bare, &GenOptions::default());
}

#[test]
fn bare_user() {
    differential(
        RepoMode::BareUser,
        &GenOptions {
            seed: 3,
            ..GenOptions::full()
        },
    );
}

#[test]
fn bare_user_only() {
    differential(RepoMode::BareUserOnly, &GenOptions::default());
}

#[test]
fn archive() {
    differential(
        RepoMode::Archive,
        &GenOptions {
            seed: 9,
            ..GenOptions::default()
        },
    );
}

#[test]
fn versions_are_the_ones_documented() {
    let v = d13().versions();
    assert!(v.skopeo.starts_with("skopeo version 1.18."), "{v:?}");
    assert!(v.podman.starts_with("podman version 5.4."), "{v:?}");
    assert_eq!(v.ostree, "2025.2", "{v:?}");
}

/// Debian 13's libostree, like Debian 12's, is built without libsodium: `ostree sign` has no
/// ed25519 (its default type), so signature fixtures cannot come from it.
#[test]
fn ostree_2025_sign_has_no_ed25519() {
    let d = scratch();
    let repo = d.path().join("repo");
    let tree = d.path().join("tree");
    std::fs::create_dir_all(tree.join("usr")).unwrap();
    let new = d13().ostree();
    new.init(&repo, "archive").unwrap();
    let c = new
        .commit(&repo, "x", &tree, &CommitOpts::reference())
        .unwrap();
    let out = new
        .command(&["sign", &format!("--repo={}", repo.display()), &c, "AAAA"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature type is not implemented"), "{err}");
}
