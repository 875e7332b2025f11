//! Writing OCI image layouts (`oci:`), their deterministic tar (`oci-archive:`), and pushing a
//! layout elsewhere with `skopeo copy`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::compress::set_blob_mode;
use super::error::EncapsulateError;
use crate::fetch::SkopeoCommand;

/// The annotation holding a manifest's tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Media type of image manifests.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of image indexes.
pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image layout directory being written.
#[derive(Debug)]
pub struct OciDir {
    path: PathBuf,
    blobs: PathBuf,
}

/// Serializes with sorted keys and no whitespace: a value has exactly one byte form, so digests
/// are reproducible whatever map type built it.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), sort(x));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(v)).unwrap_or_default()
}

/// Writes `data` to `dir/name` through a temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    set_blob_mode(tmp.path())?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

impl OciDir {
    /// Creates (or opens) a layout at `path`: the directory, `oci-layout` and `blobs/sha256`.
    pub fn create(path: &Path) -> Result<Self, EncapsulateError> {
        let blobs = path.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| EncapsulateError::dest(path, e))?;
        write_atomic(path, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(|e| EncapsulateError::dest(path, e))?;
        Ok(OciDir {
            path: path.to_path_buf(),
            blobs,
        })
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `blobs/sha256`.
    pub fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// Stores a JSON blob; returns (`sha256:<hex>`, size).
    pub fn write_json_blob(&self, v: &Value) -> Result<(String, u64), EncapsulateError> {
        let data = canonical_json(v);
        let hex = hex::encode(Sha256::digest(&data));
        write_atomic(&self.blobs, &hex, &data)
            .map_err(|e| EncapsulateError::dest(&self.path, e))?;
        Ok((format!("sha256:{hex}"), data.len() as u64))
    }

    /// Points `index.json` at a manifest. With `tag`, the manifest joins the existing index
    /// under that tag (replacing whatever had the tag); without, the index holds only it.
    pub fn set_manifest(
        &self,
        digest: &str,
        size: u64,
        tag: Option<&str>,
    ) -> Result<(), EncapsulateError> {
        let dest = |e| EncapsulateError::dest(&self.path, e);
        let mut desc = json!({"mediaType": MANIFEST_TYPE, "digest": digest, "size": size});
        let mut manifests: Vec<Value> = Vec::new();
        if let Some(tag) = tag {
            desc["annotations"] = json!({ REF_NAME: tag });
            let index_path = self.path.join("index.json");
            match std::fs::read(&index_path) {
                Ok(data) => {
                    let old: Value = serde_json::from_slice(&data).map_err(|e| {
                        dest(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("existing index.json is not valid JSON: {e}"),
                        ))
                    })?;
                    if let Some(list) = old.get("manifests").and_then(Value::as_array) {
                        manifests.extend(
                            list.iter()
                                .filter(|m| {
                                    m.pointer(&format!(
                                        "/annotations/{}",
                                        REF_NAME.replace('/', "~1")
                                    ))
                                    .and_then(Value::as_str)
                                        != Some(tag)
                                })
                                .cloned(),
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(dest(e)),
            }
        }
        manifests.push(desc);
        let index = json!({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests});
        write_atomic(&self.path, "index.json", &canonical_json(&index)).map_err(dest)
    }
}

/// Splits `path[:tag]` at the first `:` (the reference's rule for `oci:` names).
pub fn split_path_tag(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((p, t)) if !t.is_empty() => (p, Some(t)),
        Some((p, _)) => (p, None),
        None => (name, None),
    }
}

fn tar_header(path: &str, size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    // Layout paths are short ASCII; set_path only fails for longer or non-UTF-8 names.
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

/// Writes the layout at `layout` as a tar to `out`: fixed entry order (`oci-layout`,
/// `index.json`, `blobs/`, `blobs/sha256/`, blobs by name), mtime 0, uid/gid 0.
pub fn write_archive(layout: &Path, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    for name in ["oci-layout", "index.json"] {
        let data = std::fs::read(layout.join(name))?;
        b.append(&tar_header(name, data.len() as u64, false), data.as_slice())?;
    }
    b.append(&tar_header("blobs/", 0, true), io::empty())?;
    b.append(&tar_header("blobs/sha256/", 0, true), io::empty())?;
    let mut blobs: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    blobs.sort();
    for name in blobs {
        let f = std::fs::File::open(layout.join("blobs/sha256").join(&name))?;
        let size = f.metadata()?.len();
        b.append(&tar_header(&format!("blobs/sha256/{name}"), size, false), f)?;
    }
    b.into_inner()?.flush()
}

/// Options for [`skopeo_push`].
#[derive(Debug, Default, Clone)]
pub struct PushOptions {
    /// `--dest-authfile`.
    pub authfile: Option<PathBuf>,
    /// `--dest-cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// `--dest-tls-verify=false`.
    pub insecure_skip_tls_verification: bool,
    /// Registry destination (TLS options apply only there).
    pub registry: bool,
    /// The skopeo to run (default `skopeo` on `PATH`).
    pub skopeo: Option<SkopeoCommand>,
}

/// `skopeo copy oci:<layout>:<tag> <dest>`; returns the digest skopeo pushed.
pub fn skopeo_push(
    layout: &Path,
    tag: &str,
    dest: &str,
    opts: &PushOptions,
) -> Result<String, EncapsulateError> {
    let digestfile = layout.join(".digest");
    let mut cmd = opts
        .skopeo
        .clone()
        .unwrap_or_else(|| SkopeoCommand::new("skopeo"))
        .command();
    cmd.args(["copy", "--quiet", "--digestfile"])
        .arg(&digestfile);
    if let Some(a) = &opts.authfile {
        cmd.arg("--dest-authfile").arg(a);
    }
    if opts.registry {
        if let Some(d) = &opts.cert_dir {
            cmd.arg("--dest-cert-dir").arg(d);
        }
        if opts.insecure_skip_tls_verification {
            cmd.arg("--dest-tls-verify=false");
        }
    }
    cmd.arg(format!("oci:{}:{tag}", layout.display())).arg(dest);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| EncapsulateError::Push {
        dest: dest.to_string(),
        status: "not started".into(),
        stderr: format!("running {program}: {e} (install the skopeo package)"),
    })?;
    if !out.status.success() {
        return Err(EncapsulateError::Push {
            dest: dest.to_string(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let digest = std::fs::read_to_string(&digestfile)
        .map_err(|e| EncapsulateError::io("reading skopeo's digest file", e))?;
    Ok(digest.trim().to_string())
}

/// The ostree auth file lookup of container-image-format §12 (used when no `--authfile`): the
/// same as pulls use ([`crate::skopeo::find_default_authfile`]).
pub fn default_authfile() -> Option<PathBuf> {
    crate::skopeo::find_default_authfile()
}
