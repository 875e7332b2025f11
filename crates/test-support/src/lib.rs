//! Shared test harness for the ostree-container workspace.
//!
//! Tests run against the real tools (`ostree`, `skopeo`, `docker-registry`); a missing tool is a
//! test failure with a message naming the Debian package, never a silent pass.

pub mod cli;
pub mod compare;
pub mod layer;
pub mod modern;
pub mod oci;
pub mod ostree_cli;
pub mod registry;
pub mod selinux;
pub mod skopeo;
pub mod tools;
pub mod tree;

/// A scratch directory under /var/tmp: a disk filesystem with user xattrs, which bare-user
/// repositories need (a tmpfs `/tmp` may lack them).
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// Every entry under `dir` that is not a directory (symlinks not followed), sorted; empty if
/// `dir` does not exist.
pub fn files_under(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path());
            }
        }
    }
    out
}

/// A scratch directory for a fixture held in a `static`. Statics are never dropped, so a plain
/// [`scratch`] there outlives every test run (each run left one such directory, 117 MB for
/// some, in /var/tmp). This one is named after the process, and those left by processes that
/// have exited are removed first: at most one per test binary stays between runs.
pub fn shared_scratch(prefix: &str) -> tempfile::TempDir {
    let base = std::path::Path::new("/var/tmp");
    let tag = format!("{prefix}shared-");
    let me = std::process::id();
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(&tag))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && pid != me
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{tag}{me}-"))
        .tempdir_in(base)
        .unwrap()
}
