//! The config, manifest and index we write: concrete values of container-image-format §2, and
//! what skopeo and GNU tar make of them.

use std::path::Path;
use std::process::Command;

use ostree_container::encapsulate::Compression;
use ostree_tar::ExportPlan;
use serde_json::Value;
use test_support::cli::assert_success;
use test_support::skopeo::skopeo_inspect;

use crate::{encap, fixture, opts, scratch};

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// (manifest, config, manifest digest) of the image tagged `tag` (or the only one).
pub fn read_image(dir: &Path, tag: Option<&str>) -> (Value, Value, String) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            tag.is_none() || m["annotations"]["org.opencontainers.image.ref.name"].as_str() == tag
        })
        .unwrap()
        .clone();
    let digest = desc["digest"].as_str().unwrap().to_string();
    let manifest: Value = serde_json::from_slice(&blob(dir, &digest)).unwrap();
    let config: Value =
        serde_json::from_slice(&blob(dir, manifest["config"]["digest"].as_str().unwrap())).unwrap();
    (manifest, config, digest)
}

#[test]
fn labels_config_manifest_history() {
    let f = fixture();
    let d = scratch();
    let dest = d.path().join("img");
    let mut o = opts(8, Compression::gzip());
    o.labels.insert("io.example.a".into(), "from-label".into());
    o.labels.insert("io.example.b".into(), "from-label".into());
    o.labels
        .insert("ostree.final-diffid".into(), "cannot override".into());
    o.copy_meta = vec!["build.id".into()];
    o.copy_meta_opt = vec!["absent.key".into(), "ostree.linux".into()];
    let cm = d.path().join("cm.json");
    // Content metadata: every object in one of two components, and a label that wins.
    let plan = ExportPlan::new(&f.repo, f.commit).unwrap();
    let mapping: serde_json::Map<String, Value> = plan
        .content_objects()
        .enumerate()
        .map(|(i, c)| {
            (
                c.to_hex(),
                Value::from(if i % 2 == 0 { "pa" } else { "pb" }),
            )
        })
        .collect();
    std::fs::write(
        &cm,
        serde_json::to_vec(&serde_json::json!({
            "version": 1,
            "labels": {"io.example.b": "from-contentmeta"},
            "layers": {"pa": "pkg-a-1.0", "pb": "pkg-b-2.0"},
            "mapping": mapping,
        }))
        .unwrap(),
    )
    .unwrap();
    o.contentmeta = Some(cm);
    let digest = encap("fixture", &o, &format!("oci:{}:t", dest.display()));
    let (manifest, config, mdigest) = read_image(&dest, Some("t"));
    assert_eq!(digest, mdigest);

    let labels = config["config"]["Labels"].as_object().unwrap();
    let get = |k: &str| labels.get(k).and_then(Value::as_str).map(str::to_string);
    assert_eq!(get("ostree.commit"), Some(f.commit.to_hex()));
    assert_eq!(
        get("org.opencontainers.image.version").as_deref(),
        Some("42.1")
    );
    assert_eq!(get("ostree.bootable").as_deref(), Some("true"));
    assert_eq!(get("containers.bootc").as_deref(), Some("1"));
    assert_eq!(get("ostree.linux").as_deref(), Some("6.1.0-test"));
    assert_eq!(get("build.id").as_deref(), Some("b-77"));
    assert_eq!(get("absent.key"), None);
    assert_eq!(get("io.example.a").as_deref(), Some("from-label"));
    assert_eq!(get("io.example.b").as_deref(), Some("from-contentmeta"));
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        get("ostree.final-diffid").as_deref(),
        diff_ids.last().copied()
    );
    assert_eq!(labels.len(), 9, "{labels:?}");
    assert_eq!(manifest["annotations"].as_object().unwrap(), labels);

    assert_eq!(config["created"], "2020-01-01T00:00:00Z");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["/usr/bin/bash", "-l"])
    );

    // Two components → commit layer + two chunk layers, one per component.
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(diff_ids.len(), 3);
    assert!(layers[0].get("annotations").is_none());
    assert_eq!(layers[1]["annotations"]["ostree.components"], "pkg-a-1.0");
    assert_eq!(layers[2]["annotations"]["ostree.components"], "pkg-b-2.0");
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    let by: Vec<&str> = history
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["Fixture build 42.1", "pkg-a-1.0", "pkg-b-2.0"]);
    for h in history {
        assert_eq!(h["created"], "2020-01-01T00:00:00Z");
        assert!(h.get("empty_layer").is_none());
    }
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );

    // skopeo reads it.
    let inspect = skopeo_inspect(&format!("oci:{}:t", dest.display())).unwrap();
    assert_eq!(inspect["Digest"], digest);
    assert_eq!(inspect["Labels"]["ostree.commit"], f.commit.to_hex());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
}

