//! Paths of the ostree tar layout (container-image-format §4.2, §5) and their parsing.

use ostree_repo::format::Checksum;

/// Everything ostree-specific lives under this prefix.
pub const REPO_PREFIX: &str = "sysroot/ostree/repo/";
/// Object directory inside the layer.
pub const OBJECTS_PREFIX: &str = "sysroot/ostree/repo/objects/";
/// The repo config entry, identifying the stream as an ostree export.
pub const REPO_CONFIG_PATH: &str = "sysroot/ostree/repo/config";
/// Its exact content.
pub const REPO_CONFIG: &[u8] = b"[core]\nrepo_version=1\nmode=bare-split-xattrs\n";
/// The temporary directory every layer re-creates (mode 01777).
pub const VAR_TMP: &str = "var/tmp";

/// Skeleton directories after `sysroot/ostree/repo/objects/XX` (in stream order).
pub const SKELETON_TAIL: [&str; 8] = [
    "sysroot/ostree/repo/extensions",
    "sysroot/ostree/repo/refs",
    "sysroot/ostree/repo/refs/heads",
    "sysroot/ostree/repo/refs/mirrors",
    "sysroot/ostree/repo/refs/remotes",
    "sysroot/ostree/repo/state",
    "sysroot/ostree/repo/tmp",
    "sysroot/ostree/repo/tmp/cache",
];

/// Skeleton directories before the 256 fan-out directories.
pub const SKELETON_HEAD: [&str; 4] = [
    "sysroot",
    "sysroot/ostree",
    "sysroot/ostree/repo",
    "sysroot/ostree/repo/objects",
];

/// The kinds of entry under `objects/` (v1 names plus the v0 `.file.xattrs` reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarObjectKind {
    /// `.commit`
    Commit,
    /// `.commitmeta`
    CommitMeta,
    /// `.dirtree`
    DirTree,
    /// `.dirmeta`
    DirMeta,
    /// `.file`
    File,
    /// `.file-xattrs`: an `a(ayay)` blob named by its sha256.
    FileXattrs,
    /// `.file-xattrs-link`: the xattr reference of the following `.file`.
    FileXattrsLink,
    /// v0 `.file.xattrs`: hardlink to `xattrs/<sha256>`.
    LegacyXattrsRef,
}

impl TarObjectKind {
    fn from_ext(ext: &str) -> Option<Self> {
        Some(match ext {
            "commit" => Self::Commit,
            "commitmeta" => Self::CommitMeta,
            "dirtree" => Self::DirTree,
            "dirmeta" => Self::DirMeta,
            "file" => Self::File,
            "file-xattrs" => Self::FileXattrs,
            "file-xattrs-link" => Self::FileXattrsLink,
            "file.xattrs" => Self::LegacyXattrsRef,
            _ => return None,
        })
    }

    fn ext(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::CommitMeta => "commitmeta",
            Self::DirTree => "dirtree",
            Self::DirMeta => "dirmeta",
            Self::File => "file",
            Self::FileXattrs => "file-xattrs",
            Self::FileXattrsLink => "file-xattrs-link",
            Self::LegacyXattrsRef => "file.xattrs",
        }
    }
}

/// `sysroot/ostree/repo/objects/XX/<62 hex>.<ext>`.
pub fn object_path(c: &Checksum, kind: TarObjectKind) -> String {
    let h = c.to_hex();
    format!("{OBJECTS_PREFIX}{}/{}.{}", &h[..2], &h[2..], kind.ext())
}

/// Parses `XX/<62 hex>.<ext>` (relative to `objects/`). `Err` says why the name is invalid.
pub fn parse_object_relpath(rel: &str) -> Result<(Checksum, TarObjectKind), String> {
    let (dir, name) = rel
        .split_once('/')
        .ok_or_else(|| format!("object path {rel:?} has no fan-out directory"))?;
    if dir.len() != 2 || name.contains('/') {
        return Err(format!("invalid object path {rel:?}"));
    }
    let (stem, ext) = name
        .split_once('.')
        .ok_or_else(|| format!("object path {rel:?} has no type suffix"))?;
    let kind =
        TarObjectKind::from_ext(ext).ok_or_else(|| format!("invalid object type {ext:?}"))?;
    if stem.len() != 62 {
        return Err(format!("invalid checksum part {stem:?}"));
    }
    let hex = format!("{dir}{stem}");
    let c = hex
        .parse::<Checksum>()
        .map_err(|_| format!("invalid checksum {hex:?}"))?;
    Ok((c, kind))
}

/// A normalised relative path: no empty or `.` components, no `..`, never absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormPath {
    /// Components joined by `/`; empty for the root.
    pub path: String,
    /// Whether the raw path started with `./` (v0 streams prefix every entry so).
    pub dot_prefixed: bool,
}

/// Normalises an entry path or link target; `Err` for absolute paths and `..` components, which
/// an importer must never follow.
pub fn normalize(raw: &str) -> Result<NormPath, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("`..` component"),
            c => parts.push(c),
        }
    }
    Ok(NormPath {
        path: parts.join("/"),
        dot_prefixed: raw.starts_with("./"),
    })
}

/// The checkout-view path of a commit path: `usr/etc/…` is shown as `etc/…`.
pub fn checkout_path(commit_path: &str) -> String {
    if commit_path == "usr/etc" {
        "etc".to_string()
    } else if let Some(rest) = commit_path.strip_prefix("usr/etc/") {
        format!("etc/{rest}")
    } else {
        commit_path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_round_trip() {
        let c: Checksum = "3602b2e959192c61aa6153fc5755b392e500d188524501ac32bf77ab138a6166"
            .parse()
            .unwrap();
        let p = object_path(&c, TarObjectKind::Commit);
        assert_eq!(p.len(), 100);
        assert_eq!(object_path(&c, TarObjectKind::File).len(), 98);
        assert_eq!(object_path(&c, TarObjectKind::FileXattrsLink).len(), 110);
        let rel = p.strip_prefix(OBJECTS_PREFIX).unwrap();
        assert_eq!(
            parse_object_relpath(rel).unwrap(),
            (c, TarObjectKind::Commit)
        );
        assert!(parse_object_relpath("36/02b2.commit").is_err());
        assert!(parse_object_relpath(&rel.replace("commit", "tombstone-commit")).is_err());
        assert!(parse_object_relpath(&rel.to_uppercase()).is_err());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("./").unwrap().path, "");
        assert_eq!(normalize("./a//b/./c/").unwrap().path, "a/b/c");
        assert!(normalize("./a").unwrap().dot_prefixed);
        assert!(normalize("/etc").is_err());
        assert!(normalize("a/../../b").is_err());
        assert_eq!(checkout_path("usr/etc/passwd"), "etc/passwd");
        assert_eq!(checkout_path("usr/etc"), "etc");
        assert_eq!(checkout_path("usr/etcx"), "usr/etcx");
    }
}
