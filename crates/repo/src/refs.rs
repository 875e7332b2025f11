//! Refs: listing, resolving revisions, atomic updates (ostree-repo-format §9).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ostree_format::{Checksum, ObjectType, refs::validate_ref, refs::validate_remote_name};

use crate::error::{IoContext, RepoError, Result};
use crate::repo::Repo;
use crate::sys;

/// Splits `remote:ref` and validates both parts.
pub(crate) fn validate_ref_spec(spec: &str) -> Result<()> {
    let bad = |source| RepoError::Format {
        context: format!("ref {spec:?}"),
        source,
    };
    match spec.split_once(':') {
        Some((remote, name)) => {
            validate_remote_name(remote).map_err(bad)?;
            validate_ref(name).map_err(bad)
        }
        None => validate_ref(spec).map_err(bad),
    }
}

impl Repo {
    fn ref_path(&self, spec: &str) -> PathBuf {
        match spec.split_once(':') {
            Some((remote, name)) => self.path.join("refs/remotes").join(remote).join(name),
            None => self.path.join("refs/heads").join(spec),
        }
    }

    /// All refs: local ones by name, remote ones as `remote:name`, sorted.
    pub fn list_refs(&self) -> Result<BTreeMap<String, Checksum>> {
        let mut out = BTreeMap::new();
        collect_refs(&self.path.join("refs/heads"), "", &mut out)?;
        let remotes = self.path.join("refs/remotes");
        if let Ok(entries) = fs::read_dir(&remotes) {
            for e in entries.flatten() {
                if let (Some(name), true) = (e.file_name().to_str(), e.path().is_dir()) {
                    let mut sub = BTreeMap::new();
                    collect_refs(&e.path(), "", &mut sub)?;
                    for (k, v) in sub {
                        out.insert(format!("{name}:{k}"), v);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Refs whose name starts with `prefix` (e.g. `ostree/container/blob/`).
    pub fn list_refs_with_prefix(&self, prefix: &str) -> Result<BTreeMap<String, Checksum>> {
        Ok(self
            .list_refs()?
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect())
    }

    /// The commit a ref points at, if the ref exists.
    pub fn read_ref(&self, spec: &str) -> Result<Option<Checksum>> {
        validate_ref_spec(spec)?;
        let path = self.ref_path(spec);
        match fs::read_to_string(&path) {
            Ok(s) => s
                .trim_end()
                .parse()
                .map(Some)
                .map_err(|source| RepoError::Format {
                    context: format!("ref file {}", path.display()),
                    source,
                }),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(None),
            Err(e) => Err(e).io("read", path),
        }
    }

    /// Resolves a revision: a full checksum, a unique partial checksum of a commit, a ref,
    /// `remote:ref`, each optionally followed by `^` (parent) any number of times.
    pub fn resolve_rev(&self, rev: &str) -> Result<Checksum> {
        let base = rev.trim_end_matches('^');
        let parents = rev.len() - base.len();
        let mut c = self.resolve_base(base)?;
        for _ in 0..parents {
            c = self.load_commit(&c)?.parent.ok_or_else(|| {
                RepoError::RevNotFound(format!("{rev} (commit {c} has no parent)"))
            })?;
        }
        Ok(c)
    }

    fn resolve_base(&self, rev: &str) -> Result<Checksum> {
        if Checksum::is_valid_hex(rev) {
            return rev.parse().map_err(|source| RepoError::Format {
                context: "revision".into(),
                source,
            });
        }
        if validate_ref_spec(rev).is_ok() {
            if let Some(c) = self.read_ref(rev)? {
                return Ok(c);
            }
            // `remote/ref` is accepted too, as by ostree.
            if !rev.contains(':')
                && let Some((remote, name)) = rev.split_once('/')
                && let Ok(Some(c)) = self.read_ref(&format!("{remote}:{name}"))
            {
                return Ok(c);
            }
        }
        if rev.len() >= 4
            && rev.len() < 64
            && rev
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let matches: Vec<_> = self
                .list_objects(ObjectType::Commit)?
                .into_iter()
                .filter(|c| c.to_hex().starts_with(rev))
                .collect();
            return match matches.as_slice() {
                [one] => Ok(*one),
                [] => Err(RepoError::RevNotFound(rev.to_string())),
                _ => Err(RepoError::AmbiguousRev(rev.to_string())),
            };
        }
        Err(RepoError::RevNotFound(rev.to_string()))
    }

    /// Sets (or with `None` deletes) a ref immediately, atomically. Prefer
    /// [`crate::Transaction::set_ref`] when publishing new objects.
    pub fn set_ref_now(&self, spec: &str, target: Option<&Checksum>) -> Result<()> {
        validate_ref_spec(spec)?;
        let _lock = self.lock(false)?;
        self.write_ref(spec, target)
    }

    /// Sets (or with `None` deletes) `spec` only if it still holds `expected`; returns whether it
    /// was changed. `lock` is a repository lock the caller holds (shared or exclusive); the
    /// check and the write are atomic against every other compare-and-swap of this library.
    pub fn swap_ref(
        &self,
        lock: &crate::RepoLock,
        spec: &str,
        expected: Option<&Checksum>,
        target: Option<&Checksum>,
    ) -> Result<bool> {
        validate_ref_spec(spec)?;
        let _held = lock;
        let _cas = self.cas_lock()?;
        if self.read_ref(spec)?.as_ref() != expected {
            return Ok(false);
        }
        self.write_ref(spec, target)?;
        Ok(true)
    }

    /// The lock that makes compare-and-swap ref updates atomic between our writers
    /// (`tmp/ostree-container-refs.lock`; libostree has none, its writers simply overwrite).
    pub(crate) fn cas_lock(&self) -> Result<fs::File> {
        let path = self.path.join("tmp/ostree-container-refs.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .io("open", &path)?;
        loop {
            if crate::sys::ofd_lock(
                std::os::fd::AsFd::as_fd(&f),
                crate::sys::LockKind::Exclusive,
            )
            .io("lock", &path)?
            {
                return Ok(f);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Writes a ref file: temp file in the same directory, fdatasync, rename; then bumps the
    /// repository mtime.
    pub(crate) fn write_ref(&self, spec: &str, target: Option<&Checksum>) -> Result<()> {
        match target {
            None => self.delete_ref_file(spec)?,
            Some(c) => {
                let dir = self.ref_dir_for_write(spec)?;
                let tmp = dir.join(format!(".tmp-ref-{}", sys::random_suffix(8)));
                write_ref_contents(&tmp, c, self.config.fsync)?;
                let path = self.ref_path(spec);
                fs::rename(&tmp, &path).io("rename", &path)?;
            }
        }
        self.bump_mtime();
        Ok(())
    }

    /// Deletes a ref file (a missing one is not an error).
    pub(crate) fn delete_ref_file(&self, spec: &str) -> Result<()> {
        let path = self.ref_path(spec);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).io("delete ref", path),
        }
    }

    /// Creates the directory of ref `spec` and checks that no refs live below its name.
    fn ref_dir_for_write(&self, spec: &str) -> Result<PathBuf> {
        let path = self.ref_path(spec);
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        fs::create_dir_all(&dir).io("create ref directory", &dir)?;
        if path.is_dir() {
            return Err(RepoError::InvalidArgument(format!(
                "ref {spec:?} conflicts with existing refs below it"
            )));
        }
        Ok(dir)
    }

    /// Renames a file already holding ref `spec`'s contents (durable, on the same filesystem)
    /// over the ref. The mtime is the caller's to bump.
    pub(crate) fn move_ref_file_into_place(&self, file: &Path, spec: &str) -> Result<()> {
        self.ref_dir_for_write(spec)?;
        let path = self.ref_path(spec);
        fs::rename(file, &path).io("rename", &path)
    }
}

/// Writes the contents of a ref file pointing at `c` into a new file `path`; `sync`: fdatasync it.
pub(crate) fn write_ref_contents(path: &Path, c: &Checksum, sync: bool) -> Result<()> {
    let mut f = fs::File::create(path).io("create", path)?;
    f.write_all(format!("{c}\n").as_bytes()).io("write", path)?;
    if sync {
        f.sync_data().io("fdatasync", path)?;
    }
    Ok(())
}

fn collect_refs(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Checksum>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).io("list", dir),
    };
    for e in entries {
        let e = e.io("list", dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        if path.is_dir() {
            collect_refs(&path, &full, out)?;
        } else {
            let text = fs::read_to_string(&path).io("read", &path)?;
            if let Ok(c) = text.trim_end().parse() {
                out.insert(full, c);
            }
        }
    }
    Ok(())
}
