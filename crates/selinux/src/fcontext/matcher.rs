//! Lookup over the loaded specs with libselinux 3.4's `lookup_all` semantics, made fast by a
//! prefix index: the answer is the spec of highest priority (last after sorting) that passes
//! the stem filter and the file-type filter and whose regex matches; `<<none>>` means no
//! label. Every spec's regex starts with a required literal prefix (often the whole regex), so
//! a byte trie over those prefixes yields the few specs a path can match; they are tried from
//! the highest priority down and the first match wins. Regexes are compiled on first use.

use std::sync::OnceLock;

use regex::bytes::Regex;

use super::parse::Spec;
use super::pcre::{Translated, Unsupported, translate};
use super::subs::{Sub, sub_key};

/// Why a lookup failed (libselinux fails the same lookups).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// An empty path (`EINVAL`).
    #[error("empty path")]
    Empty,
    /// A NUL byte in the path (it cannot reach libselinux).
    #[error("path contains a NUL byte")]
    Nul,
    /// A spec's translated regex did not compile (`regex` crate limits).
    #[error("regex {regex:?}: {error}")]
    Regex {
        /// The spec's regex field.
        regex: String,
        /// The compiler's message.
        error: String,
    },
}

enum Test {
    /// Matches the path or the path plus a final `\n` (PCRE's `$`).
    Literal(Vec<u8>),
    Regex {
        pattern: String,
        compiled: OnceLock<Result<Regex, String>>,
    },
}

struct Entry {
    spec: Spec,
    test: Test,
}

#[derive(Default)]
struct Node {
    /// (byte, child index), sorted by byte.
    children: Vec<(u8, u32)>,
    /// Specs whose required prefix ends here, ascending.
    specs: Vec<u32>,
}

/// The specs of a policy, sorted as libselinux sorts them, with their index.
pub struct Matcher {
    entries: Vec<Entry>,
    nodes: Vec<Node>,
    subs: Vec<Sub>,
    dist_subs: Vec<Sub>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matcher({} specs)", self.entries.len())
    }
}

const S_IFMT: u32 = 0o170000;

impl Matcher {
    /// Builds the index over `specs` (already in libselinux's sorted order). A regex the
    /// translator cannot mirror exactly makes the whole policy [`Unsupported`].
    pub fn new(specs: Vec<Spec>, subs: Vec<Sub>, dist_subs: Vec<Sub>) -> Result<Self, Unsupported> {
        let mut m = Matcher {
            entries: Vec::with_capacity(specs.len()),
            nodes: vec![Node::default()],
            subs,
            dist_subs,
        };
        for spec in specs {
            let Translated {
                pattern,
                prefix,
                literal,
            } = translate(&spec.regex)?;
            let idx = u32::try_from(m.entries.len())
                .map_err(|_| Unsupported("more than 2^32 specs".into()))?;
            m.insert(&prefix, idx);
            let test = match literal {
                Some(l) => Test::Literal(l),
                None => Test::Regex {
                    pattern,
                    compiled: OnceLock::new(),
                },
            };
            m.entries.push(Entry { spec, test });
        }
        Ok(m)
    }

    fn insert(&mut self, prefix: &[u8], idx: u32) {
        let mut n = 0usize;
        for &b in prefix {
            let pos = self.nodes[n].children.binary_search_by_key(&b, |c| c.0);
            n = match pos {
                Ok(p) => self.nodes[n].children[p].1 as usize,
                Err(p) => {
                    let new = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[n].children.insert(p, (b, new as u32));
                    new
                }
            };
        }
        self.nodes[n].specs.push(idx);
    }

    /// The number of specs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no specs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `selabel_lookup_raw(key, mode)`: the context, `None` for no match or `<<none>>`.
    pub fn lookup(&self, key: &[u8], mode: u32) -> Result<Option<&[u8]>, LookupError> {
        if key.contains(&0) {
            return Err(LookupError::Nul);
        }
        let key = clean_key(key)?;
        let subbed = sub_key(&self.subs, &self.dist_subs, &key);
        let key: &[u8] = subbed.as_deref().unwrap_or(&key);
        let file_stem = key
            .get(1..)
            .and_then(|r| r.iter().position(|&b| b == b'/'))
            .map(|p| &key[..p + 1]);
        let mode = mode & S_IFMT;
        let mut cands: Vec<u32> = Vec::with_capacity(64);
        let mut n = 0usize;
        cands.extend_from_slice(&self.nodes[0].specs);
        for &b in key {
            let node = &self.nodes[n];
            match node.children.binary_search_by_key(&b, |c| c.0) {
                Ok(p) => n = node.children[p].1 as usize,
                Err(_) => break,
            }
            cands.extend_from_slice(&self.nodes[n].specs);
        }
        cands.sort_unstable_by(|a, b| b.cmp(a));
        for i in cands {
            let e = &self.entries[i as usize];
            let s = &e.spec;
            if let Some(stem) = &s.stem
                && file_stem != Some(&stem[..])
            {
                continue;
            }
            if mode != 0 && s.mode != 0 && mode != s.mode {
                continue;
            }
            if e.matches(key)? {
                return Ok((s.context != b"<<none>>").then_some(&s.context[..]));
            }
        }
        Ok(None)
    }
}

impl Entry {
    fn matches(&self, key: &[u8]) -> Result<bool, LookupError> {
        match &self.test {
            Test::Literal(l) => Ok(key == &l[..]
                || (key.len() == l.len() + 1 && key.starts_with(l) && key.last() == Some(&b'\n'))),
            Test::Regex { pattern, compiled } => {
                let re = compiled.get_or_init(|| {
                    regex::bytes::RegexBuilder::new(pattern)
                        .size_limit(64 << 20)
                        .build()
                        .map_err(|e| e.to_string())
                });
                match re {
                    Ok(re) => Ok(re.is_match(key)),
                    Err(error) => Err(LookupError::Regex {
                        regex: String::from_utf8_lossy(&self.spec.regex).into_owned(),
                        error: error.clone(),
                    }),
                }
            }
        }
    }
}

/// libselinux's key clean-up: runs of `/` become one, then one trailing `/` goes (unless the
/// key is `/`); an empty key is `EINVAL`.
fn clean_key(key: &[u8]) -> Result<Vec<u8>, LookupError> {
    let mut out = Vec::with_capacity(key.len());
    for &b in key {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    if out.is_empty() {
        return Err(LookupError::Empty);
    }
    if out.len() > 1 && out.last() == Some(&b'/') {
        out.pop();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean() {
        assert_eq!(clean_key(b"//a///b//").unwrap(), b"/a/b");
        assert_eq!(clean_key(b"//").unwrap(), b"/");
        assert_eq!(clean_key(b""), Err(LookupError::Empty));
    }
}
