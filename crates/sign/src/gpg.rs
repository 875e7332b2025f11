//! OpenPGP verification of `ostree.gpgsigs`, through rPGP, with libostree's (gpgme's) rules:
//! a signature counts only if it is good, from a trusted key that is neither expired nor
//! revoked, and not itself expired; success needs one such signature; otherwise the error is
//! that of the **last** signature (as `ostree_gpg_verify_result_require_valid_signature`),
//! with a description of all of them.

use std::io::BufReader;
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{Packet, PacketParser, PacketTrait, Signature, SignatureType};
use pgp::types::{Fingerprint, KeyDetails, KeyId};

use crate::error::SignError;

/// A set of trusted OpenPGP certificates (public keys with their user IDs and subkeys).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// The certificates that parsed.
    pub keys: Vec<SignedPublicKey>,
}

/// Parses OpenPGP packets leniently (as gpg reading a keyring): trust packets (which gpg's
/// `pubring.gpg` and `ostree remote add --gpg-import`'s keyring interleave after keys, user IDs
/// and signatures), markers and unknown or unparsable packets are dropped; parsing stops at
/// the first framing error.
fn packets(data: &[u8]) -> Vec<Packet> {
    let mut out = Vec::new();
    for p in PacketParser::new(BufReader::new(data)) {
        match p {
            Ok(Packet::Trust(_)) | Ok(Packet::Marker(_)) | Ok(Packet::Padding(_)) => {}
            Ok(p) => out.push(p),
            Err(_) => break,
        }
    }
    out
}

impl Keyring {
    /// A binary keyring (`<remote>.trustedkeys.gpg`, `trusted.gpg.d/*.gpg`); whatever does not
    /// parse is skipped, as gpg skips it when libostree concatenates keyrings into one
    /// `pubring.gpg`.
    pub fn parse_binary(data: &[u8]) -> Keyring {
        let pk = packets(data);
        let keys = SignedPublicKey::from_packets(
            pk.into_iter().map(Ok::<_, pgp::errors::Error>).peekable(),
        )
        .filter_map(Result::ok)
        .collect();
        Keyring { keys }
    }

    /// A key file as `gpgkeypath` names it (imported with `gpgme_op_import`): ASCII-armored
    /// (one or more blocks) or binary.
    pub fn parse_key_file(data: &[u8]) -> Result<Keyring, String> {
        let is_armored = data
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .is_some_and(|i| data[i..].starts_with(b"-----BEGIN PGP"));
        if !is_armored {
            return Ok(Keyring::parse_binary(data));
        }
        let mut keys = Vec::new();
        let text = String::from_utf8_lossy(data);
        let mut rest: &str = &text;
        while let Some(start) = rest.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            let block = &rest[start..];
            let end_marker = "-----END PGP PUBLIC KEY BLOCK-----";
            let Some(end) = block.find(end_marker) else {
                return Err("unterminated armored key block".into());
            };
            let block_text = &block[..end + end_marker.len()];
            let mut dearmor = pgp::armor::Dearmor::new(BufReader::new(block_text.as_bytes()));
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut dearmor, &mut raw).map_err(|e| e.to_string())?;
            keys.extend(Keyring::parse_binary(&raw).keys);
            rest = &block[end + end_marker.len()..];
        }
        if keys.is_empty() {
            return Err("no public keys found".into());
        }
        Ok(Keyring { keys })
    }
}

/// One OpenPGP signature's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpgSignature {
    /// The fingerprint of the key (or subkey) that made it, upper-case hex; for a missing key
    /// the issuer fingerprint if the signature names one, else the issuer key ID.
    pub fingerprint: String,
    /// The last 16 hex digits: the key ID gpg prints.
    pub key_id: String,
    /// The primary key's fingerprint (differs from `fingerprint` for a subkey signature).
    pub primary_fingerprint: Option<String>,
    /// The primary user ID, `Name <email>`, when the key is known.
    pub user_id: Option<String>,
    /// Signature creation time (seconds since the epoch).
    pub created: Option<u32>,
    /// gpg's name of the algorithm (`RSA`, `EdDSA`, …).
    pub algorithm: String,
    /// When the signing key expires (expired), if it has an expiration time.
    pub key_expires: Option<u64>,
    /// The verdict.
    pub status: GpgStatus,
}

