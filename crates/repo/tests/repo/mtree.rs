//! `MutableTree`: editing a stored tree rewrites only the directories on the edited paths, and
//! the result equals what `ostree commit` gives for the edited directory on disk.

use ostree_repo::format::ObjectType;
use ostree_repo::{MtreeEntry, MutableTree, Repo, RepoMode, TreeOptions};

use crate::*;

#[test]
fn edits_rewrite_only_their_paths_and_match_ostree_commit() {
    let d = scratch();
    let tree = d.path().join("tree");
    generate(&tree, 71, false);
    let repo = Repo::create(&d.path().join("repo"), RepoMode::Bare).unwrap();
    let base = native_commit(&repo, &tree, "base", &TreeOptions::new());
    let before = repo.list_objects(ObjectType::DirTree).unwrap().len();

    // Two subdirectories of the root with files: in the first, delete a file and add a copy
    // (same content object, no content read) of a file of the second.
    let mut root = MutableTree::from_commit(&repo, &base).unwrap();
    let mut with_files = Vec::new();
    for (name, e) in root.entries(&repo).unwrap().clone() {
        if let MtreeEntry::Dir(mut sub) = e {
            let inner = sub.entries(&repo).unwrap();
            if let Some((n, MtreeEntry::File(c))) =
                inner.iter().find(|(_, e)| matches!(e, MtreeEntry::File(_)))
            {
                with_files.push((name, n.clone(), *c));
            }
        }
    }
    assert!(
        with_files.len() >= 2,
        "the generated tree has two directories with files"
    );
    let (dir_a, file_a, _) = with_files[0].clone();
    let (dir_b, file_b, content_b) = with_files[1].clone();
    let sub = root.dir_mut(&repo, &dir_a).unwrap().unwrap();
    sub.remove(&repo, &file_a).unwrap();
    sub.insert(&repo, "copied".into(), MtreeEntry::File(content_b))
        .unwrap();

    let txn = repo.begin_transaction().unwrap();
    let (root_tree, root_meta) = root.write(&txn).unwrap();
    let stats = txn.stats();
    // Two directories changed (the root and one subdirectory): two dirtrees, no dirmeta.
    assert_eq!(stats.metadata_written, 2, "{stats:?}");
    let commit = txn
        .write_commit(root_tree, root_meta, &ostree_repo::CommitSpec::new())
        .unwrap();
    txn.set_ref("edited", Some(commit)).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        repo.list_objects(ObjectType::DirTree).unwrap().len(),
        before + 2
    );

    // The same edit on disk, committed by the real ostree, gives the same root tree.
    std::fs::remove_file(tree.join(&dir_a).join(&file_a)).unwrap();
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(tree.join(&dir_b).join(&file_b))
        .arg(tree.join(&dir_a).join("copied"))
        .status()
        .unwrap();
    assert!(cp.success());
    let o = ostree();
    let oracle = d.path().join("oracle");
    o.init(&oracle, "bare").unwrap();
    let c = o.commit(&oracle, "x", &tree, &cli_commit_opts()).unwrap();
    let oracle_repo = Repo::open(&oracle).unwrap();
    let theirs = oracle_repo.load_commit(&c.parse().unwrap()).unwrap();
    assert_eq!(theirs.root_tree, root_tree);
    assert_eq!(theirs.root_meta, root_meta);
    o.fsck(repo.path()).unwrap().check().unwrap();
}

#[test]
fn unchanged_tree_is_written_as_its_checksums_without_loading() {
    let d = scratch();
    let tree = d.path().join("tree");
    generate(&tree, 72, false);
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let base = native_commit(&repo, &tree, "base", &TreeOptions::new());
    let c = repo.load_commit(&base).unwrap();
    let mut root = MutableTree::from_commit(&repo, &base).unwrap();
    let txn = repo.begin_transaction().unwrap();
    assert_eq!(root.write(&txn).unwrap(), (c.root_tree, c.root_meta));
    assert_eq!(txn.stats().metadata_written, 0);
    // Reading is not changing.
    let _ = root.entries(&repo).unwrap();
    assert_eq!(root.stored_tree(), Some(c.root_tree));
    txn.abort();
}
