//! SHA-256 object names and object types.

use std::fmt;
use std::str::FromStr;

use crate::error::FormatError;

/// A SHA-256 object checksum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// From 32 raw bytes, as stored in dirtrees and commits.
    pub fn from_bytes(b: &[u8]) -> Result<Self, FormatError> {
        let arr: [u8; 32] = b
            .try_into()
            .map_err(|_| FormatError::InvalidChecksumBytes(b.len()))?;
        Ok(Checksum(arr))
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        use sha2::Digest;
        Checksum(sha2::Sha256::digest(data).into())
    }

    /// Whether `s` is a valid checksum string (64 lowercase hex digits).
    pub fn is_valid_hex(s: &str) -> bool {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// Loose-object path relative to `objects/`: `XX/REST.ext`.
    pub fn loose_path(&self, ty: ObjectType) -> String {
        let h = self.to_hex();
        format!("{}/{}.{}", &h[..2], &h[2..], ty.extension())
    }
}

impl FromStr for Checksum {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, FormatError> {
        if !Self::is_valid_hex(s) {
            return Err(FormatError::InvalidChecksum(s.to_string()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| FormatError::InvalidChecksum(s.to_string()))?;
        Ok(Checksum(out))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_hex())
    }
}

/// The kinds of loose object (`OstreeObjectType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// Content: a regular file or symlink with its metadata.
    File,
    /// A directory listing.
    DirTree,
    /// Directory metadata.
    DirMeta,
    /// A commit.
    Commit,
    /// A marker for a deleted commit.
    TombstoneCommit,
    /// Detached commit metadata (signatures), named after its commit.
    CommitMeta,
    /// Payload link (reflink filesystems only).
    PayloadLink,
    /// An xattr set (bare-split-xattrs).
    FileXattrs,
    /// Link from a content object to its xattr set (bare-split-xattrs).
    FileXattrsLink,
}

impl ObjectType {
    /// All types, for enumeration.
    pub const ALL: [ObjectType; 9] = [
        ObjectType::File,
        ObjectType::DirTree,
        ObjectType::DirMeta,
        ObjectType::Commit,
        ObjectType::TombstoneCommit,
        ObjectType::CommitMeta,
        ObjectType::PayloadLink,
        ObjectType::FileXattrs,
        ObjectType::FileXattrsLink,
    ];

    /// File extension of the loose object (for content in bare modes; archive uses `filez`).
    pub fn extension(self) -> &'static str {
        match self {
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "tombstone-commit",
            ObjectType::CommitMeta => "commitmeta",
            ObjectType::PayloadLink => "payload-link",
            ObjectType::FileXattrs => "file-xattrs",
            ObjectType::FileXattrsLink => "file-xattrs-link",
        }
    }

    /// Parses an extension (`filez` maps to [`ObjectType::File`]).
    pub fn from_extension(ext: &str) -> Option<Self> {
        if ext == "filez" {
            return Some(ObjectType::File);
        }
        Self::ALL.into_iter().find(|t| t.extension() == ext)
    }

    /// Metadata objects are GVariant blobs (types 2..=6).
    pub fn is_metadata(self) -> bool {
        matches!(
            self,
            ObjectType::DirTree
                | ObjectType::DirMeta
                | ObjectType::Commit
                | ObjectType::TombstoneCommit
                | ObjectType::CommitMeta
        )
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A checksum and an object type: one loose object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    /// The object's name.
    pub checksum: Checksum,
    /// Its type.
    pub object_type: ObjectType,
}

impl ObjectName {
    /// Builds a name.
    pub fn new(checksum: Checksum, object_type: ObjectType) -> Self {
        ObjectName {
            checksum,
            object_type,
        }
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.checksum, self.object_type)
    }
}
