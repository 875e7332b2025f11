//! Pulls that survive a bad network: verified layers stay, a rerun or a retry fetches only the
//! rest; permanent errors are not retried; concurrent pulls and layer GC stay consistent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ostree_container::store::{self, ErrorKind, ImportProgress, PullOptions, StoreError};
use ostree_container::{FetchConfig, OstreeImageReference};
use ostree_repo::format::Checksum;
use ostree_repo::{Repo, RepoMode};
use test_support::layer::LayerTar;
use test_support::oci::{LayerCompression, ostree_labels, write_layout};
use test_support::ostree_cli::OstreeCli;
use test_support::registry::{Registry, RegistryOptions};
use test_support::skopeo::skopeo_copy;

use crate::common::insecure;
use crate::{commit_base, mkdir, put, scratch, shared_scratch};

/// A base commit layer and `n` derived layers of incompressible data.
struct Layers {
    _dir: tempfile::TempDir,
    base_commit: Checksum,
    base_layer: Vec<u8>,
    derived: Vec<Vec<u8>>,
}

fn layers() -> &'static Layers {
    static L: OnceLock<Layers> = OnceLock::new();
    L.get_or_init(|| {
        let dir = shared_scratch();
        let tree = dir.path().join("base");
        mkdir(&tree, "", 0o755, 0, 0);
        put(&tree, "usr/bin/base", b"base", 0o755, 0, 0);
        let (_, base_commit, base_layer) = commit_base(dir.path(), &tree);
        let mut rng = test_support::tree::Rng::new(77);
        let derived = (0..10)
            .map(|i| {
                LayerTar::new()
                    .file(
                        &format!("usr/share/data{i}"),
                        &rng.bytes(3 << 20),
                        0o644,
                        0,
                        0,
                    )
                    .finish()
            })
            .collect();
        Layers {
            _dir: dir,
            base_commit,
            base_layer,
            derived,
        }
    })
}

/// Writes an OCI layout of the base plus `derived[range]` and pushes it to `registry` as `name`.
fn push(registry: &Registry, dir: &Path, name: &str, derived: &[Vec<u8>]) -> String {
    let l = layers();
    let layout = dir.join(name.replace([':', '/'], "_"));
    let mut all = vec![l.base_layer.clone()];
    all.extend(derived.iter().cloned());
    write_layout(
        &layout,
        &all,
        &ostree_labels(&l.base_commit.to_hex(), &l.base_layer),
        LayerCompression::Gzip,
    )
    .unwrap();
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{}/{name}", registry.host()),
        &["--dest-tls-verify=false"],
    )
    .unwrap();
    format!("ostree-unverified-registry:{}/{name}", registry.host())
}

fn opts(retries: u32) -> PullOptions {
    let mut o = PullOptions::new();
    let mut f: FetchConfig = insecure();
    f.layer_concurrency = std::num::NonZeroUsize::MIN;
    f.stall_timeout = Duration::from_secs(10);
    o.fetch = f;
    o.network_retries = retries;
    o.retry_backoff = Duration::from_millis(300);
    o
}

fn blob_refs(repo_path: &Path) -> usize {
    let dir = repo_path.join("refs/heads/ostree/container/blob");
    // Layer refs only, not the temporary files refs are written through.
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("sha256_"))
                .count()
        })
        .unwrap_or(0)
}

/// Runs `f` once `repo` has at least `n` layer refs (or after 60 s).
fn when_layers(
    repo: PathBuf,
    n: usize,
    f: impl FnOnce() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while blob_refs(&repo) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        f();
    })
}

fn pull(repo: &Repo, image: &str, o: PullOptions) -> Result<store::PullOutcome, StoreError> {
    let r: OstreeImageReference = image.parse().unwrap();
    store::pull_blocking(repo, &r, o).map(|(o, _)| o)
}

fn fsck(repo: &Repo) {
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap();
}

