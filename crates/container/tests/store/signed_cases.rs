//! The rest of issue 16's "Tests (CI)" list, through the real import paths (`unencapsulate` and
//! the store's pull) into bare-user and bare repositories, with remotes written by the real
//! `ostree remote add`:
//! * GPG keys through `gpgkeypath=` as a file and as a directory; a flipped byte inside the
//!   signature is BAD (naming the key ID and user ID); a key not trusted is named by its ID;
//!   a revoked key and an expired key are refused as libostree refuses them;
//! * ed25519 good, bad (flipped byte) and untrusted, with the key inline
//!   (`verification-ed25519-key=`) and in a file (`verification-ed25519-file=`);
//! * after every refusal nothing is published (no ref, not one file under `objects/`, `ostree
//!   fsck` clean); on success the detached metadata is stored byte for byte;
//! * the commit is verified as soon as the commit layer arrives: a badly signed image whose
//!   chunk layer is missing from the layout is refused for its signature, the chunk never
//!   being asked for.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ostree_container::encapsulate::{EncapsulateOptions, encapsulate};
use ostree_container::fetch::{LayerProgress, LayerState};
use ostree_container::store::{self, PullOptions, StoreError};
use ostree_container::{ImageReference, OstreeImageReference};
use ostree_repo::format::MetaDict;
use ostree_repo::format::gvariant::Value;
use ostree_repo::format::{Checksum, ObjectName, ObjectType};
use ostree_repo::{Repo, RepoMode};
use ostree_sign::SignReason;
use test_support::ostree_cli::OstreeCli;

use crate::common::anon;
use crate::signed::run;
use crate::{mkdir, put, scratch};

/// A GnuPG home with one key: (home, fingerprint, armored public key file).
fn gen_key(dir: &Path, name: &str, algo: &str, expire: &str) -> (PathBuf, String, PathBuf) {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(gpg(&home).args([
        "--quick-gen-key",
        &format!("{name} <{name}@example.com>"),
        algo,
        "sign",
        expire,
    ]));
    let fpr = run(gpg(&home).args(["--list-keys", "--with-colons"]))
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    let key = dir.join(format!("{name}.asc"));
    export(&home, &fpr, &key);
    (home, fpr, key)
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]);
    c
}

fn export(home: &Path, fpr: &str, to: &Path) {
    std::fs::write(to, run(gpg(home).args(["--export", "--armor", fpr]))).unwrap();
}

/// Imports the revocation certificate gpg made with the key, and re-exports the key.
fn revoke(home: &Path, fpr: &str, to: &Path) {
    let cert = home.join("openpgp-revocs.d").join(format!("{fpr}.rev"));
    // gpg guards the stored certificate against accidental import with a leading ':'.
    let text = std::fs::read_to_string(&cert)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    let fixed = home.join("revocation.asc");
    std::fs::write(&fixed, text).unwrap();
    run(gpg(home).arg("--import").arg(&fixed));
    export(home, fpr, to);
}

/// `ostree gpg-sign` of `commit` in `repo` with the key of `home`.
fn gpg_sign(repo: &Repo, home: &Path, commit: &Checksum, fpr: &str) {
    run(&mut OstreeCli::new().unwrap().command(&[
        "gpg-sign",
        &format!("--repo={}", repo.path().display()),
        &format!("--gpg-homedir={}", home.display()),
        &commit.to_hex(),
        fpr,
    ]));
}

fn commitmeta(repo: &Repo, commit: &Checksum) -> Vec<u8> {
    repo.load_metadata_bytes(&ObjectName::new(*commit, ObjectType::CommitMeta))
        .unwrap()
}

fn write_commitmeta(repo: &Repo, commit: &Checksum, meta: &[u8]) {
    let txn = repo.begin_transaction().unwrap();
    txn.write_commitmeta(commit, meta).unwrap();
    txn.commit().unwrap();
}

/// The detached metadata with one bit flipped near the end of the first signature of `key`.
fn flip_in_signature(meta: &[u8], key: &str) -> Vec<u8> {
    let dict = ostree_sign::parse_commitmeta(meta).unwrap();
    let mut out = MetaDict::default();
    for (k, v) in dict.0 {
        match v {
            Value::Array(t, mut elems) if k == key => {
                let Some(Value::Bytes(b)) = elems.first_mut() else {
                    panic!("{key}: not aay")
                };
                let n = b.len();
                b[n - 5] ^= 0x40;
                out.push(k, Value::Array(t, elems));
            }
            v => out.push(k, v),
        }
    }
    let flipped = out.to_bytes();
    assert_ne!(flipped, meta);
    flipped
}

