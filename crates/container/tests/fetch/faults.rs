//! Fault injection: corrupt blobs, dying registries and proxies, stalls, missing tools.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ostree_container::fetch::{LayerOutcome, SkopeoCommand};
use ostree_container::{FetchConfig, FetchError, FetchReason, ImageFetcher, ImageReference};
use test_support::registry::{Registry, RegistryOptions};
use test_support::skopeo::skopeo_copy;

use crate::anon;
use crate::images::{base, big_image, write_layout};

type Fetched = Result<Vec<LayerOutcome<u64>>, FetchError>;

/// Fetches the (single, big) layer with a consumer that pauses after 1 MiB; runs `fault`
/// while it is paused, then lets it continue. Bounded in time so a hang fails the test.
async fn fetch_with_fault(
    imgref: &str,
    cfg: FetchConfig,
    fault: impl FnOnce(),
) -> Result<(Fetched, ImageFetcher, Duration)> {
    let r: ImageReference = imgref.parse()?;
    let f = ImageFetcher::open(&r, cfg).await?;
    let (m, _, c) = f.fetch_manifest_and_config().await?;
    let reqs = f.layer_requests(&m, &c)?;
    let paused = Arc::new(AtomicBool::new(false));
    let resume = Arc::new(AtomicBool::new(false));
    let (p, rs) = (Arc::clone(&paused), Arc::clone(&resume));
    let consumer = move |_, r: &mut dyn Read| -> std::io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        r.read_exact(&mut buf)?;
        p.store(true, Ordering::SeqCst);
        while !rs.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::io::copy(r, &mut std::io::sink())
    };
    let start = Instant::now();
    let fetch = tokio::time::timeout(Duration::from_secs(120), f.fetch_layers(&reqs, consumer));
    let trigger = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !paused.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        fault();
        resume.store(true, Ordering::SeqCst);
    };
    let (res, ()) = tokio::join!(fetch, trigger);
    let res = res.context("fetch hung")?;
    let elapsed = start.elapsed();
    Ok((res, f, elapsed))
}

/// Pushes a 64 MiB incompressible single-layer image to a fresh plain-HTTP registry.
fn registry_with_big_image(tmp: &Path) -> Result<(Registry, String)> {
    let reg = Registry::start(RegistryOptions::default())?;
    let dir = tmp.join("big");
    big_image(&dir, 64)?;
    let r = format!("docker://{}/test/big:latest", reg.host());
    let src = format!("oci:{}:latest", dir.display());
    skopeo_copy(&src, &r, &["--dest-tls-verify=false"])?;
    Ok((reg, r))
}

/// Opens the OCI layout at `dir` and fetches all its layers, which must fail.
async fn fetch_layout_fails(dir: &Path) -> Result<(FetchError, ImageFetcher)> {
    let r: ImageReference = format!("oci:{}:latest", dir.display()).parse()?;
    let f = ImageFetcher::open(&r, anon()).await?;
    let (m, _, c) = f.fetch_manifest_and_config().await?;
    let reqs = f.layer_requests(&m, &c)?;
    let e = f
        .fetch_layers(&reqs, |_, r| std::io::copy(r, &mut std::io::sink()))
        .await
        .unwrap_err();
    Ok((e, f))
}

fn insecure() -> FetchConfig {
    let mut c = anon();
    c.insecure_skip_tls_verification = true;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_killed_mid_layer() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (mut reg, r) = registry_with_big_image(tmp.path())?;
    let (res, f, _) = fetch_with_fault(&r, insecure(), || reg.kill()).await?;
    let e = res.expect_err("registry was killed mid-layer");
    eprintln!("expected error: {e}");
    assert_eq!(e.reason(), FetchReason::Network, "{e}");
    assert!(e.layer().is_some(), "{e}");
    drop(f);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_registry_times_out() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (mut reg, r) = registry_with_big_image(tmp.path())?;
    let pid = reg.pid().context("registry pid")?.to_string();
    let mut cfg = insecure();
    cfg.stall_timeout = Duration::from_secs(3);
    let stop = || {
        let _ = Command::new("kill").args(["-STOP", &pid]).status();
    };
    let (res, f, elapsed) = fetch_with_fault(&r, cfg, stop).await?;
    let e = res.expect_err("registry was stopped");
    eprintln!("expected error: {e}");
    assert_eq!(e.reason(), FetchReason::Timeout, "{e}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    // Let skopeo's outstanding request fail so its threads can end.
    reg.kill();
    drop(f);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_killed_mid_layer() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("big");
    big_image(&dir, 32)?;
    let pidfile = tmp.path().join("skopeo.pid");
    let mut cfg = anon();
    cfg.skopeo = Some(SkopeoCommand {
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            format!("echo $$ > {}; exec skopeo \"$@\"", pidfile.display()).into(),
            "sh".into(),
        ],
    });
    let kill = || {
        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
    };
    let r = format!("oci:{}:latest", dir.display());
    let (res, f, _) = fetch_with_fault(&r, cfg, kill).await?;
    let e = res.expect_err("skopeo was killed");
    eprintln!("expected error: {e}");
    assert_eq!(e.reason(), FetchReason::ProxyDied, "{e}");
    drop(f);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_is_digest_mismatch() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("corrupt");
    test_support::tree::copy_tree(&base().dir, &dir)?;
    let layer0 = base().diff_ids[0].trim_start_matches("sha256:").to_string();
    let blob = dir.join("blobs/sha256").join(&layer0);
    let mut data = std::fs::read(&blob)?;
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&blob, data)?;
    let (e, f) = fetch_layout_fails(&dir).await?;
    eprintln!("expected error: {e}");
    assert_eq!(e.reason(), FetchReason::DigestMismatch, "{e}");
    assert_eq!(e.layer(), Some(base().diff_ids[0].as_str()), "{e}");
    drop(f);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_media_type() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("enc");
    let mt = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted";
    write_layout(&dir, &[b"not really encrypted".to_vec()], mt)?;
    let (e, f) = fetch_layout_fails(&dir).await?;
    eprintln!("expected error: {e}");
    assert_eq!(e.reason(), FetchReason::Unsupported, "{e}");
    assert!(ostree_errors::chain(&e).contains(mt), "{e}");
    f.finish().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_missing() -> Result<()> {
    let mut cfg = anon();
    cfg.skopeo = Some(SkopeoCommand::new("/nonexistent/bin/skopeo"));
    let e = ImageFetcher::open(&crate::base_ref().parse()?, cfg)
        .await
        .unwrap_err();
    eprintln!("expected error: {e}");
    assert_eq!(e.reason(), FetchReason::SkopeoMissing, "{e}");
    assert!(ostree_errors::chain(&e).contains("skopeo not found"), "{e}");
    assert!(
        ostree_errors::chain(&e).contains("/nonexistent/bin/skopeo"),
        "{e}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_storage_needs_newer_skopeo() -> Result<()> {
    let r: ImageReference = "containers-storage:sha256:0123abcd".parse()?;
    // Debian 12's skopeo 1.9.3 speaks protocol 0.2.3, without GetLayerInfo.
    let e = ImageFetcher::open(&r, anon()).await.unwrap_err();
    assert_eq!(e.reason(), FetchReason::Unsupported, "{e}");
    assert!(ostree_errors::chain(&e).contains("1.11"), "{e}");
    Ok(())
}
