//! The layer pipeline of a pull: skopeo streams each missing layer; the fetcher decompresses it
//! on a blocking thread and hands the bytes, through a bounded channel ([`super::bridge`]), to an
//! importer thread that writes into one shared transaction: ostree layers through
//! [`ostree_tar::ImportSession`], derived layers as one commit each. No layer waits for
//! another's disk writes. Nothing is published (no ref; commits stay partial) until every layer
//! passed skopeo's digest check and the base commit is proven complete; then the layer refs, the
//! merge commit and the image ref are published together.
//!
//! The transaction lives on a blocking thread of the caller's runtime (`spawn_blocking`), so the
//! async side only drives the fetch and never blocks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use ostree_repo::Repo;
use ostree_repo::format::Checksum;
use ostree_tar::{ImportOptions, ImportSession, OciLayerOptions, OciLayerOutcome, TarError};

use super::bridge;
use super::error::StoreError;
use super::merge::{MergeMeta, write_merge_commit};
use super::state::canonical_json;
use super::{ImportProgress, LayerPlan, LayerRole, LayerState, PreparedImport, PullMode};
use super::{PullOptions, PullOutcome, refs};
use crate::fetch::{FetchReason, LayerProgress, LayerRequest, LayerState as FetchState};
use crate::unencapsulate::layout::OstreeLayout;

/// Annotation with the image's creation time.
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// One layer's bytes for the importer thread.
struct Job {
    /// Manifest index.
    index: usize,
    reader: bridge::ChannelReader,
    done: mpsc::SyncSender<Result<(), ()>>,
}

enum Msg {
    Job(Job),
    /// The fetch ended; `true` if skopeo verified every layer.
    Done(bool),
}

enum LayerDone {
    /// An ostree layer; `legacy` if it was imported in a session of its own that saw v0
    /// entries (the pull's session reports its layers at its finish).
    Ostree { legacy: bool },
    /// A derived layer's commit; `in_pull_txn` if it was written into the pull's transaction
    /// (its blob ref is then published with the image).
    Derived {
        outcome: OciLayerOutcome,
        in_pull_txn: bool,
    },
}

/// Everything the importer thread owns.
struct Work {
    repo_path: PathBuf,
    image: String,
    mode: PullMode,
    image_ref: Option<String>,
    /// What the image ref held when the pull was prepared.
    previous_merge: Option<Checksum>,
    layers: Vec<LayerState>,
    layout: Option<OstreeLayout>,
    merge: MergeMeta,
    oci: OciLayerOptions,
    interrupt: Arc<AtomicBool>,
    progress: Option<Arc<dyn ImportProgress>>,
    /// Counters of the layers being fetched, by manifest index.
    progress_of: Vec<Option<Arc<LayerProgress>>>,
    /// `ostree-remote-*`: the commit must verify before anything is published, so every layer
    /// goes into the one transaction.
    verifier: Option<Arc<super::RemoteVerifier>>,
    /// `PullOptions::sepolicy_commit`, resolved.
    sepolicy_commit: Option<Checksum>,
    /// One ceiling on cached xattr sets for every session of the pull (the pull's own and each
    /// chunk layer's), which import concurrently.
    memory_budget: Arc<ostree_tar::MemoryBudget>,
}

/// What the importer published.
struct Published {
    merge_commit: Option<Checksum>,
    /// Some ostree layer used v0 tar entries.
    legacy_format: bool,
    filtered: Vec<(String, BTreeMap<String, u32>)>,
}

/// Why the fetcher's consumer of one layer failed (the importer's own error is reported apart).
#[derive(Debug, thiserror::Error)]
enum ConsumerError {
    #[error("the importer thread is gone")]
    ImporterGone,
    #[error("layer {0} was rejected by the importer")]
    Rejected(usize),
    #[error(transparent)]
    Pump(#[from] bridge::PumpError),
}

/// Why the importer thread gave up.
enum ImporterFailure {
    /// A layer was rejected (the first by manifest index).
    Layer(usize, Box<TarError>),
    /// The fetch failed; its error is the caller's to report.
    FetchFailed,
    Other(StoreError),
    /// The commit's signature was refused when its layer arrived.
    Refused(StoreError),
}

fn created_timestamp(p: &PreparedImport) -> u64 {
    let from_manifest = p
        .manifest
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CREATED))
        .and_then(|s| super::time::parse_rfc3339(s));
    from_manifest
        .or_else(|| {
            p.config
                .created()
                .as_deref()
                .and_then(super::time::parse_rfc3339)
        })
        .unwrap_or(0)
}

