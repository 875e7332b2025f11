//! Writes small OCI image layouts from uncompressed layer tars, for tests that need images
//! before (or independently of) our encapsulate.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `b`.
pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex_encode(&Sha256::digest(b)))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// No labels, for [`write_layout`] on a plain (non-ostree) image.
pub const NO_LABELS: &[(&str, &str)] = &[];

/// Layer compression for [`write_layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// `application/vnd.oci.image.layer.v1.tar`
    None,
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    Gzip,
}

fn write_blob(dir: &Path, data: &[u8]) -> Result<String> {
    let d = sha256(data);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:")),
        data,
    )?;
    Ok(d)
}

/// Writes an OCI layout at `dir` (tag `latest`) whose layers are `layers` (uncompressed tars),
/// with `labels` on the config. Returns the manifest digest.
pub fn write_layout<K: AsRef<str>, V: AsRef<str>>(
    dir: &Path,
    layers: &[Vec<u8>],
    labels: &[(K, V)],
    compression: LayerCompression,
) -> Result<String> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(sha256(l));
        let (blob, mt) = match compression {
            LayerCompression::None => (l.clone(), "application/vnd.oci.image.layer.v1.tar"),
            LayerCompression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(l)?;
                (e.finish()?, "application/vnd.oci.image.layer.v1.tar+gzip")
            }
        };
        let d = write_blob(dir, &blob)?;
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": blob.len()}));
    }
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.as_ref().to_string(), serde_json::Value::from(v.as_ref())))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let cd = write_blob(dir, &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))?;
    let md = write_blob(dir, &manifest)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(md)
}

/// The labels an ostree image carries for `commit` whose last ostree layer is `last_layer`.
pub fn ostree_labels(commit: &str, last_layer: &[u8]) -> Vec<(String, String)> {
    vec![
        ("ostree.commit".into(), commit.into()),
        ("ostree.final-diffid".into(), sha256(last_layer)),
    ]
}
