//! The podman image-building helper the store's tests use: a Containerfile `FROM` one of our
//! images, the built image as containers-storage and as an OCI layout, and podman's merged
//! root filesystem.

use std::num::NonZeroUsize;

use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};
use ostree_repo::{CommitSpec, NoProgress, TreeOptions};
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::ostree_cli::OstreeCli;

use crate::common::generated_source;
use crate::{NO, d13, scratch};

#[test]
fn build_derived_from_our_image() {
    let d = scratch();
    // A base image of ours with a shell (busybox) so that RUN steps work.
    let (src, repo) = generated_source(d.path(), 0, 12);
    d13().add_busybox(&src).unwrap();
    let mut spec = CommitSpec::new();
    spec.timestamp = Some(1_577_836_800);
    let commit = repo
        .commit_directory(
            &src,
            Some("base"),
            &TreeOptions::new(),
            &spec,
            &NoProgress,
            &NO,
        )
        .unwrap();
    let checkout = d.path().join("checkout");
    OstreeCli::new()
        .unwrap()
        .checkout(repo.path(), "base", &checkout, false)
        .unwrap();
    let base = d.path().join("base");
    let mut o = EncapsulateOptions::new();
    o.max_layers = NonZeroUsize::new(8);
    o.compression = Compression::gzip();
    encapsulate(
        &repo,
        "base",
        &o,
        &format!("oci:{}:latest", base.display()).parse().unwrap(),
    )
    .unwrap();

    let ctx = d.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("added.txt"), b"from the build context\n").unwrap();
    let built = d13().build_derived(
        "FROM $BASE\n\
         RUN rm /usr/bin/app && mkdir -p /usr/share/derived && echo built > /usr/share/derived/run.txt\n\
         COPY added.txt /usr/share/derived/added.txt\n",
        &ctx,
        &base,
    );
    let root = &built.rootfs;
    assert!(!root.join("usr/bin/app").exists(), "RUN rm took effect");
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/derived/run.txt")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read(root.join("usr/share/derived/added.txt")).unwrap(),
        b"from the build context\n"
    );
    // What the build did not touch is the commit's.
    assert_trees_equal(
        &checkout.join("usr/lib"),
        &root.join("usr/lib"),
        &SnapshotOptions::default(),
    )
    .unwrap();
    // The OCI layout: the base's layers plus the derived ones, readable by skopeo.
    let manifest: serde_json::Value = serde_json::from_str(&d13().skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:latest", built.oci_layout_dir.display()),
    ]))
    .unwrap();
    let base_manifest: serde_json::Value = serde_json::from_str(&d13().skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:latest", base.display()),
    ]))
    .unwrap();
    let n = |m: &serde_json::Value| m["layers"].as_array().unwrap().len();
    assert!(n(&manifest) > n(&base_manifest), "{manifest}");
    let inspect = d13().skopeo(&["inspect", &built.storage_ref]);
    assert!(
        inspect.contains(&commit.to_hex()),
        "labels inherited: {inspect}"
    );
}
