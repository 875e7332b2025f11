//! Verification against fixtures made by the real tools: keys from `gpg --batch --quick-gen-key`
//! (RSA-3072 and ed25519), commits from `ostree commit`, signatures from `ostree gpg-sign`,
//! remotes from `ostree remote add --gpg-import`, commit and commitmeta bytes read from the
//! bare-user repository's `objects/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ostree_sign::{
    RemoteConfig, SignReason, SystemPaths, add_ed25519_signature, ed25519::base64_encode,
    ed25519_public_key, ed25519_secret_key_bytes, sign_ed25519, verify_commit,
};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install: apt-get install -y ostree gnupg)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Key {
    fpr: String,
    uid: String,
    armored: PathBuf,
    binary: PathBuf,
}

impl Key {
    fn key_id(&self) -> &str {
        &self.fpr[self.fpr.len() - 16..]
    }
}

struct Keys {
    _dir: tempfile::TempDir,
    home: PathBuf,
    rsa: Key,
    ed: Key,
    other: Key,
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args(["--batch", "--no-tty", "--passphrase", ""]);
    c
}

fn gen_key(dir: &Path, home: &Path, uid: &str, algo: &str, name: &str) -> Key {
    run(gpg(home).args(["--quick-gen-key", uid, algo, "sign", "never"]));
    let colons = run(gpg(home).args(["--with-colons", "--list-keys", uid]));
    let fpr = colons
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("fingerprint");
    let armored = dir.join(format!("{name}.asc"));
    let binary = dir.join(format!("{name}.gpg"));
    fs::write(&armored, run(gpg(home).args(["--armor", "--export", &fpr]))).unwrap();
    run(gpg(home).args(["--output", binary.to_str().unwrap(), "--export", &fpr]));
    Key {
        fpr,
        uid: uid.to_string(),
        armored,
        binary,
    }
}

/// One scratch GNUPGHOME for the whole test binary (RSA-3072 generation is slow).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("gnupg");
        fs::create_dir(&home).unwrap();
        fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let rsa = gen_key(
            dir.path(),
            &home,
            "RSA Tester <rsa@example.com>",
            "rsa3072",
            "rsa",
        );
        let ed = gen_key(
            dir.path(),
            &home,
            "Ed Tester <ed@example.com>",
            "future-default",
            "ed",
        );
        let other = gen_key(
            dir.path(),
            &home,
            "Other <other@example.com>",
            "future-default",
            "other",
        );
        Keys {
            home,
            rsa,
            ed,
            other,
            _dir: dir,
        }
    })
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("ostree")
            .arg(format!("--repo={}", dir.path().join("repo").display()))
            .args(["init", "--mode=bare-user"]));
        fs::create_dir(dir.path().join("tree")).unwrap();
        fs::write(dir.path().join("tree/file"), b"hello\n").unwrap();
        Repo { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    fn ostree(&self) -> Command {
        let mut c = Command::new("ostree");
        c.arg(format!("--repo={}", self.path().display()));
        c
    }
    fn commit(&self, subject: &str) -> String {
        run(self.ostree().args([
            "commit",
            "-b",
            "main",
            "-s",
            subject,
            &format!("--tree=dir={}", self.dir.path().join("tree").display()),
        ]))
        .trim()
        .to_string()
    }
    fn gpg_sign(&self, commit: &str, key: &Key) {
        run(self.ostree().args([
            "gpg-sign",
            &format!("--gpg-homedir={}", keys().home.display()),
            commit,
            &key.fpr,
        ]));
    }
    fn remote_add(&self, name: &str, extra: &[&str]) {
        let mut c = self.ostree();
        c.args(["remote", "add"])
            .args(extra)
            .args([name, "https://example.invalid/repo"]);
        run(&mut c);
    }
    fn object(&self, commit: &str, ext: &str) -> Option<Vec<u8>> {
        let p = self
            .path()
            .join("objects")
            .join(&commit[..2])
            .join(format!("{}.{ext}", &commit[2..]));
        fs::read(p).ok()
    }
    fn bytes(&self, commit: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            self.object(commit, "commit").expect("commit object"),
            self.object(commit, "commitmeta"),
        )
    }
    fn config(&self, name: &str) -> Result<RemoteConfig, ostree_sign::SignError> {
        RemoteConfig::load(&self.path(), name, &SystemPaths::none())
    }
}

