//! Byte-exact vectors from ostree-repo-format.md §4.3 and §13, produced by libostree 2022.7.

use ostree_format::gvariant::{Type, Value, from_bytes_normal};
use ostree_format::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '|'], "")).unwrap()
}
fn c(s: &str) -> Checksum {
    s.parse().unwrap()
}
fn meta(uid: u32, gid: u32, mode: u32) -> FileMeta {
    FileMeta {
        uid,
        gid,
        mode,
        xattrs: Xattrs::new(),
    }
}
fn xat() -> Xattrs {
    // set in unsorted order, as the reference tree does
    Xattrs::canonical(vec![
        (b"user.zeta".to_vec(), b"last".to_vec()),
        (b"user.alpha".to_vec(), b"first".to_vec()),
    ])
}

const EMPTY_TREE: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
const ROOT_META: &str = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488";

#[test]
fn basic_objects() {
    let dm = meta(0, 0, 0o40755).to_dirmeta_bytes();
    assert_eq!(dm, h("00000000 00000000 000041ed"));
    assert_eq!(Checksum::digest(&dm), c(ROOT_META));
    let empty = DirTree::default().to_bytes();
    assert_eq!(empty, vec![0]);
    assert_eq!(Checksum::digest(&empty), c(EMPTY_TREE));
    assert!(Xattrs::new().to_bytes().is_empty());
}

#[test]
fn header_streams() {
    assert_eq!(
        length_prefixed(&file_header(&meta(0, 0, 0o100644), None)),
        h("00000012 00000000 | 00000000 00000000 000081a4 00000000 | 00 | 11")
    );
    assert_eq!(
        length_prefixed(&file_header(&meta(0, 0, 0o120777), Some("hello.txt"))),
        h("0000001b 00000000 | 00000000 00000000 0000a1ff 00000000 | 68656c6c6f2e74787400 | 1a")
    );
    let m = FileMeta {
        xattrs: xat(),
        ..meta(0, 0, 0o100644)
    };
    assert_eq!(
        length_prefixed(&file_header(&m, None)),
        h(
            "00000034 00000000 | 00000000 00000000 000081a4 00000000 | 00 | 757365722e616c70686100 6669727374 0b 757365722e7a65746100 6c617374 0a 11 20 | 11"
        )
    );
    assert_eq!(
        length_prefixed(&archive_header(12, &meta(0, 0, 0o100644), None)),
        h("0000001a 00000000 | 00000000 0000000c | 00000000 00000000 000081a4 00000000 | 00 | 19")
    );
    let parsed = parse_archive_header(&archive_header(12, &m, None)).unwrap();
    assert_eq!(parsed.size, 12);
    assert_eq!(parsed.meta, m);
    assert_eq!(
        FileMeta {
            xattrs: xat(),
            ..meta(0, 0, 0o100644)
        }
        .to_dirmeta_bytes(),
        h(
            "00000000 00000000 000081a4 | 757365722e616c70686100 6669727374 0b | 757365722e7a65746100 6c617374 0a | 11 20"
        )
    );
}

struct Tree {
    empty: Checksum,
    hello: Checksum,
    link: Checksum,
    run: Checksum,
    suid: Checksum,
    xat: Checksum,
    file2: Checksum,
}

fn reference_content() -> Tree {
    Tree {
        empty: regular_checksum(&meta(0, 0, 0o100644), b""),
        hello: regular_checksum(&meta(0, 0, 0o100644), b"hello world\n"),
        link: symlink_checksum(&meta(0, 0, 0o120777), "hello.txt"),
        run: regular_checksum(&meta(0, 0, 0o100755), b"#!/bin/sh\necho hi\n"),
        suid: regular_checksum(&meta(0, 0, 0o104755), b"suid\n"),
        xat: regular_checksum(
            &FileMeta {
                xattrs: xat(),
                ..meta(0, 0, 0o100644)
            },
            b"xattr file\n",
        ),
        file2: regular_checksum(&meta(1000, 1001, 0o100640), b"in sub\n"),
    }
}

