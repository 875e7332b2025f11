//! Progress reporting and interruption, owned by the engine so the CLI picks the renderer.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{RepoError, Result};

/// Receives progress of long operations. Implementations must be cheap: `inc` is called per
/// object.
pub trait Progress: Send + Sync {
    /// A phase starts (`total` items if known).
    fn start(&self, _phase: &str, _total: Option<u64>) {}
    /// `n` more items done.
    fn inc(&self, _n: u64) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Fails with [`RepoError::Interrupted`] once the flag is raised.
pub fn check_interrupt(flag: &AtomicBool) -> Result<()> {
    if flag.load(Ordering::Relaxed) {
        Err(RepoError::Interrupted)
    } else {
        Ok(())
    }
}
