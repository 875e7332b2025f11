//! Makes a complete raw deflate stream (RFC 1951) concatenable: [`join`] clears its final
//! block's BFINAL bit and appends an empty stored block, which is how a zlib sync flush ends,
//! so the piece becomes byte-aligned and non-final and the next piece can follow it directly.
//!
//! libdeflate, which compresses [`crate::PieceWriter`]'s pieces, has no streaming or flush API: it
//! only writes whole streams whose last block is final. Where that final block starts and
//! where it ends (to the bit) are only known by walking every block, so [`walk`] parses the
//! block headers and skips every Huffman symbol without producing output. It runs on every
//! compressed block, so it is table-driven: each table entry gives the number of bits of a
//! symbol *including* its extra bits, so a literal costs one lookup and a match two.
//!
//! Malformed input is an error ([`WalkError`]), never a panic; code validity follows zlib's
//! inflate (no over-subscribed code, no incomplete code except a single one-bit code).

use std::sync::OnceLock;

/// Where the final block of a deflate stream starts and where the stream ends, in bits from
/// the start (bit 0 is the least significant bit of byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The final block's header (its BFINAL bit).
    pub final_header_bit: u64,
    /// Just after the final block (its end-of-block code or stored payload).
    pub end_bit: u64,
}

/// Why a stream could not be walked or joined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error("deflate stream truncated at bit {bit}")]
    Truncated { bit: u64 },
    #[error("reserved block type 3 at bit {bit}")]
    ReservedBlockType { bit: u64 },
    #[error("stored block length does not match its complement at byte {byte}")]
    StoredLength { byte: u64 },
    #[error("too many length or distance codes (HLIT {hlit}, HDIST {hdist}) at bit {bit}")]
    TooManyCodes { hlit: usize, hdist: usize, bit: u64 },
    #[error("invalid {what} Huffman code lengths in the block at bit {bit}")]
    BadCode { what: &'static str, bit: u64 },
    #[error("code length repeat without a previous length, or past the end, at bit {bit}")]
    BadRepeat { bit: u64 },
    #[error("invalid {what} symbol at bit {bit}")]
    BadSymbol { what: &'static str, bit: u64 },
    #[error("{extra} bytes after the end of the deflate stream")]
    TrailingBytes { extra: u64 },
}

/// Bits of the primary lookup of the literal/length table; longer codes use subtables.
const LITLEN_BITS: u32 = 10;
/// Bits of the primary lookup of the distance table.
const DIST_BITS: u32 = 8;
/// The code-length code has codes of at most 7 bits: one level.
const CODELEN_BITS: u32 = 7;

// Table entry: bits 0–7 the bits to consume (code plus extra bits), 8–11 the kind, 12–15 the
// code's own length, 16–31 the symbol (or, for SUB, the subtable's offset, with its index width
// in bits 0–7).
const LIT: u32 = 0;
const LEN: u32 = 1;
const EOB: u32 = 2;
const INVALID: u32 = 3;
const SUB: u32 = 4;

const fn entry(kind: u32, bits: u32, code_len: u32, sym: u32) -> u32 {
    (sym << 16) | (code_len << 12) | (kind << 8) | bits
}
const fn kind_of(e: u32) -> u32 {
    (e >> 8) & 0xf
}
const INVALID_ENTRY: u32 = entry(INVALID, 0, 0, 0);

/// Extra bits of each length symbol 257..=285.
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Order in which the code-length code's lengths are sent.
const CODELEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// What a symbol of a literal/length code means.
fn litlen_kind(sym: usize) -> (u32, u32) {
    match sym {
        0..=255 => (LIT, 0),
        256 => (EOB, 0),
        257..=285 => (LEN, u32::from(LEN_EXTRA[sym - 257])),
        _ => (INVALID, 0),
    }
}

/// What a distance symbol means (the kind LEN stands for "valid" here).
fn dist_kind(sym: usize) -> (u32, u32) {
    match sym {
        0..=3 => (LEN, 0),
        4..=29 => (LEN, (sym as u32 / 2) - 1),
        _ => (INVALID, 0),
    }
}

/// A canonical Huffman decoding table: a primary lookup of `bits` bits, subtables after it.
struct Table {
    bits: u32,
    entries: Vec<u32>,
    /// Reused by [`Table::fold_literals`].
    scratch: Vec<u32>,
}

/// How strictly to check a code's completeness (zlib's rules).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Completeness {
    /// The code-length code must be complete.
    Complete,
    /// Literal/length and distance codes may be a single one-bit code (or empty).
    SingleAllowed,
}

