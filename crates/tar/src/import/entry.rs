//! Importing one layer: the per-entry state machine (container-image-format §6.1, §6.2, §6.3).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ostree_repo::format::{
    Checksum, Commit, DirTree, FileMeta, MetaDict, ObjectName, ObjectType, S_IFDIR, S_IFLNK,
    S_IFREG, TreeFile, Xattrs,
};
use ostree_repo::{ContentSource, RepoError};

use super::parallel::{self, BufThenErr, Job, Payload, Pool, SMALL_OBJECT_MAX};
use super::reader::{EntryHeader, ReadError, TarReader};
use super::validate::{REF_ENTRY_COST, checkout_type_allowed, type_name};
use super::{ChunkOutcome, ImportSession};
use crate::error::{Location, Result, TarError};
use crate::layout::{OBJECTS_PREFIX, REPO_PREFIX, TarObjectKind, normalize, parse_object_relpath};

/// Which role the layer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerKind {
    Commit,
    Chunk,
}

/// What a finished layer contributed.
pub(crate) enum LayerResult {
    Commit(Checksum),
    Chunk(ChunkOutcome, Vec<Checksum>),
}

pub(crate) struct LayerImporter<'a, 's, 't, 'r> {
    pub(super) session: &'a ImportSession<'s, 't, 'r>,
    pub(super) kind: LayerKind,
    pub(super) layer: std::sync::Arc<str>,
    pub(super) digest: Option<String>,
    pub(super) xattrs_cache: HashMap<Checksum, Xattrs>,
    pub(super) cache_bytes: u64,
    pub(super) pending: Option<(Checksum, Xattrs)>,
    pub(super) legacy: bool,
    pub(super) seen_content: HashSet<Checksum>,
    pub(super) commit: Option<Checksum>,
    pub(super) last_was_commit: bool,
    pub(super) any_object: bool,
    pub(super) allowed_meta: HashSet<ObjectName>,
    pub(super) allowed_content: HashSet<Checksum>,
    pub(super) metadata_total: u64,
    /// Bytes of the memory budget taken for entries of the object sets above.
    pub(super) set_bytes: u64,
    /// Workers writing small content objects (`None`: everything is written inline).
    pub(super) pool: Option<Arc<Pool>>,
}

/// Closes the pool when the parser is done, also when it unwinds (so the workers exit and the
/// scope can join them).
struct CloseOnDrop<'p>(&'p Pool);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Regular-file type flags (`0`, and NUL of old tars).
pub(super) fn is_regular(t: u8) -> bool {
    t == b'0' || t == 0
}

/// A reader failure as the importer's error at `at`.
pub(super) fn read_err(at: &Location, e: ReadError) -> TarError {
    match e {
        ReadError::Truncated(reason) => TarError::Truncated {
            at: at.clone(),
            reason,
        },
        ReadError::Corrupt(reason) => TarError::Corrupt {
            at: at.clone(),
            object: None,
            reason,
        },
        ReadError::TooLarge(what, size, limit) => TarError::TooLarge {
            at: at.clone(),
            what,
            size,
            limit,
        },
        ReadError::Io(source) => TarError::Io {
            at: at.clone(),
            source,
        },
    }
}

pub(super) fn invalid(at: &Location, reason: impl Into<String>) -> TarError {
    TarError::Invalid {
        at: at.clone(),
        reason: reason.into(),
    }
}

/// An engine failure as the importer's error at `at`.
pub(super) fn repo(at: &Location) -> impl FnOnce(RepoError) -> TarError + '_ {
    move |source| TarError::Repo {
        at: at.clone(),
        source: Box::new(source),
    }
}

