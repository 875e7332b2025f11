//! Today's container tools: Debian 13's skopeo 1.18, podman 5.4 and ostree 2025.2, and a
//! Docker daemon (Debian 12's `docker.io`).
//!
//! Debian 13's binaries need glibc 2.38, so `scripts/debian13.sh` keeps them in a debootstrap
//! chroot (`/var/cache/ostree-container/trixie`) with wrapper scripts that `chroot` into it
//! (`/var/cache/ostree-container/bin/{skopeo13,podman13,ostree13}`). `/var/tmp`, where
//! [`crate::scratch`] puts every test's files, is bound at the same path inside, so paths work
//! unchanged on both sides; other paths do not exist inside the chroot.
//!
//! [`Debian13::get`] runs that script once per test process (it reuses a complete chroot and
//! builds one otherwise), empties the chroot's containers-storage, and takes a lock held until
//! the process exits, so two test processes never share the stores. A failure to set up panics:
//! a test needing these tools fails, it never passes without them.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ostree_cli::OstreeCli;
use crate::tools::{describe, run};

/// Where the setup script keeps the chroot and the wrappers by default.
pub const CACHE_DIR: &str = "/var/cache/ostree-container";

/// Where they are: `$OSTREE_CONTAINER_CACHE` (as for the script), else [`CACHE_DIR`].
pub fn cache_dir() -> PathBuf {
    std::env::var_os("OSTREE_CONTAINER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CACHE_DIR))
}

/// The setup script (`scripts/debian13.sh` of this workspace).
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/debian13.sh")
}

/// The Debian 13 chroot, set up and locked for this process.
#[derive(Debug)]
pub struct Debian13 {
    root: PathBuf,
    bin: PathBuf,
    versions: Versions,
    /// An exclusive `flock` on `<cache_dir>/use.lock`, held until the process exits.
    _lock: File,
}

/// What `--version` of each tool printed (first line, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// e.g. `skopeo version 1.18.0`
    pub skopeo: String,
    /// e.g. `podman version 5.4.2`
    pub podman: String,
    /// The libostree version, e.g. `2025.2`
    pub ostree: String,
}

/// An image built by [`Debian13::build_derived`].
#[derive(Debug)]
pub struct BuiltImage {
    /// Holds the Containerfile and the OCI layout; removed on drop.
    pub dir: tempfile::TempDir,
    /// The image's name in the chroot's containers-storage, e.g. `localhost/oc-built-3:latest`.
    pub name: String,
    /// `containers-storage:<name>`, for skopeo and our fetcher.
    pub storage_ref: String,
    /// The image copied out of containers-storage as an OCI layout (tag `latest`).
    pub oci_layout_dir: PathBuf,
    /// Host path of `podman image mount`'s merged root filesystem: the image's files as a
    /// container runtime sees them. Read-only by convention (it is podman's storage); valid
    /// for the life of the test process.
    pub rootfs: PathBuf,
}

fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == p))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

