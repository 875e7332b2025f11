//! xattr sets in a layer: `.file-xattrs` blobs, `.file-xattrs-link` references (regular or
//! hardlink), and the v0 `xattrs/<sha256>` blobs with `.file.xattrs` hardlinks.

use std::io::Read;

use ostree_repo::format::{Checksum, ObjectName, ObjectType, Xattrs};

use super::entry::{LayerImporter, invalid};
use super::reader::{EntryHeader, TarReader};
use crate::error::{Location, Result, TarError};
use crate::layout::{OBJECTS_PREFIX, TarObjectKind, normalize, parse_object_relpath};

impl LayerImporter<'_, '_, '_, '_> {
    pub(super) fn no_pending(&self, at: &Location) -> Result<()> {
        match &self.pending {
            Some((prev, _)) => Err(invalid(
                at,
                format!("dangling xattrs reference for {prev}: no object followed it"),
            )),
            None => Ok(()),
        }
    }

    /// Parses a hardlink target under `prefix`: an object path (`XX/REST.ext`) or, for the v0
    /// `xattrs/` directory, a bare checksum.
    pub(super) fn link_target(
        &self,
        h: &EntryHeader,
        prefix: &str,
        at: &Location,
    ) -> Result<(Checksum, Option<TarObjectKind>)> {
        let unsafe_link = |reason: String| TarError::UnsafePath {
            at: at.clone(),
            reason,
        };
        let target = std::str::from_utf8(&h.link)
            .map_err(|_| unsafe_link("non-UTF-8 link target".into()))?;
        let nt = normalize(target).map_err(|r| unsafe_link(format!("link target: {r}")))?;
        let rel = nt
            .path
            .strip_prefix(prefix)
            .ok_or_else(|| unsafe_link(format!("link target {target:?} outside {prefix}")))?;
        if prefix == OBJECTS_PREFIX {
            let (c, k) = parse_object_relpath(rel).map_err(|r| invalid(at, r))?;
            Ok((c, Some(k)))
        } else {
            let c = rel
                .parse::<Checksum>()
                .map_err(|_| invalid(at, format!("invalid xattrs name {rel:?}")))?;
            Ok((c, None))
        }
    }

    pub(super) fn cached(&self, xc: &Checksum, at: &Location) -> Result<Xattrs> {
        self.xattrs_cache.get(xc).cloned().ok_or_else(|| {
            invalid(
                at,
                format!("xattrs reference to {xc}, which this layer has not provided"),
            )
        })
    }

    pub(super) fn cache(&mut self, xc: Checksum, x: Xattrs, at: &Location) -> Result<()> {
        if self.xattrs_cache.contains_key(&xc) {
            return Ok(());
        }
        let size: u64 = x
            .pairs()
            .iter()
            .map(|(n, v)| (n.len() + v.len()) as u64 + 16)
            .sum();
        let budget = self.session.memory_budget();
        if let Err(used) = budget.charge(size) {
            return Err(TarError::TooLarge {
                at: at.clone(),
                what: "distinct xattr sets held at once by the layers of an import",
                size: used,
                limit: budget.limit(),
            });
        }
        self.cache_bytes += size;
        self.xattrs_cache.insert(xc, x);
        Ok(())
    }

    pub(super) fn read_xattrs<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        expected: Option<Checksum>,
        at: &Location,
    ) -> Result<Xattrs> {
        let limit = self.session.options.limits.max_xattrs;
        let bytes = self.read_small(tr, h, limit, "xattr set", at)?;
        let actual = Checksum::digest(&bytes);
        if let Some(e) = expected
            && e != actual
        {
            return Err(TarError::Corrupt {
                at: at.clone(),
                object: Some(ObjectName::new(e, ObjectType::FileXattrs)),
                reason: format!("content hashes to {actual}"),
            });
        }
        Xattrs::from_bytes(&bytes).map_err(|e| TarError::Corrupt {
            at: at.clone(),
            object: Some(ObjectName::new(actual, ObjectType::FileXattrs)),
            reason: e.to_string(),
        })
    }

    pub(super) fn legacy_xattrs_blob<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        name: &str,
        at: &Location,
    ) -> Result<()> {
        let xc = name
            .parse::<Checksum>()
            .map_err(|_| invalid(at, format!("invalid xattrs name {name:?}")))?;
        self.legacy = true;
        let x = self.read_xattrs(tr, h, Some(xc), at)?;
        self.cache(xc, x, at)
    }
}

/// A memory ceiling shared by every layer of one import (and, through
/// [`super::ImportOptions::memory_budget`], by the sessions of one pull): layers are imported
/// concurrently, one per core, so a per-layer cap would multiply with the core count.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: std::sync::atomic::AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryBudget {
            limit,
            used: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The ceiling.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes taken now.
    pub fn used(&self) -> u64 {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Takes `n` bytes; `Err(total that would be used)` (nothing taken) past the limit.
    pub fn charge(&self, n: u64) -> std::result::Result<(), u64> {
        use std::sync::atomic::Ordering;
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(n);
            if next > self.limit {
                return Err(next);
            }
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(v) => cur = v,
            }
        }
    }

    /// Gives `n` bytes back.
    pub fn release(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }
}
