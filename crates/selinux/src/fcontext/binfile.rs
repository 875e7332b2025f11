//! The compiled form (`file_contexts.bin`, written by `sefcontext_compile`, formats 1–5 as
//! libselinux 3.4 reads them). Only the specs' strings and fields are read; the serialised
//! PCRE2 code is skipped. It is used to check that a `.bin` libselinux would prefer says
//! the same as the text beside it.

use super::parse::Spec;

/// `SELINUX_MAGIC_COMPILED_FCONTEXT`.
pub const MAGIC: u32 = 0xf97c_ff8a;

/// Whether `data` starts with the compiled magic (libselinux's `fcontext_is_binary`).
pub fn is_binary(data: &[u8]) -> bool {
    data.get(..4)
        .is_some_and(|m| u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) == MAGIC)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A NUL-terminated string of `len` bytes (NUL included); the bytes before the NUL.
    fn cstr(&mut self, len: usize) -> Option<&'a [u8]> {
        let b = self.take(len)?;
        let (last, s) = b.split_last()?;
        (*last == 0).then_some(s)
    }
}

/// The specs of a compiled file, in file order; `None` if it is not one libselinux 3.4 reads.
pub fn parse_bin(data: &[u8]) -> Option<Vec<Spec>> {
    let mut r = Reader(data);
    if r.u32()? != MAGIC {
        return None;
    }
    let version = r.u32()?;
    if version == 0 || version > 5 {
        return None;
    }
    if version >= 2 {
        let n = r.u32()? as usize;
        r.take(n)?; // PCRE2 version
        if version >= 5 {
            let n = r.u32()? as usize;
            r.take(n)?; // regex arch
        }
    }
    let nstems = r.u32()? as usize;
    let mut stems = Vec::with_capacity(nstems.min(1 << 16));
    for _ in 0..nstems {
        let len = r.u32()? as usize;
        if len == 0 {
            return None;
        }
        stems.push(r.cstr(len.checked_add(1)?)?.to_vec());
    }
    let nspecs = r.u32()? as usize;
    if nspecs == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(nspecs.min(1 << 16));
    for _ in 0..nspecs {
        let n = r.u32()? as usize;
        let context = r.cstr(n)?.to_vec();
        let n = r.u32()? as usize;
        let regex = r.cstr(n)?.to_vec();
        let mode = r.u32()?;
        let stem_id = r.u32()? as i32;
        let meta = r.u32()?;
        if version >= 4 {
            r.u32()?; // prefix_len
        }
        let n = r.u32()? as usize;
        r.take(n)?;
        let stem = usize::try_from(stem_id)
            .ok()
            .and_then(|i| stems.get(i).cloned());
        out.push(Spec {
            regex,
            mode,
            context,
            stem,
            has_meta: meta & 0xff != 0,
        });
    }
    Some(out)
}
