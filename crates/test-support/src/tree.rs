//! Generated test trees.
//!
//! * [`reference_tree`]: the exact tree of `ostree-repo-format.md` section 13 (known checksums).
//! * [`generate_tree`]: a deterministic tree exercising every feature ostree can represent.
//! * [`generate_bench_tree`]: a large OS-like tree for benchmarks.
//!
//! All modes are set explicitly with `chmod` (independent of the umask); ownership is set
//! before the mode so `chown` cannot clear setuid/setgid bits. Ownership and `trusted.*`
//! xattrs need root: failures are errors, never silently skipped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use anyhow::{Context, bail};
use rustix::fs::XattrFlags;

/// What [`generate_tree`] includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOptions {
    /// Size of `big/big.bin` in MiB; 0 = no big file.
    pub big_file_mib: u64,
    /// Number of files in `huge/` (e.g. 2100 forces 4-byte dirtree offsets); 0 = none.
    pub huge_dir_files: usize,
    /// `user.*` xattrs on files and dirs, `trusted.*` on a symlink, a 300-byte value.
    pub xattrs: bool,
    /// Files, a dir and a symlink owned by non-root uids/gids.
    pub non_root_owners: bool,
    /// setuid/setgid files and a sticky directory.
    pub special_modes: bool,
    /// Seed for all generated content.
    pub seed: u64,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            big_file_mib: 0,
            huge_dir_files: 0,
            xattrs: true,
            non_root_owners: true,
            special_modes: true,
            seed: 0,
        }
    }
}

impl TreeOptions {
    /// Everything, including a 17 MiB file and a directory of 2100 files.
    pub fn full() -> Self {
        TreeOptions {
            big_file_mib: 17,
            huge_dir_files: 2100,
            ..Default::default()
        }
    }
}

/// Counts of what a generated tree contains (the root directory is not counted; every hardlink
/// name counts as a file and its bytes count each time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

// ---------------------------------------------------------------------------------------------
// Low-level helpers

fn chmod(p: &Path, mode: u32) -> anyhow::Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", p.display()))
}

fn chown(p: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).with_context(|| {
        format!(
            "lchown {uid}:{gid} {} (setting ownership requires root)",
            p.display()
        )
    })
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> anyhow::Result<()> {
    rustix::fs::lsetxattr(p, name, value, XattrFlags::empty()).with_context(|| {
        format!(
            "lsetxattr {name} ({} bytes) on {} (user.* needs a filesystem with user xattrs, \
             trusted.* needs root)",
            value.len(),
            p.display()
        )
    })
}

fn mkdir(p: &Path, mode: u32) -> anyhow::Result<()> {
    fs::create_dir(p).with_context(|| format!("mkdir {}", p.display()))?;
    chmod(p, mode)
}

fn mkdir_owned(p: &Path, mode: u32, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    fs::create_dir(p).with_context(|| format!("mkdir {}", p.display()))?;
    if let Some((u, g)) = owner {
        chown(p, u, g)?;
    }
    chmod(p, mode)
}

fn write_file(p: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    write_file_owned(p, content, mode, None)
}

fn write_file_owned(
    p: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    fs::write(p, content).with_context(|| format!("write {}", p.display()))?;
    if let Some((u, g)) = owner {
        chown(p, u, g)?;
    }
    chmod(p, mode)
}

fn mklink(target: impl AsRef<Path>, p: &Path) -> anyhow::Result<()> {
    symlink(target.as_ref(), p)
        .with_context(|| format!("symlink {} -> {}", p.display(), target.as_ref().display()))
}

fn hardlink(existing: &Path, new: &Path) -> anyhow::Result<()> {
    fs::hard_link(existing, new)
        .with_context(|| format!("link {} -> {}", new.display(), existing.display()))
}

fn ensure_empty_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir).with_context(|| format!("mkdir -p {}", dir.display()))?;
    }
    let meta = fs::symlink_metadata(dir).with_context(|| format!("stat {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty", dir.display());
    }
    // Root of a tree: 0755 root-owned dir (tempdirs are 0700).
    chmod(dir, 0o755)
}