#[test]
fn verified_layers_survive_a_failed_pull_and_the_rerun_fetches_only_the_rest() {
    let d = scratch();
    let registry = Arc::new(std::sync::Mutex::new(
        Registry::start(RegistryOptions::default()).unwrap(),
    ));
    let image = push(
        &registry.lock().unwrap(),
        d.path(),
        "resume/img:1",
        &layers().derived,
    );
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    // Kill the registry once four layers are in.
    let r2 = Arc::clone(&registry);
    let killer = when_layers(repo.path().to_path_buf(), 4, move || {
        r2.lock().unwrap().kill()
    });
    let e = pull(&repo, &image, opts(0)).unwrap_err();
    killer.join().unwrap();
    assert!(
        matches!(e.kind(), ErrorKind::Network | ErrorKind::Proxy),
        "{e:?}"
    );
    assert!(
        store::list_images(&repo).unwrap().is_empty(),
        "no image ref"
    );
    let kept = blob_refs(repo.path());
    assert!((4..11).contains(&kept), "verified layers are kept: {kept}");
    fsck(&repo);
    // The registry comes back: the rerun fetches only what was not verified.
    registry.lock().unwrap().restart().unwrap();
    let out = pull(&repo, &image, opts(0)).unwrap();
    assert_eq!(out.layers_present, kept);
    assert_eq!(out.layers_fetched, 11 - kept);
    fsck(&repo);
    // Same merge commit as an uninterrupted pull into a fresh repository.
    let fresh = Repo::create(&d.path().join("fresh"), RepoMode::BareUser).unwrap();
    let clean = pull(&fresh, &image, opts(0)).unwrap();
    assert_eq!(clean.merge_commit, out.merge_commit);
}

#[derive(Default)]
struct CountRetries(AtomicU32);
impl ImportProgress for CountRetries {
    fn retrying(&self, _attempt: u32, _delay: Duration, _error: &StoreError) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let d = scratch();
    let registry = Arc::new(std::sync::Mutex::new(
        Registry::start(RegistryOptions::default()).unwrap(),
    ));
    let image = push(
        &registry.lock().unwrap(),
        d.path(),
        "retry/img:1",
        &layers().derived,
    );
    let repo = Repo::create(&d.path().join("repo"), RepoMode::Bare).unwrap();
    // The registry dies mid-pull and comes back 200 ms later, within the first backoff.
    let r2 = Arc::clone(&registry);
    let flaky = when_layers(repo.path().to_path_buf(), 3, move || {
        r2.lock().unwrap().kill();
        std::thread::sleep(Duration::from_millis(200));
        r2.lock().unwrap().restart().unwrap();
    });
    let counter = Arc::new(CountRetries::default());
    let mut o = opts(3);
    o.progress = Some(counter.clone());
    let out = pull(&repo, &image, o).unwrap();
    flaky.join().unwrap();
    assert!(out.attempts >= 2, "{out:?}");
    assert_eq!(counter.0.load(Ordering::Relaxed), out.attempts - 1);
    assert!(
        out.layers_present >= 3,
        "the retry kept the verified layers: {out:?}"
    );
    fsck(&repo);
    // Not found: no retry.
    let counter = Arc::new(CountRetries::default());
    let mut o = opts(3);
    o.progress = Some(counter.clone());
    let missing = format!(
        "ostree-unverified-registry:{}/retry/nothing:here",
        registry.lock().unwrap().host()
    );
    let e = pull(&repo, &missing, o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(counter.0.load(Ordering::Relaxed), 0);
}

#[test]
fn concurrent_pulls_sharing_layers_with_layer_gc_and_object_prune() {
    let d = scratch();
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let l = &layers().derived;
    let a = push(&registry, d.path(), "conc/a:1", &l[..6]);
    let b = push(&registry, d.path(), "conc/b:1", &l[3..9]);
    let repo_path = d.path().join("repo");
    Repo::create(&repo_path, RepoMode::BareUser).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Layer GC and a native object prune (both take the exclusive lock) run in a loop while
    // both pulls run.
    let gc = {
        let (stop, repo_path) = (Arc::clone(&stop), repo_path.clone());
        std::thread::spawn(move || {
            let repo = Repo::open(&repo_path).unwrap();
            let mut runs = 0;
            let mut prune = ostree_repo::PruneOptions::new();
            prune.refs_only = true;
            let no = std::sync::atomic::AtomicBool::new(false);
            while !stop.load(Ordering::Relaxed) {
                store::gc_image_layers(&repo).unwrap();
                repo.prune(&prune, &ostree_repo::NoProgress, &no).unwrap();
                runs += 1;
            }
            runs
        })
    };
    let pulls: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|image| {
            let repo_path = repo_path.clone();
            std::thread::spawn(move || {
                let repo = Repo::open(&repo_path).unwrap();
                pull(&repo, &image, opts(3)).unwrap()
            })
        })
        .collect();
    let outs: Vec<_> = pulls.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    assert!(gc.join().unwrap() > 0);
    let repo = Repo::open(&repo_path).unwrap();
    assert_eq!(store::list_images(&repo).unwrap().len(), 2);
    // Every layer of both images still has its ref (1 base + 9 distinct derived).
    assert_eq!(blob_refs(&repo_path), 10);
    fsck(&repo);
    for out in outs {
        assert!(out.merge_commit.is_some());
    }
}

