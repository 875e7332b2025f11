//! Reading content objects in every mode (ostree-repo-format §8).

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ostree_format::{
    Checksum, ContentHasher, FileMeta, ObjectName, ObjectType, S_IFLNK, S_IFMT, Xattrs,
    parse_archive_header,
};

use crate::config::RepoMode;
use crate::error::{IoContext, RepoError, Result};
use crate::repo::Repo;
use crate::sys;

/// The `user.ostreemeta` xattr of bare-user objects.
pub const OSTREEMETA_XATTR: &str = "user.ostreemeta";

/// Largest archive header we accept (the header holds xattrs, bounded like metadata).
const MAX_HEADER: u32 = 10 * 1024 * 1024;

/// A content object as stored: metadata plus either a symlink target or a payload stream.
pub struct ContentObject {
    /// Ownership, mode, xattrs.
    pub meta: FileMeta,
    /// The payload size (0 for symlinks).
    pub size: u64,
    /// Symlink target, for symlinks.
    pub symlink_target: Option<String>,
    /// The payload, for regular files.
    pub reader: Option<Box<dyn Read + Send>>,
}

impl std::fmt::Debug for ContentObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentObject")
            .field("meta", &self.meta)
            .field("size", &self.size)
            .field("symlink_target", &self.symlink_target)
            .finish_non_exhaustive()
    }
}

impl ContentObject {
    /// Recomputes the content checksum, consuming the payload.
    pub fn checksum(mut self) -> std::io::Result<Checksum> {
        let mut h = ContentHasher::new(&self.meta, self.symlink_target.as_deref());
        if let Some(r) = self.reader.as_mut() {
            std::io::copy(r, &mut h)?;
        }
        Ok(h.finish())
    }
}

fn not_found_or(e: std::io::Error, name: ObjectName, op: &'static str, path: &Path) -> RepoError {
    if e.kind() == std::io::ErrorKind::NotFound {
        RepoError::ObjectNotFound(name)
    } else {
        RepoError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        }
    }
}

impl Repo {
    /// Opens a content object for reading.
    pub fn read_content(&self, checksum: &Checksum) -> Result<ContentObject> {
        let name = ObjectName::new(*checksum, ObjectType::File);
        let path = self.object_path(&name);
        read_content_at(&path, self.config.mode, self.config.disable_xattrs, name)
    }
}

/// Reads the metadata object `name` stored at `path` (no validation beyond the size limit).
pub(crate) fn read_metadata_at(path: &Path, name: &ObjectName) -> Result<Vec<u8>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RepoError::ObjectNotFound(*name));
        }
        Err(e) => return Err(e).io("open", path),
    };
    // `take` hides the file's size from `read_to_end`, which would then probe with reads of
    // 32, 64, 128… bytes: most metadata objects fit this first buffer (one read, then EOF).
    let mut buf = Vec::with_capacity(16 * 1024);
    f.take(ostree_format::MAX_METADATA_SIZE + 1)
        .read_to_end(&mut buf)
        .io("read", path)?;
    if buf.len() as u64 > ostree_format::MAX_METADATA_SIZE {
        return Err(RepoError::InvalidObject {
            object: *name,
            source: ostree_format::FormatError::TooLarge {
                size: buf.len() as u64,
                limit: ostree_format::MAX_METADATA_SIZE,
            },
        });
    }
    Ok(buf)
}

