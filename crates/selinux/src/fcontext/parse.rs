//! The text form of `file_contexts` (and `.homedirs`, `.local`), read line by line as
//! libselinux 3.4's `process_line` / `read_spec_entries` read it when the handle is not
//! validating (libostree's case): up to three whitespace-separated fields (`regex [type]
//! context`, further fields ignored), `#` comments, non-ASCII bytes in a field refused, no
//! duplicate or context check.

use std::path::{Path, PathBuf};

/// One specification, as libselinux keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The regex field, unanchored.
    pub regex: Vec<u8>,
    /// The file type it applies to (`S_IF*` bits), 0 for any.
    pub mode: u32,
    /// The raw context, or `<<none>>`.
    pub context: Vec<u8>,
    /// The stem: the regex up to its second `/` when no meta character comes before it.
    pub stem: Option<Vec<u8>>,
    /// libselinux's `hasMetaChars`: specs without are tried first.
    pub has_meta: bool,
}

/// Why a line was refused (libselinux refuses the whole file, and `selabel_open` fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// A field holds a byte outside ASCII.
    #[error("non-ASCII characters found")]
    NonAscii,
    /// Only one field.
    #[error("line is missing fields")]
    MissingFields,
    /// The type field is not one of `-- -d -l -c -b -s -p`.
    #[error("invalid file type {0:?}")]
    BadFileType(String),
}

/// A refused line of a spec file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: line {line}: {kind}", path.display())]
pub struct ParseError {
    /// The spec file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u32,
    /// What is wrong.
    pub kind: LineError,
}

/// C `isspace` in the C locale.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// libselinux's `string_to_mode`.
fn file_type(t: &[u8]) -> Option<u32> {
    let [b'-', c] = t else { return None };
    Some(match c {
        b'b' => 0o060000,
        b'c' => 0o020000,
        b'd' => 0o040000,
        b'p' => 0o010000,
        b'l' => 0o120000,
        b's' => 0o140000,
        b'-' => 0o100000,
        _ => return None,
    })
}

