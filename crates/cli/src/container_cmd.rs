//! `ostree-container unencapsulate|info`: importing the commit an image carries.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;
use ostree_container::unencapsulate::{
    UnencapsulateOptions, fetch_manifest_and_config, layout, unencapsulate,
};
use ostree_container::{FetchConfig, OstreeImageReference};
use ostree_repo::Repo;

use crate::progress::ImportRenderer;

/// How to reach images (the reference CLI's `[proxy]` options).
#[derive(Args, Debug, Clone, Default)]
pub struct ProxyOpts {
    /// containers-policy.json for skopeo (its `--policy`; default: ~/.config/containers/policy.json,
    /// else /etc/containers/policy.json).
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// registries.d directory for skopeo (its `--registries.d`: signature lookaside and sigstore
    /// attachment settings; default: /etc/containers/registries.d and the user's).
    #[arg(long = "registries-d", value_name = "DIR")]
    registries_d: Option<PathBuf>,
    /// Path to a container auth file (default: the ostree auth.json lookup).
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Do not use any credentials.
    #[arg(long)]
    auth_anonymous: bool,
    /// Directory with certificates (*.crt, *.cert, *.key) for the registry.
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Do not verify the registry's TLS certificate.
    #[arg(long)]
    insecure_skip_tls_verification: bool,
    /// Layers fetched at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    layer_concurrency: Option<std::num::NonZeroUsize>,
    /// Fail a transfer that makes no progress for this many seconds.
    #[arg(long, value_name = "SECS")]
    stall_timeout: Option<u64>,
}

impl ProxyOpts {
    /// The fetch configuration.
    pub fn to_config(&self) -> FetchConfig {
        let mut c = FetchConfig::default();
        c.authfile = self.authfile.clone();
        c.auth_anonymous = self.auth_anonymous;
        c.certificate_directory = self.cert_dir.clone();
        c.insecure_skip_tls_verification = self.insecure_skip_tls_verification;
        c.signature_policy = self.policy.clone();
        c.registries_d = self.registries_d.clone();
        if let Some(n) = self.layer_concurrency {
            c.layer_concurrency = n;
        }
        if let Some(s) = self.stall_timeout {
            c.stall_timeout = std::time::Duration::from_secs(s);
        }
        c
    }
}

/// `unencapsulate` arguments.
#[derive(Args, Debug)]
pub struct UnencapsulateArgs {
    /// Path to the OSTree repository.
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
    /// Image, e.g. `ostree-unverified-registry:quay.io/x/y:latest` or
    /// `ostree-unverified-image:oci:/path/to/layout`.
    imgref: OstreeImageReference,
    /// Point this ref at the imported commit.
    #[arg(long, value_name = "REF")]
    write_ref: Option<String>,
    /// No progress output (the result line is still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Write progress as JSON lines to this file descriptor.
    #[arg(long, value_name = "FD")]
    progress_fd: Option<u32>,
    #[command(flatten)]
    proxy: ProxyOpts,
}

/// `info` arguments.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Image reference.
    imgref: OstreeImageReference,
    #[command(flatten)]
    proxy: ProxyOpts,
}

pub fn run_unencapsulate(a: UnencapsulateArgs, interrupt: &Arc<AtomicBool>) -> Result<u8> {
    let repo =
        Repo::open(&a.repo).with_context(|| format!("opening repository {}", a.repo.display()))?;
    let renderer = Arc::new(ImportRenderer::new(a.quiet, a.progress_fd)?);
    let mut opts = UnencapsulateOptions::new();
    opts.fetch = a.proxy.to_config();
    opts.write_ref = a.write_ref.clone();
    opts.progress = Some(renderer.clone());
    opts.interrupt = Some(Arc::clone(interrupt));
    let result = unencapsulate(&repo, &a.imgref, opts);
    renderer.finish(
        result
            .as_ref()
            .ok()
            .map(|i| (&i.ostree_commit, i.already_present)),
    );
    let import = result?;
    if let Some(w) = &import.deprecated_warning {
        eprintln!("warning: {w}");
    }
    let mut out = std::io::stdout().lock();
    match &a.write_ref {
        Some(r) => writeln!(out, "Imported: {r} => {}", import.ostree_commit)?,
        None => writeln!(out, "Imported: {}", import.ostree_commit)?,
    }
    Ok(0)
}

pub fn run_info(a: InfoArgs) -> Result<u8> {
    let (manifest, digest, config) = fetch_manifest_and_config(&a.imgref, a.proxy.to_config())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} digest: {digest}", a.imgref)?;
    let labels = layout::labels(&config);
    for key in [
        layout::LABEL_COMMIT,
        layout::LABEL_FINAL_DIFFID,
        "org.opencontainers.image.version",
        "version",
        "ostree.bootable",
        "containers.bootc",
        "ostree.linux",
    ] {
        if let Some(v) = labels.get(key) {
            writeln!(out, "{key}: {v}")?;
        }
    }
    match layout::parse_layout(&manifest, &config) {
        Ok(l) => writeln!(
            out,
            "layers: {} ({} ostree, {} derived)",
            manifest.layers().len(),
            l.last_ostree + 1,
            l.derived_layers
        )?,
        Err(e) => writeln!(
            out,
            "layers: {} (not importable: {e})",
            manifest.layers().len()
        )?,
    }
    Ok(0)
}
