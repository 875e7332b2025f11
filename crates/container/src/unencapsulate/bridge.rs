//! Hands a layer's bytes from the fetcher's consumer (which must be `'static`) to an importer
//! thread that borrows the repository transaction, through a bounded channel of chunks.
//!
//! The copy costs far less than decompressing and hashing, and keeps memory bounded:
//! `DEPTH` chunks of at most `CHUNK` bytes per layer in flight.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

const DEPTH: usize = 8;
const CHUNK: usize = 256 * 1024;

/// Reading end, given to the importer.
pub struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A channel pair for one layer.
pub fn channel() -> (SyncSender<Vec<u8>>, ChannelReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (
        tx,
        ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        },
    )
}

/// Copies `src` into the channel until EOF or until the importer hangs up (it failed or has
/// read all it wants); returns whether the importer is still listening.
pub fn pump(
    src: &mut dyn Read,
    tx: &SyncSender<Vec<u8>>,
    interrupt: &AtomicBool,
) -> io::Result<bool> {
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let mut chunk = vec![0u8; CHUNK];
        let n = match src.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        chunk.truncate(n);
        if tx.send(chunk).is_err() {
            return Ok(false);
        }
    }
}
