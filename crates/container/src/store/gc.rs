//! Garbage collection of layer refs (container-image-format §8.2): a blob ref goes when no stored
//! image and no deployment commit uses its layer. Objects stay until an object prune.

use std::collections::HashSet;

use containers_image_proxy::oci_spec::image::ImageManifest;
use ostree_repo::Repo;

use super::error::StoreError;
use super::refs::{BASEIMAGE_PREFIX, BLOB_PREFIX, IMAGE_PREFIX, blob_ref};
use super::state::META_MANIFEST;

/// Refs whose commits may be deployments of images (their merge commits carry the manifest).
const DEPLOYMENT_PREFIXES: [&str; 4] = [
    "ostree/0/",
    "ostree/1/",
    "rpmostree/base/",
    BASEIMAGE_PREFIX,
];

fn repo_err(source: ostree_repo::RepoError) -> StoreError {
    StoreError::Repo {
        image: String::new(),
        source: Box::new(source),
    }
}

/// The blob refs of every layer some stored image or deployment uses.
fn referenced_layers(repo: &Repo) -> Result<HashSet<String>, StoreError> {
    let refs = repo.list_refs().map_err(repo_err)?;
    let mut keep = HashSet::new();
    for (name, commit) in &refs {
        let is_root = name.starts_with(IMAGE_PREFIX)
            || DEPLOYMENT_PREFIXES.iter().any(|p| name.starts_with(p));
        if !is_root {
            continue;
        }
        let c = match repo.load_commit(commit) {
            Ok(c) => c,
            // A ref to a missing commit protects nothing; fsck reports it.
            Err(e) if e.kind() == ostree_repo::ErrorKind::NotFound => continue,
            Err(e) => return Err(repo_err(e)),
        };
        let Some(text) = c.metadata.get_str(META_MANIFEST) else {
            continue;
        };
        let manifest: ImageManifest =
            serde_json::from_str(text).map_err(|e| StoreError::BadState {
                image: name.clone(),
                reason: format!("{META_MANIFEST}: {e}"),
            })?;
        for l in manifest.layers() {
            keep.insert(blob_ref(l.digest().as_ref())?);
        }
    }
    Ok(keep)
}

/// Deletes the layer refs no image uses; returns how many. Takes the repository's exclusive lock,
/// so it waits for pulls in progress (which hold the shared lock until their image ref is
/// written) and never removes a layer a pull is about to reference.
pub fn gc_image_layers(repo: &Repo) -> Result<usize, StoreError> {
    let lock = repo.lock(true).map_err(repo_err)?;
    let keep = referenced_layers(repo)?;
    let blobs = repo.list_refs_with_prefix(BLOB_PREFIX).map_err(repo_err)?;
    let mut removed = 0;
    for (name, commit) in &blobs {
        if !keep.contains(name)
            && repo
                .swap_ref(&lock, name, Some(commit), None)
                .map_err(repo_err)?
        {
            removed += 1;
        }
    }
    tracing::debug!(removed, kept = keep.len(), "layer refs collected");
    Ok(removed)
}
