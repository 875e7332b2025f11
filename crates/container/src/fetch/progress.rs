//! Lock-free progress counters that the caller can poll while layers stream.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

/// Where a layer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerState {
    /// Not started yet.
    Pending,
    /// Bytes are flowing.
    Fetching,
    /// Fetched, verified by the proxy and consumed.
    Done,
    /// Failed.
    Failed,
}

/// Per-layer progress: raw (compressed) bytes received so far and the expected total.
///
/// Updated with relaxed atomics once per chunk, so observing it costs the stream nothing.
#[derive(Debug)]
pub struct LayerProgress {
    fetched: AtomicU64,
    total: AtomicU64,
    state: AtomicU8,
}

impl LayerProgress {
    pub(crate) fn new(total: u64) -> Self {
        Self {
            fetched: AtomicU64::new(0),
            total: AtomicU64::new(total),
            state: AtomicU8::new(0),
        }
    }

    /// Raw bytes received so far.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Expected raw size (the descriptor's size).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Current state.
    pub fn state(&self) -> LayerState {
        match self.state.load(Ordering::Relaxed) {
            0 => LayerState::Pending,
            1 => LayerState::Fetching,
            2 => LayerState::Done,
            _ => LayerState::Failed,
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.fetched.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }

    pub(crate) fn set_state(&self, s: LayerState) {
        let v = match s {
            LayerState::Pending => 0,
            LayerState::Fetching => 1,
            LayerState::Done => 2,
            LayerState::Failed => 3,
        };
        self.state.store(v, Ordering::Relaxed);
    }
}

/// Time of the last progress anywhere in one `fetch_layers` call; a transfer only counts as
/// stalled when nothing at all moved, because a layer whose data is complete legitimately
/// waits for the FinishPipe of the layers before it.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn idle(&self) -> std::time::Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        std::time::Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}
