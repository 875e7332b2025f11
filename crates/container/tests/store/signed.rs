//! `ostree-remote-*`: the commit is verified with the remote's keys (a configuration written by
//! the real `ostree remote add --gpg-import`, signatures made by `ostree gpg-sign`) before
//! anything is published; a bad, untrusted or missing signature publishes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use ostree_container::encapsulate::{EncapsulateOptions, encapsulate};
use ostree_container::store::{self, PullOptions, StoreError};
use ostree_container::{ImageReference, OstreeImageReference};
use ostree_repo::format::ObjectType;
use ostree_repo::{Repo, RepoMode};
use ostree_sign::SignReason;
use test_support::layer::LayerTar;
use test_support::ostree_cli::OstreeCli;

use crate::common::anon;
use crate::{mkdir, put, scratch};

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh GnuPG home with one RSA-3072 signing key; returns (home, fingerprint, armored key).
pub(crate) fn gpg_key(dir: &Path, name: &str) -> (PathBuf, String, PathBuf) {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args))
    };
    gpg(&[
        "--quick-gen-key",
        &format!("{name} <{name}@example.com>"),
        "rsa3072",
        "sign",
        "never",
    ]);
    let fpr = gpg(&["--list-keys", "--with-colons"])
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    let key = dir.join(format!("{name}.asc"));
    std::fs::write(&key, gpg(&["--export", "--armor", &fpr])).unwrap();
    (home, fpr, key)
}

struct Signed {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
    commit: ostree_repo::format::Checksum,
    image: String,
    unsigned_image: String,
    commitmeta: Vec<u8>,
}

fn fixture() -> Signed {
    let d = scratch();
    let dir = d.path().to_path_buf();
    let (home, fpr, key) = gpg_key(&dir, "trusted");
    let (_, _, other_key) = gpg_key(&dir, "stranger");
    let tree = dir.join("tree");
    mkdir(&tree, "", 0o755, 0, 0);
    put(&tree, "usr/bin/os", b"os", 0o755, 0, 0);
    let src = Repo::create(&dir.join("src"), RepoMode::BareUser).unwrap();
    let (_, commit, _) = crate::commit_base_into(&src, &tree, "signed");
    let o = OstreeCli::new().unwrap();
    run(&mut o.command(&[
        "gpg-sign",
        &format!("--repo={}", src.path().display()),
        &format!("--gpg-homedir={}", home.display()),
        &commit.to_hex(),
        &fpr,
    ]));
    let commitmeta = src
        .load_metadata_bytes(&ostree_repo::format::ObjectName::new(
            commit,
            ObjectType::CommitMeta,
        ))
        .unwrap();
    let img = dir.join("img");
    let dest: ImageReference = format!("oci:{}:latest", img.display()).parse().unwrap();
    encapsulate(&src, &commit.to_hex(), &EncapsulateOptions::new(), &dest).unwrap();
    // The same tree committed again with another subject, not signed.
    let (_, unsigned, _) = crate::commit_base_into(&src, &tree, "unsigned");
    let uimg = dir.join("uimg");
    let udest: ImageReference = format!("oci:{}:latest", uimg.display()).parse().unwrap();
    encapsulate(&src, &unsigned.to_hex(), &EncapsulateOptions::new(), &udest).unwrap();
    Signed {
        _dir: d,
        dir,
        key,
        other_key,
        commit,
        image: format!("oci:{}:latest", img.display()),
        unsigned_image: format!("oci:{}:latest", uimg.display()),
        commitmeta,
    }
}

/// A repository with remote `name` trusting `key`, added by the real `ostree remote add`.
fn repo_with_remote(dir: &Path, tag: &str, mode: RepoMode, name: &str, key: &Path) -> Repo {
    let repo = Repo::create(&dir.join(format!("repo-{tag}-{}", mode.name())), mode).unwrap();
    run(&mut OstreeCli::new().unwrap().command(&[
        "remote",
        "add",
        &format!("--repo={}", repo.path().display()),
        &format!("--gpg-import={}", key.display()),
        name,
        "https://example.invalid/repo",
    ]));
    repo
}

fn no_system_config() -> PullOptions {
    let mut o = PullOptions::new();
    o.fetch = anon();
    o.signature_paths = Some(ostree_sign::SystemPaths::none());
    o
}

fn unencap(repo: &Repo, image: &str) -> Result<ostree_container::Import, StoreError> {
    let r: OstreeImageReference = image.parse().unwrap();
    let mut o = ostree_container::UnencapsulateOptions::new();
    o.fetch = anon();
    // unencapsulate uses libostree's default system paths; the tests' remotes live in the
    // repository config, which is read first, and no system remote of that name exists here.
    ostree_container::unencapsulate(repo, &r, o)
}

/// Nothing published: no ref, no commit object, fsck clean.
fn assert_nothing_published(repo: &Repo) {
    assert!(
        repo.list_refs().unwrap().is_empty(),
        "{:?}",
        repo.list_refs()
    );
    assert!(repo.list_objects(ObjectType::Commit).unwrap().is_empty());
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap();
}

