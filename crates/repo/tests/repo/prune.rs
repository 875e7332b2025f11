//! `Repo::prune` against `ostree prune` (2022.7): the same objects deleted on identical copies,
//! nothing left for `ostree prune` afterwards, `ostree fsck` clean; dry runs; partial commits;
//! the exclusive lock against concurrent writers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ostree_repo::format::ObjectType;
use ostree_repo::{ErrorKind, NoProgress, Progress, PruneOptions, PruneReport, Repo};
use test_support::ostree_cli::{CommitOpts, list_object_files};
use test_support::tree;

use crate::*;

/// `ostree prune` output: (total, deleted).
fn parse_prune_output(out: &str) -> (u64, u64) {
    let total = out
        .lines()
        .find_map(|l| l.strip_prefix("Total objects: "))
        .unwrap_or_else(|| panic!("no total in {out:?}"))
        .parse()
        .unwrap();
    let deleted = if out.contains("No unreachable objects") {
        0
    } else {
        let l = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("Deleted ")
                    .or_else(|| l.strip_prefix("Would delete: "))
            })
            .unwrap_or_else(|| panic!("no count in {out:?}"));
        l.split(' ').next().unwrap().parse().unwrap()
    };
    (total, deleted)
}

fn ostree_prune(repo: &Path, args: &[&str]) -> String {
    let out = ostree()
        .command(&["prune", &format!("--repo={}", repo.display())])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ostree prune {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cp_a(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Object files plus `state/` entries.
fn repo_files(repo: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let state = std::fs::read_dir(repo.join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (list_object_files(repo).unwrap(), state)
}

fn opts(refs_only: bool, dry_run: bool, depth: Option<u32>) -> PruneOptions {
    let mut o = PruneOptions::new();
    o.refs_only = refs_only;
    o.dry_run = dry_run;
    o.depth = depth;
    o
}

fn fsck_clean(repo: &Path) {
    ostree().fsck(repo).unwrap().check().unwrap();
}

fn commit_opts(n: u64, detached: bool) -> CommitOpts {
    CommitOpts {
        subject: Some(format!("c{n}")),
        timestamp: Some(format!("@{}", 1_600_000_000 + n)),
        detached_metadata_strings: if detached {
            vec![("sig".into(), format!("s{n}"))]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// A repository (made by `ostree`) with two branches with history, a remote ref and a mirror
/// ref on older commits, an orphan commit, detached metadata on kept and on dropped commits;
/// then branch `b` is deleted. Returns the repository path.
fn history_repo(d: &Path, mode: &str) -> PathBuf {
    let cli = ostree();
    let repo = d.join(format!("repo-{mode}"));
    cli.init(&repo, mode).unwrap();
    let t = d.join(format!("tree-{mode}"));
    tree::generate_bench_tree(&t, 120, 300 << 10, 7).unwrap();
    std::fs::write(t.join("version"), "1").unwrap();
    cli.commit(&repo, "a", &t, &commit_opts(1, true)).unwrap();
    std::fs::write(t.join("version"), "2").unwrap();
    std::fs::write(t.join("only-a2"), "a2").unwrap();
    cli.commit(&repo, "a", &t, &commit_opts(2, false)).unwrap();
    std::fs::remove_dir_all(t.join("usr/lib/a00/b0/c1")).unwrap();
    std::fs::write(t.join("version"), "3").unwrap();
    cli.commit(&repo, "a", &t, &commit_opts(3, true)).unwrap();

    let t2 = d.join(format!("tree2-{mode}"));
    tree::generate_bench_tree(&t2, 80, 200 << 10, 8).unwrap();
    let b1 = cli.commit(&repo, "b", &t2, &commit_opts(4, true)).unwrap();
    std::fs::write(t2.join("b2"), "b2").unwrap();
    cli.commit(&repo, "b", &t2, &commit_opts(5, true)).unwrap();
    std::fs::write(t2.join("b3"), "b3").unwrap();
    let b3 = cli.commit(&repo, "b", &t2, &commit_opts(6, false)).unwrap();
    // Remote and mirror refs keep older parts of b's history.
    let remote = repo.join("refs/remotes/origin");
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::write(remote.join("b-old"), format!("{b1}\n")).unwrap();
    let mirror = repo.join("refs/mirrors/org.example.Os");
    std::fs::create_dir_all(&mirror).unwrap();
    let b2 = cli.rev_parse(&repo, &format!("{b3}^")).unwrap();
    std::fs::write(mirror.join("b-mid"), format!("{b2}\n")).unwrap();

    let t3 = d.join(format!("tree3-{mode}"));
    tree::generate_bench_tree(&t3, 10, 20 << 10, 9).unwrap();
    let mut orphan = commit_opts(7, true);
    orphan.orphan = true;
    cli.commit(&repo, "", &t3, &orphan).unwrap();

    let out = cli
        .command(&[
            "refs",
            &format!("--repo={}", repo.display()),
            "--delete",
            "b",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    repo
}

/// Our prune and `ostree prune` with `args` on identical copies of `repo` leave identical
/// object sets and `state/`; the counts agree; ostree then finds nothing more, fsck is clean.
fn assert_matches_ostree(
    d: &Path,
    repo: &Path,
    o: &PruneOptions,
    args: &[&str],
) -> (PruneReport, PathBuf) {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("{}{args:?}", repo.file_name().unwrap().to_string_lossy())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let tag = format!("{tag}-{run}");
    let ours = d.join(format!("ours-{tag}"));
    let theirs = d.join(format!("theirs-{tag}"));
    cp_a(repo, &ours);
    cp_a(repo, &theirs);
    let before = repo_files(&ours);
    let report = Repo::open(&ours)
        .unwrap()
        .prune(o, &NoProgress, &NO_INTERRUPT)
        .unwrap();
    let out = ostree_prune(&theirs, args);
    let (total, deleted) = parse_prune_output(&out);
    assert_eq!(
        (report.objects_total, report.objects_deleted),
        (total, deleted),
        "{tag}: ours {report:?}, ostree: {out}"
    );
    let after = repo_files(&ours);
    assert_eq!(after, repo_files(&theirs), "{tag}: remaining files differ");
    assert_eq!(
        before.0.len() - after.0.len(),
        deleted as usize
            + before
                .0
                .difference(&after.0)
                .filter(|n| n.ends_with(".commitmeta"))
                .count(),
        "{tag}"
    );
    let again = ostree_prune(&ours, args);
    assert_eq!(parse_prune_output(&again).1, 0, "{tag}: {again}");
    assert!(again.contains("No unreachable objects"), "{again}");
    fsck_clean(&ours);
    (report, ours)
}

#[test]
fn prune_refs_only_deletes_what_ostree_deletes_in_every_mode() {
    let d = scratch();
    for (mode, name) in MODES {
        let repo = history_repo(d.path(), name);
        let before = list_object_files(&repo).unwrap();
        let (report, ours_path) = assert_matches_ostree(
            d.path(),
            &repo,
            &PruneOptions::refs_only(),
            &["--refs-only"],
        );
        assert!(report.objects_deleted > 0, "{name}: {report:?}");
        assert!(report.bytes_freed > 0, "{name}");

        // Detached metadata of dropped commits went with them; kept commits keep theirs.
        let ours = Repo::open(&ours_path).unwrap();
        assert_eq!(ours.mode(), mode);
        let commits = ours.list_objects(ObjectType::Commit).unwrap();
        assert_eq!(commits.len(), 3 + 2, "{name}: a1..a3, b1, b2 stay");
        let metas = ours.list_objects(ObjectType::CommitMeta).unwrap();
        assert!(metas.iter().all(|m| commits.contains(m)), "{name}");
        assert_eq!(
            metas.len(),
            4,
            "{name}: a1, a3, b1, b2 keep their detached metadata"
        );
        let before_metas = before.iter().filter(|n| n.ends_with(".commitmeta")).count();
        assert_eq!(before_metas, 5, "{name}");

        // Dry run: same counts, nothing deleted.
        let dry = Repo::open(&repo)
            .unwrap()
            .prune(&opts(true, true, None), &NoProgress, &NO_INTERRUPT)
            .unwrap();
        assert_eq!(dry, report, "{name}");
        assert_eq!(
            list_object_files(&repo).unwrap(),
            before,
            "{name}: dry run deleted"
        );
        let theirs_dry = ostree_prune(&repo, &["--refs-only", "--no-prune"]);
        assert_eq!(
            parse_prune_output(&theirs_dry),
            (dry.objects_total, dry.objects_deleted),
            "{theirs_dry}"
        );
    }
}

#[test]
fn prune_depth_and_all_commits_modes_match_ostree() {
    let d = scratch();
    let repo = history_repo(d.path(), "archive");
    // Every commit a root: only the objects of no commit go (here: none, then stray ones).
    let (r, _) = assert_matches_ostree(d.path(), &repo, &opts(false, false, None), &[]);
    assert_eq!(r.objects_deleted, 0);
    for depth in [0u32, 1] {
        let (r, _) = assert_matches_ostree(
            d.path(),
            &repo,
            &opts(true, false, Some(depth)),
            &["--refs-only", &format!("--depth={depth}")],
        );
        assert!(r.objects_deleted > 0);
    }
    // Stray objects (a transaction's content without a commit) go in every mode.
    let native = Repo::open(&repo).unwrap();
    let txn = native.begin_transaction().unwrap();
    let stray = d.path().join("stray");
    tree::generate_bench_tree(&stray, 5, 5 << 10, 99).unwrap();
    txn.write_directory(
        &stray,
        &ostree_repo::TreeOptions::new(),
        &NoProgress,
        &NO_INTERRUPT,
    )
    .unwrap();
    let n_before = list_object_files(&repo).unwrap().len();
    txn.commit().unwrap();
    assert!(
        list_object_files(&repo).unwrap().len() > n_before,
        "the transaction published nothing"
    );
    let (r, _) = assert_matches_ostree(d.path(), &repo, &opts(false, false, None), &[]);
    assert!(r.objects_deleted >= 5, "{r:?}");
}

#[test]
fn prune_partial_commits_as_libostree() {
    let d = scratch();
    let cli = ostree();
    for name in ["bare-user", "archive"] {
        let repo = d.path().join(format!("r-{name}"));
        cli.init(&repo, name).unwrap();
        let t = d.path().join(format!("t-{name}"));
        tree::generate_bench_tree(&t, 60, 100 << 10, 3).unwrap();
        cli.commit(&repo, "keep", &t, &commit_opts(1, false))
            .unwrap();
        // An unreferenced partial commit is deleted, and its marker with it.
        std::fs::write(t.join("extra"), "x").unwrap();
        let dropped = cli
            .commit(&repo, "gone", &t, &commit_opts(2, true))
            .unwrap();
        std::fs::write(repo.join(format!("state/{dropped}.commitpartial")), "").unwrap();
        // A referenced partial commit that lacks a subdirectory's dirtree: the subtree is
        // skipped (its present objects are unreachable), the commit and marker stay.
        std::fs::write(t.join("usr/lib/a00/b0/c1/new"), "new").unwrap();
        let partial = cli
            .commit(&repo, "partial", &t, &commit_opts(3, false))
            .unwrap();
        let native = Repo::open(&repo).unwrap();
        let pc = native.load_commit(&partial.parse().unwrap()).unwrap();
        let mut sub_tree = pc.root_tree;
        for comp in ["usr", "lib", "a00", "b0", "c1"] {
            let dt = native.load_dirtree(&sub_tree).unwrap();
            sub_tree = dt.dirs.iter().find(|d| d.name == comp).unwrap().tree;
        }
        std::fs::write(repo.join(format!("state/{partial}.commitpartial")), "").unwrap();
        std::fs::remove_file(native.object_path(&ostree_repo::format::ObjectName::new(
            sub_tree,
            ObjectType::DirTree,
        )))
        .unwrap();
        let refs_rm = cli
            .command(&[
                "refs",
                &format!("--repo={}", repo.display()),
                "--delete",
                "gone",
            ])
            .output()
            .unwrap();
        assert!(refs_rm.status.success());

        let (r, ours_path) = assert_matches_ostree(
            d.path(),
            &repo,
            &PruneOptions::refs_only(),
            &["--refs-only"],
        );
        assert!(r.objects_deleted > 0);

        let state = repo_files(&ours_path).1;
        assert_eq!(
            state,
            BTreeSet::from([format!("{partial}.commitpartial")]),
            "{name}"
        );

        // A missing dirtree of a complete (non-partial) commit: both refuse, nothing deleted.
        std::fs::remove_file(repo.join(format!("state/{partial}.commitpartial"))).unwrap();
        let before = list_object_files(&repo).unwrap();
        let err = Repo::open(&repo)
            .unwrap()
            .prune(&PruneOptions::refs_only(), &NoProgress, &NO_INTERRUPT)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(
            ostree_errors::chain(&err).contains(&sub_tree.to_string()),
            "{err}"
        );
        assert_eq!(list_object_files(&repo).unwrap(), before);
        let theirs = cli
            .command(&[
                "prune",
                &format!("--repo={}", repo.display()),
                "--refs-only",
            ])
            .output()
            .unwrap();
        assert!(!theirs.status.success());
        assert!(
            String::from_utf8_lossy(&theirs.stderr).contains("No such metadata object"),
            "{theirs:?}"
        );
    }
}

/// Records when each phase starts, and runs a hook at the start of one phase.
struct Hooked<'a> {
    phase: &'static str,
    hook: Mutex<Option<Box<dyn FnOnce() + Send + 'a>>>,
    first_start: Mutex<Option<Instant>>,
}

impl<'a> Hooked<'a> {
    fn new(phase: &'static str, hook: Box<dyn FnOnce() + Send + 'a>) -> Self {
        Hooked {
            phase,
            hook: Mutex::new(Some(hook)),
            first_start: Mutex::new(None),
        }
    }
}

impl Progress for Hooked<'_> {
    fn start(&self, phase: &str, _total: Option<u64>) {
        self.first_start
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        if phase == self.phase
            && let Some(h) = self.hook.lock().unwrap().take()
        {
            h();
        }
    }
}

/// A transaction held open in another thread (objects written, some of them only present
/// through an unreachable commit) makes prune wait; what it publishes survives.
#[test]
fn prune_waits_for_an_open_transaction_and_keeps_what_it_published() {
    let d = scratch();
    let cli = ostree();
    let repo_path = d.path().join("r");
    cli.init(&repo_path, "bare-user").unwrap();
    let t = d.path().join("t");
    tree::generate_bench_tree(&t, 80, 200 << 10, 5).unwrap();
    cli.commit(&repo_path, "old", &t, &commit_opts(1, false))
        .unwrap();
    let keep = d.path().join("keep");
    tree::reference_tree(&keep).unwrap();
    cli.commit(&repo_path, "keep", &keep, &commit_opts(2, false))
        .unwrap();
    cli.command(&[
        "refs",
        &format!("--repo={}", repo_path.display()),
        "--delete",
        "old",
    ])
    .output()
    .unwrap();
    // The transaction commits the dropped branch's tree plus one file: it relies on objects
    // that only the unreachable commit holds.
    std::fs::write(t.join("added"), "added").unwrap();
    let repo = Repo::open(&repo_path).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let new_commit = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let txn = repo.begin_transaction().unwrap();
            let (tree_c, meta_c) = txn
                .write_directory(
                    &t,
                    &ostree_repo::TreeOptions::new(),
                    &NoProgress,
                    &NO_INTERRUPT,
                )
                .unwrap();
            let mut spec = ostree_repo::CommitSpec::new();
            spec.timestamp = Some(0);
            let c = txn.write_commit(tree_c, meta_c, &spec).unwrap();
            txn.set_ref("new", Some(c)).unwrap();
            ready_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            let before_commit = Instant::now();
            txn.commit().unwrap();
            (c, before_commit)
        });
        ready_rx.recv().unwrap();
        let progress = Hooked::new("never", Box::new(|| {}));
        let report = repo
            .prune(&PruneOptions::refs_only(), &progress, &NO_INTERRUPT)
            .unwrap();
        let (c, before_commit) = writer.join().unwrap();
        let locked_at = progress.first_start.lock().unwrap().unwrap();
        assert!(
            locked_at >= before_commit,
            "prune ran while the transaction was open"
        );
        // Only the old commit itself (and its now-unused root dirtree/dirmeta) can go.
        assert!(report.objects_deleted >= 1, "{report:?}");
        c
    });
    assert_eq!(repo.resolve_rev("new").unwrap(), new_commit);
    assert!(repo.find_missing(&new_commit).unwrap().is_empty());
    fsck_clean(&repo_path);
    let again = ostree_prune(&repo_path, &["--refs-only"]);
    assert!(again.contains("No unreachable objects"), "{again}");
}

/// While prune holds the exclusive lock, our transactions and `ostree commit` wait.
#[test]
fn writers_wait_while_prune_runs() {
    let d = scratch();
    let cli = ostree();
    let repo_path = d.path().join("r");
    cli.init(&repo_path, "archive").unwrap();
    let t = d.path().join("t");
    tree::generate_bench_tree(&t, 40, 100 << 10, 6).unwrap();
    cli.commit(&repo_path, "gone", &t, &commit_opts(1, false))
        .unwrap();
    cli.command(&[
        "refs",
        &format!("--repo={}", repo_path.display()),
        "--delete",
        "gone",
    ])
    .output()
    .unwrap();
    let other = d.path().join("other");
    tree::reference_tree(&other).unwrap();
    let repo = Repo::open(&repo_path).unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (txn_tx, txn_rx) = mpsc::channel::<()>();
    let slot = Mutex::new(None);
    std::thread::scope(|s| {
        let repo = &repo;
        s.spawn(move || {
            go_rx.recv().unwrap();
            let txn = repo.begin_transaction().unwrap();
            txn_tx.send(()).unwrap();
            txn.abort();
        });
        let (slot, cli, repo_path, other) = (&slot, &cli, &repo_path, &other);
        let hook = Box::new(move || {
            go_tx.send(()).unwrap();
            let mut c = cli
                .command(&[
                    "commit",
                    &format!("--repo={}", repo_path.display()),
                    "-b",
                    "during",
                    &format!("--tree=dir={}", other.display()),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            assert!(
                c.try_wait().unwrap().is_none(),
                "ostree commit finished while prune held the lock"
            );
            assert!(
                txn_rx.try_recv().is_err(),
                "a transaction began while prune held the lock"
            );
            *slot.lock().unwrap() = Some((c, txn_rx));
        });
        let progress = Hooked::new("deleting objects", hook);
        let report = repo
            .prune(&PruneOptions::refs_only(), &progress, &NO_INTERRUPT)
            .unwrap();
        assert!(report.objects_deleted > 40, "{report:?}");
    });
    let (c, txn_rx) = slot.lock().unwrap().take().unwrap();
    txn_rx.recv().unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(repo.read_ref("during").unwrap().is_some());
    fsck_clean(&repo_path);
}

fn tree_listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            out.insert(
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// After the objects, libostree drops static deltas whose target commit is gone and summary
/// caches of unknown remotes; so do we (and a dry run touches neither).
#[test]
fn prune_drops_static_deltas_and_summary_caches_as_libostree() {
    let d = scratch();
    let cli = ostree();
    let repo = d.path().join("r");
    cli.init(&repo, "archive").unwrap();
    let t = d.path().join("t");
    tree::generate_bench_tree(&t, 30, 60 << 10, 4).unwrap();
    let a1 = cli.commit(&repo, "a", &t, &commit_opts(1, false)).unwrap();
    std::fs::write(t.join("a2"), "a2").unwrap();
    let a2 = cli.commit(&repo, "a", &t, &commit_opts(2, false)).unwrap();
    std::fs::write(t.join("b1"), "b1").unwrap();
    let b1 = cli.commit(&repo, "b", &t, &commit_opts(3, false)).unwrap();
    let r = format!("--repo={}", repo.display());
    for args in [
        vec!["static-delta", "generate", &r, "--from", &a1, "--to", &a2],
        vec!["static-delta", "generate", &r, "--empty", "--to", &b1],
        vec!["static-delta", "generate", &r, "--from", &a2, "--to", &b1],
        vec!["refs", &r, "--delete", "b"],
        vec![
            "remote",
            "add",
            &r,
            "--no-gpg-verify",
            "origin",
            "http://localhost/",
        ],
    ] {
        let out = cli.command(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let cache = repo.join("tmp/cache/summaries");
    std::fs::create_dir_all(&cache).unwrap();
    for f in ["origin", "origin.sig", "stale", "stale.sig"] {
        std::fs::write(cache.join(f), f).unwrap();
    }
    let deltas_before = tree_listing(&repo.join("deltas"));
    assert!(deltas_before.len() > 6, "{deltas_before:?}");
    // A dry run deletes nothing at all.
    Repo::open(&repo)
        .unwrap()
        .prune(&opts(true, true, None), &NoProgress, &NO_INTERRUPT)
        .unwrap();
    assert_eq!(tree_listing(&repo.join("deltas")), deltas_before);
    assert_eq!(tree_listing(&cache).len(), 4);

    let (_, ours) = assert_matches_ostree(
        d.path(),
        &repo,
        &PruneOptions::refs_only(),
        &["--refs-only"],
    );
    let theirs = PathBuf::from(ours.to_string_lossy().replacen("ours-", "theirs-", 1));
    let deltas = tree_listing(&ours.join("deltas"));
    assert_eq!(deltas, tree_listing(&theirs.join("deltas")));
    assert!(deltas.len() < deltas_before.len(), "{deltas:?}");
    let caches = tree_listing(&ours.join("tmp/cache/summaries"));
    assert_eq!(caches, tree_listing(&theirs.join("tmp/cache/summaries")));
    assert_eq!(
        caches,
        BTreeSet::from(["origin".to_string(), "origin.sig".to_string()])
    );
}

/// `prune_locked` runs under a caller's exclusive lock and refuses a shared one.
#[test]
fn prune_locked_needs_the_exclusive_lock() {
    let d = scratch();
    let repo = history_repo(d.path(), "bare-user");
    let native = Repo::open(&repo).unwrap();
    {
        let shared = native.lock(false).unwrap();
        let err = native
            .prune_locked(
                &shared,
                &PruneOptions::refs_only(),
                &NoProgress,
                &NO_INTERRUPT,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    }
    let theirs = d.path().join("theirs");
    cp_a(&repo, &theirs);
    let exclusive = native.lock(true).unwrap();
    let r = native
        .prune_locked(
            &exclusive,
            &PruneOptions::refs_only(),
            &NoProgress,
            &NO_INTERRUPT,
        )
        .unwrap();
    drop(exclusive);
    ostree_prune(&theirs, &["--refs-only"]);
    assert!(r.objects_deleted > 0);
    assert_eq!(repo_files(&repo), repo_files(&theirs));
    fsck_clean(&repo);
}
