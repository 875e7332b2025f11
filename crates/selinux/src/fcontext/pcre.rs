//! Translation of a `file_contexts` regex (PCRE2 syntax, compiled by libselinux as `^R$` with
//! `PCRE2_DOTALL` and no UTF mode) into an equivalent `regex` crate pattern over bytes.
//!
//! Only a subset whose meaning is certain is accepted: literals, escaped punctuation, `.`,
//! `\d \D \w \W \s \S` (ASCII in both engines), bracket classes with ranges and POSIX names,
//! groups (`(…)`, `(?:…)`), alternation, greedy or lazy quantifiers (laziness does not change
//! *whether* an anchored pattern matches), and a `$` ending the pattern. Anything else
//! (back-references, look-around, possessive quantifiers, inline options, a `{` that is not a
//! quantifier, a `$` inside…) is [`Unsupported`]: the caller then leaves the policy to libselinux
//! rather than guess.
//!
//! PCRE's `$` (without `DOLLAR_ENDONLY`) matches at the end or before a final newline, so the
//! closing anchor becomes `\n?\z`. libselinux adds `^…$` without a group, so a top-level `|`
//! leaves the other alternatives unanchored on one side, exactly as here.

use std::fmt::Write as _;

/// A construct this translator does not reproduce exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// A translated spec regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// The `regex` crate pattern (bytes mode, anchored as libselinux anchors it).
    pub pattern: String,
    /// Bytes every matching path starts with (empty when none are required).
    pub prefix: Vec<u8>,
    /// The whole regex is this literal: a path matches iff it equals it, or it plus `\n`.
    pub literal: Option<Vec<u8>>,
}

const POSIX: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

fn lit(out: &mut String, b: u8) {
    let _ = write!(out, "\\x{b:02X}");
}

