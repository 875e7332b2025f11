//! Plain OCI/Docker ("derived") layers imported as one ostree commit each (spec §8.3): path
//! rules, metadata per repository mode, whiteouts, hardlinks, hostile input. Layers are built in
//! code; the `ostree` CLI is the oracle (fsck, ls, checkout, and its own `--tree=tar=` import).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::AtomicBool;

use ostree_repo::format::gvariant::Value;
use ostree_repo::format::{Checksum, FileMeta, S_IFDIR, S_IFLNK, S_IFREG};
use ostree_repo::{Repo, RepoMode};
use ostree_tar::{
    AUTOCREATED_DIRS_KEY, ErrorKind, IMPORTER_VERSION, ImportLimits, OciLayerOptions,
    OciLayerOutcome, TarError, VarRule, import_oci_layer,
};
use test_support::tools::run;

use crate::*;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Builds a layer entry by entry with raw names (so `..`, absolute paths and odd whiteouts
/// survive), PAX records where asked.
struct Layer {
    b: tar::Builder<Vec<u8>>,
}

#[derive(Clone)]
struct Ent<'a> {
    path: &'a str,
    ty: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    data: &'a [u8],
    link: &'a str,
    pax: Vec<(String, Vec<u8>)>,
}

fn ent(path: &str, ty: tar::EntryType) -> Ent<'_> {
    let mode = if ty == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    };
    Ent {
        path,
        ty,
        mode,
        uid: 0,
        gid: 0,
        data: b"",
        link: "",
        pax: Vec::new(),
    }
}

impl Layer {
    fn new() -> Self {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn add(&mut self, e: Ent<'_>) -> &mut Self {
        let mut pax = e.pax.clone();
        if e.path.len() > 100 {
            pax.push(("path".into(), e.path.as_bytes().to_vec()));
        }
        if e.link.len() > 100 {
            pax.push(("linkpath".into(), e.link.as_bytes().to_vec()));
        }
        if !pax.is_empty() {
            self.b
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), &v[..])))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(e.ty);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(0);
        h.set_size(e.data.len() as u64);
        let old = h.as_old_mut();
        let n = e.path.len().min(100);
        old.name[..n].copy_from_slice(&e.path.as_bytes()[..n]);
        let n = e.link.len().min(100);
        old.linkname[..n].copy_from_slice(&e.link.as_bytes()[..n]);
        h.set_cksum();
        self.b.append(&h, e.data).unwrap();
        self
    }

    fn dir(&mut self, path: &str) -> &mut Self {
        self.add(ent(path, tar::EntryType::Directory))
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.add(Ent {
            data,
            ..ent(path, tar::EntryType::Regular)
        })
    }

    fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.add(Ent {
            link: target,
            mode: 0o777,
            ..ent(path, tar::EntryType::Symlink)
        })
    }

    fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.add(Ent {
            link: target,
            ..ent(path, tar::EntryType::Link)
        })
    }

    fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

/// Imports `data` in a fresh transaction and publishes the commit under ref `x`.
fn import(repo: &Repo, data: &[u8], opts: &OciLayerOptions) -> ostree_tar::Result<OciLayerOutcome> {
    let txn = repo.begin_transaction().unwrap();
    let out = import_oci_layer(&txn, data, DIGEST, opts, None)?;
    txn.set_ref("x", Some(out.commit)).unwrap();
    txn.commit().unwrap();
    Ok(out)
}

/// Imports `data`, expecting an error; nothing is published.
fn import_err(repo: &Repo, data: &[u8], opts: &OciLayerOptions) -> TarError {
    let txn = repo.begin_transaction().unwrap();
    let e = import_oci_layer(&txn, data, DIGEST, opts, None).unwrap_err();
    drop(txn);
    e
}

/// One node of a commit's tree as read back through the repository API.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(FileMeta),
    File(FileMeta, Vec<u8>, Checksum),
    Link(FileMeta, String, Checksum),
}

