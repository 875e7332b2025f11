//! The layered-image store against podman as its oracle (issue 11, "How we will know it
//! works"): a derived image built by podman 5.4 `FROM` a base image of ours (our encapsulate of
//! a generated tree, with busybox so that `RUN` works), pulled by our store from its OCI layout
//! and from containers-storage (skopeo 1.18) into bare, bare-user and archive repositories. The
//! `ostree checkout` of the merge commit is compared with podman's own view of the image
//! (`podman image mount`) under `usr/`, `etc/` (our `usr/etc/`) and `var/`: type, content,
//! mode (with setuid/setgid/sticky), owner, symlink target and xattrs.
//!
//! The build exercises, one `RUN` step (one layer) each: whiteouts of base files, deep new
//! directories, `/etc` and `/var` content, `/opt` and `/srv` (dropped by the path rules); an
//! opaque directory (`rm -rf` then recreated); chmod/chown of files, directories and a symlink
//! to non-root owners; setuid, setgid and sticky modes; hardlinks (new ones, one to a base file,
//! one in `/etc`); a symlink replacing a directory and the reverse; a file replacing a directory
//! and the reverse; content added by one step and deleted by later ones; `COPY` of a file with a
//! `user.*` xattr (busybox has no `setfattr`, so `COPY` from the build context is how an xattr
//! gets into a derived layer; buildah keeps it as `SCHILY.xattr.user.copied`).
//!
//! The differences that remain, all by design and asserted exactly ([`EXPECTED_DIFFS`]):
//! * `etc/hostname` and `etc/resolv.conf`: buildah's `RUN` leaves them in the first layer as
//!   empty files (buildah#4242); the merge drops them when empty, as the reference does
//!   (`etc/hosts`, also empty, is kept by both, as by the reference).
//! * `var/tmp`: our commit layer carries a `var/tmp` (1777) directory, as the ostree container
//!   format does, which is not part of the ostree commit; podman shows it, the merge (base commit
//!   plus derived layers) does not.
//! * `usr/share/pt/xattr-untouched`: the base's xattrs travel in the ostree layers as ostree's
//!   own `.file-xattrs` objects (as in ostree-ext's format), which a container runtime does not
//!   read: podman shows the base file without `user.kept`, ostree keeps it. (A base file with an
//!   xattr that a `RUN` step modifies comes back from podman's copy-up without it, and the merge
//!   then follows the layer: `usr/share/pt/xattr-base`.)

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ostree_container::OstreeImageReference;
use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};
use ostree_container::store::{self, PullOptions};
use ostree_repo::format::Checksum;
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::compare::{SnapshotOptions, diff_snapshots, read_xattrs, snapshot};
use test_support::modern::BuiltImage;
use test_support::ostree_cli::OstreeCli;

use crate::common::generated_source;
use crate::{MODES, NO, d13, modern, scratch};

/// Our checkout (a) against podman's view (b), as `diff_snapshots` words it, prefixed with the
/// compared subtrees; see the module docs for why each is expected.
const EXPECTED_DIFFS: &[&str] = &[
    "usr vs podman usr: share/pt/xattr-untouched: xattr user.kept \"only ostree sees it\" vs (absent)",
    "usr/etc vs podman etc: hostname: only in b (File)",
    "usr/etc vs podman etc: resolv.conf: only in b (File)",
    "var vs podman var: tmp: only in b (Dir)",
];

/// The base image and the image podman built from it.
struct Fixture {
    base_commit: Checksum,
    /// Layers of the base image (our ostree layers); the derived ones follow.
    base_layers: usize,
    /// The built image as an OCI layout (moved out of the build helper's directory).
    oci_layout: PathBuf,
    /// `containers-storage:<name>`.
    storage_ref: String,
    /// podman's merged root filesystem of the built image (read-only).
    rootfs: PathBuf,
}

fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(root: &Path, rel: &str, mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What the Containerfile below changes, added to the generated tree (under `usr/share/pt`).
fn base_additions(root: &Path) {
    let pt = "usr/share/pt";
    mkdir(root, pt, 0o755);
    write(root, &format!("{pt}/remove-me"), b"whited out\n", 0o644);
    write(root, &format!("{pt}/opaque/old1"), b"old 1\n", 0o644);
    write(root, &format!("{pt}/opaque/sub/old2"), b"old 2\n", 0o644);
    write(root, &format!("{pt}/owned-file"), b"chowned later\n", 0o644);
    write(root, &format!("{pt}/owned-dir/f"), b"in owned dir\n", 0o644);
    write(
        root,
        &format!("{pt}/dir-mode-only/g"),
        b"untouched\n",
        0o644,
    );
    write(root, &format!("{pt}/dir-to-link/x"), b"x\n", 0o644);
    std::os::unix::fs::symlink("opaque", root.join(format!("{pt}/link-to-dir"))).unwrap();
    write(root, &format!("{pt}/dir-to-file/y/z"), b"z\n", 0o644);
    write(root, &format!("{pt}/file-to-dir"), b"a file first\n", 0o644);
    write(
        root,
        &format!("{pt}/base-hl"),
        b"linked from a layer\n",
        0o644,
    );
    write(root, &format!("{pt}/xattr-base"), b"base xattr\n", 0o644);
    rustix::fs::setxattr(
        root.join(format!("{pt}/xattr-base")).as_path(),
        "user.base",
        b"from our layer",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    write(
        root,
        &format!("{pt}/xattr-untouched"),
        b"never touched\n",
        0o644,
    );
    rustix::fs::setxattr(
        root.join(format!("{pt}/xattr-untouched")).as_path(),
        "user.kept",
        b"only ostree sees it",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    write(
        root,
        "usr/etc/removed.conf",
        b"removed by a RUN step\n",
        0o644,
    );
    write(root, "var/lib/base-state", b"base state\n", 0o644);
}

/// The derived image's build: every step is its own layer.
const CONTAINERFILE: &str = "FROM $BASE
RUN rm /usr/bin/app /usr/share/pt/remove-me /etc/removed.conf \\
 && mkdir -p /usr/share/deep/a/b/c/d/e/f && echo deep > /usr/share/deep/a/b/c/d/e/f/leaf \\
 && mkdir -p /etc/derived/sub && echo conf > /etc/derived/app.conf && chmod 0600 /etc/derived/app.conf \\
 && echo changed >> /etc/os-release \\
 && mkdir -p /var/lib/derived && echo state > /var/lib/derived/state \\
 && mkdir -p /opt/app && echo opt > /opt/app/bin \\
 && mkdir -p /srv/data && echo srv > /srv/data/x
RUN rm -rf /usr/share/pt/opaque && mkdir /usr/share/pt/opaque && echo new > /usr/share/pt/opaque/new-file
RUN chown 1234:5678 /usr/share/pt/owned-file && chmod 0640 /usr/share/pt/owned-file \\
 && chown -R 1000:1000 /usr/share/pt/owned-dir && chmod 0750 /usr/share/pt/owned-dir \\
 && chmod 0700 /usr/share/pt/dir-mode-only \\
 && chown 42:43 /usr/share/pt \\
 && chown 1000:1000 /etc/derived/sub && chmod 0710 /etc/derived/sub \\
 && chown 7:8 /var/lib/derived/state
RUN echo suid > /usr/bin/suid-tool && chmod 4755 /usr/bin/suid-tool \\
 && echo sgid > /usr/bin/sgid-tool && chown 0:50 /usr/bin/sgid-tool && chmod 2755 /usr/bin/sgid-tool \\
 && echo user-suid > /usr/bin/user-suid && chown 1000:1000 /usr/bin/user-suid && chmod 4750 /usr/bin/user-suid \\
 && mkdir -m 1777 /usr/share/pt/sticky
RUN echo shared > /usr/share/pt/hl-a && ln /usr/share/pt/hl-a /usr/share/pt/hl-b \\
 && mkdir /usr/share/pt/hl-dir && ln /usr/share/pt/hl-a /usr/share/pt/hl-dir/hl-c \\
 && ln /usr/share/pt/base-hl /usr/share/pt/base-hl-2 \\
 && echo etc-hl > /etc/derived/hl1 && ln /etc/derived/hl1 /etc/derived/hl2
RUN rm -rf /usr/share/pt/dir-to-link && ln -s opaque /usr/share/pt/dir-to-link \\
 && chown -h 1000:1000 /usr/share/pt/dir-to-link \\
 && rm /usr/share/pt/link-to-dir && mkdir /usr/share/pt/link-to-dir && echo inside > /usr/share/pt/link-to-dir/inside
RUN rm -rf /usr/share/pt/dir-to-file && echo now a file > /usr/share/pt/dir-to-file \\
 && rm /usr/share/pt/file-to-dir && mkdir -p /usr/share/pt/file-to-dir/sub && echo y > /usr/share/pt/file-to-dir/sub/y
RUN mkdir -p /usr/share/pt/temp/dir && echo t > /usr/share/pt/temp/dir/f && echo t2 > /usr/share/pt/temp-file \\
 && mkdir /usr/share/pt/temp-empty && echo e > /etc/temp.conf && mkdir -p /var/tmpstate && echo v > /var/tmpstate/v \\
 && echo keep > /usr/share/pt/temp-kept
RUN rm -rf /usr/share/pt/temp /usr/share/pt/temp-file /etc/temp.conf /var/tmpstate \\
 && echo replaced > /usr/share/pt/temp-kept
RUN rmdir /usr/share/pt/temp-empty && chmod 0600 /usr/share/pt/xattr-base
COPY xattr-copied /usr/share/pt/xattr-copied
";

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        d13();
        // A fixed path (emptied first) because a static is never dropped; the process-wide
        // lock of `Debian13::get` keeps other test processes out.
        let dir = PathBuf::from("/var/tmp/oc-modern-store-podman");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir(&dir).unwrap();
        let (src, repo) = generated_source(&dir, 0, 5);
        base_additions(&src);
        d13().add_busybox(&src).unwrap();
        let mut spec = CommitSpec::new();
        spec.timestamp = Some(1_577_836_800);
        let base_commit = repo
            .commit_directory(
                &src,
                Some("base"),
                &TreeOptions::new(),
                &spec,
                &NoProgress,
                &NO,
            )
            .unwrap();
        let base = dir.join("base");
        let mut o = EncapsulateOptions::new();
        o.max_layers = NonZeroUsize::new(4);
        o.compression = Compression::gzip();
        encapsulate(
            &repo,
            "base",
            &o,
            &format!("oci:{}:latest", base.display()).parse().unwrap(),
        )
        .unwrap();
        let base_layers = layout_layers(&base).len();
        let ctx = dir.join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        write(&ctx, "xattr-copied", b"copied with an xattr\n", 0o644);
        rustix::fs::setxattr(
            ctx.join("xattr-copied").as_path(),
            "user.copied",
            b"from the build context",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let BuiltImage {
            dir: build_dir,
            storage_ref,
            oci_layout_dir,
            rootfs,
            ..
        } = d13().build_derived(CONTAINERFILE, &ctx, &base);
        let oci_layout = dir.join("built");
        std::fs::rename(&oci_layout_dir, &oci_layout).unwrap();
        drop(build_dir);
        Fixture {
            base_commit,
            base_layers,
            oci_layout,
            storage_ref,
            rootfs,
        }
    })
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The layer digests of the (single) image of an OCI layout, in order.
fn layout_layers(layout: &Path) -> Vec<String> {
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// What the path rules must drop from each derived layer of the built image (by layer index),
/// counted per top-level name straight from the layer tars (gzip) of the OCI layout: everything
/// below a top level other than `usr`, `etc`, `var`, and the top level itself, except for
/// `run`, `tmp`, `proc`, `sys`, `dev`, which are kept as (empty) directories.
fn expected_filtered(f: &Fixture) -> BTreeMap<usize, BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    let layers = layout_layers(&f.oci_layout);
    for (i, digest) in layers.iter().enumerate().skip(f.base_layers) {
        let file = std::fs::File::open(blob(&f.oci_layout, digest)).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for e in tar.entries().unwrap() {
            let e = e.unwrap();
            let p = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let p = p.trim_start_matches("./").trim_start_matches('/');
            let (top, below) = match p.split_once('/') {
                Some((t, r)) => (t, !r.is_empty()),
                None => (p, false),
            };
            let dropped = match top {
                "" | "usr" | "etc" | "var" => false,
                "run" | "tmp" | "proc" | "sys" | "dev" => below,
                _ => true,
            };
            if dropped {
                *counts.entry(top.to_string()).or_default() += 1;
            }
        }
        if !counts.is_empty() {
            out.insert(i, counts);
        }
    }
    out
}

fn oci_ref(f: &Fixture) -> String {
    format!(
        "ostree-unverified-image:oci:{}:latest",
        f.oci_layout.display()
    )
}

fn storage_ref(f: &Fixture) -> String {
    format!("ostree-unverified-image:{}", f.storage_ref)
}

fn pull(repo: &Repo, image: &str) -> (store::PullOutcome, Option<store::ImageState>) {
    let mut opts = PullOptions::new();
    opts.fetch = modern();
    let r: OstreeImageReference = image.parse().unwrap();
    store::pull_blocking(repo, &r, opts).unwrap_or_else(|e| panic!("{image}: {e}"))
}

/// Differences between `ours` and `podman` (snapshots: type, mode, owner, content, symlink
/// target, xattrs), with the paths in `exclude` (relative, and everything below them) left out
/// of both sides.
fn subtree_diffs(ours: &Path, podman: &Path, exclude: &[&str]) -> Vec<String> {
    let opts = SnapshotOptions::default();
    let keep = |p: &PathBuf| !exclude.iter().any(|e| p.starts_with(e));
    let filter = |m: BTreeMap<PathBuf, _>| -> BTreeMap<PathBuf, _> {
        m.into_iter().filter(|(p, _)| keep(p)).collect()
    };
    let a = filter(snapshot(ours, &opts).unwrap());
    let b = filter(snapshot(podman, &opts).unwrap());
    diff_snapshots(&a, &b)
}

/// Spot checks of podman's view: the build did what the Containerfile says, so that the
/// comparison below cannot pass on a tree where nothing happened.
fn check_podman_view(root: &Path) {
    let meta = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    let pt = "usr/share/pt";
    assert!(!root.join(format!("{pt}/remove-me")).exists());
    assert!(!root.join("usr/bin/app").exists());
    let opaque: Vec<_> = std::fs::read_dir(root.join(format!("{pt}/opaque")))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(opaque, ["new-file"]);
    let m = meta(&format!("{pt}/owned-file"));
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o640));
    let m = meta(&format!("{pt}/owned-dir"));
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o750));
    let m = meta(pt);
    assert_eq!((m.uid(), m.gid()), (42, 43));
    assert_eq!(meta("usr/bin/suid-tool").mode() & 0o7777, 0o4755);
    assert_eq!(meta("usr/bin/user-suid").mode() & 0o7777, 0o4750);
    assert_eq!(meta(&format!("{pt}/sticky")).mode() & 0o7777, 0o1777);
    assert_eq!(
        meta(&format!("{pt}/hl-a")).ino(),
        meta(&format!("{pt}/hl-b")).ino()
    );
    assert!(meta(&format!("{pt}/dir-to-link")).file_type().is_symlink());
    assert_eq!(meta(&format!("{pt}/dir-to-link")).uid(), 1000);
    assert!(meta(&format!("{pt}/link-to-dir")).is_dir());
    assert!(meta(&format!("{pt}/dir-to-file")).is_file());
    assert!(meta(&format!("{pt}/file-to-dir")).is_dir());
    for gone in ["temp", "temp-file", "temp-empty"] {
        assert!(!root.join(format!("{pt}/{gone}")).exists(), "{gone}");
    }
    assert!(!root.join("etc/temp.conf").exists());
    assert!(!root.join("var/tmpstate").exists());
    assert!(root.join("opt/app/bin").is_file() && root.join("srv/data/x").is_file());
    let x = read_xattrs(&root.join(format!("{pt}/xattr-copied"))).unwrap();
    assert_eq!(
        x.get(&b"user.copied"[..]).map(Vec::as_slice),
        Some(&b"from the build context"[..]),
        "COPY kept the xattr"
    );
    for injected in ["hostname", "resolv.conf"] {
        assert_eq!(meta(&format!("etc/{injected}")).len(), 0, "{injected}");
    }
    assert_eq!(meta("var/tmp").mode() & 0o7777, 0o1777);
}

