//! Fetching manifests, configs and layers through skopeo's `experimental-image-proxy`.
//!
//! No OSTree logic lives here: an [`ImageFetcher`] hands each layer's decompressed bytes to a
//! blocking consumer and reports, per layer, the diff_id and the proxy's verdict.

mod config;
mod decompress;
mod error;
mod layers;
mod progress;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use containers_image_proxy::oci_spec::image::{ImageConfiguration, ImageManifest};
use containers_image_proxy::{Error as ProxyError, ImageProxy, OpenedImage};

pub use self::config::{
    ConfigError, DEFAULT_STALL_TIMEOUT, FetchConfig, SkopeoCommand, default_authfile_candidates,
    find_default_authfile,
};
pub use self::decompress::Compression;
pub use self::error::{FetchError, FetchReason};
pub use self::layers::{LayerIndex, LayerOutcome, LayerRequest};
pub use self::progress::{LayerProgress, LayerState};
pub use containers_image_proxy::oci_spec;

use self::error::{OpenFailure, classify_open_failure, proxy_is_gone};
use crate::imgref::ImageReference;

/// One image opened in one skopeo proxy.
pub struct ImageFetcher {
    proxy: ImageProxy,
    img: OpenedImage,
    imgref: ImageReference,
    image: String,
    stall_timeout: Duration,
    concurrency: std::num::NonZeroUsize,
    /// Set when a request was abandoned (timeout) while skopeo may still answer it; the
    /// proxy's socket is then in an unknown state and must not be reused or finalized.
    poisoned: AtomicBool,
}

impl std::fmt::Debug for ImageFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFetcher")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

/// Whether the proxy's protocol version is at least `0.minor.patch`.
fn protocol_at_least(v: &impl std::fmt::Display, minor: u64, patch: u64) -> bool {
    let s = v.to_string();
    let mut it = s
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b, c) = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    (a, b, c) >= (0, minor, patch)
}