#[test]
fn a_stalled_registry_times_out_and_the_retry_completes() {
    let d = scratch();
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let image = push(&registry, d.path(), "stall/img:1", &layers().derived);
    let pid = registry.pid().unwrap() as i32;
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    // Freeze the registry once two layers are in; thaw it after the stall timeout fired.
    let stall = when_layers(repo.path().to_path_buf(), 2, move || {
        let p = rustix::process::Pid::from_raw(pid).unwrap();
        rustix::process::kill_process(p, rustix::process::Signal::STOP).unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        rustix::process::kill_process(p, rustix::process::Signal::CONT).unwrap();
    });
    let counter = Arc::new(CountRetries::default());
    let mut o = opts(3);
    o.fetch.stall_timeout = Duration::from_secs(1);
    o.retry_backoff = Duration::from_millis(2000);
    o.progress = Some(counter.clone());
    let out = pull(&repo, &image, o).unwrap();
    stall.join().unwrap();
    assert!(out.attempts >= 2, "{out:?}");
    assert!(counter.0.load(Ordering::Relaxed) >= 1);
    assert!(out.layers_present >= 2, "{out:?}");
    fsck(&repo);
    drop(registry);
}

/// A pull cancelled through its interrupt flag mid-way fails as Interrupted (never retried,
/// whatever the retry budget: a cancel is not an EINTR), publishes no image ref, and keeps the
/// layers already verified; the rerun completes.
#[test]
fn a_cancelled_pull_is_interrupted_not_retried_and_resumes() {
    let d = scratch();
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let image = push(&registry, d.path(), "cancel/img:1", &layers().derived);
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = Arc::clone(&flag);
    let canceller = when_layers(repo.path().to_path_buf(), 3, move || {
        f2.store(true, Ordering::Relaxed)
    });
    let counter = Arc::new(CountRetries::default());
    let mut o = opts(5);
    o.interrupt = Some(Arc::clone(&flag));
    o.progress = Some(counter.clone());
    let e = pull(&repo, &image, o).unwrap_err();
    canceller.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Interrupted, "{e:?}");
    assert!(matches!(e, StoreError::Interrupted { .. }), "{e:?}");
    assert_eq!(
        counter.0.load(Ordering::Relaxed),
        0,
        "a cancel is not retried"
    );
    assert!(store::list_images(&repo).unwrap().is_empty());
    let kept = blob_refs(repo.path());
    assert!(kept >= 3, "{kept}");
    fsck(&repo);
    let out = pull(&repo, &image, opts(0)).unwrap();
    assert!(out.layers_present >= kept, "{out:?}");
    assert!(out.merge_commit.is_some());
    fsck(&repo);
}
