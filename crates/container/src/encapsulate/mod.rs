//! Encapsulate: an OSTree commit → an OCI image (container-image-format §2–§4, §9).
//!
//! Pipeline: resolve and check the commit (complete, metadata present) before touching the
//! destination; plan chunk layers ([`chunking`]); write every layer as a blob — layers run on
//! all cores, largest first, each one streaming tar → compressor → blob file with bounded
//! memory ([`compress`]); then config, manifest and index. `oci:` destinations are written in
//! place, `oci-archive:` is a deterministic tar of a temporary layout, anything else is a
//! temporary layout pushed by `skopeo copy`.
//!
//! Reproducible: the same commit and options give the same manifest digest (timestamps come
//! from the commit, compression parameters never depend on the machine).

pub mod chunking;
pub mod compress;
pub mod contentmeta;
mod error;
pub mod image;
pub mod oci;
mod pargz;

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ostree_repo::Repo;
use ostree_repo::format::{Checksum, ObjectName, ObjectType};
use ostree_tar::ExportPlan;
use rayon::prelude::*;

use self::chunking::{Chunk, ObjectInfo};
pub use self::compress::{Compression, LayerBlob};
use self::compress::{LayerWriteError, write_layer};
use self::contentmeta::ContentMeta;
pub use self::error::{EncapsulateError, EncapsulateReason};
use self::image::{ImageSpec, LABEL_FINAL_DIFFID, LabelInputs, WrittenLayer};
use self::oci::{OciDir, PushOptions};
use crate::imgref::{ImageReference, Transport};

/// Default `max_layers` without content metadata: one commit layer plus 31 chunk layers.
///
/// The reference writes a single layer without content metadata. We chunk by default because
/// chunks (a) let clients re-fetch only what changed, (b) compress in parallel on every core,
/// and (c) 32 stays far below the common 128-layer limit, leaving room for derived layers.
pub const DEFAULT_MAX_LAYERS: usize = 32;

/// A layer about to be written.
#[derive(Debug, Clone)]
pub struct LayerEstimate {
    /// Manifest position.
    pub index: usize,
    /// History `created_by`.
    pub name: String,
    /// Estimated uncompressed bytes (payload plus tar overhead).
    pub estimated_bytes: u64,
}

/// Observer of an encapsulation. Library code never prints; the CLI renders these.
pub trait EncapsulateProgress: Send + Sync {
    /// The layer plan.
    fn layers(&self, _layers: &[LayerEstimate]) {}
    /// `layer_bytes` uncompressed bytes of layer `index` are compressed; `overall` for all layers.
    fn bytes(&self, _index: usize, _layer_bytes: u64, _overall: u64) {}
    /// A layer blob is complete.
    fn layer_done(&self, _index: usize, _blob: &LayerBlob) {}
    /// The image is being copied to a non-OCI destination by skopeo.
    fn pushing(&self, _dest: &str) {}
}

/// Options of [`encapsulate`].
#[derive(Default, Clone)]
#[non_exhaustive]
pub struct EncapsulateOptions {
    /// `--label k=v`.
    pub labels: BTreeMap<String, String>,
    /// `--copymeta K`: required string keys of the commit metadata copied to labels.
    pub copy_meta: Vec<String>,
    /// `--copymeta-opt K`: optional ones.
    pub copy_meta_opt: Vec<String>,
    /// `--cmd`: `config.Cmd` (default: commit metadata `ostree.container-cmd`).
    pub cmd: Vec<String>,
    /// Layer limit including the commit layer (default [`DEFAULT_MAX_LAYERS`], or with
    /// content metadata one per component plus one).
    pub max_layers: Option<NonZeroUsize>,
    /// Layer compression.
    pub compression: Compression,
    /// `--contentmeta` JSON file.
    pub contentmeta: Option<PathBuf>,
    /// Auth file for pushing (default: the ostree auth.json lookup).
    pub authfile: Option<PathBuf>,
    /// Registry certificate directory.
    pub cert_dir: Option<PathBuf>,
    /// Push without TLS verification (`--dest-tls-verify=false`).
    pub insecure_skip_tls_verification: bool,
    /// The skopeo that copies to destinations other than `oci:` and `oci-archive:` (default
    /// `skopeo` on `PATH`); `containers-storage:` and `docker-daemon:` need a recent one.
    pub skopeo: Option<crate::fetch::SkopeoCommand>,
    /// Where temporary layouts go (default `/var/tmp`).
    pub tmp_dir: Option<PathBuf>,
    /// Progress observer.
    pub progress: Option<Arc<dyn EncapsulateProgress>>,
    /// Raised to stop; the result is then [`EncapsulateReason::Interrupted`].
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for EncapsulateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncapsulateOptions")
            .field("labels", &self.labels)
            .field("max_layers", &self.max_layers)
            .field("compression", &self.compression)
            .field("contentmeta", &self.contentmeta)
            .finish_non_exhaustive()
    }
}