/// Everything checked for one pull of `image` into a new repository of `mode` under `dir`;
/// returns the root (dirtree, dirmeta) of the merge commit.
fn pull_and_compare(image: &str, mode: RepoMode, dir: &Path) -> (Checksum, Checksum) {
    let f = fixture();
    let what = format!("{image} into {mode}");
    let repo = Repo::create(&dir.join(format!("repo-{}", mode.name())), mode).unwrap();
    let (out, state) = pull(&repo, image);
    let state = state.unwrap();
    let merge = out.merge_commit.unwrap();
    assert_eq!(out.base_commit, Some(f.base_commit), "{what}");
    assert_eq!(state.merge_commit, merge, "{what}");
    assert!(!out.already_present, "{what}");
    assert_eq!(
        out.layers_fetched,
        layout_layers(&f.oci_layout).len(),
        "{what}"
    );

    // The path rules dropped /opt, /srv and the base's object files that copy-ups brought
    // into the layers (sysroot/), per layer, as counted from the tars themselves.
    let digests: Vec<String> = state
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    let expected: Vec<(String, BTreeMap<String, u32>)> = expected_filtered(f)
        .into_iter()
        .map(|(i, c)| (digests[i].clone(), c))
        .collect();
    assert_eq!(out.filtered, expected, "{what}");
    let first = &expected_filtered(f)[&f.base_layers];
    assert_eq!((first.get("opt"), first.get("srv")), (Some(&3), Some(&3)));

    let host = OstreeCli::new().unwrap();
    host.fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    d13()
        .ostree()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("ostree 2025.2, {what}: {e}"));
    let co = dir.join(format!("co-{}", mode.name()));
    host.checkout(repo.path(), &merge.to_hex(), &co, false)
        .unwrap();
    for dropped in ["opt", "srv", "sysroot"] {
        assert!(!co.join(dropped).exists(), "{what}: {dropped}");
    }
    for kept_empty in ["run", "proc", "sys", "dev"] {
        let n = std::fs::read_dir(co.join(kept_empty)).unwrap().count();
        assert_eq!(n, 0, "{what}: {kept_empty}");
    }
    let mut diffs = Vec::new();
    for (ours, theirs, exclude) in [
        ("usr", "usr", &["etc"][..]),
        ("usr/etc", "etc", &[][..]),
        ("var", "var", &[][..]),
    ] {
        for d in subtree_diffs(&co.join(ours), &f.rootfs.join(theirs), exclude) {
            diffs.push(format!("{ours} vs podman {theirs}: {d}"));
        }
    }
    assert_eq!(diffs, EXPECTED_DIFFS, "{what}");

    // Pulled again into the same repository: nothing fetched, the same merge commit.
    let (again, _) = pull(&repo, image);
    assert!(again.already_present, "{what}");
    assert_eq!(again.merge_commit, Some(merge), "{what}");
    assert_eq!(again.layers_fetched, 0, "{what}");
    // Into a fresh repository of the same mode: the same merge commit.
    let fresh = Repo::create(&dir.join(format!("repo2-{}", mode.name())), mode).unwrap();
    let (second, _) = pull(&fresh, image);
    assert_eq!(second.merge_commit, Some(merge), "{what}: deterministic");
    let c = repo.load_commit(&merge).unwrap();
    assert_eq!(c.parent, Some(f.base_commit), "{what}");
    (c.root_tree, c.root_meta)
}