impl Table {
    fn new(bits: u32) -> Self {
        Table {
            bits,
            entries: Vec::with_capacity(1 << bits),
            scratch: Vec::new(),
        }
    }

    /// Builds the table for `lens` (code length per symbol, 0 = unused); `kind` maps a symbol
    /// to its kind and extra bits. Returns false for an invalid set of lengths.
    fn build(
        &mut self,
        lens: &[u8],
        kind: fn(usize) -> (u32, u32),
        completeness: Completeness,
    ) -> bool {
        let mut count = [0u32; 16];
        for &l in lens {
            match count.get_mut(usize::from(l)) {
                Some(c) => *c += 1,
                None => return false,
            }
        }
        count[0] = 0;
        // Over-subscribed or incomplete?
        let mut left: i64 = 1;
        for &c in &count[1..] {
            left = left * 2 - i64::from(c);
            if left < 0 {
                return false;
            }
        }
        let used: u32 = count.iter().sum();
        if left > 0 {
            let single = used == 1 && count[1] == 1;
            let empty = used == 0;
            if completeness == Completeness::Complete || !(single || empty) {
                return false;
            }
        }
        // First canonical code of each length.
        let mut next = [0u32; 16];
        let mut code = 0u32;
        for len in 1..16 {
            code = (code + count[len - 1]) << 1;
            next[len] = code;
        }
        let primary = 1usize << self.bits;
        self.entries.clear();
        self.entries.resize(primary, INVALID_ENTRY);
        // Subtable widths per primary index (codes longer than the primary lookup).
        let mut codes: Vec<(u32, u32, usize)> = Vec::with_capacity(lens.len());
        let mut sub_bits: Vec<u8> = Vec::new();
        for (sym, &l) in lens.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let len = u32::from(l);
            let c = next[len as usize];
            next[len as usize] += 1;
            // Deflate sends codes most significant bit first; the lookup index is LSB first.
            let rev = c.reverse_bits() >> (32 - len);
            codes.push((rev, len, sym));
            if len > self.bits {
                if sub_bits.is_empty() {
                    sub_bits.resize(primary, 0);
                }
                let p = (rev as usize) & (primary - 1);
                let w = (len - self.bits) as u8;
                if let Some(s) = sub_bits.get_mut(p)
                    && *s < w
                {
                    *s = w;
                }
            }
        }
        // Lay out the subtables after the primary lookup.
        let mut offsets: Vec<u32> = Vec::new();
        if !sub_bits.is_empty() {
            offsets.resize(primary, 0);
            for p in 0..primary {
                let w = u32::from(sub_bits[p]);
                if w > 0 {
                    let off = self.entries.len() as u32;
                    offsets[p] = off;
                    self.entries[p] = entry(SUB, w, 0, off);
                    self.entries
                        .resize(self.entries.len() + (1 << w), INVALID_ENTRY);
                }
            }
        }
        for (rev, len, sym) in codes {
            let (k, extra) = kind(sym);
            let e = entry(k, len + extra, len, sym as u32);
            if len <= self.bits {
                let mut i = rev as usize;
                while i < primary {
                    self.entries[i] = e;
                    i += 1 << len;
                }
            } else {
                let p = (rev as usize) & (primary - 1);
                let w = u32::from(sub_bits[p]);
                let base = offsets[p] as usize;
                let mut i = (rev >> self.bits) as usize;
                while i < (1 << w) {
                    self.entries[base + i] = e;
                    i += 1 << (len - self.bits);
                }
            }
        }
        true
    }

    /// Folds runs of literals into the primary entries: an entry whose code is a literal then
    /// consumes every following literal whose code lies wholly inside the primary lookup's
    /// bits, and a length code ending the run too (the entry then stands for that length, so
    /// a distance follows). A walker needs no values, only bit counts, so one lookup skips
    /// several symbols.
    fn fold_literals(&mut self) {
        let primary = 1usize << self.bits;
        let Some(primary_entries) = self.entries.get(..primary) else {
            return;
        };
        let mut single = std::mem::take(&mut self.scratch);
        single.clear();
        single.extend_from_slice(primary_entries);
        for (i, slot) in self.entries.iter_mut().take(primary).enumerate() {
            let first = single[i];
            if kind_of(first) != LIT {
                continue;
            }
            let mut used = first & 0xff;
            let mut kind = LIT;
            while used < self.bits {
                let next = single[(i >> used) & (primary - 1)];
                let k = kind_of(next);
                let code_len = (next >> 12) & 0xf;
                if (k != LIT && k != LEN) || code_len > self.bits - used {
                    break;
                }
                used += next & 0xff;
                if k == LEN {
                    kind = LEN;
                    break;
                }
            }
            *slot = entry(kind, used, 0, 0);
        }
        self.scratch = single;
    }

    /// The entry for the next code in `bitbuf` (LSB first); never panics.
    #[inline(always)]
    fn lookup(&self, bitbuf: u64) -> u32 {
        let mask = (1u64 << self.bits) - 1;
        let e = self
            .entries
            .get((bitbuf & mask) as usize)
            .copied()
            .unwrap_or(INVALID_ENTRY);
        if kind_of(e) != SUB {
            return e;
        }
        let w = e & 0xff;
        let idx = (e >> 16) as u64 + ((bitbuf >> self.bits) & ((1u64 << w) - 1));
        self.entries
            .get(idx as usize)
            .copied()
            .unwrap_or(INVALID_ENTRY)
    }
}

