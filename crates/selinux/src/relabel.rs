//! Relabelling a stored tree in place with a policy (the layered-image merge when a derived
//! layer may have changed the policy, and derived-layer commits imported before their base's
//! policy was known): every entry is labelled as libostree's commit would label it, and only
//! the entries whose attributes change are rewritten; the others keep their objects.

use std::collections::HashMap;

use ostree_repo::format::{Checksum, S_IFDIR, S_IFMT};
use ostree_repo::label::label_meta;
use ostree_repo::{ContentSource, Labeler, MtreeEntry, MutableTree, RepoMode, Transaction};

/// What a relabel did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelabelStats {
    /// Files and symlinks looked at.
    pub files: u64,
    /// Directories looked at.
    pub dirs: u64,
    /// Content objects written with a new label.
    pub files_relabelled: u64,
    /// Directories given new metadata.
    pub dirs_relabelled: u64,
}

struct Ctx<'a, 't> {
    txn: &'a Transaction<'t>,
    labeler: &'a dyn Labeler,
    mode: RepoMode,
    /// (old object, path label) → new object: hardlinked or duplicate content is rewritten once.
    done: HashMap<(Checksum, Option<Vec<u8>>), Checksum>,
    stats: RelabelStats,
}

/// Relabels `root` (a tree in `txn`) with `labeler` as a commit into a repository of
/// `txn`'s mode would label it; returns whether anything changed. The tree is not written:
/// the caller writes it (only the changed directories are then new).
pub fn relabel_tree(
    txn: &Transaction<'_>,
    root: &mut MutableTree,
    labeler: &dyn Labeler,
) -> ostree_repo::Result<(bool, RelabelStats)> {
    let mut ctx = Ctx {
        txn,
        labeler,
        mode: txn.repo().mode(),
        done: HashMap::new(),
        stats: RelabelStats::default(),
    };
    let changed = relabel_dir(&mut ctx, root, "/", 0)?;
    Ok((changed, ctx.stats))
}

fn relabel_dir(
    ctx: &mut Ctx<'_, '_>,
    dir: &mut MutableTree,
    path: &str,
    depth: usize,
) -> ostree_repo::Result<bool> {
    if depth > ostree_repo::format::MAX_RECURSION {
        return Err(ostree_repo::RepoError::TooDeep {
            what: format!("directory {path:?}"),
            limit: ostree_repo::format::MAX_RECURSION,
        });
    }
    ctx.stats.dirs += 1;
    let mut meta = dir.meta(ctx.txn)?;
    let before = meta.xattrs.clone();
    // A directory's mode always has its type bits (dirmeta stores them).
    meta.mode = (meta.mode & !S_IFMT) | S_IFDIR;
    label_meta(ctx.labeler, ctx.mode, path, &mut meta)?;
    let mut changed = false;
    if meta.xattrs != before {
        dir.set_meta(meta);
        ctx.stats.dirs_relabelled += 1;
        changed = true;
    }
    let txn = ctx.txn;
    let below = dir.update_entries(txn, |name, e| {
        let p = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        match e {
            MtreeEntry::File(c) => match relabel_file(ctx, c, &p)? {
                Some(n) => {
                    *c = n;
                    Ok(true)
                }
                None => Ok(false),
            },
            MtreeEntry::Dir(d) => relabel_dir(ctx, d, &p, depth + 1),
        }
    })?;
    Ok(changed || below)
}

/// The relabelled object for content `c` at `path`, if its label changes.
fn relabel_file(
    ctx: &mut Ctx<'_, '_>,
    c: &Checksum,
    path: &str,
) -> ostree_repo::Result<Option<Checksum>> {
    ctx.stats.files += 1;
    // bare-user-only stores no file xattrs: nothing to relabel.
    if ctx.mode == RepoMode::BareUserOnly {
        return Ok(None);
    }
    let obj = ctx.txn.read_content(c)?;
    let mut meta = obj.meta.clone();
    label_meta(ctx.labeler, ctx.mode, path, &mut meta)?;
    if meta.xattrs == obj.meta.xattrs {
        return Ok(None);
    }
    let key = (*c, meta.xattrs.pairs().last().map(|(_, v)| v.clone()));
    if let Some(n) = ctx.done.get(&key) {
        return Ok(Some(*n));
    }
    let n = match (&obj.symlink_target, obj.reader) {
        (Some(t), _) => ctx
            .txn
            .write_content(None, &meta, ContentSource::Symlink { target: t })?,
        (None, Some(mut r)) => ctx.txn.write_content(
            None,
            &meta,
            ContentSource::Regular {
                size: obj.size,
                reader: &mut r,
            },
        )?,
        (None, None) => ctx
            .txn
            .write_content(None, &meta, ContentSource::Bytes(&[]))?,
    };
    ctx.stats.files_relabelled += 1;
    ctx.done.insert(key, n);
    Ok(Some(n))
}
