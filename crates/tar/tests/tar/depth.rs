//! Commits nested deeper than libostree's OSTREE_MAX_RECURSION (256): refused on import, and
//! export fails with an error instead of recursing once per level.

use ostree_repo::format::{
    Checksum, DirTree, FileMeta, ObjectName, ObjectType, S_IFDIR, TreeDir, Xattrs,
};
use ostree_repo::{CommitSpec, Repo, RepoError, RepoMode};
use ostree_tar::layout::{TarObjectKind, object_path};
use ostree_tar::{ErrorKind, ExportPlan, ImportSession};

use crate::hostile::{E, build, entries};
use crate::*;

fn dir_meta() -> FileMeta {
    FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
        xattrs: Xattrs::new(),
    }
}

/// Writes straight into `repo` (the transaction refuses the ref, but publishes the objects) a
/// commit whose root holds `levels` nested directories; returns it and its dirtrees, root first.
fn deep_commit(repo: &Repo, levels: usize) -> (Checksum, Vec<Checksum>) {
    let txn = repo.begin_transaction().unwrap();
    let meta = txn
        .write_metadata(ObjectType::DirMeta, None, &dir_meta().to_dirmeta_bytes())
        .unwrap();
    let mut trees = vec![
        txn.write_metadata(ObjectType::DirTree, None, &DirTree::default().to_bytes())
            .unwrap(),
    ];
    for _ in 0..levels {
        let dt = DirTree {
            files: vec![],
            dirs: vec![TreeDir {
                name: "d".into(),
                tree: *trees.last().unwrap(),
                meta,
            }],
        };
        trees.push(
            txn.write_metadata(ObjectType::DirTree, None, &dt.to_bytes())
                .unwrap(),
        );
    }
    let root = *trees.last().unwrap();
    let c = txn.write_commit(root, meta, &CommitSpec::new()).unwrap();
    txn.set_ref("deep", Some(c)).unwrap();
    match txn.commit() {
        Err(RepoError::TooDeep { limit: 256, .. }) => {}
        other => panic!("expected TooDeep, got {other:?}"),
    }
    std::fs::remove_file(repo.commitpartial_path(&c)).unwrap();
    trees.reverse();
    (c, trees)
}

#[test]
fn commit_layer_nested_too_deep_is_refused_naming_the_limit() {
    let d = scratch();
    let src = new_repo(d.path(), "src", RepoMode::Archive);
    // A shallow commit with the same root dirmeta, exported by us, is the template.
    let (shallow, _) = {
        let txn = src.begin_transaction().unwrap();
        let meta = txn
            .write_metadata(ObjectType::DirMeta, None, &dir_meta().to_dirmeta_bytes())
            .unwrap();
        let t = txn
            .write_metadata(ObjectType::DirTree, None, &DirTree::default().to_bytes())
            .unwrap();
        let c = txn.write_commit(t, meta, &CommitSpec::new()).unwrap();
        txn.set_ref("shallow", Some(c)).unwrap();
        txn.commit().unwrap();
        (c, t)
    };
    let mut es = entries(&export_bytes(&src, &shallow));
    let (deep, trees) = deep_commit(&src, 300);
    let at = es
        .iter()
        .position(|e| e.path.ends_with(b".commit"))
        .unwrap();
    let template = es[at].clone();
    let obj = |c: &Checksum, kind: TarObjectKind, ty: ObjectType| E {
        path: object_path(c, kind).into_bytes(),
        data: src.load_metadata_bytes(&ObjectName::new(*c, ty)).unwrap(),
        ..template.clone()
    };
    es[at] = obj(&deep, TarObjectKind::Commit, ObjectType::Commit);
    // The shallow commit's (empty) root dirtree is the deep chain's last one; add the others.
    for (i, t) in trees[..trees.len() - 1].iter().enumerate() {
        es.insert(
            at + 1 + i,
            obj(t, TarObjectKind::DirTree, ObjectType::DirTree),
        );
    }
    let layer = build(&es);

    let dst = new_repo(d.path(), "dst", RepoMode::BareUser);
    let txn = dst.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let e = s
        .import_commit_layer(&layer[..], Some("sha256:0123"))
        .and_then(|_| s.finish())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    let msg = ostree_errors::chain(&e);
    assert!(
        msg.contains("OSTREE_MAX_RECURSION") && msg.contains("limit of 256"),
        "{msg}"
    );
    drop(txn);
    assert!(dst.list_refs().unwrap().is_empty());
    assert!(
        !dst.has_object(&ObjectName::new(deep, ObjectType::Commit))
            .unwrap()
    );
    assert!(!dst.is_commit_partial(&deep));
}

#[test]
fn export_of_a_too_deep_commit_fails_without_deep_recursion() {
    let d = scratch();
    let dir = d.path().join("r");
    let repo = Repo::create(&dir, RepoMode::Archive).unwrap();
    let (deep, _) = deep_commit(&repo, 300);
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let repo = Repo::open(&dir).unwrap();
            let e = ExportPlan::new(&repo, deep).unwrap_err();
            let msg = ostree_errors::chain(&e);
            assert!(msg.contains("deeper than 256"), "{msg}");
        })
        .unwrap()
        .join()
        .unwrap();
}
