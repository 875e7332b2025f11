//! The exported stream against the spec's table 4.5 and GNU tar.

use std::os::unix::fs::MetadataExt;

use ostree_tar::{ExportOptions, ExportPlan, XattrsStyle};
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::tools::{require_tool, run};

use crate::*;

const EMPTY_X: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const XAT_X: &str = "e90c9d467f9c4d6bbde58c3780a6deee39518c20a5efe2bd1e828c7b4ba3a4c7";

fn obj(c: &str, ext: &str) -> String {
    format!("sysroot/ostree/repo/objects/{}/{}.{ext}", &c[..2], &c[2..])
}

/// One tar entry as listed: type, mode, uid, gid, size, path, link target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row(char, u32, u64, u64, u64, String, String);

fn row(t: char, mode: u32, ids: (u64, u64), size: u64, path: &str, link: &str) -> Row {
    Row(t, mode, ids.0, ids.1, size, path.into(), link.into())
}

/// Lists a tar with the `tar` crate, checking the header conventions of spec §4.1 on the way.
fn list(data: &[u8]) -> Vec<Row> {
    let mut a = tar::Archive::new(data);
    let mut rows = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert!(h.as_gnu().is_some(), "GNU header expected");
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let mode = h.mode().unwrap();
        assert_eq!(mode & !0o7777, 0, "mode has S_IFMT bits");
        let t = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'r',
            tar::EntryType::Link => 'h',
            tar::EntryType::Symlink => 's',
            t => panic!("unexpected type {t:?}"),
        };
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        rows.push(Row(
            t,
            mode,
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.size().unwrap(),
            path,
            link,
        ));
    }
    rows
}

