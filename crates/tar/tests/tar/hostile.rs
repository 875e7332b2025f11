//! Hostile input: each case fails with its own error kind, writes no ref and leaves the
//! repository fsck-clean.

use ostree_repo::RepoMode;
use ostree_repo::format::{Checksum, FileMeta, S_IFREG, Xattrs, regular_checksum};
use ostree_tar::{ErrorKind, ExportPlan, ImportSession};

use crate::*;

/// One entry of a stream, for surgery.
#[derive(Clone)]
pub struct E {
    pub header: tar::Header,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub data: Vec<u8>,
}

pub fn entries(data: &[u8]) -> Vec<E> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path_bytes().into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let header = e.header().clone();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            E {
                header,
                path,
                link,
                data,
            }
        })
        .collect()
}

/// Writes `es` back (raw names: long ones through GNU records, short ones verbatim, so even
/// `..` and absolute paths survive).
pub fn build(es: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in es {
        let mut h = e.header.clone();
        let raw =
            |h: &mut tar::Header, b: &mut tar::Builder<Vec<u8>>, ty: u8, field: &str, v: &[u8]| {
                if v.len() > 100 {
                    let mut l = tar::Header::new_gnu();
                    l.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
                    l.set_mode(0o644);
                    l.set_size(v.len() as u64 + 1);
                    l.set_entry_type(tar::EntryType::new(ty));
                    l.set_cksum();
                    let mut d = v.to_vec();
                    d.push(0);
                    b.append(&l, &d[..]).unwrap();
                }
                let n = v.len().min(100);
                let old = h.as_old_mut();
                let slot = if field == "name" {
                    &mut old.name
                } else {
                    &mut old.linkname
                };
                *slot = [0; 100];
                slot[..n].copy_from_slice(&v[..n]);
            };
        raw(&mut h, &mut b, b'L', "name", &e.path);
        if let Some(l) = &e.link {
            raw(&mut h, &mut b, b'K', "link", l);
        }
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn find(es: &[E], suffix: &str) -> usize {
    es.iter()
        .position(|e| String::from_utf8_lossy(&e.path).ends_with(suffix))
        .unwrap_or_else(|| panic!("no entry ending {suffix}"))
}

const HELLO: &str = "81/381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6";
const ROOT_TREE: &str = "c5/c74b693dcaf6a0a8db02894283118b6b6b36229170e1a73849bb1f8b0ab317.dirtree";

/// Imports `data` as a commit layer with a digest into a fresh repo and checks the aftermath.
fn expect_kind(base: &std::path::Path, name: &str, data: &[u8], kind: ErrorKind) {
    let repo = new_repo(base, name, RepoMode::BareUser);
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let r = s
        .import_commit_layer(data, Some("sha256:0123"))
        .and_then(|_| s.finish());
    let e = match r {
        Ok(_) => panic!("{name}: import succeeded"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), kind, "{name}: {e}");
    drop(txn);
    assert!(
        repo.list_refs().unwrap().is_empty(),
        "{name}: a ref was written"
    );
    fsck_ok(repo.path());
}

fn reference(base: &std::path::Path) -> (Source, Vec<E>) {
    let src = make_source(base, "bare", TreeKind::Reference);
    let es = entries(&export_bytes(&src.repo, &src.commit));
    (src, es)
}

#[test]
fn hostile_inputs_fail_with_their_kind() {
    let base = scratch();
    let b = base.path();
    let (_src, es) = reference(b);
    let valid = build(&es);
    // Our rebuild is faithful: the unmodified stream imports.
    let ok = new_repo(b, "ok", RepoMode::BareUser);
    import_commit_layer(&ok, &valid).unwrap();

    // Flipped byte in a content object.
    let mut m = es.clone();
    let i = find(&m, &format!("{HELLO}.file"));
    m[i].data[3] ^= 0x20;
    expect_kind(b, "content-flip", &build(&m), ErrorKind::Corrupt);

    // Flipped byte in a dirtree.
    let mut m = es.clone();
    let i = find(&m, ROOT_TREE);
    m[i].data[5] ^= 0x01;
    expect_kind(b, "dirtree-flip", &build(&m), ErrorKind::Corrupt);

    // An object the commit does not reference.
    let mut m = es.clone();
    let meta = FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFREG | 0o644,
        xattrs: Xattrs::new(),
    };
    let stray = regular_checksum(&meta, b"stray\n").to_hex();
    let i = find(&m, &format!("{HELLO}.file"));
    let mut link = m[find(&m, &format!("{HELLO}.file-xattrs-link"))].clone();
    link.path = format!(
        "sysroot/ostree/repo/objects/{}/{}.file-xattrs-link",
        &stray[..2],
        &stray[2..]
    )
    .into_bytes();
    let mut obj = m[i].clone();
    obj.path = format!(
        "sysroot/ostree/repo/objects/{}/{}.file",
        &stray[..2],
        &stray[2..]
    )
    .into_bytes();
    obj.data = b"stray\n".to_vec();
    m.insert(i + 1, link);
    m.insert(i + 2, obj);
    expect_kind(b, "unreachable", &build(&m), ErrorKind::Unreachable);

    // A missing object (xattrs link, object and its checkout entry removed).
    let mut m = es.clone();
    m.retain(|e| {
        let p = String::from_utf8_lossy(&e.path);
        !(p.contains(HELLO) || p == "hello.txt")
    });
    expect_kind(b, "missing", &build(&m), ErrorKind::Incomplete);

    // Two commits in one layer.
    let mut m = es.clone();
    let c = m[find(&m, ".commit")].clone();
    m.push(c);
    expect_kind(b, "two-commits", &build(&m), ErrorKind::Invalid);

    // An xattrs link without its object.
    let mut m = es.clone();
    let i = find(&m, &format!("{HELLO}.file"));
    m.remove(i);
    m.remove(find(&m, "hello.txt"));
    expect_kind(b, "dangling-xattrs", &build(&m), ErrorKind::Invalid);

    // A 20 MiB metadata object.
    let mut m = es.clone();
    let i = find(&m, ROOT_TREE);
    m[i].data = vec![0u8; 20 << 20];
    expect_kind(b, "huge-metadata", &build(&m), ErrorKind::TooLarge);

    // `..` and absolute paths.
    for (name, p) in [
        ("dotdot", "../evil"),
        ("dotdot-inner", "usr/../../evil"),
        ("absolute", "/etc/evil"),
    ] {
        let mut m = es.clone();
        let mut e = m[find(&m, "sysroot/ostree/repo/config")].clone();
        e.path = p.as_bytes().to_vec();
        m.insert(300, e);
        expect_kind(b, name, &build(&m), ErrorKind::UnsafePath);
    }

    // A hardlink pointing outside the layer.
    let mut m = es.clone();
    let i = find(&m, "hello.txt");
    m[i].link = Some(b"../../etc/shadow".to_vec());
    expect_kind(b, "hardlink-out", &build(&m), ErrorKind::UnsafePath);

    // A device node.
    let mut m = es.clone();
    let mut e = m[find(&m, "var/tmp")].clone();
    e.path = b"dev-null".to_vec();
    e.header.set_entry_type(tar::EntryType::Char);
    m.push(e);
    expect_kind(b, "device", &build(&m), ErrorKind::Unsupported);

    // Truncated in the middle of a file.
    let mut a = tar::Archive::new(&valid[..]);
    let off = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path_bytes().ends_with(format!("{HELLO}.file").as_bytes()))
        .unwrap()
        .raw_file_position();
    expect_kind(
        b,
        "truncated",
        &valid[..off as usize + 5],
        ErrorKind::Truncated,
    );
    // ... and cut at a block boundary (no end-of-archive marker).
    expect_kind(
        b,
        "truncated-block",
        &valid[..off as usize + 512],
        ErrorKind::Truncated,
    );
}

