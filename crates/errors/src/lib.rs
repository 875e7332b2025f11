//! The one coarse error classification of the workspace.
//!
//! Every crate's error type says what went wrong in its own words and implements [`Classify`],
//! returning the same [`ErrorKind`]. Callers (the CLI's exit codes, retry logic, tests) branch on
//! that kind, never on message text. Messages describe only their own level: the causes are
//! reached through [`std::error::Error::source`], and [`chain`] prints them all.

use std::error::Error;
use std::fmt;

/// What went wrong, coarsely; stable for callers to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An image, layer, object, rev or file is absent.
    NotFound,
    /// Credentials missing or refused.
    Auth,
    /// Data does not match its digest or checksum, or does not parse.
    Corrupt,
    /// A layer's structure is invalid (entries that cannot belong to an ostree layer).
    Invalid,
    /// A path escapes where it must stay.
    UnsafePath,
    /// A size, count or depth limit was exceeded.
    TooLarge,
    /// An object does not belong to the commit being imported.
    Unreachable,
    /// A commit lacks objects.
    Incomplete,
    /// Well-formed, but not something this program handles.
    Unsupported,
    /// A stream ended early.
    Truncated,
    /// A signature is missing or bad, or its key is not trusted (or expired, or revoked).
    Signature,
    /// Registry or transfer failure, including stalls.
    Network,
    /// skopeo is missing, failed, or stopped speaking the protocol.
    Proxy,
    /// Disk full, or the repository's free-space reserve reached.
    NoSpace,
    /// Local operating-system I/O failure.
    Io,
    /// A lock could not be taken, or a ref moved under us.
    Locked,
    /// Stopped by the caller.
    Interrupted,
    /// A broken invariant of ours (a bug, not bad input): please report it.
    Internal,
    /// Bad arguments or configuration.
    Usage,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Auth => "authentication",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Invalid => "invalid",
            ErrorKind::UnsafePath => "unsafe path",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Signature => "signature",
            ErrorKind::Network => "network",
            ErrorKind::Proxy => "proxy",
            ErrorKind::NoSpace => "no space",
            ErrorKind::Io => "i/o",
            ErrorKind::Locked => "locked",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Internal => "internal",
            ErrorKind::Usage => "usage",
        };
        f.write_str(s)
    }
}

/// An error that knows its [`ErrorKind`].
pub trait Classify {
    /// The coarse class, already folded over the causes this error wraps.
    fn kind(&self) -> ErrorKind;
}

/// Every message of `e` and its causes, outermost first, joined by `": "`.
///
/// Because each level says only its own part, this is the whole story with no repetition.
pub fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !msg.is_empty() {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = c.source();
    }
    out
}

/// A formatting adapter: `format!("{}", Chain(&e))` prints [`chain`].
pub struct Chain<'a>(pub &'a dyn Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer {what}")]
    struct Outer {
        what: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn chain_prints_each_level_once() {
        let e = Outer {
            what: "x",
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(chain(&e), "outer x: No such file or directory (os error 2)");
        assert_eq!(Chain(&e).to_string(), chain(&e));
    }
}