/// Table 4.5 (older writer: `.file-xattrs` blobs and hardlinks); `regular_links` gives the
/// current style instead (regular `.file-xattrs-link` holding the xattr bytes, no blobs).
fn table_4_5(regular_links: bool) -> Vec<Row> {
    let z = (0, 0);
    let mut t = vec![row('d', 0o755, z, 0, "./", "")];
    for d in [
        "sysroot",
        "sysroot/ostree",
        "sysroot/ostree/repo",
        "sysroot/ostree/repo/objects",
    ] {
        t.push(row('d', 0o755, z, 0, d, ""));
    }
    for i in 0..=255u8 {
        t.push(row(
            'd',
            0o755,
            z,
            0,
            &format!("sysroot/ostree/repo/objects/{i:02x}"),
            "",
        ));
    }
    for d in [
        "extensions",
        "refs",
        "refs/heads",
        "refs/mirrors",
        "refs/remotes",
        "state",
        "tmp",
        "tmp/cache",
    ] {
        t.push(row(
            'd',
            0o755,
            z,
            0,
            &format!("sysroot/ostree/repo/{d}"),
            "",
        ));
    }
    assert_eq!(t.len(), 269);
    t.push(row('r', 0o644, z, 45, "sysroot/ostree/repo/config", ""));
    t.push(row(
        'r',
        0o644,
        z,
        142,
        &obj(REFERENCE_COMMIT, "commit"),
        "",
    ));
    t.push(row(
        'r',
        0o644,
        z,
        16,
        &obj(REFERENCE_COMMIT, "commitmeta"),
        "",
    ));
    t.push(row(
        'r',
        0o644,
        z,
        12,
        &obj(
            "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488",
            "dirmeta",
        ),
        "",
    ));
    t.push(row(
        'r',
        0o644,
        z,
        394,
        &obj(
            "c5c74b693dcaf6a0a8db02894283118b6b6b36229170e1a73849bb1f8b0ab317",
            "dirtree",
        ),
        "",
    ));
    let mut blobs = std::collections::HashSet::new();
    let mut content = |t: &mut Vec<Row>,
                       c: &str,
                       xattrs: (&str, u64),
                       ty: char,
                       mode: u32,
                       ids: (u64, u64),
                       size: u64,
                       target: &str,
                       path: &str| {
        if regular_links {
            t.push(row(
                'r',
                0o644,
                z,
                xattrs.1,
                &obj(c, "file-xattrs-link"),
                "",
            ));
        } else {
            if blobs.insert(xattrs.0.to_string()) {
                t.push(row(
                    'r',
                    0o644,
                    z,
                    xattrs.1,
                    &obj(xattrs.0, "file-xattrs"),
                    "",
                ));
            }
            t.push(row(
                'h',
                0o644,
                z,
                0,
                &obj(c, "file-xattrs-link"),
                &obj(xattrs.0, "file-xattrs"),
            ));
        }
        t.push(row(ty, mode, ids, size, &obj(c, "file"), target));
        if ty == 'r' && size == 0 {
            t.push(row('r', mode, ids, 0, path, ""));
        } else {
            t.push(row('h', mode, ids, 0, path, &obj(c, "file")));
        }
    };
    let e = (EMPTY_X, 0);
    content(
        &mut t,
        "cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e",
        e,
        'r',
        0o644,
        z,
        0,
        "",
        "empty",
    );
    content(
        &mut t,
        "81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6",
        e,
        'r',
        0o644,
        z,
        12,
        "",
        "hello.txt",
    );
    content(
        &mut t,
        "f66efa496a72379413c44593de510dc344beb045294f1a543da87b2b6118db35",
        e,
        's',
        0o777,
        z,
        0,
        "hello.txt",
        "link",
    );
    content(
        &mut t,
        "89b350d278ff59ba4780bc377b8ebfee8ade6b55c99fab1ec84e133bc6ea52c5",
        e,
        'r',
        0o755,
        z,
        18,
        "",
        "run.sh",
    );
    content(
        &mut t,
        "f9c6ed2613c724cea0822249a71fc2a154ff6c3efb25e04c1ec9b942faff8b66",
        e,
        'r',
        0o4755,
        z,
        5,
        "",
        "suid",
    );
    content(
        &mut t,
        "20e9509d2d0c639033069b3e0ae3c26052208dc6a05515cf3dd61abfa4b5b4de",
        (XAT_X, 34),
        'r',
        0o644,
        z,
        11,
        "",
        "xat.txt",
    );
    t.push(row('d', 0o755, z, 0, "emptydir", ""));
    t.push(row(
        'r',
        0o644,
        z,
        1,
        &obj(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "dirtree",
        ),
        "",
    ));
    t.push(row(
        'r',
        0o644,
        z,
        28,
        &obj(
            "df3f294304399fd48f36e53432ced7b16322c5d41e2f02769948bb5a8b2902ef",
            "dirmeta",
        ),
        "",
    ));
    t.push(row('d', 0o755, z, 0, "sub", ""));
    t.push(row(
        'r',
        0o644,
        z,
        41,
        &obj(
            "601c679513a6632b79fa9f5d9f76be580d0652d55dc617867118f482ca277acf",
            "dirtree",
        ),
        "",
    ));
    content(
        &mut t,
        "ef08f3dccb4922720fe8a460db52ac14a3b3057045425884e7d909ff7fe7f4d7",
        e,
        'r',
        0o640,
        (1000, 1001),
        7,
        "",
        "sub/file2",
    );
    t.push(row('d', 0o1777, z, 0, "var/tmp", ""));
    t
}

fn assert_rows(actual: &[Row], expected: &[Row]) {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "row {i}");
    }
    assert_eq!(actual.len(), expected.len());
}

#[test]
fn reference_export_matches_table_4_5() {
    let base = scratch();
    let src = make_source(base.path(), "bare", TreeKind::Reference);
    let mut old = Vec::new();
    let mut opts = ExportOptions::default();
    opts.xattrs_style = XattrsStyle::Hardlink;
    ExportPlan::with_options(&src.repo, src.commit, opts)
        .unwrap()
        .write_export(&mut old)
        .unwrap();
    assert_rows(&list(&old), &table_4_5(false));
    // The default (current-writer) style differs only in the xattr references.
    let new = export_bytes(&src.repo, &src.commit);
    assert_rows(&list(&new), &table_4_5(true));
    // Both styles import to the same commit.
    for (i, data) in [old, new].iter().enumerate() {
        let dest = new_repo(
            base.path(),
            &format!("d{i}"),
            ostree_repo::RepoMode::BareUser,
        );
        assert_eq!(import_commit_layer(&dest, data).unwrap(), src.commit);
        fsck_ok(dest.path());
    }
}