/// Fixed-code tables (BTYPE 01), built once.
fn fixed_tables() -> &'static (Table, Table) {
    static FIXED: OnceLock<(Table, Table)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let mut lens = [0u8; 288];
        for (i, l) in lens.iter_mut().enumerate() {
            *l = match i {
                0..=143 => 8,
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
        }
        let mut litlen = Table::new(LITLEN_BITS);
        let mut dist = Table::new(DIST_BITS);
        // Both fixed codes are complete, so building cannot fail.
        let ok = litlen.build(&lens, litlen_kind, Completeness::Complete)
            && dist.build(&[5u8; 32], dist_kind, Completeness::Complete);
        debug_assert!(ok);
        litlen.fold_literals();
        (litlen, dist)
    })
}

/// LSB-first bit reader with a 64-bit buffer. Bits above `count` in `buf` are either zero or
/// the stream's next bits, so refills may OR over them.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    buf: u64,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            buf: 0,
            count: 0,
        }
    }

    /// Bits consumed so far.
    fn bit_pos(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.count)
    }

    /// Loads bytes until at least 56 bits are buffered or the input is exhausted.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.buf |= u64::from_le_bytes(b) << self.count;
            let n = (63 - self.count) / 8;
            self.pos += n as usize;
            self.count += n * 8;
        } else {
            while self.count < 56 {
                let Some(&b) = self.data.get(self.pos) else {
                    break;
                };
                self.buf |= u64::from(b) << self.count;
                self.pos += 1;
                self.count += 8;
            }
        }
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) -> Result<(), WalkError> {
        if n > self.count {
            return Err(WalkError::Truncated {
                bit: self.bit_pos(),
            });
        }
        self.buf >>= n;
        self.count -= n;
        Ok(())
    }

    /// Reads `n` (at most 32) bits as a number.
    fn take(&mut self, n: u32) -> Result<u32, WalkError> {
        self.refill();
        let v = (self.buf & ((1u64 << n) - 1)) as u32;
        self.consume(n)?;
        Ok(v)
    }

    /// Moves to byte `byte`, dropping the buffer.
    fn seek_byte(&mut self, byte: usize) {
        self.pos = byte;
        self.buf = 0;
        self.count = 0;
    }

    /// Decodes one symbol with `table`; returns (kind, symbol), having consumed its bits.
    fn symbol(&mut self, table: &Table) -> Result<(u32, usize), WalkError> {
        self.refill();
        let e = table.lookup(self.buf);
        self.consume(e & 0xff)?;
        Ok((kind_of(e), (e >> 16) as usize))
    }
}