/// Pulls into every mode; the merge trees are the same (content and directory metadata
/// checksums do not depend on the mode of the repository).
fn every_mode(image: &str) -> (Checksum, Checksum) {
    let d = scratch();
    check_podman_view(&fixture().rootfs);
    let roots: Vec<_> = MODES
        .into_iter()
        .map(|mode| (mode, pull_and_compare(image, mode, d.path())))
        .collect();
    for (mode, root) in &roots[1..] {
        assert_eq!(root, &roots[0].1, "{image}: {mode} vs {}", roots[0].0);
    }
    roots[0].1
}

#[test]
fn podman_built_image_from_oci_layout_equals_podman_view_every_mode() {
    every_mode(&oci_ref(fixture()));
}

#[test]
fn podman_built_image_from_containers_storage_equals_podman_view_every_mode() {
    every_mode(&storage_ref(fixture()));
}

/// containers-storage serves the same image with uncompressed layers (other digests, another
/// manifest, so another merge commit): the merge tree is the same as from the OCI layout.
#[test]
fn oci_layout_and_containers_storage_give_the_same_merge_tree() {
    let f = fixture();
    let d = scratch();
    let mut merges = Vec::new();
    for (name, image) in [("oci", oci_ref(f)), ("cs", storage_ref(f))] {
        let repo = Repo::create(&d.path().join(name), RepoMode::BareUser).unwrap();
        let (out, state) = pull(&repo, &image);
        let merge = out.merge_commit.unwrap();
        let c = repo.load_commit(&merge).unwrap();
        merges.push((
            merge,
            c.root_tree,
            c.root_meta,
            state.unwrap().manifest_digest,
        ));
    }
    let (oci, cs) = (&merges[0], &merges[1]);
    assert_eq!((oci.1, oci.2), (cs.1, cs.2), "root dirtree and dirmeta");
    assert_ne!(oci.3, cs.3, "containers-storage serves another manifest");
    assert_ne!(oci.0, cs.0, "so the merge commits differ (their metadata)");
}