#[test]
fn signed_commits_verify_and_bad_ones_publish_nothing() {
    let f = fixture();
    for mode in [RepoMode::BareUser, RepoMode::Bare] {
        // Trusted key: imported, detached metadata stored byte for byte.
        let repo = repo_with_remote(&f.dir, "ok", mode, "myremote", &f.key);
        let imp = unencap(&repo, &format!("ostree-remote-image:myremote:{}", f.image)).unwrap();
        assert_eq!(imp.ostree_commit, f.commit);
        assert_eq!(
            repo.load_metadata_bytes(&ostree_repo::format::ObjectName::new(
                f.commit,
                ObjectType::CommitMeta
            ))
            .unwrap(),
            f.commitmeta
        );
        OstreeCli::new()
            .unwrap()
            .fsck(repo.path())
            .unwrap()
            .check()
            .unwrap();
        // And through the store: a merge commit over the verified base.
        let r: OstreeImageReference = format!("ostree-remote-image:myremote:{}", f.image)
            .parse()
            .unwrap();
        let (out, _) = store::pull_blocking(&repo, &r, no_system_config()).unwrap();
        assert_eq!(out.base_commit, Some(f.commit));

        // A remote trusting another key: not trusted, nothing published.
        let repo = repo_with_remote(&f.dir, "untrusted", mode, "other", &f.other_key);
        let e = unencap(&repo, &format!("ostree-remote-image:other:{}", f.image)).unwrap_err();
        match &e {
            StoreError::Signature { source, .. } => {
                assert_eq!(source.reason(), SignReason::UntrustedKey, "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert_nothing_published(&repo);

        // Unsigned: refused, nothing published.
        let repo = repo_with_remote(&f.dir, "unsigned", mode, "myremote", &f.key);
        let e = unencap(
            &repo,
            &format!("ostree-remote-image:myremote:{}", f.unsigned_image),
        )
        .unwrap_err();
        match &e {
            StoreError::Signature { source, .. } => assert!(
                matches!(
                    source.reason(),
                    SignReason::NoDetachedMetadata | SignReason::NoSignatures
                ),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
        assert_nothing_published(&repo);
    }
}

#[test]
fn derived_images_cannot_be_verified_through_an_ostree_remote() {
    let f = fixture();
    // The signed image plus one container layer.
    let layout = f.dir.join("derived");
    let st = Command::new("cp")
        .arg("-a")
        .arg(
            f.image
                .trim_start_matches("oci:")
                .trim_end_matches(":latest"),
        )
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    let layer = LayerTar::new()
        .file("usr/bin/extra", b"x", 0o755, 0, 0)
        .finish();
    crate::append_layer(&layout, &layer);
    let repo = repo_with_remote(&f.dir, "derived", RepoMode::BareUser, "myremote", &f.key);
    let r: OstreeImageReference = format!(
        "ostree-remote-image:myremote:oci:{}:latest",
        layout.display()
    )
    .parse()
    .unwrap();
    let e = store::pull_blocking(&repo, &r, no_system_config()).unwrap_err();
    assert!(matches!(e, StoreError::RemoteSignedDerived { .. }), "{e}");
    assert_nothing_published(&repo);
}

#[test]
fn ed25519_signed_commits_verify_with_sign_verify_remotes() {
    let d = scratch();
    let dir = d.path();
    let tree = dir.join("tree");
    mkdir(&tree, "", 0o755, 0, 0);
    put(&tree, "usr/bin/os", b"os", 0o755, 0, 0);
    let src = Repo::create(&dir.join("src"), RepoMode::BareUser).unwrap();
    let (_, commit, _) = crate::commit_base_into(&src, &tree, "ed25519");
    let secret = ostree_sign::ed25519_secret_key_bytes(&[7u8; 32]);
    let public = ostree_sign::ed25519_public_key(&secret).unwrap();
    let other = ostree_sign::ed25519_public_key(&ostree_sign::ed25519_secret_key_bytes(&[9u8; 32]))
        .unwrap();
    let commit_bytes = src
        .load_metadata_bytes(&ostree_repo::format::ObjectName::new(
            commit,
            ObjectType::Commit,
        ))
        .unwrap();
    let sig = ostree_sign::sign_ed25519(&secret, &commit_bytes).unwrap();
    let meta = ostree_sign::add_ed25519_signature(None, &sig).unwrap();
    let txn = src.begin_transaction().unwrap();
    txn.write_commitmeta(&commit, &meta).unwrap();
    txn.commit().unwrap();
    let img = dir.join("img");
    let dest: ImageReference = format!("oci:{}:latest", img.display()).parse().unwrap();
    encapsulate(&src, &commit.to_hex(), &EncapsulateOptions::new(), &dest).unwrap();
    let image = format!("ostree-remote-image:edremote:oci:{}:latest", img.display());
    // Remotes written by the real `ostree remote add`, keys inline.
    let remote = |tag: &str, key: &[u8; 32]| -> Repo {
        let repo = Repo::create(&dir.join(format!("repo-{tag}")), RepoMode::BareUser).unwrap();
        run(&mut OstreeCli::new().unwrap().command(&[
            "remote",
            "add",
            &format!("--repo={}", repo.path().display()),
            "--no-gpg-verify",
            "--set=sign-verify=true",
            &format!(
                "--set=verification-ed25519-key={}",
                ostree_sign::ed25519::base64_encode(key)
            ),
            "edremote",
            "https://example.invalid/repo",
        ]));
        repo
    };
    let good = remote("good", &public);
    assert_eq!(unencap(&good, &image).unwrap().ostree_commit, commit);
    let bad = remote("bad", &other);
    let e = unencap(&bad, &image).unwrap_err();
    assert!(
        matches!(&e, StoreError::Signature { source, .. } if source.reason() == SignReason::Ed25519NotVerified),
        "{e:?}"
    );
    assert_nothing_published(&bad);
}
