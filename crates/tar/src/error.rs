//! Errors of the tar exporter and importer.

use std::fmt;

pub use ostree_errors::{Classify, ErrorKind};
use ostree_repo::RepoError;
use ostree_repo::format::{Checksum, ObjectName};

/// Where in the input an error was found: the layer (its digest if the caller gave one) and the
/// tar entry (index and path), so a bad image can be diagnosed without re-reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// "commit layer" / "chunk layer", plus the digest when known.
    pub layer: std::sync::Arc<str>,
    /// 0-based index of the tar header (extension headers count).
    pub entry: Option<u64>,
    /// The entry's path as read (lossy UTF-8).
    pub path: Option<Box<str>>,
}

impl Location {
    /// A location naming only the layer (or operation).
    pub fn layer(name: &str) -> Self {
        Location {
            layer: name.into(),
            ..Default::default()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.layer)?;
        if let Some(i) = self.entry {
            write!(f, ", entry {i}")?;
        }
        if let Some(p) = &self.path {
            write!(f, " {p:?}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong exporting or importing ostree tar layers. Match on
/// [`TarError::kind`]; the variants name the layer, entry and object concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    /// An object's bytes do not match its name or do not parse; a tar header is damaged.
    #[error("{at}: corrupt {}: {reason}", object.map(|o| o.to_string()).unwrap_or_else(|| "data".into()))]
    Corrupt {
        /// Where.
        at: Location,
        /// The object, if known.
        object: Option<ObjectName>,
        /// What is wrong.
        reason: String,
    },
    /// The stream violates the layer format (order, duplicates, unknown object paths, dangling
    /// xattr references, a second commit, ...).
    #[error("{at}: invalid layer: {reason}")]
    Invalid {
        /// Where.
        at: Location,
        /// What is wrong.
        reason: String,
    },
    /// An absolute path, a `..` component, or a hardlink leaving the layer.
    #[error("{at}: unsafe path: {reason}")]
    UnsafePath {
        /// Where.
        at: Location,
        /// What is wrong.
        reason: String,
    },
    /// A size or count limit was exceeded.
    #[error("{at}: {what} of {size} exceeds the limit of {limit}")]
    TooLarge {
        /// Where.
        at: Location,
        /// What was too large.
        what: &'static str,
        /// Its size (bytes or count).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An object that the commit does not reference.
    #[error("{at}: object {object} is not part of commit {commit}")]
    Unreachable {
        /// Where.
        at: Location,
        /// The object.
        object: ObjectName,
        /// The commit.
        commit: Checksum,
    },
    /// The commit references objects that no layer provided.
    #[error("commit {commit} is incomplete: {count} objects missing, first {first}")]
    Incomplete {
        /// The commit.
        commit: Checksum,
        /// How many are missing.
        count: usize,
        /// The first missing object.
        first: ObjectName,
    },
    /// An entry type or object that cannot be represented (device node, fifo, sparse file, a
    /// setuid file for a bare-user-only repository, ...).
    #[error("{at}: unsupported: {reason}")]
    Unsupported {
        /// Where.
        at: Location,
        /// What.
        reason: String,
    },
    /// The tar stream ended early.
    #[error("{at}: tar stream truncated: {reason}")]
    Truncated {
        /// Where.
        at: Location,
        /// What was being read.
        reason: &'static str,
    },
    /// The repository engine refused or failed a write or read.
    #[error("{at}")]
    Repo {
        /// Where.
        at: Location,
        /// The engine's error.
        #[source]
        source: Box<RepoError>,
    },
    /// Reading the input or writing the output failed.
    #[error("{at}")]
    Io {
        /// Where.
        at: Location,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A caller's argument is unusable (e.g. a chunk naming an object outside the commit).
    #[error("{0}")]
    InvalidArgument(String),
    /// Stopped by the caller's interrupt flag.
    #[error("interrupted")]
    Interrupted,
    /// A broken invariant of ours (a bug, not bad input): please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl TarError {
    /// The coarse class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TarError::Corrupt { .. } => ErrorKind::Corrupt,
            TarError::Invalid { .. } => ErrorKind::Invalid,
            TarError::UnsafePath { .. } => ErrorKind::UnsafePath,
            TarError::TooLarge { .. } => ErrorKind::TooLarge,
            TarError::Unreachable { .. } => ErrorKind::Unreachable,
            TarError::Incomplete { .. } => ErrorKind::Incomplete,
            TarError::Unsupported { .. } => ErrorKind::Unsupported,
            TarError::Truncated { .. } => ErrorKind::Truncated,
            TarError::Io { source, .. } => io_kind(source),
            TarError::InvalidArgument(_) => ErrorKind::Usage,
            TarError::Interrupted => ErrorKind::Interrupted,
            TarError::Internal(_) => ErrorKind::Internal,
            TarError::Repo { source, .. } => repo_kind(source),
        }
    }
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ErrorKind::Truncated
    } else if e.raw_os_error() == Some(28) {
        // ENOSPC
        ErrorKind::NoSpace
    } else {
        ErrorKind::Io
    }
}

/// The repository's own class, except that an I/O error is looked at as ours are (an early EOF
/// is a truncated layer).
fn repo_kind(e: &RepoError) -> ErrorKind {
    match e {
        RepoError::Io { source, .. } => io_kind(source),
        _ => e.kind(),
    }
}

impl Classify for TarError {
    fn kind(&self) -> ErrorKind {
        TarError::kind(self)
    }
}

/// Shorthand.
pub type Result<T, E = TarError> = std::result::Result<T, E>;
