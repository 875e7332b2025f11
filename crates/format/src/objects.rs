//! Typed ostree objects and their exact GVariant encodings (ostree-repo-format §4.2, §5, §7).
//!
//! ostree stores every integer it owns pre-swapped to big-endian; these types hold the real
//! values and do the swapping at the boundary.

use crate::checksum::Checksum;
use crate::error::FormatError;
use crate::gvariant::{Type, Value, from_bytes_normal};
use crate::xattrs::{Xattrs, xattr_elem_type};

/// `OSTREE_MAX_METADATA_SIZE`: 10 MiB.
pub const MAX_METADATA_SIZE: u64 = 10 * 1024 * 1024;

/// File type bits.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;

fn be32(v: u32) -> Value {
    Value::U32(v.swap_bytes())
}

fn ay() -> Type {
    Type::Array(Box::new(Type::Byte))
}

fn get_u32(v: Option<&Value>) -> Result<u32, &'static str> {
    match v {
        Some(Value::U32(x)) => Ok(x.swap_bytes()),
        _ => Err("expected u32"),
    }
}

fn check_size(data: &[u8]) -> Result<(), FormatError> {
    let size = data.len() as u64;
    if size > MAX_METADATA_SIZE {
        return Err(FormatError::TooLarge {
            size,
            limit: MAX_METADATA_SIZE,
        });
    }
    Ok(())
}

/// uid, gid, mode and xattrs: the metadata of a content object or a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileMeta {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full `st_mode`, including the file type bits.
    pub mode: u32,
    /// Extended attributes.
    pub xattrs: Xattrs,
}

impl FileMeta {
    /// Whether the mode says symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    /// Whether the mode says regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    /// Whether the mode says directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Checks a content object's mode as libostree does, plus the native rule that symlinks are
    /// exactly `S_IFLNK|0777`.
    pub fn validate_content_mode(&self) -> Result<(), FormatError> {
        let m = self.mode;
        if m & !(S_IFMT | 0o7777) != 0 || !(self.is_regular() || self.is_symlink()) {
            return Err(FormatError::InvalidMode {
                mode: m,
                what: "content object",
            });
        }
        if self.is_symlink() && m != S_IFLNK | 0o777 {
            return Err(FormatError::InvalidMode {
                mode: m,
                what: "symlink (must be 0120777)",
            });
        }
        Ok(())
    }

    /// `(uuua(ayay))`: dirmeta and bare-user `user.ostreemeta`.
    pub fn to_dirmeta_value(&self) -> Value {
        Value::Tuple(vec![
            be32(self.uid),
            be32(self.gid),
            be32(self.mode),
            self.xattrs.to_value(),
        ])
    }

    /// Serialised `(uuua(ayay))`.
    pub fn to_dirmeta_bytes(&self) -> Vec<u8> {
        self.to_dirmeta_value().to_bytes()
    }

    /// Parses `(uuua(ayay))` (normal form required).
    pub fn from_dirmeta_bytes(data: &[u8]) -> Result<Self, FormatError> {
        check_size(data)?;
        let v = from_bytes_normal(&dirmeta_type(), data)?;
        let Value::Tuple(m) = &v else {
            return Err(malformed(&dirmeta_type(), "not a tuple"));
        };
        let bad = |r| malformed(&dirmeta_type(), r);
        Ok(FileMeta {
            uid: get_u32(m.first()).map_err(bad)?,
            gid: get_u32(m.get(1)).map_err(bad)?,
            mode: get_u32(m.get(2)).map_err(bad)?,
            xattrs: Xattrs::from_value(m.get(3).ok_or_else(|| bad("missing xattrs"))?)?,
        })
    }

    /// Parses and validates a `.dirmeta` object (directory mode, allowed bits, canonical xattrs).
    pub fn parse_dirmeta(data: &[u8]) -> Result<Self, FormatError> {
        let m = Self::from_dirmeta_bytes(data)?;
        if !m.is_dir() || m.mode & !(S_IFMT | 0o7777) != 0 {
            return Err(FormatError::InvalidMode {
                mode: m.mode,
                what: "directory",
            });
        }
        m.xattrs.check_canonical()?;
        Ok(m)
    }
}

