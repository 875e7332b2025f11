//! Unencapsulate: import the OSTree commit an image carries into a repository
//! (container-image-format §3, §6), fetching, decompressing and importing layers concurrently.
//!
//! Pipeline: skopeo streams each layer's blob; the fetcher decompresses it on a blocking thread
//! and hands the bytes, through a bounded channel ([`bridge`]), to an importer thread that
//! writes verified objects into one shared [`ostree_repo::Transaction`]. No layer waits for
//! another's disk writes. Nothing is published (no ref, commit still partial) until every layer
//! passed skopeo's digest check, the commit is proven complete and equals the image's label.

mod bridge;
mod error;
pub mod layout;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use containers_image_proxy::oci_spec::image::{ImageConfiguration, ImageManifest};
use ostree_repo::Repo;
use ostree_repo::format::Checksum;
use ostree_tar::{ImportOptions, ImportSession, TarError};

pub use self::error::{ErrorKind, UnencapsulateError};
use self::layout::parse_layout;
use crate::fetch::{FetchConfig, ImageFetcher, LayerProgress};
use crate::imgref::{OstreeImageReference, SignatureSource};

/// What a layer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerRole {
    /// Layer 0: the commit, its metadata and unchunked content.
    Commit,
    /// A chunk of content objects.
    Chunk,
}

/// One layer about to be fetched, with live counters.
#[derive(Debug, Clone)]
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

/// Observer of an import. Library code never prints; the CLI renders these.
pub trait ImportProgress: Send + Sync {
    /// The image was resolved.
    fn image(&self, _digest: &str, _commit: &Checksum) {}
    /// Layers about to be fetched (already present ones are not listed).
    fn layers(&self, _layers: &[LayerPlan]) {}
    /// A layer is fetched, verified and imported.
    fn layer_done(&self, _index: usize) {}
}

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

fn runtime() -> Result<tokio::runtime::Runtime, UnencapsulateError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(UnencapsulateError::Runtime)
}

/// The manifest and its digest.
pub fn fetch_manifest(
    imgref: &OstreeImageReference,
    config: FetchConfig,
) -> Result<(ImageManifest, String), UnencapsulateError> {
    let rt = runtime()?;
    rt.block_on(async {
        let f = ImageFetcher::open(&imgref.imgref, config).await?;
        let r = f.fetch_manifest().await?;
        f.finish().await?;
        Ok(r)
    })
}

/// The manifest, its digest and the image configuration.
pub fn fetch_manifest_and_config(
    imgref: &OstreeImageReference,
    config: FetchConfig,
) -> Result<(ImageManifest, String, ImageConfiguration), UnencapsulateError> {
    let rt = runtime()?;
    rt.block_on(async {
        let f = ImageFetcher::open(&imgref.imgref, config).await?;
        let r = f.fetch_manifest_and_config().await?;
        f.finish().await?;
        Ok(r)
    })
}

/// Work for one importer thread.
struct Job {
    index: usize,
    reader: bridge::ChannelReader,
    done: mpsc::SyncSender<Result<(), ()>>,
}

