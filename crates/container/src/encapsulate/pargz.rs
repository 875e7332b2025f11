//! Single-member gzip compressed on several cores, pigz's scheme: the input is cut into fixed
//! 1 MiB blocks, each block is deflated independently with the previous block's last 32 KiB as
//! its dictionary and ends on a byte boundary (sync flush), and the raw deflate pieces are
//! concatenated into one stream with one gzip header and trailer.
//!
//! One member, because ostree-ext 0.15.3 (and other single-member readers) stop after the first
//! gzip member. The output depends only on the input and the level — block size and
//! dictionaries are fixed — never on the number of threads, so images stay reproducible.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Bytes per independently compressed block.
pub const BLOCK: usize = 1 << 20;
/// Dictionary carried from one block to the next (deflate's window).
const DICT: usize = 32 * 1024;

/// A compressed block on its way back: the raw deflate piece and the CRC of its input.
type Piece = io::Result<(Vec<u8>, crc32fast::Hasher)>;

/// A gzip writer that keeps up to `window` blocks compressing on the rayon pool while the
/// caller fills the next one; pieces are written in input order as they complete.
///
/// A continuous pipeline rather than batches: with batches, the caller waited for the slowest
/// block of each batch and the cores idled while the next batch was being filled.
pub struct ParGzWriter<W: Write> {
    out: W,
    level: u32,
    cur: Vec<u8>,
    /// The previous full block (its tail is the next block's dictionary).
    prev: Option<Arc<Vec<u8>>>,
    inflight: VecDeque<Receiver<Piece>>,
    crc: crc32fast::Hasher,
    total: u64,
    window: usize,
    header_written: bool,
}

impl<W: Write> ParGzWriter<W> {
    /// Compresses into `out` at `level` (0–9), at most `window` blocks in flight.
    pub fn new(out: W, level: u32, window: usize) -> Self {
        ParGzWriter {
            out,
            level: level.min(9),
            cur: Vec::with_capacity(BLOCK),
            prev: None,
            inflight: VecDeque::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
            window: window.max(1),
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

    fn write_piece(&mut self, piece: Piece) -> io::Result<()> {
        if !self.header_written {
            let h = self.header();
            self.out.write_all(&h)?;
            self.header_written = true;
        }
        let (bytes, crc) = piece?;
        self.crc.combine(&crc);
        self.out.write_all(&bytes)
    }

    /// Waits for the oldest block in flight and writes it.
    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.inflight.pop_front() {
            let piece = rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("deflate worker stopped")));
            self.write_piece(piece)?;
        }
        Ok(())
    }

    /// Starts compressing `block` (not the last one).
    fn submit(&mut self, block: Vec<u8>) -> io::Result<()> {
        let block = Arc::new(block);
        let dict = self.prev.replace(Arc::clone(&block));
        let level = self.level;
        let job = move || -> Piece {
            let dict = dict.as_deref().map(|d| tail(d)).unwrap_or_default();
            let piece = deflate_block(&block, dict, level, false)?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&block);
            Ok((piece, crc))
        };
        // On a pool thread already (a caller inside rayon), blocking on a pool job could starve
        // the pool: compress inline then.
        if rayon::current_thread_index().is_some() {
            let piece = job();
            return self.write_piece(piece);
        }
        let (tx, rx) = sync_channel(1);
        rayon::spawn(move || {
            // The receiver is gone only if the writer was dropped mid-stream.
            let _ = tx.send(job());
        });
        self.inflight.push_back(rx);
        while self.inflight.len() >= self.window {
            self.drain_one()?;
        }
        Ok(())
    }

    /// Writes the remaining blocks and the trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        while !self.inflight.is_empty() {
            self.drain_one()?;
        }
        let last = std::mem::take(&mut self.cur);
        let dict = self.prev.take();
        let piece = deflate_block(
            &last,
            dict.as_deref().map(|d| tail(d)).unwrap_or_default(),
            self.level,
            true,
        )?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&last);
        self.write_piece(Ok((piece, crc)))?;
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
            self.submit(full)?;
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
                // The window (parallelism) does not change the bytes.
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
