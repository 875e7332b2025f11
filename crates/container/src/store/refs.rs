//! Ref names of the store (container-image-format §8.1), exactly as the reference writes them so
//! that either implementation reads and updates the other's store.

use ostree_repo::format::refs::{escape_for_ref, unescape_ref};

use super::error::StoreError;
use crate::imgref::ImageReference;

/// Refs of stored images (their merge commits).
pub const IMAGE_PREFIX: &str = "ostree/container/image/";
/// Refs of fetched layers (commit layer: the commit; chunk: object set; derived: layer commit).
pub const BLOB_PREFIX: &str = "ostree/container/blob/";
/// Protected base images (bootc writes `ostree/container/baseimage/bootc/...`).
pub const BASEIMAGE_PREFIX: &str = "ostree/container/baseimage/";

/// `ostree/container/image/<escaped display form>`; `registry:x` and `docker://x` share it.
pub fn image_ref(imgref: &ImageReference) -> Result<String, StoreError> {
    let display = imgref.to_string();
    let e = escape_for_ref(&display).map_err(|e| StoreError::BadImage {
        image: display.clone(),
        reason: format!("cannot name a ref after the image: {e}"),
    })?;
    Ok(format!("{IMAGE_PREFIX}{e}"))
}

/// `ostree/container/blob/<escaped digest>` (the name the layer importers use).
pub fn blob_ref(digest: &str) -> Result<String, StoreError> {
    ostree_tar::blob_ref(digest).map_err(|e| StoreError::BadImage {
        image: digest.to_string(),
        reason: format!("layer digest cannot name a ref: {e}"),
    })
}

/// The image reference a ref under [`IMAGE_PREFIX`] names (the part after the prefix).
pub fn image_from_ref_suffix(suffix: &str) -> Option<ImageReference> {
    unescape_ref(suffix).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_reference() {
        let r: ImageReference = "docker://quay.io/fedora/fedora-bootc:41".parse().unwrap();
        assert_eq!(
            image_ref(&r).unwrap(),
            "ostree/container/image/docker_3A__2F__2F_quay_2E_io/fedora/fedora-bootc_3A_41"
        );
        let same: ImageReference = "registry:quay.io/fedora/fedora-bootc:41".parse().unwrap();
        assert_eq!(image_ref(&same).unwrap(), image_ref(&r).unwrap());
        let suffix = image_ref(&r).unwrap()[IMAGE_PREFIX.len()..].to_string();
        assert_eq!(image_from_ref_suffix(&suffix).unwrap(), r);
        assert_eq!(
            blob_ref(&format!("sha256:{}", "2c26b46b".repeat(8))).unwrap(),
            format!("ostree/container/blob/sha256_3A_{}", "2c26b46b".repeat(8))
        );
    }
}
