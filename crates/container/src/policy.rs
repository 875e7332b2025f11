//! The containers signature policy that skopeo will enforce for `ostree-image-signed:` images,
//! and the refusal of a policy that accepts anything (container-image-format §1.2).
//!
//! skopeo (containers/image) reads `$HOME/.config/containers/policy.json` if it exists, else
//! `/etc/containers/policy.json`, unless `--policy` names a file. We check exactly the file it
//! will use: checking any other (an environment variable skopeo does not read, say) could pass
//! a strict policy here while skopeo applies an accept-anything one.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::imgref::{ImageReference, Transport};

/// The system-wide policy file.
pub const SYSTEM_POLICY: &str = "/etc/containers/policy.json";
/// The per-user policy file, relative to `$HOME`.
pub const USER_POLICY: &str = ".config/containers/policy.json";

/// Why a policy cannot be used to require signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No policy file exists where skopeo looks.
    #[error("no containers signature policy found (looked at {looked:?})")]
    Missing {
        /// The paths tried, in order.
        looked: Vec<PathBuf>,
    },
    /// The file cannot be read.
    #[error("reading containers signature policy {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a policy.
    #[error("containers signature policy {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `--insecure-policy` was requested: skopeo would then apply no policy at all.
    #[error(
        "the insecure-policy option disables the containers signature policy that ostree-image-signed: relies on"
    )]
    Disabled,
    /// The requirements that apply to the image accept anything.
    #[error(
        "containers signature policy {path} accepts any image for {scope} (insecureAcceptAnything); refusing to treat the image as signed. Configure signedBy or sigstoreSigned requirements for it, or use ostree-unverified-image: explicitly"
    )]
    AcceptsAnything {
        /// The file.
        path: PathBuf,
        /// Which part of the policy applies: `default` or `transports.<t>.<scope>`.
        scope: String,
    },
}

/// The file skopeo will read: `explicit` (its `--policy`), else the per-user file under `home`
/// if it exists, else the system file.
pub fn effective_policy_path(
    explicit: Option<&Path>,
    home: Option<&Path>,
) -> Result<PathBuf, PolicyError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut looked = Vec::new();
    if let Some(h) = home {
        let user = h.join(USER_POLICY);
        if user.exists() {
            return Ok(user);
        }
        looked.push(user);
    }
    let system = PathBuf::from(SYSTEM_POLICY);
    if system.exists() {
        return Ok(system);
    }
    looked.push(system);
    Err(PolicyError::Missing { looked })
}

/// Checks that the policy skopeo will apply to `imgref` requires more than nothing.
/// `explicit` is the `--policy` skopeo is given, if any; `$HOME` locates the per-user file.
pub fn check_policy_requires_signatures(
    imgref: &ImageReference,
    explicit: Option<&Path>,
) -> Result<PathBuf, PolicyError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = effective_policy_path(explicit, home.as_deref())?;
    let text = std::fs::read(&path).map_err(|source| PolicyError::Read {
        path: path.clone(),
        source,
    })?;
    check_policy_bytes(&path, &text, imgref)?;
    Ok(path)
}

/// The policy's name for a transport (`transports` keys in policy.json).
fn policy_transport(t: Transport) -> &'static str {
    match t {
        Transport::Registry => "docker",
        Transport::OciDir => "oci",
        Transport::OciArchive => "oci-archive",
        Transport::DockerArchive => "docker-archive",
        Transport::ContainerStorage => "containers-storage",
        Transport::Dir => "dir",
        Transport::DockerDaemon => "docker-daemon",
    }
}

/// Scopes of `imgref` from most to least specific, as containers/image matches them: for
/// registries the full reference, the repository, each parent namespace, the host; for
/// path-based transports the path and each parent directory. The transport-wide `""` is last.
fn candidate_scopes(imgref: &ImageReference) -> Vec<String> {
    let mut out = Vec::new();
    let name = imgref.name.as_str();
    match imgref.transport {
        Transport::Registry => {
            let name = name.trim_start_matches("//");
            out.push(name.to_string());
            let repo = match name.split_once('@') {
                Some((r, _)) => r,
                None => match name.rfind(':') {
                    Some(i) if !name[i..].contains('/') => &name[..i],
                    _ => name,
                },
            };
            let mut cur = repo;
            loop {
                if !out.iter().any(|s| s == cur) {
                    out.push(cur.to_string());
                }
                match cur.rfind('/') {
                    Some(i) => cur = &cur[..i],
                    None => break,
                }
            }
        }
        Transport::OciDir | Transport::OciArchive | Transport::DockerArchive | Transport::Dir => {
            let path = name.split(':').next().unwrap_or(name);
            out.push(name.to_string());
            let mut cur = path;
            loop {
                if !out.iter().any(|s| s == cur) {
                    out.push(cur.to_string());
                }
                match cur.rfind('/') {
                    Some(0) | None => break,
                    Some(i) => cur = &cur[..i],
                }
            }
            out.push("/".into());
        }
        Transport::ContainerStorage | Transport::DockerDaemon => out.push(name.to_string()),
    }
    out.push(String::new());
    out
}

