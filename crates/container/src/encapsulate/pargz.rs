//! Single-member gzip compressed on several cores, pigz's scheme: the input is cut into fixed
//! 1 MiB blocks, each block is deflated independently with the previous block's last 32 KiB as
//! its dictionary and ends on a byte boundary (sync flush), and the raw deflate pieces are
//! concatenated into one stream with one gzip header and trailer.
//!
//! One member, because ostree-ext 0.15.3 (and other single-member readers) stop after the first
//! gzip member. The output depends only on the input and the level — block size and
//! dictionaries are fixed — never on the number of threads, so images stay reproducible.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

/// Bytes per independently compressed block.
pub const BLOCK: usize = 1 << 20;
/// Dictionary carried from one block to the next (deflate's window).
const DICT: usize = 32 * 1024;

/// A gzip writer that compresses batches of blocks in parallel.
pub struct ParGzWriter<W: Write> {
    out: W,
    level: u32,
    cur: Vec<u8>,
    pending: Vec<Vec<u8>>,
    prev_tail: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    batch: usize,
    header_written: bool,
}

impl<W: Write> ParGzWriter<W> {
    /// Compresses into `out` at `level` (0–9), `batch` blocks at a time.
    pub fn new(out: W, level: u32, batch: usize) -> Self {
        ParGzWriter {
            out,
            level: level.min(9),
            cur: Vec::with_capacity(BLOCK),
            pending: Vec::new(),
            prev_tail: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
            batch: batch.max(1),
            header_written: false,
        }
    }

    fn header(&self) -> [u8; 10] {
        // As flate2's GzBuilder: XFL 2 for the slowest level, 4 for the fastest; OS 255.
        let xfl = match self.level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
    }

    fn flush_batch(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            let h = self.header();
            self.out.write_all(&h)?;
            self.header_written = true;
        }
        let blocks = std::mem::take(&mut self.pending);
        let n = blocks.len();
        let level = self.level;
        let prev_tail = std::mem::take(&mut self.prev_tail);
        let pieces: Vec<io::Result<Vec<u8>>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let dict: &[u8] = if i == 0 {
                    &prev_tail
                } else {
                    tail(&blocks[i - 1])
                };
                deflate_block(&blocks[i], dict, level, last && i + 1 == n)
            })
            .collect();
        for (block, piece) in blocks.iter().zip(pieces) {
            self.crc.update(block);
            self.out.write_all(&piece?)?;
        }
        self.prev_tail = blocks.last().map(|b| tail(b).to_vec()).unwrap_or(prev_tail);
        Ok(())
    }

    /// Writes the remaining blocks and the trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let cur = std::mem::take(&mut self.cur);
        self.pending.push(cur);
        self.flush_batch(true)?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn tail(b: &[u8]) -> &[u8] {
    &b[b.len().saturating_sub(DICT)..]
}

/// Raw deflate of one block; non-final blocks end with a sync flush (byte-aligned, not final).
fn deflate_block(data: &[u8], dict: &[u8], level: u32, is_final: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if is_final {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = c.total_in() as usize == data.len();
        let room_left = out.capacity() - out.len() > 0;
        match (status, is_final) {
            (Status::StreamEnd, true) => return Ok(out),
            (_, false) if done_input && room_left => return Ok(out),
            (Status::BufError, _) if !room_left => continue,
            _ => {}
        }
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.cur.len());
        self.cur.extend_from_slice(&data[..n]);
        self.total += n as u64;
        if self.cur.len() == BLOCK {
            let full = std::mem::replace(&mut self.cur, Vec::with_capacity(BLOCK));
            self.pending.push(full);
            if self.pending.len() >= self.batch {
                self.flush_batch(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn compress(data: &[u8], level: u32, batch: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), level, batch);
        for chunk in data.chunks(100_000) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // partly compressible: text-like runs
                if i % 7 < 4 {
                    b"ostree container "[i % 17]
                } else {
                    (x & 0xff) as u8
                }
            })
            .collect()
    }

    #[test]
    fn single_member_round_trip_and_deterministic() {
        for n in [0, 1, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 12345] {
            let data = sample(n);
            for level in [0, 1, 6, 9] {
                let a = compress(&data, level, 1);
                // One member: a single-member decoder gets everything.
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&a[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "n={n} level={level}");
                // Batch size (parallelism) does not change the bytes.
                assert_eq!(compress(&data, level, 7), a, "n={n} level={level}");
            }
        }
    }

    #[test]
    fn ratio_close_to_serial_gzip() {
        let data = sample(6 * BLOCK);
        let ours = compress(&data, 6, 4).len() as f64;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        let serial = e.finish().unwrap().len() as f64;
        assert!(ours <= serial * 1.01, "ours {ours} vs serial {serial}");
    }
}
