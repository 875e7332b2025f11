//! Derived and non-ostree images through the store.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ostree_container::store::{
    self, ErrorKind, PullOptions, StoreError, image_history, list_images, query_image,
    remove_images,
};
use ostree_container::{ImageReference, OstreeImageReference};
use ostree_repo::format::Checksum;
use ostree_repo::{Repo, RepoMode};
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::oci::{LayerCompression, NO_LABELS, ostree_labels, write_layout};
use test_support::ostree_cli::OstreeCli;

use crate::common::anon;
use crate::{commit_base, mkdir, put, scratch, shared_scratch};
use test_support::layer::LayerTar;

/// A derived image and the tree a container runtime shows for it.
struct Fixture {
    dir: tempfile::TempDir,
    base_commit: Checksum,
    base_layer: Vec<u8>,
    layers: Vec<Vec<u8>>,
    image: PathBuf,
    expected: PathBuf,
}

fn base_tree(root: &Path) {
    mkdir(root, "", 0o755, 0, 0);
    put(root, "usr/bin/a", b"a", 0o755, 0, 0);
    put(root, "usr/bin/b", b"b", 0o755, 0, 0);
    put(root, "usr/lib/x/old1", b"old1", 0o644, 0, 0);
    put(root, "usr/lib/x/sub/old2", b"old2", 0o644, 0, 0);
    put(root, "usr/share/doc/readme", b"readme", 0o644, 0, 0);
    put(root, "usr/etc/conf", b"base conf", 0o644, 0, 0);
    put(root, "usr/dir-to-file/inner", b"inner", 0o644, 0, 0);
    put(root, "usr/file-to-dir", b"was a file", 0o644, 0, 0);
    mkdir(root, "usr/modes", 0o755, 0, 0);
    put(root, "usr/modes/m", b"m", 0o600, 7, 8);
}

fn layer1() -> Vec<u8> {
    LayerTar::new()
        .dir("usr/", 0o755, 0, 0)
        .dir("usr/bin/", 0o755, 0, 0)
        .whiteout("usr/bin/.wh.a")
        .file("usr/bin/new", b"new", 0o755, 1000, 1000)
        .hardlink("usr/bin/new-link", "usr/bin/new")
        .symlink("usr/bin/sym", "new")
        .file("usr/bin/suid", b"suid", 0o4755, 0, 0)
        .dir("usr/lib/x/", 0o755, 0, 0)
        .whiteout("usr/lib/x/.wh..wh..opq")
        .file("usr/lib/x/fresh", b"fresh", 0o644, 0, 0)
        .dir("usr/modes/", 0o700, 5, 6)
        .file("usr/dir-to-file", b"now a file", 0o644, 0, 0)
        .dir("usr/file-to-dir/", 0o750, 0, 0)
        .file("usr/file-to-dir/child", b"child", 0o644, 0, 0)
        .dir("etc/", 0o755, 0, 0)
        .file("etc/newconf", b"new conf", 0o640, 0, 0)
        .file("etc/hostname", b"", 0o644, 0, 0)
        .dir("opt/", 0o755, 0, 0)
        .file("opt/app", b"dropped", 0o755, 0, 0)
        .dir("var/", 0o755, 0, 0)
        .dir("var/lib/", 0o755, 0, 0)
        .file("var/lib/state", b"state", 0o644, 0, 0)
        .dir("tmp/", 0o1777, 0, 0)
        .file("tmp/junk", b"junk", 0o644, 0, 0)
        .file_with_xattrs("usr/share/xattr-file", b"x", &[("user.test", b"hello")])
        .file("usr/deep/a/b/c/file", b"deep", 0o644, 0, 0)
        .finish()
}

fn layer2() -> Vec<u8> {
    LayerTar::new()
        .dir("usr/bin/", 0o755, 0, 0)
        .whiteout("usr/bin/.wh.new-link")
        .file("usr/bin/new", b"new2", 0o755, 1000, 1000)
        .dir("usr/share/doc/", 0o755, 0, 0)
        .whiteout("usr/share/doc/.wh.readme")
        .finish()
}

