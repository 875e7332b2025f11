//! Refs: set, list, resolve (full, partial, remote:ref, parent), delete; interop with the CLI.

use ostree_repo::{ErrorKind, Repo, RepoMode, TreeOptions};
use test_support::tree;

use crate::*;

#[test]
fn refs_round_trip_with_cli() {
    let d = scratch();
    let src = d.path().join("tree");
    tree::reference_tree(&src).unwrap();
    let repo = Repo::create(&d.path().join("r"), RepoMode::BareUser).unwrap();
    let c1 = native_commit(&repo, &src, "test", &TreeOptions::new());
    let cli = ostree();

    repo.set_ref_now("a/b/c", Some(&c1)).unwrap();
    repo.set_ref_now("origin:x/y", Some(&c1)).unwrap();
    let escaped = format!(
        "ostree/container/image/{}",
        ostree_repo::format::refs::escape_for_ref("docker://quay.io/a/b:1").unwrap()
    );
    repo.set_ref_now(&escaped, Some(&c1)).unwrap();
    let mut cli_refs = cli.refs(repo.path()).unwrap();
    cli_refs.sort();
    let ours: Vec<String> = repo.list_refs().unwrap().into_keys().collect();
    assert_eq!(ours, cli_refs);
    assert!(ours.contains(&"origin:x/y".to_string()));
    assert_eq!(cli.rev_parse(repo.path(), &escaped).unwrap(), c1.to_hex());

    assert_eq!(repo.resolve_rev(&c1.to_hex()[..10]).unwrap(), c1);
    assert_eq!(repo.resolve_rev("origin:x/y").unwrap(), c1);
    assert_eq!(repo.resolve_rev("origin/x/y").unwrap(), c1);
    assert_eq!(repo.resolve_rev(&c1.to_hex()).unwrap(), c1);
    assert_eq!(
        repo.resolve_rev("nope").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        repo.resolve_rev("test^").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // A second commit on the CLI with our first as parent: `^` walks to it.
    let mut opts = cli_commit_opts();
    opts.subject = Some("second".into());
    let c2 = cli.commit(repo.path(), "test", &src, &opts).unwrap();
    assert_eq!(repo.resolve_rev("test").unwrap().to_hex(), c2);
    assert_eq!(repo.resolve_rev("test^").unwrap(), c1);

    repo.set_ref_now("a/b/c", None).unwrap();
    assert!(repo.read_ref("a/b/c").unwrap().is_none());
    assert!(
        !cli.refs(repo.path())
            .unwrap()
            .contains(&"a/b/c".to_string())
    );
    // Invalid names are refused with a usage-class error.
    for bad in ["", "-x", "a//b", "a b"] {
        assert!(repo.set_ref_now(bad, Some(&c1)).is_err(), "{bad}");
    }
}
