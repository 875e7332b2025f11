//! Streaming content checksums (ostree-repo-format §6.1): sha256 of the length-prefixed file
//! header followed by the payload, computed without buffering the payload.

use sha2::Digest;

use crate::checksum::Checksum;
use crate::objects::{FileMeta, file_header, length_prefixed};

/// Incremental content checksum. Feed the payload with [`ContentHasher::update`] or as an
/// [`std::io::Write`].
#[derive(Clone)]
pub struct ContentHasher(sha2::Sha256);

impl ContentHasher {
    /// Starts a checksum for an object with this metadata (and symlink target, for symlinks).
    pub fn new(meta: &FileMeta, symlink_target: Option<&str>) -> Self {
        Self::from_header(&file_header(meta, symlink_target))
    }

    /// Starts from an already serialised `(uuuusa(ayay))` header.
    pub fn from_header(header: &[u8]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(length_prefixed(header));
        ContentHasher(h)
    }

    /// Adds payload bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The checksum.
    pub fn finish(self) -> Checksum {
        Checksum(self.0.finalize().into())
    }
}

impl std::io::Write for ContentHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checksum of a regular file held in memory.
pub fn regular_checksum(meta: &FileMeta, data: &[u8]) -> Checksum {
    let mut h = ContentHasher::new(meta, None);
    h.update(data);
    h.finish()
}

/// Checksum of a symlink.
pub fn symlink_checksum(meta: &FileMeta, target: &str) -> Checksum {
    ContentHasher::new(meta, Some(target)).finish()
}
