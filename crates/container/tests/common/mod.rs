//! Helpers shared by the encapsulate and unencapsulate test binaries that need engine types (so
//! they cannot live in `test-support`, which stays independent of the code it checks).

use std::path::{Path, PathBuf};

use ostree_container::unencapsulate::{UnencapsulateOptions, unencapsulate};
use ostree_container::{FetchConfig, Import};
use ostree_repo::{Repo, RepoMode};

/// A generated tree at `dir/tree` and an empty bare-user repository at `dir/source` to commit
/// it into.
pub fn generated_source(dir: &Path, big_file_mib: u64, seed: u64) -> (PathBuf, Repo) {
    let src = dir.join("tree");
    let opts = test_support::tree::TreeOptions {
        big_file_mib,
        seed,
        ..Default::default()
    };
    test_support::tree::generate_tree(&src, &opts).unwrap();
    (
        src,
        Repo::create(&dir.join("source"), RepoMode::BareUser).unwrap(),
    )
}

pub fn anon() -> FetchConfig {
    let mut c = FetchConfig::default();
    c.auth_anonymous = true;
    c
}

/// Anonymous, to a plain-HTTP loopback registry.
pub fn insecure() -> FetchConfig {
    let mut c = anon();
    c.insecure_skip_tls_verification = true;
    c
}

/// With `authfile`, trusting the certificates in `cert_dir`.
pub fn authenticated(authfile: &Path, cert_dir: &Path) -> FetchConfig {
    let mut c = FetchConfig::default();
    c.authfile = Some(authfile.to_path_buf());
    c.certificate_directory = Some(cert_dir.to_path_buf());
    c
}

/// Imports `image` (an `ostree-unverified-…` reference) into a new repository of `mode` under
/// `dir`, writing the ref `imported`.
pub fn import_into(image: &str, mode: RepoMode, fetch: FetchConfig, dir: &Path) -> (Repo, Import) {
    let repo = Repo::create(&dir.join(format!("repo-{}", mode.name())), mode).unwrap();
    let mut o = UnencapsulateOptions::new();
    o.fetch = fetch;
    o.write_ref = Some("imported".into());
    let import = unencapsulate(&repo, &image.parse().unwrap(), o)
        .unwrap_or_else(|e| panic!("{image} into {mode}: {e}"));
    (repo, import)
}
