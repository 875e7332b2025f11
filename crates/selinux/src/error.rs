//! Errors of policy loading and labelling.

use std::path::PathBuf;

/// A policy could not be loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelinuxError {
    /// Reading a policy file failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The policy's `config` is not UTF-8 (libostree reads it as UTF-8 lines).
    #[error("{}: not valid UTF-8", path.display())]
    ConfigNotUtf8 {
        /// The config file.
        path: PathBuf,
    },
    /// libselinux refused the policy's file contexts, or gave no label for `/`.
    #[error("SELinux policy {}: {operation}", root.display())]
    Libselinux {
        /// The policy root (`…/etc/selinux/<type>`).
        root: PathBuf,
        /// The libselinux call.
        operation: String,
        /// libselinux's error.
        #[source]
        source: selinux::errors::Error,
    },
    /// The policy gives `/` no label (libostree refuses such a policy).
    #[error("SELinux policy {}: no label for /", root.display())]
    NoRootLabel {
        /// The policy root.
        root: PathBuf,
    },
    /// The policy is enabled but has no binary policy (`policy/policy.<N>`), which libostree
    /// requires (it checksums it).
    #[error("SELinux policy {}: could not find binary policy file", root.display())]
    NoBinaryPolicy {
        /// The policy root.
        root: PathBuf,
    },
    /// A line of a spec file libselinux would refuse (it then fails `selabel_open`).
    #[error("SELinux file contexts")]
    FileContexts(#[from] crate::fcontext::ParseError),
    /// The policy has neither `file_contexts` nor `file_contexts.bin`.
    #[error("SELinux policy: no {} (nor its .bin)", path.display())]
    NoFileContexts {
        /// The missing spec file.
        path: PathBuf,
    },
    /// Reading the tree holding the policy failed.
    #[error("reading the SELinux policy from the tree")]
    Repo(#[from] Box<ostree_repo::RepoError>),
    /// A path in the policy tree cannot be extracted.
    #[error("SELinux policy tree: {0}")]
    BadTree(String),
}

impl From<ostree_repo::RepoError> for SelinuxError {
    fn from(e: ostree_repo::RepoError) -> Self {
        SelinuxError::Repo(Box::new(e))
    }
}

pub(crate) fn io<'p>(
    op: &'static str,
    path: &'p std::path::Path,
) -> impl FnOnce(std::io::Error) -> SelinuxError + 'p {
    move |source| SelinuxError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
