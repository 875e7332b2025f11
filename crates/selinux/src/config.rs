//! The policy's `config` file, read as libostree reads it (ostree-sepolicy.c `initable_init`).

/// What libostree takes from `etc/selinux/config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelinuxConfig {
    /// `SELINUX=` starts with `enforcing` or `permissive` (ASCII case-insensitive) on the
    /// last such line.
    pub enabled: bool,
    /// The last `SELINUXTYPE=` value, whitespace-stripped.
    pub policy_type: Option<String>,
}

/// Parses `config` text: only lines starting exactly with `SELINUXTYPE=` or `SELINUX=` count
/// (no leading blanks, no comments handling beyond that); the last of each wins. Lines end at
/// `\n` only (GLib's default line reader); a `\r` is stripped with the other whitespace of the
/// type (`g_strstrip`).
pub fn parse_config(text: &str) -> SelinuxConfig {
    let mut c = SelinuxConfig::default();
    for line in text.split('\n') {
        if let Some(v) = line.strip_prefix("SELINUXTYPE=") {
            c.policy_type = Some(
                v.trim_matches(|ch: char| ch.is_ascii_whitespace() || ch == '\x0b')
                    .to_string(),
            );
        } else if let Some(v) = line.strip_prefix("SELINUX=") {
            let starts = |p: &str| {
                v.len() >= p.len() && v.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            };
            c.enabled = starts("enforcing") || starts("permissive");
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_config() {
        let c = parse_config("# x\nSELINUX=permissive\nSELINUXTYPE=default \n\nSETLOCALDEFS=0\n");
        assert!(c.enabled);
        assert_eq!(c.policy_type.as_deref(), Some("default"));
    }

    #[test]
    fn disabled_and_last_wins() {
        let c = parse_config("SELINUX=Enforcing\nSELINUX=disabled\nSELINUXTYPE=a\nSELINUXTYPE=b");
        assert!(!c.enabled);
        assert_eq!(c.policy_type.as_deref(), Some("b"));
        assert!(!parse_config(" SELINUX=enforcing").enabled);
        assert!(parse_config("SELINUX=ENFORCINGxyz").enabled);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = parse_config(&s);
        }
    }
}