pub(super) async fn run(
    repo: &Repo,
    p: PreparedImport,
    opts: &PullOptions,
) -> Result<PullOutcome, StoreError> {
    let image = p.imgref.to_string();
    let bad_json = |e: serde_json::Error| StoreError::BadImage {
        image: image.clone(),
        reason: format!("cannot serialise image metadata: {e}"),
    };
    let merge = MergeMeta {
        manifest_digest: p.manifest_digest.clone(),
        manifest_json: canonical_json(&p.manifest).map_err(bad_json)?,
        config_json: canonical_json(&p.config).map_err(bad_json)?,
        filtered: BTreeMap::new(),
        timestamp: created_timestamp(&p),
    };
    let image_ref = match &opts.mode {
        PullMode::Image => Some(refs::image_ref(&p.imgref.imgref)?),
        PullMode::BaseCommit { .. } => None,
    };
    let all_requests = p.fetcher.layer_requests(&p.manifest, &p.config)?;
    let mut requests: Vec<LayerRequest> = Vec::new();
    let mut manifest_index: Vec<usize> = Vec::new();
    let mut plans = Vec::new();
    for (l, r) in p.layers.iter().zip(all_requests) {
        if l.present.is_some() {
            continue;
        }
        plans.push(LayerPlan {
            index: l.index,
            digest: l.digest.clone(),
            size: l.size,
            role: l.role,
            progress: r.progress(),
        });
        manifest_index.push(l.index);
        requests.push(r);
    }
    let present = p.layers.len() - requests.len();
    let bytes_fetched = plans.iter().map(|pl| pl.size).sum();
    if let Some(pr) = &opts.progress {
        pr.layers(present, &plans);
    }
    let interrupt = opts.interrupt.clone().unwrap_or_default();
    let mut oci = OciLayerOptions::default();
    oci.var_rule = opts.var_rule;
    oci.allow_non_usr = opts.allow_non_usr || p.layout.is_none();
    let mut progress_of = vec![None; p.layers.len()];
    for pl in &plans {
        if let Some(slot) = progress_of.get_mut(pl.index) {
            *slot = Some(Arc::clone(&pl.progress));
        }
    }
    let sepolicy_commit = match &opts.sepolicy_commit {
        Some(rev) => Some(repo.resolve_rev(rev).map_err(|source| StoreError::Repo {
            image: image.clone(),
            source: Box::new(source),
        })?),
        None => None,
    };
    let work = Work {
        sepolicy_commit,
        progress_of,
        verifier: p.verifier.clone(),
        repo_path: repo.path().to_path_buf(),
        image: image.clone(),
        mode: opts.mode.clone(),
        image_ref,
        previous_merge: p.previous.as_ref().map(|s| s.merge_commit),
        layers: p.layers.clone(),
        layout: p.layout.clone(),
        merge,
        oci,
        interrupt: Arc::clone(&interrupt),
        progress: opts.progress.clone(),
        memory_budget: Arc::new(ostree_tar::MemoryBudget::new(
            ostree_tar::ImportLimits::default().max_import_memory,
        )),
    };

    let (tx, rx) = mpsc::channel::<Msg>();
    let worker = tokio::task::spawn_blocking(move || importer(work, rx));
    let consumer = {
        let tx = tx.clone();
        let interrupt = Arc::clone(&interrupt);
        move |req: usize, src: &mut dyn std::io::Read| -> Result<(), ConsumerError> {
            let index = manifest_index.get(req).copied().unwrap_or(req);
            let (w, reader) = bridge::channel();
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            tx.send(Msg::Job(Job {
                index,
                reader,
                done: done_tx,
            }))
            .map_err(|_| ConsumerError::ImporterGone)?;
            let pumped = bridge::pump(src, &w, &interrupt);
            drop(w);
            let imported = done_rx.recv().map_err(|_| ConsumerError::ImporterGone)?;
            pumped?;
            imported.map_err(|()| ConsumerError::Rejected(index))
        }
    };
    // Signed images: the commit layer alone first, verified before the chunks are fetched.
    let commit_first = p.verifier.is_some()
        && p.layers
            .first()
            .is_some_and(|l| l.present.is_none() && l.role == LayerRole::Commit);
    let fetched =
        super::verify::fetch_commit_layer_first(&p.fetcher, &requests, commit_first, consumer)
            .await;
    let _ = tx.send(Msg::Done(fetched.is_ok()));
    drop(tx);
    let published = worker
        .await
        .map_err(|_| StoreError::Internal("importer thread panicked".into()))?;
    if interrupt.load(Ordering::Relaxed) {
        return Err(StoreError::Interrupted { image });
    }
    let published = match (fetched, published) {
        (_, Err(ImporterFailure::Refused(e))) => return Err(e),
        (Ok(_), Ok(pb)) => pb,
        (Err(e), Err(ImporterFailure::Layer(index, source)))
            if e.reason() == FetchReason::Consumer =>
        {
            return Err(layer_error(&image, &p.layers, index, source));
        }
        (Err(e), _) => return Err(e.into()),
        (Ok(_), Err(ImporterFailure::Layer(index, source))) => {
            return Err(layer_error(&image, &p.layers, index, source));
        }
        (Ok(_), Err(ImporterFailure::Other(e))) => return Err(e),
        (Ok(_), Err(ImporterFailure::FetchFailed)) => {
            return Err(StoreError::Internal(
                "importer saw a failed fetch that succeeded".into(),
            ));
        }
    };
    p.fetcher.finish().await?;
    Ok(PullOutcome {
        base_commit: p.layout.as_ref().map(|l| l.commit),
        merge_commit: published.merge_commit,
        manifest_digest: p.manifest_digest,
        layers_fetched: requests.len(),
        layers_present: present,
        bytes_fetched,
        filtered: published.filtered,
        already_present: false,
        attempts: 1,
        deprecated_warning: published
            .legacy_format
            .then(|| super::LEGACY_TAR_WARNING.to_string()),
    })
}