fn malformed(ty: &Type, reason: &'static str) -> FormatError {
    FormatError::Malformed {
        type_string: ty.to_string(),
        reason,
    }
}

/// `(uuua(ayay))`
pub fn dirmeta_type() -> Type {
    Type::Tuple(vec![
        Type::U32,
        Type::U32,
        Type::U32,
        Type::Array(Box::new(xattr_elem_type())),
    ])
}

/// `(uuuusa(ayay))`
pub fn file_header_type() -> Type {
    Type::Tuple(vec![
        Type::U32,
        Type::U32,
        Type::U32,
        Type::U32,
        Type::Str,
        Type::Array(Box::new(xattr_elem_type())),
    ])
}

/// `(tuuuusa(ayay))`
pub fn archive_header_type() -> Type {
    let mut m = vec![Type::U64];
    if let Type::Tuple(rest) = file_header_type() {
        m.extend(rest);
    }
    Type::Tuple(m)
}

/// The members of `(uuuusa(ayay))`: rdev is always 0, the target empty for regular files.
fn file_header_members(meta: &FileMeta, symlink_target: Option<&str>) -> Vec<Value> {
    vec![
        be32(meta.uid),
        be32(meta.gid),
        be32(meta.mode),
        be32(0),
        Value::Str(symlink_target.unwrap_or("").to_string()),
        meta.xattrs.to_value(),
    ]
}

/// The content file header `(uuuusa(ayay))` that is hashed before the payload.
pub fn file_header(meta: &FileMeta, symlink_target: Option<&str>) -> Vec<u8> {
    Value::Tuple(file_header_members(meta, symlink_target)).to_bytes()
}

/// The `.filez` header `(tuuuusa(ayay))`: the payload size, then the file header's members;
/// `size` is 0 for symlinks.
pub fn archive_header(size: u64, meta: &FileMeta, symlink_target: Option<&str>) -> Vec<u8> {
    let mut members = vec![Value::U64(size.swap_bytes())];
    members.extend(file_header_members(meta, symlink_target));
    Value::Tuple(members).to_bytes()
}

/// 4-byte big-endian length, 4 NUL bytes, then the header: the framing used in the content hash
/// stream and at the start of `.filez` objects.
pub fn length_prefixed(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 8);
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(header);
    out
}

/// A parsed content header: metadata plus the symlink target, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHeader {
    /// Payload size (archive headers only; 0 otherwise).
    pub size: u64,
    /// Ownership, mode, xattrs.
    pub meta: FileMeta,
    /// Target for symlinks.
    pub symlink_target: Option<String>,
}

/// Parses an archive header `(tuuuusa(ayay))` (the part after the 8-byte length prefix).
pub fn parse_archive_header(data: &[u8]) -> Result<ContentHeader, FormatError> {
    let ty = archive_header_type();
    let v = from_bytes_normal(&ty, data)?;
    let Value::Tuple(m) = &v else {
        return Err(malformed(&ty, "not a tuple"));
    };
    let bad = |r| malformed(&ty, r);
    let size = match m.first() {
        Some(Value::U64(s)) => s.swap_bytes(),
        _ => return Err(bad("expected t")),
    };
    let meta = FileMeta {
        uid: get_u32(m.get(1)).map_err(bad)?,
        gid: get_u32(m.get(2)).map_err(bad)?,
        mode: get_u32(m.get(3)).map_err(bad)?,
        xattrs: Xattrs::from_value(m.get(6).ok_or_else(|| bad("missing xattrs"))?)?,
    };
    let target = m
        .get(5)
        .and_then(Value::as_str)
        .ok_or_else(|| bad("expected s"))?;
    let symlink_target = meta.is_symlink().then(|| target.to_string());
    Ok(ContentHeader {
        size,
        meta,
        symlink_target,
    })
}

/// A symlink target must be non-empty, valid UTF-8 and NUL-free to fit the `s` header field.
pub fn validate_symlink_target(target: &str) -> Result<(), FormatError> {
    if target.is_empty() {
        return Err(FormatError::InvalidSymlinkTarget("empty"));
    }
    if target.contains('\0') {
        return Err(FormatError::InvalidSymlinkTarget("contains NUL"));
    }
    Ok(())
}

