//! Limits, entry classification, and the cross-layer checks of `finish()`: traversal of the
//! commit through the transaction (staged objects count), membership and completeness.

use std::collections::HashSet;

use ostree_repo::Transaction;
use ostree_repo::format::{Checksum, DirTree, ObjectName, ObjectType};

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
    /// Most bytes of distinct xattr sets held in memory per layer.
    pub max_xattrs_cache: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_metadata: 10 * 1024 * 1024,
            max_xattrs: 1024 * 1024,
            max_path: 4096,
            max_entries: 16 * 1024 * 1024,
            max_metadata_total: 4 * 1024 * 1024 * 1024,
            max_xattrs_cache: 256 * 1024 * 1024,
        }
    }
}

/// The empty dirtree (`00`), which the reference's exporter may omit (spec §6.2).
pub const EMPTY_DIRTREE: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";

/// Everything a commit reaches, as seen through a transaction.
#[derive(Debug, Default)]
pub struct TxnReach {
    /// Reachable content objects.
    pub content: HashSet<Checksum>,
    /// Reachable objects that are absent.
    pub missing: Vec<ObjectName>,
}

fn repo_err(at: &Location, source: ostree_repo::RepoError) -> TarError {
    TarError::Repo {
        at: at.clone(),
        source: Box::new(source),
    }
}

/// Walks `commit` through `txn` (staged and committed objects). Missing metadata and content
/// are collected; a dirtree that is present but invalid is an error (the engine verified it on
/// write, so this means on-disk corruption).
pub fn traverse(txn: &Transaction<'_>, commit: &Checksum, at: &Location) -> Result<TxnReach> {
    let cbytes = txn
        .load_metadata_bytes(&ObjectName::new(*commit, ObjectType::Commit))
        .map_err(|e| repo_err(at, e))?;
    let c = ostree_repo::format::Commit::parse(&cbytes).map_err(|e| TarError::Corrupt {
        at: at.clone(),
        object: Some(ObjectName::new(*commit, ObjectType::Commit)),
        reason: e.to_string(),
    })?;
    let mut r = TxnReach::default();
    let mut seen_meta = HashSet::new();
    let mut seen_tree = HashSet::new();
    let mut check_meta = |m: Checksum, r: &mut TxnReach| -> Result<()> {
        if seen_meta.insert(m) {
            let n = ObjectName::new(m, ObjectType::DirMeta);
            if !txn.has_object(&n).map_err(|e| repo_err(at, e))? {
                r.missing.push(n);
            }
        }
        Ok(())
    };
    check_meta(c.root_meta, &mut r)?;
    let mut stack = vec![c.root_tree];
    while let Some(t) = stack.pop() {
        if !seen_tree.insert(t) {
            continue;
        }
        let n = ObjectName::new(t, ObjectType::DirTree);
        let bytes = match txn.load_metadata_bytes(&n) {
            Ok(b) => b,
            Err(ostree_repo::RepoError::ObjectNotFound(_)) => {
                r.missing.push(n);
                continue;
            }
            Err(e) => return Err(repo_err(at, e)),
        };
        let dt = DirTree::parse(&bytes).map_err(|e| TarError::Corrupt {
            at: at.clone(),
            object: Some(n),
            reason: e.to_string(),
        })?;
        for f in &dt.files {
            if r.content.insert(f.checksum) {
                let fname = ObjectName::new(f.checksum, ObjectType::File);
                if !txn.has_object(&fname).map_err(|e| repo_err(at, e))? {
                    r.missing.push(fname);
                }
            }
        }
        for d in &dt.dirs {
            check_meta(d.meta, &mut r)?;
            stack.push(d.tree);
        }
    }
    r.missing.sort();
    r.missing.dedup();
    Ok(r)
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