/// Translates `re` (the regex field of a spec, before libselinux's anchoring).
pub fn translate(re: &[u8]) -> Result<Translated, Unsupported> {
    let why = |what: &str| Unsupported(format!("{what} in {:?}", String::from_utf8_lossy(re)));
    let bad = |what: &str| Err(why(what));
    let mut out = String::with_capacity(re.len() * 4 + 16);
    out.push_str("(?s-u)\\A");
    let mut prefix = Vec::new();
    let mut in_prefix = true;
    let mut top_alt = false;
    let mut all_literal = true;
    let mut literal = Vec::new();
    let mut depth = 0usize;
    // Whether the last token can take a quantifier, and whether it was a prefix byte.
    let mut repeatable = false;
    let mut last_in_prefix = false;
    let mut i = 0;
    while i < re.len() {
        let b = re[i];
        if !b.is_ascii() || b == 0 {
            return bad("a non-ASCII or NUL byte");
        }
        let mut literal_byte = None;
        match b {
            b'\\' => {
                let Some(&c) = re.get(i + 1) else {
                    return bad("a trailing backslash");
                };
                i += 1;
                if matches!(c, b'd' | b'D' | b'w' | b'W' | b's' | b'S') {
                    out.push('\\');
                    out.push(c as char);
                    all_literal = false;
                    in_prefix = false;
                    repeatable = true;
                    last_in_prefix = false;
                } else if c.is_ascii() && !c.is_ascii_alphanumeric() && c != 0 {
                    literal_byte = Some(c);
                } else {
                    return bad("an escape");
                }
            }
            b'.' => {
                out.push('.');
                all_literal = false;
                in_prefix = false;
                repeatable = true;
                last_in_prefix = false;
            }
            b'^' => {
                out.push('^');
                all_literal = false;
                in_prefix = false;
                repeatable = false;
            }
            b'$' => {
                if i + 1 != re.len() || depth != 0 {
                    return bad("a `$` before the end");
                }
                // `$$` is `$`: the closing anchor below stands for both.
                repeatable = false;
            }
            b'[' => {
                i = class(re, i, &mut out).map_err(|e| why(&e))?;
                all_literal = false;
                in_prefix = false;
                repeatable = true;
                last_in_prefix = false;
            }
            b'(' => {
                if re.get(i + 1) == Some(&b'?') {
                    if re.get(i + 2) != Some(&b':') {
                        return bad("a `(?` group");
                    }
                    i += 2;
                }
                out.push_str("(?:");
                depth += 1;
                all_literal = false;
                in_prefix = false;
                repeatable = false;
            }
            b')' => {
                if depth == 0 {
                    return bad("an unbalanced `)`");
                }
                depth -= 1;
                out.push(')');
                repeatable = true;
                last_in_prefix = false;
            }
            b'|' => {
                if depth == 0 {
                    top_alt = true;
                }
                out.push('|');
                all_literal = false;
                in_prefix = false;
                repeatable = false;
            }
            b'*' | b'+' | b'?' | b'{' => {
                let (text, min, len) = if b == b'{' {
                    match counted(&re[i..]) {
                        Some(q) => q,
                        None => return bad("a `{` that is not a quantifier"),
                    }
                } else {
                    ((b as char).to_string(), u32::from(b == b'+'), 1)
                };
                if !repeatable {
                    return bad("a quantifier with nothing to repeat");
                }
                i += len - 1;
                out.push_str(&text);
                match re.get(i + 1) {
                    Some(b'+') => return bad("a possessive quantifier"),
                    Some(b'?') => {
                        out.push('?');
                        i += 1;
                    }
                    _ => {}
                }
                if last_in_prefix && min == 0 {
                    prefix.pop();
                }
                all_literal = false;
                in_prefix = false;
                repeatable = false;
                last_in_prefix = false;
            }
            _ => literal_byte = Some(b),
        }
        if let Some(c) = literal_byte {
            lit(&mut out, c);
            literal.push(c);
            last_in_prefix = in_prefix && depth == 0;
            if last_in_prefix {
                prefix.push(c);
            }
            repeatable = true;
        }
        i += 1;
    }
    if depth != 0 {
        return bad("an unclosed `(`");
    }
    out.push_str("\n?\\z");
    if top_alt {
        prefix.clear();
    }
    Ok(Translated {
        pattern: out,
        prefix,
        literal: all_literal.then_some(literal),
    })
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s`: (pattern text, minimum, length).
fn counted(s: &[u8]) -> Option<(String, u32, usize)> {
    let end = s.iter().position(|&c| c == b'}')?;
    let body = std::str::from_utf8(&s[1..end]).ok()?;
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body, None),
    };
    let num = |t: &str| -> Option<u32> {
        if t.is_empty() || t.len() > 5 || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok().filter(|&n| n <= 65535)
    };
    let min = num(lo)?;
    if let Some(hi) = hi
        && !hi.is_empty()
        && num(hi)? < min
    {
        return None;
    }
    Some((format!("{{{body}}}"), min, end + 1))
}

/// A bracket class starting at `re[start] == b'['`: appends it, returns the index of its `]`.
fn class(re: &[u8], start: usize, out: &mut String) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if re.get(i) == Some(&b'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&b) = re.get(i) else {
            return Err("an unterminated class".into());
        };
        if b == b']' && !first {
            out.push(']');
            return Ok(i);
        }
        first = false;
        if b == b'[' && matches!(re.get(i + 1), Some(b':' | b'.' | b'=')) {
            let rest = &re[i + 2..];
            let close = rest
                .windows(2)
                .position(|w| w == b":]")
                .ok_or("a `[:` in a class")?;
            let name = std::str::from_utf8(&rest[..close]).map_err(|_| "a class name")?;
            let bare = name.strip_prefix('^').unwrap_or(name);
            if re[i + 1] != b':' || !POSIX.contains(&bare) {
                return Err(format!("the class name [:{name}:]"));
            }
            let _ = write!(out, "[:{name}:]");
            i += 2 + close + 2;
            continue;
        }
        let (lo, next) = class_atom(re, i)?;
        let Some(lo) = lo else {
            i = next;
            // A class escape (`\d`…) was written; a `-` after it would be literal in PCRE
            // but is easy to misread: refuse.
            if re.get(i) == Some(&b'-') && re.get(i + 1) != Some(&b']') {
                return Err("a range from a class escape".into());
            }
            continue;
        };
        let esc = |c: u8, out: &mut String| lit(out, c);
        if re.get(next) == Some(&b'-') && re.get(next + 1).is_some_and(|&c| c != b']') {
            if re.get(next + 1) == Some(&b'[') {
                return Err("a range to `[`".into());
            }
            let (hi, after) = class_atom(re, next + 1)?;
            let Some(hi) = hi else {
                return Err("a range to a class escape".into());
            };
            if hi < lo {
                return Err("a reversed range".into());
            }
            esc(lo, out);
            out.push('-');
            esc(hi, out);
            i = after;
        } else {
            esc(lo, out);
            i = next;
        }
    }
}

/// One class member at `re[i]`: `Some(byte)` for a literal (written by the caller), `None`
/// for a class escape (written here); and the index after it.
fn class_atom(re: &[u8], i: usize) -> Result<(Option<u8>, usize), String> {
    let b = re[i];
    if b == 0 || !b.is_ascii() {
        return Err("a non-ASCII or NUL byte".into());
    }
    if b != b'\\' {
        return Ok((Some(b), i + 1));
    }
    let Some(&c) = re.get(i + 1) else {
        return Err("a trailing backslash".into());
    };
    if c.is_ascii() && !c.is_ascii_alphanumeric() && c != 0 {
        return Ok((Some(c), i + 2));
    }
    Err(format!("the class escape \\{}", c as char))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Translated {
        translate(s.as_bytes()).unwrap()
    }

    #[test]
    fn prefixes_and_literals() {
        assert_eq!(t("/usr/bin(/.*)?").prefix, b"/usr/bin");
        assert_eq!(t("/usr/lib64?/x").prefix, b"/usr/lib6");
        assert_eq!(t("/usr/lib6+").prefix, b"/usr/lib6");
        assert_eq!(t("/a|/b").prefix, b"");
        assert_eq!(
            t("/etc/x\\.conf").literal.as_deref(),
            Some(&b"/etc/x.conf"[..])
        );
        assert_eq!(t("/etc/x\\.conf").prefix, b"/etc/x.conf");
        assert_eq!(t("/etc/x$").literal.as_deref(), Some(&b"/etc/x"[..]));
        assert_eq!(t("/x.*").literal, None);
    }

    #[test]
    fn refuses_what_it_cannot_mirror() {
        for s in [
            "/a(?=b)",
            "/a\\1",
            "/a*+",
            "/a{x}",
            "/a$b",
            "(",
            "/a)",
            "*a",
            "/a\\",
            "/[a",
            "/[[:foo:]]",
            "/[z-a]",
            "/a**",
            "/a\\n",
            "/\u{e9}",
        ] {
            assert!(translate(s.as_bytes()).is_err(), "{s}");
        }
    }

    #[test]
    fn classes() {
        assert!(t("/[]a]").pattern.contains("[\\x5D\\x61]"));
        assert!(t("/[^/]*").pattern.contains("[^\\x2F]*"));
        assert!(
            t("/[[:digit:]x-z-]")
                .pattern
                .contains("[[:digit:]\\x78-\\x7A\\x2D]")
        );
        assert!(t("/[a[]").pattern.contains("[\\x61\\x5B]"));
    }
}