/// Reads a content object stored at `path` in a repository of `mode` (also used for staged
/// objects).
pub(crate) fn read_content_at(
    path: &Path,
    mode: RepoMode,
    disable_xattrs: bool,
    name: ObjectName,
) -> Result<ContentObject> {
    let corrupt = |source| RepoError::InvalidObject {
        object: name,
        source,
    };
    match mode {
        RepoMode::Bare | RepoMode::BareUserOnly => {
            let st =
                std::fs::symlink_metadata(path).map_err(|e| not_found_or(e, name, "stat", path))?;
            let canonical_owner = mode == RepoMode::BareUserOnly;
            let xattrs = if canonical_owner || disable_xattrs {
                Xattrs::new()
            } else {
                Xattrs::canonical(sys::read_xattrs_path(path).io("read xattrs of", path)?)
            };
            let (uid, gid) = if canonical_owner {
                (0, 0)
            } else {
                (st.uid(), st.gid())
            };
            if st.file_type().is_symlink() {
                let target = std::fs::read_link(path).io("readlink", path)?;
                let target = target.into_os_string().into_string().map_err(|_| {
                    corrupt(ostree_format::FormatError::InvalidSymlinkTarget(
                        "not UTF-8",
                    ))
                })?;
                Ok(ContentObject {
                    meta: FileMeta {
                        uid,
                        gid,
                        mode: S_IFLNK | 0o777,
                        xattrs,
                    },
                    size: 0,
                    symlink_target: Some(target),
                    reader: None,
                })
            } else {
                let f = File::open(path).map_err(|e| not_found_or(e, name, "open", path))?;
                Ok(ContentObject {
                    meta: FileMeta {
                        uid,
                        gid,
                        mode: st.mode(),
                        xattrs,
                    },
                    size: st.len(),
                    symlink_target: None,
                    reader: Some(Box::new(f)),
                })
            }
        }
        RepoMode::BareUser => {
            let mut f = File::open(path).map_err(|e| not_found_or(e, name, "open", path))?;
            let raw = sys::get_xattr_fd(f.as_fd(), OSTREEMETA_XATTR)
                .io("read user.ostreemeta of", path)?
                .ok_or_else(|| {
                    corrupt(ostree_format::FormatError::Malformed {
                        type_string: "(uuua(ayay))".into(),
                        reason: "bare-user object without user.ostreemeta",
                    })
                })?;
            let meta = FileMeta::from_dirmeta_bytes(&raw).map_err(corrupt)?;
            let size = f.metadata().io("stat", path)?.len();
            if meta.mode & S_IFMT == S_IFLNK {
                let mut buf = Vec::with_capacity(size.min(8192) as usize + 1);
                (&mut f).take(8192).read_to_end(&mut buf).io("read", path)?;
                if buf.last() != Some(&0) {
                    return Err(corrupt(ostree_format::FormatError::InvalidSymlinkTarget(
                        "missing trailing NUL",
                    )));
                }
                buf.pop();
                let target = String::from_utf8(buf).map_err(|_| {
                    corrupt(ostree_format::FormatError::InvalidSymlinkTarget(
                        "not UTF-8",
                    ))
                })?;
                Ok(ContentObject {
                    meta,
                    size: 0,
                    symlink_target: Some(target),
                    reader: None,
                })
            } else {
                Ok(ContentObject {
                    meta,
                    size,
                    symlink_target: None,
                    reader: Some(Box::new(f)),
                })
            }
        }
        RepoMode::Archive => {
            let f = File::open(path).map_err(|e| not_found_or(e, name, "open", path))?;
            let mut r = BufReader::with_capacity(128 * 1024, f);
            let mut prefix = [0u8; 8];
            r.read_exact(&mut prefix).io("read header of", path)?;
            let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            if len > MAX_HEADER || prefix[4..] != [0; 4] {
                return Err(corrupt(ostree_format::FormatError::Malformed {
                    type_string: "(tuuuusa(ayay))".into(),
                    reason: "bad .filez header length",
                }));
            }
            let mut header = vec![0u8; len as usize];
            r.read_exact(&mut header).io("read header of", path)?;
            let h = parse_archive_header(&header).map_err(corrupt)?;
            if h.meta.is_symlink() {
                Ok(ContentObject {
                    meta: h.meta,
                    size: 0,
                    symlink_target: h.symlink_target,
                    reader: None,
                })
            } else {
                let reader = flate2::bufread::DeflateDecoder::new(r).take(h.size);
                Ok(ContentObject {
                    meta: h.meta,
                    size: h.size,
                    symlink_target: None,
                    reader: Some(Box::new(reader)),
                })
            }
        }
    }
}
