//! Rendering import progress: bars on a terminal (per layer and overall), JSON lines on
//! `--progress-fd`, nothing with `--quiet`.
//!
//! JSON schema (one object per line, `event` tells which):
//! `{"event":"image","digest":D,"commit":C}`,
//! `{"event":"layers","layers":[{"index":I,"digest":D,"size":N,"role":"commit"|"chunk"}]}`,
//! `{"event":"progress","index":I,"fetched":N,"total":N}`,
//! `{"event":"layer-done","index":I}`,
//! `{"event":"done","commit":C,"already_present":B}` or `{"event":"failed"}`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use ostree_container::unencapsulate::{ImportProgress, LayerPlan, LayerRole};
use ostree_repo::format::Checksum;
use serde_json::json;

struct Bars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    layers: Vec<indicatif::ProgressBar>,
}

/// Renders an import.
pub struct ImportRenderer {
    bars_enabled: bool,
    json: Option<Mutex<File>>,
    state: Arc<Mutex<Vec<LayerPlan>>>,
    bars: Arc<Mutex<Option<Bars>>>,
    stop: Arc<AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
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
            json,
            state: Arc::default(),
            bars: Arc::default(),
            stop: Arc::default(),
            ticker: Mutex::new(None),
        })
    }

    fn emit(&self, v: serde_json::Value) {
        emit(&self.json, &v);
    }

    /// Stops the ticker and prints the final event.
    pub fn finish(&self, result: Option<(&Checksum, bool)>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut t) = self.ticker.lock()
            && let Some(h) = t.take()
        {
            let _ = h.join();
        }
        if let Ok(mut b) = self.bars.lock()
            && let Some(b) = b.take()
        {
            for l in &b.layers {
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

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

impl ImportProgress for ImportRenderer {
    fn image(&self, digest: &str, commit: &Checksum) {
        self.emit(json!({"event": "image", "digest": digest, "commit": commit.to_hex()}));
    }

    fn layers(&self, layers: &[LayerPlan]) {
        let list: Vec<_> = layers
            .iter()
            .map(|l| json!({"index": l.index, "digest": l.digest, "size": l.size, "role": match l.role { LayerRole::Commit => "commit", LayerRole::Chunk => "chunk" }}))
            .collect();
        self.emit(json!({"event": "layers", "layers": list}));
        if let Ok(mut s) = self.state.lock() {
            *s = layers.to_vec();
        }
        if self.bars_enabled {
            let multi = indicatif::MultiProgress::new();
            let total_size: u64 = layers.iter().map(|l| l.size).sum();
            let style = |t: &str| {
                indicatif::ProgressStyle::with_template(t)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            };
            let total = multi.add(indicatif::ProgressBar::new(total_size));
            total.set_style(style(
                "{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ));
            total.set_message(format!("{} layers ({})", layers.len(), human(total_size)));
            let bars = layers
                .iter()
                .map(|l| {
                    let b = multi.add(indicatif::ProgressBar::new(l.size));
                    b.set_style(style(
                        "  {msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    ));
                    let short = l
                        .digest
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect::<String>();
                    b.set_message(format!(
                        "{} {short}",
                        if l.role == LayerRole::Commit {
                            "commit"
                        } else {
                            "chunk"
                        }
                    ));
                    b
                })
                .collect();
            if let Ok(mut b) = self.bars.lock() {
                *b = Some(Bars {
                    multi,
                    total,
                    layers: bars,
                });
            }
        }
        // One ticker polls the counters: the fetch path only bumps atomics.
        let (state, bars, stop) = (
            Arc::clone(&self.state),
            Arc::clone(&self.bars),
            Arc::clone(&self.stop),
        );
        let json = self
            .json
            .as_ref()
            .and_then(|f| f.lock().ok().and_then(|f| f.try_clone().ok()))
            .map(Mutex::new);
        let handle = std::thread::spawn(move || {
            let mut last: Vec<u64> = Vec::new();
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                if let Ok(s) = state.lock() {
                    last.resize(s.len(), u64::MAX);
                    let mut sum = 0;
                    for (i, l) in s.iter().enumerate() {
                        let fetched = l.progress.fetched();
                        sum += fetched;
                        if fetched != last[i] {
                            last[i] = fetched;
                            emit(
                                &json,
                                &json!({"event": "progress", "index": i, "fetched": fetched, "total": l.progress.total()}),
                            );
                        }
                        if let Ok(b) = bars.lock()
                            && let Some(b) = b.as_ref()
                            && let Some(bar) = b.layers.get(i)
                        {
                            bar.set_position(fetched);
                        }
                    }
                    if let Ok(b) = bars.lock()
                        && let Some(b) = b.as_ref()
                    {
                        b.total.set_position(sum);
                    }
                }
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        if let Ok(mut t) = self.ticker.lock() {
            *t = Some(handle);
        }
    }

    fn layer_done(&self, index: usize) {
        self.emit(json!({"event": "layer-done", "index": index}));
        if let Ok(b) = self.bars.lock()
            && let Some(b) = b.as_ref()
            && let Some(bar) = b.layers.get(index)
        {
            bar.finish();
        }
    }
}
