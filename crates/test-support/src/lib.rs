//! Shared test harness for the ostree-container workspace.
//!
//! Tests run against the real tools (`ostree`, `skopeo`, `docker-registry`); a missing tool is a
//! test failure with a message naming the Debian package, never a silent pass.

pub mod cli;
pub mod compare;
pub mod layer;
pub mod modern;
pub mod oci;
pub mod ostree_cli;
pub mod registry;
pub mod selinux;
pub mod skopeo;
pub mod tools;
pub mod tree;

/// A scratch directory under /var/tmp: a disk filesystem with user xattrs, which bare-user
/// repositories need (a tmpfs `/tmp` may lack them).
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap()
}
