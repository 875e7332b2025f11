//! Our own fetch configuration, mapped onto the proxy crate's `ImageProxyConfig`.
//!
//! Keeping our own type lets us validate up front (conflicting auth, options the installed
//! skopeo lacks) with typed errors instead of a proxy that silently ignores an option.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use containers_image_proxy::ImageProxyConfig;

pub use crate::skopeo::{SkopeoCommand, default_authfile_candidates, find_default_authfile};

/// Default for [`FetchConfig::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach the image: credentials, TLS, the skopeo binary, timeouts, parallelism.
#[derive(Debug)]
#[non_exhaustive]
pub struct FetchConfig {
    /// Credentials file (`--authfile`). Conflicts with `auth_data` and `auth_anonymous`.
    pub authfile: Option<PathBuf>,
    /// Credentials passed as an open file (copied to an anonymous temp file for skopeo).
    pub auth_data: Option<File>,
    /// Use no credentials at all (`--no-creds`).
    pub auth_anonymous: bool,
    /// Directory with `*.crt`, `*.cert`, `*.key` for the registry (`--cert-dir`).
    pub certificate_directory: Option<PathBuf>,
    /// Skip TLS verification and allow plain HTTP (`--tls-verify=false`).
    pub insecure_skip_tls_verification: bool,
    /// Pass `--insecure-policy` (skip containers-policy.json; only enforced by skopeo ≥ 1.13).
    pub insecure_policy: bool,
    /// The containers-policy.json skopeo applies (its global `--policy`), instead of
    /// `~/.config/containers/policy.json` or `/etc/containers/policy.json`. Setting it runs
    /// skopeo through [`FetchConfig::skopeo_command`] with that flag added.
    pub signature_policy: Option<PathBuf>,
    /// The registries.d directory skopeo reads (its global `--registries.d`): where simple
    /// signatures are looked up (`lookaside`) and whether sigstore attachments are used
    /// (`use-sigstore-attachments`), instead of `/etc/containers/registries.d` and
    /// `~/.config/containers/registries.d`. Setting it runs skopeo through
    /// [`FetchConfig::skopeo_command`] with that flag added.
    pub registries_d: Option<PathBuf>,
    /// Keys to decrypt encrypted images (`--decryption-key`, needs a newer skopeo than 1.9).
    pub decryption_keys: Vec<String>,
    /// Prefix for the HTTP user agent (`--user-agent-prefix`, needs a newer skopeo).
    pub user_agent_prefix: Option<String>,
    /// Run this instead of `skopeo` (bound to our lifetime by a parent-death signal too; for a
    /// wrapper such as `systemd-run`, that binds the wrapper).
    pub skopeo: Option<SkopeoCommand>,
    /// Pass `--debug` and let skopeo log to our stderr.
    pub debug: bool,
    /// Fail when no byte arrives for this long on any transfer or request.
    pub stall_timeout: Duration,
    /// How many layers are fetched and decompressed at the same time.
    pub layer_concurrency: NonZeroUsize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            authfile: None,
            auth_data: None,
            auth_anonymous: false,
            certificate_directory: None,
            insecure_skip_tls_verification: false,
            insecure_policy: false,
            signature_policy: None,
            registries_d: None,
            decryption_keys: Vec::new(),
            user_agent_prefix: None,
            skopeo: None,
            debug: false,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            layer_concurrency: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// The configuration cannot be turned into a proxy invocation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// More than one of `authfile`, `auth_data`, `auth_anonymous`.
    #[error("Conflicting authentication options: only one of authfile, auth data and anonymous")]
    ConflictingAuth,
    /// The installed skopeo does not know a flag we were asked to pass.
    #[error("option {option} needs a newer skopeo than {program} (its image proxy lacks it)")]
    NeedsNewerSkopeo {
        /// The flag, e.g. `--decryption-key`.
        option: &'static str,
        /// The program that was probed.
        program: PathBuf,
    },
    /// Running `<skopeo> … --help` to probe capabilities failed.
    #[error("cannot run {program} to probe its options")]
    Probe {
        /// The program that was run.
        program: PathBuf,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
}

/// Help text of the proxy subcommand plus the global help, cached per command line.
fn probe_help(cmd: &SkopeoCommand) -> Result<String, ConfigError> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<OsString>, String>>> = OnceLock::new();
    let key: Vec<OsString> = std::iter::once(cmd.program.clone().into_os_string())
        .chain(cmd.args.iter().cloned())
        .collect();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(h) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(h);
    }
    let mut text = String::new();
    for extra in [&["experimental-image-proxy", "--help"][..], &["--help"][..]] {
        let out = cmd
            .command()
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|source| ConfigError::Probe {
                program: cmd.program.clone(),
                source,
            })?;
        text.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    if let Ok(mut c) = cache.lock() {
        c.insert(key, text.clone());
    }
    Ok(text)
}

