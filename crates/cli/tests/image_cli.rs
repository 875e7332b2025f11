//! Journey tests of `ostree-container image …` (the layered-image store) and of pull progress in a
//! real 80x24 terminal.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::cli::{Cli, assert_success, path_str, run_ok};
use test_support::layer::LayerTar;
use test_support::oci::{LayerCompression, ostree_labels, write_layout};
use test_support::ostree_cli::OstreeCli;

static NO: AtomicBool = AtomicBool::new(false);

const OC: Cli = Cli::new(env!("CARGO_BIN_EXE_ostree-container"));

fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-image-cli-")
}

/// For fixtures held in a `static` (see `test_support::shared_scratch`).
fn shared_scratch() -> tempfile::TempDir {
    test_support::shared_scratch("oc-image-cli-")
}

struct Image {
    _dir: tempfile::TempDir,
    layout: PathBuf,
}

/// Base commit layer of a small generated tree, plus `derived` container layers.
fn derived_image(dir: &Path, name: &str, derived: Vec<Vec<u8>>) -> PathBuf {
    let src = dir.join(format!("{name}-tree"));
    test_support::tree::generate_tree(&src, &test_support::tree::TreeOptions::default()).unwrap();
    let repo = Repo::create(&dir.join(format!("{name}-src")), RepoMode::BareUser).unwrap();
    let mut spec = CommitSpec::new();
    spec.timestamp = Some(0);
    let commit = repo
        .commit_directory(&src, None, &TreeOptions::new(), &spec, &NoProgress, &NO)
        .unwrap();
    let mut base = Vec::new();
    ostree_tar::ExportPlan::new(&repo, commit)
        .unwrap()
        .write_commit_layer(&mut base, &HashSet::new())
        .unwrap();
    let labels = ostree_labels(&commit.to_hex(), &base);
    let layout = dir.join(name);
    let mut layers = vec![base];
    layers.extend(derived);
    write_layout(&layout, &layers, &labels, LayerCompression::Gzip).unwrap();
    layout
}

