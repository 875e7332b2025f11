//! Our encapsulate straight to `containers-storage:` and `docker-daemon:` (pushed by skopeo
//! 1.18, chosen with `EncapsulateOptions::skopeo`), then pulled back: the same commit. Docker
//! takes gzip images only.

use std::num::NonZeroUsize;

use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};
use ostree_container::fetch::SkopeoCommand;
use ostree_repo::RepoMode;
use test_support::modern::DockerDaemon;

use crate::{d13, fixture, import_check, scratch};

fn opts(layers: usize, compression: Compression) -> EncapsulateOptions {
    let mut o = EncapsulateOptions::new();
    o.max_layers = NonZeroUsize::new(layers);
    o.compression = compression;
    o.skopeo = Some(SkopeoCommand::new(d13().skopeo_path()));
    o
}

fn encap(o: &EncapsulateOptions, dest: &str) -> String {
    encapsulate(&fixture().repo, "fixture", o, &dest.parse().unwrap())
        .unwrap_or_else(|e| panic!("encapsulate to {dest}: {e}"))
}

#[test]
fn to_containers_storage_and_back() {
    let f = fixture();
    let d = scratch();
    for (layers, comp, mode) in [
        (1, Compression::gzip(), RepoMode::Bare),
        (8, Compression::zstd(), RepoMode::BareUser),
        (32, Compression::gzip(), RepoMode::Archive),
    ] {
        let name = format!("localhost/oc-encap-{layers}:latest");
        encap(&opts(layers, comp), &format!("containers-storage:{name}"));
        let inspect = d13().podman(&["image", "inspect", "--format", "{{json .Labels}}", &name]);
        let labels: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(labels["ostree.commit"], f.commit.to_hex(), "{name}");
        import_check(
            &format!("ostree-unverified-image:containers-storage:{name}"),
            mode,
            &d.path().join(format!("l{layers}")),
            &f.commit,
            &f.checkout,
        );
    }
    // Docker's image format has no zstd layers: skopeo refuses the conversion, a push error.
    let dest = "docker-daemon:localhost/oc-encap-zstd:latest";
    let e = encapsulate(
        &f.repo,
        "fixture",
        &opts(2, Compression::zstd()),
        &dest.parse().unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        e.reason(),
        ostree_container::encapsulate::EncapsulateReason::Push,
        "{e}"
    );
    assert!(ostree_errors::chain(&e).contains("zstd"), "{e}");
}

#[test]
fn to_docker_daemon_and_back() {
    let f = fixture();
    let d = scratch();
    let _docker = DockerDaemon::start();
    for (layers, comp, mode) in [
        (1, Compression::gzip(), RepoMode::Archive),
        (8, Compression::Gzip { level: 1 }, RepoMode::Bare),
    ] {
        let dest = format!("docker-daemon:localhost/oc-encap-{layers}:latest");
        encap(&opts(layers, comp), &dest);
        import_check(
            &format!("ostree-unverified-image:{dest}"),
            mode,
            &d.path().join(format!("l{layers}")),
            &f.commit,
            &f.checkout,
        );
    }
    // Docker's image format has no zstd layers: skopeo refuses the conversion, a push error.
    let dest = "docker-daemon:localhost/oc-encap-zstd:latest";
    let e = encapsulate(
        &f.repo,
        "fixture",
        &opts(2, Compression::zstd()),
        &dest.parse().unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        e.reason(),
        ostree_container::encapsulate::EncapsulateReason::Push,
        "{e}"
    );
    assert!(ostree_errors::chain(&e).contains("zstd"), "{e}");
}
