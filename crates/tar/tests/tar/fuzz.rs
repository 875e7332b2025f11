//! Random mutations of valid layers (truncation, byte flips, entry reshuffles): the importer
//! must return an error or succeed, never panic, and the repository must stay fsck-clean.

use std::collections::HashSet;

use ostree_repo::RepoMode;
use ostree_tar::{ExportPlan, ImportSession};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::hostile::{build, entries};
use crate::*;

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(Vec<(usize, u8)>),
    /// (op, a, b): 0 drop a, 1 duplicate a at b, 2 swap a and b.
    Shuffle(Vec<(u8, usize, usize)>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<usize>(), 1..=255u8), 1..8).prop_map(Mutation::Flip),
        prop::collection::vec((0..3u8, any::<usize>(), any::<usize>()), 1..5)
            .prop_map(Mutation::Shuffle),
    ]
}

fn apply(m: &Mutation, data: &[u8]) -> Vec<u8> {
    match m {
        Mutation::Truncate(n) => data[..n % data.len()].to_vec(),
        Mutation::Flip(flips) => {
            let mut d = data.to_vec();
            // Bias half the flips towards the interesting tail (objects, not skeleton dirs).
            for (i, (pos, x)) in flips.iter().enumerate() {
                let p = if i % 2 == 0 {
                    pos % d.len()
                } else {
                    d.len() / 2 + pos % (d.len() / 2)
                };
                d[p] ^= x;
            }
            d
        }
        Mutation::Shuffle(ops) => {
            let mut es = entries(data);
            for (op, a, b) in ops {
                let n = es.len();
                let (a, b) = (a % n, b % n);
                match op {
                    0 if n > 1 => {
                        es.remove(a);
                    }
                    1 => {
                        let e = es[a].clone();
                        es.insert(b, e);
                    }
                    _ => es.swap(a, b),
                }
            }
            build(&es)
        }
    }
}

#[test]
fn mutated_layers_never_panic() {
    let base = scratch();
    let src = make_source(base.path(), "bare", TreeKind::Reference);
    let plan = ExportPlan::new(&src.repo, src.commit).unwrap();
    let export = export_bytes(&src.repo, &src.commit);
    let all: Vec<_> = plan.content_objects().copied().collect();
    let chunked: HashSet<_> = all[..4].iter().copied().collect();
    let mut commit_layer = Vec::new();
    plan.write_commit_layer(&mut commit_layer, &chunked)
        .unwrap();
    let mut chunk = Vec::new();
    plan.write_chunk_layer(&mut chunk, &all[..4]).unwrap();
    let inputs = [export, commit_layer, chunk];
    let repo = new_repo(base.path(), "fuzz", RepoMode::BareUser);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let outcomes = [
        std::sync::atomic::AtomicU32::new(0),
        std::sync::atomic::AtomicU32::new(0),
    ];
    runner
        .run(&(0..3usize, mutation()), |(which, m)| {
            if std::time::Instant::now() > deadline {
                return Ok(());
            }
            let data = apply(&m, &inputs[which]);
            let txn = repo.begin_transaction().unwrap();
            let s = ImportSession::new(&txn);
            let r = if which == 2 {
                s.import_chunk_layer(&data[..], Some("sha256:ff")).map(drop)
            } else {
                s.import_commit_layer(&data[..], Some("sha256:ff"))
                    .map(drop)
            }
            .and_then(|()| s.finish().map(drop));
            outcomes[usize::from(r.is_err())].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Abort: nothing from a fuzz case is ever published.
            drop(txn);
            Ok(())
        })
        .unwrap();
    assert!(
        outcomes[1].load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no mutation was rejected: {outcomes:?}"
    );
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(repo.path());
}
