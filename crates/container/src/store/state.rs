//! What the store knows about an image: its merge commit's metadata (container-image-format
//! §8.2), read back as an [`ImageState`]; listing, history and removal.

use containers_image_proxy::oci_spec::image::{ImageConfiguration, ImageManifest};
use ostree_repo::Repo;
use ostree_repo::format::{Checksum, MetaDict};

use super::error::StoreError;
use super::refs::{IMAGE_PREFIX, blob_ref, image_from_ref_suffix, image_ref};
use crate::imgref::ImageReference;
use crate::unencapsulate::layout::parse_layout;

/// Merge-commit metadata: the manifest digest as published.
pub const META_MANIFEST_DIGEST: &str = "ostree.manifest-digest";
/// Merge-commit metadata: the manifest, canonical JSON.
pub const META_MANIFEST: &str = "ostree.manifest";
/// Merge-commit metadata: the image config, canonical JSON.
pub const META_CONFIG: &str = "ostree.container.image-config";
/// Merge-commit and layer-commit metadata: who imported it.
pub const META_IMPORTER_VERSION: &str = "ostree.importer.version";
/// Merge-commit metadata: entries dropped by the path rules, per derived layer (`a{sa{su}}`).
pub const META_TAR_FILTERED: &str = "ostree.tar-filtered";
/// Detached metadata of a pending update (written when a check finds one): its digest.
pub const META_CACHED_MANIFEST_DIGEST: &str = "ostree-ext.cached.manifest-digest";
/// Detached metadata of a pending update: its manifest (JSON).
pub const META_CACHED_MANIFEST: &str = "ostree-ext.cached.manifest";
/// Detached metadata of a pending update: its config (JSON).
pub const META_CACHED_CONFIG: &str = "ostree-ext.cached.config";

/// The value of `ostree.importer.version` we write.
pub const IMPORTER_VERSION: &str = concat!("ostree-container ", env!("CARGO_PKG_VERSION"));

/// One stored image.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageState {
    /// The image.
    pub image: ImageReference,
    /// The commit the image ref points at.
    pub merge_commit: Checksum,
    /// The ostree commit of the image's base layers (`None` for non-ostree images).
    pub base_commit: Option<Checksum>,
    /// Digest of the manifest as published.
    pub manifest_digest: String,
    /// The manifest (as converted to OCI by skopeo).
    pub manifest: ImageManifest,
    /// The image configuration.
    pub config: ImageConfiguration,
    /// The merge commit's timestamp.
    pub timestamp: u64,
    /// An update found by a check but not pulled yet.
    pub cached_update: Option<CachedUpdate>,
}

/// A newer version of an image, found by a check for updates and recorded in the current merge
/// commit's detached metadata (as the reference does, so `rpm-ostree`/`bootc` see it too).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CachedUpdate {
    /// Digest of the new manifest.
    pub manifest_digest: String,
    /// The new manifest.
    pub manifest: ImageManifest,
    /// The new config.
    pub config: ImageConfiguration,
}

/// One layer of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The layer's blob digest.
    pub digest: String,
    /// Its compressed size.
    pub size: u64,
    /// What created it (`created_by` of the config history), if recorded.
    pub created_by: Option<String>,
    /// When, if recorded.
    pub created: Option<String>,
}

/// Canonical JSON (sorted keys, no whitespace): what the reference stores since 2025.
pub(crate) fn canonical_json<T: serde::Serialize>(v: &T) -> Result<String, serde_json::Error> {
    // serde_json's map is ordered by key (no preserve_order feature): serialising a Value sorts.
    let value = serde_json::to_value(v)?;
    serde_json::to_string(&value)
}

fn bad(image: &ImageReference, reason: impl Into<String>) -> StoreError {
    StoreError::BadState {
        image: image.to_string(),
        reason: reason.into(),
    }
}

fn repo_err(image: &ImageReference) -> impl Fn(ostree_repo::RepoError) -> StoreError + '_ {
    move |source| StoreError::Repo {
        image: image.to_string(),
        source: Box::new(source),
    }
}

