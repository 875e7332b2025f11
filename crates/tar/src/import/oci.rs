//! Importing one plain OCI/Docker layer (a "derived" layer, container-image-format §8.3) into a
//! transaction as one ostree commit: the layer commit that `ostree/container/blob/<digest>`
//! points at.
//!
//! The layer is read once, streaming, through the bounded [`TarReader`] (GNU long names and PAX
//! `path`/`linkpath` are applied before any rule, so they cannot bypass them). Regular files go
//! straight into [`Transaction::write_content`]; the directory structure is collected in a
//! [`MutableTree`] and written as dirtree/dirmeta objects at the end.
//!
//! Path rules, applied to every entry path and to every hardlink target after leading `/` and
//! `./` are stripped (absolute names become relative, as in the reference) and `//` and `.`
//! normalised away; a `..` component is refused:
//!
//! | path | result |
//! |---|---|
//! | `usr/…` | kept |
//! | `etc/…` | `usr/etc/…` |
//! | `var/…` | per [`VarRule`] |
//! | `run`, `tmp`, `proc`, `sys`, `dev` | the top-level entry kept, everything below dropped |
//! | any other top level | dropped unless [`OciLayerOptions::allow_non_usr`] |
//!
//! Dropped entries are counted per top-level name ([`OciLayerOutcome::filtered`]; the reference
//! keys entries below `run` and friends by their second component instead, a quirk we do not
//! copy). Whiteouts (`.wh.<name>`, `.wh..wh..opq`) are stored as ordinary empty regular files,
//! exactly as ostree-ext stores them, so either implementation can merge the other's layer
//! commits; a top-level whiteout follows the top-level rule by its own name, as in the reference.
//! A whiteout naming no file (`.wh.`, `.wh..`, `.wh...`) is refused wherever it is, also below a
//! dropped path. A top-level `run`, `tmp`, … that is not a directory is kept as what it is.
//!
//! Decisions where the spec is silent:
//! * Duplicate entries for one path: the later wins (Docker's behaviour). A later directory entry
//!   for an existing directory replaces its metadata and keeps its children; a file replacing a
//!   directory (or the reverse) replaces it with everything below.
//! * An entry below an existing non-directory (e.g. `lib/x` after a symlink `lib`) is refused, as
//!   libostree refuses it.
//! * A hardlink resolves to what its target path holds at that point of the stream; a target
//!   that is absent, a directory, or dropped by the path rules is an error (libostree refuses a
//!   dangling hardlink too; the reference silently drops some).
//! * Regular files below `sysroot/ostree/repo/objects/` (dropped unless `allow_non_usr`) are
//!   still written as content objects and remembered by path, so that later hardlinks to them
//!   resolve (build tools modifying a file that was a hardlink into the base's object store,
//!   ostree-rs-ext#405). If no hardlink follows, the object stays unreferenced until a prune.
//! * Device nodes, FIFOs, sparse and contiguous files and other special types outside dropped
//!   paths are refused (libostree cannot store them; tar has no sockets); below dropped paths
//!   they are dropped and counted.
//! * In a bare-user-only repository, permissions are canonicalised as libostree does for it
//!   (`--canonical-permissions`): uid = gid = 0, mode `& (S_IFMT|0755)`, no xattrs. With
//!   `core.disable-xattrs` xattrs are not stored.
//! * The commit is deterministic: subject and body empty, timestamp 0, no parent, metadata keys
//!   sorted. The same layer gives the same commit in any fresh repository of the same mode.

use super::entry::{invalid, is_regular, read_err, repo as repo_err};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ostree_repo::format::gvariant::{Type, Value};
use ostree_repo::format::{
    Checksum, FileMeta, MAX_RECURSION, MetaDict, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, Xattrs,
    validate_filename,
};
use ostree_repo::{
    CommitSpec, ContentSource, Labeler, MtreeEntry, MutableTree, RepoMode, Transaction,
    default_dirmeta,
};

use super::reader::{EntryHeader, TarReader};
use super::validate::{ImportLimits, type_name};
use crate::error::{Location, Result, TarError};
use crate::layout::{OBJECTS_PREFIX, normalize};

