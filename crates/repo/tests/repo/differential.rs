//! Our commits equal `ostree commit`'s, and `ostree` accepts what we write.

use std::collections::BTreeSet;

use ostree_repo::format::ObjectType;
use ostree_repo::{CheckoutOptions, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::ostree_cli::{REFERENCE_COMMIT, list_object_files};
use test_support::tree::{self, TreeOptions as GenOptions};

use crate::*;

#[test]
fn reference_tree_checksums_in_every_mode() {
    let d = scratch();
    let src = d.path().join("tree");
    tree::reference_tree(&src).unwrap();
    for (mode, name) in MODES {
        let repo = Repo::create(&d.path().join(format!("ours-{name}")), mode).unwrap();
        let c = native_commit(&repo, &src, "test", &TreeOptions::new());
        let expected = if mode == RepoMode::BareUserOnly {
            "7bbe76ab2fc2bbf164fb3c36882f7252812937b87d9922a7e65232bb6b7947a4"
        } else {
            REFERENCE_COMMIT
        };
        assert_eq!(c.to_hex(), expected, "mode {name}");
        ostree().fsck(repo.path()).unwrap().check().unwrap();
    }
}

/// Commits a generated tree with both implementations in `mode` and compares everything.
fn differential(gen_opts: &GenOptions, mode: RepoMode, name: &str) {
    let d = scratch();
    let src = d.path().join("tree");
    tree::generate_tree(&src, gen_opts).unwrap();
    let cli = ostree();
    let theirs = d.path().join("theirs");
    cli.init(&theirs, name).unwrap();
    let their_commit = cli
        .commit(&theirs, "test", &src, &cli_commit_opts())
        .unwrap();

    let repo = Repo::create(&d.path().join("ours"), mode).unwrap();
    let ours = native_commit(&repo, &src, "test", &TreeOptions::new());
    assert_eq!(ours.to_hex(), their_commit, "commit checksum in {name}");

    // Same object files (ignoring the ref-independent layout), fsck clean, same listing.
    assert_eq!(
        list_object_files(repo.path()).unwrap(),
        list_object_files(&theirs).unwrap(),
        "{name} objects"
    );
    cli.fsck(repo.path()).unwrap().check().unwrap();
    assert_eq!(
        cli.ls_rxc(repo.path(), "test").unwrap(),
        cli.ls_rxc(&theirs, "test").unwrap()
    );

    // ostree checks our commit out to the source tree.
    let out = d.path().join("checkout");
    cli.checkout(repo.path(), "test", &out, false).unwrap();
    // bare-user-only keeps canonical permissions, and its (user-mode) checkouts make files
    // readable by their owner: ignore u+r there.
    let snap = if mode == RepoMode::BareUserOnly {
        SnapshotOptions {
            ownership: false,
            xattrs: false,
            mode_mask: 0o355,
            ..Default::default()
        }
    } else {
        SnapshotOptions::default()
    };
    assert_trees_equal(&src, &out, &snap).unwrap();

    // Our checkout equals ostree's, bit for bit.
    let ours_out = d.path().join("our-checkout");
    repo.checkout(
        &ours,
        &ours_out,
        &CheckoutOptions::new(),
        &NoProgress,
        &NO_INTERRUPT,
    )
    .unwrap();
    assert_trees_equal(&out, &ours_out, &SnapshotOptions::default()).unwrap();

    // Committing the same tree again writes nothing new.
    let before = list_object_files(repo.path()).unwrap();
    native_commit(&repo, &src, "test2", &TreeOptions::new());
    let after = list_object_files(repo.path()).unwrap();
    let added: BTreeSet<_> = after.difference(&before).collect();
    assert_eq!(
        added.len(),
        1,
        "only the new commit object is added (ref binding differs): {added:?}"
    );
}

#[test]
fn generated_tree_bare() {
    differential(&GenOptions::default(), RepoMode::Bare, "bare");
}

#[test]
fn generated_tree_bare_user() {
    differential(&GenOptions::default(), RepoMode::BareUser, "bare-user");
}

#[test]
fn generated_tree_bare_user_only() {
    differential(
        &GenOptions::default(),
        RepoMode::BareUserOnly,
        "bare-user-only",
    );
}

#[test]
fn generated_tree_archive() {
    differential(&GenOptions::default(), RepoMode::Archive, "archive");
}

#[test]
fn full_tree_with_big_file_and_huge_directory() {
    // 17 MiB file, 2100-entry directory (4-byte offsets), long names (2-byte offsets).
    differential(&GenOptions::full(), RepoMode::BareUser, "bare-user");
}

#[test]
fn full_tree_archive() {
    differential(
        &GenOptions {
            seed: 7,
            ..GenOptions::full()
        },
        RepoMode::Archive,
        "archive",
    );
}

#[test]
fn owner_and_canonical_options_match_cli() {
    let d = scratch();
    let src = d.path().join("tree");
    tree::generate_tree(&src, &GenOptions::default()).unwrap();
    let cli = ostree();
    let theirs = d.path().join("theirs");
    cli.init(&theirs, "bare-user").unwrap();
    let repo = Repo::create(&d.path().join("ours"), RepoMode::BareUser).unwrap();

    let mut opts = cli_commit_opts();
    opts.owner_uid = Some(5);
    opts.owner_gid = Some(6);
    let t1 = cli.commit(&theirs, "owned", &src, &opts).unwrap();
    let mut tree_opts = TreeOptions::new();
    tree_opts.owner_uid = Some(5);
    tree_opts.owner_gid = Some(6);
    assert_eq!(native_commit(&repo, &src, "owned", &tree_opts).to_hex(), t1);

    let mut opts = cli_commit_opts();
    opts.canonical_permissions = true;
    let t2 = cli.commit(&theirs, "canon", &src, &opts).unwrap();
    let mut tree_opts = TreeOptions::new();
    tree_opts.canonical_permissions = true;
    assert_eq!(native_commit(&repo, &src, "canon", &tree_opts).to_hex(), t2);
    cli.fsck(repo.path()).unwrap().check().unwrap();
}

#[test]
fn user_mode_checkout() {
    let d = scratch();
    let src = d.path().join("tree");
    tree::generate_tree(&src, &GenOptions::default()).unwrap();
    let repo = Repo::create(&d.path().join("ours"), RepoMode::BareUser).unwrap();
    let c = native_commit(&repo, &src, "test", &TreeOptions::new());
    let out = d.path().join("co");
    let mut opts = CheckoutOptions::new();
    opts.user_mode = true;
    repo.checkout(&c, &out, &opts, &NoProgress, &NO_INTERRUPT)
        .unwrap();
    // Content, symlinks and permission bits without setuid/setgid are reproduced (files are
    // made owner-readable, as by `ostree checkout -U`).
    let snap = SnapshotOptions {
        ownership: false,
        xattrs: false,
        mode_mask: 0o1377,
        ..Default::default()
    };
    assert_trees_equal(&src, &out, &snap).unwrap();
    // The commit is listed by a traversal exactly as the object files (plus nothing else).
    let r = repo.traverse_commit(&c).unwrap();
    assert!(r.missing.is_empty());
    let listed: BTreeSet<String> = r.objects.iter().map(|o| o.to_string()).collect();
    let files: BTreeSet<String> = list_object_files(repo.path())
        .unwrap()
        .into_iter()
        .filter(|f| !f.ends_with(".commitmeta"))
        .collect();
    assert_eq!(listed, files);
    assert!(
        r.objects
            .iter()
            .any(|o| o.object_type == ObjectType::DirTree)
    );
}

/// Archive payloads of several 1 MiB deflate pieces, at the extreme `archive.zlib-level`s: the
/// commit checksum is ostree's, `ostree fsck` accepts the objects and `ostree cat` reads every
/// byte back; level 1 gives a larger payload than level 9.
#[test]
fn archive_pieces_at_every_level_read_by_ostree() {
    let d = scratch();
    let src = d.path().join("tree");
    std::fs::create_dir(&src).unwrap();
    // 3.5 MiB: text-like runs between pseudo-random bytes, so the level matters.
    let mut x = 0x9e37_79b9u32;
    let data: Vec<u8> = (0..(7usize << 19))
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 5 < 3 {
                b"ostree archive "[i % 15]
            } else {
                (x % 7) as u8
            }
        })
        .collect();
    std::fs::write(src.join("big"), &data).unwrap();
    let cli = ostree();
    let theirs = d.path().join("theirs");
    let their_commit = ostree_archive_commit(&cli, &theirs, &src);
    let mut sizes = Vec::new();
    for level in [1, 9] {
        let dir = d.path().join(format!("ours-{level}"));
        Repo::create(&dir, RepoMode::Archive).unwrap();
        let config = dir.join("config");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!("\n[archive]\nzlib-level={level}\n"));
        std::fs::write(&config, text).unwrap();
        let repo = Repo::open(&dir).unwrap();
        let c = native_commit(&repo, &src, "test", &TreeOptions::new());
        assert_eq!(c.to_hex(), their_commit, "level {level}");
        cli.fsck(&dir).unwrap().check().unwrap();
        assert_eq!(
            cli.cat(&dir, "test", "/big").unwrap(),
            data,
            "level {level}"
        );
        let objects: u64 = walk_sizes(&dir.join("objects"));
        sizes.push(objects);
    }
    assert!(
        sizes[0] > sizes[1],
        "level 1 {} vs level 9 {}",
        sizes[0],
        sizes[1]
    );
}

