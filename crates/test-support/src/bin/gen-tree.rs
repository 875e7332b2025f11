//! Generates test and benchmark trees from the command line (used by `bench/` and the demo).
//!
//! `gen-tree reference DIR` | `gen-tree sample DIR [SEED]` | `gen-tree full DIR [SEED]` |
//! `gen-tree bench DIR FILES BYTES [SEED]`

use std::path::PathBuf;

use anyhow::{Context, bail};
use test_support::tree;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let num = |i: usize, default: u64| -> anyhow::Result<u64> {
        arg(i)
            .map(|s| {
                s.parse::<u64>()
                    .with_context(|| format!("not a number: {s}"))
            })
            .unwrap_or(Ok(default))
    };
    let (Some(kind), Some(dir)) = (arg(0), arg(1)) else {
        bail!("usage: gen-tree reference|sample|full|bench DIR [FILES BYTES] [SEED]");
    };
    let dir = PathBuf::from(dir);
    let stats = match kind {
        "reference" => {
            tree::reference_tree(&dir)?;
            tree::tree_stats(&dir)?
        }
        "sample" => tree::generate_tree(
            &dir,
            &tree::TreeOptions {
                seed: num(2, 0)?,
                ..Default::default()
            },
        )?,
        "full" => tree::generate_tree(
            &dir,
            &tree::TreeOptions {
                seed: num(2, 0)?,
                ..tree::TreeOptions::full()
            },
        )?,
        "bench" => tree::generate_bench_tree(
            &dir,
            num(2, 20_000)? as usize,
            num(3, 300 << 20)?,
            num(4, 1)?,
        )?,
        other => bail!("unknown tree kind {other:?}"),
    };
    println!(
        "{}: {} files, {} dirs, {} symlinks, {} bytes",
        dir.display(),
        stats.files,
        stats.dirs,
        stats.symlinks,
        stats.bytes
    );
    Ok(())
}