/// A commit signed by `key`, and the remote `origin` added with `--gpg-import=import`.
fn signed_repo(key: &Key, import: &Path) -> (Repo, String) {
    let repo = Repo::new();
    let c = repo.commit("signed");
    repo.gpg_sign(&c, key);
    repo.remote_add("origin", &[&format!("--gpg-import={}", import.display())]);
    (repo, c)
}

#[test]
fn rsa_signed_commit_verifies_with_remote_keyring() {
    let k = keys();
    let (repo, c) = signed_repo(&k.rsa, &k.rsa.armored);
    assert!(repo.path().join("origin.trustedkeys.gpg").exists());
    let cfg = repo.config("origin").unwrap();
    assert!(cfg.gpg_verify);
    let (commit, meta) = repo.bytes(&c);
    let v = verify_commit(&cfg, &commit, meta.as_deref()).unwrap();
    let good = v.gpg_valid().unwrap();
    assert_eq!(good.fingerprint, k.rsa.fpr);
    assert_eq!(good.key_id, k.rsa.key_id());
    assert_eq!(good.user_id.as_deref(), Some(k.rsa.uid.as_str()));
    assert_eq!(good.algorithm, "RSA");
    assert!(
        v.describe()
            .contains("Good signature from \"RSA Tester <rsa@example.com>\""),
        "{}",
        v.describe()
    );
    assert_eq!(v.ed25519_key, None);
}

#[test]
fn ed25519_gpg_key_binary_import_and_two_signatures() {
    let k = keys();
    // The keyring holds both keys (binary import); the commit carries an untrusted signature
    // first, then a good one: one valid signature suffices.
    let all = tempfile::NamedTempFile::new().unwrap();
    let mut data = fs::read(&k.rsa.binary).unwrap();
    data.extend(fs::read(&k.ed.binary).unwrap());
    fs::write(all.path(), data).unwrap();
    let repo = Repo::new();
    let c = repo.commit("two sigs");
    repo.gpg_sign(&c, &k.other);
    repo.gpg_sign(&c, &k.ed);
    repo.remote_add(
        "origin",
        &[&format!("--gpg-import={}", all.path().display())],
    );
    let cfg = repo.config("origin").unwrap();
    assert_eq!(cfg.gpg_keys.len(), 1);
    assert_eq!(cfg.gpg_keys[0].keyring.keys.len(), 2);
    let (commit, meta) = repo.bytes(&c);
    let v = verify_commit(&cfg, &commit, meta.as_deref()).unwrap();
    assert_eq!(v.gpg.len(), 2);
    assert_eq!(v.gpg[0].status, ostree_sign::GpgStatus::MissingKey);
    assert_eq!(v.gpg_valid().unwrap().fingerprint, k.ed.fpr);
    assert_eq!(v.gpg_valid().unwrap().algorithm, "EdDSA");
}

/// Flips a byte inside the (last) signature packet's signature value.
fn flip_in_signature(meta: &[u8]) -> Vec<u8> {
    let dict = ostree_sign::parse_commitmeta(meta).unwrap();
    let mut out = ostree_format::MetaDict::default();
    for (k, v) in dict.0 {
        if k == "ostree.gpgsigs" {
            let ostree_format::gvariant::Value::Array(t, mut elems) = v else {
                panic!("aay")
            };
            let ostree_format::gvariant::Value::Bytes(b) = &mut elems[0] else {
                panic!("ay")
            };
            let n = b.len();
            b[n - 5] ^= 0x40;
            out.push(k, ostree_format::gvariant::Value::Array(t, elems));
        } else {
            out.push(k, v);
        }
    }
    out.to_bytes()
}