impl EncapsulateOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What the layers of an image will be.
struct Prepared<'r> {
    plan: ExportPlan<'r>,
    chunks: Vec<Chunk>,
    commit_layer_bytes: u64,
    labels: BTreeMap<String, String>,
    created: String,
    cmd: Option<Vec<String>>,
    created_by: String,
}

fn tar_err(layer: usize) -> impl Fn(ostree_tar::TarError) -> EncapsulateError {
    move |source| EncapsulateError::Layer {
        layer,
        source: Box::new(source),
    }
}

/// Everything that can fail on bad input, before anything is written.
fn prepare<'r>(
    repo: &'r Repo,
    rev: &str,
    options: &EncapsulateOptions,
) -> Result<Prepared<'r>, EncapsulateError> {
    options
        .compression
        .validate()
        .map_err(EncapsulateError::InvalidOption)?;
    let commit = repo
        .resolve_rev(rev)
        .map_err(|source| EncapsulateError::UnknownRev {
            rev: rev.to_string(),
            source: Box::new(source),
        })?;
    // A full checksum resolves without a lookup: an absent commit is still an unknown rev.
    let commit_name = ObjectName::new(commit, ObjectType::Commit);
    if !repo
        .has_object(&commit_name)
        .map_err(EncapsulateError::repo)?
    {
        return Err(EncapsulateError::UnknownRev {
            rev: rev.to_string(),
            source: Box::new(ostree_repo::RepoError::ObjectNotFound(commit_name)),
        });
    }
    let c = repo.load_commit(&commit).map_err(EncapsulateError::repo)?;
    let cm_src = options
        .contentmeta
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let contentmeta = options
        .contentmeta
        .as_deref()
        .map(ContentMeta::from_file)
        .transpose()?;
    let labels = image::base_labels(
        &commit,
        &c,
        &LabelInputs {
            copy_meta: &options.copy_meta,
            copy_meta_opt: &options.copy_meta_opt,
            labels: &options.labels,
            contentmeta_labels: contentmeta.as_ref().map(|m| &m.labels),
        },
    )?;
    // One walk: the plan loads every dirtree, and reading every content object's size in
    // parallel proves the rest present; only a failure pays for the full completeness walk that
    // names what is missing.
    let plan =
        ExportPlan::new(repo, commit).map_err(|e| incomplete_or(repo, &commit, tar_err(0)(e)))?;
    let objects = object_infos(repo, &plan).map_err(|e| incomplete_or(repo, &commit, e))?;
    let chunks = match &contentmeta {
        Some(cm) => {
            let weighted: Vec<(Checksum, u64)> = objects
                .iter()
                .map(|o| (o.checksum, o.size + chunking::OBJECT_OVERHEAD))
                .collect();
            let comps = cm.components(&weighted, &cm_src)?;
            let bins = options.max_layers.map_or(cm.layers.len(), |n| n.get() - 1);
            if bins == 0 {
                Vec::new()
            } else {
                chunking::chunks_for_components(comps, bins)
            }
        }
        None => {
            let bins = options.max_layers.map_or(DEFAULT_MAX_LAYERS, |n| n.get()) - 1;
            if bins == 0 {
                Vec::new()
            } else {
                chunking::pack(chunking::directory_components(&objects, bins), bins)
            }
        }
    };
    let chunked: usize = chunks.iter().map(|c| c.objects.len()).sum();
    let commit_layer_bytes = if chunked == 0 {
        objects
            .iter()
            .map(|o| o.size + chunking::OBJECT_OVERHEAD)
            .sum()
    } else {
        0
    };
    let created = contentmeta
        .as_ref()
        .and_then(|m| m.created.clone())
        .unwrap_or_else(|| image::format_timestamp(c.timestamp));
    let created_by = if c.subject.is_empty() {
        format!("ostree export of commit {commit}")
    } else {
        c.subject.clone()
    };
    Ok(Prepared {
        cmd: image::container_cmd(&c, &options.cmd),
        plan,
        chunks,
        commit_layer_bytes,
        labels,
        created,
        created_by,
    })
}

/// [`EncapsulateReason::IncompleteCommit`] naming the first missing object if `commit` is incomplete,
/// else `err` (the walk runs only after something already failed).
fn incomplete_or(repo: &Repo, commit: &Checksum, err: EncapsulateError) -> EncapsulateError {
    match repo.find_missing(commit) {
        Ok(missing) => incomplete(commit, &missing).unwrap_or(err),
        Err(_) => err,
    }
}

