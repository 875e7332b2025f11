//! Tree snapshots and comparison (type, mode, ownership, size, content hash, symlink target,
//! xattrs). Hardlinks are compared by content, never by inode identity.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// Xattr names never recorded by [`snapshot`].
pub const IGNORED_XATTRS: &[&[u8]] = &[b"security.selinux"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// One entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub kind: Kind,
    /// Permission bits incl. setuid/setgid/sticky, masked by `mode_mask` (0 for directories if
    /// `ignore_dir_modes`).
    pub mode: u32,
    /// 0 if `ownership` is off.
    pub uid: u32,
    /// 0 if `ownership` is off.
    pub gid: u32,
    /// File size; symlink target length; 0 for directories.
    pub size: u64,
    /// Hex SHA-256 of regular file content.
    pub content_sha256: Option<String>,
    pub symlink_target: Option<Vec<u8>>,
    /// Empty if `xattrs` is off.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// What [`snapshot`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOptions {
    pub ownership: bool,
    pub xattrs: bool,
    /// Applied to the permission bits, e.g. 0o7777 or 0o777.
    pub mode_mask: u32,
    /// Record mode 0 for directories.
    pub ignore_dir_modes: bool,
    /// Drop xattrs whose value is empty (ostree drops them too).
    pub skip_empty_xattr_values: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            ownership: true,
            xattrs: true,
            mode_mask: 0o7777,
            ignore_dir_modes: false,
            skip_empty_xattr_values: true,
        }
    }
}

/// Reads all xattrs of `path` without following a final symlink.
pub fn read_xattrs(path: &Path) -> anyhow::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let names = loop {
        let n = rustix::fs::llistxattr_query(path)
            .with_context(|| format!("llistxattr {}", path.display()))?;
        let mut buf = vec![0u8; n];
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(len) => {
                buf.truncate(len);
                break buf;
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => bail!("llistxattr {}: {e}", path.display()),
        }
    };
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if IGNORED_XATTRS.contains(&name) {
            continue;
        }
        let name_os = std::ffi::OsStr::from_bytes(name);
        let value = loop {
            let n = match rustix::fs::lgetxattr_query(path, name_os) {
                Ok(n) => n,
                Err(e) => bail!(
                    "lgetxattr {} on {}: {e}",
                    String::from_utf8_lossy(name),
                    path.display()
                ),
            };
            let mut buf = vec![0u8; n];
            match rustix::fs::lgetxattr(path, name_os, &mut buf[..]) {
                Ok(len) => {
                    buf.truncate(len);
                    break buf;
                }
                Err(rustix::io::Errno::RANGE) => continue,
                Err(e) => bail!(
                    "lgetxattr {} on {}: {e}",
                    String::from_utf8_lossy(name),
                    path.display()
                ),
            }
        };
        out.insert(name.to_vec(), value);
    }
    Ok(out)
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn entry(path: &Path, opts: &SnapshotOptions) -> anyhow::Result<EntryInfo> {
    let m = std::fs::symlink_metadata(path).with_context(|| format!("lstat {}", path.display()))?;
    let ft = m.file_type();
    let perm = m.permissions().mode() & 0o7777;
    let (kind, size, content_sha256, symlink_target) = if ft.is_dir() {
        (Kind::Dir, 0, None, None)
    } else if ft.is_file() {
        (Kind::File, m.len(), Some(sha256_file(path)?), None)
    } else if ft.is_symlink() {
        let t = std::fs::read_link(path)?.into_os_string().into_vec();
        (Kind::Symlink, t.len() as u64, None, Some(t))
    } else {
        bail!(
            "{}: unsupported file type (mode {:o})",
            path.display(),
            m.mode()
        );
    };
    let mode = if kind == Kind::Dir && opts.ignore_dir_modes {
        0
    } else {
        perm & opts.mode_mask
    };
    let (uid, gid) = if opts.ownership {
        (m.uid(), m.gid())
    } else {
        (0, 0)
    };
    let mut xattrs = if opts.xattrs {
        read_xattrs(path)?
    } else {
        BTreeMap::new()
    };
    if opts.skip_empty_xattr_values {
        xattrs.retain(|_, v| !v.is_empty());
    }
    Ok(EntryInfo {
        kind,
        mode,
        uid,
        gid,
        size,
        content_sha256,
        symlink_target,
        xattrs,
    })
}

fn walk(
    root: &Path,
    rel: &Path,
    opts: &SnapshotOptions,
    out: &mut BTreeMap<PathBuf, EntryInfo>,
) -> anyhow::Result<()> {
    let abs = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&abs)
        .with_context(|| format!("readdir {}", abs.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let e = entry(&root.join(&r), opts)?;
        let is_dir = e.kind == Kind::Dir;
        out.insert(r.clone(), e);
        if is_dir {
            walk(root, &r, opts, out)?;
        }
    }
    Ok(())
}

