//! Derived-layer labelling vs `ostree commit --selinux-policy --tree=tar=`.

use std::sync::Arc;

use ostree_repo::format::Checksum;
use ostree_selinux::SePolicy;

use super::{init_repo, oracles, policy_tree};

#[derive(Clone, Copy)]
enum Part {
    Dirs,
    Files,
}

/// The listing's directory lines without their dirtree checksum (it covers the files), or its
/// file lines.
fn lines(listing: &str, part: Part) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| {
            let is_dir = l.starts_with('d');
            match part {
                Part::Dirs if is_dir => {
                    let mut f: Vec<&str> = l.split_whitespace().collect();
                    if f.len() > 4 {
                        f.remove(4);
                    }
                    Some(f.join(" "))
                }
                Part::Files if !is_dir => Some(l.to_string()),
                _ => None,
            }
        })
        .collect()
}

enum Kind {
    Dir,
    File(&'static [u8]),
    Symlink(&'static str),
    Hardlink(&'static str),
}

/// The layer's entries (OCI paths: `etc/…` is remapped to `usr/etc/…` by the importer).
fn entries() -> Vec<(&'static str, Kind, u32)> {
    use Kind::*;
    vec![
        ("etc/", Dir, 0o755),
        ("etc/passwd", File(b"root:x:0:0::/root:/bin/sh\n"), 0o644),
        ("etc/shadow", File(b"root:*:1::::::\n"), 0o640),
        ("etc/ssh/", Dir, 0o755),
        ("etc/ssh/sshd_config", File(b"PermitRootLogin no\n"), 0o600),
        ("etc/systemd/system/app.service", File(b"[Unit]\n"), 0o644),
        (
            "etc/selinux/config",
            File(b"# a file under the policy dir\n"),
            0o644,
        ),
        ("usr/bin/tool", File(b"#!/bin/sh\necho tool\n"), 0o755),
        ("usr/bin/tool2", Hardlink("usr/bin/tool"), 0o755),
        ("usr/bin/.wh.removed", File(b""), 0o644),
        ("usr/sbin/daemon", File(b"daemon"), 0o4755),
        ("usr/lib/libfoo.so.1", File(b"\x7fELF"), 0o644),
        ("usr/lib/libfoo.so", Symlink("libfoo.so.1"), 0o777),
        ("usr/lib64/ld-linux-x86-64.so.2", File(b"ld"), 0o755),
        (
            "usr/lib/systemd/system/app2.service",
            File(b"[Service]\n"),
            0o644,
        ),
        ("usr/libexec/helper", File(b"helper"), 0o755),
        ("usr/local/bin/local-tool", File(b"local"), 0o755),
        ("usr/share/doc/app/README", File(b"readme"), 0o644),
        ("usr/share/empty/", Dir, 0o700),
        ("var/log/app.log", File(b"log"), 0o640),
        ("var/lib/app/", Dir, 0o700),
        ("var/run", Symlink("../run"), 0o777),
        ("var/tmp/", Dir, 0o1777),
    ]
}

/// The layer as a tar; with `ostree_paths`, `etc/` renamed `usr/etc/` (what the reference
/// feeds `ostree commit` after its path rules).
fn layer_tar(ostree_paths: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, mode) in entries() {
        let path = if ostree_paths && path.starts_with("etc/") {
            format!("usr/{path}")
        } else {
            path.to_string()
        };
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(mode);
        h.set_mtime(0);
        match kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, &path, std::io::empty()).unwrap();
            }
            Kind::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &path, data).unwrap();
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &path, t).unwrap();
            }
            Kind::Hardlink(t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &path, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Imports the layer with `policy` into `repo` under `ours`; returns the commit.
fn import(repo: &ostree_repo::Repo, policy: Arc<SePolicy>) -> Checksum {
    let txn = repo.begin_transaction().unwrap();
    let mut opts = ostree_tar::OciLayerOptions::default();
    opts.labeler = Some(policy);
    let out =
        ostree_tar::import_oci_layer(&txn, &layer_tar(false)[..], "test", &opts, None).unwrap();
    txn.set_ref("ours", Some(out.commit)).unwrap();
    txn.commit().unwrap();
    out.commit
}

/// `ostree ls -RXC` of a ref, by `cli`.
fn listing(cli: &test_support::ostree_cli::OstreeCli, repo: &std::path::Path, rev: &str) -> String {
    cli.ls_rxc(repo, rev).unwrap()
}

#[test]
fn derived_layer_labels_equal_ostree_commit_selinux_policy() {
    let dir = test_support::scratch("oc-selinux-layer-");
    let policy_dir = policy_tree(dir.path());
    let policy = Arc::new(SePolicy::open_root(&policy_dir).unwrap().expect("a policy"));
    assert_eq!(policy.name(), "default");
    let oracle_tar = dir.path().join("layer.tar");
    std::fs::write(&oracle_tar, layer_tar(true)).unwrap();
    for (oname, cli) in oracles() {
        for mode in ["bare-user", "bare-user-only", "archive"] {
            let rdir = dir.path().join(oname.replace(' ', "-"));
            std::fs::create_dir_all(&rdir).unwrap();
            let repo = super::init_repo(&rdir, mode);
            import(&repo, Arc::clone(&policy));
            // Before the oracle writes (its bare-user-only objects fail fsck).
            cli.fsck(repo.path())
                .unwrap()
                .check()
                .unwrap_or_else(|e| panic!("{oname}, {mode}: {e}"));
            let commit = |branch: &str, labelled: bool| {
                let mut args = vec![
                    "commit".to_string(),
                    format!("--repo={}", repo.path().display()),
                    format!("--branch={branch}"),
                    format!("--tree=tar={}", oracle_tar.display()),
                    "--tar-autocreate-parents".into(),
                    "--no-bindings".into(),
                ];
                if labelled {
                    args.push(format!("--selinux-policy={}", policy_dir.display()));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = cli.command(&args).output().unwrap();
                assert!(
                    out.status.success(),
                    "{oname} commit: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            commit("theirs", true);
            let ours = listing(&cli, repo.path(), "ours");
            let theirs = listing(&cli, repo.path(), "theirs");
            assert!(
                ours.contains("security.selinux"),
                "{oname} {mode}: nothing labelled:\n{ours}"
            );
            if mode == "bare-user-only" {
                // libostree checksums bare-user-only files *with* the label it does not store
                // (its own fsck then calls them corrupted); we label directories only, as it
                // stores them: dirmeta equal to the labelled commit's, files equal to the
                // unlabelled commit's.
                commit("theirs-unlabelled", false);
                let plain = listing(&cli, repo.path(), "theirs-unlabelled");
                assert_eq!(
                    lines(&ours, Part::Dirs),
                    lines(&theirs, Part::Dirs),
                    "{oname}, {mode}: directory labels differ"
                );
                assert_eq!(
                    lines(&ours, Part::Files),
                    lines(&plain, Part::Files),
                    "{oname}, {mode}: files differ"
                );
            } else {
                assert_eq!(ours, theirs, "{oname}, {mode}: labels differ");
            }
        }
    }
}

#[test]
fn policy_from_a_commit_equals_policy_from_its_checkout() {
    let dir = test_support::scratch("oc-selinux-commit-");
    let policy_dir = policy_tree(dir.path());
    let repo = init_repo(dir.path(), "bare-user");
    let cli = test_support::ostree_cli::OstreeCli::new().unwrap();
    let base = cli
        .commit(repo.path(), "base", &policy_dir, &Default::default())
        .unwrap();
    let base: Checksum = base.parse().unwrap();
    let from_commit = SePolicy::from_commit(&repo, &base)
        .unwrap()
        .expect("a policy");
    let from_dir = SePolicy::open_root(&policy_dir).unwrap().expect("a policy");
    assert_eq!(from_commit.csum(), from_dir.csum());
    assert!(from_commit.id().is_some());
    for (path, mode) in [
        ("/", 0o040755),
        ("/usr/bin/x", 0o100755),
        ("/usr/etc/shadow", 0o100640),
        ("/usr/lib64/libc.so", 0o120777),
        ("/var/log", 0o040755),
        ("/proc", 0o040555),
        ("/nonexistent/zzz", 0o100644),
    ] {
        assert_eq!(
            from_commit.lookup(path, mode).unwrap(),
            from_dir.lookup(path, mode).unwrap(),
            "{path}"
        );
    }
    // No policy: a tree without usr/etc/selinux, or with SELinux disabled.
    let empty = dir.path().join("empty/usr/bin");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(
        SePolicy::open_root(&dir.path().join("empty"))
            .unwrap()
            .is_none()
    );
    let disabled = dir.path().join("disabled");
    test_support::selinux::install_policy(&disabled);
    std::fs::write(
        disabled.join("usr/etc/selinux/config"),
        "SELINUX=disabled\nSELINUXTYPE=default\n",
    )
    .unwrap();
    assert!(SePolicy::open_root(&disabled).unwrap().is_none());
}
