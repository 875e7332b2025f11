//! Policy loading on damaged input, and the relabel of a stored tree.

use std::path::Path;

use ostree_selinux::SePolicy;
use proptest::prelude::*;

/// A minimal policy root at `dir` with `file_contexts` text `fc`.
fn write_policy(dir: &Path, fc: &[u8]) {
    let p = dir.join("usr/etc/selinux");
    std::fs::create_dir_all(p.join("t/contexts/files")).unwrap();
    std::fs::create_dir_all(p.join("t/policy")).unwrap();
    std::fs::write(p.join("config"), "SELINUX=enforcing\nSELINUXTYPE=t\n").unwrap();
    std::fs::write(p.join("t/policy/policy.33"), b"not a real policy").unwrap();
    std::fs::write(p.join("t/contexts/files/file_contexts"), fc).unwrap();
}

const FC: &str = "/.*\tsystem_u:object_r:default_t:s0
/\t-d\tsystem_u:object_r:root_t:s0
/usr(/.*)?\tsystem_u:object_r:usr_t:s0
/usr/bin(/.*)?\tsystem_u:object_r:bin_t:s0
/usr/bin/none\t<<none>>
/etc/shadow.*\t--\tsystem_u:object_r:shadow_t:s0
/usr/lib/[^/]+\\.so(\\.[0-9]+)*\t--\tsystem_u:object_r:lib_t:s0
/usr/lib/x\t-l\tsystem_u:object_r:link_t:s0
";

#[test]
fn lookups_follow_file_type_none_and_order() {
    let dir = test_support::scratch("oc-selinux-fc-");
    write_policy(dir.path(), FC.as_bytes());
    let p = SePolicy::open_root(dir.path()).unwrap().unwrap();
    let l = |path: &str, mode: u32| {
        p.lookup(path, mode)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    };
    assert_eq!(
        l("/", 0o040755).as_deref(),
        Some("system_u:object_r:root_t:s0")
    );
    assert_eq!(
        l("/usr/bin/sh", 0o100755).as_deref(),
        Some("system_u:object_r:bin_t:s0")
    );
    assert_eq!(l("/usr/bin/none", 0o100755), None);
    assert_eq!(
        l("/etc/shadow-", 0o100640).as_deref(),
        Some("system_u:object_r:shadow_t:s0")
    );
    // `--` is regular files only.
    assert_eq!(
        l("/etc/shadow.d", 0o040755).as_deref(),
        Some("system_u:object_r:default_t:s0")
    );
    assert_eq!(
        l("/usr/lib/libc.so.6", 0o100644).as_deref(),
        Some("system_u:object_r:lib_t:s0")
    );
    assert_eq!(
        l("/usr/lib/x", 0o120777).as_deref(),
        Some("system_u:object_r:link_t:s0")
    );
    assert_eq!(
        l("/usr/lib/x", 0o100644).as_deref(),
        Some("system_u:object_r:usr_t:s0")
    );
    // libostree looks /proc up as /mnt.
    assert_eq!(l("/proc", 0o040555), l("/mnt", 0o040555));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A damaged file_contexts gives a policy or an error, never a panic or a crash.
    #[test]
    fn damaged_file_contexts_never_panic(
        cuts in proptest::collection::vec((0usize..FC.len(), any::<u8>()), 0..8),
        path in "/[a-z/.]{0,20}",
        mode in prop::sample::select(vec![0u32, 0o040755, 0o100644, 0o120777]),
    ) {
        let mut fc = FC.as_bytes().to_vec();
        for (at, b) in cuts {
            let at = at.min(fc.len().saturating_sub(1));
            if b % 3 == 0 {
                fc.truncate(at);
            } else if at < fc.len() {
                fc[at] = b;
            }
        }
        let dir = test_support::scratch("oc-selinux-fuzz-");
        write_policy(dir.path(), &fc);
        if let Ok(Some(p)) = SePolicy::open_root(dir.path()) {
            let _ = p.lookup(&path, mode);
        }
    }
}

/// An unlabelled commit relabelled in place equals `ostree commit --selinux-policy` of the same
/// directory; relabelling the result again changes nothing (every object kept).
#[test]
fn relabel_tree_equals_ostree_commit_and_is_idempotent() {
    use ostree_repo::{CommitSpec, MutableTree, NoProgress, TreeOptions};
    let dir = test_support::scratch("oc-selinux-relabel-");
    let src = super::policy_tree(dir.path());
    for (p, data) in [
        ("usr/bin/tool", &b"tool"[..]),
        ("usr/etc/passwd", b"root"),
        ("usr/lib/libx.so.1", b"elf"),
        ("var/log/x.log", b"log"),
    ] {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, data).unwrap();
    }
    std::os::unix::fs::symlink("libx.so.1", src.join("usr/lib/libx.so")).unwrap();
    let repo = super::init_repo(dir.path(), "bare-user");
    let no = std::sync::atomic::AtomicBool::new(false);
    let mut spec = CommitSpec::new();
    spec.timestamp = Some(0);
    let plain = repo
        .commit_directory(
            &src,
            Some("plain"),
            &TreeOptions::new(),
            &spec,
            &NoProgress,
            &no,
        )
        .unwrap();
    let policy = SePolicy::from_commit(&repo, &plain).unwrap().unwrap();
    let txn = repo.begin_transaction().unwrap();
    let mut root = MutableTree::from_commit(&txn, &plain).unwrap();
    let (changed, stats) = ostree_selinux::relabel_tree(&txn, &mut root, &policy).unwrap();
    assert!(changed && stats.files_relabelled > 0, "{stats:?}");
    let (tree, meta) = root.write(&txn).unwrap();
    let ours = txn.write_commit(tree, meta, &spec).unwrap();
    txn.set_ref("ours", Some(ours)).unwrap();
    let mut again = MutableTree::from_commit(&txn, &ours).unwrap();
    let (changed, stats) = ostree_selinux::relabel_tree(&txn, &mut again, &policy).unwrap();
    assert!(!changed, "{stats:?}");
    assert_eq!((stats.files_relabelled, stats.dirs_relabelled), (0, 0));
    assert_eq!(again.stored_tree(), Some(tree));
    txn.commit().unwrap();
    let cli = test_support::ostree_cli::OstreeCli::new().unwrap();
    let out = cli
        .command(&[
            "commit",
            &format!("--repo={}", repo.path().display()),
            "--branch=theirs",
            &format!("--selinux-policy={}", src.display()),
            &format!("--tree=dir={}", src.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        cli.ls_rxc(repo.path(), "ours").unwrap(),
        cli.ls_rxc(repo.path(), "theirs").unwrap()
    );
}