#[test]
fn flipped_signature_byte_is_bad_naming_key_and_user() {
    let k = keys();
    for key in [&k.rsa, &k.ed] {
        let (repo, c) = signed_repo(key, &key.armored);
        let cfg = repo.config("origin").unwrap();
        let (commit, meta) = repo.bytes(&c);
        let bad = flip_in_signature(&meta.unwrap());
        let e = verify_commit(&cfg, &commit, Some(&bad)).unwrap_err();
        assert_eq!(e.reason(), SignReason::BadSignature, "{e}");
        let msg = ostree_errors::chain(&e);
        assert!(msg.contains(key.key_id()), "{msg}");
        assert!(
            msg.contains(&format!("BAD signature from \"{}\"", key.uid)),
            "{msg}"
        );
        // A modified commit is just as bad.
        let mut commit2 = commit.clone();
        commit2[0] ^= 1;
        let e = verify_commit(&cfg, &commit2, repo.bytes(&c).1.as_deref()).unwrap_err();
        assert_eq!(e.reason(), SignReason::BadSignature, "{e}");
    }
}

#[test]
fn untrusted_key_names_key_id() {
    let k = keys();
    let (repo, c) = signed_repo(&k.other, &k.rsa.armored);
    let cfg = repo.config("origin").unwrap();
    let (commit, meta) = repo.bytes(&c);
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::UntrustedKey, "{e}");
    assert!(ostree_errors::chain(&e).contains(k.other.key_id()), "{e}");
    assert!(
        ostree_errors::chain(&e).contains("public key not found"),
        "{e}"
    );
}

#[test]
fn unsigned_commit_and_missing_commitmeta() {
    let k = keys();
    let repo = Repo::new();
    let c = repo.commit("unsigned");
    repo.remote_add(
        "origin",
        &[&format!("--gpg-import={}", k.rsa.armored.display())],
    );
    let cfg = repo.config("origin").unwrap();
    let (commit, meta) = repo.bytes(&c);
    assert!(meta.is_none());
    let e = verify_commit(&cfg, &commit, None).unwrap_err();
    assert_eq!(e.reason(), SignReason::NoDetachedMetadata);
    // Detached metadata without signatures (what `ostree commit --add-detached-metadata-string`
    // makes), and an empty `ostree.gpgsigs`.
    let c2 = run(repo.ostree().args([
        "commit",
        "-b",
        "other",
        "--add-detached-metadata-string=foo=bar",
        &format!("--tree=dir={}", repo.dir.path().join("tree").display()),
    ]))
    .trim()
    .to_string();
    let (commit2, meta2) = repo.bytes(&c2);
    let e = verify_commit(&cfg, &commit2, meta2.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::NoSignatures, "{e}");
    assert!(
        ostree_errors::chain(&e).contains("no signatures found"),
        "{e}"
    );
    let mut empty = ostree_format::MetaDict::default();
    empty.push(
        "ostree.gpgsigs",
        ostree_format::gvariant::Value::Array(
            ostree_format::gvariant::Type::Array(Box::new(ostree_format::gvariant::Type::Byte)),
            vec![],
        ),
    );
    let e = verify_commit(&cfg, &commit, Some(&empty.to_bytes())).unwrap_err();
    assert_eq!(e.reason(), SignReason::NoSignatures, "{e}");
}

#[test]
fn unknown_remote_and_gpg_verify_false() {
    let k = keys();
    let (repo, c) = signed_repo(&k.rsa, &k.rsa.armored);
    let e = repo.config("nosuch").unwrap_err();
    assert_eq!(e.reason(), SignReason::UnknownRemote);
    assert_eq!(ostree_errors::chain(&e), "Remote \"nosuch\" not found");
    repo.remote_add("nogpg", &["--no-gpg-verify"]);
    let cfg = repo.config("nogpg").unwrap();
    assert!(!cfg.gpg_verify);
    let (commit, meta) = repo.bytes(&c);
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::VerificationDisabled, "{e}");
    assert!(
        ostree_errors::chain(&e).contains("GPG verification disabled"),
        "{e}"
    );
}

