//! The real `skopeo` (Debian package `skopeo`, 1.9), to copy and inspect images independently
//! of our own fetcher and encapsulate.

use crate::tools::{require_tool, run_bytes};

/// Runs `skopeo ARGS…`; returns stdout. A failure is an error with the command and stderr.
pub fn skopeo(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let bin = require_tool("skopeo", "skopeo")?;
    run_bytes(std::process::Command::new(bin).args(args))
}

/// `skopeo copy --quiet FLAGS… SRC DST`.
pub fn skopeo_copy(src: &str, dst: &str, flags: &[&str]) -> anyhow::Result<()> {
    let mut args = vec!["copy", "--quiet"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[src, dst]);
    skopeo(&args).map(drop)
}

/// `skopeo inspect IMGREF`, parsed.
pub fn skopeo_inspect(imgref: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice(&skopeo(&["inspect", imgref])?)?)
}
