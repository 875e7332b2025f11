//! Writing the policy files of a stored tree to a scratch directory for libselinux, as
//! `ostree_sepolicy_new_from_commit` checks `usr/etc/selinux` out (user mode). Only what
//! libostree and libselinux read is written: `config`, and the type's `contexts/files` and
//! `policy` directories. Files get mtime 0, as in a checkout from a bare repository, so that
//! libselinux picks `file_contexts.bin` over `file_contexts` exactly as it would there.

use std::io::Write;
use std::path::Path;

use ostree_repo::format::Checksum;
use ostree_repo::{ContentObject, MtreeEntry, MutableTree, Repo, Transaction, TreeSource};

use crate::error::{SelinuxError, io};

/// A tree plus its content objects: a repository or a transaction.
pub trait ObjectSource: TreeSource {
    /// A content object.
    fn content(&self, c: &Checksum) -> ostree_repo::Result<ContentObject>;
}

impl ObjectSource for Repo {
    fn content(&self, c: &Checksum) -> ostree_repo::Result<ContentObject> {
        self.read_content(c)
    }
}

impl ObjectSource for Transaction<'_> {
    fn content(&self, c: &Checksum) -> ostree_repo::Result<ContentObject> {
        self.read_content(c)
    }
}

/// Writes content object `c` at `dest` (regular file or symlink).
pub(crate) fn write_file(
    src: &dyn ObjectSource,
    c: &Checksum,
    dest: &Path,
) -> Result<(), SelinuxError> {
    let obj = src.content(c)?;
    if let Some(t) = &obj.symlink_target {
        return std::os::unix::fs::symlink(t, dest).map_err(io("creating symlink", dest));
    }
    let mut f = std::fs::File::create(dest).map_err(io("creating", dest))?;
    if let Some(mut r) = obj.reader {
        std::io::copy(&mut r, &mut f).map_err(io("writing", dest))?;
    }
    f.flush().map_err(io("writing", dest))?;
    f.set_modified(std::time::UNIX_EPOCH)
        .map_err(io("setting mtime of", dest))?;
    Ok(())
}

/// Writes the directory `tree` (recursively) to `dest`, which must exist.
pub(crate) fn write_dir(
    src: &dyn ObjectSource,
    tree: &mut MutableTree,
    dest: &Path,
    depth: usize,
) -> Result<(), SelinuxError> {
    if depth > ostree_repo::format::MAX_RECURSION {
        return Err(SelinuxError::BadTree(format!(
            "{} nested too deep",
            dest.display()
        )));
    }
    let entries = tree.entries(src)?.clone();
    for (name, e) in entries {
        let p = dest.join(&name);
        match e {
            MtreeEntry::File(c) => write_file(src, &c, &p)?,
            MtreeEntry::Dir(mut d) => {
                std::fs::create_dir(&p).map_err(io("creating directory", &p))?;
                write_dir(src, &mut d, &p, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// The entry at `path` below `tree`, if any (loading as needed).
pub(crate) fn find(
    src: &dyn ObjectSource,
    tree: &mut MutableTree,
    path: &str,
) -> Result<Option<MtreeEntry>, SelinuxError> {
    Ok(tree.lookup(src, path)?.cloned())
}
