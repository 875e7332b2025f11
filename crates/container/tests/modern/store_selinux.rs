//! SELinux labels of store pulls (issue 13) against `ostree commit --selinux-policy` of podman's
//! view of the image: a base tree carrying Debian's `selinux-policy-default` in
//! `usr/etc/selinux`, committed labelled by ostree 2022.7 and encapsulated by us; podman 5.4
//! builds derived images from it (one adding files under `/usr`, `/etc`, `/var`; one whose layer
//! changes `file_contexts`). The labels of every path of our merge commit must equal those
//! `ostree commit --selinux-policy` gives podman's mounted root filesystem after the path rules
//! (`etc` → `usr/etc`; only `usr`, `etc`, `var` kept).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ostree_container::OstreeImageReference;
use ostree_container::encapsulate::{EncapsulateOptions, encapsulate};
use ostree_container::store::{self, PullOptions};
use ostree_repo::Repo;
use test_support::ostree_cli::OstreeCli;

use crate::{d13, modern};

/// path → label, from `ostree ls -RX`.
fn labels(cli: &OstreeCli, repo: &Path, rev: &str) -> BTreeMap<String, String> {
    let out = cli
        .command(&["ls", &format!("--repo={}", repo.display()), "-R", "-X", rev])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let Some((_, rest)) = l.rsplit_once("} ") else {
            continue;
        };
        let path = rest.split(" -> ").next().unwrap().to_string();
        let label = l
            .split_once("b'security.selinux', b'")
            .and_then(|(_, r)| r.split_once('\''))
            .map(|(v, _)| v.to_string())
            .unwrap_or_default();
        m.insert(path, label);
    }
    m
}

fn cp(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

const ADDS: &str = "FROM $BASE
RUN echo tool > /usr/bin/new-tool && chmod 755 /usr/bin/new-tool \\
 && mkdir -p /usr/lib/systemd/system && echo u > /usr/lib/systemd/system/new.service \\
 && echo conf > /etc/new.conf && mkdir -p /etc/ssh && echo s > /etc/ssh/sshd_config \\
 && mkdir -p /var/lib/newapp && echo state > /var/lib/newapp/state \\
 && mkdir -p /var/log && echo l > /var/log/new.log
";

/// The layer adds a rule and drops the compiled `.bin` (else libselinux reads the old one).
const POLICY_CHANGE: &str = "FROM $BASE
RUN echo '/usr/share/special(/.*)?    system_u:object_r:bin_t:s0' >> /etc/selinux/default/contexts/files/file_contexts \\
 && rm -f /etc/selinux/default/contexts/files/file_contexts.bin \\
 && mkdir -p /usr/share/special && echo s > /usr/share/special/f && echo d > /usr/share/doc-file
";

#[test]
fn merge_labels_equal_ostree_commit_selinux_policy_of_the_podman_rootfs() {
    d13();
    let dir = test_support::scratch("oc-modern-selinux-");
    let src = dir.path().join("src");
    test_support::selinux::install_policy(&src);
    for d in ["usr/bin", "usr/share/doc", "var/lib"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("usr/bin/app"), b"app\n").unwrap();
    std::fs::write(src.join("usr/etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(src.join("usr/share/doc/README"), b"doc\n").unwrap();
    d13().add_busybox(&src).unwrap();
    let host = OstreeCli::new().unwrap();
    let repo_path = dir.path().join("repo");
    host.init(&repo_path, "bare-user").unwrap();
    let mut c = host.command(&[
        "commit",
        &format!("--repo={}", repo_path.display()),
        "--branch=base",
        &format!("--selinux-policy={}", src.display()),
        &format!("--tree=dir={}", src.display()),
    ]);
    assert!(c.status().unwrap().success());
    let repo = Repo::open(&repo_path).unwrap();
    let base = dir.path().join("base");
    encapsulate(
        &repo,
        "base",
        &EncapsulateOptions::new(),
        &format!("oci:{}:latest", base.display()).parse().unwrap(),
    )
    .unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    for (name, file) in [("adds", ADDS), ("policy-change", POLICY_CHANGE)] {
        let built = d13().build_derived(file, &ctx, &base);
        let image = format!(
            "ostree-unverified-image:oci:{}:latest",
            built.oci_layout_dir.display()
        );
        let r: OstreeImageReference = image.parse().unwrap();
        let mut opts = PullOptions::new();
        opts.fetch = modern();
        let (out, _) = store::pull_blocking(&repo, &r, opts).unwrap();
        let merge = out.merge_commit.expect("a merge commit").to_string();
        // The oracle: podman's root filesystem after the path rules, committed labelled.
        let tree = dir.path().join(format!("rootfs-{name}"));
        cp(&built.rootfs.join("usr"), &tree.join("usr"));
        cp(&built.rootfs.join("etc"), &tree.join("usr/etc"));
        cp(&built.rootfs.join("var"), &tree.join("var"));
        let oracle = dir.path().join(format!("oracle-{name}"));
        host.init(&oracle, "bare-user").unwrap();
        let mut c = host.command(&[
            "commit",
            &format!("--repo={}", oracle.display()),
            "--branch=o",
            &format!("--selinux-policy={}", tree.display()),
            &format!("--tree=dir={}", tree.display()),
        ]);
        assert!(c.status().unwrap().success());
        let ours = labels(&host, &repo_path, &merge);
        let theirs = labels(&host, &oracle, "o");
        let mut diffs = Vec::new();
        for (p, l) in &ours {
            match theirs.get(p) {
                Some(t) if t == l => {}
                Some(t) => diffs.push(format!("{p}: ours {l:?}, ostree {t:?}")),
                // In the merge only: the base's var/tmp, builder-injected files.
                None => {}
            }
        }
        assert!(
            diffs.is_empty(),
            "{name}: labels differ:\n{}",
            diffs.join("\n")
        );
        assert!(
            ours.len() > 10 && ours.values().all(|l| !l.is_empty()),
            "{name}: {ours:?}"
        );
        if name == "policy-change" {
            assert_eq!(
                ours.get("/usr/share/special/f").map(String::as_str),
                Some("system_u:object_r:bin_t:s0"),
                "the merged policy's new rule"
            );
        } else {
            assert_eq!(
                ours.get("/usr/bin/new-tool").map(String::as_str),
                Some("system_u:object_r:bin_t:s0")
            );
        }
    }
}
