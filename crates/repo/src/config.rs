//! The repository `config` file (a GKeyFile) and the options we honour or refuse
//! (ostree-repo-format §2).

use std::fmt;
use std::str::FromStr;

use crate::error::{RepoError, Result};

/// How a repository stores content objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoMode {
    /// Files as themselves, with real ownership and xattrs (needs root to write).
    Bare,
    /// Files as themselves, ownership/mode/xattrs in the `user.ostreemeta` xattr.
    BareUser,
    /// Files as themselves, canonical (root-owned, no xattrs) content only.
    BareUserOnly,
    /// Compressed `.filez` objects, for serving over HTTP.
    Archive,
}

impl RepoMode {
    /// The name written to `core.mode`.
    pub fn as_config_str(self) -> &'static str {
        match self {
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
            RepoMode::BareUserOnly => "bare-user-only",
            RepoMode::Archive => "archive-z2",
        }
    }

    /// The user-facing name (`archive` rather than `archive-z2`).
    pub fn name(self) -> &'static str {
        match self {
            RepoMode::Archive => "archive",
            m => m.as_config_str(),
        }
    }

    /// Extension of content objects: `file` or `filez`.
    pub fn content_extension(self) -> &'static str {
        match self {
            RepoMode::Archive => "filez",
            _ => "file",
        }
    }
}

impl fmt::Display for RepoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RepoMode {
    type Err = RepoError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "bare" => RepoMode::Bare,
            "bare-user" => RepoMode::BareUser,
            "bare-user-only" => RepoMode::BareUserOnly,
            "archive" | "archive-z2" => RepoMode::Archive,
            "bare-split-xattrs" => {
                return Err(RepoError::UnsupportedConfig {
                    key: "core.mode".into(),
                    value: s.into(),
                    reason: "bare-split-xattrs repositories cannot be written by libostree 2022.7 either",
                });
            }
            _ => {
                return Err(RepoError::InvalidConfig(format!(
                    "unknown repository mode {s:?}"
                )));
            }
        })
    }
}

/// A parsed GKeyFile: ordered sections of ordered key/value pairs.
#[derive(Debug, Clone, Default)]
pub struct KeyFile {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl KeyFile {
    /// Parses GKeyFile text (comments `#`, `[section]`, `key=value`).
    pub fn parse(text: &str) -> Result<Self> {
        let mut kf = KeyFile::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                kf.sections.push((name.to_string(), Vec::new()));
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| {
                RepoError::InvalidConfig(format!("line {}: expected key=value: {raw:?}", n + 1))
            })?;
            let section = kf.sections.last_mut().ok_or_else(|| {
                RepoError::InvalidConfig(format!("line {}: key outside any section", n + 1))
            })?;
            section.1.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(kf)
    }

    /// The value of `key` in `section` (last occurrence wins, as in GKeyFile).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(s, _)| s == section)
            .flat_map(|(_, kv)| kv.iter())
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every (section, key, value).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.sections.iter().flat_map(|(s, kv)| {
            kv.iter()
                .map(move |(k, v)| (s.as_str(), k.as_str(), v.as_str()))
        })
    }
}

/// The free-space reserve below which writes are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinFreeSpace {
    /// Percent of the filesystem's blocks.
    Percent(u32),
    /// Absolute bytes.
    Bytes(u64),
}

impl fmt::Display for MinFreeSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinFreeSpace::Percent(p) => write!(f, "min-free-space-percent={p}%"),
            MinFreeSpace::Bytes(b) => write!(f, "min-free-space-size={b} bytes"),
        }
    }
}

/// What we use from `config`.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// Storage mode.
    pub mode: RepoMode,
    /// `core.fsync` (default true).
    pub fsync: bool,
    /// `core.disable-xattrs`.
    pub disable_xattrs: bool,
    /// `core.locking` (default true).
    pub locking: bool,
    /// `core.lock-timeout-secs` (default 30; -1 waits forever).
    pub lock_timeout_secs: i64,
    /// `core.tmp-expiry-secs` (default one day).
    pub tmp_expiry_secs: u64,
    /// Free-space reserve.
    pub min_free_space: MinFreeSpace,
    /// `archive.zlib-level`, clamped to 1..=9.
    pub zlib_level: u32,
    /// `ex-integrity.composefs` when it requires composefs (`yes`, `true` or `1`): libostree then
    /// adds a composefs digest (`ostree.composefs.digest.v0`) to the commits it writes, which we do
    /// not compute, so [`RepoConfig::check_new_commit`] refuses to write new commits. `maybe`
    /// (use composefs if libostree was built with it) is accepted: we behave as a libostree
    /// built without composefs, which writes plain commits there too.
    ///
    /// Implementing it would take: the composefs image of the commit's tree (a canonical EROFS
    /// image as libcomposefs writes it from the dirtree, with each regular file's fs-verity
    /// digest as its `trusted.overlay.metacopy`/redirect data), its fs-verity digest stored under
    /// `ostree.composefs.digest.v0` in the commit metadata, and fs-verity enabled on the objects
    /// (`ex-integrity.fsverity`).
    pub composefs_required: Option<String>,
    /// The parsed file.
    pub keyfile: KeyFile,
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(RepoError::InvalidConfig(format!(
            "{key}: expected a boolean, got {v:?}"
        ))),
    }
}

