//! SELinux labels of a non-ostree image (issue 13): no policy in the image, so its layers get
//! labels only through `PullOptions::sepolicy_commit` (the reference's `set_sepolicy_commit`);
//! without it, none. The real policy is Debian's (`scripts/selinux-root.sh`).

use std::collections::BTreeMap;

use ostree_container::OstreeImageReference;
use ostree_container::store::{self, PullOptions};
use ostree_repo::Repo;
use test_support::layer::LayerTar;
use test_support::oci::{LayerCompression, NO_LABELS, write_layout};
use test_support::ostree_cli::OstreeCli;

use crate::common::anon;
use crate::scratch;

/// path → label, from `ostree ls -RX`.
fn labels(repo: &Repo, rev: &str) -> BTreeMap<String, String> {
    let out = OstreeCli::new()
        .unwrap()
        .command(&[
            "ls",
            &format!("--repo={}", repo.path().display()),
            "-R",
            "-X",
            rev,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.rsplit_once("} ")?;
            let label = l
                .split_once("b'security.selinux', b'")
                .and_then(|(_, r)| r.split_once('\''))
                .map(|(v, _)| v.to_string())
                .unwrap_or_default();
            Some((rest.split(" -> ").next()?.to_string(), label))
        })
        .collect()
}

#[test]
fn non_ostree_image_is_labelled_from_the_sepolicy_commit_only() {
    let d = scratch();
    let layer = LayerTar::new()
        .dir("usr/", 0o755, 0, 0)
        .dir("usr/bin/", 0o755, 0, 0)
        .file("usr/bin/tool", b"tool", 0o755, 0, 0)
        .dir("etc/", 0o755, 0, 0)
        .file("etc/app.conf", b"conf", 0o644, 0, 0)
        .finish();
    let img = d.path().join("plain");
    write_layout(&img, &[layer], NO_LABELS, LayerCompression::Gzip).unwrap();
    let image: OstreeImageReference =
        format!("ostree-unverified-image:oci:{}:latest", img.display())
            .parse()
            .unwrap();
    let policy_tree = d.path().join("policy");
    test_support::selinux::install_policy(&policy_tree);
    for (name, with_policy) in [("labelled", true), ("plain", false)] {
        let rp = d.path().join(format!("repo-{name}"));
        let cli = OstreeCli::new().unwrap();
        cli.init(&rp, "bare-user").unwrap();
        cli.commit(&rp, "booted", &policy_tree, &Default::default())
            .unwrap();
        let repo = Repo::open(&rp).unwrap();
        let mut opts = PullOptions::new();
        opts.fetch = anon();
        if with_policy {
            opts.sepolicy_commit = Some("booted".into());
        }
        let (out, _) = store::pull_blocking(&repo, &image, opts).unwrap();
        let merge = out.merge_commit.unwrap().to_string();
        let l = labels(&repo, &merge);
        if with_policy {
            assert_eq!(l["/usr/bin/tool"], "system_u:object_r:bin_t:s0", "{l:?}");
            assert_eq!(
                l["/usr/etc/app.conf"], "system_u:object_r:etc_t:s0",
                "{l:?}"
            );
            assert_eq!(l["/"], "system_u:object_r:root_t:s0", "{l:?}");
            assert!(l.values().all(|v| !v.is_empty()), "{l:?}");
        } else {
            assert!(l.values().all(String::is_empty), "{l:?}");
        }
        cli.fsck(&rp).unwrap().check().unwrap();
        // Pulled again: the labelled layer commit is reused, the merge is the same.
        let mut opts = PullOptions::new();
        opts.fetch = anon();
        if with_policy {
            opts.sepolicy_commit = Some("booted".into());
        }
        store::remove_images(&repo, std::slice::from_ref(&image.imgref)).unwrap();
        let (again, _) = store::pull_blocking(&repo, &image, opts).unwrap();
        assert_eq!(
            again.merge_commit.unwrap().to_string(),
            merge,
            "{name}: deterministic"
        );
    }
}
