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
    Pull(PullArgs),
    /// List stored images.
    List(RepoArg),
    /// Show the layers of a stored image and what created them.
    History(ImageArg),
    /// Print a stored image's manifest (or config) as JSON.
    Metadata(MetadataArgs),
    /// Remove stored images (their layers stay until garbage collection).
    Remove(RemoveArgs),
}

/// `--repo`.
#[derive(Args, Debug)]
pub struct RepoArg {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
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
    #[arg(long)]
    config: bool,
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
    #[command(flatten)]
    proxy: ProxyOpts,
}

fn open(repo: &std::path::Path) -> Result<Repo> {
    Repo::open(repo).with_context(|| format!("opening repository {}", repo.display()))
}

pub fn run(cmd: ImageCommand, interrupt: &Arc<AtomicBool>) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ImageCommand::Pull(a) => {
            drop(out);
            return pull(a, interrupt);
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
            let json = if a.config {
                serde_json::to_string(&serde_json::to_value(&state.config)?)?
            } else {
                serde_json::to_string(&serde_json::to_value(&state.manifest)?)?
            };
            writeln!(out, "{json}")?;
        }
        ImageCommand::Remove(a) => {
            let n = remove_images(&open(&a.repo)?, &a.imgrefs)?;
            writeln!(out, "Removed images: {n}")?;
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
    renderer.summary = !a.quiet;
    let renderer = Arc::new(renderer);
    let mut opts = PullOptions::new();
    opts.fetch = a.proxy.to_config();
    opts.progress = Some(renderer.clone());
    opts.interrupt = Some(Arc::clone(interrupt));
    let result = store::pull_blocking(&repo, &a.imgref, opts);
    let merge = result.as_ref().ok().and_then(|(o, _)| o.merge_commit);
    renderer.finish(
        result
            .as_ref()
            .ok()
            .and_then(|(o, _)| merge.as_ref().map(|m| (m, o.already_present))),
    );
    let (outcome, _) = result?;
    let merge = merge.context("internal: a store pull without a merge commit")?;
    let mut out = std::io::stdout().lock();
    for (digest, counts) in &outcome.filtered {
        if !counts.is_empty() {
            let list: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            writeln!(
                out,
                "Image contains non-ostree compatible file paths (layer {digest}): {}",
                list.join(", ")
            )?;
        }
    }
    if outcome.already_present {
        writeln!(out, "No changes in {} => {merge}", a.imgref)?;
    } else {
        writeln!(out, "Wrote: {} => {merge}", a.imgref)?;
    }
    Ok(0)
}