impl Node {
    fn meta(&self) -> &FileMeta {
        match self {
            Node::Dir(m) | Node::File(m, ..) | Node::Link(m, ..) => m,
        }
    }
    fn checksum(&self) -> Checksum {
        match self {
            Node::File(_, _, c) | Node::Link(_, _, c) => *c,
            Node::Dir(_) => panic!("a directory has no content checksum"),
        }
    }
    fn data(&self) -> &[u8] {
        match self {
            Node::File(_, d, _) => d,
            n => panic!("not a file: {n:?}"),
        }
    }
}

fn walk(repo: &Repo, commit: &Checksum) -> BTreeMap<String, Node> {
    fn rec(repo: &Repo, tree: Checksum, prefix: &str, out: &mut BTreeMap<String, Node>) {
        let t = repo.load_dirtree(&tree).unwrap();
        for f in t.files {
            let mut o = repo.read_content(&f.checksum).unwrap();
            let p = format!("{prefix}{}", f.name);
            let n = match o.symlink_target.take() {
                Some(t) => Node::Link(o.meta, t, f.checksum),
                None => {
                    let mut d = Vec::new();
                    o.reader.unwrap().read_to_end(&mut d).unwrap();
                    Node::File(o.meta, d, f.checksum)
                }
            };
            out.insert(p, n);
        }
        for d in t.dirs {
            let p = format!("{prefix}{}", d.name);
            out.insert(p.clone(), Node::Dir(repo.load_dirmeta(&d.meta).unwrap()));
            rec(repo, d.tree, &format!("{p}/"), out);
        }
    }
    let c = repo.load_commit(commit).unwrap();
    let mut out = BTreeMap::new();
    out.insert(
        String::new(),
        Node::Dir(repo.load_dirmeta(&c.root_meta).unwrap()),
    );
    rec(repo, c.root_tree, "", &mut out);
    out
}

fn paths(t: &BTreeMap<String, Node>) -> Vec<&str> {
    t.keys().map(String::as_str).collect()
}

fn autocreated(repo: &Repo, commit: &Checksum) -> Option<Vec<String>> {
    let c = repo.load_commit(commit).unwrap();
    match c.metadata.get(AUTOCREATED_DIRS_KEY)? {
        Value::Array(_, v) => Some(v.iter().map(|s| s.as_str().unwrap().to_string()).collect()),
        v => panic!("unexpected {v:?}"),
    }
}

fn opts() -> OciLayerOptions {
    OciLayerOptions::new()
}

fn filtered(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The layer of the path-rule tests: every top-level rule, absolute and `./` names, `//` and
/// `.` components, a hardlink into `/etc`, dropped specials below `/dev`.
fn rules_layer() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("./")
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0\n")
        .file("/etc/hosts", b"127.0.0.1 localhost\n")
        .file("./usr//bin/./x", b"x")
        .hardlink("usr/bin/passwd-link", "/etc/passwd")
        .dir("var/")
        .file("var/lib/a", b"a")
        .hardlink("var/lib/b", "./var/lib/a")
        .file("opt/x", b"opt")
        .file("boot/vmlinuz", b"k")
        .dir("home/")
        .add(Ent {
            mode: 0o1777,
            ..ent("tmp/", tar::EntryType::Directory)
        })
        .file("tmp/junk", b"j")
        .dir("run/")
        .dir("run/lock/")
        .dir("dev/")
        .add(ent("dev/null", tar::EntryType::Char))
        .add(ent("dev/fifo", tar::EntryType::Fifo))
        .dir("proc/")
        .file("topfile", b"t");
    l.bytes()
}