/// What gpg would report for one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpgStatus {
    /// Good, and counts (gpgme summary VALID/GREEN or 0 with no error).
    Valid,
    /// The key is not in any trusted keyring.
    MissingKey,
    /// The signature does not verify.
    Bad,
    /// Good, but the key has expired.
    KeyExpired,
    /// Good, but the key is revoked.
    KeyRevoked,
    /// Good, but the signature has expired.
    SigExpired,
}

fn algo_name(a: PublicKeyAlgorithm) -> String {
    match a {
        PublicKeyAlgorithm::RSA | PublicKeyAlgorithm::RSASign | PublicKeyAlgorithm::RSAEncrypt => {
            "RSA".into()
        }
        PublicKeyAlgorithm::DSA => "DSA".into(),
        PublicKeyAlgorithm::ECDSA => "ECDSA".into(),
        PublicKeyAlgorithm::EdDSALegacy | PublicKeyAlgorithm::Ed25519 => "EdDSA".into(),
        other => format!("{other:?}"),
    }
}

fn fpr_hex(f: &Fingerprint) -> String {
    hex::encode_upper(f.as_bytes())
}

fn keyid_hex(k: &KeyId) -> String {
    hex::encode_upper(k.as_ref())
}

fn tail16(s: &str) -> String {
    s.get(s.len().saturating_sub(16)..).unwrap_or(s).to_string()
}

fn primary_user_id(key: &SignedPublicKey) -> Option<String> {
    let users = &key.details.users;
    let u = users
        .iter()
        .find(|u| u.signatures.iter().any(Signature::is_primary))
        .or_else(|| users.first())?;
    Some(String::from_utf8_lossy(u.id.id()).into_owned())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// When the key (created at `created`) expires according to the newest of `self_sigs` (the
/// self-signatures that carry its validity period; a re-imported key with an extended
/// expiration carries a newer one, and then counts as not expired, as with gpg).
fn expiry<'a>(created: u32, self_sigs: impl Iterator<Item = &'a Signature>) -> Option<u64> {
    let newest = self_sigs
        .filter(|s| s.created().is_some())
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0));
    match newest.and_then(Signature::key_expiration_time) {
        Some(d) if d.as_secs() > 0 => Some(u64::from(created) + u64::from(d.as_secs())),
        _ => None,
    }
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn issued_by(sig: &Signature, fpr: &Fingerprint, kid: &KeyId) -> bool {
    let f = sig.issuer_fingerprint();
    let k = sig.issuer_key_id();
    if f.is_empty() && k.is_empty() {
        return true;
    }
    f.contains(&fpr) || k.contains(&kid)
}

