//! Image config and manifest (container-image-format §2): labels from the commit and the
//! options, history, diff_ids. Everything derives from the commit and the options (never the
//! clock), so the same inputs give the same digests.

use std::collections::BTreeMap;

use ostree_repo::format::gvariant::Value as GValue;
use ostree_repo::format::{Checksum, Commit};
use serde_json::{Value, json};

use super::compress::{Compression, LayerBlob};
use super::error::EncapsulateError;
use super::oci::MANIFEST_TYPE;

/// `ostree.commit` label.
pub const LABEL_COMMIT: &str = "ostree.commit";
/// `ostree.final-diffid` label.
pub const LABEL_FINAL_DIFFID: &str = "ostree.final-diffid";
/// Per chunk layer annotation.
pub const ANNOTATION_COMPONENTS: &str = "ostree.components";
/// Config media type.
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn format_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The host architecture in Go's naming, as image configs use it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "x86" => "386",
        "arm" => "arm",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn unwrap_variant(v: &GValue) -> &GValue {
    match v {
        GValue::Variant(inner) => unwrap_variant(inner),
        other => other,
    }
}

/// Inputs for the labels beyond the commit.
#[derive(Debug)]
pub struct LabelInputs<'a> {
    /// `--copymeta`.
    pub copy_meta: &'a [String],
    /// `--copymeta-opt`.
    pub copy_meta_opt: &'a [String],
    /// `--label`.
    pub labels: &'a BTreeMap<String, String>,
    /// Content metadata labels (win over `labels`).
    pub contentmeta_labels: Option<&'a BTreeMap<String, String>>,
}

/// Labels except `ostree.final-diffid` (which needs the layers); fails on a missing required
/// `--copymeta` key, before anything is written.
pub fn base_labels(
    checksum: &Checksum,
    commit: &Commit,
    inputs: &LabelInputs<'_>,
) -> Result<BTreeMap<String, String>, EncapsulateError> {
    let meta = &commit.metadata;
    let mut l = BTreeMap::new();
    l.insert(LABEL_COMMIT.to_string(), checksum.to_hex());
    if let Some(v) = meta
        .get("version")
        .map(unwrap_variant)
        .and_then(GValue::as_str)
    {
        l.insert("org.opencontainers.image.version".into(), v.to_string());
    }
    if let Some(b) = meta.get("ostree.bootable").map(unwrap_variant) {
        let s = match b {
            GValue::Bool(b) => b.to_string(),
            other => other.as_str().unwrap_or("true").to_string(),
        };
        l.insert("ostree.bootable".into(), s);
        l.insert("containers.bootc".into(), "1".into());
    }
    if let Some(v) = meta
        .get("ostree.linux")
        .map(unwrap_variant)
        .and_then(GValue::as_str)
    {
        l.insert("ostree.linux".into(), v.to_string());
    }
    for k in inputs.copy_meta {
        let v = match meta.get(k).map(unwrap_variant) {
            None => {
                return Err(EncapsulateError::Metadata {
                    key: k.clone(),
                    reason: "not in the commit metadata".into(),
                });
            }
            Some(v) => v.as_str().ok_or_else(|| EncapsulateError::Metadata {
                key: k.clone(),
                reason: format!("has type {}, expected a string", v.type_()),
            })?,
        };
        l.insert(k.clone(), v.to_string());
    }
    for k in inputs.copy_meta_opt {
        if let Some(v) = meta.get(k).map(unwrap_variant).and_then(GValue::as_str) {
            l.insert(k.clone(), v.to_string());
        }
    }
    for (k, v) in inputs.labels {
        l.insert(k.clone(), v.clone());
    }
    if let Some(cm) = inputs.contentmeta_labels {
        for (k, v) in cm {
            l.insert(k.clone(), v.clone());
        }
    }
    Ok(l)
}

/// `config.Cmd`: the option, else commit metadata `ostree.container-cmd` (`as`).
pub fn container_cmd(commit: &Commit, cmd: &[String]) -> Option<Vec<String>> {
    if !cmd.is_empty() {
        return Some(cmd.to_vec());
    }
    match commit
        .metadata
        .get("ostree.container-cmd")
        .map(unwrap_variant)
    {
        Some(GValue::Array(_, items)) => Some(
            items
                .iter()
                .filter_map(|v| unwrap_variant(v).as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// One written layer and how to describe it.
#[derive(Debug, Clone)]
pub struct WrittenLayer {
    /// Blob facts.
    pub blob: LayerBlob,
    /// History `created_by`.
    pub created_by: String,
    /// `ostree.components` for chunk layers; `None` for the commit layer.
    pub components: Option<String>,
}

/// Everything the config needs.
#[derive(Debug)]
pub struct ImageSpec<'a> {
    /// Labels (final-diffid included).
    pub labels: &'a BTreeMap<String, String>,
    /// `created`.
    pub created: &'a str,
    /// `config.Cmd`.
    pub cmd: Option<Vec<String>>,
    /// Layers in manifest order.
    pub layers: &'a [WrittenLayer],
    /// Layer compression (media type).
    pub compression: Compression,
}

/// The image config JSON.
pub fn config_json(s: &ImageSpec<'_>) -> Value {
    let mut config = json!({ "Labels": s.labels });
    if let Some(cmd) = &s.cmd {
        config["Cmd"] = json!(cmd);
    }
    let diff_ids: Vec<&str> = s.layers.iter().map(|l| l.blob.diff_id.as_str()).collect();
    let history: Vec<Value> = s
        .layers
        .iter()
        .map(|l| json!({"created": s.created, "created_by": l.created_by}))
        .collect();
    json!({
        "architecture": host_architecture(),
        "os": "linux",
        "created": s.created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
}

/// The image manifest JSON for a config blob.
pub fn manifest_json(s: &ImageSpec<'_>, config_digest: &str, config_size: u64) -> Value {
    let layers: Vec<Value> = s
        .layers
        .iter()
        .map(|l| {
            let mut d = json!({
                "mediaType": s.compression.media_type(),
                "digest": l.blob.digest,
                "size": l.blob.size,
            });
            if let Some(c) = &l.components {
                d["annotations"] = json!({ ANNOTATION_COMPONENTS: c });
            }
            d
        })
        .collect();
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_size},
        "layers": layers,
        "annotations": s.labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_577_836_800), "2020-01-01T00:00:00Z");
        assert_eq!(format_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