/// What `podman image mount` would show, in ostree's layout (etc under usr).
fn expected_tree(root: &Path) {
    mkdir(root, "", 0o755, 0, 0);
    put(root, "usr/bin/b", b"b", 0o755, 0, 0);
    put(root, "usr/bin/new", b"new2", 0o755, 1000, 1000);
    std::os::unix::fs::symlink("new", root.join("usr/bin/sym")).unwrap();
    put(root, "usr/bin/suid", b"suid", 0o4755, 0, 0);
    put(root, "usr/lib/x/fresh", b"fresh", 0o644, 0, 0);
    mkdir(root, "usr/modes", 0o700, 5, 6);
    put(root, "usr/modes/m", b"m", 0o600, 7, 8);
    put(root, "usr/dir-to-file", b"now a file", 0o644, 0, 0);
    mkdir(root, "usr/file-to-dir", 0o750, 0, 0);
    put(root, "usr/file-to-dir/child", b"child", 0o644, 0, 0);
    put(root, "usr/etc/conf", b"base conf", 0o644, 0, 0);
    put(root, "usr/etc/newconf", b"new conf", 0o640, 0, 0);
    mkdir(root, "usr/share/doc", 0o755, 0, 0);
    put(root, "usr/share/xattr-file", b"x", 0o644, 0, 0);
    rustix::fs::setxattr(
        root.join("usr/share/xattr-file").as_path(),
        "user.test",
        b"hello",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    put(root, "usr/deep/a/b/c/file", b"deep", 0o644, 0, 0);
    put(root, "var/lib/state", b"state", 0o644, 0, 0);
    mkdir(root, "tmp", 0o1777, 0, 0);
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = shared_scratch();
        let tree = dir.path().join("base-tree");
        base_tree(&tree);
        let (_, base_commit, base_layer) = commit_base(dir.path(), &tree);
        let layers = vec![layer1(), layer2()];
        let image = dir.path().join("derived");
        let mut all = vec![base_layer.clone()];
        all.extend(layers.iter().cloned());
        write_layout(
            &image,
            &all,
            &ostree_labels(&base_commit.to_hex(), &base_layer),
            LayerCompression::Gzip,
        )
        .unwrap();
        let expected = dir.path().join("expected");
        expected_tree(&expected);
        Fixture {
            dir,
            base_commit,
            base_layer,
            layers,
            image,
            expected,
        }
    })
}

fn oref(s: &str) -> OstreeImageReference {
    s.parse().unwrap()
}

fn pull(
    repo: &Repo,
    image: &str,
) -> Result<(store::PullOutcome, Option<store::ImageState>), StoreError> {
    let mut opts = PullOptions::new();
    opts.fetch = anon();
    store::pull_blocking(repo, &oref(image), opts)
}

fn derived_ref(f: &Fixture) -> String {
    format!("ostree-unverified-image:oci:{}:latest", f.image.display())
}

fn assert_merge_matches(repo: &Repo, merge: &Checksum, expected: &Path, co: &Path) {
    let o = OstreeCli::new().unwrap();
    o.fsck(repo.path()).unwrap().check().unwrap();
    o.checkout(repo.path(), &merge.to_hex(), co, false).unwrap();
    assert_trees_equal(expected, co, &SnapshotOptions::default()).unwrap();
}

