//! Running the workspace's own binaries in tests, and interrupting them.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A binary under test. Cargo gives its path (`env!("CARGO_BIN_EXE_<name>")`) only to the tests
/// of the crate that defines it, so the caller passes it in.
#[derive(Debug, Clone, Copy)]
pub struct Cli {
    bin: &'static str,
}

impl Cli {
    pub const fn new(bin: &'static str) -> Self {
        Cli { bin }
    }

    /// Path of the binary.
    pub fn path(&self) -> &'static str {
        self.bin
    }

    /// A command running the binary, to add arguments to.
    pub fn cmd(&self) -> Command {
        Command::new(self.bin)
    }
}

/// Runs `cmd`; panics with its stderr unless it exits 0. Returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Panics with stderr unless `out` is of a command that exited 0.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Panics unless `out` is of a command that exited 0 and printed exactly `stdout`.
pub fn assert_stdout(out: &Output, stdout: &str) {
    assert_success(out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
}

/// `p` as an argument; test paths are UTF-8.
pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Waits (up to `timeout`) until the repository at `repo` has a non-empty `tmp/staging-*`
/// directory: a write is under way, so interrupting now leaves a partial transaction.
/// Returns whether it saw one.
pub fn wait_for_staged_objects(repo: &Path, timeout: Duration) -> bool {
    let tmp = repo.join("tmp");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let staged = std::fs::read_dir(&tmp).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("staging-")
                && e.path().is_dir()
                && std::fs::read_dir(e.path())
                    .map(|mut r| r.next().is_some())
                    .unwrap_or(false)
        });
        if staged {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Sends `signal` to `child`.
pub fn send_signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}
