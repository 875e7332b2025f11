//! Path aliases (`file_contexts.subs_dist`, `file_contexts.subs`), read and applied as
//! libselinux 3.4's `selabel_subs_init` / `selabel_sub_key` do: `alias original` pairs, the
//! last line tried first, an alias matching a whole leading path (`/a` matches `/a` and
//! `/a/…`, not `/ab`), one substitution per list, `.subs` first and then `.subs_dist` on its
//! result (or on the key when `.subs` did not apply).

use super::parse::is_space;
use super::pcre::Unsupported;

/// One alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    /// The alias (path prefix as written in the file).
    pub src: Vec<u8>,
    /// What it stands for.
    pub dst: Vec<u8>,
}

/// libselinux reads lines with `fgets` into a 1024-byte buffer (at most 1022 bytes a read).
const CHUNK: usize = 1022;

/// Parses a subs file; the list is in the order libselinux tries it (last line first).
/// A line whose parse would read past what `fgets` wrote (libselinux then reads stale
/// buffer bytes) is [`Unsupported`].
pub fn parse_subs(data: &[u8]) -> Result<Vec<Sub>, Unsupported> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut buf = [0u8; CHUNK + 2];
    while !rest.is_empty() {
        let n = rest
            .iter()
            .take(CHUNK)
            .position(|&b| b == b'\n')
            .map_or(rest.len().min(CHUNK), |p| p + 1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        buf[..n].copy_from_slice(chunk);
        buf[n] = 0;
        let mut src = 0;
        while buf[src] != 0 && is_space(buf[src]) {
            src += 1;
        }
        if buf[src] == b'#' {
            continue;
        }
        let mut p = src;
        while buf[p] != 0 && !is_space(buf[p]) {
            p += 1;
        }
        let ended_at_terminator = p == n;
        let src_end = p;
        buf[p] = 0;
        p += 1;
        if buf[src] == 0 {
            continue;
        }
        if ended_at_terminator {
            return Err(Unsupported(
                "a substitution line with a single field and no newline".into(),
            ));
        }
        let mut dst = p;
        while buf[dst] != 0 && is_space(buf[dst]) {
            dst += 1;
        }
        p = dst;
        while buf[p] != 0 && !is_space(buf[p]) {
            p += 1;
        }
        if buf[dst] == 0 {
            continue;
        }
        out.push(Sub {
            src: buf[src..src_end].to_vec(),
            dst: buf[dst..p].to_vec(),
        });
    }
    out.reverse();
    Ok(out)
}

/// `selabel_sub`: the first alias in `subs` that is a whole leading path of `key`.
fn sub_one(subs: &[Sub], key: &[u8]) -> Option<Vec<u8>> {
    for s in subs {
        let Some(rest) = key.strip_prefix(&s.src[..]) else {
            continue;
        };
        match rest.first() {
            None | Some(b'/') => {
                let rest = if rest.first() == Some(&b'/') && s.dst == b"/" {
                    &rest[1..]
                } else {
                    rest
                };
                let mut v = s.dst.clone();
                v.extend_from_slice(rest);
                return Some(v);
            }
            _ => {}
        }
    }
    None
}

/// `selabel_sub_key`: `.subs`, then `.subs_dist` on its result or on the key.
pub fn sub_key(subs: &[Sub], dist: &[Sub], key: &[u8]) -> Option<Vec<u8>> {
    match sub_one(subs, key) {
        Some(k) => Some(sub_one(dist, &k).unwrap_or(k)),
        None => sub_one(dist, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_first_and_whole_components() {
        let s = parse_subs(b"# c\n/a /x\n  /a /y \n/r /\n\n/solo\n").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(sub_key(&[], &s, b"/a/b").as_deref(), Some(&b"/y/b"[..]));
        assert_eq!(sub_key(&[], &s, b"/a").as_deref(), Some(&b"/y"[..]));
        assert_eq!(sub_key(&[], &s, b"/ab"), None);
        assert_eq!(sub_key(&[], &s, b"/r/q").as_deref(), Some(&b"/q"[..]));
        let local = parse_subs(b"/l /a\n").unwrap();
        assert_eq!(sub_key(&local, &s, b"/l/z").as_deref(), Some(&b"/y/z"[..]));
    }

    #[test]
    fn stale_buffer_reads_are_refused() {
        assert!(parse_subs(b"/a /b\n/solo").is_err());
        assert_eq!(parse_subs(b"/a /b\n/c /d").unwrap().len(), 2);
    }
}