/// Imports the ostree commit of `imgref` into `repo`.
pub fn unencapsulate(
    repo: &Repo,
    imgref: &OstreeImageReference,
    mut opts: UnencapsulateOptions,
) -> Result<Import, UnencapsulateError> {
    let image = imgref.to_string();
    if let SignatureSource::OstreeRemote(remote) = &imgref.sigverify {
        return Err(UnencapsulateError::SignatureVerificationUnsupported {
            image,
            remote: remote.clone(),
        });
    }
    if imgref.sigverify == SignatureSource::ContainerPolicy {
        // Before skopeo runs: an accept-anything policy would make "signed" mean nothing.
        crate::policy::check_policy_requires_signatures(
            &imgref.imgref,
            opts.fetch.signature_policy.as_deref(),
        )
        .map_err(|source| UnencapsulateError::Policy {
            image: image.clone(),
            source,
        })?;
    }
    let interrupt = opts.interrupt.clone().unwrap_or_default();
    let rt = runtime()?;
    let fetcher = rt.block_on(ImageFetcher::open(
        &imgref.imgref,
        std::mem::take(&mut opts.fetch),
    ))?;
    if imgref.sigverify == SignatureSource::ContainerPolicy
        && !protocol_enforces_policy(&fetcher.protocol_version())
    {
        return Err(UnencapsulateError::PolicyNeedsNewerSkopeo {
            image,
            found: fetcher.protocol_version(),
        });
    }
    let (manifest, digest, config) = rt.block_on(fetcher.fetch_manifest_and_config())?;
    let layout = parse_layout(&manifest, &config).map_err(|source| UnencapsulateError::Layout {
        image: image.clone(),
        source,
    })?;
    if layout.derived_layers > 0 {
        return Err(UnencapsulateError::DerivedImage {
            image,
            derived: layout.derived_layers,
        });
    }
    if let Some(p) = &opts.progress {
        p.image(&digest, &layout.commit);
    }
    let repo_err = |source: ostree_repo::RepoError| UnencapsulateError::Repo {
        image: image.clone(),
        source: Box::new(source),
    };

    // Already here and complete: nothing to fetch.
    // find_missing also reports an absent commit object.
    if !repo.is_commit_partial(&layout.commit)
        && repo
            .find_missing(&layout.commit)
            .map_err(repo_err)?
            .is_empty()
    {
        if let Some(r) = &opts.write_ref {
            repo.set_ref_now(r, Some(&layout.commit))
                .map_err(repo_err)?;
        }
        rt.block_on(fetcher.finish())?;
        return Ok(Import {
            ostree_commit: layout.commit,
            image_digest: digest,
            deprecated_warning: None,
            already_present: true,
            layers_fetched: 0,
        });
    }

    let requests: Vec<_> = fetcher
        .layer_requests(&manifest, &config)?
        .into_iter()
        .take(layout.last_ostree + 1)
        .collect();
    let plans: Vec<LayerPlan> = requests
        .iter()
        .enumerate()
        .map(|(index, r)| LayerPlan {
            index,
            digest: r.descriptor.digest().to_string(),
            size: r.descriptor.size(),
            role: if index == 0 {
                LayerRole::Commit
            } else {
                LayerRole::Chunk
            },
            progress: r.progress(),
        })
        .collect();
    if let Some(p) = &opts.progress {
        p.layers(&plans);
    }

    let txn = repo.begin_transaction().map_err(repo_err)?;
    let mut import_opts = ImportOptions::default();
    import_opts.expected_commit = Some(layout.commit);
    let session = ImportSession::with_options(&txn, import_opts).with_interrupt(&interrupt);
    let failures: Arc<Mutex<Vec<(usize, TarError)>>> = Arc::default();
    let fetched = std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let consumer_interrupt = Arc::clone(&interrupt);
        let consumer =
            move |index: usize, src: &mut dyn std::io::Read| -> Result<(), std::io::Error> {
                let (tx, reader) = bridge::channel();
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                job_tx
                    .send(Job {
                        index,
                        reader,
                        done: done_tx,
                    })
                    .map_err(|_| std::io::Error::other("importer is gone"))?;
                let pumped = bridge::pump(src, &tx, &consumer_interrupt);
                drop(tx);
                let imported = done_rx
                    .recv()
                    .map_err(|_| std::io::Error::other("importer thread failed"))?;
                pumped?;
                imported.map_err(|()| {
                    std::io::Error::other(format!("layer {index} was rejected by the importer"))
                })
            };
        let fetch = scope.spawn(|| rt.block_on(fetcher.fetch_layers(&requests, consumer)));
        for job in job_rx {
            let (session, plans, failures, progress) =
                (&session, &plans, &failures, &opts.progress);
            scope.spawn(move || {
                let digest = plans.get(job.index).map(|p| p.digest.as_str());
                let mut reader = job.reader;
                let r = if job.index == 0 {
                    session.import_commit_layer(&mut reader, digest).map(drop)
                } else {
                    session.import_chunk_layer(&mut reader, digest).map(drop)
                };
                let ok = match r {
                    Ok(()) => {
                        if let Some(p) = progress {
                            p.layer_done(job.index);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push((job.index, e));
                        }
                        Err(())
                    }
                };
                // Dropping the reader tells the pump to stop if we failed early.
                drop(reader);
                let _ = job.done.send(ok);
            });
        }
        fetch.join()
    });
    let fetched = match fetched {
        Ok(r) => r,
        Err(_) => {
            return Err(UnencapsulateError::Runtime(std::io::Error::other(
                "fetch thread panicked",
            )));
        }
    };
    if interrupt.load(Ordering::Relaxed) {
        return Err(UnencapsulateError::Interrupted { image });
    }
    let outcomes = match fetched {
        Ok(o) => o,
        Err(e) => {
            // A consumer failure is reported as what the importer found; any other cause (digest
            // mismatch, network, proxy) is the fetcher's and wins.
            if e.kind() == crate::fetch::FetchErrorKind::Consumer {
                let mut f = failures
                    .lock()
                    .map(|mut f| std::mem::take(&mut *f))
                    .unwrap_or_default();
                f.sort_by_key(|(i, _)| *i);
                if let Some((index, source)) = f.into_iter().next() {
                    let layer = plans
                        .get(index)
                        .map(|p| p.digest.clone())
                        .unwrap_or_default();
                    return Err(UnencapsulateError::Import {
                        image,
                        layer,
                        source: Box::new(source),
                    });
                }
            }
            return Err(e.into());
        }
    };
    let outcome = session
        .finish()
        .map_err(|source| UnencapsulateError::Verify {
            image: image.clone(),
            source: Box::new(source),
        })?;
    match outcome.commit {
        Some(c) if c == layout.commit => {}
        Some(imported) => {
            return Err(UnencapsulateError::CommitMismatch {
                image,
                label: layout.commit,
                imported,
            });
        }
        None => {
            return Err(UnencapsulateError::Verify {
                image,
                source: Box::new(TarError::InvalidArgument(
                    "the image has no commit layer".into(),
                )),
            });
        }
    }
    if let Some(r) = &opts.write_ref {
        txn.set_ref(r, Some(layout.commit)).map_err(repo_err)?;
    }
    txn.commit().map_err(repo_err)?;
    rt.block_on(fetcher.finish())?;
    Ok(Import {
        ostree_commit: layout.commit,
        image_digest: digest,
        deprecated_warning: None,
        already_present: false,
        layers_fetched: outcomes.len(),
    })
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
