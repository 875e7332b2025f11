//! `ostree-container tar export|import` end to end, with the `ostree` CLI as oracle.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use test_support::cli::{Cli, assert_stdout, assert_success};
use test_support::ostree_cli::{CommitOpts, OstreeCli};

const OC: Cli = Cli::new(env!("CARGO_BIN_EXE_ostree-container"));

/// A bare repo with the reference tree on branch `test`; returns the commit.
fn source(base: &Path) -> String {
    let o = OstreeCli::new().unwrap();
    let tree = base.join("tree");
    test_support::tree::reference_tree(&tree).unwrap();
    o.init(&base.join("src"), "bare").unwrap();
    let opts = CommitOpts {
        detached_metadata_strings: vec![("sig".into(), "abc".into())],
        ..CommitOpts::reference()
    };
    o.commit(&base.join("src"), "test", &tree, &opts).unwrap()
}

/// `tar export [FLAGS…] --repo REPO`, to finish with the rev and output.
fn export(repo: &Path, flags: &[&str]) -> Command {
    let mut c = OC.cmd();
    c.args(["tar", "export"])
        .args(flags)
        .arg("--repo")
        .arg(repo);
    c
}

/// `tar import --repo REPO`, to finish with the input.
fn import(repo: &Path) -> Command {
    let mut c = OC.cmd();
    c.args(["tar", "import", "--repo"]).arg(repo);
    c
}

#[test]
fn export_and_import_round_trip() {
    let base = test_support::scratch("ostree-tar-cli-");
    let b = base.path();
    let o = OstreeCli::new().unwrap();
    let commit = source(b);
    let src = b.join("src");

    // Export to stdout and to a file (with the compatibility flag) give the same bytes.
    let out = export(&src, &[]).arg("test").output().unwrap();
    assert_success(&out);
    let file = b.join("x.tar");
    let st = export(&src, &["--format-version", "1"])
        .arg("--output")
        .arg(&file)
        .arg(&commit)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&file).unwrap() == out.stdout);

    // Import from a file.
    o.init(&b.join("d1"), "bare-user").unwrap();
    let out = import(&b.join("d1")).arg(&file).output().unwrap();
    assert_stdout(&out, &format!("Imported: {commit}\n"));
    o.fsck(&b.join("d1")).unwrap().check().unwrap();

    // Import from stdin.
    o.init(&b.join("d2"), "archive").unwrap();
    let mut child = import(&b.join("d2"))
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
    assert_stdout(&out, &format!("Imported: {commit}\n"));
    o.fsck(&b.join("d2")).unwrap().check().unwrap();
}

#[test]
fn bad_input_and_arguments_fail() {
    let base = test_support::scratch("ostree-tar-cli-");
    let b = base.path();
    let o = OstreeCli::new().unwrap();
    source(b);
    let src = b.join("src");

    // Only format version 1 exists.
    let out = export(&src, &["--format-version", "2"])
        .arg("test")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());

    // Unknown rev.
    let out = export(&src, &[]).arg("nope").output().unwrap();
    assert!(!out.status.success());

    // A truncated stream: non-zero exit, the error kind named, nothing published.
    let full = export(&src, &[]).arg("test").output().unwrap().stdout;
    let cut = b.join("cut.tar");
    std::fs::write(&cut, &full[..full.len() / 2 + 100]).unwrap();
    o.init(&b.join("d"), "bare").unwrap();
    let out = import(&b.join("d")).arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Truncated"), "{err}");
    o.fsck(&b.join("d")).unwrap().check().unwrap();

    // Not a tar at all.
    let out = import(&b.join("d")).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// bare-user is the mode for unprivileged writers. As uid 65534, an import of a generated tree
/// (read-only, unreadable, setuid and non-root-owned files among others) stores every object:
/// `user.ostreemeta` is set before the mode that would forbid an unprivileged writer to set it.
#[test]
fn bare_user_import_as_unprivileged_user() {
    use std::os::unix::fs::PermissionsExt;
    let base = test_support::scratch("ostree-tar-cli-");
    let b = base.path();
    std::fs::set_permissions(b, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = OstreeCli::new().unwrap();
    let tree = b.join("tree");
    test_support::tree::generate_tree(&tree, &Default::default()).unwrap();
    o.init(&b.join("src"), "bare").unwrap();
    let commit = o
        .commit(&b.join("src"), "test", &tree, &CommitOpts::reference())
        .unwrap();
    let file = b.join("x.tar");
    assert!(
        export(&b.join("src"), &[])
            .arg("--output")
            .arg(&file)
            .arg(&commit)
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dst = b.join("dst");
    o.init(&dst, "bare-user").unwrap();
    let st = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success());

    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(OC.path())
        .args(["tar", "import", "--repo"])
        .arg(&dst)
        .arg(&file)
        .output()
        .unwrap();
    assert_stdout(&out, &format!("Imported: {commit}\n"));
    o.fsck(&dst).unwrap().check().unwrap();
    assert_eq!(
        o.ls_rxc(&dst, &commit).unwrap(),
        o.ls_rxc(&b.join("src"), &commit).unwrap()
    );
}
