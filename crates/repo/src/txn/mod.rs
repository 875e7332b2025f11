//! Transactions: staging, verified object writes, and the commit protocol that lets us share a
//! repository with libostree (ostree-repo-format §8, §10).

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use ostree_format::{Checksum, ObjectName, ObjectType};
use rustix::fs::AtFlags;

use crate::config::{MinFreeSpace, RepoMode};
use crate::error::{IoContext, RepoError, Result};
use crate::repo::{Repo, RepoLock};
use crate::sys::{self, LockKind};

mod publish;
mod staging;
mod write;

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
        self.publish_staged()?;
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
