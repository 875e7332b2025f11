//! Opening and creating repositories, locking, and object lookup.

use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ostree_format::{Checksum, Commit, DirTree, FileMeta, ObjectName, ObjectType};
use rustix::fs::{Mode, OFlags};

use crate::config::{RepoConfig, RepoMode};
use crate::error::{IoContext, RepoError, Result};
use crate::sys::{self, LockKind};

/// An open ostree repository. Cheap to share between threads (`&Repo` is `Sync`).
#[derive(Debug)]
pub struct Repo {
    pub(crate) path: PathBuf,
    pub(crate) dir: OwnedFd,
    pub(crate) objects: OwnedFd,
    pub(crate) config: RepoConfig,
    pub(crate) boot_id: String,
}

/// A held repository lock; released on drop (closing the file drops the OFD lock).
#[derive(Debug)]
pub struct RepoLock {
    _file: Option<File>,
}

const REPO_DIRS: &[&str] = &[
    "tmp",
    "extensions",
    "state",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
];

/// Opens a directory (read-only, close-on-exec).
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .io("open directory", path)
}

impl Repo {
    /// Creates a repository (like `ostree init`); an existing repository is opened instead.
    pub fn create(path: &Path, mode: RepoMode) -> Result<Repo> {
        if path.join("objects").is_dir() {
            return Repo::open(path);
        }
        fs::create_dir_all(path).io("create", path)?;
        let config = format!("[core]\nrepo_version=1\nmode={}\n", mode.as_config_str());
        let cfg_path = path.join("config");
        if !cfg_path.exists() {
            let tmp = path.join(format!(".config.{}", sys::random_suffix(6)));
            fs::write(&tmp, config).io("write", &tmp)?;
            fs::rename(&tmp, &cfg_path).io("rename", &cfg_path)?;
        }
        for d in REPO_DIRS {
            let p = path.join(d);
            match fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).io("create", p),
            }
        }
        // `objects/` last: its presence is what marks a complete repository.
        let objects = path.join("objects");
        match fs::create_dir(&objects) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).io("create", objects),
        }
        Repo::open(path)
    }

    /// Opens an existing repository and checks its config.
    pub fn open(path: &Path) -> Result<Repo> {
        let path = std::path::absolute(path).io("resolve", path)?;
        let cfg_path = path.join("config");
        let text = match fs::read_to_string(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::NotARepo {
                    path,
                    reason: "no config file".into(),
                });
            }
            Err(e) => return Err(e).io("read", cfg_path),
        };
        let config = RepoConfig::parse(&text)?;
        let objects_path = path.join("objects");
        if !objects_path.is_dir() {
            return Err(RepoError::NotARepo {
                path,
                reason: "no objects directory".into(),
            });
        }
        let dir = open_dir(&path)?;
        let objects = open_dir(&objects_path)?;
        let boot_id = match std::env::var("OSTREE_BOOTID") {
            Ok(b) if !b.is_empty() => b,
            _ => fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown-boot".to_string()),
        };
        let tmp_cache = path.join("tmp/cache");
        if !tmp_cache.exists() {
            // Best effort, as libostree does for writable repositories; read-only ones simply lack it.
            let _ = fs::create_dir(&tmp_cache);
        }
        Ok(Repo {
            path,
            dir,
            objects,
            config,
            boot_id,
        })
    }

    /// The repository's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage mode.
    pub fn mode(&self) -> RepoMode {
        self.config.mode
    }

    /// The parsed configuration.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Takes the repository lock (`.lock`, OFD), waiting up to `core.lock-timeout-secs`.
    /// Shared for writers, exclusive for pruning; compatible with libostree's.
    pub fn lock(&self, exclusive: bool) -> Result<RepoLock> {
        if !self.config.locking {
            return Ok(RepoLock { _file: None });
        }
        let path = self.path.join(".lock");
        let fd = rustix::fs::openat(
            self.dir.as_fd(),
            ".lock",
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o660),
        )
        .io("open", &path)?;
        let kind = if exclusive {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        };
        let timeout = self.config.lock_timeout_secs;
        let start = Instant::now();
        loop {
            if sys::ofd_lock(fd.as_fd(), kind).io("lock", &path)? {
                return Ok(RepoLock {
                    _file: Some(File::from(fd)),
                });
            }
            if timeout >= 0 && start.elapsed() >= Duration::from_secs(timeout as u64) {
                return Err(RepoError::LockTimeout {
                    path,
                    kind: if exclusive { "exclusive" } else { "shared" },
                    secs: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Relative path of an object inside `objects/` for this repository's mode.
    pub fn object_relpath(&self, name: &ObjectName) -> String {
        let h = name.checksum.to_hex();
        let ext = match name.object_type {
            ObjectType::File => self.config.mode.content_extension(),
            t => t.extension(),
        };
        format!("{}/{}.{}", &h[..2], &h[2..], ext)
    }

    /// Full path of a loose object.
    pub fn object_path(&self, name: &ObjectName) -> PathBuf {
        self.path.join("objects").join(self.object_relpath(name))
    }

    /// Whether the object exists in `objects/`.
    pub fn has_object(&self, name: &ObjectName) -> Result<bool> {
        let rel = self.object_relpath(name);
        match rustix::fs::statat(
            self.objects.as_fd(),
            rel.as_str(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e).io("stat", self.object_path(name)),
        }
    }

    /// Reads a metadata object's bytes (no validation beyond the size limit).
    pub fn load_metadata_bytes(&self, name: &ObjectName) -> Result<Vec<u8>> {
        crate::read::read_metadata_at(&self.object_path(name), name)
    }

    /// Loads and parses a commit.
    pub fn load_commit(&self, checksum: &Checksum) -> Result<Commit> {
        let name = ObjectName::new(*checksum, ObjectType::Commit);
        let bytes = self.load_metadata_bytes(&name)?;
        Commit::parse(&bytes).map_err(|source| RepoError::InvalidObject {
            object: name,
            source,
        })
    }

    /// Loads and parses a dirtree.
    pub fn load_dirtree(&self, checksum: &Checksum) -> Result<DirTree> {
        let name = ObjectName::new(*checksum, ObjectType::DirTree);
        let bytes = self.load_metadata_bytes(&name)?;
        DirTree::parse(&bytes).map_err(|source| RepoError::InvalidObject {
            object: name,
            source,
        })
    }

    /// Loads and parses a dirmeta.
    pub fn load_dirmeta(&self, checksum: &Checksum) -> Result<FileMeta> {
        let name = ObjectName::new(*checksum, ObjectType::DirMeta);
        let bytes = self.load_metadata_bytes(&name)?;
        FileMeta::parse_dirmeta(&bytes).map_err(|source| RepoError::InvalidObject {
            object: name,
            source,
        })
    }

    /// Loads a commit's detached metadata, if any.
    pub fn load_commitmeta(&self, commit: &Checksum) -> Result<Option<ostree_format::MetaDict>> {
        let name = ObjectName::new(*commit, ObjectType::CommitMeta);
        match self.load_metadata_bytes(&name) {
            Ok(b) => ostree_format::MetaDict::parse(&b)
                .map(Some)
                .map_err(|source| RepoError::InvalidObject {
                    object: name,
                    source,
                }),
            Err(RepoError::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Path of a commit's partial marker.
    pub fn commitpartial_path(&self, commit: &Checksum) -> PathBuf {
        self.path
            .join("state")
            .join(format!("{commit}.commitpartial"))
    }

    /// Whether the commit is marked partial (objects may be missing).
    pub fn is_commit_partial(&self, commit: &Checksum) -> bool {
        self.commitpartial_path(commit).exists()
    }

    /// Every object of a type present in `objects/` (used by fsck and partial-checksum lookup).
    pub fn list_objects(&self, ty: ObjectType) -> Result<Vec<Checksum>> {
        let ext = match ty {
            ObjectType::File => self.config.mode.content_extension(),
            t => t.extension(),
        };
        let objects = self.path.join("objects");
        let mut out = Vec::new();
        for entry in fs::read_dir(&objects).io("list", &objects)? {
            let entry = entry.io("list", &objects)?;
            let prefix = entry.file_name();
            let Some(prefix) = prefix.to_str() else {
                continue;
            };
            if prefix.len() != 2 || !entry.path().is_dir() {
                continue;
            }
            let sub = entry.path();
            for obj in fs::read_dir(&sub).io("list", &sub)? {
                let obj = obj.io("list", &sub)?;
                let fname = obj.file_name();
                let Some(fname) = fname.to_str() else {
                    continue;
                };
                let Some((rest, e)) = fname.split_once('.') else {
                    continue;
                };
                if e != ext {
                    continue;
                }
                if let Ok(c) = format!("{prefix}{rest}").parse::<Checksum>() {
                    out.push(c);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Bumps the repository directory's mtime so watchers notice ref changes (as libostree does).
    pub(crate) fn bump_mtime(&self) {
        if let Err(e) = sys::set_times(&self.dir, sys::Time::Keep, sys::Time::Now) {
            tracing::debug!("could not bump repository mtime: {e}");
        }
    }
}
