//! Errors, distinct by kind, with messages modelled on libostree's.

pub use ostree_errors::{Classify, ErrorKind};
use std::path::{Path, PathBuf};

/// Why a commit could not be verified (or a configuration read).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// An OpenPGP signature from a trusted key that does not match the commit.
    #[error("{description}")]
    BadSignature {
        /// The signing key's 16-hex-digit ID.
        key_id: String,
        /// The key's primary user ID (`Name <email>`).
        user_id: String,
        /// libostree-style description of every signature (`Signature made … BAD signature from …`).
        description: String,
    },
    /// An OpenPGP signature whose key is in none of the remote's trusted keyrings.
    #[error("{description}")]
    UntrustedKey {
        /// The issuer key ID from the signature.
        key_id: String,
        /// Description of every signature (`Can't check signature: public key not found`).
        description: String,
    },
    /// A good signature from a trusted key that has expired (gpg's EXPKEYSIG; libostree counts
    /// it as invalid, whenever the signature was made).
    #[error("{description}")]
    ExpiredKey {
        /// The signing key's ID.
        key_id: String,
        /// Its primary user ID.
        user_id: String,
        /// Description of every signature.
        description: String,
    },
    /// A good signature from a revoked key (gpg's REVKEYSIG; invalid for libostree).
    #[error("{description}")]
    RevokedKey {
        /// The signing key's ID.
        key_id: String,
        /// Its primary user ID.
        user_id: String,
        /// Description of every signature.
        description: String,
    },
    /// A signature past its own expiration time (gpg's EXPSIG; invalid for libostree).
    #[error("{description}")]
    ExpiredSignature {
        /// The signing key's ID.
        key_id: String,
        /// Its primary user ID.
        user_id: String,
        /// Description of every signature.
        description: String,
    },
    /// ed25519 signatures present but none verifies with a trusted key (a bad signature and an
    /// untrusted key are indistinguishable without key IDs, as in libostree).
    #[error("{message}")]
    Ed25519NotVerified {
        /// The trusted public keys tried (hex).
        tried_keys: Vec<String>,
        /// `ed25519: Signature couldn't be verified with: key '…'`.
        message: String,
    },
    /// The verifier that is enabled found no signatures of its kind.
    #[error("{message}")]
    NoSignatures {
        /// `gpg` or `ed25519`.
        sign_type: &'static str,
        /// libostree's message.
        message: String,
    },
    /// There is no `.commitmeta` at all.
    #[error("Can't verify commit without detached metadata")]
    NoDetachedMetadata,
    /// No `[remote "NAME"]` anywhere.
    #[error("Remote \"{name}\" not found")]
    UnknownRemote {
        /// The remote name.
        name: String,
    },
    /// `gpg-verify=false` and no `sign-verify`.
    #[error(
        "Cannot verify commit for remote {remote}; GPG verification disabled, and no signapi verifiers configured"
    )]
    VerificationDisabled {
        /// The remote name.
        remote: String,
    },
    /// `sign-verify` names a type that is not implemented.
    #[error(
        "Remote \"{remote}\": sign-verify: Requested signature type is not implemented: {name:?}"
    )]
    UnsupportedSignType {
        /// The remote name.
        remote: String,
        /// The type named.
        name: String,
    },
    /// A signature type is required but no key is configured or loadable.
    #[error("{message}")]
    NoKeys {
        /// The remote name.
        remote: String,
        /// libostree's message (`No keys found for required signapi type ed25519`, …).
        message: String,
    },
    /// The detached metadata, a signature or a key cannot be parsed.
    #[error("Malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A configuration or key file is invalid.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading a file failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// [`SignError`] without its data, for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignReason {
    /// [`SignError::BadSignature`]
    BadSignature,
    /// [`SignError::UntrustedKey`]
    UntrustedKey,
    /// [`SignError::ExpiredKey`]
    ExpiredKey,
    /// [`SignError::RevokedKey`]
    RevokedKey,
    /// [`SignError::ExpiredSignature`]
    ExpiredSignature,
    /// [`SignError::Ed25519NotVerified`]
    Ed25519NotVerified,
    /// [`SignError::NoSignatures`]
    NoSignatures,
    /// [`SignError::NoDetachedMetadata`]
    NoDetachedMetadata,
    /// [`SignError::UnknownRemote`]
    UnknownRemote,
    /// [`SignError::VerificationDisabled`]
    VerificationDisabled,
    /// [`SignError::UnsupportedSignType`]
    UnsupportedSignType,
    /// [`SignError::NoKeys`]
    NoKeys,
    /// [`SignError::Malformed`]
    Malformed,
    /// [`SignError::Config`]
    Config,
    /// [`SignError::Io`]
    Io,
}

impl Classify for SignError {
    fn kind(&self) -> ErrorKind {
        SignError::kind(self)
    }
}

impl SignError {
    /// The workspace-wide class.
    pub fn kind(&self) -> ErrorKind {
        use SignReason as R;
        match self.reason() {
            R::Io => ErrorKind::Io,
            R::UnknownRemote | R::Config | R::VerificationDisabled | R::NoKeys => ErrorKind::Usage,
            R::UnsupportedSignType => ErrorKind::Unsupported,
            R::Malformed => ErrorKind::Corrupt,
            _ => ErrorKind::Signature,
        }
    }

    /// Which check failed, for callers that report or test the detail.
    pub fn reason(&self) -> SignReason {
        match self {
            SignError::BadSignature { .. } => SignReason::BadSignature,
            SignError::UntrustedKey { .. } => SignReason::UntrustedKey,
            SignError::ExpiredKey { .. } => SignReason::ExpiredKey,
            SignError::RevokedKey { .. } => SignReason::RevokedKey,
            SignError::ExpiredSignature { .. } => SignReason::ExpiredSignature,
            SignError::Ed25519NotVerified { .. } => SignReason::Ed25519NotVerified,
            SignError::NoSignatures { .. } => SignReason::NoSignatures,
            SignError::NoDetachedMetadata => SignReason::NoDetachedMetadata,
            SignError::UnknownRemote { .. } => SignReason::UnknownRemote,
            SignError::VerificationDisabled { .. } => SignReason::VerificationDisabled,
            SignError::UnsupportedSignType { .. } => SignReason::UnsupportedSignType,
            SignError::NoKeys { .. } => SignReason::NoKeys,
            SignError::Malformed { .. } => SignReason::Malformed,
            SignError::Config { .. } => SignReason::Config,
            SignError::Io { .. } => SignReason::Io,
        }
    }

    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        SignError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        SignError::Malformed {
            what,
            reason: reason.into(),
        }
    }
}
