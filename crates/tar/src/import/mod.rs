//! Importing ostree tar layers into a repository transaction (container-image-format §5–§7).
//!
//! An [`ImportSession`] collects any number of layers, in any order and from several threads,
//! into one [`Transaction`]. Each layer is read once, streaming: regular files go straight into
//! [`Transaction::write_content`], which verifies their checksum before anything is linked into
//! staging. [`ImportSession::finish`] then proves that every chunk object belongs to the commit
//! and that the commit is complete, and only then queues refs; the caller publishes with
//! [`Transaction::commit`].

mod entry;
mod oci;
mod parallel;
mod reader;
mod validate;
mod xattrs;

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use ostree_repo::format::refs::escape_for_ref;
use ostree_repo::format::{Checksum, ObjectName, ObjectType};
use ostree_repo::{Repo, Transaction};

use crate::error::{Location, Result, TarError};
use entry::{LayerImporter, LayerKind, LayerResult};
pub use oci::{
    AUTOCREATED_DIRS_KEY, FILTERED_KEY, IMPORTER_VERSION, IMPORTER_VERSION_KEY, OciLayerOptions,
    OciLayerOutcome, SELINUX_POLICY_KEY, VarRule, import_oci_layer,
};
pub use validate::{EMPTY_DIRTREE, ImportLimits, REF_ENTRY_COST};
pub use xattrs::MemoryBudget;

/// Import settings.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Size and count bounds per layer.
    pub limits: ImportLimits,
    /// The commit the image claims (`ostree.commit` label). The commit layer must carry it; a
    /// session with only chunk layers checks their objects against it (it must then already
    /// be in the repository).
    pub expected_commit: Option<Checksum>,
    /// The source is authoritative (its commit was verified against trusted keys): its
    /// detached metadata replaces what the repository holds. Otherwise detached metadata is
    /// only stored for a commit that has none, so that an unverified image cannot replace
    /// valid signatures.
    pub replace_detached_metadata: bool,
    /// The memory ceiling shared with other sessions (the store gives one to all sessions of a
    /// pull): cached xattr sets and object sets ([`ImportLimits::max_import_memory`]); `None`: a
    /// budget of `limits.max_import_memory` for this session, shared by its layers.
    pub memory_budget: Option<std::sync::Arc<MemoryBudget>>,
}

/// A chunk layer's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkOutcome {
    /// The layer digest given by the caller.
    pub digest: Option<String>,
    /// The synthetic object-set commit recording the layer (spec §7).
    pub synthetic_commit: Checksum,
    /// Number of content objects in the layer.
    pub objects: usize,
}

/// What [`ImportSession::finish`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The commit of the commit layer, if one was imported.
    pub commit: Option<Checksum>,
    /// Every chunk layer, in completion order.
    pub chunks: Vec<ChunkOutcome>,
    /// Whether the empty dirtree had to be written (the exporter omitted it, spec §6.2).
    pub synthesized_empty_dirtree: bool,
    /// Some layer used the v0 entry format (`sysroot/ostree/repo/xattrs/` blobs with
    /// `.file.xattrs` hardlinks, `./`-prefixed paths): still read, but no longer written by
    /// the reference, whose readers may drop it; callers warn.
    pub legacy_format: bool,
}

#[derive(Default)]
struct State {
    claimed_commit: Option<Checksum>,
    commit: Option<(Checksum, Option<String>)>,
    chunks: Vec<(ChunkOutcome, Vec<Checksum>)>,
    /// Some layer used v0 entries.
    legacy: bool,
}

/// Imports layers of one image into a transaction. `&ImportSession` is `Sync`: layers may be
/// imported concurrently from scoped threads.
pub struct ImportSession<'s, 't, 'r> {
    txn: &'t Transaction<'r>,
    options: ImportOptions,
    interrupt: Option<&'s AtomicBool>,
    state: Mutex<State>,
    /// `options.memory_budget`, or one of this session's own.
    memory_budget: std::sync::Arc<MemoryBudget>,
}

impl std::fmt::Debug for ImportSession<'_, '_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSession")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The ref recording an imported layer: `ostree/container/blob/<escaped digest>`.
pub fn blob_ref(digest: &str) -> Result<String> {
    let e = escape_for_ref(digest)
        .map_err(|e| TarError::InvalidArgument(format!("layer digest {digest:?}: {e}")))?;
    Ok(format!("ostree/container/blob/{e}"))
}

impl<'s, 't, 'r> ImportSession<'s, 't, 'r> {
    /// A session with default options.
    pub fn new(txn: &'t Transaction<'r>) -> Self {
        Self::with_options(txn, ImportOptions::default())
    }

    /// A session with options.
    pub fn with_options(txn: &'t Transaction<'r>, options: ImportOptions) -> Self {
        let memory_budget = options.memory_budget.clone().unwrap_or_else(|| {
            std::sync::Arc::new(MemoryBudget::new(options.limits.max_import_memory))
        });
        ImportSession {
            txn,
            options,
            memory_budget,
            interrupt: None,
            state: Mutex::new(State::default()),
        }
    }