/// Validates one name inside a dirtree (`ot_util_filename_validate`, plus non-empty).
pub fn validate_filename(name: &str) -> Result<(), FormatError> {
    let err = |why| Err(FormatError::InvalidFileName(name.to_string(), why));
    if name.is_empty() {
        return err("empty");
    }
    if name == "." || name == ".." {
        return err("'.' and '..' are not allowed");
    }
    if name.contains('/') {
        return err("contains '/'");
    }
    if name.contains('\0') {
        return err("contains NUL");
    }
    Ok(())
}

/// A file entry of a dirtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Name in the directory.
    pub name: String,
    /// Content object checksum.
    pub checksum: Checksum,
}

/// A subdirectory entry of a dirtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDir {
    /// Name in the directory.
    pub name: String,
    /// The subdirectory's dirtree.
    pub tree: Checksum,
    /// The subdirectory's dirmeta.
    pub meta: Checksum,
}

/// A directory listing `(a(say)a(sayay))`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirTree {
    /// Files, sorted by name.
    pub files: Vec<TreeFile>,
    /// Subdirectories, sorted by name.
    pub dirs: Vec<TreeDir>,
}

/// `(a(say)a(sayay))`
pub fn dirtree_type() -> Type {
    Type::Tuple(vec![
        Type::Array(Box::new(Type::Tuple(vec![Type::Str, ay()]))),
        Type::Array(Box::new(Type::Tuple(vec![Type::Str, ay(), ay()]))),
    ])
}

impl DirTree {
    /// Serialises (entries must already be sorted; [`DirTree::sort`] does that).
    pub fn to_bytes(&self) -> Vec<u8> {
        let files = Value::Array(
            Type::Tuple(vec![Type::Str, ay()]),
            self.files
                .iter()
                .map(|f| {
                    Value::Tuple(vec![
                        Value::Str(f.name.clone()),
                        Value::Bytes(f.checksum.0.to_vec()),
                    ])
                })
                .collect(),
        );
        let dirs = Value::Array(
            Type::Tuple(vec![Type::Str, ay(), ay()]),
            self.dirs
                .iter()
                .map(|d| {
                    Value::Tuple(vec![
                        Value::Str(d.name.clone()),
                        Value::Bytes(d.tree.0.to_vec()),
                        Value::Bytes(d.meta.0.to_vec()),
                    ])
                })
                .collect(),
        );
        Value::Tuple(vec![files, dirs]).to_bytes()
    }

    /// Sorts both arrays by name bytes (`strcmp` order), as ostree builds them.
    pub fn sort(&mut self) {
        self.files
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        self.dirs
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    }

