//! Bad input: typed errors, and nothing written at the destination when the input is wrong.

use ostree_container::encapsulate::{
    Compression, EncapsulateError, EncapsulateOptions, EncapsulateReason, encapsulate,
};
use ostree_repo::Repo;
use ostree_repo::format::{ObjectName, ObjectType};
use ostree_tar::ExportPlan;

use crate::{fixture, imgref, opts, scratch};

/// Encapsulates `rev` of `repo` to `dest`, which must fail; returns the error.
fn refused(repo: &Repo, rev: &str, o: &EncapsulateOptions, dest: &str) -> EncapsulateError {
    encapsulate(repo, rev, o, &imgref(dest)).unwrap_err()
}

#[test]
fn unknown_rev() {
    let f = fixture();
    let d = scratch();
    let dest = d.path().join("img");
    for rev in [
        "no-such-ref",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let e = refused(
            &f.repo,
            rev,
            &opts(1, Compression::gzip()),
            &format!("oci:{}", dest.display()),
        );
        assert_eq!(e.reason(), EncapsulateReason::UnknownRev, "{e}");
    }
    assert!(!dest.exists());
}

#[test]
fn incomplete_commit_writes_nothing() {
    let f = fixture();
    let d = scratch();
    let copy = d.path().join("repo");
    test_support::tree::copy_tree(&f.repo_path, &copy).unwrap();
    let repo = Repo::open(&copy).unwrap();
    let victim = *ExportPlan::new(&repo, f.commit)
        .unwrap()
        .content_objects()
        .next()
        .unwrap();
    std::fs::remove_file(repo.object_path(&ObjectName::new(victim, ObjectType::File))).unwrap();
    for dest in [
        format!("oci:{}", d.path().join("img").display()),
        format!("oci-archive:{}", d.path().join("img.tar").display()),
    ] {
        let e = refused(&repo, "fixture", &opts(4, Compression::gzip()), &dest);
        assert_eq!(e.reason(), EncapsulateReason::IncompleteCommit, "{e}");
        assert!(ostree_errors::chain(&e).contains(&victim.to_hex()), "{e}");
    }
    assert!(!d.path().join("img").exists());
    assert!(!d.path().join("img.tar").exists());
}

#[test]
fn unwritable_destination() {
    let f = fixture();
    let d = scratch();
    let file = d.path().join("regular");
    std::fs::write(&file, b"x").unwrap();
    for dest in [
        format!("oci:{}/sub", file.display()),
        format!("oci-archive:{}/sub.tar", file.display()),
        format!("oci-archive:{}/missing-dir/x.tar", d.path().display()),
    ] {
        let e = refused(&f.repo, "fixture", &opts(2, Compression::gzip()), &dest);
        assert_eq!(e.reason(), EncapsulateReason::Destination, "{dest}: {e}");
    }
}

#[test]
fn contentmeta_errors() {
    let f = fixture();
    let d = scratch();
    let dest = d.path().join("img");
    let oci = format!("oci:{}", dest.display());
    let plan = ExportPlan::new(&f.repo, f.commit).unwrap();
    let objs: Vec<String> = plan.content_objects().map(|c| c.to_hex()).collect();
    let partial: serde_json::Map<String, serde_json::Value> = objs
        .iter()
        .skip(1)
        .map(|c| (c.clone(), "a".into()))
        .collect();
    let cases = [
        (
            "incomplete",
            serde_json::json!({"version": 1, "layers": {"a": "A"}, "mapping": partial}),
        ),
        (
            "version",
            serde_json::json!({"version": 2, "layers": {}, "mapping": {}}),
        ),
        (
            "ordered",
            serde_json::json!({"version": 1, "ordered": true, "layers": {}, "mapping": {}}),
        ),
        (
            "unknown-component",
            serde_json::json!({"version": 1, "layers": {"a": "A"}, "mapping": {objs[0].clone(): "zz"}}),
        ),
        (
            "bad-checksum",
            serde_json::json!({"version": 1, "layers": {"a": "A"}, "mapping": {"xyz": "a"}}),
        ),
    ];
    for (name, json) in cases {
        let p = d.path().join(format!("{name}.json"));
        std::fs::write(&p, serde_json::to_vec(&json).unwrap()).unwrap();
        let mut o = opts(8, Compression::gzip());
        o.contentmeta = Some(p);
        let e = refused(&f.repo, "fixture", &o, &oci);
        assert_eq!(e.reason(), EncapsulateReason::ContentMeta, "{name}: {e}");
    }
    let p = d.path().join("garbage.json");
    std::fs::write(&p, b"{not json").unwrap();
    let mut o = opts(8, Compression::gzip());
    o.contentmeta = Some(p);
    let e = refused(&f.repo, "fixture", &o, &oci);
    assert_eq!(e.reason(), EncapsulateReason::ContentMeta, "{e}");
    let mut o = opts(8, Compression::gzip());
    o.contentmeta = Some(d.path().join("missing.json"));
    let e = refused(&f.repo, "fixture", &o, &oci);
    assert_eq!(e.reason(), EncapsulateReason::ContentMeta, "{e}");
    assert!(!dest.exists());
}

#[test]
fn copymeta_and_options() {
    let f = fixture();
    let d = scratch();
    let dest = format!("oci:{}", d.path().join("img").display());
    let mut o = opts(1, Compression::gzip());
    o.copy_meta = vec!["no.such.key".into()];
    let e = refused(&f.repo, "fixture", &o, &dest);
    assert_eq!(e.reason(), EncapsulateReason::Metadata, "{e}");
    let mut o = opts(1, Compression::gzip());
    o.copy_meta = vec!["build.number".into()]; // a u32, not a string
    let e = refused(&f.repo, "fixture", &o, &dest);
    assert_eq!(e.reason(), EncapsulateReason::Metadata, "{e}");
    for c in [
        Compression::Gzip { level: 10 },
        Compression::Zstd { level: 0 },
        Compression::Zstd { level: 23 },
    ] {
        let e = refused(&f.repo, "fixture", &opts(1, c), &dest);
        assert_eq!(e.reason(), EncapsulateReason::InvalidOption, "{e}");
    }
    assert!(!d.path().join("img").exists());
}
