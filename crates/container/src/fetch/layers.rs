//! Fetching layers: bounded parallel `GetBlob`s through one proxy, `FinishPipe` in issue order.
//!
//! Per layer an async *pump* task reads the blob pipe (hashing the raw bytes, counting
//! progress, watching for stalls) and feeds a bounded channel; a blocking task decompresses and
//! runs the caller's consumer. The `FinishPipe` ("driver") future of the oldest layer is polled
//! together with its pump, because skopeo closes the pipe only inside `FinishPipe` and holds
//! its global lock meanwhile (spec 10.3); the younger layers keep streaming in their own tasks.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use containers_image_proxy::Error as ProxyError;
use containers_image_proxy::oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageManifest, MediaType,
};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::decompress::{
    ChannelReader, Chunk, Compression, Decoded, decode_layer, layer_compression,
};
use super::error::proxy_is_gone;
use super::progress::{Activity, LayerProgress, LayerState};
use super::{FetchError, ImageFetcher};

/// Position of a layer in the request list (and in the manifest).
pub type LayerIndex = usize;

/// Raw chunks buffered per layer between the pump and the consumer (128 KiB each).
const CHANNEL_DEPTH: usize = 16;
const CHUNK_SIZE: usize = 128 * 1024;

/// One layer to fetch, with the diff_id to check if known, and its progress counters.
#[derive(Debug, Clone)]
pub struct LayerRequest {
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// `config.rootfs.diff_ids[i]`; checked against the decompressed stream when set.
    pub expected_diff_id: Option<String>,
    progress: Arc<LayerProgress>,
}

impl LayerRequest {
    /// A request for `descriptor` without diff_id check.
    pub fn new(descriptor: Descriptor) -> Self {
        let progress = Arc::new(LayerProgress::new(descriptor.size()));
        Self {
            descriptor,
            expected_diff_id: None,
            progress,
        }
    }

    /// Also check the decompressed stream against this diff_id.
    pub fn with_diff_id(mut self, diff_id: impl Into<String>) -> Self {
        self.expected_diff_id = Some(diff_id.into());
        self
    }

    /// Counters for this layer; clone the `Arc` before fetching to watch them.
    pub fn progress(&self) -> Arc<LayerProgress> {
        Arc::clone(&self.progress)
    }
}

/// A successfully fetched, proxy-verified layer.
#[derive(Debug)]
#[non_exhaustive]
pub struct LayerOutcome<T> {
    /// Index in the request list.
    pub index: LayerIndex,
    /// What the consumer returned.
    pub value: T,
    /// Digest of the blob that was fetched (the diff_id for containers-storage).
    pub blob_digest: String,
    /// Raw bytes received.
    pub compressed_size: u64,
    /// `sha256:<hex>` of the decompressed stream.
    pub diff_id: String,
    /// Decompressed bytes.
    pub uncompressed_size: u64,
    /// Compression found in the bytes (which wins over the media type).
    pub compression: Compression,
}

/// What is actually fetched for one layer.
struct Target {
    digest: Digest,
    size: u64,
    media_type: MediaType,
}

struct RawStats {
    size: u64,
    digest: String,
}

enum PumpFailure {
    Stalled,
    Io(io::Error),
}

type Driver<'a> = Pin<Box<dyn Future<Output = Result<(), ProxyError>> + Send + 'a>>;

struct InFlight<'a, T> {
    index: LayerIndex,
    target: Target,
    expected_diff_id: Option<String>,
    progress: Arc<LayerProgress>,
    driver: Driver<'a>,
    pump: JoinHandle<Result<RawStats, PumpFailure>>,
    decode: JoinHandle<Decoded<T>>,
}