impl FetchConfig {
    /// A copy for another attempt (a retried pull): auth data is shared through a duplicated
    /// descriptor, rewound so that it is read again from its start.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        use std::io::Seek;
        let auth_data = match &self.auth_data {
            Some(f) => {
                let mut f = f.try_clone()?;
                f.rewind()?;
                Some(f)
            }
            None => None,
        };
        Ok(FetchConfig {
            authfile: self.authfile.clone(),
            auth_data,
            auth_anonymous: self.auth_anonymous,
            certificate_directory: self.certificate_directory.clone(),
            insecure_skip_tls_verification: self.insecure_skip_tls_verification,
            insecure_policy: self.insecure_policy,
            signature_policy: self.signature_policy.clone(),
            registries_d: self.registries_d.clone(),
            decryption_keys: self.decryption_keys.clone(),
            user_agent_prefix: self.user_agent_prefix.clone(),
            skopeo: self.skopeo.clone(),
            debug: self.debug,
            stall_timeout: self.stall_timeout,
            layer_concurrency: self.layer_concurrency,
        })
    }

    /// The skopeo command line that will be used.
    pub fn skopeo_command(&self) -> SkopeoCommand {
        let mut c = self
            .skopeo
            .clone()
            .unwrap_or_else(|| SkopeoCommand::new("skopeo"));
        if let Some(p) = &self.signature_policy {
            c.args.push("--policy".into());
            c.args.push(p.clone().into_os_string());
        }
        if let Some(d) = &self.registries_d {
            c.args.push("--registries.d".into());
            c.args.push(d.clone().into_os_string());
        }
        c
    }

    /// Build the proxy crate's configuration, probing skopeo only for options that need it.
    pub fn into_proxy_config(self) -> Result<ImageProxyConfig, ConfigError> {
        self.into_proxy_config_with(find_default_authfile, probe_help)
    }

    /// [`Self::into_proxy_config`] with injectable auth lookup and skopeo probe (for tests).
    pub(crate) fn into_proxy_config_with(
        mut self,
        default_authfile: impl FnOnce() -> Option<PathBuf>,
        probe: impl Fn(&SkopeoCommand) -> Result<String, ConfigError>,
    ) -> Result<ImageProxyConfig, ConfigError> {
        let n_auth = [
            self.authfile.is_some(),
            self.auth_data.is_some(),
            self.auth_anonymous,
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if n_auth > 1 {
            return Err(ConfigError::ConflictingAuth);
        }
        let skopeo = self.skopeo_command();
        let needs_probe = !self.decryption_keys.is_empty() || self.user_agent_prefix.is_some();
        if needs_probe {
            let help = probe(&skopeo)?;
            let wanted = [
                ("--decryption-key", !self.decryption_keys.is_empty()),
                ("--user-agent-prefix", self.user_agent_prefix.is_some()),
            ];
            for (option, used) in wanted {
                if used && !help.contains(option) {
                    return Err(ConfigError::NeedsNewerSkopeo {
                        option,
                        program: skopeo.program.clone(),
                    });
                }
            }
        }
        let mut c = ImageProxyConfig::default();
        if n_auth == 0 {
            match default_authfile() {
                Some(p) => c.authfile = Some(p),
                // Without this skopeo would fall back to the containers auth paths.
                None => c.auth_anonymous = true,
            }
        } else {
            c.authfile = self.authfile.clone();
            c.auth_data = self.auth_data.take();
            c.auth_anonymous = self.auth_anonymous;
        }
        c.certificate_directory = self.certificate_directory.clone();
        c.insecure_skip_tls_verification = Some(self.insecure_skip_tls_verification);
        c.insecure_policy = Some(self.insecure_policy);
        if !self.decryption_keys.is_empty() {
            c.decryption_keys = Some(self.decryption_keys.clone());
        }
        c.user_agent_prefix = self.user_agent_prefix.clone();
        c.debug = self.debug;
        // Only a custom command replaces the crate's default; both bind skopeo to our lifetime
        // with a parent-death signal.
        c.skopeo_cmd = (self.skopeo.is_some()
            || self.signature_policy.is_some()
            || self.registries_d.is_some())
        .then(|| skopeo.command());
        Ok(c)
    }
}

