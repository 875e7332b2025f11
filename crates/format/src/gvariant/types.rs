//! GVariant type strings: parsing, alignment and fixed sizes (GVariant specification §2–3).

use std::fmt;

use crate::error::FormatError;

/// Deepest container nesting accepted; deeper input is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 64;

/// A GVariant type, as far as ostree (and arbitrary commit metadata) can carry it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `b`
    Bool,
    /// `y`
    Byte,
    /// `n`
    I16,
    /// `q`
    U16,
    /// `i`
    I32,
    /// `u`
    U32,
    /// `x`
    I64,
    /// `t`
    U64,
    /// `h`
    Handle,
    /// `d`
    F64,
    /// `s`
    Str,
    /// `o`
    ObjectPath,
    /// `g`
    Signature,
    /// `v`
    Variant,
    /// `m…`
    Maybe(Box<Type>),
    /// `a…`
    Array(Box<Type>),
    /// `(…)`
    Tuple(Vec<Type>),
    /// `{kv}`
    DictEntry(Box<Type>, Box<Type>),
}

impl Type {
    /// Parses one complete type string (nothing may follow it).
    pub fn parse(s: &str) -> Result<Type, FormatError> {
        let bytes = s.as_bytes();
        let (ty, used) = Self::parse_prefix(bytes, 0)
            .ok_or_else(|| FormatError::InvalidTypeString(s.to_string()))?;
        if used != bytes.len() {
            return Err(FormatError::InvalidTypeString(s.to_string()));
        }
        Ok(ty)
    }

    fn parse_prefix(b: &[u8], depth: usize) -> Option<(Type, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let first = *b.first()?;
        let basic = match first {
            b'b' => Some(Type::Bool),
            b'y' => Some(Type::Byte),
            b'n' => Some(Type::I16),
            b'q' => Some(Type::U16),
            b'i' => Some(Type::I32),
            b'u' => Some(Type::U32),
            b'x' => Some(Type::I64),
            b't' => Some(Type::U64),
            b'h' => Some(Type::Handle),
            b'd' => Some(Type::F64),
            b's' => Some(Type::Str),
            b'o' => Some(Type::ObjectPath),
            b'g' => Some(Type::Signature),
            b'v' => Some(Type::Variant),
            _ => None,
        };
        if let Some(t) = basic {
            return Some((t, 1));
        }
        match first {
            b'm' => {
                let (inner, n) = Self::parse_prefix(&b[1..], depth + 1)?;
                Some((Type::Maybe(Box::new(inner)), n + 1))
            }
            b'a' => {
                let (inner, n) = Self::parse_prefix(&b[1..], depth + 1)?;
                Some((Type::Array(Box::new(inner)), n + 1))
            }
            b'(' => {
                let mut pos = 1;
                let mut members = Vec::new();
                loop {
                    if *b.get(pos)? == b')' {
                        return Some((Type::Tuple(members), pos + 1));
                    }
                    let (m, n) = Self::parse_prefix(&b[pos..], depth + 1)?;
                    members.push(m);
                    pos += n;
                }
            }
            b'{' => {
                let (k, n1) = Self::parse_prefix(&b[1..], depth + 1)?;
                if !k.is_basic() {
                    return None;
                }
                let (v, n2) = Self::parse_prefix(&b[1 + n1..], depth + 1)?;
                if *b.get(1 + n1 + n2)? != b'}' {
                    return None;
                }
                Some((Type::DictEntry(Box::new(k), Box::new(v)), n1 + n2 + 2))
            }
            _ => None,
        }
    }

    /// Basic types may be dictionary keys.
    pub fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Maybe(_) | Type::Array(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// Alignment in bytes.
    pub fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::Str | Type::ObjectPath | Type::Signature => 1,
            Type::I16 | Type::U16 => 2,
            Type::I32 | Type::U32 | Type::Handle => 4,
            Type::I64 | Type::U64 | Type::F64 | Type::Variant => 8,
            Type::Maybe(t) | Type::Array(t) => t.alignment(),
            Type::Tuple(ms) => ms.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size in bytes if every value of this type has the same size.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::I16 | Type::U16 => Some(2),
            Type::I32 | Type::U32 | Type::Handle => Some(4),
            Type::I64 | Type::U64 | Type::F64 => Some(8),
            Type::Str
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Maybe(_)
            | Type::Array(_) => None,
            Type::Tuple(ms) => fixed_tuple_size(ms.iter()),
            Type::DictEntry(k, v) => fixed_tuple_size([k.as_ref(), v.as_ref()].into_iter()),
        }
    }

    /// Member types of a tuple or dict entry.
    pub(crate) fn members(&self) -> Vec<&Type> {
        match self {
            Type::Tuple(ms) => ms.iter().collect(),
            Type::DictEntry(k, v) => vec![k.as_ref(), v.as_ref()],
            _ => Vec::new(),
        }
    }
}

fn fixed_tuple_size<'a>(members: impl Iterator<Item = &'a Type>) -> Option<usize> {
    let mut offset = 0usize;
    let mut align = 1usize;
    for m in members {
        let a = m.alignment();
        align = align.max(a);
        offset = align_up(offset, a);
        offset += m.fixed_size()?;
    }
    let size = align_up(offset, align);
    // The unit tuple `()` occupies one byte.
    Some(if size == 0 { 1 } else { size })
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub(crate) fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            Type::Bool => "b",
            Type::Byte => "y",
            Type::I16 => "n",
            Type::U16 => "q",
            Type::I32 => "i",
            Type::U32 => "u",
            Type::I64 => "x",
            Type::U64 => "t",
            Type::Handle => "h",
            Type::F64 => "d",
            Type::Str => "s",
            Type::ObjectPath => "o",
            Type::Signature => "g",
            Type::Variant => "v",
            Type::Maybe(t) => return write!(f, "m{t}"),
            Type::Array(t) => return write!(f, "a{t}"),
            Type::Tuple(ms) => {
                f.write_str("(")?;
                for m in ms {
                    write!(f, "{m}")?;
                }
                return f.write_str(")");
            }
            Type::DictEntry(k, v) => return write!(f, "{{{k}{v}}}"),
        };
        f.write_str(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for s in [
            "(a{sv}aya(say)sstayay)",
            "(a(say)a(sayay))",
            "(uuua(ayay))",
            "mas",
            "()",
            "a{s(taya{sv})}",
        ] {
            assert_eq!(Type::parse(s).unwrap().to_string(), s);
        }
        for s in ["", "(", "a", "{vs}", "(u", "uu", "{sss}", "z"] {
            assert!(Type::parse(s).is_err(), "{s}");
        }
        let deep = "a".repeat(200) + "y";
        assert!(Type::parse(&deep).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(Type::parse("(uuu)").unwrap().fixed_size(), Some(12));
        assert_eq!(Type::parse("(ut)").unwrap().fixed_size(), Some(16));
        assert_eq!(Type::parse("(ty)").unwrap().fixed_size(), Some(16));
        assert_eq!(Type::parse("()").unwrap().fixed_size(), Some(1));
        assert_eq!(Type::parse("(say)").unwrap().fixed_size(), None);
        assert_eq!(Type::parse("{sv}").unwrap().alignment(), 8);
    }
}
