//! Extended attribute sets (`a(ayay)`) and their canonical form (ostree-repo-format §6.2).

use crate::error::FormatError;
use crate::gvariant::{Type, Value};

/// An ordered list of extended attributes. Names are held **without** the trailing NUL that
/// ostree stores; encoding adds it. Order is preserved as given, because a received object's
/// checksum covers its order; [`Xattrs::canonical`] produces the form libostree reads from disk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Xattrs(Vec<(Vec<u8>, Vec<u8>)>);

impl Xattrs {
    /// No attributes.
    pub fn new() -> Self {
        Xattrs(Vec::new())
    }

    /// Canonical form of a set read from a filesystem: sorted by name, zero-length values
    /// dropped (libglnx skips them), duplicates removed.
    pub fn canonical(pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let mut v: Vec<_> = pairs
            .into_iter()
            .filter(|(_, val)| !val.is_empty())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Xattrs(v)
    }

    /// As given, without reordering (for received data).
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        Xattrs(pairs)
    }

    /// The (name, value) pairs, names without NUL.
    pub fn pairs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy without the attributes `keep` rejects.
    pub fn filtered(&self, keep: impl Fn(&[u8]) -> bool) -> Self {
        Xattrs(self.0.iter().filter(|(n, _)| keep(n)).cloned().collect())
    }

    /// Fails unless sorted by name, unique, with no empty values and valid names.
    pub fn check_canonical(&self) -> Result<(), FormatError> {
        for (name, value) in &self.0 {
            if name.is_empty() || name.contains(&0) {
                return Err(FormatError::NonCanonicalXattrs("invalid attribute name"));
            }
            if value.is_empty() {
                return Err(FormatError::NonCanonicalXattrs("zero-length value"));
            }
        }
        for w in self.0.windows(2) {
            if w[0].0 >= w[1].0 {
                return Err(FormatError::NonCanonicalXattrs("names not strictly sorted"));
            }
        }
        Ok(())
    }

    /// The GVariant value `a(ayay)`.
    pub fn to_value(&self) -> Value {
        Value::Array(
            xattr_elem_type(),
            self.0
                .iter()
                .map(|(n, v)| {
                    let mut name = Vec::with_capacity(n.len() + 1);
                    name.extend_from_slice(n);
                    name.push(0);
                    Value::Tuple(vec![Value::Bytes(name), Value::Bytes(v.clone())])
                })
                .collect(),
        )
    }

    /// Serialised `a(ayay)` (the content of a `.file-xattrs` object).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_value().to_bytes()
    }

    /// From a decoded `a(ayay)` value. Names must carry exactly one trailing NUL.
    pub fn from_value(v: &Value) -> Result<Self, FormatError> {
        let Value::Array(_, elems) = v else {
            return Err(FormatError::NonCanonicalXattrs("not an a(ayay) array"));
        };
        let mut out = Vec::with_capacity(elems.len());
        for e in elems {
            let Value::Tuple(m) = e else {
                return Err(FormatError::NonCanonicalXattrs("not an (ayay) element"));
            };
            let (Some(Value::Bytes(name)), Some(Value::Bytes(value))) = (m.first(), m.get(1))
            else {
                return Err(FormatError::NonCanonicalXattrs("not an (ayay) element"));
            };
            let Some((0, bare)) = name.split_last() else {
                return Err(FormatError::NonCanonicalXattrs("name without trailing NUL"));
            };
            if bare.is_empty() || bare.contains(&0) {
                return Err(FormatError::NonCanonicalXattrs("invalid attribute name"));
            }
            out.push((bare.to_vec(), value.clone()));
        }
        Ok(Xattrs(out))
    }

    /// Parses serialised `a(ayay)` bytes (normal form required).
    pub fn from_bytes(data: &[u8]) -> Result<Self, FormatError> {
        let ty = Type::Array(Box::new(xattr_elem_type()));
        Self::from_value(&crate::gvariant::from_bytes_normal(&ty, data)?)
    }
}

pub(crate) fn xattr_elem_type() -> Type {
    Type::Tuple(vec![
        Type::Array(Box::new(Type::Byte)),
        Type::Array(Box::new(Type::Byte)),
    ])
}
