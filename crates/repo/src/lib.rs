//! Native OSTree repository engine, byte-compatible with libostree 2022.7: open and create
//! repositories in every writable mode, read and write objects inside transactions that follow
//! libostree's locking and staging protocol, refs, traversal, fsck, commit and checkout.
//! Specification: `shared/docs/ostree-repo-format.md`.
//!
//! Layout: [`Repo`] (open/create, lookup), [`Transaction`] (verified writes, publication),
//! refs, traversal and fsck as methods on [`Repo`], and [`Repo::commit_directory`] /
//! [`Repo::checkout`] on top.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]
#![deny(missing_docs)]

mod checkout;
mod commit;
pub mod config;
mod error;
mod fsck;
pub mod label;
mod mtree;
mod progress;
mod prune;
mod read;
mod refs;
mod repo;
mod sys;
mod traverse;
mod txn;

pub use checkout::{CheckoutOptions, CheckoutStats};
pub use commit::{CommitSpec, TreeOptions};
pub use config::{RepoConfig, RepoMode};
pub use error::{ErrorKind, RepoError, Result};
pub use fsck::FsckReport;
pub use label::{LabelError, Labeler};
pub use mtree::{MtreeEntry, MutableTree, TreeSource, default_dirmeta};
pub use progress::{NoProgress, Progress, check_interrupt};
pub use prune::{PruneOptions, PruneReport};
pub use read::{ContentObject, OSTREEMETA_XATTR};
pub use repo::{Repo, RepoLock};
pub use traverse::Reachable;
pub use txn::{ContentSource, Transaction, TxnStats};

/// Re-exported format crate, so users need one dependency.
pub use ostree_format as format;
