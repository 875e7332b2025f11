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

use crate::config::RepoMode;
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
    /// The set of what `dir` (a staging directory of a `mode` repository) already holds.
    pub(super) fn load(dir: &Path, mode: RepoMode) -> Result<Self> {
        let set = StagedSet {
            shards: (0..256).map(|_| Mutex::new(Shard::default())).collect(),
        };
        for entry in fs::read_dir(dir).io("list", dir)? {
            let entry = entry.io("list", dir)?;
            let name = entry.file_name();
            let Some(prefix) = name.to_str() else {
                continue;
            };
            if !is_prefix_dir_name(prefix) {
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
                if let Some(n) = fname.to_str().and_then(|f| parse_name(prefix, f, mode)) {
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

/// Whether `name` can be a prefix directory: two lowercase hex digits.
pub(super) fn is_prefix_dir_name(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `rest.ext` in prefix directory `XX` of a `mode` repository → the object name (`None` for
/// anything else: temporary files, content with the other modes' extension).
fn parse_name(prefix: &str, fname: &str, mode: RepoMode) -> Option<ObjectName> {
    let (rest, ext) = fname.split_once('.')?;
    if rest.len() != 62 {
        return None;
    }
    let ty = ObjectType::from_extension(ext)?;
    if ty == ObjectType::File && ext != mode.content_extension() {
        return None;
    }
    let checksum = format!("{prefix}{rest}").parse::<Checksum>().ok()?;
    Some(ObjectName::new(checksum, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_object_names_only() {
        let hex = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
        let p = &hex[..2];
        let n = parse_name(p, &format!("{}.dirtree", &hex[2..]), RepoMode::Bare);
        assert_eq!(
            n,
            Some(ObjectName::new(hex.parse().unwrap(), ObjectType::DirTree))
        );
        let filez = format!("{}.filez", &hex[2..]);
        let file = format!("{}.file", &hex[2..]);
        assert_eq!(
            parse_name(p, &filez, RepoMode::Archive).map(|n| n.object_type),
            Some(ObjectType::File)
        );
        // Content under the other modes' extension is not this repository's object.
        assert_eq!(parse_name(p, &filez, RepoMode::BareUser), None);
        assert_eq!(parse_name(p, &file, RepoMode::Archive), None);
        assert_eq!(parse_name(p, ".tmp-abcdefgh", RepoMode::Bare), None);
        let bogus = format!("{}.bogus", &hex[2..]);
        assert_eq!(parse_name(p, &bogus, RepoMode::Bare), None);
        assert_eq!(parse_name("zz", &file, RepoMode::Bare), None);
        assert!(is_prefix_dir_name("0a"));
        assert!(!is_prefix_dir_name("0A"));
        assert!(!is_prefix_dir_name("+a"));
        assert!(!is_prefix_dir_name("abc"));
    }
}
