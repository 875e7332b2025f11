//! Living with the store: updates fetch only changed layers, recompressed layers are reused by
//! diff_id, checks for updates are recorded, unused layers are collected, pulls by digest need
//! no network.

use std::num::NonZeroUsize;
use std::path::Path;

use ostree_container::encapsulate::{Compression, EncapsulateOptions, encapsulate};
use ostree_container::store::{
    self, PullOptions, check_for_update, clear_cached_update, diff::ManifestDiff, query_image,
};
use ostree_container::{ImageReference, OstreeImageReference};
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use test_support::ostree_cli::OstreeCli;
use test_support::registry::{Registry, RegistryOptions};
use test_support::skopeo::skopeo_copy;

use crate::common::{anon, insecure};
use crate::{NO, scratch};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn oref(s: &str) -> OstreeImageReference {
    s.parse().unwrap()
}

/// Two commits of a generated tree, the second with a few files changed and one added.
fn two_versions(dir: &Path) -> Repo {
    let tree = dir.join("tree");
    test_support::tree::generate_tree(&tree, &test_support::tree::TreeOptions::default()).unwrap();
    let repo = Repo::create(&dir.join("src"), RepoMode::BareUser).unwrap();
    let commit = |branch: &str| {
        let mut spec = CommitSpec::new();
        spec.subject = branch.into();
        spec.timestamp = Some(1_577_836_800);
        repo.commit_directory(
            &tree,
            Some(branch),
            &TreeOptions::new(),
            &spec,
            &NoProgress,
            &NO,
        )
        .unwrap()
    };
    commit("v1");
    // "A package update": rewrite a few files of one directory, add one.
    let mut changed = 0;
    for e in walk(&tree) {
        if changed < 3 && e.is_file() && e.metadata().unwrap().len() > 0 {
            std::fs::write(&e, format!("updated {}", e.display())).unwrap();
            changed += 1;
        }
    }
    std::fs::write(tree.join("added-in-v2"), b"new file").unwrap();
    commit("v2");
    repo
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.extend(walk(&p));
        } else if md.is_file() {
            out.push(p);
        }
    }
    out
}

fn encap(repo: &Repo, rev: &str, dest: &str, layers: usize) -> String {
    let mut o = EncapsulateOptions::new();
    o.max_layers = NonZeroUsize::new(layers);
    o.compression = Compression::default();
    encapsulate(repo, rev, &o, &dest.parse::<ImageReference>().unwrap()).unwrap()
}

fn pull(repo: &Repo, image: &str, fetch: ostree_container::FetchConfig) -> store::PullOutcome {
    let mut opts = PullOptions::new();
    opts.fetch = fetch;
    store::pull_blocking(repo, &oref(image), opts)
        .unwrap_or_else(|e| panic!("{image}: {e}"))
        .0
}

fn blob_refs(repo: &Repo) -> Vec<String> {
    repo.list_refs_with_prefix(store::refs::BLOB_PREFIX)
        .unwrap()
        .into_keys()
        .collect()
}

#[test]
fn update_fetches_only_changed_layers_and_collects_the_old_ones() {
    let d = scratch();
    let src = two_versions(d.path());
    let layout = d.path().join("img");
    let plain = format!("oci:{}:latest", layout.display());
    let image = format!("ostree-unverified-image:{plain}");
    encap(&src, "v1", &plain, 8);
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let first = pull(&repo, &image, anon());
    let v1 = query_image(&repo, &plain.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(first.layers_fetched, v1.manifest.layers().len());

    // A check finds the update without fetching layers, and records it on the stored image.
    encap(&src, "v2", &plain, 8);
    let mut opts = PullOptions::new();
    opts.fetch = anon();
    // One runtime for the prepared pull: its skopeo connection lives on it.
    let rt = rt();
    let found = rt
        .block_on(check_for_update(&repo, &oref(&image), opts))
        .unwrap()
        .expect("an update");
    let new_manifest = found.manifest.clone();
    let diff = ManifestDiff::new(&v1.manifest, &new_manifest);
    assert!(
        !diff.added.is_empty() && diff.added.len() < new_manifest.layers().len(),
        "{diff:?}"
    );
    rt.block_on(found.close()).unwrap();
    let state = query_image(&repo, &plain.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(state.merge_commit, v1.merge_commit, "a check pulls nothing");
    let cached = state.cached_update.expect("the update is recorded");
    assert_eq!(cached.manifest.layers(), new_manifest.layers());
    clear_cached_update(&repo, &plain.parse().unwrap()).unwrap();
    assert!(
        query_image(&repo, &plain.parse().unwrap())
            .unwrap()
            .unwrap()
            .cached_update
            .is_none()
    );

    // The update: exactly the changed layers are fetched, the ref moves, old layers go.
    let second = pull(&repo, &image, anon());
    assert_eq!(second.layers_fetched, diff.added.len());
    assert_eq!(second.bytes_fetched, diff.added_size);
    assert_eq!(
        second.layers_present,
        new_manifest.layers().len() - diff.added.len()
    );
    let v2 = query_image(&repo, &plain.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_ne!(v2.merge_commit, v1.merge_commit);
    assert_eq!(v2.base_commit, Some(src.resolve_rev("v2").unwrap()));
    let expected: Vec<String> = new_manifest
        .layers()
        .iter()
        .map(|l| store::refs::blob_ref(l.digest().as_ref()).unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        blob_refs(&repo),
        expected,
        "the removed layers' refs were collected"
    );
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap();
    // A third pull: nothing to do.
    let third = pull(&repo, &image, anon());
    assert!(third.already_present);
    assert_eq!(third.merge_commit, Some(v2.merge_commit));
}

#[test]
fn recompressed_layers_are_reused_by_diff_id() {
    let d = scratch();
    let src = two_versions(d.path());
    let gz = d.path().join("gz");
    encap(&src, "v1", &format!("oci:{}:latest", gz.display()), 4);
    let zst = d.path().join("zst");
    skopeo_copy(
        &format!("oci:{}:latest", gz.display()),
        &format!("oci:{}:latest", zst.display()),
        &["--dest-compress-format", "zstd"],
    )
    .unwrap();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::Bare).unwrap();
    let a = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:latest", gz.display()),
        anon(),
    );
    let b = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:latest", zst.display()),
        anon(),
    );
    assert_eq!(b.layers_fetched, 0, "every layer is known by its diff_id");
    assert_eq!(b.layers_present, a.layers_fetched);
    // Same content, same merge tree.
    let ta = repo
        .load_commit(&a.merge_commit.unwrap())
        .unwrap()
        .root_tree;
    let tb = repo
        .load_commit(&b.merge_commit.unwrap())
        .unwrap()
        .root_tree;
    assert_eq!(ta, tb);
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap();
}

#[test]
fn pull_by_stored_digest_needs_no_network() {
    let d = scratch();
    let src = two_versions(d.path());
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let local = d.path().join("img");
    let digest = encap(&src, "v1", &format!("oci:{}:latest", local.display()), 4);
    let dest = format!("docker://{}/store/digest:latest", registry.host());
    skopeo_copy(
        &format!("oci:{}:latest", local.display()),
        &dest,
        &["--dest-tls-verify=false"],
    )
    .unwrap();
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let by_digest = format!(
        "ostree-unverified-registry:{}/store/digest@{digest}",
        registry.host()
    );
    let first = pull(&repo, &by_digest, insecure());
    assert!(!first.already_present);
    drop(registry);
    // The registry is gone: only a pull that needs no network can succeed.
    let again = pull(&repo, &by_digest, insecure());
    assert!(again.already_present);
    assert_eq!(again.merge_commit, first.merge_commit);
}