#[test]
fn reference_tree_content_checksums() {
    let t = reference_content();
    assert_eq!(
        t.empty,
        c("cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e")
    );
    assert_eq!(
        t.hello,
        c("81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6")
    );
    assert_eq!(
        t.link,
        c("f66efa496a72379413c44593de510dc344beb045294f1a543da87b2b6118db35")
    );
    assert_eq!(
        t.run,
        c("89b350d278ff59ba4780bc377b8ebfee8ade6b55c99fab1ec84e133bc6ea52c5")
    );
    assert_eq!(
        t.suid,
        c("f9c6ed2613c724cea0822249a71fc2a154ff6c3efb25e04c1ec9b942faff8b66")
    );
    assert_eq!(
        t.xat,
        c("20e9509d2d0c639033069b3e0ae3c26052208dc6a05515cf3dd61abfa4b5b4de")
    );
    assert_eq!(
        t.file2,
        c("ef08f3dccb4922720fe8a460db52ac14a3b3057045425884e7d909ff7fe7f4d7")
    );
    assert_eq!(
        Checksum::digest(&xat().to_bytes()),
        c("e90c9d467f9c4d6bbde58c3780a6deee39518c20a5efe2bd1e828c7b4ba3a4c7")
    );
    // zero-length values are dropped from the canonical set
    let with_empty = Xattrs::canonical(vec![
        (b"user.empty".to_vec(), vec![]),
        (b"user.zeta".to_vec(), b"last".to_vec()),
        (b"user.alpha".to_vec(), b"first".to_vec()),
    ]);
    assert_eq!(with_empty, xat());
}

fn reference_commit() -> (Commit, Vec<u8>, Vec<u8>, Vec<u8>) {
    let t = reference_content();
    let sub_meta = FileMeta {
        xattrs: Xattrs::canonical(vec![(b"user.dirattr".to_vec(), b"d".to_vec())]),
        ..meta(0, 0, 0o40755)
    };
    let sub_meta_bytes = sub_meta.to_dirmeta_bytes();
    let sub_tree = DirTree {
        files: vec![TreeFile {
            name: "file2".into(),
            checksum: t.file2,
        }],
        dirs: vec![],
    };
    let sub_tree_bytes = sub_tree.to_bytes();
    let mut root = DirTree {
        files: vec![
            TreeFile {
                name: "xat.txt".into(),
                checksum: t.xat,
            },
            TreeFile {
                name: "hello.txt".into(),
                checksum: t.hello,
            },
            TreeFile {
                name: "empty".into(),
                checksum: t.empty,
            },
            TreeFile {
                name: "link".into(),
                checksum: t.link,
            },
            TreeFile {
                name: "run.sh".into(),
                checksum: t.run,
            },
            TreeFile {
                name: "suid".into(),
                checksum: t.suid,
            },
        ],
        dirs: vec![
            TreeDir {
                name: "sub".into(),
                tree: Checksum::digest(&sub_tree_bytes),
                meta: Checksum::digest(&sub_meta_bytes),
            },
            TreeDir {
                name: "emptydir".into(),
                tree: c(EMPTY_TREE),
                meta: c(ROOT_META),
            },
        ],
    };
    root.sort();
    let root_bytes = root.to_bytes();
    let mut md = MetaDict::default();
    md.push("version", Value::Str("1.0".into()));
    md.push(
        "ostree.ref-binding",
        Value::Array(Type::Str, vec![Value::Str("test".into())]),
    );
    let commit = Commit {
        metadata: md,
        parent: None,
        related: vec![],
        subject: "subj".into(),
        body: "body".into(),
        timestamp: 1577836800,
        root_tree: Checksum::digest(&root_bytes),
        root_meta: c(ROOT_META),
    };
    (commit, root_bytes, sub_tree_bytes, sub_meta_bytes)
}

#[test]
fn reference_tree_metadata() {
    let (commit, root, sub_tree, sub_meta) = reference_commit();
    assert_eq!(
        sub_meta,
        h("00000000 00000000 000041ed | 757365722e6469726174747200 64 0d | 0f")
    );
    assert_eq!(
        Checksum::digest(&sub_meta),
        c("df3f294304399fd48f36e53432ced7b16322c5d41e2f02769948bb5a8b2902ef")
    );
    assert_eq!(sub_tree.len(), 41);
    assert_eq!(
        Checksum::digest(&sub_tree),
        c("601c679513a6632b79fa9f5d9f76be580d0652d55dc617867118f482ca277acf")
    );
    assert_eq!(root.len(), 394);
    assert_eq!(&root[root.len() - 2..], &[0xf5, 0x00]);
    assert_eq!(
        Checksum::digest(&root),
        c("c5c74b693dcaf6a0a8db02894283118b6b6b36229170e1a73849bb1f8b0ab317")
    );
    let bytes = commit.to_bytes();
    assert_eq!(bytes.len(), 142);
    assert_eq!(
        Checksum::digest(&bytes),
        c("3602b2e959192c61aa6153fc5755b392e500d188524501ac32bf77ab138a6166")
    );
    assert_eq!(
        commit.content_checksum(),
        c("31fb7cadbafad6327c07272df8f918fb3d59a3fe3a73758dc771ec9c89a41504")
    );
    // parse/encode round trips are byte-exact
    assert_eq!(Commit::parse(&bytes).unwrap().to_bytes(), bytes);
    assert_eq!(Commit::parse(&bytes).unwrap(), commit);
    assert_eq!(DirTree::parse(&root).unwrap().to_bytes(), root);
    assert_eq!(
        FileMeta::parse_dirmeta(&sub_meta)
            .unwrap()
            .to_dirmeta_bytes(),
        sub_meta
    );
    let mut sig = MetaDict::default();
    sig.push("sig", Value::Str("abc".into()));
    assert_eq!(
        sig.to_bytes(),
        h("73696700 00000000 | 61626300 00 73 | 04 | 0f")
    );
    assert_eq!(MetaDict::parse(&sig.to_bytes()).unwrap(), sig);
}

