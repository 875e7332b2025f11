//! Images that must be refused, and failures that must leave the repository consistent.

use ostree_container::unencapsulate::{
    ErrorKind, UnencapsulateError, UnencapsulateOptions, unencapsulate,
};
use ostree_repo::{Repo, RepoMode};
use test_support::oci::{LayerCompression, ostree_labels, sha256, write_layout};
use test_support::ostree_cli::OstreeCli;

use crate::*;

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn try_import(
    imgref: &str,
    dir: &std::path::Path,
) -> (Repo, Result<ostree_container::Import, UnencapsulateError>) {
    try_import_with_policy(imgref, dir, None)
}

fn try_import_with_policy(
    imgref: &str,
    dir: &std::path::Path,
    policy: Option<&std::path::Path>,
) -> (Repo, Result<ostree_container::Import, UnencapsulateError>) {
    let repo = Repo::create(
        &dir.join(format!(
            "repo-{}",
            sha256(
                format!(
                    "{imgref}{policy:?}{}",
                    COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                )
                .as_bytes()
            )
            .get(7..19)
            .unwrap_or("x")
        )),
        RepoMode::BareUser,
    )
    .unwrap();
    let mut opts = UnencapsulateOptions::new();
    opts.fetch = anon();
    opts.fetch.signature_policy = policy.map(std::path::Path::to_path_buf);
    opts.write_ref = Some("imported".into());
    let r = unencapsulate(&repo, &oref(imgref), opts);
    (repo, r)
}

fn fsck(repo: &Repo) {
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap();
}

/// fsck clean, and no ref but the blob refs of layers skopeo verified before the failure (kept
/// so that a retry resumes; each points at a complete commit, which fsck checks).
fn assert_consistent(repo: &Repo) {
    fsck(repo);
    let refs: Vec<String> = repo
        .list_refs()
        .unwrap()
        .into_keys()
        .filter(|r| !r.starts_with("ostree/container/blob/"))
        .collect();
    assert!(refs.is_empty(), "no ref may be written: {refs:?}");
}

fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, p, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn refuses_non_ostree_derived_and_mislabelled_images() {
    let f = fixture();
    let d = scratch();
    let plain = tar_with(&[("usr/bin/hello", b"hi")]);

    // No labels at all.
    let p = d.path().join("plain");
    write_layout(
        &p,
        std::slice::from_ref(&plain),
        test_support::oci::NO_LABELS,
        LayerCompression::Gzip,
    )
    .unwrap();
    let (repo, r) = try_import(
        &format!("ostree-unverified-image:oci:{}:latest", p.display()),
        d.path(),
    );
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        ostree_errors::chain(&e).contains("not an ostree container image"),
        "{e}"
    );
    assert_consistent(&repo);

    // Derived: a container layer after the ostree layers.
    let mut layers = f.chunked_layers.clone();
    let labels = ostree_labels(&f.commit.to_hex(), layers.last().unwrap());
    layers.push(plain.clone());
    let p = d.path().join("derived");
    write_layout(&p, &layers, &labels, LayerCompression::Gzip).unwrap();
    let (repo, r) = try_import(
        &format!("ostree-unverified-image:oci:{}:latest", p.display()),
        d.path(),
    );
    assert!(
        matches!(r, Err(UnencapsulateError::DerivedImage { derived: 1, .. })),
        "{r:?}"
    );
    assert_consistent(&repo);

    // Missing ostree.commit label.
    let p = d.path().join("nolabel");
    let fd = sha256(&f.chunked_layers[0]);
    write_layout(
        &p,
        &f.chunked_layers[..1],
        &[("ostree.final-diffid", &fd)],
        LayerCompression::None,
    )
    .unwrap();
    let (repo, r) = try_import(
        &format!("ostree-unverified-image:oci:{}:latest", p.display()),
        d.path(),
    );
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Unsupported);
    assert_consistent(&repo);

    // A label that names another commit than the layer holds.
    let p = d.path().join("wrongcommit");
    let other = "0".repeat(63) + "1";
    let labels = ostree_labels(&other, &f.chunked_layers[0]);
    // Only the commit layer: its content lives in chunks, so it is also incomplete; either
    // way nothing may be published.
    write_layout(&p, &f.chunked_layers[..1], &labels, LayerCompression::None).unwrap();
    let (repo, r) = try_import(
        &format!("ostree-unverified-image:oci:{}:latest", p.display()),
        d.path(),
    );
    // The store passes the layer importer's own class through (not one collapsed "corrupt").
    let e = r.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Invalid | ErrorKind::Incomplete | ErrorKind::Corrupt
        ),
        "{e:?}"
    );
    assert_consistent(&repo);

    // ostree-remote references are refused until signature verification exists.
    let (repo, r) = try_import(
        &format!(
            "ostree-remote-image:myremote:oci:{}:latest",
            f.single.display()
        ),
        d.path(),
    );
    // An ostree remote that is not configured: refused before anything is fetched.
    match &r {
        Err(UnencapsulateError::Signature { source, .. }) => assert_eq!(
            source.reason(),
            ostree_sign::SignReason::UnknownRemote,
            "{r:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_consistent(&repo);
    // ostree-image-signed: an accept-anything policy is refused before skopeo runs, whether it
    // is the one skopeo reads by default or one named explicitly; a strict policy then still
    // needs enforcement in the proxy (skopeo >= 1.13).
    let signed = format!("ostree-image-signed:oci:{}:latest", f.single.display());
    let insecure = d.path().join("insecure-policy.json");
    std::fs::write(
        &insecure,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let strict = d.path().join("strict-policy.json");
    std::fs::write(
        &strict,
        r#"{"default": [{"type": "reject"}], "transports": {"oci": {"": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent.gpg"}]}}}"#,
    )
    .unwrap();
    let (repo, r) = try_import_with_policy(&signed, d.path(), Some(&insecure));
    match r {
        Err(UnencapsulateError::Policy {
            source: ostree_container::policy::PolicyError::AcceptsAnything { ref path, .. },
            ..
        }) => assert_eq!(path, &insecure),
        other => panic!("accept-anything policy not refused: {other:?}"),
    }
    assert_eq!(
        try_import_with_policy(&signed, d.path(), Some(&insecure))
            .1
            .unwrap_err()
            .kind(),
        ErrorKind::Usage
    );
    assert_consistent(&repo);
    assert!(
        repo.list_objects(ostree_repo::format::ObjectType::Commit)
            .unwrap()
            .is_empty()
    );
    let (repo, r) = try_import_with_policy(&signed, d.path(), Some(&strict));
    assert!(
        matches!(r, Err(UnencapsulateError::PolicyNeedsNewerSkopeo { .. })),
        "{r:?}"
    );
    assert_consistent(&repo);
}

#[test]
fn default_policy_of_debian_accepts_anything_and_is_refused() {
    // Debian ships /etc/containers/policy.json with an accept-anything default; the tests run as
    // root with no per-user policy, so that is the file skopeo would apply.
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let user = home.map(|h| h.join(ostree_container::policy::USER_POLICY));
    assert!(
        user.as_ref().is_none_or(|u| !u.exists()),
        "test expects no per-user policy"
    );
    let system = std::fs::read_to_string(ostree_container::policy::SYSTEM_POLICY)
        .expect("Debian's containers policy is installed with skopeo");
    assert!(system.contains("insecureAcceptAnything"), "{system}");
    let f = fixture();
    let d = scratch();
    let (repo, r) = try_import(
        &format!("ostree-image-signed:oci:{}:latest", f.single.display()),
        d.path(),
    );
    assert!(
        matches!(
            r,
            Err(UnencapsulateError::Policy {
                source: ostree_container::policy::PolicyError::AcceptsAnything { .. },
                ..
            })
        ),
        "{r:?}"
    );
    assert_consistent(&repo);
}

#[test]
fn tampered_layer_is_a_digest_mismatch() {
    let f = fixture();
    let d = scratch();
    let p = d.path().join("tampered");
    let labels = ostree_labels(&f.commit.to_hex(), f.chunked_layers.last().unwrap());
    write_layout(&p, &f.chunked_layers, &labels, LayerCompression::None).unwrap();
    // Flip one byte of the largest blob's content (a file payload, not a header).
    let blob_dir = p.join("blobs/sha256");
    let biggest = std::fs::read_dir(&blob_dir)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut data = std::fs::read(&biggest).unwrap();
    let i = data.len() / 2;
    data[i] ^= 0x20;
    std::fs::write(&biggest, &data).unwrap();
    let (repo, r) = try_import(
        &format!("ostree-unverified-image:oci:{}:latest", p.display()),
        d.path(),
    );
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_consistent(&repo);
    // A retry from an intact image succeeds in the same repository.
    let mut opts = UnencapsulateOptions::new();
    opts.fetch = anon();
    let ok = unencapsulate(
        &repo,
        &oref(&format!(
            "ostree-unverified-image:oci:{}:latest",
            f.chunked.display()
        )),
        opts,
    )
    .unwrap();
    assert_eq!(ok.ostree_commit, f.commit);
    fsck(&repo);
}

#[test]
fn registry_killed_mid_layer_fails_within_the_timeout() {
    use test_support::registry::{Registry, RegistryOptions};
    let d = scratch();
    // A commit with a large incompressible file, so the transfer takes a while.
    let src = d.path().join("tree");
    std::fs::create_dir_all(&src).unwrap();
    let mut rng = test_support::tree::Rng::new(9);
    std::fs::write(src.join("big.bin"), rng.bytes(96 << 20)).unwrap();
    let source = Repo::create(&d.path().join("src"), RepoMode::BareUser).unwrap();
    let mut spec = ostree_repo::CommitSpec::new();
    spec.timestamp = Some(0);
    let commit = source
        .commit_directory(
            &src,
            None,
            &ostree_repo::TreeOptions::new(),
            &spec,
            &ostree_repo::NoProgress,
            &NO,
        )
        .unwrap();
    let p = d.path().join("big");
    single_layer_image(&source, commit, &p, LayerCompression::None);
    let mut reg = Registry::start(RegistryOptions::default()).unwrap();
    skopeo_copy(
        &format!("oci:{}:latest", p.display()),
        &format!("docker://{}/big:1", reg.host()),
        &["--dest-tls-verify=false"],
    )
    .unwrap();

    let repo = Repo::create(&d.path().join("dst"), RepoMode::BareUser).unwrap();
    let imgref = oref(&format!("ostree-unverified-registry:{}/big:1", reg.host()));
    let started = std::time::Instant::now();
    let result = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut opts = UnencapsulateOptions::new();
            opts.fetch = insecure();
            opts.fetch.stall_timeout = std::time::Duration::from_secs(10);
            unencapsulate(&repo, &imgref, opts)
        });
        // Kill the registry once the import is under way.
        let tmp = repo.path().join("tmp");
        for _ in 0..500 {
            if std::fs::read_dir(&tmp)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("staging-"))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        reg.kill();
        h.join().unwrap()
    });
    let elapsed = started.elapsed();
    match result {
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::Network | ErrorKind::Proxy | ErrorKind::Corrupt
            ),
            "{e}"
        ),
        // The transfer may win the race on a fast machine; then it must be complete and correct.
        Ok(i) => assert_eq!(i.ostree_commit, commit),
    }
    assert!(
        elapsed < std::time::Duration::from_secs(60),
        "took {elapsed:?}"
    );
    fsck(&repo);
}