    /// Checks `flag` before every tar entry; when set, imports fail with `Interrupted`.
    pub fn with_interrupt(mut self, flag: &'s AtomicBool) -> Self {
        self.interrupt = Some(flag);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the session's one commit.
    fn claim_commit(&self, c: Checksum, at: &Location) -> Result<()> {
        if let Some(e) = self.options.expected_commit
            && e != c
        {
            return Err(TarError::Invalid {
                at: at.clone(),
                reason: format!("commit {c} is not the expected commit {e}"),
            });
        }
        let mut st = self.state();
        if let Some(prev) = st.claimed_commit {
            return Err(TarError::Invalid {
                at: at.clone(),
                reason: format!("a second commit {c} in one image (already have {prev})"),
            });
        }
        st.claimed_commit = Some(c);
        Ok(())
    }

    /// Imports the commit layer (layer 0) from an uncompressed tar stream; returns the commit.
    /// The commit is marked partial before it is written and stays so until the transaction
    /// commits after [`ImportSession::finish`].
    pub fn import_commit_layer(
        &self,
        reader: impl Read,
        layer_digest: Option<&str>,
    ) -> Result<Checksum> {
        if let Some(d) = layer_digest {
            blob_ref(d)?;
        }
        let imp = LayerImporter::new(self, LayerKind::Commit, layer_digest);
        match imp.run(reader)? {
            LayerResult::Commit(c) => {
                self.state().commit = Some((c, layer_digest.map(str::to_string)));
                Ok(c)
            }
            LayerResult::Chunk(..) => {
                Err(TarError::Internal("commit layer produced a chunk".into()))
            }
        }
    }

    /// Imports a chunk layer (object set) and writes its synthetic commit.
    pub fn import_chunk_layer(
        &self,
        reader: impl Read,
        layer_digest: Option<&str>,
    ) -> Result<ChunkOutcome> {
        if let Some(d) = layer_digest {
            blob_ref(d)?;
        }
        let imp = LayerImporter::new(self, LayerKind::Chunk, layer_digest);
        match imp.run(reader)? {
            LayerResult::Chunk(outcome, objects) => {
                self.state().chunks.push((outcome.clone(), objects));
                Ok(outcome)
            }
            LayerResult::Commit(_) => {
                Err(TarError::Internal("chunk layer produced a commit".into()))
            }
        }
    }

    /// The memory ceiling this session's layers share.
    pub(super) fn memory_budget(&self) -> &MemoryBudget {
        &self.memory_budget
    }

    /// Records that a layer used v0 entries.
    pub(super) fn note_legacy(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).legacy = true;
    }

    /// Cross-layer checks: the commit is complete (writing the empty dirtree if that alone is
    /// missing) and every chunk object is reachable from it. Then queues the blob refs. Without
    /// a commit layer or `expected_commit` the chunks are plain object sets (no membership check).
    pub fn finish(self) -> Result<ImportOutcome> {
        let st = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        let txn = self.txn;
        let at = Location {
            layer: "import".into(),
            ..Default::default()
        };
        let mut synthesized = false;
        let commit = st
            .commit
            .as_ref()
            .map(|(c, _)| *c)
            .or(self.options.expected_commit);
        if let Some(commit) = commit {
            if st.commit.is_none()
                && !txn
                    .has_object(&ObjectName::new(commit, ObjectType::Commit))
                    .map_err(|source| TarError::Repo {
                        at: at.clone(),
                        source: Box::new(source),
                    })?
            {
                return Err(TarError::Invalid {
                    at,
                    reason: format!("commit {commit}: its commit layer was not imported"),
                });
            }
            let mut reach = validate::traverse(txn, &commit, &at)?;
            let empty = ObjectName::new(
                EMPTY_DIRTREE
                    .parse::<Checksum>()
                    .map_err(|e| TarError::InvalidArgument(e.to_string()))?,
                ObjectType::DirTree,
            );
            let mut missing = std::mem::take(&mut reach.missing);
            if let Some(i) = missing.iter().position(|m| *m == empty) {
                txn.write_metadata(ObjectType::DirTree, Some(empty.checksum), &[0])
                    .map_err(|source| TarError::Repo {
                        at: at.clone(),
                        source: Box::new(source),
                    })?;
                missing.remove(i);
                synthesized = true;
            }
            if let Some(first) = missing.first() {
                return Err(TarError::Incomplete {
                    commit,
                    count: missing.len(),
                    first: *first,
                });
            }
            for (chunk, objects) in &st.chunks {
                if let Some(o) = objects.iter().find(|o| !reach.has_content(o)) {
                    return Err(TarError::Unreachable {
                        at: Location {
                            layer: match &chunk.digest {
                                Some(d) => format!("chunk layer {d}").into(),
                                None => "chunk layer".into(),
                            },
                            ..Default::default()
                        },
                        object: ObjectName::new(*o, ObjectType::File),
                        commit,
                    });
                }
            }
        }
        let set_ref = |digest: &str, target: Checksum| -> Result<()> {
            txn.set_ref(&blob_ref(digest)?, Some(target))
                .map_err(|source| TarError::Repo {
                    at: at.clone(),
                    source: Box::new(source),
                })
        };
        if let Some((c, Some(d))) = &st.commit {
            set_ref(d, *c)?;
        }
        for (chunk, _) in &st.chunks {
            if let Some(d) = &chunk.digest {
                set_ref(d, chunk.synthetic_commit)?;
            }
        }
        Ok(ImportOutcome {
            commit: st.commit.map(|(c, _)| c),
            chunks: st.chunks.into_iter().map(|(c, _)| c).collect(),
            synthesized_empty_dirtree: synthesized,
            legacy_format: st.legacy,
        })
    }
}

/// `tar import`: one `tar export` stream into `repo` in its own transaction; returns the commit
/// once it is published and proven complete.
pub fn import_tar(repo: &Repo, reader: impl Read, interrupt: &AtomicBool) -> Result<Checksum> {
    let at = Location::layer("import");
    let txn = repo.begin_transaction().map_err(|source| TarError::Repo {
        at: at.clone(),
        source: Box::new(source),
    })?;
    let session = ImportSession::new(&txn).with_interrupt(interrupt);
    let commit = session.import_commit_layer(reader, None)?;
    session.finish()?;
    txn.commit().map_err(|source| TarError::Repo {
        at,
        source: Box::new(source),
    })?;
    Ok(commit)
}
