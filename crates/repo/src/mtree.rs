//! A directory tree edited in memory and written back as dirtree/dirmeta objects.
//!
//! Directories taken from existing objects stay unloaded until something below them is read or
//! changed, and an unchanged directory is written as the checksums it came from. Composing a
//! tree from others (the layered-image merge) therefore costs what the edits touch, not the size
//! of the trees; content objects are only ever referenced by checksum.

use std::collections::BTreeMap;

use ostree_format::{
    Checksum, DirTree, FileMeta, MAX_RECURSION, ObjectName, ObjectType, S_IFDIR, TreeDir, TreeFile,
};

use crate::error::{RepoError, Result};
use crate::txn::Transaction;

/// Where a tree's objects are read from: a repository or a transaction (which also sees what it
/// staged).
pub trait TreeSource {
    /// The bytes of a metadata object.
    fn load_metadata(&self, name: &ObjectName) -> Result<Vec<u8>>;
}

impl TreeSource for crate::Repo {
    fn load_metadata(&self, name: &ObjectName) -> Result<Vec<u8>> {
        self.load_metadata_bytes(name)
    }
}

impl TreeSource for Transaction<'_> {
    fn load_metadata(&self, name: &ObjectName) -> Result<Vec<u8>> {
        self.load_metadata_bytes(name)
    }
}

/// One entry of a directory.
#[derive(Debug, Clone)]
pub enum MtreeEntry {
    /// A content object (regular file or symlink).
    File(Checksum),
    /// A subdirectory.
    Dir(MutableTree),
}

/// A directory's metadata: known by checksum, or set in memory.
#[derive(Debug, Clone)]
enum Meta {
    Stored(Checksum),
    New(FileMeta),
}

impl Drop for MutableTree {
    /// Iterative, so that dropping a deep tree cannot exhaust the stack.
    fn drop(&mut self) {
        let mut maps: Vec<BTreeMap<String, MtreeEntry>> = self.entries.take().into_iter().collect();
        while let Some(m) = maps.pop() {
            for (_, e) in m {
                if let MtreeEntry::Dir(mut d) = e
                    && let Some(sub) = d.entries.take()
                {
                    maps.push(sub);
                }
            }
        }
    }
}

/// A directory, lazily loaded.
#[derive(Debug, Clone)]
pub struct MutableTree {
    meta: Meta,
    /// The dirtree this directory was loaded from, while its listing is unchanged.
    origin: Option<Checksum>,
    /// The listing; `None` until loaded (then `origin` is set).
    entries: Option<BTreeMap<String, MtreeEntry>>,
}

/// The directory metadata ostree gives directories it creates (`0/0 040755`, no xattrs).
pub fn default_dirmeta() -> FileMeta {
    FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
        xattrs: Default::default(),
    }
}

impl MutableTree {
    /// An empty directory with `meta`.
    pub fn new(meta: FileMeta) -> Self {
        MutableTree {
            meta: Meta::New(meta),
            origin: None,
            entries: Some(BTreeMap::new()),
        }
    }

    /// A new directory with `meta` and `entries`.
    pub fn from_entries(meta: FileMeta, entries: BTreeMap<String, MtreeEntry>) -> Self {
        MutableTree {
            meta: Meta::New(meta),
            origin: None,
            entries: Some(entries),
        }
    }

    /// The directory stored as (`tree`, `meta`), not loaded yet.
    pub fn from_stored(tree: Checksum, meta: Checksum) -> Self {
        MutableTree {
            meta: Meta::Stored(meta),
            origin: Some(tree),
            entries: None,
        }
    }

    /// The root directory of `commit`.
    pub fn from_commit(src: &dyn TreeSource, commit: &Checksum) -> Result<Self> {
        let name = ObjectName::new(*commit, ObjectType::Commit);
        let c = ostree_format::Commit::parse(&src.load_metadata(&name)?).map_err(|source| {
            RepoError::InvalidObject {
                object: name,
                source,
            }
        })?;
        Ok(Self::from_stored(c.root_tree, c.root_meta))
    }

    /// The dirtree this directory still equals, if it is unchanged since it was read.
    pub fn stored_tree(&self) -> Option<Checksum> {
        self.origin
    }

    /// This directory's metadata (read from its dirmeta if it was never replaced).
    pub fn meta(&self, src: &dyn TreeSource) -> Result<FileMeta> {
        match &self.meta {
            Meta::New(m) => Ok(m.clone()),
            Meta::Stored(c) => {
                let name = ObjectName::new(*c, ObjectType::DirMeta);
                FileMeta::parse_dirmeta(&src.load_metadata(&name)?).map_err(|source| {
                    RepoError::InvalidObject {
                        object: name,
                        source,
                    }
                })
            }
        }
    }

