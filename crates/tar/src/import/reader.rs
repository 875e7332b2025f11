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

/// Largest entry size: GNU tar's `off_t` maximum.
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// Parses a numeric header field as strictly as GNU tar's `from_header` (list.c) for the values
/// it accepts, and refuses what it refuses or would read differently from every other reader:
///
/// - one leading NUL, then leading whitespace, are skipped; a field that is blank to its end is
///   refused ("Blanks in header where numeric value expected"); an all-NUL field is 0;
/// - octal digits, with checked arithmetic, must be followed by the field's end, a NUL or
///   whitespace (anything else is refused);
/// - base-256: the first byte is exactly `0x80` (positive); `0xff` (negative, two's complement)
///   is refused as no field we read may be negative, and any other byte with the top bit set is
///   not a number to GNU tar either;
/// - a leading `+` or `-` is refused: GNU tar reads it as the obsolescent base-64 of tar test
///   releases from 1999 (with a warning) while other readers read it as signed octal, so no value
///   is safe to take. In the checksum field (`octal_only`) GNU tar refuses it outright.
///
/// The value must not exceed `max`.
fn parse_num(
    field: &[u8],
    what: &'static str,
    max: u64,
    octal_only: bool,
) -> Result<u64, ReadError> {
    let bad = |why: &str| ReadError::Corrupt(format!("{what} field: {why}"));
    let mut i = usize::from(field.first() == Some(&0));
    while i < field.len() && field[i].is_ascii_whitespace() {
        i += 1;
    }
    if i == field.len() {
        return Err(bad("blank where a number is expected"));
    }
    let mut value: u64 = 0;
    let c = field[i];
    if (b'0'..=b'7').contains(&c) {
        while i < field.len() && (b'0'..=b'7').contains(&field[i]) {
            value = value
                .checked_mul(8)
                .and_then(|v| v.checked_add(u64::from(field[i] - b'0')))
                .ok_or_else(|| bad("octal value out of range"))?;
            i += 1;
        }
    } else if octal_only {
        // Only octal digits, a NUL or whitespace may follow (checked below).
    } else if c == b'+' || c == b'-' {
        return Err(bad("signed (obsolescent base-64) numbers are not accepted"));
    } else if c == 0x80 && i + 2 <= field.len() {
        for &b in &field[i + 1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| bad("base-256 value out of range"))?;
        }
        i = field.len();
    } else if c == 0xff && i + 2 <= field.len() {
        return Err(bad("negative base-256 value"));
    }
    if i < field.len() && field[i] != 0 && !field[i].is_ascii_whitespace() {
        return Err(bad(&format!(
            "{:?} where a number is expected",
            String::from_utf8_lossy(cstr(field))
        )));
    }
    if value > max {
        return Err(bad(&format!("value {value} out of range 0..={max}")));
    }
    Ok(value)
}

