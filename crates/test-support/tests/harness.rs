//! Self-test of the harness against the real `ostree` CLI (needs root and the `ostree`
//! package; a missing tool fails the test).

use std::path::Path;
use std::time::Instant;

use tempfile::TempDir;
use test_support::compare::{SnapshotOptions, assert_trees_equal, snapshot};
use test_support::ostree_cli::{CommitOpts, OstreeCli, REFERENCE_COMMIT, list_object_files};
use test_support::tools::{require_tool, run};
use test_support::tree::{
    TreeOptions, generate_bench_tree, generate_tree, reference_tree, tree_stats,
};

fn tmp() -> TempDir {
    test_support::scratch("test-support-")
}

fn reference_opts() -> CommitOpts {
    CommitOpts {
        detached_metadata_strings: vec![("sig".into(), "abc".into())],
        ..CommitOpts::reference()
    }
}

#[test]
fn require_tool_reports_package() {
    assert!(require_tool("sh", "dash").is_ok());
    let e = require_tool("no-such-tool-xyz", "some-pkg")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`no-such-tool-xyz`") && e.contains("apt-get install some-pkg"),
        "{e}"
    );
}

#[test]
fn run_reports_failure() {
    let out = run(std::process::Command::new("sh").args(["-c", "echo ok"])).unwrap();
    assert_eq!(out, "ok\n");
    let e = run(std::process::Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("oops") && e.contains("exit status: 3") && e.contains("sh -c"),
        "{e}"
    );
}

#[test]
fn reference_tree_commit_checksum_all_modes() {
    let cli = OstreeCli::new().unwrap();
    let t = tmp();
    let tree = t.path().join("tree");
    reference_tree(&tree).unwrap();
    for mode in ["bare", "bare-user", "archive"] {
        let repo = t.path().join(format!("repo-{mode}"));
        cli.init(&repo, mode).unwrap();
        let csum = cli.commit(&repo, "test", &tree, &reference_opts()).unwrap();
        assert_eq!(csum, REFERENCE_COMMIT, "mode {mode}");
        assert_eq!(cli.rev_parse(&repo, "test").unwrap(), REFERENCE_COMMIT);
        assert_eq!(cli.refs(&repo).unwrap(), vec!["test".to_string()]);
        assert_eq!(cli.cat(&repo, "test", "/sub/file2").unwrap(), b"in sub\n");
        let raw = cli.show_raw(&repo, "test").unwrap();
        assert!(raw.contains("'version': <'1.0'>"), "{raw}");
        let ls = cli.ls_rxc(&repo, "test").unwrap();
        assert!(ls.contains("-04755 0 0"), "{ls}");
        assert!(ls.contains("-00640 1000 1001"), "{ls}");
        cli.fsck(&repo).unwrap().check().unwrap();
        let objs = list_object_files(&repo).unwrap();
        assert!(
            objs.contains(&format!("{REFERENCE_COMMIT}.commit")),
            "{objs:?}"
        );
        assert!(
            objs.contains(&format!("{REFERENCE_COMMIT}.commitmeta")),
            "{objs:?}"
        );
        let ext = if mode == "archive" { "filez" } else { "file" };
        assert!(
            objs.contains(&format!(
                "81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6.{ext}"
            )),
            "{objs:?}"
        );
        assert!(
            objs.contains(
                "c5c74b693dcaf6a0a8db02894283118b6b6b36229170e1a73849bb1f8b0ab317.dirtree"
            )
        );
        // 7 content + 3 dirtree + 2 dirmeta + commit + commitmeta
        assert_eq!(objs.len(), 14, "{objs:?}");
    }
    // bare-user-only forces canonical permissions.
    let repo = t.path().join("repo-buo");
    cli.init(&repo, "bare-user-only").unwrap();
    let csum = cli.commit(&repo, "test", &tree, &reference_opts()).unwrap();
    assert_eq!(
        csum,
        "7bbe76ab2fc2bbf164fb3c36882f7252812937b87d9922a7e65232bb6b7947a4"
    );
}

