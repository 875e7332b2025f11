//! `ostree-container [container] image ...`: the layered-image store, flags as the reference.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use ostree_container::store::{
    self, PullOptions, image_history, list_images, query_image, remove_images,
};
use ostree_container::{ImageReference, OstreeImageReference};
use ostree_repo::Repo;

use crate::container_cmd::ProxyOpts;
use crate::progress::ImportRenderer;

/// Image store commands.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Pull an image (ostree, derived or plain) into the store.
    Pull(Box<PullArgs>),
    /// List stored images.
    List(RepoArg),
    /// Show the layers of a stored image and what created them.
    History(ImageArg),
    /// Print a stored image's manifest (or config) as JSON.
    Metadata(MetadataArgs),
    /// Remove stored images and (unless --skip-gc) the layers no other image uses.
    Remove(RemoveArgs),
    /// Remove the layer refs no stored image or deployment uses.
    PruneLayers(PruneLayersArgs),
    /// Forget the pending update a check recorded for an image.
    ClearCachedUpdate(ImageArg),
}

/// `--repo`.
#[derive(Args, Debug)]
pub struct RepoArg {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
}

/// `image prune-layers`.
#[derive(Args, Debug)]
pub struct PruneLayersArgs {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
    /// Then delete every object no ref reaches (`ostree prune --refs-only`, natively).
    #[arg(long)]
    and_objects: bool,
}

/// `--repo R IMGREF`.
#[derive(Args, Debug)]
pub struct ImageArg {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
    /// Image reference, e.g. `docker://quay.io/x/y:latest` or `oci:/path:tag`.
    imgref: ImageReference,
}

/// `image metadata`.
#[derive(Args, Debug)]
pub struct MetadataArgs {
    #[command(flatten)]
    image: ImageArg,
    /// Print the image configuration instead of the manifest.
    #[arg(long, conflicts_with = "cached_update")]
    config: bool,
    /// Print the manifest of the pending update a check recorded.
    #[arg(long)]
    cached_update: bool,
}

/// `image remove`.
#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
    /// Images to remove.
    #[arg(required = true)]
    imgrefs: Vec<ImageReference>,
    /// Keep the layers (no garbage collection).
    #[arg(long)]
    skip_gc: bool,
}

/// `image pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Path to the OSTree repository.
    repo: PathBuf,
    /// Image, e.g. `ostree-unverified-registry:quay.io/x/y:latest`.
    imgref: OstreeImageReference,
    /// No progress output (the result line is still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Write progress as JSON lines to this file descriptor.
    #[arg(long, value_name = "FD")]
    progress_fd: Option<u32>,
    /// Only check for an update: write its manifest to FILE (relative to the working
    /// directory) and record it as the image's pending update; fetch no layers.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
    /// Retry a pull that fails with a transient network error this many times.
    #[arg(long, value_name = "N", default_value_t = 3)]
    network_retry: u32,
    /// Label derived layers with the SELinux policy of this commit when the image has no
    /// ostree base (e.g. the booted deployment's commit).
    #[arg(long, value_name = "REV")]
    sepolicy_commit: Option<String>,
    #[command(flatten)]
    proxy: ProxyOpts,
}

/// `container compare OLD NEW`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The old image.
    old: OstreeImageReference,
    /// The new image.
    new: OstreeImageReference,
    #[command(flatten)]
    proxy: ProxyOpts,
}

/// The CLI owns the runtime; the library's async functions run on it.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `container compare`: the manifest diff of two images.
pub fn run_compare(a: CompareArgs) -> Result<u8> {
    let rt = runtime()?;
    let (old, new) = rt.block_on(async {
        let old =
            ostree_container::unencapsulate::fetch_manifest_async(&a.old, a.proxy.to_config());
        let new =
            ostree_container::unencapsulate::fetch_manifest_async(&a.new, a.proxy.to_config());
        tokio::try_join!(old, new)
    })?;
    let mut out = std::io::stdout().lock();
    for line in store::diff::ManifestDiff::new(&old.0, &new.0).lines() {
        writeln!(out, "{line}")?;
    }
    Ok(0)
}

fn open(repo: &std::path::Path) -> Result<Repo> {
    Repo::open(repo).with_context(|| format!("opening repository {}", repo.display()))
}

