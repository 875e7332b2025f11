//! OSTree object formats, with no I/O: GVariant codecs for every ostree type, content and
//! metadata checksums, the validation rules libostree applies (and the stricter ones we add),
//! and ref names. Specification: `shared/docs/ostree-repo-format.md` §3–§9.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]
#![deny(missing_docs)]

mod checksum;
mod content;
mod error;
pub mod gvariant;
mod objects;
pub mod refs;
mod xattrs;

pub use checksum::{Checksum, ObjectName, ObjectType};
pub use content::{ContentHasher, regular_checksum, symlink_checksum};
pub use error::{FormatError, FormatReason};
pub use objects::*;
pub use ostree_errors::{Classify, ErrorKind};
pub use xattrs::Xattrs;

/// libostree's `OSTREE_MAX_RECURSION`: the deepest dirtree nesting it accepts. The root dirtree
/// is at depth 0 and libostree's pull refuses a dirtree at a depth above this ("Exceeded maximum
/// recursion"), so a path may have at most this many directory components.
pub const MAX_RECURSION: usize = 256;
