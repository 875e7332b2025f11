//! `ostree-container encapsulate` (alias `export`): a commit → an OCI image.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ostree_container::ImageReference;
use ostree_container::encapsulate::{
    Compression, EncapsulateOptions, EncapsulateProgress, LayerBlob, LayerEstimate, encapsulate,
};
use ostree_repo::Repo;

/// Layer compression algorithm.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    /// gzip (default level 6), readable by every container tool.
    Gzip,
    /// zstd (default level 3), faster and smaller; needs a recent container stack.
    Zstd,
}

/// `encapsulate` arguments.
#[derive(Args, Debug)]
pub struct EncapsulateArgs {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
    /// Ref or commit checksum to export.
    rev: String,
    /// Destination, e.g. `oci:/path/to/layout:tag`, `oci-archive:/x.tar`,
    /// `docker://registry/name:tag`, `containers-storage:name`.
    imgref: ImageReference,
    /// Add a label (and manifest annotation) `KEY=VALUE`.
    #[arg(long, short = 'l', value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Copy this commit metadata string key into a label (it must exist).
    #[arg(long, value_name = "KEY")]
    copymeta: Vec<String>,
    /// Copy this commit metadata string key into a label if present.
    #[arg(long, value_name = "KEY")]
    copymeta_opt: Vec<String>,
    /// `config.Cmd` (repeat for each argument); default: commit metadata `ostree.container-cmd`.
    #[arg(long, value_name = "ARG")]
    cmd: Vec<String>,
    /// At most this many layers, the commit layer included (default 32; with --contentmeta,
    /// one per component plus one). 1 writes a single layer.
    #[arg(long, value_name = "N")]
    max_layers: Option<NonZeroUsize>,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    compression: CompressionArg,
    /// Compression level (gzip 0-9, default 6; zstd 1-19, default 3).
    #[arg(long, value_name = "LEVEL")]
    compression_level: Option<i32>,
    /// Content metadata JSON assigning every content object to a component.
    #[arg(long, value_name = "FILE")]
    contentmeta: Option<PathBuf>,
    /// Auth file for pushing to a registry.
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Directory with certificates (*.crt, *.cert, *.key) for the registry.
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Push without TLS verification (e.g. a plain-HTTP local registry).
    #[arg(long)]
    insecure_skip_tls_verification: bool,
    /// No progress output (the digest is still printed).
    #[arg(long, short)]
    quiet: bool,
}

/// An overall byte bar on a terminal.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl EncapsulateProgress for Bar {
    fn layers(&self, layers: &[LayerEstimate]) {
        self.bar
            .set_length(layers.iter().map(|l| l.estimated_bytes).sum());
        self.bar.set_message(format!("{} layer(s)", layers.len()));
    }

    fn bytes(&self, _index: usize, _layer: u64, overall: u64) {
        self.bar.set_position(overall);
    }

    fn layer_done(&self, index: usize, blob: &LayerBlob) {
        self.bar.println(format!(
            "layer {index}: {} ({} compressed)",
            blob.digest,
            indicatif::HumanBytes(blob.size)
        ));
    }

    fn pushing(&self, dest: &str) {
        self.bar.set_message(format!("copying to {dest}"));
    }
}

fn compression(a: &EncapsulateArgs) -> Result<Compression> {
    Ok(match (a.compression, a.compression_level) {
        (CompressionArg::Gzip, None) => Compression::gzip(),
        (CompressionArg::Zstd, None) => Compression::zstd(),
        (CompressionArg::Gzip, Some(l)) => Compression::Gzip {
            level: u32::try_from(l).context("gzip level must be 0-9")?,
        },
        (CompressionArg::Zstd, Some(l)) => Compression::Zstd { level: l },
    })
}

pub fn run(a: EncapsulateArgs, interrupt: &Arc<AtomicBool>) -> Result<u8> {
    let repo =
        Repo::open(&a.repo).with_context(|| format!("opening repository {}", a.repo.display()))?;
    let mut opts = EncapsulateOptions::new();
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let Some((k, v)) = l.split_once('=') else {
            bail!("invalid label {l:?}: expected KEY=VALUE");
        };
        labels.insert(k.to_string(), v.to_string());
    }
    opts.labels = labels;
    opts.copy_meta = a.copymeta.clone();
    opts.copy_meta_opt = a.copymeta_opt.clone();
    opts.cmd = a.cmd.clone();
    opts.max_layers = a.max_layers;
    opts.compression = compression(&a)?;
    opts.contentmeta = a.contentmeta.clone();
    opts.authfile = a.authfile.clone();
    opts.cert_dir = a.cert_dir.clone();
    opts.insecure_skip_tls_verification = a.insecure_skip_tls_verification;
    opts.interrupt = Some(Arc::clone(interrupt));
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:24} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Arc::new(Bar { bar: b })
    });
    if let Some(b) = &bar {
        opts.progress = Some(b.clone());
    }
    let result = encapsulate(&repo, &a.rev, &opts, &a.imgref);
    if let Some(b) = &bar {
        b.bar.finish_and_clear();
    }
    let digest = result.with_context(|| format!("encapsulating {} to {}", a.rev, a.imgref))?;
    writeln!(std::io::stdout().lock(), "{digest}")?;
    Ok(0)
}
