//! The layered-image store (container-image-format §3, §8): pull ostree images, derived images
//! (ostree base + ordinary container layers) and non-ostree images into a repository, as the
//! reference's `ImageImporter` does, with the same refs and merge-commit metadata.
//!
//! A pull is [`prepare`] (manifest, config, which layers are already here) then [`import`]
//! (fetch what is missing, concurrently; ostree layers through the ostree-tar importer, derived
//! layers into one commit each; then the merge commit, composed from trees, and the image ref,
//! all published together). Both are async and never build a runtime; [`pull_blocking`] and
//! `unencapsulate` are the blocking wrappers.

mod bridge;
pub mod diff;
pub mod error;
pub mod gc;
pub mod merge;
mod pipeline;
pub mod refs;
mod selinux;
pub mod state;
mod time;
mod verify;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use containers_image_proxy::oci_spec::image::{ImageConfiguration, ImageManifest};
use ostree_repo::Repo;
use ostree_repo::format::Checksum;

pub use self::error::{ErrorKind, StoreError};
pub use self::gc::gc_image_layers;
pub use self::state::{
    CachedUpdate, HistoryEntry, ImageState, clear_cached_update, image_history, list_images,
    query_image, remove_images,
};
pub use ostree_tar::VarRule;

use self::verify::RemoteVerifier;
use crate::fetch::{FetchConfig, ImageFetcher, LayerProgress};
use crate::imgref::{OstreeImageReference, SignatureSource};
use crate::unencapsulate::layout::{LayoutError, OstreeLayout, parse_layout};

/// What a layer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerRole {
    /// Layer 0 of an ostree image: the commit, its metadata and unchunked content.
    Commit,
    /// A chunk of the commit's content objects.
    Chunk,
    /// An ordinary container layer (derived images, non-ostree images).
    Derived,
}

impl LayerRole {
    /// Lower-case name, as in progress output.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerRole::Commit => "commit",
            LayerRole::Chunk => "chunk",
            LayerRole::Derived => "derived",
        }
    }
}

/// One layer about to be fetched, with live counters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LayerPlan {
    /// Position in the manifest.
    pub index: usize,
    /// Blob digest.
    pub digest: String,
    /// Blob size (compressed).
    pub size: u64,
    /// Role.
    pub role: LayerRole,
    /// Bytes fetched so far (poll it; updates are cheap atomics).
    pub progress: Arc<LayerProgress>,
}

/// Observer of a pull. Library code never prints; the CLI renders these.
pub trait ImportProgress: Send + Sync {
    /// The image was resolved; `commit` is its ostree commit, if it is an ostree image.
    fn image(&self, _digest: &str, _commit: Option<&Checksum>) {}
    /// How many layers are already present and which are about to be fetched.
    fn layers(&self, _present: usize, _layers: &[LayerPlan]) {}
    /// A layer (by manifest index) is fetched, verified and imported.
    fn layer_done(&self, _index: usize) {}
    /// A pull is prepared and about to fetch (the CLI prints the manifest diff and layer
    /// status here, as the reference does).
    fn prepared(&self, _prepared: &PreparedImport) {}
    /// A transient failure; the pull is tried again after `delay` (attempt counts from 1).
    fn retrying(&self, _attempt: u32, _delay: std::time::Duration, _error: &StoreError) {}
}

/// Options of a pull.
#[non_exhaustive]
pub struct PullOptions {
    /// How to reach the image (auth, TLS, concurrency, timeouts).
    pub fetch: FetchConfig,
    /// Progress observer.
    pub progress: Option<Arc<dyn ImportProgress>>,
    /// Raised to stop; the pull then fails with [`ErrorKind::Interrupted`] and publishes nothing.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Where `var/` of derived layers goes (default: kept, as for ostree >= 2024.3).
    pub var_rule: VarRule,
    /// Keep top-level directories other than `usr`, `etc`, `var` in derived layers of ostree
    /// images (always kept for non-ostree images).
    pub allow_non_usr: bool,
    /// Skip the garbage collection of unused layer refs after a store pull.
    pub disable_gc: bool,
    /// Store pulls that fail with a transient error (network, timeout, skopeo gone or an
    /// unclassified skopeo error such as a registry 5xx) are retried this many times; layers
    /// verified before the failure are kept, so a retry fetches only the rest.
    pub network_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: std::time::Duration,
    /// Where `ostree-remote-*` verification finds system remotes and keys (default: libostree's
    /// locations, `/etc/ostree/remotes.d`, `/usr/share/ostree/trusted.gpg.d`, ...).
    pub signature_paths: Option<ostree_sign::SystemPaths>,
    /// Label derived layers with the SELinux policy of this commit (a revision) when the image
    /// has no ostree base (the reference's `set_sepolicy_commit`, e.g. the booted deployment).
    pub sepolicy_commit: Option<String>,
    pub(crate) mode: PullMode,
}

