//! Encapsulate end to end: commit → our encapsulate (`oci:`, `oci-archive:`, a loopback
//! registry; gzip and zstd; 1–64 layers) → our unencapsulate into every repository mode,
//! checked with the real `ostree` (fsck, checkout) and `skopeo`/GNU `tar`.

#[path = "../common/mod.rs"]
mod common;
mod metadata;
mod refusals;
mod stability;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use common::{anon, authenticated, generated_source, import_into, insecure};
use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};
use ostree_container::{FetchConfig, ImageReference};
use ostree_repo::format::gvariant::{Type, Value};
use ostree_repo::format::{Checksum, MetaDict};
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::ostree_cli::OstreeCli;
use test_support::skopeo::skopeo_copy;
use test_support::tree;

pub static NO: AtomicBool = AtomicBool::new(false);

/// A committed tree (full and canonical-permission variants) and its checkouts.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo_path: PathBuf,
    pub repo: Repo,
    pub commit: Checksum,
    pub checkout: PathBuf,
    /// `--canonical-permissions` commit of the same tree (importable into bare-user-only).
    pub canon: Checksum,
    pub canon_checkout: PathBuf,
}

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-encap-")
}

/// For fixtures held in a `static` (see `test_support::shared_scratch`).
pub fn shared_scratch() -> tempfile::TempDir {
    test_support::shared_scratch("oc-encap-")
}

pub fn metadata() -> MetaDict {
    let mut m = MetaDict::default();
    m.push("version", Value::Str("42.1".into()));
    m.push("ostree.bootable", Value::Bool(true));
    m.push("ostree.linux", Value::Str("6.1.0-test".into()));
    m.push("build.id", Value::Str("b-77".into()));
    m.push("build.number", Value::U32(7));
    m.push(
        "ostree.container-cmd",
        Value::Array(
            Type::Str,
            vec![Value::Str("/usr/bin/bash".into()), Value::Str("-l".into())],
        ),
    );
    m
}

pub fn commit_tree(repo: &Repo, src: &Path, branch: &str, canonical: bool) -> Checksum {
    let mut spec = CommitSpec::new();
    spec.subject = "Fixture build 42.1".into();
    spec.timestamp = Some(1_577_836_800);
    spec.metadata = metadata();
    let mut topts = TreeOptions::new();
    topts.canonical_permissions = canonical;
    repo.commit_directory(src, Some(branch), &topts, &spec, &NoProgress, &NO)
        .unwrap()
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = shared_scratch();
        let (src, repo) = generated_source(dir.path(), 2, 33);
        let repo_path = repo.path().to_path_buf();
        let commit = commit_tree(&repo, &src, "fixture", false);
        // bare-user-only checkouts add u+r to mode-0 files; leave that file out there.
        let canon_src = dir.path().join("canon-tree");
        tree::copy_tree(&src, &canon_src).unwrap();
        std::fs::remove_file(canon_src.join("files/no-perms")).unwrap();
        let canon = commit_tree(&repo, &canon_src, "canon", true);
        let cli = OstreeCli::new().unwrap();
        let checkout = dir.path().join("checkout");
        cli.checkout(&repo_path, &commit.to_hex(), &checkout, false)
            .unwrap();
        let canon_checkout = dir.path().join("canon-checkout");
        cli.checkout(&repo_path, &canon.to_hex(), &canon_checkout, false)
            .unwrap();
        Fixture {
            dir,
            repo_path,
            repo,
            commit,
            checkout,
            canon,
            canon_checkout,
        }
    })
}

pub fn opts(max_layers: usize, compression: Compression) -> EncapsulateOptions {
    let mut o = EncapsulateOptions::new();
    o.max_layers = NonZeroUsize::new(max_layers);
    o.compression = compression;
    o
}

pub fn imgref(s: &str) -> ImageReference {
    s.parse().unwrap()
}

/// Encapsulates `rev` of the fixture repo to `dest`.
pub fn encap(rev: &str, o: &EncapsulateOptions, dest: &str) -> String {
    encapsulate(&fixture().repo, rev, o, &imgref(dest))
        .unwrap_or_else(|e| panic!("encapsulate {rev} to {dest}: {e}"))
}

