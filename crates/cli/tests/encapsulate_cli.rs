//! `ostree-container encapsulate` (alias `export`) end to end: commit with the real `ostree`,
//! encapsulate with the CLI, inspect with skopeo, import back with `unencapsulate`.

use test_support::cli::{Cli, path_str, run_ok};
use test_support::ostree_cli::{CommitOpts, OstreeCli};
use test_support::skopeo::skopeo_inspect;
use test_support::tree;

const OC: Cli = Cli::new(env!("CARGO_BIN_EXE_ostree-container"));

#[test]
fn encapsulate_cli_journey() {
    let d = test_support::scratch("oc-cli-encap-");
    let src = d.path().join("tree");
    tree::generate_tree(&src, &tree::TreeOptions::default()).unwrap();
    let repo = d.path().join("repo");
    let cli = OstreeCli::new().unwrap();
    cli.init(&repo, "bare-user").unwrap();
    let commit = cli
        .commit(
            &repo,
            "main",
            &src,
            &CommitOpts {
                subject: Some("cli test".into()),
                timestamp: Some("2021-06-01T12:00:00Z".into()),
                metadata_strings: vec![("version".into(), "7".into()), ("k".into(), "v".into())],
                ..Default::default()
            },
        )
        .unwrap();

    let help = run_ok(OC.cmd().args(["encapsulate", "--help"]));
    assert!(help.contains("--max-layers") && help.contains("--compression"));

    let img = d.path().join("img");
    let digest = run_ok(OC.cmd().args([
        "encapsulate",
        "--repo",
        path_str(&repo),
        "main",
        &format!("oci:{}:t", path_str(&img)),
        "--label",
        "a=b",
        "--copymeta",
        "k",
        "--cmd",
        "/bin/sh",
        "--max-layers",
        "4",
        "--compression",
        "zstd",
        "--compression-level",
        "5",
        "--quiet",
    ]));
    let digest = digest.trim();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // The alias, the `container` prefix, and a different core count give the same digest.
    let again = run_ok(
        OC.cmd()
            .env("RAYON_NUM_THREADS", "1")
            .args(["container", "export", "--repo", path_str(&repo), &commit])
            .arg(format!("oci:{}:t2", path_str(&img)))
            .args(["-l", "a=b", "--copymeta", "k", "--cmd", "/bin/sh"])
            .args(["--max-layers", "4", "--compression", "zstd"])
            .args(["--compression-level", "5", "-q"]),
    );
    assert_eq!(again.trim(), digest);

    let v = skopeo_inspect(&format!("oci:{}:t", path_str(&img))).unwrap();
    assert_eq!(v["Digest"], digest);
    assert_eq!(v["Created"], "2021-06-01T12:00:00Z");
    assert_eq!(v["Labels"]["ostree.commit"], commit.as_str());
    assert_eq!(v["Labels"]["org.opencontainers.image.version"], "7");
    assert_eq!(v["Labels"]["k"], "v");
    assert_eq!(v["Labels"]["a"], "b");
    assert!(v["Layers"].as_array().unwrap().len() <= 4);

    // Import it back.
    let repo2 = d.path().join("repo2");
    cli.init(&repo2, "archive").unwrap();
    let imported = run_ok(OC.cmd().args([
        "unencapsulate",
        "--repo",
        path_str(&repo2),
        "--auth-anonymous",
        "--quiet",
        &format!("ostree-unverified-image:oci:{}:t", path_str(&img)),
    ]));
    assert!(imported.contains(&commit), "{imported}");
    cli.fsck(&repo2).unwrap().check().unwrap();

    // Bad input: a failing exit status and an error naming the problem.
    for (args, needle) in [
        (vec!["no-such-ref"], "unknown revision"),
        (vec!["main", "--copymeta", "absent"], "absent"),
        (vec!["main", "--compression-level", "12"], "out of range"),
        (vec!["main", "--label", "novalue"], "KEY=VALUE"),
    ] {
        let dest = format!("oci:{}", path_str(&d.path().join("bad")));
        let out = OC
            .cmd()
            .args(["encapsulate", "--repo", path_str(&repo)])
            .args(&args[..1])
            .arg(&dest)
            .args(&args[1..])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!d.path().join("bad").exists(), "{args:?}");
    }
}