/// Commit metadata key (`as`, sorted paths) listing the directories the importer created because
/// the tar lacked entries for them, after remapping (e.g. `usr/etc`); the root is listed as `.`
/// when the layer has no `./` entry. A merge keeps the lower layer's metadata for these. Absent
/// when there are none.
pub const AUTOCREATED_DIRS_KEY: &str = "ostree-container.autocreated-dirs";

/// Commit metadata key naming the importer (as the reference writes it).
pub const IMPORTER_VERSION_KEY: &str = "ostree.importer.version";
/// Commit metadata key with the entries the path rules dropped, per top-level name (`a{su}`,
/// only when something was dropped), so that a merge can report them for a layer imported by an
/// earlier (interrupted) pull exactly as for one fetched now.
pub const FILTERED_KEY: &str = "ostree-container.tar-filtered";

/// Commit metadata key (`s`) naming the labelling ([`Labeler::id`]) the layer's entries got
/// from [`OciLayerOptions::labeler`]; absent when unlabelled.
pub const SELINUX_POLICY_KEY: &str = "ostree-container.selinux-policy";

/// The value of [`IMPORTER_VERSION_KEY`] in layer commits.
pub const IMPORTER_VERSION: &str = concat!("ostree-container ", env!("CARGO_PKG_VERSION"));

/// Top-level directories kept as (empty) directories, with everything below them dropped.
const EMPTY_TOPLEVEL: [&str; 5] = ["run", "tmp", "proc", "sys", "dev"];

/// Where `var/…` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VarRule {
    /// `var/…` stays `var/…`: what the reference does when the target ostree is ≥ 2024.3, which
    /// populates `/var` from the commit on first boot. The default.
    #[default]
    Keep,
    /// `var/…` → `usr/share/factory/var/…` (older ostree, with a tmpfiles.d copy).
    Factory,
}

/// How a derived layer is imported.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OciLayerOptions {
    /// Where `var/…` goes.
    pub var_rule: VarRule,
    /// Keep top-level directories other than `usr`, `etc`, `var` (non-ostree images, bases
    /// with composefs or a transient root); otherwise they are dropped and counted.
    pub allow_non_usr: bool,
    /// Bounds: path length (`max_path`), tar headers (`max_entries`), xattrs per entry
    /// (`max_xattrs`).
    pub limits: ImportLimits,
    /// Labels every entry (SELinux) before its object is written, by its path in the commit
    /// (`/usr/etc/…` for `etc/…`), as `ostree commit --selinux-policy` labels a tar.
    pub labeler: Option<Arc<dyn Labeler>>,
}

impl OciLayerOptions {
    /// The defaults: [`VarRule::Keep`], non-`/usr` content dropped, default limits.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What [`import_oci_layer`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OciLayerOutcome {
    /// The layer commit (marked partial until the caller's transaction publishes a ref to it).
    pub commit: Checksum,
    /// Entries dropped by the path rules, per top-level name.
    pub filtered: BTreeMap<String, u32>,
    /// Tar members read (extension headers not counted), dropped ones included.
    pub entries: u64,
}

/// Where an entry goes.
enum Route {
    /// Into the tree at this (remapped) path; `""` is the root.
    Keep(String),
    /// Dropped; counted under this top-level name.
    Drop(String),
}

struct Importer<'a, 'r> {
    txn: &'a Transaction<'r>,
    opts: &'a OciLayerOptions,
    layer: std::sync::Arc<str>,
    root: MutableTree,
    autocreated: BTreeSet<String>,
    /// Regular files below `sysroot/ostree/repo/objects/` that were dropped but may be hardlink
    /// targets (normalised path → content object).
    sysroot_objects: HashMap<String, Checksum>,
    filtered: BTreeMap<String, u32>,
    entries: u64,
    canonical: bool,
    keep_xattrs: bool,
}

