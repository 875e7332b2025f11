//! `ostree-container tar …`: the ostree-container tar format on the command line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use ostree_repo::Repo;

use crate::EXIT_INTERRUPTED;

#[derive(Subcommand, Debug)]
pub enum TarCommand {
    /// Export a commit as one uncompressed ostree tar stream (to stdout by default).
    Export {
        /// Path to the OSTree repository.
        #[arg(long = "repo", value_name = "PATH")]
        repo: PathBuf,
        /// Accepted for compatibility with ostree-ext; only version 1 exists.
        #[arg(long = "format-version", hide = true, default_value_t = 1)]
        format_version: u32,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Commit checksum or ref.
        rev: String,
    },
    /// Import an uncompressed ostree tar stream (from stdin by default); prints the commit.
    Import {
        /// Path to the OSTree repository.
        #[arg(long = "repo", value_name = "PATH")]
        repo: PathBuf,
        /// The tar file.
        file: Option<PathBuf>,
    },
}

/// An import or export failure, naming the error kind so scripts can tell them apart.
#[derive(Debug)]
struct KindError(ostree_tar::TarError);

impl std::fmt::Display for KindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:?}] {}", self.0.kind(), self.0)
    }
}

impl std::error::Error for KindError {
    /// The import error's own causes: the kind prefix replaces its level, not the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

fn tar_result<T>(r: ostree_tar::Result<T>) -> Result<std::result::Result<T, u8>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.kind() == ostree_tar::ErrorKind::Interrupted => {
            eprintln!("error: interrupted");
            Ok(Err(EXIT_INTERRUPTED))
        }
        Err(e) => Err(KindError(e).into()),
    }
}

pub fn run(cmd: TarCommand, interrupt: &AtomicBool) -> Result<u8> {
    match cmd {
        TarCommand::Export {
            repo,
            format_version,
            output,
            rev,
        } => {
            if format_version != 1 {
                bail!("unsupported --format-version {format_version}: only 1 is supported");
            }
            let repo = Repo::open(&repo)?;
            let r = match &output {
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("create {}", path.display()))?;
                    let mut w = std::io::BufWriter::with_capacity(128 * 1024, f);
                    let r = ostree_tar::export_commit(&repo, &rev, &mut w);
                    if r.is_ok() {
                        w.flush()
                            .with_context(|| format!("write {}", path.display()))?;
                    }
                    r
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::with_capacity(128 * 1024, stdout.lock());
                    let r = ostree_tar::export_commit(&repo, &rev, &mut w);
                    if r.is_ok() {
                        w.flush().context("write stdout")?;
                    }
                    r
                }
            };
            match tar_result(r)? {
                Ok(_) => Ok(0),
                Err(code) => Ok(code),
            }
        }
        TarCommand::Import { repo, file } => {
            let repo = Repo::open(&repo)?;
            let r = match &file {
                Some(path) => {
                    let f = std::fs::File::open(path)
                        .with_context(|| format!("open {}", path.display()))?;
                    ostree_tar::import_tar(&repo, f, interrupt)
                }
                None => ostree_tar::import_tar(&repo, std::io::stdin().lock(), interrupt),
            };
            match tar_result(r)? {
                Ok(commit) => {
                    println!("Imported: {commit}");
                    Ok(0)
                }
                Err(code) => Ok(code),
            }
        }
    }
}
