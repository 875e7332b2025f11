//! Decoding serialised GVariant data. Anything that is not well-formed is an error; normal form
//! is then checked by re-encoding ([`from_bytes_normal`]).

use super::types::{MAX_DEPTH, Type, align_up};
use super::value::{Value, offset_width_for_total};
use crate::error::FormatError;

/// Decodes `data` as a value of type `ty`; rejects anything that is not in normal form.
pub fn from_bytes_normal(ty: &Type, data: &[u8]) -> Result<Value, FormatError> {
    let v = from_bytes(ty, data)?;
    if v.to_bytes() != data {
        return Err(FormatError::NotNormalForm {
            type_string: ty.to_string(),
        });
    }
    Ok(v)
}

/// Decodes `data` as a value of type `ty`, checking framing but not full normal form.
pub fn from_bytes(ty: &Type, data: &[u8]) -> Result<Value, FormatError> {
    decode(ty, data, 0).map_err(|reason| FormatError::Malformed {
        type_string: ty.to_string(),
        reason,
    })
}

type R<T> = Result<T, &'static str>;

fn read_le(data: &[u8], at: usize, width: usize) -> R<usize> {
    let slice = data
        .get(at..at + width)
        .ok_or("framing offset out of range")?;
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(slice);
    usize::try_from(u64::from_le_bytes(buf)).map_err(|_| "framing offset too large")
}

fn fixed<const N: usize>(data: &[u8]) -> R<[u8; N]> {
    data.try_into()
        .map_err(|_| "wrong size for a fixed-size value")
}

fn decode(ty: &Type, data: &[u8], depth: usize) -> R<Value> {
    if depth > MAX_DEPTH {
        return Err("nesting too deep");
    }
    Ok(match ty {
        Type::Bool => match fixed::<1>(data)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err("boolean is neither 0 nor 1"),
        },
        Type::Byte => Value::Byte(fixed::<1>(data)?[0]),
        Type::I16 => Value::I16(i16::from_le_bytes(fixed(data)?)),
        Type::U16 => Value::U16(u16::from_le_bytes(fixed(data)?)),
        Type::I32 => Value::I32(i32::from_le_bytes(fixed(data)?)),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(data)?)),
        Type::U32 => Value::U32(u32::from_le_bytes(fixed(data)?)),
        Type::I64 => Value::I64(i64::from_le_bytes(fixed(data)?)),
        Type::U64 => Value::U64(u64::from_le_bytes(fixed(data)?)),
        Type::F64 => Value::F64(u64::from_le_bytes(fixed(data)?)),
        Type::Str => Value::Str(decode_str(data)?),
        Type::ObjectPath => Value::ObjectPath(decode_str(data)?),
        Type::Signature => Value::Signature(decode_str(data)?),
        Type::Variant => {
            let nul = data
                .iter()
                .rposition(|&b| b == 0)
                .ok_or("variant without type separator")?;
            let sig =
                std::str::from_utf8(&data[nul + 1..]).map_err(|_| "variant type is not UTF-8")?;
            let child_ty =
                Type::parse(sig).map_err(|_| "variant carries an invalid type string")?;
            Value::Variant(Box::new(decode(&child_ty, &data[..nul], depth + 1)?))
        }
        Type::Maybe(t) => {
            if data.is_empty() {
                Value::Maybe((**t).clone(), None)
            } else if t.fixed_size().is_some() {
                Value::Maybe((**t).clone(), Some(Box::new(decode(t, data, depth + 1)?)))
            } else {
                let (last, rest) = data.split_last().ok_or("empty maybe")?;
                if *last != 0 {
                    return Err("maybe value without trailing NUL");
                }
                Value::Maybe((**t).clone(), Some(Box::new(decode(t, rest, depth + 1)?)))
            }
        }
        Type::Array(t) if **t == Type::Byte => Value::Bytes(data.to_vec()),
        Type::Array(t) => Value::Array((**t).clone(), decode_array(t, data, depth)?),
        Type::Tuple(_) | Type::DictEntry(..) => {
            let members = ty.members();
            let vals = decode_members(ty, &members, data, depth)?;
            match ty {
                Type::DictEntry(..) => {
                    let mut it = vals.into_iter();
                    let k = it.next().ok_or("dict entry without key")?;
                    let v = it.next().ok_or("dict entry without value")?;
                    Value::DictEntry(Box::new(k), Box::new(v))
                }
                _ => Value::Tuple(vals),
            }
        }
    })
}

fn decode_str(data: &[u8]) -> R<String> {
    let (last, body) = data.split_last().ok_or("empty string data")?;
    if *last != 0 {
        return Err("string without trailing NUL");
    }
    if body.contains(&0) {
        return Err("string with an embedded NUL");
    }
    String::from_utf8(body.to_vec()).map_err(|_| "string is not valid UTF-8")
}

fn decode_array(elem: &Type, data: &[u8], depth: usize) -> R<Vec<Value>> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(size) = elem.fixed_size() {
        if !data.len().is_multiple_of(size) {
            return Err("array size is not a multiple of its element size");
        }
        return data
            .chunks_exact(size)
            .map(|c| decode(elem, c, depth + 1))
            .collect();
    }
    let width = offset_width_for_total(data.len());
    let last_end = read_le(data, data.len() - width.min(data.len()), width)?;
    if last_end > data.len() {
        return Err("array framing offset beyond the end");
    }
    let table = data.len() - last_end;
    if table == 0 || !table.is_multiple_of(width) {
        return Err("array offset table has a bad size");
    }
    let n = table / width;
    let align = elem.alignment();
    let mut out = Vec::with_capacity(n.min(data.len()));
    let mut pos = 0usize;
    for i in 0..n {
        let end = read_le(data, last_end + i * width, width)?;
        let start = align_up(pos, align);
        if start > end || end > last_end {
            return Err("array element offsets out of order");
        }
        out.push(decode(elem, &data[start..end], depth + 1)?);
        pos = end;
    }
    Ok(out)
}

fn decode_members(ty: &Type, members: &[&Type], data: &[u8], depth: usize) -> R<Vec<Value>> {
    if let Some(size) = ty.fixed_size()
        && data.len() != size
    {
        return Err("fixed-size tuple has the wrong size");
    }
    let width = offset_width_for_total(data.len());
    let n_offsets = members
        .iter()
        .enumerate()
        .filter(|(i, m)| m.fixed_size().is_none() && i + 1 != members.len())
        .count();
    let frame_start = data
        .len()
        .checked_sub(n_offsets * width)
        .ok_or("tuple too small for its framing offsets")?;
    let mut out = Vec::with_capacity(members.len());
    let mut pos = 0usize;
    let mut used = 0usize;
    for (i, m) in members.iter().enumerate() {
        let start = align_up(pos, m.alignment());
        let end = if let Some(size) = m.fixed_size() {
            start + size
        } else if i + 1 == members.len() {
            frame_start
        } else {
            used += 1;
            read_le(data, data.len() - used * width, width)?
        };
        if start > end || end > frame_start {
            return Err("tuple member out of range");
        }
        out.push(decode(m, &data[start..end], depth + 1)?);
        pos = end;
    }
    Ok(out)
}