/// Snapshots the tree at `root`. Keys are paths relative to `root`; the root itself is the
/// empty path `""`. Symlinks are not followed.
pub fn snapshot(
    root: &Path,
    opts: &SnapshotOptions,
) -> anyhow::Result<BTreeMap<PathBuf, EntryInfo>> {
    let mut out = BTreeMap::new();
    let e = entry(root, opts)?;
    if e.kind != Kind::Dir {
        bail!("snapshot root {} is not a directory", root.display());
    }
    out.insert(PathBuf::new(), e);
    walk(root, Path::new(""), opts, &mut out)?;
    Ok(out)
}

struct Bytes<'a>(&'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) if s.len() > 80 => {
                let mut end = 80;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                write!(f, "{:?}… ({} bytes)", &s[..end], s.len())
            }
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "0x{}", hex(self.0)),
        }
    }
}

fn show_path(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".to_string()
    } else {
        p.display().to_string()
    }
}

/// Human-readable differences between two snapshots ("path: field a vs b").
pub fn diff_snapshots(
    a: &BTreeMap<PathBuf, EntryInfo>,
    b: &BTreeMap<PathBuf, EntryInfo>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let keys: BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let p = show_path(k);
        let (ea, eb) = match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => (x, y),
            (Some(x), None) => {
                diffs.push(format!("{p}: only in a ({:?})", x.kind));
                continue;
            }
            (None, Some(y)) => {
                diffs.push(format!("{p}: only in b ({:?})", y.kind));
                continue;
            }
            (None, None) => unreachable!(),
        };
        if ea.kind != eb.kind {
            diffs.push(format!("{p}: kind {:?} vs {:?}", ea.kind, eb.kind));
            continue;
        }
        if ea.mode != eb.mode {
            diffs.push(format!("{p}: mode {:o} vs {:o}", ea.mode, eb.mode));
        }
        if ea.uid != eb.uid {
            diffs.push(format!("{p}: uid {} vs {}", ea.uid, eb.uid));
        }
        if ea.gid != eb.gid {
            diffs.push(format!("{p}: gid {} vs {}", ea.gid, eb.gid));
        }
        if ea.size != eb.size {
            diffs.push(format!("{p}: size {} vs {}", ea.size, eb.size));
        }
        if ea.content_sha256 != eb.content_sha256 {
            diffs.push(format!(
                "{p}: content sha256 {} vs {}",
                ea.content_sha256.as_deref().unwrap_or("-"),
                eb.content_sha256.as_deref().unwrap_or("-")
            ));
        }
        if ea.symlink_target != eb.symlink_target {
            diffs.push(format!(
                "{p}: symlink target {} vs {}",
                Bytes(ea.symlink_target.as_deref().unwrap_or(b"")),
                Bytes(eb.symlink_target.as_deref().unwrap_or(b""))
            ));
        }
        if ea.xattrs != eb.xattrs {
            let names: BTreeSet<&Vec<u8>> = ea.xattrs.keys().chain(eb.xattrs.keys()).collect();
            for n in names {
                let (va, vb) = (ea.xattrs.get(n), eb.xattrs.get(n));
                if va != vb {
                    let show = |v: Option<&Vec<u8>>| match v {
                        Some(v) => Bytes(v).to_string(),
                        None => "(absent)".to_string(),
                    };
                    diffs.push(format!(
                        "{p}: xattr {} {} vs {}",
                        String::from_utf8_lossy(n),
                        show(va),
                        show(vb)
                    ));
                }
            }
        }
    }
    diffs
}

/// Snapshots `a` and `b` with `opts` and errors listing the first 20 differences if they
/// differ.
pub fn assert_trees_equal(a: &Path, b: &Path, opts: &SnapshotOptions) -> anyhow::Result<()> {
    let sa = snapshot(a, opts).with_context(|| format!("snapshot {}", a.display()))?;
    let sb = snapshot(b, opts).with_context(|| format!("snapshot {}", b.display()))?;
    let diffs = diff_snapshots(&sa, &sb);
    if diffs.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "trees differ: a = {}, b = {} ({} differences{}):\n",
        a.display(),
        b.display(),
        diffs.len(),
        if diffs.len() > 20 {
            ", first 20 shown"
        } else {
            ""
        }
    );
    for d in diffs.iter().take(20) {
        msg.push_str("  ");
        msg.push_str(d);
        msg.push('\n');
    }
    bail!("{msg}")
}
