//! Staging directories (allocation, adoption, locking), the free-space budget and `tmp/`
//! cleanup, following libostree's protocol (ostree-repo-format §10.2, §10.5).

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;

use rustix::fs::{Mode, OFlags};

use crate::config::MinFreeSpace;
use crate::error::{IoContext, RepoError, Result};
use crate::repo::Repo;
use crate::sys::{self, LockKind};

use super::{Budget, Staging};

impl Repo {
    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    pub(super) fn probe_user_xattrs(&self) -> Result<()> {
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

    pub(super) fn allocate_staging(&self) -> Result<Staging> {
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
                    let _ = sys::set_times(&st.fd, sys::Time::Now, sys::Time::Now);
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

    pub(super) fn compute_budget(&self) -> Result<Option<Budget>> {
        let st = rustix::fs::fstatvfs(&self.objects).io("statvfs", self.path.join("objects"))?;
        let bsize = st.f_frsize.max(1);
        let free = if sys::may_use_reserved_blocks() {
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
