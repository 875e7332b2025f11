//! Errors of the repository engine.

use std::path::PathBuf;

pub use ostree_errors::{Classify, ErrorKind};
use ostree_format::{Checksum, FormatError, ObjectName};

/// Everything that can go wrong in the repository engine. Match on [`RepoError::kind`] for
/// coarse handling; the variants carry the object, ref or path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// A system call failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An object's bytes are invalid.
    #[error("object {object}")]
    InvalidObject {
        /// The object.
        object: ObjectName,
        /// What is wrong.
        source: FormatError,
    },
    /// Input outside an object is invalid (a ref name, a header, ...).
    #[error("{context}")]
    Format {
        /// Where.
        context: String,
        /// What is wrong.
        source: FormatError,
    },
    /// An object's content does not hash to its name.
    #[error("object {expected}: checksum mismatch, content hashes to {actual}")]
    ChecksumMismatch {
        /// The name it was offered under.
        expected: ObjectName,
        /// What the content hashes to.
        actual: Checksum,
    },
    /// A required object is absent.
    #[error("object {0} not found")]
    ObjectNotFound(ObjectName),
    /// A ref or revision does not resolve.
    #[error("revision {0:?} not found")]
    RevNotFound(String),
    /// A partial checksum matches several commits.
    #[error("revision {0:?} is ambiguous")]
    AmbiguousRev(String),
    /// The directory is not an ostree repository.
    #[error("{} is not an ostree repository: {reason}", path.display())]
    NotARepo {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The repository configuration asks for something we do not implement.
    #[error("repository config key {key}={value:?} is not supported: {reason}")]
    UnsupportedConfig {
        /// `section.key`.
        key: String,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The repository configuration is malformed.
    #[error("invalid repository config: {0}")]
    InvalidConfig(String),
    /// The repository lock could not be taken in time.
    #[error("timed out after {secs}s waiting for the {kind} repository lock on {}", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// "shared" or "exclusive".
        kind: &'static str,
        /// The timeout.
        secs: i64,
    },
    /// A compare-and-swap ref update found the ref moved by someone else.
    #[error(
        "ref {name} changed under us: expected {}, found {}",
        fmt_opt(expected),
        fmt_opt(found)
    )]
    RefChanged {
        /// The ref.
        name: String,
        /// What the caller read before.
        expected: Option<Checksum>,
        /// What it holds now.
        found: Option<Checksum>,
    },
    /// Writing would eat into the `min-free-space` reserve.
    #[error("not enough free space in {}: writing {needed} more bytes would cross the min-free-space reserve ({reserve})", path.display())]
    NoSpace {
        /// The repository.
        path: PathBuf,
        /// Bytes of the write refused.
        needed: u64,
        /// The configured reserve, as written in the config.
        reserve: String,
    },
    /// The repository mode cannot store this object (e.g. setuid or xattrs in bare-user-only).
    #[error("object {object}: cannot be stored in a {mode} repository: {reason}")]
    ModeRestriction {
        /// The object (checksum may be unknown yet: then the path is named in `object`).
        object: String,
        /// The repository mode.
        mode: &'static str,
        /// Why.
        reason: String,
    },
    /// A source file cannot be committed (device, fifo, non-UTF-8 name, ...).
    #[error("cannot commit {}: {reason}", path.display())]
    UnsupportedFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The filesystem under a bare-user repository lacks `user.*` xattrs.
    #[error("{} does not support user extended attributes, required by bare-user repositories", path.display())]
    XattrsUnsupported {
        /// The repository.
        path: PathBuf,
    },
    /// An object payload was shorter or longer than announced.
    #[error("content of {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was written.
        what: String,
        /// Announced size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// The destination of a checkout or init already exists.
    #[error("{} already exists", .0.display())]
    AlreadyExists(PathBuf),
    /// Directories nest deeper than libostree's `OSTREE_MAX_RECURSION` (256): refused wherever
    /// a tree is walked or written, so no input can exhaust our stack (or libostree's).
    #[error("{what} is nested deeper than {limit} directories (OSTREE_MAX_RECURSION)")]
    TooDeep {
        /// The dirtree object or directory found below the limit.
        what: String,
        /// The limit, [`ostree_format::MAX_RECURSION`].
        limit: usize,
    },
    /// The operation was interrupted by the caller's flag.
    #[error("interrupted")]
    Interrupted,
    /// A caller's input is unusable.
    #[error("{0}")]
    InvalidArgument(String),
    /// A broken invariant of ours (a bug, not bad input): please report it.
    #[error("internal error: {0}")]
    Internal(String),
    /// Labelling (SELinux) what is written failed.
    #[error(transparent)]
    Label(#[from] crate::label::LabelError),
}

impl RepoError {
    /// The coarse class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RepoError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                ErrorKind::NoSpace
            }
            RepoError::Io { .. } => ErrorKind::Io,
            RepoError::InvalidObject { .. }
            | RepoError::Format { .. }
            | RepoError::ChecksumMismatch { .. }
            | RepoError::SizeMismatch { .. }
            | RepoError::Label(_) => ErrorKind::Corrupt,
            RepoError::ObjectNotFound(_) | RepoError::RevNotFound(_) => ErrorKind::NotFound,
            RepoError::NotARepo { .. } | RepoError::AlreadyExists(_) => ErrorKind::Usage,
            RepoError::AmbiguousRev(_)
            | RepoError::InvalidArgument(_)
            | RepoError::InvalidConfig(_) => ErrorKind::Usage,
            RepoError::UnsupportedConfig { .. }
            | RepoError::ModeRestriction { .. }
            | RepoError::UnsupportedFile { .. }
            | RepoError::XattrsUnsupported { .. }
            | RepoError::TooDeep { .. } => ErrorKind::Unsupported,
            RepoError::LockTimeout { .. } | RepoError::RefChanged { .. } => ErrorKind::Locked,
            RepoError::NoSpace { .. } => ErrorKind::NoSpace,
            RepoError::Interrupted => ErrorKind::Interrupted,
            RepoError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl Classify for RepoError {
    fn kind(&self) -> ErrorKind {
        RepoError::kind(self)
    }
}

/// The error for a dirtree found at `depth` (> the limit).
pub(crate) fn too_deep(what: impl std::fmt::Display) -> RepoError {
    RepoError::TooDeep {
        what: what.to_string(),
        limit: ostree_format::MAX_RECURSION,
    }
}

fn fmt_opt(c: &Option<Checksum>) -> String {
    c.map_or_else(|| "no ref".to_string(), |c| c.to_string())
}

/// Shorthand.
pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Attaches an operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, std::io::Error> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| RepoError::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for std::result::Result<T, rustix::io::Errno> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| RepoError::Io {
            op,
            path: path.into(),
            source: e.into(),
        })
    }
}
