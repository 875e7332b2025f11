//! A loopback container registry (Debian's `docker-registry`, distribution 2.x) for tests.
//!
//! Started on `127.0.0.1:<free port>` with storage in a temp dir, optionally with TLS (a
//! self-signed certificate made with `openssl`) and htpasswd basic auth (bcrypt, which the
//! registry requires; basic auth also requires TLS). Killed on drop.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Finds `name` on `PATH`, or fails naming the Debian package that provides it.
pub fn need_tool(name: &str, debian_package: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "required tool `{name}` not found on PATH: install the Debian package `{debian_package}` \
         (apt-get install {debian_package})"
    )
}

/// How to start the registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 and localhost.
    pub tls: bool,
    /// Require this user and password (implies `tls`).
    pub basic_auth: Option<(String, String)>,
}

/// A running registry; killed and cleaned up on drop.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    bin: PathBuf,
    config_path: PathBuf,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    tls: bool,
}

/// Picks a port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(l.local_addr()?.port())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn spawn(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Command::new(bin)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("spawning docker-registry")
}

/// Standard base64 (for `auth.json`), to avoid a dependency for twelve lines.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

impl Registry {
    /// Starts a registry and waits until it accepts connections.
    pub fn start(opts: RegistryOptions) -> anyhow::Result<Self> {
        let bin = need_tool("docker-registry", "docker-registry")?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let tls = opts.tls || opts.basic_auth.is_some();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        if tls {
            need_tool("openssl", "openssl")?;
            let certs = dir.path().join("certs");
            std::fs::create_dir_all(&certs)?;
            let key = dir.path().join("server.key");
            let crt = certs.join("ca.crt");
            run(Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=127.0.0.1"])
                .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&crt)
                .stdin(Stdio::null()))?;
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                crt.display(),
                key.display()
            ));
        }
        if let Some((user, pass)) = &opts.basic_auth {
            let hash = bcrypt::hash(pass, 5).context("bcrypt")?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let child = spawn(&bin, &config_path, &dir.path().join("registry.log"))?;
        let mut reg = Self {
            child: Some(child),
            bin,
            config_path,
            addr,
            dir,
            tls,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("docker-registry exited early ({status}):\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {}:\n{}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A TLS registry requiring the user `user` with password `secret`, and an authfile for it
    /// written at `authfile`. Returns it with its certificate directory.
    pub fn start_authenticated(authfile: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let r = Registry::start(RegistryOptions {
            tls: true,
            basic_auth: Some(("user".into(), "secret".into())),
        })?;
        r.write_authfile(authfile, "user", "secret")?;
        let certs = r.cert_dir().context("a TLS registry has certificates")?;
        Ok((r, certs))
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`, the host part of image names.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Directory holding `ca.crt` for `--cert-dir` (only with TLS).
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("certs"))
    }

    /// Process id, e.g. to SIGSTOP it in a stall test.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Writes a containers `auth.json` for this registry to `path`.
    pub fn write_authfile(&self, path: &Path, user: &str, pass: &str) -> anyhow::Result<()> {
        let auth = base64(format!("{user}:{pass}").as_bytes());
        let mut f = std::fs::File::create(path)?;
        write!(
            f,
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            self.host()
        )?;
        Ok(())
    }

    /// Starts the registry again after [`Registry::kill`], on the same address with the same
    /// storage (fault tests: a registry that comes back).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let log = self.dir.path().join("registry.log");
        self.child = Some(spawn(&self.bin, &self.config_path, &log)?);
        self.wait_ready()
    }

    /// Kills the registry now (fault tests); idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_reference() {
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64(b"a"), "YQ==");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b""), "");
    }
}