impl ImageFetcher {
    /// Start skopeo and open `imgref`.
    pub async fn open(imgref: &ImageReference, config: FetchConfig) -> Result<Self, FetchError> {
        let image = imgref.to_string();
        let program: PathBuf = config.skopeo_command().program;
        let stall_timeout = config.stall_timeout;
        let concurrency = config.layer_concurrency;
        let proxy_config = config.into_proxy_config().map_err(|source| match source {
            ConfigError::Probe { program, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                FetchError::SkopeoNotFound {
                    image: image.clone(),
                    program,
                    source,
                }
            }
            source => FetchError::Config {
                image: image.clone(),
                source,
            },
        })?;
        let start = tokio::time::timeout(stall_timeout, ImageProxy::new_with_config(proxy_config));
        let proxy = match start.await {
            Err(_) => {
                return Err(FetchError::Stalled {
                    image,
                    layer: None,
                    operation: "starting skopeo",
                    timeout: stall_timeout,
                });
            }
            Ok(Ok(p)) => p,
            Ok(Err(ProxyError::SkopeoSpawnError(source)))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(FetchError::SkopeoNotFound {
                    image,
                    program,
                    source,
                });
            }
            Ok(Err(ProxyError::ProxyTooOld { found_version, .. })) => {
                return Err(FetchError::SkopeoTooOld {
                    image,
                    needed: "skopeo with image proxy protocol 0.2.3 (skopeo >= 1.6) is required",
                    found: found_version.to_string(),
                });
            }
            Ok(Err(source)) => {
                return Err(FetchError::ProxyStart {
                    image,
                    program,
                    source: source.into(),
                });
            }
        };
        let version = proxy.protocol_version().to_string();
        tracing::debug!(%image, protocol = %version, "skopeo proxy started");
        if imgref.transport.needs_layer_info() && !protocol_at_least(&version, 2, 5) {
            return Err(FetchError::SkopeoTooOld {
                image,
                needed: "skopeo >= 1.11 (proxy protocol 0.2.5, GetLayerInfo) is required to \
                         pull from containers-storage or docker-daemon",
                found: version,
            });
        }
        let skopeo_ref = imgref.to_skopeo_string();
        let open = tokio::time::timeout(stall_timeout, proxy.open_image(&skopeo_ref));
        let img = match open.await {
            Err(_) => {
                return Err(FetchError::Stalled {
                    image,
                    layer: None,
                    operation: "OpenImage",
                    timeout: stall_timeout,
                });
            }
            Ok(Ok(img)) => img,
            Ok(Err(source)) => return Err(open_error(image, source)),
        };
        Ok(Self {
            proxy,
            img,
            imgref: imgref.clone(),
            image,
            stall_timeout,
            concurrency,
            poisoned: AtomicBool::new(false),
        })
    }

    /// The image this fetcher reads.
    pub fn image_reference(&self) -> &ImageReference {
        &self.imgref
    }

    /// The proxy protocol version skopeo announced (e.g. `0.2.3`).
    pub fn protocol_version(&self) -> String {
        self.proxy.protocol_version().to_string()
    }

    /// Runs a proxy request with the stall timeout, mapping its error.
    async fn request<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<T, ProxyError>>,
    ) -> Result<T, FetchError> {
        match tokio::time::timeout(self.stall_timeout, fut).await {
            Err(_) => {
                self.poisoned.store(true, Ordering::Relaxed);
                Err(FetchError::Stalled {
                    image: self.image.clone(),
                    layer: None,
                    operation,
                    timeout: self.stall_timeout,
                })
            }
            Ok(r) => r.map_err(|e| self.proxy_error(operation, None, e)),
        }
    }

    pub(crate) fn proxy_error(
        &self,
        operation: &'static str,
        layer: Option<String>,
        source: ProxyError,
    ) -> FetchError {
        let image = self.image.clone();
        if proxy_is_gone(&source) {
            FetchError::ProxyDied {
                image,
                layer,
                operation,
                source: source.into(),
            }
        } else {
            FetchError::Proxy {
                image,
                layer,
                operation,
                source: source.into(),
            }
        }
    }

    /// The manifest (converted to OCI by skopeo; lists resolved for this host) and the digest
    /// of the original manifest.
    pub async fn fetch_manifest(&self) -> Result<(ImageManifest, String), FetchError> {
        let (digest, raw) = self
            .request("GetManifest", self.proxy.fetch_manifest_raw_oci(&self.img))
            .await?;
        let manifest =
            serde_json::from_slice(&raw).map_err(|source| FetchError::InvalidMetadata {
                image: self.image.clone(),
                what: "manifest",
                source,
            })?;
        Ok((manifest, digest))
    }

    /// Manifest, its digest and the image configuration.
    pub async fn fetch_manifest_and_config(
        &self,
    ) -> Result<(ImageManifest, String, ImageConfiguration), FetchError> {
        let (manifest, digest) = self.fetch_manifest().await?;
        let raw = self
            .request("GetFullConfig", self.proxy.fetch_config_raw(&self.img))
            .await?;
        let config =
            serde_json::from_slice(&raw).map_err(|source| FetchError::InvalidMetadata {
                image: self.image.clone(),
                what: "config",
                source,
            })?;
        Ok((manifest, digest, config))
    }

    /// Close the image and shut skopeo down, reporting a failed exit.
    pub async fn finish(self) -> Result<(), FetchError> {
        if self.poisoned.load(Ordering::Relaxed) {
            // A request is still outstanding in skopeo; dropping closes our end of the socket.
            return Ok(());
        }
        self.request("CloseImage", self.proxy.close_image(&self.img))
            .await?;
        let image = self.image;
        match tokio::time::timeout(self.stall_timeout, self.proxy.finalize()).await {
            Err(_) => Err(FetchError::Stalled {
                image,
                layer: None,
                operation: "Shutdown",
                timeout: self.stall_timeout,
            }),
            Ok(r) => r.map_err(|source| FetchError::ProxyDied {
                image,
                layer: None,
                operation: "Shutdown",
                source: source.into(),
            }),
        }
    }
}

/// Maps an `OpenImage` failure: skopeo's verdict is only text in protocol 0.2.3.
fn open_error(image: String, source: ProxyError) -> FetchError {
    match &source {
        ProxyError::RequestInitiationFailure { error, .. }
        | ProxyError::RetryableRequestFailure { error, .. } => {
            let message = error.to_string();
            match classify_open_failure(&message) {
                OpenFailure::NotFound => FetchError::ImageNotFound { image, message },
                OpenFailure::Auth => FetchError::Auth { image, message },
                OpenFailure::Other => FetchError::Proxy {
                    image,
                    layer: None,
                    operation: "OpenImage",
                    source: source.into(),
                },
            }
        }
        _ => FetchError::ProxyDied {
            image,
            layer: None,
            operation: "OpenImage",
            source: source.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn protocol_versions() {
        assert!(!super::protocol_at_least(&"0.2.3", 2, 5));
        assert!(super::protocol_at_least(&"0.2.5", 2, 5));
        assert!(super::protocol_at_least(&"0.2.10", 2, 5));
        assert!(super::protocol_at_least(&"0.3.0", 2, 5));
    }
}
