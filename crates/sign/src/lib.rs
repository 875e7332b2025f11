//! Verification of ostree commit signatures against a remote's configuration, as libostree's
//! `ostree_repo_signature_verify_commit_data` does it, and ed25519 signing compatible with
//! `ostree sign --sign-type=ed25519`. Synchronous, no I/O during verification.
//!
//! * [`RemoteConfig::load`] reads `[remote "NAME"]` from the repository's `config` or the
//!   system remotes directory, and the keys: the per-remote keyring
//!   `<repo>/<NAME>.trustedkeys.gpg` that `ostree remote add --gpg-import` writes (a gpg 2.2
//!   `pubring.gpg`-format keyring with trust packets), `gpgkeypath=` files and directories,
//!   the global `trusted.gpg.d` (only without a per-remote keyring, as libostree), and for
//!   `sign-verify` the ed25519 keys (`verification-ed25519-key=`, `verification-ed25519-file=`,
//!   else the system `trusted.ed25519[.d]`).
//! * [`verify_commit`] checks the detached metadata (`.commitmeta`, `a{sv}`): with
//!   `gpg-verify` (default true) `ostree.gpgsigs` must hold a valid signature from a trusted
//!   key; with `sign-verify` `ostree.sign.ed25519` must too; with both, **both** must (as
//!   libostree). One valid signature suffices; otherwise the error is that of the last
//!   signature, describing all of them (`ostree_gpg_verify_result_require_valid_signature`).
//!
//! Expired and revoked keys: libostree counts a signature only when gpgme's summary has VALID or
//! GREEN, or is 0 with no error. A good signature from a key that has expired *now* is gpg's
//! EXPKEYSIG, even if it was made before the expiry: not valid, and libostree describes it as
//! `BAD signature from "…"` followed by `Key expired DATE` (checked with `ostree show` and
//! `ostree pull-local --remote --gpg-verify` on 2022.7) — [`SignError::ExpiredKey`] here, unless
//! the keyring holds a newer self-signature extending the expiry (an updated key re-imported),
//! as with gpg. A revoked key (REVKEYSIG) and an expired signature (EXPSIG) are likewise not
//! valid ([`SignError::RevokedKey`], [`SignError::ExpiredSignature`]). A key whose signing
//! subkey binding does not verify is treated as absent, as gpg does.
//!
//! OpenPGP is rPGP (`pgp` crate: MIT/Apache, pure Rust; it reads gpg 2.2 armored exports and
//! binary keyrings once the keyring's trust packets are dropped, which [`Keyring`] does —
//! without that rPGP loses the user IDs). Sequoia was not taken: LGPL-2.0+, and its default
//! backend is the C library nettle, the pure-Rust one being marked experimental and
//! variable-time. ed25519 is `ed25519-dalek` (`verify_strict`, which like libsodium's
//! `crypto_sign_verify_detached` rejects non-canonical and small-order inputs).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]
#![deny(missing_docs)]

mod config;
pub mod ed25519;
mod error;
pub mod gpg;
mod keyfile;

use ostree_format::MetaDict;
use ostree_format::gvariant::{self, Type};

pub use config::{KeySource, RemoteConfig, SignVerify, SystemPaths};
pub use ed25519::{
    Ed25519Verifier, add_ed25519_signature, ed25519_public_key, ed25519_secret_key_bytes,
    sign_ed25519,
};
pub use error::{SignError, SignReason};
pub use gpg::{GpgSignature, GpgStatus, Keyring};

/// libostree's `OSTREE_MAX_METADATA_SIZE` (10 MiB), for the commit and its detached metadata.
pub const MAX_METADATA_SIZE: usize = 10 * 1024 * 1024;

/// The detached-metadata key of OpenPGP signatures.
pub const GPGSIGS_KEY: &str = "ostree.gpgsigs";

/// What verified the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Every OpenPGP signature's outcome (at least one [`GpgStatus::Valid`]) when GPG
    /// verification was on; empty otherwise.
    pub gpg: Vec<GpgSignature>,
    /// The trusted ed25519 public key whose signature verified, when `sign-verify` was on.
    pub ed25519_key: Option<[u8; 32]>,
}