#[test]
fn path_rules_remap_keep_and_count() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let data = rules_layer();
    let out = import(&repo, &data, &opts()).unwrap();
    assert_eq!(out.entries, 21);
    assert_eq!(
        out.filtered,
        filtered(&[
            ("boot", 1),
            ("dev", 2),
            ("home", 1),
            ("opt", 1),
            ("run", 1),
            ("tmp", 1),
            ("topfile", 1)
        ])
    );
    let t = walk(&repo, &out.commit);
    assert_eq!(
        paths(&t),
        [
            "",
            "dev",
            "proc",
            "run",
            "tmp",
            "usr",
            "usr/bin",
            "usr/bin/passwd-link",
            "usr/bin/x",
            "usr/etc",
            "usr/etc/hosts",
            "usr/etc/passwd",
            "var",
            "var/lib",
            "var/lib/a",
            "var/lib/b"
        ]
    );
    assert_eq!(t["usr/etc/passwd"].data(), b"root:x:0:0\n");
    assert_eq!(
        t["usr/bin/passwd-link"].checksum(),
        t["usr/etc/passwd"].checksum()
    );
    assert_eq!(t["var/lib/b"].checksum(), t["var/lib/a"].checksum());
    assert_eq!(t["tmp"].meta().mode, S_IFDIR | 0o1777);
    assert_eq!(
        autocreated(&repo, &out.commit).unwrap(),
        ["usr", "usr/bin", "var/lib"]
    );
    // The oracle agrees on the tree and the repository.
    fsck_ok(repo.path());
    let ls = ostree().ls_rxc(repo.path(), "x").unwrap();
    assert!(ls.contains("/usr/etc/passwd"), "{ls}");
    assert!(ls.contains("d01777 0 0"), "{ls}");
    assert!(!ls.contains("/opt"), "{ls}");
}

#[test]
fn var_factory_rule_and_non_usr_allowed() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::BareUser);
    let data = rules_layer();
    let mut o = opts();
    o.var_rule = VarRule::Factory;
    let out = import(&repo, &data, &o).unwrap();
    let t = walk(&repo, &out.commit);
    assert!(!t.contains_key("var"));
    assert_eq!(t["usr/share/factory/var/lib/a"].data(), b"a");
    assert_eq!(
        t["usr/share/factory/var/lib/b"].checksum(),
        t["usr/share/factory/var/lib/a"].checksum()
    );
    assert_eq!(
        autocreated(&repo, &out.commit).unwrap(),
        [
            "usr",
            "usr/bin",
            "usr/share",
            "usr/share/factory",
            "usr/share/factory/var/lib"
        ]
    );
    fsck_ok(repo.path());

    let mut o = opts();
    o.allow_non_usr = true;
    let out = import(&repo, &data, &o).unwrap();
    assert_eq!(
        out.filtered,
        filtered(&[("dev", 2), ("run", 1), ("tmp", 1)])
    );
    let t = walk(&repo, &out.commit);
    for p in ["opt/x", "boot/vmlinuz", "home", "topfile", "var/lib/a"] {
        assert!(t.contains_key(p), "{p} missing");
    }
    assert!(!t.contains_key("tmp/junk"));
    fsck_ok(repo.path());
}

/// A layer with owners, special mode bits and PAX xattrs on files, directories and symlinks.
fn meta_layer(empty_xattr: bool) -> Vec<u8> {
    let x = |pairs: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.to_vec()))
            .collect()
    };
    // Out of order on purpose; a binary value with NUL and newline; optionally an empty value
    // (dropped, as libglnx drops them).
    let xs: [(&str, &[u8]); 3] = [
        ("user.z", b"last"),
        ("user.bin", b"a\0b\nc"),
        ("user.empty", b""),
    ];
    let mut l = Layer::new();
    l.dir("./")
        .dir("usr/")
        .add(Ent {
            mode: 0o2775,
            uid: 5,
            gid: 6,
            pax: x(&[("user.dir", b"d")]),
            ..ent("usr/d/", tar::EntryType::Directory)
        })
        .add(Ent {
            mode: 0o4755,
            uid: 1000,
            gid: 1001,
            data: b"#!/bin/sh\n",
            pax: x(if empty_xattr { &xs } else { &xs[..2] }),
            ..ent("usr/d/suid", tar::EntryType::Regular)
        })
        .add(Ent {
            mode: 0o640,
            uid: 0,
            gid: 42,
            data: b"secret",
            ..ent("usr/d/shadow", tar::EntryType::Regular)
        })
        .add(Ent {
            link: "suid",
            mode: 0o777,
            uid: 7,
            gid: 8,
            ..ent("usr/d/link", tar::EntryType::Symlink)
        })
        .add(Ent {
            mode: 0o1777,
            ..ent("usr/sticky/", tar::EntryType::Directory)
        });
    l.bytes()
}

