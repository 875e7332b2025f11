//! Shared set-up for the fuzz targets: one scratch repository per fuzzing process, on tmpfs when
//! there is one, so that an iteration costs a transaction, not a `Repo::create`.

use std::path::{Path, PathBuf};

use ostree_repo::{Repo, RepoMode};

/// Where scratch repositories go: `/dev/shm` (tmpfs) if present, else the system temp dir.
pub fn scratch_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A repository that lives as long as the process (the directory is removed when it exits
/// normally; libFuzzer's crash exits leave it, which is what one wants to inspect).
pub struct Scratch {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The repository inside it.
    pub repo: Repo,
}

impl Scratch {
    /// A fresh repository of `mode` named `name` in a new scratch directory.
    pub fn new(name: &str, mode: RepoMode) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ostree-fuzz-{name}-"))
            .tempdir_in(scratch_base())
            .expect("scratch directory");
        let repo = Repo::create(&dir.path().join("repo"), mode).expect("scratch repository");
        Scratch { dir, repo }
    }
}