/// The source repository: a tree of several files (so the image has chunk layers) committed
/// under different subjects, one commit per signing case.
struct Source {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    repo: Repo,
    tree: PathBuf,
}

impl Source {
    fn new() -> Source {
        let d = scratch();
        let dir = d.path().to_path_buf();
        let tree = dir.join("tree");
        mkdir(&tree, "", 0o755, 0, 0);
        for i in 0..12 {
            put(
                &tree,
                &format!("usr/lib/part{}/file{i}", i % 4),
                format!("content {i} ").repeat(100 + i).as_bytes(),
                0o644,
                0,
                0,
            );
        }
        put(&tree, "usr/bin/os", b"os", 0o755, 0, 0);
        let repo = Repo::create(&dir.join("src"), RepoMode::BareUser).unwrap();
        Source {
            _dir: d,
            dir,
            repo,
            tree,
        }
    }

    fn commit(&self, subject: &str) -> Checksum {
        crate::commit_base_into(&self.repo, &self.tree, subject).1
    }

    /// Encapsulates `commit` (with its detached metadata as stored now) as `oci:DIR/NAME`.
    fn image(&self, commit: &Checksum, name: &str) -> PathBuf {
        let layout = self.dir.join(name);
        let dest: ImageReference = format!("oci:{}:latest", layout.display()).parse().unwrap();
        encapsulate(
            &self.repo,
            &commit.to_hex(),
            &EncapsulateOptions::new(),
            &dest,
        )
        .unwrap();
        layout
    }

    /// A repository of `mode` with remote `name` added by `ostree remote add ARGS…`.
    fn repo_with_remote(&self, tag: &str, mode: RepoMode, name: &str, args: &[String]) -> Repo {
        let repo = Repo::create(&self.dir.join(format!("repo-{tag}-{}", mode.name())), mode)
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        let mut cmd = vec![
            "remote".to_string(),
            "add".into(),
            format!("--repo={}", repo.path().display()),
        ];
        cmd.extend(args.iter().cloned());
        cmd.extend([name.to_string(), "https://example.invalid/repo".into()]);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        run(&mut OstreeCli::new().unwrap().command(&cmd));
        repo
    }
}

/// The manifest's layers of an OCI layout written by encapsulate (its one image).
fn layer_blobs(layout: &Path) -> Vec<PathBuf> {
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(l["digest"].as_str().unwrap()))
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum How {
    Unencapsulate,
    Pull,
}

fn attempt(repo: &Repo, how: How, image: &str) -> Result<Checksum, StoreError> {
    let r: OstreeImageReference = image.parse().unwrap();
    let mut fetch = anon();
    // Several layers at once: the commit layer must still be verified before a chunk is asked
    // for.
    fetch.layer_concurrency = std::num::NonZeroUsize::new(4).unwrap();
    match how {
        How::Unencapsulate => {
            let mut o = ostree_container::UnencapsulateOptions::new();
            o.fetch = fetch;
            o.write_ref = Some("imported".into());
            ostree_container::unencapsulate(repo, &r, o).map(|i| i.ostree_commit)
        }
        How::Pull => {
            let mut o = PullOptions::new();
            o.fetch = fetch;
            o.network_retries = 0;
            o.signature_paths = Some(ostree_sign::SystemPaths::none());
            store::pull_blocking(repo, &r, o).map(|(out, _)| out.base_commit.unwrap())
        }
    }
}

