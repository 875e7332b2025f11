//! How we run skopeo and find credentials, shared by both directions: the image proxy for pulls
//! (`fetch`) and `skopeo copy` for pushes (`encapsulate`), so that both look up the same default
//! auth file (container-image-format §12) and run the same configured skopeo, bound to our
//! lifetime.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A skopeo (or compatible) program plus leading arguments, e.g. `systemd-run … -- skopeo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkopeoCommand {
    /// Program to run.
    pub program: PathBuf,
    /// Arguments placed before `experimental-image-proxy`.
    pub args: Vec<OsString>,
}

impl SkopeoCommand {
    /// A bare program without extra arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// The command, bound to our lifetime: the child gets SIGTERM when we die (also by SIGKILL),
    /// so that a killed pull leaves no skopeo holding a registry connection or a
    /// containers-storage lock. The proxy crate does the same for its default `skopeo` only.
    #[allow(unsafe_code)]
    pub(crate) fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        // SAFETY (audited; the workspace denies unsafe code elsewhere): the closure runs in the
        // forked child before exec and only makes one prctl system call (async-signal-safe); it
        // allocates nothing and touches no lock.
        unsafe {
            c.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))
                .map_err(std::io::Error::from)
            });
        }
        c
    }
}

/// Candidate default auth files in lookup order (spec section 12).
pub fn default_authfile_candidates(
    is_root: bool,
    xdg_runtime_dir: Option<&Path>,
    home: Option<&Path>,
    uid: u32,
) -> Vec<PathBuf> {
    if is_root {
        return ["/run/ostree", "/etc/ostree", "/usr/lib/ostree"]
            .iter()
            .map(|d| Path::new(d).join("auth.json"))
            .collect();
    }
    let runtime = xdg_runtime_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
    let mut v = vec![runtime.join("ostree/auth.json")];
    if let Some(home) = home {
        v.push(home.join(".config/ostree/auth.json"));
    }
    v
}

/// The first existing default auth file for this process, following symlinks.
pub fn find_default_authfile() -> Option<PathBuf> {
    let uid = rustix::process::geteuid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    default_authfile_candidates(uid.is_root(), xdg.as_deref(), home.as_deref(), uid.as_raw())
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authfile_candidates() {
        let root = default_authfile_candidates(true, None, None, 0);
        assert_eq!(
            root,
            [
                "/run/ostree/auth.json",
                "/etc/ostree/auth.json",
                "/usr/lib/ostree/auth.json"
            ]
            .map(PathBuf::from)
        );
        let user = default_authfile_candidates(
            false,
            Some(Path::new("/run/user/1000")),
            Some(Path::new("/home/u")),
            1000,
        );
        assert_eq!(
            user,
            [
                "/run/user/1000/ostree/auth.json",
                "/home/u/.config/ostree/auth.json"
            ]
            .map(PathBuf::from)
        );
        let user = default_authfile_candidates(false, None, None, 42);
        assert_eq!(user, [PathBuf::from("/run/user/42/ostree/auth.json")]);
    }

    #[test]
    fn push_and_pull_use_one_lookup() {
        assert_eq!(
            crate::encapsulate::oci::default_authfile(),
            find_default_authfile()
        );
    }
}
