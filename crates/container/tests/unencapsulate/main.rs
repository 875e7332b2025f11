//! Unencapsulate end to end: images made by the harness (our tar export + an OCI layout, then
//! `skopeo copy` variants), served by every transport skopeo 1.9 pulls, imported into every
//! repository mode and checked with the real `ostree`.

#[path = "../common/mod.rs"]
mod common;
mod refusals;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use common::{anon, authenticated, generated_source, import_into, insecure};
use ostree_container::unencapsulate::{ErrorKind, UnencapsulateOptions, unencapsulate};
use ostree_container::{FetchConfig, OstreeImageReference};
use ostree_repo::format::Checksum;
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_tar::ExportPlan;
use test_support::compare::{SnapshotOptions, assert_trees_equal};
use test_support::oci::{LayerCompression, ostree_labels, write_layout};
use test_support::ostree_cli::OstreeCli;
use test_support::skopeo::skopeo_copy;

pub static NO: AtomicBool = AtomicBool::new(false);

/// A committed tree and images of it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub source_repo: PathBuf,
    pub commit: Checksum,
    /// `ostree checkout` of the source commit, to compare imports with.
    pub checkout: PathBuf,
    /// Single-layer OCI layout (uncompressed).
    pub single: PathBuf,
    /// Commit layer + 3 chunk layers (gzip).
    pub chunked: PathBuf,
    /// Layer tars of the chunked image.
    pub chunked_layers: Vec<Vec<u8>>,
}

pub fn scratch() -> tempfile::TempDir {
    test_support::scratch("oc-unencap-")
}

/// For fixtures held in a `static` (see `test_support::shared_scratch`).
pub fn shared_scratch() -> tempfile::TempDir {
    test_support::shared_scratch("oc-unencap-")
}

/// Writes an uncompressed or gzip single-layer image of `commit` at `dir`.
pub fn single_layer_image(
    repo: &Repo,
    commit: Checksum,
    dir: &Path,
    compression: LayerCompression,
) {
    let mut layer = Vec::new();
    ExportPlan::new(repo, commit)
        .unwrap()
        .write_commit_layer(&mut layer, &HashSet::new())
        .unwrap();
    let labels = ostree_labels(&commit.to_hex(), &layer);
    write_layout(dir, &[layer], &labels, compression).unwrap();
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = shared_scratch();
        let (src, repo) = generated_source(dir.path(), 3, 21);
        let source_repo = repo.path().to_path_buf();
        let mut spec = CommitSpec::new();
        spec.subject = "fixture".into();
        spec.timestamp = Some(1577836800);
        let commit = repo
            .commit_directory(
                &src,
                Some("fixture"),
                &TreeOptions::new(),
                &spec,
                &NoProgress,
                &NO,
            )
            .unwrap();
        let checkout = dir.path().join("checkout");
        OstreeCli::new()
            .unwrap()
            .checkout(&source_repo, &commit.to_hex(), &checkout, false)
            .unwrap();

        let single = dir.path().join("single");
        single_layer_image(&repo, commit, &single, LayerCompression::None);

        let plan = ExportPlan::new(&repo, commit).unwrap();
        let objects: Vec<Checksum> = plan.content_objects().copied().collect();
        let chunks: Vec<Vec<Checksum>> = (0..3)
            .map(|i| objects.iter().copied().skip(i).step_by(4).collect())
            .collect();
        let chunked_set: HashSet<Checksum> = chunks.iter().flatten().copied().collect();
        let mut layers = vec![Vec::new()];
        plan.write_commit_layer(&mut layers[0], &chunked_set)
            .unwrap();
        for c in &chunks {
            let mut t = Vec::new();
            plan.write_chunk_layer(&mut t, c).unwrap();
            layers.push(t);
        }
        let chunked = dir.path().join("chunked");
        let labels = ostree_labels(&commit.to_hex(), layers.last().unwrap());
        write_layout(&chunked, &layers, &labels, LayerCompression::Gzip).unwrap();
        Fixture {
            dir,
            source_repo,
            commit,
            checkout,
            single,
            chunked,
            chunked_layers: layers,
        }
    })
}

pub fn oref(s: &str) -> OstreeImageReference {
    s.parse().unwrap()
}

/// Imports `imgref` into a new repository of `mode` and checks everything.
pub fn import_and_check(
    imgref: &str,
    mode: RepoMode,
    cfg: impl Fn() -> FetchConfig,
    dir: &Path,
) -> ostree_container::Import {
    let f = fixture();
    let (repo, import) = import_into(imgref, mode, cfg(), dir);
    assert_eq!(import.ostree_commit, f.commit, "{imgref}");
    assert!(!import.already_present);
    let cli = OstreeCli::new().unwrap();
    assert_eq!(
        cli.rev_parse(repo.path(), "imported").unwrap(),
        f.commit.to_hex()
    );
    let co = dir.join(format!("co-{}", mode.name()));
    cli.check_import(repo.path(), "imported", &co, &f.checkout)
        .unwrap();
    // No partial marker, no staging left.
    assert_eq!(
        std::fs::read_dir(repo.path().join("state"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".commitpartial"))
            .count(),
        0
    );
    // Importing again returns at once.
    let again = unencapsulate(&repo, &oref(imgref), {
        let mut o = UnencapsulateOptions::new();
        o.fetch = cfg();
        o
    })
    .unwrap();
    assert!(again.already_present);
    import
}

const MODES: [RepoMode; 3] = [RepoMode::Bare, RepoMode::BareUser, RepoMode::Archive];