#[test]
fn metadata_preserved_in_bare_and_bare_user() {
    let d = scratch();
    let data = meta_layer(true);
    for (mode, name) in [
        (RepoMode::Bare, "bare"),
        (RepoMode::BareUser, "bare-user"),
        (RepoMode::Archive, "archive"),
    ] {
        let repo = new_repo(d.path(), name, mode);
        let out = import(&repo, &data, &opts()).unwrap();
        assert_eq!(autocreated(&repo, &out.commit), None, "{name}");
        let t = walk(&repo, &out.commit);
        let m = t["usr/d/suid"].meta();
        assert_eq!(
            (m.uid, m.gid, m.mode),
            (1000, 1001, S_IFREG | 0o4755),
            "{name}"
        );
        let names: Vec<&[u8]> = m.xattrs.pairs().iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(names, [&b"user.bin"[..], b"user.z"], "{name}");
        assert_eq!(m.xattrs.pairs()[0].1, b"a\0b\nc");
        let m = t["usr/d"].meta();
        assert_eq!((m.uid, m.gid, m.mode), (5, 6, S_IFDIR | 0o2775), "{name}");
        assert_eq!(m.xattrs.pairs().len(), 1);
        let m = t["usr/d/link"].meta();
        assert_eq!((m.uid, m.gid, m.mode), (7, 8, S_IFLNK | 0o777), "{name}");
        assert_eq!(t["usr/d/shadow"].meta().gid, 42);
        assert_eq!(t["usr/sticky"].meta().mode, S_IFDIR | 0o1777);
        fsck_ok(repo.path());
        if mode == RepoMode::Bare {
            // A real checkout (we run as root) shows the same.
            let co = d.path().join("co");
            ostree().checkout(repo.path(), "x", &co, false).unwrap();
            let md = std::fs::symlink_metadata(co.join("usr/d/suid")).unwrap();
            assert_eq!((md.uid(), md.gid(), md.mode()), (1000, 1001, 0o104755));
            let md = std::fs::symlink_metadata(co.join("usr/d")).unwrap();
            assert_eq!((md.uid(), md.gid(), md.mode()), (5, 6, 0o42775));
            let x = test_support::compare::read_xattrs(&co.join("usr/d/suid")).unwrap();
            assert_eq!(x.get(&b"user.bin"[..]).unwrap(), b"a\0b\nc");
            assert_eq!(x.get(&b"user.z"[..]).unwrap(), b"last");
        }
    }
}

#[test]
fn bare_user_only_canonical_permissions() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::BareUserOnly);
    let out = import(&repo, &meta_layer(true), &opts()).unwrap();
    let t = walk(&repo, &out.commit);
    for (p, node) in &t {
        let m = node.meta();
        assert_eq!((m.uid, m.gid), (0, 0), "{p}");
        assert!(m.xattrs.is_empty(), "{p}");
    }
    assert_eq!(t["usr/d/suid"].meta().mode, S_IFREG | 0o755);
    assert_eq!(t["usr/d/shadow"].meta().mode, S_IFREG | 0o640);
    assert_eq!(t["usr/d"].meta().mode, S_IFDIR | 0o755);
    assert_eq!(t["usr/sticky"].meta().mode, S_IFDIR | 0o755);
    assert_eq!(t["usr/d/link"].meta().mode, S_IFLNK | 0o777);
    fsck_ok(repo.path());
}

