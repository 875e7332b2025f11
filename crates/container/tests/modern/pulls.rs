//! Pulls from `containers-storage:` and `docker-daemon:` through skopeo 1.18 (GetLayerInfo:
//! those stores hold layers uncompressed), and Debian 12's skopeo 1.9.3 refusing them.

use ostree_container::unencapsulate::{UnencapsulateOptions, unencapsulate};
use ostree_repo::{Repo, RepoMode};
use test_support::modern::DockerDaemon;

use crate::common::anon;
use crate::{MODES, d13, fixture, import_check, scratch};

#[test]
fn containers_storage_single_and_chunked_every_mode() {
    let f = fixture();
    let d = scratch();
    for (name, layout) in [("single", &f.single), ("chunked", &f.chunked)] {
        let stored = d13().load_oci(layout, &format!("localhost/oc-pull-{name}:latest"));
        for mode in MODES {
            import_check(
                &format!("ostree-unverified-image:{stored}"),
                mode,
                &d.path().join(name),
                &f.commit,
                &f.checkout,
            );
        }
    }
}

#[test]
fn docker_daemon_single_and_chunked_every_mode() {
    let f = fixture();
    let d = scratch();
    let _docker = DockerDaemon::start();
    for (name, layout) in [("single", &f.single), ("chunked", &f.chunked)] {
        let dst = format!("docker-daemon:localhost/oc-pull-{name}:latest");
        d13().skopeo_copy(&format!("oci:{}", layout.display()), &dst, &[]);
        for mode in MODES {
            import_check(
                &format!("ostree-unverified-image:{dst}"),
                mode,
                &d.path().join(name),
                &f.commit,
                &f.checkout,
            );
        }
    }
}

#[test]
fn recompressed_by_skopeo_then_stored() {
    let f = fixture();
    let d = scratch();
    let zstd = d.path().join("zstd");
    d13().skopeo_copy(
        &format!("oci:{}", f.chunked.display()),
        &format!("oci:{}:latest", zstd.display()),
        &["--dest-compress-format", "zstd"],
    );
    let m: serde_json::Value = serde_json::from_str(&d13().skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:latest", zstd.display()),
    ]))
    .unwrap();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    let stored = d13().load_oci(&zstd, "localhost/oc-pull-zstd:latest");
    import_check(
        &format!("ostree-unverified-image:{stored}"),
        RepoMode::BareUser,
        &d.path().join("cs"),
        &f.commit,
        &f.checkout,
    );
    // Docker takes no zstd layers: recompress with another gzip level for it.
    let gzip9 = d.path().join("gzip9");
    d13().skopeo_copy(
        &format!("oci:{}", f.chunked.display()),
        &format!("oci:{}:latest", gzip9.display()),
        &[
            "--dest-compress-format",
            "gzip",
            "--dest-compress-level",
            "9",
        ],
    );
    let _docker = DockerDaemon::start();
    let dst = "docker-daemon:localhost/oc-pull-gzip9:latest";
    d13().skopeo_copy(&format!("oci:{}:latest", gzip9.display()), dst, &[]);
    import_check(
        &format!("ostree-unverified-image:{dst}"),
        RepoMode::Archive,
        &d.path().join("dd"),
        &f.commit,
        &f.checkout,
    );
}

/// With an image really present in both stores, Debian 12's skopeo (the default) is refused
/// with an error naming the version needed, and nothing is written.
#[test]
fn debian12_skopeo_refuses_both_stores() {
    let f = fixture();
    let d = scratch();
    let stored = d13().load_oci(&f.single, "localhost/oc-pull-old:latest");
    let _docker = DockerDaemon::start();
    let daemon = "docker-daemon:localhost/oc-pull-old:latest";
    d13().skopeo_copy(&format!("oci:{}", f.single.display()), daemon, &[]);
    for (i, src) in [stored.as_str(), daemon].into_iter().enumerate() {
        let repo = Repo::create(&d.path().join(format!("r{i}")), RepoMode::BareUser).unwrap();
        let mut o = UnencapsulateOptions::new();
        o.fetch = anon();
        let e = unencapsulate(
            &repo,
            &format!("ostree-unverified-image:{src}").parse().unwrap(),
            o,
        )
        .unwrap_err();
        let msg = ostree_errors::chain(&e);
        assert!(msg.contains("skopeo >= 1.11"), "{src}: {msg}");
        assert!(msg.contains("0.2.3"), "{src}: {msg}");
        assert!(repo.list_refs().unwrap().is_empty());
    }
}
