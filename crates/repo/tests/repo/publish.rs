//! Publication: whole prefix directories moved into a new repository, object-by-object merges
//! into existing ones, and objects of an adopted staging directory counting as staged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ostree_repo::format::{ObjectName, ObjectType};
use ostree_repo::{NoProgress, Repo, RepoMode, TreeOptions};
use test_support::ostree_cli::list_object_files;
use test_support::tree;

use crate::*;

fn prefix_dir_modes(repo: &Path) -> Vec<(String, u32)> {
    let mut v: Vec<_> = std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .map(|e| {
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            (e.file_name().to_string_lossy().into_owned(), mode)
        })
        .collect();
    v.sort();
    v
}

fn no_staging_left(repo: &Path) {
    let left: Vec<_> = std::fs::read_dir(repo.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A first commit lands by moving whole staging directories (over empty `objects/XX` ones
/// too); a second, overlapping commit merges object by object. Either way the repository holds
/// exactly the objects, and prefix directories with the modes, that `ostree commit` gives.
#[test]
fn first_commit_moves_directories_second_merges() {
    let d = scratch();
    let a = d.path().join("a");
    let b = d.path().join("b");
    generate(&a, 21, false);
    generate(&b, 22, false);
    // Tree b shares a's files plus its own.
    tree::copy_tree(&a, &b.join("from-a")).unwrap();

    let ours = Repo::create(&d.path().join("ours"), RepoMode::BareUser).unwrap();
    // Empty prefix directories, as `ostree prune` can leave them: replaced atomically.
    for p in ["00", "3f", "a7", "ff"] {
        std::fs::create_dir(ours.path().join("objects").join(p)).unwrap();
    }
    let ca = native_commit(&ours, &a, "a", &TreeOptions::new());
    let cb = native_commit(&ours, &b, "b", &TreeOptions::new());

    let cli = ostree();
    let theirs = d.path().join("theirs");
    cli.init(&theirs, "bare-user").unwrap();
    assert_eq!(
        cli.commit(&theirs, "a", &a, &cli_commit_opts()).unwrap(),
        ca.to_string()
    );
    assert_eq!(
        cli.commit(&theirs, "b", &b, &cli_commit_opts()).unwrap(),
        cb.to_string()
    );

    assert_eq!(
        list_object_files(ours.path()).unwrap(),
        list_object_files(&theirs).unwrap()
    );
    let modes = prefix_dir_modes(ours.path());
    let theirs_modes = prefix_dir_modes(&theirs);
    // Ours may hold the extra empty directories made above; every other one matches.
    for (name, mode) in &theirs_modes {
        assert!(modes.contains(&(name.clone(), *mode)), "objects/{name}");
    }
    cli.fsck(ours.path()).unwrap().check().unwrap();
    assert!(ours.fsck(&NoProgress, &NO_INTERRUPT).unwrap().is_ok());
    no_staging_left(ours.path());
}

/// Objects left in an abandoned staging directory of this boot (a crashed writer) are adopted:
/// the next transaction sees them as staged, can prove a commit complete from them without
/// rewriting anything, and publishes them.
#[test]
fn adopted_staging_objects_count_as_staged() {
    let d = scratch();
    let src = d.path().join("t");
    tree::reference_tree(&src).unwrap();
    let first = Repo::create(&d.path().join("first"), RepoMode::Archive).unwrap();
    let commit = native_commit(&first, &src, "main", &TreeOptions::new());

    let repo = Repo::create(&d.path().join("r"), RepoMode::Archive).unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let abandoned = repo
        .path()
        .join("tmp")
        .join(format!("staging-{}-Xq3zTe", boot_id.trim()));
    tree::copy_tree(&first.path().join("objects"), &abandoned).unwrap();

    let txn = repo.begin_transaction().unwrap();
    let name = ObjectName::new(commit, ObjectType::Commit);
    assert!(txn.has_object(&name).unwrap());
    assert!(!repo.has_object(&name).unwrap());
    assert!(txn.find_missing(&commit).unwrap().is_empty());
    txn.set_ref("main", Some(commit)).unwrap();
    let stats = txn.commit().unwrap();
    assert_eq!(stats.content_written + stats.metadata_written, 0);

    assert_eq!(repo.resolve_rev("main").unwrap(), commit);
    assert_eq!(
        list_object_files(repo.path()).unwrap(),
        list_object_files(first.path()).unwrap()
    );
    ostree().fsck(repo.path()).unwrap().check().unwrap();
    no_staging_left(repo.path());
}

/// A ref to a commit that is not complete is refused with the missing object named, whether a
/// content object or a whole subtree is absent. The verified objects are still published (a
/// retry need not write them again) and the commit is marked partial, so `ostree fsck` passes.
#[test]
fn refs_to_incomplete_commits_are_refused() {
    use ostree_repo::format::{Checksum, DirTree, FileMeta, ObjectName, TreeDir, TreeFile};
    use ostree_repo::{CommitSpec, ContentSource, RepoError};

    let absent = Checksum::digest(b"never written");
    for missing_type in [ObjectType::File, ObjectType::DirTree] {
        let d = scratch();
        let repo = Repo::create(&d.path().join("r"), RepoMode::BareUser).unwrap();
        let txn = repo.begin_transaction().unwrap();
        let file_meta = FileMeta {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            xattrs: Default::default(),
        };
        let present = txn
            .write_content(None, &file_meta, ContentSource::Bytes(b"present"))
            .unwrap();
        let dir_meta = FileMeta {
            mode: 0o40755,
            ..file_meta.clone()
        };
        let meta = txn
            .write_metadata(ObjectType::DirMeta, None, &dir_meta.to_dirmeta_bytes())
            .unwrap();
        let mut root = DirTree {
            files: vec![TreeFile {
                name: "a".into(),
                checksum: present,
            }],
            dirs: Vec::new(),
        };
        match missing_type {
            ObjectType::File => root.files.push(TreeFile {
                name: "b".into(),
                checksum: absent,
            }),
            _ => root.dirs.push(TreeDir {
                name: "sub".into(),
                tree: absent,
                meta,
            }),
        }
        let tree = txn
            .write_metadata(ObjectType::DirTree, None, &root.to_bytes())
            .unwrap();
        let mut spec = CommitSpec::new();
        spec.timestamp = Some(0);
        let commit = txn.write_commit(tree, meta, &spec).unwrap();
        txn.set_ref("main", Some(commit)).unwrap();

        match txn.commit() {
            Err(RepoError::ObjectNotFound(n)) => {
                assert_eq!(n, ObjectName::new(absent, missing_type));
            }
            other => panic!("expected ObjectNotFound, got {other:?}"),
        }
        assert_eq!(repo.read_ref("main").unwrap(), None);
        assert!(repo.is_commit_partial(&commit));
        assert!(
            repo.has_object(&ObjectName::new(present, ObjectType::File))
                .unwrap()
        );
        assert_eq!(
            repo.find_missing(&commit).unwrap(),
            vec![ObjectName::new(absent, missing_type)]
        );
        ostree().fsck(repo.path()).unwrap().check().unwrap();
        no_staging_left(repo.path());
    }
}

/// Detached metadata is the one object a later transaction replaces (its prefix directory already
/// holds the commit, so publication goes object by object): `ostree` reads the new value.
#[test]
fn detached_metadata_is_replaced_on_publication() {
    use ostree_repo::format::MetaDict;
    use ostree_repo::format::gvariant::Value;

    let d = scratch();
    let src = d.path().join("t");
    tree::reference_tree(&src).unwrap();
    let repo = Repo::create(&d.path().join("r"), RepoMode::BareUser).unwrap();
    let commit = native_commit(&repo, &src, "main", &TreeOptions::new());
    let detached = |v: &str| {
        let mut md = MetaDict::default();
        md.push("sig", Value::Str(v.into()));
        md
    };
    for v in ["first", "second"] {
        let txn = repo.begin_transaction().unwrap();
        txn.write_commitmeta(&commit, &detached(v).to_bytes())
            .unwrap();
        txn.commit().unwrap();
        assert_eq!(repo.load_commitmeta(&commit).unwrap(), Some(detached(v)));
    }
    let shown = ostree()
        .command(&[
            "show",
            &format!("--repo={}", repo.path().display()),
            "--print-detached-metadata-key=sig",
            &commit.to_string(),
        ])
        .output()
        .unwrap();
    assert!(shown.status.success());
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "'second'");
    ostree().fsck(repo.path()).unwrap().check().unwrap();
    no_staging_left(repo.path());
}