fn image() -> &'static Image {
    static I: OnceLock<Image> = OnceLock::new();
    I.get_or_init(|| {
        let dir = shared_scratch();
        let l1 = LayerTar::new()
            .dir("usr/", 0o755, 0, 0)
            .file("usr/bin/added", b"added", 0o755, 0, 0)
            .dir("opt/", 0o755, 0, 0)
            .file("opt/dropped", b"x", 0o644, 0, 0)
            .finish();
        let layout = derived_image(dir.path(), "img", vec![l1]);
        Image { _dir: dir, layout }
    })
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn pull_list_history_metadata_remove() {
    let img = image();
    let d = scratch();
    let repo = d.path().join("repo");
    run_ok(OC.cmd().args([
        "repo",
        "init",
        "--repo",
        path_str(&repo),
        "--mode",
        "bare-user",
    ]));
    let imgref = format!(
        "ostree-unverified-image:oci:{}:latest",
        img.layout.display()
    );
    let plain = format!("oci:{}:latest", img.layout.display());
    let out = OC
        .cmd()
        .args(["image", "pull", path_str(&repo), &imgref])
        .output()
        .unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Image contains non-ostree compatible file paths: opt: 2"),
        "{stderr}"
    );
    let out = String::from_utf8(out.stdout).unwrap();
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{out}");
    assert!(
        l[0].starts_with("layers already present: 0; layers needed: 2 ("),
        "{out}"
    );
    let merge = l[1]
        .strip_prefix(&format!("Wrote: {imgref} => "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(merge.len(), 64);
    let o = OstreeCli::new().unwrap();
    o.fsck(&repo).unwrap().check().unwrap();
    assert_eq!(
        o.cat(&repo, merge, "/usr/bin/added").unwrap(),
        b"added".to_vec()
    );
    // Pulled again, through the `ostree container` external-command form, quietly.
    let out = run_ok(OC.cmd().args([
        "container",
        "image",
        "pull",
        "--quiet",
        path_str(&repo),
        &imgref,
    ]));
    assert_eq!(out, format!("No changes in {imgref} => {merge}\n"));
    // Queries.
    let out = run_ok(OC.cmd().args(["image", "list", "--repo", path_str(&repo)]));
    assert_eq!(out, format!("{plain}\n"));
    let out = run_ok(
        OC.cmd()
            .args(["image", "history", "--repo", path_str(&repo), &plain]),
    );
    let l = lines(&out);
    assert_eq!(l.len(), 3, "{out}");
    assert!(
        l[0].starts_with("ID") && l[0].ends_with("CREATED BY"),
        "{out}"
    );
    let out = run_ok(
        OC.cmd()
            .args(["image", "metadata", "--repo", path_str(&repo), &plain]),
    );
    let manifest: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    let out = run_ok(OC.cmd().args([
        "image",
        "metadata",
        "--repo",
        path_str(&repo),
        &plain,
        "--config",
    ]));
    let config: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // Remove, then the image is gone; removing it again is an error.
    let out = run_ok(
        OC.cmd()
            .args(["image", "remove", "--repo", path_str(&repo), &plain]),
    );
    // Its two layers went with it (no other image uses them).
    assert_eq!(out, "Removed images: 1 layers: 2\n");
    assert_eq!(
        run_ok(OC.cmd().args(["image", "list", "--repo", path_str(&repo)])),
        ""
    );
    let out = OC
        .cmd()
        .args(["image", "remove", "--repo", path_str(&repo), &plain])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image"));
    // The objects go with a native prune; the real ostree then finds nothing more to delete.
    let out = run_ok(OC.cmd().args([
        "image",
        "prune-layers",
        "--repo",
        path_str(&repo),
        "--and-objects",
    ]));
    let l = lines(&out);
    assert_eq!(l[0], "Removed layers: 0", "{out}");
    assert!(
        l[1].starts_with("Deleted ") && !l[1].starts_with("Deleted 0 "),
        "{out}"
    );
    let o = OstreeCli::new().unwrap();
    let again = run_ok(&mut o.command(&[
        "prune",
        "--refs-only",
        &format!("--repo={}", repo.display()),
    ]));
    assert!(again.contains("No unreachable objects"), "{again}");
    o.fsck(&repo).unwrap().check().unwrap();
}

/// A process as `/proc` shows it.
struct Process {
    pid: u32,
    ppid: Option<u32>,
    args: Vec<Vec<u8>>,
}

impl Process {
    fn is_proxy_with(&self, arg: &str) -> bool {
        let has = |a: &[u8]| self.args.iter().any(|x| x == a);
        has(b"experimental-image-proxy") && has(arg.as_bytes())
    }
}

/// Process `pid` as `/proc` shows it; `None` if it is gone or a zombie.
fn process(pid: u32) -> Option<Process> {
    let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
    // "pid (comm) state ppid ...": the comm may hold spaces, so split after its ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    if fields.next() == Some("Z") {
        return None;
    }
    Some(Process {
        pid,
        ppid: fields.next().and_then(|p| p.parse().ok()),
        args: cmdline.split(|b| *b == 0).map(<[u8]>::to_vec).collect(),
    })
}

/// The processes running now.
fn processes() -> Vec<Process> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(process)
        .collect()
}

/// Pids of image proxies whose command line has `arg`.
fn skopeo_with_arg(arg: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.is_proxy_with(arg))
        .map(|p| p.pid)
        .collect()
}

