//! Ref names (`ostree_validate_rev`) and the container-ref escaping of ostree-ext
//! (ostree-repo-format §9).

use crate::checksum::Checksum;
use crate::error::FormatError;

/// Validates a ref name: `/`-separated components, each `[A-Za-z0-9_][-._A-Za-z0-9_]*`, and not
/// itself a checksum.
pub fn validate_ref(name: &str) -> Result<(), FormatError> {
    let err = |why| Err(FormatError::InvalidRef(name.to_string(), why));
    if name.is_empty() {
        return err("empty");
    }
    if Checksum::is_valid_hex(name) {
        return err("looks like a checksum");
    }
    for comp in name.split('/') {
        let mut chars = comp.bytes();
        match chars.next() {
            None => return err("empty path component"),
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {}
            Some(_) => return err("a component must start with a letter, digit or '_'"),
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) {
            return err("only letters, digits, '_', '-' and '.' are allowed");
        }
    }
    Ok(())
}

/// Validates a remote name (one ref component).
pub fn validate_remote_name(name: &str) -> Result<(), FormatError> {
    if name.contains('/') {
        return Err(FormatError::InvalidRef(
            name.to_string(),
            "remote name contains '/'",
        ));
    }
    validate_ref(name)
}

/// Escapes arbitrary text into a ref suffix the way ostree-ext's `refescape` does, so that our
/// `ostree/container/...` refs are the reference implementation's.
///
/// A `-` at the start of a component is escaped too (the reference passes it through and so
/// produces an invalid ref).
pub fn escape_for_ref(input: &str) -> Result<String, FormatError> {
    if input.is_empty() {
        return Err(FormatError::InvalidRef(
            String::new(),
            "cannot escape empty text",
        ));
    }
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len() * 2);
    let mut prev_alnum = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == '\0' {
            return Err(FormatError::InvalidRef(input.to_string(), "contains NUL"));
        }
        let last = i + 1 == chars.len();
        let at_component_start = i == 0 || chars[i - 1] == '/';
        if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_alnum = true;
            continue;
        }
        if (c == '-' && !at_component_start) || (c == '/' && prev_alnum && !last) {
            out.push(c);
        } else if c == '_' {
            out.push_str("__");
        } else {
            out.push_str(&format!("_{:02X}_", u32::from(c)));
        }
        prev_alnum = false;
    }
    Ok(out)
}

/// Reverses [`escape_for_ref`].
pub fn unescape_ref(input: &str) -> Result<String, FormatError> {
    let bad = |why| FormatError::InvalidRef(input.to_string(), why);
    let mut out = String::with_capacity(input.len());
    let mut it = input.chars().peekable();
    while let Some(c) = it.next() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '/' {
            out.push(c);
        } else if c == '_' {
            if it.peek() == Some(&'_') {
                it.next();
                out.push('_');
                continue;
            }
            let mut hexs = String::new();
            loop {
                match it.next() {
                    Some('_') => break,
                    Some(h) if h.is_ascii_hexdigit() && hexs.len() < 8 => hexs.push(h),
                    _ => return Err(bad("unterminated or invalid '_XX_' escape")),
                }
            }
            let v = u32::from_str_radix(&hexs, 16).map_err(|_| bad("invalid escape"))?;
            out.push(char::from_u32(v).ok_or_else(|| bad("escape is not a character"))?);
        } else {
            return Err(bad("character not allowed in an escaped ref"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        for ok in [
            "a",
            "test",
            "fedora/x86_64/coreos/stable",
            "ostree/container/blob/sha256_3A_2c26",
            "_x",
            "a.b-c",
        ] {
            validate_ref(ok).unwrap();
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "-a",
            ".a",
            "a b",
            "a:b",
            &"0".repeat(64),
        ] {
            assert!(validate_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaping() {
        let cases = [
            ("sha256:2c26b4", "sha256_3A_2c26b4"),
            (
                "docker://quay.io/fedora/fedora:latest",
                "docker_3A__2F__2F_quay_2E_io/fedora/fedora_3A_latest",
            ),
            ("a_b", "a__b"),
            ("trailing/", "trailing_2F_"),
            ("ü", "_FC_"),
        ];
        for (i, o) in cases {
            let e = escape_for_ref(i).unwrap();
            assert_eq!(e, o);
            assert_eq!(unescape_ref(&e).unwrap(), i);
            validate_ref(&format!("ostree/container/image/{e}")).unwrap();
        }
        assert!(escape_for_ref("").is_err());
        assert!(unescape_ref("a_zz_").is_err());
        assert!(unescape_ref("a:b").is_err());
        let e = escape_for_ref("x/-y").unwrap();
        validate_ref(&e).unwrap();
        assert_eq!(unescape_ref(&e).unwrap(), "x/-y");
    }
}
