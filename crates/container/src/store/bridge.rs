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

/// A full-size buffer and how many of its bytes are data (kept full-size so that reusing it
/// needs no zeroing).
type Chunk = (Vec<u8>, usize);

/// Reading end, given to the importer.
pub struct ChannelReader {
    rx: Receiver<Chunk>,
    /// Spent buffers go back to the pump.
    recycle: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            match self.rx.recv() {
                Ok((chunk, len)) => {
                    let spent = std::mem::replace(&mut self.buf, chunk);
                    if spent.len() == CHUNK {
                        let _ = self.recycle.try_send(spent);
                    }
                    self.len = len;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The writing end: the channel and the buffers coming back from the reader.
pub struct ChannelWriter {
    tx: SyncSender<Chunk>,
    recycled: Receiver<Vec<u8>>,
}

/// A channel pair for one layer.
pub fn channel() -> (ChannelWriter, ChannelReader) {
    let (tx, rx) = sync_channel(DEPTH);
    let (recycle, recycled) = sync_channel(DEPTH + 2);
    (
        ChannelWriter { tx, recycled },
        ChannelReader {
            rx,
            recycle,
            buf: Vec::new(),
            len: 0,
            pos: 0,
        },
    )
}

/// Why handing a layer to the importer stopped.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// The caller raised the interrupt flag. Its own type, never an `io::Error` of kind
    /// `Interrupted`: readers take that for EINTR and retry.
    #[error("cancelled")]
    Cancelled,
    /// Reading the decompressed layer failed.
    #[error("reading the layer")]
    Read(#[source] io::Error),
}

/// Copies `src` into the channel until EOF or until the importer hangs up (it failed or has
/// read all it wants); returns whether the importer is still listening.
pub fn pump(
    src: &mut dyn Read,
    tx: &ChannelWriter,
    interrupt: &AtomicBool,
) -> Result<bool, PumpError> {
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return Err(PumpError::Cancelled);
        }
        let mut chunk = tx.recycled.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let mut len = 0;
        let mut eof = false;
        while len < CHUNK {
            match src.read(&mut chunk[len..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError::Read(e)),
            }
        }
        if len > 0 && tx.tx.send((chunk, len)).is_err() {
            return Ok(false);
        }
        if eof {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_is_its_own_error_not_an_eintr() {
        let (w, _r) = channel();
        let flag = AtomicBool::new(true);
        let mut src: &[u8] = b"data";
        assert!(matches!(
            pump(&mut src, &w, &flag),
            Err(PumpError::Cancelled)
        ));
    }

    #[test]
    fn bytes_arrive_and_a_hangup_is_reported() {
        let (w, mut r) = channel();
        let flag = AtomicBool::new(false);
        let data = vec![7u8; 3 * CHUNK + 5];
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        });
        assert!(pump(&mut &data[..], &w, &flag).unwrap());
        drop(w);
        assert_eq!(reader.join().unwrap().unwrap(), data);
        let (w, r) = channel();
        drop(r);
        assert!(!pump(&mut &data[..], &w, &flag).unwrap());
    }
}
