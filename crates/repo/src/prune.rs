//! Deleting unreachable objects, as `ostree prune` (libostree 2022.7 `ostree_repo_prune`) does.
//!
//! * Lock: the **exclusive** repository lock for the whole run, so every writer (ours and
//!   libostree's hold the shared lock for a whole transaction) has either published or not
//!   started; staged objects live in `tmp/staging-*`, which prune never looks at.
//! * Roots: with `refs_only`, every ref (`refs/heads`, `refs/remotes`, `refs/mirrors`, aliases
//!   resolved); otherwise every commit object. From each root the parent chain is followed
//!   (`depth`, default unlimited) until a parent is absent. A commit marked partial
//!   (`state/<c>.commitpartial`) may lack dirtrees (their subtrees are skipped); a missing
//!   dirtree of any other commit is an error and nothing is deleted.
//! * Candidates: the loose objects libostree lists (`.file`/`.filez` for the mode, `.dirtree`,
//!   `.dirmeta`, `.commit`, `.payload-link`, 62-character names in `objects/00`..`ff`); the
//!   unreachable ones are deleted. `.commitmeta` and `.tombstone-commit` files are never
//!   candidates: a commit's detached metadata goes with it, tombstones stay. A deleted commit's
//!   partial marker is removed and, with `core.tombstone-commits`, a tombstone written.
//! * Unreachable commits are deleted first, so an interrupted prune leaves only orphans
//!   (which `ostree fsck` ignores) and never a commit with missing objects.
//! * Afterwards, like libostree: static deltas whose target commit is gone and summary caches
//!   of unknown remotes are removed (not in a dry run, which deletes nothing).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ostree_format::{Checksum, Commit, DirTree, MetaDict, ObjectName, ObjectType};
use rayon::prelude::*;
use rustix::fs::AtFlags;

use crate::error::{IoContext, RepoError, Result};
use crate::progress::{Progress, check_interrupt};
use crate::repo::{Repo, RepoLock};
use crate::sys;

/// What to prune (the flags of `ostree prune`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Roots are the refs only (`--refs-only`); otherwise every commit object is a root and only
    /// objects no commit reaches are deleted.
    pub refs_only: bool,
    /// Count what would be deleted, delete nothing (`--no-prune`).
    pub dry_run: bool,
    /// Parent commits followed from each root (`--depth`); `None` = the whole history.
    /// Depth 0 keeps only the root commits themselves.
    pub depth: Option<u32>,
}

impl PruneOptions {
    /// Defaults: every commit is a root, whole history, deleting.
    pub fn new() -> Self {
        Self::default()
    }

    /// `ostree prune --refs-only`.
    pub fn refs_only() -> Self {
        PruneOptions {
            refs_only: true,
            ..Self::default()
        }
    }
}

/// What a prune found and deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Candidate objects in the repository before pruning (libostree's "Total objects").
    pub objects_total: u64,
    /// Objects deleted (or, in a dry run, that would be).
    pub objects_deleted: u64,
    /// Sum of the deleted objects' file sizes (`st_size`, as libostree's
    /// `ostree_repo_query_object_storage_size`; a commit's `.commitmeta` is not counted). Space
    /// actually freed can differ: blocks, and hardlinks from checkouts.
    pub bytes_freed: u64,
}

/// One unreachable object.
struct Doomed {
    /// `XX/REST.ext` below `objects/`.
    rel: String,
    /// The 64 hex characters of its name (as listed; not necessarily valid hex).
    hex: String,
    ty: ObjectType,
    size: u64,
}

/// A dirtree to walk, and whether it may be absent (reached from a partial commit).
type TreeItem = (Checksum, bool);