/// libselinux's `spec_hasMetaChars` (a backslash skips the next byte).
pub fn has_meta_chars(re: &[u8]) -> bool {
    let mut i = 0;
    while i < re.len() {
        match re[i] {
            b'.' | b'^' | b'$' | b'?' | b'*' | b'+' | b'|' | b'[' | b'(' | b'{' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

/// libselinux's `get_stem_from_spec`: up to (not including) the second `/`, if no byte
/// before it is one of `.^$?*+|[({` (a backslash is not checked).
pub fn stem_of_spec(re: &[u8]) -> Option<Vec<u8>> {
    let end = re.get(1..)?.iter().position(|&b| b == b'/')? + 1;
    if re[..end].iter().any(|b| b".^$?*+|[({".contains(b)) {
        return None;
    }
    Some(re[..end].to_vec())
}

/// Makes a spec from its fields.
pub fn spec(regex: Vec<u8>, mode: u32, context: Vec<u8>) -> Spec {
    Spec {
        stem: stem_of_spec(&regex),
        has_meta: has_meta_chars(&regex),
        regex,
        mode,
        context,
    }
}

/// The fields of one line (without its `\n`): `None` for blank and comment lines.
/// A spec line's fields: regex, file type bits, context.
type Fields = (Vec<u8>, u32, Vec<u8>);

fn line_fields(line: &[u8]) -> Result<Option<Fields>, LineError> {
    let mut i = 0;
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    if i == line.len() || line[i] == b'#' {
        return Ok(None);
    }
    let mut fields: Vec<&[u8]> = Vec::with_capacity(3);
    while fields.len() < 3 && i < line.len() {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        let s = i;
        while i < line.len() && !is_space(line[i]) {
            if !line[i].is_ascii() {
                return Err(LineError::NonAscii);
            }
            i += 1;
        }
        if i > s {
            fields.push(&line[s..i]);
        }
    }
    match fields[..] {
        [re, ctx] => Ok(Some((re.to_vec(), 0, ctx.to_vec()))),
        [re, ty, ctx] => {
            let mode = file_type(ty)
                .ok_or_else(|| LineError::BadFileType(String::from_utf8_lossy(ty).into()))?;
            Ok(Some((re.to_vec(), mode, ctx.to_vec())))
        }
        _ => Err(LineError::MissingFields),
    }
}

/// Parses a text spec file in file order. The caller has ruled out NUL bytes (libselinux's
/// C strings would cut lines there).
pub fn parse_text(path: &Path, text: &[u8]) -> Result<Vec<Spec>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let lineno = u32::try_from(n + 1).unwrap_or(u32::MAX);
        match line_fields(line) {
            Ok(Some((re, mode, ctx))) => out.push(spec(re, mode, ctx)),
            Ok(None) => {}
            Err(kind) => {
                return Err(ParseError {
                    path: path.to_path_buf(),
                    line: lineno,
                    kind,
                });
            }
        }
    }
    Ok(out)
}

/// libselinux's `sort_specs`: a stable partition, specs with meta characters first.
pub fn sort_specs(specs: Vec<Spec>) -> Vec<Spec> {
    let (mut meta, exact): (Vec<Spec>, Vec<Spec>) = specs.into_iter().partition(|s| s.has_meta);
    meta.extend(exact);
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Result<Vec<Spec>, ParseError> {
        parse_text(Path::new("/fc"), t.as_bytes())
    }

    #[test]
    fn fields_types_and_comments() {
        let t = b"# c\n\n  \t\n/a\tctx\n/b -d c2 extra\xff-ignored\n/c   --   c3";
        let s = parse_text(Path::new("/fc"), t).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].mode, &s[0].context[..]), (0, &b"ctx"[..]));
        assert_eq!((s[1].mode, &s[1].context[..]), (0o040000, &b"c2"[..]));
        assert_eq!(s[2].mode, 0o100000);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = p("/a x\n/b\n").unwrap_err();
        assert_eq!((e.line, &e.kind), (2, &LineError::MissingFields));
        assert_eq!(e.path, Path::new("/fc"));
        let e = p("/a -x ctx\n").unwrap_err();
        assert_eq!(e.kind, LineError::BadFileType("-x".into()));
        let e = parse_text(Path::new("/fc"), b"/a\n/\xc3\xa9 ctx\n").unwrap_err();
        assert_eq!((e.line, e.kind), (1, LineError::MissingFields));
        let e = parse_text(Path::new("/fc"), b"/x ctx\n/\xc3\xa9 ctx\n").unwrap_err();
        assert_eq!((e.line, e.kind.clone()), (2, LineError::NonAscii));
        assert_eq!(e.to_string(), "/fc: line 2: non-ASCII characters found");
        // `#` only starts a comment at the start of a line.
        assert!(matches!(
            p("/a #c ctx\n").unwrap_err().kind,
            LineError::BadFileType(_)
        ));
    }

    #[test]
    fn stems_and_meta() {
        assert_eq!(
            stem_of_spec(b"/usr/bin(/.*)?").as_deref(),
            Some(&b"/usr"[..])
        );
        assert_eq!(stem_of_spec(b"/usr(/.*)?"), None);
        assert_eq!(stem_of_spec(b"/usr"), None);
        assert_eq!(stem_of_spec(b"/"), None);
        assert_eq!(stem_of_spec(b"/u\\-r/x").as_deref(), Some(&b"/u\\-r"[..]));
        assert_eq!(stem_of_spec(b"/u\\.r/x"), None);
        assert!(!has_meta_chars(b"/etc/x\\.conf"));
        assert!(has_meta_chars(b"/etc/x.conf"));
    }

    #[test]
    fn sort_is_stable_partition() {
        let s = sort_specs(p("/a x\n/b.* y\n/c z\n/d.* w\n").unwrap());
        let order: Vec<&[u8]> = s.iter().map(|s| &s.regex[..]).collect();
        assert_eq!(order, [&b"/b.*"[..], b"/d.*", b"/a", b"/c"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_text(Path::new("/fc"), &bytes);
        }
    }
}
