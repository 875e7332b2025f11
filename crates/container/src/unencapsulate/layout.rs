//! Where the ostree commit sits in an image: labels and layer roles (container-image-format
//! §2.1, §3.1–3.2). Pure functions over the manifest and config, so they are unit-tested.

use std::collections::HashMap;

use containers_image_proxy::oci_spec::image::{ImageConfiguration, ImageManifest};
use ostree_repo::format::Checksum;

/// Label with the commit checksum.
pub const LABEL_COMMIT: &str = "ostree.commit";
/// Label with the diff_id of the last ostree layer.
pub const LABEL_FINAL_DIFFID: &str = "ostree.final-diffid";
/// Label of the legacy v0 format, no longer supported by the reference either.
pub const LABEL_LEGACY_DIFFID: &str = "ostree.diffid";

/// Why an image is not an importable base ostree image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// No `ostree.final-diffid` label: an ordinary container image.
    #[error("not an ostree container image: it has no {LABEL_FINAL_DIFFID} label")]
    NotOstree,
    /// Only the v0 `ostree.diffid` label.
    #[error(
        "image uses the legacy ostree-container v0 format (label {LABEL_LEGACY_DIFFID}), which is not supported; re-encapsulate it with a current tool"
    )]
    LegacyV0,
    /// `ostree.commit` missing or not a checksum.
    #[error("label {LABEL_COMMIT} is {0}")]
    BadCommitLabel(String),
    /// The final diff_id is not among the config's diff_ids.
    #[error("label {LABEL_FINAL_DIFFID}={0} names no layer of the image")]
    FinalDiffIdNotFound(String),
    /// The final diff_id appears twice.
    #[error("label {LABEL_FINAL_DIFFID}={0} matches multiple layers")]
    FinalDiffIdAmbiguous(String),
    /// Manifest and config disagree on the layer count.
    #[error("the manifest has {layers} layers but the config lists {diff_ids} diff_ids")]
    LayerCount {
        /// Manifest layers.
        layers: usize,
        /// Config diff_ids.
        diff_ids: usize,
    },
}

/// The ostree part of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OstreeLayout {
    /// The commit the image carries (label `ostree.commit`).
    pub commit: Checksum,
    /// Index of the last ostree layer; layers `1..=last_ostree` are chunk layers, layer 0 the
    /// commit layer.
    pub last_ostree: usize,
    /// Number of layers after the ostree ones (a derived image if non-zero).
    pub derived_layers: usize,
}

/// The labels of an image: config labels (which the reference also copies to annotations).
pub fn labels(config: &ImageConfiguration) -> HashMap<String, String> {
    config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
}

/// Finds the ostree layers of an image.
pub fn parse_layout(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<OstreeLayout, LayoutError> {
    let labels = labels(config);
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(LayoutError::LayerCount {
            layers: manifest.layers().len(),
            diff_ids: diff_ids.len(),
        });
    }
    let Some(final_diffid) = labels.get(LABEL_FINAL_DIFFID) else {
        return Err(if labels.contains_key(LABEL_LEGACY_DIFFID) {
            LayoutError::LegacyV0
        } else {
            LayoutError::NotOstree
        });
    };
    let commit = match labels.get(LABEL_COMMIT) {
        None => return Err(LayoutError::BadCommitLabel("missing".into())),
        Some(c) => c
            .parse::<Checksum>()
            .map_err(|_| LayoutError::BadCommitLabel(format!("not a checksum: {c:?}")))?,
    };
    let mut found = diff_ids
        .iter()
        .enumerate()
        .filter(|(_, d)| *d == final_diffid)
        .map(|(i, _)| i);
    let last_ostree = found
        .next()
        .ok_or_else(|| LayoutError::FinalDiffIdNotFound(final_diffid.clone()))?;
    if found.next().is_some() {
        return Err(LayoutError::FinalDiffIdAmbiguous(final_diffid.clone()));
    }
    Ok(OstreeLayout {
        commit,
        last_ostree,
        derived_layers: diff_ids.len() - 1 - last_ostree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(diff_ids: &[&str], labels: &[(&str, &str)]) -> (ImageManifest, ImageConfiguration) {
        let layers: Vec<serde_json::Value> = diff_ids
            .iter()
            .map(|_| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", "f".repeat(64)), "size": 1}))
            .collect();
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "c".repeat(64)), "size": 1},
            "layers": layers});
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let c = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        (
            serde_json::from_value(m).unwrap(),
            serde_json::from_value(c).unwrap(),
        )
    }

    const C: &str = "3602b2e959192c61aa6153fc5755b392e500d188524501ac32bf77ab138a6166";

    fn d(n: u8) -> String {
        format!(
            "sha256:{}",
            format!("{n:x}")
                .repeat(64)
                .chars()
                .take(64)
                .collect::<String>()
        )
    }

    #[test]
    fn layouts() {
        let (a, b, c) = (d(1), d(2), d(3));
        let (m, cfg) = image(&[&a], &[(LABEL_COMMIT, C), (LABEL_FINAL_DIFFID, &a)]);
        assert_eq!(
            parse_layout(&m, &cfg).unwrap(),
            OstreeLayout {
                commit: C.parse().unwrap(),
                last_ostree: 0,
                derived_layers: 0
            }
        );
        let (m, cfg) = image(
            &[&a, &b, &c],
            &[(LABEL_COMMIT, C), (LABEL_FINAL_DIFFID, &b)],
        );
        assert_eq!(parse_layout(&m, &cfg).unwrap().derived_layers, 1);
        let (m, cfg) = image(&[&a, &b], &[]);
        assert_eq!(parse_layout(&m, &cfg).unwrap_err(), LayoutError::NotOstree);
        let (m, cfg) = image(&[&a], &[(LABEL_LEGACY_DIFFID, &a)]);
        assert_eq!(parse_layout(&m, &cfg).unwrap_err(), LayoutError::LegacyV0);
        let (m, cfg) = image(&[&a], &[(LABEL_FINAL_DIFFID, &a)]);
        assert!(matches!(
            parse_layout(&m, &cfg).unwrap_err(),
            LayoutError::BadCommitLabel(_)
        ));
        let (m, cfg) = image(&[&a], &[(LABEL_COMMIT, "xyz"), (LABEL_FINAL_DIFFID, &a)]);
        assert!(matches!(
            parse_layout(&m, &cfg).unwrap_err(),
            LayoutError::BadCommitLabel(_)
        ));
        let (m, cfg) = image(&[&a], &[(LABEL_COMMIT, C), (LABEL_FINAL_DIFFID, &b)]);
        assert!(matches!(
            parse_layout(&m, &cfg).unwrap_err(),
            LayoutError::FinalDiffIdNotFound(_)
        ));
        let (m, cfg) = image(&[&a, &a], &[(LABEL_COMMIT, C), (LABEL_FINAL_DIFFID, &a)]);
        assert!(matches!(
            parse_layout(&m, &cfg).unwrap_err(),
            LayoutError::FinalDiffIdAmbiguous(_)
        ));
    }
}