impl Repo {
    /// Deletes every object not reachable from the roots (see the module docs), under the
    /// exclusive repository lock (waiting up to `core.lock-timeout-secs` for writers).
    pub fn prune(
        &self,
        opts: &PruneOptions,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<PruneReport> {
        let _lock = self.lock(true)?;
        self.prune_under_lock(opts, progress, interrupt)
    }

    /// [`Repo::prune`] for a caller that already holds the **exclusive** repository lock
    /// ([`Repo::lock`]`(true)`), e.g. to drop refs and prune in one critical section that no
    /// writer can enter. A shared lock is refused ([`crate::ErrorKind::Usage`]): the repository
    /// lock is not recursive, and pruning under a shared lock would race writers.
    pub fn prune_locked(
        &self,
        lock: &RepoLock,
        opts: &PruneOptions,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<PruneReport> {
        let _held = lock;
        if self.config.locking {
            // If a shared lock can be taken now, nobody holds the exclusive one.
            let path = self.path.join(".lock");
            let fd = rustix::fs::openat(
                self.dir.as_fd(),
                ".lock",
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .io("open", &path)?;
            if sys::ofd_lock(fd.as_fd(), sys::LockKind::Shared).io("lock", &path)? {
                return Err(RepoError::InvalidArgument(
                    "pruning needs the exclusive repository lock; a shared one is held".into(),
                ));
            }
        }
        self.prune_under_lock(opts, progress, interrupt)
    }

    fn prune_under_lock(
        &self,
        opts: &PruneOptions,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<PruneReport> {
        check_interrupt(interrupt)?;
        let roots = if opts.refs_only {
            self.prune_ref_roots()?
        } else {
            self.list_objects(ObjectType::Commit)?
        };
        let reachable = self.reachable_from(&roots, opts.depth, progress, interrupt)?;
        check_interrupt(interrupt)?;
        let (total, doomed) = self.unreachable_objects(&reachable, progress, interrupt)?;
        let mut report = PruneReport {
            objects_total: total,
            objects_deleted: doomed.len() as u64,
            bytes_freed: doomed.iter().map(|d| d.size).sum(),
        };
        if opts.dry_run {
            return Ok(report);
        }
        check_interrupt(interrupt)?;
        progress.start("deleting objects", Some(doomed.len() as u64));
        let tombstones = self.tombstone_commits();
        let (commits, rest): (Vec<_>, Vec<_>) =
            doomed.into_iter().partition(|d| d.ty == ObjectType::Commit);
        for c in &commits {
            check_interrupt(interrupt)?;
            self.prune_commit(c, tombstones)?;
            progress.inc(1);
        }
        let deleted = AtomicU64::new(commits.len() as u64);
        let res = rest.par_iter().try_for_each(|d| -> Result<()> {
            check_interrupt(interrupt)?;
            self.unlink_object(&d.rel)?;
            deleted.fetch_add(1, Ordering::Relaxed);
            progress.inc(1);
            Ok(())
        });
        report.objects_deleted = deleted.load(Ordering::Relaxed);
        res?;
        self.prune_static_deltas()?;
        self.prune_summary_cache()?;
        Ok(report)
    }

    /// The commits of every ref: `refs/heads`, `refs/remotes/*`, `refs/mirrors/*` (aliases
    /// resolved). Entries that are not valid ref fragments (editor or rsync droppings, our
    /// `.tmp-ref-*`) are skipped, as libostree does; a ref file that does not hold a checksum
    /// is an error (better to prune nothing than everything that ref kept).
    fn prune_ref_roots(&self) -> Result<Vec<Checksum>> {
        let mut out = Vec::new();
        collect_ref_commits(&self.path.join("refs/heads"), &mut out)?;
        for top in ["refs/remotes", "refs/mirrors"] {
            let dir = self.path.join(top);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).io("list", dir),
            };
            for e in entries {
                let e = e.io("list", &dir)?;
                if e.file_type().io("stat", e.path())?.is_dir() {
                    collect_ref_commits(&e.path(), &mut out)?;
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Every object reachable from `roots` and their parents (libostree's
    /// `ostree_repo_traverse_commit` per root). Dirtrees are loaded level by level in parallel.
    fn reachable_from(
        &self,
        roots: &[Checksum],
        depth: Option<u32>,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<HashSet<ObjectName>> {
        let mut reachable = HashSet::new();
        // Commits visited, with the parent depth still allowed from them (None = unlimited);
        // a commit reached again with more depth left is walked again, so that the result does
        // not depend on the order of the roots.
        let mut visited: HashMap<Checksum, Option<u32>> = HashMap::new();
        let mut complete_roots: Vec<TreeItem> = Vec::new();
        let mut partial_roots: Vec<TreeItem> = Vec::new();
        progress.start("finding reachable objects", None);
        for root in roots {
            let mut c = *root;
            let mut left = depth;
            loop {
                check_interrupt(interrupt)?;
                let more = |old: &Option<u32>| match (old, left) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(o), Some(n)) => n > *o,
                };
                if visited.get(&c).is_some_and(|old| !more(old)) {
                    break;
                }
                let name = ObjectName::new(c, ObjectType::Commit);
                let commit = match self.load_metadata_bytes(&name) {
                    Ok(bytes) => {
                        Commit::parse(&bytes).map_err(|source| RepoError::InvalidObject {
                            object: name,
                            source,
                        })?
                    }
                    // An absent commit (or parent) ends the walk: partial history is normal.
                    Err(RepoError::ObjectNotFound(_)) => break,
                    Err(e) => return Err(e),
                };
                let first_visit = visited.insert(c, left).is_none();
                reachable.insert(name);
                if first_visit {
                    let partial = self.is_commit_partial(&c);
                    let root_tree = ObjectName::new(commit.root_tree, ObjectType::DirTree);
                    if self.has_object(&root_tree)? {
                        // libostree adds the root dirmeta only once the root dirtree loaded.
                        reachable.insert(ObjectName::new(commit.root_meta, ObjectType::DirMeta));
                        if partial {
                            partial_roots.push((commit.root_tree, true));
                        } else {
                            complete_roots.push((commit.root_tree, false));
                        }
                    } else if !partial {
                        return Err(RepoError::ObjectNotFound(root_tree));
                    }
                    progress.inc(1);
                }
                let Some(parent) = commit.parent else { break };
                left = match left {
                    None => None,
                    Some(0) => break,
                    Some(n) => Some(n - 1),
                };
                c = parent;
            }
        }
        // Complete commits first: a dirtree shared with a partial commit must then exist.
        let mut frontier: Vec<TreeItem> = complete_roots;
        frontier.extend(partial_roots);
        let mut seen_trees: HashSet<Checksum> = HashSet::new();
        frontier.retain(|(t, _)| seen_trees.insert(*t));
        while !frontier.is_empty() {
            check_interrupt(interrupt)?;
            let loaded: Vec<Option<DirTree>> = frontier
                .par_iter()
                .map(|(tree, may_be_missing)| {
                    let name = ObjectName::new(*tree, ObjectType::DirTree);
                    match self.load_metadata_bytes(&name) {
                        Ok(bytes) => DirTree::parse(&bytes).map(Some).map_err(|source| {
                            RepoError::InvalidObject {
                                object: name,
                                source,
                            }
                        }),
                        Err(RepoError::ObjectNotFound(_)) if *may_be_missing => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .collect::<Result<_>>()?;
            let mut next = Vec::new();
            for ((tree, may_be_missing), dt) in frontier.iter().zip(loaded) {
                reachable.insert(ObjectName::new(*tree, ObjectType::DirTree));
                let Some(dt) = dt else { continue };
                for f in &dt.files {
                    reachable.insert(ObjectName::new(f.checksum, ObjectType::File));
                }
                for d in &dt.dirs {
                    reachable.insert(ObjectName::new(d.meta, ObjectType::DirMeta));
                    if seen_trees.insert(d.tree) {
                        next.push((d.tree, *may_be_missing));
                    }
                }
            }
            progress.inc(frontier.len() as u64);
            frontier = next;
        }
        Ok(reachable)
    }

    /// Lists the candidate objects (in parallel over `objects/00`..`ff`) and returns their
    /// number and the unreachable ones with their sizes.
    fn unreachable_objects(
        &self,
        reachable: &HashSet<ObjectName>,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<(u64, Vec<Doomed>)> {
        let file_ext = self.config.mode.content_extension();
        let link_threshold = self.payload_link_threshold();
        progress.start("listing objects", Some(256));
        let per_prefix: Vec<(u64, Vec<Doomed>)> = (0u32..256)
            .into_par_iter()
            .map(|i| -> Result<(u64, Vec<Doomed>)> {
                check_interrupt(interrupt)?;
                let prefix = format!("{i:02x}");
                let dir = self.path.join("objects").join(&prefix);
                let entries = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        progress.inc(1);
                        return Ok((0, Vec::new()));
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                        progress.inc(1);
                        return Ok((0, Vec::new()));
                    }
                    Err(e) => return Err(e).io("list", dir),
                };
                let mut total = 0;
                let mut doomed = Vec::new();
                for e in entries {
                    let e = e.io("list", &dir)?;
                    let fname = e.file_name();
                    let Some(fname) = fname.to_str() else {
                        continue;
                    };
                    let Some((stem, ext)) = fname.rsplit_once('.') else {
                        continue;
                    };
                    let ty = match ext {
                        _ if ext == file_ext => ObjectType::File,
                        "dirtree" => ObjectType::DirTree,
                        "dirmeta" => ObjectType::DirMeta,
                        "commit" => ObjectType::Commit,
                        "payload-link" => ObjectType::PayloadLink,
                        _ => continue,
                    };
                    if stem.len() != 62 {
                        continue;
                    }
                    total += 1;
                    let hex = format!("{prefix}{stem}");
                    // A name that is not a checksum cannot be reachable (libostree deletes it too).
                    let name = hex.parse::<Checksum>().ok().map(|c| ObjectName::new(c, ty));
                    if name.is_some_and(|n| reachable.contains(&n)) {
                        continue;
                    }
                    let rel = format!("{prefix}/{fname}");
                    if ty == ObjectType::PayloadLink
                        && self.payload_link_needed(&rel, reachable, link_threshold)?
                    {
                        continue;
                    }
                    let size = self.object_size(&rel)?;
                    doomed.push(Doomed { rel, hex, ty, size });
                }
                progress.inc(1);
                Ok((total, doomed))
            })
            .collect::<Result<_>>()?;
        let total = per_prefix.iter().map(|(t, _)| t).sum();
        let doomed = per_prefix.into_iter().flat_map(|(_, d)| d).collect();
        Ok((total, doomed))
    }

    /// `st_size` of `objects/<rel>` (not following symlinks).
    fn object_size(&self, rel: &str) -> Result<u64> {
        let st = rustix::fs::statat(self.objects.as_fd(), rel, AtFlags::SYMLINK_NOFOLLOW)
            .io("stat", self.path.join("objects").join(rel))?;
        Ok(st.st_size as u64)
    }

    fn unlink_object(&self, rel: &str) -> Result<()> {
        rustix::fs::unlinkat(self.objects.as_fd(), rel, AtFlags::empty())
            .io("delete", self.path.join("objects").join(rel))
    }

    /// `core.payload-link-threshold`: payload links to files at least this big are kept while
    /// their file is reachable; `None` (the default, -1) means never.
    fn payload_link_threshold(&self) -> Option<u64> {
        self.config
            .keyfile
            .get("core", "payload-link-threshold")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|v| u64::try_from(v).ok())
    }

    /// Whether an unreachable payload link is kept: its target (`../XX/REST.file`) is a
    /// reachable content object of at least the threshold size (libostree's rule).
    fn payload_link_needed(
        &self,
        rel: &str,
        reachable: &HashSet<ObjectName>,
        threshold: Option<u64>,
    ) -> Result<bool> {
        let target = rustix::fs::readlinkat(self.objects.as_fd(), rel, Vec::new())
            .io("readlink", self.path.join("objects").join(rel))?;
        let target = target.to_string_lossy();
        let (Some(a), Some(b)) = (target.get(3..5), target.get(6..68)) else {
            return Err(RepoError::InvalidArgument(format!(
                "invalid payload link objects/{rel} -> {target}"
            )));
        };
        let hex = format!("{a}{b}");
        let Ok(c) = hex.parse::<Checksum>() else {
            return Ok(false);
        };
        let file = ObjectName::new(c, ObjectType::File);
        if !reachable.contains(&file) {
            return Ok(false);
        }
        let size = self.object_size(&self.object_relpath(&file))?;
        Ok(threshold.is_some_and(|t| size >= t))
    }

    /// `core.tombstone-commits` (GKeyFile boolean).
    fn tombstone_commits(&self) -> bool {
        matches!(
            self.config.keyfile.get("core", "tombstone-commits"),
            Some("true" | "1")
        )
    }

    /// Deletes an unreachable commit: its detached metadata, the commit, its partial marker
    /// (libostree clears it when pruning a commit), then writes a tombstone if configured.
    fn prune_commit(&self, d: &Doomed, tombstone: bool) -> Result<()> {
        let (prefix, rest) = d.hex.split_at(2);
        let meta = format!("{prefix}/{rest}.commitmeta");
        match rustix::fs::unlinkat(self.objects.as_fd(), meta.as_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).io("delete", self.path.join("objects").join(&meta)),
        }
        self.unlink_object(&d.rel)?;
        let marker = self
            .path
            .join("state")
            .join(format!("{}.commitpartial", d.hex));
        match fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).io("remove", marker),
        }
        if tombstone && let Ok(c) = d.hex.parse::<Checksum>() {
            self.write_tombstone(&c)?;
        }
        Ok(())
    }

    /// Writes `XX/REST.tombstone-commit` = `{"commit": <b"hex\0">}` straight into `objects/`
    /// (we hold the exclusive lock, so no transaction can run), as libostree does.
    fn write_tombstone(&self, commit: &Checksum) -> Result<()> {
        let hex = commit.to_hex();
        let mut value = hex.clone().into_bytes();
        value.push(0);
        let bytes = MetaDict(vec![(
            "commit".to_string(),
            ostree_format::gvariant::Value::Bytes(value),
        )])
        .to_bytes();
        let dir_path = self.path.join("objects").join(&hex[..2]);
        let dir = crate::repo::open_dir(&dir_path)?;
        let mut f = sys::tmpfile_in(dir.as_fd()).io("create temporary file in", &dir_path)?;
        f.write_all(&bytes).io("write", &dir_path)?;
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(0o644)).io("chmod", &dir_path)?;
        if self.config.fsync {
            f.sync_all().io("fsync", &dir_path)?;
        }
        let name = format!("{}.tombstone-commit", &hex[2..]);
        match sys::link_tmpfile(&f, dir.as_fd(), &name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e).io("link", dir_path.join(name)),
        }
    }

    /// Removes static deltas (`deltas/XX/REST[-TO]/` with a `superblock`) whose target commit
    /// is absent (libostree's `ostree_repo_prune_static_deltas`).
    fn prune_static_deltas(&self) -> Result<()> {
        let deltas = self.path.join("deltas");
        let outer = match fs::read_dir(&deltas) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).io("list", deltas),
        };
        for d1 in outer {
            let d1 = d1.io("list", &deltas)?;
            if !d1.file_type().io("stat", d1.path())?.is_dir() {
                continue;
            }
            for d2 in fs::read_dir(d1.path()).io("list", d1.path())? {
                let d2 = d2.io("list", d1.path())?;
                let path = d2.path();
                if !d2.file_type().io("stat", &path)?.is_dir() || !path.join("superblock").exists()
                {
                    continue;
                }
                let name = format!(
                    "{}{}",
                    d1.file_name().to_string_lossy(),
                    d2.file_name().to_string_lossy()
                );
                let to = name.split_once('-').map_or(name.as_str(), |(_, t)| t);
                let Some(to) = mb64_checksum(to) else {
                    continue;
                };
                if !self.has_object(&ObjectName::new(to, ObjectType::Commit))? {
                    fs::remove_dir_all(&path).io("remove", &path)?;
                }
            }
        }
        Ok(())
    }