impl Debian13 {
    /// The chroot for this test process: set up on first use (see the module docs).
    ///
    /// Panics, with the setup script's output, if it cannot be set up.
    pub fn get() -> &'static Debian13 {
        // The outcome is kept either way: after a failure every test fails at once with the
        // same message instead of retrying a long setup.
        static D: OnceLock<Result<Debian13, String>> = OnceLock::new();
        match D.get_or_init(|| Self::setup().map_err(|e| format!("{e:#}"))) {
            Ok(d) => d,
            Err(e) => panic!(
                "the Debian 13 tools (skopeo 1.18, podman 5.4, ostree 2025.2) could not be set \
                 up by {}: {e}",
                setup_script().display()
            ),
        }
    }

    fn setup() -> anyhow::Result<Self> {
        if !rustix::process::geteuid().is_root() {
            bail!("needs root (chroot, mount)");
        }
        let cache = cache_dir();
        std::fs::create_dir_all(&cache)?;
        let lock_path = cache.join("use.lock");
        let lock = File::create(&lock_path).with_context(|| lock_path.display().to_string())?;
        use rustix::fs::{FlockOperation, flock};
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            eprintln!(
                "waiting for another test process to release {}",
                lock_path.display()
            );
            flock(&lock, FlockOperation::LockExclusive).context("flock")?;
        }
        let script = setup_script();
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .arg("--fresh-stores")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} --fresh-stores failed with {}:\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!(
            "Debian 13 chroot ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let root = cache.join("trixie");
        let bin = cache.join("bin");
        let version = |tool: &str| -> anyhow::Result<String> {
            Ok(first_line(&run(
                Command::new(bin.join(tool)).arg("--version")
            )?))
        };
        let ostree_yaml = run(Command::new(bin.join("ostree13")).arg("--version"))?;
        let ostree = ostree_yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("Version:"))
            .map(|v| v.trim().trim_matches('\'').to_string())
            .context("no Version: in `ostree --version`")?;
        let versions = Versions {
            skopeo: version("skopeo13")?,
            podman: version("podman13")?,
            ostree,
        };
        Ok(Debian13 {
            root,
            bin,
            versions,
            _lock: lock,
        })
    }

    /// The chroot's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tools' versions.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The `skopeo13` wrapper (skopeo 1.18 in the chroot): give it to the fetcher as
    /// `FetchConfig::skopeo = Some(SkopeoCommand::new(path))`.
    pub fn skopeo_path(&self) -> PathBuf {
        self.bin.join("skopeo13")
    }

    /// The `podman13` wrapper.
    pub fn podman_path(&self) -> PathBuf {
        self.bin.join("podman13")
    }

    /// The `ostree13` wrapper.
    pub fn ostree_path(&self) -> PathBuf {
        self.bin.join("ostree13")
    }

    /// ostree 2025.2 as an oracle, with every method of [`OstreeCli`] (repositories must be
    /// under `/var/tmp`).
    pub fn ostree(&self) -> OstreeCli {
        OstreeCli::with_bin(self.ostree_path())
    }

    /// A `skopeo ARGS…` command (skopeo 1.18), not yet run.
    pub fn skopeo_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.skopeo_path());
        c.args(args);
        c
    }

    /// A `podman ARGS…` command (podman 5.4), not yet run.
    pub fn podman_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.podman_path());
        c.args(args);
        c
    }

    /// Runs `skopeo ARGS…`; returns stdout. Panics (with the command and stderr) on failure.
    pub fn skopeo(&self, args: &[&str]) -> String {
        ok(&mut self.skopeo_command(args))
    }

    /// Runs `podman ARGS…`; returns stdout. Panics (with the command and stderr) on failure.
    pub fn podman(&self, args: &[&str]) -> String {
        ok(&mut self.podman_command(args))
    }

    /// Runs ostree 2025.2 `ARGS…`; returns stdout. Panics (with the command and stderr) on
    /// failure.
    pub fn ostree_run(&self, args: &[&str]) -> String {
        ok(&mut self.ostree().command(args))
    }

    /// `skopeo copy --quiet FLAGS… SRC DST` with skopeo 1.18. Panics on failure.
    pub fn skopeo_copy(&self, src: &str, dst: &str, flags: &[&str]) {
        let mut args = vec!["copy", "--quiet"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[src, dst]);
        self.skopeo(&args);
    }

    /// Puts the chroot's static busybox in `tree` as `usr/bin/busybox`, with links for common
    /// applets (`sh`, `rm`, `mkdir`, `cp`, `cat`, …) in `usr/bin` and, when `tree/bin` is a
    /// directory, in `bin` too (else `bin -> usr/bin`): an image of that tree can run `RUN`
    /// steps in a podman build.
    pub fn add_busybox(&self, tree: &Path) -> anyhow::Result<()> {
        let usr_bin = tree.join("usr/bin");
        std::fs::create_dir_all(&usr_bin)?;
        let src = self.root.join("usr/bin/busybox");
        std::fs::copy(&src, usr_bin.join("busybox")).with_context(|| src.display().to_string())?;
        let bin = tree.join("bin");
        let mut dirs = vec![usr_bin];
        match std::fs::symlink_metadata(&bin) {
            Ok(m) if m.is_dir() => dirs.push(bin),
            Ok(_) => {}
            Err(_) => std::os::unix::fs::symlink("usr/bin", &bin)?,
        }
        for dir in dirs {
            for applet in [
                "sh", "rm", "mkdir", "cp", "mv", "cat", "ls", "ln", "touch", "chmod", "echo",
                "test", "true", "sed",
            ] {
                let link = dir.join(applet);
                if std::fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink("/usr/bin/busybox", &link)?;
                }
            }
        }
        Ok(())
    }

    /// Copies the (single) image of the OCI layout at `layout` into containers-storage as
    /// `name` (e.g. `localhost/x:latest`); returns `containers-storage:<name>`.
    pub fn load_oci(&self, layout: &Path, name: &str) -> String {
        let dst = format!("containers-storage:{name}");
        self.skopeo_copy(&format!("oci:{}", layout.display()), &dst, &[]);
        dst
    }

    /// Builds `containerfile` (its text) with podman 5.4, `FROM` the image of the OCI layout
    /// `base_oci_layout`, in the build context `context_dir` (under `/var/tmp`).
    ///
    /// The Containerfile names the base `$BASE` (the helper prepends `ARG BASE` and passes it as
    /// a build argument): e.g. `FROM $BASE\nRUN rm /usr/bin/x\nCOPY y /etc/y\n`. Builds with
    /// `--isolation chroot --network host` and raised rlimits (what works inside the chroot).
    /// Panics on failure.
    pub fn build_derived(
        &self,
        containerfile: &str,
        context_dir: &Path,
        base_oci_layout: &Path,
    ) -> BuiltImage {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        assert!(
            context_dir.starts_with("/var/tmp"),
            "the build context {} must be under /var/tmp (shared with the chroot)",
            context_dir.display()
        );
        let base = format!("localhost/oc-base-{n}:latest");
        self.load_oci(base_oci_layout, &base);
        let dir = crate::scratch("oc-build-");
        let file = dir.path().join("Containerfile");
        std::fs::write(&file, format!("ARG BASE\n{containerfile}")).unwrap();
        let name = format!("localhost/oc-built-{n}:latest");
        let (file_s, ctx_s) = (
            file.to_str().unwrap().to_string(),
            context_dir.to_str().unwrap().to_string(),
        );
        let base_arg = format!("BASE={base}");
        self.podman(&[
            "build",
            "--quiet",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--pull=never",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=90000:90000",
            "--build-arg",
            &base_arg,
            "-f",
            &file_s,
            "-t",
            &name,
            &ctx_s,
        ]);
        let storage_ref = format!("containers-storage:{name}");
        let oci_layout_dir = dir.path().join("oci");
        self.skopeo_copy(
            &storage_ref,
            &format!("oci:{}:latest", oci_layout_dir.display()),
            &[],
        );
        let mounted = self.podman(&["image", "mount", &name]);
        let inside = mounted.trim().trim_start_matches('/');
        assert!(
            !inside.is_empty(),
            "podman image mount {name} printed nothing"
        );
        let rootfs = self.root.join(inside);
        assert!(rootfs.is_dir(), "{} is not a directory", rootfs.display());
        BuiltImage {
            dir,
            name,
            storage_ref,
            oci_layout_dir,
            rootfs,
        }
    }
}