    /// Parses a `.dirtree` object and applies the strict native rules: valid names, both arrays
    /// strictly sorted, no name in both arrays, 32-byte checksums.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_size(data)?;
        let ty = dirtree_type();
        let v = from_bytes_normal(&ty, data)?;
        let bad = |r| malformed(&ty, r);
        let Value::Tuple(m) = &v else {
            return Err(bad("not a tuple"));
        };
        let (Some(Value::Array(_, files)), Some(Value::Array(_, dirs))) = (m.first(), m.get(1))
        else {
            return Err(bad("expected two arrays"));
        };
        let mut tree = DirTree::default();
        for f in files {
            let Value::Tuple(e) = f else {
                return Err(bad("bad file entry"));
            };
            let (Some(Value::Str(name)), Some(Value::Bytes(c))) = (e.first(), e.get(1)) else {
                return Err(bad("bad file entry"));
            };
            tree.files.push(TreeFile {
                name: name.clone(),
                checksum: Checksum::from_bytes(c)?,
            });
        }
        for d in dirs {
            let Value::Tuple(e) = d else {
                return Err(bad("bad dir entry"));
            };
            let (Some(Value::Str(name)), Some(Value::Bytes(t)), Some(Value::Bytes(mc))) =
                (e.first(), e.get(1), e.get(2))
            else {
                return Err(bad("bad dir entry"));
            };
            tree.dirs.push(TreeDir {
                name: name.clone(),
                tree: Checksum::from_bytes(t)?,
                meta: Checksum::from_bytes(mc)?,
            });
        }
        tree.validate()?;
        Ok(tree)
    }

    /// The strict structural rules (see [`DirTree::parse`]).
    pub fn validate(&self) -> Result<(), FormatError> {
        for n in self
            .files
            .iter()
            .map(|f| &f.name)
            .chain(self.dirs.iter().map(|d| &d.name))
        {
            validate_filename(n)?;
        }
        let sorted = |names: Vec<&[u8]>, what: &str| -> Result<(), FormatError> {
            for w in names.windows(2) {
                if w[0] >= w[1] {
                    let kind = if w[0] == w[1] {
                        "duplicate"
                    } else {
                        "unsorted"
                    };
                    return Err(FormatError::InvalidDirTree(format!(
                        "{kind} {what} entry {:?}",
                        String::from_utf8_lossy(w[1])
                    )));
                }
            }
            Ok(())
        };
        sorted(
            self.files.iter().map(|f| f.name.as_bytes()).collect(),
            "file",
        )?;
        sorted(
            self.dirs.iter().map(|d| d.name.as_bytes()).collect(),
            "directory",
        )?;
        // Both arrays are sorted, so a merge finds names present in both.
        let (mut i, mut j) = (0, 0);
        while i < self.files.len() && j < self.dirs.len() {
            match self.files[i]
                .name
                .as_bytes()
                .cmp(self.dirs[j].name.as_bytes())
            {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    return Err(FormatError::InvalidDirTree(format!(
                        "{:?} is both a file and a directory",
                        self.files[i].name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Commit (or detached) metadata `a{sv}`, in the order given (the order is hashed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetaDict(pub Vec<(String, Value)>);

impl MetaDict {
    /// The value of `key` (first occurrence).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The string value of `key`, if it is one.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Appends a key (does not replace an existing one).
    pub fn push(&mut self, key: impl Into<String>, value: Value) {
        self.0.push((key.into(), value));
    }

    /// The `a{sv}` value.
    pub fn to_value(&self) -> Value {
        Value::Array(
            Type::DictEntry(Box::new(Type::Str), Box::new(Type::Variant)),
            self.0
                .iter()
                .map(|(k, v)| {
                    Value::DictEntry(
                        Box::new(Value::Str(k.clone())),
                        Box::new(Value::Variant(Box::new(v.clone()))),
                    )
                })
                .collect(),
        )
    }

    /// Serialised `a{sv}`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_value().to_bytes()
    }

    /// From a decoded `a{sv}`.
    pub fn from_value(v: &Value) -> Result<Self, FormatError> {
        let ty = Type::parse("a{sv}")?;
        let Value::Array(_, elems) = v else {
            return Err(malformed(&ty, "not an array"));
        };
        let mut out = Vec::with_capacity(elems.len());
        for e in elems {
            let Value::DictEntry(k, val) = e else {
                return Err(malformed(&ty, "not a dict entry"));
            };
            let (Value::Str(k), Value::Variant(inner)) = (k.as_ref(), val.as_ref()) else {
                return Err(malformed(&ty, "not a {sv} entry"));
            };
            out.push((k.clone(), (**inner).clone()));
        }
        Ok(MetaDict(out))
    }

    /// Parses `a{sv}` bytes (`.commitmeta`), normal form required.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_size(data)?;
        Self::from_value(&from_bytes_normal(&Type::parse("a{sv}")?, data)?)
    }
}

/// A commit `(a{sv}aya(say)sstayay)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// Metadata, in stored order.
    pub metadata: MetaDict,
    /// Parent commit.
    pub parent: Option<Checksum>,
    /// Related objects (never written by libostree; tolerated on read).
    pub related: Vec<(String, Checksum)>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Seconds since the epoch.
    pub timestamp: u64,
    /// Root dirtree.
    pub root_tree: Checksum,
    /// Root dirmeta.
    pub root_meta: Checksum,
}

/// `(a{sv}aya(say)sstayay)`
pub fn commit_type() -> Type {
    Type::Tuple(vec![
        Type::Array(Box::new(Type::DictEntry(
            Box::new(Type::Str),
            Box::new(Type::Variant),
        ))),
        ay(),
        Type::Array(Box::new(Type::Tuple(vec![Type::Str, ay()]))),
        Type::Str,
        Type::Str,
        Type::U64,
        ay(),
        ay(),
    ])
}

impl Commit {
    /// Serialises the commit.
    pub fn to_bytes(&self) -> Vec<u8> {
        Value::Tuple(vec![
            self.metadata.to_value(),
            Value::Bytes(self.parent.map(|p| p.0.to_vec()).unwrap_or_default()),
            Value::Array(
                Type::Tuple(vec![Type::Str, ay()]),
                self.related
                    .iter()
                    .map(|(n, c)| {
                        Value::Tuple(vec![Value::Str(n.clone()), Value::Bytes(c.0.to_vec())])
                    })
                    .collect(),
            ),
            Value::Str(self.subject.clone()),
            Value::Str(self.body.clone()),
            Value::U64(self.timestamp.swap_bytes()),
            Value::Bytes(self.root_tree.0.to_vec()),
            Value::Bytes(self.root_meta.0.to_vec()),
        ])
        .to_bytes()
    }

    /// Parses and validates a `.commit` object (normal form, 32-byte checksums, non-empty keys).
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_size(data)?;
        let ty = commit_type();
        let v = from_bytes_normal(&ty, data)?;
        let bad = |r| malformed(&ty, r);
        let Value::Tuple(m) = &v else {
            return Err(bad("not a tuple"));
        };
        let metadata = MetaDict::from_value(m.first().ok_or_else(|| bad("missing metadata"))?)?;
        if metadata.0.iter().any(|(k, _)| k.is_empty()) {
            return Err(FormatError::InvalidCommit("empty metadata key"));
        }
        let parent = match m.get(1) {
            Some(Value::Bytes(b)) if b.is_empty() => None,
            Some(Value::Bytes(b)) if b.len() == 32 => Some(Checksum::from_bytes(b)?),
            _ => {
                return Err(FormatError::InvalidCommit(
                    "parent is neither empty nor 32 bytes",
                ));
            }
        };
        let mut related = Vec::new();
        if let Some(Value::Array(_, rel)) = m.get(2) {
            for r in rel {
                if let Value::Tuple(e) = r
                    && let (Some(Value::Str(n)), Some(Value::Bytes(c))) = (e.first(), e.get(1))
                {
                    related.push((n.clone(), Checksum::from_bytes(c)?));
                }
            }
        }
        let s = |i: usize| {
            m.get(i)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad("expected s"))
        };
        let timestamp = match m.get(5) {
            Some(Value::U64(t)) => t.swap_bytes(),
            _ => return Err(bad("expected t")),
        };
        let csum = |i: usize| match m.get(i) {
            Some(Value::Bytes(b)) => Checksum::from_bytes(b)
                .map_err(|_| FormatError::InvalidCommit("root checksum is not 32 bytes")),
            _ => Err(bad("expected ay")),
        };
        Ok(Commit {
            metadata,
            parent,
            related,
            subject: s(3)?,
            body: s(4)?,
            timestamp,
            root_tree: csum(6)?,
            root_meta: csum(7)?,
        })
    }

    /// `ostree show`'s ContentChecksum: sha256 of the root tree and meta checksums.
    pub fn content_checksum(&self) -> Checksum {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&self.root_tree.0);
        b.extend_from_slice(&self.root_meta.0);
        Checksum::digest(&b)
    }
}

/// Checks a metadata object's bytes against its type (size, normal form, structure).
pub fn validate_metadata(ty: crate::ObjectType, data: &[u8]) -> Result<(), FormatError> {
    use crate::ObjectType;
    check_size(data)?;
    match ty {
        ObjectType::Commit => Commit::parse(data).map(drop),
        ObjectType::DirTree => DirTree::parse(data).map(drop),
        ObjectType::DirMeta => FileMeta::parse_dirmeta(data).map(drop),
        ObjectType::CommitMeta | ObjectType::TombstoneCommit => MetaDict::parse(data).map(drop),
        _ => Ok(()),
    }
}