#[test]
fn remotes_d_conf_and_duplicate_definition() {
    let k = keys();
    let (repo, c) = signed_repo(&k.rsa, &k.rsa.armored);
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("sys.conf"),
        format!(
            "[remote \"sys\"]\nurl=https://example.invalid\ngpgkeypath={}\n",
            k.rsa.armored.display()
        ),
    )
    .unwrap();
    fs::write(d.path().join("ignored.txt"), "[remote \"origin\"]\nurl=x\n").unwrap();
    let paths = SystemPaths {
        remotes_d: Some(d.path().to_path_buf()),
        ..SystemPaths::none()
    };
    let cfg = RemoteConfig::load(&repo.path(), "sys", &paths).unwrap();
    let (commit, meta) = repo.bytes(&c);
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_ok());
    assert!(RemoteConfig::load(&repo.path(), "origin", &paths).is_ok());
    fs::write(d.path().join("dup.conf"), "[remote \"origin\"]\nurl=x\n").unwrap();
    let e = RemoteConfig::load(&repo.path(), "origin", &paths).unwrap_err();
    assert!(
        ostree_errors::chain(&e).contains("Multiple specifications"),
        "{e}"
    );
}

#[test]
fn gpgkeypath_file_directory_and_list() {
    let k = keys();
    let repo = Repo::new();
    let c = repo.commit("keypath");
    repo.gpg_sign(&c, &k.rsa);
    let (commit, meta) = repo.bytes(&c);
    // A file (armored).
    repo.remote_add(
        "f",
        &[&format!("--set=gpgkeypath={}", k.rsa.armored.display())],
    );
    let cfg = repo.config("f").unwrap();
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_ok());
    // A directory: every regular file in it (binary and armored), as libostree.
    let dir = tempfile::tempdir().unwrap();
    fs::copy(&k.ed.armored, dir.path().join("ed.asc")).unwrap();
    fs::copy(&k.rsa.binary, dir.path().join("rsa.key")).unwrap();
    repo.remote_add(
        "d",
        &[&format!("--set=gpgkeypath={}", dir.path().display())],
    );
    let cfg = repo.config("d").unwrap();
    assert_eq!(cfg.gpg_keys.len(), 2);
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_ok());
    // A `;` list whose entries lack the signing key: not trusted.
    repo.remote_add(
        "l",
        &[&format!(
            "--set=gpgkeypath={};{}",
            k.ed.armored.display(),
            k.other.armored.display()
        )],
    );
    let cfg = repo.config("l").unwrap();
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::UntrustedKey, "{e}");
    // A missing path is a configuration error, as in libostree.
    repo.remote_add("m", &["--set=gpgkeypath=/nonexistent/key.asc"]);
    assert_eq!(repo.config("m").unwrap_err().reason(), SignReason::Io);
}

#[test]
fn global_keyring_only_without_remote_keyring() {
    let k = keys();
    let repo = Repo::new();
    let c = repo.commit("global");
    repo.gpg_sign(&c, &k.rsa);
    repo.remote_add("plain", &[]);
    repo.remote_add(
        "own",
        &[&format!("--gpg-import={}", k.ed.armored.display())],
    );
    let g = tempfile::tempdir().unwrap();
    fs::copy(&k.rsa.binary, g.path().join("vendor.gpg")).unwrap();
    let paths = SystemPaths {
        gpg_global_keyring_dirs: vec![g.path().to_path_buf()],
        ..SystemPaths::none()
    };
    let (commit, meta) = repo.bytes(&c);
    let cfg = RemoteConfig::load(&repo.path(), "plain", &paths).unwrap();
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_ok());
    // A per-remote keyring replaces the global directory (libostree's add_global_keyrings).
    let cfg = RemoteConfig::load(&repo.path(), "own", &paths).unwrap();
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::UntrustedKey, "{e}");
}

