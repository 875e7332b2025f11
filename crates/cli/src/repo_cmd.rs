//! `ostree-container repo …`: native repository plumbing with `ostree`-style flags.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ostree_repo::format::gvariant::{Type, Value};
use ostree_repo::format::{Checksum, FileMeta, MetaDict, S_IFLNK, S_IFMT};
use ostree_repo::{
    CheckoutOptions, CommitSpec, PruneOptions, PruneReport, Repo, RepoMode, TreeOptions,
};

use crate::output::BarProgress;
use crate::{EXIT_INTERRUPTED, EXIT_VERIFY_FAILED};

/// Repository location, shared by every subcommand.
#[derive(Args, Debug)]
pub struct RepoArg {
    /// Path to the OSTree repository.
    #[arg(long = "repo", value_name = "PATH")]
    repo: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Create a repository (like `ostree init`).
    Init {
        #[command(flatten)]
        repo: RepoArg,
        /// bare, bare-user, bare-user-only or archive (archive-z2).
        #[arg(long, default_value = "bare")]
        mode: String,
    },
    /// Commit a directory tree (like `ostree commit --tree=dir=DIR`); prints the checksum.
    Commit(CommitArgs),
    /// Check a commit out into a new directory (like `ostree checkout`).
    Checkout {
        #[command(flatten)]
        repo: RepoArg,
        /// Unprivileged checkout: no ownership, xattrs or setuid/setgid bits.
        #[arg(short = 'U', long = "user-mode")]
        user_mode: bool,
        /// Commit checksum or ref.
        rev: String,
        /// Destination directory (must not exist).
        dest: PathBuf,
    },
    /// Verify every commit and reachable object; corrupt objects are named on stdout.
    Fsck {
        #[command(flatten)]
        repo: RepoArg,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List a commit's files (like `ostree ls`).
    Ls {
        #[command(flatten)]
        repo: RepoArg,
        /// Recurse into directories.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Show checksums.
        #[arg(short = 'C', long)]
        checksum: bool,
        /// Show extended attributes.
        #[arg(short = 'X', long)]
        xattrs: bool,
        /// Commit checksum or ref.
        rev: String,
        /// Path inside the commit.
        #[arg(default_value = "/")]
        path: String,
    },
    /// List refs, or delete one.
    Refs {
        #[command(flatten)]
        repo: RepoArg,
        /// Delete this ref.
        #[arg(long)]
        delete: Option<String>,
    },
    /// Delete unreachable objects (like `ostree prune`); prints what it found and freed.
    Prune {
        #[command(flatten)]
        repo: RepoArg,
        /// Only compute reachability via refs (otherwise every commit is kept).
        #[arg(long)]
        refs_only: bool,
        /// Only display unreachable objects; don't delete.
        #[arg(long = "no-prune", visible_alias = "dry-run")]
        no_prune: bool,
        /// Only traverse DEPTH parents for each commit (default: -1=infinite).
        #[arg(long, default_value_t = -1, allow_hyphen_values = true, value_name = "DEPTH")]
        depth: i64,
        /// Show a progress bar on stderr (quiet by default, as `ostree prune`).
        #[arg(long)]
        progress: bool,
    },
    /// Sign a commit with ed25519 (as `ostree sign --sign-type=ed25519 --keys-file=KEYFILE`):
    /// the signature is added to the commit's detached metadata (`ostree.sign.ed25519`).
    Sign {
        #[command(flatten)]
        repo: RepoArg,
        /// Commit checksum or ref.
        rev: String,
        /// File of base64 ed25519 secret keys (64 bytes: seed and public key), one per line.
        keyfile: PathBuf,
    },
    /// Resolve a revision to a commit checksum.
    RevParse {
        #[command(flatten)]
        repo: RepoArg,
        /// Ref, full or partial checksum, `remote:ref`, with optional `^`s.
        rev: String,
    },
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Branch (ref) to point at the new commit; its current commit becomes the parent.
    #[arg(short = 'b', long = "branch")]
    branch: Option<String>,
    /// Source, as `dir=PATH`.
    #[arg(long = "tree", value_name = "dir=PATH")]
    tree: String,
    /// Subject line.
    #[arg(short = 's', long = "subject", default_value = "")]
    subject: String,
    /// Body.
    #[arg(short = 'm', long = "body", default_value = "")]
    body: String,
    /// Commit time: RFC 3339 (`2020-01-01T00:00:00Z`) or `@SECONDS`; default now.
    #[arg(long)]
    timestamp: Option<String>,
    /// Parent commit (`none` for no parent); default: the branch's current commit.
    #[arg(long)]
    parent: Option<String>,
    /// Create a commit without a branch and without a parent.
    #[arg(long)]
    orphan: bool,
    /// Add a string metadata key (repeatable, kept in order).
    #[arg(long = "add-metadata-string", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    /// Do not add the `ostree.ref-binding` metadata key.
    #[arg(long)]
    no_bindings: bool,
    /// Owner of every file and directory.
    #[arg(long = "owner-uid")]
    owner_uid: Option<u32>,
    /// Group of every file and directory.
    #[arg(long = "owner-gid")]
    owner_gid: Option<u32>,
    /// uid/gid 0, permissions & 0755, no xattrs.
    #[arg(long)]
    canonical_permissions: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// Parses `--timestamp`.
pub fn parse_timestamp(s: &str) -> Result<u64> {
    if let Some(secs) = s.strip_prefix('@') {
        return secs
            .parse()
            .with_context(|| format!("invalid --timestamp {s:?}"));
    }
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).with_context(|| {
        format!("invalid --timestamp {s:?}: expected e.g. 2020-01-01T00:00:00Z or @SECONDS")
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

pub fn run(cmd: RepoCommand, interrupt: &AtomicBool) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match cmd {
        RepoCommand::Init { repo, mode } => {
            let mode: RepoMode = mode.parse()?;
            Repo::create(&repo.repo, mode)
                .with_context(|| format!("creating {}", repo.repo.display()))?;
        }
        RepoCommand::Commit(a) => {
            let repo = Repo::open(&a.repo.repo)?;
            let Some(dir) = a.tree.strip_prefix("dir=") else {
                bail!("--tree must be dir=PATH (got {:?})", a.tree);
            };
            let mut spec = CommitSpec::new();
            spec.subject = a.subject;
            spec.body = a.body;
            spec.timestamp = a.timestamp.as_deref().map(parse_timestamp).transpose()?;
            spec.parent = match (a.parent.as_deref(), a.orphan, a.branch.as_deref()) {
                (Some("none"), _, _) | (None, true, _) => None,
                (Some(p), _, _) => Some(repo.resolve_rev(p)?),
                (None, false, Some(b)) => repo.read_ref(b)?,
                (None, false, None) => None,
            };
            let mut md = MetaDict::default();
            for kv in &a.metadata {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--add-metadata-string {kv:?}: expected KEY=VALUE"))?;
                md.push(k, Value::Str(v.to_string()));
            }
            let branch = if a.orphan { None } else { a.branch.as_deref() };
            if let (Some(b), false) = (branch, a.no_bindings) {
                md.push(
                    "ostree.ref-binding",
                    Value::Array(Type::Str, vec![Value::Str(b.to_string())]),
                );
            }
            spec.metadata = md;
            let mut topts = TreeOptions::new();
            topts.owner_uid = a.owner_uid;
            topts.owner_gid = a.owner_gid;
            topts.canonical_permissions = a.canonical_permissions;
            let progress = BarProgress::new(a.quiet);
            let c = repo.commit_directory(
                std::path::Path::new(dir),
                branch,
                &topts,
                &spec,
                &progress,
                interrupt,
            )?;
            progress.finish();
            writeln!(out, "{c}")?;
        }
        RepoCommand::Checkout {
            repo,
            user_mode,
            rev,
            dest,
        } => {
            let repo = Repo::open(&repo.repo)?;
            let c = repo.resolve_rev(&rev)?;
            let mut opts = CheckoutOptions::new();
            opts.user_mode = user_mode;
            let progress = BarProgress::new(false);
            repo.checkout(&c, &dest, &opts, &progress, interrupt)?;
            progress.finish();
        }
        RepoCommand::Fsck { repo, quiet } => {
            let repo = Repo::open(&repo.repo)?;
            let progress = BarProgress::new(quiet);
            let report = repo.fsck(&progress, interrupt)?;
            progress.finish();
            for (obj, why) in &report.corrupt {
                writeln!(out, "corrupt object {obj}: {why}")?;
            }
            for (obj, commit) in &report.missing {
                writeln!(out, "missing object {obj} (needed by commit {commit})")?;
            }
            for (r, why) in &report.bad_refs {
                writeln!(out, "bad ref {r}: {why}")?;
            }
            if !report.partial_commits.is_empty() {
                writeln!(
                    out,
                    "{} partial commits not verified",
                    report.partial_commits.len()
                )?;
            }
            if !report.is_ok() {
                writeln!(out, "fsck of {} commits found errors", report.commits)?;
                return Ok(EXIT_VERIFY_FAILED);
            }
            writeln!(
                out,
                "fsck of {} commits and {} objects completed: no errors found",
                report.commits, report.objects_checked
            )?;
        }
        RepoCommand::Sign { repo, rev, keyfile } => {
            let repo = Repo::open(&repo.repo)?;
            let c = repo.resolve_rev(&rev)?;
            let text = std::fs::read_to_string(&keyfile)
                .with_context(|| format!("reading {}", keyfile.display()))?;
            let keys = ostree_sign::ed25519::parse_secret_key_file(&text)?;
            let commit_bytes = repo.load_metadata_bytes(&ostree_repo::format::ObjectName::new(
                c,
                ostree_repo::format::ObjectType::Commit,
            ))?;
            let meta_name = ostree_repo::format::ObjectName::new(
                c,
                ostree_repo::format::ObjectType::CommitMeta,
            );
            let mut meta = match repo.load_metadata_bytes(&meta_name) {
                Ok(b) => Some(b),
                Err(ostree_repo::RepoError::ObjectNotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            for k in &keys {
                let sig = ostree_sign::sign_ed25519(k, &commit_bytes)?;
                meta = Some(ostree_sign::add_ed25519_signature(meta.as_deref(), &sig)?);
            }
            if let Some(m) = meta {
                let txn = repo.begin_transaction()?;
                txn.write_commitmeta(&c, &m)?;
                txn.commit()?;
            }
            writeln!(out, "{c}")?;
        }
        RepoCommand::Ls {
            repo,
            recursive,
            checksum,
            xattrs,
            rev,
            path,
        } => {
            let repo = Repo::open(&repo.repo)?;
            let c = repo.resolve_rev(&rev)?;
            let commit = repo.load_commit(&c)?;
            let lister = Lister {
                repo: &repo,
                recursive,
                checksum,
                xattrs,
            };
            lister.list_path(&mut out, &commit.root_tree, &commit.root_meta, &path)?;
        }
        RepoCommand::Refs { repo, delete } => {
            let repo = Repo::open(&repo.repo)?;
            if let Some(r) = delete {
                if repo.read_ref(&r)?.is_none() {
                    bail!("ref {r:?} not found");
                }
                repo.set_ref_now(&r, None)?;
            } else {
                for name in repo.list_refs()?.keys() {
                    writeln!(out, "{name}")?;
                }
            }
        }
        RepoCommand::Prune {
            repo,
            refs_only,
            no_prune,
            depth,
            progress,
        } => {
            let repo = Repo::open(&repo.repo)?;
            let mut opts = PruneOptions::new();
            opts.refs_only = refs_only;
            opts.dry_run = no_prune;
            // libostree: -1 is unlimited, other negative depths behave as 0.
            opts.depth = match depth {
                -1 => None,
                d => Some(u32::try_from(d.max(0)).unwrap_or(u32::MAX)),
            };
            let bar = BarProgress::new(!progress);
            let report = repo.prune(&opts, &bar, interrupt)?;
            bar.finish();
            write!(out, "{}", prune_summary(&report, no_prune, &locale_space()))?;
        }
        RepoCommand::RevParse { repo, rev } => {
            let repo = Repo::open(&repo.repo)?;
            writeln!(out, "{}", repo.resolve_rev(&rev)?)?;
        }
    }
    if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(0)
}

/// The lines `ostree prune` prints.
pub fn prune_summary(r: &PruneReport, dry_run: bool, space: &str) -> String {
    let mut s = format!("Total objects: {}\n", r.objects_total);
    let size = format_size(r.bytes_freed, space);
    if r.objects_deleted == 0 {
        s.push_str("No unreachable objects\n");
    } else if dry_run {
        s.push_str(&format!(
            "Would delete: {} objects, freeing {size}\n",
            r.objects_deleted
        ));
    } else {
        s.push_str(&format!(
            "Deleted {} objects, {size} freed\n",
            r.objects_deleted
        ));
    }
    s
}

/// GLib's size format (shared with the store's layer lines).
pub fn format_size(size: u64, space: &str) -> String {
    ostree_container::store::diff::format_size_with(size, space)
}

/// What `g_print` makes of GLib's U+00A0 in the current locale: itself in a UTF-8 locale,
/// `?` otherwise (e.g. `LC_ALL=C`), so that our output matches `ostree prune` byte for byte.
fn locale_space() -> String {
    let var = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    if var.contains("utf-8") || var.contains("utf8") {
        "\u{a0}".to_string()
    } else {
        "?".to_string()
    }
}

struct Lister<'a> {
    repo: &'a Repo,
    recursive: bool,
    checksum: bool,
    xattrs: bool,
}

impl Lister<'_> {
    fn list_path(
        &self,
        out: &mut dyn Write,
        root_tree: &Checksum,
        root_meta: &Checksum,
        path: &str,
    ) -> Result<()> {
        let mut tree = *root_tree;
        let mut meta = *root_meta;
        let mut shown = String::new();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, comp) in comps.iter().enumerate() {
            let dt = self.repo.load_dirtree(&tree)?;
            shown = format!("{shown}/{comp}");
            if let Some(d) = dt.dirs.iter().find(|d| d.name == *comp) {
                tree = d.tree;
                meta = d.meta;
            } else if let (Some(f), true) = (
                dt.files.iter().find(|f| f.name == *comp),
                i + 1 == comps.len(),
            ) {
                return self.print_file(out, &f.checksum, &shown);
            } else {
                bail!("no such file or directory: {path}");
            }
        }
        let shown = if shown.is_empty() {
            "/".to_string()
        } else {
            shown
        };
        self.print_dir(out, &tree, &meta, &shown)?;
        self.list_dir(out, &tree, &shown, self.recursive)
    }

    /// Lists `tree` under `prefix` as `ostree ls` does (a directory's files, then each
    /// subdirectory's line followed, if `recurse`, by its own listing), with an explicit stack
    /// so that no nesting depth can overflow ours.
    fn list_dir(
        &self,
        out: &mut dyn Write,
        tree: &Checksum,
        prefix: &str,
        recurse: bool,
    ) -> Result<()> {
        struct Frame {
            prefix: String,
            dirs: std::vec::IntoIter<(String, Checksum, Checksum)>,
        }
        let join = |prefix: &str, n: &str| {
            if prefix == "/" {
                format!("/{n}")
            } else {
                format!("{prefix}/{n}")
            }
        };
        let enter = |out: &mut dyn Write, tree: &Checksum, prefix: String| -> Result<Frame> {
            let dt = self.repo.load_dirtree(tree)?;
            for f in &dt.files {
                self.print_file(out, &f.checksum, &join(&prefix, &f.name))?;
            }
            let dirs: Vec<_> = dt
                .dirs
                .iter()
                .map(|d| (d.name.clone(), d.tree, d.meta))
                .collect();
            Ok(Frame {
                prefix,
                dirs: dirs.into_iter(),
            })
        };
        let mut stack = vec![enter(out, tree, prefix.to_string())?];
        while let Some(top) = stack.last_mut() {
            let Some((name, t, m)) = top.dirs.next() else {
                stack.pop();
                continue;
            };
            let p = join(&top.prefix, &name);
            self.print_dir(out, &t, &m, &p)?;
            if recurse {
                let frame = enter(out, &t, p)?;
                stack.push(frame);
            }
        }
        Ok(())
    }

    fn print_dir(
        &self,
        out: &mut dyn Write,
        tree: &Checksum,
        meta: &Checksum,
        path: &str,
    ) -> Result<()> {
        let m = self.repo.load_dirmeta(meta)?;
        write!(out, "d{:05o} {} {} {:6} ", m.mode & 0o7777, m.uid, m.gid, 0)?;
        if self.checksum {
            write!(out, "{tree} {meta} ")?;
        }
        self.print_xattrs(out, &m)?;
        writeln!(out, "{path}")?;
        Ok(())
    }

    fn print_file(&self, out: &mut dyn Write, c: &Checksum, path: &str) -> Result<()> {
        let obj = self.repo.read_content(c)?;
        let kind = if obj.meta.mode & S_IFMT == S_IFLNK {
            'l'
        } else {
            '-'
        };
        write!(
            out,
            "{kind}{:05o} {} {} {:6} ",
            obj.meta.mode & 0o7777,
            obj.meta.uid,
            obj.meta.gid,
            obj.size
        )?;
        if self.checksum {
            write!(out, "{c} ")?;
        }
        self.print_xattrs(out, &obj.meta)?;
        match &obj.symlink_target {
            Some(t) => writeln!(out, "{path} -> {t}")?,
            None => writeln!(out, "{path}")?,
        }
        Ok(())
    }

    fn print_xattrs(&self, out: &mut dyn Write, m: &FileMeta) -> Result<()> {
        if !self.xattrs {
            return Ok(());
        }
        if m.xattrs.is_empty() {
            write!(out, "{{ @a(ayay) [] }} ")?;
            return Ok(());
        }
        let items: Vec<String> = m
            .xattrs
            .pairs()
            .iter()
            .map(|(n, v)| {
                let bytes: Vec<String> = v.iter().map(|b| format!("0x{b:02x}")).collect();
                format!(
                    "(b'{}', [byte {}])",
                    String::from_utf8_lossy(n),
                    bytes.join(", ")
                )
            })
            .collect();
        write!(out, "{{ [{}] }} ", items.join(", "))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_size_matches_glib() {
        // g_format_size_full(n, G_FORMAT_SIZE_DEFAULT) of GLib 2.74, NBSP replaced by " ".
        for (n, s) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (999, "999 bytes"),
            (1000, "1.0 kB"),
            (1049, "1.0 kB"),
            (1050, "1.1 kB"),
            (999_949, "999.9 kB"),
            (999_950, "1000.0 kB"),
            (999_999, "1000.0 kB"),
            (1_000_000, "1.0 MB"),
            (123_456_789, "123.5 MB"),
            (1_000_000_000, "1.0 GB"),
            (1_000_000_000_000, "1.0 TB"),
        ] {
            assert_eq!(format_size(n, " "), s, "{n}");
        }
    }

    #[test]
    fn prune_summary_lines() {
        let r = PruneReport::default();
        assert_eq!(
            prune_summary(&r, false, " "),
            "Total objects: 0\nNo unreachable objects\n"
        );
    }
}
