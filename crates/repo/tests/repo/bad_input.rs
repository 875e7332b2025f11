//! Invalid objects are refused with distinct errors and nothing reaches `objects/`.

use ostree_repo::format::{
    Checksum, DirTree, FileMeta, FormatError, FormatReason, ObjectType, TreeFile, Xattrs,
};
use ostree_repo::{ContentSource, ErrorKind, Repo, RepoError, RepoMode};
use test_support::ostree_cli::list_object_files;

use crate::*;

fn format_kind(e: &RepoError) -> FormatReason {
    match e {
        RepoError::InvalidObject { source, .. } => source.reason(),
        other => panic!("expected an invalid-object error, got {other:?}"),
    }
}

#[test]
fn bad_metadata_and_content_are_rejected() {
    let d = scratch();
    for (mode, name) in MODES {
        let repo = Repo::create(&d.path().join(name), mode).unwrap();
        let txn = repo.begin_transaction().unwrap();
        let cs = Checksum::digest(b"x");

        // Truncated commit.
        let commit = ostree_repo::format::Commit {
            metadata: Default::default(),
            parent: None,
            related: vec![],
            subject: "s".into(),
            body: String::new(),
            timestamp: 0,
            root_tree: cs,
            root_meta: cs,
        }
        .to_bytes();
        let e = txn
            .write_metadata(ObjectType::Commit, None, &commit[..commit.len() - 3])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert_eq!(format_kind(&e), FormatReason::Malformed);

        // Non-normal: `0000` offered as the empty dirtree.
        let e = txn
            .write_metadata(ObjectType::DirTree, None, &[0, 0])
            .unwrap_err();
        assert!(
            matches!(
                format_kind(&e),
                FormatReason::NotNormalForm | FormatReason::Malformed
            ),
            "{e}"
        );
        let mut nn = commit.clone();
        nn[1] = 0xff; // slack inside the (empty) metadata array region is caught by re-encoding
        assert!(txn.write_metadata(ObjectType::Commit, None, &nn).is_err());

        // Oversized.
        let big = vec![0u8; 10 * 1024 * 1024 + 1];
        let e = txn
            .write_metadata(ObjectType::DirTree, None, &big)
            .unwrap_err();
        assert_eq!(format_kind(&e), FormatReason::TooLarge);

        // Wrongly typed: a dirmeta offered as a dirtree and a dirtree as a commit.
        let dm = FileMeta {
            uid: 0,
            gid: 0,
            mode: 0o40755,
            xattrs: Xattrs::new(),
        }
        .to_dirmeta_bytes();
        let e = txn
            .write_metadata(ObjectType::DirTree, None, &dm)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let e = txn
            .write_metadata(ObjectType::Commit, None, &DirTree::default().to_bytes())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);

        // Dirtree structure: unsorted, duplicate, empty, '.', '..', '/'.
        for names in [
            &["b", "a"][..],
            &["a", "a"],
            &[""],
            &["."],
            &[".."],
            &["x/y"],
        ] {
            let t = DirTree {
                files: names
                    .iter()
                    .map(|n| TreeFile {
                        name: n.to_string(),
                        checksum: cs,
                    })
                    .collect(),
                dirs: vec![],
            };
            match txn
                .write_metadata(ObjectType::DirTree, None, &t.to_bytes())
                .unwrap_err()
            {
                RepoError::InvalidObject {
                    source: FormatError::InvalidDirTree(_) | FormatError::InvalidFileName(..),
                    ..
                } => {}
                other => panic!("{names:?}: {other:?}"),
            }
        }

        // A metadata object whose bytes do not hash to the offered name.
        let e = txn
            .write_metadata(ObjectType::DirMeta, Some(cs), &dm)
            .unwrap_err();
        assert!(matches!(e, RepoError::ChecksumMismatch { .. }), "{e:?}");

        // Content whose checksum does not match.
        let meta = FileMeta {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            xattrs: Xattrs::new(),
        };
        let mut data: &[u8] = b"hello world\n";
        let e = txn
            .write_content(
                Some(cs),
                &meta,
                ContentSource::Regular {
                    size: 12,
                    reader: &mut data,
                },
            )
            .unwrap_err();
        assert!(matches!(e, RepoError::ChecksumMismatch { .. }), "{e:?}");
        // Announced size differs from the payload.
        let mut data: &[u8] = b"short";
        let e = txn
            .write_content(
                None,
                &meta,
                ContentSource::Regular {
                    size: 12,
                    reader: &mut data,
                },
            )
            .unwrap_err();
        assert!(matches!(e, RepoError::SizeMismatch { .. }), "{e:?}");
        // Non-canonical xattrs and invalid modes.
        let unsorted = FileMeta {
            xattrs: Xattrs::from_pairs(vec![
                (b"user.z".to_vec(), b"1".to_vec()),
                (b"user.a".to_vec(), b"1".to_vec()),
            ]),
            ..meta.clone()
        };
        let mut data: &[u8] = b"x";
        assert!(
            txn.write_content(
                None,
                &unsorted,
                ContentSource::Regular {
                    size: 1,
                    reader: &mut data
                }
            )
            .is_err()
        );
        let dev = FileMeta {
            mode: 0o020644,
            ..meta.clone()
        };
        let mut data: &[u8] = b"x";
        assert!(
            txn.write_content(
                None,
                &dev,
                ContentSource::Regular {
                    size: 1,
                    reader: &mut data
                }
            )
            .is_err()
        );

        txn.commit().unwrap();
        assert!(
            list_object_files(repo.path()).unwrap().is_empty(),
            "{name}: nothing may be linked"
        );
        ostree().fsck(repo.path()).unwrap().check().unwrap();
    }
}

