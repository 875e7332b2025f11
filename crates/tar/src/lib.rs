//! The ostree-container tar format (`shared/docs/container-image-format.md` §3–§7): export a
//! commit as one `tar export` stream or as a commit layer plus chunk layers, and import such
//! layers (in any order, concurrently) into a repository of any mode, verifying every object,
//! that each belongs to the commit, and that the commit is complete before any ref points at it.
//! Plain OCI/Docker ("derived") layers are imported as one ostree commit each
//! ([`import_oci_layer`], spec §8.3).
//!
//! Synchronous by design: callers with async sources run it on a blocking thread.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]
#![deny(missing_docs)]

mod error;
mod export;
mod import;
pub mod layout;
mod writer;

pub use error::{ErrorKind, Location, Result, TarError};
pub use export::{ExportOptions, ExportPlan, XattrsStyle, export_commit};
pub use import::{
    AUTOCREATED_DIRS_KEY, ChunkOutcome, EMPTY_DIRTREE, FILTERED_KEY, IMPORTER_VERSION,
    IMPORTER_VERSION_KEY, ImportLimits, ImportOptions, ImportOutcome, ImportSession, MemoryBudget,
    OciLayerOptions, OciLayerOutcome, REF_ENTRY_COST, SELINUX_POLICY_KEY, VarRule, blob_ref,
    import_oci_layer, import_tar,
};
