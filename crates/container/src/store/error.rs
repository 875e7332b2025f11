//! Errors of the store's pulls and queries, and of `unencapsulate` (which is a pull through
//! the store; `UnencapsulateError` is this type).

pub use ostree_errors::{Classify, ErrorKind};
use ostree_repo::RepoError;
use ostree_repo::format::Checksum;
use ostree_tar::TarError;

use crate::fetch::FetchError;
use crate::unencapsulate::layout::LayoutError;

/// Why an import failed. Every variant names the image; layer errors also name the layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Fetching through skopeo failed.
    #[error(transparent)]
    Fetch(#[from] Box<FetchError>),
    /// The image is not a base ostree image.
    #[error(
        "{image} is not an ostree base image (unencapsulate imports images built by `ostree container encapsulate`, or rpm-ostree/bootc base images)"
    )]
    Layout {
        /// The image.
        image: String,
        /// What is wrong.
        source: LayoutError,
    },
    /// The image has ordinary container layers on top of its ostree layers.
    #[error(
        "{image} is a derived image: {derived} container layer(s) follow its ostree layers; unencapsulate imports only the ostree commit of base images: use `container image pull` for derived images"
    )]
    DerivedImage {
        /// The image.
        image: String,
        /// Number of derived layers.
        derived: usize,
    },
    /// The ostree commit's signature did not verify with the remote's keys (or the remote's
    /// configuration is unusable). Nothing was published.
    #[error("{image}: signature verification with remote {remote:?} failed")]
    Signature {
        /// The image.
        image: String,
        /// The ostree remote named.
        remote: String,
        /// What the verifier found.
        source: Box<ostree_sign::SignError>,
    },
    /// `ostree-remote-*` on an image with derived layers: only the ostree commit can carry an
    /// ostree signature, as in the reference.
    #[error(
        "{image}: cannot verify layered containers via ostree remote {remote:?}: the image has {derived} container layer(s) that an ostree signature does not cover; use ostree-image-signed: with a containers signature policy"
    )]
    RemoteSignedDerived {
        /// The image.
        image: String,
        /// The ostree remote named.
        remote: String,
        /// Number of derived layers.
        derived: usize,
    },
    /// `ostree-image-signed:` needs the proxy to enforce containers-policy.json.
    #[error(
        "{image}: ostree-image-signed: needs skopeo >= 1.13 (image proxy protocol 0.2.6), which enforces containers-policy.json; this skopeo speaks {found}"
    )]
    PolicyNeedsNewerSkopeo {
        /// The image.
        image: String,
        /// Protocol version found.
        found: String,
    },
    /// `ostree-image-signed:` with a containers policy that would accept an unsigned image.
    #[error("{image}: ostree-image-signed: requires a signature policy")]
    Policy {
        /// The image.
        image: String,
        /// What is wrong with the policy.
        source: crate::policy::PolicyError,
    },
    /// A layer's content was rejected by the importer.
    #[error("{image}: layer {layer}")]
    Import {
        /// The image.
        image: String,
        /// The layer digest.
        layer: String,
        /// What the importer found.
        source: Box<TarError>,
    },
    /// Cross-layer checks (reachability, completeness) failed.
    #[error("{image}")]
    Verify {
        /// The image.
        image: String,
        /// What failed.
        source: Box<TarError>,
    },
    /// The imported commit is not the one the image's label names.
    #[error(
        "{image}: the commit layer holds commit {imported}, but the image's ostree.commit label says {label}"
    )]
    CommitMismatch {
        /// The image.
        image: String,
        /// Label value.
        label: Checksum,
        /// What was imported.
        imported: Checksum,
    },
    /// The repository failed.
    #[error("{image}")]
    Repo {
        /// The image.
        image: String,
        /// The engine's error.
        source: Box<RepoError>,
    },
    /// No such image in the store.
    #[error("{image}: no such image in the store")]
    ImageNotFound {
        /// The image.
        image: String,
    },
    /// The stored state of an image (its merge commit's metadata) is unreadable.
    #[error("{image}: stored image state is invalid: {reason}")]
    BadState {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The image (manifest, config) is inconsistent.
    #[error("{image}: {reason}")]
    BadImage {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A broken invariant of ours (a bug, not bad input): please report it.
    #[error("internal error: {0}")]
    Internal(String),
    /// Interrupted by the caller's flag.
    #[error("{image}: interrupted")]
    Interrupted {
        /// The image.
        image: String,
    },
}

impl StoreError {
    /// The coarse class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Fetch(e) => e.kind(),
            StoreError::Layout { .. }
            | StoreError::DerivedImage { .. }
            | StoreError::PolicyNeedsNewerSkopeo { .. } => ErrorKind::Unsupported,
            StoreError::Import { source, .. } | StoreError::Verify { source, .. } => source.kind(),
            StoreError::CommitMismatch { .. } => ErrorKind::Corrupt,
            StoreError::Signature { source, .. } => source.kind(),
            StoreError::RemoteSignedDerived { .. } => ErrorKind::Unsupported,
            StoreError::Policy { source, .. } => match source {
                crate::policy::PolicyError::Read { .. } => ErrorKind::Io,
                _ => ErrorKind::Usage,
            },
            StoreError::Repo { source, .. } => source.kind(),
            StoreError::Runtime(_) => ErrorKind::Io,
            StoreError::ImageNotFound { .. } => ErrorKind::NotFound,
            StoreError::BadState { .. } | StoreError::BadImage { .. } => ErrorKind::Corrupt,
            StoreError::Interrupted { .. } => ErrorKind::Interrupted,
            StoreError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        StoreError::kind(self)
    }
}

impl From<FetchError> for StoreError {
    fn from(e: FetchError) -> Self {
        StoreError::Fetch(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Broken invariants and dead threads are Internal, whichever crate reports them; never
    /// Usage (the user did nothing wrong) nor Interrupted (nobody cancelled).
    #[test]
    fn internal_failures_are_their_own_kind() {
        assert_eq!(StoreError::Internal("x".into()).kind(), ErrorKind::Internal);
        let repo = StoreError::Repo {
            image: "i".into(),
            source: Box::new(RepoError::Internal("syncfs thread panicked".into())),
        };
        assert_eq!(repo.kind(), ErrorKind::Internal);
        let tar = StoreError::Import {
            image: "i".into(),
            layer: "l".into(),
            source: Box::new(TarError::Internal(
                "a writer thread of the layer failed".into(),
            )),
        };
        assert_eq!(tar.kind(), ErrorKind::Internal);
        let nested = StoreError::Import {
            image: "i".into(),
            layer: "l".into(),
            source: Box::new(TarError::Repo {
                at: ostree_tar::Location::layer("l"),
                source: Box::new(RepoError::Internal("tree not loaded".into())),
            }),
        };
        assert_eq!(nested.kind(), ErrorKind::Internal);
    }
}