/// What a pull produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullMode {
    /// The store: merge commit and image ref.
    Image,
    /// `unencapsulate`: the base commit only, optionally under this ref; derived images refused.
    BaseCommit { write_ref: Option<String> },
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            fetch: FetchConfig::default(),
            progress: None,
            interrupt: None,
            var_rule: VarRule::default(),
            allow_non_usr: false,
            disable_gc: false,
            network_retries: 3,
            sepolicy_commit: None,
            retry_backoff: std::time::Duration::from_secs(1),
            signature_paths: None,
            mode: PullMode::Image,
        }
    }
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("var_rule", &self.var_rule)
            .field("allow_non_usr", &self.allow_non_usr)
            .finish_non_exhaustive()
    }
}

impl PullOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Each layer of an image as prepare found it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LayerState {
    /// Position in the manifest.
    pub index: usize,
    /// The manifest's blob digest.
    pub digest: String,
    /// Compressed size.
    pub size: u64,
    /// The config's diff_id.
    pub diff_id: String,
    /// Role.
    pub role: LayerRole,
    /// `ostree/container/blob/...` of this layer.
    pub ref_name: String,
    /// The commit the layer ref holds, if the layer is already here.
    pub present: Option<Checksum>,
    /// Present because another stored layer has the same diff_id (its ref is written for this
    /// digest too when the pull publishes).
    pub reused_by_diff_id: bool,
}

/// A pull ready to fetch what is missing. It holds the open skopeo connection: finish it
/// ([`import`] or [`PreparedImport::close`]) on the runtime that prepared it.
#[non_exhaustive]
pub struct PreparedImport {
    /// The image.
    pub imgref: OstreeImageReference,
    /// Digest of the manifest as published.
    pub manifest_digest: String,
    /// The manifest (converted to OCI).
    pub manifest: ImageManifest,
    /// The image configuration.
    pub config: ImageConfiguration,
    /// Where the ostree commit sits, for ostree images.
    pub layout: Option<OstreeLayout>,
    /// Every layer.
    pub layers: Vec<LayerState>,
    /// The stored state of this image before the pull, if any.
    pub previous: Option<ImageState>,
    pub(crate) fetcher: ImageFetcher,
    /// Set for `ostree-remote-*`: the commit is verified before anything is published.
    pub(crate) verifier: Option<std::sync::Arc<RemoteVerifier>>,
    /// The shared repository lock, held from prepare until the pull is published: layer GC and
    /// object prune (exclusive) wait, so nothing prepare found present can vanish meanwhile.
    pub(crate) _lock: ostree_repo::RepoLock,
}

impl std::fmt::Debug for PreparedImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedImport")
            .field("imgref", &self.imgref.to_string())
            .field("manifest_digest", &self.manifest_digest)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl PreparedImport {
    /// What changed since the stored version of this image, if there is one.
    pub fn manifest_diff(&self) -> Option<diff::ManifestDiff> {
        self.previous
            .as_ref()
            .map(|p| diff::ManifestDiff::new(&p.manifest, &self.manifest))
    }

    /// `layers already present: N; layers needed: M (SIZE)`, as the reference prints it
    /// (`None` when nothing is to be fetched).
    pub fn layer_status(&self) -> Option<String> {
        let needed: Vec<_> = self.layers_to_fetch().collect();
        (!needed.is_empty()).then(|| {
            let size = needed.iter().map(|l| l.size).sum();
            format!(
                "layers already present: {}; layers needed: {} ({})",
                self.layers.len() - needed.len(),
                needed.len(),
                diff::format_size(size)
            )
        })
    }

    /// Ends the pull here (a check for updates): closes the image.
    pub async fn close(self) -> Result<(), StoreError> {
        self.fetcher.finish().await?;
        Ok(())
    }

    /// Layers to fetch.
    pub fn layers_to_fetch(&self) -> impl Iterator<Item = &LayerState> {
        self.layers.iter().filter(|l| l.present.is_none())
    }
}

