//! The objects this transaction has staged, kept in memory.
//!
//! An import asks "is this object here already?" several times per object (before reading its
//! payload, before writing it, when proving the commit complete). Answering the staged half from
//! memory instead of a `stat` in the staging directory saves tens of thousands of syscalls per
//! image. The set mirrors the staging directory exactly: it is filled from the directory when an
//! abandoned one is adopted and updated whenever an object is linked in.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use ostree_format::{Checksum, ObjectName, ObjectType};

use crate::error::{IoContext, Result};

#[derive(Default)]
struct Shard {
    /// The staging prefix directory `XX` exists.
    dir_created: bool,
    objects: HashSet<ObjectName>,
}

/// Staged objects, sharded by the first checksum byte (the prefix directory).
pub(super) struct StagedSet {
    shards: Vec<Mutex<Shard>>,
}

impl StagedSet {
    /// The set of what `dir` (a staging directory) already holds.
    pub(super) fn load(dir: &Path) -> Result<Self> {
        let set = StagedSet {
            shards: (0..256).map(|_| Mutex::new(Shard::default())).collect(),
        };
        for entry in fs::read_dir(dir).io("list", dir)? {
            let entry = entry.io("list", dir)?;
            let name = entry.file_name();
            let Some(prefix) = name.to_str() else {
                continue;
            };
            let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            if prefix.len() != 2 || !prefix.bytes().all(lower_hex) {
                continue;
            }
            let Ok(idx) = u8::from_str_radix(prefix, 16) else {
                continue;
            };
            if !entry.file_type().io("stat", entry.path())?.is_dir() {
                continue;
            }
            let mut shard = set.shard(idx);
            shard.dir_created = true;
            let sub = entry.path();
            for obj in fs::read_dir(&sub).io("list", &sub)? {
                let obj = obj.io("list", &sub)?;
                let fname = obj.file_name();
                if let Some(n) = fname.to_str().and_then(|f| parse_name(prefix, f)) {
                    shard.objects.insert(n);
                }
            }
        }
        Ok(set)
    }

    fn shard(&self, idx: u8) -> MutexGuard<'_, Shard> {
        self.shards[usize::from(idx)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `name` is staged.
    pub(super) fn contains(&self, name: &ObjectName) -> bool {
        self.shard(name.checksum.0[0]).objects.contains(name)
    }

    /// Records that `name` is now in the staging directory.
    pub(super) fn insert(&self, name: ObjectName) {
        self.shard(name.checksum.0[0]).objects.insert(name);
    }

    /// Runs `create` unless the prefix directory of `checksum` is known to exist; remembers it.
    pub(super) fn ensure_dir(
        &self,
        checksum: &Checksum,
        create: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut shard = self.shard(checksum.0[0]);
        if !shard.dir_created {
            create()?;
            shard.dir_created = true;
        }
        Ok(())
    }
}

/// `rest.ext` in prefix directory `XX` → the object name (`None` for anything else, such as
/// temporary files).
fn parse_name(prefix: &str, fname: &str) -> Option<ObjectName> {
    let (rest, ext) = fname.split_once('.')?;
    if rest.len() != 62 {
        return None;
    }
    let checksum = format!("{prefix}{rest}").parse::<Checksum>().ok()?;
    Some(ObjectName::new(checksum, ObjectType::from_extension(ext)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_object_names_only() {
        let hex = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
        let n = parse_name(&hex[..2], &format!("{}.dirtree", &hex[2..]));
        assert_eq!(
            n,
            Some(ObjectName::new(hex.parse().unwrap(), ObjectType::DirTree))
        );
        assert_eq!(
            parse_name(&hex[..2], &format!("{}.filez", &hex[2..])).map(|n| n.object_type),
            Some(ObjectType::File)
        );
        assert_eq!(parse_name(&hex[..2], ".tmp-abcdefgh"), None);
        assert_eq!(parse_name(&hex[..2], &format!("{}.bogus", &hex[2..])), None);
        assert_eq!(parse_name("zz", &format!("{}.file", &hex[2..])), None);
    }
}