/// Finds the final block of the complete raw deflate stream `data` and the stream's end.
pub fn walk(data: &[u8]) -> Result<Bounds, WalkError> {
    let mut r = Bits::new(data);
    let mut litlen = Table::new(LITLEN_BITS);
    let mut dist = Table::new(DIST_BITS);
    let mut codelen = Table::new(CODELEN_BITS);
    let mut lens = [0u8; 286 + 30];
    loop {
        let header = r.bit_pos();
        let bfinal = r.take(1)? == 1;
        match r.take(2)? {
            0 => stored(&mut r)?,
            1 => {
                let (l, d) = fixed_tables();
                skip_symbols(&mut r, l, d)?;
            }
            2 => {
                read_dynamic(
                    &mut r,
                    &mut codelen,
                    &mut lens,
                    &mut litlen,
                    &mut dist,
                    header,
                )?;
                skip_symbols(&mut r, &litlen, &dist)?;
            }
            _ => return Err(WalkError::ReservedBlockType { bit: header }),
        }
        if bfinal {
            return Ok(Bounds {
                final_header_bit: header,
                end_bit: r.bit_pos(),
            });
        }
    }
}

/// Skips a stored block's payload (its 3 header bits already read).
fn stored(r: &mut Bits<'_>) -> Result<(), WalkError> {
    let start = r.bit_pos().div_ceil(8);
    let truncated = WalkError::Truncated { bit: start * 8 };
    let at = usize::try_from(start).map_err(|_| truncated.clone())?;
    let Some(h) = r.data.get(at..at + 4) else {
        return Err(truncated);
    };
    let len = u16::from_le_bytes([h[0], h[1]]);
    let nlen = u16::from_le_bytes([h[2], h[3]]);
    if len != !nlen {
        return Err(WalkError::StoredLength { byte: start });
    }
    let end = at + 4 + usize::from(len);
    if end > r.data.len() {
        return Err(WalkError::Truncated {
            bit: r.data.len() as u64 * 8,
        });
    }
    r.seek_byte(end);
    Ok(())
}

/// Reads a dynamic block's code description and builds its tables.
fn read_dynamic(
    r: &mut Bits<'_>,
    codelen: &mut Table,
    lens: &mut [u8; 316],
    litlen: &mut Table,
    dist: &mut Table,
    header: u64,
) -> Result<(), WalkError> {
    let hlit = r.take(5)? as usize + 257;
    let hdist = r.take(5)? as usize + 1;
    let hclen = r.take(4)? as usize + 4;
    if hlit > 286 || hdist > 30 {
        return Err(WalkError::TooManyCodes {
            hlit,
            hdist,
            bit: header,
        });
    }
    let mut cl = [0u8; 19];
    for &i in &CODELEN_ORDER[..hclen] {
        cl[i] = r.take(3)? as u8;
    }
    if !codelen.build(&cl, |_| (LIT, 0), Completeness::Complete) {
        return Err(WalkError::BadCode {
            what: "code-length",
            bit: header,
        });
    }
    let total = hlit + hdist;
    let mut i = 0;
    while i < total {
        let at = r.bit_pos();
        let (kind, sym) = r.symbol(codelen)?;
        if kind != LIT {
            return Err(WalkError::BadSymbol {
                what: "code-length",
                bit: at,
            });
        }
        let (value, times) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                let Some(&prev) = i.checked_sub(1).and_then(|p| lens.get(p)) else {
                    return Err(WalkError::BadRepeat { bit: at });
                };
                (prev, 3 + r.take(2)? as usize)
            }
            17 => (0, 3 + r.take(3)? as usize),
            _ => (0, 11 + r.take(7)? as usize),
        };
        let Some(run) = lens.get_mut(i..i + times).filter(|_| i + times <= total) else {
            return Err(WalkError::BadRepeat { bit: at });
        };
        run.fill(value);
        i += times;
    }
    let (ll, dl) = lens[..total].split_at(hlit);
    if ll[256] == 0 || !litlen.build(ll, litlen_kind, Completeness::SingleAllowed) {
        return Err(WalkError::BadCode {
            what: "literal/length",
            bit: header,
        });
    }
    if !dist.build(dl, dist_kind, Completeness::SingleAllowed) {
        return Err(WalkError::BadCode {
            what: "distance",
            bit: header,
        });
    }
    litlen.fold_literals();
    Ok(())
}