#[test]
fn expired_key_is_not_valid() {
    let k = keys();
    // A key of its own, expiring six seconds after it is made (signed at once, checked after).
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("g");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(gpg(&home).args([
        "--quick-gen-key",
        "Exp <exp@example.com>",
        "future-default",
        "sign",
        "seconds=6",
    ]));
    let armored = dir.path().join("exp.asc");
    fs::write(
        &armored,
        run(gpg(&home).args(["--armor", "--export", "exp@example.com"])),
    )
    .unwrap();
    let repo = Repo::new();
    let c = repo.commit("expiring");
    run(repo.ostree().args([
        "gpg-sign",
        &format!("--gpg-homedir={}", home.display()),
        &c,
        "exp@example.com",
    ]));
    repo.remote_add("origin", &[&format!("--gpg-import={}", armored.display())]);
    let cfg = repo.config("origin").unwrap();
    let (commit, meta) = repo.bytes(&c);
    std::thread::sleep(std::time::Duration::from_secs(7));
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::ExpiredKey, "{e}");
    // libostree agrees: `ostree show` reports the expired key and no valid signature.
    let out = repo.ostree().args(["show", &c]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Key expired"), "{text}");
    assert!(!text.contains("Good signature"), "{text}");
    assert!(ostree_errors::chain(&e).contains("Key expired"), "{e}");
    assert!(
        ostree_errors::chain(&e).contains("BAD signature from \"Exp <exp@example.com>\""),
        "{e}"
    );
    let _ = k;
}

#[test]
fn revoked_key_is_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("g");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(gpg(&home).args([
        "--quick-gen-key",
        "Rev <rev@example.com>",
        "future-default",
        "sign",
        "never",
    ]));
    let repo = Repo::new();
    let c = repo.commit("revoked");
    run(repo.ostree().args([
        "gpg-sign",
        &format!("--gpg-homedir={}", home.display()),
        &c,
        "rev@example.com",
    ]));
    // Import the revocation certificate gpg stored at key generation.
    let revs = home.join("openpgp-revocs.d");
    let rev = fs::read_dir(&revs).unwrap().next().unwrap().unwrap().path();
    let text = fs::read_to_string(&rev)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    let rev_fixed = dir.path().join("rev.asc");
    fs::write(&rev_fixed, text).unwrap();
    run(gpg(&home).args(["--import", rev_fixed.to_str().unwrap()]));
    let armored = dir.path().join("rev-key.asc");
    fs::write(
        &armored,
        run(gpg(&home).args(["--armor", "--export", "rev@example.com"])),
    )
    .unwrap();
    repo.remote_add("origin", &[&format!("--gpg-import={}", armored.display())]);
    let cfg = repo.config("origin").unwrap();
    let (commit, meta) = repo.bytes(&c);
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::RevokedKey, "{e}");
}

fn ed25519_keys(seed: u8) -> ([u8; 64], String) {
    let sk = ed25519_secret_key_bytes(&[seed; 32]);
    (sk, base64_encode(&ed25519_public_key(&sk).unwrap()))
}

/// Adds an ed25519 signature over the commit object to the repo's `.commitmeta`.
fn ed_sign(repo: &Repo, c: &str, sk: &[u8]) {
    let (commit, meta) = repo.bytes(c);
    let sig = sign_ed25519(sk, &commit).unwrap();
    let new = add_ed25519_signature(meta.as_deref(), &sig).unwrap();
    let p = repo
        .path()
        .join("objects")
        .join(&c[..2])
        .join(format!("{}.commitmeta", &c[2..]));
    fs::write(p, new).unwrap();
}