/// Our layer commit's tree equals what `ostree commit --tree=tar=` makes of the same layer (one
/// that needs no remapping), in every mode: same root dirtree and dirmeta checksums.
#[test]
fn tree_matches_ostree_tar_import() {
    let d = scratch();
    let mut l = Layer::new();
    l.dir("./")
        .dir("usr/")
        .dir("usr/bin/")
        .file("usr/bin/a", b"aaa")
        .hardlink("usr/bin/a2", "usr/bin/a")
        .symlink("usr/bin/s", "a")
        .file("usr/lib/.wh.gone", b"")
        .file("usr/lib/deep/er/f", b"f");
    let plain = l.bytes();
    let mut layers = vec![("plain", plain)];
    // libostree keeps zero-length xattr values in the checksum and so writes an object its own
    // fsck rejects; we drop them (as libglnx does reading a filesystem). Compare without them.
    layers.push(("meta", meta_layer(false)));
    for (mode, name) in MODES {
        for (lname, data) in &layers {
            let tarf = d.path().join(format!("{lname}.tar"));
            std::fs::write(&tarf, data).unwrap();
            let ours = new_repo(d.path(), &format!("ours-{name}-{lname}"), mode);
            let out = import(&ours, data, &opts()).unwrap();
            let theirs = d.path().join(format!("theirs-{name}-{lname}"));
            ostree().init(&theirs, name).unwrap();
            let mut c = ostree().command(&[
                "commit",
                &format!("--repo={}", theirs.display()),
                "--branch=x",
                &format!("--tree=tar={}", tarf.display()),
                "--tar-autocreate-parents",
                "--no-bindings",
            ]);
            let csum = run(&mut c).unwrap();
            let theirs = Repo::open(&theirs).unwrap();
            let tc = theirs.load_commit(&csum.trim().parse().unwrap()).unwrap();
            let oc = ours.load_commit(&out.commit).unwrap();
            assert_eq!(
                (oc.root_tree, oc.root_meta),
                (tc.root_tree, tc.root_meta),
                "{name} {lname}:\nours:\n{}\ntheirs:\n{}",
                ostree().ls_rxc(ours.path(), "x").unwrap(),
                ostree().ls_rxc(theirs.path(), "x").unwrap()
            );
            fsck_ok(ours.path());
        }
    }
}

#[test]
fn whiteouts_stored_as_empty_files() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let mut l = Layer::new();
    l.add(Ent {
        mode: 0,
        ..ent("usr/lib/.wh.foo", tar::EntryType::Regular)
    })
    .file("usr/share/doc/.wh..wh..opq", b"")
    .file("etc/.wh.motd", b"")
    .file("opt/.wh.x", b"")
    .file("run/.wh.y", b"");
    let out = import(&repo, &l.bytes(), &opts()).unwrap();
    assert_eq!(out.filtered, filtered(&[("opt", 1), ("run", 1)]));
    let t = walk(&repo, &out.commit);
    assert_eq!(
        paths(&t),
        [
            "",
            "usr",
            "usr/etc",
            "usr/etc/.wh.motd",
            "usr/lib",
            "usr/lib/.wh.foo",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/.wh..wh..opq"
        ]
    );
    assert_eq!(t["usr/lib/.wh.foo"].meta().mode, S_IFREG);
    assert_eq!(t["usr/lib/.wh.foo"].data(), b"");
    assert_eq!(t["usr/etc/.wh.motd"].data(), b"");
    assert_eq!(t["usr/share/doc/.wh..wh..opq"].meta().mode, S_IFREG | 0o644);
    fsck_ok(repo.path());
    let co = d.path().join("co");
    ostree().checkout(repo.path(), "x", &co, false).unwrap();
    let md = std::fs::symlink_metadata(co.join("usr/share/doc/.wh..wh..opq")).unwrap();
    assert!(md.is_file() && md.len() == 0);
}

/// libostree's own whiteout processing (what ostree-ext's checkout-based merge uses) applies our
/// stored whiteouts.
#[test]
fn libostree_merge_applies_our_whiteouts() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let base = Layer::new()
        .file("usr/lib/foo", b"foo")
        .file("usr/lib/keep", b"keep")
        .file("usr/share/doc/a", b"a")
        .bytes();
    let upper = Layer::new()
        .file("usr/lib/.wh.foo", b"")
        .file("usr/share/doc/.wh..wh..opq", b"")
        .file("usr/share/doc/b", b"b")
        .bytes();
    let base = import(&repo, &base, &opts()).unwrap().commit;
    let upper = import(&repo, &upper, &opts()).unwrap().commit;
    let co = d.path().join("co");
    ostree()
        .checkout(repo.path(), &base.to_hex(), &co, false)
        .unwrap();
    let mut c = ostree().command(&[
        "checkout",
        &format!("--repo={}", repo.path().display()),
        "--union",
        "--whiteouts",
        &upper.to_hex(),
        &co.display().to_string(),
    ]);
    run(&mut c).unwrap();
    let list = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(co.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list("usr/lib"), ["keep"]);
    assert_eq!(list("usr/share/doc"), ["b"]);
}