    /// The dirmeta checksum if the metadata is unchanged since it was read.
    pub fn stored_meta(&self) -> Option<Checksum> {
        match &self.meta {
            Meta::Stored(c) => Some(*c),
            Meta::New(_) => None,
        }
    }

    /// Replaces this directory's metadata.
    pub fn set_meta(&mut self, meta: FileMeta) {
        self.meta = Meta::New(meta);
    }

    /// Takes over another directory's metadata without reading it.
    pub fn copy_meta_from(&mut self, other: &MutableTree) {
        self.meta = other.meta.clone();
    }

    fn load(&mut self, src: &dyn TreeSource) -> Result<&mut BTreeMap<String, MtreeEntry>> {
        if self.entries.is_none() {
            let tree = self
                .origin
                .ok_or_else(|| RepoError::Internal("unloaded tree without origin".into()))?;
            let name = ObjectName::new(tree, ObjectType::DirTree);
            let t = DirTree::parse(&src.load_metadata(&name)?).map_err(|source| {
                RepoError::InvalidObject {
                    object: name,
                    source,
                }
            })?;
            let mut m = BTreeMap::new();
            for f in t.files {
                m.insert(f.name, MtreeEntry::File(f.checksum));
            }
            for d in t.dirs {
                m.insert(
                    d.name,
                    MtreeEntry::Dir(MutableTree::from_stored(d.tree, d.meta)),
                );
            }
            self.entries = Some(m);
        }
        self.entries
            .as_mut()
            .ok_or_else(|| RepoError::Internal("tree not loaded".into()))
    }

    /// The listing, read if needed. Reading does not count as a change.
    pub fn entries(&mut self, src: &dyn TreeSource) -> Result<&BTreeMap<String, MtreeEntry>> {
        Ok(&*self.load(src)?)
    }

    /// The listing for changing it: the directory is then written anew.
    pub fn entries_mut(
        &mut self,
        src: &dyn TreeSource,
    ) -> Result<&mut BTreeMap<String, MtreeEntry>> {
        self.load(src)?;
        self.origin = None;
        self.entries
            .as_mut()
            .ok_or_else(|| RepoError::Internal("tree not loaded".into()))
    }

    /// Changes entries in place: `f` gets each entry and returns whether it changed it. The
    /// directory is written anew only if some call returned `true` (a relabel that changes
    /// nothing keeps every object).
    pub fn update_entries(
        &mut self,
        src: &dyn TreeSource,
        mut f: impl FnMut(&str, &mut MtreeEntry) -> Result<bool>,
    ) -> Result<bool> {
        let mut changed = false;
        for (name, e) in self.load(src)?.iter_mut() {
            changed |= f(name, e)?;
        }
        if changed {
            self.origin = None;
        }
        Ok(changed)
    }

    /// Removes every entry (an opaque directory).
    pub fn clear(&mut self) {
        self.entries = Some(BTreeMap::new());
        self.origin = None;
    }

    /// The subdirectory `name`, for changing it (marks this directory changed).
    pub fn dir_mut(
        &mut self,
        src: &dyn TreeSource,
        name: &str,
    ) -> Result<Option<&mut MutableTree>> {
        match self.entries_mut(src)?.get_mut(name) {
            Some(MtreeEntry::Dir(d)) => Ok(Some(d)),
            _ => Ok(None),
        }
    }

    /// Inserts or replaces `name`.
    pub fn insert(
        &mut self,
        src: &dyn TreeSource,
        name: String,
        entry: MtreeEntry,
    ) -> Result<Option<MtreeEntry>> {
        Ok(self.entries_mut(src)?.insert(name, entry))
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, src: &dyn TreeSource, name: &str) -> Result<Option<MtreeEntry>> {
        if !self.entries(src)?.contains_key(name) {
            return Ok(None);
        }
        Ok(self.entries_mut(src)?.remove(name))
    }

