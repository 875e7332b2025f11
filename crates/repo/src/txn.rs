//! Transactions: staging, verified object writes, and the commit protocol that lets us share a
//! repository with libostree (ostree-repo-format §8, §10).

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use ostree_format::{
    Checksum, ContentHasher, FileMeta, ObjectName, ObjectType, archive_header, length_prefixed,
    symlink_checksum, validate_metadata, validate_symlink_target,
};
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use crate::config::{MinFreeSpace, RepoMode};
use crate::error::{IoContext, RepoError, Result};
use crate::read::OSTREEMETA_XATTR;
use crate::repo::{Repo, RepoLock};
use crate::sys::{self, LockKind};

/// Payload of a content object to write.
pub enum ContentSource<'a> {
    /// A regular file of `size` bytes read from `reader`.
    Regular {
        /// Exact payload size.
        size: u64,
        /// The payload.
        reader: &'a mut dyn Read,
    },
    /// A symbolic link.
    Symlink {
        /// Its target.
        target: &'a str,
    },
}

/// Counters of a transaction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TxnStats {
    /// Metadata objects written.
    pub metadata_written: u64,
    /// Content objects written.
    pub content_written: u64,
    /// Objects skipped because they already existed.
    pub already_present: u64,
    /// Payload bytes written (uncompressed).
    pub content_bytes: u64,
}

#[derive(Default)]
struct AtomicStats {
    metadata_written: AtomicU64,
    content_written: AtomicU64,
    already_present: AtomicU64,
    content_bytes: AtomicU64,
}

/// Remaining free-space budget in blocks (libostree's `txn.max_blocks`).
struct Budget {
    blocks: AtomicI64,
    block_size: u64,
    reserve: MinFreeSpace,
}

/// A locked staging directory `tmp/staging-<bootid>-<random>`.
struct Staging {
    path: PathBuf,
    fd: OwnedFd,
    lock_path: PathBuf,
    lock_file: File,
}

/// An open transaction. Writes may come from several threads at once (`&Transaction` is `Sync`).
/// Dropping it without [`Transaction::commit`] aborts: staged objects are discarded, no ref moves.
pub struct Transaction<'r> {
    repo: &'r Repo,
    staging: Staging,
    prefix_dirs: Vec<AtomicBool>,
    pending_refs: Mutex<Vec<(String, Option<Checksum>)>>,
    partial: Mutex<Vec<Checksum>>,
    budget: Option<Budget>,
    stats: AtomicStats,
    finished: bool,
    _lock: RepoLock,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("staging", &self.staging.path)
            .finish_non_exhaustive()
    }
}