#[test]
fn derived_image_merge_equals_the_runtime_view_in_every_mode() {
    let f = fixture();
    let d = scratch();
    let image = derived_ref(f);
    let mut merges = Vec::new();
    for mode in [RepoMode::Bare, RepoMode::BareUser, RepoMode::Archive] {
        let repo = Repo::create(&d.path().join(format!("repo-{}", mode.name())), mode).unwrap();
        let (out, state) = pull(&repo, &image).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let state = state.unwrap();
        let merge = out.merge_commit.unwrap();
        assert_eq!(out.base_commit, Some(f.base_commit));
        assert_eq!(out.layers_fetched, 3);
        assert_eq!(out.layers_present, 0);
        assert!(!out.already_present);
        assert_eq!(state.merge_commit, merge);
        assert_eq!(state.base_commit, Some(f.base_commit));
        assert_eq!(state.manifest.layers().len(), 3);
        // The merge commit: parent = base, metadata keys as the reference, sorted.
        let c = repo.load_commit(&merge).unwrap();
        assert_eq!(c.parent, Some(f.base_commit));
        let keys: Vec<&str> = c.metadata.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ostree.container.image-config",
                "ostree.importer.version",
                "ostree.manifest",
                "ostree.manifest-digest",
                "ostree.tar-filtered"
            ]
        );
        assert_eq!(c.timestamp, 1_577_836_800, "config created 2020-01-01");
        // The path rules dropped opt/ (2 entries) and tmp/junk, and said so.
        let (digest, counts) = &out.filtered[0];
        assert_eq!(digest, &state.manifest.layers()[1].digest().to_string());
        assert_eq!(counts.get("opt"), Some(&2), "{counts:?}");
        assert_eq!(counts.get("tmp"), Some(&1), "{counts:?}");
        // Image and layer refs.
        let refs = repo.list_refs().unwrap();
        let img: ImageReference = format!("oci:{}:latest", f.image.display()).parse().unwrap();
        assert_eq!(
            refs.get(&store::refs::image_ref(&img).unwrap()),
            Some(&merge)
        );
        assert_eq!(
            refs.keys()
                .filter(|k| k.starts_with(store::refs::BLOB_PREFIX))
                .count(),
            3
        );
        assert_eq!(list_images(&repo).unwrap(), vec![img.clone()]);
        let co = d.path().join(format!("co-{}", mode.name()));
        assert_merge_matches(&repo, &merge, &f.expected, &co);
        // Pulled again: nothing fetched, same merge commit.
        let (again, _) = pull(&repo, &image).unwrap();
        assert!(again.already_present);
        assert_eq!(again.merge_commit, Some(merge));
        assert_eq!(again.layers_fetched, 0);
        merges.push((mode, merge));
    }
    // Deterministic: a second fresh repository of the same mode gives the same merge commit.
    let repo = Repo::create(&d.path().join("repo-bare-2"), RepoMode::Bare).unwrap();
    let (out, _) = pull(&repo, &image).unwrap();
    assert_eq!(out.merge_commit, Some(merges[0].1));
    let _ = &f.dir;
    let _ = &f.layers;
}

#[test]
fn layers_already_present_are_not_fetched_and_history_is_recorded() {
    let f = fixture();
    let d = scratch();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    // The base alone first (a base image: no derived layers, still a merge commit).
    let base_img = d.path().join("base");
    write_layout(
        &base_img,
        std::slice::from_ref(&f.base_layer),
        &ostree_labels(&f.base_commit.to_hex(), &f.base_layer),
        LayerCompression::Gzip,
    )
    .unwrap();
    let (out, state) = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:latest", base_img.display()),
    )
    .unwrap();
    let base_merge = out.merge_commit.unwrap();
    assert_ne!(
        base_merge, f.base_commit,
        "a base image also gets a merge commit"
    );
    let state = state.unwrap();
    assert_eq!(
        repo.load_commit(&base_merge).unwrap().root_tree,
        repo.load_commit(&f.base_commit).unwrap().root_tree,
        "no derived layers: the base tree unchanged"
    );
    assert_eq!(image_history(&state).len(), 1);
    // The derived image shares layer 0 (same gzip bytes): only its two own layers are fetched.
    let (out, state) = pull(&repo, &derived_ref(f)).unwrap();
    assert_eq!(out.layers_present, 1);
    assert_eq!(out.layers_fetched, 2);
    let state = state.unwrap();
    let h = image_history(&state);
    assert_eq!(h.len(), 3);
    assert_eq!(h[1].digest, state.manifest.layers()[1].digest().to_string());
    assert_merge_matches(
        &repo,
        &out.merge_commit.unwrap(),
        &f.expected,
        &d.path().join("co"),
    );
    // Removing an image removes its ref only.
    let img: ImageReference = format!("oci:{}:latest", base_img.display())
        .parse()
        .unwrap();
    assert_eq!(remove_images(&repo, std::slice::from_ref(&img)).unwrap(), 1);
    assert!(query_image(&repo, &img).unwrap().is_none());
    assert!(matches!(
        remove_images(&repo, &[img]).unwrap_err(),
        StoreError::ImageNotFound { .. }
    ));
    assert_eq!(list_images(&repo).unwrap().len(), 1);
}

