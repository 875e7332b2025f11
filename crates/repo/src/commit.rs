//! Committing a directory tree (like `ostree commit --tree=dir=`) and writing commit objects.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ostree_format::{
    Checksum, Commit, FileMeta, MAX_RECURSION, MetaDict, ObjectType, S_IFLNK, S_IFMT, Xattrs,
    validate_filename,
};
use rayon::prelude::*;

use crate::config::RepoMode;
use crate::error::{IoContext, RepoError, Result, too_deep};
use crate::mtree::{MtreeEntry, MutableTree};
use crate::progress::{Progress, check_interrupt};
use crate::repo::Repo;
use crate::sys;
use crate::txn::{ContentSource, Transaction};

/// How a directory's files become objects.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TreeOptions {
    /// Force this owner on every file and directory (`--owner-uid`).
    pub owner_uid: Option<u32>,
    /// Force this group (`--owner-gid`).
    pub owner_gid: Option<u32>,
    /// uid = gid = 0, mode `& (S_IFMT|0755)`, no xattrs (`--canonical-permissions`; forced in
    /// bare-user-only repositories, as by the `ostree` CLI).
    pub canonical_permissions: bool,
    /// Do not read extended attributes.
    pub skip_xattrs: bool,
}

impl TreeOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The fields of a commit other than its tree.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CommitSpec {
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Seconds since the epoch; `None` = now.
    pub timestamp: Option<u64>,
    /// Parent commit.
    pub parent: Option<Checksum>,
    /// Metadata in the order to store it.
    pub metadata: MetaDict,
}