/// Whether a requirement list accepts anything: every entry is `insecureAcceptAnything` (the
/// entries of a list must all be satisfied, so one real requirement makes it strict).
fn accepts_anything(reqs: &Value, path: &Path, at: &str) -> Result<bool, PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let list = reqs
        .as_array()
        .ok_or_else(|| invalid(format!("{at} is not a list of requirements")))?;
    if list.is_empty() {
        return Err(invalid(format!("{at} is an empty list of requirements")));
    }
    let mut all_insecure = true;
    for r in list {
        let ty = r
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{at}: a requirement has no type")))?;
        all_insecure &= ty == "insecureAcceptAnything";
    }
    Ok(all_insecure)
}

/// [`check_policy_requires_signatures`] over the bytes of the policy at `path`.
pub fn check_policy_bytes(
    path: &Path,
    bytes: &[u8],
    imgref: &ImageReference,
) -> Result<(), PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let transport = policy_transport(imgref.transport);
    // The most specific scope of the image's transport decides; without one, `default`.
    if let Some(scopes) = v
        .get("transports")
        .and_then(|t| t.get(transport))
        .and_then(Value::as_object)
    {
        for scope in candidate_scopes(imgref) {
            if let Some(reqs) = scopes.get(&scope) {
                let at = format!("transports.{transport}.{scope:?}");
                if accepts_anything(reqs, path, &at)? {
                    return Err(PolicyError::AcceptsAnything {
                        path: path.to_path_buf(),
                        scope: at,
                    });
                }
                return Ok(());
            }
        }
    }
    let default = v
        .get("default")
        .ok_or_else(|| invalid("Default policy is missing".into()))?;
    if accepts_anything(default, path, "default")? {
        return Err(PolicyError::AcceptsAnything {
            path: path.to_path_buf(),
            scope: "default".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &str, img: &str) -> Result<(), PolicyError> {
        let r: ImageReference = img.parse().unwrap();
        check_policy_bytes(Path::new("/p.json"), policy.as_bytes(), &r)
    }

    const INSECURE: &str = r#"{"default": [{"type": "insecureAcceptAnything"}]}"#;
    const REJECT: &str = r#"{"default": [{"type": "reject"}]}"#;

    #[test]
    fn default_accept_anything_is_refused() {
        let e = check(INSECURE, "docker://quay.io/x/y:1").unwrap_err();
        assert!(matches!(e, PolicyError::AcceptsAnything { ref scope, .. } if scope == "default"));
        assert!(check(REJECT, "docker://quay.io/x/y:1").is_ok());
        // A real requirement next to insecureAcceptAnything still has to be satisfied.
        let both = r#"{"default": [{"type": "insecureAcceptAnything"},
            {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"}]}"#;
        assert!(check(both, "oci:/a/b:t").is_ok());
    }

    #[test]
    fn the_most_specific_scope_decides() {
        let p = r#"{"default": [{"type": "reject"}], "transports": {"docker": {
            "quay.io/x": [{"type": "insecureAcceptAnything"}],
            "quay.io/x/signed": [{"type": "sigstoreSigned", "keyPath": "/k"}],
            "": [{"type": "reject"}]}}}"#;
        assert!(check(p, "docker://quay.io/x/signed:latest").is_ok());
        assert!(matches!(
            check(p, "docker://quay.io/x/other:latest").unwrap_err(),
            PolicyError::AcceptsAnything { ref scope, .. } if scope.contains("quay.io/x")
        ));
        assert!(check(p, "docker://example.com/z:1").is_ok());
        let oci = r#"{"default": [{"type": "reject"}], "transports": {"oci": {
            "": [{"type": "insecureAcceptAnything"}]}}}"#;
        assert!(check(oci, "oci:/srv/img:latest").is_err());
        assert!(check(oci, "docker://quay.io/x:1").is_ok());
        let oci_dir = r#"{"default": [{"type": "insecureAcceptAnything"}], "transports": {"oci": {
            "/srv": [{"type": "reject"}]}}}"#;
        assert!(check(oci_dir, "oci:/srv/img:latest").is_ok());
        assert!(check(oci_dir, "oci:/other/img:latest").is_err());
    }

    #[test]
    fn malformed_policies_are_errors() {
        for p in [
            "not json",
            "{}",
            r#"{"default": []}"#,
            r#"{"default": [{}]}"#,
        ] {
            assert!(
                matches!(check(p, "oci:/a").unwrap_err(), PolicyError::Invalid { .. }),
                "{p}"
            );
        }
    }

    #[test]
    fn lookup_order_is_skopeos() {
        let d = tempfile::tempdir().unwrap();
        let explicit = d.path().join("explicit.json");
        assert_eq!(
            effective_policy_path(Some(&explicit), Some(d.path())).unwrap(),
            explicit
        );
        let user = d.path().join(USER_POLICY);
        std::fs::create_dir_all(user.parent().unwrap()).unwrap();
        std::fs::write(&user, REJECT).unwrap();
        assert_eq!(effective_policy_path(None, Some(d.path())).unwrap(), user);
        let empty = tempfile::tempdir().unwrap();
        match effective_policy_path(None, Some(empty.path())) {
            Ok(p) => assert_eq!(p, Path::new(SYSTEM_POLICY)),
            Err(PolicyError::Missing { looked }) => assert_eq!(looked.len(), 2),
            Err(e) => panic!("{e}"),
        }
    }
}