impl Repo {
    /// Starts a transaction: shared repository lock, a locked staging directory (adopting an
    /// abandoned one from this boot, as libostree does), and the free-space budget.
    pub fn begin_transaction(&self) -> Result<Transaction<'_>> {
        let lock = self.lock(false)?;
        if self.config.mode == RepoMode::BareUser {
            self.probe_user_xattrs()?;
        }
        let staging = self.allocate_staging()?;
        let budget = self.compute_budget()?;
        Ok(Transaction {
            repo: self,
            staging,
            prefix_dirs: (0..256).map(|_| AtomicBool::new(false)).collect(),
            pending_refs: Mutex::new(Vec::new()),
            partial: Mutex::new(Vec::new()),
            budget,
            stats: AtomicStats::default(),
            finished: false,
            _lock: lock,
        })
    }

    fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    fn probe_user_xattrs(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        let tmpfd = rustix::fs::open(
            &tmp,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .io("open", &tmp)?;
        let f = sys::tmpfile_in(tmpfd.as_fd()).io("create temporary file in", &tmp)?;
        match rustix::fs::fsetxattr(
            f.as_fd(),
            "user.ostree-container-probe",
            b"1",
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::NOTSUP) => Err(RepoError::XattrsUnsupported {
                path: self.path.clone(),
            }),
            Err(e) => Err(e).io("set xattr in", tmp),
        }
    }

    fn allocate_staging(&self) -> Result<Staging> {
        let tmp = self.tmp_dir();
        let prefix = format!("staging-{}-", self.boot_id);
        // Adopt an unlocked staging dir of this boot: it holds only complete, verified objects.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.starts_with(&prefix) || name.ends_with("-lock") || !e.path().is_dir() {
                    continue;
                }
                if let Some(st) = self.try_lock_staging(e.path())? {
                    tracing::debug!("adopting staging directory {}", st.path.display());
                    let _ = rustix::fs::futimens(
                        &st.fd,
                        &rustix::fs::Timestamps {
                            last_access: rustix::fs::Timespec {
                                tv_sec: 0,
                                tv_nsec: rustix::fs::UTIME_NOW,
                            },
                            last_modification: rustix::fs::Timespec {
                                tv_sec: 0,
                                tv_nsec: rustix::fs::UTIME_NOW,
                            },
                        },
                    );
                    return Ok(st);
                }
            }
        }
        for _ in 0..100 {
            let path = tmp.join(format!("{prefix}{}", sys::random_suffix(6)));
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).io("create staging directory", path),
            }
            if let Some(st) = self.try_lock_staging(path)? {
                return Ok(st);
            }
        }
        Err(RepoError::InvalidArgument(format!(
            "could not allocate a staging directory in {}",
            tmp.display()
        )))
    }

    /// Locks `<dir>-lock` exclusively (OFD, non-blocking); `None` if someone else holds it.
    fn try_lock_staging(&self, path: PathBuf) -> Result<Option<Staging>> {
        let mut lock_os = path.clone().into_os_string();
        lock_os.push("-lock");
        let lock_path = PathBuf::from(lock_os);
        loop {
            let fd = rustix::fs::open(
                &lock_path,
                OFlags::CREATE | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .io("open", &lock_path)?;
            if !sys::ofd_lock(fd.as_fd(), LockKind::Exclusive).io("lock", &lock_path)? {
                return Ok(None);
            }
            // The previous owner unlinks the lock file on release: if ours is gone, retry.
            let st = rustix::fs::fstat(&fd).io("stat", &lock_path)?;
            if st.st_nlink == 0 {
                continue;
            }
            let dirfd = match rustix::fs::open(
                &path,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(d) => d,
                Err(rustix::io::Errno::NOENT) => {
                    let _ = fs::remove_file(&lock_path);
                    return Ok(None);
                }
                Err(e) => return Err(e).io("open", &path),
            };
            return Ok(Some(Staging {
                path,
                fd: dirfd,
                lock_path,
                lock_file: File::from(fd),
            }));
        }
    }

    fn compute_budget(&self) -> Result<Option<Budget>> {
        let st = rustix::fs::fstatvfs(&self.objects).io("statvfs", self.path.join("objects"))?;
        let bsize = st.f_frsize.max(1);
        let free = if sys::is_root() {
            st.f_bfree
        } else {
            st.f_bavail
        };
        let reserve_blocks = match self.config.min_free_space {
            MinFreeSpace::Percent(0) => return Ok(None),
            MinFreeSpace::Percent(p) => st.f_blocks.saturating_mul(u64::from(p)) / 100,
            MinFreeSpace::Bytes(0) => return Ok(None),
            MinFreeSpace::Bytes(b) => b.div_ceil(bsize),
        };
        Ok(Some(Budget {
            blocks: AtomicI64::new(free as i64 - reserve_blocks as i64),
            block_size: bsize,
            reserve: self.config.min_free_space,
        }))
    }

    /// Deletes stale entries of `tmp/` the way libostree's `cleanup_tmpdir` does: staging dirs of
    /// other boots that nobody holds, and anything older than `core.tmp-expiry-secs`.
    pub(crate) fn cleanup_tmpdir(&self) {
        let tmp = self.tmp_dir();
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let own = format!("staging-{}-", self.boot_id);
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == "cache" {
                continue;
            }
            let path = e.path();
            let Ok(md) = fs::symlink_metadata(&path) else {
                continue;
            };
            if name.starts_with("staging-") && md.is_dir() {
                if name.starts_with(&own) {
                    continue;
                }
                if let Ok(Some(st)) = self.try_lock_staging(path.clone()) {
                    let _ = fs::remove_dir_all(&st.path);
                    drop(st.lock_file);
                    let _ = fs::remove_file(&st.lock_path);
                }
                continue;
            }
            let mtime = md.mtime();
            if mtime <= now && now - mtime > self.config.tmp_expiry_secs as i64 {
                if name.starts_with("staging-") && name.ends_with("-lock") {
                    // Never delete a lock file somebody holds.
                    if let Ok(f) = File::options().read(true).write(true).open(&path)
                        && !matches!(sys::ofd_lock(f.as_fd(), LockKind::Exclusive), Ok(true))
                    {
                        continue;
                    }
                }
                let _ = if md.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}

impl<'r> Transaction<'r> {
    /// The repository.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// Counters so far.
    pub fn stats(&self) -> TxnStats {
        TxnStats {
            metadata_written: self.stats.metadata_written.load(Ordering::Relaxed),
            content_written: self.stats.content_written.load(Ordering::Relaxed),
            already_present: self.stats.already_present.load(Ordering::Relaxed),
            content_bytes: self.stats.content_bytes.load(Ordering::Relaxed),
        }
    }

    /// Whether the object exists, staged or committed.
    pub fn has_object(&self, name: &ObjectName) -> Result<bool> {
        let rel = self.repo.object_relpath(name);
        match rustix::fs::statat(
            self.staging.fd.as_fd(),
            rel.as_str(),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).io("stat", self.staging.path.join(&rel)),
        }
        self.repo.has_object(name)
    }

    /// Loads a metadata object, staged or committed.
    pub fn load_metadata_bytes(&self, name: &ObjectName) -> Result<Vec<u8>> {
        let staged = self.staging.path.join(self.repo.object_relpath(name));
        match fs::read(&staged) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.repo.load_metadata_bytes(name)
            }
            Err(e) => Err(e).io("read", staged),
        }
    }

    /// Reads a content object, staged or committed.
    pub fn read_content(&self, checksum: &Checksum) -> Result<crate::read::ContentObject> {
        let name = ObjectName::new(*checksum, ObjectType::File);
        let staged = self.staging.path.join(self.repo.object_relpath(&name));
        if staged.symlink_metadata().is_ok() {
            return crate::read::read_content_at(
                &staged,
                self.repo.config.mode,
                self.repo.config.disable_xattrs,
                name,
            );
        }
        self.repo.read_content(checksum)
    }

    fn ensure_prefix_dir(&self, hex: &str) -> Result<()> {
        let idx = usize::from_str_radix(&hex[..2], 16).unwrap_or(0);
        if self.prefix_dirs[idx].load(Ordering::Relaxed) {
            return Ok(());
        }
        match rustix::fs::mkdirat(
            self.staging.fd.as_fd(),
            &hex[..2],
            Mode::from_raw_mode(0o777),
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).io("create", self.staging.path.join(&hex[..2])),
        }
        self.prefix_dirs[idx].store(true, Ordering::Relaxed);
        Ok(())
    }

    fn charge(&self, bytes: u64) -> Result<()> {
        let Some(b) = &self.budget else { return Ok(()) };
        let blocks = bytes.div_ceil(b.block_size) as i64;
        let before = b.blocks.fetch_sub(blocks, Ordering::Relaxed);
        if before - blocks < 0 {
            b.blocks.fetch_add(blocks, Ordering::Relaxed);
            return Err(RepoError::NoSpace {
                path: self.repo.path.clone(),
                needed: bytes,
                reserve: b.reserve.to_string(),
            });
        }
        Ok(())
    }

    /// Links a finished temporary file into staging under `name`; an existing object wins.
    fn link_into_staging(&self, file: &File, name: &ObjectName) -> Result<()> {
        let rel = self.repo.object_relpath(name);
        self.ensure_prefix_dir(&rel)?;
        match sys::link_tmpfile(file, self.staging.fd.as_fd(), &rel) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e).io("link", self.staging.path.join(&rel)),
        }
    }

    fn new_tmpfile(&self) -> Result<File> {
        sys::tmpfile_in(self.staging.fd.as_fd()).io("create temporary file in", &self.staging.path)
    }

    /// Writes a metadata object after checking its size, normal form, structure and (if given)
    /// that it hashes to `expected`. Returns its checksum. An existing object is not rewritten.
    /// Detached metadata goes through [`Transaction::write_commitmeta`].
    pub fn write_metadata(
        &self,
        ty: ObjectType,
        expected: Option<Checksum>,
        bytes: &[u8],
    ) -> Result<Checksum> {
        if !ty.is_metadata() || ty == ObjectType::CommitMeta {
            return Err(RepoError::InvalidArgument(format!(
                "{ty} is not a hashed metadata type"
            )));
        }
        let actual = Checksum::digest(bytes);
        let name = ObjectName::new(expected.unwrap_or(actual), ty);
        if expected.is_some_and(|e| e != actual) {
            return Err(RepoError::ChecksumMismatch {
                expected: name,
                actual,
            });
        }
        validate_metadata(ty, bytes).map_err(|source| RepoError::InvalidObject {
            object: name,
            source,
        })?;
        if self.has_object(&name)? {
            self.stats.already_present.fetch_add(1, Ordering::Relaxed);
            return Ok(actual);
        }
        self.charge(bytes.len() as u64)?;
        let mut f = self.new_tmpfile()?;
        f.write_all(bytes).io("write", &self.staging.path)?;
        rustix::fs::fchmod(&f, Mode::from_raw_mode(0o644)).io("chmod", &self.staging.path)?;
        self.link_into_staging(&f, &name)?;
        self.stats.metadata_written.fetch_add(1, Ordering::Relaxed);
        Ok(actual)
    }

    /// Stores detached metadata for `commit` verbatim (after validation), replacing any previous.
    pub fn write_commitmeta(&self, commit: &Checksum, bytes: &[u8]) -> Result<()> {
        let name = ObjectName::new(*commit, ObjectType::CommitMeta);
        validate_metadata(ObjectType::CommitMeta, bytes).map_err(|source| {
            RepoError::InvalidObject {
                object: name,
                source,
            }
        })?;
        self.charge(bytes.len() as u64)?;
        let rel = self.repo.object_relpath(&name);
        self.ensure_prefix_dir(&rel)?;
        let tmp_name = format!("{}/.tmp-{}", &rel[..2], sys::random_suffix(8));
        let tmp_path = self.staging.path.join(&tmp_name);
        fs::write(&tmp_path, bytes).io("write", &tmp_path)?;
        fs::rename(&tmp_path, self.staging.path.join(&rel)).io("rename", &tmp_path)?;
        self.stats.metadata_written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes a content object. With `expected`, an object already present returns at once
    /// (the source is not read) and a checksum mismatch is an error; nothing unverified is ever
    /// linked into staging.
    pub fn write_content(
        &self,
        expected: Option<Checksum>,
        meta: &FileMeta,
        source: ContentSource<'_>,
    ) -> Result<Checksum> {
        let label = |c: Option<Checksum>| {
            c.map(|c| format!("{c}.file"))
                .unwrap_or_else(|| "new content".into())
        };
        let bad = |source| match expected {
            Some(c) => RepoError::InvalidObject {
                object: ObjectName::new(c, ObjectType::File),
                source,
            },
            None => RepoError::Format {
                context: label(None),
                source,
            },
        };
        meta.validate_content_mode().map_err(bad)?;
        meta.xattrs.check_canonical().map_err(bad)?;
        if let ContentSource::Symlink { target } = &source {
            validate_symlink_target(target).map_err(bad)?;
        }
        self.check_mode_restrictions(meta, &label(expected))?;
        if let Some(e) = expected
            && self.has_object(&ObjectName::new(e, ObjectType::File))?
        {
            self.stats.already_present.fetch_add(1, Ordering::Relaxed);
            return Ok(e);
        }
        let checksum = match source {
            ContentSource::Symlink { target } => self.write_symlink(expected, meta, target)?,
            ContentSource::Regular { size, reader } => {
                self.write_regular(expected, meta, size, reader)?
            }
        };
        Ok(checksum)
    }

    fn check_mode_restrictions(&self, meta: &FileMeta, what: &str) -> Result<()> {
        let mode = self.repo.config.mode;
        let refuse = |reason: String| {
            Err(RepoError::ModeRestriction {
                object: what.to_string(),
                mode: mode.name(),
                reason,
            })
        };
        match mode {
            RepoMode::BareUserOnly => {
                if meta.uid != 0 || meta.gid != 0 {
                    return refuse(format!("owner {}:{} is not 0:0", meta.uid, meta.gid));
                }
                if !meta.xattrs.is_empty() {
                    return refuse("extended attributes cannot be stored".into());
                }
                if meta.is_regular() && meta.mode & 0o7777 & !0o775 != 0 {
                    return refuse(format!(
                        "mode {:o} has bits outside 0775",
                        meta.mode & 0o7777
                    ));
                }
            }
            RepoMode::Bare if self.repo.config.disable_xattrs && !meta.xattrs.is_empty() => {
                return refuse("core.disable-xattrs is set".into());
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_content(
        &self,
        expected: Option<Checksum>,
        actual: Checksum,
        file: Option<&File>,
    ) -> Result<bool> {
        let name = ObjectName::new(actual, ObjectType::File);
        if let Some(e) = expected
            && e != actual
        {
            return Err(RepoError::ChecksumMismatch {
                expected: ObjectName::new(e, ObjectType::File),
                actual,
            });
        }
        if expected.is_none() && self.has_object(&name)? {
            self.stats.already_present.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        if let Some(f) = file {
            self.link_into_staging(f, &name)?;
        }
        self.stats.content_written.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn write_regular(
        &self,
        expected: Option<Checksum>,
        meta: &FileMeta,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<Checksum> {
        let mode = self.repo.config.mode;
        self.charge(size)?;
        let file = self.new_tmpfile()?;
        let mut hasher = ContentHasher::new(meta, None);
        let staging = &self.staging.path;
        let copied = if mode == RepoMode::Archive {
            let mut w = BufWriter::with_capacity(128 * 1024, &file);
            w.write_all(&length_prefixed(&archive_header(size, meta, None)))
                .io("write", staging)?;
            let mut enc = flate2::write::DeflateEncoder::new(
                w,
                flate2::Compression::new(self.repo.config.zlib_level),
            );
            let n = copy_hashing(reader, &mut hasher, &mut enc).io("write object in", staging)?;
            enc.finish()
                .and_then(|mut w| w.flush())
                .io("write", staging)?;
            n
        } else {
            let mut w = BufWriter::with_capacity(128 * 1024, &file);
            let n = copy_hashing(reader, &mut hasher, &mut w).io("write object in", staging)?;
            w.flush().io("write", staging)?;
            n
        };
        if copied != size {
            return Err(RepoError::SizeMismatch {
                what: expected.map(|e| format!("{e}.file")).unwrap_or_default(),
                expected: size,
                actual: copied,
            });
        }
        let actual = hasher.finish();
        if let Some(e) = expected
            && e != actual
        {
            return Err(RepoError::ChecksumMismatch {
                expected: ObjectName::new(e, ObjectType::File),
                actual,
            });
        }
        self.apply_file_meta(&file, meta)?;
        self.finish_content(expected, actual, Some(&file))?;
        self.stats.content_bytes.fetch_add(size, Ordering::Relaxed);
        Ok(actual)
    }

    /// Ownership, mode, xattrs and mtime of a regular object file, per repository mode.
    fn apply_file_meta(&self, file: &File, meta: &FileMeta) -> Result<()> {
        let p = &self.staging.path;
        match self.repo.config.mode {
            RepoMode::Bare => {
                rustix::fs::fchown(
                    file,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                )
                .io("chown object in", p)?;
                rustix::fs::fchmod(file, Mode::from_raw_mode(meta.mode & 0o7777))
                    .io("chmod object in", p)?;
                sys::set_xattrs_fd(file.as_fd(), meta.xattrs.pairs())
                    .io("set xattrs of object in", p)?;
                sys::zero_mtime(file).io("set mtime of object in", p)?;
            }
            RepoMode::BareUser => {
                let on_disk = if meta.is_symlink() {
                    0o644
                } else {
                    (meta.mode & 0o775) | 0o400
                };
                rustix::fs::fchmod(file, Mode::from_raw_mode(on_disk)).io("chmod object in", p)?;
                rustix::fs::fsetxattr(
                    file,
                    OSTREEMETA_XATTR,
                    &meta.to_dirmeta_bytes(),
                    rustix::fs::XattrFlags::empty(),
                )
                .io("set user.ostreemeta of object in", p)?;
                sys::zero_mtime(file).io("set mtime of object in", p)?;
            }
            RepoMode::BareUserOnly => {
                rustix::fs::fchmod(file, Mode::from_raw_mode(meta.mode & 0o7777))
                    .io("chmod object in", p)?;
                sys::zero_mtime(file).io("set mtime of object in", p)?;
            }
            RepoMode::Archive => {
                rustix::fs::fchmod(file, Mode::from_raw_mode(0o644)).io("chmod object in", p)?;
            }
        }
        Ok(())
    }

    fn write_symlink(
        &self,
        expected: Option<Checksum>,
        meta: &FileMeta,
        target: &str,
    ) -> Result<Checksum> {
        let actual = symlink_checksum(meta, target);
        let name = ObjectName::new(actual, ObjectType::File);
        if expected.is_some_and(|e| e != actual)
            || (expected.is_none() && self.has_object(&name)?)
        {
            return self.finish_content(expected, actual, None).map(|_| actual);
        }
        self.charge(target.len() as u64 + 1)?;
        let p = &self.staging.path;
        match self.repo.config.mode {
            RepoMode::Bare | RepoMode::BareUserOnly => {
                let rel = self.repo.object_relpath(&name);
                self.ensure_prefix_dir(&rel)?;
                let tmp_name = format!("{}/.tmp-{}", &rel[..2], sys::random_suffix(8));
                rustix::fs::symlinkat(target, self.staging.fd.as_fd(), tmp_name.as_str())
                    .io("symlink in", p)?;
                let tmp_path = p.join(&tmp_name);
                let applied = (|| -> Result<()> {
                    if self.repo.config.mode == RepoMode::Bare {
                        rustix::fs::chownat(
                            self.staging.fd.as_fd(),
                            tmp_name.as_str(),
                            Some(rustix::fs::Uid::from_raw(meta.uid)),
                            Some(rustix::fs::Gid::from_raw(meta.gid)),
                            AtFlags::SYMLINK_NOFOLLOW,
                        )
                        .io("chown", &tmp_path)?;
                        sys::set_xattrs_path(&tmp_path, meta.xattrs.pairs())
                            .io("set xattrs of", &tmp_path)?;
                    }
                    Ok(())
                })();
                let renamed = applied.and_then(|()| {
                    match rustix::fs::renameat_with(
                        self.staging.fd.as_fd(),
                        tmp_name.as_str(),
                        self.staging.fd.as_fd(),
                        rel.as_str(),
                        RenameFlags::NOREPLACE,
                    ) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
                        Err(e) => Err(e).io("rename", &tmp_path),
                    }
                });
                let _ = rustix::fs::unlinkat(
                    self.staging.fd.as_fd(),
                    tmp_name.as_str(),
                    AtFlags::empty(),
                );
                renamed?;
                self.finish_content(expected, actual, None)?;
            }
            RepoMode::BareUser => {
                let mut file = self.new_tmpfile()?;
                file.write_all(target.as_bytes())
                    .and_then(|()| file.write_all(&[0]))
                    .io("write object in", p)?;
                self.apply_file_meta(&file, meta)?;
                self.finish_content(expected, actual, Some(&file))?;
            }
            RepoMode::Archive => {
                let mut file = self.new_tmpfile()?;
                file.write_all(&length_prefixed(&archive_header(0, meta, Some(target))))
                    .io("write object in", p)?;
                self.apply_file_meta(&file, meta)?;
                self.finish_content(expected, actual, Some(&file))?;
            }
        }
        Ok(actual)
    }

    /// Marks `commit` partial (`state/<commit>.commitpartial`) until the transaction proves it
    /// complete. Call before writing the commit's objects.
    pub fn mark_partial(&self, commit: &Checksum) -> Result<()> {
        let path = self.repo.commitpartial_path(commit);
        match File::options().write(true).create_new(true).open(&path) {
            Ok(f) => {
                if self.repo.config.fsync {
                    f.sync_all().io("sync", &path)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).io("create", path),
        }
        if let Ok(mut p) = self.partial.lock() {
            p.push(*commit);
        }
        Ok(())
    }

    /// Queues a ref update (`None` deletes); applied by [`Transaction::commit`] after the
    /// objects are durable and the commit is proven complete.
    pub fn set_ref(&self, name: &str, target: Option<Checksum>) -> Result<()> {
        crate::refs::validate_ref_spec(name)?;
        if let Ok(mut r) = self.pending_refs.lock() {
            r.push((name.to_string(), target));
        }
        Ok(())
    }

    /// Publishes the transaction: sync, move staged objects into `objects/`, sync directories,
    /// verify every commit that refs will point at (or that was marked partial) is complete,
    /// write refs, drop partial markers.
    pub fn commit(mut self) -> Result<TxnStats> {
        let fsync = self.repo.config.fsync;
        if fsync {
            rustix::fs::syncfs(&self.staging.fd).io("syncfs", &self.staging.path)?;
        }
        let objects_path = self.repo.path.join("objects");
        for entry in fs::read_dir(&self.staging.path).io("list", &self.staging.path)? {
            let entry = entry.io("list", &self.staging.path)?;
            let prefix = entry.file_name();
            let Some(prefix) = prefix.to_str() else {
                continue;
            };
            if prefix.len() != 2 || !entry.file_type().io("stat", entry.path())?.is_dir() {
                continue;
            }
            match rustix::fs::mkdirat(
                self.repo.objects.as_fd(),
                prefix,
                Mode::from_raw_mode(0o777),
            ) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e).io("create", objects_path.join(prefix)),
            }
            let dst_dir = objects_path.join(prefix);
            let dst_fd = rustix::fs::open(
                &dst_dir,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .io("open", &dst_dir)?;
            let src_dir = entry.path();
            let src_fd = rustix::fs::open(
                &src_dir,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .io("open", &src_dir)?;
            for obj in fs::read_dir(&src_dir).io("list", &src_dir)? {
                let obj = obj.io("list", &src_dir)?;
                let fname = obj.file_name();
                let Some(fname) = fname.to_str() else {
                    continue;
                };
                if fname.starts_with('.') {
                    continue;
                }
                // Detached metadata is replaced; every other object is immutable, first one wins.
                let flags = if fname.ends_with(".commitmeta") {
                    RenameFlags::empty()
                } else {
                    RenameFlags::NOREPLACE
                };
                match rustix::fs::renameat_with(&src_fd, fname, &dst_fd, fname, flags) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        let _ = rustix::fs::unlinkat(&src_fd, fname, AtFlags::empty());
                    }
                    Err(e) => return Err(e).io("rename", src_dir.join(fname)),
                }
            }
            if fsync {
                rustix::fs::fsync(&dst_fd).io("fsync", &dst_dir)?;
            }
        }
        if fsync {
            rustix::fs::fsync(&self.repo.objects).io("fsync", &objects_path)?;
        }
        self.release_staging();
        self.repo.cleanup_tmpdir();

        let refs = self
            .pending_refs
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        let partial = self
            .partial
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let mut verified = std::collections::HashSet::new();
        for c in refs
            .iter()
            .filter_map(|(_, c)| *c)
            .chain(partial.iter().copied())
        {
            if verified.insert(c) {
                let missing = self.repo.find_missing(&c)?;
                if let Some(first) = missing.first() {
                    return Err(RepoError::ObjectNotFound(*first));
                }
            }
        }
        for (name, target) in &refs {
            self.repo.write_ref(name, target.as_ref())?;
        }
        for c in &partial {
            let p = self.repo.commitpartial_path(c);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).io("remove", p),
            }
        }
        self.finished = true;
        Ok(self.stats())
    }

    /// Discards the transaction (same as dropping it).
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.staging.path);
            self.release_staging();
            self.repo.cleanup_tmpdir();
            self.finished = true;
        }
    }

    fn release_staging(&mut self) {
        let _ = fs::remove_dir_all(&self.staging.path);
        // The exclusive owner unlinks the lock file before closing it (libglnx protocol).
        let _ = fs::remove_file(&self.staging.lock_path);
        let _ = sys::ofd_lock(self.staging.lock_file.as_fd(), LockKind::Unlock);
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.discard();
    }
}

/// Copies `reader` to `out` while hashing; returns the byte count.
fn copy_hashing(
    reader: &mut dyn Read,
    hasher: &mut ContentHasher,
    out: &mut dyn Write,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}