/// The refusal for `missing` objects of `commit`, if there are any.
fn incomplete(commit: &Checksum, missing: &[ObjectName]) -> Option<EncapsulateError> {
    missing
        .first()
        .map(|first| EncapsulateError::IncompleteCommit {
            commit: commit.to_hex(),
            missing: missing.len(),
            first: format!("{}.{}", first.checksum, first.object_type.extension()),
        })
}

/// Every content object with its first path and payload size (read in parallel); also proves
/// the plan's dirmetas and the skipped `sysroot` subtree present, so that together with the
/// plan's own walk the commit is known complete.
fn object_infos(repo: &Repo, plan: &ExportPlan<'_>) -> Result<Vec<ObjectInfo>, EncapsulateError> {
    if let Some(tree) = plan.sysroot_tree() {
        // Usually the empty dirtree; anything else gets the full walk.
        let dt = repo.load_dirtree(&tree).map_err(EncapsulateError::repo)?;
        if !dt.files.is_empty() || !dt.dirs.is_empty() {
            let missing = repo
                .find_missing(&plan.commit())
                .map_err(EncapsulateError::repo)?;
            if let Some(e) = incomplete(&plan.commit(), &missing) {
                return Err(e);
            }
        }
    }
    let metas: Vec<Checksum> = plan.dirmetas().copied().collect();
    metas.into_par_iter().try_for_each(|m| {
        let name = ObjectName::new(m, ObjectType::DirMeta);
        match repo.has_object(&name).map_err(EncapsulateError::repo)? {
            true => Ok(()),
            false => Err(EncapsulateError::repo(
                ostree_repo::RepoError::ObjectNotFound(name),
            )),
        }
    })?;
    let list: Vec<(Checksum, String)> = plan
        .content_objects()
        .map(|c| {
            let path = plan
                .paths_of(c)
                .and_then(|p| p.first())
                .cloned()
                .unwrap_or_default();
            (*c, path)
        })
        .collect();
    list.into_par_iter()
        .map(|(checksum, path)| {
            let size = repo
                .read_content(&checksum)
                .map_err(EncapsulateError::repo)?
                .size;
            Ok(ObjectInfo {
                checksum,
                path,
                size,
            })
        })
        .collect()
}

/// Writes the image into `dir`; returns the manifest (digest, size).
fn build(
    p: &Prepared<'_>,
    dir: &OciDir,
    options: &EncapsulateOptions,
) -> Result<(String, u64), EncapsulateError> {
    let chunked: HashSet<Checksum> = p.chunks.iter().flat_map(|c| c.objects.clone()).collect();
    let mut estimates = vec![LayerEstimate {
        index: 0,
        name: p.created_by.clone(),
        estimated_bytes: p.commit_layer_bytes,
    }];
    for (i, c) in p.chunks.iter().enumerate() {
        estimates.push(LayerEstimate {
            index: i + 1,
            name: c.name.clone(),
            estimated_bytes: c.bytes,
        });
    }
    if let Some(pr) = &options.progress {
        pr.layers(&estimates);
    }
    // Largest first on a shared queue: the longest layer starts at once (LPT scheduling).
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(estimates[i].estimated_bytes), i));
    let next = AtomicUsize::new(0);
    let overall = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<LayerBlob, EncapsulateError>>>> =
        Mutex::new((0..estimates.len()).map(|_| None).collect());
    let interrupt = options.interrupt.as_deref();
    let workers = rayon::current_num_threads().clamp(1, estimates.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&idx) = order.get(k) else { return };
                    let last = AtomicU64::new(0);
                    let on_bytes = |n: u64| {
                        let prev = last.swap(n, Ordering::Relaxed);
                        let all = overall.fetch_add(n - prev, Ordering::Relaxed) + (n - prev);
                        if let Some(pr) = &options.progress {
                            pr.bytes(idx, n, all);
                        }
                    };
                    let r = write_layer(
                        dir.blobs_dir(),
                        options.compression,
                        &on_bytes,
                        interrupt,
                        |w| {
                            if idx == 0 {
                                p.plan.write_commit_layer(w, &chunked)
                            } else {
                                p.plan.write_chunk_layer(w, &p.chunks[idx - 1].objects)
                            }
                        },
                    )
                    .map_err(|e| match e {
                        LayerWriteError::Producer(t) => tar_err(idx)(t),
                        LayerWriteError::Io(e) => {
                            EncapsulateError::io(format!("compressing layer {idx}"), e)
                        }
                        LayerWriteError::Interrupted => EncapsulateError::Interrupted,
                    });
                    match &r {
                        Ok(b) => {
                            if let Some(pr) = &options.progress {
                                pr.layer_done(idx, b);
                            }
                        }
                        Err(_) => failed.store(true, Ordering::Relaxed),
                    }
                    if let Ok(mut g) = results.lock() {
                        g[idx] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| EncapsulateError::io("layer worker", std::io::Error::other("poisoned")))?;
    if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Err(EncapsulateError::Interrupted);
    }
    let mut blobs = Vec::with_capacity(results.len());
    // Layers skipped after another one failed are `None`; the failure is reported here.
    for r in results.into_iter().flatten() {
        blobs.push(r?);
    }
    if blobs.len() != estimates.len() {
        return Err(EncapsulateError::io(
            "writing layers",
            std::io::Error::other("a layer was not written"),
        ));
    }
    let mut layers = Vec::with_capacity(blobs.len());
    for (i, blob) in blobs.into_iter().enumerate() {
        let (created_by, components) = match i.checked_sub(1).and_then(|c| p.chunks.get(c)) {
            Some(c) => (c.name.clone(), Some(c.components.join(","))),
            None => (p.created_by.clone(), None),
        };
        layers.push(WrittenLayer {
            blob,
            created_by,
            components,
        });
    }
    let mut labels = p.labels.clone();
    if let Some(last) = layers.last() {
        labels.insert(LABEL_FINAL_DIFFID.to_string(), last.blob.diff_id.clone());
    }
    let spec = ImageSpec {
        labels: &labels,
        created: &p.created,
        cmd: p.cmd.clone(),
        layers: &layers,
        compression: options.compression,
    };
    let (config_digest, config_size) = dir.write_json_blob(&image::config_json(&spec))?;
    dir.write_json_blob(&image::manifest_json(&spec, &config_digest, config_size))
}

