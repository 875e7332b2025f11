//! ed25519 (`ostree.sign.ed25519`, `aay` of raw 64-byte signatures over the commit object's
//! bytes), compatible with libostree's `ostree-sign-ed25519.c`:
//! * public keys are base64 of the 32-byte key: `verification-ed25519-key=` holds **one** key
//!   (libostree base64-decodes the whole value); `verification-ed25519-file=` and the system
//!   `trusted.ed25519` files hold one key per line (an empty line ends the file with an error,
//!   lines that do not decode to 32 bytes are skipped; the file needs one good key);
//! * secret keys (`ostree sign --sign-type=ed25519 COMMIT KEY`, `--keys-file`) are base64 of
//!   the 64-byte libsodium secret key, seed followed by the public key.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ostree_format::MetaDict;
use ostree_format::gvariant::{Type, Value};

use crate::config::regular_files;
use crate::error::SignError;

/// The sign type name (`sign-verify=ed25519`, `--sign-type=ed25519`).
pub const NAME: &str = "ed25519";
/// The detached-metadata key.
pub const METADATA_KEY: &str = "ostree.sign.ed25519";
/// Signature length.
pub const SIGNATURE_LEN: usize = 64;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 decoding as GLib's `g_base64_decode`: characters outside the alphabet are skipped,
/// `=` counts as a zero digit and removes one output byte for each of the last quartet's
/// trailing `=`, and an incomplete final quartet is dropped.
pub fn base64_decode_glib(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut n = 0;
    let mut pad_in_quartet = 0usize;
    for &c in text.as_bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad_in_quartet += 1;
                0
            }
            _ => continue,
        };
        if c != b'=' {
            pad_in_quartet = 0;
        }
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            let drop = pad_in_quartet.min(2);
            out.truncate(out.len() - drop);
            acc = 0;
            n = 0;
            pad_in_quartet = 0;
        }
    }
    out
}

/// Signs `data` (the commit object's bytes) with an ed25519 secret key: the 32-byte seed, or the
/// 64-byte libsodium form (seed ‖ public key) that `ostree sign` takes, whose public half must
/// match the seed.
pub fn sign_ed25519(secret: &[u8], data: &[u8]) -> Result<[u8; SIGNATURE_LEN], SignError> {
    let key = signing_key(secret)?;
    Ok(key.sign(data).to_bytes())
}

/// The public key of a 32- or 64-byte secret key.
pub fn ed25519_public_key(secret: &[u8]) -> Result<[u8; 32], SignError> {
    Ok(signing_key(secret)?.verifying_key().to_bytes())
}

/// The 64-byte secret key (seed ‖ public key) of a 32-byte seed, as `ostree sign` takes it.
pub fn ed25519_secret_key_bytes(seed: &[u8; 32]) -> [u8; 64] {
    SigningKey::from_bytes(seed).to_keypair_bytes()
}

fn signing_key(secret: &[u8]) -> Result<SigningKey, SignError> {
    match secret.len() {
        32 => {
            let mut seed = [0u8; 32];
            seed.copy_from_slice(secret);
            Ok(SigningKey::from_bytes(&seed))
        }
        64 => {
            let mut kp = [0u8; 64];
            kp.copy_from_slice(secret);
            SigningKey::from_keypair_bytes(&kp).map_err(|_| {
                SignError::malformed(
                    "ed25519 secret key",
                    "the public half does not match the seed",
                )
            })
        }
        n => Err(SignError::malformed(
            "ed25519 secret key",
            format!("Ill-formed input: expected 64 bytes, got {n} bytes"),
        )),
    }
}

/// Parses a secret-key file as `ostree sign --keys-file` reads it: base64 of 64 bytes per line.
pub fn parse_secret_key_file(text: &str) -> Result<Vec<[u8; 64]>, SignError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let raw = base64_decode_glib(line);
        if let Ok(k) = <[u8; 64]>::try_from(raw.as_slice()) {
            signing_key(&k)?;
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(SignError::malformed(
            "ed25519 secret key file",
            "no valid keys",
        ));
    }
    Ok(out)
}