/// The result of [`prepare`].
#[derive(Debug)]
pub enum PrepareResult {
    /// Nothing to fetch: the stored image has this manifest (or config).
    AlreadyPresent(Box<ImageState>),
    /// `unencapsulate` only: the commit is here and complete.
    CommitPresent {
        /// The commit.
        commit: Checksum,
        /// The manifest digest.
        manifest_digest: String,
    },
    /// Fetching is needed.
    Ready(Box<PreparedImport>),
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullOutcome {
    /// The ostree commit of the base layers (`None` for non-ostree images).
    pub base_commit: Option<Checksum>,
    /// The merge commit the image ref points at (`None` for `unencapsulate`).
    pub merge_commit: Option<Checksum>,
    /// Digest of the manifest as published.
    pub manifest_digest: String,
    /// Layers fetched.
    pub layers_fetched: usize,
    /// Layers that were already present.
    pub layers_present: usize,
    /// Compressed bytes of the fetched layers.
    pub bytes_fetched: u64,
    /// Per derived layer (digest), what the path rules dropped (top-level name -> count).
    pub filtered: Vec<(String, std::collections::BTreeMap<String, u32>)>,
    /// Whether nothing had to be fetched.
    pub already_present: bool,
    /// How many times the pull was tried (1 without retries).
    pub attempts: u32,
    /// Set when the image uses a format the reference has deprecated (v0 tar entries in its
    /// ostree layers): it still imports, but should be re-encapsulated.
    pub deprecated_warning: Option<String>,
}

/// The warning for images whose ostree layers use v0 tar entries.
pub(crate) const LEGACY_TAR_WARNING: &str = "this image's ostree layers use the v0 tar format \
    (xattrs as sysroot/ostree/repo/xattrs/ blobs), which ostree-ext no longer writes; it still \
    imports, but re-encapsulate the image with a current encapsulate";

fn repo_err(image: &str) -> impl Fn(ostree_repo::RepoError) -> StoreError + '_ {
    move |source| StoreError::Repo {
        image: image.to_string(),
        source: Box::new(source),
    }
}

/// Checks that can refuse an image before or right after skopeo starts; for `ostree-remote-*`
/// the remote's verification configuration.
fn check_signature_source(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: &PullOptions,
) -> Result<Option<std::sync::Arc<RemoteVerifier>>, StoreError> {
    let image = imgref.to_string();
    let fetch = &opts.fetch;
    match &imgref.sigverify {
        SignatureSource::OstreeRemote(remote) => {
            let paths = opts.signature_paths.clone().unwrap_or_default();
            let config =
                ostree_sign::RemoteConfig::load(repo.path(), remote, &paths).map_err(|source| {
                    StoreError::Signature {
                        image,
                        remote: remote.clone(),
                        source: Box::new(source),
                    }
                })?;
            Ok(Some(std::sync::Arc::new(RemoteVerifier::new(
                remote.clone(),
                config,
            ))))
        }
        SignatureSource::ContainerPolicy => {
            // --insecure-policy would make skopeo skip the very policy checked here.
            if fetch.insecure_policy {
                return Err(StoreError::Policy {
                    image,
                    source: crate::policy::PolicyError::Disabled,
                });
            }
            // Before skopeo runs: an accept-anything policy would make "signed" mean nothing.
            crate::policy::check_policy_requires_signatures(
                &imgref.imgref,
                fetch.signature_policy.as_deref(),
            )
            .map_err(|source| StoreError::Policy { image, source })?;
            Ok(None)
        }
        SignatureSource::ContainerPolicyAllowInsecure => Ok(None),
    }
}

/// Proxy protocol 0.2.6 (skopeo 1.13) is the first to apply containers-policy.json itself.
fn protocol_enforces_policy(version: &str) -> bool {
    let mut it = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let v = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    v >= (0, 2, 6)
}