fn assert_err(e: &TarError, kind: ErrorKind, needle: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    let s = ostree_errors::chain(&e);
    assert!(s.contains(&format!("layer {DIGEST}")), "{s}");
    assert!(s.contains(needle), "{needle:?} not in {s}");
}

#[test]
fn bad_whiteouts_and_dotdot_refused() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    for name in [".wh.", ".wh..", ".wh..."] {
        let p = format!("usr/lib/{name}");
        let data = Layer::new().file(&p, b"").bytes();
        let e = import_err(&repo, &data, &opts());
        assert_err(&e, ErrorKind::Invalid, &format!("{p:?}"));
    }
    // `..` in the header name, in a PAX path (which replaces a harmless name), in a long name,
    // and in a hardlink target.
    let data = Layer::new().file("usr/../etc/passwd", b"x").bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::UnsafePath,
        "usr/../etc/passwd",
    );
    let data = Layer::new()
        .add(Ent {
            pax: vec![("path".into(), b"usr/../../x".to_vec())],
            ..ent("usr/harmless", tar::EntryType::Regular)
        })
        .bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::UnsafePath,
        "usr/../../x",
    );
    let long = format!("usr/{}/../../../x", "d".repeat(120));
    let data = Layer::new().file(&long, b"x").bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::UnsafePath,
        "`..`",
    );
    let data = Layer::new()
        .file("usr/a", b"a")
        .hardlink("usr/b", "usr/../../a")
        .bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::UnsafePath,
        "hardlink target",
    );
    fsck_ok(repo.path());
    assert!(ostree().refs(repo.path()).unwrap().is_empty());
}

#[test]
fn pax_names_cannot_bypass_rules() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let data = Layer::new()
        .add(Ent {
            data: b"evil",
            pax: vec![("path".into(), b"/opt/evil".to_vec())],
            ..ent("usr/ok", tar::EntryType::Regular)
        })
        .add(Ent {
            data: b"conf",
            pax: vec![("path".into(), b"etc/conf".to_vec())],
            ..ent("usr/other", tar::EntryType::Regular)
        })
        .add(Ent {
            pax: vec![("linkpath".into(), b"/etc/conf".to_vec())],
            link: "usr/ok",
            ..ent("usr/link", tar::EntryType::Link)
        })
        .bytes();
    let out = import(&repo, &data, &opts()).unwrap();
    assert_eq!(out.filtered, filtered(&[("opt", 1)]));
    let t = walk(&repo, &out.commit);
    assert_eq!(
        paths(&t),
        ["", "usr", "usr/etc", "usr/etc/conf", "usr/link"]
    );
    assert_eq!(t["usr/link"].data(), b"conf");
    fsck_ok(repo.path());
}

#[test]
fn hardlinks_to_sysroot_objects_resolve() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::BareUser);
    let obj = concat!(
        "sysroot/ostree/repo/objects/ab/",
        "cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789.file"
    );
    let data = Layer::new()
        .dir("sysroot/")
        .dir("sysroot/ostree/repo/objects/ab/")
        .add(Ent {
            mode: 0o755,
            data: b"modified tool",
            ..ent(obj, tar::EntryType::Regular)
        })
        .hardlink("usr/bin/tool", obj)
        .hardlink("/usr/bin/tool2", &format!("/{obj}"))
        .bytes();
    let out = import(&repo, &data, &opts()).unwrap();
    assert_eq!(out.filtered, filtered(&[("sysroot", 3)]));
    let t = walk(&repo, &out.commit);
    assert_eq!(
        paths(&t),
        ["", "usr", "usr/bin", "usr/bin/tool", "usr/bin/tool2"]
    );
    assert_eq!(t["usr/bin/tool"].data(), b"modified tool");
    assert_eq!(t["usr/bin/tool"].meta().mode, S_IFREG | 0o755);
    assert_eq!(t["usr/bin/tool2"].checksum(), t["usr/bin/tool"].checksum());
    fsck_ok(repo.path());
}