/// Checks one signature against the trusted keys.
fn check_one(keys: &[&SignedPublicKey], sig: &Signature, data: &[u8], now: u64) -> GpgSignature {
    let issuer_fprs: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| fpr_hex(f))
        .collect();
    let issuer_kids: Vec<String> = sig.issuer_key_id().iter().map(|k| keyid_hex(k)).collect();
    let created = sig.created().map(|t| t.as_secs());
    let sig_algo = sig
        .config()
        .map(|c| algo_name(c.pub_alg))
        .unwrap_or_else(|| "unknown".into());
    let matches = |fpr: &Fingerprint, kid: &KeyId| {
        let (f, k) = (fpr_hex(fpr), keyid_hex(kid));
        issuer_fprs.contains(&f) || issuer_kids.contains(&k)
    };
    let sig_expired = match (created, sig.signature_expiration_time()) {
        (Some(c), Some(d)) if d.as_secs() > 0 => u64::from(c) + u64::from(d.as_secs()) <= now,
        _ => false,
    };
    for key in keys {
        let pfpr = key.primary_key.fingerprint();
        let pkid = key.primary_key.legacy_key_id();
        let user_id = primary_user_id(key);
        let primary_self_sigs = || {
            key.details
                .users
                .iter()
                .flat_map(|u| u.signatures.iter())
                .chain(key.details.direct_signatures.iter())
                .filter(|s| issued_by(s, &pfpr, &pkid))
        };
        let primary_revoked = key
            .details
            .revocation_signatures
            .iter()
            .any(|s| issued_by(s, &pfpr, &pkid) && s.verify_key(&key.primary_key).is_ok());
        let primary_expires = expiry(key.primary_key.created_at().as_secs(), primary_self_sigs());
        let outcome = |fpr: &Fingerprint,
                       algo: PublicKeyAlgorithm,
                       good: bool,
                       revoked: bool,
                       key_expires: Option<u64>| {
            let key_expired = key_expires.is_some_and(|t| t <= now);
            let status = if !good {
                GpgStatus::Bad
            } else if revoked {
                GpgStatus::KeyRevoked
            } else if key_expired {
                GpgStatus::KeyExpired
            } else if sig_expired {
                GpgStatus::SigExpired
            } else {
                GpgStatus::Valid
            };
            let f = fpr_hex(fpr);
            GpgSignature {
                key_id: tail16(&f),
                fingerprint: f,
                primary_fingerprint: Some(fpr_hex(&pfpr)),
                user_id: user_id.clone(),
                created,
                algorithm: algo_name(algo),
                key_expires,
                status,
            }
        };
        if matches(&pfpr, &pkid) {
            let good = sig.verify(&key.primary_key, data).is_ok();
            return outcome(
                &pfpr,
                key.primary_key.algorithm(),
                good,
                primary_revoked,
                primary_expires,
            );
        }
        for sub in &key.public_subkeys {
            let sfpr = sub.key.fingerprint();
            let skid = sub.key.legacy_key_id();
            if !matches(&sfpr, &skid) {
                continue;
            }
            // gpg ignores a subkey whose binding signature does not verify.
            if sub.verify_bindings(&key.primary_key).is_err() {
                continue;
            }
            let good = sig.verify(&sub.key, data).is_ok();
            let bindings = sub
                .signatures
                .iter()
                .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding));
            let sub_revoked = sub.signatures.iter().any(|s| {
                s.typ() == Some(SignatureType::SubkeyRevocation)
                    && s.verify_subkey_binding(&key.primary_key, &sub.key).is_ok()
            });
            let sub_expires = expiry(sub.key.created_at().as_secs(), bindings);
            return outcome(
                &sfpr,
                sub.key.algorithm(),
                good,
                primary_revoked || sub_revoked,
                earliest(primary_expires, sub_expires),
            );
        }
    }
    let f = issuer_fprs
        .first()
        .or(issuer_kids.first())
        .cloned()
        .unwrap_or_else(|| "0000000000000000".into());
    GpgSignature {
        key_id: tail16(&f),
        fingerprint: f,
        primary_fingerprint: None,
        user_id: None,
        created,
        algorithm: sig_algo,
        key_expires: None,
        status: GpgStatus::MissingKey,
    }
}