/// Imports `image` (an `ostree-unverified-…` reference) into a new repository of `mode` under
/// `dir` and checks commit, fsck and checkout against the source.
pub fn import_check(
    image: &str,
    mode: RepoMode,
    cfg: &dyn Fn() -> FetchConfig,
    dir: &Path,
    commit: &Checksum,
    checkout: &Path,
) {
    let (repo, import) = import_into(image, mode, cfg(), dir);
    assert_eq!(&import.ostree_commit, commit, "{image} into {mode}");
    let co = dir.join(format!("co-{}", mode.name()));
    OstreeCli::new()
        .unwrap()
        .check_import(repo.path(), "imported", &co, checkout)
        .unwrap_or_else(|e| panic!("{image} into {mode}: {e}"));
}

const MODES: [RepoMode; 3] = [RepoMode::Bare, RepoMode::BareUser, RepoMode::Archive];

#[test]
fn oci_dir_roundtrip_layer_counts_and_modes() {
    let f = fixture();
    let d = scratch();
    for layers in [1usize, 2, 8, 64] {
        let dest = d.path().join(format!("img{layers}"));
        encap(
            "fixture",
            &opts(layers, Compression::gzip()),
            &format!("oci:{}:v1", dest.display()),
        );
        let n = metadata::read_image(&dest, Some("v1")).0["layers"]
            .as_array()
            .unwrap()
            .len();
        assert!(n <= layers && (layers == 1) == (n == 1), "{layers} -> {n}");
        for mode in MODES {
            import_check(
                &format!("ostree-unverified-image:oci:{}:v1", dest.display()),
                mode,
                &anon,
                &d.path().join(format!("imp{layers}")),
                &f.commit,
                &f.checkout,
            );
        }
    }
    // bare-user-only needs canonical permissions.
    let dest = d.path().join("canon");
    encap(
        "canon",
        &opts(8, Compression::gzip()),
        &format!("oci:{}", dest.display()),
    );
    import_check(
        &format!("ostree-unverified-image:oci:{}", dest.display()),
        RepoMode::BareUserOnly,
        &anon,
        &d.path().join("imp-canon"),
        &f.canon,
        &f.canon_checkout,
    );
}

#[test]
fn zstd_and_oci_archive_roundtrip() {
    let f = fixture();
    let d = scratch();
    let cases = [
        ("z1.ociarchive", 1, Compression::zstd(), RepoMode::BareUser),
        (
            "z8.ociarchive",
            8,
            Compression::Zstd { level: 9 },
            RepoMode::Archive,
        ),
        (
            "g64.ociarchive",
            64,
            Compression::Gzip { level: 1 },
            RepoMode::Bare,
        ),
    ];
    for (name, layers, comp, mode) in cases {
        let path = d.path().join(name);
        encap(
            "fixture",
            &opts(layers, comp),
            &format!("oci-archive:{}", path.display()),
        );
        import_check(
            &format!("ostree-unverified-image:oci-archive:{}", path.display()),
            mode,
            &anon,
            &d.path().join(format!("imp-{name}")),
            &f.commit,
            &f.checkout,
        );
    }
    // zstd into an OCI directory too, every mode.
    let dest = d.path().join("zdir");
    encap(
        "fixture",
        &opts(2, Compression::zstd()),
        &format!("oci:{}", dest.display()),
    );
    for mode in MODES {
        import_check(
            &format!("ostree-unverified-image:oci:{}", dest.display()),
            mode,
            &anon,
            &d.path().join("imp-zdir"),
            &f.commit,
            &f.checkout,
        );
    }
}