/// Reads the blob pipe to EOF; keeps draining even if the consumer went away.
async fn pump(
    mut reader: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Chunk>,
    progress: Arc<LayerProgress>,
    activity: Arc<Activity>,
    stall: Duration,
) -> Result<RawStats, PumpFailure> {
    let tick = (stall / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut consumer_gone = false;
    loop {
        // Read into spare capacity: no zeroing of a fresh buffer per read.
        let mut buf = Vec::with_capacity(CHUNK_SIZE);
        let n = {
            let read = reader.read_buf(&mut buf);
            tokio::pin!(read);
            loop {
                tokio::select! {
                    r = &mut read => break r.map_err(PumpFailure::Io)?,
                    _ = tokio::time::sleep(tick) => {
                        if activity.idle() >= stall {
                            return Err(PumpFailure::Stalled);
                        }
                    }
                }
            }
        };
        if n == 0 {
            if !consumer_gone {
                let _ = tx.send(Chunk::End).await;
            }
            break;
        }
        activity.touch();
        progress.add(n as u64);
        hasher.update(&buf[..n]);
        size += n as u64;
        if !consumer_gone {
            consumer_gone = tx.send(Chunk::Data(buf)).await.is_err();
        }
    }
    Ok(RawStats {
        size,
        digest: format!("sha256:{}", hex::encode(hasher.finalize())),
    })
}

/// Our raw hash is sha256; other algorithms are left to the proxy's verification.
fn sha256_matches(expected: &str, actual_sha256: &str) -> bool {
    !expected.starts_with("sha256:") || expected == actual_sha256
}

impl ImageFetcher {
    /// Layer requests for an image: manifest layers paired with the config's diff_ids.
    pub fn layer_requests(
        &self,
        manifest: &ImageManifest,
        config: &ImageConfiguration,
    ) -> Result<Vec<LayerRequest>, FetchError> {
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(FetchError::LayerCountMismatch {
                image: self.image.clone(),
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(d, id)| LayerRequest::new(d.clone()).with_diff_id(id.clone()))
            .collect())
    }

    /// Fetch `layers`, at most `layer_concurrency` at a time, running `consumer` on a blocking
    /// thread with each layer's decompressed bytes.
    ///
    /// The bytes a consumer sees are unverified until this returns `Ok`: stage, then commit.
    /// The consumer need not read to the end; the rest is drained. On error, layers still in
    /// flight are abandoned after their consumers have returned.
    pub async fn fetch_layers<T, E, F>(
        &self,
        layers: &[LayerRequest],
        consumer: F,
    ) -> Result<Vec<LayerOutcome<T>>, FetchError>
    where
        T: Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
        F: Fn(LayerIndex, &mut dyn Read) -> Result<T, E> + Send + Sync + 'static,
    {
        self.check_usable()?;
        let targets = self.targets(layers).await?;
        let consumer = Arc::new(consumer);
        let activity = Arc::new(Activity::new());
        activity.touch();
        let mut pending: VecDeque<InFlight<'_, T>> = VecDeque::new();
        let mut outcomes = Vec::with_capacity(layers.len());
        let mut todo = layers.iter().zip(targets).enumerate();
        let result: Result<(), FetchError> = async {
            loop {
                while pending.len() < self.concurrency.get() {
                    let Some((index, (req, target))) = todo.next() else {
                        break;
                    };
                    let f = self.start_layer(index, req, target, &consumer, &activity);
                    pending.push_back(f.await?);
                }
                let Some(front) = pending.pop_front() else {
                    return Ok(());
                };
                outcomes.push(self.complete_layer(front).await?);
            }
        }
        .await;
        if let Err(e) = result {
            for f in pending {
                f.progress.set_state(LayerState::Failed);
                f.pump.abort();
                let _ = f.decode.await;
            }
            return Err(e);
        }
        Ok(outcomes)
    }

    fn check_usable(&self) -> Result<(), FetchError> {
        if self.poisoned.load(Ordering::Relaxed) {
            return Err(FetchError::ProxyDied {
                image: self.image.clone(),
                layer: None,
                operation: "reuse after an abandoned request",
                source: ProxyError::Other("an earlier request stalled and was abandoned".into())
                    .into(),
            });
        }
        Ok(())
    }

    /// What to fetch per layer; containers-storage/docker-daemon need the proxy's layer info.
    async fn targets(&self, layers: &[LayerRequest]) -> Result<Vec<Target>, FetchError> {
        let targets: Vec<Target> = if self.imgref.transport.needs_layer_info() {
            let infos = self
                .request("GetLayerInfo", self.proxy.get_layer_info(&self.img))
                .await?
                .ok_or_else(|| FetchError::SkopeoTooOld {
                    image: self.image.clone(),
                    needed: "skopeo >= 1.11 (GetLayerInfo) is required for this transport",
                    found: self.protocol_version(),
                })?;
            if infos.len() != layers.len() {
                return Err(FetchError::LayerCountMismatch {
                    image: self.image.clone(),
                    layers: layers.len(),
                    diff_ids: infos.len(),
                });
            }
            infos
                .into_iter()
                .map(|i| Target {
                    digest: i.digest,
                    size: i.size,
                    media_type: i.media_type,
                })
                .collect()
        } else {
            layers
                .iter()
                .map(|l| Target {
                    digest: l.descriptor.digest().clone(),
                    size: l.descriptor.size(),
                    media_type: l.descriptor.media_type().clone(),
                })
                .collect()
        };
        // Fail before any transfer if a layer is not something we can unpack.
        for t in &targets {
            if layer_compression(&t.media_type).is_none() {
                return Err(FetchError::UnsupportedMediaType {
                    image: self.image.clone(),
                    layer: t.digest.to_string(),
                    media_type: t.media_type.to_string(),
                });
            }
        }
        Ok(targets)
    }

    async fn start_layer<'a, T, E, F>(
        &'a self,
        index: LayerIndex,
        req: &LayerRequest,
        target: Target,
        consumer: &Arc<F>,
        activity: &Arc<Activity>,
    ) -> Result<InFlight<'a, T>, FetchError>
    where
        T: Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
        F: Fn(LayerIndex, &mut dyn Read) -> Result<T, E> + Send + Sync + 'static,
    {
        let progress = req.progress();
        progress.set_total(target.size);
        progress.set_state(LayerState::Fetching);
        let get = self.proxy.get_blob(&self.img, &target.digest, target.size);
        let (reader, driver) = match tokio::time::timeout(self.stall_timeout, get).await {
            Err(_) => {
                self.poisoned.store(true, Ordering::Relaxed);
                return Err(FetchError::Stalled {
                    image: self.image.clone(),
                    layer: Some(target.digest.to_string()),
                    operation: "GetBlob",
                    timeout: self.stall_timeout,
                });
            }
            Ok(r) => r.map_err(|e| {
                progress.set_state(LayerState::Failed);
                self.proxy_error("GetBlob", Some(target.digest.to_string()), e)
            })?,
        };
        activity.touch();
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let pump = tokio::spawn(pump(
            reader,
            tx,
            Arc::clone(&progress),
            Arc::clone(activity),
            self.stall_timeout,
        ));
        let consumer = Arc::clone(consumer);
        let act = Arc::clone(activity);
        let decode = tokio::task::spawn_blocking(move || {
            let mut raw = ChannelReader::new(rx, act);
            decode_layer(&mut raw, |r| consumer(index, r))
        });
        Ok(InFlight {
            index,
            target,
            expected_diff_id: req.expected_diff_id.clone(),
            progress,
            driver: Box::pin(driver),
            pump,
            decode,
        })
    }

    async fn complete_layer<T>(&self, f: InFlight<'_, T>) -> Result<LayerOutcome<T>, FetchError> {
        let progress = Arc::clone(&f.progress);
        let r = self.complete_layer_inner(f).await;
        progress.set_state(if r.is_ok() {
            LayerState::Done
        } else {
            LayerState::Failed
        });
        r
    }

    async fn complete_layer_inner<T>(
        &self,
        f: InFlight<'_, T>,
    ) -> Result<LayerOutcome<T>, FetchError> {
        let InFlight {
            index,
            target,
            expected_diff_id,
            progress: _,
            mut driver,
            mut pump,
            decode,
        } = f;
        let (finish, pumped) = tokio::select! {
            r = &mut driver => (Some(r), (&mut pump).await),
            p = &mut pump => match p {
                Ok(Ok(stats)) => (Some(driver.await), Ok(Ok(stats))),
                // The FinishPipe request may be pending inside skopeo; abandon the proxy.
                other => {
                    self.poisoned.store(true, Ordering::Relaxed);
                    (None, other)
                }
            },
        };
        // The pump is over, so the consumer sees either the end or an abort, and returns.
        let decoded = decode.await;
        let image = self.image.clone();
        let layer = target.digest.to_string();
        if let Some(Err(source)) = finish {
            if proxy_is_gone(&source) {
                return Err(FetchError::ProxyDied {
                    image,
                    layer: Some(layer),
                    operation: "FinishPipe",
                    source: source.into(),
                });
            }
            // skopeo's verdict is text only; decide by what we observed ourselves.
            return Err(match pumped {
                Ok(Ok(stats)) if stats.size < target.size => FetchError::TransferInterrupted {
                    image,
                    layer,
                    received: stats.size,
                    expected: target.size,
                    source: source.into(),
                },
                Ok(Ok(stats)) if stats.size > target.size => FetchError::SizeMismatch {
                    image,
                    layer,
                    expected: target.size,
                    actual: stats.size,
                    source: Some(source.into()),
                },
                Ok(Ok(stats)) if !sha256_matches(&layer, &stats.digest) => {
                    FetchError::DigestMismatch {
                        image,
                        layer,
                        actual: stats.digest,
                        source: Some(source.into()),
                    }
                }
                _ => FetchError::Proxy {
                    image,
                    layer: Some(layer),
                    operation: "FinishPipe",
                    source: source.into(),
                },
            });
        }
        let stats = match pumped {
            Ok(Ok(stats)) => stats,
            Ok(Err(PumpFailure::Stalled)) => {
                return Err(FetchError::Stalled {
                    image,
                    layer: Some(layer),
                    operation: "reading layer",
                    timeout: self.stall_timeout,
                });
            }
            Ok(Err(PumpFailure::Io(source))) => {
                return Err(FetchError::Io {
                    image,
                    layer: Some(layer),
                    operation: "reading layer pipe",
                    source,
                });
            }
            Err(join) => {
                return Err(FetchError::Io {
                    image,
                    layer: Some(layer),
                    operation: "reading layer pipe",
                    source: io::Error::other(join.to_string()),
                });
            }
        };
        // The proxy verified; check again so a lax proxy cannot slip bytes through.
        if stats.size != target.size {
            return Err(FetchError::SizeMismatch {
                image,
                layer,
                expected: target.size,
                actual: stats.size,
                source: None,
            });
        }
        if !sha256_matches(&layer, &stats.digest) {
            return Err(FetchError::DigestMismatch {
                image,
                layer,
                actual: stats.digest,
                source: None,
            });
        }
        let Ok(decoded) = decoded else {
            return Err(FetchError::ConsumerPanicked { image, layer });
        };
        if let Some(source) = decoded.error {
            return Err(FetchError::Decompress {
                image,
                layer,
                format: decoded.compression.name(),
                source,
            });
        }
        let value = decoded.value.map_err(|source| FetchError::Consumer {
            image: image.clone(),
            layer: layer.clone(),
            source,
        })?;
        if let Some(expected) = expected_diff_id
            && expected != decoded.diff_id
        {
            return Err(FetchError::DiffIdMismatch {
                image,
                layer,
                expected,
                actual: decoded.diff_id,
            });
        }
        Ok(LayerOutcome {
            index,
            value,
            blob_digest: layer,
            compressed_size: stats.size,
            diff_id: decoded.diff_id,
            uncompressed_size: decoded.uncompressed_size,
            compression: decoded.compression,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Importers spawn the fetch on a multi-threaded runtime, so it must stay `Send`.
    #[allow(dead_code)]
    fn fetch_is_send(f: &ImageFetcher, l: &[LayerRequest]) {
        fn is_send<T: Send>(_: T) {}
        is_send(f.fetch_layers(l, |_, _| Ok::<(), std::io::Error>(())));
        is_send(f.fetch_manifest_and_config());
    }

    #[test]
    fn sha256_only_checked_for_sha256() {
        assert!(sha256_matches("sha256:ab", "sha256:ab"));
        assert!(!sha256_matches("sha256:ab", "sha256:cd"));
        assert!(sha256_matches("sha512:ab", "sha256:cd"));
    }
}
