//! Rendering pull progress: on a terminal one overall line (`[done/total layers]`, bytes, rate,
//! ETA) plus a bar for each layer in flight only (at most the fetch concurrency; finished layers
//! leave the screen, so any layer count fits 80x24); JSON lines on `--progress-fd`; nothing with
//! `--quiet`.
//!
//! JSON schema (one object per line, `event` tells which; `index` is the manifest position):
//! `{"event":"image","digest":D,"commit":C|null}`,
//! `{"event":"layers","present":N,"layers":[{"index":I,"digest":D,"size":N,"role":"commit"|"chunk"|"derived"}]}`,
//! `{"event":"progress","index":I,"fetched":N,"total":N}`,
//! `{"event":"layer-done","index":I}`,
//! `{"event":"done","commit":C,"already_present":B}` or `{"event":"failed"}`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use ostree_container::fetch::LayerState;
use ostree_container::store::{ImportProgress, LayerPlan};
use ostree_repo::format::Checksum;
use serde_json::json;

/// Widths chosen so no line exceeds 79 columns.
const OVERALL_TEMPLATE: &str =
    "{prefix:>13} [{bar:20}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta:>4}";
const LAYER_TEMPLATE: &str = "{msg:>22} [{bar:20}] {bytes:>10}/{total_bytes:10}";

struct Bars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    /// Bars of layers in flight, by manifest index.
    in_flight: HashMap<usize, indicatif::ProgressBar>,
}