/// At the default `archive.zlib-level` (6) our objects are as dense as libostree's zlib 6 ones,
/// within 1% (we use the cheaper libdeflate level that meets that density on an OS tree): real
/// executables of this machine's `/usr/bin`, the first 40 MB of them by name.
#[test]
fn archive_default_level_as_dense_as_libostree() {
    let d = scratch();
    let src = d.path().join("tree");
    std::fs::create_dir(&src).unwrap();
    let mut names: Vec<_> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    names.sort();
    let mut total = 0u64;
    for p in names {
        if total >= 40 << 20 {
            break;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        total += bytes.len() as u64;
        std::fs::write(src.join(p.file_name().unwrap()), bytes).unwrap();
    }
    assert!(total >= 20 << 20, "only {total} bytes of /usr/bin");
    let cli = ostree();
    let theirs = d.path().join("theirs");
    let their_commit = ostree_archive_commit(&cli, &theirs, &src);
    let dir = d.path().join("ours");
    Repo::create(&dir, RepoMode::Archive).unwrap();
    let repo = Repo::open(&dir).unwrap();
    let c = native_commit(&repo, &src, "test", &TreeOptions::new());
    assert_eq!(c.to_hex(), their_commit);
    cli.fsck(&dir).unwrap().check().unwrap();
    let (ours, libostree) = (
        walk_sizes(&dir.join("objects")),
        walk_sizes(&theirs.join("objects")),
    );
    assert!(
        ours * 100 <= libostree * 101,
        "ours {ours} bytes vs libostree's {libostree} for {total} bytes of content"
    );
}

/// `ostree commit` of `src` as branch `test` into a new archive repository at `repo`.
fn ostree_archive_commit(cli: &OstreeCli, repo: &std::path::Path, src: &std::path::Path) -> String {
    cli.init(repo, "archive").unwrap();
    cli.commit(repo, "test", src, &cli_commit_opts()).unwrap()
}

/// Total size of the `.filez` objects under `dir`.
fn walk_sizes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            total += walk_sizes(&p);
        } else if p.extension().is_some_and(|x| x == "filez") {
            total += e.metadata().unwrap().len();
        }
    }
    total
}