#[test]
fn recompressed_by_skopeo_still_imports() {
    let f = fixture();
    let d = scratch();
    let src = d.path().join("src");
    encap(
        "fixture",
        &opts(8, Compression::gzip()),
        &format!("oci:{}:latest", src.display()),
    );
    for (i, fmt) in ["zstd", "zstd:chunked"].into_iter().enumerate() {
        let dst = d.path().join(format!("re{i}"));
        skopeo_copy(
            &format!("oci:{}:latest", src.display()),
            &format!("oci:{}:latest", dst.display()),
            &["--dest-compress-format", fmt],
        )
        .unwrap();
        import_check(
            &format!("ostree-unverified-image:oci:{}:latest", dst.display()),
            MODES[i + 1],
            &anon,
            &d.path().join(format!("imp{i}")),
            &f.commit,
            &f.checkout,
        );
    }
}

#[test]
fn loopback_registry_roundtrip() {
    use test_support::registry::{Registry, RegistryOptions};
    let f = fixture();
    let d = scratch();
    let plain = Registry::start(RegistryOptions::default()).unwrap();
    let mut o = opts(8, Compression::gzip());
    o.insecure_skip_tls_verification = true;
    let dest = format!("docker://{}/test/encap:8", plain.host());
    let digest = encap("fixture", &o, &dest);
    // Pushing an OCI manifest keeps it byte for byte: the digest is the one we computed.
    let local = d.path().join("local");
    let local_digest = encap("fixture", &o, &format!("oci:{}", local.display()));
    assert_eq!(digest, local_digest);
    import_check(
        &format!("ostree-unverified-registry:{}/test/encap:8", plain.host()),
        RepoMode::BareUser,
        &insecure,
        &d.path().join("plain"),
        &f.commit,
        &f.checkout,
    );

    // TLS with basic auth: --authfile and --cert-dir.
    let auth = d.path().join("auth.json");
    let (secure, cert_dir) = Registry::start_authenticated(&auth).unwrap();
    let mut o = opts(1, Compression::zstd());
    o.authfile = Some(auth.clone());
    o.cert_dir = Some(cert_dir.clone());
    encap(
        "fixture",
        &o,
        &format!("docker://{}/test/single:1", secure.host()),
    );
    import_check(
        &format!(
            "ostree-unverified-image:docker://{}/test/single:1",
            secure.host()
        ),
        RepoMode::Archive,
        &|| authenticated(&auth, &cert_dir),
        &d.path().join("tls"),
        &f.commit,
        &f.checkout,
    );
    // Without credentials the push fails with a typed error.
    let mut o = opts(1, Compression::gzip());
    o.cert_dir = Some(cert_dir);
    o.authfile = Some(d.path().join("empty.json"));
    std::fs::write(d.path().join("empty.json"), "{}").unwrap();
    let e = encapsulate(
        &f.repo,
        "fixture",
        &o,
        &imgref(&format!("docker://{}/test/denied:1", secure.host())),
    )
    .unwrap_err();
    assert_eq!(
        e.reason(),
        ostree_container::encapsulate::EncapsulateReason::Push,
        "{e}"
    );
}

#[test]
fn reproducible_digests() {
    let d = scratch();
    for (name, o) in [
        ("g1", opts(1, Compression::gzip())),
        ("g8", opts(8, Compression::gzip())),
        ("z8", opts(8, Compression::zstd())),
    ] {
        let a = encap(
            "fixture",
            &o,
            &format!("oci:{}", d.path().join(format!("{name}a")).display()),
        );
        let b = encap(
            "fixture",
            &o,
            &format!("oci:{}", d.path().join(format!("{name}b")).display()),
        );
        assert_eq!(a, b, "{name}");
        // The checksum names the same commit: the rev form does not matter.
        let c = encap(
            &fixture().commit.to_hex(),
            &o,
            &format!("oci:{}", d.path().join(format!("{name}c")).display()),
        );
        assert_eq!(a, c, "{name}");
    }
    // Archives are byte-identical.
    let o = opts(4, Compression::zstd());
    let pa = d.path().join("a.ociarchive");
    let pb = d.path().join("b.ociarchive");
    encap("fixture", &o, &format!("oci-archive:{}", pa.display()));
    encap("fixture", &o, &format!("oci-archive:{}", pb.display()));
    assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
}