#[test]
fn object_set_commit() {
    let t = reference_content();
    let mut tree = DirTree::default();
    for cs in [t.empty, t.hello, t.link, t.run, t.suid, t.xat, t.file2] {
        tree.files.push(TreeFile {
            name: cs.to_hex(),
            checksum: cs,
        });
    }
    tree.sort();
    let tb = tree.to_bytes();
    assert_eq!(tb.len(), 702);
    assert_eq!(
        Checksum::digest(&tb),
        c("df85988d89be4672c068f216cfe8b2ef404350e74542c4218178e3f6b38e9b99")
    );
    let commit = Commit {
        metadata: MetaDict::default(),
        parent: None,
        related: vec![],
        subject: String::new(),
        body: String::new(),
        timestamp: 0,
        root_tree: Checksum::digest(&tb),
        root_meta: c(ROOT_META),
    };
    let b = commit.to_bytes();
    assert_eq!(b.len(), 86);
    assert_eq!(
        Checksum::digest(&b),
        c("869857a20516cc3a5b8501ddafc5bb6357294b17f1c4760fcab7574655dc5af4")
    );
}

#[test]
fn large_offsets() {
    // 2100 files force 4-byte offsets: libostree's dirtree is 98 704 bytes ending 8c810100.
    let mut tree = DirTree::default();
    let cs = reference_content().empty;
    for i in 1..=2100 {
        tree.files.push(TreeFile {
            name: format!("file-{i:04}"),
            checksum: cs,
        });
    }
    let b = tree.to_bytes();
    assert_eq!(b.len(), 98_704);
    assert_eq!(&b[b.len() - 4..], &h("8c810100")[..]);
    assert_eq!(DirTree::parse(&b).unwrap(), tree);
    // 8 files f1..f8: 306 bytes ending 2001 3001
    let mut t8 = DirTree::default();
    for i in 1..=8 {
        t8.files.push(TreeFile {
            name: format!("f{i}"),
            checksum: cs,
        });
    }
    let b8 = t8.to_bytes();
    assert_eq!(b8.len(), 306);
    assert_eq!(&b8[b8.len() - 4..], &h("20013001")[..]);
    // a 230-byte name: element 265 B, dirtree 269 B ending e700 0901 0b01
    let long = DirTree {
        files: vec![TreeFile {
            name: "n".repeat(230),
            checksum: cs,
        }],
        dirs: vec![],
    };
    let bl = long.to_bytes();
    assert_eq!(bl.len(), 269);
    assert_eq!(&bl[bl.len() - 6..], &h("e70009010b01")[..]);
    // a 190-byte directory name: 263 B ending df00 bf00 0301 0000
    let d = DirTree {
        files: vec![],
        dirs: vec![TreeDir {
            name: "d".repeat(190),
            tree: cs,
            meta: cs,
        }],
    };
    let bd = d.to_bytes();
    assert_eq!(bd.len(), 263);
    assert_eq!(&bd[bd.len() - 8..], &h("df00bf0003010000")[..]);
    // version of 250 'm' without bindings: commit 356 B ending 0901 0901 0901
    let mut md = MetaDict::default();
    md.push("version", Value::Str("m".repeat(250)));
    let mdb = md.to_bytes();
    let cm = Commit {
        metadata: md,
        parent: None,
        related: vec![],
        subject: String::new(),
        body: String::new(),
        timestamp: 0,
        root_tree: cs,
        root_meta: cs,
    };
    let cb = cm.to_bytes();
    assert_eq!(cb.len(), 356);
    assert_eq!(&cb[cb.len() - 6..], &h("090109010901")[..]);
    // the dict entry is 263 B with a 2-byte key offset 0800, then the array's 2-byte offset
    assert_eq!(mdb.len(), 265);
    assert_eq!(&mdb[261..], &h("08000701")[..]);
}

