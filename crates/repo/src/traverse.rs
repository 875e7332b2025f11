//! Walking a commit: every reachable object, and which are missing (completeness). The same walk
//! serves the repository and a transaction (which also sees its staged objects).

use std::collections::{BTreeSet, HashMap};

use ostree_format::{Checksum, Commit, DirTree, MAX_RECURSION, ObjectName, ObjectType};

use crate::error::{RepoError, Result, too_deep};
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
/// except that a missing or corrupt commit object is an error, and so is a dirtree nested deeper
/// than [`MAX_RECURSION`] below the root ([`RepoError::TooDeep`], as libostree refuses it).
///
/// The walk is iterative (its stack is on the heap and at most `MAX_RECURSION + 1` frames deep)
/// and visits each dirtree once: the height of every finished subtree is remembered, so a
/// subtree shared at several depths is still checked at the deepest one.
pub(crate) fn walk(view: &impl ObjectView, commit: &Checksum) -> Result<Reachable> {
    let cname = ObjectName::new(*commit, ObjectType::Commit);
    let c = Commit::parse(&view.load(&cname)?).map_err(|source| RepoError::InvalidObject {
        object: cname,
        source,
    })?;
    let mut r = Reachable::default();
    r.objects.insert(cname);
    visit_meta(view, &c.root_meta, &mut r);
    /// A dirtree being walked: its subdirectories' trees, the next one to enter, and the
    /// height of what is below it so far.
    struct Frame {
        tree: Checksum,
        dirs: Vec<Checksum>,
        next: usize,
        height: usize,
    }
    // Height (levels of dirtrees below) of every dirtree walked, or 0 if absent or corrupt.
    let mut heights: HashMap<Checksum, usize> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut enter = Some(c.root_tree);
    loop {
        if let Some(tree) = enter.take() {
            let depth = stack.len();
            let name = ObjectName::new(tree, ObjectType::DirTree);
            let known = heights.get(&tree).copied();
            if depth + known.unwrap_or(0) > MAX_RECURSION {
                return Err(too_deep(format!("dirtree {tree}")));
            }
            let child_height = match known {
                Some(h) => Some(h),
                None => {
                    r.objects.insert(name);
                    let dt = match view.load(&name) {
                        Ok(bytes) => match DirTree::parse(&bytes) {
                            Ok(dt) => Some(dt),
                            Err(e) => {
                                r.corrupt.push((name, e.to_string()));
                                None
                            }
                        },
                        Err(RepoError::ObjectNotFound(_)) => {
                            r.missing.push(name);
                            None
                        }
                        Err(RepoError::InvalidObject { source, .. }) => {
                            r.corrupt.push((name, source.to_string()));
                            None
                        }
                        Err(e) => return Err(e),
                    };
                    match dt {
                        None => {
                            heights.insert(tree, 0);
                            Some(0)
                        }
                        Some(dt) => {
                            for f in &dt.files {
                                // The object set is also the "seen" set: one entry per object.
                                let n = ObjectName::new(f.checksum, ObjectType::File);
                                if r.objects.insert(n) && !view.has(&n)? {
                                    r.missing.push(n);
                                }
                            }
                            for d in &dt.dirs {
                                visit_meta(view, &d.meta, &mut r);
                            }
                            stack.push(Frame {
                                tree,
                                dirs: dt.dirs.iter().map(|d| d.tree).collect(),
                                next: 0,
                                height: 0,
                            });
                            None
                        }
                    }
                }
            };
            if let (Some(h), Some(parent)) = (child_height, stack.last_mut()) {
                parent.height = parent.height.max(h + 1);
            }
        }
        let Some(top) = stack.last_mut() else {
            break;
        };
        if let Some(next) = top.dirs.get(top.next) {
            enter = Some(*next);
            top.next += 1;
            continue;
        }
        if let Some(done) = stack.pop() {
            heights.insert(done.tree, done.height);
            if let Some(parent) = stack.last_mut() {
                parent.height = parent.height.max(done.height + 1);
            }
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
