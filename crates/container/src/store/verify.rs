//! `ostree-remote-*`: the commit is verified with the remote's keys before anything is
//! published, and as early as possible — as soon as the commit layer (which carries the commit
//! object and its detached metadata) is imported, before any chunk layer is fetched — so a badly
//! signed image costs one layer's transfer, not the whole image.

use std::io::Read;
use std::sync::{Arc, Mutex};

use ostree_repo::format::{Checksum, ObjectName, ObjectType};

use super::error::StoreError;
use super::repo_err;
use crate::fetch::{FetchError, ImageFetcher, LayerIndex, LayerRequest};

/// How the ostree commit of a pull is verified.
#[derive(Debug)]
pub(crate) struct RemoteVerifier {
    pub(crate) remote: String,
    pub(crate) config: ostree_sign::RemoteConfig,
    /// The outcome of the verification made when the commit layer arrived (`None` until then).
    early: Mutex<Option<Result<(), StoreError>>>,
}

impl RemoteVerifier {
    pub(crate) fn new(remote: String, config: ostree_sign::RemoteConfig) -> Self {
        RemoteVerifier {
            remote,
            config,
            early: Mutex::new(None),
        }
    }

    /// Verifies `commit` as `load` holds it (bytes of the commit and its detached metadata).
    pub(crate) fn verify(
        &self,
        image: &str,
        load: impl Fn(&ObjectName) -> Result<Vec<u8>, ostree_repo::RepoError>,
        commit: &Checksum,
    ) -> Result<ostree_sign::Verified, StoreError> {
        let rerr = repo_err(image);
        let commit_bytes = load(&ObjectName::new(*commit, ObjectType::Commit)).map_err(&rerr)?;
        let meta = match load(&ObjectName::new(*commit, ObjectType::CommitMeta)) {
            Ok(b) => Some(b),
            Err(ostree_repo::RepoError::ObjectNotFound(_)) => None,
            Err(e) => return Err(rerr(e)),
        };
        let v = ostree_sign::verify_commit(&self.config, &commit_bytes, meta.as_deref()).map_err(
            |source| StoreError::Signature {
                image: image.to_string(),
                remote: self.remote.clone(),
                source: Box::new(source),
            },
        )?;
        tracing::info!(%image, commit = %commit, signature = %v.describe(), "commit signature verified");
        Ok(v)
    }

    /// Verifies the commit that the commit layer just imported into the pull's transaction and
    /// records the outcome; `false` if it was refused (the caller then fails the layer, which
    /// stops the fetch).
    pub(crate) fn verify_commit_layer(
        &self,
        image: &str,
        txn: &ostree_repo::Transaction<'_>,
        commit: &Checksum,
    ) -> bool {
        let r = self
            .verify(image, |n| txn.load_metadata_bytes(n), commit)
            .map(|_| ());
        let ok = r.is_ok();
        *self.early.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        ok
    }

    /// The refusal recorded by [`Self::verify_commit_layer`], if any (taken).
    pub(crate) fn take_refusal(&self) -> Option<StoreError> {
        let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
        match early.take() {
            Some(Err(e)) => Some(e),
            other => {
                *early = other;
                None
            }
        }
    }

    /// Whether the commit was already verified when its layer arrived.
    pub(crate) fn verified_early(&self) -> bool {
        matches!(
            *self.early.lock().unwrap_or_else(|p| p.into_inner()),
            Some(Ok(()))
        )
    }
}

/// Fetches `requests`; with `commit_first`, the first request (the commit layer) alone and the
/// others only once it is imported (and so verified), instead of all at once.
pub(super) async fn fetch_commit_layer_first<E, F>(
    fetcher: &ImageFetcher,
    requests: &[LayerRequest],
    commit_first: bool,
    consumer: F,
) -> Result<(), FetchError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    F: Fn(LayerIndex, &mut dyn Read) -> Result<(), E> + Send + Sync + 'static,
{
    if !commit_first || requests.len() < 2 {
        return fetcher.fetch_layers(requests, consumer).await.map(|_| ());
    }
    let consumer = Arc::new(consumer);
    let first = Arc::clone(&consumer);
    fetcher
        .fetch_layers(&requests[..1], move |i, r: &mut dyn Read| first(i, r))
        .await?;
    fetcher
        .fetch_layers(&requests[1..], move |i, r: &mut dyn Read| {
            consumer(i + 1, r)
        })
        .await
        .map(|_| ())
}
