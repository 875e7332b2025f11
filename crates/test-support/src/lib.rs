//! Shared test harness for the ostree-container workspace.
//!
//! Tests run against the real tools (`ostree`, `skopeo`, `docker-registry`); a missing tool is a
//! test failure with a message naming the Debian package, never a silent pass.

pub mod compare;
pub mod oci;
pub mod ostree_cli;
pub mod registry;
pub mod tools;
pub mod tree;
