//! Figures for bench/selinux.sh: labelling a generated 30,000-file tree with Debian's policy.
//! Both lookup backends in the same run (libselinux first, as the baseline), with ratios.
//! Usage: relabel_bench SCRATCH_DIR [FILES]

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use ostree_repo::{CommitSpec, MutableTree, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_selinux::{LookupBackend, SePolicy, policy_id, relabel_tree};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("SCRATCH_DIR"));
    let files: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(30_000);
    let src = dir.join("tree");
    test_support::selinux::install_policy(&src);
    let tops = [
        "usr/bin",
        "usr/lib/x",
        "usr/share/doc",
        "usr/etc/app",
        "var/lib/app",
        "usr/libexec/y",
    ];
    let per_dir = 100;
    for i in 0..files {
        let d = src
            .join(tops[i % tops.len()])
            .join(format!("d{}", i / per_dir));
        if i % per_dir == 0 || !d.exists() {
            std::fs::create_dir_all(&d)?;
        }
        std::fs::write(d.join(format!("f{i}")), format!("file {i}\n"))?;
    }
    let repo = Repo::create(&dir.join("repo"), RepoMode::BareUser)?;
    let no = AtomicBool::new(false);
    let commit = repo.commit_directory(
        &src,
        Some("t"),
        &TreeOptions::new(),
        &CommitSpec::new(),
        &NoProgress,
        &no,
    )?;
    let mut base = None;
    for backend in [LookupBackend::Libselinux, LookupBackend::Native] {
        let f = figures(&repo, &commit, backend, &tops, per_dir, files)?;
        println!("== backend {backend:?}");
        println!("files {files}, labelled lookups {}", f.labelled);
        println!("policy load (extract + open): {:.3} s", f.load);
        println!(
            "{files} lookups: {:.3} s ({:.2} us each, {:.0} lookups/s)",
            f.lookups,
            f.lookups * 1e6 / files as f64,
            files as f64 / f.lookups
        );
        println!(
            "full relabel of an unlabelled tree (writes every object): {:.3} s  {}",
            f.full, f.s1
        );
        println!(
            "relabel of the labelled tree (reads every object, writes none, changed={}): {:.3} s  {}",
            f.changed, f.again, f.s2
        );
        println!(
            "policy unchanged (policy id only, what the merge does): {:.4} s",
            f.unchanged
        );
        match &base {
            None => base = Some(f),
            Some(b) => {
                println!("== native vs libselinux (same run)");
                println!(
                    "lookups: {:.1}x faster; full relabel: {:.1}x faster ({:.3} s vs {:.3} s); labelled-tree relabel: {:.1}x",
                    b.lookups / f.lookups,
                    b.full / f.full,
                    f.full,
                    b.full,
                    b.again / f.again
                );
                assert_eq!(b.labelled, f.labelled, "the backends labelled differently");
            }
        }
    }
    Ok(())
}

struct Figures {
    labelled: u64,
    load: f64,
    lookups: f64,
    full: f64,
    again: f64,
    unchanged: f64,
    changed: bool,
    s1: String,
    s2: String,
}

fn figures(
    repo: &Repo,
    commit: &ostree_repo::format::Checksum,
    backend: LookupBackend,
    tops: &[&str],
    per_dir: usize,
    files: usize,
) -> anyhow::Result<Figures> {
    let t = Instant::now();
    let mut tree = MutableTree::from_commit(repo, commit)?;
    let policy = SePolicy::from_tree_with(repo, &mut tree, backend)?.expect("policy");
    let load = t.elapsed();
    assert_eq!(policy.backend(), backend, "no fallback expected");
    let t = Instant::now();
    let mut n = 0u64;
    for i in 0..files {
        let p = format!("/{}/d{}/f{i}", tops[i % tops.len()], i / per_dir);
        if policy.lookup(&p, 0o100644)?.is_some() {
            n += 1;
        }
    }
    let lookups = t.elapsed();
    let txn = repo.begin_transaction()?;
    let mut root = MutableTree::from_commit(&txn, commit)?;
    let t = Instant::now();
    let (_, s1) = relabel_tree(&txn, &mut root, &policy)?;
    root.write(&txn)?;
    let full = t.elapsed();
    let t = Instant::now();
    let (changed, s2) = relabel_tree(&txn, &mut root, &policy)?;
    let again = t.elapsed();
    let t = Instant::now();
    let _id = policy_id(&txn, &mut root)?;
    let unchanged = t.elapsed();
    txn.abort();
    Ok(Figures {
        labelled: n,
        load: load.as_secs_f64(),
        lookups: lookups.as_secs_f64(),
        full: full.as_secs_f64(),
        again: again.as_secs_f64(),
        unchanged: unchanged.as_secs_f64(),
        changed,
        s1: format!("{s1:?}"),
        s2: format!("{s2:?}"),
    })
}