    /// Looks up a `/`-separated relative path (no `.`/`..` handling: callers normalise).
    pub fn lookup(&mut self, src: &dyn TreeSource, path: &str) -> Result<Option<&MtreeEntry>> {
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        let mut cur = self;
        while let Some(p) = parts.next() {
            let entries = cur.load(src)?;
            match entries.get_mut(p) {
                None => return Ok(None),
                Some(e) if parts.peek().is_none() => return Ok(Some(&*e)),
                Some(MtreeEntry::Dir(d)) => cur = d,
                Some(MtreeEntry::File(_)) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Writes every changed directory below and including this one; returns (dirtree, dirmeta).
    /// Unchanged directories are not loaded or rewritten. Iterative: the changed directories
    /// are listed first (refusing any nested more than [`MAX_RECURSION`] below this one with
    /// [`RepoError::TooDeep`]), then written children first.
    pub fn write(&mut self, txn: &Transaction<'_>) -> Result<(Checksum, Checksum)> {
        let mut pending = PendingWrites::default();
        // Paths (names from here) of the changed directories, parents before children.
        let mut changed: Vec<Vec<String>> = Vec::new();
        let mut todo: Vec<(&MutableTree, Vec<String>)> = vec![(&*self, Vec::new())];
        while let Some((node, path)) = todo.pop() {
            if node.origin.is_some() {
                continue;
            }
            if path.len() > MAX_RECURSION {
                return Err(crate::error::too_deep(format!(
                    "directory {:?} (changed)",
                    path.join("/")
                )));
            }
            let entries = node
                .entries
                .as_ref()
                .ok_or_else(|| RepoError::Internal("tree not loaded".into()))?;
            for (name, e) in entries {
                if let MtreeEntry::Dir(d) = e {
                    let mut p = path.clone();
                    p.push(name.clone());
                    todo.push((d, p));
                }
            }
            changed.push(path);
        }
        for path in changed.iter().rev() {
            let mut cur = &mut *self;
            for name in path {
                cur = match cur.entries.as_mut().and_then(|e| e.get_mut(name)) {
                    Some(MtreeEntry::Dir(d)) => d,
                    _ => {
                        return Err(RepoError::Internal("changed directory vanished".into()));
                    }
                };
            }
            cur.write_one(&mut pending)?;
            pending.flush_if_full(txn)?;
        }
        let r = self.write_one(&mut pending)?;
        pending.flush(txn)?;
        Ok(r)
    }

    /// Serializes this directory's dirmeta if new and its dirtree if changed (into `pending`),
    /// given that every changed subdirectory is already done.
    fn write_one(&mut self, pending: &mut PendingWrites) -> Result<(Checksum, Checksum)> {
        let meta = self.write_meta(pending);
        if let Some(t) = self.origin {
            return Ok((t, meta));
        }
        let mut tree = DirTree::default();
        let entries = self
            .entries
            .as_mut()
            .ok_or_else(|| RepoError::Internal("tree not loaded".into()))?;
        for (name, e) in entries.iter_mut() {
            match e {
                MtreeEntry::File(c) => tree.files.push(TreeFile {
                    name: name.clone(),
                    checksum: *c,
                }),
                MtreeEntry::Dir(d) => {
                    let m = d.write_meta(pending);
                    let t = d
                        .origin
                        .ok_or_else(|| RepoError::Internal("subdirectory not written".into()))?;
                    tree.dirs.push(TreeDir {
                        name: name.clone(),
                        tree: t,
                        meta: m,
                    });
                }
            }
        }
        tree.sort();
        let t = pending.add(ObjectType::DirTree, tree.to_bytes());
        self.origin = Some(t);
        Ok((t, meta))
    }

    fn write_meta(&mut self, pending: &mut PendingWrites) -> Checksum {
        match &self.meta {
            Meta::Stored(c) => *c,
            Meta::New(m) => {
                let c = pending.add(ObjectType::DirMeta, m.to_dirmeta_bytes());
                self.meta = Meta::Stored(c);
                c
            }
        }
    }
}

/// Serialized dirtrees and dirmetas waiting to be written: the tree is walked on one thread
/// (it is a `&mut` walk), and the writes — a file each — go to every core at once.
#[derive(Default)]
struct PendingWrites {
    objects: Vec<(ObjectType, Checksum, Vec<u8>)>,
    /// What `objects` holds (one dirmeta is often shared by many directories).
    queued: std::collections::HashSet<Checksum>,
    bytes: usize,
}

impl PendingWrites {
    /// Written in batches of this many bytes, to bound the memory held.
    const BATCH: usize = 8 << 20;

    /// Queues an object; returns its checksum.
    fn add(&mut self, ty: ObjectType, bytes: Vec<u8>) -> Checksum {
        let c = Checksum::digest(&bytes);
        if self.queued.insert(c) {
            self.bytes += bytes.len();
            self.objects.push((ty, c, bytes));
        }
        c
    }

    fn flush_if_full(&mut self, txn: &Transaction<'_>) -> Result<()> {
        if self.bytes >= Self::BATCH {
            self.flush(txn)?;
        }
        Ok(())
    }

    fn flush(&mut self, txn: &Transaction<'_>) -> Result<()> {
        use rayon::prelude::*;
        let objects = std::mem::take(&mut self.objects);
        self.queued.clear();
        self.bytes = 0;
        objects
            .par_iter()
            .try_for_each(|(ty, c, bytes)| txn.write_metadata(*ty, Some(*c), bytes).map(|_| ()))
    }
}