#[test]
fn dangling_hardlinks_and_device_nodes_refused() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let data = Layer::new().hardlink("usr/b", "usr/nope").bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::Invalid,
        "not an earlier entry",
    );
    let data = Layer::new()
        .file("opt/x", b"x")
        .hardlink("usr/x", "opt/x")
        .bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::Invalid,
        "dropped by the path rules",
    );
    let data = Layer::new()
        .dir("usr/d/")
        .hardlink("usr/x", "usr/d")
        .bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::Invalid,
        "is a directory",
    );
    for (ty, what) in [
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "fifo"),
        (tar::EntryType::GNUSparse, "sparse"),
    ] {
        let data = Layer::new().add(ent("etc/node", ty)).bytes();
        let e = import_err(&repo, &data, &opts());
        assert_err(&e, ErrorKind::Unsupported, what);
        assert!(ostree_errors::chain(&e).contains("\"etc/node\""), "{e}");
    }
    // Below a non-directory.
    let data = Layer::new()
        .symlink("usr/lib", "lib64")
        .file("usr/lib/x", b"x")
        .bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::Invalid,
        "not a directory",
    );
    // A non-directory root.
    let data = Layer::new().symlink("./", "usr").bytes();
    assert_err(
        &import_err(&repo, &data, &opts()),
        ErrorKind::Invalid,
        "root",
    );
    fsck_ok(repo.path());
    assert!(ostree().refs(repo.path()).unwrap().is_empty());
}

#[test]
fn duplicate_paths_later_wins() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let data = Layer::new()
        .file("usr/a", b"one")
        .file("usr/a", b"two")
        // A later entry for an existing directory: new metadata, children kept.
        .dir("usr/d/")
        .file("usr/d/x", b"x")
        .add(Ent {
            mode: 0o700,
            uid: 3,
            ..ent("usr/d", tar::EntryType::Directory)
        })
        // A directory replacing a file and a file replacing a directory.
        .file("usr/f", b"f")
        .dir("usr/f/")
        .file("usr/g/sub/y", b"y")
        .file("usr/g", b"g")
        // An autocreated directory given an entry later is no longer autocreated.
        .file("usr/h/i", b"i")
        .add(Ent {
            mode: 0o750,
            ..ent("usr/h/", tar::EntryType::Directory)
        })
        // A hardlink follows what its target is at that point.
        .file("usr/t", b"t1")
        .hardlink("usr/t-link", "usr/t")
        .file("usr/t", b"t2")
        .bytes();
    let out = import(&repo, &data, &opts()).unwrap();
    let t = walk(&repo, &out.commit);
    assert_eq!(
        paths(&t),
        [
            "",
            "usr",
            "usr/a",
            "usr/d",
            "usr/d/x",
            "usr/f",
            "usr/g",
            "usr/h",
            "usr/h/i",
            "usr/t",
            "usr/t-link"
        ]
    );
    assert_eq!(t["usr/a"].data(), b"two");
    assert_eq!(t["usr/d"].meta().mode, S_IFDIR | 0o700);
    assert_eq!(t["usr/d"].meta().uid, 3);
    assert!(matches!(t["usr/f"], Node::Dir(_)));
    assert_eq!(t["usr/g"].data(), b"g");
    assert_eq!(t["usr/h"].meta().mode, S_IFDIR | 0o750);
    assert_eq!(t["usr/t-link"].data(), b"t1");
    assert_eq!(t["usr/t"].data(), b"t2");
    // `usr/g` and `usr/g/sub` were autocreated, then replaced by a file.
    assert_eq!(autocreated(&repo, &out.commit).unwrap(), [".", "usr"]);
    fsck_ok(repo.path());
}

#[test]
fn commit_metadata_and_determinism() {
    let d = scratch();
    let data = Layer::new().file("etc/foo", b"foo").bytes();
    for (mode, name) in MODES {
        let a = new_repo(d.path(), &format!("a-{name}"), mode);
        let b = new_repo(d.path(), &format!("b-{name}"), mode);
        let ca = import(&a, &data, &opts()).unwrap().commit;
        let cb = import(&b, &data, &opts()).unwrap().commit;
        assert_eq!(ca, cb, "{name}");
        let c = a.load_commit(&ca).unwrap();
        assert_eq!((c.timestamp, c.parent), (0, None));
        assert!(c.subject.is_empty() && c.body.is_empty());
        let keys: Vec<&str> = c.metadata.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [AUTOCREATED_DIRS_KEY, "ostree.importer.version"]);
        assert_eq!(
            c.metadata.get_str("ostree.importer.version"),
            Some(IMPORTER_VERSION)
        );
        assert_eq!(autocreated(&a, &ca).unwrap(), [".", "usr", "usr/etc"]);
        fsck_ok(a.path());
        let show = ostree().show_raw(a.path(), "x").unwrap();
        assert!(show.contains("ostree-container.autocreated-dirs"), "{show}");
    }
}

