//! Thin system helpers: OFD locks, anonymous temp files, xattrs.
//!
//! OFD record locks are what libostree uses for `.lock` and staging locks; `flock` and classic
//! process-associated `fcntl` locks do not conflict with them, so neither would exclude libostree.
//! rustix exposes only the classic kind, hence the one `unsafe` call below.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};

/// Lock kinds for [`ofd_lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `F_RDLCK`
    Shared,
    /// `F_WRLCK`
    Exclusive,
    /// `F_UNLCK`
    Unlock,
}

/// Takes (or releases) a whole-file OFD lock without blocking. `Ok(false)` means another holder
/// has a conflicting lock.
#[allow(unsafe_code)]
pub fn ofd_lock(fd: BorrowedFd<'_>, kind: LockKind) -> io::Result<bool> {
    let l_type = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
        LockKind::Unlock => libc::F_UNLCK,
    };
    // SAFETY: `flock` is plain old data; zeroed is a valid value for every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: F_OFD_SETLK takes a pointer to a valid `struct flock`, which outlives the call;
    // the fd is borrowed and therefore open.
    let r = unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_OFD_SETLK,
            &mut fl as *mut libc::flock,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Opens an unnamed temporary file in `dir` (`O_TMPFILE`), to be linked in once complete.
pub fn tmpfile_in(dir: BorrowedFd<'_>) -> io::Result<File> {
    tmpfile_with_mode(dir, 0o600, None).map(|(f, _)| f)
}

/// Like [`tmpfile_in`], created with `mode`; also says whether the file has exactly `mode`
/// (true only when `umask` is known and spares every bit of it), so that the caller can skip an
/// `fchmod` (one syscall per object).
pub fn tmpfile_with_mode(
    dir: BorrowedFd<'_>,
    mode: u32,
    umask: Option<u32>,
) -> io::Result<(File, bool)> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode & 0o777),
    )?;
    let exact = mode & !0o777 == 0 && umask.is_some_and(|u| mode & u == 0);
    Ok((File::from(fd), exact))
}

/// The umask that will apply to files created in `dir`: the process umask (from
/// `/proc/self/status`), unless `dir` has a default ACL, which replaces the umask. `None` when
/// unknown: callers then always `fchmod`.
pub fn creation_umask(dir: BorrowedFd<'_>) -> Option<u32> {
    let mut probe = [0u8; 1];
    match rustix::fs::fgetxattr(dir, "system.posix_acl_default", &mut probe) {
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => {}
        _ => return None,
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Whether `linkat(fd, "", …, AT_EMPTY_PATH)` works here (it needs CAP_DAC_READ_SEARCH).
static EMPTY_PATH_LINK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Gives an `O_TMPFILE` a name: `linkat` with `AT_EMPTY_PATH` where permitted, else through
/// `/proc/self/fd` as libglnx does (no path walk through procfs for privileged callers).
/// EEXIST is reported to the caller.
pub fn link_tmpfile(file: &File, dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    let empty_path = EMPTY_PATH_LINK.load(Ordering::Relaxed);
    if empty_path {
        match rustix::fs::linkat(file.as_fd(), "", dir, name, AtFlags::EMPTY_PATH) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    )?;
    // The same link worked through procfs: AT_EMPTY_PATH is what we may not use.
    if empty_path {
        EMPTY_PATH_LINK.store(false, Ordering::Relaxed);
    }
    Ok(())
}

/// Lists and reads the xattrs of `path` without following symlinks.
pub fn read_xattrs_path(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = list_names(|buf| rustix::fs::llistxattr(path, buf))?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let v = read_value(|buf| rustix::fs::lgetxattr(path, n.as_slice(), buf))?;
        if let Some(v) = v {
            out.push((n, v));
        }
    }
    Ok(out)
}

/// Lists and reads the xattrs of an open file.
pub fn read_xattrs_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = list_names(|buf| rustix::fs::flistxattr(fd, buf))?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        if let Some(v) = read_value(|buf| rustix::fs::fgetxattr(fd, n.as_slice(), buf))? {
            out.push((n, v));
        }
    }
    Ok(out)
}

/// Reads one xattr of an open file; `None` if absent.
pub fn get_xattr_fd(fd: BorrowedFd<'_>, name: &str) -> io::Result<Option<Vec<u8>>> {
    read_value(|buf| rustix::fs::fgetxattr(fd, name, buf))
}

fn list_names(
    mut f: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect());
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn read_value(
    mut f: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < (1 << 21) => buf.resize(buf.len() * 8, 0),
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets xattrs on an open file.
pub fn set_xattrs_fd(fd: BorrowedFd<'_>, xattrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (n, v) in xattrs {
        rustix::fs::fsetxattr(fd, n.as_slice(), v, rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Sets xattrs on a path without following symlinks.
pub fn set_xattrs_path(path: &Path, xattrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (n, v) in xattrs {
        rustix::fs::lsetxattr(path, n.as_slice(), v, rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// A value for one timestamp in [`set_times`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// Leave it as it is (`UTIME_OMIT`).
    Keep,
    /// The current time (`UTIME_NOW`).
    Now,
    /// 0, the epoch.
    Epoch,
}

impl Time {
    fn timespec(self) -> rustix::fs::Timespec {
        let (tv_sec, tv_nsec) = match self {
            Time::Keep => (0, rustix::fs::UTIME_OMIT),
            Time::Now => (0, rustix::fs::UTIME_NOW),
            Time::Epoch => (0, 0),
        };
        rustix::fs::Timespec { tv_sec, tv_nsec }
    }
}

/// Sets the access and modification times of an open file (`futimens`).
pub fn set_times(fd: impl AsFd, atime: Time, mtime: Time) -> io::Result<()> {
    let ts = rustix::fs::Timestamps {
        last_access: atime.timespec(),
        last_modification: mtime.timespec(),
    };
    rustix::fs::futimens(fd, &ts)?;
    Ok(())
}

/// Sets mtime to 0 (atime untouched), as libostree does for content objects.
pub fn zero_mtime(fd: impl AsFd) -> io::Result<()> {
    set_times(fd, Time::Keep, Time::Epoch)
}

/// Random alphanumeric suffix for temporary names.
pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Whether the filesystem's reserved blocks are ours to write: the kernel (ext4's
/// `ext4_has_free_clusters`, likewise ext2/3) lets only `CAP_SYS_RESOURCE` (or the filesystem's
/// resuid/resgid, which statvfs does not tell) use them. libostree assumes uid 0 may (it counts
/// `f_bfree` for root); a root without that capability — a container — would then budget
/// blocks it can never get (here 200 GiB counted where 39 GiB were writable), so we count
/// `f_bfree` only with the capability and `f_bavail` otherwise.
/// The kernel checks the capability in the initial user namespace, so one held inside a user
/// namespace of a container does not count.
/// Asked once per process: neither answer changes while we run.
pub fn may_use_reserved_blocks() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let capable = rustix::thread::capabilities(None).is_ok_and(|c| {
            c.effective
                .contains(rustix::thread::CapabilitySet::SYS_RESOURCE)
        });
        capable && in_initial_user_namespace()
    })
}

/// Whether `/proc/self/uid_map` is the identity map of all uids (the initial user namespace).
fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f == ["0", "0", "4294967295"]
    })
}