#[test]
fn ed25519_inline_file_bad_untrusted() {
    let (sk, pk) = ed25519_keys(1);
    let (_sk2, pk2) = ed25519_keys(2);
    let repo = Repo::new();
    let c = repo.commit("ed25519");
    ed_sign(&repo, &c, &sk);
    // ostree itself reads the signature we wrote (the detached metadata is a valid a{sv}).
    let shown = run(repo.ostree().args([
        "show",
        "--print-detached-metadata-key=ostree.sign.ed25519",
        &c,
    ]));
    // GLib prints an `ay` ending in a NUL byte as a bytestring (`b'…'`): 1 signature in 256.
    assert!(
        shown.contains("[byte 0x") || shown.contains("[<") || shown.contains("[b'"),
        "{shown}"
    );
    let (commit, meta) = repo.bytes(&c);
    // Inline key.
    repo.remote_add(
        "inline",
        &[
            "--no-gpg-verify",
            "--set=sign-verify=ed25519",
            &format!("--set=verification-ed25519-key={pk}"),
        ],
    );
    let cfg = repo.config("inline").unwrap();
    let v = verify_commit(&cfg, &commit, meta.as_deref()).unwrap();
    assert_eq!(base64_encode(&v.ed25519_key.unwrap()), pk);
    assert!(
        v.describe()
            .contains("ed25519: Signature verified successfully with key")
    );
    // Key file (several keys, one per line).
    let kf = repo.dir.path().join("trusted.ed25519");
    fs::write(&kf, format!("{pk2}\n{pk}\n")).unwrap();
    repo.remote_add(
        "file",
        &[
            "--no-gpg-verify",
            "--set=sign-verify=true",
            &format!("--set=verification-ed25519-file={}", kf.display()),
        ],
    );
    let cfg = repo.config("file").unwrap();
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_ok());
    // Bad: a flipped signature byte.
    let mut dict = ostree_sign::parse_commitmeta(meta.as_deref().unwrap()).unwrap();
    let Some((_, ostree_format::gvariant::Value::Array(_, elems))) =
        dict.0.iter_mut().find(|(k, _)| k == "ostree.sign.ed25519")
    else {
        panic!("no ostree.sign.ed25519")
    };
    let ostree_format::gvariant::Value::Bytes(b) = &mut elems[0] else {
        panic!("not ay")
    };
    b[3] ^= 1;
    let e = verify_commit(
        &repo.config("inline").unwrap(),
        &commit,
        Some(&dict.to_bytes()),
    )
    .unwrap_err();
    assert_eq!(e.reason(), SignReason::Ed25519NotVerified, "{e}");
    // Untrusted: only another key configured.
    repo.remote_add(
        "other",
        &[
            "--no-gpg-verify",
            "--set=sign-verify=ed25519",
            &format!("--set=verification-ed25519-key={pk2}"),
        ],
    );
    let e = verify_commit(&repo.config("other").unwrap(), &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::Ed25519NotVerified, "{e}");
    assert!(
        ostree_errors::chain(&e).contains("couldn't be verified"),
        "{e}"
    );
    // Required type without keys; unknown type.
    repo.remote_add("nokeys", &["--no-gpg-verify", "--set=sign-verify=ed25519"]);
    assert_eq!(
        repo.config("nokeys").unwrap_err().reason(),
        SignReason::NoKeys
    );
    repo.remote_add("unknown", &["--no-gpg-verify", "--set=sign-verify=rsa"]);
    assert_eq!(
        repo.config("unknown").unwrap_err().reason(),
        SignReason::UnsupportedSignType
    );
    // GPG on as well (default): both must verify; this commit has no GPG signature.
    repo.remote_add(
        "both",
        &[
            "--set=sign-verify=ed25519",
            &format!("--set=verification-ed25519-key={pk}"),
        ],
    );
    let e = verify_commit(&repo.config("both").unwrap(), &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::NoSignatures, "{e}");
}

#[test]
fn ed25519_system_dirs_and_revoked() {
    let (sk, pk) = ed25519_keys(3);
    let repo = Repo::new();
    let c = repo.commit("sys");
    ed_sign(&repo, &c, &sk);
    let (commit, meta) = repo.bytes(&c);
    repo.remote_add("origin", &["--no-gpg-verify", "--set=sign-verify=true"]);
    let sys = tempfile::tempdir().unwrap();
    let paths = SystemPaths {
        ed25519_key_dirs: vec![sys.path().to_path_buf()],
        ..SystemPaths::none()
    };
    // No keys anywhere: libostree's "no keys loaded".
    let cfg = RemoteConfig::load(&repo.path(), "origin", &paths).unwrap();
    let e = verify_commit(&cfg, &commit, meta.as_deref()).unwrap_err();
    assert_eq!(e.reason(), SignReason::NoKeys, "{e}");
    fs::create_dir(sys.path().join("trusted.ed25519.d")).unwrap();
    fs::write(
        sys.path().join("trusted.ed25519.d/vendor"),
        format!("{pk}\n"),
    )
    .unwrap();
    let cfg = RemoteConfig::load(&repo.path(), "origin", &paths).unwrap();
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_ok());
    fs::write(sys.path().join("revoked.ed25519"), format!("{pk}\n")).unwrap();
    let cfg = RemoteConfig::load(&repo.path(), "origin", &paths).unwrap();
    assert!(verify_commit(&cfg, &commit, meta.as_deref()).is_err());
}