fn temp_layout(options: &EncapsulateOptions) -> Result<tempfile::TempDir, EncapsulateError> {
    let base = options
        .tmp_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    tempfile::Builder::new()
        .prefix("ostree-container-encapsulate-")
        .tempdir_in(&base)
        .map_err(|e| {
            EncapsulateError::io(
                format!("creating a temporary layout in {}", base.display()),
                e,
            )
        })
}

/// Exports commit `rev` of `repo` as an image at `dest`; returns the manifest digest
/// (`sha256:…`; for destinations that convert the manifest, the digest skopeo reports).
///
/// Bad input (unknown rev, incomplete commit, missing `--copymeta` key, unusable content
/// metadata, invalid options) is refused before anything is written at `dest`.
pub fn encapsulate(
    repo: &Repo,
    rev: &str,
    options: &EncapsulateOptions,
    dest: &ImageReference,
) -> Result<String, EncapsulateError> {
    let prepared = prepare(repo, rev, options)?;
    match dest.transport {
        Transport::OciDir => {
            let (path, tag) = oci::split_path_tag(&dest.name);
            let dir = OciDir::create(Path::new(path))?;
            let (digest, size) = build(&prepared, &dir, options)?;
            dir.set_manifest(&digest, size, tag)?;
            Ok(digest)
        }
        Transport::OciArchive => {
            let (path, tag) = oci::split_path_tag(&dest.name);
            let path = Path::new(path);
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            // Fail on an unwritable destination before the (long) layer writing.
            let out = tempfile::Builder::new()
                .prefix(".tmp-oci-archive-")
                .tempfile_in(parent)
                .map_err(|e| EncapsulateError::dest(path, e))?;
            let tmp = temp_layout(options)?;
            let dir = OciDir::create(tmp.path())?;
            let (digest, size) = build(&prepared, &dir, options)?;
            dir.set_manifest(&digest, size, tag)?;
            let mut w = std::io::BufWriter::new(out.as_file());
            oci::write_archive(dir.path(), &mut w).map_err(|e| EncapsulateError::dest(path, e))?;
            drop(w);
            compress::set_blob_mode(out.path()).map_err(|e| EncapsulateError::dest(path, e))?;
            out.persist(path)
                .map_err(|e| EncapsulateError::dest(path, e.error))?;
            Ok(digest)
        }
        _ => {
            let tmp = temp_layout(options)?;
            let dir = OciDir::create(tmp.path())?;
            let (digest, size) = build(&prepared, &dir, options)?;
            dir.set_manifest(&digest, size, Some("latest"))?;
            let dest_str = dest.to_skopeo_string();
            if let Some(pr) = &options.progress {
                pr.pushing(&dest_str);
            }
            let push = PushOptions {
                authfile: options.authfile.clone().or_else(oci::default_authfile),
                cert_dir: options.cert_dir.clone(),
                insecure_skip_tls_verification: options.insecure_skip_tls_verification,
                registry: dest.transport == Transport::Registry,
                skopeo: options.skopeo.clone(),
            };
            let pushed = oci::skopeo_push(dir.path(), "latest", &dest_str, &push)?;
            Ok(if pushed.is_empty() { digest } else { pushed })
        }
    }
}