/// splitmix64: cheap, deterministic, good enough for test content.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (hi exclusive, hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

const WORDS: &[&str] = &[
    "the",
    "ostree",
    "commit",
    "object",
    "content",
    "dirtree",
    "dirmeta",
    "checksum",
    "sha256",
    "layer",
    "image",
    "container",
    "repository",
    "file",
    "directory",
    "symlink",
    "xattr",
    "mode",
    "uid",
    "gid",
    "lib",
    "usr",
    "etc",
    "config",
    "value",
    "=",
    "{",
    "}",
    "(",
    ")",
    ";",
    "0",
    "1",
    "return",
    "if",
    "else",
    "for",
    "struct",
    "int",
    "char",
    "void",
    "static",
    "const",
    "#include",
    "<stdio.h>",
    "error",
    "warning",
    "debug",
    "info",
    "and",
    "of",
    "to",
    "in",
    "is",
    "a",
];

/// Appends text-like (compressible) content of exactly `n` bytes.
fn text_bytes(rng: &mut Rng, n: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let mut col = 0;
    while out.len() - start < n {
        let r = rng.next_u64();
        let w = WORDS[(r % WORDS.len() as u64) as usize].as_bytes();
        out.extend_from_slice(w);
        col += w.len() + 1;
        if col > 72 || (r >> 32).is_multiple_of(17) {
            out.push(b'\n');
            col = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(start + n);
}

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 16);
    text_bytes(rng, n, &mut v);
    v
}

fn walk_stats(dir: &Path, stats: &mut TreeStats) -> anyhow::Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("readdir {}", dir.display()))? {
        let e = e?;
        let m = fs::symlink_metadata(e.path())?;
        let ft = m.file_type();
        if ft.is_dir() {
            stats.dirs += 1;
            walk_stats(&e.path(), stats)?;
        } else if ft.is_symlink() {
            stats.symlinks += 1;
        } else if ft.is_file() {
            stats.files += 1;
            stats.bytes += m.len();
        }
    }
    Ok(())
}

/// Counts files, dirs, symlinks and regular-file bytes under `dir` (excluding `dir` itself).
pub fn tree_stats(dir: &Path) -> anyhow::Result<TreeStats> {
    let mut s = TreeStats::default();
    walk_stats(dir, &mut s)?;
    Ok(s)
}

