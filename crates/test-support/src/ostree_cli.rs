//! The real `ostree` CLI (Debian package `ostree`, 2022.7; or Debian 13's 2025.2 through
//! [`crate::modern`]) as a test oracle.
//!
//! Every command runs with `LC_ALL=C` and `TZ=UTC` and stdin from /dev/null.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use crate::tools::{describe, require_tool, run, run_bytes};

/// Handle on the `ostree` binary.
#[derive(Debug, Clone)]
pub struct OstreeCli {
    bin: PathBuf,
}

/// Options for [`OstreeCli::commit`]. `Default` gives a plain `ostree commit -b BRANCH
/// --tree=dir=TREE` (current time as timestamp, empty subject).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOpts {
    /// `-s`
    pub subject: Option<String>,
    /// `-m`
    pub body: Option<String>,
    /// `--timestamp=`, e.g. "2020-01-01T00:00:00Z".
    pub timestamp: Option<String>,
    /// `--add-metadata-string=K=V`, in order.
    pub metadata_strings: Vec<(String, String)>,
    /// `--add-detached-metadata-string=K=V`, in order.
    pub detached_metadata_strings: Vec<(String, String)>,
    /// `--no-bindings`
    pub no_bindings: bool,
    /// `--canonical-permissions`
    pub canonical_permissions: bool,
    /// `--owner-uid=`
    pub owner_uid: Option<u32>,
    /// `--owner-gid=`
    pub owner_gid: Option<u32>,
    /// `--parent=` (a checksum, or "none")
    pub parent: Option<String>,
    /// `--orphan` (the branch argument of [`OstreeCli::commit`] is then ignored)
    pub orphan: bool,
}

impl CommitOpts {
    /// The fields of the reference commit (ostree-repo-format §13): committing
    /// [`crate::tree::reference_tree`] with these gives [`REFERENCE_COMMIT`].
    pub fn reference() -> Self {
        CommitOpts {
            subject: Some("subj".into()),
            body: Some("body".into()),
            timestamp: Some("2020-01-01T00:00:00Z".into()),
            metadata_strings: vec![("version".into(), "1.0".into())],
            ..Default::default()
        }
    }
}

/// The reference commit's checksum (ostree-repo-format §13).
pub const REFERENCE_COMMIT: &str =
    "3602b2e959192c61aa6153fc5755b392e500d188524501ac32bf77ab138a6166";

/// Result of `ostree fsck`; a failing fsck is not an error of [`OstreeCli::fsck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckOutcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl FsckOutcome {
    /// Errors (with full output) unless fsck exited 0.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.success {
            bail!(
                "ostree fsck failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout,
                self.stderr
            );
        }
        Ok(())
    }
}

fn repo_arg(repo: &Path) -> String {
    format!("--repo={}", repo.display())
}

impl OstreeCli {
    /// Locates `ostree`; errors naming the Debian package if missing.
    pub fn new() -> anyhow::Result<Self> {
        Ok(OstreeCli {
            bin: require_tool("ostree", "ostree")?,
        })
    }

    /// Another `ostree` program (e.g. [`crate::modern::Debian13::ostree`]'s 2025.2 wrapper).
    pub fn with_bin(bin: impl Into<PathBuf>) -> Self {
        OstreeCli { bin: bin.into() }
    }

