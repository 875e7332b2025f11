//! Error printing, exit codes and progress rendering.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{EXIT_FAILURE, EXIT_INTERRUPTED};

/// Prints `error: a: b: c` (the whole chain on one line: each level says only its own part);
/// a backtrace only when asked with `OSTREE_CONTAINER_BACKTRACE=1` (RUST_BACKTRACE alone only
/// makes it available).
pub fn print_error(e: &anyhow::Error) {
    let chain: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|m| !m.is_empty())
        .collect();
    eprintln!("error: {}", chain.join(": "));
    if std::env::var_os("OSTREE_CONTAINER_BACKTRACE").is_some_and(|v| v == "1") {
        eprintln!("{}", e.backtrace());
    }
}

/// Maps the error's kind (never its text) to an exit code.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    // `error_kind` walks the chain itself, through anyhow's context layers.
    match ostree_container::error_kind(e.as_ref()) {
        Some(ostree_container::ErrorKind::Interrupted) => EXIT_INTERRUPTED,
        _ => EXIT_FAILURE,
    }
}

/// Progress on stderr: a bar on a terminal, nothing otherwise or with `--quiet`.
pub struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
}

impl BarProgress {
    /// A bar if stderr is a terminal and not quiet.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:20} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        BarProgress {
            bar,
            done: AtomicU64::new(0),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl ostree_repo::Progress for BarProgress {
    fn start(&self, phase: &str, total: Option<u64>) {
        self.done.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_message(phase.to_string());
            b.set_position(0);
            b.set_length(total.unwrap_or(0));
        }
    }
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
}