/// Skips a Huffman-coded block's symbols through its end-of-block code.
///
/// Literal or length is not branched on (it would be mispredicted about half the time): the
/// distance entry is always looked up and its bits masked out after a literal. While 8 bytes
/// remain, every refill leaves at least 56 bits and one step consumes at most 48 (a
/// literal/length code with extra bits ≤ 20, a folded literal run ≤ LITLEN_BITS + 5, a
/// distance code with extra bits ≤ 28), so that loop needs no truncation checks and keeps the
/// bit buffer in registers; the last bytes take the checked path.
fn skip_symbols(r: &mut Bits<'_>, litlen: &Table, dist: &Table) -> Result<(), WalkError> {
    let data = r.data;
    let (mut pos, mut buf, mut count) = (r.pos, r.buf, r.count);
    // A length followed by an invalid distance, noted without a branch and reported when the
    // loop ends (it ends: every literal/length entry consumes at least one bit).
    let mut bad_distance = 0u32;
    let bad = |r: &Bits<'_>| WalkError::BadSymbol {
        what: "distance",
        bit: r.bit_pos(),
    };
    while let Some(w) = data.get(pos..pos + 8) {
        let w = <[u8; 8]>::try_from(w).unwrap_or_default();
        buf |= u64::from_le_bytes(w) << count;
        let n = (63 - count) / 8;
        pos += n as usize;
        count += n * 8;
        let e = litlen.lookup(buf);
        let kind = kind_of(e);
        if kind > LEN {
            (r.pos, r.buf, r.count) = (pos, buf, count);
            if bad_distance != 0 {
                return Err(bad(r));
            }
            if kind == EOB {
                return r.consume(e & 0xff);
            }
            return Err(WalkError::BadSymbol {
                what: "literal/length",
                bit: r.bit_pos(),
            });
        }
        let n = e & 0xff;
        buf >>= n;
        count = count.wrapping_sub(n);
        let d = dist.lookup(buf);
        bad_distance |= kind & u32::from(kind_of(d) != LEN);
        let m = d & 0xff & 0u32.wrapping_sub(kind);
        buf >>= m;
        count = count.wrapping_sub(m);
    }
    (r.pos, r.buf, r.count) = (pos, buf, count);
    if bad_distance != 0 {
        return Err(bad(r));
    }
    loop {
        r.refill();
        let e = litlen.lookup(r.buf);
        let kind = kind_of(e);
        if kind > LEN {
            if kind == EOB {
                return r.consume(e & 0xff);
            }
            return Err(WalkError::BadSymbol {
                what: "literal/length",
                bit: r.bit_pos(),
            });
        }
        r.consume(e & 0xff)?;
        let d = dist.lookup(r.buf);
        if (kind == LEN) & (kind_of(d) != LEN) {
            return Err(WalkError::BadSymbol {
                what: "distance",
                bit: r.bit_pos(),
            });
        }
        r.consume(d & 0xff & 0u32.wrapping_sub(kind))?;
    }
}

/// Turns the complete raw deflate stream `piece` into a non-final, byte-aligned piece that
/// another deflate stream may follow: its final block's BFINAL bit cleared, then an empty
/// stored block (3 zero bits, zero padding to a byte, `00 00 FF FF`), as a zlib sync flush.
pub fn join(piece: &mut Vec<u8>) -> Result<(), WalkError> {
    let b = walk(piece)?;
    let used = b.end_bit.div_ceil(8);
    let len = piece.len() as u64;
    if used != len {
        return Err(WalkError::TrailingBytes { extra: len - used });
    }
    let flip = |piece: &mut Vec<u8>, bit: u64| -> Option<()> {
        let byte = piece.get_mut(usize::try_from(bit / 8).ok()?)?;
        *byte &= !(1u8 << (bit % 8));
        Some(())
    };
    flip(piece, b.final_header_bit).ok_or(WalkError::Truncated {
        bit: b.final_header_bit,
    })?;
    // Zero the padding after the end (where the stored block's header goes), then pad the
    // 3 header bits to a byte.
    let keep = b.end_bit % 8;
    if keep != 0
        && let Some(last) = piece.last_mut()
    {
        *last &= (1u8 << keep) - 1;
    }
    let aligned = (b.end_bit + 3).div_ceil(8);
    let aligned = usize::try_from(aligned).map_err(|_| WalkError::Truncated { bit: b.end_bit })?;
    piece.resize(aligned, 0);
    piece.extend_from_slice(&[0, 0, 0xff, 0xff]);
    Ok(())
}

#[cfg(test)]
mod tests;
