//! Journey tests of `ostree-container unencapsulate|info`, including the `ostree container …`
//! form and interruption.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::cli::{Cli, assert_stdout, assert_success, path_str, send_signal};
use test_support::oci::{LayerCompression, ostree_labels, write_layout};
use test_support::ostree_cli::OstreeCli;
use test_support::tree;

static NO: AtomicBool = AtomicBool::new(false);

const OC: Cli = Cli::new(env!("CARGO_BIN_EXE_ostree-container"));

fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-unencap-cli-")
}

/// For fixtures held in a `static` (see `test_support::shared_scratch`).
fn shared_scratch() -> tempfile::TempDir {
    test_support::shared_scratch("oc-unencap-cli-")
}

struct Image {
    _dir: tempfile::TempDir,
    layout: PathBuf,
    commit: String,
}

/// A chunked gzip image of a generated tree with a 40 MiB file (slow enough to interrupt).
fn image() -> &'static Image {
    static I: OnceLock<Image> = OnceLock::new();
    I.get_or_init(|| {
        let dir = shared_scratch();
        let src = dir.path().join("tree");
        tree::generate_tree(
            &src,
            &tree::TreeOptions {
                big_file_mib: 40,
                seed: 33,
                ..Default::default()
            },
        )
        .unwrap();
        let repo = Repo::create(&dir.path().join("src"), RepoMode::BareUser).unwrap();
        let mut spec = CommitSpec::new();
        spec.timestamp = Some(0);
        let commit = repo
            .commit_directory(&src, None, &TreeOptions::new(), &spec, &NoProgress, &NO)
            .unwrap();
        let plan = ostree_tar::ExportPlan::new(&repo, commit).unwrap();
        let objects: Vec<_> = plan.content_objects().copied().collect();
        let (a, b): (Vec<_>, Vec<_>) = objects.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let chunks: Vec<Vec<_>> = vec![
            a.into_iter().map(|(_, c)| *c).collect(),
            b.into_iter().map(|(_, c)| *c).collect(),
        ];
        let chunked: HashSet<_> = chunks.iter().flatten().copied().collect();
        let mut layers = vec![Vec::new()];
        plan.write_commit_layer(&mut layers[0], &chunked).unwrap();
        for c in &chunks {
            let mut t = Vec::new();
            plan.write_chunk_layer(&mut t, c).unwrap();
            layers.push(t);
        }
        let labels = ostree_labels(&commit.to_hex(), layers.last().unwrap());
        let layout = dir.path().join("image");
        write_layout(&layout, &layers, &labels, LayerCompression::Gzip).unwrap();
        Image {
            _dir: dir,
            layout,
            commit: commit.to_hex(),
        }
    })
}

fn imgref() -> String {
    format!(
        "ostree-unverified-image:oci:{}:latest",
        image().layout.display()
    )
}

fn init(path: &Path) {
    let st = OC
        .cmd()
        .args([
            "repo",
            "init",
            "--mode",
            "bare-user",
            "--repo",
            path_str(path),
        ])
        .status()
        .unwrap();
    assert!(st.success());
}

/// `unencapsulate --repo REPO [ARGS…] IMGREF`.
fn unencapsulate(repo: &Path, args: &[&str], imgref: &str) -> Output {
    OC.cmd()
        .args(["unencapsulate", "--repo", path_str(repo)])
        .args(args)
        .arg(imgref)
        .output()
        .unwrap()
}

/// Asserts the command succeeded, printing only `Imported: [REF => ]COMMIT`.
fn assert_imported(out: &Output, prefix: &str) {
    assert_stdout(out, &format!("Imported: {prefix}{}\n", image().commit));
}

