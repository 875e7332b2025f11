//! Whole-repository verification, like `ostree fsck` (ostree-repo-format §12), without
//! modifying anything.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use ostree_format::{Checksum, ObjectName, ObjectType, validate_metadata};
use rayon::prelude::*;

use crate::error::{RepoError, Result};
use crate::progress::{Progress, check_interrupt};
use crate::repo::Repo;

/// What fsck found.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Commits verified.
    pub commits: usize,
    /// Commits skipped because they are marked partial.
    pub partial_commits: Vec<Checksum>,
    /// Objects verified.
    pub objects_checked: usize,
    /// Objects whose content does not match their name or is invalid, with the reason.
    pub corrupt: Vec<(ObjectName, String)>,
    /// Missing objects, with a commit that needs them.
    pub missing: Vec<(ObjectName, Checksum)>,
    /// Refs that point at absent or corrupt commits.
    pub bad_refs: Vec<(String, String)>,
}

impl FsckReport {
    /// No corruption, nothing missing, all refs good.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty() && self.bad_refs.is_empty()
    }
}

impl Repo {
    /// Verifies every non-partial commit and every object reachable from one: metadata is
    /// re-hashed and re-validated, content re-read and re-hashed.
    pub fn fsck(&self, progress: &dyn Progress, interrupt: &AtomicBool) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        for (name, target) in self.list_refs()? {
            let obj = ObjectName::new(target, ObjectType::Commit);
            if !self.has_object(&obj)? && !self.is_commit_partial(&target) {
                report
                    .bad_refs
                    .push((name, format!("points at missing commit {target}")));
            }
        }
        let mut objects = BTreeSet::new();
        for commit in self.list_objects(ObjectType::Commit)? {
            check_interrupt(interrupt)?;
            if self.is_commit_partial(&commit) {
                report.partial_commits.push(commit);
                continue;
            }
            report.commits += 1;
            match self.traverse_commit(&commit) {
                Ok(r) => {
                    objects.extend(r.objects.iter().copied());
                    report
                        .missing
                        .extend(r.missing.into_iter().map(|m| (m, commit)));
                    report.corrupt.extend(r.corrupt);
                }
                Err(RepoError::InvalidObject { object, source }) => {
                    report.corrupt.push((object, source.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        let missing: BTreeSet<_> = report.missing.iter().map(|(m, _)| *m).collect();
        let to_check: Vec<_> = objects
            .into_iter()
            .filter(|o| !missing.contains(o))
            .collect();
        progress.start("verifying objects", Some(to_check.len() as u64));
        // Collected, not pushed under a lock: no worker's failure can lose a report.
        let found: Vec<Option<(ObjectName, String)>> = to_check
            .par_iter()
            .map(|obj| -> Result<Option<(ObjectName, String)>> {
                check_interrupt(interrupt)?;
                let reason = self.verify_object(obj)?;
                progress.inc(1);
                Ok(reason.map(|r| (*obj, r)))
            })
            .collect::<Result<_>>()?;
        report.objects_checked = to_check.len();
        let mut corrupt: Vec<_> = found.into_iter().flatten().collect();
        report.corrupt.append(&mut corrupt);
        report.corrupt.sort();
        report.corrupt.dedup();
        report.missing.sort();
        report.missing.dedup_by(|a, b| a.0 == b.0);
        Ok(report)
    }

    /// Re-verifies one object; `Some(reason)` if it is corrupt.
    pub fn verify_object(&self, obj: &ObjectName) -> Result<Option<String>> {
        if obj.object_type.is_metadata() {
            let bytes = match self.load_metadata_bytes(obj) {
                Ok(b) => b,
                Err(RepoError::InvalidObject { source, .. }) => {
                    return Ok(Some(source.to_string()));
                }
                Err(e) => return Err(e),
            };
            let actual = Checksum::digest(&bytes);
            if obj.object_type != ObjectType::CommitMeta && actual != obj.checksum {
                return Ok(Some(format!(
                    "checksum mismatch: content hashes to {actual}"
                )));
            }
            return Ok(validate_metadata(obj.object_type, &bytes)
                .err()
                .map(|e| e.to_string()));
        }
        let content = match self.read_content(&obj.checksum) {
            Ok(c) => c,
            Err(RepoError::InvalidObject { source, .. }) => return Ok(Some(source.to_string())),
            Err(e) => return Err(e),
        };
        if let Err(e) = content.meta.validate_content_mode() {
            return Ok(Some(e.to_string()));
        }
        let path = self.object_path(obj);
        match content.checksum() {
            Ok(actual) if actual == obj.checksum => Ok(None),
            Ok(actual) => Ok(Some(format!(
                "checksum mismatch: content hashes to {actual}"
            ))),
            // A corrupt compressed stream shows up as a read error.
            Err(e)
                if e.kind() == std::io::ErrorKind::InvalidInput
                    || e.kind() == std::io::ErrorKind::InvalidData =>
            {
                Ok(Some(format!("unreadable payload: {e}")))
            }
            Err(e) => Err(RepoError::Io {
                op: "read",
                path,
                source: e,
            }),
        }
    }
}