/// `meta` labelled by `opts.labeler` (if any) for the entry at (remapped) `dest`.
fn labelled(
    opts: &OciLayerOptions,
    mode: RepoMode,
    dest: &str,
    mut meta: FileMeta,
    at: &Location,
) -> Result<FileMeta> {
    if let Some(l) = &opts.labeler {
        let path = format!("/{dest}");
        ostree_repo::label::label_meta(l.as_ref(), mode, &path, &mut meta)
            .map_err(|e| repo_err(at)(e.into()))?;
    }
    Ok(meta)
}

/// Strips leading `/` and `./`, normalises `//` and `.`; `..` is an error.
fn clean_path(raw: &[u8], what: &str, at: &Location) -> Result<String> {
    let s = std::str::from_utf8(raw).map_err(|_| invalid(at, format!("non-UTF-8 {what}")))?;
    let np = normalize(s.trim_start_matches('/')).map_err(|r| TarError::UnsafePath {
        at: at.clone(),
        reason: format!("{what} {s:?}: {r}"),
    })?;
    for c in np.path.split('/').filter(|c| !c.is_empty()) {
        validate_filename(c).map_err(|e| invalid(at, format!("{what} {s:?}: {e}")))?;
    }
    Ok(np.path)
}

/// Whether `name` is a whiteout; `Err` for one that names no file (`.wh.`, `.wh..`, `.wh...`).
fn whiteout(name: &str, at: &Location) -> Result<bool> {
    match name.strip_prefix(".wh.") {
        None => Ok(false),
        Some("" | "." | "..") => Err(invalid(
            at,
            format!("whiteout {name:?} does not name a file"),
        )),
        Some(_) => Ok(true),
    }
}