#[test]
fn non_ostree_image_is_all_derived_with_no_parent() {
    let d = scratch();
    let l1 = LayerTar::new()
        .dir("usr/", 0o755, 0, 0)
        .file("usr/hello", b"hello", 0o644, 0, 0)
        .dir("opt/", 0o755, 0, 0)
        .file("opt/tool", b"tool", 0o755, 0, 0)
        .finish();
    let l2 = LayerTar::new()
        .whiteout("usr/.wh.hello")
        .file("usr/bye", b"bye", 0o644, 0, 0)
        .finish();
    let img = d.path().join("plain");
    write_layout(&img, &[l1, l2], NO_LABELS, LayerCompression::Gzip).unwrap();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::Bare).unwrap();
    let (out, state) = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:latest", img.display()),
    )
    .unwrap();
    let merge = out.merge_commit.unwrap();
    assert_eq!(out.base_commit, None);
    assert_eq!(state.unwrap().base_commit, None);
    assert_eq!(repo.load_commit(&merge).unwrap().parent, None);
    let expected = d.path().join("expected");
    mkdir(&expected, "", 0o755, 0, 0);
    mkdir(&expected, "usr", 0o755, 0, 0);
    put(&expected, "usr/bye", b"bye", 0o644, 0, 0);
    // Non-ostree images keep every top-level directory.
    mkdir(&expected, "opt", 0o755, 0, 0);
    put(&expected, "opt/tool", b"tool", 0o755, 0, 0);
    assert_merge_matches(&repo, &merge, &expected, &d.path().join("co"));
}

fn assert_refused_cleanly(
    repo: &Repo,
    r: Result<(store::PullOutcome, Option<store::ImageState>), StoreError>,
) -> StoreError {
    let e = match r {
        Ok(_) => panic!("bad image was pulled"),
        Err(e) => e,
    };
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap();
    assert!(
        list_images(repo).unwrap().is_empty(),
        "no image ref may be written"
    );
    e
}

#[test]
fn bad_derived_layers_are_refused_and_publish_nothing() {
    let f = fixture();
    let d = scratch();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "whiteout naming ..",
            LayerTar::new().raw_file("usr/.wh..", b"").finish(),
        ),
        (
            "path escaping with ..",
            LayerTar::new().raw_file("usr/../../etc/x", b"x").finish(),
        ),
        (
            "not a tar",
            b"this is not a tar archive at all, just text".repeat(20),
        ),
    ];
    for (i, (what, layer)) in cases.into_iter().enumerate() {
        let img = d.path().join(format!("bad{i}"));
        write_layout(
            &img,
            &[f.base_layer.clone(), layer],
            &ostree_labels(&f.base_commit.to_hex(), &f.base_layer),
            LayerCompression::Gzip,
        )
        .unwrap();
        let repo = Repo::create(&d.path().join(format!("repo{i}")), RepoMode::BareUser).unwrap();
        let e = assert_refused_cleanly(
            &repo,
            pull(
                &repo,
                &format!("ostree-unverified-image:oci:{}:latest", img.display()),
            ),
        );
        assert!(matches!(e, StoreError::Import { .. }), "{what}: {e:?}");
        assert!(
            ostree_errors::chain(&e).contains("sha256:"),
            "{what}: error names the layer: {e}"
        );
    }
    // A manifest whose diff_ids do not match its layers.
    let img = d.path().join("baddiffid");
    write_layout(
        &img,
        &[f.base_layer.clone(), layer2()],
        &ostree_labels(&f.base_commit.to_hex(), &f.base_layer),
        LayerCompression::Gzip,
    )
    .unwrap();
    let cfg_path = config_path(&img);
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["rootfs"]["diff_ids"][1] = serde_json::Value::from(format!("sha256:{}", "0".repeat(64)));
    rewrite_config(&img, &cfg);
    let repo = Repo::create(&d.path().join("repo-diffid"), RepoMode::BareUser).unwrap();
    let e = assert_refused_cleanly(
        &repo,
        pull(
            &repo,
            &format!("ostree-unverified-image:oci:{}:latest", img.display()),
        ),
    );
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
}