#[test]
fn rejects_bad_metadata() {
    // Non-normal empty dirtree encodings
    for bad in [h("0000"), h("00000000")] {
        let e = DirTree::parse(&bad).unwrap_err();
        assert!(
            matches!(
                e.reason(),
                FormatReason::NotNormalForm | FormatReason::Malformed
            ),
            "{e}"
        );
    }
    // Truncated commit
    let (commit, root, _, _) = reference_commit();
    let b = commit.to_bytes();
    assert_eq!(
        Commit::parse(&b[..100]).unwrap_err().reason(),
        FormatReason::Malformed
    );
    // Non-zero padding byte: not normal form
    let mut nn = b.clone();
    nn[0x0f] = 1;
    assert_eq!(
        Commit::parse(&nn).unwrap_err().reason(),
        FormatReason::NotNormalForm
    );
    // Oversized
    let big = vec![0u8; 11 * 1024 * 1024];
    assert_eq!(
        DirTree::parse(&big).unwrap_err().reason(),
        FormatReason::TooLarge
    );
    // Wrong type: a dirmeta is not a dirtree and vice versa
    assert!(DirTree::parse(&meta(0, 0, 0o40755).to_dirmeta_bytes()).is_err());
    assert!(FileMeta::parse_dirmeta(&root).is_err());
    assert!(Commit::parse(&root).is_err());
    // Dirtree structure problems
    let cs = reference_content().empty;
    let mk = |names: &[&str]| {
        DirTree {
            files: names
                .iter()
                .map(|n| TreeFile {
                    name: n.to_string(),
                    checksum: cs,
                })
                .collect(),
            dirs: vec![],
        }
        .to_bytes()
    };
    for (names, want) in [
        (&["b", "a"][..], "unsorted"),
        (&["a", "a"][..], "duplicate"),
        (&[""][..], "empty"),
        (&["."][..], "'.'"),
        (&[".."][..], "'.'"),
        (&["a/b"][..], "'/'"),
    ] {
        let e = DirTree::parse(&mk(names)).unwrap_err();
        assert_eq!(e.reason(), FormatReason::Invalid);
        assert!(
            matches!(
                e,
                FormatError::InvalidDirTree(_) | FormatError::InvalidFileName(..)
            ),
            "{names:?} {want}"
        );
    }
    let both = DirTree {
        files: vec![TreeFile {
            name: "x".into(),
            checksum: cs,
        }],
        dirs: vec![TreeDir {
            name: "x".into(),
            tree: cs,
            meta: cs,
        }],
    };
    assert!(matches!(
        DirTree::parse(&both.to_bytes()),
        Err(FormatError::InvalidDirTree(_))
    ));
    // Dirmeta with a regular-file mode
    assert!(matches!(
        FileMeta::parse_dirmeta(&meta(0, 0, 0o100644).to_dirmeta_bytes()),
        Err(FormatError::InvalidMode { .. })
    ));
    // Non-canonical xattrs in a dirmeta
    let unsorted = FileMeta {
        xattrs: Xattrs::from_pairs(vec![
            (b"user.z".to_vec(), b"1".to_vec()),
            (b"user.a".to_vec(), b"1".to_vec()),
        ]),
        ..meta(0, 0, 0o40755)
    };
    assert!(matches!(
        FileMeta::parse_dirmeta(&unsorted.to_dirmeta_bytes()),
        Err(FormatError::NonCanonicalXattrs(_))
    ));
    // Content modes
    assert!(meta(0, 0, 0o120755).validate_content_mode().is_err());
    assert!(meta(0, 0, 0o020644).validate_content_mode().is_err());
    assert!(meta(0, 0, 0o100644).validate_content_mode().is_ok());
}

#[test]
fn generic_values_round_trip() {
    for (ty, v) in [
        (
            "(bynqiuxtd)",
            Value::Tuple(vec![
                Value::Bool(true),
                Value::Byte(7),
                Value::I16(-2),
                Value::U16(3),
                Value::I32(-4),
                Value::U32(5),
                Value::I64(-6),
                Value::U64(7),
                Value::F64(1.5f64.to_bits()),
            ]),
        ),
        (
            "mas",
            Value::Maybe(
                Type::parse("as").unwrap(),
                Some(Box::new(Value::Array(
                    Type::Str,
                    vec![Value::Str("x".into())],
                ))),
            ),
        ),
        ("mu", Value::Maybe(Type::U32, Some(Box::new(Value::U32(9))))),
        ("ms", Value::Maybe(Type::Str, None)),
        ("()", Value::Tuple(vec![])),
        (
            "aay",
            Value::Array(
                Type::parse("ay").unwrap(),
                vec![Value::Bytes(vec![1, 2]), Value::Bytes(vec![])],
            ),
        ),
        (
            "a{sv}",
            MetaDict(vec![
                ("n".into(), Value::Variant(Box::new(Value::Bool(false)))),
                ("t".into(), Value::U64(1)),
            ])
            .to_value(),
        ),
    ] {
        let t = Type::parse(ty).unwrap();
        assert_eq!(v.type_(), t, "{ty}");
        let b = v.to_bytes();
        assert_eq!(from_bytes_normal(&t, &b).unwrap(), v, "{ty}");
    }
}
