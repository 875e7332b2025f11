//! A minimal GNU tar writer with exact control over every header field (container-image-format
//! §4.1): mtime 0, numeric ids, empty user/group names, permission bits only, literal names
//! (no normalisation, so `./` and symlink targets with `//` survive), GNU `L`/`K` records for
//! names over 100 bytes, encoded like the `tar` crate's so our streams match the reference's.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

const BLOCK: usize = 512;
const NAME_LEN: usize = 100;

/// Ownership and permission bits of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Permission bits (`& 0o7777` is applied).
    pub mode: u32,
}

impl Owner {
    /// 0:0 with `mode`.
    pub const fn root(mode: u32) -> Self {
        Owner {
            uid: 0,
            gid: 0,
            mode,
        }
    }
}

/// Writes tar entries to `W`; call [`TarWriter::finish`] to terminate the archive.
pub struct TarWriter<W: Write> {
    out: W,
}

fn base_header(ty: EntryType, owner: Owner, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(owner.mode & 0o7777);
    h.set_uid(u64::from(owner.uid));
    h.set_gid(u64::from(owner.gid));
    h.set_mtime(0);
    h.set_size(size);
    h
}

impl<W: Write> TarWriter<W> {
    /// Wraps an output.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Writes a GNU long-name (`L`) or long-link (`K`) record holding `value`.
    fn long_record(&mut self, ty: u8, value: &[u8]) -> io::Result<()> {
        let mut h = base_header(
            EntryType::new(ty),
            Owner::root(0o644),
            value.len() as u64 + 1,
        );
        if let Some(gnu) = h.as_gnu_mut() {
            gnu.name[..13].copy_from_slice(b"././@LongLink");
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(value)?;
        self.out.write_all(&[0])?;
        self.pad(value.len() as u64 + 1)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Emits the header of an entry (and the long-name records it needs).
    fn header(&mut self, mut h: Header, path: &str, link: Option<&str>) -> io::Result<()> {
        let p = path.as_bytes();
        if p.len() > NAME_LEN {
            self.long_record(b'L', p)?;
        }
        let n = p.len().min(NAME_LEN);
        h.as_old_mut().name[..n].copy_from_slice(&p[..n]);
        if let Some(l) = link {
            let l = l.as_bytes();
            if l.len() > NAME_LEN {
                self.long_record(b'K', l)?;
            }
            let n = l.len().min(NAME_LEN);
            h.as_old_mut().linkname[..n].copy_from_slice(&l[..n]);
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())
    }

    /// A directory entry.
    pub fn dir(&mut self, path: &str, owner: Owner) -> io::Result<()> {
        self.header(base_header(EntryType::Directory, owner, 0), path, None)
    }

    /// A regular file whose content is in memory.
    pub fn file_bytes(&mut self, path: &str, owner: Owner, data: &[u8]) -> io::Result<()> {
        self.header(
            base_header(EntryType::Regular, owner, data.len() as u64),
            path,
            None,
        )?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// A regular file of exactly `size` bytes streamed from `data`; a short or long source is an
    /// error (the header already promised `size`).
    pub fn file_stream(
        &mut self,
        path: &str,
        owner: Owner,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        self.header(base_header(EntryType::Regular, owner, size), path, None)?;
        let n = io::copy(&mut data.take(size), &mut self.out)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: object payload is {n} bytes, expected {size}"),
            ));
        }
        let mut probe = [0u8; 1];
        if data.read(&mut probe)? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: object payload longer than {size} bytes"),
            ));
        }
        self.pad(size)
    }

    /// A hardlink to `target`.
    pub fn hardlink(&mut self, path: &str, target: &str, owner: Owner) -> io::Result<()> {
        self.header(base_header(EntryType::Link, owner, 0), path, Some(target))
    }

    /// A symbolic link; the target is written byte for byte.
    pub fn symlink(&mut self, path: &str, target: &str, owner: Owner) -> io::Result<()> {
        self.header(
            base_header(EntryType::Symlink, owner, 0),
            path,
            Some(target),
        )
    }

    /// Writes the two end-of-archive blocks and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }
}
