//! Blocking side of a layer: receive raw chunks, sniff the compression, decompress, hash,
//! hand a `Read` to the consumer, then drain everything (spec 10.3).

use std::io::{self, Read};
use std::sync::Arc;

use containers_image_proxy::oci_spec::image::MediaType;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::progress::Activity;

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip, possibly multi-member.
    Gzip,
    /// zstd, including zstd:chunked (many frames plus skippable frames).
    Zstd,
}

impl Compression {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Trust the bytes over the label: some transports (skopeo `docker-archive:`) call plain
    /// layers gzip, and docker-daemon serves uncompressed data labelled gzip.
    pub(crate) fn sniff(prefix: &[u8]) -> Self {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The compression a media type declares, or `None` if it is not a layer we handle
/// (non-distributable, encrypted, foreign, unknown).
pub(crate) fn layer_compression(mt: &MediaType) -> Option<Compression> {
    match mt {
        MediaType::ImageLayer => Some(Compression::None),
        MediaType::ImageLayerGzip => Some(Compression::Gzip),
        MediaType::ImageLayerZstd => Some(Compression::Zstd),
        MediaType::Other(s) => match s.as_str() {
            "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Compression::Gzip),
            _ => None,
        },
        _ => None,
    }
}

/// One message from the async pump: a chunk, or the clean end of the raw stream.
#[derive(Debug)]
pub(crate) enum Chunk {
    Data(Vec<u8>),
    End,
}

/// `Read` over the pump's channel. A channel closed without [`Chunk::End`] is an error, so a
/// consumer never mistakes an aborted transfer for a short layer.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
    activity: Arc<Activity>,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<Chunk>, activity: Arc<Activity>) -> Self {
        Self {
            rx,
            cur: Vec::new(),
            pos: 0,
            ended: false,
            activity,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(v)) => {
                    self.activity.touch();
                    self.cur = v;
                    self.pos = 0;
                }
                Some(Chunk::End) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "layer transfer aborted",
                    ));
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hashes and counts what passes through and remembers the first error, because a decoder
/// may answer a second read after a failure with a clean EOF.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
    first_error: Option<io::Error>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.first_error.is_none() {
                    self.first_error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// What the blocking side of one layer produced.
pub(crate) struct Decoded<T> {
    pub(crate) value: Result<T, Box<dyn std::error::Error + Send + Sync>>,
    pub(crate) compression: Compression,
    /// `sha256:<hex>` of the decompressed stream.
    pub(crate) diff_id: String,
    pub(crate) uncompressed_size: u64,
    /// Reading or decompressing failed (possibly because the raw stream was aborted).
    pub(crate) error: Option<io::Error>,
}

/// Reads up to 4 bytes without losing them.
fn read_prefix(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut prefix = vec![0u8; 4];
    let mut n = 0;
    while n < prefix.len() {
        match r.read(&mut prefix[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    prefix.truncate(n);
    Ok(prefix)
}

/// Runs on a blocking thread: decode, call the consumer, then drain decompressed (only if the
/// consumer succeeded) and raw.
pub(crate) fn decode_layer<T, E>(
    raw: &mut ChannelReader,
    consumer: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Decoded<T>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let prefix = match read_prefix(raw) {
        Ok(p) => p,
        Err(e) => {
            return Decoded {
                value: Err(Box::new(io::Error::new(e.kind(), e.to_string()))),
                compression: Compression::None,
                diff_id: String::new(),
                uncompressed_size: 0,
                error: Some(e),
            };
        }
    };
    let compression = Compression::sniff(&prefix);
    let mut result = {
        let src = io::Cursor::new(prefix).chain(&mut *raw);
        let mut setup_error = None;
        let decoder: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
            Compression::Zstd => match zstd::stream::read::Decoder::new(src) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    setup_error = Some(e);
                    Box::new(io::empty())
                }
            },
            Compression::None => Box::new(src),
        };
        let mut hashed = HashingReader {
            inner: decoder,
            hasher: Sha256::new(),
            size: 0,
            first_error: setup_error,
        };
        let value = consumer(&mut hashed).map_err(Into::into);
        // Drain what the consumer left (tar end blocks, trailing frames) for the diff_id. Not
        // after a refusal: the layer is lost anyway, and inflating the rest of a hostile blob
        // (1000:1 and more) would cost minutes of CPU for nothing; its raw bytes are still read
        // below, as the proxy protocol requires.
        if value.is_ok() {
            let _ = io::copy(&mut hashed, &mut io::sink());
        }
        Decoded {
            value,
            compression,
            diff_id: format!("sha256:{}", hex::encode(hashed.hasher.finalize())),
            uncompressed_size: hashed.size,
            error: hashed.first_error,
        }
    };
    // The decoder may stop before the raw end; skopeo only finishes once all is read.
    if let Err(e) = io::copy(raw, &mut io::sink()) {
        result.error.get_or_insert(e);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(chunks: Vec<Vec<u8>>, end: bool) -> ChannelReader {
        let (tx, rx) = mpsc::channel(chunks.len() + 1);
        for c in chunks {
            tx.try_send(Chunk::Data(c)).unwrap();
        }
        if end {
            tx.try_send(Chunk::End).unwrap();
        }
        ChannelReader::new(rx, Arc::new(Activity::new()))
    }

    fn sha(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    #[test]
    fn sniffing_and_multi_member_gzip() {
        use std::io::Write;
        let mut gz = Vec::new();
        for part in [&b"hello "[..], &b"world"[..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        // Split so the magic straddles chunks.
        let mut raw = feed(vec![gz[..1].to_vec(), gz[1..].to_vec()], true);
        let d = decode_layer(&mut raw, |r| {
            let mut s = String::new();
            r.read_to_string(&mut s).map(|_| s)
        });
        assert_eq!(d.compression, Compression::Gzip);
        assert_eq!(d.value.unwrap(), "hello world");
        assert_eq!(d.diff_id, sha(b"hello world"));
        assert!(d.error.is_none());
    }

    #[test]
    fn zstd_with_skippable_frame_and_partial_consumer() {
        let mut z = zstd::encode_all(&b"abcdef"[..], 3).unwrap();
        z.extend(zstd::encode_all(&b"ghi"[..], 3).unwrap());
        // Skippable frame: magic 0x184D2A50 LE, 4-byte length, payload.
        z.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        let mut raw = feed(vec![z], true);
        let d = decode_layer(&mut raw, |r| {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map(|_| b)
        });
        assert_eq!(d.compression, Compression::Zstd);
        assert_eq!(&d.value.unwrap(), b"ab");
        assert_eq!(d.diff_id, sha(b"abcdefghi"));
        assert_eq!(d.uncompressed_size, 9);
        assert!(d.error.is_none(), "{:?}", d.error);
    }

    #[test]
    fn plain_and_short() {
        let mut raw = feed(vec![b"ab".to_vec()], true);
        let d = decode_layer(&mut raw, |_| Ok::<_, io::Error>(()));
        assert_eq!(d.compression, Compression::None);
        assert_eq!(d.diff_id, sha(b"ab"));
    }

    #[test]
    fn aborted_stream_is_an_error() {
        let mut raw = feed(vec![b"plain data".to_vec()], false);
        let d = decode_layer(&mut raw, |r| io::copy(r, &mut io::sink()));
        assert!(d.value.is_err());
        assert_eq!(d.error.unwrap().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut raw = feed(vec![vec![0x1f, 0x8b, 8, 0, 0xff, 0xff, 0xff]], true);
        let d = decode_layer(&mut raw, |r| io::copy(r, &mut io::sink()));
        assert!(d.error.is_some());
    }

    #[test]
    fn media_types() {
        assert_eq!(
            layer_compression(&MediaType::ImageLayerGzip),
            Some(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(&MediaType::from(
                "application/vnd.docker.image.rootfs.diff.tar"
            )),
            Some(Compression::None)
        );
        assert_eq!(
            layer_compression(&MediaType::ImageLayerNonDistributable),
            None
        );
        assert_eq!(
            layer_compression(&MediaType::from(
                "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
            )),
            None
        );
        assert_eq!(
            layer_compression(&MediaType::from(
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            )),
            None
        );
    }
}
