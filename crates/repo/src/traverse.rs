//! Walking a commit: every reachable object, and which are missing (completeness). The same walk
//! serves the repository and a transaction (which also sees its staged objects).

use std::collections::{BTreeSet, HashSet};

use ostree_format::{Checksum, Commit, DirTree, ObjectName, ObjectType};

use crate::error::{RepoError, Result};
use crate::repo::Repo;
use crate::txn::Transaction;

/// What a commit reaches.
#[derive(Debug, Clone, Default)]
pub struct Reachable {
    /// Every object reachable from the commit (commit, dirtrees, dirmetas, content), present or not.
    pub objects: BTreeSet<ObjectName>,
    /// Reachable objects that are absent.
    pub missing: Vec<ObjectName>,
    /// Metadata objects that exist but do not parse (their children are unknown).
    pub corrupt: Vec<(ObjectName, String)>,
}

/// Where a walk looks objects up.
pub(crate) trait ObjectView {
    fn has(&self, name: &ObjectName) -> Result<bool>;
    fn load(&self, name: &ObjectName) -> Result<Vec<u8>>;
}

impl ObjectView for Repo {
    fn has(&self, name: &ObjectName) -> Result<bool> {
        self.has_object(name)
    }
    fn load(&self, name: &ObjectName) -> Result<Vec<u8>> {
        self.load_metadata_bytes(name)
    }
}

impl ObjectView for Transaction<'_> {
    fn has(&self, name: &ObjectName) -> Result<bool> {
        self.has_object(name)
    }
    fn load(&self, name: &ObjectName) -> Result<Vec<u8>> {
        self.load_metadata_bytes(name)
    }
}

/// Walks `commit` (not its parents). Missing and unparsable objects are reported, not fatal,
/// except that a missing or corrupt commit object is an error.
pub(crate) fn walk(view: &impl ObjectView, commit: &Checksum) -> Result<Reachable> {
    let cname = ObjectName::new(*commit, ObjectType::Commit);
    let c = Commit::parse(&view.load(&cname)?).map_err(|source| RepoError::InvalidObject {
        object: cname,
        source,
    })?;
    let mut r = Reachable::default();
    r.objects.insert(cname);
    let mut seen_trees = HashSet::new();
    let mut seen_content = HashSet::new();
    visit_meta(view, &c.root_meta, &mut r);
    let mut stack = vec![c.root_tree];
    while let Some(tree) = stack.pop() {
        if !seen_trees.insert(tree) {
            continue;
        }
        let name = ObjectName::new(tree, ObjectType::DirTree);
        r.objects.insert(name);
        let dt = match view.load(&name) {
            Ok(bytes) => match DirTree::parse(&bytes) {
                Ok(dt) => dt,
                Err(e) => {
                    r.corrupt.push((name, e.to_string()));
                    continue;
                }
            },
            Err(RepoError::ObjectNotFound(_)) => {
                r.missing.push(name);
                continue;
            }
            Err(RepoError::InvalidObject { source, .. }) => {
                r.corrupt.push((name, source.to_string()));
                continue;
            }
            Err(e) => return Err(e),
        };
        for f in &dt.files {
            if seen_content.insert(f.checksum) {
                let n = ObjectName::new(f.checksum, ObjectType::File);
                r.objects.insert(n);
                if !view.has(&n)? {
                    r.missing.push(n);
                }
            }
        }
        for d in &dt.dirs {
            visit_meta(view, &d.meta, &mut r);
            stack.push(d.tree);
        }
    }
    r.missing.sort();
    r.missing.dedup();
    Ok(r)
}

fn visit_meta(view: &impl ObjectView, meta: &Checksum, r: &mut Reachable) {
    let n = ObjectName::new(*meta, ObjectType::DirMeta);
    if r.objects.insert(n) && !matches!(view.has(&n), Ok(true)) {
        r.missing.push(n);
    }
}

/// The missing objects of `commit` from a walk (`walk` runs only if the commit object itself is
/// present); a corrupt dirtree counts as missing (its subtree cannot be proven present).
pub(crate) fn missing_of(
    view: &impl ObjectView,
    commit: &Checksum,
    walk: impl FnOnce() -> Result<Reachable>,
) -> Result<Vec<ObjectName>> {
    let name = ObjectName::new(*commit, ObjectType::Commit);
    if !view.has(&name)? {
        return Ok(vec![name]);
    }
    let r = walk()?;
    let mut missing = r.missing;
    missing.extend(r.corrupt.into_iter().map(|(n, _)| n));
    Ok(missing)
}

impl Repo {
    /// Walks `commit` (not its parents). Missing and unparsable objects are reported, not fatal,
    /// except that a missing or corrupt commit object is an error.
    pub fn traverse_commit(&self, commit: &Checksum) -> Result<Reachable> {
        walk(self, commit)
    }

    /// Objects reachable from `commit` that are absent; empty means the commit is complete.
    /// A corrupt dirtree counts as missing (its subtree cannot be proven present).
    pub fn find_missing(&self, commit: &Checksum) -> Result<Vec<ObjectName>> {
        missing_of(self, commit, || walk(self, commit))
    }
}
