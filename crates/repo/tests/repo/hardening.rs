//! Hostile-input hardening (issue 15): unimplemented integrity config, unbounded tree depth.

use std::sync::atomic::AtomicBool;

use ostree_repo::format::{Checksum, DirTree, FileMeta, ObjectType, S_IFDIR, TreeDir, Xattrs};
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoError, RepoMode, TreeOptions};

use crate::*;

#[test]
fn composefs_required_refuses_new_commits_naming_the_key() {
    let d = scratch();
    let repo_dir = d.path().join("r");
    Repo::create(&repo_dir, RepoMode::Archive).unwrap();
    let config = repo_dir.join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[ex-integrity]\ncomposefs=true\n");
    std::fs::write(&config, text).unwrap();
    let repo = Repo::open(&repo_dir).unwrap();
    let tree = d.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("f"), b"x").unwrap();
    let e = repo
        .commit_directory(
            &tree,
            Some("b"),
            &TreeOptions::default(),
            &CommitSpec::new(),
            &NoProgress,
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(
        matches!(&e, RepoError::UnsupportedConfig { key, .. } if key == "ex-integrity.composefs"),
        "{e:?}"
    );
    assert!(
        ostree_errors::chain(&e).contains("ex-integrity.composefs"),
        "{e}"
    );
    assert!(repo.list_refs().unwrap().is_empty());
    // The same through the write API.
    let txn = repo.begin_transaction().unwrap();
    let meta = txn
        .write_metadata(ObjectType::DirMeta, None, &dir_meta().to_dirmeta_bytes())
        .unwrap();
    let t = txn
        .write_metadata(ObjectType::DirTree, None, &DirTree::default().to_bytes())
        .unwrap();
    let e = txn.write_commit(t, meta, &CommitSpec::new()).unwrap_err();
    assert!(
        matches!(&e, RepoError::UnsupportedConfig { key, .. } if key == "ex-integrity.composefs"),
        "{e:?}"
    );
}

pub fn dir_meta() -> FileMeta {
    FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
        xattrs: Xattrs::new(),
    }
}

/// Writes, bypassing every depth check of the import path, a commit whose root holds a chain
/// of `levels` nested directories `d/d/d/...` (the deepest dirtree at depth `levels`), and asks
/// for ref `deep` on it. Returns the commit and what the transaction's commit said.
pub fn deep_commit(repo: &Repo, levels: usize) -> (Checksum, Result<(), RepoError>) {
    let txn = repo.begin_transaction().unwrap();
    let meta = txn
        .write_metadata(ObjectType::DirMeta, None, &dir_meta().to_dirmeta_bytes())
        .unwrap();
    let mut t = txn
        .write_metadata(ObjectType::DirTree, None, &DirTree::default().to_bytes())
        .unwrap();
    for _ in 0..levels {
        let dt = DirTree {
            files: vec![],
            dirs: vec![TreeDir {
                name: "d".into(),
                tree: t,
                meta,
            }],
        };
        t = txn
            .write_metadata(ObjectType::DirTree, None, &dt.to_bytes())
            .unwrap();
    }
    let c = txn.write_commit(t, meta, &CommitSpec::new()).unwrap();
    txn.set_ref("deep", Some(c)).unwrap();
    let r = txn.commit().map(|_| ());
    (c, r)
}

fn assert_too_deep<T: std::fmt::Debug>(what: &str, r: Result<T, RepoError>) {
    match r {
        Err(RepoError::TooDeep { limit, .. }) => assert_eq!(limit, 256, "{what}"),
        other => panic!("{what}: expected TooDeep, got {other:?}"),
    }
}

/// Runs `f` on a thread with a 256 KiB stack: a walk that recursed once per level would
/// overflow it long before 300 levels.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn trees_nested_to_the_limit_are_accepted_deeper_refused() {
    let d = scratch();
    let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
    let (ok, r) = deep_commit(&repo, 256);
    r.unwrap();
    assert_eq!(repo.read_ref("deep").unwrap(), Some(ok));
    assert!(repo.find_missing(&ok).unwrap().is_empty());
    assert!(repo.fsck(&NoProgress, &NO_INTERRUPT).unwrap().is_ok());
    repo.checkout(
        &ok,
        &d.path().join("co"),
        &Default::default(),
        &NoProgress,
        &NO_INTERRUPT,
    )
    .unwrap();
    let deepest: std::path::PathBuf = std::iter::repeat_n("d", 256).collect();
    assert!(d.path().join("co").join(&deepest).is_dir());

    // One more level: the transaction refuses to publish the ref, naming the limit.
    let (deep, r) = deep_commit(&repo, 257);
    assert_too_deep("commit", r);
    assert_eq!(repo.read_ref("deep").unwrap(), Some(ok));
    assert!(repo.is_commit_partial(&deep));
}

#[test]
fn walks_of_a_too_deep_tree_fail_without_deep_recursion() {
    let d = scratch();
    let dir = d.path().join("r");
    let repo = Repo::create(&dir, RepoMode::Archive).unwrap();
    let (c, r) = deep_commit(&repo, 300);
    assert_too_deep("commit", r);
    // As if a bypassing writer had left it complete and unmarked.
    std::fs::remove_file(repo.commitpartial_path(&c)).unwrap();
    let base = d.path().to_path_buf();
    on_small_stack(move || {
        let repo = Repo::open(&dir).unwrap();

        assert_too_deep("traverse", repo.traverse_commit(&c));
        assert_too_deep("find_missing", repo.find_missing(&c));
        assert_too_deep("fsck", repo.fsck(&NoProgress, &NO_INTERRUPT));
        let dest = base.join("co");
        assert_too_deep(
            "checkout",
            repo.checkout(&c, &dest, &Default::default(), &NoProgress, &NO_INTERRUPT),
        );
        assert!(!dest.exists(), "a refused checkout created its destination");

        let txn = repo.begin_transaction().unwrap();
        let mut t = ostree_repo::MutableTree::from_commit(&txn, &c).unwrap();
        let mut cur = &mut t;
        for _ in 0..300 {
            cur = cur.dir_mut(&txn, "d").unwrap().unwrap();
        }
        cur.insert(
            &txn,
            "new".into(),
            ostree_repo::MtreeEntry::Dir(ostree_repo::MutableTree::new(dir_meta())),
        )
        .unwrap();
        assert_too_deep("mtree write", t.write(&txn));
    });
}

#[test]
fn committing_a_too_deep_directory_is_refused() {
    let d = scratch();
    let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
    let tree = d.path().join("tree");
    let deep: std::path::PathBuf = std::iter::repeat_n("d", 257).collect();
    std::fs::create_dir_all(tree.join(&deep)).unwrap();
    let r = repo.commit_directory(
        &tree,
        Some("b"),
        &TreeOptions::default(),
        &CommitSpec::new(),
        &NoProgress,
        &AtomicBool::new(false),
    );
    assert_too_deep("commit_directory", r);
    assert!(repo.list_refs().unwrap().is_empty());
    std::fs::remove_dir(tree.join(&deep)).unwrap();
    repo.commit_directory(
        &tree,
        Some("b"),
        &TreeOptions::default(),
        &CommitSpec::new(),
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
}