fn ok(cmd: &mut Command) -> String {
    let line = describe(cmd);
    run(cmd).unwrap_or_else(|e| panic!("{line}: {e:#}"))
}

/// Serializes Docker daemons: one at a time per process (its socket is bound at the chroot's
/// `/run/docker.sock`).
static DOCKER: Mutex<()> = Mutex::new(());

/// A private Docker daemon (Debian 12's `dockerd`, vfs storage, no networking setup), its
/// socket bound at `/run/docker.sock` inside the chroot so that skopeo 1.18's `docker-daemon:`
/// reaches it. Stopped, unbound and deleted on drop. Only one exists at a time: [`Self::start`]
/// waits for the previous one to be dropped.
#[derive(Debug)]
pub struct DockerDaemon {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    socket: PathBuf,
    bound: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl DockerDaemon {
    /// Starts the daemon and waits until it answers `/_ping`. Panics (with its log) on failure.
    pub fn start() -> DockerDaemon {
        let d13 = Debian13::get();
        let guard = DOCKER.lock().unwrap_or_else(|p| p.into_inner());
        let dir = crate::scratch("oc-dockerd-");
        let socket = dir.path().join("docker.sock");
        let bound = d13.root().join("run/docker.sock");
        let mut daemon = DockerDaemon {
            child: None,
            socket: socket.clone(),
            bound,
            dir: Some(dir),
            _guard: guard,
        };
        if let Err(e) = daemon.spawn_and_bind() {
            let log = daemon.log();
            drop(daemon);
            panic!("cannot start dockerd: {e:#}\n--- dockerd log ---\n{log}");
        }
        daemon
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/"))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("dockerd.log")).unwrap_or_default()
    }

    /// The daemon's socket on the host.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn spawn_and_bind(&mut self) -> anyhow::Result<()> {
        let dockerd = crate::tools::require_tool("dockerd", "docker.io")?;
        let dir = self.dir().to_path_buf();
        std::fs::write(dir.join("daemon.json"), "{}")?;
        let log = File::create(dir.join("dockerd.log"))?;
        // setpriv: the daemon gets SIGTERM if this test's thread dies without dropping us
        // (a panic that aborts, a killed test process would otherwise leave it running).
        let setpriv = crate::tools::require_tool("setpriv", "util-linux")?;
        let child = Command::new(setpriv)
            .args(["--pdeathsig", "TERM", "--"])
            .arg(dockerd)
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning dockerd")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("dockerd exited early ({status})");
            }
            if ping(&self.socket) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "dockerd did not answer on {} within 60 s",
                    self.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_mounted(&self.bound) {
            run(Command::new("umount").arg("-l").arg(&self.bound))?;
        }
        File::create(&self.bound).with_context(|| self.bound.display().to_string())?;
        run(Command::new("mount")
            .arg("--bind")
            .arg(&self.socket)
            .arg(&self.bound))?;
        Ok(())
    }
}

/// Whether a Docker API socket answers `GET /_ping` with `OK`.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.") && resp.contains(" 200 ") && resp.trim_end().ends_with("OK")
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        if is_mounted(&self.bound) {
            let _ = Command::new("umount").arg("-l").arg(&self.bound).status();
        }
        if let Some(mut c) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&c);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        // dockerd may leave mounts (its managed containerd's state) under its directories.
        let dir = self.dir().to_path_buf();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let prefix = format!("{}/", dir.display());
            let mut mounts: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            mounts.sort_unstable_by(|a, b| b.cmp(a));
            for m in mounts {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
        drop(self.dir.take());
    }
}