#[cfg(test)]
// Field assignment is how callers outside the crate must fill a non_exhaustive struct.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use std::path::Path;

    fn no_probe(_: &SkopeoCommand) -> Result<String, ConfigError> {
        panic!("probe must not run")
    }

    #[test]
    fn defaults_are_anonymous_without_authfile() {
        let cfg = FetchConfig::default();
        assert_eq!(cfg.stall_timeout, DEFAULT_STALL_TIMEOUT);
        assert!(cfg.layer_concurrency.get() >= 1);
        let c = cfg.into_proxy_config_with(|| None, no_probe).unwrap();
        assert!(c.auth_anonymous);
        assert!(c.authfile.is_none());
        assert!(c.skopeo_cmd.is_none());
        assert_eq!(c.insecure_skip_tls_verification, Some(false));
    }

    #[test]
    fn default_authfile_is_used() {
        let cfg = FetchConfig::default();
        let c = cfg
            .into_proxy_config_with(|| Some("/etc/ostree/auth.json".into()), no_probe)
            .unwrap();
        assert!(!c.auth_anonymous);
        assert_eq!(
            c.authfile.as_deref(),
            Some(Path::new("/etc/ostree/auth.json"))
        );
    }

    #[test]
    fn explicit_options_map() {
        let mut cfg = FetchConfig::default();
        cfg.authfile = Some("/a.json".into());
        cfg.certificate_directory = Some("/certs".into());
        cfg.insecure_skip_tls_verification = true;
        cfg.debug = true;
        cfg.skopeo = Some(SkopeoCommand {
            program: "/opt/skopeo".into(),
            args: vec!["--foo".into()],
        });
        let c = cfg
            .into_proxy_config_with(|| panic!("no lookup with explicit auth"), no_probe)
            .unwrap();
        assert_eq!(c.authfile.as_deref(), Some(Path::new("/a.json")));
        assert!(!c.auth_anonymous);
        assert_eq!(
            c.certificate_directory.as_deref(),
            Some(Path::new("/certs"))
        );
        assert_eq!(c.insecure_skip_tls_verification, Some(true));
        assert!(c.debug);
        let cmd = c.skopeo_cmd.unwrap();
        assert_eq!(cmd.get_program(), "/opt/skopeo");
        assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["--foo"]);
    }

    #[test]
    fn policy_and_registries_d_are_global_skopeo_flags() {
        let mut cfg = FetchConfig::default();
        cfg.registries_d = Some("/r.d".into());
        let c = cfg.into_proxy_config_with(|| None, no_probe).unwrap();
        let cmd = c.skopeo_cmd.unwrap();
        assert_eq!(cmd.get_program(), "skopeo");
        assert_eq!(
            cmd.get_args().collect::<Vec<_>>(),
            ["--registries.d", "/r.d"]
        );
        let mut cfg = FetchConfig::default();
        cfg.signature_policy = Some("/p.json".into());
        cfg.registries_d = Some("/r.d".into());
        cfg.skopeo = Some(SkopeoCommand::new("/opt/skopeo"));
        let cmd = cfg.skopeo_command();
        assert_eq!(cmd.program, Path::new("/opt/skopeo"));
        assert_eq!(cmd.args, ["--policy", "/p.json", "--registries.d", "/r.d"]);
    }

    #[test]
    fn conflicting_auth() {
        let mut cfg = FetchConfig::default();
        cfg.authfile = Some("/a.json".into());
        cfg.auth_anonymous = true;
        let e = cfg.into_proxy_config_with(|| None, no_probe).unwrap_err();
        assert!(matches!(e, ConfigError::ConflictingAuth), "{e}");
    }

    #[test]
    fn options_needing_newer_skopeo() {
        let old = |_: &SkopeoCommand| Ok("--authfile string\n--cert-dir PATH\n".to_string());
        let mut cfg = FetchConfig::default();
        cfg.decryption_keys = vec!["/k.pem".into()];
        let e = cfg.into_proxy_config_with(|| None, old).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::NeedsNewerSkopeo {
                    option: "--decryption-key",
                    ..
                }
            ),
            "{e}"
        );
        let mut cfg = FetchConfig::default();
        cfg.user_agent_prefix = Some("bootc/1".into());
        let e = cfg.into_proxy_config_with(|| None, old).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::NeedsNewerSkopeo {
                    option: "--user-agent-prefix",
                    ..
                }
            ),
            "{e}"
        );
        let new = |_: &SkopeoCommand| Ok("--decryption-key --user-agent-prefix".to_string());
        let mut cfg = FetchConfig::default();
        cfg.user_agent_prefix = Some("bootc/1".into());
        let c = cfg.into_proxy_config_with(|| None, new).unwrap();
        assert_eq!(c.user_agent_prefix.as_deref(), Some("bootc/1"));
    }
}
