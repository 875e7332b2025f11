//! The layered-image store end to end: derived and non-ostree images made in code (our base
//! commit layer plus ordinary container layers), pulled into every repository mode, the merge
//! commit checked out by the real `ostree` and compared with the tree a container runtime would
//! show; determinism, already-present pulls, state queries, and bad input.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
mod derived;
mod faults;
mod lifecycle;
mod selinux;
mod signed;
mod signed_cases;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ostree_repo::format::Checksum;
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_tar::ExportPlan;

pub static NO: AtomicBool = AtomicBool::new(false);

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-store-")
}

/// For fixtures held in a `static` (see `test_support::shared_scratch`).
pub fn shared_scratch() -> tempfile::TempDir {
    test_support::shared_scratch("oc-store-")
}

/// Writes a regular file with mode and owner (parents created 0755).
pub fn put(root: &Path, rel: &str, data: &[u8], mode: u32, uid: u32, gid: u32) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, data).unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates a directory with mode and owner (parents created 0755).
pub fn mkdir(root: &Path, rel: &str, mode: u32, uid: u32, gid: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(&p).unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Commits `tree` into a new bare-user repository at `dir/source`; returns the repo, the commit
/// and its commit layer (single-layer export, uncompressed).
pub fn commit_base(dir: &Path, tree: &Path) -> (Repo, Checksum, Vec<u8>) {
    let repo = Repo::create(&dir.join("source"), RepoMode::BareUser).unwrap();
    let mut spec = CommitSpec::new();
    spec.subject = "base".into();
    spec.timestamp = Some(1_577_836_800);
    let commit = repo
        .commit_directory(tree, None, &TreeOptions::new(), &spec, &NoProgress, &NO)
        .unwrap();
    let mut layer = Vec::new();
    ExportPlan::new(&repo, commit)
        .unwrap()
        .write_commit_layer(&mut layer, &HashSet::new())
        .unwrap();
    (repo, commit, layer)
}

/// Commits `tree` into `repo` with `subject`; returns the repo path, the commit and its commit
/// layer (single-layer export, uncompressed).
pub fn commit_base_into(repo: &Repo, tree: &Path, subject: &str) -> (PathBuf, Checksum, Vec<u8>) {
    let mut spec = CommitSpec::new();
    spec.subject = subject.into();
    spec.timestamp = Some(1_577_836_800);
    let commit = repo
        .commit_directory(tree, None, &TreeOptions::new(), &spec, &NoProgress, &NO)
        .unwrap();
    let mut layer = Vec::new();
    ExportPlan::new(repo, commit)
        .unwrap()
        .write_commit_layer(&mut layer, &HashSet::new())
        .unwrap();
    (repo.path().to_path_buf(), commit, layer)
}

/// Appends an uncompressed container layer to the single image of the OCI layout at `dir`
/// (new blob, config with the extra diff_id, manifest, index).
pub fn append_layer(dir: &Path, layer: &[u8]) {
    use sha2::Digest;
    let put_blob = |data: &[u8]| -> String {
        let d = hex::encode(sha2::Sha256::digest(data));
        std::fs::write(dir.join("blobs/sha256").join(&d), data).unwrap();
        format!("sha256:{d}")
    };
    let read = |digest: &str| -> serde_json::Value {
        let p = dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = read(&mdigest);
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    let ldigest = put_blob(layer);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::Value::from(ldigest.clone()));
    if let Some(h) = config["history"].as_array_mut() {
        h.push(serde_json::json!({"created_by": "appended layer"}));
    }
    let cblob = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = serde_json::Value::from(put_blob(&cblob));
    manifest["config"]["size"] = serde_json::Value::from(cblob.len());
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": ldigest,
            "size": layer.len(),
        }));
    let mblob = serde_json::to_vec(&manifest).unwrap();
    index["manifests"][0]["digest"] = serde_json::Value::from(put_blob(&mblob));
    index["manifests"][0]["size"] = serde_json::Value::from(mblob.len());
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}