#[test]
fn secret_key_file_format_matches_ostree_sign() {
    // `ostree sign --keys-file` reads base64 of the 64-byte secret key, one per line.
    let (sk, _) = ed25519_keys(9);
    let text = format!("{}\n", base64_encode(&sk));
    let keys = ostree_sign::ed25519::parse_secret_key_file(&text).unwrap();
    assert_eq!(keys, vec![sk]);
    assert_eq!(
        sign_ed25519(&keys[0], b"x").unwrap(),
        sign_ed25519(&sk[..32], b"x").unwrap()
    );
}

/// libostree's OpenSSL backend verifies with `EVP_PKEY_new_raw_public_key(ED25519)` and
/// `EVP_DigestVerify` over the commit bytes: the `openssl` CLI does the same, so it checks our
/// signatures independently of ed25519-dalek (Debian's ostree builds have no ed25519 at all), and
/// a signature it makes from the same seed must verify with us.
#[test]
fn ed25519_cross_checked_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [5u8; 32];
    let sk = ed25519_secret_key_bytes(&seed);
    let pk = ed25519_public_key(&sk).unwrap();
    let data = b"the commit object's bytes".to_vec();
    let p = |n: &str| dir.path().join(n);
    fs::write(p("data"), &data).unwrap();
    // SubjectPublicKeyInfo and PKCS#8 DER around the raw keys (RFC 8410).
    let mut spki = hex_bytes("302a300506032b6570032100");
    spki.extend_from_slice(&pk);
    fs::write(p("pk.der"), spki).unwrap();
    let mut pkcs8 = hex_bytes("302e020100300506032b657004220420");
    pkcs8.extend_from_slice(&seed);
    fs::write(p("sk.der"), pkcs8).unwrap();
    fs::write(p("ours.sig"), sign_ed25519(&sk, &data).unwrap()).unwrap();
    let s = |x: &str| p(x).to_str().unwrap().to_string();
    run(Command::new("openssl").args([
        "pkeyutl",
        "-verify",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        &s("pk.der"),
        "-rawin",
        "-in",
        &s("data"),
        "-sigfile",
        &s("ours.sig"),
    ]));
    run(Command::new("openssl").args([
        "pkeyutl",
        "-sign",
        "-keyform",
        "DER",
        "-inkey",
        &s("sk.der"),
        "-rawin",
        "-in",
        &s("data"),
        "-out",
        &s("theirs.sig"),
    ]));
    let theirs = fs::read(p("theirs.sig")).unwrap();
    assert_eq!(theirs.len(), 64);
    let meta = add_ed25519_signature(None, &theirs.try_into().unwrap()).unwrap();
    let cfg = RemoteConfig {
        name: "r".into(),
        defined_in: None,
        gpg_verify: false,
        gpg_keys: vec![],
        sign_verify: Some(ostree_sign::SignVerify::All),
        ed25519: Some(ostree_sign::Ed25519Verifier {
            keys: vec![pk],
            ..Default::default()
        }),
    };
    assert_eq!(
        verify_commit(&cfg, &data, Some(&meta)).unwrap().ed25519_key,
        Some(pk)
    );
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A signature made by a signing subkey (gpg picks the newest signing subkey when given the
/// primary fingerprint): the subkey's binding is checked, the primary's user ID is reported.
/// libostree agrees (`ostree show` says "Good signature" and names the primary key).
#[test]
fn signing_subkey() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("g");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(gpg(&home).args([
        "--quick-gen-key",
        "Sub <sub@example.com>",
        "rsa3072",
        "cert",
        "never",
    ]));
    let colons = run(gpg(&home).args(["--with-colons", "--list-keys", "sub@example.com"]));
    let primary = colons
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    run(gpg(&home).args(["--quick-add-key", &primary, "ed25519", "sign", "never"]));
    let armored = dir.path().join("sub.asc");
    fs::write(
        &armored,
        run(gpg(&home).args(["--armor", "--export", &primary])),
    )
    .unwrap();
    let repo = Repo::new();
    let c = repo.commit("subkey");
    run(repo.ostree().args([
        "gpg-sign",
        &format!("--gpg-homedir={}", home.display()),
        &c,
        &primary,
    ]));
    repo.remote_add("origin", &[&format!("--gpg-import={}", armored.display())]);
    let cfg = repo.config("origin").unwrap();
    let (commit, meta) = repo.bytes(&c);
    let v = verify_commit(&cfg, &commit, meta.as_deref()).unwrap();
    let good = v.gpg_valid().unwrap();
    assert_ne!(good.fingerprint, primary);
    assert_eq!(good.primary_fingerprint.as_deref(), Some(primary.as_str()));
    assert_eq!(good.user_id.as_deref(), Some("Sub <sub@example.com>"));
    assert!(
        v.describe()
            .contains(&format!("Primary key ID {}", &primary[24..])),
        "{}",
        v.describe()
    );
    let shown = run(repo.ostree().args(["show", &c]));
    assert!(
        shown.contains("Good signature from \"Sub <sub@example.com>\""),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Primary key ID {}", &primary[24..])),
        "{shown}"
    );
}

