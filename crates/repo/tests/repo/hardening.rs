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
    assert!(e.to_string().contains("ex-integrity.composefs"), "{e}");
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

#[allow(dead_code)]
fn _unused(_: Checksum, _: TreeDir) {}
