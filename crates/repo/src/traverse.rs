//! Walking a commit: every reachable object, and which are missing (completeness).

use std::collections::{BTreeSet, HashSet};

use ostree_format::{Checksum, ObjectName, ObjectType};

use crate::error::{RepoError, Result};
use crate::repo::Repo;

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

impl Repo {
    /// Walks `commit` (not its parents). Missing and unparsable objects are reported, not fatal,
    /// except that a missing or corrupt commit object is an error.
    pub fn traverse_commit(&self, commit: &Checksum) -> Result<Reachable> {
        let c = self.load_commit(commit)?;
        let mut r = Reachable::default();
        r.objects
            .insert(ObjectName::new(*commit, ObjectType::Commit));
        let mut seen_trees = HashSet::new();
        let mut seen_content = HashSet::new();
        self.visit_meta(&c.root_meta, &mut r);
        let mut stack = vec![c.root_tree];
        while let Some(tree) = stack.pop() {
            if !seen_trees.insert(tree) {
                continue;
            }
            let name = ObjectName::new(tree, ObjectType::DirTree);
            r.objects.insert(name);
            let dt = match self.load_dirtree(&tree) {
                Ok(dt) => dt,
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
                    if !self.has_object(&n)? {
                        r.missing.push(n);
                    }
                }
            }
            for d in &dt.dirs {
                self.visit_meta(&d.meta, &mut r);
                stack.push(d.tree);
            }
        }
        r.missing.sort();
        r.missing.dedup();
        Ok(r)
    }

    fn visit_meta(&self, meta: &Checksum, r: &mut Reachable) {
        let n = ObjectName::new(*meta, ObjectType::DirMeta);
        if r.objects.insert(n) && !matches!(self.has_object(&n), Ok(true)) {
            r.missing.push(n);
        }
    }

    /// Objects reachable from `commit` that are absent; empty means the commit is complete.
    /// A corrupt dirtree counts as missing (its subtree cannot be proven present).
    pub fn find_missing(&self, commit: &Checksum) -> Result<Vec<ObjectName>> {
        let name = ObjectName::new(*commit, ObjectType::Commit);
        if !self.has_object(&name)? {
            return Ok(vec![name]);
        }
        let r = self.traverse_commit(commit)?;
        let mut missing = r.missing;
        missing.extend(r.corrupt.into_iter().map(|(n, _)| n));
        Ok(missing)
    }
}
