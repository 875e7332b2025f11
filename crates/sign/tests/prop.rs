//! Property tests: parsing mutated OpenPGP signatures, keyrings, armored keys, detached
//! metadata, ed25519 keys and signatures never panics (and never verifies what it should not).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use ostree_format::MetaDict;
use ostree_format::gvariant::{Type, Value};
use ostree_sign::{
    Ed25519Verifier, KeySource, Keyring, RemoteConfig, SignVerify, add_ed25519_signature, ed25519,
    parse_commitmeta, sign_ed25519, verify_commit,
};
use proptest::prelude::*;

struct Fixture {
    _dir: tempfile::TempDir,
    data: Vec<u8>,
    signature: Vec<u8>,
    keyring: Vec<u8>,
    armored: Vec<u8>,
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (apt-get install -y ostree gnupg)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An ed25519 key, a detached signature as gpgme makes it, and the keyring
/// `ostree remote add --gpg-import` writes (with trust packets).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("g");
        fs::create_dir(&home).unwrap();
        fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let gpg = || {
            let mut c = Command::new("gpg");
            c.env("GNUPGHOME", &home)
                .args(["--batch", "--no-tty", "--passphrase", ""]);
            c
        };
        run(gpg().args([
            "--quick-gen-key",
            "Prop <prop@example.com>",
            "future-default",
            "sign",
            "never",
        ]));
        let data = b"commit object bytes".to_vec();
        let data_path = dir.path().join("data");
        fs::write(&data_path, &data).unwrap();
        let signature = run(gpg().args([
            "--detach-sign",
            "--output",
            "-",
            data_path.to_str().unwrap(),
        ]));
        let armored = run(gpg().args(["--armor", "--export"]));
        let asc = dir.path().join("k.asc");
        fs::write(&asc, &armored).unwrap();
        let repo: PathBuf = dir.path().join("repo");
        run(Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["init", "--mode=bare-user"]));
        run(Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args([
                "remote",
                "add",
                &format!("--gpg-import={}", asc.display()),
                "r",
                "https://example.invalid",
            ]));
        let keyring = fs::read(repo.join("r.trustedkeys.gpg")).unwrap();
        Fixture {
            _dir: dir,
            data,
            signature,
            keyring,
            armored,
        }
    })
}

fn config(keyring: Keyring) -> RemoteConfig {
    RemoteConfig {
        name: "r".into(),
        defined_in: None,
        gpg_verify: true,
        gpg_keys: vec![KeySource {
            path: PathBuf::from("mem"),
            keyring,
        }],
        sign_verify: None,
        ed25519: None,
    }
}