impl Verified {
    /// The first valid OpenPGP signature.
    pub fn gpg_valid(&self) -> Option<&GpgSignature> {
        self.gpg.iter().find(|s| s.status == GpgStatus::Valid)
    }

    /// libostree-style text: `GPG: Signature made … Good signature from …` and/or
    /// `ed25519: Signature verified successfully with key '…'`.
    pub fn describe(&self) -> String {
        let mut lines: Vec<String> = self
            .gpg
            .iter()
            .map(|s| {
                gpg::describe(s)
                    .lines()
                    .map(|l| format!("GPG: {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        if let Some(k) = &self.ed25519_key {
            lines.push(format!(
                "ed25519: Signature verified successfully with key '{}'",
                hex::encode(k)
            ));
        }
        lines.join("\n")
    }
}

/// Parses detached metadata (`a{sv}`), with GLib's tolerance of non-normal framing.
pub fn parse_commitmeta(bytes: &[u8]) -> Result<MetaDict, SignError> {
    if bytes.len() > MAX_METADATA_SIZE {
        return Err(SignError::malformed(
            "detached metadata",
            format!(
                "Commit metadata is {} bytes, exceeding maximum {MAX_METADATA_SIZE}",
                bytes.len()
            ),
        ));
    }
    let ty = Type::parse("a{sv}")
        .map_err(|e| SignError::malformed("detached metadata", e.to_string()))?;
    let v = gvariant::from_bytes(&ty, bytes)
        .map_err(|e| SignError::malformed("detached metadata", e.to_string()))?;
    MetaDict::from_value(&v).map_err(|e| SignError::malformed("detached metadata", e.to_string()))
}

/// Verifies a commit object's bytes against its detached metadata with the remote's
/// configuration (libostree's `ostree_repo_signature_verify_commit_data` with both GPG and
/// signapi enabled). Call it before writing anything.
pub fn verify_commit(
    config: &RemoteConfig,
    commit_bytes: &[u8],
    commitmeta_bytes: Option<&[u8]>,
) -> Result<Verified, SignError> {
    if commit_bytes.len() > MAX_METADATA_SIZE {
        return Err(SignError::malformed(
            "commit",
            format!(
                "Commit is {} bytes, exceeding maximum {MAX_METADATA_SIZE}",
                commit_bytes.len()
            ),
        ));
    }
    let Some(meta_bytes) = commitmeta_bytes else {
        return Err(SignError::NoDetachedMetadata);
    };
    let meta = parse_commitmeta(meta_bytes)?;
    if !config.gpg_verify && config.ed25519.is_none() {
        return Err(SignError::VerificationDisabled {
            remote: config.name.clone(),
        });
    }
    let mut verified = Verified {
        gpg: Vec::new(),
        ed25519_key: None,
    };
    if config.gpg_verify {
        let sigs = ed25519::lookup_aay(&meta, GPGSIGS_KEY)?;
        let packets: Vec<u8> = sigs.unwrap_or_default().concat();
        if packets.is_empty() {
            return Err(SignError::NoSignatures {
                sign_type: "gpg",
                message: "GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)".into(),
            });
        }
        let keys: Vec<_> = config
            .gpg_keys
            .iter()
            .flat_map(|s| s.keyring.keys.iter())
            .collect();
        verified.gpg = gpg::verify(&keys, commit_bytes, &packets)?;
    }
    if let Some(v) = &config.ed25519 {
        let Some(sigs) = ed25519::lookup_aay(&meta, ed25519::METADATA_KEY)? else {
            return Err(SignError::NoSignatures {
                sign_type: ed25519::NAME,
                message: "Can't verify commit: No signatures found".into(),
            });
        };
        let key = v.verify(commit_bytes, &sigs).map_err(|e| match e {
            SignError::NoKeys { message, .. } => SignError::NoKeys {
                remote: config.name.clone(),
                message,
            },
            e => e,
        })?;
        verified.ed25519_key = Some(key);
    }
    Ok(verified)
}