/// Reads the state recorded in a merge commit's metadata.
pub(crate) fn state_from_commit(
    repo: &Repo,
    image: &ImageReference,
    merge_commit: Checksum,
) -> Result<ImageState, StoreError> {
    let commit = repo.load_commit(&merge_commit).map_err(repo_err(image))?;
    let meta: &MetaDict = &commit.metadata;
    let text = |k: &str| {
        meta.get_str(k)
            .ok_or_else(|| bad(image, format!("merge commit {merge_commit} has no {k}")))
    };
    let manifest_digest = text(META_MANIFEST_DIGEST)?.to_string();
    let manifest: ImageManifest = serde_json::from_str(text(META_MANIFEST)?)
        .map_err(|e| bad(image, format!("{META_MANIFEST}: {e}")))?;
    let config: ImageConfiguration = serde_json::from_str(text(META_CONFIG)?)
        .map_err(|e| bad(image, format!("{META_CONFIG}: {e}")))?;
    let base_commit = match commit.parent {
        Some(p) => Some(p),
        // Stores written by ostree-ext 0.15.3: no parent; the base is layer 0's blob ref.
        None => match (parse_layout(&manifest, &config), manifest.layers().first()) {
            (Ok(_), Some(l0)) => repo
                .read_ref(&blob_ref(l0.digest().as_ref())?)
                .map_err(repo_err(image))?,
            _ => None,
        },
    };
    let cached_update = read_cached_update(repo, image, &merge_commit)?;
    Ok(ImageState {
        image: image.clone(),
        merge_commit,
        base_commit,
        manifest_digest,
        manifest,
        config,
        timestamp: commit.timestamp,
        cached_update,
    })
}

fn read_cached_update(
    repo: &Repo,
    image: &ImageReference,
    merge_commit: &Checksum,
) -> Result<Option<CachedUpdate>, StoreError> {
    let Some(md) = repo
        .load_commitmeta(merge_commit)
        .map_err(repo_err(image))?
    else {
        return Ok(None);
    };
    let (Some(d), Some(m), Some(c)) = (
        md.get_str(META_CACHED_MANIFEST_DIGEST),
        md.get_str(META_CACHED_MANIFEST),
        md.get_str(META_CACHED_CONFIG),
    ) else {
        return Ok(None);
    };
    Ok(Some(CachedUpdate {
        manifest_digest: d.to_string(),
        manifest: serde_json::from_str(m)
            .map_err(|e| bad(image, format!("{META_CACHED_MANIFEST}: {e}")))?,
        config: serde_json::from_str(c)
            .map_err(|e| bad(image, format!("{META_CACHED_CONFIG}: {e}")))?,
    }))
}