/// The entries a derived layer's path rules dropped, as its layer commit records them.
fn layer_filtered(
    txn: &ostree_repo::Transaction<'_>,
    commit: &Checksum,
) -> Result<BTreeMap<String, u32>, ostree_repo::RepoError> {
    use ostree_repo::format::gvariant::Value;
    let c = super::merge::load_commit(txn, commit)?;
    let mut out = BTreeMap::new();
    if let Some(Value::Array(_, entries)) = c.metadata.get(ostree_tar::FILTERED_KEY) {
        for e in entries {
            if let Value::DictEntry(k, v) = e
                && let (Value::Str(k), Value::U32(n)) = (k.as_ref(), v.as_ref())
            {
                out.insert(k.clone(), *n);
            }
        }
    }
    Ok(out)
}

fn layer_error(
    image: &str,
    layers: &[LayerState],
    index: usize,
    source: Box<TarError>,
) -> StoreError {
    StoreError::Import {
        image: image.to_string(),
        layer: layers
            .get(index)
            .map(|l| l.digest.clone())
            .unwrap_or_default(),
        source,
    }
}

/// What a layer's thread borrows from the importer.
#[derive(Clone, Copy)]
struct LayerCtx<'a, 's, 't, 'r> {
    repo: &'a Repo,
    /// The pull's transaction (the one `session` writes into).
    txn: &'a ostree_repo::Transaction<'r>,
    /// This pull fetches one layer only: it goes into the pull's transaction, since a
    /// publication of its own would keep nothing a failed pull could resume from, and costs a
    /// second round of filesystem syncs.
    single_fetch: bool,
    session: &'a ImportSession<'s, 't, 'r>,
    work: &'a Work,
    fetch_over: &'a AtomicBool,
}