#[test]
fn second_commit_layer_and_foreign_chunk_are_rejected() {
    let base = scratch();
    let b = base.path();
    let src = make_source(b, "bare", TreeKind::Reference);
    let other_dir = b.join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = make_source(&other_dir, "bare-user-only", TreeKind::Reference);
    let plan = ExportPlan::new(&src.repo, src.commit).unwrap();
    let oplan = ExportPlan::new(&other.repo, other.commit).unwrap();
    let mut l0 = Vec::new();
    plan.write_commit_layer(&mut l0, &Default::default())
        .unwrap();
    let mut o0 = Vec::new();
    oplan
        .write_commit_layer(&mut o0, &Default::default())
        .unwrap();

    // Two commit layers in one image.
    let repo = new_repo(b, "two", RepoMode::Bare);
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    s.import_commit_layer(&l0[..], Some("sha256:aa")).unwrap();
    let e = s
        .import_commit_layer(&o0[..], Some("sha256:bb"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    drop(s);
    drop(txn);
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(repo.path());

    // A chunk whose objects belong to another commit.
    let foreign: Vec<Checksum> = oplan
        .content_objects()
        .copied()
        .filter(|c| plan.paths_of(c).is_none())
        .collect();
    assert!(!foreign.is_empty());
    let mut chunk = Vec::new();
    oplan.write_chunk_layer(&mut chunk, &foreign).unwrap();
    let repo = new_repo(b, "foreign", RepoMode::Archive);
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    s.import_commit_layer(&l0[..], Some("sha256:aa")).unwrap();
    s.import_chunk_layer(&chunk[..], Some("sha256:cc")).unwrap();
    let e = s.finish().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    drop(txn);
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(repo.path());

    // Metadata in a chunk layer.
    let repo = new_repo(b, "meta-in-chunk", RepoMode::Archive);
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let e = s
        .import_chunk_layer(&l0[..], Some("sha256:dd"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
}

/// A 16 MiB tmpfs whose repository reserves 14 MB: the import crosses `min-free-space`.
#[test]
fn import_into_small_filesystem_hits_the_reserve() {
    let base = scratch();
    let b = base.path();
    let src = make_source(b, "bare", TreeKind::Generated);
    let data = export_bytes(&src.repo, &src.commit);
    let mnt = b.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    test_support::tools::run(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(&mnt),
    )
    .expect("mounting a tmpfs needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let rp = mnt.join("repo");
    Repo::create(&rp, RepoMode::Archive).unwrap();
    std::fs::write(
        rp.join("config"),
        "[core]\nrepo_version=1\nmode=archive-z2\nmin-free-space-size=14MB\n",
    )
    .unwrap();
    let repo = Repo::open(&rp).unwrap();
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let e = s
        .import_commit_layer(&data[..], Some("sha256:ee"))
        .and_then(|_| s.finish())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    drop(txn);
    assert!(repo.list_refs().unwrap().is_empty());
    fsck_ok(&rp);
}

/// Issue 15 item 12: an unverified import of a commit that is already present never replaces
/// its detached metadata (e.g. valid signatures with a source's own bytes); one of a commit
/// without detached metadata stores it; an authoritative (verified) import replaces it.
#[test]
fn unverified_import_keeps_existing_detached_metadata() {
    use ostree_repo::format::gvariant::Value;
    use ostree_repo::format::{MetaDict, ObjectName, ObjectType};
    let d = scratch();
    let src = make_source(d.path(), "bare-user", TreeKind::Reference);
    let original = export_bytes(&src.repo, &src.commit);
    let evil_meta = MetaDict(vec![("sig".into(), Value::Str("evil".into()))]).to_bytes();
    let txn = src.repo.begin_transaction().unwrap();
    txn.write_commitmeta(&src.commit, &evil_meta).unwrap();
    txn.commit().unwrap();
    let evil = export_bytes(&src.repo, &src.commit);
    assert_ne!(original, evil);
    let stored = |repo: &ostree_repo::Repo| {
        let name = ObjectName::new(src.commit, ObjectType::CommitMeta);
        std::fs::read(repo.path().join("objects").join(repo.object_relpath(&name))).unwrap()
    };
    let import = |repo: &ostree_repo::Repo, data: &[u8], replace: bool| {
        let txn = repo.begin_transaction().unwrap();
        let mut o = ostree_tar::ImportOptions::default();
        o.replace_detached_metadata = replace;
        let s = ImportSession::with_options(&txn, o);
        assert_eq!(s.import_commit_layer(data, None).unwrap(), src.commit);
        s.finish().unwrap();
        txn.commit().unwrap();
    };
    let repo = new_repo(d.path(), "dst", RepoMode::BareUser);
    import(&repo, &original, false);
    let first = stored(&repo);
    assert_ne!(first, evil_meta);
    import(&repo, &evil, false);
    assert_eq!(
        stored(&repo),
        first,
        "unverified import replaced detached metadata"
    );
    import(&repo, &evil, true);
    assert_eq!(stored(&repo), evil_meta, "a verified import replaces it");
    fsck_ok(repo.path());
    // Without detached metadata in the repository, an unverified import stores its own.
    let fresh = new_repo(d.path(), "fresh", RepoMode::BareUser);
    import(&fresh, &evil, false);
    assert_eq!(stored(&fresh), evil_meta);
    fsck_ok(fresh.path());
}

/// A chunk layer of `n` distinct xattr sets of about `size` bytes each (`.file-xattrs`
/// entries only), distinguished by `tag`.
fn xattr_sets_layer(tag: u8, n: usize, size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..n {
        let x = Xattrs::canonical([(b"user.big".to_vec(), vec![tag.wrapping_add(i as u8); size])]);
        let bytes = x.to_bytes();
        let c = Checksum::digest(&bytes).to_hex();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        let path = format!(
            "sysroot/ostree/repo/objects/{}/{}.file-xattrs",
            &c[..2],
            &c[2..]
        );
        b.append_data(&mut h, path, &bytes[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Yields `first`, then blocks until `go` fires, then yields `rest`.
struct Paused {
    first: std::io::Cursor<Vec<u8>>,
    rest: std::io::Cursor<Vec<u8>>,
    go: Option<std::sync::mpsc::Receiver<()>>,
}

impl std::io::Read for Paused {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.first.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if let Some(go) = self.go.take() {
            let _ = go.recv();
        }
        self.rest.read(buf)
    }
}

/// Issue 15 item 10: the ceiling on cached xattr sets is shared by the layers of an import (and
/// by sessions given the same budget, as the store does for a pull), not one per layer: two
/// layers that each fit are refused together while both hold their sets, and the budget comes
/// back when a layer is done.
#[test]
fn xattr_cache_ceiling_is_shared_by_concurrent_layers() {
    use std::sync::Arc;
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::BareUser);
    let budget = Arc::new(ostree_tar::MemoryBudget::new(4 << 20));
    // Each layer caches ~2.7 MB: alone within 4 MiB, together not.
    let a_sets = xattr_sets_layer(1, 3, 900_000);
    let b_sets = xattr_sets_layer(101, 3, 900_000);
    let end = vec![0u8; 1024];
    let txn = repo.begin_transaction().unwrap();
    let mut o = ostree_tar::ImportOptions::default();
    o.memory_budget = Some(Arc::clone(&budget));
    let s = ImportSession::with_options(&txn, o);
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            // A's sets, then (once B has run) the end of its archive.
            let r = Paused {
                first: std::io::Cursor::new(a_sets.clone()),
                rest: std::io::Cursor::new(end.clone()),
                go: Some(go_rx),
            };
            s.import_chunk_layer(r, Some("sha256:aa"))
        });
        // Wait until A holds its sets (the budget shows them), then import B.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while budget.used() < 2_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "layer A never cached its sets"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut b = b_sets.clone();
        b.extend_from_slice(&end);
        let e = s.import_chunk_layer(&b[..], Some("sha256:bb")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
        assert!(ostree_errors::chain(&e).contains("xattr sets"), "{e}");
        go_tx.send(()).unwrap();
        a.join().unwrap().expect("layer A alone fits");
    });
    // A is done: its bytes are back, and B alone now fits.
    assert_eq!(budget.used(), 0);
    let mut b = b_sets.clone();
    b.extend_from_slice(&end);
    s.import_chunk_layer(&b[..], Some("sha256:bb")).unwrap();
    drop(s);
    drop(txn);
}
