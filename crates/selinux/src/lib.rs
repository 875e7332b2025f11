//! SELinux labels for what ostree-container writes, as libostree gives them
//! (`ostree commit --selinux-policy`, `ostree_repo_commit_modifier_set_sepolicy_from_commit`):
//!
//! * [`SePolicy::open_root`] detects a policy in a directory exactly as `ostree_sepolicy_new_at`
//!   does (`etc/selinux`, else `usr/etc/selinux`; `config` → `SELINUX=` enabled? and
//!   `SELINUXTYPE=`; the type's `contexts/files/file_contexts` with its `.homedirs`, `.local`,
//!   `.subs` and `.subs_dist` companions, opened by libselinux; a binary policy must exist);
//!   [`SePolicy::from_tree`] does it for the `usr/etc/selinux` of a stored tree, as
//!   `ostree_sepolicy_new_from_commit` does.
//! * Lookups go through a native `file_contexts` matcher ([`fcontext`]) exact with respect to
//!   libselinux 3.4's `selabel_lookup_raw` (regex order, specificity sorting, file-type
//!   specifiers, `<<none>>`, substitutions; differential-tested against it), or through
//!   libselinux itself ([`LookupBackend::Libselinux`], and whenever the native matcher
//!   cannot mirror a policy exactly). [`SePolicy`] implements [`ostree_repo::Labeler`], the hook the importers
//!   and `commit` take.
//! * [`relabel_tree`] relabels a tree in place, rewriting only what changes.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]
#![deny(missing_docs)]

mod config;
mod error;
mod extract;
pub mod fcontext;
mod handle;
mod policy;
mod relabel;

pub use config::{SelinuxConfig, parse_config};
pub use error::SelinuxError;
pub use policy::{LabelingEpoch, LookupBackend, POLICY_DIR, PolicyId, SePolicy, policy_id};
pub use relabel::{RelabelStats, relabel_tree};
