//! Writing one layer blob: tar producer → bounded channel → compressor → blob file.
//!
//! The tar is generated (and its diff_id hashed) on the calling thread while a second thread
//! compresses and hashes the compressed stream; gzip compresses blocks in parallel
//! ([`super::pargz`]), so even a single gzip layer uses every core.
//! At most [`CHANNEL_DEPTH`] buffers of [`CHUNK`] bytes are in flight: memory stays bounded
//! however large the layer. Output is reproducible: gzip headers carry mtime 0, no name and a
//! fixed OS byte; zstd always runs with [`ZSTD_WORKERS`] workers, whatever the core count
//! (zstd's multithreaded output depends on the worker count being zero or not, and on its job
//! size, never on scheduling). Two workers per layer, because layers themselves run in
//! parallel: two concurrent zstd layers stay well under 100 MiB RSS.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

/// Size of the buffers passed from the tar producer to the compressor.
pub const CHUNK: usize = 256 * 1024;
/// Buffers in flight per layer.
pub const CHANNEL_DEPTH: usize = 4;
/// zstd worker threads per layer: fixed so the output never depends on the machine.
pub const ZSTD_WORKERS: u32 = 2;
/// zstd job size: fixed (output depends on it) and small (the level-3 default of 8 MiB jobs
/// with four workers peaked near 100 MiB RSS for one layer).
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip at level 0–9 (default 6).
    Gzip {
        /// Level.
        level: u32,
    },
    /// zstd at level 1–19 (default 3), multithreaded.
    Zstd {
        /// Level.
        level: i32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip { level: 6 }
    }
}

impl Compression {
    /// gzip with its default level.
    pub fn gzip() -> Self {
        Compression::Gzip { level: 6 }
    }

    /// zstd with its default level.
    pub fn zstd() -> Self {
        Compression::Zstd { level: 3 }
    }

    /// The OCI layer media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Checks the level range.
    pub fn validate(self) -> Result<(), String> {
        match self {
            Compression::Gzip { level } if level > 9 => {
                Err(format!("gzip level {level} is out of range 0-9"))
            }
            Compression::Zstd { level } if !(1..=19).contains(&level) => {
                Err(format!("zstd level {level} is out of range 1-19"))
            }
            _ => Ok(()),
        }
    }
}

/// A finished layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed size.
    pub uncompressed_size: u64,
}

/// Why writing a layer failed: in the tar producer (`P`) or in compression/blob I/O.
#[derive(Debug)]
pub enum LayerWriteError<P> {
    /// The producer failed.
    Producer(P),
    /// Compression or the blob file failed.
    Io(io::Error),
    /// The interrupt flag was raised.
    Interrupted,
}

/// Sends the tar stream in [`CHUNK`]-sized buffers, hashing it on the way (the diff_id).
struct ChannelWriter<'a> {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    hasher: Sha256,
    total: u64,
    interrupt: Option<&'a AtomicBool>,
}

impl ChannelWriter<'_> {
    fn send(&mut self) -> io::Result<()> {
        if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            // Not ErrorKind::Interrupted: write_all would retry that forever.
            return Err(io::Error::other("interrupted"));
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) => tx
                .send(full)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "compressor stopped")),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
        }
    }
}

impl Write for ChannelWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hasher.update(&data[..n]);
        self.total += n as u64;
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts and hashes what passes to the blob file.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn compress_loop(
    rx: Receiver<Vec<u8>>,
    out: HashWriter<BufWriter<std::fs::File>>,
    compression: Compression,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<HashWriter<BufWriter<std::fs::File>>> {
    let mut done = 0u64;
    match compression {
        Compression::Gzip { level } => {
            let mut enc =
                super::pargz::ParGzWriter::new(out, level, ostree_deflate::default_window());
            for chunk in rx {
                enc.write_all(&chunk)?;
                done += chunk.len() as u64;
                progress(done);
            }
            enc.finish()
        }
        Compression::Zstd { level } => {
            let mut enc = zstd::Encoder::new(out, level)?;
            enc.multithread(ZSTD_WORKERS)?;
            enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
            enc.include_checksum(false)?;
            for chunk in rx {
                enc.write_all(&chunk)?;
                done += chunk.len() as u64;
                progress(done);
            }
            enc.finish()
        }
    }
}

/// Writes one layer into `blobs_dir` (an OCI `blobs/sha256`): `produce` writes the tar on this
/// thread; `progress` receives the uncompressed bytes compressed so far.
pub fn write_layer<P, F>(
    blobs_dir: &Path,
    compression: Compression,
    progress: &(dyn Fn(u64) + Sync),
    interrupt: Option<&AtomicBool>,
    produce: F,
) -> Result<LayerBlob, LayerWriteError<P>>
where
    F: FnOnce(&mut dyn Write) -> Result<(), P>,
{
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-layer-")
        .tempfile_in(blobs_dir)
        .map_err(LayerWriteError::Io)?;
    let file = tmp.as_file().try_clone().map_err(LayerWriteError::Io)?;
    let (tx, rx) = sync_channel::<Vec<u8>>(CHANNEL_DEPTH);
    let out = HashWriter {
        inner: BufWriter::with_capacity(CHUNK, file),
        hasher: Sha256::new(),
        count: 0,
    };
    let (produced, compressed, diff_hasher, total) = std::thread::scope(|s| {
        let worker = s.spawn(move || compress_loop(rx, out, compression, progress));
        let mut w = ChannelWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            hasher: Sha256::new(),
            total: 0,
            interrupt,
        };
        let produced = produce(&mut w);
        if produced.is_ok()
            && let Err(e) = w.send()
        {
            // The error surfaces through the compressor result or the interrupt check.
            tracing::debug!("final layer buffer not sent: {e}");
        }
        w.tx = None;
        let compressed = worker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("compression thread panicked")));
        (produced, compressed, w.hasher, w.total)
    });
    if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Err(LayerWriteError::Interrupted);
    }
    // A compressor failure makes the producer fail with a broken pipe: report the cause.
    let out = compressed.map_err(LayerWriteError::Io)?;
    produced.map_err(LayerWriteError::Producer)?;
    let HashWriter {
        inner,
        hasher,
        count,
    } = out;
    inner
        .into_inner()
        .map_err(|e| LayerWriteError::Io(e.into_error()))?;
    let digest = hex::encode(hasher.finalize());
    set_blob_mode(tmp.path()).map_err(LayerWriteError::Io)?;
    tmp.persist(blobs_dir.join(&digest))
        .map_err(|e| LayerWriteError::Io(e.error))?;
    Ok(LayerBlob {
        digest: format!("sha256:{digest}"),
        diff_id: format!("sha256:{}", hex::encode(diff_hasher.finalize())),
        size: count,
        uncompressed_size: total,
    })
}

/// Blobs are world-readable like skopeo's (temporary files start as 0600).
pub fn set_blob_mode(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}
