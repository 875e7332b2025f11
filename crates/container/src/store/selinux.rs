//! SELinux labels of what a store pull writes, as the reference gives them: derived-layer
//! commits labelled with the base commit's policy (or that of `PullOptions::sepolicy_commit`
//! for images without an ostree base), and, when derived layers exist, the merge tree
//! relabelled from the policy of the merged tree if a layer changed it. An image without a
//! policy gets no labels.
//!
//! Layers are labelled after the pull's layers are all in: derived layers are imported while
//! the base is still arriving, so its policy is not known then. A layer commit records the
//! labelling it got (`ostree_tar::SELINUX_POLICY_KEY`); one already labelled with the same
//! policy is kept as is (a later pull of another image on the same base pays nothing).

use ostree_repo::format::gvariant::Value;
use ostree_repo::format::{Checksum, MetaDict};
use ostree_repo::{CommitSpec, Labeler, MutableTree, RepoError, Transaction};
use ostree_selinux::{PolicyId, SePolicy, SelinuxError, policy_id, relabel_tree};

use super::merge::load_commit;

/// The policy derived layers are labelled with: the base's, else the `sepolicy_commit`'s.
pub(super) fn layer_policy(
    txn: &Transaction<'_>,
    base: Option<Checksum>,
    sepolicy_commit: Option<Checksum>,
) -> Result<Option<SePolicy>, SelinuxError> {
    match base.or(sepolicy_commit) {
        Some(c) => SePolicy::from_commit(txn, &c),
        None => Ok(None),
    }
}

/// `commit` (a derived layer) labelled with `policy`: the same commit if it already records
/// that labelling, else a new one with only the entries whose label changes rewritten.
pub(super) fn label_layer(
    txn: &Transaction<'_>,
    commit: &Checksum,
    policy: &SePolicy,
) -> Result<Checksum, RepoError> {
    let c = load_commit(txn, commit)?;
    let id = Labeler::id(policy);
    if c.metadata.get_str(ostree_tar::SELINUX_POLICY_KEY) == Some(id.as_str()) {
        return Ok(*commit);
    }
    let mut root = MutableTree::from_commit(txn, commit)?;
    relabel_tree(txn, &mut root, policy)?;
    let (tree, meta) = root.write(txn)?;
    let mut md: Vec<(String, Value)> = c
        .metadata
        .0
        .into_iter()
        .filter(|(k, _)| k != ostree_tar::SELINUX_POLICY_KEY)
        .collect();
    md.push((ostree_tar::SELINUX_POLICY_KEY.to_string(), Value::Str(id)));
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let mut spec = CommitSpec::new();
    spec.subject = c.subject;
    spec.body = c.body;
    spec.timestamp = Some(c.timestamp);
    spec.parent = c.parent;
    spec.metadata = MetaDict(md);
    txn.write_commit(tree, meta, &spec)
}

/// Relabels the merged `root` from its own policy unless that is the policy the layers were
/// labelled with (`layers_policy`): then every entry already has its label (the base's from
/// its build, the layers' from [`label_layer`]) and nothing is read.
pub(super) fn relabel_merge(
    txn: &Transaction<'_>,
    root: &mut MutableTree,
    layers_policy: Option<PolicyId>,
) -> Result<(), RepoError> {
    let merged = policy_id(txn, root).map_err(selinux_to_repo)?;
    if merged.is_none() || merged == layers_policy {
        return Ok(());
    }
    if let Some(p) = SePolicy::from_tree(txn, root).map_err(selinux_to_repo)? {
        let (_, stats) = relabel_tree(txn, root, &p)?;
        tracing::debug!(?stats, "relabelled the merge tree from its own policy");
    }
    Ok(())
}

/// The label of a policy failure as a repository error (the merge's error type).
pub(super) fn selinux_to_repo(e: SelinuxError) -> RepoError {
    RepoError::Label(ostree_repo::LabelError {
        path: ostree_selinux::POLICY_DIR.to_string(),
        source: Box::new(e),
    })
}
