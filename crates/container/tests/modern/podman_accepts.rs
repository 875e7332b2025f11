//! Every image our encapsulate makes (1, 8, 32, 64 layers; gzip and zstd) is accepted by podman
//! 5.4's containers-storage (which refuses, e.g., duplicate file paths), also with interleaved
//! package-based chunking, with our
//! labels and layer count, and its merged root filesystem holds the commit's files.

use std::num::NonZeroUsize;

use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};
use ostree_tar::ExportPlan;

use crate::{d13, fixture, scratch};

/// Package-based chunking (content metadata) whose "packages" interleave through every
/// directory: the case where ostree-ext 0.15.3's images can be refused by skopeo 1.18
/// ("duplicates of file paths not supported").
fn interleaved_contentmeta(dir: &std::path::Path) -> std::path::PathBuf {
    let plan = ExportPlan::new(&fixture().repo, fixture().commit).unwrap();
    let mapping: serde_json::Map<String, serde_json::Value> = plan
        .content_objects()
        .enumerate()
        .map(|(i, c)| (c.to_hex(), format!("p{}", i % 3).into()))
        .collect();
    let cm = dir.join("contentmeta.json");
    std::fs::write(
        &cm,
        serde_json::to_vec(&serde_json::json!({
            "version": 1,
            "layers": {"p0": "pkg-zero-1", "p1": "pkg-one-1", "p2": "pkg-two-1"},
            "mapping": mapping,
        }))
        .unwrap(),
    )
    .unwrap();
    cm
}

#[test]
fn every_layer_count_and_compression() {
    let f = fixture();
    let d = scratch();
    let cm = interleaved_contentmeta(d.path());
    let cases = [1usize, 8, 32, 64]
        .into_iter()
        .flat_map(|l| [(l, "gzip", false), (l, "zstd", false)])
        .chain([(4, "gzip", true)]);
    for (layers, cname, with_cm) in cases {
        let comp = if cname == "gzip" {
            Compression::gzip()
        } else {
            Compression::zstd()
        };
        let mut o = EncapsulateOptions::new();
        o.max_layers = NonZeroUsize::new(layers);
        o.compression = comp;
        if with_cm {
            o.contentmeta = Some(cm.clone());
        }
        let layout = d.path().join(format!("{layers}-{cname}-{with_cm}"));
        encapsulate(
            &f.repo,
            "fixture",
            &o,
            &format!("oci:{}:latest", layout.display()).parse().unwrap(),
        )
        .unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&d13().skopeo(&[
            "inspect",
            "--raw",
            &format!("oci:{}:latest", layout.display()),
        ]))
        .unwrap();
        let n = manifest["layers"].as_array().unwrap().len();
        let name = format!("{layers} layers, {cname}, contentmeta {with_cm}");
        // podman pull from the OCI layout into containers-storage; it prints the image id.
        let pulled = d13().podman(&[
            "pull",
            "--quiet",
            &format!("oci:{}:latest", layout.display()),
        ]);
        let id = pulled.trim().to_string();
        let inspect: serde_json::Value =
            serde_json::from_str(&d13().podman(&["image", "inspect", &id])).unwrap();
        let img = &inspect[0];
        assert_eq!(img["Labels"]["ostree.commit"], f.commit.to_hex(), "{name}");
        assert_eq!(
            img["RootFS"]["Layers"].as_array().unwrap().len(),
            n,
            "{name}: layer count"
        );
        let mounted = d13().podman(&["image", "mount", &id]);
        let root = d13().root().join(mounted.trim().trim_start_matches('/'));
        // Our layers put the commit's content under /usr (and /etc from /usr/etc).
        assert!(
            root.join("usr").is_dir(),
            "{name}: no /usr in {}",
            root.display()
        );
        assert_eq!(
            std::fs::read(root.join("usr/bin/app")).unwrap(),
            std::fs::read(f.checkout.join("usr/bin/app")).unwrap(),
            "{name}: /usr/bin/app"
        );
        d13().podman(&["image", "unmount", &id]);
        d13().podman(&["rmi", "--force", &id]);
    }
}
