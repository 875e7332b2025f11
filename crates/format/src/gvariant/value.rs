//! GVariant values and their serialisation in normal form (GVariant specification §2.3–2.5).
//!
//! Integers are held as GVariant sees them on a little-endian host. ostree stores its own
//! integers pre-swapped to big-endian; the typed object layer ([`crate::objects`]) undoes that.

use super::types::{Type, align_up};

/// A GVariant value. `ay` has its own variant ([`Value::Bytes`]) because it is everywhere in ostree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `y`
    Byte(u8),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `h`
    Handle(i32),
    /// `d`, as raw IEEE-754 bits so values compare exactly.
    F64(u64),
    /// `s`
    Str(String),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `v`
    Variant(Box<Value>),
    /// `m…`: element type and optional value.
    Maybe(Type, Option<Box<Value>>),
    /// `a…` other than `ay`: element type and elements.
    Array(Type, Vec<Value>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `(…)`
    Tuple(Vec<Value>),
    /// `{kv}`
    DictEntry(Box<Value>, Box<Value>),
}

impl Value {
    /// The value's type.
    pub fn type_(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Bool,
            Value::Byte(_) => Type::Byte,
            Value::I16(_) => Type::I16,
            Value::U16(_) => Type::U16,
            Value::I32(_) => Type::I32,
            Value::U32(_) => Type::U32,
            Value::I64(_) => Type::I64,
            Value::U64(_) => Type::U64,
            Value::Handle(_) => Type::Handle,
            Value::F64(_) => Type::F64,
            Value::Str(_) => Type::Str,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Bytes(_) => Type::Array(Box::new(Type::Byte)),
            Value::Tuple(ms) => Type::Tuple(ms.iter().map(Value::type_).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.type_()), Box::new(v.type_())),
        }
    }

    /// Serialises the value in normal form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out, 0);
        out
    }

    /// The string inside `s`, `o` or `g`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    /// Appends the serialisation; `base` is where the top-level value starts in `out`, so that
    /// padding is computed from the container start as the specification requires.
    fn encode_into(&self, out: &mut Vec<u8>, base: usize) {
        match self {
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::Byte(b) => out.push(*b),
            Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I32(v) | Value::Handle(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) | Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::Variant(child) => {
                child.encode_into(out, base);
                out.push(0);
                out.extend_from_slice(child.type_().to_string().as_bytes());
            }
            Value::Maybe(t, v) => {
                if let Some(v) = v {
                    v.encode_into(out, base);
                    if t.fixed_size().is_none() {
                        out.push(0);
                    }
                }
            }
            Value::Array(t, elems) => {
                let start = out.len();
                match t.fixed_size() {
                    Some(_) => {
                        for e in elems {
                            e.encode_into(out, base);
                        }
                    }
                    None => {
                        let align = t.alignment();
                        let mut ends = Vec::with_capacity(elems.len());
                        for e in elems {
                            pad(out, base, align);
                            e.encode_into(out, base);
                            ends.push(out.len() - start);
                        }
                        write_offsets(out, start, ends.iter().copied());
                    }
                }
            }
            Value::Tuple(ms) => encode_members(out, base, ms.iter()),
            Value::DictEntry(k, v) => {
                encode_members(out, base, [k.as_ref(), v.as_ref()].into_iter())
            }
        }
    }
}

fn encode_members<'a>(
    out: &mut Vec<u8>,
    base: usize,
    members: impl ExactSizeIterator<Item = &'a Value>,
) {
    let start = out.len();
    let n = members.len();
    let mut ends = Vec::new();
    let mut tuple_align = 1;
    let mut all_fixed = true;
    for (i, m) in members.enumerate() {
        let t = m.type_();
        let a = t.alignment();
        tuple_align = tuple_align.max(a);
        pad(out, base, a);
        m.encode_into(out, base);
        if t.fixed_size().is_none() {
            all_fixed = false;
            if i + 1 != n {
                ends.push(out.len() - start);
            }
        }
    }
    if all_fixed {
        pad(out, base, tuple_align);
        if out.len() == start {
            out.push(0);
        }
    } else {
        // Framing offsets are stored last-member-first.
        write_offsets(out, start, ends.iter().rev().copied());
    }
}

fn pad(out: &mut Vec<u8>, base: usize, align: usize) {
    let rel = out.len() - base;
    out.resize(base + align_up(rel, align), 0);
}

/// Appends framing offsets with the width GLib's `gvs_calculate_total_size` picks.
fn write_offsets(out: &mut Vec<u8>, start: usize, offsets: impl ExactSizeIterator<Item = usize>) {
    let body = out.len() - start;
    let width = offset_width_for_body(body, offsets.len());
    for o in offsets {
        out.extend_from_slice(&(o as u64).to_le_bytes()[..width]);
    }
}

/// Offset width chosen by the encoder for a body of `body` bytes followed by `n` offsets.
pub(crate) fn offset_width_for_body(body: usize, n: usize) -> usize {
    if body + n <= 0xff {
        1
    } else if body + 2 * n <= 0xffff {
        2
    } else if body + 4 * n <= 0xffff_ffff {
        4
    } else {
        8
    }
}

/// Offset width a decoder derives from a container's total size.
pub(crate) fn offset_width_for_total(total: usize) -> usize {
    if total > 0xffff_ffff {
        8
    } else if total > 0xffff {
        4
    } else if total > 0xff {
        2
    } else if total > 0 {
        1
    } else {
        0
    }
}
