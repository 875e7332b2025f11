//! Transactions: staging, verified object writes, and the commit protocol that lets us share a
//! repository with libostree (ostree-repo-format §8, §10).

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use ostree_format::{Checksum, ObjectName, ObjectType};

use crate::config::{MinFreeSpace, RepoMode};
use crate::error::{IoContext, RepoError, Result};
use crate::repo::{Repo, RepoLock};
use crate::sys::{self, LockKind};

mod flush;
mod publish;
mod staged;
mod staging;
mod write;

/// Payload of a content object to write.
#[non_exhaustive]
pub enum ContentSource<'a> {
    /// A regular file of `size` bytes read from `reader`.
    Regular {
        /// Exact payload size.
        size: u64,
        /// The payload.
        reader: &'a mut dyn Read,
    },
    /// A regular file whose whole payload is in memory (written without copying).
    Bytes(&'a [u8]),
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

/// A queued ref update.
#[derive(Debug, Clone)]
struct PendingRef {
    name: String,
    target: Option<Checksum>,
    /// `Some(x)`: only if the ref still holds `x` (`Some(None)`: only if it does not exist).
    expected: Option<Option<Checksum>>,
}

/// An open transaction. Writes may come from several threads at once (`&Transaction` is `Sync`).
/// Dropping it without [`Transaction::commit`] aborts: staged objects are discarded, no ref moves.
pub struct Transaction<'r> {
    repo: &'r Repo,
    staging: Staging,
    staged: staged::StagedSet,
    /// Commits proven complete in this transaction (objects are only ever added, so a proof
    /// stays valid until publication).
    verified: Mutex<std::collections::HashSet<Checksum>>,
    flusher: flush::Flusher,
    /// The umask files in the staging directory get, if known (see `sys::creation_umask`).
    create_umask: Option<u32>,
    /// (ref, target, expected current value if compare-and-swap).
    pending_refs: Mutex<Vec<PendingRef>>,
    /// Commits marked partial by [`Transaction::mark_partial`], and whether this transaction
    /// created the marker (then it removes it again if it ends with nothing of the commit
    /// published).
    partial: Mutex<Vec<(Checksum, bool)>>,
    /// Detached metadata staged by [`Transaction::write_commitmeta_unless_present`] (paths
    /// relative to `objects/`): published only where none exists.
    commitmeta_keep: Mutex<std::collections::HashSet<String>>,
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
        let staged = staged::StagedSet::load(&staging.path, self.config.mode)?;
        let create_umask = sys::creation_umask(staging.fd.as_fd());
        let budget = self.compute_budget()?;
        Ok(Transaction {
            repo: self,
            staging,
            staged,
            verified: Mutex::new(std::collections::HashSet::new()),
            flusher: flush::Flusher::default(),
            create_umask,
            pending_refs: Mutex::new(Vec::new()),
            partial: Mutex::new(Vec::new()),
            commitmeta_keep: Mutex::new(std::collections::HashSet::new()),
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
        Ok(self.staged.contains(name) || self.repo.has_object(name)?)
    }

    /// Loads a metadata object, staged or committed.
    pub fn load_metadata_bytes(&self, name: &ObjectName) -> Result<Vec<u8>> {
        if self.staged.contains(name) {
            let staged = self.staging.path.join(self.repo.object_relpath(name));
            return crate::read::read_metadata_at(&staged, name);
        }
        self.repo.load_metadata_bytes(name)
    }

    /// Reads a content object, staged or committed.
    pub fn read_content(&self, checksum: &Checksum) -> Result<crate::read::ContentObject> {
        let name = ObjectName::new(*checksum, ObjectType::File);
        if self.staged.contains(&name) {
            let staged = self.staging.path.join(self.repo.object_relpath(&name));
            return crate::read::read_content_at(
                &staged,
                self.repo.config.mode,
                self.repo.config.disable_xattrs,
                name,
            );
        }
        self.repo.read_content(checksum)
    }

    /// Walks `commit` as this transaction sees the repository (staged objects count). A commit
    /// found complete is remembered, so that [`Transaction::commit`] need not walk it again.
    pub fn traverse_commit(&self, commit: &Checksum) -> Result<crate::Reachable> {
        let r = crate::traverse::walk(self, commit)?;
        if r.missing.is_empty() && r.corrupt.is_empty() {
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*commit);
        }
        Ok(r)
    }

    /// Objects reachable from `commit` that are neither staged nor committed; empty means the
    /// commit will be complete once published.
    pub fn find_missing(&self, commit: &Checksum) -> Result<Vec<ObjectName>> {
        if self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(commit)
        {
            return Ok(Vec::new());
        }
        crate::traverse::missing_of(self, commit, || self.traverse_commit(commit))
    }

    /// Marks `commit` partial (`state/<commit>.commitpartial`) until the transaction proves it
    /// complete. Call before writing the commit's objects.
    ///
    /// The marker lives only as long as a partial commit's objects can: it is removed when the
    /// transaction publishes the commit complete, and also when the transaction ends (aborted,
    /// dropped, or failed) without the commit object having been published, provided this
    /// transaction created it (a marker found in place belongs to an earlier partial pull or
    /// to a concurrent transaction and is left alone).
    pub fn mark_partial(&self, commit: &Checksum) -> Result<()> {
        let path = self.repo.commitpartial_path(commit);
        let created = match File::options().write(true).create_new(true).open(&path) {
            Ok(_) => {
                // Not synced here, as libostree does not (`ostree_repo_mark_commit_partial`
                // only creates it): the marker is created before any object of the commit is
                // published, the filesystem journals the two in that order, and the syncfs
                // before the refs are written makes both durable. Two fsyncs per commit saved.
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e).io("create", path),
        };
        let mut p = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        match p.iter_mut().find(|(c, _)| c == commit) {
            Some(entry) => entry.1 |= created,
            None => p.push((*commit, created)),
        }
        Ok(())
    }

    /// Removes the markers this transaction created for commits whose commit object is not in
    /// the repository (nothing of the commit is visible as a commit, so there is nothing for the
    /// marker to qualify). Best effort: this runs on failure paths.
    fn drop_unneeded_markers(&self, partial: &[(Checksum, bool)]) {
        for (c, created) in partial {
            if !*created {
                continue;
            }
            let name = ObjectName::new(*c, ObjectType::Commit);
            if matches!(self.repo.has_object(&name), Ok(false)) {
                let p = self.repo.commitpartial_path(c);
                if let Err(e) = fs::remove_file(&p)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove partial marker");
                }
            }
        }
    }

    /// Starts writing back what is staged so far, in the background, when the writer is about
    /// to spend a while on CPU (a merge, say): the syncfs of [`Transaction::commit`] then finds
    /// little left to wait for. Does nothing when the repository does not fsync.
    pub fn start_writeback(&self) {
        if self.repo.config.fsync {
            self.flusher.request(&self.staging.path);
        }
    }

    /// Queues a ref update (`None` deletes); applied by [`Transaction::commit`] after the
    /// objects are durable and the commit is proven complete.
    pub fn set_ref(&self, name: &str, target: Option<Checksum>) -> Result<()> {
        crate::refs::validate_ref_spec(name)?;
        self.pending_refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingRef {
                name: name.to_string(),
                target,
                expected: None,
            });
        Ok(())
    }

    /// Like [`Transaction::set_ref`], but the commit fails with [`RepoError::RefChanged`] (and
    /// writes no ref) unless the ref still holds `expected` (`None`: does not exist) then.
    pub fn set_ref_expecting(
        &self,
        name: &str,
        expected: Option<Checksum>,
        target: Option<Checksum>,
    ) -> Result<()> {
        crate::refs::validate_ref_spec(name)?;
        self.pending_refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingRef {
                name: name.to_string(),
                target,
                expected: Some(expected),
            });
        Ok(())
    }

    /// Publishes the transaction: proves every commit that refs will point at (or that was
    /// marked partial) complete while the filesystem syncs, moves staged objects into
    /// `objects/`, syncs directories, then — only if every proof held — writes refs and drops
    /// partial markers. The proof may run before the move: objects are only ever added, and the
    /// shared repository lock keeps `ostree prune` out until we are done.
    pub fn commit(mut self) -> Result<TxnStats> {
        let refs =
            std::mem::take(&mut *self.pending_refs.lock().unwrap_or_else(|p| p.into_inner()));
        // The new refs' contents are written into staging now, so that the syncfs below makes
        // them durable with the objects: each ref is then one rename, not one fdatasync more.
        // (Before the markers are taken: on failure the drop discards them with staging.)
        let staged_refs = self.stage_ref_files(&refs)?;
        let partial = std::mem::take(&mut *self.partial.lock().unwrap_or_else(|p| p.into_inner()));
        let started = std::time::Instant::now();
        self.flusher.stop();
        let fsync = self.repo.config.fsync;
        let (synced, proven) = std::thread::scope(|s| {
            let sync = fsync.then(|| {
                s.spawn(|| {
                    let r = rustix::fs::syncfs(&self.staging.fd).io("syncfs", &self.staging.path);
                    tracing::debug!(elapsed = ?started.elapsed(), "staged objects synced");
                    r
                })
            });
            let proven = self.prove_complete(&refs, &partial);
            tracing::debug!(elapsed = ?started.elapsed(), "commits proven complete");
            let synced = match sync.map(|h| h.join()) {
                None | Some(Ok(Ok(()))) => Ok(()),
                Some(Ok(Err(e))) => Err(e),
                Some(Err(_)) => Err(RepoError::Internal("syncfs thread panicked".into())),
            };
            (synced, proven)
        });
        if let Err(e) = synced {
            // Nothing published: the drop discards staging; the markers go with it.
            *self.partial.lock().unwrap_or_else(|p| p.into_inner()) = partial;
            return Err(e);
        }
        // Verified objects are published even when a commit is incomplete (as libostree does:
        // it walks after publishing), so that a retry need not fetch them again; no ref moves.
        if let Err(e) = self.publish_staged() {
            *self.partial.lock().unwrap_or_else(|p| p.into_inner()) = partial;
            return Err(e);
        }
        tracing::debug!(elapsed = ?started.elapsed(), "staged objects published");
        let result = self.write_published_refs(&refs, &staged_refs, &partial, proven);
        tracing::debug!(elapsed = ?started.elapsed(), refs = refs.len(), "refs written");
        self.release_staging();
        self.repo.cleanup_tmpdir();
        self.finished = true;
        result.map(|()| self.stats())
    }

    /// Writes each new ref's contents into a file of the staging directory (not synced: the
    /// staging syncfs does that). Returns the file per ref, `None` for deletions.
    fn stage_ref_files(&self, refs: &[PendingRef]) -> Result<Vec<Option<PathBuf>>> {
        refs.iter()
            .enumerate()
            .map(|(i, r)| {
                r.target
                    .map(|c| {
                        let path = self.staging.path.join(format!("ref-{i}"));
                        crate::refs::write_ref_contents(&path, &c, false).map(|()| path)
                    })
                    .transpose()
            })
            .collect()
    }

    /// After publication: if every proof held, drops the partial markers and moves the refs
    /// (checking the expected values first, under the CAS lock).
    fn write_published_refs(
        &self,
        refs: &[PendingRef],
        staged: &[Option<PathBuf>],
        partial: &[(Checksum, bool)],
        proven: Result<()>,
    ) -> Result<()> {
        if let Err(e) = proven {
            // An incomplete commit whose commit object is published keeps its marker (it was
            // marked before publication); one never written loses the marker it got here.
            self.drop_unneeded_markers(partial);
            return Err(e);
        }
        // Every commit marked here is now published complete: its marker goes, whatever happens
        // to the refs below.
        for (c, _) in partial {
            let p = self.repo.commitpartial_path(c);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).io("remove", p),
            }
        }
        let _cas = if refs.iter().any(|r| r.expected.is_some()) {
            let l = self.repo.cas_lock()?;
            for r in refs {
                if let Some(expected) = r.expected {
                    let found = self.repo.read_ref(&r.name)?;
                    if found != expected {
                        return Err(RepoError::RefChanged {
                            name: r.name.clone(),
                            expected,
                            found,
                        });
                    }
                }
            }
            Some(l)
        } else {
            None
        };
        if refs.is_empty() {
            return Ok(());
        }
        for (r, file) in refs.iter().zip(staged) {
            match file {
                Some(f) => self.repo.move_ref_file_into_place(f, &r.name)?,
                None => self.repo.delete_ref_file(&r.name)?,
            }
        }
        self.repo.bump_mtime();
        Ok(())
    }

    /// Proves every commit in `refs` and `partial` complete; an incomplete one is marked partial
    /// (so that `ostree fsck` skips it once published) and the first missing object reported.
    fn prove_complete(&self, refs: &[PendingRef], partial: &[(Checksum, bool)]) -> Result<()> {
        let mut first_missing = None;
        for c in refs
            .iter()
            .filter_map(|r| r.target)
            .chain(partial.iter().map(|(c, _)| *c))
        {
            if let Some(first) = self.find_missing(&c)?.first() {
                if self.has_object(&ObjectName::new(c, ObjectType::Commit))? {
                    self.mark_partial(&c)?;
                }
                first_missing.get_or_insert(*first);
            }
        }
        match first_missing {
            Some(m) => Err(RepoError::ObjectNotFound(m)),
            None => Ok(()),
        }
    }

    /// Discards the transaction (same as dropping it).
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        self.flusher.stop();
        if !self.finished {
            let _ = fs::remove_dir_all(&self.staging.path);
            self.release_staging();
            self.repo.cleanup_tmpdir();
            let partial =
                std::mem::take(&mut *self.partial.lock().unwrap_or_else(|p| p.into_inner()));
            self.drop_unneeded_markers(&partial);
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

#[cfg(test)]
mod tests {
    use ostree_format::{DirTree, FileMeta, S_IFDIR, Xattrs};

    use super::*;
    use crate::commit::CommitSpec;

    /// A writer thread that panicked while holding the transaction's locks must not make the
    /// commit succeed without the refs and marker bookkeeping it was asked for.
    #[test]
    fn poisoned_locks_lose_no_ref_or_marker() {
        let d = tempfile::tempdir().unwrap();
        let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
        let txn = repo.begin_transaction().unwrap();
        std::thread::scope(|s| {
            for m in [0, 1, 2] {
                let txn = &txn;
                let r = s
                    .spawn(move || {
                        let _p = (m == 0).then(|| txn.partial.lock());
                        let _r = (m == 1).then(|| txn.pending_refs.lock());
                        let _v = (m == 2).then(|| txn.verified.lock());
                        panic!("writer thread fails while holding a lock");
                    })
                    .join();
                assert!(r.is_err());
            }
        });
        assert!(txn.partial.is_poisoned() && txn.pending_refs.is_poisoned());
        let meta = FileMeta {
            uid: 0,
            gid: 0,
            mode: S_IFDIR | 0o755,
            xattrs: Xattrs::new(),
        };
        let m = txn
            .write_metadata(ObjectType::DirMeta, None, &meta.to_dirmeta_bytes())
            .unwrap();
        let t = txn
            .write_metadata(ObjectType::DirTree, None, &DirTree::default().to_bytes())
            .unwrap();
        let c = txn.write_commit(t, m, &CommitSpec::new()).unwrap();
        assert!(repo.is_commit_partial(&c));
        txn.set_ref("r", Some(c)).unwrap();
        txn.commit().unwrap();
        assert_eq!(repo.read_ref("r").unwrap(), Some(c));
        assert!(
            !repo.is_commit_partial(&c),
            "stale marker after a poisoned lock"
        );
    }
}
