//! `ostree-image-signed:docker://…` against the loopback registry with skopeo 1.18's own
//! signatures (issue 16, "Container signature policy", last bullet):
//! * simple signing: `skopeo copy --sign-by <gpg fingerprint>` with a registries.d
//!   `lookaside`/`lookaside-staging` for the registry, checked by a `signedBy` requirement;
//! * sigstore: `skopeo copy --sign-by-sigstore-private-key` (a key from
//!   `skopeo generate-sigstore-key`) with `use-sigstore-attachments: true`, checked by a
//!   `sigstoreSigned` requirement.
//!
//! Our fetch passes the policy (`FetchConfig::signature_policy`, skopeo's `--policy`) and the
//! registries.d (`FetchConfig::registries_d`, `--registries.d`). The signed image pulls through
//! `unencapsulate` and the store; an unsigned image and one signed by another key are refused
//! by the proxy at `OpenImage` with skopeo's reason, and nothing is published: no ref, no
//! object, both ostree versions' fsck clean. GnuPG runs in the Debian 13 chroot, as the
//! skopeo that signs (gpgme) does; every file lives under `/var/tmp`, which the chroot shares.

use std::path::{Path, PathBuf};
use std::process::Command;

use ostree_container::store::{self, PullOptions, StoreError};
use ostree_container::unencapsulate::{UnencapsulateOptions, unencapsulate};
use ostree_container::{FetchConfig, OstreeImageReference};
use ostree_repo::{Repo, RepoMode};
use test_support::ostree_cli::OstreeCli;
use test_support::registry::{Registry, RegistryOptions};

use crate::signed::assert_proxy_refusal;
use crate::{d13, fixture, modern, scratch};

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A GnuPG home in the chroot's view with one signing key; the agent is stopped on drop.
struct GpgHome {
    home: PathBuf,
    fingerprint: String,
    /// The public key, binary, for `signedBy`'s `keyPath`.
    public: PathBuf,
}

impl GpgHome {
    fn gpg(home: &Path) -> Command {
        let mut c = Command::new("chroot");
        c.arg(d13().root()).arg("gpg").env("GNUPGHOME", home).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    fn new(dir: &Path, name: &str, algo: &str) -> GpgHome {
        let home = dir.join(format!("gnupg-{name}"));
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        ok(Self::gpg(&home).args([
            "--quick-gen-key",
            &format!("{name} <{name}@example.com>"),
            algo,
            "sign",
            "never",
        ]));
        let fingerprint = ok(Self::gpg(&home).args(["--list-keys", "--with-colons"]))
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .unwrap();
        let public = dir.join(format!("{name}.gpg"));
        let key = Self::gpg(&home)
            .args(["--export", &fingerprint])
            .output()
            .unwrap();
        assert!(key.status.success() && !key.stdout.is_empty());
        std::fs::write(&public, key.stdout).unwrap();
        GpgHome {
            home,
            fingerprint,
            public,
        }
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("chroot")
            .arg(d13().root())
            .args(["gpgconf", "--kill", "gpg-agent"])
            .env("GNUPGHOME", &self.home)
            .status();
    }
}

/// A sigstore key pair from `skopeo generate-sigstore-key`: (private, public, passphrase file).
fn sigstore_key(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let pass = dir.join(format!("{name}.pass"));
    std::fs::write(&pass, format!("{name}-passphrase")).unwrap();
    let prefix = dir.join(name);
    d13().skopeo(&[
        "generate-sigstore-key",
        "--output-prefix",
        prefix.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    (
        prefix.with_extension("private"),
        prefix.with_extension("pub"),
        pass,
    )
}

/// Everything the cases share: the registry with the pushed images, the policy, registries.d.
struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    registry: Registry,
    policy: PathBuf,
    registries_d: PathBuf,
}

impl Setup {
    fn image(&self, repo: &str) -> String {
        format!(
            "ostree-image-signed:docker://{}/{repo}:latest",
            self.registry.host()
        )
    }

    fn fetch(&self) -> FetchConfig {
        let mut c = modern();
        c.insecure_skip_tls_verification = true;
        c.signature_policy = Some(self.policy.clone());
        c.registries_d = Some(self.registries_d.clone());
        c
    }
}

/// Pushes the fixture's single-layer image as `simple/{signed,unsigned,stranger}` and
/// `sigstore/{signed,unsigned,stranger}`, with a policy that demands the trusted key of each
/// kind for its namespace and rejects everything else.
fn setup() -> Setup {
    let d = scratch();
    let dir = d.path().to_path_buf();
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let host = registry.host();
    let lookaside = dir.join("lookaside");
    std::fs::create_dir(&lookaside).unwrap();
    let registries_d = dir.join("registries.d");
    std::fs::create_dir(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("loopback.yaml"),
        format!(
            "docker:\n  {host}/simple:\n    lookaside: file://{l}\n    lookaside-staging: file://{l}\n  {host}/sigstore:\n    use-sigstore-attachments: true\n",
            l = lookaside.display()
        ),
    )
    .unwrap();
    let trusted = GpgHome::new(&dir, "trusted", "rsa3072");
    let stranger = GpgHome::new(&dir, "stranger", "ed25519");
    let (ss_priv, ss_pub, ss_pass) = sigstore_key(&dir, "sigstore-trusted");
    let (other_priv, _, other_pass) = sigstore_key(&dir, "sigstore-stranger");

    let src = format!("oci:{}:latest", fixture().single.display());
    let regd = registries_d.to_str().unwrap().to_string();
    let push = |repo: &str, gnupg: Option<&GpgHome>, sign: &[&str]| {
        let mut c = d13().skopeo_command(&["--registries.d", &regd, "copy", "--quiet"]);
        c.args(["--dest-tls-verify=false"])
            .args(sign)
            .args([src.as_str(), &format!("docker://{host}/{repo}:latest")]);
        if let Some(g) = gnupg {
            c.env("GNUPGHOME", &g.home);
        }
        ok(&mut c);
    };
    push(
        "simple/signed",
        Some(&trusted),
        &["--sign-by", &trusted.fingerprint],
    );
    push("simple/unsigned", None, &[]);
    push(
        "simple/stranger",
        Some(&stranger),
        &["--sign-by", &stranger.fingerprint],
    );
    let sigstore = |key: &Path, pass: &Path| {
        vec![
            "--sign-by-sigstore-private-key".to_string(),
            key.display().to_string(),
            "--sign-passphrase-file".to_string(),
            pass.display().to_string(),
        ]
    };
    let args = sigstore(&ss_priv, &ss_pass);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    push("sigstore/signed", None, &args);
    push("sigstore/unsigned", None, &[]);
    let args = sigstore(&other_priv, &other_pass);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    push("sigstore/stranger", None, &args);
    // The simple signatures are in the lookaside, named by repository and manifest digest.
    let sigs: Vec<String> = test_support::files_under(&lookaside)
        .into_iter()
        .map(|p| p.strip_prefix(&lookaside).unwrap().display().to_string())
        .collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(sigs.iter().any(|s| s.starts_with("simple/signed@sha256=")));
    assert!(sigs.iter().all(|s| s.ends_with("/signature-1")), "{sigs:?}");

    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {
                format!("{host}/simple"): [{
                    "type": "signedBy", "keyType": "GPGKeys",
                    "keyPath": trusted.public.display().to_string(),
                }],
                format!("{host}/sigstore"): [{
                    "type": "sigstoreSigned",
                    "keyPath": ss_pub.display().to_string(),
                    "signedIdentity": {"type": "matchRepository"},
                }],
            }}
        })
        .to_string(),
    )
    .unwrap();
    Setup {
        _dir: d,
        dir,
        registry,
        policy,
        registries_d,
    }
}