impl<'a, 's, 't, 'r> LayerImporter<'a, 's, 't, 'r> {
    pub(crate) fn new(
        session: &'a ImportSession<'s, 't, 'r>,
        kind: LayerKind,
        digest: Option<&str>,
    ) -> Self {
        let role = match kind {
            LayerKind::Commit => "commit layer",
            LayerKind::Chunk => "chunk layer",
        };
        LayerImporter {
            session,
            kind,
            layer: match digest {
                Some(d) => format!("{role} {d}").into(),
                None => role.into(),
            },
            digest: digest.map(str::to_string),
            xattrs_cache: HashMap::new(),
            cache_bytes: 0,
            pending: None,
            legacy: false,
            seen_content: HashSet::new(),
            commit: None,
            last_was_commit: false,
            any_object: false,
            allowed_meta: HashSet::new(),
            allowed_content: HashSet::new(),
            set_bytes: 0,
            metadata_total: 0,
            pool: None,
        }
    }

    fn at_layer(&self) -> Location {
        Location {
            layer: self.layer.clone(),
            ..Default::default()
        }
    }

    /// Reads the whole layer once, then drains what follows the end marker. Small content
    /// objects are written by worker threads; all of them have finished when this returns.
    pub(crate) fn run(mut self, reader: impl Read) -> Result<LayerResult> {
        let workers = parallel::worker_count();
        let parsed = if workers > 1 {
            let pool = Arc::new(Pool::new());
            self.pool = Some(pool.clone());
            let txn = self.session.txn;
            let interrupt = self.session.interrupt;
            let parsed = std::thread::scope(|s| {
                for _ in 0..workers {
                    let p = &*pool;
                    s.spawn(move || p.work(txn, interrupt));
                }
                let _close = CloseOnDrop(&pool);
                self.read_entries(reader)
            });
            self.pool = None;
            // A failed write precedes anything the parser found later in the stream.
            if let Some(e) = pool.first_error() {
                return Err(e);
            }
            parsed
        } else {
            self.read_entries(reader)
        };
        parsed?;
        if self.legacy {
            self.session.note_legacy();
        }
        let at = self.at_layer();
        if let Some((c, _)) = &self.pending {
            return Err(invalid(
                &at,
                format!("xattrs reference for {c} not followed by its object"),
            ));
        }
        match self.kind {
            LayerKind::Commit => {
                let c = self
                    .commit
                    .ok_or_else(|| invalid(&at, "commit object not found"))?;
                Ok(LayerResult::Commit(c))
            }
            LayerKind::Chunk => self.finish_chunk(&at),
        }
    }

