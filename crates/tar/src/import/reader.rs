//! A streaming tar reader with bounded memory: GNU long names, PAX `path`/`linkpath`/`size`/
//! `uid`/`gid`/`SCHILY.xattr.*`, ustar prefixes, header checksums, and an explicit
//! end-of-archive marker (so a stream cut at a block boundary is reported as truncated, not
//! accepted).
//!
//! We do not use `tar::Archive` for reading because it buffers GNU long names and PAX headers of
//! any announced size in memory.

use std::io::{self, BufRead, BufReader, Read};

const BLOCK: u64 = 512;
/// Largest PAX header we parse (records beyond path/size/ids are ignored but must fit).
pub const MAX_PAX: u64 = 2 * 1024 * 1024;

/// Why reading failed.
#[derive(Debug)]
pub enum ReadError {
    /// The stream ended inside a header, an entry or before the end marker.
    Truncated(&'static str),
    /// A header is damaged or inconsistent.
    Corrupt(String),
    /// An extension header is larger than allowed.
    TooLarge(&'static str, u64, u64),
    /// The underlying reader failed.
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Truncated("entry data")
        } else {
            ReadError::Io(e)
        }
    }
}

/// The header of one member, with extensions applied.
#[derive(Debug, Clone)]
pub struct EntryHeader {
    /// The path bytes.
    pub path: Vec<u8>,
    /// The link target bytes (hardlinks and symlinks).
    pub link: Vec<u8>,
    /// Type flag (`b'0'`, `b'1'`, …; `0` means regular).
    pub typeflag: u8,
    /// Mode field (all bits as stored).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Data size.
    pub size: u64,
    /// PAX `SCHILY.xattr.<name>` records, in stream order: (name, raw value bytes). Only the
    /// derived-layer importer uses them; ostree layers carry xattrs as objects.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads members one at a time; the data of the current member is read through
/// [`TarReader::data`] and skipped automatically by the next [`TarReader::next_entry`].
pub struct TarReader<R: Read> {
    inner: BufReader<R>,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    /// Headers read so far (extension headers included).
    pub headers: u64,
    max_path: usize,
    done: bool,
}

fn parse_num(field: &[u8]) -> Result<u64, ReadError> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256: big-endian, first byte's top bit is the marker
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| ReadError::Corrupt("numeric field overflows".into()))?;
        }
        return Ok(v);
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ' || *b == 0)
        .take_while(|b| *b != b' ' && *b != 0)
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&s).map_err(|_| ReadError::Corrupt("bad numeric field".into()))?;
    u64::from_str_radix(s, 8).map_err(|_| ReadError::Corrupt(format!("bad numeric field {s:?}")))
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

fn checksum_ok(block: &[u8; 512]) -> Result<bool, ReadError> {
    let stored = parse_num(&block[148..156])?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    Ok(stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed))
}

/// PAX records we honour.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// PAX key prefix of an extended attribute (GNU tar, libarchive, Go's archive/tar).
const PAX_XATTR: &[u8] = b"SCHILY.xattr.";

fn parse_pax(data: &[u8], pax: &mut Pax) -> Result<(), ReadError> {
    let bad = || ReadError::Corrupt("malformed PAX record".into());
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let sp = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        let num = || -> Result<u64, ReadError> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)
        };
        match k {
            b"path" => pax.path = Some(v.to_vec()),
            b"linkpath" => pax.link = Some(v.to_vec()),
            b"size" => pax.size = Some(num()?),
            b"uid" => pax.uid = Some(num()?),
            b"gid" => pax.gid = Some(num()?),
            _ => {
                if let Some(name) = k.strip_prefix(PAX_XATTR) {
                    pax.xattrs.push((name.to_vec(), v.to_vec()));
                }
            }
        }
        rest = &rest[len..];
    }
    Ok(())
}

impl<R: Read> TarReader<R> {
    /// Wraps `inner`; names (long or PAX) over `max_path` bytes are rejected.
    pub fn new(inner: R, max_path: usize) -> Self {
        TarReader {
            inner: BufReader::with_capacity(128 * 1024, inner),
            remaining: 0,
            padding: 0,
            headers: 0,
            max_path,
            done: false,
        }
    }

