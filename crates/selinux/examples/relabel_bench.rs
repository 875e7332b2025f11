//! Figures for bench/selinux.sh: labelling a generated 30,000-file tree with Debian's policy.
//! Usage: relabel_bench SCRATCH_DIR [FILES]

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use ostree_repo::{CommitSpec, MutableTree, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_selinux::{SePolicy, policy_id, relabel_tree};

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
    let t = Instant::now();
    let policy = SePolicy::from_commit(&repo, &commit)?.expect("policy");
    let load = t.elapsed();
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
    let mut root = MutableTree::from_commit(&txn, &commit)?;
    let t = Instant::now();
    let (_, s1) = relabel_tree(&txn, &mut root, &policy)?;
    root.write(&txn)?;
    let full = t.elapsed();
    let t = Instant::now();
    let (changed, s2) = relabel_tree(&txn, &mut root, &policy)?;
    let again = t.elapsed();
    let t = Instant::now();
    let id = policy_id(&txn, &mut root)?;
    let unchanged = t.elapsed();
    txn.abort();
    println!("files {files}, labelled lookups {n}");
    println!(
        "policy load (extract + selabel_open): {:.3} s",
        load.as_secs_f64()
    );
    println!(
        "{files} lookups: {:.3} s ({:.2} us each)",
        lookups.as_secs_f64(),
        lookups.as_secs_f64() * 1e6 / files as f64
    );
    println!(
        "full relabel of an unlabelled tree (writes every object): {:.3} s  {s1:?}",
        full.as_secs_f64()
    );
    println!(
        "relabel of the labelled tree (reads every object, writes none, changed={changed}): {:.3} s  {s2:?}",
        again.as_secs_f64()
    );
    println!(
        "policy unchanged (policy id only, what the merge does): {:.4} s  id={}",
        unchanged.as_secs_f64(),
        id.map(|i| i.to_string()).unwrap_or_default()
    );
    Ok(())
}
