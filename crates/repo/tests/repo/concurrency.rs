//! Sharing a repository with libostree: concurrent commits and the prune lock.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ostree_repo::{NoProgress, Repo, RepoMode, TreeOptions};
use test_support::tree;

use crate::*;

#[test]
fn our_transaction_and_ostree_commit_at_once() {
    let d = scratch();
    let a = d.path().join("a");
    let b = d.path().join("b");
    generate(&a, 11, true);
    generate(&b, 12, false);
    let repo = Repo::create(&d.path().join("r"), RepoMode::BareUser).unwrap();
    let cli = ostree();

    let txn = repo.begin_transaction().unwrap();
    let child = cli
        .command(&[
            "commit",
            &format!("--repo={}", repo.path().display()),
            "-b",
            "theirs",
            &format!("--tree=dir={}", b.display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tree_c, meta_c) = txn
        .write_directory(&a, &TreeOptions::new(), &NoProgress, &NO_INTERRUPT)
        .unwrap();
    let mut spec = ostree_repo::CommitSpec::new();
    spec.timestamp = Some(0);
    let c = txn.write_commit(tree_c, meta_c, &spec).unwrap();
    txn.set_ref("ours", Some(c)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ostree commit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    txn.commit().unwrap();
    assert_eq!(repo.resolve_rev("ours").unwrap(), c);
    assert!(repo.read_ref("theirs").unwrap().is_some());
    cli.fsck(repo.path()).unwrap().check().unwrap();
    assert!(repo.fsck(&NoProgress, &NO_INTERRUPT).unwrap().is_ok());
    // No staging directory or partial marker is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(repo.path().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        std::fs::read_dir(repo.path().join("state"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn prune_waits_for_our_transaction() {
    let d = scratch();
    let src = d.path().join("t");
    tree::reference_tree(&src).unwrap();
    let repo = Repo::create(&d.path().join("r"), RepoMode::BareUser).unwrap();
    native_commit(&repo, &src, "test", &TreeOptions::new());
    let cli = ostree();
    let txn = repo.begin_transaction().unwrap();
    let mut prune = cli.spawn_prune_refs_only(repo.path()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        prune.try_wait().unwrap().is_none(),
        "prune must wait for our shared lock"
    );
    let released = Instant::now();
    drop(txn);
    let status = prune.wait().unwrap();
    assert!(status.success());
    assert!(released.elapsed() < Duration::from_secs(20));
    cli.fsck(repo.path()).unwrap().check().unwrap();
}

#[test]
fn several_threads_write_in_one_transaction() {
    let d = scratch();
    let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
    let txn = repo.begin_transaction().unwrap();
    let meta = ostree_repo::format::FileMeta {
        uid: 0,
        gid: 0,
        mode: 0o100644,
        xattrs: Default::default(),
    };
    let sums: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let txn = &txn;
                let meta = &meta;
                s.spawn(move || {
                    (0..200)
                        .map(|i| {
                            // threads overlap on half their objects
                            let body = format!("object {}", (i + t * 100) % 500);
                            let mut r = body.as_bytes();
                            txn.write_content(
                                None,
                                meta,
                                ostree_repo::ContentSource::Regular {
                                    size: body.len() as u64,
                                    reader: &mut r,
                                },
                            )
                            .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let stats = txn.commit().unwrap();
    let unique: std::collections::BTreeSet<_> = sums.iter().collect();
    assert_eq!(unique.len(), 500);
    assert!(stats.content_written >= 500);
    for c in unique {
        assert_eq!(repo.read_content(c).unwrap().checksum().unwrap(), *c);
    }
}