fn oref(s: &str) -> OstreeImageReference {
    s.parse().unwrap()
}

fn try_unencapsulate(repo: &Repo, image: &str, fetch: FetchConfig) -> Result<(), StoreError> {
    let mut o = UnencapsulateOptions::new();
    o.fetch = fetch;
    o.write_ref = Some("imported".into());
    let import = unencapsulate(repo, &oref(image), o)?;
    assert_eq!(import.ostree_commit, fixture().commit, "{image}");
    Ok(())
}

fn try_pull(repo: &Repo, image: &str, fetch: FetchConfig) -> Result<(), StoreError> {
    let mut o = PullOptions::new();
    o.fetch = fetch;
    o.network_retries = 0;
    let (out, _) = store::pull_blocking(repo, &oref(image), o)?;
    assert_eq!(out.base_commit, Some(fixture().commit), "{image}");
    Ok(())
}

type Attempt = fn(&Repo, &str, FetchConfig) -> Result<(), StoreError>;
const BOTH: [(&str, Attempt); 2] = [("unencapsulate", try_unencapsulate), ("pull", try_pull)];

/// Nothing published: no ref, not one file under `objects/`, fsck clean for 2022.7 and 2025.2.
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
    d13()
        .ostree()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("ostree 2025.2, {what}: {e}"));
}

#[test]
fn registry_signatures_are_enforced_by_the_policy() {
    let s = setup();
    let cases = [
        ("simple/signed", None),
        (
            "simple/unsigned",
            Some("A signature was required, but no signature exists"),
        ),
        ("simple/stranger", Some("Invalid GPG signature")),
        ("sigstore/signed", None),
        (
            "sigstore/unsigned",
            Some("A signature was required, but no signature exists"),
        ),
        (
            "sigstore/stranger",
            Some("cryptographic signature verification failed"),
        ),
    ];
    for (repo_name, refusal) in cases {
        for (how, attempt) in BOTH {
            for mode in [RepoMode::BareUser, RepoMode::Bare] {
                let what = format!("{how} of {repo_name} into {mode}");
                let repo = Repo::create(
                    &s.dir.join(format!(
                        "{}-{how}-{}",
                        repo_name.replace('/', "-"),
                        mode.name()
                    )),
                    mode,
                )
                .unwrap();
                let r = attempt(&repo, &s.image(repo_name), s.fetch());
                match refusal {
                    None => {
                        r.unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert!(!repo.list_refs().unwrap().is_empty(), "{what}");
                        d13()
                            .ostree()
                            .fsck(repo.path())
                            .unwrap()
                            .check()
                            .unwrap_or_else(|e| panic!("ostree 2025.2, {what}: {e}"));
                    }
                    Some(reason) => {
                        let e = r.expect_err(&what);
                        eprintln!("{what}: {e}");
                        assert_proxy_refusal(&e, reason, &what);
                        assert_nothing_published(&repo, &what);
                    }
                }
            }
        }
    }
    // Without the registries.d, skopeo finds no simple signature for the signed image (its
    // default lookaside for other registries is none): the same image is refused.
    let repo = Repo::create(&s.dir.join("no-registries-d"), RepoMode::BareUser).unwrap();
    let mut fetch = s.fetch();
    fetch.registries_d = None;
    let e = try_pull(&repo, &s.image("simple/signed"), fetch).unwrap_err();
    assert_proxy_refusal(
        &e,
        "A signature was required, but no signature exists",
        "pull without registries.d",
    );
    assert_nothing_published(&repo, "pull without registries.d");
}