    /// Removes `tmp/cache/summaries/<name>[.sig]` of remotes that are not configured
    /// (libostree's `_ostree_repo_prune_tmp`).
    fn prune_summary_cache(&self) -> Result<()> {
        let dir = self.path.join("tmp/cache/summaries");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).io("list", dir),
        };
        let remotes = self.remote_names();
        for e in entries {
            let e = e.io("list", &dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let remote = match name.strip_suffix(".sig") {
                Some(r) if name.len() > 4 => r,
                _ => name.as_str(),
            };
            if !remotes.contains(remote) {
                fs::remove_file(e.path()).io("remove", e.path())?;
            }
        }
        Ok(())
    }

    /// Remotes of the repository config and of `/etc/ostree/remotes.d` (a superset of what
    /// libostree loads, so that no cache of a live remote is dropped).
    fn remote_names(&self) -> HashSet<String> {
        let mut out: HashSet<String> = self
            .config
            .keyfile
            .entries()
            .filter_map(|(s, _, _)| remote_section(s))
            .collect();
        if let Ok(rd) = fs::read_dir("/etc/ostree/remotes.d") {
            for e in rd.flatten() {
                if let Ok(text) = fs::read_to_string(e.path()) {
                    out.extend(text.lines().filter_map(|l| {
                        remote_section(l.trim().strip_prefix('[')?.strip_suffix(']')?)
                    }));
                }
            }
        }
        out
    }
}