/// Appends `signature` to the `ostree.sign.ed25519` array of the detached metadata
/// `commitmeta` (an `a{sv}`; `None` for a commit with none), keeping every other entry, as
/// `ostree sign` does; returns the new serialised `a{sv}`.
pub fn add_ed25519_signature(
    commitmeta: Option<&[u8]>,
    signature: &[u8; SIGNATURE_LEN],
) -> Result<Vec<u8>, SignError> {
    let mut dict = match commitmeta {
        Some(bytes) => crate::parse_commitmeta(bytes)?,
        None => MetaDict::default(),
    };
    let aay = Type::Array(Box::new(Type::Byte));
    let mut sigs: Vec<Value> = Vec::new();
    if let Some(pos) = dict.0.iter().position(|(k, _)| k == METADATA_KEY) {
        let (_, old) = dict.0.remove(pos);
        match old {
            Value::Array(t, elems) if t == aay => sigs = elems,
            other => {
                return Err(SignError::malformed(
                    "detached metadata",
                    format!("{METADATA_KEY} has type {} instead of aay", other.type_()),
                ));
            }
        }
    }
    sigs.push(Value::Bytes(signature.to_vec()));
    dict.push(METADATA_KEY, Value::Array(aay, sigs));
    Ok(dict.to_bytes())
}

/// The ed25519 verifier of a remote: trusted and revoked public keys.
#[derive(Debug, Clone, Default)]
pub struct Ed25519Verifier {
    /// Trusted public keys.
    pub keys: Vec<[u8; 32]>,
    /// Revoked keys (only from the system `revoked.ed25519[.d]`, as libostree).
    pub revoked: Vec<[u8; 32]>,
    /// Why no key could be loaded, for `sign-verify=true` with nothing configured: libostree
    /// reports it when a signature is to be checked.
    pub load_error: Option<String>,
}

/// Reads a public-key file (libostree's base64 blob reader). `Err` if it is not a regular
/// file, has an empty line, or holds no valid key.
fn load_pk_file(path: &Path) -> Result<Vec<[u8; 32]>, String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "File object '{}' is not a regular file",
            path.display()
        ));
    }
    let data = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_public_key_lines(&String::from_utf8_lossy(&data))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the public-key file format: base64 of a 32-byte key per line.
pub fn parse_public_key_lines(text: &str) -> Result<Vec<[u8; 32]>, String> {
    let mut keys = Vec::new();
    let mut first_error = None;
    let mut rest = text;
    while !rest.is_empty() {
        // g_data_input_stream_read_line: "\n", "\r\n" or "\r" end a line.
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[end..];
        if rest.starts_with("\r\n") {
            rest = &rest[2..];
        } else if !rest.is_empty() {
            rest = &rest[1..];
        }
        if line.is_empty() {
            return Err("Invalid base64 blob format".into());
        }
        let raw = base64_decode_glib(line);
        match <[u8; 32]>::try_from(raw.as_slice()) {
            Ok(k) => {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            Err(_) => {
                first_error.get_or_insert_with(|| {
                    format!(
                        "Invalid ed25519 public key: Ill-formed input: expected 32 bytes, got {} bytes",
                        raw.len()
                    )
                });
            }
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "ed25519: unable to read from NULL key-data input stream: {}",
            first_error.unwrap_or_else(|| "no keys".into())
        ));
    }
    Ok(keys)
}

fn system_key_files(dirs: &[PathBuf], stem: &str) -> Result<Vec<PathBuf>, SignError> {
    let mut files = Vec::new();
    for d in dirs {
        files.push(d.join(stem));
        files.extend(regular_files(&d.join(format!("{stem}.d")))?.unwrap_or_default());
    }
    Ok(files)
}