fn gpgsigs_meta(sig: &[u8]) -> Vec<u8> {
    let mut m = MetaDict::default();
    m.push(
        "ostree.gpgsigs",
        Value::Array(
            Type::Array(Box::new(Type::Byte)),
            vec![Value::Bytes(sig.to_vec())],
        ),
    );
    m.to_bytes()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(data: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut d = data.to_vec();
    for m in muts {
        if d.is_empty() {
            break;
        }
        match *m {
            Mutation::Flip(i, b) => {
                let n = d.len();
                d[i % n] ^= b;
            }
            Mutation::Truncate(i) => d.truncate(i % d.len()),
            Mutation::Insert(i, b) => {
                let n = d.len();
                d.insert(i % (n + 1), b);
            }
            Mutation::Remove(i) => {
                let n = d.len();
                d.remove(i % n);
            }
        }
    }
    d
}

#[test]
fn fixture_verifies_unmutated() {
    let f = fixture();
    let cfg = config(Keyring::parse_binary(&f.keyring));
    let v = verify_commit(&cfg, &f.data, Some(&gpgsigs_meta(&f.signature))).unwrap();
    assert!(v.gpg_valid().is_some());
    assert_eq!(
        v.gpg_valid().unwrap().user_id.as_deref(),
        Some("Prop <prop@example.com>")
    );
    let cfg = config(Keyring::parse_key_file(&f.armored).unwrap());
    assert!(verify_commit(&cfg, &f.data, Some(&gpgsigs_meta(&f.signature))).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mutated_signature_never_panics_nor_verifies(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let sig = apply(&f.signature, &muts);
        let cfg = config(Keyring::parse_binary(&f.keyring));
        let r = verify_commit(&cfg, &f.data, Some(&gpgsigs_meta(&sig)));
        if sig != f.signature && r.is_ok() {
            // Only bytes outside the hashed area and the signature value may change without
            // failing (the unhashed subpackets): the same signature must still be good.
            let v = r.unwrap();
            prop_assert!(v.gpg_valid().is_some());
        }
    }

    #[test]
    fn mutated_keyring_never_panics(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let kr = apply(&f.keyring, &muts);
        let cfg = config(Keyring::parse_binary(&kr));
        let _ = verify_commit(&cfg, &f.data, Some(&gpgsigs_meta(&f.signature)));
    }

    #[test]
    fn mutated_armored_key_never_panics(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let asc = apply(&f.armored, &muts);
        if let Ok(k) = Keyring::parse_key_file(&asc) {
            let _ = verify_commit(&config(k), &f.data, Some(&gpgsigs_meta(&f.signature)));
        }
    }

    #[test]
    fn mutated_commitmeta_never_panics(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let meta = apply(&gpgsigs_meta(&f.signature), &muts);
        let cfg = config(Keyring::parse_binary(&f.keyring));
        let _ = parse_commitmeta(&meta);
        let _ = verify_commit(&cfg, &f.data, Some(&meta));
        let _ = add_ed25519_signature(Some(&meta), &[0u8; 64]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let f = fixture();
        let cfg = config(Keyring::parse_binary(&bytes));
        let _ = verify_commit(&cfg, &f.data, Some(&bytes));
        let _ = verify_commit(&cfg, &f.data, Some(&gpgsigs_meta(&bytes)));
        let _ = Keyring::parse_key_file(&bytes);
    }

    #[test]
    fn ed25519_mutations_never_panic_nor_verify(
        seed in any::<[u8; 32]>(),
        sig_muts in prop::collection::vec(mutation(), 1..3),
        key_text in "[A-Za-z0-9+/=\n\r ]{0,200}",
    ) {
        let sk = ostree_sign::ed25519_secret_key_bytes(&seed);
        let pk = ostree_sign::ed25519_public_key(&sk).unwrap();
        let data = b"commit";
        let sig = sign_ed25519(&sk, data).unwrap();
        let bad = apply(&sig, &sig_muts);
        let mut m = MetaDict::default();
        m.push(ed25519::METADATA_KEY, Value::Array(Type::Array(Box::new(Type::Byte)), vec![Value::Bytes(bad.clone())]));
        let cfg = RemoteConfig {
            name: "r".into(),
            defined_in: None,
            gpg_verify: false,
            gpg_keys: vec![],
            sign_verify: Some(SignVerify::All),
            ed25519: Some(Ed25519Verifier { keys: vec![pk], ..Default::default() }),
        };
        let r = verify_commit(&cfg, data, Some(&m.to_bytes()));
        prop_assert_eq!(r.is_ok(), bad == sig);
        let _ = ed25519::parse_public_key_lines(&key_text);
        let _ = ed25519::parse_secret_key_file(&key_text);
        let _ = ed25519::base64_decode_glib(&key_text);
    }

    /// The remote configuration (GLib key-file syntax, lists, booleans, key values) as
    /// `ostree remote add` writes it, mutated: loading never panics.
    #[test]
    fn mutated_remote_config_never_panics(muts in prop::collection::vec(mutation(), 1..6)) {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.asc");
        fs::write(&key, &f.armored).unwrap();
        let text = format!(
            "[core]\nrepo_version=1\nmode=bare-user\n\n[remote \"r\"]\nurl=https://example.invalid/\n\
             gpg-verify=true\ngpgkeypath={};{}\nsign-verify=ed25519\n\
             verification-ed25519-key={}\n",
            key.display(),
            key.display(),
            ed25519::base64_encode(&[3u8; 32]),
        );
        let mutated = apply(text.as_bytes(), &muts);
        fs::write(dir.path().join("config"), &mutated).unwrap();
        let _ = RemoteConfig::load(dir.path(), "r", &ostree_sign::SystemPaths::none());
    }
}
