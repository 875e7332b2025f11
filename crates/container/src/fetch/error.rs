//! The one error type of fetching, with a coarse [`FetchReason`] for callers that decide
//! (retry, prompt for credentials, report corruption) without looking at text.

use std::path::PathBuf;
use std::time::Duration;

use containers_image_proxy::Error as ProxyError;
use ostree_errors::{Classify, ErrorKind};

use super::config::ConfigError;

/// An error of the `containers-image-proxy` crate as one level of a chain: its messages already
/// include their cause (`i/o error: …`), so the cause is not offered again as a source.
#[derive(Debug)]
pub struct SkopeoFailure(pub ProxyError);

impl std::fmt::Display for SkopeoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SkopeoFailure {}

impl From<ProxyError> for SkopeoFailure {
    fn from(e: ProxyError) -> Self {
        SkopeoFailure(e)
    }
}

/// What went wrong, coarsely; stable for callers to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchReason {
    /// The image (or a tag, or a local path) does not exist.
    NotFound,
    /// Credentials missing or rejected.
    Auth,
    /// A blob's bytes do not match its digest or size.
    DigestMismatch,
    /// Bytes matched their digest but are not what they claim (bad compression, diff_id).
    Corrupt,
    /// The skopeo process exited or stopped speaking the protocol.
    ProxyDied,
    /// skopeo reported an error we cannot classify further.
    Proxy,
    /// The transfer broke off (registry went away, connection reset).
    Network,
    /// No progress for longer than the stall timeout.
    Timeout,
    /// Something this skopeo or this crate cannot handle (media type, old skopeo).
    Unsupported,
    /// skopeo is not installed or not at the configured path.
    SkopeoMissing,
    /// Invalid configuration.
    Config,
    /// Local I/O failure.
    Io,
    /// The caller's layer consumer failed.
    Consumer,
}

fn at(layer: &Option<String>) -> String {
    layer
        .as_deref()
        .map(|l| format!(" layer {l}"))
        .unwrap_or_default()
}

