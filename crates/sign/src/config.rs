//! A remote's verification configuration, read as libostree reads it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::ed25519::{self, Ed25519Verifier};
use crate::error::SignError;
use crate::gpg::{self, Keyring};
use crate::keyfile::KeyFile;

/// Where the system-wide configuration lives. [`SystemPaths::default`] is what libostree uses
/// on a Debian or Fedora system; tests point every field at a scratch directory.
#[derive(Debug, Clone)]
pub struct SystemPaths {
    /// The system remotes directory whose `*.conf` files define remotes (and where a
    /// `<NAME>.trustedkeys.gpg` is also looked for). libostree reads it for the system repository
    /// (`/ostree/repo`, or a repository opened through a sysroot) or when it is configured;
    /// `None` reads only the repository's `config`. Default `/etc/ostree/remotes.d`.
    pub remotes_d: Option<PathBuf>,
    /// The global keyring directory whose `*.gpg` files (not `trustdb.gpg`, `secring.gpg`) are
    /// trusted when the remote has no keyring of its own. libostree reads exactly one:
    /// `$OSTREE_GPG_HOME` or `DATADIR/ostree/trusted.gpg.d` (`/usr/share/ostree/trusted.gpg.d`);
    /// it does **not** read `/etc/ostree/trusted.gpg.d`. A list so callers may add more.
    pub gpg_global_keyring_dirs: Vec<PathBuf>,
    /// Where ed25519 keys are looked for when `sign-verify` is on but the remote names none:
    /// `DIR/trusted.ed25519`, `DIR/trusted.ed25519.d/*` (and `revoked.ed25519[.d]`) for each.
    /// Default `/etc/ostree`, `/usr/share/ostree`, as libostree.
    pub ed25519_key_dirs: Vec<PathBuf>,
}

impl Default for SystemPaths {
    fn default() -> Self {
        let gpg_home = std::env::var_os("OSTREE_GPG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/ostree/trusted.gpg.d"));
        SystemPaths {
            remotes_d: Some(PathBuf::from("/etc/ostree/remotes.d")),
            gpg_global_keyring_dirs: vec![gpg_home],
            ed25519_key_dirs: vec![
                PathBuf::from("/etc/ostree"),
                PathBuf::from("/usr/share/ostree"),
            ],
        }
    }
}

impl SystemPaths {
    /// No system configuration at all (the repository's own files only).
    pub fn none() -> Self {
        SystemPaths {
            remotes_d: None,
            gpg_global_keyring_dirs: Vec::new(),
            ed25519_key_dirs: Vec::new(),
        }
    }
}

/// The signature types `sign-verify` may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignVerify {
    /// `sign-verify=true`: every type that has keys (here ed25519); keys are optional and come
    /// from the system directories when the remote names none.
    All,
    /// `sign-verify=ed25519[;…]`: each listed type must have keys configured.
    Types(Vec<String>),
}

/// Where one set of trusted OpenPGP keys came from, and the keys.
#[derive(Debug, Clone)]
pub struct KeySource {
    /// The file it was read from.
    pub path: PathBuf,
    /// The keys.
    pub keyring: Keyring,
}

/// A remote's verification configuration: everything [`crate::verify_commit`] needs, read up
/// front (keyrings and key files included), so verification does no I/O.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// The remote's name.
    pub name: String,
    /// The file that defines it (the repository's `config` or a `remotes.d/*.conf`), if any.
    pub defined_in: Option<PathBuf>,
    /// `gpg-verify` (default true; false for `file://` pseudo-remotes, as libostree).
    pub gpg_verify: bool,
    /// Trusted OpenPGP keys, in libostree's order: the per-remote keyring
    /// `<repo>/<NAME>.trustedkeys.gpg` (else `remotes.d/<NAME>.trustedkeys.gpg`), every
    /// `gpgkeypath` entry, and the global keyring directory only when there is no per-remote
    /// keyring.
    pub gpg_keys: Vec<KeySource>,
    /// `sign-verify`, if set and not false.
    pub sign_verify: Option<SignVerify>,
    /// The ed25519 verifier, when `sign-verify` enables it.
    pub ed25519: Option<Ed25519Verifier>,
}

