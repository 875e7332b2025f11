//! Every image our encapsulate makes (1, 8, 32, 64 layers; gzip and zstd) is accepted by podman
//! 5.4's containers-storage (which refuses, e.g., duplicate file paths across layers), with our
//! labels and layer count, and its merged root filesystem holds the commit's files.

use std::num::NonZeroUsize;

use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};

use crate::{d13, fixture, scratch};

#[test]
fn every_layer_count_and_compression() {
    let f = fixture();
    let d = scratch();
    for layers in [1usize, 8, 32, 64] {
        for (cname, comp) in [("gzip", Compression::gzip()), ("zstd", Compression::zstd())] {
            let mut o = EncapsulateOptions::new();
            o.max_layers = NonZeroUsize::new(layers);
            o.compression = comp;
            let layout = d.path().join(format!("{layers}-{cname}"));
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
            let name = format!("{layers} layers, {cname}");
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
}