/// Fetches manifest and config and finds what is already in `repo`.
pub async fn prepare(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: &mut PullOptions,
) -> Result<PrepareResult, StoreError> {
    let image = imgref.to_string();
    let verifier = check_signature_source(repo, imgref, opts)?;
    let base_only = matches!(opts.mode, PullMode::BaseCommit { .. });
    let lock = repo.lock(false).map_err(repo_err(&image))?;
    let previous = if base_only {
        None
    } else {
        query_image(repo, &imgref.imgref)?
    };
    // A pull by digest of what is stored needs no network at all.
    if let (Some(prev), Some((_, digest))) = (&previous, imgref.imgref.name.rsplit_once('@'))
        && prev.manifest_digest == digest
    {
        return Ok(PrepareResult::AlreadyPresent(Box::new(prev.clone())));
    }
    let fetch = std::mem::take(&mut opts.fetch);
    let fetcher = ImageFetcher::open(&imgref.imgref, fetch).await?;
    if imgref.sigverify == SignatureSource::ContainerPolicy
        && !protocol_enforces_policy(&fetcher.protocol_version())
    {
        return Err(StoreError::PolicyNeedsNewerSkopeo {
            image,
            found: fetcher.protocol_version(),
        });
    }
    let (manifest, manifest_digest, config) = fetcher.fetch_manifest_and_config().await?;
    let layout = match parse_layout(&manifest, &config) {
        Ok(l) => Some(l),
        Err(LayoutError::NotOstree) if !base_only => None,
        Err(source) => {
            return Err(StoreError::Layout { image, source });
        }
    };
    let derived = match &layout {
        Some(l) => l.derived_layers,
        None => manifest.layers().len(),
    };
    if let (Some(v), true) = (&verifier, derived > 0) {
        return Err(StoreError::RemoteSignedDerived {
            image,
            remote: v.remote.clone(),
            derived,
        });
    }
    if base_only && derived > 0 {
        return Err(StoreError::DerivedImage { image, derived });
    }
    if let Some(p) = &opts.progress {
        p.image(&manifest_digest, layout.as_ref().map(|l| &l.commit));
    }
    let rerr = repo_err(&image);
    if let Some(prev) = &previous {
        if prev.manifest_digest == manifest_digest
            || prev.manifest.config().digest() == manifest.config().digest()
        {
            fetcher.finish().await?;
            return Ok(PrepareResult::AlreadyPresent(Box::new(prev.clone())));
        }
        // As the reference: the pending update is recorded on the current merge commit, so
        // that it can be queried offline (`upgrade --check`).
        state::cache_update(repo, prev, &manifest_digest, &manifest, &config)?;
    }
    if base_only
        && let Some(l) = &layout
        && !repo.is_commit_partial(&l.commit)
        && repo.find_missing(&l.commit).map_err(&rerr)?.is_empty()
    {
        // Present already: its stored signature must verify too.
        if let Some(v) = &verifier {
            v.verify(&image, |n| repo.load_metadata_bytes(n), &l.commit)?;
        }
        fetcher.finish().await?;
        return Ok(PrepareResult::CommitPresent {
            commit: l.commit,
            manifest_digest,
        });
    }
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(StoreError::BadImage {
            image: image.clone(),
            reason: format!(
                "the manifest has {} layers but the config lists {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
        });
    }
    let by_diff_id = if base_only {
        Default::default()
    } else {
        state::layers_by_diff_id(repo)?
    };
    let mut layers = Vec::with_capacity(manifest.layers().len());
    for (index, (desc, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
        let role = match &layout {
            Some(_) if index == 0 => LayerRole::Commit,
            Some(l) if index <= l.last_ostree => LayerRole::Chunk,
            _ => LayerRole::Derived,
        };
        let digest = desc.digest().to_string();
        let ref_name = refs::blob_ref(&digest)?;
        let mut reused = false;
        let present = match repo.read_ref(&ref_name).map_err(&rerr)? {
            Some(c) if !repo.is_commit_partial(&c) => Some(c),
            // The same content under another digest (recompressed): its commit serves.
            _ => match by_diff_id.get(diff_id) {
                Some(c) if !repo.is_commit_partial(c) => {
                    reused = true;
                    Some(*c)
                }
                _ => None,
            },
        };
        layers.push(LayerState {
            index,
            digest,
            size: desc.size(),
            diff_id: diff_id.clone(),
            role,
            ref_name,
            present,
            reused_by_diff_id: reused,
        });
    }
    if base_only && let Some(l) = &layout {
        layers.truncate(l.last_ostree + 1);
    }
    Ok(PrepareResult::Ready(Box::new(PreparedImport {
        imgref: imgref.clone(),
        manifest_digest,
        manifest,
        config,
        layout,
        layers,
        previous,
        fetcher,
        verifier,
        _lock: lock,
    })))
}

/// Fetches the missing layers of a prepared pull and publishes the result: the merge commit and
/// image ref (store pulls) or the base commit and its optional ref (`unencapsulate`).
pub async fn import(
    repo: &Repo,
    prepared: Box<PreparedImport>,
    opts: &PullOptions,
) -> Result<PullOutcome, StoreError> {
    let out = pipeline::run(repo, *prepared, opts).await?;
    if opts.mode == PullMode::Image && !opts.disable_gc {
        gc::gc_image_layers(repo)?;
    }
    Ok(out)
}

/// Checks for an update without fetching layers: `None` if the stored image is current, else
/// the new manifest (also recorded in the stored image's state as its cached update).
pub async fn check_for_update(
    repo: &Repo,
    imgref: &OstreeImageReference,
    mut opts: PullOptions,
) -> Result<Option<Box<PreparedImport>>, StoreError> {
    match prepare(repo, imgref, &mut opts).await? {
        PrepareResult::Ready(p) => Ok(Some(p)),
        _ => Ok(None),
    }
}

/// [`prepare`] then [`import`]; store pulls retry transient failures (see
/// [`PullOptions::network_retries`]).
pub async fn pull(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: PullOptions,
) -> Result<(PullOutcome, Option<ImageState>), StoreError> {
    let retries = match opts.mode {
        PullMode::Image => opts.network_retries,
        // unencapsulate makes one attempt, as the reference.
        PullMode::BaseCommit { .. } => 0,
    };
    let mut opts = opts;
    let mut attempt = 1;
    loop {
        let fetch = opts.fetch.try_clone().map_err(StoreError::Runtime)?;
        let result = pull_once(repo, imgref, &mut opts).await;
        match result {
            Err(e) if attempt <= retries && is_transient(&e) => {
                let delay = opts.retry_backoff * 2u32.saturating_pow(attempt - 1);
                tracing::warn!(error = %crate::classify::Chain(&e), attempt, ?delay, "pull failed; retrying");
                if let Some(p) = &opts.progress {
                    p.retrying(attempt, delay, &e);
                }
                tokio::time::sleep(delay).await;
                opts.fetch = fetch;
                attempt += 1;
            }
            Ok((mut out, state)) => {
                out.attempts = attempt;
                return Ok((out, state));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Failures a second attempt may not see.
fn is_transient(e: &StoreError) -> bool {
    use crate::fetch::FetchReason as K;
    match e {
        // An unclassified skopeo error is retried only during a transfer (a registry 5xx, a
        // reset); at OpenImage it is as likely a policy refusal, which never goes away.
        StoreError::Fetch(f) => match f.reason() {
            K::Network | K::Timeout | K::ProxyDied => true,
            K::Proxy => f.layer().is_some(),
            _ => false,
        },
        _ => false,
    }
}

async fn pull_once(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: &mut PullOptions,
) -> Result<(PullOutcome, Option<ImageState>), StoreError> {
    match prepare(repo, imgref, opts).await? {
        PrepareResult::AlreadyPresent(state) => Ok((
            PullOutcome {
                base_commit: state.base_commit,
                merge_commit: Some(state.merge_commit),
                manifest_digest: state.manifest_digest.clone(),
                layers_fetched: 0,
                layers_present: state.manifest.layers().len(),
                bytes_fetched: 0,
                filtered: Vec::new(),
                already_present: true,
                attempts: 1,
                deprecated_warning: None,
            },
            Some(*state),
        )),
        PrepareResult::CommitPresent {
            commit,
            manifest_digest,
        } => Ok((
            PullOutcome {
                base_commit: Some(commit),
                merge_commit: None,
                manifest_digest,
                layers_fetched: 0,
                layers_present: 0,
                bytes_fetched: 0,
                filtered: Vec::new(),
                already_present: true,
                attempts: 1,
                deprecated_warning: None,
            },
            None,
        )),
        PrepareResult::Ready(p) => {
            if let Some(pr) = &opts.progress {
                pr.prepared(&p);
            }
            let out = import(repo, p, opts).await?;
            let state = match opts.mode {
                PullMode::Image => query_image(repo, &imgref.imgref)?,
                PullMode::BaseCommit { .. } => None,
            };
            Ok((out, state))
        }
    }
}

/// [`pull`] for synchronous callers; safe to call from inside a tokio runtime too (the work
/// then runs on a thread of its own).
pub fn pull_blocking(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: PullOptions,
) -> Result<(PullOutcome, Option<ImageState>), StoreError> {
    block_on(pull(repo, imgref, opts))?
}

/// Runs a future to completion from synchronous code. Inside a runtime, blocking its thread
/// would panic, so a scoped thread with a runtime of its own does the work.
pub(crate) fn block_on<F: std::future::Future + Send>(fut: F) -> Result<F::Output, StoreError>
where
    F::Output: Send,
{
    let build = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| build().map(|rt| rt.block_on(fut)))
                .join()
                .map_err(|_| StoreError::Internal("pull thread panicked".into()))?
        })
    } else {
        Ok(build()?.block_on(fut))
    }
}