impl CommitSpec {
    /// An empty spec.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One directory read from disk, before its files are hashed.
struct DirNode {
    meta: FileMeta,
    files: Vec<(String, usize)>,
    dirs: Vec<(String, DirNode)>,
}

/// One non-directory to store.
struct FileJob {
    path: PathBuf,
    meta: FileMeta,
    symlink_target: Option<String>,
    size: u64,
    /// Regular files get their xattrs read in the parallel phase, from the open file.
    read_xattrs: bool,
}

impl Transaction<'_> {
    /// Writes every file and directory below `dir`; returns the root (dirtree, dirmeta).
    pub fn write_directory(
        &self,
        dir: &Path,
        opts: &TreeOptions,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<(Checksum, Checksum)> {
        let mut opts = opts.clone();
        if self.repo().mode() == RepoMode::BareUserOnly {
            opts.canonical_permissions = true;
        }
        if self.repo().config.disable_xattrs {
            opts.skip_xattrs = true;
        }
        let mut jobs = Vec::new();
        let started = std::time::Instant::now();
        let root = scan_dir(dir, &opts, &mut jobs, interrupt)?;
        tracing::debug!(files = jobs.len(), elapsed = ?started.elapsed(), "scanned source tree");
        progress.start("writing content", Some(jobs.len() as u64));
        let checksums: Vec<Checksum> = jobs
            .par_iter()
            .map(|job| {
                check_interrupt(interrupt)?;
                let c = self.write_file_job(job)?;
                progress.inc(1);
                Ok(c)
            })
            .collect::<Result<_>>()?;
        tracing::debug!(elapsed = ?started.elapsed(), "content written");
        let r = self.write_dir_node(&root, &checksums);
        tracing::debug!(elapsed = ?started.elapsed(), "directory metadata written");
        r
    }

    fn write_file_job(&self, job: &FileJob) -> Result<Checksum> {
        match &job.symlink_target {
            Some(t) => self.write_content(None, &job.meta, ContentSource::Symlink { target: t }),
            None => {
                let mut f = File::open(&job.path).io("open", &job.path)?;
                let mut meta = job.meta.clone();
                if job.read_xattrs {
                    meta.xattrs = Xattrs::canonical(
                        sys::read_xattrs_fd(f.as_fd()).io("read xattrs of", &job.path)?,
                    );
                }
                self.write_content(
                    None,
                    &meta,
                    ContentSource::Regular {
                        size: job.size,
                        reader: &mut f,
                    },
                )
                .map_err(|e| match e {
                    RepoError::SizeMismatch {
                        expected, actual, ..
                    } => RepoError::SizeMismatch {
                        what: job.path.display().to_string(),
                        expected,
                        actual,
                    },
                    e => e,
                })
            }
        }
    }

    fn write_dir_node(
        &self,
        node: &DirNode,
        checksums: &[Checksum],
    ) -> Result<(Checksum, Checksum)> {
        to_mtree(node, checksums).write(self)
    }

    /// Writes a commit object for a tree already in the transaction and returns its checksum.
    pub fn write_commit(
        &self,
        root_tree: Checksum,
        root_meta: Checksum,
        spec: &CommitSpec,
    ) -> Result<Checksum> {
        self.repo().config.check_new_commit()?;
        let timestamp = spec.timestamp.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let commit = Commit {
            metadata: spec.metadata.clone(),
            parent: spec.parent,
            related: Vec::new(),
            subject: spec.subject.clone(),
            body: spec.body.clone(),
            timestamp,
            root_tree,
            root_meta,
        };
        let bytes = commit.to_bytes();
        let checksum = Checksum::digest(&bytes);
        self.mark_partial(&checksum)?;
        self.write_metadata(ObjectType::Commit, Some(checksum), &bytes)
    }
}

impl Repo {
    /// Commits `dir` in one transaction and, if `branch` is given, points it at the commit once
    /// the commit is proven complete. Returns the commit checksum.
    pub fn commit_directory(
        &self,
        dir: &Path,
        branch: Option<&str>,
        tree_opts: &TreeOptions,
        spec: &CommitSpec,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<Checksum> {
        let txn = self.begin_transaction()?;
        let (tree, meta) = txn.write_directory(dir, tree_opts, progress, interrupt)?;
        let commit = txn.write_commit(tree, meta, spec)?;
        if let Some(b) = branch {
            txn.set_ref(b, Some(commit))?;
        }
        let started = std::time::Instant::now();
        txn.commit()?;
        tracing::debug!(elapsed = ?started.elapsed(), "transaction committed");
        Ok(commit)
    }
}

/// The scanned tree as a [`MutableTree`], which writes the dirtree/dirmeta objects.
fn to_mtree(node: &DirNode, checksums: &[Checksum]) -> MutableTree {
    let mut entries = std::collections::BTreeMap::new();
    for (name, idx) in &node.files {
        entries.insert(name.clone(), MtreeEntry::File(checksums[*idx]));
    }
    for (name, child) in &node.dirs {
        entries.insert(name.clone(), MtreeEntry::Dir(to_mtree(child, checksums)));
    }
    MutableTree::from_entries(node.meta.clone(), entries)
}

fn read_meta(
    path: &Path,
    md: &fs::Metadata,
    opts: &TreeOptions,
    with_xattrs: bool,
) -> Result<FileMeta> {
    let mut mode = md.mode();
    if md.file_type().is_symlink() {
        mode = S_IFLNK | 0o777;
    }
    let mut meta = FileMeta {
        uid: md.uid(),
        gid: md.gid(),
        mode,
        xattrs: Xattrs::new(),
    };
    if with_xattrs && wants_xattrs(opts) {
        meta.xattrs = Xattrs::canonical(sys::read_xattrs_path(path).io("read xattrs of", path)?);
    }
    if let Some(u) = opts.owner_uid {
        meta.uid = u;
    }
    if let Some(g) = opts.owner_gid {
        meta.gid = g;
    }
    if opts.canonical_permissions {
        meta.uid = 0;
        meta.gid = 0;
        if mode & S_IFMT != S_IFLNK {
            meta.mode = mode & (S_IFMT | 0o755);
        }
    }
    Ok(meta)
}

fn wants_xattrs(opts: &TreeOptions) -> bool {
    !opts.skip_xattrs && !opts.canonical_permissions
}

/// Reads `dir` and everything below it. Iterative (a stack of open directories on the heap),
/// and a directory nested deeper than [`MAX_RECURSION`] below `dir` is refused
/// ([`RepoError::TooDeep`]): libostree could not pull such a commit, and the bound keeps the
/// tree conversion and write that follow shallow.
fn scan_dir(
    dir: &Path,
    opts: &TreeOptions,
    jobs: &mut Vec<FileJob>,
    interrupt: &AtomicBool,
) -> Result<DirNode> {
    /// A directory being read: its node, its entries not yet visited (in reverse order, so
    /// that popping yields them sorted), and its name in its parent.
    struct Open {
        node: DirNode,
        entries: Vec<(String, PathBuf)>,
        name: String,
    }
    let open = |dir: &Path, name: String| -> Result<Open> {
        check_interrupt(interrupt)?;
        let md = fs::symlink_metadata(dir).io("stat", dir)?;
        if !md.is_dir() {
            return Err(RepoError::UnsupportedFile {
                path: dir.to_path_buf(),
                reason: "not a directory",
            });
        }
        let meta = read_meta(dir, &md, opts, true)?;
        let mut entries: Vec<_> = fs::read_dir(dir)
            .io("list", dir)?
            .collect::<std::io::Result<_>>()
            .io("list", dir)?;
        entries.sort_by(|a, b| b.file_name().as_bytes().cmp(a.file_name().as_bytes()));
        let entries = entries
            .into_iter()
            .map(|e| {
                let path = e.path();
                let name = e
                    .file_name()
                    .into_string()
                    .map_err(|_| RepoError::UnsupportedFile {
                        path: path.clone(),
                        reason: "file name is not valid UTF-8",
                    })?;
                validate_filename(&name).map_err(|_| RepoError::UnsupportedFile {
                    path: path.clone(),
                    reason: "invalid file name",
                })?;
                Ok((name, path))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Open {
            node: DirNode {
                meta,
                files: Vec::new(),
                dirs: Vec::new(),
            },
            entries,
            name,
        })
    };
    let mut stack = vec![open(dir, String::new())?];
    loop {
        let Some(top) = stack.last_mut() else {
            return Err(RepoError::Internal("scan stack empty".into()));
        };
        let Some((name, path)) = top.entries.pop() else {
            let Some(done) = stack.pop() else {
                return Err(RepoError::Internal("scan stack empty".into()));
            };
            match stack.last_mut() {
                Some(parent) => parent.node.dirs.push((done.name, done.node)),
                None => return Ok(done.node),
            }
            continue;
        };
        let md = fs::symlink_metadata(&path).io("stat", &path)?;
        let ft = md.file_type();
        if ft.is_dir() {
            if stack.len() > MAX_RECURSION {
                return Err(too_deep(format!("directory {}", path.display())));
            }
            let child = open(&path, name)?;
            stack.push(child);
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).io("readlink", &path)?;
            let target =
                target
                    .into_os_string()
                    .into_string()
                    .map_err(|_| RepoError::UnsupportedFile {
                        path: path.clone(),
                        reason: "symlink target is not valid UTF-8",
                    })?;
            let meta = read_meta(&path, &md, opts, true)?;
            top.node.files.push((name, jobs.len()));
            jobs.push(FileJob {
                path,
                meta,
                symlink_target: Some(target),
                size: 0,
                read_xattrs: false,
            });
        } else if ft.is_file() {
            let meta = read_meta(&path, &md, opts, false)?;
            top.node.files.push((name, jobs.len()));
            jobs.push(FileJob {
                path,
                meta,
                symlink_target: None,
                size: md.len(),
                read_xattrs: wants_xattrs(opts),
            });
        } else {
            return Err(RepoError::UnsupportedFile {
                path,
                reason: "only regular files, symlinks and directories can be committed",
            });
        }
    }
}
