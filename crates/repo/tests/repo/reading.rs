//! We read what `ostree commit` writes, and our fsck agrees with `ostree fsck`.

use std::collections::BTreeSet;

use ostree_repo::format::{Checksum, ObjectName, ObjectType};
use ostree_repo::{CheckoutOptions, NoProgress, Repo};
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::ostree_cli::list_object_files;
use test_support::tree;

use crate::*;

fn flip_byte(path: &std::path::Path, at_end: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mut data = std::fs::read(path).unwrap();
    let i = if at_end {
        data.len() - 1
    } else {
        data.len() / 2
    };
    data[i] ^= 0x01;
    let perms = std::fs::metadata(path).unwrap().permissions();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Rewrite in place so ownership and xattrs (bare-user metadata) stay.
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &data))
        .unwrap();
    std::fs::set_permissions(path, perms).unwrap();
}

#[test]
fn read_cli_repositories_in_every_mode() {
    let d = scratch();
    let src = d.path().join("tree");
    generate(&src, 3, false);
    let cli = ostree();
    for (_, name) in MODES {
        let path = d.path().join(name);
        cli.init(&path, name).unwrap();
        let commit = cli.commit(&path, "test", &src, &cli_commit_opts()).unwrap();
        let repo = Repo::open(&path).unwrap();
        assert_eq!(repo.resolve_rev("test").unwrap().to_hex(), commit);

        // Traversal lists exactly the objects on disk.
        let c: Checksum = commit.parse().unwrap();
        let r = repo.traverse_commit(&c).unwrap();
        assert!(r.missing.is_empty() && r.corrupt.is_empty());
        let listed: BTreeSet<String> = r
            .objects
            .iter()
            .map(|o| {
                if o.object_type == ObjectType::File && name == "archive" {
                    format!("{}.filez", o.checksum)
                } else {
                    o.to_string()
                }
            })
            .collect();
        assert_eq!(listed, list_object_files(&path).unwrap(), "{name}");

        // Our fsck verifies everything and finds nothing wrong.
        let report = repo.fsck(&NoProgress, &NO_INTERRUPT).unwrap();
        assert!(report.is_ok(), "{name}: {report:?}");
        assert_eq!(report.commits, 1);
        assert_eq!(report.objects_checked, r.objects.len());

        // Our checkout equals ostree's.
        let theirs = d.path().join(format!("{name}-co-theirs"));
        let ours = d.path().join(format!("{name}-co-ours"));
        cli.checkout(&path, "test", &theirs, false).unwrap();
        repo.checkout(
            &c,
            &ours,
            &CheckoutOptions::new(),
            &NoProgress,
            &NO_INTERRUPT,
        )
        .unwrap();
        let snap = SnapshotOptions::default();
        assert_trees_equal(&theirs, &ours, &snap).unwrap();

        // Content objects read back with the metadata their checksum covers.
        for o in r
            .objects
            .iter()
            .filter(|o| o.object_type == ObjectType::File)
            .take(50)
        {
            let content = repo.read_content(&o.checksum).unwrap();
            assert_eq!(content.checksum().unwrap(), o.checksum);
        }
    }
}

#[test]
fn fsck_agrees_on_corruption() {
    let d = scratch();
    let src = d.path().join("tree");
    tree::reference_tree(&src).unwrap();
    let cli = ostree();
    for (_, name) in MODES {
        let path = d.path().join(name);
        cli.init(&path, name).unwrap();
        cli.commit(&path, "test", &src, &cli_commit_opts()).unwrap();
        let repo = Repo::open(&path).unwrap();

        // Corrupt hello.txt's content object.
        let hello: Checksum = if name == "bare-user-only" {
            // canonical permissions give other checksums in this mode; find the 12-byte file
            let c = repo.resolve_rev("test").unwrap();
            let root = repo.load_commit(&c).unwrap().root_tree;
            repo.load_dirtree(&root)
                .unwrap()
                .files
                .iter()
                .find(|f| f.name == "hello.txt")
                .unwrap()
                .checksum
        } else {
            "81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6"
                .parse()
                .unwrap()
        };
        let obj = ObjectName::new(hello, ObjectType::File);
        flip_byte(&repo.object_path(&obj), false);
        let report = repo.fsck(&NoProgress, &NO_INTERRUPT).unwrap();
        assert_eq!(
            report.corrupt.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![obj],
            "{name}: {report:?}"
        );
        assert!(
            !cli.fsck(&path).unwrap().success,
            "{name}: ostree fsck must fail too"
        );
    }

    // A corrupt dirtree: both fsck implementations fail and ours names it.
    let path = d.path().join("dirtree");
    cli.init(&path, "bare-user").unwrap();
    cli.commit(&path, "test", &src, &cli_commit_opts()).unwrap();
    let repo = Repo::open(&path).unwrap();
    let sub: Checksum = "601c679513a6632b79fa9f5d9f76be580d0652d55dc617867118f482ca277acf"
        .parse()
        .unwrap();
    let obj = ObjectName::new(sub, ObjectType::DirTree);
    flip_byte(&repo.object_path(&obj), false);
    let report = repo.fsck(&NoProgress, &NO_INTERRUPT).unwrap();
    assert!(report.corrupt.iter().any(|(o, _)| *o == obj), "{report:?}");
    assert!(!cli.fsck(&path).unwrap().success);

    // A missing content object is reported as missing.
    let path = d.path().join("missing");
    cli.init(&path, "bare-user").unwrap();
    cli.commit(&path, "test", &src, &cli_commit_opts()).unwrap();
    let repo = Repo::open(&path).unwrap();
    let run: Checksum = "89b350d278ff59ba4780bc377b8ebfee8ade6b55c99fab1ec84e133bc6ea52c5"
        .parse()
        .unwrap();
    let obj = ObjectName::new(run, ObjectType::File);
    std::fs::remove_file(repo.object_path(&obj)).unwrap();
    let report = repo.fsck(&NoProgress, &NO_INTERRUPT).unwrap();
    assert_eq!(
        report.missing.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![obj]
    );
    assert_eq!(
        repo.find_missing(&repo.resolve_rev("test").unwrap())
            .unwrap(),
        vec![obj]
    );
}