#[test]
fn root_entry_sets_root_metadata() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    // Late, and without a trailing slash: still the root, and "." leaves the autocreated set.
    let data = Layer::new()
        .file("usr/x", b"x")
        .add(Ent {
            mode: 0o750,
            uid: 9,
            gid: 10,
            ..ent(".", tar::EntryType::Directory)
        })
        .bytes();
    let out = import(&repo, &data, &opts()).unwrap();
    let t = walk(&repo, &out.commit);
    let m = t[""].meta();
    assert_eq!((m.uid, m.gid, m.mode), (9, 10, S_IFDIR | 0o750));
    assert_eq!(autocreated(&repo, &out.commit).unwrap(), ["usr"]);
    fsck_ok(repo.path());
}

#[test]
fn limits_and_interrupt() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Bare);
    let data = rules_layer();
    let mut o = opts();
    o.limits = ImportLimits {
        max_entries: 5,
        ..ImportLimits::default()
    };
    assert_eq!(import_err(&repo, &data, &o).kind(), ErrorKind::TooLarge);
    let mut o = opts();
    o.limits = ImportLimits {
        max_path: 8,
        ..ImportLimits::default()
    };
    assert_eq!(import_err(&repo, &data, &o).kind(), ErrorKind::TooLarge);
    let big = Layer::new()
        .add(Ent {
            pax: vec![("SCHILY.xattr.user.big".into(), vec![b'v'; 4096])],
            ..ent("usr/x", tar::EntryType::Regular)
        })
        .bytes();
    let mut o = opts();
    o.limits = ImportLimits {
        max_xattrs: 1024,
        ..ImportLimits::default()
    };
    assert_eq!(import_err(&repo, &big, &o).kind(), ErrorKind::TooLarge);
    let nameless = Layer::new()
        .add(Ent {
            pax: vec![("SCHILY.xattr.".into(), b"v".to_vec())],
            ..ent("usr/x", tar::EntryType::Regular)
        })
        .bytes();
    assert_err(
        &import_err(&repo, &nameless, &opts()),
        ErrorKind::Invalid,
        "xattr name",
    );
    let stop = AtomicBool::new(true);
    let txn = repo.begin_transaction().unwrap();
    let e = import_oci_layer(&txn, &data[..], DIGEST, &opts(), Some(&stop)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Interrupted);
    drop(txn);
    // Truncated and not-a-tar input.
    let e = import_err(&repo, &data[..data.len() - 1024], &opts());
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
    let e = import_err(&repo, &[7u8; 4096], &opts());
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    fsck_ok(repo.path());
}

#[test]
fn paths_nested_deeper_than_ostree_max_recursion_refused() {
    let d = scratch();
    let repo = new_repo(d.path(), "r", RepoMode::Archive);
    let nested = |levels: usize| {
        let mut p = String::from("usr");
        for _ in 1..levels {
            p.push_str("/d");
        }
        p
    };
    // A directory at depth 256 and a file in it: the deepest dirtree libostree accepts.
    let ok = Layer::new()
        .dir(&nested(256))
        .file(&format!("{}/f", nested(256)), b"x")
        .bytes();
    let out = import(&repo, &ok, &opts()).unwrap();
    assert!(walk(&repo, &out.commit).contains_key(&format!("{}/f", nested(256))));
    // A directory one deeper, or a file whose parent is.
    for layer in [
        Layer::new().dir(&nested(257)).bytes(),
        Layer::new()
            .file(&format!("{}/f", nested(257)), b"x")
            .bytes(),
    ] {
        let e = import_err(&repo, &layer, &opts());
        assert_err(&e, ErrorKind::TooLarge, "OSTREE_MAX_RECURSION");
        assert!(
            ostree_errors::chain(&e).contains("257 exceeds the limit of 256"),
            "{e}"
        );
    }
}
