//! The ostree tar importer: the input (after one selector byte) is an uncompressed layer,
//! imported as a commit layer (even selector) or a chunk layer (odd) into an empty repository on
//! tmpfs, in a transaction that is then aborted, so every iteration sees the same empty store.
//!
//! Properties: no panic; a commit layer that imports is complete (`finish` succeeds) and, once
//! published in a fresh repository, exports to a `tar export` stream that imports again to the
//! same commit.
#![no_main]

use std::sync::LazyLock;
use std::sync::atomic::AtomicBool;

use libfuzzer_sys::fuzz_target;
use ostree_container_fuzz::Scratch;
use ostree_repo::format::{Checksum, ObjectName, ObjectType};
use ostree_repo::{Repo, RepoMode};
use ostree_tar::{ExportPlan, ImportSession};

static REPO: LazyLock<Scratch> = LazyLock::new(|| Scratch::new("tar", RepoMode::BareUser));
static NO_INTERRUPT: AtomicBool = AtomicBool::new(false);

/// Imports `layer` as a commit layer into `repo`; publishes it if `publish`.
fn import_commit(repo: &Repo, layer: &[u8], publish: bool) -> ostree_tar::Result<Checksum> {
    let txn = repo.begin_transaction().expect("begin transaction");
    let s = ImportSession::new(&txn);
    let c = s.import_commit_layer(layer, Some("sha256:00"))?;
    s.finish()?;
    assert!(
        txn.has_object(&ObjectName::new(c, ObjectType::Commit))
            .expect("has_object"),
        "imported commit {c} is not in the transaction"
    );
    if publish {
        txn.commit().expect("commit an imported layer");
    }
    Ok(c)
}

/// Export → import must give back the commit.
fn round_trip(layer: &[u8], commit: Checksum) {
    let a = Scratch::new("tar-rt", RepoMode::BareUser);
    let c = import_commit(&a.repo, layer, true).expect("a layer that imported once imports again");
    assert_eq!(c, commit, "the same layer imported to another commit");
    let mut export = Vec::new();
    ExportPlan::new(&a.repo, c)
        .and_then(|p| p.write_export(&mut export))
        .expect("export an imported commit");
    let b = Scratch::new("tar-rt2", RepoMode::BareUser);
    let again = ostree_tar::import_tar(&b.repo, &export[..], &NO_INTERRUPT)
        .expect("our own export of an imported commit imports");
    assert_eq!(again, commit, "export → import changed the commit");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, layer)) = data.split_first() else {
        return;
    };
    let repo = &REPO.repo;
    if selector % 2 == 0 {
        if let Ok(c) = import_commit(repo, layer, false) {
            round_trip(layer, c);
        }
    } else {
        let txn = repo.begin_transaction().expect("begin transaction");
        let s = ImportSession::new(&txn);
        if let Ok(outcome) = s.import_chunk_layer(layer, Some("sha256:01")) {
            let finished = s.finish();
            assert!(
                finished.is_ok(),
                "a lone chunk layer failed finish: {finished:?}"
            );
            assert_eq!(finished.map(|o| o.chunks.len()).ok(), Some(1));
            let _ = outcome;
        }
    }
});
