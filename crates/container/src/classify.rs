//! One place that knows every error type of the workspace, so that callers holding an opaque
//! chain (`anyhow::Error`, `Box<dyn Error>`) get its [`ErrorKind`] with one call.

use std::error::Error;

pub use ostree_errors::{Chain, Classify, ErrorKind, chain};

use crate::policy::PolicyError;
use crate::{EncapsulateError, FetchError, ImageRefError, StoreError};

impl Classify for ImageRefError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

impl Classify for PolicyError {
    fn kind(&self) -> ErrorKind {
        match self {
            PolicyError::Read { .. } => ErrorKind::Io,
            _ => ErrorKind::Usage,
        }
    }
}

/// The kind of `e` itself if it is one of the workspace's error types.
fn kind_of_one(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    fn as_kind<T: Error + Classify + 'static>(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
        e.downcast_ref::<T>().map(Classify::kind)
    }
    as_kind::<StoreError>(e)
        .or_else(|| as_kind::<EncapsulateError>(e))
        .or_else(|| as_kind::<FetchError>(e))
        .or_else(|| as_kind::<ostree_tar::TarError>(e))
        .or_else(|| as_kind::<ostree_repo::RepoError>(e))
        .or_else(|| as_kind::<ostree_sign::SignError>(e))
        .or_else(|| as_kind::<ostree_repo::format::FormatError>(e))
        .or_else(|| as_kind::<ImageRefError>(e))
        .or_else(|| as_kind::<PolicyError>(e))
}

/// The kind of the outermost error of ours in `e`'s chain (it already folds in its causes), or
/// `None` if the chain holds none (plain I/O or parse errors of a caller).
pub fn error_kind(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(k) = kind_of_one(c) {
            return Some(k);
        }
        cur = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("while doing something")]
    struct Wrapper(#[source] StoreError);

    #[test]
    fn finds_the_outermost_kind_through_foreign_wrappers() {
        let e = Wrapper(StoreError::Interrupted { image: "i".into() });
        assert_eq!(error_kind(&e), Some(ErrorKind::Interrupted));
        let io = std::io::Error::other("plain");
        assert_eq!(error_kind(&io), None);
        let tar = ostree_tar::TarError::Internal("x".into());
        assert_eq!(error_kind(&tar), Some(ErrorKind::Internal));
    }

    #[test]
    fn messages_say_only_their_level() {
        let e = StoreError::Repo {
            image: "docker://x".into(),
            source: Box::new(ostree_repo::RepoError::RevNotFound("r".into())),
        };
        assert_eq!(e.to_string(), "docker://x");
        assert_eq!(chain(&e), "docker://x: revision \"r\" not found");
    }
}