/// The error and all its sources, as the CLI prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = ostree_errors::chain(&e);
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Nothing published: no ref, not one file under `objects/` (the repository was empty), fsck
/// clean.
fn assert_nothing_published(repo: &Repo, what: &str) {
    assert!(
        repo.list_refs().unwrap().is_empty(),
        "{what}: refs {:?}",
        repo.list_refs()
    );
    let objects = test_support::files_under(&repo.path().join("objects"));
    assert!(objects.is_empty(), "{what}: objects {objects:?}");
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// One case: a remote configuration, an image, and what must come of it.
struct Case {
    name: &'static str,
    remote_args: Vec<String>,
    image: PathBuf,
    expect: Expect,
}

enum Expect {
    /// Imported; the detached metadata stored is these bytes.
    Imported { commit: Checksum, meta: Vec<u8> },
    /// Refused with this kind; the full message contains every string.
    Refused(SignReason, Vec<String>),
}

fn run_cases(src: &Source, cases: &[Case]) {
    for case in cases {
        for mode in [RepoMode::BareUser, RepoMode::Bare] {
            for how in [How::Unencapsulate, How::Pull] {
                let what = format!("{} by {how:?} into {mode}", case.name);
                let tag = format!("{}-{how:?}", case.name);
                let repo = src.repo_with_remote(&tag, mode, "origin", &case.remote_args);
                let image = format!(
                    "ostree-remote-image:origin:oci:{}:latest",
                    case.image.display()
                );
                let r = attempt(&repo, how, &image);
                match &case.expect {
                    Expect::Imported { commit, meta } => {
                        let c = r.unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
                        assert_eq!(&c, commit, "{what}");
                        assert_eq!(
                            &commitmeta(&repo, commit),
                            meta,
                            "{what}: detached metadata"
                        );
                        assert!(!repo.list_refs().unwrap().is_empty(), "{what}");
                        OstreeCli::new()
                            .unwrap()
                            .fsck(repo.path())
                            .unwrap()
                            .check()
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                    }
                    Expect::Refused(kind, texts) => {
                        let e = r.expect_err(&what);
                        let msg = chain(&e);
                        match &e {
                            StoreError::Signature { source, .. } => {
                                assert_eq!(source.reason(), *kind, "{what}: {msg}")
                            }
                            other => panic!("{what}: {other:?}"),
                        }
                        for t in texts {
                            assert!(msg.contains(t.as_str()), "{what}: {t:?} not in {msg}");
                        }
                        assert_nothing_published(&repo, &what);
                    }
                }
            }
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn gpg_keypath_flipped_revoked_and_expired_through_the_import_paths() {
    let src = Source::new();
    let dir = src.dir.clone();
    let (home, fpr, key) = gen_key(&dir, "trusted", "rsa3072", "never");
    let (s_home, s_fpr, s_key) = gen_key(&dir, "stranger", "ed25519", "never");
    let (r_home, r_fpr, _) = gen_key(&dir, "revoked", "rsa3072", "never");
    // Expires a few seconds after it is made: signed at once, checked once it has expired.
    let (e_home, e_fpr, e_key) = gen_key(&dir, "expiring", "ed25519", "seconds=10");
    let expires_at = now() + 10;

    let good = src.commit("gpg");
    gpg_sign(&src.repo, &home, &good, &fpr);
    let good_meta = commitmeta(&src.repo, &good);
    let good_img = src.image(&good, "good");
    assert!(
        layer_blobs(&good_img).len() > 1,
        "the image has chunk layers"
    );
    write_commitmeta(
        &src.repo,
        &good,
        &flip_in_signature(&good_meta, "ostree.gpgsigs"),
    );
    let flipped_img = src.image(&good, "flipped");
    write_commitmeta(&src.repo, &good, &good_meta);
    let stranger = src.commit("stranger");
    gpg_sign(&src.repo, &s_home, &stranger, &s_fpr);
    let stranger_img = src.image(&stranger, "stranger");
    let revoked = src.commit("revoked");
    gpg_sign(&src.repo, &r_home, &revoked, &r_fpr);
    let revoked_img = src.image(&revoked, "revoked");
    let r_key = dir.join("revoked-after.asc");
    revoke(&r_home, &r_fpr, &r_key);
    let expired = src.commit("expiring");
    gpg_sign(&src.repo, &e_home, &expired, &e_fpr);
    let expired_img = src.image(&expired, "expired");

    // gpgkeypath: a file, and a directory holding the stranger's key and ours.
    let keydir = dir.join("keys.d");
    std::fs::create_dir(&keydir).unwrap();
    std::fs::copy(&key, keydir.join("trusted.asc")).unwrap();
    std::fs::copy(&s_key, keydir.join("other.asc")).unwrap();
    let keypath_file = vec![format!("--set=gpgkeypath={}", key.display())];
    let keypath_dir = vec![format!("--set=gpgkeypath={}", keydir.display())];
    let import = |k: &Path| vec![format!("--gpg-import={}", k.display())];
    let key_id = |f: &str| f[f.len() - 16..].to_string();
    let imported = Expect::Imported {
        commit: good,
        meta: good_meta.clone(),
    };
    let mut cases = vec![
        Case {
            name: "keypath-file",
            remote_args: keypath_file.clone(),
            image: good_img.clone(),
            expect: imported,
        },
        Case {
            name: "keypath-dir",
            remote_args: keypath_dir.clone(),
            image: good_img.clone(),
            expect: Expect::Imported {
                commit: good,
                meta: good_meta.clone(),
            },
        },
        Case {
            name: "flipped",
            remote_args: keypath_dir.clone(),
            image: flipped_img.clone(),
            expect: Expect::Refused(
                SignReason::BadSignature,
                vec![
                    key_id(&fpr),
                    "BAD signature from \"trusted <trusted@example.com>\"".into(),
                ],
            ),
        },
        Case {
            name: "flipped-file",
            remote_args: keypath_file.clone(),
            image: flipped_img,
            expect: Expect::Refused(SignReason::BadSignature, vec![key_id(&fpr)]),
        },
        Case {
            name: "untrusted",
            remote_args: keypath_file.clone(),
            image: stranger_img,
            expect: Expect::Refused(
                SignReason::UntrustedKey,
                vec![
                    key_id(&s_fpr),
                    "Can't check signature: public key not found".into(),
                ],
            ),
        },
        Case {
            name: "revoked",
            remote_args: import(&r_key),
            image: revoked_img,
            expect: Expect::Refused(
                SignReason::RevokedKey,
                vec![key_id(&r_fpr), "Key revoked".into()],
            ),
        },
    ];
    run_cases(&src, &cases);
    // Once the key has expired: refused, as libostree (`BAD signature` and `Key expired`).
    let wait = (expires_at + 2).saturating_sub(now());
    std::thread::sleep(Duration::from_secs(wait));
    cases = vec![Case {
        name: "expired",
        remote_args: import(&e_key),
        image: expired_img,
        expect: Expect::Refused(
            SignReason::ExpiredKey,
            vec![
                key_id(&e_fpr),
                "BAD signature from \"expiring <expiring@example.com>\"".into(),
                "Key expired".into(),
            ],
        ),
    }];
    run_cases(&src, &cases);
}

#[test]
fn ed25519_inline_and_file_keys_through_the_import_paths() {
    let src = Source::new();
    let dir = src.dir.clone();
    let secret = ostree_sign::ed25519_secret_key_bytes(&[7u8; 32]);
    let public = ostree_sign::ed25519_public_key(&secret).unwrap();
    let other = ostree_sign::ed25519_public_key(&ostree_sign::ed25519_secret_key_bytes(&[9u8; 32]))
        .unwrap();
    let commit = src.commit("ed25519");
    // Signed with our `repo sign` (the format of `ostree sign`; Debian's libostree has no
    // ed25519 to sign with).
    let keyfile = dir.join("secret.ed25519");
    std::fs::write(
        &keyfile,
        format!("{}\n", ostree_sign::ed25519::base64_encode(&secret)),
    )
    .unwrap();
    let commit_bytes = src
        .repo
        .load_metadata_bytes(&ObjectName::new(commit, ObjectType::Commit))
        .unwrap();
    let sig = ostree_sign::sign_ed25519(&secret, &commit_bytes).unwrap();
    let meta = ostree_sign::add_ed25519_signature(None, &sig).unwrap();
    write_commitmeta(&src.repo, &commit, &meta);
    let good_img = src.image(&commit, "good");
    assert!(
        layer_blobs(&good_img).len() > 1,
        "the image has chunk layers"
    );
    write_commitmeta(
        &src.repo,
        &commit,
        &flip_in_signature(&meta, "ostree.sign.ed25519"),
    );
    let flipped_img = src.image(&commit, "flipped");
    write_commitmeta(&src.repo, &commit, &meta);

    let b64 = ostree_sign::ed25519::base64_encode;
    let key_file = |name: &str, key: &[u8; 32]| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{}\n", b64(key))).unwrap();
        p
    };
    let good_file = key_file("good.pub", &public);
    let other_file = key_file("other.pub", &other);
    let ed = |extra: String| {
        vec![
            "--no-gpg-verify".to_string(),
            "--set=sign-verify=ed25519".into(),
            extra,
        ]
    };
    let inline = |k: &[u8; 32]| ed(format!("--set=verification-ed25519-key={}", b64(k)));
    let file = |p: &Path| ed(format!("--set=verification-ed25519-file={}", p.display()));
    let refused = |k: &[u8; 32]| {
        Expect::Refused(
            SignReason::Ed25519NotVerified,
            vec![format!(
                "Signature couldn't be verified with: key '{}'",
                hex::encode(k)
            )],
        )
    };
    let imported = || Expect::Imported {
        commit,
        meta: meta.clone(),
    };
    let cases = vec![
        Case {
            name: "inline-good",
            remote_args: inline(&public),
            image: good_img.clone(),
            expect: imported(),
        },
        Case {
            name: "inline-bad",
            remote_args: inline(&public),
            image: flipped_img.clone(),
            expect: refused(&public),
        },
        Case {
            name: "inline-untrusted",
            remote_args: inline(&other),
            image: good_img.clone(),
            expect: refused(&other),
        },
        Case {
            name: "file-good",
            remote_args: file(&good_file),
            image: good_img.clone(),
            expect: imported(),
        },
        Case {
            name: "file-bad",
            remote_args: file(&good_file),
            image: flipped_img,
            expect: refused(&public),
        },
        Case {
            name: "file-untrusted",
            remote_args: file(&other_file),
            image: good_img,
            expect: refused(&other),
        },
    ];
    run_cases(&src, &cases);
}

/// Records the layers a pull is about to fetch, with their fetch state.
#[derive(Default)]
struct Plans(std::sync::Mutex<Vec<(usize, store::LayerRole, Arc<LayerProgress>)>>);

impl store::ImportProgress for Plans {
    fn layers(&self, _present: usize, layers: &[store::LayerPlan]) {
        let mut v = self.0.lock().unwrap();
        v.extend(
            layers
                .iter()
                .map(|l| (l.index, l.role, Arc::clone(&l.progress))),
        );
    }
}

fn attempt_observed(
    repo: &Repo,
    how: How,
    image: &str,
    plans: &Arc<Plans>,
) -> Result<Checksum, StoreError> {
    let r: OstreeImageReference = image.parse().unwrap();
    let mut fetch = anon();
    fetch.layer_concurrency = std::num::NonZeroUsize::new(4).unwrap();
    let progress: Arc<dyn store::ImportProgress> = plans.clone();
    match how {
        How::Unencapsulate => {
            let mut o = ostree_container::UnencapsulateOptions::new();
            o.fetch = fetch;
            o.progress = Some(progress);
            ostree_container::unencapsulate(repo, &r, o).map(|i| i.ostree_commit)
        }
        How::Pull => {
            let mut o = PullOptions::new();
            o.fetch = fetch;
            o.network_retries = 0;
            o.progress = Some(progress);
            o.signature_paths = Some(ostree_sign::SystemPaths::none());
            store::pull_blocking(repo, &r, o).map(|(out, _)| out.base_commit.unwrap())
        }
    }
}

/// The commit is verified as soon as its layer is imported, before any chunk layer is
/// requested (even with 4 layers fetched at once): after a refusal every chunk layer is still
/// `Pending`. With a chunk blob missing from the layout, a badly signed image is refused for
/// its signature, and a well signed one fails on the missing blob (its chunks are fetched once
/// the commit verified).
#[test]
fn the_commit_is_verified_before_chunk_layers_are_fetched() {
    let src = Source::new();
    let dir = src.dir.clone();
    let (home, fpr, key) = gen_key(&dir, "trusted", "ed25519", "never");
    let commit = src.commit("early");
    gpg_sign(&src.repo, &home, &commit, &fpr);
    let meta = commitmeta(&src.repo, &commit);
    let good_img = src.image(&commit, "good");
    write_commitmeta(
        &src.repo,
        &commit,
        &flip_in_signature(&meta, "ostree.gpgsigs"),
    );
    let flipped_img = src.image(&commit, "flipped");
    let flipped_missing = dir.join("flipped-missing");
    run(Command::new("cp")
        .arg("-a")
        .arg(&flipped_img)
        .arg(&flipped_missing));
    for img in [&good_img, &flipped_missing] {
        let blobs = layer_blobs(img);
        assert!(blobs.len() > 2, "{}", blobs.len());
        std::fs::remove_file(blobs.last().unwrap()).unwrap();
    }
    let remote = vec![format!("--gpg-import={}", key.display())];
    let image = |p: &Path| format!("ostree-remote-image:origin:oci:{}:latest", p.display());
    for mode in [RepoMode::BareUser, RepoMode::Bare] {
        for how in [How::Unencapsulate, How::Pull] {
            let what = format!("{how:?} into {mode}");
            let refused = |e: &StoreError, what: &str| match e {
                StoreError::Signature { source, .. } => {
                    assert_eq!(source.reason(), SignReason::BadSignature, "{what}")
                }
                other => panic!("{what}: not refused for the signature: {}", chain(other)),
            };
            // Intact image: refused, and no chunk layer was started.
            let repo = src.repo_with_remote(&format!("bad-{how:?}"), mode, "origin", &remote);
            let plans = Arc::new(Plans::default());
            let e = attempt_observed(&repo, how, &image(&flipped_img), &plans).unwrap_err();
            refused(&e, &what);
            let seen = plans.0.lock().unwrap();
            assert!(seen.len() > 2, "{what}: {} layers planned", seen.len());
            for (index, role, p) in seen.iter() {
                if *role == store::LayerRole::Commit {
                    assert_ne!(p.state(), LayerState::Pending, "{what}: commit layer");
                } else {
                    assert_eq!(p.state(), LayerState::Pending, "{what}: layer {index}");
                }
            }
            drop(seen);
            assert_nothing_published(&repo, &what);
            // A chunk missing: the signature is what is reported.
            let repo = src.repo_with_remote(&format!("badm-{how:?}"), mode, "origin", &remote);
            let e = attempt(&repo, how, &image(&flipped_missing)).unwrap_err();
            refused(&e, &format!("{what}, missing chunk"));
            assert_nothing_published(&repo, &format!("{what}, bad, missing chunk"));
            // Well signed with a chunk missing: the chunks are fetched and one is not there.
            let repo = src.repo_with_remote(&format!("good-{how:?}"), mode, "origin", &remote);
            let e = attempt(&repo, how, &image(&good_img)).unwrap_err();
            assert!(
                matches!(e, StoreError::Fetch(_)),
                "{what}: the missing chunk: {}",
                chain(&e)
            );
            assert_nothing_published(&repo, &format!("{what}, good, missing chunk"));
        }
    }
}

/// An unknown remote (refused before skopeo runs) and `gpg-verify=false` with no other verifier
/// (refused once the commit layer is in), through both import paths into bare-user and bare:
/// nothing published.
#[test]
fn unknown_remote_and_gpg_verify_false_through_the_import_paths() {
    let src = Source::new();
    let (home, fpr, _) = gen_key(&src.dir, "trusted", "rsa3072", "never");
    let commit = src.commit("gpg");
    gpg_sign(&src.repo, &home, &commit, &fpr);
    let img = src.image(&commit, "good");
    for mode in [RepoMode::BareUser, RepoMode::Bare] {
        for how in [How::Unencapsulate, How::Pull] {
            let cases = [
                (
                    "unknown",
                    "nosuchremote",
                    SignReason::UnknownRemote,
                    "Remote \"nosuchremote\" not found",
                ),
                (
                    "gpg-off",
                    "origin",
                    SignReason::VerificationDisabled,
                    "GPG verification disabled, and no signapi verifiers configured",
                ),
            ];
            for (tag, remote, kind, text) in cases {
                let what = format!("{tag} by {how:?} into {mode}");
                let repo = src.repo_with_remote(
                    &format!("{tag}-{how:?}"),
                    mode,
                    "origin",
                    &["--no-gpg-verify".to_string()],
                );
                let image = format!("ostree-remote-image:{remote}:oci:{}:latest", img.display());
                let e = attempt(&repo, how, &image).unwrap_err();
                let msg = chain(&e);
                match &e {
                    StoreError::Signature { source, .. } => {
                        assert_eq!(source.reason(), kind, "{what}: {msg}")
                    }
                    other => panic!("{what}: {other:?}"),
                }
                assert!(msg.contains(text), "{what}: {msg}");
                assert_nothing_published(&repo, &what);
            }
        }
    }
}
