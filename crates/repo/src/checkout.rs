//! Checking a commit out to a directory (like `ostree checkout`, and `-U` for user mode).

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ostree_format::{Checksum, FileMeta, MAX_RECURSION};
use rayon::prelude::*;
use rustix::fs::Mode;

use crate::config::RepoMode;
use crate::error::{IoContext, RepoError, Result, too_deep};
use crate::progress::{Progress, check_interrupt};
use crate::repo::Repo;
use crate::sys;

/// Checkout behaviour.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckoutOptions {
    /// Unprivileged: no ownership, no xattrs, no setuid/setgid bits (`ostree checkout -U`).
    pub user_mode: bool,
    /// Never hardlink objects; always copy.
    pub force_copy: bool,
}

impl CheckoutOptions {
    /// Regular (privileged) checkout.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What a checkout did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckoutStats {
    /// Files and symlinks created.
    pub files: u64,
    /// Of which hardlinked from the repository.
    pub hardlinked: u64,
    /// Directories created.
    pub dirs: u64,
}

struct FileJob {
    dest: PathBuf,
    checksum: Checksum,
}

impl Repo {
    /// Checks `commit` out into `dest`, which must not exist yet.
    pub fn checkout(
        &self,
        commit: &Checksum,
        dest: &Path,
        opts: &CheckoutOptions,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<CheckoutStats> {
        if dest.symlink_metadata().is_ok() {
            return Err(RepoError::AlreadyExists(dest.to_path_buf()));
        }
        // libostree always checks bare-user-only repositories out in user mode.
        let mut opts = opts.clone();
        if self.config.mode == RepoMode::BareUserOnly {
            opts.user_mode = true;
        }
        let opts = &opts;
        let c = self.load_commit(commit)?;
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        self.plan_dir(
            &c.root_tree,
            &c.root_meta,
            dest.to_path_buf(),
            &mut dirs,
            &mut files,
            interrupt,
        )?;
        progress.start("checking out", Some(files.len() as u64));
        let hardlinked = std::sync::atomic::AtomicU64::new(0);
        files.par_iter().try_for_each(|job| -> Result<()> {
            check_interrupt(interrupt)?;
            if self.checkout_file(job, opts)? {
                hardlinked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            progress.inc(1);
            Ok(())
        })?;
        // Directory metadata last and deepest first, so read-only directories could be filled.
        for (path, meta) in dirs.iter().rev() {
            apply_dir_meta(path, meta, opts)?;
        }
        Ok(CheckoutStats {
            files: files.len() as u64,
            hardlinked: hardlinked.into_inner(),
            dirs: dirs.len() as u64,
        })
    }

    /// Lists the directories of `tree` below `path` (depth first, each before its children) and
    /// the files to write, then creates the directories. Iterative; a dirtree nested deeper
    /// than [`MAX_RECURSION`] (or an absent one) is refused before anything is created.
    fn plan_dir(
        &self,
        tree: &Checksum,
        meta: &Checksum,
        path: PathBuf,
        dirs: &mut Vec<(PathBuf, FileMeta)>,
        files: &mut Vec<FileJob>,
        interrupt: &AtomicBool,
    ) -> Result<()> {
        // (dirtree, dirmeta, destination, depth); popped in the order a recursive walk would
        // visit them.
        let mut todo = vec![(*tree, *meta, path, 0usize)];
        while let Some((tree, meta, path, depth)) = todo.pop() {
            check_interrupt(interrupt)?;
            if depth > MAX_RECURSION {
                return Err(too_deep(format!("dirtree {tree} (at {})", path.display())));
            }
            let dm = self.load_dirmeta(&meta)?;
            let dt = self.load_dirtree(&tree)?;
            for f in &dt.files {
                files.push(FileJob {
                    dest: path.join(&f.name),
                    checksum: f.checksum,
                });
            }
            for d in dt.dirs.iter().rev() {
                todo.push((d.tree, d.meta, path.join(&d.name), depth + 1));
            }
            dirs.push((path, dm));
        }
        for (path, _) in dirs.iter() {
            check_interrupt(interrupt)?;
            fs::create_dir(path).io("create directory", path)?;
            rustix::fs::chmod(path, Mode::from_raw_mode(0o700)).io("chmod", path)?;
        }
        Ok(())
    }

    /// Returns whether the file was hardlinked.
    fn checkout_file(&self, job: &FileJob, opts: &CheckoutOptions) -> Result<bool> {
        let name = ostree_format::ObjectName::new(job.checksum, ostree_format::ObjectType::File);
        let can_link = !opts.force_copy
            && match self.config.mode {
                RepoMode::Bare => !opts.user_mode,
                RepoMode::BareUserOnly => true,
                _ => false,
            };
        // As libostree: an object its owner cannot read is copied (and made readable) instead.
        let unreadable = || {
            fs::symlink_metadata(self.object_path(&name))
                .map(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o400 == 0
                        && m.is_file()
                })
                .unwrap_or(false)
        };
        if can_link && !(opts.user_mode && unreadable()) {
            match fs::hard_link(self.object_path(&name), &job.dest) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RepoError::ObjectNotFound(name));
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EXDEV) | Some(libc::EMLINK) | Some(libc::EPERM)
                    ) => {}
                Err(e) => return Err(e).io("hardlink", &job.dest),
            }
        }
        let content = self.read_content(&job.checksum)?;
        let meta = &content.meta;
        let dest = &job.dest;
        if let Some(target) = &content.symlink_target {
            std::os::unix::fs::symlink(target, dest).io("symlink", dest)?;
            if !opts.user_mode {
                rustix::fs::chownat(
                    rustix::fs::CWD,
                    dest,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .io("chown", dest)?;
                set_xattrs_where_supported(
                    || sys::set_xattrs_path(dest, meta.xattrs.pairs()),
                    dest,
                )?;
            }
            return Ok(false);
        }
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(dest)
            .io("create", dest)?;
        if let Some(mut r) = content.reader {
            std::io::copy(&mut r, &mut f).io("write", dest)?;
        }
        f.flush().io("write", dest)?;
        let mut perms = meta.mode & 0o7777;
        if opts.user_mode {
            // User mode drops setuid/setgid and keeps files readable by their owner, as libostree.
            perms = (perms & !0o6000) | 0o400;
        } else {
            rustix::fs::fchown(
                &f,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
            )
            .io("chown", dest)?;
            set_xattrs_where_supported(
                || sys::set_xattrs_fd(f.as_fd(), meta.xattrs.pairs()),
                dest,
            )?;
        }
        rustix::fs::fchmod(&f, Mode::from_raw_mode(perms)).io("chmod", dest)?;
        sys::zero_mtime(&f).io("set mtime of", dest)?;
        Ok(false)
    }
}

/// Applies xattrs, tolerating filesystems that do not support them at all.
fn set_xattrs_where_supported(f: impl FnOnce() -> std::io::Result<()>, path: &Path) -> Result<()> {
    match f() {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
            tracing::warn!(
                "{}: extended attributes not supported here, skipped",
                path.display()
            );
            Ok(())
        }
        Err(e) => Err(e).io("set xattrs of", path),
    }
}

fn apply_dir_meta(path: &Path, meta: &FileMeta, opts: &CheckoutOptions) -> Result<()> {
    if !opts.user_mode {
        rustix::fs::chown(
            path,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
        )
        .io("chown", path)?;
        set_xattrs_where_supported(|| sys::set_xattrs_path(path, meta.xattrs.pairs()), path)?;
    }
    let mut perms = meta.mode & 0o7777;
    if opts.user_mode {
        perms &= !0o6000;
    }
    rustix::fs::chmod(path, Mode::from_raw_mode(perms)).io("chmod", path)?;
    Ok(())
}