#[test]
fn help_and_usage_errors() {
    for args in [
        &["unencapsulate", "--help"][..],
        &["import", "--help"],
        &["info", "--help"],
        &["container", "unencapsulate", "--help"],
    ] {
        let out = OC.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for flag in [
            "--authfile",
            "--cert-dir",
            "--insecure-skip-tls-verification",
            "--auth-anonymous",
        ] {
            assert!(text.contains(flag), "{args:?} lacks {flag}");
        }
    }
    let out = OC
        .cmd()
        .args(["unencapsulate", "--repo", "/nonexistent", "not-a-ref"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unparsable image reference is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-ref"));
}

#[test]
fn quiet_prints_only_the_result_and_progress_fd_emits_json() {
    let d = scratch();
    let repo = d.path().join("repo");
    init(&repo);
    // --quiet: exactly the result line.
    let out = unencapsulate(&repo, &["--quiet"], &imgref());
    assert_imported(&out, "");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    OstreeCli::new()
        .unwrap()
        .fsck(&repo)
        .unwrap()
        .check()
        .unwrap();

    // --progress-fd 3 into a fresh repo, with --write-ref.
    let repo2 = d.path().join("repo2");
    init(&repo2);
    let json_path = d.path().join("progress.jsonl");
    let script = format!(
        "exec 3>{} && exec {} unencapsulate --repo {} --write-ref demo --progress-fd 3 {}",
        json_path.display(),
        OC.path(),
        repo2.display(),
        imgref()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_imported(&out, "demo => ");
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&json_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"image"));
    assert_eq!(events[0]["commit"], image().commit.as_str());
    assert!(events[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(kinds[1], "layers");
    let layers = events[1]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0]["role"], "commit");
    assert_eq!(layers[1]["role"], "chunk");
    assert_eq!(kinds.iter().filter(|k| **k == "layer-done").count(), 3);
    // The last progress event of every layer reaches its size.
    for (i, l) in layers.iter().enumerate() {
        let last = events
            .iter()
            .rev()
            .find(|e| e["event"] == "progress" && e["index"] == i)
            .unwrap();
        assert_eq!(last["fetched"], l["size"], "layer {i}");
        assert_eq!(last["total"], l["size"]);
    }
    assert_eq!(kinds.last(), Some(&"done"));
    assert_eq!(events.last().unwrap()["already_present"], false);
    assert_eq!(
        OstreeCli::new().unwrap().rev_parse(&repo2, "demo").unwrap(),
        image().commit
    );

    // info names the digest and labels.
    let out = OC.cmd().args(["info", &imgref()]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(" digest: sha256:")
            && text.contains(&format!("ostree.commit: {}", image().commit)),
        "{text}"
    );
}

#[test]
fn ostree_container_external_command_form() {
    // Installed where ostree 2022.7 looks for external commands.
    let ext = Path::new("/usr/libexec/libostree/ext/ostree-container");
    std::fs::create_dir_all(ext.parent().unwrap()).unwrap();
    let backup = std::fs::read(ext).ok();
    std::fs::copy(OC.path(), ext).unwrap();
    let d = scratch();
    let repo = d.path().join("repo");
    init(&repo);
    let out = OstreeCli::new()
        .unwrap()
        .command(&[
            "container",
            "unencapsulate",
            "--quiet",
            &format!("--repo={}", repo.display()),
            &imgref(),
        ])
        .output()
        .unwrap();
    match backup {
        Some(b) => std::fs::write(ext, b).unwrap(),
        None => std::fs::remove_file(ext).unwrap(),
    }
    assert_imported(&out, "");
}

#[test]
fn killed_import_then_rerun() {
    let d = scratch();
    let repo = d.path().join("repo");
    init(&repo);
    let args = [
        "unencapsulate",
        "--quiet",
        "--write-ref",
        "x",
        "--repo",
        path_str(&repo),
    ];
    let child = OC
        .cmd()
        .args(args)
        .arg(imgref())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    test_support::cli::wait_for_staged_objects(&repo, Duration::from_secs(5));
    send_signal(&child, rustix::process::Signal::KILL);
    let out = child.wait_with_output().unwrap();
    let cli = OstreeCli::new().unwrap();
    if out.status.success() {
        // Won the race: then it must be complete.
        assert_eq!(cli.rev_parse(&repo, "x").unwrap(), image().commit);
    } else {
        assert!(
            cli.refs(&repo).unwrap().iter().all(|r| !r.starts_with('x')),
            "no ref to an incomplete commit"
        );
    }
    cli.fsck(&repo).unwrap().check().unwrap();
    let out = OC.cmd().args(args).arg(imgref()).output().unwrap();
    assert_success(&out);
    assert_eq!(cli.rev_parse(&repo, "x").unwrap(), image().commit);
    cli.fsck(&repo).unwrap().check().unwrap();
}

#[test]
fn refusal_exit_codes() {
    let d = scratch();
    let repo = d.path().join("repo");
    init(&repo);
    let plain = d.path().join("plain");
    write_layout(
        &plain,
        &[Vec::from(&[0u8; 1024][..])],
        test_support::oci::NO_LABELS,
        LayerCompression::None,
    )
    .unwrap();
    let out = unencapsulate(
        &repo,
        &[],
        &format!("ostree-unverified-image:oci:{}:latest", plain.display()),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("not an ostree container image"),
        "{err}"
    );
    let out = unencapsulate(
        &repo,
        &[],
        &format!(
            "ostree-remote-image:r:oci:{}:latest",
            image().layout.display()
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature verification"));
}
