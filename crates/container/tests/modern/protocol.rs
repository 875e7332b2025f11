//! The image-proxy protocol skopeo 1.18 speaks (container-image-format §10.2) and the gated
//! paths it opens: `GetLayerInfo` (pulls from containers-storage / docker-daemon) and policy
//! enforcement in the proxy (0.2.6, which `ostree-image-signed:` requires), and
//! `OpenImageOptional` (0.2.4). skopeo 1.18 is
//! below 0.2.7 (`GetLayerInfoPiped`, `GetRawBlob`: skopeo 1.19).

use ostree_container::{FetchReason, ImageFetcher, ImageReference};

use crate::common::anon;
use crate::{d13, fixture, modern};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn skopeo_1_18_speaks_0_2_6() {
    let f = fixture();
    let stored = d13().load_oci(&f.chunked, "localhost/oc-protocol:latest");
    let r: ImageReference = stored.parse().unwrap();
    let rt = rt();
    rt.block_on(async {
        let fetcher = ImageFetcher::open(&r, modern()).await.unwrap();
        assert_eq!(fetcher.protocol_version(), "0.2.6");
        // containers-storage is opened (the GetLayerInfo gate at 0.2.5 passes) and serves the
        // manifest, converted to OCI, with our labels in the config.
        let (manifest, digest, config) = fetcher.fetch_manifest_and_config().await.unwrap();
        assert!(digest.starts_with("sha256:"), "{digest}");
        assert_eq!(manifest.layers().len(), 4);
        let labels = config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap();
        assert_eq!(labels["ostree.commit"], f.commit.to_hex());
        fetcher.finish().await.unwrap();

        // The same store through Debian 12's skopeo 1.9.3: refused at open, naming 0.2.3.
        let e = ImageFetcher::open(&r, anon()).await.unwrap_err();
        assert_eq!(e.reason(), FetchReason::Unsupported, "{e}");
        assert!(ostree_errors::chain(&e).contains("0.2.3"), "{e}");
    });
}

/// `OpenImageOptional` (0.2.4; we do not use it, the reference does for containers-storage):
/// skopeo 1.18 answers "absent" for a missing image, skopeo 1.9.3 does not know the call.
#[test]
fn open_image_optional_needs_newer_than_1_9() {
    use containers_image_proxy::{ImageProxy, ImageProxyConfig};
    let proxy = |program: std::path::PathBuf| async move {
        let mut c = ImageProxyConfig::default();
        c.auth_anonymous = true;
        c.skopeo_cmd = Some(std::process::Command::new(program));
        ImageProxy::new_with_config(c).await.unwrap()
    };
    rt().block_on(async {
        let p = proxy(d13().skopeo_path()).await;
        let missing = p
            .open_image_optional("containers-storage:localhost/oc-never-stored:latest")
            .await
            .unwrap();
        assert!(missing.is_none());
        p.finalize().await.unwrap();

        let p = proxy("skopeo".into()).await;
        assert_eq!(p.protocol_version().to_string(), "0.2.3");
        let e = p
            .open_image_optional("oci:/var/tmp/oc-never-written:latest")
            .await
            .expect_err("skopeo 1.9.3 has no OpenImageOptional");
        assert!(
            ostree_errors::chain(&e).contains("unknown method: OpenImageOptional"),
            "{e}"
        );
    });
}
