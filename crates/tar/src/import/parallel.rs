//! Parallel writing of small content objects within one layer.
//!
//! The layer's tar stream is parsed and validated on one thread (the order of entries carries
//! meaning: xattr references, reachability). Writing an object, though, is independent of the
//! others: checksumming, compression (archive repositories) and the filesystem calls that stage
//! it. So the parsing thread reads the payload of each small object into memory and hands the
//! write to a fixed set of worker threads; large objects are still streamed inline.
//!
//! Memory is bounded by [`MAX_BYTES_IN_FLIGHT`] and [`MAX_JOBS_IN_FLIGHT`]: the parser blocks
//! until workers catch up. Errors are reported as the serial import would report them: each job
//! remembers its tar entry and location, and the error of the earliest failing entry wins (the
//! serial import would have stopped there). Workers never skip a job that precedes a failure.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use ostree_repo::format::{Checksum, FileMeta};
use ostree_repo::{ContentSource, Transaction};

use crate::error::{Location, TarError};

/// Regular files up to this size are buffered and written by workers.
pub(super) const SMALL_OBJECT_MAX: u64 = 1024 * 1024;
/// Bytes of buffered payload (plus a per-job overhead) queued or being written at once.
pub(super) const MAX_BYTES_IN_FLIGHT: u64 = 8 * 1024 * 1024;
/// Jobs queued or being written at once.
pub(super) const MAX_JOBS_IN_FLIGHT: usize = 2048;
/// Accounting overhead per job (metadata, location, xattrs).
const JOB_OVERHEAD: u64 = 1024;
/// Upper bound on worker threads per layer.
const MAX_WORKERS: usize = 8;

/// How many worker threads a layer should use; 0 or 1 means "write inline".
pub(super) fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_WORKERS)
}

/// A content object's payload, fully in memory.
pub(super) enum Payload {
    Regular { buf: Vec<u8> },
    Symlink(String),
}

/// One content object to write; dispatched only for objects the repository was just found not
/// to have (`pool_for`), so the write does not ask again.
pub(super) struct Job {
    /// The tar header index of the entry (orders errors).
    pub(super) entry: u64,
    pub(super) at: Location,
    pub(super) checksum: Checksum,
    pub(super) meta: FileMeta,
    pub(super) payload: Payload,
}

impl Job {
    fn cost(&self) -> u64 {
        JOB_OVERHEAD
            + match &self.payload {
                Payload::Regular { buf, .. } => buf.len() as u64,
                Payload::Symlink(t) => t.len() as u64,
            }
    }

    fn write(self, txn: &Transaction<'_>) -> Result<(), TarError> {
        let r = match &self.payload {
            Payload::Regular { buf } => {
                txn.write_content_absent(self.checksum, &self.meta, ContentSource::Bytes(buf))
            }
            Payload::Symlink(target) => txn.write_content_absent(
                self.checksum,
                &self.meta,
                ContentSource::Symlink { target },
            ),
        };
        r.map(drop).map_err(|source| TarError::Repo {
            at: self.at,
            source: Box::new(source),
        })
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<(u64, Job)>,
    bytes: u64,
    jobs: usize,
    closed: bool,
    errors: Vec<(u64, TarError)>,
}

/// The queue shared by a layer's parser and its workers.
pub(super) struct Pool {
    state: Mutex<State>,
    /// Signalled when a job is queued or the pool closes.
    work: Condvar,
    /// Signalled when a job finishes (space freed) or a worker fails.
    space: Condvar,
    /// The smallest entry index whose job failed (`u64::MAX`: none).
    fail_at: AtomicU64,
}

/// Marks the pool failed if a worker unwinds, so the parser does not wait for it forever.
struct PanicGuard<'p>(&'p Pool);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail_at.store(0, Ordering::SeqCst);
            let mut st = self.0.lock();
            st.closed = true;
            drop(st);
            self.0.space.notify_all();
            self.0.work.notify_all();
        }
    }
}

impl Pool {
    pub(super) fn new() -> Self {
        Pool {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            space: Condvar::new(),
            fail_at: AtomicU64::new(u64::MAX),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a worker failed (the parser should stop reading).
    pub(super) fn failed(&self) -> bool {
        self.fail_at.load(Ordering::SeqCst) != u64::MAX
    }

    /// Queues `job`, blocking while the in-flight bounds are reached. Returns `false` (the job
    /// dropped) if a worker has failed: the parser must stop.
    pub(super) fn dispatch(&self, job: Job) -> bool {
        let cost = job.cost();
        let mut st = self.lock();
        loop {
            if self.failed() {
                return false;
            }
            let full = st.jobs >= MAX_JOBS_IN_FLIGHT
                || (st.jobs > 0 && st.bytes + cost > MAX_BYTES_IN_FLIGHT);
            if !full {
                break;
            }
            st = self.space.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.jobs += 1;
        st.bytes += cost;
        st.queue.push_back((cost, job));
        drop(st);
        self.work.notify_one();
        true
    }

    /// Waits until every queued job has finished (or a worker failed).
    pub(super) fn wait_idle(&self) {
        let mut st = self.lock();
        while st.jobs > 0 && !self.failed() {
            st = self.space.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// No more jobs will come: workers exit once the queue is empty.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// A worker: writes jobs until the pool is closed and empty.
    pub(super) fn work(&self, txn: &Transaction<'_>, interrupt: Option<&AtomicBool>) {
        let _guard = PanicGuard(self);
        loop {
            let (cost, job) = {
                let mut st = self.lock();
                loop {
                    if let Some(j) = st.queue.pop_front() {
                        break j;
                    }
                    if st.closed {
                        return;
                    }
                    st = self.work.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            };
            let entry = job.entry;
            // Jobs after a failed entry are moot: the serial import would have stopped before
            // them. Jobs before it still run, since one of them may fail first.
            let res = if entry > self.fail_at.load(Ordering::SeqCst) {
                Ok(())
            } else if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                Err(TarError::Interrupted)
            } else {
                job.write(txn)
            };
            let mut st = self.lock();
            st.jobs -= 1;
            st.bytes -= cost;
            if let Err(e) = res {
                st.errors.push((entry, e));
                self.fail_at.fetch_min(entry, Ordering::SeqCst);
            }
            drop(st);
            self.space.notify_all();
        }
    }

    /// After all workers have exited: the error of the earliest failed entry, if any.
    pub(super) fn first_error(&self) -> Option<TarError> {
        let mut st = self.lock();
        let errors = std::mem::take(&mut st.errors);
        errors.into_iter().min_by_key(|(e, _)| *e).map(|(_, e)| e)
    }
}

/// Yields a partially read payload, then the read error that cut it short, so the serial
/// write path reports exactly what it would have reported reading the stream itself.
pub(super) struct BufThenErr {
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) err: Option<io::Error>,
}

impl Read for BufThenErr {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.buf.len() {
            let n = out.len().min(self.buf.len() - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        if out.is_empty() {
            return Ok(0);
        }
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}