fn parse_int<T: FromStr>(key: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| RepoError::InvalidConfig(format!("{key}: expected an integer, got {v:?}")))
}

/// Parses libostree's `min-free-space-size` syntax: digits then `MB`, `GB` or `TB` (binary units,
/// as libostree shifts by 20/30/40 bits).
pub fn parse_size(v: &str) -> Option<u64> {
    let (num, shift) = if let Some(n) = v.strip_suffix("MB") {
        (n, 20)
    } else if let Some(n) = v.strip_suffix("GB") {
        (n, 30)
    } else if let Some(n) = v.strip_suffix("TB") {
        (n, 40)
    } else {
        return None;
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// libostree's tri-state config values (`_ostree_parse_tristate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tristate {
    No,
    Maybe,
    Yes,
}

fn parse_tristate(key: &str, v: &str) -> Result<Tristate> {
    match v {
        "yes" | "true" | "1" => Ok(Tristate::Yes),
        "no" | "false" | "0" => Ok(Tristate::No),
        "maybe" => Ok(Tristate::Maybe),
        _ => Err(RepoError::InvalidConfig(format!(
            "{key}: expected yes, no or maybe, got {v:?}"
        ))),
    }
}

impl RepoConfig {
    /// Refuses to write a new commit (one we build: `commit`, derived layers, merge commits,
    /// synthetic chunk commits) where libostree would add what we do not implement. Commits
    /// imported as they are (a pulled image's own commit) are not new and pass.
    pub fn check_new_commit(&self) -> Result<()> {
        match &self.composefs_required {
            Some(v) => Err(RepoError::UnsupportedConfig {
                key: "ex-integrity.composefs".into(),
                value: v.clone(),
                reason: "libostree adds a composefs digest to every commit it writes in such a \
                         repository; composefs is not implemented, so new commits are refused",
            }),
            None => Ok(()),
        }
    }

    /// Parses and checks a config, refusing features we do not implement.
    pub fn parse(text: &str) -> Result<Self> {
        let kf = KeyFile::parse(text)?;
        match kf.get("core", "repo_version") {
            Some("1") => {}
            Some(v) => {
                return Err(RepoError::UnsupportedConfig {
                    key: "core.repo_version".into(),
                    value: v.into(),
                    reason: "only repository version 1 exists",
                });
            }
            None => return Err(RepoError::InvalidConfig("missing core.repo_version".into())),
        }
        if let Some(v) = kf.get("core", "archive")
            && parse_bool("core.archive", v)?
        {
            return Err(RepoError::UnsupportedConfig {
                key: "core.archive".into(),
                value: v.into(),
                reason: "the legacy archive flag is not supported; use core.mode",
            });
        }
        let mode = kf.get("core", "mode").unwrap_or("bare").parse()?;
        let refuse = |key: &str, value: &str, reason: &'static str| {
            Err(RepoError::UnsupportedConfig {
                key: key.into(),
                value: value.into(),
                reason,
            })
        };
        for (section, key, value) in kf.entries() {
            let full = format!("{section}.{key}");
            match full.as_str() {
                "core.parent" => {
                    return refuse(&full, value, "parent repositories are not implemented");
                }
                "core.auto-update-summary" if parse_bool(&full, value)? => {
                    return refuse(&full, value, "summary generation is not implemented");
                }
                "core.per-object-fsync" if parse_bool(&full, value)? => {
                    return refuse(&full, value, "per-object fsync is not implemented");
                }
                "ex-fsverity.required" if parse_bool(&full, value)? => {
                    return refuse(&full, value, "fs-verity is not implemented");
                }
                "ex-fsverity.opportunistic" if parse_bool(&full, value)? => {
                    return refuse(&full, value, "fs-verity is not implemented");
                }
                "ex-integrity.fsverity" if parse_tristate(&full, value)? != Tristate::No => {
                    return refuse(&full, value, "fs-verity is not implemented");
                }
                "ex-integrity.composefs" => {
                    parse_tristate(&full, value)?;
                }
                "core.tombstone-commits" if parse_bool(&full, value)? => {
                    return refuse(
                        &full,
                        value,
                        "commit deletion (and so tombstones) is not implemented",
                    );
                }
                _ => {}
            }
        }
        let get_bool = |key: &str, default: bool| -> Result<bool> {
            kf.get("core", key)
                .map(|v| parse_bool(&format!("core.{key}"), v))
                .unwrap_or(Ok(default))
        };
        let min_free_space = match (
            kf.get("core", "min-free-space-size"),
            kf.get("core", "min-free-space-percent"),
        ) {
            (Some(s), _) => MinFreeSpace::Bytes(parse_size(s).ok_or_else(|| {
                RepoError::InvalidConfig(format!(
                    "core.min-free-space-size: expected e.g. 500MB, got {s:?}"
                ))
            })?),
            (None, Some(p)) => {
                let p: u32 = parse_int("core.min-free-space-percent", p)?;
                if p > 99 {
                    return Err(RepoError::InvalidConfig(format!(
                        "core.min-free-space-percent: {p} is over 99"
                    )));
                }
                MinFreeSpace::Percent(p)
            }
            (None, None) => MinFreeSpace::Percent(3),
        };
        let zlib_level = match kf.get("archive", "zlib-level") {
            Some(v) => parse_int::<i64>("archive.zlib-level", v)?.clamp(1, 9) as u32,
            None => 6,
        };
        Ok(RepoConfig {
            mode,
            fsync: get_bool("fsync", true)?,
            disable_xattrs: get_bool("disable-xattrs", false)?,
            locking: get_bool("locking", true)?,
            lock_timeout_secs: kf
                .get("core", "lock-timeout-secs")
                .map(|v| parse_int("core.lock-timeout-secs", v))
                .unwrap_or(Ok(30))?,
            tmp_expiry_secs: kf
                .get("core", "tmp-expiry-secs")
                .map(|v| parse_int("core.tmp-expiry-secs", v))
                .unwrap_or(Ok(86400))?,
            min_free_space,
            zlib_level,
            composefs_required: kf
                .get("ex-integrity", "composefs")
                .filter(|v| parse_tristate("ex-integrity.composefs", v).ok() == Some(Tristate::Yes))
                .map(str::to_string),
            keyfile: kf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_options() {
        let c = RepoConfig::parse("[core]\nrepo_version=1\nmode=bare-user\n").unwrap();
        assert_eq!(c.mode, RepoMode::BareUser);
        assert!(c.fsync && c.locking && !c.disable_xattrs);
        assert_eq!(c.min_free_space, MinFreeSpace::Percent(3));
        let c = RepoConfig::parse(
            "# comment\n[core]\nrepo_version=1\nmode=archive-z2\nfsync=false\nmin-free-space-size=500MB\nmin-free-space-percent=10\nlock-timeout-secs=-1\n[archive]\nzlib-level=12\n[remote \"r\"]\nurl=http://x\n",
        )
        .unwrap();
        assert_eq!(c.mode, RepoMode::Archive);
        assert!(!c.fsync);
        assert_eq!(c.min_free_space, MinFreeSpace::Bytes(500 << 20));
        assert_eq!(c.lock_timeout_secs, -1);
        assert_eq!(c.zlib_level, 9);
    }

    #[test]
    fn refuses_unsupported_keys() {
        for (text, key) in [
            ("core]\n", ""),
            ("[core]\nrepo_version=1\nparent=/x\n", "core.parent"),
            (
                "[core]\nrepo_version=1\nauto-update-summary=true\n",
                "core.auto-update-summary",
            ),
            (
                "[core]\nrepo_version=1\n[ex-fsverity]\nrequired=true\n",
                "ex-fsverity.required",
            ),
            (
                "[core]\nrepo_version=1\nmode=bare-split-xattrs\n",
                "core.mode",
            ),
            ("[core]\nrepo_version=2\n", "core.repo_version"),
            (
                "[core]\nrepo_version=1\n[ex-integrity]\nfsverity=maybe\n",
                "ex-integrity.fsverity",
            ),
            (
                "[core]\nrepo_version=1\n[ex-integrity]\ncomposefs=sometimes\n",
                "",
            ),
        ] {
            match RepoConfig::parse(text) {
                Err(RepoError::UnsupportedConfig { key: k, .. }) => assert_eq!(k, key),
                Err(RepoError::InvalidConfig(_)) => assert_eq!(key, ""),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn composefs_required_refuses_new_commits_only() {
        for v in ["true", "yes", "1"] {
            let c = RepoConfig::parse(&format!(
                "[core]\nrepo_version=1\nmode=bare\n[ex-integrity]\ncomposefs={v}\n"
            ))
            .unwrap();
            match c.check_new_commit() {
                Err(RepoError::UnsupportedConfig { key, value, .. }) => {
                    assert_eq!(key, "ex-integrity.composefs");
                    assert_eq!(value, v);
                }
                other => panic!("{v}: {other:?}"),
            }
        }
        for v in ["false", "no", "0", "maybe"] {
            let c = RepoConfig::parse(&format!(
                "[core]\nrepo_version=1\n[ex-integrity]\ncomposefs={v}\n"
            ))
            .unwrap();
            c.check_new_commit().unwrap();
        }
        let c = RepoConfig::parse("[core]\nrepo_version=1\n").unwrap();
        c.check_new_commit().unwrap();
    }
}