/// Replaces the pending-update keys of `merge_commit`'s detached metadata (others are kept).
fn write_cached_keys(
    repo: &Repo,
    image: &ImageReference,
    merge_commit: &Checksum,
    update: Option<(&str, &ImageManifest, &ImageConfiguration)>,
) -> Result<(), StoreError> {
    let rerr = repo_err(image);
    let mut md = repo
        .load_commitmeta(merge_commit)
        .map_err(&rerr)?
        .unwrap_or_default();
    let keys = [
        META_CACHED_CONFIG,
        META_CACHED_MANIFEST,
        META_CACHED_MANIFEST_DIGEST,
    ];
    md.0.retain(|(k, _)| !keys.contains(&k.as_str()));
    if let Some((digest, manifest, config)) = update {
        let json = |v: serde_json::Result<String>| {
            v.map_err(|e| bad(image, format!("cannot serialise the update: {e}")))
        };
        use ostree_repo::format::gvariant::Value;
        md.push(
            META_CACHED_CONFIG,
            Value::Str(json(canonical_json(config))?),
        );
        md.push(
            META_CACHED_MANIFEST,
            Value::Str(json(canonical_json(manifest))?),
        );
        md.push(META_CACHED_MANIFEST_DIGEST, Value::Str(digest.to_string()));
        md.0.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let txn = repo.begin_transaction().map_err(&rerr)?;
    txn.write_commitmeta(merge_commit, &md.to_bytes())
        .map_err(&rerr)?;
    txn.commit().map_err(&rerr)?;
    Ok(())
}

/// Records a pending update of a stored image (what a check for updates found).
pub(crate) fn cache_update(
    repo: &Repo,
    state: &ImageState,
    digest: &str,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<(), StoreError> {
    write_cached_keys(
        repo,
        &state.image,
        &state.merge_commit,
        Some((digest, manifest, config)),
    )
}

/// Forgets a recorded pending update (`image clear-cached-update`).
pub fn clear_cached_update(repo: &Repo, image: &ImageReference) -> Result<(), StoreError> {
    let state = query_image(repo, image)?.ok_or_else(|| StoreError::ImageNotFound {
        image: image.to_string(),
    })?;
    if state.cached_update.is_some() {
        write_cached_keys(repo, image, &state.merge_commit, None)?;
    }
    Ok(())
}

/// The stored state of `image`, or `None` if it is not in the store.
pub fn query_image(repo: &Repo, image: &ImageReference) -> Result<Option<ImageState>, StoreError> {
    let r = image_ref(image)?;
    match repo.read_ref(&r).map_err(repo_err(image))? {
        None => Ok(None),
        Some(c) => state_from_commit(repo, image, c).map(Some),
    }
}

/// The layer commit of every diff_id some stored image has (so a recompressed layer, same
/// content under another blob digest, is not fetched again).
pub(crate) fn layers_by_diff_id(
    repo: &Repo,
) -> Result<std::collections::HashMap<String, Checksum>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for image in list_images(repo)? {
        let Some(state) = query_image(repo, &image)? else {
            continue;
        };
        let diff_ids = state.config.rootfs().diff_ids();
        for (l, d) in state.manifest.layers().iter().zip(diff_ids) {
            if let Some(c) = repo
                .read_ref(&blob_ref(l.digest().as_ref())?)
                .map_err(repo_err(&image))?
            {
                out.insert(d.clone(), c);
            }
        }
    }
    Ok(out)
}

/// Every stored image, sorted by ref.
pub fn list_images(repo: &Repo) -> Result<Vec<ImageReference>, StoreError> {
    let refs = repo
        .list_refs_with_prefix(IMAGE_PREFIX)
        .map_err(|source| StoreError::Repo {
            image: String::new(),
            source: Box::new(source),
        })?;
    Ok(refs
        .keys()
        .filter_map(|k| image_from_ref_suffix(&k[IMAGE_PREFIX.len()..]))
        .collect())
}

/// The layers of a stored image with what created them (config history entries that are not
/// `empty_layer`, paired with the manifest's layers in order).
pub fn image_history(state: &ImageState) -> Vec<HistoryEntry> {
    let mut hist = state
        .config
        .history()
        .as_ref()
        .map(|h| {
            h.iter()
                .filter(|e| !e.empty_layer().unwrap_or(false))
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter();
    state
        .manifest
        .layers()
        .iter()
        .map(|l| {
            let h = hist.next();
            HistoryEntry {
                digest: l.digest().to_string(),
                size: l.size(),
                created_by: h.as_ref().and_then(|h| h.created_by().clone()),
                created: h.as_ref().and_then(|h| h.created().clone()),
            }
        })
        .collect()
}

/// Removes the refs of `images` (their layers stay until [`super::gc::gc_image_layers`]);
/// returns how many. An image not in the store is an error, as in the reference, and then
/// nothing is removed.
pub fn remove_images(repo: &Repo, images: &[ImageReference]) -> Result<usize, StoreError> {
    let mut refs = Vec::new();
    for image in images {
        let r = image_ref(image)?;
        match repo.read_ref(&r).map_err(repo_err(image))? {
            None => {
                return Err(StoreError::ImageNotFound {
                    image: image.to_string(),
                });
            }
            Some(c) => refs.push((image, r, c)),
        }
    }
    let lock = repo.lock(false).map_err(|source| StoreError::Repo {
        image: String::new(),
        source: Box::new(source),
    })?;
    let mut removed = 0;
    for (image, r, c) in &refs {
        // Moved by a concurrent pull since we read it: that newer image stays.
        if repo
            .swap_ref(&lock, r, Some(c), None)
            .map_err(repo_err(image))?
        {
            removed += 1;
        }
    }
    Ok(removed)
}
