//! `--contentmeta` JSON (container-image-format §9): components given by a build system
//! (packages), which it knows better than any directory heuristic.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ostree_repo::format::Checksum;
use serde_json::Value;

use super::chunking::Component;
use super::error::EncapsulateError;

/// Parsed content metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentMeta {
    /// Image `created` override.
    pub created: Option<String>,
    /// Labels applied after (overriding) `--label`.
    pub labels: BTreeMap<String, String>,
    /// Component id → human name (sorted by id: JSON object order is not preserved).
    pub layers: BTreeMap<String, String>,
    /// Content checksum → component id.
    pub mapping: HashMap<Checksum, String>,
}

fn bad(path: &str, reason: impl Into<String>) -> EncapsulateError {
    EncapsulateError::ContentMeta {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn string_map(
    v: Option<&Value>,
    field: &str,
    src: &str,
) -> Result<BTreeMap<String, String>, EncapsulateError> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let s = v
                    .as_str()
                    .ok_or_else(|| bad(src, format!("{field}.{k}: expected a string")))?;
                out.insert(k.clone(), s.to_string());
            }
        }
        Some(_) => return Err(bad(src, format!("{field}: expected an object"))),
    }
    Ok(out)
}

impl ContentMeta {
    /// Reads and validates a file.
    pub fn from_file(path: &Path) -> Result<Self, EncapsulateError> {
        let src = path.display().to_string();
        let data = std::fs::read(path).map_err(|e| bad(&src, e.to_string()))?;
        Self::parse(&data, &src)
    }

    /// Parses JSON bytes; `src` names the source in errors.
    pub fn parse(data: &[u8], src: &str) -> Result<Self, EncapsulateError> {
        let v: Value =
            serde_json::from_slice(data).map_err(|e| bad(src, format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad(src, "expected a JSON object"))?;
        match obj.get("version").and_then(Value::as_u64) {
            Some(1) => {}
            _ => {
                return Err(bad(
                    src,
                    "Unsupported metadata version (expected \"version\": 1)",
                ));
            }
        }
        if obj
            .get("ordered")
            .is_some_and(|o| o.as_bool() != Some(false) && !o.is_null())
        {
            return Err(bad(src, "Ordered mapping not currently supported"));
        }
        let created = match obj.get("created") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad(src, "created: expected a string")),
        };
        let labels = string_map(obj.get("labels"), "labels", src)?;
        let layers = string_map(obj.get("layers"), "layers", src)?;
        let raw_mapping = string_map(obj.get("mapping"), "mapping", src)?;
        let mut mapping = HashMap::with_capacity(raw_mapping.len());
        for (k, id) in raw_mapping {
            let c: Checksum = k
                .parse()
                .map_err(|_| bad(src, format!("mapping: {k:?} is not a content checksum")))?;
            if !layers.contains_key(&id) {
                return Err(bad(
                    src,
                    format!("mapping: {k} names unknown component {id:?}"),
                ));
            }
            mapping.insert(c, id);
        }
        Ok(ContentMeta {
            created,
            labels,
            layers,
            mapping,
        })
    }

    /// The components for `objects` (each with its weight); every object must be mapped.
    pub fn components(
        &self,
        objects: &[(Checksum, u64)],
        src: &str,
    ) -> Result<Vec<Component>, EncapsulateError> {
        let mut by_id: BTreeMap<&str, Component> = self
            .layers
            .iter()
            .map(|(id, name)| {
                (
                    id.as_str(),
                    Component {
                        id: id.clone(),
                        name: name.clone(),
                        bytes: 0,
                        objects: Vec::new(),
                    },
                )
            })
            .collect();
        let mut unmapped = Vec::new();
        for (c, w) in objects {
            match self
                .mapping
                .get(c)
                .and_then(|id| by_id.get_mut(id.as_str()))
            {
                Some(comp) => {
                    comp.bytes += w;
                    comp.objects.push(*c);
                }
                None => unmapped.push(c),
            }
        }
        if let Some(first) = unmapped.first() {
            return Err(bad(
                src,
                format!(
                    "mapping does not cover {} content object(s) of the commit (first: {first})",
                    unmapped.len()
                ),
            ));
        }
        Ok(by_id.into_values().collect())
    }
}
