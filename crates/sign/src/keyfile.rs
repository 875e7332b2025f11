//! The subset of GLib's `GKeyFile` that ostree's `config` and `remotes.d/*.conf` use, with
//! GKeyFile's value rules: escapes (`\s \n \t \r \\ \;`), booleans (`true`/`1`, `false`/`0`),
//! lists split on an unescaped separator, repeated groups merged, the last value of a key wins.

/// A parsed key file: ordered groups of key/raw-value pairs.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyFile {
    groups: Vec<(String, Vec<(String, String)>)>,
}

impl KeyFile {
    /// Parses key-file text; an error names the line.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut kf = KeyFile::default();
        let mut current: Option<usize> = None;
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let name = rest
                    .trim_end()
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {}: invalid group header {line:?}", n + 1))?;
                let idx = match kf.groups.iter().position(|(g, _)| g == name) {
                    Some(i) => i,
                    None => {
                        kf.groups.push((name.to_string(), Vec::new()));
                        kf.groups.len() - 1
                    }
                };
                current = Some(idx);
                continue;
            }
            let (k, v) = trimmed.split_once('=').ok_or_else(|| {
                format!(
                    "line {}: key file contains line {line:?} which is not a key-value pair, group, or comment",
                    n + 1
                )
            })?;
            let idx = current
                .ok_or_else(|| format!("line {}: key file does not start with a group", n + 1))?;
            let key = k.trim_end().to_string();
            let value = v.trim_start().to_string();
            if let Some(group) = kf.groups.get_mut(idx) {
                group.1.push((key, value));
            }
        }
        Ok(kf)
    }

    /// Group names, in order of first appearance.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|(g, _)| g.as_str())
    }

    /// The raw (still escaped) value of `key` in `group`: the last one.
    pub(crate) fn raw(&self, group: &str, key: &str) -> Option<&str> {
        self.groups
            .iter()
            .filter(|(g, _)| g == group)
            .flat_map(|(_, kv)| kv.iter())
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `g_key_file_get_string`: the unescaped value.
    pub(crate) fn string(&self, group: &str, key: &str) -> Result<Option<String>, String> {
        self.raw(group, key).map(|v| unescape(v, None)).transpose()
    }

    /// `g_key_file_get_boolean`.
    pub(crate) fn boolean(&self, group: &str, key: &str) -> Result<Option<bool>, String> {
        let Some(v) = self.raw(group, key) else {
            return Ok(None);
        };
        match v.trim_end() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(format!(
                "key file contains key \u{201c}{key}\u{201d} in group \u{201c}{group}\u{201d} which has a value that cannot be interpreted: {v:?}"
            )),
        }
    }

    /// `g_key_file_get_string_list` with the given separator.
    pub(crate) fn list(
        &self,
        group: &str,
        key: &str,
        sep: char,
    ) -> Result<Option<Vec<String>>, String> {
        let Some(v) = self.raw(group, key) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut chars = v.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(e) if e == sep => cur.push(e),
                    Some(e) => {
                        cur.push('\\');
                        cur.push(e);
                    }
                    None => cur.push('\\'),
                }
            } else if c == sep {
                out.push(unescape(&cur, Some(sep))?);
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            out.push(unescape(&cur, Some(sep))?);
        }
        Ok(Some(out))
    }
}

/// GKeyFile's value unescaping.
fn unescape(v: &str, list_sep: Option<char>) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(e) if Some(e) == list_sep => out.push(e),
            Some(e) => {
                return Err(format!(
                    "key file contains escape sequence \"\\{e}\" which is invalid"
                ));
            }
            None => return Err("key file contains escape character at end of line".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_values_lists() {
        let kf = KeyFile::parse(
            "# c\n[remote \"a\"]\nurl = x\ngpgkeypath=/a;/b\\;c;\n[core]\nk=1\n[remote \"a\"]\nurl=y\nb=\\sfoo\\n\n",
        )
        .unwrap();
        assert_eq!(
            kf.groups().collect::<Vec<_>>(),
            vec!["remote \"a\"", "core"]
        );
        assert_eq!(kf.raw("remote \"a\"", "url"), Some("y"));
        assert_eq!(
            kf.string("remote \"a\"", "b").unwrap().as_deref(),
            Some(" foo\n")
        );
        assert_eq!(
            kf.list("remote \"a\"", "gpgkeypath", ';').unwrap().unwrap(),
            vec!["/a".to_string(), "/b;c".to_string()]
        );
        assert_eq!(kf.boolean("core", "k").unwrap(), Some(true));
        assert!(KeyFile::parse("k=v\n").is_err());
        assert!(KeyFile::parse("[g]\nnovalue\n").is_err());
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "(\\PC|[\\[\\]=\\\\;\n#])*") {
            if let Ok(kf) = KeyFile::parse(&text) {
                let groups: Vec<String> = kf.groups().map(str::to_string).collect();
                for g in &groups {
                    for k in ["gpg-verify", "gpgkeypath", "sign-verify", "url"] {
                        let _ = kf.string(g, k);
                        let _ = kf.boolean(g, k);
                        let _ = kf.list(g, k, ';');
                        let _ = kf.list(g, k, ',');
                    }
                }
            }
        }
    }
}