#[test]
fn bare_user_only_refuses_uncanonical_content() {
    let d = scratch();
    let repo = Repo::create(&d.path().join("r"), RepoMode::BareUserOnly).unwrap();
    let txn = repo.begin_transaction().unwrap();
    for meta in [
        FileMeta {
            uid: 0,
            gid: 0,
            mode: 0o104755,
            xattrs: Xattrs::new(),
        },
        FileMeta {
            uid: 1000,
            gid: 0,
            mode: 0o100644,
            xattrs: Xattrs::new(),
        },
        FileMeta {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            xattrs: Xattrs::canonical(vec![(b"user.a".to_vec(), b"1".to_vec())]),
        },
    ] {
        let mut data: &[u8] = b"x";
        let e = txn
            .write_content(
                None,
                &meta,
                ContentSource::Regular {
                    size: 1,
                    reader: &mut data,
                },
            )
            .unwrap_err();
        assert!(matches!(e, RepoError::ModeRestriction { .. }), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
}

#[test]
fn config_refusals_name_the_key() {
    let d = scratch();
    let path = d.path().join("r");
    ostree().init(&path, "bare-user").unwrap();
    let cfg = path.join("config");
    let orig = std::fs::read_to_string(&cfg).unwrap();
    for (extra, key) in [
        ("parent=/somewhere\n", "core.parent"),
        ("auto-update-summary=true\n", "core.auto-update-summary"),
    ] {
        std::fs::write(&cfg, format!("{orig}{extra}")).unwrap();
        match Repo::open(&path).unwrap_err() {
            RepoError::UnsupportedConfig { key: k, .. } => assert_eq!(k, key),
            other => panic!("{other:?}"),
        }
    }
    std::fs::write(&cfg, format!("{orig}[ex-fsverity]\nrequired=true\n")).unwrap();
    assert!(matches!(
        Repo::open(&path),
        Err(RepoError::UnsupportedConfig { .. })
    ));
    std::fs::write(&cfg, format!("{orig}fsync=false\nmin-free-space-size=1MB\nlock-timeout-secs=5\ndisable-xattrs=false\n")).unwrap();
    let repo = Repo::open(&path).unwrap();
    assert!(!repo.config().fsync);
    assert_eq!(repo.config().lock_timeout_secs, 5);
    assert!(matches!(
        Repo::open(&d.path().join("nothing")),
        Err(RepoError::NotARepo { .. })
    ));
}

/// Issue 15 item 15: the free-space budget counts only blocks the kernel will give us. On an ext4
/// whose reserved blocks (here half of it) we may not use — root without `CAP_SYS_RESOURCE`, as
/// in a container — a write beyond what is really available minus the reserve is refused by the
/// budget; with the capability the reserved blocks count, as libostree counts them for root.
#[test]
fn free_space_budget_ignores_blocks_reserved_for_others() {
    let d = scratch();
    let img = d.path().join("fs.img");
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::File::create(&img)
        .unwrap()
        .set_len(96 << 20)
        .unwrap();
    test_support::tools::run(
        std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "50"])
            .arg(&img),
    )
    .unwrap();
    test_support::tools::run(
        std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt),
    )
    .expect("mounting a loop filesystem needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let st = rustix::fs::statvfs(&mnt).unwrap();
    let avail = st.f_bavail * st.f_frsize;
    let free = st.f_bfree * st.f_frsize;
    assert!(free > avail + (30 << 20), "half the filesystem is reserved");
    let rp = mnt.join("repo");
    Repo::create(&rp, RepoMode::BareUser).unwrap();
    std::fs::write(
        rp.join("config"),
        "[core]\nrepo_version=1\nmode=bare-user\nmin-free-space-size=4MB\n",
    )
    .unwrap();
    let repo = Repo::open(&rp).unwrap();
    // More than what is really available minus the reserve, less than it plus the reserved
    // blocks: only a budget that counts the reserved blocks lets it through.
    let size = (avail - (2 << 20)) as usize;
    let txn = repo.begin_transaction().unwrap();
    let meta = ostree_repo::format::FileMeta {
        uid: 0,
        gid: 0,
        mode: 0o100644,
        xattrs: Default::default(),
    };
    let r = txn.write_content(None, &meta, ContentSource::Bytes(&vec![7u8; size]));
    let caps = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = caps
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
    let may_use_reserved = cap_eff & (1 << 24) != 0
        && uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    if may_use_reserved {
        r.expect("with CAP_SYS_RESOURCE the reserved blocks are ours");
    } else {
        let e = r.unwrap_err();
        assert!(
            matches!(e, RepoError::NoSpace { .. }),
            "the budget refuses: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::NoSpace);
    }
    drop(txn);
}
