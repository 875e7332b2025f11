//! Unencapsulate: import the OSTree commit an image carries into a repository
//! (container-image-format §3, §6). A thin call into the store's pull ([`crate::store`]): no
//! image ref is written and derived images are refused.

pub mod layout;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use containers_image_proxy::oci_spec::image::{ImageConfiguration, ImageManifest};
use ostree_repo::Repo;
use ostree_repo::format::Checksum;

use crate::fetch::{FetchConfig, ImageFetcher};
use crate::imgref::OstreeImageReference;
pub use crate::store::error::{ErrorKind, StoreError as UnencapsulateError};
use crate::store::{self, PullMode, PullOptions};
pub use crate::store::{ImportProgress, LayerPlan, LayerRole};

/// Options of [`unencapsulate`].
#[derive(Default)]
#[non_exhaustive]
pub struct UnencapsulateOptions {
    /// How to reach the image (auth, TLS, concurrency, timeouts).
    pub fetch: FetchConfig,
    /// Point this ref at the imported commit once it is complete.
    pub write_ref: Option<String>,
    /// Progress observer.
    pub progress: Option<Arc<dyn ImportProgress>>,
    /// Raised to stop; the import then fails with [`ErrorKind::Interrupted`] and publishes nothing.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for UnencapsulateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnencapsulateOptions")
            .field("write_ref", &self.write_ref)
            .finish_non_exhaustive()
    }
}

impl UnencapsulateOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The result of [`unencapsulate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Import {
    /// The imported commit (equal to the image's `ostree.commit` label).
    pub ostree_commit: Checksum,
    /// Digest of the image manifest as published.
    pub image_digest: String,
    /// A warning about deprecated image features, if any.
    pub deprecated_warning: Option<String>,
    /// Whether the commit was already present (nothing fetched).
    pub already_present: bool,
    /// Layers fetched.
    pub layers_fetched: usize,
}

/// The manifest and its digest.
pub async fn fetch_manifest_async(
    imgref: &OstreeImageReference,
    config: FetchConfig,
) -> Result<(ImageManifest, String), UnencapsulateError> {
    let f = ImageFetcher::open(&imgref.imgref, config).await?;
    let r = f.fetch_manifest().await?;
    f.finish().await?;
    Ok(r)
}

/// The manifest, its digest and the image configuration.
pub async fn fetch_manifest_and_config_async(
    imgref: &OstreeImageReference,
    config: FetchConfig,
) -> Result<(ImageManifest, String, ImageConfiguration), UnencapsulateError> {
    let f = ImageFetcher::open(&imgref.imgref, config).await?;
    let r = f.fetch_manifest_and_config().await?;
    f.finish().await?;
    Ok(r)
}

/// [`fetch_manifest_async`] for synchronous callers (safe inside a runtime too).
pub fn fetch_manifest(
    imgref: &OstreeImageReference,
    config: FetchConfig,
) -> Result<(ImageManifest, String), UnencapsulateError> {
    store::block_on(fetch_manifest_async(imgref, config))?
}

/// [`fetch_manifest_and_config_async`] for synchronous callers (safe inside a runtime too).
pub fn fetch_manifest_and_config(
    imgref: &OstreeImageReference,
    config: FetchConfig,
) -> Result<(ImageManifest, String, ImageConfiguration), UnencapsulateError> {
    store::block_on(fetch_manifest_and_config_async(imgref, config))?
}

/// Imports the ostree commit of `imgref` into `repo` (async form).
pub async fn unencapsulate_async(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: UnencapsulateOptions,
) -> Result<Import, UnencapsulateError> {
    let mut p = PullOptions::new();
    p.fetch = opts.fetch;
    p.progress = opts.progress;
    p.interrupt = opts.interrupt;
    p.mode = PullMode::BaseCommit {
        write_ref: opts.write_ref.clone(),
    };
    let (out, _) = store::pull(repo, imgref, p).await?;
    let commit = out.base_commit.ok_or_else(|| {
        UnencapsulateError::Internal(format!("{imgref}: an ostree import without a commit"))
    })?;
    if out.already_present
        && let Some(r) = &opts.write_ref
    {
        repo.set_ref_now(r, Some(&commit))
            .map_err(|source| UnencapsulateError::Repo {
                image: imgref.to_string(),
                source: Box::new(source),
            })?;
    }
    Ok(Import {
        ostree_commit: commit,
        image_digest: out.manifest_digest,
        deprecated_warning: out.deprecated_warning,
        already_present: out.already_present,
        layers_fetched: out.layers_fetched,
    })
}

/// Imports the ostree commit of `imgref` into `repo`; blocking (safe inside a runtime too).
pub fn unencapsulate(
    repo: &Repo,
    imgref: &OstreeImageReference,
    opts: UnencapsulateOptions,
) -> Result<Import, UnencapsulateError> {
    store::block_on(unencapsulate_async(repo, imgref, opts))?
}