fn check_roundtrip(cli: &OstreeCli, src: &Path, work: &Path, mode: &str, user_mode: bool) {
    let repo = work.join(format!("repo-{mode}"));
    cli.init(&repo, mode).unwrap();
    let start = Instant::now();
    let csum = cli
        .commit(&repo, "gen", src, &CommitOpts::default())
        .unwrap();
    eprintln!("{mode}: commit {csum} took {:?}", start.elapsed());
    let co = work.join(format!("co-{mode}"));
    cli.checkout(&repo, "gen", &co, user_mode).unwrap();
    assert_trees_equal(src, &co, &SnapshotOptions::default()).unwrap();
    cli.fsck(&repo).unwrap().check().unwrap();
}

#[test]
fn generated_tree_roundtrips_through_bare() {
    let cli = OstreeCli::new().unwrap();
    let t = tmp();
    let src = t.path().join("src");
    let stats = generate_tree(&src, &TreeOptions::default()).unwrap();
    eprintln!("{stats:?}");
    assert!(
        stats.files > 40 && stats.dirs > 50 && stats.symlinks >= 8,
        "{stats:?}"
    );
    // Deterministic: same seed, same snapshot; different seed, different content.
    let src2 = t.path().join("src2");
    generate_tree(&src2, &TreeOptions::default()).unwrap();
    assert_trees_equal(&src, &src2, &SnapshotOptions::default()).unwrap();
    let src3 = t.path().join("src3");
    generate_tree(
        &src3,
        &TreeOptions {
            seed: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(assert_trees_equal(&src, &src3, &SnapshotOptions::default()).is_err());

    let snap = snapshot(&src, &SnapshotOptions::default()).unwrap();
    let get = |p: &str| {
        snap.get(Path::new(p))
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    assert_eq!(get("").mode, 0o755);
    assert_eq!(get("special/setuid").mode, 0o4755);
    assert_eq!(get("special/sticky").mode, 0o1777);
    assert_eq!(get("private").mode, 0o700);
    assert_eq!(
        (get("owners/user-link").uid, get("owners/user-link").gid),
        (1000, 1000)
    );
    assert_eq!(get("owners/setuid-user").mode, 0o4755);
    assert_eq!(get("xattrs/xlink").xattrs.len(), 1);
    let multi = &get("xattrs/multi.txt").xattrs;
    assert_eq!(multi.len(), 4, "empty value skipped: {multi:?}");
    let with_empty = snapshot(
        &src,
        &SnapshotOptions {
            skip_empty_xattr_values: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(with_empty[Path::new("xattrs/multi.txt")].xattrs.len(), 5);
    assert!(!src.join("var/tmp").exists());

    check_roundtrip(&cli, &src, t.path(), "bare", false);
}

#[test]
fn comparison_detects_differences() {
    let t = tmp();
    let a = t.path().join("a");
    let b = t.path().join("b");
    reference_tree(&a).unwrap();
    reference_tree(&b).unwrap();
    let o = SnapshotOptions::default();
    assert_trees_equal(&a, &b, &o).unwrap();
    std::fs::write(b.join("hello.txt"), b"hello World\n").unwrap();
    std::os::unix::fs::lchown(b.join("sub/file2"), Some(1), None).unwrap();
    std::fs::remove_file(b.join("link")).unwrap();
    std::os::unix::fs::symlink("elsewhere", b.join("link")).unwrap();
    std::fs::create_dir(b.join("extra")).unwrap();
    std::fs::remove_dir(b.join("emptydir")).unwrap();
    rustix::fs::setxattr(
        b.join("xat.txt"),
        "user.alpha",
        b"FIRST",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::set_permissions(
        b.join("suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let e = assert_trees_equal(&a, &b, &o).unwrap_err().to_string();
    eprintln!("{e}");
    for needle in [
        "hello.txt: content sha256",
        "sub/file2: uid 1000 vs 1",
        "link: symlink target \"hello.txt\" vs \"elsewhere\"",
        "extra: only in b",
        "emptydir: only in a",
        "xat.txt: xattr user.alpha \"first\" vs \"FIRST\"",
        "suid: mode 4755 vs 755",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
    // Masks.
    let loose = SnapshotOptions {
        ownership: false,
        xattrs: false,
        mode_mask: 0o777,
        ..o
    };
    let e = assert_trees_equal(&a, &b, &loose).unwrap_err().to_string();
    assert!(
        !e.contains("uid") && !e.contains("xattr") && !e.contains("mode"),
        "{e}"
    );
}

#[test]
fn full_tree_into_bare_user_passes_fsck() {
    let cli = OstreeCli::new().unwrap();
    let t = tmp();
    let src = t.path().join("src");
    let start = Instant::now();
    let stats = generate_tree(&src, &TreeOptions::full()).unwrap();
    eprintln!("generate full: {stats:?} in {:?}", start.elapsed());
    assert!(stats.bytes > 17 << 20 && stats.files > 2100, "{stats:?}");
    let repo = t.path().join("repo");
    cli.init(&repo, "bare-user").unwrap();
    let start = Instant::now();
    let csum = cli
        .commit(&repo, "full", &src, &CommitOpts::default())
        .unwrap();
    eprintln!(
        "bare-user commit of full tree: {csum} in {:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let f = cli.fsck(&repo).unwrap();
    eprintln!("fsck in {:?}: {}", start.elapsed(), f.stdout.trim());
    f.check().unwrap();
    // As root, a non-user-mode checkout from bare-user restores everything (by copying: modes
    // incl. setuid, owners and xattrs from `user.ostreemeta`).
    let co = t.path().join("co");
    let start = Instant::now();
    cli.checkout(&repo, "full", &co, false).unwrap();
    eprintln!("checkout in {:?}", start.elapsed());
    assert_trees_equal(&src, &co, &SnapshotOptions::default()).unwrap();
    // A user-mode (-U) checkout hardlinks the objects: their on-disk mode is
    // `(mode & 0775) | 0400` and they expose `user.ostreemeta`, so only content and the
    // 0o377 bits of files survive.
    let co_u = t.path().join("co-u");
    cli.checkout(&repo, "full", &co_u, true).unwrap();
    let opts = SnapshotOptions {
        ownership: false,
        xattrs: false,
        mode_mask: 0o377,
        ..Default::default()
    };
    assert_trees_equal(&src, &co_u, &opts).unwrap();
    let m = snapshot(&co_u, &SnapshotOptions::default()).unwrap();
    assert_eq!(m[Path::new("files/no-perms")].mode, 0o400);
    assert_eq!(m[Path::new("special/setuid")].mode, 0o755);
    let ls = cli.ls_rxc(&repo, "full").unwrap();
    assert!(ls.contains("/huge/file-2100"), "huge dir missing");
}

#[test]
fn bench_tree_is_fast_and_sized() {
    let t = tmp();
    let dir = t.path().join("bench");
    let start = Instant::now();
    let total = 64u64 << 20;
    let stats = generate_bench_tree(&dir, 2000, total, 7).unwrap();
    eprintln!("bench tree {stats:?} in {:?}", start.elapsed());
    assert_eq!(stats.files, 2000);
    assert!(stats.symlinks > 0);
    assert!(stats.bytes.abs_diff(total) < total / 100, "{stats:?}");
    assert_eq!(tree_stats(&dir).unwrap(), stats);
    let dir2 = t.path().join("bench2");
    generate_bench_tree(&dir2, 2000, total, 7).unwrap();
    assert_trees_equal(&dir, &dir2, &SnapshotOptions::default()).unwrap();
}
