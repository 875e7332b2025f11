//! Errors of the format crate.

use ostree_errors::{Classify, ErrorKind};

/// What is wrong with a piece of ostree data. Each variant is a distinct kind callers can match.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// A checksum string is not 64 lowercase hex digits.
    #[error("invalid checksum {0:?}: expected 64 lowercase hexadecimal digits")]
    InvalidChecksum(String),
    /// A checksum in binary form is not 32 bytes.
    #[error("invalid binary checksum of {0} bytes: expected 32")]
    InvalidChecksumBytes(usize),
    /// A GVariant type string could not be parsed.
    #[error("invalid GVariant type string {0:?}")]
    InvalidTypeString(String),
    /// Serialised data is truncated or its framing is inconsistent.
    #[error("malformed GVariant data of type {type_string}: {reason}")]
    Malformed {
        /// The expected type.
        type_string: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// Data decodes but is not the unique normal-form serialisation.
    #[error("GVariant data of type {type_string} is not in normal form")]
    NotNormalForm {
        /// The expected type.
        type_string: String,
    },
    /// A metadata object is larger than libostree accepts.
    #[error("metadata object of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The object's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A dirtree violates ostree's structural rules (names, order, uniqueness).
    #[error("invalid dirtree: {0}")]
    InvalidDirTree(String),
    /// A file or directory name is not allowed in an ostree tree.
    #[error("invalid file name {0:?}: {1}")]
    InvalidFileName(String, &'static str),
    /// A mode has bits ostree does not allow for this kind of object.
    #[error("invalid mode {mode:#o} for {what}")]
    InvalidMode {
        /// The offending mode.
        mode: u32,
        /// What the mode was for.
        what: &'static str,
    },
    /// Extended attributes are not in canonical form (sorted, unique, no empty values).
    #[error("extended attributes are not canonical: {0}")]
    NonCanonicalXattrs(&'static str),
    /// A commit's fields violate ostree's rules.
    #[error("invalid commit: {0}")]
    InvalidCommit(&'static str),
    /// A ref name does not follow ostree's grammar.
    #[error("invalid ref {0:?}: {1}")]
    InvalidRef(String, &'static str),
    /// A symlink target cannot be represented.
    #[error("invalid symlink target: {0}")]
    InvalidSymlinkTarget(&'static str),
}

impl FormatError {
    /// Which rule the bytes broke, for tests and callers that care about the detail.
    pub fn reason(&self) -> FormatReason {
        match self {
            FormatError::Malformed { .. } => FormatReason::Malformed,
            FormatError::NotNormalForm { .. } => FormatReason::NotNormalForm,
            FormatError::TooLarge { .. } => FormatReason::TooLarge,
            _ => FormatReason::Invalid,
        }
    }
}

impl FormatError {
    /// The workspace-wide class: bad bytes are [`ErrorKind::Corrupt`], an invalid ref name given
    /// by a caller is [`ErrorKind::Usage`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            FormatError::TooLarge { .. } => ErrorKind::TooLarge,
            FormatError::InvalidRef(..) => ErrorKind::Usage,
            _ => ErrorKind::Corrupt,
        }
    }
}

impl Classify for FormatError {
    fn kind(&self) -> ErrorKind {
        FormatError::kind(self)
    }
}

/// Detailed reasons of [`FormatError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatReason {
    /// Truncated or inconsistent framing.
    Malformed,
    /// Not the normal-form serialisation.
    NotNormalForm,
    /// Over a size limit.
    TooLarge,
    /// Well-formed but semantically invalid.
    Invalid,
}
