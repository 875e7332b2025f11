//! Background writeback while a transaction writes.
//!
//! The commit protocol ends with `syncfs` before objects are renamed into place. With nothing
//! else asking, the kernel starts writing dirty pages only past `dirty_background_ratio` (gigabytes
//! on a large machine), so an import of a few hundred megabytes would spend its CPU-bound phase
//! with an idle disk and then wait seconds in that final `syncfs`. A flusher thread calls `syncfs`
//! every [`FLUSH_EVERY`] bytes written instead: disk and CPU overlap, and the final call finds
//! little left. Its errors are only logged: it uses its own file description, so the final
//! `syncfs` (which decides) still reports any writeback error (errseq).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::IoContext;
use crate::repo::open_dir;

/// Bytes written between two background flushes.
pub(super) const FLUSH_EVERY: u64 = 64 * 1024 * 1024;
/// What a new object costs besides its payload (inode, directory entry), for the count.
pub(super) const OBJECT_OVERHEAD: u64 = 4096;

#[derive(Default)]
struct State {
    requested: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts bytes written and, past each threshold, has a thread sync the filesystem.
#[derive(Default)]
pub(super) struct Flusher {
    written: AtomicU64,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    /// Records `bytes` written under `dir`; asks for a flush when a threshold is crossed.
    pub(super) fn note(&self, bytes: u64, dir: &Path) {
        let before = self.written.fetch_add(bytes, Ordering::Relaxed);
        if before / FLUSH_EVERY == (before + bytes) / FLUSH_EVERY {
            return;
        }
        self.request(dir);
    }

    /// Asks for a flush now (the thread syncing `dir`'s filesystem is started if needed).
    pub(super) fn request(&self, dir: &Path) {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_none() {
            match spawn(dir, Arc::clone(&self.shared)) {
                Ok(h) => *thread = Some(h),
                Err(e) => {
                    tracing::debug!("no background flusher: {e}");
                    return;
                }
            }
        }
        drop(thread);
        self.shared.lock().requested = true;
        self.shared.wake.notify_one();
    }

    /// Stops the thread (after a flush in progress) and waits for it.
    pub(super) fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the flusher thread, syncing the filesystem of `dir`.
fn spawn(dir: &Path, shared: Arc<Shared>) -> crate::error::Result<JoinHandle<()>> {
    let fd = open_dir(dir)?;
    std::thread::Builder::new()
        .name("ostree-flush".into())
        .spawn(move || run(&shared, fd))
        .io("start a flusher thread for", dir)
}

fn run(shared: &Shared, fd: OwnedFd) {
    loop {
        {
            let mut st = shared.lock();
            while !st.requested && !st.stop {
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop {
                return;
            }
            st.requested = false;
        }
        if let Err(e) = rustix::fs::syncfs(&fd) {
            tracing::debug!("background syncfs: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_past_each_threshold_and_stops() {
        let dir = std::env::temp_dir();
        let f = Flusher::default();
        f.note(FLUSH_EVERY - 1, &dir);
        assert!(f.thread.lock().unwrap().is_none(), "below the threshold");
        f.note(1, &dir);
        assert!(f.thread.lock().unwrap().is_some(), "a flusher runs");
        f.note(FLUSH_EVERY, &dir);
        f.stop();
        assert!(f.thread.lock().unwrap().is_none());
        assert!(f.shared.lock().stop);
    }
}