/// `remote "NAME"` -> NAME.
fn remote_section(s: &str) -> Option<String> {
    Some(s.strip_prefix("remote \"")?.strip_suffix('"')?.to_string())
}

/// `[\w\d][-._\w\d]*` (ASCII), libostree's `_ostree_validate_ref_fragment`.
fn is_ref_fragment(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Every ref below `dir` (recursively; symlinked aliases followed).
fn collect_ref_commits(dir: &std::path::Path, out: &mut Vec<Checksum>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).io("list", dir),
    };
    for e in entries {
        let e = e.io("list", dir)?;
        let name = e.file_name();
        if !name.to_str().is_some_and(is_ref_fragment) {
            continue;
        }
        let path = e.path();
        let ft = e.file_type().io("stat", &path)?;
        if ft.is_dir() {
            collect_ref_commits(&path, out)?;
        } else if ft.is_file() || ft.is_symlink() {
            let text = fs::read_to_string(&path).io("read", &path)?;
            let c = text
                .trim_end()
                .parse::<Checksum>()
                .map_err(|source| RepoError::Format {
                    context: format!("ref file {}", path.display()),
                    source,
                })?;
            out.push(c);
        }
    }
    Ok(())
}

/// Decodes ostree's modified base64 checksum (43 characters, `_` for `/`, no padding).
fn mb64_checksum(s: &str) -> Option<Checksum> {
    let s = s.get(..43)?;
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(33);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out.truncate(32);
    Checksum::from_bytes(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_base64_checksums() {
        // ostree_checksum_to_bytes + ostree_checksum_b64_from_bytes of 3602b2e9…6166.
        let c: Checksum = "3602b2e959192c61aa6153fc5755b392e500d188524501ac32bf77ab138a6166"
            .parse()
            .unwrap();
        let b64 = "NgKy6VkZLGGqYVP8V1WzkuUA0YhSRQGsMr93qxOKYWY";
        assert_eq!(mb64_checksum(b64), Some(c));
        assert_eq!(mb64_checksum("short"), None);
        assert_eq!(mb64_checksum(&b64.replace('N', "!")), None);
    }

    /// With `core.tombstone-commits`, a pruned commit leaves the same tombstone as libostree.
    /// (`Repo::open` still refuses such repositories, so the config is set after opening.)
    #[test]
    fn tombstones_as_libostree() {
        use std::process::Command;
        let d = test_support::scratch("prune-unit-");
        let cli = test_support::ostree_cli::OstreeCli::new().unwrap();
        let repo = d.path().join("r");
        cli.init(&repo, "bare-user").unwrap();
        let t = d.path().join("t");
        test_support::tree::reference_tree(&t).unwrap();
        let opts = test_support::ostree_cli::CommitOpts::reference();
        cli.commit(&repo, "keep", &t, &opts).unwrap();
        std::fs::write(t.join("new"), "new").unwrap();
        let mut o = opts.clone();
        o.detached_metadata_strings = vec![("k".into(), "v".into())];
        let gone = cli.commit(&repo, "gone", &t, &o).unwrap();
        std::fs::write(repo.join(format!("state/{gone}.commitpartial")), "").unwrap();
        let out = cli
            .command(&[
                "refs",
                &format!("--repo={}", repo.display()),
                "--delete",
                "gone",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let theirs = d.path().join("theirs");
        assert!(
            Command::new("cp")
                .arg("-a")
                .arg(&repo)
                .arg(&theirs)
                .status()
                .unwrap()
                .success()
        );
        let cfg = theirs.join("config");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text = text.replace("[core]\n", "[core]\ntombstone-commits=true\n");
        std::fs::write(&cfg, &text).unwrap();
        cli.prune_refs_only(&theirs).unwrap();

        let mut ours = Repo::open(&repo).unwrap();
        ours.config.keyfile = crate::config::KeyFile::parse(&text).unwrap();
        let r = ours
            .prune(
                &PruneOptions::refs_only(),
                &crate::NoProgress,
                &AtomicBool::new(false),
            )
            .unwrap();
        assert!(r.objects_deleted > 1);
        let files = |p: &std::path::Path| test_support::ostree_cli::list_object_files(p).unwrap();
        assert_eq!(files(&repo), files(&theirs));
        let rel = format!("objects/{}/{}.tombstone-commit", &gone[..2], &gone[2..]);
        let bytes = std::fs::read(repo.join(&rel)).unwrap();
        assert_eq!(bytes, std::fs::read(theirs.join(&rel)).unwrap());
        assert!(!repo.join(format!("state/{gone}.commitpartial")).exists());
        assert!(!theirs.join(format!("state/{gone}.commitpartial")).exists());
        cli.fsck(&repo).unwrap().check().unwrap();
    }

    #[test]
    fn ref_fragments() {
        for ok in ["a", "_x", "0", "a.b-c_d"] {
            assert!(is_ref_fragment(ok), "{ok}");
        }
        for bad in ["", ".tmp-ref-x", "-a", ".rsync_info", "a b", "é"] {
            assert!(!is_ref_fragment(bad), "{bad}");
        }
    }
}
