//! Against today's container tools (Debian 13's skopeo 1.18, podman 5.4, ostree 2025.2, and a
//! Docker daemon), set up by `test_support::modern`: pulls from `containers-storage:` and
//! `docker-daemon:`, encapsulate to them, podman's acceptance of our images, podman-built
//! derived images, ostree 2025.2 as a second oracle, and the proxy protocol skopeo 1.18 speaks.

// Not every shared helper is used here.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod derived;
mod encapsulate_to;
mod ostree2025;
mod podman_accepts;
mod protocol;
mod pulls;
mod signed;
mod signed_registry;
mod store_podman;
mod store_selinux;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use common::{anon, generated_source, import_into};
use ostree_container::FetchConfig;
use ostree_container::fetch::SkopeoCommand;
use ostree_repo::format::Checksum;
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_tar::ExportPlan;
use test_support::modern::Debian13;
use test_support::oci::{LayerCompression, ostree_labels, write_layout};
use test_support::ostree_cli::OstreeCli;

pub static NO: AtomicBool = AtomicBool::new(false);

pub const MODES: [RepoMode; 3] = [RepoMode::Bare, RepoMode::BareUser, RepoMode::Archive];

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-modern-")
}

pub fn d13() -> &'static Debian13 {
    Debian13::get()
}

/// Anonymous, through skopeo 1.18.
pub fn modern() -> FetchConfig {
    let mut c = anon();
    c.skopeo = Some(SkopeoCommand::new(d13().skopeo_path()));
    c
}

/// A committed tree and images of it (as in the unencapsulate tests).
pub struct Fixture {
    /// `/var/tmp/oc-modern-fixture`: a fixed path (emptied first) because a static is never
    /// dropped; the process-wide lock of [`Debian13::get`] keeps other test processes out.
    pub dir: PathBuf,
    pub repo: Repo,
    pub commit: Checksum,
    /// `ostree checkout` (2022.7) of the commit.
    pub checkout: PathBuf,
    /// Single-layer OCI layout (uncompressed).
    pub single: PathBuf,
    /// Commit layer + 3 chunk layers (gzip).
    pub chunked: PathBuf,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        d13();
        let dir = PathBuf::from("/var/tmp/oc-modern-fixture");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir(&dir).unwrap();
        let (src, repo) = generated_source(&dir, 2, 77);
        let mut spec = CommitSpec::new();
        spec.subject = "modern fixture".into();
        spec.timestamp = Some(1_577_836_800);
        let commit = repo
            .commit_directory(
                &src,
                Some("fixture"),
                &TreeOptions::new(),
                &spec,
                &NoProgress,
                &NO,
            )
            .unwrap();
        let checkout = dir.join("checkout");
        OstreeCli::new()
            .unwrap()
            .checkout(repo.path(), &commit.to_hex(), &checkout, false)
            .unwrap();
        let plan = ExportPlan::new(&repo, commit).unwrap();

        let mut layer = Vec::new();
        plan.write_commit_layer(&mut layer, &HashSet::new())
            .unwrap();
        let single = dir.join("single");
        let labels = ostree_labels(&commit.to_hex(), &layer);
        write_layout(&single, &[layer], &labels, LayerCompression::None).unwrap();

        let objects: Vec<Checksum> = plan.content_objects().copied().collect();
        let chunks: Vec<Vec<Checksum>> = (0..3)
            .map(|i| objects.iter().copied().skip(i).step_by(4).collect())
            .collect();
        let chunked_set: HashSet<Checksum> = chunks.iter().flatten().copied().collect();
        let mut layers = vec![Vec::new()];
        plan.write_commit_layer(&mut layers[0], &chunked_set)
            .unwrap();
        for c in &chunks {
            let mut t = Vec::new();
            plan.write_chunk_layer(&mut t, c).unwrap();
            layers.push(t);
        }
        let chunked = dir.join("chunked");
        let labels = ostree_labels(&commit.to_hex(), layers.last().unwrap());
        write_layout(&chunked, &layers, &labels, LayerCompression::Gzip).unwrap();
        drop(plan);
        Fixture {
            dir,
            repo,
            commit,
            checkout,
            single,
            chunked,
        }
    })
}

/// Imports `image` with skopeo 1.18 into a new repository of `mode` under `dir` and checks:
/// the commit is `commit`, both ostree versions' fsck pass, the checkout equals `checkout`.
pub fn import_check(image: &str, mode: RepoMode, dir: &Path, commit: &Checksum, checkout: &Path) {
    let (repo, import) = import_into(image, mode, modern(), dir);
    assert_eq!(&import.ostree_commit, commit, "{image} into {mode}");
    assert!(!import.already_present, "{image} into {mode}");
    let co = dir.join(format!("co-{}", mode.name()));
    OstreeCli::new()
        .unwrap()
        .check_import(repo.path(), "imported", &co, checkout)
        .unwrap_or_else(|e| panic!("{image} into {mode}: {e}"));
    d13()
        .ostree()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("ostree 2025.2 on {image} into {mode}: {e}"));
}

/// Running the setup again changes nothing: every mount exists once, the wrappers run.
#[test]
fn setup_is_idempotent() {
    let root = d13().root().to_path_buf();
    let mounts = || -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut v: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&root))
            // A Docker test running meanwhile binds its socket there.
            .filter(|m| !Path::new(m).starts_with(root.join("run")))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let before = mounts();
    for sub in ["", "/proc", "/dev", "/sys", "/var/tmp"] {
        let p = format!("{}{sub}", root.display());
        assert_eq!(
            before.iter().filter(|m| **m == p).count(),
            1,
            "{p}: {before:?}"
        );
    }
    for _ in 0..2 {
        test_support::tools::run(
            std::process::Command::new("bash").arg(test_support::modern::setup_script()),
        )
        .unwrap();
    }
    assert_eq!(mounts(), before);
    assert!(
        d13()
            .skopeo(&["--version"])
            .starts_with("skopeo version 1.18")
    );
}
