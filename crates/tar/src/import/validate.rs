//! Limits, entry classification, and the cross-layer checks of `finish()`: traversal of the
//! commit through the transaction (staged objects count), membership and completeness.

use ostree_repo::Transaction;
use ostree_repo::format::{Checksum, ObjectName, ObjectType};

use crate::error::{Location, Result, TarError};

/// Bounds on what one layer may contain. Defaults follow the spec (metadata 10 MiB, xattrs
/// 1 MiB) plus our own generous bounds on paths and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Largest metadata object (`OSTREE_MAX_METADATA_SIZE`).
    pub max_metadata: u64,
    /// Largest xattr set.
    pub max_xattrs: u64,
    /// Longest entry path or link target (Linux `PATH_MAX`).
    pub max_path: usize,
    /// Most tar headers per layer (extension headers included).
    pub max_entries: u64,
    /// Most metadata bytes per layer (all dirtrees, dirmetas, commit, commitmeta).
    pub max_metadata_total: u64,
    /// Most bytes held at once by all layers of an import for what input can make grow without
    /// bound: distinct cached xattr sets, and the sets of objects the commit's dirtrees name
    /// (charged at [`REF_ENTRY_COST`] each). Below 256 MiB of peak RSS with the process's own
    /// baseline, whatever the core count.
    pub max_import_memory: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_metadata: 10 * 1024 * 1024,
            max_xattrs: 1024 * 1024,
            max_path: 4096,
            max_entries: 16 * 1024 * 1024,
            max_metadata_total: 4 * 1024 * 1024 * 1024,
            max_import_memory: 192 * 1024 * 1024,
        }
    }
}

/// Bytes charged to the import's memory budget for each object recorded in one of a layer's
/// object sets (the objects its dirtrees name, the objects it wrote). Measured, not derived: a
/// hash-set entry of a checksum is 33 bytes, up to twice that in free slots after growth, and
/// growth briefly holds the old table beside the new one (`tests/memory.rs` measures the peak).
/// With the default budget an import may name about 1.5 million objects.
pub const REF_ENTRY_COST: u64 = 128;

/// The empty dirtree (`00`), which the reference's exporter may omit (spec §6.2).
pub const EMPTY_DIRTREE: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";

/// Everything a commit reaches, as seen through a transaction.
#[derive(Debug, Default)]
pub struct TxnReach {
    /// Every reachable object (held once: no second set of the content objects).
    objects: std::collections::BTreeSet<ObjectName>,
    /// Reachable objects that are absent.
    pub missing: Vec<ObjectName>,
}

impl TxnReach {
    /// Whether the content object `c` is reachable.
    pub fn has_content(&self, c: &Checksum) -> bool {
        self.objects
            .contains(&ObjectName::new(*c, ObjectType::File))
    }
}

fn repo_err(at: &Location, source: ostree_repo::RepoError) -> TarError {
    TarError::Repo {
        at: at.clone(),
        source: Box::new(source),
    }
}

pub fn traverse(txn: &Transaction<'_>, commit: &Checksum, at: &Location) -> Result<TxnReach> {
    let r = txn.traverse_commit(commit).map_err(|e| match e {
        ostree_repo::RepoError::InvalidObject { object, source } => TarError::Corrupt {
            at: at.clone(),
            object: Some(object),
            reason: source.to_string(),
        },
        ostree_repo::RepoError::TooDeep { what, limit } => TarError::TooLarge {
            at: Location {
                path: Some(what.into()),
                ..at.clone()
            },
            what: "dirtree nesting depth (OSTREE_MAX_RECURSION)",
            size: limit as u64 + 1,
            limit: limit as u64,
        },
        e => repo_err(at, e),
    })?;
    if let Some((object, reason)) = r.corrupt.into_iter().next() {
        return Err(TarError::Corrupt {
            at: at.clone(),
            object: Some(object),
            reason,
        });
    }
    Ok(TxnReach {
        objects: r.objects,
        missing: r.missing,
    })
}

/// The checkout view may hold these entry types; everything else is refused (device nodes,
/// fifos, sparse and vendor types are never legitimate in an ostree layer).
pub fn checkout_type_allowed(typeflag: u8) -> bool {
    matches!(typeflag, b'0' | 0 | b'1' | b'2' | b'5')
}

/// Human name of a tar type flag, for errors.
pub fn type_name(typeflag: u8) -> String {
    match typeflag {
        b'0' | 0 => "regular file".into(),
        b'1' => "hardlink".into(),
        b'2' => "symlink".into(),
        b'3' => "character device".into(),
        b'4' => "block device".into(),
        b'5' => "directory".into(),
        b'6' => "fifo".into(),
        b'7' => "contiguous file".into(),
        b'S' => "GNU sparse file".into(),
        t => format!("entry type {:?}", char::from(t)),
    }
}
