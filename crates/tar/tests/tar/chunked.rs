//! Commit layer + chunk layers: any order, concurrently, idempotent re-import, object-set commit.

use std::collections::HashSet;

use ostree_repo::RepoMode;
use ostree_repo::format::Checksum;
use ostree_tar::{ExportPlan, ImportOptions, ImportSession, blob_ref};
use test_support::ostree_cli::list_object_files;

use crate::*;

/// A layer's bytes and its (uncompressed) digest.
struct Layer {
    data: Vec<u8>,
    digest: String,
}

fn layer(data: Vec<u8>) -> Layer {
    let digest = format!("sha256:{}", Checksum::digest(&data));
    Layer { data, digest }
}

/// Splits the commit's content round-robin into `n` chunks; returns commit layer and chunks.
fn split(plan: &ExportPlan<'_>, n: usize) -> (Layer, Vec<Layer>) {
    let objs: Vec<Checksum> = plan.content_objects().copied().collect();
    let mut parts = vec![Vec::new(); n];
    for (i, c) in objs.iter().enumerate() {
        parts[i % n].push(*c);
    }
    let chunked: HashSet<Checksum> = objs.iter().copied().collect();
    let mut commit = Vec::new();
    plan.write_commit_layer(&mut commit, &chunked).unwrap();
    let chunks = parts
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            plan.write_chunk_layer(&mut out, p).unwrap();
            layer(out)
        })
        .collect();
    (layer(commit), chunks)
}

/// Imports with the commit layer at position `commit_pos` among the chunks (sequentially), or
/// everything concurrently if `commit_pos` is None.
fn import_all(
    repo: &Repo,
    commit: &Layer,
    chunks: &[Layer],
    commit_pos: Option<usize>,
) -> Checksum {
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    match commit_pos {
        Some(pos) => {
            for (i, ch) in chunks.iter().enumerate() {
                if i == pos {
                    s.import_commit_layer(&commit.data[..], Some(&commit.digest))
                        .unwrap();
                }
                s.import_chunk_layer(&ch.data[..], Some(&ch.digest))
                    .unwrap();
            }
            if pos >= chunks.len() {
                s.import_commit_layer(&commit.data[..], Some(&commit.digest))
                    .unwrap();
            }
        }
        None => std::thread::scope(|sc| {
            let s = &s;
            sc.spawn(move || {
                s.import_commit_layer(&commit.data[..], Some(&commit.digest))
                    .unwrap()
            });
            for ch in chunks {
                sc.spawn(move || {
                    s.import_chunk_layer(&ch.data[..], Some(&ch.digest))
                        .unwrap()
                });
            }
        }),
    }
    let out = s.finish().unwrap();
    assert_eq!(out.chunks.len(), chunks.len());
    txn.commit().unwrap();
    out.commit.unwrap()
}

#[test]
fn chunked_layers_in_any_order_and_concurrently() {
    let base = scratch();
    let src = make_source(base.path(), "bare", TreeKind::Generated);
    let plan = ExportPlan::new(&src.repo, src.commit).unwrap();
    let total = plan.content_objects().count();
    assert!(total > 20, "need more than 20 objects, have {total}");
    for n in [1, 2, 20] {
        let (commit, chunks) = split(&plan, n);
        for (k, pos) in [Some(0), Some(n), Some(n / 2), None]
            .into_iter()
            .enumerate()
        {
            let name = format!("r{n}-{k}");
            let repo = new_repo(base.path(), &name, RepoMode::BareUser);
            let c = import_all(&repo, &commit, &chunks, pos);
            assert_eq!(c, src.commit, "{name}");
            fsck_ok(repo.path());
            let refs = repo.list_refs().unwrap();
            assert_eq!(
                refs.get(&blob_ref(&commit.digest).unwrap()),
                Some(&src.commit)
            );
            for ch in &chunks {
                let r = refs.get(&blob_ref(&ch.digest).unwrap()).copied().unwrap();
                assert!(repo.find_missing(&r).unwrap().is_empty());
            }
            assert_eq!(refs.len(), n + 1);
            if k == 0 {
                // Re-importing the chunk layers writes nothing.
                let before = list_object_files(repo.path()).unwrap();
                let txn = repo.begin_transaction().unwrap();
                let mut opts = ImportOptions::default();
                opts.expected_commit = Some(c);
                let s = ImportSession::with_options(&txn, opts);
                for ch in &chunks {
                    s.import_chunk_layer(&ch.data[..], Some(&ch.digest))
                        .unwrap();
                }
                s.finish().unwrap();
                let stats = txn.commit().unwrap();
                assert_eq!(stats.content_written, 0, "{stats:?}");
                assert_eq!(stats.metadata_written, 0, "{stats:?}");
                assert_eq!(before, list_object_files(repo.path()).unwrap());
            }
        }
    }
}

#[test]
fn object_set_commit_matches_test_vector() {
    let base = scratch();
    let src = make_source(base.path(), "bare", TreeKind::Reference);
    let plan = ExportPlan::new(&src.repo, src.commit).unwrap();
    let objs: Vec<Checksum> = plan.content_objects().copied().collect();
    assert_eq!(objs.len(), 7);
    let (commit, chunks) = split(&plan, 1);
    let repo = new_repo(base.path(), "d", RepoMode::Archive);
    import_all(&repo, &commit, &chunks, Some(1));
    let r = blob_ref(&chunks[0].digest).unwrap();
    assert!(r.starts_with("ostree/container/blob/sha256_3A_"));
    assert_eq!(
        repo.list_refs().unwrap()[&r].to_hex(),
        "869857a20516cc3a5b8501ddafc5bb6357294b17f1c4760fcab7574655dc5af4"
    );
    assert_eq!(
        repo.load_commit(&repo.list_refs().unwrap()[&r])
            .unwrap()
            .root_tree
            .to_hex(),
        "df85988d89be4672c068f216cfe8b2ef404350e74542c4218178e3f6b38e9b99"
    );
    fsck_ok(repo.path());
}
