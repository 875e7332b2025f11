//! Verified object writes into the staging directory, per repository mode.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use ostree_deflate::PieceWriter;
use ostree_format::{
    Checksum, ContentHasher, FileMeta, ObjectName, ObjectType, archive_header, length_prefixed,
    symlink_checksum, validate_metadata, validate_symlink_target,
};
use rustix::fs::{AtFlags, Mode, RenameFlags};

use crate::config::RepoMode;
use crate::error::{IoContext, RepoError, Result};
use crate::read::OSTREEMETA_XATTR;
use crate::sys::{self};

use super::{ContentSource, Transaction};

impl Transaction<'_> {
    /// Creates the staging prefix directory of `name` unless it is known to exist.
    fn ensure_prefix_dir(&self, name: &ObjectName) -> Result<()> {
        self.staged.ensure_dir(&name.checksum, || {
            let prefix = &self.repo.object_relpath(name)[..2];
            match rustix::fs::mkdirat(self.staging.fd.as_fd(), prefix, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
                Err(e) => Err(e).io("create", self.staging.path.join(prefix)),
            }
        })
    }

    /// Records that `name` (of `bytes` on disk) is now in the staging directory.
    fn staged_object(&self, name: ObjectName, bytes: u64) {
        self.staged.insert(name);
        if self.repo.config.fsync {
            self.flusher
                .note(bytes + super::flush::OBJECT_OVERHEAD, &self.staging.path);
        }
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

    /// Links a finished temporary file of `bytes` into staging under `name`; an existing
    /// object wins.
    fn link_into_staging(&self, file: &File, name: &ObjectName, bytes: u64) -> Result<()> {
        let rel = self.repo.object_relpath(name);
        self.ensure_prefix_dir(name)?;
        match sys::link_tmpfile(file, self.staging.fd.as_fd(), &rel) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).io("link", self.staging.path.join(&rel)),
        }
        self.staged_object(*name, bytes);
        Ok(())
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
        let (mut f, mode_set) =
            sys::tmpfile_with_mode(self.staging.fd.as_fd(), 0o644, self.create_umask)
                .io("create temporary file in", &self.staging.path)?;
        f.write_all(bytes).io("write", &self.staging.path)?;
        if !mode_set {
            rustix::fs::fchmod(&f, Mode::from_raw_mode(0o644)).io("chmod", &self.staging.path)?;
        }
        self.link_into_staging(&f, &name, bytes.len() as u64)?;
        self.stats.metadata_written.fetch_add(1, Ordering::Relaxed);
        Ok(actual)
    }

    /// Stores detached metadata for `commit` verbatim (after validation), replacing any previous.
    /// For an authoritative writer: signing, the store's own state, a verified import.
    pub fn write_commitmeta(&self, commit: &Checksum, bytes: &[u8]) -> Result<()> {
        self.stage_commitmeta(commit, bytes, false).map(drop)
    }

    /// Stores detached metadata for `commit` only if the repository has none: what an
    /// unverified source may do, so that it can never replace (say) valid signatures with its
    /// own bytes. Returns whether it was staged; one that appears meanwhile wins at publication.
    pub fn write_commitmeta_unless_present(&self, commit: &Checksum, bytes: &[u8]) -> Result<bool> {
        let name = ObjectName::new(*commit, ObjectType::CommitMeta);
        if self.repo.has_object(&name)? {
            return Ok(false);
        }
        self.stage_commitmeta(commit, bytes, true)
    }

    fn stage_commitmeta(&self, commit: &Checksum, bytes: &[u8], keep: bool) -> Result<bool> {
        let name = ObjectName::new(*commit, ObjectType::CommitMeta);
        validate_metadata(ObjectType::CommitMeta, bytes).map_err(|source| {
            RepoError::InvalidObject {
                object: name,
                source,
            }
        })?;
        self.charge(bytes.len() as u64)?;
        let rel = self.repo.object_relpath(&name);
        self.ensure_prefix_dir(&name)?;
        let tmp_name = format!("{}/.tmp-{}", &rel[..2], sys::random_suffix(8));
        let tmp_path = self.staging.path.join(&tmp_name);
        let written = fs::write(&tmp_path, bytes)
            .io("write", &tmp_path)
            .and_then(|()| {
                fs::rename(&tmp_path, self.staging.path.join(&rel)).io("rename", &tmp_path)
            });
        if written.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        written?;
        {
            let mut k = self
                .commitmeta_keep
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if keep {
                k.insert(rel);
            } else {
                k.remove(&rel);
            }
        }
        self.staged_object(name, bytes.len() as u64);
        self.stats.metadata_written.fetch_add(1, Ordering::Relaxed);
        Ok(true)
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
        self.write_content_inner(expected, meta, source, true)
    }

    /// [`Transaction::write_content`] of `expected`, which the caller has just found absent
    /// with [`Transaction::has_object`]: the repository is not asked again (one `stat` less
    /// per object of an import). Should another writer publish the object meanwhile, ours is
    /// dropped at publication (objects are immutable and identical).
    pub fn write_content_absent(
        &self,
        expected: Checksum,
        meta: &FileMeta,
        source: ContentSource<'_>,
    ) -> Result<Checksum> {
        self.write_content_inner(Some(expected), meta, source, false)
    }

    fn write_content_inner(
        &self,
        expected: Option<Checksum>,
        meta: &FileMeta,
        source: ContentSource<'_>,
        ask_repo: bool,
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
        // `has_object`, with the repository's half only when the caller has not just asked it.
        if let Some(e) = expected.map(|e| ObjectName::new(e, ObjectType::File))
            && (self.staged.contains(&e) || (ask_repo && self.repo.has_object(&e)?))
        {
            self.stats.already_present.fetch_add(1, Ordering::Relaxed);
            return Ok(e.checksum);
        }
        let checksum = match source {
            ContentSource::Symlink { target } => self.write_symlink(expected, meta, target)?,
            ContentSource::Regular { size, reader } => {
                self.write_regular(expected, meta, size, Body::Stream(reader))?
            }
            ContentSource::Bytes(b) => {
                self.write_regular(expected, meta, b.len() as u64, Body::Bytes(b))?
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
        file: Option<(&File, u64)>,
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
        if let Some((f, bytes)) = file {
            self.link_into_staging(f, &name, bytes)?;
        }
        self.stats.content_written.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn write_regular(
        &self,
        expected: Option<Checksum>,
        meta: &FileMeta,
        size: u64,
        body: Body<'_>,
    ) -> Result<Checksum> {
        let mode = self.repo.config.mode;
        self.charge(size)?;
        let (file, mode_set) = self.new_object_file(meta)?;
        let mut hasher = ContentHasher::new(meta, None);
        let staging = &self.staging.path;
        let copied = if mode == RepoMode::Archive {
            // Raw deflate by libdeflate in independent 1 MiB pieces (large objects on several
            // cores); readers accept any valid stream, the checksum covers the content. The
            // configured zlib level is libostree's density, met by a cheaper libdeflate level.
            let mut w = BufWriter::with_capacity(128 * 1024, &file);
            w.write_all(&length_prefixed(&archive_header(size, meta, None)))
                .io("write", staging)?;
            let mut enc = PieceWriter::new(
                w,
                ostree_deflate::levels::for_zlib_level(self.repo.config.zlib_level),
                ostree_deflate::default_window(),
                Some(size),
            );
            let n = body
                .copy_hashing(&mut hasher, &mut enc)
                .io("write object in", staging)?;
            enc.finish().io("write", staging)?;
            n
        } else {
            body.copy_hashing(&mut hasher, &mut &file)
                .io("write object in", staging)?
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
        self.apply_file_meta(&file, meta, mode_set)?;
        self.finish_content(expected, actual, Some((&file, size)))?;
        self.stats.content_bytes.fetch_add(size, Ordering::Relaxed);
        Ok(actual)
    }

    /// The permission bits of an object file holding `meta`, per repository mode.
    fn on_disk_mode(&self, meta: &FileMeta) -> u32 {
        match self.repo.config.mode {
            RepoMode::Bare | RepoMode::BareUserOnly => meta.mode & 0o7777,
            RepoMode::BareUser if meta.is_symlink() => 0o644,
            RepoMode::BareUser => (meta.mode & 0o775) | 0o400,
            RepoMode::Archive => 0o644,
        }
    }

    /// A temporary object file for `meta`, created with its final mode where the umask allows
    /// (then `apply_file_meta` skips the `fchmod`). Not when a bare-user object would be
    /// read-only: setting `user.ostreemeta` needs write permission, so it gets its mode last.
    fn new_object_file(&self, meta: &FileMeta) -> Result<(File, bool)> {
        let mode = self.on_disk_mode(meta);
        let (mode, umask) = match self.repo.config.mode {
            RepoMode::BareUser if mode & 0o200 == 0 => (0o600, None),
            _ => (mode, self.create_umask),
        };
        sys::tmpfile_with_mode(self.staging.fd.as_fd(), mode, umask)
            .io("create temporary file in", &self.staging.path)
    }

    /// Ownership, mode, xattrs and mtime of a regular object file, per repository mode.
    /// `mode_set`: the file was created with its final mode.
    fn apply_file_meta(&self, file: &File, meta: &FileMeta, mode_set: bool) -> Result<()> {
        let p = &self.staging.path;
        let mode = self.on_disk_mode(meta);
        let chmod = || -> Result<()> {
            if !mode_set {
                rustix::fs::fchmod(file, Mode::from_raw_mode(mode)).io("chmod object in", p)?;
            }
            Ok(())
        };
        match self.repo.config.mode {
            RepoMode::Bare => {
                rustix::fs::fchown(
                    file,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                )
                .io("chown object in", p)?;
                // After the chown, which clears setuid/setgid (such modes are never `mode_set`).
                chmod()?;
                sys::set_xattrs_fd(file.as_fd(), meta.xattrs.pairs())
                    .io("set xattrs of object in", p)?;
                sys::zero_mtime(file).io("set mtime of object in", p)?;
            }
            RepoMode::BareUser => {
                // The xattr first: an unprivileged writer may not set it on a read-only file.
                rustix::fs::fsetxattr(
                    file,
                    OSTREEMETA_XATTR,
                    &meta.to_dirmeta_bytes(),
                    rustix::fs::XattrFlags::empty(),
                )
                .io("set user.ostreemeta of object in", p)?;
                chmod()?;
                sys::zero_mtime(file).io("set mtime of object in", p)?;
            }
            RepoMode::BareUserOnly => {
                chmod()?;
                sys::zero_mtime(file).io("set mtime of object in", p)?;
            }
            RepoMode::Archive => chmod()?,
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
                self.ensure_prefix_dir(&name)?;
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
                // Ok(true): moved into place; Ok(false): an identical object was there first.
                let renamed = applied.and_then(|()| {
                    match rustix::fs::renameat_with(
                        self.staging.fd.as_fd(),
                        tmp_name.as_str(),
                        self.staging.fd.as_fd(),
                        rel.as_str(),
                        RenameFlags::NOREPLACE,
                    ) {
                        Ok(()) => Ok(true),
                        Err(rustix::io::Errno::EXIST) => Ok(false),
                        Err(e) => Err(e).io("rename", &tmp_path),
                    }
                });
                if !matches!(renamed, Ok(true)) {
                    let _ = rustix::fs::unlinkat(
                        self.staging.fd.as_fd(),
                        tmp_name.as_str(),
                        AtFlags::empty(),
                    );
                }
                renamed?;
                // Presence and a mismatching `expected` were handled above; no second check
                // (the object is staged now and would count as already present).
                self.staged_object(name, target.len() as u64);
                self.stats.content_written.fetch_add(1, Ordering::Relaxed);
            }
            RepoMode::BareUser => {
                let (mut file, mode_set) = self.new_object_file(meta)?;
                file.write_all(target.as_bytes())
                    .and_then(|()| file.write_all(&[0]))
                    .io("write object in", p)?;
                self.apply_file_meta(&file, meta, mode_set)?;
                self.finish_content(expected, actual, Some((&file, target.len() as u64)))?;
            }
            RepoMode::Archive => {
                let (mut file, mode_set) = self.new_object_file(meta)?;
                file.write_all(&length_prefixed(&archive_header(0, meta, Some(target))))
                    .io("write object in", p)?;
                self.apply_file_meta(&file, meta, mode_set)?;
                self.finish_content(expected, actual, Some((&file, target.len() as u64)))?;
            }
        }
        Ok(actual)
    }
}

/// The payload of a regular object being written.
pub(super) enum Body<'a> {
    Stream(&'a mut dyn Read),
    Bytes(&'a [u8]),
}

/// Size of the per-thread copy buffer: large writes, allocated once per thread rather than
/// once per object.
const COPY_BUF: usize = 256 * 1024;

thread_local! {
    static COPY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Body<'_> {
    /// Writes the payload to `out` while hashing it; returns the byte count.
    fn copy_hashing(self, hasher: &mut ContentHasher, out: &mut dyn Write) -> io::Result<u64> {
        match self {
            Body::Bytes(b) => {
                hasher.update(b);
                out.write_all(b)?;
                Ok(b.len() as u64)
            }
            Body::Stream(reader) => COPY.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    if buf.len() < COPY_BUF {
                        buf.resize(COPY_BUF, 0);
                    }
                    copy_stream(reader, hasher, out, &mut buf)
                }
                // Only if a reader wrote an object itself on this thread.
                Err(_) => copy_stream(reader, hasher, out, &mut vec![0; COPY_BUF]),
            }),
        }
    }
}

/// Copies `reader` to `out` in buffer-sized writes while hashing.
fn copy_stream(
    reader: &mut dyn Read,
    hasher: &mut ContentHasher,
    out: &mut dyn Write,
    buf: &mut [u8],
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        let mut eof = false;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        hasher.update(&buf[..filled]);
        out.write_all(&buf[..filled])?;
        total += filled as u64;
        if eof {
            return Ok(total);
        }
    }
}

impl Transaction<'_> {
    /// Records that `commit` is complete without walking it, for a commit the caller composed
    /// only from commits already proven complete (the layered-image merge: the base commit and
    /// layer commits, each published with a ref after its own proof, plus the dirtrees and
    /// dirmetas written here for the directories that changed). Publication then does not walk
    /// the whole tree again, which would cost time in proportion to the base, not to the change.
    pub fn assume_complete_by_construction(&self, commit: &Checksum) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*commit);
    }
}
