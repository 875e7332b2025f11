//! [`PieceWriter`]: a raw deflate writer that compresses full blocks on the rayon pool.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, sync_channel};

/// Bytes per independently compressed block (1 MiB: large enough that the missing dictionary
/// costs well under 1%, small enough to bound memory and spread over cores).
pub const BLOCK: usize = 1 << 20;

/// Blocks in flight for a writer on this machine: two per pool thread keep every core busy
/// while one finishes (the output does not depend on it).
pub fn default_window() -> usize {
    2 * rayon::current_num_threads().max(1) + 2
}

/// A compressed piece on its way back from the pool.
type Piece = io::Result<Vec<u8>>;

/// Raw deflate of everything written, at a zlib-style level (0–9, the number passed on to
/// libdeflate). Up to `window` full blocks compress on the rayon pool while the caller fills
/// the next; pieces are written to the inner writer in input order. Nothing is written until
/// the first block is full or [`PieceWriter::finish`] is called, so input shorter than a block
/// is compressed once, on the caller's thread, as one complete stream.
///
/// A continuous pipeline rather than batches: with batches the caller waited for the slowest
/// block of each batch while the cores idled.
pub struct PieceWriter<W: Write> {
    out: W,
    level: u32,
    cur: Vec<u8>,
    inflight: VecDeque<Receiver<Piece>>,
    window: usize,
    total_in: u64,
}

impl<W: Write> PieceWriter<W> {
    /// Compresses into `out` at `level` (clamped to 9), at most `window` blocks in flight;
    /// `size_hint` (the expected input size, if known) sizes the first buffer.
    pub fn new(out: W, level: u32, window: usize, size_hint: Option<u64>) -> Self {
        let first = size_hint.map_or(BLOCK, |s| usize::try_from(s).unwrap_or(BLOCK).min(BLOCK));
        PieceWriter {
            out,
            level: level.min(9),
            cur: Vec::with_capacity(first),
            inflight: VecDeque::new(),
            window: window.max(1),
            total_in: 0,
        }
    }

    /// Uncompressed bytes written so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// The inner writer (for framing written before the first piece, as a gzip header).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Waits for the oldest block in flight and writes it.
    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.inflight.pop_front() {
            let piece = rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("deflate worker stopped")))?;
            self.out.write_all(&piece)?;
        }
        Ok(())
    }

    /// Starts compressing `block` (not the last one).
    fn submit(&mut self, block: Vec<u8>) -> io::Result<()> {
        let level = self.level;
        // On a pool thread already (a caller inside rayon), blocking on a pool job could starve
        // the pool: compress inline then.
        if rayon::current_thread_index().is_some() {
            let piece = compress_piece(&block, level, false)?;
            return self.out.write_all(&piece);
        }
        let (tx, rx) = sync_channel(1);
        rayon::spawn(move || {
            // The receiver is gone only if the writer was dropped mid-stream.
            let _ = tx.send(compress_piece(&block, level, false));
        });
        self.inflight.push_back(rx);
        while self.inflight.len() >= self.window {
            self.drain_one()?;
        }
        Ok(())
    }

    /// Writes the remaining blocks, the final piece, and flushes; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        while !self.inflight.is_empty() {
            self.drain_one()?;
        }
        let last = std::mem::take(&mut self.cur);
        let out = &mut self.out;
        with_compressor(self.level, |c, buf| {
            compress_with(c, &last, buf)?;
            out.write_all(buf)
        })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for PieceWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.cur.len());
        self.cur.extend_from_slice(&data[..n]);
        self.total_in += n as u64;
        if self.cur.len() == BLOCK {
            // A full block is never the last piece (the final one may be empty), so the bytes
            // do not depend on how the input was split into writes.
            let full = std::mem::replace(&mut self.cur, Vec::with_capacity(BLOCK));
            self.submit(full)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// This thread's libdeflate compressor, its level (allocating one per block is costly)
    /// and an output buffer reused by final pieces (every small object is one).
    static COMPRESSOR: RefCell<Option<(u32, libdeflater::Compressor, Vec<u8>)>> =
        const { RefCell::new(None) };
}

/// Runs `f` with this thread's compressor for `level` and its output buffer.
fn with_compressor<R>(
    level: u32,
    f: impl FnOnce(&mut libdeflater::Compressor, &mut Vec<u8>) -> io::Result<R>,
) -> io::Result<R> {
    COMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.as_ref().is_none_or(|(l, _, _)| *l != level) {
                *slot = Some((level, new_compressor(level)?, Vec::new()));
            }
            match slot.as_mut() {
                Some((_, c, buf)) => {
                    let r = f(c, buf);
                    if buf.capacity() > 2 * BLOCK {
                        *buf = Vec::new();
                    }
                    r
                }
                None => Err(io::Error::other("no deflate compressor")),
            }
        }
        // Re-entered on this thread: a fresh compressor.
        Err(_) => f(&mut new_compressor(level)?, &mut Vec::new()),
    })
}

/// Raw deflate of one block by libdeflate at `level` (0–9). A non-final piece is joined (made
/// non-final and byte-aligned, so another piece may follow); a final one is the complete stream
/// libdeflate wrote.
pub fn compress_piece(data: &[u8], level: u32, is_final: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    with_compressor(level, |c, _| compress_with(c, data, &mut out))?;
    if !is_final {
        crate::join::join(&mut out).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("joining a libdeflate piece: {e}"),
            )
        })?;
    }
    Ok(out)
}

fn new_compressor(level: u32) -> io::Result<libdeflater::Compressor> {
    let lvl = i32::try_from(level)
        .ok()
        .and_then(|l| libdeflater::CompressionLvl::new(l).ok())
        .ok_or_else(|| io::Error::other(format!("invalid deflate level {level}")))?;
    Ok(libdeflater::Compressor::new(lvl))
}

/// Compresses `data` into `out` (resized to fit exactly).
fn compress_with(
    c: &mut libdeflater::Compressor,
    data: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    // Room for the joined piece's empty stored block too.
    out.resize(c.deflate_compress_bound(data.len()) + 8, 0);
    let n = c
        .deflate_compress(data, out)
        .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
    out.truncate(n);
    Ok(())
}

#[cfg(test)]
mod tests;