    fn read_block(&mut self, block: &mut [u8; 512]) -> Result<bool, ReadError> {
        let mut got = 0;
        while got < block.len() {
            match self.inner.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        match got {
            0 => Ok(false),
            512 => Ok(true),
            _ => Err(ReadError::Truncated("header block")),
        }
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ReadError> {
        while n > 0 {
            let buf = self.inner.fill_buf().map_err(ReadError::Io)?;
            if buf.is_empty() {
                return Err(ReadError::Truncated("entry data"));
            }
            let k = (buf.len() as u64).min(n) as usize;
            self.inner.consume(k);
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads an extension member's data (bounded by `limit`).
    fn read_ext(
        &mut self,
        size: u64,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, ReadError> {
        if size > limit {
            return Err(ReadError::TooLarge(what, size, limit));
        }
        let mut v = vec![0u8; size as usize];
        self.inner.read_exact(&mut v)?;
        self.skip((BLOCK - size % BLOCK) % BLOCK)?;
        Ok(v)
    }

    /// Advances to the next member; `None` at the end-of-archive marker.
    pub fn next_entry(&mut self) -> Result<Option<EntryHeader>, ReadError> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.remaining + self.padding)?;
        self.remaining = 0;
        self.padding = 0;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax = Pax::default();
        let mut pending_ext = false;
        let name_limit = self.max_path as u64 + 1;
        loop {
            let mut block = [0u8; 512];
            if !self.read_block(&mut block)? {
                return Err(ReadError::Truncated("missing end-of-archive marker"));
            }
            self.headers += 1;
            if block.iter().all(|b| *b == 0) {
                if pending_ext {
                    return Err(ReadError::Corrupt(
                        "extension header without a following member".into(),
                    ));
                }
                self.done = true;
                return Ok(None);
            }
            if !checksum_ok(&block)? {
                return Err(ReadError::Corrupt("tar header checksum mismatch".into()));
            }
            let typeflag = block[156];
            let size = parse_num(&block[124..136])?;
            match typeflag {
                b'L' => {
                    let mut v = self.read_ext(size, name_limit, "GNU long name")?;
                    v.truncate(cstr(&v).len());
                    long_name = Some(v);
                    pending_ext = true;
                    continue;
                }
                b'K' => {
                    let mut v = self.read_ext(size, name_limit, "GNU long link name")?;
                    v.truncate(cstr(&v).len());
                    long_link = Some(v);
                    pending_ext = true;
                    continue;
                }
                b'x' | b'X' => {
                    let v = self.read_ext(size, MAX_PAX, "PAX header")?;
                    parse_pax(&v, &mut pax)?;
                    pending_ext = true;
                    continue;
                }
                b'g' => {
                    self.read_ext(size, MAX_PAX, "PAX global header")?;
                    continue;
                }
                _ => {}
            }
            let ustar = &block[257..263] == b"ustar\0";
            let mut path = cstr(&block[0..100]).to_vec();
            if ustar {
                let prefix = cstr(&block[345..500]);
                if !prefix.is_empty() {
                    let mut p = prefix.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(&path);
                    path = p;
                }
            }
            let path = pax.path.take().or(long_name.take()).unwrap_or(path);
            let link = pax
                .link
                .take()
                .or(long_link.take())
                .unwrap_or_else(|| cstr(&block[157..257]).to_vec());
            if path.len() > self.max_path || link.len() > self.max_path {
                return Err(ReadError::TooLarge(
                    "path",
                    path.len().max(link.len()) as u64,
                    self.max_path as u64,
                ));
            }
            let size = pax.size.unwrap_or(size);
            let id =
                |v: u64| u32::try_from(v).map_err(|_| ReadError::Corrupt("id overflows".into()));
            let uid = id(match pax.uid {
                Some(u) => u,
                None => parse_num(&block[108..116])?,
            })?;
            let gid = id(match pax.gid {
                Some(g) => g,
                None => parse_num(&block[116..124])?,
            })?;
            let mode = u32::try_from(parse_num(&block[100..108])?)
                .map_err(|_| ReadError::Corrupt("mode overflows".into()))?;
            // Links, symlinks and directories carry no data whatever their size field says
            // (POSIX); everything else is followed by `size` bytes.
            let data = if matches!(typeflag, b'1' | b'2' | b'5') {
                0
            } else {
                size
            };
            self.remaining = data;
            self.padding = (BLOCK - data % BLOCK) % BLOCK;
            return Ok(Some(EntryHeader {
                path,
                link,
                typeflag,
                mode,
                uid,
                gid,
                size: data,
                xattrs: std::mem::take(&mut pax.xattrs),
            }));
        }
    }

    /// The current member's data; reading past the stream's end is `UnexpectedEof`.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { r: self }
    }

    /// Reads and discards everything after the end marker (compressed streams and pipes must be
    /// drained so the producer can finish, spec §10.3).
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(&mut self.inner, &mut io::sink())
    }
}

/// Reader over the current member's data.
pub struct EntryData<'a, R: Read> {
    r: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.r.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = (buf.len() as u64).min(self.r.remaining) as usize;
        let n = self.r.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ended inside an entry",
            ));
        }
        self.r.remaining -= n as u64;
        Ok(n)
    }
}