/// Copies `src` to `dst` with `cp -a` (modes, ownership, xattrs, hardlinks kept), to derive a
/// variant of a tree or repository.
pub fn copy_tree(src: &Path, dst: &Path) -> anyhow::Result<()> {
    crate::tools::run(std::process::Command::new("cp").arg("-a").arg(src).arg(dst))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reference tree

/// Builds exactly the reference test tree of `ostree-repo-format.md` section 13 in `dir`
/// (created if missing, must be empty; its mode is set to 0755). Needs root (ownership).
pub fn reference_tree(dir: &Path) -> anyhow::Result<()> {
    ensure_empty_dir(dir)?;
    write_file(&dir.join("hello.txt"), b"hello world\n", 0o644)?;
    write_file(&dir.join("empty"), b"", 0o644)?;
    mklink("hello.txt", &dir.join("link"))?;
    write_file(&dir.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755)?;
    write_file(&dir.join("suid"), b"suid\n", 0o4755)?;
    let xat = dir.join("xat.txt");
    write_file(&xat, b"xattr file\n", 0o644)?;
    set_xattr(&xat, "user.zeta", b"last")?;
    set_xattr(&xat, "user.alpha", b"first")?;
    let sub = dir.join("sub");
    mkdir(&sub, 0o755)?;
    set_xattr(&sub, "user.dirattr", b"d")?;
    write_file_owned(&sub.join("file2"), b"in sub\n", 0o640, Some((1000, 1001)))?;
    mkdir(&dir.join("emptydir"), 0o755)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Feature tree

/// Builds a deterministic tree exercising every feature ostree can represent (see the module
/// and [`TreeOptions`] docs) in `dir` (created if missing, must be empty; set to 0755).
///
/// Layout (top-level): `files/` (sizes 0..~1 MiB), `bin/` (executables), `private/` (0700),
/// `special/` (setuid/setgid/sticky), `owners/` (non-root uid/gid), `links/` (symlinks),
/// `hardlinks/`, `emptydirs/`, `deep/` (40 levels), `names/` (non-ASCII, 255-byte file name,
/// 200-byte dir name), `eight/` (f1..f8), `xattrs/`, `usr/etc/`, `var/lib/` (no `var/tmp`),
/// `big/`, `huge/`.
///
/// Needs root for ownership and the `trusted.*` xattr on a symlink.
pub fn generate_tree(dir: &Path, opts: &TreeOptions) -> anyhow::Result<TreeStats> {
    ensure_empty_dir(dir)?;
    let mut rng = Rng::new(opts.seed);
    let d = |p: &str| dir.join(p);

    // files/: mixed sizes.
    mkdir(&d("files"), 0o755)?;
    write_file(&d("files/empty"), b"", 0o644)?;
    write_file(&d("files/one-byte"), b"x", 0o644)?;
    let small = format!("small file, seed {}\n", opts.seed);
    write_file(&d("files/small.txt"), small.as_bytes(), 0o644)?;
    let n = rng.range(3000, 6000) as usize;
    write_file(&d("files/kib.bin"), &rng.bytes(n), 0o644)?;
    let n = rng.range(2000, 9000) as usize;
    write_file(&d("files/text.txt"), &text(&mut rng, n), 0o644)?;
    let n = (1 << 20) + rng.range(0, 4096) as usize;
    write_file(&d("files/mib.bin"), &rng.bytes(n), 0o644)?;
    let n = (1 << 20) - rng.range(1, 4096) as usize;
    write_file(&d("files/mib.txt"), &text(&mut rng, n), 0o644)?;
    write_file(&d("files/readonly"), b"read only\n", 0o444)?;
    write_file(&d("files/no-perms"), b"nobody may read\n", 0o000)?;
    write_file(&d("files/group-write"), b"g+w\n", 0o664)?;

    // bin/: executables.
    mkdir(&d("bin"), 0o755)?;
    write_file(&d("bin/script.sh"), b"#!/bin/sh\necho generated\n", 0o755)?;
    write_file(&d("bin/tool"), &rng.bytes(777), 0o755)?;
    write_file(&d("bin/user-only-exec"), b"#!/bin/sh\n", 0o700)?;
    write_file(&d("bin/odd-mode"), b"odd\n", 0o751)?;

    // private/: a 0700 directory.
    mkdir(&d("private"), 0o700)?;
    write_file(&d("private/secret"), b"secret\n", 0o600)?;

    if opts.special_modes {
        mkdir(&d("special"), 0o755)?;
        write_file(&d("special/setuid"), b"setuid\n", 0o4755)?;
        write_file(&d("special/setgid"), b"setgid\n", 0o2755)?;
        write_file(&d("special/setuid-setgid"), b"both\n", 0o6755)?;
        write_file(&d("special/sticky-file"), b"sticky bit on a file\n", 0o1644)?;
        mkdir(&d("special/sticky"), 0o1777)?;
        write_file(&d("special/sticky/inside"), b"in a sticky dir\n", 0o644)?;
    }

    if opts.non_root_owners {
        mkdir(&d("owners"), 0o755)?;
        write_file_owned(
            &d("owners/user-file"),
            b"owned by 1000\n",
            0o644,
            Some((1000, 1000)),
        )?;
        write_file_owned(
            &d("owners/other"),
            b"owned by 1234:5678\n",
            0o640,
            Some((1234, 5678)),
        )?;
        write_file_owned(
            &d("owners/group-only"),
            b"root:100\n",
            0o664,
            Some((0, 100)),
        )?;
        mkdir_owned(&d("owners/userdir"), 0o750, Some((1000, 1000)))?;
        write_file_owned(
            &d("owners/userdir/file"),
            b"in userdir\n",
            0o600,
            Some((1000, 1000)),
        )?;
        let l = d("owners/user-link");
        mklink("user-file", &l)?;
        chown(&l, 1000, 1000)?;
        if opts.special_modes {
            write_file_owned(
                &d("owners/setuid-user"),
                b"suid user\n",
                0o4755,
                Some((1000, 1000)),
            )?;
            write_file_owned(
                &d("owners/setgid-group"),
                b"sgid grp\n",
                0o2755,
                Some((0, 50)),
            )?;
        }
    }

    // links/: symlinks.
    mkdir(&d("links"), 0o755)?;
    mklink("../files/small.txt", &d("links/relative"))?;
    mklink("/usr/bin/env", &d("links/absolute"))?;
    mklink("does/not/exist", &d("links/dangling"))?;
    mklink("../files", &d("links/to-dir"))?;
    mklink(".", &d("links/self-dir"))?;
    mklink("relative", &d("links/chain"))?;
    let mut long = String::new();
    while long.len() < 990 {
        long.push_str("long-target-component/");
    }
    long.push_str("end");
    mklink(&long, &d("links/long-target"))?;
    mklink("ünïcødé-ziel", &d("links/unicode-target"))?;

    // hardlinks/: two (three) names for one inode.
    mkdir(&d("hardlinks"), 0o755)?;
    write_file(&d("hardlinks/a.txt"), &text(&mut rng, 500), 0o644)?;
    hardlink(&d("hardlinks/a.txt"), &d("hardlinks/b.txt"))?;
    hardlink(&d("files/small.txt"), &d("hardlinks/small-again"))?;
    write_file(&d("hardlinks/same-content-1"), b"same content\n", 0o644)?;
    write_file(&d("hardlinks/same-content-2"), b"same content\n", 0o644)?;

    // emptydirs/
    mkdir(&d("emptydirs"), 0o755)?;
    mkdir(&d("emptydirs/e1"), 0o755)?;
    mkdir(&d("emptydirs/e2"), 0o755)?;
    mkdir(&d("emptydirs/e2/nested-empty"), 0o755)?;
    mkdir(&d("emptydirs/e3-0711"), 0o711)?;

    // deep/: 40 levels.
    let mut p = d("deep");
    mkdir(&p, 0o755)?;
    for i in 0..40 {
        p = p.join(format!("l{i:02}"));
        mkdir(&p, 0o755)?;
    }
    write_file(&p.join("leaf.txt"), b"deep leaf\n", 0o644)?;

    // names/: non-ASCII and long names.
    mkdir(&d("names"), 0o755)?;
    write_file(&d("names/ünïcødé-файл-文件"), "ünïcødé\n".as_bytes(), 0o644)?;
    mkdir(&d("names/каталог-目录"), 0o755)?;
    write_file(&d("names/каталог-目录/αβγ.txt"), b"greek\n", 0o644)?;
    write_file(&d("names/with space & 'quotes'"), b"spaces\n", 0o644)?;
    write_file(&d("names/-leading-dash"), b"dash\n", 0o644)?;
    write_file(&d("names/.hidden"), b"hidden\n", 0o644)?;
    write_file(&d("names/a"), b"a\n", 0o644)?;
    write_file(&d("names/Z-upper"), b"Z\n", 0o644)?;
    let long_file = "n".repeat(255);
    write_file(&d("names").join(&long_file), b"255-byte name\n", 0o644)?;
    let long_dir = d("names").join("d".repeat(200));
    mkdir(&long_dir, 0o755)?;
    write_file(&long_dir.join("inside"), b"inside the long dir\n", 0o644)?;

    // eight/: f1..f8 (2-byte dirtree offsets).
    mkdir(&d("eight"), 0o755)?;
    for i in 1..=8 {
        write_file(
            &d(&format!("eight/f{i}")),
            format!("file {i}\n").as_bytes(),
            0o644,
        )?;
    }

    if opts.xattrs {
        mkdir(&d("xattrs"), 0o755)?;
        let f = d("xattrs/multi.txt");
        write_file(&f, b"several xattrs\n", 0o644)?;
        set_xattr(&f, "user.zeta", b"z")?;
        set_xattr(&f, "user.mid", b"middle value")?;
        set_xattr(&f, "user.alpha", b"a")?;
        set_xattr(&f, "user.binary", &[0, 1, 2, 255, 0])?;
        set_xattr(&f, "user.empty", b"")?;
        let f = d("xattrs/only-empty");
        write_file(&f, b"only a zero-length xattr\n", 0o644)?;
        set_xattr(&f, "user.empty", b"")?;
        let x = d("xattrs/xdir");
        mkdir(&x, 0o755)?;
        set_xattr(&x, "user.z-dir", b"2")?;
        set_xattr(&x, "user.a-dir", b"1")?;
        write_file(&x.join("plain"), b"plain file in xattr dir\n", 0o644)?;
        let big: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let x = d("xattrs/bigx-dir");
        mkdir(&x, 0o755)?;
        set_xattr(&x, "user.big", &big)?;
        let f = d("xattrs/bigx-file");
        write_file(&f, b"300-byte xattr\n", 0o644)?;
        set_xattr(&f, "user.big", &big)?;
        let l = d("xattrs/xlink");
        mklink("multi.txt", &l)?;
        set_xattr(&l, "trusted.linkattr", b"on a symlink")?;
        let f = d("xattrs/trusted-file");
        write_file(&f, b"trusted xattr\n", 0o640)?;
        set_xattr(&f, "trusted.overlay.opaque", b"y")?;
        set_xattr(&f, "user.u", b"u")?;
        if opts.special_modes {
            let f = d("xattrs/setuid-with-xattr");
            write_file(&f, b"suid+xattr\n", 0o4750)?;
            set_xattr(&f, "user.s", b"s")?;
        }
    }

    // usr/etc/ and var/ (var/tmp deliberately absent).
    for p in [
        "usr", "usr/etc", "usr/bin", "usr/lib", "var", "var/lib", "var/log",
    ] {
        mkdir(&d(p), 0o755)?;
    }
    write_file(
        &d("usr/etc/os-release"),
        b"NAME=\"Test OS\"\nID=testos\nVERSION_ID=1\n",
        0o644,
    )?;
    write_file(
        &d("usr/etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        0o644,
    )?;
    write_file(&d("usr/etc/group"), b"root:x:0:\nuser:x:1000:\n", 0o644)?;
    write_file(&d("usr/etc/shadow"), b"root:*:19000:0:99999:7:::\n", 0o640)?;
    write_file(&d("usr/bin/app"), &rng.bytes(4096), 0o755)?;
    mklink("../etc/os-release", &d("usr/lib/os-release"))?;

    if opts.big_file_mib > 0 {
        mkdir(&d("big"), 0o755)?;
        let p = d("big/big.bin");
        let mut f = fs::File::create(&p).with_context(|| format!("create {}", p.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..opts.big_file_mib {
            // Half random, half text-like, so it is neither trivially nor not at all compressible.
            if i % 2 == 0 {
                rng.fill(&mut buf);
            } else {
                buf.clear();
                text_bytes(&mut rng, 1 << 20, &mut buf);
            }
            f.write_all(&buf)?;
        }
        f.write_all(b"tail\n")?;
        drop(f);
        chmod(&p, 0o644)?;
    }

    if opts.huge_dir_files > 0 {
        let h = d("huge");
        mkdir(&h, 0o755)?;
        let width = opts.huge_dir_files.to_string().len().max(4);
        for i in 1..=opts.huge_dir_files {
            let name = format!("file-{i:0width$}");
            write_file(&h.join(&name), format!("{name}\n").as_bytes(), 0o644)?;
        }
    }

    tree_stats(dir)
}

// ---------------------------------------------------------------------------------------------
// Bench tree

/// Builds an OS-like tree for benchmarks in `dir` (created if missing, must be empty): `files`
/// regular files in nested dirs (~20 per dir, `usr/lib/aNN/bN/cN/`), sizes skewed (most small,
/// a few MiB-sized) summing to about `total_bytes`, ~4% extra symlinks, content pseudo-random but
/// about two-thirds text-like (compressible). Every file's content is distinct.
pub fn generate_bench_tree(
    dir: &Path,
    files: usize,
    total_bytes: u64,
    seed: u64,
) -> anyhow::Result<TreeStats> {
    ensure_empty_dir(dir)?;
    let mut rng = Rng::new(seed);

    // Skewed raw sizes, then scaled to total_bytes.
    let mut raw: Vec<f64> = Vec::with_capacity(files);
    for _ in 0..files {
        let c = rng.range(0, 100);
        let (lo, hi): (f64, f64) = match c {
            0..60 => (64.0, 2048.0),
            60..85 => (2048.0, 16384.0),
            85..97 => (16384.0, 262144.0),
            _ => (262144.0, 8388608.0),
        };
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        raw.push((lo.ln() + u * (hi.ln() - lo.ln())).exp());
    }
    let sum: f64 = raw.iter().sum();
    let scale = if sum > 0.0 {
        total_bytes as f64 / sum
    } else {
        0.0
    };
    let sizes: Vec<u64> = raw.iter().map(|s| (s * scale).round() as u64).collect();

    // Content pool: 8 MiB, 4 KiB segments, 2/3 text-like, 1/3 random.
    const POOL: usize = 8 << 20;
    let mut pool = Vec::with_capacity(POOL + 64);
    let mut seg = 0;
    while pool.len() < POOL {
        if seg % 3 == 2 {
            let start = pool.len();
            pool.resize(start + 4096, 0);
            rng.fill(&mut pool[start..]);
        } else {
            text_bytes(&mut rng, 4096, &mut pool);
        }
        seg += 1;
    }
    pool.truncate(POOL);

    let mut made_dirs = std::collections::HashSet::new();
    for (i, &size) in sizes.iter().enumerate() {
        let di = i / 20;
        let rel = format!(
            "usr/lib/a{:02}/b{:x}/c{:x}",
            di / 256,
            (di / 16) % 16,
            di % 16
        );
        if made_dirs.insert(rel.clone()) {
            let mut cur = dir.to_path_buf();
            for comp in rel.split('/') {
                cur.push(comp);
                if !cur.exists() {
                    mkdir(&cur, 0o755)?;
                }
            }
        }
        let ext = ["so", "txt", "py", "conf", "bin"][i % 5];
        let name = format!("f{i:06}.{ext}");
        let p = dir.join(&rel).join(&name);
        let mut f = fs::File::create(&p).with_context(|| format!("create {}", p.display()))?;
        // Unique header so no two files share content, then pool bytes from a random offset.
        let header = format!("# bench file {i} seed {seed}\n");
        let mut remaining = size as usize;
        let h = &header.as_bytes()[..header.len().min(remaining)];
        f.write_all(h)?;
        remaining -= h.len();
        let mut off = rng.range(0, POOL as u64) as usize;
        while remaining > 0 {
            let n = remaining.min(POOL - off);
            f.write_all(&pool[off..off + n])?;
            remaining -= n;
            off = 0;
        }
        drop(f);
        chmod(&p, if i % 10 == 3 { 0o755 } else { 0o644 })?;
        if i % 25 == 7 {
            mklink(&name, &dir.join(&rel).join(format!("link-{i:06}")))?;
        }
    }
    tree_stats(dir)
}