fn split_last(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

impl Importer<'_, '_> {
    fn at_layer(&self) -> Location {
        Location {
            layer: self.layer.clone(),
            ..Default::default()
        }
    }

    fn route(&self, path: &str) -> Route {
        if path.is_empty() {
            return Route::Keep(String::new());
        }
        let (top, rest) = match path.split_once('/') {
            Some((t, r)) => (t, Some(r)),
            None => (path, None),
        };
        let join = |base: &str| match rest {
            Some(r) => format!("{base}/{r}"),
            None => base.to_string(),
        };
        match top {
            "usr" => Route::Keep(path.to_string()),
            "etc" => Route::Keep(join("usr/etc")),
            "var" => match self.opts.var_rule {
                VarRule::Keep => Route::Keep(path.to_string()),
                VarRule::Factory => Route::Keep(join("usr/share/factory/var")),
            },
            t if EMPTY_TOPLEVEL.contains(&t) => match rest {
                None => Route::Keep(path.to_string()),
                Some(_) => Route::Drop(t.to_string()),
            },
            _ if self.opts.allow_non_usr => Route::Keep(path.to_string()),
            t => Route::Drop(t.to_string()),
        }
    }

    /// The metadata of an entry of file type `kind`, with the repository's rules applied.
    fn meta(&self, h: &EntryHeader, kind: u32, at: &Location) -> Result<FileMeta> {
        let mode = if kind == S_IFLNK {
            S_IFLNK | 0o777
        } else {
            kind | (h.mode & 0o7777)
        };
        let mut meta = FileMeta {
            uid: h.uid,
            gid: h.gid,
            mode,
            xattrs: Xattrs::new(),
        };
        if self.canonical {
            meta.uid = 0;
            meta.gid = 0;
            if kind != S_IFLNK {
                meta.mode = mode & (S_IFMT | 0o755);
            }
            return Ok(meta);
        }
        if !h.xattrs.is_empty() && self.keep_xattrs {
            let mut size = 0u64;
            for (n, v) in &h.xattrs {
                if n.is_empty() || n.contains(&0) {
                    return Err(invalid(
                        at,
                        format!("invalid xattr name {:?}", String::from_utf8_lossy(n)),
                    ));
                }
                size += (n.len() + v.len()) as u64;
            }
            let limit = self.opts.limits.max_xattrs;
            if size > limit {
                return Err(TarError::TooLarge {
                    at: at.clone(),
                    what: "xattr set",
                    size,
                    limit,
                });
            }
            meta.xattrs = Xattrs::canonical(h.xattrs.iter().cloned());
        }
        Ok(meta)
    }

    /// `meta` labelled for the entry at (remapped) `dest` when a labeler is set.
    fn labelled(&self, dest: &str, meta: FileMeta, at: &Location) -> Result<FileMeta> {
        labelled(self.opts, self.txn.repo().mode(), dest, meta, at)
    }

    /// The directory that will hold `parent/…`, creating missing directories (recorded as
    /// autocreated).
    fn parent_dir(&mut self, parent: &str, at: &Location) -> Result<&mut MutableTree> {
        let txn = self.txn;
        let opts = self.opts;
        let mode = txn.repo().mode();
        let mut cur = &mut self.root;
        let mut so_far = String::new();
        for c in parent.split('/').filter(|c| !c.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(c);
            let fresh = if cur.entries(txn).map_err(repo_err(at))?.contains_key(c) {
                None
            } else {
                Some(labelled(opts, mode, &so_far, default_dirmeta(), at)?)
            };
            let entries = cur.entries_mut(txn).map_err(repo_err(at))?;
            let e = entries.entry(c.to_string()).or_insert_with(|| {
                self.autocreated.insert(so_far.clone());
                MtreeEntry::Dir(MutableTree::new(fresh.unwrap_or_else(default_dirmeta)))
            });
            match e {
                MtreeEntry::Dir(d) => cur = d,
                MtreeEntry::File(_) => {
                    return Err(invalid(
                        at,
                        format!("parent {so_far:?} is not a directory in this layer"),
                    ));
                }
            }
        }
        Ok(cur)
    }

    /// Forgets `path` and everything below it from the autocreated set (it was replaced).
    fn forget_below(&mut self, path: &str) {
        self.autocreated.remove(path);
        let prefix = format!("{path}/");
        let below: Vec<String> = self
            .autocreated
            .range(prefix.clone()..)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in below {
            self.autocreated.remove(&k);
        }
    }

    fn put_dir(&mut self, path: &str, meta: FileMeta, at: &Location) -> Result<()> {
        if path.is_empty() {
            self.root.set_meta(meta);
            self.autocreated.remove(".");
            return Ok(());
        }
        let txn = self.txn;
        let (parent, name) = split_last(path);
        let dir = self.parent_dir(parent, at)?;
        let entries = dir.entries_mut(txn).map_err(repo_err(at))?;
        match entries.get_mut(name) {
            Some(MtreeEntry::Dir(d)) => d.set_meta(meta),
            // A new directory, or one replacing a file (nothing was below it).
            _ => {
                entries.insert(name.to_string(), MtreeEntry::Dir(MutableTree::new(meta)));
            }
        }
        self.autocreated.remove(path);
        Ok(())
    }

    fn put_file(&mut self, path: &str, c: Checksum, at: &Location) -> Result<()> {
        if path.is_empty() {
            return Err(invalid(at, "the root entry must be a directory"));
        }
        let txn = self.txn;
        let (parent, name) = split_last(path);
        let dir = self.parent_dir(parent, at)?;
        let old = dir
            .insert(txn, name.to_string(), MtreeEntry::File(c))
            .map_err(repo_err(at))?;
        if matches!(old, Some(MtreeEntry::Dir(_))) {
            self.forget_below(path);
        }
        Ok(())
    }

    fn count_dropped(&mut self, top: String) {
        let n = self.filtered.entry(top).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Writes a regular file; labelled for `dest` if given (not for dropped entries).
    fn write_regular<R: Read>(
        &self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        dest: Option<&str>,
        at: &Location,
    ) -> Result<Checksum> {
        let mut meta = self.meta(h, S_IFREG, at)?;
        if let Some(d) = dest {
            meta = self.labelled(d, meta, at)?;
        }
        let mut data = tr.data();
        self.txn
            .write_content(
                None,
                &meta,
                ContentSource::Regular {
                    size: h.size,
                    reader: &mut data,
                },
            )
            .map_err(repo_err(at))
    }

    /// The content object a hardlink entry names.
    fn hardlink_target(&mut self, h: &EntryHeader, at: &Location) -> Result<Checksum> {
        let raw = String::from_utf8_lossy(&h.link).into_owned();
        let target = clean_path(&h.link, "hardlink target", at)?;
        if let Some(c) = self.sysroot_objects.get(&target) {
            return Ok(*c);
        }
        let dangling = |why: &str| {
            invalid(
                at,
                format!(
                    "hardlink target {raw:?} {why} (libostree cannot store a dangling hardlink)"
                ),
            )
        };
        match self.route(&target) {
            Route::Drop(top) => Err(dangling(&format!(
                "was dropped by the path rules (top-level {top:?})"
            ))),
            Route::Keep(t) => match self.root.lookup(self.txn, &t).map_err(repo_err(at))? {
                Some(MtreeEntry::File(c)) => Ok(*c),
                Some(MtreeEntry::Dir(_)) => Err(invalid(
                    at,
                    format!("hardlink target {raw:?} is a directory"),
                )),
                None => Err(dangling("is not an earlier entry of this layer")),
            },
        }
    }

    fn entry<R: Read>(
        &mut self,
        tr: &mut TarReader<R>,
        h: &EntryHeader,
        at: &Location,
    ) -> Result<()> {
        let path = clean_path(&h.path, "path", at)?;
        let (_, base) = split_last(&path);
        let is_whiteout = whiteout(base, at)?;
        let dest = match self.route(&path) {
            Route::Keep(p) => p,
            Route::Drop(top) => {
                if is_regular(h.typeflag) && !is_whiteout && path.starts_with(OBJECTS_PREFIX) {
                    let c = self.write_regular(tr, h, None, at)?;
                    self.sysroot_objects.insert(path, c);
                }
                self.count_dropped(top);
                return Ok(());
            }
        };
        // The dirtree this entry lands in (the directory itself, or the parent of anything else)
        // must be within libostree's OSTREE_MAX_RECURSION of the root: deeper commits cannot be
        // pulled by libostree, and would make every recursive walk of the tree unbounded.
        let components = dest.split('/').filter(|c| !c.is_empty()).count();
        let depth = if h.typeflag == b'5' && !is_whiteout {
            components
        } else {
            components.saturating_sub(1)
        };
        if depth > MAX_RECURSION {
            return Err(TarError::TooLarge {
                at: at.clone(),
                what: "directory nesting depth (OSTREE_MAX_RECURSION)",
                size: depth as u64,
                limit: MAX_RECURSION as u64,
            });
        }
        if is_whiteout {
            let meta = self.labelled(&dest, self.meta(h, S_IFREG, at)?, at)?;
            let c = self
                .txn
                .write_content(None, &meta, ContentSource::Bytes(&[]))
                .map_err(repo_err(at))?;
            return self.put_file(&dest, c, at);
        }
        match h.typeflag {
            b'5' => {
                let meta = self.labelled(&dest, self.meta(h, S_IFDIR, at)?, at)?;
                self.put_dir(&dest, meta, at)
            }
            t if is_regular(t) => {
                if dest.is_empty() {
                    return Err(invalid(at, "the root entry must be a directory"));
                }
                let c = self.write_regular(tr, h, Some(&dest), at)?;
                self.put_file(&dest, c, at)
            }
            b'2' => {
                let target = std::str::from_utf8(&h.link)
                    .map_err(|_| invalid(at, "non-UTF-8 symlink target"))?;
                if target.is_empty() || target.contains('\0') {
                    return Err(invalid(at, format!("invalid symlink target {target:?}")));
                }
                if dest.is_empty() {
                    return Err(invalid(at, "the root entry must be a directory"));
                }
                let meta = self.labelled(&dest, self.meta(h, S_IFLNK, at)?, at)?;
                let c = self
                    .txn
                    .write_content(None, &meta, ContentSource::Symlink { target })
                    .map_err(repo_err(at))?;
                self.put_file(&dest, c, at)
            }
            b'1' => {
                let c = self.hardlink_target(h, at)?;
                self.put_file(&dest, c, at)
            }
            t => Err(TarError::Unsupported {
                at: at.clone(),
                reason: format!(
                    "{} (an ostree commit can hold only regular files, symlinks and directories)",
                    type_name(t)
                ),
            }),
        }
    }

    fn run(&mut self, reader: impl Read, interrupt: Option<&AtomicBool>) -> Result<()> {
        let limits = self.opts.limits;
        let mut tr = TarReader::new(reader, limits.max_path);
        loop {
            if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(TarError::Interrupted);
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
            self.entries += 1;
            at.path = Some(String::from_utf8_lossy(&h.path).into());
            self.entry(&mut tr, &h, &at)?;
        }
        let at = self.at_layer();
        tr.drain().map_err(|e| read_err(&at, e))?;
        Ok(())
    }

    fn commit(mut self) -> Result<OciLayerOutcome> {
        let at = self.at_layer();
        let txn = self.txn;
        let (tree, meta) = self.root.write(txn).map_err(repo_err(&at))?;
        let mut metadata = vec![(
            IMPORTER_VERSION_KEY.to_string(),
            Value::Str(IMPORTER_VERSION.to_string()),
        )];
        if !self.autocreated.is_empty() {
            let dirs = std::mem::take(&mut self.autocreated)
                .into_iter()
                .map(Value::Str)
                .collect();
            metadata.push((
                AUTOCREATED_DIRS_KEY.to_string(),
                Value::Array(Type::Str, dirs),
            ));
        }
        if let Some(l) = &self.opts.labeler {
            metadata.push((SELINUX_POLICY_KEY.to_string(), Value::Str(l.id())));
        }
        if !self.filtered.is_empty() {
            let entry_ty = Type::DictEntry(Box::new(Type::Str), Box::new(Type::U32));
            let counts = self
                .filtered
                .iter()
                .map(|(k, n)| {
                    Value::DictEntry(Box::new(Value::Str(k.clone())), Box::new(Value::U32(*n)))
                })
                .collect();
            metadata.push((FILTERED_KEY.to_string(), Value::Array(entry_ty, counts)));
        }
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        let mut spec = CommitSpec::new();
        spec.timestamp = Some(0);
        spec.metadata = MetaDict(metadata);
        let commit = txn.write_commit(tree, meta, &spec).map_err(repo_err(&at))?;
        Ok(OciLayerOutcome {
            commit,
            filtered: self.filtered,
            entries: self.entries,
        })
    }
}

/// Imports one plain OCI/Docker layer — an uncompressed tar stream (the caller decompresses) —
/// into `txn` as one ostree commit, following the path and metadata rules of the module
/// documentation. `layer` (its digest) names the layer in errors. The commit is left partial;
/// the caller points `ostree/container/blob/<escaped digest>` ([`crate::blob_ref`]) at it and
/// publishes the transaction. `interrupt` is checked before every tar entry.
///
/// Errors name the layer, entry and path: `UnsafePath` for `..`; `Invalid` for bad whiteouts,
/// dangling hardlinks, entries below a non-directory, non-UTF-8 names; `Unsupported` for device
/// nodes and FIFOs outside dropped paths; `TooLarge` for the limits; `Truncated`/`Corrupt` for a
/// damaged stream.
pub fn import_oci_layer(
    txn: &Transaction<'_>,
    reader: impl Read,
    layer: &str,
    opts: &OciLayerOptions,
    interrupt: Option<&AtomicBool>,
) -> Result<OciLayerOutcome> {
    let mode = txn.repo().mode();
    let mut imp = Importer {
        txn,
        opts,
        layer: if layer.is_empty() {
            "layer".into()
        } else {
            format!("layer {layer}").into()
        },
        root: MutableTree::new(default_dirmeta()),
        autocreated: BTreeSet::from([".".to_string()]),
        sysroot_objects: HashMap::new(),
        filtered: BTreeMap::new(),
        entries: 0,
        canonical: mode == RepoMode::BareUserOnly,
        keep_xattrs: !txn.repo().config().disable_xattrs,
    };
    let root_meta = imp.labelled("", default_dirmeta(), &imp.at_layer())?;
    imp.root.set_meta(root_meta);
    imp.run(reader, interrupt)?;
    imp.commit()
}