/// A fetch failure; every variant names the image and, where one is involved, the layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The [`FetchConfig`](super::FetchConfig) is unusable.
    #[error("fetching {image}")]
    Config {
        image: String,
        #[source]
        source: ConfigError,
    },
    /// The skopeo program does not exist.
    #[error(
        "fetching {image}: skopeo not found: cannot run {} (install the Debian package `skopeo` \
         or set the skopeo command)", program.display()
    )]
    SkopeoNotFound {
        image: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// skopeo could not be started or initialized.
    #[error("fetching {image}: cannot start skopeo ({})", program.display())]
    ProxyStart {
        image: String,
        program: PathBuf,
        #[source]
        source: SkopeoFailure,
    },
    /// The installed skopeo lacks a protocol feature we need.
    #[error("fetching {image}: skopeo too old: {needed} (its image proxy speaks protocol {found})")]
    SkopeoTooOld {
        image: String,
        needed: &'static str,
        found: String,
    },
    /// The image does not exist.
    #[error("image not found: {image}: {message}")]
    ImageNotFound { image: String, message: String },
    /// Credentials are missing or wrong.
    #[error("authentication failed for {image}: {message}")]
    Auth { image: String, message: String },
    /// skopeo died or stopped answering.
    #[error("skopeo proxy died during {operation} for {image}{}", at(layer))]
    ProxyDied {
        image: String,
        layer: Option<String>,
        operation: &'static str,
        #[source]
        source: SkopeoFailure,
    },
    /// skopeo reported an error we cannot classify further.
    #[error("{operation} failed for {image}{}", at(layer))]
    Proxy {
        image: String,
        layer: Option<String>,
        operation: &'static str,
        #[source]
        source: SkopeoFailure,
    },
    /// The blob's bytes do not hash to its digest (the proxy rejected it at FinishPipe).
    #[error("blob digest mismatch in {image} layer {layer}: received bytes hash to {actual}")]
    DigestMismatch {
        image: String,
        layer: String,
        actual: String,
        #[source]
        source: Option<SkopeoFailure>,
    },
    /// More bytes than the descriptor's size arrived.
    #[error("blob size mismatch in {image} layer {layer}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        image: String,
        layer: String,
        expected: u64,
        actual: u64,
        #[source]
        source: Option<SkopeoFailure>,
    },
    /// The transfer broke off before the whole blob arrived (e.g. the registry went away).
    #[error("transfer of {image} layer {layer} interrupted after {received} of {expected} bytes")]
    TransferInterrupted {
        image: String,
        layer: String,
        received: u64,
        expected: u64,
        #[source]
        source: SkopeoFailure,
    },
    /// Nothing moved for longer than the stall timeout.
    #[error(
        "{image}{}: stalled: no progress for {timeout:?} during {operation}",
        at(layer)
    )]
    Stalled {
        image: String,
        layer: Option<String>,
        operation: &'static str,
        timeout: Duration,
    },
    /// A layer whose media type is not a (supported) layer.
    #[error("{image} layer {layer}: Unhandled layer type: {media_type}")]
    UnsupportedMediaType {
        image: String,
        layer: String,
        media_type: String,
    },
    /// The decompressed layer does not hash to the config's diff_id.
    #[error(
        "{image} layer {layer}: uncompressed digest {actual} does not match diff_id {expected}"
    )]
    DiffIdMismatch {
        image: String,
        layer: String,
        expected: String,
        actual: String,
    },
    /// The layer's bytes do not decompress.
    #[error("{image} layer {layer}: cannot decompress {format} stream")]
    Decompress {
        image: String,
        layer: String,
        format: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The caller's consumer returned an error.
    #[error("{image} layer {layer}")]
    Consumer {
        image: String,
        layer: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The caller's consumer panicked.
    #[error("{image} layer {layer}: layer consumer panicked")]
    ConsumerPanicked { image: String, layer: String },
    /// Manifest or config is not valid JSON of the expected shape.
    #[error("{image}: invalid {what}")]
    InvalidMetadata {
        image: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Manifest layers and config diff_ids disagree in number.
    #[error("{image}: manifest lists {layers} layers but the config lists {diff_ids} diff_ids")]
    LayerCountMismatch {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    /// Local I/O failure.
    #[error("{image}{}: i/o error during {operation}", at(layer))]
    Io {
        image: String,
        layer: Option<String>,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for FetchError {
    fn kind(&self) -> ErrorKind {
        FetchError::kind(self)
    }
}

impl FetchError {
    /// The workspace-wide class.
    pub fn kind(&self) -> ErrorKind {
        match self.reason() {
            FetchReason::NotFound => ErrorKind::NotFound,
            FetchReason::Auth => ErrorKind::Auth,
            FetchReason::DigestMismatch | FetchReason::Corrupt => ErrorKind::Corrupt,
            FetchReason::Network | FetchReason::Timeout => ErrorKind::Network,
            FetchReason::ProxyDied | FetchReason::Proxy | FetchReason::SkopeoMissing => {
                ErrorKind::Proxy
            }
            FetchReason::Unsupported => ErrorKind::Unsupported,
            FetchReason::Config => ErrorKind::Usage,
            _ => ErrorKind::Io,
        }
    }

    /// What failed, in fetching's own finer terms (retry and prompt decisions).
    pub fn reason(&self) -> FetchReason {
        use FetchReason as K;
        match self {
            FetchError::Config { source, .. } => match source {
                ConfigError::Probe { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    K::SkopeoMissing
                }
                _ => K::Config,
            },
            FetchError::SkopeoNotFound { .. } => K::SkopeoMissing,
            FetchError::ProxyStart { .. } => K::ProxyDied,
            FetchError::SkopeoTooOld { .. } => K::Unsupported,
            FetchError::ImageNotFound { .. } => K::NotFound,
            FetchError::Auth { .. } => K::Auth,
            FetchError::ProxyDied { .. } => K::ProxyDied,
            FetchError::Proxy { .. } => K::Proxy,
            FetchError::DigestMismatch { .. } | FetchError::SizeMismatch { .. } => {
                K::DigestMismatch
            }
            FetchError::TransferInterrupted { .. } => K::Network,
            FetchError::Stalled { .. } => K::Timeout,
            FetchError::UnsupportedMediaType { .. } => K::Unsupported,
            FetchError::DiffIdMismatch { .. }
            | FetchError::Decompress { .. }
            | FetchError::InvalidMetadata { .. }
            | FetchError::LayerCountMismatch { .. } => K::Corrupt,
            FetchError::Consumer { .. } | FetchError::ConsumerPanicked { .. } => K::Consumer,
            FetchError::Io { .. } => K::Io,
        }
    }

    /// The image the error is about.
    pub fn image(&self) -> &str {
        match self {
            FetchError::Config { image, .. }
            | FetchError::SkopeoNotFound { image, .. }
            | FetchError::ProxyStart { image, .. }
            | FetchError::SkopeoTooOld { image, .. }
            | FetchError::ImageNotFound { image, .. }
            | FetchError::Auth { image, .. }
            | FetchError::ProxyDied { image, .. }
            | FetchError::Proxy { image, .. }
            | FetchError::DigestMismatch { image, .. }
            | FetchError::SizeMismatch { image, .. }
            | FetchError::TransferInterrupted { image, .. }
            | FetchError::Stalled { image, .. }
            | FetchError::UnsupportedMediaType { image, .. }
            | FetchError::DiffIdMismatch { image, .. }
            | FetchError::Decompress { image, .. }
            | FetchError::Consumer { image, .. }
            | FetchError::ConsumerPanicked { image, .. }
            | FetchError::InvalidMetadata { image, .. }
            | FetchError::LayerCountMismatch { image, .. }
            | FetchError::Io { image, .. } => image,
        }
    }

    /// The layer digest the error is about, if any.
    pub fn layer(&self) -> Option<&str> {
        match self {
            FetchError::ProxyDied { layer, .. }
            | FetchError::Proxy { layer, .. }
            | FetchError::Stalled { layer, .. }
            | FetchError::Io { layer, .. } => layer.as_deref(),
            FetchError::DigestMismatch { layer, .. }
            | FetchError::SizeMismatch { layer, .. }
            | FetchError::TransferInterrupted { layer, .. }
            | FetchError::UnsupportedMediaType { layer, .. }
            | FetchError::DiffIdMismatch { layer, .. }
            | FetchError::Decompress { layer, .. }
            | FetchError::Consumer { layer, .. }
            | FetchError::ConsumerPanicked { layer, .. } => Some(layer),
            _ => None,
        }
    }
}

/// Whether a proxy-crate error means skopeo itself is gone or broke the protocol, as opposed
/// to skopeo answering a request with an error. Decided by the crate's error variant: a reply
/// with `success: false` is `RequestInitiationFailure`/`RetryableRequestFailure`; an exited
/// child, an unparsable (empty) reply or a dead socket surface as `Other`/`SerDe`/`Io`.
pub(crate) fn proxy_is_gone(e: &ProxyError) -> bool {
    !matches!(
        e,
        ProxyError::RequestInitiationFailure { .. }
            | ProxyError::RetryableRequestFailure { .. }
            | ProxyError::ProxyTooOld { .. }
            | ProxyError::Configuration(_)
    )
}

/// What skopeo's `OpenImage` failure text says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenFailure {
    NotFound,
    Auth,
    Other,
}

/// Classifies skopeo's `OpenImage` error message.
///
/// This is the ONLY place that inspects error text, and only skopeo's: protocol 0.2.3 (skopeo
/// 1.9) replies with a bare string and no error code, and `OpenImageOptional` (which would tell
/// "not found" structurally) only exists from 0.2.4. The phrases are those of
/// containers/image and the distribution registry API (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`,
/// HTTP 401/403, missing local files).
pub(crate) fn classify_open_failure(message: &str) -> OpenFailure {
    let m = message.to_ascii_lowercase();
    const AUTH: &[&str] = &[
        "unauthorized",
        "authentication required",
        "invalid username/password",
        "401 unauthorized",
        "403 (forbidden)",
        "requested access to the resource is denied",
    ];
    const NOT_FOUND: &[&str] = &[
        "manifest unknown",
        "name unknown",
        "not found",
        "no such file or directory",
        "no descriptor found",
        "does not exist",
    ];
    if AUTH.iter().any(|p| m.contains(p)) {
        OpenFailure::Auth
    } else if NOT_FOUND.iter().any(|p| m.contains(p)) {
        OpenFailure::NotFound
    } else {
        OpenFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_failure_classification() {
        let cases = [
            (
                "reading manifest latest in 127.0.0.1:5000/nope: manifest unknown: manifest unknown",
                OpenFailure::NotFound,
            ),
            (
                "reading manifest latest in 127.0.0.1:5000/x: name unknown: repository name not known to registry",
                OpenFailure::NotFound,
            ),
            (
                "open /tmp/x/index.json: no such file or directory",
                OpenFailure::NotFound,
            ),
            (
                "initializing source docker://127.0.0.1:5000/x:latest: reading manifest latest in \
                 127.0.0.1:5000/x: unauthorized: authentication required",
                OpenFailure::Auth,
            ),
            (
                "unable to retrieve auth token: invalid username/password: unauthorized",
                OpenFailure::Auth,
            ),
            (
                "pinging container registry: connection refused",
                OpenFailure::Other,
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(classify_open_failure(msg), want, "{msg}");
        }
    }

    #[test]
    fn proxy_gone_by_variant() {
        assert!(proxy_is_gone(&ProxyError::Other("exited".into())));
        assert!(!proxy_is_gone(&ProxyError::RequestInitiationFailure {
            method: "GetBlob".into(),
            error: "x".into()
        }));
    }

    #[test]
    fn kinds_and_context() {
        let e = FetchError::DigestMismatch {
            image: "oci:/x".into(),
            layer: "sha256:ab".into(),
            actual: "sha256:cd".into(),
            source: None,
        };
        assert_eq!(e.reason(), FetchReason::DigestMismatch);
        assert_eq!(e.image(), "oci:/x");
        assert_eq!(e.layer(), Some("sha256:ab"));
        let s = e.to_string();
        assert!(s.contains("oci:/x") && s.contains("sha256:ab"), "{s}");
    }
}
