//! Fetching through the real skopeo proxy from every transport skopeo 1.9 can pull, plus
//! fault injection. A missing tool fails the test (never a skip).

mod faults;
mod images;

use std::io::Read;
use std::num::NonZeroUsize;

use anyhow::Result;
use images::{FileSpec, base, base_ref, copy_base, inspect_digest};
use ostree_container::fetch::{Compression, LayerState};
use ostree_container::{FetchConfig, FetchReason, ImageFetcher, ImageReference};
use test_support::registry::{Registry, RegistryOptions};

/// Consumer: the tar's regular files.
fn read_tar(_: usize, r: &mut dyn Read) -> Result<Vec<FileSpec>> {
    let mut a = tar::Archive::new(r);
    let mut out = Vec::new();
    for e in a.entries()? {
        let mut e = e?;
        let path = e.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        out.push(FileSpec { path, data });
    }
    Ok(out)
}

pub fn anon() -> FetchConfig {
    let mut c = FetchConfig::default();
    c.auth_anonymous = true;
    c
}

/// Fetches everything and checks it against the base image; returns the manifest digest.
async fn fetch_check(imgref: &str, cfg: FetchConfig, want: Option<Compression>) -> Result<String> {
    let r: ImageReference = imgref.parse()?;
    let f = ImageFetcher::open(&r, cfg).await?;
    let (manifest, digest, config) = f.fetch_manifest_and_config().await?;
    let reqs = f.layer_requests(&manifest, &config)?;
    let progress: Vec<_> = reqs.iter().map(|r| r.progress()).collect();
    let out = f.fetch_layers(&reqs, read_tar).await?;
    assert_eq!(out.len(), base().layers.len());
    for (i, o) in out.iter().enumerate() {
        assert_eq!(o.index, i);
        assert_eq!(o.value, base().layers[i], "{imgref} layer {i}");
        assert_eq!(o.diff_id, base().diff_ids[i]);
        assert_eq!(o.blob_digest, manifest.layers()[i].digest().to_string());
        if let Some(c) = want {
            assert_eq!(o.compression, c, "{imgref} layer {i}");
        }
        assert_eq!(progress[i].total(), manifest.layers()[i].size());
        assert_eq!(progress[i].fetched(), progress[i].total());
        assert_eq!(progress[i].state(), LayerState::Done);
        assert_eq!(o.compressed_size, progress[i].total());
    }
    f.finish().await?;
    Ok(digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_uncompressed() -> Result<()> {
    let r = base_ref();
    let digest = fetch_check(&r, anon(), Some(Compression::None)).await?;
    assert_eq!(digest, inspect_digest(&r, &[])?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_compressed_variants() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    for (fmt, want) in [
        ("gzip", Compression::Gzip),
        ("zstd", Compression::Zstd),
        ("zstd:chunked", Compression::Zstd),
    ] {
        let dest = format!(
            "oci:{}/{}:latest",
            tmp.path().display(),
            fmt.replace(':', "-")
        );
        copy_base(&dest, &["--dest-compress-format", fmt])?;
        if fmt == "zstd:chunked" {
            // Make sure the variant is real: its layers carry the TOC annotations.
            let raw = test_support::skopeo::skopeo(&["inspect", "--raw", &dest])?;
            assert!(String::from_utf8_lossy(&raw).contains("zstd-chunked"));
        }
        let digest = fetch_check(&dest, anon(), Some(want)).await?;
        assert_eq!(digest, inspect_digest(&dest, &[])?, "{fmt}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_and_dir() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let p = tmp.path().display();
    let oci_archive = format!("oci-archive:{p}/img.tar:latest");
    copy_base(&oci_archive, &[])?;
    fetch_check(&oci_archive, anon(), Some(Compression::Gzip)).await?;

    let dir = format!("dir:{p}/dir-v2s2");
    copy_base(&dir, &["--format", "v2s2", "--dest-compress"])?;
    let digest = fetch_check(&dir, anon(), Some(Compression::Gzip)).await?;
    assert_eq!(digest, inspect_digest(&dir, &[])?);

    // docker-archive labels its plain layers as gzip; the bytes decide.
    let darchive = format!("docker-archive:{p}/docker.tar:test/img:latest");
    copy_base(&darchive, &[])?;
    fetch_check(&darchive, anon(), Some(Compression::None)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_and_lazy_consumer() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dest = format!("oci:{}/gz:latest", tmp.path().display());
    copy_base(&dest, &["--dest-compress-format", "gzip"])?;
    for n in [1usize, 2, 3, 8] {
        let mut cfg = anon();
        cfg.layer_concurrency = NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        fetch_check(&dest, cfg, Some(Compression::Gzip)).await?;
    }
    // A consumer that reads nothing: the rest is drained and diff_ids still match.
    let f = ImageFetcher::open(&dest.parse()?, anon()).await?;
    let (m, _, c) = f.fetch_manifest_and_config().await?;
    let reqs = f.layer_requests(&m, &c)?;
    let out = f
        .fetch_layers(&reqs, |_, _| Ok::<_, std::io::Error>(()))
        .await?;
    let ids: Vec<_> = out.iter().map(|o| o.diff_id.clone()).collect();
    assert_eq!(ids, base().diff_ids);
    f.finish().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_plain_http() -> Result<()> {
    let reg = Registry::start(RegistryOptions::default())?;
    let host = reg.host();
    for (name, flags) in [
        ("oci-gzip", &["--dest-compress-format", "gzip"][..]),
        ("v2s2", &["--format", "v2s2"][..]),
        (
            "zstd-chunked",
            &["--dest-compress-format", "zstd:chunked"][..],
        ),
    ] {
        let r = format!("docker://{host}/test/{name}:latest");
        let mut f = vec!["--dest-tls-verify=false"];
        f.extend_from_slice(flags);
        copy_base(&r, &f)?;
        let mut cfg = anon();
        cfg.insecure_skip_tls_verification = true;
        let digest = fetch_check(&r, cfg, None).await?;
        assert_eq!(
            digest,
            inspect_digest(&r, &["--tls-verify=false"])?,
            "{name}"
        );
    }
    // Missing image in a live registry.
    let mut cfg = anon();
    cfg.insecure_skip_tls_verification = true;
    let r: ImageReference = format!("docker://{host}/test/nope:latest").parse()?;
    let e = ImageFetcher::open(&r, cfg).await.unwrap_err();
    assert_eq!(e.reason(), FetchReason::NotFound, "{e}");
    assert!(ostree_errors::chain(&e).contains("test/nope"), "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_tls_and_auth() -> Result<()> {
    let reg = Registry::start(RegistryOptions {
        tls: true,
        basic_auth: Some(("tester".into(), "s3cret".into())),
    })?;
    let certs = reg.cert_dir().expect("tls registry has certs");
    let certs_s = certs.display().to_string();
    let r = format!("docker://{}/test/auth:latest", reg.host());
    copy_base(
        &r,
        &["--dest-cert-dir", &certs_s, "--dest-creds", "tester:s3cret"],
    )?;
    let tmp = tempfile::tempdir()?;
    let good = tmp.path().join("good.json");
    reg.write_authfile(&good, "tester", "s3cret")?;
    let mut cfg = FetchConfig::default();
    cfg.authfile = Some(good.clone());
    cfg.certificate_directory = Some(certs.clone());
    let digest = fetch_check(&r, cfg, Some(Compression::Gzip)).await?;
    let good_s = good.display().to_string();
    assert_eq!(
        digest,
        inspect_digest(&r, &["--cert-dir", &certs_s, "--authfile", &good_s])?
    );

    let bad = tmp.path().join("bad.json");
    reg.write_authfile(&bad, "tester", "wrong")?;
    let mut cfg = FetchConfig::default();
    cfg.authfile = Some(bad);
    cfg.certificate_directory = Some(certs.clone());
    let e = ImageFetcher::open(&r.parse()?, cfg).await.unwrap_err();
    assert_eq!(e.reason(), FetchReason::Auth, "{e}");

    // Without the certificate the TLS handshake fails: not an auth or not-found error.
    let mut cfg = FetchConfig::default();
    cfg.authfile = Some(good);
    let e = ImageFetcher::open(&r.parse()?, cfg).await.unwrap_err();
    assert_eq!(e.reason(), FetchReason::Proxy, "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_local_image() -> Result<()> {
    let e = ImageFetcher::open(&"oci:/nonexistent/layout:latest".parse()?, anon())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), FetchReason::NotFound, "{e}");
    assert!(
        ostree_errors::chain(&e).contains("/nonexistent/layout"),
        "{e}"
    );
    Ok(())
}
