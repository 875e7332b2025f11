//! `ostree-container tar export|import` end to end, with the `ostree` CLI as oracle.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use test_support::ostree_cli::{CommitOpts, OstreeCli};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ostree-container"))
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ostree-tar-cli-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// A bare repo with the reference tree on branch `test`; returns the commit.
fn source(base: &Path) -> String {
    let o = OstreeCli::new().unwrap();
    let tree = base.join("tree");
    test_support::tree::reference_tree(&tree).unwrap();
    o.init(&base.join("src"), "bare").unwrap();
    let opts = CommitOpts {
        subject: Some("subj".into()),
        body: Some("body".into()),
        timestamp: Some("2020-01-01T00:00:00Z".into()),
        metadata_strings: vec![("version".into(), "1.0".into())],
        detached_metadata_strings: vec![("sig".into(), "abc".into())],
        ..Default::default()
    };
    o.commit(&base.join("src"), "test", &tree, &opts).unwrap()
}

#[test]
fn export_and_import_round_trip() {
    let base = scratch();
    let b = base.path();
    let o = OstreeCli::new().unwrap();
    let commit = source(b);
    let src = b.join("src");

    // Export to stdout and to a file (with the compatibility flag) give the same bytes.
    let out = bin()
        .args(["tar", "export", "--repo"])
        .arg(&src)
        .arg("test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = b.join("x.tar");
    let st = bin()
        .args(["tar", "export", "--format-version", "1", "--repo"])
        .arg(&src)
        .arg("--output")
        .arg(&file)
        .arg(&commit)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&file).unwrap() == out.stdout);

    // Import from a file.
    o.init(&b.join("d1"), "bare-user").unwrap();
    let out = bin()
        .args(["tar", "import", "--repo"])
        .arg(b.join("d1"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("Imported: {commit}\n")
    );
    o.fsck(&b.join("d1")).unwrap().check().unwrap();

    // Import from stdin.
    o.init(&b.join("d2"), "archive").unwrap();
    let mut child = bin()
        .args(["tar", "import", "--repo"])
        .arg(b.join("d2"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&file).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("Imported: {commit}\n")
    );
    o.fsck(&b.join("d2")).unwrap().check().unwrap();
}

#[test]
fn bad_input_and_arguments_fail() {
    let base = scratch();
    let b = base.path();
    let o = OstreeCli::new().unwrap();
    source(b);
    let src = b.join("src");

    // Only format version 1 exists.
    let out = bin()
        .args(["tar", "export", "--format-version", "2", "--repo"])
        .arg(&src)
        .arg("test")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());

    // Unknown rev.
    let out = bin()
        .args(["tar", "export", "--repo"])
        .arg(&src)
        .arg("nope")
        .output()
        .unwrap();
    assert!(!out.status.success());

    // A truncated stream: non-zero exit, the error kind named, nothing published.
    let full = bin()
        .args(["tar", "export", "--repo"])
        .arg(&src)
        .arg("test")
        .output()
        .unwrap()
        .stdout;
    let cut = b.join("cut.tar");
    std::fs::write(&cut, &full[..full.len() / 2 + 100]).unwrap();
    o.init(&b.join("d"), "bare").unwrap();
    let out = bin()
        .args(["tar", "import", "--repo"])
        .arg(b.join("d"))
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Truncated"), "{err}");
    o.fsck(&b.join("d")).unwrap().check().unwrap();

    // Not a tar at all.
    let out = bin()
        .args(["tar", "import", "--repo"])
        .arg(b.join("d"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
