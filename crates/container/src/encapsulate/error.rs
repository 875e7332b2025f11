//! Errors of [`super::encapsulate`]: one variant per way the input or the destination can be
//! wrong, so callers (and the CLI's exit codes) branch on [`EncapsulateReason`], never on text.

use std::path::PathBuf;

use ostree_errors::{Classify, ErrorKind};
use ostree_repo::RepoError;
use ostree_tar::TarError;

/// Which step or input of an encapsulation failed ([`EncapsulateError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncapsulateReason {
    /// The revision does not name a commit.
    UnknownRev,
    /// The commit lacks objects (a partial pull, a pruned repository).
    IncompleteCommit,
    /// A `--copymeta` key is missing or not a string.
    Metadata,
    /// The `--contentmeta` file is unreadable, malformed or incomplete.
    ContentMeta,
    /// An option value is out of range or inconsistent.
    InvalidOption,
    /// The destination cannot be written.
    Destination,
    /// Reading the repository or writing temporary files failed.
    Io,
    /// `skopeo copy` to a non-OCI destination failed.
    Push,
    /// Stopped by the caller.
    Interrupted,
}

/// Why an encapsulation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncapsulateError {
    /// `rev` resolves to nothing.
    #[error("unknown revision {rev:?}")]
    UnknownRev {
        /// The revision given.
        rev: String,
        /// The lookup error.
        source: Box<RepoError>,
    },
    /// Objects reachable from the commit are missing; nothing was written.
    #[error(
        "commit {commit} is incomplete: {missing} object(s) missing (first: {first}); refusing to export a partial commit"
    )]
    IncompleteCommit {
        /// The commit.
        commit: String,
        /// How many objects are missing.
        missing: usize,
        /// The first missing object.
        first: String,
    },
    /// A `--copymeta` key is absent or not a string.
    #[error("commit metadata key {key:?} (--copymeta): {reason}")]
    Metadata {
        /// The key.
        key: String,
        /// Missing or wrong type.
        reason: String,
    },
    /// The content metadata cannot be used.
    #[error("content metadata {path}: {reason}")]
    ContentMeta {
        /// The file (or `<inline>`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An option is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The destination cannot be created or written.
    #[error("destination {path}")]
    Destination {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Reading the repository failed.
    #[error("reading the repository")]
    Repo(#[source] Box<RepoError>),
    /// Writing a layer failed.
    #[error("writing layer {layer}")]
    Layer {
        /// Layer index.
        layer: usize,
        /// The tar writer error.
        source: Box<TarError>,
    },
    /// Other I/O (temporary files, blob files).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// `skopeo copy` failed.
    #[error("skopeo copy to {dest} failed ({status}): {stderr}")]
    Push {
        /// The destination.
        dest: String,
        /// Exit status.
        status: String,
        /// skopeo's error output.
        stderr: String,
    },
    /// The interrupt flag was raised.
    #[error("interrupted")]
    Interrupted,
}

impl Classify for EncapsulateError {
    fn kind(&self) -> ErrorKind {
        EncapsulateError::kind(self)
    }
}

impl EncapsulateError {
    /// The workspace-wide class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EncapsulateError::UnknownRev { .. } => ErrorKind::NotFound,
            EncapsulateError::IncompleteCommit { .. } => ErrorKind::Incomplete,
            EncapsulateError::Metadata { .. }
            | EncapsulateError::ContentMeta { .. }
            | EncapsulateError::InvalidOption(_) => ErrorKind::Usage,
            EncapsulateError::Repo(e) => e.kind(),
            EncapsulateError::Layer { source, .. } => source.kind(),
            EncapsulateError::Destination { source, .. } | EncapsulateError::Io { source, .. } => {
                match source.kind() {
                    std::io::ErrorKind::Interrupted => ErrorKind::Interrupted,
                    std::io::ErrorKind::StorageFull => ErrorKind::NoSpace,
                    _ => ErrorKind::Io,
                }
            }
            EncapsulateError::Push { .. } => ErrorKind::Proxy,
            EncapsulateError::Interrupted => ErrorKind::Interrupted,
        }
    }

    /// Which step or input failed, in encapsulation's own terms.
    pub fn reason(&self) -> EncapsulateReason {
        match self {
            EncapsulateError::UnknownRev { .. } => EncapsulateReason::UnknownRev,
            EncapsulateError::IncompleteCommit { .. } => EncapsulateReason::IncompleteCommit,
            EncapsulateError::Metadata { .. } => EncapsulateReason::Metadata,
            EncapsulateError::ContentMeta { .. } => EncapsulateReason::ContentMeta,
            EncapsulateError::InvalidOption(_) => EncapsulateReason::InvalidOption,
            EncapsulateError::Destination { .. } => EncapsulateReason::Destination,
            EncapsulateError::Repo(e) if e.kind() == ostree_repo::ErrorKind::Interrupted => {
                EncapsulateReason::Interrupted
            }
            EncapsulateError::Layer { source, .. }
                if source.kind() == ostree_tar::ErrorKind::Interrupted =>
            {
                EncapsulateReason::Interrupted
            }
            EncapsulateError::Repo(_) | EncapsulateError::Layer { .. } => EncapsulateReason::Io,
            EncapsulateError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::Interrupted =>
            {
                EncapsulateReason::Interrupted
            }
            EncapsulateError::Io { .. } => EncapsulateReason::Io,
            EncapsulateError::Push { .. } => EncapsulateReason::Push,
            EncapsulateError::Interrupted => EncapsulateReason::Interrupted,
        }
    }

    pub(crate) fn repo(e: RepoError) -> Self {
        EncapsulateError::Repo(Box::new(e))
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        EncapsulateError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn dest(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EncapsulateError::Destination {
            path: path.into(),
            source,
        }
    }
}
