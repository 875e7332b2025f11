//! OSTree commits inside OCI container images.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod fetch;
pub mod imgref;

pub use fetch::{
    FetchConfig, FetchError, FetchErrorKind, ImageFetcher, LayerOutcome, LayerRequest,
};
pub use imgref::{ImageRefError, ImageReference, OstreeImageReference, SignatureSource, Transport};