    /// Path of the `ostree` binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// An `ostree ARGS...` command with the pinned environment (`LC_ALL=C`, `TZ=UTC`), for
    /// callers that need to spawn arbitrary ostree commands.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("LC_ALL", "C").env("TZ", "UTC").args(args);
        c
    }

    fn cmd_repo(&self, sub: &str, repo: &Path) -> Command {
        let mut c = self.command(&[sub]);
        c.arg(repo_arg(repo));
        c
    }

    /// `ostree init --repo=R --mode=M`.
    pub fn init(&self, repo: &Path, mode: &str) -> anyhow::Result<()> {
        let mut c = self.cmd_repo("init", repo);
        c.arg(format!("--mode={mode}"));
        run(&mut c)?;
        Ok(())
    }

    /// `ostree commit --repo=R -b BRANCH --tree=dir=TREE [opts]`; returns the commit checksum.
    pub fn commit(
        &self,
        repo: &Path,
        branch: &str,
        tree: &Path,
        opts: &CommitOpts,
    ) -> anyhow::Result<String> {
        let mut c = self.cmd_repo("commit", repo);
        if opts.orphan {
            c.arg("--orphan");
        } else {
            c.arg(format!("--branch={branch}"));
        }
        c.arg(format!("--tree=dir={}", tree.display()));
        if let Some(s) = &opts.subject {
            c.arg(format!("--subject={s}"));
        }
        if let Some(b) = &opts.body {
            c.arg(format!("--body={b}"));
        }
        if let Some(t) = &opts.timestamp {
            c.arg(format!("--timestamp={t}"));
        }
        for (k, v) in &opts.metadata_strings {
            c.arg(format!("--add-metadata-string={k}={v}"));
        }
        for (k, v) in &opts.detached_metadata_strings {
            c.arg(format!("--add-detached-metadata-string={k}={v}"));
        }
        if opts.no_bindings {
            c.arg("--no-bindings");
        }
        if opts.canonical_permissions {
            c.arg("--canonical-permissions");
        }
        if let Some(u) = opts.owner_uid {
            c.arg(format!("--owner-uid={u}"));
        }
        if let Some(g) = opts.owner_gid {
            c.arg(format!("--owner-gid={g}"));
        }
        if let Some(p) = &opts.parent {
            c.arg(format!("--parent={p}"));
        }
        let line = describe(&c);
        let out = run(&mut c)?;
        let csum = out.trim().to_string();
        check_checksum(&csum).with_context(|| format!("unexpected output of `{line}`"))?;
        Ok(csum)
    }

    /// `ostree rev-parse --repo=R REV`.
    pub fn rev_parse(&self, repo: &Path, rev: &str) -> anyhow::Result<String> {
        let mut c = self.cmd_repo("rev-parse", repo);
        c.arg(rev);
        let csum = run(&mut c)?.trim().to_string();
        check_checksum(&csum)?;
        Ok(csum)
    }

    /// `ostree ls --repo=R -RXC REV` (recursive, xattrs, full checksums).
    pub fn ls_rxc(&self, repo: &Path, rev: &str) -> anyhow::Result<String> {
        let mut c = self.cmd_repo("ls", repo);
        c.args(["-R", "-X", "-C", rev]);
        run(&mut c)
    }

    /// `ostree fsck --repo=R`; never errors on a non-zero exit (see [`FsckOutcome::check`]).
    pub fn fsck(&self, repo: &Path) -> anyhow::Result<FsckOutcome> {
        let mut c = self.cmd_repo("fsck", repo);
        let line = describe(&c);
        let out = c
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("failed to spawn `{line}`"))?;
        Ok(FsckOutcome {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// The oracle's verdict on an import: `repo` passes fsck, and `rev` checked out at `co`
    /// equals the tree `expected`.
    pub fn check_import(
        &self,
        repo: &Path,
        rev: &str,
        co: &Path,
        expected: &Path,
    ) -> anyhow::Result<()> {
        self.fsck(repo)?.check()?;
        self.checkout(repo, rev, co, false)?;
        crate::compare::assert_trees_equal(expected, co, &Default::default())
    }

    /// `ostree checkout --repo=R [-U] REV DEST` (DEST must not exist).
    pub fn checkout(
        &self,
        repo: &Path,
        rev: &str,
        dest: &Path,
        user_mode: bool,
    ) -> anyhow::Result<()> {
        let mut c = self.cmd_repo("checkout", repo);
        if user_mode {
            c.arg("-U");
        }
        c.arg(rev).arg(dest);
        run(&mut c)?;
        Ok(())
    }

    /// `ostree refs --repo=R`, one ref per element, in output order.
    pub fn refs(&self, repo: &Path) -> anyhow::Result<Vec<String>> {
        let out = run(&mut self.cmd_repo("refs", repo))?;
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// `ostree cat --repo=R REV PATH`: file content bytes.
    pub fn cat(&self, repo: &Path, rev: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        let mut c = self.cmd_repo("cat", repo);
        c.arg(rev).arg(path);
        run_bytes(&mut c)
    }

    /// `ostree show --repo=R --raw REV`.
    pub fn show_raw(&self, repo: &Path, rev: &str) -> anyhow::Result<String> {
        let mut c = self.cmd_repo("show", repo);
        c.arg("--raw").arg(rev);
        run(&mut c)
    }

    /// `ostree prune --repo=R --refs-only`, blocking; returns stdout.
    pub fn prune_refs_only(&self, repo: &Path) -> anyhow::Result<String> {
        let mut c = self.cmd_repo("prune", repo);
        c.arg("--refs-only");
        run(&mut c)
    }

    /// Spawns `ostree prune --repo=R --refs-only` (stdout/stderr piped) without waiting, for
    /// lock tests. Use `child.wait_with_output()` to collect it.
    pub fn spawn_prune_refs_only(&self, repo: &Path) -> anyhow::Result<Child> {
        let mut c = self.cmd_repo("prune", repo);
        c.arg("--refs-only")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let line = describe(&c);
        c.spawn()
            .with_context(|| format!("failed to spawn `{line}`"))
    }
}

fn check_checksum(s: &str) -> anyhow::Result<()> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        bail!("expected a 64-hex-digit checksum, got {s:?}");
    }
    Ok(())
}

/// Every file under `REPO/objects/` as "checksum.ext" (e.g. "3602b2e9…6166.commit"), i.e. the
/// two-character directory name joined to the file name. Non-file entries are errors.
pub fn list_object_files(repo: &Path) -> anyhow::Result<BTreeSet<String>> {
    let objects = repo.join("objects");
    let mut set = BTreeSet::new();
    let rd =
        std::fs::read_dir(&objects).with_context(|| format!("readdir {}", objects.display()))?;
    for sub in rd {
        let sub = sub?;
        let prefix = sub.file_name().to_string_lossy().into_owned();
        let ft = sub.file_type()?;
        if !ft.is_dir() {
            bail!("unexpected non-directory {}", sub.path().display());
        }
        for e in std::fs::read_dir(sub.path())? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type()?;
            // Objects are regular files, except symlink objects in bare / bare-user-only repos.
            if !(ft.is_file() || ft.is_symlink()) {
                bail!("unexpected entry {} in objects/", e.path().display());
            }
            set.insert(format!("{prefix}{name}"));
        }
    }
    Ok(set)
}