    /// The entry loop and the drain. When a worker has failed, stops early with a placeholder
    /// error (the caller reports the worker's).
    fn read_entries(&mut self, reader: impl Read) -> Result<()> {
        let limits = self.session.options.limits;
        let mut tr = TarReader::new(reader, limits.max_path);
        loop {
            if self
                .session
                .interrupt
                .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                return Err(TarError::Interrupted);
            }
            if self.pool.as_ref().is_some_and(|p| p.failed()) {
                return Err(worker_failed());
            }
            let mut at = self.at_layer();
            at.entry = Some(tr.headers);
            let h = match tr.next_entry() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => return Err(read_err(&at, e)),
            };
            if tr.headers > limits.max_entries {
                return Err(TarError::TooLarge {
                    at,
                    what: "tar header count",
                    size: tr.headers,
                    limit: limits.max_entries,
                });
            }
            at.path = Some(String::from_utf8_lossy(&h.path).into());
            self.entry(&mut tr, &h, &at)?;
        }
        let at = self.at_layer();
        tr.drain().map_err(|e| read_err(&at, e))?;
        Ok(())
    }

    /// The pool, if object `c` should be written by it: it is not in the repository yet (an
    /// object already present is skipped without reading its payload). `dup`: this layer has
    /// seen `c` before; its write may still be in flight, so wait for the workers first.
    fn pool_for(&self, c: Checksum, dup: bool) -> Option<Arc<Pool>> {
        let pool = self.pool.clone()?;
        if dup {
            pool.wait_idle();
        }
        match self
            .session
            .txn
            .has_object(&ObjectName::new(c, ObjectType::File))
        {
            Ok(false) => Some(pool),
            // Present, or the check failed: the inline path skips or reports it as before.
            _ => None,
        }
    }

    /// Writes the synthetic object-set commit (spec §7).
    fn finish_chunk(mut self, at: &Location) -> Result<LayerResult> {
        let txn = self.session.txn;
        let mut objects: Vec<Checksum> =
            std::mem::take(&mut self.seen_content).into_iter().collect();
        objects.sort();
        let tree = DirTree {
            files: objects
                .iter()
                .map(|c| TreeFile {
                    name: c.to_hex(),
                    checksum: *c,
                })
                .collect(),
            dirs: Vec::new(),
        };
        let root_tree = txn
            .write_metadata(ObjectType::DirTree, None, &tree.to_bytes())
            .map_err(repo(at))?;
        let dirmeta = FileMeta {
            uid: 0,
            gid: 0,
            mode: S_IFDIR | 0o755,
            xattrs: Xattrs::new(),
        };
        let root_meta = txn
            .write_metadata(ObjectType::DirMeta, None, &dirmeta.to_dirmeta_bytes())
            .map_err(repo(at))?;
        let commit = Commit {
            metadata: MetaDict::default(),
            parent: None,
            related: Vec::new(),
            subject: String::new(),
            body: String::new(),
            timestamp: 0,
            root_tree,
            root_meta,
        };
        let synthetic_commit = txn
            .write_metadata(ObjectType::Commit, None, &commit.to_bytes())
            .map_err(repo(at))?;
        Ok(LayerResult::Chunk(
            ChunkOutcome {
                digest: self.digest.take(),
                synthetic_commit,
                objects: objects.len(),
            },
            objects,
        ))
    }

    fn entry<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        at: &Location,
    ) -> Result<()> {
        let path = std::str::from_utf8(&h.path).map_err(|_| invalid(at, "non-UTF-8 path"))?;
        let np = normalize(path).map_err(|r| TarError::UnsafePath {
            at: at.clone(),
            reason: r.into(),
        })?;
        if np.dot_prefixed && !np.path.is_empty() {
            self.legacy = true;
        }
        if !checkout_type_allowed(h.typeflag) {
            return Err(TarError::Unsupported {
                at: at.clone(),
                reason: format!("{} in an ostree layer", type_name(h.typeflag)),
            });
        }
        if h.typeflag == b'5' {
            return Ok(());
        }
        if let Some(rest) = np.path.strip_prefix(REPO_PREFIX) {
            if let Some(obj) = rest.strip_prefix("objects/") {
                return self.object(tr, h, obj, at);
            }
            if let Some(name) = rest.strip_prefix("xattrs/") {
                return self.legacy_xattrs_blob(tr, h, name, at);
            }
        }
        // Checkout view, repo config, refs: never materialised; only hardlinks are checked so
        // that nothing in the layer points outside it.
        if h.typeflag == b'1' {
            self.check_checkout_hardlink(h, at)?;
        }
        Ok(())
    }

    fn check_checkout_hardlink(&self, h: &EntryHeader, at: &Location) -> Result<()> {
        let unsafe_link = |reason: String| TarError::UnsafePath {
            at: at.clone(),
            reason,
        };
        let target = std::str::from_utf8(&h.link)
            .map_err(|_| unsafe_link("non-UTF-8 hardlink target".into()))?;
        let nt = normalize(target).map_err(|r| unsafe_link(format!("hardlink target: {r}")))?;
        let ok = nt
            .path
            .strip_prefix(OBJECTS_PREFIX)
            .and_then(|rel| parse_object_relpath(rel).ok())
            .is_some_and(|(c, k)| k == TarObjectKind::File && self.seen_content.contains(&c));
        if !ok {
            return Err(unsafe_link(format!(
                "hardlink to {target:?} does not name a content object of this layer"
            )));
        }
        Ok(())
    }

    pub(super) fn read_small<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        limit: u64,
        what: &'static str,
        at: &Location,
    ) -> Result<Vec<u8>> {
        if !is_regular(h.typeflag) {
            return Err(invalid(
                at,
                format!(
                    "{what} must be a regular file, found {}",
                    type_name(h.typeflag)
                ),
            ));
        }
        if h.size > limit {
            return Err(TarError::TooLarge {
                at: at.clone(),
                what,
                size: h.size,
                limit,
            });
        }
        let mut v = Vec::with_capacity(h.size as usize);
        tr.data().read_to_end(&mut v).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                TarError::Truncated {
                    at: at.clone(),
                    reason: "entry data",
                }
            } else {
                TarError::Io {
                    at: at.clone(),
                    source: e,
                }
            }
        })?;
        Ok(v)
    }

    fn read_metadata<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        name: ObjectName,
        at: &Location,
    ) -> Result<Vec<u8>> {
        let limits = self.session.options.limits;
        let bytes = self.read_small(tr, h, limits.max_metadata, "metadata object", at)?;
        self.metadata_total += bytes.len() as u64;
        if self.metadata_total > limits.max_metadata_total {
            return Err(TarError::TooLarge {
                at: at.clone(),
                what: "metadata in one layer",
                size: self.metadata_total,
                limit: limits.max_metadata_total,
            });
        }
        let actual = Checksum::digest(&bytes);
        if name.object_type != ObjectType::CommitMeta && actual != name.checksum {
            return Err(TarError::Corrupt {
                at: at.clone(),
                object: Some(name),
                reason: format!("content hashes to {actual}"),
            });
        }
        Ok(bytes)
    }

    fn object<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        rel: &str,
        at: &Location,
    ) -> Result<()> {
        let (c, kind) = parse_object_relpath(rel).map_err(|r| invalid(at, r))?;
        let after_commit = std::mem::replace(&mut self.last_was_commit, false);
        let first = !std::mem::replace(&mut self.any_object, true);
        let is_meta = matches!(
            kind,
            TarObjectKind::Commit
                | TarObjectKind::CommitMeta
                | TarObjectKind::DirTree
                | TarObjectKind::DirMeta
        );
        if is_meta && self.kind == LayerKind::Chunk {
            return Err(invalid(
                at,
                format!("metadata object {rel} in a chunk layer"),
            ));
        }
        if self.kind == LayerKind::Commit && self.commit.is_none() && kind != TarObjectKind::Commit
        {
            return Err(invalid(
                at,
                "the first object of a commit layer must be the commit",
            ));
        }
        let txn = self.session.txn;
        match kind {
            TarObjectKind::Commit => {
                if self.commit.is_some() || !first {
                    return Err(invalid(at, format!("unexpected second commit object {c}")));
                }
                let name = ObjectName::new(c, ObjectType::Commit);
                let bytes = self.read_metadata(tr, h, name, at)?;
                let parsed = Commit::parse(&bytes).map_err(|e| TarError::Corrupt {
                    at: at.clone(),
                    object: Some(name),
                    reason: e.to_string(),
                })?;
                self.session.claim_commit(c, at)?;
                let repo_ = txn.repo();
                if !repo_.has_object(&name).map_err(repo(at))? || repo_.is_commit_partial(&c) {
                    txn.mark_partial(&c).map_err(repo(at))?;
                }
                txn.write_metadata(ObjectType::Commit, Some(c), &bytes)
                    .map_err(repo(at))?;
                self.commit = Some(c);
                self.last_was_commit = true;
                self.allowed_meta
                    .insert(ObjectName::new(parsed.root_tree, ObjectType::DirTree));
                self.allowed_meta
                    .insert(ObjectName::new(parsed.root_meta, ObjectType::DirMeta));
                self.charge_set_entries(2, at)?;
            }
            TarObjectKind::CommitMeta => {
                if !after_commit || self.commit != Some(c) {
                    return Err(invalid(
                        at,
                        "detached metadata must directly follow its commit",
                    ));
                }
                let bytes =
                    self.read_metadata(tr, h, ObjectName::new(c, ObjectType::CommitMeta), at)?;
                if self.session.options.replace_detached_metadata {
                    txn.write_commitmeta(&c, &bytes).map_err(repo(at))?;
                } else {
                    txn.write_commitmeta_unless_present(&c, &bytes)
                        .map_err(repo(at))?;
                }
            }
            TarObjectKind::DirTree | TarObjectKind::DirMeta => {
                let ty = if kind == TarObjectKind::DirTree {
                    ObjectType::DirTree
                } else {
                    ObjectType::DirMeta
                };
                let name = ObjectName::new(c, ty);
                if !self.allowed_meta.contains(&name) {
                    return Err(self.unreachable(at, name));
                }
                let bytes = self.read_metadata(tr, h, name, at)?;
                txn.write_metadata(ty, Some(c), &bytes).map_err(repo(at))?;
                if ty == ObjectType::DirTree {
                    let dt = DirTree::parse(&bytes).map_err(|e| TarError::Corrupt {
                        at: at.clone(),
                        object: Some(name),
                        reason: e.to_string(),
                    })?;
                    let mut new = 0u64;
                    for f in dt.files {
                        new += u64::from(self.allowed_content.insert(f.checksum));
                    }
                    for d in dt.dirs {
                        new += u64::from(
                            self.allowed_meta
                                .insert(ObjectName::new(d.tree, ObjectType::DirTree)),
                        );
                        new += u64::from(
                            self.allowed_meta
                                .insert(ObjectName::new(d.meta, ObjectType::DirMeta)),
                        );
                    }
                    self.charge_set_entries(new, at)?;
                }
            }
            TarObjectKind::FileXattrs => {
                let x = self.read_xattrs(tr, h, Some(c), at)?;
                self.cache(c, x, at)?;
            }
            TarObjectKind::FileXattrsLink => {
                self.no_pending(at)?;
                let x = match h.typeflag {
                    t if is_regular(t) => self.read_xattrs(tr, h, None, at)?,
                    b'1' => {
                        let (xc, xk) = self.link_target(h, OBJECTS_PREFIX, at)?;
                        if xk != Some(TarObjectKind::FileXattrs) {
                            return Err(invalid(at, "xattrs link must point to a .file-xattrs"));
                        }
                        self.cached(&xc, at)?
                    }
                    t => {
                        return Err(invalid(
                            at,
                            format!(
                                "xattrs link must be a file or hardlink, found {}",
                                type_name(t)
                            ),
                        ));
                    }
                };
                self.pending = Some((c, x));
            }
            TarObjectKind::LegacyXattrsRef => {
                self.no_pending(at)?;
                if h.typeflag != b'1' {
                    return Err(invalid(at, "v0 xattrs reference must be a hardlink"));
                }
                let (xc, _) = self.link_target(h, "sysroot/ostree/repo/xattrs/", at)?;
                self.legacy = true;
                let x = self.cached(&xc, at)?;
                self.pending = Some((c, x));
            }
            TarObjectKind::File => self.content(tr, h, c, at)?,
        }
        Ok(())
    }

    fn unreachable(&self, at: &Location, object: ObjectName) -> TarError {
        match self.commit {
            Some(commit) => TarError::Unreachable {
                at: at.clone(),
                object,
                commit,
            },
            None => invalid(at, format!("object {object} before the commit")),
        }
    }

    fn content<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        c: Checksum,
        at: &Location,
    ) -> Result<()> {
        let name = ObjectName::new(c, ObjectType::File);
        let xattrs = match self.pending.take() {
            Some((f, x)) if f == c => x,
            Some((f, _)) => {
                return Err(invalid(
                    at,
                    format!("xattrs reference for {f} followed by object {c}"),
                ));
            }
            None if self.legacy => Xattrs::new(),
            None => return Err(invalid(at, format!("missing xattrs reference for {c}"))),
        };
        let mut dup = false;
        match self.kind {
            LayerKind::Commit => {
                if !self.allowed_content.contains(&c) {
                    return Err(self.unreachable(at, name));
                }
                dup = !self.seen_content.insert(c);
            }
            LayerKind::Chunk => {
                if !self.seen_content.insert(c) {
                    return Err(invalid(
                        at,
                        format!("duplicate object {name} in a chunk layer"),
                    ));
                }
            }
        }
        if !dup {
            self.charge_set_entries(1, at)?;
        }
        let txn = self.session.txn;
        match h.typeflag {
            t if is_regular(t) => {
                let meta = FileMeta {
                    uid: h.uid,
                    gid: h.gid,
                    mode: S_IFREG | (h.mode & 0o7777),
                    xattrs,
                };
                if h.size <= SMALL_OBJECT_MAX
                    && let Some(pool) = self.pool_for(c, dup)
                {
                    let mut buf = Vec::with_capacity(h.size as usize);
                    let read = tr.data().read_to_end(&mut buf);
                    if read.is_err() || buf.len() as u64 != h.size {
                        // Let the inline path see the same bytes and the same error.
                        let mut r = BufThenErr {
                            buf,
                            pos: 0,
                            err: read.err(),
                        };
                        txn.write_content(
                            Some(c),
                            &meta,
                            ContentSource::Regular {
                                size: h.size,
                                reader: &mut r,
                            },
                        )
                        .map_err(repo(at))?;
                        return Ok(());
                    }
                    let job = Job {
                        entry: at.entry.unwrap_or(0),
                        at: at.clone(),
                        checksum: c,
                        meta,
                        payload: Payload::Regular { buf },
                    };
                    if !pool.dispatch(job) {
                        // A worker failed; the caller reports its error.
                        return Err(worker_failed());
                    }
                    return Ok(());
                }
                let mut data = tr.data();
                txn.write_content(
                    Some(c),
                    &meta,
                    ContentSource::Regular {
                        size: h.size,
                        reader: &mut data,
                    },
                )
                .map_err(repo(at))?;
            }
            b'2' => {
                let target = std::str::from_utf8(&h.link)
                    .map_err(|_| invalid(at, "non-UTF-8 symlink target"))?;
                let meta = FileMeta {
                    uid: h.uid,
                    gid: h.gid,
                    mode: S_IFLNK | 0o777,
                    xattrs,
                };
                if let Some(pool) = self.pool_for(c, dup) {
                    let job = Job {
                        entry: at.entry.unwrap_or(0),
                        at: at.clone(),
                        checksum: c,
                        meta,
                        payload: Payload::Symlink(target.to_string()),
                    };
                    if !pool.dispatch(job) {
                        return Err(worker_failed());
                    }
                    return Ok(());
                }
                txn.write_content(Some(c), &meta, ContentSource::Symlink { target })
                    .map_err(repo(at))?;
            }
            t => {
                return Err(invalid(
                    at,
                    format!(
                        "content object must be a regular file or symlink, found {}",
                        type_name(t)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The placeholder the parser stops with when a writer thread failed: the caller reports that
/// thread's error instead; only a thread that died without one (a panic) leaves this standing.
impl LayerImporter<'_, '_, '_, '_> {
    /// Charges the memory budget for `n` new object-set entries ([`REF_ENTRY_COST`] each), so
    /// that dirtrees naming millions of (phantom) objects are refused before they cost more
    /// memory than the budget, not after.
    pub(super) fn charge_set_entries(&mut self, n: u64, at: &Location) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let bytes = n.saturating_mul(REF_ENTRY_COST);
        let budget = self.session.memory_budget();
        budget.charge(bytes).map_err(|used| TarError::TooLarge {
            at: at.clone(),
            what: "memory for the objects the layers of an import name and hold (object sets and \
                   cached xattr sets)",
            size: used,
            limit: budget.limit(),
        })?;
        self.set_bytes += bytes;
        Ok(())
    }
}

fn worker_failed() -> TarError {
    TarError::Internal("a writer thread of the layer failed".into())
}

impl Drop for LayerImporter<'_, '_, '_, '_> {
    /// The layer's cached xattr sets and object sets go with it: their bytes return to the
    /// shared budget.
    fn drop(&mut self) {
        let n = self.cache_bytes + self.set_bytes;
        if n > 0 {
            self.session.memory_budget().release(n);
        }
    }
}
