//! A native `file_contexts` matcher, exact with respect to libselinux 3.4's `selabel_lookup`
//! (SELABEL_CTX_FILE backend opened on a policy's `contexts/files/file_contexts`, not
//! validating, as libostree opens it), and much faster: see [`matcher`].
//!
//! Loading follows libselinux's `init`: `.subs_dist` and `.subs` aliases, then
//! `file_contexts`, `.homedirs` and `.local`; of each, the text or its `.bin`, whichever is
//! newer (the `.bin` on equal mtimes, as in an ostree checkout where every mtime is 0). The
//! text is what is parsed: a `.bin` libselinux would pick must say the same as the text (same
//! specs in the same order), else the policy is [`Load::Unsupported`] and the caller uses
//! libselinux itself, since what libselinux makes of such a `.bin` depends on its PCRE2 build.

mod binfile;
mod matcher;
mod parse;
mod pcre;
mod subs;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use matcher::{LookupError, Matcher};
pub use parse::{LineError, ParseError, Spec};
pub use pcre::Unsupported;

use crate::error::{SelinuxError, io};

/// What loading a policy's file contexts gave.
#[derive(Debug)]
pub enum Load {
    /// The native matcher, exact for this policy.
    Native(Matcher),
    /// Something the native matcher would not reproduce exactly (the reason).
    Unsupported(String),
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn read(path: &Path) -> Result<Vec<u8>, SelinuxError> {
    std::fs::read(path).map_err(io("reading", path))
}

/// The specs of one spec file (`base` plus `suffix`), in file order; `Ok(None)` when neither
/// it nor its `.bin` exists.
fn load_one(
    base: &Path,
    suffix: Option<&str>,
) -> Result<Option<Result<Vec<Spec>, Unsupported>>, SelinuxError> {
    let text_path = match suffix {
        Some(s) => with_suffix(base, s),
        None => base.to_path_buf(),
    };
    let bin_path = with_suffix(&text_path, "bin");
    let t = std::fs::metadata(&text_path).ok();
    let b = std::fs::metadata(&bin_path).ok();
    let (chosen, other) = match (&t, &b) {
        (None, None) => return Ok(None),
        (Some(_), None) => (&text_path, None),
        (None, Some(_)) => (&bin_path, None),
        (Some(t), Some(b)) if b.mtime() >= t.mtime() => (&bin_path, Some(&text_path)),
        (Some(_), Some(_)) => (&text_path, Some(&bin_path)),
    };
    let unsupported = |why: String| Ok(Some(Err(Unsupported(why))));
    let data = read(chosen)?;
    if binfile::is_binary(&data) {
        let Some(text_file) = other else {
            return unsupported(format!("{} has no text form", chosen.display()));
        };
        let text = read(text_file)?;
        if binfile::is_binary(&text) || text.contains(&0) {
            return unsupported(format!("{} is not plain text", text_file.display()));
        }
        let Ok(from_text) = parse::parse_text(text_file, &text) else {
            return unsupported(format!("{} does not parse", text_file.display()));
        };
        let Some(from_bin) = binfile::parse_bin(&data) else {
            return unsupported(format!(
                "{} is not a compiled file libselinux 3.4 reads",
                chosen.display()
            ));
        };
        if parse::sort_specs(from_bin) != parse::sort_specs(from_text.clone()) {
            return unsupported(format!(
                "{} does not say what {} says",
                chosen.display(),
                text_file.display()
            ));
        }
        return Ok(Some(Ok(from_text)));
    }
    if data.contains(&0) {
        return unsupported(format!("{} contains a NUL byte", chosen.display()));
    }
    match parse::parse_text(chosen, &data) {
        Ok(s) => Ok(Some(Ok(s))),
        // libselinux would try the other file next.
        Err(_) if other.is_some() => unsupported(format!("{} does not parse", chosen.display())),
        Err(e) => Err(SelinuxError::FileContexts(e)),
    }
}

fn load_subs(path: &Path) -> Result<Result<Vec<subs::Sub>, Unsupported>, SelinuxError> {
    match std::fs::read(path) {
        Ok(d) => Ok(subs::parse_subs(&d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(Vec::new())),
        Err(e) => Ok(Err(Unsupported(format!("reading {}: {e}", path.display())))),
    }
}

/// Loads the file contexts at `file_contexts` (the policy's `contexts/files/file_contexts`)
/// as `selabel_open(SELABEL_CTX_FILE)` would.
pub fn load(file_contexts: &Path) -> Result<Load, SelinuxError> {
    let dist = match load_subs(&with_suffix(file_contexts, "subs_dist"))? {
        Ok(s) => s,
        Err(u) => return Ok(Load::Unsupported(u.0)),
    };
    let local = match load_subs(&with_suffix(file_contexts, "subs"))? {
        Ok(s) => s,
        Err(u) => return Ok(Load::Unsupported(u.0)),
    };
    let mut specs = Vec::new();
    for suffix in [None, Some("homedirs"), Some("local")] {
        match load_one(file_contexts, suffix)? {
            Some(Ok(s)) => specs.extend(s),
            Some(Err(u)) => return Ok(Load::Unsupported(u.0)),
            None if suffix.is_none() => {
                return Err(SelinuxError::NoFileContexts {
                    path: file_contexts.to_path_buf(),
                });
            }
            None => {}
        }
    }
    match Matcher::new(parse::sort_specs(specs), local, dist) {
        Ok(m) => Ok(Load::Native(m)),
        Err(u) => Ok(Load::Unsupported(u.0)),
    }
}
