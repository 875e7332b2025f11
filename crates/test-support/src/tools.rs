//! Locating and running external tools.
//!
//! A missing tool is an error naming the Debian package to install, so tests that need it fail
//! loudly instead of silently passing.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

/// Finds `name` on `PATH` (or checks it directly if it contains a `/`).
///
/// Errors with "required tool `X` not found on PATH: install the Debian package `P` (apt-get
/// install P)" if it is absent.
pub fn require_tool(name: &str, debian_package: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = find_on_path(name) {
        return Ok(p);
    }
    bail!(
        "required tool `{name}` not found on PATH: install the Debian package \
         `{debian_package}` (apt-get install {debian_package})"
    )
}

fn is_executable_file(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable_file(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable_file(p))
}

/// Renders a command line for error messages (program, arguments, explicit env and cwd).
pub fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!("(cd {} && ", dir.display()));
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => s.push_str(&format!("{}={} ", quote(k), quote(v))),
            None => s.push_str(&format!("-u {} ", quote(k))),
        }
    }
    s.push_str(&quote(cmd.get_program()));
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(a));
    }
    if cmd.get_current_dir().is_some() {
        s.push(')');
    }
    s
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn run_output(cmd: &mut Command) -> anyhow::Result<Output> {
    let line = describe(cmd);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    if !out.status.success() {
        bail!(
            "command `{line}` failed with {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            truncate(&String::from_utf8_lossy(&out.stdout), 4000),
        );
    }
    Ok(out)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.trim_end().to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes total)", &s[..end], s.len())
}

/// Runs the command to completion (stdin is /dev/null) and returns its stdout as a `String`.
///
/// A non-zero exit is an error including the command line, exit status and stderr. Non-UTF-8
/// stdout is an error too (use [`run_bytes`]).
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let line = describe(cmd);
    let out = run_bytes(cmd)?;
    String::from_utf8(out).with_context(|| format!("stdout of `{line}` is not UTF-8"))
}

/// Like [`run`] but returns stdout as raw bytes.
pub fn run_bytes(cmd: &mut Command) -> anyhow::Result<Vec<u8>> {
    Ok(run_output(cmd)?.stdout)
}
