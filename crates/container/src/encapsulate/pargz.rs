//! Single-member gzip compressed on several cores: the raw deflate stream is
//! [`ostree_deflate::PieceWriter`]'s (fixed 1 MiB blocks, each compressed on its own by
//! libdeflate at the same level number and joined into one stream), framed by one gzip header
//! and trailer.
//!
//! libdeflate rather than zlib: at level 6 on 1 MiB blocks it is faster than zlib-rs and about
//! 1% smaller than C zlib 6 (what ostree-ext writes), where zlib-rs 6 is 2–3% larger. No
//! dictionary (libdeflate has no such API): each block is compressed without the previous
//! block's last 32 KiB, which costs less than libdeflate gains (on 300 MB of `/usr/lib`:
//! 1.2% smaller than `pigz -6`). Level 0 is libdeflate's too (stored blocks, joined alike).
//!
//! One member, because ostree-ext 0.15.3 (flate2's `GzDecoder`) and other single-member
//! readers stop after the first gzip member: multi-member output would be read silently
//! truncated. The last block stays final as libdeflate wrote it (no extra empty block needed).
//! The output depends only on the input and the level — the block size is fixed and blocks
//! are independent — never on the number of threads, so images stay reproducible.

use std::io::{self, Write};

use ostree_deflate::PieceWriter;

#[cfg(test)]
use ostree_deflate::BLOCK;

/// A gzip writer over [`PieceWriter`]: up to `window` blocks compress on the rayon pool while
/// the caller fills the next; the CRC of the input is taken as it is written.
pub struct ParGzWriter<W: Write> {
    inner: PieceWriter<W>,
    level: u32,
    crc: crc32fast::Hasher,
    header_written: bool,
}

impl<W: Write> ParGzWriter<W> {
    /// Compresses into `out` at `level` (0–9), at most `window` blocks in flight.
    pub fn new(out: W, level: u32, window: usize) -> Self {
        let level = level.min(9);
        ParGzWriter {
            inner: PieceWriter::new(out, level, window, None),
            level,
            crc: crc32fast::Hasher::new(),
            header_written: false,
        }
    }

    /// The 10-byte header, written before the first piece.
    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // As flate2's GzBuilder: XFL 2 for the slowest level, 4 for the fastest; OS 255.
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.inner
                .get_mut()
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Writes the remaining blocks and the trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_header()?;
        let total = self.inner.total_in();
        let mut out = self.inner.finish()?;
        out.write_all(&self.crc.finalize().to_le_bytes())?;
        out.write_all(&(total as u32).to_le_bytes())?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_header()?;
        let n = self.inner.write(data)?;
        self.crc.update(&data[..n]);
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
    fn output_independent_of_threads() {
        let data = sample(3 * BLOCK + 999);
        let a = compress(&data, 6, 1);
        // On a pool thread (a one-thread pool, as RAYON_NUM_THREADS=1): compressed inline.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one.install(|| compress(&data, 6, 7)), a);
        assert_eq!(compress(&data, 6, 7), a);
    }

    /// At most 1% larger than the real `gzip -6` (C zlib 6 serial, the size ostree-ext's
    /// layers have); the test fails if gzip is missing.
    #[test]
    fn ratio_close_to_serial_gzip() {
        let data = sample(6 * BLOCK);
        let ours = compress(&data, 6, 4).len() as f64;
        let mut child = std::process::Command::new("gzip")
            .arg("-6c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip must be installed to run this test");
        let mut stdin = child.stdin.take().unwrap();
        let feed = data.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&feed));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        let serial = out.stdout.len() as f64;
        assert!(ours <= serial * 1.01, "ours {ours} vs gzip -6 {serial}");
    }
}
