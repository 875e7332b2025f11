//! Builds small OCI images in Rust and derives variants with `skopeo copy`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use rand::RngCore;
use sha2::{Digest, Sha256};
use test_support::skopeo::{skopeo, skopeo_copy};

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// One file in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub data: Vec<u8>,
}

/// The known content of the base image.
#[derive(Debug)]
pub struct BaseImage {
    pub dir: PathBuf,
    pub layers: Vec<Vec<FileSpec>>,
    pub diff_ids: Vec<String>,
}

pub fn tar_of(files: &[FileSpec]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(f.data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, &f.path, f.data.as_slice())?;
    }
    Ok(b.into_inner()?)
}

fn write_blob(dir: &Path, data: &[u8]) -> Result<String> {
    let d = sha256(data);
    let hexpart = d.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hexpart), data)?;
    Ok(d)
}

/// Writes an OCI layout with uncompressed layers (or `media_type` for all layers).
pub fn write_layout(dir: &Path, layers: &[Vec<u8>], media_type: &str) -> Result<()> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let d = write_blob(dir, l)?;
        descs.push(serde_json::json!({"mediaType": media_type, "digest": d, "size": l.len()}));
        diff_ids.push(sha256(l));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"test": "fetch"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config)?;
    let cd = write_blob(dir, &config)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let md = write_blob(dir, &manifest)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(())
}

/// `sha256` of `skopeo inspect --raw`, i.e. the digest of the manifest as stored.
pub fn inspect_digest(imgref: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec!["inspect", "--raw"];
    args.extend_from_slice(extra);
    args.push(imgref);
    Ok(sha256(&skopeo(&args)?))
}

struct Fixture {
    _tmp: tempfile::TempDir,
    base: BaseImage,
}

fn make_base(root: &Path) -> Result<BaseImage> {
    let mut rng = rand::rng();
    let mut random = vec![0u8; 300 * 1024];
    rng.fill_bytes(&mut random);
    let layers = vec![
        vec![
            FileSpec {
                path: "etc/hello.txt".into(),
                data: b"hello world\n".to_vec(),
            },
            FileSpec {
                path: "usr/bin/blob".into(),
                data: random,
            },
        ],
        vec![FileSpec {
            path: "usr/share/doc/readme".into(),
            data: b"layer two\n".repeat(1000),
        }],
        vec![FileSpec {
            path: "var/empty".into(),
            data: Vec::new(),
        }],
    ];
    let tars = layers
        .iter()
        .map(|l| tar_of(l))
        .collect::<Result<Vec<_>>>()?;
    let dir = root.join("base");
    write_layout(&dir, &tars, "application/vnd.oci.image.layer.v1.tar")?;
    Ok(BaseImage {
        dir,
        diff_ids: tars.iter().map(|t| sha256(t)).collect(),
        layers,
    })
}

/// The shared base image (built once per test binary).
pub fn base() -> &'static BaseImage {
    static F: OnceLock<Fixture> = OnceLock::new();
    let f = F.get_or_init(|| {
        let tmp = test_support::shared_scratch("oc-fetch-");
        let base = make_base(tmp.path()).expect("building base image");
        Fixture { _tmp: tmp, base }
    });
    &f.base
}

/// `oci:<base>:latest`.
pub fn base_ref() -> String {
    format!("oci:{}:latest", base().dir.display())
}

/// Copies the base image to `dest` with extra `skopeo copy` flags.
pub fn copy_base(dest: &str, flags: &[&str]) -> Result<()> {
    skopeo_copy(&base_ref(), dest, flags)
}

/// An image with one large incompressible layer, for fault tests.
pub fn big_image(dir: &Path, mib: usize) -> Result<()> {
    let mut data = vec![0u8; mib * 1024 * 1024];
    rand::rng().fill_bytes(&mut data);
    let t = tar_of(&[FileSpec {
        path: "big".into(),
        data,
    }])?;
    write_layout(dir, &[t], "application/vnd.oci.image.layer.v1.tar")
}