/// A layer refused at its first entry is not decompressed further (only its raw bytes are read
/// to the end, as the proxy protocol requires): its remainder is not even valid gzip, and the
/// error reported is the importer's, not the decompressor's that a full inflate would hit.
#[test]
fn a_refused_layer_is_not_inflated_to_its_end() {
    use std::io::Write;
    let f = fixture();
    let d = scratch();
    let tar = LayerTar::new()
        .raw_file("usr/../../etc/x", b"x")
        .file("usr/share/zeros", &vec![0u8; 16 << 20], 0o644, 0, 0)
        .finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let mut blob = gz.finish().unwrap();
    blob.extend_from_slice(&b"not a gzip member: a full inflate fails here".repeat(100));
    let img = d.path().join("refused");
    // Uncompressed media type: the fetcher goes by the bytes, which are gzip.
    write_layout(
        &img,
        &[f.base_layer.clone(), blob],
        &ostree_labels(&f.base_commit.to_hex(), &f.base_layer),
        LayerCompression::None,
    )
    .unwrap();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let e = assert_refused_cleanly(
        &repo,
        pull(
            &repo,
            &format!("ostree-unverified-image:oci:{}:latest", img.display()),
        ),
    );
    match &e {
        StoreError::Import { source, .. } => assert!(
            matches!(**source, ostree_tar::TarError::UnsafePath { .. }),
            "{e:?}"
        ),
        other => panic!("the importer's refusal, not a decompression error: {other:?}"),
    }
}