/// A PAX decimal value as GNU tar's `decode_num` reads it: digits only (no sign, no blanks),
/// at most `max`.
fn parse_pax_num(v: &[u8], key: &str, max: u64) -> Result<u64, ReadError> {
    let bad = || ReadError::Corrupt(format!("malformed PAX record: invalid {key}"));
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let n = v.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    match n {
        Some(n) if n <= max => Ok(n),
        _ => Err(ReadError::Corrupt(format!(
            "PAX record {key}: value out of range 0..={max}"
        ))),
    }
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

fn checksum_ok(block: &[u8; 512]) -> Result<bool, ReadError> {
    let stored = parse_num(&block[148..156], "checksum", i64::MAX as u64, true)?;
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
        let len = usize::try_from(parse_pax_num(&rest[..sp], "record length", MAX_PAX)?)
            .map_err(|_| bad())?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        match k {
            b"path" => pax.path = Some(v.to_vec()),
            b"linkpath" => pax.link = Some(v.to_vec()),
            b"size" => pax.size = Some(parse_pax_num(v, "size", MAX_SIZE)?),
            b"uid" => pax.uid = Some(parse_pax_num(v, "uid", u32::MAX.into())?),
            b"gid" => pax.gid = Some(parse_pax_num(v, "gid", u32::MAX.into())?),
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
        let pending = self
            .remaining
            .checked_add(self.padding)
            .ok_or_else(|| ReadError::Corrupt("entry size overflows".into()))?;
        self.skip(pending)?;
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
            let size = parse_num(&block[124..136], "size", MAX_SIZE, false)?;
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
                None => parse_num(&block[108..116], "uid", u32::MAX.into(), false)?,
            })?;
            let gid = id(match pax.gid {
                Some(g) => g,
                None => parse_num(&block[116..124], "gid", u32::MAX.into(), false)?,
            })?;
            let mode = u32::try_from(parse_num(&block[100..108], "mode", u32::MAX.into(), false)?)
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

    /// Reads everything after the end-of-archive marker (compressed streams and pipes must be
    /// drained so the producer can finish, spec §10.3) and returns how many bytes followed it.
    ///
    /// Those bytes must all be zero (the rest of the two-block marker and the blocking padding
    /// that tar writers add to fill a record). Anything else is refused, stopping at the first
    /// non-zero byte: GNU tar silently ignores whatever follows the marker (and `--ignore-zeros`
    /// readers go on to read it as further members), so a layer carrying data there would be
    /// two different file sets to two readers; no writer we know of produces one.
    pub fn drain(&mut self) -> Result<u64, ReadError> {
        let mut total = 0u64;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::Io(e)),
            };
            if buf.is_empty() {
                return Ok(total);
            }
            if let Some(i) = buf.iter().position(|b| *b != 0) {
                return Err(ReadError::Corrupt(format!(
                    "non-zero data after the end-of-archive marker ({} bytes past its first block)",
                    total + i as u64
                )));
            }
            let n = buf.len();
            self.inner.consume(n);
            total += n as u64;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for `name` with the given raw size field (other numeric fields valid).
    fn header(name: &str, typeflag: u8, size: &[u8; 12]) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        b[124..136].copy_from_slice(size);
        b[136..148].copy_from_slice(b"00000000000\0");
        b[156] = typeflag;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        fix_checksum(&mut b);
        b
    }

    fn fix_checksum(b: &mut [u8; 512]) {
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|x| u32::from(*x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    fn octal_size(n: u64) -> [u8; 12] {
        let mut f = [0u8; 12];
        f[..11].copy_from_slice(format!("{n:011o}").as_bytes());
        f
    }

    fn base256(n: u64) -> [u8; 12] {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[4..].copy_from_slice(&n.to_be_bytes());
        f
    }

    fn archive(blocks: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for b in blocks {
            v.extend_from_slice(b);
        }
        v.extend_from_slice(&[0u8; 1024]);
        v
    }

    fn first(data: &[u8]) -> Result<Option<EntryHeader>, ReadError> {
        TarReader::new(data, 4096).next_entry()
    }

    fn all(data: &[u8]) -> Result<Vec<Vec<u8>>, ReadError> {
        let mut r = TarReader::new(data, 4096);
        let mut names = Vec::new();
        while let Some(h) = r.next_entry()? {
            names.push(h.path);
        }
        r.drain()?;
        Ok(names)
    }

    fn corrupt_reason(r: Result<impl std::fmt::Debug, ReadError>) -> String {
        match r {
            Err(ReadError::Corrupt(s)) => s,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn size_of_u64_max_is_refused_not_wrapped() {
        // 2^64-1 as base-256: remaining + padding used to wrap to 0, so the entry's data was
        // parsed as headers (release) or the addition panicked (debug).
        let mut f = [0xffu8; 12];
        f[0] = 0x80;
        f[1..4].copy_from_slice(&[0, 0, 0]);
        let inner = header("hidden", b'0', &octal_size(0));
        let data = archive(&[&header("a", b'0', &f), &inner]);
        let why = corrupt_reason(all(&data));
        assert!(
            why.contains("size field") && why.contains("out of range"),
            "{why}"
        );
    }

    #[test]
    fn sizes_above_i64_max_are_refused() {
        let ok = archive(&[&header("a", b'0', &base256(0)), &[0u8; 0]]);
        assert_eq!(all(&ok).unwrap(), vec![b"a".to_vec()]);
        let at_max = first(&archive(&[&header("a", b'0', &base256(i64::MAX as u64))]))
            .unwrap()
            .unwrap();
        assert_eq!(at_max.size, i64::MAX as u64);
        let why = corrupt_reason(first(&archive(&[&header(
            "a",
            b'0',
            &base256(i64::MAX as u64 + 1),
        )])));
        assert!(why.contains("out of range"), "{why}");
        // The same through a PAX size record.
        let rec = format!("size={}\n", i64::MAX as u64 + 1);
        let rec = format!("{} {rec}", rec.len() + 3);
        let mut pax = rec.into_bytes();
        let pax_len = pax.len() as u64;
        pax.resize(512, 0);
        let why = corrupt_reason(first(&archive(&[
            &header("pax", b'x', &octal_size(pax_len)),
            &pax,
            &header("a", b'0', &octal_size(0)),
        ])));
        assert!(
            why.contains("size") && why.contains("out of range"),
            "{why}"
        );
    }

    #[test]
    fn numeric_fields_as_strict_as_gnu_tar() {
        let size = |f: &[u8; 12]| first(&archive(&[&header("a", b'0', f)]));
        let field = |s: &[u8]| {
            let mut f = [0u8; 12];
            f[..s.len()].copy_from_slice(s);
            f
        };
        // Accepted as GNU tar does: leading NUL then blanks, trailing NUL or blank, all-NUL = 0.
        assert_eq!(size(&field(b"\0   0000017")).unwrap().unwrap().size, 0o17);
        assert_eq!(size(&field(b"17 trailing")).unwrap().unwrap().size, 0o17);
        assert_eq!(size(&field(b"")).unwrap().unwrap().size, 0);
        assert_eq!(size(&base256(5)).unwrap().unwrap().size, 5);
        // Refused: sign, blanks only, garbage after digits, negative or unknown base-256.
        for (f, what) in [
            (field(b"+0000000017"), "signed"),
            (field(b"-0000000017"), "signed"),
            (*b"            ", "blank"),
            (field(b"0000000017x"), "where a number is expected"),
            (field(b"0000000009"), "where a number is expected"),
            ([0xffu8; 12], "negative"),
            (
                [0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "where a number is expected",
            ),
            (
                [
                    0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
                "base-256 value out of range",
            ),
        ] {
            let why = corrupt_reason(size(&f));
            assert!(why.contains(what), "{f:?}: {why}");
        }
        // Twelve octal digits, no terminator: 8^12-1 is a valid size.
        assert_eq!(size(b"777777777777").unwrap().unwrap().size, 0o777777777777);
        // Mode, uid and gid go through the same parser.
        let mut h = header("a", b'0', &octal_size(0));
        h[108..116].copy_from_slice(b"+000001\0");
        fix_checksum(&mut h);
        assert!(corrupt_reason(first(&archive(&[&h]))).contains("uid field"));
        // The checksum field takes octal only.
        let mut h = header("a", b'0', &octal_size(0));
        let sum = String::from_utf8_lossy(&h[148..154]).to_string();
        h[148..156].copy_from_slice(format!("+{sum}\0").as_bytes());
        assert!(corrupt_reason(first(&archive(&[&h]))).contains("checksum field"));
    }

    #[test]
    fn pax_numbers_digits_only() {
        for rec in ["size=+5\n", "uid= 5\n", "gid=-1\n", "size=\n"] {
            let rec = format!("{} {rec}", rec.len() + 3);
            let n = rec.len() as u64;
            let mut pax = rec.into_bytes();
            pax.resize(512, 0);
            let why = corrupt_reason(first(&archive(&[
                &header("pax", b'x', &octal_size(n)),
                &pax,
                &header("a", b'0', &octal_size(0)),
            ])));
            assert!(why.contains("PAX"), "{why}");
        }
        let mut pax = b"+13 size=500\n".to_vec();
        pax.resize(512, 0);
        let why = corrupt_reason(first(&archive(&[
            &header("pax", b'x', &octal_size(13)),
            &pax,
            &header("a", b'0', &octal_size(0)),
        ])));
        assert!(why.contains("PAX"), "{why}");
    }

    #[test]
    fn only_zeros_may_follow_the_end_marker() {
        let a = header("a", b'0', &octal_size(0));
        let mut data = archive(&[&a]);
        data.extend_from_slice(&[0u8; 8192]);
        assert_eq!(all(&data).unwrap(), vec![b"a".to_vec()]);
        // A member hidden after the marker (what `tar --ignore-zeros` would extract).
        let mut data = archive(&[&a]);
        data.extend_from_slice(&header("smuggled", b'0', &octal_size(0)));
        data.extend_from_slice(&[0u8; 1024]);
        let why = corrupt_reason(all(&data));
        assert!(why.contains("after the end-of-archive marker"), "{why}");
        // A single stray byte far into the padding.
        let mut data = archive(&[&a]);
        data.extend_from_slice(&[0u8; 5000]);
        data.push(1);
        let why = corrupt_reason(all(&data));
        assert!(why.contains("(5512 bytes past its first block)"), "{why}");
    }
}