#[test]
fn single_and_chunked_from_oci_dirs() {
    let f = fixture();
    let d = scratch();
    for mode in MODES {
        import_and_check(
            &format!("ostree-unverified-image:oci:{}:latest", f.single.display()),
            mode,
            anon,
            &d.path().join("single"),
        );
        import_and_check(
            &format!("ostree-unverified-image:oci:{}:latest", f.chunked.display()),
            mode,
            anon,
            &d.path().join("chunked"),
        );
    }
}

#[test]
fn every_compression_and_local_transport() {
    let f = fixture();
    let d = scratch();
    let src = format!("oci:{}:latest", f.chunked.display());
    let p = |n: &str| d.path().join(n).display().to_string();
    let variants: Vec<(String, Vec<&str>, RepoMode)> = vec![
        (
            format!("oci:{}:latest", p("zstd")),
            vec!["--dest-compress-format", "zstd"],
            RepoMode::BareUser,
        ),
        (
            format!("oci:{}:latest", p("zstdchunked")),
            vec!["--dest-compress-format", "zstd:chunked"],
            RepoMode::Archive,
        ),
        (
            format!("oci:{}:latest", p("plain")),
            vec!["--dest-decompress"],
            RepoMode::Bare,
        ),
        (
            format!("oci-archive:{}", p("image.ociarchive")),
            vec![],
            RepoMode::BareUser,
        ),
        (
            format!("dir:{}", p("v2s2dir")),
            vec!["--format", "v2s2"],
            RepoMode::Archive,
        ),
        (
            format!("docker-archive:{}", p("image.dockerarchive")),
            vec![],
            RepoMode::Bare,
        ),
    ];
    for (dest, flags, mode) in variants {
        skopeo_copy(&src, &dest, &flags).unwrap();
        import_and_check(
            &format!("ostree-unverified-image:{dest}"),
            mode,
            anon,
            &d.path().join(dest.replace(['/', ':'], "_")),
        );
    }
}

#[test]
fn from_loopback_registries() {
    use test_support::registry::{Registry, RegistryOptions};
    let f = fixture();
    let d = scratch();
    let src = format!("oci:{}:latest", f.chunked.display());

    let plain = Registry::start(RegistryOptions::default()).unwrap();
    let dest = format!("docker://{}/test/chunked:latest", plain.host());
    skopeo_copy(&src, &dest, &["--dest-tls-verify=false"]).unwrap();
    import_and_check(
        &format!(
            "ostree-unverified-registry:{}/test/chunked:latest",
            plain.host()
        ),
        RepoMode::BareUser,
        insecure,
        &d.path().join("plain"),
    );

    let auth = d.path().join("auth.json");
    let (secure, cert_dir) = Registry::start_authenticated(&auth).unwrap();
    let dest = format!("docker://{}/test/single:latest", secure.host());
    skopeo_copy(
        &format!("oci:{}:latest", f.single.display()),
        &dest,
        &[
            "--dest-cert-dir",
            cert_dir.to_str().unwrap(),
            "--dest-authfile",
            auth.to_str().unwrap(),
        ],
    )
    .unwrap();
    import_and_check(
        &format!(
            "ostree-unverified-image:docker://{}/test/single:latest",
            secure.host()
        ),
        RepoMode::Archive,
        || authenticated(&auth, &cert_dir),
        &d.path().join("tls"),
    );

    // Wrong password: an authentication error, nothing imported.
    let bad = d.path().join("bad.json");
    secure.write_authfile(&bad, "user", "wrong").unwrap();
    let repo = Repo::create(&d.path().join("bad-repo"), RepoMode::BareUser).unwrap();
    let mut opts = UnencapsulateOptions::new();
    opts.fetch.authfile = Some(bad);
    opts.fetch.certificate_directory = Some(cert_dir);
    let e = unencapsulate(
        &repo,
        &oref(&format!(
            "ostree-unverified-registry:{}/test/single:latest",
            secure.host()
        )),
        opts,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(repo.list_refs().unwrap().is_empty());
}

#[test]
fn canonical_commit_into_bare_user_only() {
    // bare-user-only stores only canonical content: commit with canonical permissions.
    let d = scratch();
    let (src, repo) = generated_source(d.path(), 0, 5);
    let mut spec = CommitSpec::new();
    spec.timestamp = Some(0);
    let mut topts = TreeOptions::new();
    topts.canonical_permissions = true;
    let commit = repo
        .commit_directory(&src, None, &topts, &spec, &NoProgress, &NO)
        .unwrap();
    let img = d.path().join("img");
    single_layer_image(&repo, commit, &img, LayerCompression::Gzip);
    let dst_path = d.path().join("buo");
    let dst = Repo::create(&dst_path, RepoMode::BareUserOnly).unwrap();
    let mut opts = UnencapsulateOptions::new();
    opts.fetch = anon();
    let import = unencapsulate(
        &dst,
        &oref(&format!(
            "ostree-unverified-image:oci:{}:latest",
            img.display()
        )),
        opts,
    )
    .unwrap();
    assert_eq!(import.ostree_commit, commit);
    let cli = OstreeCli::new().unwrap();
    cli.fsck(&dst_path).unwrap().check().unwrap();
    let (a, b) = (d.path().join("co-src"), d.path().join("co-dst"));
    cli.checkout(repo.path(), &commit.to_hex(), &a, true)
        .unwrap();
    cli.checkout(&dst_path, &commit.to_hex(), &b, true).unwrap();
    let snap = SnapshotOptions {
        ownership: false,
        xattrs: false,
        mode_mask: 0o1377,
        ..Default::default()
    };
    assert_trees_equal(&a, &b, &snap).unwrap();
}