impl Ed25519Verifier {
    /// `_signapi_load_public_keys` and the fallback of `ostree_sign_ed25519_data_verify`.
    pub(crate) fn from_config(
        remote: &str,
        file: Option<&str>,
        inline: Option<&str>,
        required: bool,
        system_dirs: &[PathBuf],
    ) -> Result<Self, SignError> {
        let mut v = Ed25519Verifier::default();
        if file.is_none() && inline.is_none() {
            if required {
                return Err(SignError::NoKeys {
                    remote: remote.to_string(),
                    message: format!("No keys found for required signapi type {NAME}"),
                });
            }
            // No keys configured: the system's trusted (and revoked) key files.
            for f in system_key_files(system_dirs, "trusted.ed25519")? {
                if let Ok(keys) = load_pk_file(&f) {
                    for k in keys {
                        if !v.keys.contains(&k) {
                            v.keys.push(k);
                        }
                    }
                }
            }
            for f in system_key_files(system_dirs, "revoked.ed25519")? {
                if let Ok(keys) = load_pk_file(&f) {
                    v.revoked.extend(keys);
                }
            }
            if v.keys.is_empty() {
                v.load_error = Some("signature: ed25519: no keys loaded".into());
            }
            return Ok(v);
        }
        if let Some(f) = file {
            v.keys = load_pk_file(Path::new(f)).map_err(|e| SignError::NoKeys {
                remote: remote.to_string(),
                message: format!("Failed loading '{NAME}' keys from '{f}': {e}"),
            })?;
        }
        if let Some(text) = inline {
            let raw = base64_decode_glib(text);
            let key = <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| SignError::NoKeys {
                remote: remote.to_string(),
                message: format!(
                    "Failed loading '{NAME}' keys from inline `verification-key`: Invalid ed25519 public key: Ill-formed input: expected 32 bytes, got {} bytes",
                    raw.len()
                ),
            })?;
            if !v.keys.contains(&key) {
                v.keys.push(key);
            }
        }
        Ok(v)
    }

    /// Verifies the `aay` of signatures: the first signature that verifies with a trusted,
    /// unrevoked key wins; returns that key.
    pub(crate) fn verify(
        &self,
        data: &[u8],
        signatures: &[Vec<u8>],
    ) -> Result<[u8; 32], SignError> {
        if let Some(e) = &self.load_error {
            return Err(SignError::NoKeys {
                remote: String::new(),
                message: e.clone(),
            });
        }
        let mut invalid: Vec<String> = Vec::new();
        for sig in signatures {
            let Ok(sig_bytes) = <[u8; SIGNATURE_LEN]>::try_from(sig.as_slice()) else {
                return Err(SignError::malformed(
                    "ed25519 signature",
                    format!(
                        "Invalid signature: Ill-formed input: expected {SIGNATURE_LEN} bytes, got {} bytes",
                        sig.len()
                    ),
                ));
            };
            let signature = Signature::from_bytes(&sig_bytes);
            for key in &self.keys {
                if self.revoked.contains(key) {
                    continue;
                }
                let ok = VerifyingKey::from_bytes(key)
                    .map(|vk| vk.verify_strict(data, &signature).is_ok())
                    .unwrap_or(false);
                if ok {
                    return Ok(*key);
                }
                invalid.push(hex::encode(key));
            }
        }
        if invalid.is_empty() {
            return Err(SignError::NoSignatures {
                sign_type: NAME,
                message: "ed25519: no signatures found".into(),
            });
        }
        let message = if invalid.len() > 3 {
            format!(
                "Can't verify commit: ed25519: Signature couldn't be verified; tried {} keys",
                invalid.len()
            )
        } else {
            format!(
                "Can't verify commit: ed25519: Signature couldn't be verified with: {}",
                invalid
                    .iter()
                    .map(|k| format!("key '{k}'"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        Err(SignError::Ed25519NotVerified {
            tried_keys: invalid,
            message,
        })
    }
}

/// Decodes `aay` entry `key` of a metadata dict: `Ok(None)` if absent.
pub(crate) fn lookup_aay(dict: &MetaDict, key: &str) -> Result<Option<Vec<Vec<u8>>>, SignError> {
    let Some(v) = dict.get(key) else {
        return Ok(None);
    };
    match v {
        Value::Array(t, elems) if *t == Type::Array(Box::new(Type::Byte)) => {
            let mut out = Vec::with_capacity(elems.len());
            for e in elems {
                match e {
                    Value::Bytes(b) => out.push(b.clone()),
                    _ => {
                        return Err(SignError::malformed(
                            "detached metadata",
                            format!("{key}: not aay"),
                        ));
                    }
                }
            }
            Ok(Some(out))
        }
        other => Err(SignError::malformed(
            "detached metadata",
            format!("{key} has type {} instead of aay", other.type_()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_glib_leniency() {
        for n in 0..70 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let enc = base64_encode(&data);
            assert_eq!(base64_decode_glib(&enc), data, "{enc}");
            let spaced: String = enc.chars().flat_map(|c| [c, ' ']).collect();
            assert_eq!(base64_decode_glib(&spaced), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn sign_and_verify() {
        let seed = [7u8; 32];
        let sk = ed25519_secret_key_bytes(&seed);
        let pk = ed25519_public_key(&sk).unwrap();
        let sig = sign_ed25519(&sk, b"data").unwrap();
        assert_eq!(sig, sign_ed25519(&seed, b"data").unwrap());
        let v = Ed25519Verifier {
            keys: vec![pk],
            ..Default::default()
        };
        assert_eq!(v.verify(b"data", &[sig.to_vec()]).unwrap(), pk);
        let mut bad = sig;
        bad[10] ^= 1;
        assert_eq!(
            v.verify(b"data", &[bad.to_vec()]).unwrap_err().reason(),
            crate::SignReason::Ed25519NotVerified
        );
        let mut wrong = sk;
        wrong[40] ^= 1;
        assert!(sign_ed25519(&wrong, b"x").is_err());
    }
}