/// Renders a pull.
pub struct ImportRenderer {
    bars_enabled: bool,
    /// Print the manifest diff and layer status when a store pull is prepared (image pull).
    pub print_prepared: bool,
    quiet: bool,
    json: Option<Mutex<File>>,
    state: Arc<Mutex<Vec<LayerPlan>>>,
    bars: Arc<Mutex<Option<Bars>>>,
    done: Arc<AtomicUsize>,
    /// Dropped to stop the ticker: it wakes at once rather than at its next tick.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

fn style(t: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(t)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

impl ImportRenderer {
    /// Bars only on a terminal and without `quiet`; JSON to `progress_fd` if given.
    pub fn new(quiet: bool, progress_fd: Option<u32>) -> Result<Self> {
        let json = match progress_fd {
            Some(fd) => {
                let path = format!("/proc/self/fd/{fd}");
                Some(Mutex::new(
                    File::options()
                        .append(true)
                        .open(&path)
                        .with_context(|| format!("--progress-fd {fd} is not open for writing"))?,
                ))
            }
            None => None,
        };
        Ok(ImportRenderer {
            bars_enabled: !quiet && std::io::stderr().is_terminal(),
            print_prepared: false,
            quiet,
            json,
            state: Arc::default(),
            bars: Arc::default(),
            done: Arc::default(),
            stop: Mutex::new(None),
            ticker: Mutex::new(None),
        })
    }

    fn emit(&self, v: serde_json::Value) {
        emit(&self.json, &v);
    }

    /// Stops the ticker and prints the final event.
    pub fn finish(&self, result: Option<(&Checksum, bool)>) {
        if let Ok(mut s) = self.stop.lock() {
            s.take();
        }
        if let Ok(mut t) = self.ticker.lock()
            && let Some(h) = t.take()
        {
            let _ = h.join();
        }
        if let Ok(mut b) = self.bars.lock()
            && let Some(b) = b.take()
        {
            for l in b.in_flight.values() {
                l.finish_and_clear();
            }
            b.total.finish_and_clear();
            let _ = b.multi.clear();
        }
        match result {
            Some((c, present)) => self
                .emit(json!({"event": "done", "commit": c.to_hex(), "already_present": present})),
            None => self.emit(json!({"event": "failed"})),
        }
    }
}

fn emit(json: &Option<Mutex<File>>, v: &serde_json::Value) {
    if let Some(f) = json
        && let Ok(mut f) = f.lock()
    {
        let _ = writeln!(f, "{v}");
    }
}

/// One tick: JSON progress events for changed counters; bars appear for layers that started and
/// go when they finish.
fn tick(
    state: &Mutex<Vec<LayerPlan>>,
    bars: &Mutex<Option<Bars>>,
    json: &Option<Mutex<File>>,
    done: &AtomicUsize,
    last: &mut Vec<u64>,
) {
    let Ok(s) = state.lock() else { return };
    last.resize(s.len(), u64::MAX);
    let mut sum = 0;
    let mut bars = bars.lock().ok();
    for (i, l) in s.iter().enumerate() {
        let fetched = l.progress.fetched();
        sum += fetched;
        if fetched != last[i] {
            last[i] = fetched;
            emit(
                json,
                &json!({"event": "progress", "index": l.index, "fetched": fetched, "total": l.progress.total()}),
            );
        }
        let Some(Some(b)) = bars.as_deref_mut() else {
            continue;
        };
        match l.progress.state() {
            LayerState::Fetching => {
                if !b.in_flight.contains_key(&l.index) {
                    let bar = b.multi.add(indicatif::ProgressBar::new(l.size));
                    bar.set_style(style(LAYER_TEMPLATE));
                    bar.set_message(format!("{} {}", l.role.as_str(), short(&l.digest)));
                    b.in_flight.insert(l.index, bar);
                }
                if let Some(bar) = b.in_flight.get(&l.index) {
                    bar.set_position(fetched);
                }
            }
            _ => {
                if let Some(bar) = b.in_flight.remove(&l.index) {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
            }
        }
    }
    if let Some(Some(b)) = bars.as_deref_mut() {
        b.total.set_position(sum);
        b.total
            .set_prefix(format!("[{}/{}]", done.load(Ordering::Relaxed), s.len()));
    }
}

impl ImportProgress for ImportRenderer {
    fn prepared(&self, p: &ostree_container::store::PreparedImport) {
        if !self.print_prepared {
            return;
        }
        if let Some(diff) = p.manifest_diff() {
            for line in diff.lines() {
                println!("{line}");
            }
        }
        if !self.quiet
            && let Some(status) = p.layer_status()
        {
            println!("{status}");
        }
    }

    fn retrying(&self, attempt: u32, delay: Duration, error: &ostree_container::StoreError) {
        self.emit(
            json!({"event": "retry", "attempt": attempt, "delay_ms": delay.as_millis() as u64}),
        );
        if !self.quiet {
            eprintln!(
                "warning: {}; retrying in {}s (attempt {})",
                ostree_container::classify::Chain(error),
                delay.as_secs_f32(),
                attempt + 1
            );
        }
    }

    fn image(&self, digest: &str, commit: Option<&Checksum>) {
        self.emit(
            json!({"event": "image", "digest": digest, "commit": commit.map(Checksum::to_hex)}),
        );
    }

    fn layers(&self, present: usize, layers: &[LayerPlan]) {
        let list: Vec<_> = layers
            .iter()
            .map(|l| json!({"index": l.index, "digest": l.digest, "size": l.size, "role": l.role.as_str()}))
            .collect();
        self.emit(json!({"event": "layers", "present": present, "layers": list}));
        if let Ok(mut s) = self.state.lock() {
            *s = layers.to_vec();
        }
        if self.bars_enabled && !layers.is_empty() {
            let multi = indicatif::MultiProgress::new();
            let total_size: u64 = layers.iter().map(|l| l.size).sum();
            let total = multi.add(indicatif::ProgressBar::new(total_size));
            total.set_style(style(OVERALL_TEMPLATE));
            total.set_prefix(format!("[0/{}]", layers.len()));
            if let Ok(mut b) = self.bars.lock() {
                *b = Some(Bars {
                    multi,
                    total,
                    in_flight: HashMap::new(),
                });
            }
        }
        // One ticker polls the counters: the fetch path only bumps atomics.
        let (state, bars, done) = (
            Arc::clone(&self.state),
            Arc::clone(&self.bars),
            Arc::clone(&self.done),
        );
        let (stop_tx, stop) = mpsc::channel::<()>();
        if let Ok(mut s) = self.stop.lock() {
            *s = Some(stop_tx);
        }
        let json = self
            .json
            .as_ref()
            .and_then(|f| f.lock().ok().and_then(|f| f.try_clone().ok()))
            .map(Mutex::new);
        let handle = std::thread::spawn(move || {
            let mut last: Vec<u64> = Vec::new();
            loop {
                tick(&state, &bars, &json, &done, &mut last);
                if stop.recv_timeout(Duration::from_millis(200)) != Err(RecvTimeoutError::Timeout) {
                    // Stopped: one last tick shows the final counts.
                    tick(&state, &bars, &json, &done, &mut last);
                    return;
                }
            }
        });
        if let Ok(mut t) = self.ticker.lock() {
            *t = Some(handle);
        }
    }

    fn layer_done(&self, index: usize) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.emit(json!({"event": "layer-done", "index": index}));
    }
}