#[test]
fn auto_chunks_annotations_and_gnu_tar() {
    let f = fixture();
    let d = scratch();
    for (name, comp, flag) in [
        ("gz", Compression::gzip(), "-z"),
        ("zst", Compression::zstd(), "--zstd"),
    ] {
        let dest = d.path().join(name);
        encap(
            "fixture",
            &opts(6, comp),
            &format!("oci:{}", dest.display()),
        );
        let (manifest, config, _) = read_image(&dest, None);
        let layers = manifest["layers"].as_array().unwrap();
        assert!(layers.len() > 1 && layers.len() <= 6);
        let history = config["history"].as_array().unwrap();
        assert_eq!(history.len(), layers.len());
        assert_eq!(history[0]["created_by"], "Fixture build 42.1");
        for (i, l) in layers.iter().enumerate().skip(1) {
            let comps = l["annotations"]["ostree.components"].as_str().unwrap();
            let mut sorted: Vec<&str> = comps.split(',').collect();
            sorted.sort();
            assert_eq!(sorted.join(","), comps, "sorted component names");
            assert!(!history[i]["created_by"].as_str().unwrap().is_empty());
        }
        // GNU tar lists and extracts every layer (decompressing itself).
        let mut files = 0;
        for (i, l) in layers.iter().enumerate() {
            let path = dest
                .join("blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            let list = Command::new("tar")
                .args([flag, "-tvf"])
                .arg(&path)
                .output()
                .unwrap();
            assert_success(&list);
            let text = String::from_utf8_lossy(&list.stdout);
            assert!(text.contains("sysroot/ostree/repo/objects/"), "layer {i}");
            let names = Command::new("tar")
                .args([flag, "-tf"])
                .arg(&path)
                .output()
                .unwrap();
            files += String::from_utf8_lossy(&names.stdout)
                .lines()
                .filter(|l| l.ends_with(".file"))
                .count();
            let x = d.path().join(format!("x-{name}-{i}"));
            std::fs::create_dir_all(&x).unwrap();
            let ex = Command::new("tar")
                .args([flag, "-xf"])
                .arg(&path)
                .arg("-C")
                .arg(&x)
                .output()
                .unwrap();
            assert_success(&ex);
        }
        let plan = ExportPlan::new(&f.repo, f.commit).unwrap();
        assert_eq!(
            files,
            plan.content_objects().count(),
            "each object exactly once"
        );
    }
}

#[test]
fn tagged_index_keeps_other_tags() {
    let d = scratch();
    let dest = d.path().join("multi");
    let a = encap(
        "fixture",
        &opts(1, Compression::gzip()),
        &format!("oci:{}:a", dest.display()),
    );
    let b = encap(
        "fixture",
        &opts(2, Compression::gzip()),
        &format!("oci:{}:b", dest.display()),
    );
    assert_ne!(a, b);
    // Re-tagging `a` replaces its entry.
    let a2 = encap(
        "canon",
        &opts(1, Compression::gzip()),
        &format!("oci:{}:a", dest.display()),
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [("b".to_string(), b), ("a".to_string(), a2.clone())]
    );
    // Without a tag the index holds just this manifest.
    encap(
        "fixture",
        &opts(1, Compression::gzip()),
        &format!("oci:{}", dest.display()),
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], a);
}