impl LayerCtx<'_, '_, '_, '_> {
    /// Imports one layer. The commit layer goes into the pull's transaction (its commit is
    /// published with the image); chunk and derived layers each get a transaction of their own,
    /// published with their blob ref as soon as skopeo has verified the layer, so that a pull
    /// that fails later (network, SIGKILL, power cut) resumes without fetching them again —
    /// unless the pull fetches this layer alone (then it joins the pull's transaction).
    fn run(self, job: Job) -> Result<LayerDone, TarError> {
        let Job {
            index,
            mut reader,
            done,
        } = job;
        let Some(layer) = self.work.layers.get(index) else {
            let _ = done.send(Err(()));
            return Err(TarError::Internal(format!("no layer {index}")));
        };
        let digest = Some(layer.digest.as_str());
        let repo_err = |source| TarError::Repo {
            at: ostree_tar::Location::layer(&layer.digest),
            source: Box::new(source),
        };
        let started = std::time::Instant::now();
        let (r, own) = match layer.role {
            LayerRole::Commit => (
                self.session
                    .import_commit_layer(&mut reader, digest)
                    .and_then(|c| self.verify_commit(c))
                    .map(|()| LayerDone::Ostree { legacy: false }),
                None,
            ),
            // Signed images: nothing is published before the commit is verified.
            LayerRole::Chunk if self.work.verifier.is_some() || self.single_fetch => (
                self.session
                    .import_chunk_layer(&mut reader, digest)
                    .map(|_| LayerDone::Ostree { legacy: false }),
                None,
            ),
            LayerRole::Derived if self.single_fetch => (
                self.import_derived(self.txn, layer, &mut reader)
                    .map(|outcome| LayerDone::Derived {
                        outcome,
                        in_pull_txn: true,
                    }),
                None,
            ),
            LayerRole::Chunk | LayerRole::Derived => match self.repo.begin_transaction() {
                Err(e) => (Err(repo_err(e)), None),
                Ok(txn) => {
                    let r = self.import_own(&txn, layer, &mut reader);
                    (r, Some(txn))
                }
            },
        };
        // Dropping the reader tells the pump to stop if we failed early.
        drop(reader);
        let _ = done.send(if r.is_ok() { Ok(()) } else { Err(()) });
        let r = r?;
        tracing::debug!(layer = %layer.digest, elapsed = ?started.elapsed(), "layer imported");
        if let Some(txn) = own {
            if !self.wait_verified(index) {
                // Not verified by skopeo: discard (the transaction aborts on drop).
                return Err(TarError::InvalidArgument(format!(
                    "layer {} was not verified",
                    layer.digest
                )));
            }
            if let LayerDone::Derived { outcome: o, .. } = &r {
                txn.set_ref(&layer.ref_name, Some(o.commit))
                    .map_err(repo_err)?;
            }
            txn.commit().map_err(repo_err)?;
            tracing::debug!(layer = %layer.digest, elapsed = ?started.elapsed(), "layer published");
        }
        if let Some(p) = &self.work.progress {
            p.layer_done(index);
        }
        Ok(r)
    }

    fn import_own(
        &self,
        txn: &ostree_repo::Transaction<'_>,
        layer: &LayerState,
        reader: &mut bridge::ChannelReader,
    ) -> Result<LayerDone, TarError> {
        match layer.role {
            LayerRole::Derived => {
                self.import_derived(txn, layer, reader)
                    .map(|outcome| LayerDone::Derived {
                        outcome,
                        in_pull_txn: false,
                    })
            }
            _ => {
                // A chunk published on its own is a plain object set: its membership in the
                // commit cannot be checked here (the session's check also demands the whole
                // commit be complete, which it is not while other chunks are still arriving, e.g.
                // in a resumed pull where the commit object is already present). The commit's
                // completeness check at the end decides; extra verified objects are garbage that
                // prune removes.
                let mut o = ImportOptions::default();
                o.memory_budget = Some(Arc::clone(&self.work.memory_budget));
                let s = ImportSession::with_options(txn, o).with_interrupt(&self.work.interrupt);
                s.import_chunk_layer(reader, Some(&layer.digest))?;
                let o = s.finish()?;
                Ok(LayerDone::Ostree {
                    legacy: o.legacy_format,
                })
            }
        }
    }

    fn import_derived(
        &self,
        txn: &ostree_repo::Transaction<'_>,
        layer: &LayerState,
        reader: &mut bridge::ChannelReader,
    ) -> Result<OciLayerOutcome, TarError> {
        ostree_tar::import_oci_layer(
            txn,
            reader,
            &layer.digest,
            &self.work.oci,
            Some(&self.work.interrupt),
        )
    }

    /// `ostree-remote-*`: verifies the commit its layer just imported; a refusal fails the layer
    /// (stopping the fetch) and is reported by the importer.
    fn verify_commit(&self, commit: Checksum) -> Result<(), TarError> {
        match &self.work.verifier {
            Some(v) if !v.verify_commit_layer(&self.work.image, self.txn, &commit) => Err(
                TarError::InvalidArgument(format!("commit {commit}: signature refused")),
            ),
            _ => Ok(()),
        }
    }