fn remote_group(name: &str) -> String {
    format!("remote \"{name}\"")
}

fn read_keyfile(path: &Path) -> Result<Option<KeyFile>, SignError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SignError::io(path, e)),
    };
    let text = String::from_utf8(text).map_err(|_| SignError::Config {
        path: path.to_path_buf(),
        message: "not valid UTF-8".into(),
    })?;
    KeyFile::parse(&text)
        .map(Some)
        .map_err(|message| SignError::Config {
            path: path.to_path_buf(),
            message,
        })
}

/// Regular files of a directory, sorted by name (libostree takes readdir order; sorting makes
/// the result reproducible and the set is the same). `None` if it does not exist.
pub(crate) fn regular_files(dir: &Path) -> Result<Option<Vec<PathBuf>>, SignError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SignError::io(dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| SignError::io(dir, e))?;
        let ft = ent.file_type().map_err(|e| SignError::io(ent.path(), e))?;
        if ft.is_file() {
            out.push(ent.path());
        }
    }
    out.sort();
    Ok(Some(out))
}

impl RemoteConfig {
    /// Reads remote `name`'s configuration for the repository at `repo`: `[remote "NAME"]` in
    /// `repo/config` or in one `*.conf` of `paths.remotes_d` (defined twice → an error, as
    /// libostree's "Multiple specifications found for remote"), then its keys.
    pub fn load(repo: &Path, name: &str, paths: &SystemPaths) -> Result<RemoteConfig, SignError> {
        let group = remote_group(name);
        let mut found: Option<(PathBuf, KeyFile)> = None;
        let mut candidates = vec![repo.join("config")];
        if let Some(dir) = &paths.remotes_d
            && let Some(files) = regular_files(dir)?
        {
            candidates.extend(
                files
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "conf")),
            );
        }
        for path in candidates {
            let Some(kf) = read_keyfile(&path)? else {
                continue;
            };
            if kf.groups().any(|g| g == group) {
                if let Some((first, _)) = &found {
                    return Err(SignError::Config {
                        path,
                        message: format!(
                            "Multiple specifications found for remote \"{name}\" (also in {})",
                            first.display()
                        ),
                    });
                }
                found = Some((path, kf));
            }
        }
        let Some((defined_in, kf)) = found else {
            if name.starts_with("file://") {
                return Ok(RemoteConfig {
                    name: name.to_string(),
                    defined_in: None,
                    gpg_verify: false,
                    gpg_keys: Vec::new(),
                    sign_verify: None,
                    ed25519: None,
                });
            }
            return Err(SignError::UnknownRemote {
                name: name.to_string(),
            });
        };
        Self::from_keyfile(repo, name, &defined_in, &kf, paths)
    }

    fn from_keyfile(
        repo: &Path,
        name: &str,
        defined_in: &Path,
        kf: &KeyFile,
        paths: &SystemPaths,
    ) -> Result<RemoteConfig, SignError> {
        let group = remote_group(name);
        let cfg_err = |message: String| SignError::Config {
            path: defined_in.to_path_buf(),
            message: format!("[{group}]: {message}"),
        };
        let gpg_verify = if name.starts_with("file://") {
            false
        } else {
            kf.boolean(&group, "gpg-verify")
                .map_err(cfg_err)?
                .unwrap_or(true)
        };

        // Keys, in libostree's order (_ostree_repo_gpg_prepare_verifier).
        let mut gpg_keys = Vec::new();
        let keyring_name = format!("{name}.trustedkeys.gpg");
        let mut keyring_paths = vec![repo.join(&keyring_name)];
        if let Some(d) = &paths.remotes_d {
            keyring_paths.push(d.join(&keyring_name));
        }
        let mut have_remote_keyring = false;
        for p in keyring_paths {
            match fs::read(&p) {
                Ok(data) => {
                    gpg_keys.push(KeySource {
                        keyring: gpg::Keyring::parse_binary(&data),
                        path: p,
                    });
                    have_remote_keyring = true;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(SignError::io(&p, e)),
            }
        }
        if let Some(raw) = kf.raw(&group, "gpgkeypath") {
            // ot_keyfile_get_string_list_with_separator_choice(";,"): one separator kind only.
            let has_semi = raw.contains(';');
            let has_comma = raw.contains(',');
            let entries = match (has_semi, has_comma) {
                (true, true) => {
                    return Err(cfg_err(
                        "gpgkeypath: key value list contains more than one separator".into(),
                    ));
                }
                (true, false) => kf
                    .list(&group, "gpgkeypath", ';')
                    .map_err(cfg_err)?
                    .unwrap_or_default(),
                (false, true) => kf
                    .list(&group, "gpgkeypath", ',')
                    .map_err(cfg_err)?
                    .unwrap_or_default(),
                (false, false) => vec![raw.to_string()],
            };
            for entry in entries {
                let path = PathBuf::from(&entry);
                let files = match fs::metadata(&path) {
                    Ok(m) if m.is_dir() => regular_files(&path)?.unwrap_or_default(),
                    Ok(_) => vec![path],
                    Err(e) => return Err(SignError::io(&path, e)),
                };
                for f in files {
                    let data = fs::read(&f).map_err(|e| SignError::io(&f, e))?;
                    let keyring = gpg::Keyring::parse_key_file(&data).map_err(|message| {
                        SignError::Config {
                            path: f.clone(),
                            message: format!("GPG: Failed to import key: {message}"),
                        }
                    })?;
                    gpg_keys.push(KeySource { path: f, keyring });
                }
            }
        }
        if !have_remote_keyring {
            for dir in &paths.gpg_global_keyring_dirs {
                for f in regular_files(dir)?.unwrap_or_default() {
                    let Some(fname) = f.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    if !fname.ends_with(".gpg") || fname == "trustdb.gpg" || fname == "secring.gpg"
                    {
                        continue;
                    }
                    let data = fs::read(&f).map_err(|e| SignError::io(&f, e))?;
                    gpg_keys.push(KeySource {
                        keyring: gpg::Keyring::parse_binary(&data),
                        path: f,
                    });
                }
            }
        }

        // sign-verify (verifiers_from_config).
        let sign_verify = match kf.raw(&group, "sign-verify") {
            None | Some("") => None,
            Some(v) => match v.trim_end() {
                "true" | "1" => Some(SignVerify::All),
                "false" | "0" => None,
                _ => {
                    let types = kf
                        .list(&group, "sign-verify", ';')
                        .map_err(cfg_err)?
                        .unwrap_or_default();
                    for t in &types {
                        if t != ed25519::NAME {
                            return Err(SignError::UnsupportedSignType {
                                remote: name.to_string(),
                                name: t.clone(),
                            });
                        }
                    }
                    if types.is_empty() {
                        None
                    } else {
                        Some(SignVerify::Types(types))
                    }
                }
            },
        };
        let ed25519 = match &sign_verify {
            None => None,
            Some(sv) => {
                let required = matches!(sv, SignVerify::Types(_));
                let file = kf
                    .string(&group, "verification-ed25519-file")
                    .map_err(cfg_err)?;
                let inline = kf
                    .string(&group, "verification-ed25519-key")
                    .map_err(cfg_err)?;
                Some(Ed25519Verifier::from_config(
                    name,
                    file.as_deref(),
                    inline.as_deref(),
                    required,
                    &paths.ed25519_key_dirs,
                )?)
            }
        };
        Ok(RemoteConfig {
            name: name.to_string(),
            defined_in: Some(defined_in.to_path_buf()),
            gpg_verify,
            gpg_keys,
            sign_verify,
            ed25519,
        })
    }
}