/// libostree as the oracle for the basic verdicts: `ostree show` (which uses the repository's
/// remote keyrings) agrees with us on good and on untrusted.
#[test]
fn libostree_agrees_on_good_and_untrusted() {
    let k = keys();
    let (repo, c) = signed_repo(&k.rsa, &k.rsa.armored);
    let shown = run(repo.ostree().args(["show", &c]));
    assert!(
        shown.contains(&format!("Good signature from \"{}\"", k.rsa.uid)),
        "{shown}"
    );
    assert!(shown.contains(k.rsa.key_id()), "{shown}");
    let (repo, c) = signed_repo(&k.other, &k.rsa.armored);
    let shown = run(repo.ostree().args(["show", &c]));
    assert!(
        shown.contains("Can't check signature: public key not found"),
        "{shown}"
    );
    assert!(shown.contains(k.other.key_id()), "{shown}");
    let (commit, meta) = repo.bytes(&c);
    let e = verify_commit(&repo.config("origin").unwrap(), &commit, meta.as_deref()).unwrap_err();
    assert!(
        ostree_errors::chain(&e).contains("Can't check signature: public key not found"),
        "{e}"
    );
}

/// A flipped byte in the signature: libostree (`ostree show`, gpgme) and we name the same key
/// ID and user ID with the same verdict. (For a BAD signature gpgme reports neither time nor
/// algorithm, so libostree prints `Signature made Thu Jan  1 00:00:00 1970 using [unknown
/// name] key ID …`; we print the signature's own creation time and algorithm.)
#[test]
fn libostree_agrees_on_bad_signatures() {
    let k = keys();
    for key in [&k.rsa, &k.ed] {
        let (repo, c) = signed_repo(key, &key.armored);
        let (commit, meta) = repo.bytes(&c);
        let bad = flip_in_signature(&meta.unwrap());
        let path = repo
            .path()
            .join("objects")
            .join(&c[..2])
            .join(format!("{}.commitmeta", &c[2..]));
        fs::write(&path, &bad).unwrap();
        let out = repo.ostree().args(["show", &c]).output().unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let e = verify_commit(&repo.config("origin").unwrap(), &commit, Some(&bad)).unwrap_err();
        assert_eq!(e.reason(), SignReason::BadSignature, "{e}");
        let ours = ostree_errors::chain(&e);
        let key_id = format!("key ID {}", key.key_id());
        let verdict = format!("BAD signature from \"{}\"", key.uid);
        for text in [&shown, &ours] {
            assert!(text.contains(&key_id), "{key_id} not in {text}");
            assert!(text.contains(&verdict), "{verdict} not in {text}");
        }
    }
}