#[test]
fn encapsulate_commit_layer_order() {
    // Spec §4.5 last paragraph: the walk first, then var/tmp, then content in checksum order.
    let base = scratch();
    let src = make_source(base.path(), "bare", TreeKind::Reference);
    let plan = ExportPlan::new(&src.repo, src.commit).unwrap();
    let mut out = Vec::new();
    plan.write_commit_layer(&mut out, &Default::default())
        .unwrap();
    let rows = list(&out);
    let paths: Vec<&str> = rows.iter().map(|r| r.5.as_str()).collect();
    assert!(paths[273].ends_with(".dirtree") && paths[274] == "emptydir" && paths[277] == "sub");
    assert_eq!(paths[279], "var/tmp");
    assert!(paths[280].starts_with("sysroot/ostree/repo/objects/20/e9509d"));
    assert_eq!(paths[282], "xat.txt");
    let files: Vec<&str> = rows[280..]
        .iter()
        .filter(|r| r.5.ends_with(".file"))
        .map(|r| r.5.as_str())
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert_eq!(files.len(), 7);
    // And it imports.
    let dest = new_repo(base.path(), "d", ostree_repo::RepoMode::Archive);
    assert_eq!(import_commit_layer(&dest, &out).unwrap(), src.commit);
}

/// Removes `p` (file or tree) if present.
fn rm(p: &std::path::Path) {
    if p.symlink_metadata().is_ok() {
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }
}

fn gnu_tar_extract(kind: TreeKind) {
    let gnu = require_tool("tar", "tar").unwrap();
    let base = scratch();
    let o = ostree();
    let src = make_source(base.path(), "bare", kind);
    let data = export_bytes(&src.repo, &src.commit);
    let file = base.path().join("export.tar");
    std::fs::write(&file, &data).unwrap();
    let x = base.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(std::process::Command::new(&gnu)
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(&x))
    .unwrap();
    // Repo skeleton.
    let repo = x.join("sysroot/ostree/repo");
    assert_eq!(
        std::fs::read(repo.join("config")).unwrap(),
        ostree_tar::layout::REPO_CONFIG
    );
    for d in [
        "objects/00",
        "objects/ff",
        "refs/heads",
        "refs/mirrors",
        "refs/remotes",
        "state",
        "tmp/cache",
        "extensions",
    ] {
        assert!(repo.join(d).is_dir(), "{d}");
    }
    let vt = std::fs::symlink_metadata(x.join("var/tmp")).unwrap();
    assert_eq!(vt.mode() & 0o7777, 0o1777);
    // Checkout hardlinks point into the object store; zero-size files are separate.
    let plan = ExportPlan::new(&src.repo, src.commit).unwrap();
    for c in plan.content_objects() {
        let objp = x.join(format!(
            "sysroot/ostree/repo/objects/{}/{}.file",
            &c.to_hex()[..2],
            &c.to_hex()[2..]
        ));
        let om = std::fs::symlink_metadata(&objp).unwrap();
        for p in plan.paths_of(c).unwrap() {
            let cp = x.join(ostree_tar::layout::checkout_path(p));
            let m = std::fs::symlink_metadata(&cp).unwrap();
            if om.is_file() && om.len() == 0 {
                assert_ne!(
                    m.ino(),
                    om.ino(),
                    "{p}: zero-size file must not be a hardlink"
                );
            } else {
                assert_eq!(
                    m.ino(),
                    om.ino(),
                    "{p}: not a hardlink to {}",
                    objp.display()
                );
            }
        }
    }
    // The checkout view equals `ostree checkout` (without xattrs, which the tar view lacks).
    rm(&x.join("sysroot"));
    let has_var = src
        .repo
        .load_dirtree(&src.repo.load_commit(&src.commit).unwrap().root_tree)
        .unwrap()
        .dirs
        .iter()
        .any(|d| d.name == "var");
    if has_var {
        rm(&x.join("var/tmp"));
    } else {
        rm(&x.join("var"));
    }
    if x.join("etc").exists() {
        std::fs::rename(x.join("etc"), x.join("usr/etc")).unwrap();
    }
    let co = base.path().join("co");
    o.checkout(&src.dir, &src.commit.to_hex(), &co, false)
        .unwrap();
    let opts = SnapshotOptions {
        xattrs: false,
        ..Default::default()
    };
    assert_trees_equal(&co, &x, &opts).unwrap();
}

#[test]
fn gnu_tar_extracts_reference_export() {
    gnu_tar_extract(TreeKind::Reference);
}

#[test]
fn gnu_tar_extracts_generated_export() {
    gnu_tar_extract(TreeKind::Generated);
}
