//! The hook through which writers (the OCI layer importer, `commit`, the layered-image merge)
//! label what they write — SELinux `security.selinux` — without the engine crates depending on
//! libselinux: the policy lives in `ostree-selinux`, which implements [`Labeler`].

use ostree_format::{FileMeta, S_IFDIR, S_IFMT, Xattrs};

use crate::config::RepoMode;

/// The extended attribute holding an SELinux label.
pub const SELINUX_XATTR: &[u8] = b"security.selinux";

/// A label lookup failed (not "no label": that is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("SELinux label lookup for {path:?}")]
pub struct LabelError {
    /// The path looked up.
    pub path: String,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Gives the label of a path, as libostree's `ostree_sepolicy_get_label` does.
pub trait Labeler: Send + Sync + std::fmt::Debug {
    /// The `security.selinux` value for `path` (absolute, the path as labelled, e.g.
    /// `/usr/etc/passwd`) of `mode` (file type bits included): the context with its trailing
    /// NUL, as libostree stores it. `None` when the policy gives no label (`<<none>>`, no match).
    fn label(&self, path: &str, mode: u32) -> Result<Option<Vec<u8>>, LabelError>;

    /// Identifies the policy and labelling rules: equal ids give equal labels (recorded in
    /// what was labelled, so that it is not labelled again).
    fn id(&self) -> String;
}

/// `xattrs` with `value` as the label: any existing label removed, the new one appended last
/// (libostree appends it after the other attributes).
pub fn with_label(xattrs: &Xattrs, value: Vec<u8>) -> Xattrs {
    let mut pairs: Vec<_> = xattrs
        .pairs()
        .iter()
        .filter(|(n, _)| n != SELINUX_XATTR)
        .cloned()
        .collect();
    pairs.push((SELINUX_XATTR.to_vec(), value));
    Xattrs::from_pairs(pairs)
}

/// Labels `meta` (of the object at `path`) as libostree's commit does in a repository of
/// `mode`: the label replaces any existing one; no label leaves the attributes unchanged.
/// bare-user-only stores no file xattrs, so there only directories are labelled.
pub fn label_meta(
    labeler: &dyn Labeler,
    mode: RepoMode,
    path: &str,
    meta: &mut FileMeta,
) -> Result<(), LabelError> {
    if mode == RepoMode::BareUserOnly && meta.mode & S_IFMT != S_IFDIR {
        return Ok(());
    }
    if let Some(v) = labeler.label(path, meta.mode)? {
        meta.xattrs = with_label(&meta.xattrs, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_replaces_an_existing_one_and_goes_last() {
        let x = Xattrs::from_pairs(vec![
            (SELINUX_XATTR.to_vec(), b"old\0".to_vec()),
            (b"user.a".to_vec(), b"1".to_vec()),
        ]);
        let y = with_label(&x, b"new\0".to_vec());
        assert_eq!(
            y.pairs(),
            [
                (b"user.a".to_vec(), b"1".to_vec()),
                (SELINUX_XATTR.to_vec(), b"new\0".to_vec())
            ]
        );
    }
}