pub fn run(cmd: ImageCommand, interrupt: &Arc<AtomicBool>) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ImageCommand::Pull(a) => {
            drop(out);
            return pull(*a, interrupt);
        }
        ImageCommand::List(a) => {
            for i in list_images(&open(&a.repo)?)? {
                writeln!(out, "{i}")?;
            }
        }
        ImageCommand::History(a) => {
            let state = stored(&a)?;
            writeln!(out, "{:<14} {:>10}  CREATED BY", "ID", "SIZE")?;
            for h in image_history(&state) {
                let id: String = h
                    .digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                let by = h.created_by.unwrap_or_default();
                let by: String = by.chars().take(60).collect();
                writeln!(
                    out,
                    "{id:<14} {:>10}  {by}",
                    indicatif::HumanBytes(h.size).to_string()
                )?;
            }
        }
        ImageCommand::Metadata(a) => {
            let state = stored(&a.image)?;
            let value = if a.config {
                serde_json::to_value(&state.config)?
            } else if a.cached_update {
                let u = state
                    .cached_update
                    .with_context(|| format!("{}: no pending update recorded", a.image.imgref))?;
                serde_json::to_value(&u.manifest)?
            } else {
                serde_json::to_value(&state.manifest)?
            };
            // serde_json's map is sorted: canonical JSON, as the reference prints since 2025.
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
        }
        ImageCommand::Remove(a) => {
            let repo = open(&a.repo)?;
            let n = remove_images(&repo, &a.imgrefs)?;
            let layers = if a.skip_gc {
                0
            } else {
                store::gc_image_layers(&repo)?
            };
            writeln!(out, "Removed images: {n} layers: {layers}")?;
        }
        ImageCommand::PruneLayers(a) => {
            let repo = open(&a.repo)?;
            let n = store::gc_image_layers(&repo)?;
            writeln!(out, "Removed layers: {n}")?;
            if a.and_objects {
                let mut o = ostree_repo::PruneOptions::new();
                o.refs_only = true;
                let r = repo.prune(&o, &ostree_repo::NoProgress, interrupt)?;
                writeln!(
                    out,
                    "Deleted {} objects, {} freed",
                    r.objects_deleted,
                    store::diff::format_size(r.bytes_freed)
                )?;
            }
        }
        ImageCommand::ClearCachedUpdate(a) => {
            store::clear_cached_update(&open(&a.repo)?, &a.imgref)?;
        }
    }
    Ok(0)
}

fn stored(a: &ImageArg) -> Result<store::ImageState> {
    query_image(&open(&a.repo)?, &a.imgref)?
        .ok_or_else(|| anyhow::anyhow!("{}: no such image in the store", a.imgref))
}

fn pull(a: PullArgs, interrupt: &Arc<AtomicBool>) -> Result<u8> {
    let repo = open(&a.repo)?;
    let mut renderer = ImportRenderer::new(a.quiet, a.progress_fd)?;
    renderer.print_prepared = true;
    let renderer = Arc::new(renderer);
    let mut opts = PullOptions::new();
    opts.fetch = a.proxy.to_config();
    opts.progress = Some(renderer.clone());
    opts.interrupt = Some(Arc::clone(interrupt));
    opts.network_retries = a.network_retry;
    opts.sepolicy_commit = a.sepolicy_commit.clone();
    let rt = runtime()?;
    if let Some(check) = &a.check {
        return rt.block_on(check_only(&repo, &a, check, opts));
    }
    let result = rt.block_on(store::pull(&repo, &a.imgref, opts));
    let merge = result.as_ref().ok().and_then(|(o, _)| o.merge_commit);
    renderer.finish(
        result
            .as_ref()
            .ok()
            .and_then(|(o, _)| merge.as_ref().map(|m| (m, o.already_present))),
    );
    let (outcome, _) = result?;
    let merge = merge.context("internal: a store pull without a merge commit")?;
    if outcome.already_present {
        println!("No changes in {} => {merge}", a.imgref);
        return Ok(0);
    }
    let mut dropped: std::collections::BTreeMap<&str, u32> = Default::default();
    for (_, counts) in &outcome.filtered {
        for (k, n) in counts {
            *dropped.entry(k.as_str()).or_default() += n;
        }
    }
    if !dropped.is_empty() {
        let list: Vec<String> = dropped.iter().map(|(k, n)| format!(" {k}: {n}")).collect();
        eprintln!(
            "Image contains non-ostree compatible file paths:{}",
            list.concat()
        );
    }
    if let Some(w) = &outcome.deprecated_warning {
        eprintln!("warning: {w}");
    }
    println!("Wrote: {} => {merge}", a.imgref);
    Ok(0)
}

/// `image pull --check FILE`: manifest and config only; the update is recorded, not fetched.
async fn check_only(
    repo: &Repo,
    a: &PullArgs,
    check: &std::path::Path,
    opts: PullOptions,
) -> Result<u8> {
    match store::check_for_update(repo, &a.imgref, opts).await? {
        None => {
            let state = query_image(repo, &a.imgref.imgref)?;
            match state {
                Some(s) => println!("No changes in {} => {}", a.imgref, s.merge_commit),
                None => println!("No changes in {}", a.imgref),
            }
        }
        Some(prep) => {
            let json = serde_json::to_vec(&prep.manifest)?;
            write_atomic(check, &json)?;
            println!(
                "Update available for {}: {}",
                a.imgref, prep.manifest_digest
            );
            prep.close().await?;
        }
    }
    Ok(0)
}

/// Writes `path` (relative to the working directory) through a temporary file and a rename.
fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.write_all(data)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
