//! OSTree commits inside OCI container images.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod classify;
pub mod encapsulate;
pub mod fetch;
pub mod imgref;
pub mod policy;
pub mod skopeo;
pub mod store;
pub mod unencapsulate;

pub use classify::{Classify, ErrorKind, error_kind};
pub use encapsulate::{
    Compression, EncapsulateError, EncapsulateOptions, EncapsulateProgress, encapsulate,
};
pub use fetch::{FetchConfig, FetchError, FetchReason, ImageFetcher, LayerOutcome, LayerRequest};
pub use imgref::{ImageRefError, ImageReference, OstreeImageReference, SignatureSource, Transport};
pub use store::{PullOptions, PullOutcome, StoreError};
pub use unencapsulate::{
    Import, UnencapsulateError, UnencapsulateOptions, fetch_manifest, fetch_manifest_and_config,
    unencapsulate, unencapsulate_async,
};
