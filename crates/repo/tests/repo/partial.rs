//! `.commitpartial` markers live exactly as long as a partial commit's objects can.

use ostree_repo::format::{Checksum, Commit, ObjectName, ObjectType};
use ostree_repo::{Repo, RepoMode};

use crate::*;

fn commit_bytes(tree: Checksum, meta: Checksum) -> Vec<u8> {
    Commit {
        metadata: Default::default(),
        parent: None,
        related: vec![],
        subject: "partial".into(),
        body: String::new(),
        timestamp: 0,
        root_tree: tree,
        root_meta: meta,
    }
    .to_bytes()
}

#[test]
fn aborted_transactions_leave_no_stale_marker() {
    let d = scratch();
    let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
    let absent = Checksum::digest(b"no such tree");
    let bytes = commit_bytes(absent, absent);
    let c = Checksum::digest(&bytes);

    // Marked, then refused before anything was written: dropped and aborted alike.
    let txn = repo.begin_transaction().unwrap();
    txn.mark_partial(&c).unwrap();
    assert!(repo.is_commit_partial(&c));
    drop(txn);
    assert!(
        !repo.is_commit_partial(&c),
        "marker left by a dropped transaction"
    );
    let txn = repo.begin_transaction().unwrap();
    txn.mark_partial(&c).unwrap();
    txn.abort();
    assert!(
        !repo.is_commit_partial(&c),
        "marker left by an aborted transaction"
    );

    // The commit object staged but never published: the marker goes with the staging.
    let txn = repo.begin_transaction().unwrap();
    txn.mark_partial(&c).unwrap();
    txn.write_metadata(ObjectType::Commit, Some(c), &bytes)
        .unwrap();
    drop(txn);
    assert!(!repo.is_commit_partial(&c));
    assert!(
        !repo
            .has_object(&ObjectName::new(c, ObjectType::Commit))
            .unwrap()
    );

    // A commit that is only marked, and whose commit object never arrives, fails the commit
    // (incomplete): nothing of it is published, so no marker either.
    let txn = repo.begin_transaction().unwrap();
    txn.mark_partial(&c).unwrap();
    txn.commit().unwrap_err();
    assert!(
        !repo.is_commit_partial(&c),
        "marker left by a failed commit"
    );
}

#[test]
fn published_partial_commit_keeps_its_marker_until_complete() {
    let d = scratch();
    let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
    let absent = Checksum::digest(b"no such tree");
    let bytes = commit_bytes(absent, absent);
    let c = Checksum::digest(&bytes);

    // The commit object is published, its tree is not: the marker must stay (fsck skips it).
    let txn = repo.begin_transaction().unwrap();
    txn.mark_partial(&c).unwrap();
    txn.write_metadata(ObjectType::Commit, Some(c), &bytes)
        .unwrap();
    txn.commit().unwrap_err();
    assert!(
        repo.has_object(&ObjectName::new(c, ObjectType::Commit))
            .unwrap()
    );
    assert!(repo.is_commit_partial(&c));
    let report = repo.fsck(&ostree_repo::NoProgress, &NO_INTERRUPT).unwrap();
    assert_eq!(report.partial_commits, vec![c]);

    // A later transaction that finds the marker in place and then aborts leaves it alone.
    let txn = repo.begin_transaction().unwrap();
    txn.mark_partial(&c).unwrap();
    drop(txn);
    assert!(repo.is_commit_partial(&c));

    // A marker created by another (still running) transaction is not removed by an abort.
    let other = Checksum::digest(b"other commit");
    let a = repo.begin_transaction().unwrap();
    a.mark_partial(&other).unwrap();
    let b = repo.begin_transaction().unwrap();
    b.mark_partial(&other).unwrap();
    drop(b);
    assert!(repo.is_commit_partial(&other));
    drop(a);
    assert!(!repo.is_commit_partial(&other));
}