/// The config blob of a layout written by `write_layout`.
fn config_path(img: &Path) -> PathBuf {
    let m = manifest_of(img);
    let d = m["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    img.join("blobs/sha256").join(d)
}

fn manifest_of(img: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(img.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    serde_json::from_slice(&std::fs::read(img.join("blobs/sha256").join(md)).unwrap()).unwrap()
}

/// Replaces the config (and so the manifest and index) of a layout.
fn rewrite_config(img: &Path, cfg: &serde_json::Value) {
    use sha2::Digest;
    let blob = serde_json::to_vec(cfg).unwrap();
    let cd = hex::encode(sha2::Sha256::digest(&blob));
    std::fs::write(img.join("blobs/sha256").join(&cd), &blob).unwrap();
    let mut m = manifest_of(img);
    m["config"]["digest"] = serde_json::Value::from(format!("sha256:{cd}"));
    m["config"]["size"] = serde_json::Value::from(blob.len());
    let mblob = serde_json::to_vec(&m).unwrap();
    let md = hex::encode(sha2::Sha256::digest(&mblob));
    std::fs::write(img.join("blobs/sha256").join(&md), &mblob).unwrap();
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(img.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"] = serde_json::Value::from(format!("sha256:{md}"));
    index["manifests"][0]["size"] = serde_json::Value::from(mblob.len());
    std::fs::write(img.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn async_api_from_inside_a_runtime() {
    let f = fixture();
    let d = scratch();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let mut opts = PullOptions::new();
    opts.fetch = anon();
    let (out, _) = store::pull(&repo, &oref(&derived_ref(f)), opts)
        .await
        .unwrap();
    assert!(out.merge_commit.is_some());
    // The blocking wrappers must not panic inside a runtime either.
    let mut o = ostree_container::UnencapsulateOptions::new();
    o.fetch = anon();
    let base_img = d.path().join("base");
    write_layout(
        &base_img,
        std::slice::from_ref(&f.base_layer),
        &ostree_labels(&f.base_commit.to_hex(), &f.base_layer),
        LayerCompression::None,
    )
    .unwrap();
    let repo2 = Repo::create(&d.path().join("repo2"), RepoMode::BareUser).unwrap();
    let imp = ostree_container::unencapsulate(
        &repo2,
        &oref(&format!(
            "ostree-unverified-image:oci:{}:latest",
            base_img.display()
        )),
        o,
    )
    .unwrap();
    assert_eq!(imp.ostree_commit, f.base_commit);
    // unencapsulate writes no image ref and refuses derived images, pointing at the store.
    assert!(list_images(&repo2).unwrap().is_empty());
    let mut o = ostree_container::UnencapsulateOptions::new();
    o.fetch = anon();
    let e = ostree_container::unencapsulate_async(&repo2, &oref(&derived_ref(f)), o)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::DerivedImage { .. }), "{e}");
    assert!(ostree_errors::chain(&e).contains("image pull"), "{e}");
}

#[test]
fn merge_commit_deploys_with_ostree_admin() {
    let d = scratch();
    let tree = d.path().join("os");
    mkdir(&tree, "", 0o755, 0, 0);
    put(
        &tree,
        "usr/lib/modules/6.1.0/vmlinuz",
        b"kernel",
        0o644,
        0,
        0,
    );
    put(
        &tree,
        "usr/lib/modules/6.1.0/initramfs.img",
        b"initrd",
        0o644,
        0,
        0,
    );
    put(&tree, "usr/lib/os-release", b"ID=test\n", 0o644, 0, 0);
    put(&tree, "usr/etc/os-config", b"base\n", 0o644, 0, 0);
    let (_, base, base_layer) = commit_base(d.path(), &tree);
    let layer = LayerTar::new()
        .dir("usr/", 0o755, 0, 0)
        .file("usr/bin/tool", b"#!/bin/sh\n", 0o755, 0, 0)
        .dir("etc/", 0o755, 0, 0)
        .file("etc/motd", b"derived\n", 0o644, 0, 0)
        .finish();
    let img = d.path().join("img");
    write_layout(
        &img,
        &[base_layer.clone(), layer],
        &ostree_labels(&base.to_hex(), &base_layer),
        LayerCompression::Gzip,
    )
    .unwrap();
    let sysroot = d.path().join("sysroot");
    std::fs::create_dir(&sysroot).unwrap();
    let o = OstreeCli::new().unwrap();
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(o.bin())
            .arg("admin")
            .args(args)
            .arg(format!("--sysroot={}", sysroot.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ostree admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let init = std::process::Command::new(o.bin())
        .args(["admin", "init-fs"])
        .arg(&sysroot)
        .output()
        .unwrap();
    assert!(init.status.success());
    admin(&["os-init", "testos"]);
    let repo = Repo::open(&sysroot.join("ostree/repo")).unwrap();
    let (out, _) = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:latest", img.display()),
    )
    .unwrap();
    let merge = out.merge_commit.unwrap().to_hex();
    let deployed = sysroot.join(format!("ostree/deploy/testos/deploy/{merge}.0"));
    // libostree makes the deployment root immutable; without this the scratch directory
    // could not be removed (each run left one behind).
    struct ClearImmutable(std::path::PathBuf);
    impl Drop for ClearImmutable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
    }
    let _mutable = ClearImmutable(deployed.clone());
    admin(&["deploy", "--os=testos", &merge]);
    assert_eq!(
        std::fs::read(deployed.join("usr/bin/tool")).unwrap(),
        b"#!/bin/sh\n"
    );
    assert_eq!(
        std::fs::read(deployed.join("etc/motd")).unwrap(),
        b"derived\n"
    );
    assert_eq!(
        std::fs::read(deployed.join("etc/os-config")).unwrap(),
        b"base\n"
    );
    assert!(
        std::fs::read_dir(sysroot.join("boot/loader/entries"))
            .unwrap()
            .next()
            .is_some(),
        "a boot entry was written"
    );
}

#[test]
fn bare_user_only_keeps_canonical_permissions() {
    let d = scratch();
    let tree = d.path().join("canon");
    mkdir(&tree, "", 0o755, 0, 0);
    put(&tree, "usr/bin/a", b"a", 0o755, 0, 0);
    put(&tree, "usr/share/f", b"f", 0o644, 0, 0);
    let (_, base, base_layer) = commit_base(d.path(), &tree);
    let layer = LayerTar::new()
        .dir("usr/", 0o755, 0, 0)
        .dir("usr/private/", 0o700, 1000, 1000)
        .file("usr/bin/suid", b"s", 0o4755, 1000, 1000)
        .file_with_xattrs("usr/share/x", b"x", &[("user.a", b"b")])
        .finish();
    let img = d.path().join("img");
    write_layout(
        &img,
        &[base_layer.clone(), layer],
        &ostree_labels(&base.to_hex(), &base_layer),
        LayerCompression::Gzip,
    )
    .unwrap();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUserOnly).unwrap();
    let (out, _) = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:latest", img.display()),
    )
    .unwrap();
    // As libostree's canonical permissions: owner 0:0, mode & 0755, no xattrs.
    let expected = d.path().join("expected");
    mkdir(&expected, "", 0o755, 0, 0);
    put(&expected, "usr/bin/a", b"a", 0o755, 0, 0);
    put(&expected, "usr/share/f", b"f", 0o644, 0, 0);
    mkdir(&expected, "usr/private", 0o700, 0, 0);
    put(&expected, "usr/bin/suid", b"s", 0o755, 0, 0);
    put(&expected, "usr/share/x", b"x", 0o644, 0, 0);
    assert_merge_matches(
        &repo,
        &out.merge_commit.unwrap(),
        &expected,
        &d.path().join("co"),
    );
}