/// `2026-12-01 22:13:34 UTC` from seconds since the epoch (gpg prints local time; we print UTC).
pub(crate) fn format_time(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil-from-days (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// libostree's `ostree_gpg_verify_result_describe_variant`, abridged.
pub fn describe(s: &GpgSignature) -> String {
    let when = s
        .created
        .map(|t| format_time(u64::from(t)))
        .unwrap_or_else(|| "(no date)".into());
    let uid = s.user_id.as_deref().unwrap_or("");
    let verdict = match s.status {
        GpgStatus::MissingKey => "Can't check signature: public key not found".to_string(),
        GpgStatus::Valid => format!("Good signature from \"{uid}\""),
        GpgStatus::KeyRevoked => "Key revoked".to_string(),
        // libostree prints gpgme's invalid-but-not-revoked verdict as BAD, then the expiry.
        GpgStatus::KeyExpired => format!("BAD signature from \"{uid}\""),
        GpgStatus::SigExpired => format!("Expired signature from \"{uid}\""),
        GpgStatus::Bad => format!("BAD signature from \"{uid}\""),
    };
    let mut out = format!(
        "Signature made {when} using {} key ID {}\n{verdict}",
        s.algorithm, s.key_id
    );
    if let Some(p) = &s.primary_fingerprint
        && *p != s.fingerprint
        && s.status != GpgStatus::MissingKey
    {
        out.push_str(&format!("\nPrimary key ID {}", tail16(p)));
    }
    if let Some(t) = s.key_expires {
        let verb = if s.status == GpgStatus::KeyExpired {
            "expired"
        } else {
            "expires"
        };
        out.push_str(&format!("\nKey {verb} {}", format_time(t)));
    }
    out
}

/// Verifies the concatenated `ostree.gpgsigs` packets over `data` with `keys`.
pub(crate) fn verify(
    keys: &[&SignedPublicKey],
    data: &[u8],
    signature_packets: &[u8],
) -> Result<Vec<GpgSignature>, SignError> {
    let mut sigs = Vec::new();
    let mut parser = PacketParser::new(BufReader::new(signature_packets));
    loop {
        match parser.next() {
            None => break,
            Some(Ok(Packet::Signature(s))) => sigs.push(s),
            Some(Ok(Packet::Marker(_)))
            | Some(Ok(Packet::Padding(_)))
            | Some(Ok(Packet::Trust(_))) => {}
            Some(Ok(other)) => {
                return Err(SignError::malformed(
                    "OpenPGP signature",
                    format!(
                        "GPG: Unable to complete signature verification: unexpected {:?} packet",
                        other.tag()
                    ),
                ));
            }
            Some(Err(e)) => {
                return Err(SignError::malformed(
                    "OpenPGP signature",
                    format!("GPG: Unable to complete signature verification: {e}"),
                ));
            }
        }
    }
    if sigs.is_empty() {
        return Err(SignError::NoSignatures {
            sign_type: "gpg",
            message: "No GPG signatures found".into(),
        });
    }
    let now = now_secs();
    let results: Vec<GpgSignature> = sigs
        .iter()
        .filter(|s| {
            s.typ()
                .is_none_or(|t| t == SignatureType::Binary || t == SignatureType::Text)
        })
        .map(|s| check_one(keys, s, data, now))
        .collect();
    if results.iter().any(|r| r.status == GpgStatus::Valid) {
        return Ok(results);
    }
    let Some(last) = results.last() else {
        return Err(SignError::NoSignatures {
            sign_type: "gpg",
            message: "No GPG signatures found (only non-document signatures)".into(),
        });
    };
    let description = results
        .iter()
        .rev()
        .map(describe)
        .collect::<Vec<_>>()
        .join("\n");
    let key_id = last.key_id.clone();
    let user_id = last.user_id.clone().unwrap_or_default();
    Err(match last.status {
        GpgStatus::MissingKey => SignError::UntrustedKey {
            key_id,
            description,
        },
        GpgStatus::KeyRevoked => SignError::RevokedKey {
            key_id,
            user_id,
            description,
        },
        GpgStatus::KeyExpired => SignError::ExpiredKey {
            key_id,
            user_id,
            description,
        },
        GpgStatus::SigExpired => SignError::ExpiredSignature {
            key_id,
            user_id,
            description,
        },
        GpgStatus::Bad | GpgStatus::Valid => SignError::BadSignature {
            key_id,
            user_id,
            description,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_796_163_214), "2026-12-01 22:13:34 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn garbage_never_panics() {
        assert!(verify(&[], b"x", b"").is_err());
        assert!(verify(&[], b"x", &[0x89, 0xff, 0xff]).is_err());
        assert!(Keyring::parse_binary(&[0x99, 0, 1, 4]).keys.is_empty());
        assert!(Keyring::parse_key_file(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nzz\n").is_err());
    }
}