#[test]
fn killed_pull_then_rerun_fetches_only_the_rest() {
    let d = scratch();
    let mut rng = test_support::tree::Rng::new(8);
    let layers: Vec<Vec<u8>> = (0..12)
        .map(|i| {
            LayerTar::new()
                .file(&format!("usr/share/k{i}"), &rng.bytes(3 << 20), 0o644, 0, 0)
                .finish()
        })
        .collect();
    let layout = derived_image(d.path(), "kill", layers);
    let repo = d.path().join("repo");
    run_ok(OC.cmd().args([
        "repo",
        "init",
        "--repo",
        path_str(&repo),
        "--mode",
        "bare-user",
    ]));
    let imgref = format!("ostree-unverified-image:oci:{}:latest", layout.display());
    // `--policy` makes skopeo a custom command (not the proxy crate's default), and names the
    // skopeo of this pull uniquely among the processes of the machine.
    let policy = d.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let mut child = OC
        .cmd()
        .args([
            "image",
            "pull",
            "--quiet",
            "--layer-concurrency",
            "1",
            "--policy",
            path_str(&policy),
            path_str(&repo),
            &imgref,
        ])
        .spawn()
        .unwrap();
    let blobs = repo.join("refs/heads/ostree/container/blob");
    // Layer refs (not the temporary files refs are written through).
    let layer_refs = || {
        std::fs::read_dir(&blobs)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("sha256_"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer_refs() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        !skopeo_with_arg(path_str(&policy)).is_empty(),
        "the pull's skopeo is running"
    );
    test_support::cli::send_signal(&child, rustix::process::Signal::KILL);
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before it finished");
    // Its skopeo dies with it (parent-death signal), within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !skopeo_with_arg(path_str(&policy)).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = skopeo_with_arg(path_str(&policy));
    assert!(
        left.is_empty(),
        "skopeo outlived the killed pull: pids {left:?}"
    );
    let kept = layer_refs();
    assert!(kept >= 3, "{kept}");
    assert_eq!(
        run_ok(OC.cmd().args(["image", "list", "--repo", path_str(&repo)])),
        "",
        "no image ref after a kill"
    );
    let out = run_ok(OC.cmd().args(["image", "pull", path_str(&repo), &imgref]));
    // The kill may land after the last layer (then only the image ref was missing).
    if kept < 13 {
        assert!(
            out.starts_with(&format!(
                "layers already present: {kept}; layers needed: {} (",
                13 - kept
            )),
            "{out}"
        );
    }
    assert!(out.contains("Wrote: "), "{out}");
    OstreeCli::new()
        .unwrap()
        .fsck(&repo)
        .unwrap()
        .check()
        .unwrap();
}

#[test]
fn progress_fd_reports_derived_layers() {
    let img = image();
    let d = scratch();
    let repo = d.path().join("repo");
    run_ok(
        OC.cmd()
            .args(["repo", "init", "--repo", path_str(&repo), "--mode", "bare"]),
    );
    let log = d.path().join("progress.jsonl");
    let script = format!(
        "exec 3>{} && exec {} image pull --quiet --progress-fd 3 {} ostree-unverified-image:oci:{}:latest",
        log.display(),
        OC.path(),
        repo.display(),
        img.layout.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_success(&out);
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let layers = events.iter().find(|e| e["event"] == "layers").unwrap();
    let roles: Vec<&str> = layers["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["commit", "derived"]);
    assert_eq!(layers["present"], 0);
    assert_eq!(
        events.iter().filter(|e| e["event"] == "layer-done").count(),
        2
    );
    assert_eq!(events.last().unwrap()["event"], "done");
}

#[test]
fn progress_fits_an_80x24_terminal() {
    let d = scratch();
    // Many derived layers with incompressible content, so the pull runs for a few seconds.
    let mut rng = test_support::tree::Rng::new(5);
    let layers: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            LayerTar::new()
                .file(
                    &format!("usr/share/blob{i}"),
                    &rng.bytes(2 << 20),
                    0o644,
                    0,
                    0,
                )
                .finish()
        })
        .collect();
    let layout = derived_image(d.path(), "many", layers);
    let repo = d.path().join("repo");
    run_ok(OC.cmd().args([
        "repo",
        "init",
        "--repo",
        path_str(&repo),
        "--mode",
        "bare-user",
    ]));
    let session = format!("oc-progress-{}", std::process::id());
    let cmd = format!(
        "{} image pull --layer-concurrency 2 {} ostree-unverified-image:oci:{}:latest; echo EXIT=$?; sleep 30",
        OC.path(),
        repo.display(),
        layout.display()
    );
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux (Debian package tmux) is required")
    };
    assert_success(&tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "80",
        "-y",
        "24",
        &cmd,
    ]));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut saw_bars = false;
    let mut final_screen = String::new();
    while Instant::now() < deadline {
        let out = tmux(&["capture-pane", "-p", "-t", &session]);
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in screen.lines() {
            assert!(line.chars().count() <= 80, "line wider than 80: {line:?}");
        }
        let bar_lines = screen.lines().filter(|l| l.contains("derived ")).count();
        // In flight: the fetch concurrency, plus one whose bytes are in while it is finished.
        assert!(bar_lines <= 3, "more bars than layers in flight:\n{screen}");
        if screen.contains("/41]") && bar_lines > 0 {
            saw_bars = true;
        }
        if screen.contains("EXIT=") {
            final_screen = screen;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = tmux(&["kill-session", "-t", &session]);
    assert!(
        final_screen.contains("EXIT=0"),
        "pull failed or hung:\n{final_screen}"
    );
    assert!(
        final_screen.contains("layers already present: 0; layers needed: 41"),
        "{final_screen}"
    );
    assert!(final_screen.contains("Wrote: "), "{final_screen}");
    assert!(saw_bars, "never saw the overall line with in-flight bars");
}

#[test]
fn update_check_diff_and_compare() {
    let d = scratch();
    let layer = |name: &str| {
        LayerTar::new()
            .dir("usr/", 0o755, 0, 0)
            .file(&format!("usr/share/{name}"), name.as_bytes(), 0o644, 0, 0)
            .finish()
    };
    // v1 and v2 share the base (same generated tree) and the first derived layer.
    let v1 = derived_image(d.path(), "v1", vec![layer("one")]);
    let v2 = derived_image(d.path(), "v2", vec![layer("one"), layer("two")]);
    let repo = d.path().join("repo");
    run_ok(OC.cmd().args([
        "repo",
        "init",
        "--repo",
        path_str(&repo),
        "--mode",
        "bare-user",
    ]));
    // The image the user tracks lives at one path: v1 first.
    let tracked = d.path().join("tracked");
    let copy = |from: &Path| {
        let _ = std::fs::remove_dir_all(&tracked);
        let st = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(&tracked)
            .status()
            .unwrap();
        assert!(st.success());
    };
    copy(&v1);
    let imgref = format!("ostree-unverified-image:oci:{}:latest", tracked.display());
    let plain = format!("oci:{}:latest", tracked.display());
    run_ok(
        OC.cmd()
            .args(["image", "pull", "--quiet", path_str(&repo), &imgref]),
    );

    // compare: v1 -> v2 adds one layer.
    let out = run_ok(OC.cmd().args([
        "compare",
        &format!("ostree-unverified-image:oci:{}:latest", v1.display()),
        &format!("ostree-unverified-image:oci:{}:latest", v2.display()),
    ]));
    let l = lines(&out);
    assert!(l[0].starts_with("Total new layers: 3 "), "{out}");
    assert!(l[1].starts_with("Removed layers:   0 "), "{out}");
    assert!(l[2].starts_with("Added layers:     1 "), "{out}");

    // The image is updated in place; a check writes the new manifest (path relative to the
    // working directory) and records it, fetching nothing.
    copy(&v2);
    let out = run_ok(OC.cmd().current_dir(d.path()).args([
        "image",
        "pull",
        "--check",
        "new.json",
        path_str(&repo),
        &imgref,
    ]));
    assert!(
        out.starts_with(&format!("Update available for {imgref}: sha256:")),
        "{out}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("new.json")).unwrap()).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    let cached = run_ok(OC.cmd().args([
        "image",
        "metadata",
        "--repo",
        path_str(&repo),
        &plain,
        "--cached-update",
    ]));
    let cached: serde_json::Value = serde_json::from_str(&cached).unwrap();
    assert_eq!(cached, manifest);
    run_ok(OC.cmd().args([
        "image",
        "clear-cached-update",
        "--repo",
        path_str(&repo),
        &plain,
    ]));
    let out = OC
        .cmd()
        .args([
            "image",
            "metadata",
            "--repo",
            path_str(&repo),
            &plain,
            "--cached-update",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // The pull itself prints the manifest diff, then fetches only the new layer.
    let out = run_ok(OC.cmd().args(["image", "pull", path_str(&repo), &imgref]));
    let l = lines(&out);
    assert!(l[0].starts_with("Total new layers: 3 "), "{out}");
    assert!(l[1].starts_with("Removed layers:   0 "), "{out}");
    assert!(l[2].starts_with("Added layers:     1 "), "{out}");
    assert!(
        l[3].starts_with("layers already present: 2; layers needed: 1 ("),
        "{out}"
    );
    assert!(l[4].starts_with(&format!("Wrote: {imgref} => ")), "{out}");
}

/// A pull killed while its skopeo waits on a frozen registry (blocked in a network read, so it
/// would not notice our death by itself) leaves no skopeo behind: with the default skopeo and
/// with a custom command (`--policy` makes one).
#[test]
fn killed_pull_leaves_no_skopeo_behind() {
    use test_support::registry::{Registry, RegistryOptions};
    let d = scratch();
    let mut rng = test_support::tree::Rng::new(9);
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            LayerTar::new()
                .file(&format!("usr/share/s{i}"), &rng.bytes(8 << 20), 0o644, 0, 0)
                .finish()
        })
        .collect();
    let layout = derived_image(d.path(), "stall", layers);
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let remote = format!("docker://{}/stall/img:1", registry.host());
    test_support::skopeo::skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &remote,
        &["--dest-tls-verify=false"],
    )
    .unwrap();
    let pid = rustix::process::Pid::from_raw(registry.pid().unwrap() as i32).unwrap();
    let policy = d.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    for custom in [false, true] {
        let repo = d.path().join(format!("repo-{custom}"));
        run_ok(OC.cmd().args([
            "repo",
            "init",
            "--repo",
            path_str(&repo),
            "--mode",
            "bare-user",
        ]));
        // The repository path names this pull's skopeo: it is not on skopeo's command line, so
        // find skopeo as the child of our pull instead.
        let mut cmd = OC.cmd();
        cmd.args([
            "image",
            "pull",
            "--quiet",
            "--insecure-skip-tls-verification",
        ]);
        if custom {
            cmd.args(["--policy", path_str(&policy)]);
        }
        cmd.args([
            path_str(&repo),
            &format!("ostree-unverified-registry:{}/stall/img:1", registry.host()),
        ]);
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut skopeo = Vec::new();
        while skopeo.is_empty() && Instant::now() < deadline {
            skopeo = children_running(child.id(), "experimental-image-proxy");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(skopeo.len(), 1, "the pull's skopeo (custom: {custom})");
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        test_support::cli::send_signal(&child, rustix::process::Signal::KILL);
        let _ = child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        while alive(skopeo[0]) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let survived = alive(skopeo[0]);
        rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
        assert!(
            !survived,
            "skopeo {} outlived the killed pull by a second (custom command: {custom})",
            skopeo[0]
        );
    }
    drop(registry);
}

/// Pids of the children of `parent` whose command line contains the argument `arg`.
fn children_running(parent: u32, arg: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == Some(parent) && p.args.iter().any(|a| a == arg.as_bytes()))
        .map(|p| p.pid)
        .collect()
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    process(pid).is_some()
}
