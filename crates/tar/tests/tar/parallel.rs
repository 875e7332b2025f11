//! One layer with many small objects: they are written by worker threads, yet the result and
//! the errors are those of a serial import.

use std::path::Path;

use ostree_repo::format::{Checksum, ObjectName, ObjectType};
use ostree_repo::{Repo, RepoError, RepoMode};
use ostree_tar::{ErrorKind, ImportSession, TarError};
use test_support::ostree_cli::CommitOpts;

use crate::hostile::{E, build, entries};
use crate::*;

/// A tree of `n` small files (some empty, some identical), symlinks, a few directories and
/// one file above the in-memory threshold, committed by `ostree commit`.
fn many_files_source(base: &Path, n: usize) -> Source {
    let tree = base.join("many-tree");
    for i in 0..n {
        let d = tree.join(format!("d{:02}", i % 37));
        std::fs::create_dir_all(&d).unwrap();
        let len = (i * 97) % 9000;
        let data: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        let data = if i % 50 == 0 { Vec::new() } else { data };
        // Every 100th file duplicates another's content (one object, several names).
        let data = if i % 100 == 7 {
            b"same\n".to_vec()
        } else {
            data
        };
        let p = d.join(format!("f{i}"));
        std::fs::write(&p, &data).unwrap();
        if i % 3 == 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        if i % 40 == 0 {
            std::os::unix::fs::symlink(format!("f{i}"), d.join(format!("l{i}"))).unwrap();
        }
    }
    let big: Vec<u8> = (0..(5usize << 20)).map(|j| (j % 253) as u8).collect();
    std::fs::write(tree.join("big"), big).unwrap();
    let dir = base.join("many-src");
    let o = ostree();
    o.init(&dir, "bare").unwrap();
    let opts = CommitOpts {
        timestamp: Some("2020-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    let c = o.commit(&dir, "test", &tree, &opts).unwrap();
    Source {
        repo: Repo::open(&dir).unwrap(),
        dir,
        commit: c.parse().unwrap(),
    }
}

fn object_path(name: &ObjectName) -> String {
    let hex = name.checksum.to_hex();
    format!("{}/{}.file", &hex[..2], &hex[2..])
}

/// The checksums of the `.file` entries, in stream order, with their indexes.
fn file_objects(es: &[E]) -> Vec<(usize, Checksum)> {
    es.iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let p = String::from_utf8_lossy(&e.path);
            let rest = p.strip_prefix("sysroot/ostree/repo/objects/")?;
            let rest = rest.strip_suffix(".file")?;
            // Regular files with a payload only (flipping a byte needs one).
            if e.data.is_empty() || e.header.entry_type() != tar::EntryType::Regular {
                return None;
            }
            Some((i, rest.replace('/', "").parse().ok()?))
        })
        .collect()
}

fn import_err(repo: &Repo, data: &[u8]) -> TarError {
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let r = s
        .import_commit_layer(data, Some("sha256:0123"))
        .and_then(|_| s.finish());
    match r {
        Ok(_) => panic!("import succeeded"),
        Err(e) => e,
    }
}

/// The error names `obj`, at its entry.
fn assert_names(e: &TarError, obj: &ObjectName) {
    let suffix = object_path(obj);
    match e {
        TarError::Repo { at, source } => {
            assert!(
                at.path.as_deref().is_some_and(|p| p.ends_with(&suffix)),
                "{e}: not at {suffix}"
            );
            match &**source {
                RepoError::InvalidObject { object, .. } => assert_eq!(object, obj, "{e}"),
                _ => assert!(
                    ostree_errors::chain(&source).contains(&obj.checksum.to_hex()),
                    "{e}"
                ),
            }
        }
        TarError::Corrupt { at, object, .. } => {
            assert!(
                at.path.as_deref().is_some_and(|p| p.ends_with(&suffix)),
                "{e}: not at {suffix}"
            );
            assert_eq!(object.as_ref(), Some(obj), "{e}");
        }
        _ => panic!("unexpected error {e:?}"),
    }
}

#[test]
fn many_small_files_import_identically() {
    let base = scratch();
    let b = base.path();
    let src = many_files_source(b, 3000);
    let data = export_bytes(&src.repo, &src.commit);
    for (mode, name) in [
        (RepoMode::BareUser, "bare-user"),
        (RepoMode::Archive, "archive"),
    ] {
        let repo = new_repo(b, &format!("dst-{name}"), mode);
        let c = import_commit_layer(&repo, &data).unwrap();
        assert_eq!(c, src.commit, "{name}");
        fsck_ok(repo.path());
        // A second import of the same layer finds every object present.
        let c = import_commit_layer(&repo, &data).unwrap();
        assert_eq!(c, src.commit, "{name}");
        fsck_ok(repo.path());
        // And the re-export is byte-identical.
        assert_eq!(export_bytes(&repo, &c), data, "{name}: re-export differs");
    }
}

#[test]
fn corrupt_object_among_many_small_ones() {
    let base = scratch();
    let b = base.path();
    let src = many_files_source(b, 3000);
    let es = entries(&export_bytes(&src.repo, &src.commit));
    let files = file_objects(&es);
    assert!(files.len() > 2000, "{}", files.len());

    // One corrupt object in the middle of the stream.
    let (i, c) = files[files.len() / 2];
    let obj = ObjectName::new(c, ObjectType::File);
    let mut m = es.clone();
    m[i].data[0] ^= 0x40;
    let repo = new_repo(b, "one-corrupt", RepoMode::BareUser);
    let e = import_err(&repo, &build(&m));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_names(&e, &obj);
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(repo.path());

    // Two corrupt objects close together (likely in flight at once): the error names the
    // earlier one, as a serial import would.
    let (i1, c1) = files[files.len() / 3];
    let (i2, _) = files[files.len() / 3 + 5];
    let mut m = es.clone();
    m[i1].data[0] ^= 0x40;
    m[i2].data[0] ^= 0x40;
    let repo = new_repo(b, "two-corrupt", RepoMode::Archive);
    let e = import_err(&repo, &build(&m));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_names(&e, &ObjectName::new(c1, ObjectType::File));
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(repo.path());

    // A corrupt object followed by a structural error later in the stream: the corrupt
    // object still wins, as it comes first.
    let (i, c) = files[files.len() / 2];
    let mut m = es.clone();
    m[i].data[0] ^= 0x40;
    let commit = m[es
        .iter()
        .position(|e| e.path.ends_with(b".commit"))
        .unwrap()]
    .clone();
    m.insert(i + 10, commit);
    let repo = new_repo(b, "corrupt-then-invalid", RepoMode::BareUser);
    let e = import_err(&repo, &build(&m));
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_names(&e, &ObjectName::new(c, ObjectType::File));
    assert!(repo.list_refs().unwrap().is_empty());

    // A stream cut inside a small object late in the layer: truncated.
    let valid = build(&es);
    let (_, c) = files[files.len() - 10];
    let obj_suffix = object_path(&ObjectName::new(c, ObjectType::File));
    let mut a = tar::Archive::new(&valid[..]);
    let off = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path_bytes().ends_with(obj_suffix.as_bytes()))
        .unwrap()
        .raw_file_position();
    let repo = new_repo(b, "truncated", RepoMode::BareUser);
    let e = import_err(&repo, &valid[..off as usize + 3]);
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(repo.path());
}
