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
    stats: RelabelStats,
}

/// Relabels `root` (a tree in `txn`) with `labeler` as a commit into a repository of
/// `txn`'s mode would label it; returns whether anything changed. The tree is not written:
/// the caller writes it (only the changed directories are then new).
///
/// Files are labelled in three steps so that object reads and writes (the cost once lookups
/// are native) run on every core: the files are listed in walk order; their labels are
/// computed and the changed objects rewritten in parallel, each distinct (object, label)
/// once; a second walk relabels the directories and puts the new objects in place.
pub fn relabel_tree(
    txn: &Transaction<'_>,
    root: &mut MutableTree,
    labeler: &dyn Labeler,
) -> ostree_repo::Result<(bool, RelabelStats)> {
    let mode = txn.repo().mode();
    let mut files = Vec::new();
    collect(txn, root, "/", 0, &mut files)?;
    let mut stats = RelabelStats {
        files: files.len() as u64,
        ..RelabelStats::default()
    };
    let new = if mode == RepoMode::BareUserOnly {
        // bare-user-only stores no file xattrs: nothing to relabel.
        vec![None; files.len()]
    } else {
        let (new, written) = label_files(txn, labeler, mode, &files)?;
        stats.files_relabelled = written;
        new
    };
    let mut ctx = Ctx {
        txn,
        labeler,
        mode,
        stats,
    };
    let mut results = new.into_iter();
    let changed = relabel_dir(&mut ctx, root, "/", 0, &mut results)?;
    Ok((changed, ctx.stats))
}

fn child_path(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// Every file and symlink below `dir`, (path, object), in walk order.
fn collect(
    txn: &Transaction<'_>,
    dir: &mut MutableTree,
    path: &str,
    depth: usize,
    out: &mut Vec<(String, Checksum)>,
) -> ostree_repo::Result<()> {
    if depth > ostree_repo::format::MAX_RECURSION {
        return Err(ostree_repo::RepoError::TooDeep {
            what: format!("directory {path:?}"),
            limit: ostree_repo::format::MAX_RECURSION,
        });
    }
    dir.update_entries(txn, |name, e| {
        let p = child_path(path, name);
        match e {
            MtreeEntry::File(c) => out.push((p, *c)),
            MtreeEntry::Dir(d) => collect(txn, d, &p, depth + 1, out)?,
        }
        Ok(false)
    })?;
    Ok(())
}

/// Runs `f` on every index of `0..n` on up to `available_parallelism` threads; the results
/// in index order, or the first error.
fn par_map<T: Send>(
    n: usize,
    f: impl Fn(usize) -> ostree_repo::Result<T> + Sync,
) -> ostree_repo::Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, 8)
        .min(n.max(1));
    if threads <= 1 {
        return (0..n).map(&f).collect();
    }
    let chunk = n.div_ceil(threads);
    let parts: Vec<ostree_repo::Result<Vec<T>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || (t * chunk..((t + 1) * chunk).min(n)).map(f).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ostree_repo::RepoError::Internal(
                        "a relabel thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(n);
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// The relabelled object of each file (`None`: its label does not change), and how many
/// objects were written.
fn label_files(
    txn: &Transaction<'_>,
    labeler: &dyn Labeler,
    mode: RepoMode,
    files: &[(String, Checksum)],
) -> ostree_repo::Result<(Vec<Option<Checksum>>, u64)> {
    // The new metadata of each file whose label changes.
    let metas = par_map(files.len(), |i| {
        let (path, c) = &files[i];
        let obj = txn.read_content(c)?;
        let mut meta = obj.meta.clone();
        label_meta(labeler, mode, path, &mut meta)?;
        Ok((meta.xattrs != obj.meta.xattrs).then_some(meta))
    })?;
    // Hardlinked or duplicate content with the same new label is written once.
    type Key = (Checksum, Option<Vec<u8>>);
    let mut unique: HashMap<Key, usize> = HashMap::new();
    let mut jobs: Vec<(Checksum, &ostree_repo::format::FileMeta)> = Vec::new();
    let mut job_of = Vec::with_capacity(files.len());
    for (i, m) in metas.iter().enumerate() {
        job_of.push(m.as_ref().map(|m| {
            let key = (files[i].1, m.xattrs.pairs().last().map(|(_, v)| v.clone()));
            *unique.entry(key).or_insert_with(|| {
                jobs.push((files[i].1, m));
                jobs.len() - 1
            })
        }));
    }
    let written = par_map(jobs.len(), |j| {
        let (c, meta) = jobs[j];
        let obj = txn.read_content(&c)?;
        match (&obj.symlink_target, obj.reader) {
            (Some(t), _) => txn.write_content(None, meta, ContentSource::Symlink { target: t }),
            (None, Some(mut r)) => txn.write_content(
                None,
                meta,
                ContentSource::Regular {
                    size: obj.size,
                    reader: &mut r,
                },
            ),
            (None, None) => txn.write_content(None, meta, ContentSource::Bytes(&[])),
        }
    })?;
    let new = job_of.into_iter().map(|j| j.map(|j| written[j])).collect();
    Ok((new, jobs.len() as u64))
}

fn relabel_dir(
    ctx: &mut Ctx<'_, '_>,
    dir: &mut MutableTree,
    path: &str,
    depth: usize,
    results: &mut std::vec::IntoIter<Option<Checksum>>,
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
    let below = dir.update_entries(txn, |name, e| match e {
        MtreeEntry::File(c) => {
            let next = results.next().ok_or_else(|| {
                ostree_repo::RepoError::Internal("relabel: the tree changed between walks".into())
            })?;
            match next {
                Some(n) => {
                    *c = n;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        MtreeEntry::Dir(d) => relabel_dir(ctx, d, &child_path(path, name), depth + 1, results),
    })?;
    Ok(changed || below)
}