    /// Waits until skopeo has verified layer `index` (digest, size; and our diff_id check).
    fn wait_verified(&self, index: usize) -> bool {
        let Some(p) = self.work.progress_of.get(index).and_then(Option::as_ref) else {
            return false;
        };
        loop {
            match p.state() {
                FetchState::Done => return true,
                FetchState::Failed => return false,
                _ if self.fetch_over.load(Ordering::Relaxed) => {
                    return p.state() == FetchState::Done;
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
    }
}

/// The importer thread: owns the transaction, imports each layer on a scoped thread of its own,
/// and publishes once the fetch is verified.
fn importer(work: Work, rx: mpsc::Receiver<Msg>) -> Result<Published, ImporterFailure> {
    let other = ImporterFailure::Other;
    let repo_err = |source| {
        ImporterFailure::Other(StoreError::Repo {
            image: work.image.clone(),
            source: Box::new(source),
        })
    };
    let repo = Repo::open(&work.repo_path).map_err(repo_err)?;
    let txn = repo.begin_transaction().map_err(repo_err)?;
    let mut import_opts = ImportOptions::default();
    import_opts.memory_budget = Some(Arc::clone(&work.memory_budget));
    import_opts.expected_commit = work.layout.as_ref().map(|l| l.commit);
    // Verified before publication (ostree-remote-*): its signatures are the authority.
    import_opts.replace_detached_metadata = work.verifier.is_some();
    let session = ImportSession::with_options(&txn, import_opts).with_interrupt(&work.interrupt);
    let results: Mutex<Vec<(usize, Result<LayerDone, TarError>)>> = Mutex::default();
    let single_fetch = work.progress_of.iter().flatten().count() == 1;
    let fetch_over = AtomicBool::new(false);
    let verified = std::thread::scope(|scope| {
        loop {
            match rx.recv() {
                Ok(Msg::Job(job)) => {
                    let ctx = LayerCtx {
                        repo: &repo,
                        txn: &txn,
                        single_fetch,
                        session: &session,
                        work: &work,
                        fetch_over: &fetch_over,
                    };
                    let results = &results;
                    scope.spawn(move || {
                        let index = job.index;
                        let r = ctx.run(job);
                        results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((index, r));
                    });
                }
                Ok(Msg::Done(ok)) => {
                    fetch_over.store(true, Ordering::Relaxed);
                    break ok;
                }
                Err(_) => {
                    fetch_over.store(true, Ordering::Relaxed);
                    break false;
                }
            }
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut derived: BTreeMap<usize, OciLayerOutcome> = BTreeMap::new();
    let mut ostree_fetched = false;
    let mut legacy_format = false;
    let mut failure = None;
    for (index, r) in results {
        match r {
            Ok(LayerDone::Ostree { legacy }) => {
                ostree_fetched = true;
                legacy_format |= legacy;
            }
            Ok(LayerDone::Derived {
                outcome,
                in_pull_txn,
            }) => {
                if in_pull_txn && let Some(l) = work.layers.get(index) {
                    txn.set_ref(&l.ref_name, Some(outcome.commit))
                        .map_err(repo_err)?;
                }
                derived.insert(index, outcome);
            }
            Err(e) => {
                if failure.is_none() {
                    failure = Some((index, e));
                }
            }
        }
    }
    if let Some(e) = work.verifier.as_ref().and_then(|v| v.take_refusal()) {
        return Err(ImporterFailure::Refused(e));
    }
    if let Some((index, e)) = failure {
        return Err(ImporterFailure::Layer(index, Box::new(e)));
    }
    if !verified {
        return Err(ImporterFailure::FetchFailed);
    }
    // Every layer is written: the disk works on them while the checks and the merge below run.
    txn.start_writeback();
    let image = work.image.clone();
    let verify = |source| {
        other(StoreError::Verify {
            image: image.clone(),
            source: Box::new(source),
        })
    };
    let base = work.layout.as_ref().map(|l| l.commit);
    if let (Some(v), Some(b)) = (&work.verifier, base)
        && !v.verified_early()
    {
        v.verify(&work.image, |n| txn.load_metadata_bytes(n), &b)
            .map_err(other)?;
    }
    if ostree_fetched {
        let outcome = session.finish().map_err(verify)?;
        legacy_format |= outcome.legacy_format;
        if let (Some(imported), Some(label)) = (outcome.commit, base)
            && imported != label
        {
            return Err(other(StoreError::CommitMismatch {
                image,
                label,
                imported,
            }));
        }
    } else {
        drop(session);
    }
    // The base: proven by `session.finish` when its layers were fetched; otherwise present by
    // its blob ref, which is only ever written for a complete commit (and so not partial).
    if let Some(b) = base
        && !ostree_fetched
        && (txn.repo().is_commit_partial(&b)
            || !txn
                .has_object(&ostree_repo::format::ObjectName::new(
                    b,
                    ostree_repo::format::ObjectType::Commit,
                ))
                .map_err(repo_err)?)
    {
        let missing = txn.find_missing(&b).map_err(repo_err)?;
        if let Some(first) = missing.first() {
            return Err(verify(TarError::Incomplete {
                commit: b,
                count: missing.len(),
                first: *first,
            }));
        }
    }
    // Layers found by diff_id under another digest get a ref for this digest too.
    for l in work.layers.iter().filter(|l| l.reused_by_diff_id) {
        if let Some(c) = l.present {
            txn.set_ref(&l.ref_name, Some(c)).map_err(repo_err)?;
        }
    }
    let policy = super::selinux::layer_policy(&txn, base, work.sepolicy_commit)
        .map_err(|e| repo_err(super::selinux::selinux_to_repo(e)))?;
    let mut filtered = Vec::new();
    let mut layer_commits = Vec::new();
    for l in work.layers.iter().filter(|l| l.role == LayerRole::Derived) {
        let commit = match (&l.present, derived.get(&l.index)) {
            (Some(c), _) => *c,
            (None, Some(o)) => o.commit,
            (None, None) => {
                return Err(other(StoreError::Internal(format!(
                    "derived layer {} was neither present nor imported",
                    l.digest
                ))));
            }
        };
        // From the layer commit, so that a layer imported by an earlier (interrupted) pull is
        // reported as one fetched now: the merge commit does not depend on the pull's history.
        let counts = layer_filtered(&txn, &commit).map_err(repo_err)?;
        if !counts.is_empty() {
            filtered.push((l.digest.clone(), counts));
        }
        let commit = match &policy {
            Some(p) => {
                let labelled = super::selinux::label_layer(&txn, &commit, p).map_err(repo_err)?;
                if labelled != commit {
                    txn.set_ref(&l.ref_name, Some(labelled)).map_err(repo_err)?;
                }
                labelled
            }
            None => commit,
        };
        layer_commits.push(commit);
    }
    let merge_commit = match (&work.mode, &work.image_ref) {
        (PullMode::Image, Some(image_ref)) => {
            let mut meta = work.merge.clone();
            meta.filtered = filtered.iter().cloned().collect();
            let layers_policy = policy.as_ref().and_then(|p| p.id());
            let relabel = |t: &ostree_repo::Transaction<'_>,
                           root: &mut ostree_repo::MutableTree| {
                super::selinux::relabel_merge(t, root, layers_policy)
            };
            let hook: Option<super::merge::TreeHook<'_>> = if layer_commits.is_empty() {
                None
            } else {
                Some(&relabel)
            };
            let started = std::time::Instant::now();
            let m =
                write_merge_commit(&txn, base, &layer_commits, &meta, hook).map_err(repo_err)?;
            tracing::debug!(commit = %m, elapsed = ?started.elapsed(), "merge commit written");
            // Composed from the complete base and layer commits: no second walk of the base.
            txn.assume_complete_by_construction(&m);
            // Compare-and-swap: a concurrent pull that moved the image ref wins; we fail.
            txn.set_ref_expecting(image_ref, work.previous_merge, Some(m))
                .map_err(repo_err)?;
            Some(m)
        }
        (PullMode::BaseCommit { write_ref }, _) => {
            if let (Some(r), Some(b)) = (write_ref, base) {
                txn.set_ref(r, Some(b)).map_err(repo_err)?;
            }
            None
        }
        (PullMode::Image, None) => None,
    };
    let started = std::time::Instant::now();
    txn.commit().map_err(repo_err)?;
    tracing::debug!(elapsed = ?started.elapsed(), "image published");
    Ok(Published {
        merge_commit,
        legacy_format,
        filtered,
    })
}
